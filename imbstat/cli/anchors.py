"""Anchor commands: anchors, anchor-iou (Figs. 4, 12a, 14, 15)."""

from __future__ import annotations

from typing import Annotated

import typer

from imbstat.anchors.options import AnchorOptions
from imbstat.cli.common import (
    AnchorGridOpt,
    AnchorSamplerOpt,
    ClassesOpt,
    CrowdOpt,
    DeviceBatchOpt,
    DeviceOpt,
    DifficultOpt,
    FormatOpt,
    ImagesOpt,
    JsonOpt,
    MemoryOpt,
    MethodOpt,
    NoCacheOpt,
    OutOpt,
    PathArg,
    PresetOpt,
    PresetsOpt,
    QuietOpt,
    ShardOpt,
    SizesOpt,
    Source,
    SplitOpt,
    anchor_presets,
    app,
    echo,
    emit,
    handles_input_errors,
    progress,
    report_written,
    stdout,
)
from imbstat.errors import ImbstatError
from imbstat.report import terminal
from imbstat.report.document import envelope, write_json
from imbstat.sections.spec import Run


@app.command("anchors")
@handles_input_errors
def anchors(
    preset: PresetOpt = "retinanet",
    image_size: Annotated[str, typer.Option("--image-size", help="WIDTHxHEIGHT of an original image.")] = "640x480",
    json: JsonOpt = None,
) -> None:
    """Print the anchor set of one image size under a preset, to check a preset before a long run."""
    from imbstat.anchors.generate import grid_levels, image_grid, require_representable

    chosen = AnchorOptions(preset=preset).preset
    width, height = _image_size(image_size)
    require_representable(chosen, [width], [height], path=f"--image-size {image_size}")
    if json != "-":
        stdout.print(terminal.anchor_grid_table(chosen, width, height))
    if json:
        grid = image_grid(chosen, width, height)
        doc = {"preset": chosen.to_dict(), "image_size": [width, height], "padded_size": [grid.padded_width,
               grid.padded_height], "levels": grid_levels(grid), "total": len(grid)}  # fmt: skip
        write_json(envelope("anchors", doc), json)


def _image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ImbstatError(f"--image-size {text!r}: expected WIDTHxHEIGHT in pixels, e.g. 640x480") from None
    if width <= 0 or height <= 0:
        raise ImbstatError(f"--image-size {text!r}: expected positive width and height")
    return width, height


@app.command("anchor-iou")
@handles_input_errors
def anchor_iou(
    path: PathArg,
    preset: PresetsOpt = None,
    device: DeviceOpt = "cpu",
    method: MethodOpt = "auto",
    device_batch: DeviceBatchOpt = 32,
    grid: AnchorGridOpt = 32,
    memory_mb: MemoryOpt = 1024,
    anchor_sampler: AnchorSamplerOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    losses: Annotated[
        bool,
        typer.Option(
            "--losses",
            help="Also the loss section: each positive anchor's regression loss at zero prediction under the first "
            "preset's box coder, its share of the total and Gini (survey Fig. 11).",
        ),
    ] = False,
) -> None:
    """Figs. 4, 12a, 14, 15: label every anchor (MaxIoUAssigner) and report fg/bg, per class, IoU, per GT, maps.

    With --preset repeated, the file is loaded once and labelled under each preset: one table of them
    side by side, the JSON's further presets under ``more_presets``, and --out one folder per preset.
    With --losses, the JSON's ``loss`` section (the first preset's), its table and ``loss_regression.csv``.
    """
    from imbstat.anchors.engine import sparse_device_note
    from imbstat.sections.anchors import anchor_section, anchor_tables, write_tables
    from imbstat.stats import AnchorStats, anchor_stats
    from imbstat.stats.side_by_side import keyed

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    anchor = anchor_presets(preset, device=device, method=method, batch_size=device_batch, grid=grid,
                            memory_mb=memory_mb, sampler=anchor_sampler)  # fmt: skip
    ds = source.load(path)
    first = anchor[0]  # the options other than the preset are the same for every preset
    if first.method == "sparse" and first.device != "cpu":
        echo(f"imbstat: note: {sparse_device_note(first.device)}", err=True)
    with progress(ds.num_images * len(anchor), quiet) as advance:
        labelled = [anchor_stats(ds, options=a, box_filter=source.box_filter, progress=advance) for a in anchor]
    result = AnchorStats.side_by_side(labelled)
    presets = keyed(result)
    run = Run(source.box_filter, first, more_anchors=anchor[1:], losses=losses)
    body, tables = anchor_section(result, ds), anchor_tables(result)
    loss = None
    if losses:
        from imbstat.sections.loss import LOSS

        loss = LOSS.compute(ds, run)  # labels the first preset's anchors again (issue 24: one pass is left to do)
        body, tables = body | {LOSS.name: LOSS.to_json(loss, ds)}, tables + LOSS.terminal(loss)
    emit("anchor-iou", ds, body, run.report_options("anchor-iou"), json, tables)
    if out:
        from imbstat.plots import plot_anchors

        written = []
        for key, r in presets:  # several presets: one folder each, named by its key
            folder = out / key if len(presets) > 1 else out
            written += write_tables(r, ds.images, folder) + plot_anchors(r, folder)
        if loss is not None:
            written += LOSS.write_tables(loss, ds, out)
        if len(presets) > 1:
            keys = ", ".join(key for key, _ in presets)
            echo(f"wrote {len(written)} files to {out}, a folder per preset: {keys}", err=True)
        else:
            report_written(written)
