"""Supervised fine-tuning examples from user corrections, and the corrections that disagree.

An SFT example is the trace's messages with the user's correction as the assistant turn. A
correction is only as good as its agreement with the others: when two users correct
near-identical requests in one cluster with answers that say different things, neither is
trained on (both go to review).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.messages import (
    estimate_tokens,
    normalize_text,
    prompt_is_usable,
)
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.similarity import Neighbours, TextVectors, request_pairs


@dataclass(frozen=True)
class Conflict:
    """Two corrections of near-identical requests that disagree (feedback ids, a < b)."""

    a: str
    b: str
    request_similarity: float
    correction_similarity: float


def event_gate(event: Event, settings: TuningSettings) -> str | None:
    """The filter that removes an event from every dataset, or None.

    Checks what no dataset can use: unsafe feedback (for people), an unknown trace, a prompt
    that does not end with a user turn, and personal data left in the prompt.
    """
    if event.reason == "unsafe":
        return "unsafe"
    if not event.prompt:
        return "no_trace"
    if not prompt_is_usable(event.prompt):
        return "unusable_prompt"
    if gates.has_pii(m["content"] for m in event.prompt):
        return "pii"
    return None


def correction_gate(event: Event, settings: TuningSettings) -> str | None:
    """The filter that removes a correction as a training target, or None."""
    text = event.correction or ""
    if not text.strip():
        return "empty_correction"
    if event.response is not None and normalize_text(text) == normalize_text(event.response):
        return "correction_equals_response"
    if gates.visible_chars(text) < settings.min_correction_chars:
        return "too_short"
    if len(text) > settings.max_correction_chars:
        return "too_long"
    texts = [m["content"] for m in event.prompt] + [text]
    if estimate_tokens(texts, settings.chars_per_token) > settings.max_example_tokens:
        return "too_long"
    if gates.pii_hits(text):
        return "pii"
    return None


def _correction_similarity(
    corrections: list[Event], pairs: list[tuple[int, int, float]], vectors: TextVectors
) -> dict[tuple[int, int], float]:
    """Cosine of the corrections of each pair (equal texts after folding: 1.0)."""
    # Only pairs whose corrections differ after folding need vectors (the rest are 1.0):
    # embedding here is this step's largest cost, so equal texts are never sent.
    texts = sorted(
        {
            t
            for p, q, _ in pairs
            for t in (corrections[p].correction or "", corrections[q].correction or "")
            if normalize_text(corrections[p].correction or "")
            != normalize_text(corrections[q].correction or "")
        }
    )
    rows = vectors(texts) if texts else np.zeros((0, 0), dtype=np.float32)
    index = {t: k for k, t in enumerate(texts)}
    out = {}
    for p, q, _ in pairs:
        a, b = corrections[p].correction or "", corrections[q].correction or ""
        if normalize_text(a) == normalize_text(b):
            out[(p, q)] = 1.0
        else:
            out[(p, q)] = float(np.dot(rows[index[a]], rows[index[b]]))
    return out


def find_conflicts(
    corrections: Sequence[Event],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
) -> list[Conflict]:
    """Pairs of corrections to near-identical requests, in one cluster and context, that disagree.

    Args:
        corrections: Correction events that passed the content gates.
        vectors: Text -> vector function (requests and corrections are embedded).
        neighbours: The similarity search.
        settings: `same_request` and `conflict_below` decide.
    """
    corrections = list(corrections)
    keys = [(e.context, e.cluster_id) for e in corrections]
    pairs = request_pairs(
        [e.request for e in corrections], keys, vectors, neighbours, settings.same_request
    )
    sims = _correction_similarity(corrections, pairs, vectors)
    out = []
    for p, q, rsim in pairs:
        csim = sims[(p, q)]
        if csim < settings.conflict_below:
            a, b = sorted((corrections[p].feedback_id, corrections[q].feedback_id))
            out.append(Conflict(a, b, round(rsim, 4), round(csim, 4)))
    return sorted(set(out), key=lambda c: (c.a, c.b))


def near_duplicates(
    items: Sequence[Event],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
) -> list[tuple[int, int]]:
    """Pairs of corrections whose request and correction both reach `near_duplicate`."""
    items = list(items)
    keys = [e.context for e in items]
    pairs = request_pairs(
        [e.request for e in items], keys, vectors, neighbours, settings.near_duplicate
    )
    sims = _correction_similarity(items, pairs, vectors)
    return [(p, q) for p, q, _ in pairs if sims[(p, q)] >= settings.near_duplicate]


def keep_first(
    items: Sequence[Example], keys: Sequence[str], log: gates.GateLog, datasets: Sequence[str]
) -> list[int]:
    """Positions of the first item of each key; the others are counted as exact duplicates."""
    seen: set[str] = set()
    kept = []
    for pos, key in enumerate(keys):
        if key in seen:
            for d in datasets:
                log.drop("exact_duplicate", d, items[pos].event.feedback_id)
            continue
        seen.add(key)
        kept.append(pos)
    return kept


def drop_linked(n: int, pairs: Sequence[tuple[int, int]]) -> list[int]:
    """Greedy: walk positions in order, keep one unless it is linked to a kept earlier one."""
    linked: dict[int, list[int]] = {}
    for p, q in pairs:
        linked.setdefault(max(p, q), []).append(min(p, q))
    kept: set[int] = set()
    for pos in range(n):
        if not any(other in kept for other in linked.get(pos, ())):
            kept.add(pos)
    return sorted(kept)


def build_sft(
    corrections: Sequence[Event],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
    log: gates.GateLog,
) -> tuple[list[Example], list[Conflict], list[Event]]:
    """SFT examples from correction events that pass the gates (earliest kept of duplicates).

    Gates run in a fixed order (event, correction content, conflicts, exact then near
    duplicates); each removal is counted for both `sft` and `preference`, since a
    correction feeds both.

    Returns:
        The examples (earliest first), the conflicts found, and the corrections that passed
        the content gates (the conflicts' universe, for review).
    """
    both = ("sft", "preference")
    valid: list[Event] = []
    for event in corrections:
        reason = event_gate(event, settings) or correction_gate(event, settings)
        if reason:
            for d in both:
                log.drop(reason, d, event.feedback_id)
            continue
        valid.append(event)
    conflicts = find_conflicts(valid, vectors, neighbours, settings)
    in_conflict = {c.a for c in conflicts} | {c.b for c in conflicts}
    candidates = valid
    if settings.exclude_conflicts and in_conflict:
        candidates = [e for e in valid if e.feedback_id not in in_conflict]
        for e in valid:
            if e.feedback_id in in_conflict:
                for d in both:
                    log.drop("conflicting_corrections", d, e.feedback_id)
    examples = [Example("sft", "correction", e, e.prompt, e.correction or "") for e in candidates]
    kept = keep_first(examples, [x.content_key() for x in examples], log, both)
    examples = [examples[i] for i in kept]
    dups = near_duplicates([x.event for x in examples], vectors, neighbours, settings)
    kept = drop_linked(len(examples), dups)
    for i in sorted(set(range(len(examples))) - set(kept)):
        for d in both:
            log.drop("near_duplicate", d, examples[i].event.feedback_id)
    return [examples[i] for i in kept], conflicts, valid
