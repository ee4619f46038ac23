"""imbstat's ``detectron2-retinanet`` preset against detectron2 v0.6's own code, image by image (not part of CI).

detectron2 is not on PyPI and its compiled ops need a build, but the code that labels RetinaNet's
anchors is plain torch and numpy. This script loads these files, unchanged, from a source root that
holds ``detectron2/`` (v0.6) and ``fvcore/`` (0.1.5, the version v0.6 requires), with every other
``detectron2``, ``fvcore`` and ``iopath`` module a stub:

    detectron2/data/datasets/coco.py              load_coco_json (pycocotools' COCO reads the file)
    detectron2/data/dataset_mapper.py             DatasetMapper._transform_annotations (crowd dropped)
    detectron2/data/detection_utils.py            transform_instance_annotations, annotations_to_instances,
                                                  filter_empty_instances
    detectron2/data/transforms/{__init__,transform,augmentation,augmentation_impl}.py
                                                  ResizeShortestEdge, ResizeTransform
    fvcore/transforms/{__init__,transform,transform_util}.py   Transform.apply_box
    fvcore/common/timer.py                        Timer (load_coco_json times itself)
    detectron2/structures/{boxes,instances,image_list}.py     Boxes, BoxMode, pairwise_iou, Instances, ImageList
    detectron2/layers/wrappers.py                 nonzero_tuple, shapes_to_tensor
    detectron2/modeling/anchor_generator.py       DefaultAnchorGenerator
    detectron2/modeling/matcher.py                Matcher
    detectron2/modeling/meta_arch/retinanet.py    RetinaNet.label_anchors (called unbound)

Each image goes through them as ``retinanet_R_50_FPN_1x`` trains on it, at the test size: the
record of ``load_coco_json``, ``ResizeShortestEdge(800, 1333)``'s transform (training samples the
short side from 640..800; the preset keeps 800), the mapper's annotation step, ``ImageList`` padding
to 32, the ResNet-FPN feature map sizes (``padded / s`` for P3-P5, P6 and P7 by 3×3 stride-2
padding-1 convolutions), ``DefaultAnchorGenerator`` of Base-RetinaNet.yaml (sizes
``[x, x·2^(1/3), x·2^(2/3)]``, ratios 0.5 / 1 / 2, offset 0), ``Matcher([0.4, 0.5], [0, -1, 1],
allow_low_quality_matches=True)`` and ``label_anchors``. No random flip: the preset has none.
It prints fg / bg / ignored totals and per-class foreground of both sides and exits 1 if they differ.

The source root, from git (the v0.6 tag is commit d1e04565d3bec8719335b88be9e9b961bf3ec464):

    git clone https://github.com/facebookresearch/detectron2 && mkdir d2src
    git -C detectron2 archive v0.6 detectron2 | tar x -C d2src
    pip download --no-deps --no-binary :all: fvcore==0.1.5.post20221221 && tar xzf fvcore-*.tar.gz
    cp -r fvcore-0.1.5.post20221221/fvcore d2src/

    python -m benchmarks.conformance.vs_detectron2 d2src [COCO_JSON] [--images N]

Needs pycocotools and Pillow (detectron2's coco.py and transforms import them).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import torch

import imbstat

DEFAULT_JSON = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco" / "coco2017_val_mini.json"
STUBBED_ROOTS = ("detectron2", "fvcore", "iopath")
REAL = {
    "fvcore.transforms": "fvcore/transforms/__init__.py",
    "fvcore.transforms.transform": "fvcore/transforms/transform.py",
    "fvcore.transforms.transform_util": "fvcore/transforms/transform_util.py",
    "fvcore.common.timer": "fvcore/common/timer.py",
    "detectron2.structures.boxes": "detectron2/structures/boxes.py",
    "detectron2.structures.instances": "detectron2/structures/instances.py",
    "detectron2.structures.image_list": "detectron2/structures/image_list.py",
    "detectron2.layers.wrappers": "detectron2/layers/wrappers.py",
    "detectron2.data.transforms": "detectron2/data/transforms/__init__.py",
    "detectron2.data.transforms.transform": "detectron2/data/transforms/transform.py",
    "detectron2.data.transforms.augmentation": "detectron2/data/transforms/augmentation.py",
    "detectron2.data.transforms.augmentation_impl": "detectron2/data/transforms/augmentation_impl.py",
    "detectron2.data.detection_utils": "detectron2/data/detection_utils.py",
    "detectron2.data.dataset_mapper": "detectron2/data/dataset_mapper.py",
    "detectron2.data.datasets.coco": "detectron2/data/datasets/coco.py",
    "detectron2.modeling.anchor_generator": "detectron2/modeling/anchor_generator.py",
    "detectron2.modeling.matcher": "detectron2/modeling/matcher.py",
    "detectron2.modeling.meta_arch.retinanet": "detectron2/modeling/meta_arch/retinanet.py",
}
# Stub packages that re-export names of real submodules (their real __init__ imports compiled ops).
REEXPORT = {
    "detectron2.structures": ("detectron2.structures.boxes", "detectron2.structures.instances",
                              "detectron2.structures.image_list"),
    "detectron2.layers": ("detectron2.layers.wrappers",),
}  # fmt: skip
# coco.py reads the file through PathManager.get_local_path; a local path is its own local path.
SPECIAL = {"detectron2.utils.file_io": {"PathManager": types.SimpleNamespace(get_local_path=str, open=open)}}


class _Anything:
    """Whatever a stubbed module is asked for: callable, a decorator that keeps what it decorates,
    a base class that adds nothing, and itself again for any attribute."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __call__(self, *args: object, **kwargs: object) -> object:
        if len(args) == 1 and not kwargs and isinstance(args[0], (type, types.FunctionType)):
            return args[0]  # @REGISTRY.register(), @configurable
        return _Anything()

    def __getattr__(self, name: str) -> _Anything:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Anything()

    def __mro_entries__(self, bases: tuple) -> tuple:
        return ()  # class RetinaNet(DenseDetector): the stub base drops out


class _Stubs:
    """A meta-path finder: the REAL files from ``root``, every other detectron2 / fvcore / iopath module a stub."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def find_spec(self, name: str, path: object = None, target: object = None):
        if name.split(".")[0] not in STUBBED_ROOTS:
            return None
        if name in REAL:
            is_package = REAL[name].endswith("__init__.py")
            return importlib.util.spec_from_file_location(
                name, self.root / REAL[name], submodule_search_locations=[] if is_package else None
            )
        return importlib.util.spec_from_loader(name, self, is_package=True)

    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = lambda attr: _attribute(spec.name, attr)  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        for real in REEXPORT.get(module.__name__, ()):
            source = importlib.import_module(real)
            module.__dict__.update({k: v for k, v in vars(source).items() if not k.startswith("_")})
        module.__dict__.update(SPECIAL.get(module.__name__, {}))


def _attribute(package: str, name: str) -> object:
    """A stub package's attribute: a REAL submodule (``from . import detection_utils``), else a stub."""
    if f"{package}.{name}" in REAL:
        return importlib.import_module(f"{package}.{name}")
    return _Anything()


def _load(root: Path) -> types.SimpleNamespace:
    for needed in ("detectron2/modeling/matcher.py", "fvcore/transforms/transform.py"):
        if not (root / needed).is_file():
            raise SystemExit(f"{root / needed} not found: ROOT must hold detectron2/ (v0.6) and fvcore/ (0.1.5)")
    if any(name.split(".")[0] in STUBBED_ROOTS for name in sys.modules):
        raise SystemExit("detectron2 / fvcore is already imported; run this script in a fresh process")
    from PIL import Image

    if not hasattr(Image, "LINEAR"):  # Pillow 10 removed this alias of BILINEAR; transform.py names it in a default
        Image.LINEAR = Image.BILINEAR
    # detectron2 v0.6 calls torch.meshgrid without indexing= (its "ij" default), which newer torch warns about
    warnings.filterwarnings("ignore", message="torch.meshgrid")
    sys.meta_path.insert(0, _Stubs(root))
    mod = importlib.import_module
    return types.SimpleNamespace(
        load_coco_json=mod("detectron2.data.datasets.coco").load_coco_json,
        DatasetMapper=mod("detectron2.data.dataset_mapper").DatasetMapper,
        T=mod("detectron2.data.transforms"),
        ImageList=mod("detectron2.structures.image_list").ImageList,
        DefaultAnchorGenerator=mod("detectron2.modeling.anchor_generator").DefaultAnchorGenerator,
        Matcher=mod("detectron2.modeling.matcher").Matcher,
        RetinaNet=mod("detectron2.modeling.meta_arch.retinanet").RetinaNet,
    )


def _feature_sizes(ph: int, pw: int) -> list[tuple[int, int]]:
    """RetinaNet's ResNet-50-FPN P3-P7 sizes of a padded image (multiples of 32): ``padded / s`` for
    res3-res5, then fpn.py LastLevelP6P7's ``Conv2d(k=3, s=2, p=1)`` twice."""
    sizes = [(ph // s, pw // s) for s in (8, 16, 32)]
    for _ in range(2):
        sizes.append(((sizes[-1][0] - 1) // 2 + 1, (sizes[-1][1] - 1) // 2 + 1))
    return sizes


def detectron2_counts(d2: types.SimpleNamespace, coco: Path, image_ids: np.ndarray, category_ids: np.ndarray):
    """([I, 3] fg / bg / ignored in ``image_ids`` order, [K] foreground per ``category_ids`` row,
    images without a non-crowd annotation, seconds), by detectron2's own code."""
    records = {r["image_id"]: r for r in d2.load_coco_json(str(coco), "", dataset_name=None)}
    background = int(max(category_ids.max(initial=0), max(records, default=0))) + 1  # any id above every class
    label_self = types.SimpleNamespace(
        anchor_matcher=d2.Matcher([0.4, 0.5], [0, -1, 1], allow_low_quality_matches=True), num_classes=background
    )
    generator = d2.DefaultAnchorGenerator(
        sizes=[[x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)] for x in [32, 64, 128, 256, 512]],
        aspect_ratios=[[0.5, 1.0, 2.0]],
        strides=[8, 16, 32, 64, 128],
        offset=0.0,
    )
    resize = d2.T.ResizeShortestEdge(800, 1333)
    mapper_self = types.SimpleNamespace(use_instance_mask=False, use_keypoint=False, keypoint_hflip_indices=None,
                                        instance_mask_format="polygon", recompute_boxes=False)  # fmt: skip
    per_image = np.zeros((len(image_ids), 3), np.int64)
    class_counts: dict[int, int] = {}
    only_crowd = 0
    start = time.perf_counter()
    for i, image_id in enumerate(image_ids.tolist()):
        record = copy.deepcopy(records[image_id])  # DatasetMapper.__call__ deep-copies too
        only_crowd += not any(a.get("iscrowd", 0) == 0 for a in record["annotations"])
        h, w = record["height"], record["width"]
        transforms = d2.T.TransformList([resize.get_transform(np.empty((h, w, 0), np.uint8))])
        new_h, new_w = transforms.transforms[0].new_h, transforms.transforms[0].new_w
        d2.DatasetMapper._transform_annotations(mapper_self, record, transforms, (new_h, new_w))
        images = d2.ImageList.from_tensors([torch.zeros(1, new_h, new_w)], 32)
        ph, pw = images.tensor.shape[-2:]
        anchors = generator([torch.zeros(1, 1, fh, fw) for fh, fw in _feature_sizes(ph, pw)])
        labels = d2.RetinaNet.label_anchors(label_self, anchors, [record["instances"]])[0][0]
        fg = labels[(labels >= 0) & (labels != background)]
        per_image[i] = [len(fg), int((labels == background).sum()), int((labels == -1).sum())]
        for category, count in zip(*np.unique(fg.numpy(), return_counts=True), strict=True):
            class_counts[int(category)] = class_counts.get(int(category), 0) + int(count)
    row = {int(c): k for k, c in enumerate(category_ids.tolist())}
    per_class = np.zeros(len(category_ids), np.int64)
    for category, count in class_counts.items():
        per_class[row[category]] = count
    return per_image, per_class, only_crowd, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path, help="folder holding detectron2/ (v0.6) and fvcore/ (0.1.5)")
    parser.add_argument("coco", type=Path, nargs="?", default=DEFAULT_JSON)
    parser.add_argument("--images", type=int, default=0, help="only the first N images (0: all)")
    args = parser.parse_args()
    d2 = _load(args.root)
    ds = imbstat.load(args.coco)
    if args.images:
        ds = ds.select_images(np.arange(ds.num_images) < args.images)
    preset = "detectron2-retinanet"
    ref_image, ref_class, only_crowd, ref_seconds = detectron2_counts(
        d2, args.coco, ds.images.image_id, ds.categories.category_id
    )
    start = time.perf_counter()
    ours = imbstat.anchor_stats(ds, preset=preset, method="sparse")
    seconds = time.perf_counter() - start
    names = ("foreground", "background", "ignored")
    print(f"{args.coco.name}: {ds.num_images} images, preset {preset}")
    print(f"  detectron2: {dict(zip(names, ref_image.sum(0).tolist(), strict=True))}  ({ref_seconds:.2f} s)")
    print(f"  imbstat:    {dict(zip(names, ours.per_image.sum(0).tolist(), strict=True))}  ({seconds:.2f} s)")
    same_image = np.array_equal(ref_image, ours.per_image)
    same_class = np.array_equal(ref_class, ours.class_foreground)
    print(f"  per image: {'identical' if same_image else 'DIFFERENT'}; per class: "
          f"{'identical' if same_class else 'DIFFERENT'}")  # fmt: skip
    if only_crowd:
        print(f"  {only_crowd} images have no non-crowd annotation: both label all their anchors background; "
              "detectron2's training drops them (DATALOADER.FILTER_EMPTY_ANNOTATIONS)")  # fmt: skip
    if not same_image:
        bad = np.flatnonzero((ref_image != ours.per_image).any(axis=1))
        print(f"  images that differ: {ds.images.image_id[bad][:10].tolist()}")
        for i in bad[:5]:
            ref, got = ref_image[i].tolist(), ours.per_image[i].tolist()
            print(f"    {ds.images.image_id[i]}: detectron2 {ref}, imbstat {got}")
    if not same_class:
        bad = np.flatnonzero(ref_class != ours.class_foreground)[:10]
        rows = [(int(ds.categories.category_id[k]), int(ref_class[k]), int(ours.class_foreground[k])) for k in bad]
        print(f"  classes that differ (id, detectron2, imbstat): {rows}")
    return 0 if same_image and same_class else 1


if __name__ == "__main__":
    raise SystemExit(main())
