"""The block-by-block JSON reader: whole elements from any block size, and the COCO loader streaming with it."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import COCO_VAL_MINI, TINY_ANNOTATIONS, TINY_CATEGORIES, TINY_IMAGES, coco_doc, needs_shared_data

from imbstat import ImbstatError
from imbstat.data.coco import load_coco
from imbstat.data.json_stream import top_level_arrays

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
        for span in top_level_arrays(path, set(got), block):
            got[span.key] += json.loads(span.text)  # json.loads: an independent decoder
        assert got == {k: doc[k] for k in got}, block


def _same(a, b) -> None:
    for part in ("images", "boxes", "categories"):
        x, y = getattr(a, part), getattr(b, part)
        for field in dataclasses.fields(x):
            u, v = getattr(x, field.name), getattr(y, field.name)
            assert (u is None and v is None) or np.array_equal(u, v), (part, field.name)
    assert a.problems.counts() == b.problems.counts()
    assert list(a.problems.location) == list(b.problems.location)


def test_streamed_coco_equals_whole_decode(write_json):
    doc = tricky_doc()
    doc["annotations"].append({"id": 3, "image_id": 7, "category_id": 1, "bbox": [1, 1, 2, 2]})  # unknown image, dup id
    path = write_json(doc)
    for block in (13, 101, 1 << 16):
        _same(load_coco(path, stream=False), load_coco(path, stream=True, block_bytes=block))
    tiny = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES), "tiny.json")
    _same(load_coco(tiny, stream=False), load_coco(tiny, stream=True, block_bytes=7))


@needs_shared_data
def test_streamed_real_file_equals_whole_decode():
    _same(load_coco(COCO_VAL_MINI, stream=False), load_coco(COCO_VAL_MINI, stream=True, block_bytes=4099))


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
    # int ids in early spans and string ids in later ones: the columns become strings, as a whole decode makes them
    doc = coco_doc([(1, 10, 10), (2, 10, 10), ("x", 10, 10)], [(1, 1, [1, 1, 2, 2], 0), ("x", "c", [1, 1, 2, 2], 0)],
                   [(1, "a"), ("c", "b")])  # fmt: skip
    path = write_json(doc)
    whole = load_coco(path, stream=False)
    assert whole.images.image_id.tolist() == ["1", "2", "x"] and len(whole.boxes) == 2
    _same(whole, load_coco(path, stream=True, block_bytes=16))
