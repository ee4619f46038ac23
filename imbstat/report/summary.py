"""Every dataset-level statistic of one dataset, written to a folder (the demo's report)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from rich.table import Table

from imbstat.data import BoxFilter, Dataset
from imbstat.report import tables, terminal
from imbstat.report.document import document, write_json
from imbstat.stats import class_distribution, location_distribution, scale_distribution


def write_summary(ds: Dataset, out_dir: Path, box_filter: BoxFilter = BoxFilter()) -> list[Table]:
    """Write ``report.json``, the CSV tables and the PNG figures of ``ds`` to ``out_dir``.

    Returns the terminal tables, for the caller to print.
    """
    from imbstat.plots import plot_classes, plot_location, plot_scale

    classes = class_distribution(ds, box_filter)
    scale = scale_distribution(ds, box_filter)
    location = location_distribution(ds, box_filter)
    body = {"class_dist": classes.to_dict(), "scale": scale.to_dict(), "location": location.to_dict(per_class=True)}
    write_json(document("report", ds, body, asdict(box_filter)), out_dir / "report.json")
    tables.class_tables(classes, out_dir)
    tables.scale_tables(scale, out_dir)
    tables.location_tables(location, out_dir)
    plot_classes(classes, out_dir)
    plot_scale(scale, out_dir)
    plot_location(location, out_dir, per_class=12)
    return [
        terminal.dataset_table(ds),
        terminal.class_table(classes),
        terminal.scores_table("class imbalance", classes.to_dict()["scores"]),
        terminal.scale_table(scale),
        terminal.location_table(location),
    ]
