"""Figures of a comparison of two datasets: each distribution of A overlaid on that of B.

The inputs are the two sides' result objects by section name (a side may be a
report saved earlier, read back: ``Comparison.a.views``) and the comparison
document (``Comparison.to_dict()``), read for its dataset paths and shift scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from imbstat.plots.figure import fmt_score, heatmap, new_figure, note_empty, save, short_name
from imbstat.plots.scale import RELATIVE_PANELS

SIDE_COLORS = ("#1f77b4", "#d62728")  # A, B
DIFF_CMAP = "RdBu_r"  # B - A: red where B has the larger share
SHIFT_BARS = 10


def plot_compare(
    results_a: dict[str, Any], results_b: dict[str, Any], compared: dict[str, Any], out_dir: str | Path
) -> list[Path]:
    """Write the comparison figures as PNGs in ``out_dir``; returns their paths.

    ``compare_classes.png``: the two rank–frequency curves (share of instances
    per rank, log y) and the classes whose share changed most;
    ``compare_scale.png``: relative width, height and area of both sides as
    step lines of the share of boxes per bin (log y); ``compare_location.png``:
    both centre maps as shares of their boxes, and B - A when the grids match.
    """
    labels = _labels(compared)
    sides = (results_a, results_b)
    return [
        _classes(sides, compared["classes"], labels, out_dir),
        _scale(sides, compared["scale"]["scores"], labels, out_dir),
        _location(sides, compared["location"]["scores"], labels, out_dir),
    ]


def _labels(compared: dict) -> tuple[str, str]:
    names = [Path(str(compared[s].get("path", ""))).name for s in ("a", "b")]
    return (f"A: {short_name(names[0], 28)}", f"B: {short_name(names[1], 28)}")


def _shares(counts: object) -> np.ndarray:
    """Counts as shares of their total; all zeros when the total is 0."""
    c = np.asarray(counts, np.float64)
    total = c.sum()
    return c / total if total else c


def _log_share_axis(ax: Axes, shares: list[np.ndarray]) -> None:
    positive = np.concatenate([s[s > 0] for s in shares] + [np.ones(1)])
    ax.set_ylim(positive.min() / 2, 1.5)
    ax.set_yscale("log", nonpositive="clip")
    ax.grid(axis="y", which="major", alpha=0.3)


def _classes(sides: tuple[dict, dict], compared: dict, labels: tuple[str, str], out_dir: str | Path) -> Path:
    fig = new_figure(13.0, 4.8)
    left, right = fig.subplots(1, 2, width_ratios=[1.2, 1.0])
    curves = []
    for results, label, color in zip(sides, labels, SIDE_COLORS, strict=True):
        counts = np.sort(results["classes"].instances)[::-1]  # [K] rank–frequency
        share = _shares(counts)
        curves.append(share)
        if share.size:
            left.stairs(share, np.arange(share.size + 1) + 0.5, color=color, linewidth=1.4, label=label)
    _log_share_axis(left, curves)
    left.set_xlabel("class rank (by instances)")
    left.set_ylabel("share of instances (log scale)")
    left.set_xlim(0.5, max(2, *(c.size for c in curves)) + 0.5)
    if any(c.sum() for c in curves):
        left.legend(fontsize=8, frameon=False)
    else:
        note_empty(left)
    scores = compared["scores"]
    left.set_title(f"Rank–frequency — shift (2·W1) {fmt_score(scores.get('w1_score'))}", fontsize=10)

    rows = compared["shifts"][:SHIFT_BARS]
    y = np.arange(len(rows))
    for offset, side, label, color in ((-0.2, "a", labels[0], SIDE_COLORS[0]), (0.2, "b", labels[1], SIDE_COLORS[1])):
        right.barh(y + offset, [r[f"share_{side}"] for r in rows], height=0.4, color=color, label=label)
    right.set_yticks(y, [short_name(r["name"], 24) for r in rows], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("share of instances")
    right.grid(axis="x", alpha=0.3)
    if rows:
        right.legend(fontsize=8, frameon=False, loc="lower right")
    else:
        note_empty(right, "no change" if fmt_score(scores.get("tv_distance")) != "n/a" else "no instances on one side")
    right.set_title(
        f"Largest share changes — total variation {fmt_score(scores.get('tv_distance'))}, "
        f"{scores.get('gained', 0)} gained, {scores.get('lost', 0)} lost",
        fontsize=10,
    )
    return save(fig, out_dir, "compare_classes.png")


def _scale(sides: tuple[dict, dict], scores: dict, labels: tuple[str, str], out_dir: str | Path) -> Path:
    fig = new_figure(13.0, 4.0)
    axes = fig.subplots(1, 3, sharey=True)
    all_shares = []
    for ax, (key, label) in zip(axes, RELATIVE_PANELS, strict=True):
        for results, side_label, color in zip(sides, labels, SIDE_COLORS, strict=True):
            hist = getattr(results["scale"], key)
            share = _shares(hist.counts)
            all_shares.append(share)
            ax.stairs(share, np.asarray(hist.edges, np.float64), color=color, linewidth=1.2, label=side_label)
        ax.set_xlim(0.0, 1.0)
        ax.set_xlabel(label)
        ax.set_title(f"{label.split('  ')[0]} — shift {fmt_score(scores.get(key))}", fontsize=10)
    _log_share_axis(axes[0], all_shares)
    axes[0].set_ylabel("share of boxes (log scale)")
    axes[0].legend(fontsize=8, frameon=False)
    if not any(s.sum() for s in all_shares):
        for ax in axes:
            note_empty(ax)
    fig.suptitle("Box size relative to the image, A and B (shift = 2·W1 between them)", fontsize=11)
    return save(fig, out_dir, "compare_scale.png")


def _location(sides: tuple[dict, dict], scores: dict, labels: tuple[str, str], out_dir: str | Path) -> Path:
    maps = [_shares(results["location"].counts) for results in sides]  # [G, G] each, row = y
    fig = new_figure(14.0, 4.6)
    axes = fig.subplots(1, 3)
    vmax = max(1e-12, *(float(m.max(initial=0)) for m in maps))
    im = None
    for ax, m, label in zip(axes[:2], maps, labels, strict=True):
        im = heatmap(ax, m, vmax)
        ax.set_xlabel("x / W")
        ax.set_title(f"{label} ({m.shape[0]}×{m.shape[0]} cells)", fontsize=10)
        if not m.sum():
            note_empty(ax)
    axes[0].set_ylabel("y / H  (down, as in the image)")
    fig.colorbar(im, ax=list(axes[:2]), label="share of box centres per cell", shrink=0.9)
    if maps[0].shape == maps[1].shape:
        diff = maps[1] - maps[0]
        limit = max(1e-12, float(np.abs(diff).max(initial=0)))
        diff_im = heatmap(axes[2], diff, limit, vmin=-limit, cmap=DIFF_CMAP)
        axes[2].set_xlabel("x / W")
        fig.colorbar(diff_im, ax=axes[2], label="share B − share A", shrink=0.9)
        axes[2].set_title(f"B − A — shift xy {fmt_score(scores.get('xy'))}", fontsize=10)
    else:
        axes[2].set_axis_off()
        note_empty(axes[2], "different grids")
    fig.suptitle(
        f"Box centres over the normalised image — shift x {fmt_score(scores.get('x'))} · "
        f"y {fmt_score(scores.get('y'))} · xy {fmt_score(scores.get('xy'))}",
        fontsize=11,
    )
    return save(fig, out_dir, "compare_location.png")
