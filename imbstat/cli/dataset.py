"""Dataset-level commands: info, validate, class-dist, scale, location (Figs. 5, 7, 13)."""

from __future__ import annotations

from typing import Annotated

import typer

from imbstat.cli.common import (
    GRID_HELP,
    ClassBalancedOpt,
    ClassesOpt,
    CrowdOpt,
    DifficultOpt,
    EpochsOpt,
    FormatOpt,
    ImagesOpt,
    JsonOpt,
    NoCacheOpt,
    OutOpt,
    PathArg,
    QuietOpt,
    RepeatFactorOpt,
    SamplerOpt,
    SeedOpt,
    ShardOpt,
    SizesOpt,
    Source,
    SplitOpt,
    app,
    echo,
    emit,
    handles_input_errors,
    report_written,
)
from imbstat.report import terminal
from imbstat.report.document import document, write_json
from imbstat.scores import MAX_GRID
from imbstat.sections.spec import Run
from imbstat.stats.batch import BatchOptions
from imbstat.stats.scale import MAX_BINS


@app.command("info")
@handles_input_errors
def info(
    path: PathArg,
    json: JsonOpt = None,
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Format, images, boxes, classes, flagged boxes, invalid annotations by reason, load time."""
    ds = Source.of(format, split, classes, sizes, images, shard, no_cache).load(path, notes=False)
    emit("info", ds, {}, {}, json, [terminal.dataset_table(ds), terminal.problems_table(ds)])


@app.command("validate")
@handles_input_errors
def validate(
    path: PathArg,
    json: JsonOpt = None,
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """List every invalid or suspicious annotation with its location; exit 1 if any is an error."""
    ds = Source.of(format, split, classes, sizes, images, shard, no_cache).load(path, notes=False)
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
def class_dist(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
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
) -> None:
    """Fig. 5: instances and images per class (long tail), objects and classes per image, class scores;
    with --repeat-factor / --class-balanced, what those remedies make of the classes."""
    from imbstat.sections import BY_NAME
    from imbstat.sections.classes import class_table, write_figures, write_tables
    from imbstat.stats import class_distribution

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    run = Run(source.box_filter, repeat_factor=repeat_factor, class_balanced=class_balanced)  # checked before a load
    ds = source.load(path)
    result = class_distribution(ds, box_filter=source.box_filter)
    extra = {BY_NAME[name]: BY_NAME[name].compute(ds, run) for name in run.optional_sections()}  # the remedies
    balanced = next((r for s, r in extra.items() if s.name == "class_balanced"), None)
    tables = [class_table(result, balanced), terminal.scores_table("class imbalance", result.scores)]
    body = result.to_dict() | {s.name: s.to_json(r, ds) for s, r in extra.items()}
    tables += [t for section, r in extra.items() for t in section.terminal(r)]
    emit("class-dist", ds, body, run.report_options("class-dist"), json, tables)
    if out:
        written = write_tables(result, out) + write_figures(result, out)
        for section, r in extra.items():
            written += section.write_tables(r, ds, out) + section.write_figures(r, out)
        report_written(written)


@app.command("scale")
@handles_input_errors
def scale(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    bins: Annotated[
        int, typer.Option(min=2, max=MAX_BINS, help="Bins of the relative size histograms on [0, 1].")
    ] = 50,
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
) -> None:
    """Fig. 7: relative width, height, area; COCO size buckets; aspect ratio; FPN levels."""
    from imbstat.sections.scale import scale_table, write_tables
    from imbstat.stats import scale_distribution

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    ds = source.load(path)
    result = scale_distribution(ds, box_filter=source.box_filter, bins=bins)
    if result.missing:
        echo(f"imbstat: note: {result.missing}", err=True)
    options = Run(source.box_filter).report_options("scale", bins=bins)
    emit("scale", ds, result.to_dict(), options, json, [scale_table(result)])
    if out:
        from imbstat.plots import plot_scale

        report_written(write_tables(result, out) + plot_scale(result, out))


@app.command("location")
@handles_input_errors
def location(
    path: PathArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    grid: Annotated[int, typer.Option(min=2, max=MAX_GRID, help=GRID_HELP.format("the centre grid"))] = 32,
    per_class: Annotated[bool, typer.Option("--per-class", help="Also per class.")] = False,
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
) -> None:
    """Fig. 13: box centres over the normalised image, with marginal and 2-D W1 scores."""
    from imbstat.sections.location import location_table, write_tables
    from imbstat.stats import location_distribution

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    ds = source.load(path)
    result = location_distribution(ds, box_filter=source.box_filter, grid=grid)
    options = Run(source.box_filter).report_options("location", grid=grid)
    emit("location", ds, result.to_dict(per_class=per_class), options, json, [location_table(result, per_class)])
    if out:
        from imbstat.plots import plot_location

        report_written(write_tables(result, out) + plot_location(result, out, per_class=12 if per_class else 0))


@app.command("batch-dist")
@handles_input_errors
def batch_dist(
    path: PathArg,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Training images per batch.")],
    sampler: SamplerOpt = "random",
    epochs: EpochsOpt = 10,
    seed: SeedOpt = 0,
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
) -> None:
    """Fig. 6: class shares of training batches: P(class absent), per-batch shares, TV distance, rank inversions."""
    from imbstat.sections import BATCH
    from imbstat.sections.batch import batch_tables

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    run = Run(source.box_filter, batch=BatchOptions(batch_size, sampler, epochs, seed))  # checked before a load
    ds = source.load(path)
    result = BATCH.compute(ds, run)
    emit("batch-dist", ds, result.to_dict(), run.report_options("batch-dist"), json, batch_tables(result))
    if out:
        report_written(BATCH.write_tables(result, ds, out) + BATCH.write_figures(result, out))


@app.command("cache")
@handles_input_errors
def cache(
    path: PathArg,
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Write the Parquet cache of PATH now (later loads read it; large sources get one on first load anyway)."""
    import time

    from imbstat.data import cache_source

    source = Source.of(format, split, classes, sizes, images, shard, no_cache)
    start = time.perf_counter()
    _, folder = cache_source(path, source.options)
    parsed = time.perf_counter() - start
    start = time.perf_counter()
    source.load(path, notes=False)
    echo(f"cache written to {folder}: parse {parsed:.2f} s, load from cache {time.perf_counter() - start:.2f} s")
