"""COCO instances JSON, which LVIS v1 and Objects365 share (docs/design.md, 'Data model').

Parsed with msgspec into typed structs that name only the fields we use: the
polygons and RLE masks that make up most of a COCO file are skipped by the
parser instead of becoming Python lists, which keeps a 0.5 GB file to about
twice its size in memory and validates every type with its JSON path.

A key given twice (json_keys finds them): ``images``, ``annotations`` or
``categories`` twice in the root object are all read, concatenated in file
order; a field the loader reads given twice in one record keeps its last value.
Each repeat is a ``duplicate_key`` warning naming the key and its byte offset.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass
from itertools import chain, compress
from operator import attrgetter, countOf
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from imbstat.data.coco_decode import (
    FIELDS,
    KINDS,
    AnnotationRecord,
    CategoryRecord,
    CocoFile,
    ImageRecord,
    Truncated,
    Unproven,
    decode,
    decode_arrays,
    ends_early,
    nested,
    raise_as_streamed,
    renamer,
)
from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble
from imbstat.data.ids import concat_columns, first_occurrence, id_column, index_of
from imbstat.data.json_keys import Repeat, document_repeats, record_repeats
from imbstat.data.json_stream import BLOCK_BYTES, RootArrays, Span, too_deep
from imbstat.data.problems import Problems, Reason
from imbstat.data.source import read_input
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

# Above this size a file is streamed: decoding it whole holds the bytes and every struct at once.
STREAM_ABOVE = 1 << 30
EXPECTED_FILE = "a COCO instances JSON file"


def _present(items: list, kind: type) -> list[int]:
    """How many of ``items`` hold each field of ``kind``, as json_keys needs them.

    An optional field counts where its value is not its default (UNSET; None, which a JSON
    null gives too: a count too low only costs json_keys its exact scan).
    """
    counts = []
    for f in msgspec.structs.fields(kind):
        if f.required:
            counts.append(len(items))
        else:
            counts.append(len(items) - countOf(map(attrgetter(f.name), items), f.default))  # no list built
    return counts


def _repeat_problems(repeats: list[Repeat]) -> Problems:
    """One ``duplicate_key`` problem per repeat, in file order."""
    return Problems.of(
        Reason.DUPLICATE_KEY,
        [r.array if r.index < 0 else f"{r.array}[{r.index}]" for r in repeats],
        [
            f'key "{r.key}" again at byte {r.position}; '
            + ("every array is read" if r.index < 0 else "its last value is used")
            for r in repeats
        ],
    )


def _concat_ids(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Parts of one id column made concatenable: as they are where they agree, else as objects
    (str ids next to int ones, uint64 next to int64), for :func:`_settle_ids` to type the whole."""
    if len({p.dtype for p in parts}) == 1 or all(p.dtype.kind == "U" for p in parts):
        return parts
    return [p.astype(object) for p in parts]


def _settle_ids(column: np.ndarray) -> np.ndarray:
    """An id column joined from parts, typed as :func:`id_column` types the whole (int64 where it fits)."""
    return id_column(column) if column.dtype == object else column


@dataclass
class _ImageColumns:
    id: np.ndarray  # [I] int64, uint64, str or object: see id_column
    width: np.ndarray  # [I] float64
    height: np.ndarray  # [I] float64
    file_name: np.ndarray  # [I] object str

    @classmethod
    def of(cls, images: list[ImageRecord]) -> _ImageColumns:
        n = len(images)
        return cls(
            id_column(list(map(attrgetter("id"), images))),
            np.fromiter(map(attrgetter("width"), images), np.float64, n),
            np.fromiter(map(attrgetter("height"), images), np.float64, n),
            np.fromiter((im.file_name or "" for im in images), object, n),
        )

    @classmethod
    def concat(cls, parts: list[_ImageColumns]) -> _ImageColumns:
        if not parts:
            return cls.of([])
        ids = _concat_ids([p.id for p in parts])
        rows = [[i, p.width, p.height, p.file_name] for i, p in zip(ids, parts, strict=True)]
        parts.clear()
        ids, *rest = concat_columns(rows)
        return cls(_settle_ids(ids), *rest)


@dataclass
class _AnnotationColumns:
    image_id: np.ndarray  # [N] int64, uint64, str or object: see id_column
    category_id: np.ndarray  # [N]
    xywh: np.ndarray  # [N, 4] float64
    iscrowd: np.ndarray  # [N] bool
    ann_id: np.ndarray  # [N] as id_column makes it; object where ids are missing (None)
    area: np.ndarray  # [N] float64, NaN where absent or unusable
    area_bad: np.ndarray  # [N] bool: an area given that is not a finite number >= 0
    area_shown: np.ndarray  # [B] object str: each unusable area as the JSON writes it, in row order

    @classmethod
    def of(cls, anns: list[AnnotationRecord]) -> _AnnotationColumns:
        n = len(anns)
        # attrgetter and chain run in C: no Python frame per record (1.1M of them in COCO train)
        return cls(
            id_column(list(map(attrgetter("image_id"), anns))),
            id_column(list(map(attrgetter("category_id"), anns))),
            np.fromiter(chain.from_iterable(map(attrgetter("bbox"), anns)), np.float64, 4 * n).reshape(n, 4),
            np.fromiter(map(bool, map(attrgetter("iscrowd"), anns)), bool, n),  # any int: 2**70 is crowd too; UNSET not
            id_column(list(map(attrgetter("id"), anns))),
            *_area_column(list(map(attrgetter("area"), anns))),
        )

    @classmethod
    def concat(cls, parts: list[_AnnotationColumns]) -> _AnnotationColumns:
        if not parts:
            return cls.of([])
        columns = [_concat_ids([getattr(p, name) for p in parts]) for name in ("image_id", "category_id", "ann_id")]
        rows = [[i, c, p.xywh, p.iscrowd, a, p.area, p.area_bad, p.area_shown]
                for i, c, a, p in zip(*columns, parts, strict=True)]  # fmt: skip
        parts.clear()  # the column lists now hold the only references, which concat_columns drops
        image_id, category_id, xywh, iscrowd, ann_id, *area = concat_columns(rows)
        return cls(_settle_ids(image_id), _settle_ids(category_id), xywh, iscrowd, _settle_ids(ann_id), *area)


def _area_column(values: list[Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(area, bad, shown) of :class:`_AnnotationColumns` from the records' ``area`` values (UNSET: absent).

    Usable is a JSON number, finite and >= 0, as COCOeval's size ranges need it; anything else given
    (a string, null, a bool, NaN, Infinity, a negative number) is NaN here and counted by the loader.
    """
    n = len(values)
    kinds_found = set(map(type, values))
    if kinds_found == {msgspec.UnsetType}:  # a file without areas
        return np.full(n, np.nan), np.zeros(n, bool), np.zeros(0, object)
    if kinds_found <= {float, int}:  # every area a number (nearly every file): no per-record arrays
        try:
            area = np.fromiter(values, np.float64, n)
        except OverflowError:  # an integer beyond float64: the general path below says so
            pass
        else:
            with np.errstate(invalid="ignore"):
                bad = ~(np.isfinite(area) & (area >= 0))
            if not bad.any():
                return area, bad, np.zeros(0, object)
    kinds = np.fromiter(map(type, values), object, n)  # in C: no Python frame per record
    number = np.equal(kinds, float) | np.equal(kinds, int)  # exact types: a bool is no area
    area = np.full(n, np.nan)
    if number.any():
        try:
            area[number] = np.fromiter(compress(values, number), np.float64)
        except OverflowError:  # an integer beyond float64: as unusable as Infinity
            area[number] = [_float_or_inf(v) for v in compress(values, number)]
    with np.errstate(invalid="ignore"):
        usable = number & np.isfinite(area) & (area >= 0)
    area[~usable] = np.nan
    bad = ~usable & np.not_equal(kinds, msgspec.UnsetType)
    return area, bad, np.asarray([_json_text(values[i]) for i in np.flatnonzero(bad)], object).reshape(-1)


def _float_or_inf(value: float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _json_text(value: Any, limit: int = 40) -> str:
    """A decoded JSON value as JSON writes it (NaN, Infinity as Python's json does), cut at ``limit`` characters."""
    try:
        text = json.dumps(value)
    except ValueError:  # an integer over Python's digit limit for str()
        text = "an integer of over 4300 digits"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_whole(path: Path) -> tuple[_ImageColumns, list[CategoryRecord], _AnnotationColumns, list[Repeat]]:
    raw = read_input(path, EXPECTED_FILE)
    try:
        doc = decode(raw, CocoFile, path, shallow=True)  # a valid, shallow document (nearly all): no depth scan
    except Unproven:
        doc = _decode_checked(raw, path)
    present = {key: _present(getattr(doc, key), kind) for key, kind in KINDS.items()}
    repeats, arrays = document_repeats(raw, FIELDS, present)
    if arrays is not None:  # a root key given twice: the decoder kept its last array only
        doc = decode_arrays(raw, arrays, path)
    del raw  # the columns need the structs only: the bytes go first
    return _ImageColumns.of(doc.images), doc.categories, _AnnotationColumns.of(doc.annotations), repeats


def _decode_checked(raw: bytes, path: Path) -> CocoFile:
    """The document, or the error the streamed read gives too: a too-deep bracket, or the first error before it."""
    deep = too_deep(raw)
    if deep is None:
        try:
            return decode(raw, CocoFile, path)
        except Truncated:
            raise ends_early(path, len(raw)) from None
        except ImbstatError as e:
            if re.match(r"\$\.(images|annotations|categories)\[", e.position or ""):
                raise_as_streamed(raw, path)
            raise
    with contextlib.suppress(Truncated):
        decode(raw[:deep], CocoFile, path, before=deep)  # an error before the deep bracket comes first
    raise nested(path, deep)


def _read_streaming(
    path: Path, block_bytes: int
) -> tuple[_ImageColumns, list[CategoryRecord], _AnnotationColumns, list[Repeat]]:
    """The three arrays decoded span by span: images and annotations become columns as they come.

    Millions of image structs alive at once cost several times their columns (and the
    allocator keeps the freed memory): columns per span keep the peak near the data.
    The rest of the document (its skeleton) is decoded at the end, or when a span is found
    wrong (a wrong value before that span is the first error, as the whole-file decode says).
    """
    images: list[_ImageColumns] = []
    categories: list[CategoryRecord] = []
    parts: list[_AnnotationColumns] = []
    count = {"images": 0, "categories": 0, "annotations": 0}
    kinds = {"images": list[ImageRecord], "categories": list[CategoryRecord], "annotations": list[AnnotationRecord]}
    repeats: list[Repeat] = []
    array: dict[str, int] = {}  # the "[" of the array of each key being read
    stream = RootArrays(path, set(kinds), block_bytes)

    first_of: dict[int, int] = {}  # the elements of its key before each array ("[" offset), as met
    last: list[Span] = []  # the span met last: inside an array, the skeleton holds that array's first bytes

    def in_document(where: str) -> str:
        """A JSON path in the skeleton as the document names it: the elements of the array read
        when the skeleton was taken count on from its key's earlier arrays."""
        found = re.match(r"\$\.(\w+)\[(\d+)\](.*)", where)
        if not last or found is None or found.group(1) != last[0].key:
            return where
        return f"$.{last[0].key}[{first_of[last[0].array] + int(found.group(2))}]{found.group(3)}"

    def skeleton() -> CocoFile:
        return decode(stream.skeleton(), CocoFile, path, stream.file_offset, in_document, before=stream.too_deep)

    for span in stream:
        last[:] = [span]
        if span.key in count:
            first_of.setdefault(span.array, count[span.key])
        first = count[span.key] if span.typed else 0
        try:
            kind = kinds[span.key] if span.typed else msgspec.Raw
            rename = renamer(span.key, first)
            items = decode(span.text, kind, path, span.base.__add__, rename, before=stream.too_deep)
        except Truncated:
            if span.open:
                continue  # the reading ended inside this array: the skeleton says the rest
            with contextlib.suppress(Truncated):
                skeleton()
            raise ends_early(path, path.stat().st_size) from None  # as msgspec ends a whole read at "\ud800x"
        except ImbstatError:
            with contextlib.suppress(Truncated):
                skeleton()  # raises the error before this array, if there is one
            raise
        if not span.typed:
            continue
        if array.setdefault(span.key, span.array) != span.array:  # a new array of a key seen before
            repeats.append(Repeat(span.key, -1, span.key, span.array))
            array[span.key] = span.array
        present = _present(items, KINDS[span.key])
        repeats += record_repeats(span.text, FIELDS[span.key], present, span.key, first, span.base)
        count[span.key] += len(items)
        if span.key == "annotations":
            parts.append(_AnnotationColumns.of(items))
        elif span.key == "images":
            images.append(_ImageColumns.of(items))
        else:
            categories.extend(items)
    try:
        skeleton()
    except Truncated:
        raise (ends_early(path, stream.end) if stream.too_deep is None else nested(path, stream.too_deep)) from None
    if stream.too_deep is not None:  # not reached: the reading stops inside the root object
        raise nested(path, stream.too_deep)
    repeats.sort(key=attrgetter("position"))  # in file order, as the whole-file read lists them
    return _ImageColumns.concat(images), categories, _AnnotationColumns.concat(parts), repeats


def _repeated(ids: np.ndarray) -> np.ndarray:
    """Rows whose annotation id repeats an earlier one (missing ids never repeat)."""
    if ids.dtype != object:  # integers: sorting is lighter than hashing 25M of them
        order = np.argsort(ids, kind="stable")
        same = ids[order[1:]] == ids[order[:-1]]
        return np.sort(order[1:][same]) if same.any() else np.zeros(0, np.int64)
    series = pd.Series(ids, dtype=object)
    return np.flatnonzero(series.duplicated().to_numpy() & series.notna().to_numpy())


def _id_text(value: object) -> str:
    """An id as the JSON has it: a string id quoted, so that "1" and 1 read apart."""
    return json.dumps(value) if isinstance(value, str) else str(value)


def load_coco(path: str | Path, stream: bool | None = None, block_bytes: int = BLOCK_BYTES) -> Dataset:
    """Load a COCO-layout instances JSON (COCO, LVIS, Objects365) into a Dataset.

    Ids (of images, categories, annotations) are JSON integers or strings, kept exactly and
    matched by value *and* type, as pycocotools' dicts match them: an annotation's
    ``"image_id": 1`` names the image ``"id": 1``, not ``"id": "1"``. So one id written as a
    string among integers leaves every other box in place, and only the boxes that name an
    id no record has are counted as ``unknown_image`` / ``unknown_category``. Integers
    beyond 2**53 (and beyond int64) stay exact: ``Images.image_id`` is int64 where every id
    fits, else uint64, else object; str when all are strings; object when both kinds occur.

    Files above :data:`STREAM_ABOVE` bytes (or with ``stream``) are read in
    blocks: their annotations become numpy columns span by span, so memory
    grows with the columns, not with the file. Both reads accept and refuse the same
    documents, and name the same position. JSON nested deeper than
    :data:`~imbstat.data.json_stream.MAX_DEPTH` levels is refused at its first too-deep bracket.
    """
    path = Path(path)
    if stream is None:
        stream = path.is_file() and path.stat().st_size > STREAM_ABOVE
    images_in, cats, anns, repeats = _read_streaming(path, block_bytes) if stream else _read_whole(path)
    problems: list[Problems] = [_repeat_problems(repeats)] if repeats else []

    img_ids, widths, heights = images_in.id, images_in.width, images_in.height
    first = first_occurrence(img_ids)
    if not first.all():
        rows = np.flatnonzero(~first)
        problems.append(
            Problems.of(Reason.DUPLICATE_IMAGE_ID, [f"images[{i}] (id {_id_text(img_ids[i])})" for i in rows])
        )
    source_row = np.flatnonzero(first)  # assemble excludes the invalid sizes among them
    images = Images(
        img_ids[first],
        images_in.file_name[first],
        widths[first],
        heights[first],
        np.ones(len(source_row), bool),
    )

    cat_ids = id_column([c.id for c in cats])
    if not first_occurrence(cat_ids).all():
        dup = int(np.flatnonzero(~first_occurrence(cat_ids))[0])
        raise ImbstatError(
            f"category id {_id_text(cat_ids[dup])} repeats an earlier category; expected unique ids",
            path,
            f"$.categories[{dup}]",
        )
    categories = Categories(
        cat_ids,
        np.asarray([c.name for c in cats], dtype=object),
        np.asarray([c.supercategory or "" for c in cats], dtype=object),
        np.asarray([c.frequency or "" for c in cats], dtype=object) if any(c.frequency for c in cats) else None,
    )

    del images_in
    image = index_of(images.image_id, anns.image_id)
    category = index_of(cat_ids, anns.category_id)
    ann_ids = anns.ann_id
    repeated = _repeated(ann_ids)
    if repeated.size:
        problems.append(
            Problems.of(
                Reason.DUPLICATE_ANNOTATION_ID, [f"annotations[{i}] (id {_id_text(ann_ids[i])})" for i in repeated]
            )
        )
    xywh, iscrowd, area, area_bad, area_shown = anns.xywh, anns.iscrowd, anns.area, anns.area_bad, anns.area_shown
    del anns

    with np.errstate(over="ignore"):  # x + w past float64 is inf: assemble excludes it as nan_coordinate
        xywh[:, 2:] += xywh[:, :2]  # in place: now corners
    boxes = Boxes.build(image, category, xywh, iscrowd=iscrowd, area=area)

    def describe(rows: np.ndarray) -> list[str]:
        return [f"annotations[{i}] (id {_id_text(ann_ids[i])})" for i in rows]

    def describe_images(rows: np.ndarray) -> list[str]:
        return [f"images[{source_row[i]}] (id {_id_text(images.image_id[i])})" for i in rows]

    def describe_area(rows: np.ndarray) -> list[str]:
        rank = np.searchsorted(np.flatnonzero(area_bad), rows)  # the rows' places among the unusable areas
        return [f"area={area_shown[k]}" for k in rank]

    return assemble(str(path), "coco", images, categories, boxes, describe, problems,
                    describe_images=describe_images, bad_area=area_bad, describe_area=describe_area)  # fmt: skip
