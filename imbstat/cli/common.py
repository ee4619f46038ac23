"""What every command shares: the app, option aliases, the error edge, loading, output, progress."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from imbstat.data import FORMATS, BoxFilter, Dataset, load
from imbstat.errors import ImbstatError
from imbstat.report.document import document, write_json
from imbstat.text import visible

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

# Tables only (terminal.PlainTable), lines of text through echo(); markup off as well, so that a string
# that slips past them is still shown as written.
stdout = Console(markup=False, emoji=False)
stderr = Console(stderr=True, markup=False, emoji=False)


def echo(message: str, err: bool = False) -> None:
    """One line of ours to stdout (or stderr): user data in it (paths, names) shown, control characters visible."""
    typer.echo(visible(message), err=err)


def handles_input_errors(command: F) -> F:
    """The one place where bad input becomes a one-line message and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ImbstatError as e:
            echo(f"imbstat: error: {e}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


@dataclass(frozen=True)
class Source:
    """How to read a dataset: the options every command that loads one shares."""

    format: str | None = None
    split: str | None = None
    classes: Path | None = None
    sizes: Path | None = None
    images: Path | None = None
    include_crowd: bool = False
    include_difficult: bool = False
    shard: str | None = None
    no_cache: bool = False

    @property
    def box_filter(self) -> BoxFilter:
        return BoxFilter(self.include_crowd, self.include_difficult)

    def load(self, path: Path, format: str | None = None, notes: bool = True, cache: bool | None = None) -> Dataset:
        """Load ``path`` (``format`` overrides ``self.format``); note any problems on stderr.

        ``cache`` as for :func:`imbstat.load`; ``--no-cache`` overrides it.
        """
        shard = _parse_shard(self.shard) if self.shard else None  # before a long load
        ds = load(path, format or self.format, split=self.split, classes=self.classes, sizes=self.sizes,
                  images=self.images, cache=False if self.no_cache else cache)  # fmt: skip
        if shard:
            ds = ds.take_shard(*shard)
        if notes and len(ds.problems):
            counts = ", ".join(f"{k} {n:,}" for k, n in ds.problems.counts().items())
            echo(
                f"imbstat: note: {len(ds.problems):,} problems while loading ({counts}); "
                f"'imbstat validate {path}' lists them",
                err=True,
            )
        return ds


ShardOpt = Annotated[
    str | None,
    typer.Option("--shard", help="Only shard I of N (0-based, images by file order): I/N. 'imbstat merge' joins them."),
]
_LOAD_OPTIONS = {
    "format": FormatOpt,
    "split": SplitOpt,
    "classes": ClassesOpt,
    "sizes": SizesOpt,
    "images": ImagesOpt,
    "shard": ShardOpt,
    "no_cache": Annotated[
        bool, typer.Option("--no-cache", help="Neither read nor write the Parquet cache of a large source.")
    ],
}
_COUNT_OPTIONS = {"include_crowd": CrowdOpt, "include_difficult": DifficultOpt}
_FLAGS = {"no_cache", "include_crowd", "include_difficult"}


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ImbstatError(f"--shard {text!r}: expected I/N with whole numbers, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ImbstatError(f"--shard {text!r}: expected 0 <= I < N")
    return index, count


def source_options(counting: bool = True) -> Callable[[F], F]:
    """Give a command the shared dataset options, passed to it as one ``source: Source`` argument.

    The options are declared once here and added to the command's signature,
    which typer reads; ``counting`` adds --include-crowd and --include-difficult.
    """
    options = _LOAD_OPTIONS | (_COUNT_OPTIONS if counting else {})
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False if name in _FLAGS else None,
                          annotation=annotation)
        for name, annotation in options.items()
    ]  # fmt: skip

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)  # typer reads annotations as objects
        own = [p for p in signature.parameters.values() if p.name != "source"]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            source = Source(**{name: kwargs.pop(name) for name in options})
            return command(*args, source=source, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=own + added)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


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
RepeatFactorOpt = Annotated[
    float | None,
    typer.Option("--repeat-factor", metavar="T", help="Also repeat-factor sampling (LVIS) with threshold T > 0."),
]
ClassBalancedOpt = Annotated[
    float | None,
    typer.Option("--class-balanced", metavar="BETA", help="Also class-balanced loss weights, 0 <= BETA < 1."),
]
MethodOpt = Annotated[
    str, typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse, dense or fused (Triton, CUDA).")
]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=1, help="Images per batch.")]
DeviceBatchOpt = Annotated[int, typer.Option("--device-batch", min=1, help="Images per batch of anchor labelling.")]
TrainBatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Training images per batch (the batch-level section).")
]
SamplerOpt = Annotated[
    str, typer.Option("--sampler", help="How epochs order the images: random, aspect-group or repeat-factor:T.")
]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="Epochs simulated.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (same seed, same numbers).")]
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
    echo(f"wrote {len(paths)} files to {paths[0].parent}" if paths else "wrote no files", err=True)
