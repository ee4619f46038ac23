"""Scale imbalance: relative sizes, COCO size buckets, aspect ratio, FPN levels (Fig. 7, Sec. 5.2)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imbstat.anchors.resize import Resize
from imbstat.data import Boxes, BoxFilter, Dataset
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.scores import score_1d
from imbstat.stats.histogram import Histogram
from imbstat.stats.protocol import check_same, consistent, count, first_part, nested

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

# COCO's absolute-size buckets: small < 32², medium < 96², large otherwise.
SMALL_MAX_AREA = 32.0**2
MEDIUM_MAX_AREA = 96.0**2
SIZE_BUCKETS = ("small", "medium", "large")
FPN_LEVELS = (2, 3, 4, 5)
# log2(w/h) beyond ±4 (16:1) is counted in the end bins.
ASPECT_LIMIT = 4.0
ASPECT_BINS = 32
# Bins of the relative size histograms at most: three histograms of this many counts each go to the JSON,
# the CSV and the figures, whatever the data; 10,000 is finer than any figure shows.
MAX_BINS = 10_000
RELATIVE = ("relative_width", "relative_height", "relative_area")  # histograms on [0, 1] of ``bins`` bins


def size_bucket(area: np.ndarray) -> np.ndarray:
    """[N] int8 COCO size bucket of each box area: 0 small, 1 medium, 2 large (index into SIZE_BUCKETS)."""
    return (area >= SMALL_MAX_AREA).astype(np.int8) + (area >= MEDIUM_MAX_AREA)


@dataclass(frozen=True)
class ScaleDistribution:
    """Histograms of box sizes relative to their image, and pixel-size counts.

    ``size_buckets`` ([3]: small, medium, large, by ``w·h`` in the original
    image), ``fpn_levels`` ([4]: levels 2..5 of ``floor(4 + log2(sqrt(wh)/224))``
    with ``w, h`` after ``resize``) and ``aspect_ratio`` (``log2(w/h)`` in
    pixels) need pixel sizes: they are None when some image's size is unknown,
    and ``missing`` says what to pass.
    """

    relative_width: Histogram
    relative_height: Histogram
    relative_area: Histogram
    aspect_ratio: Histogram | None
    size_buckets: np.ndarray | None  # [3] int64
    fpn_levels: np.ndarray | None  # [4] int64
    resize: Resize
    missing: str | None = None

    @classmethod
    def empty(cls, ds: Dataset, *, bins: int = 50, resize: Resize = Resize()) -> ScaleDistribution:
        """The result over none of ``ds``'s images (every count 0): the identity of :meth:`merge`."""
        none = np.zeros(0)
        hist = {name: Histogram.uniform(none, 0.0, 1.0, bins) for name in RELATIVE}
        aspect = Histogram.uniform(none, -ASPECT_LIMIT, ASPECT_LIMIT, ASPECT_BINS)
        zeros = np.zeros(len(SIZE_BUCKETS), np.int64), np.zeros(len(FPN_LEVELS), np.int64)
        return cls(**hist, aspect_ratio=aspect, size_buckets=zeros[0], fpn_levels=zeros[1], resize=resize)

    @classmethod
    def merge(cls, parts: Sequence[ScaleDistribution]) -> ScaleDistribution:
        """Combine results over disjoint sets of images (shards) of one dataset, with the same bins and resize."""
        first = first_part(parts, "scale distribution")
        check_same(parts, "scale distribution", "resize")
        for name in RELATIVE:
            check_same(parts, "scale distribution", f"{name} edges", lambda p, n=name: getattr(p, n).edges)
        pixel = all(p.size_buckets is not None for p in parts)
        return cls(
            Histogram.merge([p.relative_width for p in parts]),
            Histogram.merge([p.relative_height for p in parts]),
            Histogram.merge([p.relative_area for p in parts]),
            Histogram.merge([p.aspect_ratio for p in parts]) if pixel else None,  # type: ignore[misc]
            sum(p.size_buckets for p in parts) if pixel else None,  # type: ignore[misc]
            sum(p.fpn_levels for p in parts) if pixel else None,  # type: ignore[misc]
            first.resize,
            None if pixel else next(p.missing for p in parts if p.missing),
        )

    @classmethod
    def from_dict(cls, d: dict) -> ScaleDistribution:
        """The result back from its JSON fields (:meth:`to_dict`), e.g. to merge shards' reports; FieldError
        for a count that is not a non-negative integer or a distribution that counts other boxes than the others.
        """
        pixel = d["size_buckets"] is not None
        width, height, area = (nested(d, name, Histogram.from_dict) for name in RELATIVE)
        aspect = nested(d, "aspect_ratio", Histogram.from_dict) if d["aspect_ratio"] is not None else None
        buckets = levels = None
        if pixel:
            named = lambda block, keys: np.asarray([count(block[str(k)], str(k)) for k in keys], np.int64)  # noqa: E731
            buckets = nested(d, "size_buckets", lambda b: named(b, SIZE_BUCKETS))
            levels = nested(d, "fpn_levels", lambda f: named(f, FPN_LEVELS))
        boxes = width.total
        found = {"relative_height.counts": height.total, "relative_area.counts": area.total}
        if aspect is not None and buckets is not None and levels is not None:
            found |= {"aspect_ratio.counts": aspect.total, "size_buckets": int(buckets.sum())}
            found |= {"fpn_levels": int(levels.sum())}
        for name, total in found.items():
            consistent(total == boxes, name, f"expected {boxes} boxes, as relative_width counts, found {total}")
        return cls(width, height, area, aspect, buckets, levels, Resize(d["resize"]["short"], d["resize"]["long"]),
                   d.get("missing"))  # fmt: skip

    def histograms(self) -> dict[str, Histogram]:
        found = {
            "relative_width": self.relative_width,
            "relative_height": self.relative_height,
            "relative_area": self.relative_area,
        }
        if self.aspect_ratio is not None:
            found["aspect_ratio"] = self.aspect_ratio
        return found

    @property
    def scores(self) -> dict[str, float]:
        """Imbalance score of each ordered distribution (2·W1 against uniform)."""
        scores = {name: score_1d(h.counts) for name, h in self.histograms().items()}
        if self.size_buckets is not None and self.fpn_levels is not None:
            scores["size_buckets"] = score_1d(self.size_buckets)
            scores["fpn_levels"] = score_1d(self.fpn_levels)
        return scores

    def to_frame(self) -> pd.DataFrame:
        """One row per histogram bin: distribution, low, high, count (``aspect_ratio`` with pixel sizes)."""
        rows = [
            pd.DataFrame({"distribution": name, "low": h.edges[:-1], "high": h.edges[1:], "count": h.counts})
            for name, h in self.histograms().items()
        ]
        return pd.concat(rows, ignore_index=True)

    def to_dict(self) -> dict:
        out: dict = {name: h.to_dict() for name, h in self.histograms().items()}
        if self.aspect_ratio is None:
            out["aspect_ratio"] = None
        out["size_buckets"] = (
            None if self.size_buckets is None else dict(zip(SIZE_BUCKETS, self.size_buckets.tolist(), strict=True))
        )
        out["fpn_levels"] = (
            None
            if self.fpn_levels is None
            else {str(k): int(n) for k, n in zip(FPN_LEVELS, self.fpn_levels, strict=True)}
        )
        out["resize"] = {"short": self.resize.short, "long": self.resize.long}
        if self.missing:
            out["missing"] = self.missing
        out["scores"] = self.scores
        return out


def scale_distribution(
    ds: Dataset, *, box_filter: BoxFilter = BoxFilter(), bins: int = 50, resize: Resize = Resize()
) -> ScaleDistribution:
    """Fig. 7 of the survey for ``ds``, with COCO size buckets and FPN levels (Sec. 5.2)."""
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= MAX_BINS:
        raise ImbstatError(f"--bins {bins!r}: expected a whole number from 2 to {MAX_BINS}")
    return ScaleDistribution.merge([_scale(ds, boxes, bins, resize) for boxes in ds.counted_chunks(box_filter)])


def _scale(ds: Dataset, boxes: Boxes, bins: int, resize: Resize) -> ScaleDistribution:
    img_w, img_h = ds.images.width[boxes.image], ds.images.height[boxes.image]
    w, h = boxes.width, boxes.height
    rel_w, rel_h = w / img_w, h / img_h
    hist = {
        "relative_width": Histogram.uniform(rel_w, 0.0, 1.0, bins),
        "relative_height": Histogram.uniform(rel_h, 0.0, 1.0, bins),
        "relative_area": Histogram.uniform(rel_w * rel_h, 0.0, 1.0, bins),
    }
    if not ds.images.size_known.all():
        missing = (
            f"size buckets, aspect ratio and FPN levels need image sizes in pixels, unknown for "
            f"{int((~ds.images.size_known).sum())} images; {ds.sizes_hint()}"
        )
        return ScaleDistribution(
            **hist, aspect_ratio=None, size_buckets=None, fpn_levels=None, resize=resize, missing=missing
        )
    area = w * h
    buckets = np.bincount(size_bucket(area), minlength=3)
    scale_x, scale_y = resize.axis_scales(ds.images.width, ds.images.height)
    sx, sy = scale_x[boxes.image], scale_y[boxes.image]
    level = np.floor(4 + np.log2(np.sqrt(w * sx * h * sy) / 224.0))
    levels = np.bincount(np.clip(level, FPN_LEVELS[0], FPN_LEVELS[-1]).astype(np.int64) - FPN_LEVELS[0], minlength=4)
    aspect = Histogram.uniform(np.log2(w / h), -ASPECT_LIMIT, ASPECT_LIMIT, ASPECT_BINS, clip=True)
    return ScaleDistribution(
        **hist,
        aspect_ratio=aspect,
        size_buckets=buckets.astype(np.int64),
        fpn_levels=levels.astype(np.int64),
        resize=resize,
    )
