"""The report's charts, written as SVG by hand: lines over time, bars, ranked bars and stacked
bars, with nice axis ticks and a tooltip on every point.

No charting library: matplotlib, tried first, took 0.3-1 s per chart here, and a report has
about fifty charts (three weekly charts for each week one can choose); plotly's inlined
JavaScript alone is several megabytes. These charts take microseconds, weigh a few kilobytes,
need nothing fetched, and are plain SVG a browser draws with its own sans-serif font.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date
from html import escape
from typing import Any

W, H = 640.0, 280.0
LEFT, RIGHT, TOP, BOTTOM = 64.0, 20.0, 14.0, 46.0
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896"]  # fmt: skip


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 times a power of ten) covering [low, high]."""
    if high <= low:
        high = low + 1
    raw = (high - low) / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks, value = [], first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _num(value: float) -> str:
    if abs(value) >= 10_000:
        return f"{value / 1000:,.0f}k"
    if value == int(value):
        return f"{value:,.0f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _svg(label: str, body: list[str], height: float = H) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {W:.0f} {height:.0f}" width="100%" role="img" '
        f'aria-label="{escape(label, quote=True)}" font-family="sans-serif" font-size="11">'
        + "".join(body)
        + "</svg>"
    )


class _Axis:
    """A linear (or base-10 logarithmic) scale from data values to y pixels."""

    def __init__(self, values: Sequence[float], top: float, bottom: float, log: bool = False):
        self.log, self.top, self.bottom = log, top, bottom
        finite = [v for v in values if v is not None and (v > 0 or not log)]
        if log:
            hi = max(finite, default=1.0)
            self.ticks = [10.0**e for e in range(0, math.ceil(math.log10(max(hi, 1))) + 1)]
            self.ticks = self.ticks if len(self.ticks) > 1 else [1.0, 10.0]
        else:
            self.ticks = nice_ticks(min(0.0, *finite) if finite else 0.0, max(finite, default=1.0))
        self.low, self.high = self._t(self.ticks[0]), self._t(self.ticks[-1])
        if log:  # room below the first tick, so that a count of 1 still shows as a bar
            self.low -= 0.3

    def _t(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def y(self, v: float) -> float:
        t = self._t(max(v, 10**self.low) if self.log else v)
        return self.bottom - (t - self.low) / (self.high - self.low) * (self.bottom - self.top)

    def draw(self, x: float, title: str, right: bool = False) -> list[str]:
        out = []
        anchor, dx = ("start", 6) if right else ("end", -6)
        for t in self.ticks:
            y = self.y(t)
            if not right:
                out.append(
                    f'<line x1="{LEFT}" x2="{W - RIGHT}" '
                    f'y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4e4"/>'
                )
            out.append(
                f'<text x="{x + dx:.1f}" y="{y + 4:.1f}" '
                f'text-anchor="{anchor}" fill="#555">{_num(t)}</text>'
            )
        tx = W - 6 if right else 12
        mid = (self.top + self.bottom) / 2
        out.append(
            f'<text transform="translate({tx},{mid:.0f}) rotate(-90)" text-anchor="middle" '
            f'fill="#333">{escape(title)}</text>'
        )
        return out


def _x_dates(x: Sequence[date], left: float, right: float) -> tuple[list[float], list[str]]:
    """x pixels of the dates, and about six date labels along the axis."""
    lo, hi = x[0].toordinal(), x[-1].toordinal()
    span = max(hi - lo, 1)
    xs = [left + (d.toordinal() - lo) / span * (right - left) for d in x]
    step = max(1, math.ceil(len(x) / 6))
    labels = [
        f'<text x="{xs[i]:.1f}" y="{H - BOTTOM + 16:.1f}" text-anchor="middle" fill="#555">'
        f"{x[i].isoformat()}</text>"
        for i in range(0, len(x), step)
    ]
    return xs, labels


def _frame(bottom: float = H - BOTTOM) -> str:
    return f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{bottom}" y2="{bottom}" stroke="#888"/>'


def _line(
    xs: list[float], ys: list[float | None], axis: _Axis, color: str, x: Sequence[Any], name: str
) -> list[str]:
    out: list[str] = []
    run: list[tuple[float, float]] = []
    for px, v in zip(xs, ys):
        if v is None:
            if len(run) > 1:
                out.append(_polyline(run, color))
            run = []
            continue
        run.append((px, axis.y(float(v))))
    if len(run) > 1:
        out.append(_polyline(run, color))
    for px, v, when in zip(xs, ys, x):
        if v is not None:
            out.append(
                f'<circle cx="{px:.1f}" cy="{axis.y(float(v)):.1f}" r="2.2" fill="{color}">'
                f"<title>{when}: {escape(name)} {float(v):,.2f}</title></circle>"
            )
    return out


def _polyline(points: list[tuple[float, float]], color: str) -> str:
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    return f'<polyline points="{text}" fill="none" stroke="{color}" stroke-width="1.8"/>'


def time_series(
    title: str, x: Sequence[date], series: dict[str, Sequence[float | None]], unit: str
) -> str:
    """Lines over time, one per series."""
    values = [float(v) for s in series.values() for v in s if v is not None]
    axis = _Axis(values, TOP, H - BOTTOM)
    xs, labels = _x_dates(x, LEFT + 8, W - RIGHT - 8)
    body = [*axis.draw(LEFT, unit), _frame(), *labels]
    for i, (name, ys) in enumerate(series.items()):
        body += _line(xs, list(ys), axis, PALETTE[i % len(PALETTE)], x, name)
    return _svg(title, body)


def bars_and_line(
    title: str,
    x: Sequence[date],
    bars: tuple[str, Sequence[float]],
    line: tuple[str, Sequence[float | None]],
    width_days: float,
) -> str:
    """Bars (a count) on the left axis and a line (an average) on the right one."""
    right_margin = 64.0
    left_axis = _Axis([float(v) for v in bars[1]], TOP, H - BOTTOM)
    right_axis = _Axis([float(v) for v in line[1] if v is not None], TOP, H - BOTTOM)
    xs, labels = _x_dates(x, LEFT + 8, W - right_margin - 8)
    span = max(x[-1].toordinal() - x[0].toordinal(), 1)
    bar_w = max(1.0, width_days / span * (W - right_margin - LEFT - 16))
    body = [*left_axis.draw(LEFT, bars[0]), _frame(), *labels]
    for px, v, when in zip(xs, bars[1], x):
        y = left_axis.y(float(v))
        body.append(
            f'<rect x="{px - bar_w / 2:.1f}" y="{y:.1f}" width="{bar_w:.1f}" '
            f'height="{H - BOTTOM - y:.1f}" fill="#c6dbef"><title>{when}: {escape(bars[0])} '
            f"{float(v):,.0f}</title></rect>"
        )
    body += right_axis.draw(W - right_margin, line[0], right=True)
    body += _line(xs, list(line[1]), right_axis, PALETTE[0], x, line[0])
    return _svg(title, body)


def ranked_bars(title: str, labels: Sequence[str], values: Sequence[float], unit: str) -> str:
    """Horizontal bars, the first label on top, the value at each bar's end."""
    row, left = 22.0, 230.0
    height = TOP + row * len(labels) + 36
    top_value = max((float(v) for v in values), default=1.0) or 1.0
    width = W - left - 70
    body = []
    for i, (label, v) in enumerate(zip(labels, values)):
        y = TOP + i * row
        length = float(v) / top_value * width
        text = escape(_short(label, 34))
        body.append(
            f'<text x="{left - 6}" y="{y + 15:.1f}" text-anchor="end" fill="#333">{text}'
            f"<title>{escape(label)}</title></text>"
            f'<rect x="{left}" y="{y + 3:.1f}" width="{max(length, 1):.1f}" height="{row - 6:.1f}" '
            f'fill="{PALETTE[0]}"><title>{escape(label)}: {float(v):,.2f}</title></rect>'
            f'<text x="{left + length + 4:.1f}" y="{y + 15:.1f}" '
            f'fill="#333">{_num(float(v))}</text>'
        )
    body.append(
        f'<text x="{left + width / 2:.0f}" y="{height - 10:.0f}" text-anchor="middle" '
        f'fill="#555">{escape(unit)}</text>'
    )
    return _svg(title, body, height)


def histogram(title: str, x: Sequence[int], counts: Sequence[int], xlabel: str, ylabel: str) -> str:
    """Counts per whole number, on a logarithmic scale (a long tail: heavy users are few)."""
    axis = _Axis([float(c) for c in counts], TOP, H - BOTTOM, log=True)
    lo, hi = min(x), max(x)
    slot = (W - RIGHT - LEFT - 16) / (hi - lo + 1)
    body = [*axis.draw(LEFT, ylabel), _frame()]
    for value, count in zip(x, counts):
        px = LEFT + 8 + (value - lo) * slot
        y = axis.y(float(count))
        body.append(
            f'<rect x="{px + slot * 0.1:.1f}" y="{y:.1f}" width="{slot * 0.8:.1f}" '
            f'height="{H - BOTTOM - y:.1f}" fill="{PALETTE[0]}"><title>{value} bookings: '
            f"{count:,} users</title></rect>"
        )
    step = max(1, math.ceil((hi - lo + 1) / 12))
    for value in range(lo, hi + 1, step):
        px = LEFT + 8 + (value - lo + 0.5) * slot
        body.append(
            f'<text x="{px:.1f}" y="{H - BOTTOM + 16:.1f}" '
            f'text-anchor="middle" fill="#555">{value}</text>'
        )
    body.append(
        f'<text x="{(LEFT + W - RIGHT) / 2:.0f}" y="{H - 8:.0f}" text-anchor="middle" '
        f'fill="#333">{escape(xlabel)}</text>'
    )
    return _svg(title, body)


def stacked_bars(
    title: str, categories: Sequence[str], stacks: Mapping[str, Sequence[float]], unit: str
) -> str:
    """One bar per category (a run), stacked by series (a state, a table, a reason); the legend
    on the right."""
    legend_w, height = 170.0, H + 30
    totals = [sum(float(s[i] or 0) for s in stacks.values()) for i in range(len(categories))]
    bottom = height - BOTTOM - 30
    axis = _Axis(totals or [1.0], TOP, bottom)
    right = W - legend_w
    slot = (right - LEFT - 8) / max(len(categories), 1)
    bar = min(slot * 0.7, 48.0)  # a lone run is a bar, not a wall
    body = [line.replace(f'x2="{W - RIGHT}"', f'x2="{right}"') for line in axis.draw(LEFT, unit)]
    body.append(f'<line x1="{LEFT}" x2="{right}" y1="{bottom}" y2="{bottom}" stroke="#888"/>')
    base = [0.0] * len(categories)
    for n, (name, values) in enumerate(stacks.items()):
        color = PALETTE[n % len(PALETTE)]
        for i, v in enumerate(values):
            v = float(v or 0)
            if not v:
                continue
            y0, y1 = axis.y(base[i]), axis.y(base[i] + v)
            body.append(
                f'<rect x="{LEFT + 8 + (i + 0.5) * slot - bar / 2:.1f}" y="{y1:.1f}" '
                f'width="{bar:.1f}" height="{max(y0 - y1, 0.5):.1f}" fill="{color}">'
                f"<title>{escape(categories[i])}: {escape(name)} {v:,.2f}</title></rect>"
            )
            base[i] += v
        ly = TOP + n * 15
        if ly < height - 20:
            body.append(
                f'<rect x="{right + 12}" y="{ly:.0f}" width="10" height="10" fill="{color}"/>'
                f'<text x="{right + 26}" y="{ly + 9:.0f}" '
                f'fill="#333">{escape(_short(name, 24))}</text>'
            )
    for i, category in enumerate(categories):
        px = LEFT + 8 + (i + 0.5) * slot
        body.append(
            f'<text transform="translate({px:.1f},{bottom + 10:.0f}) rotate(-35)" '
            f'text-anchor="end" fill="#555" font-size="9">{escape(_short(category, 18))}</text>'
        )
    return _svg(title, body, height)


def _short(text: str, length: int) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"
