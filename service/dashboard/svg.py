"""Tiny server-rendered SVG charts (no JavaScript, no CDN): lines and grouped bars.

Every mark carries a class (`pt`, `bar`) so a test can count what was drawn.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
W, H = 560, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 28, 36


def _ticks(lo: float, hi: float, n: int = 4) -> list[float]:
    if hi <= lo:
        hi = lo + 1.0
    step = (hi - lo) / n
    return [lo + i * step for i in range(n + 1)]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _frame(title: str, kind: str, n_series: int, n_marks: int) -> list[str]:
    return [
        f'<svg class="chart {kind}" data-series="{n_series}" data-marks="{n_marks}" '
        f'viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{escape(title)}">',
        f'<text x="{LEFT}" y="16" class="title">{escape(title)}</text>',
    ]


def _legend(names: Sequence[str], colors: Mapping[str, str]) -> list[str]:
    out, x = [], LEFT
    for name in names:
        out.append(f'<rect x="{x}" y="{H - 14}" width="10" height="10" fill="{colors[name]}"/>')
        out.append(f'<text x="{x + 14}" y="{H - 5}" class="legend">{escape(name)}</text>')
        x += 18 + 7 * len(name)
    return out


def _axes(y_lo: float, y_hi: float, y: object) -> list[str]:
    out = []
    for t in _ticks(y_lo, y_hi):
        yy = y(t)  # type: ignore[operator]
        out.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{yy:.1f}" y2="{yy:.1f}" class="grid"/>')
        out.append(
            f'<text x="{LEFT - 4}" y="{yy + 4:.1f}" class="tick" text-anchor="end">{_fmt(t)}</text>'
        )
    return out


def _label(x: float, text: str) -> str:
    return f'<text x="{x:.1f}" y="{H - 22}" class="tick" text-anchor="middle">{escape(text)}</text>'


def empty(title: str, message: str) -> str:
    return "\n".join(
        [*_frame(title, "empty", 0, 0), f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" '
         f'class="note">{escape(message)}</text>', "</svg>"]
    )  # fmt: skip


def line_chart(
    title: str,
    series: Mapping[str, Sequence[tuple[float, float]]],
    *,
    x_labels: Mapping[float, str] | None = None,
    y_min: float | None = None,
) -> str:
    points = [p for s in series.values() for p in s if math.isfinite(p[1])]
    if not points:
        return empty(title, "no data yet")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x_lo, x_hi = min(xs), max(xs)
    y_lo = min(ys) if y_min is None else y_min
    y_hi = max(ys) * 1.1 if max(ys) > y_lo else y_lo + 1.0

    def x(v: float) -> float:
        return LEFT + (v - x_lo) / ((x_hi - x_lo) or 1.0) * (W - LEFT - RIGHT)

    def y(v: float) -> float:
        return TOP + (1 - (v - y_lo) / (y_hi - y_lo)) * (H - TOP - BOTTOM)

    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    out = _frame(title, "line", len(series), len(points)) + _axes(y_lo, y_hi, y)
    for value, label in (x_labels or {}).items():
        out.append(_label(x(value), label))
    for name, pts in series.items():
        good = [(a, b) for a, b in pts if math.isfinite(b)]
        if len(good) > 1:
            path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in good)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{colors[name]}" stroke-width="2"/>'
            )
        for a, b in good:
            out.append(
                f'<circle class="pt" cx="{x(a):.1f}" cy="{y(b):.1f}" r="3" fill="{colors[name]}">'
                f"<title>{escape(name)}: {_fmt(b)}</title></circle>"
            )
    return "\n".join([*out, *_legend(list(series), colors), "</svg>"])


def bar_chart(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> str:
    """Grouped bars: one group per label, one bar per series within it."""
    values = [v for s in series.values() for v in s]
    if not groups or not values:
        return empty(title, "no data yet")
    y_hi = max(values) * 1.15 or 1.0

    def y(v: float) -> float:
        return TOP + (1 - v / y_hi) * (H - TOP - BOTTOM)

    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    out = _frame(title, "bars", len(series), len(values)) + _axes(0.0, y_hi, y)
    slot = (W - LEFT - RIGHT) / len(groups)
    width = max(2.0, slot * 0.8 / max(1, len(series)))
    for g, label in enumerate(groups):
        x0 = LEFT + g * slot + slot * 0.1
        for k, (name, vals) in enumerate(series.items()):
            v = vals[g] if g < len(vals) else 0.0
            out.append(
                f'<rect class="bar" x="{x0 + k * width:.1f}" y="{y(v):.1f}" '
                f'width="{width - 1:.1f}" height="{y(0) - y(v):.1f}" fill="{colors[name]}">'
                f"<title>{escape(label)} "
                f"{escape(name)}: {_fmt(v)}</title></rect>"
            )
        out.append(_label(x0 + slot * 0.4, label))
    return "\n".join([*out, *_legend(list(series), colors), "</svg>"])
