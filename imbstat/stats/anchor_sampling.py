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
from imbstat.data import Dataset
from imbstat.data.ids import id_column
from imbstat.scores import ClassScores, score_1d
from imbstat.stats.histogram import plain
from imbstat.stats.protocol import count


@dataclass(frozen=True)
class SampledAnchors:
    """Anchors drawn by a ``RandomSampler(num, pos_fraction)`` over a dataset, per image summed.

    ``positives`` and ``negatives`` are exact totals (how many a sampler draws is fixed by the
    labels); ``per_class`` holds each class's expected positives, Σ_i fg_ic · positives_i / fg_i.
    ``images_short`` counts the images whose foreground anchors do not fill the positive quota
    ``int(num · pos_fraction)`` (images without a foreground anchor included); their negatives fill the rest.
    Only the images the framework trains on are sampled (:func:`trained_images`, the preset's
    ``train_images``); ``images_left_out`` counts the others, and the means and shares are per image sampled.
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
    train_images: str = "all"  # the rule of the images sampled (Preset.train_images)
    images_left_out: int = 0  # images that rule leaves out of training: not sampled

    @classmethod
    def of(
        cls,
        sampler: RandomSampler,
        per_image: np.ndarray,
        category_id: np.ndarray,
        name: np.ndarray,
        class_positives: np.ndarray,
        trained: np.ndarray | None = None,
        train_images: str = "all",
    ) -> SampledAnchors:
        """From the [I, 3] (foreground, background, ignored) anchors per image, the per-class expectation and
        the [I] images trained on (None: all)."""
        left_out = 0 if trained is None else int((~trained).sum())
        per_image = per_image if trained is None else per_image[trained]
        positives, negatives = sampler.sampled(per_image[:, 0], per_image[:, 1])
        short = int((per_image[:, 0] < sampler.positive_quota).sum())
        n = max(len(per_image), 1)  # no image: means and share 0, as the anchors' per-image means
        total_pos, total_neg = int(positives.sum()), int(negatives.sum())
        return cls(sampler.num, sampler.pos_fraction, total_pos, total_neg, total_pos / n, total_neg / n, short,
                   short / n, category_id, name, np.asarray(class_positives, np.float64), train_images,
                   left_out)  # fmt: skip

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
            "images_left_out": {"images": self.images_left_out, "rule": self.train_images},
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
            num=count(d["num"], "num"),
            pos_fraction=float(d["pos_fraction"]),
            positives=count(d["positives"], "positives"),
            negatives=count(d["negatives"], "negatives"),
            positives_mean=float(d["positives_mean"]),
            negatives_mean=float(d["negatives_mean"]),
            images_short=count(d["images_short_of_positives"]["images"], "images_short_of_positives.images"),
            short_share=float(d["images_short_of_positives"]["share"]),
            category_id=id_column([r["category_id"] for r in rows]),
            name=np.array([r["name"] for r in rows], object),
            class_positives=np.array([float(r["positives"]) for r in rows], np.float64),
            # a report written before the rule: every image sampled
            train_images=str(d.get("images_left_out", {}).get("rule", "all")),
            images_left_out=count(d.get("images_left_out", {}).get("images", 0), "images_left_out.images"),
        )


# The smallest side mmdetection 2.x trains on (CocoDataset._filter_imgs(min_size=32), XMLDataset's too).
MMDET_MIN_IMAGE_SIDE = 32


def trained_images(ds: Dataset, rule: str) -> np.ndarray:
    """[I] bool: the images a framework's training reads under ``rule`` (``Preset.train_images``).

    mmdetection: an annotation of the image (crowd and difficult ones too) and both sides >= 32 px;
    torchvision: an annotation with both sides > 1 px; detectron2: an annotation that is not crowd;
    all: every image. Annotations are the boxes the load kept (those it refused are not counted).
    """
    boxes, n = ds.boxes, ds.num_images
    if rule == "all":
        return np.ones(n, bool)
    if rule == "mmdetection":
        keep = np.ones(len(boxes.image), bool)
    elif rule == "torchvision":
        keep = ((boxes.xyxy[:, 2] - boxes.xyxy[:, 0]) > 1) & ((boxes.xyxy[:, 3] - boxes.xyxy[:, 1]) > 1)
    elif rule == "detectron2":
        keep = ~boxes.iscrowd.astype(bool)
    else:
        raise AssertionError(f"unknown train_images rule {rule!r}")  # Preset validates it: unreachable
    trained = np.bincount(boxes.image[keep], minlength=n) > 0
    if rule == "mmdetection":
        trained &= np.minimum(ds.images.width, ds.images.height) >= MMDET_MIN_IMAGE_SIDE
    return trained
