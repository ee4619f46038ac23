"""Start-up: what a fresh interpreter imports on the paths that need little (benchmarks/bench_startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imbstat
from imbstat.data.sample import write_sample
from imbstat.report.document import dumps

ROOT = Path(imbstat.__file__).resolve().parents[1]
# torch: the dense and CUDA paths only (an extra); matplotlib: figures (--out); pandas: tables (--out), large id
# columns, other formats. numba is the sparse path's, POT the 2-D scores'.
HEAVY = {"torch", "matplotlib", "pandas"}


def _python(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg", **(env or {})}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _imported(stderr: str) -> set[str]:
    """The modules named in ``python -X importtime``'s report."""
    lines = (line for line in stderr.splitlines() if line.startswith("import time:"))
    return {line.rsplit("|", 1)[1].strip() for line in lines}


@pytest.mark.slow
def test_sparse_anchor_stats_imports_neither_torch_nor_pandas(tmp_path):
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    code = (
        "import json, sys, imbstat\n"
        "from imbstat.report.document import dumps\n"
        f"s = imbstat.anchor_stats(imbstat.load({str(sample)!r}))\n"
        "modules = sorted({'torch', 'numba', 'pandas', 'ot'} & sys.modules.keys())\n"
        "print(json.dumps({'modules': modules, 'result': dumps(s.to_dict(raw=True))}))\n"
    )
    out = json.loads(_python("-c", code).stdout)
    assert out["modules"] == ["numba"]  # numba's kernels; nothing of the dense path, the tables or the 2-D scores
    assert out["result"] == dumps(imbstat.anchor_stats(imbstat.load(sample)).to_dict(raw=True))


@pytest.mark.slow
def test_cli_help_and_a_small_anchor_iou_import_no_heavy_package(tmp_path):
    help_imports = _imported(_python("-X", "importtime", "-m", "imbstat", "--help").stderr)
    assert not (HEAVY | {"ot", "scipy", "numba"}) & help_imports
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    done = _python("-X", "importtime", "-m", "imbstat", "anchor-iou", str(sample), "-q", "--json",
                   str(tmp_path / "a.json"))  # fmt: skip
    imported = _imported(done.stderr)
    # numba for the sparse path, POT for the 2-D scores; rich.progress: the bar that -q does not show
    assert not (HEAVY | {"rich.progress"}) & imported and {"numba", "ot"} <= imported
    assert json.loads((tmp_path / "a.json").read_text())["anchors"]["foreground"] > 0


def test_pot_is_imported_at_the_first_2d_score_and_the_environment_left_as_it_was():
    # POT's backend switches are set for its import only, where the caller has not set them: the caller's
    # environment is unchanged afterwards, a switch the caller set keeps its value, and torch (where installed)
    # is not imported by POT.
    code = (
        "import json, os, sys, numpy as np\n"
        "from imbstat import scores\n"
        "before = 'ot' in sys.modules\n"
        "value = scores.score_2d(np.eye(8))\n"
        "switches = {k: v for k, v in os.environ.items() if k.startswith('POT_BACKEND_DISABLE_')}\n"
        "print(json.dumps([before, 'ot' in sys.modules, 'torch' in sys.modules, switches, value]))\n"
    )
    before, after, torch, switches, value = json.loads(_python("-c", code).stdout)
    assert (before, after, torch, switches) == (False, True, False, {})
    kept = json.loads(_python("-c", code, env={"POT_BACKEND_DISABLE_JAX": "yes"}).stdout)
    assert kept[3] == {"POT_BACKEND_DISABLE_JAX": "yes"} and kept[4] == value
    ot = pytest.importorskip("ot")
    assert value == scores_2d_with(ot)


def scores_2d_with(ot) -> float:
    """score_2d of the 8×8 diagonal computed with POT imported by the test (its backends as they come)."""
    import numpy as np

    from imbstat import scores

    scores._solver.cache_clear()
    try:
        return scores.score_2d(np.eye(8))
    finally:
        scores._solver.cache_clear()


def test_default_anchor_iou_runs_without_torch_and_dense_asks_for_it(tmp_path):
    # torch absent (an import of it fails, as where it is not installed): the default path runs; --method dense
    # is refused with one line that names the extra.
    sample = write_sample(tmp_path / "sample.json", num_images=12)
    blocker = (
        "import sys\n"
        "class NoTorch:  # a finder that fails torch's import, as where it is not installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.partition('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from imbstat.cli import main\n"
        "sys.argv[0] = 'imbstat'\n"
        "main()\n"
    )
    done = _python("-c", blocker, "anchor-iou", str(sample), "-q", "--json", str(tmp_path / "a.json"))
    assert json.loads((tmp_path / "a.json").read_text())["anchors"]["foreground"] > 0
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    dense = [sys.executable, "-c", blocker, "anchor-iou", str(sample), "-q", "--method", "dense"]
    done = subprocess.run(dense, capture_output=True, text=True, env=env, cwd=ROOT)
    errors = [line for line in done.stderr.splitlines() if not line.startswith("imbstat: note: ")]  # the file's notes
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-2000:]
    assert errors[0].startswith("imbstat: error: ") and "pip install 'imbstat[torch]'" in errors[0]
    # ATSS in float32 (its thresholds once computed by torch) and FCOS need none of it either.
    preset = tmp_path / "atss32.toml"
    preset.write_text('base = "atss"\ndtype = "float32"\n')
    for name in (str(preset), "fcos"):
        _python("-c", blocker, "anchor-iou", str(sample), "-q", "--preset", name, "--json", str(tmp_path / "b.json"))
        assert json.loads((tmp_path / "b.json").read_text())["anchors"]["foreground"] > 0


def test_index_of_binary_search_equals_pandas(monkeypatch):
    import numpy as np
    import pandas as pd

    from imbstat.data import ids

    rng = np.random.default_rng(0)
    keys = rng.permutation(10_000)[:3_000] * 7 - 5_000  # unique, unsorted, negative ones too
    query = np.concatenate([rng.choice(keys, 5_000), rng.integers(-60_000, 80_000, 5_000), keys[[0, -1]]])
    expected = pd.Index(keys).get_indexer(query)
    assert (expected == -1).any() and (expected >= 0).any()
    np.testing.assert_array_equal(ids.index_of(keys, query), expected)
    monkeypatch.setattr(ids, "_SEARCH_MAX", 0)  # pandas' hash path, as for a large file
    np.testing.assert_array_equal(ids.index_of(keys, query), expected)


def test_kernels_cache_in_a_temporary_folder_where_numba_finds_no_writable_one(tmp_path):
    numba = pytest.importorskip("numba")
    if not hasattr(numba.config, "CACHE_LOCATOR_CLASSES"):
        pytest.skip("this numba cannot be told to find no cache folder")
    code = (
        "import numba\n"
        "from imbstat.anchors.kernels import load_kernel\n"
        "tally = load_kernel('imbstat.stats.anchor_kernel', 'tally')\n"
        "print(numba.config.CACHE_DIR, tally._cache._cache_path)\n"
    )
    # only the locator of NUMBA_CACHE_DIR, which is unset: numba has nowhere to cache, as on a read-only install
    env = {"NUMBA_CACHE_LOCATOR_CLASSES": "UserProvidedCacheLocator", "NUMBA_CACHE_DIR": "", "TMPDIR": str(tmp_path)}
    cache_dir, cache_path = _python("-c", code, env=env).stdout.split()
    assert cache_dir == str(tmp_path / f"imbstat-numba-{os.getuid()}") and cache_path.startswith(cache_dir)
