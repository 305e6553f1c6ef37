"""Regressions stage: `version_metrics` (one day) and `version_regressions` (window + release).

Thin wiring: read the warehouse, call `feedback_pipelines.regressions`, write the partition
back and report. The statistics live in `feedback_pipelines.stats` (window test) and
`feedback_pipelines.regressions.sequential` (always-valid verdict) and are documented there.
"""

import json
import math
from dataclasses import replace
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    STORES_POOL,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import WINDOW_MAPPING, daily_partitions
from feedback_pipelines.regressions import store
from feedback_pipelines.regressions.compare import RegressionSettings, describe_regression
from feedback_pipelines.regressions.cumulative import guarantee_sentence, partition_rows
from feedback_pipelines.regressions.metrics import compute_version_metrics
from feedback_pipelines.regressions.sequential import SequentialSettings
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.schema import REGRESSION_COLUMNS

GROUP = "regressions"
_CLUSTERING_DEPS = ["cluster_assignments"]


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb"},
    owners=owners(GROUP),
    deps=["traces", "feedback_events"],
    metadata=warehouse_table("version_metrics"),
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def version_metrics(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """Daily health per model version and per (model, prompt) version.

    Volume (traces, feedback events), negative, correction, abandonment and regeneration rates
    with Wilson 95% intervals, latency p50/p95 and tokens in and out. One day, no window: the
    trend charts and the morning summary read it directly.
    """
    in_date_order(context)
    ds = context.partition_key
    with warehouse.get_connection() as conn:
        events, traces = store.read_day(conn, ds)
    metrics = compute_version_metrics(events, traces)
    metrics["ds"] = date.fromisoformat(ds)
    with warehouse.get_connection() as conn:
        store.write_metrics(conn, metrics, ds)
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
            "preview": markdown_table(preview.round(4)),
        }
    )


def regression_settings(settings: PipelineConfig) -> RegressionSettings:
    """The regression thresholds from the pipeline settings (FEEDBACK_BASELINE_VERSION etc.)."""
    mode = settings.regression_min_effect_test or "estimate"
    if mode not in ("estimate", "null"):
        raise ValueError(f"regression_min_effect_test must be 'estimate' or 'null', not {mode!r}")
    return RegressionSettings(
        window_days=settings.window_days,
        baseline_version=settings.baseline_version or None,
        sequential=replace(SequentialSettings(), min_effect_test=mode),
    )


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb"},
    deps=[
        dg.AssetDep("traces", partition_mapping=WINDOW_MAPPING),
        dg.AssetDep("feedback_events", partition_mapping=WINDOW_MAPPING),
        *_CLUSTERING_DEPS,
    ],
    owners=owners(GROUP),
    metadata=warehouse_table("version_regressions"),
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "no_regression",
            asset="version_regressions",
            description=(
                "Warns when a candidate model or prompt version is worse than its baseline by "
                "the always-valid verdict on everything since its release (e-BH q <= 0.025, "
                "effect over the minimum, enough data; holds however often it is read), naming "
                "the version, metric, cluster and the day it was flagged, with the numbers."
            ),
        )
    ],
)
def version_regressions(
    context: dg.AssetExecutionContext, settings: PipelineConfig, warehouse: WarehouseResource
):
    """Did a new model or prompt version make things worse, where, and how sure are we?

    Every candidate version is compared with its baseline (the version first seen before it, or
    FEEDBACK_BASELINE_VERSION) on negative, correction and abandonment rates and latency p95:
    overall, mix-adjusted across topics and per cluster (and per theme when the assignments
    carry a `topic_id`). Two kinds of rows (`test`):

    * always-valid ('always_valid', 'always_valid_mh'): everything since the candidate's release
      day, a mixture sequential test per row and e-BH per release, so the chance that a release
      which changed nothing is ever flagged stays under 2.5% however often this is read. Their
      `is_regression` is the alert; a flag stays raised (since `flag_since`) until the evidence
      says the difference is gone.
    * window ('z', 'fisher', 'cmh', 'exceedance_*', 'none'): the trailing window, for reading
      (effect and interval of the last 14 days); they never alert.
    """
    in_date_order(context)
    end = date.fromisoformat(context.partition_key)
    config = regression_settings(settings)
    start = end - timedelta(days=config.window_days - 1)
    with warehouse.get_connection() as conn:
        try:
            window, span, span_start = store.read_partition(conn, start, end, config)
        except store.MissingTables as exc:
            raise dg.Failure(str(exc)) from exc
    for note in window.notes:
        context.log.warning(note)
    events, traces, assignments = window.events, window.traces, window.assignments
    result = partition_rows(window, span, start, end, config)
    result.insert(0, "ds", end)
    with warehouse.get_connection() as conn:
        store.write_regressions(conn, result, end.isoformat())
    always = result["test"].str.startswith("always_valid")
    tested = int(result.loc[always, "q_value"].notna().sum())
    flagged = result[result["is_regression"]]
    improved = result[result["is_improvement"]]
    context.log.info(
        f"window {start}..{end}: {len(events):,} feedback events, {len(traces):,} traces, "
        f"{0 if assignments is None else len(assignments):,} cluster assignments; "
        f"{len(result)} rows ({int(always.sum())} always-valid since {span_start}), "
        f"{tested} always-valid tests, {len(flagged)} regressions, {len(improved)} improvements"
    )
    label_of, topic_of = window.labels, window.topic_labels
    findings = [_finding(row, label_of, topic_of) for row in flagged.itertuples(index=False)]
    description = (
        f"{len(flagged)} regression{'s' if len(flagged) != 1 else ''}: "
        + "; ".join(
            describe_regression(row, label_of, topic_of) for row in flagged.itertuples(index=False)
        )
        + f". {guarantee_sentence(config)}"
        if len(flagged)
        else f"no regression among {tested} always-valid tests (releases judged to {end})"
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
        shown = result[always & result["cluster_id"].isna() & result["topic_id"].isna()]
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
        "days_since_release",
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
            "preview": markdown_table(shown[preview_cols].head(20).round(4)),
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


# What a finding carries in the check's metadata: the comparison, from dimension to q-value,
# and when the release was flagged.
_FINDING_FIELDS = (
    *REGRESSION_COLUMNS[
        REGRESSION_COLUMNS.index("dimension") : REGRESSION_COLUMNS.index("q_value") + 1
    ],
    "topic_id",
    "release_day",
    "days_since_release",
    "flag_since",
    "note",
)


def _finding(row: object, labels: dict[int, str], topic_labels: dict[int, str]) -> dict:
    out = {name: _clean(getattr(row, name)) for name in _FINDING_FIELDS}
    cluster, topic = out["cluster_id"], out["topic_id"]
    out["cluster_label"] = labels.get(int(cluster)) if cluster is not None else None
    out["topic_label"] = topic_labels.get(int(topic)) if topic is not None else None
    return json.loads(json.dumps(out, default=str))
