"""The class-balanced section: loss weights by the effective number of samples, a remedy written by class-dist.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbstat.scores import class_change
from imbstat.sections.classes import CLASS_METRICS
from imbstat.sections.repeat_factor import CHANGE_METRICS, CLASS_SHIFTS, change_extras
from imbstat.sections.shifts import SIDES, matched
from imbstat.sections.spec import Metric, Section
from imbstat.stats import ClassBalancedLoss, class_balanced_loss

if TYPE_CHECKING:
    from rich.table import Table


# --- compare: shift scores --------------------------------------------------------------------------------------------


def class_balanced_shift(a: Any, b: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """How far the loss mass per class (weight · instances) of A is from B's."""
    values = matched(a.category_id, a.name, a.loss_mass, b.category_id, b.name, b.loss_mass)
    changes = {f"change_{side}": r.change for side, r in zip(SIDES, (a, b), strict=True)}
    return {"scores": class_change(*values), "beta_a": a.beta, "beta_b": b.beta, **changes}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: ClassBalancedLoss, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import write_frames

    return write_frames({"class_balanced": result.to_frame()}, out_dir)


# --- terminal tables --------------------------------------------------------------------------------------------------


def class_balanced_table(result: ClassBalancedLoss) -> Table:
    """The class scores of the loss mass per class (weight · instances) under the class-balanced weights."""
    from imbstat.report.terminal import scores_table

    return scores_table(f"class-balanced loss (β {result.beta:g}): scores of weight · instances", result.scores)


# --- HTML tables ------------------------------------------------------------------------------------------------------


def class_balanced_html(result: ClassBalancedLoss, scores: str) -> str:
    """Every class's weight, to paste into a config, and the scores of the loss mass per class."""
    from imbstat.report.html_parts import e, table

    body = result.to_dict()
    rows = [[c.get("name", ""), c.get("category_id"), f"{c.get('instances', 0):,}", f"{c.get('weight') or 0:.4g}"]
            for c in sorted(body.get("per_class") or [], key=lambda c: -(c.get("instances") or 0))]  # fmt: skip
    head = (
        f'<p class="legend">β = {e(body.get("beta"))}: w_c ∝ (1 − β) / (1 − β^n_c), normalised to sum to the '
        "number of classes with instances (0 for a class without); the scores are those of weight · instances.</p>"
    )
    tables = [scores, table(["class", "id", "instances", "weight"], rows, "compact", num=(2, 3), title="Weights")]
    return head + '<div class="tables">' + "".join(tables) + "</div>"


def write_figures(result: ClassBalancedLoss, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_class_balanced  # matplotlib: loaded only when figures are written

    return plot_class_balanced(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


_CLASS_BALANCED_METRICS = tuple(
    Metric(m.name, m.meaning.replace("instances", "weight · instances"), m.score) for m in CLASS_METRICS[:5]
)


CLASS_BALANCED = Section(
    name="class_balanced",
    title="Remedy: class-balanced loss weights (effective number)",
    result_type=ClassBalancedLoss,
    command="class-dist",
    compute=lambda ds, run: class_balanced_loss(ds, beta=run.class_balanced, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("class_balanced_weights.png", "Class-balanced weights against instances, and weight · instances per class."),
    ),
    terminal=lambda r: [class_balanced_table(r)],
    compare=class_balanced_shift,
    html=class_balanced_html,
    metrics=(*_CLASS_BALANCED_METRICS, *CHANGE_METRICS),
    shifts=CLASS_SHIFTS,
    extra_metrics=change_extras,
    optional="run with --class-balanced BETA",
)
