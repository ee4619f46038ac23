"""MaxIoUAssigner labeling of anchors, the dense path (docs/design.md, 'Labels').

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

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np
import torch

from imbstat.anchors.iou import gt_major_iou
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset


def match_dense(
    anchors: torch.Tensor,
    gts: torch.Tensor,
    num_gts: torch.Tensor,
    preset: Preset,
    chunk_anchors: int = 65536,
    fused: bool = False,
    keep_bytes: float = 0,
) -> Matches:
    """Label all anchors × all GTs of a batch.

    Args:
        anchors: [N, 4] float64 (float32 for a float32 preset) on the working device.
        gts: [B, M, 4] of the same dtype, rows ``>= num_gts[b]`` are padding.
        num_gts: [B] int64.
        chunk_anchors: anchors per chunk of the torch reductions; the IoU block is [B, M, chunk].
        fused: reduce with the Triton kernels of :mod:`fused` instead (CUDA; identical labels).
        keep_bytes: the IoU blocks of the first pass are kept for the low-quality pass, instead of
            computed again, when all of them together take at most this many bytes.
    """
    if fused:
        from imbstat.anchors.fused import fused_reductions

        max_iou, argmax, gt_max, last = fused_reductions(
            anchors, gts, num_gts, preset.legacy, preset.low_quality, preset.min_pos_iou
        )
    else:
        columns = anchors.T.contiguous()
        max_iou, argmax, gt_max, last = _torch_reductions(columns, gts, num_gts, preset, chunk_anchors, keep_bytes)
    return _labels(max_iou, argmax, gt_max, last, preset)


def match_dense_per_image(
    anchors: torch.Tensor,
    gts: torch.Tensor,
    num_gts: np.ndarray,
    preset: Preset,
    chunk_elements: int = 1 << 17,
    keep_bytes: float = 0,
    workers: int = 1,
) -> Matches:
    """:func:`match_dense` image by image, each against its own GTs only (no padding): the CPU's way.

    A batch's padded [B, M] GTs cost B·M IoUs per anchor where its images have sum(num_gts), and the
    CPU's elementwise operations run fastest on blocks that stay in its caches: each image's anchors
    go in chunks of about ``chunk_elements`` IoUs. torch runs each operation on one thread while
    ``workers`` threads label one image each: operations this small gain little from torch's threads,
    which wait for each other at every operation, and wait long on a CPU that other processes share.
    ``keep_bytes`` is per worker; ``num_gts`` on the host. Identical Matches to :func:`match_dense`.
    """
    columns = anchors.T.contiguous()  # [4, N], once for the batch
    counts = num_gts.tolist()

    def image(b: int) -> Matches:
        m = counts[b]
        num = torch.tensor([m], device=columns.device)
        chunk = max(1024, chunk_elements // max(m, 1))
        return _labels(*_torch_reductions(columns, gts[b : b + 1, :m], num, preset, chunk, keep_bytes), preset)

    with one_torch_thread():
        if workers > 1 and len(counts) > 1:
            with ThreadPoolExecutor(min(workers, len(counts)), thread_name_prefix="imbstat-dense") as pool:
                parts = list(pool.map(image, range(len(counts))))
        else:
            parts = [image(b) for b in range(len(counts))]
    gt_max_iou = np.zeros((len(counts), gts.shape[1]), np.float64)
    for b, (part, m) in enumerate(zip(parts, counts, strict=True)):
        gt_max_iou[b, :m] = part.gt_max_iou[0]

    def joined(field: str, image_index: bool = False) -> np.ndarray:
        arrays = [getattr(p, field) + b if image_index else getattr(p, field) for b, p in enumerate(parts)]
        return np.concatenate(arrays) if arrays else np.zeros(0, np.int64)

    return Matches(
        joined("fg_image", True), joined("fg_anchor"), joined("fg_gt"),
        joined("fg_iou").astype(np.float64), joined("ignored_image", True), joined("ignored_anchor"), gt_max_iou,
    )  # fmt: skip


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch's intra-op threads set to 1 for the block (threads started in it keep 1), then restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _labels(
    max_iou: torch.Tensor, argmax: torch.Tensor, gt_max: torch.Tensor, last: torch.Tensor | None, preset: Preset
) -> Matches:
    """Matches from the reductions (see :func:`_torch_reductions`), by the module docstring's rules."""
    fg = max_iou >= preset.pos_iou
    ignored = (max_iou >= preset.neg_iou) & ~fg
    if last is not None:
        hit = last >= 0
        fg |= hit
        ignored &= ~hit

    fg_image, fg_anchor = torch.nonzero(fg, as_tuple=True)
    ig_image, ig_anchor = torch.nonzero(ignored, as_tuple=True)
    assigned, iou_of_assigned = argmax[fg_image, fg_anchor], max_iou[fg_image, fg_anchor]  # [F]
    if last is not None and preset.low_quality_rule == "mmdetection":  # the GT it is best for, at its maximum
        fg_last = last[fg_image, fg_anchor]
        hit = fg_last >= 0
        assigned = torch.where(hit, fg_last, assigned)
        iou_of_assigned = torch.where(hit, gt_max[fg_image, fg_last.clamp(min=0)], iou_of_assigned)
    return Matches(
        fg_image.cpu().numpy(),
        fg_anchor.cpu().numpy(),
        assigned.cpu().numpy(),
        iou_of_assigned.double().cpu().numpy(),
        ig_image.cpu().numpy(),
        ig_anchor.cpu().numpy(),
        gt_max.clamp(min=0).double().cpu().numpy(),
    )


def _torch_reductions(
    columns: torch.Tensor,
    gts: torch.Tensor,
    num_gts: torch.Tensor,
    preset: Preset,
    chunk_anchors: int,
    keep_bytes: float = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(max_iou [B, N], argmax [B, N], gt_max [B, M], last [B, N] or None), per chunk of anchors.

    ``columns`` are the [4, N] anchor corners by rows. ``last`` is, per anchor, the last eligible GT
    whose maximum it attains (-1: none), None without low-quality matching. Computed in the anchors'
    dtype. The [B, M, chunk] IoU blocks are kept for the low-quality pass when all fit in ``keep_bytes``.
    """
    device, dtype = columns.device, columns.dtype
    b, m = gts.shape[:2]
    n = columns.shape[1]
    valid = torch.arange(m, device=device)[None, :] < num_gts[:, None]  # [B, M]
    padded = bool((num_gts < m).any())
    max_iou = torch.full((b, n), -1.0, dtype=dtype, device=device)
    argmax = torch.zeros((b, n), dtype=torch.int64, device=device)
    gt_max = torch.zeros((b, m), dtype=dtype, device=device)
    starts = range(0, n if m else 0, chunk_anchors)
    keep = b * m * n * columns.element_size() <= keep_bytes

    def iou_block(start: int) -> torch.Tensor:
        iou = gt_major_iou(columns[:, start : start + chunk_anchors], gts, preset.legacy)  # [B, M, n]
        return iou.masked_fill_(~valid[:, :, None], -1.0) if padded else iou

    blocks = []  # the IoU blocks, where kept
    chunk_gt_max = []  # [B, M] per chunk: where each GT's maximum lies, for the second pass
    for start in starts:
        iou = iou_block(start)
        block_max, block_arg = iou.max(dim=1)  # ties: first index
        max_iou[:, start : start + chunk_anchors] = block_max
        argmax[:, start : start + chunk_anchors] = block_arg
        chunk_gt_max.append(iou.amax(dim=2))
        gt_max = torch.maximum(gt_max, chunk_gt_max[-1])
        if keep:
            blocks.append(iou)
    if not (preset.low_quality and m):
        return max_iou, argmax, gt_max, None

    last = torch.full((b, n), -1, dtype=torch.int64, device=device)
    eligible = valid & (gt_max >= preset.min_pos_iou)  # [B, M]
    if preset.low_quality_rule == "mmdetection":
        eligible &= gt_max > 0
    gt_index = torch.arange(m, device=device)[:, None]  # [M, 1]
    for k, start in enumerate(starts):
        if not ((chunk_gt_max[k] == gt_max) & eligible).any():
            continue  # no eligible GT peaks in this chunk: its IoU need not be looked at again
        iou = blocks[k] if keep else iou_block(start)
        best = (iou == gt_max[:, :, None]) & eligible[:, :, None]  # [B, M, n]
        last[:, start : start + chunk_anchors] = torch.where(best, gt_index, -1).amax(dim=1)
    return max_iou, argmax, gt_max, last
