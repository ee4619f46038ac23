"""Id columns as the source wrote them (ints and strings, exact), matched by value and type, and joined."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def concat_columns(parts: list[list[np.ndarray]]) -> list[np.ndarray]:
    """Concatenate row parts (each a list of columns) column by column, emptying ``parts`` as it goes.

    Each column's parts are released once it is whole, so the peak is the parts plus one
    column rather than twice the data: what a streamed 25M-row load needs.
    """
    columns = []
    for j in range(len(parts[0])):
        columns.append(np.concatenate([p[j] for p in parts]))
        for p in parts:
            p[j] = None
    parts.clear()
    return columns


def id_column(values: Sequence | np.ndarray) -> np.ndarray:
    """[N] ids exactly as the source wrote them (JSON ints and strings), compared by value and type.

    int64 where every id is an integer that fits, else uint64 where they fit that, else object
    (Python ints); str where every id is a string; object holding both when ints and strings mix,
    so that 1 and "1" stay two ids and no id is rounded (``np.asarray`` makes 2**63 a float64,
    and 7 next to "a" the string "7").
    """
    if len(values) == 0:
        return np.zeros(0, np.int64)
    found = np.asarray(values)  # in C: int64 for the common case
    if found.dtype.kind in "iu":
        return found
    import pandas as pd

    kind = pd.api.types.infer_dtype(values, skipna=False)
    if kind == "string":
        return found if found.dtype.kind == "U" else np.asarray(values, str)
    objects = np.asarray(values, object).reshape(len(values))
    if kind == "integer":
        for dtype in (np.int64, np.uint64):
            try:
                return objects.astype(dtype)
            except OverflowError:  # beyond the dtype's range (or negative for uint64)
                pass
    return objects


def first_occurrence(ids: np.ndarray) -> np.ndarray:
    """[I] bool: True at the first row holding each id (later repeats False)."""
    if ids.dtype == object:  # ints and strings do not sort together: hash them
        import pandas as pd

        return ~pd.Series(ids, dtype=object).duplicated().to_numpy()
    _, first = np.unique(ids, return_index=True)
    mask = np.zeros(len(ids), bool)
    mask[first] = True
    return mask


_SEARCH_MAX = 1 << 20  # ids (keys + queries) up to which index_of searches sorted ids; beyond, pandas' hash is faster


def index_of(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """[Q] int64: row of each query in the unique ``keys``, -1 where absent.

    Ids match by value and type: 1 matches 1 whatever the integer dtype, never "1".
    """
    if len(keys) == 0:
        return np.full(len(query), -1, np.int64)
    if keys.dtype == query.dtype and keys.dtype.kind in "iu" and len(keys) + len(query) <= _SEARCH_MAX:
        # a small file's ids: a binary search, so that its run need not import pandas (~0.25 s)
        order = np.argsort(keys, kind="stable")
        at = np.minimum(np.searchsorted(keys[order], query), len(keys) - 1)
        return np.where(keys[order][at] == query, order[at], -1).astype(np.int64)
    import pandas as pd

    if keys.dtype != query.dtype and not (keys.dtype.kind == query.dtype.kind == "U"):
        # int64 against uint64, str or object: compare Python values, which pandas would otherwise
        # cast to a common dtype (float64 for int64 and uint64, rounding ids beyond 2**53)
        keys, query = keys.astype(object), query.astype(object)
    return pd.Index(keys, dtype=object if keys.dtype == object else None).get_indexer(query).astype(np.int64)


def names_identify(names: Sequence | np.ndarray) -> bool:
    """True when every name is a non-empty string and no two are equal: then the names match the categories of
    two files (a train and a val file, two reports), else their ids do."""
    values = list(names)
    return all(isinstance(n, str) and n != "" for n in values) and len(set(values)) == len(values)
