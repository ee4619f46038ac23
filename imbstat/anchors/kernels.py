"""When the numba kernels are worth loading: their start-up against the numpy paths' per-GT cost.

The compiled sparse path and tally (:mod:`sparse_kernel`, :mod:`imbstat.stats.anchor_kernel`)
give the same results as their numpy references. Loading them costs a fixed ~0.5 s per
process even from numba's on-disk cache (importing numba, then its first dispatch builds
the CPU target and imports scipy.linalg for BLAS), while they save about 0.09 ms per GT
(measured in ``benchmarks/bench_startup.py``): below :data:`COMPILED_MIN_GTS` GTs a whole
run finishes sooner on the numpy paths.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from typing import Any

COMPILED_MIN_GTS = 5_000


def compiled_wanted(gts: int) -> bool:
    """Whether labelling ``gts`` GTs should use the numba kernels (always once numba is loaded here)."""
    return gts >= COMPILED_MIN_GTS or "numba" in sys.modules


def load_kernel(module: str, name: str) -> Any:
    """``module.name``, a numba kernel, or None where numba is missing (the caller runs its numpy reference).

    numba keeps compiled kernels on disk (``cache=True``) beside their module, else in the user's cache
    folder; where neither is writable (a read-only install, no home) it refuses to define them. They
    then cache in a folder of the system's temporary directory instead (``NUMBA_CACHE_DIR`` set by the
    user is numba's first choice anyway).
    """
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return None
    except RuntimeError as e:
        if "no locator available" not in str(e):
            raise
    import numba

    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"imbstat-numba-{os.getuid()}")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, RuntimeError):  # not even there: compile nothing, run the numpy reference
        return None
