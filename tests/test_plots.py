"""The figures: each plot function writes non-blank PNGs, for ordinary, long-tailed (1,203 classes) and empty data."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import check_png
from PIL import Image

from imbstat import plots
from imbstat.data.dataset import Boxes, Categories, Dataset, Images, assemble
from imbstat.plots import plot_classes, plot_location, plot_scale
from imbstat.plots.classes import MAX_LABELLED_CLASSES
from imbstat.stats import (
    ClassDistribution,
    Histogram,
    class_distribution,
    location_distribution,
    scale_distribution,
)


def _dataset(num_images: int, names: list[str], image: list[int], category: list[int], xyxy: list) -> Dataset:
    images = Images(
        np.arange(num_images),
        np.array([f"{i}.jpg" for i in range(num_images)]),
        np.full(num_images, 640.0),
        np.full(num_images, 480.0),
        np.ones(num_images, bool),
    )
    categories = Categories(np.arange(len(names)) + 1, np.array(names))
    boxes = Boxes.build(np.array(image, np.int64), np.array(category, np.int64), np.array(xyxy, np.float64))
    return assemble("tiny", "coco", images, categories, boxes, lambda rows: [str(r) for r in rows])


@pytest.fixture(scope="module")
def tiny() -> Dataset:
    # 3 images, 3 classes ("kite" has no box); boxes of various sizes and places.
    return _dataset(
        3,
        ["person", "car", "kite"],
        [0, 0, 0, 1, 1, 2],
        [0, 0, 1, 0, 1, 0],
        [
            [10, 20, 50, 200],
            [300, 100, 340, 180],
            [0, 0, 640, 480],
            [500, 400, 510, 410],
            [100, 50, 400, 90],
            [200, 200, 260, 300],
        ],
    )


@pytest.fixture(scope="module")
def empty() -> Dataset:
    return _dataset(2, ["person", "car"], [], [], np.zeros((0, 4)))


def _names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


def test_classes(tiny: Dataset, tmp_path: Path) -> None:
    paths = plot_classes(class_distribution(tiny), tmp_path)
    assert _names(paths) == ["classes_long_tail.png", "objects_per_image.png", "classes_per_image.png"]
    assert all(p.parent == tmp_path for p in paths)
    for p in paths:
        check_png(p)


def test_scale(tiny: Dataset, tmp_path: Path) -> None:
    paths = plot_scale(scale_distribution(tiny), tmp_path / "nested" / "dir")  # out_dir is created
    assert _names(paths) == ["scale_relative.png", "scale_aspect_ratio.png", "scale_buckets.png"]
    for p in paths:
        check_png(p)


def test_scale_without_pixel_sizes(tiny: Dataset, tmp_path: Path) -> None:
    result = scale_distribution(tiny)
    # What an Open Images file without --sizes gives: no aspect ratio, buckets or FPN levels.
    relative_only = type(result)(
        result.relative_width, result.relative_height, result.relative_area, None, None, None, result.resize, "sizes"
    )
    paths = plot_scale(relative_only, tmp_path)
    assert _names(paths) == ["scale_relative.png"]
    check_png(paths[0])


def test_location(tiny: Dataset, tmp_path: Path) -> None:
    result = location_distribution(tiny, grid=8)
    assert _names(plot_location(result, tmp_path)) == ["location_centers.png"]
    # Asking for more classes than have boxes draws those that do (person, car).
    paths = plot_location(result, tmp_path, per_class=5)
    assert _names(paths) == ["location_centers.png", "location_per_class.png"]
    for p in paths:
        check_png(p)


def test_zero_boxes(empty: Dataset, tmp_path: Path) -> None:
    paths = [
        *plot_classes(class_distribution(empty), tmp_path),
        *plot_scale(scale_distribution(empty), tmp_path),
        *plot_location(location_distribution(empty, grid=8), tmp_path, per_class=3),
    ]
    assert len(paths) == 8
    for p in paths:
        check_png(p)


def test_empty_class_distribution(empty: Dataset, tmp_path: Path) -> None:
    # ClassDistribution.empty has all-zero histograms and no images.
    for p in plot_classes(ClassDistribution.empty(empty), tmp_path):
        check_png(p)


def _long_tail(k: int) -> ClassDistribution:
    rank = np.arange(1, k + 1)
    # Synthetic long tail floor(10000 / rank^p), with p such that the last class has 1 instance.
    instances = np.floor(10000 / rank ** (np.log(10000) / np.log(k)) + 1e-9).astype(np.int64)
    instances[-3:] = 0  # a few classes without a box
    images = np.maximum(instances // 2, (instances > 0).astype(np.int64))  # spans rare, common, frequent
    per_image = Histogram.of_integers(np.arange(200) % 37)
    return ClassDistribution(
        np.arange(k), np.array([f"class_{i}" for i in range(k)]), instances, images, per_image, per_image, 200
    )


@pytest.mark.parametrize("k", [1203, MAX_LABELLED_CLASSES, MAX_LABELLED_CLASSES + 1])
def test_many_classes(k: int, tmp_path: Path) -> None:
    result = _long_tail(k)
    assert set(result.groups) == {"rare", "common", "frequent", "absent"}
    paths = plot_classes(result, tmp_path)
    for p in paths:
        check_png(p)
    with Image.open(paths[0]) as im:
        # The profile of many classes keeps a fixed width; labelled bars grow with the class count.
        assert im.size[0] <= 2400


def test_zero_classes(tmp_path: Path) -> None:
    no_images = Histogram.of_integers(np.zeros(3, np.int64))  # 3 images, none with a box
    none = np.zeros(0, np.int64)
    result = ClassDistribution(none, np.zeros(0, str), none, none, no_images, no_images, 3)
    for p in plot_classes(result, tmp_path):
        check_png(p)


def test_imports_only_matplotlib_numpy_and_stats() -> None:
    # Layering (docs/design.md, 'Architecture'): plots draws with matplotlib's Figure on an Agg canvas,
    # never pyplot, typer or rich.
    for source in Path(plots.__file__).parent.glob("*.py"):
        imports = [line for line in source.read_text().splitlines() if line.startswith(("import ", "from "))]
        for line in imports:
            module = line.split()[1]
            root = module.split(".")[0]
            assert root in sys.stdlib_module_names or root in {"__future__", "numpy", "matplotlib", "imbstat"}, line
            assert module != "matplotlib.pyplot", line
            assert not module.startswith("imbstat.") or module.startswith(
                ("imbstat.plots", "imbstat.stats", "imbstat.scores", "imbstat.text")
            ), line
