"""Pascal VOC XML annotations (DESIGN.md §1).

One XML file per image under ``Annotations/``, optionally restricted to the ids
listed in ``ImageSets/Main/<split>.txt``. VOC corners are 1-based inclusive
pixels, so ``x1 = xmin - 1``, ``y1 = ymin - 1``, ``x2 = xmax``, ``y2 = ymax``
(width ``xmax - xmin + 1``), as the VOC devkit and mmdetection's
``XMLDataset`` read them. XML is parsed with defusedxml: a document that
declares entities (billion laughs, external entities) is refused, never
expanded.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble, index_of
from imbstat.errors import ImbstatError

_CORNERS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class _Columns:
    """Plain Python lists filled file by file, turned into arrays once at the end."""

    image_id: list[str] = field(default_factory=list)
    file_name: list[str] = field(default_factory=list)
    width: list[float] = field(default_factory=list)
    height: list[float] = field(default_factory=list)
    box_file: list[int] = field(default_factory=list)  # row into the per-file lists
    box_object: list[int] = field(default_factory=list)  # 1-based <object> number in its file
    name: list[str] = field(default_factory=list)
    corners: list[tuple[float, float, float, float]] = field(default_factory=list)
    difficult: list[bool] = field(default_factory=list)


def load_voc(path: str | Path, split: str | None = None) -> Dataset:
    """Load Pascal VOC XML annotations into a Dataset.

    Args:
        path: a ``VOCdevkit`` folder holding one ``VOCxxxx`` folder, a
            ``VOCxxxx`` folder (``Annotations/``, ``ImageSets/Main/``), an
            ``Annotations/`` folder or any folder of ``.xml`` files (not
            searched recursively), or one ``.xml`` file.
        split: keep only the ids listed in ``ImageSets/Main/<split>.txt``
            (one id per line; the first word of a line is the id).

    Image ids are the XML file stems, in file-name order (split-file order with
    ``split``); categories are the sorted set of ``<name>`` values, with
    ``category_id == name``. A missing ``<difficult>`` means 0. Images whose
    ``<size>`` is missing or not a :func:`~imbstat.data.dataset.valid_image_size`
    are excluded (``invalid_image_size``). Problem locations read
    ``Annotations/000005.xml (object 2)``: the file relative to the dataset
    folder and the 1-based ``<object>`` number.

    Raises:
        ImbstatError: no XML files; a missing split file or a listed id without
            its XML file (split file and line); malformed XML (file, line and
            column); entity declarations; a missing element or a non-numeric
            value (file, object number and element).
    """
    path = Path(path)
    root, files = _annotation_files(path, split)
    cols = _Columns()
    for xml_file in files:
        _parse_file(xml_file, cols)

    def where(i: int) -> str:
        f = files[i]
        return f.relative_to(root).as_posix() if f.is_relative_to(root) else f.name

    images = Images(  # NaN where <size> is missing: assemble excludes those and every invalid size
        np.asarray(cols.image_id, object),
        np.asarray(cols.file_name, object),
        np.asarray(cols.width, np.float64),
        np.asarray(cols.height, np.float64),
        np.ones(len(cols.image_id), bool),
    )

    names = np.asarray(cols.name, object)
    category_id = np.asarray(sorted(set(cols.name)), object)
    n = len(names)
    box_file = np.asarray(cols.box_file, np.int64)
    boxes = Boxes.build(
        box_file.copy(),  # the image rows: assemble renumbers them in place
        index_of(category_id, names),
        np.asarray(cols.corners, np.float64).reshape(n, 4) - np.array([1.0, 1.0, 0.0, 0.0]),
        difficult=np.asarray(cols.difficult, bool),
    )
    box_object = cols.box_object

    def describe(rows: np.ndarray) -> list[str]:
        return [f"{where(box_file[i])} (object {box_object[i]})" for i in rows]

    categories = Categories(category_id, category_id.copy())
    return assemble(
        str(path), "voc", images, categories, boxes, describe, describe_images=lambda rows: [where(i) for i in rows]
    )


def _annotation_files(path: Path, split: str | None) -> tuple[Path, list[Path]]:
    """(dataset folder, XML files to read) for any accepted form of ``path``."""
    if not path.exists():
        raise ImbstatError("no such file or directory", path)
    if path.is_file():
        if split is not None:
            raise ImbstatError(f"split {split!r} needs a VOC folder with ImageSets/Main/; got one XML file", path)
        return path.parent, [path]
    root, annotations = path, path
    if (path / "Annotations").is_dir():
        annotations = path / "Annotations"
    elif not any(path.glob("*.xml")):
        found = sorted(p.parent for p in path.glob("*/Annotations") if p.is_dir())
        if len(found) > 1:
            listed = ", ".join(p.name for p in found)
            raise ImbstatError(f"several VOC datasets ({listed}); pass one of these folders", path)
        if found:
            root, annotations = found[0], found[0] / "Annotations"
    elif path.name == "Annotations":
        root = path.parent  # so that ../ImageSets/Main is found
    if split is None:
        files = sorted(annotations.glob("*.xml"))
        if not files:
            raise ImbstatError("no annotations found; expected Annotations/*.xml or a folder of .xml files", path)
        return root, files
    return root, _split_files(root, annotations, split)


def _split_files(root: Path, annotations: Path, split: str) -> list[Path]:
    """The XML files of the ids listed in ``ImageSets/Main/<split>.txt``, in listed order, each once."""
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    try:
        text = listing.read_text()
    except OSError as e:
        raise ImbstatError(
            f"cannot read the split file ({e.strerror}); expected a list of image ids", listing
        ) from None
    files: list[Path] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0] in seen:
            continue
        seen.add(words[0])
        xml_file = annotations / f"{words[0]}.xml"
        if not xml_file.is_file():
            raise ImbstatError(
                f"image id {words[0]!r} has no annotation file; expected {xml_file}", listing, f"line {number}"
            )
        files.append(xml_file)
    if not files:
        raise ImbstatError("no annotations found; the split file lists no image ids", listing)
    return files


def _parse_file(xml_file: Path, cols: _Columns) -> None:
    """Append one annotation file's image and boxes to ``cols``."""
    try:
        raw = xml_file.read_bytes()
    except OSError as e:
        raise ImbstatError(f"cannot read file: {e.strerror}", xml_file) from None
    try:
        doc = SafeET.fromstring(raw)
    except defusedxml.DefusedXmlException as e:
        raise ImbstatError(
            f"refused: XML entity declarations are not allowed ({type(e).__name__}); expected plain VOC XML",
            xml_file,
        ) from None
    except ET.ParseError as e:
        message = str(e).split(":")[0]
        line, column = e.position
        # expat counts columns from 0; editors count from 1.
        raise ImbstatError(f"malformed XML: {message}", xml_file, f"line {line}, column {column + 1}") from None
    if doc.tag != "annotation":
        raise ImbstatError(f"root element is <{doc.tag}>; expected a VOC <annotation>", xml_file)

    file_row = len(cols.image_id)
    cols.image_id.append(xml_file.stem)
    cols.file_name.append((doc.findtext("filename") or "").strip() or xml_file.stem + ".jpg")
    # A missing size excludes the image (INVALID_IMAGE_SIZE) rather than the whole dataset.
    cols.width.append(_optional_number(doc.findtext("size/width"), xml_file, "size/width"))
    cols.height.append(_optional_number(doc.findtext("size/height"), xml_file, "size/height"))

    for number, obj in enumerate(doc.findall("object"), 1):
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise ImbstatError("missing element; expected the class name", xml_file, f"object {number}, name")
        bndbox = obj.find("bndbox")
        if bndbox is None:
            raise ImbstatError("missing element; expected the box corners", xml_file, f"object {number}, bndbox")
        corners = []
        for corner in _CORNERS:
            text = bndbox.findtext(corner)
            if text is None:
                raise ImbstatError("missing element; expected a number", xml_file, f"object {number}, bndbox/{corner}")
            corners.append(_number(text, xml_file, f"object {number}, bndbox/{corner}"))
        difficult = (obj.findtext("difficult") or "").strip()
        cols.box_file.append(file_row)
        cols.box_object.append(number)
        cols.name.append(name)
        cols.corners.append(tuple(corners))
        cols.difficult.append(bool(difficult) and _number(difficult, xml_file, f"object {number}, difficult") != 0)


def _optional_number(text: str | None, xml_file: Path, where: str) -> float:
    """The number in ``text``, NaN when the element is missing or empty."""
    return float("nan") if text is None or not text.strip() else _number(text, xml_file, where)


def _number(text: str, xml_file: Path, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImbstatError(f"expected a number, got {text.strip()!r}", xml_file, where) from None
