"""imbstat: imbalance statistics of object-detection datasets.

>>> import imbstat
>>> ds = imbstat.load("instances_val2017.json")
>>> imbstat.class_distribution(ds).scores
>>> results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="retinanet"))
"""

from imbstat.analysis import Results, compute
from imbstat.anchors.options import AnchorOptions
from imbstat.anchors.presets import Preset, load_preset
from imbstat.data import BoxFilter, Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.stats import (
    AnchorStats,
    ClassDistribution,
    LocationDistribution,
    ScaleDistribution,
    anchor_stats,
    class_distribution,
    location_distribution,
    scale_distribution,
)

__version__ = "0.1.0"

__all__ = [
    "AnchorOptions",
    "AnchorStats",
    "BoxFilter",
    "ClassDistribution",
    "Dataset",
    "ImbstatError",
    "LoadOptions",
    "LocationDistribution",
    "Preset",
    "Results",
    "ScaleDistribution",
    "__version__",
    "anchor_stats",
    "class_distribution",
    "compute",
    "load",
    "load_preset",
    "location_distribution",
    "scale_distribution",
]
