"""What every command shares: the app, option aliases, the error edge, loading, output, progress."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from imbstat.anchors.options import AnchorOptions
from imbstat.data import FORMATS, BoxFilter, Dataset, LoadOptions, load
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
    """How to read a dataset and which of its boxes to count: the options every command that loads one shares."""

    options: LoadOptions = LoadOptions()  # --no-cache is cache=False
    box_filter: BoxFilter = BoxFilter()
    shard: str | None = None

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
# One option per field of LoadOptions but ``cache``, which --no-cache sets to False.
_LOAD_OPTIONS = {"format": FormatOpt, "split": SplitOpt, "classes": ClassesOpt, "sizes": SizesOpt, "images": ImagesOpt}
assert {*_LOAD_OPTIONS, "cache"} == {f.name for f in dataclasses.fields(LoadOptions)}, "a load option is missing"
_SOURCE_OPTIONS = {
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
    options = _LOAD_OPTIONS | _SOURCE_OPTIONS | (_COUNT_OPTIONS if counting else {})
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False if name in _FLAGS else None,
                          annotation=annotation)
        for name, annotation in options.items()
    ]  # fmt: skip

    def build(given: dict[str, Any]) -> Source:
        load_options = LoadOptions(**{name: given[name] for name in _LOAD_OPTIONS},
                                   cache=False if given["no_cache"] else None)  # fmt: skip
        box_filter = BoxFilter(given["include_crowd"], given["include_difficult"]) if counting else BoxFilter()
        return Source(load_options, box_filter, given["shard"])

    return _grouped("source", added, build)


def anchor_options(*names: str, several: bool = False) -> Callable[[F], F]:
    """Give a command the anchor options ``names`` (fields of AnchorOptions), passed as one ``anchor: AnchorOptions``.

    They take the place of the command's ``anchor`` parameter (and so its place in --help), with the
    defaults of :class:`AnchorOptions`; the fields not named keep their defaults. With ``several``,
    --preset may be repeated and ``anchor`` is a tuple of AnchorOptions, one per preset in the order
    given (the default preset alone when none is), each built (and so checked) before the command runs.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(AnchorOptions)}
    annotations = {**_ANCHOR_OPTIONS, "preset": _SEVERAL_PRESETS} if several else _ANCHOR_OPTIONS

    def decorate(command: F) -> F:
        own = inspect.signature(command).parameters
        # the parameter of a field, where its name would clash with a command's own (report's training batch_size)
        field_of = {_ANCHOR_PARAMETERS.get(name, name): name for name in names}
        # ... or where the command has an option of that name (report's training --sampler): --anchor-sampler
        clashing = {f"anchor_{p}": name for p, name in field_of.items() if p in own}
        field_of = {p: name for p, name in field_of.items() if p not in own} | clashing
        added = [inspect.Parameter(param, inspect.Parameter.KEYWORD_ONLY,
                                   default=None if several and name == "preset" else defaults[name],
                                   annotation=(_ANCHOR_RENAMED if param in clashing else annotations)[name])
                 for param, name in field_of.items()]  # fmt: skip

        def build(given: dict[str, Any]) -> AnchorOptions | tuple[AnchorOptions, ...]:
            fields = {field_of[k]: v for k, v in given.items()}
            if not several:
                return AnchorOptions(**fields)
            presets = fields.pop("preset", None) or [defaults["preset"]]
            return tuple(AnchorOptions(preset=preset, **fields) for preset in presets)

        return _grouped("anchor", added, build)(command)

    return decorate


def labelled_presets(anchors: bool, anchor: AnchorOptions | tuple[AnchorOptions, ...]) -> tuple[AnchorOptions, ...]:
    """The anchor options a command with an ``--anchors`` switch labels under: all given with it, none without.

    Anchor options given without ``--anchors`` would be ignored, so they are an error (nothing a user
    asked for is dropped silently); only a default left as it is passes.
    """
    given = anchor if isinstance(anchor, tuple) else (anchor,)
    if anchors:
        return given
    if given != (AnchorOptions(),):
        raise ImbstatError("--preset, --device and the other anchor options apply to anchor labelling: add --anchors")
    return ()


def _grouped(name: str, added: list[inspect.Parameter], build: Callable[[dict[str, Any]], Any]) -> Callable[[F], F]:
    """A decorator that shows typer the ``added`` options in place of the command's parameter ``name``
    and passes them to the command as ``name=build({option: value})``."""

    def decorate(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)  # typer reads annotations as objects
        own = list(signature.parameters.values())
        at = [p.name for p in own].index(name)
        # of the parameter's kind, so that the signature stays valid wherever the parameter stands
        parameters = own[:at] + [p.replace(kind=own[at].kind) for p in added] + own[at + 1 :]

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {p.name: kwargs.pop(p.name) for p in added}
            return command(*args, **{name: build(given)}, **kwargs)

        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


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
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="Epochs simulated.")]
SeedOpt = Annotated[int, typer.Option("--seed", min=0, help="Seed of the simulation (same seed, same numbers).")]


def _anchor_sampler(flag: str) -> Any:
    """The option of AnchorOptions.sampler under ``flag``."""
    return Annotated[
        str | None,
        typer.Option(flag, metavar="random:NUM:POS_FRACTION", show_default=False,
                     help="Sampling stage after the labels (mmdetection RandomSampler), e.g. random:256:0.5, or "
                     "none; default: the preset's (rpn presets: random:256:0.5)."),
    ]  # fmt: skip


# One option per field of AnchorOptions a command may offer (threads: every core, as the library's default).
_ANCHOR_PARAMETERS = {"batch_size": "device_batch"}
_ANCHOR_OPTIONS = {
    "preset": Annotated[
        str,
        typer.Option(
            "--preset",
            help="retinanet (= mmdet-retinanet), retinanet-v1, rpn, torchvision-retinanet, torchvision-rpn, "
            "detectron2-retinanet, atss, fcos, or a preset .toml file.",
        ),
    ],
    "device": Annotated[str, typer.Option("--device", help="cpu, cuda or cuda:N.")],
    "method": Annotated[
        str,
        typer.Option("--method", help="auto (sparse on CPU, dense on CUDA), sparse, dense or fused (Triton, CUDA)."),
    ],
    # --device-batch: --batch-size is the training batch (batch-dist, report's batch section)
    "batch_size": Annotated[int, typer.Option("--device-batch", min=1, help="Images per batch of anchor labelling.")],
    "grid": Annotated[int, typer.Option("--grid", min=2, max=256, help="Cells per side of the spatial maps.")],
    "memory_mb": Annotated[float, typer.Option("--memory-mb", min=1, help="Device memory for one dense IoU block.")],
    "sampler": _anchor_sampler("--sampler"),
}
# Where a command has an option of a field's name (report's --sampler orders its training epochs)
_ANCHOR_RENAMED = {"sampler": _anchor_sampler("--anchor-sampler")}
# --preset of a command that labels under several presets side by side (anchor_options(several=True))
_SEVERAL_PRESETS = Annotated[
    list[str] | None,
    typer.Option("--preset", help=f"{typing.get_args(_ANCHOR_OPTIONS['preset'])[1].help} "
                 "Repeat it to label under several presets, side by side."),
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
