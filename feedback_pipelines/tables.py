"""Warehouse tables as every stage sees them: which exist, their columns, replacing a `ds`."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb
import pandas as pd


@contextmanager
def transaction(conn: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Everything in the block commits together or not at all (rolled back on any error)."""
    conn.execute("BEGIN TRANSACTION")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


_SHOW_LIMIT = "SELECT current_setting('memory_limit')"
_UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12}
_UNITS.update({"KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40})


def _parts(size: str) -> tuple[float, str]:
    number, unit = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", size).groups()
    return float(number), unit


def _bytes(size: str) -> float:
    """'1GB', '953.6 MiB' -> bytes."""
    number, unit = _parts(size)
    return number * _UNITS[unit]


@contextmanager
def memory_limit(conn: duckdb.DuckDBPyConnection, limit: str) -> Iterator[None]:
    """DuckDB's memory limit at most `limit` within the block, then set back.

    Its buffer pool keeps every block a query read until the limit (by default 80% of the
    machine); past it blocks are evicted or spilled. The limit holds for the whole database,
    and a lower one already set is kept. DuckDB shows a limit rounded, so one never set is
    reset, and one set higher is set back to what it showed (to within 0.1 of its unit).
    """
    (current,) = conn.execute(_SHOW_LIMIT).fetchone()
    if _bytes(current) <= _bytes(limit):
        yield
        return
    with duckdb.connect() as fresh:
        default = current == fresh.execute(_SHOW_LIMIT).fetchone()[0]
    conn.execute(f"SET memory_limit = '{limit}'")
    try:
        yield
    finally:
        if default:
            conn.execute("RESET memory_limit")
        else:  # shown cut to 0.1: the middle of that range shows the same again
            number, unit = _parts(current)
            conn.execute(f"SET memory_limit = '{number + 0.05:.2f} {unit}'")


def write_partition(
    conn: duckdb.DuckDBPyConnection, table: str, ddl: str, frame: pd.DataFrame, ds: str
) -> int:
    """Replace one `ds` of `table` with `frame` in one transaction (delete, then insert by name).

    NaN becomes NULL (DuckDB would keep a float NaN, which SQL users do not expect).

    Args:
        conn: An open DuckDB connection.
        table: Table name (created with `ddl` if missing).
        ddl: CREATE TABLE IF NOT EXISTS statement of the table.
        frame: Rows of the partition; columns matched by name.
        ds: The partition day (ISO date).

    Returns:
        Rows written.
    """
    rows = frame.copy()
    for col in rows.columns:
        if pd.api.types.is_float_dtype(rows[col]):
            rows[col] = rows[col].astype("Float64")
        elif rows[col].dtype == object:
            rows[col] = rows[col].where(rows[col].notna(), None)
    conn.execute(ddl)
    with transaction(conn):
        conn.execute(f"DELETE FROM {table} WHERE ds = ?", [ds])
        if len(rows):
            conn.register("_partition_rows", rows)
            conn.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _partition_rows")
            conn.unregister("_partition_rows")
    return len(rows)


def table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Whether a table or view of that name exists (any schema)."""
    return bool(
        conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]
        ).fetchall()[0][0]
    )


def table_columns(conn: duckdb.DuckDBPyConnection) -> dict[str, set[str]]:
    """Every table or view the connection sees (main schema first), with its column names."""
    rows = conn.execute(
        "SELECT table_name, column_name, table_schema FROM information_schema.columns "
        "ORDER BY table_schema = 'main' DESC, table_schema"
    ).fetchall()
    out: dict[str, set[str]] = {}
    schema_of: dict[str, str] = {}
    for table, column, schema in rows:
        if schema_of.setdefault(table, schema) != schema:
            continue  # the same name in a later schema: main wins
        out.setdefault(table, set()).add(column)
    return out
