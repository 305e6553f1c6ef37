"""The vector store interface: points, filters as plain dicts, hits; no Qdrant types leak out.

Filters are dicts so callers (CLI, clustering, tuning) never import a Qdrant module::

    {"model_version": "v2"}                       # equals
    {"kind": ["thumbs_down", "correction"]}       # any of
    {"ds": {"gte": "2026-11-01", "lte": "2026-11-20"}}   # range (dates as YYYY-MM-DD)
    {"is_negative": True, "cluster_id": 3}        # conditions combine with AND

A value of None means "no condition". Point ids are UUID strings: `point_id(feedback_id)` is
uuid5 of the feedback id, so a rerun overwrites the same points instead of adding new ones.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: uuid5 namespace of feedback point ids (fixed forever: changing it orphans every point).
POINT_NAMESPACE = uuid.UUID("6f1d3c52-7f0e-5d2b-9a51-5c0f6e9d2a10")
_NAMESPACE_BYTES = POINT_NAMESPACE.bytes

#: Payload fields with an index, and their types (the filters users cut feedback by). A "tenant"
#: is a keyword whose points Qdrant keeps together in each segment it builds: a filter on one
#: model version then reads its points in runs, not scattered (9M points, 4 versions: 62 -> 30
#: ms a top-10, the same hits; SCALE.md).
PAYLOAD_INDEXES: dict[str, str] = {
    "model_version": "tenant",
    "prompt_version": "keyword",
    "kind": "keyword",
    "reason": "keyword",
    "ds": "datetime",
    "is_negative": "bool",
    "cluster_id": "integer",
    "user_role": "keyword",
}

#: Index types served for matches only: no range index (a range on them reads payloads). Cluster
#: ids and flags are never ranges, and each segment then has one index less to build when it
#: is written and to load when the store is opened (bench/vectorstore.py --scale; SCALE.md).
MATCH_ONLY = frozenset({"integer", "bool"})


def stale_index(index: Any, kind: str, match_only: frozenset[str] = MATCH_ONLY) -> bool:
    """Whether a field's index (as Qdrant Edge or a server reports it) is an earlier release's.

    That is an integer index with ranges (for a kind in `match_only`), or a keyword index that
    is no tenant; the store then replaces it. Other kinds did not change.
    """
    params = getattr(index, "params", None)
    if kind in match_only:
        return params is None or bool(getattr(params, "range", True))
    if kind == "tenant":
        return params is None or not getattr(params, "is_tenant", False)
    return False


Filter = Mapping[str, Any]
PointTuple = tuple[str, Sequence[float] | np.ndarray, Mapping[str, Any]]


def point_id(feedback_id: str) -> str:
    """The deterministic point id of a feedback event: `uuid.uuid5(POINT_NAMESPACE, id)`.

    Spelled out on the hash's bytes, 3x faster than `uuid5` (a day asks 100k times, twice).
    """
    raw = bytearray(hashlib.sha1(_NAMESPACE_BYTES + str(feedback_id).encode()).digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def collection_name(model_id: str, prefix: str = "feedback") -> str:
    """A collection per embedding model: readable slug plus a short hash of the exact id.

    Two model ids never share a collection, so vector spaces never mix; the slug keeps names
    readable in the Qdrant UI.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", model_id.lower()).strip("-")[:80].strip("-")
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    return f"{prefix}-{slug}-{digest}"


@dataclass(frozen=True)
class Hit:
    """One search result: the point id, its cosine similarity and its payload."""

    id: str
    score: float
    payload: dict[str, Any] = field(default_factory=dict)


def check_filter(filter: Filter | None) -> dict[str, Any]:
    """The filter without None values, validated; raises ValueError on a malformed condition."""
    clean: dict[str, Any] = {}
    for key, value in (filter or {}).items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            unknown = set(value) - {"gte", "gt", "lte", "lt"}
            if unknown or not value:
                raise ValueError(f"range on {key!r} takes gte/gt/lte/lt, got {dict(value)}")
            value = {k: v for k, v in value.items() if v is not None}
            if not value:
                continue
        elif isinstance(value, list | tuple | set | frozenset):
            value = list(value)
            if not value:
                raise ValueError(f"empty list of values for {key!r} matches nothing")
        clean[key] = value
    return clean


def indexed_filter(filter: Filter | None, indexes: Mapping[str, str]) -> dict[str, Any]:
    """`check_filter`, with an equality on a datetime-indexed field (`ds`) as a one-day range.

    Qdrant's datetime index serves ranges only: a match on `ds` reads every payload of the
    collection (3.4 s at 1.4M points against milliseconds for the range).
    """
    out = check_filter(filter)
    return {
        key: {"gte": value, "lte": value}
        if indexes.get(key) == "datetime" and isinstance(value, str)
        else value
        for key, value in out.items()
    }


def iso_date(value: Any) -> str:
    """A date-like value (date, datetime, Timestamp, 'YYYY-MM-DD...') as 'YYYY-MM-DD'."""
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return str(value)[:10]


class VectorStore(ABC):
    """One collection of points (id, vector, payload) with cosine distance.

    Implementations: `EdgeStore` (Qdrant Edge, embedded, the default) and `QdrantClientStore`
    (a Qdrant server through qdrant-client, or its local mode). Embedded stores allow one
    process at a time: open, work, `close()` (or use it as a context manager).
    """

    collection: str
    dim: int

    @abstractmethod
    def upsert(self, points: Iterable[PointTuple], batch_size: int = 512) -> int:
        """Insert or replace points; returns how many were written."""

    @abstractmethod
    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """Set (merge) the same payload fields on many points, e.g. `{"cluster_id": 3}`."""

    def set_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> None:
        """Set per-point payload fields (e.g. each point's cluster id), grouped into few calls."""
        for ids, values in payload_groups(payloads):
            self.set_payload(ids, values)

    @abstractmethod
    def search(
        self, vector: Sequence[float] | np.ndarray, filter: Filter | None = None, limit: int = 10
    ) -> list[Hit]:
        """The `limit` nearest points (cosine) that pass `filter`, best first."""

    @abstractmethod
    def retrieve_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Vectors of the given points (missing ids are absent from the result)."""

    @abstractmethod
    def retrieve_payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Payloads of the given points (missing ids are absent from the result)."""

    @abstractmethod
    def count(self, filter: Filter | None = None) -> int:
        """Exact number of points passing `filter`."""

    def ids(self, filter: Filter | None = None) -> list[str]:
        """Ids of every point passing `filter` (scrolls the whole selection)."""
        return list(self.fields(filter))

    @abstractmethod
    def fields(
        self, filter: Filter | None = None, names: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        """Every point passing `filter`, with only the payload fields `names` (those it has).

        One scroll that reads a few small fields of many points, e.g. the cluster ids of a
        window, without their text.
        """

    @abstractmethod
    def delete(self, ids: Sequence[str]) -> None:
        """Remove points."""

    def delete_before(self, day: str) -> int:
        """Remove every point whose `ds` is before `day` (retention); returns how many.

        Points without a `ds` are kept. Backends override this with one delete-by-filter.
        """
        ids = self.ids({"ds": {"lt": iso_date(day)}})
        self.delete(ids)
        return len(ids)

    def optimize(self) -> None:
        """Quantize full segments now (Qdrant Edge has no background optimizer); else a no-op."""

    def earlier_segments(self) -> int:
        """Segments quantized otherwise than this release does: `optimize()` re-encodes them.

        0 where the backend re-encodes by itself (a server).
        """
        return 0

    def sync_mark(self) -> dict[str, Any] | None:
        """What the collection's cluster ids were last written to in full (`recall.sync`).

        Kept with the collection, so it goes when the collection goes. A backend that cannot
        keep it there (a server) answers None: unknown, so the next write reads the window.
        """
        return None

    def set_sync_mark(self, mark: Mapping[str, Any] | None) -> None:
        """Keep `mark` with the collection (None: forget it); a no-op where it cannot be kept."""

    def close(self) -> None:
        """Release files and locks."""

    def __enter__(self) -> VectorStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Consecutive lists of at most `size` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def payload_groups(
    payloads: Mapping[str, Mapping[str, Any]],
) -> list[tuple[list[str], dict[str, Any]]]:
    """Per-point payloads as (ids, fields) groups of points that get the same fields."""
    groups: dict[tuple, list[str]] = {}
    for pid, values in payloads.items():
        groups.setdefault(tuple(sorted(values.items())), []).append(pid)
    return [(ids, dict(key)) for key, ids in groups.items()]
