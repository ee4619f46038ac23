"""COCO JSON decoded with msgspec into typed records, and its errors said as the document names them.

The records name only the fields the loader uses: polygons and RLE masks are
skipped by the parser. :func:`decode` is the one place a COCO text becomes
records or an ImbstatError, for the whole-file read and the streamed one alike.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from imbstat.data.json_keys import root_arrays
from imbstat.data.json_stream import MAX_DEPTH
from imbstat.errors import ImbstatError


# gc=False: records hold only numbers, strings, tuples of floats and (an annotation's area) a decoded JSON value,
# a tree: so they can be in no reference cycle.
# Untracked, the million records of a COCO train file cost the cyclic collector nothing: tracked, its
# collections during the decode walked them again and again (half of msgspec's time on COCO train).
class ImageRecord(msgspec.Struct, gc=False):
    id: int | str
    width: float
    height: float
    file_name: str | msgspec.UnsetType = msgspec.UNSET  # "" when absent; UNSET tells how many give it (json_keys)


class AnnotationRecord(msgspec.Struct, gc=False):
    image_id: int | str
    category_id: int | str
    bbox: tuple[float, float, float, float]
    iscrowd: int | msgspec.UnsetType = msgspec.UNSET  # 0 when absent; UNSET tells how many give it (json_keys)
    # Any JSON value: one that is not a finite number >= 0 is counted (invalid_area), not a refused file
    area: Any = msgspec.UNSET
    id: int | str | None = None


class CategoryRecord(msgspec.Struct, gc=False):
    id: int | str
    name: str
    supercategory: str | None = None
    frequency: str | None = None  # LVIS: "r", "c" or "f"


class CocoFile(msgspec.Struct):
    images: list[ImageRecord]
    categories: list[CategoryRecord]
    annotations: list[AnnotationRecord] = []


# A key given twice keeps its last value in JSON parsers, silently. The loader reads every array of a
# root key given twice, in file order (as the streamed read meets them), keeps the last value of a field
# given twice in a record, and counts each repeat as a duplicate_key problem, in both read paths.
KINDS: dict[str, type] = {"images": ImageRecord, "annotations": AnnotationRecord, "categories": CategoryRecord}
FIELDS = {key: [f.encode_name for f in msgspec.structs.fields(kind)] for key, kind in KINDS.items()}


class Truncated(Exception):
    """The text ends inside a value: an error only where the text is the whole document."""


# The whole-file read decodes first with this many levels of recursion left to msgspec, and scans
# for a too-deep bracket (json_stream.too_deep, a pass over every byte) only where that decode fails.
# Half of MAX_DEPTH: msgspec spends a recursion level per nesting level, so a document it decodes
# within them is at most about as deep, far from MAX_DEPTH; _PROBES checks that on this interpreter.
HEADROOM = MAX_DEPTH // 2
_PROBES = [  # HEADROOM + 1 brackets deep, through the typed records and through a skipped root value
    b'{"images":[{"x":' + b"[" * (HEADROOM - 2) + b"]" * (HEADROOM - 2) + b'}],"categories":[]}',
    b'{"x":' + b"[" * HEADROOM + b"]" * HEADROOM + b',"images":[],"categories":[]}',
]
_bounded: list[bool] = []  # whether the lowered limit stops msgspec at HEADROOM levels here (found once)


class Unproven(Exception):
    """A ``shallow`` decode failed: the text may be invalid or too deep; the caller's exact checks decide."""


_NAN = re.compile(rb"\b(NaN|Infinity)\b")  # -Infinity too
_STAND_IN = {b"NaN": b"0.0", b"Infinity": b"1.000000"}  # floats of the same length
_BYTE = re.compile(r"\s*\(byte (\d+)\)")
# What a COCO document needs where a value was missing or wrong, by the JSON path's record kind.
_RECORD = {
    "images": "an image record with id, width and height",
    "annotations": "an annotation with image_id, category_id and bbox [x, y, width, height]",
    "categories": "a category with id and name",
}
_DOCUMENT = "a COCO instances document: an object with images, annotations and categories arrays"
# What was expected instead, for each of msgspec's (and json's) complaints that says only what is wrong.
_EXPECTED = {
    "trailing characters": "only whitespace after the document's closing '}'",
    "trailing comma": "another value after ',' (JSON has no trailing commas)",
    "object keys must be strings": "a key in double quotes",
    "invalid escape": 'one of \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX in a string',
    "unicode escape": "four hex digits after \\u",
    "hex escape": "four hex digits after \\u",
    "surrogate pair": "a low surrogate \\uDC00-\\uDFFF after a high one",
    "invalid number": "a JSON number such as 12, -3.5 or 1e-3",
    "UTF-8": "UTF-8 text",
    "Number out of range": "a number of magnitude below 1.8e308 (float64)",
    "Integer value out of range": f"an integer of at most {sys.get_int_max_str_digits()} digits",
}


def _expected(message: str, where: str | None = None) -> str:
    """``message``, with what was expected where it says only what is wrong (``where``: its JSON path)."""
    if re.search(r"\bexpected\b", message, re.IGNORECASE):  # not "unexpected"
        return message
    for found, expected in _EXPECTED.items():
        if found in message:
            return f"{message}; expected {expected}"
    if "missing required field" in message:
        record = re.match(r"\$\.(\w+)\[\d+\]$", where or "")
        return f"{message}; expected {_RECORD.get(record.group(1), _DOCUMENT) if record else _DOCUMENT}"
    return f"{message}; expected a COCO instances JSON document"


def decode(
    text: bytes,
    kind: Any,
    path: Path,
    at: Callable[[int], int] = int,
    rename: Callable[[str], str] = str,
    before: int | None = None,
    shallow: bool = False,
) -> Any:
    """``text`` decoded as ``kind``; raises ImbstatError (or Truncated) naming the document's position.

    ``at`` maps a byte offset in ``text`` to the file's, ``rename`` a JSON path in it to the document's:
    the whole-file and streamed loads share this one function, so they say the same about the same bytes.
    With ``before``, the text is cut at that file offset (a too-deep bracket): an error found there
    (a number cut short) is not one. With ``shallow``, only a valid text at most HEADROOM levels deep
    is decoded (see :func:`decode_shallow`); anything else raises Unproven.
    """
    if shallow:
        found = decode_shallow(text, kind)
        if found is None:
            raise Unproven
        return found
    try:
        return msgspec.json.decode(text, type=kind)
    except msgspec.ValidationError as e:
        raise _invalid(e, path, rename) from None
    except msgspec.DecodeError as e:
        if _NAN.search(text):  # Python's json.dump writes NaN; accept it like json.load does
            return _decode_lenient(text, kind, path, at, rename, before)
        message = str(e)
        if "truncated" in message:
            raise Truncated from None
        found = _BYTE.search(message)
        # msgspec places trailing characters one past the first of them
        k = int(found.group(1)) - ("trailing characters" in message) if found else None
        offset = None if k is None else at(k)
        if before is not None and offset is not None and offset >= before:
            raise Truncated from None
        position = None if offset is None else f"byte {offset}"
        if offset == 0 and text.startswith(b"\xef\xbb\xbf"):
            raise ImbstatError("JSON starts with a byte-order mark; expected '{' (save the file as UTF-8 without BOM)",
                               path, position) from None  # fmt: skip
        raise ImbstatError(_expected(_BYTE.sub("", message)), path, position) from None
    except RecursionError:  # not reached within MAX_DEPTH unless the caller's own stack is deep
        message = f"JSON nested too deeply for the decoder; expected at most {MAX_DEPTH} levels"
        raise ImbstatError(message, path) from None


def decode_shallow(text: bytes, kind: Any) -> Any:
    """``text`` decoded as ``kind`` where it is valid and at most HEADROOM (< MAX_DEPTH) levels deep, else None.

    msgspec runs with the recursion limit lowered to HEADROOM levels above the caller, so that a
    document it decodes is proven shallow and needs no depth scan. None (invalid, deeper, or an
    interpreter whose limit does not bound msgspec, as from Python 3.12 on) leaves the caller's
    exact checks to decide, as if this were not called: its errors are theirs.
    """
    if not _bounded:
        _bounded.append(all(_limited(probe, CocoFile) is _TOO_DEEP for probe in _PROBES))
    if not _bounded[0]:
        return None
    found = _limited(text, kind)
    return None if found is _TOO_DEEP or found is _INVALID else found


_TOO_DEEP, _INVALID = object(), object()


def _limited(text: bytes, kind: Any) -> Any:
    """msgspec's decode with HEADROOM recursion levels left; _TOO_DEEP or _INVALID where it fails."""
    frame, frames = sys._getframe(), 0
    while frame is not None:
        frames, frame = frames + 1, frame.f_back
    old = sys.getrecursionlimit()
    try:
        # msgspec holds the GIL while it decodes: no other thread runs under the lowered limit
        sys.setrecursionlimit(frames + HEADROOM)
        return msgspec.json.decode(text, type=kind)
    except RecursionError:
        return _TOO_DEEP
    except msgspec.MsgspecError:
        return _INVALID
    finally:
        sys.setrecursionlimit(old)


def _decode_lenient(
    text: bytes, kind: Any, path: Path, at: Callable[[int], int], rename: Callable[[str], str], before: int | None
) -> Any:
    """``text`` with NaN / Infinity, as Python's json.dump writes them, decoded as json.load reads them.

    msgspec first reads a copy with floats of the same length in their place, so that anything
    else wrong is its error at its byte, whichever part of a document holds a NaN.
    """
    decode(_NAN.sub(lambda m: _STAND_IN[m.group(0)], text), kind, path, at, rename, before)
    # json.load's values; the text is msgspec's valid JSON, so only what msgspec skipped can upset json
    # (bytes that are not UTF-8, integers over 4300 digits), and that is skipped here too
    obj = json.loads(text.decode("utf-8", "surrogateescape"), parse_int=_skipped_int)
    if kind is msgspec.Raw:
        return None
    try:
        return msgspec.convert(obj, type=kind)
    except msgspec.ValidationError as e:
        raise _invalid(e, path, rename) from None


def _skipped_int(digits: str) -> int:
    """An integer as json.load reads it; 0 beyond Python's digit limit (msgspec refused those in our fields)."""
    return int(digits) if len(digits) <= sys.get_int_max_str_digits() else 0


def _invalid(e: msgspec.ValidationError, path: Path, rename: Callable[[str], str]) -> ImbstatError:
    message, _, where = str(e).partition(" - at ")
    where = rename(where.strip("`") or "$")
    return ImbstatError(_expected(message.replace("`", "'"), where), path, where)


def ends_early(path: Path, end: int) -> ImbstatError:
    return ImbstatError("JSON ends early; expected the rest of the document", path, f"byte {end}")


def nested(path: Path, offset: int) -> ImbstatError:
    return ImbstatError(
        f"JSON nested deeper than {MAX_DEPTH} levels; expected a COCO instances document (about 5 deep)",
        path,
        f"byte {offset}",
    )


def renamer(key: str, first: int) -> Callable[[str], str]:
    """The JSON path in an array's text (``$[i]...``) as the document names it: element ``first + i`` of ``key``.

    The arrays of a root key given twice count on from one to the next, as the streamed read meets them.
    """

    def rename(where: str) -> str:
        found = re.match(r"\$\[(\d+)\](.*)", where)
        return f"$.{key}[{first + int(found.group(1))}]{found.group(2)}" if found else f"$.{key}"

    return rename


def decode_arrays(raw: bytes, arrays: list[tuple[str, int, int]], path: Path) -> CocoFile:
    """The document with each root array given twice read in full: (key, "[" offset, "]" offset) in file order."""
    lists: dict[str, list] = {key: [] for key in KINDS}
    for key, start, end in arrays:
        rename = renamer(key, len(lists[key]))
        lists[key] += decode(raw[start : end + 1], list[KINDS[key]], path, start.__add__, rename)
    return CocoFile(**lists)


def raise_as_streamed(raw: bytes, path: Path) -> None:
    """Where a root array repeats, raise the error of its element as the streamed read names it.

    The decoder counts the elements of each copy from 0; the streamed read counts on from
    the first copy. Where the document is not well-formed past the error, nothing is raised.
    """
    try:
        arrays = root_arrays(raw, FIELDS)
    except (IndexError, ValueError):  # the scan met bytes past the error that are no JSON
        return
    if arrays is not None:
        with contextlib.suppress(Truncated):  # an array cut short: the document's own error stands
            decode_arrays(raw, arrays, path)
