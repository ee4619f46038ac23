"""Anchor statistics over a Dataset: hand-worked toy case, dense == sparse, shards merge, the CLI contract."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from anchor_stats_reference import hist2d, tally_numpy
from helpers import COCO_VAL_MINI, TOY, assert_same_anchor_stats, coco_doc, needs_shared_data
from typer.testing import CliRunner

import imbstat
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.resize import Resize
from imbstat.cli import app
from imbstat.stats.anchor_sums import AnchorSums
from imbstat.stats.anchors import PER_IMAGE_FIELDS, AnchorStats
from imbstat.stats.coverage import coverage, grid_coverage

runner = CliRunner()


def test_coverage_by_hand():
    # 64×64 image, G = 4: cell centres at 8, 24, 40, 56; [0, 0, 32, 32] covers centres 8 and 24 on each axis
    got = coverage(np.array([[0.0, 0, 32, 32]]), np.array([64.0]), np.array([64.0]), 4)
    expected = np.zeros((4, 4), int)
    expected[:2, :2] = 1
    np.testing.assert_array_equal(got, expected)
    # a box ending exactly on a centre does not cover it (x1 <= centre < x2)
    assert coverage(np.array([[8.0, 8, 24, 24]]), np.array([64.0]), np.array([64.0]), 4).sum() == 1


def test_grid_coverage_equals_coverage_of_every_anchor():

    preset = imbstat.anchors.presets.PRESETS["retinanet"]
    grid = anchor_grid(preset, 224, 160)
    ones = np.ones(len(grid))
    expected = coverage(grid.xyxy, ones * 213, ones * 150, 16)  # the difference array over all anchors
    np.testing.assert_array_equal(grid_coverage(grid, 213, 150, 16), expected)


def test_toy_dataset_by_hand(write_json):
    ds = imbstat.load(write_json(coco_doc([(1, 64, 64)], [(1, 1, [4, 0, 32, 32], 0)], [(1, "a"), (2, "b")])))
    s = imbstat.anchor_stats(ds, preset=TOY, grid=4)
    # 16 anchors [16c - 16, 16r - 16, 16c + 16, 16r + 16]; GT [4, 0, 36, 32]:
    # (r1, c1) IoU 896/1152 = 0.778 -> foreground; (r1, c2) 640/1408 = 0.455 -> ignored; the rest background
    assert s.totals == {"total": 16, "foreground": 1, "background": 14, "ignored": 1}
    assert s.class_foreground.tolist() == [1, 0]
    assert np.flatnonzero(s.positive_iou).tolist() == [15]  # 0.778 in [0.75, 0.80)
    assert s.positive_iou_low_quality.sum() == 0
    assert s.gt_count.tolist() == [[0, 1, 0], [0, 0, 0]]  # 32·32 = 1024 is not < 32²: medium
    tl = np.zeros((4, 4), int)
    tl[2, 1] = 1  # top-left offset ((0 - 4)/32, (0 - 0)/32) = (-0.125, 0) -> col floor(0.375·4) = 1, row 2
    np.testing.assert_array_equal(s.relative_top_left, tl)
    fg = np.zeros((4, 4), int)
    fg[:2, :2] = 1  # the foreground anchor [0, 0, 32, 32] covers centres 8 and 24
    np.testing.assert_array_equal(s.overlap_foreground, fg)
    # background by a second method: every background anchor's coverage, summed by hand
    grid = anchor_grid(TOY, 64, 64)
    background = np.delete(grid.xyxy, [5, 6], axis=0)  # anchors (1, 1) and (1, 2)
    centres = np.array([8.0, 24, 40, 56])
    inside_x = (background[:, None, 0] <= centres) & (centres < background[:, None, 2])  # [A, 4]
    inside_y = (background[:, None, 1] <= centres) & (centres < background[:, None, 3])
    np.testing.assert_array_equal(s.overlap_background, (inside_y[:, :, None] & inside_x[:, None, :]).sum(0))


def _small(ds_path):
    ds = imbstat.load(ds_path)
    preset = dataclasses.replace(imbstat.anchors.presets.PRESETS["retinanet"], resize=Resize(200, 333))
    return ds, preset


@needs_shared_data
def test_dense_equals_sparse_on_real_data():
    ds, preset = _small(COCO_VAL_MINI)
    assert_same_anchor_stats(
        imbstat.anchor_stats(ds, preset=preset, method="dense"),
        imbstat.anchor_stats(ds, preset=preset, method="sparse"),
    )


def test_dense_equals_sparse_and_shards_merge(tmp_path):
    from imbstat.data.sample import write_sample

    ds, preset = _small(write_sample(tmp_path / "sample.json", num_images=24))
    sparse = imbstat.anchor_stats(ds, preset=preset, method="sparse", batch_size=5, threads=1)
    assert_same_anchor_stats(imbstat.anchor_stats(ds, preset=preset, method="dense", batch_size=3), sparse)
    assert_same_anchor_stats(
        imbstat.anchor_stats(ds, preset=preset, method="sparse", batch_size=2, threads=3), sparse
    )  # 2·3 in flight
    assert sparse.totals["foreground"] > 0 and sparse.positive_iou_low_quality.sum() > 0
    half = np.arange(ds.num_images) % 2 == 0
    parts = [imbstat.anchor_stats(ds.select_images(k), preset=preset) for k in (half, ~half)]
    merged = AnchorStats.merge(parts)
    order = np.concatenate([np.flatnonzero(half), np.flatnonzero(~half)])
    back = np.argsort(order)
    assert_same_anchor_stats(
        dataclasses.replace(merged, **{f: getattr(merged, f)[back] for f in PER_IMAGE_FIELDS}), sparse
    )


@pytest.mark.parametrize("preset_name", ["retinanet", "retinanet-v1", "torchvision-retinanet"])
def test_compiled_tally_equals_numpy_reference(tmp_path, write_json, monkeypatch, preset_name):
    from imbstat.data.sample import write_sample

    ds, _ = _small(write_sample(tmp_path / "sample.json", num_images=24))
    base = imbstat.anchors.presets.PRESETS[preset_name]  # torchvision's: per-axis steps, float32 corners
    preset = dataclasses.replace(base, resize=dataclasses.replace(base.resize, short=200, long=333))
    # plus a GT exactly on an anchor (IoU 1.0, the histogram's closed last edge) and one on a 0.5 edge
    # (anchor [0, 0, 32, 32] -> IoU 1; anchors [16, 0, 48, 32] and [32, 0, 64, 32] vs [32, 0, 48, 32] -> 0.5)
    toy = imbstat.load(write_json(coco_doc([(1, 64, 64)], [(1, 1, [0, 0, 32, 32], 0), (1, 1, [32, 0, 16, 32], 0)],
                                           [(1, "a")])))  # fmt: skip
    compiled = [imbstat.anchor_stats(ds, preset=preset, batch_size=5), imbstat.anchor_stats(toy, preset=TOY, grid=4)]
    assert compiled[1].positive_iou[[10, 19]].tolist() == [2, 1] and compiled[1].positive_iou_low_quality.sum() == 0
    assert compiled[0].positive_iou_low_quality.sum() > 0
    monkeypatch.setattr(AnchorSums, "_tally", tally_numpy)  # the numpy oracle instead of the kernel
    assert_same_anchor_stats(imbstat.anchor_stats(ds, preset=preset, batch_size=5), compiled[0])
    assert_same_anchor_stats(imbstat.anchor_stats(toy, preset=TOY, grid=4), compiled[1])


def test_pixel_sizes_required(tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("ImageID,LabelName,XMin,XMax,YMin,YMax\na,/m/1,0.1,0.5,0.1,0.5\n")
    result = runner.invoke(app, ["anchor-iou", str(boxes), "--quiet"])
    assert result.exit_code == 2
    assert result.stderr == (
        f"imbstat: error: {boxes}: anchor statistics needs image sizes in pixels, unknown for 1 of 1 images; "
        "pass --sizes SIZES.csv (ImageID,Width,Height) or --images DIR\n"
    )


def test_anchor_iou_json_contract(tiny_coco):
    result = runner.invoke(app, ["anchor-iou", str(tiny_coco), "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "anchor-iou"
    a = doc["anchors"]
    assert a["total"] == a["foreground"] + a["background"] + a["ignored"]
    assert set(doc["per_image"]) >= {"foreground_mean", "background_mean", "ignored_mean"}
    assert doc["per_class"][0].keys() == {"category_id", "name", "foreground", "foreground_per_image", "instances"}
    assert sum(c["instances"] for c in doc["per_class"]) == 3  # the tiny set's three non-crowd boxes
    assert len(doc["positive_iou"]["counts"]) == 20 and len(doc["positive_iou"]["low_quality"]) == 20
    assert sum(doc["positive_iou"]["counts"]) == a["foreground"]
    assert {"per_gt", "relative_spatial", "overlap", "scores"} <= doc.keys()
    by_class = {c["name"]: c["gts"] for c in doc["per_gt"]["by_class"]}
    assert by_class == {"cat": 2, "dog": 1}  # the crowd cat takes no part in matching
    assert doc["per_gt"]["all"]["foreground"] == a["foreground"]
    assert doc["preset"]["name"] == "retinanet" and doc["preset"]["strides"] == [8, 16, 32, 64, 128]
    assert len(doc["overlap"]["foreground"]) == 32


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--device", "cuda:7"], "device 'cuda:7' requested but torch sees no CUDA device; use --device cpu"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--method", "fast"], "unknown method 'fast'; expected one of auto, sparse, dense, fused"),
        (["--method", "fused"], "--method fused runs Triton kernels on CUDA, not on 'cpu'; use --method dense"),
        (
            ["--preset", "ssd"],
            "ssd: unknown preset; expected one of retinanet, retinanet-v1, rpn, mmdet-retinanet, "
            "torchvision-retinanet, torchvision-rpn, detectron2-retinanet, atss, fcos or a .toml file",
        ),
    ],
)
def test_anchor_iou_bad_options(tiny_coco, args, message):
    import torch

    if torch.cuda.is_available() and "cuda" in args[-1]:
        pytest.skip("a GPU is present")
    result = runner.invoke(app, ["anchor-iou", str(tiny_coco), "--quiet", *args])
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1


def test_sparse_with_a_cuda_device_says_it_runs_on_the_cpu(tiny_coco):
    result = runner.invoke(app, ["anchor-iou", str(tiny_coco), "--quiet", "--method", "sparse", "--device", "cuda"])
    assert result.stderr.startswith("imbstat: note: the sparse path runs on the CPU; --device cuda is not used\n")


def test_anchors_command():
    result = runner.invoke(app, ["anchors", "--image-size", "640x480", "--json", "-"])
    doc = json.loads(result.stdout)
    assert doc["padded_size"] == [1088, 800]  # 640×480 -> 1067×800 -> padded to multiples of 32
    # cells per level: 100·136 + 50·68 + 25·34 + 13·17 + 7·9 = 18,134; × 9 anchors
    assert doc["total"] == 163_206
    assert [lv["rows"] for lv in doc["levels"]] == [100, 50, 25, 13, 7]


@pytest.mark.cuda
@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("method", ["dense", "fused"])
def test_cuda_dense_equals_cpu_sparse(tmp_path, method):
    from imbstat.data.sample import write_sample

    if method == "fused":
        pytest.importorskip("triton")
    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=64))
    assert_same_anchor_stats(
        imbstat.anchor_stats(ds, device="cuda", method=method), imbstat.anchor_stats(ds, method="sparse")
    )


def test_compiled_relative_cell_clips_huge_offsets_like_numpy():
    from imbstat.stats.anchor_kernel import _relative_cell

    # offsets in a GT's frame grow without bound as its width goes to 0: 1e18 must not wrap an int64
    for x in (-np.inf, -1e300, -1e18, -0.5, 0.0, 0.49, 1e17, 1e18, 1e300, np.inf):
        expected = int(np.flatnonzero(hist2d(np.array([x]), np.array([0.0]), 32).sum(axis=0))[0])
        assert _relative_cell(x, 0.5, 32) == expected, x


def test_compiled_iou_bin_is_numpys_histogram_rule():
    from imbstat.stats.anchor_kernel import _iou_bin

    edges = np.linspace(0.0, 1.0, 21)
    random = np.random.default_rng(0).random(999)
    values = np.concatenate([edges, np.nextafter(edges, -1), np.nextafter(edges, 2), random])
    values = values[(values >= 0) & (values <= 1)]
    expected = np.array([np.histogram([v], bins=20, range=(0.0, 1.0))[0].argmax() for v in values])
    np.testing.assert_array_equal([_iou_bin(v, edges) for v in values], expected)
