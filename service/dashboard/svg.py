"""Tiny server-rendered SVG charts (no JavaScript, no CDN): lines and grouped bars.

Charts scale with the page (a viewBox, width 100%); axes carry 1-2-5 ticks; a time
axis reads as clock time; legends wrap onto as many rows as they need. Every mark
carries a class (`pt`, `bar`) so a test can count what was drawn.
"""

from __future__ import annotations

import colorsys
import math
import re
import time
from collections.abc import Mapping, Sequence
from html import escape

# Never given to a series by position: the backbone (the frozen encoder's own slot)
# is always this grey, so no expert is ever mistaken for it.
BACKBONE = "#9ca3af"
PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
W, H = 600, 230
LEFT, RIGHT, TOP, BOTTOM = 52, 14, 38, 40
CHAR_W = 6.5  # average width of an 11px legend character
LEGEND_ROW = 14
TIME_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)


def colors(names: Sequence[str], fixed: Mapping[str, str] | None = None) -> dict[str, str]:
    """A distinct colour per name: `fixed` ones first, then the palette, then hues
    spread by the golden angle (never the backbone's grey, never a repeat)."""
    fixed = fixed or {}
    out: dict[str, str] = {}
    k = 0
    for name in names:
        if name in fixed:
            out[name] = fixed[name]
            continue
        if k < len(PALETTE):
            out[name] = PALETTE[k]
        else:
            hue = ((k - len(PALETTE)) * 0.618034 + 0.05) % 1.0
            r, g, b = colorsys.hls_to_rgb(hue, 0.45, 0.75)
            out[name] = f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"
        k += 1
    return out


def nice_step(span: float, n: int = 5) -> float:
    """The 1, 2 or 5 x 10^k step that cuts `span` into about `n` parts."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / n
    power = 10.0 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if raw <= m * power * 1.0000001:
            return m * power
    return 10 * power


def nice_ticks(lo: float, hi: float, n: int = 5, *, integer: bool = False) -> list[float]:
    """Ticks on multiples of a 1-2-5 step, covering [lo, hi]; whole numbers only for
    counts (`integer`: no 1.5 experts)."""
    if hi <= lo:
        hi = lo + 1.0
    step = nice_step(hi - lo, n)
    if integer:
        step = max(step, 1.0)
    start = math.floor(lo / step + 1e-9) * step
    ticks, t = [], start
    while t < hi - 1e-9 * step:
        ticks.append(t)
        t = start + len(ticks) * step
    ticks.append(t)
    return [round(v, 12) for v in ticks]


def fmt_tick(v: float, step: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 10_000:
        return f"{v / 1000:,.0f}k" if step >= 1000 else f"{v:,.0f}"
    decimals = max(0, -math.floor(math.log10(step) + 1e-9)) if step < 1 else 0
    return f"{v:,.{decimals}f}"


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _legend_rows(names: Sequence[str]) -> list[list[tuple[str, float]]]:
    rows: list[list[tuple[str, float]]] = [[]]
    x = float(LEFT)
    for name in names:
        width = 18 + CHAR_W * len(name)
        if rows[-1] and x + width > W - RIGHT:
            rows.append([])
            x = float(LEFT)
        rows[-1].append((name, x))
        x += width + 8
    return rows if names else []


def _frame(title: str, kind: str, n_series: int, n_marks: int, height: float) -> list[str]:
    return [
        f'<svg class="chart {kind}" data-series="{n_series}" data-marks="{n_marks}" '
        f'viewBox="0 0 {W} {height:.0f}" width="100%" preserveAspectRatio="xMidYMid meet" '
        f'role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="17" class="title">{escape(title)}</text>',
    ]


def _legend(names: Sequence[str], palette: Mapping[str, str], top: float) -> list[str]:
    out = []
    for r, row in enumerate(_legend_rows(names)):
        y = top + r * LEGEND_ROW
        for name, x in row:
            out.append(
                f'<rect x="{x:.0f}" y="{y:.0f}" width="10" height="10" fill="{palette[name]}"/>'
            )
            out.append(
                f'<text x="{x + 14:.0f}" y="{y + 9:.0f}" class="legend">{escape(name)}</text>'
            )
    return out


def _y_axis(ticks: Sequence[float], y: object, unit: str) -> list[str]:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    out = []
    for t in ticks:
        yy = y(t)  # type: ignore[operator]
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(
            f'<text x="{LEFT - 4}" y="{yy + 4:.1f}" class="tick" text-anchor="end">'
            f"{fmt_tick(t, step)}</text>"
        )
    if unit:
        out.append(
            f'<text x="{LEFT - 4}" y="{TOP - 12}" class="tick" text-anchor="end">'
            f"{escape(unit)}</text>"
        )
    return out


def _x_label(x: float, text: str) -> str:
    y = H - BOTTOM + 14
    return f'<text x="{x:.1f}" y="{y}" class="tick" text-anchor="middle">{escape(text)}</text>'


def short_version(label: str) -> str:
    """`v000012 x` -> `v12 x`: the zeros carry nothing on a crowded axis."""
    return re.sub(r"\bv0+(\d)", r"v\1", label)


def time_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
    """Clock-aligned instants (every 1, 2, 5, 10, 15, 30 s, 1, 2, 5 ... min, ...)."""
    span = max(hi - lo, 1.0)
    step = next((s for s in TIME_STEPS if span / s <= n), TIME_STEPS[-1])
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) // step) + 1)]


def _clock(t: float, step: float) -> str:
    return time.strftime("%H:%M:%S" if step < 60 else "%H:%M", time.gmtime(t))


def empty(title: str, message: str) -> str:
    return "\n".join(
        [*_frame(title, "empty", 0, 0, H), f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" '
         f'class="note">{escape(message)}</text>', "</svg>"]
    )  # fmt: skip


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_labels: Mapping[float, str] | None = None,
    x_time: bool = False,
    y_min: float | None = None,
    unit: str = "",
    empty_message: str = "no data yet",
) -> str:
    """Points with a NaN value are gaps (nothing measured), not zeros."""
    points = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not points:
        return empty(title, empty_message)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    if x_time and x_hi - x_lo < 60:  # a fresh page still shows a minute of axis
        x_lo = x_hi - 60
    elif x_hi == x_lo:  # one x: in the middle, not on the axis
        x_lo, x_hi = x_lo - 1, x_hi + 1
    lo = min(ys) if y_min is None else min(y_min, min(ys))
    ticks = nice_ticks(lo, max(ys) if max(ys) > lo else lo + 1.0)
    y_lo, y_hi = ticks[0], ticks[-1]
    legend_rows = len(_legend_rows(list(series)))
    height = H + max(0, legend_rows - 1) * LEGEND_ROW

    def x(v: float) -> float:
        return LEFT + (v - x_lo) / ((x_hi - x_lo) or 1.0) * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (1 - (v - y_lo) / ((y_hi - y_lo) or 1.0)) * (H - TOP - BOTTOM)

    palette = colors(list(series))
    out = _frame(title, "line", len(series), len(points), height) + _y_axis(ticks, y, unit)
    if x_time:
        marks = time_ticks(x_lo, x_hi)
        step = marks[1] - marks[0] if len(marks) > 1 else 60.0
        for t in marks:
            out.append(_x_label(x(t), _clock(t, step)))
        out.append(
            f'<text x="{W - RIGHT}" y="{H - BOTTOM + 28}" class="tick" text-anchor="end">'
            "time (UTC)</text>"
        )
    labels = list((x_labels or {}).items())
    every = max(1, math.ceil(len(labels) / 12))  # at most 12 labels, evenly thinned
    for value, label in labels[::every]:
        out.append(_x_label(x(value), label))
    for name, pts in series.items():
        runs: list[list[tuple[float, float]]] = [[]]
        for a, b in pts:
            if math.isfinite(b):
                runs[-1].append((a, b))
            elif runs[-1]:
                runs.append([])
        for run in runs:
            if len(run) > 1:
                path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in run)
                out.append(
                    f'<polyline points="{path}" fill="none" stroke="{palette[name]}" '
                    'stroke-width="2"/>'
                )
        for a, b in (p for run in runs for p in run):
            out.append(
                f'<circle class="pt" cx="{x(a):.1f}" cy="{y(b):.1f}" r="2.5" '
                f'fill="{palette[name]}"><title>{escape(name)}: {_fmt(b)}</title></circle>'
            )
    return "\n".join([*out, *_legend(list(series), palette, H - 12), "</svg>"])


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    fixed_colors: Mapping[str, str] | None = None,
    unit: str = "",
    empty_message: str = "no data yet",
    integer: bool = False,
) -> str:
    """Grouped bars: one group per label, one bar per series within it."""
    values = [v for s in series.values() for v in s]
    if not groups or not values:
        return empty(title, empty_message)
    ticks = nice_ticks(0.0, max(values) or 1.0, integer=integer)
    y_hi = ticks[-1]
    legend_rows = len(_legend_rows(list(series)))
    height = H + max(0, legend_rows - 1) * LEGEND_ROW

    def y(v: float) -> float:
        return TOP + (1 - v / y_hi) * (H - TOP - BOTTOM)

    palette = colors(list(series), fixed_colors)
    out = _frame(title, "bars", len(series), len(values), height) + _y_axis(ticks, y, unit)
    slot = (W - LEFT - RIGHT) / len(groups)
    width = max(2.0, slot * 0.8 / max(1, len(series)))
    shown = list(groups)
    if max(len(g) for g in shown) * CHAR_W > slot * 0.95:
        shown = [short_version(g) for g in shown]
    every = max(1, math.ceil(max(len(g) for g in shown) * CHAR_W / (slot * 0.95)))
    for g, label in enumerate(groups):
        x0 = LEFT + g * slot + slot * 0.1
        for k, (name, vals) in enumerate(series.items()):
            v = vals[g] if g < len(vals) else 0.0
            out.append(
                f'<rect class="bar" x="{x0 + k * width:.1f}" y="{y(v):.1f}" '
                f'width="{max(width - 1, 1):.1f}" height="{y(0) - y(v):.1f}" '
                f'fill="{palette[name]}">'
                f"<title>{escape(label)} {escape(name)}: {_fmt(v)}</title></rect>"
            )
        if g % every == 0:
            out.append(_x_label(x0 + slot * 0.4, shown[g]))
    return "\n".join([*out, *_legend(list(series), palette, H - 12), "</svg>"])
