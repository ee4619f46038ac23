"""The atss assigner (imbstat.anchors.atss) against a naive dense ATSSAssigner written from mmdetection's code."""

from __future__ import annotations

import dataclasses
import json
import platform
import warnings

import numpy as np
import pytest
from helpers import COCO_TRAIN_MINI, COCO_VAL_MINI, coco_doc, needs_shared_data
from typer.testing import CliRunner

from imbstat.anchors.atss import match_atss
from imbstat.anchors.engine import batches, ground_truth, make_matcher
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.presets import PRESETS, load_preset
from imbstat.anchors.resize import Resize
from imbstat.cli import app

# mmdetection's ATSSAssigner, the reference below, is torch code (imbstat's ATSS needs none).
torch = pytest.importorskip("torch")

ATSS = PRESETS["atss"]
INF = 100000000


def bbox_overlaps(bboxes1: torch.Tensor, bboxes2: torch.Tensor) -> torch.Tensor:
    """mmdet 2.28.2 core/bbox/iou_calculators/iou2d_calculator.py:212-252, mode 'iou', not aligned."""
    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    lt = torch.max(bboxes1[..., :, None, :2], bboxes2[..., None, :, :2])  # [rows, cols, 2]
    rb = torch.min(bboxes1[..., :, None, 2:], bboxes2[..., None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    overlap = wh[..., 0] * wh[..., 1]
    union = area1[..., None] + area2[..., None, :] - overlap
    union = torch.max(union, union.new_tensor([1e-6]))
    return overlap / union


def atss_assign(bboxes: torch.Tensor, num_level_bboxes: list[int], gt_bboxes: torch.Tensor, topk: int):
    """mmdet 2.28.2 core/bbox/assigners/atss_assigner.py ATSSAssigner.assign (alpha None, no ignored GTs).

    Returns (assigned_gt_inds [N]: 0 background, j + 1 for GT j; overlaps [N, G]). One choice of ours:
    torch.topk leaves the order of equal distances open; a stable sort takes the lower anchor index.
    """
    num_gt, num_bboxes = gt_bboxes.size(0), bboxes.size(0)
    overlaps = bbox_overlaps(bboxes, gt_bboxes)  # :108
    assigned_gt_inds = overlaps.new_full((num_bboxes,), 0, dtype=torch.long)  # :128
    if num_gt == 0:  # :132-145
        return assigned_gt_inds, overlaps
    gt_cx = (gt_bboxes[:, 0] + gt_bboxes[:, 2]) / 2.0  # :148-157
    gt_cy = (gt_bboxes[:, 1] + gt_bboxes[:, 3]) / 2.0
    gt_points = torch.stack((gt_cx, gt_cy), dim=1)
    bboxes_cx = (bboxes[:, 0] + bboxes[:, 2]) / 2.0
    bboxes_cy = (bboxes[:, 1] + bboxes[:, 3]) / 2.0
    bboxes_points = torch.stack((bboxes_cx, bboxes_cy), dim=1)
    distances = (bboxes_points[:, None, :] - gt_points[None, :, :]).pow(2).sum(-1).sqrt()
    candidate_idxs = []  # :169-182
    start_idx = 0
    for bboxes_per_level in num_level_bboxes:
        end_idx = start_idx + bboxes_per_level
        distances_per_level = distances[start_idx:end_idx, :]
        selectable_k = min(topk, bboxes_per_level)
        topk_idxs_per_level = torch.sort(distances_per_level, dim=0, stable=True)[1][:selectable_k]
        candidate_idxs.append(topk_idxs_per_level + start_idx)
        start_idx = end_idx
    candidate_idxs = torch.cat(candidate_idxs, dim=0)
    candidate_overlaps = overlaps[candidate_idxs, torch.arange(num_gt)]  # :186-191
    overlaps_thr_per_gt = candidate_overlaps.mean(0) + candidate_overlaps.std(0)
    is_pos = candidate_overlaps >= overlaps_thr_per_gt[None, :]
    for gt_idx in range(num_gt):  # :194-210
        candidate_idxs[:, gt_idx] += gt_idx * num_bboxes
    ep_bboxes_cx = bboxes_cx.view(1, -1).expand(num_gt, num_bboxes).contiguous().view(-1)
    ep_bboxes_cy = bboxes_cy.view(1, -1).expand(num_gt, num_bboxes).contiguous().view(-1)
    candidate_idxs = candidate_idxs.view(-1)
    l_ = ep_bboxes_cx[candidate_idxs].view(-1, num_gt) - gt_bboxes[:, 0]
    t_ = ep_bboxes_cy[candidate_idxs].view(-1, num_gt) - gt_bboxes[:, 1]
    r_ = gt_bboxes[:, 2] - ep_bboxes_cx[candidate_idxs].view(-1, num_gt)
    b_ = gt_bboxes[:, 3] - ep_bboxes_cy[candidate_idxs].view(-1, num_gt)
    is_in_gts = torch.stack([l_, t_, r_, b_], dim=1).min(dim=1)[0] > 0.01
    is_pos = is_pos & is_in_gts
    overlaps_inf = torch.full_like(overlaps, -INF).t().contiguous().view(-1)  # :214-222
    index = candidate_idxs.view(-1)[is_pos.view(-1)]
    overlaps_inf[index] = overlaps.t().contiguous().view(-1)[index]
    overlaps_inf = overlaps_inf.view(num_gt, -1).t()
    max_overlaps, argmax_overlaps = overlaps_inf.max(dim=1)
    assigned_gt_inds[max_overlaps != -INF] = argmax_overlaps[max_overlaps != -INF] + 1
    return assigned_gt_inds, overlaps


def check_against_reference(grid, gts: np.ndarray, num: np.ndarray, preset=ATSS) -> int:
    """Assert match_atss equals the dense reference image by image; return the foreground count."""
    m = match_atss(grid, gts, num, preset)
    dtype = torch.float32 if preset.float32 else torch.float64
    anchors = torch.from_numpy(grid.xyxy).to(dtype)
    levels = np.diff(grid.level_offsets).tolist()
    assert len(m.ignored_anchor) == 0
    for b in range(len(num)):
        g = torch.from_numpy(gts[b, : num[b]]).to(dtype)
        assigned, overlaps = atss_assign(anchors, levels, g, preset.topk)
        fg = torch.nonzero(assigned > 0)[:, 0]
        mine = m.fg_image == b
        order = np.argsort(m.fg_anchor[mine])
        np.testing.assert_array_equal(m.fg_anchor[mine][order], fg.numpy(), err_msg=f"image {b}: foreground")
        np.testing.assert_array_equal(m.fg_gt[mine][order], assigned[fg].numpy() - 1, err_msg=f"image {b}: GT")
        iou = overlaps[fg, assigned[fg] - 1].double().numpy()
        np.testing.assert_array_equal(m.fg_iou[mine][order], iou, err_msg=f"image {b}: IoU")
        best = overlaps.max(0).values.double().numpy() if num[b] else np.zeros(0)
        np.testing.assert_array_equal(m.gt_max_iou[b, : num[b]], best, err_msg=f"image {b}: GT max IoU")
        assert (m.gt_max_iou[b, num[b] :] == 0).all()
    return len(m.fg_anchor)


def random_gts(rng: np.random.Generator, b: int, m: int, w: float, h: float, stride: float = 8.0):
    """[b, m, 4] GTs with the ties that matter: centres between anchor centres, corners on the grid,
    tiny boxes, boxes beyond the image, repeated boxes; and [b] counts (0 and 1 among them)."""
    kind = rng.integers(0, 6, (b, m))
    cx, cy = rng.uniform(0, w, (b, m)), rng.uniform(0, h, (b, m))
    between = kind == 0  # centres on multiples of 4 px: on or halfway between anchor centres (distance ties)
    cx[between], cy[between] = np.round(cx[between] / 4) * 4, np.round(cy[between] / 4) * 4
    large = np.exp(rng.uniform(np.log(4), np.log(2 * max(w, h)), (b, m)))
    size = np.where(kind == 1, rng.uniform(0.2, 4, (b, m)), large)  # tiny GTs
    aspect = np.exp(rng.normal(0, 0.7, (b, m)))
    bw, bh = size / np.sqrt(aspect), size * np.sqrt(aspect)
    gts = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=2)
    on_grid = kind == 2
    gts[on_grid] = np.round(gts[on_grid] / stride) * stride
    gts[kind == 3] = [-10, -20, w + 30, h + 5]  # larger than the image
    gts[:, 1::3] = gts[:, 0::3][:, : gts[:, 1::3].shape[1]]  # repeated boxes: ties between GTs
    bad = (gts[..., 2] <= gts[..., 0]) | (gts[..., 3] <= gts[..., 1])
    gts[bad] = [8, 8, 16, 24]
    num = rng.integers(0, m + 1, b)
    num[0], num[-1] = 1, 0
    return gts, num


SMALL = dataclasses.replace(ATSS, resize=Resize(160, 267))


@pytest.mark.parametrize("seed", range(4))
def test_equals_reference_on_random_images(seed):
    rng = np.random.default_rng(seed)
    fg = 0
    for pw, ph in ((192, 160), (160, 288), (32, 64)):  # the last: levels of fewer than topk anchors
        grid = anchor_grid(SMALL, pw, ph)
        gts, num = random_gts(rng, 4, 12, pw, ph)
        fg += check_against_reference(grid, gts, num)
    assert fg > 0


@pytest.mark.parametrize("seed", range(3))
def test_equals_reference_in_float32(seed):
    preset = dataclasses.replace(SMALL, dtype="float32")
    rng = np.random.default_rng(7 + seed)
    for pw, ph in ((192, 160), (160, 288), (32, 64)):
        grid = anchor_grid(preset, pw, ph)
        gts, num = random_gts(rng, 4, 12, pw, ph)
        gts = gts.astype(np.float32).astype(np.float64)  # float32 GTs, as the engine makes them
        assert check_against_reference(grid, gts, num, preset) > 0


@pytest.mark.skipif(
    platform.machine().lower() not in ("x86_64", "amd64") or not torch.__version__.startswith("2.13"),
    reason="the summation order repeated is torch 2.13's on x86-64 (docs/anchors.md, 'ATSS in float32')",
)
def test_float32_thresholds_are_torchs_bits():
    # The threshold kernel (no torch) against torch's own t.mean(0) + t.std(0) on each image's float32 [K, G]
    # tensor, as mmdetection computes it (and as imbstat did with torch before): candidate counts across the
    # cascade's 16-row steps, GT counts across each summation order (1, < 4, < 8 lanes, groups of 32), equal
    # IoUs (one GT: torch's full-reduction std is not 0 there) and IoUs of 0.
    from imbstat.anchors.atss import TORCH_FLOAT_LANES
    from imbstat.anchors.kernels import load_kernel

    thresholds = load_kernel("imbstat.anchors.atss_kernel", "_thresholds32")
    rng = np.random.default_rng(3)
    checked = 0
    for k in (1, 2, 9, 15, 16, 17, 33, 45, 65, 300):
        for kind in range(3):
            num = np.array([1, 2, 3, 5, 8, 13, 33, 70, 0], np.int64)
            iou = rng.random((num.sum(), k)).astype(np.float32)
            if kind == 1:
                iou[:] = iou[:, :1]
            elif kind == 2:
                iou[iou < 0.5] = 0
            mine = thresholds(iou.astype(np.float64), num, TORCH_FLOAT_LANES)
            start = 0
            for count in num.tolist():
                if count:
                    block = torch.from_numpy(np.ascontiguousarray(iou[start : start + count].T))  # [K, G]
                    with np.errstate(all="ignore"), warnings.catch_warnings():
                        warnings.simplefilter("ignore")  # torch warns of the std of one candidate (NaN)
                        ref = (block.mean(0) + block.std(0)).numpy().astype(np.float64)
                    np.testing.assert_array_equal(mine[start : start + count], ref, err_msg=f"K {k} G {count}")
                    checked += count
                start += count
    assert checked == 30 * 135


def test_hand_case_one_level():
    # One level of 8 px cells, anchors 64 px squares centred on (8x, 8y); topk 4. GT [0, 0, 20, 20]:
    # centre (10, 10), nearest centres (8, 8), (16, 8), (8, 16), (16, 16) at distance sqrt(8) each.
    # IoUs: (8,8): anchor [-24,-24,40,40], inter 20·20 = 400, union 4096 -> 400/4096; the other three
    # have inter 400 too (the GT lies inside each) -> all four equal, std 0, threshold = IoU: all positive
    # where the centre is inside by > 0.01 (all four).
    preset = dataclasses.replace(ATSS, strides=(8,), topk=4)
    grid = anchor_grid(preset, 32, 32)  # 4 x 4 cells
    m = match_atss(grid, np.array([[[0.0, 0.0, 20.0, 20.0]]]), np.array([1]), preset)
    np.testing.assert_array_equal(np.sort(m.fg_anchor), [5, 6, 9, 10])  # cells (1,1), (1,2), (2,1), (2,2)
    np.testing.assert_array_equal(m.fg_iou, np.full(4, 400 / 4096))
    assert m.gt_max_iou[0, 0] == 400 / 4096


def test_distance_ties_at_the_cut_go_to_the_lower_index():
    # GT centre (12, 12) sits between four anchor centres, all inside it; topk 2 keeps (8, 8) and (16, 8):
    # the tied pair of lowest index. Each anchor holds the GT: IoUs equal (256 / 4096), std 0, both positive.
    preset = dataclasses.replace(ATSS, strides=(8,), topk=2)
    grid = anchor_grid(preset, 32, 32)
    gts = np.array([[[4.0, 4.0, 20.0, 20.0]]])
    m = match_atss(grid, gts, np.array([1]), preset)
    np.testing.assert_array_equal(np.sort(m.fg_anchor), [5, 6])
    np.testing.assert_array_equal(m.fg_iou, [256 / 4096] * 2)
    check_against_reference(grid, gts, np.array([1]), preset)


@pytest.mark.filterwarnings("ignore:std.*degrees of freedom:UserWarning")
def test_one_candidate_has_nan_threshold_and_no_positive():
    # topk 1 on one level: one candidate per GT, torch's unbiased std of one value is NaN, and
    # IoU >= NaN is false, so mmdetection labels no anchor positive.
    preset = dataclasses.replace(ATSS, strides=(8,), topk=1)
    grid = anchor_grid(preset, 32, 32)
    gts, num = np.array([[[4.0, 4.0, 28.0, 28.0]]]), np.array([1])
    assert check_against_reference(grid, gts, num, preset) == 0
    assert match_atss(grid, gts, num, preset).gt_max_iou[0, 0] > 0


def test_centre_inside_margin_is_strict():
    # One level of 8 px cells, topk 4. GT [-0.01, -0.01, 12, 12]: candidates (0,0), (8,0), (0,8), (8,8), every
    # anchor holds the GT, so the IoUs are equal (std 0) and all reach the threshold. The centre (0, 0) is
    # 0 - (-0.01) = 0.01 px inside on the left and top, exactly: not > 0.01 (atss_assigner.py:208); (8,0)
    # and (0,8) likewise on one side. Only (8, 8), anchor 5, is foreground.
    preset = dataclasses.replace(ATSS, strides=(8,), topk=4)
    grid = anchor_grid(preset, 32, 32)
    gts = np.array([[[-0.01, -0.01, 12.0, 12.0]]])
    assert 0.0 - (-0.01) == 0.01
    m = match_atss(grid, gts, np.array([1]), preset)
    np.testing.assert_array_equal(m.fg_anchor, [5])
    np.testing.assert_array_equal(m.fg_iou, [12.01 * 12.01 / 4096])
    check_against_reference(grid, gts, np.array([1]), preset)


def test_an_anchor_positive_for_two_gts_goes_to_the_higher_iou_then_the_lower_index():
    preset = dataclasses.replace(ATSS, strides=(8,), topk=4)
    grid = anchor_grid(preset, 64, 64)
    same = [10.0, 10.0, 30.0, 30.0]
    gts = np.array([[same, [12.0, 12.0, 28.0, 28.0], same]])  # 0 and 2 identical: 0 wins every tie
    m = match_atss(grid, gts, np.array([3]), preset)
    assert 2 not in m.fg_gt and len(np.unique(m.fg_anchor)) == len(m.fg_anchor)
    check_against_reference(grid, gts, np.array([3]), preset)


def test_no_gt_is_all_background():
    grid = anchor_grid(SMALL, 64, 64)
    m = match_atss(grid, np.zeros((2, 0, 4)), np.zeros(2, np.int64), SMALL)
    assert len(m.fg_anchor) == 0 and m.gt_max_iou.shape == (2, 0)


@pytest.mark.parametrize(("shapes", "topk", "width", "height"), [(1, 30, 512, 8), (9, 30, 160, 192), (1, 9, 600, 40)])
def test_windows_widen_until_they_hold_the_topk(shapes, topk, width, height):
    # One row of cells: the first window (9 cells at topk 30) holds too few anchors and is widened twice;
    # nine shapes per cell (three sizes, three ratios) whose centres differ by rounding only; a strip.
    preset = dataclasses.replace(SMALL, topk=topk)
    if shapes == 9:
        preset = dataclasses.replace(preset, ratios=(0.5, 1.0, 2.0), scales_per_octave=3)
    rng = np.random.default_rng(topk + width)
    grid = anchor_grid(preset, width, height)
    gts, num = random_gts(rng, 3, 8, width, height)
    assert check_against_reference(grid, gts, num, preset) > 0


def test_float32_toml(tmp_path):
    path = tmp_path / "atss32.toml"
    path.write_text('base = "atss"\ndtype = "float32"\n')
    preset = load_preset(path)
    assert (preset.assigner, preset.float32, preset.topk) == ("atss", True, 9)


@pytest.mark.slow
@needs_shared_data
@pytest.mark.parametrize(("name", "dtype", "images"), [("val", "float64", None), ("train", "float64", 16),
                                                       ("train", "float32", 16)])  # fmt: skip
def test_equals_reference_on_coco_minis(name, dtype, images):
    import imbstat

    ds = imbstat.load(COCO_VAL_MINI if name == "val" else COCO_TRAIN_MINI)
    if images is not None:
        ds = ds.select_images(np.arange(ds.num_images) < images)  # the dense reference takes ~0.3 s an image
    preset = dataclasses.replace(ATSS, dtype=dtype)
    matcher = make_matcher(preset)
    fg = 0
    for batch in batches(ground_truth(ds, preset), preset, batch_size=8):
        in_reference = check_against_reference(batch.grid, batch.gts, batch.num_gts, preset)
        assert len(matcher(batch).fg_anchor) == in_reference  # the engine's Matcher is match_atss
        fg += in_reference
    assert fg > 5 * len(ds.boxes.image)  # ATSS gives most GTs about topk foreground anchors


def test_cli_anchor_iou_with_atss(write_json):
    # One 800x800 image (scale 1: GTs keep their corners), GTs [100, 100, 200, 200] and [90, 300, 400, 420].
    path = write_json(coco_doc([(1, 800, 800)], [(1, 1, [100, 100, 100, 100], 0), (1, 1, [90, 300, 310, 120], 0)],
                               [(1, "cat")]))  # fmt: skip
    result = CliRunner().invoke(app, ["anchor-iou", str(path), "--preset", "atss", "--json", "-", "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    grid = anchor_grid(ATSS, 800, 800)
    gts = np.array([[[100.0, 100.0, 200.0, 200.0], [90.0, 300.0, 400.0, 420.0]]])
    expected = check_against_reference(grid, gts, np.array([2]))
    total = 100**2 + 50**2 + 25**2 + 13**2 + 7**2  # cells of strides 8..128 on 800 px
    assert doc["anchors"] == {"total": total, "foreground": expected, "background": total - expected, "ignored": 0}
    assert doc["preset"]["assigner"] == "atss" and expected > 0
    dense = CliRunner().invoke(app, ["anchor-iou", str(path), "--preset", "atss", "--method", "dense"])
    assert dense.exit_code == 2 and "use --method auto or sparse" in dense.output


def test_tables_name_foreground_below_pos_iou_by_its_iou_not_low_quality(write_json):
    # ATSS has no low-quality rule: its foreground below IoU 0.5 is called that, MaxIoU's keeps "low-quality".
    path = write_json(coco_doc([(1, 800, 800)], [(1, 1, [100, 100, 100, 100], 0)], [(1, "cat")]))
    wide = {"COLUMNS": "200"}  # header cells on one line
    atss = CliRunner().invoke(app, ["anchor-iou", str(path), "--preset", "atss", "--quiet"], env=wide)
    retinanet = CliRunner().invoke(app, ["anchor-iou", str(path), "--preset", "retinanet", "--quiet"], env=wide)
    assert atss.exit_code == retinanet.exit_code == 0
    assert "IoU < 0.5 only" in atss.stdout and "low-quality" not in atss.stdout
    assert "low-quality only" in retinanet.stdout and "IoU < 0.5 only" not in retinanet.stdout
    assert ATSS.low_quality_term() == "IoU < 0.5" and PRESETS["fcos"].low_quality_term() == "IoU < 0.5"
