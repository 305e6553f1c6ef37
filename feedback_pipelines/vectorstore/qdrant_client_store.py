"""qdrant-client: the way to a Qdrant server (`QDRANT_URL`, `QDRANT_API_KEY`), or its local mode.

Local mode (`path=`) is a pure-Python brute-force store: correct, but minutes to upsert tens of
thousands of points and about a second per filtered query at 50k (FACTS.md), so the embedded
default is Qdrant Edge; local mode stays available as `backend="local"` and for comparison.

A server collection gets the layout measured on the embedded store (`layout`, SCALE.md):
4-bit TurboQuant codes in RAM, segments of up to ~100k points, searches that rescore the
candidates, and no HNSW graph (TurboQuant needs a server that knows it, like qdrant-client
1.20). A collection with no quantization (the server's defaults) or with the int8 layout of
the previous release is updated to it when opened, and the server rebuilds its segments in the
background; one with any other layout is left as its owner set it. Its payload indexes are
brought to this release's too (cluster ids for matches only, the model version a tenant), as
the embedded store's are. Not measured on a server (none runs here).
Local mode is brute force and is given none of this.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from feedback_pipelines.vectorstore.base import (
    PAYLOAD_INDEXES,
    Filter,
    Hit,
    PointTuple,
    VectorStore,
    batched,
    indexed_filter,
    iso_date,
    stale_index,
)
from feedback_pipelines.vectorstore.layout import (
    EF_CONSTRUCT,
    FULL_SCAN_KB,
    OVERSAMPLING,
    TURBO_BITS,
    segment_kb,
)

logger = logging.getLogger(__name__)

# A server stores flags as booleans (Edge: as 0/1 integers), so only integers are match-only.
_MATCH_ONLY = frozenset({"integer"})


def _former_layout(config: Any) -> bool:
    """Whether a server collection holds the layout the previous release gave it.

    int8 codes (quantile 0.99) in RAM, no graph: the same segments, slower than 4-bit codes at
    the retention horizon's size and twice their RAM (`layout`).
    """
    scalar = getattr(config.quantization_config, "scalar", None)
    return (
        scalar is not None
        and scalar.type == "int8"
        and scalar.quantile == 0.99
        and config.hnsw_config.m == 0
    )


class QdrantClientStore(VectorStore):
    """A collection in a Qdrant server, or in qdrant-client's local mode.

    Args:
        collection: Collection name.
        dim: Vector length.
        url: Server URL (e.g. http://localhost:6333); None for local mode.
        api_key: Server API key (a secret: never logged).
        path: Local-mode folder (used when url is None); None means in memory.
        indexes: Payload field -> type ('keyword', 'tenant', 'integer', 'float', 'datetime',
            'bool').
        timeout: Seconds per request to a server.
        hnsw_m: HNSW graph edges per point on a server. 0 (the default) builds none: scans of
            the quantized codes, rescored, measured exact (SCALE.md). A node holding tens of
            millions of points may ask for a graph (e.g. 16) to bound search time, at some
            recall on duplicate vectors (not measured on a server).
        hnsw_ef: Search-time beam width on a server, used only with a graph.
    """

    def __init__(
        self,
        collection: str,
        dim: int,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: str | Path | None = None,
        indexes: Mapping[str, str] | None = None,
        timeout: int = 60,
        hnsw_m: int = 0,
        hnsw_ef: int = 128,
    ) -> None:
        from qdrant_client import QdrantClient, models

        self._m = models
        self.collection = collection
        self.dim = dim
        self.hnsw_m = hnsw_m
        self.hnsw_ef = hnsw_ef
        self.indexes = dict(PAYLOAD_INDEXES if indexes is None else indexes)
        self.is_local = url is None
        if url:
            self.client = QdrantClient(url=url, api_key=api_key or None, timeout=timeout)
        elif path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(path))
        else:
            self.client = QdrantClient(location=":memory:")
        self._open_collection()
        kinds = {
            "keyword": models.PayloadSchemaType.KEYWORD,
            "tenant": models.KeywordIndexParams(
                type=models.KeywordIndexType.KEYWORD, is_tenant=True
            ),
            "integer": models.IntegerIndexParams(  # matches only (`MATCH_ONLY`)
                type=models.IntegerIndexType.INTEGER, lookup=True, range=False
            ),
            "float": models.PayloadSchemaType.FLOAT,
            "datetime": models.PayloadSchemaType.DATETIME,
            "bool": models.PayloadSchemaType.BOOL,
        }
        with warnings.catch_warnings():  # local mode warns that indexes have no effect
            warnings.simplefilter("ignore")
            existing = self.client.get_collection(collection).payload_schema or {}
            for name, kind in self.indexes.items():
                if name in existing and not stale_index(existing[name], kind, _MATCH_ONLY):
                    continue
                if name in existing:  # an earlier release's: a range part, or no tenant
                    logger.info("re-indexing %s of %s as %s (once)", name, collection, kind)
                    self.client.delete_payload_index(collection, name, wait=True)
                self.client.create_payload_index(collection, name, kinds[kind], wait=True)

    def _open_collection(self) -> None:
        """Create the collection, or check an existing one.

        One with no quantization (the server's defaults) or with the layout of earlier releases
        (`_former_layout`) is brought to `_layout()`; any other layout was chosen by someone and
        is left as it is.
        """
        m = self._m
        layout = {} if self.is_local else self._layout()
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=m.VectorParams(size=self.dim, distance=m.Distance.COSINE),
                **layout,
            )
            return
        config = self.client.get_collection(self.collection).config
        size = config.params.vectors.size
        if size != self.dim:
            raise ValueError(
                f"collection {self.collection!r} holds {size}-d vectors, not {self.dim}-d"
            )
        if layout and (config.quantization_config is None or _former_layout(config)):
            logger.info("updating %s to the quantized segment layout", self.collection)
            self.client.update_collection(self.collection, **layout)

    def _layout(self) -> dict[str, Any]:
        """A server collection's configuration (`layout`), as create/update_collection args."""
        m = self._m
        indexing_threshold, max_segment_size = segment_kb(self.dim)
        return {
            "quantization_config": m.TurboQuantization(
                turbo=m.TurboQuantQuantizationConfig(
                    bits=m.TurboQuantBitSize(f"bits{TURBO_BITS}"), always_ram=True
                )
            ),
            "hnsw_config": m.HnswConfigDiff(
                m=self.hnsw_m, ef_construct=EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_KB
            ),
            "optimizers_config": m.OptimizersConfigDiff(
                indexing_threshold=indexing_threshold, max_segment_size=max_segment_size
            ),
        }

    def _search_params(self) -> Any:
        """None in local mode (brute force); on a server, rescore the quantized candidates."""
        if self.is_local:
            return None
        m = self._m
        return m.SearchParams(
            hnsw_ef=self.hnsw_ef if self.hnsw_m else None,
            quantization=m.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING),
        )

    def _filter(self, filter: Filter | None) -> Any:
        m = self._m
        conditions = []
        for key, value in indexed_filter(filter, self.indexes).items():
            if isinstance(value, Mapping):
                if self.indexes.get(key) == "datetime":
                    rng = m.DatetimeRange(**{k: str(v) for k, v in value.items()})
                else:
                    rng = m.Range(**{k: float(v) for k, v in value.items()})
                conditions.append(m.FieldCondition(key=key, range=rng))
            elif isinstance(value, list):
                if all(isinstance(v, bool) for v in value):
                    sub = [m.FieldCondition(key=key, match=m.MatchValue(value=v)) for v in value]
                    conditions.append(m.Filter(should=sub))
                else:
                    conditions.append(m.FieldCondition(key=key, match=m.MatchAny(any=value)))
            else:
                conditions.append(m.FieldCondition(key=key, match=m.MatchValue(value=value)))
        return m.Filter(must=conditions) if conditions else None

    @override
    def upsert(self, points: Iterable[PointTuple], batch_size: int = 512) -> int:
        m = self._m
        written = 0
        for batch in batched(points, batch_size):
            structs = [
                m.PointStruct(
                    id=pid, vector=np.asarray(vec, dtype=np.float32).tolist(), payload=dict(pl)
                )
                for pid, vec, pl in batch
            ]
            self.client.upsert(self.collection, points=structs, wait=True)
            written += len(structs)
        return written

    @override
    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        for chunk in batched(ids, 4096):
            self.client.set_payload(self.collection, dict(payload), points=list(chunk), wait=True)

    @override
    def search(
        self, vector: Sequence[float] | np.ndarray, filter: Filter | None = None, limit: int = 10
    ) -> list[Hit]:
        response = self.client.query_points(
            self.collection,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            query_filter=self._filter(filter),
            limit=limit,
            with_payload=True,
            search_params=self._search_params(),
        )
        return [Hit(str(p.id), float(p.score), dict(p.payload or {})) for p in response.points]

    @override
    def retrieve_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in batched(ids, 1024):
            for record in self.client.retrieve(
                self.collection, list(chunk), with_payload=False, with_vectors=True
            ):
                out[str(record.id)] = np.asarray(record.vector, dtype=np.float32)
        return out

    @override
    def retrieve_payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in batched(ids, 1024):
            for record in self.client.retrieve(
                self.collection, list(chunk), with_payload=True, with_vectors=False
            ):
                out[str(record.id)] = dict(record.payload or {})
        return out

    @override
    def count(self, filter: Filter | None = None) -> int:
        return int(
            self.client.count(self.collection, count_filter=self._filter(filter), exact=True).count
        )

    @override
    def fields(
        self, filter: Filter | None = None, names: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        offset = None
        while True:
            records, offset = self.client.scroll(
                self.collection,
                scroll_filter=self._filter(filter),
                limit=4096,
                offset=offset,
                with_payload=list(names) if names else False,
                with_vectors=False,
            )
            for r in records:
                out[str(r.id)] = dict(r.payload or {}) if names else {}
            if offset is None or not records:
                return out

    @override
    def delete(self, ids: Sequence[str]) -> None:
        for chunk in batched(ids, 4096):
            self.client.delete(
                self.collection, points_selector=self._m.PointIdsList(points=list(chunk)), wait=True
            )

    @override
    def delete_before(self, day: str) -> int:
        old = self._filter({"ds": {"lt": iso_date(day)}})
        n = int(self.client.count(self.collection, count_filter=old, exact=True).count)
        if n:
            self.client.delete(
                self.collection, points_selector=self._m.FilterSelector(filter=old), wait=True
            )
        return n

    @override
    def close(self) -> None:
        self.client.close()
