"""Landing zone -> `traces`, `feedback_events` and `quarantine` for one day, in bulk inside DuckDB.

Everything after reading the bytes is set-based SQL (JSON parsing, validation with a reason per
line, dedup, PII redaction, joins): no Python object per line. A day is written by replacing
that day in one transaction, so a rerun gives identical rows (in no particular order).

Validation has two paths with one outcome. The fast path streams every file of a source
through one statement: each line is parsed once into typed values, the JSON type of every
field comes from one more scan, and a line that passes every rule is stored with its texts
already redacted, in the same pass. The few lines it does not accept go through the full check,
which names the first problem in words (or, rarely, finds the line valid after all). Then dedup,
sessions and signals are worked out on narrow keys, and the wide texts are read once more,
straight into the tables.

JSON text (messages, metadata, a quarantined line) is redacted string by string in decoded
form (see `privacy.redact_json`); the fast path takes the shortcut only where it is exact.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa

from feedback_pipelines import privacy
from feedback_pipelines.ingest import landing
from feedback_pipelines.ingest.records import (
    FEEDBACK_FIELDS,
    FEEDBACK_KINDS,
    FEEDBACK_REASONS,
    FEEDBACK_TEXT_FIELDS,
    MAX_TEXT_CHARS,
    RAW_KEEP_CHARS,
    TRACE_FIELDS,
    TRACE_TEXT_FIELDS,
    negative_sql,
    positive_sql,
    quarantine_category_sql,
)
from feedback_pipelines.schema import INGEST_DDL, RETIRED_COLUMNS
from feedback_pipelines.tables import memory_limit, transaction

MEMORY_LIMIT = "1GB"
# A file written after this much of the next day has passed arrived late (after the 02:00 run).
LATE_AFTER = timedelta(hours=26)
# Rows per Arrow record batch (DuckDB's unit of parallel work on an Arrow stream), and blocks
# of input (`landing.BLOCK_SIZE` bytes each) read ahead of DuckDB.
CHUNK_ROWS = 4096
READ_AHEAD = 3
# Columns redacted on the way in; every other stored text is an id, a version or a timestamp.
REDACTED = {
    "traces": ("messages", "request", "response", "metadata"),
    "feedback": ("comment", "correction", "metadata"),
}
# Fields holding JSON text, redacted string by string.
JSON_FIELDS = ("messages", "metadata")
# Numeric fields stored as integers (rounded); the other numbers stay DOUBLE.
INTEGER_FIELDS = ("input_tokens", "output_tokens")


@dataclass
class IngestStats:
    """What one day's ingest did: the numbers the asset reports and the checks judge."""

    ds: str
    files: dict[str, list[str]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    unknown_trace: int = 0
    late_feedback: int = 0
    abandoned: int = 0
    late_files: int = 0
    seconds: float = 0.0
    # Wall seconds of each step, in order: where a slow day's time went.
    phases: dict[str, float] = field(default_factory=dict)

    @property
    def total_lines(self) -> int:
        """All input lines of the day, both sources."""
        return sum(self.lines.values())

    @property
    def total_quarantined(self) -> int:
        """All quarantined lines of the day, both sources."""
        return sum(self.quarantined.values())


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ingest tables if they do not exist yet (and drop retired columns)."""
    conn.execute(INGEST_DDL)
    for table, column in RETIRED_COLUMNS:
        conn.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS {column}")


def ingest_day(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    ds: str,
    pseudonym_key: str,
    lookback_days: int = 7,
    progress: Callable[[str], None] | None = None,
) -> IngestStats:
    """Load one day of the landing zone into the warehouse, replacing that day.

    Args:
        conn: an open DuckDB connection to the warehouse.
        landing_dir: the landing zone root (holding `traces/` and `feedback/`).
        ds: the partition date, `YYYY-MM-DD`.
        pseudonym_key: the secret for the keyed hash of user ids.
        lookback_days: how many earlier days of traces a feedback event may join to.
        progress: called with a line of progress after each step (counts, seconds, rates).
    """
    started = time.perf_counter()
    # Row order within the day is not kept (every read orders what it needs): inserts then
    # need neither buffers to restore it nor to wait for each other.
    (ordered,) = conn.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0]
    conn.execute("SET preserve_insertion_order = false")
    try:
        # Bounded memory whatever the day's volume: DuckDB spills to disk past this.
        with memory_limit(conn, MEMORY_LIMIT):
            stats = _ingest(conn, landing_dir, ds, pseudonym_key, lookback_days, progress)
    finally:
        conn.execute(f"SET preserve_insertion_order = {bool(ordered)}")
    stats.seconds = time.perf_counter() - started
    return stats


def _ingest(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    ds: str,
    pseudonym_key: str,
    lookback_days: int,
    progress: Callable[[str], None] | None,
) -> IngestStats:
    stats = IngestStats(ds=ds)
    with _step(stats, "prepare", progress):
        ensure_schema(conn)
        _register_udfs(conn)
        files, paths = [], {}
        for source in landing.SOURCES:
            paths[source] = landing.list_files(landing_dir, source, ds)
            stats.files[source] = [str(p.relative_to(landing_dir)) for p in paths[source]]
            files += [_file_info(source, p, landing_dir, ds) for p in paths[source]]
        conn.execute("CREATE OR REPLACE TEMP TABLE pseudonyms (raw_id VARCHAR, pseudonym VARCHAR)")
    for source in landing.SOURCES:
        with _step(stats, f"check {source}", progress) as counted:
            stats.lines[source] = _check_files(conn, source, paths[source], landing_dir)
            _add_pseudonyms(conn, pseudonym_key, f"checked_{source}")
            counted.append(stats.lines[source])
    # The day is replaced whole or not at all.
    with transaction(conn):
        with _step(stats, "write quarantine", progress):
            _write_quarantine(conn, ds, pseudonym_key)
        with _step(stats, "write traces", progress):
            _write_traces(conn, ds)
        with _step(stats, "write feedback", progress):
            _write_feedback(conn, ds, lookback_days)
        with _step(stats, "audit files", progress):
            _write_files(conn, ds, files)
    with _step(stats, "count", progress):
        _collect_stats(conn, stats)
        for table in ("checked_traces", "checked_feedback", "pseudonyms", "trace_signals"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    return stats


@contextmanager
def _step(stats: IngestStats, name: str, progress: Callable[[str], None] | None):
    """Time a step into `stats.phases` and report it, with the lines it read if it says so."""
    counted: list[int] = []
    started = time.perf_counter()
    yield counted
    seconds = time.perf_counter() - started
    stats.phases[name] = round(seconds, 3)
    if progress is not None:
        rate = (
            f": {counted[0]:,} lines, {counted[0] / max(seconds, 1e-9):,.0f}/s" if counted else ""
        )
        progress(f"{stats.ds}: {name} took {seconds:.1f}s{rate}")


def _check_files(
    conn: duckdb.DuckDBPyConnection, source: str, paths: list[Path], root: Path
) -> int:
    """Parse, validate and redact the files into `checked_<source>`; return the lines read.

    One statement reads every file as a stream of Arrow batches, which a background thread
    reads ahead while DuckDB works on the batches before. Valid lines keep their typed,
    redacted fields; bad lines only their (truncated) text and the reason. DuckDB may spill the
    table to disk, so memory stays bounded whatever the day's volume.
    """
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    table = f"checked_{source}"
    columns = ", ".join(f"{name} {kind}" for name, kind in _checked_columns(source))
    conn.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({columns})")
    lines = 0

    def batches() -> Iterator[pa.RecordBatch]:
        nonlocal lines
        for block in blocks:
            lines += block.num_rows
            yield from block.to_batches(max_chunksize=CHUNK_ROWS)

    blocks = _read_ahead(_line_blocks(paths, root, source))
    stream = batches()
    conn.register("raw_lines", pa.RecordBatchReader.from_batches(landing.LINES_SCHEMA, stream))
    try:
        conn.execute(f"INSERT INTO {table} BY NAME {_fast_sql(source, fields)}")
    finally:
        conn.unregister("raw_lines")
        stream.close()
        blocks.close()  # stops the reading thread if DuckDB stopped early
    _check_pending(conn, source, table)
    return lines


def _check_pending(conn: duckdb.DuckDBPyConnection, source: str, table: str) -> None:
    """Run the full check on the lines of `table` the fast path did not accept, in place."""
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    (pending,) = conn.execute(f"SELECT count(*) FROM {table} WHERE pending").fetchall()[0]
    if not pending:
        return
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE pending_lines AS "
        f"SELECT file, line, text, error FROM {table} WHERE pending"
    )
    conn.execute(f"DELETE FROM {table} WHERE pending")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {_parse_sql(fields, 'pending_lines')}")
    conn.execute(f"INSERT INTO {table} BY NAME {_typed_sql(source, _check_sql(source, fields))}")
    conn.execute("DROP TABLE parsed")
    conn.execute("DROP TABLE pending_lines")


def _line_blocks(paths: list[Path], root: Path, source: str) -> Iterator[pa.Table]:
    """The files' lines, block by block (see `landing.iter_line_batches`)."""
    for path in paths:
        yield from landing.iter_line_batches(path, root, source=source)


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _read_ahead(items: Iterator[pa.Table], depth: int = READ_AHEAD) -> Iterator[pa.Table]:
    """Yield the items of `items`, produced on a background thread `depth` items ahead.

    Reading and decompressing (Arrow, GIL released) then overlaps DuckDB's work on the batches
    before (GIL released too), and memory holds at most `depth` blocks waiting.
    """
    box: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(_Raised(exc))

    worker = threading.Thread(target=produce, name="ingest-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()


def _file_info(source: str, path: Path, root: Path, ds: str) -> dict:
    st = path.stat()
    modified = datetime.fromtimestamp(st.st_mtime, tz=UTC).replace(tzinfo=None)
    day_start = datetime.fromisoformat(ds)
    return {
        "source": source,
        "file": str(path.relative_to(root)),
        "bytes": st.st_size,
        "modified_at": modified,
        "late": modified > day_start + LATE_AFTER,
    }


def _write_files(conn: duckdb.DuckDBPyConnection, ds: str, files: list[dict]) -> None:
    """One audit row per input file: size, arrival time, lines, quarantined, late or not."""
    conn.execute("DELETE FROM ingest_files WHERE ds = ?", [ds])
    if not files:
        return
    conn.register("file_rows", pa.Table.from_pylist(files))
    conn.execute(
        """
        INSERT INTO ingest_files
        SELECT ?::DATE, f.source, f.file, f.bytes, f.modified_at,
               coalesce(c.lines, 0), coalesce(c.bad, 0), f.late
        FROM file_rows AS f
        LEFT JOIN (
            SELECT 'traces' AS source, file, count(*) AS lines,
                   count(*) FILTER (WHERE error IS NOT NULL) AS bad
            FROM checked_traces GROUP BY file
            UNION ALL
            SELECT 'feedback', file, count(*), count(*) FILTER (WHERE error IS NOT NULL)
            FROM checked_feedback GROUP BY file
        ) c USING (source, file)
        ORDER BY f.source, f.file
        """,
        [ds],
    )
    conn.unregister("file_rows")


def _register_udfs(conn: duckdb.DuckDBPyConnection) -> None:
    """Define `redact(x)` and `redact_json(x)` on the connection.

    Regexes and checksums run in SQL; Python only replaces valid IBANs and cards and takes JSON
    text that holds an escape or a hit (string by string, see `privacy.redact_json`).
    """
    for name, function in (
        ("redact_checked", privacy.redact_checked),
        ("redact_json_text", privacy.redact_json),
    ):
        try:
            conn.create_function(name, function, ["VARCHAR"], "VARCHAR")
        except duckdb.Error:
            pass  # already registered on this connection
    for sql in privacy.sql_redact_macros("redact_checked", "redact_json_text"):
        conn.execute(sql)


def redact_sql(expr: str) -> str:
    """Full redaction of a VARCHAR expression (needs `_register_udfs` on the connection)."""
    return f"redact({expr})"


def redact_json_sql(expr: str) -> str:
    """Full redaction of a JSON text expression, string by string (see `redact_sql`)."""
    return f"redact_json({expr})"


def _checked_columns(source: str) -> list[tuple[str, str]]:
    """Columns of `checked_<source>`: the line, its error, then the typed, redacted fields.

    `request_key` (traces) is the raw last user message where redaction changed it (else NULL):
    sessions count re-asked questions on the text as the user typed it, before redaction could
    make two questions look alike.
    """
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    columns = [
        ("file", "VARCHAR"),
        ("line", "BIGINT"),
        ("error", "VARCHAR"),
        ("text", "VARCHAR"),
        ("pending", "BOOLEAN"),
    ]
    for name, (types, _) in fields.items():
        if name == "timestamp":
            kind = "TIMESTAMP"
        elif types[0] == "BIGINT":
            kind = "BIGINT" if name in INTEGER_FIELDS else "DOUBLE"
        else:
            kind = "VARCHAR"
        columns.append((name, kind))
    columns.append(("user_role", "VARCHAR"))
    if source == "traces":
        columns += [("request_key", "VARCHAR"), ("request", "VARCHAR")]
    return columns


def parse_spec(fields: dict[str, tuple[tuple[str, ...], bool]]) -> dict[str, str]:
    """The DuckDB type each field is parsed into: objects and lists stay JSON text."""
    return {
        name: {"VARCHAR": "VARCHAR", "BIGINT": "DOUBLE"}.get(types[0], "JSON")
        for name, (types, _) in fields.items()
    }


def _fast_sql(source: str, fields: dict[str, tuple[tuple[str, ...], bool]]) -> str:
    """One pass over `raw_lines`: accept the lines that pass every rule, typed and redacted.

    Each line is parsed into typed values (`v`) and, in one more scan, the JSON type of every
    field (`t`). A line passes when every rule of `_check_sql` holds for it; its fields are then
    stored, redacted. Any other line is stored whole with `pending` set, for `_check_pending`.
    (`json_valid` costs a scan, but `TRY(json_type(...))` instead re-runs a whole vector row by
    row when one line in it is not JSON: slower past about one bad line in 7,000.)

    Messages take this path only in the contract's shape, a list of `{"role", "content"}`
    strings. Text without an escape holds each string verbatim, so its length proves the shape
    and it is redacted whole; text with one must re-encode to itself, and each message is then
    redacted decoded and the list re-encoded. Numbers must be finite here (the full check
    decides the odd ones), so both paths store the same values.
    """
    names = list(fields)
    spec = parse_spec(fields)
    rules = ["valid"]
    for i, (name, (types, required)) in enumerate(fields.items(), start=1):
        allowed = ", ".join(f"'{t}'" for t in types)
        if required:
            rules.append(f"t[{i}] IN ({allowed})")
        else:
            rules.append(f"(t[{i}] IS NULL OR t[{i}] IN ({allowed}, 'NULL'))")
        if types[0] == "BIGINT":
            rules.append(f"(v.{name} IS NULL OR isfinite(v.{name}))")
    rules.append("ts IS NOT NULL")
    messages = ""
    if source == "traces":
        messages = ', json_transform(v.messages, \'[{"role":"VARCHAR","content":"VARCHAR"}]\') AS m'
        rules += [
            "len(m) > 0",
            "list_bool_and(list_transform(m, lambda x: x.role IS NOT NULL "
            "AND x.content IS NOT NULL))",
            # The shape: with an escape, re-encoding must give the text back; without one, the
            # minified text's length must be exactly that of {"role","content"} objects.
            "CASE WHEN contains(v.messages::VARCHAR, '\\') "
            "THEN to_json(m)::VARCHAR = v.messages::VARCHAR "
            "ELSE strlen(v.messages::VARCHAR) = 25 * len(m) + 1 "
            "+ list_sum(list_transform(m, lambda x: strlen(x.role) + strlen(x.content))) END",
            # The full check measures each message as JSON text (quotes and escapes included).
            f"(strlen(v.messages::VARCHAR) <= {MAX_TEXT_CHARS} OR list_max(list_transform(m, "
            f"lambda x: length(to_json(x.content)::VARCHAR))) <= {MAX_TEXT_CHARS})",
        ]
        texts = TRACE_TEXT_FIELDS
    else:
        kinds = ", ".join(f"'{k}'" for k in FEEDBACK_KINDS)
        reasons = ", ".join(f"'{r}'" for r in FEEDBACK_REASONS)
        rules += [
            f"v.kind IN ({kinds})",
            f"(v.reason IS NULL OR v.reason IN ({reasons}))",
            "(v.kind <> 'rating' OR v.score BETWEEN 1 AND 5)",
            "(v.kind <> 'correction' OR length(trim(coalesce(v.correction, ''))) > 0)",
        ]
        texts = FEEDBACK_TEXT_FIELDS
    rules += [
        f"(v.{name} IS NULL OR strlen(v.{name}) <= {MAX_TEXT_CHARS} "
        f"OR length(v.{name}) <= {MAX_TEXT_CHARS})"
        for name in texts
    ]

    values = {name: f"v.{name}" for name in names}
    values["timestamp"] = "timezone('UTC', ts)"
    for name in INTEGER_FIELDS:
        if name in values:
            values[name] = f"TRY_CAST(v.{name} AS BIGINT)"
    values["user_role"] = "v.metadata->>'user_role'"
    values["metadata"] = redact_json_sql("v.metadata::VARCHAR")
    for name in REDACTED[source]:
        if name in fields and name not in JSON_FIELDS:
            values[name] = redact_sql(f"v.{name}")
    if source == "traces":
        # The session key is the raw request, kept only where redaction changed it.
        values["request"] = "request"
        values["request_key"] = (
            "CASE WHEN request IS DISTINCT FROM raw_request THEN raw_request END"
        )
        # Without an escape, the text holds every string verbatim between quotes, which no
        # pattern can match across: redacting it whole is redacting each message. Otherwise
        # each message is redacted decoded, and the list re-encoded.
        values["messages"] = (
            "CASE WHEN NOT contains(v.messages::VARCHAR, '\\') THEN redact(v.messages::VARCHAR) "
            "WHEN list_bool_or(list_transform(m, lambda x: may_hold_pii(x.role) "
            "OR may_hold_pii(x.content))) THEN to_json(list_transform(m, lambda x: "
            "{'role': redact(x.role), 'content': redact(x.content)}))::VARCHAR "
            "ELSE v.messages::VARCHAR END"
        )
    paths = ", ".join(f"'$.{name}'" for name in names)
    spec_sql = "{" + ",".join(f'"{k}":"{t}"' for k, t in spec.items()) + "}"
    outputs = ", ".join(f"CASE WHEN ok THEN {expr} END AS {name}" for name, expr in values.items())
    inner = f"""
        SELECT *, coalesce({" AND ".join(rules)}, false) AS ok FROM (
            SELECT *, TRY_CAST(v.timestamp AS TIMESTAMPTZ) AS ts{messages} FROM (
                SELECT file, line, text, read_error, valid,
                       CASE WHEN valid THEN json_type(text, [{paths}]) END AS t,
                       CASE WHEN valid THEN json_transform(text, '{spec_sql}') END AS v
                FROM (
                    SELECT file, line, text, error AS read_error,
                           error IS NULL AND json_valid(text) AS valid
                    FROM raw_lines
                )
            )
        )
    """
    if source == "traces":
        inner = f"""
            SELECT *, {redact_sql("raw_request")} AS request FROM (
                SELECT *, CASE WHEN ok THEN list_filter(m, lambda x: x.role = 'user')[-1].content
                          END AS raw_request
                FROM ({inner})
            )
        """
    return f"""
        SELECT file, line, read_error AS error, CASE WHEN NOT ok THEN text END AS text,
               NOT ok AS pending, {outputs}
        FROM ({inner})
    """


def _typed_sql(source: str, checked: str) -> str:
    """The full check's output (fields as text) typed and redacted like the fast path's."""
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    values = {}
    for name, (types, _) in fields.items():
        if types[0] == "BIGINT":
            number = f"TRY_CAST({name} AS DOUBLE)"
            values[name] = f"TRY_CAST({number} AS BIGINT)" if name in INTEGER_FIELDS else number
        else:
            values[name] = name
    values["timestamp"] = "timezone('UTC', CAST(timestamp AS TIMESTAMPTZ))"
    values["user_role"] = "user_role"
    if source == "traces":
        values["request"] = "request"
    for name in REDACTED[source]:
        redact = redact_json_sql if name in JSON_FIELDS else redact_sql
        values[name] = redact(values[name])
    if source == "traces":
        values["request_key"] = (
            f"CASE WHEN {values['request']} IS DISTINCT FROM request THEN request END"
        )
    columns = ", ".join(f"{expr} AS {name}" for name, expr in values.items())
    return f"SELECT file, line, error, text, false AS pending, {columns} FROM ({checked})"


def _parse_sql(fields: dict[str, tuple[tuple[str, ...], bool]], lines: str) -> str:
    """Parse each line once into a struct of its fields, each kept as a (small) JSON value."""
    spec = "{" + ",".join(f'"{name}":"JSON"' for name in fields) + "}"
    messages = ""
    if "messages" in fields:
        messages = ', TRY(json_transform(s.messages, \'[{"role":"JSON","content":"JSON"}]\')) AS m'
    return f"""
        SELECT *{messages} FROM (
            SELECT file, line, text, error AS read_error,
                   CASE WHEN error IS NULL THEN TRY(json_transform(text, '{spec}')) END AS s
            FROM {lines} WHERE error IS NOT NULL OR trim(text) <> ''
        )
    """


def _check_sql(source: str, fields: dict[str, tuple[tuple[str, ...], bool]]) -> str:
    """From `parsed` lines: `error` (the first problem, in words, or NULL) and the fields.

    Valid lines keep their fields as text columns named like the record's fields (objects and
    lists as JSON text); bad lines keep only their (truncated) raw text for the quarantine.
    """
    checks = [
        "WHEN read_error IS NOT NULL THEN read_error",
        # `s` is also NULL for valid JSON that is `null`, so validity is asked first.
        "WHEN NOT json_valid(text) THEN 'not valid JSON'",
        "WHEN NOT regexp_matches(text, '^\\s*\\{') "
        f"THEN 'line is ' || {_json_kind('text')} || ', not a JSON object'",
        "WHEN s IS NULL THEN 'not valid JSON'",
    ]
    for name, (_, required) in fields.items():
        if required:
            checks.append(
                f"WHEN coalesce(json_type(s.{name}), 'NULL') = 'NULL' "
                f"THEN 'missing required field \"{name}\"'"
            )
    for name, (types, _) in fields.items():
        allowed = ", ".join(f"'{t}'" for t in (*types, "NULL"))
        kind = {
            "VARCHAR": "a string",
            "BIGINT": "a number",
            "OBJECT": "an object",
            "ARRAY": "a list",
        }[types[0]]
        checks.append(
            f"WHEN json_type(s.{name}) NOT IN ({allowed}) "
            f"THEN 'field \"{name}\" must be {kind}, got ' || {_json_kind(f's.{name}')}"
        )
    checks.append(
        "WHEN try_cast(s.timestamp->>'$' AS TIMESTAMPTZ) IS NULL "
        "THEN 'unparseable timestamp \"' || left(s.timestamp->>'$', 60) || '\"'"
    )
    if source == "traces":
        checks.append(
            "WHEN NOT coalesce(list_bool_and(list_transform(m, lambda x: json_type(x.role) = "
            "'VARCHAR' AND json_type(x.content) = 'VARCHAR')), false) "
            "THEN 'messages must be a non-empty list of {role, content} strings'"
        )
        checks.append(
            f"WHEN list_max(list_transform(m, lambda x: length(x.content))) > {MAX_TEXT_CHARS} "
            f"THEN 'oversize text: a message is over {MAX_TEXT_CHARS:,} characters'"
        )
        texts = TRACE_TEXT_FIELDS
    else:
        kinds = ", ".join(f"'{k}'" for k in FEEDBACK_KINDS)
        reasons = ", ".join(f"'{r}'" for r in FEEDBACK_REASONS)
        checks.append(
            f"WHEN s.kind->>'$' NOT IN ({kinds}) "
            f"THEN 'unknown kind ' || left(s.kind->>'$', 60) || ' (expected one of "
            f"{', '.join(FEEDBACK_KINDS)})'"
        )
        checks.append(
            f"WHEN s.reason->>'$' NOT IN ({reasons}) "
            "THEN 'unknown reason ' || left(s.reason->>'$', 60)"
        )
        checks.append(
            "WHEN s.kind->>'$' = 'rating' AND NOT coalesce(TRY_CAST(s.score->>'$' AS DOUBLE) "
            "BETWEEN 1 AND 5, false) THEN 'a rating needs a score from 1 to 5, got ' "
            "|| coalesce(s.score->>'$', 'none')"
        )
        checks.append(
            "WHEN s.kind->>'$' = 'correction' "
            "AND length(trim(coalesce(s.correction->>'$', ''))) = 0 "
            "THEN 'a correction needs the corrected text in \"correction\"'"
        )
        texts = FEEDBACK_TEXT_FIELDS
    for name in texts:
        checks.append(
            f"WHEN length(s.{name}->>'$') > {MAX_TEXT_CHARS} "
            f"THEN 'oversize text: \"{name}\" has ' || length(s.{name}->>'$') "
            f"|| ' characters (max {MAX_TEXT_CHARS:,})'"
        )
    case = "CASE " + "\n ".join(checks) + " END"
    valid = "error IS NULL"
    columns = [f"CASE WHEN {valid} THEN s.{name}->>'$' END AS {name}" for name in fields]
    columns.append(f"CASE WHEN {valid} THEN s.metadata->>'user_role' END AS user_role")
    if source == "traces":
        columns.append(
            f"CASE WHEN {valid} THEN list_filter(m, lambda x: x.role->>'$' = 'user')[-1]"
            ".content->>'$' END AS request"
        )
    return f"""
        SELECT file, line, error, CASE WHEN error IS NOT NULL THEN left(text, {RAW_KEEP_CHARS})
               END AS text, {", ".join(columns)}
        FROM (SELECT *, {case} AS error FROM parsed)
    """


def _json_kind(expr: str) -> str:
    """SQL naming the JSON type of expr in words ('a string', 'a number', ...)."""
    return (
        f"CASE json_type({expr}) WHEN 'VARCHAR' THEN 'a string' WHEN 'ARRAY' THEN 'a list' "
        f"WHEN 'OBJECT' THEN 'an object' WHEN 'BOOLEAN' THEN 'a boolean' "
        f"WHEN 'NULL' THEN 'null' ELSE 'a number' END"
    )


def _add_pseudonyms(conn: duckdb.DuckDBPyConnection, key: str, table: str) -> None:
    """Add the pseudonyms of `table`'s valid user ids not seen yet (HMAC, in Python)."""
    users = conn.execute(
        f"SELECT DISTINCT t.user_id FROM {table} t "
        "ANTI JOIN pseudonyms p ON p.raw_id = t.user_id "
        "WHERE t.error IS NULL AND t.user_id IS NOT NULL"
    ).fetchall()
    if not users:
        return
    raw = [u for (u,) in users]
    new = pa.table(
        {
            "raw_id": pa.array(raw, pa.string()),
            "pseudonym": pa.array([privacy.pseudonymize(u, key) for u in raw], pa.string()),
        }
    )
    conn.register("new_pseudonyms", new)
    try:
        conn.execute("INSERT INTO pseudonyms SELECT * FROM new_pseudonyms")
    finally:
        conn.unregister("new_pseudonyms")


def _write_quarantine(conn: duckdb.DuckDBPyConnection, ds: str, key: str) -> None:
    """Bad lines, and valid ones re-delivering a known id with other content, with a reason.

    Raw text keeps no raw user id (pseudonymized, as in the tables) and no PII (redacted).
    """
    conn.create_function(
        "pseudonymize_raw_ids",
        lambda text: privacy.pseudonymize_raw_ids(text, key),
        ["VARCHAR"],
        "VARCHAR",
    )
    try:
        conn.execute("DELETE FROM quarantine WHERE ds = ?", [ds])
        raw = f"pseudonymize_raw_ids({redact_json_sql('text')})"
        for source, name in (("traces", "traces"), ("feedback", "feedback")):
            conn.execute(
                f"INSERT INTO quarantine SELECT '{name}', ?::DATE, file, line, error, {raw} "
                f"FROM checked_{source} WHERE error IS NOT NULL ORDER BY file, line",
                [ds],
            )
            _quarantine_conflicts(conn, ds, source)
    finally:
        conn.remove_function("pseudonymize_raw_ids")


# What makes a re-delivered id "the same": the fields stored as delivered (derived columns such
# as `request`, sessions or pseudonyms are left out, so equal lines always compare equal).
_CONTENT = {
    "traces": ("trace_id", "traces", ("timestamp", "model_version", "prompt_version", "messages",
               "response", "latency_ms", "input_tokens", "output_tokens", "metadata")),
    "feedback": ("feedback_id", "feedback_events", ("trace_id", "timestamp", "kind", "reason",
                 "score", "comment", "correction", "metadata")),
}  # fmt: skip


def _quarantine_conflicts(conn: duckdb.DuckDBPyConnection, ds: str, source: str) -> None:
    """Record each valid line whose id was delivered before with other content.

    The first delivery still wins (later lines of a known id are dropped, as before); a later
    line that differs is kept here instead of vanishing, with where the first one came from.
    """
    key, table, fields = _CONTENT[source]
    content = ", ".join(fields)
    raw = (
        "json_object("
        + ", ".join(f"'{f}', c.{f}" for f in (key, "user_id", *fields) if f != "user_id")
        + ", 'user_id', p.pseudonym)"
    )
    conn.execute(
        f"""
        INSERT INTO quarantine
        WITH today AS (
            SELECT rowid AS rid, file, line, {key} AS id, hash({content}) AS h
            FROM checked_{source} WHERE error IS NULL
        ),
        repeated AS (
            SELECT id, arg_min(rid, (file, line)) AS rid FROM today
            GROUP BY id HAVING count(*) > 1
        ),
        firsts AS (SELECT t.* FROM today t SEMI JOIN repeated r ON r.rid = t.rid),
        stored AS (
            SELECT {key} AS id, min(ds) AS other_ds, any_value(hash({content})) AS h
            FROM {table} o SEMI JOIN today t ON t.id = o.{key}
            WHERE o.ds <> ?::DATE GROUP BY 1
        ),
        conflicts AS (
            SELECT t.rid, 'first delivered in ' || f.file || ' line ' || f.line AS seen
            FROM today t JOIN firsts f USING (id) WHERE t.h <> f.h
            UNION ALL
            SELECT t.rid, 'loaded on ' || s.other_ds AS seen
            FROM today t JOIN stored s USING (id) WHERE t.h <> s.h
        ),
        one AS (SELECT rid, min(seen) AS seen FROM conflicts GROUP BY rid)
        SELECT '{source}', ?::DATE, c.file, c.line,
               'id re-delivered with different content ({key} ' || c.{key} || ', '
                   || x.seen || '): not loaded',
               to_json({raw})::VARCHAR
        FROM one x
        JOIN checked_{source} c ON c.rowid = x.rid
        LEFT JOIN pseudonyms p ON p.raw_id = c.user_id
        ORDER BY c.file, c.line
        """,
        [ds, ds],
    )


def _write_traces(conn: duckdb.DuckDBPyConnection, ds: str) -> None:
    conn.execute("DELETE FROM traces WHERE ds = ?", [ds])
    # Today's positive and regenerate signals decide `abandoned` and `regenerations`.
    positive = positive_sql("kind", "score")
    conn.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE trace_signals AS
        SELECT trace_id,
               bool_or({positive}) AS positive,
               count(*) FILTER (WHERE kind = 'regenerate') AS regenerate_events
        FROM checked_feedback WHERE error IS NULL
        GROUP BY 1
        """
    )
    # Dedup, sessions and signals are worked out on narrow rows (row id and keys); the wide,
    # already redacted texts are then read once, straight into the table.
    conn.execute(
        """
        INSERT INTO traces
        WITH firsts AS (  -- a re-delivered trace: its first line wins
            SELECT trace_id, arg_min(rowid, (file, line)) AS rid
            FROM checked_traces WHERE error IS NULL GROUP BY trace_id
        ),
        redelivered AS (  -- only today's ids are looked up among other days'
            SELECT o.trace_id FROM traces o SEMI JOIN firsts f USING (trace_id)
            WHERE o.ds <> ?::DATE
        ),
        fresh AS (
            SELECT c.rowid AS rid, c.trace_id, c.session_id, c.timestamp,
                   hash(coalesce(c.request_key, c.request)) AS session_key
            FROM checked_traces c
            SEMI JOIN firsts f ON f.rid = c.rowid
            ANTI JOIN redelivered USING (trace_id)
        ),
        turns AS (
            SELECT rid, trace_id, session_id,
                   row_number() OVER w - 1 AS turn_index,
                   count(*) OVER (PARTITION BY session_id) AS turns,
                   count(*) OVER (PARTITION BY session_id, session_key
                                  ORDER BY timestamp, trace_id
                                  ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS reasks
            FROM fresh
            WINDOW w AS (PARTITION BY session_id ORDER BY timestamp, trace_id)
        ),
        derived AS (
            SELECT t.rid,
                   CASE WHEN t.session_id IS NULL THEN 0 ELSE t.turn_index END AS turn_index,
                   t.session_id IS NOT NULL AND t.turn_index = t.turns - 1
                       AND NOT coalesce(s.positive, false) AS abandoned,
                   CAST(coalesce(s.regenerate_events, 0)
                        + CASE WHEN t.session_id IS NULL THEN 0 ELSE t.reasks END AS INTEGER)
                       AS regenerations
            FROM turns t LEFT JOIN trace_signals s USING (trace_id)
        )
        SELECT ?::DATE AS ds, c.trace_id, c.session_id, p.pseudonym, c.timestamp,
               c.model_version, c.prompt_version, c.messages, c.request, c.response,
               c.latency_ms, c.input_tokens, c.output_tokens, c.user_role, c.metadata,
               d.turn_index, d.abandoned, d.regenerations, c.file
        FROM checked_traces c
        JOIN derived d ON d.rid = c.rowid
        LEFT JOIN pseudonyms p ON p.raw_id = c.user_id
        """,
        [ds, ds],
    )


def _write_feedback(conn: duckdb.DuckDBPyConnection, ds: str, lookback_days: int) -> None:
    conn.execute("DELETE FROM feedback_events WHERE ds = ?", [ds])
    first = (date.fromisoformat(ds) - timedelta(days=lookback_days)).isoformat()
    conn.execute(
        f"""
        INSERT INTO feedback_events
        WITH firsts AS (  -- a re-delivered event: its first line wins
            SELECT feedback_id, arg_min(rowid, (file, line)) AS rid
            FROM checked_feedback WHERE error IS NULL GROUP BY feedback_id
        ),
        redelivered AS (  -- only today's ids are looked up among other days'
            SELECT o.feedback_id FROM feedback_events o
            SEMI JOIN firsts f USING (feedback_id)
            WHERE o.ds <> ?::DATE
        ),
        fresh AS (
            SELECT rid FROM firsts ANTI JOIN redelivered USING (feedback_id)
        ),
        known AS (  -- a trace id lives in one partition only (ingest drops re-deliveries)
            SELECT ds, trace_id, session_id, user_id, user_role, model_version, prompt_version,
                   request FROM traces WHERE ds BETWEEN ?::DATE AND ?::DATE
        )
        SELECT ?::DATE AS ds, f.feedback_id, f.trace_id, coalesce(f.session_id, t.session_id),
               coalesce(p.pseudonym, t.user_id), f.timestamp, f.kind, f.reason, f.score,
               f.comment, f.correction, coalesce(f.user_role, t.user_role), f.metadata,
               t.model_version, t.prompt_version, t.request,
               t.trace_id IS NOT NULL AS trace_found, t.ds AS trace_ds,
               {negative_sql("f.kind", "f.score", "f.reason")} AS is_negative,
               f.file
        FROM checked_feedback f
        SEMI JOIN fresh k ON k.rid = f.rowid
        LEFT JOIN pseudonyms p ON p.raw_id = f.user_id
        LEFT JOIN known t ON t.trace_id = f.trace_id
        """,
        [ds, first, ds, ds],
    )


def _collect_stats(conn: duckdb.DuckDBPyConnection, stats: IngestStats) -> None:
    ds = stats.ds
    q = conn.execute(
        "SELECT source, count(*) FROM quarantine WHERE ds = ? GROUP BY 1", [ds]
    ).fetchall()
    stats.quarantined = {"traces": 0, "feedback": 0} | dict(q)
    reasons = conn.execute(
        f"SELECT {quarantine_category_sql()}, count(*) FROM quarantine WHERE ds = ? "
        "GROUP BY 1 ORDER BY 2 DESC",
        [ds],
    ).fetchall()
    stats.quarantine_reasons = dict(reasons)
    stats.loaded["traces"] = conn.execute(
        "SELECT count(*) FROM traces WHERE ds = ?", [ds]
    ).fetchall()[0][0]
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT trace_found), "
        "count(*) FILTER (WHERE trace_ds < ds) FROM feedback_events WHERE ds = ?",
        [ds],
    ).fetchall()[0]
    stats.loaded["feedback"], stats.unknown_trace, stats.late_feedback = row
    stats.late_files = conn.execute(
        "SELECT count(*) FROM ingest_files WHERE ds = ? AND late", [ds]
    ).fetchall()[0][0]
    stats.abandoned = conn.execute(
        "SELECT count(*) FROM traces WHERE ds = ? AND abandoned", [ds]
    ).fetchall()[0][0]
    for source in landing.SOURCES:
        valid = stats.lines[source] - stats.quarantined[source]
        stats.duplicates[source] = valid - stats.loaded[source]
