"""The eval section: imbalance joined to accuracy, a detector's COCO AP per class against the class's frequency.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift (per-class AP change), CSV tables, figures, terminal and HTML tables. Renderers import rich, the
report's helpers and matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none
of them. Computed when a report is given detections (``imbstat report GT --detections DETS [--train T]``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.data import Dataset
from imbstat.sections.shifts import SIDES, class_union
from imbstat.sections.spec import Metric, Run, Section
from imbstat.stats.eval import GROUPS, SIZES, Evaluation, evaluate_with

if TYPE_CHECKING:
    from rich.table import Table

SHIFT_ROWS = 20  # classes of the largest AP change kept in a comparison


# --- compare: the per-class AP change -------------------------------------------------------------------------------


def eval_shift(a: Evaluation, b: Evaluation, skipped: dict[str, str]) -> dict[str, Any]:
    """The change B − A of AP, AP50, the weighted AP, each group's AP and Spearman's rho; per class (matched by
    name, else by id, as the classes section matches them) the AP change, the largest first."""
    scores = {name: b.scores[name] - a.scores[name] for name in a.scores}

    def rows(r: Evaluation) -> list[dict[str, Any]]:  # the count column carries row + 1 (0: absent on a side)
        pairs = enumerate(zip(r.category_id, r.name, strict=True))
        return [{"category_id": c, "name": n, "instances": k + 1} for k, (c, n) in pairs]

    frame, by = class_union(rows(a), rows(b))
    ap = {}
    for side, r in zip(SIDES, (a, b), strict=True):
        row = frame[f"instances_{side}"].to_numpy(np.int64)
        ap[side] = np.where(row > 0, np.append(r.ap, math.nan)[row - 1], math.nan)
    change = ap["b"] - ap["a"]
    order = np.argsort(-np.nan_to_num(np.abs(change), nan=-1.0), kind="stable")[:SHIFT_ROWS]
    per_class = [
        {"name": frame["name"].iloc[i], "category_id_a": frame["category_id_a"].iloc[i],
         "category_id_b": frame["category_id_b"].iloc[i], "ap_a": _null(ap["a"][i]), "ap_b": _null(ap["b"][i]),
         "change": _null(change[i])}
        for i in order
    ]  # fmt: skip
    return {"scores": scores, "matched_by": by, "per_class": per_class}


def _null(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: Evaluation, out_dir: Path) -> list[Path]:
    """``eval_classes.csv`` (one row per class, by training frequency), ``eval_groups.csv``, ``eval_size.csv``
    and ``eval_tp_iou.csv`` (the histogram's bins, overall and per group)."""
    import pandas as pd

    from imbstat.report.csv_tables import write_frames

    groups = pd.DataFrame([{"group": g, **body} for g, body in result.groups.items()])
    size = pd.DataFrame({"size": SIZES, "gt_share": result.size_share,
                         "ap": [result.summary[f"ap_{s}"] for s in SIZES], "ar": result.size_ar})  # fmt: skip
    edges = result.tp_iou["overall"].edges
    tp_iou = pd.DataFrame({"iou_low": edges[:-1], "iou_high": edges[1:],
                           **{g: h.counts for g, h in result.tp_iou.items()}})  # fmt: skip
    frames = {"eval_classes": result.to_frame(), "eval_groups": groups, "eval_size": size, "eval_tp_iou": tp_iou}
    return write_frames(frames, out_dir)


def write_figures(result: Evaluation, out_dir: Path) -> list[Path]:
    from imbstat.plots.eval import plot_eval  # matplotlib: loaded only when figures are written

    return plot_eval(result, out_dir)


# --- terminal tables --------------------------------------------------------------------------------------------------


def eval_tables(result: Evaluation) -> list[Table]:
    """Every class by training frequency (instances, images, group, AP, AP50, recall), then the summary."""
    from imbstat.report.terminal import PlainTable, fmt_number

    def ap(value: float) -> str:
        return "—" if math.isnan(value) else f"{value:.3f}"

    frame = result.to_frame()
    what = "training" if result.basis == "train" else "GT"
    title = f"AP per class by {what} frequency ({len(frame)} classes; instances, images and group of the {what} set)"
    table = PlainTable(title=title, title_justify="left")
    for col in ("name", "instances", "images", "group", "AP", "AP50", "recall"):
        table.add_column(col, justify="left" if col in ("name", "group") else "right")
    prefix = "train_" if result.basis == "train" else ""
    for _, row in frame.iterrows():
        table.add_row(str(row["name"]), f"{int(row[f'{prefix}instances']):,}", f"{int(row[f'{prefix}images']):,}",
                      row.group, ap(row.ap), ap(row.ap50), ap(row.recall))  # fmt: skip
    numbers = PlainTable(title="accuracy and frequency", title_justify="left")
    numbers.add_column("measure")
    numbers.add_column("value", justify="right")
    names = {"ap": "AP", "ap50": "AP50", "ap75": "AP75", "ap_small": "AP small", "ap_medium": "AP medium",
             "ap_large": "AP large", "ar1": "AR@1", "ar10": "AR@10", "ar100": f"AR@{result.max_dets}"}  # fmt: skip
    for key, label in names.items():
        numbers.add_row(label, ap(result.summary[key]))
    numbers.add_row("mean per-class AP", ap(result.mean_ap))
    numbers.add_row("instance-weighted per-class AP", ap(result.weighted_ap))
    for g, body in result.groups.items():
        numbers.add_row(f"AP {g} ({body['classes_with_ap']} of {body['classes']} classes)", ap(body["ap"]))
    corr = result.frequency_correlation
    numbers.add_row(f"Spearman AP vs {corr['x']} ({corr['classes']} classes)", fmt_number(corr["spearman"]))
    numbers.add_row("AP per decade of instances", fmt_number(corr["slope_per_decade"]))
    anchors = result.anchor_correlation
    if anchors is not None:
        what = f"({anchors['preset']}, {anchors['classes']} classes)"
        numbers.add_row(f"Spearman AP vs foreground anchors per GT {what}", fmt_number(anchors["foreground_per_gt"]))
        numbers.add_row(f"Spearman AP vs share of GTs without one {what}", fmt_number(anchors["no_foreground_share"]))
    for j, s in enumerate(SIZES):
        numbers.add_row(f"{s}: GT share, AR", f"{fmt_number(result.size_share[j])}, {ap(result.size_ar[j])}")
    numbers.add_row("detections read, used", f"{result.read:,}, {int(result.detections.sum()):,}")
    for reason, n in result.skipped.items():
        numbers.add_row(f"left out: {reason}", f"{n:,}")
    return [table, numbers]


# --- HTML tables ------------------------------------------------------------------------------------------------------


def eval_html(result: Evaluation, scores: str) -> str:
    """The eval section's tables from its result (``Evaluation.from_dict`` of a report's JSON)."""
    from imbstat.report.html_parts import fixed, table

    frame = result.to_frame()
    prefix = "train_" if result.basis == "train" else ""
    rows = [[r["name"], f"{int(r[f'{prefix}instances']):,}", f"{int(r[f'{prefix}images']):,}", r.group, fixed(r.ap),
             fixed(r.ap50), fixed(r.recall)] for _, r in frame.iterrows()]  # fmt: skip
    groups = [[g, f"{b['classes_with_ap']} of {b['classes']}", fixed(b["ap"])] for g, b in result.groups.items()]
    size = [[s, fixed(result.size_share[j]), fixed(result.summary[f"ap_{s}"]), fixed(result.size_ar[j])]
            for j, s in enumerate(SIZES)]  # fmt: skip
    what = "training" if result.basis == "train" else "GT"
    tables = [
        scores,
        table(["group", "classes with AP", "AP"], groups, "compact", num=(1, 2), title="LVIS groups"),
        table(["size", "GT share", "AP", "AR"], size, "compact", num=(1, 2, 3), title="By object size"),
        table(["class", f"{what} instances", f"{what} images", "group", "AP", "AP50", "recall"], rows, "compact",
              num=(1, 2, 4, 5, 6), title=f"Classes by {what} frequency ({len(rows)})"),
    ]  # fmt: skip
    return '<div class="tables">' + "".join(tables) + "</div>"


# --- the section ------------------------------------------------------------------------------------------------------


EVAL_NEEDED = "run with --detections DETS (COCO results), and --train T for training frequencies"


def _eval(ds: Dataset, run: Run) -> Evaluation:
    assert run.evaluation is not None, "the eval section is computed only when asked for"
    return evaluate_with(ds, run.evaluation)


def _extras(result: Evaluation) -> dict[str, float]:
    groups, corr = result.groups, result.frequency_correlation
    return {
        "mean_ap": result.mean_ap,
        **{f"groups.{g}.ap": groups[g]["ap"] for g in GROUPS},
        "frequency_correlation.spearman": corr["spearman"],
        "frequency_correlation.slope_per_decade": corr["slope_per_decade"],
    }


_METRICS = (
    Metric("ap", "COCO AP (IoU 0.50:0.95, area all)", score=False),
    Metric("ap50", "COCO AP at IoU 0.50", score=False),
    Metric("ap75", "COCO AP at IoU 0.75", score=False),
    Metric("weighted_ap", "per-class AP weighted by GT instances", score=False),
    *(Metric(f"ap_{g}", f"mean per-class AP of the {g} classes (LVIS rule on training images)", score=False)
      for g in GROUPS),
    Metric("spearman", "Spearman's rho between per-class AP and the class's (training) instances", score=False),
    Metric("mean_ap", "mean per-class AP (classes with a GT)", score=False),
    *(Metric(f"groups.{g}.ap", f"mean per-class AP of the {g} classes", score=False, same_as=f"ap_{g}")
      for g in GROUPS),
    Metric("frequency_correlation.spearman", "Spearman's rho between per-class AP and class frequency",
           score=False, same_as="spearman"),
    Metric("frequency_correlation.slope_per_decade", "least-squares AP per decade of class instances", score=False),
)  # fmt: skip

EVAL = Section(
    name="eval",
    title="Accuracy against class frequency (COCO AP per class)",
    result_type=Evaluation,
    command="eval",
    compute=_eval,
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("eval_ap_frequency.png", "AP per class against training instances (log), by LVIS group, with a fitted line."),
        ("eval_groups.png", "Mean per-class AP of the rare, common and frequent classes."),
        ("eval_size.png", "AP and AR by object size, beside the share of GTs of that size."),
        ("eval_tp_iou.png", "IoU of each true positive at IoU 0.5 with its matched GT, overall and per group."),
    ),
    terminal=eval_tables,
    compare=eval_shift,
    html=eval_html,
    metrics=_METRICS,
    shifts=tuple(Metric(m.name, f"change B − A of: {m.meaning}", score=False) for m in _METRICS[:8]),
    extra_metrics=_extras,
    optional=EVAL_NEEDED,
    shardable=False,  # AP ranks every detection of a class over the whole file
)
