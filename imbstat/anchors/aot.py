"""The anchor kernels compiled ahead of time, at install, into ``imbstat._kernels``.

A numba kernel is compiled again in every process: even with its machine code cached on
disk, importing numba and building its typing and target registries costs ~0.6 s of CPU
before the first call (measured in ``benchmarks/bench_startup.py``), most of a small run.
``setup.py`` therefore compiles the kernels of the CPU paths (the sparse MaxIoU labelling, the
ATSS candidates and thresholds, FCOS's IoU, the per-anchor statistics) with ``numba.pycc`` into
an ordinary extension module, which
imports in a millisecond and needs no numba. The kernels' source stays the one definition:
the build compiles the same functions, from the same files, that numba compiles at run time.

Three rules keep the build from ever giving another number than numba's own compile:

* The build records a hash of the kernel files and of the signatures below; a run uses the
  build only while that hash matches the files beside it (an edited kernel falls back to numba).
* A pycc wrapper converts arrays without checking them: a wrong dtype would be read as the
  built one. :class:`imbstat.anchors.kernels.AheadKernel` checks every argument against the
  signature first and gives any call that does not match to numba's kernel instead.
* Where the build fails (no C compiler), the install goes on without it and runs use numba.

This module imports nothing of imbstat and numba only inside :func:`extension`, so that
``setup.py`` can load it by path, before imbstat's dependencies are installed (the kernel modules
then import under bare stand-ins for their packages, :func:`_load`).
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

EXTENSION = "imbstat._kernels"
PACKAGE = Path(__file__).resolve().parents[1]  # imbstat/

# Per kernel (module, function): the builds made of it, export name -> (return type, argument types).
# Arrays are C-contiguous where they end in ``::1``; the tally's category column comes in two widths.
_TALLY_ARGS = (
    "int64[::1]", "int64[::1]", "float64[:, ::1]", "float64[:, :, ::1]", "boolean",  # the grid
    "int64[:]", "int64[:]", "int64[::1]", "float64[::1]", "int64[:]", "int64[:]",  # the batch's matches
    "float64[:, :, ::1]", "int64[:]", "{category}[::1]", "float64[::1]", "float64[::1]",  # GTs, classes, sizes
    "float64", "float64[::1]", "float64",  # pos_iou, IoU bin edges, relative limit
    "int64[::1]", "int64[::1]", "int64[::1]", "int32[::1]", "int32[::1]",  # per class, IoU, per GT
    "int64[:, ::1]", "int64[:, ::1]", "int64[:, ::1]", "int64[:, ::1]",  # relative maps, coverage differences
)  # fmt: skip
_LABEL_ARGS = (
    "float64[:, :, ::1]", "int64[::1]", "float64[:, :]", "float64[:]", "float64[:]",  # GTs, counts, shapes
    "int64[::1]", "int64[::1]", "int64[::1]", "int64[::1]", "int64[::1]",  # rows, cols, offset, shape, per_cell
    "float64", "float64", "float64", "boolean", "boolean", "float64", "boolean",  # the preset's rule
)  # fmt: skip
_LABEL_RETURNS = "Tuple((int64[:, :], float64[:], int64[:, :], float64[:, ::1], boolean))"
_CANDIDATES_ARGS = (
    "float64[:, :, ::1]", "int64[::1]", "float64[:, :, ::1]", "float64[:, ::1]", "int64[::1]", "int64[::1]",
    "int64[::1]", "int64", "boolean",  # GTs, counts, the grid's bases, steps, rows, cols, offsets; topk, f32
)  # fmt: skip
KERNELS: dict[tuple[str, str], dict[str, tuple[str, tuple[str, ...]]]] = {
    ("imbstat.anchors.sparse_kernel", "_label"): {"sparse_label": (_LABEL_RETURNS, _LABEL_ARGS)},
    ("imbstat.anchors.sparse_kernel", "paired_iou"): {
        "paired_iou": ("float64[::1]", ("float64[:, ::1]", "float64[:, ::1]", "float64", "boolean"))
    },
    ("imbstat.anchors.atss_kernel", "_candidates"): {
        "atss_candidates": ("Tuple((int64[:, ::1], float64[:, ::1], boolean[:, ::1]))", _CANDIDATES_ARGS)
    },
    ("imbstat.anchors.atss_kernel", "_thresholds"): {"atss_thresholds": ("float64[::1]", ("float64[:, ::1]",))},
    ("imbstat.stats.anchor_kernel", "tally"): {
        f"tally_{width}": ("none", tuple(a.format(category=width) for a in _TALLY_ARGS)) for width in ("int16", "int64")
    },
}


def kernel_files() -> list[Path]:
    """The source files of the kernels, in a fixed order."""
    return sorted({PACKAGE.parent / (module.replace(".", "/") + ".py") for module, _ in KERNELS})


def source_hash() -> int:
    """A 62-bit hash of the kernel files and of :data:`KERNELS`: what a build is valid for."""
    digest = hashlib.blake2b(repr(sorted(KERNELS.items())).encode(), digest_size=8)
    for path in kernel_files():
        digest.update(path.read_bytes())
    return int.from_bytes(digest.digest(), "little") >> 2


def extension() -> Any:
    """The ``setuptools`` Extension that builds :data:`EXTENSION` (needs numba and a C compiler)."""
    os.environ.setdefault("NUMBA_CACHE_DIR", tempfile.mkdtemp(prefix="imbstat-build-numba-"))  # not the tree's
    from numba.pycc import CC

    cc = CC(EXTENSION.rsplit(".", 1)[1])
    for (module, name), builds in KERNELS.items():
        kernel = getattr(_load(module), name)
        for export, (returns, arguments) in builds.items():
            cc.export(export, f"{returns}({', '.join(arguments)})")(_calling(kernel, len(arguments)))
    namespace: dict[str, Any] = {}
    exec(f"def source_hash():\n    return {source_hash()}\n", namespace)  # the hash, as a constant of the build
    cc.export("source_hash", "int64()")(namespace["source_hash"])
    ext = cc.distutils_extension()
    ext.name = EXTENSION
    return ext


def _calling(kernel: Any, arity: int) -> Any:
    """A function that calls the numba kernel: pycc compiles an exported function itself with its own
    defaults (error_model "python": a division by zero raises), where a call keeps the kernel's options."""
    names = ", ".join(f"a{i}" for i in range(arity))
    namespace: dict[str, Any] = {"kernel": kernel}
    exec(f"def calling({names}):\n    return kernel({names})\n", namespace)
    return namespace["calling"]


def _load(module: str) -> Any:
    """A kernel module imported under its own name without importing the imbstat package (not importable at
    build time): its parent packages stand in as bare namespaces over their folders for the build."""
    for package in ("imbstat", "imbstat.anchors", "imbstat.stats"):
        if package not in sys.modules:
            stand_in = types.ModuleType(package)
            stand_in.__path__ = [str(PACKAGE.parent / package.replace(".", "/"))]
            sys.modules[package] = stand_in
    return importlib.import_module(module)
