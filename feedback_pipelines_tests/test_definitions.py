"""The real Definitions load, and every job, schedule and sensor resolves and evaluates."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta

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
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 21, 2, tzinfo=UTC),
            repository_def=defs.get_repository_def(),  # what the daemon passes
        )
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [r.partition_key for r in requests] == ["2026-11-20"]
    with dg.DagsterInstance.ephemeral() as instance:  # a day before the first partition: none
        first = daily_partitions.start
        context = dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=first.replace(hour=2),
            repository_def=defs.get_repository_def(),
        )
        result = schedule.evaluate_tick(context)
    assert not result.run_requests and "before the first partition" in result.skip_message


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


# --- what the UI shows about each asset (issue 16, item 5) ---------------------------------------
WAREHOUSE_TABLES = {
    "traces",
    "feedback_events",
    "quarantine",
    "ingest_files",
    "feedback_embeddings",
    "feedback_clusters",
    "feedback_topics",
    "topic_lineage",
    "topic_registry",
    "cluster_assignments",
    "version_metrics",
    "version_regressions",
    "tuning_candidates",
    "review_queue",
}


def _ddl_columns(table: str) -> list[tuple[str, str]]:
    """The columns DuckDB creates from the DDL the pipeline runs (independent of metadata.py)."""
    import duckdb

    from feedback_pipelines import schema
    from feedback_pipelines.recall.embeddings import embeddings_ddl

    conn = duckdb.connect()
    for statement in (
        schema.INGEST_DDL,
        schema.CLUSTERS_DDL,
        schema.ASSIGNMENTS_DDL,
        schema.TOPICS_DDL,
        schema.LINEAGE_DDL,
        schema.REGISTRY_DDL,
        schema.VERSION_METRICS_DDL,
        schema.REGRESSIONS_DDL,
        schema.TUNING_DDL,
        schema.REVIEW_DDL,
        embeddings_ddl(384),
    ):
        conn.execute(statement)
    return [(r[0], r[1]) for r in conn.execute(f"DESCRIBE {table}").fetchall()]


def test_every_asset_has_owners_and_a_code_reference():
    specs = {s.key.to_user_string(): s for s in load_defs().resolve_all_asset_specs()}
    for key, spec in specs.items():
        assert spec.owners, key
        assert all(o.startswith("team:") or "@" in o for o in spec.owners), key
        refs = spec.metadata.get("dagster/code_references")
        assert refs is not None and refs.code_references, key
        path = refs.code_references[0].file_path
        assert path.endswith(".py") and "/defs/" in path, (key, path)


def test_warehouse_assets_name_their_table_and_columns_from_the_schema_module():
    specs = {s.key.to_user_string(): s for s in load_defs().resolve_all_asset_specs()}
    for table in WAREHOUSE_TABLES:
        spec = specs[table]
        assert spec.metadata["dagster/table_name"] == f"warehouse.main.{table}"
        schema_value = spec.metadata["dagster/column_schema"]
        table_schema = getattr(schema_value, "schema", schema_value)  # value or its wrapper
        columns = [(c.name, c.type) for c in table_schema.columns]
        assert columns == _ddl_columns(table), table
        assert spec.metadata["partition_expr"] == "ds"


def test_steps_that_touch_stores_take_the_stores_pool_and_retry_with_backoff_and_jitter():
    from feedback_pipelines.defs.metadata import STORES_POOL

    ops = {}
    for assets_def in load_defs().assets:
        if isinstance(assets_def, dg.AssetsDefinition):
            node = assets_def.node_def
            for op in node.iterate_op_defs() if isinstance(node, dg.GraphDefinition) else [node]:
                ops[op.name] = op
    assert set(ops) >= {"landing_ingest", "plan_embedding_shards", "embed_shard",
                        "commit_embeddings", "qdrant_feedback", "review_report"}  # fmt: skip
    for op in ops.values():
        opens_stores = bool(op.required_resource_keys & {"warehouse", "vector_store"})
        assert (op.pool == STORES_POOL) == opens_stores, op.name  # shards run beside them
        if opens_stores:
            policy = op.retry_policy
            assert policy is not None, op.name
            assert policy.max_retries >= 1 and policy.backoff == dg.Backoff.EXPONENTIAL
            assert policy.jitter is not None, op.name
    assert ops["embed_shard"].retry_policy.max_retries >= 1


def test_report_has_a_freshness_policy_and_automation_is_described():
    defs = load_defs()
    specs = {s.key.to_user_string(): s for s in defs.resolve_all_asset_specs()}
    policy = specs["review_report"].freshness_policy
    assert policy is not None
    fail, warn = policy.fail_window.to_timedelta(), policy.warn_window.to_timedelta()
    assert fail > warn >= timedelta(hours=24)  # the nightly run, with slack
    schedule = defs.resolve_schedule_def("daily_pipeline_schedule")
    assert schedule.description and "02:00" in schedule.description
    sensor = defs.resolve_sensor_def("landing_sensor")
    assert sensor.description and "landing" in sensor.description


def test_ingest_checks_report_numbers_not_only_json():
    from feedback_pipelines.defs.ingest import evaluate_checks
    from feedback_pipelines.ingest.day import IngestStats
    from feedback_pipelines.resources.settings import PipelineConfig

    stats = IngestStats(
        ds="2026-11-20",
        files={"traces": [], "feedback": []},
        lines={"traces": 0, "feedback": 0},
        loaded={"traces": 0, "feedback": 0},
        quarantined={"traces": 0, "feedback": 0},
    )
    results = {r.check_name: r for r in evaluate_checks(stats, PipelineConfig())}
    numeric = (dg.IntMetadataValue, dg.FloatMetadataValue)
    for name, result in results.items():
        values = [dg.MetadataValue.normalize(v) if not isinstance(v, dg.MetadataValue) else v
                  for v in result.metadata.values()]  # fmt: skip
        assert any(isinstance(v, numeric) for v in values), name
    # No input for the day: a warning a person sees in the run, not a silent pass.
    empty = results["input_present"]
    assert not empty.passed and empty.severity == dg.AssetCheckSeverity.WARN
    assert "no input" in empty.description


def test_sensor_skips_files_a_recorded_run_already_processed(pipeline_env):
    """`feedback-pipelines run` tags runs with the landing fingerprint: dagster dev starts idle."""
    from feedback_pipelines.defs.automation import LANDING_FINGERPRINT_TAG
    from feedback_pipelines.ingest.landing import landed_partitions

    defs = load_defs()
    sensor = defs.resolve_sensor_def("landing_sensor")
    write(pipeline_env, "traces", "2026-11-19", "a.jsonl", [trace("t1")])
    write(pipeline_env, "feedback", "2026-11-20", "a.jsonl", [feedback("f1", "t1")])
    fingerprints = landed_partitions(pipeline_env.landing)

    @dg.op
    def noop():
        return None

    @dg.job(name="daily_pipeline")
    def stand_in():
        noop()

    with dg.DagsterInstance.ephemeral() as instance:
        for ds in ("2026-11-19", "2026-11-20"):
            instance.create_run_for_job(
                stand_in,
                status=dg.DagsterRunStatus.SUCCESS,
                tags={"dagster/partition": ds, LANDING_FINGERPRINT_TAG: fingerprints[ds]},
            )
        ctx = dg.build_sensor_context(
            instance=instance, cursor=None, definitions=defs, resources=defs.resources
        )
        result = sensor.evaluate_tick(ctx)
        assert list(result.run_requests) == []
        assert json.loads(result.cursor) == fingerprints
        # A file that arrives later for a day that ran is still picked up.
        late = write(pipeline_env, "feedback", "2026-11-19", "late.jsonl", [feedback("f2", "t1")])
        os.utime(late, (time.time() + 5, time.time() + 5))
        ctx = dg.build_sensor_context(
            instance=instance, cursor=result.cursor, definitions=defs, resources=defs.resources
        )
        again = sensor.evaluate_tick(ctx)
        assert [r.partition_key for r in again.run_requests] == ["2026-11-19"]
