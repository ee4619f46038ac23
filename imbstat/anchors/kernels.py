"""When the numba kernels are worth loading: their start-up against the numpy paths' per-GT cost.

The compiled sparse path and tally (:mod:`sparse_kernel`, :mod:`imbstat.stats.anchor_kernel`)
give the same results as their numpy references. Loading them costs a fixed ~0.5 s per
process even from numba's on-disk cache (importing numba, then its first dispatch builds
the CPU target and imports scipy.linalg for BLAS), while they save about 0.09 ms per GT
(measured in ``benchmarks/bench_startup.py``): below :data:`COMPILED_MIN_GTS` GTs a whole
run finishes sooner on the numpy paths.
"""

from __future__ import annotations

import sys

COMPILED_MIN_GTS = 5_000


def compiled_wanted(gts: int) -> bool:
    """Whether labelling ``gts`` GTs should use the numba kernels (always once numba is loaded here)."""
    return gts >= COMPILED_MIN_GTS or "numba" in sys.modules
