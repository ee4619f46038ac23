"""Join the JSON reports of the shards of one dataset into the report of the whole run.

Each shard is run with ``--shard I/N`` (a deterministic split of the images);
every statistic is rebuilt from its JSON fields, merged with its own
``merge`` (sums of counts and histograms) and written again, so the result
is the one a single run would have printed, scores included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from imbstat.analysis import DATASET_COUNTS, check_classes, check_dataset
from imbstat.errors import ImbstatError
from imbstat.report.document import check_schema, envelope
from imbstat.sections import BY_COMMAND, CLASSES, NESTED, SECTIONS

REPORT = "report"  # one JSON section per statistic; the other mergeable commands write one statistic's fields
MERGEABLE = (*BY_COMMAND, REPORT)  # the commands whose reports merge
_SAME = ("path", "format", "categories", "invalid", "invalid_total")


def read_documents(paths: Sequence[Path]) -> list[dict[str, Any]]:
    import json

    docs = []
    for path in paths:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except OSError as e:
            raise ImbstatError(f"cannot read report: {e.strerror}", path) from None
        except json.JSONDecodeError as e:
            raise ImbstatError(f"malformed JSON: {e.msg}", path, f"byte {e.pos}") from None
        if not isinstance(docs[-1], dict) or "imbstat_version" not in docs[-1]:
            raise ImbstatError("expected a JSON report written by imbstat --json or imbstat report", path)
        check_schema(docs[-1], path)
    return docs


def merge_documents(docs: Sequence[dict[str, Any]], paths: Sequence[Path | str] = ()) -> dict[str, Any]:
    """The report of the whole dataset from the reports of all its shards (any order)."""
    names = [str(p) for p in paths] or [f"report {i + 1}" for i in range(len(docs))]
    first = docs[0]
    command = first.get("command")
    if command not in MERGEABLE:
        raise ImbstatError(f"cannot merge '{command}' reports; expected one of {', '.join(MERGEABLE)}", names[0])
    _check_shards(docs, names)
    # not the first shard's raw counts (a one-statistic command's are at the top level): the merge writes its own
    merged: dict[str, Any] = {k: v for k, v in first.items() if k not in ("dataset", "raw")}
    merged["dataset"] = {k: v for k, v in first["dataset"].items() if k != "shard"}
    for key in DATASET_COUNTS:
        merged["dataset"][key] = sum(d["dataset"][key] for d in docs)
    merged["dataset"]["load_seconds"] = round(sum(d["dataset"]["load_seconds"] for d in docs), 4)
    if command == REPORT:
        for section in SECTIONS:
            if section.name in first:
                merged[section.name] = section.merge_json(_parts(docs, names, section.name), names)
    else:  # the statistic's fields at the top level
        merged |= BY_COMMAND[command].merge_json(list(docs), names, "")
        for section in NESTED:  # class-dist's remedies, under their own names
            if section.command == command and section.name in first:
                merged[section.name] = section.merge_json(_parts(docs, names, section.name), names)
    return envelope(command, merged)


def _parts(docs: Sequence[dict], names: Sequence[str], key: str) -> list[Any]:
    """Each shard's section ``key``; a shard without it is an error naming the shard."""
    for doc, name in zip(docs, names, strict=True):
        if key not in doc:
            raise ImbstatError(f"a report without a {key} section; expected the sections of the first report", name)
    return [d[key] for d in docs]


def _check_counts(doc: dict, name: str) -> None:
    """A shard's dataset block (every count a non-negative integer, parts within totals) and, where it has
    its classes, the classes against it: what merge sums must be counts, or the sums are wrong numbers."""
    check_dataset(doc["dataset"], name, required=(*DATASET_COUNTS, "load_seconds"))
    classes, prefix = (doc.get("classes"), "classes") if doc.get("command") == REPORT else (doc, "")
    if doc.get("command") in (REPORT, CLASSES.command) and isinstance(classes, dict):
        check_classes(doc["dataset"], doc.get("options"), CLASSES.parse(CLASSES.result_type, classes, name, prefix),
                      name, prefix)  # fmt: skip


def _check_shards(docs: Sequence[dict], names: Sequence[str]) -> None:
    """All shards of one run of one file: same command, options and dataset; I/N covering 0..N-1 once."""
    first = docs[0]
    seen: dict[int, str] = {}
    count = None
    for doc, name in zip(docs, names, strict=True):
        if not isinstance(doc.get("dataset"), dict):
            raise ImbstatError("a report without a dataset block; expected one written with --shard I/N", name)
        shard = doc["dataset"].get("shard")
        if shard is None:
            raise ImbstatError("not a shard's report; expected one written with --shard I/N", name)
        split = re.fullmatch(r"(\d+)/(\d+)", shard) if isinstance(shard, str) else None
        if split is None or not int(split[1]) < int(split[2]):
            raise ImbstatError(f"expected a shard I/N with 0 ≤ I < N, found {shard!r}", name, "dataset.shard")
        index, n = int(split[1]), int(split[2])
        if count is not None and n != count:
            raise ImbstatError(f"shard {shard} of another split; expected shards of {count}", name)
        count = n
        if index in seen:
            raise ImbstatError(f"shard {shard} given twice (also in {seen[index]})", name)
        seen[index] = name
        if doc.get("command") != first.get("command") or doc.get("options") != first.get("options"):
            raise ImbstatError("another command or other options than the first report", name)
        for key in _SAME:
            if doc["dataset"].get(key) != first["dataset"].get(key):
                raise ImbstatError(f"another dataset than the first report (dataset.{key} differs)", name)
        _check_counts(doc, name)
    missing = sorted(set(range(count or 0)) - set(seen))
    if missing:
        raise ImbstatError(f"shards {', '.join(f'{i}/{count}' for i in missing)} missing; expected all {count}")
