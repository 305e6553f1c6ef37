"""Preference pairs and unpaired examples: what users preferred, and what they liked or not.

Two kinds of pair: a correction preferred over the answer it corrects, and a liked answer
preferred over a disliked answer to a near-identical request (same cluster, same conversation
before the request, request cosine over `same_request`). Plain thumbs and ratings also become
unpaired examples (TRL's `prompt`/`completion`/`label`, the shape KTO trains on).

A pair is only as good as the agreement behind it: when someone else judged the preferred
answer bad (a thumbs-down, a low rating, a correction of it) or the rejected answer good, the
pair teaches the opposite of what that person said. Such pairs are left out and counted
(`contradicted_pair`); on FeedbackQA, whose answers have two raters each, they were most pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.messages import estimate_tokens, normalize_text
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import event_gate
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


@dataclass
class Judgements:
    """Which answers somebody judged good, and which bad, over the whole window.

    An answer is identified by its trace and by its text (conversation before the request,
    request and answer, folded), so two raters of one trace and two users shown the same
    answer to the same question both count. Every event with a signal judges, whatever the
    gates later decide about it: a correction judges the corrected answer bad.
    """

    good: set[tuple] = field(default_factory=set)
    bad: set[tuple] = field(default_factory=set)

    @classmethod
    def of(cls, events: Sequence[Event], settings: TuningSettings) -> Judgements:
        """The judgements of the window's events."""
        out = cls()
        for e in events:
            signal = False if e.is_correction else e.signal(settings)
            if signal is not None:
                (out.good if signal else out.bad).update(answer_keys(e))
        return out

    def judged_bad(self, event: Event) -> bool:
        """Someone judged this event's answer bad."""
        return any(k in self.bad for k in answer_keys(event))

    def judged_good(self, event: Event) -> bool:
        """Someone judged this event's answer good."""
        return any(k in self.good for k in answer_keys(event))


def answer_keys(event: Event) -> list[tuple]:
    """The identities of the answer an event judges: its trace, and its text in context."""
    keys: list[tuple] = []
    if event.trace_id:
        keys.append(("trace", event.trace_id))
    if event.response:
        keys.append(
            (
                "answer",
                event.context,
                normalize_text(event.request),
                normalize_text(event.response),
            )
        )
    return keys


def correction_pairs(
    sft: Sequence[Example],
    settings: TuningSettings,
    log: gates.GateLog,
    judged: Judgements | None = None,
) -> list[Example]:
    """(correction preferred, original answer not) for each SFT example with a usable answer.

    With `judged`, a pair whose original answer someone liked is left out
    (`contradicted_pair`); the correction stays an SFT example.
    """
    out = []
    for example in sft:
        event = example.event
        reason = response_gate(event, settings)
        if reason is None and judged is not None and judged.judged_good(event):
            reason = "contradicted_pair"
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
    return out


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
    """One (prompt, answer, label) per plain signal; answers both liked and disliked dropped.

    Copies are left to the export's duplicate gate (`dedup.deduplicate`).
    """
    examples = [
        Example("unpaired", e.kind, e, e.prompt, e.response or "", label=label)
        for group, label in ((liked, True), (disliked, False))
        for e in group
    ]
    examples.sort(key=lambda x: (x.event.timestamp, x.event.feedback_id))
    keys = [_answer_key(x) for x in examples]
    by_answer: dict[str, set[bool]] = {}
    for x, key in zip(examples, keys, strict=True):
        by_answer.setdefault(key, set()).add(bool(x.label))
    mixed = {k for k, labels in by_answer.items() if len(labels) > 1}
    clean = []
    for x, key in zip(examples, keys, strict=True):
        if key in mixed:
            log.drop("conflicting_labels", "unpaired", x.event.feedback_id)
        else:
            clean.append(x)
    return clean


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
    judged: Judgements | None = None,
) -> list[Example]:
    """Pairs of a liked and a disliked answer to near-identical requests, each event used once.

    Candidates share a cluster (when clustering ran) and the conversation before the
    request, reach `same_request`, come from different traces and have different answers.
    Matching is greedy in the order pairs became possible (the later event's time), then most
    similar requests first, then earliest events: deterministic, no feedback id appears in two
    pairs, and a pair made on an earlier day is made again as the window moves on (a newer
    answer never takes its place), so daily incremental exports do not repeat a pair with new
    ids. The pair's prompt is the disliked event's.

    With `judged`, a candidate whose liked answer someone judged bad, or whose disliked answer
    someone judged good, never pairs. Each pair that matching over every candidate would have
    made with such an answer is counted as `contradicted_pair` (under the contradicted
    event's feedback id); matching then runs over the uncontradicted candidates.
    """
    if not liked or not disliked:
        return []
    distinct, pairs = similar_texts(
        [e.request for e in (*liked, *disliked)], vectors, neighbours, settings.same_request
    )
    index = {t: k for k, t in enumerate(distinct)}
    # Liked events by (request, cluster, context): a disliked event meets only its partners.
    liked_at: dict[tuple, list[Event]] = {}
    for e in liked:
        liked_at.setdefault((index[e.request], e.cluster_id, e.context), []).append(e)
    similar: dict[int, list[tuple[int, float]]] = {k: [(k, 1.0)] for k in range(len(distinct))}
    for i, j, sim in pairs:
        similar[i].append((j, sim))
        similar[j].append((i, sim))
    candidates = []
    for d in disliked:
        for k, sim in similar[index[d.request]]:
            for like in liked_at.get((k, d.cluster_id, d.context), ()):
                if like.trace_id != d.trace_id and normalize_text(like.response) != normalize_text(
                    d.response
                ):
                    candidates.append(
                        (
                            max(d.timestamp, like.timestamp),
                            -round(sim, 6),
                            d.timestamp,
                            d.feedback_id,
                            like.timestamp,
                            like.feedback_id,
                            d,
                            like,
                        )
                    )
    candidates.sort(key=lambda c: c[:6])
    if judged is not None:
        for d, like in _match(candidates):
            if judged.judged_bad(like):
                log.drop("contradicted_pair", "preference", like.feedback_id)
            elif judged.judged_good(d):
                log.drop("contradicted_pair", "preference", d.feedback_id)
        candidates = [
            c for c in candidates if not (judged.judged_bad(c[-1]) or judged.judged_good(c[-2]))
        ]
    out = []
    for d, like in _match(candidates):
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
    return out


def _match(candidates: Sequence[tuple]) -> list[tuple[Event, Event]]:
    """Greedy one-to-one matching of sorted candidates: (disliked, liked) pairs."""
    used: set[str] = set()
    out = []
    for *_, d, like in candidates:
        if d.feedback_id in used or like.feedback_id in used:
            continue
        used.update((d.feedback_id, like.feedback_id))
        out.append((d, like))
    return out
