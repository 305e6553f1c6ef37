"""Splits by group: near-identical requests, one trace, one pair always land on one side.

Splitting example by example leaks: the same question asked twice ends up in train and in
eval, and the eval score measures memory. Groups are the connected components of "same
trace", "same request after folding", "request cosine >= group_similarity" and "the two sides
of a pair"; a group's side is a hash of the seed and its earliest event, so the same seed
gives the same split on every run, whatever the input order (the one exception, a fallback
when no group draws validation, depends on the window's other groups: `assign_splits`).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from feedback_pipelines.routing.tuning.evalset import reference_source
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.examples import Example
from feedback_pipelines.routing.tuning.messages import normalize_text
from feedback_pipelines.routing.tuning.settings import TuningSettings
from feedback_pipelines.routing.tuning.similarity import (
    Neighbours,
    TextVectors,
    similar_text_arrays,
)


def unit_hash(seed: int, salt: str, key: str) -> float:
    """A deterministic number in [0, 1) for (seed, salt, key)."""
    digest = hashlib.sha256(f"{seed}:{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass
class SplitResult:
    """Where each event went, and figures for the data card."""

    split_of: dict[str, str] = field(default_factory=dict)  # feedback_id -> split
    group_of: dict[str, str] = field(default_factory=dict)  # feedback_id -> group id
    groups: int = 0
    largest_group: int = 0
    test_groups_by_cluster: dict[int, int] = field(default_factory=dict)
    held_out_for: dict[str, int] = field(default_factory=dict)  # feedback_id -> cluster
    validation_fallback: bool = False  # no group drew validation: the lowest draw went there


def _events(examples: Iterable[Example], extra: Iterable[Event]) -> dict[str, Event]:
    out: dict[str, Event] = {}
    for x in examples:
        out[x.event.feedback_id] = x.event
        if x.paired is not None:
            out[x.paired.feedback_id] = x.paired
    for e in extra:
        out.setdefault(e.feedback_id, e)
    return out


def _components(
    events: dict[str, Event],
    examples: Sequence[Example],
    distinct: Sequence[str],
    pairs: Sequence[np.ndarray],
) -> dict[str, int]:
    """Each event's group (a component label) over the module's four kinds of link.

    Nodes are the events, their folded requests and their traces; one sparse connected-
    components pass (scipy) instead of a union per link: a 100k-event window has ~600k.

    Args:
        events: Feedback id -> event.
        examples: The examples (their pairs link two events).
        distinct: The distinct requests `pairs` index.
        pairs: (i, j) arrays of similar requests; a list is emptied once read (the arrays
            are let go early: ~0.35 GB on a 14-day window).
    """
    node: dict[object, int] = {fid: k for k, fid in enumerate(events)}

    def at(key: object) -> int:
        return node.setdefault(key, len(node))

    src: list[int] = []
    dst: list[int] = []
    for k, e in enumerate(events.values()):
        for key in (("request", normalize_text(e.request)), ("trace", e.trace_id)):
            if key[1]:
                src.append(k)
                dst.append(at(key))
    for x in examples:
        if x.paired is not None:
            src.append(node[x.event.feedback_id])
            dst.append(node[x.paired.feedback_id])
    text_node = np.asarray([at(("request", normalize_text(t))) for t in distinct], dtype=np.int64)
    n = len(node)
    # int32 node numbers when they fit (a 14-day window links ~22M text pairs), and the
    # caller's pair arrays let go once mapped to nodes.
    kind = np.int32 if n < 2**31 else np.int64
    text_node = text_node.astype(kind)
    a, b = text_node[pairs[0]], text_node[pairs[1]]
    if isinstance(pairs, list):
        pairs.clear()
    rows = np.concatenate([np.asarray(src, dtype=kind), a])
    del a
    cols = np.concatenate([np.asarray(dst, dtype=kind), b])
    del b
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return {fid: int(labels[k]) for k, fid in enumerate(events)}


def assign_splits(
    examples: Sequence[Example],
    vectors: TextVectors,
    neighbours: Neighbours,
    settings: TuningSettings,
    regressed: set[int],
    extra: Sequence[Event] = (),
    beaten: Collection[str] = (),
) -> SplitResult:
    """Group the events behind the examples (and `extra` events), then split the groups.

    Groups of a regressed cluster that hold a reference answer (`evalset.reference_source`: a
    correction, a liked answer, an unbeaten voted answer) are held out as `test` (the eval
    cases): `eval_fraction` of them, at least one per regressed cluster (none when
    `eval_fraction` is 0). The rest go to `validation` with probability `validation_fraction`,
    otherwise `train`. In the cumulative export mode, when no group with examples drew
    validation and two or more could, the one that drew lowest goes there, of those no larger
    than their average that leave every dataset some train examples (incremental exports are
    concatenated, and this choice depends on the window's other groups). Every example gets
    its group's split (`example.split`, `.group`).

    Args:
        examples: Every example of every dataset.
        vectors: Text -> vector function.
        neighbours: The similarity search.
        settings: Thresholds, fractions and seed.
        regressed: Cluster ids regressed on this partition.
        extra: Events that are no example but must not leak either (prompt-tuning
            candidates): they join groups and get a split.
        beaten: Answers (trace ids) that lost a side-by-side vote (no reference).
    """
    events = _events(examples, extra)
    distinct, i, j, _ = similar_text_arrays(
        [e.request for e in events.values()], vectors, neighbours, settings.group_similarity
    )
    pairs = [i, j]
    del i, j
    root_of = _components(events, examples, distinct, pairs)

    members: dict[object, list[Event]] = {}
    for fid, e in events.items():
        members.setdefault(root_of[fid], []).append(e)
    result = SplitResult(groups=len(members))
    result.largest_group = max((len(m) for m in members.values()), default=0)
    anchors = {root: min((e.timestamp, e.feedback_id) for e in m)[1] for root, m in members.items()}

    referenced, corrected = set(), set()
    for x in examples:
        if reference_source(x, beaten) is not None:
            referenced.add(root_of[x.event.feedback_id])
        if x.dataset == "sft":
            corrected.add(root_of[x.event.feedback_id])
    test_roots: dict[object, int] = {}
    by_cluster: dict[int, list[object]] = {}
    for root in sorted(referenced, key=lambda r: anchors[r]):
        for c in sorted({e.cluster_id for e in members[root]} & regressed):
            by_cluster.setdefault(c, []).append(root)
    for c, roots in sorted(by_cluster.items()):
        roots = sorted(roots, key=lambda r: unit_hash(settings.seed, "eval", anchors[r]))
        if settings.eval_fraction <= 0:
            continue
        n_test = max(1, round(settings.eval_fraction * len(roots)))
        chosen = roots[:n_test]
        fixes = [r for r in roots if r in corrected]
        if len(fixes) > 1 and not set(chosen) & corrected:
            # A user's correction is the best reference: hold one out when training keeps one.
            chosen = [*chosen[:-1], fixes[0]]
        for root in chosen:
            test_roots.setdefault(root, c)
        result.test_groups_by_cluster[c] = n_test

    draw = {root: unit_hash(settings.seed, "validation", anchors[root]) for root in members}
    validation = {r for r in members if draw[r] < settings.validation_fraction} - test_roots.keys()
    # A dozen groups (llmfao's 13 prompts) all draw train one time in four at 10%: then the
    # group with examples that drew lowest goes to validation, of those no larger than average
    # that leave every dataset some train examples.
    held = {root_of[x.event.feedback_id]: Counter() for x in examples}
    for x in examples:
        held[root_of[x.event.feedback_id]][x.dataset] += 1
    trainable = held.keys() - test_roots.keys()
    if (
        settings.export_mode == "cumulative"  # days concatenated must keep a group's side
        and len(trainable) > 1
        and settings.validation_fraction > 0
        and not validation & trainable
    ):
        train = sum((held[r] for r in trainable), Counter())
        average = sum(len(members[r]) for r in trainable) / len(trainable)
        fits = [
            r
            for r in trainable
            if len(members[r]) <= average and all(n < train[d] for d, n in held[r].items())
        ]
        if fits:
            validation.add(min(fits, key=lambda r: (draw[r], anchors[r])))
            result.validation_fallback = True
    for root, group in members.items():
        anchor = anchors[root]
        if root in test_roots:
            split = "test"
        elif root in validation:
            split = "validation"
        else:
            split = "train"
        gid = hashlib.sha256(f"group:{anchor}".encode()).hexdigest()[:16]
        for e in group:
            result.split_of[e.feedback_id] = split
            result.group_of[e.feedback_id] = gid
            if split == "test":
                result.held_out_for[e.feedback_id] = test_roots[root]
    for x in examples:
        x.split = result.split_of[x.event.feedback_id]
        x.group = result.group_of[x.event.feedback_id]
    return result
