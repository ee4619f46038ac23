"""The one protocol of the result types (imbstat/stats/protocol.py): merge, empty, to/from_dict, to_frame, scores."""

from __future__ import annotations

import dataclasses
import json

import pytest
from helpers import TOY, coco_doc

import imbstat
from imbstat import BoxFilter
from imbstat.anchors.resize import Resize
from imbstat.errors import ImbstatError
from imbstat.stats import AnchorStats, ClassDistribution, Histogram, LocationDistribution, ScaleDistribution

TYPES = (ClassDistribution, ScaleDistribution, LocationDistribution, AnchorStats)


@pytest.fixture
def ds(tiny_coco):
    return imbstat.load(tiny_coco)


def _results(ds) -> dict[type, object]:
    return {
        ClassDistribution: imbstat.class_distribution(ds),
        ScaleDistribution: imbstat.scale_distribution(ds, bins=10),
        LocationDistribution: imbstat.location_distribution(ds, grid=4),
        AnchorStats: imbstat.anchor_stats(ds, preset=TOY, grid=4),
    }


def _dict(result, full: bool = True) -> dict:
    """``to_dict`` in the form that ``from_dict`` reads back, through JSON text as in a report file."""
    if isinstance(result, AnchorStats):
        d = result.to_dict(raw=full)
    elif isinstance(result, LocationDistribution):
        d = result.to_dict(per_class=full)
    else:
        d = result.to_dict()
    return json.loads(json.dumps(d))


def _empty(ds, cls: type):
    options = {ScaleDistribution: {"bins": 10}, LocationDistribution: {"grid": 4}, AnchorStats: {"preset": TOY}}
    return cls.empty(ds, **options.get(cls, {}) | ({"grid": 4} if cls is AnchorStats else {}))


@pytest.mark.parametrize("full", [True, False])
def test_to_dict_from_dict_round_trip(ds, full):
    for cls, result in _results(ds).items():
        if cls is AnchorStats and not full:
            continue  # without its raw counts, the anchors' summary cannot be read back (see the next test)
        d = _dict(result, full)
        # JSON text: NaN scores compare equal there, and the JSON's own ints and floats are what is read back
        assert json.dumps(_dict(cls.from_dict(d), full)) == json.dumps(d), cls.__name__


def test_from_dict_gives_back_the_counts(ds):
    classes = ClassDistribution.from_dict(_dict(imbstat.class_distribution(ds)))
    assert classes.num_images == 3  # tiny_coco's three images: every one is in objects_per_image
    assert classes.instances.tolist() == [2, 1, 0]
    with pytest.raises(ImbstatError, match="without 'raw' counts"):
        AnchorStats.from_dict(_dict(imbstat.anchor_stats(ds, preset=TOY, grid=4), full=False))


def test_empty_is_the_identity_of_merge(ds):
    for cls, result in _results(ds).items():
        empty = _empty(ds, cls)
        for parts in ([result, empty], [empty, result]):
            assert json.dumps(_dict(cls.merge(parts))) == json.dumps(_dict(result)), cls.__name__
        assert json.dumps(_dict(cls.merge([empty, empty]))) == json.dumps(_dict(empty)), cls.__name__
    assert ClassDistribution.empty(ds).num_images == 0 and AnchorStats.empty(ds, preset=TOY).num_images == 0
    assert ScaleDistribution.empty(ds, bins=10).relative_area.counts.tolist() == [0] * 10
    assert LocationDistribution.empty(ds, grid=4).per_class.shape == (3, 4, 4)  # tiny_coco's three categories


def test_merge_of_no_parts_is_a_clear_error():
    for cls in (*TYPES, Histogram):
        with pytest.raises(ImbstatError, match=r"cannot merge an empty list of .* results; expected at least one"):
            cls.merge([])


def test_merge_names_the_field_that_differs(ds, write_json):
    other = imbstat.load(write_json(coco_doc([(1, 64, 64)], [(1, 1, [4, 0, 32, 32], 0)], [(1, "a")]), "other.json"))
    cases = [
        (ClassDistribution, [imbstat.class_distribution(ds), imbstat.class_distribution(other)], "category_id"),
        (ScaleDistribution, [imbstat.scale_distribution(ds), imbstat.scale_distribution(ds, resize=Resize(600.0))],
         r"resize\.short: part 0 has 800.0, part 1 has 600.0"),
        (ScaleDistribution, [imbstat.scale_distribution(ds), imbstat.scale_distribution(ds, bins=10)],
         "relative_width edges"),
        (LocationDistribution, [imbstat.location_distribution(ds, grid=4), imbstat.location_distribution(ds)],
         "grid: part 0 has 4, part 1 has 32"),
        (LocationDistribution, [imbstat.location_distribution(ds), imbstat.location_distribution(other)],
         "category_id"),
        (AnchorStats, [AnchorStats.empty(ds, preset="retinanet"), AnchorStats.empty(ds, preset="rpn")],
         "preset.name: part 0 has 'retinanet', part 1 has 'rpn'"),
        (AnchorStats, [imbstat.anchor_stats(ds, preset=TOY, grid=4),
                       imbstat.anchor_stats(ds, preset=dataclasses.replace(TOY, pos_iou=0.6), grid=4)],
         "preset.pos_iou: part 0 has 0.5, part 1 has 0.6"),
        (AnchorStats, [AnchorStats.empty(ds, preset=TOY, grid=4), AnchorStats.empty(ds, preset=TOY)], "grid"),
        (AnchorStats, [AnchorStats.empty(ds, preset=TOY), AnchorStats.empty(other, preset=TOY)], "category_id"),
    ]  # fmt: skip
    for cls, parts, field in cases:
        with pytest.raises(ImbstatError, match=f"cannot merge .* results with different {field}"):
            cls.merge(parts)


def test_to_frame_columns(ds):
    frames = {cls: result.to_frame() for cls, result in _results(ds).items()}
    assert list(frames[ClassDistribution].columns) == ["category_id", "name", "instances", "images", "group"]
    assert list(frames[ScaleDistribution].columns) == ["distribution", "low", "high", "count"]
    assert list(frames[LocationDistribution].columns) == ["row", "col", "count"]
    anchors = frames[AnchorStats]
    assert list(anchors.columns) == ["category_id", "name", "foreground", "foreground_per_image", "instances"]
    # the same rows as the JSON's per_class: one per category, by foreground anchors descending
    per_class = _results(ds)[AnchorStats].to_dict()["per_class"]
    assert anchors.to_dict(orient="records") == per_class and len(per_class) == 3
    assert sorted(anchors["instances"].tolist()) == [0, 1, 2]  # cat a, b; dog c (crowd d not labelled); emu none


def test_scores_are_plain_floats_named_as_in_the_json(ds):
    for cls, result in _results(ds).items():
        scores = result.scores
        assert isinstance(scores, dict), cls.__name__
        assert all(type(v) is float for v in scores.values()), (cls.__name__, scores)
        assert list(scores) == list(result.to_dict()["scores"]), cls.__name__
    classes = imbstat.class_distribution(ds)
    # instances [2, 1, 0]: Gini = sum |x_i - x_j| / (2 K² mean) = (2·(1 + 2 + 1)) / (2·9·1) = 4/9
    assert classes.scores["gini"] == pytest.approx(4 / 9)
    assert classes.scores["top10_share"] == pytest.approx(2 / 3)  # the top class of 3 holds 2 of 3 instances


def test_every_argument_after_the_dataset_is_keyword_only(ds):
    for fn in (imbstat.class_distribution, imbstat.scale_distribution, imbstat.location_distribution):
        with pytest.raises(TypeError, match="positional argument"):
            fn(ds, BoxFilter())
    with pytest.raises(TypeError, match="positional argument"):
        imbstat.anchor_stats(ds, TOY)
