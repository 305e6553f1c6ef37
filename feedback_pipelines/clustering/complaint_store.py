"""The complaint tables in the warehouse: read a window's complaints, write a partition.

`complaint_clusters` and `complaint_assignments` are replaced per `ds` in one transaction with
the `cluster_assignments.complaint_id` of that ds (added to the table when missing), so a rerun
replaces its day and nothing else. Sentence vectors are cached by content hash in
`complaint_vectors`. Plain functions over a DuckDB connection, no Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date

import duckdb
import numpy as np
import pandas as pd

from feedback_pipelines import vector_tables
from feedback_pipelines.clustering.complaints import FIRST_GROUP_ID
from feedback_pipelines.schema import (
    ASSIGNMENTS,
    COMPLAINT_ASSIGNMENTS,
    COMPLAINT_ASSIGNMENTS_DDL,
    COMPLAINT_VECTORS,
    COMPLAINT_VECTORS_DDL,
    COMPLAINTS,
    COMPLAINTS_DDL,
)
from feedback_pipelines.tables import table_columns, table_exists, transaction
from feedback_pipelines.vector_tables import read_vectors

EVENT_COLUMNS = ["ds", "feedback_id", "user_id", "is_negative", "comment", "reason"]


def read_complaint_events(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> pd.DataFrame:
    """The window's negative events with a comment or a reason (never the request)."""
    if not table_exists(conn, "feedback_events"):
        return pd.DataFrame(columns=EVENT_COLUMNS)
    return conn.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM feedback_events "
        "WHERE ds BETWEEN ? AND ? AND is_negative "
        "AND (reason IS NOT NULL OR nullif(trim(comment), '') IS NOT NULL) "
        "ORDER BY feedback_id",
        [start, end],
    ).df()


def read_topic_links(conn: duckdb.DuckDBPyConnection, ds: date) -> pd.DataFrame:
    """feedback_id, cluster_id and (when the table has it) topic_id of partition `ds`."""
    columns = table_columns(conn).get(ASSIGNMENTS)
    if not columns:
        return pd.DataFrame(columns=["feedback_id", "cluster_id", "topic_id"])
    topic = "topic_id" if "topic_id" in columns else "NULL::BIGINT AS topic_id"
    return conn.execute(
        f"SELECT feedback_id, cluster_id, {topic} FROM {ASSIGNMENTS} WHERE ds = ?", [ds]
    ).df()


def read_previous(
    conn: duckdb.DuckDBPyConnection, ds: date
) -> tuple[pd.DataFrame | None, dict[str, int], int]:
    """The latest partition before `ds`: its groups, its complaints' ids, the next new id.

    Groups are (complaint_id, centroid) rows; complaints map feedback_id -> data-driven
    complaint_id. The next id counts only partitions before `ds`, so a rerun hands out the same ids.
    """
    if not table_exists(conn, COMPLAINTS):
        return None, {}, FIRST_GROUP_ID
    next_id = conn.execute(
        f"SELECT greatest(coalesce(max(complaint_id), 0) + 1, ?) FROM {COMPLAINTS} WHERE ds < ?",
        [FIRST_GROUP_ID, ds],
    ).fetchall()[0][0]
    prev_ds = conn.execute(f"SELECT max(ds) FROM {COMPLAINTS} WHERE ds < ?", [ds]).fetchall()[0][0]
    if prev_ds is None:
        return None, {}, int(next_id)
    rows = conn.execute(
        f"SELECT complaint_id, centroid FROM {COMPLAINTS} WHERE ds = ? ORDER BY complaint_id",
        [prev_ds],
    ).df()
    links: dict[str, int] = {}
    if table_exists(conn, COMPLAINT_ASSIGNMENTS):
        links = dict(
            conn.execute(
                f"SELECT feedback_id, complaint_id FROM {COMPLAINT_ASSIGNMENTS} "
                f"WHERE ds = ? AND complaint_id >= ?",
                [prev_ds, FIRST_GROUP_ID],
            ).fetchall()
        )
    return (rows if len(rows) else None), links, int(next_id)


def cached_vectors(conn: duckdb.DuckDBPyConnection, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    """The cached vectors of those content hashes (the lookup of `embed_with_cache`)."""
    return read_vectors(conn, COMPLAINT_VECTORS, hashes)


def save_vectors(
    conn: duckdb.DuckDBPyConnection, model_id: str, vectors: Mapping[str, np.ndarray]
) -> int:
    """Add vectors to the cache (entries already there are kept)."""
    return vector_tables.save_vectors(
        conn, COMPLAINT_VECTORS, COMPLAINT_VECTORS_DDL, model_id, vectors
    )


def count_by(assignments: pd.DataFrame, links: pd.DataFrame, column: str) -> dict[int, str]:
    """Per complaint id, a JSON object {theme or subtopic id: complaints} (noise included)."""
    if not len(assignments) or not len(links) or links[column].isna().all():
        return {}
    both = assignments[["feedback_id", "complaint_id"]].merge(
        links[["feedback_id", column]].dropna(), on="feedback_id"
    )
    out = {}
    for cid, group in both.groupby("complaint_id"):
        counts = group[column].astype(int).value_counts().sort_index()
        out[int(cid)] = json.dumps({str(k): int(v) for k, v in counts.items()})
    return out


def _lists(values: pd.Series, cast) -> list:
    return [[cast(x) for x in v] for v in values]


def write_complaints(
    conn: duckdb.DuckDBPyConnection,
    ds: date,
    clusters: pd.DataFrame,
    assignments: pd.DataFrame,
    start: date,
    model_id: str,
) -> tuple[int, int]:
    """Replace partition `ds` of both complaint tables and of `cluster_assignments.complaint_id`.

    `clusters` carries the core's columns plus `topic_counts` and `cluster_counts` (JSON text,
    may be None). In `cluster_assignments` the ds's complaint ids are reset to NULL first, then
    set for every complaint of the window, so a rerun leaves no stale id.

    Returns:
        (group rows, complaint rows) written.
    """
    rows = clusters.copy()
    rows["ds"] = ds
    rows["window_start"] = start
    rows["model_id"] = model_id
    for col in ("keyphrases", "example_ids", "quotes"):
        rows[col] = _lists(rows[col], str)
    rows["centroid"] = _lists(rows["centroid"], float)
    for col in ("topic_counts", "cluster_counts"):
        if col not in rows:
            rows[col] = None
    links = assignments.copy()
    links["ds"] = ds
    links["similarity"] = links["similarity"].astype("Float64")
    conn.execute(COMPLAINTS_DDL)
    conn.execute(COMPLAINT_ASSIGNMENTS_DDL)
    has_topics = table_exists(conn, ASSIGNMENTS)
    if has_topics and "complaint_id" not in table_columns(conn).get(ASSIGNMENTS, set()):
        conn.execute(f"ALTER TABLE {ASSIGNMENTS} ADD COLUMN complaint_id INTEGER")
    with transaction(conn):
        conn.execute(f"DELETE FROM {COMPLAINTS} WHERE ds = ?", [ds])
        conn.execute(f"DELETE FROM {COMPLAINT_ASSIGNMENTS} WHERE ds = ?", [ds])
        if len(rows):
            conn.register("_complaint_rows", rows)
            conn.execute(
                f"INSERT INTO {COMPLAINTS} BY NAME SELECT * REPLACE (centroid::FLOAT[] AS "
                "centroid) FROM _complaint_rows"
            )
            conn.unregister("_complaint_rows")
        if len(links):
            conn.register("_complaint_links", links)
            conn.execute(
                f"INSERT INTO {COMPLAINT_ASSIGNMENTS} BY NAME SELECT ds, feedback_id, "
                "complaint_id, kind, similarity, source FROM _complaint_links"
            )
        if has_topics:
            conn.execute(f"UPDATE {ASSIGNMENTS} SET complaint_id = NULL WHERE ds = ?", [ds])
            if len(links):
                conn.execute(
                    f"UPDATE {ASSIGNMENTS} AS a SET complaint_id = c.complaint_id "
                    "FROM _complaint_links c WHERE a.ds = ? AND a.feedback_id = c.feedback_id",
                    [ds],
                )
        if len(links):
            conn.unregister("_complaint_links")
    return len(rows), len(links)
