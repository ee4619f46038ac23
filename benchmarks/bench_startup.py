"""Start-up of a small run: the whole ``imbstat anchor-iou`` process and the imports it pays for.

    python -m benchmarks.bench_startup [--path FILE] [--repeat N] [--write]

Target (issue 12): ``imbstat anchor-iou`` on ../shared/data/coco/coco2017_val_mini.json, as a whole
process, under 0.6 s (it was 1.7 s, labelling 0.06 s of it). Every figure is a fresh Python child,
repeated; the median wall time and the median CPU time (user + system) of the child are reported,
with the cores that other processes used meanwhile (the machine is shared: wall times grow with
them, CPU times much less). Variants of the whole run put back, one at a time, what the default
run no longer loads: the whole POT package, pandas, torch (the run loads numba: the sparse path's kernels).
hyperfine is not installed; this is its median of repeated runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.bench_anchors import Others
from benchmarks.bench_dataset import machine, write_results

BEGIN, END = "<!-- bench_startup:begin -->", "<!-- bench_startup:end -->"
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco" / "coco2017_val_mini.json"
TARGET_SECONDS = 0.6
IMPORTS = ("numpy", "msgspec", "rich", "typer", "pandas", "scipy.linalg", "ot", "numba", "matplotlib.pyplot",
           "pycocotools.coco", "torch", "imbstat", "imbstat.cli")  # fmt: skip


def _cli(prelude: str, path: Path) -> str:
    """Python code that runs ``imbstat anchor-iou PATH --quiet --json /dev/null`` after ``prelude``."""
    args = ["anchor-iou", str(path), "--quiet", "--json", os.devnull]
    return f"{prelude}\nfrom imbstat.cli import app\napp({args!r}, prog_name='imbstat')"


def variants(path: Path) -> list[tuple[str, list[str]]]:
    """(label, python arguments) of each whole-process run."""
    return [
        ("`python -c pass` (the interpreter alone)", ["-c", "pass"]),
        ("**`imbstat anchor-iou PATH --quiet --json /dev/null`** (today's default)",
         ["-m", "imbstat", "anchor-iou", str(path), "--quiet", "--json", os.devnull]),
        ("the same with the whole POT package (`import ot`) first", ["-c", _cli("import ot", path)]),
        ("the same with `import pandas` first", ["-c", _cli("import pandas", path)]),
        ("the same with `import ot, pandas, torch` first (what a run loaded before issue 12)",
         ["-c", _cli("import ot, pandas, torch", path)]),
    ]  # fmt: skip


def timed(args: list[str], repeat: int) -> dict[str, float]:
    """Median wall and CPU seconds of ``python ARGS`` over ``repeat`` fresh children, and the others' cores."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "MPLBACKEND": "Agg"}
    walls, cpus, others = [], [], []
    for _ in range(repeat):
        watch, before = Others(), resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        others.append(watch.cores())
        if done.returncode:
            sys.exit(f"bench_startup: error: python {' '.join(args)[:200]} failed:\n{done.stderr[-2000:]}")
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "others": statistics.median(others)}


def labelling(path: Path, repeat: int) -> dict[str, float]:
    """Load and ``anchor_stats`` alone, in one warm child (kernels and imports loaded by a first call)."""
    code = (
        "import sys, time, statistics, imbstat\n"
        f"t = time.perf_counter(); ds = imbstat.load({str(path)!r}); load = time.perf_counter() - t\n"
        "imbstat.anchor_stats(ds)\n"
        "runs = []\n"
        f"for _ in range({repeat}):\n"
        "    t = time.perf_counter(); imbstat.anchor_stats(ds); runs.append(time.perf_counter() - t)\n"
        "solves = []\n"
        f"for _ in range({repeat}):  # the four 2-D W1 solves of a fresh result (a cached property)\n"
        "    s = imbstat.anchor_stats(ds); t = time.perf_counter(); s.scores; solves.append(time.perf_counter() - t)\n"
        "print(load, statistics.median(runs), statistics.median(solves), ds.num_images, len(ds.boxes.image))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    load, label, scores, images, boxes = out.split()
    return {"load": float(load), "label": float(label), "scores": float(scores), "images": int(images),
            "boxes": int(boxes)}  # fmt: skip


def section(path: Path, whole: list[tuple[str, dict]], imports: list[tuple[str, dict]], work: dict, repeat: int,
            command: str) -> str:  # fmt: skip
    m = machine()
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    floor = whole[0][1]
    default = whole[1][1]
    numpy = dict(imports)["numpy"]
    lines = [
        BEGIN,
        "## Start-up of a small run (`benchmarks/bench_startup.py`)",
        "",
        f"Measured {when} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}, "
        f"numpy {m['numpy']}, imbstat {m['imbstat']}.",
        "",
        "```sh",
        command,
        "```",
        "",
        f"PATH = `{path.name}` ({work['images']:,} images, {work['boxes']:,} boxes). Each row: a fresh Python",
        f"child, median of {repeat} runs: wall time, CPU time (user + system of the child) and the cores other",
        "processes used meanwhile (the machine is shared by several jobs; wall times grow with that",
        "load, CPU times much less).",
        "",
        "| whole process | wall | CPU | other processes (cores) |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['others']:.2f} |" for label, r in whole),
        "",
        f"In one warm process: `imbstat.load(PATH)` {work['load']:.3f} s, `anchor_stats` (labelling and statistics) "
        f"{work['label']:.3f} s, its scores (four exact 2-D W1 solves, in threads) {work['scores']:.3f} s.",
        "",
        "| `python -c 'import X'` (the interpreter's own start included) | wall | CPU | other processes (cores) |",
        "|---|---:|---:|---:|",
        *(f"| `{name}` | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['others']:.2f} |" for name, r in imports),
        "",
        "### Target",
        "",
        "| target | measured | result |",
        "|---|---:|---|",
        f"| whole `anchor-iou` run on PATH < {TARGET_SECONDS} s (wall) | {default['wall']:.3f} s "
        f"(CPU {default['cpu']:.3f} s; interpreter alone {floor['wall']:.3f} s) | "
        f"{'PASS' if default['wall'] < TARGET_SECONDS else 'FAIL'} |",
        "",
        f"The run in units of this machine's start-up (carries over to a faster machine): "
        f"{default['wall'] / floor['wall']:.1f}× the interpreter alone, "
        f"{default['wall'] / numpy['wall']:.1f}× `python -c 'import numpy'` (wall; CPU "
        f"{default['cpu'] / floor['cpu']:.1f}× and {default['cpu'] / numpy['cpu']:.1f}×).",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, default=DEFAULT_PATH, help=f"a COCO file ({DEFAULT_PATH.name})")
    parser.add_argument("--repeat", type=int, default=7, help="fresh children per row (median; default 7)")
    parser.add_argument("--write", action="store_true", help="update this benchmark's section of RESULTS.md")
    args = parser.parse_args(argv)
    if not args.path.is_file():
        sys.exit(f"bench_startup: error: {args.path} not found; pass --path FILE (a COCO JSON)")
    work = labelling(args.path, args.repeat)
    whole = []
    for label, python_args in variants(args.path):
        whole.append((label, timed(python_args, args.repeat)))
        print(f"{whole[-1][1]['wall']:7.3f} s wall {whole[-1][1]['cpu']:7.3f} s CPU  {label}", flush=True)
    imports = []
    for name in IMPORTS:
        imports.append((name, timed(["-c", f"import {name}"], args.repeat)))
        print(f"{imports[-1][1]['wall']:7.3f} s wall {imports[-1][1]['cpu']:7.3f} s CPU  import {name}", flush=True)
    command = "python -m benchmarks.bench_startup" + (f" --repeat {args.repeat}" if args.repeat != 7 else "")
    text = section(args.path, whole, imports, work, args.repeat, command + " --write")
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
