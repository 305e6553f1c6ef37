"""Search and session lookup end to end on the generated week, through the functions and the CLI."""

import json
from collections import Counter

import pytest

from feedback_pipelines.cli.main import main
from feedback_pipelines.embedding import DEFAULT_EMBEDDER
from feedback_pipelines.recall.search import build_filter, search_feedback
from feedback_pipelines_tests.fixtures.semantic import DAYS, semantic_world

# Worded unlike any planted text: the phrasebank says "dose", "mg", "tablets", "ibuprofen"...
QUERIES = {
    "medication_dosage": "how many pills of a painkiller is it safe to swallow in one day",
    "sql_help": "my query against the tables gives an error about grouping columns",
    "travel_refund": "the airline cancelled my trip and I want my money back",
}


@pytest.fixture(scope="module")
def world(ingested_week, tmp_path_factory):
    return semantic_world(ingested_week, tmp_path_factory.mktemp("semantic"))


@pytest.fixture
def env(world, monkeypatch):
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(world.data))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    monkeypatch.setenv("FEEDBACK_EMBEDDER", DEFAULT_EMBEDDER)
    return world


@pytest.mark.parametrize("topic", sorted(QUERIES))
def test_query_finds_its_topic_only_in_the_version_asked(env, topic):
    topics = env.truth["feedback_topic"]
    versions = Counter(v["model_version"] for v in env.truth["versions"])
    assert versions
    version = "nimbus-2026-11"
    hits = search_feedback(QUERIES[topic], version=version, limit=10, path=env.store)
    assert len(hits) == 10
    assert {h.model_version for h in hits} == {version}
    on_topic = sum(topics.get(h.feedback_id) == topic for h in hits)
    assert on_topic >= 7, [(topics.get(h.feedback_id), h.text[:60]) for h in hits]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert [h.rank for h in hits] == list(range(1, 11))


def test_filters_narrow_the_hits(env):
    hits = search_feedback(
        QUERIES["sql_help"], kind=["thumbs_down", "correction"], since=DAYS[1], negative=True,
        limit=20, path=env.store,
    )  # fmt: skip
    assert hits
    assert all(h.kind in ("thumbs_down", "correction") for h in hits)
    assert all(h.ds == DAYS[1] and h.is_negative for h in hits)
    none = search_feedback(QUERIES["sql_help"], version="no-such-version", path=env.store)
    assert none == []


def test_build_filter_shapes_and_errors():
    assert build_filter(version="a,b", kind=["x"], cluster=[3]) == {
        "model_version": ["a", "b"],
        "kind": "x",
        "cluster_id": 3,
    }
    assert build_filter(since="2026-11-01") == {"ds": {"gte": "2026-11-01"}}
    with pytest.raises(ValueError, match="after"):
        build_filter(since="2026-11-05", until="2026-11-01")
    with pytest.raises(ValueError, match="empty"):
        search_feedback("   ", embedder="hash")


def test_cli_search_json_and_table(env, capsys):
    code = main(["search", QUERIES["travel_refund"], "--version", "nimbus-2026-11",
                 "--limit", "5", "--json"])  # fmt: skip
    assert code == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 5 and {h["model_version"] for h in hits} == {"nimbus-2026-11"}
    assert {"score", "ds", "model_version", "kind", "reason", "text", "feedback_id"} <= set(hits[0])
    assert main(["search", QUERIES["travel_refund"], "--limit", "3"]) == 0
    out = capsys.readouterr().out
    assert hits[0]["feedback_id"] in out or "feedback " in out
    assert out.count("feedback ") == 3


def test_cli_search_answers_each_line_of_stdin_on_one_open_store(env, capsys, monkeypatch):
    import io

    from feedback_pipelines import vectorstore

    opened = []
    real_open = vectorstore.open_store
    monkeypatch.setattr(
        vectorstore, "open_store", lambda *a, **k: opened.append(1) or real_open(*a, **k)
    )
    asked = [QUERIES["travel_refund"], QUERIES["sql_help"], QUERIES["medication_dosage"]]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{asked[0]}\n\n{asked[1]}\n{asked[2]}\n"))
    assert main(["search", "-", "--version", "nimbus-2026-11", "--limit", "4", "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == asked  # the blank line skipped
    assert len(opened) == 1
    for query, line in zip(asked, lines, strict=True):
        alone = search_feedback(query, version="nimbus-2026-11", limit=4, path=env.store)
        assert [h["feedback_id"] for h in line["hits"]] == [h.feedback_id for h in alone]

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{asked[0]}\n{asked[1]}\n"))
    assert main(["search", "-", "--limit", "2", "--since", "2026-11-30"]) == 0  # no such day
    out = capsys.readouterr().out
    assert out.count("== ") == 2 and out.count("no matching feedback") == 2

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{asked[0]}\n"))
    assert main(["search", "-", "--since", "2026-11-30", "--until", "2026-11-01"]) == 2
    assert "after" in capsys.readouterr().err  # a filter error, said once
    assert len(opened) == 2  # and said before the store is opened
    assert main(["search", "  "]) == 2 and "empty" in capsys.readouterr().err
    assert main(["search", "refund", "--limit", "0"]) == 2 and "limit" in capsys.readouterr().err
    assert len(opened) == 2  # neither opened the store


def test_cli_search_without_an_index_explains(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FEEDBACK_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    assert main(["search", "anything"]) == 2
    assert "run the pipeline" in capsys.readouterr().err


def test_session_by_feedback_trace_and_session_id(env, capsys):
    hits = search_feedback(QUERIES["sql_help"], limit=1, path=env.store)
    fid, tid, sid = hits[0].feedback_id, hits[0].trace_id, hits[0].session_id
    assert main(["session", fid, "--json"]) == 0
    session = json.loads(capsys.readouterr().out)
    assert session["session_id"] == sid and session["resolved_from"] == "feedback"
    turns = session["turns"]
    assert turns and [t["index"] for t in turns] == list(range(1, len(turns) + 1))
    stamps = [t["timestamp"] for t in turns]
    assert stamps == sorted(stamps)
    signals = [s["feedback_id"] for t in turns for s in t["signals"]]
    assert fid in signals
    mine = next(t for t in turns if t["trace_id"] == tid)
    assert mine["model_version"] and mine["latency_ms"] is not None
    assert main(["session", tid]) == 0
    text = capsys.readouterr().out
    assert f"session {sid}" in text and "turn 1" in text and fid in text and "ms" in text
    assert main(["session", sid, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resolved_from"] == "session"


def test_session_unknown_id(env, capsys):
    assert main(["session", "no-such-id"]) == 2
    assert "no session" in capsys.readouterr().err
