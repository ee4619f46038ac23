"""Imbalance scores in [0, 1]: 0 = balanced (uniform), 1 = all mass at one extreme (docs/design.md, 'Scores')."""

from __future__ import annotations

import functools
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from imbstat.errors import ImbstatError


def w1_uniform(counts: np.ndarray) -> float:
    """W1 between the histogram ``counts`` and the uniform one on the same K ordered bins.

    Bins sit at ``t_i = i / (K - 1)``, so W1 is ``sum_{i < K-1} |P_i - U_i| / (K - 1)``
    with P and U cumulative: the value of ``scipy.stats.wasserstein_distance(t, t, p, u)``.
    In [0, 0.5]; NaN for an empty histogram, 0 for a single bin.
    """
    counts = np.asarray(counts, np.float64).ravel()
    k, total = counts.size, counts.sum()
    if total == 0:
        return float("nan")
    if k == 1:
        return 0.0
    cum_p = np.cumsum(counts)[:-1] / total
    cum_u = np.arange(1, k) / k
    return float(np.abs(cum_p - cum_u).sum() / (k - 1))


def score_1d(counts: np.ndarray) -> float:
    """Imbalance score of an ordered histogram: ``2 · W1(p, uniform)``, in [0, 1]."""
    return 2.0 * w1_uniform(counts)


def w1_between(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """W1 between two histograms on the same K ordered bins, each normalised to total 1.

    Bins sit at ``t_i = i / (K - 1)`` as in :func:`w1_uniform`, so W1 is
    ``sum_{i < K-1} |A_i - B_i| / (K - 1)`` with A and B cumulative: the value of
    ``scipy.stats.wasserstein_distance(t, t, a, b)``. In [0, 1] (1: point masses at
    opposite ends); NaN when either histogram is empty, 0 for a single bin.
    """
    a = np.asarray(counts_a, np.float64).ravel()
    b = np.asarray(counts_b, np.float64).ravel()
    assert a.size == b.size, "histograms over different bins"
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    if a.size == 1:
        return 0.0
    cum_a = np.cumsum(a)[:-1] / a.sum()
    cum_b = np.cumsum(b)[:-1] / b.sum()
    return float(np.abs(cum_a - cum_b).sum() / (a.size - 1))


def shift_1d(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Shift score of two ordered histograms: ``2 · W1(a, b)``, on the scale of :func:`score_1d`.

    ``shift_1d(p, uniform) == score_1d(p)``. In [0, 2]: at most 1 when either side
    is uniform, 2 only for point masses at opposite ends.
    """
    return 2.0 * w1_between(counts_a, counts_b)


@dataclass(frozen=True)
class ClassScores:
    """Class imbalance measures of per-class instance counts (docs/design.md, 'Scores').

    ``imbalance_ratio`` is max / min over classes with at least one instance;
    the other measures are over every category of the dataset, so a category
    with no instance makes the classes less balanced.
    """

    imbalance_ratio: float
    gini: float
    normalized_entropy: float
    top10_share: float
    w1_score: float

    @classmethod
    def of(cls, instances: np.ndarray) -> ClassScores:
        n = np.sort(np.asarray(instances, np.float64))[::-1]  # rank-frequency, descending
        k, total = n.size, n.sum()
        if total == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan, nan)
        present = n[n > 0]
        p = n / total
        nonzero = p[p > 0]
        entropy = float(-(nonzero * np.log(nonzero)).sum())
        ascending = n[::-1]
        # Gini = sum_ij |x_i - x_j| / (2 K^2 mean), via the sorted form.
        gini = float(2 * (np.arange(1, k + 1) * ascending).sum() / (k * total) - (k + 1) / k)
        top = max(1, int(np.ceil(0.1 * k)))
        return cls(
            imbalance_ratio=float(present.max() / present.min()),
            gini=gini,
            normalized_entropy=float(entropy / np.log(k)) if k > 1 else 1.0,
            top10_share=float(n[:top].sum() / total),
            w1_score=score_1d(n),
        )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _cell_centres(grid: int) -> np.ndarray:
    """[G*G, 2] (x, y) centres of a G×G grid's cells in [0, 1]², row-major with row = y."""
    c = (np.arange(grid) + 0.5) / grid
    y, x = np.meshgrid(c, c, indexing="ij")
    return np.stack([x.ravel(), y.ravel()], axis=1)


def _corner_w1(grid: int) -> float:
    """W1 between a point mass at a corner cell of a G×G grid and the uniform histogram."""
    centres = _cell_centres(grid)
    # A single source must send its mass to every cell: W1 is the mean distance from the corner.
    return float(np.hypot(*(centres - centres[0]).T).mean())


# POT imports every array backend it finds (torch: ~2 s of a run here); imbstat passes it numpy arrays only.
POT_BACKENDS = ("PYTORCH", "JAX", "CUPY", "TENSORFLOW")
_SOLVER_IMPORT = threading.Lock()  # the switches are process-wide: one thread sets and removes them at a time


@functools.cache
def _solver() -> Any:
    """POT (``ot.emd2``, ``ot.dist``), imported at the first 2-D score.

    POT's documented ``POT_BACKEND_DISABLE_*`` switches keep it from importing the backends a
    process that did not import POT itself has no use for: each one the caller has not set is set
    for this import only, then removed, so the caller's environment (and its child processes) is
    left as it was. A caller who imported POT first, or set a switch, keeps their choice. POT imported
    here has no torch, JAX, CuPy or TensorFlow backend for the rest of the process (docs/api.md).
    """
    with _SOLVER_IMPORT:
        if "ot" in sys.modules:
            return sys.modules["ot"]
        unset = [f"POT_BACKEND_DISABLE_{backend}" for backend in POT_BACKENDS]
        unset = [name for name in unset if name not in os.environ]
        os.environ.update(dict.fromkeys(unset, "1"))
        try:
            import ot
        except ImportError:
            raise ImbstatError("the 2-D Wasserstein scores need POT: pip install pot") from None
        finally:
            for name in unset:
                os.environ.pop(name, None)
        return ot


# The largest grid of the spatial maps: the exact 2-D W1 of a G×G map solves a transport problem between its
# surplus and deficit cells (~G²/2 each, a dense cost matrix), so its time and memory grow as G⁴. Measured on a
# Poisson(3) 2-D map against the uniform one: 32: 0.14 s, 52 MB; 48: 0.35 s, 91 MB; 64: 2.2 s, 195 MB;
# 96: 14 s, 809 MB; 128: over 60 s and 4 GB (issue 20). --grid (location, anchor-iou) stops at 64.
MAX_GRID = 64

# From this grid size on, a solve on the 2×2-pooled maps first gives the network simplex
# starting potentials: a 64×64 Gaussian map goes from 2.1 s to 1.4 s, with the same value.
WARM_START_GRID = 48


def _emd_grid(a: np.ndarray, b: np.ndarray, warm: bool = True) -> tuple[float, dict | None]:
    """Exact W1 between two G×G maps [G, G] (each normalised to 1) on cell centres in [0, 1]².

    Returns W1 and the transport's dual potentials on the full grid (NaN where
    a cell neither sends nor receives), for warm-starting a finer solve.
    """
    ot = _solver()
    grid = a.shape[0]
    # With a metric cost, mass both sides share stays where it is (Kantorovich–Rubinstein: W1
    # depends on a - b only), so only the surplus cells send and only the deficit cells receive:
    # two disjoint sets, a problem several times smaller than all cells × all cells.
    diff = (a / a.sum() - b / b.sum()).ravel()
    src, dst = np.flatnonzero(diff > 0), np.flatnonzero(diff < 0)
    if src.size == 0 or dst.size == 0:
        return 0.0, None
    supply, demand = diff[src], -diff[dst]
    moved = (supply.sum() + demand.sum()) / 2
    centres = _cell_centres(grid)
    cost = ot.dist(centres[src], centres[dst], metric="euclidean")  # [S, D]
    start = None
    if warm and grid >= WARM_START_GRID and grid % 2 == 0:
        start = _coarse_potentials(a, b, src, dst, cost)
    w1, log = ot.emd2(supply / supply.sum(), demand / demand.sum(), cost, numItermax=10_000_000, log=True,
                      potentials_init=start)  # fmt: skip
    potentials = {"u": np.full(grid * grid, np.nan), "v": np.full(grid * grid, np.nan)}
    potentials["u"][src], potentials["v"][dst] = log["u"], log["v"]
    return float(w1 * moved), potentials  # a plain float: numpy's scalar leaks into scores otherwise


def _coarse_potentials(
    a: np.ndarray, b: np.ndarray, src: np.ndarray, dst: np.ndarray, cost: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Starting dual potentials for the fine problem from the solve on 2×2-pooled maps."""
    grid = a.shape[0]
    pooled = [m.reshape(grid // 2, 2, grid // 2, 2).sum(axis=(1, 3)) for m in (a, b)]
    _, coarse = _emd_grid(*pooled)
    if coarse is None:
        return None
    row, col = np.divmod(np.arange(grid * grid), grid)
    parent = (row // 2) * (grid // 2) + col // 2
    alpha, beta = coarse["u"][parent[src]], coarse["v"][parent[dst]]
    # Cells whose parent did not send (or receive) take the c-transform of the other side's potentials.
    if np.isnan(alpha).all() or np.isnan(beta).all():
        return None
    alpha = np.where(np.isnan(alpha), np.min(cost - np.nan_to_num(beta, nan=-np.inf)[None, :], axis=1), alpha)
    beta = np.where(np.isnan(beta), np.min(cost - alpha[:, None], axis=0), beta)
    return alpha, beta


def check_grid(grid: int) -> None:
    """ImbstatError unless ``grid`` is a whole number in 2 .. :data:`MAX_GRID` (the cost of the 2-D W1)."""
    if isinstance(grid, bool) or not isinstance(grid, int) or not 2 <= grid <= MAX_GRID:
        raise ImbstatError(f"--grid {grid!r}: expected a whole number from 2 to {MAX_GRID} (the 2-D W1 grows as grid⁴)")


def score_2d(grid_counts: np.ndarray) -> float:
    """Exact W1 between a G×G histogram and the uniform one, over that of a corner point mass.

    Euclidean ground metric on cell centres in [0, 1]²; optimal transport by
    POT's ``ot.emd2``. In [0, 1]; NaN for an empty histogram.
    """
    counts = np.asarray(grid_counts, np.float64)
    assert counts.ndim == 2 and counts.shape[0] == counts.shape[1]
    if counts.sum() == 0:
        return float("nan")
    grid = counts.shape[0]
    return _emd_grid(counts, np.ones_like(counts))[0] / _corner_w1(grid)


def scores_2d(*maps: np.ndarray) -> list[float]:
    """:func:`score_2d` of each map, their transport problems solved side by side (POT's solver releases the GIL)."""
    workers = min(len(maps), os.cpu_count() or 1)
    if workers <= 1:
        return [score_2d(m) for m in maps]
    if any(np.any(m) for m in maps):
        _solver()  # imported once, before the threads
    with ThreadPoolExecutor(workers, thread_name_prefix="imbstat-w1") as pool:
        return list(pool.map(score_2d, maps))


def w1_2d_between(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Exact W1 between two G×G histograms, each normalised to total 1; NaN when either is empty.

    Euclidean ground metric on cell centres in [0, 1]² (row = y); optimal
    transport by POT's ``ot.emd2``. A point mass moved k cells along a row has W1 = k / G.
    """
    a = np.asarray(counts_a, np.float64)
    b = np.asarray(counts_b, np.float64)
    assert a.shape == b.shape and a.ndim == 2 and a.shape[0] == a.shape[1], "maps over different grids"
    if a.sum() == 0 or b.sum() == 0:
        return float("nan")
    return _emd_grid(a, b)[0]


def shift_2d(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """Shift score of two G×G maps: ``W1(a, b)`` over the corner W1 that :func:`score_2d` divides by.

    On the scale of :func:`score_2d`: ``shift_2d(p, uniform) == score_2d(p)``. In
    [0, √2·(G-1)/G / corner W1], about [0, 1.85]; the top only for point masses at
    opposite corners.
    """
    return w1_2d_between(counts_a, counts_b) / _corner_w1(np.shape(counts_a)[0])


def class_change(before: np.ndarray, after: np.ndarray) -> dict[str, float]:
    """How far a remedy moves per-class counts of the same classes: ``tv_distance`` of the shares,
    ``w1_score`` = 2·W1 between the rank–frequency curves (as ``compare`` scores two datasets); NaN if one is empty."""
    a, b = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if not a.sum() or not b.sum():
        return {"tv_distance": float("nan"), "w1_score": float("nan")}
    tv = 0.5 * float(np.abs(a / a.sum() - b / b.sum()).sum())
    return {"tv_distance": tv, "w1_score": shift_1d(np.sort(a)[::-1], np.sort(b)[::-1])}
