"""Preference pairs and unpaired examples: what users preferred, and what they liked or not.

Two kinds of pair: a correction preferred over the answer it corrects, and a liked answer
preferred over a disliked answer to a near-identical request (same cluster, same conversation
before the request, request cosine over `same_request`). Plain thumbs and ratings also become
unpaired examples (TRL's `prompt`/`completion`/`label`, the shape KTO trains on).
"""

from __future__ import annotations

from collections.abc import Sequence

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.messages import estimate_tokens, normalize_text
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import event_gate, keep_first
from feedback_pipelines.routing.tuning.similarity import Neighbours, TextVectors, similar_texts


def response_gate(event: Event, settings: TuningSettings) -> str | None:
    """The filter that removes a model answer as a chosen, rejected or completion, or None."""
    text = event.response or ""
    if not text.strip():
        return "missing_response"
    if len(text) > settings.max_response_chars:
        return "too_long"
    texts = [m["content"] for m in event.prompt] + [text]
    if estimate_tokens(texts, settings.chars_per_token) > settings.max_example_tokens:
        return "too_long"
    if gates.pii_hits(text):
        return "pii"
    return None


def correction_pairs(
    sft: Sequence[Example], settings: TuningSettings, log: gates.GateLog
) -> list[Example]:
    """(correction preferred, original answer not) for each SFT example with a usable answer."""
    out = []
    for example in sft:
        event = example.event
        reason = response_gate(event, settings)
        if reason:
            log.drop(reason, "preference", event.feedback_id)
            continue
        out.append(
            Example(
                "preference",
                "correction",
                event,
                event.prompt,
                example.completion,
                rejected=event.response,
            )
        )
    kept = keep_first(out, [x.content_key() for x in out], log, ("preference",))
    return [out[i] for i in kept]


def plain_signals(
    events: Sequence[Event], settings: TuningSettings, log: gates.GateLog
) -> tuple[list[Event], list[Event]]:
    """The liked and the disliked events that pass the event and answer gates."""
    liked, disliked = [], []
    for event in events:
        signal = event.signal(settings)
        if signal is None or event.is_correction:
            continue
        reason = event_gate(event, settings) or response_gate(event, settings)
        if reason:
            log.drop(reason, "unpaired", event.feedback_id)
            continue
        (liked if signal else disliked).append(event)
    return liked, disliked


def unpaired_examples(
    liked: Sequence[Event], disliked: Sequence[Event], log: gates.GateLog
) -> list[Example]:
    """One (prompt, answer, label) per plain signal; answers both liked and disliked dropped."""
    examples = [
        Example("unpaired", e.kind, e, e.prompt, e.response or "", label=label)
        for group, label in ((liked, True), (disliked, False))
        for e in group
    ]
    examples.sort(key=lambda x: (x.event.timestamp, x.event.feedback_id))
    by_answer: dict[str, set[bool]] = {}
    for x in examples:
        by_answer.setdefault(_answer_key(x), set()).add(bool(x.label))
    mixed = {k for k, labels in by_answer.items() if len(labels) > 1}
    clean = []
    for x in examples:
        if _answer_key(x) in mixed:
            log.drop("conflicting_labels", "unpaired", x.event.feedback_id)
        else:
            clean.append(x)
    kept = keep_first(clean, [x.content_key() for x in clean], log, ("unpaired",))
    return [clean[i] for i in kept]


def _answer_key(x: Example) -> str:
    prompt = "\n".join(f"{m['role']}:{normalize_text(m['content'])}" for m in x.prompt)
    return prompt + "\n=>" + normalize_text(x.completion)


def liked_disliked_pairs(
    liked: Sequence[Event],
    disliked: Sequence[Event],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
    log: gates.GateLog,
) -> list[Example]:
    """Pairs of a liked and a disliked answer to near-identical requests, each event used once.

    Candidates share a cluster (when clustering ran) and the conversation before the
    request, reach `same_request`, come from different traces and have different answers.
    Matching is greedy, most similar requests first, then earliest events: deterministic, and
    no feedback id appears in two pairs. The pair's prompt is the disliked event's.
    """
    if not liked or not disliked:
        return []
    distinct, pairs = similar_texts(
        [e.request for e in (*liked, *disliked)], vectors, neighbours, settings.same_request
    )
    index = {t: k for k, t in enumerate(distinct)}
    liked_at: dict[int, list[Event]] = {}
    for e in liked:
        liked_at.setdefault(index[e.request], []).append(e)
    similar: dict[int, list[tuple[int, float]]] = {k: [(k, 1.0)] for k in range(len(distinct))}
    for i, j, sim in pairs:
        similar[i].append((j, sim))
        similar[j].append((i, sim))
    candidates = []
    for d in disliked:
        for k, sim in similar[index[d.request]]:
            for like in liked_at.get(k, ()):
                if (
                    like.cluster_id == d.cluster_id
                    and like.context == d.context
                    and like.trace_id != d.trace_id
                    and normalize_text(like.response) != normalize_text(d.response)
                ):
                    candidates.append(
                        (
                            -round(sim, 6),
                            d.timestamp,
                            d.feedback_id,
                            like.timestamp,
                            like.feedback_id,
                            d,
                            like,
                        )
                    )
    candidates.sort(key=lambda c: c[:5])
    used: set[str] = set()
    out = []
    for *_, d, like in candidates:
        if d.feedback_id in used or like.feedback_id in used:
            continue
        used.update((d.feedback_id, like.feedback_id))
        out.append(
            Example(
                "preference",
                "liked_vs_disliked",
                d,
                d.prompt,
                like.response or "",
                rejected=d.response,
                paired=like,
            )
        )
    out.sort(key=lambda x: (x.event.timestamp, x.event.feedback_id))
    kept = keep_first(out, [x.content_key() for x in out], log, ("preference",))
    return [out[i] for i in kept]
