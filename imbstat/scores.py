"""Imbalance scores in [0, 1]: 0 = balanced (uniform), 1 = all mass at one extreme (DESIGN.md §4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


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


@dataclass(frozen=True)
class ClassScores:
    """Class imbalance measures of per-class instance counts (DESIGN.md §4).

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


def _emd_to_uniform(mass: np.ndarray, centres: np.ndarray) -> float:
    import ot

    src = np.flatnonzero(mass)  # cells without mass add nothing; dropping them shrinks the problem
    a = mass[src] / mass.sum()
    b = np.full(len(centres), 1.0 / len(centres))
    cost = ot.dist(centres[src], centres, metric="euclidean")
    return float(ot.emd2(a, b, cost, numItermax=10_000_000))


def score_2d(grid_counts: np.ndarray) -> float:
    """Exact W1 between a G×G histogram and the uniform one, over that of a corner point mass.

    Euclidean ground metric on cell centres in [0, 1]²; optimal transport by
    POT's ``ot.emd2``. In [0, 1]; NaN for an empty histogram.
    """
    counts = np.asarray(grid_counts, np.float64)
    assert counts.ndim == 2 and counts.shape[0] == counts.shape[1]
    if counts.sum() == 0:
        return float("nan")
    centres = _cell_centres(counts.shape[0])
    # A single source must send its mass to every cell: W1 is the mean distance from the corner.
    corner_w1 = float(np.hypot(*(centres - centres[0]).T).mean())
    return _emd_to_uniform(counts.ravel(), centres) / corner_w1
