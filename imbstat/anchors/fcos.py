"""FCOS point assignment (mmdetection 2.28.2), examining only the candidate cells of each GT and level.

Semantics, line by line from mmdetection 2.28.2 (``mmdet/``):

- Points (``core/anchor/point_generator.py:152-162``, ``MlvlPointGenerator`` with its default
  offset 0.5, ``:55``, built by ``models/dense_heads/anchor_free_head.py:93``): cell ``(x, y)``
  of a level of stride ``s`` is the point ``((x + 0.5)·s, (y + 0.5)·s)``, in the head's dtype
  (``fcos_head.py:200``). Here ``(x + center_offset)·step`` in the preset's dtype: the centre of
  the grid's anchor of that cell, the 8·stride square whose IoU the statistics report.
- ``fcos_head.py:_get_target_single`` (``:331-413``): per point and GT, ``l = x - x1``,
  ``t = y - y1``, ``r = x2 - x``, ``b = y2 - y`` (``:352-355``); the point is inside when
  ``min(l, t, r, b) > 0`` (``:395``) or, with ``center_sampling``, when it is strictly inside the
  centre box ``GT centre ± stride·radius`` clipped to the GT (``:358-392``); and in its level's
  regress range when ``low <= max(l, t, r, b) <= high`` (``:398-401``, inclusive both ends; the
  ranges are tensors of the points' dtype, ``:291-293``). Of the GTs meeting both, the point
  takes the one of least area ``(x2 - x1)·(y2 - y1)`` (``:340``), the lowest GT index on a tie
  (``areas.min(dim=1)``, ``:407``); no GT: background (``:336-338``). Nothing is ignored.
- mmdetection marks failing GTs with ``area = INF = 1e8`` (``:13``, ``:405-406``) and labels a
  point background when the least area equals INF (``:410``). A GT of area >= 1e8 px² (images
  resized to 1,333 px cannot hold one) therefore never wins, unless every GT of the image passes
  at that point with an area above 1e8; both are reproduced. mmdetection's last range is
  ``(512, INF)``: the preset's ``inf`` gives the same labels while distances stay under 1e8 px.
- float32 presets: points, GTs, ``l, t, r, b``, areas, the centre box and the range bounds are
  float32 values, every operation rounded to float32 as torch does it. GTs arrive as mmdetection
  makes them (``engine._resized``: ``datasets/coco.py:173-182`` float32 corners,
  ``datasets/pipelines/transforms.py:229-255`` times a float32 ``scale_factor``, clipped).

Speed: a point can pass only where it lies inside the GT (or the centre box) and within
``[x2 - high, x1 + high] × [y2 - high, y1 + high]`` (every distance <= high). That window of
cells per (GT, level), widened by a small margin, is expanded for all pairs of a batch at once
(``np.repeat``); each candidate is then tested exactly, and one lexsort picks each point's GT.

IoU statistics: a point's box is its anchor (``grid.corners``); ``fg_iou`` is
:func:`sparse_kernel.paired_iou` (the sparse path's own IoU, float32 rounding included), and ``gt_max_iou``
(each GT's best IoU over all points' boxes) is :func:`sparse.best_iou_per_gt` on the same grid.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imbstat.anchors.generate import AnchorGrid
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset

# mmdetection's marker for "no GT here" (fcos_head.py:13): areas are compared against it.
INF = 1e8
# Window ends are widened by this fraction of a cell plus this fraction of the coordinates' size:
# float error (float32: half an ulp, 6e-8 of a value) stays far below both, and every candidate is
# tested exactly afterwards.
CELL_MARGIN = 0.01
RELATIVE_MARGIN = 1e-6


def fcos_matcher(preset: Preset) -> Callable[[Any], Matches]:
    """``engine.Batch -> Matches`` for an ``assigner = "fcos"`` preset (engine imports this module: no type here)."""
    from imbstat.anchors.kernels import load_kernel
    from imbstat.anchors.sparse import best_iou_per_gt

    for kernel in ("_label", "paired_iou"):  # loaded here, not in a labelling thread
        load_kernel("imbstat.anchors.sparse_kernel", kernel)

    def match(batch: Any) -> Matches:
        gt_max = best_iou_per_gt(batch.grid, batch.gts, batch.num_gts, preset)
        return match_fcos(batch.grid, batch.gts, batch.num_gts, preset, gt_max)

    return match


def _windows(lo: np.ndarray, hi: np.ndarray, pad: np.ndarray, centre: np.ndarray, step: np.ndarray,
             cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """First and last cell whose point ``c·step + centre`` can lie in ``[lo - pad, hi + pad]`` (last < first: none)."""
    pad = pad + CELL_MARGIN * step
    first = np.clip(np.ceil((lo - pad - centre) / step), 0, cells)
    last = np.clip(np.floor((hi + pad - centre) / step), -1, cells - 1)
    return first.astype(np.int64), last.astype(np.int64)


def match_fcos(grid: AnchorGrid, gts: np.ndarray, num_gts: np.ndarray, preset: Preset,
               gt_max_iou: np.ndarray) -> Matches:  # fmt: skip
    """FCOS labels of a batch: every point inside a GT and in its level's range, to the least-area GT.

    Args:
        grid: the points' anchors shared by the batch (one per cell).
        gts: [B, M, 4] float64 GT corners (float32 values under a float32 preset); rows
            ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.
        gt_max_iou: [B, M] each GT's best IoU over all the grid's anchors (0 for padding).
    """
    dt = np.float32 if preset.float32 else np.float64
    image, slot = np.nonzero(np.arange(gts.shape[1])[None, :] < np.asarray(num_gts)[:, None])
    box = gts[image, slot].astype(dt)  # [T, 4], image-major then GT order
    levels = len(preset.strides)
    # Every (GT, level) pair: its stride, range and window of cells.
    pair_gt = np.repeat(np.arange(len(box)), levels)
    level = np.tile(np.arange(levels), len(box))
    x1, y1, x2, y2 = (box[pair_gt, k].astype(np.float64) for k in range(4))
    stride = grid.strides[level]
    ranges = np.array(preset.regress_ranges, np.float64).reshape(levels, 2)
    high = ranges[level, 1]
    in_x, in_y = (x1, x2), (y1, y2)
    if preset.center_sampling:  # the centre box bounds the window (clipped to the GT, as below)
        reach = stride * preset.center_radius
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        in_x, in_y = (np.maximum(cx - reach, x1), np.minimum(cx + reach, x2)), (
            np.maximum(cy - reach, y1), np.minimum(cy + reach, y2))  # fmt: skip
    # Every distance <= high (GT corners are finite: an infinite high leaves the GT's own bounds).
    lo_x, hi_x = np.maximum(in_x[0], x2 - high), np.minimum(in_x[1], x1 + high)
    lo_y, hi_y = np.maximum(in_y[0], y2 - high), np.minimum(in_y[1], y1 + high)
    cols, rows = grid.cols[level], np.array([r for r, _ in grid.cells], np.int64)[level]
    # A point is its anchor's centre, c·step + center_offset·stride: mmdetection's (c + 0.5)·s.
    centre = preset.center_offset * stride
    size = np.abs(x1) + np.abs(x2) + np.abs(y1) + np.abs(y2) + np.where(np.isinf(high), 0.0, np.abs(high))
    pad = RELATIVE_MARGIN * size
    c0, c1 = _windows(lo_x, hi_x, pad, centre, grid.steps[level, 0], cols)
    r0, r1 = _windows(lo_y, hi_y, pad, centre, grid.steps[level, 1], rows)
    nx, ny = np.maximum(c1 - c0 + 1, 0), np.maximum(r1 - r0 + 1, 0)
    count = nx * ny
    # Expand the windows into candidates (pair, cell).
    pair = np.repeat(np.arange(len(pair_gt)), count)
    k = np.arange(len(pair)) - np.repeat(np.cumsum(count) - count, count)
    dy, dx = np.divmod(k, nx[pair])
    row, col = r0[pair] + dy, c0[pair] + dx
    t, lv = pair_gt[pair], level[pair]
    # Exact in float64, then one rounding: mmdetection's float32 (c + 0.5)·s rounds once too.
    px = (col * grid.steps[level, 0][pair] + centre[pair]).astype(dt)
    py = (row * grid.steps[level, 1][pair] + centre[pair]).astype(dt)
    g = box[t]
    left, top, right, bottom = px - g[:, 0], py - g[:, 1], g[:, 2] - px, g[:, 3] - py
    if preset.center_sampling:
        radius = (grid.strides[lv] * preset.center_radius).astype(dt)  # Python float s·r into the dtype
        mid_x, mid_y = (g[:, 0] + g[:, 2]) / dt(2), (g[:, 1] + g[:, 3]) / dt(2)
        inside = (
            (px > np.maximum(mid_x - radius, g[:, 0])) & (px < np.minimum(mid_x + radius, g[:, 2]))
            & (py > np.maximum(mid_y - radius, g[:, 1])) & (py < np.minimum(mid_y + radius, g[:, 3]))
        )  # fmt: skip
    else:
        inside = (left > 0) & (top > 0) & (right > 0) & (bottom > 0)  # a - b > 0 iff a > b, in any dtype
    farthest = np.maximum(np.maximum(left, top), np.maximum(right, bottom))
    bounds = ranges.astype(dt)[lv]
    keep = inside & (farthest >= bounds[:, 0]) & (farthest <= bounds[:, 1])
    t, lv, row, col = t[keep], lv[keep], row[keep], col[keep]
    area = ((box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))[t]
    anchor = grid.level_offsets[lv] + row * grid.cols[lv] + col  # one anchor per cell
    b = image[t]
    point = b * len(grid) + anchor
    if (area >= INF).any():
        keep = _mmdet_inf_rule(point, area, b, np.asarray(num_gts))
        t, lv, row, col, anchor, b, point, area = (v[keep] for v in (t, lv, row, col, anchor, b, point, area))
    # Per point: least area, then lowest GT index (t follows the GT order within an image).
    order = np.lexsort((t, area, point))
    first = order[np.r_[True, point[order][1:] != point[order][:-1]]] if len(order) else order
    t, anchor, b = t[first], anchor[first], b[first]
    squares = grid.cell_corners(lv[first], row[first], col[first], 0)
    from imbstat.anchors.kernels import load_kernel

    paired_iou = load_kernel("imbstat.anchors.sparse_kernel", "paired_iou")  # compiled

    iou = paired_iou(np.ascontiguousarray(squares, np.float64), np.ascontiguousarray(box[t], np.float64),
                     1.0 if preset.legacy else 0.0, preset.float32)  # fmt: skip
    return Matches(b, anchor, slot[t], iou, np.zeros(0, np.int64), np.zeros(0, np.int64), gt_max_iou)


def _mmdet_inf_rule(point: np.ndarray, area: np.ndarray, image: np.ndarray, num_gts: np.ndarray) -> np.ndarray:
    """[C] bool: the passing candidates mmdetection can label with, given its INF marker.

    A GT of area >= INF never wins over a failing GT's INF, so such a candidate counts only at a
    point where every GT of the image passes with an area above INF (then the least area is not INF).
    """
    big = area >= INF
    keep = ~big
    strictly = np.flatnonzero(area > INF)
    if not len(strictly):
        return keep
    at_point, first, counts = np.unique(point[strictly], return_index=True, return_counts=True)
    everyone = at_point[counts == num_gts[image[strictly][first]]]
    keep[strictly[np.isin(point[strictly], everyone)]] = True
    return keep
