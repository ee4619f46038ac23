"""Several presets side by side: ``anchor-iou PATH --preset A --preset B`` (and ``report --anchors``).

Every number of a side-by-side run is checked against separate one-preset runs of the same file.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import coco_doc
from typer.testing import CliRunner

from imbstat.cli import app
from imbstat.stats.side_by_side import preset_keys

runner = CliRunner()
HEAD = ("imbstat_version", "schema_version", "command", "dataset", "options")
SIDE_BY_SIDE = ("key", "more_presets")
PRESETS = ["retinanet", "rpn", "torchvision-retinanet"]


def _run(*args: object) -> object:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def _fields(doc: dict, drop: tuple[str, ...] = ()) -> dict:
    """The anchors section of an anchor-iou document (its fields outside the head)."""
    return {k: v for k, v in doc.items() if k not in (*HEAD, *drop)}


def _flags(presets: list) -> list[str]:
    return [flag for p in presets for flag in ("--preset", str(p))]


@pytest.fixture
def boxes(write_json) -> Path:
    """Six images of random sizes with boxes of every scale, two classes (one crowd box)."""
    rng = np.random.default_rng(12)
    images = [(i + 1, int(rng.integers(80, 400)), int(rng.integers(80, 400))) for i in range(6)]
    annotations = []
    for image, w, h in images[:5]:  # the last image has no box
        for _ in range(int(rng.integers(1, 6))):
            bw, bh = rng.uniform(2, w / 2), rng.uniform(2, h / 2)
            x, y = rng.uniform(0, w - bw), rng.uniform(0, h - bh)
            annotations.append((image, int(rng.integers(1, 3)), [round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                                0))  # fmt: skip
    annotations.append((1, 1, [1, 1, 30, 30], 1))
    return write_json(coco_doc(images, annotations, [(1, "cat"), (2, "dog")]))


def _toml(folder: Path, text: str, name: str = "mine") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.toml"
    path.write_text(text)
    return path


def _single(path: Path, preset: object) -> dict:
    return json.loads(_run("anchor-iou", path, "--preset", preset, "--json", "-", "-q").stdout)


def _median_bin(counts: list[int]) -> str:
    """The 0.05 bin of the median foreground anchor (inverted CDF), one anchor at a time."""
    values = [i for i, n in enumerate(counts) for _ in range(n)]
    i = values[math.ceil(len(values) / 2) - 1]
    return f"[{i * 0.05:.2f}, {(i + 1) * 0.05:.2f}{']' if i == len(counts) - 1 else ')'}"


def test_side_by_side_equals_single_runs(boxes, tmp_path):
    mine = _toml(tmp_path / "a", 'base = "retinanet"\npos_iou = 0.6\nneg_iou = 0.3\n')
    presets = [*PRESETS, mine]
    singles = [_single(boxes, p) for p in presets]
    assert len({s["anchors"]["foreground"] for s in singles}) == len(presets)  # the presets do label differently

    doc = json.loads(_run("anchor-iou", boxes, *_flags(presets), "--json", "-", "-q").stdout)
    keys = ["retinanet", "rpn", "torchvision-retinanet", "mine"]
    assert doc["options"]["presets"] == keys
    # the first preset where a one-preset run writes it, every further one in more_presets, in order
    assert doc["key"] == "retinanet" and [m["key"] for m in doc["more_presets"]] == keys[1:]
    assert _fields(doc, SIDE_BY_SIDE) == _fields(singles[0])
    for more, single in zip(doc["more_presets"], singles[1:], strict=True):
        assert _fields(more, ("key",)) == _fields(single)

    shown = [0, 1, 3]  # the table of three presets fits the 80 columns of the test's terminal
    table = _run("anchor-iou", boxes, *_flags([presets[i] for i in shown]), "-q").stdout
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == len(shown) + 1 and cells[0]:
            rows[cells[0]] = cells[1:]
    assert [c.strip() for c in table.splitlines()[2].split("┃")[2:-1]] == [keys[i] for i in shown]  # the header
    singles = [singles[i] for i in shown]
    for label, value in (
        ("anchors", lambda s: f"{s['anchors']['total']:,}"),
        ("foreground", lambda s: f"{s['anchors']['foreground']:,}"),
        ("background", lambda s: f"{s['anchors']['background']:,}"),
        ("ignored", lambda s: f"{s['anchors']['ignored']:,}"),
        ("GTs", lambda s: f"{s['per_gt']['all']['gts']:,}"),
        ("GTs, no fg anchor", lambda s: f"{s['per_gt']['all']['unmatched']:,}"),
        ("positive IoU median (bin)", lambda s: _median_bin(s["positive_iou"]["counts"])),
        ("score: positive_iou", lambda s: f"{s['scores']['positive_iou']:.4g}"),
        ("fg:bg ratio", lambda s: f"{s['anchors']['foreground'] / s['anchors']['background']:.4g}"),
    ):
        assert rows[label] == [value(s) for s in singles], label


def test_one_preset_output_is_a_single_run(boxes, tmp_path):
    import imbstat

    doc = _single(boxes, "rpn")
    assert not set(SIDE_BY_SIDE) & doc.keys() and "presets" not in doc["options"]
    library = imbstat.anchor_stats(imbstat.load(boxes), preset="rpn").to_dict()
    assert doc["anchors"] == library["anchors"] and doc["scores"] == pytest.approx(library["scores"], nan_ok=True)
    result = _run("anchor-iou", boxes, "--preset", "rpn", "-q", "--out", tmp_path / "out")
    assert "anchors (rpn) over 6 images" in result.stdout and "presets over" not in result.stdout
    assert (tmp_path / "out" / "anchors_per_image.csv").is_file()  # files where they always were, no folders
    assert not [p for p in (tmp_path / "out").iterdir() if p.is_dir()]


def test_same_named_presets_get_unique_keys(boxes, tmp_path):
    import imbstat
    from imbstat.sections.anchors import write_tables

    a = _toml(tmp_path / "a", 'base = "retinanet"\npos_iou = 0.6\n')
    b = _toml(tmp_path / "b", 'base = "retinanet"\npos_iou = 0.7\nneg_iou = 0.3\n')
    doc = json.loads(_run("anchor-iou", boxes, *_flags([a, b, "rpn", "rpn"]), "-q", "--json", "-").stdout)
    keys = ["mine", "mine-2", "rpn", "rpn-2"]
    assert doc["options"]["presets"] == keys
    names = [doc["preset"]["name"], *(m["preset"]["name"] for m in doc["more_presets"])]
    assert names == ["mine", "mine", "rpn", "rpn"]  # the keys differ, the presets keep their own names
    assert [doc["preset"]["pos_iou"], doc["more_presets"][0]["preset"]["pos_iou"]] == [0.6, 0.7]
    out = tmp_path / "out"
    _run("anchor-iou", boxes, *_flags([a, b]), "-q", "--out", out)
    assert sorted(p.name for p in out.iterdir()) == ["mine", "mine-2"]  # a folder per preset, named by its key
    ds = imbstat.load(boxes)
    for path in write_tables(imbstat.anchor_stats(ds, preset=b), ds.images, tmp_path / "alone"):  # b's alone
        assert (out / "mine-2" / path.name).read_text() == path.read_text(), path.name


@pytest.mark.parametrize(
    ("names", "keys"),
    [
        (["a", "b"], ["a", "b"]),
        (["a", "a", "a"], ["a", "a-2", "a-3"]),
        (["a", "a", "a-2"], ["a", "a-3", "a-2"]),  # a later preset's own name is not given to a repeat
        (["x/y", "x_y", "..", ""], ["x_y", "x_y-2", "preset", "preset-2"]),  # one plain folder name each
        (["../up"], [".._up"]),
    ],
)
def test_preset_keys(names, keys):
    assert preset_keys(names) == keys


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("ssd", "imbstat: error: ssd: unknown preset; expected one of retinanet"),
        ("bad.toml", "bad.toml: unknown keys strides_x; expected some of"),
    ],
)
def test_a_bad_preset_is_refused_before_the_load(tmp_path, second, message):
    _toml(tmp_path, "strides_x = [8]\n", "bad")
    missing = tmp_path / "missing.json"  # never read: the presets are checked first
    result = runner.invoke(app, ["anchor-iou", str(missing), "--preset", "rpn", "--preset",
                                 str(tmp_path / second) if second.endswith(".toml") else second, "-q"])  # fmt: skip
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.count("\n") == 1 and "missing" not in result.stderr


def test_shards_of_a_side_by_side_run_merge(boxes, tmp_path):
    flags = _flags(["retinanet", "rpn"])
    shards = []
    for i in range(2):
        shards.append(tmp_path / f"shard{i}.json")
        _run("anchor-iou", boxes, *flags, "--shard", f"{i}/2", "-q", "--json", shards[-1])
    merged = json.loads(_run("merge", *shards).stdout)
    whole = json.loads(_run("anchor-iou", boxes, *flags, "-q", "--json", "-").stdout)
    assert _fields(merged) == _fields(whole)
    assert merged["more_presets"][0]["key"] == "rpn" and "raw" not in merged["more_presets"][0]


# --- report --anchors ----------------------------------------------------------------------------------------------


def _report(path: Path, out: Path, *presets: object) -> dict:
    _run("report", path, "--anchors", *_flags(list(presets)), "-q", "--out", out)
    return json.loads((out / "report.json").read_text())


def test_report_side_by_side_equals_single_reports(boxes, tmp_path):
    import imbstat
    from imbstat import Results
    from imbstat.sections.anchors import write_tables

    out = tmp_path / "both"
    doc = _report(boxes, out, "retinanet", "rpn")
    singles = [_report_doc(boxes, p) for p in ("retinanet", "rpn")]
    assert doc["options"]["presets"] == ["retinanet", "rpn"] and "presets" not in singles[0]["options"]
    anchors = doc["anchors"]
    assert {k: v for k, v in anchors.items() if k not in SIDE_BY_SIDE} == singles[0]["anchors"]
    assert [m["key"] for m in anchors["more_presets"]] == ["rpn"]
    assert {k: v for k, v in anchors["more_presets"][0].items() if k != "key"} == singles[1]["anchors"]
    for section in ("classes", "scale", "location"):
        assert doc[section] == singles[0][section]
    # each preset's tables as a one-preset run writes them: the first's at the top, the further one's under its key
    ds = imbstat.load(boxes)
    for preset, folder in (("retinanet", out), ("rpn", out / "rpn")):
        for path in write_tables(imbstat.anchor_stats(ds, preset=preset), ds.images, tmp_path / f"alone-{preset}"):
            assert (folder / path.name).read_text() == path.read_text(), (preset, path.name)
    assert {p.name for p in (out / "rpn").glob("*.png")} == {p.name for p in out.glob("anchors_*.png")}
    page = (out / "index.html").read_text()
    assert "Presets side by side" in page and page.count("<figure") == len(list(out.glob("*.png")))  # the first's
    # read back as compare, audit and the page read it: the further preset as an AnchorSummary of its own
    summary = Results.from_document(doc).anchors
    assert [s.preset.name for s in summary.more_presets] == ["rpn"]
    assert summary.more_presets[0].totals == singles[1]["anchors"]["anchors"]


def _report_doc(path: Path, *presets: str, shard: tuple[int, int] | None = None) -> dict:
    """The report.json of ``report --anchors --preset ...`` (``--shard I/N``), built without its figures."""
    import imbstat
    from imbstat.report.build import report_document
    from imbstat.report.document import dumps

    ds = imbstat.load(path)
    ds = ds.take_shard(*shard) if shard else ds
    options = [imbstat.AnchorOptions(preset=p) for p in presets]
    return json.loads(dumps(report_document(imbstat.compute(ds, anchors=options[0], more_anchors=options[1:]))))


def test_compare_goes_preset_by_preset(boxes, write_json, tmp_path):
    other = json.loads(boxes.read_text())  # B: the first three images only
    other["images"] = other["images"][:3]
    other["annotations"] = [a for a in other["annotations"] if a["image_id"] <= 3]
    a = _report_doc(boxes, "retinanet", "rpn")
    b = _report_doc(write_json(other, "b.json"), "rpn", "torchvision-retinanet")
    sides = write_json(a, "a-report.json"), write_json(b, "b-report.json")
    got = json.loads(_run("compare", *sides, "--json", "-", "-q").stdout)

    def single(doc: dict, at: int, name: str) -> Path:  # a one-preset report of the same run, written apart
        anchors = doc["anchors"] if at == 0 else doc["anchors"]["more_presets"][at - 1]
        alone = {**doc, "anchors": {k: v for k, v in anchors.items() if k not in SIDE_BY_SIDE}}
        return write_json(alone, f"{name}.json")

    def shift(x: Path, y: Path) -> dict:
        return json.loads(_run("compare", x, y, "--json", "-", "-q").stdout)["anchors"]

    # the first presets against each other, as one-preset reports compare; then every key on both sides
    first = shift(single(a, 0, "a-retinanet"), single(b, 0, "b-rpn"))
    assert got["anchors"]["scores"] == first["scores"]
    rpn = shift(single(a, 1, "a-rpn"), single(b, 0, "b-rpn-again"))
    assert list(got["anchors"]["presets"]) == ["rpn"]
    assert got["anchors"]["presets"]["rpn"]["scores"] == rpn["scores"]
    assert got["anchors"]["presets"]["rpn"]["scores_b"] == b["anchors"]["scores"]
    assert got["skipped"]["anchors.presets.retinanet"] == "only in A"
    assert got["skipped"]["anchors.presets.torchvision-retinanet"] == "only in B"
    table = runner.invoke(app, ["compare", *map(str, sides), "-q"], env={"COLUMNS": "160"}).stdout  # room for names
    assert "anchors.presets.rpn.positive_iou" in table


def test_report_shards_of_a_side_by_side_run_merge(boxes, write_json):
    shards = [_report_doc(boxes, "retinanet", "rpn", shard=(i, 2)) for i in range(2)]
    assert all("raw" in s["anchors"]["more_presets"][0] for s in shards)  # each preset's counts, for the merge
    merged = json.loads(_run("merge", *(write_json(s, f"s{i}.json") for i, s in enumerate(shards))).stdout)
    whole = _report_doc(boxes, "retinanet", "rpn")
    assert merged["anchors"] == whole["anchors"] and merged["anchors"]["more_presets"][0]["key"] == "rpn"


def test_dask_merge_puts_every_preset_in_image_order(boxes):
    import imbstat
    from imbstat.sections import ANCHORS
    from imbstat.sections.spec import Run

    ds = imbstat.load(boxes)
    run = Run(anchors=imbstat.AnchorOptions(preset="retinanet"), more_anchors=(imbstat.AnchorOptions(preset="rpn"),))
    whole = ANCHORS.compute(ds, run)
    merged = ANCHORS.merge_results([ANCHORS.compute(ds.take_shard(i, 2), run) for i in range(2)], ds, 2)
    for got, expected in ((merged, whole), (merged.more_presets[0], whole.more_presets[0])):
        np.testing.assert_array_equal(got.per_image, expected.per_image)
        np.testing.assert_array_equal(got.worst_gt_iou, expected.worst_gt_iou)
    assert merged.more_presets[0].preset.name == "rpn" and whole.more_presets[0].totals != whole.totals


def test_the_side_by_side_table_shows_each_presets_sampling_stage(boxes):
    """rpn samples random:256:0.5 by default, retinanet does not: the table gives rpn's sampled counts, n/a else."""
    rpn = _single(boxes, "rpn")["sampled"]
    wide = runner.invoke(app, ["anchor-iou", str(boxes), "--preset", "rpn", "--preset", "retinanet", "-q"],
                         env={"COLUMNS": "200"}).stdout  # fmt: skip
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:4]] for line in wide.splitlines()
            if line.count("│") == 4}  # fmt: skip
    assert rows["sampler"] == ["random:256:0.5", "none"]
    assert rows["sampled positives"] == [f"{rpn['positives']:,}", "n/a"]
    assert rows["sampled negatives"] == [f"{rpn['negatives']:,}", "n/a"]
