"""Server-side SVG charts for portal pages: pure functions from numbers to markup.

The portal's Content-Security-Policy forbids inline scripts and inline styles, so charts are
plain SVG drawn on the server with presentation attributes only. Labels and series names can be
attacker-controlled (a point of sale, a variant name), so every text and attribute value goes
through :func:`markupsafe.escape`; the result is :class:`markupsafe.Markup` and a template
inserts it as is.

* :func:`bar_chart` — bars per category; several series stack (sessions by outcome);
* :func:`line_chart` — one line per series, with an optional shaded band (a confidence interval);
* :func:`interval_chart` — one bar per category with an error bar (a value and its interval);
* :func:`empty_chart` — the friendly placeholder every chart falls back to without data.

Shapes carry ``class`` (``bar``, ``point``, ``band``, ``error-bar``) and ``data-series`` /
``data-value`` attributes, which also make them easy to check in tests.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = [
    "NO_DATA",
    "PALETTE",
    "Series",
    "bar_chart",
    "empty_chart",
    "interval_chart",
    "line_chart",
    "money",
    "number",
    "percent",
]

NO_DATA = "No data yet"
PALETTE = ("#1971c2", "#e8590c", "#2b8a3e", "#9c36b5", "#c2255c", "#0c8599", "#5c940d", "#868e96")
WIDTH = 720
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 44
INK = "#1d2330"
MUTED = "#5c6577"
GRID = "#dde1e8"

Format = Callable[[float], str]


@dataclass(frozen=True, slots=True)
class Series:
    """One named row of values, one per category (``None`` = no value), with an optional interval."""

    name: str
    values: Sequence[float | None]
    low: Sequence[float | None] | None = None
    high: Sequence[float | None] | None = None
    color: str | None = None


def number(value: float) -> str:
    """12, 1.5, 1,234 — for counts and plain figures."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.2f}"


def money(value: float) -> str:
    """1,234.50"""
    return f"{value:,.2f}"


def percent(value: float) -> str:
    """A rate in [0, 1] as 12.5%."""
    return f"{value * 100:.1f}%"


# --- markup helpers --------------------------------------------------------------------------


def _num(value: float) -> str:
    """A coordinate: short, no exponent."""
    return f"{round(value, 2):g}" if abs(value) < 1e6 else f"{value:.2f}"


def _data(value: float) -> str:
    return format(float(value), ".10g")


def _attrs(attrs: dict[str, object]) -> Markup:
    """Escaped attributes; ``text_anchor`` → ``text-anchor``, ``class_`` → ``class``, numbers shortened."""
    return Markup("").join(
        Markup(' {}="{}"').format(key.rstrip("_").replace("_", "-"), value if isinstance(value, str) else _num(value))  # type: ignore[arg-type]
        for key, value in attrs.items()
        if value is not None
    )


def _tag(name: str, attrs: dict[str, object], content: Markup | None = None) -> Markup:
    """An element; ``Markup.format`` escapes every argument that is not already markup."""
    if content is None:
        return Markup("<{}{}/>").format(name, _attrs(attrs))
    return Markup("<{}{}>{}</{}>").format(name, _attrs(attrs), content, name)


def _text(x: float, y: float, label: str, **attrs: object) -> Markup:
    return _tag("text", {"x": x, "y": y, "fill": attrs.pop("fill", INK), **attrs}, escape(label))


def _title(label: str) -> Markup:
    return Markup("<title>{}</title>").format(label)


def _svg(title: str, body: list[Markup], *, width: int = WIDTH, height: int = HEIGHT) -> Markup:
    head = {
        "xmlns": "http://www.w3.org/2000/svg",
        "class": "chart",
        "viewBox": f"0 0 {width} {height}",
        "width": width,
        "height": height,
        "role": "img",
        "aria-label": title,
        "font-family": "system-ui, sans-serif",
        "font-size": 11,
    }
    return _tag("svg", head, _title(title) + Markup("").join(body))


def empty_chart(title: str, message: str = NO_DATA, *, width: int = WIDTH, height: int = 160) -> Markup:
    """A framed placeholder saying there is nothing to draw yet."""
    body = [
        _tag(
            "rect",
            {
                "x": 1,
                "y": 1,
                "width": width - 2,
                "height": height - 2,
                "fill": "#f5f6f8",
                "stroke": GRID,
                "stroke-dasharray": "4 4",
                "rx": 6,
            },
        ),
        _text(width / 2, height / 2 - 6, title, text_anchor="middle", font_weight="600"),
        _text(width / 2, height / 2 + 14, message, text_anchor="middle", fill=MUTED, class_="empty"),
    ]
    return _svg(title, body, width=width, height=height)


# --- scales ----------------------------------------------------------------------------------


def nice_ticks(low: float, high: float, count: int = 5, *, integer: bool = False) -> list[float]:
    """Round tick values covering [low, high] (0–1 when both are 0), about ``count`` of them.

    ``integer`` keeps steps whole (counts never get a 0.5 tick).
    """
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError("ticks need finite bounds")
    if high < low:
        low, high = high, low
    if high == low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, count)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw - 1e-12)
    if integer:
        step = max(1.0, round(step))
    start = math.floor(low / step + 1e-9) * step
    stop = math.ceil(high / step - 1e-9) * step
    steps = round((stop - start) / step)
    return [round(start + i * step, 10) for i in range(steps + 1)]


@dataclass(frozen=True, slots=True)
class _Frame:
    """The plot area and its scales: categories along x, values along y."""

    categories: int
    ticks: list[float]
    width: int = WIDTH
    height: int = HEIGHT

    @property
    def band(self) -> float:
        return (self.width - LEFT - RIGHT) / max(1, self.categories)

    def x(self, index: int) -> float:
        """The centre of category ``index``."""
        return LEFT + (index + 0.5) * self.band

    def y(self, value: float) -> float:
        low, high = self.ticks[0], self.ticks[-1]
        span = (high - low) or 1.0
        return TOP + (self.height - TOP - BOTTOM) * (1 - (value - low) / span)


def _axes(frame: _Frame, labels: Sequence[str], fmt: Format) -> list[Markup]:
    """Grid lines with y tick labels, the x axis and (thinned out) x labels."""
    out: list[Markup] = []
    right = frame.width - RIGHT
    for tick in frame.ticks:
        y = frame.y(tick)
        out.append(_tag("line", {"x1": LEFT, "x2": right, "y1": y, "y2": y, "stroke": GRID, "class": "grid"}))
        out.append(_text(LEFT - 6, y + 4, fmt(tick), text_anchor="end", fill=MUTED, class_="tick"))
    base = frame.y(max(frame.ticks[0], min(0.0, frame.ticks[-1])))
    out.append(_tag("line", {"x1": LEFT, "x2": right, "y1": base, "y2": base, "stroke": MUTED, "class": "axis"}))
    room = max(1, int((frame.width - LEFT - RIGHT) // 56))
    every = max(1, math.ceil(len(labels) / room))
    for index, label in enumerate(labels):
        if index % every == 0:
            x = frame.x(index)
            bottom = frame.height - BOTTOM
            out.append(_tag("line", {"x1": x, "x2": x, "y1": bottom, "y2": bottom + 4, "stroke": MUTED}))
            out.append(_text(x, bottom + 16, _short(label, 14), text_anchor="middle", fill=MUTED, class_="label"))
    return out


def _legend(series: Sequence[Series], colors: Sequence[str], width: int = WIDTH) -> list[Markup]:
    out: list[Markup] = []
    x = float(LEFT)
    for item, color in zip(series, colors, strict=True):
        name = _short(item.name, 40)
        out.append(_tag("rect", {"x": x, "y": 10, "width": 12, "height": 12, "fill": color, "rx": 2}))
        out.append(_text(x + 16, 20, name, class_="legend"))
        x += 28 + 6.5 * len(name)
        if x > width - 80:
            break
    return out


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _colors(series: Sequence[Series]) -> list[str]:
    return [item.color or PALETTE[index % len(PALETTE)] for index, item in enumerate(series)]


def _finite(values: Sequence[float | None] | None) -> list[float]:
    return [float(v) for v in values or () if v is not None and math.isfinite(v)]


def _check(labels: Sequence[str], series: Sequence[Series]) -> None:
    for item in series:
        for values in (item.values, item.low, item.high):
            if values is not None and len(values) != len(labels):
                raise ValueError(f"series {item.name!r} has {len(values)} values for {len(labels)} categories")


# --- charts ----------------------------------------------------------------------------------


def bar_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Format = number,
    long_labels: Sequence[str] | None = None,
    integer: bool = False,
    empty: str = NO_DATA,
) -> Markup:
    """Bars per category; with several series they stack, first series at the bottom.

    Negative and missing values draw nothing. Without any positive value: :func:`empty_chart`.
    """
    _check(labels, series)
    totals = [sum(max(0.0, v or 0.0) for v in column) for column in zip(*(s.values for s in series), strict=True)]
    if not labels or not series or max(totals, default=0.0) <= 0:
        return empty_chart(title, empty)
    frame = _Frame(len(labels), nice_ticks(0.0, max(totals), integer=integer))
    colors = _colors(series)
    body = _axes(frame, labels, fmt)
    width = frame.band * 0.7
    names = long_labels or labels
    for index in range(len(labels)):
        bottom = 0.0
        for item, color in zip(series, colors, strict=True):
            value = item.values[index]
            if value is None or not math.isfinite(value) or value <= 0:
                continue
            top = bottom + value
            y_top, y_bottom = frame.y(top), frame.y(bottom)
            tip = f"{names[index]} · {item.name}: {fmt(value)}"
            attrs = {
                "x": frame.x(index) - width / 2,
                "y": y_top,
                "width": width,
                "height": y_bottom - y_top,
                "fill": color,
                "class": "bar",
                "data-series": item.name,
                "data-value": _data(value),
            }
            body.append(_tag("rect", attrs, _title(tip)))
            bottom = top
    if len(series) > 1:
        body.extend(_legend(series, colors))
    return _svg(title, body)


def line_chart(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    fmt: Format = number,
    long_labels: Sequence[str] | None = None,
    floor: float | None = 0.0,
    ceiling: float | None = None,
    empty: str = NO_DATA,
) -> Markup:
    """One line per series with a dot per value; ``low``/``high`` add a shaded band.

    Missing values break the line. The y axis includes ``floor`` (0 by default) and is capped
    at ``ceiling`` (e.g. 1 for rates). Without any value: :func:`empty_chart`.
    """
    _check(labels, series)
    values = [v for item in series for v in (*_finite(item.values), *_finite(item.low), *_finite(item.high))]
    if not labels or not values or all(v == 0 for v in values):
        return empty_chart(title, empty)
    low = min(values) if floor is None else min(floor, *values)
    high = max(values) if ceiling is None else min(ceiling, max(values))
    ticks = nice_ticks(low, high)
    if ceiling is not None and ticks[-1] > ceiling >= high and ceiling > ticks[0]:
        ticks = [tick for tick in ticks if tick < ceiling] + [ceiling]
    frame = _Frame(len(labels), ticks)
    colors = _colors(series)
    body = _axes(frame, labels, fmt)
    names = long_labels or labels
    for item, color in zip(series, colors, strict=True):
        if item.low is not None and item.high is not None:
            body.extend(_band(frame, item, color))
    for item, color in zip(series, colors, strict=True):
        body.extend(_line(frame, item, color, names, fmt))
    body.extend(_legend(series, colors))
    return _svg(title, body)


def _clamp(frame: _Frame, value: float) -> float:
    return min(max(value, frame.ticks[0]), frame.ticks[-1])


def _runs(present: Sequence[bool]) -> list[list[int]]:
    """Indexes of consecutive ``True`` values."""
    runs: list[list[int]] = []
    for index, ok in enumerate(present):
        if not ok:
            continue
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return runs


def _band(frame: _Frame, item: Series, color: str) -> list[Markup]:
    assert item.low is not None and item.high is not None
    low, high = item.low, item.high
    out: list[Markup] = []
    for run in _runs([lo is not None and hi is not None for lo, hi in zip(low, high, strict=True)]):
        upper = [(frame.x(i), frame.y(_clamp(frame, float(high[i] or 0.0)))) for i in run]
        lower = [(frame.x(i), frame.y(_clamp(frame, float(low[i] or 0.0)))) for i in reversed(run)]
        if len(run) == 1:  # a lone day: a short vertical bar instead of a zero-width polygon
            (x, top), (_, bottom) = upper[0], lower[0]
            upper, lower = [(x - 3, top), (x + 3, top)], [(x + 3, bottom), (x - 3, bottom)]
        points = " ".join(f"{_num(x)},{_num(y)}" for x, y in (*upper, *lower))
        out.append(
            _tag(
                "polygon",
                {"points": points, "fill": color, "fill-opacity": 0.18, "class": "band", "data-series": item.name},
            )
        )
    return out


def _line(frame: _Frame, item: Series, color: str, names: Sequence[str], fmt: Format) -> list[Markup]:
    out: list[Markup] = []
    present = [v is not None and math.isfinite(v) for v in item.values]
    for run in _runs(present):
        if len(run) > 1:
            points = " ".join(f"{_num(frame.x(i))},{_num(frame.y(float(item.values[i] or 0.0)))}" for i in run)
            out.append(
                _tag(
                    "polyline",
                    {"points": points, "fill": "none", "stroke": color, "stroke-width": 2, "class": "line"},
                )
            )
    for index, ok in enumerate(present):
        if not ok:
            continue
        value = float(item.values[index] or 0.0)
        tip = f"{names[index]} · {item.name}: {fmt(value)}"
        if item.low is not None and item.high is not None:
            lo, hi = item.low[index], item.high[index]
            if lo is not None and hi is not None:
                tip += f" ({fmt(lo)} – {fmt(hi)})"
        attrs = {
            "cx": frame.x(index),
            "cy": frame.y(value),
            "r": 2.5,
            "fill": color,
            "class": "point",
            "data-series": item.name,
            "data-value": _data(value),
        }
        out.append(_tag("circle", attrs, _title(tip)))
    return out


def interval_chart(
    labels: Sequence[str],
    series: Series,
    *,
    title: str,
    fmt: Format = number,
    floor: float | None = 0.0,
    ceiling: float | None = None,
    empty: str = NO_DATA,
) -> Markup:
    """One bar per category (own colour) with an error bar from ``low`` to ``high`` and its value on top."""
    _check(labels, [series])
    values = [*_finite(series.values), *_finite(series.low), *_finite(series.high)]
    if not labels or not _finite(series.values):
        return empty_chart(title, empty)
    low = min(values) if floor is None else min(floor, *values)
    high = max(values) if ceiling is None else min(ceiling, max(values))
    frame = _Frame(len(labels), nice_ticks(low, high))
    body = _axes(frame, labels, fmt)
    width = min(frame.band * 0.6, 96.0)
    zero = frame.y(_clamp(frame, 0.0))
    for index, label in enumerate(labels):
        value = series.values[index]
        if value is None or not math.isfinite(value):
            continue
        color = PALETTE[index % len(PALETTE)]
        x, y = frame.x(index), frame.y(_clamp(frame, value))
        lo = series.low[index] if series.low is not None else None
        hi = series.high[index] if series.high is not None else None
        tip = f"{label}: {fmt(value)}" + (f" ({fmt(lo)} – {fmt(hi)})" if lo is not None and hi is not None else "")
        attrs = {
            "x": x - width / 2,
            "y": min(y, zero),
            "width": width,
            "height": abs(zero - y),
            "fill": color,
            "fill-opacity": 0.85,
            "class": "bar",
            "data-series": label,
            "data-value": _data(value),
        }
        body.append(_tag("rect", attrs, _title(tip)))
        top = y
        if lo is not None and hi is not None:
            y_lo, y_hi = frame.y(_clamp(frame, lo)), frame.y(_clamp(frame, hi))
            top = min(top, y_hi)
            error = [
                _tag("line", {"x1": x, "x2": x, "y1": y_lo, "y2": y_hi}),
                _tag("line", {"x1": x - 8, "x2": x + 8, "y1": y_lo, "y2": y_lo}),
                _tag("line", {"x1": x - 8, "x2": x + 8, "y1": y_hi, "y2": y_hi}),
            ]
            body.append(
                _tag(
                    "g",
                    {
                        "class": "error-bar",
                        "stroke": INK,
                        "stroke-width": 1.5,
                        "data-series": label,
                        "data-low": _data(lo),
                        "data-high": _data(hi),
                    },
                    Markup("").join(error),
                )
            )
        body.append(_text(x, top - 6, fmt(value), text_anchor="middle", class_="value"))
    return _svg(title, body)
