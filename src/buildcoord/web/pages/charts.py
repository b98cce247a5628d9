"""Small line charts as inline SVG, drawn on the server: no script, no style attribute."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH = 600
HEIGHT = 140
MARGIN_LEFT = 44
MARGIN_BOTTOM = 18


@dataclass(frozen=True, slots=True)
class Series:
    """One line: a name, a CSS class, and (time, value) points (None: a gap)."""

    name: str
    css_class: str
    points: Sequence[tuple[datetime, float | None]]


def _label(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.0f} %"
    if unit == "s":
        return f"{value / 60:.0f} min" if value >= 120 else f"{value:.0f} s"
    return f"{value:.0f}"


def line_chart(
    title: str, series: Sequence[Series], *, unit: str = "", top: float | None = None
) -> Markup:
    """An SVG chart of the series over their common time span, with a y axis and a legend."""
    values = [value for each in series for _at, value in each.points if value is not None]
    times = [at.timestamp() for each in series for at, _value in each.points]
    if not values or len(set(times)) < 2:
        return Markup('<p class="empty">{}: no samples yet.</p>').format(title)
    high = top if top is not None else max(values)
    high = high if high > 0 else 1.0
    start, end = min(times), max(times)
    plot_width = WIDTH - MARGIN_LEFT - 4
    plot_height = HEIGHT - MARGIN_BOTTOM - 6

    def x(at: datetime) -> float:
        return MARGIN_LEFT + (at.timestamp() - start) / (end - start) * plot_width

    def y(value: float) -> float:
        return 6 + plot_height - min(value, high) / high * plot_height

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for fraction in (0.0, 0.5, 1.0):
        level = y(high * fraction)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - 4}"'
            f' y1="{level:.1f}" y2="{level:.1f}"/>'
            f'<text class="axis" x="{MARGIN_LEFT - 4}" y="{level + 4:.1f}" text-anchor="end">'
            f"{escape(_label(high * fraction, unit))}</text>"
        )
    first = datetime.fromtimestamp(start, UTC)
    last = datetime.fromtimestamp(end, UTC)
    fmt = "%H:%M" if end - start <= 2 * 86400 else "%d %b"
    parts.append(
        f'<text class="axis" x="{MARGIN_LEFT}" y="{HEIGHT - 4}">{first.strftime(fmt)}</text>'
        f'<text class="axis" x="{WIDTH - 4}" y="{HEIGHT - 4}" text-anchor="end">'
        f"{last.strftime(fmt)}</text>"
    )
    for each in series:
        runs: list[list[str]] = [[]]
        for at, value in each.points:
            if value is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(at):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(
                    f'<circle class="line {escape(each.css_class)}" cx="{cx}" cy="{cy}" r="2"/>'
                )
            elif run:
                parts.append(
                    f'<polyline class="line {escape(each.css_class)}" points="{" ".join(run)}"/>'
                )
    parts.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch {escape(each.css_class)}"></span>{escape(each.name)}</li>'
        for each in series
    )
    return Markup(
        f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>'
        f'{"".join(parts)}<ul class="legend">{legend}</ul></figure>'
    )
