"""Comparing two datasets: shift scores against scipy and hand-worked cases, classes gained and lost, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import TINY_ANNOTATIONS, TINY_CATEGORIES, TINY_IMAGES, coco_doc
from scipy.stats import wasserstein_distance
from typer.testing import CliRunner

from imbstat.analysis import compute
from imbstat.cli import app
from imbstat.data import load
from imbstat.errors import ImbstatError
from imbstat.report.build import report_document
from imbstat.report.compare import class_union, compare
from imbstat.report.document import dumps
from imbstat.report.reading import read_report
from imbstat.scores import score_1d, score_2d, shift_1d, shift_2d, w1_2d_between, w1_between
from imbstat.stats import location_distribution

runner = CliRunner()


def report_of(path, anchors: bool = False) -> dict:
    """The report document as saved to disk (NaN as null, plain lists)."""
    return json.loads(dumps(report_document(compute(load(path), anchors=anchors))))


# --- scores --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_shift_1d_equals_scipy(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 40))
    a, b = rng.integers(0, 50, size=k), rng.integers(0, 50, size=k)
    a[0] += 1
    b[-1] += 1
    t = np.linspace(0, 1, k)  # t_i = i / (K - 1)
    expected = wasserstein_distance(t, t, a, b)  # scipy
    assert w1_between(a, b) == pytest.approx(expected, abs=1e-12)
    assert shift_1d(a, b) == pytest.approx(2 * expected, abs=1e-12)


def test_shift_1d_extremes():
    assert shift_1d([3, 0, 0], [0, 0, 5]) == pytest.approx(2.0)  # point masses at opposite ends: W1 = 1
    assert shift_1d([1, 2, 3], [2, 4, 6]) == 0.0  # same shape, other total
    assert np.isnan(shift_1d([0, 0], [1, 1]))  # one side empty
    assert shift_1d([4], [9]) == 0.0  # one bin


def test_shift_against_uniform_is_the_imbalance_score():
    rng = np.random.default_rng(7)
    counts = rng.integers(0, 20, size=12)
    assert shift_1d(counts, np.ones(12)) == pytest.approx(score_1d(counts), abs=1e-12)
    grid = rng.integers(0, 5, size=(6, 6))
    assert shift_2d(grid, np.ones((6, 6))) == pytest.approx(score_2d(grid), abs=1e-9)


@pytest.mark.parametrize(("g", "r", "c", "k"), [(8, 3, 1, 4), (5, 0, 0, 4), (16, 15, 2, 1)])
def test_2d_point_mass_moved_along_a_row(g, r, c, k):
    a, b = np.zeros((g, g)), np.zeros((g, g))
    a[r, c], b[r, c + k] = 2.0, 5.0
    # by hand: every unit of mass moves k cells of width 1/G
    assert w1_2d_between(a, b) == pytest.approx(k / g, abs=1e-12)
    # the corner normaliser, by a naive double loop: mean distance from cell (0, 0) to every cell centre
    centres = [((j + 0.5) / g, (i + 0.5) / g) for i in range(g) for j in range(g)]
    corner_w1 = sum(math.dist(centres[0], p) for p in centres) / len(centres)
    assert shift_2d(a, b) == pytest.approx((k / g) / corner_w1, abs=1e-12)


def test_2d_identical_and_empty():
    m = np.arange(16, dtype=float).reshape(4, 4)
    assert w1_2d_between(m, 3 * m) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(shift_2d(np.zeros((4, 4)), m))


# --- documents -----------------------------------------------------------------------------------


def all_shifts(doc: dict) -> dict[str, float]:
    """The shifts of a comparison document (as ``imbstat compare --json`` writes it), by metric name."""
    return {f"compare.{s}.{k}": v for s in ("classes", "scale", "location", "anchors") for k, v in
            doc.get(s, {}).get("scores", {}).items()}  # fmt: skip


def test_identical_reports_shift_nothing(tiny_coco):
    doc = report_of(tiny_coco, anchors=True)
    comparison = compare(doc, doc)
    compared = comparison.to_dict()
    assert compared["command"] == "compare" and compared["a"] == compared["b"] == doc["dataset"]
    assert set(compared) >= {"classes", "scale", "location", "anchors"}
    shifts = all_shifts(compared)
    assert set(comparison.metrics()) == set(shifts) | {"compare.location.w1_score"}
    assert len(shifts) >= 20  # every section scored: 6 class, 6 scale, 3+1 location, 8 anchor numbers
    assert shifts == pytest.approx(dict.fromkeys(shifts, 0.0), abs=1e-12)
    classes = compared["classes"]
    assert (classes["gained"], classes["lost"], classes["shifts"], compared["skipped"]) == ([], [], [], {})
    assert classes["scores_a"] == doc["classes"]["scores"]


def test_objects_per_image_padded_against_scipy(write_json):
    images = [(1, 100, 100), (2, 100, 100), (3, 100, 100)]
    box = [0, 0, 10, 10]
    # A: 0, 1 and 3 boxes per image -> counts over 0..3 = [1, 1, 0, 1]; B: 2, 2, 1 -> over 0..2 = [0, 1, 2]
    a = coco_doc(images, [(1 + (i > 0) + (i > 0), 1, box, 0) for i in range(4)], [(1, "cat")])
    b = coco_doc(images, [(1, 1, box, 0), (1, 1, box, 0), (2, 1, box, 0), (2, 1, box, 0), (3, 1, box, 0)], [(1, "cat")])
    doc_a, doc_b = report_of(write_json(a, "a.json")), report_of(write_json(b, "b.json"))
    assert doc_a["classes"]["objects_per_image"]["counts"] == [1, 1, 0, 1]
    assert doc_b["classes"]["objects_per_image"]["counts"] == [0, 1, 2]
    t = np.linspace(0, 1, 4)  # the longer histogram's 4 bins; B padded with an empty bin for 3 boxes
    expected = 2 * wasserstein_distance(t, t, [1, 1, 0, 1], [0, 1, 2, 0])  # scipy
    scores = compare(doc_a, doc_b).sections["classes"]["scores"]
    assert scores["objects_per_image"] == pytest.approx(expected, abs=1e-12)


def test_classes_gained_lost_and_shifts(write_json):
    images = [(1, 100, 100), (2, 100, 100)]
    box = [0, 0, 10, 10]
    # A: cat 2, dog 1, emu 0.  B (other ids): cat 1, dog 0, fox 2.
    a = coco_doc(images, [(1, 1, box, 0), (2, 1, box, 0), (2, 2, box, 0)], [(1, "cat"), (2, "dog"), (3, "emu")])
    b = coco_doc(images, [(1, 5, box, 0), (1, 9, box, 0), (2, 9, box, 0)], [(5, "cat"), (2, "dog"), (9, "fox")])
    compared = compare(report_of(write_json(a, "a.json")), report_of(write_json(b, "b.json"))).to_dict()
    classes = compared["classes"]
    assert classes["matched_by"] == "name"
    assert classes["gained"] == [{"name": "fox", "category_id": 9, "instances": 2}]
    assert classes["lost"] == [{"name": "dog", "category_id": 2, "instances": 1}]  # emu has none on either side
    # union cat, dog, emu, fox: p_A = (2/3, 1/3, 0, 0), p_B = (1/3, 0, 0, 2/3)
    assert classes["scores"]["tv_distance"] == pytest.approx(0.5 * (1 / 3 + 1 / 3 + 0 + 2 / 3))
    # rank-frequency over the 4 classes is (2, 1, 0, 0) on both sides: the tail has the same shape
    t = np.linspace(0, 1, 4)
    assert classes["scores"]["w1_score"] == pytest.approx(2 * wasserstein_distance(t, t, [2, 1, 0, 0], [2, 1, 0, 0]))
    assert (classes["scores"]["gained"], classes["scores"]["lost"]) == (1, 1)
    top = classes["shifts"]
    assert [r["name"] for r in top] == ["fox", "cat", "dog"]  # |change| 2/3, then 1/3 twice in union order
    assert top[1] | {"share_a": 0, "share_b": 0, "change": 0} == {
        "name": "cat",
        "category_id_a": 1,
        "category_id_b": 5,
        "instances_a": 2,
        "instances_b": 1,
        "share_a": 0,
        "share_b": 0,
        "change": 0,
    }
    assert top[1]["change"] == pytest.approx(1 / 3 - 2 / 3)


def test_classes_match_by_id_when_names_repeat():
    rows_a = [{"category_id": 1, "name": "x", "instances": 3}, {"category_id": 2, "name": "x", "instances": 1}]
    rows_b = [{"category_id": 2, "name": "y", "instances": 4}]
    frame, by = class_union(rows_a, rows_b)
    assert by == "category_id"
    assert frame["instances_a"].tolist() == [3, 1] and frame["instances_b"].tolist() == [0, 4]
    assert frame["category_id_b"].tolist() == [None, 2]


def test_different_bins_and_missing_sections_are_skipped(tiny_coco):
    doc = report_of(tiny_coco)
    other = json.loads(json.dumps(doc))
    other["scale"]["relative_width"] = {"edges": [0.0, 0.5, 1.0], "counts": [2, 1]}
    other["scale"]["aspect_ratio"] = None
    other["location"] = json.loads(dumps(location_distribution(load(tiny_coco), grid=4).to_dict(per_class=True)))
    other["anchors"] = report_of(tiny_coco, anchors=True)["anchors"]
    compared = compare(doc, other).to_dict()
    assert compared["skipped"] == {
        "scale.relative_width": "different bins: 50 in A, 2 in B",
        "scale.aspect_ratio": "only in A",
        "location.centers": "different grids: 32 in A, 4 in B",
        "anchors": "only in B",
    }
    assert "relative_width" not in compared["scale"]["scores"] and "anchors" not in compared
    assert compared["scale"]["scores"]["relative_area"] == 0.0


# --- files and the CLI ---------------------------------------------------------------------------


def test_read_report(tiny_coco, tmp_path):
    assert read_report(tiny_coco) is None  # a COCO file: no imbstat_version
    saved = tmp_path / "report.json"
    saved.write_text(dumps(report_document(compute(load(tiny_coco)))))
    assert read_report(saved)["command"] == "report"
    other = tmp_path / "scale.json"
    other.write_text(json.dumps({"imbstat_version": "0", "command": "scale"}))
    with pytest.raises(ImbstatError, match="an imbstat 'scale' document, not a report"):
        read_report(other)


def test_cli_dataset_against_its_saved_report(tiny_coco, tmp_path):
    saved = tmp_path / "report.json"
    saved.write_text(dumps(report_document(compute(load(tiny_coco)))))
    result = runner.invoke(app, ["compare", str(tiny_coco), str(saved), "--json", "-"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "compare" and doc["b"]["path"] == str(tiny_coco)
    shifts = all_shifts(doc)
    assert shifts and shifts == pytest.approx(dict.fromkeys(shifts, 0.0), abs=1e-12)


def test_cli_tables_and_files(tiny_coco, write_json, tmp_path):
    other = write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:2], TINY_CATEGORIES), "other.json")
    out = tmp_path / "out"
    result = runner.invoke(app, ["compare", str(tiny_coco), str(other), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "classes.tv_distance" in result.stdout and "dog" in result.stdout  # dog lost in B
    names = {"compare_scores.csv", "compare_class_shifts.csv"}
    names |= {"compare_classes.png", "compare_scale.png", "compare_location.png"}
    assert {p.name for p in out.iterdir()} == names


def test_cli_bad_path_exits_2(tiny_coco, tmp_path):
    missing = tmp_path / "missing.json"
    result = runner.invoke(app, ["compare", str(tiny_coco), str(missing)])
    assert result.exit_code == 2
    expected = "no such file or directory; expected an annotation file or folder"
    assert result.stderr == f"imbstat: error: {missing}: {expected}\n"
    report = tmp_path / "info.json"
    report.write_text(json.dumps({"imbstat_version": "0", "command": "info"}))
    result = runner.invoke(app, ["compare", str(report), str(tiny_coco)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"imbstat: error: {report}: an imbstat 'info' document, not a report")
