"""HDBSCAN fitted on a bounded sample of the window's distinct texts.

Two choices here decide whether clusters are topics or phrasings (measured, see the helper note
and bench/cluster.py):

* **Distinct texts, not events.** Feedback is repetitive: the same short request or the same
  canned comment arrives hundreds of times. Every copy sits at distance 0 from the others, so
  HDBSCAN sees a dense island per popular phrasing and splits a topic into its phrasings
  (BERTopic's defaults made 170 clusters of 8 planted topics, FACTS.md). Fitting on distinct
  vectors (at most `max_copies` of each) makes density mean "many different texts say this",
  which is what a topic is; every copy is then assigned the cluster of its text.
* **min_cluster_size scaled with the sample.** A fixed small value fragments large windows and a
  fixed large one hides small topics; `fraction` of the fitted points, bounded by a floor (the
  smallest topic worth naming) and a ceiling.

The sample is bounded (`max_sample`), so the fit costs the same on 20k and 500k events; the rest
of the window is assigned afterwards (assign.py), which is linear.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import joblib
import numpy as np

from feedback_pipelines.schema import NOISE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitConfig:
    """Knobs of the HDBSCAN fit.

    Attributes:
        max_sample: Most distinct points HDBSCAN is fitted on.
        max_copies: Copies of one identical vector kept in the sample (1 = distinct texts).
        min_cluster_fraction: min_cluster_size as a share of the fitted points.
        min_cluster_floor: Smallest min_cluster_size (the smallest topic worth naming).
        min_cluster_ceiling: Largest min_cluster_size, so big windows still show mid-size topics.
        min_samples: HDBSCAN's min_samples (None = min_cluster_size, HDBSCAN's default; larger
            is smoother and calls more points noise).
        cluster_selection_method: 'eom' (HDBSCAN's default, favours stable large clusters) or
            'leaf' (finest clusters).
        seed: Sampling seed, so a rerun of a day gives the same clusters.
        n_jobs: Threads for HDBSCAN's core distances (-1 = every core).
        emerging_days: A fine cluster whose events all arrived in this many last days of the
            window is split out as its own (emerging) topic (0 turns it off).
        emerging_fraction: min_cluster_size of the fine pass that looks for emerging topics,
            as a share of the fitted points (never below `min_cluster_floor`).
        emerging_share: Share of a fine cluster's events that must be recent.
        emerging_max_similarity: An emerging group must be new in content too: the median,
            over its events, of the cosine similarity to the nearest older event of the sample
            stays under this (measured: a planted new topic 0.36, a recent burst of an old
            intent 0.78, established topics 0.93-1.0).
    """

    max_sample: int = 10_000
    max_copies: int = 1
    min_cluster_fraction: float = 0.01
    min_cluster_floor: int = 10
    min_cluster_ceiling: int = 500
    min_samples: int | None = None
    cluster_selection_method: str = "eom"
    seed: int = 0
    n_jobs: int = 2
    emerging_days: int = 3
    emerging_fraction: float = 0.0015
    emerging_share: float = 0.95
    emerging_max_similarity: float = 0.6


def min_cluster_size_for(n: int, config: FitConfig = FitConfig()) -> int:
    """min_cluster_size for n fitted points: `fraction * n` within [floor, ceiling].

    Never above n // 2, so a tiny window can still hold two clusters.
    """
    size = round(config.min_cluster_fraction * n)
    size = min(max(size, config.min_cluster_floor), config.min_cluster_ceiling)
    return max(2, min(size, max(2, n // 2)))


def vector_keys(vectors: np.ndarray) -> np.ndarray:
    """One integer code per row, equal for identical vectors (same text, same model)."""
    rows = np.ascontiguousarray(vectors, dtype=np.float32)
    view = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, codes = np.unique(view, return_inverse=True)
    return codes.ravel()


def select_fit_sample(
    keys: np.ndarray, max_sample: int, max_copies: int = 1, seed: int = 0
) -> np.ndarray:
    """Row indices to fit on: at most `max_copies` rows per key, at most `max_sample` rows.

    Rows are drawn uniformly at random (seeded) among the eligible ones, so a topic's share of
    the sample is its share of the window's distinct texts.

    Args:
        keys: Duplicate key of each row (see `vector_keys`).
        max_sample: Upper bound on the returned rows.
        max_copies: Copies of one key allowed.
        seed: Random seed.

    Returns:
        Sorted row indices.
    """
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    # rank of each row among the rows with the same key, in the random order
    shuffled = keys[order]
    sort = np.argsort(shuffled, kind="stable")
    sorted_keys = shuffled[sort]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_keys)) + 1]
    rank_sorted = np.arange(len(sorted_keys)) - np.repeat(
        starts, np.diff(np.r_[starts, len(sorted_keys)])
    )
    rank = np.empty(len(keys), dtype=np.int64)
    rank[sort] = rank_sorted
    eligible = order[rank < max_copies]
    return np.sort(eligible[:max_sample])


@dataclass
class FittedClusters:
    """An HDBSCAN model fitted on a sample, and what it found there.

    Attributes:
        model: The fitted `hdbscan.HDBSCAN`.
        labels: Cluster of each sample row (-1 = noise), renumbered 0..k-1 by size.
        probabilities: HDBSCAN membership strength of each sample row.
        relabel: Map from the model's own labels to `labels`' numbering.
        min_cluster_size: The size used.
        emerging: Labels of the clusters split out as emerging topics.
    """

    model: object
    labels: np.ndarray
    probabilities: np.ndarray
    relabel: dict[int, int]
    min_cluster_size: int
    emerging: list[int] = field(default_factory=list)

    @property
    def n_clusters(self) -> int:
        """Clusters found (noise excluded)."""
        return int(self.labels.max()) + 1 if len(self.labels) else 0


def _threads() -> joblib.parallel_config:
    """HDBSCAN's parallel core distances on threads, not joblib's default worker processes.

    Those processes outlive the call (loky keeps them for reuse), and a process started by
    `multiprocessing` (a Dagster step, a benchmark child) waits for them on exit: measured, a
    five-minute stall after the work was done. The fit is on a bounded sample, so threads
    cost nothing that shows.
    """
    return joblib.parallel_config(backend="threading")


def fit_clusters(points: np.ndarray, config: FitConfig = FitConfig()) -> FittedClusters:
    """Fit HDBSCAN on reduced sample points; clusters renumbered by size (0 = largest).

    Args:
        points: Reduced sample vectors (n, d).
        config: Fit settings.

    Returns:
        The fitted model and the sample's labels.
    """
    import hdbscan

    n = len(points)
    mcs = min_cluster_size_for(n, config)
    if n < 3:
        return FittedClusters(None, np.full(n, NOISE), np.zeros(n), {}, mcs)
    model = hdbscan.HDBSCAN(
        min_cluster_size=mcs,
        min_samples=None if config.min_samples is None else min(config.min_samples, n - 1),
        cluster_selection_method=config.cluster_selection_method,
        core_dist_n_jobs=config.n_jobs,
    )
    with _threads():
        raw = model.fit_predict(np.asarray(points, dtype=np.float64))
    ids, counts = np.unique(raw[raw != NOISE], return_counts=True)
    order = ids[np.lexsort((ids, -counts))]
    relabel = {int(old): new for new, old in enumerate(order)}
    labels = np.array([relabel.get(int(x), NOISE) for x in raw], dtype=np.int64)
    logger.info(
        "HDBSCAN on %d points, min_cluster_size=%d: %d clusters, %.0f%% noise",
        n,
        mcs,
        len(order),
        100.0 * float(np.mean(labels == NOISE)),
    )
    return FittedClusters(model, labels, np.asarray(model.probabilities_), relabel, mcs)


def split_emerging(
    points: np.ndarray,
    fitted: FittedClusters,
    recent: np.ndarray,
    vectors: np.ndarray,
    config: FitConfig = FitConfig(),
) -> FittedClusters:
    """Split out groups of events that all arrived in the last few days: emerging topics.

    min_cluster_size is a share of the window, so a topic born yesterday holds a small part of
    a 14-day window and is first absorbed by a neighbouring topic or left as noise; a team
    would only see it days later. A second, finer HDBSCAN pass on the same points finds small
    groups; one whose events are (almost) all recent, while the window holds older data, and
    whose texts have no close older neighbour, is a new subject and becomes its own cluster.
    (Without the content test, a recent burst of an established intent, e.g. one complaint
    after a release, would be split off its topic.) Groups that are (nearly) the whole of an
    existing cluster are left alone.

    Args:
        points: The reduced sample points the coarse fit used.
        fitted: The coarse fit.
        recent: Per sample point, True when its event is in the window's last `emerging_days`.
        vectors: Unit-length embeddings of the sample points (the events' own, no context).
        config: Fit settings.

    Returns:
        The fit with emerging clusters added (labels after the existing ones), or unchanged.
    """
    import hdbscan

    n = len(points)
    if config.emerging_days <= 0 or n < 3 or recent.all() or not recent.any():
        return fitted
    size = max(config.min_cluster_floor, round(config.emerging_fraction * n))
    if size >= fitted.min_cluster_size or size >= n // 2:
        return fitted
    with _threads():
        fine = hdbscan.HDBSCAN(
            min_cluster_size=size,
            min_samples=None if config.min_samples is None else min(config.min_samples, n - 1),
            core_dist_n_jobs=config.n_jobs,
        ).fit_predict(np.asarray(points, dtype=np.float64))
    labels = fitted.labels.copy()
    coarse_sizes = np.bincount(labels[labels >= 0], minlength=fitted.n_clusters)
    emerging: list[int] = []
    next_label = fitted.n_clusters
    for f in np.unique(fine[fine != NOISE]):
        member = fine == f
        if recent[member].mean() < config.emerging_share:
            continue
        parents, counts = np.unique(labels[member], return_counts=True)
        parent = int(parents[np.argmax(counts)])
        if parent != NOISE and member.sum() >= 0.8 * coarse_sizes[parent]:
            continue  # already a cluster of its own
        nearest_older = (vectors[member] @ vectors[~recent].T).max(axis=1)
        if float(np.median(nearest_older)) >= config.emerging_max_similarity:
            continue  # said before: a burst of an old subject, not a new one
        labels[member] = next_label
        emerging.append(next_label)
        next_label += 1
    if not emerging:
        return fitted
    logger.info("split %d emerging cluster(s) of recent events out", len(emerging))
    return FittedClusters(
        fitted.model,
        labels,
        fitted.probabilities,
        fitted.relabel,
        fitted.min_cluster_size,
        emerging,
    )
