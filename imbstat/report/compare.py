"""Compare two datasets: how far each distribution moved between them (docs/design.md, 'Compare').

Works on two reports as result objects (:class:`imbstat.Results`: a saved
``report.json`` or a report document read back, or a whole analysis computed now),
so a side can be a dataset computed now or a report written earlier. Every
distribution present on both sides gets a *shift score* on the scale of its
imbalance score, so that comparing against a uniform distribution gives back the
imbalance score itself:

- ordered 1-D histograms: ``2 · W1`` between the two normalised histograms, bins
  at ``t_i = i / (K - 1)`` (:func:`imbstat.scores.shift_1d`). In [0, 2]: 0 when
  the two are the same, at most 1 when either is uniform, 2 only for point
  masses at opposite ends. Integer histograms (objects per image, ...) of
  different lengths are padded with empty bins, so K is the longer length;
- G×G maps: exact 2-D W1 over the corner-mass W1 that the imbalance score
  divides by (:func:`imbstat.scores.shift_2d`), in [0, about 1.85];
- classes: ``tv_distance`` = ``0.5 · Σ_c |p_A(c) - p_B(c)|`` over the union of
  classes (p = share of instances), in [0, 1]; ``w1_score`` = ``2 · W1`` between
  the two rank–frequency distributions over the union (the shape of the long
  tail, whichever classes hold it); ``gained`` / ``lost`` = classes with
  instances only in B / only in A.

The comparison document has the head ``imbstat_version``, ``schema_version``,
``command`` ("compare"), ``a`` and ``b`` (the two ``dataset`` blocks),
``options`` and ``skipped`` ({"section.name": why}), then the report's section
names ("classes", "scale", "location", and "anchors" when both sides have
them), each with ``scores`` {name: shift} and the two sides' own imbalance
scores ``scores_a`` and ``scores_b``; so :meth:`Comparison.metrics`
names every shift ``compare.<section>.<name>``. Reports with several anchor
presets side by side also have ``anchors.presets``: {key: the same, that preset
against itself} for every key on both sides (``shift.anchors_shift``).

This module is the comparison and what ``imbstat compare`` shows and writes of it (:func:`terminal_tables`,
:func:`write_files`: rich tables, ``compare_scores.csv``, ``compare_class_shifts.csv`` and the overlaid
figures of ``imbstat/plots/compare.py``); each section's shift is its slice's ``compare``
(``imbstat/sections/<name>.py``), the maths they share :mod:`imbstat.sections.shifts`, and reading
files ``report/reading.py``. ``imbstat.compare`` is this module's, loaded when first named
(``imbstat/__init__.py``), so that ``import imbstat`` loads nothing of ``imbstat.report``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbstat.analysis import Results
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.report.document import envelope, json_float
from imbstat.report.metrics import comparison_metrics
from imbstat.report.reading import REPORT_COMMAND, read_report
from imbstat.sections import SECTIONS, metric_table
from imbstat.sections.shifts import SHIFT_ROWS, class_shifts, class_union, only_in

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table
else:
    pd = LazyModule("pandas")  # imported where a table is built

__all__ = [
    "Comparison",
    "class_shifts",
    "class_union",
    "compare",
    "read_report",
    "side",
    "terminal_tables",
    "write_files",
]

COMMAND = "compare"


@dataclass(frozen=True)
class Comparison:
    """Two reports and how far each distribution moved from A to B.

    ``sections`` maps each section both sides have to its part of the comparison
    document: ``scores`` {name: shift}, the section's own fields (classes gained,
    lost and the largest share changes), and the two sides' imbalance scores
    ``scores_a`` and ``scores_b``; ``skipped`` maps ``section.name`` (or a section
    present on one side only) to why it was not scored.
    """

    a: Results
    b: Results
    sections: dict[str, dict[str, Any]]
    skipped: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``imbstat compare`` (layout in the module docstring)."""
        body = {
            "a": self.a.dataset,
            "b": self.b.dataset,
            "options": {"a": self.a.options, "b": self.b.options},
            "skipped": self.skipped,
        }
        return envelope(COMMAND, body | self.sections)

    def to_frame(self) -> pd.DataFrame:
        """One row per shift score: section, distribution, shift, and the two sides' own imbalance scores;
        a section compared preset by preset (anchors, ``presets``) adds rows of section ``anchors.presets.<key>``."""
        parts = [*self.sections.items()]
        parts += [(f"{name}.presets.{key}", shifted) for name, body in self.sections.items()
                  for key, shifted in body.get("presets", {}).items()]  # fmt: skip
        rows = [
            {
                "section": name,
                "distribution": key,
                "shift": json_float(value),
                "score_a": json_float(body["scores_a"].get(key)),
                "score_b": json_float(body["scores_b"].get(key)),
            }
            for name, body in parts
            for key, value in body["scores"].items()
        ]
        return pd.DataFrame(rows, columns=["section", "distribution", "shift", "score_a", "score_b"])

    def class_shifts(self) -> pd.DataFrame:
        """Every class of either side with its instances and shares on both, largest share change first."""
        return class_shifts(self.a.views["classes"], self.b.views["classes"])[0]

    def metrics(self) -> dict[str, float]:
        """Every shift as an audit metric, ``compare.<section>.<name>``."""
        return comparison_metrics(self.sections)


def side(value: Any, name: str = "A") -> Results:
    """One side of a comparison as :class:`~imbstat.Results`.

    ``value`` is :class:`~imbstat.Results` (a whole analysis computed now, or a report read
    back); a report document (a dict with ``"command": "report"``); or the path of a saved
    ``report.json``.
    """
    if isinstance(value, Results):
        return value
    if isinstance(value, str | Path):
        doc = read_report(value)
        if doc is None:
            raise ImbstatError(
                "not a saved imbstat report; expected the report.json of 'imbstat report' "
                "(compute a dataset's results first to compare it)",
                value,
            )
        return Results.from_document(doc, value)
    if isinstance(value, dict):
        if value.get("command") != REPORT_COMMAND:
            raise ImbstatError(f"compare: side {name} is not a report document")
        return Results.from_document(value, f"side {name}")
    raise ImbstatError(
        f"compare: side {name} is of type {type(value).__name__}; expected a report.json path, a report document, "
        "or the results of a computation"
    )


def compare(a: Any, b: Any) -> Comparison:
    """How far each distribution moved from dataset A to dataset B.

    Each side is the path of a saved ``report.json``, a report document, the
    results of a whole analysis computed now or read back (:class:`~imbstat.Results`; see
    :func:`side`). A section on one side only (``anchors``) and a distribution
    missing on one side, or binned differently on the two sides (float histograms
    with other edges, maps on other grids), is not scored; it is listed in
    ``skipped`` with the reason. ``compare(a, b).to_dict()`` is the JSON of
    ``imbstat compare``.
    """
    report_a, report_b = side(a, "A"), side(b, "B")
    views_a, views_b = report_a.views, report_b.views
    skipped: dict[str, str] = {}
    sections: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        result_a, result_b = views_a.get(section.name), views_b.get(section.name)
        if result_a is not None and result_b is not None:
            shifted = section.compare(result_a, result_b, skipped)
            sections[section.name] = shifted | {"scores_a": dict(result_a.scores), "scores_b": dict(result_b.scores)}
        elif result_a is not None or result_b is not None:  # an optional section on one side only
            skipped[section.name] = only_in(result_a)
    return Comparison(report_a, report_b, sections, skipped)


# --- what imbstat compare shows and writes --------------------------------------------------------------------------

LIST_ROWS = 20  # gained / lost classes shown in the terminal


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "" if value is None or not math.isfinite(float(value)) else format(float(value), spec)


def terminal_tables(comparison: Comparison) -> list[Table]:
    """Rich tables: the two datasets, every shift score, classes gained and lost, the largest class shifts."""
    from imbstat.report.terminal import PlainTable  # rich: loaded only where tables are shown

    head = PlainTable(title="compare", title_justify="left")
    for col, justify in (("", "left"), ("A", "right"), ("B", "right")):
        head.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    a, b = comparison.a.dataset, comparison.b.dataset
    for key in ("path", "format", "images", "boxes", "categories"):
        head.add_row(key, *(f"{s[key]:,}" if isinstance(s.get(key), int) else str(s.get(key, "")) for s in (a, b)))

    scores = PlainTable(
        title="shift between A and B (1-D: 2·W1; 2-D: W1 / corner W1; 0 = same) and each side's imbalance score",
        title_justify="left",
    )
    for col in ("distribution", "shift", "A score", "B score"):
        scores.add_column(col, justify="left" if col == "distribution" else "right")
    frame = comparison.to_frame()
    known = metric_table()
    for row in frame.itertuples():
        shift = known.get(f"compare.{row.section}.{row.distribution}")
        if shift is not None and not shift.score:  # a number of classes (gained, lost), not a shift
            continue
        scores.add_row(f"{row.section}.{row.distribution}", _fmt(row.shift), _fmt(row.score_a), _fmt(row.score_b))
    for key, why in comparison.skipped.items():
        scores.add_row(key, f"skipped: {why}", "", "")

    classes = comparison.sections["classes"]
    changes = PlainTable(
        title=f"classes gained (only in B): {len(classes['gained'])}, lost (only in A): {len(classes['lost'])}"
        f" — matched by {classes['matched_by']}",
        title_justify="left",
    )
    for col, justify in (("change", "left"), ("class", "left"), ("instances", "right")):
        changes.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, rows in (("gained", classes["gained"]), ("lost", classes["lost"])):
        for r in rows[:LIST_ROWS]:
            changes.add_row(label, str(r["name"]), f"{r['instances']:,}")
        if len(rows) > LIST_ROWS:
            changes.add_row(label, f"… and {len(rows) - LIST_ROWS} more", "")

    shifts = PlainTable(title=f"largest class share changes (top {SHIFT_ROWS})", title_justify="left")
    for col in ("class", "A instances", "A share", "B instances", "B share", "change"):
        shifts.add_column(col, justify="left" if col == "class" else "right")
    for r in classes["shifts"]:
        shifts.add_row(
            str(r["name"]),
            f"{r['instances_a']:,}",
            _fmt(r["share_a"], ".2%"),
            f"{r['instances_b']:,}",
            _fmt(r["share_b"], ".2%"),
            _fmt(r["change"] * 100, "+.2f") + " pp",
        )
    return [head, scores] + ([changes] if changes.row_count else []) + ([shifts] if shifts.row_count else [])


def write_files(comparison: Comparison, out_dir: Path) -> list[Path]:
    """``compare_scores.csv``, ``compare_class_shifts.csv`` (every class) and the overlaid figures."""
    from imbstat.plots import plot_compare
    from imbstat.report.csv_tables import write_frames

    frames = {"compare_scores": comparison.to_frame(), "compare_class_shifts": comparison.class_shifts()}
    paths = write_frames(frames, out_dir)
    return paths + plot_compare(comparison.a.views, comparison.b.views, comparison.to_dict(), out_dir)
