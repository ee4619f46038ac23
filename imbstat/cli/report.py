"""Whole-dataset commands: report, summary, compare, demo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from imbstat.cli.common import (
    AnchorsOpt,
    ClassBalancedOpt,
    DeviceBatchOpt,
    DeviceOpt,
    EpochsOpt,
    JsonOpt,
    MethodOpt,
    OutOpt,
    PathArg,
    PresetOpt,
    QuietOpt,
    RepeatFactorOpt,
    SamplerOpt,
    SeedOpt,
    Source,
    TrainBatchOpt,
    app,
    echo,
    handles_input_errors,
    progress,
    report_written,
    source_options,
    stdout,
)
from imbstat.data.source import path_kind
from imbstat.errors import ImbstatError
from imbstat.report.document import envelope, write_json, write_text


@app.command("report")
@handles_input_errors
@source_options()
def report(
    path: PathArg,
    anchors: AnchorsOpt = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.", metavar="DIR")] = Path("imbstat-report"),
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    method: MethodOpt = "auto",
    device_batch: DeviceBatchOpt = 32,
    batch_size: TrainBatchOpt = None,
    sampler: SamplerOpt = "random",
    epochs: EpochsOpt = 10,
    seed: SeedOpt = 0,
    quiet: QuietOpt = False,
    dask: Annotated[
        str | None,
        typer.Option("--dask", help="Run shards on Dask: local:N worker processes, or a scheduler address."),
    ] = None,
    shards: Annotated[int | None, typer.Option("--shards", min=1, help="Shards for --dask (default 2 per worker).")] = (
        None
    ),
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
    source: Source = Source(),
) -> None:
    """Every statistic in one folder: report.json, CSV tables, PNG figures and a self-contained index.html."""
    remedies = _remedy_options(repeat_factor, class_balanced)
    batch = _batch_options(batch_size, sampler, epochs, seed)
    if dask:
        results = _compute_on_dask(path, source, dask, shards, anchors, preset, device, method, device_batch,
                                   remedies, batch)  # fmt: skip
    else:
        results = _compute(path, source, anchors, preset, device, method, device_batch, quiet, remedies, batch)
    from imbstat.report.reading import Report
    from imbstat.report.taxonomy import taxonomy_table

    index = _write_report(results, out)
    stdout.print(taxonomy_table(Report.of(results)))
    echo(f"Report written to {out}/; open {index} in a browser.")


@app.command("summary")
@handles_input_errors
@source_options()
def summary(
    path: PathArg,
    anchors: AnchorsOpt = False,
    json: JsonOpt = None,
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    source: Source = Source(),
) -> None:
    """One score per imbalance problem of the survey's Table 1: class, scale, spatial, objective."""
    from dataclasses import asdict as row_dict

    from imbstat.report.reading import Report
    from imbstat.report.taxonomy import taxonomy_rows, taxonomy_table

    results = _compute(path, source, anchors, preset, device, quiet=quiet)
    report = Report.of(results)
    if json != "-":
        stdout.print(taxonomy_table(report))
    if json:
        write_json(results.document("summary") | {"taxonomy": [row_dict(r) for r in taxonomy_rows(report)]}, json)


SideArg = Annotated[
    Path, typer.Argument(help="A dataset (as for report) or the report.json of 'imbstat report'.", show_default=False)
]


@app.command("compare")
@handles_input_errors
@source_options()
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
    source: Source = Source(),
) -> None:
    """Shift of every distribution from A to B (train vs val, old vs new): W1 between them, classes gained and lost."""
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.compare_output import terminal_tables, write_files

    remedies = _remedy_options(repeat_factor, class_balanced)
    for path in (a, b):  # before a long computation of A
        path_kind(path)
    sides = [
        _report(path, side, anchors, preset, device, quiet, remedies)
        for path, side in ((a, source), (b, dataclasses.replace(source, format=format_b or source.format)))
    ]
    comparison = compare_reports(*sides)
    for key, why in comparison.skipped.items():
        echo(f"imbstat: note: {key} not compared: {why}", err=True)
    if json != "-":
        for table in terminal_tables(comparison):
            stdout.print(table)
    if json:
        write_json(comparison.to_dict(), json)
    if out:
        report_written(write_files(comparison, out))


def _report(
    path: Path, source: Source, anchors: bool, preset: str, device: str, quiet: bool, remedies: dict[str, float],
    batch: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """The saved report at ``path`` read back, or the report of the dataset there, computed now."""
    from imbstat.report.reading import Report, read_report

    doc = read_report(path)
    if doc is not None:
        return Report.from_document(doc, path)
    return Report.of(_compute(path, source, anchors, preset, device, quiet=quiet, remedies=remedies, batch=batch))


def _remedy_options(repeat_factor: float | None, class_balanced: float | None) -> dict[str, float]:
    from imbstat.report.build import remedy_options

    return remedy_options(repeat_factor, class_balanced)


def _compute(
    path: Path,
    source: Source,
    anchors: bool = False,
    preset: str = "retinanet",
    device: str = "cpu",
    method: str = "auto",
    batch_size: int = 32,
    quiet: bool = False,
    remedies: dict[str, float] | None = None,
    batch: dict[str, Any] | None = None,
) -> Any:
    """Load and compute every statistic (``report.build.compute``), with a progress bar when labeling anchors;
    ``remedies``: ``compute``'s ``repeat_factor`` / ``class_balanced`` arguments given (:func:`_remedy_options`)."""
    from imbstat.anchors.presets import load_preset
    from imbstat.report.build import compute

    chosen = load_preset(preset)  # a bad preset fails before a long load
    ds = source.load(path)
    with progress(ds.num_images, quiet or not anchors) as advance:
        return compute(ds, source.box_filter, anchors, chosen, device, method, batch_size, advance, batch=batch,
                       **(remedies or {}))  # fmt: skip


def _batch_options(
    batch_size: int | None, sampler: str = "random", epochs: int = 10, seed: int = 0
) -> dict[str, Any] | None:
    """The keywords of ``batch_distribution`` when the training batch is given (the sampler checked now)."""
    from imbstat.stats.batch import Sampler

    chosen = Sampler.parse(sampler)
    if batch_size is None:
        return None
    return {"batch_size": batch_size, "sampler": str(chosen), "epochs": epochs, "seed": seed}


def _compute_on_dask(
    path: Path, source: Source, spec: str, shards: int | None, anchors: bool, preset: str, device: str, method: str,
    batch_size: int, remedies: dict[str, float], batch: dict[str, Any] | None = None,
) -> Any:  # fmt: skip
    """The report's Results from one Dask task per shard (report/distributed.py); the batch section on the client,
    as its epochs are drawn over the whole file."""
    from imbstat.anchors.presets import load_preset
    from imbstat.report.distributed import compute_distributed, dask_client

    if source.shard:
        raise ImbstatError("--dask runs every shard itself; leave out --shard")
    chosen = load_preset(preset)
    load_kwargs = {"format": source.format, "split": source.split, "classes": source.classes, "sizes": source.sizes,
                   "images": source.images, "cache": not source.no_cache}  # fmt: skip
    # The client loads first and writes the Parquet cache, so that workers read columns instead of parsing.
    ds = source.load(path, cache=True)
    client = dask_client(spec)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})))
        results = compute_distributed(ds, client, shards or 2 * workers, load_kwargs, source.box_filter, anchors,
                                      chosen, device, method, batch_size, **remedies)  # fmt: skip
    finally:
        client.close()
    if batch:
        from imbstat.stats import batch_distribution

        results.results["batch"] = batch_distribution(ds, box_filter=source.box_filter, **batch)
        results.options["batch"] = dict(batch)
    return results


def _write_report(results: Any, out: Path) -> Path:
    """report.json, CSV tables, PNG figures and index.html of ``results`` in ``out``; the index path."""
    from imbstat.report.html import write_index

    doc = results.document()
    write_json(doc, out / "report.json")
    return write_index(doc, results.write_files(out), out)


@app.command("demo")
@handles_input_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the sample and its report.")] = Path("imbstat-demo"),
) -> None:
    """Generate the built-in sample dataset and write its statistics, anchors included, tables and figures to --out."""
    from imbstat.data.sample import write_sample

    sample = write_sample(out / "sample.json")
    # The anchor section is the survey's most distinctive figures; retinanet on the CPU takes seconds here.
    results = _compute(sample, Source(format="coco"), anchors=True)
    index = _write_report(results, out)
    for table in results.terminal_tables():
        stdout.print(table)
    echo(f"Report written to {out}/ (report.json, CSV tables, PNG figures); open {index} in a browser.")


@app.command("audit")
@handles_input_errors
@source_options(counting=False)
def audit(
    path: PathArg,
    config: Annotated[Path, typer.Option("--config", help="Audit config (TOML): checks = ['METRIC OP LIMIT', ...].")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="report.json (or dataset) to compare against for compare.*.")
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML to FILE.", metavar="FILE")] = None,
    markdown: Annotated[
        Path | None, typer.Option("--markdown", help="Write a Markdown summary to FILE.", metavar="FILE")
    ] = None,
    json: JsonOpt = None,
    device: DeviceOpt = "cpu",
    quiet: QuietOpt = False,
    source: Source = Source(),
) -> None:
    """Check thresholds on scores and statistics: exit 0 all pass, 1 any fails, 2 bad config or input."""
    from imbstat.report import audit as audits
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.metrics import metrics
    from imbstat.report.reading import Report

    cfg = audits.load_config(config)
    if cfg.needs_baseline and baseline is None:
        raise ImbstatError("checks name compare.* metrics; pass --baseline REPORT.json", config)
    for given in (path, baseline):
        if given is not None:
            path_kind(given)
    source = dataclasses.replace(source, include_crowd=cfg.include_crowd, include_difficult=cfg.include_difficult)
    remedies = _remedy_options(cfg.repeat_factor, cfg.class_balanced)
    batch = _batch_options(**cfg.batch) if cfg.batch else None  # a bad sampler fails before a long load
    report = Report.of(
        _compute(path, source, cfg.needs_anchors, cfg.preset, device, quiet=quiet, remedies=remedies, batch=batch)
    )
    values = metrics(report)
    if baseline is not None:
        base = _report(baseline, source, cfg.needs_anchors, cfg.preset, device, quiet, remedies, batch)
        values |= compare_reports(base, report).metrics()
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
    json: Annotated[str, typer.Option("--json", help="Write the merged report to FILE ('-' = stdout).")] = "-",
) -> None:
    """Join the reports of the shards of one run (--shard I/N) into exactly the report of the whole run."""
    from imbstat.report.merge import merge_documents, read_documents

    write_json(merge_documents(read_documents(reports), reports), json)
