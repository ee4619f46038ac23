"""The fcos assigner (imbstat/anchors/fcos.py) against a naive dense reference of mmdetection 2.28.2's code."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from helpers import COCO_TRAIN_MINI, COCO_VAL_MINI, TINY_CATEGORIES, coco_doc, needs_shared_data

import imbstat
from imbstat.anchors.engine import batches, ground_truth, make_matcher
from imbstat.anchors.fcos import fcos_matcher
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.iou import box_iou
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import PRESETS, load_preset, preset_from_dict
from imbstat.errors import ImbstatError
from imbstat.report.document import dumps

FCOS = PRESETS["fcos"]
INF = 1e8  # mmdet/models/dense_heads/fcos_head.py:13


def mmdet_points(cells, strides, offset, dtype):
    """mmdet/core/anchor/point_generator.py:152-165 (MlvlPointGenerator.single_level_grid_priors), per level."""
    points = []
    for (feat_h, feat_w), stride in zip(cells, strides, strict=True):
        shift_x = ((torch.arange(0, feat_w) + offset) * stride).to(dtype)
        shift_y = ((torch.arange(0, feat_h) + offset) * stride).to(dtype)
        xx = shift_x.repeat(len(shift_y))  # _meshgrid, row_major (point_generator.py:70-88)
        yy = shift_y.view(-1, 1).repeat(1, len(shift_x)).view(-1)
        points.append(torch.stack([xx, yy], dim=-1))
    return points


def mmdet_fcos_targets(gt_bboxes, points, strides, regress_ranges, center_sampling, radius):
    """fcos_head.py:288-309 (get_targets) then :331-413 (_get_target_single): [N] assigned GT or -1."""
    num_levels = len(points)
    expanded_regress_ranges = [
        points[i].new_tensor(regress_ranges[i])[None].expand_as(points[i]) for i in range(num_levels)
    ]
    regress_ranges = torch.cat(expanded_regress_ranges, dim=0)
    points_cat = torch.cat(points, dim=0)
    num_points_per_lvl = [p.size(0) for p in points]
    num_points, num_gts = points_cat.size(0), gt_bboxes.size(0)
    if num_gts == 0:
        return torch.full((num_points,), -1, dtype=torch.int64)
    areas = (gt_bboxes[:, 2] - gt_bboxes[:, 0]) * (gt_bboxes[:, 3] - gt_bboxes[:, 1])
    areas = areas[None].repeat(num_points, 1)
    regress_ranges = regress_ranges[:, None, :].expand(num_points, num_gts, 2)
    gt_bboxes = gt_bboxes[None].expand(num_points, num_gts, 4)
    xs, ys = points_cat[:, 0], points_cat[:, 1]
    xs = xs[:, None].expand(num_points, num_gts)
    ys = ys[:, None].expand(num_points, num_gts)
    left = xs - gt_bboxes[..., 0]
    right = gt_bboxes[..., 2] - xs
    top = ys - gt_bboxes[..., 1]
    bottom = gt_bboxes[..., 3] - ys
    bbox_targets = torch.stack((left, top, right, bottom), -1)
    if center_sampling:
        center_xs = (gt_bboxes[..., 0] + gt_bboxes[..., 2]) / 2
        center_ys = (gt_bboxes[..., 1] + gt_bboxes[..., 3]) / 2
        center_gts = torch.zeros_like(gt_bboxes)
        stride = center_xs.new_zeros(center_xs.shape)
        lvl_begin = 0
        for lvl_idx, num_points_lvl in enumerate(num_points_per_lvl):
            lvl_end = lvl_begin + num_points_lvl
            stride[lvl_begin:lvl_end] = strides[lvl_idx] * radius
            lvl_begin = lvl_end
        x_mins, y_mins = center_xs - stride, center_ys - stride
        x_maxs, y_maxs = center_xs + stride, center_ys + stride
        center_gts[..., 0] = torch.where(x_mins > gt_bboxes[..., 0], x_mins, gt_bboxes[..., 0])
        center_gts[..., 1] = torch.where(y_mins > gt_bboxes[..., 1], y_mins, gt_bboxes[..., 1])
        center_gts[..., 2] = torch.where(x_maxs > gt_bboxes[..., 2], gt_bboxes[..., 2], x_maxs)
        center_gts[..., 3] = torch.where(y_maxs > gt_bboxes[..., 3], gt_bboxes[..., 3], y_maxs)
        cb_dist_left = xs - center_gts[..., 0]
        cb_dist_right = center_gts[..., 2] - xs
        cb_dist_top = ys - center_gts[..., 1]
        cb_dist_bottom = center_gts[..., 3] - ys
        center_bbox = torch.stack((cb_dist_left, cb_dist_top, cb_dist_right, cb_dist_bottom), -1)
        inside_gt_bbox_mask = center_bbox.min(-1)[0] > 0
    else:
        inside_gt_bbox_mask = bbox_targets.min(-1)[0] > 0
    max_regress_distance = bbox_targets.max(-1)[0]
    inside_regress_range = (max_regress_distance >= regress_ranges[..., 0]) & (
        max_regress_distance <= regress_ranges[..., 1]
    )
    areas[inside_gt_bbox_mask == 0] = INF
    areas[inside_regress_range == 0] = INF
    min_area, min_area_inds = areas.min(dim=1)
    min_area_inds[min_area == INF] = -1  # labels[min_area == INF] = self.num_classes: background
    return min_area_inds


def reference(grid, gts, num_gts, preset) -> Matches:
    """The naive dense labels of a batch, image by image, with IoU from every point's square."""
    dtype = torch.float32 if preset.float32 else torch.float64
    points = mmdet_points(grid.cells, preset.strides, preset.center_offset, dtype)
    anchors = torch.from_numpy(grid.xyxy).to(dtype)
    fg, gt_max = [], np.zeros(gts.shape[:2])
    for b in range(len(gts)):
        boxes = torch.from_numpy(gts[b, : num_gts[b]]).to(dtype)
        assigned = mmdet_fcos_targets(boxes, points, preset.strides, preset.regress_ranges, preset.center_sampling,
                                      preset.center_radius)  # fmt: skip
        if num_gts[b]:
            iou = box_iou(anchors, boxes[None])[0].double()  # [N, M]
            gt_max[b, : num_gts[b]] = iou.max(dim=0).values.numpy()
        anchor = torch.nonzero(assigned >= 0)[:, 0]
        for a in anchor.tolist():
            fg.append((b, a, int(assigned[a]), float(iou[a, assigned[a]])))
    rows = np.array(fg, np.float64).reshape(-1, 4)
    empty = np.zeros(0, np.int64)
    return Matches(rows[:, 0].astype(np.int64), rows[:, 1].astype(np.int64), rows[:, 2].astype(np.int64), rows[:, 3],
                   empty, empty, gt_max)  # fmt: skip


def assert_same(ours: Matches, ref: Matches) -> None:
    a, b = ours.sorted(), ref.sorted()
    for field in dataclasses.fields(Matches):
        np.testing.assert_array_equal(getattr(a, field.name), getattr(b, field.name), err_msg=field.name)


def match(grid, gts, num, preset) -> Matches:
    from imbstat.anchors.engine import Batch

    return fcos_matcher(preset)(Batch(grid, np.arange(len(gts)), gts, np.zeros(gts.shape[:2], np.int64), num))


def random_gts(rng: np.random.Generator, b: int, m: int, w: float, h: float, dtype) -> tuple[np.ndarray, np.ndarray]:
    """GTs with ties: corners on points and half-strides, distances exactly at range bounds, equal areas."""
    kind = rng.integers(0, 7, (b, m))
    cx, cy = rng.uniform(-10, w + 10, (b, m)), rng.uniform(-10, h + 10, (b, m))
    size = np.exp(rng.uniform(np.log(2), np.log(1.5 * max(w, h)), (b, m)))
    aspect = np.exp(rng.normal(0, 0.7, (b, m)))
    bw, bh = size / np.sqrt(aspect), size * np.sqrt(aspect)
    gts = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=2)
    gts[kind == 1] = np.round(gts[kind == 1] / 4) * 4  # corners on points and between them (strides 8..)
    gts[kind == 2] = np.round(gts[kind == 2] / 16) * 16 + 4  # ties at l = r, on 4 + 16k lattices
    point = (np.floor(rng.uniform(0, w / 8, (b, m))) + 0.5) * 8  # a level-0 point
    reach = rng.choice([64.0, 128.0, 256.0, 32.0], (b, m))  # max distance exactly on a range bound
    gts[kind == 3] = np.stack([point - reach, point - 3, point + 5, point + 7], axis=2)[kind == 3]
    gts[kind == 4] = [0, 0, w, h]  # whole image
    gts[kind == 5] = (np.stack([cx, cy, cx, cy], axis=2) + np.array([-1.5, -0.75, 1.5, 0.75]))[kind == 5]  # tiny
    gts[:, 1::3] = gts[:, 0::3][:, : gts[:, 1::3].shape[1]]  # duplicates: equal areas, lowest index wins
    gts[:, 2::5, :2] += 0.5  # equal areas elsewhere: shifted copies
    gts[:, 2::5, 2:] += 0.5
    gts = gts.astype(dtype).astype(np.float64)
    bad = (gts[..., 2] <= gts[..., 0]) | (gts[..., 3] <= gts[..., 1])
    gts[bad] = [8, 8, 16, 24]
    num = rng.integers(m // 2, m + 1, b)
    num[0], num[1] = 0, 1  # an image without GTs, one with one GT
    return gts, num


PRESET_VARIANTS = {
    "fcos": FCOS,
    "center-sampling": dataclasses.replace(FCOS, center_sampling=True),
    "center-sampling-0.7": dataclasses.replace(FCOS, center_sampling=True, center_radius=0.7),
    "custom-ranges": dataclasses.replace(FCOS, regress_ranges=((-1, 32), (32, 96), (96, 200), (150, 400), (400, 600))),
    "float32": dataclasses.replace(FCOS, dtype="float32"),
    "float32-center-sampling": dataclasses.replace(FCOS, dtype="float32", center_sampling=True),
}


@pytest.mark.parametrize("variant", list(PRESET_VARIANTS))
def test_equals_mmdet_reference_on_random_images(variant):
    preset = PRESET_VARIANTS[variant]
    rng = np.random.default_rng(list(PRESET_VARIANTS).index(variant))
    for pw, ph in ((320, 224), (224, 416)):
        grid = anchor_grid(preset, pw, ph)
        gts, num = random_gts(rng, 4, 30, pw - 7.0, ph - 13.0, np.float32 if preset.float32 else np.float64)
        ours = match(grid, gts, num, preset)
        assert_same(ours, reference(grid, gts, num, preset))
        assert len(ours.fg_anchor) > 20 and len(np.unique(ours.fg_gt)) > 5
        assert not np.isin(0, ours.fg_image)  # the image without GTs is all background


def test_ties_and_bounds_by_hand():
    """Worked out by hand: fcos points (x + 0.5)·8 at level 0 (4, 12, 20, ...), (x + 0.5)·16 at level 1."""
    grid = anchor_grid(FCOS, 256, 256)
    gts = np.array([[
        [4.0, 4.0, 28.0, 28.0],  # a: points 12, 20 per axis (4 and 28 lie on its edges: l = 0 fails)
        [4.0, 4.0, 28.0, 28.0],  # b: a's duplicate, same area: every tie goes to a
        [100.0, 100.0, 164.0, 110.0],  # c: y = 108, x = 108..156 at level 0 (max(l, r) <= 56 < 64)
        [72.0, 196.0, 140.0, 204.0],  # d: only the level-1 point (136, 200): l = 64, in [64, 128]
    ]])  # fmt: skip
    ours = match(grid, gts, np.array([4]), FCOS)
    found = set()
    for anchor, gt in zip(ours.fg_anchor, ours.fg_gt, strict=True):
        level = int(np.searchsorted(grid.level_offsets, anchor, side="right") - 1)
        row, col = divmod(int(anchor - grid.level_offsets[level]), int(grid.cols[level]))
        found.add((int(gt), level, row, col))
    expected = {(0, 0, r, c) for r in (1, 2) for c in (1, 2)} | {(2, 0, 13, c) for c in range(13, 20)} | {(3, 1, 12, 8)}
    assert found == expected
    # d's point: its square [136 - 64, 200 - 64, 136 + 64, 200 + 64] holds d (68 x 8 px) whole.
    d = ours.fg_iou[ours.fg_gt == 3]
    np.testing.assert_array_equal(d, [68.0 * 8.0 / (128.0 * 128.0)])


def _dataset_batches(path, preset):
    ds = imbstat.load(path)
    gt = ground_truth(ds, preset)
    return ds, gt, list(batches(gt, preset))


@pytest.mark.slow
@needs_shared_data
@pytest.mark.parametrize(("path", "variant", "images"), [(COCO_VAL_MINI, "fcos", None), (COCO_VAL_MINI, "float32", 16),
                                                         (COCO_TRAIN_MINI, "center-sampling", 16)])  # fmt: skip
def test_equals_mmdet_reference_on_shared_data(path, variant, images):
    """Every image of the val mini (the dense reference is slow: a sample for the variants)."""
    preset = PRESET_VARIANTS[variant]
    _, _, todo = _dataset_batches(path, preset)
    matcher = make_matcher(preset)
    checked, total = 0, 0
    for batch in todo:
        if images is not None and checked >= images:
            break
        ours = matcher(batch)
        assert_same(ours, reference(batch.grid, batch.gts, batch.num_gts, preset))
        checked, total = checked + len(batch.images), total + len(ours.fg_anchor)
    assert total > 200


@pytest.mark.slow
def test_toml_ranges_with_inf_and_json_round_trip(tmp_path, write_json):
    """A TOML ``inf`` bound loads; the report's preset block is strict JSON (null) and reads back equal."""
    from typer.testing import CliRunner

    from imbstat.cli import app
    from imbstat.stats.anchors import AnchorStats

    toml = tmp_path / "fcos_wide.toml"
    toml.write_text('base = "fcos"\ncenter_sampling = true\n'
                    "regress_ranges = [[-inf, 48], [48, 96], [96, 192], [192, 384], [384, inf]]\n")  # fmt: skip
    preset = load_preset(toml)
    assert preset.regress_ranges[0] == (-math.inf, 48.0) and preset.regress_ranges[-1] == (384.0, math.inf)
    assert "regress_ranges" not in PRESETS["fcos"].to_dict()  # the default ranges are left out of the block
    data = write_json(coco_doc([(1, 640, 480), (2, 320, 320)], [(1, 1, [10, 20, 300, 200], 0),
                               (1, 2, [50, 60, 20, 30], 0), (2, 1, [0, 0, 320, 320], 0)], TINY_CATEGORIES))  # fmt: skip
    report = tmp_path / "report.json"
    done = CliRunner().invoke(app, ["anchor-iou", str(data), "--preset", str(toml), "--json", str(report), "-q"])
    assert done.exit_code == 0, done.output
    doc = json.loads(report.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    block = next(v["preset"] for v in _dicts(doc) if "preset" in v and isinstance(v["preset"], dict))
    assert block["regress_ranges"][0] == [None, 48.0] and block["regress_ranges"][-1] == [384.0, None]
    assert preset_from_dict(block) == preset
    ds = imbstat.load(data)
    result = imbstat.anchor_stats(ds, preset=preset)
    assert AnchorStats.from_dict(json.loads(dumps(result.to_dict(raw=True)))).preset == preset
    assert result.totals["foreground"] > 0


def _dicts(value):
    """Every dict nested in a JSON document."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from _dicts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _dicts(v)


def test_bad_regress_ranges_are_one_line_errors(tmp_path):
    path = tmp_path / "bad.toml"
    for text in ("regress_ranges = [[-1, 64], [64, 128]]", "regress_ranges = [[64, -1], [64, 128], [128, 256], "
                 "[256, 512], [512, inf]]", 'regress_ranges = [["a", 1]]', "regress_ranges = [[-1, nan], [64, 128], "
                 "[128, 256], [256, 512], [512, inf]]"):  # fmt: skip
        path.write_text('base = "fcos"\n' + text)
        with pytest.raises(ImbstatError, match=r"regress_ranges|list of lists") as info:
            load_preset(path)
        assert "\n" not in str(info.value)


def test_gt_areas_at_mmdet_inf_marker():
    """fcos_head.py:405-410: a GT of area >= INF = 1e8 never wins (failing GTs carry INF too), unless every
    GT of the image passes at that point with an area above INF; area exactly INF is background."""
    preset = dataclasses.replace(FCOS, strides=(256, 512), regress_ranges=((-1.0, 1e9), (-1.0, 1e9)))
    grid = anchor_grid(preset, 12288, 12288)
    big, small = [0.0, 0.0, 12000.0, 12000.0], [100.0, 100.0, 700.0, 700.0]  # 1.44e8 px² and 3.6e5 px²
    exact = [0.0, 0.0, 10000.0, 10000.0]  # area INF exactly
    gts = np.array([[big, small], [big, big], [exact, [0, 0, 0, 0]], [big, [0, 0, 0, 0]]])
    num = np.array([2, 2, 1, 1])
    ours = match(grid, gts, num, preset)
    assert_same(ours, reference(grid, gts, num, preset))
    per_image = np.bincount(ours.fg_image, minlength=4)
    assert per_image[0] == 3 * 3 + 1  # only the small GT's points: 128, 384, 640 at level 0, 256 at level 1
    assert per_image[2] == 0 and per_image[1] == per_image[3] > 0  # all GTs pass: the big one wins
    assert (ours.fg_gt[ours.fg_image == 1] == 0).all()  # two equal big GTs: the lower index


def test_float32_gts_as_mmdetection_makes_them(write_json):
    """datasets/coco.py:173-182: [x1, y1, x1 + w, y1 + h] in Python floats, then float32; transforms.py:229-255:
    times float32([new_w / w, new_h / h, ...]) in float32, clipped to the new size."""
    rng = np.random.default_rng(5)
    images = [(1, 640, 427), (2, 333, 500), (3, 1000, 751)]
    boxes = [(int(i), [round(float(v), 2) for v in rng.uniform(0.3, 300, 4)]) for i in rng.integers(1, 4, 300)]
    ds = imbstat.load(write_json(coco_doc(images, [(i, 1, b, 0) for i, b in boxes], TINY_CATEGORIES)))
    preset = dataclasses.replace(PRESET_VARIANTS["float32"], min_gt_side=0.0)  # boxes under 1 px kept: all 300
    gt = ground_truth(ds, preset)
    ours = gt.xyxy_of(np.arange(len(gt.box)))
    size = {i: (w, h) for i, w, h in images}
    expected = []
    for row in gt.box:
        image_id, (x1, y1, w, h) = boxes[row]  # dataset rows in annotation order
        assert image_id == int(ds.images.image_id[ds.boxes.image[row]])
        old_w, old_h = size[image_id]
        scale = min(800 / min(old_w, old_h), 1333 / max(old_w, old_h))  # mmcv rescale_size: int(x * s + 0.5)
        new_w, new_h = int(old_w * scale + 0.5), int(old_h * scale + 0.5)
        factor = np.array([new_w / old_w, new_h / old_h] * 2, dtype=np.float32)
        box = np.array([x1, y1, x1 + w, y1 + h], dtype=np.float32) * factor
        box[0::2] = np.clip(box[0::2], 0, new_w)
        box[1::2] = np.clip(box[1::2], 0, new_h)
        expected.append(box)
    assert len(expected) == len(boxes)
    np.testing.assert_array_equal(ours, np.array(expected, np.float64))
    float64 = dataclasses.replace(FCOS, min_gt_side=0.0)
    cast = ground_truth(ds, float64).xyxy_of(np.arange(len(gt.box))).astype(np.float32)  # the float64 way, cast
    assert (cast != ours).any()  # the order of rounding matters on these boxes


def test_float32_rounds_a_distance_onto_the_range_bound():
    """x1 = 36 - 2^-18 (a float32): at the level-0 point (100, 100), l = 64 + 2^-18 exceeds 64 in float64, but
    rounds half to even to 64.0 in float32, inside the inclusive range [-1, 64]."""
    x1 = float(np.float32(36) - np.float32(2**-18))
    gts = np.array([[[x1, 97.0, 103.0, 103.0]]])
    grid = anchor_grid(FCOS, 256, 256)
    found = {}
    for variant in ("fcos", "float32"):
        preset = PRESET_VARIANTS[variant]
        ours = match(grid, gts, np.array([1]), preset)
        assert_same(ours, reference(grid, gts, np.array([1]), preset))
        found[variant] = {divmod(int(a), int(grid.cols[0])) for a in ours.fg_anchor}
    row_100 = {(12, c) for c in range(5, 12)}  # y = 100; x = 44 .. 92 (x = 36: r = 67 > 64)
    assert found["fcos"] == row_100
    assert found["float32"] == row_100 | {(12, 12)}  # x = 100


@pytest.mark.slow
def test_compare_of_a_retinanet_and_an_fcos_report(tmp_path):
    """``imbstat compare`` scores the anchor section of a retinanet report against a custom fcos one."""
    from imbstat.analysis import compute
    from imbstat.anchors.options import AnchorOptions
    from imbstat.data.sample import write_sample
    from imbstat.report.build import report_document

    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=12, seed=3))
    toml = tmp_path / "fcos_cs.toml"
    toml.write_text('base = "fcos"\ncenter_sampling = true\nregress_ranges = [[-1, 48], [48, 96], [96, 192], '
                    "[192, 384], [384, inf]]\n")  # fmt: skip
    paths = []
    for preset in ("retinanet", str(toml)):
        results = compute(ds, anchors=AnchorOptions(preset=preset))
        paths.append(tmp_path / f"{len(paths)}.json")
        paths[-1].write_text(dumps(report_document(results)))
    shift = imbstat.compare(paths[0], paths[1]).to_dict()
    assert shift["anchors"]["preset"] == {"a": "retinanet", "b": "fcos_cs"}
    assert shift["anchors"]["scores"]["foreground_background"] > 0  # the fg:bg distributions differ
    retinanet, fcos = (imbstat.anchor_stats(ds, preset=p) for p in ("retinanet", load_preset(toml)))
    assert retinanet.totals["foreground"] != fcos.totals["foreground"] > 0


@pytest.mark.parametrize(
    ("preset", "says"),
    [
        ("fcos", ["FCOS points", "[64, 128]", "[512, inf]", "inside the GT"]),
        ("atss", ["ATSS", "the 9 anchors per level"]),
        ("retinanet", ["foreground IoU >= 0.5, background < 0.4"]),
    ],
)
def test_anchors_command_says_how_each_assigner_labels(preset, says):
    """``imbstat anchors`` states the assigner's own rule, not MaxIoU's thresholds, under atss and fcos."""
    from typer.testing import CliRunner

    from imbstat.cli import app

    result = CliRunner().invoke(app, ["anchors", "--preset", preset], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    assert all(text in result.stdout for text in says)
    assert ("IoU >= 0.5, background" in result.stdout) == (preset == "retinanet")
