"""A damaged warehouse file stops a run at once, says so and what to do, and is left as it is."""

from __future__ import annotations

from datetime import date

import dagster as dg

from feedback_pipelines.sources.synthetic import generate
from feedback_pipelines_tests.fixtures.pipeline import make_env, run_day

DAY = date(2026, 11, 20)
INGEST = "traces,feedback_events,quarantine,ingest_files"
BLOCK_0 = 3 * 4096  # after DuckDB's file header and its two database headers


def test_a_torn_warehouse_fails_the_step_once_with_what_to_do(tmp_path, monkeypatch):
    env = make_env(tmp_path, monkeypatch)
    generate(env.landing, 1, DAY, seed=3, events_per_day=40)
    assert run_day(DAY.isoformat(), selection=INGEST).success
    with open(env.warehouse, "r+b") as f:  # what a kill inside a checkpoint's write leaves
        f.seek(BLOCK_0 + 4096)
        f.write(b"\xff" * 512)
    damaged = env.warehouse.read_bytes()

    result = run_day(DAY.isoformat(), selection=INGEST)

    assert not result.success
    events = result.all_events
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert "is damaged and does not open" in message and "Corrupt database file" in message
    assert str(env.warehouse) in message and "move the file aside" in message
    assert env.warehouse.read_bytes() == damaged  # nothing overwritten or removed
