"""The Dagster instance on PostgreSQL storage (docs/deploy/dagster.postgres.yaml), for real."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml

from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.defs.sources import source_pull
from feedback_pipelines.resources.postgres import PostgresSourceResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines_tests.fixtures.pipeline import PipelineEnv
from feedback_pipelines_tests.fixtures.postgres_server import PostgresServer, get_server

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="session")
def pg() -> PostgresServer:
    """The session's throwaway PostgreSQL server (one for every module that asks)."""
    return get_server()


DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"
DAY = "2026-11-20"


@pytest.fixture
def pg_instance(pg, pipeline_env: PipelineEnv, monkeypatch):
    """DAGSTER_HOME holding the documented dagster.yaml, its variables set to the test server."""
    pg.create_database("dagster_instance")
    shutil.copyfile(DEPLOY / "dagster.postgres.yaml", pipeline_env.dagster_home / "dagster.yaml")
    for key, value in {
        "DAGSTER_PG_HOST": pg.host,
        "DAGSTER_PG_PORT": str(pg.port),
        "DAGSTER_PG_USERNAME": pg.user,
        "DAGSTER_PG_PASSWORD": pg.password,
        "DAGSTER_PG_DB": "dagster_instance",
    }.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.get() as instance:
        yield instance


def test_partition_runs_recorded_in_postgres(
    pg_instance: dg.DagsterInstance,
    pg,
    pipeline_env: PipelineEnv,
    monkeypatch,
):
    assert type(pg_instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(pg_instance.event_log_storage).__name__ == "PostgresEventLogStorage"

    # The product database the source pulls from, on the same server.
    product = pg.create_database("product_for_instance")
    with psycopg.connect(product, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE traces (trace_id text, session_id text, user_id text, "
            "timestamp timestamptz, model_version text, messages jsonb, response text);"
            "CREATE TABLE feedback (feedback_id text, trace_id text, timestamp timestamptz, "
            "kind text, comment text)"
        )
        for i in range(6):
            conn.execute(
                "INSERT INTO traces VALUES (%s, %s, 'u1', %s, %s, %s, %s)",
                [
                    f"t{i}",
                    f"s{i // 2}",
                    f"{DAY}T0{i}:00:00Z",
                    "nimbus-2",
                    '[{"role": "user", "content": "hi"}]',
                    f"answer {i}",
                ],
            )
            conn.execute(
                "INSERT INTO feedback VALUES (%s, %s, %s, %s, %s)",
                [f"f{i}", f"t{i}", f"{DAY}T0{i}:05:00Z", "thumbs_down", "too long"],
            )
    monkeypatch.setenv("FEEDBACK_POSTGRES_DSN", product)
    resources = {
        "settings": PipelineConfig(),
        "warehouse": WarehouseResource(),
        "postgres_source": PostgresSourceResource(dsn=dg.EnvVar("FEEDBACK_POSTGRES_DSN")),
    }
    pulled = dg.materialize(
        [source_pull], partition_key=DAY, resources=resources, instance=pg_instance
    )
    ingested = dg.materialize(
        [landing_ingest], partition_key=DAY, resources=resources, instance=pg_instance
    )
    assert pulled.success and ingested.success

    # Dagster's own records are in PostgreSQL: the runs, their partition, the materializations.
    records = pg_instance.get_run_records(
        dg.RunsFilter(tags={"dagster/partition": DAY}, statuses=[dg.DagsterRunStatus.SUCCESS])
    )
    assert {r.dagster_run.run_id for r in records} == {pulled.run_id, ingested.run_id}
    event = pg_instance.get_latest_materialization_event(dg.AssetKey("feedback_events"))
    assert event is not None and event.asset_materialization.partition == DAY
    assert event.asset_materialization.metadata["dagster/row_count"].value == 6
    with psycopg.connect(pg.url("dagster_instance")) as conn:
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        mats = conn.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
            "AND partition = %s",
            [DAY],
        ).fetchone()[0]
    assert runs == 2
    assert mats == 5  # source_pull + traces, feedback_events, ingest_files, quarantine

    # The warehouse got the pulled rows.
    con = pipeline_env.connect()
    try:
        assert con.execute("SELECT count(*) FROM traces WHERE ds = ?", [DAY]).fetchone()[0] == 6
    finally:
        con.close()


def test_kubernetes_example_is_a_valid_instance_config(tmp_path: Path, monkeypatch):
    """The K8s example (minus the launcher, whose package is not installed here) validates."""
    config = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    assert config["run_launcher"]["class"] == "K8sRunLauncher"
    assert {"instance_config_map", "dagster_home", "job_image"} <= set(
        config["run_launcher"]["config"]
    )
    del config["run_launcher"]
    config["storage"] = {"sqlite": {"base_dir": str(tmp_path / "storage")}}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
