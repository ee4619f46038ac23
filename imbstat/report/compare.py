"""Compare two datasets: how far each distribution moved between them (DESIGN.md §4, "Compare").

Works on two report documents (``Results.document()`` or a saved ``report.json``),
so a side can be a dataset computed now or a report written earlier. Every
distribution present on both sides gets a *shift score* on the scale of its
imbalance score, so that comparing against a uniform distribution gives back the
imbalance score itself:

- ordered 1-D histograms: ``2 · W1`` between the two normalised histograms, bins
  at ``t_i = i / (K - 1)`` (:func:`imbstat.scores.shift_1d`). In [0, 2]: 0 when
  the two are the same, at most 1 when either is uniform, 2 only for point
  masses at opposite ends. Integer histograms (objects per image, ...) of
  different lengths are padded with empty bins, so K is the longer length;
- G×G maps: exact 2-D W1 over the corner-mass W1 that the imbalance score
  divides by (:func:`imbstat.scores.shift_2d`), in [0, about 1.85];
- classes: ``tv_distance`` = ``0.5 · Σ_c |p_A(c) - p_B(c)|`` over the union of
  classes (p = share of instances), in [0, 1]; ``w1_score`` = ``2 · W1`` between
  the two rank–frequency distributions over the union (the shape of the long
  tail, whichever classes hold it); ``gained`` / ``lost`` = classes with
  instances only in B / only in A.

The comparison document has the head ``imbstat_version``, ``schema_version``,
``command`` ("compare"), ``a`` and ``b`` (the two ``dataset`` blocks),
``options`` and ``skipped`` ({"section.name": why}), then the report's section
names ("classes", "scale", "location", and "anchors" when both sides have
them), each with ``scores`` {name: shift} and the two sides' own imbalance
scores ``scores_a`` and ``scores_b``; so ``metrics(doc, prefix="compare.")``
names every shift ``compare.<section>.<name>``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from imbstat.errors import ImbstatError
from imbstat.report.document import SCHEMA_VERSION
from imbstat.report.terminal import PlainTable
from imbstat.scores import shift_1d, shift_2d

COMMAND = "compare"
REPORT_COMMAND = "report"
SHIFT_ROWS = 10  # largest per-class share changes kept in the document and the table
LIST_ROWS = 20  # gained / lost classes shown in the terminal
PEEK_BYTES = 65536  # a saved report names imbstat_version in its first lines; a COCO file does not
SIDES = ("a", "b")

Pair = tuple[np.ndarray, np.ndarray]


def read_report(path: str | Path) -> dict[str, Any] | None:
    """The saved report document at ``path``, or None when ``path`` is not one (a dataset to load).

    A saved report is a ``.json`` file naming ``"imbstat_version"`` in its first
    :data:`PEEK_BYTES` bytes (where ``imbstat report`` and ``imbstat demo`` write
    it first); a COCO file has no such key, so the rest of it is never read here.
    Raises :class:`ImbstatError` for an imbstat document of another command.
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            head = f.read(PEEK_BYTES)
        if not re.search(rb'"imbstat_version"\s*:', head):
            return None
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise ImbstatError(f"cannot read: {e.strerror}", path) from None
    except ValueError as e:
        raise ImbstatError(f"not valid JSON: {e}", path) from None
    except RecursionError:
        raise ImbstatError("JSON nested too deeply; expected an imbstat report document", path) from None
    if not isinstance(doc, dict) or doc.get("command") != REPORT_COMMAND:
        command = doc.get("command") if isinstance(doc, dict) else None
        raise ImbstatError(
            f"an imbstat {command!r} document, not a report; compare takes a dataset "
            "or the report.json of 'imbstat report' or 'imbstat demo'",
            path,
        )
    return doc


def compare(doc_a: dict[str, Any], doc_b: dict[str, Any]) -> dict[str, Any]:
    """The comparison document of two report documents (layout in the module docstring).

    A distribution missing on one side, or binned differently on the two sides
    (float histograms with other edges, maps on other grids), is not scored; it
    is listed in ``skipped`` with the reason.
    """
    from imbstat import __version__

    for side, doc in zip(SIDES, (doc_a, doc_b), strict=True):
        _check_report(doc, side)
    skipped: dict[str, str] = {}
    sections = {
        "classes": _classes(doc_a["classes"], doc_b["classes"], skipped),
        "scale": _scale(doc_a["scale"], doc_b["scale"], skipped),
        "location": _location(doc_a["location"], doc_b["location"], skipped),
    }
    anchors_a, anchors_b = doc_a.get("anchors"), doc_b.get("anchors")
    if isinstance(anchors_a, dict) and isinstance(anchors_b, dict):
        sections["anchors"] = _anchors(anchors_a, anchors_b, skipped)
    elif isinstance(anchors_a, dict) or isinstance(anchors_b, dict):
        skipped["anchors"] = _only(anchors_a)
    for name, section in sections.items():
        section["scores_a"] = dict(doc_a[name].get("scores") or {})
        section["scores_b"] = dict(doc_b[name].get("scores") or {})
    return {
        "imbstat_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "command": COMMAND,
        "a": doc_a.get("dataset", {}),
        "b": doc_b.get("dataset", {}),
        "options": {"a": doc_a.get("options", {}), "b": doc_b.get("options", {})},
        "skipped": skipped,
        **sections,
    }


def _check_report(doc: Any, side: str) -> None:
    if not isinstance(doc, dict) or doc.get("command") != REPORT_COMMAND:
        raise ImbstatError(f"compare: side {side.upper()} is not a report document")
    missing = [s for s in ("classes", "scale", "location") if not isinstance(doc.get(s), dict)]
    if missing:
        raise ImbstatError(f"compare: the report of side {side.upper()} has no {', '.join(missing)} section")


def _only(value_a: Any) -> str:
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


def _classes(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
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
        pair = _only(ha) if ha is None or hb is None else _histogram_pair(ha, hb)
        _score(scores, name, pair, shift_1d, section, skipped)


def _scale(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    scores: dict[str, float] = {}
    names = ("relative_width", "relative_height", "relative_area", "aspect_ratio")
    _histograms(scores, a, b, names, "scale", skipped)
    for name in ("size_buckets", "fpn_levels"):
        ca, cb = a.get(name), b.get(name)
        if ca is None and cb is None:
            continue
        pair = _only(ca) if ca is None or cb is None else _named_counts_pair(ca, cb)
        _score(scores, name, pair, shift_1d, "scale", skipped)
    return {"scores": scores}


def _location(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
    pair = _map_pair(a["centers"]["counts"], b["centers"]["counts"])
    scores: dict[str, float] = {}
    if isinstance(pair, str):
        skipped["location.centers"] = pair
    else:
        ma, mb = pair  # [G, G], row = y
        scores = {"x": shift_1d(ma.sum(axis=0), mb.sum(axis=0)), "y": shift_1d(ma.sum(axis=1), mb.sum(axis=1))}
        scores["xy"] = shift_2d(ma, mb)
    return {"scores": scores}


def _anchors(a: dict, b: dict, skipped: dict[str, str]) -> dict[str, Any]:
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


# --- rendering -----------------------------------------------------------------------------------

SECTION_NAMES = ("classes", "scale", "location", "anchors")
COUNT_SCORES = ("gained", "lost")  # numbers of classes, not shifts


def score_frame(compared: dict[str, Any]) -> pd.DataFrame:
    """One row per shift score: section, distribution, shift, and the two sides' own imbalance scores."""
    rows = []
    for section in SECTION_NAMES:
        body = compared.get(section)
        if not isinstance(body, dict):
            continue
        for name, value in body["scores"].items():
            rows.append(
                {
                    "section": section,
                    "distribution": name,
                    "shift": _float(value),
                    "score_a": _float(body["scores_a"].get(name)),
                    "score_b": _float(body["scores_b"].get(name)),
                }
            )
    return pd.DataFrame(rows, columns=["section", "distribution", "shift", "score_a", "score_b"])


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _fmt(value: Any, spec: str = ".4g") -> str:
    return "" if value is None or not math.isfinite(float(value)) else format(float(value), spec)


def terminal_tables(compared: dict[str, Any]) -> list[Table]:
    """Rich tables: the two datasets, every shift score, classes gained and lost, the largest class shifts."""
    head = PlainTable(title="compare", title_justify="left")
    for col, justify in (("", "left"), ("A", "right"), ("B", "right")):
        head.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
    a, b = compared["a"], compared["b"]
    for key in ("path", "format", "images", "boxes", "categories"):
        head.add_row(key, *(f"{s[key]:,}" if isinstance(s.get(key), int) else str(s.get(key, "")) for s in (a, b)))

    scores = PlainTable(
        title="shift between A and B (1-D: 2·W1; 2-D: W1 / corner W1; 0 = same) and each side's imbalance score",
        title_justify="left",
    )
    for col in ("distribution", "shift", "A score", "B score"):
        scores.add_column(col, justify="left" if col == "distribution" else "right")
    frame = score_frame(compared)
    for row in frame.itertuples():
        if row.distribution in COUNT_SCORES and row.section == "classes":
            continue
        scores.add_row(f"{row.section}.{row.distribution}", _fmt(row.shift), _fmt(row.score_a), _fmt(row.score_b))
    for key, why in compared.get("skipped", {}).items():
        scores.add_row(key, f"skipped: {why}", "", "")

    classes = compared["classes"]
    changes = PlainTable(
        title=f"classes gained (only in B): {len(classes['gained'])}, lost (only in A): {len(classes['lost'])}"
        f" — matched by {classes['matched_by']}",
        title_justify="left",
    )
    for col, justify in (("change", "left"), ("class", "left"), ("instances", "right")):
        changes.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, rows in (("gained", classes["gained"]), ("lost", classes["lost"])):
        for r in rows[:LIST_ROWS]:
            changes.add_row(label, str(r["name"]), f"{r['instances']:,}")
        if len(rows) > LIST_ROWS:
            changes.add_row(label, f"… and {len(rows) - LIST_ROWS} more", "")

    shifts = PlainTable(title=f"largest class share changes (top {SHIFT_ROWS})", title_justify="left")
    for col in ("class", "A instances", "A share", "B instances", "B share", "change"):
        shifts.add_column(col, justify="left" if col == "class" else "right")
    for r in classes["shifts"]:
        shifts.add_row(
            str(r["name"]),
            f"{r['instances_a']:,}",
            _fmt(r["share_a"], ".2%"),
            f"{r['instances_b']:,}",
            _fmt(r["share_b"], ".2%"),
            _fmt(r["change"] * 100, "+.2f") + " pp",
        )
    return [head, scores] + ([changes] if changes.row_count else []) + ([shifts] if shifts.row_count else [])


def write_files(doc_a: dict[str, Any], doc_b: dict[str, Any], compared: dict[str, Any], out_dir: Path) -> list[Path]:
    """``compare_scores.csv``, ``compare_class_shifts.csv`` (every class) and the overlaid figures."""
    from imbstat.plots import plot_compare
    from imbstat.report.tables import write_frames

    frames = {"compare_scores": score_frame(compared), "compare_class_shifts": class_shifts(doc_a, doc_b)[0]}
    paths = write_frames(frames, out_dir)
    return paths + plot_compare(doc_a, doc_b, compared, out_dir)
