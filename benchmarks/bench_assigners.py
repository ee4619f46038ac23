"""The assigners' cost against the sparse MaxIoU path: ATSS, FCOS and the sampling stage (issues 12, 13).

::

    python -m benchmarks.make_inputs --sizes val,train    # build the inputs once
    python -m benchmarks.bench_assigners [--assigner atss,fcos,sampler] [--repeat N] [--input PATH] [--write]

One sub-benchmark per assigner (all by default), each with its own section of RESULTS.md.

``atss`` (target: atss per image within 3× of retinanet). (1) On the COCO-val-sized input, in one
process (input loaded and kernels warmed up on 8 images first, so numba and torch start-up are
excluded), ``anchor_stats(ds, preset=P, method="sparse", threads=1)`` for ``retinanet``, ``atss`` and
``atss`` in float32 in turn, and the labelling alone (``ground_truth``, ``batches``, the matcher);
median of the repeats (3), per image. (2) On each ``--data`` file: the anchors whose label
(background, or the GT it is assigned to) differs between ``atss`` in float64 and in float32.

``fcos`` (target: fcos per image within 3× of the sparse MaxIoU ``retinanet`` path). Both presets in
one process, after a warm-up call each, alternating in every round (5) so that the shared machine's
load falls on both; the fastest round is reported with the median beside it. (a) matching alone:
``ground_truth`` + ``batches`` + the matcher (for fcos that includes the sparse MaxIoU kernel run for
each GT's best IoU); (b) ``anchor_stats(ds, preset, threads=1)``. Then the label shift: foreground
points and per-class foreground of ``fcos`` in float64 against ``dtype = "float32"`` (mmdetection's
own float32 results) on each ``--data`` file.

``sampler`` (``--sampler``, issue 13 part 2). ``anchor_stats`` on the COCO-train-sized input under the
``rpn`` preset with its sampler (``random:256:0.5``) and without it (``sampler = ""``), one thread, in
one process after a warm-up call each, alternating in every round (4), and which goes first. CPU time
of the process (``time.process_time``: the machine is shared, and its load moves wall times by ±30 %);
the fastest round is reported with the median beside it. The sampler adds one weighted ``bincount``
per batch (per-class expected positives) and a few per-image array operations in ``to_dict``.

``--input PATH`` runs every chosen sub-benchmark on that file instead (e.g. a mini file, for a quick
check that the benchmark runs; its figures are not comparable with the recorded ones).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.harness import RESULTS, measured_on, timer, verdict, write_results
from benchmarks.make_inputs import DEFAULT_DATA, DEFAULT_OUT, SPECS

TARGET_RATIO = 3.0  # atss and fcos: per image, within 3× of the sparse MaxIoU retinanet path


def _markers(name: str) -> tuple[str, str]:
    """A sub-benchmark's section markers in RESULTS.md (those of the former bench_<name>.py, kept)."""
    return f"<!-- bench_{name}:begin -->", f"<!-- bench_{name}:end -->"


def _warm_up(ds: Any, presets: Any) -> None:
    """numba import and kernel cache load (and torch for float32), on 8 images per preset."""
    import numpy as np

    import imbstat

    for preset in presets:
        imbstat.anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=preset, method="sparse")


def labelling(ds: Any, preset: Any) -> float:
    """Seconds to label every anchor of ``ds`` on one thread: ground_truth + batches + the matcher, no statistics."""
    from imbstat.anchors.engine import batches, ground_truth, make_matcher

    with timer() as t:
        matcher = make_matcher(preset, "cpu", "sparse")
        for batch in batches(ground_truth(ds, preset), preset):
            matcher(batch)
    return t.seconds


# ---------------------------------------------------------------------------------------------
# atss


def atss_timings(ds: Any, presets: dict[str, Any], repeat: int) -> dict[str, dict[str, float]]:
    """Per preset: median seconds of ``anchor_stats`` (``stats``) and of the labelling alone (``labels``)."""
    import imbstat

    _warm_up(ds, presets.values())
    runs: dict[str, dict[str, list[float]]] = {name: {"stats": [], "labels": []} for name in presets}
    for _ in range(repeat):  # interleaved: a busy spell of the shared machine hits every preset
        for name, preset in presets.items():
            with timer() as t:
                imbstat.anchor_stats(ds, preset=preset, method="sparse", threads=1)
            runs[name]["stats"].append(t.seconds)
            runs[name]["labels"].append(labelling(ds, preset))
    return {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}


def atss_labels(ds: Any, preset: Any) -> dict[tuple[int, int], int]:
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


def atss_float32_moves(path: Path) -> dict[str, Any]:
    """Foreground anchors of atss in float64 and float32 on ``path``, those whose label moves, classes that move."""
    import numpy as np

    import imbstat
    from imbstat.anchors.presets import PRESETS

    ds = imbstat.load(path, cache=False)
    f64 = atss_labels(ds, PRESETS["atss"])
    f32 = atss_labels(ds, dataclasses.replace(PRESETS["atss"], name="atss-float32", dtype="float32"))
    moved = {key for key in f64.keys() | f32.keys() if f64.get(key) != f32.get(key)}
    cat = ds.boxes.category

    def per_class(fg: dict) -> np.ndarray:
        return np.bincount(cat[list(fg.values())], minlength=len(ds.categories)) if fg else np.zeros(1)

    classes = int((per_class(f64) != per_class(f32)).sum())
    return {"images": ds.num_images, "fg64": len(f64), "fg32": len(f32), "moved": len(moved), "classes": classes}


def atss(path: Path, data: list[Path], repeat: int | None, command: str) -> str:
    """The atss section of RESULTS.md."""
    import imbstat
    from imbstat.anchors.presets import PRESETS

    ds = imbstat.load(path, cache=False)
    presets = {
        "retinanet": PRESETS["retinanet"],
        "atss": PRESETS["atss"],
        "atss float32": dataclasses.replace(PRESETS["atss"], name="atss-float32", dtype="float32"),
    }
    times = atss_timings(ds, presets, repeat or 3)
    moves = {p.name: atss_float32_moves(p) for p in data}
    images = ds.num_images
    per = {name: {k: v / images * 1e3 for k, v in t.items()} for name, t in times.items()}
    ratio = per["atss"]["stats"] / per["retinanet"]["stats"]
    begin, end = _markers("atss")
    lines = [
        begin,
        "## ATSS assigner vs the sparse MaxIoU path (`benchmarks/bench_assigners.py --assigner atss`)",
        "",
        measured_on("numpy", "numba", "torch")
        + f". Input: {path.name} ({images:,} images), one thread, kernels warmed up; median of the repeats.",
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
    lines += [
        "",
        f"Target: atss per image within {TARGET_RATIO:g}× of retinanet: **{ratio:.2f}×** "
        f"({verdict(ratio <= TARGET_RATIO)}).",
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
    return "\n".join([*lines, "", end])


# ---------------------------------------------------------------------------------------------
# fcos


def fcos_timings(path: Path, repeat: int) -> dict[str, Any]:
    """Per preset, per measurement (matching, anchor_stats): the seconds of each round; the load average."""
    import imbstat
    from imbstat.anchors.presets import PRESETS

    names = ("retinanet", "fcos")
    load_before = os.getloadavg()[0]
    ds = imbstat.load(path)
    _warm_up(ds, names)
    times: dict[str, Any] = {name: {"matching": [], "anchor_stats": []} for name in names}
    for _ in range(repeat):
        for name in names:
            times[name]["matching"].append(labelling(ds, PRESETS[name]))
            with timer() as t:
                imbstat.anchor_stats(ds, preset=name, threads=1)
            times[name]["anchor_stats"].append(t.seconds)
    times["images"] = ds.num_images
    times["load"] = [load_before, os.getloadavg()[0]]
    return times


def fcos_float32_shift(paths: list[Path]) -> list[dict]:
    """Per file: foreground points of fcos in float64 and float32, and the classes whose count moves."""
    import numpy as np

    import imbstat
    from imbstat.anchors.presets import PRESETS

    rows = []
    for path in paths:
        ds = imbstat.load(path)
        f64 = imbstat.anchor_stats(ds, preset=PRESETS["fcos"])
        f32 = imbstat.anchor_stats(ds, preset=dataclasses.replace(PRESETS["fcos"], dtype="float32"))
        moved = np.flatnonzero(f64.class_foreground != f32.class_foreground)
        rows.append({
            "file": path.name, "images": ds.num_images, "points": f64.totals["total"],
            "fg64": f64.totals["foreground"], "fg32": f32.totals["foreground"],
            "classes": ", ".join(f"{int(f64.category_id[i])}: {int(f64.class_foreground[i])} → "
                                 f"{int(f32.class_foreground[i])}" for i in moved) or "none",
            "images_moved": int((f64.per_image[:, 0] != f32.per_image[:, 0]).sum()),
        })  # fmt: skip
    return rows


def fcos(path: Path, data: list[Path], repeat: int | None, command: str) -> str:
    """The fcos section of RESULTS.md."""
    times = fcos_timings(path, repeat or 5)
    shift = fcos_float32_shift(data)
    n = times["images"]

    def ms(name: str, what: str) -> tuple[float, float]:
        values = times[name][what]
        return min(values) / n * 1e3, statistics.median(values) / n * 1e3

    begin, end = _markers("fcos")
    lines = [
        begin,
        "## FCOS assigner (`benchmarks/bench_assigners.py --assigner fcos`)",
        "",
        measured_on("numpy", "imbstat")
        + f". Input: {path.name} ({n:,} images), {len(times['fcos']['matching'])} rounds.",
        "",
        "```sh",
        "python -m benchmarks.make_inputs --sizes val",
        command,
        "```",
        "",
        "Both presets in one process after a warm-up call each, alternating in every round; the fastest round",
        "(median in brackets), per image. Matching = `ground_truth` + `batches` + the matcher (fcos: its",
        "candidate windows plus the sparse MaxIoU kernel for each GT's best IoU); `anchor_stats` = matching and",
        "statistics on one thread. The machine is shared: load average (1 min) "
        f"{times['load'][0]:.1f} at the start, {times['load'][1]:.1f} at the end.",
        "",
        "| measurement, per image | `retinanet` (sparse MaxIoU) | `fcos` | fcos / retinanet |",
        "|---|---:|---:|---:|",
    ]
    for what in ("matching", "anchor_stats"):
        (r, rm), (f, fm) = ms("retinanet", what), ms("fcos", what)
        lines.append(f"| {what} | {r:.4f} ms ({rm:.4f}) | {f:.4f} ms ({fm:.4f}) | {f / r:.2f}× ({fm / rm:.2f}×) |")
    ratio = max(ms("fcos", w)[0] / ms("retinanet", w)[0] for w in ("matching", "anchor_stats"))
    lines += [
        "",
        f"Target: fcos within {TARGET_RATIO:g}× of the sparse MaxIoU path per image: {ratio:.2f}× — "
        + verdict(ratio <= TARGET_RATIO),
        "",
        '### float64 against float32 (`dtype = "float32"`, mmdetection\'s own float32 results)',
        "",
        "| file | images | points | foreground float64 | foreground float32 | images that move | classes that "
        "move (category: float64 → float32) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in shift:
        lines.append(f"| {row['file']} | {row['images']} | {row['points']:,} | {row['fg64']:,} | {row['fg32']:,} | "
                     f"{row['images_moved']} | {row['classes']} |")  # fmt: skip
    lines += [
        "",
        "A point moves where float32 rounding lands a distance on an inclusive range bound or a GT edge on a",
        "point. On the train mini (image 538113): a GT's top edge 132.37 · (800 / 427) is 248.00000000000003 in",
        "float64 but 248.0 in float32 (float32 corner times float32 scale), so the stride-16 point (808, 312)",
        "has t = 64 exactly and enters the level's range [64, 128].",
        end,
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# sampler


def sampler_timings(path: Path, repeat: int) -> dict:
    """CPU seconds of ``anchor_stats(...).to_dict()`` with and without rpn's sampler, per round; the sampled block."""
    import imbstat
    from imbstat.anchors.presets import PRESETS

    with_sampler = PRESETS["rpn"]
    presets = {"with sampler": with_sampler, "without": dataclasses.replace(with_sampler, sampler="")}
    with timer() as load:
        ds = imbstat.load(path)
    loads = [os.getloadavg()[0]]
    _warm_up(ds, presets.values())
    seconds: dict[str, list[float]] = {name: [] for name in presets}
    for round_ in range(repeat):
        for name, preset in list(presets.items())[:: 1 if round_ % 2 else -1]:  # who goes first alternates too
            start = time.process_time()
            imbstat.anchor_stats(ds, preset=preset, threads=1).to_dict()  # to_dict: the sampled block's summary
            seconds[name].append(time.process_time() - start)
    loads.append(os.getloadavg()[0])
    sampled = imbstat.anchor_stats(ds, preset=with_sampler).to_dict()["sampled"]
    return {"images": ds.num_images, "boxes": len(ds.boxes), "load_s": load.seconds, "seconds": seconds,
            "loads": loads, "sampled": sampled}  # fmt: skip


def sampler(path: Path, data: list[Path], repeat: int | None, command: str) -> str:
    """The sampler section of RESULTS.md (``data`` unused: no float32 comparison here)."""
    t = sampler_timings(path, repeat or 4)
    best = {name: min(v) for name, v in t["seconds"].items()}
    median = {name: statistics.median(v) for name, v in t["seconds"].items()}
    s = t["sampled"]
    begin, end = _markers("sampler")
    lines = [
        begin,
        "## The sampling stage's cost (`benchmarks/bench_assigners.py --assigner sampler`)",
        "",
        measured_on("numpy") + f". Input: {path.name} ({t['images']:,} images, {t['boxes']:,} boxes; loaded in "
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
        end,
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line.

# name -> (the section's function, the make_inputs size it measures on)
ASSIGNERS: dict[str, tuple[Callable[[Path, list[Path], int | None, str], str], str]] = {
    "atss": (atss, "val"),
    "fcos": (fcos, "val"),
    "sampler": (sampler, "train"),
}


def _assigners(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names or any(n not in ASSIGNERS for n in names):
        raise argparse.ArgumentTypeError(f"expected a comma list of: {', '.join(ASSIGNERS)}; got {text!r}")
    return names


def main(argv: list[str] | None = None) -> None:
    """Command line: run the chosen sub-benchmarks, print their sections, optionally update RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_assigners", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--assigner", type=_assigners, default=list(ASSIGNERS), help=f"comma list of: {', '.join(ASSIGNERS)} (all)"
    )
    parser.add_argument("--inputs", type=Path, default=DEFAULT_OUT, help=f"folder of the inputs ({DEFAULT_OUT})")
    parser.add_argument("--input", type=Path, help="measure on this file instead of the sized inputs (a quick check)")
    parser.add_argument("--repeat", type=int, default=None, help="rounds (atss 3, fcos 5, sampler 4)")
    parser.add_argument(
        "--data",
        type=Path,
        nargs="*",
        default=sorted(DEFAULT_DATA.glob("*.json")),
        help="files for the float32 comparisons of atss and fcos (../shared/data/coco/*.json)",
    )
    parser.add_argument("--write", action="store_true", help=f"update the chosen sections of {RESULTS}")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error(f"--repeat: expected a count of at least 1; got {args.repeat}")
    for name in args.assigner:
        run, size = ASSIGNERS[name]
        path = args.input or args.inputs / SPECS[size].output
        if not path.is_file():
            sys.exit(f"bench_assigners: error: {path} not found; run python -m benchmarks.make_inputs --sizes {size}")
        command = " ".join(
            ["python -m benchmarks.bench_assigners --assigner", name]
            + ([f"--repeat {args.repeat}"] if args.repeat else [])
            + ([f"--input {path}"] if args.input else [])
            + ["--write"]
        )
        print(f"  {name} on {path}", file=sys.stderr, flush=True)
        text = run(path, args.data, args.repeat, command)
        print(text)
        if args.write:
            write_results(text, begin=_markers(name)[0], end=_markers(name)[1])
            print(f"\nwrote the {name} section of {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
