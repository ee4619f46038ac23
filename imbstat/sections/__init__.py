"""The registry of report sections: one module per statistic, listed here in report order.

A section is one statistic of a whole analysis (``classes``, ``scale``,
``location``, ``anchors``, ...), and its module here (``imbstat/sections/<name>.py``,
its *slice*) holds everything the program knows about it: its result type, how
:func:`imbstat.compute` computes it and how shards merge, its JSON section, its
CSV tables, figures and terminal tables, how ``compare`` scores its shift, its
HTML tables and the audit metrics it names (``<section>.<metric>``, each with its
meaning). ``compare``, the metrics, the HTML tables and the taxonomy read result
objects, never nested JSON keys: a report's JSON section is read back with
:meth:`Section.read` (the result type's ``from_dict``), so a renamed or missing
field is an error where the report is read. Report building, ``merge``, ``compare``, ``audit``, the taxonomy
table, the HTML page and the Dask path iterate over :data:`SECTIONS`; adding a statistic is adding a slice
and its line here (docs/contributing.md, "Adding a statistic").

Layers: this package sits below ``imbstat.report``, ``imbstat.plots`` and the CLI and above
``imbstat.stats``. A slice imports at module level only the compute side (stats, data,
:mod:`imbstat.sections.spec`, :mod:`imbstat.sections.shifts`); its renderers import rich, the
report's helpers and matplotlib inside their bodies, so that :func:`imbstat.compute` loads none of them
(tests/test_imports.py). The mechanism (:class:`Section`, :class:`Metric`, :class:`Run`) is
:mod:`imbstat.sections.spec`.
"""

from __future__ import annotations

from collections.abc import Sequence

from imbstat.sections.anchors import ANCHORS
from imbstat.sections.batch import BATCH
from imbstat.sections.class_balanced import CLASS_BALANCED
from imbstat.sections.classes import CLASSES
from imbstat.sections.eval import EVAL
from imbstat.sections.location import LOCATION
from imbstat.sections.loss import LOSS
from imbstat.sections.repeat_factor import REPEAT_FACTOR
from imbstat.sections.scale import SCALE
from imbstat.sections.spec import Metric, Section

# --- the registry --------------------------------------------------------------------------------------------------

SECTIONS: tuple[Section, ...] = (
    CLASSES,
    SCALE,
    LOCATION,
    ANCHORS,
    LOSS,
    REPEAT_FACTOR,
    CLASS_BALANCED,
    BATCH,
    EVAL,
)  # in order
BY_NAME: dict[str, Section] = {s.name: s for s in SECTIONS}
# A command's own section (its fields at the JSON's top level) is the first with that command; the later
# ones (the remedies of class-dist) sit under their name beside it: NESTED.
BY_COMMAND: dict[str, Section] = {s.command: s for s in reversed(SECTIONS)}
NESTED: tuple[Section, ...] = tuple(s for s in SECTIONS if BY_COMMAND[s.command] is not s)

# Numbers of the dataset head that audits may check: dataset.<name>
DATASET_METRICS = (
    Metric("images", "images read", score=False),
    Metric("boxes", "boxes counted", score=False),
    Metric("categories", "categories", score=False),
    Metric("images_without_boxes", "images without a counted box", score=False),
    Metric("invalid_total", "annotations excluded or repaired while loading", score=False),
)
COMPARE_PREFIX = "compare."


def metric_table() -> dict[str, Metric]:
    """Every metric name an audit may check, in report order: ``dataset.*``, each section's, then ``compare.*``."""
    found = {f"dataset.{m.name}": m for m in DATASET_METRICS}
    found |= {f"{s.name}.{m.name}": m for s in SECTIONS for m in s.metrics}
    return found | {f"{COMPARE_PREFIX}{s.name}.{m.name}": m for s in SECTIONS for m in s.shifts}


def section_of(metric: str) -> Section | None:
    """The section a metric name belongs to (``anchors.fg_bg_ratio`` -> anchors); None for ``dataset.*``."""
    return BY_NAME.get(metric.removeprefix(COMPARE_PREFIX).split(".")[0])


def wanted(optional: Sequence[str] = ()) -> tuple[Section, ...]:
    """The sections a computation makes: every one that is not optional, and the optional ones named."""
    return tuple(s for s in SECTIONS if not s.optional or s.name in optional)
