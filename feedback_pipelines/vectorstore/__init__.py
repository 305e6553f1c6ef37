"""The feedback vector store behind one small interface: Qdrant Edge embedded, or a Qdrant server.

Stable interface (other stages rely on it)::

    from feedback_pipelines.vectorstore import open_store, point_id, collection_name

    with open_store(embedder.model_id, embedder.dim) as store:   # data/qdrant/, or QDRANT_URL
        store.upsert([(point_id(fid), vector, payload), ...])   # batched, idempotent
        store.set_payload(ids, {"cluster_id": 3})               # same fields on many points
        store.set_payloads({id: {"cluster_id": c}, ...})        # per-point fields
        hits = store.search(vector, {"model_version": "v2", "ds": {"gte": "2026-11-01"}}, 10)
        hits[0].id, hits[0].score, hits[0].payload              # payload["feedback_id"], ...
        store.retrieve_vectors(ids)  -> {id: np.ndarray}
        store.retrieve_payloads(ids) -> {id: dict}
        store.count({"kind": ["thumbs_down", "correction"]})

One collection per embedding model (`collection_name(model_id)`), cosine distance, payload
indexes on `PAYLOAD_INDEXES`. Filters are plain dicts (see `base.py`). Embedded stores allow one
process at a time: open, work, close.

Backends (`backend=`): "edge" (Qdrant Edge, the embedded default: 40-80x the upserts/s and
10-40x faster filtered queries than local mode at equal recall, see bench/vectorstore.py),
"local" (qdrant-client local mode), "memory" (qdrant-client in memory, for tests), "server"
(chosen automatically when a URL is given: qdrant-client to a Qdrant server or cluster).
"""

from __future__ import annotations

import os
from pathlib import Path

from feedback_pipelines.vectorstore.base import (
    PAYLOAD_INDEXES,
    POINT_NAMESPACE,
    Filter,
    Hit,
    PointTuple,
    VectorStore,
    check_filter,
    collection_name,
    iso_date,
    point_id,
)

__all__ = [
    "BACKENDS",
    "PAYLOAD_INDEXES",
    "POINT_NAMESPACE",
    "Filter",
    "Hit",
    "PointTuple",
    "VectorStore",
    "check_filter",
    "collection_name",
    "default_store_path",
    "iso_date",
    "open_store",
    "point_id",
]

BACKENDS = ("edge", "local", "memory", "server")


def default_store_path() -> Path:
    """`$FEEDBACK_DATA_DIR/qdrant` (CONTRACT.md section 1)."""
    from feedback_pipelines import config

    return config.data_dir() / "qdrant"


def open_store(
    model_id: str,
    dim: int,
    *,
    url: str | None = None,
    api_key: str | None = None,
    path: str | Path | None = None,
    backend: str | None = None,
    collection: str | None = None,
    hnsw_m: int | None = None,
) -> VectorStore:
    """Open (creating if needed) the collection for vectors of `model_id`.

    Args:
        model_id: The embedder's model id; names the collection unless `collection` is given.
        dim: Vector length.
        url: Qdrant server URL; default QDRANT_URL. When set, the server is used.
        api_key: Server API key; default QDRANT_API_KEY.
        path: Embedded store folder; default $FEEDBACK_DATA_DIR/qdrant.
        backend: 'edge' (default without a URL), 'local', 'memory' or 'server'.
        collection: Explicit collection name (tests, benchmarks).
        hnsw_m: A server collection's HNSW graph (`QdrantClientStore`); default
            FEEDBACK_QDRANT_HNSW_M, else none.
    """
    name = collection or collection_name(model_id)
    url = url if url is not None else os.environ.get("QDRANT_URL") or None
    api_key = api_key if api_key is not None else os.environ.get("QDRANT_API_KEY") or None
    chosen = (backend or ("server" if url else "edge")).lower()
    if chosen not in BACKENDS:
        raise ValueError(f"unknown vector store backend {backend!r}; one of {BACKENDS}")
    root = Path(path) if path is not None else default_store_path()
    if chosen == "server":
        if not url:
            raise ValueError("backend 'server' needs a URL (QDRANT_URL)")
        from feedback_pipelines.vectorstore.qdrant_client_store import QdrantClientStore

        if hnsw_m is None:
            from feedback_pipelines import config

            hnsw_m = config.qdrant_hnsw_m()
        return QdrantClientStore(name, dim, url=url, api_key=api_key, hnsw_m=hnsw_m)
    if chosen == "edge":
        from feedback_pipelines.vectorstore.edge import EdgeStore

        return EdgeStore(root, name, dim)
    from feedback_pipelines.vectorstore.qdrant_client_store import QdrantClientStore

    if chosen == "memory":
        return QdrantClientStore(name, dim)
    return QdrantClientStore(name, dim, path=root / "_local")
