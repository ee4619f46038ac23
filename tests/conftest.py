from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

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


@pytest.fixture
def write_json(tmp_path: Path):
    def write(doc: object, name: str = "instances.json") -> Path:
        path = tmp_path / name
        path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return path

    return write


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


@pytest.fixture
def tiny_coco(write_json) -> Path:
    return write_json(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS, TINY_CATEGORIES))
