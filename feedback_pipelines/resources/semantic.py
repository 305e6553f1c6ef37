"""Resources of the semantic stage: the embedder and the vector store, configured from the env.

Both resolve at run time, so one set of definitions serves every environment:

- `EmbedderResource.name` empty -> `FEEDBACK_EMBEDDER` -> "onnx-int8" (the packaged MiniLM).
- `VectorStoreResource.retention_days` -1 -> `FEEDBACK_QDRANT_RETENTION_DAYS` -> 90 days kept.
- `VectorStoreResource.hnsw_m` -1 -> `FEEDBACK_QDRANT_HNSW_M` -> 0 (a server collection's graph).
- `VectorStoreResource.url` / `api_key` empty -> `QDRANT_URL` / `QDRANT_API_KEY`; no URL ->
  the embedded store (Qdrant Edge) under `path`, default `$FEEDBACK_DATA_DIR/qdrant`.
  Bind secrets with `dg.EnvVar("QDRANT_API_KEY")`; they are never logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from feedback_pipelines.embedding import Embedder, get_embedder
from feedback_pipelines.vectorstore import VectorStore, default_store_path, open_store
from feedback_pipelines.vectorstore.neighbours import (
    ClientNeighbours,
    EdgeNeighbours,
    qdrant_neighbours,
)


class EmbedderResource(dg.ConfigurableResource):
    """The text embedder, chosen by name (see `feedback_pipelines.embedding`)."""

    name: str = ""

    def get(self) -> Embedder:
        """The embedder (loaded once per process)."""
        return get_embedder(self.name or None)


class VectorStoreResource(dg.ConfigurableResource):
    """Where feedback vectors live: a Qdrant server (url) or the embedded store (path).

    Embedded stores allow one process at a time: open with `open(...)` for the duration of one
    step and let it close.
    """

    url: str = ""
    api_key: str = ""
    path: str = ""
    backend: str = ""
    #: Run Qdrant Edge's `optimize()` each day, after `qdrant_feedback`'s last write of the day,
    #: once the collection holds at least this many points; 0 = never. It quantizes the new
    #: segments (4-bit TurboQuant codes, no HNSW graph: see `vectorstore/layout.py`), ~3 CPU s
    #: per 100k new points, and rebuilds older segments that lost many points to payload
    #: updates; the first after an upgrade from the previous release's int8 segments re-encodes
    #: them all (~5-6 s per 100k points, once). At the 90-day horizon's 9M points: filtered
    #: top-10 in 2.7-23 ms for days and a version's negatives, recall@10 1.000.
    optimize_above: int = 1
    #: Days of points kept, ending at the partition being written (older points are removed
    #: by each daily `qdrant_feedback`); -1 = FEEDBACK_QDRANT_RETENTION_DAYS (default 90);
    #: 0 = keep everything.
    retention_days: int = -1
    #: A Qdrant server collection's HNSW edges per point; -1 = FEEDBACK_QDRANT_HNSW_M
    #: (default 0: no graph). Unused by the embedded store.
    hnsw_m: int = -1

    def retention(self) -> int:
        """The horizon in days (0: none)."""
        from feedback_pipelines import config

        return config.qdrant_retention_days() if self.retention_days < 0 else self.retention_days

    def graph_m(self) -> int:
        """A server collection's HNSW edges per point (0: no graph)."""
        from feedback_pipelines import config

        return config.qdrant_hnsw_m() if self.hnsw_m < 0 else self.hnsw_m

    def retention_cutoff(self, ds: str) -> str | None:
        """The first day kept when `ds` is written, or None without a horizon."""
        days = self.retention()
        if not days:
            return None
        return (date.fromisoformat(ds) - timedelta(days=days - 1)).isoformat()

    @property
    def store_path(self) -> Path:
        """The embedded store's folder."""
        return Path(self.path) if self.path else default_store_path()

    def server(self) -> tuple[str | None, str | None]:
        """The Qdrant server's URL and key (`url`/`api_key`, else QDRANT_URL/QDRANT_API_KEY)."""
        url = self.url or os.environ.get("QDRANT_URL") or None
        return url, (self.api_key or os.environ.get("QDRANT_API_KEY") or None) if url else None

    def describe(self) -> str:
        """Where the store is, for logs (never the key)."""
        url, _ = self.server()
        return f"Qdrant server {url}" if url else f"embedded store {self.store_path}"

    def neighbours(self) -> EdgeNeighbours | ClientNeighbours:
        """Exact near-duplicate search on the same kind of store (a scratch collection)."""
        return qdrant_neighbours(*self.server())

    def should_optimize(self, points: int) -> bool:
        """Whether to build the index now, for a collection of `points` points."""
        return bool(self.optimize_above) and points >= self.optimize_above

    @contextmanager
    def open(self, model_id: str, dim: int) -> Iterator[VectorStore]:
        """The collection for `model_id`, closed when the block ends."""
        url, api_key = self.server()
        store = open_store(
            model_id,
            dim,
            url=url or "",
            api_key=api_key,
            path=self.store_path,
            backend=self.backend or None,
            hnsw_m=self.graph_m(),
        )
        try:
            yield store
        finally:
            store.close()
