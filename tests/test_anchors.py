"""Anchor presets, generation, IoU and labeling: hand-worked cases, a naive reference, dense == sparse."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import TOY, random_gts
from sparse_reference import match_sparse_numpy

from imbstat import ImbstatError
from imbstat.anchors.assign import match_dense, match_dense_per_image
from imbstat.anchors.generate import anchor_grid, padded_size
from imbstat.anchors.iou import box_iou
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import PRESETS, Preset, load_preset
from imbstat.anchors.resize import Resize
from imbstat.anchors.sparse import match_sparse


def test_retinanet_shapes_by_hand():
    p = PRESETS["retinanet"]
    # sizes 4 · 8 · 2^(o/3): 32, 40.32, 50.80; ratio 0.5: w = 32 / sqrt(0.5) = 45.25, h = 32 · sqrt(0.5) = 22.63
    assert p.sizes(8) == pytest.approx([32.0, 40.3174736, 50.7968337])
    assert p.shapes(8)[0] == pytest.approx((45.254834, 22.627417))
    assert p.shapes(8)[4] == pytest.approx((40.3174736, 40.3174736))  # ratio 1, second size
    expected = [(45.254834, 22.627417), (32.0, 32.0), (22.627417, 45.254834)]  # one size 8 · 4 = 32
    np.testing.assert_allclose(PRESETS["rpn"].shapes(4), expected)


def test_resize_and_padding_by_hand():
    p = PRESETS["retinanet"]
    # 640×480: s = min(800/480, 1333/640) = 1.6667 -> 1067×800 (640 · 1.6667 + 0.5 = 1067.2), padded to 1088×800
    w, h = p.resize.new_size(np.array([640.0]), np.array([480.0]))
    assert (w[0], h[0]) == (1067, 800)
    pw, ph = padded_size(p, np.array([640.0]), np.array([480.0]))
    assert (pw[0], ph[0]) == (1088, 800)


def test_anchor_count_and_first_anchor():
    grid = anchor_grid(PRESETS["retinanet"], 1344, 800)
    # cells per level: ceil(800/8)·ceil(1344/8) + ... = 100·168 + 50·84 + 25·42 + 13·21 + 7·11 = 22,400; × 9
    assert len(grid) == 201_600
    assert grid.cells == ((100, 168), (50, 84), (25, 42), (13, 21), (7, 11))
    np.testing.assert_allclose(grid.xyxy[0], [-22.627417, -11.3137085, 22.627417, 11.3137085])  # centre (0, 0)
    # second cell of level 3 is one stride to the right; level 4 starts after 16,800 · 9 anchors
    np.testing.assert_allclose(grid.xyxy[9], grid.xyxy[0] + [8, 0, 8, 0])
    assert grid.level[151_200] == 1 and grid.level[151_199] == 0


def test_legacy_anchors_by_hand():
    grid = anchor_grid(PRESETS["retinanet-v1"], 64, 64)
    # mmdetection 1.x: centre 3.5, w = 45.25, h = 22.63: x1 = round(3.5 - 44.25/2) = -19, y1 = round(3.5 - 21.63/2) = -7
    np.testing.assert_array_equal(grid.xyxy[0], [-19, -7, 26, 14])


def _naive_iou(a, g, one=0.0):
    iw = max(min(a[2], g[2]) - max(a[0], g[0]) + one, 0.0)
    ih = max(min(a[3], g[3]) - max(a[1], g[1]) + one, 0.0)
    inter = iw * ih
    return inter / ((a[2] - a[0] + one) * (a[3] - a[1] + one) + (g[2] - g[0] + one) * (g[3] - g[1] + one) - inter)


@pytest.mark.parametrize("legacy", [False, True])
def test_box_iou_against_double_loop(legacy):
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 50, (20, 2))
    a = np.concatenate([a, a + rng.uniform(1, 30, (20, 2))], axis=1)
    g = rng.uniform(0, 50, (2, 6, 2))
    g = np.concatenate([g, g + rng.uniform(1, 30, (2, 6, 2))], axis=2)
    got = box_iou(torch.from_numpy(a), torch.from_numpy(g), legacy).numpy()
    one = 1.0 if legacy else 0.0
    expected = [[[_naive_iou(a[i], g[b, j], one) for j in range(6)] for i in range(20)] for b in range(2)]
    np.testing.assert_array_equal(got, expected)  # same operations in the same order: bit-equal
    # detectron2-style sanity: 2×2 box inside a 4×4 one -> 4/16
    assert box_iou(torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([[[1.0, 1, 3, 3]]]))[0, 0, 0] == 0.25


def _naive_assign(anchors: np.ndarray, gts: np.ndarray, preset: Preset) -> dict[int, tuple[int, float]]:
    """MaxIoUAssigner by loops: {anchor: (gt, iou)} for foreground; ignored marked with gt -1."""
    one = 1.0 if preset.legacy else 0.0
    iou = np.array([[_naive_iou(a, g, one) for g in gts] for a in anchors]).reshape(len(anchors), len(gts))
    out: dict[int, tuple[int, float]] = {}
    for i in range(len(anchors)):
        if len(gts) == 0:
            continue
        j = int(np.argmax(iou[i]))  # first maximum
        if iou[i, j] >= preset.pos_iou:
            out[i] = (j, iou[i, j])
        elif iou[i, j] >= preset.neg_iou:
            out[i] = (-1, iou[i, j])
    for j in range(len(gts)):
        best = iou[:, j].max()
        if preset.low_quality and best > 0 and best >= preset.min_pos_iou:
            for i in np.flatnonzero(iou[:, j] == best):
                out[int(i)] = (j, best)
    return out


def _as_dict(m: Matches, image: int = 0) -> dict[int, tuple[int, float]]:
    out = {int(a): (-1, math.nan) for a in m.ignored_anchor[m.ignored_image == image]}
    sel = m.fg_image == image
    out.update({int(a): (int(g), float(v)) for a, g, v in zip(m.fg_anchor[sel], m.fg_gt[sel], m.fg_iou[sel],
                                                              strict=True)})  # fmt: skip
    return out


def _both(grid, gts: list[list[float]], preset: Preset) -> tuple[Matches, Matches]:
    g = np.array(gts, np.float64).reshape(1, -1, 4)
    num = np.array([g.shape[1]])
    dense = match_dense(torch.from_numpy(grid.xyxy), torch.from_numpy(g), torch.from_numpy(num), preset, 7)
    compiled = match_sparse(grid, g, num, preset)
    sparse = match_sparse_numpy(grid, g, num, preset)
    for field in dataclasses.fields(Matches):
        np.testing.assert_array_equal(getattr(compiled.sorted(), field.name), getattr(sparse.sorted(), field.name))
    return dense, sparse


def test_hand_cases_on_toy_grid():
    grid = anchor_grid(TOY, 64, 64)
    assert len(grid) == 16  # 4×4 cells, anchor (r, c) = [16c - 16, 16r - 16, 16c + 16, 16r + 16]
    a11 = 1 * 4 + 1  # [0, 0, 32, 32]
    a12 = 1 * 4 + 2  # [16, 0, 48, 32]
    for m in _both(grid, [[0, 0, 32, 32]], TOY):
        # exactly on anchor (1, 1): IoU 1; its neighbours overlap 16×32: 512 / 1536 = 1/3 -> background
        assert _as_dict(m) == {a11: (0, 1.0)}
    for m in _both(grid, [[4, 0, 36, 32]], TOY):
        # anchor (1, 1): 28·32 / (2048 - 896) = 0.778 -> foreground; (1, 2): 20·32 / (2048 - 640) = 0.4545 -> ignored
        got = _as_dict(m)
        assert got[a11] == (0, pytest.approx(896 / 1152))
        assert got[a12][0] == -1 and set(got) == {a11, a12}
    for m in _both(grid, [[14, 14, 18, 18]], TOY):
        # a 4×4 GT inside anchor (1, 1) only: IoU 16 / 1024, foreground through low-quality matching alone
        assert _as_dict(m) == {a11: (0, 16 / 1024)}


def test_plateau_ties_are_all_foreground():
    preset = dataclasses.replace(TOY, strides=(8,), octave_base_scale=4.0)  # 32×32 anchors every 8 px
    grid = anchor_grid(preset, 64, 64)
    for m in _both(grid, [[14, 14, 18, 18]], preset):
        # anchors [8i - 16, 8i + 16] contain [14, 18] for i = 1, 2, 3: a 3×3 plateau, all IoU 16/1024 exactly
        assert len(m.fg_anchor) == 9 and set(m.fg_iou) == {16 / 1024}


def test_later_gt_overwrites_in_low_quality_matching():
    grid = anchor_grid(TOY, 64, 64)
    a11 = 5
    for m in _both(grid, [[12, 12, 20, 20], [14, 14, 18, 18]], TOY):
        # both tiny GTs are best matched by anchor (1, 1); the later GT (index 1) keeps it
        assert _as_dict(m)[a11] == (1, 16 / 1024)
        assert m.gt_max_iou[0].tolist() == [64 / 1024, 16 / 1024]


def test_no_gts_is_all_background():
    grid = anchor_grid(TOY, 64, 64)
    g = np.zeros((2, 0, 4))
    num = np.zeros(2, np.int64)
    for m in (match_dense(torch.from_numpy(grid.xyxy), torch.from_numpy(g), torch.from_numpy(num), TOY),
              match_sparse_numpy(grid, g, num, TOY), match_sparse(grid, g, num, TOY)):  # fmt: skip
        assert len(m.fg_anchor) == 0 and len(m.ignored_anchor) == 0 and m.gt_max_iou.shape == (2, 0)


SPARSE_PATHS = [match_sparse_numpy, match_sparse]


@pytest.mark.parametrize("sparse_path", SPARSE_PATHS, ids=["numpy", "numba"])
@pytest.mark.parametrize("name", ["retinanet", "rpn", "retinanet-v1"])
@pytest.mark.parametrize("seed", range(3))
def test_dense_equals_sparse_on_random_images(name, seed, sparse_path):
    preset = dataclasses.replace(PRESETS[name], resize=Resize(160, 267))  # small images keep the dense path quick
    rng = np.random.default_rng(seed)
    for pw, ph in ((192, 160), (160, 288)):
        grid = anchor_grid(preset, pw, ph)
        gts, num = random_gts(rng, 3, 40, pw - 20.0, ph - 5.0)
        dense = match_dense(torch.from_numpy(grid.xyxy), torch.from_numpy(gts), torch.from_numpy(num), preset, 4096)
        sparse = sparse_path(grid, gts, num, preset)
        d, s = dense.sorted(), sparse.sorted()
        for field in dataclasses.fields(Matches):
            np.testing.assert_array_equal(getattr(d, field.name), getattr(s, field.name), err_msg=field.name)
        assert len(d.fg_anchor) > 0


@pytest.mark.parametrize("name", ["retinanet", "retinanet-v1", "torchvision-retinanet"])
def test_dense_per_image_equals_padded_batch_and_sparse(name):
    # The CPU's batching (image by image, unpadded, small chunks, kept IoU blocks, images on threads) against
    # the padded [B, M] batch in one chunk and the sparse path; an image without GTs included.
    preset = dataclasses.replace(PRESETS[name], resize=Resize(160, 267))
    dtype = torch.float32 if preset.float32 else torch.float64
    grid = anchor_grid(preset, 192, 160)
    gts, num = random_gts(np.random.default_rng(7), 4, 30, 172.0, 155.0)
    num[1] = 0
    anchors, padded = torch.from_numpy(grid.xyxy).to(dtype), torch.from_numpy(gts).to(dtype)
    whole = match_dense(anchors, padded, torch.from_numpy(num), preset, len(grid)).sorted()
    sparse = match_sparse(grid, padded.double().numpy(), num, preset).sorted()
    assert len(whole.fg_anchor) > 0 and 1 not in whole.fg_image
    threads = torch.get_num_threads()
    for chunk, keep, workers in ((1024, 0, 1), (1 << 17, 1e9, 3)):
        per_image = match_dense_per_image(anchors, padded, num, preset, chunk, keep, workers).sorted()
        for field in dataclasses.fields(Matches):
            got = getattr(per_image, field.name)
            np.testing.assert_array_equal(got, getattr(whole, field.name), err_msg=field.name)
            np.testing.assert_array_equal(got, getattr(sparse, field.name), err_msg=field.name)
            assert got.dtype == getattr(whole, field.name).dtype, field.name
    assert torch.get_num_threads() == threads  # set to 1 while it labels, then restored


@pytest.mark.parametrize("name", ["retinanet", "retinanet-v1"])
def test_dense_equals_naive_reference(name):
    preset = dataclasses.replace(PRESETS[name], resize=Resize(64, 96), strides=(8, 16, 32))
    grid = anchor_grid(preset, 96, 64)
    rng = np.random.default_rng(1)
    gts, _ = random_gts(rng, 1, 6, 96.0, 64.0)
    dense, _ = _both(grid, gts[0].tolist(), preset)
    got = _as_dict(dense)
    expected = _naive_assign(grid.xyxy, gts[0], preset)
    assert set(got) == set(expected)
    for a, (j, v) in expected.items():
        assert got[a][0] == j and (j < 0 or got[a][1] == v)


def test_preset_toml(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "rpn"\nstrides = [8, 16]\npos_iou = 0.6\nresize_short = 600\n')
    p = load_preset(path)
    assert (p.name, p.strides, p.pos_iou, p.neg_iou, p.resize.short, p.octave_base_scale) == (
        "mine", (8, 16), 0.6, 0.3, 600, 8.0)  # fmt: skip
    for text, message in (
        ("pos_iou = 0.3\nneg_iou = 0.4\n", "inconsistent preset: need 0 < neg_iou <= pos_iou <= 1"),
        ("neg_iou = 0\n", "need 0 < neg_iou <= pos_iou <= 1, got neg_iou=0.0"),  # no anchor could be background
        ("strides = 8\n", "(strides): expected a list of numbers"),
        ("pos_iou = 'high'\n", "(pos_iou): expected float, got str"),
        ("stride = [8]\n", "unknown keys stride; expected some of"),
        ("pos_iou = \n", "malformed TOML"),
    ):
        path.write_text(text)
        with pytest.raises(ImbstatError) as info:
            load_preset(path)
        assert message in str(info.value) and str(path) in str(info.value)
    with pytest.raises(ImbstatError, match="unknown preset; expected one of retinanet, retinanet-v1, rpn"):
        load_preset("yolo")


@pytest.mark.parametrize("name", ["retinanet", "retinanet-v1"])
def test_gt_a_ten_millionth_of_a_pixel_wide(name):
    # its best IoU (~1e-9) is below IOU_MARGIN, so its windows hold every anchor touching it: low-quality
    # matching still finds the anchors the dense path gives it
    preset = dataclasses.replace(PRESETS[name], resize=Resize(96, 160))
    grid = anchor_grid(preset, 128, 96)
    dense, sparse = _both(grid, [[31.0, 24.0, 31.0 + 1e-7, 40.0], [60.0, 20.0, 90.0, 70.0]], preset)
    d, s = dense.sorted(), sparse.sorted()
    for field in dataclasses.fields(Matches):
        np.testing.assert_array_equal(getattr(d, field.name), getattr(s, field.name), err_msg=field.name)
    assert (d.fg_gt == 0).any() and (preset.legacy or 0 < d.gt_max_iou[0, 0] < 1e-6)  # legacy: 1 px wide


@pytest.mark.parametrize("name", ["retinanet", "retinanet-v1", "rpn"])
def test_corners_are_the_bits_of_xyxy(name):
    grid = anchor_grid(PRESETS[name], 224, 160)
    assert len(grid) == len(grid.xyxy)
    index = np.arange(len(grid))
    np.testing.assert_array_equal(grid.corners(index), grid.xyxy)  # exact: the sparse path relies on it
    np.testing.assert_array_equal(grid.corners(index.reshape(-1, 3)), grid.xyxy.reshape(-1, 3, 4))


FUSED_CHECK = """
import dataclasses, sys
import numpy as np, torch
import triton.runtime.interpreter as interpreter
# Triton 3.6's interpreter takes int() of 1-element arrays, which numpy >= 2.3 refuses: a test-only shim.
patch = interpreter._patch_lang_tensor
def _patch_lang_tensor(tensor, scope):
    patch(tensor, scope)
    scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))
interpreter._patch_lang_tensor = _patch_lang_tensor
sys.path.insert(0, "tests")
from helpers import random_gts
from imbstat.anchors.assign import match_dense
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import PRESETS
from imbstat.anchors.resize import Resize
from imbstat.anchors.sparse import match_sparse
for name in ("retinanet", "rpn", "retinanet-v1"):
    preset = dataclasses.replace(PRESETS[name], resize=Resize(160, 267))
    rng = np.random.default_rng(0)
    for pw, ph in ((192, 160), (160, 288)):
        grid = anchor_grid(preset, pw, ph)
        gts, num = random_gts(rng, 3, 40, pw - 20.0, ph - 5.0)
        num[0] = 0  # an image without GTs in the batch
        args = (torch.from_numpy(grid.xyxy), torch.from_numpy(gts), torch.from_numpy(num), preset)
        fused = match_dense(*args, fused=True).sorted()
        for other in (match_dense(*args, 4096).sorted(), match_sparse(grid, gts, num, preset).sorted()):
            for field in dataclasses.fields(Matches):
                np.testing.assert_array_equal(getattr(fused, field.name), getattr(other, field.name), field.name)
        assert len(fused.fg_anchor) > 0
print("fused ok")
"""


def test_fused_triton_kernels_in_the_interpreter():
    # Triton's interpreter runs the kernels with numpy on the CPU: the same float64 expression,
    # hence the same labels as the torch and sparse paths. On a GPU, `pytest -m cuda` runs them compiled.
    pytest.importorskip("triton")
    import os
    import subprocess
    import sys

    env = {**os.environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", FUSED_CHECK], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "fused ok" in done.stdout, done.stderr[-3000:]
