"""Replay Banking77 train over 21 days through the subtopic registry (subtopics.Registry).

Each row gets a random day (fixed seed). Every day goes through `Registry.day`: events are
placed on the nearest registered subtopic when their cosine to its centroid is >= 0.6 (about the
3rd percentile of member-to-centroid cosines of a batch fit of Banking77; per-subtopic quantile
thresholds were measured worse: small day-1 groups give noisy quantiles), then the unplaced pool
(leftovers of the last 7 days + today's unplaced) is clustered with fit_window and groups of
>= 5 members within 0.6 of their centroid, not within 0.85 of a known centroid, are born. Day 1
(empty registry) is therefore a plain fit. Placed events never move.

Printed: per day placed / born / pooled; at the end the share of events assigned before a day
whose nearest centroid in that day's final registry is still their id (drift; stored ids never
change, so the stored persistence is 100% by construction), the same with thresholds,
the ARI / V / purity of the accumulated assignments vs the intents, and a one-shot batch fit of
all rows for reference.

    PYTHONPATH=/work/before:/work/scratch/topics /work/main/.venv/bin/python registry_replay.py
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score, v_measure_score

import subtopics as st

CACHE = Path(__file__).resolve().parent / "cache"


def purity(y, labels):
    m = labels >= 0
    return pd.crosstab(labels[m], y[m]).max(axis=1).sum() / m.sum()


def replay(x, y, days=21, seed=0, verbose=True, warmup=1, **kwargs):
    """warmup: the first `warmup` days are clustered together as the first day."""
    x = st.normalize(x)
    day = np.random.default_rng(seed).integers(0, days, len(x))
    day = np.maximum(day, warmup - 1)
    reg = st.Registry.empty(x.shape[1], **kwargs)
    assigned = np.full(len(x), st.NOISE, dtype=np.int64)  # id given to each row, never changed
    kept_near = kept_place = checked = 0
    t0 = time.perf_counter()
    for d in range(warmup - 1, days):
        rows = np.flatnonzero(day == d)
        before = np.flatnonzero(assigned >= 0)
        ids, late, born = reg.day(x[rows], d, keys=rows, seed=seed)
        for r, i in late.items():
            assigned[r] = i
        assigned[rows[ids >= 0]] = ids[ids >= 0]
        # persistence: the registry at the end of today, asked about events that had an id
        # before today: nearest centroid (and placement with thresholds) still that id?
        if len(before):
            near = st.nearest(x[before], reg.centroids)[0]
            kept_near += int(np.sum(near == assigned[before]))
            kept_place += int(np.sum(reg.place(x[before]) == assigned[before]))
            checked += len(before)
        if verbose:
            print(f"day {d + 1:2d}: {len(rows):4d} events, placed on known "
                  f"{int(np.sum(ids >= 0)) if d else 0:4d}, subtopics {len(reg.sums):4d} "
                  f"(+{born}), pool {len(reg.pool):4d}", flush=True)
    return {
        "stored ids kept": 1.0,
        "nearest-centroid persistence": kept_near / max(checked, 1),
        "re-placement persistence": kept_place / max(checked, 1),
        "ARI": adjusted_rand_score(y, assigned),
        "ARIs": adjusted_rand_score(y, np.where(assigned >= 0, assigned, 10**6 + np.arange(len(y)))),
        "V": v_measure_score(y, assigned),
        "purity": purity(y, assigned),
        "unassigned": float(np.mean(assigned < 0)),
        "subtopics": len(reg.sums),
        "seconds": time.perf_counter() - t0,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    x = np.load(CACHE / "banking77_train.npy")
    y = np.array(json.loads((CACHE / "banking77_train.json").read_text())["labels"])
    if args.grid:
        grid = [dict(quantile=None, floor=f, duplicate=dup, warmup=w, update_centroids=u)
                for f in (0.55, 0.6, 0.65) for dup in (0.85,) for w in (1,) for u in (False, True)]
        grid += [dict(quantile=None, floor=0.6, duplicate=0.8), dict(quantile=None, floor=0.6, warmup=7)]
        for kw in grid:
            r = replay(x, y, verbose=False, **kw)
            print(f"{kw}: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in r.items()), flush=True)
        return
    for warmup in (1, 7):
        print(f"\n--- registry from day {warmup} (days 1-{warmup} clustered together), "
              "then placement + pool births; global join threshold 0.6, frozen centroids")
        r = replay(x, y, warmup=warmup)
        print(", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()))
    t = time.perf_counter()
    fit = st.fit_window(x, 0)
    print(f"batch fit of all {len(x)} rows at once: ARI {adjusted_rand_score(y, fit.labels):.3f}, "
          f"V {v_measure_score(y, fit.labels):.3f}, purity {purity(y, fit.labels):.3f}, "
          f"{fit.n_subtopics} subtopics, {time.perf_counter() - t:.1f}s")


if __name__ == "__main__":
    main()
