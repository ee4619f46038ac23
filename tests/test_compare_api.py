"""``imbstat.compare`` as a library entry point, and reading a saved report back into result objects."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat import Results
from imbstat.analysis import compute
from imbstat.cli import app
from imbstat.data import load
from imbstat.data.sample import write_sample
from imbstat.errors import ImbstatError
from imbstat.report.build import report_document
from imbstat.report.document import dumps
from imbstat.report.metrics import metrics
from imbstat.sections import metric_table, section_of
from imbstat.stats import LocationDistribution, location_distribution
from imbstat.stats.anchor_summary import AnchorSummary

runner = CliRunner()


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    """Two samples computed with anchors, and their reports saved as ``imbstat report`` writes them."""
    folder = tmp_path_factory.mktemp("sides")
    found = []
    for name, seed in (("a", 1), ("b", 2)):
        results = compute(load(write_sample(folder / f"{name}.json", num_images=30, seed=seed)), anchors=True)
        saved = folder / f"{name}-report.json"
        saved.write_text(dumps(report_document(results)))
        found.append((results, saved))
    return found


def saved_doc(path) -> dict:
    return json.loads(path.read_text())


def same(x: dict[str, float], y: dict[str, float]) -> bool:
    """Equal dicts of numbers, NaN equal to NaN."""
    return x.keys() == y.keys() and all(x[k] == y[k] or (math.isnan(x[k]) and math.isnan(y[k])) for k in x)


# --- the library entry point -----------------------------------------------------------------------------------------


def test_results_and_their_saved_reports_compare_alike(sides):
    (res_a, path_a), (res_b, path_b) = sides
    from_objects = imbstat.compare(res_a, res_b)
    from_files = imbstat.compare(path_a, path_b)
    assert dumps(from_objects.to_dict()) == dumps(from_files.to_dict())  # no JSON round trip for computed results
    assert dumps(imbstat.compare(saved_doc(path_a), res_b).to_dict()) == dumps(from_files.to_dict())
    assert from_files.skipped == {} and set(from_files.sections) == {"classes", "scale", "location", "anchors"}
    frame = from_files.to_frame()
    assert len(frame) == sum(len(s["scores"]) for s in from_files.sections.values())
    assert frame.set_index(["section", "distribution"]).loc[("classes", "tv_distance"), "shift"] == pytest.approx(
        from_files.sections["classes"]["scores"]["tv_distance"]
    )
    shifts = from_files.metrics()
    assert shifts["compare.location.w1_score"] == shifts["compare.location.xy"] > 0


def test_computed_results_by_hand(write_json):
    images = [(1, 100, 100), (2, 100, 100)]
    box = [0, 0, 10, 10]
    # A: cat 2, dog 1, emu 0.  B: cat 1, fox 2.  Union cat, dog, emu, fox.
    a = coco_doc(images, [(1, 1, box, 0), (2, 1, box, 0), (2, 2, box, 0)], [(1, "cat"), (2, "dog"), (3, "emu")])
    b = coco_doc(images, [(1, 5, box, 0), (1, 9, box, 0), (2, 9, box, 0)], [(5, "cat"), (9, "fox")])
    comparison = imbstat.compare(compute(load(write_json(a, "a.json"))), compute(load(write_json(b, "b.json"))))
    scores = comparison.sections["classes"]["scores"]
    # p_A = (2/3, 1/3, 0, 0), p_B = (1/3, 0, 0, 2/3)
    assert scores["tv_distance"] == pytest.approx(0.5 * (1 / 3 + 1 / 3 + 0 + 2 / 3))
    assert (scores["gained"], scores["lost"]) == (1, 1)
    # every box is at the same place on both sides: the centre maps did not move
    assert comparison.metrics()["compare.location.xy"] == 0.0
    shifts = comparison.class_shifts()
    assert shifts["name"].tolist()[:1] == ["fox"] and shifts["instances_b"].tolist()[0] == 2


def test_sides_that_are_not_reports(tiny_coco, sides):
    with pytest.raises(ImbstatError, match="not a saved imbstat report"):
        imbstat.compare(tiny_coco, sides[0][1])  # a dataset: compute it first
    with pytest.raises(ImbstatError, match="side B is of type int"):
        imbstat.compare(sides[0][1], 3)
    with pytest.raises(ImbstatError, match="side A is not a report document"):
        imbstat.compare({"command": "scale"}, sides[0][1])


# --- reading a report back -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "field"), [("anchors", "overlap"), ("scale", "fpn_levels"), ("classes", "objects_per_image")]
)
def test_a_missing_field_is_an_error_naming_it(sides, section, field):
    doc = saved_doc(sides[0][1])
    del doc[section][field]
    # before: a KeyError deep in compare, or (scale.fpn_levels) a metric that silently disappeared
    with pytest.raises(ImbstatError, match=f"the {section} section has no field '{field}'"):
        Results.from_document(doc)


def test_cli_compare_of_a_report_missing_a_field_exits_2(sides, tmp_path):
    doc = saved_doc(sides[0][1])
    del doc["anchors"]["per_gt"]["all"]
    broken = tmp_path / "report.json"
    broken.write_text(json.dumps(doc))
    result = runner.invoke(app, ["compare", str(broken), str(sides[1][1]), "--json", "-"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"imbstat: error: {broken} (anchors): the anchors section has no field 'all'")
    assert result.stderr.count("\n") == 1


def test_a_section_that_is_not_an_object(sides):
    doc = saved_doc(sides[0][1])
    doc["anchors"] = [1, 2]
    with pytest.raises(ImbstatError, match="the anchors section is not an object"):
        Results.from_document(doc)
    del doc["location"]
    with pytest.raises(ImbstatError, match="a report without a location section"):
        Results.from_document(doc)


def test_metrics_of_results_and_of_their_saved_report_agree(sides):
    results, path = sides[0]
    now, saved = metrics(results), metrics(Results.from_document(saved_doc(path)))
    computed = {n for n in metric_table() if (section_of(n) is None or section_of(n).name in results.results)}
    assert not results.anchors.preset.sampler  # retinanet: no sampling stage, so no anchors.sampled.* metrics
    expected = {n for n in computed if not n.startswith(("compare.", "anchors.sampled."))}
    assert same(now, saved) and set(now) == expected
    anchors = results.anchors
    assert now["anchors.per_gt.gts"] == anchors.gt_count.sum()
    assert now["anchors.foreground_mean"] == pytest.approx(anchors.per_image[:, 0].mean())
    assert now["location.w1_score"] == now["location.xy"] == results.location.scores["xy"]


def test_anchor_summary_of_a_result_is_its_saved_section(sides):
    results, path = sides[0]
    stats, doc = results.anchors, saved_doc(path)
    now, back = AnchorSummary.of(stats), AnchorSummary.from_dict(doc["anchors"])
    assert (
        now.totals
        == back.totals
        == {
            "total": int(stats.per_image.sum()),
            "foreground": int(stats.per_image[:, 0].sum()),
            "background": int(stats.per_image[:, 1].sum()),
            "ignored": int(stats.per_image[:, 2].sum()),
        }
    )
    np.testing.assert_array_equal(back.overlap_foreground, stats.overlap_foreground / stats.num_images)
    np.testing.assert_array_equal(back.relative_center, stats.relative_center)
    assert same(now.scores, back.scores) and same(back.scores, stats.scores)
    assert now.preset == back.preset == stats.preset
    # a shard's section, with raw counts, reads the same way
    raw = AnchorSummary.from_dict(json.loads(dumps(stats.to_dict(raw=True))))
    assert raw.per_gt.keys() == back.per_gt.keys() == {"small", "medium", "large", "all"}
    assert all(same(raw.per_gt[k], back.per_gt[k]) for k in back.per_gt)
    assert back.per_gt["all"]["gts"] == stats.gt_count.sum()
    assert back.per_gt["small"]["gts"] == stats.gt_count[:, 0].sum()  # column 0: COCO small


def test_location_read_back_keeps_the_scores_it_wrote(tiny_coco):
    result = location_distribution(load(tiny_coco), grid=8)
    back = LocationDistribution.from_dict(json.loads(dumps(result.to_dict(per_class=True))))
    solved = LocationDistribution(back.category_id, back.name, back.per_class)  # nothing primed: solved again
    assert back.scores == solved.scores == result.scores
    assert back.present_scores == solved.present_scores == result.present_scores
    assert list(result.present_scores) == [0, 1]  # cat and dog have boxes, emu none
