"""Stable cluster ids: match today's clusters to the previous partition's.

Clustering is refitted every day, and its raw labels (0, 1, 2...) mean nothing from one fit to
the next: that is why BERTopic users see "topics change completely between re-runs". Here each
new cluster is matched one-to-one to a previous cluster by the cosine similarity of their
centroids in the embedding space (the one space that does not change between days), with the
Hungarian algorithm (`scipy.optimize.linear_sum_assignment`) and a minimum similarity. A matched
cluster keeps its id; an unmatched one gets a fresh id and is marked new; a previous cluster left
unmatched is reported once more, marked faded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment


@dataclass(frozen=True)
class Match:
    """Today's cluster `current` (row position) continues previous cluster id `previous_id`."""

    current: int
    previous_id: int
    similarity: float


def _unit_rows(rows: list[np.ndarray] | np.ndarray) -> np.ndarray:
    matrix = np.asarray([np.asarray(r, dtype=np.float64) for r in rows], dtype=np.float64)
    if matrix.ndim != 2:
        return matrix.reshape(len(matrix), -1)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def similarity_matrix(current: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Cosine similarity of every current centroid (rows) to every previous one (columns)."""
    if len(current) == 0 or len(previous) == 0:
        return np.zeros((len(current), len(previous)))
    a, b = _unit_rows(current), _unit_rows(previous)
    if a.shape[1] != b.shape[1]:  # a different embedding model: nothing can match
        return np.zeros((len(a), len(b)))
    return a @ b.T


def match_clusters(
    current: np.ndarray, previous: np.ndarray, previous_ids: list[int], threshold: float
) -> list[Match]:
    """One-to-one matches that maximise the total similarity over pairs above the threshold.

    Pairs under the threshold are worth nothing to the solver (not merely filtered afterwards),
    so it never gives up a good pair to make room for one that would be rejected anyway.

    Args:
        current: Today's centroids, one row each.
        previous: The previous partition's centroids, one row each.
        previous_ids: The stable id of each previous row.
        threshold: Minimum cosine similarity for two clusters to be the same topic.

    Returns:
        The accepted matches, by current row.
    """
    sim = similarity_matrix(current, previous)
    if sim.size == 0:
        return []
    gain = np.where(sim >= threshold, sim, 0.0)
    rows, cols = linear_sum_assignment(gain, maximize=True)
    matches = [
        Match(int(r), int(previous_ids[c]), float(sim[r, c]))
        for r, c in zip(rows, cols, strict=True)
        if sim[r, c] >= threshold
    ]
    return sorted(matches, key=lambda m: m.current)


def assign_stable_ids(
    current_centroids: list[np.ndarray] | np.ndarray,
    previous: pd.DataFrame | None,
    next_id: int,
    threshold: float,
) -> pd.DataFrame:
    """A stable id for each of today's clusters, and which previous clusters faded.

    Args:
        current_centroids: Today's centroids (embedding space), one per cluster, in the order
            of today's clusters.
        previous: The previous partition's clusters: `cluster_id` and `centroid` (faded rows
            included, so a cluster missing for one day gets its id back). None or empty on the
            first day.
        next_id: First unused id (greater than every id ever given).
        threshold: Minimum centroid cosine similarity to keep an id.

    Returns:
        One row per current cluster, in order: `position`, `cluster_id`, `matched` (bool),
        `similarity` (to the matched cluster, NaN when new); and in `.attrs["faded"]` the ids of
        previous clusters nobody matched.
    """
    n = len(current_centroids)
    prev_ids: list[int] = []
    prev_c: list[np.ndarray] = []
    if previous is not None and len(previous):
        prev_ids = [int(x) for x in previous["cluster_id"]]
        prev_c = [np.asarray(c, dtype=np.float64) for c in previous["centroid"]]
    matches = (
        match_clusters(np.asarray(current_centroids), np.asarray(prev_c), prev_ids, threshold)
        if n and prev_ids
        else []
    )
    by_row = {m.current: m for m in matches}
    ids, matched, sims = [], [], []
    fresh = int(next_id)
    for r in range(n):
        m = by_row.get(r)
        if m is None:
            ids.append(fresh)
            fresh += 1
            matched.append(False)
            sims.append(np.nan)
        else:
            ids.append(m.previous_id)
            matched.append(True)
            sims.append(m.similarity)
    out = pd.DataFrame(
        {"position": np.arange(n), "cluster_id": ids, "matched": matched, "similarity": sims}
    )
    kept = {m.previous_id for m in matches}
    out.attrs["faded"] = [i for i in dict.fromkeys(prev_ids) if i not in kept]
    return out
