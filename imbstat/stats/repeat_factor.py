"""What repeat-factor sampling does to a dataset's classes, before any training.

Repeat-factor sampling (LVIS, Gupta et al. 2019, App. B.2): class ``c`` with image
frequency ``f_c`` (share of the file's images containing it, images without boxes
included) gets ``r_c = max(1, sqrt(T / f_c))``; image ``i`` is repeated
``r_i = max_{c in i} r_c`` times per epoch (1 without boxes). A class in no image
has no factor (NaN; ``null`` in JSON): it is never sampled, whatever ``T``.

The other common remedy, class-balanced loss weights, is :mod:`imbstat.stats.class_balanced`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.scores import ClassScores, class_change, score_1d
from imbstat.stats.histogram import plain
from imbstat.stats.protocol import check_same, count, first_part

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built


# Factors are at most sqrt(T · images): with T <= 1000 and 2^31 images, 1.5e6 copies of an image, finite.
MAX_THRESHOLD = 1000.0


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float; ImbstatError unless it is in (0, :data:`MAX_THRESHOLD`].

    T is a share of images; detectron2 takes one above 1 too (every class repeats), but a huge T
    (1e308) overflowed the factors into infinite copies and NaN scores (issue 20).
    """
    value = float(threshold)
    if not 0 < value <= MAX_THRESHOLD:  # NaN fails too
        raise ImbstatError(f"repeat-factor threshold {threshold!r} is not allowed; expected a number in "
                           f"(0, {MAX_THRESHOLD:g}] (LVIS uses 0.001)")  # fmt: skip
    return value


@dataclass(frozen=True)
class ImageClassCounts:
    """The sparse image × class matrix of counted boxes: one entry per (image, class) present.

    Sorted by image, then class. ``image`` rows are those of the images counted
    (``num_images`` of them, images without boxes included); merging parts puts
    their images one after the other.
    """

    image: np.ndarray  # [P] int64 image row
    category: np.ndarray  # [P] int64 category row
    count: np.ndarray  # [P] int64 boxes of that class in that image
    num_images: int

    @classmethod
    def of(cls, ds: Dataset, box_filter: BoxFilter = BoxFilter()) -> ImageClassCounts:
        k = max(len(ds.categories), 1)
        chunks = ds.counted_chunks(box_filter)
        keys = np.concatenate([b.image.astype(np.int64) * k + b.category for b in chunks])
        keys.sort(kind="stable")  # runs of near-ordered boxes: timsort
        starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if keys.size else np.zeros(0, np.int64)
        distinct = keys[starts]
        count = np.diff(np.r_[starts, keys.size]).astype(np.int64)
        return cls(distinct // k, distinct % k, count, ds.num_images)

    @classmethod
    def concat(cls, parts: Sequence[ImageClassCounts]) -> ImageClassCounts:
        offsets = np.cumsum([0] + [p.num_images for p in parts])
        return cls(
            np.concatenate([p.image + o for p, o in zip(parts, offsets, strict=False)]),
            np.concatenate([p.category for p in parts]),
            np.concatenate([p.count for p in parts]),
            int(offsets[-1]),
        )

    def to_dict(self) -> dict:
        return {
            "num_images": self.num_images,
            "image": self.image.tolist(),
            "category": self.category.tolist(),
            "count": self.count.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict, num_categories: int) -> ImageClassCounts:
        """The matrix back from :meth:`to_dict`; ImbstatError unless it is one (a shard's report is user data)."""
        image, category, count = (np.asarray(d[k], np.int64).reshape(-1) for k in ("image", "category", "count"))
        n = int(d["num_images"])
        key = image * max(num_categories, 1) + category
        well_formed = (
            image.size == category.size == count.size
            and bool(np.all((image >= 0) & (image < n) & (category >= 0) & (category < num_categories)))
            and bool(np.all(count >= 1))
            and bool(np.all(key[1:] > key[:-1]))  # sorted by image, then class, each pair once
        )
        if not well_formed:
            raise ImbstatError(
                "repeat_factor.raw is not an image × class matrix of this report; expected equal-length lists "
                "image, category, count sorted by (image, category), as imbstat --shard I/N writes them"
            )
        return cls(image, category, count, n)


def _class_factors(images: np.ndarray, num_images: int, threshold: float) -> np.ndarray:
    """[K] r_c = max(1, sqrt(T / f_c)), f_c = images_c / num_images; NaN for a class in no image."""
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.maximum(1.0, np.sqrt(threshold * num_images / images.astype(np.float64)))
    return np.where(images > 0, factor, np.nan)


def _image_groups(pairs: ImageClassCounts, class_factor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct factor values, [num_images] each image's index into them).

    An image's factor is that of its rarest class, so it is one of at most K + 1
    values (1 for an image without boxes); sums over images are then sums of
    integer counts per value, added in value order, the same for any order or
    split of the images (merging shards is exact to the bit).
    """
    values = np.unique(np.r_[1.0, class_factor[pairs.category]])  # ascending, 1 first (r_c >= 1)
    rank = np.searchsorted(values, class_factor[pairs.category])
    group = np.zeros(pairs.num_images, np.int64)
    if pairs.image.size:
        starts = np.flatnonzero(np.r_[True, pairs.image[1:] != pairs.image[:-1]])  # pairs are sorted by image
        group[pairs.image[starts]] = np.maximum.reduceat(rank, starts)
    return values, group


def _weighted_sum(values: np.ndarray, group: np.ndarray, key: np.ndarray, weight: np.ndarray, size: int) -> np.ndarray:
    """[size] Σ values[group] · weight per key, through integer sums per (group, key)."""
    cell = group * size + key
    distinct, inverse = np.unique(cell, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weight, minlength=distinct.size)  # integers: exact
    return np.bincount(distinct % size, weights=values[distinct // size] * counts, minlength=size)


def repeat_factors(
    ds: Dataset, threshold: float, *, box_filter: BoxFilter = BoxFilter()
) -> tuple[np.ndarray, np.ndarray]:
    """LVIS repeat factors of ``ds``: ([K] per category row, NaN for a class in no image; [N] per image row).

    As detectron2's ``RepeatFactorTrainingSampler.repeat_factors_from_category_frequency``,
    with images without boxes counted in the denominator of ``f_c`` and given 1.
    """
    return counts_repeat_factors(ImageClassCounts.of(ds, box_filter), len(ds.categories), threshold)


def counts_repeat_factors(
    counts: ImageClassCounts, num_categories: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`repeat_factors` of an image × class matrix already built (batch-dist's sampler has one)."""
    threshold = check_threshold(threshold)
    images = np.bincount(counts.category, minlength=num_categories)
    class_factor = _class_factors(images, counts.num_images, threshold)
    values, group = _image_groups(counts, class_factor)
    return class_factor, values[group]


def _class_scores(instances: np.ndarray, objects_per_image: np.ndarray, classes_per_image: np.ndarray) -> dict:
    """The keys of the class section's ``scores``, of (possibly expected, fractional) counts."""
    return {
        **ClassScores.of(instances).to_dict(),
        "objects_per_image": score_1d(objects_per_image),
        "classes_per_image": score_1d(classes_per_image),
    }


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class RepeatFactorSampling:
    """One epoch of LVIS repeat-factor sampling of a dataset, in expectation, next to the dataset itself.

    Per category row: ``factor`` r_c (NaN for a class in no image), ``instances`` and
    ``images`` of the dataset, ``expected_instances`` Σ_i r_i·n_ic and ``expected_images``
    Σ_i r_i·[c in i] per resampled epoch. ``objects_per_image`` / ``classes_per_image``:
    expected images per count (bin i = i objects / classes) per epoch. ``counts`` (the
    image × class matrix) is what :meth:`merge` needs, since every factor depends on the
    whole dataset's frequencies; None when read from a JSON section written without ``raw``.
    """

    threshold: float
    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K] str
    factor: np.ndarray  # [K] float64
    instances: np.ndarray  # [K] int64
    images: np.ndarray  # [K] int64
    expected_instances: np.ndarray  # [K] float64
    expected_images: np.ndarray  # [K] float64
    objects_per_image: np.ndarray  # [B] float64
    classes_per_image: np.ndarray  # [B] float64
    num_images: int
    epoch_images: float
    scores_before: dict[str, float]
    counts: ImageClassCounts | None = None

    @classmethod
    def of(cls, counts: ImageClassCounts, category_id: np.ndarray, name: np.ndarray, threshold: float
         ) -> RepeatFactorSampling:  # fmt: skip
        """Everything from the image × class matrix (the compute and the merge)."""
        k = len(category_id)
        instances = np.bincount(counts.category, weights=counts.count, minlength=k).astype(np.int64)
        images = np.bincount(counts.category, minlength=k).astype(np.int64)
        factor = _class_factors(images, counts.num_images, threshold)
        values, group = _image_groups(counts, factor)
        pair_group = group[counts.image]
        ones = np.ones(counts.image.size)
        objects = np.bincount(counts.image, weights=counts.count, minlength=counts.num_images).astype(np.int64)
        classes = np.bincount(counts.image, minlength=counts.num_images)
        every = np.ones(counts.num_images)
        sizes = (objects.max(initial=0) + 1, classes.max(initial=0) + 1)
        objects_after = _weighted_sum(values, group, objects, every, sizes[0])
        classes_after = _weighted_sum(values, group, classes, every, sizes[1])
        return cls(
            threshold,
            category_id,
            name,
            factor,
            instances,
            images,
            _weighted_sum(values, pair_group, counts.category, counts.count.astype(np.float64), k),
            _weighted_sum(values, pair_group, counts.category, ones, k),
            objects_after,
            classes_after,
            counts.num_images,
            float(_weighted_sum(values, group, np.zeros(counts.num_images, np.int64), every, 1)[0]),
            _class_scores(instances, np.bincount(objects, minlength=1), np.bincount(classes, minlength=1)),
            counts,
        )

    @classmethod
    def empty(cls, ds: Dataset, *, threshold: float) -> RepeatFactorSampling:
        """The result over none of ``ds``'s images: the identity of :meth:`merge`."""
        none = np.zeros(0, np.int64)
        counts = ImageClassCounts(none, none, none, 0)
        return cls.of(counts, ds.categories.category_id, ds.categories.name, check_threshold(threshold))

    @classmethod
    def merge(cls, parts: Sequence[RepeatFactorSampling]) -> RepeatFactorSampling:
        """Combine results over disjoint sets of images (shards): every factor again from the whole's frequencies."""
        first = first_part(parts, "repeat-factor")
        check_same(parts, "repeat-factor", "threshold")
        check_same(parts, "repeat-factor", "category_id")
        if any(p.counts is None for p in parts):
            raise ImbstatError(
                "a repeat_factor section without 'raw' counts; write the shards' reports with --shard I/N"
            )
        counts = ImageClassCounts.concat([p.counts for p in parts if p.counts is not None])
        return cls.of(counts, first.category_id, first.name, first.threshold)

    @property
    def change(self) -> dict[str, float]:
        """How far one resampled epoch moves the class shares and the rank–frequency curve from the dataset's."""
        return class_change(self.instances, self.expected_instances)

    @property
    def scores(self) -> dict[str, float]:
        """The class section's scores of one resampled epoch (expected counts)."""
        return _class_scores(self.expected_instances, self.objects_per_image, self.classes_per_image)

    def to_frame(self) -> pd.DataFrame:
        """One row per category, in the dataset's rank–frequency order (instances before resampling)."""
        frame = pd.DataFrame(
            {
                "category_id": self.category_id,
                "name": self.name,
                "repeat_factor": self.factor,
                "instances": self.expected_instances,
                "images": self.expected_images,
                "instances_before": self.instances,
                "images_before": self.images,
            }
        )
        return frame.iloc[np.argsort(-self.instances, kind="stable")].reset_index(drop=True)

    def to_dict(self, *, raw: bool = False) -> dict:
        """The JSON fields; with ``raw``, also the image × class matrix (a shard's, for ``imbstat merge``)."""
        rows = [
            {
                "category_id": plain(c),
                "name": plain(n),
                "repeat_factor": _json_number(f),
                "instances": float(i),
                "images": float(m),
                "instances_before": int(ib),
                "images_before": int(mb),
            }
            for c, n, f, i, m, ib, mb in zip(
                self.category_id,
                self.name,
                self.factor,
                self.expected_instances,
                self.expected_images,
                self.instances,
                self.images,
                strict=True,
            )
        ]
        return {
            "threshold": self.threshold,
            "num_images": self.num_images,
            "epoch_images": self.epoch_images,
            "per_class": rows,
            "objects_per_image": self.objects_per_image.tolist(),
            "classes_per_image": self.classes_per_image.tolist(),
            "scores": self.scores,
            "scores_before": dict(self.scores_before),
            "change": self.change,
        } | ({"raw": self.counts.to_dict()} if raw and self.counts is not None else {})

    @classmethod
    def from_dict(cls, d: dict) -> RepeatFactorSampling:
        """The result back from its JSON fields (:meth:`to_dict`); mergeable only with ``raw``."""
        rows = d["per_class"]
        column = lambda key, dtype: np.asarray([r[key] for r in rows], dtype).reshape(-1)  # noqa: E731
        counted = lambda key: np.asarray([count(r[key], f"per_class[{i}].{key}") for i, r in enumerate(rows)], np.int64)  # noqa: E731
        return cls(
            float(d["threshold"]),
            id_column([r["category_id"] for r in rows]),
            np.asarray([r["name"] for r in rows], object),
            np.asarray([_number(r["repeat_factor"]) for r in rows], np.float64).reshape(-1),
            counted("instances_before"),
            counted("images_before"),
            column("instances", np.float64),
            column("images", np.float64),
            np.asarray(d["objects_per_image"], np.float64),
            np.asarray(d["classes_per_image"], np.float64),
            count(d["num_images"], "num_images"),
            float(d["epoch_images"]),
            {k: _number(v) for k, v in d["scores_before"].items()},
            ImageClassCounts.from_dict(d["raw"], len(rows)) if "raw" in d else None,
        )


def repeat_factor_sampling(
    ds: Dataset, *, threshold: float, box_filter: BoxFilter = BoxFilter()
) -> RepeatFactorSampling:
    """What one epoch of repeat-factor sampling with threshold ``threshold`` makes of ``ds``'s classes."""
    threshold = check_threshold(threshold)
    counts = ImageClassCounts.of(ds, box_filter)
    return RepeatFactorSampling.of(counts, ds.categories.category_id, ds.categories.name, threshold)
