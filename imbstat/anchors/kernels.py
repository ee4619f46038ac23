"""Loading the numba kernels (:mod:`imbstat.anchors.sparse`, :mod:`imbstat.stats.anchor_kernel`) with a cache.

They are defined with ``cache=True``: numba keeps the compiled code on disk, so a later
process loads it instead of compiling again (~0.5 s of start-up even so: importing
numba, then its first dispatch builds the CPU target).
"""

from __future__ import annotations

import importlib
import os
import tempfile
from typing import Any


def load_kernel(module: str, name: str) -> Any:
    """``module.name``, a numba kernel, imported at its first use.

    numba keeps compiled kernels beside their module, else in the user's cache folder;
    where neither is writable (a read-only install, no home) it refuses to define them.
    They then cache in a folder of the system's temporary directory instead
    (``NUMBA_CACHE_DIR`` set by the user is numba's first choice anyway).
    """
    try:
        return getattr(importlib.import_module(module), name)
    except RuntimeError as e:
        if "no locator available" not in str(e):
            raise
    import numba

    numba.config.CACHE_DIR = os.path.join(tempfile.gettempdir(), f"imbstat-numba-{os.getuid()}")
    return getattr(importlib.import_module(module), name)
