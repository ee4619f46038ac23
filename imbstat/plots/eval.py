"""Figures of accuracy against class frequency: AP per class against training instances, AP per LVIS group,
AP by object size beside the GT share, and the IoU of the true positives."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imbstat.plots.figure import BAR_COLOR, GROUP_COLORS, bar_histogram, new_figure, note_empty, save
from imbstat.stats.eval import GROUPS, SIZES, Evaluation

SIZE_LABELS = ("< 32² px²", "32²–96² px²", "≥ 96² px²")  # COCO's area ranges


def plot_eval(result: Evaluation, out_dir: str | Path) -> list[Path]:
    """``eval_ap_frequency.png``, ``eval_groups.png``, ``eval_size.png`` and ``eval_tp_iou.png``."""
    return [_ap_frequency(result, out_dir), _groups(result, out_dir), _size(result, out_dir), _tp_iou(result, out_dir)]


def _ap_frequency(result: Evaluation, out_dir: str | Path) -> Path:
    fig = new_figure(7.0, 4.6)
    ax = fig.add_subplot()
    x = result.frequency_instances.astype(np.float64)
    shown = ~np.isnan(result.ap) & (x > 0)  # a class without training instances has no place on a log axis
    group = result.group
    what = "training" if result.basis == "train" else "GT"
    if shown.any():
        for g in GROUPS:
            use = shown & (group == g)
            if use.any():
                ax.scatter(x[use], result.ap[use], s=16, color=GROUP_COLORS[g], label=f"{g} ({int(use.sum())})",
                           alpha=0.85, linewidth=0)  # fmt: skip
        ax.set_xscale("log")
        corr = result.frequency_correlation
        if not np.isnan(corr["slope_per_decade"]):
            lx = np.log10(x[shown])
            slope, intercept = np.polyfit(lx, result.ap[shown], 1)
            line = np.linspace(lx.min(), lx.max(), 50)
            ax.plot(10**line, intercept + slope * line, color="0.2", linewidth=1.0, linestyle="--",
                    label=f"{slope:+.3f} AP per decade")  # fmt: skip
        ax.legend(fontsize=8, loc="lower right")
        ax.text(0.02, 0.97, f"Spearman {corr['spearman']:.3f} over {corr['classes']} classes", transform=ax.transAxes,
                va="top", fontsize=8.5)  # fmt: skip
    else:
        note_empty(ax, "no class with an AP")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.set_xlabel(f"{what} instances of the class (log scale)")
    ax.set_ylabel("AP (IoU 0.50:0.95)")
    ax.set_title(f"AP per class against {what} frequency", fontsize=10)
    return save(fig, out_dir, "eval_ap_frequency.png")


def _groups(result: Evaluation, out_dir: str | Path) -> Path:
    fig = new_figure(6.0, 4.2)
    ax = fig.add_subplot()
    groups = result.groups
    ap = [groups[g]["ap"] for g in GROUPS]
    ax.bar(range(3), np.nan_to_num(ap), color=[GROUP_COLORS[g] for g in GROUPS])
    for i, value in enumerate(ap):
        text = "no AP" if np.isnan(value) else f"{value:.3f}"
        ax.text(i, np.nan_to_num(value) + 0.01, text, ha="center", va="bottom", fontsize=9)
    ax.set_xticks(range(3), [f"{g}\n{groups[g]['classes_with_ap']} of {groups[g]['classes']} classes"
                             for g in GROUPS])  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylabel("mean per-class AP")
    basis = "training" if result.basis == "train" else "GT"
    ax.set_title(f"AP per LVIS group ({basis} images: rare ≤ 10, common 11–100, frequent > 100)", fontsize=10)
    return save(fig, out_dir, "eval_groups.png")


def _size(result: Evaluation, out_dir: str | Path) -> Path:
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    at = np.arange(3)
    values = {"GT share": result.size_share, "AP": np.asarray([result.summary[f"ap_{s}"] for s in SIZES]),
              "AR": result.size_ar}  # fmt: skip
    for j, ((label, v), color) in enumerate(zip(values.items(), ("0.6", BAR_COLOR, "#55a868"), strict=True)):
        ax.bar(at + (j - 1) * 0.27, np.nan_to_num(v), width=0.27, color=color, label=label)
    ax.set_xticks(at, [f"{s}\n{label}" for s, label in zip(SIZES, SIZE_LABELS, strict=True)])
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("AP and AR by object size, beside the share of GTs of that size", fontsize=10)
    return save(fig, out_dir, "eval_size.png")


def _tp_iou(result: Evaluation, out_dir: str | Path) -> Path:
    fig = new_figure(7.0, 4.2)
    ax = fig.add_subplot()
    hist = result.tp_iou["overall"]
    bar_histogram(ax, hist.edges, hist.counts)
    centres = (hist.edges[:-1] + hist.edges[1:]) / 2
    for g in GROUPS:
        h = result.tp_iou[g]
        if h.total:
            ax.plot(centres, h.counts, marker="o", markersize=3, color=GROUP_COLORS[g], label=f"{g} ({h.total:,})")
    if hist.total:
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel("IoU of a true positive (at IoU 0.5) with its matched GT")
    ax.set_ylabel("true positives (log scale)")
    ax.set_title(f"IoU of the {hist.total:,} true positives at IoU 0.5 (area all, max {result.max_dets} per image)",
                 fontsize=10)  # fmt: skip
    return save(fig, out_dir, "eval_tp_iou.png")
