"""Assign every event of the window to the clusters fitted on the sample: nearest exemplars.

HDBSCAN is fitted on a bounded sample (fit.py). Every other event takes the cluster its nearest
sample events (the exemplars) vote for, each vote weighted by cosine similarity, with noise as a
candidate like any cluster: an event among noise stays noise (-1) and is never forced into a
topic. This works for any reducer (UMAP's own `transform` is slow and HDBSCAN's
`approximate_predict` needs the reduced coordinates), and it costs one brute-force neighbour
query per event against a fixed-size sample, so assignment grows linearly with the window.

Copies of a text that is in the sample take that sample row's cluster directly, so identical
texts always share a cluster.
"""

from __future__ import annotations

import numpy as np

from feedback_pipelines.clustering.fit import NOISE


def nearest_exemplar_vote(
    queries: np.ndarray,
    exemplars: np.ndarray,
    exemplar_labels: np.ndarray,
    k: int = 10,
    chunk: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """The label the k most similar exemplars vote for, and the winning share of the vote.

    Args:
        queries: Unit-length (or comparable) vectors to label, (n, d).
        exemplars: The labelled sample in the same space, (m, d).
        exemplar_labels: Label of each exemplar (-1 = noise, a valid outcome).
        k: Neighbours that vote.
        chunk: Queries per matrix product (bounds memory: chunk * m floats).

    Returns:
        (labels, shares): winning label per query, and its similarity-weighted share in [0, 1].
    """
    n = len(queries)
    labels = np.full(n, NOISE, dtype=np.int64)
    shares = np.zeros(n, dtype=np.float64)
    if n == 0 or len(exemplars) == 0:
        return labels, shares
    k = max(1, min(k, len(exemplars)))
    classes, codes = np.unique(np.asarray(exemplar_labels), return_inverse=True)
    codes = codes.ravel()
    ex = np.asarray(exemplars, dtype=np.float32)
    for lo in range(0, n, chunk):
        q = np.asarray(queries[lo : lo + chunk], dtype=np.float32)
        sims = q @ ex.T
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < ex.shape[0] else None
        if top is None:
            top = np.broadcast_to(np.arange(ex.shape[0]), (len(q), ex.shape[0]))
        weights = np.maximum(np.take_along_axis(sims, top, axis=1), 0.0) + 1e-6
        votes = np.zeros((len(q), len(classes)), dtype=np.float64)
        np.add.at(
            votes, (np.repeat(np.arange(len(q)), top.shape[1]), codes[top].ravel()), weights.ravel()
        )
        win = votes.argmax(axis=1)
        labels[lo : lo + len(q)] = classes[win]
        shares[lo : lo + len(q)] = votes[np.arange(len(q)), win] / votes.sum(axis=1)
    return labels, shares


def assign_to_clusters(
    sample_labels: np.ndarray,
    sample_strength: np.ndarray,
    space: np.ndarray,
    keys: np.ndarray,
    sample_index: np.ndarray,
    k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster and confidence of every row of the window.

    Args:
        sample_labels: HDBSCAN's labels of the sample rows (-1 = noise), in sample order.
        sample_strength: HDBSCAN's membership strength of the sample rows.
        space: Vectors of the whole window in the space neighbours are searched in (rows
            comparable by dot product, e.g. unit vectors or their PCA projection).
        keys: Duplicate key of each row (identical vectors share a key).
        sample_index: Row of each sample point, aligned with `sample_labels`.
        k: Exemplars that vote for a row outside the sample.

    Returns:
        (labels, probability): cluster per row (-1 = noise) and a confidence in [0, 1]: the
        HDBSCAN membership strength for sample rows and their copies, the winning share of the
        exemplar vote for the others.
    """
    n = len(space)
    labels = np.full(n, NOISE, dtype=np.int64)
    strength = np.zeros(n, dtype=np.float64)
    if n == 0 or len(sample_index) == 0:
        return labels, strength
    labels[sample_index] = sample_labels
    strength[sample_index] = sample_strength
    is_sample = np.zeros(n, dtype=bool)
    is_sample[sample_index] = True
    rest = np.flatnonzero(~is_sample)
    if len(rest) == 0:
        return labels, strength
    # copies of a sampled text: that row's result
    key_to_row = dict(zip(keys[sample_index].tolist(), sample_index.tolist(), strict=True))
    source = np.array([key_to_row.get(x, -1) for x in keys[rest].tolist()], dtype=np.int64)
    copies = source >= 0
    labels[rest[copies]] = labels[source[copies]]
    strength[rest[copies]] = strength[source[copies]]
    todo = rest[~copies]
    if len(todo):
        voted, share = nearest_exemplar_vote(space[todo], space[sample_index], sample_labels, k)
        labels[todo] = voted
        strength[todo] = share
    return labels, strength
