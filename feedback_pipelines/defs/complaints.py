"""Complaints stage: `complaint_clusters`, what went wrong, over the same window as the topics.

Thin wiring: read the window's negative feedback with a comment or reason, group it with
`feedback_pipelines.clustering.complaints.group_complaints` (sentence vectors through the
content-hash cache), count each group per theme and subtopic, and write the partition together
with `cluster_assignments.complaint_id`.
"""

from datetime import date

import dagster as dg
import numpy as np

from feedback_pipelines.clustering import complaint_store as store
from feedback_pipelines.clustering.complaints import (
    FIRST_GROUP_ID,
    KINDS,
    OTHER_ID,
    ComplaintConfig,
    group_complaints,
)
from feedback_pipelines.clustering.store import window_start
from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    STORES_POOL,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import WINDOW_MAPPING, daily_partitions
from feedback_pipelines.embedding import embed_with_cache
from feedback_pipelines.resources.semantic import EmbedderResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource

GROUP = "clustering"
OTHER_WARN_SHARE = 0.5
_DEFAULTS = ComplaintConfig()


class ComplaintSettings(dg.Config):
    """Knobs of the complaint grouping shown in the launchpad (defaults: `ComplaintConfig`)."""

    kind_threshold: float = _DEFAULTS.kind_threshold
    reason_bonus: float = _DEFAULTS.reason_bonus
    group_distance: float = _DEFAULTS.group_distance
    min_group_size: int = _DEFAULTS.min_group_size

    def to_config(self) -> ComplaintConfig:
        """The pure-core configuration."""
        return ComplaintConfig(
            kind_threshold=self.kind_threshold,
            reason_bonus=self.reason_bonus,
            group_distance=self.group_distance,
            min_group_size=self.min_group_size,
        )


@dg.asset(
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb"},
    owners=owners(GROUP),
    deps=[
        dg.AssetDep("feedback_events", partition_mapping=WINDOW_MAPPING),
        # same partition: its complaint ids are written into that day's assignments
        "cluster_assignments",
    ],
    metadata=warehouse_table("complaint_clusters"),
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "every_complaint_grouped",
            asset="complaint_clusters",
            blocking=True,
            description="Every negative event of the window with a comment or reason is in "
            "exactly one complaint group, and the groups' sizes add up.",
        ),
        dg.AssetCheckSpec(
            "other_share",
            asset="complaint_clusters",
            description=f"Warns when more than {OTHER_WARN_SHARE:.0%} of the complaints fit "
            "no kind and no group: the kinds no longer describe what users say.",
        ),
    ],
)
def complaint_clusters(
    context: dg.AssetExecutionContext,
    config: ComplaintSettings,
    settings: PipelineConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
):
    """What went wrong: the window's negative feedback grouped by the complaint's own words.

    Every negative event with a comment or categorized reason (never its request) is placed on
    a fixed kind ("does not answer the question", "missing details / incomplete", "factually
    wrong", "too long / verbose", ...) by the closeness of its sentences to prototype phrasings,
    the reason weighing in; what fits no kind is grouped by agglomerative clustering with
    distinctive-phrase labels and ids kept from the previous day. One row per group with size,
    example ids and quotes, and counts per theme and subtopic; each event's group is written to
    `cluster_assignments.complaint_id` of the day.
    """
    in_date_order(context)
    ds = context.partition_key
    end = date.fromisoformat(ds)
    start = window_start(end, settings.window_days)
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events = store.read_complaint_events(conn, start, end)
        previous, previous_links, next_id = store.read_previous(conn, end)
    fresh: dict[str, np.ndarray] = {}

    def lookup(hashes: list[str]) -> dict[str, np.ndarray]:
        with warehouse.get_connection() as conn:
            return store.cached_vectors(conn, hashes)

    def embed(texts: list[str]) -> np.ndarray:
        vectors, hashes, embedded = embed_with_cache(texts, model, lookup)
        if embedded:
            known = dict(zip(hashes, vectors, strict=True))
            fresh.update({h: known[h] for h in hashes if h not in fresh})
        context.log.info(f"{len(texts):,} complaint texts, {embedded:,} embedded (not cached)")
        return vectors

    spent = model.seconds_total
    result = group_complaints(
        events,
        embed,
        previous=previous,
        previous_assignments=previous_links,
        next_id=next_id,
        config=config.to_config(),
    )
    embedding_seconds = round(model.seconds_total - spent, 2)
    clusters, assignments, stats = result.clusters, result.assignments, result.stats
    with warehouse.get_connection() as conn:
        links = store.read_topic_links(conn, end)
    by_topic = store.count_by(assignments, links, "topic_id")
    by_cluster = store.count_by(assignments, links, "cluster_id")
    clusters["topic_counts"] = clusters["complaint_id"].map(by_topic)
    clusters["cluster_counts"] = clusters["complaint_id"].map(by_cluster)
    with warehouse.get_connection() as conn:
        cached = store.save_vectors(conn, model.model_id, fresh)
        written, linked = store.write_complaints(
            conn, end, clusters, assignments, start, model.model_id
        )
    in_topics = int(assignments["feedback_id"].isin(set(links["feedback_id"])).sum())
    context.log.info(
        f"{ds}: window {start}..{end}: {stats.get('complaints', 0):,} complaints, "
        f"{stats.get('kind_share', 0):.0%} on a kind, {stats.get('data_driven_groups', 0)} "
        f"data-driven groups, {stats.get('other_share', 0):.0%} other; {in_topics:,} of them "
        f"in cluster_assignments; {cached:,} new vectors cached"
    )
    preview = clusters[["complaint_id", "kind", "label", "size", "share"]].head(15)
    yield dg.MaterializeResult(
        metadata={
            "partition": ds,
            "window_start": start.isoformat(),
            "model_id": model.model_id,
            "dagster/row_count": written,
            "complaints": stats.get("complaints", 0),
            "kind_share": stats.get("kind_share", 0.0),
            "other_share": stats.get("other_share", 0.0),
            "data_driven_groups": stats.get("data_driven_groups", 0),
            "new_groups": stats.get("new_groups", 0),
            "kept_in_previous_groups": stats.get("kept_in_previous_groups", 0),
            "by_kind": dg.MetadataValue.json(stats.get("by_kind", {})),
            "linked_in_cluster_assignments": in_topics,
            "vectors_embedded": len(fresh),
            "embedding_seconds": embedding_seconds,
            "preview": markdown_table(preview),
        }
    )
    yield from _checks(events, clusters, assignments, stats, linked)


def _checks(events, clusters, assignments, stats, linked):
    from feedback_pipelines.clustering.complaints import select_complaints

    expected = len(select_complaints(events)) if len(events) else 0
    dupes = int(assignments["feedback_id"].duplicated().sum()) if len(assignments) else 0
    known = {k.complaint_id for k in KINDS} | {OTHER_ID}
    ids = set(clusters["complaint_id"]) if len(clusters) else set()
    bad_ids = {i for i in ids if i not in known and i < FIRST_GROUP_ID}
    sizes = int(clusters["size"].sum()) if len(clusters) else 0
    yield dg.AssetCheckResult(
        check_name="every_complaint_grouped",
        asset_key="complaint_clusters",
        passed=linked == expected and dupes == 0 and sizes == linked and not bad_ids,
        description=f"{linked} of {expected} complaints grouped, {dupes} duplicates, group "
        f"sizes add up to {sizes}",
        metadata={"complaints": expected, "grouped": linked, "duplicates": dupes},
    )
    other = float(stats.get("other_share", 0.0))
    yield dg.AssetCheckResult(
        check_name="other_share",
        asset_key="complaint_clusters",
        passed=other <= OTHER_WARN_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{other:.1%} of the complaints fit no kind and no group",
        metadata={"other_share": other},
    )
