"""What the report shows, as data: settings, the inputs read from the warehouse, and the views.

The builders (`reporting.build`) fill these from warehouse facts; the templates only lay them
out, so everything a reader sees can be tested without a browser or Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
from markupsafe import Markup

NOT_COMPUTED = "not computed yet"
UNKNOWN_VERSION = "(unknown version)"

METRIC_LABELS = {
    "negative_rate": "negative feedback",
    "correction_rate": "corrections",
    "abandonment_rate": "abandoned conversations",
    "latency_p95": "p95 latency",
    "slow_share": "slow answers (over the shared p95)",
}
STATUS_TEXT = {"new": "New", "growing": "Growing", "stable": "Stable", "faded": "Faded"}
DATASET_LABELS = {
    "sft": "SFT examples (corrected answers)",
    "preference": "preference pairs",
    "eval": "eval cases",
    "unpaired": "unpaired examples (liked or disliked answers)",
    "candidates": "prompt-tuning candidates",
}


# --------------------------------------------------------------------------------------------
# Settings and inputs
# --------------------------------------------------------------------------------------------


def report_key(kind: str, end: date) -> str:
    """Folder name of a report: dt=YYYY-MM-DD for a day, week=YYYY-Www for a week."""
    if kind == "weekly":
        iso = end.isocalendar()
        return f"week={iso.year}-W{iso.week:02d}"
    return f"dt={end.isoformat()}"


_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class ReportSettings:
    """Knobs of the report; defaults are the documented product defaults.

    Attributes:
        min_users_for_quotes: k: a cluster's quotes show only with at least k distinct users.
        alpha: The false-discovery rate the regression stage used (for the wording).
        max_clusters: Top clusters shown in full.
        max_quotes: Quotes per cluster (2–3 read well).
        max_quote_chars: Longer quotes are cut with an ellipsis.
        max_summary_findings: Regressions named in the summary before "and N more".
        max_improvements: Improvements listed one by one (the rest are counted).
        trend_days: Days of the trend charts, ending at the report's last day.
        max_trend_versions: Versions drawn in the trend chart (the busiest ones).
        max_version_cards: Versions shown as cards, flagged ones first (LLMFAO's 59 cards
            were over half the page); the table after them lists every version.
    """

    min_users_for_quotes: int = 5
    alpha: float = 0.05
    max_clusters: int = 8
    max_quotes: int = 3
    max_quote_chars: int = 240
    max_summary_findings: int = 3
    trend_days: int = 14
    max_trend_versions: int = 6
    max_version_cards: int = 12
    max_improvements: int = 5


@dataclass
class ReportInputs:
    """The warehouse's facts for one report, as small, already-aggregated DataFrames.

    None means "the stage that produces this has not run / its table does not exist" (the
    section then says so); an empty frame means "computed, nothing to show".

    Attributes:
        kind: "daily" or "weekly".
        start: First day covered (inclusive).
        end: Last day covered (inclusive).
        totals: Period totals: n_feedback, n_negative, n_users, n_traces, n_sessions,
            n_unknown_trace, n_late_feedback (missing keys count as 0).
        by_version: Period per model_version: n_feedback, n_negative, n_corrections, n_users.
        daily_by_version: Trend window per (ds, model_version): n_feedback, n_negative.
        version_metrics: version_metrics rows of the trend window (dimension model_version).
        regressions: version_regressions rows of the window that ends at `end`.
        regression_history: Earlier days' version_regressions rows (column `day`): every
            flagged one, and every row of the day before.
        regression_days: Earlier days on which the regression stage wrote any row.
        clusters: feedback_clusters rows of `end`.
        topics: feedback_topics rows of `end` (themes), when that table exists.
        faded_labels: ("cluster" | "topic", id) -> the last label of a subtopic or theme a
            regression row names that `end` no longer has (its events are counted as of their
            own day, so a release's verdict can outlive the topic).
        complaints: complaint_clusters rows of `end`, when that table exists.
        cluster_daily: Trend window per (cluster_id, ds): n (events assigned that day).
        cluster_people: Per cluster_id: events, users, with_user (events with a user id),
            conversations (distinct sessions; a trace without one counts alone).
        cluster_quotes: Candidate quotes per cluster: feedback_id, session_id, trace_id, kind,
            score, is_negative, request, comment, correction.
        tuning: The export of `end` per (dataset, split): n (in the export), n_new (new in
            the period; NA when unknown).
        tuning_feedback: Distinct feedback events behind the export: feedback_export,
            feedback_new.
        datacard: The end day's exports/dt=D/datacard.json, if any (never summed over days).
        previous: Totals (as `totals`, plus start and end) of the periods compared with:
            "yesterday" and "last week" for a day, "the week before" for a week.
        days_with_data: Days of the period that have any feedback.
        review: review_queue counts per reason: n.
        quarantine: quarantine counts per (source, reason): n.
        files: Landing files of the period: source, file, late (bool).
        links: Relative links from the report to its exports and review folders.
    """

    kind: str
    start: date
    end: date
    totals: dict[str, int] = field(default_factory=dict)
    by_version: pd.DataFrame | None = None
    daily_by_version: pd.DataFrame | None = None
    version_metrics: pd.DataFrame | None = None
    regressions: pd.DataFrame | None = None
    regression_history: pd.DataFrame | None = None
    regression_days: list[date] | None = None
    clusters: pd.DataFrame | None = None
    topics: pd.DataFrame | None = None
    faded_labels: dict[tuple[str, int], str] = field(default_factory=dict)
    complaints: pd.DataFrame | None = None
    cluster_daily: pd.DataFrame | None = None
    cluster_people: pd.DataFrame | None = None
    cluster_quotes: pd.DataFrame | None = None
    tuning: pd.DataFrame | None = None
    tuning_feedback: dict[str, int] = field(default_factory=dict)
    datacard: dict[str, Any] | None = None
    review: pd.DataFrame | None = None
    quarantine: pd.DataFrame | None = None
    files: pd.DataFrame | None = None
    links: dict[str, str] = field(default_factory=dict)
    previous: dict[str, dict[str, Any]] = field(default_factory=dict)
    days_with_data: list[date] | None = None


# --------------------------------------------------------------------------------------------
# View-model
# --------------------------------------------------------------------------------------------


@dataclass
class Tile:
    """A headline number: "Feedback events — 1,234 — from 456 people"."""

    label: str
    value: str
    detail: str = ""
    changes: list[str] = field(default_factory=list)  # "+5% vs yesterday", ...


@dataclass
class Finding:
    """One regression or improvement, ready to read."""

    direction: str  # "worse" | "better"
    dimension: str  # "model_version" | "prompt_version"
    subject: str  # "assistant-v7" or "prompt p3 (on assistant-v7)"
    candidate: str
    baseline: str
    scope: str  # "overall" | "topic"
    topic: str  # the cluster label, or "" for overall
    cluster_id: int | None
    metric: str
    metric_label: str
    candidate_value: str
    baseline_value: str
    effect: str
    interval: str
    q: float
    q_text: str
    confidence: str
    n_candidate: int
    n_baseline: int
    sentence: str
    plot: Markup
    note: str = ""
    key: tuple = ()  # identifies the comparison from day to day
    theme: str = ""  # the theme of the topic, when topics have two levels
    theme_id: int | None = None  # set on a theme-level row (no subtopic)
    age: str = ""  # "new" | "ongoing" (flagged on earlier days too)
    since: str = ""  # "new today" | "day 3, since Wed 2 Dec"
    trend: str = ""  # "growing: +17 points, was +12 on Thu 1 Dec"
    trend_key: str = ""  # "growing" | "shrinking" | "steady" | ""
    anytime: str = ""  # the always-valid p-value, when the stage wrote one
    grouped: bool = False  # a per-topic latency finding, shown folded in a FindingGroup
    mix: str = ""  # a mix-adjusted overall row: "on the same mix of topics, 16% vs 16% as measured"


@dataclass
class FindingGroup:
    """Findings of one kind folded into one row: per-topic latency, say, 14 topics of it."""

    title: str  # "p95 latency on 14 topics"
    summary: str  # "slower on 14 topics, largest +1.2 s on “refunds”"
    findings: list[Finding]


@dataclass
class Resolved:
    """A finding flagged on the previous day that is no longer flagged."""

    direction: str
    sentence: str
    since: str


@dataclass
class Quote:
    """One redacted piece of feedback: what was asked and what the user said, kept apart."""

    polarity: str  # "negative" | "positive" | "neutral"
    polarity_text: str  # "negative (thumbs down)"
    request: str
    comment: str
    correction: str
    feedback_id: str
    command: str  # feedback-pipelines session <id>


@dataclass
class Scorecard:
    """One model version's numbers for the period."""

    version: str
    feedback: str
    users: str
    share: str
    negative: str
    negative_meter: Markup
    corrections: str
    abandonment: str
    latency: str
    traces: str
    # "worse" | "better" | "same" | "topics" (worse on topics only) | "baseline" | "untested"
    verdict: str
    verdict_text: str
    spark: Markup | None
    colour: str
    confirmed: bool = True  # a flag today's q still shows (`build._holds`)


@dataclass
class ClusterView:
    """One topic (cluster) as the report shows it."""

    cluster_id: int
    label: str
    keyphrases: list[str]
    size: int
    users: int | None
    negative_rate: str
    status: str
    status_text: str
    first_seen: str
    spark: Markup | None
    quotes: list[Quote]
    quotes_hidden: str  # why quotes are hidden ("" when shown)
    regressed_on: list[str]
    people_text: str = ""  # "412 people" or "58 conversations (no user ids)"
    theme_id: int | None = None
    theme: str = ""
    anchor: str = ""  # id of its card, "" when it has no card


@dataclass
class ThemeView:
    """A theme (the upper topic level) and its subtopics shown as cards."""

    topic_id: int | None
    label: str
    status: str
    status_text: str
    size: int
    negative_rate: str
    subtopics: int
    clusters: list[ClusterView]
    complaints: list[tuple[str, int]] = field(
        default_factory=list
    )  # what went wrong, largest first


@dataclass
class TopicRow:
    """One row of the table of every topic."""

    label: str
    theme: str
    status: str
    status_text: str
    size: int
    people: str
    negative_rate: str
    anchor: str


@dataclass
class Section:
    """Computed or not, and the sentence to show when not."""

    computed: bool
    message: str = ""


@dataclass
class ExportsView:
    """What went to the tuning sets."""

    section: Section
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    # (what, new in the period, in the export, splits)
    total: int = 0  # distinct feedback events behind the export (never a sum over sets)
    sentence: str = ""
    link: str = ""
    new_total: int | None = None  # distinct feedback events behind what is new in the period
    scope: str = ""  # "the 14-day export (cumulative)"
    new_label: str = "new today"
    new_counts: dict[str, int] | None = None  # per set, new in the period (None = unknown)
    export_counts: dict[str, int] = field(default_factory=dict)  # per set, in the export


@dataclass
class ReviewView:
    """What was routed to people, and why."""

    section: Section
    total: int = 0
    reasons: list[tuple[str, int]] = field(default_factory=list)
    chart: Markup | None = None
    sentence: str = ""
    link: str = ""


@dataclass
class QualityView:
    """Whether the input can be trusted: loaded, quarantined by reason, late."""

    tiles: list[Tile]
    quarantined: int
    quarantine_reasons: list[tuple[str, str, int]]  # (source, reason, n)
    chart: Markup | None
    files: int
    late_files: list[str]
    sentence: str
    section: Section


@dataclass
class ReportView:
    """Everything one report page shows, in reading order."""

    kind: str
    title: str
    period: str
    start: date
    end: date
    generated_at: str
    has_data: bool
    headline: str
    summary: list[str]
    tiles: list[Tile]
    scorecards: list[Scorecard]
    scorecards_section: Section
    trend: Markup | None
    trend_legend: list[tuple[str, str, str]]  # (version, colour, dash)
    regressions: list[Finding]
    improvements: list[Finding]
    regression_groups: list[FindingGroup]
    improvement_groups: list[FindingGroup]
    resolved: list[Resolved]
    regressions_section: Section
    comparisons: str  # "41 comparisons over Nov 7 – Nov 20, false discoveries held at 5%"
    clusters: list[ClusterView]
    faded: list[ClusterView]
    clusters_section: Section
    hidden_quote_clusters: int
    themes: list[ThemeView]
    topic_rows: list[TopicRow]
    ranking_rule: str
    people_note: str  # how people are counted when user ids are missing
    votes_note: str  # what "negative" means for side-by-side votes ("" without any)
    complaints: list[tuple[str, int]]
    coverage: str  # "Covers 5 of 7 days (no feedback on Sat 14 Nov, Sun 15 Nov)."
    comparison: str  # vs the week before (weekly) / yesterday (daily)
    exports: ExportsView
    review: ReviewView
    quality: QualityView
    settings: ReportSettings

    @property
    def version_cards(self) -> list[Scorecard]:
        """The scorecards shown as cards: flagged ones first, up to the setting, in order."""
        flagged_first = sorted(  # stable: the cards' order within each kind
            self.scorecards, key=lambda c: c.verdict not in ("worse", "topics", "better")
        )
        shown = {id(c) for c in flagged_first[: self.settings.max_version_cards]}
        return [c for c in self.scorecards if id(c) in shown]

    @property
    def key(self) -> str:
        """The folder name of the report: dt=YYYY-MM-DD or week=YYYY-Www."""
        return report_key(self.kind, self.end)

    def index_entry(self) -> dict[str, Any]:
        """What the index page lists for this report (written beside it as report.json)."""
        return {
            "kind": self.kind,
            "key": self.key,
            "title": self.title,
            "period": self.period,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "headline": self.headline,
            "has_data": self.has_data,
            "regressions": len(self.regressions),
            "improvements": len(self.improvements),
            "new": sum(f.age == "new" for f in self.regressions),
            "ongoing": sum(f.age == "ongoing" for f in self.regressions),
            "resolved": sum(r.direction == "worse" for r in self.resolved),
            "generated_at": self.generated_at,
        }


# --------------------------------------------------------------------------------------------
# Formatting: one place, so every number reads the same
# --------------------------------------------------------------------------------------------
