"""Simulated windows with known truth, to measure how often the regression verdicts are wrong.

A regression monitor is only as useful as its false-alarm rate is low and its power is known.
`simulate_window` builds the three inputs of `compute_regressions` (feedback events, traces,
cluster assignments) for a baseline and a candidate model version whose per-cluster rates are
set by the caller; `calibrate` runs many seeded windows and reports how often anything was
flagged. The tests use it to pin the calibration figures (A/A false alarms, power against a
planted per-cluster rise); `bench/regressions.py` prints them for other sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from feedback_pipelines.regressions.compare import RegressionSettings, compute_regressions


@dataclass(frozen=True)
class SimulatedWindow:
    """The inputs of `compute_regressions` for one simulated window."""

    events: pd.DataFrame
    traces: pd.DataFrame
    assignments: pd.DataFrame


def zipf_sizes(rng: np.random.Generator, n_clusters: int, total: int, s: float = 1.0) -> np.ndarray:
    """Cluster sizes summing to about `total`, heavy-tailed as topic sizes are (share ∝ 1/rank^s).

    The ranks are shuffled so the largest cluster is not always cluster 0.
    """
    share = 1.0 / np.arange(1, n_clusters + 1) ** s
    sizes = np.maximum(1, np.round(total * share / share.sum())).astype(int)
    return rng.permutation(sizes)


def simulate_window(
    rng: np.random.Generator,
    sizes: Sequence[int],
    rates: Sequence[float],
    candidate_rates: Mapping[int, float] | None = None,
    candidate_sizes: Sequence[int] | None = None,
    *,
    with_traces: bool = True,
    correction_share: float = 0.25,
    abandonment: Sequence[float] | None = None,
    latency_median_ms: Sequence[float] | None = None,
    noise_share: float = 0.0,
    unassigned_traces_share: float = 0.0,
) -> SimulatedWindow:
    """One window with a baseline `v1` (first seen earlier) and a candidate `v2`.

    Every cluster k gets sizes[k] feedback events per version (candidate_sizes for `v2` if
    given), negative with probability rates[k] (candidate_rates[k] for `v2` where given), a
    share of negatives being corrections. With `with_traces`, each event has its own trace
    (abandoned with abandonment[k], latency log-normal around latency_median_ms[k], σ = 0.5),
    plus traces without feedback (`unassigned_traces_share` of them). `noise_share` of the
    events are assigned to the noise cluster (-1) with the mean rate. Everything else about the
    two versions is identical, so any flag other than a planted difference is a false alarm.

    Args:
        rng: Random generator (seeded by the caller).
        sizes: Events per cluster per version.
        rates: Negative rate per cluster (baseline, and candidate unless overridden).
        candidate_rates: Cluster -> candidate negative rate, for planted changes.
        candidate_sizes: Candidate's events per cluster (a traffic-mix shift), else `sizes`.
        with_traces: Also simulate traces (abandonment, latency).
        correction_share: Share of negative events that are corrections.
        abandonment: Abandonment rate per cluster (default 0.15).
        latency_median_ms: Median latency per cluster (default 1,500 ms).
        noise_share: Share of extra events in the noise cluster.
        unassigned_traces_share: Extra traces without feedback, as a share of events.

    Returns:
        The events, traces and assignments of the window.
    """
    n_clusters = len(sizes)
    abandonment = abandonment if abandonment is not None else [0.15] * n_clusters
    latency = latency_median_ms if latency_median_ms is not None else [1500.0] * n_clusters
    candidate_rates = dict(candidate_rates or {})
    # Per cluster only the draws (in the same order as ever, so a seed gives the same window);
    # one frame at the end: a frame per cluster was most of a window's cost.
    cols: dict[str, list] = {
        k: [] for k in ("cluster_id", "model_version", "start", "negative", "correction",
                        "seconds", "abandoned", "latency_ms")
    }  # fmt: skip
    for version, start in (("v1", "2026-11-01"), ("v2", "2026-11-08")):
        cluster_sizes = candidate_sizes if (version == "v2" and candidate_sizes) else sizes
        clusters = list(range(n_clusters))
        if noise_share > 0:
            clusters.append(-1)
        for k in clusters:
            if k == -1:
                n = round(noise_share * sum(cluster_sizes))
                rate, aband, lat = float(np.mean(rates)), float(np.mean(abandonment)), 1500.0
            else:
                n = int(cluster_sizes[k])
                rate = candidate_rates.get(k, rates[k]) if version == "v2" else rates[k]
                aband, lat = abandonment[k], latency[k]
            negative = rng.random(n) < rate
            cols["negative"].append(negative)
            cols["correction"].append(negative & (rng.random(n) < correction_share))
            cols["seconds"].append(rng.integers(0, 6 * 86400, n))
            cols["abandoned"].append(rng.random(n) < aband)
            cols["latency_ms"].append(lat * rng.lognormal(0.0, 0.5, n))
            cols["cluster_id"].append(np.full(n, k, dtype=np.int64))
            cols["model_version"].append(np.full(n, version, dtype=object))
            cols["start"].append(np.full(n, np.datetime64(start, "ns")))
    flat = {k: np.concatenate(v) for k, v in cols.items()}
    negative, correction = flat["negative"], flat["correction"]
    frame = pd.DataFrame(
        {
            "cluster_id": flat["cluster_id"],
            "model_version": flat["model_version"],
            "is_negative": negative,
            "kind": np.where(
                correction, "correction", np.where(negative, "thumbs_down", "thumbs_up")
            ).astype(object),
            "timestamp": pd.to_datetime(flat["start"]) + pd.to_timedelta(flat["seconds"], unit="s"),
            "abandoned": flat["abandoned"],
            "latency_ms": flat["latency_ms"],
        }
    )
    frame["feedback_id"] = [f"f{i}" for i in range(len(frame))]
    frame["trace_id"] = [f"t{i}" for i in range(len(frame))]
    frame["prompt_version"] = "p1"
    events = frame[
        [
            "feedback_id",
            "trace_id",
            "timestamp",
            "kind",
            "is_negative",
            "model_version",
            "prompt_version",
        ]
    ].copy()
    trace_cols = [
        "trace_id",
        "timestamp",
        "model_version",
        "prompt_version",
        "latency_ms",
        "abandoned",
    ]
    traces = frame[trace_cols].copy() if with_traces else frame[trace_cols].iloc[:0].copy()
    if with_traces and unassigned_traces_share > 0:
        extra = traces.sample(frac=unassigned_traces_share, random_state=rng.integers(2**31))
        extra = extra.assign(
            trace_id=[f"u{i}" for i in range(len(extra))],
            abandoned=rng.random(len(extra)) < float(np.mean(abandonment)),
            latency_ms=1500.0 * rng.lognormal(0.0, 0.5, len(extra)),
        )
        traces = pd.concat([traces, extra], ignore_index=True)
    assignments = frame[["feedback_id", "cluster_id"]].copy()
    return SimulatedWindow(events, traces, assignments)


@dataclass(frozen=True)
class CalibrationResult:
    """How often windows were flagged over a run of simulations."""

    windows: int
    any_regression: float  # share of windows with at least one is_regression
    any_improvement: float
    target_flagged: float  # share of windows where `target` said yes (power), NaN without one
    tests_per_window: float


def calibrate(
    make_window: Callable[[np.random.Generator], SimulatedWindow],
    seeds: Sequence[int],
    settings: RegressionSettings | None = None,
    target: Callable[[pd.DataFrame], bool] | None = None,
) -> CalibrationResult:
    """Run `compute_regressions` on one simulated window per seed and count the flags.

    Args:
        make_window: Builds a window from a seeded generator.
        seeds: One window per seed (fixed seeds make the figures reproducible).
        settings: Thresholds (defaults if None).
        target: Predicate on the result rows that counts as "the planted change was found".
    """
    regressions = improvements = found = tests = 0
    for seed in seeds:
        window = make_window(np.random.default_rng(seed))
        out = compute_regressions(window.events, window.traces, window.assignments, settings)
        regressions += bool(out["is_regression"].any())
        improvements += bool(out["is_improvement"].any())
        tests += int(out["q_value"].notna().sum())
        if target is not None:
            found += bool(target(out))
    n = max(len(seeds), 1)
    return CalibrationResult(
        windows=len(seeds),
        any_regression=regressions / n,
        any_improvement=improvements / n,
        target_flagged=found / n if target is not None else float("nan"),
        tests_per_window=tests / n,
    )


def realistic_aa_window(rng: np.random.Generator) -> SimulatedWindow:
    """An A/A window shaped like production traffic: nothing changed between the versions.

    10–15 clusters with heavy-tailed sizes (3,000–12,000 events per version in total), rates
    3–35%, cluster-specific abandonment and latency, 10% noise, 30% extra traces without
    feedback. Both versions are identical in every rate and in the topic mix.
    """
    n_clusters = int(rng.integers(10, 16))
    sizes = zipf_sizes(rng, n_clusters, int(rng.integers(3000, 12001)))
    return simulate_window(
        rng,
        sizes,
        rng.uniform(0.03, 0.35, n_clusters),
        abandonment=rng.uniform(0.08, 0.25, n_clusters),
        latency_median_ms=rng.uniform(800, 2500, n_clusters),
        noise_share=0.1,
        unassigned_traces_share=0.3,
    )


POWER_CLUSTER = 3


def power_window(rng: np.random.Generator, full: bool = False) -> SimulatedWindow:
    """Ten clusters; cluster 3 has 500 events per version and rises from 20% to 30% negative.

    The other clusters have 100–800 events per version and rates of 5–40%, unchanged. By default
    the window holds thumbs up/down only (the scenario is about the negative rate: 11 tests,
    10 clusters and the mix-adjusted one). With `full`, a quarter of negatives are corrections
    and traces carry abandonment and latency, all unchanged: four metrics, 44 tests sharing the
    false-discovery budget, so the same rise is found less often.
    """
    sizes = rng.integers(100, 801, 10)
    rates = rng.uniform(0.05, 0.40, 10)
    sizes[POWER_CLUSTER], rates[POWER_CLUSTER] = 500, 0.20
    return simulate_window(
        rng,
        sizes,
        rates,
        {POWER_CLUSTER: 0.30},
        with_traces=full,
        correction_share=0.25 if full else 0.0,
    )


def power_target(out: pd.DataFrame) -> bool:
    """The planted cluster is flagged as a negative-rate regression."""
    rows = out[
        (out["metric"] == "negative_rate")
        & (out["cluster_id"] == POWER_CLUSTER)
        & out["is_regression"].astype(bool)
    ]
    return not rows.empty
