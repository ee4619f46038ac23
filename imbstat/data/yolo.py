"""YOLO txt labels with an Ultralytics data YAML (docs/design.md, 'Data model').

Ultralytics layout: ``images/<split>/x.jpg`` has its boxes in
``labels/<split>/x.txt``, one line ``class cx cy w h`` per box, normalised to
[0, 1] by the image's size, which only the image file's header gives. The
image-to-label rule is Ultralytics' ``img2label_paths``: the last ``images``
folder of the path becomes ``labels`` and the suffix becomes ``.txt``; an
image without a label file is an image without boxes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import imagesize
import numpy as np

from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble
from imbstat.data.formats import data_yamls
from imbstat.data.ids import index_of
from imbstat.data.problems import Problems, Reason
from imbstat.data.source import list_folder, open_input, path_kind, read_text
from imbstat.data.yolo_yaml import MAX_CLASS_INDEX, MAX_UNNAMED_CLASSES, class_names, read_data_yaml
from imbstat.errors import ImbstatError

# Ultralytics' IMG_FORMATS (ultralytics/data/utils.py).
IMAGE_SUFFIXES = frozenset((".bmp", ".dng", ".jpeg", ".jpg", ".mpo", ".png", ".tif", ".tiff", ".webp", ".pfm", ".heic"))
SPLITS = ("train", "val", "test")
EDGE_TOLERANCE = 1e-12  # normalised units: far below any pixel, far above float64 rounding


@dataclass(frozen=True)
class _Item:
    """One image of the dataset: its id, and its image and label files where they exist."""

    image_id: str
    image: str | None  # paths as strings: pathlib costs more than the parsing for 100k files
    label: str | None


def load_yolo(path: str | Path, split: str | None = None, images: str | Path | None = None) -> Dataset:
    """Load YOLO txt labels into a Dataset.

    Args:
        path: an Ultralytics data YAML; a folder holding one ``*.yaml``; or,
            without a YAML, a dataset folder with ``labels/`` (and
            ``images/``) or a bare folder of label files (searched
            recursively; a top-level ``classes.txt``, as LabelImg writes,
            gives the names).
        split: a split of the YAML (``train``, ``val``, ``test``), or the
            ``labels/<split>/`` subfolder without a YAML. None reads every
            split the YAML lists (an image listed by several splits once), or
            every label file without a YAML.
        images: without a YAML, the folder whose image files mirror the label
            files (default: ``images/`` beside ``labels/``).

    YAML split entries are folders of images relative to the YAML's ``path:``
    (itself relative to the YAML's folder), lists of such folders, or ``.txt``
    files listing image paths (relative to the list's folder). ``names`` is a
    list or a ``{index: name}`` mapping (or ``nc`` alone); without a YAML or
    classes.txt the names are the indices ``0..max seen`` as strings.

    Image ids are the image's path relative to the dataset folder with its
    suffix and a leading ``images/`` dropped (``train/x`` for
    ``images/train/x.jpg``); a label file without an image has the id of its
    path with ``labels/`` dropped, an unknown size (``width == height == 1``,
    ``size_known`` False) and, when an images folder exists, a
    :attr:`Reason.UNLABELLED_FILE` problem. An image whose header gives a
    size that is not a :func:`~imbstat.data.dataset.valid_image_size` is
    excluded (:attr:`Reason.INVALID_IMAGE_SIZE`, located by its image file).
    Problem locations read ``labels/train/x.txt (line 3)``.

    Raises:
        ImbstatError: an unreadable or malformed YAML; a split that is missing
            or is neither a folder nor a .txt list; a label line that does not
            hold 5 numbers, or whose class is not a whole number (file and
            line).
    """
    path = Path(path)
    path_kind(path)
    data_yaml = _find_yaml(path)
    if data_yaml is not None:
        if images is not None:
            raise ImbstatError("the data YAML names the images; pass images only with a folder of labels", data_yaml)
        root, names, items, has_images = _from_yaml(data_yaml, split)
    else:
        root, names, items, has_images = _from_folder(path, split, images)
    if not items:
        raise ImbstatError("no annotations found; expected image files or labels/*.txt", path)
    problems: list[Problems] = []
    items = _unique(items, problems)

    inside = str(root) + os.sep

    def where(file: str) -> str:
        """The file relative to the dataset folder, with "/" separators."""
        return (file.removeprefix(inside) if file.startswith(inside) else file).replace(os.sep, "/")

    width, height = np.ones(len(items)), np.ones(len(items))
    known = np.zeros(len(items), bool)
    for i, item in enumerate(items):
        if item.image is not None:
            # Header only, EXIF rotation applied as Ultralytics' exif_size does; -1 if unrecognised.
            # A size out of range (a forged header) is excluded by assemble as invalid_image_size.
            with open_input(item.image, "an image file") as f:
                w, h = imagesize.get(f)
            if w > 0 and h > 0:
                width[i], height[i], known[i] = w, h, True
    orphans = [where(item.label) for item in items if item.image is None and item.label is not None]
    if has_images and orphans:
        problems.append(Problems.of(Reason.UNLABELLED_FILE, orphans))
    image_table = Images(
        np.asarray([item.image_id for item in items], object),
        np.asarray(["" if item.image is None else where(item.image) for item in items], object),
        width,
        height,
        known,
    )

    labelled = [(i, item.label) for i, item in enumerate(items) if item.label is not None]
    rows = [_read_labels(label) for _, label in labelled]
    counts = np.fromiter((len(r) for r in rows), np.int64, len(rows))
    table = np.concatenate(rows) if rows else np.zeros((0, 5))  # [N, 5] class cx cy w h
    box_image = np.repeat(np.asarray([i for i, _ in labelled], np.int64), counts)
    box_file = np.repeat(np.arange(len(labelled)), counts)
    file_start = np.concatenate([[0], np.cumsum(counts)])

    def describe_row(r: int) -> tuple[str, str]:
        """(label file, "line N") of box row ``r``."""
        label = labelled[box_file[r]][1]
        return label, f"line {_box_lines(label)[r - file_start[box_file[r]]]}"

    def describe(box_rows: np.ndarray) -> list[str]:
        return [f"{where(label)} ({line})" for label, line in map(describe_row, box_rows)]

    # Whole and finite (checked per file); outside 0..MAX_CLASS_INDEX no class can match: -1, unknown.
    named = (table[:, 0] >= 0) & (table[:, 0] <= MAX_CLASS_INDEX)
    classes = np.where(named, table[:, 0], -1).astype(np.int64)
    if names is None:
        top = int(table[:, 0].max()) if len(table) else -1
        if top >= MAX_UNNAMED_CLASSES:
            r = int(np.argmax(table[:, 0]))
            raise ImbstatError(
                f"class index {_whole(table[r, 0])} without class names would make {_whole(table[r, 0] + 1)} classes; "
                f"expected an index below {MAX_UNNAMED_CLASSES}, or the names in a data YAML or classes.txt",
                *describe_row(r),
            )
        names = {k: str(k) for k in range(top + 1)}
    category_id = np.asarray(sorted(names), np.int64)
    categories = Categories(category_id, np.asarray([names[k] for k in category_id], object))
    centre, size = table[:, 1:3], table[:, 3:5]
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN corners are counted by assemble
        corners = np.hstack([centre - size / 2, centre + size / 2])  # [N, 4] normalised x1 y1 x2 y2
    # cx + w/2 of a box touching the border rounds to 1 +- 1 ulp; snap so that it is not reported as clipped.
    for edge in (0.0, 1.0):
        corners[np.abs(corners - edge) <= EDGE_TOLERANCE] = edge
    boxes = Boxes.build(box_image, index_of(category_id, classes), corners)

    def describe_images(rows: np.ndarray) -> list[str]:
        return [where(items[i].image or "") for i in rows]  # only images with a file have a known size

    return assemble(
        str(path), "yolo", image_table, categories, boxes, describe, problems, normalized=True,
        describe_images=describe_images,
    )  # fmt: skip


def _find_yaml(path: Path) -> Path | None:
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return path
        raise ImbstatError("expected a data YAML or a folder of YOLO labels", path)
    found = data_yamls(path)
    if len(found) > 1:
        raise ImbstatError(f"several YAML files ({', '.join(p.name for p in found)}); pass one of them", path)
    return found[0] if found else None


def _from_yaml(data_yaml: Path, split: str | None) -> tuple[Path, dict[int, str] | None, list[_Item], bool]:
    """(dataset folder, names, items, True) from an Ultralytics data YAML."""
    doc = read_data_yaml(data_yaml)
    names = class_names(doc, data_yaml)
    # normpath, not resolve: ids and locations are lexical paths relative to this folder.
    root = _normal(data_yaml.parent / str(doc.get("path") or ""))
    listed = [s for s in SPLITS if doc.get(s)]
    if split is not None and not doc.get(split):
        raise ImbstatError(f"split {split!r} is not in the data YAML; expected one of {', '.join(listed)}", data_yaml)
    if split is None and not listed:
        raise ImbstatError("no split listed; expected train, val or test", data_yaml)
    items: list[_Item] = []
    for key in [split] if split else listed:
        entries = doc[key] if isinstance(doc[key], list) else [doc[key]]
        for entry in entries:
            source = _normal(root / str(entry))
            if isinstance(entry, str) and source.is_dir():
                items += _pair(source, _label_path(source), _image_id_prefix(source, root))
            elif isinstance(entry, str) and source.suffix == ".txt" and source.is_file():
                items += _listed(source, root)
            else:
                raise ImbstatError(
                    f"{entry!r} is not a folder or a .txt list of images (looked for {source}); "
                    "expected a folder of images, a list of folders or a .txt list",
                    data_yaml,
                    key,
                )
    return root, names, items, True


def _from_folder(
    path: Path, split: str | None, images: str | Path | None
) -> tuple[Path, dict[int, str] | None, list[_Item], bool]:
    """(dataset folder, names, items, whether an images folder exists) without a YAML."""
    if (path / "labels").is_dir():
        labels, root = path / "labels", path
    else:
        labels, root = path, path.parent if path.name == "labels" else path
    if images is not None:
        image_dir: Path | None = Path(images)
        if not image_dir.is_dir():
            raise ImbstatError("no such folder; expected a folder of images", image_dir)
    else:
        image_dir = labels.parent / "images" if labels.name == "labels" else None
        image_dir = image_dir if image_dir is not None and image_dir.is_dir() else None
    names = _classes_txt(labels / "classes.txt")
    skip = frozenset([str(labels / "classes.txt")])  # names, not boxes
    prefix = ""
    if split is not None:
        if not (labels / split).is_dir():
            raise ImbstatError(f"no folder for split {split!r}; expected {labels / split}", path)
        labels, prefix = labels / split, f"{split}/"
        image_dir = image_dir / split if image_dir is not None else None
    return root, names, _pair(image_dir, labels, prefix, skip), image_dir is not None


def _classes_txt(file: Path) -> dict[int, str] | None:
    if not file.is_file():
        return None
    lines = [line.strip() for line in read_text(file, "class names").splitlines()]
    return dict(enumerate(line for line in lines if line))


def _pair(image_dir: Path | None, label_dir: Path, prefix: str, skip: frozenset[str] = frozenset()) -> list[_Item]:
    """Images under ``image_dir`` and label files under ``label_dir``, matched by relative path.

    Images come first in path order (with their label file or None), then the
    label files no image matched.
    """
    image_files = _files(image_dir, IMAGE_SUFFIXES)
    label_files = _files(label_dir, frozenset([".txt"]), skip)
    items = [_Item(prefix + key, image, label_files.pop(key, None)) for key, image in image_files.items()]
    return items + [_Item(prefix + key, None, label) for key, label in label_files.items()]


def _files(folder: Path | None, suffixes: frozenset[str], skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """``{relative path without suffix, "/"-separated: path}`` of the files under ``folder``, sorted."""
    if folder is None or not folder.is_dir():
        return {}
    found = {}
    start = len(str(folder)) + 1
    for file in list_folder(folder, recursive=True):
        stem, suffix = os.path.splitext(file)
        if suffix.lower() in suffixes and file not in skip:
            found[stem[start:].replace(os.sep, "/")] = file
    return dict(sorted(found.items()))


def _listed(listing: Path, root: Path) -> list[_Item]:
    """Images listed one per line in a .txt split file, relative to the list's folder."""
    items = []
    for number, line in enumerate(read_text(listing, "a list of image paths").splitlines(), 1):
        if not line.strip():
            continue
        image = _normal(listing.parent / line.strip())
        if not image.is_file():
            raise ImbstatError(f"image not found; expected {image}", listing, f"line {number}")
        label = _label_path(image).with_suffix(".txt")
        image_id = _image_id_prefix(image.parent, root) + image.stem
        items.append(_Item(image_id, str(image), str(label) if label.is_file() else None))
    return items


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(path))


def _label_path(image_path: Path) -> Path:
    """Ultralytics' img2label_paths: the last ``images`` folder of the path becomes ``labels``."""
    parts = list(image_path.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts)
    return image_path


def _image_id_prefix(image_dir: Path, root: Path) -> str:
    """``train/`` for ``<root>/images/train``: the folder relative to the root, without ``images``."""
    if not image_dir.is_relative_to(root):
        return image_dir.name + "/"
    parts = image_dir.relative_to(root).parts
    parts = parts[1:] if parts and parts[0] == "images" else parts
    return "".join(p + "/" for p in parts)


def _unique(items: list[_Item], problems: list[Problems]) -> list[_Item]:
    """Each image id once: the same file listed by two splits silently, a different file as a problem."""
    seen: dict[str, str | None] = {}
    out, repeats = [], []
    for item in items:
        file = item.image or item.label
        if item.image_id not in seen:
            seen[item.image_id] = file
            out.append(item)
        elif seen[item.image_id] != file:
            repeats.append(f"{file} (id {item.image_id})")
    if repeats:
        problems.append(Problems.of(Reason.DUPLICATE_IMAGE_ID, repeats))
    return out


def _read_labels(label: str) -> np.ndarray:
    """[n, 5] float64 ``class cx cy w h`` of one label file, checked line by line only on error.

    Classes are whole and finite; coordinates may be anything float() reads (NaN and inf are counted later).
    """
    text = read_text(label, "YOLO labels")
    values = text.split()
    # Fast path: every non-empty line holds 5 words and every word is a number.
    if len(values) % 5 == 0 and set(map(len, map(str.split, text.splitlines()))) <= {0, 5}:
        try:
            table = np.array(values, np.float64).reshape(-1, 5)
        except ValueError:
            table = None
        if table is not None and (np.isfinite(table[:, 0]) & (table[:, 0] == np.floor(table[:, 0]))).all():
            return table
    _raise_bad_line(label, text)
    raise AssertionError("unreachable: _raise_bad_line found no bad line")


def _raise_bad_line(label: str, text: str) -> None:
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words:
            continue
        if len(words) != 5:
            raise ImbstatError(f"expected 5 values 'class cx cy w h', got {len(words)}", label, f"line {number}")
        for word in words:
            try:
                float(word)
            except ValueError:
                raise ImbstatError(f"expected a number, got {word!r}", label, f"line {number}") from None
        if not float(words[0]).is_integer():
            raise ImbstatError(f"expected a whole-number class index, got {words[0]!r}", label, f"line {number}")


def _box_lines(label: str) -> list[int]:
    """1-based line numbers of the non-empty lines of a label file (for problem locations)."""
    lines = read_text(label, "YOLO labels").splitlines()
    return [number for number, line in enumerate(lines, 1) if line.strip()]


def _whole(value: float) -> str:
    """A whole float as its digits while exact (2^53), else in exponent form."""
    return str(int(value)) if abs(value) < 2**53 else f"{value:g}"
