"""Anchor presets, generation and labeling (docs/design.md, 'Anchors')."""

from imbstat.anchors.resize import Resize

__all__ = ["Resize"]
