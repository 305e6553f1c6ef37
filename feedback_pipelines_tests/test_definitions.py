"""The real Definitions load, and every job, schedule and sensor resolves and evaluates."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines_tests.fixtures.landing import feedback, trace, write
from feedback_pipelines_tests.fixtures.pipeline import load_defs


def test_definitions_load_and_resolve_everything():
    defs = load_defs()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"traces", "feedback_events", "quarantine"} <= keys
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.partitions_def == daily_partitions, key  # one partitioning for every asset
        assert node.group_name and node.group_name != "default", key
        assert node.description, key
    for job in defs.jobs or []:
        defs.resolve_job_def(job.name)
    assert {s.name for s in defs.schedules} == {"daily_pipeline_schedule"}
    for schedule in defs.schedules:
        defs.resolve_schedule_def(schedule.name)
    for sensor in defs.sensors:
        defs.resolve_sensor_def(sensor.name)
    assert "landing_sensor" in {s.name for s in defs.sensors}
    assert "settings" in defs.resources and "warehouse" in defs.resources


def test_schedule_runs_yesterdays_partition_at_two():
    defs = load_defs()
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    with dg.DagsterInstance.ephemeral() as instance:
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=datetime(2026, 11, 21, 2, tzinfo=UTC)
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-11-20"]


def test_sensor_requests_new_changed_and_late_days_once(pipeline_env):
    defs = load_defs()
    sensor = defs.resolve_sensor_def("landing_sensor")
    env = pipeline_env

    def tick(cursor):
        with dg.DagsterInstance.ephemeral() as instance:
            ctx = dg.build_sensor_context(
                instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
            )
            result = sensor.evaluate_tick(ctx)
        return sorted((r.partition_key, r.run_key) for r in result.run_requests), result.cursor

    assert tick(None)[0] == []
    write(env, "traces", "2026-11-19", "a.jsonl", [trace("t1")])
    write(env, "feedback", "2026-11-20", "a.jsonl", [feedback("f1", "t1")])
    first, cursor = tick(None)
    assert [p for p, _ in first] == ["2026-11-19", "2026-11-20"]
    assert tick(cursor)[0] == []  # nothing new: no run twice
    # A late file for an old day: only that day runs again, with a new run key.
    late = write(env, "feedback", "2026-11-19", "late.jsonl", [feedback("f2", "t1")])
    os.utime(late, (time.time() + 5, time.time() + 5))
    again, cursor2 = tick(cursor)
    assert [p for p, _ in again] == ["2026-11-19"]
    assert again[0][1] not in {rk for _, rk in first}
    assert json.loads(cursor2)["2026-11-20"] == json.loads(cursor)["2026-11-20"]
    # A folder that is not a partition (far future) is left for later, not run.
    write(env, "feedback", "2999-01-01", "a.jsonl", [feedback("f3", "t1")])
    assert tick(cursor2)[0] == []


@pytest.mark.slow
def test_dagster_cli_loads_the_workspace(tmp_path):
    """What `dagster dev` loads: workspace.yaml -> feedback_pipelines.definitions."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    exe = Path(sys.executable).parent / "dagster"
    out = subprocess.run(
        [str(exe), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed validation" in out.stdout + out.stderr
