"""Vector store backends: upserts/s, filtered top-10 latency and recall against brute force.

Points are real MiniLM embeddings of the public texts (bench/semantic_data.py), and beyond their
number, real embeddings plus small Gaussian noise (renormalized; cosine ~0.93 to their source),
which keeps the clustered shape of real text embeddings that index recall depends on. Queries are
embeddings of texts that are not stored (FeedbackQA questions alone). Payloads look like the
pipeline's: 14 days, 4 model versions, kinds, reasons, is_negative, cluster ids, redacted text.

    python bench/vectorstore.py                           # 10k, 20k, 100k; local mode <= 20k
    python bench/vectorstore.py --daily 100000 --days 3   # day-by-day growth (14 x 100k shape)
    python bench/vectorstore.py --horizon 90 --per-day 2000   # the retained store, exact vs codes
    python bench/vectorstore.py --codes --days 10 --per-day 100000   # int8 vs TurboQuant codes
    python bench/vectorstore.py --store COPY_OF/data/qdrant [--optimize]   # a store the pipeline
                                                              # wrote, as it is (or optimized)
    python bench/vectorstore.py --store COPY_OF/data/qdrant --rebuild   # replayed day by day
                                                              # with this code's configuration

`--horizon D --per-day N`: the store as retention leaves it (FEEDBACK_QDRANT_RETENTION_DAYS=D):
D + 7 days of N points are written day by day, each day removing what falls out of the horizon
(`delete_before`), so it ends at D x N points; then filtered top-10 latency and recall@10 are
measured on plain segments (exact) and again after `optimize()` (quantized segments, rescored). The
production shape does not fit this mode, which keeps every vector and payload dict in memory; N
scales it down, and the exact-search latency grows about linearly with the points a filter selects.

    python bench/vectorstore.py --scale 90 --per-day 100000 --queries 50   # the 9M store

`--scale D --per-day N`: the production horizon at full size, built as `qdrant_feedback` builds
it: D days of N points, each day upserted then `optimize()`d (its segment quantized).
Vectors go to a float32 file beside the store and only the filtered fields stay in memory, as
small numpy arrays, so 9M points fit; recall@10 is against brute force over that file, a chunk
at a time. Measured at the `--at` days (default 14, 45) and at the end, on the reopened store,
for the filters of `horizon_filters` and one day (each filter's queries twice, the second pass
timed). Stops building if MemAvailable falls under 4 GB or the disk under 5 GB, and measures
what it has. `--recode "int8,turbo 4-bit,int8"` builds with int8 segments, then re-encodes the
same store to 4-bit codes and back (one `optimize()` each), reopening and measuring after each:
two ways of quantizing compared on the same points in one session.

`--codes --days D --per-day N`: the same D x N points (as `--scale` makes them) built once for
each way of quantizing a segment (int8; 4-bit TurboQuant, the default; 2-bit), each store
closed and reopened (the open timed), then filtered top-10 median latency and recall@10 for the
filters of `horizon_filters` and one day, after a warm-up pass; and recall@10 on clustered
Gaussian vectors (24k points round 40 centres, random queries), where coarse codes rank worst.
At 10 x 100k (load ~1, all rescored 8 x): int8 reopened in 7.8 s, 4-bit in 3.6 s, 2-bit in
4.2 s; top-10 medians 3.3-15.2 ms for int8, 2.6-12.1 ms for 4-bit, 2.6-11.9 ms for 2-bit,
recall@10 1.000 for all three on real vectors (2-bit: 0.998 for one day); on the Gaussian ones
int8 kept 1.000, 4-bit 0.998, 2-bit 0.654. At 90 x 100k (`--scale 90 --recode`) 4-bit was
faster on every filter too (SCALE.md), and rescored 4 x it is the default.

At 90 x 100k, int8 (50 queries, load 2): built in 2726 s, upserts falling from 10.7k/s on day 1 to
3.8k/s on day 90 while optimize stayed at 6.2-9.4 s a day; 23.2 GiB on disk, 91 segments, reopened
in 55 s; top-10 median/p95 95/147 ms unfiltered, 83/86 ms for a version (2.25M points), 23/30
ms for 14 days, 8.6/10.1 ms for version+negative+7 days, 3.8/4.6 ms for one day, recall@10
1.000 throughout. RSS 19.6 GB, 6.8 GB of it anonymous (3.5 GB of that the int8 copies); the
rest is the original vectors' mapped files, which the kernel can reclaim.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from semantic_data import bench_texts, cache_dir, shared_data_dir

from feedback_pipelines.embedding import get_embedder
from feedback_pipelines.vectorstore import open_store, point_id

VERSIONS = ["nimbus-2026-09", "nimbus-2026-10", "nimbus-2026-11", "nimbus-2026-12"]
KINDS = ["thumbs_up", "thumbs_down", "rating", "correction", "comment", "regenerate", "copy"]
REASONS = ["factual_error", "incomplete", "irrelevant", "tone", "too_long", None]
ROLES = ["developer", "analyst", "support", "student"]
DAYS = [f"2026-11-{d:02d}" for d in range(7, 21)]


def real_vectors() -> tuple[np.ndarray, np.ndarray]:
    """(stored-text vectors, query vectors), embedded once and cached on disk."""
    import json

    embedder = get_embedder()
    tag = embedder.model_id.replace("/", "_").replace(":", "_").replace("=", "")
    path = cache_dir() / f"vectors-{tag}.npz"
    if path.exists():
        data = np.load(path)
        return data["stored"], data["queries"]
    texts = bench_texts(3367)
    questions = []
    for file in sorted((shared_data_dir() / "feedbackqa").glob("*.json")):
        questions += [item["question"] for item in json.loads(file.read_text())]
    questions = [q for q in dict.fromkeys(questions) if q not in set(texts)]
    print(f"embedding {len(texts)} stored texts and {len(questions)} queries once ...")
    stored, queries = embedder.embed(texts), embedder.embed(questions)
    np.savez(path, stored=stored, queries=queries)
    return stored, queries


def make_points(
    base: np.ndarray, n: int, seed: int, offset: int = 0, day: str | None = None
) -> tuple[np.ndarray, list]:
    """n vectors (real, then real + noise) and pipeline-like payloads (all of `day` if given)."""
    rng = np.random.default_rng(seed)
    idx = np.arange(offset, offset + n) % len(base)
    vectors = base[idx].copy()
    fresh = np.arange(offset, offset + n) >= len(base)
    noise = rng.standard_normal((int(fresh.sum()), base.shape[1])).astype(np.float32) * 0.02
    vectors[fresh] += noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    payloads = []
    for i in range(n):
        kind = KINDS[rng.integers(len(KINDS))]
        payloads.append(
            {
                "feedback_id": f"fb-{offset + i}",
                "trace_id": f"tr-{offset + i}",
                "ds": day or DAYS[(offset + i) % len(DAYS)],
                "model_version": VERSIONS[rng.integers(len(VERSIONS))],
                "prompt_version": f"p{rng.integers(3)}",
                "kind": kind,
                "reason": REASONS[rng.integers(len(REASONS))],
                "is_negative": kind in ("thumbs_down", "correction", "regenerate"),
                "cluster_id": int(rng.integers(-1, 40)),
                "user_role": ROLES[rng.integers(len(ROLES))],
                "text": "How do I reset my password? <EMAIL> says it failed twice.",
            }
        )
    return vectors, payloads


def matches(payload: dict, flt: dict) -> bool:
    """Brute-force evaluation of the bench's filters."""
    for key, value in flt.items():
        got = payload.get(key)
        if isinstance(value, dict):
            if "gte" in value and not got >= value["gte"]:
                return False
            if "lte" in value and not got <= value["lte"]:
                return False
        elif isinstance(value, list):
            if got not in value:
                return False
        elif got != value:
            return False
    return True


FILTERS = {
    "none": {},
    "version (25%)": {"model_version": "nimbus-2026-11"},
    "version+negative+7 days (~5%)": {
        "model_version": "nimbus-2026-11",
        "is_negative": True,
        "ds": {"gte": DAYS[7], "lte": DAYS[13]},
    },
}


def measure_queries(
    store, vectors, payloads, queries, n_queries: int, filters: dict | None = None
) -> dict:
    """Latency (ms) and recall@10 per filter, against exact numpy search."""
    out = {}
    scores = vectors @ queries[:n_queries].T  # every query's exact scores, once
    for name, flt in (filters or FILTERS).items():
        mask = np.array([matches(p, flt) for p in payloads])
        candidates = np.flatnonzero(mask)
        latencies, recalls = [], []
        for j, q in enumerate(queries[:n_queries]):
            start = time.perf_counter()
            hits = store.search(q, flt, 10)
            latencies.append((time.perf_counter() - start) * 1000)
            # a hit is right if it scores as high as the 10th exact one: equal texts have equal
            # vectors, and which of several tied points comes back is no error
            k = min(10, len(candidates))
            kth = np.sort(scores[candidates, j])[-k] if k else np.inf
            recalls.append(sum(h.score >= kth - 1e-4 for h in hits[:k]) / k if k else 1.0)
        out[name] = (statistics.median(latencies), np.percentile(latencies, 95), np.mean(recalls))
    return out


def bench_size(backend: str, size: int, base, queries, n_queries: int, optimize: bool) -> None:
    """One backend at one size: upsert, (optimize), reopen, queries."""
    vectors, payloads = make_points(base, size, seed=size)
    points = [(point_id(p["feedback_id"]), v, p) for v, p in zip(vectors, payloads, strict=True)]
    folder = Path(tempfile.mkdtemp(prefix=f"vs-{backend}-"))
    try:
        store = open_store("bench", vectors.shape[1], path=folder, backend=backend)
        start = time.perf_counter()
        store.upsert(points)
        upsert_s = time.perf_counter() - start
        opt_s = 0.0
        if optimize:
            start = time.perf_counter()
            store.optimize()
            opt_s = time.perf_counter() - start
        assert store.count() == size
        store.close()
        start = time.perf_counter()
        store = open_store("bench", vectors.shape[1], path=folder, backend=backend)
        reopen_s = time.perf_counter() - start
        figures = measure_queries(store, vectors, payloads, queries, n_queries)
        store.close()
        mib = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    disk = f"{mib:.0f}M"
    print(
        f"{backend:<6} {size:>8} {size / upsert_s:>10.0f} {upsert_s:>8.1f} {opt_s:>8.1f} "
        f"{reopen_s:>7.2f} {disk:>5}  "
        + "  ".join(
            f"{name.split(' ')[0]}: {med:.1f}/{p95:.1f} ms r={rec:.3f}"
            for name, (med, p95, rec) in figures.items()
        ),
        flush=True,
    )


def bench_daily(per_day: int, days: int, base, queries, n_queries: int) -> None:
    """Day-by-day growth on Qdrant Edge: upsert a day, optimize, query; the 14 x 100k shape."""
    folder = Path(tempfile.mkdtemp(prefix="vs-daily-"))
    all_vectors, all_payloads = [], []
    try:
        for day in range(days):
            vectors, payloads = make_points(base, per_day, seed=day, offset=day * per_day)
            all_vectors.append(vectors)
            all_payloads += payloads
            store = open_store("bench", vectors.shape[1], path=folder, backend="edge")
            points = [
                (point_id(p["feedback_id"]), v, p) for v, p in zip(vectors, payloads, strict=True)
            ]
            start = time.perf_counter()
            store.upsert(points)
            upsert_s = time.perf_counter() - start
            start = time.perf_counter()
            store.optimize()
            opt_s = time.perf_counter() - start
            stacked = np.vstack(all_vectors)
            figures = measure_queries(store, stacked, all_payloads, queries, n_queries)
            total = store.count()
            store.close()
            du = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20
            print(
                f"day {day + 1}: {total} points, upsert {per_day / upsert_s:.0f}/s "
                f"({upsert_s:.1f} s), optimize {opt_s:.1f} s, {du:.0f} MiB; "
                + "  ".join(
                    f"{name.split(' ')[0]}: {med:.1f}/{p95:.1f} ms r={rec:.3f}"
                    for name, (med, p95, rec) in figures.items()
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def horizon_filters(days: list[str]) -> dict:
    """The filters of the retained store: whole store, a version, a recent negative slice."""
    return {
        "none": {},
        "version (25%)": {"model_version": "nimbus-2026-11"},
        "last 14 days": {"ds": {"gte": days[-min(14, len(days))]}},
        "version+negative+7 days": {
            "model_version": "nimbus-2026-11",
            "is_negative": True,
            "ds": {"gte": days[-min(7, len(days))]},
        },
    }


def _load_and_figures(figures: dict) -> str:
    """The load average, then per filter: median/p95 latency and recall@10."""
    return f"load {os.getloadavg()[0]:.1f}: " + "  ".join(
        f"{name}: {med:.1f}/{p95:.1f} ms r={rec:.3f}" for name, (med, p95, rec) in figures.items()
    )


def bench_horizon(horizon: int, per_day: int, base, queries, n_queries: int) -> None:
    """Fill a store day by day with retention, then exact vs quantized at the horizon's size."""
    from datetime import date, timedelta

    total_days = horizon + 7
    end = date(2026, 11, 20)
    days = [(end - timedelta(days=total_days - 1 - k)).isoformat() for k in range(total_days)]
    folder = Path(tempfile.mkdtemp(prefix="vs-horizon-"))
    kept_v, kept_p = [], []
    try:
        store = open_store("bench", base.shape[1], path=folder, backend="edge")
        started = time.perf_counter()
        removed = 0
        for k, ds in enumerate(days):
            vectors, payloads = make_points(base, per_day, seed=k, offset=k * per_day, day=ds)
            store.upsert(
                [(point_id(p["feedback_id"]), v, p) for v, p in zip(vectors, payloads, strict=True)]
            )
            cutoff = (date.fromisoformat(ds) - timedelta(days=horizon - 1)).isoformat()
            removed += store.delete_before(cutoff)
            if ds >= days[-horizon]:
                kept_v.append(vectors)
                kept_p += payloads
        fill_s = time.perf_counter() - started
        vectors = np.vstack(kept_v)
        count = store.count()
        assert count == horizon * per_day == len(kept_p), (count, horizon * per_day)
        print(
            f"{total_days} days x {per_day:,} points with a {horizon}-day horizon: "
            f"{count:,} points kept, {removed:,} removed, filled in {fill_s:.0f}s",
            flush=True,
        )
        filters = horizon_filters(days)
        for label in ("exact (plain)", "int8 (optimize)"):
            opt_s = 0.0
            if label.startswith("int8"):
                start = time.perf_counter()
                store.optimize()
                opt_s = time.perf_counter() - start
            figures = measure_queries(store, vectors, kept_p, queries, n_queries, filters)
            built = f"built in {opt_s:.0f}s, " if opt_s else ""
            print(f"{label:<17} {built}{_load_and_figures(figures)}", flush=True)
        store.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def store_filters(payloads: list[dict]) -> dict:
    """Filters a person uses on a real store: a version, recent days, recent complaints, a day."""
    from collections import Counter

    days = sorted({p["ds"] for p in payloads})
    version = Counter(p.get("model_version") for p in payloads).most_common(1)[0][0]
    share = sum(p.get("model_version") == version for p in payloads) / len(payloads)
    return {
        "none": {},
        f"version ({share:.0%})": {"model_version": version},
        "last 7 days": {"ds": {"gte": days[-min(7, len(days))]}},
        "version+negative+7 days": {
            "model_version": version,
            "is_negative": True,
            "ds": {"gte": days[-min(7, len(days))]},
        },
        "one day": {"ds": days[-1]},
    }


def bench_store(path: Path, queries, n_queries: int, optimize: bool) -> None:
    """A store the pipeline wrote (e.g. `bench/day.py --days 14`'s data/qdrant), as it is.

    Changes the store (opening it applies `edge.py`'s configuration; `optimize` quantizes its
    segments): point it at a copy.
    """
    from feedback_pipelines.vectorstore.edge import EdgeStore

    (folder,) = [f for f in path.iterdir() if f.is_dir()]
    store = EdgeStore(path, folder.name, queries.shape[1])
    opt_s = 0.0
    if optimize:
        start = time.perf_counter()
        store.optimize()
        opt_s = time.perf_counter() - start
    start = time.perf_counter()
    held = store.fields({}, ["feedback_id", "ds", "model_version", "is_negative"])
    ids = list(held)
    payloads = [held[i] for i in ids]
    by_id = store.retrieve_vectors(ids)
    vectors = np.stack([by_id[i] for i in ids])
    del by_id
    print(
        f"{len(ids):,} points from {path} ({store.info()}), read in "
        f"{time.perf_counter() - start:.0f}s",
        flush=True,
    )
    label = f"optimized in {opt_s:.0f}s" if optimize else "as stored"
    figures = measure_queries(store, vectors, payloads, queries, n_queries, store_filters(payloads))
    print(f"{label}; {_load_and_figures(figures)}", flush=True)
    store.close()


def bench_rebuild(path: Path, queries, n_queries: int) -> None:
    """A pipeline store replayed day by day into a fresh one with today's configuration.

    As `qdrant_feedback` writes it: each day's points (vectors and the payload fields the filters
    use) upserted, then `optimize()`; then the filters of `--store` on both stores' points. Shows
    what a store written by this code looks like at that size without rerunning the pipeline.
    Opening the source applies this code's configuration to it: point it at a copy.
    """
    from feedback_pipelines.vectorstore.edge import EdgeStore

    (folder,) = [f for f in path.iterdir() if f.is_dir()]
    source = EdgeStore(path, folder.name, queries.shape[1])
    names = ["feedback_id", "ds", "model_version", "is_negative", "kind", "user_role"]
    days = sorted({f["ds"] for f in source.fields({}, ["ds"]).values()})
    target = Path(tempfile.mkdtemp(prefix="vs-rebuild-"))
    store = EdgeStore(target, "rebuilt", queries.shape[1])
    all_vectors, payloads = [], []
    try:
        for day in days:
            held = source.fields({"ds": day}, names)
            ids = list(held)
            by_id = source.retrieve_vectors(ids)
            vectors = np.stack([by_id[i] for i in ids])
            start = time.perf_counter()
            store.upsert([(i, v, held[i]) for i, v in zip(ids, vectors, strict=True)])
            upsert_s = time.perf_counter() - start
            start, cpu = time.perf_counter(), time.process_time()
            store.optimize()
            print(
                f"{day}: {len(ids):,} points, upsert {upsert_s:.1f}s, optimize "
                f"{time.perf_counter() - start:.1f}s ({time.process_time() - cpu:.1f} CPU s); "
                f"{store.info()}",
                flush=True,
            )
            all_vectors.append(vectors)
            payloads += [held[i] for i in ids]
        store.close()
        store = EdgeStore(target, "rebuilt", queries.shape[1])  # as the next reader opens it
        vectors = np.vstack(all_vectors)
        figures = measure_queries(
            store, vectors, payloads, queries, n_queries, store_filters(payloads)
        )
        print(f"rebuilt, {len(payloads):,} points; {_load_and_figures(figures)}", flush=True)
    finally:
        source.close()
        store.close()
        shutil.rmtree(target, ignore_errors=True)


def _kb(path: str, key: str) -> int:
    """A `key:  N kB` line of a /proc file, in kB."""
    for line in Path(path).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def _memory() -> str:
    """The process's RSS (its anonymous part: not file pages) and the machine's MemAvailable."""
    rss, anon = _kb("/proc/self/status", "VmRSS"), _kb("/proc/self/status", "RssAnon")
    avail = _kb("/proc/meminfo", "MemAvailable")
    return f"RSS {rss // 1024} MB (anon {anon // 1024}), MemAvailable {avail // 1024} MB"


def _disk_mb(folder: Path) -> float:
    """Space a folder's files take on disk (as du counts it), in MiB."""
    return sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file()) / 2**20


def field_mask(flt: dict, days: list[str], fields: dict[str, np.ndarray]) -> np.ndarray:
    """`matches` on the numpy field arrays (day index, version code, is_negative)."""
    mask = np.ones(len(fields["day"]), dtype=bool)
    for key, value in flt.items():
        if key == "model_version":
            mask &= fields["version"] == VERSIONS.index(value)
        elif key == "is_negative":
            mask &= fields["negative"] == value
        elif key == "ds" and isinstance(value, dict):
            if "gte" in value:
                mask &= fields["day"] >= days.index(value["gte"])
            if "lte" in value:
                mask &= fields["day"] <= days.index(value["lte"])
        elif key == "ds":
            mask &= fields["day"] == days.index(value)
        else:
            raise ValueError(f"no field array for {key!r}")
    return mask


def exact_top10(path: Path, n: int, queries, masks: dict, chunk: int = 1 << 18) -> dict:
    """Per filter, each query's 10 best exact scores (-inf padded), over the vector file.

    A chunk at a time, each chunk dropped from the page cache once read so that a pass over
    13.8 GB does not evict the store's pages the searches use.
    """
    dim = queries.shape[1]
    best = {name: np.full((10, len(queries)), -np.inf, dtype=np.float32) for name in masks}
    with open(path, "rb") as f:
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            scores = np.fromfile(f, np.float32, rows * dim).reshape(rows, dim) @ queries.T
            os.posix_fadvise(f.fileno(), start * dim * 4, rows * dim * 4, os.POSIX_FADV_DONTNEED)
            for name, mask in masks.items():
                both = np.vstack([best[name], scores[mask[start : start + rows]]])
                best[name] = np.partition(both, len(both) - 10, axis=0)[-10:]
    return best


def measure_scale(
    store, vector_file: Path, days: list[str], fields: dict, queries, best: dict | None = None
) -> tuple[dict, dict]:
    """Per filter: points selected, median and p95 latency (ms), recall@10 as `measure_queries`;
    and the exact top-10 scores (`best`: pass them back to measure the same points again).

    Each filter's queries run twice and the second pass is timed: the first reads the pages
    the searches need, which a store just reopened or re-encoded holds to different degrees.
    The searches run before the brute-force pass over the vector file.
    """
    filters = horizon_filters(days) | {"one day": {"ds": days[-1]}}
    masks = {name: field_mask(flt, days, fields) for name, flt in filters.items()}
    latencies, found = {}, {}
    for name, flt in filters.items():
        for _ in range(2):
            latencies[name], found[name] = [], []
            for q in queries:
                start = time.perf_counter()
                hits = store.search(q, flt, 10)
                latencies[name].append((time.perf_counter() - start) * 1000)
                found[name].append([h.score for h in hits])
    if best is None:
        best = exact_top10(vector_file, len(fields["day"]), queries, masks)
    out = {}
    for name, mask in masks.items():
        selected = int(mask.sum())
        k = min(10, selected)
        recalls = []
        for j, scores in enumerate(found[name]):
            kth = np.sort(best[name][:, j])[-k] if k else np.inf
            recalls.append(sum(s >= kth - 1e-4 for s in scores[:k]) / k if k else 1.0)
        ms = latencies[name]
        out[name] = (selected, statistics.median(ms), np.percentile(ms, 95), np.mean(recalls))
    return out, best


def _scale_table(figures: dict) -> str:
    """`measure_scale`'s figures as a markdown table."""
    lines = [
        "| filter | points selected | median ms | p95 ms | recall@10 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, (selected, med, p95, rec) in figures.items():
        lines.append(f"| {name} | {selected:,} | {med:.1f} | {p95:.1f} | {rec:.3f} |")
    return "\n".join(lines)


def bench_scale(
    n_days: int,
    per_day: int,
    at: list[int],
    base,
    queries,
    n_queries: int,
    recode: list[str] | None = None,
) -> None:
    """The retained store at full size, built day by day, measured at `at` days and the end.

    With `recode` (names of `_codes`), built with the first way of quantizing a segment, then
    re-encoded by one `optimize()` to each next one and measured again on the same points.
    """
    from datetime import date, timedelta

    from feedback_pipelines.vectorstore import edge

    original = edge._codes
    if recode:
        edge._codes = _codes(recode[0])

    end = date(2026, 11, 20)
    days = [(end - timedelta(days=n_days - 1 - k)).isoformat() for k in range(n_days)]
    queries = queries[:n_queries]
    total = n_days * per_day
    fields = {
        "day": np.zeros(total, np.int16),
        "version": np.zeros(total, np.int8),
        "negative": np.zeros(total, bool),
    }
    folder = Path(tempfile.mkdtemp(prefix="vs-scale-"))
    vector_file = folder / "vectors.f32"
    min_avail = 2**20
    try:
        store = open_store("bench", base.shape[1], path=folder / "store", backend="edge")
        build_s, built = 0.0, 0
        with open(vector_file, "wb") as out:
            for k, ds in enumerate(days):
                avail = _kb("/proc/meminfo", "MemAvailable") // 1024
                free = shutil.disk_usage(folder).free / 2**30
                if avail < 4096 or free < 5:
                    print(f"stopping after {k} days: MemAvailable {avail} MB, disk {free:.1f} GB")
                    break
                started = time.perf_counter()
                vectors, payloads = make_points(base, per_day, seed=k, offset=k * per_day, day=ds)
                out.write(vectors.tobytes())
                rows = slice(k * per_day, (k + 1) * per_day)
                fields["day"][rows] = k
                fields["version"][rows] = [VERSIONS.index(p["model_version"]) for p in payloads]
                fields["negative"][rows] = [p["is_negative"] for p in payloads]
                points = [
                    (point_id(p["feedback_id"]), v, p)
                    for v, p in zip(vectors, payloads, strict=True)
                ]
                del vectors, payloads
                start = time.perf_counter()
                store.upsert(points)
                upsert_s = time.perf_counter() - start
                del points
                start = time.perf_counter()
                store.optimize()
                opt_s = time.perf_counter() - start
                build_s += time.perf_counter() - started
                built = k + 1
                min_avail = min(min_avail, _kb("/proc/meminfo", "MemAvailable") // 1024)
                print(
                    f"day {built}/{n_days} {ds}: {built * per_day:,} points, upsert "
                    f"{per_day / upsert_s:,.0f}/s ({upsert_s:.1f} s), optimize {opt_s:.1f} s, "
                    f"{store.info()['segments']} segments; {_memory()}",
                    flush=True,
                )
                if built in at and built < n_days:
                    out.flush()
                    n = built * per_day
                    part = {name: a[:n] for name, a in fields.items()}
                    figures, _ = measure_scale(store, vector_file, days[:built], part, queries)
                    print(f"\nat {built} days, {n:,} points, load {os.getloadavg()[0]:.1f}")
                    print(_scale_table(figures) + "\n", flush=True)
        n = built * per_day
        assert store.count() == n, (store.count(), n)
        rss_built = _memory()
        store.close()
        start = time.perf_counter()
        store = open_store("bench", base.shape[1], path=folder / "store", backend="edge")
        reopen_s = time.perf_counter() - start
        part = {name: a[:n] for name, a in fields.items()}
        figures, best = measure_scale(store, vector_file, days[:built], part, queries)
        print(
            f"\n{built} days x {per_day:,} = {n:,} points, built in {build_s:.0f} s "
            f"({n / build_s:,.0f} points/s with optimize); store {_disk_mb(folder / 'store'):,.0f}"
            f" MiB on disk, {store.info()}; after the build {rss_built}; reopened in "
            f"{reopen_s:.1f} s, after the queries {_memory()}; peak RSS "
            f"{_kb('/proc/self/status', 'VmHWM') // 1024} MB, lowest MemAvailable in the build "
            f"{min_avail} MB; {len(queries)} queries, load {os.getloadavg()[0]:.1f}"
        )
        if recode:
            print(f"segments: {recode[0]}")
        print(_scale_table(figures), flush=True)
        for name in (recode or [])[1:]:
            store.close()
            edge._codes = _codes(name)
            store = open_store("bench", base.shape[1], path=folder / "store", backend="edge")
            start = time.perf_counter()
            store.optimize()
            encode_s = time.perf_counter() - start
            store.close()
            start = time.perf_counter()
            store = open_store("bench", base.shape[1], path=folder / "store", backend="edge")
            reopen_s = time.perf_counter() - start
            figures, _ = measure_scale(store, vector_file, days[:built], part, queries, best)
            print(
                f"\nsegments: {name}, re-encoded in {encode_s:.1f} s; store "
                f"{_disk_mb(folder / 'store'):,.0f} MiB on disk; reopened in {reopen_s:.1f} s; "
                f"{_memory()}; load {os.getloadavg()[0]:.1f}"
            )
            print(_scale_table(figures), flush=True)
        store.close()
    finally:
        edge._codes = original
        shutil.rmtree(folder, ignore_errors=True)


def _codes(name: str):
    """`edge._codes` for one way of quantizing a segment."""

    def codes(qe):
        if name == "int8":
            return qe.ScalarQuantizationConfig(
                type=qe.ScalarType.Int8, quantile=0.99, always_ram=True
            )
        bits = {
            "turbo 4-bit": qe.TurboQuantBitSize.Bits4,
            "turbo 2-bit": qe.TurboQuantBitSize.Bits2,
        }
        return qe.TurboQuantQuantizationConfig(bits=bits[name], always_ram=True)

    return codes


def gaussian_recall(folder: Path, dim: int, seed: int = 3) -> float:
    """recall@10 of random queries over 24k points round 40 Gaussian centres (optimized)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((40, dim))
    rows = centres[rng.integers(0, 40, 24_000)] + 0.3 * rng.standard_normal((24_000, dim))
    rows = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    store = open_store("gauss", dim, path=folder, backend="edge")
    store.upsert([(point_id(str(i)), v, {"feedback_id": str(i)}) for i, v in enumerate(rows)])
    store.optimize()
    right = []
    for q in rng.standard_normal((50, dim)).astype(np.float32):
        q /= np.linalg.norm(q)
        tenth = np.sort(rows @ q)[-10]
        right += [h.score >= tenth - 1e-4 for h in store.search(q, None, 10)]
    store.close()
    return float(np.mean(right))


def bench_codes(n_days: int, per_day: int, base, queries, n_queries: int) -> None:
    """The same days built with each way of quantizing a segment: open time, latency, recall."""
    from feedback_pipelines.vectorstore import edge

    days = [f"2026-11-{d:02d}" for d in range(1, n_days + 1)]
    queries = queries[:n_queries]
    built = [
        make_points(base, per_day, seed=k, offset=k * per_day, day=ds) for k, ds in enumerate(days)
    ]
    vectors = np.vstack([v for v, _ in built])
    fields = {
        "day": np.repeat(np.arange(n_days), per_day),
        "version": np.array([VERSIONS.index(p["model_version"]) for _, ps in built for p in ps]),
        "negative": np.array([p["is_negative"] for _, ps in built for p in ps]),
    }
    filters = horizon_filters(days) | {"one day": {"ds": days[-1]}}
    scores = vectors @ queries.T
    tenth = {
        n: np.sort(scores[field_mask(f, days, fields)], axis=0)[-10] for n, f in filters.items()
    }
    del scores
    print(f"{n_days} days x {per_day:,} points, {len(queries)} queries; medians ms (recall@10)")
    print("| codes | optimize s/day | open s | " + " | ".join(filters) + " | Gaussian recall@10 |")
    print("|---|---:|---:|" + "---:|" * (len(filters) + 1))
    original = edge._codes
    for name in ("int8", "turbo 4-bit", "turbo 2-bit"):
        edge._codes = _codes(name)
        folder = Path(tempfile.mkdtemp(prefix="vs-codes-"))
        try:
            store = open_store("bench", base.shape[1], path=folder, backend="edge")
            optimize_s = 0.0
            for v, ps in built:
                store.upsert([(point_id(p["feedback_id"]), x, p) for x, p in zip(v, ps)])
                start = time.perf_counter()
                store.optimize()
                optimize_s += time.perf_counter() - start
            store.close()
            start = time.perf_counter()
            store = open_store("bench", base.shape[1], path=folder, backend="edge")
            open_s = time.perf_counter() - start
            for _ in range(2):  # a warm-up pass, then the one printed
                cells = []
                for fname, flt in filters.items():
                    ms, right = [], []
                    for j, q in enumerate(queries):
                        start = time.perf_counter()
                        hits = store.search(q, flt, 10)
                        ms.append((time.perf_counter() - start) * 1000)
                        right += [h.score >= tenth[fname][j] - 1e-4 for h in hits]
                    cells.append(f"{statistics.median(ms):.1f} ({np.mean(right):.3f})")
            store.close()
            gauss = gaussian_recall(folder / "gauss", base.shape[1])
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(
            f"| {name} | {optimize_s / n_days:.1f} | {open_s:.1f} | "
            + " | ".join(cells)
            + f" | {gauss:.3f} |",
            flush=True,
        )
    edge._codes = original
    print(f"load {os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,20000,100000")
    parser.add_argument("--backends", default="edge,local")
    parser.add_argument("--local-max", type=int, default=20000, help="largest size for local")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--local-queries", type=int, default=10)
    parser.add_argument("--no-optimize", action="store_true", help="skip Edge's optimize()")
    parser.add_argument("--daily", type=int, default=0, help="points per day (growth mode)")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--horizon", type=int, default=0, help="retention days (horizon mode)")
    parser.add_argument("--per-day", type=int, default=2000, help="points per day (horizon)")
    parser.add_argument("--scale", type=int, default=0, help="days at full size (scale mode)")
    parser.add_argument("--at", default="14,45", help="with --scale: also measure at these days")
    parser.add_argument("--codes", action="store_true", help="int8 vs TurboQuant segments")
    parser.add_argument(
        "--recode",
        default="",
        help="with --scale: build with the first codes, then re-encode to each next one and "
        'measure again, e.g. "int8,turbo 4-bit,int8"',
    )
    parser.add_argument("--store", type=Path, help="measure this pipeline store (data/qdrant)")
    parser.add_argument("--optimize", action="store_true", help="with --store: optimize() first")
    parser.add_argument(
        "--rebuild", action="store_true", help="with --store: replay it day by day into a new one"
    )
    args = parser.parse_args()

    base, queries = real_vectors()
    print(
        f"{len(base)} real stored vectors, {len(queries)} real queries; "
        f"load {os.getloadavg()[0]:.1f}"
    )
    if args.store and args.rebuild:
        bench_rebuild(args.store, queries, args.queries)
        return
    if args.store:
        bench_store(args.store, queries, args.queries, args.optimize)
        return
    if args.codes:
        bench_codes(args.days, args.per_day, base, queries, args.queries)
        return
    if args.scale:
        at = [int(d) for d in args.at.split(",") if d]
        recode = [name for name in args.recode.split(",") if name]
        bench_scale(args.scale, args.per_day, at, base, queries, args.queries, recode)
        return
    if args.horizon:
        bench_horizon(args.horizon, args.per_day, base, queries, args.queries)
        return
    if args.daily:
        bench_daily(args.daily, args.days, base, queries, args.queries)
        return
    print(
        f"{'store':<6} {'points':>8} {'upserts/s':>10} {'upsert s':>8} {'optim s':>8} "
        f"{'reopen':>7} {'disk':>5}  filter: median/p95 latency, recall@10 vs brute force"
    )
    for size in [int(s) for s in args.sizes.split(",")]:
        for backend in args.backends.split(","):
            if backend == "local" and size > args.local_max:
                continue
            bench_size(
                backend,
                size,
                base,
                queries,
                args.local_queries if backend == "local" else args.queries,
                optimize=backend == "edge" and not args.no_optimize,
            )


if __name__ == "__main__":
    main()
