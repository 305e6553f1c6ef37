"""The joins that expand similar-text pairs to events agree with the loops they replaced.

`request_pairs` and `preference.candidate_links` turn pairs of distinct texts into pairs of
positions by merges over integer codes (a 14-day window has millions of text pairs). Each is
compared here with the plain loop it replaced, on random small windows with repeated texts,
repeated keys, missing traces and equal answers, so every branch of the loop is met.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

from feedback_pipelines.routing.tuning.dedup import _drop_linked
from feedback_pipelines.routing.tuning.events import Event
from feedback_pipelines.routing.tuning.messages import normalize_text
from feedback_pipelines.routing.tuning.preference import _candidate_order, candidate_links
from feedback_pipelines.routing.tuning.sft import drop_linked
from feedback_pipelines.routing.tuning.similarity import exact_neighbours, request_pairs


def _vectors(texts: list[str]) -> np.ndarray:
    """Deterministic unit rows where texts sharing a first letter are near each other."""
    rows = []
    for t in texts:
        rng = np.random.default_rng(sum(map(ord, t)))
        base = np.zeros(8, dtype=np.float32)
        base[ord(t[0]) % 8] = 1.0
        row = base + rng.normal(0, 0.15, 8).astype(np.float32)
        rows.append(row / np.linalg.norm(row))
    return np.asarray(rows, dtype=np.float32)


def _reference_request_pairs(requests, keys, threshold):
    """The loop `request_pairs` ran before (buckets of positions per distinct text)."""
    distinct = sorted(set(requests))
    pairs = exact_neighbours(_vectors(distinct), threshold) if len(distinct) > 1 else []
    index = {t: k for k, t in enumerate(distinct)}
    buckets: dict[int, list[int]] = {}
    for pos, text in enumerate(requests):
        buckets.setdefault(index[text], []).append(pos)
    out = {}
    for members in buckets.values():
        for a, p in enumerate(members):
            for q in members[a + 1 :]:
                if keys[p] == keys[q]:
                    out[(p, q)] = 1.0
    for i, j, sim in pairs:
        for p in buckets[i]:
            for q in buckets[j]:
                if keys[p] == keys[q]:
                    out[(min(p, q), max(p, q))] = sim
    return sorted((p, q, s) for (p, q), s in out.items())


@pytest.mark.parametrize("seed", range(6))
def test_request_pairs_equal_the_loop(seed: int) -> None:
    rng = random.Random(seed)
    words = ["alpha", "apple", "angle", "beta", "bread", "brick", "cat", "c a t", "dog"]
    n = rng.randint(0, 60)
    requests = [rng.choice(words) for _ in range(n)]
    keys = [(rng.choice("xy"), rng.choice([None, 1, 2])) for _ in range(n)]
    for threshold in (0.5, 0.9, 0.99):
        got = request_pairs(requests, keys, _vectors, exact_neighbours, threshold)
        assert got == _reference_request_pairs(requests, keys, threshold)


def _event(k: int, rng: random.Random, words: list[str]) -> Event:
    return Event(
        feedback_id=f"f{k % 40:03d}",  # a few ids twice: ties of the whole sort key
        trace_id=rng.choice([None, "t1", "t2", "t3", f"own{k}"]),
        session_id=None,
        timestamp=f"2026-11-0{rng.randint(1, 9)}T00:00:00.000000",
        ds="2026-11-01",
        kind="thumbs_up",
        reason=None,
        score=None,
        comment=None,
        correction=None,
        response=rng.choice([None, "Yes.", "yes. ", "No.", "Maybe"]),
        model_version=None,
        prompt_version=None,
        user_role=None,
        is_negative=False,
        cluster_id=rng.choice([None, 1, 2]),
        prompt=[],
        request=rng.choice(words),
        context=rng.choice(["", "c1"]),
        trace_found=True,
    )


def _reference_links(liked, disliked, distinct, pairs):
    """The loop `liked_disliked_pairs` ran before, as (disliked pos, liked pos, cosine)."""
    index = {t: k for k, t in enumerate(distinct)}
    liked_at: dict[tuple, list[int]] = {}
    for pos, e in enumerate(liked):
        liked_at.setdefault((index[e.request], e.cluster_id, e.context), []).append(pos)
    similar = {k: [(k, 1.0)] for k in range(len(distinct))}
    for i, j, sim in pairs:
        similar[i].append((j, sim))
        similar[j].append((i, sim))
    out = []
    for dpos, d in enumerate(disliked):
        for k, sim in similar[index[d.request]]:
            for lpos in liked_at.get((k, d.cluster_id, d.context), ()):
                like = liked[lpos]
                if like.trace_id != d.trace_id and normalize_text(like.response) != normalize_text(
                    d.response
                ):
                    out.append((dpos, lpos, sim))
    return out  # in the order the loop listed them


@pytest.mark.parametrize("seed", range(6))
def test_candidate_links_equal_the_loop(seed: int) -> None:
    rng = random.Random(100 + seed)
    words = ["alpha", "apple", "angle", "beta", "bread", "cat", "dog"]
    events = [_event(k, rng, words) for k in range(rng.randint(1, 50))]
    liked = [e for e in events if rng.random() < 0.5] or events[:1]
    disliked = [e for e in events if e not in liked] or events[-1:]
    distinct = sorted({e.request for e in (*liked, *disliked)})
    for threshold in (0.5, 0.95):
        pairs = exact_neighbours(_vectors(distinct), threshold) if len(distinct) > 1 else []
        i = np.asarray([p[0] for p in pairs], dtype=np.int64)
        j = np.asarray([p[1] for p in pairs], dtype=np.int64)
        s = np.asarray([p[2] for p in pairs], dtype=np.float64)
        d_at, l_at, sim, a, b = candidate_links(liked, disliked, distinct, i, j, s)
        got = list(zip(d_at.tolist(), l_at.tolist(), sim.tolist(), strict=True))
        listed = _reference_links(liked, disliked, distinct, pairs)
        assert sorted(got) == sorted(listed)
        # The matching order: the old sort of the listed candidates (stable on ties).
        order = _candidate_order(liked, disliked, d_at, l_at, sim, a, b)
        ordered = [got[k][:2] for k in order.tolist()]
        d_, l_ = disliked, liked
        expected = sorted(
            listed,
            key=lambda c: (
                max(d_[c[0]].timestamp, l_[c[1]].timestamp),
                -round(c[2], 6),
                d_[c[0]].timestamp,
                d_[c[0]].feedback_id,
                l_[c[1]].timestamp,
                l_[c[1]].feedback_id,
            ),
        )
        assert ordered == [c[:2] for c in expected]


@pytest.mark.parametrize("seed", range(12))
def test_drop_linked_arrays_equal_the_loop(seed: int) -> None:
    rng = random.Random(200 + seed)
    n = rng.randint(0, 40)
    pairs = sorted(
        {tuple(sorted(rng.sample(range(n), 2))) for _ in range(rng.randint(0, 60) * (seed % 3))}
        if n > 1
        else []
    )
    p = np.asarray([a for a, _ in pairs], dtype=np.int64)
    q = np.asarray([b for _, b in pairs], dtype=np.int64)
    assert _drop_linked(n, p, q) == drop_linked(n, pairs)
