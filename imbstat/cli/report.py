"""Whole-dataset commands: report, summary, compare, demo."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from imbstat.analysis import Results, compute
from imbstat.anchors.options import AnchorOptions
from imbstat.cli.common import (
    AnchorsOpt,
    ClassBalancedOpt,
    DetectionsOpt,
    EpochsOpt,
    JsonOpt,
    MaxDetsOpt,
    OutOpt,
    PathArg,
    QuietOpt,
    RepeatFactorOpt,
    SamplerOpt,
    SeedOpt,
    Source,
    TrainBatchOpt,
    TrainOpt,
    anchor_options,
    app,
    echo,
    handles_input_errors,
    labelled_presets,
    progress,
    report_written,
    source_options,
    stdout,
)
from imbstat.cli.evaluate import eval_options, warn_skipped
from imbstat.data import BoxFilter, LoadOptions
from imbstat.data.source import path_kind
from imbstat.errors import ImbstatError
from imbstat.report.build import report_document, terminal_tables, write_files
from imbstat.report.document import envelope, write_json, write_text
from imbstat.sections.spec import Run


@app.command("report")
@handles_input_errors
@source_options()
@anchor_options("preset", "device", "method", "batch_size", "sampler", several=True)
def report(
    path: PathArg,
    anchors: AnchorsOpt = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.", metavar="DIR")] = Path("imbstat-report"),
    anchor: tuple[AnchorOptions, ...] = (AnchorOptions(),),
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
    detections: DetectionsOpt = None,
    train: TrainOpt = None,
    max_dets: MaxDetsOpt = 100,
    source: Source = Source(),
) -> None:
    """Every statistic in one folder: report.json, CSV tables, PNG figures and a self-contained index.html."""
    from imbstat.report.reading import Report
    from imbstat.report.taxonomy import taxonomy_table

    # --preset repeated: the anchors section holds the further presets side by side (README, "Several presets")
    presets = labelled_presets(anchors, anchor)
    run = Run(source.box_filter, presets[0] if presets else None, repeat_factor=repeat_factor,
              class_balanced=class_balanced, batch=_batch_options(batch_size, sampler, epochs, seed),
              more_anchors=presets[1:], evaluation=eval_options(detections, train, max_dets, source.shard))  # fmt: skip
    results = _compute_on_dask(path, source, run, dask, shards) if dask else _compute(path, source, run, quiet)
    if detections is not None:
        warn_skipped(detections, results.results["eval"])

    index = _write_report(results, out)
    stdout.print(taxonomy_table(Report.of(results)))
    echo(f"Report written to {out}/; open {index} in a browser.")


@app.command("summary")
@handles_input_errors
@source_options()
@anchor_options("preset", "device")
def summary(
    path: PathArg,
    anchors: AnchorsOpt = False,
    json: JsonOpt = None,
    anchor: AnchorOptions = AnchorOptions(),
    quiet: QuietOpt = False,
    source: Source = Source(),
) -> None:
    """One score per imbalance problem of the survey's Table 1: class, scale, spatial, objective."""
    from dataclasses import asdict as row_dict

    from imbstat.report.reading import Report
    from imbstat.report.taxonomy import taxonomy_rows, taxonomy_table

    presets = labelled_presets(anchors, anchor)
    results = _compute(path, source, Run(source.box_filter, presets[0] if presets else None), quiet)
    report = Report.of(results)
    if json != "-":
        stdout.print(taxonomy_table(report))
    if json:
        rows = [row_dict(r) for r in taxonomy_rows(report)]
        write_json(report_document(results, "summary") | {"taxonomy": rows}, json)


SideArg = Annotated[
    Path, typer.Argument(help="A dataset (as for report) or the report.json of 'imbstat report'.", show_default=False)
]


@app.command("compare")
@handles_input_errors
@source_options()
@anchor_options("preset", "device")
def compare(
    a: SideArg,
    b: SideArg,
    json: JsonOpt = None,
    out: OutOpt = None,
    anchors: AnchorsOpt = False,
    anchor: AnchorOptions = AnchorOptions(),
    format_b: Annotated[str | None, typer.Option("--format-b", help="Format of B, when not --format.")] = None,
    quiet: QuietOpt = False,
    repeat_factor: RepeatFactorOpt = None,
    class_balanced: ClassBalancedOpt = None,
    source: Source = Source(),
) -> None:
    """Shift of every distribution from A to B (train vs val, old vs new): W1 between them, classes gained and lost."""
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.compare import terminal_tables as compare_tables
    from imbstat.report.compare import write_files as write_compare_files

    presets = labelled_presets(anchors, anchor)
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


def _report(path: Path, source: Source, run: Run, quiet: bool) -> Any:
    """The saved report at ``path`` read back, or the report of the dataset there, computed now."""
    from imbstat.report.reading import Report, read_report

    doc = read_report(path)
    if doc is not None:
        return Report.from_document(doc, path)
    return Report.of(_compute(path, source, run, quiet))


def _batch_options(
    batch_size: int | None, sampler: str = "random", epochs: int = 10, seed: int = 0
) -> dict[str, Any] | None:
    """The keywords of ``batch_distribution`` when the training batch is given (the sampler checked now)."""
    from imbstat.stats.batch import Sampler

    chosen = Sampler.parse(sampler)
    if batch_size is None:
        return None
    return {"batch_size": batch_size, "sampler": str(chosen), "epochs": epochs, "seed": seed}


def _compute(path: Path, source: Source, run: Run, quiet: bool = False) -> Results:
    """Load and compute every section ``run`` asks for (:func:`imbstat.compute`), with a progress bar for anchors."""
    ds = source.load(path)
    with progress(ds.num_images * (1 + len(run.more_anchors)), quiet or not run.anchors) as advance:
        return compute(ds, run=run, progress=advance)


def _compute_on_dask(path: Path, source: Source, run: Run, spec: str, shards: int | None) -> Results:
    """The report's Results from one Dask task per shard (:func:`imbstat.analysis.compute_distributed`)."""
    from imbstat.analysis import compute_distributed, dask_client

    if source.shard:
        raise ImbstatError("--dask runs every shard itself; leave out --shard")
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
    out: Annotated[Path, typer.Option("--out", help="Folder for the sample and its report.")] = Path("imbstat-demo"),
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
@source_options(counting=False)
@anchor_options("device")
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
    anchor: AnchorOptions = AnchorOptions(),
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
    anchor = dataclasses.replace(anchor, preset=cfg.preset)  # a bad preset fails before a long load
    batch = _batch_options(**cfg.batch) if cfg.batch else None  # a bad sampler fails before a long load
    train = Path(cfg.train) if cfg.train else None
    evaluation = eval_options(Path(cfg.detections), train, cfg.max_dets) if cfg.detections else None
    run = Run(BoxFilter(cfg.include_crowd, cfg.include_difficult), anchor if cfg.needs_anchors else None,
              repeat_factor=cfg.repeat_factor, class_balanced=cfg.class_balanced, batch=batch,
              evaluation=evaluation)  # fmt: skip
    report = Report.of(_compute(path, source, run, quiet))
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
    json: Annotated[str, typer.Option("--json", help="Write the merged report to FILE ('-' = stdout).")] = "-",
) -> None:
    """Join the reports of the shards of one run (--shard I/N) into exactly the report of the whole run."""
    from imbstat.report.merge import merge_documents, read_documents

    write_json(merge_documents(read_documents(reports), reports), json)
