"""Dataset-level commands: info, validate, class-dist, scale, location (Figs. 5, 7, 13)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from imbstat.cli.common import (
    ClassesOpt,
    CrowdOpt,
    DifficultOpt,
    FormatOpt,
    ImagesOpt,
    JsonOpt,
    OutOpt,
    PathArg,
    SizesOpt,
    SplitOpt,
    app,
    emit,
    handles_input_errors,
    load_dataset,
    report_written,
)
from imbstat.data import BoxFilter, load
from imbstat.report import terminal
from imbstat.report.document import document, write_json


@app.command("info")
@handles_input_errors
def info(
    path: PathArg,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    json: JsonOpt = None,
) -> None:
    """Format, images, boxes, classes, flagged boxes, invalid annotations by reason, load time."""
    ds = load(path, format, split=split, classes=classes, sizes=sizes, images=images)
    emit("info", ds, {}, {}, json, [terminal.dataset_table(ds), terminal.problems_table(ds)])


@app.command("validate")
@handles_input_errors
def validate(
    path: PathArg,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    json: JsonOpt = None,
) -> None:
    """List every invalid or suspicious annotation with its location; exit 1 if any is an error."""
    ds = load(path, format, split=split, classes=classes, sizes=sizes, images=images)
    problems = ds.problems
    rows = [
        {"location": loc, "reason": r.key, "severity": r.severity, "action": r.action, "detail": detail}
        for r, loc, detail in zip(problems.reasons(), problems.location, problems.detail, strict=True)
    ]
    if json != "-":
        for row in rows:
            detail = f" [{row['detail']}]" if row["detail"] else ""
            typer.echo(f"{ds.path}: {row['location']}: {row['severity']}: {row['reason']} ({row['action']}){detail}")
        typer.echo(
            f"{len(rows):,} problems, {problems.num_errors:,} errors, in {ds.num_images:,} images "
            f"and {len(ds.boxes) + problems.num_errors:,} boxes read"
        )
    if json:
        write_json(document("validate", ds, {"problems": rows, "errors": problems.num_errors}), json)
    if problems.num_errors:
        raise typer.Exit(1)


@app.command("class-dist")
@handles_input_errors
def class_dist(
    path: PathArg,
    format: FormatOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
) -> None:
    """Fig. 5: instances and images per class (long tail), objects and classes per image, class scores."""
    from imbstat.stats import class_distribution

    ds = load_dataset(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = class_distribution(ds, box_filter)
    emit(
        "class-dist",
        ds,
        result.to_dict(),
        asdict(box_filter),
        json,
        [terminal.class_table(result), terminal.scores_table("class imbalance", result.to_dict()["scores"])],
    )
    if out:
        from imbstat.plots import plot_classes
        from imbstat.report.tables import class_tables

        report_written(class_tables(result, out) + plot_classes(result, out))


@app.command("scale")
@handles_input_errors
def scale(
    path: PathArg,
    format: FormatOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    bins: Annotated[int, typer.Option(min=2, help="Bins of the relative size histograms on [0, 1].")] = 50,
) -> None:
    """Fig. 7: relative width, height, area; COCO size buckets; aspect ratio; FPN levels."""
    from imbstat.stats import scale_distribution

    ds = load_dataset(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = scale_distribution(ds, box_filter, bins=bins)
    if result.missing:
        typer.echo(f"imbstat: note: {result.missing}", err=True)
    emit("scale", ds, result.to_dict(), {**asdict(box_filter), "bins": bins}, json, [terminal.scale_table(result)])
    if out:
        from imbstat.plots import plot_scale
        from imbstat.report.tables import scale_tables

        report_written(scale_tables(result, out) + plot_scale(result, out))


@app.command("location")
@handles_input_errors
def location(
    path: PathArg,
    format: FormatOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    grid: Annotated[int, typer.Option(min=2, max=256, help="Cells per side of the centre grid.")] = 32,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also per class.")] = False,
) -> None:
    """Fig. 13: box centres over the normalised image, with marginal and 2-D W1 scores."""
    from imbstat.stats import location_distribution

    ds = load_dataset(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = location_distribution(ds, box_filter, grid=grid)
    emit(
        "location",
        ds,
        result.to_dict(per_class=per_class),
        {**asdict(box_filter), "grid": grid},
        json,
        [terminal.location_table(result, per_class)],
    )
    if out:
        from imbstat.plots import plot_location
        from imbstat.report.tables import location_tables

        report_written(location_tables(result, out) + plot_location(result, out, per_class=12 if per_class else 0))
