"""How far each distribution moved between two report sections: the maths of ``imbstat compare``.

Each ``<section>_shift(a, b, skipped)`` takes the JSON sections of the two sides
and returns ``{"scores": {name: shift}, ...}``; a distribution that cannot be
scored (missing on one side, other bins) goes into ``skipped`` with the reason.
The scores are defined in ``report/compare.py``'s docstring.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.lazy import LazyModule
from imbstat.scores import shift_1d, shift_2d

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


def _names_usable(names: pd.Series) -> bool:
    return bool(names.map(lambda n: isinstance(n, str) and n != "").all()) and not names.duplicated().any()


def class_shifts(doc_a: dict[str, Any], doc_b: dict[str, Any]) -> tuple[pd.DataFrame, str]:
    """Per-class instances and shares of two reports over the union of classes, largest change first.

    Adds ``share_a``, ``share_b`` (instances over the side's total; NaN when it
    has none) and ``change`` = ``share_b - share_a`` to :func:`class_union`;
    rows are ordered by ``|change|`` descending, ties in union order.
    """
    frame, by = class_union(doc_a["classes"]["classes"], doc_b["classes"]["classes"])
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


def classes_shift(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    frame, by = class_shifts({"classes": a}, {"classes": b})
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
    _histograms(scores, a, b, ("objects_per_image", "classes_per_image"), "classes", skipped)
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


def _histogram_pair(a: Any, b: Any) -> Pair | str:
    """Counts of two ``{edges, counts}`` histograms on the same bins, or why they cannot be compared."""
    edges = [np.asarray(h["edges"], np.float64) for h in (a, b)]
    counts = [np.asarray(h["counts"], np.float64) for h in (a, b)]
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


def _named_counts_pair(a: dict, b: dict) -> Pair | str:
    """Counts of two {label: count} dicts over the same ordered labels (size buckets, FPN levels)."""
    if list(a) != list(b):
        return f"different labels: {list(a)} in A, {list(b)} in B"
    return np.asarray(list(a.values()), np.float64), np.asarray(list(b.values()), np.float64)


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


def _histograms(scores: dict, a: dict, b: dict, names: tuple[str, ...], section: str, skipped: dict) -> None:
    for name in names:
        ha, hb = a.get(name), b.get(name)
        if ha is None and hb is None:
            continue
        pair = only_in(ha) if ha is None or hb is None else _histogram_pair(ha, hb)
        _score(scores, name, pair, shift_1d, section, skipped)


def scale_shift(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    scores: dict[str, float] = {}
    names = ("relative_width", "relative_height", "relative_area", "aspect_ratio")
    _histograms(scores, a, b, names, "scale", skipped)
    for name in ("size_buckets", "fpn_levels"):
        ca, cb = a.get(name), b.get(name)
        if ca is None and cb is None:
            continue
        pair = only_in(ca) if ca is None or cb is None else _named_counts_pair(ca, cb)
        _score(scores, name, pair, shift_1d, "scale", skipped)
    return {"scores": scores}


def location_shift(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    pair = _map_pair(a["centers"]["counts"], b["centers"]["counts"])
    scores: dict[str, float] = {}
    if isinstance(pair, str):
        skipped["location.centers"] = pair
    else:
        ma, mb = pair  # [G, G], row = y
        scores = {"x": shift_1d(ma.sum(axis=0), mb.sum(axis=0)), "y": shift_1d(ma.sum(axis=1), mb.sum(axis=1))}
        scores["xy"] = shift_2d(ma, mb)
    return {"scores": scores}


def anchors_shift(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    scores: dict[str, float] = {}
    fg_bg = [np.array([s["anchors"]["foreground"], s["anchors"]["background"]], np.float64) for s in (a, b)]
    scores["foreground_background"] = shift_1d(*fg_bg)  # 2-bin: 2·|fg share A - fg share B|
    _histograms(scores, a, b, ("positive_iou",), "anchors", skipped)
    frame, _ = class_union(a["per_class"], b["per_class"], count="foreground")
    scores["foreground_classes"] = _rank_frequency_shift(
        frame["foreground_a"].to_numpy(), frame["foreground_b"].to_numpy()
    )
    for key, name in (("top_left", "relative_top_left"), ("center", "relative_center")):
        pair = _map_pair(a["relative_spatial"][key], b["relative_spatial"][key])
        _score(scores, name, pair, shift_2d, "anchors", skipped)
    for key in ("foreground", "background"):
        pair = _map_pair(a["overlap"][key], b["overlap"][key])
        _score(scores, f"overlap_{key}", pair, shift_2d, "anchors", skipped)
    _histograms(scores, a["per_gt"], b["per_gt"], ("foreground_per_gt",), "anchors", skipped)
    presets = {side: (s.get("preset") or {}).get("name") for side, s in zip(SIDES, (a, b), strict=True)}
    return {"scores": scores, "preset": presets}
