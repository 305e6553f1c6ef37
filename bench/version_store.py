"""A version's own store against a version filter over one store: the 9M version-alone lever.

At the horizon's 9M points a model version alone (25% of the points) is answered in 30-32 ms
(SCALE.md), 2.5x the ~12 ms it takes to read its codes; no filter costs 1.4x that floor. So a
store per model version, searched without a filter, is the one layout left that could bring a
version's search under 20 ms without a graph. This measures the ratio at a size this machine
builds in minutes: DAYS days of 100k clustered Gaussian points (4 versions, equal shares),
each day upserted then optimized as `qdrant_feedback` and `topic_clusters` do, into one store
with the version as a tenant index and into a store holding only version v0's points.

    python bench/version_store.py 24     # 2.4M points: ~8 min on 2 cores

Stop 37, 24 days (2.4M points; load ~1): version filter over the one store 11.8 / 12.1 ms
median (two passes of 60 queries), v0's own store unfiltered 7.3 / 7.2 ms (1.65x faster),
the one store unfiltered 29.0 / 27.5 ms. Scaled to 9M, ~18-19 ms against 30-32 (not built:
a store per version is a change of the store's layout, its retention and the server path's
shard keys, not measured here).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
import uuid

import numpy as np

from feedback_pipelines.vectorstore.edge import EdgeStore

PER_DAY, DIM, VERSIONS = 100_000, 384, 4


def main(days: int) -> None:
    root = tempfile.mkdtemp(prefix="version-store-")
    indexes = {"model_version": "tenant", "ds": "keyword"}
    one = EdgeStore(root, "all", DIM, indexes=indexes)
    own = EdgeStore(root, "v0", DIM, indexes=indexes)
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((200, DIM)).astype(np.float32)

    def vectors(n: int) -> np.ndarray:
        x = centres[rng.integers(0, len(centres), n)]
        x = x + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    started = time.time()
    for d in range(days):
        ds = f"2026-{1 + d // 28:02d}-{1 + d % 28:02d}"
        vecs, version = vectors(PER_DAY), rng.integers(0, VERSIONS, PER_DAY)
        points = [
            (str(uuid.uuid5(uuid.NAMESPACE_URL, f"{d}-{i}")), vecs[i],
             {"model_version": f"v{version[i]}", "ds": ds})
            for i in range(PER_DAY)
        ]  # fmt: skip
        one.upsert(points)
        one.optimize()
        own.upsert([p for p, v in zip(points, version, strict=True) if v == 0])
        own.optimize()
        print(f"day {d + 1}/{days}: {time.time() - started:.0f}s", flush=True)
    queries = vectors(60)

    def median_ms(store: EdgeStore, where: dict | None) -> float:
        for q in queries[:10]:
            store.search(q, filter=where)
        times = []
        for q in queries:
            t = time.perf_counter()
            store.search(q, filter=where)
            times.append((time.perf_counter() - t) * 1000)
        return statistics.median(times)

    for _ in range(2):
        filtered = median_ms(one, {"model_version": "v0"})
        alone = median_ms(own, None)
        unfiltered = median_ms(one, None)
        print(
            f"{days * PER_DAY:,} points: version filter {filtered:.1f} ms | the version's own "
            f"store {alone:.1f} ms ({filtered / alone:.2f}x) | no filter {unfiltered:.1f} ms"
        )
    one.close()
    own.close()
    shutil.rmtree(root)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 24)
