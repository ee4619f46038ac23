"""Figures of what the remedies do: instances per class before and after repeat-factor sampling, and the
class-balanced loss weights against the instances they weigh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.ticker import MaxNLocator, NullFormatter

from imbstat.plots.figure import fmt_score, log_count_axis, new_figure, note_empty, save
from imbstat.stats.class_balanced import ClassBalancedLoss
from imbstat.stats.repeat_factor import RepeatFactorSampling


def plot_repeat_factor(result: RepeatFactorSampling, out_dir: str | Path) -> list[Path]:
    """``repeat_factor_instances.png``: instances per class in the dataset's rank–frequency order, before and
    expected per resampled epoch (log y), with r_c on a second axis."""
    order = np.argsort(-result.instances, kind="stable")
    before, after, factor = result.instances[order], result.expected_instances[order], result.factor[order]
    ranks = np.arange(1, before.size + 1)
    fig = new_figure(10.0, 5.2)
    ax = fig.add_subplot()
    ax.step(ranks, before, where="mid", color="#4c72b0", linewidth=1.2, label="dataset")
    ax.step(ranks, after, where="mid", color="#d62728", linewidth=1.2, label="one resampled epoch (expected)")
    log_count_axis(ax, np.r_[before, after])
    ax.set_xlabel("class rank by instances in the dataset")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("instances (log scale)")
    ax.grid(axis="y", which="major", alpha=0.3)
    if before.size:
        ax.set_xlim(0.5, before.size + 0.5)
        twin = ax.twinx()
        twin.plot(ranks, factor, color="0.4", linestyle=":", linewidth=1.0, label="repeat factor r_c")
        twin.set_ylabel("repeat factor r_c")
        twin.set_ylim(bottom=0.0, top=max(2.0, float(np.nanmax(factor, initial=1.0)) * 1.1))
        twin.legend(loc="upper center", fontsize=8)
    if not before.any():
        note_empty(ax)
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(
        f"Repeat-factor sampling, threshold {result.threshold:g}: {result.epoch_images:,.1f} images per epoch "
        f"for {result.num_images:,}\nW1 score {fmt_score(result.scores_before['w1_score'])} → "
        f"{fmt_score(result.scores['w1_score'])} · Gini {fmt_score(result.scores_before['gini'])} → "
        f"{fmt_score(result.scores['gini'])}",
        fontsize=10,
    )
    return [save(fig, out_dir, "repeat_factor_instances.png")]


def plot_class_balanced(result: ClassBalancedLoss, out_dir: str | Path) -> list[Path]:
    """``class_balanced_weights.png``: each class's weight against its instances (log–log), and the loss mass
    weight · instances in the rank–frequency order beside the instances."""
    fig = new_figure(11.0, 4.8)
    left, right = fig.subplots(1, 2)
    present = result.instances > 0
    n, w = result.instances[present], result.weight[present]
    left.scatter(n, w, s=10, color="#4c72b0")
    if n.size:
        left.set_xscale("log")
        left.set_yscale("log")
        for axis in (left.xaxis, left.yaxis):  # decades only: minor labels overlap on a short range
            axis.set_minor_formatter(NullFormatter())
    else:
        note_empty(left)
    left.set_xlabel("instances of the class (log)")
    left.set_ylabel("class-balanced weight (log)")
    left.set_title(f"Weights, β = {result.beta:g} ({int((~present).sum())} classes without instances: 0)", fontsize=10)
    order = np.argsort(-result.instances, kind="stable")
    ranks = np.arange(1, order.size + 1)
    right.step(ranks, result.instances[order], where="mid", color="#4c72b0", label="instances")
    right.step(ranks, result.loss_mass[order], where="mid", color="#d62728", label="weight · instances")
    log_count_axis(right, np.r_[result.instances, result.loss_mass])
    right.set_xlabel("class rank by instances")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.legend(loc="upper right", fontsize=8)
    right.set_title(f"Loss mass per class — W1 score {fmt_score(result.scores['w1_score'])}", fontsize=10)
    return [save(fig, out_dir, "class_balanced_weights.png")]
