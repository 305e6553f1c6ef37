"""The DuckDB warehouse resource (dagster-duckdb), with its file found from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
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
        """Open the warehouse (creating its folder), as DuckDBResource does, with retries.

        Retries wait out another process's lock; a damaged file fails the step at once.
        """
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        inner = DuckDBResource(database=str(path), connection_config=self.connection_config)
        with ExitStack() as stack:
            try:
                conn = stack.enter_context(inner.get_connection())
            except duckdb.Error as error:
                if not any(mark in str(error) for mark in _CORRUPT):
                    raise
                raise dg.Failure(corrupt_message(path, error), allow_retries=False) from error
            yield conn


# How DuckDB says a file is damaged (a torn block, a torn write-ahead log).
_CORRUPT = ("Corrupt database file", "Corrupt WAL file", "No more data remaining in MetadataReader")


def corrupt_message(path: Path, error: Exception) -> str:
    """What happened and what to do; retrying cannot help, so the step is not retried."""
    return (
        f"the warehouse {path} is damaged and does not open (DuckDB: {error}). A kill -9 "
        "while DuckDB writes a checkpoint can do this. Nothing is lost: move the file aside and "
        "run the days again (feedback-pipelines run --start <first day> --end <last day>); the "
        "landing zone holds every input."
    )
