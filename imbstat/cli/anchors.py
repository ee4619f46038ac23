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
@anchor_options("preset", "device", "method", "batch_size", "grid", "memory_mb", "sampler", several=True)
def anchor_iou(
    path: PathArg,
    anchor: tuple[AnchorOptions, ...] = (AnchorOptions(),),
    json: JsonOpt = None,
    out: OutOpt = None,
    quiet: QuietOpt = False,
    source: Source = Source(),
) -> None:
    """Figs. 4, 12a, 14, 15: label every anchor (MaxIoUAssigner) and report fg/bg, per class, IoU, per GT, maps.

    With --preset repeated, the file is loaded once and labelled under each preset: one table of them
    side by side, the JSON's further presets under ``more_presets``, and --out one folder per preset.
    """
    from imbstat.anchors.engine import sparse_device_note
    from imbstat.sections.anchors import anchor_section, anchor_tables, write_tables
    from imbstat.stats import AnchorStats, anchor_stats
    from imbstat.stats.side_by_side import keyed

    ds = source.load(path)
    first = anchor[0]  # the options other than the preset are the same for every preset
    if first.method == "sparse" and first.device != "cpu":
        echo(f"imbstat: note: {sparse_device_note(first.device)}", err=True)
    with progress(ds.num_images * len(anchor), quiet) as advance:
        labelled = [anchor_stats(ds, options=a, box_filter=source.box_filter, progress=advance) for a in anchor]
    result = AnchorStats.side_by_side(labelled)
    presets = keyed(result)
    options = {**asdict(source.box_filter), "device": first.device, "method": first.method,
               "batch_size": first.batch_size, "grid": first.grid}  # fmt: skip
    if len(presets) > 1:
        options["presets"] = [key for key, _ in presets]
    emit("anchor-iou", ds, anchor_section(result, ds), options, json, anchor_tables(result))
    if out:
        from imbstat.plots import plot_anchors

        written = []
        for key, r in presets:  # several presets: one folder each, named by its key
            folder = out / key if len(presets) > 1 else out
            written += write_tables(r, ds.images, folder) + plot_anchors(r, folder)
        if len(presets) > 1:
            keys = ", ".join(key for key, _ in presets)
            echo(f"wrote {len(written)} files to {out}, a folder per preset: {keys}", err=True)
        else:
            report_written(written)
