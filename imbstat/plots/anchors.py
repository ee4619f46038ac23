"""Figures of anchor-level imbalance (survey Figs. 4, 12a, 14, 15): fg/bg, per class, IoU, per GT, space, overlap."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from imbstat.plots.anchor_maps import NO_FOREGROUND, NO_IMAGES, amount, overlap, relative_spatial
from imbstat.plots.classes import MAX_LABELLED_CLASSES, name_classes, rank_edges
from imbstat.plots.figure import (
    BAR_COLOR,
    bar_histogram,
    fmt_score,
    label_head_and_tail,
    log_count_axis,
    new_figure,
    note_empty,
    save,
    short_name,
)
from imbstat.scores import ClassScores
from imbstat.stats.anchors import AnchorStats
from imbstat.stats.scale import MEDIUM_MAX_AREA, SIZE_BUCKETS, SMALL_MAX_AREA
from imbstat.text import fg_bg_text

if TYPE_CHECKING:  # plots import no anchors module (tests/test_plots.py): the type only
    from imbstat.anchors.presets import Preset

FG_COLOR = BAR_COLOR
BG_COLOR = "0.55"
IGNORED_COLOR = "#dd8452"
LOW_QUALITY_COLOR = "#c44e52"
INSTANCE_COLOR = "#dd8452"
LABEL_COLORS = (FG_COLOR, BG_COLOR, IGNORED_COLOR)  # per_image columns: foreground, background, ignored
LABELS = ("foreground", "background", "ignored")
THRESHOLD_STYLE = {"color": "0.15", "linestyle": "--", "linewidth": 1.0}
_SMALL, _MEDIUM = round(SMALL_MAX_AREA**0.5), round(MEDIUM_MAX_AREA**0.5)  # COCO: 32, 96 px
BUCKET_RANGES = (f"< {_SMALL}²", f"{_SMALL}²–{_MEDIUM}²", f"≥ {_MEDIUM}²")
PER_GT_SERIES = (  # {low}: Preset.low_quality_term
    ("gt_low_quality_only", "only {low} fg anchors", LOW_QUALITY_COLOR),
    ("gt_below_pos", "no anchor with IoU ≥ pos", "#8172b2"),
    ("gt_unmatched", "no foreground anchor", "0.3"),
)
MAX_INTEGER_BINS = 60  # beyond this many values, anchors per image are binned several values to a bar
BINS_PER_DECADE = 8


def plot_anchors(result: AnchorStats, out_dir: str | Path) -> list[Path]:
    """Write the anchor figures of ``result`` as PNGs in ``out_dir``; returns their paths, in this order.

    ``anchors_fg_bg.png`` (Fig. 4a: mean foreground, background and ignored
    anchors per image, log y, and their distributions over images),
    ``anchors_per_class.png`` (Fig. 4b: foreground anchors and instances per
    class and image in rank order of anchors, log y), ``anchors_positive_iou.png``
    (Fig. 12a: IoU of foreground anchors in bins of 0.05, low-quality ones
    apart, log y), ``anchors_per_gt.png`` (foreground anchors per GT by COCO
    size bucket, and their distribution), ``anchors_relative_spatial.png``
    (Fig. 14: anchor top-left corners and centres in the frame of their GT) and
    ``anchors_overlap.png`` (Fig. 15: mean number of foreground and background
    anchors covering each cell of the normalised image).
    """
    scores = result.scores  # a property that solves transport problems: compute once
    return [
        _fg_bg(result, out_dir),
        _per_class(result, scores["foreground_classes"], out_dir),
        _positive_iou(result, scores["positive_iou"], out_dir),
        _per_gt(result, out_dir),
        relative_spatial(result, scores, out_dir),
        overlap(result, scores, out_dir),
    ]


# --- Fig. 4a: foreground vs background ------------------------------------------------------------------------------


def _fg_bg(result: AnchorStats, out_dir: str | Path) -> Path:
    per_image = result.per_image  # [I, 3] foreground, background, ignored
    n = result.num_images
    totals = result.totals
    fig = new_figure(15.0, 4.6)
    means, fg_hist, spread = fig.subplots(1, 3, width_ratios=[0.75, 1.1, 1.1])

    mean = per_image.mean(axis=0) if n else np.zeros(3)  # [3]
    x = np.arange(3)
    means.bar(x, mean, width=0.65, color=LABEL_COLORS, linewidth=0)
    _log_value_axis(means, mean)
    for xi, v in zip(x, mean, strict=True):
        if v > 0:
            means.text(xi, v * 1.15, amount(v), ha="center", va="bottom", fontsize=8.5)
    means.set_xticks(x, LABELS, fontsize=9)
    means.set_xlim(-0.6, 2.6)
    means.set_ylabel("anchors per image (log scale)")
    means.grid(axis="y", which="major", alpha=0.3)
    means.set_title("Mean per image", fontsize=10)

    _fg_histogram(fg_hist, per_image[:, 0])
    _spread(spread, per_image)
    if n == 0:
        for ax in (means, fg_hist, spread):
            note_empty(ax, NO_IMAGES)

    p = result.preset
    fig.suptitle(
        f"Foreground vs background anchors ({short_name(p.name)} preset: fg IoU ≥ {p.pos_iou:g}, "
        f"bg IoU < {p.neg_iou:g}, "
        f"ignored between; {n:,} images, {totals['total']:,} anchors)\n"
        f"fg : bg = {fg_bg_text(totals['foreground'] / totals['background'] if totals['background'] else math.nan)} · "
        f"foreground {totals['foreground']:,} · background {totals['background']:,} · "
        f"ignored {totals['ignored']:,}",
        fontsize=11,
    )
    return save(fig, out_dir, "anchors_fg_bg.png")


def _fg_histogram(ax: Axes, fg: np.ndarray) -> None:
    """Images per number of foreground anchors; bars hold one value each, or a run of values when many."""
    top = int(fg.max(initial=0))
    step = max(1, int(np.ceil((top + 1) / MAX_INTEGER_BINS)))
    edges = np.arange(0, top + step + 1, step) - 0.5  # bar j holds values [j·step, (j+1)·step)
    counts = np.histogram(fg, bins=edges)[0]
    if fg.size:
        bar_histogram(ax, edges, counts, color=FG_COLOR)
        ax.axvline(float(fg.mean()), **THRESHOLD_STYLE, label=f"mean {fg.mean():,.1f}")
        ax.axvline(float(np.median(fg)), color="0.15", linestyle=":", linewidth=1.0, label=f"median {np.median(fg):g}")
        zeros = int((fg == 0).sum())
        ax.legend(loc="upper right", fontsize=8, title=f"images with 0: {zeros:,}" if zeros else None, title_fontsize=8)
    else:
        log_count_axis(ax, counts)
        ax.set_xlim(edges[0], edges[-1])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlabel("foreground anchors in the image" + (f" (bars of {step})" if step > 1 else ""))
    ax.set_ylabel("images (log scale)")
    ax.set_title("Foreground anchors per image", fontsize=10)


def _spread(ax: Axes, per_image: np.ndarray) -> None:
    """Images per number of anchors of each label, on log-spaced bins: the gap between fg and bg per image."""
    top = int(per_image.max(initial=0))
    decades = max(1, int(np.ceil(np.log10(top + 1))))
    edges = np.logspace(0, decades, decades * BINS_PER_DECADE + 1)  # [1, 10^decades], zeros left out
    histograms = [np.histogram(per_image[:, j], bins=edges)[0] for j in range(3)]
    for counts, label, color, column in zip(histograms, LABELS, LABEL_COLORS, per_image.T, strict=True):
        zeros = int((column == 0).sum())
        name = label + (f" (0 in {zeros:,} images)" if zeros else "")
        ax.stairs(counts, edges, color=color, linewidth=1.6, label=name)
    log_count_axis(ax, np.concatenate(histograms))
    ax.set_xscale("log")
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("anchors in the image (log scale)")
    ax.set_ylabel("images (log scale)")
    ax.grid(which="major", alpha=0.3)
    if len(per_image):
        ax.legend(loc="upper left", fontsize=8)
    ax.set_title("Distribution over images", fontsize=10)


# --- Fig. 4b: per class ---------------------------------------------------------------------------------------------


def _per_class(result: AnchorStats, score: float, out_dir: str | Path) -> Path:
    n = max(result.num_images, 1)
    instances = result.gt_count.sum(axis=1)  # [K]
    order = np.lexsort((-instances, -result.class_foreground))  # by anchors, ties by instances, both descending
    fg = result.class_foreground[order] / n  # [K] per image, descending
    inst = instances[order] / n
    names = result.name[order]
    k = fg.size
    labelled = k <= MAX_LABELLED_CLASSES
    fig = new_figure(max(8.0, 0.16 * k + 1.8) if labelled else 12.0, 5.4 if labelled else 5.8)
    ax = fig.add_subplot()
    if labelled:
        _class_bars(ax, fg, inst, names)
    else:
        _class_profile(ax, fg, inst, names)
    _log_value_axis(ax, np.concatenate([fg, inst]), headroom=4.0)
    ax.set_ylabel("per image (log scale)")
    ax.grid(axis="y", which="major", alpha=0.3)
    if k == 0:
        note_empty(ax, "no classes")
    elif not fg.any():
        note_empty(ax, NO_FOREGROUND)
    if k:
        handles, labels = ax.get_legend_handles_labels()  # the bars first, as in the title
        ax.legend(handles[::-1], labels[::-1], loc="upper right", fontsize=8.5)
    total_fg, total_inst = int(result.class_foreground.sum()), int(instances.sum())
    per_instance = f"{total_fg / total_inst:,.1f}" if total_inst else "n/a"
    ax.set_title(
        f"Foreground anchors and instances per class, per image ({k:,} classes, {result.num_images:,} images, "
        f"{short_name(result.preset.name)})\n"
        f"W1 score  anchors {fmt_score(score)} · instances {fmt_score(ClassScores.of(instances).w1_score)} · "
        f"{per_instance} foreground anchors per instance",
        fontsize=10,
    )
    return save(fig, out_dir, "anchors_per_class.png")


def _class_bars(ax: Axes, fg: np.ndarray, inst: np.ndarray, names: np.ndarray) -> None:
    """One bar of anchors and one marker of instances per class, every class named under its bar."""
    x = np.arange(fg.size)
    ax.bar(x, fg, width=0.8, color=FG_COLOR, linewidth=0, label="foreground anchors / image")
    ax.scatter(x, np.where(inst > 0, inst, np.nan), s=14, marker="D", color=INSTANCE_COLOR, zorder=3,
               label="instances / image")  # fmt: skip
    name_classes(ax, names, (fg == 0) & (inst == 0))
    ax.set_xlabel("class (ranked by foreground anchors)")


def _class_profile(ax: Axes, fg: np.ndarray, inst: np.ndarray, names: np.ndarray) -> None:
    """Anchors as a filled rank profile, instances as points; head and tail classes named with leaders."""
    edges = rank_edges(ax, fg)
    ax.stairs(fg, edges, fill=True, color=FG_COLOR, linewidth=0, label="foreground anchors / image")
    ax.scatter(np.arange(1, fg.size + 1), np.where(inst > 0, inst, np.nan), s=3, color=INSTANCE_COLOR, alpha=0.7,
               linewidths=0, label="instances / image")  # fmt: skip
    ax.set_xlabel("class rank (by foreground anchors)")
    label_head_and_tail(ax, names, fg, lambda v: f"{v:,.3g}")


# --- Fig. 12a: IoU of positive anchors ------------------------------------------------------------------------------


def _low_quality_label(p: Preset) -> str:
    low = p.low_quality_term()
    return f"{low} (IoU < {p.pos_iou:g})" if low == "low-quality" else low


def _positive_iou(result: AnchorStats, score: float, out_dir: str | Path) -> Path:
    p = result.preset
    edges = result.iou_edges
    low = result.positive_iou_low_quality  # [B] a part of positive_iou
    high = result.positive_iou - low
    total, lows = int(result.positive_iou.sum()), int(low.sum())
    fig = new_figure(8.5, 4.6)
    ax = fig.add_subplot()
    width = np.diff(edges)
    ax.bar(edges[:-1], high, width=width, align="edge", color=FG_COLOR, linewidth=0.4, edgecolor="white",
           label=f"IoU ≥ {p.pos_iou:g}: {total - lows:,}")  # fmt: skip
    ax.bar(edges[:-1], low, width=width, bottom=high, align="edge", color=LOW_QUALITY_COLOR, linewidth=0.4,
           edgecolor="white", label=f"{_low_quality_label(p)}: {lows:,}")  # fmt: skip
    log_count_axis(ax, result.positive_iou)
    ax.axvline(p.pos_iou, **THRESHOLD_STYLE, label=f"positive threshold {p.pos_iou:g}")
    if p.low_quality and p.min_pos_iou > 0:
        ax.axvline(p.min_pos_iou, color="0.15", linestyle=":", linewidth=1.0,
                   label=f"low-quality minimum {p.min_pos_iou:g}")  # fmt: skip
    ax.set_xlim(0.0, 1.0)
    ax.set_xticks(np.linspace(0.0, 1.0, 11))
    ax.set_xlabel("IoU of the anchor with its assigned GT (bins of 0.05)")
    ax.set_ylabel("foreground anchors (log scale)")
    ax.grid(axis="y", which="major", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8.5)
    if total == 0:
        note_empty(ax, NO_FOREGROUND)
    share = f"{100 * lows / total:.1f}%" if total else "n/a"
    ax.set_title(
        f"IoU of foreground anchors ({short_name(p.name)}, {total:,} anchors) — W1 score {fmt_score(score)}\n"
        f"log y scale: on a linear one the {p.low_quality_term()} bins would not show · their share {share}",
        fontsize=10,
    )
    return save(fig, out_dir, "anchors_positive_iou.png")


# --- Per GT ---------------------------------------------------------------------------------------------------------


def _per_gt(result: AnchorStats, out_dir: str | Path) -> Path:
    fig = new_figure(15.0, 4.6)
    mean_ax, share_ax, hist_ax = fig.subplots(1, 3, width_ratios=[0.9, 1.1, 1.3])
    gts = np.append(result.gt_count.sum(axis=0), result.gt_count.sum())  # [4] small, medium, large, all
    fg = np.append(result.gt_foreground.sum(axis=0), result.gt_foreground.sum())
    has = gts > 0
    mean = np.divide(fg, gts, out=np.zeros(4), where=has)
    x = np.arange(4)
    ticks = [f"{b}\n{r}\n{g:,} GTs" for b, r, g in zip(SIZE_BUCKETS, BUCKET_RANGES, gts, strict=False)]
    ticks.append(f"all\n\n{gts[3]:,} GTs")

    mean_ax.bar(x, mean, width=0.65, color=["#55a868", "#4c72b0", "#8172b2", "0.35"], linewidth=0)
    for xi, v, ok in zip(x, mean, has, strict=True):
        mean_ax.text(xi, v, f"{v:.1f}" if ok else "–", ha="center", va="bottom", fontsize=8.5)
    mean_ax.set_xticks(x, ticks, fontsize=8)
    mean_ax.set_ylim(0.0, max(1.0, float(mean.max()) * 1.15))
    mean_ax.set_ylabel("foreground anchors per GT (mean)")
    mean_ax.grid(axis="y", alpha=0.3)
    mean_ax.set_title("Mean foreground anchors per GT", fontsize=10)

    width = 0.26
    top = 0.0
    for j, (field, label, color) in enumerate(PER_GT_SERIES):
        table = getattr(result, field)  # [K, 3]
        counts = np.append(table.sum(axis=0), table.sum())
        pct = np.divide(100.0 * counts, gts, out=np.zeros(4), where=has)
        top = max(top, float(pct.max()))
        xs = x + (j - 1) * width
        label = label.format(low=result.preset.low_quality_term())
        share_ax.bar(xs, pct, width=width, color=color, linewidth=0, label=f"{label}: {int(counts[3]):,}")
        for xi, v, c in zip(xs, pct, counts, strict=True):
            if c:
                share_ax.text(xi, v, f"{v:.1f}%" if v < 10 else f"{v:.0f}%", ha="center", va="bottom", fontsize=6.5)
    share_ax.set_xticks(x, ticks, fontsize=8)
    share_ax.set_ylim(0.0, max(5.0, top * 1.35))
    share_ax.set_ylabel("share of the bucket's GTs (%)")
    share_ax.grid(axis="y", alpha=0.3)
    share_ax.legend(loc="upper right", fontsize=7.5, title=f"pos = {result.preset.pos_iou:g}", title_fontsize=7.5)
    share_ax.set_title("GTs poorly served by the anchors", fontsize=10)
    if gts[3] == 0:
        for ax in (mean_ax, share_ax):
            note_empty(ax)

    hist = result.foreground_per_gt  # bin i holds value i
    bar_histogram(hist_ax, hist.edges - 0.5, hist.counts, color=FG_COLOR)
    hist_ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if hist.total:
        values = np.arange(hist.counts.size)
        hist_ax.text(
            0.98,
            0.95,
            f"mean {(values * hist.counts).sum() / hist.total:.1f} · max {int(values[hist.counts > 0].max())} · "
            f"GTs with 0: {int(hist.counts[0]):,}",
            transform=hist_ax.transAxes,
            ha="right",
            va="top",
            fontsize=8.5,
        )
    hist_ax.set_xlabel("foreground anchors assigned to the GT")
    hist_ax.set_ylabel("GTs (log scale)")
    hist_ax.set_title("Distribution over GTs", fontsize=10)

    dropped = f"; {result.gts_dropped:,} GTs take no part (crowd or no area)" if result.gts_dropped else ""
    if result.gts_below_min_side:
        dropped += f"; {result.gts_below_min_side:,} GTs with a side < {result.preset.min_gt_side:g} px take no part"
    fig.suptitle(
        f"Foreground anchors per GT by COCO size bucket of the GT in its image ({short_name(result.preset.name)}, "
        f"{gts[3]:,} GTs{dropped})",
        fontsize=11,
    )
    return save(fig, out_dir, "anchors_per_gt.png")


# --- shared -------------------------------------------------------------------------------------------------------


def _log_value_axis(ax: Axes, values: np.ndarray, headroom: float = 3.0) -> None:
    """Log y for non-negative values that need not be integers (means per image); zeros drop out.

    The bottom is 2.5 times below the smallest positive value, so that it
    still shows as a bar; the top leaves ``headroom`` for labels and legends. Limits
    come first, so that all-zero data never warns (as in ``log_count_axis``).
    """
    positive = values[values > 0]
    if positive.size:
        low = float(positive.min()) / 2.5
        high = float(positive.max()) * headroom
    else:
        low, high = 0.1, 10.0
    ax.set_ylim(low, high)
    ax.set_yscale("log", nonpositive="clip")
