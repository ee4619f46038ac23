"""A whole analysis of one dataset: every section of the registry computed once, in one process or on Dask,
or read back from a saved report; :class:`Results` holds either.

>>> results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="rpn"))
>>> results.classes.scores["gini"], results.anchors.totals
>>> saved = imbstat.Results.from_document(json.load(open("report.json")), "report.json")

Rendering (the JSON report, CSV tables, figures, terminal tables) is
:mod:`imbstat.report.build`'s; reading a ``report.json`` file is :mod:`imbstat.report.reading`'s.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from imbstat.data import Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.sections import BY_NAME, SECTIONS, wanted
from imbstat.sections.spec import Run, Section
from imbstat.stats.protocol import FieldError, consistent, count, numbers

__all__ = ["Results", "check_classes", "check_dataset", "compute", "compute_distributed", "dask_client"]


@dataclass(frozen=True)
class Results:
    """The statistics of one dataset: ``results`` maps a section's name to its result, in report order.

    Either a computation (:func:`compute`: ``ds`` is the dataset, each result the section's
    ``result_type``) or a saved report read back (:meth:`from_document`: ``ds`` is None, each
    result what :meth:`Section.read` gives, ``AnchorSummary`` for anchors: a report holds their
    sums, not every count). Each result is also an attribute (``results.classes``); an optional
    section that was not computed (``anchors`` without anchor options) reads as None.
    ``options`` is the report's ``options`` block and ``dataset`` its ``dataset`` block (path,
    format, counts, invalid, ...; of a computation, ``ds.description()``). ``views`` is what
    ``compare``, the audit metrics, the taxonomy and the HTML page read, the same for both.
    """

    ds: Dataset | None
    results: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = None  # type: ignore[assignment]  # derived from ds when not given

    def __post_init__(self) -> None:
        if self.dataset is None:
            object.__setattr__(self, "dataset", self.ds.description() if self.ds is not None else {})

    def __getattr__(self, name: str) -> Any:
        if name in BY_NAME:
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(name)

    def computed(self) -> list[tuple[Section, Any]]:
        """(section, result) of every section computed, in report order."""
        return [(s, self.results[s.name]) for s in SECTIONS if s.name in self.results]

    @cached_property
    def views(self) -> dict[str, Any]:
        """Section name -> its result as a report holds it (:meth:`Section.view`: ``AnchorSummary`` for the
        anchors of a computation), in report order: what a computation and a report read back share."""
        return {s.name: s.view(r) for s, r in self.computed()}

    @classmethod
    def from_document(cls, doc: Any, source: str | Path | None = None) -> Results:
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
        return cls(None, results, dict(options), dict(dataset))


def compute(ds: Dataset, *, run: Run | None = None, **fields: Any) -> Results:
    """Compute every section of ``ds`` that ``run`` asks for: all but the optional ones, and those it sets.

    ``run`` (:class:`~imbstat.sections.spec.Run`), with any of its fields given as keywords taking
    precedence: ``box_filter=``, ``anchors=`` (:class:`~imbstat.AnchorOptions`, or True for the
    defaults), ``progress=``.
    """
    run = dataclasses.replace(run or Run(), **fields)
    results = {s.name: s.compute(ds, run) for s in wanted(run.optional_sections())}
    return Results(ds, _joined(results), run.report_options())


def _joined(results: dict[str, Any]) -> dict[str, Any]:
    """The results with the eval section given the anchors section's per-class statistics, where both are
    computed (``report --detections --anchors``): AP against the anchors of each class."""
    if "eval" in results and "anchors" in results:
        results["eval"] = results["eval"].with_anchors(results["anchors"])
    return results


def dask_client(spec: str) -> Any:
    """``local:N`` starts N worker processes on this machine; anything else is a scheduler address."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImbstatError("--dask needs Dask: pip install 'imbstat[dask]'") from None

    if spec.startswith("local:"):
        workers = _local_workers(spec)
        # loopback only, no dashboard: a local cluster serves this process alone
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        return Client(cluster)
    try:
        return Client(spec, timeout=SCHEDULER_TIMEOUT_S)
    except (OSError, TimeoutError, ValueError, TypeError) as e:  # unreachable, refused, or not an address
        reason = " ".join(str(e).split()) or type(e).__name__
        raise ImbstatError(f"--dask {spec!r}: no Dask scheduler there ({reason}); expected local:N or a reachable "
                           "scheduler address, e.g. tcp://host:8786") from None  # fmt: skip


# Dask tasks of one run at most (--shards): each loads the file's cache; more shards than this only add overhead.
MAX_SHARDS = 10_000
# Seconds to wait for a scheduler; distributed's own default (30 s).
SCHEDULER_TIMEOUT_S = 30
# Worker processes of local:N: one per core is the useful most; a few times that still starts in seconds.
MAX_LOCAL_WORKERS_PER_CORE = 4


def check_dask_spec(spec: str) -> None:
    """ImbstatError for a ``local:N`` whose N is not 1 to 4 × the cores: before a long load."""
    if spec.startswith("local:"):
        _local_workers(spec)


def _local_workers(spec: str) -> int:
    """N of ``local:N``: 1 to 4 × the cores (a LocalCluster of 0 workers waits for ever; 10,000 would fork bomb)."""
    most = MAX_LOCAL_WORKERS_PER_CORE * (os.cpu_count() or 1)
    text = spec.removeprefix("local:")
    if not (text.isascii() and text.isdigit() and len(text) < 10 and 1 <= int(text) <= most):
        raise ImbstatError(f"--dask {spec!r}: expected local:N with N from 1 to {most} (4 per core)")
    return int(text)


def _shard_results(index: int, path: str, shards: int, options: LoadOptions, run: Run) -> dict[str, Any]:
    """Section name -> result of shard ``index`` (the sections computed that shards can compute)."""
    ds = load(path, options=options).take_shard(index, shards)
    return {s.name: s.compute(ds, run) for s in wanted(run.optional_sections()) if s.shardable}


def compute_distributed(
    ds: Dataset, client: Any, shards: int, options: LoadOptions, *, run: Run | None = None, **fields: Any
) -> Results:
    """:func:`compute` of ``ds`` with one Dask task per shard; the client merges the results of the shards.

    Each task loads ``ds.path`` with ``options`` on its worker (from the Parquet cache, which the
    caller writes first: workers must see the same filesystem), keeps shard ``i`` of ``shards`` and
    returns its result objects; each section's ``merge`` gives exactly the single-process Results.
    """
    if not 1 <= shards <= MAX_SHARDS:
        raise ImbstatError(f"--shards {shards}: expected 1 to {MAX_SHARDS:,}")
    run = dataclasses.replace(run or Run(), **{**fields, "progress": None})  # the client's callback: not on workers
    if run.anchors:  # threads=1: a worker is one slot of the cluster; the cores are the other workers'
        one_thread = [dataclasses.replace(a, threads=1) for a in (run.anchors, *run.more_anchors)]
        run = dataclasses.replace(run, anchors=one_thread[0], more_anchors=tuple(one_thread[1:]))
    futures = client.map(_shard_results, range(shards), path=ds.path, shards=shards, options=options, run=run,
                         pure=False)  # fmt: skip
    parts = client.gather(futures)  # in shard order
    merged = {s.name: s.merge_results([p[s.name] for p in parts], ds, shards) for s in SECTIONS if s.name in parts[0]}
    whole = {s.name: s.compute(ds, run) for s in wanted(run.optional_sections()) if not s.shardable}  # here
    found = _joined(merged | whole)
    return Results(ds, {s.name: found[s.name] for s in SECTIONS if s.name in found}, run.report_options())


# --- the checks of a report read back (merge's of each shard too) --------------------------------------------------

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


def check_classes(
    dataset: dict[str, Any], options: Any, classes: Any, source: str | Path | None, prefix: str = "classes"
) -> None:
    """The dataset block against the classes section of the same report: the same images, and instances
    that are the boxes less those the options leave out (crowd, difficult, group-of: maybe overlapping).
    ``prefix``: where the classes' fields stand in the document ("classes" in a report, "" at the top level
    of a ``class-dist`` document), for the field an error names."""
    options = options if isinstance(options, dict) else {}
    at = f"{prefix}." if prefix else ""
    if "images" in dataset and classes.num_images != dataset["images"]:
        raise ImbstatError(f"expected the images of dataset.images ({dataset['images']}), found "
                           f"{classes.num_images}", source, f"{at}objects_per_image.counts")  # fmt: skip
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
                           f"options leave out), found {instances}", source, prefix or "classes")  # fmt: skip
