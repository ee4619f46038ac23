"""Overlap maps: how many boxes cover each cell centre of the normalised image (Fig. 15)."""

from __future__ import annotations

import numpy as np

from imbstat.anchors.generate import AnchorGrid


def _cells(lo: np.ndarray, hi: np.ndarray, size: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres ``(k + 0.5)·size/G`` in ``[lo, hi)`` along one axis: the range ``[first, last)``."""
    first = np.clip(np.ceil(lo * (grid / size) - 0.5), 0, grid).astype(np.int64)
    last = np.clip(np.ceil(hi * (grid / size) - 0.5), 0, grid).astype(np.int64)
    return first, last


def coverage_diff(xyxy: np.ndarray, new_w: np.ndarray, new_h: np.ndarray, grid: int) -> np.ndarray:
    """[G + 1, G + 1] int64 difference array of :func:`coverage`: +1/-1 at each box's cell-range corners."""
    x0, x1 = _cells(xyxy[:, 0], xyxy[:, 2], new_w, grid)
    y0, y1 = _cells(xyxy[:, 1], xyxy[:, 3], new_h, grid)
    side = grid + 1
    plus = np.bincount(np.concatenate([y0 * side + x0, y1 * side + x1]), minlength=side * side)
    minus = np.bincount(np.concatenate([y0 * side + x1, y1 * side + x0]), minlength=side * side)
    return (plus - minus).reshape(side, side)


def integrate(diff: np.ndarray) -> np.ndarray:
    """[G, G] counts from a [G + 1, G + 1] difference array."""
    return diff.cumsum(axis=0).cumsum(axis=1)[:-1, :-1]


def coverage(xyxy: np.ndarray, new_w: np.ndarray, new_h: np.ndarray, grid: int) -> np.ndarray:
    """[G, G] int64: for each cell of the normalised image, how many boxes cover its centre.

    A box covers cell (r, c) when ``x1 <= (c + 0.5)·W/G < x2`` and likewise
    in y, with W, H the box's resized image size; summed with a 2-D
    difference array, no loop per box (a box covering no centre adds +1 and
    -1 to the same entry).
    """
    return integrate(coverage_diff(xyxy, new_w, new_h, grid))


def grid_coverage(grid: AnchorGrid, new_w: float, new_h: float, cells: int) -> np.ndarray:
    """:func:`coverage` of every anchor of ``grid``, by separation.

    Within one level and shape, anchor (r, c) spans the x-interval of column c
    and the y-interval of row r, so the count at a cell is
    ``#columns covering its x · #rows covering its y``: an outer product per
    shape instead of a difference array over all anchors.
    """
    total = np.zeros((cells, cells), np.int64)
    per_cell = grid.preset.anchors_per_cell
    slots = np.arange(per_cell)[:, None]  # [S, 1]: one row of counts per shape, via offset bins
    for level, (rows, cols) in enumerate(grid.cells):
        base = grid.level_offsets[level]
        along_x = grid.corners(base + slots + per_cell * np.arange(cols))  # [S, cols, 4]: row 0, every column
        along_y = grid.corners(base + slots + per_cell * cols * np.arange(rows))  # [S, rows, 4]: column 0, every row
        counts = []
        for spans, size, lo, hi in ((along_x, new_w, 0, 2), (along_y, new_h, 1, 3)):
            first, last = _cells(spans[..., lo], spans[..., hi], np.float64(size), cells)  # [S, n] each
            edges = slots * (cells + 1)
            diff = np.bincount((first + edges).ravel(), minlength=per_cell * (cells + 1)) - np.bincount(
                (last + edges).ravel(), minlength=per_cell * (cells + 1)
            )
            counts.append(np.cumsum(diff.reshape(per_cell, cells + 1), axis=1)[:, :cells])  # [S, G]
        total += np.einsum("si,sj->ij", counts[1], counts[0])  # per shape: rows covering y × columns covering x
    return total
