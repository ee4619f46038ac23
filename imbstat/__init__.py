"""imbstat: imbalance statistics of object-detection datasets.

>>> import imbstat
>>> ds = imbstat.load("instances_val2017.json")
>>> imbstat.class_distribution(ds).scores
"""

from imbstat.data import BoxFilter, Dataset, load
from imbstat.errors import ImbstatError
from imbstat.stats import anchor_stats, class_distribution, location_distribution, scale_distribution

__version__ = "0.1.0"

__all__ = [
    "BoxFilter",
    "Dataset",
    "ImbstatError",
    "__version__",
    "anchor_stats",
    "class_distribution",
    "load",
    "location_distribution",
    "scale_distribution",
]
