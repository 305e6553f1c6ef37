"""Qdrant Edge (`qdrant-edge-py`): the real Qdrant engine in-process, the embedded default.

Measured (bench/vectorstore.py, 2 busy cores): 3-6k upserts/s and exact filtered top-10
queries in tens of milliseconds at 100k points, against ~70 upserts/s and 0.35-0.8 s per
filtered query for qdrant-client's local mode at 10k. One shard per collection under
`<path>/<collection>/`; one process at a time (the write-ahead log is locked).

Edge has no background optimizer: `optimize()`, which `qdrant_feedback` calls after the
day's last write (a point whose payload is set leaves its quantized segment for the plain
one, so optimizing earlier did the work twice), turns each full segment into 4-bit
TurboQuant codes kept in RAM (segments hold up to ~100k points, so a day's new points make a
new segment and older ones are left alone) and builds no HNSW graph. A search scans the codes
(on both cores) and rescores the best 4 x limit with the original vectors. A store written with
another quantization (the previous release's int8 codes) is loaded with this one, and its next
`optimize()` re-encodes every segment once. Figures, and why not int8 or a graph: `layout`,
SCALE.md.

Integer fields (cluster ids, and flags) are indexed for matches only (`MATCH_ONLY`) and the
model version as a tenant (`PAYLOAD_INDEXES`); a store of an earlier release has those indexes
rebuilt when it is opened, once (its segments are regrouped by version as `optimize()`
rebuilds them).

qdrant-edge-py 0.9.0 does not match boolean payload values (`MatchValue(True)` finds nothing,
bool being an int in Python's eyes), so boolean fields are stored as integers 0/1 and turned
back into bools on the way out; callers see bools either way.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from typing_extensions import override

from feedback_pipelines.vectorstore.base import (
    MATCH_ONLY,
    PAYLOAD_INDEXES,
    Filter,
    Hit,
    PointTuple,
    VectorStore,
    batched,
    indexed_filter,
    iso_date,
    payload_groups,
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


def _schema(kind: str) -> Any:
    import qdrant_edge as qe

    if kind in MATCH_ONLY:  # bools are stored as 0/1, see the module docstring
        return qe.IntegerIndexParams(lookup=True, range=False)
    if kind == "tenant":
        return qe.KeywordIndexParams(is_tenant=True)
    return {
        "keyword": qe.PayloadSchemaType.Keyword,
        "float": qe.PayloadSchemaType.Float,
        "datetime": qe.PayloadSchemaType.Datetime,
    }[kind]


#: A file in the shard's folder (Edge leaves what it does not know alone): deleting the store
#: deletes the mark with it.
SYNC_MARK = "payload_sync.json"


def _floats(vector: Sequence[float] | np.ndarray) -> memoryview:
    """A vector as Edge reads it fastest: a memoryview of contiguous float32."""
    return memoryview(np.ascontiguousarray(vector, dtype=np.float32))


def _codes(qe: Any) -> Any:
    """How a full segment's vectors are quantized (`layout`; bench/vectorstore.py --codes)."""
    return qe.TurboQuantQuantizationConfig(
        bits=getattr(qe.TurboQuantBitSize, f"Bits{TURBO_BITS}"), always_ram=True
    )


def _config(qe: Any, dim: int) -> Any:
    """The collection's configuration (see `layout`); a store written before is loaded with it."""
    indexing_threshold, max_segment_size = segment_kb(dim)
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        quantization_config=_codes(qe),
        hnsw_config=qe.HnswIndexConfig(
            m=0, ef_construct=EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_KB
        ),
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=indexing_threshold, max_segment_size=max_segment_size
        ),
    )


class EdgeStore(VectorStore):
    """A collection as a Qdrant Edge shard on local disk.

    Args:
        path: Folder holding one shard folder per collection (e.g. `data/qdrant`).
        collection: Collection name (see `collection_name`).
        dim: Vector length.
        indexes: Payload field -> type ('keyword', 'tenant', 'integer', 'float', 'datetime',
            'bool').
    """

    def __init__(
        self,
        path: str | Path,
        collection: str,
        dim: int,
        *,
        indexes: Mapping[str, str] | None = None,
    ) -> None:
        import qdrant_edge as qe

        self._qe = qe
        self.collection = collection
        self.dim = dim
        self.indexes = dict(PAYLOAD_INDEXES if indexes is None else indexes)
        self._bools = {k for k, v in self.indexes.items() if v == "bool"}
        self.path = Path(path) / collection
        config = _config(qe, dim)
        if self.path.exists() and any(self.path.iterdir()):
            self.shard = qe.EdgeShard.load(str(self.path), config)
        else:
            self.path.mkdir(parents=True, exist_ok=True)
            self.shard = qe.EdgeShard.create(str(self.path), config)
        present = self.shard.info().payload_schema
        for name, kind in self.indexes.items():
            if name in present and not stale_index(present[name], kind):
                continue
            if name in present:
                logger.info("re-indexing %s of %s as %s (once)", name, collection, kind)
                self.shard.update(qe.UpdateOperation.delete_field_index(name))
            self.shard.update(qe.UpdateOperation.create_field_index(name, _schema(kind)))
        self._closed = False

    # -- encoding -----------------------------------------------------------------------------

    def _encode(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(payload)
        for key in self._bools & out.keys():
            if out[key] is not None:
                out[key] = int(bool(out[key]))
        return out

    def _decode(self, payload: Mapping[str, Any] | None) -> dict[str, Any]:
        out = dict(payload or {})
        for key in self._bools & out.keys():
            if out[key] is not None:
                out[key] = bool(out[key])
        return out

    def _filter(self, filter: Filter | None) -> Any:
        qe = self._qe
        conditions = []
        for key, value in indexed_filter(filter, self.indexes).items():
            if isinstance(value, Mapping):
                if self.indexes.get(key) == "datetime":
                    rng = qe.RangeDateTime(**{k: str(v) for k, v in value.items()})
                else:
                    rng = qe.RangeFloat(**{k: float(v) for k, v in value.items()})
                conditions.append(qe.FieldCondition(key, range=rng))
            elif isinstance(value, list):
                values = [int(v) if isinstance(v, bool) else v for v in value]
                conditions.append(qe.FieldCondition(key, match=qe.MatchAny(values)))
            else:
                if isinstance(value, bool):
                    value = int(value)
                conditions.append(qe.FieldCondition(key, match=qe.MatchValue(value)))
        return qe.Filter(must=conditions) if conditions else None

    # -- interface ----------------------------------------------------------------------------

    @override
    def upsert(self, points: Iterable[PointTuple], batch_size: int = 512) -> int:
        qe = self._qe
        written = 0
        for batch in batched(points, batch_size):
            # A float32 row as a memoryview: Edge reads it as a sequence of Python floats,
            # exactly, in 7.5 us a point, against 17 for the numpy row (a numpy scalar an
            # element) and 10 for `.tolist()`.
            ops = [
                qe.Point(pid, _floats(vec), self._encode(payload)) for pid, vec, payload in batch
            ]
            self.shard.update(qe.UpdateOperation.upsert_points(ops))
            written += len(ops)
        self.shard.flush()
        return written

    def _set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        qe = self._qe
        for chunk in batched(ids, 4096):
            self.shard.update(qe.UpdateOperation.set_payload(list(chunk), self._encode(payload)))

    @override
    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        self._set_payload(ids, payload)
        self.shard.flush()

    @override
    def set_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> None:
        """Every group, then one flush.

        A flush per group was two thirds of the cost of 100k cluster ids in 131 groups: 7.2 s,
        against 2.5 s with one flush.
        """
        for ids, values in payload_groups(payloads):
            self._set_payload(ids, values)
        self.shard.flush()

    @override
    def search(
        self, vector: Sequence[float] | np.ndarray, filter: Filter | None = None, limit: int = 10
    ) -> list[Hit]:
        qe = self._qe
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Query.Nearest(np.asarray(vector, dtype=np.float32).tolist()),
            filter=self._filter(filter),
            with_payload=True,
            with_vector=False,
            params=qe.SearchParams(
                quantization=qe.QuantizationSearchParams(rescore=True, oversampling=OVERSAMPLING)
            ),
        )
        return [
            Hit(str(p.id), float(p.score), self._decode(p.payload))
            for p in self.shard.query(request)
        ]

    @override
    def retrieve_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for chunk in batched(ids, 4096):
            for record in self.shard.retrieve(list(chunk), False, True):
                out[str(record.id)] = np.asarray(record.vector, dtype=np.float32)
        return out

    @override
    def retrieve_payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for chunk in batched(ids, 4096):
            for record in self.shard.retrieve(list(chunk), True, False):
                out[str(record.id)] = self._decode(record.payload)
        return out

    @override
    def count(self, filter: Filter | None = None) -> int:
        request = self._qe.CountRequest(exact=True, filter=self._filter(filter))
        return int(self.shard.count(request))

    @override
    def fields(
        self, filter: Filter | None = None, names: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        qe = self._qe
        out: dict[str, dict[str, Any]] = {}
        offset = None
        while True:
            records, offset = self.shard.scroll(
                qe.ScrollRequest(
                    offset=offset, limit=4096, filter=self._filter(filter),
                    with_payload=list(names) if names else False, with_vector=False,
                )
            )  # fmt: skip
            for r in records:
                out[str(r.id)] = self._decode(r.payload) if names else {}
            if offset is None or not records:
                return out

    @override
    def delete(self, ids: Sequence[str]) -> None:
        for chunk in batched(ids, 4096):
            self.shard.update(self._qe.UpdateOperation.delete_points(list(chunk)))
        self.shard.flush()

    @override
    def delete_before(self, day: str) -> int:
        qe = self._qe
        old = self._filter({"ds": {"lt": iso_date(day)}})
        n = int(self.shard.count(qe.CountRequest(exact=True, filter=old)))
        if n:
            self.shard.update(qe.UpdateOperation.delete_points_by_filter(old))
            self.shard.flush()
        return n

    @override
    def optimize(self) -> None:
        self.shard.optimize()

    @override
    def earlier_segments(self) -> int:
        # Qdrant's own files: the collection's configuration, and each quantized segment's codes
        try:
            wanted = json.loads((self.path / "edge_config.json").read_text())["quantization_config"]
            held = [
                json.loads(f.read_text())["quantization_config"]
                for f in self.path.glob("segments/*/vector_storage/quantized.config.json")
            ]
        except (OSError, ValueError, KeyError):
            return 0
        return sum(codes != wanted for codes in held)

    @override
    def sync_mark(self) -> dict[str, Any] | None:
        try:
            mark = json.loads((self.path / SYNC_MARK).read_text())
        except (OSError, ValueError):
            return None
        return mark if isinstance(mark, dict) else None

    @override
    def set_sync_mark(self, mark: Mapping[str, Any] | None) -> None:
        path = self.path / SYNC_MARK
        if mark is None:
            path.unlink(missing_ok=True)
            return
        partial = path.with_name(f".{SYNC_MARK}.tmp")
        partial.write_text(json.dumps(dict(mark), sort_keys=True))
        os.replace(partial, path)

    def info(self) -> dict[str, Any]:
        """Points, indexed vectors and segments (for logs and metadata)."""
        info = self.shard.info()
        return {
            "points": info.points_count,
            "indexed_vectors": info.indexed_vectors_count,
            "segments": info.segments_count,
        }

    @override
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.shard.flush()
            self.shard.close()
