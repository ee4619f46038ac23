"""imbstat's torchvision presets against torchvision's own code, run image by image (not part of CI).

torchvision's compiled ops do not load beside every torch, but the files that label anchors are plain
torch. This script loads them from a torchvision source tree (a clone, or an unpacked wheel: the
folder that holds ``torchvision/``), with every other ``torchvision`` module stubbed out:

    models/detection/transform.py      GeneralizedRCNNTransform (normalise, resize, pad to 32), resize_boxes
    models/detection/anchor_utils.py   AnchorGenerator
    models/detection/image_list.py     ImageList
    models/detection/_utils.py         Matcher
    ops/boxes.py                       box_iou
    ops/_utils.py                      _upcast, which box_iou calls (loaded where the tree has it)

or, with ``--installed``, imports the installed ``torchvision`` package as it is (where its compiled
ops load beside this torch). It labels each image of a COCO file as torchvision's training does
(references/detection's COCO conversion: crowd boxes dropped, boxes clamped to the image, empty ones
dropped; feature map sizes of the ResNet-FPN backbone: ``padded / s`` for P2-P5, 3×3 stride-2
convolutions for RetinaNet's P6/P7, a stride-2 max pool for the RPN's P6). It prints the torchvision
version it ran against (``torchvision/version.py`` of a tree, ``torchvision.__version__`` installed),
fg / bg / ignored totals and whether the per-image and per-class counts of torchvision and of
imbstat's preset are identical, and exits 1 if they differ:

    python -m benchmarks.conformance.vs_torchvision /path/to/vision [COCO_JSON] [--rpn] [--images N]
    python -m benchmarks.conformance.vs_torchvision --installed [COCO_JSON] [--rpn] [--images N]

The presets follow torchvision 0.17 to 0.28 (``resize_rounding = "floor-float64"``); against a
torchvision up to 0.15 the script compares the preset with ``resize_rounding = "floor"`` instead,
the float32 scale those releases compute (transform.py ``_resize_image_and_masks``). 0.16 passes
``interpolate`` that float32 scale as a tensor: no imbstat rounding follows it (a note says so).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import sys
import time
import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

import imbstat

DEFAULT_JSON = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco" / "coco2017_val_mini.json"
REAL = {
    "torchvision.models.detection.image_list": "models/detection/image_list.py",
    "torchvision.models.detection.anchor_utils": "models/detection/anchor_utils.py",
    "torchvision.models.detection._utils": "models/detection/_utils.py",
    "torchvision.models.detection.transform": "models/detection/transform.py",
    "torchvision.ops.boxes": "ops/boxes.py",
    "torchvision.ops._utils": "ops/_utils.py",  # ``_upcast`` (box_iou's dtype rule); older trees lack it
}
# GeneralizedRCNNTransform's resize scale (transform.py ``_resize_image_and_masks``): up to 0.15 a float32
# tensor's ``.item()`` (imbstat's "floor"); 0.16 hands ``interpolate`` the float32 tensor itself (how it
# multiplies then is the torch's: no imbstat rounding is claimed for it); from 0.17 Python floats ("floor-float64").
FLOAT32_SCALE_UNTIL, FLOAT64_SCALE_SINCE = (0, 15), (0, 17)


class _Anything:
    """Whatever a stubbed module is asked for: callable, and itself again for any attribute."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> None:
        return None

    def __getattr__(self, name: str) -> _Anything:
        return _Anything()


class _Stubs:
    """A meta-path finder: the REAL files from ``root``, every other torchvision module a stub."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, name: str, path: object = None, target: object = None):
        if name != "torchvision" and not name.startswith("torchvision."):
            return None
        if name in REAL and (self.root / REAL[name]).is_file():
            return importlib.util.spec_from_file_location(name, self.root / REAL[name])
        return importlib.util.spec_from_loader(name, self, is_package=True)

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: _Anything()  # type: ignore[method-assign]
        if spec.name == "torchvision":
            module._is_tracing = lambda: False
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        pass


def _load(root: Path | None) -> tuple[dict[str, object], str]:
    """(the classes and functions used, the torchvision version): from ``root`` (a ``torchvision/``
    folder, the rest stubbed) or, with ``root`` None, from the installed package."""
    if "torchvision" in sys.modules:
        raise SystemExit("torchvision is already imported; run this script in a fresh process")
    if root is None:
        try:
            import torchvision  # only here: a source tree must not meet the installed package
        except (ImportError, OSError, RuntimeError) as e:  # its compiled ops may not load beside this torch
            raise SystemExit(f"vs_torchvision: --installed: torchvision does not import here: {e}") from None
        version = torchvision.__version__
    else:
        version = tree_version(root)
        sys.meta_path.insert(0, _Stubs(root))
    transform = importlib.import_module("torchvision.models.detection.transform")
    return {
        "GeneralizedRCNNTransform": transform.GeneralizedRCNNTransform,
        "AnchorGenerator": importlib.import_module("torchvision.models.detection.anchor_utils").AnchorGenerator,
        "Matcher": importlib.import_module("torchvision.models.detection._utils").Matcher,
        "box_iou": importlib.import_module("torchvision.ops.boxes").box_iou,
    }, version


def tree_version(root: Path) -> str:
    """``__version__`` of ``root/version.py`` (a wheel or a built tree), else the ``version.txt`` beside
    ``root`` (a git clone), else ``"unknown"``."""
    version_py, version_txt = root / "version.py", root.parent / "version.txt"
    if version_py.is_file():
        found = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", version_py.read_text(), re.MULTILINE)
        if found:
            return found.group(1)
    if version_txt.is_file():
        return version_txt.read_text().strip()
    return "unknown"


def release(version: str) -> tuple[int, int] | None:
    """(major, minor) of a version string (``0.28.0+cu130`` -> (0, 28)), or None."""
    found = re.match(r"(\d+)\.(\d+)", version)
    return (int(found.group(1)), int(found.group(2))) if found else None


def preset_for(name: str, version: str) -> imbstat.Preset:
    """The preset compared with that torchvision: as it is for 0.17 on (and an unknown version), with
    the float32 scale (``resize_rounding = "floor"``) for releases up to 0.15."""
    preset = imbstat.load_preset(name)
    at = release(version)
    if at is not None and at <= FLOAT32_SCALE_UNTIL:
        return dataclasses.replace(preset, resize=dataclasses.replace(preset.resize, rounding="floor"))
    if at is not None and at < FLOAT64_SCALE_SINCE:
        print(f"  note: torchvision {version} resizes by a float32 tensor scale; no imbstat rounding follows it")
    return preset


def _feature_sizes(ph: int, pw: int, rpn: bool) -> list[tuple[int, int]]:
    """The ResNet-50-FPN feature map sizes of a padded image (multiples of 32)."""
    if rpn:  # P2..P5, P6 = max_pool2d(P5, kernel 1, stride 2)
        sizes = [(ph // s, pw // s) for s in (4, 8, 16, 32)]
        return [*sizes, ((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1)]
    sizes = [(ph // s, pw // s) for s in (8, 16, 32)]  # P3..P5, then P6, P7 by 3×3 stride-2 padding-1 convs
    for _ in range(2):
        sizes.append(((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1))
    return sizes


def torchvision_counts(tv: dict, ds: Any, rpn: bool) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """([I, 3] fg / bg / ignored, [K] foreground per category row, seconds) by torchvision's code.

    ``ds`` is an :class:`imbstat.Dataset` or anything with its ``num_images``, ``images.width / height``,
    ``boxes.image / iscrowd / xyxy / category`` and ``categories`` (:func:`plain_coco`). Seconds, summed
    over the images: ``transform`` (GeneralizedRCNNTransform on a zero image and the boxes: resize, pad)
    and ``labels`` (AnchorGenerator, box_iou, Matcher): the labelling a training step does per image;
    ``labels_cpu``: the CPU time of the latter (this process, all its threads).
    """
    if rpn:
        sizes = ((32,), (64,), (128,), (256,), (512,))
        matcher = tv["Matcher"](0.7, 0.3, allow_low_quality_matches=True)
    else:
        sizes = tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in [32, 64, 128, 256, 512])
        matcher = tv["Matcher"](0.5, 0.4, allow_low_quality_matches=True)
    generator = tv["AnchorGenerator"](sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    transform = tv["GeneralizedRCNNTransform"](800, 1333, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    transform.train()
    per_image = np.zeros((ds.num_images, 3), np.int64)
    per_class = np.zeros(len(ds.categories), np.int64)
    seconds = {"transform": 0.0, "labels": 0.0, "labels_cpu": 0.0}
    order = np.argsort(ds.boxes.image, kind="stable")
    starts = np.searchsorted(ds.boxes.image[order], np.arange(ds.num_images + 1))
    for i in range(ds.num_images):
        w, h = int(ds.images.width[i]), int(ds.images.height[i])
        rows = order[starts[i] : starts[i + 1]]
        rows = rows[~ds.boxes.iscrowd[rows]]
        boxes = torch.as_tensor(ds.boxes.xyxy[rows], dtype=torch.float32).reshape(-1, 4)
        boxes[:, 0::2].clamp_(min=0, max=w)
        boxes[:, 1::2].clamp_(min=0, max=h)
        keep = (boxes[:, 3] > boxes[:, 1]) & (boxes[:, 2] > boxes[:, 0])
        t0 = time.perf_counter()
        image_list, targets = transform([torch.zeros(3, h, w)], [{"boxes": boxes[keep]}])
        t1, c1 = time.perf_counter(), time.process_time()
        ph, pw = image_list.tensors.shape[-2:]
        features = [torch.zeros(1, 1, fh, fw) for fh, fw in _feature_sizes(ph, pw, rpn)]
        anchors = generator(image_list, features)[0]
        gt = targets[0]["boxes"]
        matches = matcher(tv["box_iou"](gt, anchors)) if len(gt) else torch.full((len(anchors),), -1)
        t2, c2 = time.perf_counter(), time.process_time()
        seconds["transform"] += t1 - t0
        seconds["labels"] += t2 - t1
        seconds["labels_cpu"] += c2 - c1
        per_image[i] = [(matches >= 0).sum(), (matches == -1).sum(), (matches == -2).sum()]
        np.add.at(per_class, ds.boxes.category[rows[keep.numpy()][matches[matches >= 0].numpy()]], 1)
    return per_image, per_class, seconds


def plain_coco(path: Path) -> Any:
    """The fields :func:`torchvision_counts` reads, from a COCO JSON by the standard library (no imbstat)."""
    doc = json.loads(path.read_bytes())
    image_row = {im["id"]: i for i, im in enumerate(doc["images"])}
    category_row = {c["id"]: k for k, c in enumerate(doc["categories"])}
    anns = doc["annotations"]
    xywh = np.array([a["bbox"] for a in anns], np.float64).reshape(-1, 4)
    images = SimpleNamespace(
        width=np.array([im["width"] for im in doc["images"]]), height=np.array([im["height"] for im in doc["images"]])
    )
    boxes = SimpleNamespace(
        image=np.array([image_row[a["image_id"]] for a in anns], np.int64),
        iscrowd=np.array([bool(a.get("iscrowd", 0)) for a in anns], bool),
        xyxy=np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
        category=np.array([category_row[a["category_id"]] for a in anns], np.int64),
    )
    return SimpleNamespace(num_images=len(doc["images"]), images=images, boxes=boxes, categories=doc["categories"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("vision", type=Path, nargs="?", help="root of a torchvision source tree (holds torchvision/)")
    parser.add_argument("coco", type=Path, nargs="?", default=DEFAULT_JSON)
    parser.add_argument("--installed", action="store_true", help="the installed torchvision package, not a tree")
    parser.add_argument("--rpn", action="store_true", help="torchvision-rpn instead of torchvision-retinanet")
    parser.add_argument("--images", type=int, default=0, help="only the first N images (0: all)")
    args = parser.parse_args()
    if args.installed and args.vision is not None and args.coco == DEFAULT_JSON:
        args.vision, args.coco = None, args.vision  # with --installed the one positional is the COCO file
    if args.installed == (args.vision is not None):
        parser.error("give a torchvision source tree or --installed (not both)")
    if args.vision is not None and not (args.vision / "torchvision" / "models" / "detection").is_dir():
        parser.error(f"{args.vision}: expected a folder holding torchvision/models/detection/")
    tv, version = _load(None if args.installed else args.vision / "torchvision")
    ds = imbstat.load(args.coco)
    if args.images:
        ds = ds.select_images(np.arange(ds.num_images) < args.images)
    preset = preset_for("torchvision-rpn" if args.rpn else "torchvision-retinanet", version)
    ref_image, ref_class, ref_times = torchvision_counts(tv, ds, args.rpn)
    ref_seconds = ref_times["transform"] + ref_times["labels"]
    start = time.perf_counter()
    ours = imbstat.anchor_stats(ds, preset=preset, method="sparse")
    seconds = time.perf_counter() - start
    names = ("foreground", "background", "ignored")
    where = "installed" if args.installed else f"source tree {args.vision}"
    print(f"{args.coco.name}: {ds.num_images} images, preset {preset.name} (resize_rounding {preset.resize.rounding})")
    print(f"  torchvision {version} ({where}), torch {torch.__version__}, imbstat {imbstat.__version__}")
    print(f"  torchvision: {dict(zip(names, ref_image.sum(0).tolist(), strict=True))}  ({ref_seconds:.2f} s)")
    print(f"  imbstat:     {dict(zip(names, ours.per_image.sum(0).tolist(), strict=True))}  ({seconds:.2f} s)")
    same = np.array_equal(ref_image, ours.per_image) and np.array_equal(ref_class, ours.class_foreground)
    print(f"  per image and per class: {'identical' if same else 'DIFFERENT'}")
    if not same:
        bad = np.flatnonzero((ref_image != ours.per_image).any(axis=1))
        print(f"  {len(bad)} images differ, the first: {ds.images.image_id[bad][:10].tolist()}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
