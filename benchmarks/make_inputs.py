"""Build COCO-sized benchmark inputs by replicating the real mini files in ``../shared/data/coco``.

Each copy of the source gets fresh image ids, fresh annotation ids (its boxes are remapped to
its own image ids) and unique file names; everything else, segmentations included, is kept
as in the source, so the byte mix of the output is that of a real COCO file::

    python -m benchmarks.make_inputs [--out benchmarks/inputs] [--sizes val,train] [--force]

The output is written in chunks (one copy at a time), so memory stays near that of the source
file whatever the factor. The first line of every output is ``{"info":{...},`` where ``info``
records the source and the factor; an existing output whose line matches is not rebuilt.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

try:
    import orjson
except ImportError:  # the stdlib writer gives the same document, only slower
    orjson = None

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco"
DEFAULT_OUT = Path(__file__).resolve().parent / "inputs"
MARKER = "imbstat_benchmark"  # key in the output's info that records how it was built


@dataclass(frozen=True)
class Spec:
    """One benchmark input: ``source`` replicated ``factor`` times into ``output``."""

    source: str
    factor: int
    output: str


SPECS: dict[str, Spec] = {
    # 79 images x 19 = 1,501 images, 624 x 19 = 11,856 boxes: issue 12's "1,500-image COCO file" (bench_startup).
    "startup": Spec("coco2017_val_mini.json", 19, "coco_1500.json"),
    # 79 images x 64 = 5,056 images, 624 x 64 = 39,936 boxes (COCO val2017: 5,000 / 36,781).
    "val": Spec("coco2017_val_mini.json", 64, "coco_val_sized.json"),
    # 80 images x 1,500 = 120,000 images, 739 x 1,500 = 1,108,500 boxes (train2017: 118,287 / 860,001).
    "train": Spec("coco2017_train_mini.json", 1500, "coco_train_sized.json"),
    # 80 x 35,000 = 2.8M images, 739 x 35,000 = 25.9M boxes (Objects365 v2 train: ~1.7M / ~25M); ~15 GB.
    "o365": Spec("coco2017_train_mini.json", 35_000, "objects365_sized.json"),
}


def _dumps() -> Callable[[Any], bytes]:
    if orjson is not None:
        return orjson.dumps
    return lambda obj: json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _unique_name(file_name: str, copy: int) -> str:
    """``000000397133.jpg`` of copy 12 -> ``000000397133_r00012.jpg``."""
    stem, dot, suffix = file_name.rpartition(".")
    if not dot:
        return f"{file_name}_r{copy:05d}"
    return f"{stem}_r{copy:05d}.{suffix}"


def _write_array(out: BinaryIO, chunks: Iterable[bytes]) -> None:
    """Write ``[`` + the chunks (each a JSON array) joined into one array + ``]``."""
    out.write(b"[")
    first = True
    for chunk in chunks:
        body = chunk[1:-1]  # strip the chunk's own brackets
        if not body:
            continue
        if not first:
            out.write(b",")
        out.write(body)
        first = False
    out.write(b"]")


def info_line(info: dict[str, Any]) -> bytes:
    """The output's first line, ``{"info":{...},`` + newline; :func:`built_as` reads it back."""
    return b'{"info":' + _dumps()(info) + b",\n"


def built_as(path: Path) -> dict[str, Any] | None:
    """The build record in the ``info`` of an existing output, or None if absent or unreadable."""
    try:
        with path.open("rb") as f:
            line = f.readline(1 << 20)
        if not (line.startswith(b'{"info":') and line.endswith(b",\n")):
            return None
        info = json.loads(line[len(b'{"info":') : -2])
    except (OSError, ValueError):
        return None
    record = info.get(MARKER) if isinstance(info, dict) else None
    return record if isinstance(record, dict) else None


def replicate(source: Path, factor: int, output: Path) -> tuple[int, int]:
    """Write ``source`` replicated ``factor`` times to ``output``; return (images, annotations).

    Image ids are ``copy * n_images + i + 1`` and annotation ids ``copy * n_annotations + j + 1``
    (1-based, unique across copies); each annotation's ``image_id`` is its copy's id of its image.
    Written to a temporary file and renamed, so an interrupted build leaves no output.
    """
    doc = json.loads(source.read_bytes())
    images: list[dict[str, Any]] = doc["images"]
    annotations: list[dict[str, Any]] = doc["annotations"]
    n_img, n_ann = len(images), len(annotations)
    position = {im["id"]: i for i, im in enumerate(images)}
    ann_image = [position[a["image_id"]] for a in annotations]  # KeyError: a box of an unknown image
    dumps = _dumps()

    info = dict(doc.get("info") or {})
    info[MARKER] = {"source": source.name, "factor": factor, "images": n_img * factor, "annotations": n_ann * factor}

    def image_chunks() -> Iterable[bytes]:
        for k in range(factor):
            base = k * n_img + 1
            yield dumps(
                [
                    {**im, "id": base + i, "file_name": _unique_name(str(im.get("file_name", im["id"])), k)}
                    for i, im in enumerate(images)
                ]
            )

    def annotation_chunks() -> Iterable[bytes]:
        for k in range(factor):
            img_base, ann_base = k * n_img + 1, k * n_ann + 1
            yield dumps(
                [{**a, "image_id": img_base + ann_image[j], "id": ann_base + j} for j, a in enumerate(annotations)]
            )

    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("wb") as out:
        out.write(info_line(info))
        for key in doc:
            if key in ("info", "images", "annotations"):
                continue
            if key == "categories":
                continue  # written last, as COCO does
            out.write(b'"' + key.encode() + b'":' + dumps(doc[key]) + b",\n")
        out.write(b'"images":')
        _write_array(out, image_chunks())
        out.write(b',\n"annotations":')
        _write_array(out, annotation_chunks())
        out.write(b',\n"categories":' + dumps(doc.get("categories", [])) + b"}\n")
    os.replace(tmp, output)
    return n_img * factor, n_ann * factor


def build(size: str, data: Path, out: Path, force: bool = False) -> Path:
    """Build the input named ``size`` (a key of :data:`SPECS`) unless an identical one exists."""
    spec = SPECS[size]
    source, output = data / spec.source, out / spec.output
    if not source.is_file():
        sys.exit(f"make_inputs: error: {source} not found; pass --data DIR (the folder with {spec.source})")
    record = built_as(output)
    if not force and record is not None and record.get("source") == spec.source and record.get("factor") == spec.factor:
        print(f"{output}: up to date (x{spec.factor} of {spec.source}); --force rebuilds")
        return output
    start = time.perf_counter()
    n_img, n_ann = replicate(source, spec.factor, output)
    mb = output.stat().st_size / 1e6
    print(
        f"{output}: {n_img:,} images, {n_ann:,} annotations, {mb:,.0f} MB "
        f"(x{spec.factor} of {spec.source}) in {time.perf_counter() - start:.1f} s"
    )
    return output


# Open Images train: ~1.74M images, 14.6M boxes. 739 boxes x 19,760 copies = 14,602,640 rows.
OPENIMAGES = Spec("coco2017_train_mini.json", 19_760, "openimages_sized.csv")
OPENIMAGES_COLUMNS = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax", "IsOccluded",
                      "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]  # fmt: skip


def build_openimages(data: Path, out: Path, force: bool = False, copies_per_chunk: int = 400) -> Path:
    """An Open Images-layout box CSV (+ ``-classes.csv``, ``-sizes.csv``) from the COCO train mini file.

    Each copy of the source's images gets fresh 16-hex-digit ImageIDs; boxes keep their
    normalised geometry (6 decimals, as the official files), COCO categories become
    ``/m/0coco<id>`` LabelNames and ``iscrowd`` becomes ``IsGroupOf``. Written chunk by chunk.
    """
    import numpy as np
    import pandas as pd

    source, output = data / OPENIMAGES.source, out / OPENIMAGES.output
    classes, sizes = output.with_name("openimages_sized-classes.csv"), output.with_name("openimages_sized-sizes.csv")
    stamp = output.with_name(output.name + ".built")
    record = f"{OPENIMAGES.source} x{OPENIMAGES.factor}"
    if not force and output.exists() and stamp.exists() and stamp.read_text() == record:
        print(f"{output}: up to date ({record}); --force rebuilds")
        return output
    doc = json.loads(source.read_bytes())
    images, annotations = doc["images"], doc["annotations"]
    position = {im["id"]: i for i, im in enumerate(images)}
    w = np.array([im["width"] for im in images], np.float64)
    h = np.array([im["height"] for im in images], np.float64)
    img = np.array([position[a["image_id"]] for a in annotations])
    x, y, bw, bh = np.array([a["bbox"] for a in annotations], np.float64).T
    one = pd.DataFrame({
        "Source": "xclick",
        "LabelName": [f"/m/0coco{a['category_id']}" for a in annotations],
        "Confidence": 1,
        "XMin": np.clip(x / w[img], 0, 1), "XMax": np.clip((x + bw) / w[img], 0, 1),
        "YMin": np.clip(y / h[img], 0, 1), "YMax": np.clip((y + bh) / h[img], 0, 1),
        "IsOccluded": 0, "IsTruncated": 0,
        "IsGroupOf": [int(a.get("iscrowd", 0)) for a in annotations],
        "IsDepiction": 0, "IsInside": 0,
    })  # fmt: skip
    n_img = len(images)
    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    with tmp.open("w", newline="") as f, sizes.open("w", newline="") as fs:
        f.write(",".join(OPENIMAGES_COLUMNS) + "\n")
        fs.write("ImageID,Width,Height\n")
        for first in range(0, OPENIMAGES.factor, copies_per_chunk):
            copies = np.arange(first, min(first + copies_per_chunk, OPENIMAGES.factor))
            ids = np.array([f"{c * n_img + i + 1:016x}" for c in copies for i in range(n_img)], object)  # [C·I]
            chunk = pd.concat([one] * len(copies), ignore_index=True)
            chunk.insert(0, "ImageID", ids[np.repeat(copies - first, len(img)) * n_img + np.tile(img, len(copies))])
            chunk.to_csv(f, header=False, index=False, float_format="%.6f")
            size_rows = {"ImageID": ids, "Width": np.tile(w, len(copies)).astype(int),
                         "Height": np.tile(h, len(copies)).astype(int)}  # fmt: skip
            pd.DataFrame(size_rows).to_csv(fs, header=False, index=False)
    names = {"LabelName": [f"/m/0coco{c['id']}" for c in doc["categories"]],
             "DisplayName": [c["name"] for c in doc["categories"]]}  # fmt: skip
    pd.DataFrame(names).to_csv(classes, header=False, index=False)
    os.replace(tmp, output)
    stamp.write_text(record)
    print(f"{output}: {n_img * OPENIMAGES.factor:,} images, {len(img) * OPENIMAGES.factor:,} boxes, "
          f"{output.stat().st_size / 1e6:,.0f} MB ({record}) in {time.perf_counter() - start:.1f} s")  # fmt: skip
    return output


def parse_sizes(text: str) -> list[str]:
    """``"val,train"`` -> ``["val", "train"]``, rejecting unknown names."""
    sizes = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in (*SPECS, "openimages")]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(
            f"unknown size(s) {unknown}; expected a comma list of {', '.join(SPECS)}, openimages"
        )
    return sizes


def main(argv: list[str] | None = None) -> None:
    """Command line: build the requested inputs."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.make_inputs", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument(
        "--sizes", type=parse_sizes, default=["val", "train"], help="comma list of: val, train, o365, openimages"
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of the mini files ({DEFAULT_DATA})")
    parser.add_argument("--force", action="store_true", help="rebuild even if an up-to-date output exists")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        sys.exit(f"make_inputs: error: data folder {args.data} not found; pass --data DIR")
    for size in args.sizes:
        if size == "openimages":
            build_openimages(args.data, args.out, force=args.force)
        else:
            build(size, args.data, args.out, force=args.force)


if __name__ == "__main__":
    main()
