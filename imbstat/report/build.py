"""Every statistic of one dataset, computed once and rendered as a report, tables and figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from imbstat.anchors.presets import Preset, load_preset
from imbstat.data import BoxFilter, Dataset
from imbstat.report import terminal
from imbstat.report.document import document
from imbstat.report.sections import SECTIONS, Run, Section, anchor_section, wanted
from imbstat.stats.class_balanced import check_beta
from imbstat.stats.remedies import check_threshold

__all__ = ["SECTIONS", "Results", "anchor_section", "compute", "compute_options"]


@dataclass(frozen=True)
class Results:
    """The statistics of one dataset: ``results`` maps a section's name to its result, in report order.

    Each result is also an attribute (``results.classes``); an optional section
    that was not computed (``anchors`` without ``--anchors``) reads as None.
    """

    ds: Dataset
    results: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in _NAMES:
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(name)

    def computed(self) -> list[tuple[Section, Any]]:
        """(section, result) of every section computed, in report order."""
        return [(s, self.results[s.name]) for s in SECTIONS if s.name in self.results]

    def document(self, command: str = "report") -> dict[str, Any]:
        """The versioned JSON report: the dataset head, then one section per statistic."""
        body = {s.name: s.to_json(r, self.ds) for s, r in self.computed()}
        return document(command, self.ds, body, self.options)

    def write_files(self, out_dir: Path) -> list[Path]:
        """CSV tables and PNG figures of every section into ``out_dir``."""
        written: list[Path] = []
        for s, r in self.computed():
            written += s.write_tables(r, self.ds, out_dir) + s.write_figures(r, out_dir)
        return written

    def terminal_tables(self) -> list[Table]:
        found = [terminal.dataset_table(self.ds)]
        for s, r in self.computed():
            found += s.terminal(r)
        return found


_NAMES = frozenset(s.name for s in SECTIONS)


def compute_options(
    box_filter: BoxFilter, anchors: bool, preset: str | Preset, device: str, method: str,
    repeat_factor: float | None = None, class_balanced: float | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The ``options`` block of a report computed with these arguments."""
    options: dict[str, Any] = asdict(box_filter)
    if anchors:
        name = preset.name if isinstance(preset, Preset) else load_preset(preset).name
        options |= {"anchors": True, "preset": name, "device": device, "method": method}
    return options | remedy_options(repeat_factor, class_balanced)


def remedy_options(repeat_factor: float | None, class_balanced: float | None) -> dict[str, float]:
    """The remedies asked for, as ``options`` names them (none: nothing, so older reports read the same);
    ImbstatError for a bad value, so that commands check them before a long load."""
    asked = {"repeat_factor": (repeat_factor, check_threshold), "class_balanced": (class_balanced, check_beta)}
    return {name: check(value) for name, (value, check) in asked.items() if value is not None}


def compute(
    ds: Dataset,
    box_filter: BoxFilter = BoxFilter(),
    anchors: bool = False,
    preset: str | Preset = "retinanet",
    device: str = "cpu",
    method: str = "auto",
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
    *,
    repeat_factor: float | None = None,
    class_balanced: float | None = None,
    batch: dict[str, Any] | None = None,
) -> Results:
    """Compute every dataset-level statistic, the anchor statistics when ``anchors``, the batch ones when ``batch``
    (batch_distribution's keywords), and the remedies asked for: repeat-factor sampling with threshold
    ``repeat_factor``, class-balanced loss weights with beta ``class_balanced``.

    ``threads`` label anchors on the sparse path (default: every core); ``batch`` holds the keywords of
    :func:`~imbstat.stats.batch_distribution` (``batch_size``, ``sampler``, ``epochs``, ``seed``).
    """
    chosen = None
    if anchors:
        chosen = preset if isinstance(preset, Preset) else load_preset(preset)
    run = Run(box_filter, chosen, device, method, batch_size, progress, threads, repeat_factor, class_balanced, batch)
    optional = (["anchors"] if anchors else []) + (["batch"] if batch else [])
    optional += [name for name, value in remedy_options(repeat_factor, class_balanced).items()]
    results = {s.name: s.compute(ds, run) for s in wanted(optional)}
    options = compute_options(box_filter, anchors, preset, device, method, repeat_factor, class_balanced)
    return Results(ds, results, options | ({"batch": dict(batch)} if batch else {}))
