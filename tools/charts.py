"""Charts for tool results: a PNG line chart for time series and a horizontal bar chart for ranked values.

matplotlib (Agg canvas, no pyplot, so no global figure state) is imported inside the drawing functions only: a server
that is never asked for a chart never loads it. A tool draws with ``await draw(line_chart, ...)`` (off the event loop)
and hands the result to ``ctx.attach_chart``; the server turns it into an image content block and a resource.
"""

from __future__ import annotations

import datetime as _dt
import functools
import io
import math
import textwrap
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WIDTH, HEIGHT, DPI = 800, 450, 100
MAX_PNG_BYTES = 150_000
MAX_SERIES = 8
MAX_BARS = 25
MAX_LABEL = 32
# Okabe & Ito's palette, distinguishable under the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442")
NO_DATA = "No data for this query"
# matplotlib keeps shared state (font cache, text layout caches) that is not documented as thread-safe.
_DRAW_LOCK = threading.Lock()


@dataclass(frozen=True)
class Chart:
    """One drawn chart: the PNG and a text alternative that carries the same numbers as the tool's result."""

    png: bytes
    alt: str
    title: str = ""
    width: int = WIDTH
    height: int = HEIGHT


def abbreviate(value: float) -> str:
    """12345 -> '12.3k', 1500000 -> '1.5M', 950 -> '950', 2.5 -> '2.5' (axis ticks and bar labels)."""
    if not math.isfinite(value):
        return str(value)
    sign = "-" if value < 0 else ""
    size = abs(value)
    for limit, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if size >= limit:
            scaled = size / limit
            text = f"{scaled:.1f}" if scaled < 100 else f"{scaled:.0f}"
            return sign + text.removesuffix(".0") + suffix
    if size == int(size):
        return f"{sign}{int(size)}"
    return sign + f"{size:.2f}".rstrip("0").rstrip(".")


def exact(value: float) -> str:
    """A number as the JSON result writes it (integers without a decimal point)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _clip(label: str, limit: int = MAX_LABEL) -> str:
    label = " ".join(label.split())
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _iso_day(text: str) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def line_chart(
    title: str, series: Mapping[str, Sequence[tuple[str, float]]], *, y_label: str, x_label: str = "Date"
) -> Chart:
    """Lines over ``x`` (ISO dates give a date axis; other labels are categories), one per series, the first
    ``MAX_SERIES`` drawn. The alt text lists every point of every series."""
    drawn = {name: list(points) for name, points in list(series.items())[:MAX_SERIES] if points}
    if all(y == 0 for points in drawn.values() for _, y in points):
        drawn = {}  # a flat line at zero is a chart of nothing
    lines = [f"Line chart: {title}. Y axis: {y_label}; X axis: {x_label}."]
    if not drawn:
        lines.append(f"{NO_DATA}: nothing to draw (no points, or every value is 0).")
    for name, points in series.items():
        body = ", ".join(f"{x} = {exact(y)}" for x, y in points) or "no points"
        lines.append(f"{name}: {body}.")
    if len(series) > MAX_SERIES:
        lines.append(f"Only the first {MAX_SERIES} of {len(series)} series are drawn.")
    with _DRAW_LOCK:
        png = _render(functools.partial(_draw_lines, title, drawn, y_label, x_label))
    return Chart(png=png, alt="\n".join(lines), title=title)


def bar_chart(title: str, bars: Sequence[tuple[str, float]], *, x_label: str, y_label: str = "") -> Chart:
    """Horizontal bars, the first one at the top, the first ``MAX_BARS`` drawn; each bar labelled with its value."""
    items = list(bars)
    lines = [f"Bar chart: {title}. Bars: {y_label or 'values'}; length: {x_label}."]
    if items:
        lines.append("; ".join(f"{label} = {exact(value)}" for label, value in items) + ".")
    if all(value == 0 for _, value in items):
        lines.append(f"{NO_DATA}: nothing to draw (no bars, or every value is 0).")
    if len(items) > MAX_BARS:
        lines.append(f"Only the first {MAX_BARS} of {len(items)} bars are drawn.")
    with _DRAW_LOCK:
        drawn = items[:MAX_BARS] if any(value != 0 for _, value in items) else []
        shown = f"{title} (first {MAX_BARS} of {len(items)} shown)" if len(items) > MAX_BARS else title
        png = _render(functools.partial(_draw_bars, shown, drawn, x_label, y_label))
    return Chart(png=png, alt="\n".join(lines), title=title)


async def draw(fn: Callable[..., Chart], *args: Any, **kwargs: Any) -> Chart:
    """Run ``line_chart`` or ``bar_chart`` in a worker thread: drawing takes CPU time the event loop needs."""
    import anyio.to_thread

    return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


# -- drawing (matplotlib from here on) ---------------------------------------------------------------------------------


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, layout="constrained", facecolor="white")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _title(ax: Any, title: str) -> None:
    # On the figure, not the axes: bar labels would push an axes title off to the right.
    ax.figure.suptitle("\n".join(textwrap.wrap(title, 90)[:2]), fontsize=12, x=0.01, ha="left")


def _empty(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.text(0.5, 0.5, NO_DATA, ha="center", va="center", fontsize=16, color="#555555", transform=ax.transAxes)


def _value_axis(axis: Any) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(nbins=6, min_n_ticks=3))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: abbreviate(v)))


def _draw_lines(title: str, series: dict[str, list[tuple[str, float]]], y_label: str, x_label: str, fig: Any) -> None:
    ax = fig.axes[0]
    _title(ax, title)
    if not series:
        _empty(ax)
        return
    xs_all = [x for points in series.values() for x, _ in points]
    dated = all(_iso_day(x) is not None for x in xs_all)
    categories = list(dict.fromkeys(xs_all))
    values: list[float] = []
    for i, (name, points) in enumerate(series.items()):
        ys = [float(y) for _, y in points]
        values += ys
        xs: list[Any] = [_iso_day(x) for x, _ in points] if dated else [categories.index(x) for x, _ in points]
        marker = "o" if len(points) <= 45 else None
        ax.plot(
            xs, ys, color=PALETTE[i % len(PALETTE)], linewidth=2, marker=marker, markersize=3.5, label=_clip(name, 24)
        )
    if dated:
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator(minticks=3, maxticks=9)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
    else:
        step = max(1, math.ceil(len(categories) / 10))
        ax.set_xticks(range(0, len(categories), step), [_clip(c, 14) for c in categories[::step]])
    ax.tick_params(labelsize=9)
    _value_axis(ax.yaxis)
    if min(values) >= 0:
        ax.set_ylim(bottom=0, top=max(values) * 1.08 or 1)
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(x_label, fontsize=10)
    ax.set_ylabel(y_label, fontsize=10)
    if len(series) > 1:
        # Beside the plot, never over the lines.
        ax.legend(fontsize=9, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _draw_bars(title: str, bars: list[tuple[str, float]], x_label: str, y_label: str, fig: Any) -> None:
    ax = fig.axes[0]
    _title(ax, title)
    if not bars:
        _empty(ax)
        return
    labels = [_clip(str(label)) for label, _ in bars]
    values = [float(v) for _, v in bars]
    positions = list(range(len(bars)))
    container = ax.barh(positions, values, color=PALETTE[0], height=0.7)
    size = 10 if len(bars) <= 12 else 9 if len(bars) <= 18 else 8
    ax.set_yticks(positions, labels, fontsize=size)
    ax.invert_yaxis()
    ax.bar_label(container, labels=[abbreviate(v) for v in values], padding=3, fontsize=size)
    low, high = min(0.0, *values), max(0.0, *values)
    span = (high - low) or 1.0
    ax.set_xlim(low - (0.14 * span if low < 0 else 0), high + 0.14 * span)
    _value_axis(ax.xaxis)
    ax.tick_params(axis="x", labelsize=9)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)
    ax.set_xlabel(x_label, fontsize=10)
    if y_label:
        ax.set_ylabel(y_label, fontsize=10)


def _render(draw_into: Callable[[Any], None]) -> bytes:
    """Draw into a fresh 800x450 figure and encode it as PNG, palette-quantised if it would exceed the size cap."""
    from PIL import Image

    fig, _ax = _figure()
    draw_into(fig)
    canvas = fig.canvas
    canvas.draw()
    image = Image.frombuffer("RGBA", canvas.get_width_height(), bytes(canvas.buffer_rgba()), "raw", "RGBA", 0, 1)
    image = image.convert("RGB")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    if out.tell() > MAX_PNG_BYTES:
        out = io.BytesIO()
        image.quantize(colors=64).save(out, format="PNG", optimize=True)
    return out.getvalue()
