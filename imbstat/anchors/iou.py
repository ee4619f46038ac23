"""IoU of anchors against padded batches of GT boxes (docs/design.md, 'Numerics')."""

from __future__ import annotations

import torch


def box_iou(anchors: torch.Tensor, gts: torch.Tensor, legacy: bool = False) -> torch.Tensor:
    """IoU of every anchor with every GT of every image in a batch.

    Args:
        anchors: [N, 4] float64 corners (x1, y1, x2, y2).
        gts: [B, M, 4] float64 corners.
        legacy: mmdetection 1.x areas, ``(x2 - x1 + 1) · (y2 - y1 + 1)``.

    Returns:
        [B, N, M] float64, :func:`gt_major_iou` transposed (a view).
    """
    return gt_major_iou(anchors.T, gts, legacy).transpose(1, 2)


def gt_major_iou(columns: torch.Tensor, gts: torch.Tensor, legacy: bool = False) -> torch.Tensor:
    """IoU of every GT of every image with every anchor, anchors along the last (contiguous) axis.

    Args:
        columns: [4, N] anchor corners by rows (x1, y1, x2, y2): contiguous rows make every
            operation a broadcast of one GT value over a run of anchors, which vectorises.
        gts: [B, M, 4] corners, of the same dtype.
        legacy: mmdetection 1.x areas, ``(x2 - x1 + 1) · (y2 - y1 + 1)``.

    Returns:
        [B, M, N] ``inter / (area_a + area_g - inter)`` with
        ``inter = clip(min(x2) - max(x1), 0) · clip(min(y2) - max(y1), 0)``
        (``+ 1`` inside the clips for legacy); evaluated in this order so that every path gives the same bits.
        Computed in place where it can be: four [B, M, N] tensors live at most.
    """
    one = 1.0 if legacy else 0.0
    g = gts[..., None]  # [B, M, 4, 1]
    iw = torch.minimum(columns[2], g[:, :, 2]).sub_(torch.maximum(columns[0], g[:, :, 0]))  # [B, M, N]
    ih = torch.minimum(columns[3], g[:, :, 3]).sub_(torch.maximum(columns[1], g[:, :, 1]))
    if legacy:  # + 0 would change only a -0 difference to +0, which the clip and the comparisons treat alike
        iw.add_(one)
        ih.add_(one)
    inter = iw.clamp_(min=0).mul_(ih.clamp_(min=0))
    del ih
    area_a = (columns[2] - columns[0] + one) * (columns[3] - columns[1] + one)  # [N]
    area_g = (g[:, :, 2] - g[:, :, 0] + one) * (g[:, :, 3] - g[:, :, 1] + one)  # [B, M, 1]
    return inter.div_((area_a + area_g).sub_(inter))
