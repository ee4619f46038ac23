"""A whole analysis of one dataset: every section of the registry computed once, in one process or on Dask.

>>> results = imbstat.compute(ds, anchors=imbstat.AnchorOptions(preset="rpn"))
>>> results.classes.scores["gini"], results.anchors.totals

Rendering (the JSON report, CSV tables, figures, terminal tables) is
:mod:`imbstat.report.build`'s.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from imbstat.data import Dataset, LoadOptions, load
from imbstat.errors import ImbstatError
from imbstat.sections import SECTIONS, wanted
from imbstat.sections.spec import Run, Section

__all__ = ["Results", "compute", "compute_distributed", "dask_client"]


@dataclass(frozen=True)
class Results:
    """The statistics of one dataset: ``results`` maps a section's name to its result, in report order.

    Each result is also an attribute (``results.classes``); an optional section
    that was not computed (``anchors`` without anchor options) reads as None.
    ``options`` is the report's ``options`` block.
    """

    ds: Dataset
    results: dict[str, Any]
    options: dict[str, Any] = field(default_factory=dict)

    def __getattr__(self, name: str) -> Any:
        if name in _NAMES:
            return self.__dict__.get("results", {}).get(name)
        raise AttributeError(name)

    def computed(self) -> list[tuple[Section, Any]]:
        """(section, result) of every section computed, in report order."""
        return [(s, self.results[s.name]) for s in SECTIONS if s.name in self.results]


_NAMES = frozenset(s.name for s in SECTIONS)


def compute(ds: Dataset, *, run: Run | None = None, **fields: Any) -> Results:
    """Compute every section of ``ds`` that ``run`` asks for: all but the optional ones, and those it sets.

    ``run`` (:class:`~imbstat.sections.spec.Run`), with any of its fields given as keywords taking
    precedence: ``box_filter=``, ``anchors=`` (:class:`~imbstat.AnchorOptions`, or True for the
    defaults), ``progress=``.
    """
    run = dataclasses.replace(run or Run(), **fields)
    results = {s.name: s.compute(ds, run) for s in wanted(run.optional_sections())}
    return Results(ds, results, run.report_options())


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
    found = merged | whole
    return Results(ds, {s.name: found[s.name] for s in SECTIONS if s.name in found}, run.report_options())
