"""What went wrong, on real rater comments: kinds, reasons, no request in the grouping, stable ids.

The complaints are FeedbackQA raters' explanations of "Bad" and "Could be Improved" ratings
(McGill-NLP/feedbackqa, Apache-2.0; the tests' copy in data/real/feedbackqa/), embedded with the
project's default model. The WHO file (112 negative ratings) keeps each test to a few seconds.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from feedback_pipelines.clustering.complaints import (
    FIRST_GROUP_ID,
    KIND_BY_NAME,
    OTHER_ID,
    group_complaints,
    resolve_complaint,
    select_complaints,
    verdict_form,
)
from feedback_pipelines_tests.fixtures.pipeline import TEST_DATA

FEEDBACKQA = TEST_DATA / "real" / "feedbackqa"


def feedbackqa_negatives(name: str = "WHO") -> pd.DataFrame:
    """Every negative rating of one FeedbackQA file, with its question as the request."""
    rows = []
    items = json.loads((FEEDBACKQA / f"{name}_feedback_valid.json").read_text())
    for i, item in enumerate(items):
        for j, (rating, comment) in enumerate(zip(item["rating"], item["feedback"], strict=False)):
            rows.append(
                {
                    "feedback_id": f"{name}-{i}-{j}",
                    "is_negative": rating in ("Bad", "Could be Improved"),
                    "comment": comment,
                    "reason": None,
                    "request": item["question"],
                    "user_id": f"rater-{j}",
                }
            )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def embed():
    """The default embedder, memoised per text so the module embeds each text once."""
    from feedback_pipelines.embedding import get_embedder

    model = get_embedder()
    memo: dict[str, np.ndarray] = {}
    seen: list[str] = []

    def run(texts: list[str]) -> np.ndarray:
        seen.extend(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in memo]
        if missing:
            memo.update(zip(missing, model.embed(missing), strict=True))
        return np.stack([memo[t] for t in texts])

    run.seen = seen
    return run


@pytest.fixture(scope="module")
def who(embed):
    events = feedbackqa_negatives("WHO")
    return events, group_complaints(events, embed)


def kind_of(result, events: pd.DataFrame, needle: str) -> str:
    """The kind given to the (first) real comment containing `needle`."""
    hit = events[events["comment"].str.contains(needle, regex=False, na=False)]
    assert len(hit), needle
    fid = hit["feedback_id"].iloc[0]
    return result.assignments.set_index("feedback_id").loc[fid, "kind"]


def test_only_negative_events_with_words_are_complaints(who):
    events, result = who
    negatives = events[events["is_negative"]]
    assert result.stats["complaints"] == len(negatives) == 112
    assert set(result.assignments["feedback_id"]) == set(negatives["feedback_id"])
    assert result.clusters["size"].sum() == len(negatives)
    assert not result.assignments["feedback_id"].duplicated().any()


def test_most_real_complaints_get_a_kind_and_few_are_left_over(who):
    _, result = who
    # measured 78% on a kind, 4% left in "other" (the rest in data-driven groups)
    assert result.stats["kind_share"] >= 0.65
    assert result.stats["other_share"] <= 0.15
    biggest = result.clusters.iloc[0]
    assert biggest["kind"] == "off_topic"  # what FeedbackQA raters mostly say about a bad answer
    assert biggest["label"] == "does not answer the question"


@pytest.mark.parametrize(
    ("needle", "kind"),
    [
        ("This does not answer the question", "off_topic"),
        ("This answer does not address the original question", "off_topic"),
        ("has nothing to do with vaccination services", "off_topic"),
        ("The answer details another treatment", "off_topic"),
        ("This is too general.", "incomplete"),
    ],
)
def test_clear_real_complaints_get_their_kind(who, needle, kind):
    events, result = who
    assert kind_of(result, events, needle) == kind


def test_other_files_clear_complaints(embed):
    events = pd.concat([feedbackqa_negatives("Australia"), feedbackqa_negatives("CDC")])
    cases = {
        "Gives very general information with a link to access more information": "incomplete",
        "it is general and not very in depth": "incomplete",
        "This answer gives an example of a true claim, not a false one.": "factual_error",
        "Does not answer the question about drinking water": "off_topic",
    }
    mask = events["comment"].map(lambda c: any(n in str(c) for n in cases))
    picked = events[mask & events["is_negative"]]
    result = group_complaints(picked, embed)
    for needle, kind in cases.items():
        assert kind_of(result, picked, needle) == kind, needle


def test_a_kind_needs_some_of_its_own_words(embed):
    events = feedbackqa_negatives("CDC")
    picked = events[
        events["comment"].str.contains("The response itself has limited information", na=False)
    ]
    assert len(picked) == 1
    # nearest prototype by embedding: "the response was very slow"; no word of slowness
    result = group_complaints(picked, embed)
    assert result.assignments["kind"].iloc[0] != "slow"


def test_plain_user_complaints_get_their_kind(embed):
    texts = {
        "Way too long, I only needed one line.": "too_long",
        "It refused to help and said it cannot do that.": "refusal",
        "The answer is wrong.": "factual_error",
        "This was rude and offensive.": "unsafe",
        "It took forever to respond.": "slow",
        "I asked for a table, it gave me a wall of text in the wrong format.": "formatting",
    }
    events = pd.DataFrame(
        {
            "feedback_id": [f"u{i}" for i in range(len(texts))],
            "is_negative": True,
            "comment": list(texts),
            "reason": None,
        }
    )
    result = group_complaints(events, embed)
    got = dict(zip(result.assignments["feedback_id"], result.assignments["kind"], strict=True))
    assert [got[f"u{i}"] for i in range(len(texts))] == list(texts.values())


def test_the_categorized_reason_weighs_in(embed):
    events = pd.DataFrame(
        {
            "feedback_id": ["a", "b", "c", "d"],
            "is_negative": True,
            "comment": [None, "", "Not great.", "Not great."],
            "reason": ["too_long", "other", "incomplete", None],
        }
    )
    result = group_complaints(events, embed)
    rows = result.assignments.set_index("feedback_id")
    assert rows.loc["a", "kind"] == "too_long" and rows.loc["a", "source"] == "reason"
    assert rows.loc["a", "complaint_id"] == KIND_BY_NAME["too_long"].complaint_id
    assert rows.loc["b", "complaint_id"] == OTHER_ID  # "other" says nothing: no kind
    # the same vague words: the reason decides for c, nothing does for d
    assert rows.loc["c", "kind"] == "incomplete" and rows.loc["c", "source"] == "reason"
    assert rows.loc["d", "kind"] != "incomplete"


def test_the_request_never_enters_the_grouping(embed, who):
    events, result = who
    start = len(embed.seen)
    swapped = events.copy()
    swapped["request"] = swapped["request"].sample(frac=1.0, random_state=3).to_numpy()
    swapped["response"] = "the passage " + swapped["request"]
    again = group_complaints(swapped, embed)
    pd.testing.assert_frame_equal(result.assignments, again.assignments)
    texts = set(embed.seen[start:])
    questions = set(events["request"])
    assert not texts & questions
    assert not any(q in t for q in list(questions)[:50] for t in texts if len(q) > 20)


def test_verdict_form_never_keeps_a_number_a_label_could_show():
    form = verdict_form("It does not mention my account 4829-1173 at 221 Baker St")
    assert not any(c.isdigit() for c in form)
    assert form == "It does not mention my something - something at something"


def test_verdict_form_keeps_how_and_drops_what():
    assert verdict_form("Doesn't mention swabs at all.") == "Doesn't mention something at all ."
    assert "visa" not in verdict_form("This answer is about student visas, not pandemic visas")
    assert verdict_form("Too vague.").startswith("Too vague")


def test_deterministic_and_order_free(embed, who):
    events, result = who
    shuffled = events.sample(frac=1.0, random_state=7)
    again = group_complaints(shuffled, embed)
    pd.testing.assert_frame_equal(result.assignments, again.assignments)
    pd.testing.assert_frame_equal(
        result.clusters.drop(columns=["centroid"]), again.clusters.drop(columns=["centroid"])
    )


def test_data_driven_groups_keep_their_ids(embed, who):
    events, result = who
    groups = result.clusters[result.clusters["complaint_id"] >= FIRST_GROUP_ID]
    assert len(groups) >= 1
    next_id = int(result.clusters["complaint_id"].max()) + 1
    # tomorrow: most of the same complaints plus others; the groups continue under their ids
    tomorrow = events.iloc[10:]
    later = group_complaints(tomorrow, embed, previous=result.clusters, next_id=next_id)
    kept = later.clusters[later.clusters["complaint_id"] >= FIRST_GROUP_ID]
    assert set(kept["complaint_id"]) & set(groups["complaint_id"])
    assert (kept["complaint_id"] < next_id).mean() >= 0.5


def test_data_driven_groups_are_named_and_quoted_in_the_complaints_own_words(embed):
    # Australia's raters: a group whose members' verdict forms name nothing was called
    # "complaint group 108", another "discusses" (phrases of verdict forms, whose subject
    # words are gone, are mostly function words). A complaint pasted five times more made
    # five quotes of one text (the 100k synthetic day: "A cup is 16 tablespoons, not 12." x5).
    events = feedbackqa_negatives("Australia")
    first = group_complaints(events, embed).clusters
    top = first[first["complaint_id"] >= FIRST_GROUP_ID].iloc[0]
    pasted = events[events["feedback_id"] == top["example_ids"][0]]
    copies = pd.concat([pasted] * 5, ignore_index=True)
    copies["feedback_id"] = [f"pasted-{i}" for i in range(len(copies))]
    events = pd.concat([events, copies], ignore_index=True)
    groups = group_complaints(events, embed).clusters
    groups = groups[groups["complaint_id"] >= FIRST_GROUP_ID]
    comments = [" ".join(c.split()) for c in events["comment"].dropna()]
    assert len(groups) >= 5
    for row in groups.itertuples():
        assert len(set(row.quotes)) == len(row.quotes), row.quotes
        assert row.label_source in ("verdict", "quote"), (row.label_source, row.label)
        if row.label_source == "quote":  # a member's first sentence, maybe cut short
            assert any(c.startswith(row.label.rstrip("…")) for c in comments), row.label
    assert (groups["label_source"] == "quote").sum() >= 2


def test_placed_complaints_never_move(embed, who):
    events, result = who
    before = result.assignments.set_index("feedback_id")["complaint_id"]
    grouped = before[before >= FIRST_GROUP_ID]
    assert len(grouped) >= 5
    # tomorrow's window: a different mix around them, yet every grouped complaint stays put
    tomorrow = pd.concat([events.iloc[40:], feedbackqa_negatives("Australia").iloc[:200]])
    later = group_complaints(
        tomorrow,
        embed,
        previous=result.clusters,
        previous_assignments=grouped.to_dict(),
        next_id=int(before.max()) + 1,
    )
    now = later.assignments.set_index("feedback_id")["complaint_id"]
    both = grouped.index.intersection(now.index)
    assert len(both) >= 3
    assert (now[both] == grouped[both]).all()
    assert later.stats["kept_in_previous_groups"] >= len(both)


def test_resolve_complaint():
    assert resolve_complaint("3") == 3
    assert resolve_complaint("off-topic") == "off_topic"
    assert resolve_complaint("missing details / incomplete") == "incomplete"
    assert resolve_complaint("other") == "other"
    with pytest.raises(ValueError, match="unknown complaint"):
        resolve_complaint("banana")


def test_select_reads_no_request_column():
    events = pd.DataFrame(
        {
            "feedback_id": ["x", "y", "z"],
            "is_negative": [True, True, False],
            "comment": ["Mail me at jane.doe@example.com, it is wrong", None, "bad"],
            "reason": [None, None, None],
            "request": ["secret question", "q", "q"],
        }
    )
    picked = select_complaints(events)
    assert list(picked["feedback_id"]) == ["x"]
    assert "example.com" not in picked["text"].iloc[0]
    assert "request" not in picked.columns


def test_reasons_alone_and_any_embedder_keep_the_invariants():
    from feedback_pipelines.embedding import get_embedder

    only_reasons = pd.DataFrame(
        {
            "feedback_id": ["r1", "r2", "r3"],
            "is_negative": True,
            "comment": None,
            "reason": ["unsafe", "other", "formatting"],
        }
    )
    hashing = get_embedder("hash")  # the unit-test backend: vectors without meaning
    result = group_complaints(only_reasons, hashing.embed)
    assert list(result.assignments["kind"]) == ["unsafe", "other", "formatting"]
    assert result.stats["with_text"] == 0
    events = feedbackqa_negatives("WHO")
    result = group_complaints(events, hashing.embed)
    assert result.clusters["size"].sum() == result.stats["complaints"] == 112
    assert not result.assignments["feedback_id"].duplicated().any()
