"""Anchor-level imbalance: fg/bg, per class, positive IoU, per GT, relative spatial, overlap (Figs. 4, 12a, 14, 15)."""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.anchors.engine import batches, cores, ground_truth, labelled, make_matcher, resolve_method
from imbstat.anchors.options import AnchorOptions
from imbstat.anchors.presets import Preset, load_preset, preset_from_dict
from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.scores import ClassScores, score_1d, scores_2d
from imbstat.stats.anchor_sampling import SampledAnchors
from imbstat.stats.anchor_sums import IOU_BINS, RELATIVE_LIMIT, AnchorSums
from imbstat.stats.histogram import Histogram, plain
from imbstat.stats.protocol import (
    FieldError,
    check_same,
    consistent,
    count,
    counts,
    each,
    first_part,
    nested,
    numbers,
)
from imbstat.stats.scale import SIZE_BUCKETS
from imbstat.stats.side_by_side import side_by_side_dict

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

PER_IMAGE_FIELDS = ("per_image", "per_image_gts", "worst_gt_iou")  # rows in image order; shards concatenate


@dataclass(frozen=True)
class AnchorStats:
    """Anchor labels of a whole dataset under one preset, summed over images.

    ``per_image[i]`` is (foreground, background, ignored) anchors of image row
    ``i``; ``per_image_gts[i]`` is (GTs labelled, GTs without a foreground
    anchor) and ``worst_gt_iou[i]`` the lowest best-anchor IoU over its GTs
    (the worst-covered GT's; NaN without GTs). Per-GT arrays are [K, 3]:
    category row × COCO size bucket of the GT in its original image. Relative
    spatial maps are G×G histograms over [-0.5, 0.5]² (row = y); overlap maps are G×G sums over images of the
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
    # [K] float64: expected positives per class drawn by the preset's sampler (Σ_i fg_ic · positives_i / fg_i,
    # summed while labelling: it needs each image's classes); zeros without a sampler
    class_sampled_positives: np.ndarray
    # The same images under the run's further presets, in order (``--preset A --preset B``): each a whole
    # AnchorStats of its own (with no more_presets); keys by :func:`~imbstat.stats.side_by_side.keyed`.
    more_presets: tuple[AnchorStats, ...] = ()
    # GTs that took no part for a side below preset.min_gt_side px in the original image (not in gts_dropped);
    # written (JSON and raw) only under a preset with min_gt_side > 0, so other presets' output is what it was.
    gts_below_min_side: int = 0
    # [I] bool: the images the preset's framework trains on (Preset.train_images), the ones its sampling stage
    # samples; None: every image. Written (raw) only under a preset with a sampler.
    trained_images: np.ndarray | None = None

    @classmethod
    def empty(cls, ds: Dataset, *, preset: str | Preset = "retinanet", grid: int = 32) -> AnchorStats:
        """The result over none of ``ds``'s images: the identity of :meth:`merge`."""
        k, zeros = len(ds.categories), functools.partial(np.zeros, dtype=np.int64)
        return cls(
            preset if isinstance(preset, Preset) else load_preset(preset), ds.categories.category_id,
            ds.categories.name, zeros((0, 3)), zeros(k), zeros(IOU_BINS), zeros(IOU_BINS),
            *(zeros((k, 3)) for _ in range(5)), Histogram.of_integers(zeros(0)),
            *(zeros((grid, grid)) for _ in range(4)), 0, zeros((0, 2)), np.zeros(0), np.zeros(k),
        )  # fmt: skip

    @classmethod
    def merge(cls, parts: Sequence[AnchorStats]) -> AnchorStats:
        """Combine results over disjoint sets of images (shards) of one dataset, with one preset and grid."""
        first = first_part(parts, "anchor")
        for field in ("preset", "grid", "category_id"):
            check_same(parts, "anchor", field)
        if any(len(p.more_presets) != len(first.more_presets) for p in parts):
            raise ImbstatError("cannot merge anchor results of different numbers of presets; expected the same presets")
        apart = ("preset", "category_id", "name", "foreground_per_gt", "more_presets", "trained_images")
        summed = {
            name: sum(getattr(p, name) for p in parts)
            for name in cls.__dataclass_fields__
            if name not in (*apart, *PER_IMAGE_FIELDS)
        }
        trained = None if all(p.trained_images is None for p in parts) else np.concatenate([p.trained for p in parts])
        return cls(
            preset=first.preset,
            category_id=first.category_id,
            name=first.name,
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in PER_IMAGE_FIELDS},
            foreground_per_gt=Histogram.merge([p.foreground_per_gt for p in parts]),
            **summed,
            more_presets=tuple(cls.merge(same) for same in zip(*(p.more_presets for p in parts), strict=True)),
            trained_images=trained,
        )

    @classmethod
    def side_by_side(cls, results: Sequence[AnchorStats]) -> AnchorStats:
        """The first result with the others (the same images under further presets) as its ``more_presets``."""
        first = first_part(results, "anchor")
        for r in results:
            if r.num_images != first.num_images or not np.array_equal(r.category_id, first.category_id):
                raise ImbstatError("side by side: anchor results of other datasets; expected one dataset's")
        return dataclasses.replace(first, more_presets=tuple(results[1:]))

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
    def sampled(self) -> SampledAnchors | None:
        """What the preset's sampling stage draws (its ``sampler``), or None without one."""
        sampler = self.preset.random_sampler
        if sampler is None:
            return None
        return SampledAnchors.of(sampler, self.per_image, self.category_id, self.name, self.class_sampled_positives,
                                 self.trained_images, self.preset.train_images)  # fmt: skip

    @property
    def trained(self) -> np.ndarray:
        """[I] bool: :attr:`trained_images`, every image where that is None."""
        return np.ones(self.num_images, bool) if self.trained_images is None else self.trained_images

    @property
    def iou_edges(self) -> np.ndarray:
        return np.linspace(0.0, 1.0, IOU_BINS + 1)

    @functools.cached_property  # solves transport problems: once per result
    def scores(self) -> dict[str, float]:
        totals = self.totals
        maps = self.relative_top_left, self.relative_center, self.overlap_foreground, self.overlap_background
        top_left, centre, overlap_fg, overlap_bg = scores_2d(*maps)
        return {
            # fg vs bg as a 2-bin distribution: 2·W1 against (1/2, 1/2) = |2·fg/(fg + bg) - 1|
            "foreground_background": score_1d([totals["foreground"], totals["background"]]),
            "positive_iou": score_1d(self.positive_iou),
            "foreground_classes": ClassScores.of(self.class_foreground).w1_score,
            "relative_top_left": top_left,
            "relative_center": centre,
            "overlap_foreground": overlap_fg,
            "overlap_background": overlap_bg,
        }

    def raw_dict(self) -> dict:
        """Every field as JSON lists: what a shard's report carries so that shards merge exactly."""
        out: dict = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in ("preset", "more_presets") or self._unwritten(name, self.preset):
                continue  # further presets carry their own raw block; without a sampler, the raw block it always was
            if isinstance(value, Histogram):
                value = value.to_dict()
            out[name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @staticmethod
    def _unwritten(name: str, preset: Preset) -> bool:
        """Fields a raw block leaves out under ``preset`` (zero there), so that it is the block it always was."""
        return (name in ("class_sampled_positives", "trained_images") and not preset.sampler) or (
            name == "gts_below_min_side" and not preset.min_gt_side
        )

    @classmethod
    def from_dict(cls, d: dict) -> AnchorStats:
        """The result back from :meth:`to_dict` with ``raw`` (a shard's anchors section), e.g. to merge shards.

        FieldError (naming ``raw.<field>[i]``) for a count that is not a non-negative integer, an array
        whose shape is not the classes', images' or grid's, or per-class sums that are not the per-image ones.
        """
        if "raw" not in d:
            raise ImbstatError("an anchors section without 'raw' counts; write the shards' reports with --shard I/N")
        preset = preset_from_dict(d["preset"])
        fields = nested(d, "raw", lambda raw: cls._raw_fields(raw, preset))
        d = {"more_presets": []} | d
        more = nested(d, "more_presets", each(cls.from_dict))
        return cls(preset=preset, **fields, more_presets=more)

    @classmethod
    def _raw_fields(cls, raw: dict, preset: Preset) -> dict[str, Any]:
        """The fields of a ``raw`` block, each checked against the shapes its first arrays set."""
        if not isinstance(raw, dict):
            raise FieldError("", "expected an object of every count")
        k = len(id_column(raw["category_id"]))
        images = counts(raw["per_image"], "per_image", (None, 3)).shape[0]
        g = counts(raw["relative_top_left"], "relative_top_left", (None, None)).shape[0]
        shapes: dict[str, tuple[int | None, ...]] = {
            "per_image": (images, 3), "class_foreground": (k,), "positive_iou": (IOU_BINS,),
            "positive_iou_low_quality": (IOU_BINS,), "per_image_gts": (images, 2),
            **dict.fromkeys(("gt_count", "gt_foreground", "gt_unmatched", "gt_low_quality_only", "gt_below_pos"),
                            (k, 3)),
            **dict.fromkeys(("relative_top_left", "relative_center", "overlap_foreground", "overlap_background"),
                            (g, g)),
        }  # fmt: skip
        fields: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name in ("preset", "more_presets"):
                continue
            if name == "trained_images" and (cls._unwritten(name, preset) or name not in raw):
                fields[name] = None  # every image (a shard written before the rule: as it sampled)
                continue
            if cls._unwritten(name, preset):
                fields[name] = np.zeros(k) if name == "class_sampled_positives" else 0
                continue
            if name not in raw:
                raise ImbstatError(f"an anchors 'raw' block without '{name}'; write the shards' reports again")
            value = raw[name]
            if name == "foreground_per_gt":
                value = nested(raw, name, Histogram.from_dict)
            elif name == "category_id":
                value = id_column(value)
            elif name == "name":
                value = np.asarray(value, object)
            elif name in ("worst_gt_iou", "class_sampled_positives"):  # null (an image without GTs) reads as NaN
                value = numbers(value, name, (images,) if name == "worst_gt_iou" else (k,), null=True)
            elif name == "trained_images":
                flags = isinstance(value, list) and len(value) == images and all(isinstance(v, bool) for v in value)
                consistent(flags, name, f"expected a list of {images} true or false, one per image")
                value = np.asarray(value, bool)
            elif name in shapes:
                value = counts(value, name, shapes[name])
            else:
                value = count(value, name)
            fields[name] = value
        foreground = int(fields["per_image"][:, 0].sum())
        for name in ("class_foreground", "positive_iou"):
            found = int(fields[name].sum())
            consistent(found == foreground, name, f"expected a sum of {foreground}, the per-image foreground "
                       f"anchors' (per_image[:, 0]), found {found}")  # fmt: skip
        consistent(bool(np.all(fields["positive_iou_low_quality"] <= fields["positive_iou"])),
                   "positive_iou_low_quality", "expected at most positive_iou in every bin")  # fmt: skip
        for name in ("gt_unmatched", "gt_low_quality_only", "gt_below_pos"):
            consistent(bool(np.all(fields[name] <= fields["gt_count"])), name, "expected at most gt_count everywhere")
        return fields

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
        """The JSON fields; with ``raw``, also every count (:meth:`raw_dict`), which :meth:`from_dict` needs.

        With :attr:`more_presets`, also ``key`` (this first preset's) and ``more_presets``: the
        further presets' sections in order, each with its ``key`` first (README, "Several presets").
        """
        return self._own_dict(raw) | side_by_side_dict(self, lambda r: r._own_dict(raw))

    def _own_dict(self, raw: bool) -> dict:
        totals = self.totals
        n = max(self.num_images, 1)
        mean = self.per_image.mean(axis=0) if self.num_images else np.zeros(3)
        instances = self.gt_count.sum(axis=1)
        sampled = self.sampled  # the sampling stage's block, then a shard's raw counts
        optional = ({"sampled": sampled.to_dict()} if sampled else {}) | ({"raw": self.raw_dict()} if raw else {})
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
            }
            | ({"gts_below_min_side": self.gts_below_min_side} if self.preset.min_gt_side else {}),
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
        } | optional


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


class _Accumulator(AnchorSums):
    """The sums of :class:`AnchorSums`, returned as an AnchorStats."""

    def result(self) -> AnchorStats:
        return AnchorStats(**self.fields())


def anchor_stats(
    ds: Dataset,
    *,
    options: AnchorOptions | None = None,
    box_filter: BoxFilter = BoxFilter(),
    progress: Callable[[int], None] | None = None,
    **fields: Any,
) -> AnchorStats:
    """Label every anchor of every image of ``ds`` and return the survey's anchor statistics.

    ``options`` (:class:`~imbstat.anchors.options.AnchorOptions`), with any of its fields
    given as keywords (``preset=``, ``device=``, ``method=``, ``batch_size=``, ...) taking precedence.
    Its ``method`` is ``dense`` (all anchors × all GTs in torch on ``device``),
    ``sparse`` (only the anchors that can reach the lowest threshold), ``fused``
    (dense with Triton kernels, CUDA) or ``auto`` (sparse on CPU, dense on
    CUDA). All give identical results. The sparse path labels batches on
    ``threads`` threads (default: every core it may use; numba's kernel releases the GIL) while
    this thread sums them, in batch order.
    ``progress(n)`` is called after each batch with its number of images; ``memory_mb`` bounds the dense path's IoU
    block on the device.
    """
    options = dataclasses.replace(options or AnchorOptions(), **fields)
    preset = options.preset
    gt = ground_truth(ds, preset, box_filter)
    # The CPU paths label on threads: sparse MaxIoU, and ATSS and FCOS whatever the device (they run on the CPU).
    sparse = preset.assigner != "max-iou" or resolve_method(options.method, options.device) == "sparse"
    workers = (options.threads or cores()) if sparse else 1
    matcher = make_matcher(preset, options.device, options.method, options.memory_mb)
    acc = _Accumulator(ds, preset, gt, options.grid)
    for batch, matches in labelled(batches(gt, preset, options.batch_size), matcher, workers):
        acc.add(batch, matches)
        if progress:
            progress(len(batch.images))
    return acc.result()


__all__ = ["AnchorStats", "anchor_stats"]
