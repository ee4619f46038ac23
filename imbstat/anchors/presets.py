"""Anchor presets: resize, anchor shapes and labeling thresholds (docs/design.md, 'Presets')."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imbstat.anchors.resize import Resize
from imbstat.anchors.sampler import RandomSampler, parse_sampler
from imbstat.data.source import read_toml
from imbstat.errors import ImbstatError

# The framework conventions a preset can take, each field's allowed values (the first is mmdetection's).
CONVENTIONS: dict[str, tuple[str, ...]] = {
    "stride_rule": ("exact", "padded-floor"),
    "dtype": ("float64", "float32"),
    "low_quality_rule": ("mmdetection", "torchvision-detectron2"),
    "assigner": ("max-iou", "atss", "fcos"),
    "train_images": ("mmdetection", "torchvision", "detectron2", "all"),
    "regression_loss": ("l1", "smooth_l1", "l2", "balanced_l1", "iou", "giou"),
}
# The box coder and regression loss of a preset's framework (issue 24): read only by the regression-loss statistic
# (imbstat/stats/regression_loss.py), so written in a preset's block only where they differ from its named
# preset's own (reports of the built-in presets keep the block they always wrote).
LOSS_FIELDS = ("coder_means", "coder_stds", "regression_loss", "smooth_l1_beta")
_NEW_FIELDS = (
    "anchor_sizes", "round_anchors", "stride_rule", "dtype", "low_quality_rule", "assigner", "topk",
    "regress_ranges", "center_sampling", "center_radius", "sampler", "min_gt_side", "train_images",
)  # fmt: skip
# Written only when set, yet they change no anchor (min_gt_side picks the GTs, before any anchor is labelled;
# train_images, the images the sampling stage sees).
_NOT_CONVENTIONS = ("sampler", "min_gt_side", "train_images")
# mmdetection 2.x FCOSHead's default regress_ranges, one (low, high] pair per level (inclusive both ends).
FCOS_REGRESS_RANGES = ((-1.0, 64.0), (64.0, 128.0), (128.0, 256.0), (256.0, 512.0), (512.0, math.inf))


# Bounds of every numeric field of a preset: (low, high, whole). None of these presets' own values is near
# them; beyond them a preset hangs (a million scales per octave), fills memory (a 100,000 px resize) or gives
# NaN or infinite anchors and scores above 1 (an infinite ratio, a stride of 2^63 - 1) (issue 20).
MAX_STRIDE = 4096  # px, pad_divisor too: 32 × the largest stride (128) of any framework's FPN
MAX_ANCHOR_SIZE = 1e5  # px, a side of an anchor_sizes entry
MAX_ANCHORS_PER_CELL = 256  # sizes × ratios; the presets have 1 to 9
MAX_ANCHORS = 1 << 22  # per image (4.2M): the retinanet preset has ~200k at 800 × 1333
RESIZE_KEYS = "resize_short/resize_long"  # where a TOML gives the resize
BOUNDS: dict[str, tuple[float, float, bool]] = {
    "pad_divisor": (1, MAX_STRIDE, True),
    "strides": (1, MAX_STRIDE, True),
    "octave_base_scale": (1e-3, 1e3, False),
    "scales_per_octave": (1, MAX_ANCHORS_PER_CELL, True),
    "ratios": (1e-3, 1e3, False),  # h / w: 1:1000 to 1000:1
    "center_offset": (0.0, 1.0, False),  # of a cell: frameworks use 0 or 0.5
    "pos_iou": (0.0, 1.0, False),
    "neg_iou": (0.0, 1.0, False),
    "min_pos_iou": (0.0, 1.0, False),
    "topk": (1, 1000, True),  # atss: candidates per level and GT (mmdetection 9)
    "center_radius": (1e-3, 1e3, False),  # fcos: strides
    "min_gt_side": (0.0, MAX_ANCHOR_SIZE, False),  # px
    "coder_means": (-10.0, 10.0, False),  # deltas; every framework's is 0
    "coder_stds": (1e-3, 1e3, False),  # 1 / a torchvision or detectron2 weight; 0.1 and 0.2 in mmdetection heads
    "smooth_l1_beta": (0.0, 100.0, False),  # in delta units; 0 is L1 (torch's smooth_l1_loss at beta = 0)
}


class PresetError(ValueError):
    """A preset's fields out of bounds: ``problems`` (field, message); the message joins them."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        self.field = problems[0][0]
        super().__init__("; ".join(message for _, message in problems))


def _within(values: tuple, low: float, high: float, whole: bool) -> bool:
    """Every value a real number (an integer where ``whole``; never a bool) in [low, high]; NaN fails."""
    kinds = (int, np.integer) if whole else (int, float, np.integer, np.floating)
    return all(isinstance(v, kinds) and not isinstance(v, bool) and low <= v <= high for v in values)


def _shown(values: object) -> str:
    """A field's value for a message, a long tuple cut short (200k ratios are not echoed)."""
    if isinstance(values, tuple) and len(values) > 6:
        return f"[{', '.join(map(repr, values[:3]))}, ... ({len(values):,} values)]"
    return repr(list(values) if isinstance(values, tuple) else values)


@dataclass(frozen=True)
class Preset:
    """Everything that fixes the anchors of an image and their labels.

    Anchors of level stride ``s``: sizes ``octave_base_scale · s · 2^(o / scales_per_octave)``
    for ``o = 0 .. scales_per_octave - 1`` (or ``anchor_sizes[level]`` where given);
    ratios ``r = h / w`` with ``w = size / sqrt(r)``, ``h = size · sqrt(r)``; centred at
    ``((i + center_offset) · s, (j + center_offset) · s)`` on a grid of
    ``ceil(padded / s)`` cells per side. Labels follow mmdetection's
    MaxIoUAssigner: max IoU ``>= pos_iou`` foreground, ``< neg_iou`` background,
    in between ignored; then, with ``low_quality``, each GT's best anchors
    (max IoU ``>= min_pos_iou`` and > 0) become foreground for it.

    Framework conventions (README "Framework conventions"; the defaults are mmdetection 2.x's):
    ``resize.rounding`` (see :class:`Resize`); ``round_anchors``: base corners
    rounded half to even, as torchvision's ``AnchorGenerator``; ``stride_rule``
    ``"exact"`` (shift = stride) or ``"padded-floor"`` (torchvision: per axis
    ``padded // cells``, so P6/P7 steps differ from 64/128 and between axes);
    ``dtype`` of anchors, GTs and IoU (``"float32"``: every operation rounded to
    float32, thresholds too, so ties fall as that dtype decides them);
    ``low_quality_rule`` ``"mmdetection"`` (a best anchor goes to the GT it is best
    for, a later GT winning) or ``"torchvision-detectron2"`` (it becomes foreground
    for its own argmax GT, and a GT whose best IoU is 0 counts too, as their
    ``Matcher.set_low_quality_matches_`` does).
    """

    name: str = "retinanet"
    resize: Resize = Resize(800, 1333)
    pad_divisor: int = 32
    strides: tuple[int, ...] = (8, 16, 32, 64, 128)
    octave_base_scale: float = 4.0
    scales_per_octave: int = 3
    ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    center_offset: float = 0.0
    pos_iou: float = 0.5
    neg_iou: float = 0.4
    low_quality: bool = True
    min_pos_iou: float = 0.0
    ignore_crowd: bool = True
    legacy: bool = False  # mmdetection 1.x pixel convention: "+1" areas, rounded corners
    anchor_sizes: tuple[tuple[float, ...], ...] = ()  # per level; () = the octave formula
    round_anchors: bool = False
    stride_rule: str = "exact"
    dtype: str = "float64"
    low_quality_rule: str = "mmdetection"
    # Which assigner labels the anchors: "max-iou" (the thresholds above), "atss" or "fcos" (points).
    assigner: str = "max-iou"
    topk: int = 9  # atss: candidates per level and GT, nearest centres first
    regress_ranges: tuple[tuple[float, float], ...] = FCOS_REGRESS_RANGES  # fcos: per level, on max(l, t, r, b)
    center_sampling: bool = False  # fcos: positives only within center_radius · stride of the GT's centre
    center_radius: float = 1.5
    # The sampling stage after the labels (imbstat/anchors/sampler.py): "random:NUM:POS_FRACTION", "" = none.
    sampler: str = ""
    # GTs whose side (x2 - x1 or y2 - y1, px in the original image) is below this take no part; counted in
    # per_gt.gts_below_min_side. 1.0 on mmdetection's presets: its CocoDataset._parse_ann_info drops ``w < 1 or h < 1``.
    min_gt_side: float = 0.0
    # The images a framework's training reads, and so the sampling stage samples (anchors.sampled; the
    # labels and the other statistics cover every image). mmdetection (2.28 CocoDataset._filter_imgs and
    # XMLDataset's, filter_empty_gt=True): an image with an annotation, crowd or difficult included, and
    # both sides >= 32 px; torchvision (references/detection/coco_utils.py
    # _coco_remove_images_without_annotations): an annotation with both sides > 1 px; detectron2
    # (data/build.py filter_images_with_only_crowd_annotations): an annotation that is not crowd; all.
    train_images: str = "mmdetection"
    # The regression targets and loss (issue 24), mmdetection's DeltaXYWHBBoxCoder form: a target is
    # ((gx - ax) / aw, (gy - ay) / ah, log(gw / aw), log(gh / ah)) minus ``coder_means``, over ``coder_stds``.
    # torchvision's det_utils.BoxCoder and detectron2's Box2BoxTransform multiply by ``weights`` instead: std =
    # 1 / weight. ``regression_loss`` is the preset's framework's loss of the box branch, ``smooth_l1_beta`` its β.
    # mmdetection 2.x retinanet_r50_fpn.py: means 0, stds 1, L1Loss.
    coder_means: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0)
    coder_stds: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    regression_loss: str = "l1"
    smooth_l1_beta: float = 0.0

    def __post_init__(self) -> None:
        problems = self._problems()
        try:
            sampler = parse_sampler(self.sampler)
            object.__setattr__(self, "sampler", str(sampler) if sampler else "")  # one spelling, so shards compare
        except ValueError as e:
            problems.append(("sampler", str(e)))
        if self.legacy and not problems and self.conventions():
            problems.append(("legacy", f"legacy has its own pixel conventions; it does not combine with "
                                       f"{self.conventions()}"))  # fmt: skip
        if problems:
            raise PresetError(problems)

    def _problems(self) -> list[tuple[str, str]]:
        """(field, what was expected) of every field out of its bounds (:data:`BOUNDS`): each is finite, positive
        where a size, whole where it counts or indexes, and bounded, so that no preset hangs, fills memory or
        gives NaN or infinite anchors (issue 20)."""
        problems = []
        for field, (low, high, whole) in BOUNDS.items():
            values = getattr(self, field)
            if not _within(values if isinstance(values, tuple) else (values,), low, high, whole):
                kind = ("whole " if whole else "") + ("numbers" if isinstance(values, tuple) else "number")
                kind = kind if isinstance(values, tuple) else f"a {kind}"
                problems.append((field, f"{field} must be {kind} in [{low:g}, {high:g}], got {_shown(values)}"))
        if not self.strides or (not problems and list(self.strides) != sorted(set(self.strides))):
            problems.append(("strides", "strides must be positive and increasing"))
        if not self.ratios:
            problems.append(("ratios", "ratios must be positive"))
        for field in ("coder_means", "coder_stds"):
            if len(getattr(self, field)) != 4:
                problems.append((field, f"{field} must be 4 numbers (x, y, w, h), got {_shown(getattr(self, field))}"))
        # neg_iou = 0 would make every anchor of an image with a GT ignored (IoU >= 0): no background.
        if not (0 < self.neg_iou <= self.pos_iou <= 1):
            problems.append(("neg_iou", f"need 0 < neg_iou <= pos_iou <= 1, got neg_iou={self.neg_iou} "
                                        f"pos_iou={self.pos_iou}"))  # fmt: skip
        if self.anchor_sizes and (
            len(self.anchor_sizes) != len(self.strides)
            or len({len(level) for level in self.anchor_sizes}) != 1
            or not self.anchor_sizes[0]
            or not all(_within(level, 0.0, MAX_ANCHOR_SIZE, False) and min(level) > 0 for level in self.anchor_sizes)
        ):
            problems.append(("anchor_sizes", "anchor_sizes must give one list per stride, all of one length (at "
                             f"least 1), of positive sizes up to {MAX_ANCHOR_SIZE:g} px"))  # fmt: skip
        for field, allowed in CONVENTIONS.items():
            if getattr(self, field) not in allowed:
                problems.append((field, f"{field} must be one of {', '.join(allowed)}, got {getattr(self, field)!r}"))
        if self.assigner == "fcos" and (
            len(self.regress_ranges) != len(self.strides)
            or any(len(pair) != 2 or not (pair[0] < pair[1]) for pair in self.regress_ranges)
        ):
            problems.append(("regress_ranges", "regress_ranges must give one [low, high] pair per stride, low < high"))
        if problems:  # the counts below need sound fields
            return problems
        if self.assigner == "fcos" and self.anchors_per_cell != 1:  # FCOS labels points: one per cell and level
            problems.append(("assigner", f"assigner fcos labels one point per cell; expected one anchor per cell "
                             f"(one ratio and scales_per_octave = 1, or one anchor size per level), got "
                             f"{self.anchors_per_cell}"))  # fmt: skip
        if self.anchors_per_cell > MAX_ANCHORS_PER_CELL:
            problems.append(("ratios", f"anchors per cell (sizes × ratios) must be at most {MAX_ANCHORS_PER_CELL}, "
                                       f"got {self.anchors_per_cell:,}"))  # fmt: skip
        elif (most := self.most_anchors()) > MAX_ANCHORS:
            size = f"{self.resize.short:g} × {self.resize.long:g}"
            problems.append((RESIZE_KEYS, f"at most {MAX_ANCHORS:,} anchors per image expected; the largest "
                             f"resized image ({size}) would have {most:,}"))  # fmt: skip
        return problems

    def most_anchors(self) -> int:
        """An upper bound of the anchors of one image: the resize keeps sides within ``short`` and ``long``
        (+1 for rounding), padded to ``pad_divisor``, ``ceil(side / stride)`` cells per side and level."""
        sides = [math.ceil((side + 1) / self.pad_divisor) * self.pad_divisor
                 for side in (self.resize.short, self.resize.long)]  # fmt: skip
        cells = sum(math.ceil(sides[0] / s) * math.ceil(sides[1] / s) for s in self.strides)
        return cells * self.anchors_per_cell

    def conventions(self) -> dict[str, object]:
        """The framework conventions that differ from mmdetection 2.x's (empty for mmdetection presets)."""
        changed = {name: getattr(self, name) for name in _NEW_FIELDS
                   if getattr(self, name) != _DEFAULTS[name] and name not in _NOT_CONVENTIONS}  # fmt: skip
        if self.resize.rounding != "round":
            changed["resize_rounding"] = self.resize.rounding
        return changed

    def low_quality_term(self) -> str:
        """What tables and figures call a foreground anchor below ``pos_iou``: a low-quality match under MaxIoU;
        ATSS and FCOS have no such rule (their foreground is decided otherwise), so there it is just its IoU."""
        return "low-quality" if self.assigner == "max-iou" else f"IoU < {self.pos_iou:g}"

    def labels_text(self) -> str:
        """How the preset labels its anchors, in one line (``imbstat anchors`` and the HTML report show it)."""
        if self.assigner == "atss":
            rule = (f"ATSS, the {self.topk} anchors per level nearest each GT's centre are candidates; foreground "
                    "at IoU >= mean + std of its candidates' IoUs with the centre inside the GT")  # fmt: skip
        elif self.assigner == "fcos":
            where = (f"in the GT's centre box (centre ± {self.center_radius:g}·stride, clipped to the GT)"
                     if self.center_sampling else "inside the GT")  # fmt: skip
            ranges = ", ".join(f"[{low:g}, {high:g}]" for low, high in self.regress_ranges)  # inclusive both ends
            rule = (f"FCOS points, foreground {where} with max(l, t, r, b) in the level's range {ranges}, the "
                    "smallest GT winning; each point's anchor is the box of its IoU statistics")  # fmt: skip
        else:
            rule = (f"foreground IoU >= {self.pos_iou}, background < {self.neg_iou}, low-quality matching "
                    + (f"on (min IoU {self.min_pos_iou})" if self.low_quality else "off"))  # fmt: skip
        assigner_fields = ("anchor_sizes", "assigner", "topk", "regress_ranges", "center_sampling", "center_radius")
        return (rule + (", legacy +1 pixel convention" if self.legacy else "")
                + "".join(f", {k} {v}" for k, v in self.conventions().items() if k not in assigner_fields))  # fmt: skip

    @property
    def float32(self) -> bool:
        return self.dtype == "float32"

    def threshold(self, value: float) -> float:
        """An IoU threshold as the preset's dtype compares it (torch rounds a Python float to a tensor's dtype)."""
        return float(np.float32(value)) if self.float32 else float(value)

    @property
    def random_sampler(self) -> RandomSampler | None:
        """The sampling stage of :attr:`sampler`, or None."""
        return parse_sampler(self.sampler)

    @property
    def anchors_per_cell(self) -> int:
        return (len(self.anchor_sizes[0]) if self.anchor_sizes else self.scales_per_octave) * len(self.ratios)

    def sizes(self, stride: int) -> list[float]:
        if self.anchor_sizes:
            return [float(size) for size in self.anchor_sizes[self.strides.index(stride)]]
        return [
            self.octave_base_scale * stride * 2 ** (o / self.scales_per_octave) for o in range(self.scales_per_octave)
        ]

    def shapes(self, stride: int) -> list[tuple[float, float]]:
        """(w, h) of the anchors of one cell, ratio-major then size, as mmdetection orders them."""
        return [(size / math.sqrt(r), size * math.sqrt(r)) for r in self.ratios for size in self.sizes(stride)]

    def to_dict(self) -> dict:
        """The fields; the framework conventions only where they differ from mmdetection's, so that
        mmdetection presets write the block they always wrote."""
        d = dataclasses.asdict(self)
        d["resize"] = {"short": self.resize.short, "long": self.resize.long}
        for name in _NEW_FIELDS:
            if getattr(self, name) == _DEFAULTS[name]:
                del d[name]
        if "anchor_sizes" in d:
            d["anchor_sizes"] = [list(level) for level in self.anchor_sizes]
        if "regress_ranges" in d:
            d["regress_ranges"] = [list(pair) for pair in self.regress_ranges]
        if self.resize.rounding != "round":
            d["resize"]["rounding"] = self.resize.rounding
        own = _loss_defaults(self.name)
        for name in LOSS_FIELDS:
            if getattr(self, name) == own[name]:
                del d[name]
            elif isinstance(d[name], tuple):
                d[name] = list(d[name])
        return d


_DEFAULTS = {f.name: f.default for f in dataclasses.fields(Preset)}


def _loss_defaults(name: str) -> dict[str, object]:
    """The loss fields of the named preset (the dataclass defaults for a name that is none of PRESETS)."""
    own = PRESETS.get(name)
    return {field: getattr(own, field) if own is not None else _DEFAULTS[field] for field in LOSS_FIELDS}


def preset_from_dict(d: dict) -> Preset:
    """Inverse of :meth:`Preset.to_dict` (as a report's ``preset`` block holds it)."""
    fields = dict(d)
    fields["resize"] = Resize(d["resize"]["short"], d["resize"]["long"], d["resize"].get("rounding", "round"))
    fields["strides"], fields["ratios"] = tuple(d["strides"]), tuple(d["ratios"])
    for name, value in _loss_defaults(str(d.get("name", ""))).items():  # written only where not the preset's own
        fields[name] = tuple(fields[name]) if isinstance(fields.get(name), list) else fields.get(name, value)
    if "anchor_sizes" in d:
        fields["anchor_sizes"] = tuple(tuple(float(v) for v in level) for level in d["anchor_sizes"])
    if "regress_ranges" in d:  # JSON holds an infinite bound as null: a low one is -inf, a high one inf
        fields["regress_ranges"] = tuple(
            (-math.inf if low is None else float(low), math.inf if high is None else float(high))
            for low, high in d["regress_ranges"]
        )
    return Preset(**fields)


# mmdetection's CocoDataset._parse_ann_info (2.28 datasets/coco.py:164-170; 1.x the same w / h test) drops
# annotations with w < 1 or h < 1 px; its no-overlap test is imbstat's clip-then-drop-empty (engine.ground_truth).
_MMDET_MIN_GT_SIDE = 1.0
_MMDET_RETINANET = Preset(name="mmdet-retinanet", min_gt_side=_MMDET_MIN_GT_SIDE)
# torchvision 0.17 to 0.28 (0.28.0 goes with torch 2.13; benchmarks/conformance/vs_torchvision.py): retinanet.py
# ``_default_anchorgen`` sizes (x, int(x·2^(1/3)), int(x·2^(2/3))), ratios (0.5, 1, 2); ``RetinaNet``'s
# GeneralizedRCNNTransform(800, 1333) (transform.py ``_resize_image_and_masks``: float64 scale since 0.17, float32
# up to 0.16, resize_rounding "floor"; ``interpolate`` floors; ``batch_images`` pads to 32); anchor_utils.py
# ``AnchorGenerator``: float32 base anchors ``round()``ed, strides ``image_size // grid_size`` per axis;
# _utils.py ``Matcher(0.5, 0.4, allow_low_quality_matches=True)``; ops/boxes.py ``box_iou`` in float32.
# GTs as references/detection/coco_utils.py makes them: float32, clamped to the image, crowd dropped,
# then transform.py ``resize_boxes`` (float32 ratio new / old per axis).
_TORCHVISION = dict(
    resize=Resize(800, 1333, "floor-float64"), min_pos_iou=0.0, round_anchors=True, stride_rule="padded-floor",
    dtype="float32", low_quality_rule="torchvision-detectron2", train_images="torchvision",
)  # fmt: skip

PRESETS: dict[str, Preset] = {
    # Alias of mmdet-retinanet under the name reports always carried.
    "retinanet": dataclasses.replace(_MMDET_RETINANET, name="retinanet"),
    # mmdetection 1.x RetinaNet: centre (stride - 1) / 2, corners centre ± (w - 1) / 2 rounded, "+1" areas.
    # Its box branch (mmdetection 1.x configs/retinanet_r50_fpn_1x.py): SmoothL1Loss(beta=0.11), "+1" widths in
    # DeltaXYWHBBoxCoder's 1.x bbox2delta.
    "retinanet-v1": Preset(
        name="retinanet-v1",
        legacy=True,
        min_gt_side=_MMDET_MIN_GT_SIDE,
        regression_loss="smooth_l1",
        smooth_l1_beta=0.11,
    ),
    # Faster R-CNN RPN (mmdetection 2.x): one size 8·stride, strides 4..64, thresholds 0.7 / 0.3.
    "rpn": Preset(
        name="rpn",
        strides=(4, 8, 16, 32, 64),
        octave_base_scale=8.0,
        scales_per_octave=1,
        pos_iou=0.7,
        neg_iou=0.3,
        min_pos_iou=0.3,
        # configs/_base_/models/faster_rcnn_r50_fpn.py train_cfg.rpn.sampler: RandomSampler(num=256,
        # pos_fraction=0.5, neg_pos_ub=-1, add_gt_as_proposals=False)
        sampler="random:256:0.5",
        min_gt_side=_MMDET_MIN_GT_SIDE,
        # rpn_head: DeltaXYWHBBoxCoder means 0, stds 1, L1Loss (the roi head's stds 0.1, 0.1, 0.2, 0.2 are not
        # the RPN's anchors')
    ),
    # mmdetection 2.x retinanet_r50_fpn_1x_coco (anchor_generator.py AnchorGenerator, max_iou_assigner.py).
    "mmdet-retinanet": _MMDET_RETINANET,
    "torchvision-retinanet": Preset(
        name="torchvision-retinanet",
        anchor_sizes=tuple((x, int(x * 2 ** (1.0 / 3)), int(x * 2 ** (2.0 / 3))) for x in (32, 64, 128, 256, 512)),
        # retinanet.py RetinaNetRegressionHead: BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)), bbox_reg_loss_type "l1"
        **_TORCHVISION,
    ),
    # torchvision faster_rcnn.py ``_default_anchorgen`` ((32,), (64,), (128,), (256,), (512,)) × (0.5, 1, 2) on
    # FPN P2-P6 (strides 4..64, P6 by LastLevelMaxPool); rpn.py ``Matcher(fg_iou_thresh=0.7, bg_iou_thresh=0.3,
    # allow_low_quality_matches=True)``, ``BalancedPositiveNegativeSampler(rpn_batch_size_per_image=256,
    # rpn_positive_fraction=0.5)`` (faster_rcnn.py defaults; _utils.py); the transform and anchor conventions of
    # torchvision-retinanet.
    "torchvision-rpn": Preset(
        name="torchvision-rpn",
        strides=(4, 8, 16, 32, 64),
        anchor_sizes=((32,), (64,), (128,), (256,), (512,)),
        pos_iou=0.7,
        neg_iou=0.3,
        sampler="random:256:0.5",
        # rpn.py: BoxCoder(weights=(1.0, 1.0, 1.0, 1.0)), F.smooth_l1_loss(beta=1 / 9) summed
        regression_loss="smooth_l1",
        smooth_l1_beta=1 / 9,
        **_TORCHVISION,
    ),
    # detectron2 v0.6 configs/COCO-Detection/retinanet_R_50_FPN_1x.yaml (Base-RetinaNet.yaml): anchor sizes
    # [x, x·2^(1/3), x·2^(2/3)] for x in 32..512, ratios (0.5, 1, 2), OFFSET 0.0 (anchor_generator.py
    # DefaultAnchorGenerator: float32 cell anchors plus float32 shifts of the exact stride); ResizeShortestEdge
    # (augmentation_impl.py) at the test size 800 / 1333 (training samples the short side from 640..800: set
    # resize_short in a TOML to study another); size_divisibility 32; RETINANET.IOU_THRESHOLDS [0.4, 0.5]
    # with IOU_LABELS [0, -1, 1] and allow_low_quality_matches True (matcher.py Matcher); pairwise_iou float32.
    # GTs: from a COCO file's [x, y, w, h] list by BoxMode.convert (structures/boxes.py: torch.tensor, so
    # x + w in float32), transformed in float64, clipped, then float32 ``Boxes``; boxes of side <= 1e-5 px
    # are dropped (detection_utils.py filter_empty_instances). Checked against detectron2's own code by
    # benchmarks/conformance/vs_detectron2.py (v0.6, commit d1e04565).
    "detectron2-retinanet": Preset(
        name="detectron2-retinanet",
        resize=Resize(800, 1333, "shortest-edge"),
        anchor_sizes=tuple((x, x * 2 ** (1.0 / 3), x * 2 ** (2.0 / 3)) for x in (32, 64, 128, 256, 512)),
        min_pos_iou=0.0,
        dtype="float32",
        low_quality_rule="torchvision-detectron2",
        train_images="detectron2",
        # retinanet.py: Box2BoxTransform(weights=BBOX_REG_WEIGHTS (1, 1, 1, 1)); defaults.py
        # RETINANET.BBOX_REG_LOSS_TYPE "smooth_l1", SMOOTH_L1_LOSS_BETA 0.1
        regression_loss="smooth_l1",
        smooth_l1_beta=0.1,
    ),
    # mmdetection 2.x atss_r50_fpn_1x_coco: one square anchor of 8·stride per location at (x·s, y·s),
    # ATSSAssigner(topk=9) (core/bbox/assigners/atss_assigner.py).
    "atss": Preset(
        name="atss",
        octave_base_scale=8.0,
        scales_per_octave=1,
        ratios=(1.0,),
        assigner="atss",
        min_gt_side=_MMDET_MIN_GT_SIDE,
        # DeltaXYWHBBoxCoder stds (0.1, 0.1, 0.2, 0.2); GIoULoss on the decoded box (reg_decoded_bbox=True)
        coder_stds=(0.1, 0.1, 0.2, 0.2),
        regression_loss="giou",
    ),
    # mmdetection 2.x fcos_r50_caffe_fpn_gn-head_1x_coco: points at ((x + 0.5)·s, (y + 0.5)·s)
    # (MlvlPointGenerator offset 0.5), FCOSHead._get_target_single; a point's box for the IoU statistics is
    # the 8·stride square centred on it (the ATSS paper's reading of a point as one anchor).
    "fcos": Preset(
        name="fcos",
        octave_base_scale=8.0,
        scales_per_octave=1,
        ratios=(1.0,),
        center_offset=0.5,
        assigner="fcos",
        min_gt_side=_MMDET_MIN_GT_SIDE,
        # IoULoss on (l, t, r, b) distances; its delta targets are this preset's box view, mmdetection's coder
        regression_loss="iou",
    ),
}

# A TOML gives the resize as its three keys, never as the Resize object the field holds.
_FIELDS = {f.name for f in dataclasses.fields(Preset)} - {"resize"} | {"resize_short", "resize_long", "resize_rounding"}


def load_preset(name_or_path: str | Path) -> Preset:
    """A named preset, or one read from a TOML file with :class:`Preset`'s field names.

    A TOML file may start from a named preset with ``base = "rpn"``; the resize is
    given as ``resize_short`` / ``resize_long`` / ``resize_rounding``, ``anchor_sizes``
    as a list of lists (one per stride). Unknown keys and bad values are one-line errors.
    """
    key = str(name_or_path)
    if key in PRESETS:
        return PRESETS[key]
    path = Path(key)
    if path.suffix != ".toml":
        raise ImbstatError(f"unknown preset; expected one of {', '.join(PRESETS)} or a .toml file", key)
    table = read_toml(path, "preset")
    base_name = table.pop("base", "retinanet")
    base = PRESETS.get(base_name) if isinstance(base_name, str) else None
    if base is None:
        raise ImbstatError(f"unknown base preset; expected one of {', '.join(PRESETS)}", path, "base")
    unknown = sorted(set(table) - _FIELDS)
    if unknown:
        raise ImbstatError(f"unknown keys {', '.join(unknown)}; expected some of {', '.join(sorted(_FIELDS))}", path)
    short = table.pop("resize_short", base.resize.short)
    long = table.pop("resize_long", base.resize.long)
    rounding = table.pop("resize_rounding", base.resize.rounding)
    for key_name in ("strides", "ratios", "coder_means", "coder_stds"):
        if key_name in table:
            if not isinstance(table[key_name], list):
                raise ImbstatError("expected a list of numbers", path, key_name)
            table[key_name] = tuple(table[key_name])
    for key_name in ("anchor_sizes", "regress_ranges"):
        if key_name in table:
            lists = table[key_name]
            if not isinstance(lists, list) or not all(
                isinstance(level, list) and all(_is_number(v) for v in level) for level in lists
            ):
                raise ImbstatError("expected a list of lists of numbers, one per stride", path, key_name)
            table[key_name] = tuple(tuple(float(v) for v in level) for level in lists)
    for key_name, value in table.items():
        expected = type(getattr(base, key_name))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            table[key_name] = float(value)
        elif not isinstance(table[key_name], expected) or (expected is int and isinstance(value, bool)):
            raise ImbstatError(f"expected {expected.__name__}, got {type(value).__name__}", path, key_name)
    try:
        resize = Resize(short, long, rounding)
    except (ValueError, TypeError) as e:
        raise ImbstatError(f"inconsistent preset: {e}", path, RESIZE_KEYS) from None
    try:
        return dataclasses.replace(base, name=table.pop("name", path.stem), resize=resize, **table)
    except PresetError as e:  # the key of the first problem: the fields are the TOML's keys but the resize's
        raise ImbstatError(f"inconsistent preset: {e}", path, e.field) from None
    except (ValueError, TypeError) as e:
        raise ImbstatError(f"inconsistent preset: {e}", path) from None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
