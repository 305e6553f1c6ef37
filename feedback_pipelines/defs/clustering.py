"""Clustering stage: `feedback_clusters` and `cluster_assignments` over a trailing window.

Thin wiring: read the window's vectors and yesterday's clusters, call
`feedback_pipelines.clustering.cluster_window`, optionally title the clusters, write both tables
for the partition (the window's last day), then write each event's cluster id into its Qdrant
payload so semantic search can filter by topic.
"""

import os
import time
from datetime import date

import dagster as dg
import pandas as pd

from feedback_pipelines.clustering import ClusteringConfig, FitConfig, cluster_window
from feedback_pipelines.clustering.llm_labels import title_clusters
from feedback_pipelines.clustering.store import (
    read_assignments,
    read_previous,
    read_window,
    window_start,
    write_window,
)
from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.defs.semantic import STORE_POOL
from feedback_pipelines.resources.clustering import ClusterLabellerResource
from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.vectorstore import point_id

GROUP = "clustering"
# Lineage only: the window actually read is `settings.window_days` (default 14).
_WINDOW = dg.TimeWindowPartitionMapping(start_offset=-13, end_offset=0)
NOISE_WARN_SHARE = 0.5
KEPT_WARN_SHARE = 0.8


_DEFAULTS = ClusteringConfig()


class ClusteringSettings(dg.Config):
    """Knobs of the window clustering shown in the launchpad (defaults: `ClusteringConfig`)."""

    reducer: str = _DEFAULTS.reducer
    context_weight: float = _DEFAULTS.context_weight
    max_sample: int = _DEFAULTS.fit.max_sample
    min_cluster_fraction: float = _DEFAULTS.fit.min_cluster_fraction
    min_cluster_floor: int = _DEFAULTS.fit.min_cluster_floor
    match_threshold: float = _DEFAULTS.match_threshold
    emerging_days: int = _DEFAULTS.fit.emerging_days
    write_payloads: bool = True

    def to_config(self) -> ClusteringConfig:
        """The pure-core configuration."""
        return ClusteringConfig(
            reducer=self.reducer,
            context_weight=self.context_weight,
            match_threshold=self.match_threshold,
            fit=FitConfig(
                max_sample=self.max_sample,
                min_cluster_fraction=self.min_cluster_fraction,
                min_cluster_floor=self.min_cluster_floor,
                emerging_days=self.emerging_days,
            ),
        )


def _spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        description=description,
        deps=[
            dg.AssetDep("feedback_embeddings", partition_mapping=_WINDOW),
            dg.AssetDep("feedback_events", partition_mapping=_WINDOW),
            # ordering only: the day's points must exist before their cluster ids are set
            dg.AssetDep("qdrant_feedback"),
        ],
        group_name=GROUP,
        kinds={"duckdb", "qdrant"},
        owners=owners(GROUP),
        metadata=warehouse_table(key),
    )


@dg.multi_asset(
    specs=[
        _spec(
            "feedback_clusters",
            "Topics of the trailing window (default 14 days) ending on the partition: a stable "
            "id, a readable label (c-TF-IDF keyphrases, or a short title when a labeller is "
            "configured), 3-5 representative quotes, size, distinct users, negative rate, "
            "first and last seen, growth over the window and a status (new, growing, stable, "
            "faded).",
        ),
        _spec(
            "cluster_assignments",
            "The cluster of every embedded feedback event of the window (-1 = noise, never "
            "forced into a topic), with a confidence.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "every_event_assigned",
            asset="cluster_assignments",
            blocking=True,
            description="Every embedded event of the window has exactly one assignment, to a "
            "cluster of the day or to noise.",
        ),
        dg.AssetCheckSpec(
            "noise_share",
            asset="cluster_assignments",
            description=f"Warns when more than {NOISE_WARN_SHARE:.0%} of the window is noise.",
        ),
        dg.AssetCheckSpec(
            "ids_kept",
            asset="feedback_clusters",
            description="Warns when fewer than "
            f"{KEPT_WARN_SHARE:.0%} of the events clustered yesterday (and still in the "
            "window) kept their cluster id: topics were reshuffled.",
        ),
    ],
    partitions_def=daily_partitions,
    can_subset=False,
    pool=STORE_POOL,
    retry_policy=STORE_RETRY,
)
def topic_clusters(
    context: dg.AssetExecutionContext,
    config: ClusteringSettings,
    settings: PipelineConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vector_store: VectorStoreResource,
    cluster_labeller: ClusterLabellerResource,
):
    """Cluster the window, keep yesterday's ids, label, write both tables and Qdrant payloads."""
    ds = context.partition_key
    end = date.fromisoformat(ds)
    start = window_start(end, settings.window_days)
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events, vectors = read_window(conn, start, end, model.model_id)
        previous, prev_ds, next_id = read_previous(conn, end, model.model_id)
        prev_links = read_assignments(conn, prev_ds) if prev_ds is not None else None
    context.log.info(
        f"{ds}: window {start}..{end}: {len(events):,} embedded events "
        f"({model.model_id}); previous partition {prev_ds or 'none'} with "
        f"{0 if previous is None else len(previous)} clusters"
    )
    result = cluster_window(events, vectors, end, previous, next_id, config.to_config())
    clusters = result.clusters
    stats = result.stats
    labeller = cluster_labeller.client()
    if labeller is not None and len(clusters):
        clusters = title_clusters(clusters, labeller, previous, log=context.log.info)
    with warehouse.get_connection() as conn:
        written, linked = write_window(
            conn, end, clusters, result.assignments, start, model.model_id
        )
    rate = len(events) / stats["seconds"] if stats.get("seconds") else 0.0
    context.log.info(
        f"{ds}: {stats.get('clusters', 0)} clusters {stats.get('by_status', {})}, "
        f"{stats.get('noise_share', 0):.1%} noise, in {stats.get('seconds', 0):.1f}s "
        f"({rate:,.0f} events/s; sample {stats.get('sample', 0):,}, reduce "
        f"{stats.get('reduce_seconds', 0)}s, fit {stats.get('fit_seconds', 0)}s, assign "
        f"{stats.get('assign_seconds', 0)}s, labels {stats.get('label_seconds', 0)}s)"
    )
    payload_stats = _write_payloads(
        context, config, vector_store, model, result.assignments, (start, end)
    )

    kept = _kept_share(result.assignments, prev_links)
    active = clusters[clusters["status"] != "faded"] if len(clusters) else clusters
    preview_cols = ["cluster_id", "label", "size", "distinct_users", "negative_rate"]
    preview_cols += ["status", "growth"]
    common = {"partition": ds, "window_start": start.isoformat(), "model_id": model.model_id}
    yield dg.MaterializeResult(
        asset_key="feedback_clusters",
        metadata={
            **common,
            "dagster/row_count": written,
            "clusters": len(active),
            "by_status": dg.MetadataValue.json(stats.get("by_status", {})),
            "emerging_split": stats.get("emerging", 0),
            "min_cluster_size": stats.get("min_cluster_size", 0),
            "ids_kept_share": None if kept is None else round(kept, 4),
            "labels": cluster_labeller.describe(),
            "preview": markdown_table(clusters[preview_cols].head(10))
            if len(clusters)
            else markdown_table(clusters),
        },
    )
    yield dg.MaterializeResult(
        asset_key="cluster_assignments",
        metadata={
            **common,
            "dagster/row_count": linked,
            "noise_share": stats.get("noise_share", 0.0),
            "sample": stats.get("sample", 0),
            "distinct_texts": stats.get("distinct_texts", 0),
            "reducer": stats.get("reducer", ""),
            "seconds": stats.get("seconds", 0.0),
            "qdrant_payloads": dg.MetadataValue.json(payload_stats),
        },
    )
    yield from _checks(result, len(events), kept)


def _write_payloads(
    context: dg.AssetExecutionContext,
    config: ClusteringSettings,
    vector_store: VectorStoreResource,
    model,
    assignments: pd.DataFrame,
    window: tuple[date, date],
) -> dict:
    """Set `cluster_id` (-1 = noise) in the Qdrant payload of every point of the window.

    Points outside the window keep the id of the last window they were in.
    """
    if not config.write_payloads or not len(assignments):
        return {"written": 0, "missing": 0}
    started = time.perf_counter()
    wanted = {
        point_id(fid): int(cid)
        for fid, cid in zip(assignments["feedback_id"], assignments["cluster_id"], strict=True)
    }
    with vector_store.open(model.model_id, model.dim) as store:
        in_window = {"ds": {"gte": window[0].isoformat(), "lte": window[1].isoformat()}}
        present = set(store.ids(in_window)) & set(wanted)
        store.set_payloads({pid: {"cluster_id": wanted[pid]} for pid in present})
    missing = len(wanted) - len(present)
    seconds = time.perf_counter() - started
    context.log.info(
        f"cluster ids written into {len(present):,} Qdrant payloads in {seconds:.1f}s"
        + (f"; {missing:,} events have no point (qdrant_feedback not run?)" if missing else "")
    )
    return {"written": len(present), "missing": missing, "seconds": round(seconds, 2)}


def _kept_share(assignments: pd.DataFrame, previous: pd.DataFrame | None) -> float | None:
    """Share of yesterday's clustered events (still in the window) that kept their cluster id."""
    if previous is None or not len(previous) or not len(assignments):
        return None
    both = assignments.merge(previous, on="feedback_id", suffixes=("", "_prev"))
    both = both[both["cluster_id_prev"] >= 0]
    if not len(both):
        return None
    return float((both["cluster_id"] == both["cluster_id_prev"]).mean())


def _checks(result, n_events: int, kept: float | None):
    links = result.assignments
    clusters = result.clusters
    active = (
        set(clusters.loc[clusters["status"] != "faded", "cluster_id"]) if len(clusters) else set()
    )
    dupes = int(links["feedback_id"].duplicated().sum()) if len(links) else 0
    unknown = int((~links["cluster_id"].isin(active | {-1})).sum()) if len(links) else 0
    yield dg.AssetCheckResult(
        check_name="every_event_assigned",
        asset_key="cluster_assignments",
        passed=len(links) == n_events and dupes == 0 and unknown == 0,
        description=f"{len(links)} assignments for {n_events} events, {dupes} duplicates, "
        f"{unknown} to a cluster that does not exist",
        metadata={"assignments": len(links), "events": n_events, "unknown_cluster": unknown},
    )
    noise = float(result.stats.get("noise_share", 0.0))
    yield dg.AssetCheckResult(
        check_name="noise_share",
        asset_key="cluster_assignments",
        passed=noise <= NOISE_WARN_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{noise:.1%} of the window is noise",
        metadata={"noise_share": noise},
    )
    yield dg.AssetCheckResult(
        check_name="ids_kept",
        asset_key="feedback_clusters",
        passed=kept is None or kept >= KEPT_WARN_SHARE,
        severity=dg.AssetCheckSeverity.WARN,
        description="no previous partition to compare with"
        if kept is None
        else f"{kept:.1%} of yesterday's clustered events kept their cluster id",
        metadata={"kept_share": -1.0 if kept is None else kept},
    )


def _secret(name: str):
    return dg.EnvVar(name) if os.environ.get(name) else ""


# The loader takes a module's Definitions object *instead of* its module-level assets when the
# module has one (dagster PythonFileComponent.build_defs), so the assets are listed here too.
defs = dg.Definitions(
    assets=[topic_clusters],
    resources={
        "cluster_labeller": ClusterLabellerResource(
            url=_secret("FEEDBACK_LABELLER_URL"),
            api_key=_secret("FEEDBACK_LABELLER_API_KEY"),
            model=os.environ.get("FEEDBACK_LABELLER_MODEL", "") or "gpt-4o-mini",
        ),
    },
)
