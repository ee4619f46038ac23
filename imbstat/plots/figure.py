"""What every figure shares: an Agg canvas without pyplot, PNG output, log count axes, score labels.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never through
pyplot, so plotting leaves no global state (no current figure, no backend
switch) and works without a display.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.ticker import FuncFormatter, LogLocator

from imbstat.text import visible

DPI = 120
# One colour per LVIS-style group (rare 1–10 images, common 11–100, frequent > 100).
GROUP_COLORS = {"frequent": "#1f77b4", "common": "#ff7f0e", "rare": "#d62728", "absent": "#b0b0b0"}
BAR_COLOR = "#4c72b0"
UNIFORM_STYLE = {"color": "0.35", "linestyle": "--", "linewidth": 0.9}
NO_BOXES = "no boxes"
PLAIN_TICK_DECADES = 3.5


def new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` × ``height`` inches on its own Agg canvas, with constrained layout."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_dir: str | Path, name: str) -> Path:
    """Write ``fig`` as ``out_dir/name`` (PNG, :data:`DPI`), then release its artists; returns the path."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    fig.clear()
    return path


def fmt_score(value: float) -> str:
    """A score for a title: two decimals, or "n/a" for the NaN of an empty distribution."""
    return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"


def log_count_axis(ax: Axes, counts: np.ndarray) -> None:
    """Log y scale for counts with room for a count of 1; zeros drop out instead of breaking the scale.

    Bars are drawn from 0, so the scale clips non-positive values (a bar of
    count 0 is invisible and a bar of 1 rises from the bottom edge at 0.5).
    The limits are set here, so an all-zero histogram keeps a sane 0.5–10 range
    instead of warning that there is nothing positive to scale. Up to about
    three decades the ticks are plain numbers at 1, 2, 5, 10, ...
    """
    low, high = 0.5, max(10.0, float(np.max(counts, initial=0)) * 2.0)
    ax.set_ylim(low, high)  # first: with autoscaling off, the switch to log never looks at all-zero data
    ax.set_yscale("log", nonpositive="clip")
    if np.log10(high / low) <= PLAIN_TICK_DECADES:
        ax.yaxis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else ""))


def note_empty(ax: Axes, text: str = NO_BOXES) -> None:
    """Write ``text`` in the middle of an axes whose data is empty."""
    ax.text(
        0.5,
        0.5,
        text,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=11,
        color="0.4",
        bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "0.7"},
    )


def bar_histogram(ax: Axes, edges: np.ndarray, counts: np.ndarray, color: str = BAR_COLOR) -> None:
    """Bars over histogram bins ``[edges[i], edges[i+1])`` on a log count axis; a note when all are zero."""
    edges = np.asarray(edges, np.float64)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=color, linewidth=0)
    log_count_axis(ax, counts)
    ax.set_xlim(edges[0], edges[-1])
    ax.grid(axis="y", which="major", alpha=0.3)
    if not np.any(counts):
        note_empty(ax)


def short_name(name: object, limit: int = 32) -> str:
    """A class name cut to ``limit`` characters with an ellipsis, for tick labels and annotations.

    User text, drawn as written: control characters as escapes (:func:`~imbstat.text.visible`; a font
    has no glyph for them) and ``$`` escaped, so that matplotlib does not parse a name as mathtext
    (mathtext stays on for the figures' own log-axis labels, ``10^{n}``).
    """
    text = visible(str(name)).replace("$", r"\$")
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Maps over the normalised image are drawn as an image is: x to the right, y down, row 0 at the top.
CMAP = "viridis"
IMAGE_EXTENT = (0.0, 1.0, 1.0, 0.0)


def heatmap(
    ax: Axes,
    values: np.ndarray,
    vmax: float,
    vmin: float = 0.0,
    cmap: str = CMAP,
    extent: tuple[float, float, float, float] = IMAGE_EXTENT,
) -> AxesImage:
    """A [rows, cols] map with row 0 at the top, on ``extent`` (left, right, bottom, top)."""
    im = ax.imshow(values, extent=extent, origin="upper", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest",
                   aspect="auto")  # fmt: skip
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    return im


HEAD_NAMES = 10
TAIL_NAMES = 5


def annotate(ax: Axes, text: str, row: int, count: float, x: float, y: float, ha: str = "left") -> None:
    """``text`` at axes fraction ``(x, y)`` with a leader line to the class of 0-based rank ``row``."""
    ax.annotate(
        text,
        xy=(row + 1, count),
        xycoords="data",
        xytext=(x, y),
        textcoords="axes fraction",
        ha=ha,
        va="top" if "\n" in text else "center",
        fontsize=7.5,
        bbox={"boxstyle": "square,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
        arrowprops={"arrowstyle": "-", "color": "0.45", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 1},
    )


def label_head_and_tail(ax: Axes, names: np.ndarray, values: np.ndarray, value_text: Callable[[float], str]) -> None:
    """Name the top classes one by one and the last non-zero ones in one block, of a rank-ordered profile.

    ``values`` are sorted descending, so the non-zero ones are a prefix. The
    tail's values are the smallest and often equal: one block of names with one
    leader, above and left of the tail.
    """
    k = len(values)
    nonzero = int(np.count_nonzero(values))
    head = np.arange(min(HEAD_NAMES, nonzero))
    for i, r in enumerate(head):
        annotate(ax, f"#{r + 1} {short_name(names[r])} ({value_text(values[r])})", r, values[r], 0.16, 0.95 - 0.052 * i)
    tail = np.arange(max(head.size, nonzero - TAIL_NAMES), nonzero)
    if tail.size:
        lines = [f"#{r + 1} {short_name(names[r])} ({value_text(values[r])})" for r in tail]
        text = f"tail, ranks {tail[0] + 1:,}–{tail[-1] + 1:,}:\n" + "\n".join(lines)
        mid = tail[tail.size // 2]
        annotate(ax, text, mid, values[mid], min(0.8, max(0.4, (nonzero - 0.5) / k - 0.1)), 0.62, ha="right")
