"""The survey's Table 1 (types of imbalance and their problems), each row with the score that measures it.

One table for every renderer: the HTML report's first table and ``imbstat
summary`` both read :data:`TAXONOMY` through :func:`taxonomy_rows`. Scores
are the named numbers of ``report/metrics.py``: 0 = balanced, 1 = extreme
(DESIGN.md §4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from imbstat.report.metrics import metrics

ANCHORS_NEEDED = "run with --anchors"
NO_LOSS_IN_A_DATASET = "out of reach of a dataset tool: it concerns the loss functions during training"


@dataclass(frozen=True)
class Problem:
    """One imbalance problem of Table 1 and how a dataset report measures it (static data)."""

    problem: str  # the type of Table 1: "Class imbalance", ...
    sub_problem: str  # the problem, with its section of the survey
    metric: str | None  # a name from report/metrics.py; None where no dataset statistic measures it
    statistic: str  # what the score is computed from, with the survey's figure
    section: str | None  # the report section ("classes", "scale", "location", "anchors") that shows it
    extras: tuple[tuple[str, str], ...] = ()  # (label, metric name) of numbers shown beside the score
    unmeasured: str = ""  # why there is no score at all


@dataclass(frozen=True)
class TaxonomyRow:
    """One row of Table 1 filled in from a report document.

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
        "anchors",
        (("fg:bg", "anchors.fg_bg_ratio"),),
    ),
    Problem(
        "Class imbalance",
        "Foreground-foreground (§4.2)",
        "classes.w1_score",
        "instances per class, rank–frequency (Fig. 5a)",
        "classes",
        (("Gini", "classes.gini"), ("imbalance ratio", "classes.imbalance_ratio")),
    ),
    Problem(
        "Scale imbalance",
        "Object/box-level (§5.1)",
        "scale.relative_area",
        "relative box area wh/(WH) (Fig. 7)",
        "scale",
        (("size buckets", "scale.size_buckets"),),
    ),
    Problem(
        "Scale imbalance",
        "Feature-level (§5.2)",
        "scale.fpn_levels",
        "boxes per FPN level P2–P5, box sizes after the preset's resize",
        "scale",
    ),
    Problem(
        "Spatial imbalance",
        "Regression loss (§6.1)",
        None,
        "the contribution of each box to the regression loss",
        None,
        unmeasured=NO_LOSS_IN_A_DATASET,
    ),
    Problem(
        "Spatial imbalance",
        "IoU distribution (§6.2)",
        "anchors.positive_iou",
        "IoU of foreground anchors with their GT, the regression input (Fig. 12a)",
        "anchors",
        (("GTs with no anchor ≥ pos", "anchors.per_gt.below_pos"),),
    ),
    Problem(
        "Spatial imbalance",
        "Object location (§6.3)",
        "location.xy",
        "box centres over the normalised image (Fig. 13)",
        "location",
        (("x", "location.x"), ("y", "location.y")),
    ),
    Problem(
        "Objective imbalance",
        "Objective imbalance (§7)",
        None,
        "the balance between the loss terms (classification, regression)",
        None,
        unmeasured=NO_LOSS_IN_A_DATASET,
    ),
)


def taxonomy_rows(doc: dict[str, Any]) -> list[TaxonomyRow]:
    """The rows of :data:`TAXONOMY` with their values from a report document (``Results.document()`` or its JSON)."""
    found = metrics(doc)
    rows = []
    for p in TAXONOMY:
        value = _finite(found.get(p.metric)) if p.metric else None
        extras = [
            f"{label} {fmt_metric(name, v)}" for label, name in p.extras if (v := _finite(found.get(name))) is not None
        ]
        statistic = p.statistic + ("; " + ", ".join(extras) if extras else "")
        if p.metric is None:
            note = p.unmeasured
        elif p.metric.startswith("anchors.") and not isinstance(doc.get("anchors"), dict):
            note = ANCHORS_NEEDED
        elif value is None:  # no pixel sizes (the section says what to pass), or an undefined score
            body = doc.get(p.metric.split(".")[0])
            note = (body.get("missing") if isinstance(body, dict) else None) or "not defined for this dataset"
        else:
            note = ""
        rows.append(TaxonomyRow(p.problem, p.sub_problem, p.metric, value, statistic, note, p.section))
    return rows


def fmt_metric(name: str, value: float) -> str:
    """A metric for a reader: fg:bg as ``1 : 944``, counts with thousands separators, fractions with 3 decimals."""
    if name == "anchors.fg_bg_ratio":
        if value <= 0:
            return "0 (no foreground)"
        return f"1 : {1 / value:,.0f}" if value <= 1 else f"{value:,.1f} : 1"
    if float(value).is_integer():
        return f"{int(value):,}"
    if abs(value) < 1:
        return f"{value:.3f}" if abs(value) >= 0.001 else f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
