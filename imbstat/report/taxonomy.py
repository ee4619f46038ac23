"""The survey's Table 1 (types of imbalance and their problems), each row with the score that measures it.

One table for every renderer: the HTML report's first table and ``imbstat
summary`` both read :data:`TAXONOMY` through :func:`taxonomy_rows`. Scores
are the named numbers of ``report/metrics.py``: 0 = balanced, 1 = extreme
(docs/design.md, 'Scores').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.table import Table

from imbstat.analysis import Results
from imbstat.report.metrics import metrics
from imbstat.report.terminal import PlainTable, plain
from imbstat.sections import section_of
from imbstat.sections.anchors import ANCHORS_NEEDED
from imbstat.text import fmt_metric

__all__ = ["ANCHORS_NEEDED", "NO_LOSS_IN_A_DATASET", "TAXONOMY", "fmt_metric", "taxonomy_rows", "taxonomy_table"]

NO_LOSS_IN_A_DATASET = "out of reach of a dataset tool: it concerns the loss functions during training"


@dataclass(frozen=True)
class Problem:
    """One imbalance problem of Table 1 and how a dataset report measures it (static data)."""

    problem: str  # the type of Table 1: "Class imbalance", ...
    sub_problem: str  # the problem, with its section of the survey
    metric: str | None  # a name of sections/__init__.py (its section shows it); None where nothing measures it
    statistic: str  # what the score is computed from, with the survey's figure
    extras: tuple[tuple[str, str], ...] = ()  # (label, metric name) of numbers shown beside the score
    unmeasured: str = ""  # why there is no score at all


@dataclass(frozen=True)
class TaxonomyRow:
    """One row of Table 1 filled in from a report.

    ``value`` is the score in [0, 1], or None when the document lacks it (no
    anchors, no pixel sizes, an undefined score) or nothing measures the
    problem; ``note`` then says why. ``statistic`` names the distribution and
    appends the extras, formatted (``"...; Gini 0.642, imbalance ratio 63.4"``).
    """

    problem: str
    sub_problem: str
    metric: str | None
    value: float | None
    statistic: str
    note: str
    section: str | None


TAXONOMY: tuple[Problem, ...] = (
    Problem(
        "Class imbalance",
        "Foreground-background (§4.1)",
        "anchors.foreground_background",
        "foreground vs background anchors (Fig. 4a)",
        # assigned and, where the preset has a sampling stage, sampled side by side
        (("fg:bg", "anchors.fg_bg_ratio"), ("sampled fg:bg", "anchors.sampled.fg_bg_ratio")),
    ),
    Problem(
        "Class imbalance",
        "Foreground-foreground (§4.2)",
        "classes.w1_score",
        "instances per class, rank–frequency (Fig. 5a)",
        (("Gini", "classes.gini"), ("imbalance ratio", "classes.imbalance_ratio")),
    ),
    Problem(
        "Scale imbalance",
        "Object/box-level (§5.1)",
        "scale.relative_area",
        "relative box area wh/(WH) (Fig. 7)",
        (("size buckets", "scale.size_buckets"),),
    ),
    Problem(
        "Scale imbalance",
        "Feature-level (§5.2)",
        "scale.fpn_levels",
        "boxes per FPN level P2–P5, box sizes after the preset's resize",
    ),
    Problem(
        "Spatial imbalance",
        "Regression loss (§6.1)",
        None,
        "the contribution of each box to the regression loss",
        unmeasured=NO_LOSS_IN_A_DATASET,
    ),
    Problem(
        "Spatial imbalance",
        "IoU distribution (§6.2)",
        "anchors.positive_iou",
        "IoU of foreground anchors with their GT, the regression input (Fig. 12a)",
        (("GTs with no anchor ≥ pos", "anchors.per_gt.below_pos"),),
    ),
    Problem(
        "Spatial imbalance",
        "Object location (§6.3)",
        "location.xy",
        "box centres over the normalised image (Fig. 13)",
        (("x", "location.x"), ("y", "location.y")),
    ),
    Problem(
        "Objective imbalance",
        "Objective imbalance (§7)",
        None,
        "the balance between the loss terms (classification, regression)",
        unmeasured=NO_LOSS_IN_A_DATASET,
    ),
)


def taxonomy_rows(report: Results) -> list[TaxonomyRow]:
    """The rows of :data:`TAXONOMY` with their values from a report (computed now or read back)."""
    found = metrics(report)
    rows = []
    for p in TAXONOMY:
        value = _finite(found.get(p.metric)) if p.metric else None
        extras = [
            f"{label} {fmt_metric(name, v)}" for label, name in p.extras if (v := _finite(found.get(name))) is not None
        ]
        statistic = p.statistic + ("; " + ", ".join(extras) if extras else "")
        section = section_of(p.metric) if p.metric else None
        if p.metric is None:
            note = p.unmeasured
        elif section is not None and section.optional and section.name not in report.views:
            note = section.optional  # how to ask for the section that measures it
        elif value is None:  # no pixel sizes (the result says what to pass: ScaleDistribution.missing), or undefined
            result = report.views.get(section.name) if section is not None else None
            note = getattr(result, "missing", None) or "not defined for this dataset"
        else:
            note = ""
        rows.append(TaxonomyRow(p.problem, p.sub_problem, p.metric, value, statistic, note, section and section.name))
    return rows


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def taxonomy_table(report: Results) -> Table:
    """The survey's Table 1 with the scores of ``report``, as a rich table."""
    table = PlainTable(title="imbalance problems (survey Table 1): 0 = balanced, 1 = extreme", title_justify="left")
    table.add_column("type", ratio=1)
    table.add_column("problem", ratio=1)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("statistic", ratio=2)
    for row in taxonomy_rows(report):
        statistic = plain(row.statistic)
        if row.note:
            statistic.append("\n").append_text(plain(row.note, "dim"))
        score = "–" if row.value is None else f"{row.value:.3f}"
        table.add_row(row.problem, row.sub_problem, score, statistic)
    return table
