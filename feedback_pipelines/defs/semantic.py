"""Semantic stage: `feedback_embeddings` (warehouse) and `qdrant_feedback` (vector store).

Thin wiring: the text, the content-hash cache and the table live in
`feedback_pipelines.recall.embeddings`; payloads, the idempotent day sync and the cluster ids
in `feedback_pipelines.recall.sync`.
"""

import os
import time
from pathlib import Path

import dagster as dg
import pandas as pd

from feedback_pipelines import config
from feedback_pipelines.cli.runs import IN_PROGRESS
from feedback_pipelines.clustering.store import PayloadIds, read_payload_ids
from feedback_pipelines.defs.automation import EXECUTOR_ENV
from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    STORES_POOL,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.ordering import in_date_order
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.embedding import log_progress
from feedback_pipelines.embedding.cpu import cpu_kernels
from feedback_pipelines.privacy import find_pii
from feedback_pipelines.recall import shards
from feedback_pipelines.recall.embeddings import (
    compose_day,
    day_texts,
    known_hashes,
    lookup_vectors,
    read_day_events,
    read_day_vectors,
    write_day,
)
from feedback_pipelines.recall.sync import (
    feedback_points,
    payload_texts,
    sync_day,
    write_cluster_ids,
)
from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
from feedback_pipelines.resources.warehouse import WarehouseResource
from feedback_pipelines.vectorstore import VectorStore

GROUP = "semantic"

EMBEDDING_CHECKS = [
    dg.AssetCheckSpec(
        "every_event_embedded",
        asset="feedback_embeddings",
        blocking=True,
        description="Every feedback event of the day that has text has exactly one vector.",
    ),
    dg.AssetCheckSpec(
        "no_pii_in_embedded_text",
        asset="feedback_embeddings",
        blocking=True,
        description="No PII-looking string in the embedded (redacted) texts.",
    ),
    dg.AssetCheckSpec(
        "one_cpu_family",
        asset="feedback_embeddings",
        description=(
            "The day's new texts were embedded on one CPU family: vectors are bit-identical "
            "only within one (`embedding.cpu`); several mean a rerun elsewhere may differ."
        ),
    ),
]


@dg.op(
    ins={"feedback_events": dg.In(dg.Nothing)},
    out=dg.DynamicOut(str),
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def plan_embedding_shards(
    context: dg.OpExecutionContext, warehouse: WarehouseResource, embedder: EmbedderResource
):
    """Writes the day's texts that no day has embedded yet as FEEDBACK_EMBED_SHARDS files.

    Not held back by earlier days (it writes nothing): the commit looks the cache up again.
    """
    ds = context.partition_key
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events = read_day_events(conn, ds)
    day = day_texts(events, model.model_id)
    with warehouse.get_connection() as conn:
        known = known_hashes(conn, sorted(set(day.hashes)))
    todo = day.new_texts(known)
    parts = shards.split(todo, config.embed_shards())
    root = warehouse.path().parent
    folder = shards.work_dir(root, ds, context.run.run_id)
    live = context.instance.get_run_records(dg.RunsFilter(statuses=IN_PROGRESS))
    shards.remove_stale(root, {r.dagster_run.run_id for r in live} | {context.run.run_id})
    context.log.info(
        f"{ds}: {len(events):,} feedback events, {len(set(day.hashes)):,} distinct texts, "
        f"{len(known):,} already embedded; {len(todo):,} to embed in {len(parts)} shard(s) "
        f"of ~{len(parts[0]):,}; model {model.model_id}"
    )
    for index, part in enumerate(parts):
        path = shards.write_texts(folder / f"shard-{index:03d}.parquet", part)
        yield dg.DynamicOutput(str(path), mapping_key=f"shard_{index}")


@dg.op(retry_policy=dg.RetryPolicy(max_retries=1, delay=3))
def embed_shard(context: dg.OpExecutionContext, embedder: EmbedderResource, shard: str) -> dict:
    """Embeds one shard file into a vectors file; opens no store, so shards run in parallel."""
    path = Path(shard)
    hashes, texts = shards.read_texts(path)
    model = embedder.get()
    if os.environ.get(EXECUTOR_ENV) == "multiprocess" and hasattr(model, "share_cores"):
        model.share_cores(config.embed_shards())  # the shards run side by side on this machine
    start = time.perf_counter()
    vectors = model.embed(texts, progress=log_progress(context.log.info))
    seconds = time.perf_counter() - start
    out = shards.write_vectors(path.with_name(path.stem + ".vectors.parquet"), hashes, vectors)
    rate = len(texts) / seconds if seconds > 0 else 0.0
    cpu = cpu_kernels()
    context.log.info(
        f"{path.name}: embedded {len(texts):,} texts in {seconds:.1f}s ({rate:.1f}/s) on {cpu}"
    )
    return {"path": str(out), "texts": len(texts), "seconds": seconds, "cpu": cpu}


@dg.op(
    out={
        "result": dg.Out(dg.Nothing),
        **{
            spec.get_python_identifier(): dg.Out(dg.Nothing, is_required=False)
            for spec in EMBEDDING_CHECKS
        },
    },
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
)
def commit_embeddings(
    context: dg.OpExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    shard_results: list[dict],
):
    """Writes the day's rows: the shards' vectors, and the cache's for texts seen before."""
    in_date_order(context)
    ds = context.partition_key
    model = embedder.get()
    fresh: dict = {}
    for result in shard_results:
        path = Path(result["path"])
        if path.exists():  # gone when a retry follows a commit that had removed them
            fresh.update(shards.read_vectors(path))
    with warehouse.get_connection() as conn:
        events = read_day_events(conn, ds)
        day = day_texts(events, model.model_id)
        vectors = lookup_vectors(conn, sorted(set(day.hashes) - set(fresh)))
    vectors.update(fresh)
    late = day.new_texts(vectors)  # the day changed since the plan, or shard files are gone
    families = shards.families(shard_results)
    if late:
        context.log.warning(f"{ds}: {len(late):,} texts without a shard vector: embedded here")
        vectors.update(zip([h for h, _ in late], model.embed([t for _, t in late]), strict=True))
        families = sorted({*families, cpu_kernels()})
    if len(families) > 1:
        context.log.warning(
            f"{ds}: the new texts were embedded on {len(families)} CPU families "
            f"({', '.join(families)}): their vectors are not bit-identical to one family's, so "
            "a rerun on other nodes can differ slightly; pin the shard steps to one family"
        )
    frame = compose_day(day, ds, model.model_id, vectors)
    with warehouse.get_connection() as conn:
        written = write_day(conn, ds, frame, model.dim)
    distinct = set(day.hashes)
    embedded = len(distinct & set(fresh)) + len(late)
    seconds = sum(r["seconds"] for r in shard_results)
    context.log.info(
        f"{ds}: wrote {written:,} rows; embedded {embedded:,} new texts in "
        f"{len(shard_results)} shard(s), reused {len(distinct) - embedded:,}, "
        f"{day.skipped:,} events without text"
    )
    dupes = int(frame["feedback_id"].duplicated().sum())
    yield dg.Output(
        None,
        "result",
        metadata={
            "dagster/row_count": written,
            "model_id": model.model_id,
            "dim": model.dim,
            "embedded": embedded,
            "reused_from_cache": len(distinct) - embedded,
            "events_without_text": day.skipped,
            "shards": len(shard_results),
            "cpu_families": ", ".join(families),
            "texts_per_second": round(embedded / seconds, 1) if seconds > 0 else 0.0,
            "preview": markdown_table(frame[["feedback_id", "text_hash", "text"]].head(10)),
        },
    )
    yield dg.AssetCheckResult(
        check_name="every_event_embedded",
        asset_key="feedback_embeddings",
        passed=written == len(day.texts) and dupes == 0,
        description=f"{written} vectors for {len(day.texts)} events with text ({dupes} duplicates)",
        metadata={"vectors": written, "events_with_text": len(day.texts), "duplicates": dupes},
    )
    found = find_pii(frame["text"].tolist())
    yield dg.AssetCheckResult(
        check_name="no_pii_in_embedded_text",
        asset_key="feedback_embeddings",
        passed=not found,
        description=f"{len(found)} PII-looking strings" if found else "no PII found",
        metadata={"count": len(found)},
    )
    yield dg.AssetCheckResult(
        check_name="one_cpu_family",
        asset_key="feedback_embeddings",
        passed=len(families) <= 1,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"embedded on {', '.join(families) or 'no CPU (nothing new)'}",
        metadata={"families": ", ".join(families)},
    )
    for folder in {Path(r["path"]).parent for r in shard_results}:  # last: a retry re-reads them
        shards.remove(folder)


@dg.graph_asset(
    ins={"feedback_events": dg.AssetIn(dagster_type=dg.Nothing)},
    partitions_def=daily_partitions,
    group_name=GROUP,
    kinds={"duckdb", "onnx"},
    owners=owners(GROUP),
    metadata=warehouse_table("feedback_embeddings"),
    check_specs=EMBEDDING_CHECKS,
)
def feedback_embeddings(feedback_events):
    """One vector per feedback event of the day, for recall and clustering.

    The text is the user's last request plus the comment or correction, PII-redacted, embedded
    with the configured model (FEEDBACK_EMBEDDER; default all-MiniLM-L6-v2 on onnxruntime). A
    content-hash cache (text + model id) means no text is embedded twice across days and
    reruns. The new texts are split into FEEDBACK_EMBED_SHARDS shards embedded as parallel
    steps (with FEEDBACK_EXECUTOR=multiprocess or k8s); one commit step writes the table. Each
    row records the model id.
    """
    planned = plan_embedding_shards(feedback_events)
    return commit_embeddings(planned.map(embed_shard).collect())


@dg.asset(
    partitions_def=daily_partitions,
    # cluster_assignments: the window's cluster ids go into the payloads (none yet: none)
    deps=["feedback_embeddings", "feedback_events", "cluster_assignments"],
    group_name=GROUP,
    kinds={"qdrant"},
    owners=owners(GROUP),
    pool=STORES_POOL,
    retry_policy=STORE_RETRY,
    check_specs=[
        dg.AssetCheckSpec(
            "point_count",
            asset="qdrant_feedback",
            blocking=True,
            description="The store holds exactly one point per embedded event of the day.",
        ),
        dg.AssetCheckSpec(
            "no_pii_in_payloads",
            asset="qdrant_feedback",
            description="No PII-looking string in any payload written for the day.",
        ),
    ],
)
def qdrant_feedback(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
    vector_store: VectorStoreResource,
):
    """The day's feedback in Qdrant, searchable by meaning, metadata and topic.

    One point per embedded event (id = uuid5 of feedback_id), cosine distance, payload = the
    redacted text plus metadata (versions, kind, reason, ds, is_negative, user_role, and the
    `cluster_id` and `topic_id` of the window `topic_clusters` placed it in), indexed for
    filters; one collection per embedding model. Embedded Qdrant Edge under data/qdrant/, or a
    Qdrant server via QDRANT_URL. Every store write of the day is here, after the clustering:
    the day's points with their ids; points older than the retention horizon
    (FEEDBACK_QDRANT_RETENTION_DAYS, default 90, ending at this partition) removed, so the
    store stops growing (the warehouse keeps every day); the ids of the window's earlier
    points where they changed; then `optimize()`. So the store is opened once a day (55 s at
    9M points), and a point is quantized once: Qdrant moves a point whose payload is set out of
    its quantized segment.
    """
    in_date_order(context)
    ds = context.partition_key
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events = read_day_events(conn, ds)
        rows = read_day_vectors(conn, ds, model.model_id)
        clustered = read_payload_ids(conn, ds, model.model_id)
    points = feedback_points(events, rows, ds, clustered.assignments)
    start = time.perf_counter()
    with vector_store.open(model.model_id, model.dim) as store:
        result = sync_day(store, ds, points)
        upsert_s = time.perf_counter() - start
        rate = result.upserted / upsert_s if upsert_s > 0 else 0.0
        context.log.info(
            f"{ds}: upserted {result.upserted:,} points into {store.collection} "
            f"({vector_store.describe()}) in {upsert_s:.1f}s ({rate:,.0f}/s), removed "
            f"{result.deleted} stale"
        )
        cutoff = vector_store.retention_cutoff(ds)
        expired = store.delete_before(cutoff) if cutoff else 0
        if cutoff and clustered.window and cutoff > clustered.window[0]:
            # a horizon shorter than the window: what the sync mark says of the removed
            # points no longer holds, so the window is read as it is
            clustered.previous = None
        ids = _write_cluster_ids(context, store, clustered, result.held)
        total = store.count()
        collection = store.collection
        optimize_s = _optimize(context, vector_store, store, total)
    context.log.info(
        f"{ds}: {total:,} points in all"
        + (f", {expired:,} older than {cutoff} removed (retention)" if cutoff else "")
    )
    preview = pd.DataFrame([{k: p.get(k) for k in ("feedback_id", "kind", "text")}
                            for _, _, p in points[:10]])  # fmt: skip
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": result.count,
            "collection": collection,
            "store": vector_store.describe(),
            "points_in_collection": total,
            "upserted": result.upserted,
            "stale_removed": result.deleted,
            "expired_removed": expired,
            "retention_from": cutoff or "",
            "cluster_ids_kept": result.kept_cluster_ids,
            "cluster_ids": dg.MetadataValue.json(ids),
            "upsert_seconds": round(upsert_s, 2),
            "optimize_seconds": optimize_s,
            "preview": markdown_table(preview),
        }
    )
    yield dg.AssetCheckResult(
        check_name="point_count",
        passed=result.count == len(rows),
        description=f"{result.count} points for {len(rows)} embedded events of {ds}",
        metadata={"points": result.count, "embedded_events": len(rows)},
    )
    found = find_pii(payload_texts(points))
    yield dg.AssetCheckResult(
        check_name="no_pii_in_payloads",
        passed=not found,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(found)} PII-looking strings" if found else "no PII found",
        metadata={"count": len(found)},
    )


def _write_cluster_ids(
    context: dg.AssetExecutionContext,
    store: VectorStore,
    clustered: PayloadIds,
    today: pd.DataFrame | None,
) -> dict:
    """The window's cluster ids into the payloads of its earlier days, where they changed."""
    if clustered.window is None:
        context.log.info(
            "the day is not clustered (on this model's vectors): points keep the cluster ids "
            "they hold"
        )
        return {}
    started = time.perf_counter()
    done = write_cluster_ids(
        store, clustered.window, clustered.assignments, clustered.previous, today
    )
    seconds = round(time.perf_counter() - started, 2)
    known = done.written + done.unchanged - done.read
    context.log.info(
        f"cluster ids of {len(clustered.assignments):,} events of {clustered.window[0]}.."
        f"{clustered.window[1]}: {done.written:,} payloads written, {done.unchanged:,} held "
        f"theirs ({done.read:,} read from the store, {known:,} known) in {seconds:.1f}s"
        + (
            f"; {done.missing:,} events have no point (a day of the window not written to "
            "the store, or past its retention horizon)"
            if done.missing
            else ""
        )
    )
    return {
        "written": done.written,
        "unchanged": done.unchanged,
        "missing": done.missing,
        "read": done.read,
        "seconds": seconds,
    }


def _optimize(
    context: dg.AssetExecutionContext,
    vector_store: VectorStoreResource,
    store: VectorStore,
    points: int,
) -> float:
    """Qdrant Edge's `optimize()` (quantized segments) once the day's writes are done."""
    if not vector_store.should_optimize(points):
        return 0.0
    earlier = store.earlier_segments()
    context.log.info(
        f"optimizing the store's {points:,} points"
        + (
            f" (and re-encoding its {earlier:,} segments of an earlier release, once: "
            "~5-6 s per 100k points)"
            if earlier
            else ""
        )
    )
    started = time.perf_counter()
    store.optimize()
    seconds = round(time.perf_counter() - started, 2)
    context.log.info(f"optimized (quantized segments) in {seconds:.1f}s")
    return seconds
