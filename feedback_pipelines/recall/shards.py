"""Embedding shards: the day's new texts split into files that workers embed without any store.

A shard worker reads one Parquet file of (text_hash, text), embeds it and writes one Parquet
file of (text_hash, vector); it opens neither the warehouse nor the vector store, so shards can
run as parallel steps (processes or pods) while only the commit step writes. The files live
under `work/embeddings/dt=DAY/<run id>/` beside the warehouse file (`$FEEDBACK_DATA_DIR` by
default), which every worker must reach (a shared volume on Kubernetes), and are removed once
the day is committed.

Texts are dealt to shards round-robin in text-hash order, so the split depends only on the set
of new texts. The default embedder runs one text per model call, so a text's vector does not
depend on its shard: one shard or many give the same bytes, on CPUs of one family
(`embedding.cpu`: each shard reports its own, and the commit warns when they differ).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

#: Folders of runs that are not in progress are removed once they are this old.
STALE_SECONDS = 3600


def work_dir(root: Path, ds: str, run_id: str) -> Path:
    """The folder of one run's shard files for a day, under `root` (the warehouse's folder)."""
    return root / "work" / "embeddings" / f"dt={ds}" / run_id


def split(pairs: Sequence[tuple[str, str]], shards: int) -> list[list[tuple[str, str]]]:
    """(text_hash, text) pairs dealt round-robin in hash order over `shards` lists (>= 1)."""
    ordered = sorted(pairs)
    count = max(1, shards)
    return [ordered[i::count] for i in range(count)]


def write_texts(path: Path, pairs: Sequence[tuple[str, str]]) -> Path:
    """One shard's input file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    hashes = [h for h, _ in pairs]
    texts = [t for _, t in pairs]
    table = pa.table(
        {"text_hash": pa.array(hashes, pa.string()), "text": pa.array(texts, pa.string())}
    )
    pq.write_table(table, path)
    return path


def read_texts(path: Path) -> tuple[list[str], list[str]]:
    """(hashes, texts) of a shard's input file."""
    table = pq.read_table(path)
    return table.column("text_hash").to_pylist(), table.column("text").to_pylist()


def write_vectors(path: Path, hashes: Sequence[str], vectors: np.ndarray) -> Path:
    """One shard's output: float32 vectors stored exactly (a fixed-size list column)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1] if vectors.ndim == 2 else 0
    flat = pa.array(vectors.reshape(-1), pa.float32())
    column = (
        pa.FixedSizeListArray.from_arrays(flat, dim)
        if dim
        else pa.array([], pa.list_(pa.float32(), 0))
    )
    pq.write_table(
        pa.table({"text_hash": pa.array(list(hashes), pa.string()), "vector": column}), path
    )
    return path


def read_vectors(path: Path) -> dict[str, np.ndarray]:
    """text_hash -> vector of a shard's output file."""
    table = pq.read_table(path)
    hashes = table.column("text_hash").to_pylist()
    if not hashes:
        return {}
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size
    matrix = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(-1, dim)
    return dict(zip(hashes, matrix, strict=True))


def families(results: Sequence[Mapping]) -> list[str]:
    """The CPU families (`embedding.cpu`) of the shard results that embedded any text."""
    return sorted({r.get("cpu") or "unknown" for r in results if r.get("texts")})


def remove_stale(root: Path, live: set[str], now: float | None = None) -> int:
    """Remove the shard folders of every day left by runs not in `live` (runs in progress).

    Such a run died before its commit (a killed command). Folders younger than an hour stay:
    a run that has just started may not be recorded as in progress yet. Returns how many.
    """
    days = root / "work" / "embeddings"
    if not days.is_dir():
        return 0
    now = time.time() if now is None else now
    removed = 0
    for folder in days.glob("dt=*/*"):
        if folder.name not in live and now - folder.stat().st_mtime > STALE_SECONDS:
            remove(folder)
            removed += 1
    return removed


def remove(folder: Path) -> None:
    """Remove a committed run's shard files (and the empty folders above, up to `work/`)."""
    shutil.rmtree(folder, ignore_errors=True)
    for parent in (folder.parent, folder.parent.parent, folder.parent.parent.parent):
        try:
            parent.rmdir()
        except OSError:
            break
