"""Class-balanced loss weights (Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of Samples").

``w_c ∝ (1 − β) / (1 − β^{n_c})``, one over the effective number of the ``n_c`` instances
of class ``c``, normalised so that the weights of the classes with instances sum to their
number (the number of classes when every class has one, as in the paper). A class without
instances gets weight 0: it is never a target, and one over its effective number (0) is infinite.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.scores import ClassScores, class_change
from imbstat.stats.histogram import plain
from imbstat.stats.protocol import check_same, count, first_part

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built


def check_beta(beta: float) -> float:
    """``beta`` as a float; ImbstatError unless 0 <= beta < 1."""
    value = float(beta)
    if not 0 <= value < 1:  # NaN fails too
        raise ImbstatError(f"class-balanced beta {beta!r} is not allowed; expected 0 <= beta < 1 (e.g. 0.999)")
    return value


def class_balanced_weights(instances: np.ndarray, beta: float) -> np.ndarray:
    """[K] Cui et al.'s weights (1 − β) / (1 − β^{n_c}), 0 where n_c = 0, scaled to sum to the classes present."""
    n = np.asarray(instances, np.float64)
    present = n > 0
    if beta == 0:
        inverse_effective = present.astype(np.float64)  # E_n = 1 for every n >= 1
    else:
        log_beta = math.log(beta)
        # 1 − β^n as −expm1(n ln β): exact for β near 1, where 1 − β^n loses every digit
        with np.errstate(divide="ignore"):
            inverse_effective = np.where(present, math.expm1(log_beta) / np.expm1(n * log_beta), 0.0)
    total = inverse_effective.sum()
    return inverse_effective * (present.sum() / total) if total > 0 else inverse_effective


@dataclass(frozen=True)
class ClassBalancedLoss:
    """Class-balanced loss weights (effective number of samples) of a dataset's classes, and their effect.

    ``weight[k]`` of category row ``k``; ``scores`` are the class scores of the loss mass
    per class, ``weight · instances`` (balanced when β → 1, the dataset's own when β = 0).
    """

    beta: float
    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K] str
    instances: np.ndarray  # [K] int64

    @classmethod
    def empty(cls, ds: Dataset, *, beta: float) -> ClassBalancedLoss:
        k = len(ds.categories)
        return cls(check_beta(beta), ds.categories.category_id, ds.categories.name, np.zeros(k, np.int64))

    @classmethod
    def merge(cls, parts: Sequence[ClassBalancedLoss]) -> ClassBalancedLoss:
        """Combine results over disjoint sets of images (shards): the weights again from the summed instances."""
        first = first_part(parts, "class-balanced")
        check_same(parts, "class-balanced", "beta")
        check_same(parts, "class-balanced", "category_id")
        return cls(first.beta, first.category_id, first.name, sum(p.instances for p in parts))

    @property
    def weight(self) -> np.ndarray:
        return class_balanced_weights(self.instances, self.beta)

    @property
    def loss_mass(self) -> np.ndarray:
        """[K] weight · instances: each class's share of a loss summed over one epoch's instances."""
        return self.weight * self.instances

    @property
    def change(self) -> dict[str, float]:
        """How far the loss mass per class (weight · instances) is from the instances per class."""
        return class_change(self.instances, self.loss_mass)

    @property
    def scores(self) -> dict[str, float]:
        return ClassScores.of(self.loss_mass).to_dict()

    def to_frame(self) -> pd.DataFrame:
        """One row per category, by instances descending."""
        frame = pd.DataFrame(
            {"category_id": self.category_id, "name": self.name, "instances": self.instances, "weight": self.weight}
        )
        return frame.iloc[np.argsort(-self.instances, kind="stable")].reset_index(drop=True)

    def to_dict(self) -> dict:
        rows = [
            {"category_id": plain(c), "name": plain(n), "instances": int(i), "weight": float(w)}
            for c, n, i, w in zip(self.category_id, self.name, self.instances, self.weight, strict=True)
        ]
        return {"beta": self.beta, "per_class": rows, "scores": self.scores, "change": self.change}

    @classmethod
    def from_dict(cls, d: dict) -> ClassBalancedLoss:
        rows = d["per_class"]
        return cls(
            float(d["beta"]),
            id_column([r["category_id"] for r in rows]),
            np.asarray([r["name"] for r in rows], object),
            np.asarray([count(r["instances"], f"per_class[{i}].instances") for i, r in enumerate(rows)], np.int64),
        )


def class_balanced_loss(ds: Dataset, *, beta: float, box_filter: BoxFilter = BoxFilter()) -> ClassBalancedLoss:
    """Cui et al.'s class-balanced weights of ``ds``'s counted instances per class."""
    beta = check_beta(beta)
    k = len(ds.categories)
    instances = sum(np.bincount(b.category, minlength=k) for b in ds.counted_chunks(box_filter))
    return ClassBalancedLoss(beta, ds.categories.category_id, ds.categories.name, np.asarray(instances, np.int64))
