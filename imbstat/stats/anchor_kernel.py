"""The per-anchor part of the anchor statistics compiled with numba: one pass, no temporaries.

Same arithmetic as its numpy oracle ``tests/anchor_stats_reference.py``: the
same float64 expressions, ``np.histogram``'s bin rule, the same cell rule as
``coverage``. The tests check that both give identical statistics.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _iou_bin(v: float, edges: np.ndarray) -> int:
    # np.histogram's rule for equal bins on [0, 1]: scale, truncate, then correct against the edges.
    bins = edges.shape[0] - 1
    i = int(v * bins)
    if i == bins:
        i -= 1
    if v < edges[i]:
        i -= 1
    if v >= edges[i + 1] and i != bins - 1:
        i += 1
    return i


@njit(cache=True, nogil=True, error_model="numpy")
def _relative_cell(x: float, limit: float, grid: int) -> int:
    # Clipped as a float, as the reference's np.clip: an offset of 1e18 (a GT 1e-18 px wide) must not wrap an int.
    return int(min(max(np.floor((x + limit) * grid), 0.0), grid - 1.0))


@njit(cache=True, nogil=True, error_model="numpy")
def _corners(anchor: int, level_offsets: np.ndarray, cols: np.ndarray, strides: np.ndarray, bases: np.ndarray):
    # AnchorGrid.corners of one anchor: cell shift (exact) + base corner, the bits of AnchorGrid.xyxy.
    level = 0
    while anchor >= level_offsets[level + 1]:
        level += 1
    per_cell = bases.shape[1]
    cell, shape = divmod(anchor - level_offsets[level], per_cell)
    row, col = divmod(cell, cols[level])
    sx, sy = col * strides[level], row * strides[level]
    b = bases[level, shape]
    return sx + b[0], sy + b[1], sx + b[2], sy + b[3]


@njit(cache=True, nogil=True, error_model="numpy")
def _add_coverage(diff: np.ndarray, ax1: float, ay1: float, ax2: float, ay2: float, width: float, height: float,
                  grid: int) -> None:  # fmt: skip
    # The difference-array corners of stats.coverage.coverage for one box.
    x0 = int(min(max(math.ceil(ax1 * (grid / width) - 0.5), 0), grid))
    x1 = int(min(max(math.ceil(ax2 * (grid / width) - 0.5), 0), grid))
    y0 = int(min(max(math.ceil(ay1 * (grid / height) - 0.5), 0), grid))
    y1 = int(min(max(math.ceil(ay2 * (grid / height) - 0.5), 0), grid))
    diff[y0, x0] += 1
    diff[y0, x1] -= 1
    diff[y1, x0] -= 1
    diff[y1, x1] += 1


@njit(cache=True, nogil=True, error_model="numpy")
def tally(
    level_offsets, cols, strides, bases, fg_image, fg_anchor, fg_row, fg_iou, ignored_image, ignored_anchor,
    gts, fg_gt, category, new_width, new_height, pos_iou, edges, limit, class_foreground, positive_iou,
    positive_iou_low_quality, fg_per_gt, fg_high_per_gt, relative_top_left, relative_center, diff_foreground,
    diff_ignored,
):  # fmt: skip
    """Add one batch's foreground and ignored anchors to the accumulators (in place).

    The grid is given by its level offsets, columns, strides and [L, S, 4]
    base anchors (see AnchorGrid.corners); ``fg_row`` the foreground anchors'
    GTs as rows of the GroundTruth, ``gts[fg_image, fg_gt]`` their corners
    ([B, M, 4] of the batch); ``new_width``/``new_height`` are per batch image.
    """
    grid = relative_top_left.shape[0]
    for f in range(fg_iou.shape[0]):
        ax1, ay1, ax2, ay2 = _corners(fg_anchor[f], level_offsets, cols, strides, bases)
        row, v = fg_row[f], fg_iou[f]
        g = gts[fg_image[f], fg_gt[f]]
        class_foreground[category[row]] += 1
        if 0.0 <= v <= 1.0:  # np.histogram drops values outside its range
            i = _iou_bin(v, edges)
            positive_iou[i] += 1
            if v < pos_iou:
                positive_iou_low_quality[i] += 1
        fg_per_gt[row] += 1
        if not v < pos_iou:
            fg_high_per_gt[row] += 1
        gw, gh = g[2] - g[0], g[3] - g[1]
        col = _relative_cell((ax1 - g[0]) / gw, limit, grid)
        relative_top_left[_relative_cell((ay1 - g[1]) / gh, limit, grid), col] += 1
        cx = (ax1 + ax2) / 2 - (g[0] + g[2]) / 2
        cy = (ay1 + ay2) / 2 - (g[1] + g[3]) / 2
        relative_center[_relative_cell(cy / gh, limit, grid), _relative_cell(cx / gw, limit, grid)] += 1
        image = fg_image[f]
        _add_coverage(diff_foreground, ax1, ay1, ax2, ay2, new_width[image], new_height[image], grid)
    for k in range(ignored_image.shape[0]):
        image = ignored_image[k]
        ax1, ay1, ax2, ay2 = _corners(ignored_anchor[k], level_offsets, cols, strides, bases)
        _add_coverage(diff_ignored, ax1, ay1, ax2, ay2, new_width[image], new_height[image], grid)
