"""The compiled part of the ATSS assigner (:mod:`imbstat.anchors.atss` explains the method).

numba kernels over plain arrays and scalars, importing nothing of imbstat but the sparse path's kernels;
loaded at their first use (:mod:`imbstat.anchors.kernels`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from imbstat.anchors.sparse_kernel import _iou_in, _r

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


# torch's CPU float32 sum (aten/src/ATen/native/cpu/SumKernel.cpp), which mmdetection's float32 threshold
# (atss:186-188) calls on the image's [K, G] tensor. Each column is summed in float32 in one of three orders,
# chosen by G, the column's index and the CPU's vector width (TORCH_FLOAT_LANES in atss.py): _cascade (multi_row_sum,
# four levels of partial sums of 2**_LEVEL_POWER rows), _row_sum (four interleaved cascades) or, for one GT,
# _inner_sum (vectorized_inner_sum: lane by lane, then the tail and the lanes added in order).
_LEVELS = 4
_LEVEL_POWER = 4  # max(4, ceil(log2 n) / 4): 4 for fewer than 2**20 candidates


@njit(cache=True, nogil=True, error_model="numpy")
def _cascade(x, start, stride, count):
    step, mask = 1 << _LEVEL_POWER, (1 << _LEVEL_POWER) - 1
    acc = np.zeros(_LEVELS, np.float32)
    i = 0
    while i + step <= count:
        for _ in range(step):
            acc[0] += np.float32(x[start + i * stride])
            i += 1
        for j in range(1, _LEVELS):
            acc[j] += acc[j - 1]
            acc[j - 1] = np.float32(0.0)
            if i & (mask << (j * _LEVEL_POWER)):
                break
    while i < count:
        acc[0] += np.float32(x[start + i * stride])
        i += 1
    for j in range(1, _LEVELS):
        acc[0] += acc[j]
    return acc[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _row_sum(x, start, stride, count):
    quarter = count // 4
    partial = np.zeros(4, np.float32)
    for k in range(4):
        partial[k] = _cascade(x, start + k * stride, 4 * stride, quarter)
    for i in range(4 * quarter, count):
        partial[0] += np.float32(x[start + i * stride])
    for k in range(1, 4):
        partial[0] += partial[k]
    return partial[0]


@njit(cache=True, nogil=True, error_model="numpy")
def _inner_sum(x, lanes):
    vectors = x.shape[0] // lanes
    total = np.float32(0.0)
    for i in range(vectors * lanes, x.shape[0]):
        total += np.float32(x[i])
    for lane in range(lanes):
        total += _row_sum(x, lane, lanes, vectors)
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def _thresholds32(iou, num_gts, lanes):
    """[T] float32 mean + std of each GT's candidate IoUs as torch computes ``t.mean(0) + t.std(0)`` on the
    CPU on each image's float32 ``[K, G]`` tensor (atss:186-188): the mean the float32 sum above over K, the
    std a Welford pass in float64 rounded to float32 (ReduceOpsKernel.cpp: WelfordOps, double accumulator), or for
    an image of one GT (one output: ReduceOps.cpp std_var_all_cpu) the float64 sum of squared differences from the
    float32 mean. ``lanes``: the float32 vector width of torch's sum (8: torch 2.13's CPU kernels on x86-64)."""
    out = np.empty(iou.shape[0])
    k = iou.shape[1]
    start = 0
    for g_count in num_gts:
        # Columns summed with _cascade: groups of 4 vectors of columns (4 columns below one vector), the rest
        # with _row_sum (vectorized_outer_sum, scalar_outer_sum).
        cascaded = (g_count // (4 * lanes)) * 4 * lanes if g_count >= lanes else (g_count // 4) * 4
        for j in range(g_count):
            row = iou[start + j]
            if g_count == 1:
                total = _inner_sum(row, lanes) if k >= lanes else _row_sum(row, 0, 1, k)
            elif j < cascaded:
                total = _cascade(row, 0, 1, k)
            else:
                total = _row_sum(row, 0, 1, k)
            mean32 = total / np.float32(k)
            mean, m2 = 0.0, 0.0
            for i in range(k):
                x = np.float64(np.float32(row[i]))
                if g_count == 1:  # one output: std_var_all_cpu, squares of differences from the float32 mean
                    m2 += (x - np.float64(mean32)) ** 2
                else:
                    delta = x - mean
                    mean += delta / (i + 1)
                    m2 += delta * (x - mean)
            # float32 + float32; 0 / 0 -> NaN for one candidate, as torch.
            out[start + j] = mean32 + np.float32(np.sqrt(m2 / (k - 1)))
        start += g_count
    return out
