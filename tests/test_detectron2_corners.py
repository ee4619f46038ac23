"""detectron2's float32 corners of COCO boxes (``detectron2-retinanet`` on a COCO file).

detectron2 v0.6 keeps a COCO box as its ``[x, y, w, h]`` list and converts it with
``BoxMode.convert``, which builds ``torch.tensor(list)`` (float32) and adds ``x + w`` there,
before its float64 resize. The references below are that torch code run on the original lists.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from format_writers import write_voc
from helpers import COCO_TRAIN_MINI, COCO_VAL_MINI, coco_doc, needs_shared_data

import imbstat
from imbstat.anchors.engine import ground_truth, xywh_float32_corners
from imbstat.anchors.presets import PRESETS

D2 = PRESETS["detectron2-retinanet"]


def _d2_convert(bbox: list) -> list[float]:
    """structures/boxes.py BoxMode.convert(list, XYWH_ABS, XYXY_ABS), v0.6."""
    arr = torch.tensor(bbox)[None, :]
    arr[:, 2] += arr[:, 0]
    arr[:, 3] += arr[:, 1]
    return [float(v) for v in arr.flatten().tolist()]


def _random_coco(rng: np.random.Generator, n: int) -> tuple[list, list]:
    """One box per image: 2-decimal values as COCO writes them, some with 6 decimals, some whole numbers."""
    images, annotations = [], []
    for i in range(1, n + 1):
        w, h = int(rng.integers(50, 1500)), int(rng.integers(50, 1500))
        decimals = [0, 2, 2, 6][i % 4]
        x, y = (round(float(v), decimals) for v in rng.uniform(0, [w - 2, h - 2]))
        bw, bh = (round(float(v), decimals) for v in rng.uniform(1, [w - x, h - y]))
        bbox = [int(v) for v in (x, y, bw, bh)] if decimals == 0 else [x, y, bw, bh]
        images.append((i, w, h))
        annotations.append((i, 1, bbox, 0))
    return images, annotations


@pytest.mark.slow
def test_corners_are_detectron2s_float32_sums(write_json):
    images, annotations = _random_coco(np.random.default_rng(12), 400)
    ds = imbstat.load(write_json(coco_doc(images, annotations, [(1, "a")])))
    expected = np.array([_d2_convert(annotations[i - 1][2]) for i in ds.images.image_id[ds.boxes.image]])
    np.testing.assert_array_equal(xywh_float32_corners(ds.boxes.xyxy), expected)
    # not the float32 cast of the float64 corners: x + w rounds differently for many of them
    assert (ds.boxes.xyxy.astype(np.float32) != expected).any(axis=1).sum() > 20


def test_ground_truth_uses_them_for_detectron2_on_coco_only(write_json, tmp_path):
    images, annotations = _random_coco(np.random.default_rng(3), 60)
    ds = imbstat.load(write_json(coco_doc(images, annotations, [(1, "a")])))
    gt = ground_truth(ds, D2)
    rows = np.arange(len(gt.box))
    image = ds.boxes.image[gt.box]
    # transform_instance_annotations: apply_box in float64 on the float32 corners, clip, then float32 Boxes
    w, h = ds.images.width[image], ds.images.height[image]
    new_w, new_h = D2.resize.new_size(w, h)
    corners = np.array([_d2_convert(annotations[i - 1][2]) for i in ds.images.image_id[image]])
    scaled = corners * np.stack([new_w / w, new_h / h] * 2, axis=1)
    expected = np.minimum(scaled.clip(min=0), np.stack([new_w, new_h] * 2, axis=1)).astype(np.float32)
    np.testing.assert_array_equal(gt.xyxy_of(rows), expected.astype(np.float64))
    assert gt.xywh_float32 and not ground_truth(ds, PRESETS["retinanet"]).xywh_float32
    write_voc(ds, tmp_path / "voc")  # VOC holds corners, not [x, y, w, h]: nothing to add up
    assert not ground_truth(imbstat.load(tmp_path / "voc"), D2).xywh_float32


@needs_shared_data
@pytest.mark.parametrize(
    ("path", "image_id", "counts"),
    [
        # fg / bg / ignored by detectron2 v0.6's own code (benchmarks/conformance/vs_detectron2.py); imbstat's float64
        # corners gave [132, 182055, 216], [544, 161675, 987] and [306, 162274, 626]
        (COCO_VAL_MINI, 62554, [126, 182061, 216]),
        (COCO_TRAIN_MINI, 535506, [526, 161687, 993]),
        (COCO_TRAIN_MINI, 227000, [302, 162274, 630]),
    ],
)
def test_images_where_the_float32_corners_change_labels(path, image_id, counts):
    ds = imbstat.load(path)
    ds = ds.select_images(ds.images.image_id == image_id)
    assert imbstat.anchor_stats(ds, preset="detectron2-retinanet").per_image.tolist() == [counts]
