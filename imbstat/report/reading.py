"""A whole analysis as result objects, from a saved ``report.json``, a report document or a computation.

:class:`Report` is what ``compare``, the audit metrics, the taxonomy table and the
HTML page read: the document's ``dataset`` and ``options`` blocks and one result
object per section (:meth:`~imbstat.sections.spec.Section.read`), so that a
missing or renamed field fails where the report is read, naming it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbstat.errors import ImbstatError
from imbstat.report.document import dataset_section
from imbstat.sections import SECTIONS

REPORT_COMMAND = "report"
PEEK_BYTES = 65536  # a saved report names imbstat_version in its first lines; a COCO file does not


@dataclass(frozen=True)
class Report:
    """The statistics of one dataset as result objects: ``results`` maps each section present to its result.

    A section's result is what :meth:`Section.read` gives (``AnchorSummary`` for anchors: a
    report holds their sums, not every count); an optional section not computed is absent.
    """

    dataset: dict[str, Any]  # the document's "dataset" block: path, format, counts, invalid, ...
    options: dict[str, Any]  # the document's "options" block
    results: dict[str, Any]  # section name -> result, in report order

    @classmethod
    def from_document(cls, doc: Any, source: str | Path | None = None) -> Report:
        """A report (or summary) document read back; ImbstatError for a missing section or field."""
        if not isinstance(doc, dict):
            raise ImbstatError("not a JSON object; expected an imbstat report document", source)
        missing = [s.name for s in SECTIONS if not s.optional and not isinstance(doc.get(s.name), dict)]
        if missing:
            raise ImbstatError(f"a report without a {', '.join(missing)} section; expected an imbstat report", source)
        results = {s.name: s.read(doc[s.name], source) for s in SECTIONS if doc.get(s.name) is not None}
        return cls(dict(doc.get("dataset") or {}), dict(doc.get("options") or {}), results)

    @classmethod
    def of(cls, computed: Any) -> Report:
        """The report of a computation (``Results``: its ``ds``, ``results`` and ``options``), without JSON."""
        results = {s.name: s.view(computed.results[s.name]) for s in SECTIONS if s.name in computed.results}
        return cls(dataset_section(computed.ds), dict(computed.options), results)


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
    return doc
