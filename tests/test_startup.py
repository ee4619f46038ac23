"""Start-up: what a fresh interpreter imports on the paths that need little (benchmarks/bench_startup.py times it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import imbstat
from imbstat.data.sample import write_sample
from imbstat.report.document import dumps

ROOT = Path(imbstat.__file__).resolve().parents[1]
# torch: the dense and CUDA paths only; numba (and scipy.linalg, which it loads): inputs from 5,000 GTs on;
# matplotlib: figures (--out); ot.datasets, scipy.stats: what 'import ot' loads beside POT's solver
HEAVY = {"torch", "matplotlib", "numba", "ot.datasets", "scipy.stats"}


def _python(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def _imported(stderr: str) -> set[str]:
    """The modules named in ``python -X importtime``'s report."""
    lines = (line for line in stderr.splitlines() if line.startswith("import time:"))
    return {line.rsplit("|", 1)[1].strip() for line in lines}


def test_sparse_anchor_stats_imports_neither_torch_nor_numba_on_a_small_input(tmp_path):
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    code = (
        "import json, sys, imbstat\n"
        "from imbstat.report.document import dumps\n"
        "from imbstat.anchors.kernels import compiled_wanted\n"
        f"s = imbstat.anchor_stats(imbstat.load({str(sample)!r}))\n"
        "modules = sorted({'torch', 'numba', 'scipy'} & sys.modules.keys())  # before the scores load POT\n"
        "print(json.dumps({'modules': modules,\n"
        "                  'at_10': compiled_wanted(10), 'at_5000': compiled_wanted(5000),\n"
        "                  'result': dumps(s.to_dict(raw=True))}))\n"
    )
    out = json.loads(_python("-c", code).stdout)
    assert out["modules"] == []
    assert (out["at_10"], out["at_5000"]) == (False, True)  # numba from 5,000 GTs on (or once loaded)
    # the numpy paths it ran give the numba kernels' results (this process uses them: tests/conftest.py)
    compiled = imbstat.anchor_stats(imbstat.load(sample))
    assert "numba" in sys.modules
    assert out["result"] == dumps(compiled.to_dict(raw=True))


def test_cli_help_and_a_small_anchor_iou_import_no_heavy_package(tmp_path):
    assert not (HEAVY | {"ot", "scipy"}) & _imported(_python("-X", "importtime", "-m", "imbstat", "--help").stderr)
    sample = write_sample(tmp_path / "sample.json", num_images=30)
    done = _python("-X", "importtime", "-m", "imbstat", "anchor-iou", str(sample), "-q", "--json",
                   str(tmp_path / "a.json"))  # fmt: skip
    imported = _imported(done.stderr)
    assert not HEAVY & imported and "ot.lp.emd_wrap" in imported  # POT's compiled solver, for the 2-D scores
    assert json.loads((tmp_path / "a.json").read_text())["anchors"]["foreground"] > 0


def test_lean_pot_load_is_pots_own_solver():
    code = (
        "import sys, numpy as np\n"
        "from imbstat import scores\n"
        "counts = np.random.default_rng(0).integers(0, 50, (16, 16))\n"
        "lean = scores.score_2d(counts)\n"
        "assert 'ot' not in sys.modules and 'ot.datasets' not in sys.modules, 'stand-ins left behind'\n"
        "import ot  # the real package afterwards, around the same solver module\n"
        "assert ot.lp.emd2 is scores._lean_ot().emd2 and ot.datasets and ot.gromov\n"
        "scores._lean_ot.cache_clear()\n"
        "print(repr(lean), repr(scores.score_2d(counts)))\n"
    )
    lean, full = _python("-c", code).stdout.split()
    assert lean == full and 0 < float(lean) < 1
