"""The CLI through typer's runner: exit codes, exact error lines, the JSON contract."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
from helpers import run

from imbstat import __version__
from imbstat.report.document import SCHEMA_VERSION


def test_class_dist_json_contract(tiny_coco):
    result = run("class-dist", tiny_coco, "--json", "-")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["imbstat_version"] == __version__
    assert doc["command"] == "class-dist"
    assert doc["dataset"]["path"] == str(tiny_coco)
    assert doc["dataset"]["format"] == "coco"
    assert (doc["dataset"]["images"], doc["dataset"]["boxes"], doc["dataset"]["invalid"]) == (3, 4, {})
    assert doc["classes"][0] == {"category_id": 1, "name": "cat", "instances": 2, "images": 1, "group": "rare"}
    assert [c["name"] for c in doc["classes"]] == ["cat", "dog", "emu"]
    assert doc["objects_per_image"] == {"edges": [0, 1, 2, 3], "counts": [1, 1, 1]}
    assert doc["classes_per_image"] == {"edges": [0, 1, 2], "counts": [1, 2]}
    assert set(doc["scores"]) >= {"imbalance_ratio", "gini", "normalized_entropy", "top10_share", "w1_score"}
    assert doc["scores"]["imbalance_ratio"] == 2.0  # 2 cats / 1 dog; the emu has none


def test_every_json_document_has_one_head(tiny_coco, tmp_path):
    """imbstat_version, schema_version, command: first, in this order, in every command's --json."""
    config = tmp_path / "audit.toml"
    config.write_text('checks = ["classes.gini <= 1"]\n')
    shards = [tmp_path / f"shard{i}.json" for i in range(2)]
    for i, shard in enumerate(shards):
        assert run("class-dist", tiny_coco, "--shard", f"{i}/2", "--json", shard).exit_code == 0
    runs = {
        "anchors": ["--image-size", "64x48"],
        "info": [tiny_coco],
        "validate": [tiny_coco],
        "class-dist": [tiny_coco],
        "summary": [tiny_coco, "--quiet"],
        "compare": [tiny_coco, tiny_coco, "--quiet"],
        "audit": [tiny_coco, "--config", config, "--quiet"],
        "merge": shards,
    }
    for command, args in runs.items():
        result = run(command, *args, "--json", "-")
        assert result.exit_code == 0, (command, result.output)
        doc = json.loads(result.stdout)
        assert list(doc)[:3] == ["imbstat_version", "schema_version", "command"], command
        assert (doc["imbstat_version"], doc["schema_version"]) == (__version__, SCHEMA_VERSION), command
        assert doc["command"] == ("class-dist" if command == "merge" else command)


def test_include_crowd_option(tiny_coco):
    doc = json.loads(run("class-dist", tiny_coco, "--json", "-", "--include-crowd").stdout)
    assert doc["classes"][0]["instances"] == 3
    assert doc["options"]["include_crowd"] is True


def test_scale_and_location_json(tiny_coco):
    scale = json.loads(run("scale", tiny_coco, "--json", "-", "--bins", "10").stdout)
    assert scale["size_buckets"] == {"small": 1, "medium": 1, "large": 1}
    assert scale["fpn_levels"] == {"2": 1, "3": 0, "4": 1, "5": 1}
    assert scale["relative_width"]["counts"] == [0, 1, 0, 0, 0, 1, 0, 0, 0, 1]
    assert set(scale["scores"]) >= {"relative_width", "relative_height", "relative_area", "aspect_ratio"}
    location = json.loads(run("location", tiny_coco, "--json", "-", "--grid", "4").stdout)
    assert location["centers"]["grid"] == 4
    assert location["centers"]["counts"][3][3] == 1  # box b, centre (0.75, 0.75)
    assert set(location["scores"]) == {"x", "y", "xy"}


def test_table_output(tiny_coco):
    result = run("class-dist", tiny_coco)
    assert result.exit_code == 0
    assert "cat" in result.stdout and "imbalance_ratio" in result.stdout


def test_info(tiny_coco):
    result = run("info", tiny_coco)
    assert result.exit_code == 0
    assert "images without boxes" in result.stdout
    doc = json.loads(run("info", tiny_coco, "--json", "-").stdout)
    assert doc["dataset"]["crowd"] == 1


def test_malformed_input_is_one_line_and_exit_2(write_json):
    path = write_json('{"images": [')
    result = run("class-dist", path)
    assert result.exit_code == 2
    assert result.stderr == f"imbstat: error: {path} (byte 12): JSON ends early; expected the rest of the document\n"
    assert result.stdout == ""


def test_unknown_format_option(tiny_coco):
    result = run("info", tiny_coco, "--format", "pascal")
    assert result.exit_code == 2
    assert result.stderr == (
        f"imbstat: error: {tiny_coco}: unknown format 'pascal'; expected one of coco, voc, openimages, yolo\n"
    )


def test_validate_lists_problems_and_exits_1(write_json):
    from helpers import coco_doc

    path = write_json(coco_doc([(1, 100, 100)], [(1, 1, [1, 1, 5, 5], 0), (1, 2, [1, 1, 5, 5], 0)], [(1, "a")]))
    result = run("validate", path)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == (
        f"{path}: annotations[1] (id 2): error: unknown_category (excluded) [x1=1 y1=1 x2=6 y2=6]"
    )
    doc = json.loads(run("validate", path, "--json", "-").stdout)
    assert doc["errors"] == 1 and doc["dataset"]["invalid"] == {"unknown_category": 1}


def test_validate_clean_exits_0(tiny_coco):
    result = run("validate", tiny_coco)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1].startswith("0 problems, 0 errors")


def test_problems_noted_on_analysis_commands(write_json):
    from helpers import coco_doc

    path = write_json(coco_doc([(1, 100, 100)], [(1, 1, [1, 1, 5, 5], 0), (9, 1, [1, 1, 5, 5], 0)], [(1, "a")]))
    result = run("class-dist", path)
    assert result.exit_code == 0
    assert "1 problems while loading (unknown_image 1)" in result.stderr


@pytest.mark.slow
def test_out_writes_tables_and_figures(tiny_coco, tmp_path):
    out = tmp_path / "out"
    for command in ("class-dist", "scale", "location"):
        assert run(command, tiny_coco, "--out", out).exit_code == 0
    names = {p.name for p in out.iterdir()}
    assert {"classes.csv", "objects_per_image.csv", "scale_histograms.csv", "location_centers.csv"} <= names
    assert any(n.endswith(".png") for n in names)


@pytest.mark.slow
def test_demo_writes_report(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out)
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "report.json").read_text())
    assert doc["dataset"]["images"] == 300
    assert doc["dataset"]["invalid"] == {"non_positive_size": 1, "clipped_to_image": 1}  # planted in the sample
    assert len(list(out.glob("*.png"))) >= 4
    assert (out / "index.html").stat().st_size > 10_000  # figures embedded
    # The anchor section too (retinanet on the CPU): every anchor of every image labelled once. The total is
    # counted a second way, image size by image size, from the anchor sets `imbstat anchors` prints.
    assert doc["options"] | {"anchors": True, "preset": "retinanet", "device": "cpu"} == doc["options"]
    sizes = Counter((i["width"], i["height"]) for i in json.loads((out / "sample.json").read_text())["images"])
    totals = {s: json.loads(run("anchors", "--image-size", f"{s[0]}x{s[1]}", "--json", "-").stdout)["total"]
              for s in sizes}  # fmt: skip
    counts = doc["anchors"]["anchors"]
    assert counts["total"] == sum(n * totals[s] for s, n in sizes.items())
    assert counts["foreground"] + counts["background"] + counts["ignored"] == counts["total"]
    assert counts["foreground"] > 0 and doc["anchors"]["preset"]["name"] == "retinanet"
    assert {"anchors_per_class.csv", "anchors_positive_iou.csv", "anchors_fg_bg.png"} <= {p.name for p in out.iterdir()}
    assert "<h2>Anchors: foreground-background and IoU distribution</h2>" in (out / "index.html").read_text()


def test_python_dash_m():
    result = subprocess.run([sys.executable, "-m", "imbstat", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "class-dist" in result.stdout


@pytest.mark.parametrize("command", ["info", "validate", "class-dist", "scale", "location"])
def test_missing_path(command, tmp_path):
    result = run(command, tmp_path / "missing.json")
    assert result.exit_code == 2
    expected = "no such file or directory; expected an annotation file or folder"
    assert result.stderr == f"imbstat: error: {tmp_path / 'missing.json'}: {expected}\n"


@pytest.mark.parametrize(
    "command, options",
    [
        ("report", ["--preset", "rpn"]),
        ("report", ["--anchor-sampler", "random:64:0.25"]),
        ("report", ["--device-batch", "4"]),
        ("summary", ["--preset", "atss"]),
        ("compare", ["--device", "cuda"]),
    ],
)
def test_anchor_options_without_anchors_exit_2(tiny_coco, tmp_path, command, options):
    sides = [tiny_coco, tiny_coco] if command == "compare" else [tiny_coco, "--out", tmp_path / "r"]
    sides = sides if command != "summary" else [tiny_coco]
    result = run(command, *sides, *options)
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1] == (
        "imbstat: error: --preset, --device and the other anchor options apply to anchor labelling: add --anchors"
    )
    assert not (tmp_path / "r").exists()  # refused before anything is computed or written
    assert run("summary", tiny_coco, "--preset", "retinanet").exit_code == 0  # the default, left as it is


LOADING_COMMANDS = ("info", "validate", "class-dist", "scale", "location", "batch-dist", "anchor-iou", "summary",
                    "report", "compare", "audit", "cache", "eval")  # fmt: skip


@pytest.mark.parametrize("command", LOADING_COMMANDS)
def test_every_loading_command_takes_the_shared_options(command):
    """The options every command that loads a dataset shares exist on each (class-dist had no --quiet)."""
    import typer.main

    from imbstat.cli import app

    params = typer.main.get_group(app).commands[command].params  # the click command typer builds
    flags = {opt for p in params for opt in p.opts}
    shared = {"--quiet", "-q", "--format", "--split", "--classes", "--sizes", "--images", "--shard", "--no-cache"}
    assert shared <= flags, shared - flags
    # one meaning per flag: --sampler orders training epochs only; the anchors' sampling stage is --anchor-sampler
    assert ("--sampler" in flags) == (command in ("batch-dist", "report"))


def test_imbstat_alone_prints_the_help_on_stderr_and_exits_2():
    done = subprocess.run([sys.executable, "-m", "imbstat"], capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert "Usage:" in done.stderr and "class-dist" in done.stderr and "Traceback" not in done.stderr
