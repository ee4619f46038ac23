"""Compact rich tables for the terminal; the JSON report holds everything.

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
from imbstat.stats import (
    AnchorStats,
    BatchDistribution,
    ClassBalancedLoss,
    ClassDistribution,
    LocationDistribution,
    RepeatFactorSampling,
    ScaleDistribution,
)
from imbstat.stats.anchor_summary import AnchorSummary, side_by_side_rows
from imbstat.stats.batch import QUANTILES
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


def class_table(result: ClassDistribution, balanced: ClassBalancedLoss | None = None) -> Table:
    """Head and tail classes by instances; with ``balanced``, also each class's class-balanced loss weight."""
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


def anchor_tables(result: AnchorStats) -> list[Table]:
    """One preset's tables; several presets (``more_presets``): one table of them side by side."""
    if result.more_presets:
        return [presets_table(result)]
    d = result.to_dict()
    totals = PlainTable(title=f"anchors ({result.preset.name}) over {result.num_images:,} images", title_justify="left")
    for col in ("", "total", "per image (mean)"):
        totals.add_column(col, justify="left" if not col else "right")
    per_image = d["per_image"]
    for key in ("foreground", "background", "ignored"):
        totals.add_row(key, f"{d['anchors'][key]:,}", fmt_number(per_image[f"{key}_mean"]))
    totals.add_row("all", f"{d['anchors']['total']:,}", "")
    totals.add_row("fg:bg ratio", fmt_number(d["fg_bg_ratio"]), "")

    sampled = d.get("sampled")
    per_class = PlainTable(title="foreground anchors per class (head and tail)", title_justify="left")
    for col in (
        "name",
        "fg anchors",
        "fg per image",
        "instances",
        "fg per instance",
        *(("sampled fg",) if sampled else ()),
    ):
        per_class.add_column(col, justify="left" if col == "name" else "right")
    rows = d["per_class"]
    shown = rows[:HEAD_ROWS] + (rows[-TAIL_ROWS:] if len(rows) > HEAD_ROWS + TAIL_ROWS else rows[HEAD_ROWS:])
    drawn = {row["category_id"]: row["positives"] for row in sampled["per_class"]} if sampled else {}
    for row in shown:
        ratio = row["foreground"] / row["instances"] if row["instances"] else float("nan")
        per_class.add_row(row["name"], f"{row['foreground']:,}", fmt_number(row["foreground_per_image"]),
                          f"{row['instances']:,}", fmt_number(ratio),
                          *((fmt_number(drawn[row["category_id"]]),) if sampled else ()))  # fmt: skip

    low = result.preset.low_quality_term()
    per_gt = PlainTable(title=f"per GT (positive IoU >= {result.preset.pos_iou})", title_justify="left")
    for col in (
        "size",
        "GTs",
        "fg anchors per GT",
        "no fg anchor",
        f"{low} only",
        f"none >= {result.preset.pos_iou}",
    ):
        per_gt.add_column(col, justify="left" if col == "size" else "right")
    for name, row in [*d["per_gt"]["by_size"].items(), ("all", d["per_gt"]["all"])]:
        per_gt.add_row(name, f"{row['gts']:,}", fmt_number(row["foreground_per_gt"]), f"{row['unmatched']:,}",
                       f"{row['low_quality_only']:,}", f"{row['below_pos']:,}")  # fmt: skip

    iou = PlainTable(
        title="IoU of foreground anchors"
        + (" (low-quality: below the positive threshold)" if low == "low-quality" else ""),
        title_justify="left",
    )
    for col in ("IoU", "anchors", low):
        iou.add_column(col, justify="right")
    edges, counts, low = d["positive_iou"]["edges"], d["positive_iou"]["counts"], d["positive_iou"]["low_quality"]
    for i, n in enumerate(counts):
        if n:
            close = "]" if i == len(counts) - 1 else ")"
            iou.add_row(f"[{edges[i]:.2f}, {edges[i + 1]:.2f}{close}", f"{n:,}", f"{low[i]:,}")
    scores = scores_table("anchor imbalance scores", d["scores"])
    return [totals, *((sampled_table(result, d),) if sampled else ()), per_class, per_gt, iou, scores]


def sampled_table(result: AnchorStats, d: dict) -> Table:
    """Assigned against sampled anchors (the sampling stage of ``d['sampled']``), totals and per image."""
    sampled = d["sampled"]
    quota = result.sampled.positive_quota if result.sampled else 0
    table = PlainTable(
        title=f"sampled per image: {sampled['num']} anchors, at most {quota} positives ({result.preset.sampler})",
        title_justify="left",
        caption="as RandomSampler counts them; per class: 'sampled fg' below",
        caption_justify="left",
    )
    for col in ("", "assigned", "per image", "sampled", "per image"):
        table.add_column(col, justify="left" if not col else "right")
    for label, drawn in (("foreground", "positives"), ("background", "negatives")):
        table.add_row(label, f"{d['anchors'][label]:,}", fmt_number(d["per_image"][f"{label}_mean"]),
                      f"{sampled[drawn]:,}", fmt_number(sampled[f"{drawn}_mean"]))  # fmt: skip
    table.add_row("fg:bg ratio", fmt_number(d["fg_bg_ratio"]), "", fmt_number(sampled["fg_bg_ratio"]), "")
    short = sampled["images_short_of_positives"]
    table.add_row(f"images with < {quota} fg", "", "", f"{short['images']:,}", f"{short['share']:.1%}")
    left_out = sampled["images_left_out"]
    table.add_row(f"images not trained on ({left_out['rule']})", "", "", f"{left_out['images']:,}", "")
    return table


def presets_table(result: AnchorStats) -> Table:
    """The presets of a side-by-side run (``--preset A --preset B``), a column each headed by its key."""
    keys, rows = side_by_side_rows(AnchorSummary.of(result))
    table = PlainTable(title=f"anchors under {len(keys)} presets over {result.num_images:,} images",
                       title_justify="left")  # fmt: skip
    table.add_column("")
    for key in keys:
        table.add_column(key, justify="right", overflow="fold")  # a narrow terminal folds a key, never cuts it
    for label, cells in rows:
        table.add_row(label, *(f"{v:,}" if isinstance(v, int) else v if isinstance(v, str) else fmt_number(v)
                               for v in cells))  # fmt: skip
    return table


def repeat_factor_tables(result: RepeatFactorSampling) -> list[Table]:
    """The head and tail classes before and after one resampled epoch, and every class score before and after."""
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


def class_balanced_table(result: ClassBalancedLoss) -> Table:
    """The class scores of the loss mass per class (weight · instances) under the class-balanced weights."""
    return scores_table(f"class-balanced loss (β {result.beta:g}): scores of weight · instances", result.scores)


def batch_tables(result: BatchDistribution) -> list[Table]:
    """The classes by dataset share (head) with their batch statistics, then the per-batch numbers."""
    frame = result.to_frame()
    title = f"batches of {result.batch_size} images, {result.sampler}, {result.epochs} epochs: classes by share (head)"
    table = PlainTable(title=title, title_justify="left")
    median, high = f"share_q{0.5:g}", f"share_q{0.95:g}"
    for col in ("category_id", "name", "dataset share", "P(absent)", "share mean", "median", "95 %"):
        table.add_column(col, justify="left" if col in ("category_id", "name") else "right")
    for _, row in frame.head(HEAD_ROWS).iterrows():
        table.add_row(str(row.category_id), str(row["name"]), *(fmt_number(row[c]) for c in
                      ("dataset_share", "absent_probability", "share_mean", median, high)))  # fmt: skip
    numbers = PlainTable(title="per full batch", title_justify="left")
    numbers.add_column("measure")
    numbers.add_column("value", justify="right")
    numbers.add_row("full batches", f"{result.full_batches:,}")
    numbers.add_row("incomplete batches (left out)", f"{result.incomplete_batches:,}")
    numbers.add_row("full batches without instances", f"{result.batches_without_instances:,}")
    for level, value in zip(QUANTILES, result.tv_quantiles, strict=True):
        numbers.add_row(f"TV distance, quantile {level:g}", fmt_number(value))
    for name, value in result.scores.items():
        numbers.add_row(name, fmt_number(value))
    if result.inversion_rows.size:
        first, second = (str(result.name[r]) for r in result.inversion_rows)
        numbers.add_row(f"batches with more {second} than {first}", f"{result.rank_inversions:,}")
    return [table, numbers]
