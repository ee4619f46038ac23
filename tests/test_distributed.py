"""report --dask: one task per shard on a local Dask cluster of worker processes equals the single-process report."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from imbstat.cli import app
from imbstat.data.sample import write_sample

pytest.importorskip("dask.distributed")


def _doc(path):
    doc = json.loads(path.read_text())
    doc["dataset"].pop("load_seconds")
    return doc


@pytest.mark.slow
@pytest.mark.parametrize("anchors", [[], ["--anchors"]], ids=["dataset", "anchors"])
def test_dask_report_equals_single_process(tmp_path, anchors):
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    runner = CliRunner()
    single = runner.invoke(app, ["report", str(sample), *anchors, "--out", str(tmp_path / "single"), "-q"])
    assert single.exit_code == 0, single.output
    dask = runner.invoke(
        app, ["report", str(sample), *anchors, "--out", str(tmp_path / "dask"), "--dask", "local:2", "--shards", "3"]
    )
    assert dask.exit_code == 0, dask.output
    assert _doc(tmp_path / "dask" / "report.json") == _doc(tmp_path / "single" / "report.json")
    assert (tmp_path / "dask" / "index.html").exists()
    if anchors:  # per-image anchor counts come back in image order
        single_rows = (tmp_path / "single" / "anchors_per_image.csv").read_text()
        assert (tmp_path / "dask" / "anchors_per_image.csv").read_text() == single_rows


def test_unreachable_scheduler_is_one_line(monkeypatch):
    """Issue 20: an address where no scheduler answers was an OSError traceback after 30 s."""
    import imbstat.analysis as analysis
    from imbstat.errors import ImbstatError

    monkeypatch.setattr(analysis, "SCHEDULER_TIMEOUT_S", 1)
    with pytest.raises(ImbstatError, match=r"--dask 'tcp://127\.0\.0\.1:1': no Dask scheduler there"):
        analysis.dask_client("tcp://127.0.0.1:1")


@pytest.mark.parametrize("spec", ["local:0", "local:abc", "local:", "local:" + "9" * 5000, "local:-1"])
def test_local_workers_bounded(spec):
    """local:0 waited for ever, local:abc was a ValueError; both now refused before a cluster starts."""
    import imbstat.analysis as analysis
    from imbstat.errors import ImbstatError

    with pytest.raises(ImbstatError, match="expected local:N with N from 1 to"):
        analysis.check_dask_spec(spec)
    analysis.check_dask_spec("local:1")  # one worker is always allowed
