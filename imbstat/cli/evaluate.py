"""The eval command: a detector's COCO AP per class, joined to the classes' (training) frequency."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from imbstat.cli.common import (
    AnchorsOpt,
    ClassesOpt,
    FormatOpt,
    ImagesOpt,
    JsonOpt,
    MaxDetsOpt,
    NoCacheOpt,
    OutOpt,
    PathArg,
    PresetOpt,
    QuietOpt,
    ShardOpt,
    SizesOpt,
    Source,
    SplitOpt,
    TrainOpt,
    anchor_presets,
    app,
    echo,
    emit,
    handles_input_errors,
    labelled_presets,
    report_written,
)
from imbstat.errors import ImbstatError

if TYPE_CHECKING:
    from imbstat.stats.eval import EvalOptions, Evaluation

DetectionsArg = Annotated[
    Path,
    typer.Argument(help='COCO results JSON: [{"image_id", "category_id", "bbox": [x, y, w, h], "score"}, ...].',
                   show_default=False),
]  # fmt: skip


@app.command("eval")
@handles_input_errors
def eval_command(
    gt: PathArg,
    detections: DetectionsArg,
    train: TrainOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    max_dets: MaxDetsOpt = 100,
    anchors: AnchorsOpt = False,
    preset: PresetOpt = "retinanet",
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """COCO bbox AP per class (pycocotools' COCOeval) against the class's training frequency: LVIS groups,
    Spearman's rho, AP by size, the IoU of true positives; with --anchors, against each class's anchors under
    --preset too (foreground anchors per GT, share of GTs without one)."""
    from imbstat.sections.eval import eval_tables, write_figures, write_tables
    from imbstat.stats.eval import EvalOptions, evaluate_with

    source = Source.of(format, split, classes, sizes, images, shard, no_cache)
    if source.shard:  # before a long load
        raise ImbstatError("--shard: AP ranks every detection of a class over the whole file; expected no --shard")
    options = EvalOptions(detections, train, max_dets)
    labelling = labelled_presets(anchors, anchor_presets([preset]))  # the preset checked before a long load
    ds = source.load(gt)
    train_ds = source.load(train) if train is not None else None
    result = evaluate_with(ds, EvalOptions(detections, train_ds, max_dets))
    if labelling:
        from imbstat.stats.anchors import anchor_stats

        result = result.with_anchors(anchor_stats(ds, options=labelling[0], box_filter=source.box_filter))
    warn_skipped(detections, result)
    anchor_options = {"preset": labelling[0].preset.name} if labelling else {}
    emit("eval", ds, result.to_dict(), asdict(source.box_filter) | options.report_options() | anchor_options, json,
         eval_tables(result))  # fmt: skip
    if out:
        report_written(write_tables(result, out) + write_figures(result, out))


def eval_options(detections: Path | None, train: Path | None, max_dets: int,
                 shard: str | None = None) -> EvalOptions | None:  # fmt: skip
    """The report's eval section options: set by --detections; --train or --max-dets alone is an error, and so is
    --detections with --shard (a shard's AP is not a part of the whole file's)."""
    from imbstat.stats.eval import EvalOptions

    if detections is not None and shard:
        raise ImbstatError("--detections with --shard: AP ranks every detection of a class over the whole file; "
                           "expected no --shard (--dask evaluates on the whole file)")  # fmt: skip
    if detections is None:
        if train is not None or max_dets != 100:
            raise ImbstatError(f"{'--train' if train is not None else '--max-dets'} without --detections; expected "
                               "--detections DETS (COCO results) as well")  # fmt: skip
        return None
    return EvalOptions(detections, train, max_dets)


def warn_skipped(where: Path | str, result: Evaluation) -> None:
    """The one stderr line about detections left out (by reason), when there were some."""
    from imbstat.stats.eval import skipped_line

    line = skipped_line(str(where), result)
    if line:
        echo(line, err=True)
