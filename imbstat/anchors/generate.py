"""Anchors of a padded image size for a preset (docs/design.md, 'Presets'), as mmdetection orders them.

Order: level (stride ascending), then cell row-major (y, then x), then the
cell's shapes (ratio-major, then size). All geometry is float64; under a float32
preset every corner is a float32 value (held in float64), as that framework's
float32 ``base + shift`` makes it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from imbstat.anchors.presets import Preset
from imbstat.data.dataset import MAX_ASPECT_RATIO, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, valid_image_size
from imbstat.errors import ImbstatError


@dataclass(frozen=True)
class AnchorGrid:
    """All anchors of one padded image size.

    ``xyxy[a]`` is anchor ``a``'s corners in resized-image pixels; ``level``,
    ``shape`` (index into the level's shapes), ``row`` and ``col`` locate it.
    ``cells[l]`` is ``(rows, cols)`` of level ``l``. The [N] arrays are made
    on first use: the sparse path needs only :meth:`corners` of a few anchors.
    """

    preset: Preset
    padded_width: int
    padded_height: int
    cells: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return int(self.level_offsets[-1])

    @functools.cached_property
    def level_offsets(self) -> np.ndarray:
        """[L + 1] index of each level's first anchor, and the total."""
        per_level = [r * c * self.preset.anchors_per_cell for r, c in self.cells]
        return np.concatenate([[0], np.cumsum(per_level)]).astype(np.int64)

    @functools.cached_property
    def bases(self) -> np.ndarray:
        """[L, S, 4] float64 each level's cell anchors at cell (0, 0): :func:`base_anchors`."""
        return np.stack([base_anchors(self.preset, stride) for stride in self.preset.strides])

    @functools.cached_property
    def steps(self) -> np.ndarray:
        """[L, 2] float64 each level's (x, y) shift per cell: the stride, or under ``stride_rule =
        "padded-floor"`` torchvision's ``padded // cells`` per axis (an 800 px side: 61 px at P6)."""
        if self.preset.stride_rule == "padded-floor":
            return np.array([(self.padded_width // c, self.padded_height // r) for r, c in self.cells], np.float64)
        return np.repeat(self.strides[:, None], 2, axis=1)

    @functools.cached_property
    def xyxy(self) -> np.ndarray:
        """[N, 4] float64: per level, cell shift ``(col, row) · step`` plus the cell's base anchors."""
        parts = []
        for level in range(len(self.cells)):
            rows, cols = self.cells[level]
            step_x, step_y = self.steps[level]
            ys, xs = np.meshgrid(np.arange(rows) * step_y, np.arange(cols) * step_x, indexing="ij")
            shifts = np.stack([xs.ravel(), ys.ravel(), xs.ravel(), ys.ravel()], axis=1)  # [C, 4]
            parts.append((shifts[:, None, :] + self.bases[level][None, :, :]).reshape(-1, 4))  # [C·S, 4]
        return in_dtype(self.preset, np.concatenate(parts))

    @functools.cached_property
    def cols(self) -> np.ndarray:
        """[L] int64 cells per row of each level."""
        return np.array([c for _, c in self.cells], np.int64)

    @functools.cached_property
    def strides(self) -> np.ndarray:
        """[L] float64 each level's stride."""
        return np.array(self.preset.strides, np.float64)

    def corners(self, index: np.ndarray) -> np.ndarray:
        """[n, 4] ``xyxy[index]`` without making ``xyxy``: the same shift + base, the same bits."""
        level = np.searchsorted(self.level_offsets, index, side="right") - 1
        cell, shape = np.divmod(index - self.level_offsets[level], self.preset.anchors_per_cell)
        row, col = np.divmod(cell, self.cols[level])
        return self.cell_corners(level, row, col, shape)

    def cell_corners(self, level: np.ndarray, row: np.ndarray, col: np.ndarray, shape: np.ndarray | int) -> np.ndarray:
        """[n, 4] the anchors ``shape`` of cells ``(row, col)`` of ``level``: :meth:`corners` by place."""
        sx, sy = col * self.steps[level, 0], row * self.steps[level, 1]
        return in_dtype(self.preset, np.stack([sx, sy, sx, sy], axis=-1) + self.bases[level, shape])

    @functools.cached_property
    def level(self) -> np.ndarray:
        """[N] int8 index into preset.strides."""
        return np.repeat(np.arange(len(self.cells), dtype=np.int8), np.diff(self.level_offsets))

    @functools.cached_property
    def shape(self) -> np.ndarray:
        """[N] int8 index into the level's shapes."""
        per_cell = self.preset.anchors_per_cell
        return np.tile(np.arange(per_cell, dtype=np.int8), len(self) // per_cell)


def in_dtype(preset: Preset, values: np.ndarray) -> np.ndarray:
    """``values`` rounded to the preset's dtype (float64 kept: float32 values are exact in it)."""
    return values.astype(np.float32).astype(np.float64) if preset.float32 else values


def base_anchors(preset: Preset, stride: int) -> np.ndarray:
    """[S, 4] float64 corners of one cell's anchors around the cell's centre offset.

    Default: ``(-w/2, -h/2, w/2, h/2)``, in the preset's dtype, and with
    ``round_anchors`` rounded half to even (torch's ``round``). Legacy (mmdetection
    1.x): around ``(stride - 1) / 2`` with ``±(w - 1) / 2``, rounded half to even.
    The float64 ``w, h`` cast to float32 equal torchvision's float32 ``(1 / sqrt(r)) · size``
    and detectron2's ``sqrt(size² / r)`` for their presets (checked in the tests).
    """
    wh = np.array(preset.shapes(stride), np.float64)  # [S, 2]
    if preset.legacy:
        c = (stride - 1) / 2
        half = (wh - 1) / 2
        return np.round(np.concatenate([c - half, c + half], axis=1))
    c = preset.center_offset * stride
    corners = in_dtype(preset, np.concatenate([c - wh / 2, c + wh / 2], axis=1))
    return np.round(corners) if preset.round_anchors else corners


def padded_size(preset: Preset, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([I], [I]) int64 padded (width, height) after the preset's resize."""
    new_w, new_h = preset.resize.new_size(width, height)
    d = preset.pad_divisor
    return (np.ceil(new_w / d) * d).astype(np.int64), (np.ceil(new_h / d) * d).astype(np.int64)


def require_representable(
    preset: Preset, width: np.ndarray, height: np.ndarray, image_id: np.ndarray | None = None, path: str | None = None
) -> None:
    """Raise ImbstatError unless every image size is valid and the preset's resize keeps it at >= 1 px per side.

    ``image_id`` names the images in the message; ``path`` is the file they come from.
    """
    width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
    bad = np.flatnonzero(~preset.resize.represents(width, height))
    if not bad.size:
        return
    i = bad[0]
    w, h = width[i : i + 1], height[i : i + 1]
    name = "image" if image_id is None else f"image {image_id[i]}"
    size = f"{name} of {w[0]:g}x{h[0]:g} px" + (f" ({bad.size} such images)" if bad.size > 1 else "")
    if not valid_image_size(w, h)[0]:
        raise ImbstatError(
            f"{size}: expected sides of {MIN_IMAGE_SIDE:g} to {MAX_IMAGE_SIDE:.0f} px, "
            f"the long one at most {MAX_ASPECT_RATIO:g} times the short one",
            path,
        )
    new_w, new_h = preset.resize.new_size(w, h)
    raise ImbstatError(
        f"{size} resizes to {new_w[0]:g}x{new_h[0]:g} px under preset {preset.name} "
        f"(resize {preset.resize.short:g}x{preset.resize.long:g}); expected 1 to {MAX_IMAGE_SIDE:.0f} px per side",
        path,
    )


@functools.lru_cache(maxsize=64)
def anchor_grid(preset: Preset, padded_width: int, padded_height: int) -> AnchorGrid:
    """The anchors of every level for one padded size (cached: sizes repeat across a dataset).

    Raises:
        ValueError: a padded side below 1 px (an image its resize cannot represent: no grid).
    """
    if not (padded_width >= 1 and padded_height >= 1):
        raise ValueError(f"padded size {padded_width}x{padded_height}: expected at least 1 px per side")
    cells = tuple((-(-padded_height // stride), -(-padded_width // stride)) for stride in preset.strides)
    return AnchorGrid(preset, padded_width, padded_height, cells)


def image_grid(preset: Preset, width: int, height: int) -> AnchorGrid:
    """The anchor grid of one original image of ``width`` × ``height`` px: resized, padded, laid out."""
    pad_w, pad_h = padded_size(preset, np.array([width]), np.array([height]))
    return anchor_grid(preset, int(pad_w[0]), int(pad_h[0]))


def grid_levels(grid: AnchorGrid) -> list[dict]:
    """Per level of ``grid``: stride, rows, cols, anchor shapes (w, h) and anchors (``imbstat anchors`` shows them).

    A framework preset's levels also give their (x, y) ``step`` per cell, and their shapes as its
    anchors have them (corners rounded, float32 where the preset says).
    """
    preset = grid.preset
    levels = [
        {"stride": s, "rows": r, "cols": c, "shapes": preset.shapes(s), "anchors": r * c * preset.anchors_per_cell}
        for s, (r, c) in zip(preset.strides, grid.cells, strict=True)
    ]
    if preset.conventions():
        for level, entry in enumerate(levels):
            bases = grid.bases[level]
            entry["step"] = grid.steps[level].tolist()
            entry["shapes"] = np.stack([bases[:, 2] - bases[:, 0], bases[:, 3] - bases[:, 1]], axis=1).tolist()
    return levels
