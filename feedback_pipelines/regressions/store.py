"""The regressions stage's warehouse reads and writes (the statistics never see a connection)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import duckdb
import pandas as pd

from feedback_pipelines.regressions.compare import RegressionSettings
from feedback_pipelines.regressions.cumulative import release_span_start
from feedback_pipelines.schema import (
    REGRESSIONS_DDL,
    REGRESSIONS_MIGRATIONS,
    VERSION_METRICS_DDL,
)
from feedback_pipelines.tables import table_columns, write_partition

_DAY_EVENT_COLUMNS = ["ds", "model_version", "prompt_version", "kind", "is_negative"]
_DAY_TRACE_COLUMNS = [
    "ds",
    "model_version",
    "prompt_version",
    "latency_ms",
    "input_tokens",
    "output_tokens",
    "abandoned",
    "regenerations",
]


class MissingTables(LookupError):
    """An upstream table the regressions need does not exist yet."""


@dataclass
class RegressionWindow:
    """What `compute_regressions` reads for one window, and what was missing."""

    events: pd.DataFrame
    traces: pd.DataFrame
    assignments: pd.DataFrame | None
    first_seen: pd.DataFrame
    labels: dict[int, str] = field(default_factory=dict)
    topic_labels: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_day(conn: duckdb.DuckDBPyConnection, ds: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One day's feedback events and traces, as `compute_version_metrics` wants them."""
    tables = table_columns(conn)
    frames = []
    for table, columns in (
        ("feedback_events", _DAY_EVENT_COLUMNS),
        ("traces", _DAY_TRACE_COLUMNS),
    ):
        if table in tables:
            sql = f"SELECT {', '.join(columns)} FROM {table} WHERE ds = ?"
            frames.append(conn.execute(sql, [ds]).df())
        else:
            frames.append(pd.DataFrame(columns=columns))
    return frames[0], frames[1]


@dataclass
class ReleaseSpan:
    """What `cumulative.always_valid_rows` reads, and each event's frozen assignment.

    Events and traces since the earliest release still judged, minus its baseline's
    pre-release window.
    """

    events: pd.DataFrame
    traces: pd.DataFrame
    assignments: pd.DataFrame | None


def read_release_span(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> ReleaseSpan:
    """Events and traces of [start, end] and the cluster (and theme) each event got first.

    Frozen strata: an event counts under its assignment in the earliest `cluster_assignments`
    partition at or after its own day (its own day's when clustering runs daily), never under
    a later re-clustering, so the counts of a past day never change. Partitions after `end`
    are not read, so a partition's rows do not depend on what ran after it.
    """
    tables = table_columns(conn)
    events, traces = frames if frames is not None else _events_and_traces(conn, start, end)
    cols = tables.get("cluster_assignments")
    if cols is None:
        return ReleaseSpan(events, traces, None)
    picks = ["cluster_id", *(["topic_id"] if "topic_id" in cols else [])]
    if "ds" in cols:
        # arg_min_null: a NULL theme on the event's own day stays NULL, never a later day's
        select = ", ".join(f"arg_min_null(a.{c}, a.ds) AS {c}" for c in picks)
        sql = (
            f"SELECT e.feedback_id, {select} FROM feedback_events e "
            "JOIN cluster_assignments a ON a.feedback_id = e.feedback_id "
            "AND a.ds >= e.ds AND a.ds <= ? WHERE e.ds BETWEEN ? AND ? GROUP BY e.feedback_id"
        )
        assignments = conn.execute(sql, [end, start, end]).df()
    else:
        select = ", ".join(f"a.{c}" for c in picks)
        assignments = conn.execute(
            f"SELECT a.feedback_id, {select} FROM cluster_assignments a"
        ).df()
    return ReleaseSpan(events, traces, assignments)


def read_partition(
    conn: duckdb.DuckDBPyConnection, start: date, end: date, settings: RegressionSettings
) -> tuple[RegressionWindow, ReleaseSpan, date]:
    """What partition `end` of `version_regressions` reads: its window, its span, the span start.

    The span (`release_span_start`) always holds the window, so events and traces are read once
    and the window's are the span's rows of days `start`..`end`, in the same order: what the
    window's own query returns (DuckDB keeps insertion order without ORDER BY).
    """
    _check_tables(conn)
    history = _history(conn, end)
    span_start = release_span_start(history, end, settings)
    events, traces = _events_and_traces(conn, span_start, end)
    first, last = pd.Timestamp(start), pd.Timestamp(end)
    in_window = [
        frame[(frame["ds"] >= first) & (frame["ds"] <= last)].reset_index(drop=True)
        for frame in (events, traces)
    ]
    window = read_window(conn, start, end, frames=(in_window[0], in_window[1]), history=history)
    span = read_release_span(conn, span_start, end, frames=(events, traces))
    return window, span, span_start


def _check_tables(conn: duckdb.DuckDBPyConnection) -> None:
    missing = [t for t in ("feedback_events", "traces") if t not in table_columns(conn)]
    if missing:
        raise MissingTables(f"upstream tables missing: {', '.join(missing)} (run ingest first)")


def _history(conn: duckdb.DuckDBPyConnection, end: date) -> pd.DataFrame:
    return conn.execute(
        "SELECT model_version, prompt_version, min(timestamp) AS first_seen FROM traces "
        "WHERE ds <= ? AND model_version IS NOT NULL GROUP BY ALL",
        [end],
    ).df()


def read_window(
    conn: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    *,
    frames: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    history: pd.DataFrame | None = None,
) -> RegressionWindow:
    """The window's events and traces, the window end's assignments, version history, labels.

    `frames` and `history`: already read (`read_partition`).
    """
    tables = table_columns(conn)
    _check_tables(conn)
    events, traces = frames if frames is not None else _events_and_traces(conn, start, end)
    history = history if history is not None else _history(conn, end)
    window = RegressionWindow(events, traces, None, history)
    if "cluster_assignments" in tables:
        cols = tables["cluster_assignments"]
        on_day = "WHERE ds = ?" if "ds" in cols else ""
        topic = ", topic_id" if "topic_id" in cols else ""
        window.assignments = conn.execute(
            f"SELECT feedback_id, cluster_id{topic} FROM cluster_assignments {on_day}",
            [end] if on_day else [],
        ).df()
    else:
        window.notes.append("cluster_assignments table not found: overall comparisons only")
    if "feedback_clusters" in tables and {"cluster_id", "label"} <= tables["feedback_clusters"]:
        on_day = "WHERE ds = ?" if "ds" in tables["feedback_clusters"] else ""
        labels = conn.execute(
            f"SELECT DISTINCT cluster_id, label FROM feedback_clusters {on_day}",
            [end] if on_day else [],
        ).fetchall()
        window.labels = {int(c): str(label) for c, label in labels}
    if "feedback_topics" in tables and {"topic_id", "label"} <= tables["feedback_topics"]:
        on_day = "WHERE ds = ?" if "ds" in tables["feedback_topics"] else ""
        labels = conn.execute(
            f"SELECT DISTINCT topic_id, label FROM feedback_topics {on_day}",
            [end] if on_day else [],
        ).fetchall()
        window.topic_labels = {int(t): str(label) for t, label in labels}
    return window


def write_metrics(conn: duckdb.DuckDBPyConnection, metrics: pd.DataFrame, ds: str) -> None:
    """Replace the day's `version_metrics` rows."""
    write_partition(conn, "version_metrics", VERSION_METRICS_DDL, metrics, ds)


def write_regressions(conn: duckdb.DuckDBPyConnection, result: pd.DataFrame, ds: str) -> None:
    """Replace the day's `version_regressions` rows (adding the newer columns to old tables)."""
    conn.execute(REGRESSIONS_DDL)
    for statement in REGRESSIONS_MIGRATIONS:
        conn.execute(statement)
    write_partition(conn, "version_regressions", REGRESSIONS_DDL, result, ds)


def _events_and_traces(
    conn: duckdb.DuckDBPyConnection, start: date, end: date
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The feedback events and traces of days `start`..`end`, as the comparisons read them."""
    events = conn.execute(
        "SELECT ds, feedback_id, trace_id, timestamp, kind, is_negative, model_version, "
        "prompt_version FROM feedback_events WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).df()
    traces = conn.execute(
        "SELECT ds, trace_id, timestamp, model_version, prompt_version, latency_ms, abandoned "
        "FROM traces WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).df()
    return events, traces
