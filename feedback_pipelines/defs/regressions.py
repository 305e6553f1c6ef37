"""Regressions stage: `version_metrics` (one day) and `version_regressions` (trailing window).

Thin wiring: read the warehouse, call `feedback_pipelines.regressions`, write the partition back
and report. The statistics live in `feedback_pipelines.stats` and are documented there.
"""

import json
import math
from datetime import date, timedelta

import dagster as dg
import duckdb
import pandas as pd

from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.regressions import (
    REGRESSION_COLUMNS,
    REGRESSIONS_DDL,
    VERSION_METRICS_DDL,
    RegressionSettings,
    compute_regressions,
    compute_version_metrics,
    describe_regression,
)
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.tables import table_columns, write_partition

GROUP = "regressions"
# Lineage only: the window actually read is `settings.window_days` (default 14).
_LINEAGE_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-13, end_offset=0)
_CLUSTERING_DEPS = ["cluster_assignments"]


def _md(df: pd.DataFrame) -> dg.MetadataValue:
    return dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "_no rows_")


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb"},
    deps=["traces", "feedback_events"],
    metadata={"table": "version_metrics", "partition_expr": "ds"},
)
def version_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Daily health per model version and per (model, prompt) version.

    Volume (traces, feedback events), negative, correction, abandonment and regeneration rates
    with Wilson 95% intervals, latency p50/p95 and tokens in and out. One day, no window: the
    trend charts and the morning summary read it directly.
    """
    ds = context.partition_key
    with warehouse.get_connection() as conn:
        tables = table_columns(conn)
        events = (
            conn.execute(
                "SELECT ds, model_version, prompt_version, kind, is_negative "
                "FROM feedback_events WHERE ds = ?",
                [ds],
            ).df()
            if "feedback_events" in tables
            else pd.DataFrame(
                columns=["ds", "model_version", "prompt_version", "kind", "is_negative"]
            )
        )
        traces = (
            conn.execute(
                "SELECT ds, model_version, prompt_version, latency_ms, input_tokens, "
                "output_tokens, abandoned, regenerations FROM traces WHERE ds = ?",
                [ds],
            ).df()
            if "traces" in tables
            else pd.DataFrame(
                columns=[
                    "ds",
                    "model_version",
                    "prompt_version",
                    "latency_ms",
                    "input_tokens",
                    "output_tokens",
                    "abandoned",
                    "regenerations",
                ]
            )
        )
    metrics = compute_version_metrics(events, traces)
    metrics["ds"] = date.fromisoformat(ds)
    with warehouse.get_connection() as conn:
        write_partition(conn, "version_metrics", VERSION_METRICS_DDL, metrics, ds)
    models = metrics[metrics["dimension"] == "model_version"]
    context.log.info(
        f"{ds}: {len(events):,} feedback events and {len(traces):,} traces over "
        f"{models['model_version'].notna().sum()} model versions -> {len(metrics)} rows"
    )
    preview = models[
        [
            "model_version",
            "n_traces",
            "n_feedback",
            "negative_rate",
            "correction_rate",
            "abandonment_rate",
            "latency_p95_ms",
        ]
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(metrics),
            "partition": ds,
            "feedback_events": len(events),
            "traces": len(traces),
            "preview": _md(preview.round(4)),
        }
    )


def regression_settings(settings: PipelineConfig) -> RegressionSettings:
    """The regression thresholds from the pipeline settings (FEEDBACK_BASELINE_VERSION etc.)."""
    return RegressionSettings(
        window_days=settings.window_days,
        baseline_version=settings.baseline_version or None,
    )


def _read_window(
    conn: duckdb.DuckDBPyConnection, start: date, end: date
) -> tuple[
    pd.DataFrame, pd.DataFrame, pd.DataFrame | None, pd.DataFrame, list[str], pd.DataFrame | None
]:
    """The window's events and traces, the window end's assignments, version history, labels."""
    tables = table_columns(conn)
    notes: list[str] = []
    missing = [t for t in ("feedback_events", "traces") if t not in tables]
    if missing:
        raise dg.Failure(f"upstream tables missing: {', '.join(missing)} (run ingest first)")
    events = conn.execute(
        "SELECT ds, feedback_id, trace_id, timestamp, kind, is_negative, model_version, "
        "prompt_version FROM feedback_events WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).df()
    traces = conn.execute(
        "SELECT ds, trace_id, timestamp, model_version, prompt_version, latency_ms, abandoned "
        "FROM traces WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).df()
    history = conn.execute(
        "SELECT model_version, prompt_version, min(timestamp) AS first_seen FROM traces "
        "WHERE ds <= ? AND model_version IS NOT NULL GROUP BY ALL",
        [end],
    ).df()
    assignments = None
    if "cluster_assignments" in tables:
        on_day = "WHERE ds = ?" if "ds" in tables["cluster_assignments"] else ""
        assignments = conn.execute(
            f"SELECT feedback_id, cluster_id FROM cluster_assignments {on_day}",
            [end] if on_day else [],
        ).df()
    else:
        notes.append("cluster_assignments table not found: overall comparisons only")
    labels = None
    if "feedback_clusters" in tables and {"cluster_id", "label"} <= tables["feedback_clusters"]:
        on_day = "WHERE ds = ?" if "ds" in tables["feedback_clusters"] else ""
        labels = conn.execute(
            f"SELECT DISTINCT cluster_id, label FROM feedback_clusters {on_day}",
            [end] if on_day else [],
        ).df()
    return events, traces, assignments, history, notes, labels


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb"},
    deps=[
        dg.AssetDep("traces", partition_mapping=_LINEAGE_WINDOW),
        dg.AssetDep("feedback_events", partition_mapping=_LINEAGE_WINDOW),
        *_CLUSTERING_DEPS,
    ],
    metadata={"table": "version_regressions", "partition_expr": "ds"},
    check_specs=[
        dg.AssetCheckSpec(
            "no_regression",
            asset="version_regressions",
            description=(
                "Warns when a candidate model or prompt version is significantly worse than its "
                "baseline (q < 0.05, effect over the minimum, enough data), naming the version, "
                "metric and cluster with the numbers."
            ),
        )
    ],
)
def version_regressions(
    context: dg.AssetExecutionContext, settings: PipelineConfig, warehouse: WarehouseResource
):
    """Did a new model or prompt version make things worse, where, and how sure are we?

    Over the trailing window ending on the partition day, every candidate version is compared
    with its baseline (the version first seen before it, or FEEDBACK_BASELINE_VERSION) on
    negative, correction and abandonment rates and latency p95: overall, mix-adjusted across
    clusters (Cochran–Mantel–Haenszel) and per cluster, with Fisher's exact or z tests,
    Benjamini–Hochberg q-values over every test of the window, a minimum effect and a minimum
    sample. The same for prompt versions within a model version. One row per comparison cell,
    with the reason in `note` when a cell could not be tested.
    """
    end = date.fromisoformat(context.partition_key)
    config = regression_settings(settings)
    start = end - timedelta(days=config.window_days - 1)
    with warehouse.get_connection() as conn:
        events, traces, assignments, history, notes, labels = _read_window(conn, start, end)
    for note in notes:
        context.log.warning(note)
    result = compute_regressions(
        events,
        traces,
        assignments,
        config,
        first_seen=history,
        window_start=start,
        window_end=end,
    )
    result.insert(0, "ds", end)
    with warehouse.get_connection() as conn:
        write_partition(conn, "version_regressions", REGRESSIONS_DDL, result, end.isoformat())
    tested = int(result["q_value"].notna().sum())
    flagged = result[result["is_regression"]]
    improved = result[result["is_improvement"]]
    context.log.info(
        f"window {start}..{end}: {len(events):,} feedback events, {len(traces):,} traces, "
        f"{0 if assignments is None else len(assignments):,} cluster assignments; "
        f"{len(result)} rows, {tested} tests, {len(flagged)} regressions, "
        f"{len(improved)} improvements"
    )
    label_of = (
        {int(r.cluster_id): str(r.label) for r in labels.itertuples(index=False)}
        if labels is not None
        else {}
    )
    findings = [_finding(row, label_of) for row in flagged.itertuples(index=False)]
    description = (
        f"{len(flagged)} regression{'s' if len(flagged) != 1 else ''}: "
        + "; ".join(describe_regression(row, label_of) for row in flagged.itertuples(index=False))
        if len(flagged)
        else f"no regression among {tested} tests (window {start} to {end})"
    )
    check = dg.AssetCheckResult(
        check_name="no_regression",
        asset_key="version_regressions",
        passed=flagged.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=description[:2000],
        metadata={
            "regressions": dg.MetadataValue.json(findings),
            "count": len(flagged),
            "tests": tested,
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
        },
    )
    shown = result[result["is_regression"] | result["is_improvement"]]
    if shown.empty:
        shown = result[result["cluster_id"].isna()]
    preview_cols = [
        "dimension",
        "candidate_version",
        "baseline_version",
        "metric",
        "scope",
        "cluster_id",
        "n_candidate",
        "n_baseline",
        "rate_candidate",
        "rate_baseline",
        "delta",
        "q_value",
        "is_regression",
        "is_improvement",
    ]
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(result),
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "tests": tested,
            "regressions": len(flagged),
            "improvements": len(improved),
            "preview": _md(shown[preview_cols].head(20).round(4)),
        },
        check_results=[check],
    )


def _clean(value: object) -> object:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):
        return value.item()  # numpy scalar -> Python
    return value


# What a finding carries in the check's metadata: the comparison, from dimension to q-value.
_FINDING_FIELDS = (
    *REGRESSION_COLUMNS[
        REGRESSION_COLUMNS.index("dimension") : REGRESSION_COLUMNS.index("q_value") + 1
    ],
    "note",
)


def _finding(row: object, labels: dict[int, str]) -> dict:
    out = {name: _clean(getattr(row, name)) for name in _FINDING_FIELDS}
    cluster = out["cluster_id"]
    out["cluster_label"] = labels.get(int(cluster)) if cluster is not None else None
    return json.loads(json.dumps(out, default=str))
