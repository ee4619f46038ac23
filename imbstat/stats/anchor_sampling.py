"""What the sampling stage keeps of the labelled anchors (survey §4.1.1): the anchors section's ``sampled`` block.

The counts follow :class:`imbstat.anchors.sampler.RandomSampler` image by image, from the
(foreground, background, ignored) anchors of each image; the per-class expectation is summed while
the anchors are labelled (``AnchorStats.class_sampled_positives``), as it needs each image's classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imbstat.anchors.sampler import RandomSampler
from imbstat.data.ids import id_column
from imbstat.scores import ClassScores, score_1d
from imbstat.stats.histogram import plain


@dataclass(frozen=True)
class SampledAnchors:
    """Anchors drawn by a ``RandomSampler(num, pos_fraction)`` over a dataset, per image summed.

    ``positives`` and ``negatives`` are exact totals (how many a sampler draws is fixed by the
    labels); ``per_class`` holds each class's expected positives, Σ_i fg_ic · positives_i / fg_i.
    ``images_short`` counts the images whose foreground anchors do not fill the positive quota
    ``int(num · pos_fraction)`` (images without a foreground anchor included); their negatives fill the rest.
    """

    num: int
    pos_fraction: float
    positives: int
    negatives: int
    positives_mean: float  # per image
    negatives_mean: float
    images_short: int
    short_share: float  # images_short / images
    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K]
    class_positives: np.ndarray  # [K] float64, expected

    @classmethod
    def of(
        cls,
        sampler: RandomSampler,
        per_image: np.ndarray,
        category_id: np.ndarray,
        name: np.ndarray,
        class_positives: np.ndarray,
    ) -> SampledAnchors:
        """From the [I, 3] (foreground, background, ignored) anchors per image and the per-class expectation."""
        positives, negatives = sampler.sampled(per_image[:, 0], per_image[:, 1])
        short = int((per_image[:, 0] < sampler.positive_quota).sum())
        n = max(len(per_image), 1)  # no image: means and share 0, as the anchors' per-image means
        total_pos, total_neg = int(positives.sum()), int(negatives.sum())
        return cls(sampler.num, sampler.pos_fraction, total_pos, total_neg, total_pos / n, total_neg / n, short,
                   short / n, category_id, name, np.asarray(class_positives, np.float64))  # fmt: skip

    @property
    def positive_quota(self) -> int:
        return RandomSampler(self.num, self.pos_fraction).positive_quota

    @property
    def fg_bg_ratio(self) -> float:
        """Sampled positives / negatives over the dataset; NaN without a negative."""
        return self.positives / self.negatives if self.negatives else math.nan

    @property
    def scores(self) -> dict[str, float]:
        """The anchor section's two class scores, of what is sampled: fg vs bg and positives per class."""
        return {
            "foreground_background": score_1d(np.array([self.positives, self.negatives], np.float64)),
            "foreground_classes": ClassScores.of(self.class_positives).w1_score,
        }

    def to_dict(self) -> dict:
        order = np.argsort(-self.class_positives, kind="stable")
        return {
            "num": self.num,
            "pos_fraction": self.pos_fraction,
            "positives": self.positives,
            "negatives": self.negatives,
            "positives_mean": self.positives_mean,
            "negatives_mean": self.negatives_mean,
            "fg_bg_ratio": self.fg_bg_ratio,
            "images_short_of_positives": {"images": self.images_short, "share": self.short_share},
            "per_class": [
                {
                    "category_id": plain(self.category_id[k]),
                    "name": plain(self.name[k]),
                    "positives": float(self.class_positives[k]),
                }
                for k in order
            ],
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, d: dict) -> SampledAnchors:
        """A report's ``sampled`` block, read back (:meth:`to_dict`'s inverse); KeyError if a field is missing."""
        rows = d["per_class"]
        return cls(
            num=int(d["num"]),
            pos_fraction=float(d["pos_fraction"]),
            positives=int(d["positives"]),
            negatives=int(d["negatives"]),
            positives_mean=float(d["positives_mean"]),
            negatives_mean=float(d["negatives_mean"]),
            images_short=int(d["images_short_of_positives"]["images"]),
            short_share=float(d["images_short_of_positives"]["share"]),
            category_id=id_column([r["category_id"] for r in rows]),
            name=np.array([r["name"] for r in rows], object),
            class_positives=np.array([float(r["positives"]) for r in rows], np.float64),
        )
