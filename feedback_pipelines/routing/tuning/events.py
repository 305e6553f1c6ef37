"""Feedback events prepared once for every tuning builder: prompts parsed, signals classified.

The builders work on plain dicts (a few thousand per window), each carrying what every later
step needs: the cleaned prompt, the last request, the conversation context, the cluster, and
the gates' verdicts. Sorting by (timestamp, feedback_id) up front makes "keep the earliest"
mean the same thing in every step, and makes every output independent of input order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import starmap
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines.routing.tuning import messages as msg
from feedback_pipelines.routing.tuning.settings import TuningSettings


@dataclass(slots=True)
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
    # A side-by-side vote this event is part of: (vote id, chosen trace, rejected trace).
    vote: tuple[str, str, str] | None = None

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
        # numpy's ISO text at microseconds is strftime's "%Y-%m-%dT%H:%M:%S.%f" (years
        # 1000-9999), ~20x faster at a million rows; NaT is "NaT" there.
        text = np.datetime_as_string(values.to_numpy().astype("datetime64[us]"), unit="us")
        return ["" if t == "NaT" else t for t in text.tolist()]
    return [_iso(v) for v in values.tolist()]


def _column(events: pd.DataFrame, name: str) -> list[Any]:
    """A column's values as a list (None for each row when the column is missing)."""
    return events[name].tolist() if name in events.columns else [None] * len(events)


def _texts(values: list[Any]) -> list[str | None]:
    """`_text` of each value (strings, the common case, as they are)."""
    return [v if isinstance(v, str) else _text(v) for v in values]


def _flag(value: Any) -> bool | None:
    """bool(value), or None for a missing value (None, NaN, NA)."""
    return None if value is None or pd.isna(value) else bool(value)


#: Each event's prompt, as `Prompts` returns it, when parsed at reading: `messages` (the
#: parsed prompt), its last request and its context key.
PARSED_COLUMNS = ("messages", "prompt_request", "prompt_context")

#: A side-by-side vote's columns (from the feedback's `metadata.preference`: its `id`, shared
#: by the events of one vote, and the chosen and the rejected trace), as the routing read
#: gives them.
VOTE_COLUMNS = ("vote_id", "chosen_trace_id", "rejected_trace_id")
#: Vote ids of the comparisons a ranking implies (`routing.day.read_rankings`, whose rows say
#: `ranked`); a feedback's own vote id that starts so is read as `vote:` + it.
RANKING = "rank:"


def _interned(values: list[str]) -> list[str]:
    """The values with equal strings as one object (a window's ds, kinds, versions...)."""
    seen: dict[str, str] = {}
    return [seen.setdefault(v, v) for v in values]


def _is_clean(value: Any) -> bool:
    """Whether `msg.parse_messages(value)` would return a list equal to value (no copy needed)."""
    return type(value) is list and all(
        type(m) is dict
        and len(m) == 2
        and type(m.get("role")) is str
        and m["role"] in msg.ROLES
        and type(m.get("content")) is str
        and m["content"].strip()
        for m in value
    )


class Prompts:
    """`messages` value -> (prompt, last request, context key), each distinct value parsed once.

    Equal prompts come out as one list of shared message dicts, whichever text they were
    parsed from: the 210k distinct messages texts of a 3-day window at 100k events a day hold
    only 164k distinct turns (the system prompt is in every one), and parsed one by one they
    held 415 MB. Prompts are never modified, so sharing them is safe. A value that is
    already a clean prompt (what `parse_messages` returns) is kept as it is.
    """

    def __init__(self) -> None:
        self._by_text: dict[str, tuple[list[dict[str, str]], str, str]] = {}
        # id(value) -> (value, result): the value is held so that its id stays its own.
        self._by_id: dict[int, tuple[Any, tuple[list[dict[str, str]], str, str]]] = {}
        # (role, content) -> the first such tuple (keys hold it, not their own copies) and the
        # one message dict of it
        self._turns: dict[tuple[str, str], tuple[tuple[str, str], dict[str, str]]] = {}
        self._prompts: dict[tuple, tuple[list[dict[str, str]], str, str]] = {}

    def __call__(self, value: Any) -> tuple[list[dict[str, str]], str, str]:
        """(prompt, last request, context key) of a messages value (JSON text or list)."""
        if isinstance(value, str):
            found = self._by_text.get(value)
            if found is None:
                found = self._by_text[value] = self._shared(msg.message_turns(value))
            return found
        if value is None:
            return self._shared([])
        held = self._by_id.get(id(value))
        if held is not None and held[0] is value:
            return held[1]
        if _is_clean(value):
            found = self._shared([(m["role"], m["content"]) for m in value], value)
        else:
            found = self._shared(msg.message_turns(value))
        self._by_id[id(value)] = (value, found)
        return found

    def forget_texts(self) -> None:
        """Let go of the texts parsed so far (the prompts stay shared with later ones)."""
        self._by_text.clear()

    def _shared(
        self, turns: list[tuple[str, str]], prompt: list[dict[str, str]] | None = None
    ) -> tuple[list[dict[str, str]], str, str]:
        """The one prompt of these (role, content) turns, with its last request and key.

        Args:
            turns: A parsed prompt's turns (`msg.message_turns`).
            prompt: Someone else's clean prompt of these turns: registered as it is (the
                first time), not copied.
        """
        shared = self._turns
        held = [shared.get(t) or shared.setdefault(t, (t, {"role": t[0], "content": t[1]}))
                for t in turns]  # fmt: skip
        key = tuple(t for t, _ in held)
        found = self._prompts.get(key)
        if found is None:
            if prompt is None:
                prompt = [m for _, m in held]
            found = (prompt, msg.last_request(prompt), msg.context_key(prompt))
            self._prompts[key] = found
        return found


def _votes(events: pd.DataFrame) -> list[tuple[str, str, str] | None]:
    """Each event's side-by-side vote (`VOTE_COLUMNS`), None for most.

    A vote without an id is keyed by its two answers and its time: the events of one vote are
    one vote still.
    """
    ids, chosen, rejected = (_texts(_column(events, c)) for c in VOTE_COLUMNS)
    if not any(chosen):
        return [None] * len(events)
    stamps = _iso_column(events, "timestamp")
    keys = [f"{c}>{r}@{t}" for c, r, t in zip(chosen, rejected, stamps, strict=True)]
    ids = [
        f"vote:{v}" if v and v.startswith(RANKING) and not ranked else v
        for v, ranked in zip(ids, _column(events, "ranked"), strict=True)
    ]
    return [
        (vote or key, c, r) if c and r else None
        for vote, c, r, key in zip(ids, chosen, rejected, keys, strict=True)
    ]


def prepare_events(events: pd.DataFrame) -> list[Event]:
    """Events of the window as `Event`s, earliest first.

    Column by column rather than row by row, and each distinct `messages` value parsed once
    (one trace is judged by several events): a 14-day window holds ~1M events. Events with
    equal prompts share one (never modified) prompt list (`Prompts`).

    Args:
        events: feedback events with their trace's `response` and `messages`, as
            `routing.day.read_window_events` reads them (any subset of days), optionally with a
            `cluster_id` column (missing column: clustering unknown). With the columns
            `PARSED_COLUMNS` (as `day.read_window_events` reads them), `messages` holds
            parsed prompts and the other two their last request and context key: those
            are used as they are.
    """
    n = len(events)
    has_cluster = "cluster_id" in events.columns
    if set(PARSED_COLUMNS) <= set(events.columns):  # parsed when read
        prompts, lasts, contexts = (events[c].tolist() for c in PARSED_COLUMNS)
    else:
        prompt_of = Prompts()
        parsed = [prompt_of(v) for v in _column(events, "messages")]
        prompts, lasts, contexts = ([p[k] for p in parsed] for k in range(3))
        del parsed
    found = [_flag(v) for v in _column(events, "trace_found")]
    text = {
        c: _texts(_column(events, c))
        for c in (
            "trace_id",
            "session_id",
            "reason",
            "comment",
            "correction",
            "response",
            "model_version",
            "prompt_version",
            "user_role",
        )
    }
    # Positional, in `Event`'s field order (one call per event, no keywords).
    out = list(
        starmap(
            Event,
            zip(
                [str(v) for v in events["feedback_id"].tolist()],
                text["trace_id"],
                text["session_id"],
                _iso_column(events, "timestamp"),
                _interned([d[:10] for d in _iso_column(events, "ds")]),
                [str(v or "") for v in _column(events, "kind")],
                text["reason"],
                [None if v is None or pd.isna(v) else float(v) for v in _column(events, "score")],
                text["comment"],
                text["correction"],
                text["response"],
                text["model_version"],
                text["prompt_version"],
                text["user_role"],
                [bool(f) for f in map(_flag, _column(events, "is_negative"))],
                [_cluster(v) for v in events["cluster_id"].tolist()] if has_cluster else [None] * n,
                prompts,
                [last or (r or "") for last, r in zip(lasts, _texts(_column(events, "request")))],
                contexts,
                [bool(p) if f is None else f for p, f in zip(prompts, found, strict=True)],
                _votes(events),
                strict=True,
            ),
        )
    )
    out.sort(key=lambda e: (e.timestamp, e.feedback_id))
    return out
