"""Anchor commands: anchors, anchor-iou (Figs. 4, 12a, 14, 15)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from imbstat.cli.common import (
    DeviceOpt,
    JsonOpt,
    MethodOpt,
    OutOpt,
    PathArg,
    PresetOpt,
    QuietOpt,
    Source,
    app,
    echo,
    emit,
    handles_input_errors,
    progress,
    report_written,
    source_options,
    stdout,
)
from imbstat.errors import ImbstatError
from imbstat.report import terminal
from imbstat.report.document import envelope, write_json


@app.command("anchors")
@handles_input_errors
def anchors(
    preset: PresetOpt = "retinanet",
    image_size: Annotated[str, typer.Option("--image-size", help="WIDTHxHEIGHT of an original image.")] = "640x480",
    json: JsonOpt = None,
) -> None:
    """Print the anchor set of one image size under a preset, to check a preset before a long run."""
    from imbstat.anchors.generate import grid_levels, image_grid, require_representable
    from imbstat.anchors.presets import load_preset

    chosen = load_preset(preset)
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
@source_options()
def anchor_iou(
    path: PathArg,
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    method: MethodOpt = "auto",
    device_batch: Annotated[
        int | None, typer.Option("--device-batch", min=1, help="Images per batch of anchor labelling [default: 32].")
    ] = None,
    batch_size: Annotated[int | None, typer.Option("--batch-size", min=1, hidden=True)] = None,  # its old name
    grid: Annotated[int, typer.Option(min=2, max=256, help="Cells per side of the spatial maps.")] = 32,
    json: JsonOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    memory: Annotated[float, typer.Option("--memory-mb", min=1, help="Device memory for one dense IoU block.")] = 1024,
    source: Source = Source(),
) -> None:
    """Figs. 4, 12a, 14, 15: label every anchor (MaxIoUAssigner) and report fg/bg, per class, IoU, per GT, maps."""
    from imbstat.anchors.engine import sparse_device_note
    from imbstat.anchors.presets import load_preset
    from imbstat.report.build import anchor_section
    from imbstat.stats import anchor_stats

    if batch_size is not None and device_batch is not None and batch_size != device_batch:
        raise ImbstatError(f"--batch-size {batch_size} and --device-batch {device_batch}: expected one of them "
                           "(--batch-size is the old name of --device-batch)")  # fmt: skip
    batch_size = device_batch or batch_size or 32
    chosen = load_preset(preset)
    ds = source.load(path)
    box_filter = source.box_filter
    if method == "sparse" and device != "cpu":
        echo(f"imbstat: note: {sparse_device_note(device)}", err=True)
    with progress(ds.num_images, quiet) as advance:
        result = anchor_stats(ds, preset=chosen, device=device, method=method, batch_size=batch_size,
                              box_filter=box_filter, grid=grid, progress=advance, memory_mb=memory)  # fmt: skip
    options = {**asdict(box_filter), "device": device, "method": method, "batch_size": batch_size, "grid": grid}
    emit("anchor-iou", ds, anchor_section(result, ds), options, json, terminal.anchor_tables(result))
    if out:
        from imbstat.plots import plot_anchors
        from imbstat.report.tables import anchor_tables

        report_written(anchor_tables(result, ds.images, out) + plot_anchors(result, out))
