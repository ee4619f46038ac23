"""Figures of batch-level class imbalance (survey Fig. 6): absent probability per class, TV distance per batch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imbstat.plots.figure import BAR_COLOR, bar_histogram, fmt_score, new_figure, note_empty, save, short_name
from imbstat.stats.batch import QUANTILES, BatchDistribution

NAMED_CLASSES = 5  # the most frequent classes named beside their points


def plot_batch(result: BatchDistribution, out_dir: str | Path) -> list[Path]:
    """``batch_absent.png`` (absent probability against dataset share, one point per class) and
    ``batch_tv_distance.png`` (full batches per TV distance to the dataset's class distribution)."""
    return [_absent(result, out_dir), _tv_distance(result, out_dir)]


def _title(result: BatchDistribution) -> str:
    return f"batches of {result.batch_size}, {result.sampler}, {result.epochs} epochs ({result.full_batches:,} full)"


def _absent(result: BatchDistribution, out_dir: str | Path) -> Path:
    fig = new_figure(7.0, 4.6)
    ax = fig.add_subplot()
    share, absent = result.dataset_share, result.absent_probability
    shown = np.isfinite(absent) & (np.nan_to_num(share) > 0)  # a class without instances has no place on a log axis
    if shown.any():
        ax.scatter(share[shown], absent[shown], s=14, color=BAR_COLOR, alpha=0.8, linewidth=0)
        ax.set_xscale("log")
        for row in np.argsort(-np.where(shown, share, -1.0), kind="stable")[: min(NAMED_CLASSES, int(shown.sum()))]:
            ax.annotate(short_name(result.name[row], 20), (share[row], absent[row]), fontsize=7.5,
                        xytext=(4, 3), textcoords="offset points")  # fmt: skip
    else:
        note_empty(ax, "no full batch" if result.full_batches == 0 else "no boxes")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_xlabel("share of the dataset's instances (log scale)")
    ax.set_ylabel("P(absent from a full batch)")
    ax.set_title(f"Classes absent from a batch — {_title(result)}", fontsize=10)
    return save(fig, out_dir, "batch_absent.png")


def _tv_distance(result: BatchDistribution, out_dir: str | Path) -> Path:
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    hist = result.tv_histogram
    bar_histogram(ax, hist.edges, hist.counts)
    if hist.total:
        median = result.tv_quantiles[QUANTILES.index(0.5)]
        ax.axvline(median, color="0.15", linestyle="--", linewidth=1.0)
        ax.text(0.98, 0.95, f"median {median:.3f} · mean {result.tv_mean:.3f}", transform=ax.transAxes,
                ha="right", va="top", fontsize=8.5)  # fmt: skip
    ax.set_xlabel("total variation distance between a batch's class shares and the dataset's")
    ax.set_ylabel("full batches (log scale)")
    ax.set_title(f"TV distance per batch — W1 score {fmt_score(result.w1_mean)} (mean per batch)", fontsize=10)
    return save(fig, out_dir, "batch_tv_distance.png")
