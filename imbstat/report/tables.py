"""CSV tables written with ``--out``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imbstat.data.dataset import Images
from imbstat.errors import ImbstatError
from imbstat.lazy import LazyModule
from imbstat.stats import (
    AnchorStats,
    BatchDistribution,
    ClassBalancedLoss,
    ClassDistribution,
    Histogram,
    LocationDistribution,
    RepeatFactorSampling,
    ScaleDistribution,
)

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported where a table is built


def _histogram_frame(h: Histogram) -> pd.DataFrame:
    return pd.DataFrame({"low": h.edges[:-1], "high": h.edges[1:], "count": h.counts})


def write_frames(frames: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Each frame as ``<name>.csv`` in ``out_dir``; the paths written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, frame in frames.items():
            path = out_dir / f"{name}.csv"
            frame.to_csv(path, index=False)
            paths.append(path)
        return paths
    except OSError as e:
        raise ImbstatError(f"cannot write tables: {e.strerror}", out_dir) from None


def class_tables(result: ClassDistribution, out_dir: Path) -> list[Path]:
    return write_frames(
        {
            "classes": result.to_frame(),
            "objects_per_image": _histogram_frame(result.objects_per_image),
            "classes_per_image": _histogram_frame(result.classes_per_image),
        },
        out_dir,
    )


def scale_tables(result: ScaleDistribution, out_dir: Path) -> list[Path]:
    frames = {"scale_histograms": result.to_frame()}
    if result.size_buckets is not None and result.fpn_levels is not None:
        d = result.to_dict()
        frames["scale_size_buckets"] = pd.DataFrame(list(d["size_buckets"].items()), columns=["bucket", "count"])
        frames["scale_fpn_levels"] = pd.DataFrame(list(d["fpn_levels"].items()), columns=["level", "count"])
    return write_frames(frames, out_dir)


def _grid_frame(counts: np.ndarray) -> pd.DataFrame:
    """A map as a matrix: row i = y cell i (top first), column j = x cell j."""
    frame = pd.DataFrame(counts, columns=[f"x{j}" for j in range(counts.shape[1])])
    frame.insert(0, "y", range(counts.shape[0]))
    return frame


def location_tables(result: LocationDistribution, out_dir: Path) -> list[Path]:
    return write_frames({"location_centers": _grid_frame(result.counts)}, out_dir)


def anchor_tables(result: AnchorStats, images: Images, out_dir: Path) -> list[Path]:
    d = result.to_dict()
    iou = pd.DataFrame({"low": result.iou_edges[:-1], "high": result.iou_edges[1:], "count": result.positive_iou,
                        "low_quality": result.positive_iou_low_quality})  # fmt: skip
    per_gt = pd.DataFrame([{"size": k, **v} for k, v in [*d["per_gt"]["by_size"].items(), ("all", d["per_gt"]["all"])]])

    n = max(result.num_images, 1)
    return write_frames(
        {
            "anchors_per_image": anchor_image_frame(result, images),
            "anchors_per_class": pd.DataFrame(d["per_class"]),
            "anchors_positive_iou": iou,
            "anchors_per_gt": per_gt,
            "anchors_relative_top_left": _grid_frame(result.relative_top_left),
            "anchors_relative_center": _grid_frame(result.relative_center),
            "anchors_overlap_foreground": _grid_frame(result.overlap_foreground / n),
            "anchors_overlap_background": _grid_frame(result.overlap_background / n),
            **({"anchors_sampled_per_class": pd.DataFrame(d["sampled"]["per_class"])} if "sampled" in d else {}),
        },
        out_dir,
    )


def anchor_image_frame(result: AnchorStats, images: Images) -> pd.DataFrame:
    """One row per image, in dataset order, to find the images that drive the imbalance.

    ``gts`` are the GTs labelled (after the box filter, crowd and empty-after-resize
    drops); ``gts_without_positive`` those with no foreground anchor;
    ``worst_gt_max_iou`` is the lowest, over the image's GTs, of each GT's best IoU
    with any anchor (its worst-covered GT), empty for an image without GTs. With a
    sampler, ``sampled_positives`` and ``sampled_negatives``: what it draws from the image.
    """

    def pixels(size: np.ndarray) -> np.ndarray:  # whole-pixel sizes print as integers
        return size.astype(np.int64) if np.array_equal(size, np.round(size)) else size

    frame = pd.DataFrame(
        {
            "image_id": images.image_id,
            "file_name": images.file_name,
            "width": pixels(images.width),
            "height": pixels(images.height),
            "gts": result.per_image_gts[:, 0],
            "foreground": result.per_image[:, 0],
            "background": result.per_image[:, 1],
            "ignored": result.per_image[:, 2],
            "gts_without_positive": result.per_image_gts[:, 1],
            "worst_gt_max_iou": result.worst_gt_iou,
        }
    )
    sampler = result.preset.random_sampler
    if sampler:
        trained = result.trained  # images the framework does not train on are not sampled
        positives, negatives = sampler.sampled(*result.per_image[:, :2].T)
        frame["trained"] = trained
        frame["sampled_positives"], frame["sampled_negatives"] = positives * trained, negatives * trained
    return frame


def repeat_factor_tables(result: RepeatFactorSampling, out_dir: Path) -> list[Path]:
    """Per class: r_c, expected instances and images per resampled epoch, and the dataset's own."""
    return write_frames({"repeat_factor": result.to_frame()}, out_dir)


def class_balanced_tables(result: ClassBalancedLoss, out_dir: Path) -> list[Path]:
    return write_frames({"class_balanced": result.to_frame()}, out_dir)


def batch_tables(result: BatchDistribution, out_dir: Path) -> list[Path]:
    """``batch_classes.csv`` (one row per class, by dataset share) and ``batch_tv_distance.csv`` (its figure's bins)."""
    return write_frames(
        {"batch_classes": result.to_frame(), "batch_tv_distance": _histogram_frame(result.tv_histogram)}, out_dir
    )
