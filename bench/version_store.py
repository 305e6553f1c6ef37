"""A store per model version against one store with a version filter, at the horizon's size.

At 90 days of 100k points one store answered a model version alone (a quarter of the points)
in 30-32 ms (SCALE.md), 2.5x the ~12 ms it takes to read its codes: Qdrant scores a filter's
points one id at a time, ~4x the cost of a point of its sequential scan. With one Qdrant Edge
shard per model version, a version's search is its shard's unfiltered scan; searches without a
version ask every shard and merge by score. This builds the same generated days into both
layouts, each day upserted then optimized as `qdrant_feedback` does
(4 versions, equal shares; clustered Gaussian vectors; payloads with the fields the filters
use), then times the filters recall asks (median and p95 of 50 queries after 10 warm-up ones,
the second of two passes) and compares the two layouts' top-10s.

    python bench/version_store.py --layout one --days 90 --root /tmp/vs9m        # build, time
    python bench/version_store.py --layout versions --days 90 --root /tmp/vs9m
    python bench/version_store.py --compare --days 90 --root /tmp/vs9m           # both, built

A layout already built under `--root` is reopened, not built again. `--daily-segments` keeps
each day's points of a version a segment of their own in the version shards (Qdrant merges
them up to ~100k points otherwise; the setting reaches every Edge store the process opens, and
the one store's days are a 100k-point segment each either way). Stop 41's figures and the
choice: SCALE.md, "A store per model version".
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from feedback_pipelines.vectorstore import Hit
from feedback_pipelines.vectorstore import edge as edge_module
from feedback_pipelines.vectorstore.edge import EdgeStore
from feedback_pipelines.vectorstore.layout import EF_CONSTRUCT, FULL_SCAN_KB, segment_kb

PER_DAY, DIM, VERSIONS, SEED = 100_000, 384, 4, 0
END = date(2026, 11, 20)
KINDS = ["thumbs_up", "thumbs_down", "rating", "correction", "comment"]


def _centres() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((200, DIM)).astype(np.float32)


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    centres = _centres()
    x = centres[rng.integers(0, len(centres), n)]
    x = x + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _day(days: int, d: int) -> str:
    return (END - timedelta(days=days - 1 - d)).isoformat()


def day_points(days: int, d: int) -> list:
    """Day `d`'s points, the same in every process (seeded by the day)."""
    rng = np.random.default_rng([SEED, d])
    vecs = _vectors(rng, PER_DAY)
    version = rng.integers(0, VERSIONS, PER_DAY)
    negative = rng.random(PER_DAY) < 0.3
    cluster = rng.integers(0, 200, PER_DAY)
    kind = rng.integers(0, len(KINDS), PER_DAY)
    ds = _day(days, d)
    return [
        (str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d}-{i}")), vecs[i],
         {"feedback_id": f"{d}-{i}", "model_version": f"v{version[i]}", "ds": ds,
          "is_negative": bool(negative[i]), "cluster_id": int(cluster[i]),
          "kind": KINDS[kind[i]]})
        for i in range(PER_DAY)
    ]  # fmt: skip


class VersionShards:
    """One Edge shard per model version: what the bench compares with one store (no more)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.shards = {f.name: EdgeStore(root, f.name, DIM) for f in sorted(root.iterdir())}

    def upsert(self, points: list) -> None:
        groups: dict[str, list] = {}
        for point in points:
            groups.setdefault(point[2]["model_version"], []).append(point)
        for version, group in groups.items():
            if version not in self.shards:
                self.shards[version] = EdgeStore(self.root, version, DIM)
            self.shards[version].upsert(group)

    def search(self, vector, filter: dict | None = None, limit: int = 10) -> list[Hit]:
        where = dict(filter or {})
        version = where.pop("model_version", None)
        shards = [self.shards[version]] if version else list(self.shards.values())
        hits = [h for shard in shards for h in shard.search(vector, where, limit)]
        return sorted(hits, key=lambda h: (-h.score, h.id))[:limit]

    def count(self) -> int:
        return sum(shard.count() for shard in self.shards.values())

    def optimize(self) -> None:
        for shard in self.shards.values():
            shard.optimize()

    def close(self) -> None:
        for shard in self.shards.values():
            shard.close()


def _daily_segments(qe, dim: int):
    """`edge._config` with merging off: each day's points of a version stay one segment."""
    indexing_threshold, max_segment_size = segment_kb(dim)
    return qe.EdgeConfig(
        vectors=qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine),
        quantization_config=edge_module._codes(qe),
        hnsw_config=qe.HnswIndexConfig(
            m=0, ef_construct=EF_CONSTRUCT, full_scan_threshold=FULL_SCAN_KB
        ),
        optimizers=qe.EdgeOptimizersConfig(
            indexing_threshold=indexing_threshold,
            max_segment_size=max_segment_size,
            default_segment_number=10_000,
        ),
    )


def _open(root: Path, layout: str):
    if layout == "one":
        return EdgeStore(root / "one", "bench", DIM)
    return VersionShards(root / layout)


def build(root: Path, layout: str, days: int):
    store = _open(root, layout)
    have = store.count()
    started = time.perf_counter()
    for d in range(have // PER_DAY, days):
        store.upsert(day_points(days, d))
        store.optimize()
        print(f"{layout}: day {d + 1}/{days} built, {time.perf_counter() - started:.0f}s",
              flush=True)  # fmt: skip
    return store


def filters(days: int) -> dict[str, dict | None]:
    last = _day(days, days - 1)
    return {
        "none": None,
        "one model version": {"model_version": "v0"},
        "last 14 days": {"ds": {"gte": _day(days, days - 14), "lte": last}},
        "version + negative + 7 days": {
            "model_version": "v0", "is_negative": True,
            "ds": {"gte": _day(days, days - 7), "lte": last},
        },
        "one day": {"ds": last},
    }  # fmt: skip


def measure(store, days: int) -> dict[str, tuple[float, float, list]]:
    """Per filter: median and p95 ms (the second of two passes) and each query's top-10 ids."""
    queries = _vectors(np.random.default_rng(SEED + 1), 60)
    out = {}
    for name, where in filters(days).items():
        for q in queries[:10]:
            store.search(q, filter=where)
        for _ in range(2):
            times, tops = [], []
            for q in queries[10:]:
                t = time.perf_counter()
                hits = store.search(q, filter=where)
                times.append((time.perf_counter() - t) * 1000)
                tops.append([h.id for h in hits])
        p95 = statistics.quantiles(times, n=20)[-1]
        out[name] = (statistics.median(times), p95, tops)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layout", choices=["one", "versions"], default="versions")
    parser.add_argument("--days", type=int, default=24)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--compare", action="store_true", help="time both built layouts")
    parser.add_argument(
        "--daily-segments", action="store_true", help="versions: no merging of segments"
    )
    args = parser.parse_args()
    versions = "versions-daily" if args.daily_segments else "versions"
    if args.daily_segments:
        edge_module._config = _daily_segments
    layouts = (
        ["one", versions]
        if args.compare
        else [versions if args.layout == "versions" else args.layout]
    )
    figures = {}
    for layout in layouts:
        started = time.perf_counter()
        store = (
            build(args.root, layout, args.days) if not args.compare else _open(args.root, layout)
        )
        print(f"{layout}: {store.count():,} points, ready in {time.perf_counter() - started:.0f}s")
        figures[layout] = measure(store, args.days)
        store.close()
    print("| filter | " + " | ".join(f"{x} median / p95 ms" for x in layouts) + " |")
    print("|---|" + "---:|" * len(layouts))
    for name in filters(args.days):
        cells = [f"{figures[x][name][0]:.1f} / {figures[x][name][1]:.1f}" for x in layouts]
        print(f"| {name} | " + " | ".join(cells) + " |")
    if args.compare:
        for name in filters(args.days):
            one, own = figures["one"][name][2], figures[versions][name][2]
            same = np.mean([len(set(a) & set(b)) / max(len(a), 1) for a, b in zip(one, own)])
            print(f"{name}: top-10 overlap between the layouts {same:.3f}")


if __name__ == "__main__":
    main()
