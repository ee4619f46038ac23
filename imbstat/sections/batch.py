"""The batch section: class imbalance within the training batches that a sampler draws.

Its entry in the registry (:data:`SECTION <imbstat.sections>`) and every renderer of it: the compare
shift, CSV tables, figures, terminal and HTML tables. Renderers import rich, the report's helpers and
matplotlib inside their bodies: :func:`imbstat.compute` imports this module and loads none of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbstat.data import Dataset
from imbstat.scores import shift_1d
from imbstat.sections.shifts import histogram_pair, put_score
from imbstat.sections.spec import Metric, Run, Section
from imbstat.stats import BatchDistribution, batch_distribution
from imbstat.stats.batch_sums import QUANTILES

if TYPE_CHECKING:
    from rich.table import Table


# --- compare: shift scores --------------------------------------------------------------------------------------------


def batch_shift(a: BatchDistribution, b: BatchDistribution, skipped: dict[str, str]) -> dict[str, Any]:
    """``tv_distance``: 2·W1 between the two sides' per-batch TV distance histograms (same bins on [0, 1]);
    ``w1_score`` and ``rank_inversions``: the change B − A of the per-batch mean class score and inversion share."""
    scores: dict[str, float] = {}
    put_score(scores, "tv_distance", histogram_pair(a.tv_histogram, b.tv_histogram), shift_1d, "batch", skipped)
    for name in ("w1_score", "rank_inversions"):
        scores[name] = b.scores[name] - a.scores[name]
    options = {key: {"a": getattr(a, key), "b": getattr(b, key)} for key in ("batch_size", "sampler", "epochs")}
    return {"scores": scores, "options": options}


# --- CSV tables -------------------------------------------------------------------------------------------------------


def write_tables(result: BatchDistribution, out_dir: Path) -> list[Path]:
    """``batch_classes.csv`` (one row per class, by dataset share) and ``batch_tv_distance.csv`` (its figure's bins)."""
    from imbstat.report.csv_tables import histogram_frame, write_frames

    return write_frames(
        {"batch_classes": result.to_frame(), "batch_tv_distance": histogram_frame(result.tv_histogram)}, out_dir
    )


# --- terminal tables --------------------------------------------------------------------------------------------------


def batch_tables(result: BatchDistribution) -> list[Table]:
    """The classes by dataset share (head) with their batch statistics, then the per-batch numbers."""
    from imbstat.report.terminal import HEAD_ROWS, PlainTable, fmt_number

    frame = result.to_frame()
    title = f"batches of {result.batch_size} images, {result.sampler}, {result.epochs} epochs: classes by share (head)"
    table = PlainTable(title=title, title_justify="left")
    median, high = f"share_q{0.5:g}", f"share_q{0.95:g}"
    for col in ("category_id", "name", "dataset share", "P(absent)", "share mean", "median", "95 %"):
        table.add_column(col, justify="left" if col in ("category_id", "name") else "right")
    for _, row in frame.head(HEAD_ROWS).iterrows():
        table.add_row(str(row.category_id), str(row["name"]), *(fmt_number(row[c]) for c in
                      ("dataset_share", "absent_probability", "share_mean", median, high)))  # fmt: skip
    numbers = PlainTable(title="per full batch", title_justify="left")
    numbers.add_column("measure")
    numbers.add_column("value", justify="right")
    numbers.add_row("full batches", f"{result.full_batches:,}")
    numbers.add_row("incomplete batches (left out)", f"{result.incomplete_batches:,}")
    numbers.add_row("full batches without instances", f"{result.batches_without_instances:,}")
    for level, value in zip(QUANTILES, result.tv_quantiles, strict=True):
        numbers.add_row(f"TV distance, quantile {level:g}", fmt_number(value))
    for name, value in result.scores.items():
        numbers.add_row(name, fmt_number(value))
    if result.inversion_rows.size:
        first, second = (str(result.name[r]) for r in result.inversion_rows)
        numbers.add_row(f"batches with more {second} than {first}", f"{result.rank_inversions:,}")
    return [table, numbers]


# --- HTML tables ------------------------------------------------------------------------------------------------------


def batch_html(result: BatchDistribution, scores: str) -> str:
    """The batch section's tables from its result (``BatchDistribution.from_dict`` of a report's JSON)."""
    from imbstat.report.html_parts import HEAD_CLASSES, e, fixed, table

    frame = result.to_frame().head(HEAD_CLASSES)
    median = f"share_q{0.5:g}"
    class_rows = [
        [r["name"], fixed(r.dataset_share), fixed(r.absent_probability), fixed(r.share_mean), fixed(r[median])]
        for _, r in frame.iterrows()
    ]
    numbers = [
        ["full batches", f"{result.full_batches:,}"],
        ["incomplete (left out)", f"{result.incomplete_batches:,}"],
        ["full, no instances", f"{result.batches_without_instances:,}"],
        *([f"TV distance q{level:g}", fixed(v)] for level, v in zip(QUANTILES, result.tv_quantiles, strict=True)),
        ["rank inversions (top two classes)", f"{result.rank_inversions:,}"],
    ]
    head = (f"<p>Batches of {e(result.batch_size)} images, sampler {e(result.sampler)}, {e(result.epochs)} epochs, "
            f"seed {e(result.seed)}; full batches only.</p>")  # fmt: skip
    tables = [
        scores,
        table(["measure", "value"], numbers, "compact", num=(1,), title="Per full batch"),
        table(["class", "dataset share", "P(absent)", "share mean", "share median"], class_rows, "compact",
              num=(1, 2, 3, 4), title=f"Classes by dataset share (head, {len(class_rows)})"),
    ]  # fmt: skip
    return head + '<div class="tables">' + "".join(tables) + "</div>"


def write_figures(result: BatchDistribution, out_dir: Path) -> list[Path]:
    from imbstat.plots import plot_batch  # matplotlib: loaded only when figures are written

    return plot_batch(result, out_dir)


# --- the section ------------------------------------------------------------------------------------------------------


BATCH_NEEDED = "run with --batch-size B, the training batch"


def _batch(ds: Dataset, run: Run) -> BatchDistribution:
    b = run.batch
    assert b is not None, "the batch section is computed only when asked for"
    return batch_distribution(ds, batch_size=b.batch_size, sampler=b.sampler, epochs=b.epochs, seed=b.seed,
                              box_filter=run.box_filter)  # fmt: skip


BATCH = Section(
    name="batch",
    title="Batch-level class imbalance (foreground-foreground)",
    result_type=BatchDistribution,
    command="batch-dist",
    compute=_batch,
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    write_figures=write_figures,
    figures=(
        ("batch_absent.png", "Fig. 6: probability that a class is absent from a full batch, against its share."),
        ("batch_tv_distance.png", "Total variation distance between each batch's class shares and the dataset's."),
    ),
    terminal=batch_tables,
    compare=batch_shift,
    html=batch_html,
    metrics=(
        Metric("w1_score", "instances per class of a batch, rank–frequency (mean over full batches)"),
        Metric("tv_distance", "total variation between a batch's class shares and the dataset's (mean)"),
        Metric("rank_inversions", "share of full batches with more of the 2nd most frequent class than the 1st", False),
    ),
    shifts=(
        Metric("tv_distance", "2·W1 between the per-batch TV distance histograms"),
        Metric("w1_score", "change of the mean per-batch class score, B − A", score=False),
        Metric("rank_inversions", "change of the share of rank inversions, B − A", score=False),
    ),
    optional=BATCH_NEEDED,
    shardable=False,  # its epochs are drawn over the whole file
)
