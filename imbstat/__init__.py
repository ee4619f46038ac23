"""imbstat: imbalance statistics of object-detection datasets.

>>> import imbstat
>>> ds = imbstat.load("instances_val2017.json")
>>> imbstat.class_distribution(ds).scores
>>> results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="retinanet"))
>>> imbstat.compare("train/report.json", "val/report.json").to_dict()  # how far each distribution moved
"""

from typing import TYPE_CHECKING, Any

from imbstat.analysis import Results, compute
from imbstat.anchors.options import AnchorOptions
from imbstat.anchors.presets import Preset, load_preset
from imbstat.data import BoxFilter, Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.stats import (
    AnchorStats,
    BatchDistribution,
    BatchOptions,
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

if TYPE_CHECKING:  # loaded when first named (__getattr__ below); here for type checkers and the API docs
    from imbstat.report.compare import Comparison, compare

__all__ = [
    "AnchorOptions",
    "AnchorStats",
    "BatchDistribution",
    "BatchOptions",
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

# The comparison is report/'s (its document, tables and figures beside its maths): loaded when first named, so
# that ``import imbstat`` loads nothing of imbstat.report (tests/test_imports.py).
_FROM_COMPARE = ("Comparison", "compare")


def __getattr__(name: str) -> Any:
    if name in _FROM_COMPARE:
        from imbstat.report import compare as module

        return getattr(module, name)
    raise AttributeError(f"module 'imbstat' has no attribute {name!r}")
