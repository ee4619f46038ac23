"""min_gt_side: mmdetection's CocoDataset drops annotations with w < 1 or h < 1 px; imbstat counts what it drops."""

from __future__ import annotations

import dataclasses
import json

from helpers import coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat.anchors.presets import PRESETS, preset_from_dict
from imbstat.cli import app
from imbstat.stats.anchors import AnchorStats

# image 100×100; (x, y, w, h) and what mmdetection 2.28's _parse_ann_info does with it
BOXES = [
    ([10, 10, 0.5, 5], "small"),  # w 0.5 < 1
    ([20, 20, 0.999, 5], "small"),  # w 0.999 < 1
    ([30, 30, 1.0, 5], "kept"),  # w 1.0 is not < 1
    ([40, 40, 5, 0.5], "small"),  # h 0.5 < 1
    ([0.38, 60, 1.0, 1.0], "kept"),  # w 1.0, though x2 - x1 = (0.38 + 1.0) - 0.38 = 0.9999999999999999
    ([50, 50, 10, 10], "kept"),
    ([100, 10, 5, 5], "no overlap"),  # inter_w = min(105, 100) - max(100, 0) = 0: the loader excludes it
]


def _write(write_json):
    annotations = [(1, 1, box, 0) for box, _ in BOXES] + [(1, 1, [0, 0, 0.5, 0.5], 1)]  # a crowd box: ignored
    return write_json(coco_doc([(1, 100, 100)], annotations, [(1, "a")]))


def test_mmdetection_rule_by_hand(write_json):
    assert (0.38 + 1.0) - 0.38 < 1  # why the rule compares x2 with x1 + 1, not x2 - x1 with 1
    path = _write(write_json)
    out = CliRunner().invoke(app, ["anchor-iou", str(path), "--preset", "retinanet", "--quiet", "--json", "-"])
    assert out.exit_code == 0, out.output
    per_gt = json.loads(out.stdout)["per_gt"]
    kinds = [kind for _, kind in BOXES]
    assert per_gt["gts_below_min_side"] == kinds.count("small") == 3
    assert per_gt["gts_dropped"] == 0  # no box left without area after the resize
    assert per_gt["all"]["gts"] == kinds.count("kept") == 3
    # mmdetection's no-overlap test is the loader's outside_image exclusion (validate reports it)
    assert imbstat.load(path).problems.counts() == {"outside_image": kinds.count("no overlap")}
    assert json.loads(out.stdout)["preset"]["min_gt_side"] == 1.0


def test_without_the_rule_every_box_counts_and_the_output_is_what_it_was(write_json):
    ds = imbstat.load(_write(write_json))
    preset = dataclasses.replace(PRESETS["retinanet"], min_gt_side=0.0)
    s = imbstat.anchor_stats(ds, preset=preset)
    assert (s.gts_below_min_side, s.gts_dropped, int(s.gt_count.sum())) == (0, 0, 6)
    d = s.to_dict(raw=True)
    assert "gts_below_min_side" not in d["per_gt"] and "gts_below_min_side" not in d["raw"]
    assert "min_gt_side" not in d["preset"]
    assert PRESETS["torchvision-retinanet"].min_gt_side == 0 and PRESETS["detectron2-retinanet"].min_gt_side == 0


def test_count_survives_shards(write_json):
    ds = imbstat.load(_write(write_json))
    s = imbstat.anchor_stats(ds, preset="retinanet")
    back = AnchorStats.from_dict(s.to_dict(raw=True))
    assert back.gts_below_min_side == 3 and preset_from_dict(s.to_dict()["preset"]).min_gt_side == 1.0
    assert AnchorStats.merge([back, back]).gts_below_min_side == 6


def test_mmdetection_presets_carry_the_rule():
    for name in ("retinanet", "mmdet-retinanet", "retinanet-v1", "rpn", "atss", "fcos"):
        assert PRESETS[name].min_gt_side == 1.0, name


def test_only_coco_files_take_the_rule(write_json):
    """mmdetection's VOC loader (XMLDataset) has no size test: the same boxes from a VOC file all count."""
    ds = imbstat.load(_write(write_json))
    coco, voc = (imbstat.anchor_stats(d, preset="retinanet") for d in (ds, dataclasses.replace(ds, format="voc")))
    assert (coco.gts_below_min_side, int(coco.gt_count.sum())) == (3, 3)
    assert (voc.gts_below_min_side, int(voc.gt_count.sum())) == (0, 6)
