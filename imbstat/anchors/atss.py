"""ATSS labelling (mmdetection 2.x ``ATSSAssigner``), over candidate windows only.

Semantics, as mmdetection 2.28.2 computes them (``mmdet/core/bbox/assigners/atss_assigner.py``,
cited as ``atss:LINE``), per image over its anchors (``atss_head.py:432-442``: with the config's
``allowed_border=-1`` every valid anchor takes part, which are those of the image's own padded
size, ``anchor_generator.py:392-417``):

1. Centres ``((x1 + x2) / 2, (y1 + y2) / 2)`` of anchors and GTs, distance
   ``sqrt(dx² + dy²)`` (atss:148-157).
2. Per level and GT, the ``min(topk, anchors in the level)`` anchors of nearest centre
   (atss:169-182). ``torch.topk`` leaves the order of equal distances open; here the
   lower anchor index wins at the cut, and within a level candidates are ordered by
   (distance, anchor index).
3. Per GT, over its candidates of all levels (level by level, in that order):
   threshold = mean + unbiased std (``n - 1``) of their IoUs (atss:186-189). A GT with
   one candidate has a NaN std, so NaN threshold, and ``>=`` NaN is false: no positive.
4. A candidate is positive when IoU ``>=`` threshold and its centre lies inside the GT by
   more than 0.01 px on every side: ``min(cx - x1, cy - y1, x2 - cx, y2 - cy) > 0.01``
   (atss:191-210).
5. An anchor positive for several GTs goes to the one of highest IoU, ties to the lowest
   GT index (``max`` over GTs, atss:212-222). Nothing is ignored; an image without GTs is
   all background (atss:132-145).

IoU is ``bbox_overlaps`` (``mmdet/core/bbox/iou_calculators/iou2d_calculator.py:212-252``):
``(w·h) / (area_a + area_g - w·h)``, the expression and operation order of :mod:`sparse`'s
``_iou``, whose compiled function is reused here (its ``max(union, 1e-6)`` never binds: an
anchor's area is >= 64² px²).

In float64 the mean and std come from one Welford pass over the candidates in the order of
step 3 (torch's own algorithm for ``std``), so equal IoUs give std 0 exactly and a mean equal
to them. torch's ``mean`` sums in an order that depends on the number of GTs and the CPU's
vector width, so at the last bit mmdetection's own threshold is not fixed: labels could differ
only for an IoU within ~1e-16 of its GT's threshold. Under ``dtype = "float32"`` every distance,
centre and IoU operation is rounded to float32 as torch computes them, and the mean and std are
computed as torch's CPU kernels compute them in float32 on the image's ``[candidates, GTs]`` tensor,
as mmdetection lays it out (atss:186-188): ``atss_kernel._thresholds32`` repeats their summation
order, so they are its bits (tests/test_atss.py compares them with torch's).

The sparse method: per (GT, level) a window of cells around the cell nearest the GT centre is
searched for the ``k`` nearest anchors. It is widened until every anchor outside it is provably
farther than the ``k``-th distance inside it (by a margin above float error, so also no outside
tie, which would win on its lower index), or until it covers the level. Each GT's largest IoU
over all anchors (``Matches.gt_max_iou``) comes from :func:`sparse.best_iou_per_gt`, exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imbstat.anchors.generate import AnchorGrid
from imbstat.anchors.kernels import load_kernel
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset
from imbstat.anchors.sparse import best_iou_per_gt

# The float32 vector width of torch's CPU sum kernels on x86-64 (torch 2.13, AVX2 and AVX-512 machines alike),
# which sets its summation order: what atss_kernel._thresholds32 repeats.
TORCH_FLOAT_LANES = 8


def match_atss(grid: AnchorGrid, gts: np.ndarray, num_gts: np.ndarray, preset: Preset) -> Matches:
    """Label the anchors of a batch with mmdetection's ATSSAssigner (see the module's docstring).

    Args:
        grid: the anchors shared by the batch (their preset's ``topk`` and ``dtype`` apply).
        gts: [B, M, 4] float64 GT corners; rows ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.

    Returns:
        Matches with no ignored anchors; ``fg_iou`` is the IoU with the assigned GT.
    """
    gts = np.ascontiguousarray(gts, np.float64)
    num_gts = np.asarray(num_gts, np.int64)
    f32 = preset.float32
    rows = np.array([r for r, _ in grid.cells], np.int64)
    candidates = load_kernel("imbstat.anchors.atss_kernel", "_candidates")
    cand, iou, inside = candidates(gts, num_gts, grid.bases, np.ascontiguousarray(grid.steps), rows, grid.cols,
                                    grid.level_offsets, int(preset.topk), f32)  # fmt: skip
    if f32:
        threshold = load_kernel("imbstat.anchors.atss_kernel", "_thresholds32")(iou, num_gts, TORCH_FLOAT_LANES)
    else:
        threshold = load_kernel("imbstat.anchors.atss_kernel", "_thresholds")(iou)
    gt_t, slot = np.nonzero((iou >= threshold[:, None]) & inside)  # [P] positive (GT, candidate) pairs
    first_gt = np.cumsum(num_gts) - num_gts
    image = np.repeat(np.arange(len(num_gts)), num_gts)[gt_t]
    anchor, value, gt = cand[gt_t, slot], iou[gt_t, slot], gt_t - first_gt[image]
    # One GT per anchor: the highest IoU, ties to the lowest GT index (atss:220).
    order = np.lexsort((gt, -value, anchor, image))
    image, anchor, gt, value = image[order], anchor[order], gt[order], value[order]
    first = np.ones(len(order), bool)
    first[1:] = (image[1:] != image[:-1]) | (anchor[1:] != anchor[:-1])
    empty = np.empty(0, np.int64)
    gt_max = best_iou_per_gt(grid, gts, num_gts, preset)
    return Matches(image[first], anchor[first], gt[first], value[first], empty, empty, gt_max)


def atss_matcher(preset: Preset) -> Callable[[Any], Matches]:
    """:func:`match_atss` as the engine's Matcher for ``preset`` (engine imports this module: no Batch type here);
    its kernels load here, not in a labelling thread."""
    for kernel in ("_candidates", "_thresholds", "_thresholds32"):
        load_kernel("imbstat.anchors.atss_kernel", kernel)
    load_kernel("imbstat.anchors.sparse_kernel", "_label")  # each GT's best IoU
    return lambda batch: match_atss(batch.grid, batch.gts, batch.num_gts, preset)
