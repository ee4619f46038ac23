"""Dataset-level statistics: each is Dataset -> mergeable result (docs/design.md, 'Dataset statistics')."""

from imbstat.stats.anchors import AnchorStats, anchor_stats
from imbstat.stats.batch import BatchDistribution, BatchOptions, batch_distribution
from imbstat.stats.class_balanced import ClassBalancedLoss, class_balanced_loss
from imbstat.stats.classes import ClassDistribution, class_distribution
from imbstat.stats.eval import Evaluation, evaluate
from imbstat.stats.histogram import Histogram
from imbstat.stats.location import LocationDistribution, location_distribution
from imbstat.stats.repeat_factor import RepeatFactorSampling, repeat_factor_sampling, repeat_factors
from imbstat.stats.scale import ScaleDistribution, scale_distribution

__all__ = [
    "AnchorStats",
    "BatchDistribution",
    "BatchOptions",
    "ClassBalancedLoss",
    "ClassDistribution",
    "Evaluation",
    "Histogram",
    "LocationDistribution",
    "RepeatFactorSampling",
    "ScaleDistribution",
    "anchor_stats",
    "batch_distribution",
    "class_balanced_loss",
    "class_distribution",
    "evaluate",
    "location_distribution",
    "repeat_factor_sampling",
    "repeat_factors",
    "scale_distribution",
]
