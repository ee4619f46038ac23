"""imbstat: imbalance statistics of object-detection datasets.

>>> import imbstat
>>> ds = imbstat.load("instances_val2017.json")
>>> imbstat.class_distribution(ds).scores
>>> results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="retinanet"))
>>> imbstat.compare("train/report.json", "val/report.json").to_dict()  # how far each distribution moved
"""

from imbstat.analysis import Results, compute
from imbstat.anchors.options import AnchorOptions
from imbstat.anchors.presets import Preset, load_preset
from imbstat.data import BoxFilter, Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.report.compare import Comparison, compare
from imbstat.stats import (
    AnchorStats,
    BatchDistribution,
    ClassBalancedLoss,
    ClassDistribution,
    Evaluation,
    LocationDistribution,
    RepeatFactorSampling,
    ScaleDistribution,
    anchor_stats,
    batch_distribution,
    class_balanced_loss,
    class_distribution,
    evaluate,
    location_distribution,
    repeat_factor_sampling,
    scale_distribution,
)
from imbstat.version import __version__

__all__ = [
    "AnchorOptions",
    "AnchorStats",
    "BatchDistribution",
    "BoxFilter",
    "ClassBalancedLoss",
    "ClassDistribution",
    "Comparison",
    "Dataset",
    "Evaluation",
    "ImbstatError",
    "LoadOptions",
    "LocationDistribution",
    "Preset",
    "RepeatFactorSampling",
    "Results",
    "ScaleDistribution",
    "__version__",
    "anchor_stats",
    "batch_distribution",
    "class_balanced_loss",
    "class_distribution",
    "compare",
    "compute",
    "evaluate",
    "load",
    "load_preset",
    "location_distribution",
    "repeat_factor_sampling",
    "scale_distribution",
]
