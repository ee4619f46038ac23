"""Location imbalance: box centres over the normalised image (Fig. 13)."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.lazy import LazyModule
from imbstat.scores import check_grid, score_1d, score_2d
from imbstat.stats.histogram import plain
from imbstat.stats.protocol import check_same, consistent, first_part, nested
from imbstat.stats.protocol import counts as check_counts

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built


@dataclass(frozen=True)
class LocationDistribution:
    """G×G histograms of box centres ``(cx / W, cy / H)``, overall and per class.

    Cell ``[row, col]`` counts centres with ``row = min(floor(G·cy/H), G-1)``
    (row = y, top first) and likewise ``col`` for x; a centre on the right or
    bottom edge falls in the last cell.
    """

    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K] str
    per_class: np.ndarray  # [K, G, G] int64

    @property
    def grid(self) -> int:
        return self.per_class.shape[1]

    @property
    def counts(self) -> np.ndarray:
        """[G, G] int64 over all classes."""
        return self.per_class.sum(axis=0)

    @classmethod
    def empty(cls, ds: Dataset, *, grid: int = 32) -> LocationDistribution:
        """The result over none of ``ds``'s images: the identity of :meth:`merge`."""
        k = len(ds.categories)
        return cls(ds.categories.category_id, ds.categories.name, np.zeros((k, grid, grid), np.int64))

    @classmethod
    def merge(cls, parts: Sequence[LocationDistribution]) -> LocationDistribution:
        """Combine results over disjoint sets of images (shards) of one dataset, on the same grid."""
        first = first_part(parts, "location distribution")
        check_same(parts, "location distribution", "grid")
        check_same(parts, "location distribution", "category_id")
        # Rebuilt from JSON, a part knows only the names of the classes it has boxes of.
        name = first.name.copy()
        for p in parts[1:]:
            missing = np.asarray([n is None for n in name], bool)
            name[missing] = p.name[missing]
        return cls(first.category_id, name, sum(p.per_class for p in parts))

    @classmethod
    def from_dict(cls, d: dict) -> LocationDistribution:
        """The result back from its JSON fields (:meth:`to_dict`); without ``per_class``, one class "all".

        The scores the JSON holds are taken as they are rather than solved again (a transport
        problem per map, about 0.2 s each): they are what :meth:`to_dict` wrote from these counts.
        """
        counts = nested(d, "centers", lambda c: nested(c, "counts", lambda v: check_counts(v, "", (None, None))))
        consistent(counts.shape[0] == counts.shape[1], "centers.counts", "expected a square grid, G rows of G cells")
        if "per_class" not in d:
            found = cls(np.asarray(["all"]), np.asarray(["all"], object), counts[None])
            found.__dict__["scores"] = _json_scores(d["scores"])  # primes the cached_property
            return found
        rows = {row["category_id"]: row for row in d["per_class"]}
        ids = d["category_ids"]
        per_class = np.zeros((len(ids), *counts.shape), np.int64)
        names = np.empty(len(ids), object)
        class_scores = {}
        at = {row["category_id"]: i for i, row in enumerate(d["per_class"])}
        for k, c in enumerate(ids):
            if c in rows:
                per_class[k] = check_counts(rows[c]["counts"], f"per_class[{at[c]}].counts", counts.shape)
                names[k] = rows[c]["name"]
                class_scores[k] = _json_scores(rows[c]["scores"])
        consistent(len(rows) == len(d["per_class"]) and rows.keys() <= set(ids), "per_class",
                   "expected one map per class of category_ids, each once")  # fmt: skip
        consistent(bool(np.array_equal(per_class.sum(axis=0), counts)), "centers.counts",
                   "expected the sum of the per-class maps (per_class[].counts)")  # fmt: skip
        found = cls(id_column(ids), names, per_class)
        found.__dict__["scores"] = _json_scores(d["scores"])
        found.__dict__["present_scores"] = class_scores
        return found

    @staticmethod
    def grid_scores(counts: np.ndarray) -> dict[str, float]:
        """Marginal 1-D scores of x and y and the exact 2-D score of a G×G map."""
        return {"x": score_1d(counts.sum(axis=0)), "y": score_1d(counts.sum(axis=1)), "xy": score_2d(counts)}

    @functools.cached_property  # solves a transport problem: once per result
    def scores(self) -> dict[str, float]:
        return self.grid_scores(self.counts)

    @functools.cached_property  # a transport problem per class: once per result
    def present_scores(self) -> dict[int, dict[str, float]]:
        """:meth:`grid_scores` of each class with a box, by category row, in row order."""
        present = np.flatnonzero(self.per_class.sum(axis=(1, 2)))
        return {int(k): self.grid_scores(self.per_class[k]) for k in present}

    def to_frame(self) -> pd.DataFrame:
        """One row per non-empty cell: row, col, count."""
        counts = self.counts
        row, col = np.nonzero(counts)
        return pd.DataFrame({"row": row, "col": col, "count": counts[row, col]})

    def to_dict(self, *, per_class: bool = False) -> dict:
        """The JSON fields; with ``per_class``, each class's map too (what :meth:`from_dict` needs for classes)."""
        counts = self.counts
        out: dict = {
            "centers": {"grid": self.grid, "counts": counts.tolist()},
            "marginals": {"x": counts.sum(axis=0).tolist(), "y": counts.sum(axis=1).tolist()},
            "scores": self.scores,
        }
        if per_class:
            out["category_ids"] = [plain(c) for c in self.category_id]  # the dataset's order
            out["per_class"] = [
                {
                    "category_id": plain(self.category_id[k]),
                    "name": str(self.name[k]),
                    "counts": self.per_class[k].tolist(),
                    "scores": s,
                }
                for k, s in self.present_scores.items()
            ]
        return out


def _json_scores(scores: dict) -> dict[str, float]:
    """Scores as a report holds them (NaN written as null) back as plain floats."""
    return {k: math.nan if v is None else float(v) for k, v in scores.items()}


def location_distribution(ds: Dataset, *, box_filter: BoxFilter = BoxFilter(), grid: int = 32) -> LocationDistribution:
    """Fig. 13 of the survey for ``ds``: centre histogram on a ``grid`` × ``grid`` normalised image."""
    check_grid(grid)
    k = len(ds.categories)
    per_class = np.zeros(k * grid * grid, np.int64)
    for boxes in ds.counted_chunks(box_filter):
        cx = (boxes.xyxy[:, 0] + boxes.xyxy[:, 2]) / 2 / ds.images.width[boxes.image]
        cy = (boxes.xyxy[:, 1] + boxes.xyxy[:, 3]) / 2 / ds.images.height[boxes.image]
        col = np.minimum((cx * grid).astype(np.int64), grid - 1)
        row = np.minimum((cy * grid).astype(np.int64), grid - 1)
        per_class += np.bincount((boxes.category * grid + row) * grid + col, minlength=k * grid * grid)
    return LocationDistribution(ds.categories.category_id, ds.categories.name, per_class.reshape(k, grid, grid))
