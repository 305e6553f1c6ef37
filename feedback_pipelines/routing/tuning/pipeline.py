"""From a window of feedback to every tuning set: the one function the asset and tests call.

Order matters and is fixed: gates per event, SFT (with conflicts and dedup), preference pairs
(none contradicted by another judgement; side-by-side votes by majority), unpaired signals, one
duplicate gate over all of them, cluster ranking, group splits over everything (candidates
included, so nothing of an eval group leaks into a prompt-tuning file), eval cases (through the
same duplicate gate), candidates, and a last PII sweep over every text that would be published.
In the `incremental` export mode, the examples and candidate cases of earlier days are then
left out (everything above still sees the whole window, so a copy or a conflict with an earlier
day's example is still found), and so is a voted pair an earlier day's export already holds,
either way (`held_back_votes`).
"""

from __future__ import annotations

import gc
import heapq
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from operator import attrgetter
from typing import NamedTuple

import pandas as pd

from feedback_pipelines.routing.tuning import gates
from feedback_pipelines.routing.tuning.candidates import (
    build_candidates,
    failing_events,
    rank_clusters,
    safe_label,
)
from feedback_pipelines.routing.tuning.dedup import deduplicate
from feedback_pipelines.routing.tuning.evalset import eval_cases
from feedback_pipelines.routing.tuning.events import Event, prepare_events
from feedback_pipelines.routing.tuning.examples import VOTED, Example
from feedback_pipelines.routing.tuning.preference import (
    Judgements,
    correction_pairs,
    liked_disliked_pairs,
    plain_signals,
    unpaired_examples,
)
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.sft import Conflict, build_sft
from feedback_pipelines.routing.tuning.similarity import Neighbours, TextVectors, shared_search
from feedback_pipelines.routing.tuning.splits import SplitResult, assign_splits
from feedback_pipelines.routing.tuning.votes import one_way, pair_key, vote_pairs

_DATASET_SPLIT = attrgetter("dataset", "split")


@dataclass
class TuningSets:
    """Everything one export holds, before it is written."""

    ds: str
    window_start: str
    window_end: str
    settings: TuningSettings
    examples: list[Example]
    candidates: list[dict]
    ranking: list[dict]
    conflicts: list[Conflict]
    log: gates.GateLog
    splits: SplitResult
    regressed: list[int]  # clusters with a regression of their own or of their theme
    events: list[Event]
    clustering: bool
    notes: list[str] = field(default_factory=list)
    embedding: dict = field(default_factory=dict)
    held_out_candidates: int = 0
    run_id: str | None = None  # the orchestrator's run, for the data card (None outside one)
    earlier_left_out: dict[str, int] = field(default_factory=dict)  # incremental mode
    regressed_themes: list[RegressedTheme] = field(default_factory=list)
    votes: dict[str, int] = field(default_factory=dict)  # `votes.VoteTally`
    contested: list[tuple[Event, Event, int]] = field(default_factory=list)  # split votes
    # incremental mode: voted pairs held back because an earlier export holds them the other
    # way, with where (`held_back_votes`)
    reversed_votes: list[tuple[Example, ExportedPair]] = field(default_factory=list)

    def of(self, dataset: str, split: str | None = None) -> list[Example]:
        """The examples of one dataset (and split), in file order (by example id).

        Sorted once per state of `examples` (the writer and the data card ask ~30 times).
        """
        state = (id(self.examples), tuple(map(_DATASET_SPLIT, self.examples)))
        if getattr(self, "_of_state", None) != state:
            ordered = sorted(self.examples, key=lambda x: x.example_id)
            index: dict[tuple, list[Example]] = {}
            for x in ordered:
                index.setdefault((x.dataset, None), []).append(x)
                index.setdefault((x.dataset, x.split), []).append(x)
            self._of_state, self._of_index = state, index
        return list(self._of_index.get((dataset, split), []))

    def input_summary(self) -> dict:
        """What the window held: events by kind, corrections, versions (for the data card)."""
        kinds = Counter(e.kind for e in self.events)
        return {
            "events": len(self.events),
            "by_kind": dict(sorted(kinds.items())),
            "corrections": sum(e.is_correction for e in self.events),
            "negative": sum(e.is_negative for e in self.events),
            "trace_unknown": sum(not e.prompt for e in self.events),
        }


def _flagged(regressions: pd.DataFrame | None) -> pd.DataFrame:
    if regressions is None or not len(regressions) or "is_regression" not in regressions:
        return pd.DataFrame({"cluster_id": [], "topic_id": []})
    return regressions[regressions["is_regression"].fillna(False).astype(bool)]


def _ids(values: pd.Series) -> set[int]:
    return {int(c) for c in pd.to_numeric(values, errors="coerce").dropna() if c >= 0}


def regressed_clusters(regressions: pd.DataFrame | None) -> list[int]:
    """Cluster ids with a regression of their own in these `version_regressions` rows."""
    return sorted(_ids(_flagged(regressions)["cluster_id"]))


@dataclass(frozen=True)
class RegressedTheme:
    """A theme with a regression of its own: every subtopic of it counts as regressed.

    A theme is flagged where its subtopics are each too small to show the change (the demo's
    planted regression is flagged on its theme alone); a fix is measured on all of them.
    """

    topic_id: int
    label: str
    clusters: tuple[int, ...]


def regressed_themes(
    regressions: pd.DataFrame | None,
    clusters: pd.DataFrame | None,
    themes: pd.DataFrame | None = None,
) -> list[RegressedTheme]:
    """Themes flagged in these rows (`topic_id` set, `cluster_id` not), with their subtopics.

    Args:
        regressions: `version_regressions` rows of the partition.
        clusters: `feedback_clusters` rows of the partition (`cluster_id`, `topic_id`).
        themes: `feedback_topics` rows of the partition (`topic_id`, `label`), for labels.
    """
    flagged = _flagged(regressions)
    if "topic_id" not in flagged or clusters is None or "topic_id" not in clusters:
        return []
    ids = _ids(flagged.loc[flagged["cluster_id"].isna(), "topic_id"])
    labels = {}
    if themes is not None and {"topic_id", "label"} <= set(themes.columns):
        labels = dict(zip(themes["topic_id"].astype(int), themes["label"].fillna(""), strict=True))
    members = clusters.dropna(subset=["topic_id"])
    out = []
    for t in sorted(ids):
        own = _ids(members.loc[members["topic_id"].astype(int) == t, "cluster_id"])
        if own:  # a theme that has since faded has nothing left to hold out
            out.append(RegressedTheme(t, safe_label(labels.get(t, "")), tuple(sorted(own))))
    return out


def _gated_texts(events: Sequence[Event]) -> Iterable[str | None]:
    """Every text a PII gate may read: prompts (each shared prompt once), answers, feedback."""
    prompts = {id(e.prompt): e.prompt for e in events}
    yield from (m["content"] for prompt in prompts.values() for m in prompt)
    for e in events:
        yield e.response
        yield e.correction
        yield e.comment


def _final_pii_sweep(examples: Sequence[Example], log: gates.GateLog) -> list[Example]:
    """Drop anything a gate let through that still looks like PII (belt and braces)."""
    out = []
    for x in examples:
        if gates.has_pii(x.texts):
            log.drop("pii", x.dataset, x.event.feedback_id)
            continue
        out.append(x)
    return out


def newest_day(x: Example) -> str:
    """The partition day of the newest feedback event an example was made from."""
    return max(e.ds for e in (x.event, x.paired) if e is not None)


class ExportedPair(NamedTuple):
    """Where an earlier day exported a voted pair (`routing.day.read_exported_votes`)."""

    day: str
    example_id: str
    file: str  # in that day's export folder
    line: int


def held_back_votes(
    examples: list[Example],
    exported: Mapping[bytes, ExportedPair],
    log: gates.GateLog,
) -> tuple[list[Example], list[tuple[Example, ExportedPair]]]:
    """The day's new examples without the voted pairs an earlier day's export already holds.

    Votes keep coming on two answers, and a pair is new again on the day its majority changes
    side (`votes._deciding`). Whoever concatenates incremental exports must not get it twice,
    least of all both ways: a pair of the same texts exported before the same way is left out
    (`exported_earlier`), and one exported before the other way is left out and returned for
    people to settle (`reversed_after_export`).

    Args:
        examples: The day's new examples (`_only_new`).
        exported: `votes.pair_key` (of prompt, chosen, rejected) -> where the earlier days
            exported each voted pair (`routing.day.read_exported_votes`).
        log: Where each pair left out is counted.

    Returns:
        The examples kept, and each reversed pair with where it was exported the other way.
    """
    if not exported:
        return examples, []
    kept, reversed_votes = [], []
    for x in examples:
        if x.dataset != "preference" or x.source not in VOTED:
            kept.append(x)
            continue
        other_way = pair_key(x.prompt, x.rejected, x.completion)
        if pair_key(x.prompt, x.completion, x.rejected) in exported:
            log.drop("exported_earlier", x.dataset, x.event.feedback_id)
        elif other_way in exported:
            log.drop("reversed_after_export", x.dataset, x.event.feedback_id)
            reversed_votes.append((x, exported[other_way]))
        else:
            kept.append(x)
    return kept, reversed_votes


def _only_new(
    ds: str, examples: list[Example], candidates: list[dict], events: Sequence[Event]
) -> tuple[list[Example], list[dict], dict[str, int]]:
    """The examples and candidate cases whose newest feedback is of day `ds`.

    Returns:
        Those examples, those candidate rows, and how many of each dataset were left out.
    """
    new = [x for x in examples if newest_day(x) == ds]
    left = Counter(x.dataset for x in examples if newest_day(x) != ds)
    day_of = {e.feedback_id: e.ds for e in events}
    kept = [r for r in candidates if day_of.get(r["feedback_id"]) == ds]
    if len(kept) < len(candidates):
        left["candidates"] = len(candidates) - len(kept)
    return new, kept, dict(sorted(left.items()))


#: Collections of the middle generation between two full ones inside `frozen_gc` (Python's
#: default is 10): with the long-lived objects frozen, the full pass would otherwise run at
#: nearly every middle one.
FULL_COLLECTION_EVERY = 100


@contextmanager
def frozen_gc() -> Iterator[Callable[[], None]]:
    """Keep the objects alive now, and those of each later `freeze()`, out of full collections.

    A window holds millions of long-lived objects (events, prompts, examples, their texts'
    caches) and makes millions of new ones: every full pass of the cyclic garbage collector
    walked them all, 19 passes and ~9 s of a 3-day window's ~75 s. Frozen objects are still
    freed by reference counting; only a cycle among them waits until the block ends (when
    they are unfrozen and the collector's thresholds set back). When something outside had
    frozen objects first, the block does nothing: unfreezing would undo that freeze too.

    Yields:
        `gc.freeze`, or a no-op when the block does nothing: call it once more long-lived
        objects exist.
    """
    if gc.get_freeze_count():
        yield lambda: None
        return
    thresholds = gc.get_threshold()
    gc.set_threshold(*thresholds[:2], max(thresholds[2], FULL_COLLECTION_EVERY))
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


class Steps:
    """Progress lines for the long steps: what went in, what came out, time and rate.

    Args:
        log: Where lines go (the asset's `context.log.info`); None: silent, nothing timed.
        after: Called after each step (e.g. `frozen_gc`'s freeze).
    """

    def __init__(
        self, log: Callable[[str], None] | None = None, after: Callable[[], None] | None = None
    ) -> None:
        self.log = log
        self.after = after
        self.seconds: dict[str, float] = {}

    @contextmanager
    def step(self, name: str, n: int, unit: str) -> Iterator[dict]:
        """Time one step over n items; the block may set `out["result"]` for the line."""
        out: dict = {}
        started = time.perf_counter()
        yield out
        seconds = time.perf_counter() - started
        if self.after is not None:
            self.after()
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        if self.log is not None:
            rate = f", {n / seconds:,.0f} {unit}/s" if seconds > 0.01 and n else ""
            result = f" -> {out['result']}" if "result" in out else ""
            self.log(f"tuning {name}: {n:,} {unit}{result} in {seconds:.1f}s{rate}")


def search_floor(settings: TuningSettings) -> float:
    """The lowest similarity any builder asks: what a `SharedSearch` must keep pairs from."""
    return min(settings.near_duplicate, settings.same_request, settings.group_similarity)


def build_tuning_sets(
    events: pd.DataFrame,
    *,
    vectors: TextVectors,
    neighbours: Neighbours,
    ds: str,
    window_start: str,
    settings: TuningSettings | None = None,
    clusters: pd.DataFrame | None = None,
    regressions: pd.DataFrame | None = None,
    themes: pd.DataFrame | None = None,
    notes: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    rankings: pd.DataFrame | None = None,
    exported_votes: Mapping[bytes, ExportedPair] | None = None,
) -> TuningSets:
    """Build SFT, preference, unpaired and eval examples and prompt-tuning candidates.

    Args:
        events: the window's events with their trace's texts
            (`routing.day.read_window_events`); a `cluster_id` column (from
            `cluster_assignments`) when clustering ran.
        vectors: Text -> L2-normalized vector (requests and corrections are embedded).
        neighbours: Similarity search returning every pair over a threshold.
        ds: The partition (window end), `YYYY-MM-DD`.
        window_start: First day of the window.
        settings: Thresholds; defaults when None.
        clusters: `feedback_clusters` rows of the partition (labels for ranking; with
            `topic_id`, a flagged theme's subtopics count as regressed).
        regressions: `version_regressions` rows whose window ends at the partition.
        themes: `feedback_topics` rows of the partition (labels of flagged themes).
        notes: Remarks for the data card (e.g. an upstream table that was missing).
        log: Progress lines (counts, time, rate) of each long step; None: silent.
        rankings: The votes the window's rankings of answers imply, as vote events
            (`routing.day.read_rankings`): they make preference pairs only (`votes`).
        exported_votes: In the incremental mode, the voted pairs earlier days exported
            (`routing.day.read_exported_votes`): none is exported again (`held_back_votes`).
    """
    with frozen_gc() as freeze:
        return _build_tuning_sets(
            events,
            vectors=vectors,
            neighbours=neighbours,
            ds=ds,
            window_start=window_start,
            settings=settings,
            clusters=clusters,
            regressions=regressions,
            themes=themes,
            notes=notes,
            steps=Steps(log, after=freeze),
            rankings=rankings,
            exported_votes=exported_votes,
        )


def _build_tuning_sets(
    events: pd.DataFrame,
    *,
    vectors: TextVectors,
    neighbours: Neighbours,
    ds: str,
    window_start: str,
    settings: TuningSettings | None,
    clusters: pd.DataFrame | None,
    regressions: pd.DataFrame | None,
    themes: pd.DataFrame | None,
    notes: Sequence[str],
    steps: Steps,
    rankings: pd.DataFrame | None = None,
    exported_votes: Mapping[bytes, ExportedPair] | None = None,
) -> TuningSets:
    settings = settings or TuningSettings()
    neighbours = shared_search(neighbours, search_floor(settings))
    with steps.step("prepare", len(events), "events") as out:
        evs = prepare_events(events)
        ranked = prepare_events(rankings) if rankings is not None and len(rankings) else []
        gates.screen(_gated_texts([*evs, *ranked]))
        flagged_themes = regressed_themes(regressions, clusters, themes)
        regressed = sorted(
            {*regressed_clusters(regressions), *(c for t in flagged_themes for c in t.clusters)}
        )
        gate_log = gates.GateLog()
        out["result"] = f"{len(evs):,} events"

    corrections = [e for e in evs if e.is_correction]
    with steps.step("sft", len(corrections), "corrections") as out:
        sft, conflicts, _ = build_sft(corrections, vectors, neighbours, settings, gate_log)
        out["result"] = f"{len(sft):,} examples, {len(conflicts):,} conflicts"
    with steps.step("preference", len(evs), "events") as out:
        # A side-by-side vote judges one answer against another, not either alone.
        unvoted = [e for e in evs if e.vote is None]
        judged = Judgements.of(unvoted, settings)
        preference = correction_pairs(sft, settings, gate_log, judged)
        in_time = heapq.merge(evs, ranked, key=attrgetter("timestamp", "feedback_id"))
        voted, votes = vote_pairs(list(in_time), settings, gate_log)
        preference += voted
        liked, disliked = plain_signals(unvoted, settings, gate_log)
        preference += liked_disliked_pairs(
            liked, disliked, vectors, neighbours, settings, gate_log, judged
        )
        preference = one_way(preference, gate_log)
        unpaired = unpaired_examples(liked, disliked, gate_log)
        out["result"] = (
            f"{len(preference):,} pairs ({len(voted):,} from {votes.votes:,} votes"
            + (f", {votes.ranked:,} of them from rankings" if votes.ranked else "")
            + "), "
            f"{len(unpaired):,} unpaired"
        )
    found = [*sft, *preference, *unpaired]
    with steps.step("dedup", len(found), "examples") as out:
        examples = deduplicate(found, vectors, neighbours, settings, gate_log)
        examples = _final_pii_sweep(examples, gate_log)
        out["result"] = f"{len(examples):,} kept"

    clustering = "cluster_id" in events.columns
    with steps.step("ranking", len(evs), "events") as out:
        themed = frozenset(c for t in flagged_themes for c in t.clusters)
        ranking = rank_clusters(evs, clusters, regressions, themed) if clustering else []
        failing = failing_events(evs, settings) if clustering else []
        out["result"] = f"{len(ranking):,} clusters, {len(failing):,} failing events"
    with steps.step("splits", len(examples) + len(failing), "examples and events") as out:
        split = assign_splits(
            examples, vectors, neighbours, settings, set(regressed), failing, votes.beaten
        )
        out["result"] = f"{split.groups:,} groups, largest {split.largest_group:,}"
    with steps.step("eval", len(examples), "examples") as out:
        evals = eval_cases(examples, votes.beaten)
        evals = deduplicate(evals, vectors, neighbours, settings, gate_log)
        evals = _final_pii_sweep(evals, gate_log)
        out["result"] = f"{len(evals):,} eval cases"
    with steps.step("candidates", len(failing), "events") as out:
        candidates = build_candidates(
            failing, examples, ranking, split.split_of, settings, gate_log, votes.beaten
        )
        out["result"] = f"{len(candidates):,} candidate cases"
    held_out = sum(split.split_of.get(e.feedback_id) == "test" for e in failing)
    exported, left, reversed_votes = [*examples, *evals], {}, []
    if settings.export_mode == "incremental":
        exported, candidates, left = _only_new(ds, exported, candidates, evs)
        exported, reversed_votes = held_back_votes(exported, exported_votes or {}, gate_log)
    return TuningSets(
        ds=ds,
        window_start=window_start,
        window_end=ds,
        settings=settings,
        examples=exported,
        candidates=candidates,
        ranking=ranking,
        conflicts=conflicts,
        log=gate_log,
        splits=split,
        regressed=regressed,
        events=evs,
        clustering=clustering,
        notes=list(notes),
        held_out_candidates=held_out,
        earlier_left_out=left,
        regressed_themes=flagged_themes,
        votes=votes.as_dict(),
        contested=votes.contested,
        reversed_votes=reversed_votes,
    )
