"""The scale section: relative sizes and aspect ratios of the boxes, COCO size buckets, FPN levels.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.lazy import LazyModule
from imbstat.scores import shift_1d
from imbstat.sections.shifts import histogram_pair, only_in, put_score
from imbstat.sections.spec import Metric, Section, shift_metrics
from imbstat.stats import ScaleDistribution, scale_distribution
from imbstat.stats.scale import FPN_LEVELS, SIZE_BUCKETS
from imbstat.text import fmt_metric

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table
else:
    pd = LazyModule("pandas")  # imported where a table is built


# --- compare: shift scores --------------------------------------------------------------------------------------------


def scale_shift(a: ScaleDistribution, b: ScaleDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    scores: dict[str, float] = {}
    for name in ("relative_width", "relative_height", "relative_area", "aspect_ratio"):
        ha, hb = getattr(a, name), getattr(b, name)
        if ha is not None or hb is not None:  # aspect_ratio needs pixel sizes: None on both sides is no shift
            put_score(scores, name, histogram_pair(ha, hb), shift_1d, "scale", skipped)
    for name in ("size_buckets", "fpn_levels"):  # [3] and [4] counts over fixed labels, with pixel sizes
        ca, cb = getattr(a, name), getattr(b, name)
        if ca is not None or cb is not None:
            pair = only_in(ca) if ca is None or cb is None else (ca.astype(np.float64), cb.astype(np.float64))
            put_score(scores, name, pair, shift_1d, "scale", skipped)
    return {"scores": scores}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: ScaleDistribution, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import write_frames

    frames = {"scale_histograms": result.to_frame()}
    if result.size_buckets is not None and result.fpn_levels is not None:
        d = result.to_dict()
        frames["scale_size_buckets"] = pd.DataFrame(list(d["size_buckets"].items()), columns=["bucket", "count"])
        frames["scale_fpn_levels"] = pd.DataFrame(list(d["fpn_levels"].items()), columns=["level", "count"])
    return write_frames(frames, out_dir)


# --- terminal tables --------------------------------------------------------------------------------------------------


def scale_table(result: ScaleDistribution) -> Table:
    from imbstat.report.terminal import scores_table

    table = scores_table("scale (score = 2·W1 against uniform)", result.scores)
    if result.size_buckets is not None and result.fpn_levels is not None:
        d = result.to_dict()
        table.add_section()
        for bucket, n in d["size_buckets"].items():
            table.add_row(f"{bucket} boxes", f"{n:,}")
        for level, n in d["fpn_levels"].items():
            table.add_row(f"FPN level P{level}", f"{n:,}")
    return table


# --- HTML tables ------------------------------------------------------------------------------------------------------


def scale_html(result: ScaleDistribution, scores: str) -> str:
    from imbstat.report.html_parts import e, table

    tables = [scores]
    pixel_counts = (
        ("COCO size buckets", "bucket", SIZE_BUCKETS, result.size_buckets),
        ("FPN levels", "level", [f"P{k}" for k in FPN_LEVELS], result.fpn_levels),
    )
    for title, label, names, counts in pixel_counts:
        if counts is not None:  # None without pixel sizes
            total = int(counts.sum()) or 1
            rows = [[k, f"{int(n):,}", f"{100 * int(n) / total:.1f} %"] for k, n in zip(names, counts, strict=True)]
            tables.append(table([label, "boxes", "share"], rows, "compact", num=(1, 2), title=title))
    note = f'<p class="note">{e(result.missing)}</p>' if result.missing else ""
    if result.fpn_levels is not None:
        short, long = (e(fmt_metric("", side or 0)) for side in (result.resize.short, result.resize.long))
        note += f'<p class="legend">FPN levels after resizing to short side {short}, long side ≤ {long} '
        note += "(k = floor(4 + log2(√(wh)/224)), clamped to 2–5).</p>"
    return '<div class="tables">' + "".join(tables) + "</div>" + note


def write_figures(result: ScaleDistribution, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_scale  # matplotlib: loaded only when figures are written

    return plot_scale(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


_SCALE_METRICS = (
    Metric("relative_width", "w / W"),
    Metric("relative_height", "h / H"),
    Metric("relative_area", "wh / (WH)"),
    Metric("aspect_ratio", "log2(w / h)"),
    Metric("size_buckets", "COCO small / medium / large"),
    Metric("fpn_levels", "FPN levels P2–P5"),
)


SCALE = Section(
    name="scale",
    title="Scale imbalance",
    result_type=ScaleDistribution,
    command="scale",
    compute=lambda ds, run: scale_distribution(ds, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("scale_relative.png", "Fig. 7: relative width, height and area of the boxes."),
        ("scale_aspect_ratio.png", "Aspect ratio log2(w/h) of the boxes."),
        ("scale_buckets.png", "COCO size buckets (original image) and FPN levels P2–P5 (§5.2, after the resize)."),
    ),
    terminal=lambda r: [scale_table(r)],
    compare=scale_shift,
    html=scale_html,
    metrics=_SCALE_METRICS,
    shifts=shift_metrics(_SCALE_METRICS, *(m.name for m in _SCALE_METRICS)),
)
