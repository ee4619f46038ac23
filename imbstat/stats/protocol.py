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
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
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


# --- reading a result's JSON back: every count a non-negative integer, every array the length its result implies ---
# A shard's or saved report's fields are user data (hand-edited, truncated, from another version): ``from_dict``
# checks them here, so that a bad one is a one-line error naming its JSON path, never a traceback or a wrong number.

MAX_COUNT = 2**62  # a count beyond this is no count of a dataset's (and would overflow int64 once summed)


class FieldError(ImbstatError):
    """A field of a result's JSON that is not what the result needs; ``field`` is its JSON path within the result.

    Raised by ``from_dict``; a caller that knows where the result sits names the file and puts its own key in
    front (:meth:`within`), so that the CLI prints ``FILE (section.field[3]): expected ...``.
    """

    def __init__(self, field: str, expected: str):
        super().__init__(expected, position=field or None)
        self.field = field
        self.args = (f"{field}: {expected}" if field else expected,)  # read without a file (the API): the path

    def within(self, prefix: str) -> FieldError:
        """The same error with ``prefix`` (a key or a JSON path) in front of its field."""
        joined = prefix if not self.field else prefix + ("" if self.field.startswith("[") else ".") + self.field
        return FieldError(joined if prefix else self.field, self.detail)

    def at(self, source: str | Path | None, prefix: str = "") -> ImbstatError:
        """The one-line error of the file ``source``, its position the field's JSON path under ``prefix``."""
        inner = self.within(prefix) if prefix else self
        return ImbstatError(inner.detail, source, inner.field or None)


def nested(d: Any, key: str | int, read: Callable[[Any], T]) -> T:
    """``read(d[key])``, a FieldError it raises named under ``key`` (KeyError as it is: a missing field)."""
    try:
        return read(d[key])
    except FieldError as e:
        raise e.within(f"[{key}]" if isinstance(key, int) else key) from None


def each(read: Callable[[Any], T]) -> Callable[[Any], tuple[T, ...]]:
    """``read`` of each item of a JSON list, a FieldError it raises named under the item's index."""

    def read_all(items: Any) -> tuple[T, ...]:
        if not isinstance(items, list):
            raise FieldError("", f"expected a list, found {_json(items)}")
        return tuple(nested(items, i, read) for i in range(len(items)))

    return read_all


def count(value: Any, field: str) -> int:
    """``value`` as an int: a non-negative integer (a JSON int, or a float without a fraction; not a bool)."""
    integral = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not integral or value != int(value) or not 0 <= value <= MAX_COUNT:
        raise FieldError(field, f"expected a non-negative integer, found {_json(value)}")
    return int(value)


def counts(value: Any, field: str, shape: tuple[int | None, ...]) -> np.ndarray:
    """``value`` as an int64 array of ``shape`` (None: any length) of non-negative integers; FieldError naming
    the first bad item (``field[i][j]``) or the field whose shape differs."""
    found = _array(value, field, shape, "non-negative integers")
    if found.dtype.kind in "iu":
        bad = (found < 0) | (found > MAX_COUNT)
    elif found.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(found) | (found != np.floor(found)) | (found < 0) | (found > MAX_COUNT)
    else:  # nulls, strings, bools or ints beyond 64 bits among the numbers
        bad = np.vectorize(lambda v: not _is_count(v), otypes=[bool])(found)
    _refuse(found, bad, field, "expected a non-negative integer")
    return found.astype(np.int64)


def numbers(value: Any, field: str, shape: tuple[int | None, ...], *, null: bool = False) -> np.ndarray:
    """``value`` as a float64 array of ``shape`` of finite numbers (with ``null``, JSON null, and NaN
    where a document was written without :func:`~imbstat.report.document.dumps`, read as NaN)."""
    found = _array(value, field, shape, "numbers")
    missing = lambda v: null and (v is None or (isinstance(v, float) and math.isnan(v)))  # noqa: E731
    if found.dtype.kind in "iuf":
        numeric = found.astype(np.float64)
        bad = ~np.isfinite(numeric) & ~(null & np.isnan(numeric))
    else:
        numeric = np.vectorize(lambda v: float(v) if _is_number(v) else math.nan, otypes=[np.float64])(found)
        bad = np.vectorize(lambda v: not (_is_number(v) or missing(v)), otypes=[bool])(found)
    _refuse(found, bad, field, "expected a finite number" + (" or null" if null else ""))
    return numeric


def _refuse(found: np.ndarray, bad: np.ndarray, field: str, expected: str) -> None:
    """FieldError naming the first item of ``found`` where ``bad`` is set, if any."""
    if bad.any():
        where = np.unravel_index(int(np.argmax(bad)), found.shape)
        item = found[where]
        item = item.item() if isinstance(item, np.generic) else item
        raise FieldError(field + "".join(f"[{i}]" for i in where), f"{expected}, found {_json(item)}")


def consistent(holds: bool, field: str, expected: str) -> None:
    """FieldError at ``field`` unless ``holds``: a total that its parts contradict."""
    if not holds:
        raise FieldError(field, expected)


def _array(value: Any, field: str, shape: tuple[int | None, ...], what: str) -> np.ndarray:
    dims = "×".join("N" if n is None else str(n) for n in shape)
    want = f"expected an array of {dims} {what}" if len(shape) > 1 else f"expected a list of {dims} {what}"
    if not isinstance(value, list):
        raise FieldError(field, f"{want}, found {_json(value)}")
    try:
        found = np.asarray(value) if value else np.zeros(tuple(n or 0 for n in shape))
    except (ValueError, TypeError, OverflowError):  # ragged rows, or ints beyond 64 bits
        found = np.asarray(value, object) if _flat(value) else None
        if found is None:
            raise FieldError(field, f"{want}, found rows of different lengths") from None
    if found.dtype.kind not in "iufO":  # strings or bools among numbers: item by item, to name the first bad one
        found = np.asarray(value, object)
    if found.ndim != len(shape) or any(n is not None and n != m for n, m in zip(shape, found.shape, strict=True)):
        raise FieldError(field, f"{want}, found {'×'.join(map(str, found.shape)) or 'a scalar'}")
    return found


def _flat(value: list) -> bool:
    return not any(isinstance(v, list | dict) for v in value)


def _is_count(v: Any) -> bool:
    try:
        count(v, "")
    except FieldError:
        return False
    return True


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _json(value: Any) -> str:
    """A value as its JSON text, short (what the user wrote, not a Python repr)."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "…"
