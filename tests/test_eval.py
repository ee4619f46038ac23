"""imbstat.evaluate against pycocotools' COCOeval (the oracle) on generated detections, and by hand."""

from __future__ import annotations

import contextlib
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import check_png, coco_doc
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

import imbstat
from imbstat import ImbstatError
from imbstat.data.coco import load_coco
from imbstat.stats.eval import Evaluation, evaluate

# --- generated inputs ------------------------------------------------------------------------------------------------


def generated(seed: int = 0, images: int = 40, classes: int = 6) -> tuple[dict, list[dict]]:
    """A COCO GT (boxes inside their images, area w*h, some crowd GTs, class 6 without GT, images without GT) and
    detections: jittered GTs with random scores, duplicates, false positives, images without detections."""
    rng = np.random.default_rng(seed)
    imgs = [{"id": 100 + i, "width": 640, "height": 480, "file_name": f"{i}.jpg"} for i in range(images)]
    anns, dets = [], []
    for i in range(images):
        if i % 7 == 3:  # images without GT
            continue
        for _ in range(rng.integers(1, 8)):
            cat = int(rng.integers(1, classes))  # class `classes` has no GT
            w, h = float(rng.uniform(4, 200)), float(rng.uniform(4, 200))
            x, y = float(rng.uniform(0, 640 - w)), float(rng.uniform(0, 480 - h))
            crowd = int(rng.random() < 0.08)
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": cat, "bbox": [x, y, w, h],
                         "area": w * h, "iscrowd": crowd})  # fmt: skip
            if i % 11 == 5:  # images without detections
                continue
            for _ in range(rng.integers(0, 3)):  # jittered copies, duplicates among them
                j = rng.normal(0, 0.08, 4) * [w, h, w, h]
                box = [x + j[0], y + j[1], max(w + j[2], 1.0), max(h + j[3], 1.0)]
                dets.append({"image_id": 100 + i, "category_id": cat, "bbox": box, "score": float(rng.random())})
    for _ in range(len(dets) // 3):  # false positives, some of the class without GT
        w, h = rng.uniform(4, 150, 2)
        dets.append({"image_id": 100 + int(rng.integers(images)), "category_id": int(rng.integers(1, classes + 1)),
                     "bbox": [float(rng.uniform(0, 400)), float(rng.uniform(0, 300)), float(w), float(h)],
                     "score": float(rng.random())})  # fmt: skip
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, classes + 1)]
    return {"images": imgs, "annotations": anns, "categories": cats}, dets


def oracle(gt_path: Path, dets: list[dict], max_dets: int = 100) -> COCOeval:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes([dict(d) for d in dets]), "bbox")
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def detectron2_per_class(ev: COCOeval) -> list[float]:
    """detectron2 COCOEvaluator._derive_coco_results: per class, the mean of precision > -1, NaN without."""
    precisions = ev.eval["precision"]
    out = []
    for k in range(precisions.shape[2]):
        p = precisions[:, :, k, 0, -1]
        p = p[p > -1]
        out.append(float(np.mean(p)) if p.size else float("nan"))
    return out


@pytest.fixture
def case(tmp_path):
    doc, dets = generated()
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    return path, dets


def test_summary_and_per_class_ap_equal_pycocotools(case):
    path, dets = case
    ev = oracle(path, dets)
    result = evaluate(imbstat.load(path), dets)
    expected = [None if s == -1 else s for s in ev.stats]
    got = [result.summary[k] for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10",
                                       "ar100")] + result.size_ar.tolist()  # fmt: skip
    assert got == pytest.approx([math.nan if e is None else e for e in expected], nan_ok=True, abs=1e-12)
    assert result.ap.tolist() == pytest.approx(detectron2_per_class(ev), nan_ok=True, abs=1e-12)
    assert math.isnan(result.ap[-1])  # class 6 has no GT: null, not 0
    assert result.to_dict()["per_class"][-1]["ap"] is None
    # AP50 / AP75 / recall of one class, straight from the arrays
    p, r = ev.eval["precision"], ev.eval["recall"]
    assert result.ap50[0] == pytest.approx(p[0, :, 0, 0, -1].mean(), abs=1e-12)
    assert result.ap75[1] == pytest.approx(p[5, :, 1, 0, -1].mean(), abs=1e-12)
    assert result.recall[2] == pytest.approx(r[0, 2, 0, -1], abs=1e-12)
    # the plain mean of per-class AP is COCO AP (classes without GT left out of both)
    assert result.mean_ap == pytest.approx(ev.stats[0], abs=1e-12)


def size_of(area: float) -> int:
    """COCOeval's size range (0 small, 1 medium, 2 large) of an area, by hand: [0, 32²), [32², 96²), [96², 1e10]."""
    return 0 if area < 32**2 else 1 if area < 96**2 else 2


def all_stats(result: Evaluation) -> list[float]:
    return [result.summary[k] for k in ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10",
                                        "ar100")] + result.size_ar.tolist()  # fmt: skip


def test_gt_area_field_sorts_sizes_as_pycocotools(tmp_path):
    """A GT's ``area`` field (a segmentation's area), not its w*h, puts it in small / medium / large, as
    COCOeval reads ``gt['area']``: AP and AR by size equal pycocotools on the same file, and differ from w*h's."""
    doc, dets = generated(seed=7, images=60)
    for n, a in enumerate(doc["annotations"]):
        w, h = a["bbox"][2:]
        a["area"] = w * h * (0.3, 1.0, 2.5)[n % 3]  # a mask covers less of its box (or, hostile, more)
    crossing = [a for a in doc["annotations"] if size_of(a["area"]) != size_of(a["bbox"][2] * a["bbox"][3])]
    assert len(crossing) > 20  # many GTs change size range
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    ev = oracle(path, dets)
    result = evaluate(imbstat.load(path), dets)
    assert all_stats(result) == pytest.approx([math.nan if e == -1 else e for e in ev.stats], nan_ok=True, abs=1e-12)
    counted = [size_of(a["area"]) for a in doc["annotations"] if not a["iscrowd"]]
    assert result.size_share.tolist() == pytest.approx(np.bincount(counted, minlength=3) / len(counted), abs=1e-15)

    for a in doc["annotations"]:  # the same file with area w*h: other numbers by size, the same AP over all
        a["area"] = a["bbox"][2] * a["bbox"][3]
    boxes_only = tmp_path / "wh.json"
    boxes_only.write_text(json.dumps(doc))
    plain_result = evaluate(imbstat.load(boxes_only), dets)
    assert plain_result.summary["ap"] == pytest.approx(result.summary["ap"], abs=1e-12)
    assert plain_result.summary["ap_small"] != pytest.approx(result.summary["ap_small"], abs=1e-6)


@pytest.mark.parametrize("stream", [False, True])
def test_unusable_gt_area_is_counted_and_w_times_h_stands_in(tmp_path, stream):
    """An area that is a string, null, negative, NaN or Infinity is counted (invalid_area, the box kept) and its
    box's w*h sorts it, as pycocotools does on the file with w*h written there; a box excluded for its bbox
    is counted once, for that; a missing area is no problem."""
    doc, dets = generated(seed=8, images=20)
    for a in doc["annotations"]:
        a["area"] = a["bbox"][2] * a["bbox"][3] * 0.3
    bad = {1: "big", 2: None, 3: -4.0, 4: math.nan, 5: math.inf}
    for n, value in bad.items():
        doc["annotations"][n]["area"] = value
    del doc["annotations"][6]["area"]
    doc["annotations"][7] |= {"area": "x", "bbox": [1, 1, math.nan, 3]}  # excluded: nan_coordinate only
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))  # NaN and Infinity as Python's json writes them
    ds = load_coco(path, stream=stream, block_bytes=256)
    assert ds.problems.counts() == {"nan_coordinate": 1, "invalid_area": 5}
    p = ds.problems
    found = zip(p.location, p.detail, p.reasons(), strict=True)
    shown = {str(loc): str(det) for loc, det, r in found if r.key == "invalid_area"}
    assert shown == {"annotations[1] (id 2)": 'area="big"', "annotations[2] (id 3)": "area=null",
                     "annotations[3] (id 4)": "area=-4.0", "annotations[4] (id 5)": "area=NaN",
                     "annotations[5] (id 6)": "area=Infinity"}  # fmt: skip
    assert np.isnan(ds.boxes.area[1:7]).all() and not np.isnan(ds.boxes.area[[0, 7]]).any()

    fixed = json.loads(path.read_text().replace("NaN", "null"))
    del fixed["annotations"][7]
    for n in (*bad, 6):
        a = fixed["annotations"][n]
        a["area"] = a["bbox"][2] * a["bbox"][3]
    oracle_path = tmp_path / "fixed.json"
    oracle_path.write_text(json.dumps(fixed))
    ev = oracle(oracle_path, dets)
    assert all_stats(evaluate(ds, dets)) == pytest.approx([math.nan if e == -1 else e for e in ev.stats],
                                                          nan_ok=True, abs=1e-12)  # fmt: skip


@pytest.mark.parametrize("max_dets", [10, 20])
def test_max_dets_as_pycocotools(tmp_path, max_dets):
    doc, dets = generated(seed=3, images=10)
    for d in dets:  # many detections per image, so that the cut matters
        d["image_id"] = 100
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    ev = oracle(path, dets, max_dets)
    result = evaluate(imbstat.load(path), dets, max_dets=max_dets)
    # summarize()'s stats[0] is at maxDets 100 whatever maxDets holds (-1 here); stats[1] and [8] take maxDets[2]
    p = ev.eval["precision"][..., 0, -1]
    assert result.summary["ap"] == pytest.approx(p[p > -1].mean(), abs=1e-12)
    assert result.summary["ap50"] == pytest.approx(ev.stats[1], abs=1e-12)
    assert result.summary["ar100"] == pytest.approx(ev.stats[8], abs=1e-12)
    assert result.ap.tolist() == pytest.approx(detectron2_per_class(ev), nan_ok=True, abs=1e-12)


def test_tp_iou_histogram_from_matches(case):
    """The histogram counts each TP at IoU 0.5 (area all, last maxDets) by its IoU with its matched GT,
    worked out here from pycocotools' evalImgs and its own ious matrices."""
    path, dets = case
    ev = oracle(path, dets)
    found = []
    n_img, n_area = len(ev.params.imgIds), len(ev.params.areaRng)
    for k, cat in enumerate(ev.params.catIds):
        for i, img in enumerate(ev.params.imgIds):
            e = ev.evalImgs[k * n_area * n_img + i]
            if e is None:
                continue
            ious = ev.ious[(img, cat)]
            gts = ev._gts[img, cat]
            gt_order = [g["id"] for g in gts]
            dt_sorted = sorted(ev._dts[img, cat], key=lambda d: -d["score"])[:100]
            for d, (m, ig) in enumerate(zip(e["dtMatches"][0], e["dtIgnore"][0], strict=True)):
                if m > 0 and not ig:
                    row = [x["id"] for x in dt_sorted].index(e["dtIds"][d])
                    found.append(ious[row, gt_order.index(m)])
    expected, _ = np.histogram(np.clip(found, 0.5, 1.0), np.linspace(0.5, 1.0, 11))
    result = evaluate(imbstat.load(path), dets)
    assert result.tp_iou["overall"].counts.tolist() == expected.tolist()
    assert sum(result.tp_iou[g].total for g in ("rare", "common", "frequent")) == len(found)
    assert len(found) > 20  # the case has true positives to count


def test_empty_detections_give_zero_ap_for_classes_with_gt(case):
    path, _ = case
    result = evaluate(imbstat.load(path), [])
    has_gt = result.instances > 0
    assert result.ap[has_gt].tolist() == [0.0] * int(has_gt.sum())
    assert np.isnan(result.ap[~has_gt]).all()
    assert result.summary["ap"] == 0.0
    assert result.tp_iou["overall"].total == 0


def test_hand_case_two_classes(write_json):
    """cat: one GT found by the top detection (AP 1); dog: one GT, a false positive scored above the match
    (precision 1/2 at recall 1: AP 0.5 at every IoU threshold, as the 101-point interpolation gives 0.5)."""
    gt = write_json(coco_doc([(1, 100, 100)], [(1, 1, [0, 0, 40, 40], 0), (1, 2, [50, 50, 40, 40], 0)],
                             [(1, "cat"), (2, "dog"), (3, "emu")]))  # fmt: skip
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.9},
        {"image_id": 1, "category_id": 2, "bbox": [50, 50, 40, 40], "score": 0.5},
    ]
    r = evaluate(imbstat.load(gt), dets)
    assert r.ap[:2].tolist() == pytest.approx([1.0, 0.5], abs=1e-12)
    assert math.isnan(r.ap[2])
    assert r.recall[:2].tolist() == [1.0, 1.0]
    assert r.detections.tolist() == [1, 2, 0]
    assert r.mean_ap == pytest.approx(0.75, abs=1e-12) and r.weighted_ap == pytest.approx(0.75, abs=1e-12)
    # two TPs, both IoU 1.0: the last bin (closed on the right)
    assert r.tp_iou["overall"].counts.tolist() == [0] * 9 + [2]
    # no training set: the GT's own images; each class is on 1 image: rare
    assert r.groups["rare"] == {"classes": 3, "classes_with_ap": 2, "ap": pytest.approx(0.75, abs=1e-12)}
    assert r.to_dict()["groups"]["basis"] == "images"


def test_crowd_gt_is_neither_tp_nor_fp(write_json):
    gt = write_json(coco_doc([(1, 100, 100)], [(1, 1, [0, 0, 40, 40], 0), (1, 1, [50, 50, 40, 40], 1)],
                             [(1, "cat")]))  # fmt: skip
    dets = [
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 40, 40], "score": 0.9},  # on the crowd: ignored
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.5},
    ]
    r = evaluate(imbstat.load(gt), dets)
    assert r.ap[0] == pytest.approx(1.0, abs=1e-12) and r.instances[0] == 1
    assert r.tp_iou["overall"].total == 1


def lvis_case(write_json, images_per_class: list[int]) -> tuple[Path, Path, list[dict]]:
    """A train file whose class k is on images_per_class[k] images (ids renumbered from 0, names shared),
    and a GT file with one box per class on one image."""
    n = max(images_per_class)
    names = [f"c{k}" for k in range(len(images_per_class))]
    train_anns = [(i + 1, k, [1, 1, 5, 5], 0) for k, m in enumerate(images_per_class) for i in range(m)]
    train = write_json(coco_doc([(i + 1, 50, 50) for i in range(n)], train_anns, list(enumerate(names))), "train.json")
    gt_anns = [(1, k + 1, [10 * k, 0, 8, 8], 0) for k in range(len(names))]
    gt = write_json(coco_doc([(1, 200, 50)], gt_anns, [(k + 1, name) for k, name in enumerate(names)]), "gt.json")
    dets = [{"image_id": 1, "category_id": k + 1, "bbox": [10 * k, 0, 8, 8], "score": 0.5} for k in range(len(names))]
    return gt, train, dets


def test_lvis_group_boundaries_by_train_images_matched_by_name(write_json):
    gt, train, dets = lvis_case(write_json, [10, 11, 100, 101, 1])
    r = evaluate(imbstat.load(gt), dets, imbstat.load(train))
    assert r.group.tolist() == ["rare", "common", "common", "frequent", "rare"]
    assert r.train_images.tolist() == [10, 11, 100, 101, 1]  # by name: train ids 0..4, GT ids 1..5
    assert r.groups["common"] == {"classes": 2, "classes_with_ap": 2, "ap": pytest.approx(1.0, abs=1e-12)}
    assert r.to_dict()["basis"] == "train"
    assert r.frequency_correlation["x"] == "train_instances"


def test_categories_matched_by_id_when_a_name_is_missing(write_json):
    gt, train, dets = lvis_case(write_json, [3, 20, 200])
    doc = json.loads(train.read_text())
    doc["categories"][0]["name"] = ""  # not every category named: matched by id (train 0..2, GT 1..3)
    train.write_text(json.dumps(doc))
    r = evaluate(imbstat.load(gt), dets, imbstat.load(train))
    assert r.train_images.tolist() == [20, 200, 0]  # GT id 1 is train id 1; GT id 3 is in no train category


def test_spearman_and_slope_against_scipy(case):
    scipy_stats = pytest.importorskip("scipy.stats")
    path, dets = case
    r = evaluate(imbstat.load(path), dets)
    use = ~np.isnan(r.ap) & (r.instances > 0)
    rho = scipy_stats.spearmanr(r.instances[use], r.ap[use]).statistic
    fit = scipy_stats.linregress(np.log10(r.instances[use]), r.ap[use])
    corr = r.frequency_correlation
    assert corr["spearman"] == pytest.approx(rho, abs=1e-12)
    assert corr["slope_per_decade"] == pytest.approx(fit.slope, abs=1e-12)
    assert corr["classes"] == int(use.sum()) and corr["x"] == "instances"


def test_spearman_with_ties_against_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    inst = np.array([5, 5, 10, 10, 10, 300, 2], np.int64)
    ap = np.array([0.1, 0.3, 0.3, 0.3, 0.7, 0.9, 0.1])
    r = result_with(inst, ap)
    assert r.frequency_correlation["spearman"] == pytest.approx(scipy_stats.spearmanr(inst, ap).statistic, abs=1e-12)


def result_with(instances: np.ndarray, ap: np.ndarray) -> Evaluation:
    k = len(ap)
    nan = np.full(k, np.nan)
    names = np.asarray([f"c{i}" for i in range(k)], object)
    zeros = np.zeros(3)
    return Evaluation(np.arange(k), names, instances, instances, None, None, ap, nan, nan, nan,
                      np.zeros(k, np.int64), {}, zeros, zeros, {}, 100, 0, {})  # fmt: skip


def test_round_trip_and_merge(case):
    path, dets = case
    r = evaluate(imbstat.load(path), dets)
    d = r.to_dict()
    json.dumps(d, allow_nan=False)  # plain JSON: NaN written as null
    assert Evaluation.from_dict(d).to_dict() == d
    assert Evaluation.merge([r]) is r
    empty = Evaluation.empty(imbstat.load(path))
    assert Evaluation.merge([empty, r, empty]) is r and empty.is_empty and not r.is_empty
    assert Evaluation.from_dict(empty.to_dict()).to_dict() == empty.to_dict()
    assert empty.to_dict()["per_class"][0]["ap"] is None and empty.tp_iou["overall"].total == 0
    with pytest.raises(ImbstatError, match="cannot merge evaluations"):
        Evaluation.merge([r, r])
    with pytest.raises(ImbstatError, match="cannot merge an empty list"):
        Evaluation.merge([])
    frame = r.to_frame()
    assert list(frame.columns[:4]) == ["category_id", "name", "instances", "images"]
    assert frame.instances.is_monotonic_decreasing


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.fixture
def small_gt(write_json):
    return imbstat.load(write_json(coco_doc([(1, 100, 100), (2, 100, 100)], [(1, 1, [0, 0, 40, 40], 0)],
                                            [(1, "cat"), (2, "dog")])))  # fmt: skip


GOOD = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 40, 40], "score": 0.9}


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (["not a dict"], "not_an_object"),
        ({k: v for k, v in GOOD.items() if k != "score"}, "missing_field"),
        (GOOD | {"bbox": [0, 0, 40]}, "bad_bbox"),
        (GOOD | {"bbox": [0, 0, "a", 4]}, "bad_bbox"),
        (GOOD | {"bbox": [0, 0, float("nan"), 4]}, "non_finite_bbox"),
        (GOOD | {"bbox": [0, float("inf"), 4, 4]}, "non_finite_bbox"),
        (GOOD | {"bbox": [0, 0, -1, 4]}, "negative_size"),
        (GOOD | {"score": float("nan")}, "bad_score"),
        (GOOD | {"score": "high"}, "bad_score"),
        (GOOD | {"image_id": 7}, "unknown_image"),
        (GOOD | {"image_id": "1"}, "unknown_image"),  # a string is not the int id 1
        (GOOD | {"category_id": 9}, "unknown_category"),
    ],
)
def test_bad_detection_is_counted_and_left_out(small_gt, tmp_path, bad, reason):
    item = bad[0] if isinstance(bad, list) else bad
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([GOOD, item, GOOD]))  # json.dumps writes NaN and Infinity as Python reads them
    r = evaluate(small_gt, path)
    assert r.skipped == {reason: 1}
    assert r.read == 3 and int(r.detections.sum()) == 2
    assert r.to_dict()["detections"]["skipped"] == {reason: 1}
    # the same through a list
    assert evaluate(small_gt, [GOOD, item, GOOD]).skipped == {reason: 1}


def test_nothing_usable_is_one_error_with_position(small_gt, tmp_path):
    path = tmp_path / "dets.json"
    path.write_text(json.dumps([GOOD | {"category_id": 9}, GOOD | {"image_id": 5}]))
    with pytest.raises(ImbstatError) as e:
        evaluate(small_gt, path)
    assert str(e.value).startswith(f"{path} (detection 0): no usable detection: all 2 were left out")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"image_id": 1}', "the top level is dict; expected a COCO results list"),
        ("[{", "(line 1 column 3)"),
        ("", "(line 1 column 1)"),
    ],
)
def test_detections_file_not_a_list(small_gt, tmp_path, text, message):
    path = tmp_path / "dets.json"
    path.write_text(text)
    with pytest.raises(ImbstatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        evaluate(small_gt, path)


def test_max_dets_bounds(small_gt):
    for bad in (9, 0, 10**6, 1.5, True):
        with pytest.raises(ImbstatError, match="--max-dets"):
            evaluate(small_gt, [GOOD], max_dets=bad)


# --- the command, the report section, audit and compare -------------------------------------------------------------


def cli(*args: object):
    from typer.testing import CliRunner

    from imbstat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def files(tmp_path):
    doc, dets = generated(seed=1, images=30)
    dets.append({"image_id": 999, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5})  # an unknown image
    train_doc, _ = generated(seed=2, images=200)
    paths = {}
    for name, body in (("gt", doc), ("dets", dets), ("train", train_doc)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(body))
    return paths


def test_eval_command_json_out_and_one_warning(files, tmp_path):
    done = cli("eval", files["gt"], files["dets"], "--train", files["train"], "--json", "-", "--out", tmp_path / "o")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["command"] == "eval" and doc["basis"] == "train"
    expected = evaluate(imbstat.load(files["gt"]), files["dets"], imbstat.load(files["train"])).to_dict()
    assert {k: doc[k] for k in expected} == expected
    assert doc["detections"]["skipped"] == {"unknown_image": 1}
    warning = [line for line in done.stderr.splitlines() if "warning" in line]
    read = doc["detections"]["read"]
    assert warning == [f"imbstat: warning: {files['dets']}: left out 1 of {read} detections (unknown_image 1); "
                       f"the first, detection {read - 1}: unknown image"]  # fmt: skip
    names = {p.name for p in (tmp_path / "o").iterdir()}
    assert names == {"eval_classes.csv", "eval_groups.csv", "eval_size.csv", "eval_tp_iou.csv",
                     "eval_ap_frequency.png", "eval_groups.png", "eval_size.png", "eval_tp_iou.png"}  # fmt: skip
    for name in names:
        if name.endswith(".png"):
            check_png(tmp_path / "o" / name)
    import pandas as pd

    classes = pd.read_csv(tmp_path / "o" / "eval_classes.csv")
    assert classes["train_instances"].is_monotonic_decreasing  # sorted by training frequency


def test_eval_command_table(files):
    done = cli("eval", files["gt"], files["dets"])
    assert done.exit_code == 0, done.output
    assert "AP per class by GT frequency (6 classes" in done.stdout and "class6" in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-dets", "5"], "imbstat: error: --max-dets: expected greater than or equal to 10"),
        (["--shard", "0/2"], "imbstat: error: --shard: AP ranks every detection"),
    ],
)
def test_eval_command_bad_options(files, args, message):
    done = cli("eval", files["gt"], files["dets"], *args)
    assert done.exit_code == 2 and message in done.output


@pytest.mark.parametrize(("text", "position"), [('{"a": 1}', ""), ("[1, 2", " (line 1 column 6)"),
                                                ('[{"image_id": 5}]', " (detection 0)")])  # fmt: skip
def test_eval_command_bad_file_is_one_line(files, tmp_path, text, position):
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    done = cli("eval", files["gt"], bad)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"imbstat: error: {bad}{position}: ") and done.stderr.count("\n") == 1
    missing = cli("eval", files["gt"], tmp_path / "none.json")
    assert missing.exit_code == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.output


def test_report_with_detections_audit_and_compare(files, tmp_path):
    out = tmp_path / "report"
    done = cli("report", files["gt"], "--detections", files["dets"], "--train", files["train"], "--out", out, "-q")
    assert done.exit_code == 0, done.output
    doc = json.loads((out / "report.json").read_text())
    expected = evaluate(imbstat.load(files["gt"]), files["dets"], imbstat.load(files["train"]))
    assert doc["eval"]["scores"]["ap"] == pytest.approx(expected.summary["ap"], abs=1e-12)
    assert doc["options"]["eval"] == {"detections": str(files["dets"]), "train": str(files["train"]), "max_dets": 100}
    assert (out / "eval_ap_frequency.png").is_file() and "Accuracy against class frequency" in (
        out / "index.html").read_text()  # fmt: skip

    config = tmp_path / "audit.toml"
    checks = '"eval.ap >= 0.01", "eval.groups.rare.ap <= 1", "eval.frequency_correlation.spearman >= -1"'
    config.write_text(f'detections = "dets.json"\ntrain = "train.json"\nchecks = [{checks}]\n')
    audited = cli("audit", files["gt"], "--config", config, "--json", "-", "-q")
    rows = json.loads(audited.stdout)["checks"]
    assert [r["value"] for r in rows[:1]] == [pytest.approx(expected.summary["ap"], abs=1e-12)]
    # the frequencies: no class of this training set is rare, so its AP is undefined and the check fails
    assert math.isnan(expected.groups["rare"]["ap"]) == (rows[1]["value"] is None)
    assert rows[2]["value"] == pytest.approx(expected.frequency_correlation["spearman"], abs=1e-12)

    # compare: the per-class AP change against a report of other detections (every box moved by 3 px)
    dets = json.loads(files["dets"].read_text())
    other = tmp_path / "other.json"
    other.write_text(json.dumps([d | {"bbox": [v + 3 for v in d["bbox"]]} for d in dets]))
    cli("report", files["gt"], "--detections", other, "--out", tmp_path / "r2", "-q")
    comparison = imbstat.compare(out / "report.json", tmp_path / "r2" / "report.json").to_dict()
    body = comparison["eval"] if "eval" in comparison else comparison["sections"]["eval"]
    b = json.loads((tmp_path / "r2" / "report.json").read_text())["eval"]
    assert body["scores"]["ap"] == pytest.approx(b["scores"]["ap"] - doc["eval"]["scores"]["ap"], abs=1e-12)
    by_name = {r["name"]: r for r in doc["eval"]["per_class"]}
    for row in body["per_class"]:
        a_ap = by_name[row["name"]]["ap"]
        b_ap = next(r["ap"] for r in b["per_class"] if r["name"] == row["name"])
        assert row["ap_a"] == a_ap and row["ap_b"] == b_ap
        assert row["change"] == (None if a_ap is None else pytest.approx(b_ap - a_ap, abs=1e-12))


def test_audit_eval_metrics_need_detections(tiny_coco, tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["eval.ap >= 0.5"]\n')
    done = cli("audit", tiny_coco, "--config", config)
    assert done.exit_code == 2
    assert done.stderr == f"imbstat: error: {config} (checks): checks name eval.* metrics; expected detections = " \
        "PATH (COCO results)\n"  # fmt: skip


def pycocotools_tp_pairs(ev: COCOeval, gt_ids: list[int], max_dets: int) -> set[tuple[int, int]]:
    """(detection position, GT position) of pycocotools' true positives at IoU 0.5, area all, last maxDets."""
    pairs = set()
    n_img, n_area = len(ev.params.imgIds), len(ev.params.areaRng)
    for k in range(len(ev.params.catIds)):
        for i in range(n_img):
            e = ev.evalImgs[k * n_area * n_img + i]
            if e is None:
                continue
            for d, (m, ig) in enumerate(zip(e["dtMatches"][0], e["dtIgnore"][0], strict=True)):
                if m > 0 and not ig:
                    pairs.add((int(e["dtIds"][d]) - 1, gt_ids.index(int(m))))
    return pairs


@pytest.mark.parametrize(("seed", "max_dets"), [(4, 100), (5, 10)])
def test_true_positive_pairs_equal_pycocotools(tmp_path, seed, max_dets):
    """Tied scores, many detections per image (the maxDets cut), crowd GTs and a GT above COCO's 'all' area
    range (1e10 px²): the matching kernel pairs exactly the detections and GTs that pycocotools pairs."""
    from imbstat.stats.eval import _true_positives, gt_area, read_detections

    doc, dets = generated(seed=seed, images=12)
    for d in dets:
        d["score"] = round(d["score"], 1)  # ties: broken by input order
    doc["images"][0] |= {"width": 300_000, "height": 300_000}
    doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": 100, "category_id": 1,
                               "bbox": [0, 0, 200_000, 200_000], "area": 4e10, "iscrowd": 0})  # fmt: skip
    # a GT whose w*h is in the 'all' range but whose area field is above it: ignored, as pycocotools ignores it
    doc["annotations"].append({"id": len(doc["annotations"]) + 1, "image_id": 100, "category_id": 2,
                               "bbox": [10, 10, 500, 500], "area": 2e10, "iscrowd": 0})  # fmt: skip
    dets += [{"image_id": 100, "category_id": 1, "bbox": [0, 0, 199_000, 200_000], "score": 0.95},
             {"image_id": 100, "category_id": 2, "bbox": [10, 10, 500, 500], "score": 0.9}]  # fmt: skip
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(doc))
    ev = oracle(path, dets, max_dets)
    ds = imbstat.load(path)
    b = ds.boxes
    xywh = np.column_stack([b.xyxy[:, :2], b.xyxy[:, 2:] - b.xyxy[:, :2]])
    k = len(ds.categories)
    found = _true_positives(xywh, gt_area(ds), b.image * k + b.category, b.iscrowd, read_detections(dets, ds), k,
                            max_dets)  # fmt: skip
    expected = pycocotools_tp_pairs(ev, [a["id"] for a in doc["annotations"]], max_dets)
    assert set(zip(found[0].tolist(), found[1].tolist(), strict=True)) == expected
    assert len(expected) > 10


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--train", "t.json"], "--train without --detections; expected --detections DETS (COCO results) as well"),
        (["--max-dets", "20"], "--max-dets without --detections; expected --detections DETS (COCO results) as well"),
        (
            ["--detections", "d.json", "--shard", "0/2"],
            "--detections with --shard: AP ranks every detection of a "
            "class over the whole file; expected no --shard (--dask evaluates on the whole file)",
        ),
    ],
)
def test_report_eval_options_need_detections(tiny_coco, tmp_path, options, message):
    done = cli("report", tiny_coco, "--out", tmp_path / "r", *options)
    assert done.exit_code == 2 and done.stderr == f"imbstat: error: {message}\n"
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize(
    ("config", "position", "message"),
    [
        ('train = "t.json"\n', "train", "train without detections; expected detections = PATH as well"),
        ('detections = "d.json"\nmax_dets = 5\n', "max_dets", "5: expected an integer from 10 to 100000"),
    ],
)
def test_audit_eval_keys_checked(tiny_coco, tmp_path, config, position, message):
    path = tmp_path / "audit.toml"
    path.write_text(config + 'checks = ["classes.gini <= 1"]\n')
    done = cli("audit", tiny_coco, "--config", path)
    assert done.exit_code == 2
    assert done.stderr.startswith(f"imbstat: error: {path} ({position}): {message}") and done.stderr.count("\n") == 1


def test_gt_without_boxes_has_no_ap(write_json):
    gt = imbstat.load(write_json(coco_doc([(1, 100, 100)], [], [(1, "cat")])))
    r = evaluate(gt, [GOOD])
    assert math.isnan(r.ap[0]) and math.isnan(r.summary["ap"]) and r.to_dict()["summary"]["ap"] is None
    assert r.detections.tolist() == [1] and r.tp_iou["overall"].total == 0


def test_names_identify_categories_only_when_all_distinct_and_non_empty():
    from imbstat.data.ids import names_identify

    assert names_identify(["a", "b"]) and names_identify(np.asarray(["a", "b"], object)) and names_identify([])
    assert not names_identify(["a", ""]) and not names_identify(["a", "a"]) and not names_identify(["a", None])


# --- AP against the anchors of each class ----------------------------------------------------------------------------


def test_with_anchors_by_hand_and_spearman_against_scipy(case):
    """Per class: foreground anchors per labelled GT and the share of GTs with none, from hand-made counts
    ([K, 3] by size); Spearman's rho of AP against each equals scipy's over the classes with an AP and a GT."""
    from types import SimpleNamespace

    from scipy.stats import spearmanr

    path, dets = case
    result = evaluate(imbstat.load(path), dets)  # classes 1-5 have an AP, class 6 none
    counts = SimpleNamespace(
        category_id=result.category_id,
        preset=SimpleNamespace(name="rpn"),
        gt_count=np.array([[2, 0, 0], [1, 1, 2], [0, 0, 0], [3, 0, 0], [0, 5, 0], [1, 0, 0]]),
        gt_foreground=np.array([[2, 0, 0], [3, 4, 9], [0, 0, 0], [0, 0, 0], [0, 20, 0], [7, 0, 0]]),
        gt_unmatched=np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0], [3, 0, 0], [0, 1, 0], [0, 0, 0]]),
    )
    joined = result.with_anchors(counts)
    per_gt = [2 / 2, 16 / 4, math.nan, 0 / 3, 20 / 5, 7 / 1]
    none = [1 / 2, 0 / 4, math.nan, 3 / 3, 1 / 5, 0 / 1]
    assert joined.anchor_foreground_per_gt.tolist() == pytest.approx(per_gt, nan_ok=True, abs=1e-15)
    assert joined.anchor_no_foreground.tolist() == pytest.approx(none, nan_ok=True, abs=1e-15)
    use = [0, 1, 3, 4]  # an AP (not class 6) and a labelled GT (not class 3)
    corr = joined.anchor_correlation
    assert corr["classes"] == 4 and corr["preset"] == "rpn"
    assert corr["foreground_per_gt"] == pytest.approx(spearmanr(np.take(per_gt, use), result.ap[use])[0], abs=1e-12)
    assert corr["no_foreground_share"] == pytest.approx(spearmanr(np.take(none, use), result.ap[use])[0], abs=1e-12)

    d = joined.to_dict()
    assert [r["foreground_per_gt"] for r in d["per_class"]] == [1.0, 4.0, None, 0.0, 4.0, 7.0]
    assert (
        d["anchor_correlation"]["classes"] == 4
        and list(d).index("anchor_correlation") == list(d).index("frequency_correlation") + 1
    )
    assert Evaluation.from_dict(d).to_dict() == d  # read back from a report
    assert "anchor_correlation" not in result.to_dict() and "foreground_per_gt" not in result.to_dict()["per_class"][0]
    with pytest.raises(ImbstatError, match="other categories"):
        result.with_anchors(SimpleNamespace(**{**vars(counts), "category_id": result.category_id[:-1]}))


def test_eval_and_report_with_anchors_match_the_anchors_command(files, tmp_path):
    """eval --anchors --preset rpn gives per class what anchor-iou's per-GT rows of the same file and preset
    say (foreground / gts, unmatched / gts); report --detections --anchors gives the same eval section."""
    done = cli("eval", files["gt"], files["dets"], "--anchors", "--preset", "rpn", "--json", "-")
    assert done.exit_code == 0, done.output
    doc = json.loads(done.stdout)
    assert doc["options"]["preset"] == "rpn" and doc["anchor_correlation"]["preset"] == "rpn"
    anchors = cli("anchor-iou", files["gt"], "--preset", "rpn", "--quiet", "--json", "-")
    assert anchors.exit_code == 0, anchors.output
    by_class = {r["category_id"]: r for r in json.loads(anchors.stdout)["per_gt"]["by_class"]}
    assert len(by_class) == 5  # class 6 has no GT
    for row in doc["per_class"]:
        gt = by_class.get(row["category_id"])
        if gt is None:
            assert row["foreground_per_gt"] is None and row["no_foreground_share"] is None
        else:
            assert row["foreground_per_gt"] == pytest.approx(gt["foreground"] / gt["gts"], abs=1e-15)
            assert row["no_foreground_share"] == pytest.approx(gt["unmatched"] / gt["gts"], abs=1e-15)
    out = tmp_path / "report"
    report = cli("report", files["gt"], "--detections", files["dets"], "--anchors", "--preset", "rpn", "--out", out,
                 "-q")  # fmt: skip
    assert report.exit_code == 0, report.output
    section = json.loads((out / "report.json").read_text())["eval"]
    assert section["anchor_correlation"] == doc["anchor_correlation"]
    assert section["per_class"] == doc["per_class"]

    table = cli("eval", files["gt"], files["dets"], "--anchors", "--preset", "rpn")
    rho = doc["anchor_correlation"]["foreground_per_gt"]
    assert (
        f"Spearman AP vs foreground anchors per GT (rpn, {doc['anchor_correlation']['classes']} classes)"
        in (table.stdout)
        and f"{rho:.4g}" in table.stdout
    )
    alone = cli("eval", files["gt"], files["dets"], "--preset", "rpn")
    assert alone.exit_code == 2 and "add --anchors" in alone.stderr and alone.stderr.count("\n") == 1
