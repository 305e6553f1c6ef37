"""Clustering a window: this project's pipeline against a BERTopic-style full fit.

What is timed: `cluster_window` on a 14-day window of 20k, 100k and 500k feedback events
(conversation context, subtopics on a distinct-text sample of 8k: kNN spectral space, Ward,
spherical k-means over every distinct text; themes; c-TF-IDF keyphrases and quotes), and, on
the same vectors, the
BERTopic-style baseline: UMAP (n_neighbors 15, 5 components, cosine, min_dist 0) then HDBSCAN
(min_cluster_size 10) on every point. Both are scored by the adjusted Rand index against the
generator's planted topic of every event (noise counts as one more label, as it is shown).

The events: the synthetic generator's landing zone (14 days, seed 7) ingested and embedded with
the default embedder once (~20k events; cached under --cache). Larger windows replicate whole
sessions of that base, each copy's vectors jittered (Gaussian noise, mean cosine ~0.97 to the
original) so no two rows are identical; topics, texts, days and users carry over. Embedding 500k
distinct texts would take hours on this CPU (~100 texts/s, FACTS.md) and measure the embedder,
not the clustering.

Each measurement runs in a fresh process; peak memory is that process's resident high-water
mark during the call (reset after the inputs are loaded), so it includes the inputs but not the
loading. Run from the repo root::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/cluster.py                      # everything
    .venv/bin/python bench/cluster.py --sizes 20000 --baseline-sizes 20000  # quick
    .venv/bin/python bench/cluster.py --first-window 20000 [--code OTHER_CHECKOUT]

`--first-window N`: a fresh process (as a nightly run is) imports the clustering and clusters a
window of N events twice; the first call's extra time is what a run pays to start (UMAP's numba
compile, before issue 14). `--code` runs another checkout's package (e.g. the code before).

The baseline needs umap-learn (the clustering no longer does).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if os.environ.get("FEEDBACK_BENCH_CODE"):  # --code: another checkout's package first
    sys.path.insert(0, os.environ["FEEDBACK_BENCH_CODE"])

END = date(2026, 11, 20)
DAYS = 14
JITTER = 0.012  # per-dimension noise on unit 384-d vectors: cosine to the original ~0.97


def build_base(cache: Path, events_per_day: int, seed: int) -> Path:
    """Generate, ingest and embed the base window once; returns the cached .npz."""
    from feedback_pipelines.embedding import get_embedder, interaction_text

    # Vectors of another model are another space: the model id is part of the cache key.
    model = hashlib.sha1(get_embedder().model_id.encode()).hexdigest()[:10]
    out = cache / f"base-{DAYS}d-{events_per_day}-s{seed}-{model}.npz"
    if out.exists():
        return out
    import duckdb

    from feedback_pipelines.ingest.day import ingest_day
    from feedback_pipelines.sources.synthetic import generate

    cache.mkdir(parents=True, exist_ok=True)
    landing = cache / "landing"
    started = time.perf_counter()
    truth = generate(landing, DAYS, END, seed=seed, events_per_day=events_per_day, malformed=False)
    conn = duckdb.connect(str(cache / "base.duckdb"))
    for i in range(DAYS):
        ingest_day(conn, landing, (END - timedelta(days=DAYS - 1 - i)).isoformat(), "bench", 7)
    events = conn.execute(
        "SELECT ds, feedback_id, user_id, session_id, timestamp, is_negative, request, comment, "
        "correction FROM feedback_events"
    ).df()
    conn.close()
    events["text"] = [
        interaction_text(r, c, k)
        for r, c, k in zip(events["request"], events["comment"], events["correction"], strict=True)
    ]
    events = events[events["text"].str.len() > 0].reset_index(drop=True)
    events["topic"] = events["feedback_id"].map(truth["feedback_topic"])
    distinct, inverse = np.unique(events["text"].to_numpy(), return_inverse=True)
    print(f"embedding {len(distinct):,} distinct texts of {len(events):,} events...", flush=True)
    vectors = get_embedder().embed(list(distinct))[inverse.ravel()]
    np.savez_compressed(
        out,
        vectors=vectors,
        **{c: events[c].astype(str).to_numpy() for c in ("feedback_id", "user_id", "session_id")},
        text=events["text"].to_numpy(),
        topic=events["topic"].astype(str).to_numpy(),
        ds=pd.to_datetime(events["ds"]).dt.strftime("%Y-%m-%d").to_numpy(),
        timestamp=pd.to_datetime(events["timestamp"]).astype("int64").to_numpy(),
        is_negative=events["is_negative"].astype(bool).to_numpy(),
    )
    print(f"base window built in {time.perf_counter() - started:.0f}s -> {out}", flush=True)
    return out


def load_window(base: Path, n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """n events: the base, or whole sessions of it replicated with jittered vectors."""
    z = np.load(base, allow_pickle=True)
    frame = pd.DataFrame(
        {
            "feedback_id": z["feedback_id"],
            "user_id": z["user_id"],
            "session_id": z["session_id"],
            "text": z["text"],
            "topic": z["topic"],
            "ds": pd.to_datetime(z["ds"]).date,
            "timestamp": pd.to_datetime(z["timestamp"]),
            "is_negative": z["is_negative"],
        }
    )
    vectors = z["vectors"].astype(np.float32)
    if n <= len(frame):
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), n, replace=False))
        return frame.iloc[keep].reset_index(drop=True), vectors[keep]
    rng = np.random.default_rng(seed)
    copies = int(np.ceil(n / len(frame)))
    parts, vecs = [], []
    for k in range(copies):
        part = frame.copy()
        if k:
            for col in ("feedback_id", "session_id"):
                part[col] = part[col] + f"#{k}"
            part["user_id"] = part["user_id"] + f"#{k % 7}"
            noisy = vectors + JITTER * rng.standard_normal(vectors.shape).astype(np.float32)
            noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
            vecs.append(noisy)
        else:
            vecs.append(vectors)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True).iloc[:n]
    return frame, np.vstack(vecs)[:n]


def _peak_reset() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024  # MiB
    return float("nan")


def run_ours(base: str, n: int, queue) -> None:
    from sklearn.metrics import adjusted_rand_score

    from feedback_pipelines.clustering import cluster_window

    frame, vectors = load_window(Path(base), n)
    rss = _status("VmRSS")
    _peak_reset()
    started = time.perf_counter()
    result = cluster_window(frame, vectors, END)
    seconds = time.perf_counter() - started
    peak = _status("VmHWM")
    merged = frame[["feedback_id", "topic"]].merge(result.assignments, on="feedback_id")
    queue.put(
        {
            "method": "ours",
            "n": n,
            "seconds": seconds,
            "peak_mib": peak,
            "inputs_mib": rss,
            "ari": adjusted_rand_score(merged["topic"], merged["cluster_id"]),
            "clusters": result.stats["clusters"],
            "themes": result.stats.get("themes"),
            "noise": result.stats["noise_share"],
            "stages": {k: v for k, v in result.stats.items() if k.endswith("_seconds")},
        }
    )


def run_first_window(base: str, n: int, queue) -> None:
    """A fresh process: import, then the same window clustered twice (first call, warm call)."""
    frame, vectors = load_window(Path(base), n)
    started = time.perf_counter()
    from feedback_pipelines.clustering import cluster_window

    imported = time.perf_counter() - started
    t = time.perf_counter()
    cluster_window(frame, vectors, END)
    first = time.perf_counter() - t
    t = time.perf_counter()
    result = cluster_window(frame, vectors, END)
    warm = time.perf_counter() - t
    queue.put(
        {
            "code": os.environ.get("FEEDBACK_BENCH_CODE") or str(ROOT),
            "module": sys.modules["feedback_pipelines.clustering"].__file__,
            "n": n,
            "import_s": round(imported, 1),
            "first_s": round(first, 1),
            "warm_s": round(warm, 1),
            "start_cost_s": round(imported + first - warm, 1),
            "clusters": result.stats["clusters"],
        }
    )


def run_bertopic_style(base: str, n: int, queue) -> None:
    import hdbscan
    import umap
    from sklearn.metrics import adjusted_rand_score

    frame, vectors = load_window(Path(base), n)
    rss = _status("VmRSS")
    _peak_reset()
    started = time.perf_counter()
    reduced = umap.UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=42
    ).fit_transform(vectors)
    reduce_s = time.perf_counter() - started
    labels = hdbscan.HDBSCAN(
        min_cluster_size=10, metric="euclidean", cluster_selection_method="eom",
        prediction_data=True,
    ).fit_predict(reduced)  # fmt: skip
    seconds = time.perf_counter() - started
    queue.put(
        {
            "method": "bertopic-style",
            "n": n,
            "seconds": seconds,
            "peak_mib": _status("VmHWM"),
            "inputs_mib": rss,
            "ari": adjusted_rand_score(frame["topic"], labels),
            "clusters": int(labels.max()) + 1,
            "noise": float(np.mean(labels == -1)),
            "stages": {"umap_seconds": round(reduce_s, 1)},
        }
    )


def measure(target, base: Path, n: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(str(base), n, queue))
    proc.start()
    out = queue.get()
    # The baseline's HDBSCAN leaves joblib worker processes behind, which the child would
    # wait for on exit (minutes): the figures are in, so stop it.
    proc.join(timeout=10)
    if proc.is_alive():
        proc.terminate()
        proc.join()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[20_000, 100_000, 500_000])
    parser.add_argument("--baseline-sizes", type=int, nargs="*", default=[20_000, 100_000])
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench" / "cluster")
    parser.add_argument("--events-per-day", type=int, default=1450)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--first-window", type=int, default=0, metavar="N")
    parser.add_argument("--code", type=Path, help="another checkout whose package to run")
    args = parser.parse_args()
    if args.code:
        os.environ["FEEDBACK_BENCH_CODE"] = str(args.code.resolve())
    base = build_base(args.cache, args.events_per_day, args.seed)
    if args.first_window:
        row = measure(run_first_window, base, args.first_window)
        print(
            f"first window of a fresh process, n={row['n']:,} ({row['module']}): import "
            f"{row['import_s']}s, first call {row['first_s']}s, warm call {row['warm_s']}s: "
            f"start-up cost {row['start_cost_s']}s; {row['clusters']} clusters",
            flush=True,
        )
        return
    rows = []
    plan = [(run_ours, n) for n in args.sizes] + [
        (run_bertopic_style, n) for n in args.baseline_sizes
    ]
    for target, n in sorted(plan, key=lambda p: (p[1], p[0].__name__)):
        row = measure(target, base, n)
        rows.append(row)
        print(
            f"{row['method']:<15} n={row['n']:>7,}  {row['seconds']:8.1f}s  "
            f"{row['n'] / row['seconds']:>8,.0f} events/s  peak {row['peak_mib']:7,.0f} MiB "
            f"(inputs {row['inputs_mib']:,.0f})  ARI {row['ari']:.3f}  clusters {row['clusters']}"
            f"  noise {row['noise']:.1%}  {row['stages']}",
            flush=True,
        )
    by = {(r["method"], r["n"]): r for r in rows}
    for n in sorted({r["n"] for r in rows}):
        ours, full = by.get(("ours", n)), by.get(("bertopic-style", n))
        if ours and full:
            print(
                f"n={n:,}: {full['seconds'] / ours['seconds']:.1f}x faster than the full fit, "
                f"ARI {ours['ari']:.3f} vs {full['ari']:.3f} ({ours['ari'] - full['ari']:+.3f})"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=float))


if __name__ == "__main__":
    main()
