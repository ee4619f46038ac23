"""The HTML of each report section's own tables (the page around them is ``report/html.py``).

Each ``<section>_html(body, scores)`` takes the section's JSON and its already
rendered scores table; every text from the dataset goes through :func:`e`.
"""

from __future__ import annotations

import html
from typing import Any

from imbstat.stats.batch import BatchDistribution
from imbstat.stats.batch_sums import QUANTILES
from imbstat.text import fmt_metric

HEAD_CLASSES, TAIL_CLASSES, LOCATION_CLASSES = 10, 5, 12
LABELS = ("foreground", "background", "ignored")  # of an anchor; per_image has "<label>_mean"


def classes_html(body: dict[str, Any], scores: str) -> str:
    classes = body.get("classes") or []
    shown = list(range(min(HEAD_CLASSES, len(classes))))
    shown += [i for i in range(max(len(classes) - TAIL_CLASSES, 0), len(classes)) if i not in shown]
    rows: list[list[Any]] = []
    for i in shown:
        if rows and i != shown[shown.index(i) - 1] + 1:
            rows.append(["…", "", "", "", ""])
        c = classes[i]
        rows.append([i + 1, c.get("name", ""), f"{c.get('instances', 0):,}", f"{c.get('images', 0):,}", c.get("group")])
    groups = body.get("groups") or {}
    group_rows = [[g, f"{n:,}"] for g, n in groups.items()]
    title = f"Classes by instances ({len(classes):,}; head and tail)"
    tables = [
        scores,
        table(["group", "classes"], group_rows, "compact", num=(1,), title="LVIS-style groups"),
        table(["rank", "class", "instances", "images", "group"], rows, "compact", num=(0, 2, 3), title=title),
    ]
    return '<div class="tables">' + "".join(tables) + "</div>"


def scale_html(body: dict[str, Any], scores: str) -> str:
    tables = [scores]
    for key, title, label in (("size_buckets", "COCO size buckets", "bucket"), ("fpn_levels", "FPN levels", "level")):
        counts = body.get(key)
        if isinstance(counts, dict):
            total = sum(counts.values()) or 1
            prefix = "P" if key == "fpn_levels" else ""
            rows = [[f"{prefix}{k}", f"{n:,}", f"{100 * n / total:.1f} %"] for k, n in counts.items()]
            tables.append(table([label, "boxes", "share"], rows, "compact", num=(1, 2), title=title))
    resize = body.get("resize")
    note = f'<p class="note">{e(body["missing"])}</p>' if body.get("missing") else ""
    if isinstance(resize, dict) and body.get("fpn_levels"):
        short, long = (e(fmt_metric("", resize.get(k) or 0)) for k in ("short", "long"))
        note += f'<p class="legend">FPN levels after resizing to short side {short}, long side ≤ {long} '
        note += "(k = floor(4 + log2(√(wh)/224)), clamped to 2–5).</p>"
    return '<div class="tables">' + "".join(tables) + "</div>" + note


def location_html(body: dict[str, Any], scores: str) -> str:
    tables = [scores]
    per_class = [(c, sum(map(sum, c.get("counts") or []))) for c in body.get("per_class") or []]
    per_class.sort(key=lambda cb: -cb[1])
    rows = []
    for c, boxes in per_class[:LOCATION_CLASSES]:
        s = c.get("scores") or {}
        rows.append([c.get("name", ""), f"{boxes:,}"] + [fixed(s.get(k)) for k in ("x", "y", "xy")])
    if rows:
        title = f"Per class: the {len(rows)} with the most boxes"
        tables.append(table(["class", "boxes", "x", "y", "xy"], rows, "compact", num=(1, 2, 3, 4), title=title))
    return '<div class="tables">' + "".join(tables) + "</div>"


def anchors_html(body: dict[str, Any], scores: str) -> str:
    preset = body.get("preset") or {}
    totals = body.get("anchors") or {}
    per_image = body.get("per_image") or {}
    summary = [[k, f"{totals[k]:,}", ""] for k in ("total",) if k in totals]
    summary += [[k, f"{totals[k]:,}", f"{per_image.get(f'{k}_mean', 0):,.1f}"] for k in LABELS if k in totals]
    ratio = body.get("fg_bg_ratio")
    if ratio is not None:
        summary.append(["fg : bg", fmt_metric("anchors.fg_bg_ratio", ratio), ""])
    per_gt = (body.get("per_gt") or {}).get("by_size") or {}
    all_gts = (body.get("per_gt") or {}).get("all")
    gt_rows = []
    for bucket, g in [*per_gt.items(), *([("all", all_gts)] if all_gts else [])]:
        counts = [f"{g.get(k, 0):,}" for k in ("low_quality_only", "below_pos", "unmatched")]
        gt_rows.append([bucket, f"{g.get('gts', 0):,}", f"{g.get('foreground_per_gt') or 0:.1f}", *counts])
    gt_header = ["GT size", "GTs", "fg anchors / GT", "low-quality only", "none ≥ pos", "no fg"]
    head = (
        f'<p class="legend">Preset <b>{e(preset.get("name", "?"))}</b>: foreground IoU ≥ {e(preset.get("pos_iou"))}, '
        f"background IoU &lt; {e(preset.get('neg_iou'))}, ignored between; strides {e(preset.get('strides'))}.</p>"
    )
    tables = [
        scores,
        table(["anchors", "total", "per image"], summary, "compact", num=(1, 2), title="Labels"),
        table(gt_header, gt_rows, "compact", num=(1, 2, 3, 4, 5), title="Per GT"),
    ]
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
    return "n/a" if value is None else f"{value:.3f}"


def e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
