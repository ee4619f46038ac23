"""How far each distribution moved between two report sections: the maths that the sections' shifts share.

Each section's ``compare`` (``<section>_shift(a, b, skipped)`` in ``imbstat/sections/<name>.py``) takes
the two sides' result objects of that section (as :meth:`imbstat.sections.spec.Section.read` reads them from a
report, or computed now) and returns the JSON of the comparison's section,
``{"scores": {name: shift}, ...}``; a distribution that cannot be scored (missing
on one side, other bins) goes into ``skipped`` with the reason. The scores are
defined in ``report/compare.py``'s docstring.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from imbstat.data.ids import names_identify
from imbstat.lazy import LazyModule
from imbstat.scores import shift_1d
from imbstat.stats import ClassDistribution
from imbstat.stats.histogram import Histogram, plain

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
    by = "name" if all(names_identify(f["name"].tolist()) for f in frames) else "category_id"
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


def rank_frequency_shift(counts_a: np.ndarray, counts_b: np.ndarray) -> float:
    """2·W1 between two rank–frequency distributions over the same K classes (sorted descending)."""
    return shift_1d(np.sort(counts_a)[::-1], np.sort(counts_b)[::-1])


# --- distributions -------------------------------------------------------------------------------


def histogram_pair(a: Histogram | None, b: Histogram | None) -> Pair | str:
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


def map_pair(a: Any, b: Any) -> Pair | str:
    ma, mb = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if ma.shape != mb.shape:
        return f"different grids: {ma.shape[0]} in A, {mb.shape[0]} in B"
    return ma, mb


def put_score(scores: dict[str, float], name: str, pair: Pair | str, shift, section: str, skipped: dict) -> None:
    if isinstance(pair, str):
        skipped[f"{section}.{name}"] = pair
    else:
        scores[name] = shift(*pair)


# --- remedies (result objects) -------------------------------------------------------------------


def matched(ids_a: np.ndarray, names_a: np.ndarray, values_a: np.ndarray, ids_b: np.ndarray, names_b: np.ndarray,
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


# --- batch -----------------------------------------------------------------------------------------
