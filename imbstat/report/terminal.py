"""Compact rich tables for the terminal; the JSON report holds everything. Each section's own tables are its
``terminal`` (``imbstat/sections/<name>.py``); the pieces they share, and the tables of no section, are here.

Names, paths and other user data reach the terminal only through :func:`visible`
(plain lines) and :class:`PlainTable` (tables): never as rich markup or emoji
codes, and never as raw control characters that a terminal would act on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from imbstat.anchors.presets import Preset
from imbstat.data import Dataset, Reason
from imbstat.text import visible

HEAD_ROWS = 10
TAIL_ROWS = 5


def plain(value: object, style: str = "") -> Text:
    """``str(value)`` as rich text shown exactly as written: not markup, not emoji codes, controls :func:`visible`."""
    return Text(visible(str(value)), style=style)


class PlainTable(Table):
    """A rich ``Table`` whose string cells, headers, title and caption are :func:`plain` text.

    rich parses every ``str`` it renders as markup (``[/]`` raises MarkupError,
    ``traffic [light]`` loses its bracket, ``:cat:`` becomes an emoji); a cell may
    quote user data, so no ``str`` reaches rich from here. ``Text`` cells pass as given.
    """

    def __init__(self, *headers: Any, title: str | Text | None = None, caption: str | Text | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        # rich applies its title and caption styles to str only, so the Text carries them
        title = plain(title, "table.title") if isinstance(title, str) else title
        caption = plain(caption, "table.caption") if isinstance(caption, str) else caption
        super().__init__(*headers, title=title, caption=caption, **kwargs)

    def add_column(self, header: RenderableType = "", *args: Any, **kwargs: Any) -> None:
        super().add_column(plain(header) if isinstance(header, str) else header, *args, **kwargs)

    def add_row(self, *renderables: RenderableType | None, **kwargs: Any) -> None:
        super().add_row(*(plain(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def fmt_number(value: float) -> str:
    return "n/a" if value is None or not np.isfinite(value) else f"{value:.4g}"


def dataset_table(ds: Dataset) -> Table:
    table = PlainTable(title="dataset", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right", overflow="fold")
    table.add_row("path", ds.path)
    table.add_row("format", ds.format)
    for key, value in ds.counts().items():
        table.add_row(key.replace("_", " "), f"{value:,}")
    table.add_row("load time", f"{ds.load_seconds:.2f} s")
    return table


def problems_table(ds: Dataset) -> Table:
    table = PlainTable(title="excluded or repaired while loading", title_justify="left")
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
    table = PlainTable(title=title, title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for name, value in scores.items():
        table.add_row(name, fmt_number(value))
    return table


def anchor_grid_table(preset: Preset, width: int, height: int) -> Table:
    """The anchors one image of ``width`` × ``height`` gets: levels, shapes, counts."""
    from imbstat.anchors.generate import grid_levels, image_grid

    new_w, new_h = preset.resize.new_size(np.array([width]), np.array([height]))
    grid = image_grid(preset, width, height)
    table = PlainTable(
        title=f"preset {preset.name}: {width}×{height} -> resized {int(new_w[0])}×{int(new_h[0])}, "
        f"padded {grid.padded_width}×{grid.padded_height}; {len(grid):,} anchors",
        title_justify="left",
        caption=f"labels: {preset.labels_text()}",
        caption_justify="left",
    )
    for col in ("level", "stride", "cells (rows×cols)", "anchor shapes w×h", "anchors"):
        table.add_column(col, justify="left" if col == "anchor shapes w×h" else "right")
    for level, row in enumerate(grid_levels(grid)):
        stride = row["stride"]
        shapes = ", ".join(f"{w:.1f}×{h:.1f}" for w, h in row["shapes"])
        step_x, step_y = row.get("step", (stride, stride))
        shown = str(stride) if step_x == step_y == stride else f"{stride} (step {step_x:g}×{step_y:g})"
        table.add_row(f"P{int(np.log2(stride))}" if stride & (stride - 1) == 0 else str(level), shown,
                      f"{row['rows']}×{row['cols']}", shapes, f"{row['anchors']:,}")  # fmt: skip
    return table
