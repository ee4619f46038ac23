"""Figures of class imbalance (survey Fig. 5): long tail, objects per image, classes per image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from imbstat.plots.figure import (
    GROUP_COLORS,
    bar_histogram,
    fmt_score,
    label_head_and_tail,
    log_count_axis,
    new_figure,
    note_empty,
    save,
    short_name,
)
from imbstat.stats.classes import COMMON_MAX_IMAGES, RARE_MAX_IMAGES, ClassDistribution
from imbstat.stats.histogram import Histogram

# Up to this many classes every class gets a labelled bar (COCO's 80 fit at 7 pt);
# beyond it (LVIS 1,203, Open Images 600) the tail is a filled profile and only
# the head and the tail are named.
MAX_LABELLED_CLASSES = 80
FEW_CLASSES = 8  # names fit side by side, unrotated
GROUP_LABELS = {
    "frequent": f"frequent (> {COMMON_MAX_IMAGES} images)",
    "common": f"common ({RARE_MAX_IMAGES + 1}–{COMMON_MAX_IMAGES} images)",
    "rare": f"rare (1–{RARE_MAX_IMAGES} images)",
    "absent": "absent (0 images)",
}


def plot_classes(result: ClassDistribution, out_dir: str | Path) -> list[Path]:
    """Write Fig. 5a–c of ``result`` as PNGs in ``out_dir``; returns their paths.

    ``classes_long_tail.png`` (instances per class in rank–frequency order, log y,
    coloured by LVIS-style group of images per class), ``objects_per_image.png``
    and ``classes_per_image.png`` (number of images per count, log y).
    """
    return [
        _long_tail(result, out_dir),
        _per_image(
            result.objects_per_image,
            result.num_images,
            "Objects per image",
            "objects in the image",
            result.scores["objects_per_image"],
            out_dir,
            "objects_per_image.png",
        ),
        _per_image(
            result.classes_per_image,
            result.num_images,
            "Distinct classes per image",
            "distinct classes in the image",
            result.scores["classes_per_image"],
            out_dir,
            "classes_per_image.png",
        ),
    ]


def _long_tail(result: ClassDistribution, out_dir: str | Path) -> Path:
    order = result.order
    counts = result.instances[order]  # [K] descending
    names = result.name[order]
    groups = result.groups[order]
    k = counts.size
    labelled = k <= MAX_LABELLED_CLASSES
    fig = new_figure(max(7.0, 0.16 * k + 1.8) if labelled else 12.0, 5.2 if labelled else 5.6)
    ax = fig.add_subplot()
    if labelled:
        _labelled_bars(ax, counts, names, groups)
    else:
        _profile(ax, counts, names, groups)
    log_count_axis(ax, counts)
    ax.set_ylabel("instances (log scale)")
    ax.grid(axis="y", which="major", alpha=0.3)
    if k == 0:
        note_empty(ax, "no classes")
    elif not counts.any():
        note_empty(ax)
    present = [g for g in GROUP_LABELS if (groups == g).any()]
    if present:
        handles = [Patch(color=GROUP_COLORS[g], label=f"{GROUP_LABELS[g]}: {(groups == g).sum():,}") for g in present]
        ax.legend(handles=handles, title="group by images per class", loc="upper right", fontsize=8, title_fontsize=8)
    s = result.scores
    ax.set_title(
        f"Instances per class, rank–frequency ({k:,} classes, {int(counts.sum()):,} instances) — "
        f"W1 score {fmt_score(s['w1_score'])}\n"
        f"imbalance ratio {_ratio(s['imbalance_ratio'])} · Gini {fmt_score(s['gini'])} · "
        f"top-10% share {fmt_score(s['top10_share'])} · normalised entropy {fmt_score(s['normalized_entropy'])}",
        fontsize=10,
    )
    return save(fig, out_dir, "classes_long_tail.png")


def _labelled_bars(ax: Axes, counts: np.ndarray, names: np.ndarray, groups: np.ndarray) -> None:
    """One bar per class, every class named under its bar."""
    ax.bar(np.arange(counts.size), counts, width=0.8, color=[GROUP_COLORS[g] for g in groups], linewidth=0)
    name_classes(ax, names, groups == "absent")


def name_classes(ax: Axes, names: np.ndarray, absent: np.ndarray) -> None:
    """Every class named under its bar at x = 0, 1, ..., greyed where ``absent``; the x-axis fit to the bars."""
    few = names.size <= FEW_CLASSES
    ax.set_xticks(np.arange(names.size), [short_name(n) for n in names], rotation=0 if few else 90,
                  fontsize=9 if few else 7)  # fmt: skip
    for label, gone in zip(ax.get_xticklabels(), absent, strict=True):
        if gone:
            label.set_color("0.5")
    ax.set_xlim(-0.7, max(names.size, 1) - 0.3)


def rank_edges(ax: Axes, values: np.ndarray) -> np.ndarray:
    """[K + 1] step edges of a rank profile (rank r, 1-based, spans [r - 0.5, r + 0.5]), the x-axis set to them
    and the ranks past the last non-zero value (``values`` sorted descending) shaded as absent."""
    k = values.size
    edges = np.arange(k + 1) + 0.5
    nonzero = int(np.count_nonzero(values))  # a prefix: sorted descending
    if nonzero < k:  # above the profile drawn after it (zorder 1), below the grid (1.5)
        ax.axvspan(edges[nonzero], edges[-1], color=GROUP_COLORS["absent"], alpha=0.25, linewidth=0, zorder=1.01)
    ax.set_xlim(edges[0], edges[-1])
    return edges


def _profile(ax: Axes, counts: np.ndarray, names: np.ndarray, groups: np.ndarray) -> None:
    """The rank–frequency profile as filled steps per group; head and tail classes named with leaders."""
    edges = rank_edges(ax, counts)
    for g in ("frequent", "common", "rare"):
        ax.stairs(np.where(groups == g, counts, 0), edges, fill=True, color=GROUP_COLORS[g], linewidth=0)
    nonzero = int(np.count_nonzero(counts))  # a prefix: counts are sorted descending
    if nonzero:
        ax.stairs(counts[:nonzero], edges[: nonzero + 1], color="0.15", linewidth=0.7)
    ax.set_xlabel("class rank (by instances)")
    label_head_and_tail(ax, names, counts, lambda v: f"{int(v):,}")


def _per_image(
    hist: Histogram, num_images: int, what: str, xlabel: str, score: float, out_dir: str | Path, name: str
) -> Path:
    """Images per integer count (bin ``i`` holds value ``i``), bars centred on the integers, log y."""
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    counts = hist.counts
    bar_histogram(ax, hist.edges - 0.5, counts)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    values = np.arange(counts.size)
    total = int(counts.sum())
    if total:
        mean = float((values * counts).sum() / total)
        ax.text(
            0.98,
            0.95,
            f"mean {mean:.2f} · max {int(values[counts > 0].max())} · images with 0: {int(counts[0]):,}",
            transform=ax.transAxes,
            ha="right",
            va="top",
            fontsize=8.5,
        )
    ax.set_xlabel(xlabel)
    ax.set_ylabel("images (log scale)")
    ax.set_title(f"{what} ({num_images:,} images) — W1 score {fmt_score(score)}", fontsize=10)
    return save(fig, out_dir, name)


def _ratio(value: float) -> str:
    return fmt_score(value) if not np.isfinite(value) or value < 100 else f"{value:,.0f}"
