"""Degenerate sizes and selections (issue 10): refused at load or handled, counted, no warning, no traceback.

Image sizes outside the valid range are excluded by every loader as invalid_image_size; what a hand-built
Dataset or a custom resize still cannot represent is refused by the anchor engine with one line. Zero
images, zero boxes, one box and all-crowd boxes give valid results. A numpy RuntimeWarning fails a test
here (the filter below) instead of reaching stderr.
"""

from __future__ import annotations

import dataclasses
import json
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from helpers import TOY, coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.presets import PRESETS
from imbstat.anchors.resize import Resize
from imbstat.cli import app
from imbstat.data.dataset import MAX_IMAGE_SIDE, valid_image_size
from imbstat.errors import ImbstatError

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")

runner = CliRunner()
INF, NAN = math.inf, math.nan
# the valid 640×480 image under retinanet: 100·136 + 50·68 + 25·34 + 13·17 + 7·9 = 18,134 cells × 9 anchors
ANCHORS_640x480 = 163_206


def run(*args: object):
    """The CLI through typer's runner; the run never leaks a warning or a traceback."""
    result = runner.invoke(app, [str(a) for a in args])
    assert "Warning" not in result.stderr and "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def _png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` × ``height`` (all imagesize reads)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


# --- the valid range --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height", "valid"),
    [
        (640, 480, True),
        (1, 1, True),
        (1000, 1, True),  # 1000:1 is the widest allowed
        (1, 1000, True),
        (1001, 1, False),
        (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE, True),  # 2^31 - 1
        (2.0**31, 480, False),
        (0.5, 480, False),  # below 1 px
        (0, 480, False),
        (-640, 480, False),
        (INF, 480, False),
        (-INF, 480, False),
        (NAN, 480, False),
        (1e300, 480, False),
        (1e-300, 480, False),
        (1e300, 1e300, False),  # square, but past 2^31 - 1
        (1e308, 1e308, False),
    ],
)
def test_valid_image_size_by_hand(width, height, valid):
    assert valid_image_size(np.array([width]), np.array([height])).tolist() == [valid]
    assert valid_image_size(np.array([height]), np.array([width])).tolist() == [valid]


def test_every_preset_represents_the_valid_range():
    widest = [(1, 1), (1000, 1), (1, 1000), (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE / 1000)]
    w, h = np.array(widest, np.float64).T
    for preset in PRESETS.values():
        assert preset.resize.represents(w, h).all(), preset.name
        assert preset.resize.represents(h, w).all(), preset.name
    # by hand, 1000×1 under 800×1333: s = min(800 / 1, 1333 / 1000) = 1.333 -> int(1333.5) = 1333, int(1.833) = 1
    new_w, new_h = Resize(800, 1333).new_size(np.array([1000.0]), np.array([1.0]))
    assert (new_w.tolist(), new_h.tolist()) == ([1333], [1])
    assert len(anchor_grid(PRESETS["retinanet"], 1344, 32)) > 0
    # why a limit: at 2667:1 the short side becomes int(1333 / 2667 + 0.5) = int(0.9998) = 0 px, no grid
    assert Resize(800, 1333).new_size(np.array([2667.0]), np.array([1.0]))[1].tolist() == [0]


# --- refused at load, in every format ---------------------------------------------------------------------------

BAD_SIZES = [(INF, 480), (1e300, 480), (1e-300, 480), (NAN, 480), (5000, 1), (2.0**31, 480), (0, 480)]


def test_coco_invalid_sizes_are_excluded_and_counted(write_json):
    images = [(i + 1, w, h) for i, (w, h) in enumerate(BAD_SIZES)] + [(8, 640, 480)]
    boxes = [(i, 1, [0, 0, 1, 1], 0) for i in range(1, 9)]
    ds = imbstat.load(write_json(json.dumps(coco_doc(images, boxes, [(1, "a")]))))  # Infinity, NaN literals
    assert ds.images.image_id.tolist() == [8] and ds.boxes.image.tolist() == [0]
    assert ds.problems.counts() == {"image_excluded": 7, "invalid_image_size": 7}
    sizes = [d for d, r in zip(ds.problems.detail, ds.problems.reasons(), strict=True) if r.key == "invalid_image_size"]
    assert sizes == [
        "width=inf height=480",
        "width=1e+300 height=480",
        "width=1e-300 height=480",
        "width=missing height=480",
        "width=5000 height=1",
        "width=2.14748e+09 height=480",
        "width=0 height=480",
    ]
    assert ds.problems.location[0] == "images[0] (id 1)"


def test_voc_invalid_sizes_are_excluded(tmp_path):
    obj = "<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>1</xmax><ymax>1</ymax></bndbox></object>"
    for stem, (w, h) in {"a": ("Infinity", "480"), "b": ("5000", "1"), "c": ("640", "480")}.items():
        (tmp_path / "VOC" / "Annotations").mkdir(parents=True, exist_ok=True)
        size = f"<size><width>{w}</width><height>{h}</height></size>"
        (tmp_path / "VOC" / "Annotations" / f"{stem}.xml").write_text(f"<annotation>{size}{obj}</annotation>")
    ds = imbstat.load(tmp_path / "VOC")
    assert ds.images.image_id.tolist() == ["c"]
    assert ds.problems.counts() == {"image_excluded": 2, "invalid_image_size": 2}
    assert list(ds.problems.location[:2]) == ["Annotations/a.xml", "Annotations/b.xml"]


def test_openimages_invalid_sizes_are_excluded(tmp_path):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("ImageID,LabelName,XMin,XMax,YMin,YMax\n" + "".join(f"{i},/m/1,0.1,0.5,0.1,0.5\n" for i in "abc"))
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("ImageID,Width,Height\na,inf,480\nb,1e300,480\nc,640,480\n")
    ds = imbstat.load(boxes, sizes=sizes)
    assert ds.images.image_id.tolist() == ["c"]
    assert ds.problems.counts() == {"image_excluded": 2, "invalid_image_size": 2}
    assert list(ds.problems.location[:2]) == [f"{sizes} (ImageID a)", f"{sizes} (ImageID b)"]


def test_yolo_forged_header_sizes_are_excluded(tmp_path):
    for stem, (w, h) in {"a": (5000, 1), "b": (2**32 - 1, 2**32 - 1), "c": (640, 480)}.items():
        _png(tmp_path / "images" / f"{stem}.png", w, h)
        (tmp_path / "labels").mkdir(exist_ok=True)
        (tmp_path / "labels" / f"{stem}.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    ds = imbstat.load(tmp_path, format="yolo")
    assert ds.images.image_id.tolist() == ["c"]
    assert ds.problems.counts() == {"image_excluded": 2, "invalid_image_size": 2}
    assert list(ds.problems.location[:2]) == ["images/a.png", "images/b.png"]


def test_anchor_iou_after_invalid_sizes(write_json):
    # before: OverflowError (Infinity), IndexError (1e300, 1e-300) in the anchor engine
    images = [(1, INF, 480), (2, 1e300, 480), (3, 1e-300, 480), (4, 640, 480)]
    path = write_json(json.dumps(coco_doc(images, [(i, 1, [0, 0, 1, 1], 0) for i in range(1, 5)], [(1, "a")])))
    result = run("anchor-iou", path, "--json", "-", "--quiet")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["dataset"]["invalid"] == {"image_excluded": 3, "invalid_image_size": 3}
    assert doc["anchors"]["total"] == ANCHORS_640x480  # the one valid image


# --- refused by the anchor engine: what no loader gives --------------------------------------------------------


def test_engine_refuses_a_hand_built_size(write_json):
    ds = imbstat.load(write_json(coco_doc([(1, 640, 480)], [(1, 1, [0, 0, 10, 10], 0)], [(1, "a")])))
    for width, shown in ((INF, "inf"), (1e300, "1e+300"), (1e-300, "1e-300"), (NAN, "nan")):
        bad = dataclasses.replace(ds, images=dataclasses.replace(ds.images, width=np.array([width])))
        with pytest.raises(ImbstatError) as e:
            imbstat.anchor_stats(bad)
        assert e.value.detail == (
            f"image 1 of {shown}x480 px: expected sides of 1 to 2147483647 px, "
            "the long one at most 1000 times the short one"
        )


def test_engine_refuses_a_resize_that_loses_a_side(write_json):
    ds = imbstat.load(write_json(coco_doc([(1, 100, 300)], [(1, 1, [0, 0, 10, 10], 0)], [(1, "a")])))
    tiny = dataclasses.replace(TOY, name="tiny", resize=Resize(1, 1))
    with pytest.raises(ImbstatError) as e:
        imbstat.anchor_stats(ds, preset=tiny)
    # by hand: s = min(1 / 100, 1 / 300) = 1/300; width int(100/300 + 0.5) = 0, height int(1 + 0.5) = 1
    assert e.value.detail == (
        "image 1 of 100x300 px resizes to 0x1 px under preset tiny (resize 1x1); expected 1 to 2147483647 px per side"
    )
    with pytest.raises(ValueError, match="padded size 0x64: expected at least 1 px per side"):
        anchor_grid(TOY, 0, 64)


def test_anchors_command_refuses_an_unrepresentable_size():
    result = run("anchors", "--image-size", "1x5000")
    assert result.exit_code == 2
    assert result.stderr == (
        "imbstat: error: --image-size 1x5000: image of 1x5000 px: expected sides of 1 to 2147483647 px, "
        "the long one at most 1000 times the short one\n"
    )


# --- empty selections and tiny box sets -------------------------------------------------------------------------

STATISTICS = ("anchors", "per_image", "per_class", "positive_iou", "per_gt", "relative_spatial", "overlap", "scores")


def test_empty_shard_gives_an_empty_result_that_merges(write_json, tmp_path):
    # before: IndexError (group[0] of an empty group) in anchors/engine.py, exit 1
    doc = coco_doc([(1, 640, 480), (2, 320, 240)], [(1, 1, [10, 10, 100, 80], 0), (2, 1, [5, 5, 50, 40], 0)],
                   [(1, "a")])  # fmt: skip
    path = write_json(doc)
    empty = run("anchor-iou", path, "--shard", "90/100", "--json", "-", "--quiet")
    assert empty.exit_code == 0
    body = json.loads(empty.stdout)
    assert body["dataset"]["images"] == 0
    assert body["anchors"] == {"total": 0, "foreground": 0, "background": 0, "ignored": 0}
    assert body["per_image"]["foreground_quantiles"] is None
    assert [c["foreground"] for c in body["per_class"]] == [0]
    # shards 0/3, 1/3 hold one image each and 2/3 none: merged, they are the whole run
    shards = []
    for i in range(3):
        shards.append(tmp_path / f"s{i}.json")
        assert run("anchor-iou", path, "--shard", f"{i}/3", "--json", shards[-1], "--quiet").exit_code == 0
    merged = run("merge", *shards, "--json", "-")
    assert merged.exit_code == 0
    whole = json.loads(run("anchor-iou", path, "--json", "-", "--quiet").stdout)
    got = json.loads(merged.stdout)
    assert {k: got[k] for k in STATISTICS} == {k: whole[k] for k in STATISTICS}


@pytest.mark.slow
def test_report_with_anchors_on_an_empty_shard(write_json, tmp_path):
    path = write_json(coco_doc([(1, 64, 64)], [(1, 1, [0, 0, 32, 32], 0)], [(1, "a")]))
    result = run("report", path, "--anchors", "--shard", "90/100", "--out", tmp_path / "r", "--quiet")
    assert result.exit_code == 0
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["dataset"]["images"] == 0


def _toy(write_json, boxes: list[tuple]) -> imbstat.Dataset:
    return imbstat.load(write_json(coco_doc([(1, 64, 64)], boxes, [(1, "a")])))


def test_zero_boxes_one_box_and_all_crowd(write_json):
    # TOY: one 64×64 image, 16 anchors [16c - 16, 16r - 16, 16c + 16, 16r + 16] (tests/test_anchors.py)
    none = imbstat.anchor_stats(_toy(write_json, []), preset=TOY, grid=4)
    assert none.totals == {"total": 16, "foreground": 0, "background": 16, "ignored": 0}
    assert none.gt_count.sum() == 0 and none.positive_iou.sum() == 0 and none.overlap_foreground.sum() == 0
    # crowd GTs take no part in matching: the same labels as no box at all
    crowd = imbstat.anchor_stats(
        _toy(write_json, [(1, 1, [0, 0, 32, 32], 1), (1, 1, [8, 8, 20, 20], 1)]), preset=TOY, grid=4
    )
    assert crowd.totals == none.totals and crowd.gt_count.sum() == 0
    np.testing.assert_array_equal(crowd.overlap_background, none.overlap_background)
    # one GT exactly on anchor (1, 1): IoU 1; edge neighbours 512 / 1536 = 1/3, corner ones 256 / 1792: background
    one = imbstat.anchor_stats(_toy(write_json, [(1, 1, [0, 0, 32, 32], 0)]), preset=TOY, grid=4)
    assert one.totals == {"total": 16, "foreground": 1, "background": 15, "ignored": 0}
    assert np.flatnonzero(one.positive_iou).tolist() == [19] and one.gt_count.tolist() == [[0, 1, 0]]


@pytest.mark.parametrize(
    "case",
    [
        "no boxes",
        "all crowd",
        "no valid image",  # every image excluded: zero images, not an error
    ],
)
def test_every_statistic_of_an_empty_set(write_json, case):
    if case == "no boxes":
        doc = coco_doc([(1, 64, 64)], [], [(1, "a")])
    elif case == "all crowd":
        doc = coco_doc([(1, 64, 64)], [(1, 1, [0, 0, 32, 32], 1)], [(1, "a")])
    else:
        doc = coco_doc([(1, INF, 64)], [(1, 1, [0, 0, 32, 32], 0)], [(1, "a")])
    path = write_json(json.dumps(doc))
    for command in ("class-dist", "scale", "location", "anchor-iou"):
        result = run(command, path, "--json", "-", *(["--quiet"] if command == "anchor-iou" else []))
        assert result.exit_code == 0, (command, result.output)
        body = json.loads(result.stdout)
        assert body["dataset"]["images"] == (0 if case == "no valid image" else 1)
    assert body["anchors"]["foreground"] == 0


# --- validate's summary line ------------------------------------------------------------------------------------


def test_validate_counts_what_the_file_holds(write_json, tmp_path):
    # 4 image entries (id 1 twice, a zero width, a NaN width) and 6 boxes: before, 2 kept + 7 errors = 9 "read"
    images = [(1, 640, 480), (1, 640, 480), (2, 0, 480), (3, NAN, 480)]
    boxes = [(1, 1, [0, 0, 10, 10], 0)] * 2 + [(2, 1, [0, 0, 10, 10], 0)] * 2 + [(3, 1, [0, 0, 10, 10], 0)]
    path = write_json(json.dumps(coco_doc(images, [*boxes, (9, 1, [0, 0, 10, 10], 0)], [(1, "a")])))
    result = run("validate", path)
    assert result.exit_code == 1
    # duplicate_image_id 1, invalid_image_size 2, image_excluded 3, unknown_image 1
    assert result.stdout.splitlines()[-1] == "7 problems, 7 errors, in 4 images and 6 boxes read"
    # VOC: a file without <size> (2 objects) and a good one (1 object)
    obj = "<object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"
    (tmp_path / "VOC" / "Annotations").mkdir(parents=True)
    (tmp_path / "VOC" / "Annotations" / "a.xml").write_text(f"<annotation>{obj}{obj}</annotation>")
    size = "<size><width>64</width><height>64</height></size>"
    (tmp_path / "VOC" / "Annotations" / "b.xml").write_text(f"<annotation>{size}{obj}</annotation>")
    result = run("validate", tmp_path / "VOC")
    assert result.stdout.splitlines()[-1] == "3 problems, 3 errors, in 2 images and 3 boxes read"


# --- no numpy warning on huge or NaN coordinates ----------------------------------------------------------------


def test_huge_coordinates_give_no_warning(write_json, tmp_path):
    # COCO x + w = 2e308 overflows to inf: an infinite coordinate, excluded
    coco = write_json(coco_doc([(1, 640, 480)], [(1, 1, [1e308, 1e308, 1e308, 1e308], 0)], [(1, "a")]))
    doc = json.loads(run("validate", coco, "--json", "-").stdout)
    assert doc["dataset"]["invalid"] == {"nan_coordinate": 1}
    # YOLO cx + w/2 = 1.7e308 + 0.85e308 overflows likewise; a NaN centre is excluded too
    _png(tmp_path / "y" / "images" / "a.png", 640, 480)
    (tmp_path / "y" / "labels").mkdir()
    (tmp_path / "y" / "labels" / "a.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n0 1.7e308 0.5 1.7e308 0.2\n0 nan 0.5 0.2 0.2\n"
    )
    doc = json.loads(run("validate", tmp_path / "y", "--json", "-").stdout)
    assert doc["dataset"]["invalid"] == {"nan_coordinate": 2}
    # Open Images: -1e308..1e308 times 640 overflows to -inf..inf, clipped to the whole image like any huge value
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("ImageID,LabelName,XMin,XMax,YMin,YMax\na,/m/1,-1e308,1e308,0.1,1e308\n")
    sizes = tmp_path / "sizes.csv"
    sizes.write_text("ImageID,Width,Height\na,640,480\n")
    ds = imbstat.load(boxes, sizes=sizes)
    assert ds.problems.counts() == {"clipped_to_image": 1}
    np.testing.assert_array_equal(ds.boxes.xyxy, [[0, 48, 640, 480]])  # y1 = 0.1 · 480
    assert run("scale", boxes, "--sizes", sizes, "--json", "-").exit_code == 0
    assert run("anchor-iou", boxes, "--sizes", sizes, "--json", "-", "--quiet").exit_code == 0


def test_shard_count_past_int64_and_past_the_images(tmp_path):
    """Issue 20: --shard 0/99999999999999999999 was an OverflowError (numpy's int64 modulo). With more shards than
    images, shard I holds image I alone (row % N == I), the rule of every other shard count."""
    from imbstat.data.sample import write_sample

    ds = imbstat.load(write_sample(tmp_path / "s.json", num_images=5))
    huge = 10**20
    for index in (0, 3, 4, 5, huge - 1):
        part = ds.take_shard(index, huge)
        expected = ds.images.image_id[[index]] if index < 5 else ds.images.image_id[:0]
        assert part.images.image_id.tolist() == expected.tolist()
        assert part.shard == f"{index}/{huge}"
    # the same rule where N does not pass the images: 7 shards of 5 images, and 2 of them
    assert ds.take_shard(4, 7).images.image_id.tolist() == ds.images.image_id[[4]].tolist()
    assert ds.take_shard(1, 2).images.image_id.tolist() == ds.images.image_id[[1, 3]].tolist()
