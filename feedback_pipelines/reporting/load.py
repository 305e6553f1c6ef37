"""Read one report's facts from the warehouse: small aggregates, never whole tables.

A day can hold a million feedback events; the report needs a few hundred numbers. So every
query here aggregates inside DuckDB and returns a small frame. Tables that a stage has not
produced yet (a fresh install, a stage that failed) are returned as None so the report can say
"not computed yet"; the column names are the schema's (`feedback_pipelines.schema`).
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from feedback_pipelines.ingest.records import quarantine_category_sql
from feedback_pipelines.reporting.views import ReportInputs
from feedback_pipelines.tables import table_columns


def _df(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    return conn.execute(sql, params).df()


def _events(
    conn: duckdb.DuckDBPyConnection, cols: set[str], start: date, end: date
) -> tuple[dict[str, int], pd.DataFrame]:
    """The period's totals, and per model version over the period (with distinct users)."""
    neg = "coalesce(is_negative, false)"
    unknown = (
        "count(*) FILTER (WHERE NOT coalesce(trace_found, true))" if "trace_found" in cols else "0"
    )
    late = "count(*) FILTER (WHERE trace_ds < ds)" if "trace_ds" in cols else "0"
    row = conn.execute(
        f"SELECT count(*), count(*) FILTER (WHERE {neg}), count(DISTINCT user_id), {unknown}, "
        f"{late} FROM feedback_events WHERE ds BETWEEN ? AND ?",
        [start, end],
    ).fetchone()
    totals = dict(
        zip(
            ("n_feedback", "n_negative", "n_users", "n_unknown_trace", "n_late_feedback"),
            (int(v or 0) for v in row),
            strict=True,
        )
    )
    by_version = _df(
        conn,
        f"SELECT model_version, count(*) AS n_feedback, "
        f"count(*) FILTER (WHERE {neg}) AS n_negative, "
        "count(*) FILTER (WHERE kind = 'correction') AS n_corrections, "
        "count(DISTINCT user_id) AS n_users "
        "FROM feedback_events WHERE ds BETWEEN ? AND ? GROUP BY 1 ORDER BY 2 DESC, 1",
        [start, end],
    )
    return totals, by_version


def _window_rows(
    conn: duckdb.DuckDBPyConnection, table: str, cols: set[str], end: date
) -> pd.DataFrame:
    """The rows of a window table for the window ending at `end` (its `ds`, else window_end)."""
    key = "ds" if "ds" in cols else "window_end" if "window_end" in cols else None
    if key is None:
        return _df(conn, f'SELECT * FROM "{table}" LIMIT 0', [])
    return _df(conn, f'SELECT * FROM "{table}" WHERE {key} = ?', [end])


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


def read_datacards(data_dir: Path | None, start: date, end: date) -> dict[str, Any] | None:
    """The period's exports/dt=D/datacard.json, summed (counts and splits) over its days."""
    if data_dir is None:
        return None
    cards = []
    day = start
    while day <= end:
        path = data_dir / "exports" / f"dt={day.isoformat()}" / "datacard.json"
        if path.exists():
            try:
                cards.append(json.loads(path.read_text(encoding="utf-8")))
            except ValueError:
                pass
        day += timedelta(days=1)
    if not cards:
        return None
    counts: dict[str, int] = {}
    splits: dict[str, dict[str, int]] = {}
    for card in cards:
        for name, n in (card.get("counts") or {}).items():
            if isinstance(n, int | float):
                counts[name] = counts.get(name, 0) + int(n)
        for name, parts in (card.get("splits") or {}).items():
            if isinstance(parts, dict):
                for split, n in parts.items():
                    if isinstance(n, int | float):
                        target = splits.setdefault(name, {})
                        target[split] = target.get(split, 0) + int(n)
    return {"counts": counts, "splits": splits}


def load_report_inputs(
    conn: duckdb.DuckDBPyConnection,
    kind: str,
    start: date,
    end: date,
    *,
    trend_days: int = 14,
    data_dir: Path | None = None,
) -> ReportInputs:
    """Everything one report shows, from the warehouse (and the exports / landing folders).

    Args:
        conn: An open warehouse connection (read only is enough).
        kind: "daily" or "weekly".
        start: First day of the period.
        end: Last day of the period (window tables are read for the window ending here).
        trend_days: Days of the trend charts, ending at `end`.
        data_dir: The data directory (for exports/ and review/ links and data cards).

    Returns:
        The report's inputs; members are None where the table does not exist.
    """
    tables = table_columns(conn)
    trend_start = min(start, end - timedelta(days=trend_days - 1))
    inputs = ReportInputs(kind=kind, start=start, end=end)
    if "feedback_events" in tables:
        totals, inputs.by_version = _events(conn, tables["feedback_events"], start, end)
        inputs.totals.update(totals)
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
        inputs.regressions = _window_rows(
            conn, "version_regressions", tables["version_regressions"], end
        )
    if "feedback_clusters" in tables:
        inputs.clusters = _window_rows(conn, "feedback_clusters", tables["feedback_clusters"], end)
    if "cluster_assignments" in tables and "feedback_events" in tables:
        on_day = "AND a.ds = ?" if "ds" in tables["cluster_assignments"] else ""
        params: list[Any] = [trend_start, end] + ([end] if on_day else [])
        inputs.cluster_daily = _df(
            conn,
            "SELECT a.cluster_id, f.ds, count(*) AS n FROM cluster_assignments a "
            "JOIN feedback_events f ON f.feedback_id = a.feedback_id "
            f"WHERE f.ds BETWEEN ? AND ? AND a.cluster_id >= 0 {on_day} GROUP BY 1, 2",
            params,
        )
    if "tuning_candidates" in tables:
        cols = tables["tuning_candidates"]
        inputs.tuning = _counts_by(
            conn,
            "tuning_candidates",
            cols,
            start,
            end,
            {"dataset": "dataset", "split": "split"},
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
    inputs.datacard = read_datacards(data_dir, start, end)
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
