"""The per-anchor anchor statistics in numpy: the test oracle of the compiled :func:`stats.anchor_kernel.tally`.

The same float64 expressions as the kernel, written with whole-array numpy
operations: ``np.histogram`` for the positive IoU, ``np.bincount`` for the
relative spatial maps and :func:`coverage_diff` for the overlap maps. The
tests swap :func:`tally_numpy` in for the accumulator's ``_tally`` and check
that both give identical statistics.
"""

from __future__ import annotations

import numpy as np

from imbstat.anchors.engine import Batch
from imbstat.anchors.matches import Matches
from imbstat.stats.anchor_sums import IOU_BINS, RELATIVE_LIMIT, AnchorSums
from imbstat.stats.coverage import coverage_diff


def hist2d(x: np.ndarray, y: np.ndarray, grid: int) -> np.ndarray:
    """[G, G] int64 counts of points on [-0.5, 0.5]², row = y; points beyond fall in edge cells."""
    col = np.clip(np.floor((x + RELATIVE_LIMIT) * grid), 0, grid - 1).astype(np.int64)
    row = np.clip(np.floor((y + RELATIVE_LIMIT) * grid), 0, grid - 1).astype(np.int64)
    return np.bincount(row * grid + col, minlength=grid * grid).reshape(grid, grid)


def tally_numpy(acc: AnchorSums, batch: Batch, m: Matches, rows: np.ndarray) -> None:
    """The accumulator's ``_tally`` (``acc`` is the accumulator), in numpy."""
    np.add.at(acc.class_foreground, acc.category[rows], 1)
    low = m.fg_iou < acc.preset.pos_iou
    acc.positive_iou += np.histogram(m.fg_iou, bins=IOU_BINS, range=(0.0, 1.0))[0]
    acc.positive_iou_low_quality += np.histogram(m.fg_iou[low], bins=IOU_BINS, range=(0.0, 1.0))[0]
    for counts, hits in ((acc.fg_per_gt, rows), (acc.fg_high_per_gt, rows[~low])):
        gts, n = np.unique(hits, return_counts=True)
        counts[gts] += n

    anchors = batch.grid.corners(m.fg_anchor)  # [F, 4]
    gts = batch.gts[m.fg_image, m.fg_gt]  # [F, 4] each foreground anchor's GT
    gw, gh = gts[:, 2] - gts[:, 0], gts[:, 3] - gts[:, 1]
    acc.relative_top_left += hist2d((anchors[:, 0] - gts[:, 0]) / gw, (anchors[:, 1] - gts[:, 1]) / gh, acc.grid)
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2 - (gts[:, :2] + gts[:, 2:]) / 2
    acc.relative_center += hist2d(centre[:, 0] / gw, centre[:, 1] / gh, acc.grid)

    image = batch.images
    acc.diff_foreground += coverage_diff(anchors, acc.gt.new_width[image][m.fg_image],
                                         acc.gt.new_height[image][m.fg_image], acc.grid)  # fmt: skip
    acc.diff_ignored += coverage_diff(batch.grid.corners(m.ignored_anchor), acc.gt.new_width[image][m.ignored_image],
                                      acc.gt.new_height[image][m.ignored_image], acc.grid)  # fmt: skip
