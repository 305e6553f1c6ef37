"""The DuckDB warehouse resource (dagster-duckdb), with its file found from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from dagster_duckdb import DuckDBResource

from feedback_pipelines import config


class WarehouseResource(DuckDBResource):
    """DuckDBResource whose `database` defaults to $FEEDBACK_DATA_DIR/warehouse.duckdb at run time.

    DuckDB lets one process write a file at a time: hold a connection briefly (read, close,
    compute, reopen to write).
    """

    database: str = ""

    def path(self) -> Path:
        """The warehouse file (its folder also holds the run's scratch files, under `work/`)."""
        return Path(self.database) if self.database else config.warehouse_path()

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """Open the warehouse (creating its folder), as DuckDBResource does, with retries."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        inner = DuckDBResource(database=str(path), connection_config=self.connection_config)
        with inner.get_connection() as conn:
            yield conn
