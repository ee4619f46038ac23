"""Per-batch class counts of simulated epochs, summed into means and fixed-size histograms.

:class:`BatchSums` takes the full batches of one epoch at a time, as (batch, class, count) entries,
and keeps only sums over batches: memory does not depend on the number of epochs. Shares and TV
distances are histogrammed in :data:`SHARE_BINS` equal bins on (0, 1] plus an exact count of zeros
(:func:`share_bin`); :func:`quantiles` reads :data:`QUANTILES` from them.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)  # the levels of every *_quantiles list
SHARE_BINS = 1000  # resolution of the share and TV distance histograms behind the quantiles


class BatchSums:
    """Sums over full batches, epoch after epoch, in memory independent of the epochs.

    ``k`` categories; ``share`` [K] the dataset's class shares (zeros when it has no instance), against
    which each batch's TV distance is taken; ``inversion`` [2] the category rows of the dataset's most
    and second most frequent classes ([] for none): a batch with more of the second is an inversion.
    """

    def __init__(self, k: int, share: np.ndarray, inversion: np.ndarray) -> None:
        self.k, self.share, self.inversion = k, share, inversion
        self.share_hist = np.zeros(k * (SHARE_BINS + 1), np.int64)  # [K, bins] flat (share_bin); zeros set last
        self.tv_hist = np.zeros(SHARE_BINS + 1, np.int64)
        self.share_sum, self.present = np.zeros(k), np.zeros(k, np.int64)
        self.tv_sum = self.w1_sum = 0.0
        self.full = self.with_instances = self.inversions = 0

    def add(self, batch: np.ndarray, category: np.ndarray, count: np.ndarray, batches: int) -> None:
        """``batches`` full batches: entry ``e`` puts ``count[e]`` instances of ``category[e]`` in ``batch[e]``."""
        k = self.k
        # one (batch, class) cell per key: an image's class and its batch mates' add up; cells sorted by batch
        cells = np.bincount(batch * k + category, weights=count, minlength=batches * k)  # [batches * K]
        cell = np.flatnonzero(cells)
        b, c, n = cell // k, cell % k, cells[cell]
        total = np.bincount(b, weights=n, minlength=batches)
        has = total > 0
        s = n / total[b]
        self.full += batches
        self.with_instances += int(has.sum())
        self.present += np.bincount(c, minlength=k)
        self.share_sum += np.bincount(c, weights=s, minlength=k)
        self.share_hist += np.bincount(c * (SHARE_BINS + 1) + share_bin(s), minlength=self.share_hist.size)
        # TV: ½ Σ_k |s_k − p_k| = ½ (1 + Σ_{k: s_k > 0} (|s_k − p_k| − p_k)), since Σ p = 1 and s = 0 elsewhere
        p = self.share[c]
        tv = 0.5 * (1 + np.bincount(b, weights=np.abs(s - p) - p, minlength=batches))[has]
        self.tv_sum += float(tv.sum())
        self.tv_hist += np.bincount(share_bin(tv), minlength=SHARE_BINS + 1)
        self.w1_sum += float(rank_w1(b, n.astype(np.int64), s, k, batches)[has].sum())
        if self.inversion.size:
            first, second = (cells[self.inversion[j] :: k] for j in (0, 1))  # [batches] counts of the two classes
            self.inversions += int((second > first).sum())

    def share_histograms(self) -> np.ndarray:
        """[K, SHARE_BINS + 1] per-class share histograms over the batches with instances, zeros included."""
        hist = self.share_hist.reshape(self.k, SHARE_BINS + 1).copy()
        hist[:, 0] = self.with_instances - self.present  # batches with instances but none of the class
        return hist


def share_bin(values: np.ndarray) -> np.ndarray:
    """Bin of each value in [0, 1]: 0 for exactly 0, j for ((j − 1)/S, j/S]."""
    return np.clip(np.ceil(values * SHARE_BINS), 0, SHARE_BINS).astype(np.int64)


def rank_w1(batch: np.ndarray, count: np.ndarray, share: np.ndarray, k: int, batches: int) -> np.ndarray:
    """[batches] ``score_1d`` of each batch's shares sorted descending over all ``k`` categories.

    ``score_1d`` is ``2 / (K − 1) · Σ_{i<K−1} |P_i − (i + 1)/K|`` with P the cumulative sorted shares.
    Over a batch's n present classes P comes from their sorted shares; from rank n on P = 1, and those
    terms sum to ``m(m + 1) / (2K)`` with ``m = K − 1 − n``. (The term at rank K − 1 is 0 either way.)
    """
    if k <= 1:  # one class: its batch is a point mass on one bin, score 0 (as score_1d); none: no batch has one
        return np.zeros(batches)
    # by batch, then share descending: shares of one batch are counts over one total, so sort by count
    order = np.argsort(batch * (int(count.max()) + 1) - count, kind="stable") if count.size else batch
    b, s = batch[order], share[order]
    present = np.bincount(b, minlength=batches)
    start = np.cumsum(present) - present
    rank = np.arange(b.size) - start[b]
    before = np.cumsum(s) - s  # the cumulative sum before each entry, over all batches
    cum = np.cumsum(s) - before[start[b]]  # within the batch
    head = np.bincount(b, weights=np.abs(cum - (rank + 1) / k), minlength=batches)
    m = np.maximum(k - 1 - present, 0)
    return 2.0 / (k - 1) * (head + m * (m + 1) / (2 * k))


def quantiles(hist: np.ndarray) -> np.ndarray:
    """[..., Q] :data:`QUANTILES` of histograms [..., SHARE_BINS + 1] (module docstring); NaN for an empty one."""
    cum = np.cumsum(hist, axis=-1)
    total = cum[..., -1:]
    # inverted_cdf: the first bin whose cumulative count reaches q · n (at least one value)
    need = np.maximum(np.ceil(np.asarray(QUANTILES) * total), 1)  # [..., Q]
    j = (cum[..., None, :] < need[..., :, None]).sum(axis=-1)  # [..., Q] bins before it
    value = np.where(j == 0, 0.0, (j - 0.5) / SHARE_BINS)
    return np.where(total > 0, value, np.nan)
