"""Speed and memory of loading a COCO file and computing the three dataset statistics.

::

    python -m benchmarks.make_inputs                      # build the inputs once
    python -m benchmarks.bench_dataset [--sizes val,train] [--repeat N] [--write]

Every measurement runs in a fresh ``python -c`` child, so its peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``, read at the end of the child) is that of the interpreter,
its imports and the measured work alone. Times are ``time.perf_counter`` around the work, after
the imports; the CLI row is the wall time of the whole ``imbstat class-dist`` process, start-up
included, with its peak RSS from ``os.wait4``. Timings are the median over repeats, RSS the maximum.

Targets (the project's issue): on the COCO-val-sized input, ``imbstat.load`` ≤ 2× the time of
``orjson.loads(path.read_bytes())``; on the COCO-train-sized input, load + the three statistics
≤ 30 s and peak RSS ≤ 3 GB. Issue 23, on the COCO-train-sized input: ``imbstat.load`` ≤ 0.3× ``orjson.loads``,
the whole ``imbstat class-dist PATH --no-cache`` process ≤ 0.35× a bare ``orjson.loads`` process (both
alternated with orjson in the same rounds), and the streamed read's MB/s (files over 1 GiB are streamed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks.make_inputs import DEFAULT_OUT, SPECS, built_as, parse_sizes

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
BEGIN, END = "<!-- bench_dataset:begin -->", "<!-- bench_dataset:end -->"
TARGET_LOAD_RATIO = 2.0  # imbstat.load / orjson.loads, COCO-val-sized
TARGET_TRAIN_SECONDS = 30.0  # load + class + scale + location, COCO-train-sized
TARGET_TRAIN_RSS_GB = 3.0  # peak RSS of that child, GB = 1e9 bytes
TARGET_TRAIN_LOAD_RATIO = 0.3  # issue 23: imbstat.load / orjson.loads, COCO-train-sized, alternated in one run
TARGET_CLI_RATIO = 0.35  # issue 23: the class-dist process / a bare orjson.loads process, same file

# The children: each prints one JSON object on its last line of stdout. ru_maxrss is in KiB on Linux.
_TAIL = "import resource; out['rss_kib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; print(json.dumps(out))\n"
CHILDREN: dict[str, str] = {
    "python": "import json, sys\nout = {}\n" + _TAIL,
    "import": "import json, sys\nimport imbstat\nout = {}\n" + _TAIL,
    "orjson": (
        "import json, sys, time\nfrom pathlib import Path\nimport orjson\n"
        "t = time.perf_counter(); doc = orjson.loads(Path(sys.argv[1]).read_bytes())\n"
        "out = {'orjson.loads': time.perf_counter() - t}\n" + _TAIL
    ),
    "load": (
        "import json, sys, time\nimport imbstat\n"
        "t = time.perf_counter(); ds = imbstat.load(sys.argv[1], cache=False)\n"
        "out = {'load': time.perf_counter() - t, 'images': len(ds.images), 'boxes': len(ds.boxes)}\n" + _TAIL
    ),
    # the streamed read (files over 1 GiB) forced on the same bytes, for its MB/s (issue 23)
    "stream": (
        "import json, sys, time\nfrom imbstat.data.coco import load_coco\n"
        "t = time.perf_counter(); ds = load_coco(sys.argv[1], stream=True)\n"
        "out = {'load': time.perf_counter() - t, 'boxes': len(ds.boxes)}\n" + _TAIL
    ),
    "stats": (
        "import json, sys, time\nimport imbstat\nout = {}\n"
        "t = time.perf_counter(); ds = imbstat.load(sys.argv[1], cache=False); out['load'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.class_distribution(ds); out['class'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.scale_distribution(ds); out['scale'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.location_distribution(ds); out['location'] = time.perf_counter() - t\n"
        "out['total'] = out['load'] + out['class'] + out['scale'] + out['location']\n" + _TAIL
    ),
}


@dataclass
class Runs:
    """All repeats of the measurements on one input: name -> list of values."""

    size: str
    path: Path
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, prefix: str, result: dict[str, float]) -> None:
        for key, value in result.items():
            self.values.setdefault(f"{prefix}:{key}", []).append(float(value))

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def peak(self, key: str) -> float:
        return max(self.values[key])


def run_child(mode: str, path: Path) -> dict[str, float]:
    """Run the child ``mode`` on ``path`` in a fresh interpreter and return its JSON result."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILDREN[mode], str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.exit(f"bench_dataset: child {mode!r} failed on {path}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def cli_command(path: Path) -> list[str]:
    """``imbstat class-dist PATH --json /dev/null``, with the console script beside this Python."""
    script = Path(sys.executable).parent / "imbstat"
    exe = [str(script)] if script.exists() else ([found] if (found := shutil.which("imbstat")) else None)
    return [*(exe or [sys.executable, "-m", "imbstat"]), "class-dist", str(path), "--json", os.devnull, "--no-cache"]


def bare_orjson_command(path: Path) -> list[str]:
    """The whole-process baseline of issue 23: ``python -c "import orjson; orjson.loads(open(PATH, 'rb').read())"``."""
    return [sys.executable, "-c", f"import orjson; orjson.loads(open({str(path)!r}, 'rb').read())"]


def run_cli(path: Path, command: Sequence[str] | None = None) -> dict[str, float]:
    """Wall time and peak RSS of the whole CLI process (``command``, by default ``cli_command(path)``)."""
    start = time.perf_counter()
    proc = subprocess.Popen(command or cli_command(path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if proc.returncode != 0:
        sys.exit(f"bench_dataset: the CLI failed on {path} (exit {proc.returncode}):\n{err}")
    return {"wall": wall, "rss_kib": usage.ru_maxrss}


def warm_cache(path: Path) -> None:
    """Read ``path`` once so that every measurement starts from the page cache."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


def measure(size: str, path: Path, repeat: int) -> Runs:
    """All measurements on one input, ``repeat`` rounds, the children interleaved within a round."""
    runs = Runs(size, path)
    warm_cache(path)
    runs.add("python", run_child("python", path))
    runs.add("import", run_child("import", path))
    for i in range(repeat):
        print(f"  {size}: round {i + 1}/{repeat}", file=sys.stderr, flush=True)
        for mode in ("orjson", "load", "stats", "stream"):
            runs.add(mode, run_child(mode, path))
        runs.add("cli", run_cli(path))
        runs.add("bare", run_cli(path, bare_orjson_command(path)))
    return runs


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _mb(kib: float) -> str:
    return f"{kib * 1024 / 1e6:,.0f} MB"


def describe_input(runs: Runs) -> str:
    record = built_as(runs.path) or {}
    mb = runs.path.stat().st_size / 1e6
    return (
        f"{record.get('images', 0):,} images, {record.get('annotations', 0):,} boxes, {mb:,.0f} MB "
        f"(×{record.get('factor', '?')} of {record.get('source', '?')})"
    )


def results_table(all_runs: Sequence[Runs]) -> str:
    """Markdown: one row per measurement, one column per input."""
    head = "| measurement | " + " | ".join(f"{r.size}-sized" for r in all_runs) + " |"
    rows = [head, "|---|" + "---:|" * len(all_runs)]

    def row(label: str, cells: list[str]) -> None:
        rows.append(f"| {label} | " + " | ".join(cells) + " |")

    row("input", [describe_input(r) for r in all_runs])
    row("repeats (median of)", [str(len(r.values["load:load"])) for r in all_runs])
    row("peak RSS, `python -c` only", [_mb(r.peak("python:rss_kib")) for r in all_runs])
    row("peak RSS, `import imbstat` only (baseline)", [_mb(r.peak("import:rss_kib")) for r in all_runs])
    row("(a) `orjson.loads(path.read_bytes())`", [_s(r.median("orjson:orjson.loads")) for r in all_runs])
    row("(a) peak RSS", [_mb(r.peak("orjson:rss_kib")) for r in all_runs])
    row("(b) `imbstat.load(path)`", [_s(r.median("load:load")) for r in all_runs])
    row("(b) ratio to (a)", [f"{r.median('load:load') / r.median('orjson:orjson.loads'):.2f}×" for r in all_runs])
    row("(b) peak RSS", [_mb(r.peak("load:rss_kib")) for r in all_runs])
    for key, label in (
        ("load", "load"),
        ("class", "`class_distribution`"),
        ("scale", "`scale_distribution`"),
        ("location", "`location_distribution`"),
    ):
        row(f"(c) {label}", [_s(r.median(f"stats:{key}")) for r in all_runs])
    row("(c) **total** (load + 3 statistics)", [f"**{_s(r.median('stats:total'))}**" for r in all_runs])
    row("(c) **peak RSS**", [f"**{_mb(r.peak('stats:rss_kib'))}**" for r in all_runs])
    row("(d) `imbstat class-dist PATH --json /dev/null`, wall", [_s(r.median("cli:wall")) for r in all_runs])
    row("(d) peak RSS", [_mb(r.peak("cli:rss_kib")) for r in all_runs])
    row("(e) bare `python -c \"import orjson; orjson.loads(open(PATH, 'rb').read())\"`, wall",
        [_s(r.median("bare:wall")) for r in all_runs])  # fmt: skip
    row("(d) ratio to (e)", [f"{r.median('cli:wall') / r.median('bare:wall'):.2f}×" for r in all_runs])
    row("(f) streamed `load_coco(path, stream=True)`", [_s(r.median("stream:load")) for r in all_runs])
    row("(f) MB/s; ratio to (a)", [
        f"{r.path.stat().st_size / 1e6 / r.median('stream:load'):,.0f} MB/s; "
        f"{r.median('stream:load') / r.median('orjson:orjson.loads'):.2f}×" for r in all_runs])  # fmt: skip
    row("(f) peak RSS", [_mb(r.peak("stream:rss_kib")) for r in all_runs])
    return "\n".join(rows)


def verdict(ok: bool) -> str:
    """A target's result cell, as every benchmark writes it."""
    return "PASS" if ok else "**FAIL**"


def targets_table(all_runs: Sequence[Runs]) -> str:
    """Markdown: each target of the issue, the measured value and PASS/FAIL."""
    by_size = {r.size: r for r in all_runs}
    rows = ["| target | measured | result |", "|---|---:|---|"]

    for size, r in by_size.items():
        load, loads = r.median("load:load"), r.median("orjson:orjson.loads")
        ratio = load / loads
        note = "" if size == "val" else " (informative; the target is set on val)"
        rows.append(
            f"| {size}-sized: load ≤ {TARGET_LOAD_RATIO:g}× orjson.loads{note} | {ratio:.2f}× "
            f"({_s(load)} vs {_s(loads)}) | {verdict(ratio <= TARGET_LOAD_RATIO)} |"
        )
    if "train" in by_size:
        r = by_size["train"]
        total, rss_gb = r.median("stats:total"), r.peak("stats:rss_kib") * 1024 / 1e9
        rows.append(
            f"| train-sized: load + 3 statistics ≤ {TARGET_TRAIN_SECONDS:g} s | {_s(total)} | "
            f"{verdict(total <= TARGET_TRAIN_SECONDS)} |"
        )
        rows.append(
            f"| train-sized: peak RSS ≤ {TARGET_TRAIN_RSS_GB:g} GB | {rss_gb:.2f} GB | "
            f"{verdict(rss_gb <= TARGET_TRAIN_RSS_GB)} |"
        )
        load = r.median("load:load") / r.median("orjson:orjson.loads")
        rows.append(
            f"| train-sized: load ≤ {TARGET_TRAIN_LOAD_RATIO:g}× orjson.loads (issue 23) | {load:.2f}× | "
            f"{verdict(load <= TARGET_TRAIN_LOAD_RATIO)} |"
        )
        cli = r.median("cli:wall") / r.median("bare:wall")
        rows.append(
            f"| train-sized: class-dist process ≤ {TARGET_CLI_RATIO:g}× a bare orjson process (issue 23) | "
            f"{cli:.2f}× ({_s(r.median('cli:wall'))} vs {_s(r.median('bare:wall'))}) | "
            f"{verdict(cli <= TARGET_CLI_RATIO)} |"
        )
    return "\n".join(rows)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    mem = re.search(r"^MemTotal:\s*(\d+) kB", meminfo, re.M)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "CPUs (nproc)": str(cpus),
        "CPU model": model.group(1).strip() if model else platform.processor() or "unknown",
        "memory": f"{int(mem.group(1)) * 1024 / 2**30:.1f} GiB" if mem else "unknown",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": platform.python_version(),
        "numpy": _version("numpy"),
        "msgspec": _version("msgspec"),
        "orjson": _version("orjson"),
        "imbstat": _version("imbstat"),
    }


def section(all_runs: Sequence[Runs], command: str) -> str:
    """The Markdown section of this benchmark in RESULTS.md, between its markers."""
    m = machine()
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return "\n".join(
        [
            BEGIN,
            "## Load and dataset statistics (`benchmarks/bench_dataset.py`)",
            "",
            f"Measured {when} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}, "
            f"numpy {m['numpy']}, msgspec {m['msgspec']}, orjson {m['orjson']}, imbstat {m['imbstat']}.",
            "",
            "```sh",
            "python -m benchmarks.make_inputs --sizes " + ",".join(r.size for r in all_runs),
            command,
            "```",
            "",
            "Each row is a fresh Python child (peak RSS = `ru_maxrss` of that child, which includes the",
            "interpreter and its imports: compare with the baseline row). Times exclude imports except in (d),",
            "which times the whole CLI process. Median of the repeats; RSS is the maximum. MB = 10⁶ bytes.",
            "",
            results_table(all_runs),
            "",
            "`orjson.loads` turns every segmentation coordinate into a Python float, which is why it is slower",
            "and larger than `imbstat.load`, whose typed msgspec decoder skips the polygons and RLE masks.",
            "",
            "### Targets",
            "",
            targets_table(all_runs),
            END,
        ]
    )


def header() -> str:
    """The top of a new RESULTS.md: the machine the benchmarks run on."""
    lines = ["# Benchmark results", "", "Machine of the runs below (each section also names its own):", ""]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    return "\n".join(lines) + "\n"


def write_results(text: str, path: Path = RESULTS, begin: str = BEGIN, end: str = END) -> None:
    """Replace the section between ``begin`` and ``end`` of ``path`` (or append it; create the file if absent)."""
    old = path.read_text() if path.exists() else header()
    if begin in old and end in old:
        before, rest = old.split(begin, 1)
        new = before + text + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)


def main(argv: list[str] | None = None) -> None:
    """Command line: measure the requested inputs, print the tables, optionally update RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_dataset", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(SPECS), help="comma list of: val, train")
    parser.add_argument("--inputs", type=Path, default=DEFAULT_OUT, help=f"folder of the inputs ({DEFAULT_OUT})")
    parser.add_argument("--repeat", type=int, default=None, help="rounds per input (default: val 3, train 1)")
    parser.add_argument("--write", action="store_true", help=f"update this benchmark's section of {RESULTS}")
    args = parser.parse_args(argv)

    all_runs = []
    for size in args.sizes:
        path = args.inputs / SPECS[size].output
        if not path.is_file():
            sys.exit(f"bench_dataset: error: {path} not found; run python -m benchmarks.make_inputs --sizes {size}")
        repeat = args.repeat or (3 if size == "val" else 1)
        all_runs.append(measure(size, path, repeat))

    command = "python -m benchmarks.bench_dataset " + " ".join(
        ["--sizes", ",".join(args.sizes)] + (["--repeat", str(args.repeat)] if args.repeat else []) + ["--write"]
    )
    text = section(all_runs, command)
    print(text)
    if args.write:
        write_results(text)
        print(f"\nwrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
