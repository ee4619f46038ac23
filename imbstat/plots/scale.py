"""Figures of scale imbalance (survey Fig. 7, Sec. 5.2): relative sizes, aspect ratio, size buckets, FPN levels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes

from imbstat.plots.figure import bar_histogram, fmt_score, new_figure, note_empty, save
from imbstat.stats.scale import ASPECT_LIMIT, FPN_LEVELS, SIZE_BUCKETS, ScaleDistribution

RELATIVE_PANELS = (
    ("relative_width", "Relative width  w / W"),
    ("relative_height", "Relative height  h / H"),
    ("relative_area", "Relative area  wh / (WH)"),
)


def plot_scale(result: ScaleDistribution, out_dir: str | Path) -> list[Path]:
    """Write the scale figures of ``result`` as PNGs in ``out_dir``; returns their paths.

    ``scale_relative.png`` always (Fig. 7: relative width, height, area on
    [0, 1], log y); ``scale_aspect_ratio.png`` and ``scale_buckets.png`` (COCO
    small/medium/large and FPN levels P2–P5) only when pixel sizes are known
    (``result.aspect_ratio`` / ``result.size_buckets`` not None).
    """
    paths = [_relative(result, out_dir)]
    if result.aspect_ratio is not None:
        paths.append(_aspect_ratio(result, out_dir))
    if result.size_buckets is not None and result.fpn_levels is not None:
        paths.append(_buckets(result, out_dir))
    return paths


def _relative(result: ScaleDistribution, out_dir: str | Path) -> Path:
    fig = new_figure(13.0, 4.0)
    axes = fig.subplots(1, 3, sharey=True)
    scores = result.scores
    for ax, (key, label) in zip(axes, RELATIVE_PANELS, strict=True):
        hist = getattr(result, key)
        bar_histogram(ax, hist.edges, hist.counts)
        ax.set_xlabel(label)
        ax.set_title(f"{label.split('  ')[0]} — W1 score {fmt_score(scores[key])}", fontsize=10)
    axes[0].set_ylabel("boxes (log scale)")
    fig.suptitle(f"Box size relative to the image ({result.relative_width.total:,} boxes)", fontsize=11)
    return save(fig, out_dir, "scale_relative.png")


def _aspect_ratio(result: ScaleDistribution, out_dir: str | Path) -> Path:
    hist = result.aspect_ratio
    assert hist is not None
    fig = new_figure(7.5, 4.2)
    ax = fig.add_subplot()
    bar_histogram(ax, hist.edges, hist.counts)
    ax.axvline(0.0, color="0.35", linestyle=":", linewidth=0.9)
    # log2(w/h) on integer ticks, labelled as the ratio w:h; the end bins are open (clipped values).
    exps = np.arange(-int(ASPECT_LIMIT), int(ASPECT_LIMIT) + 1)
    labels = [f"1:{2**-e}" if e < 0 else f"{2**e}:1" for e in exps]
    labels[0], labels[-1] = f"≤{labels[0]}", f"≥{labels[-1]}"
    ax.set_xticks(exps, labels, fontsize=8)
    ax.set_xlabel("aspect ratio w : h  (log2 scale; ← tall · wide →)")
    ax.set_ylabel("boxes (log scale)")
    ax.set_title(
        f"Aspect ratio log2(w / h) ({hist.total:,} boxes) — W1 score {fmt_score(result.scores['aspect_ratio'])}",
        fontsize=10,
    )
    return save(fig, out_dir, "scale_aspect_ratio.png")


def _buckets(result: ScaleDistribution, out_dir: str | Path) -> Path:
    assert result.size_buckets is not None and result.fpn_levels is not None
    scores = result.scores
    fig = new_figure(10.0, 4.0)
    left, right = fig.subplots(1, 2)
    _count_bars(
        left,
        result.size_buckets,
        [f"{b}\n{r}" for b, r in zip(SIZE_BUCKETS, ("< 32²", "32²–96²", "≥ 96²"), strict=True)],
        ["#55a868", "#4c72b0", "#8172b2"],
    )
    left.set_title(f"COCO size buckets (original image) — W1 score {fmt_score(scores['size_buckets'])}", fontsize=10)
    left.set_xlabel("box area w·h in pixels")
    _count_bars(right, result.fpn_levels, [f"P{k}" for k in FPN_LEVELS], ["#c44e52"] * len(FPN_LEVELS))
    right.set_title(f"FPN level — W1 score {fmt_score(scores['fpn_levels'])}", fontsize=10)
    short, long = result.resize.short, result.resize.long
    right.set_xlabel(f"⌊4 + log2(√(wh) / 224)⌋ in 2–5, w, h after resize to {short:g}×{long:g}")
    left.set_ylabel("boxes")
    return save(fig, out_dir, "scale_buckets.png")


def _count_bars(ax: Axes, counts: np.ndarray, labels: list[str], colors: list[str]) -> None:
    """Linear bars of a few named counts, each labelled with its count and share."""
    x = np.arange(counts.size)
    bars = ax.bar(x, counts, color=colors, width=0.65)
    ax.set_xticks(x, labels)
    total = int(counts.sum())
    if total:
        ax.bar_label(bars, [f"{int(c):,}\n{c / total:.0%}" for c in counts], fontsize=8, padding=2)
        ax.set_ylim(0, counts.max() * 1.25)
    else:
        ax.set_ylim(0, 1)
        note_empty(ax)
    ax.grid(axis="y", alpha=0.3)
