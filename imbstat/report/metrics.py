"""Named numbers of a report document, for audits: ``section.name`` -> value.

Every score of a section is ``<section>.<score>`` (``classes.gini``,
``scale.relative_area``, ``location.xy``, ``anchors.positive_iou``); a few
statistics are named too (``anchors.fg_bg_ratio``, ``dataset.images``), and
``location.w1_score`` is the 2-D centre score ``location.xy``: each section's
``extra_metrics`` in the registry (report/sections.py), which lists every name. A comparison
document's numbers are ``compare.<section>.<name>``.
"""

from __future__ import annotations

from typing import Any

from imbstat.report.document import json_float
from imbstat.report.sections import DATASET_METRICS, SECTIONS


def metrics(doc: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every named number of a report (or comparison) document; NaN where a score is undefined.

    The names are those of :func:`imbstat.report.sections.metric_table` that the document has.
    """
    found: dict[str, float] = {}
    for section in SECTIONS:
        body = doc.get(section.name)
        if not isinstance(body, dict):
            continue
        named = {**(body.get("scores") or {}), **section.extra_metrics(body)}
        found |= {f"{section.name}.{name}": json_float(value) for name, value in named.items()}
    dataset = doc.get("dataset")
    if isinstance(dataset, dict):
        for m in DATASET_METRICS:
            if m.name in dataset:
                found[f"dataset.{m.name}"] = json_float(dataset[m.name])
    return {f"{prefix}{k}": v for k, v in found.items()}
