"""Neighbour search through Qdrant: the tuning step's former `Neighbours`, kept as a reference.

The routing step now uses `routing.tuning.similarity.BlockNeighbours` (one BLAS product per
block instead of one query per text: minutes instead of over 17 minutes on a 100k-event day);
the tests hold it to these searches, which give the same pairs, groups and splits.

The vectors of one question (distinct requests, or corrections) are loaded into a scratch
collection, and every vector is queried against it with the threshold as Qdrant's
`score_threshold`, in batches. Search is exact (no HNSW shortcut): near-duplicate removal and
splits must not depend on an index's approximation, or reruns could differ.

Two backends, one behaviour (tests hold both to `similarity.exact_neighbours`):

- `EdgeNeighbours` — Qdrant Edge, the Qdrant engine in-process, on a scratch shard in a
  temporary folder: ~1 s for 2,000 exact queries over 2,000 vectors here (qdrant-client's
  local mode, a Python re-implementation, takes ~50 s for the same).
- `ClientNeighbours` — any `qdrant_client.QdrantClient`, e.g. the Qdrant server of the
  `vector_store` resource, on a scratch collection dropped after each call.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterable

import numpy as np

Pairs = list[tuple[int, int, float]]


def _collect(
    n: int, limit: int, run: Callable[[list[int], int], list[list[tuple[int, float]]]]
) -> Pairs:
    """Query every position, re-asking with a larger limit those that filled it."""
    found: dict[tuple[int, int], float] = {}
    pending = list(range(n))
    while pending:
        again = []
        for i, hits in zip(pending, run(pending, limit), strict=True):
            if len(hits) >= limit:
                again.append(i)
            for j, score in hits:
                if j != i:
                    found[(min(i, j), max(i, j))] = score
        pending, limit = again, limit * 4
    return sorted((i, j, s) for (i, j), s in found.items())


def _batches(items: list[int], size: int) -> Iterable[list[int]]:
    for lo in range(0, len(items), size):
        yield items[lo : lo + size]


class EdgeNeighbours:
    """`Neighbours` on a scratch Qdrant Edge shard (the default, embedded).

    Args:
        batch: Queries per `query_batch` call.
        limit: Neighbours asked per query at first (a full answer is asked again, x4).
        folder: Where scratch shards live (default: the system's temporary folder).
    """

    backend = "qdrant-edge"

    def __init__(self, batch: int = 256, limit: int = 64, folder: str | None = None) -> None:
        self.batch = batch
        self.limit = limit
        self.folder = folder
        self.queries = 0

    def __call__(self, vectors: np.ndarray, threshold: float) -> Pairs:
        """Every pair (i, j), i < j, with cosine >= threshold."""
        import qdrant_edge as q

        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(vectors)
        if n < 2:
            return []
        with tempfile.TemporaryDirectory(prefix="tuning-qdrant-", dir=self.folder) as path:
            config = q.EdgeConfig(
                vectors=q.EdgeVectorParams(size=vectors.shape[1], distance=q.Distance.Cosine)
            )
            shard = q.EdgeShard.create(path, config)
            try:
                for ids in _batches(list(range(n)), 4096):
                    points = [q.Point(i, vectors[i].tolist()) for i in ids]
                    shard.update(q.UpdateOperation.upsert_points(points))

                def run(pending: list[int], limit: int) -> list[list[tuple[int, float]]]:
                    out: list[list[tuple[int, float]]] = []
                    for ids in _batches(pending, self.batch):
                        requests = [
                            q.QueryRequest(
                                limit=limit,
                                query=q.Query.Nearest(vectors[i].tolist()),
                                score_threshold=threshold,
                                params=q.SearchParams(exact=True),
                            )
                            for i in ids
                        ]
                        self.queries += len(requests)
                        for hits in shard.query_batch(q.QueryBatchRequest(requests)):
                            out.append([(int(p.id), float(p.score)) for p in hits])
                    return out

                return _collect(n, self.limit, run)
            finally:
                shard.close()


class ClientNeighbours:
    """`Neighbours` through a `qdrant_client.QdrantClient` (a Qdrant server, typically).

    Args:
        client: The client; default: one for `QDRANT_URL` / `QDRANT_API_KEY`.
        prefix: Scratch collections are `<prefix>_<random>`, dropped after each call.
        batch: Queries per `query_batch_points` request.
        limit: Neighbours asked per query at first.
    """

    backend = "qdrant-client"

    def __init__(
        self,
        client=None,
        prefix: str = "tuning_scratch",
        batch: int = 256,
        limit: int = 64,
        url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if client is None:
            from qdrant_client import QdrantClient

            client = QdrantClient(url=url, api_key=api_key)
        self.client = client
        self.prefix = prefix
        self.batch = batch
        self.limit = limit
        self.queries = 0

    def __call__(self, vectors: np.ndarray, threshold: float) -> Pairs:
        """Every pair (i, j), i < j, with cosine >= threshold."""
        from qdrant_client import models

        vectors = np.asarray(vectors, dtype=np.float32)
        n = len(vectors)
        if n < 2:
            return []
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        client = self.client
        params = models.VectorParams(size=vectors.shape[1], distance=models.Distance.COSINE)
        client.create_collection(name, vectors_config=params)
        try:
            client.upload_points(
                name,
                [models.PointStruct(id=i, vector=vectors[i].tolist()) for i in range(n)],
                wait=True,
            )

            def run(pending: list[int], limit: int) -> list[list[tuple[int, float]]]:
                out: list[list[tuple[int, float]]] = []
                for ids in _batches(pending, self.batch):
                    requests = [
                        models.QueryRequest(
                            query=vectors[i].tolist(),
                            limit=limit,
                            score_threshold=threshold,
                            params=models.SearchParams(exact=True),
                        )
                        for i in ids
                    ]
                    self.queries += len(requests)
                    for response in client.query_batch_points(name, requests):
                        out.append([(int(p.id), float(p.score)) for p in response.points])
                return out

            return _collect(n, self.limit, run)
        finally:
            client.delete_collection(name)


def qdrant_neighbours(
    url: str | None = None, api_key: str | None = None
) -> EdgeNeighbours | ClientNeighbours:
    """The Qdrant search beside the store: the server at `url` if given, else Qdrant Edge.

    `VectorStoreResource.neighbours()` calls this with the resource's own server settings.
    """
    if url:
        return ClientNeighbours(url=url, api_key=api_key)
    return EdgeNeighbours()
