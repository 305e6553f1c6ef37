"""The report's builders: warehouse facts -> sentences, numbers with intervals, and charts.

Everything a reader sees is decided here, in plain functions over small DataFrames, so it can be
tested without a browser or Dagster; the templates only lay it out. Four rules shape it:

* **Plain language first.** The summary is sentences ("assistant-v7 is worse on “invoice,
  refund”: 31% negative vs 14% on assistant-v6 (q < 0.001, very likely real) — day 3, since
  Wed 18 Nov; growing"); numbers carry their interval; q-values are said in words as well.
* **The story over time.** Each regression says since when it has been flagged and whether it
  grew since the day before (`reporting.history`); tiles compare with yesterday and last week;
  findings flagged the day before and no longer flagged are listed as resolved; a weekly
  roll-up compares with the week before and says how many days of data it covers.
* **Only what is true.** Sentences are generated from facts that hold: a file is "late" only
  when ingest recorded it so, people are counted only from user ids (and conversations said
  to be conversations), a verdict is given only for what was compared, a topic's status is the
  one the clustering wrote, and sets of a tuning export are never added up (a preference pair
  is also two unpaired examples). A table a stage has not produced yet says "not computed yet".
* **Safe with user text.** Strings from users (quotes, cluster labels, even version names) are
  redacted again here and escaped by the templates; a cluster's quotes are shown only when at
  least k distinct people are in it (k-anonymity), and hidden, with the reason, otherwise.
"""

from __future__ import annotations

import math
import re
from dataclasses import replace
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
    fmt_release_day,
    fmt_value,
    period_text,
    q_words,
)
from feedback_pipelines.regressions.cumulative import guarantee_sentence
from feedback_pipelines.reporting import charts
from feedback_pipelines.reporting.history import (
    History,
    read_history,
    row_key,
    since_text,
    trend_words,
    with_stage_days,
)
from feedback_pipelines.reporting.text import clean_text
from feedback_pipelines.reporting.text import to_date as _to_date
from feedback_pipelines.reporting.text import version_text as _version
from feedback_pipelines.reporting.topics import (
    build_topics,
    cluster_labels,
    complaint_label,
    period_people,
    theme_labels,
    theme_of,
    users_counted,
    votes_note,
)
from feedback_pipelines.reporting.views import (
    DATASET_LABELS,
    METRIC_LABELS,
    NOT_COMPUTED,
    ClusterView,
    ExportsView,
    Finding,
    FindingGroup,
    QualityView,
    ReportInputs,
    ReportSettings,
    ReportView,
    Resolved,
    ReviewView,
    Scorecard,
    Section,
    Tile,
)

__all__ = ["build_report", "clean_text", "cluster_labels", "trend_days", "wilson"]


def wilson(x: float, n: float) -> tuple[float, float]:
    """Wilson 95% interval of one proportion as plain floats (NaN when n is 0)."""
    low, high = stats.wilson_interval(x, n)
    return float(low), float(high)


def _days(end: date, n: int) -> list[date]:
    return [end - timedelta(days=n - 1 - i) for i in range(n)]


def _bool(value: object) -> bool:
    return False if _nan(value) else bool(value)


def _short_day(d: date) -> str:
    """A day without its year: "Wed 18 Nov"."""
    return fmt_day(d).rsplit(" ", 1)[0]


# --------------------------------------------------------------------------------------------
# Findings: regressions and improvements, with their time
# --------------------------------------------------------------------------------------------


class _Names:
    """How a finding names its topic: subtopic labels, theme labels, subtopic -> theme."""

    def __init__(self, inputs: ReportInputs) -> None:
        self.labels = cluster_labels(inputs.clusters)
        self.themes = theme_labels(inputs.topics)
        self.theme_of = theme_of(inputs.clusters)
        # A regression on a topic that has since faded is named by its last label, and says so.
        for (level, i), label in inputs.faded_labels.items():
            names = self.labels if level == "cluster" else self.themes
            if i not in names and (text := clean_text(label, 80)):
                names[i] = f"{text} (faded)"

    def where(self, cluster: int | None, topic: int | None) -> tuple[str, str, str]:
        """(topic label, its theme, the words: "on “refunds” (theme “billing”)" or "overall")."""
        if cluster is not None:
            label = self.labels.get(cluster, f"topic #{cluster}")
            tid = self.theme_of.get(cluster, topic)
            theme = self.themes.get(tid, "") if tid is not None else ""
            words = f"on “{label}”" + (f" (theme “{theme}”)" if theme and theme != label else "")
            return label, theme, words
        if topic is not None and topic >= 0:
            theme = self.themes.get(topic, f"theme #{topic}")
            return theme, theme, f"on the theme “{theme}”"
        return "", "", "overall"


def _int_or_none(value: object) -> int | None:
    return None if _nan(value) else int(value)  # type: ignore[call-overload]


def _unit(metric: str, scope: str) -> str:
    # The mix-adjusted latency test compares shares of answers slower than the pooled p95 (a
    # rate), not milliseconds: word and format it as a share.
    return "slow_share" if metric == "latency_p95" and scope == "mix_adjusted" else metric


def _mix_words(row: Any, unit: str, shown: str) -> str:
    """What a mix-adjusted rate is, and the rates as measured when they read otherwise.

    The stage weights both versions' topics alike (Mantel-Haenszel), so a version can be worse
    topic for topic while its raw rate, the one the versions table shows, is the same or lower.
    """
    words = "on the same mix of topics"
    if unit not in ("negative_rate", "correction_rate", "abandonment_rate"):
        return words
    counts = [
        getattr(row, c, None) for c in ("x_candidate", "n_candidate", "x_baseline", "n_baseline")
    ]
    if any(_nan(c) for c in counts) or not counts[1] or not counts[3]:
        return words
    xc, nc, xb, nb = (float(c) for c in counts)  # type: ignore[arg-type]
    measured = f"{fmt_value(unit, xc / nc)} vs {fmt_value(unit, xb / nb)}"
    return words if measured == shown else f"{words}, {measured} as measured"


def _finding(
    row: Any,
    direction: str,
    names: _Names,
    span: float,
    history: History,
    today: date,
    daily: bool,
    period_start: date | None = None,
    alpha: float = ReportSettings.alpha,
) -> Finding:
    """One flagged row as a finding; new when first flagged within the period (else ongoing)."""
    period_start = period_start or today
    metric = str(row.metric)
    cluster = _int_or_none(getattr(row, "cluster_id", None))
    topic_id = _int_or_none(getattr(row, "topic_id", None))
    scope = str(getattr(row, "scope", "") or ("cluster" if cluster is not None else "overall"))
    topic, theme, where = names.where(cluster, topic_id)
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
    unit = _unit(metric, scope)
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
    mix = _mix_words(row, unit, f"{cand_v} vs {base_v}") if scope == "mix_adjusted" else ""
    tail = f" {mix}" if mix else ""
    sentence = (
        f"{subject} is {adjective} {where}: {comparison} on {baseline}{tail} ({q_text}, {words})."
        if _holds(q, alpha)
        else f"{subject} was flagged as {adjective} {where}, and today's numbers no longer confirm "
        f"it: {comparison} on {baseline}{tail} ({q_text}, {words})."
    )
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
    key = row_key(row)
    flag_since = _to_date(getattr(row, "flag_since", None))
    if flag_since is not None:  # the stage's own record wins
        since, exact = min(flag_since, today), True
    else:
        since, exact = history.since(key, direction, today)
    since_words = since_text(since, today, exact, daily)
    release = _to_date(getattr(row, "release_day", None))
    if release is not None and flag_since is not None:
        since_words += f"; flagged on {fmt_release_day(release, flag_since)}"
    delta = None if _nan(row.delta) else float(row.delta)
    trend_key, trend = trend_words(direction, delta, history.previous(key), unit)
    p_av = getattr(row, "p_always_valid", None)
    return Finding(
        direction=direction,
        dimension=dimension,
        subject=subject,
        candidate=candidate,
        baseline=baseline,
        scope="topic" if topic else ("overall" if scope != "mix_adjusted" else scope),
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
        key=key,
        theme=theme,
        theme_id=topic_id if cluster is None else None,
        age="new" if since >= period_start else "ongoing",
        since=since_words,
        trend=trend,
        trend_key=trend_key,
        anytime="" if _nan(p_av) else f"always-valid p = {float(p_av):.2g}",  # type: ignore[arg-type]
        grouped=metric == "latency_p95" and scope != "mix_adjusted" and bool(topic),
        mix=mix,
    )


def _flagged(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    for col in ("is_regression", "is_improvement"):
        if col not in frame:
            frame[col] = False
        frame[col] = frame[col].map(_bool)
    return frame


def build_findings(
    inputs: ReportInputs, settings: ReportSettings | None = None
) -> tuple[list[Finding], list[Finding], History]:
    """Flagged regressions and improvements, most certain and largest first, with their time.

    The flags are the regression stage's verdicts (q, minimum effect and sample already
    applied); the report does not second-guess them, it only orders and words them, and
    follows each back through the earlier days (`reporting.history`).
    """
    regressions = inputs.regressions
    history = with_stage_days(
        read_history(inputs.regression_history, inputs.end), inputs.regression_days
    )
    if regressions is None or regressions.empty:
        return [], [], history
    names = _Names(inputs)
    frame = _flagged(regressions)
    daily = inputs.kind == "daily"
    alpha = (settings or ReportSettings()).alpha
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
        rate_span = _span(rows[~rows["_latency"]])
        lat_span = _span(rows[rows["_latency"]])
        for row, is_latency in zip(rows.itertuples(index=False), rows["_latency"], strict=True):
            span = lat_span if is_latency else rate_span
            out[direction].append(
                _finding(
                    row, direction, names, span, history, inputs.end, daily, inputs.start, alpha
                )
            )
    return _fold_subtopics(out["worse"]), _fold_subtopics(out["better"]), history


def _theme_key(f: Finding, theme: str) -> tuple:
    return (f.dimension, f.subject, f.baseline, theme)


def _folded(f: Finding) -> bool:
    """Folded under its theme by `_fold_subtopics` (per-topic latency is folded by kind)."""
    return f.grouped and f.metric != "latency_p95"


def _fold_subtopics(findings: list[Finding]) -> list[Finding]:
    """A flagged theme's flagged subtopics, folded under it (see `group_findings`).

    The 100k first day listed 18 subtopics of the SQL theme as rows of their own beside the
    theme's: the reader needs the theme, and the subtopics on demand.
    """
    themes = {_theme_key(f, f.topic) for f in findings if f.theme_id is not None}
    return [
        replace(f, grouped=True)
        if not f.grouped and f.theme_id is None and f.theme and _theme_key(f, f.theme) in themes
        else f
        for f in findings
    ]


def group_findings(findings: list[Finding], direction: str) -> list[FindingGroup]:
    """Folded findings, a row for each kind: per-topic latency, each flagged theme's subtopics.

    So they never bury the others.
    """
    latency: list[Finding] = []
    by_theme: dict[str, list[Finding]] = {}
    for f in findings:
        if f.grouped:
            (by_theme.setdefault(f.theme, []) if _folded(f) else latency).append(f)
    groups = []
    if latency:
        n = len(latency)
        adjective = "slower" if direction == "worse" else "faster"
        topics = f"{n} topic{'s' if n != 1 else ''}"
        summary = _group_summary(latency, f"{adjective} on {topics}")
        groups.append(FindingGroup(f"p95 latency on {topics}", summary, latency))
    for theme, folded in by_theme.items():
        n, topics = len(folded), len({f.topic for f in folded})
        groups.append(
            FindingGroup(
                f"{n} finding{'s' if n != 1 else ''} on subtopics of the theme “{theme}”",
                _group_summary(folded, f"{direction} on {topics} of its subtopics"),
                folded,
            )
        )
    return groups


def _group_summary(folded: list[Finding], what: str) -> str:
    """A group's line: who is `what`, and its largest change."""
    largest = folded[0]
    for f in folded:
        if abs(_effect_value(f)) > abs(_effect_value(largest)):
            largest = f
    versions = sorted({f.subject for f in folded})
    measure = "" if largest.metric == "latency_p95" else f", {largest.metric_label}"
    return (
        f"{', '.join(versions)} {'is' if len(versions) == 1 else 'are'} {what}; the largest "
        f"change is {largest.effect} on “{largest.topic}” ({largest.candidate_value} vs "
        f"{largest.baseline_value}{measure})."
    )


def _effect_value(f: Finding) -> float:
    text = f.effect.replace("−", "-").replace("+", "").replace("±", "")
    try:
        number, unit = text.split(" ", 1)
        return float(number) * (1000 if unit.strip() == "s" else 1)
    except ValueError:
        return 0.0


def build_resolved(
    inputs: ReportInputs, history: History, names: _Names | None = None
) -> list[Resolved]:
    """Regressions flagged on the previous day the stage ran and not flagged today."""
    if inputs.regressions is None or history.previous_day is None:
        return []
    names = names or _Names(inputs)
    today: dict[tuple, Any] = {}
    if not inputs.regressions.empty:
        for row in _flagged(inputs.regressions).itertuples(index=False):
            today[row_key(row)] = row
    out = []
    day = history.previous_day
    alerting = any(k[-1] == "always_valid" for k in today)
    for key, past in sorted(history.flagged_on_previous_day("worse"), key=lambda kv: str(kv[0])):
        now = today.get(key)
        if now is not None and _bool(getattr(now, "is_regression", False)):
            continue
        dimension, model, candidate, baseline, metric, scope, cluster, topic, family = key
        if alerting and family == "window":
            continue  # window rows no longer alert: their old flags were not resolved
        subject = _version(candidate)
        if dimension == "prompt_version":
            subject = f"prompt {subject}" + (f" (on {_version(model)})" if model else "")
        _, _, where = names.where(cluster, topic)
        unit = _unit(str(metric), str(scope or ""))
        label = METRIC_LABELS.get(unit, str(metric))
        was = fmt_effect(unit, past.delta)
        if now is None:
            status = "not compared today"
        else:
            q_text, _ = q_words(getattr(now, "q_value", None))
            status = f"now {fmt_effect(unit, now.delta)}, {q_text}"
        since, _ = history.since(key, "worse", day + timedelta(days=1))
        out.append(
            Resolved(
                direction="worse",
                sentence=(
                    f"{subject} {where}, {label} vs {_version(baseline)}: no longer flagged "
                    f"(was {was} on {_short_day(day)}; {status})."
                ),
                since=(
                    f"flagged on {_short_day(day)}"
                    if since >= day
                    else f"flagged {_short_day(since)} – {_short_day(day)}"
                ),
            )
        )
    return out


def _span(rows: pd.DataFrame) -> float:
    values = [
        abs(float(v))
        for col in ("ci_low", "ci_high", "delta")
        if col in rows
        for v in rows[col]
        if not _nan(v)
    ]
    return max(values, default=1.0) * 1.1 or 1.0


def always_valid_rows(regressions: pd.DataFrame | None) -> pd.DataFrame | None:
    """The rows that carry the alert (the stage's always-valid verdicts), or None."""
    if regressions is None or regressions.empty or "test" not in regressions:
        return None
    rows = regressions[regressions["test"].astype(str).str.startswith("always_valid")]
    return None if rows.empty else rows


def comparisons_text(regressions: pd.DataFrame | None, alpha: float) -> str:
    """How many tests stand behind the verdicts, over which span, and what they promise."""
    if regressions is None or regressions.empty:
        return ""
    alerting = always_valid_rows(regressions)
    if alerting is not None:
        releases = alerting.get("release_day")
        first = _to_date(releases.dropna().min()) if releases is not None else None
        span = f" since {fmt_day(first)}" if first else ""
        themes = "topic_id" in alerting and alerting["topic_id"].notna().any()
        levels = "overall, per theme and per topic" if themes else "overall and per topic"
        return (
            f"{len(alerting):,} always-valid comparisons of each release against its baseline on "
            f"everything{span} ({levels}). "
            f"{guarantee_sentence()} "
            "The last 14 days' rows are kept for reading and never raise a flag."
        )
    # Rows in the multiple-testing correction carry a q-value; reference rows only a p-value.
    column = "q_value" if "q_value" in regressions else "p_value"
    tested = int(pd.to_numeric(regressions.get(column), errors="coerce").notna().sum())
    if not tested:
        return ""
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
    """The row that carries a version's overall negative-rate verdict (mix-adjusted if any).

    The always-valid row when the stage wrote one (it carries the alert), else the window's.
    """
    if regressions is None or regressions.empty:
        return None

    def overall(f: pd.DataFrame) -> pd.DataFrame:
        mask = (f["metric"] == "negative_rate") & (f["candidate_version"] == version)
        if "dimension" in f:
            mask &= f["dimension"].fillna("model_version") == "model_version"
        if "cluster_id" in f:
            mask &= f["cluster_id"].isna()
        if "topic_id" in f:
            mask &= f["topic_id"].isna()
        return f[mask]

    f = always_valid_rows(regressions)
    rows = overall(f) if f is not None else f
    if rows is None or rows.empty:  # no always-valid verdict on the rate (an old release)
        rows = overall(regressions)
    if rows.empty:
        return None
    if "scope" in rows and (rows["scope"] == "mix_adjusted").any():
        rows = rows[rows["scope"] == "mix_adjusted"]
    return next(rows.itertuples(index=False))


def _holds(q: object, alpha: float) -> bool:
    """Whether today's q still shows a flagged change (under the stage's `alpha`).

    A flag stays raised until its confidence sequence rules the change out (no flicker,
    `regressions.sequential`); meanwhile today's estimate can drift back to nothing (LLMFAO:
    "luminous-base is better overall: 41% negative vs 42% (q = 1.00, no evidence of a change)").
    Such a flag is worded as one that today's numbers no longer confirm.
    """
    return _nan(q) or float(q) < alpha  # type: ignore[arg-type]


def _flag_q(row: Any, verdict: str) -> object:
    """Today's q of a version's overall flag in the direction of `verdict`."""
    return row.q_value if verdict == "worse" else getattr(row, "q_value_improvement", row.q_value)


def _verdict(
    regressions: pd.DataFrame | None, version: str, row: Any | None, alpha: float
) -> tuple[str, str]:
    """A version's chip and verdict line (why not, when the stage could not compare it).

    `row`: the version's `_overall_row`.
    """
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
        return "untested", ""
    if _nan(row.baseline_version) or row.baseline_version == "":
        return "untested", ""  # nothing to compare with: no verdict to give
    base = _version(row.baseline_version)
    # The columns beside it are the version's own rates; a mix-adjusted verdict says it is not.
    mix = ", topic for topic" if getattr(row, "scope", "") == "mix_adjusted" else ""
    # The card's numbers are the period's; an always-valid verdict counts all the release's days.
    release = _to_date(getattr(row, "release_day", None))
    span = f" since its release ({_short_day(release)})" if release else ""
    for verdict, flag in (("worse", "is_regression"), ("better", "is_improvement")):
        if not _bool(getattr(row, flag, False)):
            continue
        q = _flag_q(row, verdict)
        q_text, words = q_words(q)
        first = f"{verdict.capitalize()} than {base}{span}"
        if not _holds(q, alpha):
            first = f"Flagged {verdict} than {base}{span}, not confirmed today"
        return verdict, f"{first}: {fmt_points(row.delta)} negative{mix} ({q_text}, {words})."
    if _nan(row.p_value):
        # The stage says why in its note ("...; not tested: baseline has 0 events < min 30").
        note = clean_text(getattr(row, "note", ""), 300)
        why = note.rsplit("not tested: ", 1)[1] if "not tested: " in note else ""
        why = re.sub(
            r"n=(\d+)/(\d+) < min (\d+) per side", r"\1 and \2 events (\3 needed on each side)", why
        )
        why = re.sub(r" < min (\d+)", r" (\1 needed)", why).replace("cluster", "topic")
        return "untested", f"Not compared with {base}: {why}." if why else ""
    q_text, _ = q_words(row.q_value)
    return "same", (
        f"No clear change overall vs {base}{span}{mix} ({fmt_points(row.delta)}, {q_text})."
    )


def _worse_on_topics(card: Scorecard, regressions: list[Finding]) -> Scorecard:
    """A version no worse overall that is worse on topics says so beside its verdict.

    Its card read "no clear change" under a headline that named it worse on a theme.
    """
    if card.verdict not in ("same", "better"):
        return card
    where = list(
        dict.fromkeys(
            # a subtopic folded under its flagged theme is named by that theme
            f"the theme “{f.theme}”" if f.theme_id is not None or _folded(f) else f"“{f.topic}”"
            for f in regressions
            if f.dimension == "model_version" and f.candidate == card.version and f.topic
        )
    )
    if not where:
        return card
    what = where[0] if len(where) == 1 else f"{len(where)} topics"
    verdict = "topics" if card.verdict == "same" else card.verdict
    text = f"{card.verdict_text} Worse on {what} (see Regressions)."
    return replace(card, verdict=verdict, verdict_text=text)


def _people_cell(row: Any, n: float) -> str:
    """A scorecard's people: distinct users, or "no user ids" with the conversations."""
    with_user = getattr(row, "n_with_user", None)
    if n and not _nan(with_user) and int(with_user) == 0:
        return "no user ids"
    return fmt_int(getattr(row, "n_users", None))


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


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


def _releases_before(overall: dict[str, Any]) -> dict[str, int]:
    """How many releases precede each version: its baseline, the baseline's, and so on.

    Cards go newest release first, so a release-day version with little traffic yet is read
    first, then what it is compared with; volume orders versions with no comparison.

    Args:
        overall: Version -> its `_overall_row` (None: not compared).
    """
    baseline = {
        v: row.baseline_version
        for v, row in overall.items()
        if row is not None and isinstance(row.baseline_version, str)
    }
    depth = {}
    for v in baseline:
        seen, b = {v}, baseline[v]
        while b not in seen:  # a cycle cannot come from first-seen order; guard anyway
            seen.add(b)
            b = baseline.get(b, b)
        depth[v] = len(seen) - 1
    return depth


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
    overall = {
        ("" if _nan(v) else v): None if _nan(v) else _overall_row(inputs.regressions, v)
        for v in order
    }
    depth = _releases_before(overall)
    rows = list(zip(order, bv.itertuples(index=False), strict=True))
    rows.sort(key=lambda r: (_nan(r[0]), -depth.get(r[0], 0)))  # stable: volume within
    for version, row in rows:
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
            else _verdict(inputs.regressions, version, overall[key], settings.alpha)
        )
        base_rate = None
        row_overall = overall[key]
        if row_overall is not None and not _nan(row_overall.rate_baseline):
            base_rate = float(row_overall.rate_baseline)
        colour_hex = charts.WORSE if verdict == "worse" else charts.colour(index_of[key])
        confirmed = verdict not in ("worse", "better") or (
            row_overall is not None and _holds(_flag_q(row_overall, verdict), settings.alpha)
        )
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
                users=_people_cell(row, n),
                share=fmt_pct(n / total),
                negative=fmt_pct_interval(rate, low, high),
                negative_meter=meter,
                corrections=fmt_pct_interval(corr / n if n else math.nan, c_low, c_high),
                abandonment=metrics.get("abandonment", NOT_COMPUTED if vm_missing else "—"),
                latency=latency if not vm_missing else NOT_COMPUTED,
                traces=fmt_int(metrics["n_traces"]) if "n_traces" in metrics else "—",
                verdict=verdict,
                verdict_text=verdict_text,
                confirmed=confirmed,
                spark=spark,
                colour=colour_hex,
            )
        )
    return cards, trend, legend


# --------------------------------------------------------------------------------------------
# Tuning exports: per set, new in the period vs in the export, never added up
# --------------------------------------------------------------------------------------------

SETS = ("sft", "preference", "eval", "unpaired", "candidates")
SET_NOUNS = {
    "sft": ("SFT example", "SFT examples"),
    "preference": ("preference pair", "preference pairs"),
    "eval": ("eval case", "eval cases"),
    "unpaired": ("unpaired example", "unpaired examples"),
    "candidates": ("prompt-tuning candidate", "prompt-tuning candidates"),
}


def _n_of(name: str, n: int) -> str:
    one, many = SET_NOUNS.get(name, (name, name))
    return f"{n:,} {one if n == 1 else many}"


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) and not _nan(value) else None


def card_sets(card: dict[str, Any]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Examples per set in one data card, no example counted in two sets, and their splits.

    Reads both shapes of the card: the older one, whose `counts` mixed JSONL files, Parquet-only
    rows and candidate cases (and whose `splits` held the corrections held out as eval
    references under sft/test), and the newer one, whose `counts` are the root JSONL files only,
    with `parquet_rows` and `candidates.cases` under their own names. `splits` (both shapes)
    wins when present; sft/test is left out (those corrections are the eval cases).
    """
    counts = card.get("counts") if isinstance(card.get("counts"), dict) else {}
    splits_all = card.get("splits") if isinstance(card.get("splits"), dict) else {}
    parquet = card.get("parquet_rows") if isinstance(card.get("parquet_rows"), dict) else {}
    totals: dict[str, int] = {}
    splits: dict[str, dict[str, int]] = {}
    for name in ("sft", "preference", "eval", "unpaired"):
        parts = splits_all.get(name)
        if isinstance(parts, dict) and parts:
            kept = {
                str(s): int(v)
                for s, v in parts.items()
                if _int(v) is not None and not (name == "sft" and s == "test")
            }
            splits[name] = {s: v for s, v in kept.items() if v}
            totals[name] = sum(kept.values())
            continue
        n = None
        if name in ("sft", "preference"):
            base, val = _int(counts.get(name)), _int(counts.get(f"{name}_validation"))
            if base is not None or val is not None:
                n = (base or 0) + (val or 0)
        elif name == "unpaired" and isinstance(parquet.get("unpaired"), dict):
            n = sum(_int(v) or 0 for v in parquet["unpaired"].values())
        else:
            n = _int(counts.get(name))
        if n is not None:
            totals[name] = n
    candidates = card.get("candidates")
    if isinstance(candidates, dict) and _int(candidates.get("cases")) is not None:
        totals["candidates"] = int(candidates["cases"])
    elif _int(counts.get("candidates")) is not None:
        totals["candidates"] = int(counts["candidates"])
    return totals, splits


def card_mode(card: dict[str, Any] | None) -> str:
    """The card's export mode ("cumulative", "incremental"), "" when it does not say."""
    if not isinstance(card, dict):
        return ""
    mode = card.get("export_mode")
    if not isinstance(mode, str):
        nested = card.get("mode")
        mode = nested.get("export") if isinstance(nested, dict) else nested
    return mode if isinstance(mode, str) and mode in ("cumulative", "incremental") else ""


def _card_days(card: dict[str, Any] | None, default: int) -> int:
    window = card.get("window") if isinstance(card, dict) else None
    days = window.get("days") if isinstance(window, dict) else None
    return int(days) if isinstance(days, int) and days > 0 else default


def _split_text(splits: dict[str, int]) -> str:
    return " / ".join(f"{k} {v:,}" for k, v in splits.items() if v)


def _sets_sentence(counts: dict[str, int]) -> str:
    parts = [_n_of(name, counts[name]) for name in SETS if counts.get(name)]
    if not parts:
        return "nothing"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def build_exports(inputs: ReportInputs, settings: ReportSettings | None = None) -> ExportsView:
    """What the day's tuning export holds, per set, and what of it is new in the period.

    From `tuning_candidates` (the export of the report's last day), else from that day's data
    card. A day's export is a snapshot of the window (cumulative) or only that day's new
    examples (incremental); the two numbers are kept apart, and sets are never added up: one
    preference pair is also two unpaired examples and maybe a prompt-tuning candidate.
    """
    settings = settings or ReportSettings()
    link = inputs.links.get("exports", "")
    tuning, card = inputs.tuning, inputs.datacard
    if tuning is None and card is None:
        return ExportsView(Section(False, f"Tuning exports: {NOT_COMPUTED}."), link="")
    mode = card_mode(card)
    days = _card_days(card, settings.trend_days)
    daily = inputs.kind == "daily"
    new_label = "new today" if daily else "new this week"
    in_export: dict[str, int] = {}
    new: dict[str, int] | None = {}
    splits: dict[str, dict[str, int]] = {}
    if tuning is not None and not tuning.empty:
        frame = tuning.copy()
        frame["n"] = pd.to_numeric(frame["n"], errors="coerce").fillna(0)
        has_new = "n_new" in frame and pd.to_numeric(frame["n_new"], errors="coerce").notna().any()
        for dataset, group in frame.groupby("dataset", sort=False, dropna=False):
            name = str(dataset)
            in_export[name] = int(group["n"].sum())
            if has_new and new is not None:
                new[name] = int(pd.to_numeric(group["n_new"], errors="coerce").fillna(0).sum())
            splits[name] = {
                str(s): int(v)
                for s, v in group.groupby("split", dropna=False)["n"].sum().items()
                if not _nan(s) and v
            }
        if not has_new:
            new = None
    elif tuning is not None:
        new = {}
    elif card:
        in_export, splits = card_sets(card)
        new = dict(in_export) if mode == "incremental" else None
    if mode == "incremental" and daily:
        new = dict(in_export)  # the day's export holds only the day's new examples
    order = {name: i for i, name in enumerate(SETS)}
    names = sorted(in_export, key=lambda n: (order.get(n, len(order)), n))
    rows = [
        (
            DATASET_LABELS.get(name, name),
            fmt_int(new.get(name, 0)) if new is not None else "—",
            fmt_int(in_export[name]),
            _split_text(splits.get(name, {})),
        )
        for name in names
    ]
    scope = f"the {days}-day export" + (f" ({mode})" if mode else "")
    fb = inputs.tuning_feedback
    sources = fb.get("feedback_export")
    new_sources = fb.get("feedback_new")
    if not any(in_export.values()):
        sentence = "Nothing is in the tuning export."
    elif mode == "incremental":
        sentence = (
            f"Exported {'today' if daily else 'on the last day'} (incremental export: only the "
            f"day's new examples): {_sets_sentence(in_export)}."
        )
    else:
        sentence = ""
        if new is not None:
            sentence = (
                f"{new_label.capitalize()} in the export: {_sets_sentence(new)}"
                + (f", from {new_sources:,} feedback events" if new_sources else "")
                + ". "
            )
        sentence += (
            f"{scope.capitalize()} holds {_sets_sentence(in_export)}"
            + (f", made from {sources:,} feedback events" if sources else "")
            + "."
        )
    if sum(1 for n in in_export.values() if n) > 1:
        sentence += (
            " Sets overlap (a feedback event can be in several: a pair's rejected answer may "
            "also be an unpaired example or a prompt-tuning case), so they are not added up."
        )
    return ExportsView(
        Section(True),
        rows,
        int(sources or 0),
        sentence,
        link if any(in_export.values()) else "",
        new_total=new_sources,
        scope=scope,
        new_label=new_label,
        new_counts=new,
        export_counts=in_export,
    )


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


def _file_path(source: object, file: object) -> str:
    """A landing file as people find it: source/dt=.../name, never the source twice."""
    path = clean_text(file, 160)
    src = clean_text(source, 20)
    if not src or path.startswith(f"{src}/"):
        return path
    return f"{src}/{path}"


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
    late: list[str] = []
    n_files = 0
    if files is not None and not files.empty:
        n_files = len(files)
        late = sorted(
            _file_path(r.source, r.file)
            for r in files.itertuples(index=False)
            if _bool(getattr(r, "late", False))
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
        # Ingest records a file as late when it was written after the day's scheduled run.
        # Which run loaded it (the sensor's, a backfill's) is not in the warehouse: not said.
        one = len(late) == 1
        if len(late) == n_files and not one:
            sentence += (
                f" All {len(late)} input files arrived late (written after the day's scheduled "
                "run, as in a backfill or a late delivery); their lines are included."
            )
        else:
            sentence += (
                f" {len(late)} input file{'' if one else 's'} arrived late (written after the "
                f"day's scheduled run); {'its' if one else 'their'} lines are included."
            )
    return QualityView(
        tiles, quarantined, reasons, chart, n_files, late, sentence, Section(q is not None)
    )


# --------------------------------------------------------------------------------------------
# Tiles, time and the summary
# --------------------------------------------------------------------------------------------


def _pct_change(now: float, before: float) -> str:
    change = (now - before) / before
    sign = "+" if change > 0 else "−" if change < 0 else "±"
    return f"{sign}{abs(change):.0%}"


def _changes(inputs: ReportInputs) -> tuple[list[str], list[str]]:
    """How the period's volume and negative share compare with the earlier periods."""
    t = inputs.totals
    n, neg = int(t.get("n_feedback", 0)), int(t.get("n_negative", 0))
    volume, negative = [], []
    for name, p in inputs.previous.items():
        pn, pneg = int(p.get("n_feedback", 0)), int(p.get("n_negative", 0))
        if not pn:
            volume.append(f"no feedback {name}")
            continue
        volume.append(f"{_pct_change(n, pn)} vs {name}" if n else f"none, {pn:,} {name}")
        if n:
            negative.append(f"{fmt_points(neg / n - pneg / pn)} vs {name}")
    return volume, negative


def coverage_text(inputs: ReportInputs) -> str:
    """How many days of the period have data (a week, or any period longer than a day)."""
    if inputs.days_with_data is None or inputs.start == inputs.end:
        return ""
    days = _days(inputs.end, (inputs.end - inputs.start).days + 1)
    have = set(inputs.days_with_data)
    missing = [d for d in days if d not in have]
    text = f"This period's data covers {len(days) - len(missing)} of {len(days)} days"
    if not missing:
        return text + "."
    names = ", ".join(_short_day(d) for d in missing[:7])
    return text + f" (no feedback on {names})."


def comparison_text(inputs: ReportInputs) -> str:
    """The period against the one before it (weekly), in one sentence."""
    if inputs.kind != "weekly" or not inputs.previous:
        return ""
    name, p = next(iter(inputs.previous.items()))
    pn, pneg = int(p.get("n_feedback", 0)), int(p.get("n_negative", 0))
    p_days = int(p.get("n_days_with_data", 0))
    span = f"{_short_day(p['start'])} – {_short_day(p['end'])}" if "start" in p else name
    if not pn:
        return f"Compared with {name} ({span}): it has no feedback to compare with."
    t = inputs.totals
    n, neg = int(t.get("n_feedback", 0)), int(t.get("n_negative", 0))
    days = f"{p_days} day{'s' if p_days != 1 else ''} of data"
    if not n:
        return f"Compared with {name} ({span}, {days}): {pn:,} feedback events then, none now."
    return (
        f"Compared with {name} ({span}, {days}): {n:,} feedback events vs {pn:,} "
        f"({_pct_change(n, pn)}); {fmt_pct(neg / n)} negative vs {fmt_pct(pneg / pn)} "
        f"({fmt_points(neg / n - pneg / pn)})."
    )


def _with_time(f: Finding) -> str:
    """A finding's sentence with since when it is flagged and whether it grew."""
    extra = f.since + (f"; {f.trend}" if f.trend else "")
    return f"{f.sentence[:-1]} — {extra}." if extra else f.sentence


def _summary(
    view_has_data: bool,
    kind: str,
    inputs: ReportInputs,
    regressions: list[Finding],
    improvements: list[Finding],
    resolved: list[Resolved],
    clusters: list[ClusterView],
    exports: ExportsView,
    review: ReviewView,
    quality: QualityView,
    settings: ReportSettings,
    coverage: str,
    comparison: str,
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
        sentences.extend(s for s in (coverage, comparison) if s)
        if quality.quarantined:
            sentences.append(quality.sentence)
        return headline, sentences
    n = int(t.get("n_feedback", 0))
    neg = int(t.get("n_negative", 0))
    low, high = wilson(neg, n)
    by_version = inputs.by_version
    n_versions = 0 if by_version is None else int(by_version["model_version"].notna().sum())
    people, _ = period_people(t, settings.min_users_for_quotes)
    volume = (
        f"{n:,} feedback event{'s' if n != 1 else ''} "
        f"{'in' if 'conversation' in people else 'from'} {people} on {n_versions} model "
        f"version{'s' if n_versions != 1 else ''}; "
        f"{fmt_pct_interval(neg / n if n else math.nan, low, high)} negative."
    )
    worst = [f for f in regressions if f.dimension == "model_version" and not f.grouped]
    worst += [f for f in regressions if f.dimension != "model_version" and not f.grouped]
    worst += [f for f in regressions if f.grouped]
    named = worst[: settings.max_summary_findings]
    sentences.extend(_with_time(f) for f in named)
    if len(regressions) > len(named):
        more = len(regressions) - len(named)
        sentences.append(f"{more} more regression{'s are' if more != 1 else ' is'} listed below.")
    if inputs.regressions is not None and not regressions:
        sentences.append("No version got measurably worse in the comparison window.")
    if resolved:
        k = len(resolved)
        sentences.append(
            f"{k} regression{'s' if k != 1 else ''} flagged the day before "
            f"{'is' if k == 1 else 'are'} no longer flagged (see Regressions)."
        )
    sentences.extend(f.sentence for f in [f for f in improvements if not f.grouped][:2])
    sentences.append(volume)
    sentences.extend(s for s in (coverage, comparison) if s)
    # Topics named in the summary are those big enough to quote: a topic of two people is
    # not a headline, and its label alone could point at them.
    k = settings.min_users_for_quotes
    named_topics = [c for c in clusters if c.users is not None and c.users >= k]
    for c in sorted((c for c in named_topics if c.status == "new"), key=lambda c: -c.size)[:2]:
        sentences.append(
            f"New topic: “{c.label}” ({c.size:,} events from {c.people_text}, "
            f"{c.negative_rate} negative)."
        )
    for c in [c for c in named_topics if c.status == "growing"][:2]:
        growth = c.status_text.partition("(")[2].rstrip(")")
        sentences.append(
            f"Growing topic: “{c.label}” ({growth + ' in volume, ' if growth else ''}"
            f"{c.size:,} events, {c.negative_rate} negative)."
        )
    actions = []
    if exports.section.computed and exports.export_counts:
        if exports.new_counts is not None and exports.scope and "incremental" not in exports.scope:
            actions.append(
                f"Tuning export: {_sets_sentence(exports.new_counts)} {exports.new_label}; "
                f"{exports.scope} holds {_sets_sentence(exports.export_counts)}"
            )
        else:
            actions.append(
                f"Tuning export ({exports.scope}): {_sets_sentence(exports.export_counts)}"
            )
    if review.section.computed:
        actions.append(f"{review.total:,} item{'s' if review.total != 1 else ''} queued for review")
    if actions:
        sentences.append("; ".join(actions) + ".")
    if quality.quarantined:
        sentences.append(quality.sentence.split(" They are kept")[0])
    if regressions:
        first = named[0] if named else regressions[0]
        more = len(regressions) - 1
        headline = _with_time(first)
        if more:
            headline = f"{headline[:-1]}; {more} more regression{'s' if more != 1 else ''}."
    else:
        headline = volume
    return headline, sentences


def _tiles(
    inputs: ReportInputs,
    regressions: list[Finding],
    improvements: list[Finding],
    resolved: list[Resolved],
    review: ReviewView,
    settings: ReportSettings,
) -> list[Tile]:
    t = inputs.totals
    n, neg = int(t.get("n_feedback", 0)), int(t.get("n_negative", 0))
    low, high = wilson(neg, n)
    people, _ = period_people(t, settings.min_users_for_quotes)
    volume, negative = _changes(inputs)
    computed = inputs.regressions is not None
    new = sum(f.age == "new" for f in regressions)
    ongoing = len(regressions) - new
    return [
        Tile(
            "Feedback events",
            fmt_int(n),
            f"{'in' if 'conversation' in people else 'from'} {people}",
            volume,
        ),
        Tile(
            "Negative",
            fmt_pct(neg / n) if n else "—",
            (f"95% interval {fmt_pct(low)}–{fmt_pct(high)}" if n else ""),
            negative,
        ),
        Tile(
            "Regressions",
            fmt_int(len(regressions)) if computed else "—",
            (f"{new} new · {ongoing} ongoing" if regressions else "none flagged")
            if computed
            else NOT_COMPUTED,
            ([f"{len(resolved)} resolved since the day before"] if resolved else [])
            + (
                [f"{len(improvements)} improvement{'s' if len(improvements) != 1 else ''}"]
                if computed
                else []
            ),
        ),
        Tile(
            "Queued for review",
            fmt_int(review.total) if review.section.computed else "—",
            "" if review.section.computed else NOT_COMPUTED,
        ),
    ]


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
    regressions, improvements, history = build_findings(inputs, settings)
    resolved = build_resolved(inputs, history)
    scorecards, trend, legend = build_scorecards(inputs, days, settings)
    scorecards = [_worse_on_topics(card, regressions) for card in scorecards]
    topics = build_topics(inputs, days, regressions, settings)
    exports = build_exports(inputs, settings)
    review = build_review(inputs)
    quality = build_quality(inputs)
    has_data = int(inputs.totals.get("n_feedback", 0)) > 0
    coverage = coverage_text(inputs)
    comparison = comparison_text(inputs)
    headline, summary = _summary(
        has_data,
        inputs.kind,
        inputs,
        regressions,
        improvements,
        resolved,
        topics.cards,
        exports,
        review,
        quality,
        settings,
        coverage,
        comparison,
    )
    _, people_note = period_people(inputs.totals, settings.min_users_for_quotes)
    complaints: list[tuple[str, int]] = []
    if inputs.complaints is not None and not inputs.complaints.empty:
        c = inputs.complaints
        if "complaint_id" in c:
            c = c[pd.to_numeric(c["complaint_id"], errors="coerce").fillna(-1) >= 0]
        size = pd.to_numeric(c.get("size"), errors="coerce").fillna(0)
        for row, n in sorted(
            zip(c.itertuples(index=False), size, strict=True), key=lambda rn: -rn[1]
        )[:10]:
            label = complaint_label(
                row, settings.min_users_for_quotes, users_counted(inputs.totals)
            )
            if label:
                complaints.append((label, int(n)))
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
        tiles=_tiles(inputs, regressions, improvements, resolved, review, settings),
        scorecards=scorecards,
        scorecards_section=Section(
            inputs.by_version is not None,
            "" if inputs.by_version is not None else f"Version numbers: {NOT_COMPUTED}.",
        ),
        trend=trend,
        trend_legend=legend,
        regressions=regressions,
        improvements=improvements,
        regression_groups=group_findings(regressions, "worse"),
        improvement_groups=group_findings(improvements, "better"),
        resolved=resolved,
        regressions_section=Section(
            inputs.regressions is not None,
            "" if inputs.regressions is not None else f"Regression tests: {NOT_COMPUTED}.",
        ),
        comparisons=comparisons_text(inputs.regressions, settings.alpha),
        clusters=topics.cards,
        faded=topics.faded,
        clusters_section=Section(
            inputs.clusters is not None,
            "" if inputs.clusters is not None else f"Topics (clusters): {NOT_COMPUTED}.",
        ),
        hidden_quote_clusters=topics.hidden,
        themes=topics.themes,
        topic_rows=topics.rows,
        ranking_rule=topics.ranking_rule,
        people_note=people_note,
        votes_note=votes_note(inputs.totals),
        complaints=complaints,
        coverage=coverage,
        comparison=comparison,
        exports=exports,
        review=review,
        quality=quality,
        settings=settings,
    )


def trend_days(end: date, n: int) -> list[date]:
    """The n days ending at end, oldest first (the x axis of every trend)."""
    return _days(end, n)
