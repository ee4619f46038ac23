"""COCO instances JSON, which LVIS v1 and Objects365 share (DESIGN.md §1).

Parsed with msgspec into typed structs that name only the fields we use: the
polygons and RLE masks that make up most of a COCO file are skipped by the
parser instead of becoming Python lists, which keeps a 0.5 GB file to about
twice its size in memory and validates every type with its JSON path.
"""

from __future__ import annotations

import json
import re
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
    first_occurrence,
    index_of,
)
from imbstat.errors import ImbstatError


class _Image(msgspec.Struct):
    id: int | str
    width: float
    height: float
    file_name: str = ""


class _Annotation(msgspec.Struct):
    image_id: int | str
    category_id: int | str
    bbox: tuple[float, float, float, float]
    iscrowd: int = 0
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


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise ImbstatError(f"cannot read file: {e.strerror}", path) from None


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


def load_coco(path: str | Path) -> Dataset:
    """Load a COCO-layout instances JSON (COCO, LVIS, Objects365) into a Dataset."""
    path = Path(path)
    doc = _decode(read_bytes(path), path)
    problems: list[Problems] = []

    img_ids = np.asarray([im.id for im in doc.images])
    widths = np.fromiter((im.width for im in doc.images), np.float64, len(doc.images))
    heights = np.fromiter((im.height for im in doc.images), np.float64, len(doc.images))
    first = first_occurrence(img_ids)
    if not first.all():
        rows = np.flatnonzero(~first)
        problems.append(Problems.of(Reason.DUPLICATE_IMAGE_ID, [f"images[{i}] (id {img_ids[i]})" for i in rows]))
    sized = (widths > 0) & (heights > 0)  # NaN compares False
    if not sized[first].all():
        rows = np.flatnonzero(first & ~sized)
        problems.append(
            Problems.of(
                Reason.INVALID_IMAGE_SIZE,
                [f"images[{i}] (id {img_ids[i]})" for i in rows],
                [f"width={widths[i]:g} height={heights[i]:g}" for i in rows],
            )
        )
    keep = first & sized
    images = Images(
        img_ids[keep],
        np.asarray([im.file_name for im in doc.images])[keep] if len(doc.images) else np.zeros(0, str),
        widths[keep],
        heights[keep],
        np.ones(int(keep.sum()), bool),
    )

    cat_ids = np.asarray([c.id for c in doc.categories])
    if not first_occurrence(cat_ids).all():
        dup = int(np.flatnonzero(~first_occurrence(cat_ids))[0])
        raise ImbstatError(
            f"category id {cat_ids[dup]} repeats an earlier category; expected unique ids",
            path,
            f"$.categories[{dup}]",
        )
    cats = doc.categories
    categories = Categories(
        cat_ids,
        np.asarray([c.name for c in cats], dtype=object),
        np.asarray([c.supercategory or "" for c in cats], dtype=object),
        np.asarray([c.frequency or "" for c in cats], dtype=object) if any(c.frequency for c in cats) else None,
    )

    anns = doc.annotations
    n = len(anns)
    xywh = np.array([a.bbox for a in anns], np.float64).reshape(n, 4)
    ann_img = np.asarray([a.image_id for a in anns])
    image = index_of(images.image_id, ann_img)
    # Boxes of an excluded (invalid-size) image are counted apart from unknown ids.
    image[(image < 0) & np.isin(ann_img, img_ids[first & ~sized])] = -2
    category = index_of(cat_ids, np.asarray([a.category_id for a in anns]))
    iscrowd = np.fromiter((a.iscrowd for a in anns), np.int64, n) != 0
    ann_ids = pd.Series([a.id for a in anns], dtype=object)
    repeated = np.flatnonzero(ann_ids.duplicated().to_numpy() & ann_ids.notna().to_numpy())
    if repeated.size:
        problems.append(
            Problems.of(Reason.DUPLICATE_ANNOTATION_ID, [f"annotations[{i}] (id {ann_ids[i]})" for i in repeated])
        )
    del doc, anns

    xyxy = xywh.copy()
    xyxy[:, 2:] += xyxy[:, :2]
    boxes = Boxes.build(image, category, xyxy, iscrowd=iscrowd)

    def describe(rows: np.ndarray) -> list[str]:
        return [f"annotations[{i}] (id {ann_ids[i]})" for i in rows]

    return assemble(str(path), "coco", images, categories, boxes, describe, problems)
