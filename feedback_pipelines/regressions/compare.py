"""Per-version, per-topic regression tests over a trailing window (pure pandas, no Dagster).

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

import copy
import math
import zlib
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines import stats
from feedback_pipelines.formatting import fmt_delta, fmt_release_day, fmt_value
from feedback_pipelines.regressions.baselines import find_baselines
from feedback_pipelines.regressions.metrics import naive_utc
from feedback_pipelines.regressions.sequential import SequentialSettings
from feedback_pipelines.schema import (
    NOISE,
    REGRESSION_COLUMNS,
    UNASSIGNED,
)

METRICS = ("negative_rate", "correction_rate", "abandonment_rate", "latency_p95")
EVENT_METRICS = ("negative_rate", "correction_rate")
TRACE_METRICS = ("abandonment_rate", "latency_p95")
DIMENSIONS = ("model_version", "prompt_version")

# What each metric counts, for notes a person reads.
_OUTCOME = {
    "negative_rate": ("events", "negative events"),
    "correction_rate": ("events", "corrections"),
    "abandonment_rate": ("traces", "abandoned traces"),
    "latency_p95": ("traces", "latencies"),
}


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
        sequential: The always-valid verdict's knobs (`regressions.cumulative`): it carries the
            alert; the window rows above are descriptive.
        max_release_days: Releases are judged always-valid for this many days after their
            release day; later they are settled and keep their window rows only.
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
    sequential: SequentialSettings = field(default_factory=SequentialSettings)
    max_release_days: int = 90


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
    """The events as a frame with their stratum: `_Prepared` computes the same on arrays.

    Kept as its reference (tests) and for bench/regressions_daily.py.
    """
    ev = pd.DataFrame(
        {
            "feedback_id": events["feedback_id"].astype(str),
            "trace_id": events["trace_id"].astype(object),
            "model_version": events["model_version"].astype(object),
            "prompt_version": events["prompt_version"].astype(object),
            "negative_rate": events["is_negative"].fillna(False).astype(bool).to_numpy(),
            "correction_rate": (events["kind"] == "correction").to_numpy(),
            "timestamp": naive_utc(events["timestamp"]) if "timestamp" in events else pd.NaT,
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
    order = np.lexsort((stratum, -counts, stratum == NOISE, trace_code))
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
            "timestamp": naive_utc(traces["timestamp"]) if "timestamp" in traces else pd.NaT,
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
    allrows["timestamp"] = naive_utc(allrows["timestamp"])
    allrows = allrows.dropna(subset=keys)
    return allrows.groupby(keys)["timestamp"].min()


class _Prepared:
    """One events frame and one traces frame, prepared once for every test run on them.

    The rows `_prepare_events` and `_prepare_traces` keep (those with a model version) and the
    columns the tests read, as arrays, with the string ids turned into integer codes once:
    selecting a version's rows, mapping a feedback id to its cluster or a trace to its
    feedback's stratum is then integer indexing. At a million events a day the string compares
    and maps, repeated per comparison and per level, were most of the regressions step. Codes
    are labels only: nothing depends on how they are numbered.
    """

    def __init__(self, events: pd.DataFrame, traces: pd.DataFrame):
        self.events, self.traces = events, traces
        self.ev_rows = np.flatnonzero(events["model_version"].astype(object).notna().to_numpy())
        self.tr_rows = np.flatnonzero(traces["model_version"].astype(object).notna().to_numpy())
        n_ev = len(self.ev_rows)
        versions = {}
        for column in ("model_version", "prompt_version"):
            values = np.concatenate(
                [_column(events, column, self.ev_rows), _column(traces, column, self.tr_rows)]
            )
            codes, uniques = pd.factorize(values)
            versions[column] = (codes[:n_ev], codes[n_ev:], np.asarray(uniques, dtype=object))
        self.ev_model, self.tr_model, self.models = versions["model_version"]
        self.ev_prompt, self.tr_prompt, self.prompts = versions["prompt_version"]
        self.ev_stamp = _stamps(events, self.ev_rows)
        self.tr_stamp = _stamps(traces, self.tr_rows)
        self.ev_values = {
            "negative_rate": events["is_negative"].fillna(False).astype(bool).to_numpy(),
            "correction_rate": (events["kind"] == "correction").to_numpy(),
        }
        self.ev_values = {k: v[self.ev_rows] for k, v in self.ev_values.items()}
        latency = pd.to_numeric(traces["latency_ms"], errors="coerce").astype(float).to_numpy()
        self.tr_values = {
            "abandonment_rate": traces["abandoned"].fillna(False).astype(bool).to_numpy(),
            "latency_p95": latency,
        }
        self.tr_values = {k: v[self.tr_rows] for k, v in self.tr_values.items()}
        self._traces: tuple[np.ndarray, np.ndarray, int] | None = None
        self._feedback: tuple[np.ndarray, pd.Index] | None = None
        self._assigned: tuple[object, np.ndarray] | None = None

    def subset(
        self, events: pd.DataFrame, traces: pd.DataFrame, ev_in: np.ndarray, tr_in: np.ndarray
    ) -> _Prepared:
        """`_Prepared(events, traces)` by restriction: no id is hashed again.

        `events` and `traces` must hold exactly this one's input rows `ev_in` / `tr_in`
        (boolean masks), in order (`cumulative.partition_rows` checks it).
        """
        out = copy.copy(self)
        out.events, out.traces = events, traces
        ev_keep, tr_keep = ev_in[self.ev_rows], tr_in[self.tr_rows]
        out.ev_rows = (np.cumsum(ev_in) - 1)[self.ev_rows[ev_keep]]
        out.tr_rows = (np.cumsum(tr_in) - 1)[self.tr_rows[tr_keep]]
        out.ev_model, out.ev_prompt = self.ev_model[ev_keep], self.ev_prompt[ev_keep]
        out.tr_model, out.tr_prompt = self.tr_model[tr_keep], self.tr_prompt[tr_keep]
        out.ev_stamp, out.tr_stamp = self.ev_stamp[ev_keep], self.tr_stamp[tr_keep]
        out.ev_values = {k: v[ev_keep] for k, v in self.ev_values.items()}
        out.tr_values = {k: v[tr_keep] for k, v in self.tr_values.items()}
        ev_codes, tr_codes, count = self.trace_codes()
        out._traces = (ev_codes[ev_keep], tr_codes[tr_keep], count)
        codes, index = self.feedback_index()
        out._feedback = (codes[ev_keep], index)
        out._assigned = None
        return out

    @property
    def n_events(self) -> int:
        return len(self.ev_rows)

    def trace_codes(self) -> tuple[np.ndarray, np.ndarray, int]:
        """Trace id codes of the events and of the traces (one numbering; -1 = none), count."""
        if self._traces is None:
            n_ev = self.n_events
            values = np.concatenate(
                [
                    _column(self.events, "trace_id", self.ev_rows),
                    _column(self.traces, "trace_id", self.tr_rows),
                ]
            )
            codes, uniques = pd.factorize(values)
            self._traces = (codes[:n_ev], codes[n_ev:], len(uniques))
        return self._traces

    def feedback_index(self) -> tuple[np.ndarray, pd.Index]:
        """Feedback id (as a string) codes of the events, and the ids they number."""
        if self._feedback is None:
            codes, uniques = pd.factorize(_column(self.events, "feedback_id", self.ev_rows, str))
            self._feedback = (codes, pd.Index(uniques, dtype=object))
        return self._feedback

    def assigned_codes(self, assignments: pd.DataFrame) -> np.ndarray:
        """The feedback id code of each assignment row (-1: no event has it)."""
        if self._assigned is None or self._assigned[0] is not assignments:
            index = self.feedback_index()[1]
            ids = _column(assignments, "feedback_id", np.arange(len(assignments)), str)
            self._assigned = (assignments, index.get_indexer(ids))
        return self._assigned[1]

    def event_strata(
        self, assignments: pd.DataFrame | None, column: str, known_only: bool = False
    ) -> np.ndarray:
        """`_prepare_events`' stratum per event, else UNASSIGNED.

        The event's `column` in its feedback id's last assignment row (with `known_only`, the
        last row where it is not null).
        """
        out = np.full(self.n_events, UNASSIGNED, dtype=np.int64)
        if assignments is None or not len(assignments):
            return out
        ev_codes, index = self.feedback_index()
        asg_codes = self.assigned_codes(assignments)
        values = assignments[column]
        used = asg_codes >= 0
        if known_only:
            used &= values.notna().to_numpy()
        rows = np.flatnonzero(used)
        rows = rows[~pd.Series(asg_codes[rows]).duplicated(keep="last").to_numpy()]
        position = np.full(len(index), -1, dtype=np.int64)
        position[asg_codes[rows]] = rows
        found = position[ev_codes]
        hit = found >= 0
        if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
            out[hit] = values.to_numpy()[found[hit]]
            return out
        mapped = np.full(self.n_events, np.nan)
        mapped[hit] = values.astype("float64").to_numpy()[found[hit]]
        return pd.Series(mapped).fillna(UNASSIGNED).astype("int64").to_numpy()

    def trace_strata(self, ev_strata: np.ndarray, events: np.ndarray | None = None) -> np.ndarray:
        """`_prepare_traces`' stratum per trace: `_trace_strata` of its events, else UNASSIGNED.

        `events` masks the events that count (None: all).
        """
        ev_codes, tr_codes, count = self.trace_codes()
        if count == 0:
            return np.full(len(tr_codes), UNASSIGNED, dtype=np.int64)
        known = (ev_strata != UNASSIGNED) & (ev_codes >= 0)
        if events is not None:
            known &= events
        best = _best_strata(ev_codes[known], ev_strata[known], count)
        return np.where(tr_codes >= 0, best[tr_codes], UNASSIGNED).astype(np.int64)

    def sides(self, kind: str, comparison: _Comparison) -> tuple[np.ndarray, np.ndarray]:
        """Masks of the candidate's and the baseline's rows in the events ('ev') or traces."""
        model, prompt = (
            (self.ev_model, self.ev_prompt) if kind == "ev" else (self.tr_model, self.tr_prompt)
        )
        if comparison.dimension == "model_version":
            return tuple(  # type: ignore[return-value]
                model == _code(self.models, v) for v in (comparison.candidate, comparison.baseline)
            )
        of_model = model == _code(self.models, comparison.model_version)
        return tuple(  # type: ignore[return-value]
            of_model & (prompt == _code(self.prompts, v))
            for v in (comparison.candidate, comparison.baseline)
        )

    def version_stamps(
        self, ev_mask: np.ndarray | None = None, tr_mask: np.ndarray | None = None
    ) -> list[pd.DataFrame]:
        """Per frame, the earliest timestamp of each (model, prompt) pair.

        What `_first_seen` reads, one row per pair instead of one per event: the minimum of the
        minima is the same.
        """
        out = []
        for model, prompt, stamp, mask in (
            (self.ev_model, self.ev_prompt, self.ev_stamp, ev_mask),
            (self.tr_model, self.tr_prompt, self.tr_stamp, tr_mask),
        ):
            if mask is not None:
                model, prompt, stamp = model[mask], prompt[mask], stamp[mask]
            width = len(self.prompts) + 1
            first = pd.Series(stamp).groupby(model * width + prompt + 1).min()
            pairs = first.index.to_numpy(dtype=np.int64)
            prompt_code = pairs % width - 1
            prompts = np.full(len(pairs), None, dtype=object)
            prompts[prompt_code >= 0] = self.prompts[prompt_code[prompt_code >= 0]]
            out.append(
                pd.DataFrame(
                    {
                        "model_version": self.models[pairs // width],
                        "prompt_version": prompts,
                        "timestamp": first.to_numpy(),
                    }
                )
            )
        return out


def _column(frame: pd.DataFrame, column: str, rows: np.ndarray, kind: type = object) -> np.ndarray:
    """`frame[column].astype(kind)` of `rows` as objects (`astype(str)` skipped if a no-op)."""
    values = frame[column].to_numpy(dtype=object)[rows]
    if kind is str and pd.api.types.infer_dtype(values, skipna=False) != "string":
        values = pd.Series(values, dtype=object).astype(str).to_numpy(dtype=object)
    return values


def _stamps(frame: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    if "timestamp" not in frame:
        return np.full(len(rows), np.datetime64("NaT", "ns"))
    return naive_utc(frame["timestamp"]).to_numpy()[rows]


def _code(uniques: np.ndarray, value: object) -> int:
    """The code of `value` among `uniques`, or -2: a code no row has (a missing one is -1)."""
    hit = pd.Index(uniques, dtype=object).get_indexer([value])[0]
    return int(hit) if hit >= 0 else -2


def _best_strata(trace_codes: np.ndarray, strata: np.ndarray, count: int) -> np.ndarray:
    """`_trace_strata` on integer trace codes: per code (0..count-1), the stratum of its events.

    Non-noise first, then the most frequent, then the lowest id; UNASSIGNED without any.
    """
    out = np.full(count, UNASSIGNED, dtype=np.int64)
    if not len(trace_codes):
        return out
    values, inverse = _unique_codes(strata)
    width = len(values)
    pairs, counts = np.unique(trace_codes.astype(np.int64) * width + inverse, return_counts=True)
    trace_code, stratum = pairs // width, values[pairs % width]
    # best first within each trace: non-noise, then most frequent, then lowest cluster id
    order = np.lexsort((stratum, -counts, stratum == NOISE, trace_code))
    trace_code, stratum = trace_code[order], stratum[order]
    first = np.r_[True, trace_code[1:] != trace_code[:-1]]
    out[trace_code[first]] = stratum[first]
    return out


def _comparisons(
    prepared: _Prepared,
    settings: RegressionSettings,
    first_seen: pd.DataFrame | None,
    ev_mask: np.ndarray | None = None,
    tr_mask: np.ndarray | None = None,
) -> list[_Comparison]:
    """Every comparison of the (masked) rows: each candidate version and its baseline."""
    out: list[_Comparison] = []
    stamps = prepared.version_stamps(ev_mask, tr_mask)
    models_seen = _first_seen(stamps, ["model_version"], first_seen)
    models_present = set(stamps[0]["model_version"]).union(stamps[1]["model_version"])
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
    prompts_seen = _first_seen(stamps, ["model_version", "prompt_version"], first_seen)
    pairs = pd.concat(stamps, ignore_index=True)
    for model in sorted(models_present):
        present = set(pairs.loc[pairs["model_version"] == model, "prompt_version"].dropna())
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


def _units(
    masks: tuple[np.ndarray, np.ndarray],
    strata: np.ndarray,
    values: np.ndarray,
    metric: str,
    clustered: bool,
) -> _Units:
    """One metric's units of both sides (rows of `masks`; latency: those with a value)."""
    if metric == "latency_p95":
        masks = tuple(m & ~np.isnan(values) for m in masks)  # type: ignore[assignment]
    return _Units(strata[masks[0]], values[masks[0]], strata[masks[1]], values[masks[1]], clustered)


def _unique_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(values, return_inverse=True)`; for integers in a small range, by a bincount."""
    if len(values) and values.dtype.kind in "iu":
        low, high = int(values.min()), int(values.max())
        if high - low < 1 << 20:
            shifted = (values - low).astype(np.intp)
            present = np.bincount(shifted, minlength=high - low + 1) > 0
            uniques = (np.flatnonzero(present) + low).astype(values.dtype)
            return uniques, (np.cumsum(present) - 1)[shifted]
    uniques, inverse = np.unique(values, return_inverse=True)
    return uniques, inverse.reshape(-1)


def _by_stratum(strata: np.ndarray, values: np.ndarray) -> dict[int, np.ndarray]:
    """`values[strata == s]` for every stratum s, in one stable sort instead of one scan each."""
    uniques, codes = _unique_codes(strata)
    if len(uniques) < 1 << 15:
        codes = codes.astype(np.int16)  # a stable sort of 16-bit keys is a radix sort
    order = np.argsort(codes, kind="stable")
    ends = np.cumsum(np.bincount(codes, minlength=len(uniques)))
    starts = ends - np.bincount(codes, minlength=len(uniques))
    v = values[order]
    return {int(u): v[a:b] for u, a, b in zip(uniques, starts, ends, strict=True)}


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
    strata, codes = _unique_codes(np.concatenate([s1, s2]))
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
    groups1 = _by_stratum(units.strata1, units.values1)
    groups2 = _by_stratum(units.strata2, units.values2)
    for cluster in clusters:
        row = _empty_row(comparison, metric, "cluster", cluster)
        y1 = groups1.get(cluster, units.values1[:0])
        y2 = groups2.get(cluster, units.values2[:0])
        if is_latency:
            _latency_cell(row, y1, y2, settings)
        else:
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
            effect = fmt_delta(row.metric, row.delta)
            floor_txt = fmt_delta(row.metric, float(floor)).lstrip("+")
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
    return _window_test(
        _Prepared(events_window, traces_window),
        assignments,
        "cluster_id",
        settings,
        first_seen=first_seen,
        window_start=window_start or _edge(events_window, traces_window, min),
        window_end=window_end or _edge(events_window, traces_window, max),
    )


def _window_test(
    prepared: _Prepared,
    assignments: pd.DataFrame | None,
    column: str,
    settings: RegressionSettings,
    *,
    first_seen: pd.DataFrame | None,
    window_start: date | None,
    window_end: date | None,
) -> pd.DataFrame:
    """`compute_regressions` on prepared frames, the strata being `column` of `assignments`."""
    ev_strata = prepared.event_strata(assignments, column)
    tr_strata = prepared.trace_strata(ev_strata)
    has_clusters = assignments is not None and len(assignments) > 0
    traces_clustered = has_clusters and bool((tr_strata != UNASSIGNED).any())
    rows: list[dict] = []
    for comparison in _comparisons(prepared, settings, first_seen):
        if not comparison.comparable:
            rows.extend(_not_compared_rows(comparison))
            continue
        event_sides = prepared.sides("ev", comparison)
        trace_sides = prepared.sides("tr", comparison)
        for metric in METRICS:
            if metric in EVENT_METRICS:
                sides, strata, values = event_sides, ev_strata, prepared.ev_values[metric]
                clustered = has_clusters
            else:
                sides, strata, values = trace_sides, tr_strata, prepared.tr_values[metric]
                clustered = traces_clustered
            units = _units(sides, strata, values, metric, clustered)
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
    out["window_start"] = window_start
    out["window_end"] = window_end
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
        stamps = naive_utc(col).dropna()
        if len(stamps):
            days.extend([stamps.min().date(), stamps.max().date()])
    return pick(days) if days else None  # type: ignore[operator]


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def describe_regression(
    row: Any, labels: dict[int, str] | None = None, topic_labels: dict[int, str] | None = None
) -> str:
    """One flagged row in a sentence a person reads: version, metric, where, numbers, certainty.

    Always-valid rows say on which day of the release they were flagged and give the
    always-valid 95% range (it holds on every day at once); window rows their window interval.
    """
    labels, topic_labels = labels or {}, topic_labels or {}
    metric = row.metric
    cluster = row.cluster_id
    topic = getattr(row, "topic_id", None)
    if not _missing(cluster):
        label = labels.get(int(cluster))
        where = f"in cluster {int(cluster)}" + (f" ({label})" if label else "")
    elif not _missing(topic):
        label = topic_labels.get(int(topic))
        where = f"in theme {int(topic)}" + (f" ({label})" if label else "")
    else:
        where = "mix-adjusted overall" if row.scope == "mix_adjusted" else "overall"
    versions = f"{row.candidate_version} vs {row.baseline_version}"
    if row.dimension == "prompt_version":
        versions = f"prompt {versions} (model {row.model_version})"
    always = str(row.test).startswith("always_valid")
    since = getattr(row, "flag_since", None)
    release = getattr(row, "release_day", None)
    when = ""
    if always and not _missing(since) and not _missing(release):
        flagged = fmt_release_day(pd.Timestamp(release).date(), pd.Timestamp(since).date())
        when = f", flagged on {flagged}"
    interval = "always-valid 95% range" if always else "95% CI"
    return (
        f"{versions}: {metric} {where}{when}: "
        f"{fmt_value(metric, row.rate_baseline)} -> {fmt_value(metric, row.rate_candidate)} "
        f"({fmt_delta(metric, row.delta)}, {interval} {fmt_delta(metric, row.ci_low)} to "
        f"{fmt_delta(metric, row.ci_high)}, n={row.n_candidate}/{row.n_baseline}, "
        f"q={row.q_value:.2g})"
    )
