"""A columnar cache of a loaded Dataset: Parquet tables next to a record of every input it read.

Parsing a multi-GB annotation file takes minutes; reading its columns back
from Parquet takes seconds. A cache belongs to one source and one set of load
options, and holds the :class:`~imbstat.data.source.ReadLog` of the parse that
made it: every file read (the source, ``--sizes``, ``--classes``, each VOC XML
or YOLO label, image headers), with its size and time taken before its first
byte was read and a hash of the bytes parsed, and every folder listed. It is
stale, and ignored, as soon as any of those files differs (a file read whole
is hashed again on every read of the cache: size and mtime alone could lie,
``cp -p`` restores both), a listed folder gained or lost an entry, or the
options or the cache schema differ. It is damaged, ignored and rebuilt, when its
record is malformed or names another source, or a table does not hash as it did
when written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from imbstat.data.dataset import Boxes, Categories, Dataset, Images
from imbstat.data.formats import detect_format
from imbstat.data.ids import id_column
from imbstat.data.options import LoadOptions
from imbstat.data.problems import Problems
from imbstat.data.source import ReadLog, changed_inputs, content_hash
from imbstat.errors import ImbstatError

CACHE_SCHEMA = 4  # 2: keyed on the ReadLog of every input (1 fingerprinted the source only, after parsing);
# image sizes outside valid_image_size excluded, COCO duplicate keys counted at load, and ids exact
# (uint64, or JSON text where ints and strings mix or exceed 64 bits); 3: SHA-256 of the inputs and of each table;
# 4: the boxes' source area (COCO ``area``, NaN where absent), so a cache older than it is rebuilt
# Below this size parsing is about as fast as reading a cache: load() caches bigger sources only.
AUTO_CACHE_ABOVE = 64 << 20
_log = logging.getLogger(__name__)


def cache_dir(source: Path) -> Path:
    """``<source>.imbstat-cache/`` beside the source, or under ~/.cache/imbstat where that is not writable."""
    source = source.resolve()
    beside = source.parent / f"{source.name}.imbstat-cache"
    # Write bits as well as access: root may write anywhere, but a folder without them is meant read-only.
    if os.access(source.parent, os.W_OK) and source.parent.stat().st_mode & 0o222:
        return beside
    key = hashlib.blake2b(str(source).encode(), digest_size=8).hexdigest()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imbstat" / f"{source.name}-{key}"


def load_options(path: str | Path, options: LoadOptions = LoadOptions()) -> dict[str, str | None]:
    """The load options a cache is valid for: ``options`` as JSON, the format resolved, ``cache`` left out."""
    # Paths absolute: the same relative --sizes from another folder is another file.
    files = options.files()
    return {
        f.name: _absolute(getattr(options, f.name)) if f.name in files else getattr(options, f.name)
        for f in dataclasses.fields(options)
        if f.name != "cache"
    } | {"format": options.format or detect_format(path)}


def _absolute(path: str | Path | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def write_cache(ds: Dataset, source: Path, options: dict[str, Any], inputs: ReadLog) -> Path:
    """Write ``ds`` as Parquet tables with the record of what its parse read; returns the cache folder.

    ``inputs`` must be the ReadLog that was active while ``ds`` was parsed
    (:func:`imbstat.data.cache_source` does both).
    """
    # A parse whose reads bypassed imbstat.data.source would give a cache that never goes stale.
    assert inputs.files or inputs.folders, "write_cache: the parse recorded no input"
    folder = cache_dir(source)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").unlink(missing_ok=True)  # no cache while its tables change
        tables = {}
        for name, table in _tables(ds).items():
            _write_table(table, folder / f"{name}.parquet")
            tables[name] = _digest((folder / f"{name}.parquet").read_bytes())
        meta = {
            "cache_schema": CACHE_SCHEMA,
            "source": str(source.resolve()),
            "format": ds.format,
            "options": options,
            "inputs": inputs.to_dict(),
            "tables": tables,  # the hash of each Parquet file: a damaged or swapped-in table is not served
        }
        (folder / "meta.json").write_text(json.dumps(meta))
    except OSError as e:
        raise ImbstatError(f"cannot write the cache: {e.strerror}", folder) from None
    return folder


def read_cache(source: Path, options: dict[str, Any]) -> Dataset | None:
    """The cached Dataset of ``source``, or None when there is none, it is stale, or it is damaged.

    What it serves is verified: the record names this source, every input it read still hashes as it
    did (:func:`~imbstat.data.source.changed_inputs`), and each table hashes as when it was written.
    """
    folder = cache_dir(source)
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(meta, dict) or meta.get("cache_schema") != CACHE_SCHEMA or meta.get("options") != options:
        return None
    damage = _damage(meta, source)
    if damage:
        _log.info("damaged cache %s ignored: %s", folder, damage)
        return None
    before = json.dumps(meta)
    changed = next(changed_inputs(meta["inputs"]), None)  # most of a hit's time: the inputs hashed again
    if changed is not None:
        _log.info("stale cache %s ignored: %s changed", folder, changed)
        return None
    if json.dumps(meta) != before:  # files touched without a change: recorded as they are now
        with contextlib.suppress(OSError):
            (folder / "meta.json").write_text(json.dumps(meta))
    try:
        tables = {name: _read_table(folder / f"{name}.parquet", meta["tables"][name]) for name in _TABLES}
        return _dataset(tables, str(source), meta["format"])
    except (OSError, ValueError, KeyError, TypeError, IndexError) as e:  # pyarrow's errors are ValueErrors
        _log.info("unreadable cache %s ignored: %s", folder, e)
        return None


def _digest(data: bytes) -> str:
    return content_hash(data).hexdigest()


def _damage(meta: dict[str, Any], source: Path) -> str:
    """What makes ``meta`` no record of a cache of ``source`` ("" when nothing does): a cache folder
    copied from another source, a hand-edited or truncated record."""
    if meta.get("source") != str(source.resolve()):
        return f"the record of another source ({meta.get('source')!r})"
    inputs, tables = meta.get("inputs"), meta.get("tables")
    if not isinstance(meta.get("format"), str):
        return "no format"
    if (
        not isinstance(tables, dict)
        or set(tables) != set(_TABLES)
        or not all(isinstance(v, str) for v in tables.values())
    ):
        return "no hash of each table"
    if (
        not isinstance(inputs, dict)
        or not isinstance(inputs.get("files"), dict)
        or not isinstance(inputs.get("folders"), dict)
    ):
        return "no record of its inputs"
    for path, entry in inputs["files"].items():
        well_formed = (
            isinstance(entry, list)
            and len(entry) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) for v in entry[:2])
            and (entry[2] is None or isinstance(entry[2], str))
        )
        if not well_formed:
            return f"a malformed record of {path}"
    if not all(map(_is_text, inputs["folders"].values())):
        return "a malformed record of a folder"
    if not inputs["files"] and not inputs["folders"]:
        return "no input recorded"  # a cache that could never go stale
    return ""


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


_TABLES = ("images", "boxes", "categories", "problems")
_ROW_GROUP = 1 << 20


# pyarrow directly, one row group or one column at a time: pandas' DataFrame round trip held
# three copies of the box columns at once (issue: scale, memory <= 2.5x the columns).
def _write_table(columns: dict[str, np.ndarray], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    n = len(next(iter(columns.values())))

    def rows(start: int) -> pa.Table:
        return pa.table(
            {name: pa.array(np.ascontiguousarray(a[start : start + _ROW_GROUP])) for name, a in columns.items()}
        )

    first = rows(0)
    with pq.ParquetWriter(path, first.schema) as writer:
        writer.write_table(first)
        for start in range(_ROW_GROUP, n, _ROW_GROUP):
            writer.write_table(rows(start))


def _read_table(path: Path, digest: str) -> dict[str, np.ndarray]:
    """Every column of a Parquet file as a writable numpy array (strings as objects), read one by one;
    ValueError unless the file hashes to ``digest`` (read once: the bytes hashed are the bytes parsed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = path.read_bytes()
    if _digest(data) != digest:
        raise ValueError(f"{path.name} is not the table this cache wrote")
    file = pq.ParquetFile(pa.BufferReader(data))
    out = {}
    for name in file.schema_arrow.names:
        column = file.read(columns=[name]).column(0).to_numpy()  # zero copy where it can: then read-only
        out[name] = column if column.flags.writeable else column.copy()
    return out


def _id_columns(name: str, ids: np.ndarray) -> dict[str, np.ndarray]:
    """An id column as Parquet holds it: as it is, or as JSON texts (``name_json``) where it
    holds ints Parquet has no type for (beyond 64 bits) or ints next to strings."""
    from pandas.api.types import infer_dtype

    if ids.dtype != object or infer_dtype(ids, skipna=False) in ("string", "empty"):
        return {name: ids}
    return {f"{name}_json": np.asarray([json.dumps(v) for v in ids.tolist()], object)}


def _ids_of(table: dict[str, np.ndarray], name: str) -> np.ndarray:
    if f"{name}_json" in table:
        return id_column([json.loads(v) for v in table[f"{name}_json"]])
    return table[name]


def _tables(ds: Dataset) -> dict[str, dict[str, np.ndarray]]:
    b, c = ds.boxes, ds.categories
    categories = {**_id_columns("category_id", c.category_id), "name": c.name.astype(str)}
    if c.supercategory is not None:
        categories["supercategory"] = c.supercategory.astype(str)
    if c.frequency is not None:
        categories["frequency"] = c.frequency.astype(str)
    return {
        "images": {
            **_id_columns("image_id", ds.images.image_id),
            **{f.name: getattr(ds.images, f.name) for f in dataclasses.fields(Images) if f.name != "image_id"},
        },
        "boxes": {
            "image": b.image,
            "category": b.category,
            "x1": b.xyxy[:, 0],
            "y1": b.xyxy[:, 1],
            "x2": b.xyxy[:, 2],
            "y2": b.xyxy[:, 3],
            "iscrowd": b.iscrowd,
            "difficult": b.difficult,
            "group_of": b.group_of,
            "area": b.area,
        },
        "categories": categories,
        "problems": {
            "reason": ds.problems.reason,
            "location": ds.problems.location.astype(str),
            "detail": ds.problems.detail.astype(str),
        },
    }


def _dataset(t: dict, path: str, format: str) -> Dataset:
    im, bx, ca, pr = (t[name] for name in _TABLES)
    images = Images(_ids_of(im, "image_id"), *(im[f.name] for f in dataclasses.fields(Images) if f.name != "image_id"))
    xyxy = np.empty((len(bx["x1"]), 4), np.float64)
    for k, name in enumerate(("x1", "y1", "x2", "y2")):
        xyxy[:, k] = bx.pop(name)  # each column freed once copied
    boxes = Boxes(
        bx["image"],
        bx["category"],
        xyxy,
        *(bx[k].astype(bool) for k in ("iscrowd", "difficult", "group_of")),
        bx["area"].astype(np.float64),
    )
    categories = Categories(
        _ids_of(ca, "category_id"),
        ca["name"].astype(object),
        ca["supercategory"].astype(object) if "supercategory" in ca else None,
        ca["frequency"].astype(object) if "frequency" in ca else None,
    )
    problems = Problems(pr["reason"].astype(np.int8), pr["location"].astype(object), pr["detail"].astype(object))
    return Dataset(path, format, images, boxes, categories, problems)
