"""Rankings of answers become preference pairs: OpenAssistant's ranked siblings, read from traces.

A ranking of the answers to one conversation (traces sharing `metadata.sibling_group`, ordered
by `metadata.rank`) is a vote for each answer over each one ranked below it. Before, they sat
in trace metadata unused: OpenAssistant's 100 trees gave 59 pairs, all from emoji thumbs.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.reporting.load import _tuning
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing.day import read_events, read_rankings
from feedback_pipelines.routing.tuning import TuningSets, build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.sources.public_sets import import_public_set
from feedback_pipelines.tables import table_columns
from feedback_pipelines_tests.fixtures import tuning as td
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, PipelineEnv

pytestmark = [pytest.mark.slow]

END = date(2026, 11, 20)
RINGS = "Which planets have rings?"
DS = END.isoformat()


def file_rankings(path: Path) -> dict[str, tuple[str, int]]:
    """Each ranked answer's parent and rank, from the file: message id -> (parent, rank)."""
    out: dict[str, tuple[str, int]] = {}
    for line in path.read_text().splitlines():
        stack = [json.loads(line)["prompt"]]
        while stack:
            m = stack.pop()
            stack.extend(m.get("replies") or [])
            if m["role"] == "assistant" and not m.get("deleted") and m.get("rank") is not None:
                out[m["message_id"]] = (m["parent_id"], m["rank"])
    return out


def test_oasst_rankings_become_pairs_each_answer_over_the_ones_ranked_below(
    pipeline_env: PipelineEnv, tmp_path
):
    # The first 40 of the 100 trees (every answer is embedded for the duplicate gate: all 100
    # cost ~35 s here; on all 100 over 7 days, 754 votes and 718 pairs, README).
    trees = tmp_path / "oasst" / "en_100_tree.jsonl"
    trees.parent.mkdir()
    source = TEST_DATA / "real" / "oasst" / "en_100_tree.jsonl"
    trees.write_text("".join(source.read_text().splitlines(keepends=True)[:40]))
    result = import_public_set("oasst", trees.parent, pipeline_env.landing, END)
    resources = {"settings": PipelineConfig(), "warehouse": WarehouseResource()}
    assert dg.materialize([landing_ingest], partition_key=DS, resources=resources).success
    with pipeline_env.connect() as conn:
        events = read_events(conn, DS, DS, columns="*")
        rankings = read_rankings(conn, DS, DS)
        message_of = dict(
            conn.execute(
                "SELECT trace_id, json_extract_string(metadata, '$.message_id') FROM traces"
            ).fetchall()
        )
        feedback = conn.execute("SELECT count(*) FROM feedback_events").fetchone()[0]
    # Rankings make no feedback: the events are the emoji thumbs alone, as the importer wrote.
    assert feedback == len(events) == result.feedback
    ranks = file_rankings(trees)
    siblings: dict[str, list[int]] = {}
    for parent, rank in ranks.values():
        siblings.setdefault(parent, []).append(rank)
    implied = sum(a < b for r in siblings.values() for a in r for b in r)
    assert implied > 200  # each answer over each one ranked below it
    assert len(rankings) == 2 * implied and rankings["vote_id"].nunique() == implied

    sets = build_tuning_sets(
        events, vectors=TextVectorCache(OnnxEmbedder().embed), neighbours=exact_neighbours,
        ds=DS, window_start=DS, rankings=rankings, log=(logged := []).append,
    )  # fmt: skip
    assert sets.votes["votes"] == sets.votes["ranked"] == sets.votes["compared"] == implied
    assert any(f"{implied:,} of them from rankings" in line for line in logged)
    assert sets.votes["split"] == sets.votes["outvoted"] == 0  # one ranking per conversation

    pairs = [x for x in sets.of("preference") if x.source == "ranking"]
    for x in pairs:  # the file's own order: chosen ranked above rejected, among siblings
        chosen = ranks[message_of[x.paired.trace_id]]
        rejected = ranks[message_of[x.event.trace_id]]
        assert chosen[0] == rejected[0] and chosen[1] < rejected[1]
        lineage = f"rank:{chosen[0]}:{x.paired.trace_id}>{x.event.trace_id}"
        assert (x.event.feedback_id, x.paired.feedback_id) == (
            f"{lineage}:rejected", f"{lineage}:chosen",
        )  # fmt: skip
    # Every comparison implied is a pair or removed by a named gate (then the duplicate gate).
    removed = Counter(
        gate
        for (dataset, feedback_id), gate in sets.log.dropped.items()
        if dataset == "preference" and feedback_id.startswith("rank:")
    )
    deduplicated = removed.pop("exact_duplicate", 0) + removed.pop("near_duplicate", 0)
    assert sets.votes["pairs"] == implied - removed.total()
    assert len(pairs) == sets.votes["pairs"] - deduplicated > 0.8 * implied
    # No two answers are paired both ways: the emoji thumbs' pairs that the rankings put the
    # other way are dropped (on 7 days, 8 pairs of answers were exported both ways before).
    made = {(x.paired.trace_id, x.event.trace_id) for x in sets.of("preference") if x.paired}
    assert not {(loser, winner) for winner, loser in made} & made
    assert not any(x.event.feedback_id.startswith("rank:") for x in sets.of("unpaired"))

    export = tmp_path / "export"
    write_export(sets, export)
    assert validate_export(export)[1] == []
    card = json.loads((export / "datacard.json").read_text())
    assert card["sources"]["votes"]["ranked"] == implied
    assert card["label_balance"]["preference_by_source"]["train"]["ranking"] > 0
    md = (export / "datacard.md").read_text()
    assert f"{implied} of them implied by rankings of answers" in md
    assert any(x.startswith("a ranking of k answers") for x in card["known_limitations"])

    # The report counts the rankings' pairs as new on their later answer's day (they have no
    # feedback event to date them by), and none of their ids as a feedback event behind them.
    rows = pd.DataFrame(
        {
            "ds": END,
            "dataset": "preference",
            "split": [x.split for x in pairs],
            "feedback_id": [x.event.feedback_id for x in pairs],
            "trace_id": [x.event.trace_id for x in pairs],
            "paired_feedback_id": [x.paired.feedback_id for x in pairs],
            "paired_trace_id": [x.paired.trace_id for x in pairs],
        }
    )
    with pipeline_env.connect(read_only=False) as conn:
        conn.register("pairs", rows)
        conn.execute("CREATE TABLE tuning_candidates AS SELECT * FROM pairs")
        tables = table_columns(conn)
        frame, behind = _tuning(
            conn, tables["tuning_candidates"], tables["feedback_events"], END, END, True
        )
    assert frame["n"].sum() == frame["n_new"].sum() == len(pairs)
    assert behind == {"feedback_export": 0, "feedback_new": 0}


def _trace(tid: str, ds: str, ts: str, rank: object, group: str = "g", answer: str = "") -> dict:
    messages = [{"role": "system", "content": td.SYSTEM}, {"role": "user", "content": RINGS}]
    meta = {"sibling_group": group} | ({} if rank is None else {"rank": rank})
    return {
        "ds": date.fromisoformat(ds), "trace_id": tid, "session_id": group,
        "timestamp": pd.Timestamp(ts), "user_role": None, "model_version": "m1",
        "prompt_version": None, "request": messages[-1]["content"],
        "response": answer or f"Answer {tid}: Saturn, Jupiter, Uranus and Neptune have rings.",
        "messages": json.dumps(messages), "metadata": json.dumps(meta),
    }  # fmt: skip


def test_a_ranking_is_read_as_it_was_stored_whatever_its_edges(tmp_path):
    """Days, bad ranks, copies, clusters; a vote that ties with a ranking goes to people."""
    import duckdb

    from feedback_pipelines.routing.review import route_for_review

    traces = pd.DataFrame(
        [
            _trace("A", "2026-01-02", "2026-01-02 10:00", 0),
            _trace("B", "2026-01-03", "2026-01-01 09:00", 1),  # a later day, an earlier time
            _trace("C", "2026-01-02", "2026-01-02 10:05", 2),
            _trace("C", "2026-01-01", "2026-01-01 10:05", 0),  # an older copy of C
            _trace("D", "2026-01-02", "2026-01-02 10:06", 2),  # ties with C: no vote
            _trace("E", "2026-01-02", "2026-01-02 10:07", "NaN"),
            _trace("F", "2026-01-02", "2026-01-02 10:08", None),
            _trace("G", "2026-01-02", "2026-01-02 10:09", "x"),
        ]
    )
    feedback = pd.DataFrame({"ds": [date(2026, 1, 2)] * 2, "feedback_id": ["fa", "fc"],
                             "trace_id": ["A", "C"]})  # fmt: skip
    assignments = pd.DataFrame({"ds": [date(2026, 1, 3)] * 2, "feedback_id": ["fa", "fc"],
                                "cluster_id": [7, -1]})  # fmt: skip
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    for name, frame in (("traces", traces), ("feedback_events", feedback),
                        ("cluster_assignments", assignments)):  # fmt: skip
        conn.register("frame", frame)
        conn.execute(f"CREATE TABLE {name} AS SELECT * FROM frame")
        conn.unregister("frame")
    rows = read_rankings(conn, "2026-01-01", "2026-01-03", clusters_of="2026-01-03")
    votes = rows.drop_duplicates("vote_id").set_index(["chosen_trace_id", "rejected_trace_id"])
    # A > B, A > C, A > D, B > C, B > D: not C and D (equal), nor E, F, G (no finite rank),
    # and C ranked as its latest copy says.
    assert sorted(votes.index) == [("A", "B"), ("A", "C"), ("A", "D"), ("B", "C"), ("B", "D")]
    # On the later answer's day, not the later time's; a subtopic, not noise, for the group.
    assert str(votes.loc[("A", "B"), "ds"])[:10] == "2026-01-03"
    assert str(votes.loc[("A", "C"), "ds"])[:10] == "2026-01-02"
    assert set(rows["cluster_id"]) == {7}
    assert rows["ranked"].all() and len(rows) == 2 * len(votes)

    # A product vote whose id looks like a ranking's is no ranking; one that ties a ranking
    # (B over A, before it) goes to people with the ranking's own events, on its day; one
    # whose thumbs-down was lost borrows no ranking's event (it made the queue fail).
    def tie(*kinds: str, ds: str) -> TuningSets:
        link = {"vote_id": "rank:mine", "chosen_trace_id": "B", "rejected_trace_id": "A"}
        cast = [
            td.event(f"u-{k}", k, RINGS, traces.iloc[1 if k == "thumbs_up" else 0]["response"],
                     trace="B" if k == "thumbs_up" else "A", ds=ds) | link
            for k in kinds
        ]  # fmt: skip
        return build_tuning_sets(
            td.frame(cast), vectors=vectors, neighbours=exact_neighbours, ds=ds,
            window_start="2026-01-01", rankings=rows[rows["vote_id"].str.endswith(">B")],
        )  # fmt: skip

    vectors = TextVectorCache(OnnxEmbedder().embed)
    sets = tie("thumbs_up", "thumbs_down", ds="2026-01-01")
    assert (sets.votes["votes"], sets.votes["ranked"], sets.votes["split"]) == (2, 1, 1)
    queue = route_for_review(sets.events, "2026-01-03", contested=sets.contested)
    assert set(queue.loc[queue["routing_reason"] == "split_vote", "feedback_id"]) == {
        "rank:g:A>B:chosen", "rank:g:A>B:rejected",
    }  # fmt: skip
    sets = tie("thumbs_up", ds="2026-01-03")
    assert sets.votes["split"] == 1
    assert route_for_review(sets.events, "2026-01-03", contested=sets.contested).empty
