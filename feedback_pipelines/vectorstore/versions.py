"""The embedded store as one Qdrant Edge shard per model version: a version's search is a scan.

Qdrant scores a filter's points one id at a time, ~4x the cost of a point of its sequential
scan of the codes, so at the horizon's 9M points one store answered a model version alone (a
quarter of the points, grouped by the tenant index) in 30-32 ms, 2.5x the time it takes to
read those codes. Kept in a shard of its own, the same version is that shard's unfiltered scan
(bench/version_store.py; SCALE.md). So every point lives in the shard of its `model_version`
(`<collection>/versions/<version slug>/`), a filter on versions goes to their shards only and
the version condition is dropped there, and anything else asks every shard and merges.

A store written before (one shard in `<collection>/`) is moved into version shards when it is
opened, once, logged; a move cut short is done again at the next open (upserts are idempotent,
and the old shard is removed only after the last point is copied). Qdrant servers keep one
collection with the version as a tenant index (`qdrant_client_store`).
"""

from __future__ import annotations

import fcntl
import heapq
import logging
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np
from typing_extensions import override

from feedback_pipelines.vectorstore.base import (
    Filter,
    Hit,
    PointTuple,
    VectorStore,
    check_filter,
    collection_name,
)
from feedback_pipelines.vectorstore.edge import SYNC_MARK, EdgeStore, read_mark, write_mark

logger = logging.getLogger(__name__)

#: The payload field that picks a point's shard.
SPLIT_FIELD = "model_version"
#: Folder of the shard for points without a model version.
UNVERSIONED = "unversioned"
#: The file by which Qdrant Edge's shard folder is known (a store of an earlier release).
_EDGE_CONFIG = "edge_config.json"
#: Held (flock) while the store is open: one process at a time, shards or none.
LOCK = ".lock"


def _lock(path: Path) -> IO[bytes]:
    """Hold `path` exclusively, or raise as Edge does when another process holds the store."""
    handle = path.open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.close()
        raise RuntimeError(f"the vector store {path.parent} is open in another process ({exc})")
    return handle


def shard_folder(version: Any) -> str:
    """A version's shard folder: a readable slug and a hash of the exact value."""
    if version is None:
        return UNVERSIONED
    return collection_name(str(version), prefix="v")


class VersionedStore(VectorStore):
    """A collection kept as Qdrant Edge shards, one per model version (see the module).

    Args:
        path: Folder holding one folder per collection (e.g. `data/qdrant`).
        collection: Collection name (see `collection_name`).
        dim: Vector length.
        indexes: Payload indexes of every shard (`EdgeStore`).
    """

    def __init__(
        self,
        path: str | Path,
        collection: str,
        dim: int,
        *,
        indexes: Mapping[str, str] | None = None,
    ) -> None:
        self.collection = collection
        self.dim = dim
        self.path = Path(path) / collection
        self._indexes = indexes
        self._root = self.path / "versions"
        self._root.mkdir(parents=True, exist_ok=True)
        self._lock = _lock(self.path / LOCK)
        self.shards: dict[str, EdgeStore] = {}
        self._closed = False
        try:
            for folder in sorted(self._root.iterdir()):
                if folder.is_dir():
                    self.shards[folder.name] = self._shard(folder.name)
            self._move_single_shard()
        except BaseException:
            self.close()
            raise

    def _shard(self, name: str) -> EdgeStore:
        return EdgeStore(self._root, name, self.dim, indexes=self._indexes)

    def _shard_for(self, version: Any) -> EdgeStore:
        name = shard_folder(version)
        if name not in self.shards:
            self.shards[name] = self._shard(name)
        return self.shards[name]

    def _move_single_shard(self) -> None:
        """Move the points of an earlier release's single shard into version shards, once."""
        if (self.path / _EDGE_CONFIG).exists():
            started = time.perf_counter()
            old = EdgeStore(self.path.parent, self.path.name, self.dim, indexes=self._indexes)
            moved = 0
            for batch in old.scroll_points():
                moved += self.upsert(batch)
            old.close()
            (self.path / _EDGE_CONFIG).unlink()  # from here on the folder is no shard
            logger.info(
                "moved %s points of %s into %s version shards in %.1fs (once)",
                f"{moved:,}", self.collection, len(self.shards), time.perf_counter() - started,
            )  # fmt: skip
        for leftover in self.path.iterdir():  # the old shard's files (a removal cut short too)
            if leftover.name not in ("versions", SYNC_MARK, LOCK):
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()

    def _route(self, filter: Filter | None) -> tuple[list[EdgeStore], dict[str, Any]]:
        """The shards a filter can match, and the filter each is asked (no version condition)."""
        clean = check_filter(filter)
        if SPLIT_FIELD not in clean or isinstance(clean[SPLIT_FIELD], Mapping):
            return list(self.shards.values()), clean
        wanted = clean.pop(SPLIT_FIELD)
        names = {shard_folder(v) for v in (wanted if isinstance(wanted, list) else [wanted])}
        return [s for name, s in self.shards.items() if name in names], clean

    def _holders(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """Shard name -> which of `ids` it holds (Edge refuses payloads for points it lacks)."""
        out: dict[str, list[str]] = {}
        for name, shard in self.shards.items():
            held = shard.held(ids)
            if held:
                out[name] = held
        return out

    # -- interface ----------------------------------------------------------------------------

    @override
    def upsert(self, points: Iterable[PointTuple], batch_size: int = 512) -> int:
        """Each point into its version's shard, and out of any other (its version changed)."""
        groups: dict[Any, list[PointTuple]] = {}
        for point in points:
            groups.setdefault(point[2].get(SPLIT_FIELD), []).append(point)
        written = sum(self._shard_for(v).upsert(group, batch_size) for v, group in groups.items())
        for name, shard in self.shards.items():
            others = [
                pid for v, group in groups.items() if shard_folder(v) != name for pid, _, _ in group
            ]
            moved = shard.held(others) if others else []
            if moved:
                shard.delete(moved)
        return written

    @override
    def set_payload(self, ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        for name, held in self._holders(ids).items():
            self.shards[name].set_payload(held, payload)

    @override
    def set_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> None:
        for name, held in self._holders(list(payloads)).items():
            self.shards[name].set_payloads({pid: payloads[pid] for pid in held})

    @override
    def search(
        self, vector: Sequence[float] | np.ndarray, filter: Filter | None = None, limit: int = 10
    ) -> list[Hit]:
        shards, clean = self._route(filter)
        found = [hit for shard in shards for hit in shard.search(vector, clean, limit)]
        return heapq.nsmallest(limit, found, key=lambda h: (-h.score, h.id))

    @override
    def retrieve_vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for shard in self.shards.values():
            out.update(shard.retrieve_vectors(ids))
        return out

    @override
    def retrieve_payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for shard in self.shards.values():
            out.update(shard.retrieve_payloads(ids))
        return out

    @override
    def count(self, filter: Filter | None = None) -> int:
        shards, clean = self._route(filter)
        return sum(shard.count(clean) for shard in shards)

    @override
    def fields(
        self, filter: Filter | None = None, names: Sequence[str] = ()
    ) -> dict[str, dict[str, Any]]:
        shards, clean = self._route(filter)
        return {k: v for shard in shards for k, v in shard.fields(clean, names).items()}

    @override
    def delete(self, ids: Sequence[str]) -> None:
        for shard in self.shards.values():
            shard.delete(ids)

    @override
    def delete_before(self, day: str) -> int:
        """Retention in every shard; a version with no point left loses its shard too."""
        removed = 0
        for name, shard in list(self.shards.items()):
            removed += shard.delete_before(day)
            if not shard.count():
                shard.close()
                shutil.rmtree(shard.path)
                del self.shards[name]
        return removed

    @override
    def optimize(self) -> None:
        for shard in self.shards.values():
            shard.optimize()

    @override
    def earlier_segments(self) -> int:
        return sum(shard.earlier_segments() for shard in self.shards.values())

    @override
    def sync_mark(self) -> dict[str, Any] | None:
        return read_mark(self.path)

    @override
    def set_sync_mark(self, mark: Mapping[str, Any] | None) -> None:
        write_mark(self.path, mark)

    def info(self) -> dict[str, Any]:
        """Points, indexed vectors and segments over every shard, and the shards (for logs)."""
        total = {"points": 0, "indexed_vectors": 0, "segments": 0}
        for shard in self.shards.values():
            for key, value in shard.info().items():
                total[key] += value
        return {**total, "shards": len(self.shards)}

    @override
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for shard in self.shards.values():
                shard.close()
            self._lock.close()
