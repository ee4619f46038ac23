"""MaxIoUAssigner labeling, the sparse path: only anchors that can matter are examined.

For one anchor shape, the intersection with a GT is ``ox · oy`` where ``ox``
depends only on the horizontal centre offset and does not grow as it grows;
so ``IoU >= T`` needs ``ox >= T (A + G) / ((1 + T) · min(h_a, h_g))`` (and
likewise ``oy``), and the anchor centres meeting that form an interval, hence
a window of grid cells. With ``T`` just below the lowest threshold that can
decide a label — ``min(neg_iou, a lower bound of the GT's best IoU)`` — every
anchor that is foreground, ignored, or a GT's (tied) best lies in its GT's
window; everything else is background. The lower bound is the exact IoU of
the anchors at the cells nearest the GT's centre, which is where each shape
peaks. Windows are widened by a margin, and every candidate's IoU is then
computed with exactly the float64 formula of the dense path, so both paths
label every anchor identically (docs/design.md, 'Two paths, one answer').

It runs compiled (:mod:`imbstat.anchors.sparse_kernel`): windows first, then one
pass over their cells. Per image, each window anchor is labelled in a dense
per-anchor array that is reset through the list of anchors touched, so the work
is proportional to the candidates, not to the image's anchors.
``tests/sparse_reference.py`` is the same method in numpy, the oracle the tests
compare this kernel against.

Float32 presets: every operation of the IoU and every anchor corner is rounded
to float32 (computing a +, -, * or / of two float32 values in float64 and
rounding once gives the float32 result exactly), and the windows take wider
margins for float32's error. The torchvision/detectron2 low-quality rule gives a
tied anchor its own argmax GT, found over all the image's GTs where its best
IoU is below ``neg_iou`` (there the windows need not hold every GT).
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from imbstat.anchors.generate import AnchorGrid, base_anchors
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset
from imbstat.errors import ImbstatError

_SHAPES: dict[tuple, dict[str, np.ndarray]] = {}


def shapes(grid: AnchorGrid) -> dict[str, np.ndarray]:
    """Per (level, shape) q: base corners [Q, 4], stride, (x, y) step, grid size and first anchor index."""
    key = (grid.preset, grid.padded_width, grid.padded_height)
    found = _SHAPES.get(key)  # labelling threads share the cache: read it once, return the local value
    if found is None:
        found = _shapes_of(grid)
        if len(_SHAPES) > 256:
            _SHAPES.clear()
        _SHAPES[key] = found
    return found


def _shapes_of(grid: AnchorGrid) -> dict[str, np.ndarray]:
    preset = grid.preset
    rows = []
    for level, stride in enumerate(preset.strides):
        base = base_anchors(preset, stride)
        r, c = grid.cells[level]
        for s in range(len(base)):
            rows.append((*base[s], stride, r, c, grid.level_offsets[level], s, len(base), *grid.steps[level]))
    t = np.array(rows, np.float64)
    return {
        "base": t[:, :4],
        "stride": t[:, 4],
        "rows": t[:, 5].astype(np.int64),
        "cols": t[:, 6].astype(np.int64),
        "offset": t[:, 7].astype(np.int64),
        "shape": t[:, 8].astype(np.int64),
        "per_cell": t[:, 9].astype(np.int64),
        "step_x": t[:, 10],
        "step_y": t[:, 11],
    }


def match_sparse(grid: AnchorGrid, gts: np.ndarray, num_gts: np.ndarray, preset: Preset) -> Matches:
    """Label the anchors of a batch exactly as :func:`assign.match_dense` does.

    Args:
        grid: the anchors shared by the batch.
        gts: [B, M, 4] float64 GT corners; rows ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.

    Raises:
        ImbstatError: a GT that overlaps no anchor under the torchvision/detectron2 low-quality rule.
    """
    from imbstat.anchors.kernels import load_kernel

    label = load_kernel("imbstat.anchors.sparse_kernel", "_label")  # compiled: loaded at first use
    q = shapes(grid)
    fg, fg_iou, ignored, gt_max, unsupported = label(
        np.ascontiguousarray(gts, np.float64), np.asarray(num_gts, np.int64), q["base"], q["step_x"], q["step_y"],
        q["rows"], q["cols"], q["offset"], q["shape"], q["per_cell"], preset.threshold(preset.pos_iou),
        preset.threshold(preset.neg_iou), preset.threshold(preset.min_pos_iou), bool(preset.low_quality),
        preset.low_quality_rule != "mmdetection", 1.0 if preset.legacy else 0.0, preset.float32,
    )  # fmt: skip
    if unsupported:
        raise ImbstatError(
            f"preset {preset.name}: a GT overlaps no anchor (best IoU 0); its low-quality rule would make every "
            "anchor it misses foreground, which the sparse path does not enumerate; use --method dense"
        )
    return Matches(fg[:, 0], fg[:, 1], fg[:, 2], fg_iou, ignored[:, 0], ignored[:, 1], gt_max)


@functools.cache
def _best_only(preset: Preset) -> Preset:
    """``preset`` with thresholds of 1 and no low-quality pass: the smallest windows that still hold every
    GT's best anchor (the windows' threshold is min(neg_iou, a lower bound of the GT's best IoU))."""
    return dataclasses.replace(preset, pos_iou=1.0, neg_iou=1.0, low_quality=False)


def best_iou_per_gt(grid: AnchorGrid, gts: np.ndarray, num_gts: np.ndarray, preset: Preset) -> np.ndarray:
    """[B, M] each GT's largest IoU over all of ``grid``'s anchors (0 for padding), exact: what the ATSS
    and FCOS assigners report as ``Matches.gt_max_iou``."""
    return match_sparse(grid, gts, num_gts, _best_only(preset)).gt_max_iou
