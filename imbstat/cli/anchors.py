"""Anchor commands: anchors, anchor-iou (Figs. 4, 12a, 14, 15)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from imbstat.anchors.options import AnchorOptions
from imbstat.cli.common import (
    JsonOpt,
    OutOpt,
    PathArg,
    QuietOpt,
    Source,
    anchor_options,
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
@anchor_options("preset")
def anchors(
    anchor: AnchorOptions = AnchorOptions(),
    image_size: Annotated[str, typer.Option("--image-size", help="WIDTHxHEIGHT of an original image.")] = "640x480",
    json: JsonOpt = None,
) -> None:
    """Print the anchor set of one image size under a preset, to check a preset before a long run."""
    from imbstat.anchors.generate import grid_levels, image_grid, require_representable

    chosen = anchor.preset
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
@anchor_options("preset", "device", "method", "batch_size", "grid", "memory_mb", "sampler")
def anchor_iou(
    path: PathArg,
    anchor: AnchorOptions = AnchorOptions(),
    json: JsonOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    source: Source = Source(),
) -> None:
    """Figs. 4, 12a, 14, 15: label every anchor (MaxIoUAssigner) and report fg/bg, per class, IoU, per GT, maps."""
    from imbstat.anchors.engine import sparse_device_note
    from imbstat.report.sections import anchor_section
    from imbstat.stats import anchor_stats

    ds = source.load(path)
    if anchor.method == "sparse" and anchor.device != "cpu":
        echo(f"imbstat: note: {sparse_device_note(anchor.device)}", err=True)
    with progress(ds.num_images, quiet) as advance:
        result = anchor_stats(ds, options=anchor, box_filter=source.box_filter, progress=advance)
    options = {**asdict(source.box_filter), "device": anchor.device, "method": anchor.method,
               "batch_size": anchor.batch_size, "grid": anchor.grid}  # fmt: skip
    emit("anchor-iou", ds, anchor_section(result, ds), options, json, terminal.anchor_tables(result))
    if out:
        from imbstat.plots import plot_anchors
        from imbstat.report.tables import anchor_tables

        report_written(anchor_tables(result, ds.images, out) + plot_anchors(result, out))
