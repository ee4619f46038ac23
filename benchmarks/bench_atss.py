"""Speed of the atss assigner against the sparse MaxIoU path, and what float32 moves (issue 12).

::

    python -m benchmarks.make_inputs --sizes val          # build the input once
    python -m benchmarks.bench_atss [--repeat 3] [--write]

(1) On the COCO-val-sized input, in one process (input loaded and kernels warmed up on 8 images
first, so numba and torch start-up are excluded), ``anchor_stats(ds, preset=P, method="sparse",
threads=1)`` for ``retinanet`` and ``atss`` in turn, and the labelling alone (``ground_truth``,
``batches``, the matcher); median of the repeats, per image. Target: atss within 3x of retinanet.
(2) On each ``../shared/data/coco/*.json``: the anchors whose label (background, or the GT it is
assigned to) differs between ``atss`` (float64) and ``atss`` with ``dtype = "float32"``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_dataset import _version, machine, write_results
from benchmarks.make_inputs import DEFAULT_OUT, SPECS, build

BEGIN, END = "<!-- bench_atss:begin -->", "<!-- bench_atss:end -->"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TARGET_RATIO = 3.0


def labelling(ds: Any, preset: Any) -> float:
    """Seconds to label every anchor of ``ds`` on one thread (no statistics)."""
    from imbstat.anchors.engine import batches, ground_truth, make_matcher

    start = time.perf_counter()
    matcher = make_matcher(preset)
    for batch in batches(ground_truth(ds, preset), preset):
        matcher(batch)
    return time.perf_counter() - start


def timings(ds: Any, presets: dict[str, Any], repeat: int) -> dict[str, dict[str, float]]:
    import imbstat

    for preset in presets.values():  # warm up: numba kernels (and torch for float32) loaded
        imbstat.anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=preset, method="sparse")
    runs: dict[str, dict[str, list[float]]] = {name: {"stats": [], "labels": []} for name in presets}
    for _ in range(repeat):  # interleaved: a busy spell of the shared machine hits both
        for name, preset in presets.items():
            start = time.perf_counter()
            imbstat.anchor_stats(ds, preset=preset, method="sparse", threads=1)
            runs[name]["stats"].append(time.perf_counter() - start)
            runs[name]["labels"].append(labelling(ds, preset))
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}


def labels(ds: Any, preset: Any) -> dict[tuple[int, int], int]:
    """(image row, anchor) -> dataset box row of its GT, for every foreground anchor."""
    from imbstat.anchors.engine import batches, ground_truth, make_matcher

    gt = ground_truth(ds, preset)
    matcher = make_matcher(preset)
    out = {}
    for batch in batches(gt, preset):
        m = matcher(batch)
        rows = gt.box[batch.gt_rows[m.fg_image, m.fg_gt]]
        out.update(zip(zip(batch.images[m.fg_image].tolist(), m.fg_anchor.tolist(), strict=True), rows.tolist(),
                       strict=True))  # fmt: skip
    return out


def float32_moves(path: Path) -> dict[str, Any]:
    import imbstat
    from imbstat.anchors.presets import PRESETS

    ds = imbstat.load(path, cache=False)
    f64 = labels(ds, PRESETS["atss"])
    f32 = labels(ds, dataclasses.replace(PRESETS["atss"], name="atss-float32", dtype="float32"))
    moved = {key for key in f64.keys() | f32.keys() if f64.get(key) != f32.get(key)}
    cat = ds.boxes.category

    def per_class(fg: dict) -> np.ndarray:
        return np.bincount(cat[list(fg.values())], minlength=len(ds.categories)) if fg else np.zeros(1)

    classes = int((per_class(f64) != per_class(f32)).sum())
    return {"images": ds.num_images, "fg64": len(f64), "fg32": len(f32), "moved": len(moved), "classes": classes}


def section(times: dict[str, dict[str, float]], images: int, moves: dict[str, dict[str, Any]], command: str) -> str:
    m = machine()
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    per = {name: {k: v / images * 1e3 for k, v in t.items()} for name, t in times.items()}
    ratio = per["atss"]["stats"] / per["retinanet"]["stats"]
    lines = [
        BEGIN,
        "## ATSS assigner vs the sparse MaxIoU path (`benchmarks/bench_atss.py`)",
        "",
        f"Measured {now} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}, "
        f"numpy {_version('numpy')}, numba {_version('numba')}, torch {_version('torch')}. "
        f"COCO-val-sized input ({images:,} images), one thread, kernels warmed up; median of the repeats.",
        "",
        "```sh",
        command,
        "```",
        "",
        '| preset | `anchor_stats(method="sparse", threads=1)` | per image | labelling alone | per image |',
        "|---|---:|---:|---:|---:|",
    ]
    for name, t in times.items():
        lines.append(f"| `{name}` | {t['stats']:.3f} s | {per[name]['stats']:.3f} ms | {t['labels']:.3f} s | "
                     f"{per[name]['labels']:.3f} ms |")  # fmt: skip
    verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
    lines += [
        "",
        f"Target: atss per image within {TARGET_RATIO:g}× of retinanet: **{ratio:.2f}×** ({verdict}).",
        "",
        'float32 (`base = "atss"`, `dtype = "float32"`) against float64 on `../shared/data` (foreground anchors;',
        "moved = anchors whose label, background or assigned GT, differs; classes = categories whose",
        "foreground count differs):",
        "",
        "| file | images | fg float64 | fg float32 | moved anchors | classes changed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in moves.items():
        lines.append(f"| {name} | {r['images']} | {r['fg64']:,} | {r['fg32']:,} | {r['moved']:,} | {r['classes']} |")
    return "\n".join([*lines, "", END])


def main(argv: list[str] | None = None) -> None:
    # numba's kernels throughout, so that the figures recorded compare the same compiled code (the kernels built at
    # install, one thread, are timed in bench_startup); IMBSTAT_KERNELS=aot set by the caller times those instead.
    os.environ.setdefault("IMBSTAT_KERNELS", "jit")
    import imbstat
    from imbstat.anchors.presets import PRESETS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    path = build("val", DATA / "coco", DEFAULT_OUT)
    ds = imbstat.load(path, cache=False)
    presets = {
        "retinanet": PRESETS["retinanet"],
        "atss": PRESETS["atss"],
        "atss float32": dataclasses.replace(PRESETS["atss"], name="atss-float32", dtype="float32"),
    }
    times = timings(ds, presets, args.repeat)
    moves = {p.name: float32_moves(p) for p in sorted((DATA / "coco").glob("*.json"))}
    text = section(times, ds.num_images, moves, "python -m benchmarks.bench_atss --write")
    print(text)
    assert SPECS["val"].output == path.name
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
