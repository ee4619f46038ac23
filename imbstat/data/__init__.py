"""Loaders: every annotation format becomes one columnar Dataset."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

from imbstat.data.dataset import Boxes, BoxFilter, Categories, Dataset, Images, Problems, Reason
from imbstat.errors import ImbstatError

FORMATS = ("coco", "voc", "openimages", "yolo")

__all__ = [
    "FORMATS",
    "BoxFilter",
    "Boxes",
    "Categories",
    "Dataset",
    "Images",
    "Problems",
    "Reason",
    "detect_format",
    "load",
]


def detect_format(path: str | Path) -> str:
    """Guess the format of ``path`` from its name and, for folders, its contents."""
    path = Path(path)
    if not path.exists():
        raise ImbstatError("no such file or directory", path)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return "coco"
        if suffix == ".csv":
            return "openimages"
        if suffix in (".yaml", ".yml"):
            return "yolo"
        if suffix == ".xml":
            return "voc"
        raise ImbstatError(
            f"cannot tell the format from the suffix {suffix!r}; expected .json, .csv, .yaml or a folder "
            "(or pass --format)",
            path,
        )
    if (path / "Annotations").is_dir() or any(path.glob("VOC*/Annotations")) or any(path.glob("*.xml")):
        return "voc"
    if (path / "labels").is_dir() or any(path.glob("*.yaml")) or any(path.glob("*.txt")):
        return "yolo"
    raise ImbstatError(
        "no annotations found; expected a VOC folder (Annotations/*.xml) or a YOLO folder (labels/*.txt)", path
    )


def load(
    path: str | Path,
    format: str | None = None,
    *,
    split: str | None = None,
    classes: str | Path | None = None,
    sizes: str | Path | None = None,
    images: str | Path | None = None,
    cache: bool | None = None,
) -> Dataset:
    """Load annotations from ``path`` into a :class:`Dataset`.

    Args:
        format: one of :data:`FORMATS`; detected from ``path`` when None.
        split: VOC ``ImageSets/Main/<split>.txt`` (e.g. "trainval"), or the
            YOLO split named in the data YAML ("train", "val").
        classes: Open Images class-descriptions CSV (``LabelName,DisplayName``).
        sizes: Open Images image sizes CSV (``ImageID,Width,Height``).
        images: a folder of image files whose headers give image sizes
            (Open Images, YOLO).
        cache: read and write the Parquet cache of :mod:`imbstat.data.cache`
            (True), never (False), or for sources over 64 MiB (None).
    """
    from imbstat.data import cache as columnar_cache

    start = time.perf_counter()
    format = format or detect_format(path)
    source = Path(path)
    options = columnar_cache.load_options(path, format, split, classes, sizes, images)
    if cache is not False:
        cached = columnar_cache.read_cache(source, options)
        if cached is not None:
            return dataclasses.replace(cached, load_seconds=time.perf_counter() - start)
    ds = _parse(source, format, split, classes, sizes, images)
    if cache or (cache is None and _size(source) > columnar_cache.AUTO_CACHE_ABOVE):
        try:
            columnar_cache.write_cache(ds, source, options)
        except ImbstatError as e:
            if cache:
                raise
            logging.getLogger(__name__).info("no cache written: %s", e)
    return dataclasses.replace(ds, load_seconds=time.perf_counter() - start)


def _size(source: Path) -> int:
    return (
        source.stat().st_size if source.is_file() else sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    )


def _parse(
    path: Path, format: str, split: str | None, classes: str | Path | None, sizes: str | Path | None,
    images: str | Path | None,
) -> Dataset:  # fmt: skip
    """Read the source itself (no cache)."""
    if format == "coco":
        from imbstat.data.coco import load_coco

        ds = load_coco(path)
    elif format == "voc":
        from imbstat.data.voc import load_voc

        ds = load_voc(path, split=split)
    elif format == "openimages":
        from imbstat.data.openimages import load_openimages

        ds = load_openimages(path, classes=classes, sizes=sizes, images=images)
    elif format == "yolo":
        from imbstat.data.yolo import load_yolo

        ds = load_yolo(path, split=split, images=images)
    else:
        raise ImbstatError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}", path)
    return ds
