"""A validation split exists when the groups are few, without taking most of the data.

Groups draw validation at `validation_fraction` each; llmfao's 13 prompts are 13 groups, and
all of them drew train (0.9^13: one export in four), so its 1,161 pairs had no validation file.
"""

from __future__ import annotations

import pandas as pd
import pytest

from feedback_pipelines.embedding.onnx import OnnxEmbedder
from feedback_pipelines.routing.tuning import TuningSettings, build_tuning_sets
from feedback_pipelines.routing.tuning.similarity import TextVectorCache, exact_neighbours
from feedback_pipelines.routing.tuning.splits import unit_hash
from feedback_pipelines_tests.fixtures import tuning as td

QUESTIONS = [
    "How do I export my invoices as PDF?",
    "Why was my card declined at checkout?",
    "Can I change the email address on my account?",
    "What is the refund window for annual plans?",
]


@pytest.fixture(scope="module")
def vectors() -> TextVectorCache:
    return TextVectorCache(OnnxEmbedder().embed)


def window(votes_per_question: list[int]) -> pd.DataFrame:
    """Per question, that many votes between two answers (one group per question)."""
    rows = []
    for q, (question, n) in enumerate(zip(QUESTIONS, votes_per_question, strict=False)):
        for k in range(n):
            link = {"vote_id": f"q{q}v{k}", "chosen_trace_id": f"q{q}-good",
                    "rejected_trace_id": f"q{q}-bad"}  # fmt: skip
            rows += [
                {**td.event(f"q{q}v{k}-up", "thumbs_up", question, f"A full answer {q}.",
                            trace=f"q{q}-good"), **link},
                {**td.event(f"q{q}v{k}-down", "thumbs_down", question, f"No idea {q}.",
                            trace=f"q{q}-bad"), **link},
            ]  # fmt: skip
    return td.frame(rows)


def splits(events: pd.DataFrame, vectors, seed: int):
    sets = build_tuning_sets(
        events, vectors=vectors, neighbours=exact_neighbours, ds=td.DS, window_start=td.DS,
        settings=TuningSettings(seed=seed),
    )  # fmt: skip
    return {x.prompt[-1]["content"]: x.split for x in sets.of("preference")}, sets.splits


def test_few_groups_always_give_a_validation_group(vectors):
    events = window([1, 1, 1, 1])
    fallbacks = 0
    for seed in range(12):
        got, result = splits(events, vectors, seed)
        # a group's draw: its earliest event's (the first vote's thumbs-up)
        draw = {q: unit_hash(seed, "validation", f"q{k}v0-up") for k, q in enumerate(QUESTIONS)}
        drew = {q for q, d in draw.items() if d < 0.1}
        valid = {q for q, split in got.items() if split == "validation"}
        if drew:  # the draw decides, as before
            assert valid == drew and not result.validation_fallback, seed
        else:  # no draw: the lowest one goes to validation
            assert valid == {min(draw, key=draw.get)} and result.validation_fallback, seed
            fallbacks += 1
    assert fallbacks >= 3  # 0.9^4: most seeds draw no validation group of four


def test_the_fallback_never_moves_most_of_the_data(vectors):
    # Groups of 2 and 20 events (ten votes on one pair: one example, and its ten thumbs-down
    # as prompt-tuning cases): only the small one may become validation.
    events = window([1, 10])
    fallbacks = 0
    for seed in range(6):
        got, result = splits(events, vectors, seed)
        if result.validation_fallback:
            assert got[QUESTIONS[0]] == "validation" and got[QUESTIONS[1]] == "train", seed
            fallbacks += 1
    assert fallbacks
    # A single group stays in train: a validation split of everything helps no one.
    got, result = splits(window([3]), vectors, 0)
    assert set(got.values()) == {"train"} and not result.validation_fallback


def test_the_fallback_leaves_every_dataset_train_examples(vectors):
    # Three voted questions, and two thumbs-down on one answer to a fourth: the group of the
    # only unpaired example (the two are one example after the duplicate gate).
    plain = [td.event(f, "thumbs_down", QUESTIONS[3], "Nope.", trace="t-plain")
             for f in ("plain", "plain-2")]  # fmt: skip
    events = td.frame([*window([1, 1, 1]).to_dict("records"), *plain])
    guarded = 0
    for seed in range(40):
        sets = build_tuning_sets(
            events, vectors=vectors, neighbours=exact_neighbours, ds=td.DS, window_start=td.DS,
            settings=TuningSettings(seed=seed),
        )  # fmt: skip
        assert [x.split for x in sets.of("unpaired")] == ["train"] or not (
            sets.splits.validation_fallback
        ), seed
        draw = {f"q{k}v0-up": unit_hash(seed, "validation", f"q{k}v0-up") for k in range(3)}
        draw["plain"] = unit_hash(seed, "validation", "plain")
        if min(draw.values()) >= 0.1 and min(draw, key=draw.get) == "plain":
            guarded += 1  # the plain group drew lowest: the fallback took another one
            assert sets.splits.validation_fallback, seed
    assert guarded


def test_incremental_exports_keep_the_draw_alone(vectors):
    """Concatenated daily files must keep a group on one side: no fallback there."""
    events = window([1, 1, 1, 1])
    for seed in range(12):
        sets = build_tuning_sets(
            events, vectors=vectors, neighbours=exact_neighbours, ds=td.DS, window_start=td.DS,
            settings=TuningSettings(seed=seed, export_mode="incremental"),
        )  # fmt: skip
        draw = {f"q{k}v0-up": unit_hash(seed, "validation", f"q{k}v0-up") for k in range(4)}
        valid = {x.event.feedback_id.replace("-down", "-up") for x in sets.of("preference")
                 if x.split == "validation"}  # fmt: skip
        assert valid == {k for k, d in draw.items() if d < 0.1}, seed
        assert not sets.splits.validation_fallback
