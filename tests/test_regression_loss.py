"""Regression-loss imbalance at initialization (issue 24): targets, losses at zero prediction, shares, merge."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from helpers import TOY, coco_doc, random_gts

import imbstat
from imbstat.anchors.engine import batches, ground_truth, make_matcher
from imbstat.anchors.presets import PRESETS, Preset, PresetError, load_preset
from imbstat.anchors.resize import Resize
from imbstat.stats.regression_loss import (
    CONTRIBUTION_EDGES,
    LOSSES,
    PER_IMAGE_FIELDS,
    RegressionLoss,
    encode,
    histogram_gini,
    regression_loss,
    top_share,
    zero_prediction_losses,
)
from imbstat.stats.scale import size_bucket

LN2, LN1_5 = math.log(2), math.log(1.5)


def _balanced(x: float) -> float:
    """Libra R-CNN's balanced L1 of one |difference| (α 0.5, γ 1.5, β 1), as its paper's eq. 8-9 write it."""
    b = math.exp(1.5 / 0.5) - 1  # α ln(b + 1) = γ  ->  b = e^(γ/α) − 1 = e³ − 1
    if x < 1:
        return 0.5 / b * (b * x + 1) * math.log(b * x + 1) - 0.5 * x
    return 1.5 * x + 1.5 / b - 0.5


# --- a hand case: anchor [0, 0, 10, 10], GT [0, 0, 20, 10] -----------------------------------------------------------


def test_one_anchor_by_hand():
    anchor, gt = np.array([[0, 0, 10, 10.0]]), np.array([[0, 0, 20, 10.0]])
    # Anchor centre (5, 5), 10 × 10; GT centre (10, 5), 20 × 10: targets (5 / 10, 0, ln(20 / 10), ln(10 / 10)).
    np.testing.assert_allclose(encode(anchor, gt, PRESETS["retinanet"]), [[0.5, 0, LN2, 0]], rtol=1e-15)
    # ATSS's stds (0.1, 0.1, 0.2, 0.2): (0.5 / 0.1, 0, ln 2 / 0.2, 0) = (5, 0, 3.4657..., 0).
    np.testing.assert_allclose(encode(anchor, gt, PRESETS["atss"]), [[5, 0, LN2 / 0.2, 0]], rtol=1e-15)
    # Legacy (mmdetection 1.x, "+1" widths): anchor 11 wide, GT 21: (5 / 11, 0, ln(21 / 11), 0).
    np.testing.assert_allclose(encode(anchor, gt, PRESETS["retinanet-v1"]), [[5 / 11, 0, math.log(21 / 11), 0]])
    # Means shift before the stds divide: (0.5 - 0.1) / 2 = 0.2.
    shifted = dataclasses.replace(PRESETS["retinanet"], coder_means=(0.1, 0, 0, 0), coder_stds=(2.0, 1, 1, 1))
    np.testing.assert_allclose(encode(anchor, gt, shifted)[0, 0], 0.2)

    losses = dict(zip(LOSSES, zero_prediction_losses(anchor, gt, PRESETS["detectron2-retinanet"])[:, 0], strict=True))
    assert losses["l2"] == pytest.approx(0.25 + LN2**2)  # 0.5² + (ln 2)² = 0.25 + 0.480453 = 0.730453
    assert losses["l1"] == pytest.approx(0.5 + LN2)  # 1.193147
    # β = 0.1: both nonzero targets are above β, |t| − β / 2 each: (0.5 − 0.05) + (0.693147 − 0.05) = 1.093147
    assert losses["smooth_l1"] == pytest.approx(0.5 + LN2 - 0.1)
    # b = e³ − 1 = 19.0855; t = 0.5: 0.5 / b · (9.5428 + 1) · ln(10.5428) − 0.25 = 0.026198 · 10.5428 · 2.35545
    # − 0.25 = 0.40058; t = ln 2: 0.026198 · 14.2290 · 2.65530 − 0.34657 = 0.64325; total 1.04383
    assert losses["balanced_l1"] == pytest.approx(1.04381, abs=5e-5)
    assert losses["balanced_l1"] == pytest.approx(_balanced(0.5) + _balanced(LN2), rel=1e-12)
    # IoU = 100 / 200 (the anchor inside the GT); the enclosing box is the GT, its area the union: GIoU = IoU.
    assert losses["iou"] == pytest.approx(0.5) and losses["giou"] == pytest.approx(0.5)
    # Smooth L1 with β = 0.11 (retinanet-v1 with its legacy targets 5/11, ln(21/11) = 0.454545, 0.646627)
    v1 = zero_prediction_losses(anchor, gt, PRESETS["retinanet-v1"])[2, 0]
    assert v1 == pytest.approx(5 / 11 - 0.055 + math.log(21 / 11) - 0.055)
    # β large: both below it, ½ t² / β: (0.25 + 0.480453) / 2 / 10
    big = dataclasses.replace(PRESETS["retinanet"], smooth_l1_beta=10.0)
    assert zero_prediction_losses(anchor, gt, big)[2, 0] == pytest.approx((0.25 + LN2**2) / 20)
    # Disjoint boxes: IoU 0; anchor [0, 0, 10, 10], GT [20, 0, 30, 10]: enclosing 30 × 10 = 300, union 200,
    # GIoU = 0 − 100 / 300: loss 4 / 3.
    far = zero_prediction_losses(anchor, np.array([[20, 0, 30, 10.0]]), PRESETS["retinanet"])
    assert far[4, 0] == pytest.approx(1.0) and far[5, 0] == pytest.approx(4 / 3)


def test_shares_and_gini_by_hand():
    # Contributions 1, 1, 2, 6 (total 10): the top ⌈1 %⌉ = ⌈10 %⌉ = 1 anchor carries 6 / 10.
    # Gini over ascending x = (1, 1, 2, 6): 2 Σ i·x_i / (n Σ x) − (n + 1) / n = 2 · (1 + 2 + 6 + 24) / 40 − 5 / 4
    # = 66 / 40 − 1.25 = 0.4.
    values = np.array([1.0, 1.0, 2.0, 6.0])
    b = np.searchsorted(CONTRIBUTION_EDGES, values, side="right") - 1
    count = np.bincount(b, minlength=len(CONTRIBUTION_EDGES) - 1)
    total = np.bincount(b, values, minlength=len(CONTRIBUTION_EDGES) - 1)
    assert top_share(count, total, 0.01) == pytest.approx(0.6) and top_share(count, total, 0.10) == pytest.approx(0.6)
    assert histogram_gini(count, total) == pytest.approx(0.4)
    # 200 anchors: ⌈1 %⌉ = 2, ⌈10 %⌉ = 20; 190 at 1 and 10 at 5 (in one bin): top 2 = 10, top 20 = 50 + 10 · 1 = 60,
    # total 240. Gini: ascending ranks 1..190 at 1 and 191..200 at 5: Σ i·x = 190·191/2 + 5 · (191 + ... + 200)
    # = 18145 + 5 · 1955 = 27920; 2 · 27920 / (200 · 240) − 201 / 200 = 1.163333 − 1.005 = 0.158333.
    values = np.r_[np.ones(190), np.full(10, 5.0)]
    b = np.searchsorted(CONTRIBUTION_EDGES, values, side="right") - 1
    count = np.bincount(b, minlength=len(CONTRIBUTION_EDGES) - 1)
    total = np.bincount(b, values, minlength=len(CONTRIBUTION_EDGES) - 1)
    assert top_share(count, total, 0.01) == pytest.approx(10 / 240)
    assert top_share(count, total, 0.10) == pytest.approx(60 / 240)
    assert histogram_gini(count, total) == pytest.approx(2 * 27920 / (200 * 240) - 201 / 200)
    assert math.isnan(top_share(np.zeros(3, np.int64), np.zeros(3), 0.1))


def test_toy_dataset_by_hand(write_json):
    # TOY: 32 × 32 anchors centred every 16 px on a 64 × 64 image. GT [0, 0, 32, 48] (medium: 1536 px²) has
    # IoU 1024 / 1536 = 2/3 with the anchors [0, 0, 32, 32] and [0, 16, 32, 48] (a tie), at most 1/4 with every
    # other: two positives, IoU bin ⌊2/3 · 20⌋ = 13. Targets: (0, ±8 / 32, 0, ln(48 / 32)) = (0, ±0.25, 0, ln 1.5).
    ds = imbstat.load(write_json(coco_doc([(1, 64, 64)], [(1, 7, [0, 0, 32, 48], 0)], [(3, "a"), (7, "b")])))
    r = regression_loss(ds, preset=TOY)
    assert r.positives == 2 and r.count_by_iou[13] == 2 and r.count_by_class.tolist() == [0, 2]
    assert r.count_by_size.tolist() == [0, 2, 0]
    d = r.to_dict()
    assert d["loss"] == "l1"
    assert d["total"] == pytest.approx(2 * (0.25 + LN1_5))  # 1.310930
    assert d["per_positive"] == pytest.approx(0.25 + LN1_5)
    by = d["by_loss"]
    assert by["l2"]["total"] == pytest.approx(2 * (0.0625 + LN1_5**2))  # 2 · 0.226902
    assert by["iou"]["total"] == pytest.approx(2 / 3) and by["giou"]["total"] == pytest.approx(2 / 3)  # 2 · (1 − 2/3)
    # two equal contributions: the top ⌈1 %⌉ = ⌈10 %⌉ = 1 of 2 carries half; Gini 0
    assert by["l1"]["top1_share"] == pytest.approx(0.5) and by["l1"]["top10_share"] == pytest.approx(0.5)
    assert by["l1"]["gini"] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(r.sum_by_class[LOSSES.index("l1")], [0, 2 * (0.25 + LN1_5)])
    # the whole loss in IoU bin 13, the medium bucket and class 7 ("b")
    assert d["by_iou"]["positives"][13] == 2 and d["by_iou"]["loss_share"][13] == pytest.approx(1.0)
    assert sum(d["by_iou"]["loss_share"]) == pytest.approx(1.0) and d["by_iou"]["edges"][13] == pytest.approx(0.65)
    assert d["by_size"]["medium"] == {"positives": 2, "loss_share": 1.0} and d["by_size"]["small"]["loss_share"] == 0
    assert d["per_class"][1] == {"category_id": 7, "name": "b", "positives": 2, "loss_share": 1.0}
    assert r.scores == {"regression_top10_share": pytest.approx(0.5), "regression_gini": pytest.approx(0, abs=1e-12)}


# --- the naive references, line by line from each framework's code ---------------------------------------------------


def mmdet_bbox2delta(p, g, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)):
    """mmdetection 2.28.2 core/bbox/coder/delta_xywh_bbox_coder.py ``bbox2delta``, one box."""
    px = (p[0] + p[2]) * 0.5
    py = (p[1] + p[3]) * 0.5
    pw = p[2] - p[0]
    ph = p[3] - p[1]
    gx = (g[0] + g[2]) * 0.5
    gy = (g[1] + g[3]) * 0.5
    gw = g[2] - g[0]
    gh = g[3] - g[1]
    dx = (gx - px) / pw
    dy = (gy - py) / ph
    dw = math.log(gw / pw)
    dh = math.log(gh / ph)
    deltas = [dx, dy, dw, dh]
    return [(d - m) / s for d, m, s in zip(deltas, means, stds, strict=True)]


def torchvision_encode_boxes(reference_boxes, proposals, weights=(1.0, 1.0, 1.0, 1.0)):
    """torchvision ops/_utils... models/detection/_utils.py ``encode_boxes`` (BoxCoder.encode_single), one box."""
    wx, wy, ww, wh = weights
    proposals_x1, proposals_y1, proposals_x2, proposals_y2 = proposals
    reference_boxes_x1, reference_boxes_y1, reference_boxes_x2, reference_boxes_y2 = reference_boxes
    ex_widths = proposals_x2 - proposals_x1
    ex_heights = proposals_y2 - proposals_y1
    ex_ctr_x = proposals_x1 + 0.5 * ex_widths
    ex_ctr_y = proposals_y1 + 0.5 * ex_heights
    gt_widths = reference_boxes_x2 - reference_boxes_x1
    gt_heights = reference_boxes_y2 - reference_boxes_y1
    gt_ctr_x = reference_boxes_x1 + 0.5 * gt_widths
    gt_ctr_y = reference_boxes_y1 + 0.5 * gt_heights
    targets_dx = wx * (gt_ctr_x - ex_ctr_x) / ex_widths
    targets_dy = wy * (gt_ctr_y - ex_ctr_y) / ex_heights
    targets_dw = ww * math.log(gt_widths / ex_widths)
    targets_dh = wh * math.log(gt_heights / ex_heights)
    return [targets_dx, targets_dy, targets_dw, targets_dh]


def detectron2_get_deltas(src_boxes, target_boxes, weights=(1.0, 1.0, 1.0, 1.0)):
    """detectron2 v0.6 modeling/box_regression.py ``Box2BoxTransform.get_deltas``, one box."""
    src_widths = src_boxes[2] - src_boxes[0]
    src_heights = src_boxes[3] - src_boxes[1]
    src_ctr_x = src_boxes[0] + 0.5 * src_widths
    src_ctr_y = src_boxes[1] + 0.5 * src_heights
    target_widths = target_boxes[2] - target_boxes[0]
    target_heights = target_boxes[3] - target_boxes[1]
    target_ctr_x = target_boxes[0] + 0.5 * target_widths
    target_ctr_y = target_boxes[1] + 0.5 * target_heights
    wx, wy, ww, wh = weights
    dx = wx * (target_ctr_x - src_ctr_x) / src_widths
    dy = wy * (target_ctr_y - src_ctr_y) / src_heights
    dw = ww * math.log(target_widths / src_widths)
    dh = wh * math.log(target_heights / src_heights)
    return [dx, dy, dw, dh]


def smooth_l1(x, beta):
    """fvcore smooth_l1_loss (detectron2) / torch F.smooth_l1_loss / mmdetection smooth_l1_loss, one element."""
    if beta < 1e-5:  # fvcore: "for beta values < 1e-5, L1 loss is computed"
        return abs(x)
    n = abs(x)
    return 0.5 * n**2 / beta if n < beta else n - 0.5 * beta


def mmdet_balanced_l1(pred, target, beta=1.0, alpha=0.5, gamma=1.5):
    """mmdetection 2.28.2 losses/balanced_l1_loss.py ``balanced_l1_loss``, one element."""
    diff = abs(pred - target)
    b = math.e ** (gamma / alpha) - 1
    if diff < beta:
        return alpha / b * (b * diff + 1) * math.log(b * diff / beta + 1) - alpha * diff
    return gamma * diff + gamma / b - alpha * beta


def mmdet_giou(pred, target, eps=0.0):
    """mmdetection bbox_overlaps(mode="giou", is_aligned=True) for one pair (eps 0: the boxes have area)."""
    area1 = (pred[2] - pred[0]) * (pred[3] - pred[1])
    area2 = (target[2] - target[0]) * (target[3] - target[1])
    lt = (max(pred[0], target[0]), max(pred[1], target[1]))
    rb = (min(pred[2], target[2]), min(pred[3], target[3]))
    wh = (max(rb[0] - lt[0], 0), max(rb[1] - lt[1], 0))
    overlap = wh[0] * wh[1]
    union = area1 + area2 - overlap
    ious = overlap / union
    enclosed_lt = (min(pred[0], target[0]), min(pred[1], target[1]))
    enclosed_rb = (max(pred[2], target[2]), max(pred[3], target[3]))
    enclose_area = (enclosed_rb[0] - enclosed_lt[0]) * (enclosed_rb[1] - enclosed_lt[1])
    return ious, ious - (enclose_area - union) / enclose_area


def naive_losses(anchor, gt, preset: Preset, framework: str) -> list[float]:
    """One anchor's six losses at zero prediction (pred = 0 deltas, box = the anchor), from ``framework``'s coder."""
    if framework == "mmdetection":
        t = mmdet_bbox2delta(anchor, gt, preset.coder_means, preset.coder_stds)
    elif framework == "torchvision":
        t = torchvision_encode_boxes(gt, anchor, tuple(1 / s for s in preset.coder_stds))
    else:
        t = detectron2_get_deltas(anchor, gt, tuple(1 / s for s in preset.coder_stds))
    iou, giou = mmdet_giou(anchor, gt)
    return [
        sum((0 - x) ** 2 for x in t),  # mmdetection mse_loss
        sum(abs(0 - x) for x in t),  # l1_loss; torchvision _box_loss "l1" (F.l1_loss, sum)
        sum(smooth_l1(0 - x, preset.smooth_l1_beta) for x in t),
        sum(mmdet_balanced_l1(0.0, x) for x in t),
        1 - iou,  # IoULoss(mode="linear")
        1 - giou,  # giou_loss
    ]


PRESET_FRAMEWORKS = [
    ("retinanet", "mmdetection"), ("rpn", "mmdetection"), ("atss", "mmdetection"),
    ("torchvision-retinanet", "torchvision"), ("torchvision-rpn", "torchvision"),
    ("detectron2-retinanet", "detectron2"),
]  # fmt: skip


@pytest.mark.parametrize(("preset_name", "framework"), PRESET_FRAMEWORKS)
def test_vectorised_equals_each_frameworks_code_on_random_boxes(preset_name, framework):
    rng = np.random.default_rng(24)
    gts, _ = random_gts(rng, 6, 40, 300.0, 200.0)  # tiny, thin, whole-image, duplicated (ties), on-grid GTs
    gts = gts.reshape(-1, 4)
    anchors = gts + rng.normal(0, 6, gts.shape) * (rng.random((len(gts), 1)) < 0.7)  # 30 %: the anchor is the GT
    anchors[:, 2:] = np.maximum(anchors[:, 2:], anchors[:, :2] + 0.5)
    preset = PRESETS[preset_name]
    fast = zero_prediction_losses(anchors, gts, preset)
    slow = np.array(
        [naive_losses(a.tolist(), g.tolist(), preset, framework) for a, g in zip(anchors, gts, strict=True)]
    ).T
    assert (fast[:, (anchors == gts).all(axis=1)][:4] == 0).all()  # a perfect anchor: no loss
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def _sample(tmp_path):
    from imbstat.data.sample import write_sample

    ds = imbstat.load(write_sample(tmp_path / "sample.json", num_images=24))
    return ds


@pytest.mark.parametrize("preset_name", ["retinanet", "detectron2-retinanet", "atss"])
def test_dataset_sums_equal_a_per_anchor_loop(tmp_path, preset_name):
    ds = _sample(tmp_path)
    base = PRESETS[preset_name]
    preset = dataclasses.replace(base, resize=dataclasses.replace(base.resize, short=200, long=333))
    r = regression_loss(ds, preset=preset, batch_size=5, threads=1)
    assert r.positives > 50
    # The loop: the same labels (the matcher), then one anchor at a time with mmdetection's code.
    gt = ground_truth(ds, preset)
    matcher = make_matcher(preset, "cpu", "sparse")
    k, n = len(ds.categories), len(LOSSES)
    by_class, by_size, by_iou = np.zeros((n, k)), np.zeros((n, 3)), np.zeros((n, 20))
    values = [[] for _ in LOSSES]
    for batch in batches(gt, preset, 5):
        m = matcher(batch)
        for image, anchor, g, iou in zip(m.fg_image, m.fg_anchor, m.fg_gt, m.fg_iou, strict=True):
            box = gt.box[batch.gt_rows[image, g]]
            x1, y1, x2, y2 = ds.boxes.xyxy[box]
            losses = naive_losses(batch.grid.xyxy[anchor].tolist(), batch.gts[image, g].tolist(), preset, "mmdetection")
            category, bucket = ds.boxes.category[box], int(size_bucket(np.array([(x2 - x1) * (y2 - y1)]))[0])
            for i, value in enumerate(losses):
                by_class[i, category] += value
                by_size[i, bucket] += value
                by_iou[i, min(int(iou * 20), 19)] += value
                values[i].append(value)
    np.testing.assert_allclose(r.sum_by_class, by_class, rtol=1e-9)
    np.testing.assert_allclose(r.sum_by_size, by_size, rtol=1e-9)
    np.testing.assert_allclose(r.sum_by_iou, by_iou, rtol=1e-9)
    by = r.to_dict()["by_loss"]
    for i, loss in enumerate(LOSSES):
        exact = np.sort(values[i])[::-1]
        assert by[loss]["total"] == pytest.approx(exact.sum(), rel=1e-9)
        for key, fraction in (("top1_share", 0.01), ("top10_share", 0.10)):
            top = exact[: math.ceil(fraction * len(exact))].sum() / exact.sum()
            assert by[loss][key] == pytest.approx(top, rel=0.025)  # within one bin's width (10^0.01 − 1)
        ascending = exact[::-1]
        gini = 2 * (np.arange(1, len(exact) + 1) * ascending).sum() / (len(exact) * exact.sum()) - 1 - 1 / len(exact)
        assert by[loss]["gini"] == pytest.approx(gini, abs=0.01)


def test_shards_merge_to_the_whole_and_json_round_trips(tmp_path):
    ds = _sample(tmp_path)
    preset = dataclasses.replace(PRESETS["detectron2-retinanet"], resize=Resize(200, 333, "shortest-edge"))
    whole = regression_loss(ds, preset=preset)
    half = np.arange(ds.num_images) % 3 == 0
    parts = [regression_loss(ds.select_images(s), preset=preset) for s in (half, ~half)]
    merged = RegressionLoss.merge(parts)
    order = np.concatenate([np.flatnonzero(half), np.flatnonzero(~half)])  # the parts' images, one after the other
    for f in dataclasses.fields(RegressionLoss):
        if f.name not in ("preset", "name"):
            expected = getattr(whole, f.name)
            expected = expected[order] if f.name in PER_IMAGE_FIELDS else expected
            np.testing.assert_allclose(getattr(merged, f.name), expected, rtol=1e-12, err_msg=f.name)
    assert merged.per_image[:, 0].sum() == whole.positives > 0 and merged.per_image_loss.sum() > 0
    np.testing.assert_array_equal(merged.hist_count, whole.hist_count)  # the shares' and Gini's input: exact
    for loss, row in whole.to_dict()["by_loss"].items():
        assert merged.to_dict()["by_loss"][loss] == pytest.approx(row, rel=1e-12)
    # JSON and back, then the same merge
    back = [RegressionLoss.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]
    assert RegressionLoss.merge(back).to_dict() == merged.to_dict()
    assert back[0].to_dict() == parts[0].to_dict()
    none = ds.select_images(np.zeros(ds.num_images, bool))  # the identity of merge: a result over no image
    assert RegressionLoss.merge([RegressionLoss.empty(none, preset=preset), whole]).to_dict() == whole.to_dict()
    with pytest.raises(imbstat.ImbstatError, match="preset"):
        RegressionLoss.merge([whole, regression_loss(ds.select_images(half), preset=TOY)])
    frame = whole.to_frame()
    assert frame["loss"].tolist() == list(LOSSES) and frame["total"].iloc[1] == pytest.approx(whole.totals[1])


# --- preset fields ---------------------------------------------------------------------------------------------------


def test_preset_loss_fields_defaults_and_bounds(tmp_path):
    assert PRESETS["retinanet"].regression_loss == "l1" and PRESETS["retinanet"].coder_stds == (1.0, 1.0, 1.0, 1.0)
    assert PRESETS["atss"].coder_stds == (0.1, 0.1, 0.2, 0.2) and PRESETS["atss"].regression_loss == "giou"
    assert PRESETS["detectron2-retinanet"].smooth_l1_beta == 0.1
    assert PRESETS["torchvision-rpn"].smooth_l1_beta == pytest.approx(1 / 9)
    for name, preset in PRESETS.items():  # the built-in presets' report blocks are what they were
        assert not {"coder_means", "coder_stds", "regression_loss", "smooth_l1_beta"} & set(preset.to_dict()), name
    for fields, field in [
        ({"coder_stds": (0.0, 1.0, 1.0, 1.0)}, "coder_stds"),
        ({"coder_stds": (1.0, 1.0, 1.0)}, "coder_stds"),
        ({"coder_means": (math.nan, 0.0, 0.0, 0.0)}, "coder_means"),
        ({"smooth_l1_beta": -1.0}, "smooth_l1_beta"),
        ({"regression_loss": "huber"}, "regression_loss"),
    ]:
        with pytest.raises(PresetError) as e:
            Preset(**fields)
        assert e.value.field == field
    path = tmp_path / "p.toml"
    path.write_text('base = "retinanet"\ncoder_stds = [0.1, 0.1, 0.2, 0.2]\nregression_loss = "smooth_l1"\n'
                    "smooth_l1_beta = 1\n")  # fmt: skip
    p = load_preset(path)
    assert p.coder_stds == (0.1, 0.1, 0.2, 0.2) and p.smooth_l1_beta == 1.0
    assert p.to_dict()["coder_stds"] == [0.1, 0.1, 0.2, 0.2]
    assert imbstat.anchors.presets.preset_from_dict(json.loads(json.dumps(p.to_dict()))) == p
    path.write_text("coder_stds = [1, 1, 1]\n")
    with pytest.raises(imbstat.ImbstatError, match="coder_stds must be 4 numbers"):
        load_preset(path)


# --- anchor-iou --losses ---------------------------------------------------------------------------------------------


def _anchor_iou(*args) -> None:
    from typer.testing import CliRunner

    from imbstat.cli import app

    result = CliRunner().invoke(app, ["anchor-iou", *(str(a) for a in args), "--quiet"])
    assert result.exit_code == 0, result.output


def test_anchor_iou_losses_section_and_its_shards_merge(tmp_path):
    from imbstat.data.sample import write_sample
    from imbstat.report.merge import merge_documents

    sample = write_sample(tmp_path / "sample.json", num_images=24)
    _anchor_iou(sample, "--json", tmp_path / "plain.json")
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert "loss" not in plain and "losses" not in plain["options"]  # without --losses: the JSON it always was
    _anchor_iou(sample, "--losses", "--json", tmp_path / "whole.json")
    whole = json.loads((tmp_path / "whole.json").read_text())
    assert whole["options"]["losses"] is True
    assert {k: v for k, v in whole.items() if k not in ("loss", "options", "dataset")} == {
        k: v for k, v in plain.items() if k not in ("options", "dataset")
    }  # the anchors' fields unchanged
    ds = imbstat.load(sample)
    direct = regression_loss(ds, preset=PRESETS["retinanet"]).to_dict()
    body = whole["loss"]["regression"]
    assert body["loss"] == "l1" and body["total"] == pytest.approx(direct["total"], rel=1e-12)
    assert set(body["by_loss"]) == set(LOSSES) and body["per_positive"] == pytest.approx(direct["per_positive"])
    assert whole["loss"]["scores"]["regression_top10_share"] == pytest.approx(body["by_loss"]["l1"]["top10_share"])
    parts = []
    for i in range(2):
        _anchor_iou(sample, "--losses", "--shard", f"{i}/2", "--json", tmp_path / f"part{i}.json")
        parts.append(json.loads((tmp_path / f"part{i}.json").read_text()))
    merged = merge_documents(parts)["loss"]["regression"]
    for loss in LOSSES:  # the shares' and Gini's input, exact (the sums may differ in their last bits)
        for key in ("bin", "count"):
            assert merged["raw"]["histogram"][loss][key] == body["raw"]["histogram"][loss][key]
    for loss in LOSSES:
        assert merged["by_loss"][loss] == pytest.approx(body["by_loss"][loss], rel=1e-9)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda r: r["raw"]["histogram"]["l1"]["count"].__setitem__(0, -1),
            "(loss.regression.raw.histogram.l1.count[0]): expected a non-negative integer, found -1",
        ),
        (
            lambda r: r["raw"]["histogram"]["giou"]["bin"].__setitem__(0, 99999),
            "(loss.regression.raw.histogram.giou.bin): expected distinct bins below 1002",
        ),
        (
            lambda r: r["raw"]["histogram"]["l2"]["sum"].__setitem__(0, -1.0),
            "(loss.regression.raw.histogram.l2.sum): expected sums of losses, >= 0",
        ),
        (
            lambda r: r["raw"]["sum_by_iou"]["iou"].__setitem__(3, "x"),
            "(loss.regression.raw.sum_by_iou.iou[3]): expected a finite number",
        ),
        (  # per-image rows: written since issue 24 part 2; a shard without them is refused by name
            lambda r: r["raw"].pop("per_image"),
            "(loss): the loss section has no field 'per_image'",
        ),
        (
            lambda r: r["raw"]["trained"].__setitem__(0, 1),
            "(loss.regression.raw.trained): expected a list of 4 true or false, one per image",
        ),
        (
            lambda r: r["raw"]["per_image"][0].__setitem__(0, r["raw"]["per_image"][0][0] + 1),
            "(loss.regression.raw.per_image): expected foreground anchors summing to the",
        ),
        (
            lambda r: r["raw"]["per_image_loss"].__setitem__(1, -0.5),
            "(loss.regression.raw.per_image_loss): expected sums of losses, >= 0",
        ),
    ],
)
def test_a_bad_shard_is_a_one_line_error(tmp_path, edit, message):
    from imbstat.data.sample import write_sample
    from imbstat.report.merge import merge_documents

    sample = write_sample(tmp_path / "sample.json", num_images=8)
    docs = []
    for i in range(2):
        _anchor_iou(sample, "--losses", "--shard", f"{i}/2", "--json", tmp_path / f"part{i}.json")
        docs.append(json.loads((tmp_path / f"part{i}.json").read_text()))
    edit(docs[1]["loss"]["regression"])
    with pytest.raises(imbstat.ImbstatError) as e:
        merge_documents(docs, ["a.json", "b.json"])
    assert str(e.value).startswith(f"b.json {message}"), str(e.value)
