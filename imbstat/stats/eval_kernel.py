"""COCOeval's greedy matching at one IoU threshold, compiled with numba: the true positives behind the TP IoU
histogram of :mod:`imbstat.stats.eval`.

The engine (faster-coco-eval) gives precision and recall but not its matches, so they are found here as
pycocotools' ``COCOeval.evaluateImg`` finds them for one (image, category): detections by score descending
(ties in input order, numpy's mergesort), cut at maxDets; GTs with the ignored (crowd) ones last, in input
order otherwise; each detection takes the unmatched GT of highest IoU ≥ the threshold (a crowd GT may be
matched again; once matched to a regular GT, no ignored GT is considered). The IoU is maskUtils' ``bbIou``,
the same float64 expressions: ``w = min(x_d + w_d, x_g + w_g) - max(x_d, x_g)``, intersection over
``a_d + a_g - i`` (over ``a_d`` for a crowd GT). tests/test_eval.py checks the pairs against pycocotools.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def _iou(d: np.ndarray, g: np.ndarray, crowd: bool) -> float:
    w = min(d[2] + d[0], g[2] + g[0]) - max(d[0], g[0])
    if w <= 0:
        return 0.0
    h = min(d[3] + d[1], g[3] + g[1]) - max(d[1], g[1])
    if h <= 0:
        return 0.0
    i = w * h
    da = d[2] * d[3]
    u = da if crowd else da + g[2] * g[3] - i
    return i / u


@njit(cache=True, nogil=True, error_model="numpy")
def match_groups(
    dt_start: np.ndarray,
    dt_end: np.ndarray,
    dt_xywh: np.ndarray,
    gt_start: np.ndarray,
    gt_end: np.ndarray,
    gt_xywh: np.ndarray,
    gt_crowd: np.ndarray,
    gt_ignore: np.ndarray,
    threshold: float,
    max_dets: int,
) -> np.ndarray:
    """[D] the GT row each detection row is matched to (-1: none), group by group.

    Group ``j`` holds detection rows ``dt_start[j]:dt_end[j]`` (sorted by score descending) and GT rows
    ``gt_start[j]:gt_end[j]`` (ignored ones last); only the first ``max_dets`` detections of a group take
    part. ``gt_crowd`` is COCO's ``iscrowd`` (IoU over the detection's area; may be matched again), ``gt_ignore``
    COCOeval's ``_ignore`` of the area range (crowd, or an area outside it).
    """
    matched = np.full(dt_xywh.shape[0], -1, np.int64)
    for j in range(dt_start.shape[0]):
        d0, d1 = dt_start[j], min(dt_end[j], dt_start[j] + max_dets)
        g0, g1 = gt_start[j], gt_end[j]
        if d0 == d1 or g0 == g1:
            continue
        taken = np.zeros(g1 - g0, np.bool_)
        for d in range(d0, d1):
            best = min(threshold, 1 - 1e-10)
            m = -1
            for g in range(g0, g1):
                if taken[g - g0] and not gt_crowd[g]:
                    continue
                if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                    break
                iou = _iou(dt_xywh[d], gt_xywh[g], gt_crowd[g])
                if iou < best:
                    continue
                best = iou
                m = g
            if m > -1:
                taken[m - g0] = True
                matched[d] = m
    return matched
