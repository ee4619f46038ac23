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
from imbstat.report.document import check_schema, dataset_section
from imbstat.sections import SECTIONS
from imbstat.stats.protocol import FieldError, consistent, count, numbers

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
        dataset, options = doc.get("dataset") or {}, doc.get("options") or {}
        check_dataset(dataset, source)
        if "classes" in results:
            check_classes(dataset, options, results["classes"], source)
        return cls(dict(dataset), dict(options), results)

    @classmethod
    def of(cls, computed: Any) -> Report:
        """The report of a computation (``Results``: its ``ds``, ``results`` and ``options``), without JSON."""
        results = {s.name: s.view(computed.results[s.name]) for s in SECTIONS if s.name in computed.results}
        return cls(dataset_section(computed.ds), dict(computed.options), results)


DATASET_COUNTS = ("images", "boxes", "crowd", "difficult", "group_of", "images_without_boxes")


def check_dataset(dataset: Any, source: str | Path | None, required: tuple[str, ...] = ()) -> None:
    """The ``dataset`` block of a report read back: each count in it (and each of ``required``) a
    non-negative integer, the flagged boxes and the images without boxes within their totals."""
    if not isinstance(dataset, dict):
        raise ImbstatError(f"expected an object, found {type(dataset).__name__}", source, "dataset")
    try:
        for key in required:
            if key not in dataset:
                raise FieldError(key, "expected a field of the report's dataset block, found none")
        found = {k: count(dataset[k], k) for k in DATASET_COUNTS if k in dataset}
        if "load_seconds" in dataset:
            numbers([dataset["load_seconds"]], "load_seconds", (1,))
        for part, total in (("crowd", "boxes"), ("difficult", "boxes"), ("group_of", "boxes"),
                            ("images_without_boxes", "images")):  # fmt: skip
            if part in found and total in found:
                consistent(found[part] <= found[total], part, f"expected at most {total} ({found[total]})")
        if isinstance(dataset.get("invalid"), dict):
            invalid = {k: count(v, f"invalid.{k}") for k, v in dataset["invalid"].items()}
            if "invalid_total" in dataset:
                total = count(dataset["invalid_total"], "invalid_total")
                consistent(total == sum(invalid.values()), "invalid_total", f"expected {sum(invalid.values())}, "
                           f"the sum of invalid, found {total}")  # fmt: skip
    except FieldError as e:
        raise e.at(source, "dataset") from None


def check_classes(dataset: dict[str, Any], options: Any, classes: Any, source: str | Path | None) -> None:
    """The dataset block against the classes section of the same report: the same images, and instances
    that are the boxes less those the options leave out (crowd, difficult, group-of: maybe overlapping)."""
    options = options if isinstance(options, dict) else {}
    if "images" in dataset and classes.num_images != dataset["images"]:
        raise ImbstatError(f"expected the images of dataset.images ({dataset['images']}), found "
                           f"{classes.num_images}", source, "classes.objects_per_image.counts")  # fmt: skip
    if not all(k in dataset for k in ("boxes", "crowd", "difficult", "group_of")):
        return
    kept = {"crowd": options.get("include_crowd", False), "difficult": options.get("include_difficult", False),
            "group_of": options.get("include_group_of", True)}  # fmt: skip
    left_out = [dataset[k] for k, keep in kept.items() if not keep]
    low, high = dataset["boxes"] - sum(left_out), dataset["boxes"] - max(left_out, default=0)
    instances = int(classes.instances.sum())
    if not low <= instances <= high:
        among = f"{low}" if low == high else f"between {low} and {high}"
        raise ImbstatError(f"expected {among} instances over the classes (dataset.boxes less the boxes the "
                           f"options leave out), found {instances}", source, "classes")  # fmt: skip


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
