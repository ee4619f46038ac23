"""The anchor figures: plot_anchors writes six non-blank PNGs for ordinary, long-tailed and empty results."""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from helpers import check_png, coco_doc
from PIL import Image

import imbstat
from imbstat.plots import plot_anchors
from imbstat.plots.anchors import _per_class
from imbstat.plots.classes import MAX_LABELLED_CLASSES
from imbstat.stats import AnchorStats

NAMES = [
    "anchors_fg_bg.png",
    "anchors_per_class.png",
    "anchors_positive_iou.png",
    "anchors_per_gt.png",
    "anchors_relative_spatial.png",
    "anchors_overlap.png",
]
# Small images keep the anchor count low even after the resize to 800 px: 3 images, 3 classes ("emu" has no box).
IMAGES = [(1, 64, 48), (2, 100, 80), (3, 100, 80)]
ANNOTATIONS = [
    (1, 1, [4, 4, 30, 20], 0),  # large after the resize, near the top-left
    (1, 2, [40, 5, 1, 30], 0),  # 1:30 thin: small bucket, no anchor shape reaches IoU 0.5 (low-quality only)
    (2, 1, [10, 10, 80, 60], 0),  # most of the image
    (2, 2, [60, 5, 30, 30], 0),
    (3, 1, [0, 0, 100, 80], 1),  # crowd: takes no part in matching
]
CATEGORIES = [(1, "cat"), (2, "dog"), (3, "emu")]


def _stats(tmp_path_factory: pytest.TempPathFactory, annotations: list[tuple]) -> AnchorStats:
    path = tmp_path_factory.mktemp("coco") / "instances.json"
    path.write_text(json.dumps(coco_doc(IMAGES, annotations, CATEGORIES)))
    return imbstat.anchor_stats(imbstat.load(path), grid=16)


# Module scope: labelling the anchors is the slow part of building a result, and results are immutable.
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> AnchorStats:
    return _stats(tmp_path_factory, ANNOTATIONS)


@pytest.fixture(scope="module")
def no_boxes(tmp_path_factory: pytest.TempPathFactory) -> AnchorStats:
    return _stats(tmp_path_factory, [])


def _plot(result: AnchorStats, out_dir: Path) -> list[Path]:
    """plot_anchors with every warning an error: empty data must draw without complaint."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        paths = plot_anchors(result, out_dir)
    assert [p.name for p in paths] == NAMES
    assert all(p.parent == out_dir for p in paths)
    for p in paths:
        check_png(p)
    return paths


def test_tiny(tiny: AnchorStats, tmp_path: Path) -> None:
    assert tiny.totals["foreground"] > 0 and tiny.positive_iou_low_quality.sum() > 0  # both IoU colours drawn
    _plot(tiny, tmp_path / "nested")  # out_dir is created


def test_zero_boxes(no_boxes: AnchorStats, tmp_path: Path) -> None:
    assert no_boxes.totals["foreground"] == 0 and no_boxes.totals["background"] > 0
    _plot(no_boxes, tmp_path)


def test_zero_images(no_boxes: AnchorStats, tmp_path: Path) -> None:
    # What merging no shards gives: no per-image rows, all sums zero (scores NaN).
    empty = dataclasses.replace(
        no_boxes,
        per_image=np.zeros((0, 3), np.int64),
        overlap_background=np.zeros_like(no_boxes.overlap_background),
    )
    assert empty.num_images == 0 and empty.totals["total"] == 0
    _plot(empty, tmp_path)


@pytest.mark.parametrize("k", [1203, MAX_LABELLED_CLASSES])
def test_many_classes(tiny: AnchorStats, k: int, tmp_path: Path) -> None:
    # Only Fig. 4b depends on the number of classes; drawing it alone keeps the test fast.
    # A synthetic long tail floor(5000 / rank): many classes share the tail's counts; the last 3 have none.
    rank = np.arange(1, k + 1)
    foreground = 5000 // rank
    foreground[-3:] = 0
    instances = np.zeros((k, 3), np.int64)
    instances[:, 1] = np.maximum(foreground // 20, 1)
    result = dataclasses.replace(
        tiny,
        category_id=rank,
        name=np.array([f"class_{i}" for i in rank]),
        class_foreground=foreground,
        gt_count=instances,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = _per_class(result, float("nan"), tmp_path)
    check_png(path)
    with Image.open(path) as im:
        # Up to MAX_LABELLED_CLASSES every class has a named bar; beyond, the profile keeps a fixed width.
        assert im.size[0] <= 2400
