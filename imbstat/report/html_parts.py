"""The HTML of each report section's own tables (the page around them is ``report/html.py``).

Each ``<section>_html(result, scores)`` takes the section's result object (as
read back from a report: ``Section.read``) and its already rendered scores
table; every text from the dataset goes through :func:`e`.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np

from imbstat.stats import (
    BatchDistribution,
    ClassBalancedLoss,
    ClassDistribution,
    LocationDistribution,
    RepeatFactorSampling,
    ScaleDistribution,
)
from imbstat.stats.anchor_summary import LABELS, AnchorSummary, side_by_side_rows
from imbstat.stats.batch_sums import QUANTILES
from imbstat.stats.scale import FPN_LEVELS, SIZE_BUCKETS
from imbstat.text import fmt_metric

HEAD_CLASSES, TAIL_CLASSES, LOCATION_CLASSES = 10, 5, 12


def classes_html(result: ClassDistribution, scores: str) -> str:
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


def scale_html(result: ScaleDistribution, scores: str) -> str:
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


def location_html(result: LocationDistribution, scores: str) -> str:
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


def anchors_html(result: AnchorSummary, scores: str) -> str:
    preset, totals = result.preset, result.totals
    summary = [["total", f"{totals['total']:,}", ""]]
    summary += [[k, f"{totals[k]:,}", f"{result.per_image_mean[k]:,.1f}"] for k in LABELS]
    if math.isfinite(result.fg_bg_ratio):  # NaN without a background anchor
        summary.append(["fg : bg", fmt_metric("anchors.fg_bg_ratio", result.fg_bg_ratio), ""])
    gt_rows = []
    for bucket, g in result.per_gt.items():  # small, medium, large, all
        counts = [f"{g[k]:,}" for k in ("low_quality_only", "below_pos", "unmatched")]
        gt_rows.append([bucket, f"{g['gts']:,}", f"{_finite(g['foreground_per_gt']):.1f}", *counts])
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


def repeat_factor_html(result: RepeatFactorSampling, scores: str) -> str:
    """Scores before and after, and the head and tail classes with r_c and expected counts per epoch."""
    body = result.to_dict()
    before = body.get("scores_before") or {}
    score_rows = [[k, fixed(before.get(k)), fixed(v)] for k, v in (body.get("scores") or {}).items()]
    per_class = sorted(body.get("per_class") or [], key=lambda c: -(c.get("instances_before") or 0))
    shown = list(range(min(HEAD_CLASSES, len(per_class))))
    shown += [i for i in range(max(len(per_class) - TAIL_CLASSES, 0), len(per_class)) if i not in shown]
    rows: list[list[Any]] = []
    for n, i in enumerate(shown):
        if n and i != shown[n - 1] + 1:
            rows.append(["…", "", "", "", "", "", ""])
        c = per_class[i]
        factor = c.get("repeat_factor")
        rows.append([i + 1, c.get("name", ""), "n/a" if factor is None else f"{factor:.3f}",
                     f"{c.get('instances_before', 0):,}", f"{c.get('instances') or 0:,.1f}",
                     f"{c.get('images_before', 0):,}", f"{c.get('images') or 0:,.1f}"])  # fmt: skip
    header = ["rank", "class", "r_c", "instances", "per epoch", "images", "per epoch"]
    head = (
        f'<p class="legend">Threshold {e(body.get("threshold"))}: one resampled epoch is '
        f"{e(fmt_metric('', body.get('epoch_images') or 0))} images for {e(format(body.get('num_images') or 0, ','))} "
        "(expected numbers; r_c = max(1, √(T / f_c)), an image repeated by its rarest class's factor).</p>"
    )
    tables = [
        scores,
        table(["measure", "before", "after"], score_rows, "compact", num=(1, 2), title="Class scores"),
        table(header, rows, "compact", num=(0, 2, 3, 4, 5, 6), title="Classes by instances (head and tail)"),
    ]
    return head + '<div class="tables">' + "".join(tables) + "</div>"


def class_balanced_html(result: ClassBalancedLoss, scores: str) -> str:
    """Every class's weight, to paste into a config, and the scores of the loss mass per class."""
    body = result.to_dict()
    rows = [[c.get("name", ""), c.get("category_id"), f"{c.get('instances', 0):,}", f"{c.get('weight') or 0:.4g}"]
            for c in sorted(body.get("per_class") or [], key=lambda c: -(c.get("instances") or 0))]  # fmt: skip
    head = (
        f'<p class="legend">β = {e(body.get("beta"))}: w_c ∝ (1 − β) / (1 − β^n_c), normalised to sum to the '
        "number of classes with instances (0 for a class without); the scores are those of weight · instances.</p>"
    )
    tables = [scores, table(["class", "id", "instances", "weight"], rows, "compact", num=(2, 3), title="Weights")]
    return head + '<div class="tables">' + "".join(tables) + "</div>"


def batch_html(result: BatchDistribution, scores: str) -> str:
    """The batch section's tables from its result (``BatchDistribution.from_dict`` of a report's JSON)."""
    frame = result.to_frame().head(HEAD_CLASSES)
    median = f"share_q{0.5:g}"
    class_rows = [
        [r["name"], fixed(r.dataset_share), fixed(r.absent_probability), fixed(r.share_mean), fixed(r[median])]
        for _, r in frame.iterrows()
    ]
    numbers = [
        ["full batches", f"{result.full_batches:,}"],
        ["incomplete (left out)", f"{result.incomplete_batches:,}"],
        ["full, no instances", f"{result.batches_without_instances:,}"],
        *([f"TV distance q{level:g}", fixed(v)] for level, v in zip(QUANTILES, result.tv_quantiles, strict=True)),
        ["rank inversions (top two classes)", f"{result.rank_inversions:,}"],
    ]
    head = (f"<p>Batches of {e(result.batch_size)} images, sampler {e(result.sampler)}, {e(result.epochs)} epochs, "
            f"seed {e(result.seed)}; full batches only.</p>")  # fmt: skip
    tables = [
        scores,
        table(["measure", "value"], numbers, "compact", num=(1,), title="Per full batch"),
        table(["class", "dataset share", "P(absent)", "share mean", "share median"], class_rows, "compact",
              num=(1, 2, 3, 4), title=f"Classes by dataset share (head, {len(class_rows)})"),
    ]  # fmt: skip
    return head + '<div class="tables">' + "".join(tables) + "</div>"


# --- pieces ---------------------------------------------------------------------------------------------------------


def score_cell(value: float | None, note: str = "") -> str:
    if value is None:
        return f'<span class="note">{e(note or "n/a")}</span>'
    return bar(value) + f'<span class="value">{value:.3f}</span>'


def bar(value: float) -> str:
    """A bar of ``value`` in [0, 1] drawn in CSS, green (balanced) to red (extreme)."""
    v = min(max(value, 0.0), 1.0)
    hue = round(120 * (1 - v))
    return f'<span class="bar"><span style="width:{100 * v:.1f}%;background:hsl({hue},60%,45%)"></span></span>'


def table(
    header: list[str],
    rows: list[list[Any]],
    cls: str = "",
    num: tuple[int, ...] = (),
    raw: bool = False,
    title: str = "",
) -> str:
    """A table; cells are escaped unless ``raw`` (cells already HTML), columns in ``num`` right-aligned."""

    def cell(tag: str, j: int, markup: str) -> str:
        align = ' class="num"' if j in num else ""
        return f"<{tag}{align}>{markup}</{tag}>"

    head = "".join(cell("th", j, e(h)) for j, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", j, v if raw else e(v)) for j, v in enumerate(r)) + "</tr>" for r in rows)
    caption = f"<h3>{e(title)}</h3>" if title else ""
    return f'<div>{caption}<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def fixed(value: Any) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _finite(value: float) -> float:
    """``value``, or 0 where it is NaN (a mean over no GT)."""
    return value if math.isfinite(value) else 0.0


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
