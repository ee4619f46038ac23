"""Keys given more than once in one JSON object, found by vectorised passes over the bytes.

JSON parsers (msgspec, json.load) keep the last value of a repeated key and say
nothing, so a COCO file with ``"annotations"`` twice loses its first array. Two
passes find the repeats of the keys that matter, with their byte offsets:

- a census (:class:`Census`, one pass over the quotes): counts the keys of each
  name; where a stretch holds no more keys of a name than the decoder found
  records holding it, none repeats. Most files are cleared by it alone.
- the exact scan (:func:`scan_keys`, about twice the decoder's time): the quotes that
  delimit strings (a quote after an odd run of backslashes is escaped), the brackets
  outside strings and their depth, and the strings followed by ``:`` whose text
  (unescaped) is a tracked name. It runs only over what the census cannot clear.

No Python code runs per byte or per key (but per key spelled with escapes).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from imbstat.data.json_scan import SPACES, Census, scan_keys


@dataclass(frozen=True)
class Repeat:
    """A key given again in one object: a root key (``index == -1``) or a key of a record of a root array."""

    array: str  # the root key: repeated itself, or holding the record's array
    index: int  # the record's index in that array (the arrays of a repeated root key count on), or -1
    key: str
    position: int  # byte offset of the repeat: a record key's opening quote, a root array's "["


def record_repeats(
    text: bytes, fields: Sequence[str], present: Sequence[int], array: str, first: int, offset: int
) -> list[Repeat]:
    """Repeats of ``fields`` in the objects of the JSON array ``text`` (``[{...},{...}]``, already decoded).

    ``present[j]``: how many of the objects hold ``fields[j]`` (as the decoder saw them).
    Record ``i`` is reported as ``array[first + i]``; ``text[p]`` is at byte ``offset + p`` of the file.
    """
    census = Census(text, list(fields), marked=0)
    if census.unique(0, len(text), np.arange(len(fields)), present):
        return []
    scan = scan_keys(text, list(fields), max_depth=2)
    at = scan.key_depth == 2
    record = scan.container(2)[at]
    return [
        Repeat(array, first + r, fields[n], offset + p)
        for r, n, p in _repeats(record, scan.key_name[at], scan.key_pos[at])
    ]


def document_repeats(
    raw: bytes, kinds: Mapping[str, Sequence[str]], present: Mapping[str, Sequence[int]]
) -> tuple[list[Repeat], list[tuple[str, int, int]] | None]:
    """Repeats of the root keys ``kinds`` and of their records' fields in the JSON document ``raw``.

    ``raw`` was decoded already: it is well-formed, each root key of ``kinds`` holds an
    array of objects, and ``present[kind][j]`` of them hold ``kinds[kind][j]``; the
    first field of each kind is required (its count is the number of records).
    Returns the repeats in file order and, where a root key repeats, every array of
    ``kinds`` as (key, offset of "[", offset of "]") in file order (else None).

    A census of the keys (see :class:`Census`) proves most files free of repeats;
    the exact scan runs only over the root arrays it cannot clear.
    """
    roots = list(kinds)
    names = roots + sorted({f for fields in kinds.values() for f in fields} - set(roots))
    census = Census(raw, names, marked=len(roots))
    if census.escaped:  # a key spelled with escapes may be any name, a root key among them
        return _exact_roots(raw, kinds)
    # the root keys (opening and closing quote): a name's only key is its root key; where a name is
    # a key more than once, the exact scan of the bytes up to its last one tells which is at the root
    hits = {key: census.hits[census.hit_name == k] for k, key in enumerate(roots)}
    starts = {key: (int(h[0, 0]), int(h[0, 1])) for key, h in hits.items() if len(h) == 1}
    ambiguous = [h[-1, 1] for h in hits.values() if len(h) > 1]
    if ambiguous:
        stop = SPACES.match(raw, int(max(ambiguous)) + 1).end() + 1  # past the last one's ":"
        found = _root_keys(raw[:stop], roots)
        if found is None:  # a root key repeats
            return _exact_roots(raw, kinds)
        closing = dict(census.hits.tolist())
        for key, h in hits.items():
            if len(h) and h[-1, 1] < stop:
                starts.pop(key, None)
                if key in found:
                    starts[key] = (found[key], closing[found[key]])
    return _document_from_roots(raw, kinds, present, census, starts)


def _root_keys(raw: bytes, roots: list[str]) -> dict[str, int] | None:
    """The opening quote of each root key named in ``roots`` in ``raw``, or None where one repeats."""
    scan = scan_keys(raw, roots, max_depth=1)
    at = scan.key_depth == 1
    names, opening = scan.key_name[at], scan.key_pos[at]
    if np.unique(names).size < names.size:
        return None
    return {roots[n]: o for n, o in zip(names.tolist(), opening.tolist(), strict=True)}


def _document_from_roots(
    raw: bytes,
    kinds: Mapping[str, Sequence[str]],
    present: Mapping[str, Sequence[int]],
    census: Census,
    starts: dict[str, tuple[int, int]],
) -> tuple[list[Repeat], list[tuple[str, int, int]] | None]:
    """:func:`document_repeats` once the root keys are known: the exact scan only where the census fails."""
    if any(present[key][0] and key not in starts for key in kinds):
        return _exact_roots(raw, kinds)
    names = census.names
    starts = {key: s for key, s in starts.items() if present[key][0]}
    cuts = sorted([*starts.values(), (len(raw), len(raw))])
    repeats = []
    for key, (lo, close) in starts.items():
        hi, end = cuts[cuts.index((lo, close)) + 1]  # the next root key: the array lies between
        field_names = np.asarray([names.index(f) for f in kinds[key]])
        if not census.unique(close, end, field_names, present[key]):
            part, _ = _exact_document(raw[lo:hi], {key: kinds[key]}, depth=1)
            repeats += [dataclasses.replace(r, position=r.position + lo) for r in part]
    return sorted(repeats, key=lambda r: r.position), None


def root_arrays(raw: bytes, kinds: Mapping[str, Sequence[str]]) -> list[tuple[str, int, int]] | None:
    """Where a root key of ``kinds`` repeats in the JSON document ``raw``, every root array of ``kinds``
    as in :func:`document_repeats` (else None), by the exact scan."""
    return _exact_roots(raw, kinds)[1]


def _exact_roots(
    raw: bytes, kinds: Mapping[str, Sequence[str]]
) -> tuple[list[Repeat], list[tuple[str, int, int]] | None]:
    """:func:`document_repeats` by the exact scan of the whole document."""
    repeats, arrays = _exact_document(raw, kinds)
    return repeats, (arrays if any(r.index < 0 for r in repeats) else None)


def _exact_document(
    raw: bytes, kinds: Mapping[str, Sequence[str]], depth: int = 0
) -> tuple[list[Repeat], list[tuple[str, int, int]] | None]:
    """:func:`document_repeats` by the exact scan, with every root array of ``kinds``.

    ``raw`` starts at ``depth``: 0 for a document, 1 for a stretch from a key of its root object.
    """
    roots = list(kinds)
    names = roots + sorted({f for fields in kinds.values() for f in fields} - set(roots))
    scan = scan_keys(raw, names, max_depth=3, depth=depth)
    repeats = []

    at = (scan.key_depth == 1) & (scan.key_name < len(roots))
    root_name, array_start = scan.key_name[at], scan.value_pos[at]
    closers = scan.bracket_pos[(scan.before == 2) & (scan.after == 1)]
    array_end = closers[np.searchsorted(closers, array_start)]
    rows = zip(root_name.tolist(), array_start.tolist(), array_end.tolist(), strict=True)
    arrays = [(roots[n], s, e) for n, s, e in rows]
    for n in range(len(roots)):
        repeats += [Repeat(roots[n], -1, roots[n], s) for s in array_start[root_name == n][1:].tolist()]

    # records: objects opened at depth 3 whose depth-2 container is a root array of kinds
    openers, values = scan.openers(3), scan.openers(2)
    parent = values[np.searchsorted(values, openers) - 1]  # [O] the depth-2 value holding each
    root = np.minimum(np.searchsorted(array_start, parent), max(len(array_start) - 1, 0))
    kind = np.full(openers.size, -1, np.int64)  # [O] index into roots, -1 outside them
    if array_start.size:
        inside = array_start[root] == parent
        kind[inside] = root_name[root[inside]]
    index = _rank_within(kind)  # [O] the record's index among those of its kind, in file order
    allowed = np.zeros((len(roots) + 1, len(names)), bool)  # [kind, name]: a field of that kind (row -1: none)
    for k, fields in enumerate(kinds.values()):
        allowed[k, [names.index(f) for f in fields]] = True

    at = scan.key_depth == 3
    record, name, pos = scan.container(3)[at], scan.key_name[at], scan.key_pos[at]
    keep = record >= 0
    keep[keep] = allowed[kind[record[keep]], name[keep]]
    for r, n, p in _repeats(record[keep], name[keep], pos[keep]):
        repeats.append(Repeat(roots[kind[r]], int(index[r]), names[n], p))
    repeats.sort(key=lambda r: r.position)
    return repeats, arrays


def _repeats(record: np.ndarray, name: np.ndarray, pos: np.ndarray) -> list[tuple[int, int, int]]:
    """(record, name, position) of each key after the first of its name in its record."""
    order = np.lexsort((pos, name, record))
    record, name, pos = record[order], name[order], pos[order]
    again = np.flatnonzero((record[1:] == record[:-1]) & (name[1:] == name[:-1])) + 1
    return list(zip(record[again].tolist(), name[again].tolist(), pos[again].tolist(), strict=True))


def _rank_within(group: np.ndarray) -> np.ndarray:
    """[N] how many earlier rows share each row's group."""
    order = np.argsort(group, kind="stable")
    sorted_group = group[order]
    start = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    first = np.repeat(start, np.diff(np.r_[start, group.size]))
    rank = np.empty(group.size, np.int64)
    rank[order] = np.arange(group.size) - first
    return rank
