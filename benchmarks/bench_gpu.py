"""The dense anchor path on a GPU: images/s of the anchor phase on the COCO-train-sized input.

Target: >= 50,000 images/s for the anchor phase on one H100, with results identical to the
sparse CPU path. Needs an NVIDIA GPU and a CUDA build of torch (triton for the fused path);
``--device cpu --images 64`` is a dry run of this script anywhere. On a CUDA machine, from the
repository root::

    python -m benchmarks.make_inputs --sizes train      # the input, from coco2017_train_mini.json
    python -m pytest -q -m cuda tests                    # the CUDA paths against the sparse path
    python -m benchmarks.bench_gpu --write               # measure, and update benchmarks/RESULTS.md

``benchmarks/gpu_check.sh`` runs these steps in one go, also on a machine without network
access (see its header). ``--section-to FILE`` writes the RESULTS.md section to a file instead,
and ``--insert FILE`` puts such a file in place.

Times exclude the load. "Anchor phase" = every batch labelled by a dense matcher, torch
``dense`` and, where Triton is there, ``fused`` (anchors on the device, GT upload, IoU,
max/argmax, low-quality pass, labels back to the host), after a warm-up batch;
``anchor_stats`` adds the statistics. The sparse CPU path runs on the same machine, and
each GPU result is compared with it field by field.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import verdict, write_results

BEGIN, END = "<!-- bench_gpu:begin -->", "<!-- bench_gpu:end -->"
INPUT = Path(__file__).resolve().parent / "inputs" / "coco_train_sized.json"
TARGET_IMAGES_PER_S = 50_000


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure(path: Path, device: str, batch_sizes: list[int], memory_mb: float, images: int | None) -> dict:
    import torch

    import imbstat
    from imbstat.anchors.engine import batches, ground_truth, make_matcher
    from imbstat.anchors.presets import load_preset
    from imbstat.stats.anchors import anchor_stats

    ds = imbstat.load(path, cache=False)
    if images is not None:
        ds = ds.select_images(np.arange(ds.num_images) < images)
    preset = load_preset("retinanet")
    out: dict = {"input": path.name, "images": ds.num_images, "boxes": len(ds.boxes), "device": device}
    out["memory_mb"] = memory_mb
    cuda = device.startswith("cuda")
    out["device_name"] = torch.cuda.get_device_name(device) if cuda else platform.processor() or "CPU"
    start = time.perf_counter()
    gt = ground_truth(ds, preset)
    out["ground_truth_s"] = time.perf_counter() - start

    methods = ["dense"]
    if device.startswith("cuda"):
        try:
            import triton  # noqa: F401

            methods.append("fused")
        except ImportError:
            pass
    out["phase"] = {}
    for method in methods:
        matcher = make_matcher(preset, device, method, memory_mb)
        for size in batch_sizes:
            first = next(batches(gt, preset, size))
            matcher(first)  # warm-up: CUDA context, kernels (Triton compiles here), the allocator's pool
            _synchronize(device)
            start = time.perf_counter()
            labelled = 0
            for batch in batches(gt, preset, size):
                labelled += len(matcher(batch).fg_iou)  # the labels are back on the host: synchronised
            _synchronize(device)
            seconds = time.perf_counter() - start
            rate = ds.num_images / seconds
            out["phase"][f"{method}, batch {size}"] = {"seconds": seconds, "images_per_s": rate, "foreground": labelled}
            print(f"{method}, batch {size}: {seconds:.2f} s, {rate:,.0f} images/s", file=sys.stderr, flush=True)

    anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=preset, method="sparse")  # numba's cache load
    start = time.perf_counter()
    sparse = anchor_stats(ds, preset=preset, method="sparse")
    out["anchor_stats_sparse_s"] = time.perf_counter() - start
    expected = sparse.raw_dict()
    out["stats"] = {}
    for method in methods:
        phases = {k: v for k, v in out["phase"].items() if k.startswith(method + ",")}
        best = max(phases, key=lambda k: phases[k]["images_per_s"])
        size = int(best.rsplit(" ", 1)[1])
        start = time.perf_counter()
        result = anchor_stats(ds, preset=preset, device=device, method=method, batch_size=size, memory_mb=memory_mb)
        _synchronize(device)
        got = result.raw_dict()
        out["stats"][method] = {
            "batch_size": size,
            "seconds": time.perf_counter() - start,
            "differing_fields": [k for k in got if got[k] != expected[k]],
        }
    out["totals"] = sparse.totals
    return out


def section(r: dict) -> str:
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    best = max(r["phase"], key=lambda k: r["phase"][k]["images_per_s"])
    rate = r["phase"][best]["images_per_s"]
    identical = all(not s["differing_fields"] for s in r["stats"].values())
    result = verdict(rate >= TARGET_IMAGES_PER_S and identical)
    rows = [f"| anchor phase, {k} | {p['seconds']:.2f} s | {p['images_per_s']:,.0f} |" for k, p in r["phase"].items()]
    for method, s in r["stats"].items():
        same = "identical to sparse" if not s["differing_fields"] else "DIFFERS: " + ", ".join(s["differing_fields"])
        rows.append(
            f'| `anchor_stats(method="{method}", batch_size={s["batch_size"]})`, statistics included ({same}) | '
            f"{s['seconds']:.2f} s | {r['images'] / s['seconds']:,.0f} |"
        )
    return "\n".join([
        BEGIN,
        "## Dense anchor path on a GPU (`benchmarks/bench_gpu.py`)",
        "",
        f"Measured {when} on {r['device_name']} (`--device {r['device']}`, `--memory-mb {r['memory_mb']:g}`); "
        f"Python {platform.python_version()}, numpy {np.__version__}. Input: {r['images']:,} images, "
        f"{r['boxes']:,} boxes (`{r['input']}`); preset `retinanet`. Load and `ground_truth` "
        f"({r['ground_truth_s']:.2f} s) excluded. `fused` = the Triton reductions of `imbstat/anchors/fused.py`.",
        "",
        "| measurement | time | images/s |",
        "|---|---:|---:|",
        *rows,
        f"| `anchor_stats(method=\"sparse\")` on this machine's CPU | {r['anchor_stats_sparse_s']:.2f} s | "
        f"{r['images'] / r['anchor_stats_sparse_s']:,.0f} |",
        "",
        f"Target: ≥ {TARGET_IMAGES_PER_S:,} images/s for the anchor phase with identical results — best {best}: "
        f"{rate:,.0f}: {result}.",
        END,
    ])  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_gpu", description=__doc__.split("\n")[0])
    parser.add_argument("--input", type=Path, default=INPUT)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-sizes", default="32,128,512", help="comma list")
    parser.add_argument("--memory-mb", type=float, default=4096)
    parser.add_argument("--images", type=int, help="only the first N images (a dry run)")
    parser.add_argument("--section-to", type=Path, help="write the RESULTS.md section to this file")
    parser.add_argument("--insert", type=Path, help="put a section written by --section-to into RESULTS.md, and stop")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    if args.insert:
        write_results(args.insert.read_text(), begin=BEGIN, end=END)
        return
    if not args.input.exists():
        sys.exit(f"{args.input} is missing: python -m benchmarks.make_inputs --sizes train")
    sizes = [int(s) for s in args.batch_sizes.split(",")]
    result = measure(args.input, args.device, sizes, args.memory_mb, args.images)
    print(json.dumps(result, default=str))
    text = section(result)
    print(text)
    if args.section_to:
        args.section_to.write_text(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
