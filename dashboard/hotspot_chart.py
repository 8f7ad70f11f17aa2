"""A flagged series as a server-side SVG: weekly counts against the expected band.

`dashboard.charts.line_chart` draws rates (0–100 %); a surge is counts, so this
draws on a count axis from zero: the band between the expected count and the
alarm threshold shaded, the expected line dashed, the threshold in red, the
observed counts in blue with the weeks above the threshold marked. Like
`dashboard.charts` it needs no JavaScript and only SVG attributes (the console's
Content-Security-Policy allows no inline style).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape

XScale = Callable[[int], float]  # a week's index -> x
YScale = Callable[[float], float]  # a count -> y
BLUE, GREY, RED, BAND = "#1f77b4", "#7f7f7f", "#d62728", "#fde0dd"


def _top(values: list[list[float | None]]) -> float:
    highest = max((v for one in values for v in one if v is not None), default=0.0)
    return max(highest * 1.1, 1.0)


def band_chart(
    labels: list[str],
    observed: list[float | None],
    expected: list[float | None],
    upper: list[float | None],
    width: int = 640,
    height: int = 200,
) -> str:
    """An SVG of observed counts over labels (weeks) with the expected..upper band."""
    left, right, top, bottom = 40, 24, 12, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(len(labels) - 1, 1)
    ceiling = _top([observed, expected, upper])

    def x(index: int) -> float:
        return left + index * step

    def y(value: float) -> float:
        return top + plot_h * (1 - value / ceiling)

    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" class="chart band-chart">']
    for tick in range(5):
        value = ceiling * tick / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" '
            f'class="grid"/><text x="{left - 6}" y="{y(value) + 4:.1f}" class="axis" '
            f'text-anchor="end">{value:.0f}</text>'
        )
    for index, label in enumerate(labels):
        if index % max(len(labels) // 6, 1) == 0 or index == len(labels) - 1:
            parts.append(
                f'<text x="{x(index):.1f}" y="{height - 8}" class="axis" '
                f'text-anchor="middle">{escape(label[5:] or label)}</text>'
            )
    parts.append(_band(expected, upper, x, y))
    parts.append(_line(expected, x, y, GREY, "期望 expected", dashed=True))
    parts.append(_line(upper, x, y, RED, "阈值 threshold", dashed=True))
    parts.append(_line(observed, x, y, BLUE, "观测 observed"))
    for index, value in enumerate(observed):
        if value is None:
            continue
        limit = upper[index] if index < len(upper) else None
        above = limit is not None and value > limit
        parts.append(
            f'<circle cx="{x(index):.1f}" cy="{y(value):.1f}" r="{4 if above else 2.5}" '
            f'fill="{RED if above else BLUE}" class="{"above" if above else "point"}">'
            f"<title>{escape(labels[index] if index < len(labels) else '')} "
            f"{value:g}{' > ' + format(limit, '.1f') if above else ''}</title></circle>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _points(values: list[float | None], x: XScale, y: YScale) -> list[list[str]]:
    """Runs of consecutive points (a None breaks the line)."""
    runs: list[list[str]] = [[]]
    for index, value in enumerate(values):
        if value is None:
            runs.append([])
        else:
            runs[-1].append(f"{x(index):.1f},{y(value):.1f}")
    return [run for run in runs if run]


def _line(
    values: list[float | None], x: XScale, y: YScale, colour: str, name: str, dashed: bool = False
) -> str:
    dash = ' stroke-dasharray="5 4"' if dashed else ""
    return "".join(
        f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
        f'stroke-width="2"{dash}><title>{name}</title></polyline>'
        for run in _points(values, x, y)
    )


def _band(expected: list[float | None], upper: list[float | None], x: XScale, y: YScale) -> str:
    """The shaded area between expected and the threshold, where both are known."""
    pairs = [
        (index, low, high)
        for index, (low, high) in enumerate(zip(expected, upper, strict=False))
        if low is not None and high is not None
    ]
    if len(pairs) < 2:
        return ""
    ups = [f"{x(i):.1f},{y(high):.1f}" for i, _, high in pairs]
    downs = [f"{x(i):.1f},{y(low):.1f}" for i, low, _ in reversed(pairs)]
    return (
        f'<polygon points="{" ".join(ups + downs)}" fill="{BAND}" class="band">'
        "<title>期望至阈值 expected to threshold</title></polygon>"
    )


def progress_chart(
    months: list[str], observed: list[float | None], baseline: list[float | None]
) -> str:
    """An adopted topic's months: calls (blue) against the pre-adoption baseline (grey, dashed).

    The band chart without a threshold: a 每月一题 is judged by calls falling below
    the baseline, not by an alarm."""
    return band_chart(months, observed, baseline, [None] * len(months), width=420, height=150)
