"""Batch-level foreground-foreground imbalance (survey §4.4.3, Fig. 6): class shares of training mini-batches.

A sampler turns the images of a file into an epoch's order; the order is cut into batches of
``batch_size`` images. Only *full* batches are measured: PyTorch's ``DataLoader(drop_last=False)``
also yields the last, smaller batch of an epoch (and ``aspect-group`` one per group), but its
statistics are those of a different batch size, so it is counted (``incomplete_batches``) and left out.

Samplers (each epoch is drawn afresh from one ``numpy.random.Generator`` seeded with ``seed``):

- ``random``: a uniform permutation of the images (``DataLoader(shuffle=True)``).
- ``aspect-group``: images in two groups, landscape (``width > height``) and the others (square
  images included), as mmdetection 2.x ``CustomDataset.flag`` and detectron2's
  ``AspectRatioGroupedDataset`` (``bucket_id = 0 if w > h else 1``) split them; each group is
  shuffled and cut into batches on its own, so a batch never mixes the groups. mmdetection's
  ``GroupSampler`` pads a group's last batch with random repeats of its images and detectron2 carries
  it into the next epoch; here that remainder is an incomplete batch, left out.
- ``repeat-factor:T``: LVIS repeat-factor sampling. Image ``i`` appears ``floor(r_i)`` times, plus
  once more with probability ``r_i - floor(r_i)``, drawn afresh each epoch (detectron2
  ``RepeatFactorTrainingSampler._get_epoch_indices``), then the epoch is shuffled.

``absent_probability`` is the probability that a class has no instance in a full batch drawn at
random from an epoch. It is exact: for ``random`` a batch is a uniform B-subset of the N images,
so it is hypergeometric, ``C(N - K, B) / C(N, B)`` with K the images containing the class; for
``aspect-group`` a batch of group g is a uniform B-subset of that group, so it is the mixture of the
groups' hypergeometrics weighted by their full batches ``floor(N_g / B)``. For ``repeat-factor``,
given one epoch's rounding the epoch is a uniform permutation of M image copies, of which m hold
the class, so it is ``C(M - m, B) / C(M, B)`` exactly, averaged over the simulated epochs
(weighted by their full batches): exact given the roundings, simulated over them.
``absent_simulated`` is the share of simulated full batches without the class: a check of the
simulation against the formula.

The per-batch shares and TV distances are summarised by histograms of ``SHARE_BINS`` equal bins on
(0, 1] plus an exact count of zeros, accumulated epoch by epoch (memory does not grow with the
epochs); a quantile is the midpoint of the bin holding numpy's ``inverted_cdf`` quantile, so it is
within ``0.5 / SHARE_BINS`` of it, and 0 exactly where that quantile is 0. Means are exact.

The simulation is over the whole file: shards' results cannot be merged (:meth:`BatchDistribution.merge`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.data import BoxFilter, Dataset
from imbstat.data.ids import id_column
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.stats.batch_sums import QUANTILES, SHARE_BINS, BatchSums, quantiles
from imbstat.stats.histogram import Histogram, plain
from imbstat.stats.protocol import count, first_part, nested
from imbstat.stats.repeat_factor import ImageClassCounts, counts_repeat_factors

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

FIGURE_BINS = 50  # bins of the TV distance histogram kept in the JSON for its figure
CHUNK_CELLS = 1 << 22  # (batch, class) cells handled at once: bounds the temporaries of one epoch
HYPERGEOMETRIC_BLOCK = 4096  # terms of the absent-probability product summed at once (memory K × block)
SAMPLER_KINDS = ("random", "aspect-group", "repeat-factor")
# The simulation's time grows with epochs × images, ~1 µs per simulated image here: 10,000 epochs of COCO
# train (118k images) is ~20 minutes; --epochs 1e8 was months.
MAX_EPOCHS = 10_000


@dataclass(frozen=True)
class Sampler:
    """How an epoch orders the images: ``random``, ``aspect-group`` or ``repeat-factor`` with its threshold."""

    kind: str
    threshold: float | None = None  # repeat-factor's T, in (0, 1]

    @classmethod
    def parse(cls, text: str) -> Sampler:
        """``random``, ``aspect-group`` or ``repeat-factor:T`` (T a number in (0, 1]); ImbstatError otherwise."""
        kind, _, value = text.partition(":")
        if kind not in SAMPLER_KINDS or (kind == "repeat-factor") != bool(value):
            raise ImbstatError(f"--sampler {text!r}: expected random, aspect-group or repeat-factor:T, e.g. "
                               "repeat-factor:0.001")  # fmt: skip
        if kind != "repeat-factor":
            return cls(kind)
        try:
            threshold = float(value)
        except ValueError:
            threshold = float("nan")
        if not 0 < threshold <= 1:  # NaN fails too
            raise ImbstatError(f"--sampler {text!r}: expected a threshold T in (0, 1], e.g. repeat-factor:0.001")
        return cls(kind, threshold)

    def __str__(self) -> str:
        return self.kind if self.threshold is None else f"{self.kind}:{self.threshold:g}"


@dataclass(frozen=True)
class BatchOptions:
    """How the batch section simulates training: the keywords of :func:`batch_distribution`, checked when built.

    Attributes:
        batch_size: training images per batch, at least 1.
        sampler: a :class:`Sampler`, or its text (``random``, ``aspect-group``, ``repeat-factor:T``), parsed
            when the options are built: ``options.sampler`` is then a Sampler.
        epochs: epochs simulated, 1 to :data:`MAX_EPOCHS`.
        seed: of the simulation, at least 0 (same seed, same numbers).

    A bad value is an ImbstatError whose ``position`` is the field's name (an audit config's key).
    """

    batch_size: int
    sampler: Sampler | str = "random"
    epochs: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.sampler, Sampler):
            try:
                object.__setattr__(self, "sampler", Sampler.parse(self.sampler))
            except ImbstatError as e:
                raise ImbstatError(e.detail, position="sampler") from None
        for name, low, high in (("batch_size", 1, None), ("epochs", 1, MAX_EPOCHS), ("seed", 0, None)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low or value > (high or value):
                bounds = f"from {low} to {high}" if high else f">= {low}"
                raise ImbstatError(f"{name} {value!r}: expected a whole number {bounds}", position=name)

    def to_dict(self) -> dict[str, Any]:
        """The report's ``options.batch`` (and batch-dist's options): the sampler as its text."""
        return {"batch_size": self.batch_size, "sampler": str(self.sampler), "epochs": self.epochs, "seed": self.seed}


@dataclass(frozen=True)
class BatchDistribution:
    """Class shares of the full batches of ``epochs`` simulated epochs (module docstring).

    Per category row k: ``dataset_share`` (instances / all instances), ``absent_probability``
    (exact; NaN when there is no full batch), ``absent_simulated``, and the per-batch share
    ``count_bk / total_b`` over the full batches with at least one instance: its mean and
    :data:`QUANTILES`. Per batch: the total variation distance ``½ Σ_k |share_bk - dataset_share_k|``
    and the class score ``2·W1`` of its rank–frequency counts over all K categories (as
    :class:`~imbstat.scores.ClassScores` scores the dataset), over the same batches;
    ``rank_inversions``: the full batches where the dataset's second most frequent class has more
    instances than the first (``inversion_rows``, category rows).
    """

    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K] str
    batch_size: int
    sampler: str
    epochs: int
    seed: int
    dataset_share: np.ndarray  # [K] float64
    absent_probability: np.ndarray  # [K] float64
    absent_simulated: np.ndarray  # [K] float64
    share_mean: np.ndarray  # [K] float64
    share_quantiles: np.ndarray  # [K, Q] float64
    tv_quantiles: np.ndarray  # [Q] float64
    tv_mean: float
    tv_histogram: Histogram  # FIGURE_BINS bins on [0, 1]
    w1_mean: float
    inversion_rows: np.ndarray  # [2] int64 category rows (most, second most frequent); [] with < 2 categories
    rank_inversions: int
    full_batches: int
    incomplete_batches: int
    batches_without_instances: int  # full batches whose images have no counted box

    @classmethod
    def empty(cls, ds: Dataset, *, batch_size: int, sampler: str = "random", epochs: int = 1,
              seed: int = 0) -> BatchDistribution:  # fmt: skip
        """The result over none of ``ds``'s images (no batch): the identity of :meth:`merge`."""
        k, q, nan = len(ds.categories), len(QUANTILES), float("nan")
        return cls(
            ds.categories.category_id, ds.categories.name, batch_size, sampler, epochs, seed,
            np.full(k, nan), np.full(k, nan), np.full(k, nan), np.full(k, nan), np.full((k, q), nan),
            np.full(q, nan), nan, Histogram.uniform(np.zeros(0), 0, 1, FIGURE_BINS), nan,
            _inversion_rows(np.zeros(k)), 0, 0, 0, 0,
        )  # fmt: skip

    @property
    def is_empty(self) -> bool:
        return self.full_batches == 0 and self.incomplete_batches == 0

    @classmethod
    def merge(cls, parts: Sequence[BatchDistribution]) -> BatchDistribution:
        """The one non-empty part; shards' batch statistics cannot be merged.

        A batch mixes images of every shard and an epoch is drawn over the whole file, so the
        result of the whole is not a function of the shards' results: more than one non-empty
        part raises ImbstatError.
        """
        first = first_part(parts, "batch distribution")
        found = [p for p in parts if not p.is_empty]
        if len(found) > 1:
            raise ImbstatError(
                "cannot merge batch distributions of shards: batches and epochs are drawn over the whole "
                "file; expected it computed on the whole file (run batch-dist or report without --shard)"
            )
        return found[0] if found else first

    @property
    def scores(self) -> dict[str, float]:
        """Per-batch means of the class score and the TV distance, and the share of rank inversions."""
        share = self.rank_inversions / self.full_batches if self.full_batches and self.inversion_rows.size else None
        return {
            "w1_score": float(self.w1_mean),
            "tv_distance": float(self.tv_mean),
            "rank_inversions": float("nan") if share is None else float(share),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per category, by dataset share descending (ties keep dataset order)."""
        frame = pd.DataFrame(
            {
                "category_id": self.category_id,
                "name": self.name,
                "dataset_share": self.dataset_share,
                "absent_probability": self.absent_probability,
                "absent_simulated": self.absent_simulated,
                "share_mean": self.share_mean,
                **{f"share_q{level:g}": self.share_quantiles[:, j] for j, level in enumerate(QUANTILES)},
            }
        )
        order = np.argsort(-np.nan_to_num(self.dataset_share, nan=0.0), kind="stable")
        return frame.iloc[order].reset_index(drop=True)

    def to_dict(self) -> dict:
        per_class = [
            {
                "category_id": plain(c),
                "name": n,
                "dataset_share": float(s),
                "absent_probability": float(a),
                "absent_simulated": float(m),
                "share_mean": float(mean),
                "share_quantiles": q.tolist(),
            }
            for c, n, s, a, m, mean, q in zip(self.category_id, self.name, self.dataset_share,
                                              self.absent_probability, self.absent_simulated, self.share_mean,
                                              self.share_quantiles, strict=True)
        ]  # fmt: skip
        return {
            "batch_size": self.batch_size,
            "sampler": self.sampler,
            "epochs": self.epochs,
            "seed": self.seed,
            "quantile_levels": list(QUANTILES),
            "batches": {
                "full": self.full_batches,
                "incomplete": self.incomplete_batches,
                "without_instances": self.batches_without_instances,
            },
            "per_class": per_class,
            "tv_distance": {
                "quantiles": self.tv_quantiles.tolist(),
                "mean": float(self.tv_mean),
                "histogram": self.tv_histogram.to_dict(),
            },
            "rank_inversions": {
                "category_ids": [plain(self.category_id[r]) for r in self.inversion_rows],
                "batches": self.rank_inversions,
            },
            "scores": self.scores,
        }

    @classmethod
    def from_dict(cls, d: dict) -> BatchDistribution:
        """The result back from its JSON fields (:meth:`to_dict`); JSON null reads as NaN."""
        rows = d["per_class"]
        ids = id_column([r["category_id"] for r in rows])
        row_of = {plain(c): i for i, c in enumerate(ids)}
        q = len(QUANTILES)

        def column(key: str) -> np.ndarray:
            return np.asarray([r[key] for r in rows], np.float64).reshape(len(rows))  # None -> NaN

        batches, tv = d["batches"], d["tv_distance"]
        return cls(
            ids, np.asarray([r["name"] for r in rows], object), d["batch_size"], d["sampler"], d["epochs"], d["seed"],
            column("dataset_share"), column("absent_probability"), column("absent_simulated"), column("share_mean"),
            np.asarray([r["share_quantiles"] for r in rows], np.float64).reshape(len(rows), q),
            np.asarray(tv["quantiles"], np.float64), _float(tv["mean"]),
            nested(d, "tv_distance", lambda t: nested(t, "histogram", Histogram.from_dict)),
            _float(d["scores"]["w1_score"]),
            np.asarray([row_of[c] for c in d["rank_inversions"]["category_ids"]], np.int64),
            count(d["rank_inversions"]["batches"], "rank_inversions.batches"),
            *(count(batches[k], f"batches.{k}") for k in ("full", "incomplete", "without_instances")),
        )  # fmt: skip


def _float(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _inversion_rows(instances: np.ndarray) -> np.ndarray:
    """[2] the category rows with the most and second most instances (ties: dataset order); [] unless two have some."""
    if np.count_nonzero(instances) < 2:
        return np.zeros(0, np.int64)
    return np.argsort(-np.asarray(instances), kind="stable")[:2].astype(np.int64)


# --- the exact absent probability -----------------------------------------------------------------------------------


def absent_probability(n: int | np.ndarray, k: np.ndarray, batch_size: int) -> np.ndarray:
    """``C(n - k, B) / C(n, B)``: no item of the ``k`` marked among ``B`` drawn without replacement from ``n``.

    ``k`` [K] int; ``n`` an int or [K] ints. Summed in log space as ``Σ_{j<B} log1p(-k / (n - j))``,
    which neither overflows nor cancels for n in the millions. 0 where ``n - k < B``; NaN where ``n < B``.
    """
    k = np.asarray(k, np.float64)
    n = np.broadcast_to(np.asarray(n, np.float64), k.shape)
    log_p = np.zeros(k.shape)
    possible = n - k >= batch_size
    kp, np_ = k[possible], n[possible]
    # B <= n wherever a term is summed: the loop runs over the data, not over a batch larger than the file
    for start in range(0, batch_size if possible.any() else 0, HYPERGEOMETRIC_BLOCK):
        j = np.arange(start, min(batch_size, start + HYPERGEOMETRIC_BLOCK), dtype=np.float64)
        log_p[possible] += np.log1p(-kp[:, None] / (np_[:, None] - j[None, :])).sum(axis=1)  # [K', block]
    found = np.where(possible, np.exp(log_p), 0.0)
    return np.where(n >= batch_size, found, np.nan)


# --- the simulation -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pairs:
    """CSR of image -> (class, instances): image ``i``'s entries are ``indptr[i]:indptr[i + 1]``."""

    indptr: np.ndarray  # [N + 1] int64
    category: np.ndarray  # [P] int64
    count: np.ndarray  # [P] int64

    @classmethod
    def of(cls, counts: ImageClassCounts) -> _Pairs:
        """The image × class matrix of class-dist's remedies, as CSR."""
        indptr = np.zeros(counts.num_images + 1, np.int64)
        np.cumsum(np.bincount(counts.image, minlength=counts.num_images), out=indptr[1:])
        return cls(indptr, counts.category, counts.count)

    def images_with(self, k: int, weights: np.ndarray | None = None) -> np.ndarray:
        """[K] images containing each class (each image weighted by ``weights`` [N], e.g. its copies)."""
        image = np.repeat(np.arange(self.indptr.size - 1), np.diff(self.indptr))
        w = None if weights is None else weights[image]
        return np.bincount(self.category, weights=w, minlength=k)

    def gather(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position, class, count) of every entry of ``images`` [M] (positions index ``images``)."""
        starts, degree = self.indptr[images], np.diff(self.indptr)[images]
        position = np.repeat(np.arange(images.size), degree)
        offset = np.arange(position.size) - np.repeat(np.cumsum(degree) - degree, degree)
        entry = starts[position] + offset
        return position, self.category[entry], self.count[entry]


def _epochs(n: int, sampler: Sampler, ds: Dataset, batch_size: int, epochs: int, rng: np.random.Generator,
            factors: np.ndarray | None) -> Iterator[tuple[np.ndarray, int, np.ndarray | None]]:  # fmt: skip
    """Per epoch: (the images of its full batches in batch order [F·B], incomplete batches, copies [N] or None)."""
    landscape = ds.images.width > ds.images.height if sampler.kind == "aspect-group" else None
    for _ in range(epochs):
        if landscape is not None:
            groups = [np.flatnonzero(landscape), np.flatnonzero(~landscape)]
            kept = [rng.permutation(g)[: g.size // batch_size * batch_size] for g in groups]
            yield np.concatenate(kept), sum(g.size % batch_size > 0 for g in groups), None
            continue
        copies = None
        if factors is not None:  # detectron2's stochastic rounding, then a shuffle of the copies
            whole = np.floor(factors)
            copies = (whole + (rng.random(n) < factors - whole)).astype(np.int64)
            order = rng.permutation(np.repeat(np.arange(n), copies))
        else:
            order = rng.permutation(n)
        full = order.size // batch_size * batch_size
        yield order[:full], int(order.size > full), copies


def batch_distribution(
    ds: Dataset,
    *,
    batch_size: int,
    sampler: str | Sampler = "random",
    epochs: int = 10,
    seed: int = 0,
    box_filter: BoxFilter = BoxFilter(),
) -> BatchDistribution:
    """Simulate ``epochs`` epochs of ``sampler`` over ``ds`` in batches of ``batch_size`` images (module docstring)."""
    options = BatchOptions(batch_size, sampler, epochs, seed)  # checked where it is built
    chosen = options.sampler
    assert isinstance(chosen, Sampler)
    if ds.shard:
        raise ImbstatError("batch statistics draw epochs over the whole file; expected it without --shard", ds.path)
    if chosen.kind == "aspect-group":
        ds.require_sizes("--sampler aspect-group")
    k, n = len(ds.categories), ds.num_images
    counts = ImageClassCounts.of(ds, box_filter)
    pairs = _Pairs.of(counts)
    instances = np.bincount(pairs.category, weights=pairs.count, minlength=k)
    share = instances / instances.sum() if instances.sum() else np.full(k, np.nan)
    factors = None
    if chosen.kind == "repeat-factor":  # the same factors as class-dist --repeat-factor
        factors = counts_repeat_factors(counts, k, chosen.threshold)[1]
    acc = BatchSums(k, np.nan_to_num(share), _inversion_rows(instances))
    absent_sum, absent_weight = np.zeros(k), 0
    incomplete, rng = 0, np.random.default_rng(seed)
    for images, partial, copies in _epochs(n, chosen, ds, batch_size, epochs, rng, factors):
        incomplete += partial
        full = images.size // batch_size
        if copies is not None and full:  # exact given this epoch's rounding, weighted by its batches
            absent_sum += full * absent_probability(int(copies.sum()), pairs.images_with(k, copies), batch_size)
            absent_weight += full
        step = batch_size * max(1, CHUNK_CELLS // max(k, 1))  # whole batches, at most ~CHUNK_CELLS cells
        for start in range(0, images.size, step):
            part = images[start : start + step]
            position, category, count = pairs.gather(part)
            acc.add(position // batch_size, category, count, part.size // batch_size)
    absent_simulated = 1 - acc.present / acc.full if acc.full else np.full(k, np.nan)
    if chosen.kind == "random":
        absent = absent_probability(n, pairs.images_with(k), batch_size)
    elif chosen.kind == "aspect-group":
        absent = _grouped_absent(ds, pairs, k, batch_size)
    else:
        absent = absent_sum / absent_weight if absent_weight else np.full(k, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_mean = acc.share_sum / acc.with_instances
        tv_hist = acc.tv_hist
        coarse = np.add.reduceat(tv_hist[1:], np.arange(0, SHARE_BINS, SHARE_BINS // FIGURE_BINS))
        coarse[0] += tv_hist[0]
        return BatchDistribution(
            ds.categories.category_id, ds.categories.name, batch_size, str(chosen), epochs, seed, share,
            absent, absent_simulated, share_mean, quantiles(acc.share_histograms()), quantiles(acc.tv_hist),
            _mean(acc.tv_sum, acc.with_instances), Histogram(np.linspace(0, 1, FIGURE_BINS + 1), coarse),
            _mean(acc.w1_sum, acc.with_instances), acc.inversion, acc.inversions, acc.full, incomplete,
            acc.full - acc.with_instances,
        )  # fmt: skip


def _mean(total: float, count: int) -> float:
    return total / count if count else float("nan")


def _grouped_absent(ds: Dataset, pairs: _Pairs, k: int, batch_size: int) -> np.ndarray:
    """Σ_g w_g · C(N_g − K_g, B) / C(N_g, B), with w_g the group's share of the full batches."""
    landscape = (ds.images.width > ds.images.height).astype(np.float64)
    found, weight = np.zeros(k), 0
    for member in (landscape, 1 - landscape):
        full = int(member.sum()) // batch_size
        if full:
            found += full * absent_probability(int(member.sum()), pairs.images_with(k, member), batch_size)
            weight += full
    return found / weight if weight else np.full(k, np.nan)
