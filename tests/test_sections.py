"""The section registry (sections/__init__.py) against what the program actually writes."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import imbstat.cli.report
from imbstat import Results
from imbstat.analysis import compute
from imbstat.anchors.options import AnchorOptions
from imbstat.cli import app
from imbstat.data import Dataset, load
from imbstat.data.sample import write_sample
from imbstat.report.build import report_document, write_files
from imbstat.report.compare import compare
from imbstat.report.merge import MERGEABLE
from imbstat.report.metrics import metrics
from imbstat.report.taxonomy import TAXONOMY
from imbstat.sections import BY_COMMAND, SECTIONS, metric_table
from imbstat.stats.eval import EvalOptions


@pytest.fixture(scope="module")
def sample_results(tmp_path_factory):
    """The sample with every section, anchors (with a sampler), remedies and batches (image sizes known: every
    metric has a value)."""
    path = write_sample(tmp_path_factory.mktemp("sample") / "sample.json")
    ds = load(path, format="coco")
    return compute(
        ds,
        anchors=AnchorOptions(sampler="random:256:0.5"),  # the sampling stage's metrics too
        repeat_factor=0.01,
        class_balanced=0.99,
        batch={"batch_size": 4, "epochs": 2},
        evaluation=EvalOptions(detections_of(ds), train=ds),
        losses=True,
    )


def detections_of(ds: Dataset) -> list[dict]:
    """Every GT box as a detection, shifted by a pixel and every third one of another class: AP between 0 and 1."""
    b = ds.boxes
    xywh = np.column_stack([b.xyxy[:, :2] + 1, b.xyxy[:, 2:] - b.xyxy[:, :2]])
    cats = ds.categories.category_id
    return [
        {"image_id": ds.images.image_id[i].item(), "category_id": cats[(k + (n % 3 == 0)) % len(cats)].item(),
         "bbox": box.tolist(), "score": 1.0 / (1 + n)}
        for n, (i, k, box) in enumerate(zip(b.image, b.category, xywh, strict=True))
    ]  # fmt: skip


def test_registry_names_every_metric_a_report_and_a_comparison_have(sample_results):
    doc = report_document(sample_results)
    names = set(metric_table())
    assert set(metrics(Results.from_document(doc))) == {n for n in names if not n.startswith("compare.")}
    assert set(compare(doc, doc).metrics()) == {n for n in names if n.startswith("compare.")}
    assert [s.name for s in SECTIONS] == [k for k in doc if k in {s.name for s in SECTIONS}]  # report order


def test_taxonomy_names_registry_metrics():
    names = metric_table()
    for problem in TAXONOMY:
        for metric in [problem.metric, *(name for _, name in problem.extras)]:
            assert metric is None or metric in names


def test_registry_lists_every_figure_and_command(sample_results, tmp_path):
    written = {p.name for p in write_files(sample_results, tmp_path) if p.suffix == ".png"}
    assert written == {file for s in SECTIONS for file, _ in s.figures}
    assert set(MERGEABLE) == {*BY_COMMAND, "report"}
    assert set(sample_results.results) == {s.name for s in SECTIONS}
    assert sample_results.anchors is sample_results.results["anchors"]


def test_audit_rejects_an_unknown_metric_before_computing(tiny_coco, tmp_path, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("computed before the config was checked")

    monkeypatch.setattr(imbstat.cli.report, "compute", never)
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["classes.gini <= 0.9", "anchors.fg_bg <= 0.5"]\n')
    result = CliRunner().invoke(app, ["audit", str(tiny_coco), "--config", str(config), "--quiet"])
    assert result.exit_code == 2, result.output
    head = f"imbstat: error: {config} (checks[1]): unknown metric 'anchors.fg_bg'; valid names: dataset.images, "
    assert result.stderr.startswith(head) and result.stderr.count("\n") == 1
    assert "anchors.fg_bg_ratio" in result.stderr and "compare.classes.tv_distance" in result.stderr
