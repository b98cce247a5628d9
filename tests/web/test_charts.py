"""Trend charts: inline SVG drawn on the server, scaled to their data, with no style attribute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from buildcoord.web.pages.charts import Series, line_chart

START = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)


def points(*values: float | None) -> list[tuple[datetime, float | None]]:
    return [(START + timedelta(minutes=n), value) for n, value in enumerate(values)]


def test_a_chart_draws_one_polyline_per_run_of_values_and_a_gap_where_none() -> None:
    svg = line_chart("Queue", [Series("queued", "warn", points(1, 2, None, 4, 5))])
    assert svg.count("<polyline") == 2
    assert 'style="' not in svg
    assert "Queue" in svg


def test_the_highest_value_reaches_the_top_of_the_plot() -> None:
    svg = line_chart("Queue", [Series("queued", "warn", points(0, 10))])
    polyline = svg.split('points="')[1].split('"')[0]
    (_x0, y0), (_x1, y1) = (pair.split(",") for pair in polyline.split())
    assert float(y1) < float(y0)
    assert float(y1) == 6.0  # the top margin


def test_no_samples_say_so_instead_of_an_empty_chart() -> None:
    assert "no samples yet" in line_chart("Success rate", [Series("rate", "ok", [])])


def test_titles_and_names_are_escaped() -> None:
    svg = line_chart("<b>t</b>", [Series("<i>n</i>", "ok", points(1, 2))])
    assert "<b>" not in svg
    assert "<i>" not in svg
