"""`feedback-pipelines session ID` for ids without a session: a trace alone, feedback alone.

Issue 16 (6): a trace that has no session id failed with "no session, trace or feedback with
id". Any trace or feedback id the warehouse knows must show: the trace as a one-turn
conversation, or the feedback on its own when its trace was never seen.
"""

from __future__ import annotations

import json

import duckdb
import pytest

from feedback_pipelines.cli.main import main
from feedback_pipelines.recall.sessions import load_session, render_session
from feedback_pipelines.schema import INGEST_DDL

TRACES = [
    # trace_id, session_id, timestamp, turn_index, request, response
    ("t-alone", None, "2026-11-20 08:00:00", None, "How do I export a CSV?", "Use File > Export."),
    ("t-s1-a", "s1", "2026-11-20 09:00:00", 0, "Hi, my invoice is wrong", "Which invoice?"),
    ("t-s1-b", "s1", "2026-11-20 09:01:00", 1, "The October one", "I have corrected it."),
]
FEEDBACK = [
    # feedback_id, trace_id, session_id, kind, score, comment
    ("f-alone", "t-alone", None, "thumbs_down", None, "That menu does not exist"),
    ("f-no-session", "t-s1-b", None, "thumbs_up", None, None),  # the trace has a session
    ("f-orphan", "t-never-seen", None, "rating", 1.0, "wrong"),
    ("f-s1", "t-s1-a", "s1", "thumbs_up", None, None),
]


@pytest.fixture
def warehouse(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute(INGEST_DDL)
        for tid, sid, ts, turn, request, response in TRACES:
            conn.execute(
                "INSERT INTO traces (ds, trace_id, session_id, timestamp, model_version, "
                "prompt_version, request, response, latency_ms, turn_index) "
                "VALUES ('2026-11-20', ?, ?, ?, 'nimbus-2026-11', 'support-v13', ?, ?, 850, ?)",
                [tid, sid, ts, request, response, turn],
            )
        for fid, tid, sid, kind, score, comment in FEEDBACK:
            conn.execute(
                "INSERT INTO feedback_events (ds, feedback_id, trace_id, session_id, timestamp, "
                "kind, score, comment, is_negative, trace_found) VALUES ('2026-11-20', ?, ?, ?, "
                "'2026-11-20 10:00:00', ?, ?, ?, ?, ?)",
                [fid, tid, sid, kind, score, comment, kind != "thumbs_up", tid != "t-never-seen"],
            )
    return path


def test_a_trace_without_a_session_shows_as_one_turn(warehouse, capsys):
    assert main(["session", "t-alone", "--warehouse", str(warehouse), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["session_id"] is None and shown["resolved_from"] == "trace"
    assert [t["trace_id"] for t in shown["turns"]] == ["t-alone"]
    assert [s["feedback_id"] for s in shown["turns"][0]["signals"]] == ["f-alone"]
    assert main(["session", "t-alone", "--warehouse", str(warehouse)]) == 0
    text = capsys.readouterr().out
    assert "no session" in text and "trace t-alone" in text and "f-alone" in text


def test_feedback_without_a_session_finds_its_trace_and_its_session(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        alone = load_session(conn, "f-alone")
        assert alone is not None and alone.session_id is None
        assert alone.resolved_from == "feedback" and [t.trace_id for t in alone.turns] == [
            "t-alone"
        ]
        # The event carries no session id, but its trace does: the whole session shows.
        via_trace = load_session(conn, "f-no-session")
        assert via_trace is not None and via_trace.session_id == "s1"
        assert [t.trace_id for t in via_trace.turns] == ["t-s1-a", "t-s1-b"]
        signals = {s.feedback_id for t in via_trace.turns for s in t.signals}
        assert signals == {"f-s1", "f-no-session"}


def test_feedback_on_an_unknown_trace_shows_on_its_own(warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        orphan = load_session(conn, "f-orphan")
        assert orphan is not None and orphan.session_id is None and orphan.turns == []
        assert [s.feedback_id for s in orphan.orphan_signals] == ["f-orphan"]
        text = render_session(orphan)
        assert "no session" in text and "f-orphan" in text and "not in the warehouse" in text
        # Session ids still resolve as before; unknown ids still say so.
        assert load_session(conn, "s1").resolved_from == "session"
        assert load_session(conn, "t-s1-b").session_id == "s1"
        assert load_session(conn, "no-such-id") is None


def test_unknown_id_still_explains(warehouse, capsys):
    assert main(["session", "no-such-id", "--warehouse", str(warehouse)]) == 2
    assert "no session, trace or feedback" in capsys.readouterr().err
