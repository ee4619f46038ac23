"""The versioned JSON report: the contract for CI jobs and scripts (README, "JSON output")."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from imbstat.data import Dataset
from imbstat.errors import ImbstatError
from imbstat.stats.histogram import plain
from imbstat.version import __version__

# Bumped only when a field changes meaning or goes away; new fields may appear in any version.
SCHEMA_VERSION = 1


def check_schema(doc: dict[str, Any], source: str | Path | None) -> None:
    """ImbstatError unless ``doc`` is of the schema this version reads (:data:`SCHEMA_VERSION`): fields
    of another schema may mean other things, so its numbers are not taken as this one's."""
    found = doc.get("schema_version")
    if found != SCHEMA_VERSION or isinstance(found, bool):
        shown = "none" if found is None else json.dumps(found)[:40]
        raise ImbstatError(
            f"expected schema_version {SCHEMA_VERSION} (imbstat {__version__} reads that one), found {shown}",
            source,
            "schema_version",
        )


# The head of every JSON document imbstat writes, in this order (README, "JSON output").
HEAD = ("imbstat_version", "schema_version", "command")


def envelope(command: str, body: dict[str, Any]) -> dict[str, Any]:
    """The one place a JSON document is assembled: the head (:data:`HEAD`), then ``body``.

    A ``body`` key named like a head field is replaced by the head's value, so a
    document read back (a shard's report, a baseline) is written with this
    version's head.
    """
    head = {"imbstat_version": __version__, "schema_version": SCHEMA_VERSION, "command": command}
    return head | {k: v for k, v in body.items() if k not in head}


def document(command: str, ds: Dataset, body: dict[str, Any], options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The document of a command that read a dataset: the head, ``dataset``, ``options``, then ``body``."""
    return envelope(command, {"dataset": ds.description(), "options": options or {}, **body})


def _plain(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays as Python values, NaN and infinity as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    value = plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_float(value: Any) -> float:
    """A number read back from a document: null (how :func:`dumps` writes NaN and infinity) is NaN."""
    return math.nan if value is None else float(value)


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(_plain(doc), indent=2, allow_nan=False) + "\n"


def write_text(text: str, target: str | Path, what: str = "the report") -> None:
    """Write ``text`` to the file ``target`` (its folder made), or to stdout when it is ``-``."""
    if str(target) == "-":
        sys.stdout.write(text)
        return
    try:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        Path(target).write_text(text)
    except OSError as e:
        raise ImbstatError(f"cannot write {what}: {e.strerror}", target) from None


def write_json(doc: dict[str, Any], target: str | Path) -> None:
    """Write ``doc`` to the file ``target``, or to stdout when it is ``-``."""
    write_text(dumps(doc), target, "the JSON report")
