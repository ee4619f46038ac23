"""The sparse labelling in numpy: the test oracle of the compiled :func:`imbstat.anchors.sparse.match_sparse`.

The same method (see that module's docstring) written with whole-array numpy
operations instead of a loop over window cells, and the same float64 IoU
expression, so both must give identical Matches; the tests check both against
the dense path on random images.
"""

from __future__ import annotations

import numpy as np

from imbstat.anchors.generate import AnchorGrid
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import CONVENTIONS, Preset
from imbstat.anchors.sparse import shapes
from imbstat.anchors.sparse_kernel import IOU_MARGIN, PIXEL_MARGIN


def exact_iou(anchors: np.ndarray, gts: np.ndarray, legacy: bool) -> np.ndarray:
    """[P] float64 IoU of paired rows, with the operations and order of ``iou.box_iou``."""
    one = 1.0 if legacy else 0.0
    iw = np.maximum(np.minimum(anchors[:, 2], gts[:, 2]) - np.maximum(anchors[:, 0], gts[:, 0]) + one, 0.0)
    ih = np.maximum(np.minimum(anchors[:, 3], gts[:, 3]) - np.maximum(anchors[:, 1], gts[:, 1]) + one, 0.0)
    inter = iw * ih
    area_a = (anchors[:, 2] - anchors[:, 0] + one) * (anchors[:, 3] - anchors[:, 1] + one)
    area_g = (gts[:, 2] - gts[:, 0] + one) * (gts[:, 3] - gts[:, 1] + one)
    return inter / (area_a + area_g - inter)


def _cell_range(
    g_lo: np.ndarray, g_hi: np.ndarray, need: np.ndarray, base_lo: np.ndarray, base_hi: np.ndarray,
    stride: np.ndarray, cells: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Cells ``[first, last]`` whose anchor overlaps ``[g_lo, g_hi]`` by at least ``need`` along one axis.

    Overlap ``min(a_hi, g_hi) - max(a_lo, g_lo) >= need`` holds iff each of
    its four differences does: ``a_hi - g_lo >= need`` and ``g_hi - a_lo >= need``
    bound the cell, ``a_hi - a_lo`` and ``g_hi - g_lo >= need`` decide if any does.
    """
    lo = np.ceil((g_lo + need - base_hi) / stride - PIXEL_MARGIN)
    hi = np.floor((g_hi - need - base_lo) / stride + PIXEL_MARGIN)
    possible = (base_hi - base_lo >= need) & (g_hi - g_lo >= need)
    first = np.clip(lo, 0, cells - 1).astype(np.int64)
    last = np.where(possible & (hi >= 0) & (lo <= cells - 1), np.clip(hi, 0, cells - 1), first - 1).astype(np.int64)
    return first, last


def _nearest_cells(g_lo: np.ndarray, g_hi: np.ndarray, base_lo: np.ndarray, base_hi: np.ndarray,
                   stride: np.ndarray, cells: np.ndarray) -> np.ndarray:  # fmt: skip
    """[T, Q] the cell whose anchor centre is nearest the GT centre (clipped to the grid)."""
    centre = ((g_lo + g_hi) / 2 - (base_lo + base_hi) / 2) / stride
    return np.clip(np.rint(centre), 0, cells - 1).astype(np.int64)


def match_sparse_numpy(grid: AnchorGrid, gts: np.ndarray, num_gts: np.ndarray, preset: Preset) -> Matches:
    """Label the anchors of a batch exactly as :func:`assign.match_dense` does, in numpy.

    Args:
        grid: the anchors shared by the batch.
        gts: [B, M, 4] float64 GT corners; rows ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.

    mmdetection's conventions only: a preset with another stride rule, dtype or low-quality rule
    (torchvision's, detectron2's) is checked against the naive references of test_anchor_presets.
    """
    other = set(preset.conventions()) & set(CONVENTIONS)
    assert not other, f"the numpy oracle computes mmdetection's conventions, not {preset.name}'s {other}"
    b, m = gts.shape[:2]
    n = len(grid)
    slot = np.arange(m)[None, :]
    img, gslot = np.nonzero(slot < num_gts[:, None])  # [T] the real GTs
    g = gts[img, gslot]  # [T, 4]
    legacy = 1.0 if preset.legacy else 0.0
    q = shapes(grid)
    base = q["base"][None, :, :]  # [1, Q, 4]
    # Effective extents: legacy "+1" pixel areas are intervals [x1, x2 + 1].
    gl = g[:, None, :2]  # [T, 1, 2]
    gh = g[:, None, 2:] + legacy
    bl, bh = base[..., :2], base[..., 2:] + legacy  # [1, Q, 2]
    stride = q["stride"][None, :, None]
    cells = np.stack([q["cols"], q["rows"]], axis=1)[None, :, :]  # [1, Q, 2] (x, y)

    def anchor_index(cx: np.ndarray, cy: np.ndarray, qi: np.ndarray) -> np.ndarray:
        return q["offset"][qi] + (cy * q["cols"][qi] + cx) * q["per_cell"][qi] + q["shape"][qi]

    # 1. A lower bound of each GT's best IoU: the exact IoU at each shape's nearest cell.
    near = _nearest_cells(gl, gh, bl, bh, stride, cells)  # [T, Q, 2]
    t_idx, q_idx = np.meshgrid(np.arange(len(g)), np.arange(len(q["stride"])), indexing="ij")
    near_anchor = anchor_index(near[..., 0], near[..., 1], q_idx)  # [T, Q]
    near_iou = exact_iou(grid.xyxy[near_anchor.ravel()], g[t_idx.ravel()], preset.legacy).reshape(near_anchor.shape)
    best_bound = near_iou.max(axis=1, initial=0.0)  # [T]

    # 2. Per GT and shape, the window of cells where IoU can reach the threshold.
    threshold = np.maximum(np.minimum(preset.neg_iou, best_bound) - IOU_MARGIN, 0.0)[:, None, None]  # [T, 1, 1]
    area_g = np.prod(gh - gl, axis=2, keepdims=True)  # [T, 1, 1]
    area_a = np.prod(bh - bl, axis=2, keepdims=True)  # [1, Q, 1]
    inter_needed = threshold * (area_a + area_g) / (1 + threshold)  # [T, Q, 1]
    side = np.minimum(bh - bl, gh - gl)  # [T, Q, 2]: the longest the other axis can overlap
    # need 0 where the threshold is 0 (a GT whose best IoU is below IOU_MARGIN): the window is every
    # anchor touching it, so that even a GT 1e-7 px wide finds its low-quality match.
    need = inter_needed / side[..., ::-1] * (1 - IOU_MARGIN)  # [T, Q, 2]
    first, last = _cell_range(gl, gh, need, bl, bh, stride, cells)  # [T, Q, 2] each
    span = np.maximum(last - first + 1, 0)  # [T, Q, 2]
    count = (span[..., 0] * span[..., 1]).ravel()  # [T·Q]

    # 3. Enumerate the windows' cells without a loop: a ragged arange.
    pair = np.repeat(np.arange(count.size), count)
    local = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    nx = span[..., 0].ravel()[pair]
    cx = first[..., 0].ravel()[pair] + local % nx
    cy = first[..., 1].ravel()[pair] + local // nx
    t = pair // len(q["stride"])
    anchor = anchor_index(cx, cy, pair % len(q["stride"]))
    cand_img, cand_slot = img[t], gslot[t]
    iou = exact_iou(grid.xyxy[anchor], g[t], preset.legacy)
    key = cand_img * n + anchor  # one key per (image, anchor)

    # 4. Each GT's maximum over its window (= over all anchors: its argmax anchors are inside).
    #    Candidates come GT by GT, so each GT's are one contiguous run.
    per_gt = count.reshape(len(g), len(q["stride"])).sum(axis=1)  # [T]
    run_start = np.cumsum(per_gt) - per_gt
    t_max = np.zeros(len(g), np.float64)
    has = per_gt > 0
    if iou.size:
        t_max[has] = np.maximum.reduceat(iou, run_start[has])
    gt_max = np.zeros((b, m), np.float64)
    gt_max[img, gslot] = t_max

    # 5. Each anchor's max IoU over GTs, ties to the lowest GT index. Only candidates at
    #    IoU >= neg_iou can make an anchor foreground or ignored here; a stable sort by key keeps
    #    a key's candidates in GT order, so the first maximum of a run is the lowest GT.
    keep = np.flatnonzero(iou >= preset.neg_iou)
    order = keep[np.argsort(key[keep], kind="stable")]
    k_sorted, iou_sorted = key[order], iou[order]
    starts = np.flatnonzero(np.r_[True, k_sorted[1:] != k_sorted[:-1]]) if order.size else np.zeros(0, np.int64)
    run_max = np.maximum.reduceat(iou_sorted, starts) if order.size else np.zeros(0)
    run_of = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, order.size]))
    at_max = np.flatnonzero(iou_sorted == run_max[run_of])
    first_max = at_max[np.r_[True, run_of[at_max][1:] != run_of[at_max][:-1]]] if at_max.size else at_max
    a_key, a_iou, a_slot = k_sorted[first_max], iou_sorted[first_max], cand_slot[order][first_max]
    fg = a_iou >= preset.pos_iou
    ignored = ~fg  # every kept key has IoU >= neg_iou
    assigned, assigned_iou = a_slot.copy(), a_iou.copy()
    extra_key = extra_slot = np.zeros(0, np.int64)

    # 6. Low-quality matching: an anchor tied at a GT's maximum goes to the last such GT.
    if preset.low_quality:
        peak = t_max[t]
        best = (iou == peak) & (peak > 0) & (peak >= preset.min_pos_iou)
        b_key, b_slot = key[best], cand_slot[best]
        by = np.lexsort((-b_slot, b_key))  # per key, highest slot first
        b_key, b_slot = b_key[by], b_slot[by]
        first_of_key = np.r_[True, b_key[1:] != b_key[:-1]] if b_key.size else np.zeros(0, bool)
        b_key, b_slot = b_key[first_of_key], b_slot[first_of_key]
        where = np.minimum(np.searchsorted(a_key, b_key), max(a_key.size - 1, 0))  # a_key is sorted
        present = (where < a_key.size) & (a_key[where] == b_key) if a_key.size else np.zeros(b_key.size, bool)
        where = where[present]
        assigned[where] = b_slot[present]
        assigned_iou[where] = gt_max[b_key[present] // n, b_slot[present]]
        fg[where] = True
        ignored[where] = False
        extra_key, extra_slot = b_key[~present], b_slot[~present]  # best anchors below neg_iou

    fg_key = np.concatenate([a_key[fg], extra_key])
    return Matches(
        fg_image=fg_key // n,
        fg_anchor=fg_key % n,
        fg_gt=np.concatenate([assigned[fg], extra_slot]),
        fg_iou=np.concatenate([assigned_iou[fg], gt_max[extra_key // n, extra_slot]]),
        ignored_image=a_key[ignored] // n,
        ignored_anchor=a_key[ignored] % n,
        gt_max_iou=gt_max,
    )
