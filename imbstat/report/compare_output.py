"""What ``imbstat compare`` shows and writes of a :class:`~imbstat.report.compare.Comparison`.

Rich tables for the terminal, ``compare_scores.csv`` and ``compare_class_shifts.csv``,
and the overlaid figures (``imbstat/plots/compare.py``); the maths is in
``report/compare.py``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.table import Table

from imbstat.report.compare import Comparison
from imbstat.report.terminal import PlainTable
from imbstat.sections import metric_table
from imbstat.sections.shifts import SHIFT_ROWS

__all__ = ["terminal_tables", "write_files"]

LIST_ROWS = 20  # gained / lost classes shown in the terminal


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "" if value is None or not math.isfinite(float(value)) else format(float(value), spec)


def terminal_tables(comparison: Comparison) -> list[Table]:
    """Rich tables: the two datasets, every shift score, classes gained and lost, the largest class shifts."""
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
    return paths + plot_compare(comparison.a.results, comparison.b.results, comparison.to_dict(), out_dir)
