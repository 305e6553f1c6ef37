"""The coarse level: subtopics merged into a readable handful of themes.

Ward's criterion over the subtopics (their sizes and member means), which is exactly what Ward
on the points would pay to merge two whole subtopics; merging stops where the cheapest merge
would add more than `cost` per event to the within-theme sum of squares, and the count is held
within [min_themes, max_themes]. Size-free (the cost is per event), deterministic, and cheap:
O(k^2) memory for k subtopics. Measured on Banking77 test: 14 themes, 97-99% of intents (by
CPU) have >= 80% of their queries inside at most 2 themes, largest theme 11-14% of the queries.

Then themes that people would name alike are one: two themes whose c-TF-IDF rows (the words
that set each apart, labels.py) have a cosine of at least `vocabulary` are merged, most similar
first. Ward alone can split a big, coherent subject whose halves sit apart in the embedding
(FeedbackQA's visa complaints: "visa, pandemic event, australia" and "visa, bridging, student"),
and whether it does turns on the last bits of the vectors: with them moved by a cosine of
0.9992 (a stand-in for another CPU's kernels), 3 of 13 windows kept the visa complaints in one
theme. Their words are alike (cosine 0.48; the next pair 0.39; Banking77's closest pair 0.32,
OASST's and LAMP's themes unchanged): with the merge, 13 of 13.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from feedback_pipelines.clustering.labels import LabelConfig, class_tfidf
from feedback_pipelines.schema import NOISE


@dataclass(frozen=True)
class ThemeConfig:
    """Knobs of the coarse level.

    Attributes:
        cost: Ward merge cost per event above which two theme candidates stay apart.
        min_themes: Fewest themes (merging stops early to keep this many).
        max_themes: Most themes (merging goes on past the cost to get down to this many).
        vocabulary: c-TF-IDF cosine from which two themes are merged (above 1: never).
    """

    cost: float = 0.0075
    min_themes: int = 5
    max_themes: int = 15
    vocabulary: float = 0.43


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
    return by_size(theme, sizes)


def by_size(theme: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Themes renumbered by their total size, largest first (ties by the old number)."""
    _, theme = np.unique(theme, return_inverse=True)
    weight = np.bincount(theme, weights=sizes)
    order = np.lexsort((np.arange(len(weight)), -weight))
    relabel = np.empty(len(order), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    return relabel[theme]


def merge_alike_words(
    theme: np.ndarray,
    sizes: np.ndarray,
    words: sparse.spmatrix,
    config: ThemeConfig = ThemeConfig(),
) -> np.ndarray:
    """`theme` (of each subtopic) with the themes of alike words merged, renumbered by size.

    Args:
        theme: Theme of each subtopic, 0..T-1.
        sizes: Events of each subtopic.
        words: c-TF-IDF row of each theme (T rows).
        config: Settings (`vocabulary`, `min_themes`).
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    n = words.shape[0]
    weight = np.bincount(theme, weights=sizes, minlength=n)
    rows = sparse.csr_matrix(words, dtype=np.float64).toarray()
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    into = np.arange(n)
    alive = np.ones(n, dtype=bool)
    while alive.sum() > config.min_themes:
        sim = rows @ rows.T
        sim[~alive, :] = sim[:, ~alive] = -1.0
        np.fill_diagonal(sim, -1.0)
        i, j = np.unravel_index(np.argmax(sim), sim.shape)
        if sim[i, j] < config.vocabulary:
            break
        i, j = min(i, j), max(i, j)
        merged = weight[i] * rows[i] + weight[j] * rows[j]
        rows[i] = merged / max(np.linalg.norm(merged), 1e-12)
        weight[i] += weight[j]
        alive[j] = False
        into[into == j] = i
    return by_size(into[theme], sizes)


def themes_of_subtopics(
    means: np.ndarray,
    sizes: np.ndarray,
    texts: Sequence[str],
    subtopic: np.ndarray,
    config: ThemeConfig = ThemeConfig(),
    labels: LabelConfig = LabelConfig(),
) -> np.ndarray:
    """Theme of each subtopic: Ward's merge, then the themes of alike words merged.

    Args:
        means: Mean of each subtopic's member vectors.
        sizes: Events of each subtopic.
        texts: The window's texts (redacted).
        subtopic: Subtopic of each text (-1 = noise).
        config: Settings.
        labels: Label settings (the c-TF-IDF's terms).
    """
    theme = merge_themes(means, sizes, config)
    if not len(theme) or config.vocabulary > 1.0:
        return theme
    subtopic = np.asarray(subtopic)
    of_event = np.where(subtopic >= 0, theme[np.maximum(subtopic, 0)], NOISE)
    classes, words, _ = class_tfidf(texts, of_event, labels)
    named = np.asarray(classes) >= 0
    if not words.shape[1] or int(named.sum()) != int(theme.max()) + 1:
        return theme  # no words to compare (a theme of empty texts only)
    return merge_alike_words(theme, sizes, words[named], config)
