"""The ingest's fast path agrees with the full check, and JSON text is redacted string by string.

The fast path accepts most lines with a typed parse and a type fingerprint; the full check names
the first problem of the rest. They must never disagree on a line the fast path accepts, and
both must store the same values. These tests run both on the same odd lines, directly on DuckDB.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from feedback_pipelines import privacy
from feedback_pipelines.ingest import day as ingest
from feedback_pipelines.ingest.records import FEEDBACK_FIELDS, TRACE_FIELDS

DAY = "2026-11-20"


def trace(tid: str, **kw) -> dict:
    rec = {
        "trace_id": tid,
        "session_id": "s1",
        "user_id": "alice@corp.example",
        "timestamp": "2026-11-20T09:00:00Z",
        "model_version": "m1",
        "prompt_version": "p1",
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "q"}],
        "response": "a",
        "latency_ms": 12.5,
        "input_tokens": 3,
        "output_tokens": 4,
        "metadata": {"user_role": "analyst", "k": [1, 2.50]},
    }
    rec.update(kw)
    return rec


def feedback(fid: str, **kw) -> dict:
    rec = {
        "feedback_id": fid,
        "trace_id": "t1",
        "timestamp": "2026-11-20T09:05:00Z",
        "kind": "thumbs_down",
    }
    rec.update(kw)
    return rec


TRACE_LINES = [
    json.dumps(trace(f"t{i}", **kw))
    for i, kw in enumerate(
        [
            {},
            {"latency_ms": "12"},
            {"latency_ms": None},
            {"latency_ms": True},
            {"input_tokens": 2.5},
            {"input_tokens": 12345678901234567890},
            {"session_id": 5},
            {"user_id": None},
            {"metadata": None},
            {"metadata": [1]},
            {"metadata": {"user_role": 5}},
            {"messages": []},
            {"messages": ["hi"]},
            {"messages": [None]},
            {"messages": [{"role": "user"}]},
            {"messages": [{"role": "user", "content": None}]},
            {"messages": [{"role": "user", "content": 5}]},
            {"messages": [{"content": "b", "role": "user"}]},  # valid, another key order
            {"messages": [{"content": "b\nc", "role": "user"}]},  # the same, with an escape
            {"messages": [{"role": "user", "content": "x", "name": "n"}]},  # valid, extra key
            {"messages": [{"role": "assistant", "content": "no user turn"}]},
            {"messages": [{"role": "user", "content": "x" * 49_990}]},
            {"messages": [{"role": "user", "content": "\n" * 24_999}]},  # 50,000 as JSON
            {"messages": [{"role": "user", "content": "\n" * 25_000}]},  # 50,002 as JSON
            {"response": "r" * 50_001},
            {"timestamp": "2026-11-20 10:00:00"},
            {"timestamp": "2026-11-20T10:00:00+02:00"},
            {"timestamp": "nope"},
            {"trace_id": None},
            {"model_version": 7},
        ]
    )
] + [
    '{"trace_id":"dup","trace_id":"dup2","timestamp":"2026-11-20T09:00:00Z",'
    '"model_version":"m","messages":[{"role":"user","content":"c"}],"response":"r"}',
    '{"trace_id":"esc","timestamp":"2026-11-20T09:00:00Z","model_version":"m",'
    '"messages":[{"role":"u\\u0073er","content":"\\u00e9\\t"}],"response":"r","latency_ms":1e400}',
    '{"trace_id":"nan","timestamp":"2026-11-20T09:00:00Z","model_version":"m",'
    '"messages":[{"role":"user","content":"c"}],"response":"r","latency_ms":NaN}',
    "not json",
    "[1, 2]",
    "{}",
]

FEEDBACK_LINES = [
    json.dumps(feedback(f"f{i}", **kw))
    for i, kw in enumerate(
        [
            {},
            {"kind": "rating", "score": 5},
            {"kind": "rating", "score": "5"},
            {"kind": "rating", "score": 0},
            {"kind": "rating", "score": 1e400},
            {"kind": "rating", "score": True},
            {"kind": "correction", "correction": "  "},
            {"kind": "correction", "correction": "fixed"},
            {"kind": "comment", "comment": "c" * 50_001},
            {"reason": "tone"},
            {"reason": "nope"},
            {"reason": 5},
            {"kind": "star"},
            {"kind": None},
            {"metadata": {"user_role": "admin"}},
            {"metadata": "x"},
            {"timestamp": "2026-11-20"},
        ]
    )
] + [
    # A number past DOUBLE's range: the fast path leaves it to the full check, which loads it.
    '{"feedback_id":"big","trace_id":"t1","timestamp":"2026-11-20T09:05:00Z",'
    '"kind":"thumbs_down","score":1e400}',
]


@pytest.fixture
def conn() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    ingest._register_udfs(con)
    yield con
    con.close()


def both_paths(con: duckdb.DuckDBPyConnection, source: str, lines: list[str]) -> list[tuple]:
    """(line, pending, fast-path row, full-check row) for every line; rows as dicts."""
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    n = len(lines)
    con.register(
        "raw_lines",
        pa.table(
            {
                "file": pa.array(["f"] * n),
                "line": pa.array(range(1, n + 1), pa.int64()),
                "text": pa.array(lines),
                "error": pa.array([None] * n, pa.string()),
            }
        ),
    )
    names = [name for name, _ in ingest._checked_columns(source) if name != "pending"]
    cols = ", ".join(names)
    fast = con.execute(
        f"SELECT pending, {cols} FROM ({ingest._fast_sql(source, fields)}) ORDER BY line"
    ).fetchall()
    con.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {ingest._parse_sql(fields, 'raw_lines')}")
    typed = ingest._typed_sql(source, ingest._check_sql(source, fields))
    full = con.execute(f"SELECT {cols} FROM ({typed}) ORDER BY line").fetchall()
    return [
        (lines[i], f[0], dict(zip(names, f[1:], strict=True)), dict(zip(names, g, strict=True)))
        for i, (f, g) in enumerate(zip(fast, full, strict=True))
    ]


@pytest.mark.parametrize("source, lines", [("traces", TRACE_LINES), ("feedback", FEEDBACK_LINES)])
def test_a_line_the_fast_path_accepts_is_valid_with_the_same_values(conn, source, lines):
    rows = both_paths(conn, source, lines)
    accepted = [(line, fast, full) for line, pending, fast, full in rows if not pending]
    for line, fast, full in accepted:
        assert fast["error"] is None and full["error"] is None, line
        assert fast == full, line  # the same typed, redacted values
    # Both kinds of lines are exercised: accepted ones, and ones left to the full check,
    # which finds some valid after all (another key order) and names the problem of others.
    pending = {line: full["error"] for line, pending, _, full in rows if pending}
    assert accepted and pending
    assert any(error is None for error in pending.values())
    assert any(error is not None for error in pending.values())


def test_the_full_check_names_what_the_fast_path_left(conn):
    rows = both_paths(conn, "traces", TRACE_LINES)
    errors = {line: full["error"] for line, _, _, full in rows}
    by_id = {full["line"]: full["error"] for _, _, _, full in rows}
    assert by_id[2] == 'field "latency_ms" must be a number, got a string'
    assert by_id[17] == "messages must be a non-empty list of {role, content} strings"
    assert by_id[18] is None  # {"content", "role"}: another order, still valid
    assert by_id[19] is None  # with an escape too
    assert by_id[20] is None  # an extra key is kept
    assert by_id[23] is None and by_id[24].startswith("oversize text")
    assert errors["not json"] == "not valid JSON"
    assert errors["[1, 2]"] == "line is a list, not a JSON object"


def test_messages_in_another_shape_keep_every_key_and_are_redacted(conn):
    line = json.dumps(
        trace(
            "x",
            messages=[
                {"role": "user", "content": "mail jane@ex.org", "name": "bob@ex.org"},
                {"content": "call +1 415-555-0134", "role": "user"},
            ],
        )
    )
    ((_, pending, _, full),) = both_paths(conn, "traces", [line])
    assert pending  # not the contract's shape: the full check stores it
    assert full["error"] is None
    assert json.loads(full["messages"]) == [
        {"role": "user", "content": "mail <EMAIL>", "name": "<EMAIL>"},
        {"content": "call <PHONE>", "role": "user"},
    ]
    assert full["request"] == "call <PHONE>"


def test_pii_after_an_escape_is_redacted_and_json_stays_valid(tmp_path: Path):
    """In JSON text "\\n4111 ..." has no word boundary before the card: decode first."""
    pii = {
        "card": "4111 1111 1111 1111",
        "key": "sk-proj-abcdefghijklmnopqrstuvwx",
        "ip": "192.168.10.23",
        "phone": "415-555-0134",
    }
    text = "hello\n" + "\n".join(pii.values()) + "\nmail\njane@ex.org"
    landing = tmp_path / "landing"
    folder = landing / "traces" / f"dt={DAY}"
    folder.mkdir(parents=True)
    lines = [
        trace("t1", messages=[{"role": "user", "content": text}], metadata={"note": text}),
        trace("t2", messages=[{"role": "user", "content": "x"}], response=text),
    ]
    body = (
        "\n".join(json.dumps(r) for r in lines)
        + "\n"
        + '{"broken": "'
        + text.replace("\n", "\\n")
        + "\n"
    )
    (folder / "a.jsonl").write_text(body)
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    stats = ingest.ingest_day(con, landing, DAY, "k")
    assert stats.loaded["traces"] == 2 and stats.quarantined["traces"] == 1
    rows = con.execute("SELECT messages, request, response, metadata FROM traces").fetchall()
    raw = con.execute("SELECT raw FROM quarantine").fetchall()[0][0]
    con.close()
    dump = "\n".join(str(v) for r in rows for v in r) + raw
    for secret in [*pii.values(), "jane@ex.org"]:
        assert secret not in dump, secret
    for messages, _, _, metadata in rows:
        json.loads(messages)  # still valid JSON
        json.loads(metadata)
    content = json.loads(rows[0][0])[0]["content"]
    assert content == "hello\n<CARD>\n<API_KEY>\n<IP>\n<PHONE>\nmail\n<EMAIL>"


def test_redact_json_decodes_each_string_and_keeps_valid_json():
    doc = json.dumps({"a\nb@c.io": "x\n4111 1111 1111 1111", "n": 4111111111111111, "k": [1, 2.5]})
    out = privacy.redact_json(doc)
    assert json.loads(out) == {"a\n<EMAIL>": "x\n<CARD>", "n": "<CARD>", "k": [1, 2.5]}
    clean = '{"a":"no pii here","b":[1,2]}'
    assert privacy.redact_json(clean) is clean
    # A fragment (a truncated quarantine line) is redacted as well as it can be.
    assert privacy.redact_json('{"a": "x\\n4111 1111 1111 1111') == '{"a": "x\\n<CARD>'
    assert privacy.redact_json("{broken jane@ex.org") == "{broken <EMAIL>"
    assert privacy.redact_json(None) is None


def test_the_pii_gate_sees_pii_right_after_an_escape():
    # As flat text, "\n4111..." has no word boundary before the card: the gate must decode.
    doc = json.dumps({"m": "see\n4111 1111 1111 1111", "k": "token\nsk-abcdefghijklmnop1234"})
    assert "4111 1111 1111 1111" in privacy.find_pii([doc])
    assert "sk-abcdefghijklmnop1234" in privacy.find_pii([doc])
    assert privacy.find_pii([privacy.redact_json(doc)]) == []
    assert privacy.find_pii(['{"m": "a\\nplain line"}', "no json \\ here", None]) == []
