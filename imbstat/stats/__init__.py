"""Dataset-level statistics: each is Dataset -> mergeable result (DESIGN.md §2)."""

from imbstat.stats.anchors import AnchorStats, anchor_stats
from imbstat.stats.batch import BatchDistribution, batch_distribution
from imbstat.stats.classes import ClassDistribution, class_distribution
from imbstat.stats.histogram import Histogram
from imbstat.stats.location import LocationDistribution, location_distribution
from imbstat.stats.scale import ScaleDistribution, scale_distribution

__all__ = [
    "AnchorStats",
    "BatchDistribution",
    "ClassDistribution",
    "Histogram",
    "LocationDistribution",
    "ScaleDistribution",
    "anchor_stats",
    "batch_distribution",
    "class_distribution",
    "location_distribution",
    "scale_distribution",
]
