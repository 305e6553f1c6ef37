"""Preference pairs from side-by-side votes: people shown two answers who picked one.

A product that asks "which answer is better?" (or a crowd of raters, as llmfao's) sends a vote
as feedback on both answers (a thumbs-up on the one chosen, a thumbs-down on the other),
linked by `metadata.preference`: `chosen_trace_id`, `rejected_trace_id` and an `id` the events
of one vote share. A vote says one answer beat another, not that either is good or bad, so its
events make neither unpaired examples nor liked-vs-disliked pairs, and judge nothing that
contradicts another pair (`preference.Judgements`); they make pairs of their own:

- the votes on one pair of answers are counted both ways and the pair is made the way most of
  them went; as many votes each way make no pair (`split_vote`);
- the pair's events are those of the vote from which the majority has held (`_deciding`): its
  rejected answer's event is the anchor (lineage `feedback_id`, `trace_id`), its chosen
  answer's the paired one, and the pair is new on that vote's day (incremental exports);
- the two answers must answer one prompt (same conversation and request, after folding),
  differ after folding, and pass the event and answer gates;
- two models can give one text: pairs of the same two texts that went opposite ways keep the
  way with more votes over them all, neither on a tie (`_one_way`), so an export never
  teaches both.

A **ranking** of answers to one conversation (traces sharing `metadata.sibling_group`, ordered
by `metadata.rank`, 0 the best: OpenAssistant's ranked siblings) is a vote for each answer over
each one ranked below it (`routing.day.read_rankings` reads them as vote events, ids starting
`RANKING`, on the later answer's day); they go through the same count and gates, and their
pairs' source is `ranking` rather than `pairwise_vote`.

A pair held out for eval gives a case whose reference is its chosen answer only when that
answer lost no comparison of the window: an answer that beat a worse one is not yet a good one.
Votes are comparisons, so no other judgement of one answer contradicts a voted pair (the
`contradicted_pair` gate is for pairs built from thumbs of separate requests).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.events import RANKING, Event
from feedback_pipelines.routing.tuning.examples import VOTED, Example
from feedback_pipelines.routing.tuning.messages import fold_text, normalize_text
from feedback_pipelines.routing.tuning.preference import response_gate
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import event_gate


@dataclass
class VoteTally:
    """What the window's votes came to (the data card's `sources.votes`)."""

    votes: int = 0  # votes with a chosen and a rejected answer
    ranked: int = 0  # of them, the comparisons rankings imply (one per answer ranked below)
    compared: int = 0  # distinct pairs of answers they compared
    single: int = 0  # pairs one vote decided
    unanimous: int = 0  # pairs two or more votes decided, all the same way
    split: int = 0  # pairs with as many votes each way: no pair made
    outvoted: int = 0  # votes against the majority of their pair
    pairs: int = 0  # pairs that passed the pair gates (before the export's duplicate gate)
    # answers (trace ids) that lost a valid comparison: no eval case takes them as reference
    beaten: set[str] = field(default_factory=set, repr=False)
    # pairs of answers to one prompt split evenly, for people (`review`): the latest vote's
    # two events and the votes cast
    contested: list[tuple[Event, Event, int]] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, int]:
        """The counts (the data card's `sources.votes`); not `asdict`, which copies every event."""
        kept = (f.name for f in fields(self) if f.name not in ("beaten", "contested"))
        return {name: getattr(self, name) for name in kept}


#: Reasons that make a vote no comparison at all: its loser is not beaten.
_NOT_COMPARED = frozenset({"no_trace", "different_prompts", "identical_answers"})


def _deciding(casts: list[list[Event]]) -> list[Event] | None:
    """The vote from which the majority has held (its first vote), or None for a tie.

    Votes are taken in time order; the lead moves one vote at a time, so the majority's side
    last took the lead from a tie with this vote. A pair is made again each day from the same
    vote while the majority holds, and from a new one only when it changes side.
    """
    first = casts[0][0].vote[1]
    lead, since = 0, None
    for cast in casts:
        before = lead
        lead += 1 if cast[0].vote[1] == first else -1
        if before == 0:
            since = cast
    return since if lead else None


def _event_of(cast: list[Event], trace_id: str, by_trace: dict[str, Event]) -> Event | None:
    """The vote's own event on this answer, or else the trace's earliest event."""
    return next((e for e in cast if e.trace_id == trace_id), None) or by_trace.get(trace_id)


def _same_prompt(a: Event, b: Event) -> bool:
    return a.context == b.context and normalize_text(a.request) == normalize_text(b.request)


def _gate(better: Event | None, worse: Event | None, settings: TuningSettings) -> str | None:
    """The filter that removes a voted pair, or None."""
    if better is None or worse is None:
        return "no_trace"
    reason = event_gate(worse, settings) or event_gate(better, settings)
    if reason is None and not _same_prompt(better, worse):
        reason = "different_prompts"
    reason = reason or response_gate(better, settings) or response_gate(worse, settings)
    if reason is None and normalize_text(better.response) == normalize_text(worse.response):
        reason = "identical_answers"
    return reason


def vote_pairs(
    events: Sequence[Event], settings: TuningSettings, log: gates.GateLog
) -> tuple[list[Example], VoteTally]:
    """One preference pair per pair of answers the window's votes compared (see the module).

    Args:
        events: The window's events, earliest first (`prepare_events`); those without a
            vote only lend a voted answer's event when the vote's own is missing.
        settings: Thresholds of the answer gates.
        log: Where each pair removed is counted (under its anchor's feedback id).

    Returns:
        The pairs, earliest anchor first, and the tally of the votes.
    """
    by_trace: dict[str, Event] = {}
    votes: dict[str, list[Event]] = {}  # vote id -> its events, in the order of the first
    for e in events:
        ranked = e.vote is not None and e.vote[0].startswith(RANKING)
        if e.trace_id and not ranked:  # a ranking's events are its own vote's only
            by_trace.setdefault(e.trace_id, e)
        if e.vote is not None:
            votes.setdefault(e.vote[0], []).append(e)
    # (answer, answer) in text order -> its votes, in time order
    compared: dict[tuple[str, str], list[list[Event]]] = {}
    for cast in votes.values():
        _, chosen, rejected = cast[0].vote
        compared.setdefault((min(chosen, rejected), max(chosen, rejected)), []).append(cast)
    ranked = sum(v.startswith(RANKING) for v in votes)
    tally = VoteTally(votes=len(votes), ranked=ranked, compared=len(compared))
    made: list[tuple[Example, int, int]] = []  # each pair, the votes for it and against it
    for casts in compared.values():
        cast = _deciding(casts)
        if cast is None:
            tally.split += 1
            log.drop("split_vote", "preference", casts[0][0].feedback_id)
            _, one, other = casts[-1][0].vote
            a, b = _event_of(casts[-1], one, by_trace), _event_of(casts[-1], other, by_trace)
            if _gate(a, b, settings) not in _NOT_COMPARED:  # a tie people can settle
                tally.contested.append((a, b, len(casts)))
            continue
        _, chosen, rejected = cast[0].vote
        against = sum(c[0].vote[1] != chosen for c in casts)
        tally.outvoted += against
        tally.single += len(casts) == 1
        tally.unanimous += len(casts) > 1 and not against
        better = _event_of(cast, chosen, by_trace)
        worse = _event_of(cast, rejected, by_trace)
        reason = _gate(better, worse, settings)
        if reason not in _NOT_COMPARED:
            tally.beaten.add(rejected)
        if reason:
            log.drop(reason, "preference", (worse or cast[0]).feedback_id)
            continue
        pair = Example(
            "preference",
            "ranking" if cast[0].vote[0].startswith(RANKING) else "pairwise_vote",
            worse,
            worse.prompt,
            better.response or "",
            rejected=worse.response,
            paired=better,
        )
        made.append((pair, len(casts) - against, against))
    out = _one_way(made, log)
    tally.pairs = len(out)
    out.sort(key=lambda x: (x.event.timestamp, x.event.feedback_id))
    return out, tally


def pair_texts(
    prompt: Sequence[Mapping[str, str]],
    chosen: str | None,
    rejected: str | None,
    fold: Callable[[str | None], str] = normalize_text,
) -> tuple[str, str, str]:
    """A pair as its texts: the prompt, the answer preferred, the other (folded).

    Two models can give one text, so "the same pair" is the same texts, whichever traces.
    """
    folded = json.dumps([(m["role"], fold(m["content"])) for m in prompt])
    return folded, fold(chosen), fold(rejected or "")


def _texts(x: Example) -> tuple[str, str, str]:
    return pair_texts(x.prompt, x.completion, x.rejected)


def pair_key(
    prompt: Sequence[Mapping[str, str]], chosen: str | None, rejected: str | None
) -> bytes:
    """`pair_texts` as a 16-byte digest, for a year of earlier exports held as keys.

    Folded without `normalize_text`'s memo, which 500k pairs read once would fill with ~2 GB
    of texts.
    """
    text = json.dumps(pair_texts(prompt, chosen, rejected, fold_text))
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _one_way(made: list[tuple[Example, int, int]], log: gates.GateLog) -> list[Example]:
    """The pairs, but never the same two answer texts both ways.

    Votes are counted per pair of answers (traces); two models can give one text, and their
    pairs can then go opposite ways. The votes for each way are added up over those pairs
    (a pair's majority for it, its minority for the other way): the way with more keeps its
    pairs (`contradicted_pair` for the others), as many each way keeps neither (`split_vote`).
    """
    keys = [_texts(x) for x, _, _ in made]
    support: Counter[tuple[str, str, str]] = Counter()
    for (prompt, better, worse), (_, won, lost) in zip(keys, made, strict=True):
        support[(prompt, better, worse)] += won
        support[(prompt, worse, better)] += lost
    present = set(keys)
    out = []
    for key, (x, _, _) in zip(keys, made, strict=True):
        other = (key[0], key[2], key[1])
        if other in present and support[key] <= support[other]:
            tie = support[key] == support[other]
            log.drop("split_vote" if tie else "contradicted_pair", "preference",
                     x.event.feedback_id)  # fmt: skip
            continue
        out.append(x)
    return out


def one_way(pairs: Sequence[Example], log: gates.GateLog) -> list[Example]:
    """Every preference pair but those whose two answer texts are also paired the other way.

    One training set must not teach A over B and B over A. People who compared the two side
    by side (or ranked them) outweigh judgements made apart: a voted pair stays and the other
    way goes; two pairs from judgements made apart (thumbs, corrections) both go. Voted pairs
    are already one way (`_one_way`). Each pair dropped is `contradicted_pair`.
    """
    keys = [_texts(x) for x in pairs]
    present = set(keys)
    voted = {k for k, x in zip(keys, pairs, strict=True) if x.source in VOTED}
    out = []
    for key, x in zip(keys, pairs, strict=True):
        other = (key[0], key[2], key[1])
        if other in present and (x.source not in VOTED or other in voted):
            log.drop("contradicted_pair", "preference", x.event.feedback_id)
        else:
            out.append(x)
    return out
