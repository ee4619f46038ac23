"""Several presets side by side (``--preset A --preset B``): their keys, unique and usable as folder names.

A run may label the same dataset under several presets; each result is then
named by a key in the JSON (``key``, ``more_presets``), the terminal table's
columns and the ``--out`` folders. A preset's key is its name with every
character other than ``A-Z a-z 0-9 . _ -`` replaced by ``_`` (``preset`` for a
name of dots only or empty), so that it is one plain folder name; a key taken by
an earlier preset of the run gets the first of ``-2``, ``-3``, … that is neither
taken nor the key of another preset of the run (two TOML files both named
``mine``: ``mine``, ``mine-2``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _folder_name(name: str) -> str:
    safe = _UNSAFE.sub("_", name)
    return safe if safe.strip(".") else "preset"


def preset_keys(names: Sequence[str]) -> list[str]:
    """One key per preset name, in order (module docstring): unique, each a plain folder name."""
    wanted = [_folder_name(n) for n in names]
    reserved = set(wanted)  # a later preset's own name is never given to a repeat
    keys: list[str] = []
    for name in wanted:
        key, n = name, 1
        while key in keys or (n > 1 and key in reserved):
            n += 1
            key = f"{name}-{n}"
        keys.append(key)
    return keys


def keyed(result: Any) -> list[tuple[str, Any]]:
    """(key, result) of every preset of a side-by-side result (``more_presets``), the first preset first."""
    results = [result, *result.more_presets]
    return list(zip(preset_keys([r.preset.name for r in results]), results, strict=True))


def side_by_side_dict(result: Any, own: Callable[[Any], dict]) -> dict:
    """What a side-by-side result adds to its first preset's section ``own(result)``: ``key`` and
    ``more_presets`` (each further preset's ``own`` section, its ``key`` first); nothing for one preset."""
    if not result.more_presets:
        return {}
    (first, _), *more = keyed(result)
    return {"key": first, "more_presets": [{"key": key, **own(r)} for key, r in more]}
