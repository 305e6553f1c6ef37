"""Day-by-day replay of releases: how often does a daily-read verdict flag, and how fast?

    .venv/bin/python bench/regressions.py --daily [--releases 500] [--seed 0] [--replace]
        [--scenario aa|planted|planted_full|all] [--no-window] [--tau 0.05]
        [--min-effect-test null|estimate] [--baseline-from window|release] [--jobs 1]

(`bench/regressions.py --daily` runs this module.)

A release is simulated with the project's own `calibration.simulate_window` (one call per
release, every row then given a day): the baseline `v1` serves from day -13; the candidate `v2`
is released on day 0, either beside the baseline at the same volume (default) or replacing it
(`--replace`: the baseline stops on day -1). Each version's daily volume per topic is
Poisson(window size / 14). Every morning of days 1..30 two verdicts are read:

* window: today's test, `compute_regressions` on the trailing 14-day window (default settings,
  first_seen history, cluster assignments);
* always_valid: `sequential.sequential_verdicts` on the counts accumulated since the release
  (candidate since day 0; baseline since day -14, i.e. its pre-release window plus everything
  since, or since day 0 with `--baseline-from release`), carrying yesterday's flags.

Scenarios: `aa` draws `calibration.realistic_aa_window`'s parameters (10-15 topics, 3,000-12,000
events per version per 14 days, four metrics; nothing changes: every flag is false); `planted`
draws `calibration.power_window`'s (ten topics, negative feedback only; topic 3 has 500 events
per version per 14 days and rises from 20% to 30% negative); `planted_full` the same with
corrections, abandonment and latency (four metrics).

Reported per scenario and test: P(at least one false regression within 1, 7, 14, 30 days),
P(false improvement within 30 days); for planted scenarios the planted topic's first-flag day
(median, share flagged by day 7, 14, 30) and how often its flag disappeared again afterwards.
"""

from __future__ import annotations

import argparse
import math
import pickle
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from feedback_pipelines.regressions import calibration as cal
from feedback_pipelines.regressions import sequential as sq
from feedback_pipelines.regressions.compare import (
    RegressionSettings,
    _prepare_events,
    _prepare_traces,
    compute_regressions,
)

FIRST_DAY = -13  # the baseline's first day
DAYS = 30  # mornings read after the release
WINDOW = 14
DAY0 = pd.Timestamp("2026-11-01")
METRICS = ("negative_rate", "correction_rate", "abandonment_rate", "latency_p95")
TARGET = ("negative_rate", 3)  # the planted topic of calibration.power_window
# Rows that truly changed besides the target ((metric, cluster), -1 = mix-adjusted row).
CHANGED = {
    "planted": [("negative_rate", -1)],
    "planted_full": [("negative_rate", -1), ("correction_rate", 3), ("correction_rate", -1)],
}


@dataclass
class ReleaseSpec:
    """Per-topic sizes (events per version per 14 days) and rates of one simulated release."""

    sizes: np.ndarray
    rates: np.ndarray
    candidate_rates: dict[int, float] = field(default_factory=dict)
    kwargs: dict = field(default_factory=dict)
    target: tuple[str, int] | None = None


def release_spec(scenario: str, rng: np.random.Generator) -> ReleaseSpec:
    """Draw a release's parameters exactly as the calibration windows do (same draw order)."""
    if scenario == "aa":
        n = int(rng.integers(10, 16))
        sizes = cal.zipf_sizes(rng, n, int(rng.integers(3000, 12001)))
        rates = rng.uniform(0.03, 0.35, n)
        return ReleaseSpec(
            sizes,
            rates,
            kwargs=dict(
                abandonment=rng.uniform(0.08, 0.25, n),
                latency_median_ms=rng.uniform(800, 2500, n),
                noise_share=0.1,
                unassigned_traces_share=0.3,
            ),
        )
    if scenario in ("planted", "planted_full"):
        full = scenario == "planted_full"
        sizes = rng.integers(100, 801, 10)
        rates = rng.uniform(0.05, 0.40, 10)
        sizes[cal.POWER_CLUSTER], rates[cal.POWER_CLUSTER] = 500, 0.20
        return ReleaseSpec(
            sizes,
            rates,
            {cal.POWER_CLUSTER: 0.30},
            dict(with_traces=full, correction_share=0.25 if full else 0.0),
            TARGET,
        )
    raise ValueError(f"unknown scenario {scenario!r}")


@dataclass(frozen=True)
class SimulatedRelease:
    """All traffic of one release, days FIRST_DAY..DAYS; `day` columns give each row's day."""

    events: pd.DataFrame
    traces: pd.DataFrame
    assignments: pd.DataFrame


def simulate_release(
    rng: np.random.Generator, spec: ReleaseSpec, replace: bool
) -> SimulatedRelease:
    """The release's traffic from one `calibration.simulate_window` call.

    Each version's total per topic is Poisson(days served × window size / 14) and every event
    gets a uniform day within its version's span (the baseline from FIRST_DAY, to day -1 when
    replaced, else to DAYS; the candidate from day 0): the daily volumes are then independent
    Poisson(window size / 14), as if drawn day by day. A trace shares its feedback's day.
    """
    lam = np.asarray(spec.sizes, float) / WINDOW
    base_days = (FIRST_DAY, -1 if replace else DAYS)
    cand_days = (0, DAYS)
    span_b = base_days[1] - base_days[0] + 1
    span_c = cand_days[1] - cand_days[0] + 1
    w = cal.simulate_window(
        rng,
        [int(v) for v in rng.poisson(lam * span_b)],
        list(spec.rates),
        spec.candidate_rates,
        candidate_sizes=[int(v) for v in rng.poisson(lam * span_c)],
        **spec.kwargs,
    )

    def draw_days(versions: pd.Series) -> np.ndarray:
        cand = (versions == "v2").to_numpy()
        lo = np.where(cand, cand_days[0], base_days[0])
        hi = np.where(cand, cand_days[1], base_days[1])
        return lo + np.floor(rng.random(len(versions)) * (hi - lo + 1)).astype(int)

    ev = w.events.copy()
    ev["day"] = draw_days(ev["model_version"])
    day_of_trace = pd.Series(ev["day"].to_numpy(), index=ev["trace_id"].to_numpy())
    tr = w.traces.copy()
    tr["day"] = tr["trace_id"].map(day_of_trace)
    extra = tr["day"].isna()
    tr.loc[extra, "day"] = draw_days(tr.loc[extra, "model_version"])
    tr["day"] = tr["day"].astype(int)
    for frame in (ev, tr):
        seconds = rng.integers(0, 86400, len(frame))
        frame["timestamp"] = DAY0 + pd.to_timedelta(frame["day"] * 86400 + seconds, unit="s")
    asg = w.assignments.assign(day=ev["day"].to_numpy())
    return SimulatedRelease(ev, tr, asg)


def _history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model_version": ["v1", "v2"],
            "prompt_version": ["p1", "p1"],
            "first_seen": [DAY0 + pd.Timedelta(days=FIRST_DAY), DAY0],
        }
    )


def _flags(out: pd.DataFrame, column: str) -> set[tuple[str, int]]:
    """(metric, cluster id or -1 for the mix-adjusted/overall row) of the flagged rows."""
    rows = out[(out["dimension"] == "model_version") & out[column].astype(bool)]
    return {
        (r.metric, -1 if pd.isna(r.cluster_id) else int(r.cluster_id))
        for r in rows.itertuples(index=False)
    }


class _Counts:
    """Per-day counts per (version, metric, stratum); latency: exceedances of fixed thresholds."""

    def __init__(self, release: SimulatedRelease):
        self.days = list(range(FIRST_DAY, DAYS + 1))
        ev = _prepare_events(release.events, release.assignments)
        tr = _prepare_traces(release.traces, ev)
        assert len(ev) == len(release.events) and len(tr) == len(release.traces)
        ev_day = release.events["day"].to_numpy() - FIRST_DAY
        tr_day = release.traces["day"].to_numpy() - FIRST_DAY
        strata = sorted(set(ev["stratum"]) | set(tr["stratum"]))
        self.strata = np.array(strata, dtype=int)
        index = {s: i for i, s in enumerate(strata)}
        es = ev["stratum"].map(index).to_numpy(int)
        ts = tr["stratum"].map(index).to_numpy(int)
        ev_v = (ev["model_version"] == "v1").to_numpy(int)  # 0 = candidate, 1 = baseline
        tr_v = (tr["model_version"] == "v1").to_numpy(int)
        lat = tr["latency_p95"].to_numpy(float)
        # thresholds: the baseline's pre-release p95, overall and per topic
        pre = (tr_v == 1) & (tr_day < -FIRST_DAY) & ~np.isnan(lat)
        overall = float(np.quantile(lat[pre], 0.95)) if pre.any() else math.inf
        per = np.full(len(strata), overall)
        for i in range(len(strata)):
            values = lat[pre & (ts == i)]
            if len(values) >= 20:
                per[i] = float(np.quantile(values, 0.95))
        k, m, n_days = len(strata), len(METRICS), len(self.days)
        size = n_days * 2 * k

        def count(day, version, stratum, weights=None):
            flat = (day * 2 + version) * k + stratum
            return np.bincount(flat, weights=weights, minlength=size).reshape(n_days, 2, k)

        shape = (n_days, 2, m, k)
        self.x, self.n, self.x_pooled = np.zeros(shape), np.zeros(shape), np.zeros(shape)
        for j, (day, ver, st, y) in enumerate(
            [
                (ev_day, ev_v, es, ev["negative_rate"].to_numpy(float)),
                (ev_day, ev_v, es, ev["correction_rate"].to_numpy(float)),
                (tr_day, tr_v, ts, tr["abandonment_rate"].to_numpy(float)),
            ]
        ):
            self.n[:, :, j] = count(day, ver, st)
            self.x[:, :, j] = self.x_pooled[:, :, j] = count(day, ver, st, y)
        has = ~np.isnan(lat)
        d3, v3, s3, l3 = tr_day[has], tr_v[has], ts[has], lat[has]
        self.n[:, :, 3] = count(d3, v3, s3)
        self.x[:, :, 3] = count(d3, v3, s3, (l3 > per[s3]).astype(float))
        self.x_pooled[:, :, 3] = count(d3, v3, s3, (l3 > overall).astype(float))
        self._cumulate()

    def _cumulate(self) -> None:
        self.cx, self.cn, self.cxp = (np.cumsum(a, axis=0) for a in (self.x, self.n, self.x_pooled))

    def state(self) -> dict:
        """Plain arrays (for the cache)."""
        return {k: getattr(self, k) for k in ("days", "strata", "x", "n", "x_pooled")}

    @classmethod
    def from_state(cls, state: dict) -> _Counts:
        self = cls.__new__(cls)
        for key, value in state.items():
            setattr(self, key, value)
        self._cumulate()
        return self

    def between(self, first: int, last: int):
        """Counts summed over days first..last (inclusive): arrays (2, metrics, strata)."""
        pos = np.searchsorted(self.days, [first, last + 1])
        lo, hi = pos[0] - 1, pos[1] - 1

        def span(c):
            top = c[hi] if hi >= 0 else np.zeros(c.shape[1:])
            return top - (c[lo] if lo >= 0 else 0.0)

        return span(self.cx), span(self.cn), span(self.cxp)

    def table(self, cand: tuple[int, int], base: tuple[int, int]) -> pd.DataFrame:
        """The `sequential_verdicts` input: cumulative counts per metric and stratum."""
        x1, n1, xp1 = (a[0] for a in self.between(*cand))
        x2, n2, xp2 = (a[1] for a in self.between(*base))
        m, k = n1.shape
        frame = pd.DataFrame(
            {
                "metric": np.repeat(METRICS, k),
                "stratum": np.tile(self.strata, m),
                "x_candidate": x1.ravel(),
                "n_candidate": n1.ravel(),
                "x_baseline": x2.ravel(),
                "n_baseline": n2.ravel(),
                "x_candidate_pooled": xp1.ravel(),
                "x_baseline_pooled": xp2.ravel(),
            }
        )
        frame = frame[(frame["n_candidate"] > 0) | (frame["n_baseline"] > 0)]
        # a metric without any unit on one side is not a comparison at all
        keep = frame.groupby("metric")[["n_candidate", "n_baseline"]].transform("sum")
        frame = frame[(keep["n_candidate"] > 0) & (keep["n_baseline"] > 0)]
        frame.insert(0, "dimension", "model_version")
        frame.insert(1, "model_version", "v2")
        frame.insert(2, "candidate_version", "v2")
        frame.insert(3, "baseline_version", "v1")
        return frame.reset_index(drop=True)


@dataclass(frozen=True)
class ReplayConfig:
    """What one replay run does."""

    scenario: str = "aa"
    replace: bool = False
    window: bool = True  # also run today's window test (compute_regressions every day)
    baseline_from: str = "window"  # "window": since day -14; "release": since day 0
    sequential: sq.SequentialSettings = field(default_factory=sq.SequentialSettings)
    regression: RegressionSettings = field(default_factory=RegressionSettings)


def _window_flags(release: SimulatedRelease, config: ReplayConfig) -> list:
    """Today's test read every morning: flags of `compute_regressions` on the trailing window."""
    history = _history()
    ev_day = release.events["day"].to_numpy()
    tr_day = release.traces["day"].to_numpy()
    flags = []
    for d in range(1, DAYS + 1):
        first = d - WINDOW + 1
        if config.replace and first >= 0:  # no baseline left in the window: nothing compared
            flags.append((set(), set(), False))
            continue
        in_ev = (ev_day >= first) & (ev_day <= d)
        in_tr = (tr_day >= first) & (tr_day <= d)
        out = compute_regressions(
            release.events[in_ev],
            release.traces[in_tr],
            release.assignments[in_ev],
            config.regression,
            first_seen=history,
        )
        compared = bool(out.loc[out["dimension"] == "model_version", "p_value"].notna().any())
        flags.append((_flags(out, "is_regression"), _flags(out, "is_improvement"), compared))
    return flags


def _simulate(seed: int, config: ReplayConfig, cache_dir: str | None) -> tuple:
    """(spec, window-test flags or None, counts) of one release, from the cache when there."""
    path = None
    if cache_dir:
        mode = "replace" if config.replace else "beside"
        path = Path(cache_dir) / f"{config.scenario}_{mode}_{seed}.pkl"
        if path.exists():
            with path.open("rb") as fh:
                cached = pickle.load(fh)
            if cached["window"] is not None or not config.window:
                spec = ReleaseSpec(**cached["spec"])
                return spec, cached["window"], _Counts.from_state(cached["counts"])
    rng = np.random.default_rng(seed)
    spec = release_spec(config.scenario, rng)
    release = simulate_release(rng, spec, config.replace)
    window = _window_flags(release, config) if config.window else None
    counts = _Counts(release)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            pickle.dump({"spec": asdict(spec), "window": window, "counts": counts.state()}, fh)
    return spec, window, counts


def replay_release(seed: int, config: ReplayConfig, cache_dir: str | None = None) -> dict:
    """One release, days 1..30: the first day of each kind of flag under both tests.

    In planted scenarios the planted topic's row is the target. Rows whose true difference is
    not zero either are neither hits nor false flags: the mix-adjusted negative rate (the pooled
    rate did rise, by about a tenth of the planted rise) and, in `planted_full`, the correction
    rate of the planted topic and its mix-adjusted row (a quarter of negatives are corrections:
    5% -> 7.5%). Every other flag is false.
    """
    spec, window, counts = _simulate(seed, config, cache_dir)
    daily: dict[str, list[tuple[set, set, bool]]] = {}
    if config.window and window is not None:
        daily["window"] = window
    base_first = -WINDOW if (config.replace or config.baseline_from == "window") else 0
    prev = None
    flags = []
    for d in range(1, DAYS + 1):
        base_last = -1 if config.replace else d
        table = counts.table((0, d), (base_first, base_last))
        out = sq.sequential_verdicts(table, prev, config.sequential, day=d)
        prev = out
        compared = bool(out["e_value"].notna().any())
        flags.append((_flags(out, "is_regression"), _flags(out, "is_improvement"), compared))
    daily["always_valid"] = flags
    result: dict = {"seed": seed}
    target = spec.target
    neutral = {target, *CHANGED.get(config.scenario, ())} if target else set()
    for test, per_day in daily.items():
        false_reg = [bool(reg - neutral) for reg, _, _ in per_day]
        false_imp = [bool(imp - neutral) for _, imp, _ in per_day]
        hit = [target in reg for reg, _, _ in per_day] if target else [False] * DAYS
        ran = [c for _, _, c in per_day]
        first = _first(hit)
        result[f"{test}_false_reg_day"] = _first(false_reg)
        result[f"{test}_false_imp_day"] = _first(false_imp)
        result[f"{test}_target_day"] = first
        result[f"{test}_target_flicker"] = bool(first) and any(
            not h and r for h, r in zip(hit[first:], ran[first:], strict=True)
        )
        result[f"{test}_days_compared"] = int(sum(ran))
    return result


def _first(flags: Sequence[bool]) -> int:
    """First day (1-based) a flag is True, 0 if never."""
    return next((i + 1 for i, f in enumerate(flags) if f), 0)


def daily_replay(
    config: ReplayConfig, seeds: Sequence[int], jobs: int = 1, cache_dir: str | None = None
) -> pd.DataFrame:
    """Replay one release per seed (fixed seeds: reproducible); one row per release.

    With `cache_dir`, each release's simulation (window-test flags and daily counts) is kept,
    so other settings of the always-valid test can be replayed on the same releases quickly.
    """
    n = len(seeds)
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            rows = list(pool.map(replay_release, seeds, [config] * n, [cache_dir] * n, chunksize=4))
    else:
        rows = [replay_release(s, config, cache_dir) for s in seeds]
    return pd.DataFrame(rows)


def summarize(results: pd.DataFrame, test: str, planted: bool) -> dict[str, float]:
    """The issue's figures for one test from `daily_replay` rows."""
    n = len(results)
    reg = results[f"{test}_false_reg_day"].to_numpy()
    imp = results[f"{test}_false_imp_day"].to_numpy()
    out: dict[str, float] = {"releases": n}
    for k in (1, 7, 14, 30):
        out[f"false_reg_by_{k}"] = float(((reg > 0) & (reg <= k)).mean())
    out["false_imp_by_30"] = float((imp > 0).mean())
    if planted:
        day = results[f"{test}_target_day"].to_numpy()
        hit = day > 0
        inf_day = np.where(hit, day, 10**6)
        med = float(np.quantile(inf_day, 0.5, method="inverted_cdf"))
        out["target_median_day"] = med if med < 10**6 else math.inf
        for k in (3, 7, 14, 30):
            out[f"target_by_{k}"] = float((hit & (day <= k)).mean())
        flicker = results.loc[hit, f"{test}_target_flicker"]
        out["target_flicker"] = float(flicker.mean()) if hit.any() else math.nan
        out["target_flagged"] = int(hit.sum())
        out["target_flickered"] = int(results.loc[hit, f"{test}_target_flicker"].sum())
    out["days_compared"] = float(results[f"{test}_days_compared"].mean())
    return out


def _pct(share: float, n: int) -> str:
    if isinstance(share, float) and math.isnan(share):
        return "n/a"
    half = 1.96 * math.sqrt(max(share * (1 - share), 1e-12) / max(n, 1))
    return f"{share:6.1%} ±{half:.1%}"


def report(results: pd.DataFrame, config: ReplayConfig, seconds: float) -> str:
    planted = config.scenario != "aa"
    lines = [
        f"== scenario={config.scenario} mode={'replace' if config.replace else 'beside'} "
        f"baseline_from={config.baseline_from} releases={len(results)} "
        f"tau={config.sequential.tau} min_effect_test={config.sequential.min_effect_test} "
        f"({seconds / max(len(results), 1):.2f} s/release)"
    ]
    tests = ["window", "always_valid"] if config.window else ["always_valid"]
    for test in tests:
        s = summarize(results, test, planted)
        n = len(results)
        line = (
            f"  {test:13s} false regression by day 1 {_pct(s['false_reg_by_1'], n)} | 7 "
            f"{_pct(s['false_reg_by_7'], n)} | 14 {_pct(s['false_reg_by_14'], n)} | 30 "
            f"{_pct(s['false_reg_by_30'], n)}; "
            f"false improvement by 30 {_pct(s['false_imp_by_30'], n)}"
            f"; days compared {s['days_compared']:.1f}"
        )
        lines.append(line)
        if planted:
            lines.append(
                f"  {'':13s} planted topic: median first flag day {s['target_median_day']}, "
                f"by day 3 {_pct(s['target_by_3'], n)}, 7 {_pct(s['target_by_7'], n)}, "
                f"14 {_pct(s['target_by_14'], n)}, 30 {_pct(s['target_by_30'], n)}; "
                f"flag disappeared later in {s['target_flickered']} of {s['target_flagged']}"
            )
    return "\n".join(lines)


def add_daily_arguments(parser: argparse.ArgumentParser) -> None:
    """The `--daily` options (to be added to bench/regressions.py's parser)."""
    parser.add_argument("--daily", action="store_true", help="day-by-day release replay")
    parser.add_argument("--replace", action="store_true", help="candidate replaces the baseline")
    parser.add_argument("--releases", type=int, default=500)
    parser.add_argument(
        "--scenario", default="all", choices=["aa", "planted", "planted_full", "all"]
    )
    parser.add_argument("--no-window", action="store_true", help="skip today's window test")
    parser.add_argument("--tau", type=float, default=sq.SequentialSettings.tau)
    parser.add_argument(
        "--min-effect-test",
        default=sq.SequentialSettings.min_effect_test,
        choices=["null", "estimate"],
    )
    parser.add_argument("--baseline-from", default="window", choices=["window", "release"])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--save", default=None, help="write per-release rows to this CSV prefix")
    parser.add_argument("--cache", default=None, help="directory keeping simulated releases")


def run_daily(args: argparse.Namespace) -> None:
    scenarios = ["aa", "planted", "planted_full"] if args.scenario == "all" else [args.scenario]
    for scenario in scenarios:
        config = ReplayConfig(
            scenario=scenario,
            replace=args.replace,
            window=not args.no_window,
            baseline_from=args.baseline_from,
            sequential=replace(
                sq.SequentialSettings(), tau=args.tau, min_effect_test=args.min_effect_test
            ),
        )
        offset = 0 if scenario == "aa" else 1000
        seeds = range(args.seed + offset, args.seed + offset + args.releases)
        start = time.perf_counter()
        results = daily_replay(config, seeds, args.jobs, args.cache)
        seconds = time.perf_counter() - start
        if args.save:
            mode = "replace" if args.replace else "beside"
            results.to_csv(f"{args.save}_{scenario}_{mode}.csv", index=False)
        print(report(results, config, seconds), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    add_daily_arguments(parser)
    args = parser.parse_args()
    run_daily(args)


if __name__ == "__main__":
    main()
