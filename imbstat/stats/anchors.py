"""Anchor-level imbalance: fg/bg, per class, positive IoU, per GT, relative spatial, overlap (Figs. 4, 12a, 14, 15)."""

from __future__ import annotations

import functools
import math
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imbstat.anchors.engine import Batch, GroundTruth, Matcher, batches, ground_truth, make_matcher, resolve_method
from imbstat.anchors.generate import AnchorGrid
from imbstat.anchors.kernels import compiled_wanted, load_kernel
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset, load_preset, preset_from_dict
from imbstat.data import BoxFilter, Dataset
from imbstat.data.dataset import id_column
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.scores import ClassScores, score_1d, score_2d
from imbstat.stats.histogram import Histogram, plain
from imbstat.stats.protocol import check_same, first_part
from imbstat.stats.scale import SIZE_BUCKETS, size_bucket

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

PER_IMAGE_FIELDS = ("per_image", "per_image_gts", "worst_gt_iou")  # rows in image order; shards concatenate
IOU_BINS = 20  # 0.05 wide on [0, 1]
RELATIVE_LIMIT = 0.5  # relative spatial maps cover [-0.5, 0.5]²; offsets beyond fall in the edge cells


@dataclass(frozen=True)
class AnchorStats:
    """Anchor labels of a whole dataset under one preset, summed over images.

    ``per_image[i]`` is (foreground, background, ignored) anchors of image row
    ``i``; ``per_image_gts[i]`` is (GTs labelled, GTs without a foreground
    anchor) and ``worst_gt_iou[i]`` the lowest best-anchor IoU over its GTs
    (the worst-covered GT's; NaN without GTs). Per-GT arrays are [K, 3]:
    category row × COCO size bucket of the GT in its original image. Relative spatial maps are G×G histograms over
    [-0.5, 0.5]² (row = y); overlap maps are G×G sums over images of the
    number of anchors covering each cell centre of the normalised image.
    """

    preset: Preset
    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K]
    per_image: np.ndarray  # [I, 3] int64
    class_foreground: np.ndarray  # [K] int64
    positive_iou: np.ndarray  # [IOU_BINS] int64, every foreground anchor
    positive_iou_low_quality: np.ndarray  # [IOU_BINS] int64, those below pos_iou
    gt_count: np.ndarray  # [K, 3] int64
    gt_foreground: np.ndarray  # [K, 3] int64 foreground anchors assigned to those GTs
    gt_unmatched: np.ndarray  # [K, 3] int64 GTs with no foreground anchor
    gt_low_quality_only: np.ndarray  # [K, 3] int64 GTs whose foreground anchors are all below pos_iou
    gt_below_pos: np.ndarray  # [K, 3] int64 GTs with no anchor at IoU >= pos_iou
    foreground_per_gt: Histogram
    relative_top_left: np.ndarray  # [G, G] int64
    relative_center: np.ndarray  # [G, G] int64
    overlap_foreground: np.ndarray  # [G, G] int64
    overlap_background: np.ndarray  # [G, G] int64
    gts_dropped: int
    per_image_gts: np.ndarray  # [I, 2] int64
    worst_gt_iou: np.ndarray  # [I] float64

    @classmethod
    def empty(cls, ds: Dataset, *, preset: str | Preset = "retinanet", grid: int = 32) -> AnchorStats:
        """The result over none of ``ds``'s images: the identity of :meth:`merge`."""
        k, zeros = len(ds.categories), functools.partial(np.zeros, dtype=np.int64)
        return cls(
            preset if isinstance(preset, Preset) else load_preset(preset), ds.categories.category_id,
            ds.categories.name, zeros((0, 3)), zeros(k), zeros(IOU_BINS), zeros(IOU_BINS),
            *(zeros((k, 3)) for _ in range(5)), Histogram.of_integers(zeros(0)),
            *(zeros((grid, grid)) for _ in range(4)), 0, zeros((0, 2)), np.zeros(0),
        )  # fmt: skip

    @classmethod
    def merge(cls, parts: Sequence[AnchorStats]) -> AnchorStats:
        """Combine results over disjoint sets of images (shards) of one dataset, with one preset and grid."""
        first = first_part(parts, "anchor")
        for field in ("preset", "grid", "category_id"):
            check_same(parts, "anchor", field)
        summed = {
            name: sum(getattr(p, name) for p in parts)
            for name in cls.__dataclass_fields__
            if name not in ("preset", "category_id", "name", "foreground_per_gt", *PER_IMAGE_FIELDS)
        }
        return cls(
            preset=first.preset,
            category_id=first.category_id,
            name=first.name,
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in PER_IMAGE_FIELDS},
            foreground_per_gt=Histogram.merge([p.foreground_per_gt for p in parts]),
            **summed,
        )

    @property
    def grid(self) -> int:
        return self.relative_top_left.shape[0]

    @property
    def num_images(self) -> int:
        return len(self.per_image)

    @property
    def totals(self) -> dict[str, int]:
        fg, bg, ig = (int(v) for v in self.per_image.sum(axis=0))
        return {"total": fg + bg + ig, "foreground": fg, "background": bg, "ignored": ig}

    @property
    def iou_edges(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, IOU_BINS + 1)

    @functools.cached_property  # solves transport problems: once per result
    def scores(self) -> dict[str, float]:
        totals = self.totals
        return {
            # fg vs bg as a 2-bin distribution: 2·W1 against (1/2, 1/2) = |2·fg/(fg + bg) - 1|
            "foreground_background": score_1d([totals["foreground"], totals["background"]]),
            "positive_iou": score_1d(self.positive_iou),
            "foreground_classes": ClassScores.of(self.class_foreground).w1_score,
            "relative_top_left": score_2d(self.relative_top_left),
            "relative_center": score_2d(self.relative_center),
            "overlap_foreground": score_2d(self.overlap_foreground),
            "overlap_background": score_2d(self.overlap_background),
        }

    def raw_dict(self) -> dict:
        """Every field as JSON lists: what a shard's report carries so that shards merge exactly."""
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "preset":
                continue
            if isinstance(value, Histogram):
                value = value.to_dict()
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def from_dict(cls, d: dict) -> AnchorStats:
        """The result back from :meth:`to_dict` with ``raw`` (a shard's anchors section), e.g. to merge shards."""
        if "raw" not in d:
            raise ImbstatError("an anchors section without 'raw' counts; write the shards' reports with --shard I/N")
        raw = d["raw"]
        fields = {}
        for name in cls.__dataclass_fields__:
            if name == "preset":
                continue
            if name not in raw:
                raise ImbstatError(f"an anchors 'raw' block without '{name}'; write the shards' reports again")
            value = raw[name]
            if name == "foreground_per_gt":
                value = Histogram.from_dict(value)
            elif name == "category_id":
                value = id_column(value)
            elif name == "name":
                value = np.asarray(value, object)
            elif name == "worst_gt_iou":
                value = np.asarray(value, np.float64)  # null (an image without GTs) reads as NaN
            elif name == "per_image_gts":
                value = np.asarray(value, np.int64).reshape(-1, 2)
            elif isinstance(value, list):
                empty_shape = (0, 3) if name == "per_image" or name.startswith("gt_") else (0,)
                value = np.asarray(value, np.int64).reshape(np.shape(value) if value else empty_shape)
            fields[name] = value
        return cls(preset=preset_from_dict(d["preset"]), **fields)

    def to_frame(self) -> pd.DataFrame:
        """One row per category, by foreground anchors descending (ties in dataset order): category_id,
        name, foreground, foreground_per_image (mean over the images), instances (the GTs labelled)."""
        order = np.argsort(-self.class_foreground, kind="stable")
        return pd.DataFrame(
            {
                "category_id": self.category_id[order],
                "name": self.name[order],
                "foreground": self.class_foreground[order],
                "foreground_per_image": self.class_foreground[order] / max(self.num_images, 1),
                "instances": self.gt_count.sum(axis=1)[order],
            }
        )

    def _per_class_rows(self) -> list[dict]:
        """:meth:`to_frame`'s rows as JSON records, built without pandas (a small run need not import it)."""
        order = np.argsort(-self.class_foreground, kind="stable")
        instances = self.gt_count.sum(axis=1)
        n = max(self.num_images, 1)
        return [
            {"category_id": plain(self.category_id[k]), "name": plain(self.name[k]),
             "foreground": int(self.class_foreground[k]), "foreground_per_image": float(self.class_foreground[k] / n),
             "instances": int(instances[k])}
            for k in order
        ]  # fmt: skip

    def to_dict(self, *, raw: bool = False) -> dict:
        """The JSON fields; with ``raw``, also every count (:meth:`raw_dict`), which :meth:`from_dict` needs."""
        totals = self.totals
        n = max(self.num_images, 1)
        mean = self.per_image.mean(axis=0) if self.num_images else np.zeros(3)
        instances = self.gt_count.sum(axis=1)
        return {
            "anchors": totals,
            "fg_bg_ratio": totals["foreground"] / totals["background"] if totals["background"] else math.nan,
            "per_image": {
                "foreground_mean": float(mean[0]),
                "background_mean": float(mean[1]),
                "ignored_mean": float(mean[2]),
                **{
                    f"{label}_quantiles": np.quantile(self.per_image[:, j], [0, 0.25, 0.5, 0.75, 1]).tolist()
                    if self.num_images
                    else None
                    for j, label in enumerate(("foreground", "background", "ignored"))
                },
            },
            "per_class": self._per_class_rows(),
            "positive_iou": {
                "edges": self.iou_edges.tolist(),
                "counts": self.positive_iou.tolist(),
                "low_quality": self.positive_iou_low_quality.tolist(),
            },
            "per_gt": {
                "by_size": {bucket: _gt_row(self, slice(None), b) for b, bucket in enumerate(SIZE_BUCKETS)},
                "all": _gt_row(self, slice(None), slice(None)),
                "by_class": [
                    {
                        "category_id": plain(self.category_id[k]),
                        "name": str(self.name[k]),
                        **_gt_row(self, slice(k, k + 1), slice(None)),
                    }
                    for k in np.flatnonzero(instances)
                ],
                "foreground_per_gt": self.foreground_per_gt.to_dict(),
                "gts_dropped": self.gts_dropped,
            },
            "relative_spatial": {
                "grid": self.grid,
                "extent": [-RELATIVE_LIMIT, RELATIVE_LIMIT],
                "top_left": self.relative_top_left.tolist(),
                "center": self.relative_center.tolist(),
            },
            "overlap": {
                "grid": self.grid,
                "foreground": (self.overlap_foreground / n).tolist(),
                "background": (self.overlap_background / n).tolist(),
            },
            "scores": self.scores,
            "preset": self.preset.to_dict(),
        } | ({"raw": self.raw_dict()} if raw else {})


def _gt_row(s: AnchorStats, k: slice, b: slice | int) -> dict[str, float]:
    gts = int(s.gt_count[k, b].sum())
    fg = int(s.gt_foreground[k, b].sum())
    return {
        "gts": gts,
        "foreground": fg,
        "foreground_per_gt": fg / gts if gts else math.nan,
        "unmatched": int(s.gt_unmatched[k, b].sum()),
        "low_quality_only": int(s.gt_low_quality_only[k, b].sum()),
        "below_pos": int(s.gt_below_pos[k, b].sum()),
    }


def _cells(lo: np.ndarray, hi: np.ndarray, size: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres ``(k + 0.5)·size/G`` in ``[lo, hi)`` along one axis: the range ``[first, last)``."""
    first = np.clip(np.ceil(lo * (grid / size) - 0.5), 0, grid).astype(np.int64)
    last = np.clip(np.ceil(hi * (grid / size) - 0.5), 0, grid).astype(np.int64)
    return first, last


def coverage_diff(xyxy: np.ndarray, new_w: np.ndarray, new_h: np.ndarray, grid: int) -> np.ndarray:
    """[G + 1, G + 1] int64 difference array of :func:`coverage`: +1/-1 at each box's cell-range corners."""
    x0, x1 = _cells(xyxy[:, 0], xyxy[:, 2], new_w, grid)
    y0, y1 = _cells(xyxy[:, 1], xyxy[:, 3], new_h, grid)
    side = grid + 1
    plus = np.bincount(np.concatenate([y0 * side + x0, y1 * side + x1]), minlength=side * side)
    minus = np.bincount(np.concatenate([y0 * side + x1, y1 * side + x0]), minlength=side * side)
    return (plus - minus).reshape(side, side)


def integrate(diff: np.ndarray) -> np.ndarray:
    """[G, G] counts from a [G + 1, G + 1] difference array."""
    return diff.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]


def coverage(xyxy: np.ndarray, new_w: np.ndarray, new_h: np.ndarray, grid: int) -> np.ndarray:
    """[G, G] int64: for each cell of the normalised image, how many boxes cover its centre.

    A box covers cell (r, c) when ``x1 <= (c + 0.5)·W/G < x2`` and likewise
    in y, with W, H the box's resized image size; summed with a 2-D
    difference array, no loop per box (a box covering no centre adds +1 and
    -1 to the same entry).
    """
    return integrate(coverage_diff(xyxy, new_w, new_h, grid))


def grid_coverage(grid: AnchorGrid, new_w: float, new_h: float, cells: int) -> np.ndarray:
    """:func:`coverage` of every anchor of ``grid``, by separation.

    Within one level and shape, anchor (r, c) spans the x-interval of column c
    and the y-interval of row r, so the count at a cell is
    ``#columns covering its x · #rows covering its y``: an outer product per
    shape instead of a difference array over all anchors.
    """
    total = np.zeros((cells, cells), np.int64)
    per_cell = grid.preset.anchors_per_cell
    slots = np.arange(per_cell)[:, None]  # [S, 1]: one row of counts per shape, via offset bins
    for level, (rows, cols) in enumerate(grid.cells):
        base = grid.level_offsets[level]
        along_x = grid.corners(base + slots + per_cell * np.arange(cols))  # [S, cols, 4]: row 0, every column
        along_y = grid.corners(base + slots + per_cell * cols * np.arange(rows))  # [S, rows, 4]: column 0, every row
        counts = []
        for spans, size, lo, hi in ((along_x, new_w, 0, 2), (along_y, new_h, 1, 3)):
            first, last = _cells(spans[..., lo], spans[..., hi], np.float64(size), cells)  # [S, n] each
            edges = slots * (cells + 1)
            diff = np.bincount((first + edges).ravel(), minlength=per_cell * (cells + 1)) - np.bincount(
                (last + edges).ravel(), minlength=per_cell * (cells + 1)
            )
            counts.append(np.cumsum(diff.reshape(per_cell, cells + 1), axis=1)[:, :cells])  # [S, G]
        total += np.einsum("si,sj->ij", counts[1], counts[0])  # per shape: rows covering y × columns covering x
    return total


def _hist2d(x: np.ndarray, y: np.ndarray, grid: int) -> np.ndarray:
    """[G, G] int64 counts of points on [-0.5, 0.5]², row = y; points beyond fall in edge cells."""
    col = np.clip(np.floor((x + RELATIVE_LIMIT) * grid), 0, grid - 1).astype(np.int64)
    row = np.clip(np.floor((y + RELATIVE_LIMIT) * grid), 0, grid - 1).astype(np.int64)
    return np.bincount(row * grid + col, minlength=grid * grid).reshape(grid, grid)


class _Accumulator:
    """Sums one batch at a time into the arrays of an AnchorStats.

    The per-anchor sums run in the compiled :func:`anchor_kernel.tally` where
    numba is installed and ``compiled`` (:mod:`imbstat.anchors.kernels`), else in
    :meth:`_tally_numpy` (identical results).
    """

    def __init__(self, ds: Dataset, preset: Preset, gt: GroundTruth, grid: int, compiled: bool = True):
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
        tally = compiled and load_kernel("imbstat.stats.anchor_kernel", "tally")
        self._tally = functools.partial(self._tally_compiled, tally) if tally else self._tally_numpy

    def add(self, batch: Batch, m: Matches) -> None:
        b = len(batch.images)
        n = len(batch.grid)
        fg = np.bincount(m.fg_image, minlength=b)
        ig = np.bincount(m.ignored_image, minlength=b)
        self.per_image[batch.images] = np.stack([fg, n - fg - ig, ig], axis=1)
        rows = batch.gt_rows[m.fg_image, m.fg_gt]  # [F] into GroundTruth
        assert (rows >= 0).all(), "a foreground anchor was assigned to a padding GT"
        valid = batch.gt_rows >= 0
        self.gt_below_pos[batch.gt_rows[valid]] = m.gt_max_iou[valid] < self.preset.pos_iou
        self._tally(batch, m, rows)
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

    def _tally_compiled(self, tally: Callable, batch: Batch, m: Matches, rows: np.ndarray) -> None:
        image = batch.images
        grid = batch.grid
        tally(
            grid.level_offsets, grid.cols, grid.strides, grid.bases,
            m.fg_image, m.fg_anchor, rows, m.fg_iou, m.ignored_image, m.ignored_anchor,
            batch.gts, m.fg_gt, self.category, self.gt.new_width[image], self.gt.new_height[image],
            float(self.preset.pos_iou), self._iou_edges, RELATIVE_LIMIT,
            self.class_foreground, self.positive_iou, self.positive_iou_low_quality, self.fg_per_gt,
            self.fg_high_per_gt, self.relative_top_left, self.relative_center, self.diff_foreground,
            self.diff_ignored,
        )  # fmt: skip

    def _tally_numpy(self, batch: Batch, m: Matches, rows: np.ndarray) -> None:
        np.add.at(self.class_foreground, self.category[rows], 1)
        low = m.fg_iou < self.preset.pos_iou
        self.positive_iou += np.histogram(m.fg_iou, bins=IOU_BINS, range=(0.0, 1.0))[0]
        self.positive_iou_low_quality += np.histogram(m.fg_iou[low], bins=IOU_BINS, range=(0.0, 1.0))[0]
        # Counts of this batch's GTs only: a bincount over every GT of the dataset per batch is quadratic.
        for counts, hits in ((self.fg_per_gt, rows), (self.fg_high_per_gt, rows[~low])):
            gts, n = np.unique(hits, return_counts=True)
            counts[gts] += n

        anchors = batch.grid.corners(m.fg_anchor)  # [F, 4]
        gts = batch.gts[m.fg_image, m.fg_gt]  # [F, 4] each foreground anchor's GT
        gw, gh = gts[:, 2] - gts[:, 0], gts[:, 3] - gts[:, 1]
        self.relative_top_left += _hist2d((anchors[:, 0] - gts[:, 0]) / gw, (anchors[:, 1] - gts[:, 1]) / gh,
                                          self.grid)  # fmt: skip
        centre = (anchors[:, :2] + anchors[:, 2:]) / 2 - (gts[:, :2] + gts[:, 2:]) / 2
        self.relative_center += _hist2d(centre[:, 0] / gw, centre[:, 1] / gh, self.grid)

        image = batch.images
        self.diff_foreground += coverage_diff(anchors, self.gt.new_width[image][m.fg_image],
                                              self.gt.new_height[image][m.fg_image], self.grid)  # fmt: skip
        self.diff_ignored += coverage_diff(batch.grid.corners(m.ignored_anchor),
                                           self.gt.new_width[image][m.ignored_image],
                                           self.gt.new_height[image][m.ignored_image], self.grid)  # fmt: skip

    def result(self) -> AnchorStats:
        k = len(self.ds.categories)
        cell = self.category.astype(np.int64) * 3 + self.bucket

        def per_gt(mask: np.ndarray | None = None, weights: np.ndarray | None = None) -> np.ndarray:
            c = cell if mask is None else cell[mask]
            return np.bincount(c, weights=weights, minlength=k * 3).reshape(k, 3).astype(np.int64)

        fg = self.fg_per_gt
        overlap_fg = integrate(self.diff_foreground)
        return AnchorStats(
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
            per_image_gts=self.per_image_gts,
            worst_gt_iou=self.worst_gt_iou,
        )


def anchor_stats(
    ds: Dataset,
    *,
    preset: str | Preset = "retinanet",
    device: str = "cpu",
    method: str = "auto",
    batch_size: int = 32,
    box_filter: BoxFilter = BoxFilter(),
    grid: int = 32,
    progress: Callable[[int], None] | None = None,
    memory_mb: float = 1024,
    threads: int | None = None,
) -> AnchorStats:
    """Label every anchor of every image of ``ds`` and return the survey's anchor statistics.

    ``method`` is ``dense`` (all anchors × all GTs in torch on ``device``),
    ``sparse`` (only the anchors that can reach the lowest threshold), ``fused``
    (dense with Triton kernels, CUDA) or ``auto`` (sparse on CPU, dense on
    CUDA). All give identical results. The sparse path labels batches on
    ``threads`` threads (default: every core it may use; its kernel releases the GIL) while
    this thread sums them, in batch order. ``progress(n)`` is called after each
    batch with its number of images; ``memory_mb`` bounds the dense path's IoU
    block on the device.
    """
    preset = preset if isinstance(preset, Preset) else load_preset(preset)
    gt = ground_truth(ds, preset, box_filter)
    compiled = compiled_wanted(len(gt.box))  # numba's ~0.5 s start-up pays off only on larger inputs
    matcher = make_matcher(preset, device, method, memory_mb, compiled)
    acc = _Accumulator(ds, preset, gt, grid, compiled)
    sparse = resolve_method(method, device) == "sparse"
    workers = max(1, threads if threads is not None else _cores()) if sparse else 1
    for batch, matches in _labelled(batches(gt, preset, batch_size), matcher, workers):
        acc.add(batch, matches)
        if progress:
            progress(len(batch.images))
    return acc.result()


def _cores() -> int:
    """The cores this process may run on (its affinity, so a container's limit), else the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _labelled(todo: Iterator[Batch], matcher: Matcher, workers: int) -> Iterator[tuple[Batch, Matches]]:
    """``(batch, matcher(batch))`` in batch order, labelled ``workers`` at a time; at most 2·workers in flight."""
    if workers <= 1:
        yield from ((batch, matcher(batch)) for batch in todo)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="imbstat-label") as pool:
        pending: deque[tuple[Batch, Future[Matches]]] = deque()
        for batch in todo:
            pending.append((batch, pool.submit(matcher, batch)))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()


__all__ = ["AnchorStats", "anchor_stats", "coverage"]
