"""When to quantize the embedded store in a day: before or after the day's cluster-id writes.

    PYTHONPATH=. .venv/bin/python bench/optimize_order.py [--per-day 40000] [--days 8]

Qdrant moves a point whose payload is set out of its quantized segment into the plain
appendable one. Each simulated day upserts `--per-day` random 384-d points, then writes cluster
ids into them and into 5% of the earlier points (as `topic_clusters` did then), with
`optimize()` either right after the upsert (`qdrant_feedback`, the old order) or after the
writes (the order since; `qdrant_feedback` now writes the day's points with their ids and
then the earlier points' changes, all before `optimize()`). Prints each day's optimize and
write time and the filtered top-10 latency left for the rest of the day, then the totals and
their ratio.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from feedback_pipelines.vectorstore.base import point_id
from feedback_pipelines.vectorstore.edge import EdgeStore


def replay(order: str, per_day: int, days: int) -> tuple[float, float]:
    """Total optimize seconds and the last day's median search ms for one order."""
    root = Path(tempfile.mkdtemp(prefix=f"opt-{order}-"))
    store = EdgeStore(root, "bench", 384)
    rng = np.random.default_rng(0)
    earlier: list[str] = []
    total, latency = 0.0, 0.0
    try:
        for day in range(days):
            ds = f"2026-11-{day + 1:02d}"
            ids = [point_id(f"{day}-{i}") for i in range(per_day)]
            vectors = rng.standard_normal((per_day, 384)).astype(np.float32)
            store.upsert(
                [
                    (p, vectors[i], {"feedback_id": f"{day}-{i}", "ds": ds})
                    for i, p in enumerate(ids)
                ]
            )
            spent = 0.0
            if order == "before":
                start = time.perf_counter()
                store.optimize()
                spent += time.perf_counter() - start
            moved = rng.choice(len(earlier), len(earlier) // 20, replace=False) if earlier else []
            writes = {p: {"cluster_id": int(rng.integers(0, 100))} for p in ids}
            writes.update({earlier[k]: {"cluster_id": int(rng.integers(0, 100))} for k in moved})
            start = time.perf_counter()
            store.set_payloads(writes)
            written = time.perf_counter() - start
            if order == "after":
                start = time.perf_counter()
                store.optimize()
                spent += time.perf_counter() - start
            earlier += ids
            times = []
            for q in rng.standard_normal((20, 384)).astype(np.float32):
                start = time.perf_counter()
                store.search(q, {"ds": {"gte": "2026-11-01"}}, 10)
                times.append(time.perf_counter() - start)
            latency = float(np.median(times)) * 1000
            total += spent
            print(
                f"{order:>6} day {day + 1}: optimize {spent:5.1f}s, {len(writes):,} cluster ids "
                f"in {written:4.1f}s, search {latency:5.1f} ms",
                flush=True,
            )
    finally:
        store.close()
        shutil.rmtree(root, ignore_errors=True)
    return total, latency


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--per-day", type=int, default=40_000)
    parser.add_argument("--days", type=int, default=8)
    args = parser.parse_args()
    before = replay("before", args.per_day, args.days)
    after = replay("after", args.per_day, args.days)
    print(
        f"optimize in all: before the writes {before[0]:.1f}s, after {after[0]:.1f}s "
        f"({before[0] / max(after[0], 1e-9):.1f}x); search after the last day "
        f"{before[1]:.1f} -> {after[1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
