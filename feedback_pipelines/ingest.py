"""Landing zone -> `traces`, `feedback_events` and `quarantine` for one day, in bulk inside DuckDB.

Everything after reading the bytes is set-based SQL (JSON parsing, validation with a reason per
line, dedup, PII redaction, joins), which is what makes a million events a matter of seconds.
A day is written by replacing that day in one transaction, so a rerun gives identical rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pyarrow as pa

from feedback_pipelines import landing, privacy
from feedback_pipelines.records import (
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

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS traces (
    ds DATE, trace_id VARCHAR, session_id VARCHAR, user_id VARCHAR, timestamp TIMESTAMP,
    model_version VARCHAR, prompt_version VARCHAR, messages VARCHAR, request VARCHAR,
    response VARCHAR, latency_ms DOUBLE, input_tokens BIGINT, output_tokens BIGINT,
    user_role VARCHAR, metadata VARCHAR, turn_index INTEGER, abandoned BOOLEAN,
    regenerations INTEGER, file VARCHAR
);
CREATE TABLE IF NOT EXISTS feedback_events (
    ds DATE, feedback_id VARCHAR, trace_id VARCHAR, session_id VARCHAR, user_id VARCHAR,
    timestamp TIMESTAMP, kind VARCHAR, reason VARCHAR, score DOUBLE, comment VARCHAR,
    correction VARCHAR, user_role VARCHAR, metadata VARCHAR, model_version VARCHAR,
    prompt_version VARCHAR, request VARCHAR, response VARCHAR, messages VARCHAR,
    trace_found BOOLEAN, trace_ds DATE, is_negative BOOLEAN, file VARCHAR
);
CREATE TABLE IF NOT EXISTS quarantine (
    source VARCHAR, ds DATE, file VARCHAR, line BIGINT, error VARCHAR, raw VARCHAR
);
CREATE TABLE IF NOT EXISTS ingest_files (
    ds DATE, source VARCHAR, file VARCHAR, bytes BIGINT, modified_at TIMESTAMP, lines BIGINT,
    quarantined BIGINT, late BOOLEAN
);
"""
MEMORY_LIMIT = "1GB"
# A file written after this much of the next day has passed arrived late (after the 02:00 run).
LATE_AFTER = timedelta(hours=26)


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

    @property
    def total_lines(self) -> int:
        """All input lines of the day, both sources."""
        return sum(self.lines.values())

    @property
    def total_quarantined(self) -> int:
        """All quarantined lines of the day, both sources."""
        return sum(self.quarantined.values())


def ensure_schema(conn: duckdb.DuckDBPyConnection) -> None:
    """Create the ingest tables if they do not exist yet."""
    conn.execute(SCHEMA_SQL)


def ingest_day(
    conn: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    ds: str,
    pseudonym_key: str,
    lookback_days: int = 7,
) -> IngestStats:
    """Load one day of the landing zone into the warehouse, replacing that day.

    Args:
        conn: an open DuckDB connection to the warehouse.
        landing_dir: the landing zone root (holding `traces/` and `feedback/`).
        ds: the partition date, `YYYY-MM-DD`.
        pseudonym_key: the secret for the keyed hash of user ids.
        lookback_days: how many earlier days of traces a feedback event may join to.
    """
    started = time.perf_counter()
    stats = IngestStats(ds=ds)
    # Bounded memory whatever the day's volume: DuckDB spills to disk past this.
    conn.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    ensure_schema(conn)
    _register_udfs(conn)
    files = []
    for source in landing.SOURCES:
        paths = landing.list_files(landing_dir, source, ds)
        stats.files[source] = [str(p.relative_to(landing_dir)) for p in paths]
        files += [_file_info(source, p, landing_dir, ds) for p in paths]
        stats.lines[source] = _check_files(conn, source, paths, landing_dir)
    _pseudonyms(conn, pseudonym_key)
    conn.execute("BEGIN TRANSACTION")
    try:
        _write_quarantine(conn, ds)
        _write_traces(conn, ds)
        _write_feedback(conn, ds, lookback_days)
        _write_files(conn, ds, files)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    _collect_stats(conn, stats)
    for source in landing.SOURCES:
        conn.execute(f"DROP TABLE IF EXISTS checked_{source}")
    stats.seconds = time.perf_counter() - started
    return stats


def _check_files(
    conn: duckdb.DuckDBPyConnection, source: str, paths: list[Path], root: Path
) -> int:
    """Parse and validate the files batch by batch into `checked_<source>`; return the lines.

    Only the parsed JSON of valid lines and the (truncated) text of bad ones are kept, and
    DuckDB may spill them to disk, so memory stays bounded whatever the day's volume.
    """
    fields = TRACE_FIELDS if source == "traces" else FEEDBACK_FIELDS
    parse, check = _parse_sql(fields), _check_sql(source, fields)
    conn.register("raw_lines", landing.LINES_SCHEMA.empty_table())
    conn.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {parse}")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE checked_{source} AS {check}")
    n = 0
    for path in paths:
        for batch in landing.iter_line_batches(path, root):
            n += batch.num_rows
            conn.register("raw_lines", batch)
            conn.execute(f"CREATE OR REPLACE TEMP TABLE parsed AS {parse}")
            conn.execute(f"INSERT INTO checked_{source} {check}")
    conn.unregister("raw_lines")
    conn.execute("DROP TABLE IF EXISTS parsed")
    return n


def _file_info(source: str, path: Path, root: Path, ds: str) -> dict:
    st = path.stat()
    modified = datetime.fromtimestamp(st.st_mtime, tz=timezone.utc).replace(tzinfo=None)
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
    """Define `redact(x)` on the connection: regexes in SQL, then Luhn-checked cards in Python."""
    try:
        conn.create_function("redact_cards", privacy.redact_cards, ["VARCHAR"], "VARCHAR")
    except duckdb.Error:
        pass  # already registered on this connection
    for sql in privacy.sql_redact_macros("redact_cards"):
        conn.execute(sql)


def redact_sql(expr: str) -> str:
    """Full redaction of a VARCHAR expression (needs `_register_udfs` on the connection)."""
    return f"redact({expr})"


def _parse_sql(fields: dict[str, tuple[tuple[str, ...], bool]]) -> str:
    """Parse each line once into a struct of its fields, each kept as a (small) JSON value."""
    spec = "{" + ",".join(f'"{name}":"JSON"' for name in fields) + "}"
    messages = ""
    if "messages" in fields:
        messages = ', TRY(json_transform(s.messages, \'[{"role":"JSON","content":"JSON"}]\')) AS m'
    return f"""
        SELECT *{messages} FROM (
            SELECT file, line, text, error AS read_error,
                   CASE WHEN error IS NULL THEN TRY(json_transform(text, '{spec}')) END AS s
            FROM raw_lines WHERE error IS NOT NULL OR trim(text) <> ''
        )
    """


def _check_sql(source: str, fields: dict[str, tuple[tuple[str, ...], bool]]) -> str:
    """From `parsed` lines: `error` (the first problem, in words, or NULL) and the fields.

    Valid lines keep their fields as text columns named like the record's fields (objects and
    lists as JSON text); bad lines keep only their (truncated) raw text for the quarantine.
    """
    checks = [
        "WHEN read_error IS NOT NULL THEN read_error",
        "WHEN s IS NULL THEN 'not valid JSON'",
        "WHEN NOT regexp_matches(text, '^\\s*\\{') "
        f"THEN 'line is ' || {_json_kind('text')} || ', not a JSON object'",
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


def _pseudonyms(conn: duckdb.DuckDBPyConnection, key: str) -> None:
    users = conn.execute(
        "SELECT DISTINCT u FROM (SELECT user_id AS u FROM checked_traces WHERE error IS NULL "
        "UNION ALL SELECT user_id FROM checked_feedback WHERE error IS NULL) "
        "WHERE u IS NOT NULL"
    ).fetchall()
    raw = [u for (u,) in users]
    table = pa.table(
        {
            "raw_id": pa.array(raw, pa.string()),
            "pseudonym": pa.array([privacy.pseudonymize(u, key) for u in raw], pa.string()),
        }
    )
    conn.register("pseudonyms_arrow", table)
    conn.execute("CREATE OR REPLACE TEMP TABLE pseudonyms AS SELECT * FROM pseudonyms_arrow")
    conn.unregister("pseudonyms_arrow")


def _write_quarantine(conn: duckdb.DuckDBPyConnection, ds: str) -> None:
    conn.execute("DELETE FROM quarantine WHERE ds = ?", [ds])
    for source, name in (("traces", "traces"), ("feedback", "feedback")):
        raw = redact_sql("text")
        conn.execute(
            f"INSERT INTO quarantine SELECT '{name}', ?::DATE, file, line, error, {raw} "
            f"FROM checked_{source} WHERE error IS NOT NULL ORDER BY file, line",
            [ds],
        )


def _write_traces(conn: duckdb.DuckDBPyConnection, ds: str) -> None:
    conn.execute("DELETE FROM traces WHERE ds = ?", [ds])
    # Today's positive and regenerate signals decide `abandoned` and `regenerations`.
    positive = positive_sql("kind", "TRY_CAST(score AS DOUBLE)")
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
    conn.execute(
        f"""
        INSERT INTO traces
        WITH valid AS (
            SELECT file, line, trace_id, session_id, user_id AS raw_user,
                   timezone('UTC', CAST(timestamp AS TIMESTAMPTZ)) AS timestamp,
                   model_version, prompt_version, messages, request, response,
                   TRY_CAST(latency_ms AS DOUBLE) AS latency_ms,
                   TRY_CAST(TRY_CAST(input_tokens AS DOUBLE) AS BIGINT) AS input_tokens,
                   TRY_CAST(TRY_CAST(output_tokens AS DOUBLE) AS BIGINT) AS output_tokens,
                   user_role, metadata
            FROM checked_traces WHERE error IS NULL
            QUALIFY row_number() OVER (PARTITION BY trace_id ORDER BY file, line) = 1
        ),
        new_traces AS (
            SELECT v.* EXCLUDE (raw_user), p.pseudonym AS user_id
            FROM valid v
            LEFT JOIN pseudonyms p ON p.raw_id = v.raw_user
            ANTI JOIN (SELECT trace_id FROM traces WHERE ds <> ?::DATE) old USING (trace_id)
        ),
        turns AS (
            SELECT *,
                   row_number() OVER w - 1 AS turn_index,
                   count(*) OVER (PARTITION BY session_id) AS turns,
                   count(*) OVER (PARTITION BY session_id, request ORDER BY timestamp, trace_id
                                  ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING) AS reasks
            FROM new_traces
            WINDOW w AS (PARTITION BY session_id ORDER BY timestamp, trace_id)
        )
        SELECT ?::DATE AS ds, t.trace_id, t.session_id, t.user_id, t.timestamp, t.model_version,
               t.prompt_version, {redact_sql("t.messages")}, {redact_sql("t.request")},
               {redact_sql("t.response")}, t.latency_ms, t.input_tokens, t.output_tokens,
               t.user_role, {redact_sql("t.metadata")},
               CASE WHEN t.session_id IS NULL THEN 0 ELSE t.turn_index END,
               t.session_id IS NOT NULL AND t.turn_index = t.turns - 1
                   AND NOT coalesce(s.positive, false) AS abandoned,
               CAST(coalesce(s.regenerate_events, 0)
                    + CASE WHEN t.session_id IS NULL THEN 0 ELSE t.reasks END AS INTEGER),
               t.file
        FROM turns t LEFT JOIN trace_signals s USING (trace_id)
        ORDER BY t.timestamp, t.trace_id
        """,
        [ds, ds],
    )


def _write_feedback(conn: duckdb.DuckDBPyConnection, ds: str, lookback_days: int) -> None:
    conn.execute("DELETE FROM feedback_events WHERE ds = ?", [ds])
    first = (date.fromisoformat(ds) - timedelta(days=lookback_days)).isoformat()
    conn.execute(
        f"""
        INSERT INTO feedback_events
        WITH valid AS (
            SELECT file, line, feedback_id, trace_id, session_id, user_id AS raw_user,
                   timezone('UTC', CAST(timestamp AS TIMESTAMPTZ)) AS timestamp,
                   kind, reason, TRY_CAST(score AS DOUBLE) AS score, comment, correction,
                   user_role, metadata
            FROM checked_feedback WHERE error IS NULL
            QUALIFY row_number() OVER (PARTITION BY feedback_id ORDER BY file, line) = 1
        ),
        fresh AS (
            SELECT v.* FROM valid v
            ANTI JOIN (SELECT feedback_id FROM feedback_events WHERE ds <> ?::DATE) old
                USING (feedback_id)
        ),
        known AS (  -- a trace id lives in one partition only (ingest drops re-deliveries)
            SELECT ds, trace_id, session_id, user_id, user_role, model_version, prompt_version,
                   request, response, messages
            FROM traces WHERE ds BETWEEN ?::DATE AND ?::DATE
        )
        SELECT ?::DATE AS ds, f.feedback_id, f.trace_id, coalesce(f.session_id, t.session_id),
               coalesce(p.pseudonym, t.user_id), f.timestamp, f.kind, f.reason, f.score,
               {redact_sql("f.comment")}, {redact_sql("f.correction")},
               coalesce(f.user_role, t.user_role), {redact_sql("f.metadata")},
               t.model_version, t.prompt_version, t.request, t.response, t.messages,
               t.trace_id IS NOT NULL AS trace_found, t.ds AS trace_ds,
               {negative_sql("f.kind", "f.score", "f.reason")} AS is_negative,
               f.file
        FROM fresh f
        LEFT JOIN pseudonyms p ON p.raw_id = f.raw_user
        LEFT JOIN known t ON t.trace_id = f.trace_id
        ORDER BY f.timestamp, f.feedback_id
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
    ).fetchone()[0]
    row = conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE NOT trace_found), "
        "count(*) FILTER (WHERE trace_ds < ds) FROM feedback_events WHERE ds = ?",
        [ds],
    ).fetchone()
    stats.loaded["feedback"], stats.unknown_trace, stats.late_feedback = row
    stats.late_files = conn.execute(
        "SELECT count(*) FROM ingest_files WHERE ds = ? AND late", [ds]
    ).fetchone()[0]
    stats.abandoned = conn.execute(
        "SELECT count(*) FROM traces WHERE ds = ? AND abandoned", [ds]
    ).fetchone()[0]
    for source in landing.SOURCES:
        valid = stats.lines[source] - stats.quarantined[source]
        stats.duplicates[source] = valid - stats.loaded[source]
