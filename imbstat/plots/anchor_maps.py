"""Anchor maps (survey Figs. 14, 15): foreground anchors in the frame of their GT, and overlap over the image."""

from __future__ import annotations

from pathlib import Path

from matplotlib.patches import Rectangle

from imbstat.plots.figure import fmt_score, heatmap, new_figure, note_empty, save, short_name
from imbstat.stats.anchor_sums import RELATIVE_LIMIT
from imbstat.stats.anchors import AnchorStats

LABEL_BOX = {"boxstyle": "round,pad=0.2", "facecolor": "black", "alpha": 0.45, "edgecolor": "none"}
NO_IMAGES = "no images"
NO_FOREGROUND = "no foreground anchors"
# The frame of a GT box: x to the right, y down, as in the image; row 0 (top) is offset -0.5.
RELATIVE_EXTENT = (-RELATIVE_LIMIT, RELATIVE_LIMIT, RELATIVE_LIMIT, -RELATIVE_LIMIT)


# --- Fig. 14: relative spatial distribution -------------------------------------------------------------------------


def relative_spatial(result: AnchorStats, scores: dict[str, float], out_dir: str | Path) -> Path:
    fig = new_figure(12.0, 5.6)
    left, right = fig.subplots(1, 2)
    panels = (
        (left, result.relative_top_left, "relative_top_left", "top-left corner", "x1", "y1", "GT top-left"),
        (right, result.relative_center, "relative_center", "centre", "cx", "cy", "GT centre"),
    )
    for ax, counts, key, what, x, y, origin in panels:
        im = heatmap(ax, counts, vmax=max(1.0, float(counts.max(initial=0))), extent=RELATIVE_EXTENT)
        ax.set_aspect("equal")
        fig.colorbar(im, ax=ax, label="foreground anchors per cell", shrink=0.85)
        if key == "relative_top_left":  # the GT itself covers [0, 1]² of its frame: only its top-left quarter shows
            ax.add_patch(Rectangle((0.0, 0.0), 1.0, 1.0, fill=False, edgecolor="white", linestyle="--", linewidth=1.0))
            ax.text(0.47, 0.47, "GT box (dashed)", ha="right", va="bottom", color="white", fontsize=8.5, bbox=LABEL_BOX)
        ax.axhline(0.0, color="white", linewidth=0.6, alpha=0.6)
        ax.axvline(0.0, color="white", linewidth=0.6, alpha=0.6)
        ax.plot([0.0], [0.0], marker="+", markersize=14, markeredgewidth=2.0, color="#ff5050")
        ax.annotate(origin, (0.0, 0.0), xytext=(-8, -8), textcoords="offset points", ha="right", va="bottom",
                    color="white", fontsize=9, bbox=LABEL_BOX)  # fmt: skip
        ax.set_xlim(-RELATIVE_LIMIT, RELATIVE_LIMIT)
        ax.set_ylim(RELATIVE_LIMIT, -RELATIVE_LIMIT)
        ax.set_xlabel(f"(anchor {x} − GT {x}) / GT width")
        ax.set_ylabel(f"(anchor {y} − GT {y}) / GT height  (down)")
        ax.set_title(f"Anchor {what} in the GT's frame — W1 score {fmt_score(scores[key])}", fontsize=10)
        if not counts.any():
            note_empty(ax, NO_FOREGROUND)
    g = result.grid
    fig.suptitle(
        f"Relative spatial distribution of foreground anchors ({int(result.relative_center.sum()):,} anchors, "
        f"{short_name(result.preset.name)}, {g}×{g} cells; offsets beyond ±{RELATIVE_LIMIT:g} fall in the edge cells)",
        fontsize=11,
    )
    return save(fig, out_dir, "anchors_relative_spatial.png")


# --- Fig. 15: overlap maps ------------------------------------------------------------------------------------------


def overlap(result: AnchorStats, scores: dict[str, float], out_dir: str | Path) -> Path:
    n = result.num_images
    fig = new_figure(12.0, 5.6)
    left, right = fig.subplots(1, 2)
    panels = (
        (left, result.overlap_foreground, "overlap_foreground", "Foreground"),
        (right, result.overlap_background, "overlap_background", "Background"),
    )
    for ax, sums, key, what in panels:
        mean = sums / max(n, 1)  # [G, G] anchors covering the cell, mean over images
        im = heatmap(ax, mean, vmax=float(mean.max(initial=0)) or 1.0)
        ax.set_box_aspect(1.0)
        fig.colorbar(im, ax=ax, label="anchors covering the cell (mean per image)", shrink=0.85)
        ax.set_xlabel("x / W  (normalised image)")
        ax.set_ylabel("y / H  (down, as in the image)")
        spread = f"\nmin {amount(mean.min())} · max {amount(mean.max())} per cell" if mean.size else ""
        ax.set_title(f"{what} anchors — W1 score {fmt_score(scores[key])}{spread}", fontsize=10)
        if n == 0:
            note_empty(ax, NO_IMAGES)
        elif not mean.any():
            note_empty(ax, NO_FOREGROUND if key == "overlap_foreground" else "no background anchors")
    g = result.grid
    fig.suptitle(
        f"Overlap maps: how many anchors cover each cell of the normalised image ({short_name(result.preset.name)}, "
        f"{n:,} images, {g}×{g} cells)",
        fontsize=11,
    )
    return save(fig, out_dir, "anchors_overlap.png")


def amount(value: float) -> str:
    """A mean count for a label: one decimal below 1,000, none above, three significant digits below 1."""
    if value < 1:
        return f"{value:.3g}"
    return f"{value:,.1f}" if value < 1000 else f"{value:,.0f}"
