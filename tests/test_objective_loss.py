"""Objective imbalance at initialization (issue 24, part 2): classification against regression loss at the prior."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from helpers import TOY, coco_doc
from test_regression_loss import _anchor_iou, _sample, naive_losses

import imbstat
from imbstat.anchors.engine import batches, ground_truth, make_matcher
from imbstat.anchors.presets import PRESETS
from imbstat.anchors.resize import Resize
from imbstat.stats.anchor_sampling import trained_images
from imbstat.stats.objective_loss import focal_constants
from imbstat.stats.regression_loss import RegressionLoss, regression_loss

LN2, LN1_5 = math.log(2), math.log(1.5)
# π = 0.01, α = 0.25, γ = 2. A positive output: −α (1 − π)^γ ln π = 0.25 · 0.9801 · ln 100 = 0.25 · 0.9801 · 4.605170
# = 1.1283818; a negative one: −(1 − α) π^γ ln(1 − π) = −0.75 · 1e-4 · ln 0.99 = 0.75 · 1e-4 · 0.0100503 = 7.537752e-7.
POS, NEG = 1.1283818248, 7.537751890e-7  # to 10 digits: the hand totals hold to 1e-9


def test_focal_constants_by_hand():
    p, n = focal_constants()
    assert p == pytest.approx(POS, rel=1e-10) and n == pytest.approx(NEG, rel=1e-9)
    # γ = 0, α = 0.5: half the cross-entropy, ½ ln 2 either way at π = ½
    assert focal_constants(0.5, 0.5, 0.0) == pytest.approx((LN2 / 2, LN2 / 2))


def _toy(write_json):
    # Image 1 (64 × 64): TOY's 16 anchors (32 × 32, every 16 px); GT [0, 0, 32, 48] of class "b" has IoU 2/3 with two
    # (positives, l1 loss 0.25 + ln 1.5 each, test_regression_loss's toy), at most 1/4 with the 14 others
    # (negatives, below 0.4: none ignored). Image 2: no GT, 16 negatives. Two categories: K = 2.
    doc = coco_doc([(1, 64, 64), (2, 64, 64)], [(1, 7, [0, 0, 32, 48], 0)], [(3, "a"), (7, "b")])
    return imbstat.load(write_json(doc))


def test_focal_toy_by_hand(write_json):
    ds = _toy(write_json)
    r = regression_loss(ds, preset=TOY)
    assert r.per_image.tolist() == [[2, 14, 0], [0, 16, 0]]
    d = r.objective()
    # image 1: 2 positives · (POS + 1 · NEG) + 14 negatives · 2 · NEG = 2 POS + 30 NEG; image 2: 16 · 2 · NEG
    cls1, cls2 = 2 * POS + 30 * NEG, 32 * NEG
    reg1 = 2 * (0.25 + LN1_5)  # 1.3109302
    c = d["classification"]
    assert c["loss"] == "focal" and c["classes"] == 2
    assert c["total"] == pytest.approx(cls1 + cls2, rel=1e-9) and c["per_positive"] == pytest.approx((cls1 + cls2) / 2)
    assert d["regression_total"] == pytest.approx(reg1, rel=1e-9) and d["centerness"] is None
    # (2.2567637 + 4.66e-5) / 1.3109302 = 1.72154: only image 1 has a positive, so one per-image ratio
    assert d["ratio"]["dataset"] == pytest.approx((cls1 + cls2) / reg1, rel=1e-9)
    assert d["ratio"]["images"] == 1 and d["ratio"]["per_image_mean"] == pytest.approx(cls1 / reg1, rel=1e-9)
    assert d["ratio"]["per_image_quantiles"] == pytest.approx([cls1 / reg1] * 5, rel=1e-9)
    assert d["balancing_weight"] == pytest.approx(1.7215, rel=1e-4)  # w · 1.3109 = 2.2568


def test_sampler_toy_by_hand(write_json):
    # RandomSampler(4, 0.25): a quota of int(4 · 0.25) = 1 positive. Image 1: 1 of its 2 positives and
    # min(14, 4 − 1) = 3 negatives, ln 2 each; the regression the expected half of its 2 positives' loss.
    # Image 2 has no annotation: mmdetection does not train on it (train_images), nothing sampled.
    ds = _toy(write_json)
    r = regression_loss(ds, preset=dataclasses.replace(TOY, sampler="random:4:0.25"))
    assert r.trained.tolist() == [True, False]
    d = r.objective()
    assert d["classification"] == {"loss": "cross_entropy", "classes": 1, "total": pytest.approx(4 * LN2),
                                   "per_positive": pytest.approx(4 * LN2)}  # fmt: skip
    assert d["regression_total"] == pytest.approx(0.25 + LN1_5)
    assert d["ratio"]["dataset"] == pytest.approx(4 * LN2 / (0.25 + LN1_5))  # 2.7726 / 0.6555 = 4.2300
    assert d["ratio"]["images"] == 1 and d["balancing_weight"] == pytest.approx(4.2300, rel=1e-4)


def _sigmoid_focal_loss(logit: float, target: np.ndarray, alpha: float = 0.25, gamma: float = 2.0) -> np.ndarray:
    """torchvision.ops.sigmoid_focal_loss, line by line, in numpy (reduction none)."""
    p = 1 / (1 + np.exp(-logit))
    ce_loss = -(target * np.log(p) + (1 - target) * np.log(1 - p))  # binary_cross_entropy_with_logits
    p_t = p * target + (1 - p) * (1 - target)
    loss = ce_loss * ((1 - p_t) ** gamma)
    alpha_t = alpha * target + (1 - alpha) * (1 - target)
    return alpha_t * loss


@pytest.mark.parametrize("preset_name", ["retinanet", "atss", "rpn"])
def test_dataset_equals_a_per_anchor_loop(tmp_path, preset_name):
    ds = _sample(tmp_path)
    ds = ds.select_images(np.arange(ds.num_images) < 8)
    base = PRESETS[preset_name]
    preset = dataclasses.replace(base, resize=dataclasses.replace(base.resize, short=128, long=213))
    d = regression_loss(ds, preset=preset, batch_size=3, threads=1).objective()
    gt = ground_truth(ds, preset)
    matcher = make_matcher(preset, "cpu", "sparse")
    k = len(ds.categories)
    logit = -math.log((1 - 0.01) / 0.01)  # the prior's bias, b = −ln((1 − π) / π)
    sampler, trained = preset.random_sampler, trained_images(ds, preset.train_images)
    cls, reg, positives = np.zeros(ds.num_images), np.zeros(ds.num_images), 0.0
    for batch in batches(gt, preset, 3):
        m = matcher(batch)
        for b, image in enumerate(batch.images):
            fg = {int(a): int(g) for a, i, g in zip(m.fg_anchor, m.fg_image, m.fg_gt, strict=True) if i == b}
            ignored = {int(a) for a, i in zip(m.ignored_anchor, m.ignored_image, strict=True) if i == b}
            own = sum(naive_losses(batch.grid.xyxy[a].tolist(), batch.gts[b, g].tolist(), preset, "mmdetection")
                      [["l2", "l1", "smooth_l1", "balanced_l1", "iou", "giou"].index(preset.regression_loss)]
                      for a, g in fg.items())  # fmt: skip
            if sampler is None:
                for anchor in range(len(batch.grid)):
                    if anchor in ignored:
                        continue
                    target = np.zeros(k)
                    if anchor in fg:
                        target[ds.boxes.category[gt.box[batch.gt_rows[b, fg[anchor]]]]] = 1
                    cls[image] += _sigmoid_focal_loss(logit, target).sum()
                reg[image], positives = own, positives + len(fg)
            elif trained[image]:
                background = len(batch.grid) - len(fg) - len(ignored)
                drawn = min(len(fg), sampler.positive_quota)
                cls[image] = LN2 * (drawn + min(background, sampler.num - drawn))  # BCE at p = ½ per sampled anchor
                reg[image] = own * drawn / len(fg) if fg else 0.0
                positives += drawn
    assert positives > 20
    c = d["classification"]
    assert c["total"] == pytest.approx(cls.sum(), rel=1e-9) and d["regression_total"] == pytest.approx(
        reg.sum(), rel=1e-9
    )
    assert c["per_positive"] == pytest.approx(cls.sum() / positives, rel=1e-9)
    assert c["classes"] == (1 if sampler else k)
    ratios = cls[reg > 0] / reg[reg > 0]
    assert d["ratio"]["dataset"] == pytest.approx(cls.sum() / reg.sum(), rel=1e-9)
    assert d["ratio"]["images"] == len(ratios) and d["ratio"]["per_image_mean"] == pytest.approx(
        ratios.mean(), rel=1e-9
    )
    assert d["ratio"]["per_image_quantiles"] == pytest.approx(np.quantile(ratios, [0, 0.25, 0.5, 0.75, 1]), rel=1e-9)
    assert d["balancing_weight"] * reg.sum() == pytest.approx(cls.sum(), rel=1e-9)
    if preset_name == "atss":  # centerness BCE at p = ½: ln 2 per positive whatever its target
        assert d["centerness"]["total"] == pytest.approx(LN2 * positives, rel=1e-12)
    else:
        assert d["centerness"] is None


def test_shards_merge_to_the_whole(tmp_path):
    ds = _sample(tmp_path)
    preset = dataclasses.replace(PRESETS["rpn"], resize=Resize(200, 333, "shortest-edge"))
    whole = regression_loss(ds, preset=preset).objective()
    half = np.arange(ds.num_images) % 3 == 0
    parts = [regression_loss(ds.select_images(s), preset=preset) for s in (half, ~half)]
    back = [RegressionLoss.from_dict(json.loads(json.dumps(p.to_dict()))) for p in parts]
    merged = RegressionLoss.merge(back).objective()
    assert merged["classification"] == pytest.approx(whole["classification"], rel=1e-12)
    for key in ("dataset", "per_image_mean", "images"):
        assert merged["ratio"][key] == pytest.approx(whole["ratio"][key], rel=1e-12)
    assert merged["ratio"]["per_image_quantiles"] == pytest.approx(whole["ratio"]["per_image_quantiles"], rel=1e-12)


def test_anchor_iou_losses_json_and_shards(tmp_path):
    from imbstat.data.sample import write_sample
    from imbstat.report.merge import merge_documents

    sample = write_sample(tmp_path / "sample.json", num_images=16)
    _anchor_iou(sample, "--losses", "--json", tmp_path / "whole.json")
    whole = json.loads((tmp_path / "whole.json").read_text())["loss"]
    ds = imbstat.load(sample)
    direct = regression_loss(ds, preset=PRESETS["retinanet"]).objective()
    assert whole["classification"]["loss"] == "focal" and whole["classification"]["classes"] == len(ds.categories)
    assert whole["classification"]["total"] == pytest.approx(direct["classification"]["total"], rel=1e-12)
    assert whole["balancing_weight"] == pytest.approx(direct["balancing_weight"], rel=1e-12)
    parts = []
    for i in range(2):
        _anchor_iou(sample, "--losses", "--shard", f"{i}/2", "--json", tmp_path / f"part{i}.json")
        parts.append(json.loads((tmp_path / f"part{i}.json").read_text()))
    merged = merge_documents(parts)["loss"]
    assert merged["classification"] == pytest.approx(whole["classification"], rel=1e-9)
    assert merged["ratio"]["per_image_quantiles"] == pytest.approx(whole["ratio"]["per_image_quantiles"], rel=1e-9)
    assert merged["balancing_weight"] == pytest.approx(whole["balancing_weight"], rel=1e-9)


def test_terminal_and_html_show_the_balance(write_json):
    from rich.console import Console

    from imbstat.sections.loss import loss_html, objective_table
    from imbstat.stats.regression_loss import LossImbalance

    result = LossImbalance(regression_loss(_toy(write_json), preset=TOY))
    console = Console(record=True, width=200)
    console.print(objective_table(result))
    text = console.export_text()
    # the toy's totals: 2 POS + 62 NEG = 2.2568 (focal, 2 outputs), 2 (0.25 + ln 1.5) = 1.3109 (l1); 1.7215 both ways
    assert "focal, 2 output(s)" in text and "2.257" in text and "1.311" in text
    # dataset, per-image mean and median (one image: cls1 / reg1 = 1.7215 too), balancing weight
    assert "balancing weight of the regression term" in text and text.count("1.722") == 4
    html = loss_html(result, "")
    assert "1.722" in html and "2.257" in html
