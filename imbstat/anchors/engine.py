"""Run a labeling path over a whole Dataset: resize GTs, group images by padded size, batch.

Images with the same padded size share one anchor grid, so a batch is one
anchor tensor against [B, M, 4] padded GTs. GTs keep their dataset order
within an image: that order decides ties in low-quality matching.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from imbstat.anchors.generate import AnchorGrid, anchor_grid, in_dtype, padded_size, require_representable
from imbstat.anchors.matches import Matches
from imbstat.anchors.presets import Preset
from imbstat.data import BoxFilter, Dataset
from imbstat.errors import ImbstatError


@dataclass(frozen=True)
class GroundTruth:
    """The GTs that take part in matching.

    ``box`` holds, per GT, its row in the dataset's boxes; GTs are sorted by
    image (stable), and ``start[i]:start[i + 1]`` are image ``i``'s GTs. Their
    corners in resized-image pixels come from :meth:`xyxy_of`, computed batch
    by batch: stored, they would be 0.8 GB at 25M GTs.
    """

    box: np.ndarray  # [T] int64 row into ds.boxes
    start: np.ndarray  # [I + 1] int64
    new_width: np.ndarray  # [I] float64 resized image size
    new_height: np.ndarray  # [I] float64
    padded_width: np.ndarray  # [I] int64
    padded_height: np.ndarray  # [I] int64
    dropped: int  # GTs with no area left after resize and clipping
    source: np.ndarray  # [N, 4] the dataset's box corners (a reference)
    scale_x: np.ndarray  # [I] float64 new / old width
    scale_y: np.ndarray  # [I] float64
    width: np.ndarray  # [I] float64 the images' own size
    height: np.ndarray  # [I] float64
    preset: Preset  # its resize rounding and dtype fix how corners are computed
    xywh_float32: bool = False  # the source corners as detectron2 makes them from COCO [x, y, w, h]
    below_min_side: int = 0  # GTs with a side < preset.min_gt_side in the original image, dropped first

    def xyxy_of(self, rows: np.ndarray) -> np.ndarray:
        """[n, 4] float64 corners of GT ``rows``, resized and clipped to the resized image."""
        image = np.searchsorted(self.start, rows, side="right") - 1
        return _resized(self.source[self.box[rows]], image, self.new_width, self.new_height, self.scale_x,
                        self.scale_y, self.width, self.height, self.preset, xywh_float32=self.xywh_float32)  # fmt: skip


def xywh_float32_corners(xyxy: np.ndarray) -> np.ndarray:
    """[n, 4] float64: the corners detectron2 v0.6 makes of COCO ``[x, y, w, h]`` boxes.

    ``transform_instance_annotations`` converts a record's bbox (a Python list) by ``BoxMode.convert``,
    which builds ``torch.tensor(box)``: float32, so ``x0 = f32(x)``, ``x1 = f32(f32(x) + f32(w))``
    (structures/boxes.py), before the float64 resize. ``w`` is taken back as ``x1 - x0`` of the float64
    corners: its float32 rounding is ``f32(w)`` for widths written with up to ~8 decimals.
    """
    f32 = np.float32
    with np.errstate(over="ignore"):  # past float32's range is inf, as torch.tensor makes it
        low = xyxy[:, :2].astype(f32)
        return np.concatenate([low, low + (xyxy[:, 2:] - xyxy[:, :2]).astype(f32)], axis=1).astype(np.float64)


def _resized(xyxy: np.ndarray, image: np.ndarray, new_w: np.ndarray, new_h: np.ndarray, scale_x: np.ndarray,
             scale_y: np.ndarray, width: np.ndarray, height: np.ndarray, preset: Preset, *,
             xywh_float32: bool = False) -> np.ndarray:  # fmt: skip
    """Corners scaled per axis by their image's ``new / old`` (mmdet 2.x Resize), clipped to the new size.

    Under torchvision's roundings (``resize.torchvision``) as its references and ``resize_boxes`` do it:
    float32 corners clamped to the original image, times the float32 ratio ``new / old``, in
    float32. A float32 preset with ``"round"`` (mmdetection's): float32 corners times the float32
    ``new / old``, in float32. Otherwise in float64 (detectron2's transforms too), then cast to the preset's
    dtype; ``xywh_float32``: from :func:`xywh_float32_corners` (detectron2 on a COCO file).
    """
    if xywh_float32:
        xyxy = xywh_float32_corners(xyxy)
    w, h = new_w[image], new_h[image]
    if preset.resize.torchvision:
        f32 = np.float32
        old_w, old_h = width[image], height[image]
        clamped = np.clip(xyxy.astype(f32), f32(0), np.stack([old_w, old_h, old_w, old_h], axis=1).astype(f32))
        ratio = np.stack([w, h, w, h], axis=1).astype(f32) / np.stack([old_w, old_h, old_w, old_h], axis=1).astype(f32)
        return (clamped * ratio).astype(np.float64)
    sx, sy = scale_x[image], scale_y[image]
    if preset.float32 and preset.resize.rounding == "round":
        # mmdetection 2.28: CocoDataset's float32 corners (datasets/coco.py:173-182) times Resize's float32
        # scale_factor, in float32, clipped to the new size (datasets/pipelines/transforms.py:229-255).
        f32 = np.float32
        scaled = xyxy.astype(f32) * np.stack([sx, sy, sx, sy], axis=1).astype(f32)
        return np.clip(scaled, f32(0), np.stack([w, h, w, h], axis=1).astype(f32)).astype(np.float64)
    return in_dtype(preset, np.clip(xyxy * np.stack([sx, sy, sx, sy], axis=1), 0.0, np.stack([w, h, w, h], axis=1)))


def _alive(source: np.ndarray, xyxy: np.ndarray, old_w: np.ndarray, old_h: np.ndarray, preset: Preset) -> np.ndarray:
    """[n] bool: GTs with area left after resize and clipping (``xyxy``). torchvision's references
    (``resize.torchvision``) test the float32 corners clamped to the original image (``source``, in an image
    ``old_w`` × ``old_h``) before the resize; detectron2 (``"shortest-edge"``) drops sides <= 1e-5 px,
    as its ``filter_empty_instances`` does on float32 boxes."""
    if preset.resize.torchvision:
        f32 = np.float32
        size = np.stack([old_w, old_h, old_w, old_h], axis=1).astype(f32)
        clamped = np.clip(source.astype(f32), f32(0), size)
        return (clamped[:, 2] > clamped[:, 0]) & (clamped[:, 3] > clamped[:, 1])
    if preset.resize.rounding == "shortest-edge":
        f32 = np.float32
        return (xyxy[:, 2].astype(f32) - xyxy[:, 0].astype(f32) > f32(1e-5)) & (
            xyxy[:, 3].astype(f32) - xyxy[:, 1].astype(f32) > f32(1e-5)
        )
    return (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])


_CHUNK_GTS = 1 << 20


def ground_truth(ds: Dataset, preset: Preset, box_filter: BoxFilter = BoxFilter()) -> GroundTruth:
    """Scale the counted boxes per axis by ``new / old`` (mmdet 2.x Resize), clip, drop empty ones."""
    ds.require_sizes("anchor statistics")
    keep = box_filter.mask(ds.boxes)
    if preset.ignore_crowd:
        keep &= ~ds.boxes.iscrowd
    below_min_side = 0
    if preset.min_gt_side > 0 and ds.format == "coco":  # CocoDataset's test; mmdetection's XMLDataset has none
        # mmdetection compares the annotation's own w and h (Python floats of the JSON) with 1; a COCO loader
        # stores x2 = fl(x1 + w), and x2 - x1 can be below w (x1 = 0.38, w = 1: 0.9999999999999999). Rounding
        # is monotone, so x2 >= fl(x1 + m) holds for every w >= m: only a w within half an ulp of x2 below m
        # (~1e-13 px at x ~ 1000) can pass where mmdetection drops it.
        xyxy, m = ds.boxes.xyxy, preset.min_gt_side
        small = keep & ~((xyxy[:, 2] >= xyxy[:, 0] + m) & (xyxy[:, 3] >= xyxy[:, 1] + m))
        below_min_side = int(small.sum())
        keep &= ~small
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(ds.boxes.image[rows], kind="stable")]
    image = ds.boxes.image[rows]
    width, height = ds.images.width, ds.images.height
    # Loaded datasets hold only sizes that the built-in presets represent; a custom resize, a hand-built
    # Dataset or an older cache may not, and such an image would have no anchor grid.
    require_representable(preset, width, height, ds.images.image_id, ds.path)
    new_w, new_h = preset.resize.new_size(width, height)
    pad_w, pad_h = padded_size(preset, width, height)
    scale_x, scale_y = preset.resize.axis_scales(width, height)
    # detectron2 reads COCO boxes as [x, y, w, h] and adds them up in float32 (benchmarks/conformance/vs_detectron2.py)
    xywh_float32 = preset.resize.rounding == "shortest-edge" and ds.format == "coco"
    alive = np.empty(len(rows), bool)
    for lo in range(0, len(rows), _CHUNK_GTS):  # in row chunks: [T, 4] temporaries would be GBs
        part = slice(lo, lo + _CHUNK_GTS)
        xyxy = _resized(ds.boxes.xyxy[rows[part]], image[part], new_w, new_h, scale_x, scale_y, width, height,
                        preset, xywh_float32=xywh_float32)  # fmt: skip
        alive[part] = _alive(ds.boxes.xyxy[rows[part]], xyxy, width[image[part]], height[image[part]], preset)
    if not alive.all():
        rows, image = rows[alive], image[alive]
    start = np.searchsorted(image, np.arange(ds.num_images + 1))
    return GroundTruth(rows, start, new_w, new_h, pad_w, pad_h, int((~alive).sum()), ds.boxes.xyxy, scale_x,
                       scale_y, np.asarray(width, np.float64), np.asarray(height, np.float64), preset,
                       xywh_float32, below_min_side)  # fmt: skip


@dataclass(frozen=True)
class Batch:
    """Images that share one anchor grid, with their GTs padded to [B, M]."""

    grid: AnchorGrid
    images: np.ndarray  # [B] int64 image rows
    gts: np.ndarray  # [B, M, 4] float64
    gt_rows: np.ndarray  # [B, M] int64 index into GroundTruth arrays, -1 for padding
    num_gts: np.ndarray  # [B] int64


def batches(gt: GroundTruth, preset: Preset, batch_size: int = 32) -> Iterator[Batch]:
    """Batches of at most ``batch_size`` images of one padded size, in a deterministic order."""
    counts = np.diff(gt.start)
    if not len(counts):
        return  # no image (an empty shard): no batch, and np.split would give one empty group
    order = np.lexsort((np.arange(len(counts)), gt.padded_height, gt.padded_width))
    sizes = np.stack([gt.padded_width[order], gt.padded_height[order]], axis=1)
    breaks = np.flatnonzero((np.diff(sizes, axis=0) != 0).any(axis=1)) + 1
    for group in np.split(order, breaks):
        grid = anchor_grid(preset, int(gt.padded_width[group[0]]), int(gt.padded_height[group[0]]))
        for lo in range(0, len(group), batch_size):
            images = group[lo : lo + batch_size]
            num = counts[images]
            m = int(num.max(initial=0))
            slot = np.arange(m)[None, :]
            gt_rows = np.where(slot < num[:, None], gt.start[images][:, None] + slot, -1)  # [B, M]
            gts = np.zeros((len(images), m, 4), np.float64)
            gts[gt_rows >= 0] = gt.xyxy_of(gt_rows[gt_rows >= 0])
            yield Batch(grid, images, gts, gt_rows, num)


Matcher = Callable[[Batch], Matches]
METHODS = ("auto", "sparse", "dense", "fused")


# Live float64 [B, chunk, M] tensors in one dense IoU block (iw, ih, inter, union, iou, comparisons).
_BLOCK_TENSORS = 8


def resolve_method(method: str, device: str) -> str:
    """``method`` with ``auto`` made concrete: dense on CUDA, sparse elsewhere."""
    if method not in METHODS:
        raise ImbstatError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    if method != "auto":
        return method
    return "dense" if device.startswith("cuda") else "sparse"


def check_method(preset: Preset, method: str, device: str = "cpu") -> None:
    """ImbstatError where ``method`` cannot give ``preset``'s labels (checked when the options are built)."""
    if preset.assigner != "max-iou":
        if method not in ("sparse", "auto"):
            raise ImbstatError(
                f"the {preset.assigner} assigner (preset {preset.name}) has one implementation, on "
                f"the CPU over candidate windows; use --method auto or sparse, not {method}"
            )
        return
    method = resolve_method(method, device)
    if method == "fused" and (preset.float32 or preset.low_quality_rule != "mmdetection"):
        raise ImbstatError(f"--method fused computes mmdetection's float64 labels, not preset {preset.name}'s "
                           f"{preset.conventions()}; use --method dense or sparse")  # fmt: skip


def make_matcher(preset: Preset, device: str = "cpu", method: str = "auto", memory_mb: float = 1024) -> Matcher:
    """A function that labels one batch with the chosen path on the chosen device.

    ``auto`` is sparse on the CPU and dense on CUDA. ``fused`` is the dense
    path with the Triton kernels of :mod:`fused` (CUDA only; not yet measured
    on a GPU, so not what ``auto`` picks). All paths give identical Matches
    (docs/design.md, 'Two paths, one answer'). The torch dense path sizes its anchor chunks so that one
    IoU block stays within ``memory_mb`` of device memory.
    """
    if preset.assigner != "max-iou":
        check_method(preset, method)
        if device != "cpu":
            logging.getLogger(__name__).info(sparse_device_note(device))
        return _assigner_matcher(preset)
    method = resolve_method(method, device)
    if device == "cpu" and method == "sparse":
        return _sparse_matcher(preset)  # no torch import (~0.7 s) for the CPU path

    try:
        import torch
    except ImportError:  # an extra: the sparse, ATSS and FCOS paths need none of it
        raise ImbstatError(f"--method {method} (on --device {device}) needs torch, which is not installed: "
                           "pip install 'imbstat[torch]'") from None  # fmt: skip

    from imbstat.anchors.assign import match_dense, match_dense_per_image

    try:
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ImbstatError(f"device {device!r} requested but torch sees no CUDA device; use --device cpu")
    except RuntimeError as e:
        raise ImbstatError(f"unknown device {device!r}: {e}; expected cpu, cuda or cuda:N") from None
    if method == "sparse":
        if dev.type != "cpu":
            logging.getLogger(__name__).info(sparse_device_note(device))
        return _sparse_matcher(preset)
    fused = method == "fused"
    check_method(preset, method)
    if fused:
        if dev.type != "cuda":
            raise ImbstatError(f"--method fused runs Triton kernels on CUDA, not on {device!r}; use --method dense")
        try:
            import imbstat.anchors.fused  # noqa: F401
        except ImportError:
            raise ImbstatError("--method fused needs Triton (CUDA builds of torch include it)") from None

    anchors_on_device: dict[int, torch.Tensor] = {}
    dtype = torch.float32 if preset.float32 else torch.float64  # float32 values are exact in both

    def dense(batch: Batch) -> Matches:
        key = id(batch.grid)
        if key not in anchors_on_device:
            anchors_on_device.clear()  # grids come grouped by size: keep only the current one
            anchors_on_device[key] = torch.from_numpy(batch.grid.xyxy).to(dev, dtype)
        gts = torch.from_numpy(batch.gts).to(dev, dtype)
        if dev.type == "cpu":  # image by image in cache-sized blocks, images on every core (assign.py)
            anchors = anchors_on_device[key]
            workers = cores()
            keep = memory_mb * 2**20 / workers
            return match_dense_per_image(anchors, gts, batch.num_gts, preset, keep_bytes=keep, workers=workers)
        num = torch.from_numpy(batch.num_gts).to(dev)
        block_bytes_per_anchor = _BLOCK_TENSORS * 8 * max(gts.shape[0] * gts.shape[1], 1)
        chunk = max(1024, int(memory_mb * 2**20 // block_bytes_per_anchor))
        return match_dense(anchors_on_device[key], gts, num, preset, chunk, fused)

    return dense


def sparse_device_note(device: str) -> str:
    """What a user who asked for the sparse path on ``device`` (not the CPU) is told."""
    return f"the sparse path runs on the CPU; --device {device} is not used"


def _sparse_matcher(preset: Preset) -> Matcher:
    """The compiled sparse path (numba's kernel, loaded by :mod:`kernels`)."""
    from imbstat.anchors.kernels import load_kernel
    from imbstat.anchors.sparse import match_sparse

    load_kernel("imbstat.anchors.sparse_kernel", "_label")  # loaded here, not in a labelling thread
    return lambda batch: match_sparse(batch.grid, batch.gts, batch.num_gts, preset)


def _assigner_matcher(preset: Preset) -> Matcher:
    """The labelling function of an assigner other than MaxIoU (``preset.assigner``)."""
    if preset.assigner == "atss":
        from imbstat.anchors.atss import atss_matcher

        return atss_matcher(preset)
    if preset.assigner == "fcos":
        from imbstat.anchors.fcos import fcos_matcher

        return fcos_matcher(preset)
    raise AssertionError(f"unknown assigner {preset.assigner!r}")  # Preset validates it: unreachable


def cores() -> int:
    """The cores this process may run on (its affinity, so a container's limit), else the machine's."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def labelled(todo: Iterator[Batch], matcher: Matcher, workers: int) -> Iterator[tuple[Batch, Matches]]:
    """``(batch, matcher(batch))`` in batch order, labelled ``workers`` at a time; at most 2·workers in flight."""
    if workers <= 1:
        yield from ((batch, matcher(batch)) for batch in todo)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="imbstat-label") as pool:
        pending: deque[tuple[Batch, Future[Matches]]] = deque()
        for batch in todo:
            pending.append((batch, pool.submit(matcher, batch)))
            if len(pending) >= 2 * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
