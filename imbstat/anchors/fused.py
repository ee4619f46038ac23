"""The dense path's reductions as fused Triton kernels, for CUDA: the IoU stays in registers.

The torch dense path materialises [B, chunk, M] float64 blocks, several per step; on a GPU
that memory traffic, not the arithmetic, bounds it. Here one program takes a block of
anchors of one image and loops over the image's GTs, keeping each anchor's best IoU and
GT in registers and writing only the reductions:

1. per anchor its max IoU and argmax GT (ties: the lowest index, as ``torch.max``), and per
   block of anchors each GT's max (reduced over blocks in torch);
2. low-quality matching: per anchor the last eligible GT whose maximum it attains, visiting
   only the blocks where that GT peaks.

The IoU is ``iou.box_iou``'s float64 expression in its order, compiled without FMA
contraction, so the labels are those of every other path (docs/design.md, 'Numerics'). The tests run
the kernels in Triton's interpreter on the CPU; ``benchmarks/bench_gpu.py`` checks them
against the sparse path on a GPU.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

BLOCK_ANCHORS = 256


@triton.jit
def _iou(ax1, ay1, ax2, ay2, gx1, gy1, gx2, gy2, one):
    iw = tl.maximum(tl.minimum(ax2, gx2) - tl.maximum(ax1, gx1) + one, 0.0)
    ih = tl.maximum(tl.minimum(ay2, gy2) - tl.maximum(ay1, gy1) + one, 0.0)
    inter = iw * ih
    area_a = (ax2 - ax1 + one) * (ay2 - ay1 + one)
    area_g = (gx2 - gx1 + one) * (gy2 - gy1 + one)
    return inter / (area_a + area_g - inter)


@triton.jit
def _iou_with_gt(ax1, ay1, ax2, ay2, g, one):
    """IoU of the block's anchors with the GT whose 4 corners start at pointer ``g``."""
    return _iou(ax1, ay1, ax2, ay2, tl.load(g), tl.load(g + 1), tl.load(g + 2), tl.load(g + 3), one)


@triton.jit
def _anchor_block(anchors, n, BLOCK: tl.constexpr):
    """This program's image ``b``, anchor block and its anchors' corners (0 outside ``n``)."""
    b = tl.program_id(0).to(tl.int64)  # int64 offsets: B·N may pass 2**31
    block = tl.program_id(1).to(tl.int64)
    offs = block * BLOCK + tl.arange(0, BLOCK)
    inside = offs < n
    ax1 = tl.load(anchors + offs * 4, mask=inside, other=0.0)
    ay1 = tl.load(anchors + offs * 4 + 1, mask=inside, other=0.0)
    ax2 = tl.load(anchors + offs * 4 + 2, mask=inside, other=0.0)
    ay2 = tl.load(anchors + offs * 4 + 3, mask=inside, other=0.0)
    return b, block, offs, inside, ax1, ay1, ax2, ay2


@triton.jit
def _max_kernel(anchors, gts, num_gts, max_iou, argmax, block_gt_max, n, m, blocks, one, BLOCK: tl.constexpr):
    b, block, offs, inside, ax1, ay1, ax2, ay2 = _anchor_block(anchors, n, BLOCK)
    best = tl.full([BLOCK], -1.0, tl.float64)
    best_gt = tl.zeros([BLOCK], tl.int64)
    for j in range(0, tl.load(num_gts + b)):
        iou = _iou_with_gt(ax1, ay1, ax2, ay2, gts + (b * m + j) * 4, one)
        better = iou > best  # strictly: ties keep the lower GT index
        best = tl.where(better, iou, best)
        best_gt = tl.where(better, j, best_gt)
        tl.store(block_gt_max + (b * blocks + block) * m + j, tl.max(tl.where(inside, iou, -1.0), axis=0))
    tl.store(max_iou + b * n + offs, best, mask=inside)
    tl.store(argmax + b * n + offs, best_gt, mask=inside)


@triton.jit
def _last_best_kernel(anchors, gts, num_gts, gt_max, eligible, block_gt_max, last, n, m, blocks, one,
                      BLOCK: tl.constexpr):  # fmt: skip
    b, block, offs, inside, ax1, ay1, ax2, ay2 = _anchor_block(anchors, n, BLOCK)
    result = tl.full([BLOCK], -1, tl.int64)
    for j in range(0, tl.load(num_gts + b)):
        peak = tl.load(gt_max + b * m + j)
        peaks_here = tl.load(block_gt_max + (b * blocks + block) * m + j) == peak
        if (tl.load(eligible + b * m + j) != 0) & peaks_here:
            iou = _iou_with_gt(ax1, ay1, ax2, ay2, gts + (b * m + j) * 4, one)
            result = tl.where(iou == peak, j, result)  # a later GT overwrites an earlier one
    tl.store(last + b * n + offs, result, mask=inside)


def fused_reductions(
    anchors: torch.Tensor, gts: torch.Tensor, num_gts: torch.Tensor, legacy: bool, low_quality: bool,
    min_pos_iou: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:  # fmt: skip
    """(max_iou [B, N], argmax [B, N], gt_max [B, M] (>= 0), last [B, N] or None): see the module."""
    b, m = gts.shape[:2]
    n = anchors.shape[0]
    device = anchors.device
    anchors, gts = anchors.contiguous(), gts.contiguous()
    num_gts = num_gts.to(torch.int64).contiguous()
    blocks = triton.cdiv(n, BLOCK_ANCHORS)
    max_iou = torch.empty((b, n), dtype=torch.float64, device=device)
    argmax = torch.empty((b, n), dtype=torch.int64, device=device)
    block_gt_max = torch.full((b, blocks, max(m, 1)), -1.0, dtype=torch.float64, device=device)
    one = 1.0 if legacy else 0.0
    grid = (b, blocks)
    # Triton launches on the current CUDA device, not on the tensors': make theirs current (cuda:N).
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        # enable_fp_fusion=False: an FMA in ``area_a + area_g - iw * ih`` would round differently.
        _max_kernel[grid](anchors, gts, num_gts, max_iou, argmax, block_gt_max, n, m, blocks, one,
                          BLOCK=BLOCK_ANCHORS, enable_fp_fusion=False)  # fmt: skip
    gt_max = block_gt_max[:, :, :m].amax(dim=1).clamp(min=0) if blocks else gts.new_zeros((b, m))
    if not (low_quality and m):
        return max_iou, argmax, gt_max, None
    valid = torch.arange(m, device=device)[None, :] < num_gts[:, None]
    eligible = (valid & (gt_max > 0) & (gt_max >= min_pos_iou)).to(torch.int8)
    last = torch.empty((b, n), dtype=torch.int64, device=device)
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        _last_best_kernel[grid](anchors, gts, num_gts, gt_max, eligible, block_gt_max, last, n, m, blocks, one,
                                BLOCK=BLOCK_ANCHORS, enable_fp_fusion=False)  # fmt: skip
    return max_iou, argmax, gt_max, last
