"""Repeat-factor sampling and class-balanced loss weights (issue 13 §3) against independent computations."""

from __future__ import annotations

import json
import math
from collections import defaultdict

import numpy as np
import pytest
from helpers import coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat import BoxFilter, Results
from imbstat.cli import app
from imbstat.errors import ImbstatError
from imbstat.report import build
from imbstat.report.compare import compare
from imbstat.report.html import write_index
from imbstat.report.metrics import metrics
from imbstat.stats import (
    ClassBalancedLoss,
    RepeatFactorSampling,
    class_balanced_loss,
    repeat_factor_sampling,
    repeat_factors,
)

runner = CliRunner()
R2 = math.sqrt(2)

# Four images, classes A B C D (D in none):
#   image 1: A, A, B   image 2: A   image 3: C   image 4: no box
# f_A = 2/4, f_B = f_C = 1/4; with T = 0.5: r_A = max(1, √1) = 1, r_B = r_C = √2, r_D undefined;
# r_1 = max(r_A, r_B) = √2, r_2 = 1, r_3 = √2, r_4 = 1; epoch = 2 + 2√2.
HAND_IMAGES = [(1, 100, 100), (2, 100, 100), (3, 100, 100), (4, 100, 100)]
HAND_ANNOTATIONS = [
    (1, 1, [0, 0, 10, 10], 0),
    (1, 1, [20, 20, 10, 10], 0),
    (1, 2, [40, 40, 10, 10], 0),
    (2, 1, [0, 0, 10, 10], 0),
    (3, 3, [0, 0, 10, 10], 0),
    (3, 2, [0, 0, 5, 5], 1),  # crowd: not counted, so B is not in image 3
]
HAND_CATEGORIES = [(1, "A"), (2, "B"), (3, "C"), (4, "D")]


@pytest.fixture
def hand(write_json):
    return imbstat.load(write_json(coco_doc(HAND_IMAGES, HAND_ANNOTATIONS, HAND_CATEGORIES)), cache=False)


def test_repeat_factors_by_hand(hand):
    per_class, per_image = repeat_factors(hand, 0.5)
    np.testing.assert_allclose(per_class[:3], [1, R2, R2], rtol=1e-15)
    assert math.isnan(per_class[3])
    np.testing.assert_allclose(per_image, [R2, 1, R2, 1], rtol=1e-15)
    r = repeat_factor_sampling(hand, threshold=0.5)
    assert r.epoch_images == pytest.approx(2 + 2 * R2, rel=1e-15)
    np.testing.assert_allclose(r.expected_instances, [2 * R2 + 1, R2, R2, 0], rtol=1e-15)
    np.testing.assert_allclose(r.expected_images, [R2 + 1, R2, R2, 0], rtol=1e-15)
    # objects per image 3, 1, 1, 0 and classes 2, 1, 1, 0, each image weighted by r_i
    np.testing.assert_allclose(r.objects_per_image, [1, 1 + R2, 0, R2], rtol=1e-15)
    np.testing.assert_allclose(r.classes_per_image, [1, 1 + R2, R2], rtol=1e-15)
    assert r.scores["imbalance_ratio"] == pytest.approx((2 * R2 + 1) / R2, rel=1e-15)
    assert r.scores_before["imbalance_ratio"] == 3.0  # A 3 : B 1, C 1
    d = r.to_dict()
    rows = {row["name"]: row for row in d["per_class"]}
    assert rows["D"] == {"category_id": 4, "name": "D", "repeat_factor": None, "instances": 0.0, "images": 0.0,
                         "instances_before": 0, "images_before": 0}  # fmt: skip
    assert rows["B"]["repeat_factor"] == pytest.approx(R2) and rows["A"]["instances_before"] == 3
    # the crowd box of B counts when asked: B in 2 images, f_B = 1/2, r_B = 1, r_3 = r_C
    with_crowd = repeat_factors(hand, 0.5, box_filter=BoxFilter(include_crowd=True))[0]
    np.testing.assert_allclose(with_crowd[:3], [1, 1, R2], rtol=1e-15)


def test_threshold_above_every_frequency_repeats_every_image(hand):
    # T = 1: r_A = √2, r_B = r_C = 2, so images 1 and 3 twice, image 2 √2 times, image 4 once.
    r = repeat_factor_sampling(hand, threshold=1.0)
    assert r.epoch_images == pytest.approx(2 + 2 + R2 + 1)


def _detectron2_factors(dataset_dicts: list[dict], repeat_thresh: float) -> list[float]:
    """detectron2's RepeatFactorTrainingSampler.repeat_factors_from_category_frequency, one image at a time."""
    category_freq: dict[int, float] = defaultdict(int)
    for d in dataset_dicts:
        for cat_id in {ann["category_id"] for ann in d["annotations"]}:
            category_freq[cat_id] += 1
    num_images = len(dataset_dicts)
    category_rep = {c: max(1.0, math.sqrt(repeat_thresh / (n / num_images))) for c, n in category_freq.items()}
    factors = []
    for d in dataset_dicts:
        cat_ids = {ann["category_id"] for ann in d["annotations"]}
        factors.append(max({category_rep[c] for c in cat_ids}, default=1.0))
    return factors


def _random_doc(rng: np.random.Generator, images: int, classes: int) -> dict:
    shares = rng.dirichlet(np.full(classes, 0.3))
    annotations = []
    for image in range(1, images + 1):
        for _ in range(rng.poisson(2.0)):  # some images get no box
            cat = int(rng.choice(classes, p=shares)) + 1
            annotations.append((image, cat, [1, 1, 4, 4], int(rng.random() < 0.1)))
    return coco_doc([(i, 50, 50) for i in range(1, images + 1)], annotations, [(c, f"c{c}") for c in
                    range(1, classes + 1)])  # fmt: skip


@pytest.mark.parametrize("threshold", [0.001, 0.05, 0.3, 2.0])
def test_repeat_factors_match_detectron2_loop(write_json, threshold):
    doc = _random_doc(np.random.default_rng(13), images=300, classes=25)
    ds = imbstat.load(write_json(doc), cache=False)
    # detectron2's dataset dicts: every image (with or without boxes), the counted (non-crowd) annotations
    by_image: dict[int, list] = {im["id"]: [] for im in doc["images"]}
    for ann in doc["annotations"]:
        if not ann["iscrowd"]:
            by_image[ann["image_id"]].append(ann)
    dicts = [{"annotations": by_image[im["id"]]} for im in doc["images"]]
    expected = _detectron2_factors(dicts, threshold)
    per_class, per_image = repeat_factors(ds, threshold)
    np.testing.assert_allclose(per_image, expected, rtol=1e-13)
    # expected counts per epoch: Σ_i r_i · n_ic and Σ_i r_i · [c in i], image by image
    instances, images = defaultdict(float), defaultdict(float)
    for factor, d in zip(expected, dicts, strict=True):
        for ann in d["annotations"]:
            instances[ann["category_id"]] += factor
        for cat in {ann["category_id"] for ann in d["annotations"]}:
            images[cat] += factor
    r = repeat_factor_sampling(ds, threshold=threshold)
    cats = [c["id"] for c in doc["categories"]]
    np.testing.assert_allclose(r.expected_instances, [instances[c] for c in cats], rtol=1e-12)
    np.testing.assert_allclose(r.expected_images, [images[c] for c in cats], rtol=1e-12)
    assert r.epoch_images == pytest.approx(sum(expected), rel=1e-12)
    present = {ann["category_id"] for d in dicts for ann in d["annotations"]}
    absent = [c not in present for c in cats]
    assert any(absent) and np.array_equal(np.isnan(per_class), absent)


def test_merge_of_shards_is_exact_and_round_trips(write_json):
    ds = imbstat.load(write_json(_random_doc(np.random.default_rng(5), images=200, classes=12)), cache=False)
    whole = repeat_factor_sampling(ds, threshold=0.1)
    parts = [repeat_factor_sampling(ds.take_shard(i, 3), threshold=0.1) for i in (2, 0, 1)]
    # from the shards' JSON (with raw), merged: the whole run's numbers to the bit
    shard_json = [RepeatFactorSampling.from_dict(json.loads(json.dumps(p.to_dict(raw=True)))) for p in parts]
    merged = RepeatFactorSampling.merge([*shard_json, RepeatFactorSampling.empty(ds, threshold=0.1)])
    assert merged.to_dict() == whole.to_dict()
    assert RepeatFactorSampling.from_dict(whole.to_dict()).to_dict() == whole.to_dict()
    with pytest.raises(ImbstatError, match="without 'raw'"):
        RepeatFactorSampling.merge([RepeatFactorSampling.from_dict(p.to_dict()) for p in parts])
    bad = parts[0].to_dict(raw=True)
    bad["raw"]["image"] = bad["raw"]["image"][::-1]  # not sorted: the per-image maxima would be wrong
    with pytest.raises(ImbstatError, match="not an image × class matrix"):
        RepeatFactorSampling.from_dict(bad)
    with pytest.raises(ImbstatError, match="different threshold"):
        RepeatFactorSampling.merge([parts[0], repeat_factor_sampling(ds.take_shard(1, 3), threshold=0.2)])
    balanced = [class_balanced_loss(ds.take_shard(i, 3), beta=0.99) for i in range(3)]
    merged_cb = ClassBalancedLoss.merge([ClassBalancedLoss.from_dict(b.to_dict()) for b in balanced])
    assert merged_cb.to_dict() == class_balanced_loss(ds, beta=0.99).to_dict()


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9, 0.999, 0.9999])
def test_class_balanced_weights_closed_form(hand, beta):
    # instances A 3, B 1, C 1, D 0: w ∝ (1 − β) / (1 − β^n), D 0, the three others sum to 3
    raw = [(1 - beta) / (1 - beta**n) for n in (3, 1, 1)]
    expected = [3 * w / sum(raw) for w in raw] + [0.0]
    r = class_balanced_loss(hand, beta=beta)
    np.testing.assert_allclose(r.weight, expected, rtol=1e-12)
    assert r.weight.sum() == pytest.approx(3.0)
    np.testing.assert_allclose(r.loss_mass, np.array(expected) * [3, 1, 1, 0], rtol=1e-12)
    rows = r.to_dict()["per_class"]
    assert [row["weight"] for row in rows] == pytest.approx(expected, rel=1e-12)


def test_class_balanced_weights_near_one_are_inverse_frequency():
    # β → 1: (1 − β) / (1 − β^n) → 1 / n; 1 − β^n computed naively loses the digits that expm1 keeps
    from imbstat.stats.class_balanced import class_balanced_weights

    n = np.array([1, 10, 1000, 10**6])
    w = class_balanced_weights(n, 1 - 1e-12)
    inverse = (1 / n) * (4 / (1 / n).sum())
    np.testing.assert_allclose(w, inverse, rtol=1e-5)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--repeat-factor", "0", "repeat-factor threshold 0.0 is not allowed; expected a number in (0, 1000]"),
        # issue 20: factors of sqrt(1e308 / f) overflowed to infinite copies and NaN scores with a RuntimeWarning
        ("--repeat-factor", "1e308", "repeat-factor threshold 1e+308 is not allowed"),
        ("--repeat-factor", "1000.5", "repeat-factor threshold 1000.5 is not allowed"),
        ("--repeat-factor", "-1", "repeat-factor threshold -1.0 is not allowed"),
        ("--repeat-factor", "nan", "repeat-factor threshold nan is not allowed"),
        ("--repeat-factor", "inf", "repeat-factor threshold inf is not allowed"),
        ("--class-balanced", "1", "class-balanced beta 1.0 is not allowed; expected 0 <= beta < 1"),
        ("--class-balanced", "-0.5", "class-balanced beta -0.5 is not allowed"),
        ("--class-balanced", "nan", "class-balanced beta nan is not allowed"),
    ],
)
@pytest.mark.parametrize("command", ["class-dist", "report"])
def test_bad_values_exit_2(tiny_coco, tmp_path, command, option, value, message):
    result = runner.invoke(app, [command, str(tiny_coco), f"{option}={value}", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("imbstat: error: " + message) and result.stderr.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_class_dist_json_and_merge_of_shards(write_json, tmp_path):
    path = write_json(_random_doc(np.random.default_rng(7), images=60, classes=8))
    options = ["--repeat-factor", "0.2", "--class-balanced", "0.95"]
    whole = tmp_path / "whole.json"
    printed = runner.invoke(app, ["class-dist", str(path), *options, "--json", str(whole)])
    assert printed.exit_code == 0 and "weight (β 0.95)" in printed.stdout  # the class table's column
    assert "class scores before and after" in printed.stdout
    for i in range(3):
        out = tmp_path / f"p{i}.json"
        result = runner.invoke(app, ["class-dist", str(path), *options, "--shard", f"{i}/3", "--json", str(out)])
        assert result.exit_code == 0, result.output
        assert "raw" in json.loads(out.read_text())["repeat_factor"]
    merged = tmp_path / "m.json"
    parts = [str(tmp_path / f"p{i}.json") for i in (1, 2, 0)]
    assert runner.invoke(app, ["merge", *parts, "--json", str(merged)]).exit_code == 0
    docs = [json.loads(p.read_text()) for p in (whole, merged)]
    for d in docs:
        d["dataset"].pop("load_seconds")
    assert docs[0] == docs[1]
    doc = docs[0]
    assert doc["options"]["repeat_factor"] == 0.2 and doc["options"]["class_balanced"] == 0.95
    assert set(doc["repeat_factor"]) >= {"threshold", "epoch_images", "per_class", "scores", "scores_before"}
    assert doc["scores"] == doc["repeat_factor"]["scores_before"]  # the class section's own scores
    assert set(doc["class_balanced"]) == {"beta", "per_class", "scores", "change"}


def test_report_compare_and_audit_metrics(write_json, tmp_path):
    docs = []
    for seed in (1, 2):
        ds = imbstat.load(write_json(_random_doc(np.random.default_rng(seed), 80, 6), f"d{seed}.json"), cache=False)
        results = imbstat.compute(ds, repeat_factor=0.3, class_balanced=0.9)
        written = {p.name for p in build.write_files(results, tmp_path / str(seed))}
        assert {"repeat_factor.csv", "repeat_factor_instances.png", "class_balanced_weights.png"} <= written
        docs.append(build.report_document(results))
        page = write_index(docs[-1], [], tmp_path / str(seed)).read_text()
        assert 'id="repeat_factor"' in page and 'id="class_balanced"' in page
        epoch = docs[-1]["repeat_factor"]["epoch_images"]
        assert f"one resampled epoch is {epoch:.3g} images for 80" in page
    reports = [Results.from_document(d) for d in docs]
    values = metrics(reports[0])
    assert values["repeat_factor.epoch_images"] == docs[0]["repeat_factor"]["epoch_images"]
    assert values["repeat_factor.gini"] == docs[0]["repeat_factor"]["scores"]["gini"]
    assert values["class_balanced.w1_score"] == docs[0]["class_balanced"]["scores"]["w1_score"]
    # before vs after within a report: TV of the class shares, by hand from the JSON
    rows = docs[0]["repeat_factor"]["per_class"]
    before = np.array([r["instances_before"] for r in rows], float)
    after = np.array([r["instances"] for r in rows])
    tv = 0.5 * np.abs(before / before.sum() - after / after.sum()).sum()
    assert values["repeat_factor.change.tv_distance"] == pytest.approx(tv, rel=1e-12)
    # A vs B: same category names, so TV of the expected shares over the classes
    shifts = compare(*reports).metrics()
    p, q = (np.array([r["instances"] for r in d["repeat_factor"]["per_class"]]) for d in docs)
    assert shifts["compare.repeat_factor.tv_distance"] == pytest.approx(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())
    assert compare(reports[0], reports[0]).metrics()["compare.class_balanced.w1_score"] == 0.0


def test_audit_config_names_the_remedy(tiny_coco, tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["repeat_factor.epoch_images <= 10"]\n')
    result = runner.invoke(app, ["audit", str(tiny_coco), "--config", str(config), "--quiet"])
    assert result.exit_code == 2 and "repeat_factor.epoch_images needs repeat_factor = VALUE" in result.stderr
    config.write_text('repeat_factor = 0.5\nclass_balanced = 0.9\nchecks = ["repeat_factor.epoch_images <= 10", '
                      '"class_balanced.imbalance_ratio >= 1"]\n')  # fmt: skip
    result = runner.invoke(app, ["audit", str(tiny_coco), "--config", str(config), "--quiet"])
    assert result.exit_code == 0, result.output
    config.write_text('repeat_factor = -1.0\nchecks = ["classes.gini <= 1"]\n')
    result = runner.invoke(app, ["audit", str(tiny_coco), "--config", str(config), "--quiet"])
    assert result.exit_code == 2 and f"{config} (repeat_factor): repeat-factor threshold -1.0" in result.stderr
