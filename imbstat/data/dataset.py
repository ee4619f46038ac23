"""The columnar Dataset every loader produces (docs/design.md, 'Data model').

One row per image, per box and per category, held as numpy arrays: no Python
object per box survives loading. Boxes are absolute pixel corners
``x1, y1, x2, y2`` (float64, ``x2 > x1``, ``y2 > y1``), clipped to their image.
When a format does not give image sizes (Open Images without ``--sizes``),
``width == height == 1`` with ``size_known`` False, and the boxes are in
normalised image units: image-relative statistics still hold, pixel-based ones
call :meth:`Dataset.require_sizes`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imbstat.data.formats import sizes_hint
from imbstat.data.problems import REASONS, Problems, Reason
from imbstat.errors import ImbstatError

# The image sizes a Dataset holds (docs/design.md, 'Data model'), checked for every format in `assemble`. A side is
# 1 to 2^31 - 1 pixels (PNG's limit, above any real image; so finite), and the long side at most
# MAX_ASPECT_RATIO times the short one: every preset resizes to 800 x 1333, where a 1000:1 image keeps
# a short side of int(1333 / 1000 + 0.5) = 1 px, while past 2666:1 it would round to 0 px and have no
# anchor grid. Also, products of two sides (areas) stay far from float64 overflow.
MIN_IMAGE_SIDE = 1.0
MAX_IMAGE_SIDE = float(2**31 - 1)
MAX_ASPECT_RATIO = 1000.0
_CHUNK_ROWS = 1 << 20
STATS_CHUNK_ROWS = 1 << 22  # boxes per chunk of Dataset.counted_chunks


@dataclass(frozen=True)
class Images:
    image_id: np.ndarray  # [I] int64 or str: the dataset's own id
    file_name: np.ndarray  # [I] str
    width: np.ndarray  # [I] float64 pixels > 0 (1.0 where size_known is False)
    height: np.ndarray  # [I] float64
    size_known: np.ndarray  # [I] bool

    def __len__(self) -> int:
        return len(self.image_id)

    def select(self, mask: np.ndarray) -> Images:
        return Images(*(getattr(self, f.name)[mask] for f in dataclasses.fields(self)))


@dataclass(frozen=True)
class Categories:
    category_id: np.ndarray  # [K] int64 or str: the dataset's own id
    name: np.ndarray  # [K] str
    supercategory: np.ndarray | None = None  # [K] str
    frequency: np.ndarray | None = None  # [K] str, LVIS "r" / "c" / "f"

    def __len__(self) -> int:
        return len(self.category_id)


@dataclass(frozen=True)
class Boxes:
    image: np.ndarray  # [N] int64 row index into Images
    category: np.ndarray  # [N] int64 row index into Categories
    xyxy: np.ndarray  # [N, 4] float64 absolute pixel corners
    iscrowd: np.ndarray  # [N] bool
    difficult: np.ndarray  # [N] bool
    group_of: np.ndarray  # [N] bool
    # [N] float64: the source's own area (COCO ``area``: the segmentation's) where it gives a usable one, else NaN;
    # COCOeval sorts a GT into small / medium / large by it (imbstat.stats.eval)
    area: np.ndarray

    def __len__(self) -> int:
        return len(self.image)

    @classmethod
    def build(
        cls,
        image: np.ndarray,
        category: np.ndarray,
        xyxy: np.ndarray,
        iscrowd: np.ndarray | None = None,
        difficult: np.ndarray | None = None,
        group_of: np.ndarray | None = None,
        area: np.ndarray | None = None,
    ) -> Boxes:
        """Boxes from columns, with absent flag columns as all False and an absent area as all NaN."""
        n = len(image)
        xyxy = np.asarray(xyxy, np.float64).reshape(n, 4)

        def flag(a: np.ndarray | None) -> np.ndarray:
            return np.zeros(n, bool) if a is None else np.asarray(a, bool).reshape(n)

        return cls(
            np.asarray(image, np.int64).reshape(n),
            np.asarray(category, np.int64).reshape(n),
            xyxy,
            flag(iscrowd),
            flag(difficult),
            flag(group_of),
            np.full(n, np.nan) if area is None else np.asarray(area, np.float64).reshape(n),
        )

    def select(self, rows: np.ndarray | slice) -> Boxes:
        """The boxes at ``rows``: a mask or indices (copies), or a slice (views)."""
        return Boxes(*(getattr(self, f.name)[rows] for f in dataclasses.fields(self)))

    @property
    def width(self) -> np.ndarray:
        return self.xyxy[:, 2] - self.xyxy[:, 0]

    @property
    def height(self) -> np.ndarray:
        return self.xyxy[:, 3] - self.xyxy[:, 1]


@dataclass(frozen=True)
class BoxFilter:
    """Which flagged boxes the statistics count (docs/design.md, 'Dataset statistics').

    Crowd (COCO ``iscrowd``) and difficult (VOC) boxes are left out by default,
    as the COCO and VOC evaluations do; group-of boxes (Open Images) are kept.
    """

    include_crowd: bool = False
    include_difficult: bool = False
    include_group_of: bool = True

    def mask(self, boxes: Boxes) -> np.ndarray:
        keep = np.ones(len(boxes), bool)
        if not self.include_crowd:
            keep &= ~boxes.iscrowd
        if not self.include_difficult:
            keep &= ~boxes.difficult
        if not self.include_group_of:
            keep &= ~boxes.group_of
        return keep


@dataclass(frozen=True)
class Dataset:
    path: str
    format: str
    images: Images
    boxes: Boxes
    categories: Categories
    problems: Problems = dataclasses.field(default_factory=Problems.empty)
    load_seconds: float = 0.0
    shard: str | None = None  # "I/N" when this is one shard of the file's images

    @property
    def num_images(self) -> int:
        return len(self.images)

    def select_images(self, keep: np.ndarray) -> Dataset:
        """The dataset restricted to the images where ``keep`` ([I] bool) is True, with their boxes.

        Statistics of disjoint selections merge into those of the whole: the basis of sharding.
        """
        new_row = np.cumsum(keep) - 1  # old image row -> new image row
        boxes = self.boxes.select(keep[self.boxes.image])
        boxes = dataclasses.replace(boxes, image=new_row[boxes.image])
        return dataclasses.replace(self, images=self.images.select(keep), boxes=boxes)

    def take_shard(self, index: int, count: int) -> Dataset:
        """Shard ``index`` of ``count`` (0-based): the images whose row ``r`` has ``r % count == index``.

        A deterministic split by file order: the ``count`` shards of a file are
        disjoint and cover it, so their statistics merge into the whole run's.
        The load problems stay those of the whole file.
        """
        if not 0 <= index < count:
            raise ImbstatError(f"shard {index}/{count}: expected 0 <= I < N", self.path)
        rows = np.arange(self.num_images)
        if count <= self.num_images:
            keep = rows % count == index
        else:  # a shard per image at most: no int64 arithmetic with an N the user may type as 10**20
            keep = np.zeros(self.num_images, bool)
            keep[index : index + 1] = True  # nothing where index >= num_images
        part = self.select_images(keep)
        return dataclasses.replace(part, shard=f"{index}/{count}")

    def counted_boxes(self, box_filter: BoxFilter = BoxFilter()) -> Boxes:
        """The boxes the statistics count, as one table (a copy)."""
        return self.boxes.select(box_filter.mask(self.boxes))

    def counted_chunks(self, box_filter: BoxFilter = BoxFilter()) -> Iterator[Boxes]:
        """The boxes the statistics count, in row chunks (at least one, maybe empty).

        Statistics sum over the chunks, so their float temporaries are those of one chunk,
        not of 25M boxes; a chunk with nothing filtered out is a view, not a copy.
        """
        rows = STATS_CHUNK_ROWS
        for start in range(0, max(len(self.boxes), 1), rows):
            part = self.boxes.select(slice(start, start + rows))  # views
            keep = box_filter.mask(part)
            yield part if keep.all() else part.select(keep)

    def require_sizes(self, what: str) -> None:
        """Raise ImbstatError unless every image's pixel size is known."""
        missing = int((~self.images.size_known).sum())
        if missing:
            raise ImbstatError(
                f"{what} needs image sizes in pixels, unknown for {missing} of {self.num_images} images; "
                + self.sizes_hint(),
                self.path,
            )

    def sizes_hint(self) -> str:
        """What gives the missing image sizes, in the options this format and source accept."""
        return sizes_hint(self.format, self.path)

    def counts(self) -> dict[str, int]:
        b = self.boxes
        return {
            "images": self.num_images,
            "boxes": len(b),
            "categories": len(self.categories),
            "crowd": int(b.iscrowd.sum()),
            "difficult": int(b.difficult.sum()),
            "group_of": int(b.group_of.sum()),
            "images_without_boxes": int(self.num_images - np.unique(b.image).size),
        }

    def description(self) -> dict[str, Any]:
        """What was read, as a report's ``dataset`` block states it: path, format, counts, and every excluded
        or repaired item by reason (README, "JSON output")."""
        return {
            "path": self.path,
            "format": self.format,
            **self.counts(),
            "invalid": self.problems.counts(),
            "invalid_total": len(self.problems),
            "load_seconds": round(self.load_seconds, 4),
            **({"shard": self.shard} if self.shard else {}),
        }


def valid_image_size(width: np.ndarray, height: np.ndarray) -> np.ndarray:
    """[I] bool: both sides in ``[MIN_IMAGE_SIDE, MAX_IMAGE_SIDE]`` and ``long <= MAX_ASPECT_RATIO · short``.

    False for NaN and infinite sides; computed without floating-point warnings.
    """
    w, h = np.asarray(width, np.float64), np.asarray(height, np.float64)
    ok = (w >= MIN_IMAGE_SIDE) & (w <= MAX_IMAGE_SIDE) & (h >= MIN_IMAGE_SIDE) & (h <= MAX_IMAGE_SIDE)
    w, h = np.where(ok, w, 1.0), np.where(ok, h, 1.0)  # bounded: the product below cannot overflow
    return ok & (np.maximum(w, h) <= MAX_ASPECT_RATIO * np.minimum(w, h))


def assemble(
    path: str,
    format: str,
    images: Images,
    categories: Categories,
    boxes: Boxes,
    describe: Callable[[np.ndarray], Sequence[str]],
    problems: Sequence[Problems] = (),
    normalized: bool = False,
    describe_images: Callable[[np.ndarray], Sequence[str]] | None = None,
    bad_area: np.ndarray | None = None,
    describe_area: Callable[[np.ndarray], Sequence[str]] | None = None,
) -> Dataset:
    """Validate raw images and boxes once, for every format, and build the Dataset.

    Images whose size is known and not :func:`valid_image_size` are excluded
    here (:attr:`Reason.INVALID_IMAGE_SIZE`, located by ``describe_images(rows)``,
    default ``image <id>``), and their boxes with them (:attr:`Reason.IMAGE_EXCLUDED`).
    ``boxes.image`` / ``boxes.category`` hold -1 where the source named an
    unknown id, and ``boxes.image`` holds -2 where its image was excluded.
    ``boxes.xyxy`` may hold NaN and inverted corners; with ``normalized`` it is
    in [0, 1] image units and is scaled here by each image's size.
    The boxes' arrays must be the caller's own: they are clipped and compacted
    in place. ``describe(rows)`` returns the source location of the given raw box rows,
    called only for rows that have a problem. Each box gets the first reason
    that applies, in the order of :class:`Reason`; excluded boxes are dropped,
    boxes partly outside their image are clipped to it. ``bad_area`` ([N] bool) marks the raw rows whose
    source gave an unusable area (``boxes.area`` NaN there, so w*h stands in): each such box that is kept
    is counted as :attr:`Reason.INVALID_AREA` too, its detail ``describe_area(rows)``.
    """
    if len(images) == 0:
        raise ImbstatError("no images found; expected at least one image", path)
    parts = list(problems)
    images = _exclude_invalid_sizes(images, boxes.image, parts, describe_images)
    n = len(boxes)
    reason = np.full(n, -1, np.int8)
    code = {r: np.int8(REASONS.index(r)) for r in Reason}

    def flag(rows: np.ndarray, mask: np.ndarray, r: Reason) -> None:
        rows[mask & (rows < 0)] = code[r]

    flag(reason, boxes.image == -1, Reason.UNKNOWN_IMAGE)
    flag(reason, boxes.image == -2, Reason.IMAGE_EXCLUDED)
    flag(reason, boxes.category < 0, Reason.UNKNOWN_CATEGORY)
    # The geometry runs over row chunks so that its temporaries stay small on 25M-box inputs, and
    # the boxes' arrays (the loader's own) are clipped and compacted in place: one copy of the columns.
    raw_of_flagged = []  # source values of the rows given a reason, in row order, for the details
    # Sizes with a placeholder row last, for the flagged rows: there may be no image left at all.
    width, height = np.append(images.width, 1.0), np.append(images.height, 1.0)
    for start in range(0, n, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        r = reason[rows]  # a view: flags land in reason
        xyxy = boxes.xyxy[rows].copy()
        flag(r, ~np.isfinite(xyxy).all(axis=1), Reason.NAN_COORDINATE)
        # NaN rows (flagged above) compare False; a huge normalised coordinate times the size is inf,
        # which clips to the image like any coordinate beyond it.
        with np.errstate(invalid="ignore", over="ignore"):
            flag(r, (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1]), Reason.NON_POSITIVE_SIZE)
            ok = r < 0
            img = np.where(ok, boxes.image[rows], -1)  # flagged rows read the placeholder
            size = np.stack([width[img], height[img]], axis=1)[:, [0, 1, 0, 1]]  # [n, 4] W H W H
            if normalized:
                xyxy *= size
            inside = np.clip(xyxy, 0.0, size)
            flag(r, ok & ((inside[:, 2] <= inside[:, 0]) | (inside[:, 3] <= inside[:, 1])), Reason.OUTSIDE_IMAGE)
            flag(r, (inside != xyxy).any(axis=1), Reason.CLIPPED_TO_IMAGE)
        raw_of_flagged.append(boxes.xyxy[rows][r >= 0])
        boxes.xyxy[rows] = inside
    repaired = reason == code[Reason.CLIPPED_TO_IMAGE]

    bad = np.flatnonzero(reason >= 0)
    if bad.size:
        locations = list(describe(bad))
        raw = np.concatenate(raw_of_flagged)
        details = [f"x1={a:g} y1={b:g} x2={c:g} y2={d:g}" for a, b, c, d in raw]
        parts.append(Problems(reason[bad], np.asarray(locations, object), np.asarray(details, object)))
    keep = (reason < 0) | repaired
    if bad_area is not None and describe_area is not None:
        rows = np.flatnonzero(bad_area & keep)  # an excluded box is counted once, by why it was excluded
        if rows.size:
            parts.append(Problems.of(Reason.INVALID_AREA, list(describe(rows)), list(describe_area(rows))))
    kept = boxes if keep.all() else Boxes(*(_compact(getattr(boxes, f.name), keep) for f in dataclasses.fields(Boxes)))
    return Dataset(path, format, images, kept, categories, Problems.concat(parts))


def _exclude_invalid_sizes(
    images: Images,
    box_image: np.ndarray,
    parts: list[Problems],
    describe_images: Callable[[np.ndarray], Sequence[str]] | None,
) -> Images:
    """``images`` without those of a known, invalid size; ``box_image`` renumbered in place (-2 for theirs)."""
    sized = ~images.size_known | valid_image_size(images.width, images.height)
    if sized.all():
        return images
    bad = np.flatnonzero(~sized)
    where = describe_images or (lambda rows: [f"image {images.image_id[i]}" for i in rows])
    shown = [f"width={_shown(images.width[i])} height={_shown(images.height[i])}" for i in bad]
    parts.append(Problems.of(Reason.INVALID_IMAGE_SIZE, list(where(bad)), shown))
    # Old row -> new row, -2 for an excluded image; the two trailing entries map -2 and -1 to themselves.
    lookup = np.concatenate([np.where(sized, np.cumsum(sized) - 1, -2), [-2, -1]])
    for start in range(0, len(box_image), _CHUNK_ROWS):
        part = box_image[start : start + _CHUNK_ROWS]  # a view: renumbered in place, no full-size temporary
        part[:] = lookup[part]
    return images.select(sized)


def _shown(value: float) -> str:
    """A size for a problem's detail: NaN is how a loader records a missing size."""
    return "missing" if np.isnan(value) else f"{value:g}"


def _compact(column: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """``column[keep]`` written over ``column``'s own start, chunk by chunk: no full-size temporary."""
    end = 0
    for start in range(0, len(column), _CHUNK_ROWS):
        part = column[start : start + _CHUNK_ROWS][keep[start : start + _CHUNK_ROWS]]  # a copy, before the write
        column[end : end + len(part)] = part
        end += len(part)
    return column[:end]
