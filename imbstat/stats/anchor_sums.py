"""The anchor statistics summed batch by batch while the anchors are labelled."""

from __future__ import annotations

import numpy as np

from imbstat.anchors.engine import Batch, GroundTruth
from imbstat.anchors.kernels import load_kernel
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset
from imbstat.data import Dataset
from imbstat.stats.anchor_sampling import trained_images
from imbstat.stats.coverage import grid_coverage, integrate
from imbstat.stats.histogram import Histogram
from imbstat.stats.scale import size_bucket

IOU_BINS = 20  # 0.05 wide on [0, 1]
RELATIVE_LIMIT = 0.5  # relative spatial maps cover [-0.5, 0.5]²; offsets beyond fall in the edge cells


class AnchorSums:
    """Sums one batch at a time into the arrays of an AnchorStats (:meth:`fields` gives them).

    The per-anchor sums run in the compiled :func:`anchor_kernel.tally`;
    ``tests/anchor_stats_reference.py`` is the numpy oracle the tests compare it with.
    """

    def __init__(self, ds: Dataset, preset: Preset, gt: GroundTruth, grid: int):
        self.ds, self.preset, self.gt, self.grid = ds, preset, gt, grid
        k = len(ds.categories)
        # Per-GT arrays are 25M long at the Objects365 size: the narrowest types that hold them.
        self.category = ds.boxes.category[gt.box].astype(np.int16 if k < 2**15 else np.int64)  # [T]
        corners = ds.boxes.xyxy[gt.box]
        area = (corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])
        del corners
        self.bucket = size_bucket(area)  # [T]
        self.per_image = np.zeros((ds.num_images, 3), np.int64)
        self.per_image_gts = np.zeros((ds.num_images, 2), np.int64)
        self.worst_gt_iou = np.full(ds.num_images, np.nan)
        self.class_foreground = np.zeros(k, np.int64)
        self.sampler = preset.random_sampler
        # [I] the images the sampling stage sees; without one, nothing to choose
        self.trained = trained_images(ds, preset.train_images) if self.sampler else None
        self.class_sampled_positives = np.zeros(k, np.float64)
        self.positive_iou = np.zeros(IOU_BINS, np.int64)
        self.positive_iou_low_quality = np.zeros(IOU_BINS, np.int64)
        self.fg_per_gt = np.zeros(len(gt.box), np.int32)
        self.fg_high_per_gt = np.zeros(len(gt.box), np.int32)
        self.gt_below_pos = np.zeros(len(gt.box), bool)  # no anchor at IoU >= pos_iou
        self.relative_top_left = np.zeros((grid, grid), np.int64)
        self.relative_center = np.zeros((grid, grid), np.int64)
        self.diff_foreground = np.zeros((grid + 1, grid + 1), np.int64)
        self.diff_ignored = np.zeros((grid + 1, grid + 1), np.int64)
        self.overlap_all = np.zeros((grid, grid), np.int64)
        self._all_cache: dict[tuple, np.ndarray] = {}
        self._iou_edges = np.linspace(0.0, 1.0, IOU_BINS + 1)

    def add(self, batch: Batch, m: Matches) -> None:
        b = len(batch.images)
        n = len(batch.grid)
        fg = np.bincount(m.fg_image, minlength=b)
        ig = np.bincount(m.ignored_image, minlength=b)
        self.per_image[batch.images] = np.stack([fg, n - fg - ig, ig], axis=1)
        rows = batch.gt_rows[m.fg_image, m.fg_gt]  # [F] into GroundTruth
        assert (rows >= 0).all(), "a foreground anchor was assigned to a padding GT"
        valid = batch.gt_rows >= 0
        self.gt_below_pos[batch.gt_rows[valid]] = m.gt_max_iou[valid] < self.preset.threshold(self.preset.pos_iou)
        self._tally(batch, m, rows)
        if self.sampler is not None:
            # Each foreground anchor is drawn with probability positives / fg of its image (uniform, no
            # replacement), so a class's expected positives are Σ_i fg_ic · positives_i / fg_i.
            drawn = np.minimum(fg, self.sampler.positive_quota) / np.maximum(fg, 1)  # [b]
            drawn *= self.trained[batch.images]  # images the framework does not train on: none drawn
            self.class_sampled_positives += np.bincount(
                self.category[rows], weights=drawn[m.fg_image], minlength=len(self.class_sampled_positives)
            )
        # Per image, after the tally has counted this batch's GTs' foreground anchors (a GT is in one batch).
        no_fg = valid & (self.fg_per_gt[np.where(valid, batch.gt_rows, 0)] == 0)
        self.per_image_gts[batch.images] = np.stack([valid.sum(axis=1), no_fg.sum(axis=1)], axis=1)
        worst = np.where(valid, m.gt_max_iou, np.inf).min(axis=1, initial=np.inf)
        self.worst_gt_iou[batch.images] = np.where(valid.any(axis=1), worst, np.nan)
        # Every anchor's coverage, one cached map per resized size (images of a batch share the grid).
        sizes = np.stack([self.gt.new_width[batch.images], self.gt.new_height[batch.images]], axis=1)
        for (w, h), count in zip(*np.unique(sizes, axis=0, return_counts=True), strict=True):
            key = (batch.grid.padded_width, batch.grid.padded_height, w, h)
            if key not in self._all_cache:
                self._all_cache[key] = grid_coverage(batch.grid, w, h, self.grid)
            self.overlap_all += count * self._all_cache[key]

    def _tally(self, batch: Batch, m: Matches, rows: np.ndarray) -> None:
        """Add the batch's per-anchor sums: classes, positive IoU, per GT, relative spatial, coverage."""
        tally = load_kernel("imbstat.stats.anchor_kernel", "tally")  # loaded at the first count

        image = batch.images
        grid = batch.grid
        tally(
            grid.level_offsets, grid.cols, grid.steps, grid.bases, grid.preset.float32,
            m.fg_image, m.fg_anchor, rows, m.fg_iou, m.ignored_image, m.ignored_anchor,
            batch.gts, m.fg_gt, self.category, self.gt.new_width[image], self.gt.new_height[image],
            self.preset.threshold(self.preset.pos_iou), self._iou_edges, RELATIVE_LIMIT,
            self.class_foreground, self.positive_iou, self.positive_iou_low_quality, self.fg_per_gt,
            self.fg_high_per_gt, self.relative_top_left, self.relative_center, self.diff_foreground,
            self.diff_ignored,
        )  # fmt: skip

    def fields(self) -> dict:
        """The AnchorStats fields of the images summed so far."""
        k = len(self.ds.categories)
        cell = self.category.astype(np.int64) * 3 + self.bucket

        def per_gt(mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
            c = cell if mask is None else cell[mask]
            return np.bincount(c, weights=weights, minlength=k * 3).reshape(k, 3).astype(np.int64)

        fg = self.fg_per_gt
        overlap_fg = integrate(self.diff_foreground)
        return dict(
            preset=self.preset,
            category_id=self.ds.categories.category_id,
            name=self.ds.categories.name,
            per_image=self.per_image,
            class_foreground=self.class_foreground,
            positive_iou=self.positive_iou,
            positive_iou_low_quality=self.positive_iou_low_quality,
            gt_count=per_gt(),
            gt_foreground=per_gt(weights=fg),
            gt_unmatched=per_gt(fg == 0),
            gt_low_quality_only=per_gt((fg > 0) & (self.fg_high_per_gt == 0)),
            gt_below_pos=per_gt(self.gt_below_pos),
            foreground_per_gt=Histogram.of_integers(fg),
            relative_top_left=self.relative_top_left,
            relative_center=self.relative_center,
            overlap_foreground=overlap_fg,
            overlap_background=self.overlap_all - overlap_fg - integrate(self.diff_ignored),
            gts_dropped=self.gt.dropped,
            gts_below_min_side=self.gt.below_min_side,
            per_image_gts=self.per_image_gts,
            worst_gt_iou=self.worst_gt_iou,
            class_sampled_positives=self.class_sampled_positives,
            trained_images=self.trained,
        )
