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

import numpy as np
import pandas as pd

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.messages import estimate_tokens, normalize_text
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import event_gate
from feedback_pipelines.routing.tuning.similarity import (
    Neighbours,
    TextVectors,
    similar_text_arrays,
)


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
    # id(event) -> (event, judged bad, judged good): matching asks of one event many times,
    # and its answer keys fold its texts each time. The event is held so its id stays its own.
    _verdicts: dict[int, tuple[Event, bool, bool]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def of(cls, events: Sequence[Event], settings: TuningSettings) -> Judgements:
        """The judgements of the window's events."""
        out = cls()
        for e in events:
            signal = False if e.is_correction else e.signal(settings)
            if signal is not None:
                (out.good if signal else out.bad).update(answer_keys(e))
        return out

    def _verdict(self, event: Event) -> tuple[Event, bool, bool]:
        found = self._verdicts.get(id(event))
        if found is None or found[0] is not event:
            keys = answer_keys(event)
            found = (event, any(k in self.bad for k in keys), any(k in self.good for k in keys))
            self._verdicts[id(event)] = found
        return found

    def judged_bad(self, event: Event) -> bool:
        """Someone judged this event's answer bad."""
        return self._verdict(event)[1]

    def judged_good(self, event: Event) -> bool:
        """Someone judged this event's answer good."""
        return self._verdict(event)[2]


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
    folded: dict[int, str] = {}  # id(prompt) -> its folded text: events share prompts
    keys = [_answer_key(x, folded) for x in examples]
    by_answer: dict[tuple[str, str], set[bool]] = {}
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


def _answer_key(x: Example, folded: dict[int, str]) -> tuple[str, str]:
    r"""(folded prompt, folded answer): equal exactly when `prompt + "\n=>" + answer` are.

    Folded texts hold no newline, so the prompt's lines and the answer never run into each
    other: a pair of shared strings does, without one new long string per example (~0.4 GB
    at once on a 3-day window).
    """
    prompt = folded.get(id(x.prompt))
    if prompt is None:
        prompt = "\n".join(f"{m['role']}:{normalize_text(m['content'])}" for m in x.prompt)
        folded[id(x.prompt)] = prompt
    return prompt, normalize_text(x.completion)


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
    distinct, i, j, sims = similar_text_arrays(
        [e.request for e in (*liked, *disliked)], vectors, neighbours, settings.same_request
    )
    d_at, l_at, sim, a, b = candidate_links(liked, disliked, distinct, i, j, sims)
    order = _candidate_order(liked, disliked, d_at, l_at, sim, a, b)
    d_at, l_at = d_at[order], l_at[order]
    del order, sim, a, b
    codes: dict[str, int] = {}  # one id space: a feedback id is used once, whichever side
    d_id = [codes.setdefault(e.feedback_id, len(codes)) for e in disliked]
    l_id = [codes.setdefault(e.feedback_id, len(codes)) for e in liked]
    if judged is not None:
        bad = np.zeros(len(liked), dtype=bool)
        for k in np.unique(l_at).tolist():
            bad[k] = judged.judged_bad(liked[k])
        good = np.zeros(len(disliked), dtype=bool)
        for k in np.unique(d_at).tolist():
            good[k] = judged.judged_good(disliked[k])
        for d, like in _match(d_at, l_at, d_id, l_id):
            if bad[like]:
                log.drop("contradicted_pair", "preference", liked[like].feedback_id)
            elif good[d]:
                log.drop("contradicted_pair", "preference", disliked[d].feedback_id)
        kept = ~(bad[l_at] | good[d_at])
        d_at, l_at = d_at[kept], l_at[kept]
    out = []
    for d, like in _match(d_at, l_at, d_id, l_id):
        d, like = disliked[d], liked[like]
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


#: Links joined to events at a time by `candidate_links` (memory: a few frames this long).
LINKS_PER_JOIN = 1 << 20


def candidate_links(
    liked: Sequence[Event],
    disliked: Sequence[Event],
    distinct: Sequence[str],
    i: np.ndarray,
    j: np.ndarray,
    sims: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """(disliked position, liked position, request cosine) of every pair that may be made.

    A liked and a disliked event may pair when their requests are one text or a similar pair
    (i, j, sims index `distinct`, i < j), they share cluster and context, come from different
    traces and have different answers after folding. By joins over integer codes: a 14-day
    window has millions of similar request pairs, and most never meet a partner.

    Returns:
        Arrays (disliked position, liked position, cosine as the search gave it or 1.0 for
        one text, the disliked and the liked request's index in `distinct`), in no order.
    """
    index = {t: k for k, t in enumerate(distinct)}
    codes: dict[object, int] = {}

    def coded(values) -> np.ndarray:
        return np.fromiter((codes.setdefault(v, len(codes)) for v in values), dtype=np.int64)

    def frame(events: Sequence[Event], text: str, position: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                text: np.fromiter((index[e.request] for e in events), dtype=np.int64),
                "group": coded(("group", e.cluster_id, e.context) for e in events),
                "trace": coded(("trace", e.trace_id) for e in events),
                "answer": coded(("answer", normalize_text(e.response)) for e in events),
                position: np.arange(len(events), dtype=np.int64),
            }
        )

    d_frame, l_frame = frame(disliked, "a", "d"), frame(liked, "b", "l")
    n = len(distinct)
    asked = np.zeros(n, dtype=bool)
    asked[d_frame["a"].to_numpy()] = True
    offered = np.zeros(n, dtype=bool)
    offered[l_frame["b"].to_numpy()] = True
    # Text level first (a request asked by many events is joined once), then the events.
    d_keys = d_frame[["a", "group"]].drop_duplicates()
    l_keys = l_frame[["b", "group"]].drop_duplicates()
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    own = np.flatnonzero(asked & offered)
    forward = np.flatnonzero(asked[i] & offered[j])  # links (a, b) = (i, j)
    backward = np.flatnonzero(asked[j] & offered[i])  # and (j, i)
    # Links that no disliked text asks or no liked text offers are gone before any frame is
    # built, and the rest are joined a slice at a time: a 14-day window has tens of millions.
    slices = [(own, own, None)] + [
        (first[part], second[part], part)
        for first, second, kept in ((i, j, forward), (j, i, backward))
        for part in np.array_split(kept, max(1, -(-len(kept) // LINKS_PER_JOIN)))
        if len(part)
    ]
    found = []
    for a, b, part in slices:
        cosine = (  # as the search's list gives it; 1.0 for one text
            np.ones(len(a)) if part is None else np.asarray(sims)[part].astype(np.float64)
        )
        links = pd.DataFrame({"a": a, "b": b, "sim": cosine})
        met = d_keys.merge(links, on="a").merge(l_keys, on=["b", "group"])
        met = met.merge(d_frame, on=["a", "group"]).merge(
            l_frame, on=["b", "group"], suffixes=("_d", "_l")
        )
        met = met[
            (met["trace_d"].to_numpy() != met["trace_l"].to_numpy())
            & (met["answer_d"].to_numpy() != met["answer_l"].to_numpy())
        ]
        found.append(tuple(met[c].to_numpy() for c in ("d", "l", "sim", "a", "b")))
    return tuple(np.concatenate(column) for column in zip(*found, strict=True))


def _dense_rank(keys: Sequence) -> np.ndarray:
    """Each key's rank among the distinct keys (equal keys, equal ranks), by Python's order."""
    rank = {k: r for r, k in enumerate(sorted(set(keys)))}
    return np.fromiter((rank[k] for k in keys), dtype=np.int64, count=len(keys))


def _candidate_order(
    liked: Sequence[Event],
    disliked: Sequence[Event],
    d_at: np.ndarray,
    l_at: np.ndarray,
    sim: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
) -> np.ndarray:
    """The order of the candidates that matching takes, as positions in the arrays.

    The sort key is (time the pair became possible, most similar first, disliked event's
    time and feedback id, liked event's time and id), each compared as Python compares it;
    ties of all of them (only with a feedback id twice) keep the order the candidates were
    once listed in: disliked event, its own request first then the others by index, liked
    event.
    """
    stamps = _dense_rank([e.timestamp for e in (*disliked, *liked)])
    d_stamp, l_stamp = stamps[: len(disliked)], stamps[len(disliked) :]
    d_rank = _dense_rank([(e.timestamp, e.feedback_id) for e in disliked])
    l_rank = _dense_rank([(e.timestamp, e.feedback_id) for e in liked])
    values, at = np.unique(sim, return_inverse=True)
    rounded = np.asarray([-round(v, 6) for v in values.tolist()], dtype=np.float64)
    return np.lexsort(
        (
            l_at,
            b,
            b != a,
            d_at,
            l_rank[l_at],
            d_rank[d_at],
            rounded[at.reshape(-1)],
            np.maximum(d_stamp[d_at], l_stamp[l_at]),
        )
    )


def _match(
    d_at: Sequence[int], l_at: Sequence[int], d_id: Sequence[int], l_id: Sequence[int]
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching of sorted candidates: (disliked, liked) positions.

    A candidate is taken unless one of its feedback ids (`d_id`, `l_id`: ids coded as ints)
    is already in a pair taken before it. Candidates are walked a slice at a time as Python
    ints (a 14-day window has millions: one list of them all held ~0.7 GB).
    """
    d_at, l_at = np.asarray(d_at, dtype=np.int64), np.asarray(l_at, dtype=np.int64)
    d_id, l_id = np.asarray(d_id, dtype=np.int64), np.asarray(l_id, dtype=np.int64)
    used: set[int] = set()
    out = []
    step = 1 << 20
    for lo in range(0, len(d_at), step):
        ds, ls = d_at[lo : lo + step], l_at[lo : lo + step]
        for d, like, first, second in zip(
            ds.tolist(), ls.tolist(), d_id[ds].tolist(), l_id[ls].tolist(), strict=True
        ):
            if first in used or second in used:
                continue
            used.add(first)
            used.add(second)
            out.append((d, like))
    return out
