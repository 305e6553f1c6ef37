"""The product's PostgreSQL database as a source of traces and feedback (a Dagster resource)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from pydantic import Field

from feedback_pipelines.sources.postgres import DEFAULT_FILE_NAME, TableMapping

DSN_ENV = "FEEDBACK_POSTGRES_DSN"
MAPPING_ENV = "FEEDBACK_POSTGRES_MAPPING"


class PostgresSourceResource(dg.ConfigurableResource):
    """Where the product keeps its `traces` and `feedback` tables, and how their columns map.

    Bind `dsn` with `dg.EnvVar("FEEDBACK_POSTGRES_DSN")` so the connection string (a secret)
    never appears in config or logs; left empty, the variable is read when a run starts, and
    without it the source is off. Column mappings name, per contract field, the column that
    holds it (default: the field's own name; "" when the table has none); `*_metadata_columns`
    are copied into the record's metadata. Sessions read in a read-only transaction with the
    time zone set to UTC.
    """

    dsn: str = Field(default="", description="libpq connection string or URL (a secret)")
    traces_table: str = Field(default="traces", description="table or schema.table")
    feedback_table: str = Field(default="feedback", description="table or schema.table")
    traces_columns: dict[str, str] = Field(
        default_factory=dict, description="contract trace field -> column, where they differ"
    )
    feedback_columns: dict[str, str] = Field(
        default_factory=dict, description="contract feedback field -> column, where they differ"
    )
    traces_metadata_columns: list[str] = Field(default_factory=list)
    feedback_metadata_columns: list[str] = Field(default_factory=list)
    batch_size: int = Field(default=5000, description="rows per bounded query (one page)")
    max_rows_per_day: int = Field(
        default=2_000_000, description="fail rather than pull more rows than this for one day"
    )
    recheck_days: int = Field(
        default=2,
        description="earlier days whose row counts are compared; a changed day is re-pulled "
        "(late rows), and the landing sensor then reruns it",
    )
    connect_timeout_s: int = 10
    retry_wait_s: int = Field(
        default=10,
        description="first wait before retrying when the server is unreachable (doubles after)",
    )
    file_name: str = DEFAULT_FILE_NAME

    def resolved_dsn(self) -> str:
        """The connection string: the bound value, else FEEDBACK_POSTGRES_DSN at run time."""
        return self.dsn or os.environ.get(DSN_ENV, "")

    @property
    def is_configured(self) -> bool:
        """Whether a database is configured at all."""
        return bool(self.resolved_dsn())

    def target(self) -> str:
        """host:port/dbname of the DSN, for logs (never the password)."""
        from psycopg.conninfo import conninfo_to_dict

        try:
            info = conninfo_to_dict(self.resolved_dsn())
        except Exception:  # a bad DSN must not leak into logs either
            return "(unparseable connection string)"
        return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    def mappings(self) -> list[TableMapping]:
        """The traces and feedback table mappings."""
        return [
            TableMapping.build(
                "traces", self.traces_table, self.traces_columns, self.traces_metadata_columns
            ),
            TableMapping.build(
                "feedback",
                self.feedback_table,
                self.feedback_columns,
                self.feedback_metadata_columns,
            ),
        ]

    @contextmanager
    def connect(self) -> Iterator[Any]:
        """A read-only psycopg connection in UTC, closed on exit."""
        import psycopg

        dsn = self.resolved_dsn()
        if not dsn:
            raise RuntimeError(f"no PostgreSQL source configured: set {DSN_ENV}")
        conn = psycopg.connect(
            dsn, connect_timeout=self.connect_timeout_s, options="-c TimeZone=UTC"
        )
        try:
            conn.read_only = True
            yield conn
        finally:
            conn.close()


def resource_from_env() -> PostgresSourceResource:
    """The resource as the environment configures it at definitions load.

    FEEDBACK_POSTGRES_DSN is bound as an `EnvVar` when set; FEEDBACK_POSTGRES_MAPPING may name
    a JSON file with any of the resource's fields, e.g.
    `{"feedback_table": "app.user_feedback", "feedback_columns": {"kind": "signal"}}`.
    """
    options: dict[str, Any] = {}
    mapping_file = os.environ.get(MAPPING_ENV)
    if mapping_file:
        options = json.loads(Path(mapping_file).read_text(encoding="utf-8"))
        if not isinstance(options, dict):
            raise ValueError(f"{MAPPING_ENV} must name a JSON object file, got {mapping_file}")
        options.pop("dsn", None)  # the secret only ever comes from the environment
    if os.environ.get(DSN_ENV):
        options["dsn"] = dg.EnvVar(DSN_ENV)
    return PostgresSourceResource(**options)
