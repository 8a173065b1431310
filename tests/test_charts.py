"""The chart API other tools reuse (tools/charts.py): sizes, bounds, text alternatives, and charts of nothing."""

from __future__ import annotations

import datetime as dt
import io
import re

import pytest
from PIL import Image, ImageStat

from tools.charts import MAX_BARS, MAX_PNG_BYTES, MAX_SERIES, Chart, abbreviate, bar_chart, line_chart


def spread(chart: Chart) -> float:
    image = Image.open(io.BytesIO(chart.png))
    image.load()
    assert image.format == "PNG" and image.size == (chart.width, chart.height) == (800, 450)
    assert len(chart.png) <= MAX_PNG_BYTES
    return float(max(ImageStat.Stat(image.convert("L")).stddev))


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (950, "950"),
        (2.5, "2.5"),
        (12_345, "12.3k"),
        (1_000, "1k"),
        (1_500_000, "1.5M"),
        (-2_400, "-2.4k"),
        (123_456_789, "123M"),
        (7.1e9, "7.1B"),
    ],
)
def test_values_are_abbreviated(value: float, text: str) -> None:
    assert abbreviate(value) == text


def test_a_year_of_days_in_eight_series_stays_under_the_size_cap() -> None:
    start = dt.date(2026, 1, 1)
    days = [(start + dt.timedelta(days=i)).isoformat() for i in range(365)]
    series = {f"segment {k}": [(d, float((i * (k + 3)) % 997) * 1000) for i, d in enumerate(days)] for k in range(10)}
    chart = line_chart("Busy chart", series, y_label="Events per day")
    assert spread(chart) > 10
    assert f"first {MAX_SERIES} of 10 series" in chart.alt
    # Every point of every series is in the text, drawn or not.
    assert len(re.findall(r"\d{4}-\d{2}-\d{2} = ", chart.alt)) == 365 * 10


def test_categorical_x_and_many_bars() -> None:
    weeks = line_chart("By week", {"a": [("2026-W01", 3.0), ("2026-W02", 5.0)]}, y_label="Users", x_label="Week")
    assert spread(weeks) > 10 and "2026-W02 = 5" in weeks.alt
    bars = bar_chart("Many", [(f"value {i} " * 8, float(1000 - i)) for i in range(40)], x_label="Events")
    assert spread(bars) > 10
    assert f"first {MAX_BARS} of 40 bars" in bars.alt and "= 961" in bars.alt


def test_a_chart_of_nothing_says_so_in_the_picture_and_the_text() -> None:
    real = bar_chart("Something", [("a", 3.0), ("b", 1.0)], x_label="Events")
    for empty in (
        bar_chart("Nothing", [], x_label="Events"),
        bar_chart("Zeros", [("a", 0.0)], x_label="Events"),
        line_chart("Nothing", {}, y_label="Events"),
        line_chart("Zeros", {"a": [("2026-11-01", 0.0), ("2026-11-02", 0.0)]}, y_label="Events"),
    ):
        assert "No data" in empty.alt
        # The picture holds only the title and the 'No data' line: some ink, far less than a drawn chart.
        assert 0 < spread(empty) < spread(real)
