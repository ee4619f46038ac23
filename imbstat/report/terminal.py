"""Compact rich tables for the terminal; the JSON report holds everything."""

from __future__ import annotations

import numpy as np
from rich.table import Table

from imbstat.data import Dataset, Reason
from imbstat.stats import ClassDistribution, LocationDistribution, ScaleDistribution

HEAD_ROWS = 10
TAIL_ROWS = 5


def _fmt(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4g}"


def dataset_table(ds: Dataset) -> Table:
    table = Table(title="dataset", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right", overflow="fold")
    table.add_row("path", ds.path)
    table.add_row("format", ds.format)
    for key, value in ds.counts().items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    table.add_row("load time", f"{ds.load_seconds:.2f} s")
    return table


def problems_table(ds: Dataset) -> Table:
    table = Table(title="excluded or repaired while loading", title_justify="left")
    for col, justify in (("reason", "left"), ("count", "right"), ("severity", "left"), ("action", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    counts = ds.problems.counts()
    for reason in Reason:
        if reason.key in counts:
            table.add_row(reason.key, f"{counts[reason.key]:,}", reason.severity, reason.action)
    if not counts:
        table.add_row("none", "0", "", "")
    return table


def scores_table(title: str, scores: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in scores.items():
        table.add_row(name, _fmt(value))
    return table


def class_table(result: ClassDistribution) -> Table:
    frame = result.to_frame()
    table = Table(title=f"classes: {len(frame)} (head and tail, by instances)", title_justify="left")
    for col in ("rank", "category_id", "name", "instances", "images", "group"):
        table.add_column(col, justify="right" if col in ("rank", "instances", "images") else "left")
    shown = list(range(min(HEAD_ROWS, len(frame))))
    tail = [i for i in range(max(len(frame) - TAIL_ROWS, 0), len(frame)) if i not in shown]
    for i in shown + tail:
        if tail and i == tail[0] and tail[0] > shown[-1] + 1:
            table.add_row("…", "", "", "", "", "")
        row = frame.iloc[i]
        table.add_row(
            str(i + 1), str(row.category_id), str(row["name"]), f"{row.instances:,}", f"{row.images:,}", row.group
        )
    return table


def scale_table(result: ScaleDistribution) -> Table:
    table = scores_table("scale (score = 2·W1 against uniform)", result.scores)
    if result.size_buckets is not None and result.fpn_levels is not None:
        d = result.to_dict()
        table.add_section()
        for bucket, n in d["size_buckets"].items():
            table.add_row(f"{bucket} boxes", f"{n:,}")
        for level, n in d["fpn_levels"].items():
            table.add_row(f"FPN level P{level}", f"{n:,}")
    return table


def location_table(result: LocationDistribution, per_class: bool = False) -> Table:
    table = Table(
        title=f"box centres on a {result.grid}×{result.grid} grid (score = W1 / W1 of a corner mass)",
        title_justify="left",
    )
    for col in ("classes", "boxes", "x", "y", "xy"):
        table.add_column(col, justify="left" if col == "classes" else "right")

    def add(name: str, counts: np.ndarray) -> None:
        s = result.grid_scores(counts)
        table.add_row(name, f"{int(counts.sum()):,}", _fmt(s["x"]), _fmt(s["y"]), _fmt(s["xy"]))

    add("all", result.counts)
    if per_class:
        totals = result.per_class.sum(axis=(1, 2))
        for k in np.argsort(-totals, kind="stable"):
            if totals[k]:
                add(str(result.name[k]), result.per_class[k])
    return table
