"""Per-image anchor results (anchors_per_image.csv): a hand-worked case, and shards merged back in image order."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
from helpers import TOY, assert_same_anchor_stats, coco_doc

import imbstat
from imbstat.report.document import dumps
from imbstat.sections import ANCHORS
from imbstat.sections.anchors import anchor_image_frame, write_tables
from imbstat.stats.anchors import AnchorStats

# TOY without low-quality matches, so that a GT can be left without a foreground anchor.
STRICT_TOY = dataclasses.replace(TOY, low_quality=False)

# Anchors of the 64×64 resized image: [16c - 16, 16r - 16, 16c + 16, 16r + 16], r, c in 0..3.
IMAGES = [(10, 64, 64), (20, 64, 64), (30, 128, 128)]
ANNOTATIONS = [
    # image 10: GT [4, 0, 36, 32]: anchor (1, 1) = [0, 0, 32, 32] IoU 896/1152 = 0.778 -> foreground,
    # (1, 2) = [16, 0, 48, 32] IoU 640/1408 = 0.455 -> ignored, every other anchor below 0.4.
    (10, 1, [4, 0, 32, 32], 0),
    # image 10: GT [0, 0, 4, 4]: each of the 4 anchors around the origin overlaps it by 16 px² with a
    # union of 1024 px², IoU 1/64 < 0.4: no foreground anchor; its best IoU is 1/64, the image's worst.
    (10, 2, [0, 0, 4, 4], 0),
    # image 20: no GT. image 30 (128×128, resized ×0.5 to 64×64): GT [32, 32, 96, 96] -> [16, 16, 48, 48],
    # exactly anchor (2, 2): IoU 1; its neighbours (2, 1), (1, 2), ... reach 512/1536 = 1/3: background.
    (30, 1, [32, 32, 64, 64], 0),
]


def _toy(write_json):
    return imbstat.load(write_json(coco_doc(IMAGES, ANNOTATIONS, [(1, "a"), (2, "b")])))


def test_per_image_by_hand(write_json):
    ds = _toy(write_json)
    s = imbstat.anchor_stats(ds, preset=STRICT_TOY, grid=4)
    frame = anchor_image_frame(s, ds.images)
    assert list(frame.columns) == ["image_id", "file_name", "width", "height", "gts", "foreground", "background",
                                   "ignored", "gts_without_positive", "worst_gt_max_iou"]  # fmt: skip
    assert frame["image_id"].tolist() == [10, 20, 30]
    assert frame["file_name"].tolist() == ["10.jpg", "20.jpg", "30.jpg"]
    assert frame["width"].tolist() == [64, 64, 128] and frame["height"].tolist() == [64, 64, 128]
    assert frame["gts"].tolist() == [2, 0, 1]
    assert frame[["foreground", "background", "ignored"]].to_numpy().tolist() == [[1, 14, 1], [0, 16, 0], [1, 15, 0]]
    assert frame["gts_without_positive"].tolist() == [1, 0, 0]
    worst = frame["worst_gt_max_iou"].to_numpy()
    assert worst[0] == 1 / 64 and np.isnan(worst[1]) and worst[2] == 1.0
    assert int(s.gt_unmatched.sum()) == 1  # the per-GT summary agrees


def test_per_image_csv(write_json, tmp_path):
    ds = _toy(write_json)
    write_tables(imbstat.anchor_stats(ds, preset=STRICT_TOY, grid=4), ds.images, tmp_path)
    assert (tmp_path / "anchors_per_image.csv").read_text().splitlines() == [
        "image_id,file_name,width,height,gts,foreground,background,ignored,gts_without_positive,worst_gt_max_iou",
        "10,10.jpg,64,64,2,1,14,1,1,0.015625",
        "20,20.jpg,64,64,0,0,16,0,0,",  # no GT: no worst-covered GT, an empty cell
        "30,30.jpg,128,128,1,1,15,0,0,1.0",
    ]


def test_shards_merge_back_in_image_order(tmp_path):
    from imbstat.data.sample import write_sample

    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=30))
    preset = dataclasses.replace(TOY, resize=imbstat.anchors.resize.Resize(200, 333), strides=(8, 16))
    whole = imbstat.anchor_stats(ds, preset=preset)
    assert (whole.per_image_gts[:, 0] == 0).any() and (whole.per_image_gts[:, 1] > 0).any()  # both cases occur
    # through each shard's JSON (the 'raw' block, NaN written as null), as 'report --shard' and Dask carry them
    shards = [imbstat.anchor_stats(ds.take_shard(i, 3), preset=preset) for i in range(3)]
    parts = [AnchorStats.from_dict(json.loads(dumps(p.to_dict(raw=True)))) for p in shards]
    merged = ANCHORS.merge_results(parts, ds, 3)
    assert_same_anchor_stats(merged, whole)
    pd.testing.assert_frame_equal(anchor_image_frame(merged, ds.images), anchor_image_frame(whole, ds.images))
