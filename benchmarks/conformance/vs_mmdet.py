"""imbstat's mmdetection presets against mmdetection 2.28.2's own code, run image by image (not part of CI).

mmdetection needs mmcv, which does not install beside every torch; the files that label anchors
and points are plain torch. This script loads them from an unpacked mmdetection 2.28.2 wheel
(``pip download mmdet==2.28.2 --no-deps && unzip mmdet-2.28.2-py3-none-any.whl -d MMDET_ROOT``),
with the few mmcv and mmdet names they import stubbed (a registry that records classes, an
identity ``force_fp32``, an empty base class for ``FCOSHead``):

    core/bbox/assigners/{max_iou_assigner,atss_assigner,assign_result,base_assigner}.py
    core/bbox/iou_calculators/iou2d_calculator.py    BboxOverlaps2D / bbox_overlaps
    core/anchor/anchor_generator.py                  AnchorGenerator
    core/anchor/point_generator.py                   MlvlPointGenerator
    models/dense_heads/fcos_head.py                  FCOSHead.get_targets / _get_target_single
    core/utils/misc.py                               multi_apply (that function only)

and labels each image of a COCO file as mmdetection's training does: GTs as
``datasets/coco.py`` ``_parse_ann_info`` makes them (boxes with no overlap with the image, area <= 0,
``w < 1`` or ``h < 1`` dropped; crowd boxes to ``gt_bboxes_ignore``, which these assigners ignore with
``ignore_iof_thr = -1``), float32, then ``pipelines/transforms.py`` ``Resize(img_scale=(1333, 800),
keep_ratio=True)`` (mmcv ``rescale_size``, float32 ``scale_factor`` new / old per axis, clipped),
``Pad(size_divisor=32)``; feature maps ``padded / s`` up to stride 32 and halved (rounded up) above
it. It prints fg / bg / ignored totals and per-class foreground of mmdetection and of imbstat's
preset, per preset and dtype, and exits 1 if any differ:

    python -m benchmarks.conformance.vs_mmdet MMDET_ROOT [COCO_JSON] [--preset retinanet|rpn|atss|fcos|fcos-center] \
        [--dtype float32|float64] [--size-filter on|off|both] [--images N] [--thin]

``--size-filter off`` runs mmdetection's code without ``coco.py``'s ``area <= 0 or w < 1 or h < 1``
drop, against imbstat's preset with ``min_gt_side = 0`` (which keeps such boxes); ``on`` compares
mmdetection exactly as it is with imbstat's preset as it is (``min_gt_side = 1``: the same drop).
``--dtype float64`` runs mmdetection's code with torch's default dtype float64 (every tensor double)
against imbstat's float64 presets; ``float32`` (mmdetection's own) against the same presets with
``dtype = "float32"``. ``--thin`` runs on a copy of the file with three boxes made thinner than 1 px,
to show what that filter changes.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib.util
import json
import sys
import tempfile
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

import imbstat
from imbstat.anchors.presets import load_preset

DEFAULT_JSON = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco" / "coco2017_val_mini.json"
PRESETS = ("retinanet", "rpn", "atss", "fcos")
# fcos_center_r50_caffe_fpn_gn-head_1x_coco's center_sampling (radius 1.5): imbstat's fcos with center_sampling = true
EXTRA_PRESETS = ("fcos-center",)
FCOS_INF = 1e8  # fcos_head.py INF, the last regress range's upper end


# --- mmcv / mmdet stubs -------------------------------------------------------------------------------


class _Registry:
    """mmcv.utils.Registry as far as these files use it: ``register_module()`` records a class."""

    def __init__(self, name: str, **kwargs: object) -> None:
        self.name, self.modules = name, {}

    def register_module(self, name: object = None, force: bool = False, module: object = None):
        def record(cls):
            self.modules[cls.__name__] = cls
            return cls

        return record


def _build_from_cfg(cfg: dict, registry: _Registry, default_args: dict | None = None):
    args = dict(cfg)
    return registry.modules[args.pop("type")](**args, **(default_args or {}))


def _force_fp32(*args: object, **kwargs: object):
    return lambda function: function


def _package(name: str, **attrs: object) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__path__ = []
    module.__dict__.update(attrs)
    sys.modules[name] = module
    return module


def _real(name: str, path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _function_from(path: Path, name: str) -> object:
    """One top-level function of a file, compiled alone (its module imports what mmcv cannot give)."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    namespace: dict[str, object] = {}
    exec("from functools import partial", namespace)
    exec(compile(ast.Module(body=[node], type_ignores=[]), str(path), "exec"), namespace)
    return namespace[name]


def load_mmdet(root: Path) -> dict[str, object]:
    """mmdetection's assigners, IoU, prior generators and FCOS targets, from ``root`` (holds mmdet/)."""
    if "mmdet" in sys.modules or "mmcv" in sys.modules:
        raise SystemExit("mmdet or mmcv is already imported; run this script in a fresh process")
    src = root / "mmdet"
    if not (src / "core" / "bbox" / "assigners" / "max_iou_assigner.py").is_file():
        raise SystemExit(f"{root}: no mmdet/core/bbox/assigners/max_iou_assigner.py; expected mmdet 2.x's root")
    _package("mmcv", is_tuple_of=lambda seq, kind: all(isinstance(x, kind) for x in seq))
    _package("mmcv.utils", Registry=_Registry, build_from_cfg=_build_from_cfg)
    _package("mmcv.cnn", Scale=object)
    _package("mmcv.runner", force_fp32=_force_fp32)
    for name in ("mmdet", "mmdet.utils", "mmdet.core.bbox", "mmdet.core.bbox.assigners",
                 "mmdet.core.bbox.iou_calculators", "mmdet.core.anchor", "mmdet.models",
                 "mmdet.models.dense_heads"):  # fmt: skip
        _package(name)
    _package("mmdet.core", multi_apply=_function_from(src / "core/utils/misc.py", "multi_apply"), reduce_mean=None)
    _package("mmdet.models.builder", HEADS=_Registry("head"), build_loss=None)
    _package("mmdet.models.dense_heads.anchor_free_head", AnchorFreeHead=type("AnchorFreeHead", (), {}))
    _real("mmdet.utils.util_mixins", src / "utils/util_mixins.py")
    _real("mmdet.core.bbox.builder", src / "core/bbox/builder.py")
    iou = sys.modules["mmdet.core.bbox.iou_calculators"]
    iou.build_iou_calculator = _real(
        "mmdet.core.bbox.iou_calculators.builder", src / "core/bbox/iou_calculators/builder.py"
    ).build_iou_calculator
    _real("mmdet.core.bbox.iou_calculators.iou2d_calculator", src / "core/bbox/iou_calculators/iou2d_calculator.py")
    base = "mmdet.core.bbox.assigners."
    for name in ("assign_result", "base_assigner"):
        _real(base + name, src / f"core/bbox/assigners/{name}.py")
    _real("mmdet.core.anchor.builder", src / "core/anchor/builder.py")
    assigners, anchor = src / "core/bbox/assigners", src / "core/anchor"
    return {
        "MaxIoUAssigner": _real(base + "max_iou_assigner", assigners / "max_iou_assigner.py").MaxIoUAssigner,
        "ATSSAssigner": _real(base + "atss_assigner", assigners / "atss_assigner.py").ATSSAssigner,
        "AnchorGenerator": _real("mmdet.core.anchor.anchor_generator", anchor / "anchor_generator.py").AnchorGenerator,
        "MlvlPointGenerator": _real("mmdet.core.anchor.point_generator", anchor / "point_generator.py").MlvlPointGenerator,  # noqa: E501
        "FCOSHead": _real("mmdet.models.dense_heads.fcos_head", src / "models/dense_heads/fcos_head.py").FCOSHead,
    }  # fmt: skip


# --- mmdetection's GTs ----------------------------------------------------------------------------------


@dataclasses.dataclass
class ImageGTs:
    """One image as mmdetection's CocoDataset gives it: size and its kept, non-crowd annotations."""

    width: int
    height: int
    bboxes: np.ndarray  # [G, 4] float64 x1 y1 x2 y2 (Python floats, before coco.py's float32 array)
    category_ids: np.ndarray  # [G]


def parse_coco(path: Path, size_filter: bool) -> tuple[dict[int, ImageGTs], dict[str, list[dict]]]:
    """(GTs per image id, the annotations each rule of coco.py:161-178 dropped)."""
    coco = json.loads(path.read_text())
    cat_ids = {c["id"] for c in coco["categories"]}
    anns: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        anns.setdefault(ann["image_id"], []).append(ann)
    images, dropped = {}, {"ignore": [], "no overlap": [], "area <= 0, w < 1 or h < 1": [], "crowd": []}
    for info in coco["images"]:
        rows = []
        for ann in anns.get(info["id"], []):
            if ann.get("ignore", False):
                dropped["ignore"].append(ann)
                continue
            x1, y1, w, h = ann["bbox"]
            inter_w = max(0, min(x1 + w, info["width"]) - max(x1, 0))
            inter_h = max(0, min(y1 + h, info["height"]) - max(y1, 0))
            if inter_w * inter_h == 0:
                dropped["no overlap"].append(ann)
                continue
            if ann["area"] <= 0 or w < 1 or h < 1:
                dropped["area <= 0, w < 1 or h < 1"].append(ann)
                if size_filter:
                    continue
            if ann["category_id"] not in cat_ids:
                continue
            if ann.get("iscrowd", False):  # gt_bboxes_ignore: unused with ignore_iof_thr = -1
                dropped["crowd"].append(ann)
                continue
            rows.append((x1, y1, x1 + w, y1 + h, ann["id"], ann["category_id"]))
        table = np.array(rows, np.float64).reshape(-1, 6)
        images[info["id"]] = ImageGTs(info["width"], info["height"], table[:, :4], table[:, 5].astype(np.int64))
    return images, dropped


def thin_copy(source: Path, target: Path) -> list[dict]:
    """A copy of a COCO file with three boxes made thinner than 1 px (area kept), to see coco.py's size filter act.

    The first non-crowd boxes over 20 × 20 px of three different images get ``w = 0.5``, ``h = 0.75`` and
    ``w = h = 0.9``; returns those annotations.
    """
    coco = json.loads(source.read_text())
    picked: list[dict] = []
    for ann in coco["annotations"]:
        if len(picked) < 3 and not ann.get("iscrowd") and min(ann["bbox"][2:]) > 20:
            if ann["image_id"] not in {a["image_id"] for a in picked}:
                picked.append(ann)
    for ann, (w, h) in zip(picked, [(0.5, None), (None, 0.75), (0.9, 0.9)], strict=True):
        ann["bbox"][2] = w if w is not None else ann["bbox"][2]
        ann["bbox"][3] = h if h is not None else ann["bbox"][3]
    target.write_text(json.dumps(coco))
    return picked


def rescale_size(w: int, h: int, scale: tuple[int, int] = (1333, 800)) -> tuple[int, int]:
    """mmcv 1.x image/geometric.py ``rescale_size`` (keep ratio) and ``_scale_size``."""
    factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(w * float(factor) + 0.5), int(h * float(factor) + 0.5)


def resized_gts(image: ImageGTs, dtype: torch.dtype) -> tuple[torch.Tensor, int, int]:
    """(GTs after transforms.py Resize (keep_ratio, clip), padded height, padded width)."""
    new_w, new_h = rescale_size(image.width, image.height)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    w_scale, h_scale = new_w / image.width, new_h / image.height  # transforms.py:229-230
    scale_factor = np.array([w_scale, h_scale, w_scale, h_scale], dtype=np_dtype)
    bboxes = image.bboxes.astype(np_dtype) * scale_factor
    bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, new_w)
    bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, new_h)
    return torch.from_numpy(bboxes), -(-new_h // 32) * 32, -(-new_w // 32) * 32


def feature_sizes(pad_h: int, pad_w: int, strides: tuple[int, ...]) -> list[tuple[int, int]]:
    """FPN outputs: ``padded / s`` up to stride 32, each higher level a stride-2 conv or pool of the last."""
    sizes = []
    for s in strides:
        if s <= 32:
            sizes.append((pad_h // s, pad_w // s))
        else:
            sizes.append(((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1))
    return sizes


# --- mmdetection's labels -------------------------------------------------------------------------------


def _labeller(mm: dict, preset: str):
    """A function (gts [G, 4], feature sizes) -> [N] long: the GT index of each prior, -1 bg, -2 ignored."""
    if preset in ("fcos", "fcos-center"):
        strides = (8, 16, 32, 64, 128)
        points = mm["MlvlPointGenerator"](strides)  # offset 0.5 (anchor_free_head.py)
        head = mm["FCOSHead"].__new__(mm["FCOSHead"])  # its nn.Module parts are not needed for targets
        head.regress_ranges = ((-1, 64), (64, 128), (128, 256), (256, 512), (512, FCOS_INF))
        head.center_sampling, head.center_sample_radius, head.norm_on_bbox = preset == "fcos-center", 1.5, False
        head.strides, head.num_classes = strides, -1  # labels below are GT indices; -1 = background

        def label_points(gts: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
            priors = points.grid_priors(sizes, dtype=gts.dtype, device="cpu")
            labels, _ = head.get_targets(priors, [gts], [torch.arange(len(gts))])
            return torch.cat(labels)

        return label_points, strides
    if preset == "rpn":  # configs/_base_/models/faster_rcnn_r50_fpn.py
        strides = (4, 8, 16, 32, 64)
        anchors = mm["AnchorGenerator"](strides=list(strides), ratios=[0.5, 1.0, 2.0], scales=[8])
        assigner = mm["MaxIoUAssigner"](pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3, match_low_quality=True)
    elif preset == "retinanet":  # configs/_base_/models/retinanet_r50_fpn.py
        strides = (8, 16, 32, 64, 128)
        anchors = mm["AnchorGenerator"](
            strides=list(strides), ratios=[0.5, 1.0, 2.0], octave_base_scale=4, scales_per_octave=3
        )
        assigner = mm["MaxIoUAssigner"](pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0)
    else:  # configs/atss/atss_r50_fpn_1x_coco.py
        strides = (8, 16, 32, 64, 128)
        anchors = mm["AnchorGenerator"](strides=list(strides), ratios=[1.0], octave_base_scale=8, scales_per_octave=1)
        assigner = mm["ATSSAssigner"](topk=9)

    def label_anchors(gts: torch.Tensor, sizes: list[tuple[int, int]]) -> torch.Tensor:
        levels = anchors.grid_priors(sizes, dtype=gts.dtype, device="cpu")  # allowed_border -1: all inside
        flat = torch.cat(levels)
        if preset == "atss":
            result = assigner.assign(flat, [len(level) for level in levels], gts, None, None)
        else:
            result = assigner.assign(flat, gts, None, None)
        gt_inds = result.gt_inds  # 0 negative, -1 ignored, k > 0 the k-th GT (1-based)
        return torch.where(gt_inds > 0, gt_inds - 1, torch.where(gt_inds == 0, -1, -2))

    return label_anchors, strides


def mmdet_counts(mm: dict, preset: str, dtype: torch.dtype, image_ids: list[int], images: dict[int, ImageGTs],
                 category_row: dict[int, int]) -> tuple[np.ndarray, np.ndarray, float]:  # fmt: skip
    """([I, 3] fg / bg / ignored, [K] foreground per category row, seconds) by mmdetection's code."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # the generators' base anchors and scales too, under float64
    try:
        label, strides = _labeller(mm, preset)
        per_image = np.zeros((len(image_ids), 3), np.int64)
        per_class = np.zeros(len(category_row), np.int64)
        start = time.perf_counter()
        for i, image_id in enumerate(image_ids):
            image = images[image_id]
            gts, pad_h, pad_w = resized_gts(image, dtype)
            matches = label(gts, feature_sizes(pad_h, pad_w, strides)).numpy()
            per_image[i] = [(matches >= 0).sum(), (matches == -1).sum(), (matches == -2).sum()]
            rows = np.array([category_row[c] for c in image.category_ids], np.int64)
            np.add.at(per_class, rows[matches[matches >= 0]], 1)
        return per_image, per_class, time.perf_counter() - start
    finally:
        torch.set_default_dtype(previous)


# --- imbstat's side -------------------------------------------------------------------------------------


def imbstat_preset(preset: str, dtype: str, folder: Path):
    """The named preset, or a TOML on it with ``dtype = "float32"`` (and ``center_sampling`` for fcos-center)."""
    lines = ['base = "fcos"', "center_sampling = true"] if preset == "fcos-center" else [f'base = "{preset}"']
    if dtype == "float32":
        lines.append('dtype = "float32"')
    elif len(lines) == 1:
        return load_preset(preset)
    path = folder / f"{preset}-{dtype}.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_preset(path)


def compare(name: str, ref: tuple[np.ndarray, np.ndarray, float], ours, ds: imbstat.Dataset) -> bool:
    labels = ("foreground", "background", "ignored")
    ref_image, ref_class, ref_seconds = ref
    same_image = np.array_equal(ref_image, ours.per_image)
    same_class = np.array_equal(ref_class, ours.class_foreground)
    print(f"  {name}")
    print(f"    mmdetection: {dict(zip(labels, ref_image.sum(0).tolist(), strict=True))}  ({ref_seconds:.1f} s)")
    print(f"    imbstat:     {dict(zip(labels, ours.per_image.sum(0).tolist(), strict=True))}")
    print(f"    per image: {'identical' if same_image else 'DIFFERENT'}; per class: "
          f"{'identical' if same_class else 'DIFFERENT'}")  # fmt: skip
    if not same_image:
        for i in np.flatnonzero((ref_image != ours.per_image).any(axis=1))[:10]:
            ref_row, our_row = ref_image[i].tolist(), ours.per_image[i].tolist()
            print(f"      image {ds.images.image_id[i]}: mmdet {ref_row} imbstat {our_row}")
    if not same_class:
        for k in np.flatnonzero(ref_class != ours.class_foreground)[:10]:
            print(f"      {ds.categories.name[k]}: mmdet {ref_class[k]} imbstat {ours.class_foreground[k]}")
    return same_image and same_class


def _thin_file(source: Path, folder: Path) -> Path:
    target = folder / source.name.replace(".json", "_thin.json")
    for ann in thin_copy(source, target):
        print(f"--thin: annotation {ann['id']} of image {ann['image_id']} now has bbox {ann['bbox']}")
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mmdet_root", type=Path, help="root of an unpacked mmdet 2.28.2 wheel (holds mmdet/)")
    parser.add_argument("coco", type=Path, nargs="?", default=DEFAULT_JSON)
    parser.add_argument("--preset", choices=PRESETS + EXTRA_PRESETS, action="append",
                        help=f"repeatable; default: {', '.join(PRESETS)}")  # fmt: skip
    parser.add_argument("--dtype", choices=("float32", "float64"), action="append", help="default: both")
    parser.add_argument("--size-filter", choices=("on", "off", "both"), default="both")
    parser.add_argument("--images", type=int, default=0, help="only the first N images (0: all)")
    parser.add_argument("--thin", action="store_true", help="run on a copy with three boxes made < 1 px thin")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="torch.meshgrid")  # point_generator.py:71 calls it without indexing
    with tempfile.TemporaryDirectory() as folder:
        return _run(args, Path(folder))


def _run(args: argparse.Namespace, folder: Path) -> int:
    if args.thin:
        args.coco = _thin_file(args.coco, folder)
    mm = load_mmdet(args.mmdet_root)
    ds = imbstat.load(args.coco)
    keep = np.arange(ds.num_images) < args.images if args.images else np.ones(ds.num_images, bool)
    ds = ds.select_images(keep)
    category_row = {int(c): k for k, c in enumerate(ds.categories.category_id)}
    image_ids = [int(i) for i in ds.images.image_id]
    filters = {"on": (True,), "off": (False,), "both": (True, False)}[args.size_filter]
    if len(filters) == 2 and not parse_coco(args.coco, False)[1]["area <= 0, w < 1 or h < 1"]:
        print(f"{args.coco.name}: no box with area <= 0, w < 1 or h < 1: size filter on and off give the same GTs")
        filters = (True,)
    same = True
    for size_filter in filters:
        images, dropped = parse_coco(args.coco, size_filter)
        small = dropped["area <= 0, w < 1 or h < 1"]
        print(f"{args.coco.name}: {ds.num_images} images; coco.py drops: "
              + ", ".join(f"{rule} {len(ids)}" for rule, ids in dropped.items())
              + f"; size filter {'ON' if size_filter else 'OFF'}")  # fmt: skip
        if small:
            print(
                "  area <= 0 / w < 1 / h < 1 boxes (annotation id: image id): "
                + ", ".join(f"{a['id']}: {a['image_id']}" for a in small)
            )
        for preset in args.preset or PRESETS:
            for dtype in args.dtype or ("float32", "float64"):
                torch_dtype = torch.float32 if dtype == "float32" else torch.float64
                ref = mmdet_counts(mm, preset, torch_dtype, image_ids, images, category_row)
                chosen = imbstat_preset(preset, dtype, folder)
                if not size_filter:
                    chosen = dataclasses.replace(chosen, min_gt_side=0.0)
                ours = imbstat.anchor_stats(ds, preset=chosen, method="sparse")
                label = f"imbstat, min_gt_side {chosen.min_gt_side:g} ({ours.gts_below_min_side} GTs below it)"
                same &= compare(f"{preset} {dtype}, {label}", ref, ours, ds)
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
