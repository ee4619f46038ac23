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
import sys
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import (
    CHILDREN,
    RESULTS,
    TAIL,
    Runs,
    _mb,
    _s,
    describe_input,
    measured_on,
    run_child,
    run_cli,
    verdict,
    warm_cache,
    write_results,
)
from benchmarks.make_inputs import DEFAULT_OUT, SPECS, parse_sizes

BEGIN, END = "<!-- bench_dataset:begin -->", "<!-- bench_dataset:end -->"
TARGET_LOAD_RATIO = 2.0  # imbstat.load / orjson.loads, COCO-val-sized
TARGET_TRAIN_SECONDS = 30.0  # load + class + scale + location, COCO-train-sized
TARGET_TRAIN_RSS_GB = 3.0  # peak RSS of that child, GB = 1e9 bytes
TARGET_TRAIN_LOAD_RATIO = 0.3  # issue 23: imbstat.load / orjson.loads, COCO-train-sized, alternated in one run
TARGET_CLI_RATIO = 0.35  # issue 23: the class-dist process / a bare orjson.loads process, same file

# The children (harness.run_child): each prints one JSON object on its last line of stdout, its peak RSS added.
CHILDREN |= {
    "python": "import json, sys\nout = {}\n" + TAIL,
    "import": "import json, sys\nimport imbstat\nout = {}\n" + TAIL,
    "orjson": (
        "import json, sys, time\nfrom pathlib import Path\nimport orjson\n"
        "t = time.perf_counter(); doc = orjson.loads(Path(sys.argv[1]).read_bytes())\n"
        "out = {'orjson.loads': time.perf_counter() - t}\n" + TAIL
    ),
    "load": (
        "import json, sys, time\nimport imbstat\n"
        "t = time.perf_counter(); ds = imbstat.load(sys.argv[1], cache=False)\n"
        "out = {'load': time.perf_counter() - t, 'images': len(ds.images), 'boxes': len(ds.boxes)}\n" + TAIL
    ),
    # the streamed read (files over 1 GiB) forced on the same bytes, for its MB/s (issue 23)
    "stream": (
        "import json, sys, time\nfrom imbstat.data.coco import load_coco\n"
        "t = time.perf_counter(); ds = load_coco(sys.argv[1], stream=True)\n"
        "out = {'load': time.perf_counter() - t, 'boxes': len(ds.boxes)}\n" + TAIL
    ),
    "stats": (
        "import json, sys, time\nimport imbstat\nout = {}\n"
        "t = time.perf_counter(); ds = imbstat.load(sys.argv[1], cache=False); out['load'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.class_distribution(ds); out['class'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.scale_distribution(ds); out['scale'] = time.perf_counter() - t\n"
        "t = time.perf_counter(); imbstat.location_distribution(ds); out['location'] = time.perf_counter() - t\n"
        "out['total'] = out['load'] + out['class'] + out['scale'] + out['location']\n" + TAIL
    ),
}


def bare_orjson_command(path: Path) -> list[str]:
    """The whole-process baseline of issue 23: ``python -c "import orjson; orjson.loads(open(PATH, 'rb').read())"``."""
    return [sys.executable, "-c", f"import orjson; orjson.loads(open({str(path)!r}, 'rb').read())"]


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


def section(all_runs: Sequence[Runs], command: str) -> str:
    """The Markdown section of this benchmark in RESULTS.md, between its markers."""
    return "\n".join(
        [
            BEGIN,
            "## Load and dataset statistics (`benchmarks/bench_dataset.py`)",
            "",
            measured_on("numpy", "msgspec", "orjson", "imbstat") + ".",
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
        write_results(text, begin=BEGIN, end=END)
        print(f"\nwrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
