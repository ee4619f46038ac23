"""How far each distribution moved between two report sections: the maths of ``imbstat compare``.

Each ``<section>_shift(a, b, skipped)`` takes the two sides' result objects of
that section (as :meth:`imbstat.report.section.Section.read` reads them from a
report, or computed now) and returns the JSON of the comparison's section,
``{"scores": {name: shift}, ...}``; a distribution that cannot be scored (missing
on one side, other bins) goes into ``skipped`` with the reason. The scores are
defined in ``report/compare.py``'s docstring.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.lazy import LazyModule
from imbstat.scores import class_change, shift_1d, shift_2d
from imbstat.stats import BatchDistribution, ClassDistribution, LocationDistribution, ScaleDistribution
from imbstat.stats.anchor_summary import AnchorSummary
from imbstat.stats.histogram import Histogram, plain
from imbstat.stats.side_by_side import keyed

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built

SHIFT_ROWS = 10  # largest per-class share changes kept in the document and the table
SIDES = ("a", "b")

Pair = tuple[np.ndarray, np.ndarray]


def only_in(value_a: Any) -> str:
    """Why a distribution present on one side only is skipped."""
    return "only in A" if value_a is not None else "only in B"


# --- classes -------------------------------------------------------------------------------------


def class_union(rows_a: list[dict], rows_b: list[dict], count: str = "instances") -> tuple[pd.DataFrame, str]:
    """Categories of both sides matched into one frame, and the key they were matched by.

    Matched by ``name`` when every category of both sides has a distinct,
    non-empty name; otherwise by ``category_id``. One row per category of either
    side (A's order, then B's new ones): ``name``, ``category_id_a``,
    ``category_id_b`` (None where absent), ``<count>_a``, ``<count>_b`` (int64, 0 where absent).
    """
    frames = [pd.DataFrame(rows, columns=["category_id", "name", count]) for rows in (rows_a, rows_b)]
    by = "name" if all(_names_usable(f["name"]) for f in frames) else "category_id"
    for f in frames:
        f["key"] = f[by].map(str)  # one type for the join: category id 7 on one side matches "7" on the other
    merged = frames[0].merge(frames[1], on="key", how="outer", suffixes=("_a", "_b"))
    union = pd.unique(pd.concat([frames[0]["key"], frames[1]["key"]]))  # A's order, then B's new keys
    merged = merged.set_index("key").loc[union].reset_index()
    out = pd.DataFrame({"name": merged["name_a"].where(merged["name_a"].notna(), merged["name_b"])})
    for side in SIDES:
        out[f"category_id_{side}"] = (
            merged[f"category_id_{side}"].astype(object).where(merged[f"category_id_{side}"].notna(), None)
        )
    for side in SIDES:
        out[f"{count}_{side}"] = merged[f"{count}_{side}"].fillna(0).to_numpy(np.int64)
    return out, by


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of a result's ``to_frame()`` as its JSON writes them (plain Python values)."""
    return [{k: plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _names_usable(names: pd.Series) -> bool:
    return bool(names.map(lambda n: isinstance(n, str) and n != "").all()) and not names.duplicated().any()


def class_shifts(a: ClassDistribution, b: ClassDistribution) -> tuple[pd.DataFrame, str]:
    """Per-class instances and shares of two class distributions over the union of classes, largest change first.

    Adds ``share_a``, ``share_b`` (instances over the side's total; NaN when it
    has none) and ``change`` = ``share_b - share_a`` to :func:`class_union`;
    rows are ordered by ``|change|`` descending, ties in union order.
    """
    frame, by = class_union(records(a.to_frame()), records(b.to_frame()))
    for side in SIDES:
        n = frame[f"instances_{side}"].to_numpy(np.float64)
        frame[f"share_{side}"] = n / n.sum() if n.sum() else np.full(n.size, math.nan)
    frame["change"] = frame["share_b"] - frame["share_a"]
    order = np.argsort(-frame["change"].abs().fillna(0).to_numpy(), kind="stable")
    return frame.iloc[order].reset_index(drop=True), by


def _rank_frequency_shift(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """2·W1 between two rank–frequency distributions over the same K classes (sorted descending)."""
    return shift_1d(np.sort(counts_a)[::-1], np.sort(counts_b)[::-1])


def _class_rows(frame: pd.DataFrame, mask: np.ndarray, side: str) -> list[dict[str, Any]]:
    rows = frame[mask].sort_values(f"instances_{side}", ascending=False, kind="stable")
    return [
        {"name": r["name"], "category_id": r[f"category_id_{side}"], "instances": int(r[f"instances_{side}"])}
        for _, r in rows.iterrows()
    ]


def classes_shift(a: ClassDistribution, b: ClassDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    frame, by = class_shifts(a, b)
    n_a, n_b = frame["instances_a"].to_numpy(), frame["instances_b"].to_numpy()
    gained, lost = (n_b > 0) & (n_a == 0), (n_a > 0) & (n_b == 0)
    if n_a.sum() and n_b.sum():
        tv = 0.5 * float(np.abs(frame["share_a"] - frame["share_b"]).sum())
    else:
        tv = math.nan
    scores: dict[str, float] = {
        "tv_distance": tv,
        "w1_score": _rank_frequency_shift(n_a, n_b),
        "gained": int(gained.sum()),
        "lost": int(lost.sum()),
    }
    for name in ("objects_per_image", "classes_per_image"):
        _score(scores, name, _histogram_pair(getattr(a, name), getattr(b, name)), shift_1d, "classes", skipped)
    top = frame.head(SHIFT_ROWS)
    top = top[top["change"].abs() > 0]
    return {
        "scores": scores,
        "matched_by": by,
        "gained": _class_rows(frame, gained, "b"),
        "lost": _class_rows(frame, lost, "a"),
        "shifts": [
            {
                "name": r["name"],
                "category_id_a": r["category_id_a"],
                "category_id_b": r["category_id_b"],
                "instances_a": int(r["instances_a"]),
                "instances_b": int(r["instances_b"]),
                "share_a": float(r["share_a"]),
                "share_b": float(r["share_b"]),
                "change": float(r["change"]),
            }
            for _, r in top.iterrows()
        ],
    }


# --- distributions -------------------------------------------------------------------------------


def _histogram_pair(a: Histogram | None, b: Histogram | None) -> Pair | str:
    """Counts of two histograms on the same bins, or why they cannot be compared (other bins, one missing)."""
    if a is None or b is None:
        return only_in(a)
    edges = [np.asarray(h.edges, np.float64) for h in (a, b)]
    counts = [np.asarray(h.counts, np.float64) for h in (a, b)]
    short, long = sorted(edges, key=len)
    if len(short) == len(long):
        if np.allclose(short, long, rtol=1e-12, atol=0.0):
            return counts[0], counts[1]
        return "different bin edges"
    integer = np.array_equal(long, np.arange(len(long)))
    if not (integer and np.array_equal(short, long[: len(short)])):
        return f"different bins: {len(edges[0]) - 1} in A, {len(edges[1]) - 1} in B"
    size = len(long) - 1  # integer histograms (bin i holds the value i): the shorter one ends with empty bins
    return tuple(np.pad(c, (0, size - c.size)) for c in counts)  # type: ignore[return-value]


def _map_pair(a: Any, b: Any) -> Pair | str:
    ma, mb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if ma.shape != mb.shape:
        return f"different grids: {ma.shape[0]} in A, {mb.shape[0]} in B"
    return ma, mb


def _score(scores: dict[str, float], name: str, pair: Pair | str, shift, section: str, skipped: dict) -> None:
    if isinstance(pair, str):
        skipped[f"{section}.{name}"] = pair
    else:
        scores[name] = shift(*pair)


def scale_shift(a: ScaleDistribution, b: ScaleDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    scores: dict[str, float] = {}
    for name in ("relative_width", "relative_height", "relative_area", "aspect_ratio"):
        ha, hb = getattr(a, name), getattr(b, name)
        if ha is not None or hb is not None:  # aspect_ratio needs pixel sizes: None on both sides is no shift
            _score(scores, name, _histogram_pair(ha, hb), shift_1d, "scale", skipped)
    for name in ("size_buckets", "fpn_levels"):  # [3] and [4] counts over fixed labels, with pixel sizes
        ca, cb = getattr(a, name), getattr(b, name)
        if ca is not None or cb is not None:
            pair = only_in(ca) if ca is None or cb is None else (ca.astype(np.float64), cb.astype(np.float64))
            _score(scores, name, pair, shift_1d, "scale", skipped)
    return {"scores": scores}


def location_shift(a: LocationDistribution, b: LocationDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    pair = _map_pair(a.counts, b.counts)
    scores: dict[str, float] = {}
    if isinstance(pair, str):
        skipped["location.centers"] = pair
    else:
        ma, mb = pair  # [G, G], row = y
        scores = {"x": shift_1d(ma.sum(axis=0), mb.sum(axis=0)), "y": shift_1d(ma.sum(axis=1), mb.sum(axis=1))}
        scores["xy"] = shift_2d(ma, mb)
    return {"scores": scores}


def anchors_shift(a: AnchorSummary, b: AnchorSummary, skipped: dict[str, str]) -> dict[str, Any]:
    """The first presets' shift (whatever their names, as for one preset); with several presets on either
    side (``more_presets``), also ``presets``: {key: shift of that preset} for every key on both sides, in A's
    order, with the two sides' scores; a key on one side only goes into ``skipped`` as ``anchors.presets.<key>``."""
    found = _preset_shift(a, b, skipped, "anchors")
    if not (a.more_presets or b.more_presets):
        return found
    sides = dict(keyed(a)), dict(keyed(b))
    by_preset = {}
    for key in [*sides[0], *(k for k in sides[1] if k not in sides[0])]:
        pa, pb = sides[0].get(key), sides[1].get(key)
        if pa is None or pb is None:
            skipped[f"anchors.presets.{key}"] = only_in(pa)
        else:
            shifted = _preset_shift(pa, pb, skipped, f"anchors.presets.{key}")
            by_preset[key] = shifted | {"scores_a": dict(pa.scores), "scores_b": dict(pb.scores)}
    return found | {"presets": by_preset}


def _preset_shift(a: AnchorSummary, b: AnchorSummary, skipped: dict[str, str], section: str) -> dict[str, Any]:
    scores: dict[str, float] = {}
    fg_bg = [np.array([s.totals["foreground"], s.totals["background"]], np.float64) for s in (a, b)]
    scores["foreground_background"] = shift_1d(*fg_bg)  # 2-bin: 2·|fg share A - fg share B|
    _score(scores, "positive_iou", _histogram_pair(a.positive_iou, b.positive_iou), shift_1d, section, skipped)
    frame, _ = class_union(records(a.to_frame()), records(b.to_frame()), count="foreground")
    scores["foreground_classes"] = _rank_frequency_shift(
        frame["foreground_a"].to_numpy(), frame["foreground_b"].to_numpy()
    )
    for name in ("relative_top_left", "relative_center", "overlap_foreground", "overlap_background"):
        _score(scores, name, _map_pair(getattr(a, name), getattr(b, name)), shift_2d, section, skipped)
    pair = _histogram_pair(a.foreground_per_gt, b.foreground_per_gt)
    _score(scores, "foreground_per_gt", pair, shift_1d, section, skipped)
    if a.sampled and b.sampled:  # the sampling stage: what the classifier trains on
        pos_neg = [np.array([s.positives, s.negatives], np.float64) for s in (a.sampled, b.sampled)]
        scores["sampled.foreground_background"] = shift_1d(*pos_neg)
        per_class = _matched(
            *(getattr(s.sampled, f) for s in (a, b) for f in ("category_id", "name", "class_positives"))
        )
        scores["sampled.foreground_classes"] = _rank_frequency_shift(*per_class)
    elif a.sampled or b.sampled:
        skipped[f"{section}.sampled"] = f"only {'A' if a.sampled else 'B'} has a sampling stage (--sampler)"
    return {"scores": scores, "preset": {side: s.preset.name for side, s in zip(SIDES, (a, b), strict=True)}}


# --- remedies (result objects) -------------------------------------------------------------------


def _matched(ids_a: np.ndarray, names_a: np.ndarray, values_a: np.ndarray, ids_b: np.ndarray, names_b: np.ndarray,
             values_b: np.ndarray) -> Pair:  # fmt: skip
    """Per-class float values of two sides over the union of classes, matched as :func:`class_union` matches."""

    def rows(ids: np.ndarray, names: np.ndarray) -> list[dict]:  # the count column carries row + 1 (0: absent)
        pairs = enumerate(zip(ids, names, strict=True))
        return [{"category_id": c, "name": n, "instances": i + 1} for i, (c, n) in pairs]

    frame, _ = class_union(rows(ids_a, names_a), rows(ids_b, names_b))
    pair = []
    for side, values in zip(SIDES, (values_a, values_b), strict=True):
        row = frame[f"instances_{side}"].to_numpy(np.int64)
        pair.append(np.where(row > 0, np.asarray(values, np.float64)[row - 1], 0.0))
    return pair[0], pair[1]


def _padded_shift(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`shift_1d` of two integer-bin histograms of different lengths, padded with empty bins."""
    size = max(a.size, b.size)
    return shift_1d(np.pad(a, (0, size - a.size)), np.pad(b, (0, size - b.size)))


def repeat_factor_shift(a: Any, b: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """How far one resampled epoch of A is from one of B (each with its own threshold)."""
    values = _matched(a.category_id, a.name, a.expected_instances, b.category_id, b.name, b.expected_instances)
    scores = class_change(*values)
    for name in ("objects_per_image", "classes_per_image"):
        scores[name] = _padded_shift(getattr(a, name), getattr(b, name))
    sides = zip(SIDES, (a, b), strict=True)
    changes = {f"change_{side}": r.change for side, r in sides}
    return {"scores": scores, "threshold_a": a.threshold, "threshold_b": b.threshold, **changes}


def class_balanced_shift(a: Any, b: Any, skipped: dict[str, str]) -> dict[str, Any]:
    """How far the loss mass per class (weight · instances) of A is from B's."""
    values = _matched(a.category_id, a.name, a.loss_mass, b.category_id, b.name, b.loss_mass)
    changes = {f"change_{side}": r.change for side, r in zip(SIDES, (a, b), strict=True)}
    return {"scores": class_change(*values), "beta_a": a.beta, "beta_b": b.beta, **changes}


# --- batch -----------------------------------------------------------------------------------------


def batch_shift(a: BatchDistribution, b: BatchDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    """``tv_distance``: 2·W1 between the two sides' per-batch TV distance histograms (same bins on [0, 1]);
    ``w1_score`` and ``rank_inversions``: the change B − A of the per-batch mean class score and inversion share."""
    scores: dict[str, float] = {}
    _score(scores, "tv_distance", _histogram_pair(a.tv_histogram, b.tv_histogram), shift_1d, "batch", skipped)
    for name in ("w1_score", "rank_inversions"):
        scores[name] = b.scores[name] - a.scores[name]
    options = {key: {"a": getattr(a, key), "b": getattr(b, key)} for key in ("batch_size", "sampler", "epochs")}
    return {"scores": scores, "options": options}
