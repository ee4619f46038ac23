"""Compare two datasets: how far each distribution moved between them (DESIGN.md §4, "Compare").

Works on two report documents (``Results.document()`` or a saved ``report.json``),
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
scores ``scores_a`` and ``scores_b``; so ``metrics(doc, prefix="compare.")``
names every shift ``compare.<section>.<name>``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.report.document import envelope
from imbstat.report.sections import SECTIONS, metric_table
from imbstat.report.shift import SHIFT_ROWS, SIDES, class_shifts, class_union, only_in
from imbstat.report.terminal import PlainTable

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

__all__ = ["class_shifts", "class_union", "compare", "read_report", "score_frame", "terminal_tables", "write_files"]

COMMAND = "compare"
REPORT_COMMAND = "report"
LIST_ROWS = 20  # gained / lost classes shown in the terminal
PEEK_BYTES = 65536  # a saved report names imbstat_version in its first lines; a COCO file does not


def read_report(path: str | Path) -> dict[str, Any] | None:
    """The saved report document at ``path``, or None when ``path`` is not one (a dataset to load).

    A saved report is a ``.json`` file naming ``"imbstat_version"`` in its first
    :data:`PEEK_BYTES` bytes (where ``imbstat report`` and ``imbstat demo`` write
    it first); a COCO file has no such key, so the rest of it is never read here.
    Raises :class:`ImbstatError` for an imbstat document of another command.
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            head = f.read(PEEK_BYTES)
        if not re.search(rb'"imbstat_version"\s*:', head):
            return None
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise ImbstatError(f"cannot read: {e.strerror}", path) from None
    except ValueError as e:
        raise ImbstatError(f"not valid JSON: {e}", path) from None
    except RecursionError:
        raise ImbstatError("JSON nested too deeply; expected an imbstat report document", path) from None
    if not isinstance(doc, dict) or doc.get("command") != REPORT_COMMAND:
        command = doc.get("command") if isinstance(doc, dict) else None
        raise ImbstatError(
            f"an imbstat {command!r} document, not a report; compare takes a dataset "
            "or the report.json of 'imbstat report' or 'imbstat demo'",
            path,
        )
    return doc


def compare(doc_a: dict[str, Any], doc_b: dict[str, Any]) -> dict[str, Any]:
    """The comparison document of two report documents (layout in the module docstring).

    A distribution missing on one side, or binned differently on the two sides
    (float histograms with other edges, maps on other grids), is not scored; it
    is listed in ``skipped`` with the reason.
    """
    for side, doc in zip(SIDES, (doc_a, doc_b), strict=True):
        _check_report(doc, side)
    skipped: dict[str, str] = {}
    sections: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        body_a, body_b = doc_a.get(section.name), doc_b.get(section.name)
        if isinstance(body_a, dict) and isinstance(body_b, dict):
            sections[section.name] = section.compare(body_a, body_b, skipped)
        elif isinstance(body_a, dict) or isinstance(body_b, dict):  # an optional section on one side only
            skipped[section.name] = only_in(body_a if isinstance(body_a, dict) else None)
    for name, section in sections.items():
        section["scores_a"] = dict(doc_a[name].get("scores") or {})
        section["scores_b"] = dict(doc_b[name].get("scores") or {})
    return envelope(
        COMMAND,
        {
            "a": doc_a.get("dataset", {}),
            "b": doc_b.get("dataset", {}),
            "options": {"a": doc_a.get("options", {}), "b": doc_b.get("options", {})},
            "skipped": skipped,
            **sections,
        },
    )


def _check_report(doc: Any, side: str) -> None:
    if not isinstance(doc, dict) or doc.get("command") != REPORT_COMMAND:
        raise ImbstatError(f"compare: side {side.upper()} is not a report document")
    missing = [s.name for s in SECTIONS if not s.optional and not isinstance(doc.get(s.name), dict)]
    if missing:
        raise ImbstatError(f"compare: the report of side {side.upper()} has no {', '.join(missing)} section")


# --- rendering -----------------------------------------------------------------------------------


def score_frame(compared: dict[str, Any]) -> pd.DataFrame:
    """One row per shift score: section, distribution, shift, and the two sides' own imbalance scores."""
    rows = []
    for section in SECTIONS:
        body = compared.get(section.name)
        if not isinstance(body, dict):
            continue
        for name, value in body["scores"].items():
            rows.append(
                {
                    "section": section.name,
                    "distribution": name,
                    "shift": _float(value),
                    "score_a": _float(body["scores_a"].get(name)),
                    "score_b": _float(body["scores_b"].get(name)),
                }
            )
    return pd.DataFrame(rows, columns=["section", "distribution", "shift", "score_a", "score_b"])


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "" if value is None or not math.isfinite(float(value)) else format(float(value), spec)


def terminal_tables(compared: dict[str, Any]) -> list[Table]:
    """Rich tables: the two datasets, every shift score, classes gained and lost, the largest class shifts."""
    head = PlainTable(title="compare", title_justify="left")
    for col, justify in (("", "left"), ("A", "right"), ("B", "right")):
        head.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    a, b = compared["a"], compared["b"]
    for key in ("path", "format", "images", "boxes", "categories"):
        head.add_row(key, *(f"{s[key]:,}" if isinstance(s.get(key), int) else str(s.get(key, "")) for s in (a, b)))

    scores = PlainTable(
        title="shift between A and B (1-D: 2·W1; 2-D: W1 / corner W1; 0 = same) and each side's imbalance score",
        title_justify="left",
    )
    for col in ("distribution", "shift", "A score", "B score"):
        scores.add_column(col, justify="left" if col == "distribution" else "right")
    frame = score_frame(compared)
    known = metric_table()
    for row in frame.itertuples():
        shift = known.get(f"compare.{row.section}.{row.distribution}")
        if shift is not None and not shift.score:  # a number of classes (gained, lost), not a shift
            continue
        scores.add_row(f"{row.section}.{row.distribution}", _fmt(row.shift), _fmt(row.score_a), _fmt(row.score_b))
    for key, why in compared.get("skipped", {}).items():
        scores.add_row(key, f"skipped: {why}", "", "")

    classes = compared["classes"]
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


def write_files(doc_a: dict[str, Any], doc_b: dict[str, Any], compared: dict[str, Any], out_dir: Path) -> list[Path]:
    """``compare_scores.csv``, ``compare_class_shifts.csv`` (every class) and the overlaid figures."""
    from imbstat.plots import plot_compare
    from imbstat.report.tables import write_frames

    frames = {"compare_scores": score_frame(compared), "compare_class_shifts": class_shifts(doc_a, doc_b)[0]}
    paths = write_frames(frames, out_dir)
    return paths + plot_compare(doc_a, doc_b, compared, out_dir)
