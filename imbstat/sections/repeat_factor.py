"""The repeat-factor section (LVIS): one resampled epoch of the classes, a remedy written by class-dist.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.scores import class_change, shift_1d
from imbstat.sections.classes import CLASS_METRICS, CLASSES
from imbstat.sections.shifts import SIDES, matched
from imbstat.sections.spec import Metric, Section, shift_metrics
from imbstat.stats import ClassBalancedLoss, RepeatFactorSampling, repeat_factor_sampling
from imbstat.text import fmt_metric

if TYPE_CHECKING:
    from rich.table import Table


# --- compare: shift scores --------------------------------------------------------------------------------------------


def _padded_shift(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`shift_1d` of two integer-bin histograms of different lengths, padded with empty bins."""
    size = max(a.size, b.size)
    return shift_1d(np.pad(a, (0, size - a.size)), np.pad(b, (0, size - b.size)))


def repeat_factor_shift(a: Any, b: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """How far one resampled epoch of A is from one of B (each with its own threshold)."""
    values = matched(a.category_id, a.name, a.expected_instances, b.category_id, b.name, b.expected_instances)
    scores = class_change(*values)
    for name in ("objects_per_image", "classes_per_image"):
        scores[name] = _padded_shift(getattr(a, name), getattr(b, name))
    sides = zip(SIDES, (a, b), strict=True)
    changes = {f"change_{side}": r.change for side, r in sides}
    return {"scores": scores, "threshold_a": a.threshold, "threshold_b": b.threshold, **changes}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: RepeatFactorSampling, out_dir: Path) -> list[Path]:
    """Per class: r_c, expected instances and images per resampled epoch, and the dataset's own."""
    from imbstat.report.csv_tables import write_frames

    return write_frames({"repeat_factor": result.to_frame()}, out_dir)


# --- terminal tables --------------------------------------------------------------------------------------------------


def repeat_factor_tables(result: RepeatFactorSampling) -> list[Table]:
    """The head and tail classes before and after one resampled epoch, and every class score before and after."""
    from imbstat.report.terminal import HEAD_ROWS, TAIL_ROWS, PlainTable, fmt_number

    frame = result.to_frame()
    classes = PlainTable(
        title=f"repeat-factor sampling, threshold {result.threshold:g}: epoch of {result.epoch_images:,.1f} images "
        f"for {result.num_images:,} (expected instances and images per epoch)",
        title_justify="left",
    )
    for col in ("rank", "name", "r_c", "instances", "after", "images", "after"):
        classes.add_column(col, justify="left" if col == "name" else "right")
    shown = list(range(min(HEAD_ROWS, len(frame))))
    shown += [i for i in range(max(len(frame) - TAIL_ROWS, 0), len(frame)) if i not in shown]
    for n, i in enumerate(shown):
        if n and i != shown[n - 1] + 1:
            classes.add_row("…", "", "", "", "", "", "")
        r = frame.iloc[i]
        classes.add_row(str(i + 1), str(r["name"]), fmt_number(r.repeat_factor), f"{r.instances_before:,}",
                        f"{r.instances:,.1f}", f"{r.images_before:,}", f"{r.images:,.1f}")  # fmt: skip
    scores = PlainTable(title="class scores before and after repeat-factor sampling", title_justify="left")
    for col in ("measure", "before", "after"):
        scores.add_column(col, justify="left" if col == "measure" else "right")
    for name, after in result.scores.items():
        scores.add_row(name, fmt_number(result.scores_before.get(name, float("nan"))), fmt_number(after))
    return [classes, scores]


# --- HTML tables ------------------------------------------------------------------------------------------------------


def repeat_factor_html(result: RepeatFactorSampling, scores: str) -> str:
    """Scores before and after, and the head and tail classes with r_c and expected counts per epoch."""
    from imbstat.report.html_parts import HEAD_CLASSES, TAIL_CLASSES, e, fixed, table

    body = result.to_dict()
    before = body.get("scores_before") or {}
    score_rows = [[k, fixed(before.get(k)), fixed(v)] for k, v in (body.get("scores") or {}).items()]
    per_class = sorted(body.get("per_class") or [], key=lambda c: -(c.get("instances_before") or 0))
    shown = list(range(min(HEAD_CLASSES, len(per_class))))
    shown += [i for i in range(max(len(per_class) - TAIL_CLASSES, 0), len(per_class)) if i not in shown]
    rows: list[list[Any]] = []
    for n, i in enumerate(shown):
        if n and i != shown[n - 1] + 1:
            rows.append(["…", "", "", "", "", "", ""])
        c = per_class[i]
        factor = c.get("repeat_factor")
        rows.append([i + 1, c.get("name", ""), "n/a" if factor is None else f"{factor:.3f}",
                     f"{c.get('instances_before', 0):,}", f"{c.get('instances') or 0:,.1f}",
                     f"{c.get('images_before', 0):,}", f"{c.get('images') or 0:,.1f}"])  # fmt: skip
    header = ["rank", "class", "r_c", "instances", "per epoch", "images", "per epoch"]
    head = (
        f'<p class="legend">Threshold {e(body.get("threshold"))}: one resampled epoch is '
        f"{e(fmt_metric('', body.get('epoch_images') or 0))} images for {e(format(body.get('num_images') or 0, ','))} "
        "(expected numbers; r_c = max(1, √(T / f_c)), an image repeated by its rarest class's factor).</p>"
    )
    tables = [
        scores,
        table(["measure", "before", "after"], score_rows, "compact", num=(1, 2), title="Class scores"),
        table(header, rows, "compact", num=(0, 2, 3, 4, 5, 6), title="Classes by instances (head and tail)"),
    ]
    return head + '<div class="tables">' + "".join(tables) + "</div>"


def write_figures(result: RepeatFactorSampling, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_repeat_factor  # matplotlib: loaded only when figures are written

    return plot_repeat_factor(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


def change_extras(result: RepeatFactorSampling | ClassBalancedLoss) -> dict[str, Any]:
    found = {f"change.{k}": v for k, v in result.change.items()}
    return found | ({"epoch_images": result.epoch_images} if isinstance(result, RepeatFactorSampling) else {})


CHANGE_METRICS = (
    Metric("change.tv_distance", "total variation between the class shares before and after, in [0, 1]"),
    Metric("change.w1_score", "2·W1 between the rank–frequency curves before and after"),
)


_REPEAT_FACTOR_METRICS = tuple(Metric(m.name, f"{m.meaning}, one resampled epoch", m.score) for m in CLASS_METRICS)


CLASS_SHIFTS = CLASSES.shifts[:2]  # tv_distance, w1_score: the classes' own shifts


REPEAT_FACTOR = Section(
    name="repeat_factor",
    title="Remedy: repeat-factor sampling (LVIS)",
    result_type=RepeatFactorSampling,
    command="class-dist",
    compute=lambda ds, run: repeat_factor_sampling(ds, threshold=run.repeat_factor, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(raw=bool(ds.shard)),  # a shard's carries its image × class matrix for merge
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        (
            "repeat_factor_instances.png",
            "Instances per class before and after one epoch of repeat-factor sampling (expected), with r_c.",
        ),
    ),
    terminal=repeat_factor_tables,
    compare=repeat_factor_shift,
    html=repeat_factor_html,
    metrics=(
        *_REPEAT_FACTOR_METRICS,
        Metric("epoch_images", "images in one resampled epoch, Σ r_i (expected)", score=False),
        *CHANGE_METRICS,
    ),
    shifts=(*CLASS_SHIFTS, *shift_metrics(CLASS_METRICS, "objects_per_image", "classes_per_image")),
    extra_metrics=change_extras,
    optional="run with --repeat-factor T",
)
