"""`feedback-pipelines run` in a subprocess: one backfill, an idle sensor, bounded waits."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import dagster as dg
import pytest

from feedback_pipelines_tests.fixtures.cli import (
    DAY,
    ROOT,
    cli,
    environment,
    generate,
    instance_of,
    run,
)

pytestmark = pytest.mark.slow


def test_a_range_runs_as_one_backfill_quietly_and_leaves_the_sensor_idle(tmp_path, monkeypatch):
    landing = generate(tmp_path / "gen", days=2)
    env = environment(tmp_path / "run", landing)
    started = time.monotonic()
    proc = subprocess.Popen(
        [*cli(), "run", "--start", "2026-11-18", "--end", DAY],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = proc.stdout.readline()
    assert time.monotonic() - started < 10, "the first line comes before Dagster loads"
    assert first.startswith("feedback-pipelines run: 3 day(s), 2026-11-18..2026-11-20")
    rest, err = proc.communicate(timeout=900)
    out = first + rest
    # 2026-11-18 has no input: a warning in the run, and a non-zero exit without --allow-empty.
    assert proc.returncode == 1, out + err
    assert "WARN  2026-11-18 input_present: no input for 2026-11-18" in out
    assert "pass --allow-empty" in out
    assert "[3/3] 2026-11-20  ok" in out
    for noise in (" - DEBUG - ", " - INFO - ", "WARNING:root", "Please consider to run"):
        assert noise not in out + err, noise
    assert "Traceback" not in out + err

    days = ["2026-11-18", "2026-11-19", DAY]
    with instance_of(env) as instance:
        records = instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline"))
        backfills = {r.dagster_run.tags.get("dagster/backfill") for r in records}
        assert len(records) == 3 and len(backfills) == 1
        (backfill_id,) = backfills
        backfill = instance.get_backfill(backfill_id)
        assert backfill is not None and backfill.status.value == "COMPLETED_SUCCESS"
        assert list(backfill.partition_names) == days
        # Oldest first: the newest day is the latest materialization.
        latest = instance.get_latest_materialization_event(dg.AssetKey("review_report"))
        assert latest.dagster_event.partition == DAY

        # What `dagster dev`'s first sensor tick does on this instance: nothing.
        for key, value in env.items():
            if key.startswith("FEEDBACK_"):
                monkeypatch.setenv(key, value)
        from feedback_pipelines_tests.fixtures.pipeline import load_defs

        defs = load_defs()
        sensor = defs.resolve_sensor_def("landing_sensor")
        context = dg.build_sensor_context(
            instance=instance, cursor=None, definitions=defs, resources=defs.resources
        )
        tick = sensor.evaluate_tick(context)
        assert list(tick.run_requests) == []
        assert sorted(json.loads(tick.cursor)) == ["2026-11-19", DAY]

    allowed = run(env, "--start", "2026-11-18", "--end", "2026-11-18", "--allow-empty")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "WARN  2026-11-18 input_present" in allowed.stdout


def test_a_wait_for_a_pool_says_what_it_waits_for_gives_up_and_hears_ctrl_c(tmp_path):
    landing = generate(tmp_path / "gen", days=1)
    env = environment(tmp_path / "run", landing)
    home = Path(env["DAGSTER_HOME"])
    home.mkdir(parents=True)
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    ghost = "0000aaaa-run-the-instance-does-not-know"
    with instance_of(env) as instance:  # a slot held by something this machine cannot judge
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default("stores")  # 1, from dagster.yaml
        assert storage.claim_concurrency_slot("stores", ghost, "elsewhere").is_claimed

    gave_up = run(env, "--start", DAY, "--end", DAY, "--wait-timeout", "5")
    assert gave_up.returncode == 1, gave_up.stdout + gave_up.stderr
    assert "landing_ingest waits for pool stores, held by run 0000aaaa" in gave_up.stdout
    (line,) = gave_up.stderr.strip().splitlines()
    assert line.startswith("feedback-pipelines: error: gave up after 5s waiting for pool")

    proc = subprocess.Popen(
        [*cli(), "run", "--start", DAY, "--end", DAY, "--wait-timeout", "600"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if "waits for pool stores" in line:
            break
    else:
        raise AssertionError("".join(seen))
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, "".join(seen) + out + err
    assert "stopped after" in out
    with instance_of(env) as instance:
        runs = instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline"))
        assert {r.dagster_run.status for r in runs} == {
            dg.DagsterRunStatus.FAILURE,  # gave up
            dg.DagsterRunStatus.CANCELED,  # Ctrl-C
        }
        holders = instance.event_log_storage.get_concurrency_info("stores")
        assert [s.run_id for s in holders.claimed_slots] == [ghost]  # nothing of ours left
        assert {s.run_id for s in holders.pending_steps} <= {ghost}
        statuses = sorted(b.status.value for b in instance.get_backfills())
        assert statuses == ["CANCELED", "FAILED"]
