"""The anchors section of a report, read back: what ``compare``, the audit metrics and the HTML page use.

A report's ``anchors`` section holds sums and means, not every count of
:class:`~imbstat.stats.AnchorStats` (only a shard's report carries those, under
``raw``, so that shards merge exactly). :class:`AnchorSummary` is that section as
an object, read from a saved report (:meth:`AnchorSummary.from_dict`) or made from
a result computed now (:meth:`AnchorSummary.of`, through the same JSON fields, so
both give the same numbers). It has no ``merge``: merging needs ``raw``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.anchors.presets import Preset, preset_from_dict
from imbstat.lazy import LazyModule
from imbstat.stats.anchor_sampling import SampledAnchors
from imbstat.stats.anchors import AnchorStats
from imbstat.stats.histogram import Histogram
from imbstat.stats.protocol import count, counts, each, nested, numbers
from imbstat.stats.scale import SIZE_BUCKETS
from imbstat.stats.side_by_side import keyed

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

LABELS = ("foreground", "background", "ignored")  # of an anchor
GT_FIELDS = ("gts", "foreground", "foreground_per_gt", "unmatched", "low_quality_only", "below_pos")
PER_CLASS = ("category_id", "name", "foreground", "foreground_per_image", "instances")


@dataclass(frozen=True)
class AnchorSummary:
    """Anchor labels of a dataset under one preset, as its report's ``anchors`` section states them.

    ``per_gt`` maps ``small``, ``medium``, ``large`` (COCO size bucket of the GT) and
    ``all`` to the GT row of :data:`GT_FIELDS` (``foreground_per_gt`` NaN where there
    are no GTs); ``overlap_*`` are the [G, G] mean anchors per image covering each cell.
    """

    preset: Preset
    totals: dict[str, int]  # total, foreground, background, ignored anchors
    fg_bg_ratio: float  # NaN without a background anchor
    per_image_mean: dict[str, float]  # label -> mean anchors of that label per image
    per_class: pd.DataFrame  # one row per category, by foreground descending: PER_CLASS columns
    positive_iou: Histogram  # IoU of every foreground anchor with its GT
    per_gt: dict[str, dict[str, float]]
    foreground_per_gt: Histogram
    relative_top_left: np.ndarray  # [G, G] int64
    relative_center: np.ndarray  # [G, G] int64
    overlap_foreground: np.ndarray  # [G, G] float64
    overlap_background: np.ndarray  # [G, G] float64
    scores: dict[str, float]
    sampled: SampledAnchors | None = None  # the sampling stage, where the preset has one
    more_presets: tuple[AnchorSummary, ...] = ()  # the further presets of a side-by-side run, in order

    @classmethod
    def of(cls, result: AnchorStats) -> AnchorSummary:
        """The summary of a result computed now: its report section (``to_dict``), read back."""
        return cls.from_dict(result.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> AnchorSummary:
        """A report's ``anchors`` section (with or without ``raw``); a missing field raises KeyError."""
        top_left = nested(d, "relative_spatial", lambda r: counts(r["top_left"], "top_left", (None, None)))
        grid = top_left.shape[0]
        relative = lambda key: nested(d, "relative_spatial", lambda r: counts(r[key], key, (grid, grid)))  # noqa: E731
        overlap = lambda key: nested(d, "overlap", lambda o: numbers(o[key], key, (grid, grid)))  # noqa: E731
        return cls(
            preset=preset_from_dict(d["preset"]),
            totals=nested(d, "anchors", lambda a: {k: count(a[k], k) for k in ("total", *LABELS)}),
            fg_bg_ratio=_float(d["fg_bg_ratio"]),
            per_image_mean={label: float(d["per_image"][f"{label}_mean"]) for label in LABELS},
            per_class=pd.DataFrame(d["per_class"], columns=list(PER_CLASS)),
            positive_iou=nested(d, "positive_iou", Histogram.from_dict),
            per_gt=nested(d, "per_gt", _gt_rows),
            foreground_per_gt=nested(d, "per_gt", lambda g: nested(g, "foreground_per_gt", Histogram.from_dict)),
            relative_top_left=top_left,
            relative_center=relative("center"),
            overlap_foreground=overlap("foreground"),
            overlap_background=overlap("background"),
            scores={k: _float(v) for k, v in d["scores"].items()},
            sampled=nested(d, "sampled", SampledAnchors.from_dict) if "sampled" in d else None,
            more_presets=nested({"more_presets": []} | d, "more_presets", each(cls.from_dict)),
        )

    def median_iou_bin(self) -> tuple[float, float] | None:
        """The IoU bin [low, high) that holds the median foreground anchor (inverted CDF); None without one."""
        counts, edges = self.positive_iou.counts, self.positive_iou.edges
        if not counts.sum():
            return None
        i = int(np.searchsorted(np.cumsum(counts), math.ceil(counts.sum() / 2)))  # first bin reaching half
        return float(edges[i]), float(edges[i + 1])

    def to_frame(self) -> pd.DataFrame:
        """One row per category, by foreground anchors descending (as :meth:`AnchorStats.to_frame`)."""
        return self.per_class


def _median_bin(s: AnchorSummary) -> str:
    found = s.median_iou_bin()
    return "n/a" if found is None else f"[{found[0]:.2f}, {found[1]:.2f}{']' if found[1] == 1 else ')'}"


# (row label, its value for one preset's summary) of the side-by-side table; the scores follow, one row each
_SIDE_BY_SIDE_ROWS = (
    ("preset", lambda s: s.preset.name),
    ("assigner", lambda s: s.preset.assigner),
    ("anchors", lambda s: s.totals["total"]),
    *((label, lambda s, k=label: s.totals[k]) for label in LABELS),
    ("fg:bg ratio", lambda s: s.fg_bg_ratio),
    *((f"{label} per image", lambda s, k=label: s.per_image_mean[k]) for label in LABELS),
    ("GTs", lambda s: s.per_gt["all"]["gts"]),
    ("fg per GT (mean)", lambda s: s.per_gt["all"]["foreground_per_gt"]),
    ("GTs, no fg anchor", lambda s: s.per_gt["all"]["unmatched"]),
    ("GTs, low-quality fg only", lambda s: s.per_gt["all"]["low_quality_only"]),
    ("GTs, no anchor >= pos IoU", lambda s: s.per_gt["all"]["below_pos"]),
    ("positive IoU median (bin)", _median_bin),
    # the sampling stage (--sampler, or the preset's): what the classifier trains on
    ("sampler", lambda s: s.preset.sampler or "none"),
    ("sampled positives", lambda s: s.sampled.positives if s.sampled else "n/a"),
    ("sampled negatives", lambda s: s.sampled.negatives if s.sampled else "n/a"),
    ("sampled fg:bg ratio", lambda s: s.sampled.fg_bg_ratio if s.sampled else "n/a"),
)


def side_by_side_rows(summary: AnchorSummary) -> tuple[list[str], list[tuple[str, list[Any]]]]:
    """The presets of a side-by-side result as a table: their keys, and rows (label, one value per preset):
    counts as int, means, ratios and scores as float (NaN where undefined), names and IoU bins as str."""
    columns = keyed(summary)
    rows = [(label, [value(s) for _, s in columns]) for label, value in _SIDE_BY_SIDE_ROWS]
    rows += [(f"score: {name}", [s.scores.get(name, math.nan) for _, s in columns]) for name in summary.scores]
    return [key for key, _ in columns], rows


def _gt_rows(per_gt: dict) -> dict[str, dict[str, float]]:
    """The GT rows by size bucket, then ``all``."""
    by_size = nested(per_gt, "by_size", lambda b: {bucket: nested(b, bucket, _gt_row) for bucket in SIZE_BUCKETS})
    return by_size | {"all": nested(per_gt, "all", _gt_row)}


def _gt_row(row: dict) -> dict[str, float]:
    """The counts of a GT row as ints; ``foreground_per_gt`` as a float (NaN where there are no GTs)."""
    return {k: _float(row[k]) if k == "foreground_per_gt" else count(row[k], k) for k in GT_FIELDS}


def _float(value: Any) -> float:
    """A JSON number as a float; null (how a report writes NaN) as NaN."""
    return math.nan if value is None else float(value)
