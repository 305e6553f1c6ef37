"""Sources stage: pull the day from the product's own database into the landing zone."""

from datetime import date, timedelta

import dagster as dg
import psycopg

from feedback_pipelines import config
from feedback_pipelines.defs.metadata import owners
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.resources.postgres import DSN_ENV, PostgresSourceResource, resource_from_env
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.sources.postgres import PullResult, pull_with_late_days

GROUP = "sources"
MAX_RETRIES = 3


def earlier_days(ds: str, n: int) -> list[str]:
    """The n days before ds that are partitions (not before FEEDBACK_START_DATE)."""
    first = date.fromisoformat(config.start_date())
    day = date.fromisoformat(ds)
    days = [day - timedelta(days=k) for k in range(n, 0, -1)]
    return [d.isoformat() for d in days if d >= first]


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"postgres", "python"},
    owners=owners(GROUP),
)
def source_pull(
    context: dg.AssetExecutionContext,
    settings: PipelineConfig,
    postgres_source: PostgresSourceResource,
) -> dg.MaterializeResult:
    """Pulls the day from every configured source into the landing zone.

    The product's PostgreSQL `traces` and `feedback` tables (when FEEDBACK_POSTGRES_DSN is set)
    land as `postgres.jsonl`, read with bounded, paginated queries. Earlier days whose row
    counts changed (late rows) are re-pulled too, and the landing sensor reruns them. Without
    a source configured this does nothing and says so.
    """
    ds = context.partition_key
    landing = settings.landing_path
    if not postgres_source.is_configured:
        context.log.info(f"no source to pull for {ds}: set {DSN_ENV} to pull from PostgreSQL")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": 0,
                "sources": dg.MetadataValue.json([]),
                "note": f"no source configured ({DSN_ENV} is not set): the landing zone is "
                "read as it is",
            }
        )
    mappings = postgres_source.mappings()
    earlier = earlier_days(ds, postgres_source.recheck_days)
    try:
        result, repulled = _pull(postgres_source, mappings, landing, ds, earlier)
    except psycopg.OperationalError as exc:  # the server is unreachable or went away: retry
        wait = postgres_source.retry_wait_s * 2**context.retry_number
        context.log.warning(
            f"PostgreSQL at {postgres_source.target()} failed ({type(exc).__name__}); "
            f"retry {context.retry_number + 1} of {MAX_RETRIES} in {wait}s"
        )
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from exc
    total = sum(result.rows.values())
    context.log.info(
        f"{ds}: pulled {result.rows.get('traces', 0):,} traces and "
        f"{result.rows.get('feedback', 0):,} feedback rows from {postgres_source.target()}"
        + (f"; re-pulled earlier days with late rows: {sorted(repulled)}" if repulled else "")
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": total,
            "sources": dg.MetadataValue.json(["postgres"]),
            "rows": dg.MetadataValue.json(result.rows),
            "changed": dg.MetadataValue.json(result.changed),
            "files": dg.MetadataValue.json(result.files),
            "repulled_days": dg.MetadataValue.json(repulled),
            "tables": dg.MetadataValue.json({m.source: m.table for m in mappings}),
        }
    )


def _pull(
    source: PostgresSourceResource, mappings: list, landing, ds: str, earlier: list[str]
) -> tuple[PullResult, dict[str, dict[str, int]]]:
    with source.connect() as conn:
        return pull_with_late_days(
            conn,
            mappings,
            landing,
            ds,
            earlier,
            batch_size=source.batch_size,
            max_rows=source.max_rows_per_day,
            name=source.file_name,
        )


defs = dg.Definitions(assets=[source_pull], resources={"postgres_source": resource_from_env()})
