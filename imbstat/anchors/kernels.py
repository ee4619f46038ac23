"""Loading the numba kernels (:mod:`imbstat.anchors.sparse`, :mod:`imbstat.stats.anchor_kernel`) with a cache.

They are defined with ``cache=True``: numba keeps the compiled code on disk, so a later
process loads it instead of compiling again (~0.5 s of start-up even so: importing
numba, then its first dispatch builds the CPU target).
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import tempfile
from typing import Any

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


def load_kernel(module: str, name: str) -> Any:
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
