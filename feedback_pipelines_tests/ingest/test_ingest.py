"""Ingest through the real Definitions on real DuckDB files: quarantine, dedup, joins, privacy."""

from __future__ import annotations

import json
from datetime import UTC

import dagster as dg
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from feedback_pipelines.ingest.day import ingest_day
from feedback_pipelines.routing.day import read_events
from feedback_pipelines_tests.fixtures.landing import feedback, trace, write
from feedback_pipelines_tests.fixtures.pipeline import PipelineEnv, run_day

DAY = "2026-11-20"
PREV = "2026-11-19"
INGEST = "traces,feedback_events,quarantine,ingest_files"


def rows(env: PipelineEnv, sql: str, params=None) -> list[tuple]:
    con = env.connect()
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def check_result(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    evals = result.get_asset_check_evaluations()
    return next(e for e in evals if e.check_name == name)


def test_each_bad_line_is_quarantined_with_its_reason_and_valid_lines_load(pipeline_env):
    env = pipeline_env
    write(
        env,
        "traces",
        DAY,
        "a.jsonl",
        [
            trace("t1"),
            trace("t2", ts="2026-11-20T09:01:00Z"),
            "{not json",
            json.dumps(trace("t3", messages="just a string")),
            json.dumps({k: v for k, v in trace("t4").items() if k != "model_version"}),
            json.dumps(trace("t5", messages=[{"role": "user", "content": "x" * 60_000}])),
        ],
    )
    write(
        env,
        "feedback",
        DAY,
        "a.jsonl",
        [
            feedback("f1", "t1", reason="factual_error", comment="wrong total"),
            "this is not json",
            "[1, 2, 3]",
            json.dumps({"trace_id": "t1", "timestamp": "2026-11-20T09:05:00Z", "kind": "copy"}),
            json.dumps(feedback("f3", "t1", kind="rating", score="five")),
            json.dumps(feedback("f4", "t1", kind="star")),
            json.dumps(feedback("f5", "t1", timestamp="last tuesday")),
            b'{"feedback_id": "f6", "trace_id": "t1", "timestamp": "2026-11-20T09:05:00Z", '
            b'"kind": "comment", "comment": "caf\xe9 bad bytes"}',
            json.dumps(feedback("f7", "t1", kind="comment", comment="y" * 100_001)),
            json.dumps(feedback("f8", "t2", kind="thumbs_up")),
            "null",
            "42",
        ],
    )
    result = run_day(DAY, INGEST)
    assert result.success
    quarantined = rows(
        env, "SELECT source, line, error FROM quarantine WHERE ds = ? ORDER BY source, line", [DAY]
    )
    by_line = {(s, line): err for s, line, err in quarantined}
    assert by_line[("traces", 3)] == "not valid JSON"
    assert by_line[("traces", 4)] == 'field "messages" must be a list, got a string'
    assert by_line[("traces", 5)] == 'missing required field "model_version"'
    assert by_line[("traces", 6)].startswith("oversize text")
    assert by_line[("feedback", 2)] == "not valid JSON"
    assert by_line[("feedback", 3)] == "line is a list, not a JSON object"
    assert by_line[("feedback", 4)] == 'missing required field "feedback_id"'
    assert by_line[("feedback", 5)] == 'field "score" must be a number, got a string'
    assert by_line[("feedback", 6)].startswith("unknown kind star")
    assert by_line[("feedback", 7)] == 'unparseable timestamp "last tuesday"'
    assert by_line[("feedback", 8)].startswith("invalid UTF-8 bytes")
    assert by_line[("feedback", 9)].startswith('oversize text: "comment" has 100001 characters')
    assert by_line[("feedback", 11)] == "line is null, not a JSON object"
    assert by_line[("feedback", 12)] == "line is a number, not a JSON object"
    assert len(quarantined) == 14
    assert rows(env, "SELECT trace_id FROM traces ORDER BY 1") == [("t1",), ("t2",)]
    assert rows(env, "SELECT feedback_id FROM feedback_events ORDER BY 1") == [("f1",), ("f8",)]
    # The raw text is kept (truncated) so a person can see what was wrong.
    raw = rows(env, "SELECT max(length(raw)) FROM quarantine")[0][0]
    assert 0 < raw <= 2000
    by_reason = result.asset_materializations_for_node("landing_ingest")
    quarantine_md = next(m for m in by_reason if m.asset_key.path == ["quarantine"]).metadata
    assert quarantine_md["by_reason"].data["bad timestamp"] == 1
    assert quarantine_md["dagster/row_count"].value == 14


def test_gzip_and_parquet_inputs_load(pipeline_env):
    env = pipeline_env
    write(env, "traces", DAY, "a.jsonl.gz", [trace("t1"), trace("t2")], gz=True)
    folder = env.landing / "feedback" / f"dt={DAY}"
    folder.mkdir(parents=True)
    table = pa.Table.from_pylist([feedback("f1", "t1"), feedback("f2", "t2", kind="copy")])
    pq.write_table(table, folder / "part.parquet")
    assert run_day(DAY, INGEST).success
    assert rows(env, "SELECT count(*) FROM traces")[0][0] == 2
    assert rows(env, "SELECT feedback_id, kind, trace_found FROM feedback_events ORDER BY 1") == [
        ("f1", "thumbs_down", True),
        ("f2", "copy", True),
    ]


def test_redelivered_ids_are_one_event_and_a_rerun_changes_nothing(pipeline_env):
    env = pipeline_env
    write(env, "traces", PREV, "a.jsonl", [trace("t0", session="s0", ts="2026-11-19T10:00:00Z")])
    write(
        env, "feedback", PREV, "a.jsonl", [feedback("f0", "t0", timestamp="2026-11-19T10:01:00Z")]
    )
    write(env, "traces", DAY, "a.jsonl", [trace("t1"), trace("t1")])
    write(env, "traces", DAY, "b.jsonl", [trace("t1"), trace("t0", session="s0")])
    write(env, "feedback", DAY, "a.jsonl", [feedback("f1", "t1"), feedback("f1", "t1")])
    write(env, "feedback", DAY, "b.jsonl.gz", [feedback("f1", "t1"), feedback("f0", "t0")], gz=True)
    assert run_day(PREV, INGEST).success
    assert run_day(DAY, INGEST).success
    first = {
        t: rows(env, f"SELECT * FROM {t} ORDER BY ALL")
        for t in ("traces", "feedback_events", "quarantine")
    }
    assert rows(env, "SELECT ds::VARCHAR, feedback_id FROM feedback_events ORDER BY 1") == [
        (PREV, "f0"),
        (DAY, "f1"),
    ]
    assert rows(env, "SELECT ds::VARCHAR, trace_id FROM traces ORDER BY 1") == [
        (PREV, "t0"),
        (DAY, "t1"),
    ]
    assert run_day(DAY, INGEST).success
    assert run_day(PREV, INGEST).success
    again = {t: rows(env, f"SELECT * FROM {t} ORDER BY ALL") for t in first}
    assert again == first


def test_an_id_redelivered_with_other_content_is_quarantined_not_dropped(pipeline_env):
    env = pipeline_env
    write(env, "traces", PREV, "a.jsonl", [trace("t0", ts="2026-11-19T10:00:00Z")])
    write(env, "feedback", PREV, "a.jsonl", [feedback("f0", "t0", comment="first words")])
    same, other = feedback("f1", "t1", comment="same"), feedback("f1", "t1", comment="changed")
    write(env, "traces", DAY, "a.jsonl", [trace("t1"), trace("t1")])  # identical: no record
    write(env, "feedback", DAY, "a.jsonl", [same, same, other])
    # Yesterday's ids again: t0 as it was (dropped quietly), f0 with another comment.
    write(env, "traces", DAY, "b.jsonl", [trace("t0", ts="2026-11-19T10:00:00Z")])
    write(env, "feedback", DAY, "b.jsonl", [feedback("f0", "t0", comment="second words")])
    assert run_day(PREV, INGEST).success
    assert run_day(DAY, INGEST).success
    got = rows(env, "SELECT source, file, line, error, raw FROM quarantine WHERE ds = ?", [DAY])
    assert [(s, f.rsplit("/", 1)[-1], n) for s, f, n, *_ in sorted(got)] == [
        ("feedback", "a.jsonl", 3),
        ("feedback", "b.jsonl", 1),
    ]
    errors = {line: error for _, _, line, error, _ in got}
    assert "feedback_id f1, first delivered in" in errors[3] and "line 1" in errors[3]
    assert errors[1].startswith("id re-delivered with different content (feedback_id f0")
    assert f"loaded on {PREV}" in errors[1]
    assert all("alice.raw" not in raw for *_, raw in got)
    assert {c for (c,) in rows(env, "SELECT comment FROM feedback_events")} == {
        "first words",
        "same",
    }
    before = sorted(rows(env, "SELECT * FROM quarantine WHERE ds = ?", [DAY]))
    assert run_day(DAY, INGEST).success  # a rerun records the same, once
    assert sorted(rows(env, "SELECT * FROM quarantine WHERE ds = ?", [DAY])) == before


def test_quarantined_lines_keep_no_raw_user_id():
    from feedback_pipelines.privacy import pseudonymize, pseudonymize_raw_ids

    line = '{"user_id": "u_999999", "trace_id": 7, "other_user_id": 12, "user_id" : 42 '
    out = pseudonymize_raw_ids(line, "k")
    assert "u_999999" not in out and ": 42" not in out
    assert f'"user_id": "{pseudonymize("u_999999", "k")}"' in out
    assert f'"user_id" : "{pseudonymize("42", "k")}"' in out
    assert '"trace_id": 7' in out


def test_feedback_joins_an_earlier_days_trace_and_unknown_traces_are_kept(pipeline_env):
    env = pipeline_env
    write(
        env,
        "traces",
        PREV,
        "a.jsonl",
        [trace("old", session="s0", ts="2026-11-19T23:59:00Z", model_version="nimbus-0")],
    )
    write(env, "traces", DAY, "a.jsonl", [trace("t1")])
    write(
        env,
        "feedback",
        DAY,
        "a.jsonl",
        [
            feedback("late", "old", reason="incomplete"),
            feedback("f1", "t1", kind="correction", correction="the right answer"),
            feedback("orphan", "nobody"),
        ],
    )
    assert run_day(PREV, INGEST).success
    result = run_day(DAY, INGEST)
    assert result.success
    got = rows(
        env,
        "SELECT feedback_id, model_version, request, trace_found, trace_ds::VARCHAR, "
        "is_negative FROM feedback_events WHERE ds = ? ORDER BY 1",
        [DAY],
    )
    assert got == [
        ("f1", "nimbus-1", "question for t1", True, DAY, True),
        ("late", "nimbus-0", "question for old", True, PREV, True),
        ("orphan", None, None, False, None, True),
    ]
    check = check_result(result, "traces_found")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN


def test_abandoned_sessions_and_regenerations_are_derived(pipeline_env):
    env = pipeline_env
    write(
        env,
        "traces",
        DAY,
        "a.jsonl",
        [
            trace("a1", session="A", ts="2026-11-20T08:00:00Z"),
            trace(
                "a2", session="A", ts="2026-11-20T08:01:00Z"
            ),  # last turn, no positive: abandoned
            trace(
                "b1", session="B", ts="2026-11-20T08:00:00Z"
            ),  # last turn, thumbs up: not abandoned
            trace(
                "c1",
                session="C",
                ts="2026-11-20T08:00:00Z",
                messages=[{"role": "user", "content": "same question"}],
            ),
            trace(
                "c2",
                session="C",
                ts="2026-11-20T08:01:00Z",
                messages=[{"role": "user", "content": "same question"}],
            ),
            trace("c3", session="C", ts="2026-11-20T08:02:00Z"),
        ],
    )
    write(
        env,
        "feedback",
        DAY,
        "a.jsonl",
        [
            feedback("fb", "b1", kind="thumbs_up"),
            feedback("fc", "c3", kind="copy"),
            feedback("r1", "a1", kind="regenerate"),
        ],
    )
    assert run_day(DAY, INGEST).success
    got = rows(env, "SELECT trace_id, turn_index, abandoned, regenerations FROM traces ORDER BY 1")
    assert got == [
        ("a1", 0, False, 1),
        ("a2", 1, True, 0),
        ("b1", 0, False, 0),
        ("c1", 0, False, 1),
        ("c2", 1, False, 0),
        ("c3", 2, False, 0),
    ]


def test_no_raw_user_id_or_pii_reaches_the_warehouse(pipeline_env):
    env = pipeline_env
    pii = [
        "jane.doe@example.com",
        "+1 415-555-0134",
        "4111 1111 1111 1111",
        "sk-proj-abcdefghijklmnopqrstuvwx",
        "192.168.10.23",
        "AKIAIOSFODNN7EXAMPLE",
    ]
    text = "contact " + ", ".join(pii) + "; order no 4111 1111 1111 1112"
    write(
        env,
        "traces",
        DAY,
        "a.jsonl",
        [
            trace(
                "t1",
                messages=[{"role": "user", "content": text}],
                response=f"noted {pii[0]}",
                user_id="raw-user-77@corp.example",
            ),
        ],
    )
    write(
        env,
        "feedback",
        DAY,
        "a.jsonl",
        [
            feedback(
                "f1",
                "t1",
                kind="correction",
                correction=text,
                comment=text,
                user_id="raw-user-77@corp.example",
            ),
            "{broken " + text,
        ],
    )
    assert run_day(DAY, INGEST).success
    con = env.connect()
    try:
        dump = "\n".join(
            str(r)
            for t in ("traces", "feedback_events", "quarantine")
            for r in con.execute(f"SELECT * FROM {t}").fetchall()
        )
    finally:
        con.close()
    for secret in [*pii, "raw-user-77", "alice.raw"]:
        assert secret not in dump, secret
    for placeholder in ("<EMAIL>", "<PHONE>", "<CARD>", "<API_KEY>", "<IP>"):
        assert placeholder in dump
    assert "4111 1111 1111 1112" in dump  # fails Luhn: an order number, kept
    users = rows(
        env,
        "SELECT DISTINCT user_id FROM traces UNION SELECT DISTINCT user_id FROM feedback_events",
    )
    assert len(users) == 1 and users[0][0].startswith("u_")


def test_blocking_check_fails_when_every_line_is_quarantined(pipeline_env):
    env = pipeline_env
    write(env, "traces", DAY, "a.jsonl", ["garbage", "more garbage"])
    write(env, "feedback", DAY, "a.jsonl", ["[]"])
    result = run_day(DAY, INGEST)
    usable = check_result(result, "input_usable")
    assert not usable.passed and usable.severity == dg.AssetCheckSeverity.ERROR
    spec = next(s for s in load_check_specs() if s.name == "input_usable")
    assert spec.blocking
    rate = check_result(result, "quarantine_rate")
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
    assert rate.metadata["rate"].value == 1.0


def test_a_day_without_input_is_not_an_error(pipeline_env):
    result = run_day(DAY, INGEST)
    assert result.success
    assert check_result(result, "input_usable").passed
    assert check_result(result, "quarantine_rate").passed


def load_check_specs():
    from feedback_pipelines.defs.ingest import landing_ingest

    return list(landing_ingest.check_specs)


def test_every_input_file_is_audited_with_late_arrivals_marked(pipeline_env):
    import os

    env = pipeline_env
    on_time = write(env, "traces", DAY, "a.jsonl", [trace("t1"), "bad line"])
    late = write(env, "feedback", DAY, "late.jsonl", [feedback("f1", "t1")])
    from datetime import datetime

    day = datetime(2026, 11, 20, tzinfo=UTC).timestamp()
    os.utime(on_time, (day + 3600, day + 3600))
    os.utime(late, (day + 3 * 86400, day + 3 * 86400))
    assert run_day(DAY, INGEST).success
    got = rows(env, "SELECT source, file, lines, quarantined, late FROM ingest_files ORDER BY 1")
    assert got == [
        ("feedback", "feedback/dt=2026-11-20/late.jsonl", 1, 0, True),
        ("traces", "traces/dt=2026-11-20/a.jsonl", 2, 1, False),
    ]


def test_a_warehouse_of_an_earlier_version_keeps_its_rows_and_loses_the_copied_texts(
    pipeline_env,
):
    # feedback_events once held a copy of its trace's response and messages.
    env = pipeline_env
    env.warehouse.parent.mkdir(parents=True, exist_ok=True)
    con = env.connect(read_only=False)
    con.execute(
        "CREATE TABLE feedback_events (ds DATE, feedback_id VARCHAR, trace_id VARCHAR, "
        "session_id VARCHAR, user_id VARCHAR, timestamp TIMESTAMP, kind VARCHAR, "
        "reason VARCHAR, score DOUBLE, comment VARCHAR, correction VARCHAR, "
        "user_role VARCHAR, metadata VARCHAR, model_version VARCHAR, prompt_version VARCHAR, "
        "request VARCHAR, response VARCHAR, messages VARCHAR, trace_found BOOLEAN, "
        "trace_ds DATE, is_negative BOOLEAN, file VARCHAR)"
    )
    con.execute(
        "INSERT INTO feedback_events (ds, feedback_id, kind, response, messages) "
        "VALUES (?, 'kept', 'thumbs_up', 'old copy', '[]')",
        [PREV],
    )
    con.close()
    write(env, "traces", DAY, "a.jsonl", [trace("t1")])
    write(env, "feedback", DAY, "a.jsonl", [feedback("f1", "t1")])
    assert run_day(DAY, INGEST).success
    con = env.connect()
    try:
        columns = {
            c
            for (c,) in con.execute(
                "SELECT name FROM pragma_table_info('feedback_events')"
            ).fetchall()
        }
        assert not {"response", "messages"} & columns
        events = read_events(con, PREV, DAY).set_index("feedback_id")
    finally:
        con.close()
    assert sorted(events.index) == ["f1", "kept"]
    assert events.loc["f1", "response"] == "answer t1"
    assert json.loads(events.loc["f1", "messages"])[-1]["content"] == "question for t1"


def test_each_step_is_timed_and_reported_with_its_count(pipeline_env):
    env = pipeline_env
    write(env, "traces", DAY, "a.jsonl", [trace("t1"), trace("t2"), "not json"])
    write(env, "feedback", DAY, "a.jsonl", [feedback("f1", "t1")])
    env.warehouse.parent.mkdir(parents=True, exist_ok=True)
    lines: list[str] = []
    with duckdb.connect(str(env.warehouse)) as con:
        stats = ingest_day(con, env.landing, DAY, "key", progress=lines.append)
    steps = [
        "prepare",
        "check traces",
        "check feedback",
        "write quarantine",
        "write traces",
        "write feedback",
        "audit files",
        "count",
    ]
    assert list(stats.phases) == steps
    assert 0 <= sum(stats.phases.values()) <= stats.seconds
    assert [line.split(" took ")[0] for line in lines] == [f"{DAY}: {s}" for s in steps]
    assert ": 3 lines, " in lines[1] and ": 1 lines, " in lines[2]
    assert not any(": " in line.split(" took ")[1] for line in lines[3:])
