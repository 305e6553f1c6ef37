"""How numbers are written for people: rates, latencies, changes, intervals, q-values and days.

One place for the wording, shared by the report and by the regression sentences that checks and
logs print, so "31% (27–35%)" or "+17 points" read the same everywhere.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd


def _nan(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    try:
        return bool(isinstance(value, float | np.floating) and math.isnan(value))
    except TypeError:
        return False


def fmt_int(value: object) -> str:
    """1234 -> "1,234"; missing -> "—"."""
    return "—" if _nan(value) else f"{int(value):,}"  # type: ignore[call-overload]


def fmt_pct(value: object) -> str:
    """A share as percent: whole percent from 10%, one decimal below (4.2%), "—" if missing."""
    if _nan(value):
        return "—"
    v = float(value) * 100  # type: ignore[arg-type]
    if v != 0 and abs(v) < 10:
        return f"{v:.1f}%"
    return f"{v:.0f}%"


def fmt_pct_interval(value: object, low: object, high: object) -> str:
    """A share with its interval, "31% (27–35%)"; just the value without an interval."""
    if _nan(value):
        return "—"
    if _nan(low) or _nan(high):
        return fmt_pct(value)
    return f"{fmt_pct(value)} ({fmt_pct(low).rstrip('%')}–{fmt_pct(high)})"


def fmt_ms(value: object) -> str:
    """Latency: "850 ms" or "2.4 s"."""
    if _nan(value):
        return "—"
    v = float(value)  # type: ignore[arg-type]
    return f"{v / 1000:.1f} s" if v >= 1000 else f"{v:.0f} ms"


def fmt_points(value: object, signed: bool = True) -> str:
    """A change of rate in percentage points: "+17 points", "−0.4 points"."""
    if _nan(value):
        return "—"
    v = float(value) * 100  # type: ignore[arg-type]
    text = f"{abs(v):.1f}" if abs(v) < 10 else f"{abs(v):.0f}"
    sign = ("+" if v > 0 else "−" if v < 0 else "±") if signed else ""
    return f"{sign}{text} points"


def fmt_effect(metric: str, value: object) -> str:
    """A change in the metric's own unit."""
    if metric == "latency_p95":
        if _nan(value):
            return "—"
        v = float(value)  # type: ignore[arg-type]
        return f"{'+' if v > 0 else '−' if v < 0 else '±'}{fmt_ms(abs(v))}"
    return fmt_points(value)


def fmt_delta(metric: str, delta: float) -> str:
    """A change at a fixed precision, for notes and logs: "+12.3 points", "-40 ms"."""
    if metric == "latency_p95":
        return f"{delta:+.0f} ms"
    return f"{delta * 100:+.1f} points"


def fmt_interval(metric: str, low: object, high: object) -> str:
    """An interval of change with its unit once: "+12 to +22 points", "+420 to +780 ms"."""
    lo, hi = fmt_effect(metric, low), fmt_effect(metric, high)
    for unit in (" points", " ms", " s"):
        if lo.endswith(unit) and hi.endswith(unit):
            return f"{lo[: -len(unit)]} to {hi}"
    return f"{lo} to {hi}"


def fmt_value(metric: str, value: object) -> str:
    """A metric's level in its own unit (rate in percent, latency in ms/s)."""
    return fmt_ms(value) if metric == "latency_p95" else fmt_pct(value)


def q_words(q: object) -> tuple[str, str]:
    """A q-value in digits and in words, for readers who do not know what a q-value is.

    The words follow the usual reading of a false-discovery-adjusted p-value: under 0.001
    "very likely real", under 0.01 "likely real", under 0.05 "probably real", under 0.2
    "could be chance", else "no evidence of a change".
    """
    if _nan(q):
        return "not tested", "not enough data to test"
    v = float(q)  # type: ignore[arg-type]
    text = "q < 0.001" if v < 0.001 else f"q = {v:.3f}" if v < 0.01 else f"q = {v:.2f}"
    if v < 0.001:
        words = "very likely real"
    elif v < 0.01:
        words = "likely real"
    elif v < 0.05:
        words = "probably real"
    elif v < 0.2:
        words = "could be chance"
    else:
        words = "no evidence of a change"
    return text, words


def fmt_day(d: date) -> str:
    """A day as people write it: "Fri 20 Nov 2026"."""
    return f"{d.strftime('%a')} {d.day} {d.strftime('%b %Y')}"


def fmt_release_day(release: date, day: date) -> str:
    """Which day of a release `day` is, as people count (the release day is day 1)."""
    released = fmt_day(release).rsplit(" ", 1)[0]
    return f"day {(day - release).days + 1} of the release (released {released})"


def period_text(kind: str, start: date, end: date) -> str:
    """The period in words: "Fri 20 Nov 2026", or "Mon 9 Nov – Sun 15 Nov 2026 (week 46)"."""
    if kind == "weekly" or start != end:
        week = end.isocalendar()
        return (
            f"{start.strftime('%a')} {start.day} {start.strftime('%b')} – {fmt_day(end)} "
            f"(week {week.week})"
        )
    return fmt_day(end)
