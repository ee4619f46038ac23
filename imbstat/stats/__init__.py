"""Dataset-level statistics: each is Dataset -> mergeable result (DESIGN.md §2)."""

from imbstat.stats.classes import ClassDistribution, class_distribution
from imbstat.stats.histogram import Histogram
from imbstat.stats.location import LocationDistribution, location_distribution
from imbstat.stats.scale import ScaleDistribution, scale_distribution

__all__ = [
    "ClassDistribution",
    "Histogram",
    "LocationDistribution",
    "ScaleDistribution",
    "class_distribution",
    "location_distribution",
    "scale_distribution",
]
