"""MaxIoUAssigner labeling of anchors, the dense path (DESIGN.md §3).

Semantics (mmdetection 2.x ``MaxIoUAssigner`` with ``gt_max_assign_all``):

1. An anchor's max IoU over its image's GTs ``>= pos_iou`` -> foreground,
   assigned to the argmax GT (ties: the lowest GT index);
   ``< neg_iou`` -> background (also when the image has no GT);
   otherwise ignored.
2. Low-quality matching: for each GT ``j`` in order whose maximum IoU over the
   anchors is ``> 0`` and ``>= min_pos_iou``, every anchor whose IoU with ``j``
   equals that maximum (float64 ``==``) becomes foreground assigned to ``j``;
   a later GT overwrites an earlier one.

Unlike detectron2's Matcher, step 2 reassigns the anchor to the GT it is best
for. A foreground anchor's IoU is its IoU with the GT it is assigned to.

With ``low_quality_rule = "torchvision-detectron2"`` step 2 is their
``Matcher.set_low_quality_matches_``: every anchor at a GT's maximum (``>=
min_pos_iou``, 0 included) becomes foreground for its own argmax GT, at its own
max IoU. Float32 presets pass float32 tensors: torch then computes the IoU and
compares the thresholds in float32, as those frameworks do.
"""

from __future__ import annotations

import torch

from imbstat.anchors.iou import box_iou
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset


def match_dense(
    anchors: torch.Tensor,
    gts: torch.Tensor,
    num_gts: torch.Tensor,
    preset: Preset,
    chunk_anchors: int = 65536,
    fused: bool = False,
) -> Matches:
    """Label all anchors × all GTs of a batch.

    Args:
        anchors: [N, 4] float64 (float32 for a float32 preset) on the working device.
        gts: [B, M, 4] of the same dtype, rows ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.
        chunk_anchors: anchors per chunk of the torch reductions; the IoU block is [B, chunk, M].
        fused: reduce with the Triton kernels of :mod:`fused` instead (CUDA; identical labels).
    """
    if fused:
        from imbstat.anchors.fused import fused_reductions

        max_iou, argmax, gt_max, last = fused_reductions(
            anchors, gts, num_gts, preset.legacy, preset.low_quality, preset.min_pos_iou
        )
    else:
        max_iou, argmax, gt_max, last = _torch_reductions(anchors, gts, num_gts, preset, chunk_anchors)

    fg = max_iou >= preset.pos_iou
    ignored = (max_iou >= preset.neg_iou) & ~fg
    assigned, iou_of_assigned = argmax, max_iou
    if last is not None:
        hit = last >= 0
        if preset.low_quality_rule == "mmdetection":
            assigned = torch.where(hit, last, argmax)
            iou_of_assigned = torch.where(hit, gt_max.gather(1, last.clamp(min=0)), max_iou)
        fg |= hit
        ignored &= ~hit

    fg_image, fg_anchor = torch.nonzero(fg, as_tuple=True)
    ig_image, ig_anchor = torch.nonzero(ignored, as_tuple=True)
    return Matches(
        fg_image.cpu().numpy(),
        fg_anchor.cpu().numpy(),
        assigned[fg_image, fg_anchor].cpu().numpy(),
        iou_of_assigned[fg_image, fg_anchor].double().cpu().numpy(),
        ig_image.cpu().numpy(),
        ig_anchor.cpu().numpy(),
        gt_max.clamp(min=0).double().cpu().numpy(),
    )


def _torch_reductions(
    anchors: torch.Tensor, gts: torch.Tensor, num_gts: torch.Tensor, preset: Preset, chunk_anchors: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(max_iou [B, N], argmax [B, N], gt_max [B, M], last [B, N] or None), per chunk of anchors.

    ``last`` is, per anchor, the last eligible GT whose maximum it attains (-1: none), None
    without low-quality matching. Computed in the anchors' dtype.
    """
    device, dtype = anchors.device, anchors.dtype
    b, m = gts.shape[:2]
    n = anchors.shape[0]
    valid = torch.arange(m, device=device)[None, :] < num_gts[:, None]  # [B, M]
    max_iou = torch.full((b, n), -1.0, dtype=dtype, device=device)
    argmax = torch.zeros((b, n), dtype=torch.int64, device=device)
    gt_max = torch.zeros((b, m), dtype=dtype, device=device)

    def iou_block(start: int) -> torch.Tensor:
        iou = box_iou(anchors[start : start + chunk_anchors], gts, preset.legacy)  # [B, n, M]
        return iou.masked_fill_(~valid[:, None, :], -1.0)

    chunk_gt_max = []  # [B, M] per chunk: where each GT's maximum lies, for the second pass
    for start in range(0, n if m else 0, chunk_anchors):
        iou = iou_block(start)
        block_max, block_arg = iou.max(dim=2)  # ties: first index
        max_iou[:, start : start + chunk_anchors] = block_max
        argmax[:, start : start + chunk_anchors] = block_arg
        chunk_gt_max.append(iou.amax(dim=1))
        gt_max = torch.maximum(gt_max, chunk_gt_max[-1])
    if not (preset.low_quality and m):
        return max_iou, argmax, gt_max, None

    last = torch.full((b, n), -1, dtype=torch.int64, device=device)
    eligible = valid & (gt_max >= preset.min_pos_iou)  # [B, M]
    if preset.low_quality_rule == "mmdetection":
        eligible &= gt_max > 0
    gt_index = torch.arange(m, device=device)
    for k, start in enumerate(range(0, n, chunk_anchors)):
        if not ((chunk_gt_max[k] == gt_max) & eligible).any():
            continue  # no eligible GT peaks in this chunk: its IoU need not be computed again
        best = (iou_block(start) == gt_max[:, None, :]) & eligible[:, None, :]  # [B, n, M]
        last[:, start : start + chunk_anchors] = torch.where(best, gt_index, -1).amax(dim=2)
    return max_iou, argmax, gt_max, last
