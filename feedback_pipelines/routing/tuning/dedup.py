"""One duplicate gate over the whole export: every dataset, every source, every split at once.

Builders meet the same content from different sides: a user's correction and an answer other
users liked can be the same text, so a correction pair and a liked-vs-disliked pair can be one
line twice; a greeting more or less makes a near copy. Deduplicating per builder misses both.
This gate runs once per dataset over everything the builders made, before the split, so no
copy can land in train and in validation either:

- exact: the same content after whitespace and case folding (`Example.content_key`);
- near: the same conversation before the request, requests at or over `near_duplicate`, and
  every target text (completion, and the rejected answer of a pair) at or over it too; for
  unpaired examples the label must agree.

The copy kept is the one that existed first (by its newest event), so a copy exported on an
earlier day is never displaced by a later one and incremental exports do not repeat it; at one
time, a correction before a liked answer (a user's own words are the strongest target). Every
removal is counted (`exact_duplicate`, `near_duplicate`) under the dataset and feedback id it
removed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.examples import DATASETS, Example
from feedback_pipelines.routing.tuning.messages import last_request, normalize_text
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import keep_first
from feedback_pipelines.routing.tuning.similarity import (
    Neighbours,
    TextVectors,
    request_pair_arrays,
)


def priority(x: Example) -> tuple:
    """Which of two copies stays: the one that existed first, then a correction."""
    newest = max(e.timestamp for e in (x.event, x.paired) if e is not None)
    return (newest, x.source != "correction", x.event.timestamp, x.event.feedback_id)


def near_duplicate_pairs(
    items: Sequence[Example],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
) -> list[tuple[int, int]]:
    """Positions (p < q) of examples of one dataset that are near copies of each other."""
    p, q = _near_duplicate_arrays(items, vectors, neighbours, settings)
    return list(zip(p.tolist(), q.tolist(), strict=True))


def _near_duplicate_arrays(
    items: Sequence[Example],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
) -> tuple[np.ndarray, np.ndarray]:
    """`near_duplicate_pairs` as arrays (p, q), sorted by (p, q)."""
    items = list(items)
    keys = [(x.event.context, x.label, x.rejected is None) for x in items]
    p, q, _ = request_pair_arrays(
        [last_request(x.prompt) for x in items], keys, vectors, neighbours, settings.near_duplicate
    )
    if not len(p):
        return p, q
    # Targets as codes of their folded text: equal codes are equal texts, no vector needed.
    folded: dict[str, int] = {}

    def code(text: str | None) -> int:
        return -1 if text is None else folded.setdefault(normalize_text(text), len(folded))

    slots = [
        (texts, np.fromiter(map(code, texts), dtype=np.int64, count=len(items)))
        for texts in ([x.completion for x in items], [x.rejected for x in items])
    ]  # a pair's rejected answers are both None or both set (`rejected is None` is in the key)
    differ = [np.flatnonzero(codes[p] != codes[q]) for _, codes in slots]
    # Only answers that differ after folding need vectors: embedding them is this step's
    # largest cost, so equal texts are never sent.
    texts = sorted(
        {
            t
            for (text, _), rows in zip(slots, differ, strict=True)
            for k in rows.tolist()
            for t in (text[p[k]], text[q[k]])
        }
    )
    rows = vectors(texts) if texts else np.zeros((0, 0), dtype=np.float32)
    index = {t: k for k, t in enumerate(texts)}
    keep = np.ones(len(p), dtype=bool)
    cosine: dict[tuple[int, int], bool] = {}  # one product per pair of texts
    for (text, _), rows_differing in zip(slots, differ, strict=True):
        for k in rows_differing.tolist():
            if not keep[k]:
                continue
            ia, ib = index[text[p[k]]], index[text[q[k]]]
            near = cosine.get((ia, ib))
            if near is None:
                near = float(np.dot(rows[ia], rows[ib])) >= settings.near_duplicate
                cosine[(ia, ib)] = near
            keep[k] = near
    return p[keep], q[keep]


def _drop_linked(n: int, p: np.ndarray, q: np.ndarray) -> list[int]:
    """`sft.drop_linked` over pair arrays (a 14-day window has millions of links).

    Positions without a link to an earlier one are kept outright; only the linked ones are
    walked, in order.
    """
    hi, lo = np.maximum(p, q), np.minimum(p, q)
    order = np.argsort(hi, kind="stable")
    hi, lo = hi[order], lo[order]
    kept = np.ones(n, dtype=bool)
    if not len(hi):
        return list(range(n))
    linked, starts = np.unique(hi, return_index=True)
    ends = [*starts[1:].tolist(), len(hi)]
    for pos, a, b in zip(linked.tolist(), starts.tolist(), ends, strict=True):
        kept[pos] = not kept[lo[a:b]].any()
    return np.flatnonzero(kept).tolist()


def deduplicate(
    examples: Sequence[Example],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
    log: gates.GateLog,
) -> list[Example]:
    """The examples with every exact and near copy removed, per dataset (see the module).

    Returns:
        The kept examples, each dataset's in priority order (datasets in `DATASETS` order).
    """
    out: list[Example] = []
    for dataset in DATASETS:
        items = sorted((x for x in examples if x.dataset == dataset), key=priority)
        if not items:
            continue
        kept = keep_first(items, [x.content_key() for x in items], log, (dataset,))
        items = [items[i] for i in kept]
        linked = _near_duplicate_arrays(items, vectors, neighbours, settings)
        kept = _drop_linked(len(items), *linked)
        for i in sorted(set(range(len(items))) - set(kept)):
            log.drop("near_duplicate", dataset, items[i].event.feedback_id)
        out.extend(items[i] for i in kept)
    return out
