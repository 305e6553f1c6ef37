"""A whole conversation from the warehouse, turn by turn, with every feedback signal on it.

Root cause lives in the session, not in the one answer that got a thumbs-down: what was asked
before, which model and prompt answered, how long it took, whether the user regenerated or left.
`load_session(conn, id)` accepts a session id, a trace id or a feedback id; a trace without a
session shows as a one-turn conversation, feedback on an unknown trace on its own. Pure module.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb
import pandas as pd

from feedback_pipelines.tables import table_exists


@dataclass
class Signal:
    """One feedback event on a turn."""

    feedback_id: str
    timestamp: str | None
    kind: str
    reason: str | None
    score: float | None
    comment: str | None
    correction: str | None
    is_negative: bool | None
    cluster_id: int | None = None
    cluster_label: str | None = None


@dataclass
class Turn:
    """One model call of the session and the feedback on it."""

    index: int
    trace_id: str
    timestamp: str | None
    model_version: str | None
    prompt_version: str | None
    request: str | None
    response: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    abandoned: bool | None
    regenerations: int | None
    user_role: str | None
    signals: list[Signal] = field(default_factory=list)


@dataclass
class Session:
    """A conversation: its turns in order, and feedback whose trace is unknown."""

    session_id: str | None  # None: a trace (or feedback) that belongs to no session
    resolved_from: str  # "session", "trace" or "feedback": what the given id was
    user_id: str | None
    turns: list[Turn]
    orphan_signals: list[Signal] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _clean(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat(sep=" ")
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


@dataclass(frozen=True)
class Resolved:
    """What an id given to `session` stands for.

    Attributes:
        session_id: The session to show, or None when the trace (or feedback) has none.
        what: "session", "trace" or "feedback": what the given id was.
        trace_ids: Without a session, the traces to show (the trace itself, or the feedback's).
        feedback_ids: Without a session, feedback to show even if its trace is unknown.
    """

    session_id: str | None
    what: str
    trace_ids: tuple[str, ...] = ()
    feedback_ids: tuple[str, ...] = ()


def _first(conn: duckdb.DuckDBPyConnection, sql: str, value: str) -> tuple | None:
    """The one row of an aggregate query when it counted something (its last column), else None."""
    row = conn.execute(sql, [value]).fetchone()
    return row if row is not None and row[-1] else None


_SESSION_OF = (
    "SELECT any_value(session_id) FILTER (WHERE session_id IS NOT NULL), count(*) FROM {table} "
    "WHERE {column} = ?"
)


def resolve(conn: duckdb.DuckDBPyConnection, any_id: str) -> Resolved | None:
    """What `any_id` is (a session, trace or feedback id, in that order); None if unknown.

    A trace without a session id stands for itself (a one-turn conversation); feedback without
    one takes its trace's session, or else its trace alone, or else itself alone.
    """
    has_traces = table_exists(conn, "traces")
    has_feedback = table_exists(conn, "feedback_events")
    tables = [t for t, ok in (("traces", has_traces), ("feedback_events", has_feedback)) if ok]
    for table in tables:
        if _first(conn, _SESSION_OF.format(table=table, column="session_id"), any_id):
            return Resolved(any_id, "session")
    for table in tables:
        row = _first(conn, _SESSION_OF.format(table=table, column="trace_id"), any_id)
        if row:
            return Resolved(row[0], "trace", () if row[0] else (any_id,))
    if not has_feedback:
        return None
    row = _first(
        conn,
        "SELECT any_value(session_id) FILTER (WHERE session_id IS NOT NULL), "
        "any_value(trace_id), count(*) FROM feedback_events WHERE feedback_id = ?",
        any_id,
    )
    if row is None:
        return None
    session, trace = row[0], row[1]
    if session is None and trace and has_traces:
        found = _first(conn, _SESSION_OF.format(table="traces", column="trace_id"), trace)
        session = found[0] if found else None
    if session is not None:
        return Resolved(session, "feedback")
    return Resolved(None, "feedback", (trace,) if trace else (), (any_id,))


def resolve_session_id(conn: duckdb.DuckDBPyConnection, any_id: str) -> tuple[str, str] | None:
    """(session_id, what `any_id` was) when the id belongs to a session; None otherwise."""
    resolved = resolve(conn, any_id)
    if resolved is None or resolved.session_id is None:
        return None
    return resolved.session_id, resolved.what


def load_session(conn: duckdb.DuckDBPyConnection, any_id: str) -> Session | None:
    """The session that `any_id` (session, trace or feedback id) belongs to, or None.

    An id without a session still shows: its trace as a one-turn conversation, or the
    feedback alone when its trace never arrived (`session_id` is then None).

    Args:
        conn: A warehouse connection (read-only is enough).
        any_id: A session id, trace id or feedback id.
    """
    resolved = resolve(conn, any_id)
    if resolved is None:
        return None
    session_id, what = resolved.session_id, resolved.what
    if session_id is not None:
        trace_where, trace_params = "session_id = ?", [session_id]
    else:
        trace_where, trace_params = (
            "trace_id IN (SELECT unnest(?::VARCHAR[]))",
            [list(resolved.trace_ids)],
        )
    traces = pd.DataFrame()
    if table_exists(conn, "traces"):
        traces = conn.execute(
            "SELECT trace_id, any_value(user_id) AS user_id, min(timestamp) AS timestamp, "
            "any_value(model_version) AS model_version, "
            "any_value(prompt_version) AS prompt_version, any_value(request) AS request, "
            "any_value(response) AS response, any_value(latency_ms) AS latency_ms, "
            "any_value(input_tokens) AS input_tokens, any_value(output_tokens) AS output_tokens, "
            "bool_or(abandoned) AS abandoned, max(regenerations) AS regenerations, "
            "any_value(user_role) AS user_role, min(turn_index) AS turn_index "
            f"FROM traces WHERE {trace_where} GROUP BY trace_id "
            "ORDER BY timestamp, turn_index, trace_id",
            trace_params,
        ).df()
    signals = pd.DataFrame()
    if table_exists(conn, "feedback_events"):
        clusters = table_exists(conn, "cluster_assignments")
        labels = clusters and table_exists(conn, "feedback_clusters")
        select = (
            "SELECT f.feedback_id, any_value(f.trace_id) AS trace_id, "
            "any_value(f.user_id) AS user_id, min(f.timestamp) AS timestamp, "
            "any_value(f.kind) AS kind, any_value(f.reason) AS reason, "
            "any_value(f.score) AS score, any_value(f.comment) AS comment, "
            "any_value(f.correction) AS correction, any_value(f.is_negative) AS is_negative"
        )
        joins = ""
        if clusters:
            select += ", arg_max(c.cluster_id, c.ds) AS cluster_id"
            joins += " LEFT JOIN cluster_assignments c ON c.feedback_id = f.feedback_id"
        shown = traces["trace_id"].tolist() if len(traces) else []
        signals = conn.execute(
            f"{select} FROM feedback_events f{joins} "
            "WHERE f.session_id = ? OR f.trace_id IN (SELECT unnest(?::VARCHAR[])) "
            "OR f.feedback_id IN (SELECT unnest(?::VARCHAR[])) "
            "GROUP BY f.feedback_id ORDER BY timestamp, f.feedback_id",
            [
                session_id,
                sorted({*shown, *resolved.trace_ids}),
                list(resolved.feedback_ids),
            ],
        ).df()
        if labels and len(signals):
            latest = (
                "arg_max(label, ds)"
                if "ds" in _columns(conn, "feedback_clusters")
                else ("any_value(label)")
            )
            label_rows = conn.execute(
                f"SELECT cluster_id, {latest} FROM feedback_clusters GROUP BY cluster_id"
            ).fetchall()
            names = {int(c): str(label) for c, label in label_rows if c is not None}
            signals["cluster_label"] = [
                names.get(int(c)) if pd.notna(c) else None for c in signals["cluster_id"]
            ]
    by_trace: dict[str, list[Signal]] = {}
    orphans: list[Signal] = []
    trace_ids = set(traces["trace_id"]) if len(traces) else set()
    for row in signals.to_dict("records"):
        signal = Signal(
            feedback_id=row["feedback_id"],
            timestamp=_clean(row["timestamp"]),
            kind=row["kind"],
            reason=_clean(row["reason"]),
            score=_clean(row["score"]),
            comment=_clean(row["comment"]),
            correction=_clean(row["correction"]),
            is_negative=_clean(row["is_negative"]),
            cluster_id=int(row["cluster_id"])
            if _clean(row.get("cluster_id")) is not None
            else None,
            cluster_label=_clean(row.get("cluster_label")),
        )
        if row["trace_id"] in trace_ids:
            by_trace.setdefault(row["trace_id"], []).append(signal)
        else:
            orphans.append(signal)
    turns = [
        Turn(
            index=i + 1,
            trace_id=row["trace_id"],
            timestamp=_clean(row["timestamp"]),
            model_version=_clean(row["model_version"]),
            prompt_version=_clean(row["prompt_version"]),
            request=_clean(row["request"]),
            response=_clean(row["response"]),
            latency_ms=_clean(row["latency_ms"]),
            input_tokens=_clean(row["input_tokens"]),
            output_tokens=_clean(row["output_tokens"]),
            abandoned=_clean(row["abandoned"]),
            regenerations=_clean(row["regenerations"]),
            user_role=_clean(row["user_role"]),
            signals=by_trace.get(row["trace_id"], []),
        )
        for i, row in enumerate(traces.to_dict("records"))
    ]
    user = None
    if len(traces):
        user = (
            _clean(traces["user_id"].dropna().iloc[0]) if traces["user_id"].notna().any() else None
        )
    elif len(signals):
        user = (
            _clean(signals["user_id"].dropna().iloc[0])
            if signals["user_id"].notna().any()
            else None
        )
    return Session(session_id, what, user, turns, orphans)


def _columns(conn: duckdb.DuckDBPyConnection, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table]
    ).fetchall()
    return {r[0] for r in rows}


def _short(text: str | None, width: int | None) -> str:
    if not text:
        return ""
    one = " ".join(str(text).split())
    return one if width is None or len(one) <= width else one[: width - 1] + "…"


def _signal_line(s: Signal, width: int | None) -> str:
    parts = [s.kind]
    if s.score is not None:
        parts.append(f"score {s.score:g}")
    if s.reason:
        parts.append(f"({s.reason})")
    if s.cluster_id is not None:
        label = f" {s.cluster_label}" if s.cluster_label else ""
        parts.append(f"[cluster {s.cluster_id}{label}]")
    line = f"    {'-' if s.is_negative else '+'} {' '.join(parts)}  {s.feedback_id}"
    if s.timestamp:
        line += f"  {s.timestamp[:19]}"
    if s.comment:
        line += f"\n        comment: {_short(s.comment, width)}"
    if s.correction:
        line += f"\n        correction: {_short(s.correction, width)}"
    return line


def render_session(session: Session, width: int | None = 160) -> str:
    """The session as text for a terminal; `width=None` prints texts in full."""
    if session.session_id is None:
        head = "no session: " + (
            f"trace {session.turns[0].trace_id} alone"
            if session.turns
            else "feedback on a trace not in the warehouse"
        )
    else:
        head = f"session {session.session_id}"
    lines = [
        head
        + (f" (found by {session.resolved_from} id)" if session.resolved_from != "session" else "")
        + (f"  user {session.user_id}" if session.user_id else "")
        + f"  {len(session.turns)} turns, "
        f"{sum(len(t.signals) for t in session.turns) + len(session.orphan_signals)} feedback"
    ]
    for turn in session.turns:
        head = [f"turn {turn.index}", turn.timestamp[:19] if turn.timestamp else "?"]
        head.append(f"{turn.model_version or '?'} / prompt {turn.prompt_version or '?'}")
        if turn.latency_ms is not None:
            head.append(f"{turn.latency_ms:,.0f} ms")
        if turn.input_tokens is not None or turn.output_tokens is not None:
            head.append(f"{turn.input_tokens or 0}->{turn.output_tokens or 0} tokens")
        if turn.regenerations:
            head.append(f"regenerated x{turn.regenerations}")
        if turn.abandoned:
            head.append("ABANDONED after this answer")
        lines.append("")
        lines.append("  " + " | ".join(head) + f"  trace {turn.trace_id}")
        lines.append(f"    user: {_short(turn.request, width)}")
        lines.append(f"    assistant: {_short(turn.response, width)}")
        lines.extend(_signal_line(s, width) for s in turn.signals)
    if session.orphan_signals:
        lines.append("")
        lines.append("  feedback on traces not in the warehouse:")
        lines.extend(_signal_line(s, width) for s in session.orphan_signals)
    return "\n".join(lines)


def session_json(session: Session) -> str:
    """The session as JSON (for scripts)."""
    return json.dumps(session.to_dict(), indent=2, ensure_ascii=False, default=str)
