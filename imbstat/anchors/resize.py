"""The test-time resize of a preset (DESIGN.md §3), vectorised over images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imbstat.data.dataset import MAX_IMAGE_SIDE, valid_image_size


@dataclass(frozen=True)
class Resize:
    """Keep-ratio resize to fit ``short`` × ``long`` (mmdetection 2.x / detectron2).

    ``s = min(short / min(w, h), long / max(w, h))`` and each side becomes
    ``int(side * s + 0.5)``, as mmcv's ``rescale_size`` rounds.
    """

    short: float = 800.0
    long: float = 1333.0

    def __post_init__(self) -> None:
        if not (self.short > 0 and self.long >= self.short):
            raise ValueError(f"resize needs 0 < short <= long, got short={self.short} long={self.long}")

    def scale(self, width: np.ndarray, height: np.ndarray) -> np.ndarray:
        """[I] float64 factor ``s`` for images of the given pixel sizes."""
        width, height = np.asarray(width, np.float64), np.asarray(height, np.float64)
        return np.minimum(self.short / np.minimum(width, height), self.long / np.maximum(width, height))

    def new_size(self, width: np.ndarray, height: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([I], [I]) float64 resized width and height in whole pixels."""
        s = self.scale(width, height)
        return np.floor(np.asarray(width) * s + 0.5), np.floor(np.asarray(height) * s + 0.5)

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
