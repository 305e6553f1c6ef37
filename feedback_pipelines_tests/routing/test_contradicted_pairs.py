"""Preference pairs never contradict another judgement of the same answer (issue 16, 2).

FeedbackQA has two raters per answer, who often disagree: a pair whose preferred answer
another rater judged bad (or whose rejected answer another rater judged good) teaches the
opposite of what half the raters said. Such pairs are left out, named and counted.
"""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets, gates, write_export
from feedback_pipelines.routing.tuning.messages import normalize_text
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.vectorstore.neighbours import EdgeNeighbours
from feedback_pipelines_tests.fixtures import tuning as td

Q = "How long does the flu vaccine protect me?"
A = "Protection lasts about six months, so get vaccinated every autumn."
B = "Vaccines cannot protect against influenza."
C = "Flu vaccine protection wanes over a season; a yearly shot is recommended."
D = "The vaccine protects you for ten years."
E = "Protection from the flu shot is lifelong."


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def window() -> pd.DataFrame:
    """Answers rated by two raters (FeedbackQA's shape), and a correction of a liked answer."""
    return td.frame(
        [
            td.event("a1", "rating", Q, A, score=5, trace="tA"),
            td.event("a2", "rating", Q, A, score=1, trace="tA"),  # the raters disagree on A
            td.event("b1", "rating", Q, B, score=1, trace="tB"),
            td.event("c1", "rating", Q, C, score=5, trace="tC"),
            td.event("d1", "rating", Q, D, score=1, trace="tD"),
            td.event("d2", "rating", Q, D, score=4, trace="tD"),  # and on D
            td.event("e1", "correction", Q, E, correction=C, trace="tE"),
            td.event("e2", "thumbs_up", Q, E, trace="tE"),  # someone liked what e1 corrected
        ]
    )


def judged(events: pd.DataFrame, settings: TuningSettings) -> tuple[set, set]:
    """(answers someone judged good, answers someone judged bad), as (request, answer) keys."""
    good, bad = set(), set()
    for row in events.itertuples():
        key = (normalize_text(row.request), normalize_text(row.response))
        if row.kind in settings.liked_kinds or (
            row.kind == "rating" and row.score >= settings.liked_min_score
        ):
            good.add(key)
        if row.kind in (*settings.disliked_kinds, "correction") or (
            row.kind == "rating" and row.score <= settings.disliked_max_score
        ):
            bad.add(key)
    return good, bad


def assert_no_contradiction(examples, events, settings) -> None:
    good, bad = judged(events, settings)
    for x in examples:
        request = normalize_text(x.prompt[-1]["content"])
        assert (request, normalize_text(x.completion)) not in bad, x.event.feedback_id
        assert (request, normalize_text(x.rejected)) not in good, x.event.feedback_id


def test_pairs_contradicted_by_another_rater_are_left_out_and_counted(vectors, tmp_path):
    events = window()
    settings = TuningSettings()
    sets = build_tuning_sets(
        events, vectors=vectors, neighbours=EdgeNeighbours(), ds=td.DS,
        window_start=td.DS, settings=settings,
    )  # fmt: skip
    preference = sets.of("preference")
    assert_no_contradiction(preference, events, settings)
    # The only clean pair: C (liked, never disliked) over B (disliked, never liked).
    assert {(x.event.feedback_id, x.paired.feedback_id if x.paired else None) for x in
            preference} == {("b1", "c1")}  # fmt: skip
    # The correction still teaches SFT; only its pair against a liked answer is dropped.
    assert [x.event.feedback_id for x in sets.of("sft")] == ["e1"]
    assert "contradicted_pair" in gates.FILTERS
    removed = {r["filter"]: r["removed"] for r in sets.log.as_records()}
    # Greedy pairing would have made (a2: C over A, A liked by a1), (b1: A over B, A disliked
    # by a2) and (d1: E over D, E corrected by e1 and D liked by d2), and the correction pair
    # (C over E, E liked by e2): four contradicted pairs.
    assert removed["contradicted_pair"] == {"preference": 4}
    folder = tmp_path / "export"
    write_export(sets, folder)
    assert validate_export(folder)[1] == []
    excluded = [json.loads(x) for x in (folder / "excluded.jsonl").read_text().splitlines()]
    assert sum(x["filter"] == "contradicted_pair" for x in excluded) == 4
    card = json.loads((folder / "datacard.json").read_text())
    by_name = {f["filter"]: f for f in card["filters"]}
    assert by_name["contradicted_pair"]["removed"] == {"preference": 4}
    assert "contradicted_pair" in (folder / "datacard.md").read_text()


@pytest.mark.slow
def test_feedbackqa_pairs_agree_with_every_rater(vectors, pipeline_env):
    """The real set: before the gate, most pairs were contradicted by the other rater."""
    import dagster as dg

    from feedback_pipelines.defs.ingest import landing_ingest
    from feedback_pipelines.resources.settings import PipelineConfig
    from feedback_pipelines.resources.warehouse import WarehouseResource
    from feedback_pipelines.routing.day import read_events
    from feedback_pipelines.sources.public_sets import import_public_set
    from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA

    end = date(2026, 11, 20)
    import_public_set("feedbackqa", TEST_DATA / "real" / "feedbackqa", pipeline_env.landing, end)
    resources = {"settings": PipelineConfig(), "warehouse": WarehouseResource()}
    assert dg.materialize([landing_ingest], partition_key=end.isoformat(), resources=resources)
    with pipeline_env.connect() as conn:
        events = read_events(conn, end.isoformat(), end.isoformat(), columns="*")
    settings = TuningSettings()
    sets = build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=end.isoformat(),
        window_start=end.isoformat(), settings=settings,
    )  # fmt: skip
    preference = sets.of("preference")
    assert len(preference) > 50
    assert_no_contradiction(preference, events, settings)
    removed = {r["filter"]: r["total"] for r in sets.log.as_records()}
    assert removed["contradicted_pair"] > len(preference) / 2  # the raters disagree often
