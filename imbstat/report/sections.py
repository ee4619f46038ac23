"""The registry of report sections: everything the program knows about each statistic, in one place.

A section is one statistic of a whole analysis (``classes``, ``scale``,
``location``, ``anchors``): its result type, how :func:`imbstat.compute`
computes it, its JSON section and how shards' JSON sections merge, its CSV
tables, figures and terminal tables, how ``compare`` scores its shift, its HTML
tables and the audit metrics it names (``<section>.<metric>``, each with its
meaning). ``compare``, the metrics, the HTML tables and the taxonomy read result
objects, never nested JSON keys: a report's JSON section is read back with
:meth:`Section.read` (the result type's ``from_dict``), so a renamed or missing
field is an error where the report is read. Report building, ``merge``, ``compare``, ``audit``, the taxonomy
table, the HTML page and the Dask path iterate over :data:`SECTIONS`; adding a
statistic is adding an entry here (README, "Adding a statistic").

The mechanism (:class:`Section`, :class:`Metric`, :class:`Run`) is :mod:`imbstat.report.section`.
This module sits below every consumer: it imports the result types and the
renderers of one section, never a module that iterates over the sections.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from imbstat.data import Dataset
from imbstat.report import html_parts, shift, tables, terminal
from imbstat.report.section import Metric, Run, Section
from imbstat.stats import (
    AnchorStats,
    BatchDistribution,
    ClassBalancedLoss,
    ClassDistribution,
    LocationDistribution,
    RepeatFactorSampling,
    ScaleDistribution,
    anchor_stats,
    batch_distribution,
    class_balanced_loss,
    class_distribution,
    location_distribution,
    repeat_factor_sampling,
    scale_distribution,
)
from imbstat.stats.anchor_sampling import SampledAnchors
from imbstat.stats.anchor_summary import AnchorSummary
from imbstat.stats.anchors import PER_IMAGE_FIELDS
from imbstat.stats.side_by_side import keyed

ANCHORS_NEEDED = "run with --anchors"
BATCH_NEEDED = "run with --batch-size B, the training batch"


def _shifts(metrics: tuple[Metric, ...], *names: str) -> tuple[Metric, ...]:
    """Compare metrics of the same distributions: the 2·W1 shift between A and B (0 = same)."""
    by_name = {m.name: m for m in metrics}
    return tuple(Metric(n, f"shift of: {by_name[n].meaning}", same_as=by_name[n].same_as) for n in names)


# --- classes -------------------------------------------------------------------------------------------------------


_CLASS_METRICS = (
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
    write_tables=lambda r, ds, out: tables.class_tables(r, out),
    write_figures=lambda r, out: _plots().plot_classes(r, out),
    figures=(
        ("classes_long_tail.png", "Fig. 5a: instances per class in rank–frequency order, coloured by group."),
        ("objects_per_image.png", "Fig. 5b: objects per image."),
        ("classes_per_image.png", "Fig. 5c: distinct classes per image."),
    ),
    terminal=lambda r: [terminal.class_table(r), terminal.scores_table("class imbalance", r.to_dict()["scores"])],
    compare=shift.classes_shift,
    html=html_parts.classes_html,
    metrics=_CLASS_METRICS,
    shifts=(
        Metric("tv_distance", "total variation between the class shares, in [0, 1]"),
        Metric("w1_score", "2·W1 between the rank–frequency curves over the union of classes"),
        Metric("gained", "classes with instances only in B", score=False),
        Metric("lost", "classes with instances only in A", score=False),
        *_shifts(_CLASS_METRICS, "objects_per_image", "classes_per_image"),
    ),
)

# --- scale ---------------------------------------------------------------------------------------------------------

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
    write_tables=lambda r, ds, out: tables.scale_tables(r, out),
    write_figures=lambda r, out: _plots().plot_scale(r, out),
    figures=(
        ("scale_relative.png", "Fig. 7: relative width, height and area of the boxes."),
        ("scale_aspect_ratio.png", "Aspect ratio log2(w/h) of the boxes."),
        ("scale_buckets.png", "COCO size buckets (original image) and FPN levels P2–P5 (§5.2, after the resize)."),
    ),
    terminal=lambda r: [terminal.scale_table(r)],
    compare=shift.scale_shift,
    html=html_parts.scale_html,
    metrics=_SCALE_METRICS,
    shifts=_shifts(_SCALE_METRICS, *(m.name for m in _SCALE_METRICS)),
)

# --- location ------------------------------------------------------------------------------------------------------


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
    write_tables=lambda r, ds, out: tables.location_tables(r, out),
    write_figures=lambda r, out: _plots().plot_location(r, out, per_class=html_parts.LOCATION_CLASSES),
    figures=(
        ("location_centers.png", "Fig. 13: box centres over the normalised image, with the x and y marginals."),
        (
            "location_per_class.png",
            "Box centres of the classes with the most boxes, each map scaled to its busiest cell.",
        ),
    ),
    terminal=lambda r: [terminal.location_table(r)],
    compare=shift.location_shift,
    html=html_parts.location_html,
    metrics=_LOCATION_METRICS,
    shifts=_shifts(_LOCATION_METRICS, "x", "y", "xy", "w1_score"),
)

# --- anchors -------------------------------------------------------------------------------------------------------


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
    write_tables=lambda r, ds, out: _anchor_files(lambda a, to: tables.anchor_tables(a, ds.images, to))(r, out),
    write_figures=lambda r, out: _anchor_files(lambda a, to: _plots().plot_anchors(a, to))(r, out),
    figures=(
        ("anchors_fg_bg.png", "Fig. 4a: foreground, background and ignored anchors per image."),
        ("anchors_per_class.png", "Fig. 4b: foreground anchors and instances per class, per image."),
        ("anchors_positive_iou.png", "Fig. 12a: IoU of the foreground anchors with their GT."),
        ("anchors_per_gt.png", "Foreground anchors per GT, by COCO size bucket."),
        ("anchors_relative_spatial.png", "Fig. 14: foreground anchors in the frame of their GT."),
        ("anchors_overlap.png", "Fig. 15: anchors covering each cell of the normalised image."),
    ),
    terminal=terminal.anchor_tables,
    compare=shift.anchors_shift,
    html=html_parts.anchors_html,
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
        *_shifts(_ANCHOR_SCORES, *(m.name for m in _ANCHOR_SCORES)),
        Metric("foreground_per_gt", "shift of: foreground anchors per GT"),
        *_shifts(_SAMPLED_SCORES, *(m.name for m in _SAMPLED_SCORES)),
    ),
    extra_metrics=_anchor_extras,
    report_type=AnchorSummary,
    optional=ANCHORS_NEEDED,
    merge_shards=_merge_anchor_shards,
)

# --- remedies: repeat-factor sampling, class-balanced loss weights (written by class-dist beside its classes) ----


def _change_extras(result: RepeatFactorSampling | ClassBalancedLoss) -> dict[str, Any]:
    found = {f"change.{k}": v for k, v in result.change.items()}
    return found | ({"epoch_images": result.epoch_images} if isinstance(result, RepeatFactorSampling) else {})


_CHANGE = (
    Metric("change.tv_distance", "total variation between the class shares before and after, in [0, 1]"),
    Metric("change.w1_score", "2·W1 between the rank–frequency curves before and after"),
)
_REPEAT_FACTOR_METRICS = tuple(Metric(m.name, f"{m.meaning}, one resampled epoch", m.score) for m in _CLASS_METRICS)
_CLASS_BALANCED_METRICS = tuple(
    Metric(m.name, m.meaning.replace("instances", "weight · instances"), m.score) for m in _CLASS_METRICS[:5]
)
_CLASS_SHIFTS = CLASSES.shifts[:2]  # tv_distance, w1_score: the classes' own shifts

REPEAT_FACTOR = Section(
    name="repeat_factor",
    title="Remedy: repeat-factor sampling (LVIS)",
    result_type=RepeatFactorSampling,
    command="class-dist",
    compute=lambda ds, run: repeat_factor_sampling(ds, threshold=run.repeat_factor, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(raw=bool(ds.shard)),  # a shard's carries its image × class matrix for merge
    write_tables=lambda r, ds, out: tables.repeat_factor_tables(r, out),
    write_figures=lambda r, out: _plots().plot_repeat_factor(r, out),
    figures=(
        (
            "repeat_factor_instances.png",
            "Instances per class before and after one epoch of repeat-factor sampling (expected), with r_c.",
        ),
    ),
    terminal=terminal.repeat_factor_tables,
    compare=shift.repeat_factor_shift,
    html=html_parts.repeat_factor_html,
    metrics=(
        *_REPEAT_FACTOR_METRICS,
        Metric("epoch_images", "images in one resampled epoch, Σ r_i (expected)", score=False),
        *_CHANGE,
    ),
    shifts=(*_CLASS_SHIFTS, *_shifts(_CLASS_METRICS, "objects_per_image", "classes_per_image")),
    extra_metrics=_change_extras,
    optional="run with --repeat-factor T",
)

CLASS_BALANCED = Section(
    name="class_balanced",
    title="Remedy: class-balanced loss weights (effective number)",
    result_type=ClassBalancedLoss,
    command="class-dist",
    compute=lambda ds, run: class_balanced_loss(ds, beta=run.class_balanced, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: tables.class_balanced_tables(r, out),
    write_figures=lambda r, out: _plots().plot_class_balanced(r, out),
    figures=(
        ("class_balanced_weights.png", "Class-balanced weights against instances, and weight · instances per class."),
    ),
    terminal=lambda r: [terminal.class_balanced_table(r)],
    compare=shift.class_balanced_shift,
    html=html_parts.class_balanced_html,
    metrics=(*_CLASS_BALANCED_METRICS, *_CHANGE),
    shifts=_CLASS_SHIFTS,
    extra_metrics=_change_extras,
    optional="run with --class-balanced BETA",
)

# --- batch ---------------------------------------------------------------------------------------------------------


def _batch(ds: Dataset, run: Run) -> BatchDistribution:
    assert run.batch is not None, "the batch section is computed only when asked for"
    return batch_distribution(ds, box_filter=run.box_filter, **run.batch)


BATCH = Section(
    name="batch",
    title="Batch-level class imbalance (foreground-foreground)",
    result_type=BatchDistribution,
    command="batch-dist",
    compute=_batch,
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: tables.batch_tables(r, out),
    write_figures=lambda r, out: _plots().plot_batch(r, out),
    figures=(
        ("batch_absent.png", "Fig. 6: probability that a class is absent from a full batch, against its share."),
        ("batch_tv_distance.png", "Total variation distance between each batch's class shares and the dataset's."),
    ),
    terminal=terminal.batch_tables,
    compare=shift.batch_shift,
    html=html_parts.batch_html,
    metrics=(
        Metric("w1_score", "instances per class of a batch, rank–frequency (mean over full batches)"),
        Metric("tv_distance", "total variation between a batch's class shares and the dataset's (mean)"),
        Metric("rank_inversions", "share of full batches with more of the 2nd most frequent class than the 1st", False),
    ),
    shifts=(
        Metric("tv_distance", "2·W1 between the per-batch TV distance histograms"),
        Metric("w1_score", "change of the mean per-batch class score, B − A", score=False),
        Metric("rank_inversions", "change of the share of rank inversions, B − A", score=False),
    ),
    optional=BATCH_NEEDED,
    shardable=False,  # its epochs are drawn over the whole file
)

# --- the registry --------------------------------------------------------------------------------------------------

SECTIONS: tuple[Section, ...] = (CLASSES, SCALE, LOCATION, ANCHORS, REPEAT_FACTOR, CLASS_BALANCED, BATCH)  # in order
BY_NAME: dict[str, Section] = {s.name: s for s in SECTIONS}
# A command's own section (its fields at the JSON's top level) is the first with that command; the later
# ones (the remedies of class-dist) sit under their name beside it: NESTED.
BY_COMMAND: dict[str, Section] = {s.command: s for s in reversed(SECTIONS)}
NESTED: tuple[Section, ...] = tuple(s for s in SECTIONS if BY_COMMAND[s.command] is not s)

# Numbers of the dataset head that audits may check: dataset.<name>
DATASET_METRICS = (
    Metric("images", "images read", score=False),
    Metric("boxes", "boxes counted", score=False),
    Metric("categories", "categories", score=False),
    Metric("images_without_boxes", "images without a counted box", score=False),
    Metric("invalid_total", "annotations excluded or repaired while loading", score=False),
)
COMPARE_PREFIX = "compare."


def metric_table() -> dict[str, Metric]:
    """Every metric name an audit may check, in report order: ``dataset.*``, each section's, then ``compare.*``."""
    found = {f"dataset.{m.name}": m for m in DATASET_METRICS}
    found |= {f"{s.name}.{m.name}": m for s in SECTIONS for m in s.metrics}
    return found | {f"{COMPARE_PREFIX}{s.name}.{m.name}": m for s in SECTIONS for m in s.shifts}


def section_of(metric: str) -> Section | None:
    """The section a metric name belongs to (``anchors.fg_bg_ratio`` -> anchors); None for ``dataset.*``."""
    return BY_NAME.get(metric.removeprefix(COMPARE_PREFIX).split(".")[0])


def wanted(optional: Sequence[str] = ()) -> tuple[Section, ...]:
    """The sections a computation makes: every one that is not optional, and the optional ones named."""
    return tuple(s for s in SECTIONS if not s.optional or s.name in optional)


def _plots() -> Any:
    import imbstat.plots  # matplotlib: loaded only when figures are written

    return imbstat.plots
