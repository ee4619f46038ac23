"""The ``imbstat`` command: parse options, call the library, render. Nothing else."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from imbstat import __version__
from imbstat.data import FORMATS, BoxFilter, Dataset, load
from imbstat.errors import ImbstatError
from imbstat.report import terminal
from imbstat.report.document import document, write_json

app = typer.Typer(
    name="imbstat",
    help="Imbalance statistics of object-detection datasets (Oksuz et al., TPAMI 2020).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])

PathArg = Annotated[
    Path,
    typer.Argument(
        help="Annotations: COCO/LVIS/Objects365 JSON, VOC folder, Open Images CSV, YOLO data YAML or folder.",
        show_default=False,
    ),
]
FormatOpt = Annotated[str | None, typer.Option("--format", help=f"Override detection: {', '.join(FORMATS)}.")]
JsonOpt = Annotated[
    str | None, typer.Option("--json", help="Write the JSON report to FILE ('-' = stdout).", metavar="FILE")
]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Write CSV tables and PNG figures to DIR.", metavar="DIR")]
CrowdOpt = Annotated[bool, typer.Option("--include-crowd", help="Count COCO crowd boxes (iscrowd=1).")]
DifficultOpt = Annotated[bool, typer.Option("--include-difficult", help="Count VOC difficult boxes.")]
SplitOpt = Annotated[str | None, typer.Option("--split", help="VOC ImageSets/Main split or YOLO split.")]
ClassesOpt = Annotated[Path | None, typer.Option("--classes", help="Open Images class-descriptions CSV.")]
SizesOpt = Annotated[Path | None, typer.Option("--sizes", help="Image sizes CSV: ImageID,Width,Height.")]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="Folder of images whose headers give sizes.")]

stdout = Console()
stderr = Console(stderr=True)


def handles_input_errors(command: F) -> F:
    """The one place where bad input becomes a one-line message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ImbstatError as e:
            typer.echo(f"imbstat: error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _load(
    path: Path,
    format: str | None,
    split: str | None = None,
    classes: Path | None = None,
    sizes: Path | None = None,
    images: Path | None = None,
) -> Dataset:
    ds = load(path, format, split=split, classes=classes, sizes=sizes, images=images)
    if len(ds.problems):
        counts = ", ".join(f"{k} {n:,}" for k, n in ds.problems.counts().items())
        typer.echo(
            f"imbstat: note: {len(ds.problems):,} problems while loading ({counts}); "
            f"'imbstat validate {path}' lists them",
            err=True,
        )
    return ds


def _emit(command: str, ds: Dataset, body: dict, options: dict, json_target: str | None, tables: list) -> None:
    """Print tables (unless the JSON goes to stdout) and write the JSON report."""
    if json_target != "-":
        for table in tables:
            stdout.print(table)
    if json_target:
        write_json(document(command, ds, body, options), json_target)


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
    _emit("info", ds, {}, {}, json, [terminal.dataset_table(ds), terminal.problems_table(ds)])


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

    ds = _load(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = class_distribution(ds, box_filter)
    _emit(
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

        _written(class_tables(result, out) + plot_classes(result, out))


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

    ds = _load(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = scale_distribution(ds, box_filter, bins=bins)
    if result.missing:
        typer.echo(f"imbstat: note: {result.missing}", err=True)
    _emit("scale", ds, result.to_dict(), {**asdict(box_filter), "bins": bins}, json, [terminal.scale_table(result)])
    if out:
        from imbstat.plots import plot_scale
        from imbstat.report.tables import scale_tables

        _written(scale_tables(result, out) + plot_scale(result, out))


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

    ds = _load(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    result = location_distribution(ds, box_filter, grid=grid)
    _emit(
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

        _written(location_tables(result, out) + plot_location(result, out, per_class=12 if per_class else 0))


PresetOpt = Annotated[str, typer.Option("--preset", help="retinanet, retinanet-v1, rpn, or a preset .toml file.")]


@app.command("anchors")
@handles_input_errors
def anchors(
    preset: PresetOpt = "retinanet",
    image_size: Annotated[str, typer.Option("--image-size", help="WIDTHxHEIGHT of an original image.")] = "640x480",
    json: JsonOpt = None,
) -> None:
    """Print the anchor set of one image size under a preset, to check a preset before a long run."""
    from imbstat.anchors.generate import anchor_grid, padded_size
    from imbstat.anchors.presets import load_preset

    chosen = load_preset(preset)
    width, height = _image_size(image_size)
    if json != "-":
        stdout.print(terminal.anchor_grid_table(chosen, width, height))
    if json:
        import numpy as np

        pad_w, pad_h = padded_size(chosen, np.array([width]), np.array([height]))
        grid = anchor_grid(chosen, int(pad_w[0]), int(pad_h[0]))
        levels = [
            {"stride": s, "rows": r, "cols": c, "shapes": chosen.shapes(s), "anchors": r * c * chosen.anchors_per_cell}
            for s, (r, c) in zip(chosen.strides, grid.cells, strict=True)
        ]
        doc = {"preset": chosen.to_dict(), "image_size": [width, height], "padded_size": [grid.padded_width,
               grid.padded_height], "levels": levels, "total": len(grid)}  # fmt: skip
        write_json({"imbstat_version": __version__, "command": "anchors", **doc}, json)


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
    preset: PresetOpt = "retinanet",
    device: Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")] = "cpu",
    method: Annotated[str, typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse or dense.")] = (
        "auto"
    ),
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")] = 32,
    grid: Annotated[int, typer.Option(min=2, max=256, help="Cells per side of the spatial maps.")] = 32,
    format: FormatOpt = None,
    json: JsonOpt = None,
    out: OutOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    memory: Annotated[float, typer.Option("--memory-mb", min=1, help="Device memory for one dense IoU block.")] = 1024,
) -> None:
    """Figs. 4, 12a, 14, 15: label every anchor (MaxIoUAssigner) and report fg/bg, per class, IoU, per GT, maps."""
    from imbstat.anchors.presets import load_preset
    from imbstat.stats import anchor_stats

    chosen = load_preset(preset)
    ds = _load(path, format, split, classes, sizes, images)
    box_filter = BoxFilter(include_crowd, include_difficult)
    with _progress(ds.num_images, quiet) as advance:
        result = anchor_stats(ds, chosen, device, method, batch_size, box_filter, grid, advance, memory)
    options = {**asdict(box_filter), "device": device, "method": method, "batch_size": batch_size, "grid": grid}
    _emit("anchor-iou", ds, result.to_dict(), options, json, terminal.anchor_tables(result))
    if out:
        from imbstat.plots import plot_anchors
        from imbstat.report.tables import anchor_tables

        _written(anchor_tables(result, ds.images.image_id, out) + plot_anchors(result, out))


@contextlib.contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar with images/s on stderr; silent when --quiet or not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class ImagesPerSecond(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            return Text(f"{task.speed or 0:,.0f} images/s")

    if quiet or not stderr.is_terminal:
        yield lambda n: None
        return
    columns = (TextColumn("labeling anchors"), BarColumn(), MofNCompleteColumn(), ImagesPerSecond(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("anchors", total=total)
        yield lambda n: bar.advance(task, n)


AnchorsOpt = Annotated[bool, typer.Option("--anchors", help="Also label the anchors of --preset (fg/bg, IoU; slower).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")]
MethodOpt = Annotated[str, typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse or dense.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@app.command("report")
@handles_input_errors
def report(
    path: PathArg,
    anchors: AnchorsOpt = False,
    out: Annotated[Path, typer.Option("--out", help="Folder for the report.", metavar="DIR")] = Path("imbstat-report"),
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    method: MethodOpt = "auto",
    batch_size: BatchSizeOpt = 32,
    format: FormatOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Every statistic in one folder: report.json, CSV tables, PNG figures and a self-contained index.html."""
    results = _compute(path, format, BoxFilter(include_crowd, include_difficult), split, classes, sizes, images,
                       anchors, preset, device, method, batch_size, quiet)  # fmt: skip
    doc, index = _write_report(results, out)
    stdout.print(_taxonomy_table(doc))
    stdout.print(f"Report written to {out}/; open {index} in a browser.")


@app.command("summary")
@handles_input_errors
def summary(
    path: PathArg,
    anchors: AnchorsOpt = False,
    json: JsonOpt = None,
    preset: PresetOpt = "retinanet",
    device: DeviceOpt = "cpu",
    format: FormatOpt = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """One score per imbalance problem of the survey's Table 1: class, scale, spatial, objective."""
    from dataclasses import asdict as row_dict

    from imbstat.report.taxonomy import taxonomy_rows

    box_filter = BoxFilter(include_crowd, include_difficult)
    results = _compute(path, format, box_filter, split, classes, sizes, images, anchors, preset, device, quiet=quiet)
    doc = results.document() | {"command": "summary"}
    if json != "-":
        stdout.print(_taxonomy_table(doc))
    if json:
        write_json(doc | {"taxonomy": [row_dict(r) for r in taxonomy_rows(doc)]}, json)


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
    format: FormatOpt = None,
    format_b: Annotated[str | None, typer.Option("--format-b", help="Format of B, when not --format.")] = None,
    include_crowd: CrowdOpt = False,
    include_difficult: DifficultOpt = False,
    split: SplitOpt = None,
    classes: ClassesOpt = None,
    sizes: SizesOpt = None,
    images: ImagesOpt = None,
    quiet: QuietOpt = False,
) -> None:
    """Shift of every distribution from A to B (train vs val, old vs new): W1 between them, classes gained and lost."""
    from imbstat.report.compare import compare as compare_reports
    from imbstat.report.compare import read_report, terminal_tables, write_files

    for path in (a, b):  # before a long computation of A
        if not path.exists():
            raise ImbstatError("no such file or directory", path)
    box_filter = BoxFilter(include_crowd, include_difficult)
    load_options = (split, classes, sizes, images)
    docs = [
        read_report(path)
        or _compute(path, fmt, box_filter, *load_options, anchors, preset, device, quiet=quiet).document()
        for path, fmt in ((a, format), (b, format_b or format))
    ]
    result = compare_reports(*docs)
    for key, why in result["skipped"].items():
        typer.echo(f"imbstat: note: {key} not compared: {why}", err=True)
    if json != "-":
        for table in terminal_tables(result):
            stdout.print(table)
    if json:
        write_json(result, json)
    if out:
        _written(write_files(*docs, result, out))


def _compute(
    path: Path,
    format: str | None,
    box_filter: BoxFilter,
    split: str | None = None,
    classes: Path | None = None,
    sizes: Path | None = None,
    images: Path | None = None,
    anchors: bool = False,
    preset: str = "retinanet",
    device: str = "cpu",
    method: str = "auto",
    batch_size: int = 32,
    quiet: bool = False,
) -> Any:
    """Load and compute every statistic (``report.build.compute``), with a progress bar when labeling anchors."""
    from imbstat.anchors.presets import load_preset
    from imbstat.report.build import compute

    chosen = load_preset(preset)  # a bad preset fails before a long load
    ds = _load(path, format, split, classes, sizes, images)
    with _progress(ds.num_images, quiet or not anchors) as advance:
        return compute(ds, box_filter, anchors, chosen, device, method, batch_size, advance)


def _write_report(results: Any, out: Path) -> tuple[dict, Path]:
    """report.json, CSV tables, PNG figures and index.html of ``results`` in ``out``; the document and index path."""
    from imbstat.report.html import write_index

    doc = results.document()  # once: the anchor scores solve transport problems
    write_json(doc, out / "report.json")
    return doc, write_index(doc, results.write_files(out), out)


def _taxonomy_table(doc: dict) -> Any:
    """The survey's Table 1 with the scores of ``doc``, as a rich table."""
    from rich.table import Table
    from rich.text import Text

    from imbstat.report.taxonomy import taxonomy_rows

    table = Table(title="imbalance problems (survey Table 1): 0 = balanced, 1 = extreme", title_justify="left")
    table.add_column("type", ratio=1)
    table.add_column("problem", ratio=1)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("statistic", ratio=2)
    for row in taxonomy_rows(doc):
        statistic = Text(row.statistic)
        if row.note:
            statistic.append(f"\n{row.note}", style="dim")
        score = "–" if row.value is None else f"{row.value:.3f}"
        table.add_row(Text(row.problem), Text(row.sub_problem), score, statistic)
    return table


@app.command("demo")
@handles_input_errors
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the sample and its report.")] = Path("imbstat-demo"),
) -> None:
    """Generate the built-in sample dataset and write its statistics, tables and figures to --out."""
    from imbstat.data.sample import write_sample
    from imbstat.report.build import compute

    sample = write_sample(out / "sample.json")
    results = compute(_load(sample, "coco"))
    _, index = _write_report(results, out)
    for table in results.terminal_tables():
        stdout.print(table)
    stdout.print(f"Report written to {out}/ (report.json, CSV tables, PNG figures); open {index} in a browser.")


def _written(paths: list[Path]) -> None:
    typer.echo(f"wrote {len(paths)} files to {paths[0].parent}" if paths else "wrote no files", err=True)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
