"""--shard I/N and imbstat merge: the merged report of all shards is the whole run's, field for field."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import imbstat
from imbstat.cli import app
from imbstat.data.sample import write_sample

runner = CliRunner()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample(tmp_path_factory.mktemp("merge") / "sample.json", num_images=40)


def _doc(path):
    doc = json.loads(path.read_text())
    doc["dataset"].pop("load_seconds")  # the only field that is a time, not a count
    return doc


def _run(*args) -> None:
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("command", "extra"),
    [("class-dist", []), ("scale", ["--bins", "20"]), ("location", ["--per-class"]), ("location", [])],
)
def test_merged_shards_equal_the_whole_run(sample, tmp_path, command, extra):
    _run(command, sample, *extra, "--json", tmp_path / "whole.json")
    for i in range(3):
        _run(command, sample, *extra, "--shard", f"{i}/3", "--json", tmp_path / f"part{i}.json")
    # any order of the shards
    _run(
        "merge",
        tmp_path / "part2.json",
        tmp_path / "part0.json",
        tmp_path / "part1.json",
        "--json",
        tmp_path / "m.json",
    )
    assert _doc(tmp_path / "m.json") == _doc(tmp_path / "whole.json")


@pytest.mark.parametrize("anchors", [[], ["--anchors"]], ids=["dataset", "anchors"])
def test_merged_report_equals_the_whole_report(sample, tmp_path, anchors):
    _run("report", sample, *anchors, "--out", tmp_path / "whole", "-q")
    for i in range(2):
        _run("report", sample, *anchors, "--shard", f"{i}/2", "--out", tmp_path / f"part{i}", "-q")
    _run("merge", tmp_path / "part0" / "report.json", tmp_path / "part1" / "report.json", "--json", tmp_path / "m.json")
    assert _doc(tmp_path / "m.json") == _doc(tmp_path / "whole" / "report.json")


def test_shards_split_images_by_row(sample):
    ds = imbstat.load(sample)
    parts = [ds.take_shard(i, 3) for i in range(3)]
    assert [p.num_images for p in parts] == [14, 13, 13]  # rows 0, 3, 6, ... / 1, 4, ... / 2, 5, ...
    assert sum(len(p.boxes) for p in parts) == len(ds.boxes)
    assert parts[1].images.image_id.tolist() == ds.images.image_id[1::3].tolist()
    assert parts[1].shard == "1/3"
    np.testing.assert_array_equal(
        sum(imbstat.class_distribution(p).instances for p in parts), imbstat.class_distribution(ds).instances
    )


def test_merge_errors(sample, tmp_path):
    for i in range(2):
        _run("scale", sample, "--shard", f"{i}/2", "--json", tmp_path / f"s{i}.json")
    _run("scale", sample, "--shard", "0/3", "--json", tmp_path / "t0.json")
    _run("scale", sample, "--json", tmp_path / "whole.json")
    _run("class-dist", sample, "--shard", "1/2", "--json", tmp_path / "c1.json")
    _run("scale", sample, "--shard", "1/2", "--bins", "10", "--json", tmp_path / "b1.json")
    cases = [
        ([tmp_path / "s0.json"], "shards 1/2 missing; expected all 2"),
        ([tmp_path / "s0.json", tmp_path / "s0.json"], f"{tmp_path / 's0.json'}: shard 0/2 given twice"),
        ([tmp_path / "s0.json", tmp_path / "t0.json"], "shard 0/3 of another split; expected shards of 2"),
        ([tmp_path / "whole.json"], "not a shard's report; expected one written with --shard I/N"),
        ([tmp_path / "s0.json", tmp_path / "c1.json"], "another command or other options than the first report"),
        ([tmp_path / "s0.json", tmp_path / "b1.json"], "another command or other options than the first report"),
    ]
    for paths, message in cases:
        result = runner.invoke(app, ["merge", *map(str, paths)])
        assert result.exit_code == 2, paths
        assert message in result.stderr and result.stderr.count("\n") == 1


def test_bad_shard_option(sample):
    result = runner.invoke(app, ["class-dist", str(sample), "--shard", "3/3"])
    assert result.exit_code == 2
    assert result.stderr == "imbstat: error: --shard '3/3': expected 0 <= I < N\n"
