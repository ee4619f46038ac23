"""Dataset-level statistics: each is Dataset -> mergeable result (DESIGN.md §2)."""

from imbstat.stats.anchors import AnchorStats, anchor_stats
from imbstat.stats.classes import ClassDistribution, class_distribution
from imbstat.stats.histogram import Histogram
from imbstat.stats.location import LocationDistribution, location_distribution
from imbstat.stats.remedies import repeat_factors
from imbstat.stats.scale import ScaleDistribution, scale_distribution

__all__ = [
    "AnchorStats",
    "ClassDistribution",
    "Histogram",
    "LocationDistribution",
    "ScaleDistribution",
    "anchor_stats",
    "class_distribution",
    "location_distribution",
    "repeat_factors",
    "scale_distribution",
]
