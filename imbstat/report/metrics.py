"""Named numbers of a report or a comparison, for audits: ``section.name`` -> value.

Every score of a section is ``<section>.<score>`` (``classes.gini``,
``scale.relative_area``, ``location.xy``, ``anchors.positive_iou``); a few
statistics are named too (``anchors.fg_bg_ratio``, ``dataset.images``): each
section's ``extra_metrics`` in the registry (sections/__init__.py), which lists
every name; ``location.w1_score`` is another name of ``location.xy`` (the
registry's ``Metric.same_as``). A comparison's numbers are
``compare.<section>.<name>``. The values come from the result objects, never from
nested JSON keys.
"""

from __future__ import annotations

from typing import Any

from imbstat.analysis import Results
from imbstat.report.document import json_float
from imbstat.sections import COMPARE_PREFIX, DATASET_METRICS, SECTIONS
from imbstat.sections.spec import Metric


def metrics(report: Results, prefix: str = "") -> dict[str, float]:
    """Every named number of a report (computed now or read back); NaN where a score is undefined.

    The names are those of :func:`imbstat.sections.metric_table` that the report has.
    """
    found: dict[str, float] = {}
    for section in SECTIONS:
        result = report.views.get(section.name)
        if result is not None:
            named = _aliased(section.metrics, {**result.scores, **section.extra_metrics(result)})
            found |= {f"{section.name}.{name}": json_float(value) for name, value in named.items()}
    for m in DATASET_METRICS:
        if m.name in report.dataset:
            found[f"dataset.{m.name}"] = json_float(report.dataset[m.name])
    return {f"{prefix}{k}": v for k, v in found.items()}


def comparison_metrics(sections: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Every shift of a comparison, named ``compare.<section>.<name>``; NaN where it is undefined.

    ``sections`` is ``Comparison.sections``: section name -> its part of the comparison, with ``scores``.
    """
    found: dict[str, float] = {}
    for section in SECTIONS:
        body = sections.get(section.name)
        if body is not None:
            named = _aliased(section.shifts, body["scores"])
            found |= {f"{COMPARE_PREFIX}{section.name}.{name}": json_float(v) for name, v in named.items()}
    return found


def _aliased(names: tuple[Metric, ...], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` and, for each metric of ``names`` that is another name of one there, that value again."""
    return values | {m.name: values[m.same_as] for m in names if m.same_as and m.same_as in values}
