"""What went wrong, on real complaints: how much gets a kind, and what the groups read like.

The real sets in the tests' copies (feedback_pipelines_tests/data/real/):

- FeedbackQA: every rater's "Bad" or "Could be Improved" rating with its explanation (the
  comment; no categorized reason);
- LAMP: the writers' fine-grained edit categories as a comment-less reason (the importer's
  mapping, `lamp_reason`), and each category name as a short comment, to see where a person's
  own category lands;

are run through `group_complaints` with the default embedder. Prints the share placed on a kind,
the groups with sizes and example quotes, and the time. Run from the repo root::

    .venv/bin/python bench/complaints.py [--limit N] [--samples 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feedback_pipelines.clustering.complaints import (  # noqa: E402
    ComplaintConfig,
    group_complaints,
)
from feedback_pipelines.embedding import get_embedder  # noqa: E402
from feedback_pipelines.sources.public_sets import lamp_reason  # noqa: E402

REAL = ROOT / "feedback_pipelines_tests" / "data" / "real"


def feedbackqa_events(limit: int | None = None) -> pd.DataFrame:
    """Negative FeedbackQA ratings with the rater's explanation, and the question as request."""
    rows = []
    for path in sorted((REAL / "feedbackqa").glob("*_feedback_valid.json")):
        for i, item in enumerate(json.loads(path.read_text())):
            for j, (rating, comment) in enumerate(
                zip(item["rating"], item["feedback"], strict=False)
            ):
                if rating in ("Bad", "Could be Improved"):
                    rows.append(
                        {
                            "feedback_id": f"fqa-{path.stem}-{i}-{j}",
                            "is_negative": True,
                            "comment": comment,
                            "reason": None,
                            "request": item["question"],
                            "rating": rating,
                        }
                    )
    frame = pd.DataFrame(rows)
    return frame.head(limit) if limit else frame


def lamp_events() -> pd.DataFrame:
    """LAMP edits: the reason the importer derives, and the edit categories as the comment."""
    rows = []
    for path in sorted((REAL / "lamp").glob("W*_edits.json")):
        for item in json.loads(path.read_text()):
            cats = [e.get("categorization") for e in item["fine_grained_edits"] if e]
            top = Counter(map(str, cats)).most_common(1)[0][0] if cats else None
            rows.append(
                {
                    "feedback_id": f"lamp-{item['id']}",
                    "is_negative": True,
                    "comment": top,
                    "reason": lamp_reason(cats),
                    "request": item["instruction"],
                }
            )
    return pd.DataFrame(rows)


def report(name: str, events: pd.DataFrame, samples: int) -> None:
    embedder = get_embedder()
    started = time.perf_counter()
    result = group_complaints(events, embedder.embed)
    seconds = time.perf_counter() - started
    s = result.stats
    print(f"\n## {name}: {s['complaints']} complaints, {s['sentences']} sentences, {seconds:.1f}s")
    print(
        f"kind {s['kind_share']:.1%}, data-driven groups {s['grouped_share']:.1%} "
        f"({s['data_driven_groups']} groups), other {s['other_share']:.1%}"
    )
    comment = dict(zip(events["feedback_id"], events["comment"], strict=True))
    for row in result.clusters.itertuples():
        print(f"- [{row.complaint_id}] {row.label} ({row.kind}): {row.size}")
        members = result.assignments[result.assignments["complaint_id"] == row.complaint_id]
        for fid in members["feedback_id"].sample(min(samples, len(members)), random_state=0):
            text = " ".join(str(comment[fid] or "").split())
            print(f"    · {text[:160]}")


def by_rating(events: pd.DataFrame) -> None:
    """FeedbackQA kinds per rating: "Bad" should be mostly off-topic, "Could be Improved" less."""
    result = group_complaints(events, get_embedder().embed)
    both = result.assignments.merge(events[["feedback_id", "rating"]], on="feedback_id")
    table = pd.crosstab(both["kind"], both["rating"], normalize="columns").round(3)
    print("\n## FeedbackQA kinds per rating (share of the rating's complaints)")
    print(table.to_markdown())


def lamp_categories() -> None:
    """Each LAMP edit category alone as a comment, no reason: where do a writer's words land?"""
    cats = Counter()
    for path in sorted((REAL / "lamp").glob("W*_edits.json")):
        for item in json.loads(path.read_text()):
            cats.update(str(e.get("categorization")) for e in item["fine_grained_edits"] if e)
    names = sorted(cats)
    events = pd.DataFrame(
        {"feedback_id": names, "is_negative": True, "comment": names, "reason": None}
    )
    result = group_complaints(
        events, get_embedder().embed, config=ComplaintConfig(min_group_size=99)
    )
    print("\n## LAMP edit categories (held out: no prototype copies them), no reason given")
    for row in result.assignments.itertuples():
        print(
            f"- {row.feedback_id!r} ({cats[row.feedback_id]} edits) -> {row.kind} "
            f"({row.similarity})"
        )


def day_to_day(events: pd.DataFrame, days: int = 7) -> None:
    """Replay: events spread over `days` by a hash of their id, a growing window each day; the
    share of yesterday's complaints that keep their group id today (kinds and data-driven)."""
    import hashlib

    day = events["feedback_id"].map(lambda f: int(hashlib.sha1(f.encode()).hexdigest(), 16) % days)
    embed = get_embedder().embed
    previous, next_id, before = None, 100, None
    print(f"\n## Day to day ({days} days, window = every day so far)")
    for d in range(days):
        result = group_complaints(
            events[day <= d],
            embed,
            previous=previous,
            next_id=next_id,
            previous_assignments=None if before is None else before.to_dict(),
        )
        now = result.assignments.set_index("feedback_id")["complaint_id"]
        if before is not None:
            both = before.index.intersection(now.index)
            kept = float((before[both] == now[both]).mean())
            grouped = before[both] >= 100
            kept_groups = float((before[both][grouped] == now[both][grouped]).mean())
            print(
                f"day {d}: {len(now)} complaints, kept {kept:.1%} "
                f"(of those in data-driven groups yesterday: {kept_groups:.1%})"
            )
        previous = result.clusters
        next_id = max(next_id, int(result.clusters["complaint_id"].max()) + 1)
        before = now


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--samples", type=int, default=3)
    args = parser.parse_args()
    np.set_printoptions(precision=3)
    report("FeedbackQA (Bad, Could be Improved)", feedbackqa_events(args.limit), args.samples)
    report("LAMP (edit category as comment, reason from the importer)", lamp_events(),
           args.samples)  # fmt: skip
    by_rating(feedbackqa_events(args.limit))
    lamp_categories()
    day_to_day(feedbackqa_events(args.limit))


if __name__ == "__main__":
    main()
