"""Read the class long tail of a dataset from Python, without the CLI.

    python examples/long_tail.py instances_val2017.json

Prints the LVIS-style groups, the class imbalance measures, and the classes
that hold the top 10 % of instances, then merges two halves of the dataset to
show that results computed on shards combine into the whole.
"""

from __future__ import annotations

import sys

import numpy as np

import imbstat
from imbstat.stats import ClassDistribution


def main(path: str) -> None:
    ds = imbstat.load(path)
    classes = imbstat.class_distribution(ds)
    print(f"{ds.num_images} images, {len(ds.boxes)} boxes, {len(ds.categories)} classes ({ds.format})")
    print("groups:", classes.group_counts())
    print("scores:", {k: round(v, 4) for k, v in classes.scores.items()})
    frame = classes.to_frame()
    head = frame.head(max(1, len(frame) // 10))
    print(f"top 10 % of classes ({len(head)}): {', '.join(head['name'])}")

    # Shards: any split of the images gives partial results that merge exactly.
    half = np.arange(ds.num_images) < ds.num_images // 2
    shards = [ds.select_images(half), ds.select_images(~half)]
    merged = ClassDistribution.merge([imbstat.class_distribution(s) for s in shards])
    assert (merged.instances == classes.instances).all() and (merged.images == classes.images).all()
    print("merged halves == whole dataset: yes")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "imbstat-demo/sample.json")
