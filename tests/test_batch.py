"""Batch-level class imbalance: the simulation against exact formulas and enumeration on small cases."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction

import numpy as np
import pytest
from helpers import coco_doc

import imbstat
from imbstat.errors import ImbstatError
from imbstat.report.document import dumps
from imbstat.scores import score_1d
from imbstat.stats import BatchDistribution, batch_distribution
from imbstat.stats.batch import Sampler, absent_probability
from imbstat.stats.batch_sums import QUANTILES, SHARE_BINS, BatchSums
from imbstat.stats.repeat_factor import repeat_factors

# Ten images: per image, the instances of each of three classes (a, b, c); image 9 has no box.
COUNTS = [(2, 0, 0), (1, 1, 0), (0, 3, 0), (1, 0, 1), (4, 0, 0), (0, 1, 1), (1, 0, 0), (0, 0, 2), (3, 1, 0), (0, 0, 0)]


def _dataset(write_json, counts=COUNTS, sizes=None) -> imbstat.Dataset:
    sizes = sizes or [(100, 80)] * len(counts)
    images = [(i + 1, w, h) for i, (w, h) in enumerate(sizes)]
    boxes = [(i + 1, c + 1, [1, 1, 5, 5], 0) for i, row in enumerate(counts) for c, n in enumerate(row)
             for _ in range(n)]  # fmt: skip
    return imbstat.load(write_json(coco_doc(images, boxes, [(1, "a"), (2, "b"), (3, "c")])))


def _exact_by_enumeration(counts, batch_size):
    """Over every B-subset of the images (each equally likely): absence, mean share, mean TV, mean W1, inversions."""
    c = np.asarray(counts, np.float64)
    p = c.sum(0) / c.sum()
    absent, shares, tvs, w1s, inverted, subsets = np.zeros(3), [], [], [], 0, 0
    for batch in itertools.combinations(range(len(c)), batch_size):
        n = c[list(batch)].sum(0)
        subsets += 1
        absent += n == 0
        inverted += n[1] > n[0]  # a has the most instances (12), b the second most (6)
        if n.sum():
            shares.append(n / n.sum())
            tvs.append(0.5 * np.abs(n / n.sum() - p).sum())
            w1s.append(score_1d(np.sort(n)[::-1]))
    return absent / subsets, np.mean(shares, 0), np.mean(tvs), np.mean(w1s), inverted / subsets, np.asarray(shares)


def test_absent_probability_is_the_hypergeometric():
    from scipy.stats import hypergeom

    k = np.array([0, 1, 3, 7, 8, 10])
    exact = [float(Fraction(math.comb(10 - kk, 3), math.comb(10, 3))) for kk in k]
    np.testing.assert_allclose(absent_probability(10, k, 3), exact, rtol=1e-12, atol=0)
    # no overflow or cancellation for N in the hundreds of thousands
    big = np.array([1, 118, 60_000, 117_000])
    np.testing.assert_allclose(absent_probability(118_287, big, 16), hypergeom.pmf(0, 118_287, big, 16), rtol=1e-10)
    assert np.isnan(absent_probability(2, np.array([1]), 3)[0])  # no full batch at all


def test_random_sampler_matches_the_exact_values(write_json):
    ds = _dataset(write_json)
    epochs, b = 3000, 3  # 3 full batches per epoch, one image left over
    r = batch_distribution(ds, batch_size=b, epochs=epochs, seed=7)
    absent, share, tv, w1, inverted, _ = _exact_by_enumeration(COUNTS, b)
    assert (r.full_batches, r.incomplete_batches) == (3 * epochs, epochs)
    # images with each class: a in 6, b in 4, c in 3 -> C(10 - K, 3) / C(10, 3)
    np.testing.assert_allclose(r.absent_probability, [math.comb(4, 3) / 120, math.comb(6, 3) / 120, 35 / 120])
    np.testing.assert_allclose(r.absent_probability, absent, rtol=1e-12)
    n = r.full_batches
    bound = 4 * np.sqrt(absent * (1 - absent) / n)  # binomial, 4 sigma
    assert np.all(np.abs(r.absent_simulated - absent) <= bound)
    # a full batch is a uniform 3-subset: every mean is that over the 120 subsets (without instances: none here)
    assert r.batches_without_instances == 0
    assert np.all(np.abs(r.share_mean - share) <= 0.02)
    assert abs(r.tv_mean - tv) <= 0.01 and abs(r.w1_mean - w1) <= 0.01
    assert r.inversion_rows.tolist() == [0, 1]  # a has 12 instances, b 6, c 4
    assert abs(r.rank_inversions / n - inverted) <= 4 * np.sqrt(inverted * (1 - inverted) / n)
    np.testing.assert_allclose(r.dataset_share, np.asarray(COUNTS).sum(0) / 22)


def test_share_quantiles_within_half_a_bin_of_numpy(write_json):
    # B = 10 = N: every epoch is the same single batch, so every share is the dataset's
    r = batch_distribution(_dataset(write_json), batch_size=10, epochs=3)
    assert r.full_batches == 3 and r.incomplete_batches == 0
    expected = np.asarray(COUNTS).sum(0) / 22
    np.testing.assert_allclose(r.share_quantiles, np.repeat(expected[:, None], len(QUANTILES), 1),
                               atol=0.5 / SHARE_BINS)  # fmt: skip
    np.testing.assert_allclose(r.share_mean, expected)
    assert r.tv_mean == pytest.approx(0.0, abs=1e-12) and r.tv_quantiles[3] == 0.0
    assert r.absent_probability.tolist() == [0.0, 0.0, 0.0] == r.absent_simulated.tolist()


def test_fixed_batching_by_hand():
    # dataset shares p = (0.5, 0.3, 0.2); class 0 most frequent, class 1 second
    acc = BatchSums(3, np.array([0.5, 0.3, 0.2]), np.array([0, 1]))
    # batch 0: counts (1, 2, 0); batch 1: none; batch 2: (3, 0, 1) -- one image per entry here
    acc.add(np.array([0, 0, 2, 2]), np.array([0, 1, 0, 2]), np.array([1, 2, 3, 1]), 3)
    # TV 0: ½ (|1/3 − .5| + |2/3 − .3| + .2) = 11/30; TV 2: ½ (.25 + .3 + .05) = 0.3
    assert acc.tv_sum == pytest.approx(11 / 30 + 0.3)
    assert acc.inversions == 1  # batch 0: 2 of class 1 > 1 of class 0
    assert (acc.full, acc.with_instances) == (3, 2)
    assert acc.w1_sum == pytest.approx(score_1d([2, 1, 0]) + score_1d([3, 1, 0]))
    np.testing.assert_allclose(acc.share_sum, [1 / 3 + 0.75, 2 / 3, 0.25])
    hist = acc.share_histograms()
    assert hist[1, 0] == 1 and hist[2, 0] == 1 and hist[0, 0] == 0  # zeros among the batches with instances
    assert hist[0, 334] == 1 and hist[0, 750] == 1  # 1/3 in (0.333, 0.334], 0.75 in (0.749, 0.75]


def test_deterministic_for_a_seed(write_json):
    ds = _dataset(write_json)
    one, two = (batch_distribution(ds, batch_size=3, epochs=20, seed=5).to_dict() for _ in range(2))
    assert one == two
    assert batch_distribution(ds, batch_size=3, epochs=20, seed=6).to_dict()["tv_distance"] != one["tv_distance"]


def test_aspect_groups_never_mix(write_json):
    # class a only on landscape images (4), class b only on the others (6, squares among them)
    counts = [(1, 0, 0)] * 4 + [(0, 2, 0)] * 6
    sizes = [(200, 100)] * 4 + [(100, 100)] * 3 + [(80, 120)] * 3
    ds = _dataset(write_json, counts, sizes)
    r = batch_distribution(ds, batch_size=2, sampler="aspect-group", epochs=50)
    # full batches: 2 landscape + 3 other per epoch; each batch holds one class only
    assert (r.full_batches, r.incomplete_batches) == (250, 0)
    np.testing.assert_allclose(r.absent_probability, [3 / 5, 2 / 5, 1.0])
    np.testing.assert_allclose(r.absent_simulated, [3 / 5, 2 / 5, 1.0])
    np.testing.assert_allclose(r.share_mean, [2 / 5, 3 / 5, 0.0])
    assert r.share_quantiles[0].tolist() == [0.0, 0.0, 0.0, 0.0, 0.9995, 0.9995, 0.9995]


def test_aspect_group_mixture_of_hypergeometrics(write_json):
    sizes = [(200, 100)] * 5 + [(100, 200)] * 5
    ds = _dataset(write_json, COUNTS, sizes)
    r = batch_distribution(ds, batch_size=2, sampler="aspect-group", epochs=2000, seed=3)
    land, port = np.asarray(COUNTS[:5]) > 0, np.asarray(COUNTS[5:]) > 0
    # two full batches per group: weights ½, ½
    expected = 0.5 * absent_probability(5, land.sum(0), 2) + 0.5 * absent_probability(5, port.sum(0), 2)
    np.testing.assert_allclose(r.absent_probability, expected, rtol=1e-12)
    bound = 4 * np.sqrt(expected * (1 - expected) / r.full_batches)
    assert np.all(np.abs(r.absent_simulated - expected) <= bound)
    assert r.incomplete_batches == 2 * 2000


def test_repeat_factors_and_rounding(write_json):
    ds = _dataset(write_json)
    # image frequencies f = (6, 4, 3) / 10; T = 0.9: r_c = sqrt(1.5), sqrt(2.25) = 1.5, sqrt(3); r_i = max
    factors = repeat_factors(ds, 0.9)[1]  # batch-dist's sampler uses class-dist's factors
    ra, rb, rc = math.sqrt(1.5), 1.5, math.sqrt(3)
    expected = [ra, rb, rb, rc, ra, rc, ra, rc, rb, 1.0]  # the last image has no box
    np.testing.assert_allclose(factors, expected)
    epochs = 1500
    r = batch_distribution(ds, batch_size=2, sampler="repeat-factor:0.9", epochs=epochs, seed=2)
    # images per epoch: Σ r_i in expectation (stochastic rounding); full batches take all but an odd one
    images = 2 * r.full_batches + r.incomplete_batches
    assert abs(images / epochs - sum(expected)) < 0.05
    bound = 4 * np.sqrt(r.absent_probability * (1 - r.absent_probability) / r.full_batches)
    assert np.all(np.abs(r.absent_simulated - r.absent_probability) <= bound)


def test_merge_and_round_trip(write_json):
    ds = _dataset(write_json)
    r = batch_distribution(ds, batch_size=3, epochs=4)
    empty = BatchDistribution.empty(ds, batch_size=3)
    assert BatchDistribution.merge([r]) is r and BatchDistribution.merge([empty, r]) is r
    with pytest.raises(ImbstatError, match="cannot merge batch distributions of shards"):
        BatchDistribution.merge([r, r])
    for result in (r, empty, batch_distribution(ds, batch_size=20, epochs=2)):  # the last: no full batch
        d = json.loads(dumps(result.to_dict()))  # NaN -> null, as written
        assert json.loads(dumps(BatchDistribution.from_dict(d).to_dict())) == d
    assert json.loads(dumps(empty.to_dict()))["scores"] == {"w1_score": None, "tv_distance": None,
                                                            "rank_inversions": None}  # fmt: skip


@pytest.mark.parametrize("text", ["uniform", "repeat-factor", "repeat-factor:0", "repeat-factor:x", "random:1",
                                  "repeat-factor:nan", "repeat-factor:2"])  # fmt: skip
def test_bad_sampler(text):
    with pytest.raises(ImbstatError, match="--sampler"):
        Sampler.parse(text)


def test_sampler_text():
    assert str(Sampler.parse("repeat-factor:0.001")) == "repeat-factor:0.001"
    assert Sampler.parse("aspect-group") == Sampler("aspect-group")


def test_shard_refused(write_json):
    ds = _dataset(write_json).take_shard(0, 2)
    with pytest.raises(ImbstatError, match="without --shard"):
        batch_distribution(ds, batch_size=2)


# --- the command, the report section, compare ------------------------------------------------------------------------


def _run(*args):
    from typer.testing import CliRunner

    from imbstat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_batch_dist_json(write_json, tmp_path):
    path = write_json(coco_doc([(i + 1, 100, 80) for i in range(10)],
                               [(i + 1, c + 1, [1, 1, 5, 5], 0) for i, row in enumerate(COUNTS)
                                for c, n in enumerate(row) for _ in range(n)],
                               [(1, "a"), (2, "b"), (3, "c")]))  # fmt: skip
    result = _run("batch-dist", path, "--batch-size", 3, "--epochs", 5, "--seed", 1, "--json", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "batch-dist"
    assert doc["options"] | {} == {"include_crowd": False, "include_difficult": False, "include_group_of": True,
                                   "batch_size": 3, "sampler": "random", "epochs": 5, "seed": 1}  # fmt: skip
    assert (doc["batch_size"], doc["sampler"], doc["epochs"], doc["seed"]) == (3, "random", 5, 1)
    assert doc["batches"] == {"full": 15, "incomplete": 5, "without_instances": 0}
    row = doc["per_class"][0]
    assert set(row) == {"category_id", "name", "dataset_share", "absent_probability", "absent_simulated",
                        "share_mean", "share_quantiles"}  # fmt: skip
    assert row["absent_probability"] == pytest.approx(4 / 120)  # C(4, 3) / C(10, 3)
    assert doc["rank_inversions"]["category_ids"] == [1, 2]
    assert set(doc["scores"]) == {"w1_score", "tv_distance", "rank_inversions"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "--batch-size"),
        (["--batch-size", "2", "--sampler", "uniform"], "--sampler 'uniform': expected random"),
        (["--batch-size", "2", "--epochs", "0"], "--epochs"),
    ],
)
def test_batch_dist_bad_options_exit_2(tiny_coco, args, message):
    result = _run("batch-dist", tiny_coco, *args)
    assert result.exit_code == 2 and message in result.output


def test_report_batch_section_and_compare(tiny_coco, tmp_path):
    out = tmp_path / "report"
    # --batch-size (training) beside --device-batch (anchor labelling, so with --anchors)
    result = _run("report", tiny_coco, "--batch-size", 2, "--epochs", 3, "--anchors", "--device-batch", 4, "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["batch"]["batch_size"] == 2 and doc["options"]["batch"]["epochs"] == 3
    assert {"batch_absent.png", "batch_tv_distance.png", "batch_classes.csv"} <= {p.name for p in out.iterdir()}
    assert "Batch-level class imbalance" in (out / "index.html").read_text()
    shifted = imbstat.compare(doc, doc).metrics()
    assert shifted["compare.batch.tv_distance"] == 0.0 and shifted["compare.batch.w1_score"] == 0.0
    from imbstat.analysis import compute

    assert "batch" not in compute(imbstat.load(tiny_coco)).results  # optional: only with the batch size


def test_anchor_iou_device_batch(tiny_coco):
    new = _run("anchor-iou", tiny_coco, "--device-batch", 2, "--quiet", "--json", "-")
    assert new.exit_code == 0, new.output
    assert json.loads(new.stdout)["options"]["batch_size"] == 2  # the JSON keeps the library's field name
    # --batch-size is the training batch (batch-dist, report); anchor-iou has none, so it is refused, not misread
    old = _run("anchor-iou", tiny_coco, "--batch-size", 2, "--quiet")
    assert old.exit_code == 2 and "--batch-size" in old.output


def test_audit_batch_metrics(tiny_coco, tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text('batch_size = 2\nepochs = 3\nchecks = ["batch.tv_distance <= 1", "batch.w1_score > 1"]\n')
    result = _run("audit", tiny_coco, "--config", config, "--quiet", "--json", "-")
    assert result.exit_code == 1, result.output  # the second check fails: a score is at most 1
    checks = json.loads(result.stdout)["checks"]
    expected = batch_distribution(imbstat.load(tiny_coco), batch_size=2, epochs=3).scores
    assert [c["value"] for c in checks] == [expected["tv_distance"], expected["w1_score"]]
    assert [c["passed"] for c in checks] == [True, False]
    config.write_text('checks = ["batch.tv_distance <= 1"]\n')
    missing = _run("audit", tiny_coco, "--config", config, "--quiet")
    assert missing.exit_code == 2 and "expected batch_size = B" in missing.output


@pytest.mark.parametrize("sampler", ["random", "aspect-group", "repeat-factor:0.5"])
def test_no_boxes_and_one_class(write_json, sampler):
    # three images without boxes: every full batch is empty, every class absent, the scores undefined
    none = batch_distribution(_dataset(write_json, [(0, 0, 0)] * 3), batch_size=2, sampler=sampler, epochs=3)
    assert (none.full_batches, none.incomplete_batches, none.batches_without_instances) == (3, 3, 3)
    assert none.absent_probability.tolist() == [1.0, 1.0, 1.0] and np.isnan(none.share_mean).all()
    assert all(math.isnan(v) for v in none.scores.values())
    # one class with instances: each batch with instances is a point mass (score 0, TV 0), no rank to invert
    one = batch_distribution(_dataset(write_json, [(1, 0, 0), (2, 0, 0), (0, 0, 0), (0, 0, 0)]), batch_size=2,
                             sampler=sampler, epochs=4)  # fmt: skip
    assert (one.w1_mean, one.tv_mean, one.inversion_rows.size) == (score_1d([1, 0, 0]), 0.0, 0)
    # 2 of the 4 images hold it, all in one aspect group, repeat factors max(1, sqrt(0.5 / 0.5)) = 1: C(2, 2) / C(4, 2)
    assert one.absent_probability[0] == pytest.approx(1 / 6)


def test_batch_options_are_checked_where_built(tmp_path):
    """BatchOptions holds the one check of the batch section's options (library, Run, audit config)."""
    from imbstat.sections.spec import Run
    from imbstat.stats.batch import MAX_EPOCHS, BatchOptions

    options = BatchOptions(4, "REPEAT-FACTOR:0.50".lower(), epochs=MAX_EPOCHS, seed=0)
    assert options.sampler == Sampler("repeat-factor", 0.5)
    assert options.to_dict() == {"batch_size": 4, "sampler": "repeat-factor:0.5", "epochs": 10_000, "seed": 0}
    assert Run(batch={"batch_size": 4}).batch == BatchOptions(4, "random", 10, 0)  # a dict stands for one
    bad = [({"batch_size": 0}, "batch_size"), ({"batch_size": True}, "batch_size"), ({"batch_size": 2, "seed": -1},
           "seed"), ({"batch_size": 2, "epochs": MAX_EPOCHS + 1}, "epochs"), ({"batch_size": 2, "sampler": "rfs"},
           "sampler")]  # fmt: skip
    for fields, position in bad:
        with pytest.raises(ImbstatError) as info:
            Run(batch=fields)  # when the run is built, not when the section computes
        assert info.value.position == position and "expected" in str(info.value)
    # an audit config's error names its file and the key at fault (a negative seed was reported at batch_size)
    config = tmp_path / "audit.toml"
    config.write_text('batch_size = 2\nseed = -1\nchecks = ["batch.tv_distance <= 1"]\n')
    with pytest.raises(ImbstatError) as info:
        from imbstat.report.audit import load_config

        load_config(config)
    assert str(info.value) == f"{config} (seed): seed -1: expected a whole number >= 0"
