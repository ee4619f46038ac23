"""Pascal VOC XML annotations (docs/design.md, 'Data model').

One XML file per image under ``Annotations/``, optionally restricted to the ids
listed in ``ImageSets/Main/<split>.txt``. VOC corners are 1-based inclusive
pixels, so ``x1 = xmin - 1``, ``y1 = ymin - 1``, ``x2 = xmax``, ``y2 = ymax``
(width ``xmax - xmin + 1``), as the VOC devkit and mmdetection's
``XMLDataset`` read them. XML is parsed with defusedxml: a document that
declares entities (billion laughs, external entities) is refused, never
expanded.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as SafeET
import numpy as np

from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble
from imbstat.data.ids import index_of
from imbstat.data.source import list_folder, path_kind, read_input, read_text
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
    if path_kind(path) == "file":
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
        files = [Path(f) for f in list_folder(annotations) if f.endswith(".xml")]
        if not files:
            raise ImbstatError("no annotations found; expected Annotations/*.xml or a folder of .xml files", path)
        return root, files
    return root, _split_files(root, annotations, split)


def _split_files(root: Path, annotations: Path, split: str) -> list[Path]:
    """The XML files of the ids listed in ``ImageSets/Main/<split>.txt``, in listed order, each once."""
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    text = read_text(listing, "a split file listing image ids")
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
    doc = _parse_xml(read_input(xml_file, "a VOC XML file"), xml_file)
    if doc.tag != "annotation":
        raise ImbstatError(f"root element is <{doc.tag}>; expected a VOC <annotation>", xml_file)

    file_row = len(cols.image_id)
    cols.image_id.append(xml_file.stem)
    cols.file_name.append((_text(doc, "filename", xml_file) or "").strip() or xml_file.stem + ".jpg")
    # A missing size excludes the image (INVALID_IMAGE_SIZE) rather than the whole dataset.
    size = _one(doc, "size", xml_file, "size")
    for side, column in (("width", cols.width), ("height", cols.height)):
        text = None if size is None else _text(size, side, xml_file, f"size/{side}")
        column.append(_optional_number(text, xml_file, f"size/{side}"))

    for number, obj in enumerate(doc.findall("object"), 1):
        at = f"object {number}"
        name = _text(obj, "name", xml_file, f"{at}, name")
        if name is None:
            raise ImbstatError("missing element; expected the class name", xml_file, f"{at}, name")
        if not name.strip():
            raise ImbstatError("empty element; expected the class name", xml_file, f"{at}, name")
        bndbox = _one(obj, "bndbox", xml_file, f"{at}, bndbox")
        if bndbox is None:
            raise ImbstatError("missing element; expected the box corners", xml_file, f"{at}, bndbox")
        corners = []
        for corner in _CORNERS:
            text = _text(bndbox, corner, xml_file, f"{at}, bndbox/{corner}")
            if text is None:
                raise ImbstatError("missing element; expected a number", xml_file, f"{at}, bndbox/{corner}")
            corners.append(_number(text, xml_file, f"{at}, bndbox/{corner}"))
        difficult = (_text(obj, "difficult", xml_file, f"{at}, difficult") or "").strip()
        flag = _number(difficult, xml_file, f"{at}, difficult") if difficult else 0.0
        if not np.isfinite(flag):
            raise ImbstatError(f"expected 0 or 1, got {difficult!r}", xml_file, f"{at}, difficult")
        cols.box_file.append(file_row)
        cols.box_object.append(number)
        cols.name.append(name.strip())
        cols.corners.append(tuple(corners))
        cols.difficult.append(flag != 0)


_DECLARED = re.compile(rb"<\?xml\s[^>]*?encoding\s*=\s*[\"']([A-Za-z][A-Za-z0-9._:-]*)[\"']")


def _parse_xml(raw: bytes, xml_file: Path) -> ET.Element:
    """The root element of one XML file, in the encoding its BOM or declaration names.

    expat itself reads UTF-8, UTF-16 and the single-byte encodings; UTF-32 (by its BOM) and a
    multi-byte one (Shift_JIS, GBK) are decoded here by Python's codec and parsed as text.
    """
    try:
        try:
            if raw[:4] in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE):
                return SafeET.fromstring(_decode(raw, "UTF-32", xml_file))
            return SafeET.fromstring(raw)
        except defusedxml.DefusedXmlException:
            raise
        except (ValueError, LookupError):  # "multi-byte encodings are not supported", an unknown name
            return SafeET.fromstring(_decode_declared(raw, xml_file))
    except defusedxml.DefusedXmlException as e:
        raise ImbstatError(
            f"refused: XML entity declarations are not allowed ({type(e).__name__}); expected plain VOC XML",
            xml_file,
        ) from None
    except ET.ParseError as e:
        _raise_not_utf8(raw, xml_file)
        message = str(e).split(":")[0]
        line, column = e.position
        # expat counts columns from 0; editors count from 1.
        raise ImbstatError(f"malformed XML: {message}", xml_file, f"line {line}, column {column + 1}") from None


def _decode_declared(raw: bytes, xml_file: Path) -> str:
    """``raw`` decoded in the encoding its XML declaration names."""
    found = _DECLARED.match(raw.lstrip())
    name = found.group(1).decode("ascii") if found else "UTF-8"
    try:
        codecs.lookup(name)
    except LookupError:
        raise ImbstatError(
            f"unknown encoding {name!r} in the XML declaration; expected UTF-8, UTF-16 or another encoding "
            "Python knows",
            xml_file,
            "line 1",
        ) from None
    return _decode(raw, name, xml_file)


def _decode(raw: bytes, encoding: str, xml_file: Path) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise ImbstatError(
            f"not {encoding} text ({e.reason}); expected the encoding the XML declaration names",
            xml_file,
            f"byte {e.start}",
        ) from None


def _raise_not_utf8(raw: bytes, xml_file: Path) -> None:
    """For a parse error: raise naming the first byte that is not UTF-8 when the file should be UTF-8.

    A latin-1 file that declares UTF-8, or declares nothing, is otherwise "not well-formed (invalid token)".
    """
    if raw[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE) or b"\0" in raw[:4]:
        return  # UTF-16 (or UTF-32): expat's own message
    found = _DECLARED.match(raw.lstrip())
    try:
        if found and codecs.lookup(found.group(1).decode("ascii")).name != "utf-8":
            return
    except LookupError:
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImbstatError(
            f"not UTF-8 text ({e.reason}); expected the encoding the XML declaration names (UTF-8 without one)",
            xml_file,
            f"byte {e.start}",
        ) from None


def _one(parent: ET.Element, tag: str, xml_file: Path, where: str) -> ET.Element | None:
    """``parent``'s one child ``tag``, None when absent; given twice is an error: which counts is a guess."""
    found = parent.findall(tag)
    if len(found) > 1:
        raise ImbstatError(f"<{tag}> given {len(found)} times; expected one", xml_file, where)
    return found[0] if found else None


def _text(parent: ET.Element, tag: str, xml_file: Path, where: str | None = None) -> str | None:
    """The text of ``parent``'s one child ``tag`` ("" when it holds none), None when absent."""
    element = _one(parent, tag, xml_file, where or tag)
    return None if element is None else element.text or ""


def _optional_number(text: str | None, xml_file: Path, where: str) -> float:
    """The number in ``text``, NaN when the element is missing or empty."""
    return float("nan") if text is None or not text.strip() else _number(text, xml_file, where)


def _number(text: str, xml_file: Path, where: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ImbstatError(f"expected a number, got {text.strip()!r}", xml_file, where) from None
