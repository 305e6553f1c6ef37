"""Importers of the real public sets: each count checked against the files, read independently."""

from __future__ import annotations

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from feedback_pipelines.cli.main import main
from feedback_pipelines.sources.common import day_of
from feedback_pipelines.sources.public_sets import (
    OASST_HUMAN_VERSION,
    convert_feedbackqa,
    convert_lamp,
    convert_llmfao,
    convert_oasst,
    import_public_set,
    lamp_reason,
)
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA

REAL = TEST_DATA / "real"
END = date(2026, 11, 20)


def oasst_messages() -> list[dict]:
    out = []

    def walk(m):
        out.append(m)
        for r in m.get("replies") or []:
            walk(r)

    for line in (REAL / "oasst" / "en_100_tree.jsonl").read_text().splitlines():
        walk(json.loads(line)["prompt"])
    return out


def test_oasst_counts_and_shapes():
    traces, feedback, result = convert_oasst(REAL / "oasst", END)
    messages = oasst_messages()
    answers = [m for m in messages if m["role"] == "assistant" and not m["deleted"]]
    votes = Counter()
    for m in answers:
        for emoji in ("+1", "-1", "red_flag"):
            votes[emoji] += (m.get("emojis") or {}).get(emoji, 0)
    assert len(traces) == len(answers) == result.read["assistant messages"] == 687
    ranked = [t for t in traces if t["metadata"].get("rank") is not None]
    assert len(ranked) == sum(m.get("rank") is not None for m in answers)
    assert result.read["ranked answers"] == len(ranked) == 641
    assert result.read["messages"] == len(messages) == 1167
    assert Counter(f["kind"] for f in feedback) == {
        "thumbs_up": votes["+1"],
        "thumbs_down": votes["-1"] + votes["red_flag"],
    }
    assert sum(f["reason"] == "unsafe" for f in feedback) == votes["red_flag"] == 6
    assert {t["model_version"] for t in traces} == {OASST_HUMAN_VERSION, "chip20b"}
    by_id = {t["trace_id"]: t for t in traces}
    assert all(f["trace_id"] in by_id for f in feedback)
    # The trace of a second-level answer carries the whole path as its conversation.
    deep = max(traces, key=lambda t: len(t["messages"]))
    assert [m["role"] for m in deep["messages"]][:3] == ["user", "assistant", "user"]
    assert deep["messages"][-1]["role"] == "user"
    # A trace and the feedback on it share a day and a session.
    for f in feedback[:200]:
        t = by_id[f["trace_id"]]
        assert day_of(f["timestamp"]) == day_of(t["timestamp"])
        assert f["session_id"] == t["session_id"]


def test_feedbackqa_counts_and_scores():
    traces, feedback, result = convert_feedbackqa(REAL / "feedbackqa", END)
    items = {
        p.name: json.loads(p.read_text()) for p in sorted((REAL / "feedbackqa").glob("*.json"))
    }
    n_items = sum(len(v) for v in items.values())
    labels = Counter(r for v in items.values() for item in v for r in item["rating"])
    assert len(traces) == n_items == result.read["items"] == 870
    assert len(feedback) == sum(labels.values()) == result.read["ratings"] == 1740
    assert Counter(f["metadata"]["rating_label"] for f in feedback) == labels
    assert {f["score"] for f in feedback} == {5.0, 4.0, 2.0, 1.0}
    assert {t["model_version"] for t in traces} == {
        "feedbackqa-cdc",
        "feedbackqa-australia",
        "feedbackqa-who",
    }
    first = items["Australia_feedback_valid.json"][0]
    [t] = [t for t in traces if t["messages"][0]["content"] == first["question"]][:1]
    comments = [f["comment"] for f in feedback if f["trace_id"] == t["trace_id"]]
    assert comments == [c.strip() for c in first["feedback"]]
    assert first["passage"]["reference"]["section_content"] in t["response"]


def test_lamp_counts_and_corrections():
    traces, feedback, result = convert_lamp(REAL / "lamp", END)
    edits = [
        e for p in sorted((REAL / "lamp").glob("W*_edits.json")) for e in json.loads(p.read_text())
    ]
    paragraphs = {(e["instruction"], e["preedit"], e["source"]) for e in edits}
    assert len(feedback) == len(edits) == result.read["edits"] == 150
    assert len(traces) == len(paragraphs) == 54
    assert {t["model_version"] for t in traces} == {e["source"] for e in edits}
    assert {f["user_id"] for f in feedback} == {
        "lamp-writer-W3",
        "lamp-writer-W12",
        "lamp-writer-W16",
    }
    by_item = {f["metadata"]["item"]: f for f in feedback}
    for e in edits:
        f = by_item[e["id"]]
        assert f["kind"] == "correction" and f["correction"] == e["postedit"]
    by_trace = Counter(f["trace_id"] for f in feedback)
    assert max(by_trace.values()) == 3  # three writers edited the same paragraph


def test_lamp_reason_mapping():
    assert lamp_reason(["Cliche", "Cliche", "Poor Sentence Structure"]) == "tone"
    assert lamp_reason(["Unnecessary/ Redundant Exposition"]) == "too_long"
    assert lamp_reason(["Lack of Specificity and Detail"]) == "incomplete"
    assert lamp_reason(["Tense Inconsistency"]) == "other"
    assert lamp_reason([]) == "other"


def test_llmfao_counts_and_votes():
    traces, feedback, result = convert_llmfao(REAL / "llmfao", END)
    assert (result.read["responses"], result.read["votes"]) == (1133, 8931)
    results = [json.loads(x) for x in (REAL / "llmfao" / "results.jsonl").read_text().splitlines()]
    with (REAL / "llmfao" / "crowd-comparisons.csv").open() as fh:
        votes = list(csv.DictReader(fh))
    winners = Counter(v["winner"] for v in votes)
    assert len(traces) == len(results) == 1133
    assert len({t["model_version"] for t in traces}) == 70
    assert len(feedback) == 2 * len(votes) == 2 * 8931
    kinds = Counter(f["kind"] for f in feedback)
    decisive = winners["left"] + winners["right"]
    assert kinds == {"thumbs_up": decisive, "thumbs_down": decisive, "rating": 2 * winners["tie"]}
    by_id = {t["trace_id"]: t for t in traces}
    # The first vote: model_x (left) vs model_y, linked both ways.
    up, other = feedback[0], feedback[1]
    pref = up["metadata"]["preference"]
    assert pref == other["metadata"]["preference"]
    assert pref["pair"] == [up["trace_id"], other["trace_id"]]
    first = votes[0]
    assert by_id[up["trace_id"]]["metadata"]["model_name"] == first["left"]
    assert by_id[other["trace_id"]]["metadata"]["model_name"] == first["right"]
    right_win = next(i for i, v in enumerate(votes) if v["winner"] == "right")
    a, b = feedback[2 * right_win], feedback[2 * right_win + 1]
    assert (a["kind"], b["kind"]) == ("thumbs_down", "thumbs_up")
    assert a["metadata"]["preference"]["chosen_trace_id"] == b["trace_id"]
    assert all(f["trace_id"] in by_id for f in feedback)  # every vote's answers are known


def test_cli_spreads_days_deterministically(tmp_path: Path, capsys):
    args = ["import", "lamp", str(REAL / "lamp"), "--end", "2026-11-20", "--days", "5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "wrote 54 traces and 150 feedback records" in out
    days = sorted(p.name for p in (tmp_path / "a" / "traces").iterdir())
    assert set(days) <= {f"dt=2026-11-{d}" for d in range(16, 21)} and len(days) > 1
    for source in ("traces", "feedback"):
        for a in sorted((tmp_path / "a" / source).rglob("*.jsonl")):
            b = tmp_path / "b" / a.relative_to(tmp_path / "a")
            assert a.read_bytes() == b.read_bytes()


def test_unmappable_rows_are_written_for_quarantine(tmp_path: Path):
    qa = json.loads((REAL / "feedbackqa" / "WHO_feedback_valid.json").read_text())[:3]
    qa[1]["rating"][0] = "Meh"
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "WHO_feedback_valid.json").write_text(json.dumps(qa))
    result = import_public_set("feedbackqa", tmp_path / "qa", tmp_path / "landing", END)
    assert result.passed_through["ratings with an unknown label"] == 1
    lines = (tmp_path / "landing" / "feedback" / f"dt={END}" / "feedbackqa.jsonl").read_text()
    bad = [json.loads(x) for x in lines.splitlines() if "Meh" in x]
    assert bad[0]["_import_error"] == "unknown FeedbackQA rating 'Meh'"
    assert "score" not in bad[0]  # ingest: "a rating needs a score from 1 to 5"


def test_unknown_set_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown public set"):
        import_public_set("sharegpt", tmp_path, tmp_path)
