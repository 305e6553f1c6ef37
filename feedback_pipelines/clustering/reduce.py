"""Dimensionality reduction before density clustering, behind one small interface.

HDBSCAN's cost grows about quadratically with the dimension's effect on neighbour search: on
raw 384-d vectors 20k points take ~110 s, after PCA to 10 dimensions 3.4 s (FACTS.md). Reducers
are fitted on the bounded sample only.

`umap` is the default, by measurement (helper note, bench/cluster.py): PCA is linear and keeps
the few directions along which *all* texts vary most (greetings, length, politeness), not the
local neighbourhoods topics are made of. On the generated week (15 planted topics, with
conversation context) PCA-10 + HDBSCAN reached ARI 0.19-0.45 with 11-14 topics under 80% recall
or purity at every min_cluster_size tried, UMAP-5 ARI 0.98 with all 15 above; on FeedbackQA
rater comments PCA-10 left 73% of the texts as noise in 3 clusters, UMAP 26% in 21 readable
ones. UMAP runs on exact neighbours computed here (see `cosine_knn`): 2.7 s instead of 27 s for
3.7k points. `pca` stays available (no numba, deterministic to the bit, for templated data) and
`none` passes vectors through.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod

import numpy as np


class Reducer(ABC):
    """Fit on a sample, then map any number of vectors into the reduced space."""

    name: str = "base"

    @abstractmethod
    def fit(self, vectors: np.ndarray) -> Reducer:
        """Learn the projection from a sample of unit-length vectors."""

    @abstractmethod
    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project vectors (float32 in, float32 out)."""

    def fit_transform(self, vectors: np.ndarray) -> np.ndarray:
        """Fit on vectors and return their projection."""
        return self.fit(vectors).transform(vectors)


class PassThrough(Reducer):
    """No reduction: for small windows or when vectors are already low-dimensional."""

    name = "none"

    def fit(self, vectors: np.ndarray) -> PassThrough:
        """Nothing to learn."""
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """The vectors as float32."""
        return np.asarray(vectors, dtype=np.float32)


class PCAReducer(Reducer):
    """PCA (scikit-learn), deterministic given the seed; rows transformed in chunks."""

    name = "pca"

    def __init__(self, n_components: int = 10, seed: int = 0, chunk: int = 65536) -> None:
        self.n_components = n_components
        self.seed = seed
        self.chunk = chunk
        self._pca = None

    def fit(self, vectors: np.ndarray) -> PCAReducer:
        """Fit the principal axes on the sample."""
        from sklearn.decomposition import PCA

        k = max(1, min(self.n_components, vectors.shape[0] - 1, vectors.shape[1]))
        self._pca = PCA(n_components=k, svd_solver="covariance_eigh", random_state=self.seed)
        self._pca.fit(np.asarray(vectors, dtype=np.float32))
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Project onto the fitted axes, chunk by chunk (bounded temporary memory)."""
        if self._pca is None:
            raise RuntimeError("PCAReducer.transform called before fit")
        out = np.empty((len(vectors), self._pca.n_components_), dtype=np.float32)
        for lo in range(0, len(vectors), self.chunk):
            block = np.asarray(vectors[lo : lo + self.chunk], dtype=np.float32)
            out[lo : lo + self.chunk] = self._pca.transform(block)
        return out

    @property
    def explained_variance(self) -> float:
        """Share of the sample's variance the kept axes explain (for logs)."""
        return float(self._pca.explained_variance_ratio_.sum()) if self._pca is not None else 0.0


def cosine_knn(vectors: np.ndarray, k: int, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours by cosine distance (each row is its own first neighbour).

    Brute force in chunks of matrix products: on a bounded sample (10k x 384) this takes a
    second or two, and it spares UMAP its own neighbour search, which below 4,096 points calls
    a Python distance function per pair (27 s for 3.7k points, measured) and above that runs
    an approximate NN-descent.

    Args:
        vectors: Unit-length rows (n, d).
        k: Neighbours per row, the row itself included.
        chunk: Rows per matrix product.

    Returns:
        (indices, distances), each (n, k), sorted by distance.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n)
    indices = np.empty((n, k), dtype=np.int64)
    distances = np.empty((n, k), dtype=np.float32)
    for lo in range(0, n, chunk):
        sims = x[lo : lo + chunk] @ x.T
        rows = np.arange(len(sims))
        sims[rows, lo + rows] = np.inf  # a row is its own nearest neighbour, even among copies
        top = (
            np.argpartition(-sims, k - 1, axis=1)[:, :k]
            if k < n
            else np.tile(np.arange(n), (len(sims), 1))
        )
        top_sims = np.take_along_axis(sims, top, axis=1)
        order = np.argsort(-top_sims, axis=1, kind="stable")
        indices[lo : lo + chunk] = np.take_along_axis(top, order, axis=1)
        dist = 1.0 - np.take_along_axis(top_sims, order, axis=1)
        dist[:, 0] = 0.0
        distances[lo : lo + chunk] = np.maximum(dist, 0.0)
    return indices, distances


class UMAPReducer(Reducer):
    """UMAP with cosine metric (umap-learn), BERTopic's choice, on exact neighbours.

    Fitted on the bounded sample only: the window's other events are placed by nearest
    exemplars in assign.py, so UMAP's slow `transform` is never needed.
    """

    name = "umap"

    def __init__(
        self,
        n_components: int = 5,
        n_neighbors: int = 15,
        seed: int = 0,
        min_dist: float = 0.0,
        n_epochs: int | None = 200,
    ) -> None:
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.seed = seed
        self.min_dist = min_dist
        self.n_epochs = n_epochs
        self._umap = None

    def fit(self, vectors: np.ndarray) -> UMAPReducer:
        """Fit the UMAP graph and layout on the sample (seconds per thousand points)."""
        try:
            import umap
        except ImportError as exc:
            raise ImportError(
                "the 'umap' reducer needs umap-learn: pip install umap-learn "
                "(or use the default reducer 'pca')"
            ) from exc
        x = np.asarray(vectors, dtype=np.float32)
        k = min(self.n_neighbors, max(2, len(x) - 1))
        knn = cosine_knn(x, k)
        self._umap = umap.UMAP(
            n_neighbors=k,
            n_components=self.n_components,
            min_dist=self.min_dist,
            metric="cosine",
            random_state=self.seed,
            n_epochs=self.n_epochs,
            precomputed_knn=(knn[0], knn[1], None),
        )
        with warnings.catch_warnings():
            # "n_jobs overridden by random_state", "no transform without search index": both
            # expected (deterministic runs; new points go through nearest exemplars instead).
            warnings.simplefilter("ignore", UserWarning)
            self._umap.fit(x)
        return self

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        """Not supported: the layout is fitted on exact neighbours, without a search index."""
        raise NotImplementedError(
            "UMAPReducer is fitted on the sample only; place other points with nearest "
            "exemplars (clustering.assign)"
        )

    def fit_transform(self, vectors: np.ndarray) -> np.ndarray:
        """Fit and return the sample's own layout (no second pass through transform)."""
        self.fit(vectors)
        return np.asarray(self._umap.embedding_, dtype=np.float32)


REDUCERS = {"pca": PCAReducer, "umap": UMAPReducer, "none": PassThrough}


def select_reducer(name: str, n_components: int = 10, seed: int = 0) -> Reducer:
    """The reducer called `name` ('pca', 'umap' or 'none').

    Args:
        name: Reducer name.
        n_components: Output dimensions (ignored by 'none').
        seed: Random state, so a rerun of a day gives the same clusters.
    """
    key = (name or "pca").lower()
    if key not in REDUCERS:
        raise ValueError(f"unknown reducer {name!r}; choose one of {sorted(REDUCERS)}")
    if key == "none":
        return PassThrough()
    return REDUCERS[key](n_components=n_components, seed=seed)
