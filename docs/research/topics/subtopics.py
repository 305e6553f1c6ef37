"""Two-level topics for a window of feedback vectors: fine subtopics, coarse themes, a registry.

Pure numpy / scipy / scikit-learn: no Dagster, no pandas, no UMAP (no numba start-up cost).

Subtopics (the fine level), `fit_subtopics`:

1. Distinct vectors only (identical texts counted once), at most `max_sample` of them: the
   ones with the smallest content hashes (deterministic, no seed; 'random' sampling is
   available); a window with fewer distinct texts is used whole.
2. PCA (covariance eigendecomposition: deterministic) of the sample to `n_components`,
   rows re-normalized.
3. Ward's agglomerative tree of the sample (scipy, O(n^2) memory: 8k rows = 256 MB).
4. Cut the tree where a merge would cost more than `cut_height * sqrt(sample size)`. Ward's
   merge height of two groups holding shares p_a, p_b of n points at centroid distance d is
   sqrt(2 n p_a p_b / (p_a + p_b)) * d, so dividing by sqrt(n) makes the cut depend on the
   window's content, not on its size: the number of subtopics is not told, and a subsample
   gives about the same cut. A node holding more than `max_share` of the window's events is
   split further along the tree, whatever its height (varied windows never collapse).
5. Spherical k-means refinement from those centroids over every distinct vector of the window
   (a few Lloyd iterations, deterministic); groups under `min_size` distinct texts dissolve.
6. Noise: an event whose cosine to its subtopic's centroid is under `noise_similarity`, or
   beats the runner-up centroid by less than `noise_margin` (a border case), is noise (-1)
   in `core_labels`; `labels` then places noise on the nearest subtopic when its cosine is at
   least `assign_similarity` ("if close enough"). Both labelings are returned.

Themes (the coarse level), `merge_themes`: Ward's criterion over the subtopics (sizes and
means, i.e. exactly what Ward on the points would pay to merge two subtopics), stopped at a
size-free cost threshold and held within [min_themes, max_themes].

Registry (day to day), `place_on_registry` / `Registry`: new events go to the nearest known
subtopic when their cosine to its centroid clears that subtopic's own threshold (a low
quantile of its members' similarities, floored); only the unplaced pool is clustered, and a
group of it big enough is born as a new subtopic. Placed events never move.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NOISE = -1


@dataclass(frozen=True)
class SubtopicConfig:
    """Knobs of the fine level (defaults measured on Banking77, FeedbackQA, OASST, LAMP).

    Attributes:
        max_sample: Most distinct vectors the Ward tree is built on (O(n^2) memory).
        sampling: How a larger window's tree sample is drawn: 'hash' (the distinct vectors
            with the smallest content hashes: no seed, and a text sampled today stays sampled
            tomorrow while it is in the window) or 'random' (seeded).
        space: Space the Ward tree is built in: 'spectral' (Laplacian eigenmap of the exact
            cosine kNN graph, rows re-normalized), 'pca' (PCA, rows re-normalized) or 'raw'.
        n_neighbors: Neighbours per row of the kNN graph ('spectral'); 0 = 1% of the
            sample within [5, 30] (a fixed count smooths small windows into a few blobs: measured,
            30 neighbours on 500 Banking77 rows gave 11 subtopics, 5 gave 82).
        n_components: Dimensions of the tree's space.
        cut_height: Ward merge height, divided by sqrt(sample size), above which groups stay
            apart.
        max_share: A subtopic may hold at most this share of the window's events.
        min_size: Fewest distinct texts of a subtopic; smaller groups dissolve.
        refine_iters: Spherical k-means iterations over all distinct vectors.
        noise_similarity: Cosine to its centroid under which an event is noise.
        noise_margin: An event whose cosine to its centroid beats the runner-up centroid's by
            less than this is noise too (it sits on a border).
        assign_similarity: Cosine to the nearest centroid from which a noise event is placed.
        chunk: Rows per matrix product (bounds memory).
    """

    max_sample: int = 8000
    sampling: str = "hash"
    space: str = "spectral"
    n_neighbors: int = 0
    n_components: int = 64
    cut_height: float = 0.030
    max_share: float = 0.15
    min_size: int = 3
    refine_iters: int = 5
    noise_similarity: float = 0.5
    noise_margin: float = 0.02
    assign_similarity: float = 0.35
    chunk: int = 8192


@dataclass(frozen=True)
class ThemeConfig:
    """Knobs of the coarse level.

    Attributes:
        cost: Ward merge cost (sum of squared distances added), divided by the window's
            distinct texts, above which two theme candidates stay apart.
        min_themes: Fewest themes (merging goes on until there are at most this many... only
            when the cost rule leaves more than `max_themes`, or stops below `min_themes`).
        max_themes: Most themes.
    """

    cost: float = 0.0075
    min_themes: int = 5
    max_themes: int = 15


@dataclass
class Subtopics:
    """One window's subtopics.

    Attributes:
        labels: Subtopic of every row after noise assignment (-1 = still noise).
        core_labels: Subtopic of every row before noise assignment (-1 = noise).
        centroids: Unit centroid of each subtopic (k, dim), numbered by size (0 = largest).
        similarity: Cosine of every row to its nearest centroid.
        stats: Counts and seconds, for logs.
    """

    labels: np.ndarray
    core_labels: np.ndarray
    centroids: np.ndarray
    similarity: np.ndarray
    stats: dict = field(default_factory=dict)

    @property
    def n_subtopics(self) -> int:
        return len(self.centroids)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); zero rows stay zero."""
    x = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first row of each distinct vector, row -> distinct index, copies of each)."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(
        view, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")  # distinct rows in window order, not byte order
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()], counts[order]


def content_hash(vectors: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row's bytes: the same text (same vector) always hashes the same."""
    import hashlib

    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    return np.array(
        [int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") >> 1
         for r in rows],
        dtype=np.int64,
    )


def pca_project(sample: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean, axes) of the sample's top principal axes, by eigendecomposition: no randomness.

    Axis signs are fixed (largest coordinate positive) so reruns are bit-identical.
    """
    mean = sample.mean(axis=0)
    centred = (sample - mean).astype(np.float64)
    cov = centred.T @ centred / max(len(sample) - 1, 1)
    vals, vecs = np.linalg.eigh(cov)
    axes = vecs[:, ::-1][:, :n_components].T
    signs = np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])
    return mean.astype(np.float32), (axes * signs[:, None]).astype(np.float32)


def knn_graph(x: np.ndarray, k: int, chunk: int = 2048):
    """Symmetric 0/1 adjacency (scipy CSR) of the exact k nearest neighbours by cosine."""
    from scipy import sparse

    n = len(x)
    k = min(k, n - 1)
    rows, cols = [], []
    for lo in range(0, n, chunk):
        s = x[lo : lo + chunk] @ x.T
        s[np.arange(len(s)), lo + np.arange(len(s))] = -np.inf
        idx = np.argpartition(-s, k - 1, axis=1)[:, :k]
        rows.append(np.repeat(np.arange(lo, lo + len(s)), k))
        cols.append(idx.ravel())
    r, c = np.concatenate(rows), np.concatenate(cols)
    a = sparse.csr_matrix((np.ones(len(r), dtype=np.float64), (r, c)), shape=(n, n))
    return a.maximum(a.T)


def spectral_space(x: np.ndarray, n_neighbors: int, n_components: int) -> np.ndarray:
    """Laplacian eigenmap of the kNN graph, rows re-normalized. Fixed solver start vector
    (random_state=0), so the same sample always gives the same space."""
    import warnings

    from sklearn.manifold import spectral_embedding

    if n_neighbors <= 0:
        n_neighbors = int(np.clip(round(len(x) / 100), 5, 30))
    graph = knn_graph(np.asarray(x, dtype=np.float32), n_neighbors)
    dims = min(n_components, len(x) - 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected"
        emb = spectral_embedding(
            graph, n_components=dims, eigen_solver="arpack", random_state=0, drop_first=True
        )
    return normalize(emb).astype(np.float64)


def tree_space(
    sample: np.ndarray, n_components: int, space: str = "pca", n_neighbors: int = 30
) -> np.ndarray:
    """The sample in the space the Ward tree is built in (see `SubtopicConfig.space`)."""
    if space == "raw" or n_components <= 0 or n_components >= min(sample.shape):
        return np.asarray(sample, dtype=np.float64)
    if space == "spectral":
        return spectral_space(sample, n_neighbors, n_components)
    mean, axes = pca_project(sample, n_components)
    return normalize((sample - mean) @ axes.T).astype(np.float64)


def cut_tree(
    linkage: np.ndarray, weights: np.ndarray, height: float, max_weight: float
) -> np.ndarray:
    """Flat groups from a scipy linkage: top-down, a node is kept whole when its merge height
    is at most `height` and its leaves weigh at most `max_weight`; otherwise it is split.

    Returns:
        Group of every leaf, numbered in tree order.
    """
    n = len(linkage) + 1
    total = 2 * n - 1
    weight = np.zeros(total)
    weight[:n] = weights
    count = np.ones(total, dtype=np.int64)
    for i, (a, b, _, _) in enumerate(linkage):
        weight[n + i] = weight[int(a)] + weight[int(b)]
        count[n + i] = count[int(a)] + count[int(b)]
    labels = np.empty(n, dtype=np.int64)
    group = 0
    stack = [total - 1]
    while stack:
        node = stack.pop()
        if node >= n:
            a, b, h, _ = linkage[node - n]
            if h > height or weight[node] > max_weight:
                stack.append(int(b))
                stack.append(int(a))
                continue
        # every leaf under node
        leaves, todo = [], [node]
        while todo:
            v = todo.pop()
            if v < n:
                leaves.append(v)
            else:
                todo.append(int(linkage[v - n, 1]))
                todo.append(int(linkage[v - n, 0]))
        labels[leaves] = group
        group += 1
    return labels


def group_means(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(unnormalized mean, size) of each group 0..k-1 (noise ignored)."""
    keep = np.flatnonzero(labels >= 0)
    sums = np.zeros((k, vectors.shape[1]), dtype=np.float64)
    sizes = np.bincount(labels[keep], minlength=k).astype(np.float64)
    if len(keep):
        order = keep[np.argsort(labels[keep], kind="stable")]
        present = np.flatnonzero(sizes)
        starts = np.r_[0, np.cumsum(sizes[present])[:-1]].astype(np.int64)
        sums[present] = np.add.reduceat(np.asarray(vectors, dtype=np.float32)[order], starts, axis=0)
    return sums / np.maximum(sizes, 1)[:, None], sizes


def nearest(
    vectors: np.ndarray, centroids: np.ndarray, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray]:
    """(index, cosine) of the most similar centroid of each row (-1, -inf without centroids)."""
    n = len(vectors)
    idx = np.full(n, NOISE, dtype=np.int64)
    sim = np.full(n, -np.inf, dtype=np.float32)
    if len(centroids) == 0:
        return idx, sim
    ct = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32).T)
    for lo in range(0, n, chunk):
        s = np.asarray(vectors[lo : lo + chunk], dtype=np.float32) @ ct
        best = s.argmax(axis=1)
        idx[lo : lo + len(s)] = best
        sim[lo : lo + len(s)] = s[np.arange(len(s)), best]
    return idx, sim


def second_best(vectors: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Cosine of each row to its second most similar centroid (-1 with fewer than two)."""
    out = np.full(len(vectors), -1.0, dtype=np.float32)
    if len(centroids) < 2:
        return out
    ct = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32).T)
    for lo in range(0, len(vectors), chunk):
        s = np.asarray(vectors[lo : lo + chunk], dtype=np.float32) @ ct
        out[lo : lo + len(s)] = np.partition(s, -2, axis=1)[:, -2]
    return out


def refine(
    vectors: np.ndarray, centroids: np.ndarray, iters: int, min_size: int, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spherical k-means from the given centroids; groups under min_size rows dissolve.

    Returns:
        (labels, unit centroids, cosine of each row to its centroid).
    """
    cents = normalize(centroids)
    labels, sim = nearest(vectors, cents, chunk)
    for _ in range(max(iters, 0)):
        means, sizes = group_means(vectors, labels, len(cents))
        alive = sizes >= min(min_size, sizes.max())
        new = normalize(means[alive])
        moved = len(new) != len(cents) or not np.allclose(new, cents, atol=1e-6)
        cents = new
        labels, sim = nearest(vectors, cents, chunk)
        if not moved:
            break
    # drop groups that ended under min_size (their rows go to the next nearest)
    sizes = np.bincount(labels, minlength=len(cents))
    if (sizes < min_size).any():
        cents = cents[sizes >= min(min_size, sizes.max())]
        labels, sim = nearest(vectors, cents, chunk)
    return labels, cents, sim


def _by_size(labels: np.ndarray, centroids: np.ndarray, weights: np.ndarray):
    """Renumber groups by event weight, largest first (ties by old number)."""
    w = np.bincount(labels[labels >= 0], weights=weights[labels >= 0], minlength=len(centroids))
    order = np.lexsort((np.arange(len(w)), -w))
    relabel = np.empty(len(order), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    out = np.where(labels >= 0, relabel[np.maximum(labels, 0)], NOISE)
    return out, centroids[order]


def fit_window(
    vectors: np.ndarray, seed: int = 0, config: SubtopicConfig = SubtopicConfig()
) -> Subtopics:
    """Subtopics of one window (see the module docstring for the steps).

    Args:
        vectors: One embedding per event (n, dim); normalized here.
        seed: Draws the tree's sample when the window has more than `max_sample` distinct
            texts (otherwise unused).
        config: Settings.
    """
    import time

    from scipy.cluster.hierarchy import linkage

    t0 = time.perf_counter()
    x = normalize(vectors)
    n = len(x)
    stats: dict = {"events": n}
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Subtopics(empty, empty, np.zeros((0, x.shape[1]), np.float32), np.zeros(0), stats)
    first, inverse, copies = distinct_rows(x)
    distinct = x[first]
    m = len(distinct)
    stats["distinct"] = m
    if m > config.max_sample and config.sampling == "random":
        rng = np.random.default_rng(seed)
        sample = np.sort(rng.choice(m, config.max_sample, replace=False))
    elif m > config.max_sample:
        sample = np.sort(np.argsort(content_hash(distinct), kind="stable")[: config.max_sample])
    else:
        sample = np.arange(m)
    stats["sample"] = len(sample)
    if len(sample) < 2 * config.min_size:
        labels = np.zeros(n, dtype=np.int64)
        cents = normalize(distinct.mean(axis=0, keepdims=True))
        sim = x @ cents[0]
        return Subtopics(labels, labels.copy(), cents, sim, {**stats, "subtopics": 1})
    t = time.perf_counter()
    space = tree_space(distinct[sample], config.n_components, config.space, config.n_neighbors)
    stats["space_seconds"] = round(time.perf_counter() - t, 3)
    tree = linkage(space, method="ward")
    stats["tree_seconds"] = round(time.perf_counter() - t, 3)
    # weights: events of each sampled text, scaled to the window's events
    w = copies[sample].astype(np.float64)
    w *= n / w.sum()
    groups = cut_tree(
        tree, w, config.cut_height * np.sqrt(len(sample)), max(config.max_share * n, w.max())
    )
    stats["tree_groups"] = int(groups.max()) + 1
    t = time.perf_counter()
    means, _ = group_means(distinct[sample], groups, int(groups.max()) + 1)
    dlabels, cents, dsim = refine(
        distinct, means, config.refine_iters, config.min_size, config.chunk
    )
    dlabels, cents = _by_size(dlabels, cents, copies.astype(np.float64))
    stats["refine_seconds"] = round(time.perf_counter() - t, 3)
    labels = dlabels[inverse]
    sim = dsim[inverse]
    margin = (dsim - second_best(distinct, cents, config.chunk))[inverse]
    core = np.where(
        (sim >= config.noise_similarity) & (margin >= config.noise_margin), labels, NOISE
    )
    placed = np.where(sim >= config.assign_similarity, labels, NOISE)
    stats.update(
        subtopics=len(cents),
        noise_before=round(float(np.mean(core == NOISE)), 4),
        noise_after=round(float(np.mean(placed == NOISE)), 4),
        max_share=round(float(np.bincount(labels).max() / n), 4),
        seconds=round(time.perf_counter() - t0, 3),
    )
    return Subtopics(placed, core, cents, sim, stats)


def fit_subtopics(
    vectors: np.ndarray, seed: int = 0, config: SubtopicConfig = SubtopicConfig()
) -> np.ndarray:
    """Subtopic of every row after noise assignment (-1 = noise). See `fit_window`."""
    return fit_window(vectors, seed, config).labels


def subtopic_centroids(vectors: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Unit centroid of each subtopic 0..max(labels)."""
    k = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    means, _ = group_means(normalize(vectors), labels, k)
    return normalize(means)


def ward_merge(means: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Ward's agglomeration of weighted groups: a scipy-style linkage (k-1, 4), where column 2
    is the merge cost (the rise in the within-group sum of squares), not its square root.
    O(k^2) memory, O(k^3) time: meant for a few hundred subtopics.
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
        cost[j, :] = np.inf
        cost[:, j] = np.inf
        d2i = ((mu - mu[i]) ** 2).sum(-1)
        ci = sz * sz[i] / (sz + sz[i]) * d2i
        ci[~active] = np.inf
        ci[i] = np.inf
        cost[i, :] = ci
        cost[:, i] = ci
    return out


def merge_themes(
    vectors: np.ndarray, labels: np.ndarray, config: ThemeConfig = ThemeConfig()
) -> np.ndarray:
    """Theme of each subtopic 0..k-1 (themes numbered by size, 0 = largest).

    Ward's criterion over the subtopics (their sizes and means in the unit-vector space):
    merging stops where the cheapest merge would add more than `cost` times the number of
    rows to the within-theme sum of squares, and the count is then held within
    [min_themes, max_themes].
    """
    x = normalize(vectors)
    keep = labels >= 0
    k = int(labels[keep].max()) + 1 if keep.any() else 0
    if k <= 1:
        return np.zeros(k, dtype=np.int64)
    means, sizes = group_means(x, labels, k)
    tree = ward_merge(means, sizes)
    n = sizes.sum()
    merges = int(np.sum(tree[:, 2] <= config.cost * n))
    themes_left = k - merges
    target = min(max(themes_left, config.min_themes), config.max_themes, k)
    merges = k - target
    parent = np.arange(2 * k - 1)
    for step in range(merges):
        a, b = int(tree[step, 0]), int(tree[step, 1])
        parent[a] = parent[b] = k + step

    def root(v: int) -> int:
        while parent[v] != v:
            v = parent[v]
        return v

    roots = np.array([root(i) for i in range(k)])
    _, theme = np.unique(roots, return_inverse=True)
    weight = np.bincount(theme, weights=sizes, minlength=theme.max() + 1)
    order = np.lexsort((np.arange(len(weight)), -weight))
    relabel = np.empty(len(order), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    return relabel[theme]


# ---------------------------------------------------------------- registry (day to day)


def place_on_registry(
    vectors: np.ndarray, centroids: np.ndarray, threshold: float | np.ndarray
) -> np.ndarray:
    """Registry row of each vector: its nearest centroid if the cosine clears that
    centroid's threshold (a number, or one per centroid), else -1."""
    if len(centroids) == 0:
        return np.full(len(vectors), NOISE, dtype=np.int64)
    idx, sim = nearest(normalize(vectors), normalize(centroids))
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float32), (len(centroids),))
    return np.where(sim >= thr[idx], idx, NOISE)


def calibrate_thresholds(
    similarity: np.ndarray, labels: np.ndarray, k: int, quantile: float = 0.1, floor: float = 0.5
) -> np.ndarray:
    """Per subtopic: the `quantile` of its members' cosine to its centroid, at least `floor`."""
    out = np.full(k, floor, dtype=np.float32)
    for c in range(k):
        s = similarity[labels == c]
        if len(s):
            out[c] = max(floor, float(np.quantile(s, quantile)))
    return out


@dataclass
class Registry:
    """Subtopics that persist from day to day; ids are never reused nor renumbered.

    A day (`Registry.day`): today's events go to the nearest registered subtopic when their
    cosine clears its threshold (placed events never move afterwards); the rest join a pool
    (unplaced events of the last `pool_days` days). The pool is clustered with `fit_window`;
    a group of at least `min_birth` core events whose centroid is within `duplicate` cosine
    of a registered subtopic joins that subtopic (a leftover of a known subject is not a new
    one); any other group of that size is born as a new subtopic. The rest stays pooled.

    Attributes:
        sums: Sum of the unit vectors of each subtopic's members (its centroid direction).
        counts: Members of each subtopic.
        thresholds: Cosine a new event needs to join each subtopic: the `quantile` of its
            members' cosines to its centroid at birth, at least `floor`.
        born: Day each subtopic was born.
        config: Settings of the clustering of the pool (and of the first day).
        quantile, floor: Threshold calibration (quantile None = `floor` for every subtopic).
        duplicate: Centroid cosine from which a pool group is a known subtopic.
        min_birth: Fewest events of a new subtopic.
        pool_days: Days an unplaced event waits in the pool before it is dropped as noise.
        update_centroids: Move centroids with their placed members (running mean) or freeze
            them at birth.
    """

    sums: np.ndarray
    counts: np.ndarray
    thresholds: np.ndarray
    born: list = field(default_factory=list)
    config: SubtopicConfig = SubtopicConfig()
    quantile: float | None = None
    floor: float = 0.6
    duplicate: float = 0.85
    min_birth: int = 5
    pool_days: int = 7
    update_centroids: bool = False
    pool: np.ndarray | None = None  # unit vectors waiting
    pool_day: np.ndarray | None = None
    pool_key: np.ndarray | None = None  # caller's row keys of the pool

    @classmethod
    def empty(cls, dim: int, **kwargs) -> Registry:
        return cls(np.zeros((0, dim)), np.zeros(0), np.zeros(0, np.float32), [], **kwargs)

    @property
    def centroids(self) -> np.ndarray:
        return normalize(self.sums) if len(self.sums) else self.sums.astype(np.float32)

    def place(self, vectors: np.ndarray) -> np.ndarray:
        """Registry id of each vector or -1 (no state change)."""
        return place_on_registry(vectors, self.centroids, self.thresholds)

    def _add(self, x: np.ndarray, ids: np.ndarray) -> None:
        ok = ids >= 0
        if self.update_centroids and ok.any():
            np.add.at(self.sums, ids[ok], x[ok])
            self.counts = self.counts + np.bincount(ids[ok], minlength=len(self.counts))

    def _grow(self, x: np.ndarray, local: np.ndarray, k: int, day) -> np.ndarray:
        """Register groups 0..k-1 of x (local labels) as new subtopics; returns their ids."""
        means, counts = group_means(x, local, k)
        cents = normalize(means)
        ok = local >= 0
        sim = np.einsum("ij,ij->i", x[ok], cents[local[ok]])
        thr = (
            np.full(k, self.floor, dtype=np.float32)
            if self.quantile is None
            else calibrate_thresholds(sim, local[ok], k, self.quantile, self.floor)
        )
        start = len(self.sums)
        self.sums = np.vstack([self.sums, means * counts[:, None]])
        self.counts = np.r_[self.counts, counts]
        self.thresholds = np.r_[self.thresholds, thr].astype(np.float32)
        self.born += [day] * k
        return np.arange(start, start + k)

    def cluster_pool(self, x: np.ndarray, day, seed: int = 0) -> tuple[np.ndarray, int]:
        """Cluster pool vectors: (registry id of each row or -1, subtopics born).

        A group of the pool is born only from its members within `floor` cosine of its
        centroid (a pool is mostly leftovers: loose groups are not subjects), when they are at
        least `min_birth` and the centroid is not a duplicate of a registered one (those
        events failed that subtopic's threshold once already: they stay pooled).
        """
        ids = np.full(len(x), NOISE, dtype=np.int64)
        if len(x) < max(self.min_birth, 2 * self.config.min_size):
            return ids, 0
        fit = fit_window(x, seed, self.config)
        core = fit.core_labels.copy()
        core[fit.similarity < self.floor] = NOISE
        sizes = np.bincount(core[core >= 0], minlength=fit.n_subtopics)
        big = np.flatnonzero(sizes >= self.min_birth)
        if len(big) == 0:
            return ids, 0
        means, _ = group_means(x, core, fit.n_subtopics)
        if len(self.sums):
            sim = nearest(normalize(means[big]), self.centroids)[1]
            big = big[sim < self.duplicate]
        if len(big) == 0:
            return ids, 0
        remap = np.full(fit.n_subtopics, NOISE, dtype=np.int64)
        remap[big] = np.arange(len(big))
        local = np.where(core >= 0, remap[np.maximum(core, 0)], NOISE)
        new_ids = self._grow(x, local, len(big), day)
        ids[local >= 0] = new_ids[local[local >= 0]]
        return ids, len(big)

    def day(self, vectors: np.ndarray, day: int, keys: np.ndarray | None = None, seed: int = 0):
        """One day of events. Returns (id of each of today's events or -1, ids given to pool
        rows of earlier days as {key: id}, subtopics born)."""
        x = normalize(vectors)
        keys = np.arange(len(x)) if keys is None else np.asarray(keys)
        dim = x.shape[1]
        if self.pool is None:
            self.pool = np.zeros((0, dim), np.float32)
            self.pool_day = np.zeros(0, np.int64)
            self.pool_key = np.zeros(0, keys.dtype)
        ids = self.place(x)
        self._add(x, ids)
        fresh = self.pool_day >= day - self.pool_days
        cand = np.vstack([self.pool[fresh], x[ids < 0]])
        cand_day = np.r_[self.pool_day[fresh], np.full(int((ids < 0).sum()), day)]
        cand_key = np.r_[self.pool_key[fresh], keys[ids < 0]]
        n_old = int(fresh.sum())
        got, born = self.cluster_pool(cand, day, seed)
        late = {k: int(i) for k, i in zip(cand_key[:n_old], got[:n_old]) if i >= 0}
        ids[np.flatnonzero(ids < 0)] = got[n_old:]
        left = got < 0
        self.pool, self.pool_day, self.pool_key = cand[left], cand_day[left], cand_key[left]
        return ids, late, born
