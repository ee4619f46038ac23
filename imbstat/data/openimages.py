"""Open Images box CSV, class descriptions and image sizes (docs/design.md, 'Data model').

The box CSV has one row per box (``ImageID, Source, LabelName, Confidence, XMin,
XMax, YMin, YMax, IsOccluded, IsTruncated, IsGroupOf, IsDepiction, IsInside``)
with coordinates normalised to [0, 1]; the train file has 14M rows, so it is
read by pandas' C parser into columns and never visited row by row. Image sizes
are not in it: they come from a sizes CSV or the image files' headers, and are
unknown (``width == height == 1``, ``size_known`` False) otherwise.
"""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import imagesize
import numpy as np

from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble
from imbstat.data.ids import concat_columns, index_of
from imbstat.data.source import list_folder, open_input
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

REQUIRED = ("ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax")
_COORDINATES = ("XMin", "YMin", "XMax", "YMax")  # xyxy order
# The spellings of a missing number that pandas' float parser leaves to its NA list.
NA_STRINGS = ["", "nan", "NaN", "NAN", "-nan", "-NaN", "NA", "N/A", "n/a", "null", "NULL", "None"]
CHUNK_ROWS = 1 << 21
EXPECTED_BOXES = "an Open Images box CSV"
EXPECTED_SIZES = "a sizes CSV ImageID,Width,Height"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_openimages(
    path: str | Path,
    classes: str | Path | None = None,
    sizes: str | Path | None = None,
    images: str | Path | None = None,
) -> Dataset:
    """Load an Open Images box CSV into a Dataset.

    Args:
        path: the box CSV; only ``ImageID, LabelName, XMin, XMax, YMin, YMax``
            are required, ``IsGroupOf`` (1 = group-of) is read when present.
        classes: class descriptions CSV ``LabelName,DisplayName`` (no header in
            the official file; a first row ``LabelName,DisplayName`` is taken
            as a header). Categories are all its classes in file order; boxes
            of a LabelName it lacks get :attr:`Reason.UNKNOWN_CATEGORY`.
            Without it, categories are the sorted LabelNames of the boxes and
            names are the LabelNames.
        sizes: CSV ``ImageID,Width,Height`` in pixels (header optional).
        images: a folder holding ``<ImageID>.jpg`` (or another image suffix),
            whose headers give the sizes; used for images ``sizes`` lacks.

    Images are the distinct ImageIDs in order of first appearance. Images of
    unknown size keep their boxes in normalised units (see :mod:`dataset`);
    a known size that is not a :func:`~imbstat.data.dataset.valid_image_size`
    excludes the image (:attr:`Reason.INVALID_IMAGE_SIZE`). Problem locations are
    ``line N``, the 1-based line of the file where the box's row starts (header =
    line 1; a quoted field may span lines, blank lines are skipped).

    Raises:
        ImbstatError: unreadable CSV, missing required columns (line 1), a
            non-numeric coordinate or IsGroupOf (line and column), a malformed
            classes or sizes file.
    """
    path = Path(path)
    columns = _read_boxes(path)
    image_id = columns.image_id
    width, height, size_source = _image_sizes(image_id, sizes, images)
    known = size_source != ""
    images_table = Images(  # assemble excludes the known sizes that are invalid
        image_id,
        np.asarray([f"{i}.jpg" for i in image_id], object),
        np.where(known, width, 1.0),
        np.where(known, height, 1.0),
        known,
    )
    if classes is None:
        order = np.argsort(columns.label_name.astype(str), kind="stable")
        categories = Categories(columns.label_name[order], columns.label_name[order].copy())
    else:
        categories = _read_classes(Path(classes))
    # One lookup per distinct label, then a gather per box; the appended -1 maps code -1 (empty) to -1.
    label_category = np.append(index_of(categories.category_id, columns.label_name), -1)
    image_row = np.append(np.arange(len(image_id)), -1)
    boxes = Boxes.build(
        image_row[columns.image_code],
        label_category[columns.label_code],
        columns.xyxy,
        group_of=columns.group_of,
    )

    def describe(rows: np.ndarray) -> list[str]:
        return [f"line {n}" for n in _record_lines(path, rows + 1, len(columns.image_code) + 1)]

    def describe_images(rows: np.ndarray) -> list[str]:
        return [f"{size_source[i]} (ImageID {image_id[i]})" for i in rows]

    return assemble(
        str(path), "openimages", images_table, categories, boxes, describe, normalized=True,
        describe_images=describe_images,
    )  # fmt: skip


@dataclass(frozen=True)
class _BoxColumns:
    image_code: np.ndarray  # [N] int64 row into image_id, -1 where ImageID is empty
    image_id: np.ndarray  # [I] object str, in order of first appearance
    label_code: np.ndarray  # [N] int64 row into label_name, -1 where LabelName is empty
    label_name: np.ndarray  # [L] object str, in order of first appearance
    xyxy: np.ndarray  # [N, 4] float64 normalised XMin, YMin, XMax, YMax
    group_of: np.ndarray | None  # [N] bool IsGroupOf == 1, None without the column


class _Codes:
    """Integer codes for strings read chunk by chunk, numbered in order of first appearance."""

    def __init__(self) -> None:
        self.uniques = pd.Index([], dtype=object)

    def __call__(self, values: pd.Series) -> np.ndarray:
        codes, uniques = pd.factorize(values)  # NaN (empty field) -> -1
        where = self.uniques.get_indexer(uniques)
        new = where < 0
        where[new] = np.arange(len(self.uniques), len(self.uniques) + int(new.sum()))
        self.uniques = self.uniques.append(pd.Index(uniques[new], dtype=object))
        return np.append(where, -1)[codes]


def _read_boxes(path: Path) -> _BoxColumns:
    """The box CSV's used columns, read in chunks so that only one chunk's strings are alive at a time."""
    try:
        with open_input(path, EXPECTED_BOXES) as f:
            # header=None: the names as written (pandas renames a repeated column "XMin.1")
            header = pd.read_csv(f, header=None, nrows=1, dtype=str, keep_default_na=False).iloc[0].tolist()
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise _read_error(e, path) from None
    repeated = sorted({c for c in header if header.count(c) > 1} & {*REQUIRED, "IsGroupOf"})
    if repeated:  # which copy holds the boxes? pandas would take the first, silently
        raise ImbstatError(f"column {repeated[0]} given twice in the header; expected each column once", path, "line 1")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise ImbstatError(
            f"missing columns {', '.join(missing)}; expected an Open Images box CSV header with " + ", ".join(REQUIRED),
            path,
            "line 1",
        )
    numeric = [*_COORDINATES, *(["IsGroupOf"] if "IsGroupOf" in header else [])]
    # Ids stay strings ("007" is not 7): dtype "category" would infer integers. Only an empty field is
    # missing in an id; numbers also accept the usual NaN spellings.
    dtypes = {"ImageID": str, "LabelName": str} | dict.fromkeys(numeric, np.float64)
    missing_values = {"ImageID": [""], "LabelName": [""]} | dict.fromkeys(numeric, NA_STRINGS)
    images, labels = _Codes(), _Codes()
    parts = []
    try:
        with (
            open_input(path, EXPECTED_BOXES) as f,
            pd.read_csv(
                f,
                usecols=["ImageID", "LabelName", *numeric],
                dtype=dtypes,
                keep_default_na=False,
                na_values=missing_values,
                chunksize=CHUNK_ROWS,
            ) as reader,
        ):
            for chunk in reader:
                values = chunk[numeric].to_numpy(np.float64)
                group_of = values[:, 4] == 1 if len(numeric) > 4 else np.zeros(0, bool)
                parts.append([images(chunk["ImageID"]), labels(chunk["LabelName"]), values[:, :4].copy(), group_of])
    except ValueError as e:
        if isinstance(e, pd.errors.ParserError | pd.errors.EmptyDataError):
            raise _read_error(e, path) from None
        _raise_non_numeric(path, numeric)
        raise ImbstatError(f"cannot read the box CSV: {e}", path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise _read_error(e, path) from None
    empty = [np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, bool)]
    image_code, label_code, xyxy, group_of = concat_columns(parts) if parts else empty
    return _BoxColumns(
        image_code,
        np.asarray(images.uniques, object),
        label_code,
        np.asarray(labels.uniques, object),
        xyxy,
        group_of if len(numeric) > 4 else None,
    )


def _raise_non_numeric(path: Path, columns: list[str]) -> None:
    """Raise naming the first line and column whose value is not a number (slow path: errors only)."""
    with open_input(path, EXPECTED_BOXES) as f:
        text = pd.read_csv(f, usecols=columns, dtype=str, keep_default_na=False)
    first: tuple[int, str, str] | None = None
    for column in columns:
        values = text[column]
        numbers = pd.to_numeric(values.where(~values.isin(NA_STRINGS), "nan"), errors="coerce")
        bad = np.flatnonzero((numbers.isna() & ~values.isin(NA_STRINGS)).to_numpy())
        if bad.size and (first is None or bad[0] < first[0]):
            first = (int(bad[0]), column, values.iloc[bad[0]])
    if first is not None:
        row, column, value = first
        line = _record_lines(path, np.array([row + 1]), len(text) + 1)[0]
        raise ImbstatError(f"expected a number, got {value!r}", path, f"line {line}, column {column}")


def _read_error(e: Exception, path: Path) -> ImbstatError:
    if isinstance(e, OSError):
        return ImbstatError(f"cannot read file: {e.strerror}", path)
    if isinstance(e, pd.errors.EmptyDataError):
        return ImbstatError("empty file; expected a CSV header line", path)
    if isinstance(e, UnicodeDecodeError):
        return ImbstatError(f"not UTF-8 text ({e.reason}); expected a CSV file", path, f"byte {e.start}")
    message = str(e).removeprefix("Error tokenizing data. C error: ")
    found = re.search(r"line (\d+)", message)
    position = f"line {found.group(1)}" if found else None
    found = re.search(r"starting at row (\d+)", message)
    if found:  # the quote left open runs to the end: it opens in the file's last row
        position = f"line {_record_lines(path, np.array([-1]))[0]}"
        message = message[: found.start()].rstrip() + "; expected a closing quote"
    return ImbstatError(f"malformed CSV: {message}", path, position)


def _read_classes(path: Path) -> Categories:
    """Class descriptions ``LabelName,DisplayName`` as categories in file order."""
    label_names: list[str] = []
    display_names: list[str] = []
    seen: dict[str, int] = {}
    try:
        with io.TextIOWrapper(open_input(path, "a class descriptions CSV"), encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            end = 0
            for row in reader:
                number, end = end + 1, reader.line_num  # the row's first line: a quoted field may span lines
                if not label_names and row == ["LabelName", "DisplayName"]:
                    continue
                if not row:
                    continue
                if len(row) != 2:
                    raise ImbstatError(
                        f"expected 2 fields 'LabelName,DisplayName', got {len(row)}", path, f"line {number}"
                    )
                if row[0] in seen:
                    raise ImbstatError(
                        f"LabelName {row[0]!r} repeats line {seen[row[0]]}; expected unique classes",
                        path,
                        f"line {number}",
                    )
                seen[row[0]] = number
                label_names.append(row[0])
                display_names.append(row[1])
    except OSError as e:
        raise _read_error(e, path) from None
    except (UnicodeDecodeError, csv.Error) as e:
        raise ImbstatError(f"malformed class descriptions CSV: {e}", path) from None
    if not label_names:
        raise ImbstatError("no classes; expected rows LabelName,DisplayName (header optional)", path)
    return Categories(np.asarray(label_names, object), np.asarray(display_names, object))


def _image_sizes(
    image_id: np.ndarray, sizes: str | Path | None, images: str | Path | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(width, height, source) per image: the sizes CSV first, then image headers.

    ``source[i]`` is the file that gave image ``i``'s size (the sizes CSV or the
    image file), "" where the size is unknown. Sizes are as given: assemble checks them.
    """
    n = len(image_id)
    width, height = np.full(n, np.nan), np.full(n, np.nan)
    source = np.full(n, "", object)
    if sizes is not None:
        table = _read_sizes(Path(sizes))
        row = index_of(table.index.to_numpy(), image_id)
        found = row >= 0
        width[found] = table["Width"].to_numpy()[row[found]]
        height[found] = table["Height"].to_numpy()[row[found]]
        source[found] = str(sizes)
    if images is not None:
        folder = Path(images)
        if not folder.is_dir():
            raise ImbstatError("no such folder; expected a folder of <ImageID>.jpg files", folder)
        files = _image_files(folder)
        for i in np.flatnonzero(source == ""):
            file = files.get(image_id[i])
            if file is not None:
                # Header only; -1 when the format is not recognised (the size stays unknown).
                with open_input(file, "an image file") as f:
                    w, h = imagesize.get(f)
                if w > 0 and h > 0:
                    width[i], height[i], source[i] = w, h, file
    return width, height, source


def _image_files(folder: Path) -> dict[str, str]:
    """``{stem: path}`` for the image files directly in ``folder`` (one directory listing)."""
    files: dict[str, str] = {}
    for file in list_folder(folder):
        stem, suffix = os.path.splitext(os.path.basename(file))
        if suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(stem, file)
    return files


def _read_sizes(path: Path) -> pd.DataFrame:
    """Sizes CSV as a frame indexed by ImageID (first row per id) with float Width, Height."""
    try:
        with open_input(path, EXPECTED_SIZES) as f:
            has_header = f.readline().decode("utf-8").split(",")[0].strip() == "ImageID"
            f.seek(0)
            if has_header:
                table = pd.read_csv(f, usecols=["ImageID", "Width", "Height"], dtype=str, keep_default_na=False)
            else:
                names = ["ImageID", "Width", "Height"]
                table = pd.read_csv(f, header=None, usecols=[0, 1, 2], names=names, dtype=str, keep_default_na=False)
    except ValueError as e:
        if isinstance(e, pd.errors.ParserError | pd.errors.EmptyDataError):
            raise _read_error(e, path) from None
        raise ImbstatError(f"{e}; expected columns ImageID,Width,Height", path, "line 1") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _read_error(e, path) from None
    if table.empty:  # no sizes at all is a wrong file, not images of unknown size
        if has_header:
            raise ImbstatError("no rows after the header; expected one row ImageID,Width,Height per image", path)
        raise ImbstatError("empty file; expected a header ImageID,Width,Height and one row per image", path)
    for column in ("Width", "Height"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            line = _record_lines(path, bad[:1] + has_header, len(table) + has_header)[0]
            raise ImbstatError(
                f"expected a number, got {table[column].iloc[bad[0]]!r}", path, f"line {line}, column {column}"
            )
        table[column] = values.astype(np.float64)
    return table.drop_duplicates("ImageID").set_index("ImageID")


def _record_lines(path: Path, records: np.ndarray, total: int | None = None) -> np.ndarray:
    """[R] int64: the 1-based line of the file where each CSV record starts, as pandas counts records.

    ``records`` are 0-based among the records pandas reads (the header is record 0 when there is
    one); -1 is the last. pandas skips blank and whitespace-only lines and lets a quoted field span
    lines, so a record's index is its line only when neither happens: with ``total`` (the records
    pandas read) that is checked by counting line ends, at memchr speed; otherwise the file is
    scanned with the csv module, which splits records as pandas' tokenizer does.
    """
    if total is not None and len(records) and records.min() >= 0 and _line_count(path) == total:
        return np.asarray(records, np.int64) + 1
    order = np.argsort(records % (1 << 62), kind="stable")  # -1 (the last) sorts after every other
    out = np.full(len(records), -1, np.int64)
    j, record, end, last = 0, 0, 0, 0
    limit = csv.field_size_limit()
    csv.field_size_limit(1 << 31)  # one field may be as long as the file
    try:
        with io.TextIOWrapper(open_input(path), encoding="utf-8", errors="replace", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                start, end = end + 1, reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                last = start
                while j < len(order) and records[order[j]] == record:
                    out[order[j]] = start
                    j += 1
                record += 1
                if j == len(order):
                    break
    finally:
        csv.field_size_limit(limit)
    out[records < 0] = last
    return out


def _line_count(path: Path) -> int:
    """Lines of the file, each ended by LF or CRLF; -1 when it holds a lone CR (a line end of its own to pandas)."""
    lines, lone_cr, tail = 0, 0, b""
    with open_input(path) as f:
        while chunk := f.read(16 << 20):
            lines += chunk.count(b"\n")
            lone_cr += chunk.count(b"\r") - chunk.count(b"\r\n") - (tail == b"\r" and chunk[:1] == b"\n")
            tail = chunk[-1:]
    return -1 if lone_cr else lines + (tail not in (b"", b"\n"))
