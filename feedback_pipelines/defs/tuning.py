"""Routing stage: `tuning_candidates` (exports for ML engineers) and `review_queue` (for people).

One step computes both, because both rest on the same window, vectors and conflict search;
either can be selected alone (the other's files and table are then left as they were).
Thin wiring: `feedback_pipelines.routing.day` does the work.
"""

from collections import Counter

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
from feedback_pipelines.resources.semantic import EmbedderResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.routing import review
from feedback_pipelines.routing.day import (
    DayResult,
    read_inputs,
    run_day,
    save_text_vectors,
    tuning_frame,
    tuning_settings,
)
from feedback_pipelines.routing.tuning.similarity import BlockNeighbours
from feedback_pipelines.routing.tuning.validate import validate_export
from feedback_pipelines.schema import REVIEW_DDL, TUNING_DDL
from feedback_pipelines.tables import write_partition

GROUP = "routing"
# Same-day upstream assets (the step degrades, and says so, when one of them has no rows).
UPSTREAM = (
    "feedback_embeddings",
    "qdrant_feedback",
    "cluster_assignments",
    "feedback_clusters",
    "version_regressions",
)
# Events are read with their trace's texts (`routing.day.read_window_events`), from `traces`.
_UPSTREAM = [
    dg.AssetDep("feedback_events", partition_mapping=WINDOW_MAPPING),
    dg.AssetDep("traces", partition_mapping=WINDOW_MAPPING),
    *UPSTREAM,
]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "tuning_candidates",
            description=(
                "Every exported tuning example with its split and lineage, and the files of "
                "exports/dt=<day>/: SFT from corrections, preference pairs (correction over "
                "the original; liked over disliked answers to near-identical requests), "
                "held-out eval cases of regressed clusters, per-cluster prompt-tuning "
                "candidates ranked by impact, TRL Parquet and a data card. Window: the "
                "trailing window_days ending at the partition."
            ),
            deps=_UPSTREAM,
            group_name=GROUP,
            kinds={"duckdb", "parquet"},
            owners=owners(GROUP),
            metadata=warehouse_table("tuning_candidates"),
        ),
        dg.AssetSpec(
            "review_queue",
            description=(
                "Feedback for people rather than automation, written to review/dt=<day>/"
                "queue.jsonl and queue.csv: unsafe feedback, corrections that disagree in one "
                "cluster, negative feedback the clustering left as noise, and a sample of each "
                "newly regressed cluster; each item with its reason, priority and ids."
            ),
            deps=_UPSTREAM,
            group_name=GROUP,
            kinds={"duckdb", "csv"},
            owners=owners(GROUP),
            metadata=warehouse_table("review_queue"),
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "exports_consistent",
            asset="tuning_candidates",
            blocking=True,
            description=(
                "Reads the written files back: row counts equal the data card's, no feedback "
                "id twice in a file, no PII-looking text, no group on both sides of a split, "
                "no two answers paired both ways."
            ),
        ),
    ],
    partitions_def=daily_partitions,
    can_subset=True,
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def routing(
    context: dg.AssetExecutionContext,
    settings: PipelineConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
):
    """Build the day's tuning exports and review queue from the trailing window of feedback."""
    in_date_order(context)
    ds = context.partition_key
    model = embedder.get()
    selected = {k.to_user_string() for k in context.selected_asset_keys}
    tuning = tuning_settings(settings)
    with warehouse.get_connection() as conn:
        inputs = read_inputs(
            conn,
            ds,
            settings.window_days,
            model.model_id,
            incremental=tuning.export_mode == "incremental",
        )
    context.log.info(
        f"{ds}: {len(inputs.events):,} feedback events over {settings.window_days} days, "
        f"{len(inputs.cached):,} vectors reused from feedback_embeddings, "
        f"{len(inputs.stored):,} from text_vectors"
    )
    for note in inputs.notes:
        context.log.warning(note)
    result = run_day(
        inputs,
        ds,
        settings.data_path,
        embed=model.embed,
        model_id=model.model_id,
        neighbours=BlockNeighbours(log=context.log.info),
        window_days=settings.window_days,
        settings=tuning,
        write_exports="tuning_candidates" in selected,
        write_queue="review_queue" in selected,
        run_id=context.run.run_id,
        log=context.log.info,
    )
    with warehouse.get_connection() as conn:
        save_text_vectors(conn, model.model_id, result.embedded)
        if "tuning_candidates" in selected:
            write_partition(conn, "tuning_candidates", TUNING_DDL, tuning_frame(result.export), ds)
        if "review_queue" in selected:
            write_partition(conn, "review_queue", REVIEW_DDL, review.table_frame(result.queue), ds)
    sets = result.sets
    context.log.info(
        f"{ds}: {len(sets.of('sft'))} SFT, {len(sets.of('preference'))} preference, "
        f"{len(sets.of('unpaired'))} unpaired, {len(sets.of('eval'))} eval examples, "
        f"{len(sets.candidates)} candidate cases; {sets.log.total()} removed by gates; "
        f"{len(result.queue)} items for review; {len(result.embedded)} texts embedded now; "
        f"{result.seconds:.1f}s"
    )
    if "tuning_candidates" in selected:
        yield _tuning_result(result)
        yield check_exports(result)
    if "review_queue" in selected:
        yield _review_result(result)


def _tuning_result(result: DayResult) -> dg.MaterializeResult:
    sets, export = result.sets, result.export
    counts = {f.path: f.rows for f in export.files}
    filters = {r["filter"]: r["removed"] for r in sets.log.as_records() if r["total"]}
    ranking = pd.DataFrame(sets.ranking[:10])
    return dg.MaterializeResult(
        asset_key="tuning_candidates",
        metadata={
            "dagster/row_count": len(export.table),
            "partition": sets.ds,
            "path": dg.MetadataValue.path(str(export.folder)),
            "files": dg.MetadataValue.json(counts),
            "filters": dg.MetadataValue.json(filters),
            "conflicting_corrections": len(sets.conflicts),
            "votes": dg.MetadataValue.json(sets.votes),
            "regressed_clusters": dg.MetadataValue.json(sets.regressed),
            "regressed_themes": dg.MetadataValue.json(
                {str(t.topic_id): t.label for t in sets.regressed_themes}
            ),
            "embedding": dg.MetadataValue.json(sets.embedding),
            "notes": dg.MetadataValue.json(result.notes),
            "seconds": round(result.seconds, 2),
            "embedding_seconds": round(result.embed_seconds, 2),
            "top_clusters": markdown_table(
                ranking[["rank", "cluster_id", "label", "impact", "basis"]]
                if len(ranking)
                else ranking
            ),
        },
    )


def _review_result(result: DayResult) -> dg.MaterializeResult:
    queue = result.queue
    preview = queue[["priority", "routing_reason", "feedback_id", "kind", "reason", "detail"]]
    return dg.MaterializeResult(
        asset_key="review_queue",
        metadata={
            "dagster/row_count": len(queue),
            "partition": result.sets.ds,
            "path": dg.MetadataValue.path(str(result.review_folder / "queue.jsonl")),
            "by_reason": dg.MetadataValue.json(
                dict(sorted(Counter(queue["routing_reason"]).items()))
            ),
            "newly_regressed_clusters": dg.MetadataValue.json(result.new_regressions),
            "newly_regressed_themes": dg.MetadataValue.json(result.new_theme_regressions),
            "preview": markdown_table(preview.head(10)),
        },
    )


def check_exports(result: DayResult) -> dg.AssetCheckResult:
    """Verify the files on disk against the data card and the export rules."""
    folder = result.export.folder
    counts, problems = validate_export(folder)
    table = pd.DataFrame(result.export.table)
    if len(table):
        twice = table.groupby("file")["feedback_id"].apply(lambda s: s.duplicated().sum())
        for file, n in twice[twice > 0].items():
            problems.append(f"{file}: {n} feedback ids twice")
        splits = table[table["split"].notna()].groupby("group_id")["split"].nunique()
        if (splits > 1).any():
            problems.append(f"{int((splits > 1).sum())} groups on both sides of a split")
    return dg.AssetCheckResult(
        check_name="exports_consistent",
        asset_key="tuning_candidates",
        passed=not problems,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(problems[:10]) if problems else "files match the data card",
        metadata={"files": len(counts), "problems": len(problems)},
    )
