"""A built-in sample dataset, generated deterministically (no downloads).

It has what real detection data has: a long tail of classes, many small boxes
and few large ones, centres crowded towards the middle, a few crowd boxes,
images without boxes, and a few annotations a loader must reject or repair.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SAMPLE_CLASSES = (
    "person", "car", "chair", "cup", "bottle", "dog", "bicycle", "bird", "book", "boat",
    "traffic light", "umbrella", "kite", "clock", "vase", "toaster", "hair drier", "parking meter",
    "snowboard", "zebra",
)  # fmt: skip
IMAGE_SIZES = ((640, 480), (640, 427), (500, 375), (480, 640), (1024, 768))


def sample_coco(num_images: int = 300, seed: int = 0) -> dict:
    """A COCO instances document with a Zipf-like class tail (seeded, so identical on every machine)."""
    rng = np.random.default_rng(seed)
    k = len(SAMPLE_CLASSES)
    sizes = np.array(IMAGE_SIZES)[rng.integers(0, len(IMAGE_SIZES), num_images)]
    per_image = rng.poisson(6.0, num_images) * (rng.random(num_images) > 0.05)  # ~5 % images without boxes
    image_of = np.repeat(np.arange(num_images), per_image)
    n = image_of.size
    class_p = 1.0 / np.arange(1, k + 1) ** 1.3
    category = rng.choice(k, size=n, p=class_p / class_p.sum())
    width, height = sizes[image_of, 0], sizes[image_of, 1]
    # Relative side lengths: log-normal, mostly small (Fig. 7's skew), capped at the image.
    rel = np.clip(np.exp(rng.normal(-2.3, 0.8, (n, 2))), 0.01, 1.0)
    w, h = rel[:, 0] * width, rel[:, 1] * height
    # Centres drawn around the middle of the image (Fig. 13), kept inside it.
    cx = np.clip(rng.normal(0.5, 0.18, n), 0, 1) * width
    cy = np.clip(rng.normal(0.55, 0.15, n), 0, 1) * height
    x = np.clip(cx - w / 2, 0, width - w)
    y = np.clip(cy - h / 2, 0, height - h)
    crowd = rng.random(n) < 0.01
    images = [
        {"id": i + 1, "file_name": f"{i + 1:06d}.jpg", "width": int(sw), "height": int(sh)}
        for i, (sw, sh) in enumerate(sizes)
    ]
    annotations = [
        {
            "id": j + 1,
            "image_id": int(image_of[j]) + 1,
            "category_id": int(category[j]) + 1,
            "bbox": [round(float(x[j]), 2), round(float(y[j]), 2), round(float(w[j]), 2), round(float(h[j]), 2)],
            "area": round(float(w[j] * h[j]), 2),
            "iscrowd": int(crowd[j]),
        }
        for j in range(n)
    ]
    # What real files contain too: a zero-width box and a box running off its image.
    annotations[0]["bbox"][2] = 0.0
    annotations[1]["bbox"][0] = images[annotations[1]["image_id"] - 1]["width"] - 5.0
    categories = [{"id": c + 1, "name": name, "supercategory": "sample"} for c, name in enumerate(SAMPLE_CLASSES)]
    return {
        "info": {"description": "imbstat built-in sample", "version": "1"},
        "images": images,
        "annotations": annotations,
        "categories": categories,
    }


def write_sample(path: str | Path, num_images: int = 300, seed: int = 0) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sample_coco(num_images, seed)))
    return path
