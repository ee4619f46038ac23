"""Start-up of a small run: the whole ``imbstat anchor-iou`` process against a bare JSON load of the same file.

    python -m benchmarks.make_inputs --sizes startup     # benchmarks/inputs/coco_1500.json
    python -m benchmarks.bench_startup [--path FILE ...] [--repeat N] [--write]

Ceiling (issue 21): ``imbstat anchor-iou`` on a 1,500-image COCO file, as a whole process, at most
12× a bare ``python -c "import numpy, json; json.load(open(F))"`` of the same file. Units of this
machine, not seconds, so that the figure holds on any machine. PATH defaults to ``coco_1500.json``
(the val mini replicated 19 times: 1,501 images) and the val mini itself. Every figure is a fresh
Python child; the variants run in turns, round after round, so that the load of a shared machine
falls on all of them alike; the median wall time and the median CPU time (user + system) of the
child are reported, with the cores that other processes used meanwhile. Children run with Python's
bytecode cache allowed (``PYTHONDONTWRITEBYTECODE`` unset, one warm-up run each: numba's cache
filled), as an installed imbstat runs. hyperfine is not installed; this is its median of repeated runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

from benchmarks.harness import Others, measured_on, run_process, verdict, write_results

BEGIN, END = "<!-- bench_startup:begin -->", "<!-- bench_startup:end -->"
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATHS = (ROOT / "benchmarks" / "inputs" / "coco_1500.json",
                 ROOT.parent / "shared" / "data" / "coco" / "coco2017_val_mini.json")  # fmt: skip
CEILING = 12.0  # the whole anchor-iou run, in units of a bare JSON load of the same file
IMPORTS = ("numpy", "msgspec", "rich", "typer", "pandas", "scipy.linalg", "ot", "numba", "matplotlib.pyplot",
           "pycocotools.coco", "torch", "imbstat", "imbstat.cli")  # fmt: skip


def _cli(path: Path) -> list[str]:
    """Python arguments that run ``imbstat anchor-iou PATH --quiet --json /dev/null``."""
    return ["-m", "imbstat", "anchor-iou", str(path), "--quiet", "--json", os.devnull]


def _bare(path: Path) -> list[str]:
    """Python arguments of the ceiling's unit: numpy imported and the file parsed by the standard library."""
    return ["-c", f"import numpy, json; json.load(open({str(path)!r}))"]


def variants(path: Path) -> list[tuple[str, list[str]]]:
    """(label, python arguments) of each whole-process run."""
    return [
        ("`python -c pass` (the interpreter alone)", ["-c", "pass"]),
        ('`python -c "import numpy, json; json.load(open(PATH))"` (the ceiling\'s unit)', _bare(path)),
        ("**`imbstat anchor-iou PATH --quiet --json /dev/null`**", _cli(path)),
    ]


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # bytecode cached, as for an installed imbstat
    return env


def once(args: list[str]) -> tuple[float, float, float]:
    """Wall and CPU seconds of one ``python ARGS`` child, and the cores other processes used meanwhile."""
    watch = Others()
    done = run_process([sys.executable, *args], env=_env())  # exits with its stderr if it fails
    return done.wall, done.cpu, watch.cores()


def timed(runs: list[list[str]], repeat: int) -> list[dict[str, float]]:
    """Median wall and CPU seconds of each list of python arguments, run in turns ``repeat`` times after one
    warm-up each, and the cores other processes used meanwhile."""
    for args in runs:
        once(args)  # bytecode written, numba's cache filled
    samples: list[list[tuple[float, float, float]]] = [[] for _ in runs]
    for _ in range(repeat):
        for got, args in zip(samples, runs, strict=True):
            got.append(once(args))
    return [{key: statistics.median(s[i] for s in got) for i, key in enumerate(("wall", "cpu", "others"))}
            for got in samples]  # fmt: skip


def labelling(path: Path, repeat: int) -> dict[str, float]:
    """Load and ``anchor_stats`` alone in one warm child (kernels and imports loaded by a first call)."""
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
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True).stdout
    load, label, scores, images, boxes = out.split()
    return {"load": float(load), "label": float(label), "scores": float(scores), "images": int(images),
            "boxes": int(boxes)}  # fmt: skip


def measure(path: Path, repeat: int) -> dict:
    runs = variants(path)
    whole = timed([args for _, args in runs], repeat)
    for (label, _), r in zip(runs, whole, strict=True):
        print(f"{r['wall']:7.3f} s wall {r['cpu']:7.3f} s CPU  {label}  [{path.name}]", flush=True)
    return {"path": path, "whole": [(label, r) for (label, _), r in zip(runs, whole, strict=True)],
            "work": labelling(path, repeat)}  # fmt: skip


def _table(m: dict) -> list[str]:
    work = m["work"]
    _, bare, run = (r for _, r in m["whole"])
    return [
        f"PATH = `{m['path'].name}` ({work['images']:,} images, {work['boxes']:,} boxes):",
        "",
        "| whole process | wall | CPU | other processes (cores) |",
        "|---|---:|---:|---:|",
        *(f"| {label} | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['others']:.2f} |" for label, r in m["whole"]),
        "",
        f"The run is {run['wall'] / bare['wall']:.1f}× the bare load (wall; CPU {run['cpu'] / bare['cpu']:.1f}×). "
        f"In one warm process: `imbstat.load(PATH)` {work['load']:.3f} s; `anchor_stats` (labelling and "
        f"statistics, numba's kernels) {work['label']:.3f} s; its scores (four exact 2-D W1 solves) "
        f"{work['scores']:.3f} s.",
    ]


def section(measured: list[dict], imports: list[tuple[str, dict]], repeat: int, command: str) -> str:
    issue = measured[0]
    _, bare, run = (r for _, r in issue["whole"])
    ratio = run["wall"] / bare["wall"]
    lines = [
        BEGIN,
        "## Start-up of a small run (`benchmarks/bench_startup.py`)",
        "",
        measured_on("numpy", "imbstat") + ".",
        "",
        "```sh",
        command,
        "```",
        "",
        f"Each row: a fresh Python child, median of {repeat} runs taken in turns: wall time, CPU time (user +",
        "system of the child) and the cores other processes used meanwhile (wall times grow with the load of",
        "a shared machine, CPU times much less). Bytecode and numba's cache warm, as installed and used.",
        "",
    ]
    for m_ in measured:
        lines += [*_table(m_), ""]
    lines += [
        "| `python -c 'import X'` (the interpreter's own start included) | wall | CPU | other processes (cores) |",
        "|---|---:|---:|---:|",
        *(f"| `{name}` | {r['wall']:.3f} s | {r['cpu']:.3f} s | {r['others']:.2f} |" for name, r in imports),
        "",
        "### Ceiling",
        "",
        "| ceiling | measured | result |",
        "|---|---:|---|",
        f"| whole `anchor-iou` run on `{issue['path'].name}` ≤ {CEILING:.0f}× a bare "
        f"`import numpy, json; json.load` of the file (wall) | {ratio:.1f}× ({run['wall']:.3f} s against "
        f"{bare['wall']:.3f} s) | {verdict(ratio <= CEILING)} |",
        END,
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_startup", description=__doc__.split("\n")[0])
    parser.add_argument("--path", type=Path, action="append",
                        help="a COCO file, repeatable; the first is the target's (default: "
                        + ", ".join(p.name for p in DEFAULT_PATHS) + ")")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=7, help="fresh children per row (median; default 7)")
    parser.add_argument("--write", action="store_true", help="update this benchmark's section of RESULTS.md")
    args = parser.parse_args(argv)
    paths = args.path or list(DEFAULT_PATHS)
    for path in paths:
        if not path.is_file():
            sys.exit(f"bench_startup: error: {path} not found; python -m benchmarks.make_inputs --sizes startup, "
                     "or pass --path FILE (a COCO JSON)")  # fmt: skip
    measured = [measure(path, args.repeat) for path in paths]
    imports = list(zip(IMPORTS, timed([["-c", f"import {name}"] for name in IMPORTS], args.repeat), strict=True))
    for name, r in imports:
        print(f"{r['wall']:7.3f} s wall {r['cpu']:7.3f} s CPU  import {name}", flush=True)
    command = "python -m benchmarks.bench_startup" + (f" --repeat {args.repeat}" if args.repeat != 7 else "")
    text = section(measured, imports, args.repeat, command + " --write")
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
