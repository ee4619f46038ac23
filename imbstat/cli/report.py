"""Whole-dataset commands: report, summary, compare, demo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from imbstat.analysis import MAX_SHARDS, Results, compute
from imbstat.anchors.options import AnchorOptions
from imbstat.cli.common import (
    AnchorSamplerOpt,
    AnchorsOpt,
    ClassBalancedOpt,
    ClassesOpt,
    CrowdOpt,
    DetectionsOpt,
    DeviceBatchOpt,
    DeviceOpt,
    DifficultOpt,
    EpochsOpt,
    FormatOpt,
    ImagesOpt,
    JsonOpt,
    MaxDetsOpt,
    MethodOpt,
    NoCacheOpt,
    OutOpt,
    PathArg,
    PresetOpt,
    PresetsOpt,
    QuietOpt,
    RepeatFactorOpt,
    SamplerOpt,
    SeedOpt,
    ShardOpt,
    SizesOpt,
    Source,
    SplitOpt,
    TrainBatchOpt,
    TrainOpt,
    anchor_presets,
    app,
    echo,
    handles_input_errors,
    labelled_presets,
    progress,
    report_written,
    stdout,
    writable_file,
    writable_folder,
)
from imbstat.cli.evaluate import eval_options, warn_skipped
from imbstat.data import LoadOptions
from imbstat.data.source import path_kind
from imbstat.errors import ImbstatError
from imbstat.report.build import report_document, terminal_tables, write_files
from imbstat.report.document import envelope, write_json, write_text
from imbstat.sections.spec import Run
from imbstat.stats.batch import BatchOptions, Sampler


@app.command("report")
@handles_input_errors
def report(
    path: PathArg,
    anchors: AnchorsOpt = False,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the report.", metavar="DIR", callback=writable_folder)
    ] = Path("imbstat-report"),
    preset: PresetsOpt = None,
    device: DeviceOpt = "cpu",
    method: MethodOpt = "auto",
    device_batch: DeviceBatchOpt = 32,
    anchor_sampler: AnchorSamplerOpt = None,
    batch_size: TrainBatchOpt = None,
    sampler: SamplerOpt = "random",
    epochs: EpochsOpt = 10,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Run shards on Dask: local:N worker processes, or a scheduler address."),
    ] = None,
    shards: Annotated[
        int | None,
        typer.Option("--shards", min=1, max=MAX_SHARDS, help="Shards for --dask (default 2 per worker)."),
    ] = None,
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
    detections: DetectionsOpt = None,
    train: TrainOpt = None,
    max_dets: MaxDetsOpt = 100,
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
    """Every statistic in one folder: report.json, CSV tables, PNG figures and a self-contained index.html."""
    from imbstat.report.taxonomy import taxonomy_table

    # --preset repeated: the anchors section holds the further presets side by side (README, "Several presets")
    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    presets = labelled_presets(anchors, anchor_presets(preset, device=device, method=method, batch_size=device_batch,
                                                       sampler=anchor_sampler))  # fmt: skip
    run = Run(source.box_filter, presets[0] if presets else None, repeat_factor=repeat_factor,
              class_balanced=class_balanced, batch=_batch_options(batch_size, sampler, epochs, seed),
              more_anchors=presets[1:], evaluation=eval_options(detections, train, max_dets, source.shard))  # fmt: skip
    results = _compute_on_dask(path, source, run, dask, shards) if dask else _compute(path, source, run, quiet)
    if detections is not None:
        warn_skipped(detections, results.results["eval"])

    index = _write_report(results, out)
    stdout.print(taxonomy_table(results))
    echo(f"Report written to {out}/; open {index} in a browser.")


@app.command("summary")
@handles_input_errors
def summary(
    path: PathArg,
    anchors: AnchorsOpt = False,
    json: JsonOpt = None,
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
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
    """One score per imbalance problem of the survey's Table 1: class, scale, spatial, objective."""
    from dataclasses import asdict as row_dict

    from imbstat.report.taxonomy import taxonomy_rows, taxonomy_table

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    presets = labelled_presets(anchors, anchor_presets([preset], device=device))
    results = _compute(path, source, Run(source.box_filter, presets[0] if presets else None), quiet)
    if json != "-":
        stdout.print(taxonomy_table(results))
    if json:
        rows = [row_dict(r) for r in taxonomy_rows(results)]
        write_json(report_document(results, "summary") | {"taxonomy": rows}, json)


SideArg = Annotated[
    Path, typer.Argument(help="A dataset (as for report) or the report.json of 'imbstat report'.", show_default=False)
]


@app.command("compare")
@handles_input_errors
def compare(
    a: SideArg,
    b: SideArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    anchors: AnchorsOpt = False,
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    format_b: Annotated[str | None, typer.Option("--format-b", help="Format of B, when not --format.")] = None,
    quiet: QuietOpt = False,
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
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
    """Shift of every distribution from A to B (train vs val, old vs new): W1 between them, classes gained and lost."""
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.compare import terminal_tables as compare_tables
    from imbstat.report.compare import write_files as write_compare_files

    source = Source.of(format, split, classes, sizes, images, shard, no_cache, include_crowd, include_difficult)
    presets = labelled_presets(anchors, anchor_presets([preset], device=device))
    run = Run(source.box_filter, presets[0] if presets else None, repeat_factor=repeat_factor,
              class_balanced=class_balanced)  # fmt: skip
    for path in (a, b):  # before a long computation of A
        path_kind(path)
    options_b = dataclasses.replace(source.options, format=format_b or source.options.format)
    side_b = dataclasses.replace(source, options=options_b)
    comparison = compare_reports(*(_report(path, side, run, quiet) for path, side in ((a, source), (b, side_b))))
    for key, why in comparison.skipped.items():
        echo(f"imbstat: note: {key} not compared: {why}", err=True)
    if json != "-":
        for table in compare_tables(comparison):
            stdout.print(table)
    if json:
        write_json(comparison.to_dict(), json)
    if out:
        report_written(write_compare_files(comparison, out))


def _report(path: Path, source: Source, run: Run, quiet: bool) -> Results:
    """The saved report at ``path`` read back, or the results of the dataset there, computed now."""
    from imbstat.report.reading import read_report

    doc = read_report(path)
    if doc is not None:
        return Results.from_document(doc, path)
    return _compute(path, source, run, quiet)


def _batch_options(
    batch_size: int | None, sampler: str = "random", epochs: int = 10, seed: int = 0
) -> BatchOptions | None:
    """The batch section's options when the training batch is given (the sampler checked now, given or not)."""
    if batch_size is None:
        Sampler.parse(sampler)  # a bad --sampler is refused even without --batch-size
        return None
    return BatchOptions(batch_size, sampler, epochs, seed)


def _compute(path: Path, source: Source, run: Run, quiet: bool = False) -> Results:
    """Load and compute every section ``run`` asks for (:func:`imbstat.compute`), with a progress bar for anchors."""
    ds = source.load(path)
    with progress(ds.num_images * (1 + len(run.more_anchors)), quiet or not run.anchors) as advance:
        return compute(ds, run=run, progress=advance)


def _compute_on_dask(path: Path, source: Source, run: Run, spec: str, shards: int | None) -> Results:
    """The report's Results from one Dask task per shard (:func:`imbstat.analysis.compute_distributed`)."""
    from imbstat.analysis import check_dask_spec, compute_distributed, dask_client

    if source.shard:
        raise ImbstatError("--dask runs every shard itself; leave out --shard")
    check_dask_spec(spec)  # before a long load
    # The client loads first and writes the Parquet cache, so that workers read columns instead of parsing.
    options = source.load_options(cache=True)
    ds = source.load(path, cache=True)
    client = dask_client(spec)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        return compute_distributed(ds, client, shards or 2 * workers, options, run=run)
    finally:
        client.close()


def _write_report(results: Results, out: Path) -> Path:
    """report.json, CSV tables, PNG figures and index.html of ``results`` in ``out``; the index path."""
    from imbstat.report.html import write_index

    doc = report_document(results)  # once: the anchor scores solve transport problems
    write_json(doc, out / "report.json")
    return write_index(doc, write_files(results, out), out)


@app.command("demo")
@handles_input_errors
def demo(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the sample and its report.", callback=writable_folder)
    ] = Path("imbstat-demo"),
) -> None:
    """Generate the built-in sample dataset and write its statistics, anchors included, tables and figures to --out."""
    from imbstat.data.sample import write_sample

    sample = write_sample(out / "sample.json")
    # The anchor section is the survey's most distinctive figures; retinanet on the CPU takes seconds here.
    results = _compute(sample, Source(LoadOptions(format="coco")), Run(anchors=AnchorOptions()))
    index = _write_report(results, out)
    for table in terminal_tables(results):
        stdout.print(table)
    echo(f"Report written to {out}/ (report.json, CSV tables, PNG figures); open {index} in a browser.")


@app.command("audit")
@handles_input_errors
def audit(
    path: PathArg,
    config: Annotated[Path, typer.Option("--config", help="Audit config (TOML): checks = ['METRIC OP LIMIT', ...].")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="report.json (or dataset) to compare against for compare.*.")
    ] = None,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Write JUnit XML to FILE.", metavar="FILE", callback=writable_file)
    ] = None,
    markdown: Annotated[
        Path | None,
        typer.Option("--markdown", help="Write a Markdown summary to FILE.", metavar="FILE", callback=writable_file),
    ] = None,
    json: JsonOpt = None,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    format: FormatOpt = None,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    shard: ShardOpt = None,
    no_cache: NoCacheOpt = False,
) -> None:
    """Check thresholds on scores and statistics: exit 0 all pass, 1 any fails, 2 bad config or input."""
    from imbstat.report import audit as audits
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.metrics import metrics

    source = Source.of(format, split, classes, sizes, images, shard, no_cache)
    cfg = audits.load_config(config)
    if cfg.needs_baseline and baseline is None:
        raise ImbstatError("checks name compare.* metrics; pass --baseline REPORT.json", config)
    for given in (path, baseline):
        if given is not None:
            path_kind(given)
    run = cfg.run
    if run.anchors:  # the config's preset, labelled on --device
        run = dataclasses.replace(run, anchors=dataclasses.replace(run.anchors, device=device))
    report = _compute(path, source, run, quiet)
    values = metrics(report)
    if baseline is not None:
        values |= compare_reports(_report(baseline, source, run, quiet), report).metrics()
    results = audits.run_checks(cfg, values, config)
    failed = sum(not r.passed for r in results)
    if json != "-":
        stdout.print(audits.audit_table(results, str(path)))
        echo(f"{len(results) - failed} passed, {failed} failed")
    if junit:
        write_text(audits.junit_xml(results), junit, "the JUnit report")
    if markdown:
        write_text(audits.markdown(results, str(path)), markdown, "the Markdown summary")
    if json:
        rows = [{"check": str(r.check), "metric": r.check.metric, "op": r.check.op, "limit": r.check.limit,
                 "value": r.value, "passed": r.passed} for r in results]  # fmt: skip
        body = {"dataset": report.dataset, "options": report.options, "config": str(config), "checks": rows}
        write_json(envelope("audit", body | {"failed": failed}), json)
    if failed:
        raise typer.Exit(1)


@app.command("merge")
@handles_input_errors
def merge(
    reports: Annotated[list[Path], typer.Argument(help="The JSON reports of every shard (--shard I/N) of one run.")],
    json: Annotated[
        str, typer.Option("--json", help="Write the merged report to FILE ('-' = stdout).", callback=writable_file)
    ] = "-",
) -> None:
    """Join the reports of the shards of one run (--shard I/N) into exactly the report of the whole run."""
    from imbstat.report.merge import merge_documents, read_documents

    write_json(merge_documents(read_documents(reports), reports), json)
