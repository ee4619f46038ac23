"""Audit configs, checks, JUnit XML and Markdown."""

from __future__ import annotations

import math
from xml.etree import ElementTree

import pytest

from imbstat import ImbstatError
from imbstat.report.audit import AuditConfig, Check, junit_xml, load_config, markdown, run_checks


def test_config_and_checks(tmp_path):
    path = tmp_path / "audit.toml"
    path.write_text('preset = "rpn"\nchecks = ["classes.imbalance_ratio <= 200", "anchors.fg_bg_ratio >= 1e-3"]\n')
    config = load_config(path)
    assert config.checks == (Check("classes.imbalance_ratio", "<=", 200.0), Check("anchors.fg_bg_ratio", ">=", 0.001))
    assert config.needs_anchors and not config.needs_baseline and config.run.anchors.preset.name == "rpn"
    results = run_checks(config, {"classes.imbalance_ratio": 250.0, "anchors.fg_bg_ratio": 0.002, "other": 1.0})
    assert [r.passed for r in results] == [False, True]  # 250 > 200; 0.002 >= 0.001


def test_boundaries_and_nan():
    config = AuditConfig((Check("scale.x", "<=", 0.5), Check("scale.y", "<", 0.5), Check("scale.z", "==", 1.0)))
    results = run_checks(config, {"scale.x": 0.5, "scale.y": 0.5, "scale.z": math.nan})
    assert [r.passed for r in results] == [True, False, False]  # <= holds at the limit, < does not; NaN fails


def test_unknown_metric_lists_valid_names():
    config = AuditConfig((Check("classes.gini_index", "<=", 0.5),))
    with pytest.raises(ImbstatError) as info:
        run_checks(config, {"classes.gini": 0.3, "classes.w1_score": 0.2}, "audit.toml")
    assert str(info.value) == (
        "audit.toml (checks): unknown metric 'classes.gini_index'; valid names: classes.gini, classes.w1_score"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks = []\n", "(checks): no checks"),
        ('checks = ["classes.gini < high"]\n', "(checks[0]): expected 'METRIC OP LIMIT'"),
        ('checks = ["gini <= 0.5"]\n', "(checks[0]): unknown metric 'gini'; valid names: dataset.images, "),
        ('checks = ["classes.gini_index <= 0.5"]\n', "(checks[0]): unknown metric 'classes.gini_index'; valid"),
        ('check = ["classes.gini <= 0.5"]\n', "unknown keys check; expected some of"),
        ('anchors = "yes"\nchecks = ["classes.gini <= 0.5"]\n', "(anchors): expected bool, got str"),
        ("checks = [\n", "malformed TOML"),
    ],
)
def test_bad_configs(tmp_path, text, message):
    path = tmp_path / "audit.toml"
    path.write_text(text)
    with pytest.raises(ImbstatError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value)


def test_junit_and_markdown():
    config = AuditConfig((Check("classes.gini", "<=", 0.5), Check("location.w1_score", "<=", 0.35)))
    results = run_checks(config, {"classes.gini": 0.6, "location.w1_score": 0.1})
    root = ElementTree.fromstring(junit_xml(results))
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["classes.gini <= 0.5", "location.w1_score <= 0.35"]
    assert cases[0].find("failure").get("message") == "classes.gini = 0.6, limit <= 0.5"
    assert cases[1].find("failure") is None
    text = markdown(results, "data.json")
    assert "**1 of 2 checks failed**" in text
    assert "| `classes.gini` | 0.6 | <= 0.5 | **FAIL** |" in text


# The CLI: exit codes 0 / 1 / 2, the reports it writes, and the example config.
def _audit(*args):
    from typer.testing import CliRunner

    from imbstat.cli import app

    return CliRunner().invoke(app, ["audit", *map(str, args), "--quiet"])


def test_cli_pass_fail_and_files(tiny_coco, tmp_path):
    config = tmp_path / "audit.toml"
    # tiny set: 2 cats, 1 dog -> imbalance ratio 2
    config.write_text('checks = ["classes.imbalance_ratio <= 2", "dataset.images == 3"]\n')
    junit, md = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = _audit(tiny_coco, "--config", config, "--junit", junit, "--markdown", md)
    assert result.exit_code == 0, result.output
    assert "2 passed, 0 failed" in result.stdout
    assert ElementTree.parse(junit).getroot().get("failures") == "0"
    config.write_text('checks = ["classes.imbalance_ratio < 2"]\n')
    result = _audit(tiny_coco, "--config", config, "--json", "-")
    assert result.exit_code == 1
    import json

    doc = json.loads(result.stdout)
    assert doc["failed"] == 1 and doc["checks"][0]["value"] == 2.0 and doc["checks"][0]["passed"] is False


def test_cli_errors_exit_2(tiny_coco, tmp_path):
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["classes.gini_index <= 0.5"]\n')
    result = _audit(tiny_coco, "--config", config)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"imbstat: error: {config} (checks[0]): unknown metric 'classes.gini_index'; valid")
    assert "classes.gini," in result.stderr and result.stderr.count("\n") == 1
    config.write_text('checks = ["compare.classes.tv_distance <= 0.05"]\n')
    result = _audit(tiny_coco, "--config", config)
    assert result.exit_code == 2
    assert result.stderr == f"imbstat: error: {config}: checks name compare.* metrics; pass --baseline REPORT.json\n"


def test_example_config_names_real_metrics(tmp_path):
    """examples/audit.toml runs end to end on the sample against its own report (all compare.* are 0)."""
    from pathlib import Path

    from typer.testing import CliRunner

    from imbstat.cli import app
    from imbstat.data.sample import write_sample

    sample = write_sample(tmp_path / "sample.json", num_images=20)
    assert CliRunner().invoke(app, ["report", str(sample), "--out", str(tmp_path / "r"), "-q"]).exit_code == 0
    example = Path(__file__).resolve().parents[1] / "examples" / "audit.toml"
    result = _audit(sample, "--config", example, "--baseline", tmp_path / "r" / "report.json")
    assert result.exit_code in (0, 1), result.output  # thresholds may fail on the sample; names must all exist
    assert "compare.classes.tv_distance" in result.stdout
