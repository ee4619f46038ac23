"""A corpus of hostile and degenerate inputs (issue 10), written into a folder at test time.

Each :class:`Case` writes a few small files (COCO JSON, a VOC folder, an Open
Images CSV with its --sizes and --classes files, a YOLO data YAML with labels
and header-only PNG images), gives the CLI arguments that read them, and says
what every command must do with them:

- :class:`Error`: exit 2 and one stderr line ``imbstat: error: PATH (POSITION): MESSAGE``
  naming the offending file (and the position where one makes sense);
- :class:`Counted`: exit 0 (1 for ``validate`` when an error-severity problem
  was found), with every excluded or repaired item in ``dataset.invalid`` by
  reason, and ``dataset.boxes`` the boxes the file holds less the excluded ones.

Where the issue allows two outcomes ("refuse it, or handle it"), ``expect`` is
a tuple of the alternatives. ``xfail`` names the helper who fixes the case
("owner: defect") while the fix has not merged; tests/test_hostile.py turns it
into a strict xfail mark, so that the mark must go once the case passes.

Run as a script to write the corpus for a look by hand::

    python tests/hostile_corpus.py /tmp/hostile
"""

from __future__ import annotations

import json
import os
import re
import struct
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from format_writers import OPENIMAGES_HEADER

# Boxes excluded under these reasons leave the dataset; the other reasons keep (warning) or
# name an image, not a box (an excluded image's boxes are counted as image_excluded).
BOX_EXCLUDED = frozenset(
    ["unknown_image", "unknown_category", "nan_coordinate", "non_positive_size", "outside_image", "image_excluded"]
)
ERROR_REASONS = BOX_EXCLUDED | {"duplicate_image_id", "invalid_image_size"}


@dataclass(frozen=True)
class Error:
    """Exit 2 with one line naming ``file`` (relative to the case folder; "" = the folder itself)."""

    file: str
    position: str | None = None  # a regex the position must match whole; None: a position is not required
    contains: tuple[str, ...] = ("expected",)  # in the message, case-insensitive
    forbid: tuple[str, ...] = ()  # never in the message (a misleading hint), case-insensitive


@dataclass(frozen=True)
class Counted:
    """Exit 0 (validate: 1 with an error problem); every dropped or repaired item counted by reason."""

    held: int  # boxes the file holds
    invalid: dict[str, int] = field(default_factory=dict)  # dataset.invalid, exactly
    images: int | None = None  # dataset.images, when the case is about images
    boxes: int | None = None  # dataset.boxes when not held less the excluded boxes (a shard)
    categories: int | None = None  # dataset.categories, when the case is about classes
    shown: tuple[str, ...] = ()  # text the class-dist table shows whole
    locations: tuple[str, ...] = ()  # text in validate's list of problems

    @property
    def expected_boxes(self) -> int:
        if self.boxes is not None:
            return self.boxes
        return self.held - sum(n for reason, n in self.invalid.items() if reason in BOX_EXCLUDED)

    @property
    def has_errors(self) -> bool:
        return any(reason in ERROR_REASONS for reason in self.invalid)


Expectation = Error | Counted


@dataclass(frozen=True)
class Case:
    name: str
    format: str  # coco, voc, openimages, yolo
    defect: str  # the class of the issue it belongs to
    build: Callable[[Path], list[str]]  # writes the files under a folder; returns the CLI arguments
    expect: Expectation | tuple[Expectation, ...]  # a tuple: any one of these alternatives
    anchor: Expectation | None = None  # anchor-iou's own outcome where it differs from the others'
    xfail: str | None = None  # "owner: defect" while the fix is not merged (owner: a helper's name)

    @property
    def alternatives(self) -> tuple[Expectation, ...]:
        return self.expect if isinstance(self.expect, tuple) else (self.expect,)


# ---------------------------------------------------------------- writers


def png(path: Path, width: int, height: int) -> Path:
    """A PNG signature and IHDR chunk: all that an image-header reader needs for the size.

    No pixels (format_writers.png compresses real rows), so that a header may claim 2^31 columns.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + header + struct.pack(">I", zlib.crc32(b"IHDR" + header))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return write(path, b"\x89PNG\r\n\x1a\n" + chunk + end)


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def symlink(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


# COCO: image 1 (100×80) holds a cat and a dog, image 2 (120×90) a cat: 3 boxes.
def coco_doc(names: tuple[str, ...] = ("cat", "dog")) -> dict:
    return {
        "images": [
            {"id": 1, "width": 100, "height": 80, "file_name": "1.jpg"},
            {"id": 2, "width": 120, "height": 90, "file_name": "2.jpg"},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [30, 30, 20, 20], "iscrowd": 0},
            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 50, 40], "iscrowd": 0},
        ],
        "categories": [{"id": k, "name": name} for k, name in enumerate(names, 1)],
    }


def coco(doc: dict | str | bytes, name: str = "instances.json") -> Callable[[Path], list[str]]:
    def build(folder: Path) -> list[str]:
        text = doc if isinstance(doc, str | bytes) else json.dumps(doc)
        return [str(write(folder / name, text))]

    return build


def coco_with(edit: Callable[[dict], object]) -> Callable[[Path], list[str]]:
    """The base COCO document, changed in place by ``edit``."""
    doc = coco_doc()
    edit(doc)
    return coco(doc)


# VOC: a.xml (100×80) holds a cat and a dog, b.xml (120×90) a cat: 3 boxes.
def voc_xml(width: str | None, height: str | None, objects: tuple, extra: str = "") -> str:
    """One annotation file; a width of None leaves out <size>. Values are text: the hostile ones too."""
    size = "" if width is None else f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"
    body = "".join(
        f"<object><name>{name}</name><difficult>0</difficult>"
        f"<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>"
        for name, x1, y1, x2, y2 in objects
    )
    return f"<annotation><filename>x.jpg</filename>{size}{body}{extra}</annotation>"


VOC_A = voc_xml("100", "80", (("cat", 11, 11, 30, 30), ("dog", 31, 31, 50, 50)))
VOC_B = voc_xml("120", "90", (("cat", 6, 6, 55, 45),))


def voc(files: dict[str, str | bytes | None] | None = None, root: str = "voc") -> Callable[[Path], list[str]]:
    """A VOC folder with Annotations/a.xml and b.xml; ``files`` replaces (a None value: leaves out) or adds."""

    def build(folder: Path) -> list[str]:
        given = {"a.xml": VOC_A, "b.xml": VOC_B} | (files or {})
        for name, text in given.items():
            if text is not None:
                write(folder / root / "Annotations" / name, text)
        return [str(folder / root)]

    return build


# Open Images: image a (100×80) holds a cat and a dog, image b (120×90) a cat: 3 boxes.
OI_ROWS = (
    "a,xclick,/m/cat,1,0.1,0.3,0.125,0.375,0,0,0,0,0",
    "a,xclick,/m/dog,1,0.3,0.5,0.375,0.625,0,0,0,0,0",
    "b,xclick,/m/cat,1,0.05,0.5,0.05,0.5,0,0,0,0,0",
)
OI_SIZES = "ImageID,Width,Height\na,100,80\nb,120,90\n"
OI_CLASSES = "/m/cat,cat\n/m/dog,dog\n"


def openimages(
    rows: tuple[str, ...] = OI_ROWS,
    sizes: str | None = OI_SIZES,
    classes: str | None = OI_CLASSES,
    folder_name: str = "oi",
    special: Callable[[Path], object] | None = None,
) -> Callable[[Path], list[str]]:
    """boxes.csv with --sizes sizes.csv and --classes classes.csv; ``special`` then makes odd files."""

    def build(folder: Path) -> list[str]:
        base = folder / folder_name
        args = [str(write(base / "boxes.csv", "\n".join([OPENIMAGES_HEADER, *rows]) + "\n"))]
        if sizes is not None:
            args += ["--sizes", str(write(base / "sizes.csv", sizes))]
        if classes is not None:
            args += ["--classes", str(write(base / "classes.csv", classes))]
        if special is not None:
            special(base)
        return args

    return build


# YOLO: images/train/a.png (100×80) with a cat and a dog, b.png (120×90) with a cat: 3 boxes.
YOLO_YAML = "path: .\ntrain: images/train\nnames: [cat, dog]\n"
YOLO_A = "0 0.2 0.25 0.2 0.25\n1 0.4 0.5 0.2 0.25\n"
YOLO_B = "0 0.25 0.2777777777777778 0.4166666666666667 0.4444444444444444\n"


def yolo(
    data_yaml: str | bytes | None = YOLO_YAML,
    labels: dict[str, str | bytes | None] | None = None,
    images: dict[str, tuple[int, int] | None] | None = None,
    folder_name: str = "yolo",
    special: Callable[[Path], object] | None = None,
) -> Callable[[Path], list[str]]:
    """A YOLO dataset; ``labels`` and ``images`` replace (None: leave out) or add files; no YAML: the folder."""

    def build(folder: Path) -> list[str]:
        base = folder / folder_name
        for stem, text in ({"a": YOLO_A, "b": YOLO_B} | (labels or {})).items():
            if text is not None:
                write(base / "labels" / "train" / f"{stem}.txt", text)
        for stem, size in ({"a": (100, 80), "b": (120, 90)} | (images or {})).items():
            if size is not None:
                png(base / "images" / "train" / f"{stem}.png", *size)
        if special is not None:
            special(base)
        if data_yaml is None:
            return [str(base)]
        return [str(write(base / "data.yaml", data_yaml))]

    return build


def nested(depth: int, closed: bool = True) -> str:
    return "[" * depth + ("]" * depth if closed else "")


def alias_bomb(levels: int = 12, width: int = 9) -> str:
    """A YAML alias bomb: each level lists the previous one ``width`` times (``width ** levels`` leaves)."""
    lines = [f"l0: &l0 [{', '.join(['lol'] * width)}]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [{', '.join([f'*l{k - 1}'] * width)}]")
    return "\n".join(lines) + f"\npath: .\ntrain: images/train\nnames: *l{levels - 1}\n"


def utf16_voc() -> bytes:
    return ('<?xml version="1.0" encoding="UTF-16"?>\n' + VOC_B).encode("utf-16")


# ---------------------------------------------------------------- the corpus

MARKUP_NAMES = ("[/]", "[bold]x", "traffic [light]", "\x1b[31mred")  # rich markup, an unclosed tag, ANSI
SHOWN = ("traffic [light]", "[bold]x", "[/]")
MARKUP_FOLDER = "data [/] [bold]x"  # a path that is rich markup too


def _markup_cases() -> list[Case]:
    four = coco_doc(MARKUP_NAMES)  # two classes with boxes, two without
    yaml_names = '["[/]", "[bold]x", "traffic [light]", "\\e[31mred"]'
    # ANSI escapes are not XML characters: VOC names carry brackets only
    voc_a = voc_xml("100", "80", (("[/]", 11, 11, 30, 30), ("traffic [light]", 31, 31, 50, 50)))
    voc_b = voc_xml("120", "90", (("[bold]x", 6, 6, 55, 45),))
    counted = Counted(3, {}, shown=SHOWN[:1])
    return [
        Case("coco-markup-names", "coco", "markup", coco(four), Counted(3, {}, shown=SHOWN),
             xfail="markup: rich MarkupError on a class name"),
        Case("voc-markup-names", "voc", "markup", voc({"a.xml": voc_a, "b.xml": voc_b}), Counted(3, {}, shown=SHOWN),
             xfail="markup: rich MarkupError on a class name"),
        Case("openimages-markup-names", "openimages", "markup",
             openimages(classes="/m/cat,[/]\n/m/dog,traffic [light]\n/m/x,[bold]x\n/m/y,\x1b[31mred\n"),
             Counted(3, {}, shown=SHOWN), xfail="markup: rich MarkupError on a class name"),
        Case("openimages-markup-labelnames", "openimages", "markup",
             openimages(rows=tuple(r.replace("/m/cat", "traffic [light]") for r in OI_ROWS), classes=None),
             counted, xfail="markup: a LabelName in brackets shown as markup"),
        Case("yolo-markup-names", "yolo", "markup", yolo(YOLO_YAML.replace("[cat, dog]", yaml_names)),
             Counted(3, {}, shown=SHOWN), xfail="markup: rich MarkupError on a class name"),
        Case("coco-markup-path", "coco", "markup", coco(coco_doc(), f"{MARKUP_FOLDER}/instances.json"), Counted(3, {}),
             xfail="markup: rich MarkupError on the path"),
        Case("voc-markup-path", "voc", "markup", voc(root=MARKUP_FOLDER), Counted(3, {}),
             xfail="markup: rich MarkupError on the path"),
        Case("openimages-markup-path", "openimages", "markup", openimages(folder_name=MARKUP_FOLDER), Counted(3, {}),
             xfail="markup: rich MarkupError on the path"),
        Case("yolo-markup-path", "yolo", "markup", yolo(folder_name=MARKUP_FOLDER), Counted(3, {}),
             xfail="markup: rich MarkupError on the path"),
    ]  # fmt: skip


def _nesting_cases() -> list[Case]:
    rest = json.dumps(coco_doc())[1:]  # the base document's keys, after the nested one
    deep_yaml = YOLO_YAML.replace("[cat, dog]", nested(1_000))  # the scanner is quadratic in depth
    deep_xml = voc_xml("120", "90", (("cat", 6, 6, 55, 45),), extra="<x>" * 10_000 + "</x>" * 10_000)
    return [
        Case("coco-nested-10k", "coco", "nesting", coco('{"info": ' + nested(10_000) + ", " + rest),
             Error("instances.json", r"byte \d+"), xfail="json: RecursionError on deep nesting"),
        Case("coco-nested-1m", "coco", "nesting", coco('{"info": ' + nested(1_000_000) + ", " + rest),
             Error("instances.json", r"byte \d+"), xfail="json: RecursionError on deep nesting"),
        Case("coco-nested-unclosed", "coco", "nesting", coco('{"images": [], "info": ' + nested(100_000, False)),
             Error("instances.json", r"byte \d+"), xfail="json: RecursionError on deep nesting"),
        Case("yolo-nested-yaml", "yolo", "nesting", yolo(deep_yaml), Error("yolo/data.yaml"),
             xfail="formats: RecursionError on a deeply nested data YAML"),
        Case("voc-nested-xml", "voc", "nesting", voc({"b.xml": deep_xml}), Counted(3, {})),
    ]  # fmt: skip


def _size_cases() -> list[Case]:
    """Image 2 with a width the resize cannot represent: refused at load, or handled all the way."""

    def image2(width: object) -> Callable[[Path], list[str]]:
        text = json.dumps(coco_doc()).replace('"width": 120', f'"width": {width}')
        return coco(text)

    owner = "sizes: an image size the resize cannot represent reaches the anchor path"
    refused = Counted(3, {"invalid_image_size": 1, "image_excluded": 1})  # image 2 and its one box
    kept = Counted(3, {})
    # in pixels (COCO, VOC) its box [5, 55] lies beyond a width of 1e-300; normalised, the box shrinks with it
    tiny_pixels = (refused, Counted(3, {"outside_image": 1}))
    cases = []
    for label, value, pixels, normalised in (("inf", "Infinity", refused, refused),
                                             ("1e300", "1e300", (refused, kept), (refused, kept)),
                                             ("1e-300", "1e-300", tiny_pixels, (refused, kept))):  # fmt: skip
        cases += [
            Case(f"coco-width-{label}", "coco", "sizes", image2(value), pixels, xfail=owner),
            Case(f"voc-width-{label}", "voc", "sizes", voc({"b.xml": voc_xml(value, "90", (("cat", 6, 6, 55, 45),))}),
                 pixels, xfail=owner),
            Case(f"openimages-width-{label}", "openimages", "sizes",
                 openimages(sizes=OI_SIZES.replace("b,120", f"b,{value}")), normalised, xfail=owner),
        ]  # fmt: skip
    # YOLO sizes come from image headers: a PNG may claim 2^31 - 1 pixels across and 1 down
    cases.append(Case("yolo-png-2e31-wide", "yolo", "sizes", yolo(images={"b": (2**31 - 1, 1)}), (refused, kept),
                      xfail=owner))  # fmt: skip
    return cases


def _shard_cases() -> list[Case]:
    empty = Counted(3, {}, images=0, boxes=0)
    owner = "sizes: IndexError in the anchor engine on an empty selection"
    return [
        Case("coco-empty-shard", "coco", "shard", _with(coco(coco_doc()), "--shard", "90/100"), empty, xfail=owner),
        Case("voc-empty-shard", "voc", "shard", _with(voc(), "--shard", "90/100"), empty, xfail=owner),
        Case("openimages-empty-shard", "openimages", "shard", _with(openimages(), "--shard", "90/100"), empty,
             xfail=owner),
        Case("yolo-empty-shard", "yolo", "shard", _with(yolo(), "--shard", "90/100"), empty, xfail=owner),
    ]  # fmt: skip


def _with(build: Callable[[Path], list[str]], *options: str) -> Callable[[Path], list[str]]:
    return lambda folder: [*build(folder), *options]


def _class_index_cases() -> list[Case]:
    # a labels folder without a YAML: names are the indices, up to the largest one seen
    huge = yolo(None, labels={"a": "10000000 0.5 0.5 0.2 0.2\n", "b": None}, images={"b": None})
    one_class = Counted(1, {}, categories=1)
    return [
        Case("yolo-huge-class-index", "yolo", "class-index", huge, (Error("yolo/labels/train/a.txt", "line 1"),
             one_class), xfail="formats: per-class arrays up to a huge YOLO class index"),
        Case("yolo-class-1e30", "yolo", "class-index", yolo(labels={"b": "1e30 0.5 0.5 0.2 0.2\n"}),
             (Error("yolo/labels/train/b.txt", "line 1"), Counted(3, {"unknown_category": 1})),
             xfail="formats: RuntimeWarning (invalid value in cast) on a class index beyond int64"),
        Case("yolo-class-beyond-names", "yolo", "class-index", yolo(labels={"b": "7 0.5 0.5 0.2 0.2\n"}),
             Counted(3, {"unknown_category": 1})),
    ]  # fmt: skip


def _yaml_cases() -> list[Case]:
    return [
        Case("yolo-yaml-alias-bomb", "yolo", "alias-bomb", yolo(alias_bomb()), Error("yolo/data.yaml"),
             xfail="formats: a YAML alias bomb expands without bound"),
    ]  # fmt: skip


def _fifo_cases() -> list[Case]:
    owner = "lead: a FIFO blocks forever"

    def fifo_in(build: Callable[[Path], list[str]], name: str) -> Callable[[Path], list[str]]:
        def make(folder: Path) -> list[str]:
            args = build(folder)
            target = folder / name
            if target.exists() or target.is_symlink():
                target.unlink()
            fifo(target)
            return args

        return make

    # not taken for a folder, which would say "no annotations found; expected a VOC folder ... or a YOLO folder"
    def refused(file: str) -> Error:
        return Error(file, forbid=("no annotations found", "VOC folder", "YOLO folder"))

    return [
        Case("coco-fifo-annotations", "coco", "fifo", fifo_in(lambda f: [str(f / "instances.json")], "instances.json"),
             refused("instances.json"), xfail=owner),
        Case("voc-fifo-xml-in-folder", "voc", "fifo", fifo_in(voc(), "voc/Annotations/c.xml"),
             refused("voc/Annotations/c.xml"), xfail=owner),
        Case("voc-fifo-xml-given", "voc", "fifo", fifo_in(lambda f: [str(f / "a.xml")], "a.xml"), refused("a.xml"),
             xfail=owner),
        Case("openimages-fifo-boxes", "openimages", "fifo", fifo_in(openimages(), "oi/boxes.csv"),
             refused("oi/boxes.csv"), xfail=owner),
        Case("openimages-fifo-sizes", "openimages", "fifo", fifo_in(openimages(), "oi/sizes.csv"),
             refused("oi/sizes.csv"), xfail=owner),
        Case("openimages-fifo-classes", "openimages", "fifo", fifo_in(openimages(), "oi/classes.csv"),
             refused("oi/classes.csv"), xfail=owner),
        Case("openimages-fifo-image", "openimages", "fifo",
             fifo_in(_then(openimages(sizes=None), lambda f: None, "--images", "oi/images"), "oi/images/a.jpg"),
             refused("oi/images/a.jpg"), xfail=owner),
        Case("yolo-fifo-yaml", "yolo", "fifo", fifo_in(yolo(), "yolo/data.yaml"), refused("yolo/data.yaml"),
             xfail=owner),
        Case("yolo-fifo-label", "yolo", "fifo", fifo_in(yolo(), "yolo/labels/train/a.txt"),
             refused("yolo/labels/train/a.txt"), xfail=owner),
        Case("yolo-fifo-image", "yolo", "fifo", fifo_in(yolo(), "yolo/images/train/a.png"),
             refused("yolo/images/train/a.png"), xfail=owner),
        Case("yolo-fifo-label-no-yaml", "yolo", "fifo", fifo_in(yolo(None), "yolo/labels/train/a.txt"),
             refused("yolo/labels/train/a.txt"), xfail=owner),
    ]  # fmt: skip


def _duplicate_key_cases() -> list[Case]:
    # Each repeated key repeats its value (the second array empty), so that only the warning is in question.
    base = json.dumps(coco_doc())
    twice = base[:-1] + ', "annotations": []}'
    width = base.replace('"width": 120', '"width": 120, "width": 120')
    bbox = base.replace('"bbox": [5, 5, 50, 40]', '"bbox": [5, 5, 50, 40], "bbox": [5, 5, 50, 40]')
    name = base.replace('"name": "dog"', '"name": "dog", "name": "dog"')
    owner = "dupkeys: a repeated key is silently taken last"

    def warned(file: str) -> tuple[Expectation, ...]:
        return Error(file, r".+"), Counted(3, {"duplicate_key": 1})

    return [
        Case("coco-duplicate-top-level-key", "coco", "duplicate-key", coco(twice), warned("instances.json"),
             xfail=owner),
        Case("coco-duplicate-image-key", "coco", "duplicate-key", coco(width), warned("instances.json"), xfail=owner),
        Case("coco-duplicate-annotation-key", "coco", "duplicate-key", coco(bbox), warned("instances.json"),
             xfail=owner),
        Case("coco-duplicate-category-key", "coco", "duplicate-key", coco(name), warned("instances.json"),
             xfail=owner),
        # the issue names JSON; the other formats have their own repeats: a YAML key, an XML element, a CSV column
        Case("yolo-duplicate-yaml-key", "yolo", "duplicate-key", yolo(YOLO_YAML + "names: [cat, dog]\n"),
             warned("yolo/data.yaml")),
        Case("voc-duplicate-element", "voc", "duplicate-key",
             voc({"b.xml": VOC_B.replace("<width>120</width>", "<width>120</width><width>120</width>")}),
             warned("voc/Annotations/b.xml"), xfail="formats: a repeated XML element is silently taken first"),
        Case("openimages-duplicate-column", "openimages", "duplicate-key",
             openimages(rows=tuple(r + "," + r.split(",")[4] for r in OI_ROWS), special=lambda base: write(
                 base / "boxes.csv", (base / "boxes.csv").read_text().replace("IsInside", "IsInside,XMin", 1))),
             warned("oi/boxes.csv")),
    ]  # fmt: skip


def _validate_count_cases() -> list[Case]:
    owner = "sizes: validate counts an excluded image as a box read"
    image_gone = {"invalid_image_size": 1, "image_excluded": 1}

    def image2(key: str, value: object) -> Callable[[Path], list[str]]:
        def edit(doc: dict) -> None:
            doc["images"][1][key] = value

        return coco_with(edit)

    def duplicate(doc: dict) -> None:
        doc["images"].append({"id": 2, "width": 60, "height": 60, "file_name": "again.jpg"})

    return [
        Case("coco-duplicate-image-id", "coco", "validate-count", coco_with(duplicate),
             Counted(3, {"duplicate_image_id": 1}, images=2), xfail=owner),
        Case("coco-zero-width", "coco", "validate-count", image2("width", 0), Counted(3, image_gone), xfail=owner),
        Case("coco-negative-height", "coco", "validate-count", image2("height", -5), Counted(3, image_gone),
             xfail=owner),
        Case("coco-nan-width", "coco", "validate-count", image2("width", float("nan")), Counted(3, image_gone),
             xfail=owner),
        Case("voc-missing-size", "voc", "validate-count", voc({"b.xml": voc_xml(None, None, (("cat", 6, 6, 55, 45),))}),
             Counted(3, image_gone), xfail=owner),
        Case("openimages-zero-size", "openimages", "validate-count", openimages(sizes=OI_SIZES.replace("b,120", "b,0")),
             Counted(3, image_gone), xfail=owner),
        # a.png and a.jpg are both image train/a: the second is excluded, the label file read once
        Case("yolo-duplicate-image-id", "yolo", "validate-count",
             yolo("path: .\ntrain: list.txt\nnames: [cat, dog]\n", special=lambda base: (
                 png(base / "images/train/a.jpg", 100, 80),
                 write(base / "list.txt", "images/train/a.png\nimages/train/a.jpg\nimages/train/b.png\n"))),
             Counted(3, {"duplicate_image_id": 1}, images=2), xfail=owner),
    ]  # fmt: skip


def _encoding_cases() -> list[Case]:
    return [
        Case("voc-utf16", "voc", "encoding", voc({"b.xml": utf16_voc()}), Counted(3, {})),
        Case("coco-utf16", "coco", "encoding", coco(json.dumps(coco_doc()).encode("utf-16")),
             Error("instances.json", r"byte \d+")),
        Case("openimages-utf16", "openimages", "encoding", openimages(special=lambda base: write(
             base / "boxes.csv", (base / "boxes.csv").read_text().encode("utf-16"))), Error("oi/boxes.csv")),
        Case("yolo-utf16-yaml", "yolo", "encoding", yolo(YOLO_YAML.encode("utf-16")), Error("yolo/data.yaml"),
             xfail="formats: UnicodeDecodeError traceback on a UTF-16 data YAML"),
        Case("yolo-utf16-label", "yolo", "encoding", yolo(labels={"b": YOLO_B.encode("utf-16")}),
             Error("yolo/labels/train/b.txt", r"byte \d+")),
    ]  # fmt: skip


def _id_cases() -> list[Case]:
    def string_image(doc: dict) -> None:
        doc["images"][0]["id"] = "1"  # the annotations say 1

    def string_category(doc: dict) -> None:
        doc["categories"][0]["id"] = "1"

    def huge_image_ids(doc: dict) -> None:
        doc["images"].append({"id": 2**63, "width": 50, "height": 50, "file_name": "big.jpg"})
        doc["images"].append({"id": 2**63 + 1, "width": 50, "height": 50, "file_name": "bigger.jpg"})
        doc["annotations"] += [
            {"id": 4, "image_id": 2**63, "category_id": 1, "bbox": [1, 1, 10, 10]},
            {"id": 5, "image_id": 2**63 + 1, "category_id": 2, "bbox": [1, 1, 10, 10]},
        ]

    def huge_annotation_ids(doc: dict) -> None:
        doc["annotations"][1]["id"] = 2**63
        doc["annotations"][2]["id"] = 2**63 + 1

    def beyond_uint64(doc: dict) -> None:
        doc["images"][1]["id"] = 2**64
        doc["annotations"][2]["image_id"] = 2**64

    owner_type = "json: one string id makes every int id unknown"
    owner_big = "json: ids beyond 2^53 become float64 and collide"
    return [
        # image "1" is not image 1: its two boxes may be unknown, but image 2's box is not
        Case("coco-string-image-id", "coco", "ids", coco_with(string_image),
             (Counted(3, {}), Counted(3, {"unknown_image": 2})), xfail=owner_type),
        Case("coco-string-category-id", "coco", "ids", coco_with(string_category),
             (Counted(3, {}), Counted(3, {"unknown_category": 2})), xfail=owner_type),
        Case("coco-image-ids-beyond-2e63", "coco", "ids", coco_with(huge_image_ids), Counted(5, {}, images=4),
             xfail=owner_big),
        Case("coco-annotation-ids-beyond-2e63", "coco", "ids", coco_with(huge_annotation_ids), Counted(3, {}),
             xfail=owner_big),
        Case("coco-image-id-beyond-uint64", "coco", "ids", coco_with(beyond_uint64),
             (Counted(3, {}, images=2), Error("instances.json", r"\$\.images\[1\]\.id|byte \d+"))),
    ]  # fmt: skip


def _stream_cases() -> list[Case]:
    # the whole-file path (files under 1 GiB); tests/test_hostile.py compares the streaming path
    text = json.dumps(coco_doc())
    cut = text.index('"categories"')
    return [
        Case("coco-trailing-nul", "coco", "streaming", coco(text.encode() + b"\0" * 4096),
             Error("instances.json", rf"byte ({len(text)}|{len(text) + 1})")),  # 0- or 1-based
        Case("coco-trailing-garbage", "coco", "streaming", coco(text + " xyz"), Error("instances.json", r"byte \d+")),
        Case("coco-truncated-nul-padded", "coco", "streaming", coco(text[:cut].encode() + b"\0" * 4096),
             Error("instances.json", rf"byte {cut}")),
    ]  # fmt: skip


def _message_cases() -> list[Case]:
    loop = "lead: a symlink loop is reported as a missing file"
    dev_null = "lead: /dev/null named like an annotation file is reported as not a VOC folder"
    not_missing = ("no such file",)
    # a quoted Source with a newline in it: line 2 is the first row, which ends on line 3
    embedded = ('a,"x\nclick",/m/cat,1,0.1,0.3,0.125,0.375,0,0,0,0,0', OI_ROWS[1], OI_ROWS[2])
    bad_number = (*embedded[:2], OI_ROWS[2].replace("0.05,0.5,0.05", "0.05,oops,0.05"))
    nan_box = (*embedded[:2], OI_ROWS[2].replace("0.05,0.5,0.05", "0.05,nan,0.05"))
    return [
        Case("coco-symlink-loop", "coco", "symlink-loop", lambda f: [str(symlink(f / "loop.json", "loop.json"))],
             Error("loop.json", forbid=not_missing), xfail=loop),
        Case("voc-symlink-loop-in-folder", "voc", "symlink-loop",
             _then(voc(), lambda f: symlink(f / "voc/Annotations/c.xml", "c.xml")),
             Error("voc/Annotations/c.xml", forbid=not_missing), xfail=loop),
        Case("openimages-symlink-loop", "openimages", "symlink-loop",
             lambda f: [str(symlink(f / "loop.csv", "loop.csv"))], Error("loop.csv", forbid=not_missing), xfail=loop),
        Case("openimages-symlink-loop-sizes", "openimages", "symlink-loop",
             _then(openimages(sizes=None), lambda f: symlink(f / "oi/loop.csv", "loop.csv"), "--sizes", "oi/loop.csv"),
             Error("oi/loop.csv", forbid=not_missing), xfail=loop),
        Case("yolo-symlink-loop", "yolo", "symlink-loop", lambda f: [str(symlink(f / "loop.yaml", "loop.yaml"))],
             Error("loop.yaml", forbid=not_missing), xfail=loop),
        Case("coco-dev-null-json", "coco", "dev-null", lambda f: [str(symlink(f / "null.json", os.devnull))],
             Error("null.json", forbid=("VOC",)), xfail=dev_null),
        Case("openimages-dev-null-csv", "openimages", "dev-null", lambda f: [str(symlink(f / "null.csv", os.devnull))],
             Error("null.csv", forbid=("VOC",)), xfail=dev_null),
        Case("yolo-dev-null-yaml", "yolo", "dev-null", lambda f: [str(symlink(f / "null.yaml", os.devnull))],
             Error("null.yaml", forbid=("VOC",)), xfail=dev_null),
        Case("voc-dev-null-xml", "voc", "dev-null", lambda f: [str(symlink(f / "null.xml", os.devnull))],
             Error("null.xml", forbid=("VOC folder",)), xfail=dev_null),
        Case("openimages-empty-sizes", "openimages", "message", openimages(sizes=""), Error("oi/sizes.csv"),
             xfail="formats: an empty --sizes file is taken as no sizes"),
        Case("openimages-header-only-sizes", "openimages", "message", openimages(sizes="ImageID,Width,Height\n"),
             Error("oi/sizes.csv"), xfail="formats: an empty --sizes file is taken as no sizes"),
        Case("openimages-embedded-newline-error", "openimages", "message", openimages(rows=bad_number),
             Error("oi/boxes.csv", r"line 5, column XMax"),
             xfail="formats: a row after a quoted embedded newline is reported one line early"),
        Case("openimages-embedded-newline-problem", "openimages", "message", openimages(rows=nan_box),
             Counted(3, {"nan_coordinate": 1}, locations=("line 5",)),
             xfail="formats: a row after a quoted embedded newline is reported one line early"),
        Case("voc-not-a-number", "voc", "message", voc({"b.xml": voc_xml("120", "90", (("cat", "six", 6, 55, 45),))}),
             Error("voc/Annotations/b.xml", r"object 1, bndbox/xmin")),
        Case("coco-missing-images", "coco", "message", coco('{"annotations": [], "categories": []}'),
             Error("instances.json", r"\$", contains=("expected", "images")),
             xfail="json: 'Object missing required field' says nothing expected"),
        Case("coco-number-out-of-range", "coco", "message", coco(json.dumps(coco_doc()).replace("120", "1e400", 1)),
             Error("instances.json", r"\$\.images\[1\]\.width", contains=("expected",)),
             xfail="json: 'Number out of range' says nothing expected"),
        Case("yolo-anchor-hint", "yolo", "message",
             yolo(images={"b": None}, special=lambda base: write(base / "images/train/b.png", b"not a PNG header")),
             Counted(3, {}, images=2),
             anchor=Error("yolo/data.yaml", contains=("image sizes",), forbid=("--images", "--sizes")),
             xfail="formats: the anchor error suggests --sizes and --images, which a data YAML refuses"),
    ]  # fmt: skip


def _then(build: Callable[[Path], list[str]], make: Callable[[Path], object], *options: str) -> Callable:
    """``build``, then ``make`` odd files in the same folder; ``options`` are relative to it."""

    def both(folder: Path) -> list[str]:
        args = build(folder)
        make(folder)
        return [*args, *(str(folder / o) if "/" in o else o for o in options)]

    return both


def _warning_cases() -> list[Case]:
    def overflow(doc: dict) -> None:
        doc["annotations"][2]["bbox"] = [1e308, 5, 1e308, 40]  # x + w overflows to infinity

    return [
        Case("coco-bbox-overflow", "coco", "warnings", coco_with(overflow), Counted(3, {"nan_coordinate": 1}),
             xfail="sizes: RuntimeWarning (overflow in add) leaks to stderr"),
        Case("openimages-coordinate-overflow", "openimages", "warnings",
             openimages(rows=(*OI_ROWS[:2], OI_ROWS[2].replace("0.05,0.5,0.05", "0.05,1e308,0.05"))),
             (Counted(3, {"clipped_to_image": 1}), Counted(3, {"nan_coordinate": 1})),
             xfail="formats: RuntimeWarning (overflow in multiply) leaks to stderr"),
        Case("yolo-coordinate-overflow", "yolo", "warnings", yolo(labels={"b": "0 0.5 0.5 1e308 0.2\n"}),
             (Counted(3, {"clipped_to_image": 1}), Counted(3, {"nan_coordinate": 1})),
             xfail="formats: RuntimeWarning (overflow in multiply) leaks to stderr"),
        Case("voc-coordinate-infinite", "voc", "warnings",
             voc({"b.xml": voc_xml("120", "90", (("cat", "-inf", 6, "1e309", 45),))}),
             Counted(3, {"nan_coordinate": 1})),
    ]  # fmt: skip


def _valid_cases() -> list[Case]:
    """The untouched datasets: the harness's own check that the expectations mean what they say."""
    return [
        Case("coco-valid", "coco", "valid", coco(coco_doc()), Counted(3, {}, images=2, categories=2)),
        Case("voc-valid", "voc", "valid", voc(), Counted(3, {}, images=2, categories=2)),
        Case("openimages-valid", "openimages", "valid", openimages(), Counted(3, {}, images=2, categories=2)),
        Case("yolo-valid", "yolo", "valid", yolo(), Counted(3, {}, images=2, categories=2)),
    ]


def cases() -> list[Case]:
    return [
        *_valid_cases(),
        *_markup_cases(),
        *_nesting_cases(),
        *_size_cases(),
        *_shard_cases(),
        *_class_index_cases(),
        *_yaml_cases(),
        *_fifo_cases(),
        *_duplicate_key_cases(),
        *_validate_count_cases(),
        *_encoding_cases(),
        *_id_cases(),
        *_stream_cases(),
        *_message_cases(),
        *_warning_cases(),
    ]


# ================================================================ issue 20: saved reports, shards and the cache
# A block of its own: the cases above are datasets that every command reads; these are what imbstat reads
# back from its own output (a shard's report for ``merge``, a saved report for ``compare``, a Parquet cache),
# hand-edited or damaged. tests/test_hostile.py runs them in its own section at its end.

SHARDS = 2  # shard 0/2 (images 0, 2, 4, 6) is the one edited


def sharded_doc(images: int = 8, boxes: int = 11) -> dict:
    """``images`` images (100×80), ``boxes`` boxes over 3 classes: box j in image j mod (images - 1), so the
    last image has none; class j mod 3, so every shard has a class with more instances than images."""
    return {
        "images": [{"id": i + 1, "width": 100, "height": 80, "file_name": f"{i + 1}.jpg"} for i in range(images)],
        "annotations": [
            {"id": j + 1, "image_id": j % (images - 1) + 1, "category_id": j % 3 + 1,
             "bbox": [5 + 3 * (j % 7), 4 + 2 * (j % 5), 10 + j, 8 + j], "iscrowd": 0}
            for j in range(boxes)
        ],
        "categories": [{"id": k, "name": name} for k, name in enumerate(("cat", "dog", "bird"), 1)],
    }  # fmt: skip


@dataclass(frozen=True)
class ReportCase:
    """A document imbstat wrote, edited by hand, then read back by ``command``.

    ``merge``: the shards of ``kind`` ("class-dist": its ``--json``; "report": report.json with --anchors),
    shard 0's edited, merged as ``shard0.json shard1.json``; ``compare``: the dataset against its
    saved report.json (``kind`` "report", without anchors), the report edited.
    """

    name: str
    command: str  # merge, compare
    kind: str  # class-dist, report
    edit: Callable[[dict], object]  # changes the document in place
    expect: Error  # file: shard0.json or report.json


def _set(path: str, value: object) -> Callable[[dict], None]:
    """An edit setting the field at ``path`` (``a.b[2].c``) to ``value``."""
    keys = [int(k) if k.isdigit() else k for k in path.replace("[", ".").replace("]", "").split(".")]

    def edit(doc: dict) -> None:
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    return edit


def _shorten(field: str, edges: bool) -> Callable[[dict], None]:
    """Drop the last bin of the histogram ``field`` (its last edge too, with ``edges``)."""

    def edit(doc: dict) -> None:
        doc[field]["counts"].pop()
        if edges:
            doc[field]["edges"].pop()

    return edit


def _more_boxes(doc: dict) -> None:
    doc["dataset"]["boxes"] += 5


NAN = float("nan")  # json.dumps writes NaN, and json.loads reads it: a hand edit can put it anywhere


def report_cases() -> list[ReportCase]:
    count = ("expected a non-negative integer",)
    shard, report = "shard0.json", "report.json"
    return [
        ReportCase("merge-nan-count", "merge", "class-dist", _set("classes[0].instances", NAN),
                   Error(shard, r"classes\[0\]\.instances", count)),
        ReportCase("merge-nan-histogram", "merge", "class-dist", _set("objects_per_image.counts[1]", NAN),
                   Error(shard, r"objects_per_image\.counts\[1\]", count)),
        ReportCase("merge-string-count", "merge", "class-dist", _set("classes[1].instances", "3"),
                   Error(shard, r"classes\[1\]\.instances", count)),
        ReportCase("merge-negative-instances", "merge", "class-dist", _set("classes[0].instances", -3),
                   Error(shard, r"classes\[0\]\.instances", count)),
        ReportCase("merge-fractional-instances", "merge", "class-dist", _set("classes[0].instances", 2.5),
                   Error(shard, r"classes\[0\]\.instances", count)),
        ReportCase("merge-bool-count", "merge", "class-dist", _set("classes[0].images", True),
                   Error(shard, r"classes\[0\]\.images", count)),
        # a class-dist document holds the classes' fields at its top level: the error names them there
        ReportCase("merge-images-unlike-the-classes", "merge", "class-dist", _set("dataset.images", 5),
                   Error(shard, r"objects_per_image\.counts")),
        ReportCase("merge-negative-images", "merge", "class-dist", _set("dataset.images", -1),
                   Error(shard, r"dataset\.images", count)),
        ReportCase("merge-boxes-not-the-class-sums", "merge", "class-dist", _more_boxes,
                   Error(shard, "classes", ("expected", "instances"))),
        ReportCase("merge-shortened-histogram", "merge", "class-dist", _shorten("objects_per_image", edges=True),
                   Error(shard, r"objects_per_image\.counts", ("expected", "instances"))),
        ReportCase("merge-histogram-counts-short-of-edges", "merge", "class-dist",
                   _shorten("classes_per_image", edges=False), Error(shard, r"classes_per_image\.counts")),
        ReportCase("merge-images-beyond-instances", "merge", "class-dist", _set("classes[0].images", 99),
                   Error(shard, r"classes\[0\]\.images", ("expected at most",))),
        ReportCase("merge-schema-99", "merge", "class-dist", _set("schema_version", 99),
                   Error(shard, "schema_version", ("expected schema_version 1", "99"))),
        ReportCase("merge-negative-anchor-count", "merge", "report", _set("anchors.raw.per_image[0][1]", -1),
                   Error(shard, r"anchors\.raw\.per_image\[0\]\[1\]", count)),
        ReportCase("merge-anchor-sum-not-the-images", "merge", "report", _set("anchors.raw.class_foreground[0]", 10**6),
                   Error(shard, r"anchors\.raw\.class_foreground", ("expected a sum",))),
        ReportCase("merge-scale-negative-bucket", "merge", "report", _set("scale.size_buckets.small", -2),
                   Error(shard, r"scale\.size_buckets\.small", count)),
        ReportCase("merge-location-short-row", "merge", "report", lambda d: d["location"]["centers"]["counts"][0].pop(),
                   Error(shard, r"location\.centers\.counts", ("rows of different lengths",))),
        ReportCase("compare-negative-count", "compare", "report", _set("classes.classes[0].instances", -3),
                   Error(report, r"classes\.classes\[0\]\.instances", count)),
        ReportCase("compare-negative-dataset-count", "compare", "report", _set("dataset.boxes", -4),
                   Error(report, r"dataset\.boxes", count)),
        ReportCase("compare-boxes-not-the-class-sums", "compare", "report", _more_boxes,
                   Error(report, "classes", ("expected", "instances"))),
        ReportCase("compare-schema-99", "compare", "report", _set("schema_version", 99),
                   Error(report, "schema_version", ("expected schema_version 1", "99"))),
    ]  # fmt: skip


@dataclass(frozen=True)
class CacheCase:
    """A Parquet cache damaged, or its source changed behind its back: a load must give the source's numbers
    (never the cache's stale or foreign ones, never a traceback) and leave a cache that is read again."""

    name: str
    damage: Callable[[Path, Path, Path], object]  # (the source, its cache folder, another source's cache folder)


def _meta(edit: Callable[[dict], object]) -> Callable[[Path, Path, Path], None]:
    def damage(source: Path, cache: Path, other: Path) -> None:
        meta = json.loads((cache / "meta.json").read_text())
        edit(meta)
        (cache / "meta.json").write_text(json.dumps(meta))

    return damage


def _swap(source: Path, cache: Path, other: Path) -> None:
    (cache / "boxes.parquet").rename(cache / "swap")
    (cache / "images.parquet").rename(cache / "boxes.parquet")
    (cache / "swap").rename(cache / "images.parquet")


def _foreign_table(source: Path, cache: Path, other: Path) -> None:
    (cache / "boxes.parquet").write_bytes((other / "boxes.parquet").read_bytes())


def _foreign_cache(source: Path, cache: Path, other: Path) -> None:
    for file in other.iterdir():
        (cache / file.name).write_bytes(file.read_bytes())


def _truncated_table(source: Path, cache: Path, other: Path) -> None:
    table = cache / "boxes.parquet"
    table.write_bytes(table.read_bytes()[:100])


def _edited_in_place(source: Path, cache: Path, other: Path) -> None:
    """Fewer boxes, the same size and mtime (``cp -p``, ``rsync -t``, ``tar x`` restore both)."""
    before, st = source.read_text(), source.stat()
    doc = json.loads(before)
    del doc["annotations"][5:]
    text = json.dumps(doc)
    source.write_text(text + " " * (len(before) - len(text)))
    os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))


def cache_cases() -> list[CacheCase]:
    return [
        CacheCase("cache-inputs-a-list", _meta(lambda m: m.update(inputs=[]))),
        CacheCase("cache-files-entry-malformed", _meta(lambda m: m["inputs"].update(files={"x": [1]}))),
        CacheCase("cache-files-a-list", _meta(lambda m: m["inputs"].update(files=[]))),
        CacheCase("cache-tables-missing", _meta(lambda m: m.pop("tables", None))),
        CacheCase("cache-swapped-tables", _swap),
        CacheCase("cache-table-of-another-source", _foreign_table),
        CacheCase("cache-folder-of-another-source", _foreign_cache),
        CacheCase("cache-truncated-table", _truncated_table),
        CacheCase("cache-source-edited-size-and-mtime-kept", _edited_in_place),
    ]


# ---------------------------------------------------------------- options, presets and configs (issue 20, 2a)
# Every number and option a user can type, a custom preset TOML and an audit config, through the command they
# belong to (batch-dist, anchors, anchor-iou, report, audit, --shard on each loading command, the bounds of the
# options): exit 2 and one line naming the option or the file and key, or a run that ends with the right
# numbers; never a traceback, a hang or memory that grows with the number typed. tests/test_hostile.py runs
# them under its time bound (test_hostile_option). A separate block from the dataset cases above.


@dataclass(frozen=True)
class Refused:
    """Exit 2, one line ``imbstat: error: ...`` naming ``names`` (an option) or ``file`` (relative to the case
    folder, with ``position`` the key in parentheses after it), with ``contains`` in the message."""

    names: str = ""
    file: str | None = None
    position: str | None = None
    contains: tuple[str, ...] = ("expected",)


@dataclass(frozen=True)
class Ran:
    """Exit ``code`` (0; an audit whose check fails: 1) with these ``values`` in the JSON on stdout (dotted keys)."""

    code: int = 0
    values: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class OptionCase:
    name: str
    command: str  # the command whose option or file it is
    defect: str  # bound, shard, preset, audit, dask, output, usage
    build: Callable[[Path], list[str]]  # writes the files under a folder; returns the whole argument list
    expect: Refused | Ran
    xfail: str | None = None


def _data(folder: Path) -> str:
    """The COCO file of two images (100×80, 120×90) and three boxes."""
    return coco(coco_doc())(folder)[0]


def _run(*args: str, toml: str | None = None, name: str = "preset.toml") -> Callable[[Path], list[str]]:
    """``args`` with ``{data}`` the COCO file, ``{toml}`` a file ``name`` holding ``toml``, ``{folder}`` the folder."""

    def build(folder: Path) -> list[str]:
        data = _data(folder)
        made = str(write(folder / name, toml)) if toml is not None else ""
        return [a.format(data=data, toml=made, folder=folder) for a in args]

    return build


HUGE = "99999999999999999999"  # past int64
JSON = ("--json", "-")


def _bound_cases() -> list[OptionCase]:
    """Numbers that set the time or the memory: refused beyond a documented bound, or a cost set by the data."""
    return [
        OptionCase("location-grid-65", "location", "bound", _run("location", "{data}", "--grid", "65"),
                   Refused("--grid", contains=("64",))),
        OptionCase("anchor-iou-grid-65", "anchor-iou", "bound", _run("anchor-iou", "{data}", "--grid", "65"),
                   Refused("--grid", contains=("64",))),
        OptionCase("location-grid-64", "location", "bound", _run("location", "{data}", "--grid", "64", *JSON),
                   Ran(values={"options.grid": 64, "centers.grid": 64})),
        OptionCase("scale-bins-huge", "scale", "bound", _run("scale", "{data}", "--bins", "100000000"),
                   Refused("--bins", contains=("10000",))),
        OptionCase("batch-dist-epochs-huge", "batch-dist", "bound",
                   _run("batch-dist", "{data}", "--batch-size", "1", "--epochs", "100000000"),
                   Refused("--epochs", contains=("10000",))),
        OptionCase("report-epochs-huge", "report", "bound",
                   _run("report", "{data}", "--batch-size", "1", "--epochs", HUGE, "--out", "{folder}/out"),
                   Refused("--epochs", contains=("10000",))),
        # a batch larger than the file: no full batch, at once (it looped to the batch size)
        OptionCase("batch-dist-batch-huge", "batch-dist", "bound", _run("batch-dist", "{data}", "--batch-size", HUGE,
                   *JSON), Ran(values={"batches.full": 0, "batches.incomplete": 10})),
        OptionCase("batch-dist-batch-zero", "batch-dist", "usage", _run("batch-dist", "{data}", "--batch-size", "0"),
                   Refused("--batch-size")),
        OptionCase("anchor-iou-memory-inf", "anchor-iou", "bound", _run("anchor-iou", "{data}", "--memory-mb", "inf"),
                   Refused("--memory-mb")),
        OptionCase("report-shards-huge", "report", "bound",
                   _run("report", "{data}", "--dask", "local:1", "--shards", HUGE, "--out", "{folder}/out"),
                   Refused("--shards")),
    ]  # fmt: skip


def _shard_option_cases() -> list[OptionCase]:
    """--shard I/N past int64 on every loading command (OverflowError); a sampler's NUM likewise."""
    cases = [
        OptionCase(f"{command}-shard-huge", command, "shard", _run(command, "{data}", "--shard", f"1/{HUGE}", *JSON),
                   Ran(values={"dataset.images": 1, "dataset.shard": f"1/{HUGE}"}))
        for command in ("info", "class-dist", "scale", "location", "anchor-iou")
    ]  # fmt: skip
    return [
        *cases,
        OptionCase("info-shard-past-the-images", "info", "shard", _run("info", "{data}", "--shard", f"{HUGE}0/{HUGE}1",
                   *JSON), Ran(values={"dataset.images": 0})),
        OptionCase("anchor-iou-sampler-huge", "anchor-iou", "shard",
                   _run("anchor-iou", "{data}", "--anchor-sampler", f"random:{HUGE}:0.5"),
                   Refused("sampler", contains=("NUM",))),
        OptionCase("anchor-iou-preset-sampler-huge", "anchor-iou", "preset",
                   _run("anchor-iou", "{data}", "--preset", "{toml}", toml=f'sampler = "random:{HUGE}:0.5"\n'),
                   Refused(file="preset.toml", position="sampler")),
    ]  # fmt: skip


# Preset TOMLs each field of which is out of its bounds: (name, TOML, the key the error names).
BAD_PRESETS = (
    ("scales-per-octave-million", "scales_per_octave = 1000000", "scales_per_octave"),
    ("ratios-200k", "ratios = [" + ", ".join(["1.0"] * 200_000) + "]", "ratios"),
    ("resize-100k", "resize_short = 100000\nresize_long = 100000", "resize_short/resize_long"),
    ("resize-long-inf", "resize_long = inf", "resize_short/resize_long"),
    ("strides-float", "strides = [8.5, 16.0]", "strides"),
    ("strides-huge", "strides = [9223372036854775807]", "strides"),
    ("octave-base-scale-nan", "octave_base_scale = nan", "octave_base_scale"),
    ("octave-base-scale-inf", "octave_base_scale = inf", "octave_base_scale"),
    ("center-offset-nan", "center_offset = nan", "center_offset"),
    ("center-offset-huge", "center_offset = 1e300", "center_offset"),
    ("ratios-inf", "ratios = [inf]", "ratios"),
    ("anchor-sizes-empty", "anchor_sizes = [[]]", "anchor_sizes"),
    ("pad-divisor-huge", "pad_divisor = 9223372036854775807", "pad_divisor"),
    ("atss-topk-huge", 'base = "atss"\ntopk = 9223372036854775807', "topk"),
    ("fcos-on-nine-anchors", 'assigner = "fcos"', "assigner"),
    ("pos-iou-nan", "pos_iou = nan", "pos_iou"),
    ("base-a-list", "base = [1]", "base"),  # an unhashable base: a TypeError once
    ("base-a-table", "base = {}", "base"),
)


def _preset_cases() -> list[OptionCase]:
    """Each bad preset through ``anchors`` (no dataset: it hung on the first) and ``anchor-iou``; a sound one runs."""
    cases = []
    for name, toml, key in BAD_PRESETS:
        expect = Refused(
            file="preset.toml",
            position=re.escape(key),
            contains=("expected",) if "fcos" in name or key == "base" else ("inconsistent preset",),
        )
        cases += [
            OptionCase(f"anchors-preset-{name}", "anchors", "preset",
                       _run("anchors", "--preset", "{toml}", "--image-size", "64x64", toml=toml + "\n"), expect),
            OptionCase(f"anchor-iou-preset-{name}", "anchor-iou", "preset",
                       _run("anchor-iou", "{data}", "--preset", "{toml}", "--grid", "4", toml=toml + "\n"), expect),
        ]  # fmt: skip
    sound = 'base = "rpn"\nratios = [0.5, 1.0, 2.0]\ncenter_offset = 0.5\n'
    return [
        *cases,
        OptionCase("anchors-preset-sound", "anchors", "preset",
                   _run("anchors", "--preset", "{toml}", "--image-size", "64x64", *JSON, toml=sound),
                   Ran(values={"preset.center_offset": 0.5, "padded_size": [800, 800]})),
    ]  # fmt: skip


def _audit_cases() -> list[OptionCase]:
    def audit(config: str, *more: str) -> Callable[[Path], list[str]]:
        return _run("audit", "{data}", "--config", "{toml}", *more, toml=config, name="audit.toml")

    return [
        OptionCase("audit-limit-nan", "audit", "audit", audit('checks = ["dataset.images <= nan"]\n'),
                   Refused(file="audit.toml", position=r"checks\[0\]")),
        OptionCase("audit-epochs-huge", "audit", "audit",
                   audit(f'batch_size = 1\nepochs = {HUGE}\nchecks = ["dataset.images <= 5"]\n'),
                   Refused(file="audit.toml", position="epochs", contains=("10000",))),
        OptionCase("audit-passes", "audit", "audit", audit('checks = ["dataset.images <= 2"]\n', *JSON),
                   Ran(values={"failed": 0})),
        OptionCase("audit-fails", "audit", "audit", audit('checks = ["dataset.images < 2"]\n', *JSON),
                   Ran(1, values={"failed": 1})),
        OptionCase("audit-junit-a-folder", "audit", "output", audit('checks = ["dataset.images <= 2"]\n', "--junit",
                   "{folder}"), Refused("--junit", contains=("folder",))),
    ]  # fmt: skip


def _dask_and_output_cases() -> list[OptionCase]:
    def report(*more: str) -> Callable[[Path], list[str]]:
        return _run("report", "{data}", "--quiet", "--out", "{folder}/out", *more)

    def a_file(build: Callable[[Path], list[str]]) -> Callable[[Path], list[str]]:
        return _then(build, lambda folder: write(folder / "taken", "a file"))

    return [
        OptionCase("report-dask-local-0", "report", "dask", report("--dask", "local:0"), Refused("--dask")),
        OptionCase("report-dask-local-abc", "report", "dask", report("--dask", "local:abc"), Refused("--dask")),
        # --out names a file: refused when the options are read, before the (here missing) dataset is loaded
        OptionCase("scale-out-a-file", "scale", "output",
                   a_file(lambda folder: ["scale", str(folder / "missing.json"), "--out", str(folder / "taken")]),
                   Refused("--out", contains=("not a folder",))),
        OptionCase("report-out-a-file", "report", "output",
                   a_file(lambda folder: ["report", str(folder / "missing.json"), "--out", str(folder / "taken")]),
                   Refused("--out", contains=("not a folder",))),
        OptionCase("class-dist-json-under-a-file", "class-dist", "output",
                   a_file(lambda folder: ["class-dist", _data(folder), "--json", str(folder / "taken" / "x.json")]),
                   Refused("--json", contains=("not a folder",))),
        OptionCase("location-grid-abc", "location", "usage", _run("location", "{data}", "--grid", "abc"),
                   Refused("--grid")),
    ]  # fmt: skip


def option_cases() -> list[OptionCase]:
    return [*_bound_cases(), *_shard_option_cases(), *_preset_cases(), *_audit_cases(), *_dask_and_output_cases()]


def main(out: Path) -> None:
    """Write every case under ``out/<name>/`` and print the command line that reads it."""
    for case in cases():
        folder = out / case.name
        folder.mkdir(parents=True)
        args = case.build(folder)
        print(f"{case.name}: imbstat info {' '.join(args)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
