"""A finding over time: since when it has been flagged, whether it grew, what stopped being flagged.

The regression stage writes one `version_regressions` row per comparison per day. A comparison is
the same from day to day when its key is (dimension, model_version, candidate, baseline, metric,
scope, cluster_id, topic_id): these functions follow a key back through earlier days. When the
stage itself records since when a flag holds (`flag_since`), that wins; otherwise the streak is
derived: the finding has been flagged since the earliest day of an unbroken run of days (days the
stage ran) on which the same key was flagged in the same direction. Days the stage did not run do
not break a run; a day it ran without flagging the key does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from feedback_pipelines.formatting import _nan, fmt_day
from feedback_pipelines.reporting.load import REGRESSION_KEY
from feedback_pipelines.reporting.text import to_date

FLAG = {"worse": "is_regression", "better": "is_improvement"}


def _norm(value: object) -> object:
    """One spelling per value: NaN/None/"" -> None, 3.0 and numpy 3 -> 3."""
    if _nan(value) or (isinstance(value, str) and value == ""):
        return None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return int(value)
    return value


def row_key(row: Any) -> tuple:
    """The comparison a version_regressions row (a namedtuple or a dict) is about."""
    get = row.get if isinstance(row, dict) else (lambda c, d=None: getattr(row, c, d))
    key = [_norm(get(c, None)) for c in REGRESSION_KEY]
    # A missing dimension is the model version (older rows did not write one).
    if key[0] is None:
        key[0] = "model_version"
    # Each comparison has a window row and an always-valid row a day: two histories.
    key.append(row_family(get("test", None)))
    return tuple(key)


def row_family(test: object) -> str:
    """Which kind of row this is: `always_valid` rows carry the alert, `window` rows do not."""
    return "always_valid" if str(test or "").startswith("always_valid") else "window"


def _flag(row: Any, column: str) -> bool:
    value = getattr(row, column, None)
    return False if _nan(value) else bool(value)


@dataclass
class PastRow:
    """What history holds of one comparison on one earlier day."""

    day: date
    delta: float | None
    worse: bool
    better: bool


@dataclass
class History:
    """Earlier days of every comparison, indexed for the questions a report asks."""

    days: list[date]  # days the stage wrote rows (flagged or not), newest first
    rows: dict[tuple, dict[date, PastRow]]  # key -> day -> row
    previous_day: date | None  # the latest day before the report's day with any row
    complete_days: set[date]  # days whose every row is in `rows` (not only flagged ones)

    @classmethod
    def empty(cls) -> History:
        """No earlier day."""
        return cls([], {}, None, set())

    def since(self, key: tuple, direction: str, today: date) -> tuple[date, bool]:
        """The first day of the unbroken run of days flagging `key`, and whether it is exact.

        Returns (today, True) for a finding new today. The second value is False when the run
        reaches the oldest day read (it may have started earlier).
        """
        since = today
        for day in self.days:
            past = self.rows.get(key, {}).get(day)
            if past is None or not (past.worse if direction == "worse" else past.better):
                return since, True
            since = day
        return since, not self.days or since != self.days[-1]

    def previous(self, key: tuple) -> PastRow | None:
        """The comparison's row on the previous day the stage ran, if any."""
        if self.previous_day is None:
            return None
        return self.rows.get(key, {}).get(self.previous_day)

    def flagged_on_previous_day(self, direction: str) -> list[tuple[tuple, PastRow]]:
        """Comparisons flagged (in that direction) on the previous day the stage ran."""
        if self.previous_day is None:
            return []
        out = []
        for key, by_day in self.rows.items():
            past = by_day.get(self.previous_day)
            if past is not None and (past.worse if direction == "worse" else past.better):
                out.append((key, past))
        return out


def read_history(history: pd.DataFrame | None, today: date) -> History:
    """Index the `regression_history` frame that `load` reads (column `day` + the key)."""
    if history is None or history.empty or "day" not in history:
        return History.empty()
    frame = history.copy()
    frame["hday"] = frame["day"].map(to_date)
    frame = frame[frame["hday"].notna() & (frame["hday"] < today)]
    rows: dict[tuple, dict[date, PastRow]] = {}
    for row in frame.itertuples(index=False):
        delta = getattr(row, "delta", None)
        rows.setdefault(row_key(row), {})[row.hday] = PastRow(
            day=row.hday,
            delta=None if _nan(delta) else float(delta),
            worse=_flag(row, "is_regression"),
            better=_flag(row, "is_improvement"),
        )
    days = sorted(set(frame["hday"]), reverse=True)
    previous = days[0] if days else None
    return History(days, rows, previous, {previous} if previous else set())


def with_stage_days(history: History, stage_days: list[date] | None) -> History:
    """Use the days the stage ran (any row), so a day without a flag breaks a run."""
    if stage_days:
        history.days = sorted(set(history.days) | set(stage_days), reverse=True)
    return history


def since_text(since: date, today: date, exact: bool, daily: bool) -> str:
    """How long a finding has been flagged: "new today", "day 3, since Wed 18 Nov"."""
    if since >= today:
        return "new today" if daily else f"new on {fmt_day(today)}"
    n = (today - since).days + 1
    when = fmt_day(since).rsplit(" ", 1)[0] if since.year == today.year else fmt_day(since)
    return f"day {n}, since {when}" if exact else f"day {n} or more, since {when} at least"


def trend_words(
    direction: str, delta: float | None, previous: PastRow | None, unit: str
) -> tuple[str, str]:
    """Whether a finding grew since the previous day's row of the same comparison.

    Returns (key, text): key "growing", "shrinking" or "steady" ("" with no earlier row).
    A change moved when it moved by a tenth of itself and at least a point (a rate) or 20 ms
    (a latency): day-to-day noise of a fraction of a point is "steady".
    """
    from feedback_pipelines.formatting import fmt_effect

    if previous is None or previous.delta is None or delta is None:
        return "", ""
    now, before = abs(delta), abs(previous.delta)
    same_side = (delta > 0) == (previous.delta > 0) or previous.delta == 0
    floor = 20.0 if unit == "latency_p95" else 0.01
    moved = abs(now - before) >= max(floor, 0.1 * max(now, before))
    if not same_side:
        key = "growing"
    elif not moved:
        key = "steady"
    else:
        key = "growing" if now > before else "shrinking"
    flagged = previous.worse if direction == "worse" else previous.better
    was = fmt_effect(unit, previous.delta) + ("" if flagged else " (not flagged)")
    when = fmt_day(previous.day).rsplit(" ", 1)[0]
    text = {
        "growing": f"growing: {fmt_effect(unit, delta)}, was {was} on {when}",
        "shrinking": f"shrinking: {fmt_effect(unit, delta)}, was {was} on {when}",
        "steady": f"steady: {fmt_effect(unit, delta)}, was {was} on {when}",
    }[key]
    return key, text
