"""Semantic stage: `feedback_embeddings` (warehouse) and `qdrant_feedback` (vector store).

Thin wiring: the text, the content-hash cache and the table live in
`feedback_pipelines.recall.embeddings`; payloads and the idempotent day sync in
`feedback_pipelines.recall.sync`.
"""

import time

import dagster as dg
import pandas as pd

from feedback_pipelines.defs.metadata import (
    STORE_RETRY,
    markdown_table,
    owners,
    warehouse_table,
)
from feedback_pipelines.defs.partitions import daily_partitions
from feedback_pipelines.embedding import log_progress, text_hash
from feedback_pipelines.privacy import find_pii
from feedback_pipelines.recall.embeddings import (
    embed_events,
    event_texts,
    lookup_vectors,
    read_day_events,
    read_day_vectors,
    write_day,
)
from feedback_pipelines.recall.sync import feedback_points, payload_texts, sync_day
from feedback_pipelines.resources.semantic import EmbedderResource, VectorStoreResource
from feedback_pipelines.resources.warehouse import WarehouseResource

GROUP = "semantic"
#: Steps that open the embedded vector store share this pool, so they never overlap.
STORE_POOL = "qdrant_store"


@dg.asset(
    partitions_def=daily_partitions,
    deps=["feedback_events"],
    group_name=GROUP,
    kinds={"duckdb", "onnx"},
    owners=owners(GROUP),
    metadata=warehouse_table("feedback_embeddings"),
    retry_policy=STORE_RETRY,
    check_specs=[
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
    ],
)
def feedback_embeddings(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    embedder: EmbedderResource,
):
    """One vector per feedback event of the day, for recall and clustering.

    The text is the user's last request plus the comment or correction, PII-redacted, embedded
    with the configured model (FEEDBACK_EMBEDDER; default all-MiniLM-L6-v2 on onnxruntime). A
    content-hash cache (text + model id) means no text is embedded twice across days and
    reruns. Each row records the model id.
    """
    ds = context.partition_key
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events = read_day_events(conn, ds)
    # Hash first, look up with the connection open briefly, embed with it closed.
    hashes = sorted({text_hash(t, model.model_id) for t in event_texts(events) if t})
    with warehouse.get_connection() as conn:
        known = lookup_vectors(conn, hashes)
    context.log.info(
        f"{ds}: {len(events):,} feedback events, {len(hashes):,} distinct texts, "
        f"{len(known):,} already embedded; model {model.model_id}"
    )
    day = embed_events(events, ds, model, known, progress=log_progress(context.log.info))
    with warehouse.get_connection() as conn:
        written = write_day(conn, ds, day.frame, model.dim)
    context.log.info(
        f"{ds}: wrote {written:,} rows; embedded {day.embedded:,} new texts "
        f"({day.texts_per_second:.1f} texts/s), reused {day.reused:,}, "
        f"{day.skipped:,} events without text"
    )
    with_text = len(events) - day.skipped
    dupes = int(day.frame["feedback_id"].duplicated().sum())
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "model_id": model.model_id,
            "dim": model.dim,
            "embedded": day.embedded,
            "reused_from_cache": day.reused,
            "events_without_text": day.skipped,
            "texts_per_second": round(day.texts_per_second, 1),
            "preview": markdown_table(day.frame[["feedback_id", "text_hash", "text"]].head(10)),
        }
    )
    yield dg.AssetCheckResult(
        check_name="every_event_embedded",
        passed=written == with_text and dupes == 0,
        description=f"{written} vectors for {with_text} events with text ({dupes} duplicates)",
        metadata={"vectors": written, "events_with_text": with_text, "duplicates": dupes},
    )
    found = find_pii(day.frame["text"].tolist())
    yield dg.AssetCheckResult(
        check_name="no_pii_in_embedded_text",
        passed=not found,
        description=f"{len(found)} PII-looking strings" if found else "no PII found",
        metadata={"count": len(found)},
    )


@dg.asset(
    partitions_def=daily_partitions,
    deps=["feedback_embeddings", "feedback_events"],
    group_name=GROUP,
    kinds={"qdrant"},
    owners=owners(GROUP),
    pool=STORE_POOL,
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
    """The day's feedback in Qdrant, searchable by meaning and metadata.

    One point per embedded event (id = uuid5 of feedback_id), cosine distance, payload = the
    redacted text plus metadata (versions, kind, reason, ds, is_negative, user_role, and
    cluster_id once clustered), indexed for filters; one collection per embedding model.
    Embedded Qdrant Edge under data/qdrant/, or a Qdrant server via QDRANT_URL. Points older
    than the retention horizon (FEEDBACK_QDRANT_RETENTION_DAYS, default 90, ending at this
    partition) are removed, so the store stops growing; the warehouse keeps every day.
    """
    ds = context.partition_key
    model = embedder.get()
    with warehouse.get_connection() as conn:
        events = read_day_events(conn, ds)
        rows = read_day_vectors(conn, ds, model.model_id)
    points = feedback_points(events, rows, ds)
    start = time.perf_counter()
    with vector_store.open(model.model_id, model.dim) as store:
        result = sync_day(store, ds, points)
        upsert_s = time.perf_counter() - start
        cutoff = vector_store.retention_cutoff(ds)
        expired = store.delete_before(cutoff) if cutoff else 0
        total = store.count()
        optimize_s = 0.0
        if vector_store.should_optimize(total):
            start = time.perf_counter()
            store.optimize()
            optimize_s = time.perf_counter() - start
        collection = store.collection
    rate = result.upserted / upsert_s if upsert_s > 0 else 0.0
    context.log.info(
        f"{ds}: upserted {result.upserted:,} points into {collection} "
        f"({vector_store.describe()}) in {upsert_s:.1f}s ({rate:,.0f}/s), removed "
        f"{result.deleted} stale"
        + (f", {expired:,} older than {cutoff} (retention)" if cutoff else "")
        + f"; {total:,} points in all"
        + (f"; built the HNSW index in {optimize_s:.1f}s" if optimize_s else "")
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
            "upsert_seconds": round(upsert_s, 2),
            "optimize_seconds": round(optimize_s, 2),
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
