"""Objects365- and Open Images-sized inputs: load, statistics, cache, anchors; time and peak RSS.

    python -m benchmarks.make_inputs --sizes o365,openimages   # ~13 GB JSON, ~1.2 GB CSV
    python -m benchmarks.bench_large [--steps ...] [--write]

Targets (issue: scale): peak RSS of a 25M-box load <= 6 GB, and <= 2.5x the
size of the columnar data for any input. Every step runs in a fresh child
process, so each peak (``ru_maxrss``) is that of the measured work; the child
also reports its RSS after the imports, before any data.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
from pathlib import Path

from benchmarks.harness import machine, run_process, verdict, write_results

BEGIN, END = "<!-- bench_large:begin -->", "<!-- bench_large:end -->"
INPUTS = Path(__file__).resolve().parent / "inputs"
O365 = INPUTS / "objects365_sized.json"
OPENIMAGES = INPUTS / "openimages_sized.csv"
TARGET_RSS_GB = 6.0
TARGET_RATIO = 2.5
STEPS = ("json", "cache-write", "cache-read", "anchors", "cli-anchors", "openimages")
# Each step's last measured figures: a run of some steps with --write keeps the others' figures.
RAW = Path(__file__).resolve().parent / "bench_large.json"

CHILD = """
import dataclasses, json, resource, sys, time
import numpy as np
import pandas, pyarrow.parquet
import imbstat
from imbstat.data import cache as columnar_cache

def rss_now():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS")) / 1e9

def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9

def columnar_gb(ds):
    total = 0
    for table in (ds.images, ds.boxes):
        for field in dataclasses.fields(table):
            a = getattr(table, field.name)
            total += a.nbytes + (sum(map(sys.getsizeof, a)) if a.dtype == object else 0)
    return total / 1e9

def timed(out, name, f):
    start = time.perf_counter(); value = f(); out[name + "_s"] = time.perf_counter() - start
    return value

step, path, extra = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = {"rss_imports_gb": rss_now()}
if step in ("json", "openimages", "cache-write"):
    ds = timed(out, "load", lambda: imbstat.load(path, cache=False, **extra))
else:
    ds = timed(out, "load", lambda: imbstat.load(path, **extra))
out["rss_load_gb"] = peak()
out.update(images=ds.num_images, boxes=len(ds.boxes), columns_gb=columnar_gb(ds))
if step in ("json", "openimages"):
    for name in ("class_distribution", "scale_distribution", "location_distribution"):
        timed(out, name, lambda: getattr(imbstat, name)(ds).to_dict())
if step == "cache-write":
    options = columnar_cache.load_options(path)
    timed(out, "write", lambda: columnar_cache.write_cache(ds, columnar_cache.Path(path), options))
if step == "anchors":
    import imbstat.stats.anchors as anchors
    small = ds.select_images(np.arange(ds.num_images) < 8)
    timed(out, "warm", lambda: anchors.anchor_stats(small, method="sparse"))  # numba's cache load
    s = timed(out, "anchors", lambda: anchors.anchor_stats(ds, method="sparse"))
    out["anchor_totals"] = s.totals
out["rss_peak_gb"] = peak()
print(json.dumps(out))
"""


def measure(step: str, path: Path, extra: dict | None = None) -> dict:
    cmd = [sys.executable, "-c", CHILD, step, str(path), json.dumps(extra or {})]
    result = run_process(cmd).json()  # exits with its stderr if the step fails
    result["measured"] = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print(step, result, file=sys.stderr, flush=True)
    return result


def measure_cli(path: Path) -> dict:
    """The whole ``imbstat anchor-iou`` process (start-up, load from the cache, labelling, JSON): wall, peak."""
    out_json = path.with_name("anchor-iou.bench.json")
    cmd = [sys.executable, "-m", "imbstat", "anchor-iou", str(path), "--quiet", "--json", str(out_json)]
    done = run_process(cmd)  # exits with its stderr if it fails
    totals = json.loads(out_json.read_text())["anchors"]
    out_json.unlink()
    result = {"wall_s": done.wall, "rss_peak_gb": done.rss_kib * 1024 / 1e9, "anchor_totals": totals}
    result["measured"] = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    print("cli-anchors", result, file=sys.stderr, flush=True)
    return result


def run(steps: list[str]) -> dict[str, dict]:
    results = {}
    if "cli-anchors" in steps:  # first, as the figures recorded were measured (its peak RSS is its own: wait4)
        results["cli-anchors"] = measure_cli(O365)
    for step in steps:
        if step == "cli-anchors":
            continue
        if step == "openimages":
            extra = {"classes": str(INPUTS / "openimages_sized-classes.csv")}
            results[step] = measure(step, OPENIMAGES, extra)
            continue
        if step == "cache-write":
            shutil.rmtree(O365.with_name(O365.name + ".imbstat-cache"), ignore_errors=True)
        results[step] = measure(step, O365)
    return results


def _ratio(r: dict) -> str:
    plain = r["rss_peak_gb"] / r["columns_gb"]
    less = (r["rss_peak_gb"] - r["rss_imports_gb"]) / r["columns_gb"]
    return f"{plain:.2f}× ({less:.2f}× above the imports' {r['rss_imports_gb']:.2f} GB)"


def _ratio_check(name: str, r: dict) -> tuple[str, str, bool]:
    ratio = r["rss_peak_gb"] / r["columns_gb"]
    return name, f"{ratio:.2f}×", ratio <= TARGET_RATIO


def section(results: dict[str, dict]) -> str:
    m = machine()
    when = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [
        BEGIN,
        "## Objects365- and Open Images-sized inputs (`benchmarks/bench_large.py`)",
        "",
        f"Written {when} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}, "
        f"numpy {m['numpy']}, msgspec {m['msgspec']}.",
        "",
        "```sh",
        "python -m benchmarks.make_inputs --sizes o365,openimages",
        "python -m benchmarks.bench_large --write   # or --steps a,b: the others keep their figures",
        "```",
        "",
        "Steps measured: " + "; ".join(f"{s}: {r.get('measured', 'earlier')}" for s, r in results.items()) + ".",
        "",
        "Every step is a fresh child process; peak RSS is its `ru_maxrss` (interpreter, numpy, pandas, pyarrow and "
        "imbstat included: their RSS before any data is given). Columns = the Dataset's arrays (images and "
        "boxes; Python strings counted with their objects). GB = 10⁹ bytes.",
        "",
    ]
    checks = []
    o365_steps = ("json", "cache-write", "cache-read", "anchors")
    if any(s in results for s in o365_steps):
        size_gb = O365.stat().st_size / 1e9 if O365.exists() else float("nan")
        first = next(results[s] for s in o365_steps if s in results)
        lines += [
            f"**Objects365-sized JSON**: {first['images']:,} images, {first['boxes']:,} boxes, {size_gb:.1f} GB "
            "(×35,000 of coco2017_train_mini.json, segmentations kept; streamed in 64 MiB blocks above 1 GiB); "
            f"columns {first['columns_gb']:.2f} GB.",
            "",
            "| step | time | peak RSS | peak / columns |",
            "|---|---:|---:|---:|",
        ]
        if "json" in results:
            r = results["json"]
            stats = sum(r[f"{n}_distribution_s"] for n in ("class", "scale", "location"))
            lines += [
                f"| `imbstat.load(path, cache=False)` (streamed parse) | {r['load_s']:.1f} s | "
                f"{r['rss_load_gb']:.2f} GB | |",
                f"| + `class_distribution`, `scale_distribution`, `location_distribution` | "
                f"{r['class_distribution_s']:.1f} + {r['scale_distribution_s']:.1f} + "
                f"{r['location_distribution_s']:.1f} = {stats:.1f} s | {r['rss_peak_gb']:.2f} GB | {_ratio(r)} |",
            ]
            checks.append(("25M-box load: peak RSS ≤ 6 GB", f"{r['rss_load_gb']:.2f} GB",
                           r["rss_load_gb"] <= TARGET_RSS_GB))  # fmt: skip
            checks.append(_ratio_check("JSON load + statistics: peak ≤ 2.5× columns", r))
        if "cache-write" in results:
            r = results["cache-write"]
            lines.append(
                f"| what `imbstat cache PATH` does: parse ({r['load_s']:.1f} s), then `write_cache` | "
                f"{r['write_s']:.1f} s | {r['rss_peak_gb']:.2f} GB | {_ratio(r)} |"
            )
            checks.append(_ratio_check("cache write: peak ≤ 2.5× columns", r))
        if "cache-read" in results:
            r = results["cache-read"]
            lines.append(
                f"| `imbstat.load(path)` from the cache | {r['load_s']:.1f} s | {r['rss_peak_gb']:.2f} GB | "
                f"{_ratio(r)} |"
            )
            checks.append(_ratio_check("cache read: peak ≤ 2.5× columns", r))
        if "anchors" in results:
            r = results["anchors"]
            lines.append(
                f'| `anchor_stats(ds, method="sparse")` (retinanet), after a load from the cache '
                f"({r['load_s']:.1f} s) | {r['anchors_s']:.1f} s ({1e3 * r['anchors_s'] / r['images']:.3f} ms/image) | "
                f"{r['rss_peak_gb']:.2f} GB | {_ratio(r)} |"
            )
        if "cli-anchors" in results:
            r = results["cli-anchors"]
            lines.append(
                f"| the whole `imbstat anchor-iou PATH --quiet --json FILE` process (start-up, load from the cache, "
                f"labelling, JSON) | {r['wall_s']:.1f} s | {r['rss_peak_gb']:.2f} GB | |"
            )
        totals = next((results[s]["anchor_totals"] for s in ("anchors", "cli-anchors") if s in results), None)
        if totals:
            t = totals
            lines += ["", f"Anchors: {t['total']:,} in all; {t['foreground']:,} foreground, {t['ignored']:,} ignored."]
        lines.append("")
    if "openimages" in results:
        r = results["openimages"]
        size_gb = OPENIMAGES.stat().st_size / 1e9
        stats = sum(r[f"{n}_distribution_s"] for n in ("class", "scale", "location"))
        lines += [
            f"**Open Images-sized CSV**: {r['images']:,} images, {r['boxes']:,} boxes, {size_gb:.2f} GB "
            "(`make_inputs --sizes openimages`: the COCO train mini boxes ×19,760 in the official column layout, "
            f"with its class descriptions; no sizes file, so boxes stay normalised); columns {r['columns_gb']:.2f} GB.",
            "",
            "| step | time | peak RSS | peak / columns |",
            "|---|---:|---:|---:|",
            f"| `imbstat.load(csv, classes=..., cache=False)` (pandas C parser, 2M-row chunks) | {r['load_s']:.1f} s | "
            f"{r['rss_load_gb']:.2f} GB | |",
            f"| + the three statistics | {stats:.1f} s | {r['rss_peak_gb']:.2f} GB | {_ratio(r)} |",
            "",
        ]
        checks.append(_ratio_check("Open Images load + statistics: peak ≤ 2.5× columns", r))
    lines += ["| target | measured | result |", "|---|---:|---|"]
    lines += [f"| {name} | {value} | {verdict(ok)} |" for name, value, ok in checks]
    lines.append(END)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_large", description=__doc__.split("\n")[0])
    parser.add_argument("--steps", default=",".join(STEPS), help=f"comma list of: {', '.join(STEPS)}")
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    parser.add_argument("--render", action="store_true", help=f"only rewrite RESULTS.md from {RAW.name}")
    args = parser.parse_args(argv)
    if args.render:
        write_results(section(json.loads(RAW.read_text())), begin=BEGIN, end=END)
        return
    steps = [s for s in args.steps.split(",") if s]
    if unknown := [s for s in steps if s not in STEPS]:
        sys.exit(f"bench_large: unknown steps {unknown}; expected {', '.join(STEPS)}")
    for path, size in ((O365, "o365"), (OPENIMAGES, "openimages")):
        needed = "openimages" in steps if size == "openimages" else any(s != "openimages" for s in steps)
        if needed and not path.exists():
            sys.exit(f"{path} is missing: python -m benchmarks.make_inputs --sizes {size}")
    results = run(steps)
    if args.write:
        kept = json.loads(RAW.read_text()) if RAW.exists() else {}
        results = {step: {**kept, **results}[step] for step in STEPS if step in kept or step in results}
        RAW.write_text(json.dumps(results, indent=1) + "\n")
    text = section(results)
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
