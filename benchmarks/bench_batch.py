"""Speed and memory of the batch-level simulation (``batch_distribution``) on a COCO-train-sized dataset.

::

    python -m benchmarks.bench_batch [--data DIR] [--repeat N] [--write]

The input is built in memory the way ``make_inputs --sizes train`` builds its file: the 80 images of
``coco2017_train_mini.json`` repeated 1,500 times (120,000 images, 1,108,500 boxes; train2017 has
118,287 / 860,001), loaded once; the parse is not what is measured here. Each row runs in a fresh
``python -c`` child: the time is ``time.perf_counter`` around ``batch_distribution`` (median of the
repeats), and the memory is its peak of traced allocations (``tracemalloc``, which numpy reports its
arrays to) in a separate, untimed call: what the simulation allocates on top of the loaded dataset.

Target (the project's issue 13): B = 16, 10 epochs in seconds (here: ≤ 10 s for each sampler), and
memory independent of the number of epochs (the 1- and 40-epoch rows allocate the same peak).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from benchmarks.harness import measured_on, run_process, write_results
from benchmarks.make_inputs import DEFAULT_DATA, SPECS

BEGIN, END = "<!-- bench_batch:begin -->", "<!-- bench_batch:end -->"
TARGET_SECONDS = 10.0
BATCH_SIZE = 16
CASES = (  # (sampler, epochs)
    ("random", 10),
    ("aspect-group", 10),
    ("repeat-factor:0.001", 10),
    ("random", 1),
    ("random", 40),
)

CHILD = """
import dataclasses, json, sys, time, tracemalloc
import numpy as np
import imbstat
from imbstat.stats import batch_distribution

path, copies, sampler, epochs, batch, trace = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), \\
    int(sys.argv[5]), sys.argv[6] == "1"
mini = imbstat.load(path, cache=False)
n = mini.num_images
tile = lambda a: np.concatenate([a] * copies)
images = dataclasses.replace(mini.images, image_id=np.arange(n * copies), file_name=tile(mini.images.file_name),
                             width=tile(mini.images.width), height=tile(mini.images.height),
                             size_known=tile(mini.images.size_known))
offset = np.repeat(np.arange(copies) * n, len(mini.boxes))
b = mini.boxes
boxes = dataclasses.replace(b, image=tile(b.image) + offset, category=tile(b.category),
                            xyxy=np.tile(b.xyxy, (copies, 1)), iscrowd=tile(b.iscrowd),
                            difficult=tile(b.difficult), group_of=tile(b.group_of))
ds = dataclasses.replace(mini, images=images, boxes=boxes)
if trace:
    tracemalloc.start()
    batch_distribution(ds, batch_size=batch, sampler=sampler, epochs=epochs)
    out = {"peak_bytes": tracemalloc.get_traced_memory()[1]}
else:
    t = time.perf_counter()
    r = batch_distribution(ds, batch_size=batch, sampler=sampler, epochs=epochs)
    out = {"seconds": time.perf_counter() - t, "images": ds.num_images, "boxes": len(ds.boxes),
           "full_batches": r.full_batches}
print(json.dumps(out))
"""


def run_child(path: Path, copies: int, sampler: str, epochs: int, trace: bool) -> dict:
    args = [str(path), str(copies), sampler, str(epochs), str(BATCH_SIZE), "1" if trace else "0"]
    done = run_process([sys.executable, "-c", CHILD, *args], check=False)
    if done.returncode != 0:
        sys.exit(f"bench_batch: child failed ({sampler}, {epochs} epochs):\n{done.stderr}")
    return done.json()


def measure(path: Path, copies: int, repeat: int) -> list[dict]:
    rows = []
    for sampler, epochs in CASES:
        print(f"  {sampler}, {epochs} epochs", file=sys.stderr, flush=True)
        timed = [run_child(path, copies, sampler, epochs, trace=False) for _ in range(repeat)]
        peak = run_child(path, copies, sampler, epochs, trace=True)["peak_bytes"]
        seconds = statistics.median(t["seconds"] for t in timed)
        rows.append(timed[0] | {"sampler": sampler, "epochs": epochs, "seconds": seconds, "peak_bytes": peak})
    return rows


def section(rows: list[dict], command: str, load: float) -> str:
    table = ["| sampler | epochs | full batches | time | time / epoch | peak allocated |"]
    table.append("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        table.append(f"| `{r['sampler']}` | {r['epochs']} | {r['full_batches']:,} | {r['seconds']:.2f} s | "
                     f"{r['seconds'] / r['epochs']:.3f} s | {r['peak_bytes'] / 1e6:.0f} MB |")  # fmt: skip
    main = [r for r in rows if r["epochs"] == 10]
    slowest = max(r["seconds"] for r in main)
    peaks = [r["peak_bytes"] for r in rows if r["sampler"] == "random"]
    flat = max(peaks) <= 1.05 * min(peaks)
    return "\n".join(
        [
            BEGIN,
            "## Batch-level simulation (`benchmarks/bench_batch.py`)",
            "",
            measured_on("numpy") + f"; load average {load:.1f} when it began (the CPUs are shared). `{command}`",
            "",
            f"Input: COCO-train-sized, {rows[0]['images']:,} images and {rows[0]['boxes']:,} boxes (the train mini "
            f"×1,500, in memory); `batch_distribution(ds, batch_size={BATCH_SIZE}, sampler=..., epochs=...)`. Time: "
            "median of the repeats, each a fresh child; peak allocated: `tracemalloc` peak of the call (numpy "
            "arrays included), the dataset not counted. MB = 10⁶ bytes.",
            "",
            *table,
            "",
            "| target | measured | result |",
            "|---|---:|---|",
            f"| B = 16, 10 epochs, every sampler: ≤ {TARGET_SECONDS:.0f} s | {slowest:.2f} s | "
            f"{'PASS' if slowest <= TARGET_SECONDS else 'FAIL'} |",
            f"| memory independent of the epochs (random: 1, 10, 40 epochs within 5 %) | "
            f"{min(peaks) / 1e6:.0f}–{max(peaks) / 1e6:.0f} MB | {'PASS' if flat else 'FAIL'} |",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of the mini files ({DEFAULT_DATA})")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="write the results into benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    spec = SPECS["train"]
    load = os.getloadavg()[0]
    rows = measure(args.data / spec.source, spec.factor, args.repeat)
    text = section(rows, "python -m benchmarks.bench_batch" + (" --write" if args.write else ""), load)
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
