"""Loaders: every annotation format becomes one columnar Dataset."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import stat
import time
from pathlib import Path
from typing import Any

from imbstat.data import cache as columnar_cache
from imbstat.data.dataset import Boxes, BoxFilter, Categories, Dataset, Images
from imbstat.data.formats import FORMATS, detect_format
from imbstat.data.options import LoadOptions
from imbstat.data.problems import Problems, Reason
from imbstat.data.source import ReadLog, path_kind
from imbstat.errors import ImbstatError

__all__ = [
    "FORMATS",
    "BoxFilter",
    "Boxes",
    "Categories",
    "Dataset",
    "Images",
    "LoadOptions",
    "Problems",
    "Reason",
    "cache_source",
    "detect_format",
    "load",
]


def load(path: str | Path, format: str | None = None, *, options: LoadOptions | None = None, **fields: Any) -> Dataset:
    """Load annotations from ``path`` into a :class:`Dataset`.

    ``options`` (:class:`LoadOptions`), with ``format`` and any of its fields given as keywords
    (``split=``, ``classes=``, ``sizes=``, ``images=``, ``cache=``) taking precedence.
    """
    start = time.perf_counter()
    path_kind(path)  # a FIFO, a device or a symlink loop is refused before anything opens it
    options = dataclasses.replace(options or LoadOptions(), **fields, **({"format": format} if format else {}))
    options = dataclasses.replace(options, format=options.format or detect_format(path))
    source = Path(path)
    # By default only a large source is cached, and only its cache is read: a small one parses faster than
    # pyarrow imports (~0.4 s), whether or not a --cache run left a cache beside it.
    cached_size = options.cache or (options.cache is None and _size(source) > columnar_cache.AUTO_CACHE_ABOVE)
    if cached_size:
        cached = columnar_cache.read_cache(source, columnar_cache.load_options(path, options))
        if cached is not None:
            return dataclasses.replace(cached, load_seconds=time.perf_counter() - start)
    if cached_size:
        ds, _ = cache_source(source, options, strict=bool(options.cache))
    else:
        ds = _parse(source, options)
    return dataclasses.replace(ds, load_seconds=time.perf_counter() - start)


def cache_source(
    path: str | Path, options: LoadOptions = LoadOptions(), *, strict: bool = True
) -> tuple[Dataset, Path | None]:
    """Parse the source and write its Parquet cache; returns the Dataset and the cache folder.

    The cache is keyed on every file and folder the parse read (:class:`~imbstat.data.source.ReadLog`),
    each fingerprinted as it was read, so that an input edited during the parse, or any other file
    the load read (``--sizes``, ``--classes``, YOLO labels), makes the cache stale. A cache that
    cannot be written raises with ``strict``, else is skipped with a log line (None).
    ``options.cache`` is not read: this always writes.
    """
    options = dataclasses.replace(options, format=options.format or detect_format(path))
    source = Path(path)
    with ReadLog() as log:
        ds = _parse(source, options)
    try:
        return ds, columnar_cache.write_cache(ds, source, columnar_cache.load_options(path, options), log)
    except ImbstatError as e:
        if strict:
            raise
        logging.getLogger(__name__).info("no cache written: %s", e)
        return ds, None


def _size(source: Path) -> int:
    """Bytes of a file, or of the regular files under a folder (symlinked folders not followed)."""
    if source.is_file():
        return source.stat().st_size
    total = 0
    for folder, _, names in os.walk(source):
        for name in names:
            with contextlib.suppress(OSError):
                st = os.stat(os.path.join(folder, name))
                total += st.st_size if stat.S_ISREG(st.st_mode) else 0
    return total


def _parse(path: Path, options: LoadOptions) -> Dataset:
    """Read the source itself (no cache); ``options.format`` is set."""
    format = options.format
    if format == "coco":
        from imbstat.data.coco import load_coco

        ds = load_coco(path)
    elif format == "voc":
        from imbstat.data.voc import load_voc

        ds = load_voc(path, split=options.split)
    elif format == "openimages":
        from imbstat.data.openimages import load_openimages

        ds = load_openimages(path, classes=options.classes, sizes=options.sizes, images=options.images)
    elif format == "yolo":
        from imbstat.data.yolo import load_yolo

        ds = load_yolo(path, split=options.split, images=options.images)
    else:
        raise ImbstatError(f"unknown format {format!r}; expected one of {', '.join(FORMATS)}", path)
    return ds
