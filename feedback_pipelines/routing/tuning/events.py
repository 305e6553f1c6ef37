"""Feedback events prepared once for every tuning builder: prompts parsed, signals classified.

The builders work on plain dicts (a few thousand per window), each carrying what every later
step needs: the cleaned prompt, the last request, the conversation context, the cluster, and
the gates' verdicts. Sorting by (timestamp, feedback_id) up front makes "keep the earliest"
mean the same thing in every step, and makes every output independent of input order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from feedback_pipelines.routing.tuning import messages as msg
from feedback_pipelines.routing.tuning.settings import TuningSettings


@dataclass
class Event:
    """One feedback event with its prompt, ready for the builders."""

    feedback_id: str
    trace_id: str | None
    session_id: str | None
    timestamp: str
    ds: str
    kind: str
    reason: str | None
    score: float | None
    comment: str | None
    correction: str | None
    response: str | None
    model_version: str | None
    prompt_version: str | None
    user_role: str | None
    is_negative: bool
    cluster_id: int | None
    prompt: list[dict[str, str]]
    request: str
    context: str
    trace_found: bool

    @property
    def is_correction(self) -> bool:
        """A correction event (kind `correction`, or any event carrying a correction text)."""
        return self.kind == "correction" or bool(self.correction and self.correction.strip())

    def signal(self, settings: TuningSettings) -> bool | None:
        """True for a plain liked answer, False for a plain disliked one, None otherwise."""
        if self.kind in settings.liked_kinds:
            return True
        if self.kind in settings.disliked_kinds:
            return False
        if self.kind == "rating" and self.score is not None:
            if self.score >= settings.liked_min_score:
                return True
            if self.score <= settings.disliked_max_score:
                return False
        return None


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return str(value)


def _iso(value: Any) -> str:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%dT%H:%M:%S.%f")
    return str(value)


def _cluster(value: Any) -> int | None:
    if value is None or value is pd.NA:
        return None
    try:
        if math.isnan(float(value)):
            return None
    except (TypeError, ValueError):
        return None
    return int(value)


def _iso_column(events: pd.DataFrame, column: str) -> list[str]:
    """`_iso` of every value of a column; one vectorized format for a datetime column."""
    if column not in events.columns:
        return [""] * len(events)
    values = events[column]
    if pd.api.types.is_datetime64_any_dtype(values) and getattr(values.dt, "tz", None) is None:
        text = values.dt.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return [t if isinstance(t, str) else "" for t in text.tolist()]
    return [_iso(v) for v in values.tolist()]


def _records(events: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows as dicts, like `to_dict("records")` but from column lists (faster at 100k rows).

    Each row also has `_timestamp` and `_ds`: the event's time and day as `_iso` writes them.
    """
    columns = {c: events[c].tolist() for c in events.columns}
    columns["_timestamp"] = _iso_column(events, "timestamp")
    columns["_ds"] = [d[:10] for d in _iso_column(events, "ds")]
    names = list(columns)
    for values in zip(*columns.values(), strict=True):
        yield dict(zip(names, values, strict=True))


def prepare_events(events: pd.DataFrame) -> list[Event]:
    """Events of the window as `Event`s, earliest first.

    Args:
        events: feedback events with their trace's `response` and `messages`, as
            `tuning.day.read_events` reads them (any subset of days), optionally with a
            `cluster_id` column (missing column: clustering unknown).
    """
    has_cluster = "cluster_id" in events.columns
    out = []
    for row in _records(events):
        prompt = msg.parse_messages(row.get("messages"))
        request = msg.last_request(prompt) or (_text(row.get("request")) or "")
        score = row.get("score")
        score = None if score is None or pd.isna(score) else float(score)
        found = row.get("trace_found")
        out.append(
            Event(
                feedback_id=str(row["feedback_id"]),
                trace_id=_text(row.get("trace_id")),
                session_id=_text(row.get("session_id")),
                timestamp=row["_timestamp"],
                ds=row["_ds"],
                kind=str(row.get("kind") or ""),
                reason=_text(row.get("reason")),
                score=score,
                comment=_text(row.get("comment")),
                correction=_text(row.get("correction")),
                response=_text(row.get("response")),
                model_version=_text(row.get("model_version")),
                prompt_version=_text(row.get("prompt_version")),
                user_role=_text(row.get("user_role")),
                is_negative=bool(row.get("is_negative"))
                if row.get("is_negative") is not None and not pd.isna(row.get("is_negative"))
                else False,
                cluster_id=_cluster(row.get("cluster_id")) if has_cluster else None,
                prompt=prompt,
                request=request,
                context=msg.context_key(prompt),
                trace_found=bool(found)
                if found is not None and not pd.isna(found)
                else bool(prompt),
            )
        )
    out.sort(key=lambda e: (e.timestamp, e.feedback_id))
    return out
