"""Rankings of answers become preference pairs: OpenAssistant's ranked siblings, read from traces.

A ranking of the answers to one conversation (traces sharing `metadata.sibling_group`, ordered
by `metadata.rank`) is a vote for each answer over each one ranked below it. Before, they sat
in trace metadata unused: OpenAssistant's 100 trees gave 59 pairs, all from emoji thumbs.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from feedback_pipelines.defs.ingest import landing_ingest
from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.reporting.load import _tuning
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing.day import read_events, read_rankings
from feedback_pipelines.routing.tuning import build_tuning_sets, write_export
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.sources.public_sets import import_public_set
from feedback_pipelines.tables import table_columns
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA, PipelineEnv

pytestmark = [pytest.mark.slow]

END = date(2026, 11, 20)
DS = END.isoformat()


def file_rankings() -> dict[str, tuple[str, int]]:
    """Each ranked answer's parent and rank, from the file: message id -> (parent, rank)."""
    out: dict[str, tuple[str, int]] = {}
    for line in (TEST_DATA / "real" / "oasst" / "en_100_tree.jsonl").read_text().splitlines():
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
    import_public_set("oasst", TEST_DATA / "real" / "oasst", pipeline_env.landing, END)
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
    assert feedback == len(events) == 1232
    ranks = file_rankings()
    siblings: dict[str, list[int]] = {}
    for parent, rank in ranks.values():
        siblings.setdefault(parent, []).append(rank)
    implied = sum(a < b for r in siblings.values() for a in r for b in r)
    assert implied == 754  # each answer over each one ranked below it (429 adjacent)
    assert len(rankings) == 2 * implied and rankings["vote_id"].nunique() == implied

    sets = build_tuning_sets(
        events, vectors=TextVectorCache(OnnxEmbedder().embed), neighbours=exact_neighbours,
        ds=DS, window_start=DS, rankings=rankings,
    )  # fmt: skip
    assert sets.votes["votes"] == sets.votes["ranked"] == sets.votes["compared"] == implied
    assert sets.votes["split"] == sets.votes["outvoted"] == 0  # one ranking per conversation

    pairs = [x for x in sets.of("preference") if x.source == "ranking"]
    for x in pairs:  # the file's own order: chosen ranked above rejected, among siblings
        chosen = ranks[message_of[x.paired.trace_id]]
        rejected = ranks[message_of[x.event.trace_id]]
        assert chosen[0] == rejected[0] and chosen[1] < rejected[1]
        assert x.event.feedback_id.startswith("rank:")
    # Every comparison implied is a pair or removed by a named gate (then the duplicate gate).
    removed = Counter(
        gate
        for (dataset, feedback_id), gate in sets.log.dropped.items()
        if dataset == "preference" and feedback_id.startswith("rank:")
    )
    deduplicated = removed.pop("exact_duplicate", 0) + removed.pop("near_duplicate", 0)
    assert sets.votes["pairs"] == implied - removed.total()
    assert len(pairs) == sets.votes["pairs"] - deduplicated > 600
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
