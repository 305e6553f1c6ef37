"""Per-version metrics and per-version, per-topic regression tests (pure pandas, no Dagster).

The question answered every morning: did a new model or prompt version make things worse, on
which topics, and how sure are we? Each candidate version is compared with its baseline (the
version first seen just before it, or a configured one) over a trailing window, per metric,
overall and per cluster, and every verdict carries its counts, effect, interval, p-value and
false-discovery-adjusted q-value. The formulas are in `feedback_pipelines.stats`.

How a verdict is reached (and why):

* **Units.** Negative rate and correction rate are per feedback event; abandonment rate and
  latency p95 are per trace. A trace belongs to the cluster of its feedback (a non-noise one
  first, then the most frequent); traces without feedback form their own stratum.
* **Tests.** Per cell: Fisher's exact test when an expected count is below 5, the two-proportion
  z test otherwise; for latency p95, the exceedance test above the pooled p95 with a bootstrap
  interval of the p95 difference. Tests are one-sided because the question is: `p_value` asks
  "is the candidate worse?", `p_value_improvement` asks "is it better?", and each question has
  its own Benjamini–Hochberg family, so an improvement can never be read as a regression.
* **Mix.** A shift of traffic between topics changes a version's overall rate without any
  topic getting worse (or hides a topic that did). So when clusters are known, the overall
  verdict comes from the Cochran–Mantel–Haenszel test stratified by cluster (`test = 'cmh'`,
  `scope = 'mix_adjusted'`); the unadjusted overall row is shown for reference only (its p-value
  is reported, it is not counted by the correction and never flags).
* **Multiplicity.** q-values are Benjamini–Hochberg over every test run in the window: both
  dimensions, every candidate, metric and cluster, the mix-adjusted rows included. Cells too
  small to test (a side under `min_samples`, or no variation at all) are not tests: they have
  no p-value, say why in `note`, and are not counted.
* **Verdict.** `is_regression` needs q < alpha, an effect of at least the minimum (3 points of
  rate; 10% of the baseline's p95 for latency cells; 3 points of the share above the pooled
  p95 for the latency mix-adjusted row) and `min_samples` on each side. Improvements are the
  mirror image and are only ever reported as `is_improvement`.

Reading a row: `scope` is 'overall' (unadjusted), 'mix_adjusted' (CMH, `cluster_id` NULL) or
'cluster'; `x_*` / `n_*` are the counted outcomes and units; for `latency_p95` the `rate_*`
columns hold the p95 in ms (cells) or the share of traces above the pooled p95 (mix-adjusted
row) and `x_*` the traces above the pooled p95; `ci_low`/`ci_high` bound `delta` (Newcombe for
rates, Sato for the mix-adjusted difference, bootstrap for p95); `note` says why a cell was not
tested, or how the verdict was reached.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines import stats

METRICS = ("negative_rate", "correction_rate", "abandonment_rate", "latency_p95")
EVENT_METRICS = ("negative_rate", "correction_rate")
TRACE_METRICS = ("abandonment_rate", "latency_p95")
DIMENSIONS = ("model_version", "prompt_version")
NOISE_CLUSTER = -1
# Internal stratum for units without a cluster (feedback not assigned, traces without feedback).
UNASSIGNED = -2

# What each metric counts, for notes a person reads.
_OUTCOME = {
    "negative_rate": ("events", "negative events"),
    "correction_rate": ("events", "corrections"),
    "abandonment_rate": ("traces", "abandoned traces"),
    "latency_p95": ("traces", "latencies"),
}

REGRESSION_COLUMNS = [
    "window_start",
    "window_end",
    "dimension",
    "model_version",
    "candidate_version",
    "baseline_version",
    "metric",
    "scope",
    "cluster_id",
    "n_candidate",
    "n_baseline",
    "x_candidate",
    "x_baseline",
    "rate_candidate",
    "rate_baseline",
    "delta",
    "ci_low",
    "ci_high",
    "test",
    "p_value",
    "q_value",
    "p_value_improvement",
    "q_value_improvement",
    "is_regression",
    "is_improvement",
    "note",
]

METRIC_COLUMNS = [
    "ds",
    "dimension",
    "model_version",
    "prompt_version",
    "n_traces",
    "n_feedback",
    "n_negative",
    "negative_rate",
    "negative_rate_ci_low",
    "negative_rate_ci_high",
    "n_corrections",
    "correction_rate",
    "correction_rate_ci_low",
    "correction_rate_ci_high",
    "n_abandoned",
    "abandonment_rate",
    "abandonment_rate_ci_low",
    "abandonment_rate_ci_high",
    "n_regenerated",
    "regeneration_rate",
    "regeneration_rate_ci_low",
    "regeneration_rate_ci_high",
    "latency_p50_ms",
    "latency_p95_ms",
    "input_tokens",
    "output_tokens",
    "input_tokens_mean",
    "output_tokens_mean",
]


@dataclass(frozen=True)
class RegressionSettings:
    """Thresholds of the regression verdict; defaults are the documented product defaults.

    Attributes:
        window_days: Length of the trailing window, ending at the partition day.
        alpha: False discovery rate for the q-value threshold.
        min_rate_effect: Smallest rate change (absolute, 0.03 = 3 points) worth flagging.
        min_latency_increase: Smallest p95 change worth flagging, as a share of the baseline p95.
        min_samples: Units needed on each side before a cell is tested.
        baseline_version: Compare every model version against this one (FEEDBACK_BASELINE_VERSION).
        baseline_prompt_version: Same for prompt versions, within each model version.
        latency_quantile: The latency quantile compared (0.95).
        min_expected: Below this expected cell count, Fisher's exact test replaces the z test.
        bootstrap_resamples: Draws for the latency interval.
        confidence: Level of the effect intervals.
        seed: Seed of the latency bootstrap (combined with the cell, so results are stable).
    """

    window_days: int = 14
    alpha: float = 0.05
    min_rate_effect: float = 0.03
    min_latency_increase: float = 0.10
    min_samples: int = 30
    baseline_version: str | None = None
    baseline_prompt_version: str | None = None
    latency_quantile: float = 0.95
    min_expected: float = stats.MIN_EXPECTED_FOR_Z
    bootstrap_resamples: int = 4000
    confidence: float = 0.95
    seed: int = 0


# --------------------------------------------------------------------------------------------
# version_metrics
# --------------------------------------------------------------------------------------------


_NULL_KEY = "\x00null"


def _datetimes(values: pd.Series) -> pd.Series:
    """Timestamps as naive UTC datetime64 (fast path when they already are)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        out = values
    else:
        out = pd.to_datetime(values, utc=True, cache=False)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def _with_ds(frame: pd.DataFrame) -> pd.DataFrame:
    if "ds" in frame.columns:
        return frame.assign(ds=_datetimes(frame["ds"]).dt.date)
    return frame.assign(ds=_datetimes(frame["timestamp"]).dt.date)


def _aggregate_metrics(events: pd.DataFrame, traces: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    # Missing versions are a group of their own; a sentinel keeps the join of the two
    # aggregates on plain, orderable keys.
    events = events.assign(**{k: events[k].astype(object).fillna(_NULL_KEY) for k in keys[1:]})
    traces = traces.assign(**{k: traces[k].astype(object).fillna(_NULL_KEY) for k in keys[1:]})
    ev = events.assign(
        _neg=events["is_negative"].fillna(False).astype(bool),
        _corr=(events["kind"] == "correction"),
    )
    ev_agg = ev.groupby(keys, dropna=False).agg(
        n_feedback=("_neg", "size"), n_negative=("_neg", "sum"), n_corrections=("_corr", "sum")
    )
    tr = traces.assign(
        _aband=traces["abandoned"].fillna(False).astype(bool),
        _regen=traces["regenerations"].fillna(0).astype(float) > 0,
        _lat=pd.to_numeric(traces["latency_ms"], errors="coerce").astype(float),
        _tin=pd.to_numeric(traces["input_tokens"], errors="coerce").astype(float),
        _tout=pd.to_numeric(traces["output_tokens"], errors="coerce").astype(float),
    )
    grouped = tr.groupby(keys, dropna=False)
    tr_agg = grouped.agg(
        n_traces=("_aband", "size"),
        n_abandoned=("_aband", "sum"),
        n_regenerated=("_regen", "sum"),
        input_tokens=("_tin", "sum"),
        output_tokens=("_tout", "sum"),
        input_tokens_mean=("_tin", "mean"),
        output_tokens_mean=("_tout", "mean"),
    )
    if len(tr):
        tr_agg["latency_p50_ms"] = grouped["_lat"].quantile(0.5)
        tr_agg["latency_p95_ms"] = grouped["_lat"].quantile(0.95)
    else:
        tr_agg["latency_p50_ms"] = pd.Series(dtype=float)
        tr_agg["latency_p95_ms"] = pd.Series(dtype=float)
    out = ev_agg.join(tr_agg, how="outer").reset_index()
    for key in keys[1:]:
        out[key] = out[key].where(out[key] != _NULL_KEY, None)
    counts = [
        "n_feedback",
        "n_negative",
        "n_corrections",
        "n_traces",
        "n_abandoned",
        "n_regenerated",
    ]
    out[counts] = out[counts].fillna(0).astype("int64")
    for rate, num, den in (
        ("negative_rate", "n_negative", "n_feedback"),
        ("correction_rate", "n_corrections", "n_feedback"),
        ("abandonment_rate", "n_abandoned", "n_traces"),
        ("regeneration_rate", "n_regenerated", "n_traces"),
    ):
        with np.errstate(divide="ignore", invalid="ignore"):
            out[rate] = np.where(out[den] > 0, out[num] / out[den].where(out[den] > 0), np.nan)
        low, high = stats.wilson_interval(out[num], out[den])
        out[f"{rate}_ci_low"], out[f"{rate}_ci_high"] = low, high
    return out


def compute_version_metrics(events: pd.DataFrame, traces: pd.DataFrame) -> pd.DataFrame:
    """Daily health numbers per model version and per (model version, prompt version).

    Rows with `dimension = 'model_version'` are per day × model version (prompt_version NULL);
    rows with `dimension = 'prompt_version'` are per day × model version × prompt version.
    Feedback whose trace is unknown has no version and is counted under a NULL model_version,
    so volumes add up. Rates carry a Wilson 95% interval; latency quantiles ignore missing
    latencies; tokens are sums and means per trace.

    Args:
        events: feedback_events rows (ds or timestamp, model_version, prompt_version, kind,
            is_negative).
        traces: traces rows (ds or timestamp, model_version, prompt_version, latency_ms,
            input_tokens, output_tokens, abandoned, regenerations).

    Returns:
        One row per group with METRIC_COLUMNS.
    """
    events = _with_ds(events)
    traces = _with_ds(traces)
    parts = []
    for dimension, keys in (
        ("model_version", ["ds", "model_version"]),
        ("prompt_version", ["ds", "model_version", "prompt_version"]),
    ):
        part = _aggregate_metrics(events, traces, keys)
        part["dimension"] = dimension
        if "prompt_version" not in part.columns:
            part["prompt_version"] = None
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    out = out.reindex(columns=METRIC_COLUMNS)
    out = out.astype({"model_version": object, "prompt_version": object})
    return out.sort_values(
        ["ds", "dimension", "model_version", "prompt_version"],
        na_position="last",
        ignore_index=True,
    )


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def find_baselines(
    first_seen: pd.Series | dict[str, object],
    present: Iterable[str],
    override: str | None = None,
    label: str = "version",
) -> pd.DataFrame:
    """Decide what each version in the window is compared with.

    Versions are ordered by first sighting (ties by name). A version's baseline is the version
    first seen immediately before it; if that one has no data in the window (rolled back,
    retired), the most recent earlier version that has data stands in, with a note. The first
    version ever seen has nothing to be compared with and is not a candidate. With `override`,
    every other version is compared with the configured one.

    A version that ends up neither compared nor used as a baseline (the only version in the
    window, or one whose predecessors all vanished) still gets a row, with `comparable` False
    and the reason in `note`, so an empty verdict is never silent.

    Args:
        first_seen: Version -> first timestamp (window or full history).
        present: Versions that have data in the window.
        override: A configured baseline version, or None.
        label: How notes name a version ("model_version", "prompt_version").

    Returns:
        Columns candidate_version, baseline_version (None if none), comparable (bool), note.
    """
    seen = pd.Series(first_seen, dtype=object)
    present_set = {str(v) for v in present if v is not None and not _isnan(v)}
    for version in present_set - set(seen.index):
        seen[version] = pd.NaT  # present but unknown history: ordered last, by name
    order = sorted(
        seen.index,
        key=lambda v: (pd.Timestamp(seen[v]) if pd.notna(seen[v]) else pd.Timestamp.max, str(v)),
    )
    rows: list[dict[str, object]] = []
    if override is not None:
        for version in order:
            if version not in present_set or version == override:
                continue
            if override in present_set:
                note = f"baseline set by configuration ({label} {override})"
                rows.append(_baseline_row(version, override, True, note))
            else:
                note = f"configured baseline {override} has no data in the window"
                rows.append(_baseline_row(version, override, False, note))
        if override in present_set and not rows:
            note = f"configured baseline {override} is the only {label} in the window"
            rows.append(_baseline_row(override, None, False, note))
        return pd.DataFrame(
            rows, columns=["candidate_version", "baseline_version", "comparable", "note"]
        )
    used: set[str] = set()
    for position, version in enumerate(order):
        if version not in present_set:
            continue
        earlier = order[:position]
        if not earlier:
            continue
        previous = earlier[-1]
        if previous in present_set:
            rows.append(_baseline_row(version, previous, True, ""))
            used.update({version, previous})
            continue
        fallback = next((v for v in reversed(earlier) if v in present_set), None)
        if fallback is None:
            note = (
                f"baseline {previous} has no data in the window and no earlier {label} "
                "has: nothing to compare with"
            )
            rows.append(_baseline_row(version, previous, False, note))
            used.add(version)
        else:
            note = (
                f"baseline {previous} has no data in the window; compared with {fallback}, "
                f"the most recent earlier {label} that has"
            )
            rows.append(_baseline_row(version, fallback, True, note))
            used.update({version, fallback})
    for version in order:
        if version in present_set and version not in used:
            note = (
                f"only {label} in the window"
                if len(present_set) == 1
                else f"first {label} seen: nothing earlier to compare with"
            )
            rows.append(_baseline_row(version, None, False, note))
    return pd.DataFrame(
        rows, columns=["candidate_version", "baseline_version", "comparable", "note"]
    )


def _baseline_row(candidate: str, baseline: str | None, comparable: bool, note: str) -> dict:
    return {
        "candidate_version": candidate,
        "baseline_version": baseline,
        "comparable": comparable,
        "note": note,
    }


def _isnan(value: object) -> bool:
    return isinstance(value, float) and math.isnan(value)


# --------------------------------------------------------------------------------------------
# Regressions
# --------------------------------------------------------------------------------------------


@dataclass
class _Comparison:
    dimension: str
    model_version: str
    candidate: str | None
    baseline: str | None
    comparable: bool
    note: str


@dataclass
class _Units:
    """The units of one metric for one comparison: stratum and outcome (or value) per unit."""

    strata1: np.ndarray
    values1: np.ndarray
    strata2: np.ndarray
    values2: np.ndarray
    clustered: bool
    notes: list[str] = field(default_factory=list)


def _prepare_events(events: pd.DataFrame, assignments: pd.DataFrame | None) -> pd.DataFrame:
    ev = pd.DataFrame(
        {
            "feedback_id": events["feedback_id"].astype(str),
            "trace_id": events["trace_id"].astype(object),
            "model_version": events["model_version"].astype(object),
            "prompt_version": events["prompt_version"].astype(object),
            "negative_rate": events["is_negative"].fillna(False).astype(bool).to_numpy(),
            "correction_rate": (events["kind"] == "correction").to_numpy(),
            "timestamp": _datetimes(events["timestamp"]) if "timestamp" in events else pd.NaT,
        }
    )
    ev = ev[ev["model_version"].notna()]
    if assignments is not None and len(assignments):
        mapping = (
            assignments.assign(feedback_id=assignments["feedback_id"].astype(str))
            .drop_duplicates("feedback_id", keep="last")
            .set_index("feedback_id")["cluster_id"]
        )
        ev["stratum"] = ev["feedback_id"].map(mapping).fillna(UNASSIGNED).astype("int64")
    else:
        ev["stratum"] = UNASSIGNED
    return ev.reset_index(drop=True)


def _trace_strata(ev: pd.DataFrame) -> pd.Series:
    """Cluster of each trace: its feedback's non-noise cluster (most frequent, then lowest id)."""
    known = ev[(ev["stratum"] != UNASSIGNED) & ev["trace_id"].notna()]
    if known.empty:
        return pd.Series(dtype="int64")
    codes, traces = pd.factorize(known["trace_id"])
    strata = known["stratum"].to_numpy()
    pairs, counts = np.unique(np.stack([codes, strata]), axis=1, return_counts=True)
    trace_code, stratum = pairs
    # best first within each trace: non-noise, then most frequent, then lowest cluster id
    order = np.lexsort((stratum, -counts, stratum == NOISE_CLUSTER, trace_code))
    trace_code, stratum = trace_code[order], stratum[order]
    first = np.r_[True, trace_code[1:] != trace_code[:-1]]
    return pd.Series(stratum[first], index=traces[trace_code[first]])


def _prepare_traces(traces: pd.DataFrame, ev: pd.DataFrame) -> pd.DataFrame:
    tr = pd.DataFrame(
        {
            "trace_id": traces["trace_id"].astype(object),
            "model_version": traces["model_version"].astype(object),
            "prompt_version": traces["prompt_version"].astype(object),
            "abandonment_rate": traces["abandoned"].fillna(False).astype(bool).to_numpy(),
            "latency_p95": pd.to_numeric(traces["latency_ms"], errors="coerce").astype(float),
            "timestamp": _datetimes(traces["timestamp"]) if "timestamp" in traces else pd.NaT,
        }
    )
    tr = tr[tr["model_version"].notna()]
    strata = _trace_strata(ev)
    tr["stratum"] = tr["trace_id"].map(strata).fillna(UNASSIGNED).astype("int64")
    return tr.reset_index(drop=True)


def _first_seen(
    frames: list[pd.DataFrame], keys: list[str], history: pd.DataFrame | None
) -> pd.Series:
    parts = [f[[*keys, "timestamp"]] for f in frames if len(f)]
    if history is not None and len(history):
        parts.append(history.rename(columns={"first_seen": "timestamp"})[[*keys, "timestamp"]])
    if not parts:
        return pd.Series(dtype=object)
    allrows = pd.concat(parts, ignore_index=True)
    allrows["timestamp"] = _datetimes(allrows["timestamp"])
    allrows = allrows.dropna(subset=keys)
    return allrows.groupby(keys)["timestamp"].min()


def _comparisons(
    ev: pd.DataFrame,
    tr: pd.DataFrame,
    settings: RegressionSettings,
    first_seen: pd.DataFrame | None,
) -> list[_Comparison]:
    out: list[_Comparison] = []
    models_seen = _first_seen([ev, tr], ["model_version"], first_seen)
    models_present = set(ev["model_version"]).union(tr["model_version"])
    plan = find_baselines(models_seen, models_present, settings.baseline_version, "model_version")
    for row in plan.itertuples(index=False):
        out.append(
            _Comparison(
                "model_version",
                row.candidate_version,
                row.candidate_version,
                row.baseline_version,
                bool(row.comparable),
                row.note,
            )
        )
    prompts_seen = _first_seen([ev, tr], ["model_version", "prompt_version"], first_seen)
    for model in sorted(models_present):
        present = set(ev.loc[ev["model_version"] == model, "prompt_version"].dropna()).union(
            tr.loc[tr["model_version"] == model, "prompt_version"].dropna()
        )
        if not present:
            continue
        seen = (
            prompts_seen.loc[model]
            if model in prompts_seen.index.get_level_values(0)
            else pd.Series(dtype=object)
        )
        plan = find_baselines(
            seen, present, settings.baseline_prompt_version, f"prompt_version of {model}"
        )
        for row in plan.itertuples(index=False):
            out.append(
                _Comparison(
                    "prompt_version",
                    model,
                    row.candidate_version,
                    row.baseline_version,
                    bool(row.comparable),
                    row.note,
                )
            )
    return out


def _select(frame: pd.DataFrame, comparison: _Comparison, version: str) -> pd.DataFrame:
    if comparison.dimension == "model_version":
        return frame[frame["model_version"] == version]
    return frame[
        (frame["model_version"] == comparison.model_version) & (frame["prompt_version"] == version)
    ]


def _sides(frame: pd.DataFrame, comparison: _Comparison) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The candidate's and the baseline's rows of one comparison (selected once per frame)."""
    return _select(frame, comparison, comparison.candidate), _select(
        frame, comparison, comparison.baseline
    )


def _units(sides: tuple[pd.DataFrame, pd.DataFrame], metric: str, clustered: bool) -> _Units:
    side1, side2 = sides
    if metric == "latency_p95":
        side1 = side1[side1[metric].notna()]
        side2 = side2[side2[metric].notna()]
    return _Units(
        side1["stratum"].to_numpy(),
        side1[metric].to_numpy(),
        side2["stratum"].to_numpy(),
        side2[metric].to_numpy(),
        clustered,
    )


def _empty_row(comparison: _Comparison, metric: str, scope: str, cluster: int | None) -> dict:
    return {
        "dimension": comparison.dimension,
        "model_version": comparison.model_version,
        "candidate_version": comparison.candidate,
        "baseline_version": comparison.baseline,
        "metric": metric,
        "scope": scope,
        "cluster_id": cluster,
        "n_candidate": 0,
        "n_baseline": 0,
        "x_candidate": None,
        "x_baseline": None,
        "rate_candidate": math.nan,
        "rate_baseline": math.nan,
        "delta": math.nan,
        "ci_low": math.nan,
        "ci_high": math.nan,
        "test": "none",
        "p_value": math.nan,
        "p_value_improvement": math.nan,
        "in_family": False,
        "notes": [],
    }


def _size_note(n1: int, n2: int, unit: str, minimum: int) -> str | None:
    short = []
    if n1 < minimum:
        short.append(f"candidate has {n1} {unit} < min {minimum}")
    if n2 < minimum:
        short.append(f"baseline has {n2} {unit} < min {minimum}")
    return "; ".join(short) if short else None


def _proportion_cell(
    row: dict, x1: int, n1: int, x2: int, n2: int, metric: str, settings: RegressionSettings
) -> dict:
    unit, outcome = _OUTCOME[metric]
    row.update(n_candidate=n1, n_baseline=n2, x_candidate=x1, x_baseline=x2)
    if n1 > 0:
        row["rate_candidate"] = x1 / n1
    if n2 > 0:
        row["rate_baseline"] = x2 / n2
    if n1 > 0 and n2 > 0:
        row["delta"] = x1 / n1 - x2 / n2
        low, high = stats.newcombe_interval(x1, n1, x2, n2, settings.confidence)
        row["ci_low"], row["ci_high"] = float(low), float(high)
    short = _size_note(n1, n2, unit, settings.min_samples)
    if short:
        row["notes"].append(f"not tested: {short}")
        return row
    if x1 + x2 == 0:
        row["notes"].append(f"not tested: no {outcome} on either side")
        return row
    if x1 + x2 == n1 + n2:
        row["notes"].append(f"not tested: every one of the {unit} counts as {outcome}")
        return row
    result = stats.proportion_test(x1, n1, x2, n2, settings.min_expected)
    row.update(
        test=result.test,
        p_value=result.p_greater,
        p_value_improvement=result.p_less,
        in_family=True,
    )
    return row


def _seed(settings: RegressionSettings, *parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) ^ settings.seed


def _latency_cell(row: dict, v1: np.ndarray, v2: np.ndarray, settings: RegressionSettings) -> dict:
    q = settings.latency_quantile
    n1, n2 = len(v1), len(v2)
    row.update(n_candidate=n1, n_baseline=n2)
    if n1:
        row["rate_candidate"] = float(np.quantile(v1, q))
    if n2:
        row["rate_baseline"] = float(np.quantile(v2, q))
    if n1 and n2:
        row["delta"] = row["rate_candidate"] - row["rate_baseline"]
        seed = _seed(
            settings,
            row["dimension"],
            row["candidate_version"],
            row["baseline_version"],
            row["cluster_id"],
        )
        row["ci_low"], row["ci_high"] = stats.bootstrap_quantile_diff_interval(
            v1, v2, q, settings.confidence, settings.bootstrap_resamples, seed
        )
    short = _size_note(n1, n2, "traces with a latency", settings.min_samples)
    if short:
        row["notes"].append(f"not tested: {short}")
        return row
    result = stats.quantile_exceedance_test(v1, v2, q, settings.min_expected)
    row.update(x_candidate=result.x1, x_baseline=result.x2)
    pct = round(q * 100)
    row["notes"].append(f"counts are traces above the pooled p{pct} ({result.threshold:.0f} ms)")
    if result.x1 + result.x2 == 0:
        row["notes"].append("not tested: no latency above the pooled quantile (all tied)")
        return row
    row.update(
        test=f"exceedance_{result.test.test}",
        p_value=result.test.p_greater,
        p_value_improvement=result.test.p_less,
        in_family=True,
    )
    return row


def _strata_table(s1: np.ndarray, y1: np.ndarray, s2: np.ndarray, y2: np.ndarray) -> pd.DataFrame:
    """Successes and sizes per stratum for both sides (index: stratum id)."""
    strata, codes = np.unique(np.concatenate([s1, s2]), return_inverse=True)
    c1, c2 = codes[: len(s1)], codes[len(s1) :]
    k = len(strata)
    return pd.DataFrame(
        {
            "x1": np.bincount(c1, weights=y1.astype(float), minlength=k),
            "n1": np.bincount(c1, minlength=k).astype(float),
            "x2": np.bincount(c2, weights=y2.astype(float), minlength=k),
            "n2": np.bincount(c2, minlength=k).astype(float),
        },
        index=pd.Index(strata.astype("int64"), name="stratum"),
    )


def _cmh_cell(
    row: dict, table: pd.DataFrame, metric: str, settings: RegressionSettings, what: str
) -> dict:
    unit, outcome = _OUTCOME[metric]
    both = table[(table["n1"] > 0) & (table["n2"] > 0)]
    only = table.drop(both.index)
    n1, n2 = int(both["n1"].sum()), int(both["n2"].sum())
    x1, x2 = int(both["x1"].sum()), int(both["x2"].sum())
    row.update(n_candidate=n1, n_baseline=n2, x_candidate=x1, x_baseline=x2, test="cmh")
    clusters = int((both.index >= 0).sum())
    row["notes"].append(
        f"stratified by cluster ({clusters} clusters with both versions"
        + (", plus noise/unassigned" if (both.index < 0).any() else "")
        + f"); {what} on the common Mantel–Haenszel mix"
    )
    left_out = int(only["n1"].sum() + only["n2"].sum())
    if left_out:
        row["notes"].append(
            f"{left_out} {unit} in clusters seen on one side only are not part of this comparison"
        )
    if len(both) == 0:
        row["notes"].append("not tested: no cluster has both versions")
        return row
    result = stats.cmh_test(
        both["x1"], both["n1"], both["x2"], both["n2"], confidence=settings.confidence
    )
    row.update(
        rate_candidate=result.rate1,
        rate_baseline=result.rate2,
        delta=result.risk_difference,
        ci_low=result.rd_low,
        ci_high=result.rd_high,
    )
    short = _size_note(n1, n2, unit, settings.min_samples)
    if short:
        row["notes"].append(f"not tested: {short}")
        return row
    if math.isnan(result.p_greater):
        row["notes"].append(f"not tested: no cluster has variation in {outcome}")
        return row
    row.update(p_value=result.p_greater, p_value_improvement=result.p_less, in_family=True)
    return row


def _metric_rows(
    comparison: _Comparison, metric: str, units: _Units, settings: RegressionSettings
) -> list[dict]:
    rows: list[dict] = []
    is_latency = metric == "latency_p95"
    overall = _empty_row(comparison, metric, "overall", None)
    if comparison.note:
        overall["notes"].append(comparison.note)
    overall["notes"].extend(units.notes)
    if is_latency:
        _latency_cell(overall, units.values1, units.values2, settings)
    else:
        _proportion_cell(
            overall,
            int(units.values1.sum()),
            len(units.values1),
            int(units.values2.sum()),
            len(units.values2),
            metric,
            settings,
        )
    if not units.clustered:
        rows.append(overall)
        return rows
    # With clusters, the mix-adjusted test carries the overall verdict.
    if overall["in_family"]:
        overall["notes"].append(
            f"unadjusted for topic mix (one-sided p={overall['p_value']:.3g}): reference only, "
            "the overall verdict is the mix-adjusted (cmh) row"
        )
    overall["in_family"] = False
    rows.append(overall)
    mixed = _empty_row(comparison, metric, "mix_adjusted", None)
    if comparison.note:
        mixed["notes"].append(comparison.note)
    if is_latency:
        v1, v2 = units.values1, units.values2
        if len(v1) and len(v2):
            threshold = float(np.quantile(np.concatenate([v1, v2]), settings.latency_quantile))
            table = _strata_table(units.strata1, v1 > threshold, units.strata2, v2 > threshold)
            what = f"rates are shares of traces above the pooled p95 ({threshold:.0f} ms)"
        else:
            table = _strata_table(units.strata1, v1, units.strata2, v2)
            what = "rates are shares of traces above the pooled p95"
    else:
        table = _strata_table(units.strata1, units.values1, units.strata2, units.values2)
        what = "rates"
    rows.append(_cmh_cell(mixed, table, metric, settings, what))
    clusters = sorted(int(c) for c in table.index if c >= 0)
    for cluster in clusters:
        row = _empty_row(comparison, metric, "cluster", cluster)
        m1, m2 = units.strata1 == cluster, units.strata2 == cluster
        if is_latency:
            _latency_cell(row, units.values1[m1], units.values2[m2], settings)
        else:
            y1, y2 = units.values1[m1], units.values2[m2]
            _proportion_cell(row, int(y1.sum()), len(y1), int(y2.sum()), len(y2), metric, settings)
        rows.append(row)
    return rows


def _not_compared_rows(comparison: _Comparison) -> list[dict]:
    rows = []
    for metric in METRICS:
        row = _empty_row(comparison, metric, "overall", None)
        row["notes"].append(f"not compared: {comparison.note}")
        rows.append(row)
    return rows


def _fmt_effect(metric: str, delta: float) -> str:
    if metric == "latency_p95":
        return f"{delta:+.0f} ms"
    return f"{delta * 100:+.1f} points"


def _decide(out: pd.DataFrame, settings: RegressionSettings) -> pd.DataFrame:
    fam = out["in_family"] & out["p_value"].notna()
    out["q_value"] = np.nan
    out["q_value_improvement"] = np.nan
    out.loc[fam, "q_value"] = stats.benjamini_hochberg(out.loc[fam, "p_value"].to_numpy())
    out.loc[fam, "q_value_improvement"] = stats.benjamini_hochberg(
        out.loc[fam, "p_value_improvement"].to_numpy()
    )
    latency_cell = (out["metric"] == "latency_p95") & (out["scope"] != "mix_adjusted")
    min_effect = np.where(
        latency_cell, settings.min_latency_increase * out["rate_baseline"], settings.min_rate_effect
    )
    big_enough = (out["n_candidate"] >= settings.min_samples) & (
        out["n_baseline"] >= settings.min_samples
    )
    worse = out["delta"].to_numpy() >= min_effect
    better = -out["delta"].to_numpy() >= min_effect
    sig_worse = (out["q_value"] < settings.alpha).to_numpy()
    sig_better = (out["q_value_improvement"] < settings.alpha).to_numpy()
    out["is_regression"] = fam & big_enough & sig_worse & worse
    out["is_improvement"] = fam & big_enough & sig_better & better
    notes = []
    for row, floor in zip(out.itertuples(index=False), min_effect, strict=True):
        parts: list[str] = []
        if row.in_family and not math.isnan(row.p_value):
            effect = _fmt_effect(row.metric, row.delta)
            floor_txt = _fmt_effect(row.metric, float(floor)).lstrip("+")
            if row.is_regression:
                parts.append(
                    f"regression: q={row.q_value:.3g} < {settings.alpha}, {effect} ≥ {floor_txt}"
                )
            elif row.is_improvement:
                parts.append(
                    f"improvement: q={row.q_value_improvement:.3g} < {settings.alpha}, {effect}"
                )
            elif row.q_value < settings.alpha:
                parts.append(
                    f"significantly worse (q={row.q_value:.3g}) but {effect} is under "
                    f"the minimum {floor_txt}"
                )
            elif row.q_value_improvement < settings.alpha:
                parts.append(
                    f"significantly better (q={row.q_value_improvement:.3g}) but "
                    f"{effect} is under the minimum {floor_txt}"
                )
            else:
                parts.append(f"no significant change (q={row.q_value:.3g})")
        parts.extend(row.notes)  # the verdict first, then how it was reached
        notes.append("; ".join(p for p in parts if p))
    out["note"] = notes
    return out


def compute_regressions(
    events_window: pd.DataFrame,
    traces_window: pd.DataFrame,
    assignments: pd.DataFrame | None,
    settings: RegressionSettings | None = None,
    *,
    first_seen: pd.DataFrame | None = None,
    window_start: date | None = None,
    window_end: date | None = None,
) -> pd.DataFrame:
    """Compare every candidate version with its baseline over one window (see module docstring).

    Args:
        events_window: feedback_events of the window (feedback_id, trace_id, timestamp, kind,
            is_negative, model_version, prompt_version).
        traces_window: traces of the window (trace_id, timestamp, model_version, prompt_version,
            latency_ms, abandoned).
        assignments: cluster_assignments for the window (feedback_id, cluster_id; -1 = noise),
            or None if clustering is unavailable (then overall only, said in `note`).
        settings: Thresholds; defaults if None.
        first_seen: Optional history (model_version, prompt_version, first_seen) so a version's
            order does not depend on the window; else first sightings in the window are used.
        window_start: First day of the window (defaults to the data's first ds).
        window_end: Last day of the window (defaults to the data's last ds).

    Returns:
        One row per (dimension, candidate, metric, scope, cluster) with REGRESSION_COLUMNS.
    """
    settings = settings or RegressionSettings()
    ev = _prepare_events(events_window, assignments)
    tr = _prepare_traces(traces_window, ev)
    has_clusters = assignments is not None and len(assignments) > 0
    traces_clustered = has_clusters and bool((tr["stratum"] != UNASSIGNED).any())
    rows: list[dict] = []
    for comparison in _comparisons(ev, tr, settings, first_seen):
        if not comparison.comparable:
            rows.extend(_not_compared_rows(comparison))
            continue
        event_sides, trace_sides = _sides(ev, comparison), _sides(tr, comparison)
        for metric in METRICS:
            sides = event_sides if metric in EVENT_METRICS else trace_sides
            clustered = has_clusters if metric in EVENT_METRICS else traces_clustered
            units = _units(sides, metric, clustered)
            if assignments is None:
                units.notes.append("cluster_assignments unavailable: overall only")
            elif not has_clusters:
                units.notes.append("no cluster assignments for this window: overall only")
            elif not clustered:
                units.notes.append("no trace is tied to clustered feedback: overall only")
            rows.extend(_metric_rows(comparison, metric, units, settings))
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=REGRESSION_COLUMNS)
    out = _decide(out, settings)
    out["window_start"] = window_start or _edge(events_window, traces_window, min)
    out["window_end"] = window_end or _edge(events_window, traces_window, max)
    out["cluster_id"] = out["cluster_id"].astype("Int64")
    for col in ("n_candidate", "n_baseline"):
        out[col] = out[col].astype("int64")
    for col in ("x_candidate", "x_baseline"):
        out[col] = pd.to_numeric(out[col]).astype("Int64")
    return out[REGRESSION_COLUMNS].reset_index(drop=True)


def _edge(events: pd.DataFrame, traces: pd.DataFrame, pick: object) -> date | None:
    days = []
    for frame in (events, traces):
        if len(frame) == 0:
            continue
        col = frame["ds"] if "ds" in frame else frame["timestamp"]
        stamps = _datetimes(col).dropna()
        if len(stamps):
            days.extend([stamps.min().date(), stamps.max().date()])
    return pick(days) if days else None  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Storage and wording
# --------------------------------------------------------------------------------------------

VERSION_METRICS_DDL = """
CREATE TABLE IF NOT EXISTS version_metrics (
    ds DATE, dimension VARCHAR, model_version VARCHAR, prompt_version VARCHAR,
    n_traces BIGINT, n_feedback BIGINT, n_negative BIGINT, negative_rate DOUBLE,
    negative_rate_ci_low DOUBLE, negative_rate_ci_high DOUBLE, n_corrections BIGINT,
    correction_rate DOUBLE, correction_rate_ci_low DOUBLE, correction_rate_ci_high DOUBLE,
    n_abandoned BIGINT, abandonment_rate DOUBLE, abandonment_rate_ci_low DOUBLE,
    abandonment_rate_ci_high DOUBLE, n_regenerated BIGINT, regeneration_rate DOUBLE,
    regeneration_rate_ci_low DOUBLE, regeneration_rate_ci_high DOUBLE, latency_p50_ms DOUBLE,
    latency_p95_ms DOUBLE, input_tokens DOUBLE, output_tokens DOUBLE, input_tokens_mean DOUBLE,
    output_tokens_mean DOUBLE
)
"""

REGRESSIONS_DDL = """
CREATE TABLE IF NOT EXISTS version_regressions (
    ds DATE, window_start DATE, window_end DATE, dimension VARCHAR, model_version VARCHAR,
    candidate_version VARCHAR, baseline_version VARCHAR, metric VARCHAR, scope VARCHAR,
    cluster_id BIGINT, n_candidate BIGINT, n_baseline BIGINT, x_candidate BIGINT,
    x_baseline BIGINT, rate_candidate DOUBLE, rate_baseline DOUBLE, delta DOUBLE, ci_low DOUBLE,
    ci_high DOUBLE, test VARCHAR, p_value DOUBLE, q_value DOUBLE, p_value_improvement DOUBLE,
    q_value_improvement DOUBLE, is_regression BOOLEAN, is_improvement BOOLEAN, note VARCHAR
)
"""


def _fmt_value(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.0f} ms" if metric == "latency_p95" else f"{value:.1%}"


def describe_regression(row: Any, labels: dict[int, str] | None = None) -> str:
    """One flagged row in a sentence a person reads: version, metric, where, numbers, certainty."""
    labels = labels or {}
    metric = row.metric
    cluster = row.cluster_id
    if cluster is None or cluster is pd.NA or (isinstance(cluster, float) and math.isnan(cluster)):
        where = "mix-adjusted overall" if row.scope == "mix_adjusted" else "overall"
    else:
        label = labels.get(int(cluster))
        where = f"in cluster {int(cluster)}" + (f" ({label})" if label else "")
    versions = f"{row.candidate_version} vs {row.baseline_version}"
    if row.dimension == "prompt_version":
        versions = f"prompt {versions} (model {row.model_version})"
    return (
        f"{versions}: {metric} {where} "
        f"{_fmt_value(metric, row.rate_baseline)} -> {_fmt_value(metric, row.rate_candidate)} "
        f"({_fmt_effect(metric, row.delta)}, 95% CI {_fmt_effect(metric, row.ci_low)} to "
        f"{_fmt_effect(metric, row.ci_high)}, n={row.n_candidate}/{row.n_baseline}, "
        f"q={row.q_value:.2g})"
    )
