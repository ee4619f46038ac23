"""Objective imbalance at initialization (survey §7, Fig. 16): classification against regression loss.

At initialization every classification output is its prior, so each anchor's classification loss is a constant
and an image's total needs only its anchor counts (:class:`~imbstat.stats.regression_loss.RegressionLoss`'s
per-image rows, :meth:`RegressionLoss.objective`). Which loss a preset trains with, by its fields:

- a preset with a sampler (``preset.sampler``, the RPN presets): binary cross-entropy of one objectness output at
  p = 0.5 (mmdetection's RPN head and torchvision's ``RPNHead`` start at zero logits, their weights N(0, 0.01)),
  ln 2 per sampled anchor, over the expected sampled positives and negatives of the images trained on
  (:meth:`RandomSampler.sampled`); the regression side is the positives' loss times the share sampled,
  positives_i / fg_i (a uniform draw);
- every other preset (RetinaNet, ATSS, FCOS): sigmoid focal loss, π = 0.01, α = 0.25, γ = 2, one output per
  category (``classes``), over every non-ignored anchor of every image. A negative anchor is K negatives,
  −(1 − α) π^γ ln(1 − π) each; a positive one positive output −α (1 − π)^γ ln π plus K − 1 negatives.

RetinaNet's and the RPN's frameworks divide both terms by the same number (the positives; the sampled anchors),
so their ratio is that of the sums reported here. ATSS and FCOS divide the box loss instead by the sum of the
positives' centerness targets, each positive's loss weighted by its target (a weighted mean per positive): not
modelled, the ratio here takes the plain sum. They add a centerness term, a binary cross-entropy per positive at
p = 0.5: ln 2 each whatever its target, reported apart (``centerness``), not in the ratio. Left out (``LEFT_OUT``):
the second stage (its proposals are not anchors), that centerness weighting, and each framework's loss weights
(the regression totals are unweighted; ``balancing_weight`` is the weight of the regression term that would make
it equal the classification term, classification total / regression total over the dataset, so mmdetection's
ATSS ``loss_weight=2.0`` for GIoU is not applied).
"""

from __future__ import annotations

import math

import numpy as np

from imbstat.anchors.presets import Preset

FOCAL_PRIOR, FOCAL_ALPHA, FOCAL_GAMMA = 0.01, 0.25, 2.0  # RetinaNet (Lin et al. 2017) §3.3, §4.1; each framework's
QUANTILES = (0.0, 0.25, 0.5, 0.75, 1.0)
LEFT_OUT = (
    "the second stage; ATSS's and FCOS's weighting of the box loss by the centerness targets; the frameworks' "
    "loss weights (the regression total is unweighted)"
)


def focal_constants(prior: float = FOCAL_PRIOR, alpha: float = FOCAL_ALPHA, gamma: float = FOCAL_GAMMA) -> tuple:
    """(positive, negative): the sigmoid focal loss of one output at probability ``prior`` with target 1 and 0."""
    return -alpha * (1 - prior) ** gamma * math.log(prior), -(1 - alpha) * prior**gamma * math.log(1 - prior)


def objective_balance(
    preset: Preset, categories: int, per_image: np.ndarray, per_image_loss: np.ndarray, trained: np.ndarray
) -> dict:
    """The ``classification``, ``centerness``, ``ratio`` and ``balancing_weight`` entries of the loss section, from
    RegressionLoss's per-image rows: [I, 3] (foreground, background, ignored) anchors, [I] the preset's regression
    loss over the image's positives and [I] bool the images trained on."""
    fg, bg = per_image[:, 0].astype(np.float64), per_image[:, 1].astype(np.float64)
    sampler = preset.random_sampler
    if sampler is not None:
        pos, neg = (v.astype(np.float64) for v in sampler.sampled(per_image[:, 0], per_image[:, 1]))
        images = trained
        pos, neg = pos * images, neg * images
        cls = math.log(2) * (pos + neg)
        reg = per_image_loss * np.divide(pos, fg, out=np.zeros_like(pos), where=fg > 0)
        loss, classes, positives = "cross_entropy", 1, float(pos.sum())
    else:
        k = categories
        p, n = focal_constants()
        cls = fg * (p + (k - 1) * n) + bg * k * n
        reg, images = per_image_loss, np.ones(len(fg), bool)
        loss, classes, positives = "focal", k, float(fg.sum())
    cls_total, reg_total = float(cls.sum()), float(reg.sum())
    per_positive = lambda total: total / positives if positives else math.nan  # noqa: E731
    ratios = cls[images & (reg > 0)] / reg[images & (reg > 0)]
    centerness = None
    if preset.assigner in ("atss", "fcos"):
        total = math.log(2) * positives
        centerness = {"loss": "cross_entropy", "total": total, "per_positive": per_positive(total)}
    dataset = cls_total / reg_total if reg_total > 0 else math.nan
    return {
        "classification": {
            "loss": loss,
            "classes": classes,
            "total": cls_total,
            "per_positive": per_positive(cls_total),
        },
        "centerness": centerness,
        "regression_total": reg_total,
        "ratio": {
            "dataset": dataset,
            "per_image_mean": float(ratios.mean()) if len(ratios) else math.nan,
            "per_image_quantiles": np.quantile(ratios, QUANTILES).tolist() if len(ratios) else [math.nan] * 5,
            "images": len(ratios),  # the images with a regression loss (a positive anchor) that a ratio is read on
        },
        "balancing_weight": dataset,
        "left_out": LEFT_OUT,
    }


__all__ = ["FOCAL_ALPHA", "FOCAL_GAMMA", "FOCAL_PRIOR", "focal_constants", "objective_balance"]
