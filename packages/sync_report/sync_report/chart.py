"""Geometry of the small bar chart over recent runs (the template draws it as inline SVG).

One stacked bar per run: the records that changed something (created, linked, updated) and the
rejected ones. Unchanged records are left out: on an hourly run they are thousands and would
flatten everything else. Conflicts are a marker above the bar (a conflict is a field of a
record already counted as updated or unchanged).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .model import RunPoint

__all__ = ["SERIES", "Bar", "Chart", "Segment", "build_chart", "tick_label_width"]

# (counter, css class, Spanish, English), bottom to top.
SERIES: tuple[tuple[str, str, str, str], ...] = (
    ("created", "c-created", "creados", "created"),
    ("linked", "c-linked", "enlazados", "linked"),
    ("updated", "c-updated", "actualizados", "updated"),
    ("rejected", "c-rejected", "rechazados", "rejected"),
)

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 22, 40
# Tick labels are drawn right-aligned 6 px left of the plot, in 11 px DejaVu Sans: a digit is
# 7.0 px wide there, a thousands dot 3.5 px. The plot starts where the widest label fits.
DIGIT_PX, DOT_PX, TICK_GAP, EDGE = 7.0, 3.5, 6, 4


@dataclass(frozen=True)
class Segment:
    css: str
    y: float
    height: float


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    center: float
    top: float
    segments: list[Segment]
    title: str
    label: str | None
    sublabel: str | None
    conflicts: int
    dry_run: bool
    failed: bool


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    baseline: float
    ticks: list[tuple[float, int]]
    bars: list[Bar]


def _nice_max(value: int) -> int:
    """The smallest of 1, 2, 4, 6, 8 x 10^k that is >= value: even (and at least 4), so the
    middle tick is a whole number."""
    value = max(value, 4)
    magnitude: int = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 4, 6, 8, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude  # pragma: no cover - the loop always returns


def build_chart(points: Sequence[RunPoint]) -> Chart:
    plot_h = HEIGHT - TOP - BOTTOM
    baseline = float(TOP + plot_h)
    top_value = _nice_max(max((_total(p) for p in points), default=0))
    left = max(LEFT, math.ceil(tick_label_width(top_value)) + TICK_GAP + EDGE)
    plot_w = WIDTH - left - RIGHT
    scale = plot_h / top_value
    ticks = [(baseline - value * scale, value) for value in (0, top_value // 2, top_value)]

    n = max(len(points), 1)
    slot = plot_w / n
    bar_w = min(slot * 0.7, 36.0)
    every = math.ceil(n / 8)  # at most ~8 date labels under the axis
    bars = []
    for i, point in enumerate(points):
        center = left + slot * (i + 0.5)
        y = baseline
        segments = []
        for counter, css, _es, _en in SERIES:
            height = point.counts.get(counter, 0) * scale
            if height > 0:
                y -= height
                segments.append(Segment(css, round(y, 2), round(height, 2)))
        label, sublabel = _labels(point)
        shown = (len(points) - 1 - i) % every == 0  # always label the latest run
        bars.append(
            Bar(
                x=round(center - bar_w / 2, 2),
                width=round(bar_w, 2),
                center=round(center, 2),
                top=round(y, 2),
                segments=segments,
                title=_title(point),
                label=label if shown else None,
                sublabel=sublabel if shown else None,
                conflicts=point.counts.get("conflicts", 0),
                dry_run=point.dry_run,
                failed=point.failed,
            )
        )
    return Chart(WIDTH, HEIGHT, left, WIDTH - RIGHT, baseline, ticks, bars)


def tick_label_width(value: int) -> float:
    """The drawn width in px of a tick label (Spanish thousands dots: 100.000)."""
    digits = len(str(value))
    return digits * DIGIT_PX + (digits - 1) // 3 * DOT_PX


def _total(point: RunPoint) -> int:
    return sum(point.counts.get(counter, 0) for counter, *_ in SERIES)


def _labels(point: RunPoint) -> tuple[str, str | None]:
    if point.when and " " in point.when:
        day, time = point.when.split(" ", 1)
        return day[:5], time
    # not a date (a run without a time, or a damaged file): short, so labels do not overlap
    return (point.label if len(point.label) <= 10 else point.label[:9] + "…"), None


def _title(point: RunPoint) -> str:
    parts = [f"{es} / {en}: {point.counts.get(c, 0)}" for c, _css, es, en in SERIES]
    parts.append(f"conflictos / conflicts: {point.counts.get('conflicts', 0)}")
    parts.append(f"sin cambios / unchanged: {point.counts.get('unchanged', 0)}")
    flags = []
    if point.dry_run:
        flags.append("simulación / dry run")
    if point.failed:
        flags.append("falló / failed")
    head = point.label + (f" ({', '.join(flags)})" if flags else "")
    return head + "\n" + "\n".join(parts)
