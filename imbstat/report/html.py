"""The single-file HTML report: taxonomy first, then one section per statistic with its figures.

The page is self-contained and static: every figure is embedded as a base64
``data:image/png`` URI, the CSS is inline, there is no JavaScript and no
external URL of any kind (no CDN, no web font), so ``index.html`` can be mailed,
archived as a CI artifact or opened offline. Every text that comes from the
dataset (path, class names, options) goes through :func:`html.escape`.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from imbstat.analysis import Results
from imbstat.errors import ImbstatError
from imbstat.report.document import dumps
from imbstat.report.html_parts import e, score_cell, table
from imbstat.report.taxonomy import TaxonomyRow, taxonomy_rows
from imbstat.sections import BY_NAME, SECTIONS, metric_table
from imbstat.text import fmt_metric

# The figure of each file name, with its caption, from the registry's sections
FIGURES = {file: (s.name, caption) for s in SECTIONS for file, caption in s.figures}

INDEX = "index.html"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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
    """Write ``out_dir/index.html`` for a report document and its PNG figures (other files are ignored).

    Only the figures in ``out_dir`` itself are embedded: a further preset's (``--preset A --preset B``)
    are in its subfolder, and the page shows its numbers in the side-by-side table.
    """
    target = Path(out_dir) / INDEX
    pngs = [Path(f) for f in figures if Path(f).suffix.lower() == ".png"]
    text = render(doc, [p for p in pngs if p.parent == Path(out_dir)])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    except OSError as err:
        raise ImbstatError(f"cannot write the HTML report: {err.strerror}", target) from None
    return target


def render(doc: dict[str, Any], figures: Sequence[Path]) -> str:
    """The HTML page of a report document (``report_document(results)`` or its JSON) with ``figures`` embedded."""
    doc = json.loads(dumps(doc))  # the JSON contract: plain values, NaN as None
    report = Results.from_document(doc)  # each section's result object, read back as a saved report is
    by_section: dict[str, list[Path]] = {}
    for path in figures:
        by_section.setdefault(_section_of(path.name), []).append(path)
    sections = list(report.views)  # in report order
    dataset = doc.get("dataset") or {}
    title = f"imbstat report: {Path(str(dataset.get('path', ''))).name or 'dataset'}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}</title><style>{CSS}</style></head><body><main>",
        _header(dataset, sections),
        _taxonomy(taxonomy_rows(report), sections),
    ]
    for section in sections:
        result = report.views[section]
        parts.append(f'<section id="{section}"><h2>{e(BY_NAME[section].title)}</h2>')
        parts.append(BY_NAME[section].html(result, _scores_table(section, result.scores)))
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
        reasons = ", ".join(f"{e(k.replace('_', ' '))} <b>{n:,}</b>" for k, n in invalid.items())
        problems = f"{dataset.get('invalid_total', sum(invalid.values())):,} excluded or repaired: {reasons}"
    else:
        problems = "none"
    toc = ['<li><a href="#taxonomy">Imbalance problems (survey Table 1)</a></li>']
    toc += [f'<li><a href="#{s}">{e(BY_NAME[s].title)}</a></li>' for s in sections]
    for s in SECTIONS:
        if s.optional and s.name not in sections:
            toc.append(f'<li class="note">{e(s.name.capitalize())}: not computed ({e(s.optional)})</li>')
    return (
        "<header><h1>Imbalance report</h1>"
        f'<p class="path">{e(dataset.get("path", ""))}</p>'
        '<ul class="facts">' + "".join(f"<li>{e(k)} <b>{e(v)}</b></li>" for k, v in facts) + "</ul>"
        f'<p class="invalid">Invalid annotations by reason: {problems}</p>'
        '<nav class="toc"><b>Contents</b><ol>' + "".join(toc) + "</ol></nav></header>"
    )


def _taxonomy(rows: list[TaxonomyRow], sections: list[str]) -> str:
    body = []
    for i, row in enumerate(rows):
        cells = []
        if i == 0 or rows[i - 1].problem != row.problem:
            span = next((j for j in range(i, len(rows)) if rows[j].problem != row.problem), len(rows)) - i
            cells.append(f'<td class="type" rowspan="{span}">{e(row.problem)}</td>')
        cells.append(f'<td class="problem">{e(row.sub_problem)}</td>')
        cells.append(f'<td class="score">{score_cell(row.value, row.note)}</td>')
        metric = f" <code>{e(row.metric)}</code>" if row.metric else ""
        cells.append(f"<td>{e(row.statistic)}{metric}</td>")
        link = f'<a href="#{e(row.section)}">{e(row.section)}</a>' if row.section in sections else ""
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


# --- sections -------------------------------------------------------------------------------------------------------


def _scores_table(section: str, scores: dict[str, float]) -> str:
    """A section's scores with their meanings (the registry's metrics); counts and ratios without a bar."""
    known = metric_table()
    rows = []
    for name, value in scores.items():
        metric = f"{section}.{name}"
        m = known.get(metric)
        if not math.isfinite(value):  # undefined (NaN; the JSON's null)
            shown = '<span class="note">n/a</span>'
        elif m is not None and not m.score:
            shown = f'<span class="value">{e(fmt_metric(metric, value))}</span>'
        else:
            shown = score_cell(float(value))
        rows.append([e(name.replace("_", " ")), shown, e(m.meaning if m else "")])
    return table(["score", "value", "of"], rows, "compact", raw=True, title="Scores")


def _footer(doc: dict[str, Any]) -> str:
    options = ", ".join(f"{k}={v}" for k, v in (doc.get("options") or {}).items()) or "defaults"
    return (
        f"<footer>imbstat {e(doc.get('imbstat_version', '?'))} · schema {e(doc.get('schema_version', '?'))} · "
        f"options: {e(options)} · the numbers are in report.json and the CSV tables beside this file.</footer>"
    )


# --- pieces ---------------------------------------------------------------------------------------------------------


def _figure(path: Path) -> str:
    """One figure as an ``<img>`` with a data URI; width and height from the PNG header keep the layout."""
    data = path.read_bytes()
    if data[:8] != PNG_SIGNATURE:
        raise ImbstatError("not a PNG file", path)
    width, height = struct.unpack(">II", data[16:24])  # IHDR: the first chunk, right after the signature
    caption = FIGURES[path.name][1] if path.name in FIGURES else path.stem.replace("_", " ")
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return (
        f'<figure id="fig-{e(path.stem)}"><img src="{uri}" width="{width}" height="{height}" alt="{e(caption)}">'
        f"<figcaption>{e(caption)} <code>{e(path.name)}</code></figcaption></figure>"
    )


def _section_of(name: str) -> str:
    """The section a figure file belongs to: the one listing it, else the one it is named after, else the first."""
    if name in FIGURES:
        return FIGURES[name][0]
    return next((s.name for s in SECTIONS if name.startswith(f"{s.name}_")), SECTIONS[0].name)
