"""COCO instances JSON, which LVIS v1 and Objects365 share (DESIGN.md §1).

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

import json
import re
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path

import msgspec
import numpy as np
import pandas as pd

from imbstat.data.dataset import (
    Boxes,
    Categories,
    Dataset,
    Images,
    Problems,
    Reason,
    assemble,
    concat_columns,
    first_occurrence,
    index_of,
)
from imbstat.data.json_keys import Repeat, document_repeats, record_repeats, root_arrays
from imbstat.data.json_stream import BLOCK_BYTES, Span, top_level_arrays
from imbstat.data.source import read_input
from imbstat.errors import ImbstatError

# Above this size a file is streamed: decoding it whole holds the bytes and every struct at once.
STREAM_ABOVE = 1 << 30
EXPECTED_FILE = "a COCO instances JSON file"


class _Image(msgspec.Struct):
    id: int | str
    width: float
    height: float
    file_name: str | msgspec.UnsetType = msgspec.UNSET  # "" when absent; UNSET tells how many give it (json_keys)


class _Annotation(msgspec.Struct):
    image_id: int | str
    category_id: int | str
    bbox: tuple[float, float, float, float]
    iscrowd: int | msgspec.UnsetType = msgspec.UNSET  # 0 when absent; UNSET tells how many give it (json_keys)
    id: int | str | None = None


class _Category(msgspec.Struct):
    id: int | str
    name: str
    supercategory: str | None = None
    frequency: str | None = None  # LVIS: "r", "c" or "f"


class _File(msgspec.Struct):
    images: list[_Image]
    categories: list[_Category]
    annotations: list[_Annotation] = []


# A key given twice keeps its last value in JSON parsers, silently. The loader reads every array of a
# root key given twice, in file order (as the streamed read meets them), keeps the last value of a field
# given twice in a record, and counts each repeat as a duplicate_key problem, in both read paths.
_KINDS: dict[str, type] = {"images": _Image, "annotations": _Annotation, "categories": _Category}
_FIELDS = {key: [f.encode_name for f in msgspec.structs.fields(kind)] for key, kind in _KINDS.items()}


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
            values = list(map(attrgetter(f.name), items))
            counts.append(len(values) - values.count(f.default))
    return counts


def _decode_arrays(raw: bytes, arrays: list[tuple[str, int, int]], path: Path) -> _File:
    """The document with each root array given twice read in full: (key, "[" offset, "]" offset) in file order."""
    lists: dict[str, list] = {key: [] for key in _KINDS}
    for key, start, end in arrays:
        span = Span(key, start + 1, raw[start : end + 1], start)
        lists[key] += _decode_span(span, list[_KINDS[key]], len(lists[key]), path)
    return _File(**lists)


def _raise_as_streamed(raw: bytes, path: Path) -> None:
    """Where a root array repeats, raise the error of its element as the streamed read names it.

    The decoder counts the elements of each copy from 0; the streamed read counts on from
    the first copy. Where the document is not well-formed past the error, nothing is raised.
    """
    try:
        arrays = root_arrays(raw, _FIELDS)
    except (IndexError, ValueError):  # the scan met bytes past the error that are no JSON
        return
    if arrays is not None:
        _decode_arrays(raw, arrays, path)


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


def _decode(raw: bytes, path: Path) -> _File:
    try:
        return msgspec.json.decode(raw, type=_File)
    except msgspec.ValidationError as e:
        message, _, where = str(e).partition(" - at ")
        raise ImbstatError(message.replace("`", "'"), path, where.strip("`") or "$") from None
    except msgspec.DecodeError as e:
        if re.search(rb"\b(NaN|-?Infinity)\b", raw):
            # Python's json.dump writes NaN; accept it like json.load does.
            return _decode_lenient(raw, path)
        message = str(e)
        if "truncated" in message:
            raise ImbstatError("JSON ends early; expected the rest of the document", path, f"byte {len(raw)}") from None
        found = re.search(r"\(byte (\d+)\)", message)
        position = f"byte {found.group(1)}" if found else None
        message = re.sub(r"\s*\(byte \d+\)", "", message)
        raise ImbstatError(f"{message}; expected a COCO instances JSON document", path, position) from None


def _decode_lenient(raw: bytes, path: Path) -> _File:
    try:
        obj = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        position = f"byte {e.pos}" if isinstance(e, json.JSONDecodeError) else None
        raise ImbstatError(f"malformed JSON: {getattr(e, 'msg', e)}", path, position) from None
    try:
        return msgspec.convert(obj, type=_File)
    except msgspec.ValidationError as e:
        message, _, where = str(e).partition(" - at ")
        raise ImbstatError(message.replace("`", "'"), path, where.strip("`") or "$") from None


def _ids(values: list[int | str]) -> np.ndarray:
    """int64 ids, or str where any id is a string (as np.asarray makes them: 7 -> "7")."""
    return np.asarray(values) if values else np.zeros(0, np.int64)


def _concat_ids(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Parts of one id column made concatenable: all str if any part holds strings."""
    if any(p.dtype.kind == "U" for p in parts) and any(p.dtype.kind != "U" for p in parts):
        return [p.astype(str) for p in parts]
    return parts


@dataclass
class _ImageColumns:
    id: np.ndarray  # [I] int64 or str
    width: np.ndarray  # [I] float64
    height: np.ndarray  # [I] float64
    file_name: np.ndarray  # [I] object str

    @classmethod
    def of(cls, images: list[_Image]) -> _ImageColumns:
        n = len(images)
        return cls(
            _ids([im.id for im in images]),
            np.fromiter((im.width for im in images), np.float64, n),
            np.fromiter((im.height for im in images), np.float64, n),
            np.fromiter((im.file_name or "" for im in images), object, n),
        )

    @classmethod
    def concat(cls, parts: list[_ImageColumns]) -> _ImageColumns:
        if not parts:
            return cls.of([])
        ids = _concat_ids([p.id for p in parts])
        rows = [[i, p.width, p.height, p.file_name] for i, p in zip(ids, parts, strict=True)]
        parts.clear()
        return cls(*concat_columns(rows))


@dataclass
class _AnnotationColumns:
    image_id: np.ndarray  # [N] int64 or str
    category_id: np.ndarray  # [N]
    xywh: np.ndarray  # [N, 4] float64
    iscrowd: np.ndarray  # [N] bool
    ann_id: np.ndarray  # [N] int64, or object when ids are strings or missing

    @classmethod
    def of(cls, anns: list[_Annotation]) -> _AnnotationColumns:
        n = len(anns)
        return cls(
            _ids([a.image_id for a in anns]),
            _ids([a.category_id for a in anns]),
            np.array([a.bbox for a in anns], np.float64).reshape(n, 4),
            np.fromiter((a.iscrowd or 0 for a in anns), np.int64, n) != 0,
            np.asarray([a.id for a in anns], dtype=None if all(type(a.id) is int for a in anns) else object),
        )

    @classmethod
    def concat(cls, parts: list[_AnnotationColumns]) -> _AnnotationColumns:
        if not parts:
            return cls.of([])
        kind = object if any(p.ann_id.dtype == object for p in parts) else None
        image_ids, category_ids = _concat_ids([p.image_id for p in parts]), _concat_ids([p.category_id for p in parts])
        rows = [[i, c, p.xywh, p.iscrowd, p.ann_id.astype(kind) if kind else p.ann_id]
                for i, c, p in zip(image_ids, category_ids, parts, strict=True)]  # fmt: skip
        parts.clear()  # the column lists now hold the only references, which concat_columns drops
        return cls(*concat_columns(rows))


def _read_whole(path: Path) -> tuple[_ImageColumns, list[_Category], _AnnotationColumns, list[Repeat]]:
    raw = read_input(path, EXPECTED_FILE)
    try:
        doc = _decode(raw, path)
    except ImbstatError as e:
        if re.match(r"\$\.(images|annotations|categories)\[", e.position or ""):
            _raise_as_streamed(raw, path)
        raise
    present = {key: _present(getattr(doc, key), kind) for key, kind in _KINDS.items()}
    repeats, arrays = document_repeats(raw, _FIELDS, present)
    if arrays is not None:  # a root key given twice: the decoder kept its last array only
        doc = _decode_arrays(raw, arrays, path)
    del raw  # the columns need the structs only: the bytes go first
    return _ImageColumns.of(doc.images), doc.categories, _AnnotationColumns.of(doc.annotations), repeats


def _read_streaming(
    path: Path, block_bytes: int
) -> tuple[_ImageColumns, list[_Category], _AnnotationColumns, list[Repeat]]:
    """The three arrays decoded span by span: images and annotations become columns as they come.

    Millions of image structs alive at once cost several times their columns (and the
    allocator keeps the freed memory): columns per span keep the peak near the data.
    """
    images: list[_ImageColumns] = []
    categories: list[_Category] = []
    parts: list[_AnnotationColumns] = []
    seen: set[str] = set()
    count = {"images": 0, "categories": 0, "annotations": 0}
    kinds = {"images": list[_Image], "categories": list[_Category], "annotations": list[_Annotation]}
    repeats: list[Repeat] = []
    array: dict[str, int] = {}  # the "[" of the array of each key being read
    for span in top_level_arrays(path, set(kinds), block_bytes):
        seen.add(span.key)
        if array.setdefault(span.key, span.array) != span.array:  # a new array of a key seen before
            repeats.append(Repeat(span.key, -1, span.key, span.array))
            array[span.key] = span.array
        items = _decode_span(span, kinds[span.key], count[span.key], path)
        present = _present(items, _KINDS[span.key])
        repeats += record_repeats(span.text, _FIELDS[span.key], present, span.key, count[span.key], span.offset - 1)
        count[span.key] += len(items)
        if span.key == "annotations":
            parts.append(_AnnotationColumns.of(items))
        elif span.key == "images":
            images.append(_ImageColumns.of(items))
        else:
            categories.extend(items)
    for key in ("images", "categories"):
        if key not in seen:
            raise ImbstatError(f"Object missing required field '{key}'", path, "$")
    return _ImageColumns.concat(images), categories, _AnnotationColumns.concat(parts), repeats


def _decode_span(span: Span, kind: type, first: int, path: Path) -> list:
    try:
        return msgspec.json.decode(span.text, type=kind)
    except msgspec.ValidationError as e:
        message, _, where = str(e).partition(" - at ")
        found = re.match(r"`\$\[(\d+)\](.*)`", where)
        position = f"$.{span.key}[{first + int(found.group(1))}]{found.group(2)}" if found else f"$.{span.key}"
        raise ImbstatError(message.replace("`", "'"), path, position) from None
    except msgspec.DecodeError as e:
        if re.search(rb"\b(NaN|-?Infinity)\b", span.text):  # as json.load accepts
            return msgspec.convert(json.loads(span.text), type=kind)
        found = re.search(r"\(byte (\d+)\)", str(e))
        position = f"byte {span.offset + int(found.group(1)) - 1}" if found else None
        message = re.sub(r"\s*\(byte \d+\)", "", str(e))
        raise ImbstatError(f"{message}; expected a COCO instances JSON document", path, position) from None


def _repeated(ids: np.ndarray) -> np.ndarray:
    """Rows whose annotation id repeats an earlier one (missing ids never repeat)."""
    if ids.dtype != object:  # integers: sorting is lighter than hashing 25M of them
        order = np.argsort(ids, kind="stable")
        same = ids[order[1:]] == ids[order[:-1]]
        return np.sort(order[1:][same]) if same.any() else np.zeros(0, np.int64)
    series = pd.Series(ids, dtype=object)
    return np.flatnonzero(series.duplicated().to_numpy() & series.notna().to_numpy())


def load_coco(path: str | Path, stream: bool | None = None, block_bytes: int = BLOCK_BYTES) -> Dataset:
    """Load a COCO-layout instances JSON (COCO, LVIS, Objects365) into a Dataset.

    Files above :data:`STREAM_ABOVE` bytes (or with ``stream``) are read in
    blocks: their annotations become numpy columns span by span, so memory
    grows with the columns, not with the file.
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
        problems.append(Problems.of(Reason.DUPLICATE_IMAGE_ID, [f"images[{i}] (id {img_ids[i]})" for i in rows]))
    source_row = np.flatnonzero(first)  # assemble excludes the invalid sizes among them
    images = Images(
        img_ids[first],
        images_in.file_name[first],
        widths[first],
        heights[first],
        np.ones(len(source_row), bool),
    )

    cat_ids = np.asarray([c.id for c in cats])
    if not first_occurrence(cat_ids).all():
        dup = int(np.flatnonzero(~first_occurrence(cat_ids))[0])
        raise ImbstatError(
            f"category id {cat_ids[dup]} repeats an earlier category; expected unique ids",
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
            Problems.of(Reason.DUPLICATE_ANNOTATION_ID, [f"annotations[{i}] (id {ann_ids[i]})" for i in repeated])
        )
    xywh, iscrowd = anns.xywh, anns.iscrowd
    del anns

    with np.errstate(over="ignore"):  # x + w past float64 is inf: assemble excludes it as nan_coordinate
        xywh[:, 2:] += xywh[:, :2]  # in place: now corners
    boxes = Boxes.build(image, category, xywh, iscrowd=iscrowd)

    def describe(rows: np.ndarray) -> list[str]:
        return [f"annotations[{i}] (id {ann_ids[i]})" for i in rows]

    def describe_images(rows: np.ndarray) -> list[str]:
        return [f"images[{source_row[i]}] (id {images.image_id[i]})" for i in rows]

    return assemble(str(path), "coco", images, categories, boxes, describe, problems, describe_images=describe_images)
