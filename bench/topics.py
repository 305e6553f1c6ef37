"""Topics on real text: every method on the same vectors, in one process (issue 14).

Methods, each on the default embedder's vectors of the tests' copies of the real sets
(`feedback_pipelines_tests/data/real`, embedded once and cached under --cache):

- ours: `fit_window` (subtopics) and `themes_of_subtopics` (themes), as `cluster_window` runs them
  on a first day (no k told, no seed: deterministic);
- window: the whole `cluster_window` (registry, themes, labels without re-ranking);
- bertopic: BERTopic's defaults, UMAP(15 neighbours, 5-d, cosine, min_dist 0) + HDBSCAN(10) on
  every point (UMAP's numba compile is paid before the timing: see `compile_s`);
- kmeans-k: k-means told the true k (Banking77 only), 10 inits.

Scores: ARI (noise as one label, as people see it), AMI, V-measure, weighted purity over the
clustered rows, noise share, seconds. Varied windows (FeedbackQA question + rater comment,
OASST prompt + reply, LAMP instruction + edit, and the three merged): subtopics, largest
subtopic's share of events, noise, themes. Seeds: min pairwise ARI over seeds 0, 1, 2 (ours:
three row orders). `--big N`: timing at N events on bench/cluster.py's synthetic window.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/topics.py [--big 100000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import sys
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, v_measure_score

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REAL = ROOT / "feedback_pipelines_tests" / "data" / "real"
END = date(2026, 11, 20)
warnings.filterwarnings("ignore")


def real_sets() -> dict[str, tuple[list[str], list[str] | None]]:
    """Texts (and truth) of Banking77 test and the varied sets, as the tests build them."""
    from feedback_pipelines_tests.fixtures.real_sets import varied_texts

    bank = pd.read_csv(REAL / "banking77" / "test.csv")
    sets = varied_texts()
    fqa, oasst, lamp = sets["feedbackqa"], sets["oasst"], sets["lamp"]

    def distinct(texts):
        return list(dict.fromkeys(t for t in texts if t))

    return {
        "banking77": (bank["text"].astype(str).tolist(), bank["category"].astype(str).tolist()),
        "feedbackqa": (distinct(fqa), None),
        "oasst": (distinct(oasst), None),
        "lamp": (distinct(lamp), None),
    }


def embedded(cache: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None, list[str]]]:
    from feedback_pipelines.embedding import get_embedder

    model = get_embedder()
    cache.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (texts, truth) in real_sets().items():
        tag = hashlib.sha1(model.model_id.encode()).hexdigest()[:10]
        key = cache / f"{name}-{tag}-{len(texts)}.npy"
        if key.exists():
            x = np.load(key)
        else:
            x = model.embed(texts).astype(np.float32)
            np.save(key, x)
        out[name] = (x, None if truth is None else np.asarray(truth), texts)
    x = np.vstack([out[n][0] for n in ("feedbackqa", "oasst", "lamp")])
    texts = [t for n in ("feedbackqa", "oasst", "lamp") for t in out[n][2]]
    out["all three"] = (x, None, texts)
    return out


def purity(y, labels) -> float:
    m = labels >= 0
    return float(pd.crosstab(labels[m], y[m]).max(axis=1).sum() / m.sum()) if m.any() else 0.0


def score(y, labels) -> dict:
    return {
        "clusters": len(set(labels[labels >= 0].tolist())),
        "ARI": adjusted_rand_score(y, labels),
        "AMI": adjusted_mutual_info_score(y, labels),
        "V": v_measure_score(y, labels),
        "purity": purity(y, labels),
        "noise": float(np.mean(labels < 0)),
    }


def run_ours(x, texts=None, seed=0):
    """Subtopics and themes; the seed shuffles the rows (nothing else could change)."""
    from feedback_pipelines.clustering import fit_window
    from feedback_pipelines.clustering.subtopics import group_means
    from feedback_pipelines.clustering.themes import themes_of_subtopics

    order = np.random.default_rng(seed).permutation(len(x)) if seed else np.arange(len(x))
    fit = fit_window(x[order])
    labels = np.empty(len(x), dtype=np.int64)
    labels[order] = fit.labels
    means, sizes = group_means(x, labels, fit.n_subtopics)
    if texts is None:  # subtopics only (the seed table)
        return labels, None
    themes = themes_of_subtopics(means, sizes, texts, labels)
    return labels, np.where(labels >= 0, themes[np.maximum(labels, 0)], -1)


def run_window(x, texts, seed=0):
    from feedback_pipelines.clustering import ClusteringConfig, cluster_window

    n = len(x)
    events = pd.DataFrame(
        {
            "feedback_id": [str(i) for i in range(n)],
            "text": texts,
            "user_id": [f"u{i % 97}" for i in range(n)],
            "is_negative": False,
            "timestamp": pd.Timestamp("2026-11-20T12:00:00Z"),
        }
    )
    result = cluster_window(events, x, END, config=ClusteringConfig(context_weight=0.0))
    links = result.assignments.set_index("feedback_id").loc[events["feedback_id"]]
    return links["cluster_id"].to_numpy(), links["topic_id"].to_numpy()


def run_bertopic(x, texts=None, seed=0):
    import hdbscan
    import umap

    reduced = umap.UMAP(
        n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed
    ).fit_transform(x)
    return hdbscan.HDBSCAN(min_cluster_size=10).fit_predict(reduced).astype(np.int64), None


def run_kmeans(x, k, seed=0):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit_predict(x).astype(np.int64), None


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    labels, themes = fn(*args, **kwargs)
    return labels, themes, time.perf_counter() - t


def umap_compile() -> float:
    """Seconds UMAP's first use costs in a fresh process (numba compile), paid outside timings."""
    t = time.perf_counter()
    import umap

    umap.UMAP(n_neighbors=5, n_components=2).fit_transform(np.random.default_rng(0).random((60, 8)))
    return time.perf_counter() - t


def banking_table(sets) -> None:
    x, y, texts = sets["banking77"]
    k = len(set(y.tolist()))
    print(f"\n## Banking77 test: {len(x):,} queries, {k} intents (only kmeans-k is told k)\n")
    print("| method | clusters | ARI | AMI | V | purity | noise | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, fn, args in [
        ("ours (subtopics)", run_ours, (x, texts)),
        ("cluster_window", run_window, (x, texts)),
        ("bertopic defaults", run_bertopic, (x,)),
        (f"kmeans told k={k}", run_kmeans, (x, k)),
    ]:
        labels, themes, s = timed(fn, *args)
        d = score(y, labels)
        print(
            f"| {name} | {d['clusters']} | {d['ARI']:.3f} | {d['AMI']:.3f} | {d['V']:.3f} | "
            f"{d['purity']:.3f} | {d['noise']:.1%} | {s:.1f} |",
            flush=True,
        )
        if themes is not None:
            inside = [
                pd.Series(themes[y == c]).value_counts(normalize=True).iloc[:2].sum() >= 0.8
                for c in np.unique(y)
            ]
            largest = pd.Series(themes[themes >= 0]).value_counts(normalize=True).iloc[0]
            print(
                f"|   themes of {name} | {len(set(themes[themes >= 0].tolist()))} | "
                f"{adjusted_rand_score(y, themes):.3f} | | {v_measure_score(y, themes):.3f} | "
                f"intents >=80% in <=2 themes: {np.mean(inside):.0%} | largest theme "
                f"{largest:.0%} | |"
            )


def varied_table(sets) -> None:
    names = ["feedbackqa", "oasst", "lamp", "all three"]
    print("\n## Varied real windows: subtopics / largest subtopic's share / noise / s (themes)\n")
    print("| method | " + " | ".join(f"{n} (n={len(sets[n][0]):,})" for n in names) + " |")
    print("|---|" + "---|" * len(names))
    for name, fn in [("ours", run_ours), ("bertopic defaults", run_bertopic)]:
        cells = []
        for n in names:
            x, _, texts = sets[n]
            labels, themes, s = timed(fn, x, texts)
            ok = labels[labels >= 0]
            cell = (
                f"{len(set(ok.tolist()))} / {np.bincount(ok).max() / len(labels):.0%} / "
                f"{np.mean(labels < 0):.0%} / {s:.1f}"
            )
            if themes is not None:
                cell += f" ({len(set(themes[themes >= 0].tolist()))} themes)"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def seed_table(sets) -> None:
    print("\n## Seeds: min pairwise ARI between seeds 0, 1, 2 (1.000 = identical)\n")
    print("| method | banking77 test | varied (all three) |")
    print("|---|---|---|")
    x_b, y_b, _ = sets["banking77"]
    x_v = sets["all three"][0]
    k = len(set(y_b.tolist()))
    for name, fn, extra in [
        ("ours (seed = row order)", run_ours, ()),
        ("bertopic defaults", run_bertopic, ()),
        (f"kmeans k={k}", run_kmeans, (k,)),
    ]:
        cells = []
        for x in (x_b, x_v):
            runs = [fn(x, *extra, seed=s)[0] for s in (0, 1, 2)]
            cells.append(
                f"{min(adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2)):.3f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def big_table(n: int, bertopic: bool) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    import cluster as bench_cluster

    from feedback_pipelines.clustering import cluster_window

    base = bench_cluster.build_base(bench_cluster_cache(), 1450, 7)
    frame, v = bench_cluster.load_window(base, n)
    y = frame["topic"].to_numpy()
    print(f"\n## {n:,} events (synthetic 14-day window, planted topics)\n")
    print("| method | wall s | CPU s | subtopics | ARI vs topics | themes | theme ARI |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    t, c = time.perf_counter(), time.process_time()
    result = cluster_window(frame, v, END)
    s, cpu = time.perf_counter() - t, time.process_time() - c
    links = frame[["feedback_id"]].merge(result.assignments, on="feedback_id")
    print(
        f"| cluster_window | {s:.1f} | {cpu:.1f} | {result.stats['clusters']} | "
        f"{adjusted_rand_score(y, links['cluster_id']):.3f} | {result.stats['themes']} | "
        f"{adjusted_rand_score(y, links['topic_id']):.3f} |",
        flush=True,
    )
    if bertopic:
        from feedback_pipelines.clustering.context import session_context

        x = session_context(v, frame["session_id"], 0.7)
        t, c = time.perf_counter(), time.process_time()
        labels, _ = run_bertopic(x)
        s2, cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"| bertopic full fit | {s2:.1f} | {cpu:.1f} | {labels.max() + 1} | "
            f"{adjusted_rand_score(y, labels):.3f} | | |"
        )
        print(f"\ncluster_window is {s2 / s:.1f}x faster than the full fit at {n:,} events")


def labels_table(sets, name: str = "all three", top: int = 15) -> None:
    """What a person reads: the biggest themes and subtopics, labels and two quotes each."""
    from feedback_pipelines.clustering import ClusteringConfig, cluster_window
    from feedback_pipelines.embedding import get_embedder

    x, _, texts = sets[name]
    events = pd.DataFrame(
        {
            "feedback_id": [str(i) for i in range(len(x))],
            "text": texts,
            "user_id": "u",
            "is_negative": False,
            "timestamp": pd.Timestamp("2026-11-20T12:00:00Z"),
        }
    )
    config = ClusteringConfig(context_weight=0.0)
    result = cluster_window(events, x, END, config=config, embed=get_embedder().embed)
    print(f"\n## Labels on the varied window ({name}, n={len(x):,}): themes\n")
    for row in result.topics.head(top).itertuples():
        print(f"- **{row.label}** ({row.size} events, {len(row.cluster_ids)} subtopics)")
    print(f"\n## Labels: the {top} biggest subtopics, two quotes each\n")
    themes = result.topics.set_index("topic_id")["label"]
    for row in result.clusters.head(top).itertuples():
        print(f"- **{row.label}** ({row.size}; theme: {themes[row.topic_id]})")
        for quote in row.quotes[:2]:
            print(f"  - “{quote[:160]}”")


def replay_table(sets, days: int = 21, window_days: int = 14, refit: bool = True) -> None:
    """Each set spread over `days` days, a trailing window a day, as the daily job runs it.

    Ids kept are measured apart on the days the registry was refitted (schedule or drift) and
    on the other days; `refit=False` is the registry seeded by its first day only.
    """
    from dataclasses import replace
    from datetime import timedelta

    from feedback_pipelines.clustering import ClusteringConfig, cluster_window

    config = ClusteringConfig(context_weight=0.0)
    how = f"every {config.registry.refit_every_days} days or on drift"
    if not refit:
        how = "off"
        config = replace(
            config, registry=replace(config.registry, refit_every_days=0, refit_drift=1.0)
        )
    print(f"\n## Day to day: each set over {days} days, {window_days}-day windows, refit {how}\n")
    print("| set | ids kept (min / mean) | refit days: ids kept | themes kept (min / mean) | "
          "subtopics at the end | born after day 1 | split | merged | faded | final ARI | "
          "s per day |")  # fmt: skip
    print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in ("banking77", "feedbackqa"):
        x, y, texts = sets[name]
        day_of = np.random.default_rng(0).integers(0, days, len(x))
        first = END - timedelta(days=days - 1)
        events = pd.DataFrame(
            {
                "feedback_id": [str(i) for i in range(len(x))],
                "text": texts,
                "user_id": "u",
                "is_negative": False,
                "ds": [first + timedelta(days=int(d)) for d in day_of],
            }
        )
        events["timestamp"] = pd.to_datetime(events["ds"]) + pd.Timedelta(hours=12)
        previous, before, kept, themes_kept, counts, seconds = None, None, [], [], {}, []
        refit_kept = []
        for k in range(days):
            rows = (day_of <= k) & (day_of > k - window_days)
            t = time.perf_counter()
            result = cluster_window(events[rows], x[rows], first + timedelta(days=k), previous,
                                    config)  # fmt: skip
            seconds.append(time.perf_counter() - t)
            links = result.assignments.set_index("feedback_id")
            if before is not None:
                both = before.index.intersection(links.index)
                b = before.loc[both]
                sub = b["cluster_id"] >= 0
                share = float(
                    (links.loc[both[sub], "cluster_id"] == b.loc[sub, "cluster_id"]).mean()
                )
                if result.stats.get("refit"):
                    refit_kept.append(f"d{k} {result.stats['refit']} {share:.3f}")
                else:
                    kept.append(share)
                th = b["topic_id"] >= 0
                themes_kept.append(
                    float((links.loc[both[th], "topic_id"] == b.loc[th, "topic_id"]).mean())
                )
                for e in result.lineage.query("level == 'subtopic'")["event"]:
                    counts[e] = counts.get(e, 0) + 1
            before = links[["cluster_id", "topic_id"]]
            previous = result.as_previous()
        ari = ""
        if y is not None:
            ids = links.loc[events.loc[rows, "feedback_id"], "cluster_id"].to_numpy()
            ari = f"{adjusted_rand_score(y[rows], ids):.3f}"
        print(
            f"| {name} (n={len(x):,}) | {min(kept):.3f} / {np.mean(kept):.3f} | "
            f"{', '.join(refit_kept) or '-'} | "
            f"{min(themes_kept):.3f} / {np.mean(themes_kept):.3f} | {result.stats['clusters']} | "
            f"{counts.get('born', 0)} | {counts.get('split', 0)} | {counts.get('merged', 0)} | "
            f"{counts.get('faded', 0)} | "
            f"{ari} | {np.mean(seconds):.1f} |",
            flush=True,
        )


_CACHE: list[Path] = []


def bench_cluster_cache() -> Path:
    return _CACHE[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=ROOT / "data" / "bench" / "topics")
    parser.add_argument(
        "--cluster-cache", type=Path, default=ROOT / "data" / "bench" / "cluster",
        help="bench/cluster.py's cache of the synthetic base window (for --big)",
    )  # fmt: skip
    parser.add_argument("--big", type=int, default=0, help="also time a window of N events")
    parser.add_argument("--no-bertopic-big", action="store_true")
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["banking", "varied", "seeds", "labels", "replay", "no-refit"],
    )
    args = parser.parse_args()
    _CACHE.append(args.cluster_cache)
    print(f"UMAP's first use in this process (numba compile): {umap_compile():.1f}s "
          "(in no timing below)")  # fmt: skip
    sets = embedded(args.cache)
    if "banking" not in args.skip:
        banking_table(sets)
    if "varied" not in args.skip:
        varied_table(sets)
    if "seeds" not in args.skip:
        seed_table(sets)
    if "labels" not in args.skip:
        labels_table(sets)
    if "replay" not in args.skip:
        replay_table(sets)
    if "no-refit" not in args.skip:
        replay_table(sets, refit=False)
    if args.big:
        big_table(args.big, not args.no_bertopic_big)


if __name__ == "__main__":
    main()
