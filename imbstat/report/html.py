"""The single-file HTML report: taxonomy first, then one section per statistic with its figures.

The page is self-contained and static: every figure is embedded as a base64
``data:image/png`` URI, the CSS is inline, there is no JavaScript and no
external URL of any kind (no CDN, no web font), so ``index.html`` can be mailed,
archived as a CI artifact or opened offline. Every text that comes from the
dataset (path, class names, options) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from imbstat.errors import ImbstatError
from imbstat.report.document import dumps
from imbstat.report.taxonomy import TaxonomyRow, fmt_metric, taxonomy_rows

INDEX = "index.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SECTION_TITLES = {
    "classes": "Class imbalance (foreground-foreground)",
    "scale": "Scale imbalance",
    "location": "Spatial imbalance: object location",
    "anchors": "Anchors: foreground-background and IoU distribution",
}
# Figures go to the section their file name starts with; the rest (objects/classes per image) to "classes".
FIGURE_PREFIXES = (("anchors_", "anchors"), ("scale_", "scale"), ("location_", "location"))
CAPTIONS = {
    "classes_long_tail.png": "Fig. 5a: instances per class in rank–frequency order, coloured by group.",
    "objects_per_image.png": "Fig. 5b: objects per image.",
    "classes_per_image.png": "Fig. 5c: distinct classes per image.",
    "scale_relative.png": "Fig. 7: relative width, height and area of the boxes.",
    "scale_aspect_ratio.png": "Aspect ratio log2(w/h) of the boxes.",
    "scale_buckets.png": "COCO size buckets (original image) and FPN levels P2–P5 (§5.2, after the resize).",
    "location_centers.png": "Fig. 13: box centres over the normalised image, with the x and y marginals.",
    "location_per_class.png": "Box centres of the classes with the most boxes, each map scaled to its busiest cell.",
    "anchors_fg_bg.png": "Fig. 4a: foreground, background and ignored anchors per image.",
    "anchors_per_class.png": "Fig. 4b: foreground anchors and instances per class, per image.",
    "anchors_positive_iou.png": "Fig. 12a: IoU of the foreground anchors with their GT.",
    "anchors_per_gt.png": "Foreground anchors per GT, by COCO size bucket.",
    "anchors_relative_spatial.png": "Fig. 14: foreground anchors in the frame of their GT.",
    "anchors_overlap.png": "Fig. 15: anchors covering each cell of the normalised image.",
}
SCORE_NOTES = {
    "classes.w1_score": "instances per class, rank–frequency",
    "classes.gini": "Gini coefficient of instances per class",
    "classes.imbalance_ratio": "max / min instances over the classes present (1 = balanced)",
    "classes.normalized_entropy": "H / ln K of instances per class (1 = balanced)",
    "classes.top10_share": "share of the instances in the top 10 % of classes",
    "classes.objects_per_image": "objects per image",
    "classes.classes_per_image": "distinct classes per image",
    "scale.relative_width": "w / W",
    "scale.relative_height": "h / H",
    "scale.relative_area": "wh / (WH)",
    "scale.aspect_ratio": "log2(w / h)",
    "scale.size_buckets": "COCO small / medium / large",
    "scale.fpn_levels": "FPN levels P2–P5",
    "location.x": "x of the centres",
    "location.y": "y of the centres",
    "location.xy": "centres on the G×G grid (2-D W1)",
    "anchors.foreground_background": "foreground vs background anchors",
    "anchors.positive_iou": "IoU of the foreground anchors",
    "anchors.foreground_classes": "foreground anchors per class, rank–frequency",
    "anchors.relative_top_left": "anchor top-left corners in the GT's frame",
    "anchors.relative_center": "anchor centres in the GT's frame",
    "anchors.overlap_foreground": "foreground anchors covering each cell",
    "anchors.overlap_background": "background anchors covering each cell",
}
# Numbers of a section's "scores" that are not 0-balanced-to-1-extreme scores: shown without a bar.
NOT_SCORES = {"classes.imbalance_ratio", "classes.normalized_entropy", "classes.top10_share"}
HEAD_CLASSES, TAIL_CLASSES, LOCATION_CLASSES = 10, 5, 12
LABELS = ("foreground", "background", "ignored")  # of an anchor; per_image has "<label>_mean"

CSS = """
:root { --ink: #1d2433; --muted: #5b6478; --line: #d9dee8; --soft: #f4f6fa; --accent: #2f5fb3; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff; line-height: 1.45;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 26px; margin: 0 0 4px; }
h2 { font-size: 20px; margin: 36px 0 12px; padding-bottom: 6px; border-bottom: 2px solid var(--line); }
h3 { font-size: 16px; margin: 22px 0 8px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
.path { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 13px; color: var(--muted);
  word-break: break-all; margin: 0 0 14px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px; margin: 0 0 10px; padding: 0; list-style: none; }
.facts li { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 4px 10px; }
.facts b { font-variant-numeric: tabular-nums; }
.invalid { color: var(--muted); font-size: 14px; margin: 6px 0; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 8px 16px;
  margin: 18px 0 0; font-size: 14px; }
nav.toc ol { margin: 4px 0; padding-left: 20px; columns: 2; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin: 8px 0 14px; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.compact { width: auto; min-width: 360px; }
table.taxonomy td.type { font-weight: 600; background: #fbfcfe; width: 120px; }
table.taxonomy td.problem { width: 215px; }
table.taxonomy td.score { width: 230px; }
table.taxonomy .note { font-size: 13px; }
td.score { white-space: nowrap; }
td.score .note { white-space: normal; }
table.taxonomy code { display: block; color: var(--muted); font-size: 12px; }
.bar { display: inline-block; width: 110px; height: 10px; margin-right: 8px; vertical-align: middle;
  background: #e8ebf1; border-radius: 5px; overflow: hidden; }
.bar > span { display: block; height: 100%; border-radius: 5px; }
.value { font-variant-numeric: tabular-nums; font-weight: 600; }
.note { color: var(--muted); font-style: italic; }
.legend { color: var(--muted); font-size: 13px; }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; box-shadow: 0 0 0 1px var(--line); }
figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.tables { display: flex; flex-wrap: wrap; gap: 0 28px; align-items: flex-start; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; border-top: 1px solid var(--line); padding-top: 10px; }
code { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 0.92em; }
"""


def write_index(doc: dict[str, Any], figures: Iterable[str | Path], out_dir: str | Path) -> Path:
    """Write ``out_dir/index.html`` for a report document and its PNG figures (other files are ignored)."""
    target = Path(out_dir) / INDEX
    text = render(doc, [Path(f) for f in figures if Path(f).suffix.lower() == ".png"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        raise ImbstatError(f"cannot write the HTML report: {e.strerror}", target) from None
    return target


def render(doc: dict[str, Any], figures: Sequence[Path]) -> str:
    """The HTML page of a report document (``Results.document()`` or its JSON) with ``figures`` embedded."""
    doc = json.loads(dumps(doc))  # the JSON contract: plain values, NaN as None
    by_section: dict[str, list[Path]] = {}
    for path in figures:
        by_section.setdefault(_section_of(path.name), []).append(path)
    sections = [s for s in SECTION_TITLES if isinstance(doc.get(s), dict)]
    dataset = doc.get("dataset") or {}
    title = f"imbstat report: {Path(str(dataset.get('path', ''))).name or 'dataset'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        _header(dataset, sections),
        _taxonomy(taxonomy_rows(doc), sections),
    ]
    for section in sections:
        parts.append(f'<section id="{section}"><h2>{_e(SECTION_TITLES[section])}</h2>')
        parts.append(_SECTION_BODIES[section](doc[section]))
        parts.extend(_figure(p) for p in by_section.get(section, []))
        parts.append("</section>")
    parts.append(_footer(doc))
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


# --- page head and taxonomy -----------------------------------------------------------------------------------------


def _header(dataset: dict[str, Any], sections: list[str]) -> str:
    facts = [("format", dataset.get("format", "?"))]
    for key in ("images", "boxes", "categories", "crowd", "difficult", "group_of", "images_without_boxes"):
        if dataset.get(key):
            facts.append((key.replace("_", " "), f"{dataset[key]:,}"))
    invalid = dataset.get("invalid") or {}
    if invalid:
        reasons = ", ".join(f"{_e(k.replace('_', ' '))} <b>{n:,}</b>" for k, n in invalid.items())
        problems = f"{dataset.get('invalid_total', sum(invalid.values())):,} excluded or repaired: {reasons}"
    else:
        problems = "none"
    toc = ['<li><a href="#taxonomy">Imbalance problems (survey Table 1)</a></li>']
    toc += [f'<li><a href="#{s}">{_e(SECTION_TITLES[s])}</a></li>' for s in sections]
    if "anchors" not in sections:
        toc.append('<li class="note">Anchors: not computed (run with --anchors)</li>')
    return (
        "<header><h1>Imbalance report</h1>"
        f'<p class="path">{_e(dataset.get("path", ""))}</p>'
        '<ul class="facts">' + "".join(f"<li>{_e(k)} <b>{_e(v)}</b></li>" for k, v in facts) + "</ul>"
        f'<p class="invalid">Invalid annotations by reason: {problems}</p>'
        '<nav class="toc"><b>Contents</b><ol>' + "".join(toc) + "</ol></nav></header>"
    )


def _taxonomy(rows: list[TaxonomyRow], sections: list[str]) -> str:
    body = []
    for i, row in enumerate(rows):
        cells = []
        if i == 0 or rows[i - 1].problem != row.problem:
            span = next((j for j in range(i, len(rows)) if rows[j].problem != row.problem), len(rows)) - i
            cells.append(f'<td class="type" rowspan="{span}">{_e(row.problem)}</td>')
        cells.append(f'<td class="problem">{_e(row.sub_problem)}</td>')
        cells.append(f'<td class="score">{_score_cell(row.value, row.note)}</td>')
        metric = f" <code>{_e(row.metric)}</code>" if row.metric else ""
        cells.append(f"<td>{_e(row.statistic)}{metric}</td>")
        link = f'<a href="#{_e(row.section)}">{_e(row.section)}</a>' if row.section in sections else ""
        cells.append(f"<td>{link}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        '<section id="taxonomy"><h2>Imbalance problems (survey Table 1)</h2>'
        '<table class="taxonomy"><thead><tr><th>Type</th><th>Problem</th><th>Score</th>'
        "<th>Statistic</th><th>Section</th></tr></thead><tbody>" + "".join(body) + "</tbody></table>"
        '<p class="legend">Score: twice the Wasserstein-1 distance of the distribution to the uniform one; '
        "0 = balanced, 1 = all mass at one extreme (2-D maps: divided by the distance of a point mass at a "
        "corner). The section numbers are those of Oksuz et al., <i>Imbalance Problems in Object Detection: "
        "A Review</i>, TPAMI 2020.</p></section>"
    )


def _score_cell(value: float | None, note: str = "") -> str:
    if value is None:
        return f'<span class="note">{_e(note or "n/a")}</span>'
    return _bar(value) + f'<span class="value">{value:.3f}</span>'


def _bar(value: float) -> str:
    """A bar of ``value`` in [0, 1] drawn in CSS, green (balanced) to red (extreme)."""
    v = min(max(value, 0.0), 1.0)
    hue = round(120 * (1 - v))
    return f'<span class="bar"><span style="width:{100 * v:.1f}%;background:hsl({hue},60%,45%)"></span></span>'


# --- sections -------------------------------------------------------------------------------------------------------


def _scores_table(section: str, scores: dict[str, Any]) -> str:
    rows = []
    for name, value in scores.items():
        metric = f"{section}.{name}"
        if value is None:
            shown = '<span class="note">n/a</span>'
        elif metric in NOT_SCORES:
            shown = f'<span class="value">{_e(fmt_metric(metric, value))}</span>'
        else:
            shown = _score_cell(float(value))
        rows.append([_e(name.replace("_", " ")), shown, _e(SCORE_NOTES.get(metric, ""))])
    return _table(["score", "value", "of"], rows, "compact", raw=True, title="Scores")


def _classes(body: dict[str, Any]) -> str:
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
        _scores_table("classes", body.get("scores") or {}),
        _table(["group", "classes"], group_rows, "compact", num=(1,), title="LVIS-style groups"),
        _table(["rank", "class", "instances", "images", "group"], rows, "compact", num=(0, 2, 3), title=title),
    ]
    return '<div class="tables">' + "".join(tables) + "</div>"


def _scale(body: dict[str, Any]) -> str:
    tables = [_scores_table("scale", body.get("scores") or {})]
    for key, title, label in (("size_buckets", "COCO size buckets", "bucket"), ("fpn_levels", "FPN levels", "level")):
        counts = body.get(key)
        if isinstance(counts, dict):
            total = sum(counts.values()) or 1
            prefix = "P" if key == "fpn_levels" else ""
            rows = [[f"{prefix}{k}", f"{n:,}", f"{100 * n / total:.1f} %"] for k, n in counts.items()]
            tables.append(_table([label, "boxes", "share"], rows, "compact", num=(1, 2), title=title))
    resize = body.get("resize")
    note = f'<p class="note">{_e(body["missing"])}</p>' if body.get("missing") else ""
    if isinstance(resize, dict) and body.get("fpn_levels"):
        short, long = (_e(fmt_metric("", resize.get(k) or 0)) for k in ("short", "long"))
        note += f'<p class="legend">FPN levels after resizing to short side {short}, long side ≤ {long} '
        note += "(k = floor(4 + log2(√(wh)/224)), clamped to 2–5).</p>"
    return '<div class="tables">' + "".join(tables) + "</div>" + note


def _location(body: dict[str, Any]) -> str:
    tables = [_scores_table("location", body.get("scores") or {})]
    per_class = [(c, sum(map(sum, c.get("counts") or []))) for c in body.get("per_class") or []]
    per_class.sort(key=lambda cb: -cb[1])
    rows = []
    for c, boxes in per_class[:LOCATION_CLASSES]:
        s = c.get("scores") or {}
        rows.append([c.get("name", ""), f"{boxes:,}"] + [_fixed(s.get(k)) for k in ("x", "y", "xy")])
    if rows:
        title = f"Per class: the {len(rows)} with the most boxes"
        tables.append(_table(["class", "boxes", "x", "y", "xy"], rows, "compact", num=(1, 2, 3, 4), title=title))
    return '<div class="tables">' + "".join(tables) + "</div>"


def _anchors(body: dict[str, Any]) -> str:
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
        f'<p class="legend">Preset <b>{_e(preset.get("name", "?"))}</b>: foreground IoU ≥ {_e(preset.get("pos_iou"))}, '
        f"background IoU &lt; {_e(preset.get('neg_iou'))}, ignored between; strides {_e(preset.get('strides'))}.</p>"
    )
    tables = [
        _scores_table("anchors", body.get("scores") or {}),
        _table(["anchors", "total", "per image"], summary, "compact", num=(1, 2), title="Labels"),
        _table(gt_header, gt_rows, "compact", num=(1, 2, 3, 4, 5), title="Per GT"),
    ]
    return head + '<div class="tables">' + "".join(tables) + "</div>"


_SECTION_BODIES = {"classes": _classes, "scale": _scale, "location": _location, "anchors": _anchors}


def _footer(doc: dict[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in (doc.get("options") or {}).items()) or "defaults"
    return (
        f"<footer>imbstat {_e(doc.get('imbstat_version', '?'))} · schema {_e(doc.get('schema_version', '?'))} · "
        f"options: {_e(options)} · the numbers are in report.json and the CSV tables beside this file.</footer>"
    )


# --- pieces ---------------------------------------------------------------------------------------------------------


def _figure(path: Path) -> str:
    """One figure as an ``<img>`` with a data URI; width and height from the PNG header keep the layout."""
    data = path.read_bytes()
    if data[:8] != PNG_SIGNATURE:
        raise ImbstatError("not a PNG file", path)
    width, height = struct.unpack(">II", data[16:24])  # IHDR: the first chunk, right after the signature
    caption = CAPTIONS.get(path.name, path.stem.replace("_", " "))
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure id="fig-{_e(path.stem)}"><img src="{uri}" width="{width}" height="{height}" alt="{_e(caption)}">'
        f"<figcaption>{_e(caption)} <code>{_e(path.name)}</code></figcaption></figure>"
    )


def _table(
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

    head = "".join(cell("th", j, _e(h)) for j, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", j, v if raw else _e(v)) for j, v in enumerate(r)) + "</tr>" for r in rows
    )
    caption = f"<h3>{_e(title)}</h3>" if title else ""
    return f'<div>{caption}<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _section_of(name: str) -> str:
    return next((section for prefix, section in FIGURE_PREFIXES if name.startswith(prefix)), "classes")


def _fixed(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)
