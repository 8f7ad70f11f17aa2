"""Small server-side SVG charts: a trend line needs no JavaScript and prints well."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Series:
    label: str
    colour: str
    values: list[float | None]  # 0..1; None where there is no data


def line_chart(labels: list[str], series: list[Series], width: int = 640, height: int = 220) -> str:
    """An SVG line chart of rates (0-100 %) over labels; gaps where a value is None."""
    left, right, top, bottom = 44, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)
    low = min((v for s in series for v in s.values if v is not None), default=0.0)
    floor = max(0.0, min(0.8, int(low * 10) / 10))  # zoom in: rates live near the top

    def y(value: float) -> float:
        return top + plot_h * (1 - (value - floor) / (1 - floor or 1))

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">']
    for tick in range(5):
        value = floor + (1 - floor) * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'class="grid"/><text x="{left - 6}" y="{y(value) + 4:.1f}" class="axis" '
            f'text-anchor="end">{value:.0%}</text>'
        )
    for index, label in enumerate(labels):
        if index % max(len(labels) // 6, 1) == 0 or index == len(labels) - 1:
            parts.append(
                f'<text x="{left + index * step:.1f}" y="{height - 8}" class="axis" '
                f'text-anchor="middle">{label}</text>'
            )
    for one in series:
        segment: list[str] = []
        runs: list[list[str]] = []
        for index, value in enumerate(one.values):
            if value is None:
                if segment:
                    runs.append(segment)
                segment = []
                continue
            segment.append(f"{left + index * step:.1f},{y(value):.1f}")
        if segment:
            runs.append(segment)
        for run in runs:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{one.colour}" '
                f'stroke-width="2"><title>{one.label}</title></polyline>'
            )
    parts.append("</svg>")
    return "".join(parts)


def count_axis_top(highest: int, ticks: int = 4) -> int:
    """The axis top for counts: `ticks` even whole steps of 1, 2 or 5 x 10^k, the first
    above `highest` (a chart of 2 calls reads 0 1 2 3 4, not 0 0 1 2 2)."""
    need = max(highest, 1) / ticks
    magnitude = 1
    while True:
        for base in (1, 2, 5):
            step = base * magnitude
            if step >= need and step * ticks >= max(highest, 1):
                return step * ticks
        magnitude *= 10


def stacked_bars(
    labels: list[str], layers: list[tuple[str, str, list[int]]], width: int = 640, height: int = 220
) -> str:
    """An SVG of one stacked bar per label; layers are (name, colour, counts per label)."""
    left, right, top, bottom = 44, 12, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(layer[2][i] for layer in layers) for i in range(len(labels))]
    highest = count_axis_top(max(totals, default=0))
    step = plot_w / max(len(labels), 1)
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart">']
    for tick in range(5):
        value = highest * tick / 4
        y = top + plot_h * (1 - tick / 4)
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" class="axis" '
            f'text-anchor="end">{value:.0f}</text>'
        )
    for index, label in enumerate(labels):
        x = left + index * step
        base = top + plot_h
        for name, colour, counts in layers:
            h = plot_h * counts[index] / highest
            if h > 0:
                parts.append(
                    f'<rect x="{x + step * 0.1:.1f}" y="{base - h:.1f}" width="{step * 0.8:.1f}" '
                    f'height="{h:.1f}" fill="{colour}"><title>{label} {name} {counts[index]}'
                    "</title></rect>"
                )
            base -= h
        if index % max(len(labels) // 7, 1) == 0:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{height - 8}" class="axis" '
                f'text-anchor="middle">{label}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
