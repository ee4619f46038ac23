"""Framework presets against naive per-image re-implementations of torchvision's and detectron2's own code.

Each reference below follows that framework's training code step by step, image by image, in plain
torch (float32 where the framework computes in float32): torchvision's references/detection
``ConvertCocoPolysToMask`` + ``GeneralizedRCNNTransform`` + ``AnchorGenerator`` + ``box_iou`` +
``Matcher``; detectron2's ``ResizeShortestEdge`` + ``transform_instance_annotations`` +
``DefaultAnchorGenerator`` + ``pairwise_iou`` + ``Matcher``. imbstat's batched paths must give the
same foreground / background / ignored counts per image and the same foreground per class.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from helpers import COCO_VAL_MINI, coco_doc, needs_shared_data

import imbstat
from imbstat import ImbstatError
from imbstat.anchors.generate import anchor_grid, base_anchors, padded_size
from imbstat.anchors.presets import PRESETS, load_preset, preset_from_dict
from imbstat.anchors.resize import Resize

TV, TV_RPN, D2 = PRESETS["torchvision-retinanet"], PRESETS["torchvision-rpn"], PRESETS["detectron2-retinanet"]


# --- torchvision (torchvision/models/detection/{transform,anchor_utils,_utils}.py, ops/boxes.py) ---


def _tv_resize(w: int, h: int) -> tuple[int, int]:
    # torchvision 0.17-0.28 transform.py _resize_image_and_masks (0.28.0: lines 37 and 58-61): im_shape is
    # image.shape[-2:], Python ints, so the scale is a Python float (float64)
    scale = min(800 / min(h, w), 1333 / max(h, w))
    return math.floor(float(w) * scale), math.floor(float(h) * scale)  # F.interpolate's output size


def _tv015_resize(w: int, h: int) -> tuple[int, int]:
    # torchvision up to 0.15 (0.15.2 transform.py _resize_image_and_masks): a float32 tensor scale, .item()
    im_shape = torch.tensor([h, w])
    min_size, max_size = torch.min(im_shape).to(torch.float32), torch.max(im_shape).to(torch.float32)
    scale = torch.min(800.0 / min_size, 1333.0 / max_size).item()
    return math.floor(float(w) * scale), math.floor(float(h) * scale)


def _tv_grid_sizes(ph: int, pw: int, rpn: bool) -> list[tuple[int, int]]:
    def conv_s2(x: int) -> int:  # 3×3 stride-2 padding-1 conv (LastLevelP6P7)
        return (x + 2 - 3) // 2 + 1

    def pool_s2(x: int) -> int:  # max_pool2d(kernel 1, stride 2) (LastLevelMaxPool)
        return (x - 1) // 2 + 1

    if rpn:
        sizes = [(ph // s, pw // s) for s in (4, 8, 16, 32)]
        return [*sizes, (pool_s2(sizes[-1][0]), pool_s2(sizes[-1][1]))]
    sizes = [(ph // s, pw // s) for s in (8, 16, 32)]
    p6 = (conv_s2(sizes[-1][0]), conv_s2(sizes[-1][1]))
    return [*sizes, p6, (conv_s2(p6[0]), conv_s2(p6[1]))]


def _tv_anchors(ph: int, pw: int, rpn: bool) -> torch.Tensor:
    if rpn:
        sizes = ((32,), (64,), (128,), (256,), (512,))
    else:
        sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
    out = []
    for scales, (gh, gw) in zip(sizes, _tv_grid_sizes(ph, pw, rpn), strict=True):
        scales_t = torch.as_tensor(scales, dtype=torch.float32)
        ratios = torch.as_tensor((0.5, 1.0, 2.0), dtype=torch.float32)
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        ws = (w_ratios[:, None] * scales_t[None, :]).view(-1)
        hs = (h_ratios[:, None] * scales_t[None, :]).view(-1)
        base = (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()
        stride_h, stride_w = torch.tensor(ph // gh), torch.tensor(pw // gw)
        shifts_x = torch.arange(0, gw, dtype=torch.int32) * stride_w
        shifts_y = torch.arange(0, gh, dtype=torch.int32) * stride_h
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
        out.append((shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4))
    return torch.cat(out)


def _tv_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    lt = torch.max(boxes1[:, None, :2], boxes2[:, :2])
    rb = torch.min(boxes1[:, None, 2:], boxes2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, :, 0] * wh[:, :, 1]
    return inter / (area1[:, None] + area2 - inter)


def _tv_matcher(quality: torch.Tensor, high: float, low: float) -> torch.Tensor:
    """_utils.Matcher with allow_low_quality_matches=True: GT index, -1 background, -2 between."""
    matched_vals, matches = quality.max(dim=0)
    all_matches = matches.clone()
    below, between = matched_vals < low, (matched_vals >= low) & (matched_vals < high)
    matches[below] = -1
    matches[between] = -2
    highest, _ = quality.max(dim=1)
    pred = torch.where(quality == highest[:, None])[1]
    matches[pred] = all_matches[pred]
    return matches


def _torchvision_image(
    w: int, h: int, xyxy: np.ndarray, rpn: bool, resize: Callable[[int, int], tuple[int, int]] = _tv_resize
) -> tuple[torch.Tensor, np.ndarray]:
    """(matches per anchor, kept GT mask) of one image (``resize``: the release's, 0.28's by default)."""
    boxes = torch.as_tensor(xyxy, dtype=torch.float32).reshape(-1, 4)
    boxes[:, 0::2].clamp_(min=0, max=w)  # references/detection/coco_utils.py
    boxes[:, 1::2].clamp_(min=0, max=h)
    keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
    boxes = boxes[keep]
    nw, nh = resize(w, h)
    ratio_h = torch.tensor(nh, dtype=torch.float32) / torch.tensor(h, dtype=torch.float32)
    ratio_w = torch.tensor(nw, dtype=torch.float32) / torch.tensor(w, dtype=torch.float32)
    boxes = torch.stack([boxes[:, 0] * ratio_w, boxes[:, 1] * ratio_h, boxes[:, 2] * ratio_w, boxes[:, 3] * ratio_h], 1)
    pw, ph = int(math.ceil(float(nw) / 32.0) * 32), int(math.ceil(float(nh) / 32.0) * 32)
    anchors = _tv_anchors(ph, pw, rpn)
    if not len(boxes):
        return torch.full((len(anchors),), -1), keep.numpy()
    high, low = (0.7, 0.3) if rpn else (0.5, 0.4)
    return _tv_matcher(_tv_box_iou(boxes, anchors), high, low), keep.numpy()


# --- detectron2 v0.6 (data/transforms/augmentation_impl.py, modeling/{anchor_generator,matcher}.py) ---


def _d2_output_shape(oldh: int, oldw: int, short_edge_length: int = 800, max_size: int = 1333) -> tuple[int, int]:
    h, w = oldh, oldw
    size = short_edge_length * 1.0
    scale = size / min(h, w)
    if h < w:
        newh, neww = size, scale * w
    else:
        newh, neww = scale * h, size
    if max(newh, neww) > max_size:
        scale = max_size * 1.0 / max(newh, neww)
        newh = newh * scale
        neww = neww * scale
    return int(newh + 0.5), int(neww + 0.5)


def _d2_anchors(ph: int, pw: int) -> torch.Tensor:
    sizes = [[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]]
    out = []
    for stride, level_sizes in zip((8, 16, 32, 64, 128), sizes, strict=True):
        cell = []
        for size in level_sizes:  # generate_cell_anchors: size-major, then ratio
            area = size**2.0
            for aspect_ratio in (0.5, 1.0, 2.0):
                aw = math.sqrt(area / aspect_ratio)
                ah = aspect_ratio * aw
                cell.append([-aw / 2.0, -ah / 2.0, aw / 2.0, ah / 2.0])
        base = torch.tensor(cell)
        gh, gw = -(-ph // stride), -(-pw // stride)  # feature map sizes of the padded image
        shifts_x = torch.arange(0.0, gw * stride, step=stride, dtype=torch.float32)
        shifts_y = torch.arange(0.0, gh * stride, step=stride, dtype=torch.float32)
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
        anchors = (shifts.view(-1, 1, 4) + base.view(1, -1, 4)).reshape(-1, 4)
        # imbstat orders a cell's anchors ratio-major as mmdetection: same anchors, permuted
        perm = [size_i * 3 + ratio_j for ratio_j in range(3) for size_i in range(3)]
        out.append(anchors.view(-1, 9, 4)[:, perm].reshape(-1, 4))
    return torch.cat(out)


def _d2_pairwise_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    width_height = torch.min(boxes1[:, None, 2:], boxes2[:, 2:]) - torch.max(boxes1[:, None, :2], boxes2[:, :2])
    width_height.clamp_(min=0)
    inter = width_height.prod(dim=2)
    return torch.where(inter > 0, inter / (area1[:, None] + area2 - inter), torch.zeros(1, dtype=inter.dtype))


def _d2_matcher(quality: torch.Tensor) -> torch.Tensor:
    """Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True): GT index, -1 background, -2 ignored."""
    matched_vals, matches = quality.max(dim=0)
    labels = matches.new_full(matches.size(), 1, dtype=torch.int8)
    for label, low, high in zip([0, -1, 1], [-float("inf"), 0.4, 0.5], [0.4, 0.5, float("inf")], strict=True):
        labels[(matched_vals >= low) & (matched_vals < high)] = label
    highest, _ = quality.max(dim=1)
    _, pred = torch.nonzero(quality == highest[:, None], as_tuple=True)
    labels[pred] = 1
    return torch.where(labels == 1, matches, torch.where(labels == 0, -1, -2))


def _detectron2_image(w: int, h: int, xyxy: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    newh, neww = _d2_output_shape(h, w)
    # load_coco_json keeps COCO's [x, y, w, h] list; BoxMode.convert turns it into corners through
    # torch.tensor(list): in float32 (structures/boxes.py), then apply_box works on those in float64
    xyxy = xyxy.reshape(-1, 4)
    arr = torch.tensor(np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1).tolist()).reshape(-1, 4)
    arr[:, 2:] += arr[:, :2]
    boxes = arr.double().numpy()
    boxes[:, 0::2] *= neww * 1.0 / w  # ResizeTransform.apply_coords in float64
    boxes[:, 1::2] *= newh * 1.0 / h
    boxes = np.minimum(boxes.clip(min=0), [neww, newh, neww, newh])
    boxes_t = torch.as_tensor(boxes, dtype=torch.float32)
    keep = ((boxes_t[:, 2] - boxes_t[:, 0]) > 1e-5) & ((boxes_t[:, 3] - boxes_t[:, 1]) > 1e-5)  # nonempty()
    boxes_t = boxes_t[keep]
    ph, pw = -(-newh // 32) * 32, -(-neww // 32) * 32
    anchors = _d2_anchors(ph, pw)
    if not len(boxes_t):
        return torch.full((len(anchors),), -1), keep.numpy()
    return _d2_matcher(_d2_pairwise_iou(boxes_t, anchors)), keep.numpy()


# --- random images that exercise each convention ---


def _random_dataset(rng: np.random.Generator, n_images: int) -> tuple[list, list]:
    """COCO rows: sizes where floor and round differ (640×533), odd sizes for P6/P7 steps, tiny GTs that
    tie on rounded anchors, duplicate boxes of two classes (argmax ties), boxes past the image edge."""
    sizes = [(640, 533), (533, 640), (1000, 999), (2666, 1333)]
    sizes += [(int(rng.integers(40, 1800)), int(rng.integers(40, 1800))) for _ in range(n_images - len(sizes))]
    images, annotations = [], []
    for i, (w, h) in enumerate(sizes[:n_images], start=1):
        images.append((i, w, h))
        for _ in range(int(rng.integers(0, 14))):
            kind = rng.integers(0, 4)
            if kind == 0:  # tiny, on a quarter-pixel grid: ties between rounded anchors
                bw, bh = rng.integers(1, 60, 2) / 4
            elif kind == 1:  # large
                bw, bh = rng.uniform(0.3, 1.1) * w, rng.uniform(0.3, 1.1) * h
            else:
                bw, bh = rng.uniform(2, 0.5 * w), rng.uniform(2, 0.5 * h)
            x, y = rng.uniform(-0.05 * w, w - 1), rng.uniform(-0.05 * h, h - 1)
            cat = int(rng.integers(1, 4))
            annotations.append((i, cat, [float(x), float(y), float(bw), float(bh)], 0))
            if rng.random() < 0.15:  # the same box under another class: argmax ties go to the lower index
                annotations.append((i, 1 + cat % 3, [float(x), float(y), float(bw), float(bh)], 0))
    return images, annotations


def _reference_counts(ds: imbstat.Dataset, framework) -> tuple[np.ndarray, np.ndarray]:
    """([I, 3] fg / bg / ignored per image, [K] foreground per category row) by the naive reference."""
    per_image = np.zeros((ds.num_images, 3), np.int64)
    per_class = np.zeros(len(ds.categories), np.int64)
    for i in range(ds.num_images):
        rows = np.flatnonzero((ds.boxes.image == i) & ~ds.boxes.iscrowd)
        matches, keep = framework(int(ds.images.width[i]), int(ds.images.height[i]), ds.boxes.xyxy[rows])
        kept = rows[keep]
        per_image[i] = [(matches >= 0).sum(), (matches == -1).sum(), (matches == -2).sum()]
        fg = matches[matches >= 0].numpy()
        np.add.at(per_class, ds.boxes.category[kept[fg]], 1)
    return per_image, per_class


FRAMEWORKS = {
    "torchvision-retinanet": lambda w, h, xyxy: _torchvision_image(w, h, xyxy, rpn=False),
    "torchvision-rpn": lambda w, h, xyxy: _torchvision_image(w, h, xyxy, rpn=True),
    "detectron2-retinanet": _detectron2_image,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_preset_equals_its_framework_on_random_images(write_json, name):
    rng = np.random.default_rng(sum(map(ord, name)))
    images, annotations = _random_dataset(rng, 7)
    ds = imbstat.load(write_json(coco_doc(images, annotations, [(1, "a"), (2, "b"), (3, "c")])))
    per_image, per_class = _reference_counts(ds, FRAMEWORKS[name])
    sparse = imbstat.anchor_stats(ds, preset=name, method="sparse", grid=8, batch_size=3)
    np.testing.assert_array_equal(sparse.per_image, per_image)
    np.testing.assert_array_equal(sparse.class_foreground, per_class)
    assert per_image[:, 0].sum() > 0 and per_image[:, 2].sum() > 0  # the case is not vacuous
    # the dense torch path (the cross-check of every path) gives every statistic identically
    dense = imbstat.anchor_stats(ds, preset=name, method="dense", grid=8, batch_size=3)
    for field in dataclasses.fields(dense):
        x, y = getattr(sparse, field.name), getattr(dense, field.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=field.name)


@pytest.mark.slow
@needs_shared_data
@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_preset_equals_its_framework_on_shared_data(name):
    ds = imbstat.load(COCO_VAL_MINI)
    ds = ds.select_images(np.arange(ds.num_images) < 8)  # the naive references take ~1 s an image
    per_image, per_class = _reference_counts(ds, FRAMEWORKS[name])
    s = imbstat.anchor_stats(ds, preset=name, method="sparse", grid=4)
    np.testing.assert_array_equal(s.per_image, per_image)
    np.testing.assert_array_equal(s.class_foreground, per_class)


def test_mmdet_retinanet_differs_from_torchvision_where_the_issue_says(write_json):
    # The same data under mmdetection's and torchvision's conventions: more foreground under torchvision's.
    rng = np.random.default_rng(5)
    images, annotations = _random_dataset(rng, 8)
    ds = imbstat.load(write_json(coco_doc(images, annotations, [(1, "a"), (2, "b"), (3, "c")])))
    mmdet = imbstat.anchor_stats(ds, preset="mmdet-retinanet", grid=4)
    tv = imbstat.anchor_stats(ds, preset="torchvision-retinanet", grid=4)
    assert mmdet.totals != tv.totals


# --- the conventions one by one, by hand ---


def test_resize_roundings_by_hand():
    w, h = np.array([640.0]), np.array([533.0])
    # s = min(800/533, 1333/640) = 1.500938; 640·s = 960.6: mmcv rounds to 961, torchvision floors to 960;
    # torchvision 0.17-0.28's float64 s times 533 is 800.0; up to 0.15 its float32 s times 533 is 799.99998: 799
    assert Resize(800, 1333).new_size(w, h) == (961, 800)
    assert Resize(800, 1333, "floor-float64").new_size(w, h) == _tv_resize(640, 533) == (960, 800)
    assert Resize(800, 1333, "floor").new_size(w, h) == _tv015_resize(640, 533) == (960, 799)
    assert TV.resize == TV_RPN.resize == Resize(800, 1333, "floor-float64")
    # detectron2 scales through the short side first: 2666×1333 (5:... ) -> long 1333, short 666.5 -> 667 by
    # its own float steps; checked against its code on many sizes
    rng = np.random.default_rng(0)
    ws, hs = rng.integers(1, 5000, 4000), rng.integers(1, 5000, 4000)
    ws[:3], hs[:3] = [2666, 1333, 3999], [1333, 2666, 2001]
    nw, nh = Resize(800, 1333, "shortest-edge").new_size(ws, hs)
    expected = np.array([_d2_output_shape(int(h), int(w)) for w, h in zip(ws, hs, strict=True)])
    np.testing.assert_array_equal(np.stack([nh, nw], 1), expected)
    for rounding, reference in [("floor-float64", _tv_resize), ("floor", _tv015_resize)]:
        tw, th = Resize(800, 1333, rounding).new_size(ws, hs)
        np.testing.assert_array_equal(
            np.stack([tw, th], 1), [reference(int(w), int(h)) for w, h in zip(ws, hs, strict=True)]
        )


@pytest.mark.parametrize("method", ["sparse", "dense"])
def test_torchvision_presets_resize_as_torchvision_0_28(write_json, method):
    # Issue 20: COCO val 397133 and 9 more 640×427-like images labelled otherwise than torchvision 0.28.0.
    # transform.py _resize_image_and_masks (0.28.0 lines 58-61) takes s = min(800 / 427, 1333 / 640) in Python
    # floats: 427·s = 800.0, so 640×427 -> 1199×800 and resize_boxes scales y by 800 / 427; the float32 s of
    # 0.15 (and imbstat before) made it 799 rows, y·799/427. This GT's counts, by the naive reference above
    # with each release's resize: 0.28: 24 fg, 182,313 bg, 66 ignored; 0.15: 25 / 182,315 / 63.
    ds = imbstat.load(write_json(coco_doc([(1, 640, 427)], [(1, 1, [187.1, 350.8, 50.0, 32.4], 0)], [(1, "a")])))
    assert Resize(800, 1333, "floor-float64").new_size(640, 427) == (1199, 800)
    matches, _ = _torchvision_image(640, 427, ds.boxes.xyxy, rpn=False)
    old, _ = _torchvision_image(640, 427, ds.boxes.xyxy, rpn=False, resize=_tv015_resize)
    expected = [24, 182_313, 66]
    assert [int((matches >= 0).sum()), int((matches == -1).sum()), int((matches == -2).sum())] == expected
    assert [int((old >= 0).sum()), int((old == -1).sum()), int((old == -2).sum())] == [25, 182_315, 63]
    s = imbstat.anchor_stats(ds, preset="torchvision-retinanet", method=method, grid=4)
    assert s.per_image.tolist() == [expected]
    v015 = dataclasses.replace(TV, resize=Resize(800, 1333, "floor"))  # the rule of torchvision up to 0.15
    assert imbstat.anchor_stats(ds, preset=v015, method=method, grid=4).per_image.tolist() == [[25, 182_315, 63]]


def test_padded_floor_steps_by_hand():
    # 1216×800 padded: P6 has ceil(800/64) = 13 rows, 1216/64 = 19 columns: steps 800 // 13 = 61, 1216 // 19 = 64;
    # P7: 7 rows -> 114, 10 columns -> 121
    grid = anchor_grid(TV, 1216, 800)
    assert grid.cells[3:] == ((13, 19), (7, 10))
    np.testing.assert_array_equal(grid.steps, [[8, 8], [16, 16], [32, 32], [64, 61], [121, 114]])
    assert anchor_grid(PRESETS["retinanet"], 1216, 800).steps[4].tolist() == [128, 128]


@pytest.mark.parametrize("size", [(1216, 800), (800, 1216), (1088, 800), (416, 96), (1344, 1344)])
def test_anchor_grids_are_the_frameworks_bits(size):
    pw, ph = size
    np.testing.assert_array_equal(anchor_grid(TV, pw, ph).xyxy, _tv_anchors(ph, pw, rpn=False).double().numpy())
    np.testing.assert_array_equal(anchor_grid(TV_RPN, pw, ph).xyxy, _tv_anchors(ph, pw, rpn=True).double().numpy())
    np.testing.assert_array_equal(anchor_grid(D2, pw, ph).xyxy, _d2_anchors(ph, pw).double().numpy())
    # corners(), which the sparse path and the statistics use, gives the same bits
    grid = anchor_grid(D2, pw, ph)
    index = np.arange(0, len(grid), 7)
    np.testing.assert_array_equal(grid.corners(index), grid.xyxy[index])


def test_rounded_base_anchors_by_hand():
    # size 32, ratio 0.5: w = 32·sqrt(2) = 45.25 -> ±22.63 -> ±23; h = 22.63 -> ±11.31 -> ±11
    assert base_anchors(TV, 8)[0].tolist() == [-23.0, -11.0, 23.0, 11.0]
    # size 101 ratio 1: ±50.5 rounds half to even: ±50
    assert base_anchors(TV, 16)[4].tolist() == [-40.0, -40.0, 40.0, 40.0]
    assert base_anchors(TV, 16)[5].tolist() == [-50.0, -50.0, 50.0, 50.0]


def test_float32_ties_and_thresholds_by_hand():
    # IoU 0.7 is not a float32 number: float32 compares with float32(0.7) = 0.69999999, so an IoU that rounds to it
    # is foreground under torchvision-rpn and not under a float64 preset.
    assert TV_RPN.threshold(0.7) == float(np.float32(0.7)) < 0.7
    assert PRESETS["rpn"].threshold(0.7) == 0.7


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float32_decides_ties_as_float32_does(dtype):
    # A 14.2×17 px GT among torchvision's rounded anchors: its best IoU is tied by 8 anchors in float32 and
    # by 4 in float64; torchvision (float32) makes all 8 foreground.
    from imbstat.anchors.assign import match_dense
    from imbstat.anchors.sparse import match_sparse

    preset = dataclasses.replace(TV, dtype=dtype)
    grid = anchor_grid(preset, 800, 800)
    gts = np.array([[[300.9, 676.1, 300.9 + 14.2, 676.1 + 17.0]]])  # x + w as a COCO box loads
    torch_dtype = getattr(torch, dtype)
    quality = _tv_box_iou(torch.tensor(gts[0], dtype=torch_dtype), torch.tensor(grid.xyxy, dtype=torch_dtype))
    expected = int((_tv_matcher(quality, 0.5, 0.4) >= 0).sum())
    assert expected == {"float32": 8, "float64": 4}[dtype]
    sparse = match_sparse(grid, gts, np.array([1]), preset)
    t = torch.from_numpy
    dense = match_dense(t(grid.xyxy).to(torch_dtype), t(gts).to(torch_dtype), t(np.array([1])), preset)
    assert len(sparse.fg_anchor) == len(dense.fg_anchor) == expected


def test_a_gt_missing_every_anchor_is_refused_by_sparse_and_reproduced_by_dense(write_json):
    # A 1e-30 px GT at the origin: float32 IoU underflows to 0 with every anchor. torchvision's Matcher then
    # makes every anchor at IoU 0 with it (all of them) a low-quality match for its own argmax GT.
    ds = imbstat.load(write_json(coco_doc([(1, 64, 64)], [(1, 1, [0, 0, 1e-30, 1e-30], 0)], [(1, "a")])))
    with pytest.raises(ImbstatError, match="overlaps no anchor"):
        imbstat.anchor_stats(ds, preset="torchvision-retinanet", method="sparse")
    dense = imbstat.anchor_stats(ds, preset="torchvision-retinanet", method="dense", grid=4)
    matches, _ = _torchvision_image(64, 64, ds.boxes.xyxy, rpn=False)
    assert dense.totals["foreground"] == int((matches >= 0).sum()) == dense.totals["total"]


# --- fields: TOML loading, validation, JSON round trip ---


def test_framework_fields_in_toml(tmp_path):
    path = tmp_path / "tv.toml"
    path.write_text(
        'base = "retinanet"\nresize_rounding = "floor"\nanchor_sizes = [[32], [64], [128], [256], [512]]\n'
        'round_anchors = true\nstride_rule = "padded-floor"\ndtype = "float32"\n'
        'low_quality_rule = "torchvision-detectron2"\nmin_pos_iou = 0.0\n'
    )
    p = load_preset(path)
    assert p.resize.rounding == "floor" and p.anchors_per_cell == 3 and p.float32
    assert p.sizes(64) == [256.0]
    for text, message in [
        ('dtype = "float16"', "dtype must be one of float64, float32"),
        ('stride_rule = "ceil"', "stride_rule must be one of exact, padded-floor"),
        ('low_quality_rule = "best"', "low_quality_rule must be one of mmdetection, torchvision-detectron2"),
        ('resize_rounding = "nearest"', "resize_rounding must be one of round, floor, floor-float64, shortest-edge"),
        ("anchor_sizes = [[32], [64]]", "anchor_sizes must give one list per stride"),
        ("anchor_sizes = [[32], [64, 80], [128], [256], [512]]", "all of one length"),
        ("anchor_sizes = [[32], [-64], [128], [256], [512]]", "of positive sizes"),
        ('anchor_sizes = [["a"], [64], [128], [256], [512]]', "expected a list of lists of numbers"),
        ("anchor_sizes = 32", "expected a list of lists of numbers"),
        ('round_anchors = "yes"', "expected bool, got str"),
        ('base = "retinanet-v1"\ndtype = "float32"', "legacy has its own pixel conventions"),
    ]:
        path.write_text(text)
        with pytest.raises(ImbstatError, match=message) as info:
            load_preset(path)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_dict_round_trip(name):
    p = PRESETS[name]
    assert preset_from_dict(p.to_dict()) == p


def test_mmdetection_presets_write_the_block_they_always_wrote():
    # ... and min_gt_side (mmdetection's w < 1 or h < 1 drop), which a preset keeping 0 leaves out
    d = PRESETS["retinanet"].to_dict()
    assert set(d) == {
        "name", "resize", "pad_divisor", "strides", "octave_base_scale", "scales_per_octave", "ratios",
        "center_offset", "pos_iou", "neg_iou", "low_quality", "min_pos_iou", "ignore_crowd", "legacy", "min_gt_side",
    }  # fmt: skip
    assert set(dataclasses.replace(PRESETS["retinanet"], min_gt_side=0.0).to_dict()) == set(d) - {"min_gt_side"}
    assert d["resize"] == {"short": 800, "long": 1333}
    assert PRESETS["mmdet-retinanet"] == dataclasses.replace(PRESETS["retinanet"], name="mmdet-retinanet")


def test_a_floored_resize_pads_to_multiples_of_32():
    pw, ph = padded_size(TV, np.array([640.0]), np.array([533.0]))
    assert (pw[0], ph[0]) == (960, 800)  # 960×800 padded to multiples of 32
    old = dataclasses.replace(TV, resize=Resize(800, 1333, "floor"))
    assert padded_size(old, np.array([640.0]), np.array([533.0]))[1][0] == 800  # 960×799 too


def test_anchors_command_shows_steps_and_rounded_shapes():
    import json

    from typer.testing import CliRunner

    from imbstat.cli import app

    result = CliRunner().invoke(app, ["anchors", "--preset", "torchvision-retinanet", "--image-size", "640x533",
                                      "--json", "-"])  # fmt: skip
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    # 640×533 -> 960×800 (960×799 up to torchvision 0.15) -> padded 960×800; P6 has 13×15 cells: steps
    # 960 // 15 = 64, 800 // 13 = 61
    assert doc["padded_size"] == [960, 800]
    assert doc["levels"][3]["step"] == [64.0, 61.0] and doc["levels"][3]["rows"] == 13
    assert doc["levels"][0]["shapes"][0] == [46.0, 22.0]  # 45.25×22.63 rounded corner by corner: ±23, ±11
    assert doc["preset"]["resize"]["rounding"] == "floor-float64"


# ---------------------------------------------------------------- bounds of every field (issue 20)


def test_most_anchors_by_hand_and_above_every_image():
    """retinanet: sides 801 -> 832 and 1334 -> 1344 px padded to 32; cells per level ceil(side / stride)."""
    from imbstat.anchors.generate import image_grid

    cells = sum(math.ceil(832 / s) * math.ceil(1344 / s) for s in (8, 16, 32, 64, 128))
    assert cells == 104 * 168 + 52 * 84 + 26 * 42 + 13 * 21 + 7 * 11 == 23282
    assert PRESETS["retinanet"].most_anchors() == 9 * 23282
    for name in ("retinanet", "rpn", "torchvision-retinanet", "detectron2-retinanet", "fcos"):
        preset = PRESETS[name]
        for w, h in ((640, 480), (1333, 800), (800, 1333), (5000, 10), (10, 5000), (799, 1333), (1, 1)):
            assert len(image_grid(preset, w, h)) <= preset.most_anchors(), (name, w, h)


@pytest.mark.parametrize(
    ("field", "inside", "outside"),
    [
        ("strides", (8, 16, 32, 64, 4096), (8, 16, 32, 64, 4097)),
        ("strides", (8, 16, 32, 64, 128), (8, 16.0, 32, 64, 128)),
        ("pad_divisor", 4096, 4097),
        ("octave_base_scale", 1000.0, math.inf),
        ("octave_base_scale", 1e-3, math.nan),
        ("scales_per_octave", 28, 257),
        ("ratios", (1e-3, 1e3), (1e-3, math.inf)),
        ("center_offset", 1.0, 1.0 + 1e-9),
        ("center_offset", 0.0, math.nan),
        ("topk", 1000, 1001),
        ("center_radius", 1000.0, math.inf),
        ("min_gt_side", 1e5, math.nan),
        ("anchor_sizes", ((1e5,),) * 5, ((1e5 + 1,),) * 5),
        ("anchor_sizes", ((32.0,),) * 5, ((),) * 5),
    ],
)
def test_every_field_is_bounded(field, inside, outside):
    """The bound itself is a preset; beyond it (or NaN, infinite, a float where a whole number) a ValueError
    naming the field, which load_preset turns into a one-line error at the TOML's key."""
    base = PRESETS["retinanet"]
    assert getattr(dataclasses.replace(base, **{field: inside}), field) == inside
    with pytest.raises(ValueError, match=field) as info:
        dataclasses.replace(base, **{field: outside})
    assert info.value.field == field


def test_anchors_per_cell_and_per_image_bounded(tmp_path):
    base = PRESETS["retinanet"]
    with pytest.raises(ValueError, match=r"anchors per cell .* at most 256, got 600"):
        dataclasses.replace(base, ratios=(1.0,) * 200)
    # a 6400 × 10664 resize: 64 times retinanet's 209,538 anchors
    with pytest.raises(ValueError, match="at most 4,194,304 anchors per image") as info:
        dataclasses.replace(base, resize=Resize(6400, 10664))
    assert info.value.field == "resize_short/resize_long"
    assert dataclasses.replace(base, resize=Resize(1600, 2666)).most_anchors() < 1 << 22  # 2× still allowed
    path = tmp_path / "big.toml"
    path.write_text("resize_short = 100000\nresize_long = 100000\n")
    with pytest.raises(ImbstatError, match=r"big\.toml \(resize_short/resize_long\): inconsistent preset: at most"):
        load_preset(path)


def test_fcos_needs_one_anchor_per_cell():
    """FCOS labels points: on a 9-anchor base each point counted 9 times, fg:bg 9× too small (issue 20)."""
    with pytest.raises(ValueError, match=r"assigner fcos labels one point per cell.*got 9"):
        dataclasses.replace(PRESETS["retinanet"], assigner="fcos")
    assert PRESETS["fcos"].anchors_per_cell == 1


def test_a_toml_gives_the_resize_by_its_three_keys(tmp_path):
    """``resize`` is the field that holds the Resize object: in a TOML it is an unknown key, and the error lists
    the keys that set it, rather than naming an internal type."""
    path = tmp_path / "p.toml"
    path.write_text("resize = 3\n")
    with pytest.raises(ImbstatError, match=r"unknown keys resize; expected some of .*resize_long.*resize_short"):
        load_preset(path)
