"""What every command shares: the app, option aliases, the error edge, loading, output, progress."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from imbstat.data import FORMATS, Dataset, load
from imbstat.errors import ImbstatError
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


def load_dataset(
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


def emit(command: str, ds: Dataset, body: dict, options: dict, json_target: str | None, tables: list) -> None:
    """Print tables (unless the JSON goes to stdout) and write the JSON report."""
    if json_target != "-":
        for table in tables:
            stdout.print(table)
    if json_target:
        write_json(document(command, ds, body, options), json_target)


PresetOpt = Annotated[str, typer.Option("--preset", help="retinanet, retinanet-v1, rpn, or a preset .toml file.")]


AnchorsOpt = Annotated[bool, typer.Option("--anchors", help="Also label the anchors of --preset (fg/bg, IoU; slower).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")]
MethodOpt = Annotated[str, typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse or dense.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@contextlib.contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
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


def report_written(paths: list[Path]) -> None:
    typer.echo(f"wrote {len(paths)} files to {paths[0].parent}" if paths else "wrote no files", err=True)
