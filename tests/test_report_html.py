"""The ``report`` and ``summary`` commands, the taxonomy rows and the self-contained index.html (also in Chromium)."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
from browser import dump_dom, find_chromium, screenshot
from helpers import coco_doc, run
from PIL import Image

from imbstat import Results
from imbstat.data.sample import write_sample
from imbstat.report.html import render
from imbstat.report.taxonomy import ANCHORS_NEEDED, NO_LOSS_IN_A_DATASET, TAXONOMY, taxonomy_rows

EVIL = '<script>alert("x")</script> & co'  # a class name that must reach the page as text only
EVIL_ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co"  # html.escape(EVIL)
WINDOW = (1280, 4000)
# Every src and href of the page, quoted as render() writes them.
LINK = re.compile(r"""\b(src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    """The built-in sample, 40 images, with its first class renamed to :data:`EVIL`."""
    path = write_sample(tmp_path_factory.mktemp("sample") / "sample.json", num_images=40)
    doc = json.loads(path.read_text())
    doc["categories"][0]["name"] = EVIL
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def report_dir(sample, tmp_path_factory) -> Path:
    """``imbstat report --anchors`` of the sample: every section, anchors included."""
    out = tmp_path_factory.mktemp("report")
    result = run("report", sample, "--anchors", "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def page(report_dir) -> str:
    return (report_dir / "index.html").read_text(encoding="utf-8")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR width, height


# --- the page, without a browser ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_report_writes_json_tables_figures_and_index(report_dir):
    names = {p.name for p in report_dir.iterdir()}
    assert {"report.json", "index.html", "classes.csv", "anchors_per_gt.csv"} <= names
    assert {"classes_long_tail.png", "scale_relative.png", "location_centers.png", "anchors_fg_bg.png"} <= names
    doc = json.loads((report_dir / "report.json").read_text())
    assert doc["command"] == "report"
    assert doc["dataset"]["images"] == 40
    assert {"classes", "scale", "location", "anchors"} <= set(doc)


@pytest.mark.slow
def test_page_has_no_external_resource(page):
    links = LINK.findall(page)
    assert links, "the page has images and section links"
    for attr, value in links:
        if attr.lower() == "src":
            assert value.startswith("data:image/png;base64,"), value[:80]
        else:
            assert value.startswith("#"), value  # in-page links only
    assert "http://" not in page and "https://" not in page
    for banned in ("<script", "<link", "<iframe", "@import", "url("):  # no JS, no stylesheet or font to fetch
        assert banned not in page.lower(), banned


@pytest.mark.slow
def test_every_image_is_an_embedded_png_of_the_report(page, report_dir):
    imgs = IMG.findall(page)
    pngs = sorted(report_dir.glob("*.png"))
    assert len(imgs) == len(pngs)  # every figure, once
    embedded = []
    for tag in imgs:
        src = re.search(r'src="data:image/png;base64,([^"]+)"', tag)
        assert src, tag[:80]
        data = base64.b64decode(src.group(1), validate=True)
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # a whole, valid PNG
        width, height = _png_size(data)
        assert f'width="{width}" height="{height}"' in tag  # the layout is known before decoding
        embedded.append(data)
    assert sorted(embedded) == sorted(p.read_bytes() for p in pngs)  # the very files written beside index.html


@pytest.mark.slow
def test_dataset_text_is_escaped(page):
    assert "<script" not in page.lower()
    assert EVIL_ESCAPED in page  # the class table shows the renamed class as text


@pytest.mark.slow
def test_taxonomy_table_comes_first(page):
    first_table = page.index("<table")
    assert page[first_table:].startswith('<table class="taxonomy">')
    order = [page.index(f'<section id="{s}">') for s in ("taxonomy", "classes", "scale", "location", "anchors")]
    assert order == sorted(order)
    for section in ("classes", "scale", "location", "anchors"):
        assert f'href="#{section}"' in page  # linked from the taxonomy and the contents
    body = page[page.index('<table class="taxonomy">') : page.index("</table>")]
    assert body.count("<tr>") == 1 + len(TAXONOMY)  # the header and one row per problem of Table 1


def test_page_without_anchors_says_how_to_get_them(sample):
    from imbstat.analysis import compute
    from imbstat.data import load
    from imbstat.report.build import report_document

    html = render(report_document(compute(load(sample))), [])
    assert '<section id="anchors">' not in html and 'href="#anchors"' not in html  # no link to nowhere
    assert html.count(ANCHORS_NEEDED) >= 2  # fg/bg and IoU rows; the contents say it too


# --- taxonomy rows --------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_taxonomy_rows_follow_the_document(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    rows = {r.sub_problem.split(" (")[0]: r for r in taxonomy_rows(Results.from_document(doc))}
    assert [r.problem for r in taxonomy_rows(Results.from_document(doc))] == [p.problem for p in TAXONOMY]
    assert rows["Foreground-foreground"].value == doc["classes"]["scores"]["w1_score"]
    assert rows["Foreground-background"].value == doc["anchors"]["scores"]["foreground_background"]
    assert rows["IoU distribution"].value == doc["anchors"]["scores"]["positive_iou"]
    assert rows["Object/box-level"].value == doc["scale"]["scores"]["relative_area"]
    assert rows["Feature-level"].value == doc["scale"]["scores"]["fpn_levels"]
    assert rows["Object location"].value == doc["location"]["scores"]["xy"]
    assert "Gini" in rows["Foreground-foreground"].statistic and "fg:bg 1 : " in rows["Foreground-background"].statistic
    for name in ("Regression loss", "Objective imbalance"):
        assert (rows[name].value, rows[name].metric, rows[name].note) == (None, None, NO_LOSS_IN_A_DATASET)
    for row in rows.values():
        assert row.value is None or 0.0 <= row.value <= 1.0


@pytest.mark.slow
def test_taxonomy_rows_without_anchors(report_dir):
    doc = json.loads((report_dir / "report.json").read_text())
    del doc["anchors"]
    rows = {r.metric: r for r in taxonomy_rows(Results.from_document(doc))}
    for metric in ("anchors.foreground_background", "anchors.positive_iou"):
        assert (rows[metric].value, rows[metric].note) == (None, ANCHORS_NEEDED)
    assert rows["classes.w1_score"].value is not None and rows["classes.w1_score"].note == ""


def test_rows_say_what_is_missing_without_pixel_sizes(tmp_path):
    boxes = tmp_path / "boxes.csv"  # Open Images boxes, normalised, with no sizes CSV
    header = "ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,"
    header += "IsOccluded,IsTruncated,IsGroupOf,IsDepiction,IsInside"
    boxes.write_text(f"{header}\nimg_a,xclick,/m/cat,1,0.1,0.5,0.2,0.6,0,0,0,0,0\n")
    doc = json.loads(run("summary", boxes, "--json", "-").stdout)
    rows = {r["metric"]: r for r in doc["taxonomy"]}
    assert rows["scale.fpn_levels"]["value"] is None and "--sizes" in rows["scale.fpn_levels"]["note"]
    assert rows["scale.relative_area"]["value"] is not None  # relative sizes need no pixels


@pytest.mark.slow
def test_report_of_a_dataset_without_boxes(write_json, tmp_path):
    out = tmp_path / "out"
    result = run("report", write_json(coco_doc([(1, 10, 10)], [], [])), "--anchors", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    page = (out / "index.html").read_text(encoding="utf-8")
    # no boxes: fg-fg, box-level, feature-level, IoU distribution and location have no score (fg/bg has: all bg)
    assert page.count("not defined for this dataset") == 5
    assert page.count("<img ") == len(list(out.glob("*.png")))


def test_summary_json(sample):
    result = run("summary", sample, "--json", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "summary"
    assert [r["sub_problem"] for r in doc["taxonomy"]] == [p.sub_problem for p in TAXONOMY]
    assert doc["taxonomy"][1]["value"] == doc["classes"]["scores"]["w1_score"]
    assert doc["taxonomy"][0]["note"] == ANCHORS_NEEDED


def test_summary_prints_the_table(sample):
    w1 = json.loads(run("summary", sample, "--json", "-").stdout)["classes"]["scores"]["w1_score"]
    result = run("summary", sample)
    assert result.exit_code == 0, result.output
    for section in ("§4.1", "§4.2", "§5.1", "§5.2", "§6.1", "§6.2", "§6.3", "§7"):  # every row, however wrapped
        assert section in result.stdout
    assert f"{w1:.3f}" in result.stdout


def test_report_missing_path(tmp_path):
    result = run("report", tmp_path / "missing.json", "--out", tmp_path / "out")
    assert result.exit_code == 2
    expected = "no such file or directory; expected an annotation file or folder"
    assert result.stderr == f"imbstat: error: {tmp_path / 'missing.json'}: {expected}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_demo_writes_index(tmp_path):
    out = tmp_path / "demo"
    assert run("demo", "--out", out).exit_code == 0
    assert (out / "index.html").read_text(encoding="utf-8").count("<img ") == len(list(out.glob("*.png")))


# --- in a browser ---------------------------------------------------------------------------------------------------
#
# Two runs of headless Chromium over the same page in the same window. (1) --dump-dom of a COPY of index.html
# with a probe script added (the page itself has no script): after the load event the probe writes, for every
# <img>, what Chromium decoded (naturalWidth/Height: 0 for data it cannot read) and where it drew the picture
# (the content box, in page pixels). (2) --screenshot of the page itself. Each figure that lies in the
# screenshot is then compared with its own PNG, scaled by Pillow to the drawn size: a missing, truncated,
# swapped or blank picture differs from it by tens of grey levels on average, a drawn one by a few (resampling;
# 0 at natural size). naturalWidth alone is not enough: Chromium reads it from the PNG header, so it is set even
# for a truncated image that shows mostly blank.

PROBE = """<script>
window.addEventListener("load", () => {
  const found = Array.from(document.images).map((im) => {
    const r = im.getBoundingClientRect();
    return {complete: im.complete, w: im.naturalWidth, h: im.naturalHeight, x: r.left + scrollX + im.clientLeft,
            y: r.top + scrollY + im.clientTop, cw: im.clientWidth, ch: im.clientHeight};
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({images: found, scrollWidth: document.documentElement.scrollWidth,
                                    innerWidth: innerWidth});
  document.body.appendChild(out);
});
</script>"""
MAX_MEAN_GREY_DIFF = 6.0  # measured: 0.0 at natural size, 2.2 scaled 1752 -> 1124 px; broken images 13 to 40


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary found (apt-get install -y chromium, or set IMBSTAT_CHROMIUM)")
    return binary


@pytest.fixture(scope="module")
def probed(chromium, report_dir, tmp_path_factory) -> dict:
    """Every <img> as Chromium loaded and laid it out, from the probe's JSON in the dumped DOM."""
    work = tmp_path_factory.mktemp("browser")
    copy = work / "probe.html"
    copy.write_text((report_dir / "index.html").read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
    dom = dump_dom(chromium, copy, work / "profile", size=WINDOW)
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.DOTALL)
    assert found, f"the probe did not run: {dom[-500:]}"
    return json.loads(html.unescape(found.group(1)))


@pytest.mark.slow
def test_browser_loads_every_figure(probed, page):
    sizes = [_png_size(data) for data in _embedded(page)]  # in page order, as document.images
    images = probed["images"]
    assert [(im["w"], im["h"]) for im in images] == sizes  # decoded: an unreadable image has naturalWidth 0
    assert all(im["complete"] for im in images)
    for im in images:
        assert 0 < im["cw"] <= im["w"] and im["ch"] > 0  # shown, never enlarged
        assert im["cw"] / im["ch"] == pytest.approx(im["w"] / im["h"], rel=0.01)  # not distorted
    assert probed["scrollWidth"] <= probed["innerWidth"]  # scaled to the page: nothing runs off to the right


@pytest.mark.slow
def test_browser_draws_the_page_and_its_figures(chromium, report_dir, page, probed, tmp_path):
    png = screenshot(chromium, report_dir / "index.html", tmp_path / "page.png", tmp_path / "profile", size=WINDOW)
    with Image.open(png) as im:
        assert im.size == WINDOW
        pixels = np.asarray(im.convert("L"), dtype=np.float64)  # [H, W] grey levels 0..255
    assert pixels.std() > 20  # a blank (all white) page has std 0
    assert (pixels < 200).mean() > 0.02  # text, bars and figures cover a visible share of it
    compared = 0
    for im, data in zip(probed["images"], _embedded(page), strict=True):
        x, y, w, h = (round(im[k]) for k in ("x", "y", "cw", "ch"))
        if y + h > WINDOW[1]:
            continue  # below the screenshot
        with Image.open(io.BytesIO(data)) as figure:
            on_white = Image.alpha_composite(Image.new("RGBA", figure.size, "white"), figure.convert("RGBA"))
            expected = np.asarray(on_white.convert("L").resize((w, h), Image.Resampling.LANCZOS), dtype=np.float64)
        drawn = pixels[y : y + h, x : x + w]
        assert np.abs(drawn - expected).mean() < MAX_MEAN_GREY_DIFF, (im, np.abs(drawn - expected).mean())
        compared += 1
    assert compared >= 2, "the first figures lie in the screenshot"


def _embedded(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]
