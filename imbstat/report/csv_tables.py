"""Writing CSV tables (``--out``): the helpers of every section's ``write_tables`` (``imbstat/sections/<name>.py``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.stats import (
    Histogram,
)

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built


def histogram_frame(h: Histogram) -> pd.DataFrame:
    return pd.DataFrame({"low": h.edges[:-1], "high": h.edges[1:], "count": h.counts})


def write_frames(frames: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Each frame as ``<name>.csv`` in ``out_dir``; the paths written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in frames.items():
            path = out_dir / f"{name}.csv"
            frame.to_csv(path, index=False)
            paths.append(path)
        return paths
    except OSError as e:
        raise ImbstatError(f"cannot write tables: {e.strerror}", out_dir) from None


def grid_frame(counts: np.ndarray) -> pd.DataFrame:
    """A map as a matrix: row i = y cell i (top first), column j = x cell j."""
    frame = pd.DataFrame(counts, columns=[f"x{j}" for j in range(counts.shape[1])])
    frame.insert(0, "y", range(counts.shape[0]))
    return frame
