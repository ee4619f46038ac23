"""The library entry point for a whole analysis (imbstat.compute) and the options declared once."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import imbstat
import imbstat.anchors.presets
from imbstat.cli import app
from imbstat.data.sample import write_sample
from imbstat.report.build import report_document
from imbstat.report.document import dumps
from imbstat.stats.anchor_summary import AnchorSummary


def test_the_library_names_are_exported_from_imbstat():
    from imbstat.analysis import Results, compute
    from imbstat.anchors.options import AnchorOptions
    from imbstat.anchors.presets import Preset, load_preset
    from imbstat.data.options import LoadOptions
    from imbstat.stats import AnchorStats, ClassDistribution, LocationDistribution, ScaleDistribution

    exported = {
        "compute": compute, "Results": Results, "load_preset": load_preset, "Preset": Preset,
        "LoadOptions": LoadOptions, "AnchorOptions": AnchorOptions, "ClassDistribution": ClassDistribution,
        "ScaleDistribution": ScaleDistribution, "LocationDistribution": LocationDistribution,
        "AnchorStats": AnchorStats,
    }  # fmt: skip
    for name, thing in exported.items():
        assert getattr(imbstat, name) is thing and name in imbstat.__all__


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """12 images of the built-in sample, one box made a crowd box (counted only with --include-crowd)."""
    path = write_sample(tmp_path_factory.mktemp("sample") / "sample.json", num_images=12)
    doc = json.loads(path.read_text())
    next(a for a in doc["annotations"] if min(a["bbox"][2:]) > 1)["iscrowd"] = 1
    path.write_text(json.dumps(doc))
    return path


def test_compute_gives_the_numbers_of_the_cli_report(sample, tmp_path):
    """Options away from their defaults (crowd boxes counted, the rpn preset, batches of 5), so that each one
    must reach both paths."""
    args = ["report", str(sample), "--anchors", "--preset", "rpn", "--device-batch", "5", "--include-crowd", "-q"]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "report")])
    assert done.exit_code == 0, done.output
    cli = json.loads((tmp_path / "report" / "report.json").read_text())

    ds = imbstat.load(sample)
    anchors = imbstat.AnchorOptions(preset=imbstat.load_preset("rpn"), batch_size=5)
    results = imbstat.compute(ds, box_filter=imbstat.BoxFilter(include_crowd=True), anchors=anchors)
    assert isinstance(results.anchors, imbstat.AnchorStats) and results.anchors.preset.name == "rpn"
    assert isinstance(results.classes, imbstat.ClassDistribution)
    counted = {"include_crowd": True, "include_difficult": False, "include_group_of": True}
    assert results.options == cli["options"] == counted | {"anchors": True, "preset": "rpn", "device": "cpu",
                                                           "method": "auto"}  # fmt: skip
    assert [s.name for s, _ in results.computed()] == ["classes", "scale", "location", "anchors"]
    for section, result in results.computed():
        assert json.loads(dumps(section.to_json(result, ds))) == cli[section.name], section.name
    assert results.classes.instances.sum() == len(ds.boxes) == 74  # the crowd box counted


def test_a_computation_and_its_saved_report_read_back_are_one_container(sample):
    ds = imbstat.load(sample)
    results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="rpn"))
    doc = json.loads(dumps(report_document(results)))
    saved = imbstat.Results.from_document(doc, "report.json")
    assert results.ds is ds and saved.ds is None
    assert results.dataset == doc["dataset"] == saved.dataset  # the block derived from ds is the one written
    assert (results.dataset["images"], results.dataset["boxes"], results.dataset["crowd"]) == (12, 74, 1)
    assert saved.options == results.options == doc["options"]
    # a report holds the anchors' sums: both views give AnchorSummary, the raw AnchorStats only where computed
    assert isinstance(results.anchors, imbstat.AnchorStats) and isinstance(saved.anchors, AnchorSummary)
    assert list(results.views) == list(saved.views) == ["classes", "scale", "location", "anchors"]
    assert isinstance(results.views["anchors"], AnchorSummary) and saved.views["anchors"] is saved.anchors
    assert dumps(results.views["anchors"].scores) == dumps(saved.anchors.scores)
    assert results.views["classes"] is results.classes and results.views is results.views  # computed once


def test_compute_without_anchors_leaves_them_out(sample):
    results = imbstat.compute(imbstat.load(sample))
    assert results.anchors is None and "anchors" not in results.results
    assert results.classes.instances.sum() == 73  # the crowd box left out
    assert results.options == {"include_crowd": False, "include_difficult": False, "include_group_of": True}


def test_a_preset_file_is_read_once_per_run(sample, tmp_path, monkeypatch):
    preset = tmp_path / "small.toml"
    preset.write_text('base = "rpn"\nstrides = [16, 32, 64]\n')
    reads = []
    read_toml = imbstat.anchors.presets.read_toml
    monkeypatch.setattr(imbstat.anchors.presets, "read_toml", lambda *a: reads.append(a) or read_toml(*a))
    done = CliRunner().invoke(app, ["report", str(sample), "--anchors", "--preset", str(preset), "-q",
                                    "--out", str(tmp_path / "report")])  # fmt: skip
    assert done.exit_code == 0, done.output
    assert len(reads) == 1
    assert json.loads((tmp_path / "report" / "report.json").read_text())["options"]["preset"] == "small"


def test_load_keywords_override_the_options(sample):
    voc = imbstat.LoadOptions(format="voc", split="val")
    ds = imbstat.load(sample, "coco", options=voc, split=None)
    assert ds.format == "coco" and ds.num_images == 12
    with pytest.raises(TypeError, match="splitt"):
        imbstat.load(sample, splitt="val")


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"batch_size": 0}, "batch_size 0: expected a whole number >= 1"),
        ({"threads": 0}, "threads 0: expected a whole number >= 1"),
        ({"grid": 2.5}, "grid 2.5: expected a whole number >= 1"),
        ({"memory_mb": 0}, "memory_mb 0: expected a number of MiB in \\(0, 1048576\\]"),
        ({"method": "fast"}, "unknown method 'fast'"),
        ({"preset": "retina"}, "unknown preset"),
        # fused computes mmdetection's float64 labels: refused before any load or Triton import, on any device
        ({"preset": "torchvision-retinanet", "method": "fused"}, "--method fused computes mmdetection's float64"),
    ],
)
def test_anchor_options_are_checked_when_built(sample, bad, message):
    with pytest.raises(imbstat.ImbstatError, match=message):
        imbstat.AnchorOptions(**bad)
    with pytest.raises(imbstat.ImbstatError, match=message):  # the library's keywords go through them too
        imbstat.anchor_stats(imbstat.load(sample), **bad)
