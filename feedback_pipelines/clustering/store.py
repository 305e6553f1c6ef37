"""The clustering tables in the warehouse: read a window, read yesterday, write a partition.

`feedback_clusters` and `cluster_assignments` (CONTRACT.md section 3) are written per `ds`, the
window's last day, by delete-then-insert in one transaction, so a rerun replaces its day and
nothing else. Plain functions over a DuckDB connection, no Dagster: the asset holds the
connection only while these run (read, close, compute, reopen to write).
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from feedback_pipelines.schema import (
    ASSIGNMENTS,
    ASSIGNMENTS_DDL,
    CLUSTER_TABLE_COLUMNS,
    CLUSTERS,
    CLUSTERS_DDL,
)
from feedback_pipelines.tables import table_exists, transaction

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


def read_previous(
    conn: duckdb.DuckDBPyConnection, ds: date | str, model_id: str | None = None
) -> tuple[pd.DataFrame | None, date | None, int]:
    """The latest partition before `ds` (faded rows included) and the next unused id.

    The next id is one more than any id given before `ds`, so a rerun of a day hands out the
    same new ids as its first run (ids of later days are not counted).

    Args:
        conn: Warehouse connection.
        ds: The partition being computed.
        model_id: Only clusters built on this model's vectors can be continued.

    Returns:
        (rows or None, their ds or None, next id).
    """
    if not table_exists(conn, CLUSTERS):
        return None, None, 0
    end = pd.Timestamp(ds).date()
    next_id = conn.execute(
        f"SELECT coalesce(max(cluster_id), -1) + 1 FROM {CLUSTERS} WHERE ds < ?", [end]
    ).fetchall()[0][0]
    prev_ds = conn.execute(f"SELECT max(ds) FROM {CLUSTERS} WHERE ds < ?", [end]).fetchall()[0][0]
    if prev_ds is None:
        return None, None, int(next_id)
    sql = f"SELECT * FROM {CLUSTERS} WHERE ds = ?"
    params: list = [prev_ds]
    if model_id:
        sql += " AND model_id = ?"
        params.append(model_id)
    rows = conn.execute(sql + " ORDER BY cluster_id", params).df()
    rows["centroid"] = [np.asarray(c, dtype=np.float32) for c in rows["centroid"]]
    return (rows if len(rows) else None), pd.Timestamp(prev_ds).date(), int(next_id)


def read_assignments(conn: duckdb.DuckDBPyConnection, ds: date | str) -> pd.DataFrame:
    """One partition's assignments (feedback_id, cluster_id), empty when there are none."""
    if not table_exists(conn, ASSIGNMENTS):
        return pd.DataFrame(columns=["feedback_id", "cluster_id"])
    return conn.execute(
        f"SELECT feedback_id, cluster_id FROM {ASSIGNMENTS} WHERE ds = ?", [ds]
    ).df()


def _listify(values: pd.Series, cast=float) -> list:
    return [None if v is None else [cast(x) for x in v] for v in values]


def write_window(
    conn: duckdb.DuckDBPyConnection,
    ds: date | str,
    clusters: pd.DataFrame,
    assignments: pd.DataFrame,
    start: date,
    model_id: str,
) -> tuple[int, int]:
    """Replace partition `ds` of both tables in one transaction.

    Returns:
        (cluster rows, assignment rows) written.
    """
    end = pd.Timestamp(ds).date()
    rows = clusters.copy()
    rows["ds"] = end
    rows["window_start"] = start
    rows["model_id"] = model_id
    rows["keyphrases"] = _listify(rows["keyphrases"], str)
    rows["quotes"] = _listify(rows["quotes"], str)
    rows["centroid"] = _listify(rows["centroid"], float)
    for col in ("first_seen", "last_seen"):
        rows[col] = pd.to_datetime(rows[col], utc=True).dt.tz_localize(None)
    for col in ("size", "distinct_users", "n_negative", "previous_size", "cluster_id"):
        rows[col] = pd.array(pd.to_numeric(rows[col], errors="coerce"), dtype="Int64")
    rows = rows[CLUSTER_TABLE_COLUMNS]
    links = assignments[["feedback_id", "cluster_id", "probability"]].copy()
    links["ds"] = end
    conn.execute(CLUSTERS_DDL)
    conn.execute(ASSIGNMENTS_DDL)
    with transaction(conn):
        conn.execute(f"DELETE FROM {CLUSTERS} WHERE ds = ?", [end])
        conn.execute(f"DELETE FROM {ASSIGNMENTS} WHERE ds = ?", [end])
        if len(rows):
            conn.register("_cluster_rows", rows)
            columns = ", ".join(CLUSTER_TABLE_COLUMNS)
            select = columns.replace("centroid", "centroid::FLOAT[]")
            conn.execute(f"INSERT INTO {CLUSTERS} ({columns}) SELECT {select} FROM _cluster_rows")
            conn.unregister("_cluster_rows")
        if len(links):
            conn.register("_assignment_rows", links)
            conn.execute(
                f"INSERT INTO {ASSIGNMENTS} (ds, feedback_id, cluster_id, probability) "
                "SELECT ds, feedback_id, cluster_id, probability FROM _assignment_rows"
            )
            conn.unregister("_assignment_rows")
    return len(rows), len(links)
