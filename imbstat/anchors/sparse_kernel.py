"""The compiled part of the sparse path (:mod:`imbstat.anchors.sparse` explains the method).

numba kernels over plain arrays and scalars only, importing nothing of imbstat; loaded at their
first use (:mod:`imbstat.anchors.kernels`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# IoU margin below the threshold, and pixel margin on window ends: float error is ~1e-13 of these scales.
IOU_MARGIN = 1e-9
PIXEL_MARGIN = 1e-6
# Margins for float32 presets: float32 IoU is within ~1e-6 of the exact IoU of its float32 inputs, and
# float32 anchor corners within an ulp of float32 (1.2e-4 px at 1,333 px) of base + shift.
IOU_MARGIN_32 = 1e-3
CELL_MARGIN_32 = 0.05


@njit(cache=True, nogil=True, error_model="numpy")
def _iou(ax1: float, ay1: float, ax2: float, ay2: float, gx1: float, gy1: float, gx2: float, gy2: float,
         one: float) -> float:  # fmt: skip
    # The operations and order of iou.box_iou: every path gives the same bits.
    iw = min(ax2, gx2) - max(ax1, gx1) + one
    ih = min(ay2, gy2) - max(ay1, gy1) + one
    iw = iw if iw > 0.0 else 0.0
    ih = ih if ih > 0.0 else 0.0
    inter = iw * ih
    area_a = (ax2 - ax1 + one) * (ay2 - ay1 + one)
    area_g = (gx2 - gx1 + one) * (gy2 - gy1 + one)
    return inter / (area_a + area_g - inter)


@njit(cache=True, nogil=True, error_model="numpy")
def _r(x: float, f32: bool) -> float:
    """``x`` rounded to float32 under a float32 preset."""
    return np.float64(np.float32(x)) if f32 else x


@njit(cache=True, nogil=True, error_model="numpy")
def _iou_in(ax1: float, ay1: float, ax2: float, ay2: float, gx1: float, gy1: float, gx2: float, gy2: float,
            one: float, f32: bool) -> float:  # fmt: skip
    """:func:`_iou` in the preset's dtype: under float32 each operation rounded, in torch's order."""
    if not f32:
        return _iou(ax1, ay1, ax2, ay2, gx1, gy1, gx2, gy2, one)
    iw = max(_r(min(ax2, gx2) - max(ax1, gx1), True), 0.0)
    ih = max(_r(min(ay2, gy2) - max(ay1, gy1), True), 0.0)
    inter = _r(iw * ih, True)
    area_a = _r(_r(ax2 - ax1, True) * _r(ay2 - ay1, True), True)
    area_g = _r(_r(gx2 - gx1, True) * _r(gy2 - gy1, True), True)
    return _r(inter / _r(_r(area_a + area_g, True) - inter, True), True)


@njit(cache=True, nogil=True, error_model="numpy")
def _cell_window(g_lo: float, g_hi: float, need: float, b_lo: float, b_hi: float, stride: float, cells: int,
                 margin: float):  # fmt: skip
    """[first, last] cells along one axis whose anchor overlaps [g_lo, g_hi] by >= need (see the module's docstring)."""
    lo = math.ceil((g_lo + need - b_hi) / stride - margin)
    hi = math.floor((g_hi - need - b_lo) / stride + margin)
    first = int(min(max(lo, 0), cells - 1))
    if b_hi - b_lo >= need and g_hi - g_lo >= need and hi >= 0 and lo <= cells - 1:
        return first, int(min(max(hi, 0), cells - 1))
    return first, first - 1


@njit(cache=True, nogil=True, error_model="numpy")
def _windows(gts, num_gts, base, step_x, step_y, rows, cols, neg, one, f32):
    """[T, Q, 4] (x0, x1, y0, y1) cell windows of every real GT (image by image) and shape."""
    q_count = step_x.shape[0]
    iou_margin, cell_margin = (IOU_MARGIN_32, CELL_MARGIN_32) if f32 else (IOU_MARGIN, PIXEL_MARGIN)
    area = (base[:, 2] - base[:, 0] + one) * (base[:, 3] - base[:, 1] + one)  # effective anchor areas
    window = np.empty((num_gts.sum(), q_count, 4), np.int64)
    t = 0
    for b in range(gts.shape[0]):
        for j in range(num_gts[b]):
            gx1, gy1, gx2, gy2 = gts[b, j, 0], gts[b, j, 1], gts[b, j, 2], gts[b, j, 3]
            ex, ey = gx2 + one, gy2 + one  # effective extents: legacy "+1" areas are [x1, x2 + 1]
            area_g = (ex - gx1) * (ey - gy1)
            # 1. A lower bound of the GT's best IoU: the exact IoU at each shape's nearest cell.
            #    IoU <= min(A, G) / max(A, G), so a shape whose area ratio is at most the bound
            #    so far cannot raise it: most shapes are skipped on one comparison.
            bound = 0.0
            for q in range(q_count):
                if min(area[q], area_g) <= bound * max(area[q], area_g):
                    continue
                bx1, by1, bx2, by2 = base[q, 0], base[q, 1], base[q, 2] + one, base[q, 3] + one
                cx = min(max(np.rint(((gx1 + ex) / 2 - (bx1 + bx2) / 2) / step_x[q]), 0), cols[q] - 1)
                cy = min(max(np.rint(((gy1 + ey) / 2 - (by1 + by2) / 2) / step_y[q]), 0), rows[q] - 1)
                # Anchor corners as anchor_grid makes them: cell shift (exact) + base corner.
                sx, sy = cx * step_x[q], cy * step_y[q]
                v = _iou_in(_r(sx + base[q, 0], f32), _r(sy + base[q, 1], f32), _r(sx + base[q, 2], f32),
                            _r(sy + base[q, 3], f32), gx1, gy1, gx2, gy2, one, f32)  # fmt: skip
                bound = max(bound, v)
            # 2. Per shape, the window of cells where IoU can reach the threshold.
            threshold = max(min(neg, bound) - iou_margin, 0.0)
            for q in range(q_count):
                window[t, q, 0], window[t, q, 1], window[t, q, 2], window[t, q, 3] = 0, -1, 0, -1
                if min(area[q], area_g) < threshold * max(area[q], area_g):
                    continue  # no anchor of this shape reaches the threshold
                bx1, by1, bx2, by2 = base[q, 0], base[q, 1], base[q, 2] + one, base[q, 3] + one
                inter_needed = threshold * (area[q] + area_g) / (1 + threshold)
                need_x = inter_needed / min(by2 - by1, ey - gy1) * (1 - iou_margin)  # 0 with the threshold
                need_y = inter_needed / min(bx2 - bx1, ex - gx1) * (1 - iou_margin)
                x0, x1 = _cell_window(gx1, ex, need_x, bx1, bx2, step_x[q], cols[q], cell_margin)
                y0, y1 = _cell_window(gy1, ey, need_y, by1, by2, step_y[q], rows[q], cell_margin)
                if x1 >= x0 and y1 >= y0:
                    window[t, q, 0], window[t, q, 1], window[t, q, 2], window[t, q, 3] = x0, x1, y0, y1
            t += 1
    return window


@njit(cache=True, nogil=True, error_model="numpy")
def _label(gts, num_gts, base, step_x, step_y, rows, cols, offset, shape, per_cell, pos, neg, min_pos, low_quality,
           own_argmax, one, f32):  # fmt: skip
    b_count, m = gts.shape[0], gts.shape[1]
    q_count = step_x.shape[0]
    window = _windows(gts, num_gts, base, step_x, step_y, rows, cols, neg, one, f32)
    # Buffers sized from the windows up front: an array reassigned inside the loops (to grow it)
    # costs numba reference counting on every iteration, which tripled the kernel's time.
    cells = (window[:, :, 1] - window[:, :, 0] + 1) * (window[:, :, 3] - window[:, :, 2] + 1)  # [T, Q]
    per_gt = cells.sum(axis=1)
    most_in_image, total, t = 0, 0, 0
    for b in range(b_count):
        in_image = per_gt[t : t + num_gts[b]].sum()
        most_in_image, total, t = max(most_in_image, in_image), total + in_image, t + num_gts[b]
    touched = np.empty((most_in_image, 4), np.int64)  # local index, shape, cell x, cell y
    fg = np.empty((total, 3), np.int64)  # image, anchor, slot
    fg_iou = np.empty(total)
    ignored = np.empty((total, 2), np.int64)
    # Work arrays are indexed shape-major (q, row, col), so a window's anchors are adjacent in
    # memory; the output uses mmdetection's index (level, row, col, shape).
    local_start = np.zeros(q_count + 1, np.int64)
    for q in range(q_count):
        local_start[q + 1] = local_start[q] + rows[q] * cols[q]
    best_iou = np.full(local_start[q_count], -1.0)
    best_slot = np.zeros(local_start[q_count], np.int64)
    lq_slot = np.full(local_start[q_count], -1, np.int64)
    gt_max = np.zeros((b_count, m))
    n_fg, n_ig, t0 = 0, 0, 0
    unsupported = False  # own_argmax and a GT whose best IoU is 0: every anchor it misses would be foreground
    for b in range(b_count):
        # 3. Every cell of every window: each anchor's best GT (ties to the lower index), each GT's max.
        n_touched = 0
        for j in range(num_gts[b]):
            gx1, gy1, gx2, gy2 = gts[b, j, 0], gts[b, j, 1], gts[b, j, 2], gts[b, j, 3]
            for q in range(q_count):
                x0, x1, y0, y1 = window[t0 + j, q, 0], window[t0 + j, q, 1], window[t0 + j, q, 2], window[t0 + j, q, 3]
                for cy in range(y0, y1 + 1):
                    sy = cy * step_y[q]
                    ay1, ay2 = _r(sy + base[q, 1], f32), _r(sy + base[q, 3], f32)
                    row_local = local_start[q] + cy * cols[q]
                    for cx in range(x0, x1 + 1):
                        sx = cx * step_x[q]
                        v = _iou_in(_r(sx + base[q, 0], f32), ay1, _r(sx + base[q, 2], f32), ay2, gx1, gy1, gx2, gy2,
                                    one, f32)  # fmt: skip
                        if v > gt_max[b, j]:
                            gt_max[b, j] = v
                        a = row_local + cx
                        if best_iou[a] < 0.0:
                            touched[n_touched, 0], touched[n_touched, 1] = a, q
                            touched[n_touched, 2], touched[n_touched, 3] = cx, cy
                            n_touched += 1
                            best_iou[a], best_slot[a] = v, j
                        elif v > best_iou[a]:  # strictly: ties keep the lower GT index
                            best_iou[a], best_slot[a] = v, j
        # 4. Low-quality matching: every anchor tied at a GT's maximum, the later GT winning.
        if low_quality:
            for j in range(num_gts[b]):
                peak = gt_max[b, j]
                if not (peak >= min_pos and (peak > 0.0 or own_argmax)):
                    continue
                if peak == 0.0:
                    unsupported = True
                    continue
                gx1, gy1, gx2, gy2 = gts[b, j, 0], gts[b, j, 1], gts[b, j, 2], gts[b, j, 3]
                for q in range(q_count):
                    for cy in range(window[t0 + j, q, 2], window[t0 + j, q, 3] + 1):
                        sy = cy * step_y[q]
                        ay1, ay2 = _r(sy + base[q, 1], f32), _r(sy + base[q, 3], f32)
                        for cx in range(window[t0 + j, q, 0], window[t0 + j, q, 1] + 1):
                            sx = cx * step_x[q]
                            v = _iou_in(_r(sx + base[q, 0], f32), ay1, _r(sx + base[q, 2], f32), ay2, gx1, gy1, gx2,
                                        gy2, one, f32)  # fmt: skip
                            if v == peak:
                                lq_slot[local_start[q] + cy * cols[q] + cx] = j
        # 5. Labels of the touched anchors; everything else is background. Reset for the next image.
        for k in range(n_touched):
            a, q, cx, cy = touched[k, 0], touched[k, 1], touched[k, 2], touched[k, 3]
            anchor = offset[q] + (cy * cols[q] + cx) * per_cell[q] + shape[q]
            if lq_slot[a] >= 0 and own_argmax:
                slot, value = best_slot[a], best_iou[a]
                if value < neg:  # its argmax GT may lie outside the windows that hold it: all GTs, ties lowest
                    sx, sy = cx * step_x[q], cy * step_y[q]
                    ax1, ay1 = _r(sx + base[q, 0], f32), _r(sy + base[q, 1], f32)
                    ax2, ay2 = _r(sx + base[q, 2], f32), _r(sy + base[q, 3], f32)
                    value = -1.0
                    for j in range(num_gts[b]):
                        g = gts[b, j]
                        v = _iou_in(ax1, ay1, ax2, ay2, g[0], g[1], g[2], g[3], one, f32)
                        if v > value:
                            slot, value = j, v
                fg[n_fg, 0], fg[n_fg, 1], fg[n_fg, 2] = b, anchor, slot
                fg_iou[n_fg] = value
                n_fg += 1
            elif lq_slot[a] >= 0:
                fg[n_fg, 0], fg[n_fg, 1], fg[n_fg, 2] = b, anchor, lq_slot[a]
                fg_iou[n_fg] = gt_max[b, lq_slot[a]]
                n_fg += 1
            elif best_iou[a] >= pos:
                fg[n_fg, 0], fg[n_fg, 1], fg[n_fg, 2] = b, anchor, best_slot[a]
                fg_iou[n_fg] = best_iou[a]
                n_fg += 1
            elif best_iou[a] >= neg:
                ignored[n_ig, 0], ignored[n_ig, 1] = b, anchor
                n_ig += 1
            best_iou[a] = -1.0
            lq_slot[a] = -1
        t0 += num_gts[b]
    return fg[:n_fg], fg_iou[:n_fg], ignored[:n_ig], gt_max, unsupported


@njit(cache=True, nogil=True, error_model="numpy")
def paired_iou(anchors: np.ndarray, gts: np.ndarray, one: float, f32: bool) -> np.ndarray:
    """[n] IoU of row ``i`` of ``anchors`` with row ``i`` of ``gts`` ([n, 4] each), as :func:`_iou_in` computes it."""
    out = np.empty(anchors.shape[0])
    for i in range(anchors.shape[0]):
        a, g = anchors[i], gts[i]
        out[i] = _iou_in(a[0], a[1], a[2], a[3], g[0], g[1], g[2], g[3], one, f32)
    return out
