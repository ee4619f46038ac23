"""Reading a saved ``report.json`` back: :func:`read_report` tells a saved report from a dataset by its
first bytes and checks its schema; :meth:`imbstat.Results.from_document` reads its sections into result
objects.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from imbstat.errors import ImbstatError
from imbstat.report.document import check_schema

REPORT_COMMAND = "report"
PEEK_BYTES = 65536  # a saved report names imbstat_version in its first lines; a COCO file does not


def read_report(path: str | Path) -> dict[str, Any] | None:
    """The saved report document at ``path``, or None when ``path`` is not one (a dataset to load).

    A saved report is a ``.json`` file naming ``"imbstat_version"`` in its first
    :data:`PEEK_BYTES` bytes (where ``imbstat report`` and ``imbstat demo`` write
    it first); a COCO file has no such key, so the rest of it is never read here.
    Raises :class:`ImbstatError` for an imbstat document of another command.
    """
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return None
    try:
        with path.open("rb") as f:
            head = f.read(PEEK_BYTES)
        if not re.search(rb'"imbstat_version"\s*:', head):
            return None
        doc = json.loads(path.read_bytes())
    except OSError as e:
        raise ImbstatError(f"cannot read: {e.strerror}", path) from None
    except ValueError as e:
        raise ImbstatError(f"not valid JSON: {e}", path) from None
    except RecursionError:
        raise ImbstatError("JSON nested too deeply; expected an imbstat report document", path) from None
    if not isinstance(doc, dict) or doc.get("command") != REPORT_COMMAND:
        command = doc.get("command") if isinstance(doc, dict) else None
        raise ImbstatError(
            f"an imbstat {command!r} document, not a report; compare takes a dataset "
            "or the report.json of 'imbstat report' or 'imbstat demo'",
            path,
        )
    check_schema(doc, path)
    return doc
