"""The loss section: loss imbalance at initialization (survey §6.1, Fig. 11), written by ``anchor-iou --losses``.

Its regression part (issue 24, part 1): each positive anchor's box loss at zero prediction under six losses, how
unequally the anchors share each (:mod:`imbstat.stats.regression_loss`); and the classification loss at the prior
against it (part 2, survey §7, :mod:`imbstat.stats.objective_loss`). Its entry in the registry and its renderers;
renderers import rich and the report's helpers inside their bodies.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbstat.sections.spec import Metric, Section, shift_metrics
from imbstat.stats.regression_loss import LossImbalance, loss_imbalance

if TYPE_CHECKING:
    from rich.table import Table


def loss_shift(a: LossImbalance, b: LossImbalance, skipped: dict[str, str]) -> dict[str, Any]:
    """B's scores minus A's (shares and Gini are already on [0, 1]: their difference is the shift)."""
    return {"scores": {name: b.scores[name] - a.scores[name] for name in a.scores}}


def write_tables(result: LossImbalance, out_dir: Path) -> list[Path]:
    from imbstat.report.csv_tables import write_frames

    return write_frames({"loss_regression": result.to_frame()}, out_dir)


def loss_table(result: LossImbalance) -> Table:
    """One row per loss: total, per positive anchor, the top 1 % and 10 % anchors' shares, Gini."""
    from imbstat.report.terminal import PlainTable, fmt_number

    r = result.regression
    table = PlainTable(title=f"regression loss at zero prediction, {r.positives:,} positive anchors (preset's loss: "
                       f"{r.preset.regression_loss})", title_justify="left")  # fmt: skip
    for col in ("loss", "total", "per positive", "top 1 % share", "top 10 % share", "gini"):
        table.add_column(col, justify="left" if col == "loss" else "right")
    for row in result.to_frame().itertuples(index=False):
        table.add_row(row.loss, *(fmt_number(v) for v in (row.total, row.per_positive, row.top1_share,
                                                           row.top10_share, row.gini)))  # fmt: skip
    return table


def objective_rows(result: LossImbalance) -> list[tuple[str, float]]:
    """The objective balance at initialization as (what, value) rows: both totals, the ratios and the weight."""
    d = result.regression.objective()
    c, ratio = d["classification"], d["ratio"]
    q = ratio["per_image_quantiles"]
    return [
        (f"classification total ({c['loss']}, {c['classes']} output(s) an anchor)", c["total"]),
        (f"regression total ({result.regression.preset.regression_loss})", d["regression_total"]),
        ("classification / regression, dataset", ratio["dataset"]),
        (f"classification / regression, per image mean ({ratio['images']:,} images)", ratio["per_image_mean"]),
        ("classification / regression, per image median", q[2]),
        ("balancing weight of the regression term", d["balancing_weight"]),
    ]


def objective_table(result: LossImbalance) -> Table:
    from imbstat.report.terminal import PlainTable, fmt_number

    table = PlainTable(title="objective at initialization: classification at the prior against regression",
                       title_justify="left")  # fmt: skip
    table.add_column("", justify="left")
    table.add_column("value", justify="right")
    for what, value in objective_rows(result):
        table.add_row(what, fmt_number(value))
    return table


def loss_html(result: LossImbalance, scores: str) -> str:
    from imbstat.report.html_parts import e, fixed, table

    frame = result.to_frame()
    rows = [[row.loss, f"{row.total:.4g}", fixed(row.per_positive), fixed(row.top1_share), fixed(row.top10_share),
             fixed(row.gini)] for row in frame.itertuples(index=False)]  # fmt: skip
    head = (f'<p class="legend">Each positive anchor\'s regression loss at zero prediction (the predicted box is '
            f"the anchor), its target encoded by the preset's coder; the preset's loss is "
            f"{e(result.regression.preset.regression_loss)}.</p>")  # fmt: skip
    header = ["loss", "total", "per positive", "top 1 %", "top 10 %", "gini"]
    objective = table(["objective at initialization", "value"], [[w, _g(v)] for w, v in objective_rows(result)],
                      "compact", num=(1,))  # fmt: skip
    return (head + '<div class="tables">' + scores + table(header, rows, "compact", num=(1, 2, 3, 4, 5)) + objective
            + "</div>")  # fmt: skip


def _g(value: float) -> str:
    return f"{value:.4g}" if math.isfinite(value) else "n/a"


LOSS_METRICS = (
    Metric(
        "regression_top10_share",
        "share of the preset's regression loss carried by the top 10 % of positive anchors, at zero prediction",
        score=False,
    ),
    Metric("regression_gini", "Gini of the positive anchors' regression losses at zero prediction"),
)


LOSS = Section(
    name="loss",
    title="Loss imbalance at initialization (regression, Fig. 11; objective, Fig. 16)",
    result_type=LossImbalance,
    command="anchor-iou",
    compute=lambda ds, run: loss_imbalance(ds, options=run.anchors, box_filter=run.box_filter),
    to_json=lambda r, ds: r.to_dict(),
    write_tables=lambda r, ds, out: write_tables(r, out),
    terminal=lambda r: [loss_table(r), objective_table(r)],
    compare=loss_shift,
    html=loss_html,
    metrics=LOSS_METRICS,
    shifts=shift_metrics(LOSS_METRICS, "regression_top10_share", "regression_gini"),
    optional="run anchor-iou with --losses",
)
