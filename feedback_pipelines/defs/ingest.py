"""Ingest stage: the landing zone's day -> `traces`, `feedback_events`, `quarantine`."""

import dagster as dg

from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    STORES_POOL,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.ingest.day import IngestStats, ingest_day
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource

GROUP = "ingest"


def _spec(key: str, description: str, deps: tuple[str, ...] = ()) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        description=description,
        deps=list(deps),
        group_name=GROUP,
        kinds={"duckdb"},
        owners=owners(GROUP),
        metadata=warehouse_table(key),
    )


@dg.multi_asset(
    specs=[
        _spec(
            "traces",
            "One row per valid, unique model call of the day: pseudonymized user, PII-redacted "
            "messages and response, with derived `abandoned` and `regenerations`.",
            deps=("source_pull",),
        ),
        _spec(
            "feedback_events",
            "One row per valid, unique feedback event of the day (re-deliveries removed), joined "
            "to its trace (looking back `lookback_days`): versions, the request, `is_negative`.",
            deps=("traces", "source_pull"),
        ),
        _spec(
            "ingest_files",
            "One audit row per input file of the day: size, arrival time, lines, quarantined "
            "lines, and whether it arrived late (after the day's scheduled run).",
        ),
        _spec(
            "quarantine",
            "Every input line that could not be loaded: file, line, a readable reason and the "
            "raw text (truncated, redacted). The landing file keeps the original.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "input_usable",
            asset="feedback_events",
            blocking=True,
            description="Stops the downstream when the day had input but none of it loaded.",
        ),
        dg.AssetCheckSpec(
            "quarantine_rate",
            asset="quarantine",
            description="Warns when the share of quarantined lines is over the threshold.",
        ),
        dg.AssetCheckSpec(
            "traces_found",
            asset="feedback_events",
            description="Warns when many feedback events point at a trace nobody has seen.",
        ),
        dg.AssetCheckSpec(
            "input_present",
            asset="feedback_events",
            description="Warns when the landing zone holds no file for the day: nothing to load.",
        ),
    ],
    partitions_def=daily_partitions,
    can_subset=False,
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def landing_ingest(
    context: dg.AssetExecutionContext, settings: PipelineConfig, warehouse: WarehouseResource
):
    """Parse, validate, dedup, pseudonymize and redact one day of the landing zone."""
    in_date_order(context)
    ds = context.partition_key
    key = settings.resolved_pseudonym_key()
    if key.is_default:
        context.log.warning(
            "FEEDBACK_PSEUDONYM_KEY is not set: user ids are hashed with the built-in demo key. "
            "Set a secret key for real data."
        )
    with warehouse.get_connection() as conn:
        stats = ingest_day(
            conn,
            settings.landing_path,
            ds,
            key.value,
            settings.lookback_days,
            progress=context.log.info,
        )
        previews = {
            name: conn.execute(
                f"SELECT * EXCLUDE (ds, file{extra}) FROM {name} WHERE ds = ? LIMIT 5", [ds]
            ).df()
            for name, extra in (
                ("traces", ", messages, metadata"),
                ("feedback_events", ", metadata"),
                ("quarantine", ""),
                ("ingest_files", ""),
            )
        }
    lines = stats.total_lines
    if not any(stats.files.values()):
        context.log.warning(
            f"no input for {ds}: no file under {settings.landing_path}/*/dt={ds}/; "
            "the day is written empty"
        )
    context.log.info(
        f"{ds}: read {lines:,} lines from {sum(len(v) for v in stats.files.values())} files; "
        f"loaded {stats.loaded['traces']:,} traces and {stats.loaded['feedback']:,} feedback "
        "events, "
        f"quarantined {stats.total_quarantined:,}, dropped "
        f"{sum(stats.duplicates.values()):,} re-delivered duplicates in {stats.seconds:.1f}s "
        f"({lines / max(stats.seconds, 1e-9):,.0f} lines/s)"
    )
    yield from _results(stats, previews, settings)


def _results(stats: IngestStats, previews: dict, config: PipelineConfig):
    common = {
        "seconds": round(stats.seconds, 3),
        "partition": stats.ds,
        "phase_seconds": dg.MetadataValue.json(stats.phases),
    }
    yield dg.MaterializeResult(
        asset_key="traces",
        metadata={
            **common,
            "dagster/row_count": stats.loaded["traces"],
            "files": dg.MetadataValue.json(stats.files["traces"]),
            "duplicates_dropped": stats.duplicates["traces"],
            "abandoned": stats.abandoned,
            "preview": markdown_table(previews["traces"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="feedback_events",
        metadata={
            **common,
            "dagster/row_count": stats.loaded["feedback"],
            "files": dg.MetadataValue.json(stats.files["feedback"]),
            "duplicates_dropped": stats.duplicates["feedback"],
            "unknown_trace": stats.unknown_trace,
            "late_feedback": stats.late_feedback,
            "preview": markdown_table(previews["feedback_events"]),
        },
    )
    yield dg.MaterializeResult(
        asset_key="ingest_files",
        metadata={
            **common,
            "dagster/row_count": sum(len(v) for v in stats.files.values()),
            "late_files": stats.late_files,
            "lines": dg.MetadataValue.json(stats.lines),
        },
    )
    yield dg.MaterializeResult(
        asset_key="quarantine",
        metadata={
            **common,
            "dagster/row_count": stats.total_quarantined,
            "by_reason": dg.MetadataValue.json(stats.quarantine_reasons),
            "by_source": dg.MetadataValue.json(stats.quarantined),
            "preview": markdown_table(previews["quarantine"]),
        },
    )
    yield from evaluate_checks(stats, config)


def evaluate_checks(stats: IngestStats, config: PipelineConfig):
    """The ingest checks, as results for the day's materialization."""
    unusable = [
        s
        for s in ("traces", "feedback")
        if stats.lines[s] and stats.lines[s] == stats.quarantined[s]
    ]
    yield dg.AssetCheckResult(
        check_name="input_usable",
        asset_key="feedback_events",
        passed=not unusable,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(
            f"every line of {', '.join(unusable)} was quarantined: see the quarantine table"
            if unusable
            else ("no input for this day" if not stats.total_lines else "input loaded")
        ),
        metadata={
            "trace_lines": stats.lines["traces"],
            "feedback_lines": stats.lines["feedback"],
            "traces_quarantined": stats.quarantined["traces"],
            "feedback_quarantined": stats.quarantined["feedback"],
        },
    )
    files = sum(len(v) for v in stats.files.values())
    yield dg.AssetCheckResult(
        check_name="input_present",
        asset_key="feedback_events",
        passed=files > 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{files} input files, {stats.total_lines:,} lines"
        if files
        else f"no input for {stats.ds}: the landing zone has no file for this day",
        metadata={"files": files, "lines": stats.total_lines},
    )
    rate = stats.total_quarantined / stats.total_lines if stats.total_lines else 0.0
    yield dg.AssetCheckResult(
        check_name="quarantine_rate",
        asset_key="quarantine",
        passed=rate <= config.quarantine_warn_rate,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{rate:.1%} of lines quarantined "
        f"(threshold {config.quarantine_warn_rate:.0%})",
        metadata={
            "rate": dg.MetadataValue.float(rate),
            "quarantined": stats.total_quarantined,
            "lines": stats.total_lines,
            "by_reason": dg.MetadataValue.json(stats.quarantine_reasons),
        },
    )
    loaded = stats.loaded["feedback"]
    unknown = stats.unknown_trace / loaded if loaded else 0.0
    yield dg.AssetCheckResult(
        check_name="traces_found",
        asset_key="feedback_events",
        passed=unknown <= config.unknown_trace_warn_rate,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{stats.unknown_trace} of {loaded} feedback events point at an unknown trace",
        metadata={"unknown_trace": stats.unknown_trace, "rate": dg.MetadataValue.float(unknown)},
    )
