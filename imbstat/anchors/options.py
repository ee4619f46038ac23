"""How to label anchors: the options of :func:`imbstat.anchor_stats`, declared once.

The library (``anchor_stats``, ``imbstat.compute``), the report's sections,
the Dask path and the CLI's anchor options all take an :class:`AnchorOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from imbstat.anchors.engine import check_method
from imbstat.anchors.presets import Preset, load_preset
from imbstat.errors import ImbstatError
from imbstat.scores import check_grid

MAX_MEMORY_MB = 1 << 20  # 1 TiB: above any device's memory


@dataclass(frozen=True)
class AnchorOptions:
    """Which anchors, and how to label them; checked when built.

    Attributes:
        preset: a :class:`Preset`, or a preset name or ``.toml`` file, loaded
            (once) when the options are built: ``options.preset`` is then a Preset.
        device: ``cpu``, ``cuda`` or ``cuda:N``.
        method: ``auto`` (sparse on the CPU, dense on CUDA), ``sparse``, ``dense``
            or ``fused`` (Triton, CUDA); all give identical results.
        batch_size: images labelled together (one padded size per batch).
        grid: cells per side of the relative spatial and overlap maps.
        memory_mb: device memory for one dense IoU block.
        threads: threads of the sparse path (None: every core this process may use).
        sampler: the sampling stage, ``random:NUM:POS_FRACTION`` or ``none``, put into the preset
            (``options.preset.sampler``) when the options are built; None keeps the preset's.
    """

    preset: Preset | str | Path = "retinanet"
    device: str = "cpu"
    method: str = "auto"
    batch_size: int = 32
    grid: int = 32
    memory_mb: float = 1024
    threads: int | None = None
    sampler: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.preset, Preset):
            object.__setattr__(self, "preset", load_preset(self.preset))  # a bad preset fails before a long load
        if self.sampler is not None:
            try:
                object.__setattr__(self, "preset", dataclasses.replace(self.preset, sampler=self.sampler))
            except ValueError as e:
                raise ImbstatError(str(e)) from None  # "sampler '...': expected ...", whichever flag gave it
        check_method(self.preset, self.method, self.device)  # an unknown or unfit method likewise
        for name, low in (("batch_size", 1), ("grid", 1), ("threads", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise ImbstatError(f"{name} {value!r}: expected a whole number >= {low}")
        check_grid(self.grid)
        if not 0 < self.memory_mb <= MAX_MEMORY_MB:  # NaN fails too; a block is sized from it (int(inf) raises)
            raise ImbstatError(f"memory_mb {self.memory_mb!r}: expected a number of MiB in (0, {MAX_MEMORY_MB}]")
