"""Loading the numba kernels (`anchors/sparse_kernel.py`, `atss_kernel.py`, `stats/anchor_kernel.py`) at first use.

They are defined with ``cache=True``: numba keeps the compiled code on disk, so a later process
loads it instead of compiling again. Importing them here, at their first use, keeps numba's import
(~0.5 s) out of the runs that label no anchors.
"""

from __future__ import annotations

import importlib
import os
import tempfile
import threading
from typing import Any

_LOAD = threading.Lock()  # labelling threads may ask at once: the cache-folder fallback below runs once
_KERNELS: dict[tuple[str, str], Any] = {}


def load_kernel(module: str, name: str) -> Any:
    """``module.name``, a numba kernel, imported at its first use (the lock is taken only until it is loaded:
    callers ask batch after batch)."""
    kernel = _KERNELS.get((module, name))
    if kernel is None:
        with _LOAD:
            kernel = _KERNELS.get((module, name)) or _import_kernel(module, name)
            _KERNELS[module, name] = kernel
    return kernel


def _import_kernel(module: str, name: str) -> Any:
    """numba keeps compiled kernels beside their module, else in the user's cache folder; where neither is
    writable (a read-only install, no home) it refuses to define them. They then cache in a folder of the
    system's temporary directory instead (``NUMBA_CACHE_DIR`` set by the user is numba's first choice anyway).
    """
    try:
        return getattr(importlib.import_module(module), name)
    except RuntimeError as e:
        if "no locator available" not in str(e):
            raise
    import numba

    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"imbstat-numba-{os.getuid()}")
    return getattr(importlib.import_module(module), name)
