"""`version_metrics`: a day's health per model version and per (model, prompt) version.

Volume, negative / correction / abandonment / regeneration rates with Wilson intervals, latency
p50/p95 and tokens: one day, no window (pure pandas, no Dagster).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from feedback_pipelines import stats
from feedback_pipelines.schema import METRIC_COLUMNS

_NULL_KEY = "\x00null"


def naive_utc(values: pd.Series) -> pd.Series:
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
        return frame.assign(ds=naive_utc(frame["ds"]).dt.date)
    return frame.assign(ds=naive_utc(frame["timestamp"]).dt.date)


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
