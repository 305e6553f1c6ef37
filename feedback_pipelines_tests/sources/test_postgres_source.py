"""PostgreSQL source on a real server: rows in, pulled per day through Dagster, ingested."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.defs.sources import earlier_days, source_pull
from feedback_pipelines.resources.postgres import PostgresSourceResource, resource_from_env
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.sources.postgres import (
    TableMapping,
    TooManyRows,
    fetch_day,
    landing_file,
    row_to_record,
)
from feedback_pipelines_tests.fixtures.pipeline import PipelineEnv, load_defs
from feedback_pipelines_tests.fixtures.postgres_server import PostgresServer, get_server

pytestmark = [pytest.mark.postgres]


@pytest.fixture(scope="session")
def pg() -> PostgresServer:
    """The session's throwaway PostgreSQL server (one for every module that asks)."""
    return get_server()


DAY1, DAY2 = "2026-11-19", "2026-11-20"

SCHEMA = """
CREATE SCHEMA app;
CREATE TABLE app.llm_calls (
    call_id     uuid PRIMARY KEY,
    conversation text,
    user_email  text,
    created     timestamptz NOT NULL,
    model       text,
    prompt_version text,
    messages    jsonb,
    answer      text,
    latency_ms  double precision,
    input_tokens integer,
    output_tokens integer,
    metadata    jsonb,
    app         text
);
CREATE INDEX ON app.llm_calls (created, call_id);
CREATE TABLE app.user_feedback (
    id          bigint PRIMARY KEY,
    call_id     uuid,
    user_email  text,
    created_at  timestamp without time zone NOT NULL,
    signal      text,
    reason      text,
    stars       numeric,
    comment     text,
    fixed_answer text,
    metadata    text
);
"""

MAPPING = {
    "traces_table": "app.llm_calls",
    "feedback_table": "app.user_feedback",
    "traces_columns": {
        "trace_id": "call_id",
        "session_id": "conversation",
        "user_id": "user_email",
        "timestamp": "created",
        "model_version": "model",
        "response": "answer",
    },
    "feedback_columns": {
        "feedback_id": "id",
        "trace_id": "call_id",
        "user_id": "user_email",
        "timestamp": "created_at",
        "kind": "signal",
        "score": "stars",
        "correction": "fixed_answer",
        "session_id": "",
    },
    "traces_metadata_columns": ["app"],
}


def _uuid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def insert_call(conn, n: int, created: str, **kw) -> None:
    row = {
        "call_id": _uuid(n),
        "conversation": f"conv-{n // 2}",
        "user_email": f"user{n % 3}@corp.example",
        "created": created,
        "model": "nimbus-2" if n % 2 else "nimbus-1",
        "prompt_version": "p1",
        "messages": json.dumps([{"role": "user", "content": f"question {n}"}]),
        "answer": f"answer {n}",
        "latency_ms": 100.0 + n,
        "input_tokens": 10,
        "output_tokens": 20,
        "metadata": json.dumps({"user_role": "analyst"}),
        "app": "web",
    } | kw
    conn.execute(
        f"INSERT INTO app.llm_calls ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


def insert_feedback(conn, fid: int, call: int, created: str, signal: str = "thumbs_down", **kw):
    row = {
        "id": fid,
        "call_id": _uuid(call),
        "user_email": f"user{call % 3}@corp.example",
        "created_at": created,
        "signal": signal,
        "reason": None,
        "stars": None,
        "comment": None,
        "fixed_answer": None,
        "metadata": json.dumps({"source": "widget"}),
    } | kw
    conn.execute(
        f"INSERT INTO app.user_feedback ({', '.join(row)}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )


@pytest.fixture
def source_db(pg):
    url = pg.create_database("product")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        # DAY1: two calls, one piece of feedback.
        insert_call(conn, 1, f"{DAY1}T08:00:00Z")
        insert_call(conn, 2, f"{DAY1}T09:00:00+01:00")  # 08:00 UTC
        insert_feedback(conn, 1, 1, f"{DAY1} 08:01:00", "thumbs_up")
        # DAY2: five calls, three sharing one timestamp (the keyset must not lose any),
        # one whose messages are a string, and the edges of the day.
        insert_call(conn, 10, f"{DAY2}T00:00:00Z")
        for n in (11, 12, 13):
            insert_call(conn, n, f"{DAY2}T10:00:00Z")
        insert_call(conn, 14, f"{DAY2}T23:59:59.999Z", messages=json.dumps("not a list"))
        insert_call(conn, 15, "2026-11-21T00:00:00Z")  # the next day: not pulled for DAY2
        insert_feedback(conn, 10, 10, f"{DAY2} 00:05:00", "thumbs_down", reason="too_long")
        insert_feedback(conn, 11, 11, f"{DAY2} 10:01:00", "rating", stars=2)
        insert_feedback(
            conn, 12, 12, f"{DAY2} 10:02:00", "correction", fixed_answer="the right answer"
        )
        insert_feedback(conn, 13, 13, f"{DAY2} 10:03:00", "thumbs_sideways")  # bad kind
        insert_feedback(conn, 14, 13, f"{DAY2} 10:04:00", "comment", comment="call me 555-123-4567")
    return url


def resources(dsn: str | dg.EnvVar = "", **overrides) -> dict:
    options = dict(MAPPING) | {"batch_size": 2} | overrides
    return {
        "settings": PipelineConfig(),
        "warehouse": WarehouseResource(),
        "postgres_source": PostgresSourceResource(dsn=dsn, **options),
    }


def run(ds: str, res: dict) -> dg.ExecuteInProcessResult:
    pulled = dg.materialize([source_pull], partition_key=ds, resources=res)
    assert pulled.success
    ingested = dg.materialize([landing_ingest], partition_key=ds, resources=res)
    assert ingested.success
    return pulled


def pull_metadata(result: dg.ExecuteInProcessResult) -> dict:
    [mat] = result.asset_materializations_for_node("source_pull")
    return {k: v.value for k, v in mat.metadata.items()}


def query(env: PipelineEnv, sql: str, params=None) -> list[tuple]:
    con = env.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_round_trip_late_rows_and_quarantine(
    pipeline_env: PipelineEnv, source_db: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("FEEDBACK_POSTGRES_DSN", source_db)
    res = resources(dg.EnvVar("FEEDBACK_POSTGRES_DSN"))

    first = pull_metadata(run(DAY1, res))
    assert first["rows"] == {"traces": 2, "feedback": 1}
    second = pull_metadata(run(DAY2, res))
    # Only DAY2's rows: the row at next midnight belongs to the next day.
    assert second["rows"] == {"traces": 5, "feedback": 5}
    assert second["repulled_days"] == {}

    traces = query(
        pipeline_env,
        "SELECT trace_id, model_version, session_id, user_id, latency_ms, metadata "
        "FROM traces WHERE ds = ? ORDER BY timestamp, trace_id",
        [DAY2],
    )
    assert [t[0] for t in traces] == [_uuid(10), _uuid(11), _uuid(12), _uuid(13)]
    assert {t[1] for t in traces} == {"nimbus-1", "nimbus-2"}
    assert all(t[3] and "@" not in t[3] for t in traces)  # pseudonymized
    meta = json.loads(traces[0][5])
    assert meta["app"] == "web" and meta["user_role"] == "analyst"
    assert meta["import"] == {"format": "postgres", "table": "app.llm_calls"}

    feedback = dict(
        query(
            pipeline_env,
            "SELECT feedback_id, kind FROM feedback_events WHERE ds = ? ORDER BY feedback_id",
            [DAY2],
        )
    )
    assert feedback == {"10": "thumbs_down", "11": "rating", "12": "correction", "14": "comment"}
    [(comment,)] = query(
        pipeline_env, "SELECT comment FROM feedback_events WHERE feedback_id = '14'"
    )
    assert "555-123-4567" not in comment  # redacted on the way in

    bad = query(
        pipeline_env, "SELECT source, file, error FROM quarantine WHERE ds = ? ORDER BY 1", [DAY2]
    )
    assert len(bad) == 2
    assert bad[0][0] == "feedback" and bad[0][1].endswith("postgres.jsonl")
    assert bad[0][2].startswith("unknown kind thumbs_sideways")
    assert bad[1][0] == "traces" and 'field "messages" must be a list' in bad[1][2]

    # A late row for DAY1 arrives. The next day's pull sees DAY1's count change and re-pulls it.
    with psycopg.connect(source_db, autocommit=True) as conn:
        insert_feedback(conn, 2, 2, f"{DAY1} 23:30:00", "thumbs_down", reason="factual_error")
    before = landing_file(pipeline_env.landing, "feedback", DAY1).read_text()
    again = pull_metadata(dg.materialize([source_pull], partition_key=DAY2, resources=res))
    assert again["repulled_days"] == {DAY1: {"traces": 2, "feedback": 2}}
    assert again["changed"] == {"traces": False, "feedback": False}  # DAY2 itself unchanged
    after = landing_file(pipeline_env.landing, "feedback", DAY1).read_text()
    assert len(after.splitlines()) == len(before.splitlines()) + 1

    # Rerunning DAY1 (as the landing sensor does for the changed folder) loads the late row.
    run(DAY1, res)
    rows = query(
        pipeline_env,
        "SELECT feedback_id, is_negative, trace_found FROM feedback_events WHERE ds = ? "
        "ORDER BY feedback_id",
        [DAY1],
    )
    assert rows == [("1", False, True), ("2", True, True)]

    # A rerun is idempotent: same rows, no duplicates.
    run(DAY2, res)
    assert query(pipeline_env, "SELECT count(*) FROM traces WHERE ds = ?", [DAY2]) == [(4,)]
    assert query(pipeline_env, "SELECT count(*) FROM quarantine WHERE ds = ?", [DAY2]) == [(2,)]


def test_keyset_pages_return_every_row_once(source_db: str):
    mapping = TableMapping.build("traces", "app.llm_calls", MAPPING["traces_columns"])
    with psycopg.connect(source_db, options="-c TimeZone=UTC") as conn:
        for batch in (1, 2, 3, 100):
            ids = [r["trace_id"] for r in fetch_day(conn, mapping, DAY2, batch_size=batch)]
            assert [str(i) for i in ids] == [_uuid(n) for n in (10, 11, 12, 13, 14)], batch
        with pytest.raises(TooManyRows, match="max_rows_per_day"):
            list(fetch_day(conn, mapping, DAY2, batch_size=2, max_rows=3))


def test_naive_timestamps_are_utc_whatever_the_server_zone(source_db: str):
    """A `timestamp without time zone` column is read as UTC, even if the database says not."""
    with psycopg.connect(source_db, autocommit=True) as conn:
        conn.execute("ALTER DATABASE product SET TimeZone = 'Pacific/Kiritimati'")  # UTC+14
        insert_feedback(conn, 3, 2, f"{DAY1} 23:30:00", "thumbs_up")
    source = PostgresSourceResource(dsn=source_db, **MAPPING)
    mapping = source.mappings()[1]
    with source.connect() as conn:
        rows = [row_to_record(r, mapping) for r in fetch_day(conn, mapping, DAY1)]
    assert [r["timestamp"] for r in rows] == [f"{DAY1}T08:01:00Z", f"{DAY1}T23:30:00Z"]
    assert rows[0]["metadata"]["source"] == "widget"  # a text column holding JSON is parsed
    with psycopg.connect(source_db) as conn:  # without the resource's session settings
        shifted = [row_to_record(r, mapping) for r in fetch_day(conn, mapping, DAY1)]
    times = [r["timestamp"] for r in shifted]  # the day's window moved by 14 hours
    assert f"{DAY1}T08:01:00Z" not in times and f"{DAY2}T00:05:00Z" in times


def test_unconfigured_source_is_a_clear_no_op(pipeline_env: PipelineEnv, monkeypatch):
    monkeypatch.delenv("FEEDBACK_POSTGRES_DSN", raising=False)
    result = dg.materialize([source_pull], partition_key=DAY2, resources=resources(""))
    meta = pull_metadata(result)
    assert meta["dagster/row_count"] == 0
    assert "FEEDBACK_POSTGRES_DSN" in meta["note"]
    assert not (pipeline_env.landing / "traces").exists()


def test_resource_from_env_binds_secret_and_mapping(tmp_path: Path, monkeypatch):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps(MAPPING | {"dsn": "postgresql://leak@x/y"}))
    monkeypatch.setenv("FEEDBACK_POSTGRES_MAPPING", str(mapping))
    monkeypatch.setenv("FEEDBACK_POSTGRES_DSN", "postgresql://u:secret@db.internal:6543/product")
    resource = resource_from_env()
    assert isinstance(resource.dsn, dg.EnvVar)  # bound by name, not by value
    assert resource.feedback_table == "app.user_feedback"
    assert resource.mappings()[1].columns["kind"] == "signal"
    resolved = PostgresSourceResource(dsn="postgresql://u:secret@db.internal:6543/product")
    assert resolved.target() == "db.internal:6543/product"  # no password in logs


def test_mapping_rejects_unknown_fields():
    with pytest.raises(ValueError, match="unknown feedback fields"):
        TableMapping.build("feedback", "t", {"stars": "stars"})


def test_mapping_resolves_against_the_real_columns():
    mapping = TableMapping.build("feedback", "fb", {"kind": "signal"}, ["app"])
    resolved = mapping.resolve({"feedback_id", "trace_id", "timestamp", "signal", "app"})
    assert resolved.columns == {
        "feedback_id": "feedback_id",
        "trace_id": "trace_id",
        "timestamp": "timestamp",
        "kind": "signal",
    }  # fields left at their default names and absent from the table are not selected
    with pytest.raises(ValueError, match=r"fb has no column for kind -> signal, metadata <- app"):
        mapping.resolve({"feedback_id", "trace_id", "timestamp"})
    with pytest.raises(ValueError, match="timestamp -> timestamp"):
        TableMapping.build("traces", "t").resolve({"trace_id"})


def test_unreachable_server_is_retried_then_fails(pipeline_env: PipelineEnv):
    dead = f"postgresql://postgres:s3cret-pw@127.0.0.1:{_closed_port()}/product"
    result = dg.materialize(
        [source_pull],
        partition_key=DAY2,
        resources=resources(dead, retry_wait_s=0, connect_timeout_s=2),
        raise_on_error=False,
    )
    assert not result.success
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3
    assert "s3cret-pw" not in str([(e.message, e.event_specific_data) for e in result.all_events])


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_row_conversion_keeps_what_ingest_must_judge():
    mapping = TableMapping.build("traces", "calls")
    record = row_to_record(
        {
            "trace_id": 7,
            "timestamp": datetime(2026, 11, 20, 8, tzinfo=UTC),
            "messages": "[not json",
            "metadata": None,
            "latency_ms": None,
        },
        mapping,
    )
    assert record["trace_id"] == "7"  # ids as strings
    assert record["timestamp"] == "2026-11-20T08:00:00Z"
    assert record["messages"] == "[not json"  # kept: ingest quarantines it with the reason
    assert "latency_ms" not in record


def test_earlier_days_respect_start_date(monkeypatch):
    monkeypatch.setenv("FEEDBACK_START_DATE", "2026-11-19")
    assert earlier_days("2026-11-20", 3) == ["2026-11-19"]
    assert earlier_days("2026-11-20", 0) == []


def test_real_definitions_pull_when_the_dsn_is_set(
    pipeline_env: PipelineEnv, source_db: str, monkeypatch
):
    """The project's daily job carries `source_pull`; the DSN is read when the run starts."""
    defs = load_defs()
    assert dg.AssetKey("source_pull") in defs.resolve_asset_graph().get_all_asset_keys()
    monkeypatch.setenv("FEEDBACK_POSTGRES_DSN", source_db)
    job = defs.resolve_job_def("daily_pipeline").get_subset(
        asset_selection={dg.AssetKey("source_pull")}
    )
    # The definitions were loaded with the default mapping: override it per run, as the
    # launchpad would.
    result = job.execute_in_process(
        partition_key=DAY2,
        run_config={"resources": {"postgres_source": {"config": MAPPING}}},
    )
    assert result.success
    assert pull_metadata(result)["rows"] == {"traces": 5, "feedback": 5}
    assert landing_file(pipeline_env.landing, "feedback", DAY2).exists()
