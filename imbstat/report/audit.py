"""Audit thresholds on a report's metrics, for CI jobs (README, "Audit").

A config is TOML::

    anchors = false            # compute anchor statistics (implied by any anchors.* check)
    preset = "retinanet"       # for anchors.* checks
    include_crowd = false
    include_difficult = false
    repeat_factor = 0.001      # threshold T of repeat-factor sampling (needed by repeat_factor.* checks)
    class_balanced = 0.999     # beta of the class-balanced loss weights (needed by class_balanced.* checks)
    detections = "dets.json"   # COCO results to evaluate (needed by eval.* checks); paths relative to this file
    train = "train.json"       # training annotations for eval's class frequencies (optional)
    max_dets = 100             # COCOeval's last maxDets
    checks = [
      "classes.imbalance_ratio <= 200",
      "location.w1_score <= 0.35",
      "compare.classes.tv_distance <= 0.05",   # needs --baseline
    ]

Each check is ``METRIC OP LIMIT`` with OP one of ``<= < >= > ==``; metric
names are those of the section registry (:func:`imbstat.sections.metric_table`),
checked when the config is read, before anything is computed. A metric whose
value is undefined (NaN, e.g. a score of an empty distribution) fails.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

from rich.table import Table
from rich.text import Text

from imbstat.anchors.options import AnchorOptions
from imbstat.data import BoxFilter
from imbstat.data.source import read_toml
from imbstat.errors import ImbstatError
from imbstat.report.terminal import PlainTable, fmt_number
from imbstat.sections import metric_table
from imbstat.sections.spec import Run
from imbstat.stats.batch import BatchOptions
from imbstat.stats.eval import EvalOptions

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    "<": operator.lt,
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
}
_CHECK = re.compile(r"^\s*([A-Za-z0-9_.]+)\s*(<=|>=|==|<|>)\s*([-+0-9.eE]+|nan|inf)\s*$")
_KEYS = {"anchors": bool, "preset": str, "include_crowd": bool, "include_difficult": bool, "checks": list,
         "repeat_factor": float, "class_balanced": float, "batch_size": int, "sampler": str, "epochs": int,
         "seed": int, "detections": str, "train": str, "max_dets": int}  # fmt: skip
_REMEDIES = ("repeat_factor", "class_balanced")  # config key = section = Run's field
_BATCH_KEYS = ("batch_size", "sampler", "epochs", "seed")  # the fields of BatchOptions: the batch section


@dataclass(frozen=True)
class Check:
    metric: str
    op: str
    limit: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.limit:g}"


@dataclass(frozen=True)
class AuditConfig:
    """The checks of a config and the analysis they read: its ``run`` holds the config's options, checked."""

    checks: tuple[Check, ...]
    run: Run = field(default_factory=Run)  # anchors set when an anchors.* check (or anchors = true) needs them

    @property
    def needs_anchors(self) -> bool:
        return self.run.anchors is not None

    @property
    def needs_baseline(self) -> bool:
        return any(c.metric.startswith("compare.") for c in self.checks)


@dataclass(frozen=True)
class CheckResult:
    check: Check
    value: float

    @property
    def passed(self) -> bool:
        return not math.isnan(self.value) and OPERATORS[self.check.op](self.value, self.check.limit)


def load_config(path: str | Path) -> AuditConfig:
    """Read and check an audit config; every problem is an ImbstatError naming the file and key."""
    path = Path(path)
    table = read_toml(path, "audit config")
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ImbstatError(f"unknown keys {', '.join(unknown)}; expected some of {', '.join(_KEYS)}", path)
    for key, kind in _KEYS.items():
        if key in table and not isinstance(table[key], kind):
            raise ImbstatError(f"expected {kind.__name__}, got {type(table[key]).__name__}", path, key)
    raw = table.get("checks")
    if not raw:
        raise ImbstatError('no checks; expected checks = ["METRIC OP LIMIT", ...]', path, "checks")
    checks = []
    valid = metric_table()
    for i, text in enumerate(raw):
        found = _CHECK.match(text) if isinstance(text, str) else None
        if not found:
            raise ImbstatError(
                f"expected 'METRIC OP LIMIT' with OP one of {' '.join(OPERATORS)}, got {text!r}", path, f"checks[{i}]"
            )
        metric, op, limit = found.groups()
        if metric not in valid:  # before anything is computed
            raise ImbstatError(f"unknown metric {metric!r}; valid names: {', '.join(valid)}", path, f"checks[{i}]")
        section = metric.removeprefix("compare.").split(".")[0]
        if section in _REMEDIES and section not in table:
            raise ImbstatError(f"{metric} needs {section} = VALUE in the config", path, f"checks[{i}]")
        if math.isnan(float(limit)):  # every comparison with NaN is False: the check could only fail
            raise ImbstatError(f"expected a number as the limit, got {limit!r}", path, f"checks[{i}]")
        checks.append(Check(metric, op, float(limit)))
    batch = {k: table[k] for k in _BATCH_KEYS if k in table}
    if batch and "batch_size" not in batch:
        raise ImbstatError(f"{', '.join(batch)} without batch_size; expected batch_size = B as well", path)
    if "batch_size" not in batch and any(c.metric.removeprefix("compare.").startswith("batch.") for c in checks):
        raise ImbstatError("checks name batch.* metrics; expected batch_size = B (the training batch)", path, "checks")
    if "detections" not in table and any(c.metric.removeprefix("compare.").startswith("eval.") for c in checks):
        raise ImbstatError("checks name eval.* metrics; expected detections = PATH (COCO results)", path, "checks")
    for key in ("train", "max_dets"):
        if key in table and "detections" not in table:
            raise ImbstatError(f"{key} without detections; expected detections = PATH as well", path, key)
    # detections and train relative to the config's folder, as a CI job's files sit beside it
    paths = {key: path.parent / table[key] for key in ("detections", "train") if key in table}
    anchors = AnchorOptions(preset=table.get("preset", "retinanet"))  # a bad preset fails here, needed or not
    needs_anchors = table.get("anchors", False) or any(c.metric.startswith("anchors.") for c in checks)
    try:  # Run, BatchOptions and EvalOptions check the values; their errors name the field, here the config's key
        evaluation = (EvalOptions(paths["detections"], paths.get("train"), table.get("max_dets", 100))
                      if "detections" in paths else None)  # fmt: skip
    except ImbstatError as e:
        raise ImbstatError(e.detail.removeprefix("--max-dets "), path, "max_dets") from None
    try:
        run = Run(BoxFilter(table.get("include_crowd", False), table.get("include_difficult", False)),
                  anchors if needs_anchors else None, batch=BatchOptions(**batch) if batch else None,
                  evaluation=evaluation, **{key: table[key] for key in _REMEDIES if key in table})  # fmt: skip
    except ImbstatError as e:
        raise ImbstatError(e.detail, path, e.position) from None
    return AuditConfig(tuple(checks), run)


def run_checks(config: AuditConfig, values: dict[str, float], path: str | Path = "") -> list[CheckResult]:
    """Each check against ``values``; a metric that is not there is an ImbstatError listing the names there.

    :func:`load_config` has checked the names against the registry; one can still be missing from a
    report (``scale.fpn_levels`` without image sizes).
    """
    missing = [c.metric for c in config.checks if c.metric not in values]
    if missing:
        raise ImbstatError(
            f"unknown metric {missing[0]!r}; valid names: {', '.join(sorted(values))}", path or None, "checks"
        )
    return [CheckResult(c, values[c.metric]) for c in config.checks]


def junit_xml(results: list[CheckResult], suite: str = "imbstat audit") -> str:
    """JUnit XML: one testcase per check, a failure element for each failed one."""
    failures = sum(not r.passed for r in results)
    root = ElementTree.Element("testsuites", tests=str(len(results)), failures=str(failures))
    node = ElementTree.SubElement(root, "testsuite", name=suite, tests=str(len(results)), failures=str(failures))
    for r in results:
        case = ElementTree.SubElement(node, "testcase", classname="imbstat.audit", name=str(r.check))
        if not r.passed:
            ElementTree.SubElement(case, "failure", message=f"{r.check.metric} = {r.value:g}, limit {r.check.op} "
                                   f"{r.check.limit:g}")  # fmt: skip
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ElementTree.tostring(root, encoding="unicode") + "\n"


def markdown(results: list[CheckResult], title: str) -> str:
    """A Markdown summary for a CI job's summary page."""
    failed = sum(not r.passed for r in results)
    head = f"### imbstat audit: {title}\n\n" + (
        f"**{failed} of {len(results)} checks failed**\n\n" if failed else f"All {len(results)} checks passed\n\n"
    )
    rows = ["| check | value | limit | result |", "|---|---:|---|---|"]
    for r in results:
        verdict = "pass" if r.passed else "**FAIL**"
        rows.append(f"| `{r.check.metric}` | {r.value:.4g} | {r.check.op} {r.check.limit:g} | {verdict} |")
    return head + "\n".join(rows) + "\n"


def audit_table(results: list[CheckResult], title: str) -> Table:
    table = PlainTable(title=f"audit of {title}", title_justify="left")
    for col in ("metric", "value", "limit", "result"):
        table.add_column(col, justify="right" if col == "value" else "left")
    for r in results:
        verdict = Text("pass", style="green") if r.passed else Text("FAIL", style="bold red")
        table.add_row(r.check.metric, fmt_number(r.value), f"{r.check.op} {r.check.limit:g}", verdict)
    return table
