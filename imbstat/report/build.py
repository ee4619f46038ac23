"""Every statistic of one dataset, computed once and rendered as a report, tables and figures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from imbstat.anchors.presets import Preset, load_preset
from imbstat.data import BoxFilter, Dataset
from imbstat.report import tables, terminal
from imbstat.report.document import document
from imbstat.stats import (
    AnchorStats,
    ClassDistribution,
    LocationDistribution,
    ScaleDistribution,
    anchor_stats,
    class_distribution,
    location_distribution,
    scale_distribution,
)

# The sections of a report document, in order; metric names start with them (report/metrics.py).
SECTIONS = ("classes", "scale", "location", "anchors")


@dataclass(frozen=True)
class Results:
    """The statistics of one dataset; ``anchors`` is None unless asked for."""

    ds: Dataset
    classes: ClassDistribution
    scale: ScaleDistribution
    location: LocationDistribution
    anchors: AnchorStats | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """The versioned JSON report: the dataset head, then one section per statistic."""
        body: dict[str, Any] = {
            "classes": self.classes.to_dict(),
            "scale": self.scale.to_dict(),
            "location": self.location.to_dict(per_class=True),
        }
        if self.anchors is not None:
            body["anchors"] = anchor_section(self.anchors, self.ds)
        return document("report", self.ds, body, self.options)

    def write_files(self, out_dir: Path) -> list[Path]:
        """CSV tables and PNG figures of every section into ``out_dir``."""
        from imbstat.plots import plot_anchors, plot_classes, plot_location, plot_scale

        written = tables.class_tables(self.classes, out_dir) + plot_classes(self.classes, out_dir)
        written += tables.scale_tables(self.scale, out_dir) + plot_scale(self.scale, out_dir)
        written += tables.location_tables(self.location, out_dir) + plot_location(self.location, out_dir, per_class=12)
        if self.anchors is not None:
            written += tables.anchor_tables(self.anchors, self.ds.images.image_id, out_dir)
            written += plot_anchors(self.anchors, out_dir)
        return written

    def terminal_tables(self) -> list[Table]:
        found = [
            terminal.dataset_table(self.ds),
            terminal.class_table(self.classes),
            terminal.scores_table("class imbalance", self.classes.to_dict()["scores"]),
            terminal.scale_table(self.scale),
            terminal.location_table(self.location),
        ]
        if self.anchors is not None:
            found += terminal.anchor_tables(self.anchors)
        return found


def anchor_section(result: AnchorStats, ds: Dataset) -> dict[str, Any]:
    """The anchors JSON; a shard's also carries ``raw``, every count, so that ``imbstat merge`` is exact."""
    return result.to_dict() | ({"raw": result.raw_dict()} if ds.shard else {})


def compute_options(
    box_filter: BoxFilter, anchors: bool, preset: str | Preset, device: str, method: str
) -> dict[str, Any]:
    """The ``options`` block of a report computed with these arguments."""
    options: dict[str, Any] = asdict(box_filter)
    if anchors:
        name = preset.name if isinstance(preset, Preset) else load_preset(preset).name
        options |= {"anchors": True, "preset": name, "device": device, "method": method}
    return options


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
) -> Results:
    """Compute every dataset-level statistic, and the anchor statistics when ``anchors``.

    ``threads`` label anchors on the sparse path (default: every core).
    """
    anchor_result = None
    if anchors:
        chosen = preset if isinstance(preset, Preset) else load_preset(preset)
        anchor_result = anchor_stats(ds, chosen, device, method, batch_size, box_filter, progress=progress,
                                     threads=threads)  # fmt: skip
    options = compute_options(box_filter, anchors, preset, device, method)
    return Results(
        ds,
        class_distribution(ds, box_filter),
        scale_distribution(ds, box_filter),
        location_distribution(ds, box_filter),
        anchor_result,
        options,
    )
