"""Regression-loss imbalance at initialization (survey §6.1, Fig. 11): positive anchors' box loss at zero prediction.

A positive anchor's target is its GT encoded as the preset's framework encodes it (:func:`encode`: mmdetection's
``DeltaXYWHBBoxCoder.bbox2delta``; torchvision's ``BoxCoder`` and detectron2's ``Box2BoxTransform`` are the same
with std = 1 / weight). At zero prediction the predicted deltas are 0 and the predicted box is the anchor itself,
so each loss is a function of the target alone (:func:`zero_prediction_losses`), summed over the 4 coordinates:

- ``l2``: Σ t² (mmdetection ``mse_loss``, no ½);
- ``l1``: Σ |t|;
- ``smooth_l1``: Σ ½ t² / β where |t| < β, |t| − ½ β elsewhere (β = ``preset.smooth_l1_beta``; β = 0 is L1,
  as torch's ``smooth_l1_loss``);
- ``balanced_l1``: Libra R-CNN's, α = 0.5, γ = 1.5, β = 1 (mmdetection ``balanced_l1_loss``'s defaults, the paper's);
- ``iou``: 1 − IoU(anchor, GT) (the linear form; mmdetection's ``IoULoss`` defaults to −ln IoU);
- ``giou``: 1 − GIoU(anchor, GT).

Merging shards: the sums (per IoU bin, class and size bucket) add up. The top-1 % and top-10 % shares and the Gini
need every contribution, which no sum keeps: they are read from a fixed histogram of contributions per loss
(:data:`CONTRIBUTION_EDGES`, 100 log bins a decade on [1e-6, 1e4], with each bin's count and sum). The histogram of
the union is the sum of the shards', so merged shards give the whole run's numbers exactly; the numbers
themselves treat the anchors of one bin as equal to the bin's mean, so a share is within one bin's width (2.3 %)
of its value over the exact contributions (the bin's sum is exact, only the anchors a share splits off a bin are
averaged), and the Gini misses only the inequality within bins. The per-image fields (anchor counts, the preset's
loss per image, the images trained on) are rows in image order: shards hold disjoint images, so they concatenate.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.anchors.engine import Batch, batches, cores, ground_truth, labelled, make_matcher, resolve_method
from imbstat.anchors.matches import Matches
from imbstat.anchors.options import AnchorOptions
from imbstat.anchors.presets import LOSS_FIELDS, Preset, preset_from_dict
from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.lazy import LazyModule
from imbstat.stats.anchor_sampling import trained_images
from imbstat.stats.anchor_sums import IOU_BINS
from imbstat.stats.histogram import plain
from imbstat.stats.objective_loss import objective_balance
from imbstat.stats.protocol import FieldError, check_same, consistent, counts, first_part, nested, numbers
from imbstat.stats.scale import SIZE_BUCKETS, size_bucket

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

LOSSES = ("l2", "l1", "smooth_l1", "balanced_l1", "iou", "giou")
# Libra R-CNN (Pang et al. 2019) §3.3 and mmdetection 2.28 losses/balanced_l1_loss.py defaults.
BALANCED_ALPHA, BALANCED_GAMMA, BALANCED_BETA = 0.5, 1.5, 1.0
# [0, 1e-6), 1000 log bins on [1e-6, 1e4), [1e4, inf): a contribution's bin; zero losses fall in the first.
CONTRIBUTION_EDGES = np.concatenate([[0.0], np.logspace(-6, 4, 1001), [np.inf]])
CONTRIBUTION_BINS = len(CONTRIBUTION_EDGES) - 1
TOP_SHARES = (("top1_share", 0.01), ("top10_share", 0.10))
PER_IMAGE_FIELDS = ("per_image", "per_image_loss", "trained")  # RegressionLoss's rows in image order


def encode(anchors: np.ndarray, gts: np.ndarray, preset: Preset) -> np.ndarray:
    """[F, 4] regression targets (dx, dy, dw, dh) of ``gts`` [F, 4] on ``anchors`` [F, 4] (xyxy), float64.

    mmdetection 2.x ``bbox2delta``: centres ``(x1 + x2) / 2``, widths ``x2 - x1`` (``+ 1`` under the legacy 1.x
    convention), ``((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph))``, minus means, over stds.
    """
    p, g = np.asarray(anchors, np.float64), np.asarray(gts, np.float64)
    one = 1.0 if preset.legacy else 0.0
    pw, ph = p[:, 2] - p[:, 0] + one, p[:, 3] - p[:, 1] + one
    gw, gh = g[:, 2] - g[:, 0] + one, g[:, 3] - g[:, 1] + one
    deltas = np.stack(
        [
            ((g[:, 0] + g[:, 2]) - (p[:, 0] + p[:, 2])) * 0.5 / pw,
            ((g[:, 1] + g[:, 3]) - (p[:, 1] + p[:, 3])) * 0.5 / ph,
            np.log(gw / pw),
            np.log(gh / ph),
        ],
        axis=1,
    )
    return (deltas - np.asarray(preset.coder_means)) / np.asarray(preset.coder_stds)


def _iou_giou(anchors: np.ndarray, gts: np.ndarray, legacy: bool) -> tuple[np.ndarray, np.ndarray]:
    """[F] IoU and GIoU of each anchor with its GT (the predicted box at zero prediction is the anchor)."""
    p, g = np.asarray(anchors, np.float64), np.asarray(gts, np.float64)
    one = 1.0 if legacy else 0.0
    area_p = (p[:, 2] - p[:, 0] + one) * (p[:, 3] - p[:, 1] + one)
    area_g = (g[:, 2] - g[:, 0] + one) * (g[:, 3] - g[:, 1] + one)
    lo, hi = np.maximum(p[:, :2], g[:, :2]), np.minimum(p[:, 2:], g[:, 2:])
    inter = np.prod(np.clip(hi - lo + one, 0.0, None), axis=1)
    union = area_p + area_g - inter
    enclose = np.prod(np.maximum(p[:, 2:], g[:, 2:]) - np.minimum(p[:, :2], g[:, :2]) + one, axis=1)
    iou = inter / union
    return iou, iou - (enclose - union) / enclose


def zero_prediction_losses(anchors: np.ndarray, gts: np.ndarray, preset: Preset) -> np.ndarray:
    """[len(LOSSES), F] each positive anchor's loss at zero prediction under each of :data:`LOSSES`."""
    t = np.abs(encode(anchors, gts, preset))  # |0 - target|
    beta = preset.smooth_l1_beta
    if beta > 0:
        smooth = np.where(t < beta, 0.5 * t * t / beta, t - 0.5 * beta)
    else:
        smooth = t
    a, g, bb = BALANCED_ALPHA, BALANCED_GAMMA, BALANCED_BETA
    b = math.exp(g / a) - 1
    balanced = np.where(t < bb, a / b * (b * t + 1) * np.log(b * t / bb + 1) - a * t, g * t + g / b - a * bb)
    iou, giou = _iou_giou(anchors, gts, preset.legacy)
    per_coordinate = np.stack([t * t, t, smooth, balanced]).sum(axis=2)  # [4, F]
    return np.concatenate([per_coordinate, np.stack([1 - iou, 1 - giou])])


def top_share(hist_count: np.ndarray, hist_sum: np.ndarray, fraction: float) -> float:
    """The share of the total carried by the ⌈fraction · n⌉ largest contributions, from their histogram (the
    anchors a share takes from a bin valued at the bin's mean); NaN without a contribution or a total."""
    n, total = int(hist_count.sum()), float(hist_sum.sum())
    if n == 0 or total <= 0:
        return math.nan
    k = math.ceil(fraction * n)
    count_desc, sum_desc = hist_count[::-1], hist_sum[::-1]
    before = np.concatenate([[0], np.cumsum(count_desc)[:-1]])  # anchors in larger bins
    take = np.clip(k - before, 0, count_desc)
    mean = np.divide(sum_desc, count_desc, out=np.zeros_like(sum_desc), where=count_desc > 0)
    taken = np.where(take == count_desc, sum_desc, take * mean)  # whole bins exactly
    return float(taken.sum() / total)


def histogram_gini(hist_count: np.ndarray, hist_sum: np.ndarray) -> float:
    """Gini of the contributions, each bin's anchors at the bin's mean: 2 Σ i·x_(i) / (n Σ x) − (n + 1) / n over
    the ascending order, a bin of c anchors from rank s + 1 adding mean · (c·s + c(c + 1)/2); NaN as top_share."""
    n, total = int(hist_count.sum()), float(hist_sum.sum())
    if n == 0 or total <= 0:
        return math.nan
    c = hist_count.astype(np.float64)
    start = np.concatenate([[0.0], np.cumsum(c)[:-1]])
    mean = np.divide(hist_sum, c, out=np.zeros_like(hist_sum), where=c > 0)
    ranked = (mean * (c * start + c * (c + 1) / 2)).sum()
    return float(2 * ranked / (n * total) - (n + 1) / n)


@dataclass(frozen=True)
class RegressionLoss:
    """Positive anchors' regression losses at zero prediction, summed over a dataset's images, under each loss.

    Sums are [len(LOSSES), ...]: by IoU bin of the anchor (its labelling IoU, :data:`IOU_BINS` bins on [0, 1]),
    by category row of its GT and by COCO size bucket of the GT in its original image; ``hist_*`` are the
    contribution histograms (:data:`CONTRIBUTION_EDGES`) the top shares and the Gini are read from.
    """

    preset: Preset
    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K]
    count_by_iou: np.ndarray  # [IOU_BINS] int64 positive anchors
    count_by_class: np.ndarray  # [K] int64
    count_by_size: np.ndarray  # [3] int64
    sum_by_iou: np.ndarray  # [L, IOU_BINS] float64
    sum_by_class: np.ndarray  # [L, K] float64
    sum_by_size: np.ndarray  # [L, 3] float64
    hist_count: np.ndarray  # [L, CONTRIBUTION_BINS] int64
    hist_sum: np.ndarray  # [L, CONTRIBUTION_BINS] float64
    # Per image, rows in image order (the objective's balance, imbstat/stats/objective_loss.py, needs them):
    per_image: np.ndarray  # [I, 3] int64 (foreground, background, ignored) anchors
    per_image_loss: np.ndarray  # [I] float64 the preset's loss summed over the image's positives
    trained: np.ndarray  # [I] bool the images the preset's framework trains on (trained_images)

    @classmethod
    def empty(cls, ds: Dataset, *, preset: Preset) -> RegressionLoss:
        k, n, i = len(ds.categories), len(LOSSES), ds.num_images
        return cls(
            preset, ds.categories.category_id, ds.categories.name, np.zeros(IOU_BINS, np.int64), np.zeros(k, np.int64),
            np.zeros(3, np.int64), np.zeros((n, IOU_BINS)), np.zeros((n, k)), np.zeros((n, 3)),
            np.zeros((n, CONTRIBUTION_BINS), np.int64), np.zeros((n, CONTRIBUTION_BINS)), np.zeros((i, 3), np.int64),
            np.zeros(i), trained_images(ds, preset.train_images),
        )  # fmt: skip

    @classmethod
    def merge(cls, parts: Sequence[RegressionLoss]) -> RegressionLoss:
        """Combine results over disjoint sets of images (shards): the per-image rows concatenate in the parts'
        order, every other array is a sum."""
        first = first_part(parts, "regression-loss")
        check_same(parts, "regression-loss", "preset")
        check_same(parts, "regression-loss", "category_id")
        kept = {"preset": first.preset, "category_id": first.category_id, "name": first.name}
        rows = {name: np.concatenate([getattr(p, name) for p in parts]) for name in PER_IMAGE_FIELDS}
        summed = {f.name: sum(getattr(p, f.name) for p in parts) for f in dataclasses.fields(cls)
                  if f.name not in kept and f.name not in rows}  # fmt: skip
        return cls(**kept, **summed, **rows)

    @property
    def positives(self) -> int:
        return int(self.count_by_iou.sum())

    @property
    def totals(self) -> np.ndarray:
        """[L] each loss's total over the positive anchors (from the exact histogram sums)."""
        return self.hist_sum.sum(axis=1)

    def objective(self) -> dict:
        """The classification loss at the prior against this regression loss (survey §7, :func:`objective_balance`)."""
        return objective_balance(self.preset, len(self.category_id), self.per_image, self.per_image_loss, self.trained)

    def by_loss(self) -> dict[str, dict[str, float]]:
        out = {}
        for i, loss in enumerate(LOSSES):
            row = {"total": float(self.totals[i])}
            for key, fraction in TOP_SHARES:
                row[key] = top_share(self.hist_count[i], self.hist_sum[i], fraction)
            row["gini"] = histogram_gini(self.hist_count[i], self.hist_sum[i])
            out[loss] = row
        return out

    @property
    def scores(self) -> dict[str, float]:
        """The preset's own loss: the top-10 % share and the Gini of its contributions."""
        own = self.by_loss()[self.preset.regression_loss]
        return {"regression_top10_share": own["top10_share"], "regression_gini": own["gini"]}

    def to_frame(self) -> pd.DataFrame:
        """One row per loss: total, per positive, top shares and Gini."""
        rows = [{"loss": loss, **row, "per_positive": row["total"] / self.positives if self.positives else math.nan}
                for loss, row in self.by_loss().items()]  # fmt: skip
        return pd.DataFrame(rows)

    def to_dict(self) -> dict:
        own = LOSSES.index(self.preset.regression_loss)
        total = float(self.totals[own])
        per_loss = lambda a: {loss: [float(v) for v in a[i]] for i, loss in enumerate(LOSSES)}  # noqa: E731
        nonzero = [np.flatnonzero(self.hist_count[i]) for i in range(len(LOSSES))]
        return {
            "loss": self.preset.regression_loss,
            "total": total,
            "per_positive": total / self.positives if self.positives else math.nan,
            "by_loss": self.by_loss(),
            # where the preset's loss sits: its share of the total per IoU bin, size bucket and class
            "by_iou": {
                "edges": np.linspace(0, 1, IOU_BINS + 1).tolist(),
                "positives": self.count_by_iou.tolist(),
                "loss_share": _shares(self.sum_by_iou[own]),
            },
            "by_size": {
                b: {"positives": int(n), "loss_share": v}
                for b, n, v in zip(SIZE_BUCKETS, self.count_by_size, _shares(self.sum_by_size[own]), strict=True)
            },
            "per_class": [
                {"category_id": plain(c), "name": plain(n), "positives": int(k), "loss_share": v}
                for c, n, k, v in zip(
                    self.category_id, self.name, self.count_by_class, _shares(self.sum_by_class[own]), strict=True
                )
            ],
            "coder": {name: _plain_field(getattr(self.preset, name)) for name in LOSS_FIELDS},
            "preset": self.preset.to_dict(),
            "raw": {
                "category_id": [plain(c) for c in self.category_id],
                "name": [plain(n) for n in self.name],
                "count_by_iou": self.count_by_iou.tolist(),
                "count_by_class": self.count_by_class.tolist(),
                "count_by_size": self.count_by_size.tolist(),
                "sum_by_iou": per_loss(self.sum_by_iou),
                "sum_by_class": per_loss(self.sum_by_class),
                "sum_by_size": per_loss(self.sum_by_size),
                # sparse: the bins with an anchor
                "histogram": {
                    loss: {
                        "bin": nonzero[i].tolist(),
                        "count": self.hist_count[i, nonzero[i]].tolist(),
                        "sum": [float(v) for v in self.hist_sum[i, nonzero[i]]],
                    }
                    for i, loss in enumerate(LOSSES)
                },
                "per_image": self.per_image.tolist(),
                "per_image_loss": [float(v) for v in self.per_image_loss],
                "trained": [bool(v) for v in self.trained],
            },
        }

    @classmethod
    def from_dict(cls, d: dict) -> RegressionLoss:
        preset = preset_from_dict(d["preset"])
        raw = d["raw"]
        k = len(raw["category_id"])

        def per_loss(key: str, width: int) -> np.ndarray:
            """``raw[key]``: one list of ``width`` sums per loss; errors named ``raw.key.loss[i]``."""

            def read(block: Any) -> np.ndarray:
                return np.stack([nested(block, loss, lambda v: numbers(v, "", (width,))) for loss in LOSSES])

            try:
                return nested(raw, key, read)
            except FieldError as e:
                raise e.within("raw") from None

        hist_count = np.zeros((len(LOSSES), CONTRIBUTION_BINS), np.int64)
        hist_sum = np.zeros((len(LOSSES), CONTRIBUTION_BINS))
        for i, loss in enumerate(LOSSES):
            h = raw["histogram"][loss]
            where = f"raw.histogram.{loss}"
            bins = counts(h["bin"], f"{where}.bin", (None,))
            if (bins >= CONTRIBUTION_BINS).any() or len(np.unique(bins)) != len(bins):
                raise FieldError(f"{where}.bin", f"expected distinct bins below {CONTRIBUTION_BINS}")
            hist_count[i, bins] = counts(h["count"], f"{where}.count", (len(bins),))
            hist_sum[i, bins] = numbers(h["sum"], f"{where}.sum", (len(bins),))
            consistent(bool((hist_sum[i] >= 0).all()), f"{where}.sum", "expected sums of losses, >= 0")
        per_image = counts(raw["per_image"], "raw.per_image", (None, 3))
        images = len(per_image)
        count_by_iou = counts(raw["count_by_iou"], "raw.count_by_iou", (IOU_BINS,))
        positives = int(count_by_iou.sum())
        consistent(int(per_image[:, 0].sum()) == positives, "raw.per_image",
                   f"expected foreground anchors summing to the {positives} positives of raw.count_by_iou")  # fmt: skip
        per_image_loss = numbers(raw["per_image_loss"], "raw.per_image_loss", (images,))
        consistent(bool((per_image_loss >= 0).all()), "raw.per_image_loss", "expected sums of losses, >= 0")
        trained = raw["trained"]
        flags = isinstance(trained, list) and len(trained) == images and all(isinstance(v, bool) for v in trained)
        consistent(flags, "raw.trained", f"expected a list of {images} true or false, one per image")
        return cls(
            preset,
            id_column(raw["category_id"]),
            np.asarray(raw["name"], object),
            count_by_iou,
            counts(raw["count_by_class"], "raw.count_by_class", (k,)),
            counts(raw["count_by_size"], "raw.count_by_size", (len(SIZE_BUCKETS),)),
            per_loss("sum_by_iou", IOU_BINS),
            per_loss("sum_by_class", k),
            per_loss("sum_by_size", len(SIZE_BUCKETS)),
            hist_count,
            hist_sum,
            per_image,
            per_image_loss,
            np.asarray(trained, bool),
        )


def _shares(sums: np.ndarray) -> list[float]:
    """Each part's share of the sum (NaN, JSON null, without a total)."""
    total = float(sums.sum())
    return [float(v) / total if total > 0 else math.nan for v in sums]


def _plain_field(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


class RegressionLossSums:
    """Adds one labelled batch at a time (what :class:`~imbstat.stats.anchor_sums.AnchorSums` sees)."""

    def __init__(self, ds: Dataset, preset: Preset, box: np.ndarray):
        """``box``: each GT's row in ``ds.boxes`` (``GroundTruth.box``)."""
        self.preset, self.box = preset, box
        self.category = ds.boxes.category[box].astype(np.int64)  # [T]
        corners = ds.boxes.xyxy[box]
        self.bucket = size_bucket((corners[:, 2] - corners[:, 0]) * (corners[:, 3] - corners[:, 1])).astype(np.int64)
        self.result = RegressionLoss.empty(ds, preset=preset)
        self.k = len(ds.categories)
        self.own = LOSSES.index(preset.regression_loss)

    def add(self, batch: Batch, m: Matches) -> None:
        """One labelled batch (an engine Batch and its Matches): its positives' losses and its images' counts."""
        grid, gts, gt_rows, images = batch.grid, batch.gts, batch.gt_rows, batch.images
        fg_image, fg_anchor, fg_gt, fg_iou = m.fg_image, m.fg_anchor, m.fg_gt, m.fg_iou
        b, r = len(images), self.result
        fg, ig = np.bincount(fg_image, minlength=b), np.bincount(m.ignored_image, minlength=b)
        r.per_image[images] = np.stack([fg, len(grid) - fg - ig, ig], axis=1)
        if not len(fg_anchor):
            return
        losses = zero_prediction_losses(grid.corners(fg_anchor), gts[fg_image, fg_gt], self.preset)  # [L, F]
        rows = gt_rows[fg_image, fg_gt]
        iou_bin = np.clip((np.asarray(fg_iou, np.float64) * IOU_BINS).astype(np.int64), 0, IOU_BINS - 1)
        category, bucket = self.category[rows], self.bucket[rows]
        contribution_bin = np.searchsorted(CONTRIBUTION_EDGES, losses, side="right") - 1  # [L, F]
        n = len(LOSSES)
        r.per_image_loss[images] = np.bincount(fg_image, losses[self.own], minlength=b)
        r.count_by_iou[:] += np.bincount(iou_bin, minlength=IOU_BINS)
        r.count_by_class[:] += np.bincount(category, minlength=self.k)
        r.count_by_size[:] += np.bincount(bucket, minlength=3)
        offset = np.arange(n)[:, None]
        # one bincount per grouping, every loss at once: loss i's bins shifted by i · width
        for target, group, width in ((r.sum_by_iou, iou_bin, IOU_BINS), (r.sum_by_class, category, self.k),
                                     (r.sum_by_size, bucket, 3)):  # fmt: skip
            target += np.bincount((offset * width + group).ravel(), losses.ravel(), n * width).reshape(n, width)
        flat = (offset * CONTRIBUTION_BINS + contribution_bin).ravel()
        r.hist_count[:] += np.bincount(flat, minlength=n * CONTRIBUTION_BINS).reshape(n, -1)
        r.hist_sum[:] += np.bincount(flat, losses.ravel(), n * CONTRIBUTION_BINS).reshape(n, -1)


def regression_loss(
    ds: Dataset,
    *,
    options: AnchorOptions | None = None,
    box_filter: BoxFilter = BoxFilter(),
    progress: Callable[[int], None] | None = None,
    **fields: Any,
) -> RegressionLoss:
    """Label every anchor of ``ds`` as :func:`~imbstat.stats.anchors.anchor_stats` does and sum the positive
    anchors' regression losses at zero prediction (options as there)."""
    options = dataclasses.replace(options or AnchorOptions(), **fields)
    preset = options.preset
    gt = ground_truth(ds, preset, box_filter)
    sparse = preset.assigner != "max-iou" or resolve_method(options.method, options.device) == "sparse"
    workers = (options.threads or cores()) if sparse else 1
    matcher = make_matcher(preset, options.device, options.method, options.memory_mb)
    sums = RegressionLossSums(ds, preset, gt.box)
    for batch, m in labelled(batches(gt, preset, options.batch_size), matcher, workers):
        sums.add(batch, m)
        if progress:
            progress(len(batch.images))
    return sums.result


@dataclass(frozen=True)
class LossImbalance:
    """The report's ``loss`` section (``anchor-iou --losses``): the regression part (issue 24, part 1) and the
    classification loss against it (part 2, :mod:`imbstat.stats.objective_loss`, derived from the regression's
    per-image rows)."""

    regression: RegressionLoss

    @classmethod
    def merge(cls, parts: Sequence[LossImbalance]) -> LossImbalance:
        first_part(parts, "loss")
        return cls(RegressionLoss.merge([p.regression for p in parts]))

    @property
    def scores(self) -> dict[str, float]:
        return self.regression.scores

    def to_frame(self) -> pd.DataFrame:
        return self.regression.to_frame()

    def to_dict(self) -> dict:
        return {"regression": self.regression.to_dict(), **self.regression.objective(), "scores": self.scores}

    @classmethod
    def from_dict(cls, d: dict) -> LossImbalance:
        return cls(nested(d, "regression", RegressionLoss.from_dict))


def loss_imbalance(
    ds: Dataset, *, options: AnchorOptions | None = None, box_filter: BoxFilter = BoxFilter(), **fields: Any
) -> LossImbalance:
    """The ``loss`` section of ``ds`` under the anchor options (the first preset's)."""
    return LossImbalance(regression_loss(ds, options=options, box_filter=box_filter, **fields))


__all__ = [
    "LOSSES",
    "LossImbalance",
    "RegressionLoss",
    "encode",
    "loss_imbalance",
    "regression_loss",
    "zero_prediction_losses",
]
