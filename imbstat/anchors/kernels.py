"""Loading the compiled kernels (`anchors/sparse_kernel.py`, `atss_kernel.py`, `stats/anchor_kernel.py`).

Two ways, one source. The kernels are built ahead of time at install
(:mod:`imbstat.anchors.aot`): a run that asks for them (``ahead=True``) gets that
build where it exists and matches the kernel files. Otherwise numba compiles the kernel at its
first use; they are defined with ``cache=True``, so numba keeps the compiled code on disk and a
later process loads it instead of compiling again (~0.6 s of start-up even so: importing numba,
then its first dispatch builds the CPU target). The ahead-of-time build holds the GIL while it
runs (pycc's wrappers do not release it) where numba's kernels release it: callers that label
on several threads ask for numba's.

``IMBSTAT_KERNELS`` = ``jit`` never uses the build (``aot`` and the default ``auto`` use it where
it is asked for and fresh); the tests run both ways and compare.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from imbstat.anchors import aot

# numba probes for scipy's BLAS when its CPU target first loads (numba.np.arraymath), importing scipy.linalg:
# ~0.5 s of a small run, for np.correlate and np.convolve only (np.dot and np.linalg probe again when compiled).
BLAS_PROBE = "scipy.linalg.cython_blas"


@functools.cache
def _numba_target_without_scipy() -> None:
    """Load numba's array functions with its BLAS probe failing, so that they do not import scipy.

    The kernels use no BLAS. Effect on other numba code in this process: np.correlate and
    np.convolve compile to numba's own loop instead of BLAS's dot. Nothing is done where scipy.linalg
    or numba's array functions are loaded already; the probe's module is unblocked at once.
    """
    if "scipy.linalg" in sys.modules or "numba.np.arraymath" in sys.modules or BLAS_PROBE in sys.modules:
        return
    sys.modules[BLAS_PROBE] = None  # type: ignore[assignment]  # import fails at once, its parents not imported
    try:
        import numba.np.arraymath  # noqa: F401  (a statement: python -X importtime lists what it loads)
    finally:
        if BLAS_PROBE in sys.modules and sys.modules[BLAS_PROBE] is None:
            del sys.modules[BLAS_PROBE]


def load_kernel(module: str, name: str, *, ahead: bool = False) -> Any:
    """``module.name``, a compiled kernel: with ``ahead``, its ahead-of-time build where there is a fresh one
    (:class:`AheadKernel`), else numba's (:func:`numba_kernel`)."""
    if ahead and (module, name) in aot.KERNELS:
        built = ahead_build()
        if built is not None:
            return _ahead_kernel(built, module, name)
    return numba_kernel(module, name)


# The ahead-of-time build labels on one thread (it holds the GIL) and 10-50 % slower per image (baseline
# CPU), numba's kernels on every core after ~0.7 s of loading; the sums run on one thread either way,
# so even many cores at most halve an image's time. Below this many images the build is done first
# (benchmarks/bench_startup.py: 35k-76k images on 2 cores).
AHEAD_MAX_IMAGES = 10_000


def use_ahead(images: int, threads: int | None = None) -> bool:
    """Whether a run over ``images`` images labels with the ahead-of-time build, where there is a fresh one:
    for at most :data:`AHEAD_MAX_IMAGES` images, unless more than one thread is asked for
    (``IMBSTAT_KERNELS=aot``: always; ``jit``: never)."""
    mode = kernels_mode()
    if mode == "jit" or ahead_build() is None:
        return False
    return mode == "aot" or (images <= AHEAD_MAX_IMAGES and (threads is None or threads <= 1))


def kernels_mode() -> str:
    """``IMBSTAT_KERNELS``: ``auto`` (the default) or ``aot`` use the ahead-of-time build where asked, ``jit`` never."""
    mode = os.environ.get("IMBSTAT_KERNELS", "auto").strip().lower() or "auto"
    return mode if mode in ("auto", "aot", "jit") else "auto"


def ahead_build() -> Any | None:
    """The ahead-of-time build (``imbstat._kernels``), or None: not built, built from other kernel files, or
    ``IMBSTAT_KERNELS=jit``."""
    return None if kernels_mode() == "jit" else _fresh_build()


@functools.cache
def _fresh_build() -> Any | None:
    try:
        built = importlib.import_module(aot.EXTENSION)
    except ImportError:
        return None
    try:
        fresh = built.source_hash() == aot.source_hash()
    except OSError:  # the kernel files are not there to compare (an install that ships bytecode only)
        fresh = False
    if not fresh:
        logging.getLogger(__name__).info("%s was built from other kernel files: numba compiles them", aot.EXTENSION)
        return None
    return built


@functools.cache
def _ahead_kernel(built: Any, module: str, name: str) -> AheadKernel:
    builds = [(getattr(built, export), arguments) for export, (_, arguments) in aot.KERNELS[module, name].items()]
    return AheadKernel(builds, functools.partial(numba_kernel, module, name))


class AheadKernel:
    """A kernel's ahead-of-time builds, each called only with the argument types it was built for.

    pycc's wrappers convert an array without checking its dtype, dimensions or layout (a wrong
    one is read as the built type: garbage or a crash), so every argument is checked here first;
    a call that matches no build goes to numba's kernel, which compiles a version for it.
    """

    def __init__(self, builds: list[tuple[Callable, tuple[str, ...]]], numba: Callable[[], Callable]):
        self.builds = [(function, [_accepts(t) for t in arguments]) for function, arguments in builds]
        self.numba = numba

    def __call__(self, *args: Any) -> Any:
        for function, accepts in self.builds:
            if len(args) == len(accepts) and all(ok(a) for ok, a in zip(accepts, args, strict=True)):
                return function(*args)
        return self.numba()(*args)


def _accepts(numba_type: str) -> Callable[[Any], bool]:
    """A test of one argument against a numba type of :data:`aot.KERNELS` (``float64``, ``int64[:, ::1]``, ...)."""
    name, _, dims = numba_type.partition("[")
    if not dims:
        # What numba would type as this scalar and nothing else (a bool is an int to Python; a float32 is not).
        scalar = {
            "float64": lambda a: isinstance(a, float),  # np.float64 is a float
            "int64": lambda a: isinstance(a, (int, np.int64)) and not isinstance(a, bool),
            "boolean": lambda a: isinstance(a, (bool, np.bool_)),
        }
        return scalar[name]
    dtype, ndim, contiguous = np.dtype(name), len(dims.split(",")), dims.endswith("::1]")

    def accepts(a: Any) -> bool:
        return (
            type(a) is np.ndarray and a.dtype == dtype and a.ndim == ndim and a.flags.aligned
            and a.flags.writeable and (a.flags.c_contiguous or not contiguous)
        )  # fmt: skip

    return accepts


_NUMBA_LOAD = threading.Lock()  # labelling threads may ask at once: numba and its scipy-free start load once
_NUMBA_KERNELS: dict[tuple[str, str], Any] = {}


def numba_kernel(module: str, name: str) -> Any:
    """``module.name``, a numba kernel, imported at its first use (see :func:`_numba_kernel`); the lock is
    taken only until it is loaded (callers ask batch after batch)."""
    kernel = _NUMBA_KERNELS.get((module, name))
    if kernel is None:
        with _NUMBA_LOAD:
            kernel = _NUMBA_KERNELS.get((module, name)) or _numba_kernel(module, name)
            _NUMBA_KERNELS[module, name] = kernel
    return kernel


def _numba_kernel(module: str, name: str) -> Any:
    """``module.name``, a numba kernel, imported at its first use.

    numba keeps compiled kernels beside their module, else in the user's cache folder;
    where neither is writable (a read-only install, no home) it refuses to define them.
    They then cache in a folder of the system's temporary directory instead
    (``NUMBA_CACHE_DIR`` set by the user is numba's first choice anyway).
    """
    _numba_target_without_scipy()
    try:
        return getattr(importlib.import_module(module), name)
    except RuntimeError as e:
        if "no locator available" not in str(e):
            raise
    import numba

    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"imbstat-numba-{os.getuid()}")
    return getattr(importlib.import_module(module), name)
