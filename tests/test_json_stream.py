"""The block-by-block JSON reader: whole elements from any block size, and the COCO loader streaming with it."""

from __future__ import annotations

import contextlib
import json
import sys

import numpy as np
import pytest
from helpers import (
    COCO_VAL_MINI,
    TINY_ANNOTATIONS,
    TINY_CATEGORIES,
    TINY_IMAGES,
    assert_same_dataset,
    coco_doc,
    needs_shared_data,
)

from imbstat import ImbstatError
from imbstat.data import coco as coco_module
from imbstat.data import json_stream
from imbstat.data.coco import load_coco
from imbstat.data.coco_decode import HEADROOM
from imbstat.data.json_stream import MAX_DEPTH, RootArrays, too_deep

# Strings that look like structure: brackets, quotes, escaped quotes, trailing backslashes, a fake key.
TRICKY = ["a{b", "c]d", 'q"uote', "back\\slash", "end\\", '\\"x', '"annotations": [', "}]}", "üé"]


def tricky_doc() -> dict:
    return {
        "info": {"description": 'x]}{["', "nested": {"a": [1, {"b": "]"}]}},
        "categories": [{"id": i + 1, "name": n} for i, n in enumerate(TRICKY)],
        "annotations": [
            {
                "id": i,
                "image_id": 1 + i % 2,
                "category_id": 1 + i % 9,
                "bbox": [1.5, 2, 3, 4],
                "segmentation": [[1, 2]],
                "note": TRICKY[i % 9],
            }
            for i in range(40)
        ],
        "licenses": [],
        "images": [{"id": 1, "width": 50, "height": 40, "file_name": "a]b.jpg"}, {"id": 2, "width": 9, "height": 9}],
    }


@pytest.mark.parametrize("indent", [None, 2])
def test_spans_rebuild_every_array_at_every_block_size(tmp_path, indent):
    doc = tricky_doc()
    path = tmp_path / "doc.json"
    path.write_text(json.dumps(doc, indent=indent, ensure_ascii=False))
    for block in [*range(1, 40), 97, 4096]:
        got: dict[str, list] = {"images": [], "annotations": [], "categories": []}
        for span in RootArrays(path, set(got), block):
            if span.typed:  # the others ("licenses") are only checked
                got[span.key] += json.loads(span.text)  # json.loads: an independent decoder
        assert got == {k: doc[k] for k in got}, block


def test_streamed_coco_equals_whole_decode(write_json):
    doc = tricky_doc()
    doc["annotations"].append({"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]})  # unknown image, dup id
    path = write_json(doc)
    for block in (13, 101, 1 << 16):
        assert_same_dataset(load_coco(path, stream=False), load_coco(path, stream=True, block_bytes=block))
    tiny = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES), "tiny.json")
    assert_same_dataset(load_coco(tiny, stream=False), load_coco(tiny, stream=True, block_bytes=7))


@needs_shared_data
def test_streamed_real_file_equals_whole_decode():
    assert_same_dataset(load_coco(COCO_VAL_MINI, stream=False), load_coco(COCO_VAL_MINI, stream=True, block_bytes=4099))


def test_streamed_errors_name_the_global_position(write_json):
    doc = tricky_doc()
    doc["annotations"][33]["image_id"] = 1.5
    path = write_json(doc)
    with pytest.raises(ImbstatError) as info:
        load_coco(path, stream=True, block_bytes=64)  # element 33 lies many spans in
    assert str(info.value) == f"{path} ($.annotations[33].image_id): Expected 'int | str', got 'float'"

    text = json.dumps(tricky_doc())
    truncated = write_json(text[:-30], "cut.json")
    with pytest.raises(ImbstatError, match=r"\(byte \d+\): JSON ends early; expected the rest of the document"):
        load_coco(truncated, stream=True, block_bytes=50)

    no_categories = write_json({"images": [{"id": 1, "width": 2, "height": 2}], "annotations": []}, "nocat.json")
    with pytest.raises(ImbstatError, match=r"\(\$\): Object missing required field 'categories'"):
        load_coco(no_categories, stream=True)


def test_streamed_empty_arrays(write_json):
    path = write_json({"images": [{"id": 1, "width": 2, "height": 2}], "categories": [], "annotations": []})
    ds = load_coco(path, stream=True, block_bytes=5)
    assert (ds.num_images, len(ds.boxes), len(ds.categories)) == (1, 0, 0)


def test_streamed_ids_of_mixed_kinds_across_spans(write_json):
    # int ids in early spans and string ids in later ones: the columns hold both, as a whole decode makes them
    doc = coco_doc([(1, 10, 10), (2, 10, 10), ("x", 10, 10)], [(1, 1, [1, 1, 2, 2], 0), ("x", "c", [1, 1, 2, 2], 0)],
                   [(1, "a"), ("c", "b")])  # fmt: skip
    path = write_json(doc)
    whole = load_coco(path, stream=False)
    assert whole.images.image_id.tolist() == [1, 2, "x"] and len(whole.boxes) == 2
    assert_same_dataset(whole, load_coco(path, stream=True, block_bytes=16))


# The whole-file read and the streamed read must accept and refuse the same documents, at the same byte.
_DOC = json.dumps(
    {
        "info": {"note": "a]}[ b"},
        "images": [{"id": 1, "width": 10, "height": 10}, {"id": 2, "width": 5, "height": 5}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], "segmentation": [[1, 2, 3]]},
            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [1, 1, 2, 2]},
        ],
        "licenses": [{"a": 1}, {"b": [1, 2]}],
        "categories": [{"id": 1, "name": "a"}],
    }
)
_CUT = _DOC.index('"bbox"', _DOC.index('"image_id": 2'))  # inside the second annotation
_TAIL = _DOC.index('"categories"') + len('"categories": ')  # where the categories' array opens


def _edit(old: str, new: str) -> str:
    assert old in _DOC
    return _DOC.replace(old, new, 1)


def _byte(fragment: str, shift: int) -> str:
    """The position ``shift`` bytes after ``fragment`` starts in _DOC."""
    return f"(byte {_DOC.index(fragment) + shift})"


_TRAILING = "JSON is malformed: trailing characters; expected only whitespace after the document's closing '}'"
_ANN2 = '}, {"id": 2, "image'  # between the two annotations
_ANN_END = '2]}], "licenses"'  # the end of the annotations' array
# (document, the start of the error it must give, or None for a valid one); positions worked out from the text
PARITY = {
    "valid": (_DOC, None),
    "pretty": (json.dumps(json.loads(_DOC), indent=2), None),
    "trailing whitespace": (_DOC + " \n\t\r ", None),
    "empty arrays": ('{"images": [{"id": 1, "width": 1, "height": 1}], "annotations": [ ], "categories": []}', None),
    "NaN in a box": (_edit("[1, 1, 2, 2]", "[NaN, 1, 2, 2]"), None),
    "-Infinity in info": (_edit('"info": {', '"info": {"x": -Infinity, '), None),
    "escaped key": (_edit('"annotations"', '"annot\\u0061tions"'), None),
    "trailing garbage": (_DOC + " xyz", f"(byte {len(_DOC) + 1}): {_TRAILING}"),
    "trailing NULs": (_DOC + "\0" * 300, f"(byte {len(_DOC)}): {_TRAILING}"),
    # the error is msgspec's, wherever the NaN is (json.load's messages differ)
    "NaN, then trailing garbage": (
        _edit("[1, 1, 2, 2]", "[NaN, 1, 2, 2]") + " xyz",
        f"(byte {len(_DOC) + 3}): {_TRAILING}",  # NaN is 2 bytes longer than 1
    ),
    "NaN in a name, then a bad value": (
        _edit('"name": "a"', '"name": "NaN"').replace('"image_id": 2', '"image_id": 2.5'),
        "($.annotations[1].image_id): Expected 'int | str', got 'float'",
    ),
    "NaN for an id": (_edit('"image_id": 2', '"image_id": NaN'), "($.annotations[1].image_id): Expected 'int | str'"),
    "two root objects": (_DOC + _DOC, f"(byte {len(_DOC)}): {_TRAILING}"),
    "extra closing bracket": (_DOC + "}", f"(byte {len(_DOC)}): {_TRAILING}"),
    "truncated": (_DOC[:_CUT], f"(byte {_CUT}): JSON ends early; expected the rest of the document"),
    "truncated, NUL padded": (  # where the JSON stops, not where the file does
        _DOC[:_CUT] + "\0" * 300,
        f"(byte {_CUT}): JSON is malformed: object keys must be strings; expected a key in double quotes",
    ),
    "truncated in a string": (_DOC[: _CUT + 3], f"(byte {_CUT + 3}): JSON ends early;"),
    "unclosed string at the end": (_DOC[:-1] + ', "x": "abc', f"(byte {len(_DOC) + 10}): JSON ends early;"),
    "NUL in a string": (_edit('"name": "a"', '"name": "a\0"'), _byte('"name": "a"', 10) + ": JSON is malformed"),
    "empty file": ("", "(byte 0): JSON ends early;"),
    "blank file": ("  \n", "(byte 3): JSON ends early;"),
    "array root": (f"[{_DOC}]", "($): Expected 'object', got 'array'"),
    "number root": ("12", "($): Expected 'object', got 'int'"),
    "string root": ('"abc"', "($): Expected 'object', got 'str'"),
    "byte order mark": ("\ufeff" + _DOC, "(byte 0): JSON starts with a byte-order mark; expected '{' (save"),
    "leading comma": (_edit('"annotations": [', '"annotations": [,'), _byte('"annotations": [', 16)),
    "missing comma": (_edit(_ANN2, _ANN2.replace(",", "", 1)), _byte(_ANN2, 2) + ": JSON is malformed: expected ','"),
    "double comma": (_edit(_ANN2, _ANN2.replace(",", ",,", 1)), _byte(_ANN2, 2) + ": JSON is malformed: invalid"),
    "trailing comma": (
        _edit(_ANN_END, '2]},], "licenses"'),
        _byte(_ANN_END, 4) + ": JSON is malformed: trailing comma in array; "
        "expected another value after ',' (JSON has no trailing commas)",
    ),
    "array closed by '}'": (
        _edit(_ANN_END, '2]}}, "licenses"'),
        _byte(_ANN_END, 3) + ": JSON is malformed: expected ',' or ']'",
    ),
    # msgspec places a bad literal after its first four bytes ("n [{")
    "array after no key": (_edit('"categories": [', '"categories": n ['), f"(byte {_TAIL + 4}): JSON is malformed"),
    "literal cut by an element's end": (_edit('"height": 5}', '"height": n}'), _byte('"height": 5}', 14)),
    "bad JSON in another array": (_edit('{"a": 1}', '{"a": 1,}'), _byte('{"a": 1}', 8)),
    "bad JSON in info": (_edit('"a]}[ b"}', '"a]}[ b" 5}'), _byte('"a]}[ b"', 9)),
    "images not an array": (_edit('"images": [', '"images": 5, "x": ['), "($.images): Expected 'array', got 'int'"),
    "annotations an object": (
        _edit('"annotations": [', '"annotations": {"x": [').replace(']}], "lic', ']}]}, "lic'),
        "($.annotations): Expected 'array', got 'object'",
    ),
    "no images": (
        _edit('"images"', '"imagez"'),
        "($): Object missing required field 'images'; expected a COCO instances document: "
        "an object with images, annotations and categories arrays",
    ),
    "a wrong value": (_edit('"image_id": 2', '"image_id": 2.5'), "($.annotations[1].image_id): Expected 'int | str'"),
    "a number out of range": (
        _edit("[1, 1, 2, 2]", "[1e400, 1, 2, 2]"),
        "($.annotations[0].bbox[0]): Number out of range; expected a number of magnitude below 1.8e308 (float64)",
    ),
    # msgspec reads a lone high surrogate before a letter as the end of its input: no span may drop it silently
    "lone surrogate": (_edit('"name": "a"', '"name": "\\ud800a"'), f"(byte {len(_DOC) + 6}): JSON ends early;"),
    "an integer of 5000 digits": (
        _edit('"image_id": 2', '"image_id": ' + "9" * 5000),
        "($.annotations[1].image_id): Integer value out of range; expected an integer of at most 4300 digits",
    ),
    "a bad escape": (
        _edit('"info": {', '"info": {"x": "\\q", '),
        _byte('"info": {', 16) + ": JSON is malformed: invalid escaped character; expected one of",
    ),
}


def _outcome(path, **kw) -> tuple:
    try:
        ds = load_coco(path, **kw)
    except ImbstatError as e:
        return ("error", str(e))
    return ("ok", ds.counts(), ds.problems.counts(), ds.images.image_id.tolist())


@pytest.mark.parametrize("name", PARITY)
def test_whole_and_streamed_reads_agree(tmp_path, name):
    text, error = PARITY[name]
    path = tmp_path / "doc.json"
    path.write_bytes(text.encode())
    whole = _outcome(path, stream=False)
    if error is None:
        assert whole[0] == "ok", whole
    else:
        assert whole[0] == "error" and whole[1].startswith(f"{path} {error}"), whole
    for block in (1, 7, 64, 1 << 16):
        assert _outcome(path, stream=True, block_bytes=block) == whole, block


_NEST_HEAD = b'{"images": [{"id": 1, "width": 4, "height": 4}], "categories": [], "info": '


def _nest(levels: int, closed: bool = True) -> bytes:
    """A COCO document whose info is ``levels`` arrays deep (unclosed: the file ends inside them)."""
    return _NEST_HEAD + b"[" * levels + (b"]" * levels + b"}" if closed else b"")


@pytest.mark.parametrize(("levels", "closed"), [(10_000, True), (1_000_000, True), (100_000, False)])
def test_deep_nesting_is_refused_at_its_first_too_deep_bracket(tmp_path, levels, closed):
    path = tmp_path / "deep.json"
    path.write_bytes(_nest(levels, closed))
    # the root object is level 1, info's arrays levels 2...: array number MAX_DEPTH is the first too deep
    offset = len(_NEST_HEAD) + MAX_DEPTH - 1
    message = f"{path} (byte {offset}): JSON nested deeper than {MAX_DEPTH} levels; expected a COCO instances document"
    for kw in ({"stream": False}, {"stream": True, "block_bytes": 4096}, {"stream": True, "block_bytes": 7}):
        with pytest.raises(ImbstatError) as info:
            load_coco(path, **kw)
        assert str(info.value).startswith(message), kw


def test_nesting_up_to_the_limit_is_read(tmp_path):
    path = tmp_path / "deep.json"
    path.write_bytes(_nest(MAX_DEPTH - 1))  # MAX_DEPTH levels with the root
    for kw in ({"stream": False}, {"stream": True, "block_bytes": 64}):
        assert load_coco(path, **kw).num_images == 1


def test_a_shallow_file_is_read_without_the_depth_scan(tmp_path, monkeypatch):
    # msgspec, run with HEADROOM levels of recursion left, proves a document shallow: no scan of its bytes
    def fail(raw, *args):
        raise AssertionError("the depth scan ran")

    path = tmp_path / "shallow.json"
    path.write_bytes(_nest(HEADROOM // 2))  # well within the lowered limit (a caller's stack takes some of it)
    monkeypatch.setattr(coco_module, "too_deep", fail)
    assert load_coco(path, stream=False).num_images == 1


@pytest.mark.parametrize("levels", [HEADROOM - 1, HEADROOM, MAX_DEPTH - 1, MAX_DEPTH])
def test_nesting_past_the_headroom_is_scanned(tmp_path, monkeypatch, levels):
    # deeper than the lowered limit lets msgspec go: the exact scan decides, as for every document before
    scanned = []

    def count(raw, *args):
        scanned.append(too_deep(raw, *args))
        return scanned[-1]

    path = tmp_path / "deep.json"
    path.write_bytes(_nest(levels))
    monkeypatch.setattr(coco_module, "too_deep", count)
    if levels < MAX_DEPTH:
        assert load_coco(path, stream=False).num_images == 1
        assert scanned == [None]
    else:
        with pytest.raises(ImbstatError, match=f"byte {len(_NEST_HEAD) + MAX_DEPTH - 1}"):
            load_coco(path, stream=False)
        assert scanned == [len(_NEST_HEAD) + MAX_DEPTH - 1]


def test_the_lowered_limit_is_restored(tmp_path):
    limit = sys.getrecursionlimit()
    for levels in (3, HEADROOM, 10_000):
        path = tmp_path / f"{levels}.json"
        path.write_bytes(_nest(levels))
        with contextlib.suppress(ImbstatError):
            load_coco(path, stream=False)
        assert sys.getrecursionlimit() == limit


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 13, 64, 1 << 20])
def test_too_deep_skips_strings_and_escapes(block):
    # brackets in strings (after an escaped quote, escaped backslashes, an empty string) do not nest
    strings = b'{"a": "[[[\\"[[[", "b": "\\\\", "c": "x[", "e": "", "f": "\\\\\\"[", "d": '
    assert too_deep(strings + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}", block) is None
    deep = strings + b"[" * MAX_DEPTH
    assert too_deep(deep, block) == len(strings) + MAX_DEPTH - 1
    assert too_deep(b'{"a": "' + b"[" * 2000 + b'"}', block) is None


def test_deep_json_is_one_line_and_exit_2(tmp_path):
    from typer.testing import CliRunner

    from imbstat.cli import app

    path = tmp_path / "deep.json"
    path.write_bytes(_nest(200_000))
    result = CliRunner().invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().endswith(f"JSON nested deeper than {MAX_DEPTH} levels; expected a COCO instances "
                                          "document (about 5 deep)")  # fmt: skip


@pytest.mark.parametrize("chunk", [1, 3, 64])
def test_structure_by_chunks_finds_every_quote_and_bracket(monkeypatch, chunk):
    # the scanner's byte passes run in chunks (reused buffers); offsets carry across their edges
    monkeypatch.setattr(json_stream, "_CHUNK", chunk)
    text = json.dumps(tricky_doc()).encode() + b"Y_y\x7f"  # the bytes the bracket sieve lets by too
    a = np.frombuffer(text, np.uint8)
    quotes, sieved = json_stream._structure(a)
    assert quotes.tolist() == [i for i, b in enumerate(text) if b == ord('"')]
    assert sieved.tolist() == [i for i, b in enumerate(text) if b in b"{}[]Y_y\x7f"]
