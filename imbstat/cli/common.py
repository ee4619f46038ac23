"""What every command shares: the app, option aliases, the error edge, loading, output, progress."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
import typer.core
from rich.console import Console

from imbstat.anchors.options import MAX_MEMORY_MB, AnchorOptions
from imbstat.data import FORMATS, BoxFilter, Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.report.document import document, write_json
from imbstat.scores import MAX_GRID
from imbstat.stats.batch import MAX_EPOCHS
from imbstat.text import visible


class _OneLineErrors(typer.core.TyperGroup):
    """The app's click group: an option or argument click refuses (``--grid 257``, a missing PATH) is one
    ``imbstat: error:`` line and exit 2, as every other error, instead of typer's boxed usage text."""

    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            code = super().main(*args, standalone_mode=False, **kwargs)
        except typer.TyperException as e:  # typer's (vendored) click exceptions: UsageError, BadParameter, ...
            message = "; ".join(line.strip() for line in _usage_message(e).splitlines() if line.strip())
            ctx = getattr(e, "ctx", None)
            command = ctx.command_path if ctx is not None else "imbstat"
            echo(f"imbstat: error: {message} (see '{command} --help')", err=True)
            raise SystemExit(2) from None
        except typer.Abort:
            echo("imbstat: aborted", err=True)
            raise SystemExit(1) from None
        # without standalone mode, click returns a typer.Exit's code, or the command's value (None)
        raise SystemExit(code if isinstance(code, int) else 0)


def _usage_message(e: Exception) -> str:
    """click's message of a refused option as ``--option: expected ...``, like every other error of ours."""
    param = getattr(e, "param", None)
    if not isinstance(e, typer.BadParameter) or param is None:
        return e.format_message()  # type: ignore[attr-defined]
    name = param.opts[0] if param.param_type_name == "option" and param.opts else param.human_readable_name
    detail = e.message  # type: ignore[attr-defined]
    # typer checks min=/max= with pydantic, whose messages start "Input should be ..."
    return f"{name}: " + (f"expected {detail.removeprefix('Input should be ')}" if detail.startswith("Input should be")
                          else detail)  # fmt: skip


app = typer.Typer(
    cls=_OneLineErrors,
    name="imbstat",
    help="Imbalance statistics of object-detection datasets (Oksuz et al., TPAMI 2020).",
    invoke_without_command=True,  # 'imbstat' alone: the help (_help_without_a_command)
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _help_without_a_command(ctx: typer.Context) -> None:
    """'imbstat' without a command prints the help on stderr and exits 2, as a usage error does."""
    if ctx.invoked_subcommand is None:
        with contextlib.redirect_stdout(sys.stderr):  # typer's rich help prints itself rather than return its text
            text = ctx.get_help()
        if text:
            echo(text, err=True)
        raise typer.Exit(2)


F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T", str, Path)

PathArg = Annotated[
    Path,
    typer.Argument(
        help="Annotations: COCO/LVIS/Objects365 JSON, VOC folder, Open Images CSV, YOLO data YAML or folder.",
        show_default=False,
    ),
]
FormatOpt = Annotated[str | None, typer.Option("--format", help=f"Override detection: {', '.join(FORMATS)}.")]


def _unwritable(path: Path, folder: bool) -> str | None:
    """Why ``path`` cannot be written as a folder (or a file), or None: checked when the options are parsed,
    so that a run is refused before it loads and computes, not at its end."""
    if path.exists():
        if folder != path.is_dir():
            return "exists and is not a folder" if folder else "is a folder; expected a file"
        return None if os.access(path, os.W_OK) else "is not writable"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"cannot be made: {parent} is not a folder"
    return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot be made: {parent} is not writable"


def writable_folder(value: Path | None) -> Path | None:
    """typer callback of an output folder option (--out)."""
    if value is not None and (why := _unwritable(Path(value), folder=True)):
        raise typer.BadParameter(f"{visible(str(value))} {why}")
    return value


def writable_file(value: T | None) -> T | None:
    """typer callback of an output file option (--json, --junit, --markdown); '-' is stdout."""
    if value is not None and str(value) != "-" and (why := _unwritable(Path(value), folder=False)):
        raise typer.BadParameter(f"{visible(str(value))} {why}")
    return value


JsonOpt = Annotated[
    str | None,
    typer.Option(
        "--json", help="Write the JSON report to FILE ('-' = stdout).", metavar="FILE", callback=writable_file
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", help="Write CSV tables and PNG figures to DIR.", metavar="DIR", callback=writable_folder),
]
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
    """How to read a dataset and which of its boxes to count: the options every command that loads one shares."""

    options: LoadOptions = LoadOptions()  # --no-cache is cache=False
    box_filter: BoxFilter = BoxFilter()
    shard: str | None = None

    @classmethod
    def of(cls, format: str | None, split: str | None, classes: Path | None, sizes: Path | None,
           images: Path | None, shard: str | None, no_cache: bool, include_crowd: bool = False,
           include_difficult: bool = False) -> Source:  # fmt: skip
        """The source of a command's load options (FormatOpt ... NoCacheOpt, CrowdOpt, DifficultOpt), as given."""
        load_options = LoadOptions(format, split, classes, sizes, images, cache=False if no_cache else None)
        return cls(load_options, BoxFilter(include_crowd, include_difficult), shard)

    def load_options(self, format: str | None = None, cache: bool | None = None) -> LoadOptions:
        """The options, ``format`` overriding theirs and ``cache`` as for :func:`imbstat.load` (--no-cache wins)."""
        return dataclasses.replace(self.options, format=format or self.options.format,
                                   cache=False if self.options.cache is False else cache)  # fmt: skip

    def load(self, path: Path, format: str | None = None, notes: bool = True, cache: bool | None = None) -> Dataset:
        """Load ``path`` with :meth:`load_options`; note any problems on stderr."""
        shard = _parse_shard(self.shard) if self.shard else None  # before a long load
        ds = load(path, options=self.load_options(format, cache))
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
NoCacheOpt = Annotated[
    bool, typer.Option("--no-cache", help="Neither read nor write the Parquet cache of a large source.")
]


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ImbstatError(f"--shard {text!r}: expected I/N with whole numbers, e.g. 0/4") from None
    if not 0 <= index < count:
        raise ImbstatError(f"--shard {text!r}: expected 0 <= I < N")
    return index, count


def anchor_presets(presets: list[str] | None, **fields: Any) -> tuple[AnchorOptions, ...]:
    """One AnchorOptions per --preset given, in order (the default preset alone when none is), with the other
    anchor options ``fields`` (AnchorOptions' names): each built, and so checked, before a long load."""
    return tuple(AnchorOptions(preset=preset, **fields) for preset in presets or ["retinanet"])


def labelled_presets(anchors: bool, given: tuple[AnchorOptions, ...]) -> tuple[AnchorOptions, ...]:
    """The anchor options a command with an ``--anchors`` switch labels under: all given with it, none without.

    Anchor options given without ``--anchors`` would be ignored, so they are an error (nothing a user
    asked for is dropped silently); only a default left as it is passes.
    """
    if anchors:
        return given
    if given != (AnchorOptions(),):
        raise ImbstatError("--preset, --device and the other anchor options apply to anchor labelling: add --anchors")
    return ()


def emit(command: str, ds: Dataset, body: dict, options: dict, json_target: str | None, tables: list) -> None:
    """Print tables (unless the JSON goes to stdout) and write the JSON report."""
    if json_target != "-":
        for table in tables:
            stdout.print(table)
    if json_target:
        write_json(document(command, ds, body, options), json_target)


AnchorsOpt = Annotated[bool, typer.Option("--anchors", help="Also label the anchors of --preset (fg/bg, IoU; slower).")]
RepeatFactorOpt = Annotated[
    float | None,
    typer.Option("--repeat-factor", metavar="T", help="Also repeat-factor sampling (LVIS) with threshold T > 0."),
]
ClassBalancedOpt = Annotated[
    float | None,
    typer.Option("--class-balanced", metavar="BETA", help="Also class-balanced loss weights, 0 <= BETA < 1."),
]
TrainBatchOpt = Annotated[
    int | None, typer.Option("--batch-size", min=1, help="Training images per batch (the batch-level section).")
]
SamplerOpt = Annotated[
    str, typer.Option("--sampler", help="How epochs order the images: random, aspect-group or repeat-factor:T.")
]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, max=MAX_EPOCHS, help="Epochs simulated.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (same seed, same numbers).")]


# the 2-D W1 of a G×G map costs ~G⁴ (imbstat/scores.py MAX_GRID): 2 s and 200 MB at 64, minutes and GBs beyond
GRID_HELP = f"Cells per side of {{}} (at most {MAX_GRID}: the exact 2-D W1's time grows as grid⁴)."
# One alias per field of AnchorOptions a command may offer (threads: every core, as the library's default);
# a command's defaults are AnchorOptions' (labelled_presets compares against AnchorOptions()).
_PRESET_HELP = ("retinanet (= mmdet-retinanet), retinanet-v1, rpn, torchvision-retinanet, torchvision-rpn, "
                "detectron2-retinanet, atss, fcos, or a preset .toml file.")  # fmt: skip
PresetOpt = Annotated[str, typer.Option("--preset", help=_PRESET_HELP)]
# --preset of a command that labels under several presets side by side (anchor_presets)
PresetsOpt = Annotated[
    list[str] | None,
    typer.Option("--preset", help=f"{_PRESET_HELP} Repeat it to label under several presets, side by side."),
]
DeviceOpt = Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")]
MethodOpt = Annotated[
    str, typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse, dense or fused (Triton, CUDA).")
]
# --device-batch: --batch-size is the training batch (batch-dist, report's batch section)
DeviceBatchOpt = Annotated[int, typer.Option("--device-batch", min=1, help="Images per batch of anchor labelling.")]
AnchorGridOpt = Annotated[int, typer.Option("--grid", min=2, max=MAX_GRID, help=GRID_HELP.format("the spatial maps"))]
MemoryOpt = Annotated[
    float, typer.Option("--memory-mb", min=1, max=MAX_MEMORY_MB, help="Device memory for one dense IoU block.")
]
# --anchor-sampler: --sampler orders the training epochs (batch-dist, report's batch section)
AnchorSamplerOpt = Annotated[
    str | None,
    typer.Option("--anchor-sampler", metavar="random:NUM:POS_FRACTION", show_default=False,
                 help="Sampling stage after the labels (mmdetection RandomSampler), e.g. random:256:0.5, or "
                 "none; default: the preset's (rpn presets: random:256:0.5)."),
]  # fmt: skip
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


@contextlib.contextmanager
def progress(total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar with images/s on stderr; silent when --quiet or not a terminal."""
    if quiet or not stderr.is_terminal:  # before the imports: rich.progress is ~30 ms of a small run
        yield lambda n: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class ImagesPerSecond(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            return Text(f"{task.speed or 0:,.0f} images/s")

    columns = (TextColumn("labeling anchors"), BarColumn(), MofNCompleteColumn(), ImagesPerSecond(),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=stderr, transient=True) as bar:
        task = bar.add_task("anchors", total=total)
        yield lambda n: bar.advance(task, n)


def report_written(paths: list[Path]) -> None:
    echo(f"wrote {len(paths)} files to {paths[0].parent}" if paths else "wrote no files", err=True)


# The eval command's and the report's eval section's options (imbstat/cli/evaluate.py)
TrainOpt = Annotated[
    Path | None,
    typer.Option("--train", metavar="TRAIN", help="Training annotations: class frequencies and LVIS groups by them."),
]
MaxDetsOpt = Annotated[
    int, typer.Option("--max-dets", min=10, max=100_000, help="COCOeval's last maxDets (detections per image).")
]
DetectionsOpt = Annotated[
    Path | None,
    typer.Option("--detections", metavar="DETS", help="COCO results JSON: adds the eval section (AP per class)."),
]
