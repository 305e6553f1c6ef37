"""The topic tables in the warehouse: read a window, read what earlier days left, write a day.

`feedback_clusters` (subtopics), `feedback_topics` (themes), `topic_lineage`,
`cluster_assignments` (CONTRACT.md section 3) and `topic_registry` (the frozen subtopic
centroids a day's placement depends on) are written per `ds`, the window's last day, by
delete-then-insert in one transaction, so a rerun replaces its day and nothing else; a day
reads only days before it, so reruns are idempotent. Plain functions over a DuckDB connection,
no Dagster: the asset holds the connection only while these run (read, close, compute, reopen
to write).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from feedback_pipelines.clustering.pipeline import PreviousDay
from feedback_pipelines.schema import (
    ASSIGNMENT_COLUMNS,
    ASSIGNMENTS,
    CLUSTER_TABLE_COLUMNS,
    CLUSTERS,
    COMPLAINT_ASSIGNMENTS,
    LINEAGE,
    LINEAGE_COLUMNS,
    PHRASE_VECTORS,
    PHRASE_VECTORS_DDL,
    REGISTRY,
    REGISTRY_COLUMNS,
    TOPIC_TABLE_COLUMNS,
    TOPIC_TABLES_DDL,
    TOPICS,
)
from feedback_pipelines.tables import table_exists, transaction
from feedback_pipelines.vector_tables import read_vectors, save_vectors

#: What `read_assignments` reads of an assignment.
ID_COLUMNS = ["feedback_id", "cluster_id", "topic_id"]
WINDOW_COLUMNS = ["ds", "feedback_id", "text", "user_id", "session_id", "timestamp", "is_negative"]


def window_start(ds: date | str, window_days: int) -> date:
    """First day of the trailing window that ends on `ds`."""
    end = pd.Timestamp(ds).date()
    return end - timedelta(days=max(1, window_days) - 1)


def read_window(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, model_id: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The window's embedded feedback events and their vectors (one model's only).

    Events without text were never embedded and are not clustered.

    Returns:
        (events, vectors): events with ds, feedback_id, text, user_id, session_id, timestamp,
        is_negative; vectors float32 (n, dim), row-aligned.
    """
    if not (table_exists(conn, "feedback_embeddings") and table_exists(conn, "feedback_events")):
        return pd.DataFrame(columns=WINDOW_COLUMNS), np.zeros((0, 0), dtype=np.float32)
    table = conn.sql(
        "SELECT v.ds, v.feedback_id, v.text, e.user_id, e.session_id, e.timestamp, "
        "e.is_negative, v.vector FROM feedback_embeddings v "
        "JOIN feedback_events e ON e.feedback_id = v.feedback_id AND e.ds = v.ds "
        "WHERE v.ds BETWEEN ? AND ? AND v.model_id = ? ORDER BY v.ds, v.feedback_id",
        params=[start, end, model_id],
    ).to_arrow_table()  # vectors arrive as one fixed-size-list column: no per-row objects
    column = table.column("vector").combine_chunks()
    if len(column) == 0:
        vectors = np.zeros((0, 0), dtype=np.float32)
    elif isinstance(column.type, pa.FixedSizeListType):
        vectors = column.flatten().to_numpy().reshape(len(column), column.type.list_size)
    else:  # a variable-length list column: every row has the same length anyway
        vectors = np.stack([np.asarray(v, dtype=np.float32) for v in column.to_pylist()])
    events = table.drop_columns(["vector"]).to_pandas()
    return events, np.ascontiguousarray(vectors, dtype=np.float32)


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the topic tables, and add columns newer than an old warehouse's tables."""
    for ddl in TOPIC_TABLES_DDL:
        conn.execute(ddl)


def _vectors(values: pd.Series) -> list[np.ndarray]:
    return [np.asarray(c, dtype=np.float32) for c in values]


def read_previous(
    conn: duckdb.DuckDBPyConnection, ds: date | str, model_id: str | None = None
) -> tuple[PreviousDay, date | None]:
    """What the days before `ds` left, for `cluster_window`.

    The latest registry, that day's clusters, themes and assignments, and the next unused ids
    (ids of `ds` and later days are not counted, so a rerun hands out the same new ids).

    Args:
        conn: Warehouse connection.
        ds: The partition being computed.
        model_id: Only topics built on this model's vectors can be continued.

    Returns:
        (previous day, its ds or None).
    """
    if not table_exists(conn, CLUSTERS):
        return PreviousDay(), None
    ensure_tables(conn)
    end = pd.Timestamp(ds).date()
    model = " AND model_id = ?" if model_id else ""
    params: list = [model_id] if model_id else []
    next_cid = conn.execute(
        f"SELECT greatest((SELECT coalesce(max(cluster_id), -1) FROM {CLUSTERS} WHERE ds < ?), "
        f"(SELECT coalesce(max(cluster_id), -1) FROM {REGISTRY} WHERE ds < ?)) + 1",
        [end, end],
    ).fetchall()[0][0]
    next_tid = conn.execute(
        f"SELECT coalesce(max(topic_id), -1) + 1 FROM {TOPICS} WHERE ds < ?", [end]
    ).fetchall()[0][0]
    prev_ds = _previous_day(conn, end, model_id)
    previous = PreviousDay(next_cluster_id=int(next_cid), next_topic_id=int(next_tid))
    if prev_ds is None:
        return previous, None
    day = [prev_ds, *params]
    registry = conn.execute(
        f"SELECT {', '.join(REGISTRY_COLUMNS)} FROM {REGISTRY} WHERE ds = ?{model} "
        "ORDER BY cluster_id",
        day,
    ).df()
    registry["centroid"] = _vectors(registry["centroid"])
    registry["retired"] = (
        registry["retired"].astype(object).where(registry["retired"].notna(), None)
    )
    clusters = conn.execute(f"SELECT * FROM {CLUSTERS} WHERE ds = ?{model}", day).df()
    topics = conn.execute(f"SELECT * FROM {TOPICS} WHERE ds = ?{model}", day).df()
    for frame in (clusters, topics):
        frame["centroid"] = _vectors(frame["centroid"])
    previous.registry = registry
    previous.clusters = clusters if len(clusters) else None
    previous.topics = topics if len(topics) else None
    previous.assignments = read_assignments(conn, prev_ds)
    return previous, pd.Timestamp(prev_ds).date()


def _previous_day(conn: duckdb.DuckDBPyConnection, end: date, model_id: str | None) -> date | None:
    """The last day before `end` clustered (on `model_id`'s vectors, when given)."""
    model = " AND model_id = ?" if model_id else ""
    return conn.execute(
        f"SELECT max(ds) FROM {REGISTRY} WHERE ds < ?{model}",
        [end, *([model_id] if model_id else [])],
    ).fetchall()[0][0]


def read_assignments(conn: duckdb.DuckDBPyConnection, ds: date | str) -> pd.DataFrame:
    """One partition's assignments (feedback_id, cluster_id, topic_id), empty when none."""
    if not table_exists(conn, ASSIGNMENTS):
        return pd.DataFrame(columns=ID_COLUMNS)
    ensure_tables(conn)
    return conn.execute(
        f"SELECT {', '.join(ID_COLUMNS)} FROM {ASSIGNMENTS} WHERE ds = ?", [ds]
    ).df()


@dataclass
class PayloadIds:
    """What the vector store's payloads must hold after a day: `read_payload_ids`."""

    assignments: pd.DataFrame  # feedback_id, cluster_id, topic_id of the window's events
    window: tuple[str, str] | None = None  # first and last day of those events
    previous: tuple[str, pd.DataFrame] | None = None  # the last clustered day before, its rows


def read_payload_ids(conn: duckdb.DuckDBPyConnection, ds: date | str, model_id: str) -> PayloadIds:
    """The assignments of the window ending `ds`, for the cluster ids of the store's payloads.

    Empty when `ds` is not clustered, or was clustered on another model's vectors (its ids
    mean nothing in this model's collection). `previous` is what `read_previous` finds, for
    the store's sync mark (`recall.sync.write_cluster_ids`).
    """
    empty = PayloadIds(pd.DataFrame(columns=ID_COLUMNS))
    if not table_exists(conn, ASSIGNMENTS) or not table_exists(conn, REGISTRY):
        return empty
    end = pd.Timestamp(ds).date()
    mine, other = conn.execute(
        f"SELECT count(*) FILTER (WHERE model_id = ?), count(*) FILTER (WHERE model_id <> ?) "
        f"FROM {REGISTRY} WHERE ds = ?",
        [model_id, model_id, end],
    ).fetchall()[0]
    assignments = read_assignments(conn, end)
    if not len(assignments) or (other and not mine):
        return empty
    first = conn.execute(
        f"SELECT min(e.ds) FROM {ASSIGNMENTS} a JOIN feedback_events e USING (feedback_id) "
        "WHERE a.ds = ?",
        [end],
    ).fetchall()[0][0]
    prev_ds = _previous_day(conn, end, model_id)
    previous = None if prev_ds is None else (prev_ds.isoformat(), read_assignments(conn, prev_ds))
    window = (min(first, end) if first else end).isoformat(), end.isoformat()
    return PayloadIds(assignments, window, previous)


def _listify(values: pd.Series, cast=float) -> list:
    return [None if v is None else [cast(x) for x in v] for v in values]


def _level_rows(frame: pd.DataFrame, columns: list[str], end, start, model_id) -> pd.DataFrame:
    rows = frame.copy()
    rows["ds"] = end
    rows["window_start"] = start
    rows["model_id"] = model_id
    rows["keyphrases"] = _listify(rows["keyphrases"], str)
    rows["quotes"] = _listify(rows["quotes"], str)
    rows["centroid"] = _listify(rows["centroid"], float)
    if "cluster_ids" in rows.columns:
        rows["cluster_ids"] = _listify(rows["cluster_ids"], int)
    for col in ("first_seen", "last_seen"):
        rows[col] = pd.to_datetime(rows[col], utc=True).dt.tz_localize(None)
    for col in ("size", "distinct_users", "n_negative", "previous_size", "cluster_id", "topic_id"):
        if col in rows.columns:
            rows[col] = pd.array(pd.to_numeric(rows[col], errors="coerce"), dtype="Int64")
    return rows[columns]


def _insert(conn: duckdb.DuckDBPyConnection, table: str, rows: pd.DataFrame) -> None:
    if not len(rows):
        return
    columns = ", ".join(rows.columns)
    select = columns.replace("centroid", "centroid::FLOAT[]")
    conn.register("_topic_rows", rows)
    conn.execute(f"INSERT INTO {table} ({columns}) SELECT {select} FROM _topic_rows")
    conn.unregister("_topic_rows")


def phrase_vectors(conn: duckdb.DuckDBPyConnection, hashes: list[str]) -> dict[str, np.ndarray]:
    """The cached vectors of the labels' keyphrases (the lookup of `embedding.CachedEmbed`)."""
    return read_vectors(conn, PHRASE_VECTORS, hashes)


def save_phrase_vectors(
    conn: duckdb.DuckDBPyConnection, model_id: str, vectors: dict[str, np.ndarray]
) -> int:
    """Add keyphrase vectors to the cache (entries already there are kept)."""
    return save_vectors(conn, PHRASE_VECTORS, PHRASE_VECTORS_DDL, model_id, vectors)


def write_window(
    conn: duckdb.DuckDBPyConnection,
    ds: date | str,
    result,
    start: date,
    model_id: str,
) -> dict[str, int]:
    """Replace partition `ds` of every topic table in one transaction.

    Args:
        conn: Warehouse connection.
        ds: The partition.
        result: A `WindowTopics` (its clusters may carry LLM titles by then).
        start: First day of the window.
        model_id: The embedder whose vectors were clustered.

    Returns:
        Rows written per table.
    """
    end = pd.Timestamp(ds).date()
    clusters = _level_rows(result.clusters, CLUSTER_TABLE_COLUMNS, end, start, model_id)
    topics = _level_rows(result.topics, TOPIC_TABLE_COLUMNS, end, start, model_id)
    links = result.assignments[ASSIGNMENT_COLUMNS].copy()
    links["ds"] = end
    lineage = result.lineage[LINEAGE_COLUMNS].copy()
    lineage["ds"] = end
    lineage["model_id"] = model_id
    lineage["from_ids"] = _listify(lineage["from_ids"], int)
    lineage["to_ids"] = _listify(lineage["to_ids"], int)
    registry = result.registry[REGISTRY_COLUMNS].copy()
    registry["ds"] = end
    registry["model_id"] = model_id
    registry["centroid"] = _listify(registry["centroid"], float)
    for col in ("cluster_id", "topic_id"):
        registry[col] = pd.array(pd.to_numeric(registry[col], errors="coerce"), dtype="Int64")
    for col in ("born", "retired"):
        registry[col] = pd.to_datetime(registry[col]).dt.date
    ensure_tables(conn)
    tables = {
        CLUSTERS: clusters,
        TOPICS: topics,
        ASSIGNMENTS: links,
        LINEAGE: lineage,
        REGISTRY: registry,
    }
    with transaction(conn):
        for table, rows in tables.items():
            conn.execute(f"DELETE FROM {table} WHERE ds = ?", [end])
            _insert(conn, table, rows)
        if table_exists(conn, COMPLAINT_ASSIGNMENTS):
            # A rerun of this day alone keeps the complaint ids the complaint stage wrote.
            conn.execute(
                f"UPDATE {ASSIGNMENTS} AS a SET complaint_id = c.complaint_id "
                f"FROM {COMPLAINT_ASSIGNMENTS} AS c "
                "WHERE a.ds = ? AND c.ds = a.ds AND c.feedback_id = a.feedback_id",
                [end],
            )
    return {table: len(rows) for table, rows in tables.items()}
