"""Read one report's facts from the warehouse: small aggregates, never whole tables.

A day can hold a million feedback events; the report needs a few hundred numbers. So every
query here aggregates inside DuckDB and returns a small frame. Tables that a stage has not
produced yet (a fresh install, a stage that failed) are returned as None so the report can say
"not computed yet"; the column names are the schema's (`feedback_pipelines.schema`).
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from feedback_pipelines.ingest.records import quarantine_category_sql
from feedback_pipelines.reporting.views import ReportInputs
from feedback_pipelines.routing.tuning.events import RANKING
from feedback_pipelines.tables import table_columns


def _df(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    return conn.execute(sql, params).df()


def _totals(
    conn: duckdb.DuckDBPyConnection, cols: set[str], start: date, end: date
) -> dict[str, int]:
    """A period's feedback totals: events, negative, people (and how people could be counted).

    `n_users` counts distinct user ids; `n_with_user` the events that carry one, so a source
    without user ids (FeedbackQA, most preference sets) reads as "no user ids", never as "0
    people". `n_conversations` counts distinct sessions, a trace without a session being its own
    one-turn conversation: the stand-in for people when there are no user ids. `n_votes` counts
    the events of side-by-side votes.
    """
    neg = "coalesce(is_negative, false)"
    unknown = (
        "count(*) FILTER (WHERE NOT coalesce(trace_found, true))" if "trace_found" in cols else "0"
    )
    late = "count(*) FILTER (WHERE trace_ds < ds)" if "trace_ds" in cols else "0"
    # A side-by-side vote's events (`routing.tuning.votes`): its thumbs-down is a comparison lost.
    vote = "contains(metadata, '\"rejected_trace_id\"')"
    votes = f"count(*) FILTER (WHERE {vote})" if "metadata" in cols else "0"
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {neg}), count(DISTINCT user_id), {unknown}, "
        f"{late}, count(user_id), count(DISTINCT coalesce(session_id, 'trace:' || trace_id)), "
        f"count(DISTINCT ds), {votes} FROM feedback_events WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).fetchone()
    names = (
        "n_feedback",
        "n_negative",
        "n_users",
        "n_unknown_trace",
        "n_late_feedback",
        "n_with_user",
        "n_conversations",
        "n_days_with_data",
        "n_votes",
    )
    return dict(zip(names, (int(v or 0) for v in row), strict=True))


def _events(
    conn: duckdb.DuckDBPyConnection, cols: set[str], start: date, end: date
) -> tuple[dict[str, int], pd.DataFrame]:
    """The period's totals, and per model version over the period (with distinct users)."""
    neg = "coalesce(is_negative, false)"
    totals = _totals(conn, cols, start, end)
    by_version = _df(
        conn,
        f"SELECT model_version, count(*) AS n_feedback, "
        f"count(*) FILTER (WHERE {neg}) AS n_negative, "
        "count(*) FILTER (WHERE kind = 'correction') AS n_corrections, "
        "count(DISTINCT user_id) AS n_users, count(user_id) AS n_with_user, "
        "count(DISTINCT coalesce(session_id, 'trace:' || trace_id)) AS n_conversations "
        "FROM feedback_events WHERE ds BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC, 1",
        [start, end],
    )
    return totals, by_version


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else pd.Timestamp(value).date()


def _days_with_data(conn: duckdb.DuckDBPyConnection, start: date, end: date) -> list[date]:
    rows = conn.execute(
        "SELECT DISTINCT ds FROM feedback_events WHERE ds BETWEEN ? AND ? ORDER BY 1",
        [start, end],
    ).fetchall()
    return [_as_date(r[0]) for r in rows]


def _window_rows(
    conn: duckdb.DuckDBPyConnection, table: str, cols: set[str], end: date
) -> pd.DataFrame:
    """The rows of a window table for the window ending at `end` (its `ds`, else window_end)."""
    key = "ds" if "ds" in cols else "window_end" if "window_end" in cols else None
    if key is None:
        return _df(conn, f'SELECT * FROM "{table}" LIMIT 0', [])
    return _df(conn, f'SELECT * FROM "{table}" WHERE {key} = ?', [end])


def _faded_labels(
    conn: duckdb.DuckDBPyConnection, tables: dict[str, set[str]], inputs: ReportInputs, end: date
) -> dict[tuple[str, int], str]:
    """The last label of each subtopic or theme a regression row names and `end` has not."""
    out: dict[tuple[str, int], str] = {}
    rows = inputs.regressions
    for level, table, today in (
        ("cluster", "feedback_clusters", inputs.clusters),
        ("topic", "feedback_topics", inputs.topics),
    ):
        column = f"{level}_id"
        if (
            rows is None
            or column not in rows
            or not {column, "label", "ds"} <= tables.get(table, set())
        ):
            continue
        named = {int(v) for v in pd.to_numeric(rows[column], errors="coerce").dropna() if v >= 0}
        if today is not None and column in today:
            named -= {int(v) for v in pd.to_numeric(today[column], errors="coerce").dropna()}
        if not named:
            continue
        found = conn.execute(
            f"SELECT {column}, arg_max(label, ds) FROM {table} WHERE ds < ? AND "
            f"{column} IN (SELECT unnest(?)) AND label IS NOT NULL AND label <> '' GROUP BY 1",
            [end, sorted(named)],
        ).fetchall()
        out.update({(level, int(i)): str(label) for i, label in found})
    return out


def _counts_by(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    cols: set[str],
    start: date,
    end: date,
    group: dict[str, str | None],
) -> pd.DataFrame:
    """count(*) of a daily table over the period, grouped by the first column that exists."""
    select = ", ".join(f"{col or 'NULL'} AS {alias}" for alias, col in group.items())
    where = "WHERE ds BETWEEN ? AND ?" if "ds" in cols else ""
    params = [start, end] if "ds" in cols else []
    keys = ", ".join(str(i + 1) for i in range(len(group)))
    return _df(
        conn, f'SELECT {select}, count(*) AS n FROM "{table}" {where} GROUP BY {keys}', params
    )


def read_datacard(data_dir: Path | None, day: date) -> dict[str, Any] | None:
    """The data card of one day's export (exports/dt=D/datacard.json), as written.

    A day's export is a snapshot of the whole window (or, in incremental mode, that day's new
    examples): cards of several days are never summed, which would count an example once per
    day it stayed in the window. `build` reads the card's keys defensively (its shape changes).
    """
    if data_dir is None:
        return None
    path = data_dir / "exports" / f"dt={day.isoformat()}" / "datacard.json"
    if not path.exists():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def _day_column(cols: set[str]) -> str | None:
    return "ds" if "ds" in cols else "window_end" if "window_end" in cols else None


# Columns that identify one comparison from day to day, and what its history needs.
REGRESSION_KEY = (
    "dimension",
    "model_version",
    "candidate_version",
    "baseline_version",
    "metric",
    "scope",
    "cluster_id",
    "topic_id",
)
_HISTORY_VALUES = (
    "test",
    "delta",
    "rate_candidate",
    "rate_baseline",
    "q_value",
    "is_regression",
    "is_improvement",
    "flag_since",
)


def _regression_history(
    conn: duckdb.DuckDBPyConnection, cols: set[str], end: date, days: int
) -> pd.DataFrame | None:
    """Earlier days' version_regressions: every flagged row, and all rows of the day before.

    Enough to say since when a finding has been flagged, whether it grew since the previous
    day, and which findings of the previous day are no longer flagged (resolved).
    """
    day = _day_column(cols)
    if day is None:
        return None
    wanted = [c for c in (*REGRESSION_KEY, *_HISTORY_VALUES) if c in cols]
    flags = [f"coalesce({c}, false)" for c in ("is_regression", "is_improvement") if c in cols]
    flagged = " OR ".join(flags) if flags else "false"
    select = ", ".join(f'"{c}"' for c in wanted)
    return _df(
        conn,
        f"SELECT {day} AS day, {select} FROM version_regressions WHERE {day} < ? AND {day} >= ? "
        f"AND (({flagged}) OR {day} = (SELECT max({day}) FROM version_regressions "
        f"WHERE {day} < ?)) ORDER BY 1",
        [end, end - timedelta(days=days), end],
    )


def _clusters_people(
    conn: duckdb.DuckDBPyConnection, assignments: set[str], end: date
) -> pd.DataFrame:
    """Per cluster of the window ending `end`: distinct users, events with a user id, sessions."""
    on_day = "AND a.ds = ?" if "ds" in assignments else ""
    return _df(
        conn,
        "SELECT a.cluster_id, count(*) AS events, count(DISTINCT f.user_id) AS users, "
        "count(f.user_id) AS with_user, "
        "count(DISTINCT coalesce(f.session_id, 'trace:' || f.trace_id)) AS conversations "
        "FROM cluster_assignments a JOIN feedback_events f ON f.feedback_id = a.feedback_id "
        f"WHERE a.cluster_id >= 0 {on_day} GROUP BY 1",
        [end] if on_day else [],
    )


def _cluster_quotes(
    conn: duckdb.DuckDBPyConnection,
    assignments: set[str],
    start: date,
    end: date,
    per_cluster: int,
) -> pd.DataFrame:
    """Candidate quotes per cluster: events with their request, comment and ids.

    Per cluster and polarity, the events that carry a comment or correction first, then the
    most typical (the assignment's probability), those of the report's period first among equals.
    """
    on_day = "AND a.ds = ?" if "ds" in assignments else ""
    prob = "a.probability" if "probability" in assignments else "NULL::DOUBLE"
    params: list[Any] = [start, end] + ([end] if on_day else []) + [per_cluster]
    return _df(
        conn,
        "SELECT * EXCLUDE (rn) FROM (SELECT a.cluster_id, f.feedback_id, f.session_id, "
        "f.trace_id, f.ds, f.kind, f.reason, f.score, f.is_negative, f.request, f.comment, "
        "f.correction, row_number() OVER (PARTITION BY a.cluster_id, "
        "coalesce(f.is_negative, false) ORDER BY "
        "(coalesce(trim(f.comment), '') <> '' OR coalesce(trim(f.correction), '') <> '') DESC, "
        f"{prob} DESC NULLS LAST, f.ds BETWEEN ? AND ? DESC, f.feedback_id) AS rn "
        "FROM cluster_assignments a JOIN feedback_events f ON f.feedback_id = a.feedback_id "
        f"WHERE a.cluster_id >= 0 {on_day}) WHERE rn <= ? ORDER BY cluster_id, rn",
        params,
    )


def _tuning(
    conn: duckdb.DuckDBPyConnection,
    cols: set[str],
    events: set[str] | None,
    start: date,
    end: date,
    traces: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The export of `end` per (dataset, split): examples in it and those new in the period.

    An example is new in the period when its newest feedback event (the event, or the liked
    side of a pair) is of a day of the period. The export of `end` is a snapshot of the window
    (cumulative mode) or the day's new examples (incremental mode): either way it is read for
    `end` only, never summed over days. Also the distinct feedback events behind each, since a
    preference pair is also two unpaired examples and maybe a prompt-tuning case.
    """
    if "ds" not in cols:
        frame = _df(
            conn,
            "SELECT dataset, split, count(*) AS n, NULL::BIGINT AS n_new FROM tuning_candidates "
            "GROUP BY 1, 2",
            [],
        )
        return frame, {}
    pair = "paired_feedback_id" if "paired_feedback_id" in cols else "NULL::VARCHAR"
    dated = events is not None and "feedback_id" in cols
    # A ranking's vote is no feedback event (`routing.day.read_rankings`): its day is that of
    # its later answer, and it is not one of the feedback events behind the export.
    ranked = traces and {"trace_id", "paired_trace_id"} <= cols
    answers = ", trace_id, paired_trace_id" if ranked else ""
    base = (
        f"WITH t AS (SELECT dataset, split, feedback_id, {pair} AS paired_feedback_id{answers} "
        "FROM tuning_candidates WHERE ds = ?)"
    )
    if dated:
        base += (
            ", e AS (SELECT feedback_id, max(ds) AS day FROM feedback_events WHERE feedback_id "
            "IN (SELECT feedback_id FROM t UNION SELECT paired_feedback_id FROM t) GROUP BY 1), "
            "d AS (SELECT * FROM e"
            + (
                " UNION ALL SELECT t.feedback_id, greatest(max(a.ds), max(b.ds)) FROM t "
                "LEFT JOIN traces a ON a.trace_id = t.trace_id "
                "LEFT JOIN traces b ON b.trace_id = t.paired_trace_id "
                f"WHERE t.feedback_id LIKE '{RANKING}%' "
                "AND t.feedback_id NOT IN (SELECT feedback_id FROM e) GROUP BY 1"
                if ranked
                else ""
            )
            + "), x AS (SELECT t.*, greatest(coalesce(a.day, b.day), coalesce(b.day, a.day)) "
            "AS newest FROM t LEFT JOIN d a ON a.feedback_id = t.feedback_id "
            "LEFT JOIN d b ON b.feedback_id = t.paired_feedback_id)"
        )
    else:
        base += ", x AS (SELECT t.*, NULL::DATE AS newest FROM t)"
    frame = _df(
        conn,
        f"{base} SELECT dataset, split, count(*) AS n, "
        "count(*) FILTER (WHERE newest BETWEEN ? AND ?) AS n_new FROM x GROUP BY 1, 2",
        [end, start, end],
    )
    fb = conn.execute(
        f"{base} SELECT count(DISTINCT id), count(DISTINCT id) FILTER (WHERE new) FROM ("
        "SELECT feedback_id AS id, newest BETWEEN ? AND ? AS new FROM x "
        "UNION ALL SELECT paired_feedback_id, newest BETWEEN ? AND ? FROM x) "
        + ("WHERE id IN (SELECT feedback_id FROM e)" if dated else "WHERE id IS NOT NULL"),
        [end, start, end, start, end],
    ).fetchone()
    if not dated:
        frame["n_new"] = pd.NA
    sources = {"feedback_export": int(fb[0] or 0)}
    if dated:
        sources["feedback_new"] = int(fb[1] or 0)
    return frame, sources


def _previous_periods(kind: str, start: date, end: date) -> dict[str, tuple[date, date]]:
    """The periods a report compares with: yesterday and a week ago, or the week before."""
    if kind == "weekly" or start != end:
        span = (end - start).days + 1
        return {"the week before": (start - timedelta(days=span), end - timedelta(days=span))}
    return {
        "yesterday": (end - timedelta(days=1), end - timedelta(days=1)),
        "last week": (end - timedelta(days=7), end - timedelta(days=7)),
    }


def load_report_inputs(
    conn: duckdb.DuckDBPyConnection,
    kind: str,
    start: date,
    end: date,
    *,
    trend_days: int = 14,
    data_dir: Path | None = None,
    history_days: int = 90,
    quotes_per_cluster: int = 4,
) -> ReportInputs:
    """Everything one report shows, from the warehouse (and the exports / landing folders).

    Tables and columns that a stage has not written (yet) are left out: the two-level topics
    (`feedback_topics`, `topic_id`), complaint groups and a regression's `flag_since` are read
    when they exist (`table_columns` says what exists), and never made up when they do not.

    Args:
        conn: An open warehouse connection (read only is enough).
        kind: "daily" or "weekly".
        start: First day of the period.
        end: Last day of the period (window tables are read for the window ending here).
        trend_days: Days of the trend charts, ending at `end`.
        data_dir: The data directory (for exports/ and review/ links and data cards).
        history_days: How far back a regression's flag is followed (since when it is flagged).
        quotes_per_cluster: Candidate quotes read per cluster and polarity.

    Returns:
        The report's inputs; members are None where the table does not exist.
    """
    tables = table_columns(conn)
    trend_start = min(start, end - timedelta(days=trend_days - 1))
    inputs = ReportInputs(kind=kind, start=start, end=end)
    if "feedback_events" in tables:
        cols = tables["feedback_events"]
        totals, inputs.by_version = _events(conn, cols, start, end)
        inputs.totals.update(totals)
        inputs.days_with_data = _days_with_data(conn, start, end)
        for name, (p_start, p_end) in _previous_periods(kind, start, end).items():
            inputs.previous[name] = {
                "start": p_start,
                "end": p_end,
                **_totals(conn, cols, p_start, p_end),
            }
    if "traces" in tables:
        n_traces, n_sessions = conn.execute(
            "SELECT count(*), count(DISTINCT session_id) FROM traces WHERE ds BETWEEN ? AND ?",
            [start, end],
        ).fetchone()
        inputs.totals.update(n_traces=int(n_traces), n_sessions=int(n_sessions))
    if "version_metrics" in tables:
        cols = tables["version_metrics"]
        dim = "AND dimension = 'model_version'" if "dimension" in cols else ""
        inputs.version_metrics = _df(
            conn,
            f"SELECT * FROM version_metrics WHERE ds BETWEEN ? AND ? {dim} ORDER BY ds, 2",
            [trend_start, end],
        )
        # The trend's daily counts are the stage's own, not counted again here.
        daily = inputs.version_metrics
        inputs.daily_by_version = daily.loc[
            daily["n_feedback"] > 0, ["ds", "model_version", "n_feedback", "n_negative"]
        ].reset_index(drop=True)
    if "version_regressions" in tables:
        cols = tables["version_regressions"]
        inputs.regressions = _window_rows(conn, "version_regressions", cols, end)
        inputs.regression_history = _regression_history(conn, cols, end, history_days)
        day = _day_column(cols)
        if day is not None:
            inputs.regression_days = [
                _as_date(r[0])
                for r in conn.execute(
                    f"SELECT DISTINCT {day} FROM version_regressions WHERE {day} < ? "
                    f"AND {day} >= ? ORDER BY 1",
                    [end, end - timedelta(days=history_days)],
                ).fetchall()
            ]
    if "feedback_clusters" in tables:
        inputs.clusters = _window_rows(conn, "feedback_clusters", tables["feedback_clusters"], end)
    if "feedback_topics" in tables:
        inputs.topics = _window_rows(conn, "feedback_topics", tables["feedback_topics"], end)
    inputs.faded_labels = _faded_labels(conn, tables, inputs, end)
    if "complaint_clusters" in tables:
        inputs.complaints = _window_rows(
            conn, "complaint_clusters", tables["complaint_clusters"], end
        )
    if "cluster_assignments" in tables and "feedback_events" in tables:
        assignments = tables["cluster_assignments"]
        on_day = "AND a.ds = ?" if "ds" in assignments else ""
        params: list[Any] = [trend_start, end] + ([end] if on_day else [])
        inputs.cluster_daily = _df(
            conn,
            "SELECT a.cluster_id, f.ds, count(*) AS n FROM cluster_assignments a "
            "JOIN feedback_events f ON f.feedback_id = a.feedback_id "
            f"WHERE f.ds BETWEEN ? AND ? AND a.cluster_id >= 0 {on_day} GROUP BY 1, 2",
            params,
        )
        inputs.cluster_people = _clusters_people(conn, assignments, end)
        inputs.cluster_quotes = _cluster_quotes(conn, assignments, start, end, quotes_per_cluster)
    if "tuning_candidates" in tables:
        inputs.tuning, inputs.tuning_feedback = _tuning(
            conn,
            tables["tuning_candidates"],
            tables.get("feedback_events"),
            start,
            end,
            "traces" in tables,
        )
    if "review_queue" in tables:
        cols = tables["review_queue"]
        inputs.review = _counts_by(
            # `routing_reason` is why an item is queued (`reason` is the feedback's own).
            conn,
            "review_queue",
            cols,
            start,
            end,
            {"reason": "routing_reason"},
        )
    if "quarantine" in tables:
        inputs.quarantine = _df(
            conn,
            f"SELECT source, {quarantine_category_sql()} AS reason, count(*) AS n "
            "FROM quarantine WHERE ds BETWEEN ? AND ? GROUP BY 1, 2",
            [start, end],
        )
    inputs.datacard = read_datacard(data_dir, end)
    if "ingest_files" in tables:
        # Ingest's audit of every input file; `late` = written after the day's scheduled run.
        late = "coalesce(late, false)" if "late" in tables["ingest_files"] else "false"
        inputs.files = _df(
            conn,
            f"SELECT ds, source, file, {late} AS late FROM ingest_files "
            "WHERE ds BETWEEN ? AND ? ORDER BY ds, source, file",
            [start, end],
        )
    if data_dir is not None and kind == "daily":
        day = f"dt={end.isoformat()}"
        if (data_dir / "exports" / day).is_dir():
            inputs.links["exports"] = f"../../exports/{day}/"
        if (data_dir / "review" / day / "queue.jsonl").exists():
            inputs.links["review"] = f"../../review/{day}/queue.jsonl"
    return inputs
