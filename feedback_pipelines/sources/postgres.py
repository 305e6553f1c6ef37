"""Pull the product's own `traces` and `feedback` tables from PostgreSQL, one day at a time.

Pure pull, no Dagster: for one day and one table, keyset-paginated queries bounded by
`WHERE ts >= day AND ts < day + 1 ... ORDER BY ts, id LIMIT batch` (so no single query reads
more than a batch and an index on `(ts, id)` serves every page), mapped through a column mapping
onto the contract's fields and written to `<landing>/traces|feedback/dt=DAY/postgres.jsonl`.

The mapping names, for each contract field, the column that holds it (the default is the field's
own name; an empty name means the table has no such column), plus extra columns to copy into
`metadata`. Values are converted the way the landing zone expects: timestamps as RFC 3339 UTC
(a `timestamp` without time zone is read as UTC), ids as strings, `jsonb` as JSON, a text column
holding JSON (messages, metadata) parsed. A row that does not fit the contract (a NULL id, an
unknown kind, messages that are not a list) is still written, and ingest quarantines it with the
reason.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from feedback_pipelines.ingest.records import FEEDBACK_FIELDS, TRACE_FIELDS
from feedback_pipelines.sources.common import replace_file, rfc3339

FORMAT = "postgres"
DEFAULT_FILE_NAME = "postgres"
_JSON_FIELDS = ("messages", "metadata")
_ID_FIELDS = ("trace_id", "feedback_id", "session_id", "user_id")


class TooManyRows(RuntimeError):
    """A day holds more rows than the configured cap: raise the cap rather than lose rows."""


@dataclass(frozen=True)
class TableMapping:
    """Where one contract record lives in the product's database."""

    source: str  # "traces" or "feedback"
    table: str  # "table" or "schema.table"
    columns: Mapping[str, str] = field(default_factory=dict)  # contract field -> column
    metadata_columns: tuple[str, ...] = ()
    explicit: frozenset[str] = frozenset()  # fields the user mapped (must exist)

    @classmethod
    def build(
        cls,
        source: str,
        table: str,
        overrides: Mapping[str, str] | None = None,
        metadata_columns: tuple[str, ...] | list[str] = (),
    ) -> TableMapping:
        """The identity mapping of the source's contract fields, with overrides applied."""
        if source not in ("traces", "feedback"):
            raise ValueError(f"source must be 'traces' or 'feedback', got {source!r}")
        fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
        unknown = set(overrides or {}) - set(fields)
        if unknown:
            raise ValueError(
                f"unknown {source} fields in the column mapping: {sorted(unknown)} "
                f"(expected some of {list(fields)})"
            )
        columns = {name: name for name in fields} | dict(overrides or {})
        return cls(source, table, columns, tuple(metadata_columns), frozenset(overrides or {}))

    def resolve(self, available: set[str]) -> TableMapping:
        """This mapping limited to the table's real columns.

        A field left at its default name is dropped when the table has no such column (most
        product tables hold a few of the contract's fields); a column named explicitly, a
        metadata column or the id and timestamp columns must exist.
        """
        missing = sorted(
            f"{name} -> {column}"
            for name, column in self.columns.items()
            if column
            and column not in available
            and (name in self.explicit or name in ("timestamp", self.id_field))
        )
        missing += [f"metadata <- {c}" for c in self.metadata_columns if c not in available]
        if missing:
            raise ValueError(
                f"{self.table} has no column for {', '.join(missing)} "
                f"(its columns: {', '.join(sorted(available))})"
            )
        columns = {n: c for n, c in self.columns.items() if c and c in available}
        return TableMapping(self.source, self.table, columns, self.metadata_columns, self.explicit)

    @property
    def id_field(self) -> str:
        """The contract field that identifies a row: the keyset's tiebreaker."""
        return "trace_id" if self.source == "traces" else "feedback_id"

    @property
    def time_column(self) -> str:
        """The column a day is selected on."""
        column = self.columns.get("timestamp")
        if not column:
            raise ValueError(f"the {self.source} mapping has no timestamp column")
        return column

    @property
    def id_column(self) -> str:
        """The column that breaks ties between rows of the same timestamp."""
        column = self.columns.get(self.id_field)
        if not column:
            raise ValueError(f"the {self.source} mapping has no {self.id_field} column")
        return column


def day_bounds(ds: str) -> tuple[datetime, datetime]:
    """[start, end) of a UTC day."""
    start = datetime.combine(date.fromisoformat(ds), datetime.min.time(), tzinfo=UTC)
    return start, start + timedelta(days=1)


def _table_sql(table: str):
    from psycopg import sql

    return sql.Identifier(*table.split(".", 1))


def select_sql(mapping: TableMapping, after: bool):
    """The bounded, keyset-paginated SELECT of one page of a day."""
    from psycopg import sql

    selected = [
        sql.SQL("{} AS {}").format(sql.Identifier(column), sql.Identifier(name))
        for name, column in mapping.columns.items()
        if column
    ]
    selected += [
        sql.SQL("{} AS {}").format(sql.Identifier(column), sql.Identifier(f"meta:{column}"))
        for column in mapping.metadata_columns
    ]
    ts, key = sql.Identifier(mapping.time_column), sql.Identifier(mapping.id_column)
    keyset = (
        sql.SQL(" AND ({}, {}) > (%(last_ts)s, %(last_id)s)").format(ts, key)
        if after
        else sql.SQL("")
    )
    return sql.SQL(
        "SELECT {cols} FROM {table} WHERE {ts} >= %(lo)s AND {ts} < %(hi)s{keyset} "
        "ORDER BY {ts}, {key} LIMIT %(limit)s"
    ).format(
        cols=sql.SQL(", ").join(selected),
        table=_table_sql(mapping.table),
        ts=ts,
        key=key,
        keyset=keyset,
    )


def count_sql(mapping: TableMapping):
    """Rows of a day: the cheap question asked before re-pulling an earlier day."""
    from psycopg import sql

    ts = sql.Identifier(mapping.time_column)
    return sql.SQL("SELECT count(*) FROM {table} WHERE {ts} >= %(lo)s AND {ts} < %(hi)s").format(
        table=_table_sql(mapping.table), ts=ts
    )


def table_columns(conn: Any, table: str) -> set[str]:
    """The columns of a table or view (an empty, bounded query: works for any relation)."""
    from psycopg import sql

    with conn.cursor() as cur:
        cur.execute(sql.SQL("SELECT * FROM {} LIMIT 0").format(_table_sql(table)))
        return {d.name for d in cur.description}


def fetch_day(
    conn: Any,
    mapping: TableMapping,
    ds: str,
    batch_size: int = 5000,
    max_rows: int = 2_000_000,
) -> Iterator[dict[str, Any]]:
    """Rows of one day as dicts keyed by contract field (and `meta:<column>`), page by page."""
    lo, hi = day_bounds(ds)
    params: dict[str, Any] = {"lo": lo, "hi": hi, "limit": batch_size}
    first, after = select_sql(mapping, False), select_sql(mapping, True)
    seen = 0
    query = first
    while True:
        with conn.cursor() as cur:
            cur.execute(query, params)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        for row in rows:
            yield dict(zip(names, row, strict=True))
        seen += len(rows)
        if seen > max_rows:
            raise TooManyRows(
                f"{mapping.table} holds more than {max_rows:,} rows on {ds}: raise "
                "max_rows_per_day (rows are pulled in pages of batch_size)"
            )
        if len(rows) < batch_size:
            return
        last = dict(zip(names, rows[-1], strict=True))
        params |= {"last_ts": last["timestamp"], "last_id": last[mapping.id_field]}
        query = after


def count_day(conn: Any, mapping: TableMapping, ds: str) -> int:
    """How many rows the table holds for a day."""
    lo, hi = day_bounds(ds)
    with conn.cursor() as cur:
        cur.execute(count_sql(mapping), {"lo": lo, "hi": hi})
        return int(cur.fetchone()[0])


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return rfc3339(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, uuid.UUID | bytes | memoryview):
        return str(value) if isinstance(value, uuid.UUID) else bytes(value).hex()
    return value


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def row_to_record(row: Mapping[str, Any], mapping: TableMapping) -> dict[str, Any]:
    """One database row as a contract record (unmappable values kept for ingest to judge)."""
    record: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in row.items():
        if key.startswith("meta:"):
            if value is not None:
                extra[key[5:]] = _json_value(value)
            continue
        if value is None:
            continue
        if key in _JSON_FIELDS:
            value = _maybe_json(value)
        elif key in _ID_FIELDS and isinstance(value, int | uuid.UUID):
            value = str(value)
        record[key] = _json_value(value)
    metadata = record.get("metadata")
    if metadata is None or isinstance(metadata, dict):
        record["metadata"] = {
            **(metadata or {}),
            **extra,
            "import": {"format": FORMAT, "table": mapping.table},
        }
    return record


def landing_file(landing: Path, source: str, ds: str, name: str = DEFAULT_FILE_NAME) -> Path:
    """Where a pulled day of one table lands."""
    return landing / source / f"dt={ds}" / f"{name}.jsonl"


def write_day(
    landing: Path, source: str, ds: str, records: list[dict[str, Any]], name: str
) -> bool:
    """Replace the day's landed file with these records; True when its content changed.

    A day with no rows has no file (a file from an earlier pull is removed), so rows deleted
    upstream leave the landing zone too.
    """
    path = landing_file(landing, source, ds, name)
    if not records:
        if path.exists():
            path.unlink()
            return True
        return False
    data = "".join(
        json.dumps(r, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        for r in records
    ).encode("utf-8")
    return replace_file(path, data)


@dataclass
class PullResult:
    """What one pull of one day wrote, per table: the asset's metadata."""

    ds: str
    rows: dict[str, int] = field(default_factory=dict)
    changed: dict[str, bool] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def pull_day(
    conn: Any,
    mappings: list[TableMapping],
    landing: Path,
    ds: str,
    batch_size: int = 5000,
    max_rows: int = 2_000_000,
    name: str = DEFAULT_FILE_NAME,
) -> PullResult:
    """Pull one day of every mapped table into the landing zone."""
    result = PullResult(ds)
    for mapping in mappings:
        mapping = mapping.resolve(table_columns(conn, mapping.table))
        records = [
            row_to_record(row, mapping)
            for row in fetch_day(conn, mapping, ds, batch_size, max_rows)
        ]
        result.rows[mapping.source] = len(records)
        result.changed[mapping.source] = write_day(landing, mapping.source, ds, records, name)
        if records:
            result.files.append(str(landing_file(landing, mapping.source, ds, name)))
    return result


def landed_rows(landing: Path, source: str, ds: str, name: str = DEFAULT_FILE_NAME) -> int:
    """Lines in the day's landed file (0 when there is none)."""
    path = landing_file(landing, source, ds, name)
    if not path.exists():
        return 0
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def stale_days(
    conn: Any,
    mappings: list[TableMapping],
    landing: Path,
    days: list[str],
    name: str = DEFAULT_FILE_NAME,
) -> list[str]:
    """Earlier days whose row counts in the database differ from what was landed (late rows)."""
    stale = []
    mappings = [m.resolve(table_columns(conn, m.table)) for m in mappings]
    for ds in days:
        if any(
            count_day(conn, m, ds) != landed_rows(landing, m.source, ds, name) for m in mappings
        ):
            stale.append(ds)
    return stale


def pull_with_late_days(
    conn: Any,
    mappings: list[TableMapping],
    landing: Path,
    ds: str,
    earlier: list[str],
    batch_size: int = 5000,
    max_rows: int = 2_000_000,
    name: str = DEFAULT_FILE_NAME,
) -> tuple[PullResult, dict[str, dict[str, int]]]:
    """Pull the day, then re-pull the earlier days whose row counts changed (late rows).

    Returns the day's result and, per re-pulled day, its row counts.
    """
    result = pull_day(conn, mappings, landing, ds, batch_size, max_rows, name)
    repulled = {
        day: pull_day(conn, mappings, landing, day, batch_size, max_rows, name).rows
        for day in stale_days(conn, mappings, landing, earlier, name)
    }
    return result, repulled
