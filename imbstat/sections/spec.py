"""What a report section is: :class:`Section` (one statistic's entry in the registry of
:mod:`imbstat.sections`), the :class:`Metric` names it gives audits, and :class:`Run`, the
options of a whole analysis that a section's ``compute`` reads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from imbstat.anchors.options import AnchorOptions
from imbstat.data import BoxFilter, Dataset
from imbstat.errors import ImbstatError
from imbstat.stats.batch import BatchOptions
from imbstat.stats.class_balanced import check_beta
from imbstat.stats.eval import EvalOptions
from imbstat.stats.protocol import FieldError
from imbstat.stats.repeat_factor import check_threshold
from imbstat.stats.side_by_side import preset_keys

if TYPE_CHECKING:
    from rich.table import Table  # the terminal's tables: rich is loaded only where they are built

__all__ = ["Metric", "Run", "Section", "remedy_options", "shift_metrics"]


@dataclass(frozen=True)
class Metric:
    """A named number of a report for audits: ``<section>.<name>`` (or ``compare.<section>.<name>``)."""

    name: str  # within its section
    meaning: str  # one line, shown beside the score on the HTML page
    score: bool = True  # a score, 0 = balanced to 1 = extreme (drawn as a bar); False: a count, ratio or share
    same_as: str = ""  # another name for the metric of its section named here (location.w1_score is xy)


@dataclass(frozen=True)
class Run:
    """The options of a whole analysis that a section's ``compute`` may read: one field per group of options.

    An optional section is computed when its options are set (``anchors``); a new group of
    options is a new field here, named in :meth:`optional_sections` and :meth:`report_options`.
    """

    box_filter: BoxFilter = BoxFilter()
    anchors: AnchorOptions | None = None  # the anchors section; True stands for AnchorOptions()
    progress: Callable[[int], None] | None = None  # called with the number of images of each labelled batch
    repeat_factor: float | None = None  # the threshold T, set when repeat-factor sampling is asked for
    class_balanced: float | None = None  # beta, set when class-balanced loss weights are asked for
    batch: BatchOptions | None = None  # the batch section's simulation (a dict of its fields stands for one)
    more_anchors: tuple[AnchorOptions, ...] = ()  # further presets of the anchors section, side by side
    evaluation: EvalOptions | None = None  # the eval section: detections (and a training set) to score
    losses: bool = False  # the loss section (issue 24): the anchors' losses at initialization, under anchors' preset

    def __post_init__(self) -> None:
        if isinstance(self.anchors, bool):
            object.__setattr__(self, "anchors", AnchorOptions() if self.anchors else None)
        if isinstance(self.batch, dict):
            object.__setattr__(self, "batch", BatchOptions(**self.batch))
        object.__setattr__(self, "more_anchors", tuple(self.more_anchors))
        if self.more_anchors and not self.anchors:
            raise ImbstatError("further anchor presets without the anchors section; expected anchors= as well")
        if self.losses and not self.anchors:  # the losses are those of the anchors' labels
            raise ImbstatError("the loss section without the anchors section; expected anchors= as well")
        for name, value in remedy_options(self.repeat_factor, self.class_balanced).items():  # checked now
            object.__setattr__(self, name, value)

    def optional_sections(self) -> list[str]:
        """The names of the optional sections these options ask for."""
        asked = ["anchors"] if self.anchors else []
        asked += list(remedy_options(self.repeat_factor, self.class_balanced))
        asked += ["loss"] if self.losses else []
        return asked + (["batch"] if self.batch else []) + (["eval"] if self.evaluation else [])

    def report_options(self, command: str = "report", **own: Any) -> dict[str, Any]:
        """The ``options`` block of the JSON document of ``command`` computed with these options: the one
        place every command's block is built. ``own`` (a command's options outside Run: scale's ``bins``) ends it.

        A report (summary, audit) names each group (``anchors``, ``batch``); a command of one section
        (anchor-iou, batch-dist) writes its group's fields at the top level, as it does its section's fields.
        """
        options: dict[str, Any] = dataclasses.asdict(self.box_filter)
        if a := self.anchors:
            if command == "anchor-iou":
                options |= {"device": a.device, "method": a.method, "batch_size": a.batch_size, "grid": a.grid}
            else:
                options |= {"anchors": True, "preset": a.preset.name, "device": a.device, "method": a.method}
            if self.more_anchors:  # several presets side by side: their keys in order (README, "Several presets")
                options["presets"] = preset_keys([o.preset.name for o in (a, *self.more_anchors)])
        options |= {"losses": True} if self.losses else {}  # only when asked: other reports' options as they were
        options |= remedy_options(self.repeat_factor, self.class_balanced)
        options |= {"eval": self.evaluation.report_options()} if self.evaluation else {}
        if self.batch:
            options |= self.batch.to_dict() if command == "batch-dist" else {"batch": self.batch.to_dict()}
        return options | own


def shift_metrics(metrics: tuple[Metric, ...], *names: str) -> tuple[Metric, ...]:
    """Compare metrics of the same distributions: the 2·W1 shift between A and B (0 = same)."""
    by_name = {m.name: m for m in metrics}
    return tuple(Metric(n, f"shift of: {by_name[n].meaning}", same_as=by_name[n].same_as) for n in names)


def remedy_options(repeat_factor: float | None, class_balanced: float | None) -> dict[str, float]:
    """The remedies asked for, as ``options`` names them (none: nothing, so older reports read the same);
    ImbstatError for a bad value, so that commands check them before a long load."""
    asked = {"repeat_factor": (repeat_factor, check_threshold), "class_balanced": (class_balanced, check_beta)}
    checked = {}
    for name, (value, check) in asked.items():
        if value is not None:
            try:
                checked[name] = check(value)
            except ImbstatError as e:  # the field's name as its position: an audit config's key
                raise ImbstatError(e.detail, position=name) from None
    return checked


def _no_extras(result: Any) -> dict[str, float]:
    return {}


def _no_options(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {}


def _no_figures(result: Any, out_dir: Path) -> list[Path]:
    return []


@dataclass(frozen=True)
class Section:
    """One statistic of a report (the fields are in the module docstring's order)."""

    name: str  # the JSON key of its section, the prefix of its metric names and CSV/figure file names
    title: str  # of its HTML section
    result_type: type
    command: str  # the command that writes this section's fields alone (at the JSON's top level)
    compute: Callable[[Dataset, Run], Any]
    to_json: Callable[[Any, Dataset], dict[str, Any]]
    write_tables: Callable[[Any, Dataset, Path], list[Path]]  # CSV files
    terminal: Callable[[Any], list[Table]]
    compare: Callable[[Any, Any, dict[str, str]], dict[str, Any]]  # (A, B, skipped) -> its comparison JSON
    html: Callable[[Any, str], str]  # (result, rendered scores table) -> its HTML tables
    metrics: tuple[Metric, ...]  # the names of its JSON "scores", then extras (see ``extra_metrics``)
    shifts: tuple[Metric, ...]  # the names of its "scores" in a comparison document: compare.<name>.<shift>
    write_figures: Callable[[Any, Path], list[Path]] = _no_figures  # PNG files
    figures: tuple[tuple[str, str], ...] = ()  # (file name, HTML caption) of every figure it may write
    extra_metrics: Callable[[Any], dict[str, float]] = _no_extras  # result -> its named numbers outside "scores"
    optional: str = ""  # computed only when asked for; the text says how to ask ("run with --anchors")
    merge_shards: Callable[[list[Any], Dataset, int], Any] | None = None  # default: ``result_type.merge``
    json_options: Callable[[list[dict[str, Any]]], dict[str, Any]] = _no_options  # to_dict's options, from parts
    # What compare, metrics, html and extra_metrics read when a report's section cannot be read back into
    # result_type (anchors: a report has sums, not raw counts): a type with from_dict(section) and of(result).
    report_type: type | None = None
    # False: computed on the whole dataset only (the Dask path computes it on the client, not per shard)
    shardable: bool = True

    def read(self, body: Any, source: str | Path | None = None) -> Any:
        """The result object of this section of a report document (``report_type`` where there is one).

        A missing or malformed field is an :class:`ImbstatError` naming the section and the field,
        raised here rather than as a missing metric later.
        """
        return self.parse(self.report_type or self.result_type, body, source)

    def parse(self, kind: type, body: Any, source: str | Path | None, prefix: str | None = None) -> Any:
        """``kind.from_dict(body)``, its errors one line naming ``source`` and the field's JSON path under
        ``prefix`` (default: the section's name; "" for a command's fields at the top level)."""
        prefix = self.name if prefix is None else prefix
        if not isinstance(body, dict):
            raise ImbstatError(f"the {self.name} section is not an object; expected a report of imbstat", source)
        try:
            return kind.from_dict(body)
        except FieldError as e:
            raise e.at(source, prefix) from None
        except ImbstatError as e:
            if e.path is not None or source is None:
                raise
            raise ImbstatError(e.detail, source, e.position or self.name) from None
        except KeyError as e:
            raise ImbstatError(
                f"the {self.name} section has no field {e.args[0]!r}; expected the report.json of 'imbstat report'",
                source,
                self.name,
            ) from None
        except (TypeError, ValueError, IndexError, AttributeError) as e:
            raise ImbstatError(
                f"the {self.name} section has a malformed field ({e}); expected the report.json of 'imbstat report'",
                source,
                self.name,
            ) from None

    def view(self, result: Any) -> Any:
        """What :meth:`read` gives for a result computed now: the result, or its ``report_type``; a result
        read back (already of ``report_type``) as it is."""
        if self.report_type is None or isinstance(result, self.report_type):
            return result
        return self.report_type.of(result)  # type: ignore[attr-defined]

    def merge_json(
        self, parts: list[dict[str, Any]], sources: list[str] | None = None, prefix: str | None = None
    ) -> dict[str, Any]:
        """The JSON section of the whole dataset from its shards' sections (the result protocol's round trip);
        a bad field is an ImbstatError naming its shard (``sources``) and its JSON path under ``prefix``."""
        names = sources or [None] * len(parts)
        read = [self.parse(self.result_type, p, s, prefix) for p, s in zip(parts, names, strict=True)]
        merged = self.result_type.merge(read)
        return merged.to_dict(**self.json_options(parts))

    def merge_results(self, parts: list[Any], ds: Dataset, shards: int) -> Any:
        """The result of the whole dataset from those of its shards ``i/shards``, in shard order."""
        return self.merge_shards(parts, ds, shards) if self.merge_shards else self.result_type.merge(parts)
