"""Named numbers of a report document, for audits: ``section.name`` -> value.

Every score of a section is ``<section>.<score>`` (``classes.gini``,
``scale.relative_area``, ``location.xy``, ``anchors.positive_iou``); a few
statistics are named too (``anchors.fg_bg_ratio``, ``dataset.images``), and
``location.w1_score`` is the 2-D centre score ``location.xy``. A comparison
document's numbers are ``compare.<section>.<name>``.
"""

from __future__ import annotations

import math
from typing import Any

from imbstat.report.build import SECTIONS


def metrics(doc: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Every named number of a report (or comparison) document; NaN where a score is undefined."""
    found: dict[str, float] = {}
    for section in SECTIONS:
        body = doc.get(section)
        if not isinstance(body, dict):
            continue
        for name, value in (body.get("scores") or {}).items():
            found[f"{section}.{name}"] = _number(value)
    if isinstance(doc.get("location"), dict) and "location.xy" in found:
        found["location.w1_score"] = found["location.xy"]
    anchors = doc.get("anchors")
    if isinstance(anchors, dict):
        if "fg_bg_ratio" in anchors:
            found["anchors.fg_bg_ratio"] = _number(anchors["fg_bg_ratio"])
        for key, value in (anchors.get("per_image") or {}).items():
            if key.endswith("_mean"):
                found[f"anchors.{key}"] = _number(value)
        for key, value in (anchors.get("per_gt", {}).get("all") or {}).items():
            if key != "foreground":
                found[f"anchors.per_gt.{key}"] = _number(value)
    dataset = doc.get("dataset")
    if isinstance(dataset, dict):
        for key in ("images", "boxes", "categories", "images_without_boxes", "invalid_total"):
            if key in dataset:
                found[f"dataset.{key}"] = _number(dataset[key])
    return {f"{prefix}{k}": v for k, v in found.items()}


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)
