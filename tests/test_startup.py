"""Start-up: what a fresh interpreter imports on the paths that need little (benchmarks/bench_startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import imbstat
from imbstat.anchors.kernels import ahead_build
from imbstat.data.sample import write_sample
from imbstat.report.document import dumps

ROOT = Path(imbstat.__file__).resolve().parents[1]
# torch: the dense and CUDA paths only; matplotlib: figures (--out); ot.datasets, scipy.stats: what 'import ot'
# loads beside POT's solver; pandas: tables (--out), large id columns, other formats. numba is the sparse path's.
HEAVY = {"torch", "matplotlib", "ot.datasets", "scipy.stats", "pandas"}
BUILT = ahead_build() is not None  # imbstat._kernels, the kernels compiled at install


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
@pytest.mark.parametrize("mode", ["auto", "jit"])
def test_sparse_anchor_stats_imports_neither_torch_nor_pandas(tmp_path, mode):
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    code = (
        "import json, sys, imbstat\n"
        "from imbstat.report.document import dumps\n"
        f"s = imbstat.anchor_stats(imbstat.load({str(sample)!r}))\n"
        "modules = sorted({'torch', 'numba', 'pandas'} & sys.modules.keys())  # before the scores load POT\n"
        "print(json.dumps({'modules': modules, 'result': dumps(s.to_dict(raw=True))}))\n"
    )
    out = json.loads(_python("-c", code, env={"IMBSTAT_KERNELS": mode}).stdout)
    # The kernels built at install where there are some (imbstat/anchors/aot.py), else numba's; nothing of the
    # dense path or the tables either way.
    assert out["modules"] == ([] if mode == "auto" and BUILT else ["numba"])
    assert out["result"] == dumps(imbstat.anchor_stats(imbstat.load(sample)).to_dict(raw=True))


@pytest.mark.slow
def test_cli_help_and_a_small_anchor_iou_import_no_heavy_package(tmp_path):
    help_imports = _imported(_python("-X", "importtime", "-m", "imbstat", "--help").stderr)
    assert not (HEAVY | {"ot", "scipy", "numba"}) & help_imports
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    done = _python("-X", "importtime", "-m", "imbstat", "anchor-iou", str(sample), "-q", "--json",
                   str(tmp_path / "a.json"))  # fmt: skip
    imported = _imported(done.stderr)
    # the kernels built at install (else numba) for the sparse path; POT's compiled solver for the 2-D scores
    assert not HEAVY & imported and ("numba" in imported) != BUILT and "ot.lp.emd_wrap" in imported
    # scipy.linalg: numba's BLAS probe (imbstat.anchors.kernels); ot.utils, scipy.spatial: POT's package path;
    # rich.progress: the bar that -q does not show
    assert not {"scipy.linalg", "scipy.spatial", "ot.utils", "rich.progress"} & imported
    assert json.loads((tmp_path / "a.json").read_text())["anchors"]["foreground"] > 0


@pytest.mark.slow
def test_pots_solver_alone_gives_the_packages_bits():
    # Each way of loading POT's solver in a fresh interpreter, then the real package: the same scores, bit for bit.
    code = (
        "import sys, numpy as np\n"
        "from imbstat import scores\n"
        "if sys.argv[1] == 'lean':\n"
        "    scores.DIRECT_POT_RELEASES = ()  # as on a POT release the direct path does not repeat\n"
        "maps = [np.random.default_rng(0).integers(0, 50, (g, g)) for g in (16, 32, scores.WARM_START_GRID)]\n"
        "alone = [scores.score_2d(m) for m in maps]\n"
        "assert 'ot' not in sys.modules and 'ot.datasets' not in sys.modules, 'stand-ins left behind'\n"
        "loaded = sorted(m for m in ('ot.utils', 'scipy.spatial', 'scipy.linalg') if m in sys.modules)\n"
        "import ot  # the real package afterwards, around the same solver module\n"
        "from ot.lp import emd_wrap\n"
        "assert emd_wrap is sys.modules['ot.lp.emd_wrap'] and ot.datasets and ot.gromov and ot.emd2 and ot.dist\n"
        "assert scores._solver() is ot\n"
        "print(repr(alone), repr([scores.score_2d(m) for m in maps]), loaded, sep='|')\n"
    )
    lean = _python("-c", code, "lean").stdout.split("|")
    direct = _python("-c", code, "direct").stdout.split("|")
    assert direct[0] == direct[1] == lean[0] == lean[1]
    assert direct[2].strip() == "[]" and "'ot.utils'" in lean[2]  # the direct path imports neither ot.utils nor scipy


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


def test_kernels_load_without_scipy_and_leave_numbas_blas_usable():
    pytest.importorskip("numba")
    code = (
        "import sys, numpy as np, numba\n"
        "from imbstat.anchors.kernels import load_kernel\n"
        "load_kernel('imbstat.stats.anchor_kernel', 'tally')\n"
        "assert not {'scipy.linalg', 'scipy.linalg.cython_blas'} & sys.modules.keys(), 'probe blocked for good'\n"
        "a = np.arange(6.0).reshape(2, 3)\n"
        "print(numba.njit(lambda x: np.dot(x, x.T))(a).tolist())  # BLAS, through scipy, compiled afterwards\n"
    )
    assert _python("-c", code).stdout.split() == ["[[5.0,", "14.0],", "[14.0,", "50.0]]"]
