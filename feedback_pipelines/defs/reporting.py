"""Reporting stage: the daily review report (and the Monday weekly roll-up) for stakeholders."""

import re
from datetime import date, timedelta
from pathlib import Path

import dagster as dg

from feedback_pipelines.defs.metadata import STORE_RETRY, STORES_POOL, owners
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.reporting.build import build_report
from feedback_pipelines.reporting.load import load_report_inputs
from feedback_pipelines.reporting.render import rebuild_index, summary_markdown, write_report
from feedback_pipelines.reporting.views import ReportSettings
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.tables import table_columns

GROUP = "reporting"
# Everything the report shows.
UPSTREAM = (
    "traces",
    "feedback_events",
    "quarantine",
    "ingest_files",
    "version_metrics",
    "version_regressions",
    "feedback_clusters",
    "feedback_topics",
    "cluster_assignments",
    "complaint_clusters",
    "tuning_candidates",
    "review_queue",
)
# The schedule writes yesterday's report at 02:00 UTC: a report older than a day and a few hours
# means a night was missed (warn), two nights missed fails the policy.
REPORT_FRESHNESS = dg.FreshnessPolicy.time_window(
    fail_window=timedelta(hours=50), warn_window=timedelta(hours=26)
)
_REMOTE = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def _write(
    warehouse: WarehouseResource,
    settings: PipelineConfig,
    kind: str,
    start: date,
    end: date,
):
    with warehouse.get_connection() as conn:
        inputs = load_report_inputs(
            conn,
            kind,
            start,
            end,
            trend_days=settings.window_days,
            data_dir=settings.data_path,
        )
    view = build_report(
        inputs,
        ReportSettings(
            min_users_for_quotes=settings.min_users_for_quotes, trend_days=settings.window_days
        ),
    )
    return view, write_report(view, settings.data_path / "reports")


def check_report_file(path: Path) -> list[str]:
    """Problems of a written report page: any script, remote URL, or PII-looking text."""
    from feedback_pipelines.privacy import find_pii

    html = path.read_text(encoding="utf-8")
    problems = []
    if re.search(r"<script\b", html, re.IGNORECASE):
        problems.append("contains a <script> element")
    if _REMOTE.search(html):
        problems.append("links or loads a remote URL")
    text = re.sub(r"<[^>]+>", " ", re.sub(r"<style\b.*?</style>", " ", html, flags=re.S))
    problems.extend(
        f"PII-looking text: {kind}" for kind in sorted({_pii_kind(m) for m in find_pii([text])})
    )
    return problems


def _pii_kind(match: str) -> str:
    return "email" if "@" in match else "number or key"  # never echo the value itself


def _first_feedback_day(warehouse: WarehouseResource) -> date | None:
    """The first day with feedback in the warehouse (None: none yet)."""
    with warehouse.get_connection() as conn:
        if "feedback_events" not in table_columns(conn):
            return None
        first = conn.execute("SELECT min(ds) FROM feedback_events").fetchone()[0]
    return None if first is None else date.fromisoformat(str(first)[:10])


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"html", "markdown"},
    owners=owners(GROUP),
    deps=list(UPSTREAM),
    freshness_policy=REPORT_FRESHNESS,
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "report_is_inert",
            asset="review_report",
            description="The written page runs no script, loads nothing remote, and shows no "
            "PII-looking text.",
        )
    ],
)
def review_report(
    context: dg.AssetExecutionContext, settings: PipelineConfig, warehouse: WarehouseResource
):
    """The day's review report for stakeholders: reports/dt=D/report.html (+ report.md).

    One self-contained page: a plain-language summary, per-version scorecards with intervals and
    a trend, regressions and improvements with their confidence, top topics with redacted
    quotes (only for topics of at least k people), what was exported and queued for review, and
    data quality. On Mondays it also writes the weekly roll-up of the previous seven days (not
    of a week before the first day of feedback).
    reports/index.html lists every report. Stages that have not run yet show as "not computed".
    """
    in_date_order(context)
    ds = date.fromisoformat(context.partition_key)
    reports = settings.data_path / "reports"
    view, written = _write(warehouse, settings, "daily", ds, ds)
    context.log.info(
        f"{ds}: report with {len(view.regressions)} regressions, {len(view.improvements)} "
        f"improvements, {len(view.clusters)} topics ({view.hidden_quote_clusters} with quotes "
        f"hidden under k={settings.min_users_for_quotes}) -> {written.html}"
    )
    metadata = {
        "path": dg.MetadataValue.path(str(written.html)),
        "markdown": dg.MetadataValue.path(str(written.markdown)),
        "summary": dg.MetadataValue.md(summary_markdown(view, str(written.html))),
        "headline": view.headline,
        "regressions": len(view.regressions),
        "regressions_new": sum(f.age == "new" for f in view.regressions),
        "regressions_resolved": len(view.resolved),
        "improvements": len(view.improvements),
        "topics_shown": len(view.clusters),
        "topics_listed": len(view.topic_rows),
        "topics_quotes_hidden": view.hidden_quote_clusters,
        "has_feedback": view.has_data,
    }
    pages = [written.html]
    if ds.weekday() == 0:  # Monday: the previous Monday..Sunday
        week_end = ds - timedelta(days=1)
        first = _first_feedback_day(warehouse)
        if first is None or first > week_end:
            # a week before the data began (a new deployment's, the demo's first Monday): a
            # page saying "no feedback" for it would only crowd the index
            metadata["weekly_skipped"] = f"no feedback on or before {week_end}"
            context.log.info(
                f"no weekly roll-up of the week to {week_end}: no feedback on or before it "
                f"(first day: {first or 'none yet'})"
            )
        else:
            weekly, weekly_written = _write(
                warehouse, settings, "weekly", week_end - timedelta(days=6), week_end
            )
            pages.append(weekly_written.html)
            metadata["weekly_path"] = dg.MetadataValue.path(str(weekly_written.html))
            metadata["weekly_headline"] = weekly.headline
            context.log.info(f"weekly roll-up {weekly.period} -> {weekly_written.html}")
    index = rebuild_index(reports)
    metadata["index"] = dg.MetadataValue.path(str(index))
    yield dg.MaterializeResult(metadata=metadata)
    problems = {str(p): check_report_file(p) for p in pages}
    bad = {p: v for p, v in problems.items() if v}
    yield dg.AssetCheckResult(
        check_name="report_is_inert",
        passed=not bad,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(f"{Path(p).parent.name}: {', '.join(v)}" for p, v in bad.items())
        or "no script, no remote URL, no PII-looking text",
        metadata={
            "pages_checked": len(pages),
            "problems": sum(len(v) for v in problems.values()),
            "pages": dg.MetadataValue.json(problems),
        },
    )
