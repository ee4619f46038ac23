"""Figures of location imbalance (survey Fig. 13): box centres over the normalised image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from imbstat.plots.figure import BAR_COLOR, UNIFORM_STYLE, fmt_score, heatmap, new_figure, note_empty, save, short_name
from imbstat.stats.location import LocationDistribution

MAX_COLUMNS = 5


def plot_location(result: LocationDistribution, out_dir: str | Path, per_class: int = 0) -> list[Path]:
    """Write Fig. 13 of ``result`` as PNGs in ``out_dir``; returns their paths.

    ``location_centers.png``: the G×G centre counts over the normalised image
    with marginal histograms of x (top) and y (right). With ``per_class`` > 0,
    also ``location_per_class.png``: the ``per_class`` classes with the most
    boxes (those with at least one), each map normalised to its busiest cell.
    """
    paths = [_centers(result, out_dir)]
    if per_class > 0:
        paths.append(_per_class(result, out_dir, per_class))
    return paths


def _centers(result: LocationDistribution, out_dir: str | Path) -> Path:
    counts = result.counts  # [G, G], row = y (top first)
    g = result.grid
    total = int(counts.sum())
    fig = new_figure(7.2, 7.0)
    spec = fig.add_gridspec(2, 3, width_ratios=[4.0, 1.0, 0.18], height_ratios=[1.0, 4.0])
    heat = fig.add_subplot(spec[1, 0])
    top = fig.add_subplot(spec[0, 0], sharex=heat)
    right = fig.add_subplot(spec[1, 1], sharey=heat)
    im = heatmap(heat, counts, vmax=max(1.0, float(counts.max(initial=0))))
    fig.colorbar(im, cax=fig.add_subplot(spec[1, 2]), label="box centres per cell")
    heat.set_xlabel("x / W  (centre, normalised image)")
    heat.set_ylabel("y / H  (down, as in the image)")
    if total == 0:
        note_empty(heat)

    centres = (np.arange(g) + 0.5) / g
    top.bar(centres, counts.sum(axis=0), width=1.0 / g, color=BAR_COLOR, linewidth=0)
    right.barh(centres, counts.sum(axis=1), height=1.0 / g, color=BAR_COLOR, linewidth=0)
    if total:
        top.axhline(total / g, **UNIFORM_STYLE, label="uniform")
        right.axvline(total / g, **UNIFORM_STYLE)
        top.legend(loc="best", fontsize=7, frameon=False)
    if total:
        top.set_ylim(bottom=0.0)
        right.set_xlim(left=0.0)
    else:
        top.set_ylim(0.0, 1.0)
        right.set_xlim(0.0, 1.0)
    top.set_ylabel("boxes")
    right.set_xlabel("boxes")
    top.tick_params(labelbottom=False)
    right.tick_params(labelleft=False)
    for ax in (top, right):
        ax.grid(alpha=0.3)

    s = result.scores
    fig.suptitle(
        f"Box centres over the normalised image ({total:,} boxes, {g}×{g} cells)\n"
        f"W1 score  x {fmt_score(s['x'])} · y {fmt_score(s['y'])} · xy {fmt_score(s['xy'])}",
        fontsize=11,
    )
    return save(fig, out_dir, "location_centers.png")


def _per_class(result: LocationDistribution, out_dir: str | Path, n: int) -> Path:
    instances = result.per_class.sum(axis=(1, 2))  # [K]
    rows = np.argsort(-instances, kind="stable")[:n]
    rows = rows[instances[rows] > 0]
    cols = max(1, min(MAX_COLUMNS, rows.size))
    nrows = max(1, math.ceil(rows.size / cols))
    fig = new_figure(max(4.8, 2.3 * cols + 0.9), 2.35 * nrows + 0.7)
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False).ravel())
    im = None
    for ax, k in zip(axes, rows, strict=False):
        m = result.per_class[k]
        im = heatmap(ax, m / m.max(), vmax=1.0)
        ax.set_title(f"{short_name(result.name[k], 20)} ({int(instances[k]):,})", fontsize=9)
    for i, ax in enumerate(axes):
        ax.set_xticks([0.0, 0.5, 1.0])
        ax.set_yticks([0.0, 0.5, 1.0])
        ax.tick_params(labelsize=7, labelbottom=i + cols >= max(1, rows.size), labelleft=i % cols == 0)
    if rows.size == 0:
        note_empty(axes[0])
    for ax in axes[max(1, rows.size) :]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=list(axes), label="share of the class's busiest cell", shrink=0.6, aspect=30)
    present = int((instances > 0).sum())
    fig.suptitle(
        f"Box centres of the top {rows.size} {'class' if rows.size == 1 else 'classes'} by boxes "
        f"(of {present:,} with boxes)"
        if present
        else "Box centres per class",
        fontsize=10,
    )
    return save(fig, out_dir, "location_per_class.png")
