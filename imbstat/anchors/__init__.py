"""Anchor presets, generation and labeling (DESIGN.md §3)."""

from imbstat.anchors.resize import Resize

__all__ = ["Resize"]
