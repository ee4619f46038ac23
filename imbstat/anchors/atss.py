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
computed by torch in float32 on the image's ``[candidates, GTs]`` tensor, as mmdetection lays it
out (atss:186-188), so they are its bits.

The sparse method: per (GT, level) a window of cells around the cell nearest the GT centre is
searched for the ``k`` nearest anchors. It is widened until every anchor outside it is provably
farther than the ``k``-th distance inside it (by a margin above float error, so also no outside
tie, which would win on its lower index), or until it covers the level. Each GT's largest IoU
over all anchors (``Matches.gt_max_iou``) comes from :func:`sparse.best_iou_per_gt`, exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from imbstat.anchors.generate import AnchorGrid
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset
from imbstat.anchors.sparse import best_iou_per_gt
from imbstat.anchors.sparse_kernel import _iou_in, _r

if TYPE_CHECKING:
    from imbstat.anchors.engine import Batch

# atss:208, the centre's least distance inside the GT (float32 presets compare it as float32).
INSIDE_MARGIN = 0.01
# Relative size of float error in centres and distances (coordinates up to ~1e5 px): the window
# test keeps this far from a tie. Float64: ~1e-16 per operation; float32: ~6e-8.
DIST_ERROR = 1e-12
DIST_ERROR_32 = 1e-5


@njit(cache=True, nogil=True, error_model="numpy")
def _centre(lo: float, hi: float, f32: bool) -> float:
    return _r(lo + hi, f32) / 2.0  # / 2 is exact in both dtypes


@njit(cache=True, nogil=True, error_model="numpy")
def _candidates(gts, num_gts, bases, steps, rows, cols, offsets, topk, f32):
    """Per real GT (image by image) its candidates of every level: [T, K] anchor, IoU, centre inside."""
    levels, per_cell = bases.shape[0], bases.shape[1]
    ks = np.empty(levels, np.int64)
    for level in range(levels):
        ks[level] = min(topk, rows[level] * cols[level] * per_cell)
    total_k, total_gts = ks.sum(), num_gts.sum()
    cand = np.empty((total_gts, total_k), np.int64)
    iou = np.empty((total_gts, total_k))
    inside = np.empty((total_gts, total_k), np.bool_)
    near_d = np.empty(topk)  # the k nearest so far, ascending by (distance, anchor index)
    near_a = np.empty(topk, np.int64)
    rel = DIST_ERROR_32 if f32 else DIST_ERROR
    margin_in = np.float64(np.float32(INSIDE_MARGIN)) if f32 else INSIDE_MARGIN
    t = 0
    for b in range(gts.shape[0]):
        for j in range(num_gts[b]):
            gx1, gy1, gx2, gy2 = gts[b, j, 0], gts[b, j, 1], gts[b, j, 2], gts[b, j, 3]
            gcx, gcy = _centre(gx1, gx2, f32), _centre(gy1, gy2, f32)
            col = 0
            for level in range(levels):
                k, n_rows, n_cols = ks[level], rows[level], cols[level]
                step_x, step_y = steps[level, 0], steps[level, 1]
                # The cell centre offsets of the level's shapes (equal up to rounding): for the window bounds.
                lo_x, hi_x, lo_y, hi_y = np.inf, -np.inf, np.inf, -np.inf
                for s in range(per_cell):
                    cx = (bases[level, s, 0] + bases[level, s, 2]) / 2
                    cy = (bases[level, s, 1] + bases[level, s, 3]) / 2
                    lo_x, hi_x, lo_y, hi_y = min(lo_x, cx), max(hi_x, cx), min(lo_y, cy), max(hi_y, cy)
                near_x = int(min(max(np.rint((gcx - lo_x) / step_x), 0), n_cols - 1))
                near_y = int(min(max(np.rint((gcy - lo_y) / step_y), 0), n_rows - 1))
                radius = 1
                while (2 * radius + 1) ** 2 * per_cell < k:
                    radius += 1
                radius += 1  # one ring more: the k nearest seldom reach the smallest square that holds k
                while True:
                    x0, x1 = max(near_x - radius, 0), min(near_x + radius, n_cols - 1)
                    y0, y1 = max(near_y - radius, 0), min(near_y + radius, n_rows - 1)
                    n = 0
                    # Cells row by row, shapes in order: anchor indices ascend, so an equal distance
                    # found later (a higher index) goes after those found before.
                    for cell_y in range(y0, y1 + 1):
                        sy = cell_y * step_y
                        for cell_x in range(x0, x1 + 1):
                            sx = cell_x * step_x
                            for s in range(per_cell):
                                acx = _centre(_r(sx + bases[level, s, 0], f32), _r(sx + bases[level, s, 2], f32), f32)
                                acy = _centre(_r(sy + bases[level, s, 1], f32), _r(sy + bases[level, s, 3], f32), f32)
                                dx, dy = _r(acx - gcx, f32), _r(acy - gcy, f32)
                                d = _r(np.sqrt(_r(_r(dx * dx, f32) + _r(dy * dy, f32), f32)), f32)
                                if n == k and not d < near_d[k - 1]:
                                    continue
                                p = min(n, k - 1)
                                while p > 0 and near_d[p - 1] > d:
                                    near_d[p], near_a[p] = near_d[p - 1], near_a[p - 1]
                                    p -= 1
                                near_d[p] = d
                                near_a[p] = offsets[level] + (cell_y * n_cols + cell_x) * per_cell + s
                                n = min(n + 1, k)
                    if x0 == 0 and y0 == 0 and x1 == n_cols - 1 and y1 == n_rows - 1:
                        break  # the whole level
                    # Every anchor outside the window is at least this far along x or y.
                    outside = np.inf
                    if x0 > 0:
                        outside = min(outside, gcx - ((x0 - 1) * step_x + hi_x))
                    if x1 < n_cols - 1:
                        outside = min(outside, (x1 + 1) * step_x + lo_x - gcx)
                    if y0 > 0:
                        outside = min(outside, gcy - ((y0 - 1) * step_y + hi_y))
                    if y1 < n_rows - 1:
                        outside = min(outside, (y1 + 1) * step_y + lo_y - gcy)
                    error = rel * (1.0 + abs(gcx) + abs(gcy) + (x1 + 1) * step_x + (y1 + 1) * step_y)
                    if n == k and near_d[k - 1] < outside - error:
                        break
                    radius = 2 * radius + 1
                for i in range(k):
                    a = near_a[i]
                    cell, s = (a - offsets[level]) // per_cell, (a - offsets[level]) % per_cell
                    cell_y, cell_x = cell // n_cols, cell % n_cols
                    sx, sy = cell_x * step_x, cell_y * step_y
                    ax1, ay1 = _r(sx + bases[level, s, 0], f32), _r(sy + bases[level, s, 1], f32)
                    ax2, ay2 = _r(sx + bases[level, s, 2], f32), _r(sy + bases[level, s, 3], f32)
                    acx, acy = _centre(ax1, ax2, f32), _centre(ay1, ay2, f32)
                    cand[t, col + i] = a
                    iou[t, col + i] = _iou_in(ax1, ay1, ax2, ay2, gx1, gy1, gx2, gy2, 0.0, f32)
                    least = min(_r(acx - gx1, f32), _r(acy - gy1, f32), _r(gx2 - acx, f32), _r(gy2 - acy, f32))
                    inside[t, col + i] = least > margin_in
                col += k
            t += 1
    return cand, iou, inside


@njit(cache=True, nogil=True, error_model="numpy")
def _thresholds(iou):
    """[T] mean + unbiased std of each row, one Welford pass in row order (NaN for one column)."""
    out = np.empty(iou.shape[0])
    for t in range(iou.shape[0]):
        mean, m2 = 0.0, 0.0
        for i in range(iou.shape[1]):
            delta = iou[t, i] - mean
            mean += delta / (i + 1)
            m2 += delta * (iou[t, i] - mean)
        out[t] = mean + np.sqrt(m2 / (iou.shape[1] - 1))  # 0 / 0 -> NaN: no positive, as torch
    return out


def _thresholds_float32(iou: np.ndarray, num_gts: np.ndarray) -> np.ndarray:
    """[T] float32 mean + std computed by torch on each image's [K, G] tensor (atss:186-189)."""
    import torch

    out = np.empty(len(iou))
    start = 0
    for count in num_gts.tolist():  # per image: torch's reduction order depends on the [K, G] layout
        if count:
            block = torch.from_numpy(np.ascontiguousarray(iou[start : start + count].T, np.float32))  # [K, G]
            out[start : start + count] = (block.mean(0) + block.std(0)).numpy()
        start += count
    return out


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
    cand, iou, inside = _candidates(gts, num_gts, grid.bases, np.ascontiguousarray(grid.steps), rows, grid.cols,
                                    grid.level_offsets, int(preset.topk), f32)  # fmt: skip
    threshold = _thresholds_float32(iou, num_gts) if f32 else _thresholds(iou)
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


def atss_matcher(preset: Preset) -> Callable[[Batch], Matches]:
    """:func:`match_atss` as the engine's Matcher for ``preset``."""
    return lambda batch: match_atss(batch.grid, batch.gts, batch.num_gts, preset)
