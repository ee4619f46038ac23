"""imbstat: imbalance statistics of object-detection datasets.

>>> import imbstat
>>> ds = imbstat.load("instances_val2017.json")
>>> imbstat.class_distribution(ds).scores
>>> imbstat.compare("train/report.json", "val/report.json").to_dict()  # how far each distribution moved
"""

from imbstat.data import BoxFilter, Dataset, load
from imbstat.errors import ImbstatError
from imbstat.report.compare import Comparison, compare
from imbstat.stats import anchor_stats, class_distribution, location_distribution, scale_distribution
from imbstat.version import __version__

__all__ = [
    "BoxFilter",
    "Comparison",
    "Dataset",
    "ImbstatError",
    "__version__",
    "anchor_stats",
    "class_distribution",
    "compare",
    "load",
    "location_distribution",
    "scale_distribution",
]
