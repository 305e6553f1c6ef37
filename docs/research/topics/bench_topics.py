"""Topics that hold on real data: the comparison table, in one process, on the same vectors.

Methods (each on the int8 MiniLM vectors cached by embed_cache.py):

- project: the snapshot's `cluster_window` (context off: these sets have no sessions; UMAP 5-d on a
  10k distinct sample, HDBSCAN with min_cluster_size 1% of the sample, nearest-exemplar assignment)
- bertopic: BERTopic's defaults, UMAP(15 neighbours, 5-d, cosine, min_dist 0) + HDBSCAN(10) on every point
- kmeans-k: k-means told the true k (Banking77 only), 10 inits
- hdbscan-pca50: HDBSCAN min_cluster_size 10, min_samples 1, EOM, on PCA-50 (no UMAP)
- agg-avg: agglomerative average linkage, cosine distance threshold 0.4 (no k told)
- ours-pca / ours: subtopics.fit_window with a PCA-64 or a spectral-64 Ward tree (no k told);
  'before' = core labels (noise = ambiguous or far), 'after' = noise placed if close enough

Scores: ARI with noise as one label (as shown to people) and with noise as singletons (ARIs),
AMI, V-measure, weighted purity over clustered rows, noise share, seconds. Varied windows
(FeedbackQA question+comment, OASST prompt+reply, LAMP instruction+edit, and the three merged):
clusters, largest cluster's share of events, noise. Seed agreement: min pairwise ARI over
seeds 0, 1, 2.

    PYTHONPATH=/work/before:/work/scratch/topics /work/main/.venv/bin/python bench_topics.py
        [--big N] [--skip-bertopic-big]    # + timing at N events (synthetic window, replicated)
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    adjusted_mutual_info_score,
    adjusted_rand_score,
    v_measure_score,
)

HERE = Path(__file__).resolve().parent
CACHE = HERE / "cache"
sys.path.insert(0, str(HERE))
warnings.filterwarnings("ignore")

import subtopics as st  # noqa: E402


def load(name: str):
    x = np.load(CACHE / f"{name}.npy")
    meta = json.loads((CACHE / f"{name}.json").read_text())
    return x, (np.array(meta["labels"]) if meta["labels"] else None), meta["texts"]


def purity(y, labels) -> float:
    m = labels >= 0
    if not m.any():
        return float("nan")
    return pd.crosstab(labels[m], y[m]).max(axis=1).sum() / m.sum()


def singletons(labels):
    out = labels.copy()
    m = out < 0
    out[m] = out.max() + 1 + np.arange(m.sum())
    return out


def score(y, labels) -> dict:
    return {
        "clusters": len(set(labels[labels >= 0].tolist())),
        "ARI": adjusted_rand_score(y, labels),
        "ARIs": adjusted_rand_score(y, singletons(labels)),
        "AMI": adjusted_mutual_info_score(y, labels),
        "V": v_measure_score(y, labels),
        "purity": purity(y, labels),
        "noise": float(np.mean(labels < 0)),
    }


def shape(labels) -> dict:
    ok = labels[labels >= 0]
    return {
        "clusters": len(set(ok.tolist())),
        "largest": float(np.bincount(ok).max() / len(labels)) if len(ok) else 1.0,
        "noise": float(np.mean(labels < 0)),
    }


# ------------------------------------------------------------------------------------ methods


def run_project(x, texts, seed=0):
    from datetime import date

    from feedback_pipelines.clustering import ClusteringConfig, FitConfig, cluster_window

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
    config = ClusteringConfig(context_weight=0.0, seed=seed, fit=FitConfig(seed=seed))
    result = cluster_window(events, x, date(2026, 11, 20), config=config)
    a = result.assignments.set_index("feedback_id").loc[events["feedback_id"], "cluster_id"]
    return a.to_numpy().astype(np.int64), {}


def run_bertopic(x, texts=None, seed=0, random_state=True):
    import hdbscan
    import umap

    red = umap.UMAP(
        n_neighbors=15,
        n_components=5,
        min_dist=0.0,
        metric="cosine",
        random_state=seed if random_state else None,
    ).fit_transform(x)
    labels = hdbscan.HDBSCAN(min_cluster_size=10, metric="euclidean").fit_predict(red)
    return labels.astype(np.int64), {}


def run_kmeans(x, k, seed=0):
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=seed).fit_predict(x).astype(np.int64), {}


def run_hdbscan_pca(x, texts=None, seed=0):
    import hdbscan
    from sklearn.decomposition import PCA

    p = st.normalize(PCA(50, random_state=seed).fit_transform(x))
    labels = hdbscan.HDBSCAN(min_cluster_size=10, min_samples=1).fit_predict(p)
    return labels.astype(np.int64), {}


def run_agg_average(x, texts=None, seed=0, max_sample=8000):
    from sklearn.cluster import AgglomerativeClustering

    xs = st.normalize(x)
    idx = np.arange(len(xs))
    if len(xs) > max_sample:
        idx = np.sort(np.random.default_rng(seed).choice(len(xs), max_sample, replace=False))
    lab = AgglomerativeClustering(
        n_clusters=None, distance_threshold=0.4, linkage="average", metric="cosine"
    ).fit_predict(xs[idx])
    means, _ = st.group_means(xs[idx], lab, lab.max() + 1)
    return st.nearest(xs, st.normalize(means))[0], {}


def run_ours(x, texts=None, seed=0, config=st.SubtopicConfig()):
    fit = st.fit_window(x, seed, config)
    return fit.labels, {"core": fit.core_labels, "fit": fit}


def timed(fn, *args, **kwargs):
    t = time.perf_counter()
    labels, extra = fn(*args, **kwargs)
    return labels, extra, time.perf_counter() - t


# ------------------------------------------------------------------------------------ sections


def fmt_row(name, d, seconds):
    return (
        f"| {name:<22} | {d['clusters']:>4} | {d['ARI']:.3f} | {d['ARIs']:.3f} | {d['AMI']:.3f} | "
        f"{d['V']:.3f} | {d['purity']:.3f} | {d['noise']:6.1%} | {seconds:6.1f} |"
    )


def banking_table(methods) -> None:
    x, y, texts = load("banking77_test")
    print(f"\n## Banking77 test: {len(x)} queries, 77 intents (no method but kmeans-k is told k)\n")
    print("| method | clusters | ARI | ARIs | AMI | V | purity | noise | s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, fn in methods.items():
        labels, extra, s = timed(fn, x, texts)
        if "core" in extra:
            print(fmt_row(name + " before", score(y, extra["core"]), s))
            print(fmt_row(name + " after", score(y, labels), s))
            themes = st.merge_themes(x, labels)
            t = np.where(labels >= 0, themes[np.maximum(labels, 0)], -1)
            ct = pd.crosstab(y, t)
            vals = ct.drop(columns=[-1], errors="ignore").values
            top1 = vals.max(1) / ct.values.sum(1)
            top2 = np.sort(vals, 1)[:, -2:].sum(1) / ct.values.sum(1)
            print(
                f"|   themes of {name:<10} | {themes.max() + 1:>4} | {adjusted_rand_score(y, t):.3f} "
                f"| | | {v_measure_score(y, t):.3f} | | | | intents >=80% in 1 theme: "
                f"{np.mean(top1 >= 0.8):.0%}, in <=2 themes: {np.mean(top2 >= 0.8):.0%}; "
                f"largest theme {np.bincount(t[t >= 0]).max() / len(t):.0%} |"
            )
        else:
            print(fmt_row(name, score(y, labels), s), flush=True)


def varied_table(methods) -> None:
    sets = {name: load(name) for name in ("feedbackqa", "oasst", "lamp")}
    merged = (
        np.vstack([v[0] for v in sets.values()]),
        None,
        sum((v[2] for v in sets.values()), []),
    )
    sets["all three"] = merged
    print("\n## Varied real windows: clusters / largest cluster's share of events / noise / s\n")
    print("| method | " + " | ".join(f"{k} (n={len(v[0])})" for k, v in sets.items()) + " |")
    print("|---|" + "---|" * len(sets))
    for name, fn in methods.items():
        cells = []
        for x, _, texts in sets.values():
            labels, extra, s = timed(fn, x, texts)
            d = shape(labels)
            cell = f"{d['clusters']} / {d['largest']:.0%} / {d['noise']:.0%} / {s:.1f}"
            if "core" in extra:
                themes = st.merge_themes(x, labels)
                t = themes[labels[labels >= 0]]
                cell += f" (themes {themes.max() + 1}, largest {np.bincount(t).max() / len(labels):.0%})"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def seed_table(methods) -> None:
    sets = {"banking77 test": load("banking77_test")}
    fqa, oa, lamp = load("feedbackqa"), load("oasst"), load("lamp")
    sets["varied (all three)"] = (
        np.vstack([fqa[0], oa[0], lamp[0]]),
        None,
        fqa[2] + oa[2] + lamp[2],
    )
    tr, te = load("banking77_train"), load("banking77_test")
    sets["banking77 train+test (13k > sample)"] = (np.vstack([tr[0], te[0]]), None, tr[2] + te[2])
    print("\n## Seed agreement: min pairwise ARI between seeds 0, 1, 2 (1.000 = identical)\n")
    print("| method | " + " | ".join(sets) + " |")
    print("|---|" + "---|" * len(sets))
    for name, fn in methods.items():
        cells = []
        for x, _, texts in sets.values():
            runs = [fn(x, texts, seed=s)[0] for s in (0, 1, 2)]
            cells.append(
                f"{min(adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2)):.3f}"
            )
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def big_table(n: int, bertopic: bool, project: bool) -> None:
    sys.path.insert(0, "/work/before/bench")
    import cluster as bench_cluster

    from feedback_pipelines.clustering.context import session_context

    base = next((CACHE / "synth").glob("base-*.npz"))
    frame, v = bench_cluster.load_window(base, n)
    x = session_context(v, frame["session_id"], 0.7)  # what the pipeline clusters
    y = frame["topic"].to_numpy()
    print(f"\n## Timing at {n:,} events (synthetic 14-day window, 15 planted topics, context 0.7)\n")
    print("| method | wall s | CPU s | clusters | ARI vs topics | themes | theme ARI | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    t, c = time.perf_counter(), time.process_time()
    fit = st.fit_window(x, 0)
    s, cpu = time.perf_counter() - t, time.process_time() - c
    themes = st.merge_themes(x, fit.labels)
    tl = np.where(fit.labels >= 0, themes[np.maximum(fit.labels, 0)], -1)
    print(
        f"| ours | {s:.1f} | {cpu:.1f} | {fit.n_subtopics} | {adjusted_rand_score(y, fit.labels):.3f} | "
        f"{themes.max() + 1} | {adjusted_rand_score(y, tl):.3f} | {fit.stats} |",
        flush=True,
    )
    runs = [fit.labels] + [st.fit_window(x, s_).labels for s_ in (1, 2)]
    agree = min(adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2))
    print(f"| ours, seeds 0-2 | | | | min pairwise ARI {agree:.3f} | | | hash sample: seed unused |")
    rnd = st.SubtopicConfig(sampling="random")
    runs = [st.fit_window(x, s_, rnd).labels for s_ in (0, 1, 2)]
    agree = min(adjusted_rand_score(a, b) for a, b in itertools.combinations(runs, 2))
    themes = [st.merge_themes(x, r)[r] for r in runs]
    tagree = min(adjusted_rand_score(a, b) for a, b in itertools.combinations(themes, 2))
    print(f"| ours, random samples 0-2 | | | | min pairwise ARI {agree:.3f} | | {tagree:.3f} | "
          "three disjoint-ish 8k samples: intrinsic sensitivity |", flush=True)
    if project:
        from datetime import date

        from feedback_pipelines.clustering import cluster_window

        import umap  # noqa: F401

        t, c = time.perf_counter(), time.process_time()
        res = cluster_window(frame, v, date(2026, 11, 20))
        s, cpu = time.perf_counter() - t, time.process_time() - c
        lab = frame[["feedback_id"]].merge(res.assignments, on="feedback_id")["cluster_id"]
        print(
            f"| project cluster_window | {s:.1f} | {cpu:.1f} | {res.stats['clusters']} | "
            f"{adjusted_rand_score(y, lab):.3f} | | | UMAP compiled before timing |",
            flush=True,
        )
    if bertopic:
        t, c = time.perf_counter(), time.process_time()
        labels, _ = run_bertopic(x, random_state=False)
        s, cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"| bertopic full fit | {s:.1f} | {cpu:.1f} | {labels.max() + 1} | "
            f"{adjusted_rand_score(y, labels):.3f} | | | UMAP compiled before timing; "
            f"noise {np.mean(labels < 0):.0%} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--big", type=int, default=0, help="also time a window of N events")
    parser.add_argument("--skip-bertopic-big", action="store_true")
    parser.add_argument("--skip-project-big", action="store_true")
    parser.add_argument("--sections", default="banking,varied,seeds")
    args = parser.parse_args()
    t = time.perf_counter()
    import umap

    umap.UMAP(n_neighbors=5, n_components=2).fit_transform(np.random.rand(200, 8))
    print(f"numba/UMAP first use in this process: {time.perf_counter() - t:.1f}s (not in any timing)")
    methods = {
        "project cluster_window": run_project,
        "bertopic defaults": run_bertopic,
        "kmeans told k=77": lambda x, texts=None, seed=0: run_kmeans(x, 77, seed),
        "hdbscan pca50": run_hdbscan_pca,
        "agg average 0.4": run_agg_average,
        "ours-pca": lambda x, texts=None, seed=0: run_ours(
            x, texts, seed, st.SubtopicConfig(space="pca", cut_height=0.04)
        ),
        "ours": run_ours,
    }
    sections = args.sections.split(",")
    if "banking" in sections:
        banking_table(methods)
    untold = {k: v for k, v in methods.items() if not k.startswith("kmeans")}
    if "varied" in sections:
        varied_table(untold)
    if "seeds" in sections:
        seed_table({k: methods[k] for k in ("project cluster_window", "bertopic defaults",
                                            "kmeans told k=77", "ours")})
    if args.big:
        big_table(args.big, not args.skip_bertopic_big, not args.skip_project_big)


if __name__ == "__main__":
    main()
