"""IoU of anchors against padded batches of GT boxes (DESIGN.md §3, "Numerics")."""

from __future__ import annotations

import torch


def box_iou(anchors: torch.Tensor, gts: torch.Tensor, legacy: bool = False) -> torch.Tensor:
    """IoU of every anchor with every GT of every image in a batch.

    Args:
        anchors: [N, 4] float64 corners (x1, y1, x2, y2).
        gts: [B, M, 4] float64 corners.
        legacy: mmdetection 1.x areas, ``(x2 - x1 + 1) · (y2 - y1 + 1)``.

    Returns:
        [B, N, M] float64, ``inter / (area_a + area_g - inter)`` with
        ``inter = clip(min(x2) - max(x1), 0) · clip(min(y2) - max(y1), 0)``;
        evaluated in this order so that every path gives the same bits.
    """
    one = 1.0 if legacy else 0.0
    a = anchors[None, :, None, :]  # [1, N, 1, 4]
    g = gts[:, None, :, :]  # [B, 1, M, 4]
    iw = (torch.minimum(a[..., 2], g[..., 2]) - torch.maximum(a[..., 0], g[..., 0]) + one).clamp_(min=0)  # [B,N,M]
    ih = (torch.minimum(a[..., 3], g[..., 3]) - torch.maximum(a[..., 1], g[..., 1]) + one).clamp_(min=0)
    inter = iw * ih
    area_a = (anchors[:, 2] - anchors[:, 0] + one) * (anchors[:, 3] - anchors[:, 1] + one)  # [N]
    area_g = (gts[..., 2] - gts[..., 0] + one) * (gts[..., 3] - gts[..., 1] + one)  # [B, M]
    return inter / (area_a[None, :, None] + area_g[:, None, :] - inter)
