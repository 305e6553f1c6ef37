"""The report's builders: warehouse facts -> sentences, numbers with intervals, and charts.

Everything a reader sees is decided here, in plain functions over small DataFrames, so it can be
tested without a browser or Dagster; the templates only lay it out. Three rules shape it:

* **Plain language first.** The summary is sentences ("assistant-v7 is worse on “invoice,
  refund”: 31% negative vs 14% on assistant-v6 (q < 0.001, very likely real)"); numbers carry
  their interval ("31% (27–35%)"); q-values are said in words as well as digits.
* **Honest about what is missing.** A table that a stage has not produced yet (None) makes its
  section say "not computed yet" instead of showing zeros; a day without feedback says so.
* **Safe with user text.** Strings from users (quotes, cluster labels, even version names) are
  redacted again here and escaped by the templates; a cluster's quotes are shown only when at
  least k distinct people are in it (k-anonymity), and hidden, with the reason, otherwise.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
from markupsafe import Markup

from feedback_pipelines import stats
from feedback_pipelines.formatting import (
    _nan,
    fmt_day,
    fmt_effect,
    fmt_int,
    fmt_interval,
    fmt_ms,
    fmt_pct,
    fmt_pct_interval,
    fmt_points,
    fmt_value,
    period_text,
    q_words,
)
from feedback_pipelines.privacy import redact_pii
from feedback_pipelines.reporting import charts
from feedback_pipelines.reporting.views import (
    _WS,
    DATASET_LABELS,
    METRIC_LABELS,
    NOT_COMPUTED,
    STATUS_TEXT,
    UNKNOWN_VERSION,
    ClusterView,
    ExportsView,
    Finding,
    QualityView,
    ReportInputs,
    ReportSettings,
    ReportView,
    ReviewView,
    Scorecard,
    Section,
    Tile,
)


def wilson(x: float, n: float) -> tuple[float, float]:
    """Wilson 95% interval of one proportion as plain floats (NaN when n is 0)."""
    low, high = stats.wilson_interval(x, n)
    return float(low), float(high)


def clean_text(text: object, max_chars: int = 240) -> str:
    """User text made fit to show: redacted (again), whitespace collapsed, cut with an ellipsis.

    The warehouse already holds redacted text; redacting again costs little and protects the
    report against a stage that forgot. Escaping is the template's job (autoescape).
    """
    if _nan(text) or text is None:
        return ""
    value = redact_pii(_WS.sub(" ", str(text)).strip()) or ""
    if len(value) > max_chars:
        value = value[: max_chars - 1].rstrip() + "…"
    return value


def _as_list(value: object) -> list[str]:
    """A list column as stored: a list, a numpy array, a JSON string, or nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in parsed] if isinstance(parsed, list) else [str(parsed)]
    if isinstance(value, Iterable):
        return [str(v) for v in value if v is not None]
    return [str(value)]


def _days(end: date, n: int) -> list[date]:
    return [end - timedelta(days=n - 1 - i) for i in range(n)]


def _to_date(value: object) -> date | None:
    if _nan(value):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()  # type: ignore[arg-type]


def _version(value: object) -> str:
    return UNKNOWN_VERSION if _nan(value) or value == "" else clean_text(value, 80)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


def cluster_labels(clusters: pd.DataFrame | None) -> dict[int, str]:
    """cluster_id -> readable, redacted label (used by findings and cluster cards)."""
    if clusters is None or clusters.empty or "cluster_id" not in clusters:
        return {}
    out = {}
    for row in clusters.itertuples(index=False):
        label = clean_text(getattr(row, "label", ""), 80)
        if not label:
            label = ", ".join(_as_list(getattr(row, "keyphrases", None))[:3])
        out[int(row.cluster_id)] = label or f"topic #{int(row.cluster_id)}"
    return out


def _bool(value: object) -> bool:
    return False if _nan(value) else bool(value)


def _finding(row: Any, direction: str, labels: dict[int, str], span: float) -> Finding:
    metric = str(row.metric)
    cluster = None if _nan(getattr(row, "cluster_id", None)) else int(row.cluster_id)
    scope = str(getattr(row, "scope", "") or ("cluster" if cluster is not None else "overall"))
    topic = labels.get(cluster, f"topic #{cluster}") if cluster is not None else ""
    candidate = _version(row.candidate_version)
    baseline = _version(row.baseline_version)
    dimension = str(getattr(row, "dimension", "model_version") or "model_version")
    subject = candidate
    if dimension == "prompt_version":
        model = getattr(row, "model_version", None)
        subject = f"prompt {candidate}" + (f" (on {_version(model)})" if not _nan(model) else "")
    q = getattr(row, "q_value" if direction == "worse" else "q_value_improvement", None)
    if _nan(q):
        q = getattr(row, "q_value", None)
    q_text, words = q_words(q)
    # The mix-adjusted latency test compares shares of answers slower than the pooled p95 (a
    # rate), not milliseconds: word and format it as a share.
    unit = "slow_share" if metric == "latency_p95" and scope == "mix_adjusted" else metric
    cand_v = fmt_value(unit, row.rate_candidate)
    base_v = fmt_value(unit, row.rate_baseline)
    if unit == "slow_share":
        adjective = "slower" if direction == "worse" else "faster"
        comparison = f"{cand_v} of answers slow vs {base_v}"
    elif metric == "latency_p95":
        adjective = "slower" if direction == "worse" else "faster"
        comparison = f"p95 latency {cand_v} vs {base_v}"
    else:
        adjective = direction
        noun = {
            "negative_rate": "negative",
            "correction_rate": "corrected",
            "abandonment_rate": "abandoned",
        }.get(metric, METRIC_LABELS.get(metric, metric))
        comparison = f"{cand_v} {noun} vs {base_v}"
    where = f"on “{topic}”" if cluster is not None else "overall"
    sentence = f"{subject} is {adjective} {where}: {comparison} on {baseline} ({q_text}, {words})."
    low, high = getattr(row, "ci_low", None), getattr(row, "ci_high", None)
    interval = "—" if _nan(low) or _nan(high) else fmt_interval(unit, low, high)
    effect = fmt_effect(unit, row.delta)
    plot = charts.effect_plot(
        None if _nan(row.delta) else float(row.delta),
        None if _nan(low) else float(low),
        None if _nan(high) else float(high),
        title=f"{METRIC_LABELS.get(unit, metric)} change {effect}, 95% interval {interval}",
        span=span,
    )
    return Finding(
        direction=direction,
        dimension=dimension,
        subject=subject,
        candidate=candidate,
        baseline=baseline,
        scope="topic" if cluster is not None else ("overall" if scope != "mix_adjusted" else scope),
        topic=topic,
        cluster_id=cluster,
        metric=metric,
        metric_label=METRIC_LABELS.get(unit, metric),
        candidate_value=cand_v,
        baseline_value=base_v,
        effect=effect,
        interval=interval,
        q=float("nan") if _nan(q) else float(q),  # type: ignore[arg-type]
        q_text=q_text,
        confidence=words,
        n_candidate=0 if _nan(row.n_candidate) else int(row.n_candidate),
        n_baseline=0 if _nan(row.n_baseline) else int(row.n_baseline),
        sentence=sentence,
        plot=plot,
        note=clean_text(getattr(row, "note", ""), 300),
    )


def build_findings(
    regressions: pd.DataFrame | None, labels: dict[int, str]
) -> tuple[list[Finding], list[Finding]]:
    """Flagged regressions and improvements, most certain and largest first.

    The flags are the regression stage's verdicts (q, minimum effect and sample already
    applied); the report does not second-guess them, it only orders and words them.
    """
    if regressions is None or regressions.empty:
        return [], []
    frame = regressions.copy()
    for col in ("is_regression", "is_improvement"):
        if col not in frame:
            frame[col] = False
        frame[col] = frame[col].map(_bool)
    out: dict[str, list[Finding]] = {"worse": [], "better": []}
    for direction, flag, qcol in (
        ("worse", "is_regression", "q_value"),
        ("better", "is_improvement", "q_value_improvement"),
    ):
        rows = frame[frame[flag]].copy()
        if rows.empty:
            continue
        if qcol not in rows:
            qcol = "q_value"
        rows["_q"] = pd.to_numeric(rows[qcol], errors="coerce").fillna(1.0)
        rows["_effect"] = -pd.to_numeric(rows["delta"], errors="coerce").abs().fillna(0.0)
        scope = rows["scope"] if "scope" in rows else pd.Series("", index=rows.index)
        rows["_latency"] = (rows["metric"] == "latency_p95") & (scope != "mix_adjusted")
        rows = rows.sort_values(["_latency", "_q", "_effect"], kind="stable")
        rate_rows = rows[~rows["_latency"]]
        rate_span = _span(rate_rows)
        lat_span = _span(rows[rows["_latency"]])
        for row, is_latency in zip(rows.itertuples(index=False), rows["_latency"], strict=True):
            span = lat_span if is_latency else rate_span
            out[direction].append(_finding(row, direction, labels, span))
    return out["worse"], out["better"]


def _span(rows: pd.DataFrame) -> float:
    values = [
        abs(float(v))
        for col in ("ci_low", "ci_high", "delta")
        if col in rows
        for v in rows[col]
        if not _nan(v)
    ]
    return max(values, default=1.0) * 1.1 or 1.0


def comparisons_text(regressions: pd.DataFrame | None, alpha: float) -> str:
    """How many tests stand behind the verdicts, and over which window."""
    if regressions is None or regressions.empty:
        return ""
    # Rows in the multiple-testing correction carry a q-value; reference rows only a p-value.
    column = "q_value" if "q_value" in regressions else "p_value"
    tested = int(pd.to_numeric(regressions.get(column), errors="coerce").notna().sum())
    window = ""
    if "window_start" in regressions and "window_end" in regressions:
        ws = _to_date(regressions["window_start"].dropna().min())
        we = _to_date(regressions["window_end"].dropna().max())
        if ws and we:
            window = f" over {ws.day} {ws.strftime('%b')} – {we.day} {we.strftime('%b %Y')}"
    return (
        f"{tested:,} comparisons{window} (each version against the one before it, overall and "
        f"per topic); q-values keep the share of false alarms under {alpha:.0%}."
    )


def _overall_row(regressions: pd.DataFrame | None, version: str) -> Any | None:
    """The row that carries a version's overall negative-rate verdict (mix-adjusted if any)."""
    if regressions is None or regressions.empty:
        return None
    f = regressions
    mask = (f["metric"] == "negative_rate") & (f["candidate_version"] == version)
    if "dimension" in f:
        mask &= f["dimension"].fillna("model_version") == "model_version"
    if "cluster_id" in f:
        mask &= f["cluster_id"].isna()
    rows = f[mask]
    if rows.empty:
        return None
    if "scope" in rows and (rows["scope"] == "mix_adjusted").any():
        rows = rows[rows["scope"] == "mix_adjusted"]
    return next(rows.itertuples(index=False))


def _verdict(regressions: pd.DataFrame | None, version: str) -> tuple[str, str]:
    row = _overall_row(regressions, version)
    if row is None:
        baselines = (
            set(regressions["baseline_version"].dropna())
            if regressions is not None and not regressions.empty
            else set()
        )
        if version in baselines:
            return "baseline", "Baseline: newer versions are compared with it."
        if regressions is None:
            return "untested", f"Comparison {NOT_COMPUTED}."
        return "untested", "Not compared (no earlier version, or too little data)."
    base = _version(row.baseline_version)
    if _bool(getattr(row, "is_regression", False)):
        q_text, words = q_words(row.q_value)
        return "worse", (
            f"Worse than {base}: {fmt_points(row.delta)} negative ({q_text}, {words})."
        )
    if _bool(getattr(row, "is_improvement", False)):
        q = getattr(row, "q_value_improvement", row.q_value)
        q_text, words = q_words(q)
        return "better", (
            f"Better than {base}: {fmt_points(row.delta)} negative ({q_text}, {words})."
        )
    if _nan(row.p_value):
        note = clean_text(getattr(row, "note", ""), 160)
        return "untested", f"Not tested against {base}" + (f": {note}." if note else ".")
    q_text, _ = q_words(row.q_value)
    return "same", f"No clear change vs {base} ({fmt_points(row.delta)}, {q_text})."


def _metric_period(
    version_metrics: pd.DataFrame | None, version: object, start: date, end: date
) -> dict[str, Any]:
    """Trace-based numbers of one version over the period, from version_metrics."""
    if version_metrics is None or version_metrics.empty:
        return {}
    vm = version_metrics
    days = vm["ds"].map(_to_date)
    mask = (days >= start) & (days <= end)
    if "dimension" in vm:
        mask &= vm["dimension"].fillna("model_version") == "model_version"
    mask &= vm["model_version"].isna() if _nan(version) else vm["model_version"] == version
    rows = vm[mask]
    if rows.empty:
        return {}
    n_traces = pd.to_numeric(rows.get("n_traces"), errors="coerce").fillna(0)
    n_ab = pd.to_numeric(rows.get("n_abandoned"), errors="coerce").fillna(0)
    total = float(n_traces.sum())
    out: dict[str, Any] = {"n_traces": int(total)}
    if total:
        rate = float(n_ab.sum()) / total
        low, high = wilson(float(n_ab.sum()), total)
        out["abandonment"] = fmt_pct_interval(rate, low, high)
        weights = n_traces / total
        for col in ("latency_p50_ms", "latency_p95_ms"):
            if col in rows:
                vals = pd.to_numeric(rows[col], errors="coerce")
                ok = vals.notna()
                if ok.any():
                    out[col] = float((vals[ok] * weights[ok]).sum() / max(weights[ok].sum(), 1e-9))
    return out


def build_scorecards(
    inputs: ReportInputs, days: list[date], settings: ReportSettings
) -> tuple[list[Scorecard], Markup | None, list[tuple[str, str, str]]]:
    """Per-version scorecards, the negative-rate trend chart, and its legend."""
    by_version = inputs.by_version
    if by_version is None or by_version.empty:
        return [], None, []
    bv = by_version.copy()
    bv["n_feedback"] = pd.to_numeric(bv["n_feedback"], errors="coerce").fillna(0)
    bv = bv.sort_values("n_feedback", ascending=False, kind="stable")
    total = float(bv["n_feedback"].sum()) or 1.0
    daily = inputs.daily_by_version
    # Colours follow volume rank, so the busiest version is always the first palette colour.
    order = [v for v in bv["model_version"].tolist()]
    index_of = {("" if _nan(v) else v): i for i, v in enumerate(order)}
    series: list[charts.TrendSeries] = []
    legend: list[tuple[str, str, str]] = []
    day_index = {d: i for i, d in enumerate(days)}
    per_version_daily: dict[str, tuple[list[float | None], list[float | None]]] = {}
    if daily is not None and not daily.empty:
        dd = daily.assign(day=daily["ds"].map(_to_date))
        for version in order:
            key = "" if _nan(version) else version
            rows = (
                dd[dd["model_version"].isna()]
                if _nan(version)
                else dd[dd["model_version"] == version]
            )
            values: list[float | None] = [None] * len(days)
            lows: list[float | None] = [None] * len(days)
            highs: list[float | None] = [None] * len(days)
            counts: list[float | None] = [0.0] * len(days)
            for r in rows.itertuples(index=False):
                i = day_index.get(r.day)
                n = 0.0 if _nan(r.n_feedback) else float(r.n_feedback)
                if i is None or n <= 0:
                    continue
                x = 0.0 if _nan(r.n_negative) else float(r.n_negative)
                values[i] = x / n
                lows[i], highs[i] = wilson(x, n)
                counts[i] = n
            per_version_daily[key] = (values, counts)
            drawable = any(v is not None for v in values) and not _nan(version)
            if drawable and len(series) < settings.max_trend_versions:
                idx = index_of[key]
                series.append(charts.TrendSeries(_version(version), values, lows, highs, idx))
                legend.append((_version(version), charts.colour(idx), charts.dash(idx)))
    title = "Share of negative feedback per model version per day, with 95% intervals"
    trend = (
        charts.trend_chart(days, series, title=title, variant="wide")
        + charts.trend_chart(days, series, title=title, width=420, height=260, variant="narrow")
        if series
        else None
    )
    cards = []
    for version, row in zip(order, bv.itertuples(index=False), strict=True):
        key = "" if _nan(version) else version
        n = float(row.n_feedback)
        x = 0.0 if _nan(row.n_negative) else float(row.n_negative)
        rate = x / n if n else math.nan
        low, high = wilson(x, n)
        corr = 0.0 if _nan(getattr(row, "n_corrections", 0)) else float(row.n_corrections)
        c_low, c_high = wilson(corr, n)
        verdict, verdict_text = (
            ("untested", "Feedback whose answer was never seen: no version to compare.")
            if _nan(version)
            else _verdict(inputs.regressions, version)
        )
        base_rate = None
        row_overall = None if _nan(version) else _overall_row(inputs.regressions, version)
        if row_overall is not None and not _nan(row_overall.rate_baseline):
            base_rate = float(row_overall.rate_baseline)
        colour_hex = charts.WORSE if verdict == "worse" else charts.colour(index_of[key])
        meter_max = min(1.0, max(0.25, (high if not _nan(high) else 0) * 1.25, base_rate or 0))
        meter = charts.interval_bar(
            rate,
            low,
            high,
            title=f"{_version(version)}: {fmt_pct_interval(rate, low, high)} negative"
            + (f"; baseline {fmt_pct(base_rate)}" if base_rate is not None else ""),
            scale_max=meter_max,
            reference=base_rate,
            colour_hex=colour_hex,
        )
        metrics = _metric_period(inputs.version_metrics, version, inputs.start, inputs.end)
        vm_missing = inputs.version_metrics is None
        latency = "—"
        if "latency_p50_ms" in metrics or "latency_p95_ms" in metrics:
            latency = (
                f"{fmt_ms(metrics.get('latency_p50_ms'))} median · "
                f"{fmt_ms(metrics.get('latency_p95_ms'))} p95"
            )
        values_counts = per_version_daily.get(key)
        spark = None
        if values_counts is not None:
            counts = values_counts[1]
            spark = charts.sparkline(
                counts,
                title=f"{_version(version)}: feedback per day over the last {len(days)} days",
            )
        cards.append(
            Scorecard(
                version=_version(version),
                feedback=fmt_int(n),
                users=fmt_int(getattr(row, "n_users", None)),
                share=fmt_pct(n / total),
                negative=fmt_pct_interval(rate, low, high),
                negative_meter=meter,
                corrections=fmt_pct_interval(corr / n if n else math.nan, c_low, c_high),
                abandonment=metrics.get("abandonment", NOT_COMPUTED if vm_missing else "—"),
                latency=latency if not vm_missing else NOT_COMPUTED,
                traces=fmt_int(metrics["n_traces"]) if "n_traces" in metrics else "—",
                verdict=verdict,
                verdict_text=verdict_text,
                spark=spark,
                colour=colour_hex,
            )
        )
    return cards, trend, legend


def _quotes(row: Any, settings: ReportSettings) -> tuple[list[str], str]:
    """A cluster's quotes if at least k distinct people are in it; else none and why."""
    users = getattr(row, "distinct_users", None)
    k = settings.min_users_for_quotes
    if _nan(users):
        return [], "Quotes hidden: the number of distinct people in this topic is unknown."
    if int(users) < k:
        return [], (
            f"Quotes hidden to protect privacy: fewer than {k} people wrote about this "
            f"({int(users)})."
        )
    out: list[str] = []
    for quote in _as_list(getattr(row, "quotes", None)):
        text = clean_text(quote, settings.max_quote_chars)
        if text and text not in out:
            out.append(text)
        if len(out) >= settings.max_quotes:
            break
    return out, "" if out else "No quotes were kept for this topic."


def build_clusters(
    inputs: ReportInputs,
    days: list[date],
    regressions: list[Finding],
    settings: ReportSettings,
) -> tuple[list[ClusterView], list[ClusterView], int]:
    """Top clusters by negative volume (regressed ones always included), faded ones apart."""
    clusters = inputs.clusters
    if clusters is None or clusters.empty:
        return [], [], 0
    labels = cluster_labels(clusters)
    regressed: dict[int, list[str]] = {}
    for f in regressions:
        if f.cluster_id is not None and f.subject not in regressed.setdefault(f.cluster_id, []):
            regressed[f.cluster_id].append(f.subject)
    frame = clusters.copy()
    frame = frame[pd.to_numeric(frame["cluster_id"], errors="coerce").fillna(-1) >= 0]
    size = pd.to_numeric(frame.get("size"), errors="coerce").fillna(0)
    neg = pd.to_numeric(frame.get("negative_rate"), errors="coerce").fillna(0)
    frame = frame.assign(
        _impact=size * neg, _regressed=frame["cluster_id"].astype(int).isin(regressed)
    )
    status = frame.get("status", pd.Series("stable", index=frame.index)).fillna("stable")
    frame = frame.assign(status_key=status.astype(str))
    frame = frame.sort_values(["_regressed", "_impact"], ascending=[False, False], kind="stable")
    daily: dict[int, list[float | None]] = {}
    if inputs.cluster_daily is not None and not inputs.cluster_daily.empty:
        day_index = {d: i for i, d in enumerate(days)}
        for r in inputs.cluster_daily.itertuples(index=False):
            i = day_index.get(_to_date(r.ds))
            if i is None or _nan(r.cluster_id):
                continue
            values = daily.setdefault(int(r.cluster_id), [0.0] * len(days))
            values[i] = float(r.n)
    shown, faded = [], []
    hidden = 0
    for row in frame.itertuples(index=False):
        cid = int(row.cluster_id)
        is_faded = row.status_key == "faded"
        if not is_faded and len(shown) >= settings.max_clusters and cid not in regressed:
            continue
        quotes, why = _quotes(row, settings)
        if is_faded:
            quotes, why = [], "Faded topic: quotes are shown only for current topics."
        elif why and why.startswith("Quotes hidden"):
            hidden += 1
        growth = getattr(row, "growth", None)
        status_text = STATUS_TEXT.get(row.status_key, row.status_key.title())
        if row.status_key == "growing" and not _nan(growth):
            status_text += f" ({float(growth):+.0%})"
        users = getattr(row, "distinct_users", None)
        first = _to_date(getattr(row, "first_seen", None))
        view = ClusterView(
            cluster_id=cid,
            label=labels.get(cid, f"topic #{cid}"),
            keyphrases=[clean_text(k, 40) for k in _as_list(getattr(row, "keyphrases", None))][:6],
            size=int(0 if _nan(row.size) else row.size),
            users=None if _nan(users) else int(users),
            negative_rate=fmt_pct(getattr(row, "negative_rate", None)),
            status=row.status_key,
            status_text=status_text,
            first_seen=fmt_day(first) if first else "",
            spark=(
                charts.sparkline(
                    daily[cid], title=f"Events per day in this topic, last {len(days)} days"
                )
                if cid in daily
                else None
            ),
            quotes=quotes,
            quotes_hidden=why,
            regressed_on=regressed.get(cid, []),
        )
        (faded if is_faded else shown).append(view)
    return shown, faded[: settings.max_clusters], hidden


def _split_text(splits: dict[str, int]) -> str:
    return " / ".join(f"{k} {v:,}" for k, v in splits.items() if v)


def build_exports(inputs: ReportInputs) -> ExportsView:
    """What was exported for tuning: from tuning_candidates, else the day's data card."""
    link = inputs.links.get("exports", "")
    tuning, card = inputs.tuning, inputs.datacard
    if tuning is None and card is None:
        return ExportsView(Section(False, f"Tuning exports: {NOT_COMPUTED}."), link="")
    rows: list[tuple[str, str, str]] = []
    total = 0
    if tuning is not None and not tuning.empty:
        order = {name: i for i, name in enumerate(DATASET_LABELS)}
        groups = sorted(
            tuning.groupby("dataset", sort=False, dropna=False),
            key=lambda g: (order.get(str(g[0]), len(order)), str(g[0])),
        )
        for dataset, group in groups:
            n = int(pd.to_numeric(group["n"]).sum())
            total += n
            splits = {
                str(s): int(v)
                for s, v in group.groupby("split", dropna=False)["n"].sum().items()
                if not _nan(s)
            }
            name = str(dataset)
            rows.append((DATASET_LABELS.get(name, name), fmt_int(n), _split_text(splits)))
    elif card:
        counts = card.get("counts", {}) if isinstance(card, dict) else {}
        splits_all = card.get("splits", {}) if isinstance(card, dict) else {}
        for name, n in counts.items():
            if not isinstance(n, int | float):
                continue
            total += int(n)
            splits = splits_all.get(name, {}) if isinstance(splits_all, dict) else {}
            split_text = (
                _split_text({str(k): int(v) for k, v in splits.items() if isinstance(v, int)})
                if isinstance(splits, dict)
                else ""
            )
            rows.append((DATASET_LABELS.get(name, name), fmt_int(n), split_text))
    if total:
        parts = [f"{count} {what.split(' (')[0]}" for what, count, _ in rows if count != "0"]
        sentence = "Exported for tuning: " + ", ".join(parts) + "."
    else:
        sentence = "Nothing was exported for tuning."
    return ExportsView(Section(True), rows, total, sentence, link if total else "")


def build_review(inputs: ReportInputs) -> ReviewView:
    """What was queued for people to review, by routing reason."""
    review = inputs.review
    link = inputs.links.get("review", "")
    if review is None:
        return ReviewView(Section(False, f"Review queue: {NOT_COMPUTED}."))
    reasons = [
        (clean_text(str(r).replace("_", " ") if not _nan(r) else "", 60) or "other", int(n))
        for r, n in review.groupby("reason", dropna=False)["n"].sum().items()
    ]
    reasons.sort(key=lambda t: (-t[1], t[0]))
    total = sum(n for _, n in reasons)
    chart = (
        charts.bar_chart(
            [(r.replace("_", " "), float(n)) for r, n in reasons],
            title="Items queued for human review, by reason",
            colour_hex=charts.PALETTE[3],
        )
        if reasons
        else None
    )
    sentence = (
        f"{total:,} item{'s' if total != 1 else ''} queued for human review."
        if total
        else "Nothing was queued for human review."
    )
    return ReviewView(Section(True), total, reasons, chart, sentence, link if total else "")


def build_quality(inputs: ReportInputs) -> QualityView:
    """Rows loaded, quarantined by reason, unknown and late input."""
    t = inputs.totals
    q = inputs.quarantine
    reasons: list[tuple[str, str, int]] = []
    if q is not None and not q.empty:
        for r in q.itertuples(index=False):
            reasons.append((str(r.source), clean_text(r.reason, 60), int(r.n)))
        reasons.sort(key=lambda x: (-x[2], x[0], x[1]))
    quarantined = sum(n for *_, n in reasons)
    loaded = int(t.get("n_feedback", 0)) + int(t.get("n_traces", 0))
    lines = loaded + quarantined
    files = inputs.files
    late = []
    n_files = 0
    if files is not None and not files.empty:
        n_files = len(files)
        late = sorted(
            f"{r.source}/{clean_text(r.file, 120)}" for r in files.itertuples(index=False) if r.late
        )
    unknown = int(t.get("n_unknown_trace", 0))
    late_fb = int(t.get("n_late_feedback", 0))
    tiles = [
        Tile("Answers (traces) loaded", fmt_int(t.get("n_traces", 0))),
        Tile("Feedback events loaded", fmt_int(t.get("n_feedback", 0))),
        Tile(
            "Lines quarantined",
            fmt_int(quarantined),
            f"{fmt_pct(quarantined / lines)} of input" if lines else "",
        ),
        Tile(
            "Feedback on unknown answers",
            fmt_int(unknown),
            "kept and counted, no version" if unknown else "",
        ),
        Tile("Feedback on earlier days' answers", fmt_int(late_fb)),
        Tile("Input files", fmt_int(n_files), f"{len(late)} arrived late" if late else ""),
    ]
    chart = None
    if reasons:
        chart = charts.bar_chart(
            [(f"{reason} ({source})", float(n)) for source, reason, n in reasons[:10]],
            title="Quarantined input lines by reason",
            colour_hex=charts.PALETTE[1],
        )
    if quarantined:
        top = reasons[0]
        sentence = (
            f"{quarantined:,} input line{'s' if quarantined != 1 else ''} could not be loaded "
            f"({fmt_pct(quarantined / lines)} of input; most often: {top[1]}). They are kept in "
            "the quarantine table with the file and line number."
        )
    elif lines:
        sentence = "Every input line loaded."
    else:
        sentence = "No input arrived for this period."
    if late:
        one = len(late) == 1
        sentence += (
            f" {len(late)} file{'' if one else 's'} arrived after the day's scheduled run and "
            f"{'was' if one else 'were'} picked up by the late-file sensor."
        )
    return QualityView(
        tiles, quarantined, reasons, chart, n_files, late, sentence, Section(q is not None)
    )


def _summary(
    view_has_data: bool,
    kind: str,
    inputs: ReportInputs,
    regressions: list[Finding],
    improvements: list[Finding],
    clusters: list[ClusterView],
    exports: ExportsView,
    review: ReviewView,
    quality: QualityView,
    settings: ReportSettings,
) -> tuple[str, list[str]]:
    """The plain-language summary and the one-line headline for the index."""
    span = "this day" if kind == "daily" else "this week"
    t = inputs.totals
    sentences: list[str] = []
    if not view_has_data:
        headline = f"No feedback for {span}."
        sentences.append(
            f"No feedback for {span}: nothing was received, so there is nothing to compare."
        )
        if quality.quarantined:
            sentences.append(quality.sentence)
        return headline, sentences
    n, users = int(t.get("n_feedback", 0)), int(t.get("n_users", 0))
    neg = int(t.get("n_negative", 0))
    low, high = wilson(neg, n)
    by_version = inputs.by_version
    n_versions = 0 if by_version is None else int(by_version["model_version"].notna().sum())
    volume = (
        f"{n:,} feedback event{'s' if n != 1 else ''} from {users:,} "
        f"{'person' if users == 1 else 'people'} on {n_versions} model "
        f"version{'s' if n_versions != 1 else ''}; "
        f"{fmt_pct_interval(neg / n if n else math.nan, low, high)} negative."
    )
    worst = [f for f in regressions if f.dimension == "model_version"] + [
        f for f in regressions if f.dimension != "model_version"
    ]
    named = worst[: settings.max_summary_findings]
    sentences.extend(f.sentence for f in named)
    if len(regressions) > len(named):
        more = len(regressions) - len(named)
        sentences.append(f"{more} more regression{'s are' if more != 1 else ' is'} listed below.")
    if inputs.regressions is not None and not regressions:
        sentences.append("No version got measurably worse in the comparison window.")
    sentences.extend(f.sentence for f in improvements[:2])
    sentences.append(volume)
    # Topics named in the summary are those big enough to quote: a topic of two people is
    # not a headline, and its label alone could point at them.
    k = settings.min_users_for_quotes
    named_topics = [c for c in clusters if c.users is not None and c.users >= k]
    for c in sorted((c for c in named_topics if c.status == "new"), key=lambda c: -c.size)[:2]:
        sentences.append(
            f"New topic: “{c.label}” ({c.size:,} events from {c.users:,} people, "
            f"{c.negative_rate} negative)."
        )
    for c in [c for c in named_topics if c.status == "growing"][:2]:
        growth = c.status_text.partition("(")[2].rstrip(")")
        sentences.append(
            f"Growing topic: “{c.label}” ({growth + ' in volume, ' if growth else ''}"
            f"{c.size:,} events, {c.negative_rate} negative)."
        )
    actions = []
    if exports.section.computed:
        actions.append(
            f"{exports.total:,} example{'s' if exports.total != 1 else ''} exported for tuning"
        )
    if review.section.computed:
        actions.append(f"{review.total:,} item{'s' if review.total != 1 else ''} queued for review")
    if actions:
        sentences.append(" and ".join(actions).capitalize() + ".")
    if quality.quarantined:
        sentences.append(quality.sentence.split(" They are kept")[0])
    if regressions:
        first = regressions[0] if not named else named[0]
        more = len(regressions) - 1
        headline = first.sentence
        if more:
            headline = f"{headline[:-1]}; {more} more regression{'s' if more != 1 else ''}."
    else:
        headline = volume
    return headline, sentences


def build_report(
    inputs: ReportInputs,
    settings: ReportSettings | None = None,
    generated_at: datetime | None = None,
) -> ReportView:
    """Turn one period's warehouse facts into the report's view-model.

    Args:
        inputs: The aggregated facts (see ReportInputs; None members = not computed yet).
        settings: Report knobs (k for quotes, how many clusters, ...).
        generated_at: Time stamp shown on the page (now, if None).

    Returns:
        The view the templates render.
    """
    settings = settings or ReportSettings()
    generated = (generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    days = _days(inputs.end, max(settings.trend_days, (inputs.end - inputs.start).days + 1))
    labels = cluster_labels(inputs.clusters)
    regressions, improvements = build_findings(inputs.regressions, labels)
    scorecards, trend, legend = build_scorecards(inputs, days, settings)
    clusters, faded, hidden = build_clusters(inputs, days, regressions, settings)
    exports = build_exports(inputs)
    review = build_review(inputs)
    quality = build_quality(inputs)
    has_data = int(inputs.totals.get("n_feedback", 0)) > 0
    headline, summary = _summary(
        has_data,
        inputs.kind,
        inputs,
        regressions,
        improvements,
        clusters,
        exports,
        review,
        quality,
        settings,
    )
    t = inputs.totals
    n, neg = int(t.get("n_feedback", 0)), int(t.get("n_negative", 0))
    low, high = wilson(neg, n)
    tiles = [
        Tile("Feedback events", fmt_int(n), f"from {fmt_int(t.get('n_users', 0))} people"),
        Tile(
            "Negative",
            fmt_pct(neg / n) if n else "—",
            (f"95% interval {fmt_pct(low)}–{fmt_pct(high)}" if n else ""),
        ),
        Tile(
            "Regressions",
            fmt_int(len(regressions)) if inputs.regressions is not None else "—",
            f"{len(improvements)} improvement{'s' if len(improvements) != 1 else ''}"
            if inputs.regressions is not None
            else NOT_COMPUTED,
        ),
        Tile(
            "Queued for review",
            fmt_int(review.total) if review.section.computed else "—",
            f"{exports.total:,} exported for tuning" if exports.section.computed else "",
        ),
    ]
    kind_title = "Daily feedback review" if inputs.kind == "daily" else "Weekly feedback review"
    return ReportView(
        kind=inputs.kind,
        title=f"{kind_title} — {period_text(inputs.kind, inputs.start, inputs.end)}",
        period=period_text(inputs.kind, inputs.start, inputs.end),
        start=inputs.start,
        end=inputs.end,
        generated_at=generated,
        has_data=has_data,
        headline=headline,
        summary=summary,
        tiles=tiles,
        scorecards=scorecards,
        scorecards_section=Section(
            inputs.by_version is not None,
            "" if inputs.by_version is not None else f"Version numbers: {NOT_COMPUTED}.",
        ),
        trend=trend,
        trend_legend=legend,
        regressions=regressions,
        improvements=improvements,
        regressions_section=Section(
            inputs.regressions is not None,
            "" if inputs.regressions is not None else f"Regression tests: {NOT_COMPUTED}.",
        ),
        comparisons=comparisons_text(inputs.regressions, settings.alpha),
        clusters=clusters,
        faded=faded,
        clusters_section=Section(
            inputs.clusters is not None,
            "" if inputs.clusters is not None else f"Topics (clusters): {NOT_COMPUTED}.",
        ),
        hidden_quote_clusters=hidden,
        exports=exports,
        review=review,
        quality=quality,
        settings=settings,
    )


def trend_days(end: date, n: int) -> list[date]:
    """The n days ending at end, oldest first (the x axis of every trend)."""
    return _days(end, n)
