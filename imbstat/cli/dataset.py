"""Dataset-level commands: info, validate, class-dist, scale, location (Figs. 5, 7, 13)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import typer

from imbstat.cli.common import (
    GRID_HELP,
    ClassBalancedOpt,
    EpochsOpt,
    JsonOpt,
    OutOpt,
    PathArg,
    RepeatFactorOpt,
    SamplerOpt,
    SeedOpt,
    Source,
    app,
    echo,
    emit,
    handles_input_errors,
    report_written,
    source_options,
)
from imbstat.report import terminal
from imbstat.report.document import document, write_json
from imbstat.scores import MAX_GRID
from imbstat.stats.scale import MAX_BINS


@app.command("info")
@handles_input_errors
@source_options(counting=False)
def info(
    path: PathArg,
    json: JsonOpt = None,
    source: Source = Source(),
) -> None:
    """Format, images, boxes, classes, flagged boxes, invalid annotations by reason, load time."""
    ds = source.load(path, notes=False)
    emit("info", ds, {}, {}, json, [terminal.dataset_table(ds), terminal.problems_table(ds)])


@app.command("validate")
@handles_input_errors
@source_options(counting=False)
def validate(
    path: PathArg,
    json: JsonOpt = None,
    source: Source = Source(),
) -> None:
    """List every invalid or suspicious annotation with its location; exit 1 if any is an error."""
    ds = source.load(path, notes=False)
    problems = ds.problems
    rows = [
        {"location": loc, "reason": r.key, "severity": r.severity, "action": r.action, "detail": detail}
        for r, loc, detail in zip(problems.reasons(), problems.location, problems.detail, strict=True)
    ]
    if json != "-":
        for row in rows:
            detail = f" [{row['detail']}]" if row["detail"] else ""
            echo(f"{ds.path}: {row['location']}: {row['severity']}: {row['reason']} ({row['action']}){detail}")
        images_read = ds.num_images + problems.num_excluded("image")  # what the source holds
        boxes_read = len(ds.boxes) + problems.num_excluded("box")
        echo(
            f"{len(rows):,} problems, {problems.num_errors:,} errors, in {images_read:,} images "
            f"and {boxes_read:,} boxes read"
        )
    if json:
        write_json(document("validate", ds, {"problems": rows, "errors": problems.num_errors}), json)
    if problems.num_errors:
        raise typer.Exit(1)


@app.command("class-dist")
@handles_input_errors
@source_options()
def class_dist(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
    source: Source = Source(),
) -> None:
    """Fig. 5: instances and images per class (long tail), objects and classes per image, class scores;
    with --repeat-factor / --class-balanced, what those remedies make of the classes."""
    from imbstat.sections import BY_NAME
    from imbstat.sections.classes import class_table
    from imbstat.sections.spec import Run, remedy_options
    from imbstat.stats import class_distribution

    remedies = remedy_options(repeat_factor, class_balanced)  # checked before a long load
    ds = source.load(path)
    box_filter = source.box_filter
    result = class_distribution(ds, box_filter=box_filter)
    run = Run(box_filter, repeat_factor=repeat_factor, class_balanced=class_balanced)  # the remedies' options
    extra = {BY_NAME[name]: BY_NAME[name].compute(ds, run) for name in remedies}  # section -> result
    balanced = next((r for s, r in extra.items() if s.name == "class_balanced"), None)
    tables = [class_table(result, balanced), terminal.scores_table("class imbalance", result.scores)]
    for section, r in extra.items():
        tables += section.terminal(r)
    body = result.to_dict() | {s.name: s.to_json(r, ds) for s, r in extra.items()}
    emit("class-dist", ds, body, asdict(box_filter) | remedies, json, tables)
    if out:
        from imbstat.plots import plot_classes
        from imbstat.sections.classes import write_tables

        written = write_tables(result, out) + plot_classes(result, out)
        for section, r in extra.items():
            written += section.write_tables(r, ds, out) + section.write_figures(r, out)
        report_written(written)


@app.command("scale")
@handles_input_errors
@source_options()
def scale(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    bins: Annotated[
        int, typer.Option(min=2, max=MAX_BINS, help="Bins of the relative size histograms on [0, 1].")
    ] = 50,
    source: Source = Source(),
) -> None:
    """Fig. 7: relative width, height, area; COCO size buckets; aspect ratio; FPN levels."""
    from imbstat.sections.scale import scale_table, write_tables
    from imbstat.stats import scale_distribution

    ds = source.load(path)
    box_filter = source.box_filter
    result = scale_distribution(ds, box_filter=box_filter, bins=bins)
    if result.missing:
        echo(f"imbstat: note: {result.missing}", err=True)
    emit("scale", ds, result.to_dict(), {**asdict(box_filter), "bins": bins}, json, [scale_table(result)])
    if out:
        from imbstat.plots import plot_scale

        report_written(write_tables(result, out) + plot_scale(result, out))


@app.command("location")
@handles_input_errors
@source_options()
def location(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    grid: Annotated[int, typer.Option(min=2, max=MAX_GRID, help=GRID_HELP.format("the centre grid"))] = 32,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also per class.")] = False,
    source: Source = Source(),
) -> None:
    """Fig. 13: box centres over the normalised image, with marginal and 2-D W1 scores."""
    from imbstat.sections.location import location_table, write_tables
    from imbstat.stats import location_distribution

    ds = source.load(path)
    box_filter = source.box_filter
    result = location_distribution(ds, box_filter=box_filter, grid=grid)
    emit(
        "location",
        ds,
        result.to_dict(per_class=per_class),
        {**asdict(box_filter), "grid": grid},
        json,
        [location_table(result, per_class)],
    )
    if out:
        from imbstat.plots import plot_location

        report_written(write_tables(result, out) + plot_location(result, out, per_class=12 if per_class else 0))


@app.command("batch-dist")
@handles_input_errors
@source_options()
def batch_dist(
    path: PathArg,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Training images per batch.")],
    sampler: SamplerOpt = "random",
    epochs: EpochsOpt = 10,
    seed: SeedOpt = 0,
    json: JsonOpt = None,
    out: OutOpt = None,
    source: Source = Source(),
) -> None:
    """Fig. 6: class shares of training batches: P(class absent), per-batch shares, TV distance, rank inversions."""
    from imbstat.sections.batch import batch_tables, write_tables
    from imbstat.stats import batch_distribution
    from imbstat.stats.batch import Sampler

    chosen = Sampler.parse(sampler)  # before a long load
    ds = source.load(path)
    box_filter = source.box_filter
    result = batch_distribution(ds, batch_size=batch_size, sampler=chosen, epochs=epochs, seed=seed,
                                box_filter=box_filter)  # fmt: skip
    options = {**asdict(box_filter), "batch_size": batch_size, "sampler": str(chosen), "epochs": epochs, "seed": seed}
    emit("batch-dist", ds, result.to_dict(), options, json, batch_tables(result))
    if out:
        from imbstat.plots import plot_batch

        report_written(write_tables(result, out) + plot_batch(result, out))


@app.command("cache")
@handles_input_errors
@source_options(counting=False)
def cache(path: PathArg, source: Source = Source()) -> None:
    """Write the Parquet cache of PATH now (later loads read it; large sources get one on first load anyway)."""
    import time

    from imbstat.data import cache_source

    start = time.perf_counter()
    _, folder = cache_source(path, source.options)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    source.load(path, notes=False)
    echo(f"cache written to {folder}: parse {parsed:.2f} s, load from cache {time.perf_counter() - start:.2f} s")
