"""The location section: box centres on the normalised image, their marginals and per-class maps.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.scores import shift_1d, shift_2d
from imbstat.sections.shifts import map_pair
from imbstat.sections.spec import Metric, Section, shift_metrics
from imbstat.stats import LocationDistribution, location_distribution

if TYPE_CHECKING:
    from rich.table import Table

LOCATION_CLASSES = 12  # per-class maps in the figure and rows in the HTML table: the classes with the most boxes


# --- compare: shift scores --------------------------------------------------------------------------------------------


def location_shift(a: LocationDistribution, b: LocationDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    pair = map_pair(a.counts, b.counts)
    scores: dict[str, float] = {}
    if isinstance(pair, str):
        skipped["location.centers"] = pair
    else:
        ma, mb = pair  # [G, G], row = y
        scores = {"x": shift_1d(ma.sum(axis=0), mb.sum(axis=0)), "y": shift_1d(ma.sum(axis=1), mb.sum(axis=1))}
        scores["xy"] = shift_2d(ma, mb)
    return {"scores": scores}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: LocationDistribution, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import grid_frame, write_frames

    return write_frames({"location_centers": grid_frame(result.counts)}, out_dir)


# --- terminal tables --------------------------------------------------------------------------------------------------


def location_table(result: LocationDistribution, per_class: bool = False) -> Table:
    from imbstat.report.terminal import PlainTable, fmt_number

    table = PlainTable(
        title=f"box centres on a {result.grid}×{result.grid} grid (score = W1 / W1 of a corner mass)",
        title_justify="left",
    )
    for col in ("classes", "boxes", "x", "y", "xy"):
        table.add_column(col, justify="left" if col == "classes" else "right")

    def add(name: str, counts: np.ndarray) -> None:
        s = result.grid_scores(counts)
        table.add_row(name, f"{int(counts.sum()):,}", fmt_number(s["x"]), fmt_number(s["y"]), fmt_number(s["xy"]))

    add("all", result.counts)
    if per_class:
        totals = result.per_class.sum(axis=(1, 2))
        for k in np.argsort(-totals, kind="stable"):
            if totals[k]:
                add(str(result.name[k]), result.per_class[k])
    return table


# --- HTML tables ------------------------------------------------------------------------------------------------------


def location_html(result: LocationDistribution, scores: str) -> str:
    from imbstat.report.html_parts import fixed, table

    tables = [scores]
    per_class = [(k, int(result.per_class[k].sum())) for k in result.present_scores]  # classes with a box
    per_class.sort(key=lambda kb: -kb[1])
    rows = []
    for k, boxes in per_class[:LOCATION_CLASSES]:
        s = result.present_scores[k]
        rows.append([str(result.name[k]), f"{boxes:,}"] + [fixed(s[key]) for key in ("x", "y", "xy")])
    if rows:
        title = f"Per class: the {len(rows)} with the most boxes"
        tables.append(table(["class", "boxes", "x", "y", "xy"], rows, "compact", num=(1, 2, 3, 4), title=title))
    return '<div class="tables">' + "".join(tables) + "</div>"


def write_figures(result: LocationDistribution, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_location  # matplotlib: loaded only when figures are written

    return plot_location(result, out_dir, per_class=LOCATION_CLASSES)


# --- the section ------------------------------------------------------------------------------------------------------


_LOCATION_METRICS = (
    Metric("x", "x of the centres"),
    Metric("y", "y of the centres"),
    Metric("xy", "centres on the G×G grid (2-D W1)"),
    Metric("w1_score", "the 2-D centre score, the same as xy", same_as="xy"),
)


LOCATION = Section(
    name="location",
    title="Spatial imbalance: object location",
    result_type=LocationDistribution,
    command="location",
    compute=lambda ds, run: location_distribution(ds, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(per_class=True),
    json_options=lambda parts: {"per_class": "per_class" in parts[0]},
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("location_centers.png", "Fig. 13: box centres over the normalised image, with the x and y marginals."),
        (
            "location_per_class.png",
            "Box centres of the classes with the most boxes, each map scaled to its busiest cell.",
        ),
    ),
    terminal=lambda r: [location_table(r)],
    compare=location_shift,
    html=location_html,
    metrics=_LOCATION_METRICS,
    shifts=shift_metrics(_LOCATION_METRICS, "x", "y", "xy", "w1_score"),
)
