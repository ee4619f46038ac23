"""The test-time resize of a preset (docs/design.md, 'Presets'), vectorised over images."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from imbstat.data.dataset import MAX_IMAGE_SIDE, valid_image_size

ROUNDINGS = ("round", "floor", "floor-float64", "shortest-edge")
# The roundings of torchvision's GeneralizedRCNNTransform, which also fix how its references make the GTs.
TORCHVISION_ROUNDINGS = ("floor", "floor-float64")


@dataclass(frozen=True)
class Resize:
    """Keep-ratio resize to fit ``short`` × ``long``, rounded as one framework rounds it.

    ``rounding``:

    - ``"round"`` (mmdetection 2.x): ``s = min(short / min(w, h), long / max(w, h))`` in
      float64 and each side becomes ``int(side * s + 0.5)``, as mmcv's ``rescale_size``.
    - ``"floor-float64"`` (torchvision 0.17 to 0.28 ``GeneralizedRCNNTransform``, transform.py
      ``_resize_image_and_masks``, "Do it the normal way": ``im_shape = image.shape[-2:]`` holds
      Python ints): the same ``s`` in float64, then ``floor(side * s)`` in float64, as
      ``interpolate(scale_factor=s, recompute_scale_factor=True)``: 640×427 -> 1199×800.
    - ``"floor"`` (torchvision up to 0.16, the same function: ``im_shape = torch.tensor(...)``):
      ``s`` in float32 as torch evaluates ``800.0 / t`` (``t.reciprocal() * 800.0``), then
      ``floor(side * s)`` in float64: 640×427 -> 1199×799.
    - ``"shortest-edge"`` (detectron2 ``ResizeShortestEdge.get_output_shape``): the short side
      becomes ``short`` and the long one ``side * short / min(w, h)``; when that passes ``long``
      both are multiplied by ``long / new long``; each then ``int(x + 0.5)``, in float64.
    """

    short: float = 800.0
    long: float = 1333.0
    rounding: str = "round"

    def __post_init__(self) -> None:
        if not (0 < self.short <= self.long < math.inf):  # NaN fails too
            raise ValueError(f"resize needs 0 < short <= long, finite, got short={self.short} long={self.long}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"resize_rounding must be one of {', '.join(ROUNDINGS)}, got {self.rounding!r}")

    @property
    def torchvision(self) -> bool:
        """Whether this is one of torchvision's floors (its GTs are clamped and scaled as its references do)."""
        return self.rounding in TORCHVISION_ROUNDINGS

    def scale(self, width: np.ndarray, height: np.ndarray) -> np.ndarray:
        """[I] float64 factor ``s`` for images of the given pixel sizes."""
        width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
        if self.rounding == "floor":  # torch evaluates ``800.0 / t`` as ``t.reciprocal() * 800.0``, in float32
            f32, one = np.float32, np.float32(1)
            by_short = (one / np.minimum(width, height).astype(f32)) * f32(self.short)
            by_long = (one / np.maximum(width, height).astype(f32)) * f32(self.long)
            return np.minimum(by_short, by_long).astype(np.float64)
        return np.minimum(self.short / np.minimum(width, height), self.long / np.maximum(width, height))

    def new_size(self, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([I], [I]) float64 resized width and height in whole pixels."""
        width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
        if self.rounding == "shortest-edge":
            return _shortest_edge(width, height, self.short, self.long)
        s = self.scale(width, height)
        if self.torchvision:
            return np.floor(width * s), np.floor(height * s)
        return np.floor(width * s + 0.5), np.floor(height * s + 0.5)

    def axis_scales(self, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([I], [I]) per-axis factors ``new_w / w``, ``new_h / h`` of the whole-pixel resized sides.

        What mmdet's Resize and detectron2's ResizeTransform scale boxes by: each axis apart, so a
        box's corners land on the rounded image, not on ``s`` exactly.
        """
        new_w, new_h = self.new_size(width, height)
        return new_w / width, new_h / height

    def represents(self, width: np.ndarray, height: np.ndarray) -> np.ndarray:
        """[I] bool: a valid image size (:func:`valid_image_size`) whose resized sides are 1 to ``MAX_IMAGE_SIDE`` px.

        Every loaded image passes under the built-in 800 × 1333 resize; a custom
        resize (or a hand-built Dataset) may not. Computed without floating-point warnings.
        """
        ok = valid_image_size(width, height)
        new_w, new_h = self.new_size(np.where(ok, width, 1.0), np.where(ok, height, 1.0))
        return ok & (new_w >= 1) & (new_h >= 1) & (new_w <= MAX_IMAGE_SIDE) & (new_h <= MAX_IMAGE_SIDE)


def _shortest_edge(width: np.ndarray, height: np.ndarray, short: float, long: float) -> tuple[np.ndarray, np.ndarray]:
    """detectron2 ``ResizeShortestEdge.get_output_shape`` (v0.6, augmentation_impl.py), vectorised: same float64 ops."""
    scale = short / np.minimum(height, width)
    taller = ~(height < width)  # detectron2: ``if h < w`` fixes the height, else the width
    new_h = np.where(taller, scale * height, short)
    new_w = np.where(taller, short, scale * width)
    longest = np.maximum(new_h, new_w)
    shrink = longest > long
    factor = np.where(shrink, long / np.where(shrink, longest, 1.0), 1.0)
    new_h = np.where(shrink, new_h * factor, new_h)
    new_w = np.where(shrink, new_w * factor, new_w)
    return np.floor(new_w + 0.5), np.floor(new_h + 0.5)
