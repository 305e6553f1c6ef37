"""Topics stage: subtopics, themes, their lineage and every event's place, over a trailing window.

Thin wiring: read the window's vectors and what earlier days left (the registry of frozen
subtopic centroids, yesterday's tables), call `feedback_pipelines.clustering.cluster_window`,
optionally title the subtopics, write every topic table for the partition (the window's last
day). `qdrant_feedback` runs next and writes each event's subtopic and theme into its Qdrant
payload, so semantic search can filter by topic and the day's store is written in one step.
"""

import os
from datetime import date

import dagster as dg
import pandas as pd

from feedback_pipelines.clustering import (
    ClusteringConfig,
    RegistryConfig,
    SubtopicConfig,
    ThemeConfig,
    cluster_window,
)
from feedback_pipelines.clustering.llm_labels import title_clusters
from feedback_pipelines.clustering.store import (
    phrase_vectors,
    read_previous,
    read_window,
    save_phrase_vectors,
    window_start,
    write_window,
)
from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    STORES_POOL,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import WINDOW_MAPPING, daily_partitions
from feedback_pipelines.embedding import CachedEmbed
from feedback_pipelines.malloc import freed_memory_kept
from feedback_pipelines.resources.clustering import ClusterLabellerResource
from feedback_pipelines.resources.semantic import EmbedderResource
from feedback_pipelines.resources.settings import PipelineConfig
from feedback_pipelines.resources.warehouse import WarehouseResource

GROUP = "clustering"
NOISE_WARN_SHARE = 0.5
KEPT_WARN_SHARE = 0.8


_DEFAULTS = ClusteringConfig()


class ClusteringSettings(dg.Config):
    """Knobs of the window clustering shown in the launchpad (defaults: `ClusteringConfig`)."""

    context_weight: float = _DEFAULTS.context_weight
    max_sample: int = _DEFAULTS.subtopics.max_sample
    cut_height: float = _DEFAULTS.subtopics.cut_height
    join_similarity: float = _DEFAULTS.registry.join_similarity
    pool_days: int = _DEFAULTS.registry.pool_days
    min_birth: int = _DEFAULTS.registry.min_birth
    refit_every_days: int = _DEFAULTS.registry.refit_every_days
    refit_drift: float = _DEFAULTS.registry.refit_drift
    max_themes: int = _DEFAULTS.themes.max_themes
    #: c-TF-IDF cosine from which two themes are one (`ThemeConfig.vocabulary`; above 1: never)
    theme_word_similarity: float = _DEFAULTS.themes.vocabulary
    rerank_labels: bool = True

    def to_config(self) -> ClusteringConfig:
        """The pure-core configuration."""
        return ClusteringConfig(
            context_weight=self.context_weight,
            subtopics=SubtopicConfig(max_sample=self.max_sample, cut_height=self.cut_height),
            registry=RegistryConfig(
                join_similarity=self.join_similarity,
                pool_days=self.pool_days,
                min_birth=self.min_birth,
                refit_every_days=self.refit_every_days,
                refit_drift=self.refit_drift,
            ),
            themes=ThemeConfig(max_themes=self.max_themes, vocabulary=self.theme_word_similarity),
        )


def _spec(key: str, description: str) -> dg.AssetSpec:
    return dg.AssetSpec(
        key,
        description=description,
        deps=[
            dg.AssetDep("feedback_embeddings", partition_mapping=WINDOW_MAPPING),
            dg.AssetDep("feedback_events", partition_mapping=WINDOW_MAPPING),
        ],
        group_name=GROUP,
        kinds={"duckdb"},
        owners=owners(GROUP),
        metadata=warehouse_table(key),
    )


@dg.multi_asset(
    specs=[
        _spec(
            "feedback_clusters",
            "Subtopics (about one user intent) of the trailing window (default 14 days) ending "
            "on the partition: an id that stays put (a registry of frozen centroids), its theme "
            "(`topic_id`), a readable label (keyphrases re-ranked by the embedder, or a short "
            "title when a labeller is configured), 3-5 quotes, size, distinct users, negative "
            "rate, first and last seen, growth and a true status (new, growing, stable, faded).",
        ),
        _spec(
            "feedback_topics",
            "Themes: the window's subtopics merged into a readable handful, with the same "
            "figures and the subtopics each holds (`cluster_ids`).",
        ),
        _spec(
            "topic_lineage",
            "What became of ids that day, at both levels: born, split, merged, faded.",
        ),
        _spec(
            "topic_registry",
            "Every subtopic id ever given with its frozen centroid, birth and retirement: the "
            "state the next day's placement reads.",
        ),
        _spec(
            "cluster_assignments",
            "The subtopic (`cluster_id`) and theme (`topic_id`) of every embedded feedback event "
            "of the window (-1 = noise, never forced into a topic), with a confidence; "
            "`complaint_id` is filled by the complaint clustering.",
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
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def topic_clusters(
    context: dg.AssetExecutionContext,
    config: ClusteringSettings,
    settings: PipelineConfig,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    cluster_labeller: ClusterLabellerResource,
):
    """Place the window on the registry, merge themes, label, write the tables."""
    in_date_order(context)
    ds = context.partition_key
    end = date.fromisoformat(ds)
    start = window_start(end, settings.window_days)
    model = embedder.get()
    with freed_memory_kept():  # window-sized arrays made and dropped: reuse, not refault
        with warehouse.get_connection() as conn:
            events, vectors = read_window(conn, start, end, model.model_id)
            previous, prev_ds = read_previous(conn, end, model.model_id)
        n_prev = 0 if previous.clusters is None else len(previous.clusters)
        context.log.info(
            f"{ds}: window {start}..{end}: {len(events):,} embedded events "
            f"({model.model_id}); previous partition {prev_ds or 'none'} with {n_prev} subtopics"
        )
        embed = None
        if config.rerank_labels:

            def lookup(hashes: list[str]) -> dict:
                with warehouse.get_connection() as conn:
                    return phrase_vectors(conn, hashes)

            embed = CachedEmbed(model, lookup)
        spent = model.seconds_total
        result = cluster_window(events, vectors, end, previous, config.to_config(), embed)
        embedding_seconds = round(model.seconds_total - spent, 2)  # the labels' keyphrases
        stats = result.stats
        labeller = cluster_labeller.client()
        if labeller is not None and len(result.clusters):
            result.clusters = title_clusters(
                result.clusters, labeller, previous.clusters, log=context.log.info
            )
        with warehouse.get_connection() as conn:
            written = write_window(conn, end, result, start, model.model_id)
            if embed is not None:
                save_phrase_vectors(conn, model.model_id, embed.fresh)
        rate = len(events) / stats["seconds"] if stats.get("seconds") else 0.0
        context.log.info(
            f"{ds}: {stats.get('clusters', 0)} subtopics in {stats.get('themes', 0)} themes "
            f"{stats.get('by_status', {})}, lineage {stats.get('lineage', {})}, "
            f"{stats.get('noise_share', 0):.1%} noise, in {stats.get('seconds', 0):.1f}s "
            f"({rate:,.0f} events/s; labels {stats.get('label_seconds', 0)}s"
            + (
                f", {len(embed.fresh):,} keyphrases embedded, {embed.reused:,} cached)"
                if embed is not None
                else ")"
            )
        )
    kept = _kept_share(result.assignments, previous.assignments)
    common = {"partition": ds, "window_start": start.isoformat(), "model_id": model.model_id}
    yield dg.MaterializeResult(
        asset_key="feedback_clusters",
        metadata={
            **common,
            "dagster/row_count": written["feedback_clusters"],
            "subtopics": stats.get("clusters", 0),
            "themes": stats.get("themes", 0),
            "by_status": dg.MetadataValue.json(stats.get("by_status", {})),
            "largest_share": stats.get("max_share", 0.0),
            "ids_kept_share": None if kept is None else round(kept, 4),
            "labels": cluster_labeller.describe(),
            "embedding_seconds": embedding_seconds,
            "keyphrases": dg.MetadataValue.json(
                {"embedded": len(embed.fresh), "cached": embed.reused} if embed is not None else {}
            ),
            "preview": dg.MetadataValue.md(_preview(result)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="feedback_topics",
        metadata={
            **common,
            "dagster/row_count": written["feedback_topics"],
            "themes": stats.get("themes", 0),
            "preview": markdown_table(_theme_table(result.topics)),
        },
    )
    yield dg.MaterializeResult(
        asset_key="topic_lineage",
        metadata={
            **common,
            "dagster/row_count": written["topic_lineage"],
            "events": dg.MetadataValue.json(stats.get("lineage", {})),
        },
    )
    yield dg.MaterializeResult(
        asset_key="topic_registry",
        metadata={
            **common,
            "dagster/row_count": written["topic_registry"],
            "born": stats.get("born", 0),
            "refit": stats.get("refit") or "none",
            "unplaced_share": round(float(stats.get("unplaced_share") or 0.0), 4),
            "placed_on_registry": stats.get("placed_on_registry", 0),
            "kept_from_yesterday": stats.get("kept_from_yesterday", 0),
            "pool": stats.get("pool", 0),
        },
    )
    yield dg.MaterializeResult(
        asset_key="cluster_assignments",
        metadata={
            **common,
            "dagster/row_count": written["cluster_assignments"],
            "noise_share": stats.get("noise_share", 0.0),
            "seconds": stats.get("seconds", 0.0),
        },
    )
    yield from _checks(result, len(events), kept)


def _theme_table(topics: pd.DataFrame) -> pd.DataFrame:
    cols = ["topic_id", "label", "size", "negative_rate", "status"]
    live = topics[topics["status"] != "faded"] if len(topics) else topics
    return live[cols].head(15) if len(live) else pd.DataFrame(columns=cols)


def _preview(result, themes: int = 8, per_theme: int = 4) -> str:
    """Themes > subtopics, biggest first: what a person reads first."""
    topics, clusters = result.topics, result.clusters
    if not len(topics):
        return "(no topics)"
    lines = []
    live = clusters[clusters["status"] != "faded"]
    for _, t in topics[topics["status"] != "faded"].head(themes).iterrows():
        lines.append(f"- **{t['label']}** ({int(t['size'])}, {t['status']})")
        subs = live[live["topic_id"] == t["topic_id"]].head(per_theme)
        for _, c in subs.iterrows():
            lines.append(f"  - {c['label']} ({int(c['size'])}, {c['status']})")
    return "\n".join(lines)


def _kept_share(assignments: pd.DataFrame, previous: pd.DataFrame | None) -> float | None:
    """Share of yesterday's events in a subtopic (still in the window) that kept its id."""
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
    refit = result.stats.get("refit")
    if kept is None:
        said = "no previous partition to compare with"
    else:
        said = f"{kept:.1%} of yesterday's clustered events kept their cluster id"
        if refit:  # a planned re-cut: lineage says what became of every id
            said += f" (refit, {refit}: topic_lineage records what became of each id)"
    yield dg.AssetCheckResult(
        check_name="ids_kept",
        asset_key="feedback_clusters",
        passed=kept is None or kept >= KEPT_WARN_SHARE or bool(refit),
        severity=dg.AssetCheckSeverity.WARN,
        description=said,
        metadata={"kept_share": -1.0 if kept is None else kept, "refit": refit or "none"},
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
