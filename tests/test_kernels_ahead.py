"""The kernels built ahead of time (imbstat._kernels) against numba's compile of the same source, and the checks
that keep the build from being called with what it was not built for."""

from __future__ import annotations

import dataclasses
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
from helpers import COCO_TRAIN_MINI, COCO_VAL_MINI, coco_doc, needs_shared_data

import imbstat
from imbstat.anchors import aot, kernels
from imbstat.anchors.generate import anchor_grid
from imbstat.anchors.kernels import AheadKernel, ahead_build, load_kernel, numba_kernel, use_ahead
from imbstat.anchors.presets import PRESETS
from imbstat.anchors.sparse import match_sparse
from imbstat.report.document import dumps

LABEL = ("imbstat.anchors.sparse_kernel", "_label")
CANDIDATES = ("imbstat.anchors.atss_kernel", "_candidates")
TALLY = ("imbstat.stats.anchor_kernel", "tally")
BUILT = ahead_build() is not None
needs_build = pytest.mark.skipif(not BUILT, reason="imbstat._kernels is not built here (no C compiler at install?)")
# The presets' conventions: mmdetection float64, legacy +1 areas, rpn's min_pos_iou, float32 with the
# torchvision rule, detectron2's float32 corners.
PRESET_NAMES = ("retinanet", "retinanet-v1", "rpn", "torchvision-retinanet", "detectron2-retinanet")


def _random_doc(seed: int, images: int = 12, categories: int = 5) -> dict:
    """Images of random sizes with boxes that tie: integer corners, repeats, slivers, boxes at the edges."""
    rng = np.random.default_rng(seed)
    rows, annotations = [], []
    for i in range(1, images + 1):
        w, h = int(rng.integers(40, 1400)), int(rng.integers(40, 1400))
        rows.append((i, w, h))
        for _ in range(int(rng.integers(0, 9))):
            x, y = int(rng.integers(0, w - 2)), int(rng.integers(0, h - 2))
            bw, bh = int(rng.integers(1, w - x + 1)), int(rng.integers(1, h - y + 1))
            box = [x, y, bw, bh] if rng.random() > 0.2 else [x + 0.25, y, 0.5, bh]  # some thinner than a pixel
            annotations += [(i, int(rng.integers(1, categories + 1)), box, 0)] * (2 if rng.random() < 0.15 else 1)
    return coco_doc(rows, annotations, [(c, f"class {c}") for c in range(1, categories + 1)])


def _stats_json(path, mode: str, monkeypatch, **options) -> str:
    monkeypatch.setenv("IMBSTAT_KERNELS", mode)
    return dumps(imbstat.anchor_stats(imbstat.load(path), **options).to_dict(raw=True))


def test_accepts_what_numba_would_type_as_the_signature():
    c, f = np.zeros((3, 4)), np.zeros((4, 3)).T
    c_order, any_order, ints = kernels._accepts("float64[:, ::1]"), kernels._accepts("float64[:, :]"), "int64[::1]"
    assert c_order(c) and not c_order(f) and any_order(f) and not any_order(np.zeros(3))
    assert not any_order(c.astype(np.float32)) and not any_order([[0.0]])
    assert not kernels._accepts(ints)(np.zeros(3, np.int32)) and not kernels._accepts(ints)(np.zeros(3))
    assert not kernels._accepts("float64[::1]")(np.zeros(3).astype(">f8"))  # another byte order
    frozen = np.zeros(3)
    frozen.flags.writeable = False
    assert not kernels._accepts("float64[::1]")(frozen)
    assert kernels._accepts("float64")(0.5) and kernels._accepts("float64")(np.float64(0.5))
    assert not kernels._accepts("float64")(np.float32(0.5)) and not kernels._accepts("float64")(True)
    assert kernels._accepts("boolean")(np.bool_(True)) and not kernels._accepts("boolean")(1)
    assert kernels._accepts("int64")(3) and not kernels._accepts("int64")(np.int32(3))


def test_source_hash_follows_the_kernel_files_and_signatures(tmp_path, monkeypatch):
    before = aot.source_hash()
    assert 0 <= before < 2**62 and aot.source_hash() == before
    for path in aot.kernel_files():  # a copy of the files hashes the same; an edit of one does not
        target = tmp_path / path.relative_to(aot.PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    monkeypatch.setattr(aot, "PACKAGE", tmp_path / "imbstat")
    assert aot.source_hash() == before
    edited = tmp_path / "imbstat" / "stats" / "anchor_kernel.py"
    edited.write_text(edited.read_text() + "\n")
    assert aot.source_hash() != before
    monkeypatch.setattr(aot, "PACKAGE", aot.PACKAGE.__class__(aot.__file__).resolve().parents[1])
    monkeypatch.setitem(aot.KERNELS, LABEL, {"sparse_label": ("none", ())})
    assert aot.source_hash() != before


def test_small_runs_take_the_build_on_one_thread_and_large_ones_numba_on_every_core(monkeypatch):
    monkeypatch.setattr(kernels, "ahead_build", lambda: object())
    monkeypatch.delenv("IMBSTAT_KERNELS", raising=False)
    limit = kernels.AHEAD_MAX_IMAGES
    assert use_ahead(limit) and not use_ahead(limit + 1) and use_ahead(limit, threads=1)  # by size
    assert not use_ahead(limit + 1, threads=1) and not use_ahead(3, threads=4)  # threads asked for: numba's
    monkeypatch.setenv("IMBSTAT_KERNELS", "aot")
    assert use_ahead(10 * limit) and use_ahead(3, threads=4)
    monkeypatch.setattr(kernels, "ahead_build", lambda: None)  # not built: numba whatever is asked
    assert not use_ahead(1, 1)


def test_jit_mode_and_a_stale_build_give_numbas_kernel(monkeypatch):
    monkeypatch.setenv("IMBSTAT_KERNELS", "jit")
    assert ahead_build() is None and load_kernel(*LABEL, ahead=True) is numba_kernel(*LABEL)
    monkeypatch.setenv("IMBSTAT_KERNELS", "auto")
    monkeypatch.setattr(aot, "source_hash", lambda: -1)  # built from other kernel files
    kernels._fresh_build.cache_clear()
    try:
        assert ahead_build() is None and load_kernel(*TALLY, ahead=True) is numba_kernel(*TALLY)
    finally:
        monkeypatch.undo()
        kernels._fresh_build.cache_clear()


def test_a_build_without_its_kernel_files_to_compare_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setattr(aot, "PACKAGE", tmp_path / "imbstat")  # an install that ships bytecode only
    monkeypatch.setattr(kernels, "_fresh_build", kernels._fresh_build.__wrapped__)  # uncached, for this test
    built = SimpleNamespace(source_hash=lambda: 1)
    monkeypatch.setattr(kernels, "importlib", SimpleNamespace(import_module=lambda name: built))
    monkeypatch.delenv("IMBSTAT_KERNELS", raising=False)
    assert ahead_build() is None and not use_ahead(1)


@needs_build
def test_a_division_by_zero_in_a_kernel_is_numpys_in_both(monkeypatch):
    # Anchor 1 (cell (0, 1): corners 8, 0, 16, 8) foreground for a GT with no width, [4, 0, 4, 8]: its
    # offsets in x are 4 / 0 and 8 / 0, +inf under numba's error_model "numpy", so the last column;
    # in y 0 / 8, row 2 of 4. A build that raised (Python's rule) or wrapped would differ.
    z = lambda *shape, dtype=np.int64: np.zeros(shape, dtype)  # noqa: E731
    relative = {way: (z(4, 4), z(4, 4)) for way in ("ahead", "numba")}
    for way, ahead in (("ahead", True), ("numba", False)):
        top_left, centre = relative[way]
        load_kernel(*TALLY, ahead=ahead)(
            np.array([0, 16]), np.array([4]), np.array([[8.0, 8.0]]), np.array([[[0.0, 0.0, 8.0, 8.0]]]),
            False, np.array([0]), np.array([1]), np.array([0]), np.array([0.7]), z(0), z(0),
            np.array([[[4.0, 0.0, 4.0, 8.0]]]), np.array([0]), np.array([0], np.int16), np.array([100.0]),
            np.array([100.0]), 0.5, np.linspace(0, 1, 21), 0.5, z(1), z(20), z(20), z(1, dtype=np.int32),
            z(1, dtype=np.int32), top_left, centre, z(5, 5), z(5, 5),
        )  # fmt: skip
    assert isinstance(load_kernel(*TALLY, ahead=True), AheadKernel)
    np.testing.assert_array_equal(relative["ahead"][0], relative["numba"][0])
    np.testing.assert_array_equal(relative["ahead"][1], relative["numba"][1])
    assert relative["ahead"][0][2, 3] == relative["ahead"][1][2, 3] == 1 == relative["ahead"][0].sum()


@needs_build
def test_atss_candidates_called_with_what_they_were_not_built_for_go_to_numba():
    # the grid's int32 columns (say) would be read as int64 by the build: numba's kernel runs instead
    grid = anchor_grid(PRESETS["atss"], 256, 256)
    gts = np.array([[[10.0, 20.0, 90.0, 140.0]]])
    args = (gts, np.array([1]), grid.bases, np.ascontiguousarray(grid.steps), np.array([r for r, _ in grid.cells]),
            grid.cols, grid.level_offsets, 9, False)  # fmt: skip
    calls = []
    built = ahead_build()
    builds = [(getattr(built, export), arguments) for export, (_, arguments) in aot.KERNELS[CANDIDATES].items()]
    kernel = AheadKernel(builds, lambda: calls.append(1) or numba_kernel(*CANDIDATES))
    expected = kernel(*args)
    odd = kernel(*args[:5], grid.cols.astype(np.int32), *args[6:])
    assert calls == [1] and all(np.array_equal(a, b) for a, b in zip(expected, odd, strict=True))
    assert expected[0].shape[0] == 1 and expected[2].any()  # one GT's candidates, some inside it


@needs_build
def test_the_build_is_fresh_and_loads_as_an_ahead_kernel():
    assert ahead_build().source_hash() == aot.source_hash()
    assert isinstance(load_kernel(*LABEL, ahead=True), AheadKernel)
    assert not load_kernel(*LABEL, ahead=False).__class__.__module__.startswith("imbstat")  # numba's dispatcher


@needs_build
@pytest.mark.parametrize("name", PRESET_NAMES)
def test_ahead_and_numba_label_random_images_alike(name):
    preset = PRESETS[name]
    rng = np.random.default_rng(7)
    grid = anchor_grid(preset, 640, 512)
    for _ in range(30):
        n = int(rng.integers(1, 7))
        xy = rng.integers(0, 600, (2, n, 2)).astype(np.float64)
        gts = np.concatenate([xy.min(axis=0), xy.max(axis=0) + rng.integers(0, 3, (n, 2))], axis=1)[None]
        gts[0, -1] = gts[0, 0]  # a repeated GT: every anchor ties between the two
        num = np.array([n])
        ahead = match_sparse(grid, gts, num, preset, ahead=True).sorted()
        jit = match_sparse(grid, gts, num, preset, ahead=False).sorted()
        for field in dataclasses.fields(ahead):
            np.testing.assert_array_equal(getattr(ahead, field.name), getattr(jit, field.name))


@needs_build
@pytest.mark.parametrize("name", [*PRESET_NAMES, "atss", "atss-float32", "fcos", "fcos-centre"])
def test_ahead_and_numba_statistics_alike_on_random_files(write_json, monkeypatch, name):
    path = write_json(_random_doc(seed=len(name)))
    variants = {"atss-float32": ("atss", {"dtype": "float32"}), "fcos-centre": ("fcos", {"center_sampling": True})}
    base, changes = variants.get(name, (name, {}))
    preset = dataclasses.replace(PRESETS[base], **changes)
    ahead = _stats_json(path, "aot", monkeypatch, preset=preset)
    assert ahead == _stats_json(path, "jit", monkeypatch, preset=preset)
    assert '"foreground": 0' not in ahead  # the files do have foreground anchors to compare


@pytest.mark.slow
@needs_build
def test_a_wide_category_column_takes_its_own_build(write_json, monkeypatch):
    doc = _random_doc(seed=3, images=6, categories=2**15 + 2)  # int64 categories (AnchorSums: int16 below 2**15)
    path = write_json(doc)
    calls = []
    monkeypatch.setattr(kernels, "numba_kernel", lambda *key: calls.append(key) or numba_kernel(*key))
    kernels._ahead_kernel.cache_clear()
    try:
        ahead = _stats_json(path, "aot", monkeypatch)
    finally:
        kernels._ahead_kernel.cache_clear()
    assert calls == []  # neither the labels nor the tally went to numba
    assert ahead == _stats_json(path, "jit", monkeypatch)


@pytest.mark.slow
@needs_build
def test_a_call_the_build_was_not_made_for_goes_to_numba():
    preset = PRESETS["retinanet"]
    grid = anchor_grid(preset, 320, 320)
    gts = np.array([[[10.0, 20.0, 90.0, 140.0], [100.0, 100.0, 300.0, 200.0]]])
    calls = []
    built = ahead_build()
    builds = [(getattr(built, export), arguments) for export, (_, arguments) in aot.KERNELS[LABEL].items()]
    kernel = AheadKernel(builds, lambda: calls.append(1) or numba_kernel(*LABEL))
    from imbstat.anchors.sparse import shapes

    q = shapes(grid)

    def args(gts: np.ndarray, num: np.ndarray, pos: float = 0.5) -> tuple:
        return (gts, num, q["base"], q["step_x"], q["step_y"], q["rows"], q["cols"], q["offset"], q["shape"],
                q["per_cell"], pos, 0.4, 0.0, True, False, 0.0, False)  # fmt: skip

    expected = kernel(*args(gts, np.array([2])))
    assert calls == []
    for odd in (
        args(gts, np.array([2], np.int32)),  # int32 counts: the build would read them as int64
        args(np.asfortranarray(gts), np.array([2])),  # not C-contiguous
        args(gts, np.array([2]), np.float32(0.5)),  # a float32 threshold: numba types it as float32
    ):
        got = kernel(*odd)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_array_equal(a, b)
    assert calls == [1, 1, 1]


@needs_build
@needs_shared_data
@pytest.mark.parametrize("path", [COCO_VAL_MINI, COCO_TRAIN_MINI], ids=["val", "train"])
@pytest.mark.parametrize("name", ["retinanet", "torchvision-retinanet", "atss", "fcos"])
def test_ahead_and_numba_alike_on_the_coco_minis(path, name, monkeypatch):
    assert _stats_json(path, "aot", monkeypatch, preset=name) == _stats_json(path, "jit", monkeypatch, preset=name)


@needs_build
@pytest.mark.parametrize("name", ["retinanet", "atss", "fcos", "torchvision-rpn"])
def test_a_small_run_loads_no_numba_under_any_assigner(tmp_path, name):
    import json
    import os
    import subprocess
    import sys

    from imbstat.data.sample import write_sample

    sample = write_sample(tmp_path / "sample.json", num_images=12)
    code = (f"import sys, imbstat; s = imbstat.anchor_stats(imbstat.load({str(sample)!r}), preset={name!r}); "
            "import json; print(json.dumps(['numba' in sys.modules, s.totals['foreground']]))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(aot.PACKAGE.parent)}
    env.pop("IMBSTAT_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    loaded, foreground = json.loads(done.stdout)
    assert not loaded and foreground > 0
