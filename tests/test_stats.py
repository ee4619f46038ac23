"""Dataset-level statistics on the hand-made dataset of conftest.py, and shard merging."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import COCO_TRAIN_MINI, COCO_VAL_MINI, TINY_CATEGORIES, coco_doc, needs_shared_data
from scipy.stats import wasserstein_distance

import imbstat
from imbstat import BoxFilter
from imbstat.stats import ClassDistribution, LocationDistribution, ScaleDistribution


def test_class_distribution_by_hand(tiny_coco):
    r = imbstat.class_distribution(imbstat.load(tiny_coco))
    assert r.instances.tolist() == [2, 1, 0]  # cat: a, b (d is crowd); dog: c; emu: none
    assert r.images.tolist() == [1, 1, 0]
    assert r.objects_per_image.counts.tolist() == [1, 1, 1]  # image 3: 0, image 2: 1, image 1: 2
    assert r.classes_per_image.counts.tolist() == [1, 2]  # image 3: 0 classes, images 1 and 2: 1 each
    assert r.groups.tolist() == ["rare", "rare", "absent"]
    assert r.to_frame()["name"].tolist() == ["cat", "dog", "emu"]
    crowd = imbstat.class_distribution(imbstat.load(tiny_coco), box_filter=BoxFilter(include_crowd=True))
    assert crowd.instances.tolist() == [3, 1, 0]
    assert crowd.images.tolist() == [2, 1, 0]


def test_class_groups_boundaries():
    images = np.array([0, 1, 10, 11, 100, 101])
    r = ClassDistribution(np.arange(6), np.array(list("abcdef")), images, images, *[None] * 2, 0)
    assert r.groups.tolist() == ["absent", "rare", "rare", "common", "common", "frequent"]  # LVIS: 1–10, 11–100


def test_scale_distribution_by_hand(tiny_coco):
    r = imbstat.scale_distribution(imbstat.load(tiny_coco), bins=10)
    # relative widths 0.1, 0.5, 1.0 -> bins [0.1, 0.2), [0.5, 0.6), and the closed last bin [0.9, 1.0]
    assert r.relative_width.counts.tolist() == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    # relative areas 0.01, 0.25, 1.0
    assert r.relative_area.counts.tolist() == [1, 0, 1, 0, 0, 0, 0, 0, 0, 1]
    assert r.size_buckets.tolist() == [1, 1, 1]  # 100 < 32², 2500 < 96², 20000
    # image 1: s = 8 -> 800×800; a: 80 px -> floor(4 + log2(80/224)) = 2; b: 400 px -> floor(4.84) = 4.
    # image 2: s = min(8, 1333/200) -> 1333×667; c: sqrt(1333·667) = 942.9 -> floor(6.07) = 6 -> clamped to 5.
    assert r.fpn_levels.tolist() == [1, 0, 1, 1]
    # log2(w/h): a, b square -> 0, bin [0, 0.25) of 32 on [-4, 4], index 16; c 200×100 -> 1, index 20
    assert r.aspect_ratio.counts[16] == 2 and r.aspect_ratio.counts[20] == 1 and r.aspect_ratio.total == 3
    assert r.to_dict()["size_buckets"] == {"small": 1, "medium": 1, "large": 1}
    assert r.to_dict()["fpn_levels"] == {"2": 1, "3": 0, "4": 1, "5": 1}


def test_location_distribution_by_hand(tiny_coco):
    r = imbstat.location_distribution(imbstat.load(tiny_coco), grid=4)
    expected = np.zeros((4, 4), int)
    expected[0, 0] = 1  # a: centre (0.05, 0.05)
    expected[3, 3] = 1  # b: centre (0.75, 0.75) -> floor(3.0) = 3
    expected[2, 2] = 1  # c: centre (0.5, 0.5) -> 2
    np.testing.assert_array_equal(r.counts, expected)
    assert r.per_class[1].sum() == 1 and r.per_class[1][2, 2] == 1  # dog: c only
    d = r.to_dict(per_class=True)
    assert d["centers"]["counts"] == expected.tolist()
    assert [c["name"] for c in d["per_class"]] == ["cat", "dog"]


def _shard(doc: dict, image_ids: set) -> dict:
    return {
        "images": [im for im in doc["images"] if im["id"] in image_ids],
        "annotations": [a for a in doc["annotations"] if a["image_id"] in image_ids],
        "categories": doc["categories"],
    }


def _assert_same(a, b) -> None:
    for field in a.__dataclass_fields__:
        x, y = getattr(a, field), getattr(b, field)
        if hasattr(x, "counts") and hasattr(x, "edges"):
            np.testing.assert_array_equal(x.counts, y.counts)
            np.testing.assert_array_equal(x.edges, y.edges)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, field


def test_merge_of_selected_images_equals_whole(tiny_coco):
    ds = imbstat.load(tiny_coco)
    parts = [ds.select_images(np.array(keep)) for keep in ([True, False, True], [False, True, False])]
    assert [p.num_images for p in parts] == [2, 1] and [len(p.boxes) for p in parts] == [2, 2]
    for fn, cls in (
        (imbstat.class_distribution, ClassDistribution),
        (imbstat.scale_distribution, ScaleDistribution),
        (imbstat.location_distribution, LocationDistribution),
    ):
        _assert_same(cls.merge([fn(p) for p in parts]), fn(ds))


def test_statistics_over_box_chunks_equal_one_pass(tmp_path, monkeypatch):
    from imbstat.data.sample import write_sample

    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=30))
    assert ds.boxes.iscrowd.any() and len(ds.boxes) > 50
    functions = (imbstat.class_distribution, imbstat.scale_distribution, imbstat.location_distribution)
    filters = (BoxFilter(), BoxFilter(include_crowd=True))
    one_pass = [fn(ds, box_filter=f) for fn in functions for f in filters]
    monkeypatch.setattr(imbstat.data.dataset, "STATS_CHUNK_ROWS", 7)  # an image's boxes span chunks
    for got, expected in zip([fn(ds, box_filter=f) for fn in functions for f in filters], one_pass, strict=True):
        _assert_same(got, expected)


def test_merge_of_shards_equals_whole(write_json):
    from helpers import TINY_ANNOTATIONS, TINY_IMAGES

    doc = coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES)
    whole = imbstat.load(write_json(doc, "whole.json"))
    parts = [imbstat.load(write_json(_shard(doc, ids), f"part{n}.json")) for n, ids in enumerate([{1}, {2, 3}])]
    for fn, cls in (
        (imbstat.class_distribution, ClassDistribution),
        (imbstat.scale_distribution, ScaleDistribution),
        (imbstat.location_distribution, LocationDistribution),
    ):
        _assert_same(cls.merge([fn(p) for p in parts]), fn(whole))


@needs_shared_data
@pytest.mark.parametrize("path", [COCO_VAL_MINI, COCO_TRAIN_MINI])
def test_real_file_relative_sizes_by_second_method(path):
    import json

    doc = json.loads(path.read_text())
    sizes = {im["id"]: (im["width"], im["height"]) for im in doc["images"]}
    rel_w = [a["bbox"][2] / sizes[a["image_id"]][0] for a in doc["annotations"] if not a["iscrowd"]]
    r = imbstat.scale_distribution(imbstat.load(path))
    expected, _ = np.histogram(np.clip(rel_w, 0, 1), bins=50, range=(0, 1))  # plain per-annotation loop
    np.testing.assert_array_equal(r.relative_width.counts, expected)
    for name, h in r.histograms().items():
        t = np.linspace(0, 1, h.counts.size)
        expected_score = 2 * wasserstein_distance(t, t, h.counts, np.ones(h.counts.size))  # scipy
        assert r.scores[name] == pytest.approx(expected_score, abs=1e-12), name
