"""The classes section (foreground-foreground class imbalance): instances per class, the long tail.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.scores import shift_1d
from imbstat.sections.shifts import SHIFT_ROWS, class_shifts, histogram_pair, put_score, rank_frequency_shift
from imbstat.sections.spec import Metric, Section, shift_metrics
from imbstat.stats import ClassBalancedLoss, ClassDistribution, class_distribution

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table


# --- compare: shift scores --------------------------------------------------------------------------------------------


def _class_rows(frame: pd.DataFrame, mask: np.ndarray, side: str) -> list[dict[str, Any]]:
    rows = frame[mask].sort_values(f"instances_{side}", ascending=False, kind="stable")
    return [
        {"name": r["name"], "category_id": r[f"category_id_{side}"], "instances": int(r[f"instances_{side}"])}
        for _, r in rows.iterrows()
    ]


def classes_shift(a: ClassDistribution, b: ClassDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    frame, by = class_shifts(a, b)
    n_a, n_b = frame["instances_a"].to_numpy(), frame["instances_b"].to_numpy()
    gained, lost = (n_b > 0) & (n_a == 0), (n_a > 0) & (n_b == 0)
    if n_a.sum() and n_b.sum():
        tv = 0.5 * float(np.abs(frame["share_a"] - frame["share_b"]).sum())
    else:
        tv = math.nan
    scores: dict[str, float] = {
        "tv_distance": tv,
        "w1_score": rank_frequency_shift(n_a, n_b),
        "gained": int(gained.sum()),
        "lost": int(lost.sum()),
    }
    for name in ("objects_per_image", "classes_per_image"):
        put_score(scores, name, histogram_pair(getattr(a, name), getattr(b, name)), shift_1d, "classes", skipped)
    top = frame.head(SHIFT_ROWS)
    top = top[top["change"].abs() > 0]
    return {
        "scores": scores,
        "matched_by": by,
        "gained": _class_rows(frame, gained, "b"),
        "lost": _class_rows(frame, lost, "a"),
        "shifts": [
            {
                "name": r["name"],
                "category_id_a": r["category_id_a"],
                "category_id_b": r["category_id_b"],
                "instances_a": int(r["instances_a"]),
                "instances_b": int(r["instances_b"]),
                "share_a": float(r["share_a"]),
                "share_b": float(r["share_b"]),
                "change": float(r["change"]),
            }
            for _, r in top.iterrows()
        ],
    }


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: ClassDistribution, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import histogram_frame, write_frames

    return write_frames(
        {
            "classes": result.to_frame(),
            "objects_per_image": histogram_frame(result.objects_per_image),
            "classes_per_image": histogram_frame(result.classes_per_image),
        },
        out_dir,
    )


# --- terminal tables --------------------------------------------------------------------------------------------------


def class_table(result: ClassDistribution, balanced: ClassBalancedLoss | None = None) -> Table:
    """Head and tail classes by instances; with ``balanced``, also each class's class-balanced loss weight."""
    from imbstat.report.terminal import HEAD_ROWS, TAIL_ROWS, PlainTable

    frame = result.to_frame()
    table = PlainTable(title=f"classes: {len(frame)} (head and tail, by instances)", title_justify="left")
    for col in ("rank", "category_id", "name", "instances", "images", "group"):
        table.add_column(col, justify="right" if col in ("rank", "instances", "images") else "left")
    weights = balanced.weight[result.order] if balanced is not None else None
    if weights is not None:
        table.add_column(f"weight (β {balanced.beta:g})", justify="right")  # type: ignore[union-attr]
    shown = list(range(min(HEAD_ROWS, len(frame))))
    tail = [i for i in range(max(len(frame) - TAIL_ROWS, 0), len(frame)) if i not in shown]
    for i in shown + tail:
        if tail and i == tail[0] and tail[0] > shown[-1] + 1:
            table.add_row(*["…"] + [""] * (len(table.columns) - 1))
        row = frame.iloc[i]
        weight = [] if weights is None else [f"{weights[i]:.4g}"]
        table.add_row(
            str(i + 1), str(row.category_id), str(row["name"]), f"{row.instances:,}", f"{row.images:,}", row.group,
            *weight,
        )  # fmt: skip
    return table


# --- HTML tables ------------------------------------------------------------------------------------------------------


def classes_html(result: ClassDistribution, scores: str) -> str:
    from imbstat.report.html_parts import HEAD_CLASSES, TAIL_CLASSES, table

    frame = result.to_frame()  # rank–frequency order
    classes = list(zip(frame["name"], frame["instances"], frame["images"], frame["group"], strict=True))
    shown = list(range(min(HEAD_CLASSES, len(classes))))
    shown += [i for i in range(max(len(classes) - TAIL_CLASSES, 0), len(classes)) if i not in shown]
    rows: list[list[Any]] = []
    for i in shown:
        if rows and i != shown[shown.index(i) - 1] + 1:
            rows.append(["…", "", "", "", ""])
        name, instances, images, group = classes[i]
        rows.append([i + 1, name, f"{instances:,}", f"{images:,}", group])
    group_rows = [[g, f"{n:,}"] for g, n in result.group_counts().items()]
    title = f"Classes by instances ({len(classes):,}; head and tail)"
    tables = [
        scores,
        table(["group", "classes"], group_rows, "compact", num=(1,), title="LVIS-style groups"),
        table(["rank", "class", "instances", "images", "group"], rows, "compact", num=(0, 2, 3), title=title),
    ]
    return '<div class="tables">' + "".join(tables) + "</div>"


def terminal_tables(result: ClassDistribution) -> list[Table]:
    from imbstat.report.terminal import scores_table

    return [class_table(result), scores_table("class imbalance", result.to_dict()["scores"])]


def write_figures(result: ClassDistribution, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_classes  # matplotlib: loaded only when figures are written

    return plot_classes(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


CLASS_METRICS = (
    Metric("imbalance_ratio", "max / min instances over the classes present (1 = balanced)", score=False),
    Metric("gini", "Gini coefficient of instances per class"),
    Metric("normalized_entropy", "H / ln K of instances per class (1 = balanced)", score=False),
    Metric("top10_share", "share of the instances in the top 10 % of classes", score=False),
    Metric("w1_score", "instances per class, rank–frequency"),
    Metric("objects_per_image", "objects per image"),
    Metric("classes_per_image", "distinct classes per image"),
)


CLASSES = Section(
    name="classes",
    title="Class imbalance (foreground-foreground)",
    result_type=ClassDistribution,
    command="class-dist",
    compute=lambda ds, run: class_distribution(ds, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("classes_long_tail.png", "Fig. 5a: instances per class in rank–frequency order, coloured by group."),
        ("objects_per_image.png", "Fig. 5b: objects per image."),
        ("classes_per_image.png", "Fig. 5c: distinct classes per image."),
    ),
    terminal=terminal_tables,
    compare=classes_shift,
    html=classes_html,
    metrics=CLASS_METRICS,
    shifts=(
        Metric("tv_distance", "total variation between the class shares, in [0, 1]"),
        Metric("w1_score", "2·W1 between the rank–frequency curves over the union of classes"),
        Metric("gained", "classes with instances only in B", score=False),
        Metric("lost", "classes with instances only in A", score=False),
        *shift_metrics(CLASS_METRICS, "objects_per_image", "classes_per_image"),
    ),
)
