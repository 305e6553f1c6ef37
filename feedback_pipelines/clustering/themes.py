"""The coarse level: subtopics merged into a readable handful of themes.

Ward's criterion over the subtopics (their sizes and member means), which is exactly what Ward
on the points would pay to merge two whole subtopics; merging stops where the cheapest merge
would add more than `cost` per event to the within-theme sum of squares, and the count is held
within [min_themes, max_themes]. Size-free (the cost is per event), deterministic, and cheap:
O(k^2) memory for k subtopics. Measured on Banking77 test: 14 themes, 99% of intents have
>= 80% of their queries inside at most 2 themes, largest theme 11% of the queries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThemeConfig:
    """Knobs of the coarse level.

    Attributes:
        cost: Ward merge cost per event above which two theme candidates stay apart.
        min_themes: Fewest themes (merging stops early to keep this many).
        max_themes: Most themes (merging goes on past the cost to get down to this many).
    """

    cost: float = 0.0075
    min_themes: int = 5
    max_themes: int = 15


def ward_merge(means: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Ward's agglomeration of weighted groups as a scipy-style linkage (k-1, 4).

    Column 2 is the merge cost (rise of the within-group sum of squares), not its square root.
    """
    k = len(means)
    mu = np.asarray(means, dtype=np.float64).copy()
    sz = np.asarray(sizes, dtype=np.float64).copy()
    node = np.arange(k)
    active = np.ones(k, dtype=bool)
    d2 = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    cost = sz[:, None] * sz[None, :] / (sz[:, None] + sz[None, :]) * d2
    np.fill_diagonal(cost, np.inf)
    out = np.zeros((max(k - 1, 0), 4))
    for step in range(k - 1):
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        i, j = min(i, j), max(i, j)
        out[step] = (node[i], node[j], cost[i, j], sz[i] + sz[j])
        mu[i] = (sz[i] * mu[i] + sz[j] * mu[j]) / (sz[i] + sz[j])
        sz[i] += sz[j]
        node[i] = k + step
        active[j] = False
        cost[j, :] = cost[:, j] = np.inf
        ci = sz * sz[i] / (sz + sz[i]) * ((mu - mu[i]) ** 2).sum(-1)
        ci[~active] = np.inf
        ci[i] = np.inf
        cost[i, :] = cost[:, i] = ci
    return out


def merge_themes(
    means: np.ndarray, sizes: np.ndarray, config: ThemeConfig = ThemeConfig()
) -> np.ndarray:
    """Theme of each subtopic (themes numbered by size, 0 = largest).

    Args:
        means: Mean of each subtopic's member vectors (unit vectors averaged, not re-normalized).
        sizes: Events of each subtopic.
        config: Settings.
    """
    k = len(means)
    if k <= 1:
        return np.zeros(k, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.float64)
    tree = ward_merge(means, sizes)
    merges = int(np.sum(tree[:, 2] <= config.cost * sizes.sum()))
    target = min(max(k - merges, config.min_themes), config.max_themes, k)
    parent = np.arange(2 * k - 1)
    for step in range(k - target):
        parent[int(tree[step, 0])] = parent[int(tree[step, 1])] = k + step

    def root(v: int) -> int:
        while parent[v] != v:
            v = parent[v]
        return v

    _, theme = np.unique([root(i) for i in range(k)], return_inverse=True)
    weight = np.bincount(theme, weights=sizes)
    order = np.lexsort((np.arange(len(weight)), -weight))
    relabel = np.empty(len(order), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    return relabel[theme]
