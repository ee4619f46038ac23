"""COCO loader: values, recoverable problems, and fatal errors with their positions."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from helpers import COCO_VAL_MINI, coco_doc, needs_shared_data

import imbstat
from imbstat import ImbstatError
from imbstat.data.coco import load_coco


def test_loads_columns(tiny_coco):
    ds = imbstat.load(tiny_coco)
    assert ds.format == "coco"
    assert ds.images.image_id.tolist() == [1, 2, 3]
    assert ds.images.width.tolist() == [100, 200, 50]
    # [x, y, w, h] -> corners: [50, 50, 50, 50] -> (50, 50, 100, 100)
    np.testing.assert_array_equal(ds.boxes.xyxy[1], [50, 50, 100, 100])
    assert ds.boxes.image.tolist() == [0, 0, 1, 1]
    assert ds.boxes.category.tolist() == [0, 0, 1, 0]
    assert ds.boxes.iscrowd.tolist() == [False, False, False, True]
    assert ds.counts() == {
        "images": 3,
        "boxes": 4,
        "categories": 3,
        "crowd": 1,
        "difficult": 0,
        "group_of": 0,
        "images_without_boxes": 1,
    }
    assert len(ds.problems) == 0


def test_lvis_frequency_and_string_ids(write_json):
    doc = coco_doc([("a", 10, 10)], [("a", 7, [1, 1, 2, 2], 0)], [(7, "x")])
    doc["categories"][0]["frequency"] = "r"
    for ann in doc["annotations"]:
        del ann["iscrowd"]  # LVIS has no iscrowd
    ds = imbstat.load(write_json(doc))
    assert ds.categories.frequency.tolist() == ["r"]
    assert ds.images.image_id.tolist() == ["a"]
    assert len(ds.boxes) == 1


def test_recoverable_problems_are_counted_with_locations(write_json):
    doc = coco_doc(
        [(1, 100, 100), (2, 0, 100), (1, 50, 50)],
        [
            (1, 1, [10, 10, 20, 20], 0),  # fine
            (9, 1, [10, 10, 20, 20], 0),  # unknown image
            (1, 5, [10, 10, 20, 20], 0),  # unknown category
            (1, 1, [10, 10, 0, 20], 0),  # zero width
            (1, 1, [10, 10, 20, -1], 0),  # negative height
            (1, 1, [150, 10, 20, 20], 0),  # wholly outside (x from 150 in a 100-wide image)
            (1, 1, [90, 90, 20, 20], 0),  # partly outside: clipped to (90, 90, 100, 100)
            (2, 1, [10, 10, 20, 20], 0),  # its image has width 0
        ],
        [(1, "a")],
    )
    doc["annotations"][1]["id"] = 1  # repeats annotation id 1
    ds = imbstat.load(write_json(doc))
    assert ds.problems.counts() == {
        "unknown_image": 1,
        "unknown_category": 1,
        "non_positive_size": 2,
        "outside_image": 1,
        "image_excluded": 1,
        "duplicate_image_id": 1,
        "invalid_image_size": 1,
        "clipped_to_image": 1,
        "duplicate_annotation_id": 1,
    }
    assert ds.problems.num_errors == 8  # all but the clipped box and the repeated annotation id
    assert len(ds.boxes) == 2  # the good box and the clipped one
    np.testing.assert_array_equal(ds.boxes.xyxy[1], [90, 90, 100, 100])
    assert ds.num_images == 1
    locations = dict(zip([r.key for r in ds.problems.reasons()], ds.problems.location, strict=True))
    assert locations["unknown_image"] == "annotations[1] (id 1)"
    assert locations["duplicate_image_id"] == "images[2] (id 1)"
    assert locations["invalid_image_size"] == "images[1] (id 2)"


def test_row_chunks_give_the_same_dataset(write_json, monkeypatch):
    # assemble clips and compacts the columns in place, chunk by chunk: 3-row chunks must change nothing
    rng = np.random.default_rng(1)
    rows = [(int(rng.integers(1, 4)), 1, rng.uniform(-40, 120, 4).round(1).tolist(), 0) for _ in range(40)]
    doc = coco_doc([(1, 100, 100), (2, 60, 80), (3, 0, 10)], rows, [(1, "a")])
    whole = imbstat.load(write_json(doc))
    assert 0 < len(whole.boxes) < 40 and len(whole.problems.counts()) >= 3
    monkeypatch.setattr(imbstat.data.dataset, "_CHUNK_ROWS", 3)
    chunked = imbstat.load(write_json(doc, "again.json"))
    for field in dataclasses.fields(whole.boxes):
        np.testing.assert_array_equal(getattr(chunked.boxes, field.name), getattr(whole.boxes, field.name))
    for field in ("reason", "location", "detail"):
        np.testing.assert_array_equal(getattr(chunked.problems, field), getattr(whole.problems, field))
    # the details keep the source values (corners of the box as written), not the clipped ones
    boxes = [(loc, d) for loc, d in zip(whole.problems.location, whole.problems.detail, strict=True) if "annot" in loc]
    for location, detail in boxes:
        x, y, w, h = rows[int(location.removeprefix("annotations[").split("]")[0])][2]
        assert detail == f"x1={x:g} y1={y:g} x2={x + w:g} y2={y + h:g}"
    assert len(boxes) >= 10


def test_nan_box_from_python_json_dump(write_json):
    doc = coco_doc([(1, 100, 100)], [(1, 1, [1, 1, 5, 5], 0), (1, 1, [float("nan"), 1, 5, 5], 0)], [(1, "a")])
    ds = imbstat.load(write_json(json.dumps(doc)))  # json.dumps writes NaN, which strict JSON lacks
    assert ds.problems.counts() == {"nan_coordinate": 1}
    assert len(ds.boxes) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"images": [', "(byte 12): JSON ends early; expected the rest of the document"),
        ('{"images": [}', "(byte 12): JSON is malformed: invalid character; expected a COCO instances JSON document"),
        (
            '{"images": [], "annotations": []}',
            "($): Object missing required field 'categories'; expected a COCO instances document: an object "
            "with images, annotations and categories arrays",
        ),
        (
            '{"images": [{"id": 1, "width": 5}], "categories": []}',
            "($.images[0]): Object missing required field 'height'; expected an image record with id, width and height",
        ),
        (
            '{"images": [{"id": 1, "width": "5", "height": 5}], "categories": []}',
            "($.images[0].width): Expected 'float', got 'str'",
        ),
        (
            '{"images": [{"id": 1, "width": 5, "height": 5}], "categories": [], '
            '"annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3]}]}',
            "($.annotations[0].bbox): Expected 'array' of length 4",
        ),
        (
            '{"images": [{"id": 1, "width": 5, "height": 5}], "categories": [], "annotations": [{"image_id": 1}]}',
            "($.annotations[0]): Object missing required field 'category_id'; expected an annotation with image_id, "
            "category_id and bbox [x, y, width, height]",
        ),
        (
            '{"images": [{"id": 1, "width": 5, "height": 5}], "categories": [], '
            '"annotations": [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 1e999, 4]}]}',
            "($.annotations[0].bbox[2]): Number out of range; expected a number of magnitude below 1.8e308 (float64)",
        ),
        ('{"images": [], "categories": []}', ": no images found; expected at least one image"),
        (
            '{"images": [{"id": 1, "width": 5, "height": 5}], "categories": [{"id": 1, "name": "a"}, '
            '{"id": 1, "name": "b"}]}',
            "($.categories[1]): category id 1 repeats an earlier category; expected unique ids",
        ),
    ],
)
def test_fatal_errors_name_file_and_position(write_json, text, message):
    path = write_json(text)
    with pytest.raises(ImbstatError) as info:
        imbstat.load(path)
    assert str(info.value) == f"{path} {message}".replace(f"{path} :", f"{path}:")


def test_unreadable_and_missing_paths(tmp_path):
    folder = tmp_path / "dir.json"
    folder.mkdir()
    with pytest.raises(ImbstatError, match=r"dir\.json: a folder, not a regular file; expected a COCO instances JSON"):
        imbstat.load(folder, "coco")
    with pytest.raises(ImbstatError, match=r"nope\.json: no such file or directory"):
        imbstat.load(tmp_path / "nope.json")


@needs_shared_data
def test_real_file_matches_pycocotools():
    from pycocotools.coco import COCO

    coco = COCO(str(COCO_VAL_MINI))
    ds = imbstat.load(COCO_VAL_MINI)
    result = imbstat.class_distribution(ds)
    crowd = imbstat.class_distribution(ds, box_filter=imbstat.BoxFilter(include_crowd=True))
    for k, cat in enumerate(ds.categories.category_id.tolist()):
        assert result.instances[k] == len(coco.getAnnIds(catIds=[cat], iscrowd=False))  # pycocotools
        assert crowd.instances[k] == len(coco.getAnnIds(catIds=[cat]))
        assert crowd.images[k] == len(coco.getImgIds(catIds=[cat]))
        non_crowd_images = {a["image_id"] for a in coco.loadAnns(coco.getAnnIds(catIds=[cat], iscrowd=False))}
        assert result.images[k] == len(non_crowd_images)
    assert ds.num_images == len(coco.getImgIds())


def test_one_string_id_among_ints_is_the_only_odd_one(write_json):
    # image "1" (a string) among int ids, and category "1" likewise: ids match by value and type, as in
    # pycocotools' dicts, so only the boxes naming int 1 lack their image / category; the rest keep theirs
    doc = coco_doc(
        [("1", 10, 10), (2, 10, 10), (3, 10, 10)],
        [(1, 2, [1, 1, 2, 2], 0), (2, 2, [1, 1, 2, 2], 0), (3, 2, [1, 1, 2, 2], 0), (3, 1, [1, 1, 2, 2], 0)],
        [("1", "a"), (2, "b")],
    )
    path = write_json(doc)
    for ds in (imbstat.load(path), load_coco(path, stream=True, block_bytes=16)):
        assert ds.images.image_id.tolist() == ["1", 2, 3]
        assert ds.categories.category_id.tolist() == ["1", 2]
        assert ds.problems.counts() == {"unknown_image": 1, "unknown_category": 1}
        assert list(ds.problems.location) == ["annotations[0] (id 1)", "annotations[3] (id 4)"]
        assert ds.boxes.image.tolist() == [1, 2] and ds.boxes.category.tolist() == [1, 1]


def test_duplicate_string_id_is_quoted(write_json):
    doc = coco_doc([("1", 10, 10), (1, 10, 10), ("1", 10, 10)], [], [(1, "a")])
    ds = imbstat.load(write_json(doc))
    assert list(ds.problems.location) == ['images[2] (id "1")']  # int 1 is another image
    assert ds.images.image_id.tolist() == ["1", 1]


BIG = 2**63  # beyond int64; floats merge ids near it (float64 has 53 bits)


@pytest.mark.parametrize(
    ("ids", "dtype"),
    [
        ([BIG, BIG + 1, 5], np.uint64),
        ([2**53, 2**53 + 1, 5], np.int64),
        ([BIG, -1, BIG + 1], object),  # no integer dtype holds both
        ([2**64, 2**64 + 1, -(2**63) - 1], object),
        ([-(2**63) - 1, -(2**63) - 2, 0], object),
    ],
)
def test_big_ids_stay_exact(write_json, ids, dtype):
    doc = coco_doc(
        [(i, 10, 10) for i in ids],
        [(ids[0], ids[2], [1, 1, 2, 2], 0), (ids[1], ids[1], [1, 1, 2, 2], 0), (ids[1], ids[0], [1, 1, 2, 2], 0)],
        [(i, f"c{k}") for k, i in enumerate(ids)],
    )
    for k, ann in enumerate(doc["annotations"]):
        ann["id"] = ids[k]
    path = write_json(doc)
    for ds in (load_coco(path, stream=False), load_coco(path, stream=True, block_bytes=32)):
        assert ds.images.image_id.dtype == dtype and ds.images.image_id.tolist() == ids
        assert ds.categories.category_id.dtype == dtype and ds.categories.category_id.tolist() == ids
        assert len(ds.problems) == 0  # no duplicate image or annotation id, no unknown id
        assert ds.boxes.image.tolist() == [0, 1, 1] and ds.boxes.category.tolist() == [2, 1, 0]


def test_ids_round_trip_the_cache_and_the_report(write_json):
    from imbstat.data import cache
    from imbstat.stats.classes import ClassDistribution

    ids = [BIG + 1, 2**64, "x", 3]
    doc = coco_doc([(i, 10, 10) for i in ids], [(i, i, [1, 1, 2, 2], 0) for i in ids], [(i, str(i)) for i in ids])
    path = write_json(doc)
    first = imbstat.load(path, cache=True)
    cached = cache.read_cache(path, cache.load_options(path))
    assert cached is not None
    for ds in (first, cached):
        assert ds.images.image_id.tolist() == ids and ds.categories.category_id.tolist() == ids
        assert ds.boxes.image.tolist() == ds.boxes.category.tolist() == [0, 1, 2, 3]
    report = json.loads(json.dumps(imbstat.class_distribution(first).to_dict()))  # the JSON report's own ints
    assert report["category_ids"] == ids
    assert ClassDistribution.from_dict(report).category_id.tolist() == ids
    # uint64 ids alone keep their dtype through the cache
    uint = write_json(coco_doc([(BIG, 10, 10), (BIG + 1, 10, 10)], [], [(1, "a")]), "uint.json")
    imbstat.load(uint, cache=True)
    cached = cache.read_cache(uint, cache.load_options(uint))
    assert cached.images.image_id.dtype == np.uint64 and cached.images.image_id.tolist() == [BIG, BIG + 1]


def test_huge_iscrowd_is_crowd(write_json):
    doc = coco_doc([(1, 10, 10)], [(1, 1, [1, 1, 2, 2], 2**70), (1, 1, [1, 1, 2, 2], 0)], [(1, "a")])
    ds = imbstat.load(write_json(doc))
    assert ds.boxes.iscrowd.tolist() == [True, False]


def test_records_are_not_tracked_by_the_cyclic_collector():
    # they hold only numbers, strings and tuples of floats; tracked, a COCO-train-sized load spent about
    # half of msgspec's decode in the collector's passes over the records decoded so far (issue 23)
    import gc

    import msgspec

    from imbstat.data.coco_decode import CocoFile

    text = json.dumps(coco_doc([(1, 10, 10)], [(1, 1, [1, 1, 2, 2], 0)], [(1, "a")])).encode()
    doc = msgspec.json.decode(text, type=CocoFile)
    records = [doc.images[0], doc.annotations[0], doc.categories[0]]
    assert [gc.is_tracked(r) for r in records] == [False, False, False]
    assert doc.annotations[0].bbox == (1.0, 1.0, 2.0, 2.0) and doc.images[0].width == 10.0
