"""What the common class-imbalance remedies do to a dataset, before any training.

- Repeat-factor sampling (LVIS, Gupta et al. 2019, App. B.2): class ``c`` with image
  frequency ``f_c`` (share of the file's images containing it, images without boxes
  included) gets ``r_c = max(1, sqrt(T / f_c))``; image ``i`` is repeated
  ``r_i = max_{c in i} r_c`` times per epoch (1 without boxes). A class in no image
  has no factor (NaN; ``null`` in JSON): it is never sampled, whatever ``T``.
- Class-balanced loss weights (Cui et al. 2019): ``w_c ∝ (1 − β) / (1 − β^{n_c})``, one over
  the effective number of ``n_c`` instances, normalised so that the weights of the classes
  with instances sum to their number (the number of classes when every class has one).
  A class without instances gets weight 0: it is never a target, and ``1 / E_0`` is infinite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imbstat.data import BoxFilter, Dataset
from imbstat.errors import ImbstatError


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float; ImbstatError unless it is finite and > 0."""
    value = float(threshold)
    if not math.isfinite(value) or value <= 0:
        raise ImbstatError(
            f"repeat-factor threshold {threshold!r} is not allowed; expected a finite number > 0 (LVIS uses 0.001)"
        )
    return value


def check_beta(beta: float) -> float:
    """``beta`` as a float; ImbstatError unless 0 <= beta < 1."""
    value = float(beta)
    if not 0 <= value < 1:  # NaN fails too
        raise ImbstatError(f"class-balanced beta {beta!r} is not allowed; expected 0 <= beta < 1 (e.g. 0.999)")
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
        keys = np.concatenate([b.image * k + b.category for b in ds.counted_chunks(box_filter)]).astype(np.int64)
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
    def from_dict(cls, d: dict) -> ImageClassCounts:
        return cls(*(np.asarray(d[k], np.int64).reshape(-1) for k in ("image", "category", "count")), d["num_images"])


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
    threshold = check_threshold(threshold)
    pairs = ImageClassCounts.of(ds, box_filter)
    images = np.bincount(pairs.category, minlength=len(ds.categories))
    class_factor = _class_factors(images, pairs.num_images, threshold)
    values, group = _image_groups(pairs, class_factor)
    return class_factor, values[group]
