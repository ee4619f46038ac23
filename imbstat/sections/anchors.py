"""The anchors section: foreground-background and IoU distribution of the anchors a preset labels.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.data import Dataset
from imbstat.data.dataset import Images
from imbstat.lazy import LazyModule
from imbstat.scores import shift_1d, shift_2d
from imbstat.sections.shifts import (
    SIDES,
    class_union,
    histogram_pair,
    map_pair,
    matched,
    only_in,
    put_score,
    rank_frequency_shift,
    records,
)
from imbstat.sections.spec import Metric, Run, Section, shift_metrics
from imbstat.stats import AnchorStats, anchor_stats
from imbstat.stats.anchor_sampling import SampledAnchors
from imbstat.stats.anchor_summary import LABELS, AnchorSummary, side_by_side_rows
from imbstat.stats.anchors import PER_IMAGE_FIELDS
from imbstat.stats.side_by_side import keyed
from imbstat.text import fmt_metric

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table
else:
    pd = LazyModule("pandas")  # imported where a table is built


# --- compare: shift scores --------------------------------------------------------------------------------------------


def anchors_shift(a: AnchorSummary, b: AnchorSummary, skipped: dict[str, str]) -> dict[str, Any]:
    """The first presets' shift (whatever their names, as for one preset); with several presets on either
    side (``more_presets``), also ``presets``: {key: shift of that preset} for every key on both sides, in A's
    order, with the two sides' scores; a key on one side only goes into ``skipped`` as ``anchors.presets.<key>``."""
    found = _preset_shift(a, b, skipped, "anchors")
    if not (a.more_presets or b.more_presets):
        return found
    sides = dict(keyed(a)), dict(keyed(b))
    by_preset = {}
    for key in [*sides[0], *(k for k in sides[1] if k not in sides[0])]:
        pa, pb = sides[0].get(key), sides[1].get(key)
        if pa is None or pb is None:
            skipped[f"anchors.presets.{key}"] = only_in(pa)
        else:
            shifted = _preset_shift(pa, pb, skipped, f"anchors.presets.{key}")
            by_preset[key] = shifted | {"scores_a": dict(pa.scores), "scores_b": dict(pb.scores)}
    return found | {"presets": by_preset}


def _preset_shift(a: AnchorSummary, b: AnchorSummary, skipped: dict[str, str], section: str) -> dict[str, Any]:
    scores: dict[str, float] = {}
    fg_bg = [np.array([s.totals["foreground"], s.totals["background"]], np.float64) for s in (a, b)]
    scores["foreground_background"] = shift_1d(*fg_bg)  # 2-bin: 2·|fg share A - fg share B|
    put_score(scores, "positive_iou", histogram_pair(a.positive_iou, b.positive_iou), shift_1d, section, skipped)
    frame, _ = class_union(records(a.to_frame()), records(b.to_frame()), count="foreground")
    scores["foreground_classes"] = rank_frequency_shift(
        frame["foreground_a"].to_numpy(), frame["foreground_b"].to_numpy()
    )
    for name in ("relative_top_left", "relative_center", "overlap_foreground", "overlap_background"):
        put_score(scores, name, map_pair(getattr(a, name), getattr(b, name)), shift_2d, section, skipped)
    pair = histogram_pair(a.foreground_per_gt, b.foreground_per_gt)
    put_score(scores, "foreground_per_gt", pair, shift_1d, section, skipped)
    if a.sampled and b.sampled:  # the sampling stage: what the classifier trains on
        pos_neg = [np.array([s.positives, s.negatives], np.float64) for s in (a.sampled, b.sampled)]
        scores["sampled.foreground_background"] = shift_1d(*pos_neg)
        per_class = matched(
            *(getattr(s.sampled, f) for s in (a, b) for f in ("category_id", "name", "class_positives"))
        )
        scores["sampled.foreground_classes"] = rank_frequency_shift(*per_class)
    elif a.sampled or b.sampled:
        skipped[f"{section}.sampled"] = f"only {'A' if a.sampled else 'B'} has a sampling stage (--sampler)"
    return {"scores": scores, "preset": {side: s.preset.name for side, s in zip(SIDES, (a, b), strict=True)}}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: AnchorStats, images: Images, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import grid_frame, write_frames

    d = result.to_dict()
    iou = pd.DataFrame({"low": result.iou_edges[:-1], "high": result.iou_edges[1:], "count": result.positive_iou,
                        "low_quality": result.positive_iou_low_quality})  # fmt: skip
    per_gt = pd.DataFrame([{"size": k, **v} for k, v in [*d["per_gt"]["by_size"].items(), ("all", d["per_gt"]["all"])]])

    n = max(result.num_images, 1)
    return write_frames(
        {
            "anchors_per_image": anchor_image_frame(result, images),
            "anchors_per_class": pd.DataFrame(d["per_class"]),
            "anchors_positive_iou": iou,
            "anchors_per_gt": per_gt,
            "anchors_relative_top_left": grid_frame(result.relative_top_left),
            "anchors_relative_center": grid_frame(result.relative_center),
            "anchors_overlap_foreground": grid_frame(result.overlap_foreground / n),
            "anchors_overlap_background": grid_frame(result.overlap_background / n),
            **({"anchors_sampled_per_class": pd.DataFrame(d["sampled"]["per_class"])} if "sampled" in d else {}),
        },
        out_dir,
    )


def anchor_image_frame(result: AnchorStats, images: Images) -> pd.DataFrame:
    """One row per image, in dataset order, to find the images that drive the imbalance.

    ``gts`` are the GTs labelled (after the box filter, crowd and empty-after-resize
    drops); ``gts_without_positive`` those with no foreground anchor;
    ``worst_gt_max_iou`` is the lowest, over the image's GTs, of each GT's best IoU
    with any anchor (its worst-covered GT), empty for an image without GTs. With a
    sampler, ``sampled_positives`` and ``sampled_negatives``: what it draws from the image.
    """

    def pixels(size: np.ndarray) -> np.ndarray:  # whole-pixel sizes print as integers
        return size.astype(np.int64) if np.array_equal(size, np.round(size)) else size

    frame = pd.DataFrame(
        {
            "image_id": images.image_id,
            "file_name": images.file_name,
            "width": pixels(images.width),
            "height": pixels(images.height),
            "gts": result.per_image_gts[:, 0],
            "foreground": result.per_image[:, 0],
            "background": result.per_image[:, 1],
            "ignored": result.per_image[:, 2],
            "gts_without_positive": result.per_image_gts[:, 1],
            "worst_gt_max_iou": result.worst_gt_iou,
        }
    )
    sampler = result.preset.random_sampler
    if sampler:
        trained = result.trained  # images the framework does not train on are not sampled
        positives, negatives = sampler.sampled(*result.per_image[:, :2].T)
        frame["trained"] = trained
        frame["sampled_positives"], frame["sampled_negatives"] = positives * trained, negatives * trained
    return frame


# --- terminal tables --------------------------------------------------------------------------------------------------


def anchor_tables(result: AnchorStats) -> list[Table]:
    """One preset's tables; several presets (``more_presets``): one table of them side by side."""
    from imbstat.report.terminal import HEAD_ROWS, TAIL_ROWS, PlainTable, fmt_number, scores_table

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
    from imbstat.report.terminal import PlainTable, fmt_number

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
    from imbstat.report.terminal import PlainTable, fmt_number

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


# --- HTML tables ------------------------------------------------------------------------------------------------------


def anchors_html(result: AnchorSummary, scores: str) -> str:
    from imbstat.report.html_parts import e, finite, table

    preset, totals = result.preset, result.totals
    summary = [["total", f"{totals['total']:,}", ""]]
    summary += [[k, f"{totals[k]:,}", f"{result.per_image_mean[k]:,.1f}"] for k in LABELS]
    if math.isfinite(result.fg_bg_ratio):  # NaN without a background anchor
        summary.append(["fg : bg", fmt_metric("anchors.fg_bg_ratio", result.fg_bg_ratio), ""])
    gt_rows = []
    for bucket, g in result.per_gt.items():  # small, medium, large, all
        counts = [f"{g[k]:,}" for k in ("low_quality_only", "below_pos", "unmatched")]
        gt_rows.append([bucket, f"{g['gts']:,}", f"{finite(g['foreground_per_gt']):.1f}", *counts])
    gt_header = ["GT size", "GTs", "fg anchors / GT", f"{preset.low_quality_term()} only", "none ≥ pos", "no fg"]
    head = (
        f'<p class="legend">Preset <b>{e(preset.name)}</b>: {e(preset.labels_text())}; '
        f"strides {e(list(preset.strides))}.</p>"
    )
    tables = [
        scores,
        table(["anchors", "total", "per image"], summary, "compact", num=(1, 2), title="Labels"),
        table(gt_header, gt_rows, "compact", num=(1, 2, 3, 4, 5), title="Per GT"),
        *([_sampled_html(result)] if result.sampled else []),
    ]
    return head + '<div class="tables">' + "".join(tables) + "</div>" + _side_by_side_html(result)


def _side_by_side_html(result: AnchorSummary) -> str:
    """The presets of a side-by-side run (--preset A --preset B), a column each; the figures above are the first's."""
    from imbstat.report.html_parts import e, fixed, table

    if not result.more_presets:
        return ""
    keys, rows = side_by_side_rows(result)
    cells = [[label, *(f"{v:,}" if isinstance(v, int) else v if isinstance(v, str) else fixed(v) for v in values)]
             for label, values in rows]  # fmt: skip
    note = (f'<p class="legend">The figures above are those of <b>{e(keys[0])}</b>; each further preset\'s '
            "tables and figures are in the report folder's subfolder named by its key.</p>")  # fmt: skip
    return note + table(["", *keys], cells, "compact", num=tuple(range(1, len(keys) + 1)), title="Presets side by side")


def _sampled_html(result: AnchorSummary) -> str:
    """Assigned against sampled anchors, and the classes with the most sampled positives (expected)."""
    from imbstat.report.html_parts import HEAD_CLASSES, fixed, table

    s = result.sampled
    assert s is not None
    quota = s.positive_quota
    rows = [
        ["foreground", f"{result.totals['foreground']:,}", f"{s.positives:,}", f"{s.positives_mean:,.1f}"],
        ["background", f"{result.totals['background']:,}", f"{s.negatives:,}", f"{s.negatives_mean:,.1f}"],
        ["fg : bg", fmt_metric("anchors.fg_bg_ratio", result.fg_bg_ratio),
         fmt_metric("anchors.sampled.fg_bg_ratio", s.fg_bg_ratio), ""],
        [f"images with < {quota} fg", "", f"{s.images_short:,}", f"{s.short_share:.1%}"],
        [f"images not trained on ({s.train_images})", "", f"{s.images_left_out:,}", ""],
    ]  # fmt: skip
    for name, label in (("foreground_background", "score fg vs bg"), ("foreground_classes", "score fg classes")):
        rows.append([label, fixed(result.scores.get(name)), fixed(s.scores[name]), ""])
    order = np.argsort(-s.class_positives, kind="stable")[:HEAD_CLASSES]
    classes = [[s.name[k], f"{s.class_positives[k]:,.1f}"] for k in order]
    title = f"Sampled: {s.num} per image, ≤ {quota} positives"
    return table(["anchors", "assigned", "sampled", "per image"], rows, "compact", num=(1, 2, 3), title=title) + table(
        ["class", "sampled positives"], classes, "compact", num=(1,), title="Sampled positives per class (head)"
    )


def write_figures(result: AnchorStats, out_dir: Path) -> list[Path]:
    """The figures of one preset (the section's ``write_figures`` writes each preset's into its folder)."""
    from imbstat.plots import plot_anchors  # matplotlib: loaded only when figures are written

    return plot_anchors(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


ANCHORS_NEEDED = "run with --anchors"


def anchor_section(result: AnchorStats, ds: Dataset) -> dict[str, Any]:
    """The anchors JSON; a shard's also carries ``raw``, every count, so that ``imbstat merge`` is exact."""
    return result.to_dict(raw=bool(ds.shard))


def _anchors(ds: Dataset, run: Run) -> AnchorStats:
    """The anchors under ``run.anchors``, with those under ``run.more_anchors`` side by side (``more_presets``)."""
    found = [anchor_stats(ds, options=options, box_filter=run.box_filter, progress=run.progress)
             for options in (run.anchors, *run.more_anchors)]  # fmt: skip
    return AnchorStats.side_by_side(found)


def _merge_anchor_shards(parts: list[AnchorStats], ds: Dataset, shards: int) -> AnchorStats:
    merged = AnchorStats.merge(parts)
    # per-image rows come shard after shard (shard i holds image rows i, i + N, ...); put them back in image order
    order = np.argsort(np.concatenate([np.arange(ds.num_images)[i::shards] for i in range(shards)]))

    def in_order(r: AnchorStats) -> AnchorStats:
        rows = {name: getattr(r, name)[order] for name in PER_IMAGE_FIELDS}
        trained = {} if r.trained_images is None else {"trained_images": r.trained_images[order]}
        return dataclasses.replace(r, **rows, **trained)

    return dataclasses.replace(in_order(merged), more_presets=tuple(in_order(r) for r in merged.more_presets))


def _anchor_files(write: Callable[[AnchorStats, Path], list[Path]]) -> Callable[[AnchorStats, Path], list[Path]]:
    """``write`` of the first preset into the folder, and of each further preset into its subfolder ``<key>``."""

    def write_all(result: AnchorStats, out: Path) -> list[Path]:
        (_, first), *more = keyed(result)
        return write(first, out) + [p for key, r in more for p in write(r, out / key)]

    return write_all


def _anchor_extras(summary: AnchorSummary) -> dict[str, float]:
    found = {"fg_bg_ratio": summary.fg_bg_ratio}
    found |= {f"{label}_mean": mean for label, mean in summary.per_image_mean.items()}
    found |= {f"per_gt.{k}": v for k, v in summary.per_gt["all"].items() if k != "foreground"}
    return found | (_sampled_extras(summary.sampled) if summary.sampled else {})


def _sampled_extras(sampled: SampledAnchors) -> dict[str, float]:
    found = {f"sampled.{k}": getattr(sampled, k) for k in ("fg_bg_ratio", "positives_mean", "negatives_mean")}
    found["sampled.images_short_of_positives"] = sampled.short_share
    return found | {f"sampled.{k}": v for k, v in sampled.scores.items()}


_ANCHOR_SCORES = (
    Metric("foreground_background", "foreground vs background anchors"),
    Metric("positive_iou", "IoU of the foreground anchors"),
    Metric("foreground_classes", "foreground anchors per class, rank–frequency"),
    Metric("relative_top_left", "anchor top-left corners in the GT's frame"),
    Metric("relative_center", "anchor centres in the GT's frame"),
    Metric("overlap_foreground", "foreground anchors covering each cell"),
    Metric("overlap_background", "background anchors covering each cell"),
)


_SAMPLED_SCORES = (
    Metric("sampled.foreground_background", "sampled positive vs negative anchors"),
    Metric("sampled.foreground_classes", "sampled positive anchors per class (expected), rank–frequency"),
)


ANCHORS = Section(
    name="anchors",
    title="Anchors: foreground-background and IoU distribution",
    result_type=AnchorStats,
    command="anchor-iou",
    compute=_anchors,
    to_json=anchor_section,
    write_tables=lambda r, ds, out: _anchor_files(lambda a, to: write_tables(a, ds.images, to))(r, out),
    write_figures=_anchor_files(write_figures),
    figures=(
        ("anchors_fg_bg.png", "Fig. 4a: foreground, background and ignored anchors per image."),
        ("anchors_per_class.png", "Fig. 4b: foreground anchors and instances per class, per image."),
        ("anchors_positive_iou.png", "Fig. 12a: IoU of the foreground anchors with their GT."),
        ("anchors_per_gt.png", "Foreground anchors per GT, by COCO size bucket."),
        ("anchors_relative_spatial.png", "Fig. 14: foreground anchors in the frame of their GT."),
        ("anchors_overlap.png", "Fig. 15: anchors covering each cell of the normalised image."),
    ),
    terminal=anchor_tables,
    compare=anchors_shift,
    html=anchors_html,
    metrics=(
        *_ANCHOR_SCORES,
        Metric("fg_bg_ratio", "foreground / background anchors over the dataset", score=False),
        Metric("foreground_mean", "foreground anchors per image (mean)", score=False),
        Metric("background_mean", "background anchors per image (mean)", score=False),
        Metric("ignored_mean", "ignored anchors per image (mean)", score=False),
        Metric("per_gt.gts", "GT boxes", score=False),
        Metric("per_gt.foreground_per_gt", "foreground anchors per GT (mean)", score=False),
        Metric("per_gt.unmatched", "GTs without a foreground anchor", score=False),
        Metric(
            "per_gt.low_quality_only",
            "GTs whose foreground anchors all have IoU < pos_iou (under MaxIoU: low-quality matches)",
            score=False,
        ),
        Metric("per_gt.below_pos", "GTs with no anchor at IoU ≥ the positive threshold", score=False),
        # the sampling stage, where the preset has a sampler (--sampler random:NUM:POS_FRACTION)
        *_SAMPLED_SCORES,
        Metric("sampled.fg_bg_ratio", "sampled positives / negatives over the dataset", score=False),
        Metric("sampled.positives_mean", "sampled positive anchors per image (mean)", score=False),
        Metric("sampled.negatives_mean", "sampled negative anchors per image (mean)", score=False),
        Metric("sampled.images_short_of_positives", "share of images with fewer positives than the quota", False),
    ),
    shifts=(
        *shift_metrics(_ANCHOR_SCORES, *(m.name for m in _ANCHOR_SCORES)),
        Metric("foreground_per_gt", "shift of: foreground anchors per GT"),
        *shift_metrics(_SAMPLED_SCORES, *(m.name for m in _SAMPLED_SCORES)),
    ),
    extra_metrics=_anchor_extras,
    report_type=AnchorSummary,
    optional=ANCHORS_NEEDED,
    merge_shards=_merge_anchor_shards,
)
