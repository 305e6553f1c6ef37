"""The always-valid rows of `version_regressions`: each release judged on all its days so far.

Pure pandas, no Dagster; the statistics are in `regressions.sequential`.

`compute_regressions` tests a trailing window, which is a new test every morning: read daily, a
release where nothing changed is flagged on some day half the time (issue 18). Here every
comparison the window test makes (same baselines, units and strata) is also judged on its
**cumulative counts since the candidate's release day** with an always-valid verdict, so the
guarantee holds however often the table is read. These rows carry the alert.

What keeps the verdict one honest process (docs/research/sequential/INTEGRATION.md):

* **Span.** Candidate: release day .. d. Baseline: release day - `window_days` .. d (its
  pre-release window plus whatever it still serves beside the candidate).
* **Frozen strata.** An event counts under the cluster it got on its own day (the caller passes
  one frozen assignment per event, `store.read_release_span`); a trace under the cluster of its
  feedback of the same or earlier days. A later re-clustering never changes yesterday's counts.
* **Fixed latency thresholds.** Per release, the baseline's pre-release p95, overall and per
  topic (>= 20 values, else the overall one); latency is then the share of traces above it.
* **Path.** The verdict depends on the path (running p-value, latched flags), so each partition
  replays `sequential_verdicts` from the release day to its own day: no read of yesterday's
  partition, so reruns and backfills in any order give the same rows.
* **Themes.** With a `topic_id` in the assignments, theme rows (`scope` 'topic', `cluster_id`
  NULL, `topic_id` set) join the subtopic rows in the same e-BH family: e-BH is valid under any
  dependence, so nested rows cost only the family's size, and the per-release guarantee holds
  without an order between the levels.
"""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import pandas as pd

from feedback_pipelines.regressions import sequential as sq
from feedback_pipelines.regressions.compare import (
    EVENT_METRICS,
    METRICS,
    RegressionSettings,
    _Comparison,
    _comparisons,
    _first_seen,
    _Prepared,
    _window_test,
    compute_regressions,
)
from feedback_pipelines.regressions.metrics import naive_utc
from feedback_pipelines.schema import (
    ALWAYS_VALID_COLUMNS,
    REGRESSION_COLUMNS,
    REGRESSION_TABLE_COLUMNS,
)

_SIDES = ("candidate", "baseline")


def _day(frame: pd.DataFrame) -> pd.Series:
    col = frame["ds"] if "ds" in frame else frame["timestamp"]
    return naive_utc(col).dt.normalize()


def _levels(
    prepared: _Prepared, assignments: pd.DataFrame | None, ev_day: np.ndarray, tr_day: np.ndarray
) -> dict[str, _Cells]:
    """The units' cells per level: 'cluster' (subtopics), 'topic' (themes) if known."""
    levels = {"cluster": "cluster_id"}
    if assignments is not None and "topic_id" in assignments:
        levels["topic"] = "topic_id"
    ev_trace, tr_trace, count = prepared.trace_codes()
    # each trace's day: that of its first row
    first = (tr_trace >= 0) & ~pd.Series(tr_trace).duplicated().to_numpy()
    trace_day = np.full(count + 1, np.datetime64("NaT"), dtype=tr_day.dtype)  # [-1]: no trace
    trace_day[tr_trace[first]] = tr_day[first]
    # a trace takes the stratum of its feedback up to its own day: later feedback never
    # moves a trace counted yesterday
    seen = ev_day <= trace_day[ev_trace]
    out = {}
    for level, column in levels.items():
        ev_strata = prepared.event_strata(assignments, column, known_only=True)
        strata = (ev_strata, prepared.trace_strata(ev_strata, seen))
        out[level] = _Cells((ev_day, tr_day), strata)
    return out


def _release_day(comparison: _Comparison, models: pd.Series, prompts: pd.Series) -> date | None:
    if comparison.dimension == "model_version":
        stamp = models.get(comparison.candidate)
    else:
        stamp = prompts.get((comparison.model_version, comparison.candidate))
    return None if stamp is None or pd.isna(stamp) else pd.Timestamp(stamp).date()


def _daily_counts(
    prepared: _Prepared,
    cells: _Cells,
    comparison: _Comparison,
    release: pd.Timestamp,
    settings: RegressionSettings,
    level: str,
) -> pd.DataFrame:
    """Per (side, day, metric, stratum): units and outcomes (latency: over fixed thresholds)."""
    q = settings.latency_quantile
    tr_day, tr_strata = cells.tr_day, cells.tr_strata
    ev_sides, tr_sides = prepared.sides("ev", comparison), prepared.sides("tr", comparison)
    # latency thresholds: the baseline's p95 over its pre-release window, overall and per topic
    latency = prepared.tr_values["latency_p95"]
    base = tr_sides[1]
    lat, day = latency[base], tr_day[base]
    rel = release.to_datetime64()
    start = (release - pd.Timedelta(days=settings.window_days)).to_datetime64()
    pre_mask = (day < rel) & (day >= start) & ~np.isnan(lat)
    pre = pd.DataFrame({"stratum": tr_strata[base][pre_mask], "latency_p95": lat[pre_mask]})
    overall = float(np.quantile(pre["latency_p95"], q)) if len(pre) else math.inf
    sizes = pre.groupby("stratum")["latency_p95"]
    per = sizes.quantile(q)[sizes.size() >= 20]
    parts = []
    for side, ev_side, tr_side in zip(_SIDES, ev_sides, tr_sides, strict=True):
        for metric in METRICS:
            event = metric in EVENT_METRICS
            values = prepared.ev_values[metric] if event else prepared.tr_values[metric]
            rows = ev_side if event else tr_side
            if metric == "latency_p95":
                rows = rows & ~np.isnan(values)
                v = values[rows]
                limit = pd.Series(tr_strata[rows]).map(per).fillna(overall).to_numpy()
                x = (v > limit).astype(float)
                xp = (v > overall).astype(float)
            else:
                x = xp = values[rows].astype(float)
            parts.append(cells.sums(side, metric, event, rows, x, xp))
    daily = pd.concat(parts, ignore_index=True)
    daily = daily.sort_values(["side", "day", "metric", "stratum"], ignore_index=True)
    daily["level"] = level
    return daily


class _Cells:
    """(day, stratum) cells of one level's units as integer codes, so a day's sums are bincounts.

    Every outcome is 0 or 1, so the sums are exact in any order: the same floats as a groupby.
    """

    def __init__(self, days: tuple[np.ndarray, np.ndarray], strata: tuple[np.ndarray, np.ndarray]):
        self.tr_day, self.tr_strata = days[1], strata[1]
        day_codes, self.days = pd.factorize(np.concatenate(days))  # NaT: -1, never counted
        stratum_codes, self.strata = pd.factorize(np.concatenate(strata))
        self.width = max(len(self.strata), 1)
        cell = day_codes.astype(np.int64) * self.width + stratum_codes
        cell[day_codes < 0] = -1
        self.size = len(self.days) * self.width
        n_ev = len(days[0])
        self.cell = {True: cell[:n_ev], False: cell[n_ev:]}

    def sums(
        self, side: str, metric: str, event: bool, rows: np.ndarray, x: np.ndarray, xp: np.ndarray
    ) -> pd.DataFrame:
        cell = self.cell[event][rows]
        counted = cell >= 0
        cell, x, xp = cell[counted], x[counted], xp[counted]
        n = np.bincount(cell, minlength=self.size)
        used = np.flatnonzero(n)
        return pd.DataFrame(
            {
                "side": side,
                "day": self.days[used // self.width],
                "metric": metric,
                "stratum": self.strata[used % self.width],
                "x": np.bincount(cell, weights=x, minlength=self.size)[used],
                "n": n[used].astype(float),
                "xp": np.bincount(cell, weights=xp, minlength=self.size)[used],
            }
        )


def _cumulative(
    daily: pd.DataFrame, comparison: _Comparison, release: pd.Timestamp, day: pd.Timestamp, w: int
) -> pd.DataFrame:
    """The `sequential_verdicts` input of one comparison on one day (cumulative counts)."""
    first = {"candidate": release, "baseline": release - pd.Timedelta(days=w)}
    sums = []
    for side in _SIDES:
        rows = daily[
            (daily["side"] == side) & (daily["day"] >= first[side]) & (daily["day"] <= day)
        ]
        s = rows.groupby(["level", "metric", "stratum"])[["x", "n", "xp"]].sum()
        sums.append(s.rename(columns=lambda c, side=side: f"{c}_{side}"))
    table = sums[0].join(sums[1], how="outer").fillna(0.0).reset_index()
    if table.empty:
        return table
    # a metric without any unit on one side is not a comparison at all
    tot = table.groupby(["level", "metric"])[["n_candidate", "n_baseline"]].transform("sum")
    table = table[(tot["n_candidate"] > 0) & (tot["n_baseline"] > 0)]
    table = table.rename(
        columns={"xp_candidate": "x_candidate_pooled", "xp_baseline": "x_baseline_pooled"}
    )
    table.insert(0, "dimension", comparison.dimension)
    table.insert(1, "model_version", comparison.model_version)
    table.insert(2, "candidate_version", comparison.candidate)
    table.insert(3, "baseline_version", comparison.baseline)
    return table.reset_index(drop=True)


def always_valid_rows(
    events: pd.DataFrame,
    traces: pd.DataFrame,
    assignments: pd.DataFrame | None,
    end: date,
    settings: RegressionSettings | None = None,
    *,
    first_seen: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Today's always-valid rows of every comparison the window test makes (module docstring).

    Args:
        events: feedback_events from `window_days` before the earliest release still judged up
            to `end` (ds or timestamp, feedback_id, trace_id, kind, is_negative, versions).
        traces: traces over the same span (ds or timestamp, trace_id, versions, latency_ms,
            abandoned).
        assignments: One frozen assignment per event: feedback_id, cluster_id and optionally
            topic_id (-1 noise); None if clustering is unavailable (overall rows only).
        end: The partition day.
        settings: Thresholds (`settings.sequential` for the verdict); defaults if None.
        first_seen: Version history (model_version, prompt_version, first_seen), as for
            `compute_regressions`: the candidate's release day is its first_seen date.

    Returns:
        REGRESSION_COLUMNS + ["topic_id", *ALWAYS_VALID_COLUMNS]; `test` is 'always_valid'
        (overall, topic and cluster rows) or 'always_valid_mh' (mix-adjusted); `window_start`
        is the release day, `window_end` is `end`.
    """
    settings = settings or RegressionSettings()
    days = (_day(events).to_numpy(), _day(traces).to_numpy())
    return _always_valid(_Prepared(events, traces), days, assignments, end, settings, first_seen)


def _always_valid(
    prepared: _Prepared,
    days: tuple[np.ndarray, np.ndarray],
    assignments: pd.DataFrame | None,
    end: date,
    settings: RegressionSettings,
    first_seen: pd.DataFrame | None,
) -> pd.DataFrame:
    """`always_valid_rows` on prepared frames (`days`: `_day` of every input row)."""
    columns = REGRESSION_TABLE_COLUMNS
    ev_day, tr_day = days[0][prepared.ev_rows], days[1][prepared.tr_rows]
    end_ts = pd.Timestamp(end)
    w = settings.window_days
    # comparisons exactly as the window test makes them (same window, same history)
    start = (end_ts - pd.Timedelta(days=w - 1)).to_datetime64()
    last = end_ts.to_datetime64()
    ev_w = (ev_day >= start) & (ev_day <= last)
    tr_w = (tr_day >= start) & (tr_day <= last)
    comparisons = [
        c for c in _comparisons(prepared, settings, first_seen, ev_w, tr_w) if c.comparable
    ]
    if not comparisons:
        return pd.DataFrame(columns=columns)
    stamps = prepared.version_stamps()
    models = _first_seen(stamps, ["model_version"], first_seen)
    prompts = _first_seen(stamps, ["model_version", "prompt_version"], first_seen)
    levels: dict[str, _Cells] | None = None
    judged = []
    for comparison in comparisons:
        release = _release_day(comparison, models, prompts)
        if release is None or not 0 <= (end - release).days <= settings.max_release_days:
            continue  # settled releases keep their window rows only
        if levels is None:
            levels = _levels(prepared, assignments, ev_day, tr_day)
        rel = pd.Timestamp(release)
        daily = pd.concat(
            [
                _daily_counts(prepared, cells, comparison, rel, settings, level)
                for level, cells in levels.items()
            ],
            ignore_index=True,
        )
        judged.append((comparison, rel, daily))
    if not judged:
        return pd.DataFrame(columns=columns)
    # replay the path: one verdict per day from the earliest release day to today
    out, previous = None, None
    first_day = min(rel for _, rel, _ in judged)
    for offset in range((end_ts - first_day).days + 1):
        day = first_day + pd.Timedelta(days=offset)
        tables = [
            _cumulative(daily, comparison, rel, day, w)
            for comparison, rel, daily in judged
            if rel <= day
        ]
        tables = [t for t in tables if len(t)]
        if not tables:
            continue
        counts = pd.concat(tables, ignore_index=True)
        out = sq.sequential_verdicts(counts, previous, settings.sequential, day=day.date())
        previous = out
    if out is None or out.empty:
        return pd.DataFrame(columns=columns)
    replaced = {
        _key(c)
        for c, rel, daily in judged
        if not ((daily["side"] == "baseline") & (daily["day"] >= rel)).any()
    }
    return _as_table_rows(out, {_key(c): rel.date() for c, rel, _ in judged}, end, replaced)


def _key(c: _Comparison) -> tuple:
    return (c.dimension, c.model_version, c.candidate, c.baseline)


def _as_table_rows(
    out: pd.DataFrame, releases: dict[tuple, date], end: date, replaced: set[tuple]
) -> pd.DataFrame:
    """`sequential_verdicts` output in `version_regressions`' columns."""
    rows = out.copy()
    keys = list(zip(*(rows[k] for k in sq.KEYS[:4]), strict=True))
    fixed = "baseline not served since the release: certainty limited by its last days before it"
    rows["note"] = [
        "; ".join(p for p in (n, fixed) if p) if k in replaced else n
        for k, n in zip(keys, rows["note"], strict=True)
    ]
    rows["release_day"] = [releases[k] for k in keys]
    rows["days_since_release"] = pd.array(
        [(end - r).days for r in rows["release_day"]], dtype="Int64"
    )
    rows["window_start"] = rows["release_day"]
    rows["window_end"] = end
    theme = rows["scope"] == "topic"
    rows["topic_id"] = rows["cluster_id"].where(theme).astype("Int64")
    rows["cluster_id"] = rows["cluster_id"].where(~theme).astype("Int64")
    rows["ci_low"], rows["ci_high"] = rows["cs_low"], rows["cs_high"]
    rows["p_value"] = rows["p_always_valid"]
    rows["p_value_improvement"] = rows["p_always_valid_improvement"]
    for col in ("n_candidate", "n_baseline"):
        rows[col] = rows[col].astype("int64")
    for col in ("x_candidate", "x_baseline"):
        rows[col] = pd.to_numeric(rows[col]).round().astype("Int64")
    for col in ("is_regression", "is_improvement"):
        rows[col] = rows[col].astype(bool)
    rows["flag_since"] = pd.to_datetime(rows["flag_since"]).dt.date
    rows["note"] = [
        f"always-valid since the release on {r} (day {d}): " + n
        if n
        else f"always-valid since the release on {r} (day {d})"
        for r, d, n in zip(
            rows["release_day"], rows["days_since_release"], rows["note"], strict=True
        )
    ]
    columns = REGRESSION_TABLE_COLUMNS
    return rows[columns].reset_index(drop=True)


def window_theme_rows(
    events: pd.DataFrame,
    traces: pd.DataFrame,
    assignments: pd.DataFrame | None,
    settings: RegressionSettings | None = None,
    **window: object,
) -> pd.DataFrame:
    """The window test per theme, for reading: `compute_regressions` with the themes as strata.

    Only its per-stratum rows are kept (scope 'topic', `cluster_id` NULL, `topic_id` set); the
    overall and mix-adjusted rows are the subtopic run's. Empty without a `topic_id`.
    """
    if assignments is None or "topic_id" not in assignments:
        return pd.DataFrame(columns=[*REGRESSION_COLUMNS, "topic_id"])
    themes = assignments[["feedback_id", "topic_id"]].rename(columns={"topic_id": "cluster_id"})
    out = compute_regressions(events, traces, themes, settings, **window)  # type: ignore[arg-type]
    return _as_theme_rows(out)


def _theme_rows(
    prepared: _Prepared,
    assignments: pd.DataFrame | None,
    settings: RegressionSettings,
    **window: object,
) -> pd.DataFrame:
    """`window_theme_rows` on frames already prepared for the subtopic run."""
    if assignments is None or "topic_id" not in assignments:
        return pd.DataFrame(columns=[*REGRESSION_COLUMNS, "topic_id"])
    out = _window_test(prepared, assignments, "topic_id", settings, **window)  # type: ignore[arg-type]
    return _as_theme_rows(out)


def _as_theme_rows(out: pd.DataFrame) -> pd.DataFrame:
    """The per-stratum rows of a window test run on the themes, as theme rows."""
    out = out[out["scope"] == "cluster"].copy()
    out["scope"] = "topic"
    out["topic_id"] = out["cluster_id"].astype("Int64")
    out["cluster_id"] = pd.Series(pd.NA, index=out.index, dtype="Int64")
    return out.reset_index(drop=True)


def version_regression_rows(window: pd.DataFrame, always_valid: pd.DataFrame) -> pd.DataFrame:
    """Both kinds of rows of one partition: window rows become descriptive (they never alert).

    The window test's own verdict stays readable in its q-values and `note`; `is_regression` and
    `is_improvement` are the always-valid verdict's alone.
    """
    win = window.copy()
    if "topic_id" not in win:
        win["topic_id"] = pd.Series(pd.NA, index=win.index, dtype="Int64")
    demoted = []
    for reg, imp, note in zip(
        win["is_regression"], win["is_improvement"], win["note"], strict=True
    ):
        head = "descriptive (window), never alerts"
        if reg:
            head += "; the window test alone would flag a regression"
        elif imp:
            head += "; the window test alone would flag an improvement"
        demoted.append(f"{head}; {note}" if note else head)
    win["note"] = demoted
    win["is_regression"] = False
    win["is_improvement"] = False
    columns = REGRESSION_TABLE_COLUMNS
    if always_valid.empty:
        for col in ALWAYS_VALID_COLUMNS:
            win[col] = None
        return win[columns].reset_index(drop=True)
    for col in ALWAYS_VALID_COLUMNS:  # NULL, typed as the always-valid rows
        win[col] = pd.Series(None, index=win.index, dtype=always_valid[col].dtype)
    if win.empty:
        return always_valid[columns].reset_index(drop=True)
    return pd.concat([win[columns], always_valid[columns]], ignore_index=True)


def partition_rows(
    window,
    span,
    start: date,
    end: date,
    settings: RegressionSettings | None = None,
) -> pd.DataFrame:
    """Every `version_regressions` row of partition `end`: the window's, and the releases'.

    Args:
        window: The trailing window (`store.RegressionWindow`: events, traces, assignments,
            first_seen), read for the window test and its theme rows.
        span: Everything since the earliest judged release (`store.ReleaseSpan`), with each
            event's frozen assignment, for the always-valid rows.
        start: First day of the window.
        end: The partition.
        settings: The thresholds.
    """
    settings = settings or RegressionSettings()
    bounds = {"first_seen": window.first_seen, "window_start": start, "window_end": end}
    # each frame is prepared once: the span, and the window as its restriction if it can be
    spanned = _Prepared(span.events, span.traces)
    days = (_day(span.events).to_numpy(), _day(span.traces).to_numpy())
    prepared = _window_of(spanned, days, span, window, start, end)
    windowed = _window_test(prepared, window.assignments, "cluster_id", settings, **bounds)
    themes = _theme_rows(prepared, window.assignments, settings, **bounds)
    if len(themes):
        windowed["topic_id"] = pd.Series(pd.NA, index=windowed.index, dtype="Int64")
        windowed = pd.concat([windowed, themes], ignore_index=True)
    judged = _always_valid(spanned, days, span.assignments, end, settings, window.first_seen)
    return version_regression_rows(windowed, judged)


def _window_of(
    spanned: _Prepared,
    days: tuple[np.ndarray, np.ndarray],
    span,
    window,
    start: date,
    end: date,
) -> _Prepared:
    """The window's frames prepared: the span's, restricted to the window's days.

    Only when the window holds exactly those rows (as the store reads them: the span is the
    window plus the days before it); else they are prepared anew.
    """
    first, last = pd.Timestamp(start).to_datetime64(), pd.Timestamp(end).to_datetime64()
    ev_in, tr_in = ((d >= first) & (d <= last) for d in days)
    if _same_rows(window.events, span.events, ev_in) and _same_rows(
        window.traces, span.traces, tr_in
    ):
        return spanned.subset(window.events, window.traces, ev_in, tr_in)
    return _Prepared(window.events, window.traces)


def _same_rows(part: pd.DataFrame, whole: pd.DataFrame, rows: np.ndarray) -> bool:
    """Whether `part` is `whole[rows]`: same columns, dtypes and values, in the same order."""
    if list(part.columns) != list(whole.columns) or len(part) != int(rows.sum()):
        return False
    for column in part.columns:
        a, b = part[column], whole[column]
        if a.dtype != b.dtype:
            return False
        if not _equal(a.to_numpy(), b.to_numpy()[rows]):
            return False
    return True


def _equal(left: np.ndarray, right: np.ndarray) -> bool:
    """Equal arrays of one dtype, a missing value equal only to the same kind of missing value.

    (None is not NaN here: the window then is prepared anew, which is never wrong.)
    """
    if left.dtype.kind in "fcmM":  # NaN and NaT equal themselves here
        return bool(np.array_equal(left, right, equal_nan=True))
    if left.dtype != object:
        return bool(np.array_equal(left, right))
    try:
        same = left == right
    except TypeError:  # pd.NA, whose comparisons are neither true nor false
        same = np.zeros(len(left), dtype=bool)
    if not isinstance(same, np.ndarray) or same.dtype != bool:
        return False  # values that compare as arrays: not worth telling apart
    return all(_same(left[i], right[i]) for i in np.flatnonzero(~same))


def _same(a: object, b: object) -> bool:
    """One pair `==` did not find equal: the same missing value, or equal after all."""
    if a is b:  # None, pd.NA, pd.NaT
        return True
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if a is pd.NA or b is pd.NA:
        return False
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def release_span_start(first_seen: pd.DataFrame, end: date, settings: RegressionSettings) -> date:
    """First day the always-valid rows of partition `end` read.

    That is the baseline's pre-release window of the earliest release still judged (at most
    `max_release_days` back), or the trailing window's start.
    """
    w = settings.window_days
    earliest = end - timedelta(days=settings.max_release_days)
    window_start = end - timedelta(days=w - 1)
    if first_seen is None or first_seen.empty:
        return window_start
    days = naive_utc(first_seen["first_seen"]).dt.date.dropna()
    judged = [d for d in days if earliest <= d <= end]
    return min([window_start, *(d - timedelta(days=w) for d in judged)])


def guarantee_sentence(settings: RegressionSettings | None = None) -> str:
    """The always-valid guarantee in one plain sentence, for the report and the asset check."""
    half = (settings or RegressionSettings()).sequential.alpha / 2
    return (
        "For a release that changes nothing, the chance that it is ever flagged as a regression "
        f"on any day is at most {half:.1%} (and {half:.1%} for an improvement), however often "
        "this report is read."
    )
