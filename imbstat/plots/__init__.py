"""One figure family per statistic (matplotlib on an Agg canvas, no pyplot): PNG files in, paths out."""

from imbstat.plots.anchors import plot_anchors
from imbstat.plots.batch import plot_batch
from imbstat.plots.classes import plot_classes
from imbstat.plots.compare import plot_compare
from imbstat.plots.location import plot_location
from imbstat.plots.remedies import plot_class_balanced, plot_repeat_factor
from imbstat.plots.scale import plot_scale

__all__ = [
    "plot_anchors",
    "plot_batch",
    "plot_class_balanced",
    "plot_classes",
    "plot_compare",
    "plot_location",
    "plot_repeat_factor",
    "plot_scale",
]
