"""Speed and peak memory of ``imbstat eval`` against a plain pycocotools script and a bare faster-coco-eval script.

::

    python -m benchmarks.bench_eval [--factor 64] [--per-gt 7.5] [--repeat 3] [--write] [--skip-pycocotools]

Inputs (written under /tmp/imbstat_bench_eval only): the GT is ``coco2017_val_mini.json`` replicated
``factor`` times as ``make_inputs`` replicates it (64: 5,056 images, 39,936 boxes); the detections are
built from it, ``per-gt`` per GT on average (7.5: ~300k): jittered copies of the GTs (some with another
class) with random scores, and false positives at random places, as a COCO results list.

Each contender runs as a fresh process (whole process: interpreter start, imports, reading both files,
the evaluation), alternating contender by contender in each round; the figure is the median wall time
of the rounds and the peak RSS (``ru_maxrss`` of the child). Targets (issue 22): imbstat ≤ 0.25× the
pycocotools script and ≤ 1.3× the bare faster-coco-eval script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.harness import measured_on, write_results
from benchmarks.make_inputs import DEFAULT_DATA, replicate

OUT = Path("/tmp/imbstat_bench_eval")
BEGIN, END = "<!-- bench_eval:begin -->", "<!-- bench_eval:end -->"

PYCOCOTOOLS = """
import sys
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
gt = COCO(sys.argv[1])
ev = COCOeval(gt, gt.loadRes(sys.argv[2]), "bbox")
ev.evaluate(); ev.accumulate(); ev.summarize()
"""
FASTER = """
import sys
from faster_coco_eval import COCO, COCOeval_faster
gt = COCO(sys.argv[1])
ev = COCOeval_faster(gt, gt.loadRes(sys.argv[2]), "bbox")
ev.evaluate(); ev.accumulate(); ev.summarize()
"""


def build_inputs(factor: int, per_gt: float, seed: int = 0) -> tuple[Path, Path, int, int]:
    """The GT file and the detections file under :data:`OUT`; (gt, dets, images, detections)."""
    OUT.mkdir(parents=True, exist_ok=True)
    gt = OUT / f"gt_x{factor}.json"
    dets = OUT / f"dets_x{factor}_{per_gt:g}.json"
    if not gt.is_file():
        replicate(DEFAULT_DATA / "coco2017_val_mini.json", factor, gt)
    doc = json.loads(gt.read_bytes())
    if not dets.is_file():
        rng = np.random.default_rng(seed)
        boxes = np.asarray([a["bbox"] for a in doc["annotations"]], np.float64)
        image = np.asarray([a["image_id"] for a in doc["annotations"]])
        cats = np.asarray([a["category_id"] for a in doc["annotations"]])
        all_cats = np.asarray([c["id"] for c in doc["categories"]])
        n = len(boxes)
        jittered = int(n * per_gt * 2 / 3)  # two thirds near a GT, one third anywhere
        src = rng.integers(0, n, jittered)
        wh = boxes[src, 2:]
        xywh = boxes[src] + rng.normal(0, 0.1, (jittered, 4)) * np.column_stack([wh, wh])
        xywh[:, 2:] = np.maximum(xywh[:, 2:], 1.0)
        cat = np.where(rng.random(jittered) < 0.1, rng.choice(all_cats, jittered), cats[src])
        fp = int(n * per_gt) - jittered
        fp_xywh = np.column_stack([rng.uniform(0, 500, (fp, 2)), rng.uniform(4, 200, (fp, 2))])
        det_image = np.concatenate([image[src], rng.choice(np.unique(image), fp)])
        det_cat = np.concatenate([cat, rng.choice(all_cats, fp)])
        det_box = np.concatenate([xywh, fp_xywh]).round(2)
        score = rng.random(len(det_box)).round(5)
        items = [{"image_id": int(i), "category_id": int(c), "bbox": b, "score": float(s)}
                 for i, c, b, s in zip(det_image, det_cat, det_box.tolist(), score, strict=True)]  # fmt: skip
        dets.write_text(json.dumps(items))
    return gt, dets, len(doc["images"]), int(sum(1 for _ in json.loads(dets.read_bytes())))


def run_child(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB) of one fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)  # this child's own rusage: its peak RSS
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"exit {child.returncode}: {' '.join(argv[:4])} ...")
    return seconds, usage.ru_maxrss / 1024  # kB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--factor", type=int, default=64, help="copies of the val mini (64: 5,056 images)")
    parser.add_argument("--per-gt", type=float, default=7.5, help="detections per GT box (7.5: ~300k)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; contenders alternate within a round")
    parser.add_argument("--skip-pycocotools", action="store_true", help="leave out the (slow) pycocotools script")
    parser.add_argument("--write", action="store_true", help="update this benchmark's section of RESULTS.md")
    args = parser.parse_args(argv)
    gt, dets, images, n_dets = build_inputs(args.factor, args.per_gt)
    contenders = {
        "imbstat eval": [sys.executable, "-m", "imbstat", "eval", str(gt), str(dets), "--json", str(OUT / "e.json")],
        "faster-coco-eval script": [sys.executable, "-c", FASTER, str(gt), str(dets)],
    }
    if not args.skip_pycocotools:
        contenders["pycocotools script"] = [sys.executable, "-c", PYCOCOTOOLS, str(gt), str(dets)]
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    for r in range(args.repeat):
        for name, command in contenders.items():
            runs[name].append(run_child(command))
            print(f"round {r + 1} {name}: {runs[name][-1][0]:.2f} s, {runs[name][-1][1]:.0f} MiB", flush=True)
    median = {name: statistics.median(t for t, _ in rs) for name, rs in runs.items()}
    rss = {name: max(m for _, m in rs) for name, rs in runs.items()}
    ours = median["imbstat eval"]
    rows = ["| contender | median wall s | all rounds s | peak RSS MiB | imbstat / it |", "|---|---:|---|---:|---:|"]
    for name in contenders:
        rounds = ", ".join(f"{t:.2f}" for t, _ in runs[name])
        rows.append(f"| {name} | {median[name]:.2f} | {rounds} | {rss[name]:.0f} | {ours / median[name]:.2f} |")
    command = "python -m benchmarks.bench_eval " + " ".join(argv if argv is not None else sys.argv[1:])
    text = "\n".join([
        BEGIN,
        "## bench_eval: imbstat eval against pycocotools and faster-coco-eval (issue 22)",
        "",
        measured_on() + "; the machine was shared with other engineers' jobs while it ran, so the times are noisy.",
        "",
        f"Command: `{command.strip()}`. Input: {images:,} images ({gt.name}), {n_dets:,} detections; whole "
        f"processes, {args.repeat} rounds alternating the contenders, peak RSS of the child.",
        "",
        *rows,
        "",
        "Targets: imbstat ≤ 0.25× the pycocotools script, ≤ 1.3× the bare faster-coco-eval script.",
        END,
    ])  # fmt: skip
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
