"""Which texts are near-identical: vectors for texts, and pairs of neighbours over a threshold.

The tuning core asks two questions of similarity: "which of these vectors are at least t
similar to each other?" (`Neighbours`) and "what is the vector of this text?" (`TextVectors`).
Both are injected, so the core runs the same on a numpy matrix in a test and in the pipeline.
The pipeline's search is `BlockNeighbours` (blocked matrix products in process, exact),
which `build_tuning_sets` wraps in a `SharedSearch`: one product per run over every text any
builder searches (each pair compared once), pre-filtered by an int8 product with a proven
error bound and recomputed in float32, so still exact. The pairs a run found are kept
(`PairMemory`): the next day's window, 13 of its 14 days the same, multiplies only the texts
the memory lacks. `exact_neighbours` is the reference any other implementation must agree
with, and the Qdrant scratch-collection search it replaced (`vectorstore.neighbours`) is held
to it in tests.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: (vectors, threshold) -> every pair (i, j), i < j, with cosine >= threshold, and the cosine.
Neighbours = Callable[[np.ndarray, float], list[tuple[int, int, float]]]
#: texts -> L2-normalized float32 rows, one per text.
TextVectors = Callable[[Sequence[str]], np.ndarray]


#: Largest block of similarities held at once (float32 cells): 32M cells = 128 MB, whatever n.
MAX_BLOCK_CELLS = 32 * 2**20
#: Slack under the threshold: a pair exactly at it must not be lost to float32 rounding.
TOLERANCE = 1e-6
#: How far under the limit a float32 product may put a pair whose own dot product reaches it
#: (a product's last bits depend on its blocking; 384 terms err by well under 1e-5).
RECOMPUTE_MARGIN = 1e-4


def pair_arrays(
    vectors: np.ndarray,
    threshold: float,
    block: int = 2048,
    progress: Callable[[int, int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i < j) with cosine >= threshold, as arrays, by blocked matrix products.

    Each block of rows is multiplied only by itself and the rows after it (the upper triangle),
    so n vectors cost n^2/2 dot products in BLAS and memory stays at `block` x n floats. Pairs
    are picked with numpy, never a Python loop per pair, so templated days with millions of
    near-duplicate pairs stay cheap.

    Args:
        vectors: L2-normalized rows.
        threshold: The cosine a pair must reach.
        block: Rows multiplied at a time (fewer when block x n exceeds `MAX_BLOCK_CELLS`).
        progress: Called after each block with (rows done, rows, pairs so far).

    Returns:
        (i, j, cosine) arrays sorted by (i, j); int64, int64, float32.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    block = max(1, min(block, MAX_BLOCK_CELLS // max(n, 1)))
    found_i, found_j, found_s = [], [], []
    pairs = 0
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        sims = vectors[lo:hi] @ vectors[lo:].T
        rows, cols = np.nonzero(sims >= threshold - TOLERANCE)
        keep = cols > rows  # cols are counted from lo: the diagonal and below go
        rows, cols = rows[keep], cols[keep]
        found_i.append(rows + lo)
        found_j.append(cols + lo)
        found_s.append(sims[rows, cols])
        pairs += len(rows)
        if progress is not None:
            progress(hi, n, pairs)
    if not found_i:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float32)
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    s = np.concatenate(found_s).astype(np.float32)
    order = np.lexsort((j, i))
    return i[order], j[order], s[order]


def exact_neighbours(
    vectors: np.ndarray, threshold: float, block: int = 2048
) -> list[tuple[int, int, float]]:
    """All pairs at or above a cosine threshold, by blocked matrix products (exact).

    The reference every other `Neighbours` must agree with; `pair_arrays` as a sorted list.

    Args:
        vectors: L2-normalized rows.
        threshold: The cosine a pair must reach.
        block: Rows multiplied at a time.
    """
    i, j, s = pair_arrays(vectors, threshold, block)
    return list(zip(i.tolist(), j.tolist(), s.astype(np.float64).tolist(), strict=True))


class BlockNeighbours:
    """`Neighbours` by blocked matrix products in process: the pipeline's near-duplicate search.

    Exact, like the Qdrant scratch search it replaces (`vectorstore.neighbours`), but one BLAS
    product per block instead of one query per text: no store, no scratch collection, and a
    progress line (vectors, pairs, rate) every `every` seconds through `log`.

    Args:
        log: Where progress lines go (e.g. the asset's `context.log.info`); None: silent.
        block: Rows multiplied at a time (memory: block x n float32).
        every: Seconds between progress lines.
    """

    backend = "matrix"

    def __init__(
        self, log: Callable[[str], None] | None = None, block: int = 2048, every: float = 10.0
    ) -> None:
        self.log = log
        self.block = block
        self.every = every
        self.calls = 0
        self.compared = 0

    def __call__(self, vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
        """Every pair (i, j), i < j, with cosine >= threshold."""
        n = len(vectors)
        self.calls += 1
        self.compared += n * (n - 1) // 2
        if n < 2:
            return []
        started = last = time.perf_counter()

        def progress(done: int, total: int, pairs: int) -> None:
            nonlocal last
            now = time.perf_counter()
            if self.log is not None and now - last >= self.every and done < total:
                last = now
                rate = done / (now - started)
                self.log(
                    f"near-duplicate search: {done:,}/{total:,} vectors, {pairs:,} pairs "
                    f">= {threshold}, {rate:,.0f} vectors/s"
                )

        i, j, s = pair_arrays(vectors, threshold, self.block, progress)
        seconds = time.perf_counter() - started
        if self.log is not None and seconds >= 1.0:
            self.log(
                f"near-duplicate search: {n:,} vectors, {len(i):,} pairs >= {threshold} in "
                f"{seconds:.1f}s ({n / seconds:,.0f} vectors/s)"
            )
        return list(zip(i.tolist(), j.tolist(), s.astype(np.float64).tolist(), strict=True))


class TextVectorCache:
    """Vectors of texts, each distinct text embedded once, with an optional warm cache.

    Args:
        embed: The embedder's `embed` (texts -> normalized rows).
        known: Vectors already computed for some texts (e.g. from `feedback_embeddings`,
            whose text for a plain thumbs event is exactly the request).
        stored: Vectors this step embedded on an earlier run (`text_vectors`): used like
            `known`, but counted with the embedded texts (`needed`), so the data card of a
            rerun says what the first run said.
    """

    def __init__(
        self,
        embed: TextVectors,
        known: dict[str, np.ndarray] | None = None,
        stored: dict[str, np.ndarray] | None = None,
    ) -> None:
        self._embed = embed
        self._cache: dict[str, np.ndarray] = dict(known or {})
        self._stored = {t: v for t, v in (stored or {}).items() if t not in self._cache}
        self.fresh: dict[str, np.ndarray] = {}  # what `embed` computed here (to persist)
        self.embedded = 0  # sent to the embedder by this run
        self.from_store = 0  # found in `stored`
        self.reused = 0
        self.seconds = 0.0  # spent in `embed`: embedding work, wherever the step runs it

    @property
    def needed(self) -> int:
        """Distinct texts `known` lacked: embedded now or on an earlier run."""
        return self.embedded + self.from_store

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Rows for texts, in order; only texts never seen are sent to the embedder."""
        texts = [t or "" for t in texts]
        missing = sorted({t for t in texts if t not in self._cache})
        self.reused += len({t for t in texts}) - len(missing)
        if missing and self._stored:
            found = [t for t in missing if t in self._stored]
            self._cache.update((t, self._stored.pop(t)) for t in found)
            self.from_store += len(found)
            missing = [t for t in missing if t not in self._cache]
        if missing:
            started = time.perf_counter()
            rows = np.asarray(self._embed(missing), dtype=np.float32)
            self.seconds += time.perf_counter() - started
            self.embedded += len(missing)
            self._cache.update(zip(missing, rows, strict=True))
            self.fresh.update(zip(missing, rows, strict=True))
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)


def pair_cosines(rows: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The cosine of each pair (rows[a[k]], rows[b[k]]), one dot product per pair (float32).

    Every pair the search keeps gets its cosine here, whichever product found it: the value
    depends on the two rows only (not on a block, a path or an order), so pairs remembered
    from an earlier run (`PairMemory`) are exactly what a new product would give.
    """
    sims = np.empty(len(a), dtype=np.float32)
    for lo in range(0, len(a), 16_384):
        hi = lo + 16_384
        sims[lo:hi] = np.einsum("ij,ij->i", rows[a[lo:hi]], rows[b[lo:hi]])
    return sims


def text_key(text: str, row: np.ndarray) -> bytes:
    """A text and its vector as 16 bytes: a remembered pair holds only while both are the same."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16)
    digest.update(np.ascontiguousarray(row, dtype=np.float32).tobytes())
    return digest.digest()


@dataclass
class PairMemory:
    """Every pair over `floor` among the texts one run searched, for the next run to start from.

    A day's window shares 13 of its 14 days with the day before, so most of its pairs were
    found already: `SharedSearch.seed` takes them, and the run multiplies only texts the
    memory lacks. Texts are kept as `text_key`s (no text on disk) in position order; pairs as
    positions (i < j) and cosines.
    """

    keys: np.ndarray  # (n, 16) uint8
    i: np.ndarray  # int32
    j: np.ndarray  # int32
    s: np.ndarray  # float32
    floor: float

    def save(self, path: Path) -> int:
        """Written whole or not at all (a new file replaces the old); returns its bytes."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(partial, "wb") as out:
            np.savez(out, keys=self.keys, i=self.i, j=self.j, s=self.s, floor=self.floor)
        os.replace(partial, path)
        return path.stat().st_size

    @classmethod
    def load(cls, path: Path) -> PairMemory | None:
        """The memory at `path`; None when there is none or it cannot be read (then unused)."""
        try:
            with np.load(path) as data:
                memory = cls(
                    keys=data["keys"], i=data["i"], j=data["j"], s=data["s"],
                    floor=float(data["floor"]),
                )  # fmt: skip
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        n = len(memory.keys)
        sizes = {len(memory.i), len(memory.j), len(memory.s)}
        if memory.keys.shape[1:] != (16,) or len(sizes) != 1:
            return None
        if len(memory.i) and (
            min(memory.i.min(), memory.j.min()) < 0 or max(memory.i.max(), memory.j.max()) >= n
        ):
            return None
        return memory


class SharedSearch:
    """`Neighbours` over texts that compares each pair of distinct texts once per run.

    The tuning builders search overlapping sets of the window's requests (liked and disliked
    requests, each dataset's requests, every example's request for the splits) at two
    thresholds; on a 100k-event day each search was a ~40k x 40k product. This keeps every
    pair at or over `floor` of every text searched so far, so a later search multiplies only
    its new texts by the known ones and filters the rest: the cost is one product over the
    union. Exact like `pair_arrays`: a pair's cosine is computed once (`pair_cosines`), so
    every search of the run, and of a run seeded with its pairs (`seed`), sees the same value
    for it. A search under `floor` goes to `search` unchanged.

    Args:
        search: The vector search used under `floor` and as a plain `Neighbours`.
        floor: The lowest threshold the run asks (the settings' smallest similarity).
        block: New rows multiplied at a time (memory: block x known texts float32).
        log: Progress lines; None: silent.
        every: Seconds between progress lines of one product.
    """

    backend = "matrix"

    def __init__(
        self,
        search: Neighbours,
        floor: float,
        block: int = 2048,
        log: Callable[[str], None] | None = None,
        every: float = 10.0,
    ) -> None:
        self.search = search
        self.every = every
        self.floor = floor
        self.block = block
        self.log = log
        self.calls = 0
        self._vectors: TextVectors | None = None
        self._ids: dict[str, int] = {}
        self._rows = np.zeros((0, 0), dtype=np.float32)
        # Every pair of known texts at or over `floor` (tens of millions on a 14-day window):
        # positions as int32, half the memory of int64.
        self._i = np.zeros(0, dtype=np.int32)
        self._j = np.zeros(0, dtype=np.int32)
        self._s = np.zeros(0, dtype=np.float32)

    def __call__(self, vectors: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
        """Plain `Neighbours` (vectors, not texts): the wrapped search."""
        return self.search(vectors, threshold)

    def _add(self, texts: Sequence[str], known: np.ndarray) -> None:
        """Register new texts and every pair they make with known ones at or over `floor`.

        Args:
            texts: The new texts.
            known: The rows of every known text then of the new ones (float32, C order).
        """
        start = len(self._ids)
        for k, t in enumerate(texts):
            self._ids[t] = start + k
        self._rows = known
        found_i, found_j, found_s = [self._i], [self._j], [self._s]
        limit = self.floor - TOLERANCE
        block = max(1, min(self.block, MAX_BLOCK_CELLS // max(len(known), 1)))
        started = last = time.perf_counter()
        new = len(known) - start
        quantized = _Quantized.of(known) if new * len(known) >= INT8_MIN_CELLS else None
        for lo in range(start, len(known), block):
            now = time.perf_counter()
            if self.log is not None and now - last >= self.every:
                last = now
                self.log(
                    f"near-duplicate search: {lo - start:,}/{new:,} new texts multiplied by "
                    f"every earlier one, {sum(map(len, found_i)):,} pairs >= {self.floor}, "
                    f"{(lo - start) / (now - started):,.0f} texts/s"
                )
            hi = min(lo + block, len(known))
            if quantized is not None:
                rows_, cols, sims = quantized.pairs(known, lo, hi, limit)
            else:
                product = known[lo:hi] @ known[:hi].T  # new rows against every earlier row
                near = np.flatnonzero(product >= limit - RECOMPUTE_MARGIN)  # (10x nonzero)
                del product
                rows_, cols = np.divmod(near, hi)
                keep = cols < rows_ + lo  # strictly earlier: each pair once, no diagonal
                rows_, cols = rows_[keep], cols[keep]
                sims = pair_cosines(known, rows_ + lo, cols)
                hit = sims >= limit
                rows_, cols, sims = rows_[hit], cols[hit], sims[hit]
            found_i.append(cols.astype(np.int32))
            found_j.append((rows_ + lo).astype(np.int32))
            found_s.append(sims)
        # One column at a time, each list let go once joined: never two copies of them all.
        self._i = np.concatenate(found_i)
        found_i.clear()
        self._j = np.concatenate(found_j)
        found_j.clear()
        self._s = np.concatenate(found_s).astype(np.float32, copy=False)
        found_s.clear()

    @property
    def pair_count(self) -> int:
        """Pairs at or over `floor` among the known texts."""
        return len(self._i)

    def seed(self, memory: PairMemory | None, vectors: Mapping[str, np.ndarray]) -> int:
        """Start from an earlier run's pairs: its texts found in `vectors` become known.

        Only before the first search, and only when the memory kept every pair this run needs
        (its floor at or under this one). A text counts as found when its vector is the same
        too (`text_key`), so its remembered pairs are exactly what a product would find now.

        Args:
            memory: `PairMemory.load`'s answer (None: nothing to start from).
            vectors: Text -> vector of every text this run may search and already has.

        Returns:
            The texts taken from the memory.
        """
        if memory is None or self._ids or memory.floor > self.floor or not len(memory.keys):
            return 0
        index = {key.tobytes(): r for r, key in enumerate(memory.keys)}
        found = sorted(
            (r, t) for t, v in vectors.items() if (r := index.get(text_key(t, v))) is not None
        )
        if not found:
            return 0
        position = np.full(len(memory.keys), -1, dtype=np.int64)
        position[[r for r, _ in found]] = np.arange(len(found))  # memory order: i < j holds
        self._ids = {t: p for p, (_, t) in enumerate(found)}
        self._rows = np.ascontiguousarray(
            np.stack([vectors[t] for _, t in found]), dtype=np.float32
        )
        a, b = position[memory.i], position[memory.j]
        keep = (a >= 0) & (b >= 0) & (memory.s >= self.floor - TOLERANCE)
        self._i, self._j = a[keep].astype(np.int32), b[keep].astype(np.int32)
        self._s = memory.s[keep].astype(np.float32, copy=False)
        return len(found)

    def memory(self) -> PairMemory:
        """Every text searched so far and every pair among them at or over `floor`."""
        texts = sorted(self._ids, key=self._ids.__getitem__)
        keys = b"".join(text_key(t, self._rows[p]) for p, t in enumerate(texts))
        return PairMemory(
            keys=np.frombuffer(keys, dtype=np.uint8).reshape(len(texts), 16),
            i=self._i,
            j=self._j,
            s=self._s,
            floor=self.floor,
        )

    def text_pairs(
        self, distinct: Sequence[str], vectors: TextVectors, threshold: float
    ) -> list[tuple[int, int, float]]:
        """Pairs (i < j, positions in `distinct`) of texts at or over `threshold`."""
        if threshold < self.floor or (self._vectors is not None and vectors is not self._vectors):
            return self.search(vectors(distinct), threshold)
        i, j, s = self.text_pair_arrays(distinct, vectors, threshold)
        return list(zip(i.tolist(), j.tolist(), s.astype(np.float64).tolist(), strict=True))

    def text_pair_arrays(
        self, distinct: Sequence[str], vectors: TextVectors, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`text_pairs` as arrays (i, j, cosine as float32), sorted by (i, j).

        A templated 14-day window has millions of pairs: a caller that works on arrays
        never builds a tuple per pair.
        """
        if threshold < self.floor or (self._vectors is not None and vectors is not self._vectors):
            return pair_list_arrays(self.search(vectors(distinct), threshold))
        self._vectors = vectors
        self.calls += 1
        started = time.perf_counter()
        rows = vectors(distinct)  # every text, as a direct search would ask (same counts)
        new = [k for k, t in enumerate(distinct) if t not in self._ids]
        if new:
            fresh = np.ascontiguousarray(rows[new], dtype=np.float32)
            del rows  # (the window's texts: ~0.4 GB on 14 days)
            known = fresh if not len(self._ids) else np.concatenate([self._rows, fresh])
            del fresh
            self._add([distinct[k] for k in new], known)
            del known
        else:
            del rows
        where = np.full(len(self._ids), -1, dtype=np.int64)
        where[[self._ids[t] for t in distinct]] = np.arange(len(distinct))
        # The threshold first (a boolean per known pair), then the positions of what is left:
        # no position array as long as every known pair.
        close = self._s >= threshold - TOLERANCE
        a, b, s = where[self._i[close]], where[self._j[close]], self._s[close]
        del close
        hit = (a >= 0) & (b >= 0)
        a, b, s = a[hit], b[hit], s[hit]
        i, j = np.minimum(a, b), np.maximum(a, b)
        del a, b, hit
        order = np.lexsort((j, i))
        seconds = time.perf_counter() - started
        if self.log is not None and seconds >= 1.0:
            self.log(
                f"near-duplicate search: {len(distinct):,} texts ({len(new):,} new, "
                f"{len(self._ids):,} known), {len(order):,} pairs >= {threshold} in "
                f"{seconds:.1f}s ({len(distinct) / seconds:,.0f} texts/s)"
            )
        return i[order], j[order], s[order]


#: Products at least this large (new rows x known rows) take the int8 pre-filter.
INT8_MIN_CELLS = 4096 * 4096
_INT8_LOCK = threading.Lock()
_INT8_SESSION: list = []  # [session or None], built once per process


def _matmul_integer():
    """An onnxruntime session computing int8 matrix products (MatMulInteger), or None.

    MLAS's integer kernels run ~4x the float32 BLAS product here (2 cores, AVX2).
    """
    with _INT8_LOCK:
        if not _INT8_SESSION:
            try:
                import onnxruntime as ort
                from onnx import TensorProto, helper

                a = helper.make_tensor_value_info("A", TensorProto.UINT8, ["m", "k"])
                b = helper.make_tensor_value_info("B", TensorProto.INT8, ["k", "n"])
                z = helper.make_tensor_value_info("Z", TensorProto.UINT8, [])
                y = helper.make_tensor_value_info("Y", TensorProto.INT32, ["m", "n"])
                node = helper.make_node("MatMulInteger", ["A", "B", "Z"], ["Y"])
                model = helper.make_model(
                    helper.make_graph([node], "int8_product", [a, b, z], [y]),
                    opset_imports=[helper.make_opsetid("", 13)],
                )
                model.ir_version = 8
                options = ort.SessionOptions()
                options.log_severity_level = 3
                _INT8_SESSION.append(
                    ort.InferenceSession(
                        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
                    )
                )
            except Exception:  # no onnxruntime kernel: the float32 product does the work
                _INT8_SESSION.append(None)
        return _INT8_SESSION[0]


#: The largest code: 7 bits, not 8. Without AVX-512 VNNI (AVX2 only, as on AMD EPYC Milan)
#: MLAS sums pairs of uint8 x int8 products in int16 and saturates: with codes up to 127 the
#: products came out wrong by up to 10^6 and true pairs were missed. 2 x 255 x 63 fits.
QMAX = 63


class _Quantized:
    """Rows as 7-bit integers (one scale), and a bound on what that changes in any cosine.

    With a = s*qa + ea (|ea| the rounding), a.b - s^2 (qa.qb) <= |s qa| |eb| + |ea| |s qb| +
    |ea| |eb|: every pair whose cosine reaches the limit has an integer product over
    `floor`. Those candidates (a few more than the pairs) are then computed in float32, so
    the pairs and their cosines are the float32 product's: exact, not approximate.
    """

    ZERO = np.array(128, dtype=np.uint8)

    def __init__(self, session, known: np.ndarray, scale: float) -> None:
        self.session = session
        q = np.empty(known.shape, dtype=np.int8)
        worst_err = worst_norm = 0.0
        for lo in range(0, len(known), 8192):  # in slices: no float copies of every row
            part = known[lo : lo + 8192]
            q[lo : lo + 8192] = np.clip(np.rint(part / np.float32(scale)), -QMAX, QMAX)
            approx = q[lo : lo + 8192].astype(np.float32) * np.float32(scale)
            err = part - approx
            worst_err = max(worst_err, float(np.einsum("ij,ij->i", err, err).max()))
            worst_norm = max(worst_norm, float(np.einsum("ij,ij->i", approx, approx).max()))
        worst_err = np.sqrt(worst_err) * (1 + 1e-4) + 1e-6  # margins over float32 rounding
        worst_norm = np.sqrt(worst_norm) * (1 + 1e-4) + 1e-6
        self.bound = 2 * worst_norm * worst_err + worst_err * worst_err + 1e-4
        self.scale = scale
        self.rows = q.view(np.uint8) ^ np.uint8(128)  # q + 128 (zero point 128), no int16 copy
        self.columns = np.ascontiguousarray(q.T)

    @classmethod
    def of(cls, known: np.ndarray) -> _Quantized | None:
        """The quantized rows, or None (no int8 kernel, or nothing to scale)."""
        session = _matmul_integer()
        top = float(np.abs(known).max()) if known.size else 0.0
        if session is None or top == 0.0 or not np.isfinite(top):
            return None
        return cls(session, known, top / QMAX)

    def pairs(
        self, known: np.ndarray, lo: int, hi: int, limit: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows lo..hi against every earlier row: (row - lo, col, cosine) with cosine >= limit."""
        floor = int(np.floor((limit - self.bound) / (self.scale * self.scale)))
        product = self.session.run(
            None,
            {
                "A": self.rows[lo:hi],
                "B": np.ascontiguousarray(self.columns[:, :hi]),
                "Z": self.ZERO,
            },
        )[0]
        rows, cols = np.divmod(np.flatnonzero(product >= floor), hi)
        keep = cols < rows + lo
        rows, cols = rows[keep], cols[keep]
        sims = pair_cosines(known, rows + lo, cols)
        hit = sims >= limit
        return rows[hit], cols[hit], sims[hit]


def shared_search(neighbours: Neighbours, floor: float) -> Neighbours:
    """The run's search wrapped in a `SharedSearch` when it is the in-process matrix search.

    Other searches (Qdrant, `exact_neighbours` in tests) are returned as they are.
    """
    if isinstance(neighbours, BlockNeighbours):
        return SharedSearch(
            neighbours, floor, block=neighbours.block, log=neighbours.log, every=neighbours.every
        )
    return neighbours


def similar_texts(
    texts: Iterable[str],
    vectors: TextVectors,
    neighbours: Neighbours,
    threshold: float,
) -> tuple[list[str], list[tuple[int, int, float]]]:
    """The distinct texts, and the pairs of them (by position in that list) over a threshold.

    Each distinct text is embedded and searched once, so a request asked a thousand times
    costs one vector; callers expand pairs of texts to the events holding them.
    """
    distinct = sorted(set(texts))
    if len(distinct) < 2:
        return distinct, []
    if isinstance(neighbours, SharedSearch):
        return distinct, neighbours.text_pairs(distinct, vectors, threshold)
    return distinct, neighbours(vectors(distinct), threshold)


def pair_list_arrays(
    pairs: Sequence[tuple[int, int, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A `Neighbours` result as arrays (i, j int64; cosine float32, as searched)."""
    if not len(pairs):
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float32)
    i, j, s = zip(*pairs, strict=True)
    return (
        np.asarray(i, dtype=np.int64),
        np.asarray(j, dtype=np.int64),
        np.asarray(s, dtype=np.float64),
    )


def similar_text_arrays(
    texts: Iterable[str],
    vectors: TextVectors,
    neighbours: Neighbours,
    threshold: float,
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """`similar_texts` with the pairs as arrays (i, j, cosine)."""
    distinct = sorted(set(texts))
    if len(distinct) < 2:
        return (distinct, *pair_list_arrays([]))
    if isinstance(neighbours, SharedSearch):
        return (distinct, *neighbours.text_pair_arrays(distinct, vectors, threshold))
    return (distinct, *pair_list_arrays(neighbours(vectors(distinct), threshold)))


class UnionFind:
    """Disjoint sets over hashable items (path halving, union by size)."""

    def __init__(self, items: Iterable) -> None:
        self.parent = {x: x for x in items}
        self.size = dict.fromkeys(self.parent, 1)

    def add(self, x) -> None:
        """Add x as a set of its own, unless it is known."""
        if x not in self.parent:
            self.parent[x] = x
            self.size[x] = 1

    def find(self, x):
        """The representative of x's set."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a, b) -> None:
        """Merge the sets of a and b."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def groups(self) -> dict:
        """Map each item to its representative."""
        return {x: self.find(x) for x in self.parent}


def request_pairs(
    requests: Sequence[str],
    keys: Sequence[object],
    vectors: TextVectors,
    neighbours: Neighbours,
    threshold: float,
) -> list[tuple[int, int, float]]:
    """Pairs of positions whose requests reach the threshold and whose keys are equal.

    Args:
        requests: One request text per position.
        keys: One comparable key per position (conversation context, cluster, ...); only
            positions with equal keys pair.
        vectors: Text -> vector function.
        neighbours: The similarity search.
        threshold: Cosine the requests must reach (equal texts count as 1.0).

    Returns:
        Sorted (i, j, similarity) with i < j.
    """
    p, q, s = request_pair_arrays(requests, keys, vectors, neighbours, threshold)
    return list(zip(p.tolist(), q.tolist(), s.tolist(), strict=True))


def request_pair_arrays(
    requests: Sequence[str],
    keys: Sequence[object],
    vectors: TextVectors,
    neighbours: Neighbours,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`request_pairs` as arrays (p, q, cosine as float64), sorted by (p, q)."""
    distinct, i, j, sims = similar_text_arrays(requests, vectors, neighbours, threshold)
    return _expand_text_pairs(requests, keys, distinct, i, j, sims)


#: Text pairs expanded to positions at a time by `_expand_text_pairs`.
TEXT_PAIRS_PER_JOIN = 1 << 20


def _expand_text_pairs(
    requests: Sequence[str],
    keys: Sequence[object],
    distinct: Sequence[str],
    i: np.ndarray,
    j: np.ndarray,
    sims: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of texts (i, j, cosine) expanded to the positions holding them, keys equal.

    Positions of one text pair at 1.0; a text pair joins positions only through its texts'
    (text, key) groups, by merges over integer codes rather than a loop per position pair.

    Returns:
        (p, q, cosine as float64) with p < q, sorted by (p, q).
    """
    index = {t: k for k, t in enumerate(distinct)}
    codes: dict[object, int] = {}
    at = pd.DataFrame(
        {
            "text": np.fromiter((index[t] for t in requests), dtype=np.int64, count=len(requests)),
            "key": np.fromiter(
                (codes.setdefault(k, len(codes)) for k in keys), dtype=np.int64, count=len(keys)
            ),
            "pos": np.arange(len(requests), dtype=np.int64),
        }
    )
    same = at.merge(at, on=["text", "key"], suffixes=("_a", "_b"))
    same = same[same["pos_a"].to_numpy() < same["pos_b"].to_numpy()]
    found = [(same["pos_a"].to_numpy(), same["pos_b"].to_numpy(), np.ones(len(same)))]
    del same
    # Text pairs first keep only those whose texts share a key (a text pair is joined to its
    # keys once, not once per position), then expand to positions, a slice of text pairs at a
    # time: a 14-day window has tens of millions of text pairs.
    keyed = at[["text", "key"]].drop_duplicates()
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    sims = np.asarray(sims)
    for lo in range(0, len(i), TEXT_PAIRS_PER_JOIN):
        hi = lo + TEXT_PAIRS_PER_JOIN
        links = pd.DataFrame({"i": i[lo:hi], "j": j[lo:hi], "sim": sims[lo:hi].astype(np.float64)})
        links = links.merge(keyed.rename(columns={"text": "i"}), on="i").merge(
            keyed.rename(columns={"text": "j"}), on=["j", "key"]
        )
        near = links.merge(at.rename(columns={"text": "i", "pos": "pos_a"}), on=["i", "key"]).merge(
            at.rename(columns={"text": "j", "pos": "pos_b"}), on=["j", "key"]
        )
        found.append((near["pos_a"].to_numpy(), near["pos_b"].to_numpy(), near["sim"].to_numpy()))
    a, b, s = (np.concatenate(column) for column in zip(*found, strict=True))
    del found
    p, q = np.minimum(a, b), np.maximum(a, b)
    order = np.lexsort((q, p))
    return p[order].astype(np.int64), q[order].astype(np.int64), s[order]
