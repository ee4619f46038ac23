"""Imbalance joined to accuracy: COCO bbox AP of a detector's results, per class and per frequency group.

The numbers are pycocotools' ``COCOeval`` (iouType ``bbox``, ``maxDets = [1, 10, max_dets]``), computed by
faster-coco-eval's C++ port of it (equal to pycocotools' to 1e-15; the tests use pycocotools as the oracle), on
the ground truth as imbstat reads it (docs/eval.md):

- images and categories are those of the :class:`~imbstat.data.Dataset`; a detection names them by the ids
  imbstat gives them (``image_id``, ``category_id``);
- every box of the dataset is a GT; crowd (COCO ``iscrowd``) and difficult (VOC) boxes are COCOeval's
  ignored (crowd) GTs: a detection on one is neither a true nor a false positive;
- a GT's area, which sorts it into small / medium / large, is the COCO file's ``area`` field (the segmentation's
  area), as COCOeval reads ``gt['area']``; where the source gives none (other formats, or an annotation without a
  usable one: counted at load as ``invalid_area``), its box's ``w * h`` as imbstat holds it (clipped to its image).
  A detection's area is its ``w * h``, as loadRes sets it.

Per class, AP is the mean of ``precision[:, :, k, 0, -1]`` over its entries > -1 (area all, the last maxDets),
as detectron2's ``COCOEvaluator._derive_coco_results`` computes it; a class without a GT has no AP (null),
never 0, and is left out of every mean. Groups follow LVIS (lvis-api's APr / APc / APf): rare ≤ 10
training images, common 11–100, frequent > 100 (a class absent from training is rare).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import json
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.data import BoxFilter, Dataset, load
from imbstat.data.ids import id_column, names_identify
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.stats.classes import COMMON_MAX_IMAGES, RARE_MAX_IMAGES, class_distribution
from imbstat.stats.histogram import Histogram, plain
from imbstat.stats.protocol import first_part

if TYPE_CHECKING:
    import pandas as pd

    from imbstat.stats.anchors import AnchorStats
else:
    pd = LazyModule("pandas")  # imported where a table or an id lookup is built

GROUPS = ("rare", "common", "frequent")
SIZES = ("small", "medium", "large")
SIZE_RANGES = {"small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2), "large": (96.0**2, 1e5**2)}  # COCOeval's
SUMMARY_KEYS = ("ap", "ap50", "ap75", "ap_small", "ap_medium", "ap_large", "ar1", "ar10", "ar100")
IOU_EDGES = np.round(np.linspace(0.5, 1.0, 11), 12)  # TP IoU histogram: bins of 0.05 on [0.5, 1.0]
MIN_MAX_DETS = 10  # maxDets is [1, 10, max_dets]: COCOeval sorts it, so max_dets below 10 would not be the last
MAX_MAX_DETS = 100_000
# Why a detection was left out, in the order they are checked: a detection gets the first that applies.
SKIP_REASONS = (
    "not_an_object",
    "missing_field",
    "bad_bbox",  # not a list of 4 numbers
    "non_finite_bbox",
    "negative_size",
    "bad_score",  # not a number, or NaN
    "unknown_image",
    "unknown_category",
)
FIELDS = ("image_id", "category_id", "bbox", "score")


@dataclass(frozen=True)
class Detections:
    """Usable detections as columns (rows into the GT's images and categories) and the count of the rest."""

    image: np.ndarray  # [D] int64 image row of the GT dataset
    category: np.ndarray  # [D] int64 category row
    xywh: np.ndarray  # [D, 4] float64
    score: np.ndarray  # [D] float64
    read: int  # detections in the source
    skipped: dict[str, int]  # reason -> count (only reasons that occurred)
    first_skipped: tuple[int, str] | None  # (position, reason) of the first skipped one


@dataclass(frozen=True)
class EvalOptions:
    """The eval section's options (``Run.evaluation``): the detections (a COCO results file or list), the
    training set whose class frequencies group the classes (a Dataset or a path :func:`imbstat.load` reads;
    None: the GT's own) and COCOeval's last maxDets; checked when built."""

    detections: str | Path | Sequence[Any]
    train: Dataset | str | Path | None = None
    max_dets: int = 100

    def __post_init__(self) -> None:
        check_max_dets(self.max_dets)

    def report_options(self) -> dict[str, Any]:
        """The ``options`` block's entry of a report computed with these options."""
        detections = str(self.detections) if isinstance(self.detections, str | Path) else "a list in Python"
        train = self.train.path if isinstance(self.train, Dataset) else self.train
        return {"detections": detections, "train": None if train is None else str(train), "max_dets": self.max_dets}


def check_max_dets(max_dets: int) -> int:
    """``max_dets`` if it is an integer in [10, 100000]; ImbstatError naming ``--max-dets`` otherwise."""
    if isinstance(max_dets, bool) or not isinstance(max_dets, int | np.integer):
        raise ImbstatError(f"--max-dets {max_dets!r}: expected an integer from {MIN_MAX_DETS} to {MAX_MAX_DETS}")
    if not MIN_MAX_DETS <= max_dets <= MAX_MAX_DETS:
        raise ImbstatError(f"--max-dets {max_dets}: expected an integer from {MIN_MAX_DETS} to {MAX_MAX_DETS} "
                           "(COCOeval's maxDets are 1, 10 and this)")  # fmt: skip
    return int(max_dets)


@functools.cache
def _results_type() -> Any:
    """``list[_Detection]``: one well-formed result, as msgspec decodes a whole file of them at once (unknown keys
    skipped); built at the first read, so that ``import imbstat`` does not load msgspec."""
    import msgspec

    class _Detection(msgspec.Struct, gc=False):  # no cycles: not tracked by the collector
        image_id: int | str
        category_id: int | str
        bbox: tuple[float, float, float, float]
        score: float

    return list[_Detection]


@dataclass(frozen=True)
class _Columns:
    """The fields of every detection of a source, before the checks that need the GT (rows of -1 reason: fine)."""

    image_id: list[Any]
    category_id: list[Any]
    xywh: np.ndarray  # [N, 4] float64, NaN where unusable
    score: np.ndarray  # [N] float64, NaN where unusable
    reason: np.ndarray  # [N] int8 index into SKIP_REASONS, -1: none yet


def _read_file(path: Path) -> _Columns | Any:
    """The columns of a well-formed results file (msgspec, typed: the fast path), else its JSON value for
    :func:`_columns_of` to check item by item; NaN and Infinity read as Python's json reads them."""
    try:
        text = path.read_bytes()
    except OSError as e:
        raise ImbstatError(f"cannot read the detections file ({e.strerror or e}); expected a readable JSON file",
                           path) from None  # fmt: skip
    import msgspec

    try:
        items = msgspec.json.decode(text, type=_results_type())
    except (msgspec.ValidationError, msgspec.DecodeError):
        pass  # not all well-formed, NaN / Infinity, or not JSON: read generically below
    else:
        n = len(items)
        xywh = np.asarray([d.bbox for d in items], np.float64).reshape(n, 4)
        score = np.fromiter((d.score for d in items), np.float64, n)
        return _Columns([d.image_id for d in items], [d.category_id for d in items], xywh, score,
                        np.full(n, -1, np.int8))  # fmt: skip
    try:
        return msgspec.json.decode(text)
    except msgspec.DecodeError:
        pass  # NaN / Infinity (Python's json.dump writes them) or a syntax error: json.loads says which, where
    try:
        return json.loads(text.decode("utf-8", "surrogateescape"))
    except json.JSONDecodeError as e:
        raise ImbstatError(f"{e.msg}; expected a COCO results JSON list", path,
                           f"line {e.lineno} column {e.colno}") from None  # fmt: skip
    except RecursionError:
        raise ImbstatError("JSON nested too deeply; expected a COCO results JSON list", path) from None


def _flag(reason: np.ndarray, bad: np.ndarray, name: str) -> None:
    """Give the rows of ``bad`` without a reason yet the reason ``name``."""
    reason[bad & (reason < 0)] = SKIP_REASONS.index(name)


def _columns_of(items: list[Any] | tuple[Any, ...]) -> _Columns:
    """The columns of a results list of any content, each malformed item given its reason."""
    n = len(items)
    reason = np.full(n, -1, np.int8)
    is_object = np.fromiter((type(d) is dict for d in items), bool, n)
    _flag(reason, ~is_object, "not_an_object")
    columns = {key: [d.get(key) if type(d) is dict else None for d in items] for key in FIELDS}
    for key in FIELDS:
        _flag(reason, np.fromiter((v is None for v in columns[key]), bool, n), "missing_field")
    boxes = columns["bbox"]
    shaped = np.fromiter((isinstance(b, list | tuple | np.ndarray) and len(b) == 4 for b in boxes), bool, n)
    flat, numeric = _numbers([v for b, good in zip(boxes, shaped, strict=True) if good for v in b])
    xywh = np.full((n, 4), np.nan)
    xywh[shaped] = flat.reshape(-1, 4)
    box_ok = shaped.copy()
    box_ok[shaped] = numeric.reshape(-1, 4).all(axis=1)
    _flag(reason, ~box_ok, "bad_bbox")
    score, score_ok = _numbers(columns["score"])
    _flag(reason, ~score_ok, "bad_score")
    return _Columns(columns["image_id"], columns["category_id"], xywh, score, reason)


def _numbers(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """([N] float64, [N] bool ok): each value as a float where it is a number (a JSON number, or a numpy
    scalar in a list given in Python), not a bool."""
    ok = np.fromiter((type(v) in (int, float) or _is_number(v) for v in values), bool, len(values))
    out = np.full(len(values), np.nan)
    if ok.any():
        try:
            out[ok] = np.asarray([v for v, good in zip(values, ok, strict=True) if good], np.float64)
        except OverflowError:  # an integer beyond float64: treated as not a number
            for i in np.flatnonzero(ok):
                try:
                    out[i] = float(values[i])
                except OverflowError:
                    ok[i] = False
    return out, ok


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)


def read_detections(source: str | Path | Sequence[Any], gt: Dataset) -> Detections:
    """The usable detections of a COCO results list (a path or the list) against ``gt``'s images and categories.

    A detection left out is counted by the reason of :data:`SKIP_REASONS`; a source that is not a list,
    or one where no detection is usable while there are some, is an ImbstatError naming the file and position.
    """
    where = str(source) if isinstance(source, str | Path) else "detections"
    found = _read_file(Path(source)) if isinstance(source, str | Path) else source
    if not isinstance(found, _Columns | list | tuple):
        raise ImbstatError(f"the top level is {type(found).__name__}; expected a COCO results list "
                           '[{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...]', where)  # fmt: skip
    columns = found if isinstance(found, _Columns) else _columns_of(found)
    reason, xywh, score, n = columns.reason, columns.xywh, columns.score, len(columns.reason)
    _flag(reason, ~np.isfinite(xywh).all(axis=1), "non_finite_bbox")
    with np.errstate(invalid="ignore"):
        _flag(reason, (xywh[:, 2] < 0) | (xywh[:, 3] < 0), "negative_size")
    _flag(reason, np.isnan(score), "bad_score")
    image = _rows(gt.images.image_id, columns.image_id)
    _flag(reason, image < 0, "unknown_image")
    category = _rows(gt.categories.category_id, columns.category_id)
    _flag(reason, category < 0, "unknown_category")

    bad = np.flatnonzero(reason >= 0)
    skipped = {SKIP_REASONS[r]: int(c) for r, c in enumerate(np.bincount(reason[bad], minlength=len(SKIP_REASONS)))
               if c}  # fmt: skip
    first = (int(bad[0]), SKIP_REASONS[reason[bad[0]]]) if bad.size else None
    if n and bad.size == n:
        position, why = first  # type: ignore[misc]
        raise ImbstatError(f"no usable detection: all {n:,} were left out ({_counts(skipped)}), the first for "
                           f"{why.replace('_', ' ')}; expected COCO results with the GT's image and category ids",
                           where, f"detection {position}")  # fmt: skip
    keep = reason < 0
    return Detections(image[keep], category[keep], xywh[keep], score[keep], n, skipped, first)


def _counts(skipped: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in skipped.items())


def _rows(ids: np.ndarray, values: list[Any]) -> np.ndarray:
    """[N] int64 row of each value in ``ids`` (compared by value and type as :func:`id_column` keeps them), -1
    where it is none of them (or not an int or a string)."""
    if ids.dtype == np.int64 and all(type(v) is int for v in values):  # the common case, without pandas' objects
        try:
            found = np.asarray(values, np.int64)
        except OverflowError:  # an id beyond int64 is none of them: the general path below says so
            pass
        else:
            if not len(ids):
                return np.full(len(found), -1, np.int64)
            order = np.argsort(ids, kind="stable")
            row = order[np.minimum(np.searchsorted(ids, found, sorter=order), len(ids) - 1)]
            return np.where(ids[row] == found, row, -1).astype(np.int64)
    usable = np.empty(len(values), object)  # object, so that neither 7 next to "a" nor 2**63 changes type
    # bools out (pandas matches True to 1); numpy integers of a list given in Python as ints
    usable[:] = [v if type(v) in (int, str) else int(v) if isinstance(v, np.integer) else None for v in values]
    return np.asarray(pd.Index(ids).get_indexer(usable), np.int64)


def skipped_line(where: str, result: Detections | Evaluation) -> str | None:
    """The one stderr line about left-out detections, or None when there were none."""
    if not result.skipped or result.first_skipped is None:
        return None
    left = sum(result.skipped.values())
    position, why = result.first_skipped
    return (f"imbstat: warning: {where}: left out {left:,} of {result.read:,} detections "
            f"({_counts(result.skipped)}); the first, detection {position}: {why.replace('_', ' ')}")  # fmt: skip


# --- the engine: faster-coco-eval's COCOeval on in-memory COCO objects ------------------------------------------
# faster-coco-eval (C++) is pycocotools' COCOeval made fast, precision and recall equal to pycocotools' to 1e-15
# (tests/test_eval.py checks them against pycocotools); pycocotools itself takes minutes on COCO val-sized results.

AREA_ALL = (0.0, 1e5**2)  # COCOeval's "all" area range: a GT outside it is ignored there too


def _coco(images: int, categories: int, annotations: list[dict[str, Any]]) -> Any:
    """A COCO object over images ``0..images-1`` and categories ``0..categories-1`` (ids are rows)."""
    from faster_coco_eval import COCO

    coco = COCO()
    coco.dataset = {
        "images": [{"id": i} for i in range(images)],
        "categories": [{"id": k} for k in range(categories)],
        "annotations": annotations,
    }
    coco.createIndex()
    return coco


def _annotations(image: np.ndarray, category: np.ndarray, xywh: np.ndarray, area: np.ndarray | None = None,
                 **extra: np.ndarray) -> list[dict]:  # fmt: skip
    """COCO annotation dicts with ids 1..N (0 is COCOeval's 'unmatched'); ``area`` w*h (as loadRes sets it) unless
    given."""
    area = (xywh[:, 2] * xywh[:, 3] if area is None else area).tolist()
    keys = ["id", "image_id", "category_id", "bbox", "area", *extra]
    columns = [range(1, len(image) + 1), image.tolist(), category.tolist(), xywh.tolist(), area,
               *(v.tolist() for v in extra.values())]  # fmt: skip
    return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]


@dataclass(frozen=True)
class _Engine:
    precision: np.ndarray  # [T, R, K, A, M]
    recall: np.ndarray  # [T, K, A, M]
    tp_dt: np.ndarray  # [P] detection rows of the true positives at IoU 0.5 (area all, last maxDets)
    tp_gt: np.ndarray  # [P] their GT rows


def _run_cocoeval(gt_xywh: np.ndarray, gt_area: np.ndarray, gt_image: np.ndarray, gt_category: np.ndarray,
                  gt_crowd: np.ndarray, dets: Detections, images: int, categories: int,
                  max_dets: int) -> _Engine:  # fmt: skip
    from faster_coco_eval import COCOeval_faster

    coco_gt = _coco(images, categories, _annotations(gt_image, gt_category, gt_xywh, gt_area,
                                                     iscrowd=gt_crowd.astype(int)))  # fmt: skip
    # The results as loadRes builds them (id, area w*h, iscrowd 0), built here since loadRes copies them again
    coco_dt = _coco(images, categories, _annotations(dets.image, dets.category, dets.xywh, score=dets.score,
                                                     iscrowd=np.zeros(len(dets.image), int)))  # fmt: skip
    ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=_silent)
    ev.params.maxDets = [1, 10, max_dets]
    ev.evaluate()
    ev.accumulate()
    gt_key = gt_image * categories + gt_category
    tp_dt, tp_gt = _true_positives(gt_xywh, gt_area, gt_key, gt_crowd, dets, categories, max_dets)
    return _Engine(np.asarray(ev.eval["precision"]), np.asarray(ev.eval["recall"]), tp_dt, tp_gt)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cyclic garbage collector off for the block (the dicts built there hold no cycles), as it was after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _silent(*args: Any, **kwargs: Any) -> None:
    """faster-coco-eval's progress lines: not printed (stdout may be the JSON document)."""


def _true_positives(gt_xywh: np.ndarray, gt_area: np.ndarray, gt_key: np.ndarray, gt_crowd: np.ndarray,
                    dets: Detections, categories: int, max_dets: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(detection rows, GT rows) of the true positives at IoU 0.5, area all, the first ``max_dets`` per image and
    class: COCOeval's matching (:mod:`imbstat.stats.eval_kernel`), one (image, class) group at a time."""
    from imbstat.stats.eval_kernel import match_groups  # numba: compiled (or read from its cache) when first used

    dt_key = dets.image * categories + dets.category
    dt_order = np.lexsort((-dets.score, dt_key))  # score descending, ties in input order (stable), per group
    gt_ignore = gt_crowd | (gt_area < AREA_ALL[0]) | (gt_area > AREA_ALL[1])
    gt_order = np.lexsort((gt_ignore, gt_key))  # ignored last, per group
    dt_sorted, gt_sorted = dt_key[dt_order], gt_key[gt_order]
    groups = np.intersect1d(dt_sorted, gt_sorted)  # (image, class) pairs with both
    matched = match_groups(
        np.searchsorted(dt_sorted, groups, "left"), np.searchsorted(dt_sorted, groups, "right"),
        np.ascontiguousarray(dets.xywh[dt_order]),
        np.searchsorted(gt_sorted, groups, "left"), np.searchsorted(gt_sorted, groups, "right"),
        np.ascontiguousarray(gt_xywh[gt_order]), gt_crowd[gt_order], gt_ignore[gt_order], 0.5, max_dets,
    )  # fmt: skip
    found = np.flatnonzero(matched >= 0)
    gt_rows = gt_order[matched[found]]
    tp = ~gt_ignore[gt_rows]  # a match with an ignored GT is neither a TP nor an FP
    return dt_order[found[tp]], gt_rows[tp]


def _iou_xywh(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N] IoU of the rows of ``a`` and ``b`` ([N, 4] x, y, w, h), as COCO's maskUtils.iou for non-crowd boxes."""
    w = np.clip(np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def _mean_valid(values: np.ndarray) -> float:
    """The mean of the entries > -1 (COCOeval's convention for 'no GT'), NaN when there is none."""
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else math.nan


# --- the result -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """COCO bbox AP of one detections file on one GT dataset, joined to the classes' (training) frequency.

    Per category row ``k``: GT ``instances`` and ``images`` (counted boxes: crowd and difficult left out),
    ``train_instances`` / ``train_images`` (None without a training set), ``group`` (LVIS rule on
    ``basis``'s images), ``ap``, ``ap50``, ``ap75``, ``recall`` (at IoU 0.5, area all, the last maxDets;
    NaN where the class has no GT) and ``detections`` (usable detections of the class, before the maxDets cut).
    """

    category_id: np.ndarray  # [K]
    name: np.ndarray  # [K] str
    instances: np.ndarray  # [K] int64
    images: np.ndarray  # [K] int64
    train_instances: np.ndarray | None  # [K] int64
    train_images: np.ndarray | None  # [K] int64
    ap: np.ndarray  # [K] float64, NaN: no GT
    ap50: np.ndarray
    ap75: np.ndarray
    recall: np.ndarray
    detections: np.ndarray  # [K] int64
    summary: dict[str, float]  # SUMMARY_KEYS, NaN where pycocotools gives -1
    size_share: np.ndarray  # [3] share of the counted GTs in SIZES (half-open ranges)
    size_ar: np.ndarray  # [3] AR at the last maxDets per size (NaN: -1)
    tp_iou: dict[str, Histogram]  # "overall" and each of GROUPS
    max_dets: int
    read: int  # detections in the source
    skipped: dict[str, int]
    first_skipped: tuple[int, str] | None = None  # (position in the source, reason) of the first left out
    # The anchors of the GT under one preset, per class (set by :meth:`with_anchors`; None without them):
    # mean foreground anchors per labelled GT, and the share of those GTs with no foreground anchor (NaN: none)
    anchor_foreground_per_gt: np.ndarray | None = None  # [K] float64
    anchor_no_foreground: np.ndarray | None = None  # [K] float64
    anchor_preset: str | None = None

    # -- derived numbers

    @property
    def basis(self) -> str:
        """What the frequencies are counted on: the training set's boxes, or the GT's when there is none."""
        return "train" if self.train_instances is not None else "gt"

    @property
    def frequency_images(self) -> np.ndarray:
        return self.train_images if self.train_images is not None else self.images

    @property
    def frequency_instances(self) -> np.ndarray:
        return self.train_instances if self.train_instances is not None else self.instances

    @property
    def group(self) -> np.ndarray:
        """[K] LVIS group by ``basis``'s images: rare ≤ 10 (absent included), common 11–100, frequent > 100."""
        return lvis_group(self.frequency_images)

    @property
    def groups(self) -> dict[str, dict[str, Any]]:
        """Per group: its classes, those with an AP, and their mean AP (lvis-api's APr / APc / APf)."""
        group, found = self.group, {}
        for g in GROUPS:
            ap = self.ap[group == g]
            valid = ap[~np.isnan(ap)]
            found[g] = {"classes": int(ap.size), "classes_with_ap": int(valid.size),
                        "ap": float(valid.mean()) if valid.size else math.nan}  # fmt: skip
        return found

    @property
    def mean_ap(self) -> float:
        valid = self.ap[~np.isnan(self.ap)]
        return float(valid.mean()) if valid.size else math.nan

    @property
    def weighted_ap(self) -> float:
        """Per-class AP weighted by the class's GT instances."""
        valid = ~np.isnan(self.ap) & (self.instances > 0)
        weights = self.instances[valid]
        return float((self.ap[valid] * weights).sum() / weights.sum()) if weights.sum() else math.nan

    @property
    def frequency_correlation(self) -> dict[str, Any]:
        """Spearman's rho (average ranks) between AP and the class frequency, and the least-squares slope of
        AP on log10 of it (AP per decade of instances), over the classes with an AP and a frequency > 0."""
        x = self.frequency_instances.astype(np.float64)
        use = ~np.isnan(self.ap) & (x > 0)
        x, y = x[use], self.ap[use]
        rho, slope = _spearman(x, y), math.nan
        if use.sum() >= 2:
            lx = np.log10(x)
            if lx.std() > 0:
                slope = float(np.polyfit(lx, y, 1)[0])
        return {"x": f"{'train_' if self.basis == 'train' else ''}instances", "classes": int(use.sum()),
                "spearman": rho, "slope_per_decade": slope}  # fmt: skip

    def with_anchors(self, anchors: AnchorStats) -> Evaluation:
        """This evaluation with the anchor statistics of the same GT per class (``anchors`` of the same
        dataset, whose category rows are this one's): foreground anchors per GT and the share of GTs with none."""
        if not np.array_equal(anchors.category_id, self.category_id):
            raise ImbstatError("the anchor statistics are of other categories; expected those of the GT evaluated")
        gts = anchors.gt_count.sum(axis=1).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):  # a class without a labelled GT: NaN
            per_gt = np.where(gts > 0, anchors.gt_foreground.sum(axis=1) / gts, math.nan)
            none = np.where(gts > 0, anchors.gt_unmatched.sum(axis=1) / gts, math.nan)
        return dataclasses.replace(self, anchor_foreground_per_gt=per_gt, anchor_no_foreground=none,
                                   anchor_preset=anchors.preset.name)  # fmt: skip

    @property
    def anchor_correlation(self) -> dict[str, Any] | None:
        """Spearman's rho (average ranks) between per-class AP and each anchor statistic of :meth:`with_anchors`,
        over the classes with an AP and a labelled GT; None without them."""
        if self.anchor_foreground_per_gt is None or self.anchor_no_foreground is None:
            return None
        use = ~np.isnan(self.ap) & ~np.isnan(self.anchor_foreground_per_gt)
        return {"preset": self.anchor_preset, "classes": int(use.sum()),
                "foreground_per_gt": _spearman(self.anchor_foreground_per_gt[use], self.ap[use]),
                "no_foreground_share": _spearman(self.anchor_no_foreground[use], self.ap[use])}  # fmt: skip

    @property
    def scores(self) -> dict[str, float]:
        """COCO AP, AP50, AP75, the instance-weighted mean of per-class AP, each group's AP and the correlation."""
        groups, corr = self.groups, self.frequency_correlation
        return {
            "ap": self.summary["ap"],
            "ap50": self.summary["ap50"],
            "ap75": self.summary["ap75"],
            "weighted_ap": self.weighted_ap,
            **{f"ap_{g}": groups[g]["ap"] for g in GROUPS},
            "spearman": corr["spearman"],
        }

    # -- the protocol

    @classmethod
    def empty(cls, ds: Dataset, *, max_dets: int = 100) -> Evaluation:
        """The evaluation of no detection over none of ``ds``'s images (every AP null): the identity of
        :meth:`merge`."""
        k, nan = len(ds.categories), np.full(len(ds.categories), math.nan)
        zeros = np.zeros(k, np.int64)
        hist = {g: Histogram.of(np.zeros(0), IOU_EDGES) for g in ("overall", *GROUPS)}
        return cls(ds.categories.category_id, ds.categories.name, zeros, zeros, None, None, nan, nan.copy(),
                   nan.copy(), nan.copy(), zeros, dict.fromkeys(SUMMARY_KEYS, math.nan), np.full(3, math.nan),
                   np.full(3, math.nan), hist, check_max_dets(max_dets), 0, {})  # fmt: skip

    @property
    def is_empty(self) -> bool:
        """No GT box counted and no detection read."""
        return self.read == 0 and not self.instances.any()

    @classmethod
    def merge(cls, parts: Sequence[Evaluation]) -> Evaluation:
        """The one non-empty part; AP is not a sum over images, so evaluations of shards cannot be merged."""
        first = first_part(parts, "evaluation")
        found = [p for p in parts if not p.is_empty]
        if len(found) > 1:
            raise ImbstatError(
                "cannot merge evaluations of shards: AP ranks every detection of a class over the whole "
                "dataset; expected one evaluation of the whole file (run without --shard)"
            )
        return found[0] if found else first

    def to_frame(self) -> pd.DataFrame:
        """One row per category by training frequency (instances, then images) descending; ties keep file order."""
        frame = pd.DataFrame(
            {
                "category_id": self.category_id,
                "name": self.name,
                "instances": self.instances,
                "images": self.images,
                "train_instances": self.train_instances if self.train_instances is not None else np.nan,
                "train_images": self.train_images if self.train_images is not None else np.nan,
                "group": self.group,
                "ap": self.ap,
                "ap50": self.ap50,
                "ap75": self.ap75,
                "recall": self.recall,
                "detections": self.detections,
                **self._anchor_columns(),
            }
        )
        order = np.lexsort((-self.frequency_images, -self.frequency_instances))
        return frame.iloc[order].reset_index(drop=True)

    def _anchor_columns(self) -> dict[str, np.ndarray]:
        """The per-class anchor columns of :meth:`with_anchors` by their JSON names; none without them."""
        if self.anchor_foreground_per_gt is None or self.anchor_no_foreground is None:
            return {}
        return {"foreground_per_gt": self.anchor_foreground_per_gt, "no_foreground_share": self.anchor_no_foreground}

    def to_dict(self) -> dict[str, Any]:
        train, first = self.train_instances is not None, self.first_skipped
        per_class = [
            {
                "category_id": plain(c), "name": str(n), "instances": int(i), "images": int(im),
                "train_instances": int(self.train_instances[k]) if train else None,  # type: ignore[index]
                "train_images": int(self.train_images[k]) if train else None,  # type: ignore[index]
                "group": g, "ap": _null(a), "ap50": _null(a50), "ap75": _null(a75), "recall": _null(r),
                "detections": int(d),
            }
            for k, (c, n, i, im, g, a, a50, a75, r, d) in enumerate(zip(
                self.category_id, self.name, self.instances, self.images, self.group, self.ap, self.ap50,
                self.ap75, self.recall, self.detections, strict=True))
        ]  # fmt: skip
        for key, column in self._anchor_columns().items():
            for row, value in zip(per_class, column, strict=True):
                row[key] = _null(value)
        groups = {g: {k: _null(v) for k, v in body.items()} for g, body in self.groups.items()}
        corr = {k: _null(v) if isinstance(v, float) else v for k, v in self.frequency_correlation.items()}
        anchor_corr = self.anchor_correlation
        anchors = {} if anchor_corr is None else {"anchor_correlation": {k: _null(v) for k, v in anchor_corr.items()}}
        return {
            "max_dets": self.max_dets,
            "basis": self.basis,
            "detections": {
                "read": self.read,
                "used": int(self.detections.sum()),
                "skipped": dict(self.skipped),
                "first_skipped": None if first is None else {"position": first[0], "reason": first[1]},
            },
            "summary": {k: _null(v) for k, v in self.summary.items()},
            "mean_ap": _null(self.mean_ap),
            "weighted_ap": _null(self.weighted_ap),
            "per_class": per_class,
            "groups": {"basis": f"{'train_' if train else ''}images", **groups},
            "frequency_correlation": corr,
            **anchors,
            "size": {
                s: {
                    "share": _null(self.size_share[j]),
                    "ap": _null(self.summary[f"ap_{s}"]),
                    "ar": _null(self.size_ar[j]),
                }
                for j, s in enumerate(SIZES)
            },
            "tp_iou": {"edges": IOU_EDGES.tolist(), **{g: h.counts.tolist() for g, h in self.tp_iou.items()}},
            "scores": {k: _null(v) for k, v in self.scores.items()},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Evaluation:
        """The result back from its JSON fields (:meth:`to_dict`); null reads as NaN."""
        rows = d["per_class"]
        train = d["basis"] == "train"

        def column(key: str, kind: type = np.float64) -> np.ndarray:
            return np.asarray([r[key] for r in rows], kind).reshape(len(rows))  # None -> NaN

        edges = np.asarray(d["tp_iou"]["edges"], np.float64)
        summary = {k: _float(d["summary"][k]) for k in SUMMARY_KEYS}
        return cls(
            id_column([r["category_id"] for r in rows]), np.asarray([r["name"] for r in rows], object),
            column("instances", np.int64), column("images", np.int64),
            column("train_instances", np.int64) if train else None, column("train_images", np.int64) if train else None,
            column("ap"), column("ap50"), column("ap75"), column("recall"), column("detections", np.int64),
            summary, np.asarray([_float(d["size"][s]["share"]) for s in SIZES]),
            np.asarray([_float(d["size"][s]["ar"]) for s in SIZES]),
            {g: Histogram(edges, np.asarray(d["tp_iou"][g], np.int64)) for g in ("overall", *GROUPS)},
            int(d["max_dets"]), int(d["detections"]["read"]),
            {str(k): int(v) for k, v in d["detections"]["skipped"].items()},
            _first_skipped(d["detections"]["first_skipped"]),
            *((column("foreground_per_gt"), column("no_foreground_share"), str(d["anchor_correlation"]["preset"]))
              if "anchor_correlation" in d else ()),
        )  # fmt: skip


def _spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho with average ranks for ties; NaN for fewer than 2 pairs or a constant side."""
    if len(x) < 2:
        return math.nan
    rx = pd.Series(x).rank(method="average").to_numpy()
    ry = pd.Series(y).rank(method="average").to_numpy()
    return float(np.corrcoef(rx, ry)[0, 1]) if rx.std() > 0 and ry.std() > 0 else math.nan


def lvis_group(images: np.ndarray) -> np.ndarray:
    """[K] str LVIS group by images: rare ≤ 10 (0 included), common 11–100, frequent > 100."""
    n = np.asarray(images)
    return np.select([n <= RARE_MAX_IMAGES, n <= COMMON_MAX_IMAGES], ["rare", "common"], "frequent").astype(object)


def _first_skipped(d: dict[str, Any] | None) -> tuple[int, str] | None:
    return None if d is None else (int(d["position"]), str(d["reason"]))


def _null(value: Any) -> Any:
    """NaN as None (JSON null); anything else as it is, plain."""
    if isinstance(value, float | np.floating):
        return None if math.isnan(value) else float(value)
    return plain(value)


def _float(value: float | None) -> float:
    return math.nan if value is None else float(value)


# --- the function -----------------------------------------------------------------------------------------------------


def match_categories(gt: Dataset, train: Dataset) -> np.ndarray:
    """[K] the train category row of each GT category (-1: not in train): by name when both files name every
    category (non-empty, distinct names), else by id."""
    if names_identify(gt.categories.name) and names_identify(train.categories.name):
        return np.asarray(pd.Index(train.categories.name.astype(str)).get_indexer(gt.categories.name.astype(str)),
                          np.int64)  # fmt: skip
    return np.asarray(pd.Index(train.categories.category_id).get_indexer(gt.categories.category_id), np.int64)


def gt_area(gt: Dataset) -> np.ndarray:
    """[N] each box's area as COCOeval reads ``gt['area']``: the source's own (COCO ``area``), else ``w * h``."""
    b = gt.boxes
    return np.where(np.isnan(b.area), b.width * b.height, b.area)


def evaluate_with(gt: Dataset, options: EvalOptions) -> Evaluation:
    """:func:`evaluate` with the options of a report's eval section; a path of ``train`` is loaded here."""
    train = load(options.train) if isinstance(options.train, str | Path) else options.train
    return evaluate(gt, options.detections, train, max_dets=options.max_dets)


def evaluate(
    gt: Dataset,
    detections: str | Path | Sequence[Any],
    train: Dataset | None = None,
    *,
    max_dets: int = 100,
) -> Evaluation:
    """COCO bbox AP of ``detections`` (a COCO results file or list) on ``gt``, per class and per LVIS group
    of ``train``'s class frequencies (``gt``'s own without it). See the module docstring."""
    max_dets = check_max_dets(max_dets)
    with _no_gc():
        dets = read_detections(detections, gt)
    k, n_img = len(gt.categories), gt.num_images
    b = gt.boxes
    xywh = np.column_stack([b.xyxy[:, :2], b.xyxy[:, 2:] - b.xyxy[:, :2]])
    area = gt_area(gt)
    ignore = b.iscrowd | b.difficult  # COCOeval's crowd: matched last, neither TP nor FP
    with _no_gc():  # millions of small dicts: the cyclic collector would rescan them again and again
        engine = _run_cocoeval(xywh, area, b.image, b.category, ignore, dets, n_img, k, max_dets)
    p, r = engine.precision, engine.recall  # [T, R, K, A, M], [T, K, A, M]
    t50, t75 = 0, 5  # iouThrs 0.50 and 0.75 of np.linspace(0.5, 0.95, 10)

    per = np.full((4, k), math.nan)
    for c in range(k):  # K classes: detectron2's per-class averaging over the valid entries
        per[0, c] = _mean_valid(p[:, :, c, 0, -1])
        per[1, c] = _mean_valid(p[t50, :, c, 0, -1])
        per[2, c] = _mean_valid(p[t75, :, c, 0, -1])
        per[3, c] = _mean_valid(r[t50, c, 0, -1])
    summary = {
        "ap": _mean_valid(p[:, :, :, 0, -1]),
        "ap50": _mean_valid(p[t50, :, :, 0, -1]),
        "ap75": _mean_valid(p[t75, :, :, 0, -1]),
        **{f"ap_{s}": _mean_valid(p[:, :, :, a, -1]) for a, s in enumerate(SIZES, start=1)},
        **{f"ar{m}": _mean_valid(r[:, :, 0, j]) for j, m in enumerate((1, 10, 100))},
    }  # pycocotools' summarize(): stats[0..8]
    size_ar = np.asarray([_mean_valid(r[:, :, a, -1]) for a in range(1, 4)])

    counted = ~ignore
    share = np.asarray([((area[counted] >= lo) & (area[counted] < hi)).sum() for lo, hi in SIZE_RANGES.values()],
                       np.float64)  # fmt: skip
    share = share / counted.sum() if counted.any() else np.full(3, math.nan)

    gt_counts = class_distribution(gt, box_filter=BoxFilter())
    train_instances = train_images = None
    if train is not None:
        row = match_categories(gt, train)
        tc = class_distribution(train, box_filter=BoxFilter())
        train_instances = np.where(row >= 0, tc.instances[row], 0).astype(np.int64)
        train_images = np.where(row >= 0, tc.images[row], 0).astype(np.int64)

    iou = _iou_xywh(dets.xywh[engine.tp_dt], xywh[engine.tp_gt])
    group = lvis_group(train_images if train_images is not None else gt_counts.images)[dets.category[engine.tp_dt]]
    hist = {"overall": Histogram.of(iou, IOU_EDGES, clip=True)}
    hist |= {g: Histogram.of(iou[group == g], IOU_EDGES, clip=True) for g in GROUPS}
    return Evaluation(
        gt.categories.category_id, gt.categories.name, gt_counts.instances, gt_counts.images,
        train_instances, train_images, per[0], per[1], per[2], per[3],
        np.bincount(dets.category, minlength=k).astype(np.int64), summary, share, size_ar, hist,
        max_dets, dets.read, dets.skipped, dets.first_skipped,
    )  # fmt: skip
