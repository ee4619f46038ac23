"""Helpers the test modules share: import them from here (``from helpers import ...``), never from another test
module or from conftest.py (which holds the fixtures, and is not meant to be imported).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from imbstat.anchors.presets import Preset
from imbstat.anchors.resize import Resize

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
COCO_VAL_MINI = SHARED_DATA / "coco" / "coco2017_val_mini.json"
COCO_TRAIN_MINI = SHARED_DATA / "coco" / "coco2017_train_mini.json"

needs_shared_data = pytest.mark.skipif(not COCO_VAL_MINI.exists(), reason="../shared/data is absent")


def check_png(path: Path) -> None:
    """A PNG figure of at least 400×300 that is not a blank canvas."""
    from PIL import Image

    assert path.is_file() and path.suffix == ".png"
    with Image.open(path) as im:
        assert im.format == "PNG"
        width, height = im.size
        assert width >= 400 and height >= 300
        pixels = np.asarray(im.convert("L"), np.float64)
    assert pixels.std() > 0  # not a blank canvas


def coco_doc(images: list[tuple], annotations: list[tuple], categories: list[tuple]) -> dict:
    """A COCO document from terse rows: images (id, w, h), annotations (image, category, [x, y, w, h], crowd)."""
    return {
        "images": [{"id": i, "width": w, "height": h, "file_name": f"{i}.jpg"} for i, w, h in images],
        "annotations": [
            {"id": n + 1, "image_id": img, "category_id": cat, "bbox": list(bbox), "iscrowd": crowd}
            for n, (img, cat, bbox, crowd) in enumerate(annotations)
        ],
        "categories": [{"id": c, "name": name} for c, name in categories],
    }


# A hand-made dataset whose statistics are worked out in the tests' comments.
#   image 1: 100×100, image 2: 200×100, image 3: 50×50 with no box.
TINY_IMAGES = [(1, 100, 100), (2, 200, 100), (3, 50, 50)]
TINY_ANNOTATIONS = [
    (1, 1, [0, 0, 10, 10], 0),  # a: cat 1, relative 0.1 × 0.1, area 100 -> small, centre (0.05, 0.05)
    (1, 1, [50, 50, 50, 50], 0),  # b: cat 1, relative 0.5 × 0.5, area 2500 -> medium, centre (0.75, 0.75)
    (2, 2, [0, 0, 200, 100], 0),  # c: cat 2, relative 1 × 1, area 20000 -> large, centre (0.5, 0.5)
    (2, 1, [10, 10, 20, 20], 1),  # d: cat 1, crowd
]
TINY_CATEGORIES = [(1, "cat"), (2, "dog"), (3, "emu")]


# ---------------------------------------------------------------------------------------------
# Comparisons


def assert_same_dataset(a, b, *, source: bool = False) -> None:
    """Two Datasets hold the same images, boxes, categories (every column) and problems; ``source``: and the
    same format and path."""
    for part in ("images", "boxes", "categories", "problems"):
        x, y = getattr(a, part), getattr(b, part)
        for field in dataclasses.fields(x):
            u, v = getattr(x, field.name), getattr(y, field.name)
            nan = isinstance(u, np.ndarray) and u.dtype.kind == "f"  # Boxes.area: NaN where the source gives none
            assert (u is None and v is None) or np.array_equal(u, v, equal_nan=nan), (part, field.name)
    assert a.problems.counts() == b.problems.counts()
    if source:
        assert (a.format, a.path) == (b.format, b.path)


def assert_same_anchor_stats(a, b) -> None:
    """Every field of two AnchorStats equal, exactly."""
    from imbstat.stats.anchors import AnchorStats

    for field in dataclasses.fields(AnchorStats):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if field.name == "foreground_per_gt":
            np.testing.assert_array_equal(x.counts, y.counts)
        elif isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=field.name)
        else:
            assert x == y, field.name


# ---------------------------------------------------------------------------------------------
# The CLI


def run(*args: object):
    """``imbstat ARGS`` through typer's runner (arguments turned into strings); its Result."""
    from typer.testing import CliRunner

    from imbstat.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


# ---------------------------------------------------------------------------------------------
# Anchors

# A toy preset: one level of stride 16, one 32×32 anchor per cell, on a 64×64 image (4×4 cells).
TOY = Preset(name="toy", resize=Resize(64, 64), strides=(16,), octave_base_scale=2.0, scales_per_octave=1,
             ratios=(1.0,))  # fmt: skip


def random_gts(rng: np.random.Generator, b: int, m: int, w: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    """``b`` images of up to ``m`` GTs in a ``w`` × ``h`` image: tiny, thin, whole-image, duplicated, on-grid;
    the GT counts per image."""
    kind = rng.integers(0, 5, (b, m))
    cx, cy = rng.uniform(0, w, (b, m)), rng.uniform(0, h, (b, m))
    size = np.where(kind == 0, rng.uniform(0.3, 4, (b, m)), np.exp(rng.uniform(np.log(4), np.log(min(w, h)), (b, m))))
    aspect = np.where(kind == 1, rng.choice([0.05, 20.0], (b, m)), np.exp(rng.normal(0, 0.6, (b, m))))
    bw, bh = size / np.sqrt(aspect), size * np.sqrt(aspect)
    gts = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=2)
    gts[kind == 2] = [0, 0, w, h]  # whole image
    gts[:, 1::4] = gts[:, 0::4][:, : gts[:, 1::4].shape[1]]  # duplicates: ties between GTs
    gts = np.clip(gts, 0, [w, h, w, h])
    on_grid = rng.random((b, m)) < 0.1  # some exactly on an anchor position: IoU ties and 1.0
    gts[on_grid] = np.round(gts[on_grid] / 8) * 8
    bad = (gts[..., 2] <= gts[..., 0]) | (gts[..., 3] <= gts[..., 1])
    gts[bad] = [8, 8, 16, 24]
    num = rng.integers(0, m + 1, b)
    return gts, num
