"""Anchor presets: resize, anchor shapes and labeling thresholds (DESIGN.md §3)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from imbstat.anchors.resize import Resize
from imbstat.data.source import read_toml
from imbstat.errors import ImbstatError


@dataclass(frozen=True)
class Preset:
    """Everything that fixes the anchors of an image and their labels.

    Anchors of level stride ``s``: sizes ``octave_base_scale · s · 2^(o / scales_per_octave)``
    for ``o = 0 .. scales_per_octave - 1``; ratios ``r = h / w`` with
    ``w = size / sqrt(r)``, ``h = size · sqrt(r)``; centred at
    ``((i + center_offset) · s, (j + center_offset) · s)`` on a grid of
    ``ceil(padded / s)`` cells per side. Labels follow mmdetection's
    MaxIoUAssigner: max IoU ``>= pos_iou`` foreground, ``< neg_iou`` background,
    in between ignored; then, with ``low_quality``, each GT's best anchors
    (max IoU ``>= min_pos_iou`` and > 0) become foreground for it.
    """

    name: str = "retinanet"
    resize: Resize = Resize(800, 1333)
    pad_divisor: int = 32
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    octave_base_scale: float = 4.0
    scales_per_octave: int = 3
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    center_offset: float = 0.0
    pos_iou: float = 0.5
    neg_iou: float = 0.4
    low_quality: bool = True
    min_pos_iou: float = 0.0
    ignore_crowd: bool = True
    legacy: bool = False  # mmdetection 1.x pixel convention: "+1" areas, rounded corners

    def __post_init__(self) -> None:
        problems = []
        if not self.strides or any(s <= 0 for s in self.strides) or list(self.strides) != sorted(self.strides):
            problems.append("strides must be positive and increasing")
        if self.pad_divisor <= 0:
            problems.append("pad_divisor must be positive")
        if self.octave_base_scale <= 0 or self.scales_per_octave < 1:
            problems.append("octave_base_scale must be > 0 and scales_per_octave >= 1")
        if not self.ratios or any(not (r > 0) for r in self.ratios):
            problems.append("ratios must be positive")
        # neg_iou = 0 would make every anchor of an image with a GT ignored (IoU >= 0): no background.
        if not (0 < self.neg_iou <= self.pos_iou <= 1):
            problems.append(f"need 0 < neg_iou <= pos_iou <= 1, got neg_iou={self.neg_iou} pos_iou={self.pos_iou}")
        if not (0 <= self.min_pos_iou <= 1):
            problems.append("min_pos_iou must be in [0, 1]")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def anchors_per_cell(self) -> int:
        return self.scales_per_octave * len(self.ratios)

    def sizes(self, stride: int) -> list[float]:
        return [
            self.octave_base_scale * stride * 2 ** (o / self.scales_per_octave) for o in range(self.scales_per_octave)
        ]

    def shapes(self, stride: int) -> list[tuple[float, float]]:
        """(w, h) of the anchors of one cell, ratio-major then size, as mmdetection orders them."""
        return [(size / math.sqrt(r), size * math.sqrt(r)) for r in self.ratios for size in self.sizes(stride)]

    @property
    def lowest_iou(self) -> float:
        """The lowest IoU threshold in play: below it an anchor is background whatever else holds."""
        return self.neg_iou

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["resize"] = {"short": self.resize.short, "long": self.resize.long}
        return d


def preset_from_dict(d: dict) -> Preset:
    """Inverse of :meth:`Preset.to_dict` (as a report's ``preset`` block holds it)."""
    fields = dict(d)
    fields["resize"] = Resize(d["resize"]["short"], d["resize"]["long"])
    fields["strides"], fields["ratios"] = tuple(d["strides"]), tuple(d["ratios"])
    return Preset(**fields)


PRESETS: dict[str, Preset] = {
    "retinanet": Preset(),
    # mmdetection 1.x RetinaNet: centre (stride - 1) / 2, corners centre ± (w - 1) / 2 rounded, "+1" areas.
    "retinanet-v1": Preset(name="retinanet-v1", legacy=True),
    # Faster R-CNN RPN (mmdetection 2.x): one size 8·stride, strides 4..64, thresholds 0.7 / 0.3.
    "rpn": Preset(
        name="rpn",
        strides=(4, 8, 16, 32, 64),
        octave_base_scale=8.0,
        scales_per_octave=1,
        pos_iou=0.7,
        neg_iou=0.3,
        min_pos_iou=0.3,
    ),
}

_FIELDS = {f.name for f in dataclasses.fields(Preset)} | {"resize_short", "resize_long"}


def load_preset(name_or_path: str | Path) -> Preset:
    """A named preset, or one read from a TOML file with :class:`Preset`'s field names.

    A TOML file may start from a named preset with ``base = "rpn"``; the resize is
    given as ``resize_short`` / ``resize_long``. Unknown keys are errors.
    """
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]
    path = Path(key)
    if path.suffix != ".toml":
        raise ImbstatError(f"unknown preset; expected one of {', '.join(PRESETS)} or a .toml file", key)
    table = read_toml(path, "preset")
    base = PRESETS.get(table.pop("base", "retinanet"))
    if base is None:
        raise ImbstatError(f"unknown base preset; expected one of {', '.join(PRESETS)}", path, "base")
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ImbstatError(f"unknown keys {', '.join(unknown)}; expected some of {', '.join(sorted(_FIELDS))}", path)
    short = table.pop("resize_short", base.resize.short)
    long = table.pop("resize_long", base.resize.long)
    for key_name in ("strides", "ratios"):
        if key_name in table:
            if not isinstance(table[key_name], list):
                raise ImbstatError("expected a list of numbers", path, key_name)
            table[key_name] = tuple(table[key_name])
    for key_name, value in table.items():
        expected = type(getattr(base, key_name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            table[key_name] = float(value)
        elif not isinstance(table[key_name], expected) or (expected is int and isinstance(value, bool)):
            raise ImbstatError(f"expected {expected.__name__}, got {type(value).__name__}", path, key_name)
    try:
        return dataclasses.replace(base, name=table.pop("name", path.stem), resize=Resize(short, long), **table)
    except (ValueError, TypeError) as e:
        raise ImbstatError(f"inconsistent preset: {e}", path) from None
