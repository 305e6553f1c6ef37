"""How assets describe themselves (owners, tables, columns, retries) and what they wrote."""

from __future__ import annotations

import functools

import dagster as dg
import pandas as pd

from feedback_pipelines import schema

#: Who answers for each stage's assets (the UI's "Owners"; Dagster wants `team:` or an email).
OWNERS: dict[str, list[str]] = {
    "sources": ["team:data-engineering"],
    "ingest": ["team:data-engineering"],
    "semantic": ["team:ml-engineering"],
    "clustering": ["team:ml-engineering"],
    "routing": ["team:ml-engineering"],
    "regressions": ["team:model-quality"],
    "reporting": ["team:model-quality"],
}

#: Steps that open the warehouse or a vector store retry a failure that may pass on a second
#: try (a store still locked by a process that is closing, a server that went away): twice,
#: after ~3 s then ~6 s, jittered so two waiting steps do not retry in lockstep. Every step
#: rewrites its day whole, so a retry cannot duplicate rows.
STORE_RETRY = dg.RetryPolicy(
    max_retries=2, delay=3, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

#: Every step that opens the warehouse or the vector store takes a slot of this pool. Both are
#: embedded stores that one process at a time may open, and dagster.yaml gives each pool one
#: slot, so these steps take turns across every run, while steps outside it (the embedding
#: shards) run beside them: several days of a backfill can embed at once.
STORES_POOL = "stores"

#: DuckDB names the catalog of `warehouse.duckdb` after the file; tables live in `main`.
WAREHOUSE_SCHEMA = "warehouse.main"
#: `feedback_embeddings` stores vectors of the default model (all-MiniLM-L6-v2, 384-d).
EMBEDDING_DIM = 384


def owners(group: str) -> list[str]:
    """The owners of a stage's assets."""
    return OWNERS[group]


@functools.cache
def _columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """(name, type) of every warehouse table, read back from the DDL `schema.py` owns.

    Every `*_DDL` statement of `feedback_pipelines.schema` (and the embeddings table's, whose
    vector length depends on the model) runs in an in-memory DuckDB; the columns come back from
    its catalog, so the UI shows exactly what the pipeline creates and nothing is typed twice.
    """
    import duckdb

    from feedback_pipelines.recall.embeddings import embeddings_ddl

    statements = [
        value
        for name, value in vars(schema).items()
        if name.endswith("_DDL") and isinstance(value, str)
    ]
    statements.append(embeddings_ddl(EMBEDDING_DIM))
    with duckdb.connect(":memory:") as conn:
        for statement in statements:
            conn.execute(statement)
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM duckdb_columns() "
            "WHERE database_name = current_database() ORDER BY table_name, column_index"
        ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, kind in rows:
        tables.setdefault(table, []).append((column, kind))
    return {table: tuple(cols) for table, cols in tables.items()}


def column_schema(table: str) -> dg.TableSchema:
    """The Dagster TableSchema of a warehouse table, derived from `feedback_pipelines.schema`."""
    columns = _columns().get(table)
    if columns is None:
        raise KeyError(f"no DDL for warehouse table {table!r} in feedback_pipelines.schema")
    return dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns])


def warehouse_table(table: str) -> dict:
    """Definition metadata of an asset that is a daily-partitioned warehouse table."""
    return {
        "table": table,
        "partition_expr": "ds",
        "dagster/table_name": f"{WAREHOUSE_SCHEMA}.{table}",
        "dagster/column_schema": column_schema(table),
    }


def markdown_table(df: pd.DataFrame) -> dg.MetadataValue:
    """A preview of rows as a Markdown table (or "_no rows_")."""
    return dg.MetadataValue.md(df.to_markdown(index=False) if len(df) else "_no rows_")
