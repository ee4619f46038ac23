"""The protocol every result type of :mod:`imbstat.stats` follows, and its shared checks.

A result (``ClassDistribution``, ``ScaleDistribution``, ``LocationDistribution``,
``AnchorStats``) has:

- ``merge(parts)``: the result of the union of disjoint sets of images of one dataset,
  computed with the same options. Parts that differ in an option or in the dataset's
  categories, or an empty list, raise :class:`~imbstat.errors.ImbstatError` naming the
  field that differs (``imbstat merge`` and the Dask path reach it from users' reports,
  so the CLI prints it as a one-line error);
- ``empty(ds, *, options)``: the result over none of ``ds``'s images, the identity of ``merge``;
- ``to_dict()`` / ``from_dict(d)``: its JSON fields and back, ``from_dict(to_dict(r)).to_dict()
  == to_dict(r)`` (with the same keyword as ``to_dict`` where it has one);
- ``to_frame()``: its main table as a pandas DataFrame;
- ``scores``: ``dict[str, float]`` of plain floats, the keys of its JSON ``scores``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from imbstat.errors import ImbstatError

T = TypeVar("T")


def first_part(parts: Sequence[T], kind: str) -> T:
    """``parts[0]``; an empty list is an error (there is no result without a dataset to take the options of)."""
    if len(parts) == 0:
        raise ImbstatError(f"cannot merge an empty list of {kind} results; expected at least one part")
    return parts[0]


def check_same(parts: Sequence[T], kind: str, field: str, value: Callable[[T], Any] | None = None) -> None:
    """Raise ImbstatError naming ``field`` (or the field of it, for a dataclass) unless all parts agree on it."""
    get = value or (lambda p: getattr(p, field))
    ref = get(parts[0])
    for i, part in enumerate(parts[1:], start=1):
        found = get(part)
        differs = _difference(field, ref, found)
        if differs is not None:
            name, a, b = differs
            raise ImbstatError(
                f"cannot merge {kind} results with different {name}: part 0 has {_show(a)}, part {i} has "
                f"{_show(b)}; expected parts of one dataset computed with the same options"
            )


def _difference(name: str, a: Any, b: Any) -> tuple[str, Any, Any] | None:
    """(the name of the first differing field, its two values), or None when ``a`` and ``b`` are equal."""
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        for f in dataclasses.fields(a):
            found = _difference(f"{name}.{f.name}", getattr(a, f.name), getattr(b, f.name))
            if found is not None:
                return found
        return None
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        same = a.shape == b.shape and a.dtype.kind == b.dtype.kind and bool(np.all(a == b))
        return None if same else (name, a, b)
    return None if a == b else (name, a, b)


def _show(value: Any) -> str:
    """A short one-line text of a value: arrays by shape and their first items."""
    if isinstance(value, np.ndarray):
        head = ", ".join(str(v) for v in value.ravel()[:4]) + (", …" if value.size > 4 else "")
        return f"{'×'.join(map(str, value.shape)) or 'scalar'} [{head}]"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"
