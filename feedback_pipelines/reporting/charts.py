"""Inline SVG charts for the report, drawn in Python: no JavaScript, no fonts, no network.

A report is opened from a mail attachment, a shared drive or a phone, often offline, and printed:
so every chart is a small static SVG inside the page, sized by its viewBox so it scales with the
screen, with a <title> that screen readers announce. Every piece of text that reaches a chart
(version names, cluster labels) comes from input data and is escaped here; the functions return
`Markup` only after escaping, so templates can place them without `|safe` on untrusted text.

Colours are the Okabe–Ito palette, which stays distinguishable under the common colour-vision
deficiencies; series also differ by dash pattern, so a chart reads in grey print too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup, escape

# Okabe–Ito, without yellow (too faint on white) and black (kept for axes and text).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "1 2", "10 4")
WORSE = "#D55E00"  # vermillion
BETTER = "#0072B2"  # blue
NEUTRAL = "#6b7280"
AXIS = "#9ca3af"
GRID = "#e5e7eb"
TEXT = "#374151"


def colour(index: int) -> str:
    """The palette colour of the index-th series (wraps around)."""
    return PALETTE[index % len(PALETTE)]


def dash(index: int) -> str:
    """The dash pattern of the index-th series, so series differ without colour too."""
    return DASHES[index % len(DASHES)]


@dataclass
class TrendSeries:
    """One line of a trend chart: a value per day, with an optional interval band.

    Attributes:
        name: Legend name (untrusted text; escaped when drawn).
        values: One value per day of the chart (None = no data that day).
        lows: Lower ends of the interval, aligned with values (None = no band that day).
        highs: Upper ends of the interval, aligned with values.
        index: Palette and dash index.
    """

    name: str
    values: list[float | None]
    lows: list[float | None] = field(default_factory=list)
    highs: list[float | None] = field(default_factory=list)
    index: int = 0


def _f(x: float) -> str:
    """A coordinate with one decimal: short SVG, stable output."""
    return f"{x:.1f}"


def _ok(v: float | None) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))


def _nice_max(value: float, as_rate: bool) -> float:
    """A round upper bound for an axis (for rates: the next 5 or 10 percent, at most 100%)."""
    if value <= 0:
        return 1.0 if not as_rate else 0.1
    if as_rate:  # the same steps as the gridlines, so every gridline is a round percent
        step = 0.05 if value <= 0.3 else 0.1 if value <= 0.6 else 0.2
        return round(min(1.0, math.ceil(value / step - 1e-9) * step), 4)
    magnitude = 10 ** math.floor(math.log10(value))
    for m in (1, 2, 2.5, 5, 10):
        if value <= m * magnitude:
            return m * magnitude
    return 10 * magnitude


def _fmt_tick(value: float, as_rate: bool) -> str:
    if as_rate:
        return f"{value * 100:.0f}%"
    if value >= 1000:
        return f"{value / 1000:.0f}k" if value % 1000 == 0 else f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _segments(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Split a line where data is missing, so a gap is drawn as a gap, not a false slope."""
    runs: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if r]


def trend_chart(
    days: Sequence[date],
    series: Sequence[TrendSeries],
    *,
    title: str,
    as_rate: bool = True,
    width: int = 960,
    height: int = 300,
    variant: str = "",
) -> Markup:
    """A line chart over days, one line per series, with shaded interval bands.

    Args:
        days: The x axis, oldest first.
        series: Lines to draw; values aligned with days.
        title: Accessible title (what the chart shows, in words).
        as_rate: Values are shares (0..1): the axis is in percent.
        width: viewBox width (the chart scales to its container).
        height: viewBox height.
        variant: Extra CSS class ("wide" / "narrow"): a page carries both and shows the one
            that fits the screen, so labels keep a readable size on a phone without script.

    Returns:
        The SVG, safe to place in a template.
    """
    left, right, top, bottom = 48.0, 24.0, 12.0, 30.0
    plot_w, plot_h = width - left - right, height - top - bottom
    highest = 0.0
    for s in series:
        for v in [*s.values, *s.highs]:
            if _ok(v):
                highest = max(highest, float(v))  # type: ignore[arg-type]
    y_max = _nice_max(highest, as_rate)
    n = len(days)

    def x_at(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y_at(v: float) -> float:
        return top + plot_h * (1 - min(max(v / y_max, 0.0), 1.0))

    parts = [
        f'<svg class="chart trend {variant}" viewBox="0 0 {width} {height}" role="img"'
        f' preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    # Round gridlines: every 5 or 10 (or 20) percent for rates, quarters of a round max else.
    if as_rate:
        step = 0.05 if y_max <= 0.3 else 0.1 if y_max <= 0.6 else 0.2
        ticks = max(1, round(y_max / step))
    else:
        ticks = 4
    for t in range(ticks + 1):
        v = y_max * t / ticks
        y = y_at(v)
        parts.append(
            f'<line x1="{_f(left)}" y1="{_f(y)}" x2="{_f(width - right)}" y2="{_f(y)}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_f(left - 6)}" y="{_f(y + 4)}" text-anchor="end" font-size="13" '
            f'fill="{TEXT}">{_fmt_tick(v, as_rate)}</text>'
        )
    step = max(1, math.ceil(n / max(3, width // 120)))
    for i, d in enumerate(days):
        if i % step and i != n - 1:
            continue
        if i != n - 1 and n - 1 - i < step / 2:
            continue  # keep the last label from colliding with its neighbour
        parts.append(
            f'<text x="{_f(x_at(i))}" y="{_f(height - 8)}" text-anchor="middle" font-size="13" '
            f'fill="{TEXT}">{d.strftime("%b %d").replace(" 0", " ")}</text>'
        )
    parts.append(
        f'<line x1="{_f(left)}" y1="{_f(top + plot_h)}" x2="{_f(width - right)}" '
        f'y2="{_f(top + plot_h)}" stroke="{AXIS}" stroke-width="1"/>'
    )
    for s in series:
        c = colour(s.index)
        lows = s.lows or [None] * n
        highs = s.highs or [None] * n
        band = [
            (x_at(i), y_at(float(lo)), y_at(float(hi)))  # type: ignore[arg-type]
            for i, (lo, hi) in enumerate(zip(lows, highs, strict=False))
            if _ok(lo) and _ok(hi)
        ]
        if len(band) >= 2:
            upper = " ".join(f"{_f(x)},{_f(yh)}" for x, _, yh in band)
            lower = " ".join(f"{_f(x)},{_f(yl)}" for x, yl, _ in reversed(band))
            parts.append(
                f'<polygon class="band" points="{upper} {lower}" fill="{c}" fill-opacity="0.14" '
                'stroke="none"/>'
            )
        points = [
            (x_at(i), y_at(float(v))) if _ok(v) else None  # type: ignore[arg-type]
            for i, v in enumerate(s.values)
        ]
        for run in _segments(points):
            d_attr = f' stroke-dasharray="{dash(s.index)}"' if dash(s.index) else ""
            if len(run) > 1:
                parts.append(
                    f'<polyline points="{" ".join(f"{_f(x)},{_f(y)}" for x, y in run)}" '
                    f'fill="none" stroke="{c}" stroke-width="2.2" stroke-linejoin="round"'
                    f"{d_attr}/>"
                )
        for i, p in enumerate(points):
            if p is None:
                continue
            value = s.values[i]
            label = f"{s.name}, {days[i].isoformat()}: " + (
                f"{float(value) * 100:.1f}%" if as_rate else f"{float(value):,.0f}"  # type: ignore[arg-type]
            )
            parts.append(
                f'<circle cx="{_f(p[0])}" cy="{_f(p[1])}" r="3" fill="{c}">'
                f"<title>{escape(label)}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(
    values: Sequence[float | None],
    *,
    title: str,
    width: int = 120,
    height: int = 28,
    highlight_last: bool = True,
) -> Markup:
    """A tiny line of daily values (a cluster's volume over the window), with the last day dotted.

    Args:
        values: One value per day, oldest first (None = no data).
        title: Accessible title.
        width: viewBox width.
        height: viewBox height.
        highlight_last: Mark the latest value with a dot.

    Returns:
        The SVG, safe to place in a template.
    """
    pad = 3.0
    clean = [float(v) for v in values if _ok(v)]  # type: ignore[arg-type]
    top_v = max(clean) if clean else 1.0
    top_v = top_v or 1.0
    n = len(values)

    def x_at(i: int) -> float:
        return pad + ((width - 2 * pad) * i / (n - 1) if n > 1 else (width - 2 * pad) / 2)

    def y_at(v: float) -> float:
        return pad + (height - 2 * pad) * (1 - v / top_v)

    points = [
        (x_at(i), y_at(float(v))) if _ok(v) else None  # type: ignore[arg-type]
        for i, v in enumerate(values)
    ]
    parts = [
        f'<svg class="chart spark" viewBox="0 0 {width} {height}" role="img"'
        f"><title>{escape(title)}</title>",
        f'<line x1="{_f(pad)}" y1="{_f(height - pad)}" x2="{_f(width - pad)}" '
        f'y2="{_f(height - pad)}" stroke="{GRID}" stroke-width="1"/>',
    ]
    for run in _segments(points):
        if len(run) == 1:
            continue
        area = (
            f"{_f(run[0][0])},{_f(height - pad)} "
            + " ".join(f"{_f(x)},{_f(y)}" for x, y in run)
            + f" {_f(run[-1][0])},{_f(height - pad)}"
        )
        parts.append(f'<polygon points="{area}" fill="{PALETTE[0]}" fill-opacity="0.12"/>')
        parts.append(
            f'<polyline points="{" ".join(f"{_f(x)},{_f(y)}" for x, y in run)}" fill="none" '
            f'stroke="{PALETTE[0]}" stroke-width="1.6" stroke-linejoin="round"/>'
        )
    last = next((p for p in reversed(points) if p is not None), None)
    if highlight_last and last is not None:
        parts.append(f'<circle cx="{_f(last[0])}" cy="{_f(last[1])}" r="2.4" fill="{WORSE}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_bar(
    value: float | None,
    low: float | None,
    high: float | None,
    *,
    title: str,
    scale_max: float = 1.0,
    reference: float | None = None,
    width: int = 160,
    height: int = 16,
    colour_hex: str = PALETTE[0],
) -> Markup:
    """A horizontal meter: the value as a dot, its interval as a whisker, an optional reference.

    Used for a version's negative rate on its scorecard (reference = the baseline's rate).

    Args:
        value: The estimate (a share 0..scale_max).
        low: Lower end of its interval.
        high: Upper end of its interval.
        title: Accessible title.
        scale_max: The right end of the meter.
        reference: A value to mark with a tick (the baseline), if any.
        width: viewBox width.
        height: viewBox height.
        colour_hex: Colour of the dot and whisker.

    Returns:
        The SVG, safe to place in a template.
    """
    pad = 4.0
    mid = height / 2

    def x_at(v: float) -> float:
        return pad + (width - 2 * pad) * min(max(v / scale_max, 0.0), 1.0)

    parts = [
        f'<svg class="chart meter" viewBox="0 0 {width} {height}" role="img"'
        f"><title>{escape(title)}</title>",
        f'<rect x="{_f(pad)}" y="{_f(mid - 3)}" width="{_f(width - 2 * pad)}" height="6" rx="3" '
        f'fill="{GRID}"/>',
    ]
    if _ok(reference):
        xr = x_at(float(reference))  # type: ignore[arg-type]
        parts.append(
            f'<line x1="{_f(xr)}" y1="1" x2="{_f(xr)}" y2="{_f(height - 1)}" stroke="{TEXT}" '
            'stroke-width="1.5"/>'
        )
    if _ok(low) and _ok(high):
        parts.append(
            f'<rect x="{_f(x_at(float(low)))}" y="{_f(mid - 3)}" '  # type: ignore[arg-type]
            f'width="{_f(max(x_at(float(high)) - x_at(float(low)), 1.0))}" height="6" rx="3" '  # type: ignore[arg-type]
            f'fill="{colour_hex}" fill-opacity="0.35"/>'
        )
    if _ok(value):
        parts.append(
            f'<circle cx="{_f(x_at(float(value)))}" cy="{_f(mid)}" r="4.5" '  # type: ignore[arg-type]
            f'fill="{colour_hex}" stroke="#fff" stroke-width="1.2"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def effect_plot(
    delta: float | None,
    low: float | None,
    high: float | None,
    *,
    title: str,
    span: float,
    width: int = 160,
    height: int = 18,
) -> Markup:
    """A one-row forest plot: the change with its interval around a zero line.

    Worse (positive, for rates where higher is worse) is drawn to the right in vermillion,
    better to the left in blue, so the direction reads without the number.

    Args:
        delta: The change (candidate minus baseline).
        low: Lower end of its interval.
        high: Upper end of its interval.
        title: Accessible title.
        span: Half the axis width in the units of delta (shared by the rows of one table).
        width: viewBox width.
        height: viewBox height.

    Returns:
        The SVG, safe to place in a template.
    """
    pad = 5.0
    mid_x = width / 2
    span = span if span and span > 0 else 1.0

    def x_at(v: float) -> float:
        v = max(-span, min(span, v))
        return mid_x + (width / 2 - pad) * v / span

    c = WORSE if _ok(delta) and float(delta) > 0 else BETTER  # type: ignore[arg-type]
    parts = [
        f'<svg class="chart effect" viewBox="0 0 {width} {height}" role="img"'
        f"><title>{escape(title)}</title>",
        f'<line x1="{_f(pad)}" y1="{_f(height / 2)}" x2="{_f(width - pad)}" '
        f'y2="{_f(height / 2)}" stroke="{GRID}" stroke-width="1"/>',
        f'<line x1="{_f(mid_x)}" y1="1" x2="{_f(mid_x)}" y2="{_f(height - 1)}" stroke="{AXIS}" '
        'stroke-width="1" stroke-dasharray="2 2"/>',
    ]
    if _ok(low) and _ok(high):
        x1, x2 = x_at(float(low)), x_at(float(high))  # type: ignore[arg-type]
        parts.append(
            f'<line x1="{_f(x1)}" y1="{_f(height / 2)}" x2="{_f(x2)}" y2="{_f(height / 2)}" '
            f'stroke="{c}" stroke-width="3" stroke-linecap="round"/>'
        )
    if _ok(delta):
        parts.append(
            f'<circle cx="{_f(x_at(float(delta)))}" cy="{_f(height / 2)}" r="4.5" fill="{c}" '  # type: ignore[arg-type]
            'stroke="#fff" stroke-width="1.2"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(
    items: Sequence[tuple[str, float]],
    *,
    title: str,
    width: int = 420,
    bar_height: int = 18,
    colour_hex: str = PALETTE[0],
    value_format: str = "{:,.0f}",
) -> Markup:
    """Horizontal bars with their labels and values (quarantine reasons, review reasons).

    Args:
        items: (label, value) pairs, drawn in the given order.
        title: Accessible title.
        width: viewBox width.
        bar_height: Height of one bar row.
        colour_hex: Bar colour.
        value_format: Format of the value printed after each bar.

    Returns:
        The SVG, safe to place in a template.
    """
    gap = 6
    value_w = 12.0 + 7.5 * max((len(value_format.format(v)) for _, v in items), default=1)
    # Room for the longest (shortened) label at ~7px a character, so none is cut at the left.
    label_w = 14.0 + 7.0 * max((min(len(label), 24) for label, _ in items), default=4)
    row = bar_height + gap
    height = max(row * len(items), row)
    top_v = max((v for _, v in items), default=1.0) or 1.0
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {width} {height}" role="img"'
        f"><title>{escape(title)}</title>"
    ]
    for i, (label, value) in enumerate(items):
        y = i * row
        w = (width - label_w - value_w) * (value / top_v)
        short = label if len(label) <= 24 else label[:23] + "…"
        parts.append(
            f'<text x="{_f(label_w - 8)}" y="{_f(y + bar_height * 0.72)}" text-anchor="end" '
            f'font-size="12" fill="{TEXT}">{escape(short)}<title>{escape(label)}</title></text>'
        )
        parts.append(
            f'<rect x="{_f(label_w)}" y="{_f(y)}" width="{_f(max(w, 1.0))}" '
            f'height="{bar_height}" rx="3" fill="{colour_hex}"/>'
        )
        parts.append(
            f'<text x="{_f(label_w + max(w, 1.0) + 6)}" y="{_f(y + bar_height * 0.72)}" '
            f'font-size="12" fill="{TEXT}">{escape(value_format.format(value))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
