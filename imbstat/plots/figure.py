"""What every figure shares: an Agg canvas without pyplot, PNG output, log count axes, score labels.

Figures are built on :class:`matplotlib.figure.Figure` with an explicit
:class:`~matplotlib.backends.backend_agg.FigureCanvasAgg`, never through
pyplot, so plotting leaves no global state (no current figure, no backend
switch) and works without a display.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator

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
    """A class name cut to ``limit`` characters with an ellipsis, for tick labels and annotations."""
    text = str(name)
    return text if len(text) <= limit else text[: limit - 1] + "…"
