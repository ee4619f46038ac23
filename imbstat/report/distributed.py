"""Compute a report shard by shard on a Dask cluster and merge the results on the client.

Each task loads the source on its worker (from the Parquet cache, which the
client writes first: workers must see the same filesystem), keeps shard
``i`` of ``N`` and returns its result objects; the client merges them with
each result's ``merge``, which gives exactly the single-process Results.
"""

from __future__ import annotations

from typing import Any

from imbstat.anchors.presets import Preset
from imbstat.data import BoxFilter, Dataset, load
from imbstat.errors import ImbstatError
from imbstat.report.build import Results, compute, compute_options
from imbstat.report.sections import SECTIONS


def dask_client(spec: str) -> Any:
    """``local:N`` starts N worker processes on this machine; anything else is a scheduler address."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise ImbstatError("--dask needs Dask: pip install 'imbstat[dask]'") from None

    if spec.startswith("local:"):
        workers = int(spec.removeprefix("local:"))
        # loopback only, no dashboard: a local cluster serves this process alone
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address="127.0.0.1:0"
        )
        return Client(cluster)
    return Client(spec)


def _shard_results(index: int, path: str, shards: int, load_kwargs: dict, compute_kwargs: dict) -> dict[str, Any]:
    """Section name -> result of shard ``index`` (the sections computed)."""
    ds = load(path, **load_kwargs).take_shard(index, shards)
    return compute(ds, **compute_kwargs).results


def compute_distributed(
    ds: Dataset,
    client: Any,
    shards: int,
    load_kwargs: dict[str, Any],
    box_filter: BoxFilter = BoxFilter(),
    anchors: bool = False,
    preset: str | Preset = "retinanet",
    device: str = "cpu",
    method: str = "auto",
    batch_size: int = 32,
    *,
    repeat_factor: float | None = None,
    class_balanced: float | None = None,
) -> Results:
    """:func:`build.compute` of ``ds`` (loaded from ``ds.path`` with ``load_kwargs``), one task per shard."""
    # threads=1: a worker is one slot of the cluster; the cores are the other workers'.
    kwargs = {"box_filter": box_filter, "anchors": anchors, "preset": preset, "device": device, "method": method,
              "batch_size": batch_size, "threads": 1, "repeat_factor": repeat_factor,
              "class_balanced": class_balanced}  # fmt: skip
    futures = client.map(_shard_results, range(shards), path=ds.path, shards=shards, load_kwargs=load_kwargs,
                         compute_kwargs=kwargs, pure=False)  # fmt: skip
    parts = client.gather(futures)  # in shard order
    merged = {s.name: s.merge_results([p[s.name] for p in parts], ds, shards) for s in SECTIONS if s.name in parts[0]}
    options = compute_options(box_filter, anchors, preset, device, method, repeat_factor, class_balanced)
    return Results(ds, merged, options)
