"""imbstat against a named peer, torchvision's own per-image loop, side by side in one run (not part of CI).

    python -m benchmarks.bench_peer VISION_SRC [--repeat N] [--write]
    python -m benchmarks.bench_peer VISION_SRC --src OLD_TREE --no-peer   # the same rows for another imbstat

The peer is what a torchvision user would write to count labelled anchors: ``vs_torchvision``'s loop,
torchvision's own ``GeneralizedRCNNTransform``, ``AnchorGenerator``, ``box_iou`` and
``Matcher(..., allow_low_quality_matches=True)`` (loaded from the source tree VISION_SRC, the rest of
torchvision stubbed), run image by image on a COCO file read with the standard library's ``json``.
For each input (``coco2017_val_mini.json``, ``coco2017_train_mini.json``) and preset
(``torchvision-retinanet``, ``torchvision-rpn``), interleaved within each round:

- whole process (a fresh child, start-up, imports and the JSON read included): the peer's script;
  ``imbstat anchor-iou PATH --preset P --quiet --json /dev/null`` (sparse, the default on the CPU);
  the same with ``--method dense``;
- labelling only (in a child, after a first call that loads kernels and imports): the peer's
  anchors + ``box_iou`` + ``Matcher`` per image (its transform, which resizes a zero image to get the
  padded size, timed apart and left out); ``imbstat.anchor_stats(ds, preset=P)`` (labelling and every
  anchor statistic) with ``method="sparse"`` and ``method="dense"``.

Each figure is the median over the rounds of wall time, CPU time (user + system of the child, all its
threads) and peak RSS (``ru_maxrss`` of the child, from ``wait4``); the cores other processes used
meanwhile are reported because the machine is shared. Every child must label the same
foreground / background / ignored totals, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.harness import Others, measured_on, run_process, write_results

BEGIN, END = "<!-- bench_peer:begin -->", "<!-- bench_peer:end -->"
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "coco"
INPUTS = ("coco2017_val_mini.json", "coco2017_train_mini.json")
PRESETS = ("torchvision-retinanet", "torchvision-rpn")


def peer_child(vision: Path, path: Path, rpn: bool, threads: int) -> dict[str, Any]:
    """In the child: torchvision's loop over ``path`` (read by ``json``) on ``threads`` torch threads
    (0: torch's default); its totals and seconds."""
    import torch

    from benchmarks.conformance.vs_torchvision import _load, plain_coco, torchvision_counts

    if threads:
        torch.set_num_threads(threads)
    tv, version = _load(vision / "torchvision")
    per_image, _, seconds = torchvision_counts(tv, plain_coco(path), rpn)
    return {"totals": per_image.sum(0).tolist(), "torchvision_version": version, **seconds}


# imbstat's labelling in a child, with only imbstat and the standard library (``--src`` may be an older tree):
# anchor_stats after a warm-up call on 8 images; argv: PATH PRESET METHOD.
IMBSTAT_CHILD = """
import json, sys, time
import numpy as np
import imbstat
path, preset, method = sys.argv[1:4]
ds = imbstat.load(path, cache=False)
imbstat.anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=preset, method=method)
start, cpu = time.perf_counter(), time.process_time()
result = imbstat.anchor_stats(ds, preset=preset, method=method)
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
totals = [result.totals[k] for k in ("foreground", "background", "ignored")]
print(json.dumps({"totals": totals, "labels": seconds, "labels_cpu": cpu}))
"""


def run(args: list[str], src: Path) -> dict[str, Any]:
    """Wall, CPU (user + system) and peak RSS of ``python ARGS`` in a fresh process, and its JSON stdout.

    ``src`` is put first on its path and is its working directory: the tree it imports from.
    """
    env = {**os.environ, "PYTHONPATH": str(src), "MPLBACKEND": "Agg"}
    others = Others()
    done = run_process([sys.executable, *args], env=env, cwd=src)  # exits with its stderr if it fails
    figures = {"wall": done.wall, "cpu": done.cpu, "rss_mb": done.rss_kib * 1024 / 1e6, "others": others.cores()}
    last = done.stdout.strip().rsplit("\n", 1)[-1]
    return figures | (json.loads(last) if last.startswith("{") else {})


def cli_totals(path: Path) -> list[int]:
    """fg / bg / ignored totals of an ``anchor-iou --json`` file."""
    anchors = json.loads(path.read_text())["anchors"]
    return [anchors[k] for k in ("foreground", "background", "ignored")]


Found = dict[tuple[str, str], dict[str, list[Any]]]  # {(input, preset): {child: [figures per round]}}
ROWS = {  # key: (what, how)
    "peer": ("torchvision's per-image loop", "whole process"),
    "cli-sparse": ("`imbstat anchor-iou` (sparse, the CPU default)", "whole process"),
    "cli-dense": ("`imbstat anchor-iou --method dense`", "whole process"),
    "peer:labels": ("torchvision: anchors + `box_iou` + `Matcher`, per image", "labelling only"),
    "peer:transform": ("torchvision: its transform (resize a zero image, pad), left out above", "labelling only"),
    "sparse": ("`anchor_stats(ds, preset=P)` (sparse; labelling and every statistic)", "labelling only"),
    "dense": ('`anchor_stats(ds, preset=P, method="dense")`', "labelling only"),
}


def measure(vision: Path, src: Path, repeat: int, peer: bool, threads: int, methods: list[str],
            inputs: Sequence[str] = INPUTS, presets: Sequence[str] = PRESETS) -> Found:  # fmt: skip
    """{(input, preset): {key: [figures per round]}}, the children of a round interleaved."""
    found: Found = {}
    me = ["-m", "benchmarks.bench_peer"]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        for round_ in range(repeat):
            for name in inputs:
                path = DATA / name
                for preset in presets:
                    print(f"round {round_ + 1}/{repeat}: {name} {preset}", file=sys.stderr, flush=True)
                    cell = found.setdefault((name, preset), {})
                    rpn = ["--rpn"] if preset.endswith("rpn") else []
                    children = {
                        "cli-sparse": ["-m", "imbstat", "anchor-iou", str(path), "--preset", preset, "--quiet",
                                       "--json", str(out)],
                        "cli-dense": ["-m", "imbstat", "anchor-iou", str(path), "--preset", preset, "--quiet",
                                      "--method", "dense", "--json", str(out)],
                        "sparse": ["-c", IMBSTAT_CHILD, str(path), preset, "sparse"],
                        "dense": ["-c", IMBSTAT_CHILD, str(path), preset, "dense"],
                    }  # fmt: skip
                    children = {k: v for k, v in children.items() if k.split("-")[-1] in methods}
                    if peer:
                        peer_args = [str(path), str(vision), "--peer-threads", str(threads), *rpn]
                        children["peer"] = [*me, "--child", "peer", *peer_args]
                    for key, args in children.items():
                        got = run(args, ROOT if key == "peer" else src)
                        if key.startswith("cli"):
                            got["totals"] = cli_totals(out)
                        cell.setdefault(key, []).append(got)
                    totals = {key: tuple(runs[-1]["totals"]) for key, runs in cell.items()}
                    if len(set(totals.values())) != 1:
                        sys.exit(f"bench_peer: the totals differ on {name} {preset}: {totals}")
    return found


def _median(runs: list[dict[str, Any]], what: str) -> float:
    return statistics.median(r[what] for r in runs)


def table(found: Found) -> str:
    """Markdown: one row per (input, preset, measurement)."""
    lines = [
        "| input | preset | how | what | wall | CPU | peak RSS | other processes (cores) | peer ÷ this (wall; CPU) |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for (name, preset), cell in found.items():
        for key, (what, how) in ROWS.items():
            source = key.split(":")[0]
            if source not in cell:
                continue
            runs = cell[source]
            field = key.split(":")[1] if ":" in key else ("labels" if how == "labelling only" else "wall")
            wall = _median(runs, field)
            child = how == "whole process"
            cpu_field = "cpu" if child else f"{field}_cpu"
            cpu = f"{_median(runs, cpu_field):.2f} s" if cpu_field in runs[0] else ""
            rss = f"{_median(runs, 'rss_mb'):,.0f} MB" if child or key in ("sparse", "dense") else ""
            ratio = ""
            if "peer" in cell and source != "peer":
                peer_key = "wall" if child else "labels"
                ratio = f"{_median(cell['peer'], peer_key) / wall:,.1f}×"
                peer_cpu = "cpu" if child else "labels_cpu"
                ratio += f"; {_median(cell['peer'], peer_cpu) / _median(runs, cpu_field):,.1f}×"
            others = f"{_median(runs, 'others'):.2f}"
            lines.append(
                f"| {name} | `{preset}` | {how} | {what} | {wall:.3f} s | {cpu} | {rss} | {others} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_peer", description=__doc__.split("\n")[0])
    parser.add_argument("vision", type=Path, nargs="?", help="torchvision source tree (holds torchvision/)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; figures are medians (3)")
    parser.add_argument("--src", type=Path, default=ROOT, help="the imbstat tree to measure (this one)")
    parser.add_argument("--no-peer", action="store_true", help="imbstat's rows only")
    parser.add_argument("--methods", type=lambda v: v.split(","), default=["sparse", "dense"], help="imbstat's")
    listed = lambda v: v.split(",")  # noqa: E731
    parser.add_argument("--inputs", type=listed, default=list(INPUTS), help="files of ../shared/data/coco")
    parser.add_argument("--presets", type=listed, default=list(PRESETS), help="(the peer's: torchvision's)")
    parser.add_argument("--peer-threads", type=int, default=1, help="torch threads of the peer (0: default; 1)")
    parser.add_argument("--write", action="store_true", help="replace this benchmark's section of RESULTS.md")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--rpn", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        path, vision = Path(args.child[1]), Path(args.child[2])
        print(json.dumps(peer_child(vision, path, args.rpn, args.peer_threads)))
        return
    if not args.no_peer and args.vision is None:
        parser.error("give the torchvision source tree, or --no-peer")
    if not args.no_peer and set(args.presets) - set(PRESETS):
        parser.error(f"the peer is torchvision's loop: --presets among {', '.join(PRESETS)}, or --no-peer")
    found = measure(args.vision, args.src.resolve(), args.repeat, not args.no_peer, args.peer_threads, args.methods,
                    args.inputs, args.presets)  # fmt: skip
    text = table(found)
    print(text)
    if args.write:
        command = " ".join(["python -m benchmarks.bench_peer", *(argv if argv is not None else sys.argv[1:])])
        header = (
            f"## imbstat against torchvision's per-image loop (`benchmarks/bench_peer.py`)\n\n"
            f"{measured_on()}, torch {_torch_version()}, "
            f"the peer on {args.peer_threads or 'the default'} torch thread(s); "
            f"imbstat {'from this checkout' if args.src.resolve() == ROOT else f'from `{args.src}`'}. "
            f"Median of {args.repeat} rounds.\n\n"
            f"```sh\n{command}\n```\n"
        )
        write_results(f"{BEGIN}\n{header}\n{text}\n{END}", begin=BEGIN, end=END)


def _torch_version() -> str:
    from importlib.metadata import version

    return version("torch")


if __name__ == "__main__":
    main()
