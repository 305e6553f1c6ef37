"""The fine level: one window's vectors cut into subtopics (about one user intent each).

Pure numpy / scipy / scikit-learn, no UMAP (no numba compile at the start of every run) and no
randomness that matters (the same window always gives the same subtopics, whatever the seed):

1. Distinct vectors only (a text pasted 50 times counts once for the shape, 50 times for the
   weights), at most `max_sample` of them for the tree: the ones with the smallest content
   hashes, so a text sampled today stays sampled tomorrow while it is in the window.
2. A Laplacian eigenmap (64-d) of the exact cosine kNN graph of the sample (k = 1% of the
   sample within [5, 30]; a fixed k smooths small windows into a few blobs), fixed solver
   start, rows re-normalized.
3. Ward's tree of that space, cut where a merge would cost more than `cut_height * sqrt(m)`
   (m = sample size): Ward's height grows with sqrt(m), so the cut depends on the content, not
   the volume, and the number of subtopics is never told. A node holding more than
   `max_share` of the window's events is split further whatever its height: no catch-alls.
4. A few spherical k-means iterations from those groups over every distinct vector.
5. Noise: cosine to the centroid under `noise_similarity`, or a margin over the runner-up
   under `noise_margin`; noise is then placed on its nearest subtopic if the cosine is at
   least `assign_similarity`.

Measured (int8 MiniLM, Banking77 test, 3,080 queries, 77 intents): 157 subtopics, ARI 0.555,
V 0.826, weighted purity 0.80, noise 0%; UMAP+HDBSCAN with BERTopic's defaults 0.417, k-means
told k=77 0.492 (bench/topics.py).
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from feedback_pipelines.schema import NOISE


@dataclass(frozen=True)
class SubtopicConfig:
    """Knobs of the fine level (defaults measured on Banking77, FeedbackQA, OASST, LAMP).

    Attributes:
        max_sample: Most distinct vectors the Ward tree is built on (O(m^2) memory: 8k = 256 MB).
        n_neighbors: Neighbours per row of the kNN graph; 0 = 1% of the sample within [5, 30].
        n_components: Dimensions of the spectral space.
        cut_height: Ward merge height, divided by sqrt(sample size), above which groups stay apart.
        max_share: Most of the window's events one subtopic may hold out of the tree.
        min_size: Fewest distinct texts of a subtopic; smaller groups dissolve.
        refine_iters: Spherical k-means iterations over all distinct vectors.
        noise_similarity: Cosine to its centroid under which an event is noise.
        noise_margin: Lead over the runner-up centroid under which an event is noise (a border).
        assign_similarity: Cosine to the nearest centroid from which noise is placed after all.
        chunk: Rows per matrix product (bounds memory).
    """

    max_sample: int = 8000
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


@dataclass
class Subtopics:
    """One window's subtopics.

    Attributes:
        labels: Subtopic of every row after noise placement (-1 = still noise).
        core_labels: Subtopic of every row before noise placement (-1 = noise).
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
        """Number of subtopics."""
        return len(self.centroids)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); zero rows stay zero."""
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2 or not len(x):
        return x
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def distinct_rows(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(first row of each distinct vector, row -> distinct index, copies of each), in row order."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse, counts = np.unique(
        view, return_index=True, return_inverse=True, return_counts=True
    )
    order = np.argsort(first, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()], counts[order]


def content_hash(vectors: np.ndarray) -> np.ndarray:
    """A 63-bit hash of each row's bytes: the same text (same vector) always hashes the same."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(r.tobytes(), digest_size=8).digest(), "little") >> 1
            for r in rows
        ],
        dtype=np.int64,
    )


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
    """Laplacian eigenmap of the kNN graph, rows re-normalized.

    The solver's start is fixed (random_state=0): the same sample always gives the same space.
    """
    from sklearn.manifold import spectral_embedding

    if n_neighbors <= 0:
        n_neighbors = int(np.clip(round(len(x) / 100), 5, 30))
    graph = knn_graph(np.asarray(x, dtype=np.float32), n_neighbors)
    # a small sample has few subjects: as many dimensions as rows would tell every row apart
    dims = max(2, min(n_components, len(x) // 12, len(x) - 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "graph is not fully connected"
        emb = spectral_embedding(
            graph, n_components=dims, eigen_solver="arpack", random_state=0, drop_first=True
        )
    return normalize(emb).astype(np.float64)


def cut_tree(
    linkage: np.ndarray, weights: np.ndarray, height: float, max_weight: float
) -> np.ndarray:
    """Flat groups (one per leaf) of a scipy linkage, cut top-down.

    A node stays whole when its merge height is at most `height` and its leaves weigh at most
    `max_weight`; otherwise it is split.
    """
    n = len(linkage) + 1
    weight = np.zeros(2 * n - 1)
    weight[:n] = weights
    for i, (a, b, _, _) in enumerate(linkage):
        weight[n + i] = weight[int(a)] + weight[int(b)]
    labels = np.empty(n, dtype=np.int64)
    group = 0
    stack = [2 * n - 2]
    while stack:
        node = stack.pop()
        if node >= n:
            a, b, h, _ = linkage[node - n]
            if h > height or weight[node] > max_weight:
                stack += [int(b), int(a)]
                continue
        todo, leaves = [node], []
        while todo:
            v = todo.pop()
            if v < n:
                leaves.append(v)
            else:
                todo += [int(linkage[v - n, 1]), int(linkage[v - n, 0])]
        labels[leaves] = group
        group += 1
    return labels


def group_means(vectors: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(unnormalized mean, size) of each group 0..k-1 (noise ignored)."""
    from scipy import sparse

    keep = np.flatnonzero(labels >= 0)
    onehot = sparse.csr_matrix((np.ones(len(keep)), (labels[keep], keep)), shape=(k, len(labels)))
    sums = np.asarray(onehot @ np.asarray(vectors, dtype=np.float32), dtype=np.float64)
    sizes = np.bincount(labels[keep], minlength=k).astype(np.float64)
    return sums / np.maximum(sizes, 1)[:, None], sizes


def nearest(
    vectors: np.ndarray, centroids: np.ndarray, chunk: int = 8192, second: bool = False
) -> tuple[np.ndarray, ...]:
    """(index, cosine) of each row's most similar centroid, (+ runner-up's cosine if `second`).

    -1 / -inf without centroids, a runner-up cosine of -1 without a runner-up.
    """
    n = len(vectors)
    idx = np.full(n, NOISE, dtype=np.int64)
    sim = np.full(n, -np.inf, dtype=np.float32)
    runner = np.full(n, -1.0, dtype=np.float32)
    if len(centroids):
        ct = np.ascontiguousarray(np.asarray(centroids, dtype=np.float32).T)
        for lo in range(0, n, chunk):
            s = np.asarray(vectors[lo : lo + chunk], dtype=np.float32) @ ct
            best = s.argmax(axis=1)
            idx[lo : lo + len(s)] = best
            sim[lo : lo + len(s)] = s[np.arange(len(s)), best]
            if second and s.shape[1] > 1:
                runner[lo : lo + len(s)] = np.partition(s, -2, axis=1)[:, -2]
    return (idx, sim, runner) if second else (idx, sim)


def refine(
    vectors: np.ndarray, centroids: np.ndarray, iters: int, min_size: int, chunk: int = 8192
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spherical k-means from the given centroids; groups under `min_size` rows dissolve.

    Returns:
        (labels, unit centroids, cosine of each row to its centroid).
    """
    cents = normalize(centroids)
    labels, sim = nearest(vectors, cents, chunk)
    for _ in range(max(iters, 0)):
        means, sizes = group_means(vectors, labels, len(cents))
        new = normalize(means[sizes >= min(min_size, sizes.max())])
        moved = len(new) != len(cents) or not np.allclose(new, cents, atol=1e-6)
        cents = new
        labels, sim = nearest(vectors, cents, chunk)
        if not moved:
            break
    sizes = np.bincount(labels, minlength=len(cents))
    if (sizes < min_size).any():
        cents = cents[sizes >= min(min_size, sizes.max())]
        labels, sim = nearest(vectors, cents, chunk)
    return labels, cents, sim


def _by_size(labels: np.ndarray, centroids: np.ndarray, weights: np.ndarray):
    """Groups renumbered by weight, largest first (ties by old number)."""
    w = np.bincount(labels[labels >= 0], weights=weights[labels >= 0], minlength=len(centroids))
    order = np.lexsort((np.arange(len(w)), -w))
    relabel = np.empty(len(order), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    return np.where(labels >= 0, relabel[np.maximum(labels, 0)], NOISE), centroids[order]


def _few_texts(
    x: np.ndarray,
    distinct: np.ndarray,
    inverse: np.ndarray,
    copies: np.ndarray,
    config: SubtopicConfig,
    stats: dict,
) -> Subtopics:
    """Too few distinct texts for a tree: alike ones share a subtopic, unlike ones do not.

    Alike: an average cosine of at least `noise_similarity` (average linkage), no noise. A
    window of a few fixed prompts asked many times (an eval-style set such as LLMFAO's first
    days: 2-5 distinct texts) was one subtopic for everything, and the regressions found in it
    mixed unrelated prompts.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    groups = np.zeros(len(distinct), dtype=np.int64)
    if len(distinct) > 1:
        tree = linkage(distinct.astype(np.float64), method="average", metric="cosine")
        groups = fcluster(tree, t=1 - config.noise_similarity, criterion="distance") - 1
    means, _ = group_means(distinct, groups, int(groups.max()) + 1)
    dlabels, cents = _by_size(groups.astype(np.int64), normalize(means), copies.astype(np.float64))
    labels = dlabels[inverse]
    sim = np.einsum("ij,ij->i", x, cents[labels].astype(x.dtype))
    return Subtopics(labels, labels.copy(), cents, sim, {**stats, "subtopics": len(cents)})


def fit_window(vectors: np.ndarray, config: SubtopicConfig = SubtopicConfig()) -> Subtopics:
    """Subtopics of one window of vectors (steps in the module docstring); deterministic."""
    from scipy.cluster.hierarchy import linkage

    t0 = time.perf_counter()
    x = normalize(vectors)
    n = len(x)
    stats: dict = {"events": n}
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        dim = x.shape[1] if x.ndim == 2 else 0
        return Subtopics(empty, empty, np.zeros((0, dim), np.float32), np.zeros(0), stats)
    first, inverse, copies = distinct_rows(x)
    distinct = x[first]
    m = len(distinct)
    if m > config.max_sample:
        order = np.argsort(content_hash(distinct), kind="stable")
        sample = np.sort(order[: config.max_sample])
    else:
        sample = np.arange(m)
    stats.update(distinct=m, sample=len(sample))
    if len(sample) < max(2 * config.min_size, 8):
        return _few_texts(x, distinct, inverse, copies, config, stats)
    space = spectral_space(distinct[sample], config.n_neighbors, config.n_components)
    tree = linkage(space, method="ward")
    stats["tree_seconds"] = round(time.perf_counter() - t0, 3)
    w = copies[sample].astype(np.float64)
    w *= n / w.sum()  # each sampled text weighs its share of the window's events
    groups = cut_tree(
        tree, w, config.cut_height * np.sqrt(len(sample)), max(config.max_share * n, w.max())
    )
    means, _ = group_means(distinct[sample], groups, int(groups.max()) + 1)
    dlabels, cents, dsim = refine(
        distinct, means, config.refine_iters, config.min_size, config.chunk
    )
    dlabels, cents = _by_size(dlabels, cents, copies.astype(np.float64))
    _, _, runner = nearest(distinct, cents, config.chunk, second=True)
    labels, sim, margin = dlabels[inverse], dsim[inverse], (dsim - runner)[inverse]
    core = np.where(
        (sim >= config.noise_similarity) & (margin >= config.noise_margin), labels, NOISE
    )
    placed = np.where((core >= 0) | (sim >= config.assign_similarity), labels, NOISE)
    stats.update(
        subtopics=len(cents),
        noise_core=round(float(np.mean(core == NOISE)), 4),
        noise=round(float(np.mean(placed == NOISE)), 4),
        seconds=round(time.perf_counter() - t0, 3),
    )
    return Subtopics(placed, core, cents, sim, stats)
