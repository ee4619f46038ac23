"""How to read a source: the options of :func:`imbstat.load`, declared once.

The library (``load``, ``cache_source``), the Parquet cache's key, the CLI's
dataset options and the Dask workers all take a :class:`LoadOptions`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

# metadata of a field that names a file or folder read beside the source (its absolute path keys the cache)
_FILE = {"file": True}


@dataclass(frozen=True)
class LoadOptions:
    """Everything besides the path that decides what :func:`imbstat.load` reads.

    Attributes:
        format: one of :data:`imbstat.data.FORMATS`; detected from the path when None.
        split: VOC ``ImageSets/Main/<split>.txt`` (e.g. "trainval"), or the
            YOLO split named in the data YAML ("train", "val").
        classes: Open Images class-descriptions CSV (``LabelName,DisplayName``).
        sizes: Open Images image sizes CSV (``ImageID,Width,Height``).
        images: a folder of image files whose headers give image sizes
            (Open Images, YOLO).
        cache: read and write the Parquet cache of :mod:`imbstat.data.cache`
            (True), never (False), or for sources over 64 MiB (None).
    """

    format: str | None = None
    split: str | None = None
    classes: str | Path | None = dataclasses.field(default=None, metadata=_FILE)
    sizes: str | Path | None = dataclasses.field(default=None, metadata=_FILE)
    images: str | Path | None = dataclasses.field(default=None, metadata=_FILE)
    cache: bool | None = None

    @classmethod
    def files(cls) -> tuple[str, ...]:
        """The fields that name a file or folder read beside the source."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("file"))
