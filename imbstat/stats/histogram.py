"""A 1-D histogram with fixed edges that merges by adding counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from imbstat.errors import ImbstatError
from imbstat.stats.protocol import FieldError, consistent, counts, first_part, numbers


@dataclass(frozen=True)
class Histogram:
    """Counts over ordered bins.

    Bin ``i`` is ``[edges[i], edges[i + 1])``; the last bin is closed on the
    right too (numpy's convention), so a relative width of exactly 1.0 is
    counted in it.
    """

    edges: np.ndarray  # [B + 1] float64, increasing
    counts: np.ndarray  # [B] int64

    @classmethod
    def of(cls, values: np.ndarray, edges: np.ndarray, clip: bool = False) -> Histogram:
        """Histogram of ``values`` on ``edges``.

        With ``clip``, values beyond the end edges fall into the end bins
        (open-ended end bins, e.g. aspect ratios beyond 16:1); without, they
        must already lie within the edges (asserted: a bug otherwise).
        """
        edges = np.asarray(edges, np.float64)
        values = np.asarray(values, np.float64)
        if clip:
            values = np.clip(values, edges[0], edges[-1])
        counts, _ = np.histogram(values, bins=edges)
        assert counts.sum() == values.size, "values outside the histogram's edges"
        return cls(edges, counts.astype(np.int64))

    @classmethod
    def uniform(cls, values: np.ndarray, low: float, high: float, bins: int, clip: bool = False) -> Histogram:
        return cls.of(values, np.linspace(low, high, bins + 1), clip=clip)

    @classmethod
    def of_integers(cls, values: np.ndarray) -> Histogram:
        """Counts of each non-negative integer 0..max: bin ``i`` holds value ``i``."""
        counts = np.bincount(np.asarray(values, np.int64), minlength=1)
        return cls(np.arange(counts.size + 1, dtype=np.float64), counts.astype(np.int64))

    @classmethod
    def merge(cls, parts: Sequence[Histogram]) -> Histogram:
        """Sum of histograms with the same edges; integer histograms are padded to the longest."""
        first_part(parts, "histogram")
        longest = max(parts, key=lambda h: h.counts.size)
        counts = np.zeros(longest.counts.size, np.int64)
        for h in parts:
            if not np.array_equal(h.edges, longest.edges[: h.edges.size]) or (
                h.edges.size != longest.edges.size and not _is_integer(h)
            ):
                raise ImbstatError(
                    f"cannot merge histogram results with different edges: {h.edges.size - 1} bins on "
                    f"[{h.edges[0]}, {h.edges[-1]}] and {longest.edges.size - 1} on [{longest.edges[0]}, "
                    f"{longest.edges[-1]}]; expected the same bins"
                )
            counts[: h.counts.size] += h.counts
        return cls(longest.edges, counts)

    @classmethod
    def from_dict(cls, d: dict) -> Histogram:
        """Inverse of :meth:`to_dict` (float edges were rounded to 12 decimals there); FieldError unless the
        edges increase and there is one non-negative integer count per bin between them."""
        if not isinstance(d, dict):
            raise FieldError("", "expected a histogram: an object with edges and counts")
        edges = numbers(d["edges"], "edges", (None,))
        increasing = edges.size >= 2 and bool(np.all(np.diff(edges) > 0))
        consistent(increasing, "edges", "expected at least 2 increasing edges")
        return cls(edges, counts(d["counts"], "counts", (edges.size - 1,)))

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def to_dict(self) -> dict[str, list]:
        # linspace edges such as 0.15000000000000002 read better rounded; counts are what matter.
        edges = self.edges.astype(np.int64) if _is_integer(self) else np.round(self.edges, 12)
        return {"edges": edges.tolist(), "counts": self.counts.tolist()}


def _is_integer(h: Histogram) -> bool:
    return bool(np.array_equal(h.edges, np.arange(h.edges.size)))


def plain(value: object) -> object:
    """A numpy scalar as the Python value JSON expects; anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value
