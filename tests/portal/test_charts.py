"""Server-side SVG charts: valid SVG, shapes that match the data, every label escaped."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from innkeeper.portal import charts

SVG = "{http://www.w3.org/2000/svg}"
PAYLOAD = '<script>alert(1)</script>"&'


def parse(markup: Markup) -> ET.Element:
    assert isinstance(markup, Markup)
    root = ET.fromstring(str(markup))  # noqa: S314 -- our own output, not untrusted XML
    assert root.tag == f"{SVG}svg"
    return root


def shapes(root: ET.Element, tag: str, css: str) -> list[ET.Element]:
    return [node for node in root.iter(f"{SVG}{tag}") if node.get("class") == css]


def texts(root: ET.Element) -> list[str]:
    return [node.text or "" for node in root.iter() if node.tag in (f"{SVG}text", f"{SVG}title")]


def test_stacked_bars_have_one_rect_per_positive_value_with_proportional_heights() -> None:
    labels = ["01-13", "01-14", "01-15"]
    series = [charts.Series("Browsed", [1, 0, 4]), charts.Series("Abandoned", [2, None, 2])]
    root = parse(charts.bar_chart(labels, series, title="Sessions", integer=True))
    bars = shapes(root, "rect", "bar")
    assert [(bar.get("data-series"), bar.get("data-value")) for bar in bars] == [
        ("Browsed", "1"),
        ("Abandoned", "2"),
        ("Browsed", "4"),
        ("Abandoned", "2"),
    ]
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert heights[1] == pytest.approx(2 * heights[0], abs=0.02)
    assert heights[2] == pytest.approx(4 * heights[0], abs=0.02)
    # Stacked: the second segment sits right on top of the first.
    first, second = bars[0], bars[1]
    assert float(second.get("y", "0")) + float(second.get("height", "0")) == pytest.approx(
        float(first.get("y", "0")), abs=0.02
    )
    assert float(first.get("x", "0")) == float(second.get("x", "0"))
    # Whole-number ticks for counts, and a legend naming each series.
    ticks = [node.text for node in shapes(root, "text", "tick")]
    assert ticks == ["0", "2", "4", "6"]
    assert [node.text for node in shapes(root, "text", "legend")] == ["Browsed", "Abandoned"]
    assert root.get("role") == "img" and root.get("aria-label") == "Sessions"


def test_line_chart_has_a_point_per_value_a_band_and_higher_values_drawn_higher() -> None:
    labels = ["d1", "d2", "d3", "d4"]
    rate = charts.Series("B", [0.1, 0.2, None, 0.4], low=[0.05, 0.1, None, 0.3], high=[0.2, 0.3, None, 0.5])
    other = charts.Series("C", [0.3, 0.3, 0.3, 0.3])
    root = parse(charts.line_chart(labels, [rate, other], title="Rate", fmt=charts.percent, ceiling=1.0))
    points = [node for node in shapes(root, "circle", "point") if node.get("data-series") == "B"]
    assert [node.get("data-value") for node in points] == ["0.1", "0.2", "0.4"]
    heights = [float(node.get("cy", "0")) for node in points]
    assert heights[0] > heights[1] > heights[2]  # SVG y grows downwards
    assert len([node for node in shapes(root, "circle", "point") if node.get("data-series") == "C"]) == 4
    # The missing day splits the line and the band in two.
    bands = shapes(root, "polygon", "band")
    assert len(bands) == 2 and {band.get("data-series") for band in bands} == {"B"}
    assert len(shapes(root, "polyline", "line")) == 2  # B's first run (d1–d2) and C; B's lone d4 is only a dot
    assert "0.0%" in [node.text for node in shapes(root, "text", "tick")]
    assert any("10.0% (5.0% – 20.0%)" in text for text in texts(root))


def test_interval_chart_draws_error_bars_around_each_value() -> None:
    series = charts.Series("Rate", [0.1, 0.2], low=[0.05, 0.15], high=[0.15, 0.3])
    root = parse(charts.interval_chart(["Control", "B"], series, title="Rates", fmt=charts.percent))
    bars = shapes(root, "rect", "bar")
    assert [bar.get("data-value") for bar in bars] == ["0.1", "0.2"]
    assert float(bars[1].get("height", "0")) == pytest.approx(2 * float(bars[0].get("height", "0")), abs=0.02)
    errors = shapes(root, "g", "error-bar")
    assert [(node.get("data-low"), node.get("data-high")) for node in errors] == [("0.05", "0.15"), ("0.15", "0.3")]
    for node, bar in zip(errors, bars, strict=True):
        whisker = node.find(f"{SVG}line")
        assert whisker is not None
        top, bottom = float(whisker.get("y2", "0")), float(whisker.get("y1", "0"))
        assert top < float(bar.get("y", "0")) < bottom  # the interval spans the bar's top
    assert [node.text for node in shapes(root, "text", "value")] == ["10.0%", "20.0%"]


def test_labels_and_names_are_escaped() -> None:
    bar = charts.bar_chart([PAYLOAD], [charts.Series(PAYLOAD, [3])], title=PAYLOAD)
    line = charts.line_chart(["a", "b"], [charts.Series(PAYLOAD, [1, 2])], title="t", long_labels=[PAYLOAD, "b"])
    interval = charts.interval_chart([PAYLOAD], charts.Series("x", [0.5], [0.4], [0.6]), title="t")
    empty = charts.empty_chart(PAYLOAD, PAYLOAD)
    for markup in (bar, line, interval, empty):
        assert "<script>" not in markup
        root = parse(markup)  # still well-formed XML
        assert not list(root.iter("script")) and not list(root.iter(f"{SVG}script"))
        assert any(PAYLOAD in text or PAYLOAD[:14] in text for text in texts(root))
    assert parse(bar).get("aria-label") == PAYLOAD
    assert shapes(parse(bar), "rect", "bar")[0].get("data-series") == PAYLOAD


@pytest.mark.parametrize(
    "markup",
    [
        charts.bar_chart([], [], title="Nothing"),
        charts.bar_chart(["a", "b"], [charts.Series("x", [0, 0])], title="Nothing"),
        charts.line_chart(["a"], [charts.Series("x", [None])], title="Nothing"),
        charts.line_chart(["a", "b"], [charts.Series("x", [0.0, 0.0])], title="Nothing"),
        charts.interval_chart(["a"], charts.Series("x", [None]), title="Nothing"),
    ],
)
def test_no_data_draws_a_friendly_placeholder(markup: Markup) -> None:
    root = parse(markup)
    assert [node.text for node in shapes(root, "text", "empty")] == [charts.NO_DATA]
    assert not shapes(root, "rect", "bar") and not shapes(root, "circle", "point")


def test_many_days_thin_out_the_axis_labels_and_mismatched_series_are_refused() -> None:
    labels = [f"d{index}" for index in range(90)]
    root = parse(charts.bar_chart(labels, [charts.Series("n", [1.0] * 90)], title="Busy"))
    assert len(shapes(root, "rect", "bar")) == 90
    assert 5 < len(shapes(root, "text", "label")) < 20
    with pytest.raises(ValueError, match="2 values for 3 categories"):
        charts.bar_chart(["a", "b", "c"], [charts.Series("n", [1, 2])], title="Bad")


def test_nice_ticks() -> None:
    assert charts.nice_ticks(0, 0.37) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert charts.nice_ticks(0, 1234.5) == [0, 500, 1000, 1500]
    assert charts.nice_ticks(0, 0) == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert charts.nice_ticks(0, 3, integer=True) == [0, 1, 2, 3]
    assert charts.nice_ticks(-0.05, 0.2) == [-0.05, 0.0, 0.05, 0.1, 0.15, 0.2]
