"""Speed and memory of the remedies (repeat-factor sampling, class-balanced weights) on the COCO-train-sized input.

::

    python -m benchmarks.make_inputs --sizes train        # build the input once
    python -m benchmarks.bench_remedies [--repeat N] [--write]

As ``bench_dataset``: every measurement runs in a fresh ``python -c`` child (peak RSS its
``ru_maxrss``), times are ``time.perf_counter`` around the work after the load, medians over
the repeats; the CLI rows are the wall time of whole ``imbstat class-dist`` processes (``--no-cache``:
the load is a full parse), without and with both remedies, so their difference is the remedies' cost.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks.harness import (
    CHILDREN,
    RESULTS,
    TAIL,
    Runs,
    cli_command,
    measured_on,
    run_child,
    run_cli,
    warm_cache,
    write_results,
)
from benchmarks.make_inputs import DEFAULT_OUT, SPECS

BEGIN, END = "<!-- bench_remedies:begin -->", "<!-- bench_remedies:end -->"
# The input repeats COCO's 80 mini images, so every class is in >= 1/80 of the images and LVIS's 0.001
# would repeat nothing; at 0.1 most classes are repeated (the work does not depend on it otherwise).
THRESHOLD, BETA = 0.1, 0.999

_TIMED = (
    "import json, sys, time\nimport imbstat\nfrom imbstat.stats import *\nout = {}\n"
    "ds = imbstat.load(sys.argv[1], cache=False)\n"
    "def timed(name, fn):\n    t = time.perf_counter(); r = fn(); out[name] = time.perf_counter() - t; return r\n"
    "timed('class_distribution', lambda: class_distribution(ds))\n"
    f"timed('repeat_factors', lambda: repeat_factors(ds, {THRESHOLD}))\n"
    f"r = timed('repeat_factor_sampling', lambda: repeat_factor_sampling(ds, threshold={THRESHOLD}))\n"
    "timed('repeat_factor to_dict', r.to_dict)\n"
    "timed('repeat_factor to_dict(raw=True)', lambda: r.to_dict(raw=True))\n"
    f"timed('class_balanced_loss', lambda: class_balanced_loss(ds, beta={BETA}))\n"
    "out['images'] = ds.num_images; out['boxes'] = len(ds.boxes); out['epoch_images'] = r.epoch_images\n" + TAIL
)
CHILDREN["remedies"] = _TIMED


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"Write the figures into {RESULTS.name}.")
    args = parser.parse_args(argv)
    path = DEFAULT_OUT / SPECS["train"].output
    if not path.is_file():
        sys.exit(f"bench_remedies: {path} not found; run python -m benchmarks.make_inputs --sizes train")
    remedies = [*cli_command(path), "--repeat-factor", str(THRESHOLD), "--class-balanced", str(BETA)]
    runs = Runs("train", path)
    warm_cache(path)
    for i in range(args.repeat):
        print(f"  round {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
        runs.add("remedies", run_child("remedies", path))
        runs.add("cli", run_cli(path))
        runs.add("cli+remedies", run_cli(path, remedies))
    text = render(runs)
    print(text)
    if args.write:
        write_results(f"{BEGIN}\n{text}\n{END}", begin=BEGIN, end=END)


def render(runs: Runs) -> str:
    med, gb = runs.median, lambda key: runs.peak(key) * 1024 / 1e9
    rows = [
        ("`class_distribution(ds)` (for scale)", "class_distribution"),
        (f"`repeat_factors(ds, {THRESHOLD})` (per-class and per-image factors)", "repeat_factors"),
        (
            f"`repeat_factor_sampling(ds, threshold={THRESHOLD})` (factors, expected counts, scores)",
            "repeat_factor_sampling",
        ),
        ("its `to_dict()`; `to_dict(raw=True)` (a shard's, with the image × class matrix)", None),
        (f"`class_balanced_loss(ds, beta={BETA})`", "class_balanced_loss"),
    ]
    lines = [
        "## Remedies: repeat-factor sampling and class-balanced weights (`bench_remedies`)",
        "",
        f"{measured_on('numpy')}. Median of {len(runs.values['cli:wall'])} runs.",
        "",
        "```sh\npython -m benchmarks.make_inputs --sizes train\npython -m benchmarks.bench_remedies --write\n```",
        "",
        f"COCO-train-sized input: {int(med('remedies:images')):,} images, {int(med('remedies:boxes')):,} boxes "
        f"(load excluded); one epoch at T = {THRESHOLD} is {med('remedies:epoch_images'):,.0f} images. "
        "The machine was shared with other jobs: the CLI rows (dominated by the 550 MB parse) are noisy; "
        "their difference is the remedies' cost.",
        "",
        "| step | time |",
        "|---|---:|",
    ]
    for label, key in rows:
        if key is None:
            a, b = med("remedies:repeat_factor to_dict"), med("remedies:repeat_factor to_dict(raw=True)")
            lines.append(f"| {label} | {a:.3f} s; {b:.3f} s |")
        else:
            lines.append(f"| {label} | {med('remedies:' + key):.3f} s |")
    lines += [
        f"| peak RSS of that child (load included) | {gb('remedies:rss_kib'):.2f} GB |",
        f"| `imbstat class-dist PATH --json /dev/null --no-cache` (whole process) | {med('cli:wall'):.1f} s, "
        f"{gb('cli:rss_kib'):.2f} GB |",
        f"| the same with `--repeat-factor {THRESHOLD} --class-balanced {BETA}` | {med('cli+remedies:wall'):.1f} s, "
        f"{gb('cli+remedies:rss_kib'):.2f} GB |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
