"""Test support: write a Dataset as COCO JSON, Pascal VOC XML, Open Images CSV or YOLO txt.

For checking every loader against one original (tests/test_formats_roundtrip.py)
and for building fixtures in the other formats:
``load(write_X(ds))`` gives back the same boxes up to float rounding (floats
are written with ``repr``, which round-trips, and VOC/YOLO add one conversion
each way). A box flag the target format cannot hold would change what the
statistics count, so such boxes are skipped and counted, never written as
plain boxes: COCO holds ``iscrowd``, VOC ``difficult``, Open Images
``group_of`` and YOLO none. Open Images cannot hold an image without boxes
(its images are the ImageIDs of the box CSV), so such images are lost there.
"""

from __future__ import annotations

import csv
import json
import struct
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from imbstat.data.dataset import Boxes, Dataset
from imbstat.errors import ImbstatError

OPENIMAGES_COLUMNS = (
    "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
).split(",")
OPENIMAGES_HEADER = ",".join(OPENIMAGES_COLUMNS)  # the first line of a box CSV


def write_coco(ds: Dataset, path: str | Path) -> int:
    """Write a COCO instances JSON at ``path``; return the number of boxes skipped.

    Skipped: difficult and group-of boxes. Annotation ids are 1..N in box order.
    """
    ds.require_sizes("writing COCO")
    boxes, skipped = _representable(ds.boxes, iscrowd=True)
    images, cats = ds.images, ds.categories
    xywh = boxes.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    doc = {
        "images": [
            {"id": i, "file_name": f, "width": _number(w), "height": _number(h)}
            for i, f, w, h in zip(
                images.image_id.tolist(),
                images.file_name.tolist(),
                images.width.tolist(),
                images.height.tolist(),
                strict=True,
            )
        ],
        "categories": [
            {"id": c, "name": n, **({"supercategory": s} if s else {}), **({"frequency": f} if f else {})}
            for c, n, s, f in zip(
                cats.category_id.tolist(),
                cats.name.tolist(),
                _column(cats.supercategory, len(cats)),
                _column(cats.frequency, len(cats)),
                strict=True,
            )
        ],
        "annotations": [
            {"id": k + 1, "image_id": i, "category_id": c, "bbox": b, "area": b[2] * b[3], "iscrowd": int(z)}
            for k, (i, c, b, z) in enumerate(
                zip(
                    images.image_id[boxes.image].tolist(),
                    cats.category_id[boxes.category].tolist(),
                    xywh.tolist(),
                    boxes.iscrowd.tolist(),
                    strict=True,
                )
            )
        ],
    }
    path = Path(path)
    path.write_text(json.dumps(doc))
    return skipped


def write_voc(ds: Dataset, folder: str | Path) -> int:
    """Write ``Annotations/<id>.xml`` and ``ImageSets/Main/all.txt`` under ``folder``; return boxes skipped.

    Corners are written as ``xmin = x1 + 1``, ``ymin = y1 + 1``, ``xmax = x2``,
    ``ymax = y2`` (the inverse of the loader's 1-based convention); whole
    numbers without a decimal point, as VOC readers that call ``int()``
    expect. Categories are written by name, so names must be unique. Skipped:
    crowd and group-of boxes.
    """
    ds.require_sizes("writing VOC")
    names = ds.categories.name
    if len(set(names.tolist())) != len(names):
        raise ImbstatError("category names repeat; VOC names classes, so they must be unique", ds.path)
    boxes, skipped = _representable(ds.boxes, difficult=True)
    folder = Path(folder)
    (folder / "Annotations").mkdir(parents=True, exist_ok=True)
    (folder / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    stems = _stems(ds)
    corners = boxes.xyxy + np.array([1.0, 1.0, 0.0, 0.0])
    for i, (start, stop) in enumerate(_runs(boxes.image, len(ds.images))):
        root = ET.Element("annotation")
        ET.SubElement(root, "folder").text = "imbstat"
        ET.SubElement(root, "filename").text = str(ds.images.file_name[i]) or f"{stems[i]}.jpg"
        size = ET.SubElement(root, "size")
        ET.SubElement(size, "width").text = _text(ds.images.width[i])
        ET.SubElement(size, "height").text = _text(ds.images.height[i])
        ET.SubElement(size, "depth").text = "3"
        for r in range(start, stop):
            obj = ET.SubElement(root, "object")
            ET.SubElement(obj, "name").text = str(names[boxes.category[r]])
            ET.SubElement(obj, "difficult").text = str(int(boxes.difficult[r]))
            bndbox = ET.SubElement(obj, "bndbox")
            for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners[r], strict=True):
                ET.SubElement(bndbox, tag).text = _text(value)
        ET.ElementTree(root).write(folder / "Annotations" / f"{stems[i]}.xml", encoding="utf-8")
    (folder / "ImageSets" / "Main" / "all.txt").write_text("".join(s + "\n" for s in stems))
    return skipped


def write_openimages(ds: Dataset, folder: str | Path) -> int:
    """Write ``boxes.csv``, ``class-descriptions.csv`` (no header) and ``sizes.csv`` under ``folder``.

    ImageID is the image id and LabelName the category id, as strings;
    coordinates are divided by the image size (images of unknown size already
    hold normalised boxes and are left out of sizes.csv). Returns the number
    of boxes skipped (crowd and difficult).
    """
    boxes, skipped = _representable(ds.boxes, group_of=True)
    images = ds.images
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    w, h = images.width[boxes.image], images.height[boxes.image]
    xyxy = boxes.xyxy / np.stack([w, h, w, h], axis=1)
    n = len(boxes)
    table = pd.DataFrame(
        {
            "ImageID": images.image_id.astype(str)[boxes.image],
            "Source": np.full(n, "imbstat"),
            "LabelName": ds.categories.category_id.astype(str)[boxes.category],
            "Confidence": np.ones(n, np.int64),
            "XMin": xyxy[:, 0],
            "XMax": xyxy[:, 2],
            "YMin": xyxy[:, 1],
            "YMax": xyxy[:, 3],
        }
        | dict.fromkeys(OPENIMAGES_COLUMNS[8:], np.zeros(n, np.int64))
        | {"IsGroupOf": boxes.group_of.astype(np.int64)},
        columns=OPENIMAGES_COLUMNS,
    )
    # pandas writes float64 with repr, so the values read back are the same floats.
    table.to_csv(folder / "boxes.csv", index=False)
    with (folder / "class-descriptions.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows(zip(ds.categories.category_id.astype(str), ds.categories.name, strict=True))
    known = images.size_known
    pd.DataFrame(
        {"ImageID": images.image_id.astype(str)[known], "Width": images.width[known], "Height": images.height[known]}
    ).to_csv(folder / "sizes.csv", index=False)
    return skipped


def write_yolo(ds: Dataset, folder: str | Path) -> int:
    """Write ``data.yaml``, ``labels/all/<id>.txt`` and ``images/all/<id>.png`` under ``folder``.

    The class index is the category's row; ``names`` maps it to the category
    name. YOLO takes image sizes from the image files, so each image is
    written as a blank PNG of its size (sizes must be whole pixels). Images
    without boxes get no label file. Returns the number of boxes skipped
    (crowd, difficult and group-of).
    """
    ds.require_sizes("writing YOLO")
    images = ds.images
    whole = (images.width == np.round(images.width)) & (images.height == np.round(images.height))
    if not whole.all():
        i = int(np.flatnonzero(~whole)[0])
        raise ImbstatError(
            f"image {images.image_id[i]} is {images.width[i]:g} x {images.height[i]:g}; "
            "YOLO reads sizes from image files, which need whole pixels",
            ds.path,
        )
    boxes, skipped = _representable(ds.boxes)
    folder = Path(folder)
    (folder / "images" / "all").mkdir(parents=True, exist_ok=True)
    (folder / "labels" / "all").mkdir(parents=True, exist_ok=True)
    names = {k: str(n) for k, n in enumerate(ds.categories.name.tolist())}
    doc = {"path": ".", "train": "images/all", "nc": len(names), "names": names}
    (folder / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))

    w, h = images.width[boxes.image], images.height[boxes.image]
    x1, y1, x2, y2 = boxes.xyxy.T
    table = np.stack([(x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h], axis=1)
    stems = _stems(ds)
    for i, (start, stop) in enumerate(_runs(boxes.image, len(images))):
        (folder / "images" / "all" / f"{stems[i]}.png").write_bytes(png(int(images.width[i]), int(images.height[i])))
        if stop > start:
            classes, rows = boxes.category[start:stop].tolist(), table[start:stop].tolist()
            lines = [f"{c} {' '.join(map(repr, row))}\n" for c, row in zip(classes, rows, strict=True)]
            (folder / "labels" / "all" / f"{stems[i]}.txt").write_text("".join(lines))
    return skipped


def _representable(
    boxes: Boxes, iscrowd: bool = False, difficult: bool = False, group_of: bool = False
) -> tuple[Boxes, int]:
    """(boxes sorted by image, number skipped): drop boxes with a flag the format cannot hold."""
    drop = np.zeros(len(boxes), bool)
    for flag, held in (("iscrowd", iscrowd), ("difficult", difficult), ("group_of", group_of)):
        if not held:
            drop |= getattr(boxes, flag)
    kept = boxes.select(~drop)
    return kept.select(np.argsort(kept.image, kind="stable")), int(drop.sum())


def _runs(image: np.ndarray, num_images: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each image's boxes in ``image`` (sorted), for every image."""
    bounds = np.searchsorted(image, np.arange(num_images + 1))
    return list(zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True))


def _stems(ds: Dataset) -> list[str]:
    """File stems from image ids: ``str(id)`` with path separators as ``_``; must be unique."""
    stems = [str(i).replace("/", "_").replace("\\", "_") for i in ds.images.image_id.tolist()]
    if len(set(stems)) != len(stems) or "" in stems:
        raise ImbstatError("image ids do not give unique file names; expected unique, non-empty ids", ds.path)
    return stems


def _column(values: np.ndarray | None, n: int) -> list:
    return [None] * n if values is None else values.tolist()


def _number(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


def _text(x: float) -> str:
    """Whole numbers without ``.0``, anything else with ``repr`` (which round-trips)."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def png(width: int, height: int) -> bytes:
    """A valid all-black 1-bit grayscale PNG of the given size (its IHDR is what size readers use)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    rows = (b"\0" * (1 + (width + 7) // 8)) * height  # filter byte 0 + packed pixels, per row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
