"""What the sampling stage (``--sampler``, issue 13 part 2) costs on top of the anchor statistics.

::

    python -m benchmarks.make_inputs --sizes train      # build the input once
    python -m benchmarks.bench_sampler [--repeat 3] [--write]

``anchor_stats`` on the COCO-train-sized input under the ``rpn`` preset with its sampler
(``random:256:0.5``) and without it (``sampler = ""``), one thread, in one process after a warm-up
call each, alternating in every round (and which goes first). CPU time of the process (``time.process_time``:
the machine is shared, and its load moves wall times by ±30 %); the fastest round is reported with the median
beside it. The sampler adds one weighted ``bincount`` per batch
(per-class expected positives) and a few per-image array operations in ``to_dict``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import sys
import time
from pathlib import Path

from benchmarks.bench_dataset import RESULTS, machine, write_results
from benchmarks.make_inputs import DEFAULT_OUT, SPECS

BEGIN, END = "<!-- bench_sampler:begin -->", "<!-- bench_sampler:end -->"


def timings(path: Path, repeat: int) -> dict:
    import numpy as np

    import imbstat
    from imbstat.anchors.presets import PRESETS

    with_sampler = PRESETS["rpn"]
    presets = {"with sampler": with_sampler, "without": dataclasses.replace(with_sampler, sampler="")}
    start = time.perf_counter()
    ds = imbstat.load(path)
    load_s = time.perf_counter() - start
    loads = [os.getloadavg()[0]]
    for preset in presets.values():  # warm-up: numba import, kernel cache load
        imbstat.anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=preset)
    seconds: dict[str, list[float]] = {name: [] for name in presets}
    for round_ in range(repeat):
        for name, preset in list(presets.items())[:: 1 if round_ % 2 else -1]:  # who goes first alternates too
            start = time.process_time()
            imbstat.anchor_stats(ds, preset=preset, threads=1).to_dict()  # to_dict: the sampled block's summary
            seconds[name].append(time.process_time() - start)
    loads.append(os.getloadavg()[0])
    sampled = imbstat.anchor_stats(ds, preset=with_sampler).to_dict()["sampled"]
    return {"images": ds.num_images, "boxes": len(ds.boxes), "load_s": load_s, "seconds": seconds, "loads": loads,
            "sampled": sampled}  # fmt: skip


def section(t: dict, input_name: str, command: str) -> str:
    m = machine()
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    best = {name: min(v) for name, v in t["seconds"].items()}
    median = {name: statistics.median(v) for name, v in t["seconds"].items()}
    s = t["sampled"]
    lines = [
        BEGIN,
        "## The sampling stage's cost (`benchmarks/bench_sampler.py`)",
        "",
        f"Measured {when} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}, "
        f"numpy {m['numpy']}. Input: {input_name} ({t['images']:,} images, {t['boxes']:,} boxes; loaded in "
        f"{t['load_s']:.1f} s), {len(t['seconds']['without'])} rounds, load average (1 min) "
        f"{t['loads'][0]:.1f} at the start, {t['loads'][1]:.1f} at the end (a shared machine).",
        "",
        "```sh",
        "python -m benchmarks.make_inputs --sizes train",
        command,
        "```",
        "",
        "| CPU time of `anchor_stats(ds, preset, threads=1).to_dict()`, preset `rpn` | fastest round | median |",
        "|---|---:|---:|",
        *(f"| {name} | {best[name]:.2f} s | {median[name]:.2f} s |" for name in t["seconds"]),
        f"| with / without | {best['with sampler'] / best['without']:.3f}× | "
        f"{median['with sampler'] / median['without']:.3f}× |",
        "",
        f"The sampled block on this input (`random:{s['num']}:{s['pos_fraction']}`): {s['positives']:,} positives, "
        f"{s['negatives']:,} negatives (fg:bg {s['fg_bg_ratio']:.3f}); "
        f"{s['images_short_of_positives']['images']:,} images "
        f"({s['images_short_of_positives']['share']:.1%}) have fewer positives than the quota.",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sampler", description=__doc__.split("\n")[0])
    parser.add_argument("--inputs", type=Path, default=DEFAULT_OUT, help=f"folder of the inputs ({DEFAULT_OUT})")
    parser.add_argument("--repeat", type=int, default=4, help="rounds (4)")
    parser.add_argument("--write", action="store_true", help=f"update this benchmark's section of {RESULTS}")
    args = parser.parse_args(argv)
    path = args.inputs / SPECS["train"].output
    if not path.is_file():
        sys.exit(f"bench_sampler: error: {path} not found; run python -m benchmarks.make_inputs --sizes train")
    command = "python -m benchmarks.bench_sampler" + (f" --repeat {args.repeat}" if args.repeat != 4 else "")
    text = section(timings(path, args.repeat), path.name, command + " --write")
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)
        print(f"\nwrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
