"""Speed and memory of anchor labeling (docs/design.md, 'Anchors'): the sparse path against a per-image dense baseline.

::

    python -m benchmarks.make_inputs                      # build the inputs once
    python -m benchmarks.bench_anchors [--sizes val,train] [--baseline-images N] [--write]

The baseline is the straightforward computation a detection library does in training, written
here independently of ``imbstat.anchors``: per image, in torch on the CPU in float64, generate the
image's anchors, compute the full [M, N] IoU matrix of its M GTs and N anchors (no batching, no
chunking), then mmdetection's ``MaxIoUAssigner`` (max/argmax over GTs, thresholds 0.5 / 0.4,
low-quality matching of every anchor tied at a GT's maximum, a later GT overwriting an earlier
one). It is timed on a sample of images spread over the val-sized input (the fastest of 5 passes:
the machine is shared, and the CPU other processes use meanwhile is measured from /proc/stat and
reported), and its foreground anchors, assigned GTs and IoUs, ignored anchors and per-GT maxima are
checked to be identical to those of imbstat's sparse path on the same images; the benchmark fails
if they are not.

Every measurement, the baseline included, runs in a fresh ``python -c`` child
(``harness.run_child``), so each starts cold (no cached anchor grids) and its peak RSS is its
own. Torch is imported before
the clock starts (its import time is reported apart); the whole CLI run includes everything.

Targets (the project's issue): on the COCO-val-sized input, on this 2-core CPU, the sparse path
≥ 200× faster per image than the baseline with identical results, and the whole ``anchor-iou``
run, start-up and load included, ≤ 10 s; on the COCO-train-sized input, the sparse path on the
CPU ≤ 60 s with peak RSS ≤ 4 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.harness import (
    CHILDREN,
    RESULTS,
    TAIL,
    Others,
    Runs,
    _mb,
    _s,
    _version,
    cli_command,
    describe_input,
    measured_on,
    run_child,
    run_cli,
    verdict,
    warm_cache,
    write_results,
)
from benchmarks.make_inputs import DEFAULT_OUT, SPECS, parse_sizes

BEGIN, END = "<!-- bench_anchors:begin -->", "<!-- bench_anchors:end -->"
PRESET = "retinanet"
TARGET_SPEEDUP = 200.0  # baseline s/image ÷ sparse s/image, COCO-val-sized
TARGET_CLI_SECONDS = 10.0  # whole anchor-iou run, COCO-val-sized
TARGET_TRAIN_SECONDS = 60.0  # anchor_stats(method="sparse"), COCO-train-sized, load excluded
TARGET_TRAIN_RSS_GB = 4.0  # peak RSS of that child, GB = 1e9 bytes
DISTURBED_CORES = 0.2  # other processes' mean CPU use above which the baseline's time is flagged
BASELINE_PASSES = 5  # passes over the sample; the fastest is the least disturbed
DENSE_IMAGES = 64  # images of the val-sized input for the dense-path reference
ROOT = Path(__file__).resolve().parents[1]


def child_mode(kind: str, *args: int) -> str:
    """Register the child that runs ``child(kind, path, *args)`` for ``harness.run_child``; its mode."""
    mode = ":".join(["anchors", kind, *map(str, args)])
    CHILDREN[mode] = (
        f"import json, sys\nsys.path.insert(0, {str(ROOT)!r})\nfrom benchmarks.bench_anchors import child\n"
        f"out = child({kind!r}, sys.argv[1], *{args!r})\n" + TAIL
    )
    return mode


# ---------------------------------------------------------------------------------------------
# Children (each in a fresh interpreter).


def _import_torch() -> float:
    start = time.perf_counter()
    import torch  # noqa: F401  (the engine imports it; keep its import out of the timed work)

    return time.perf_counter() - start


def child(kind: str, path: str, *args: int) -> dict[str, Any]:
    """One measurement in this (fresh) process; ``kind`` is baseline (``args``: images, passes), stats, match or dense.

    Every measurement runs in a child, the baseline included: a child's ``ru_maxrss`` starts from its
    parent's RSS (fork copies it, exec keeps the high-water mark), so the parent must stay small.
    """
    if kind == "baseline":
        result = run_baseline(Path(path), *args)
        if not result.identical:
            sys.exit("the baseline and the sparse path DIFFER:\n" + "\n".join(result.mismatches[:20]))
        return asdict(result)
    out: dict[str, float] = {"import torch": _import_torch()}
    import numpy as np

    import imbstat
    from imbstat.anchors.engine import batches, ground_truth, make_matcher
    from imbstat.anchors.generate import anchor_grid
    from imbstat.anchors.presets import PRESETS

    start = time.perf_counter()
    ds = imbstat.load(path)
    out["load"], out["images"] = time.perf_counter() - start, ds.num_images
    out["rss_before_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # torch and the dataset
    # One-time start-up, timed apart: importing numba and loading the compiled kernel from its on-disk
    # cache happen at the first call in a process (the whole-run row (3) includes them).
    start = time.perf_counter()
    imbstat.anchor_stats(ds.select_images(np.arange(ds.num_images) < 8), preset=PRESET, method="sparse")
    out["warm_up"] = time.perf_counter() - start
    if kind == "stats":  # what imbstat.anchor_stats costs, matching and statistics together
        start = time.perf_counter()
        imbstat.anchor_stats(ds, preset=PRESET, method="sparse", threads=1)  # the figure the speed-up uses
        out["anchor_stats"] = time.perf_counter() - start
        start = time.perf_counter()
        imbstat.anchor_stats(ds, preset=PRESET, method="sparse")  # labelling on every core, as by default
        out["anchor_stats_all_cores"] = time.perf_counter() - start
    elif kind == "match":  # the matching alone: engine batches + match_sparse, nothing accumulated
        preset = PRESETS[PRESET]
        start = time.perf_counter()
        gt = ground_truth(ds, preset)
        out["ground_truth"] = time.perf_counter() - start
        matcher = make_matcher(preset, "cpu", "sparse")
        out["batches"] = out["match_sparse"] = 0.0
        it = batches(gt, preset)
        while True:
            start = time.perf_counter()
            batch = next(it, None)
            out["batches"] += time.perf_counter() - start
            if batch is None:
                break
            start = time.perf_counter()
            matcher(batch)
            out["match_sparse"] += time.perf_counter() - start
        out["matching"] = out["ground_truth"] + out["batches"] + out["match_sparse"]
    elif kind == "dense":  # reference: the dense path on the CPU on a few images, against sparse
        keep = np.zeros(ds.num_images, bool)
        keep[spread(ds.num_images, DENSE_IMAGES)] = True
        sub = ds.select_images(keep)
        out["dense images"] = sub.num_images
        reports = {}
        for method in ("dense", "sparse"):
            anchor_grid.cache_clear()
            start = time.perf_counter()
            reports[method] = imbstat.anchor_stats(sub, preset=PRESET, method=method)
            out[method] = time.perf_counter() - start
        dense, sparse = (json.dumps(reports[m].to_dict(), sort_keys=True) for m in ("dense", "sparse"))
        out["identical"] = float(dense == sparse)
    else:
        raise ValueError(kind)
    return out


def spread(total: int, n: int) -> Any:
    """About ``n`` image rows spread evenly over ``0 .. total - 1``."""
    import numpy as np

    return np.unique(np.linspace(0, total - 1, min(n, total)).round().astype(np.int64))


# ---------------------------------------------------------------------------------------------
# The baseline, in this process.


def baseline_anchors(preset: Any, padded_w: int, padded_h: int) -> Any:
    """[N, 4] float64 anchors of one padded image, mmdetection's AnchorGenerator in torch.

    Per level: the cell's base anchors ``centre ± (w/2, h/2)`` (shapes ratio-major, then size),
    shifted to every cell of the ``ceil(padded / stride)`` grid, cells row-major.
    """
    import torch

    levels = []
    for stride in preset.strides:
        wh = torch.tensor(preset.shapes(stride), dtype=torch.float64)  # [S, 2] w = size/sqrt(r), h = size·sqrt(r)
        c = preset.center_offset * stride
        base = torch.cat([c - wh / 2, c + wh / 2], dim=1)  # [S, 4]
        rows, cols = -(-padded_h // stride), -(-padded_w // stride)
        ys = torch.arange(rows, dtype=torch.float64) * stride
        xs = torch.arange(cols, dtype=torch.float64) * stride
        yy, xx = torch.meshgrid(ys, xs, indexing="ij")
        shifts = torch.stack([xx.reshape(-1), yy.reshape(-1), xx.reshape(-1), yy.reshape(-1)], dim=1)  # [C, 4]
        levels.append((shifts[:, None, :] + base[None, :, :]).reshape(-1, 4))
    return torch.cat(levels)


@dataclass
class Labels:
    """One image's labels: foreground anchors (sorted), their GT and IoU, ignored anchors, per-GT maxima."""

    fg_anchor: Any
    fg_gt: Any
    fg_iou: Any
    ignored_anchor: Any
    gt_max: Any


def baseline_labels(anchors: Any, gts: Any, preset: Any) -> Labels:
    """mmdetection 2.x MaxIoUAssigner (gt_max_assign_all) on the full [M, N] IoU matrix of one image."""
    import torch

    n, m = len(anchors), len(gts)
    assigned = torch.full((n,), -1, dtype=torch.int64)  # -1 ignored, 0 background, j + 1 GT j
    if m == 0:
        assigned[:] = 0
        overlaps = torch.zeros((0, n), dtype=torch.float64)
        gt_max = torch.zeros(0, dtype=torch.float64)
    else:
        # IoU [M, N]: inter / (area_a + area_g - inter), inter = clip(min x2 - max x1) · clip(min y2 - max y1).
        lt = torch.max(gts[:, None, :2], anchors[None, :, :2])
        rb = torch.min(gts[:, None, 2:], anchors[None, :, 2:])
        wh = (rb - lt).clamp(min=0)
        inter = wh[..., 0] * wh[..., 1]
        area_a = (anchors[:, 2] - anchors[:, 0]) * (anchors[:, 3] - anchors[:, 1])
        area_g = (gts[:, 2] - gts[:, 0]) * (gts[:, 3] - gts[:, 1])
        overlaps = inter / (area_a[None, :] + area_g[:, None] - inter)
        max_overlaps, argmax_overlaps = overlaps.max(dim=0)  # ties: the first GT
        gt_max, _ = overlaps.max(dim=1)
        assigned[(max_overlaps >= 0) & (max_overlaps < preset.neg_iou)] = 0
        pos = max_overlaps >= preset.pos_iou
        assigned[pos] = argmax_overlaps[pos] + 1
        if preset.low_quality:
            for j in range(m):
                if gt_max[j] > 0 and gt_max[j] >= preset.min_pos_iou:
                    assigned[overlaps[j] == gt_max[j]] = j + 1
    fg = torch.nonzero(assigned > 0).flatten()
    fg_gt = assigned[fg] - 1
    return Labels(
        fg.numpy(),
        fg_gt.numpy(),
        overlaps[fg_gt, fg].numpy(),
        torch.nonzero(assigned < 0).flatten().numpy(),
        gt_max.numpy(),
    )


@dataclass
class Baseline:
    """The baseline on a sample of images, and whether it agrees with the sparse path."""

    images: int = 0  # per pass
    anchors: int = 0
    gts: int = 0
    seconds_anchors: list[float] = field(default_factory=list)  # per pass, all images
    seconds_labels: list[float] = field(default_factory=list)
    others: list[float] = field(default_factory=list)  # per pass, cores used by other processes meanwhile
    foreground: int = 0
    ignored: int = 0
    mismatches: list[str] = field(default_factory=list)
    threads: int = 0

    @property
    def passes(self) -> int:
        return len(self.seconds_labels)

    @property
    def totals(self) -> list[float]:
        return [a + b for a, b in zip(self.seconds_anchors, self.seconds_labels, strict=True)]

    @property
    def best(self) -> int:
        """The fastest pass: the least disturbed."""
        return self.totals.index(min(self.totals))

    def fastest(self, what: str) -> float:
        """Seconds per image of ``anchors``, ``labels`` or ``total`` in the fastest pass."""
        values = {"anchors": self.seconds_anchors, "labels": self.seconds_labels, "total": self.totals}[what]
        return values[self.best] / self.images

    @property
    def per_image(self) -> float:
        return self.fastest("total")

    @property
    def identical(self) -> bool:
        return not self.mismatches


def sparse_labels(ds: Any, gt: Any, preset: Any, wanted: set[int]) -> dict[int, Labels]:
    """The sparse path's labels of the ``wanted`` image rows, from the engine's batches (as anchor_stats runs it)."""
    from imbstat.anchors.engine import batches, make_matcher

    matcher = make_matcher(preset, "cpu", "sparse")
    found: dict[int, Labels] = {}
    for batch in batches(gt, preset):
        if not wanted.intersection(batch.images.tolist()):
            continue
        m = matcher(batch).sorted()
        for b, image in enumerate(batch.images.tolist()):
            if image in wanted:
                fg, ig = m.fg_image == b, m.ignored_image == b
                found[image] = Labels(
                    m.fg_anchor[fg],
                    m.fg_gt[fg],
                    m.fg_iou[fg],
                    m.ignored_anchor[ig],
                    m.gt_max_iou[b, : batch.num_gts[b]],
                )
    return found


def run_baseline(path: Path, n: int, passes: int) -> Baseline:
    """Time the baseline on ``n`` images spread over ``path`` (``passes`` times) and compare it with sparse."""
    import numpy as np
    import torch

    import imbstat
    from imbstat.anchors.engine import ground_truth
    from imbstat.anchors.generate import anchor_grid
    from imbstat.anchors.presets import PRESETS

    preset = PRESETS[PRESET]
    ds = imbstat.load(path)
    gt = ground_truth(ds, preset)  # resized, clipped GTs without crowd, in dataset order per image
    sample = spread(ds.num_images, n).tolist()
    result = Baseline(threads=torch.get_num_threads())
    labels: dict[int, Labels] = {}
    for _ in range(passes):
        result.seconds_anchors.append(0.0)
        result.seconds_labels.append(0.0)
        others = Others()
        for image in sample:
            pw, ph = int(gt.padded_width[image]), int(gt.padded_height[image])
            gts = torch.from_numpy(gt.xyxy_of(np.arange(gt.start[image], gt.start[image + 1])))
            t0 = time.perf_counter()
            anchors = baseline_anchors(preset, pw, ph)
            t1 = time.perf_counter()
            labels[image] = baseline_labels(anchors, gts, preset)
            t2 = time.perf_counter()
            result.seconds_anchors[-1] += t1 - t0
            result.seconds_labels[-1] += t2 - t1
        result.others.append(others.cores())
    for image in sample:
        pw, ph = int(gt.padded_width[image]), int(gt.padded_height[image])
        result.images += 1
        result.anchors += len(anchor_grid(preset, pw, ph))
        result.gts += int(gt.start[image + 1] - gt.start[image])
        if not np.array_equal(baseline_anchors(preset, pw, ph).numpy(), anchor_grid(preset, pw, ph).xyxy):
            result.mismatches.append(f"image row {image}: the baseline's anchors differ from anchor_grid's")

    sparse = sparse_labels(ds, gt, preset, set(sample))
    for image in sample:
        ours, theirs = labels[image], sparse.get(image)
        result.foreground += len(ours.fg_anchor)
        result.ignored += len(ours.ignored_anchor)
        if theirs is None:
            result.mismatches.append(f"image row {image}: not labelled by the sparse path")
            continue
        for name in ("fg_anchor", "fg_gt", "fg_iou", "ignored_anchor", "gt_max"):
            a, b = getattr(ours, name), getattr(theirs, name)
            if a.shape != b.shape or not np.array_equal(a, b):
                result.mismatches.append(f"image row {image}: {name} differs ({len(a)} baseline vs {len(b)} sparse)")
    return result


# ---------------------------------------------------------------------------------------------
# Driver and report.


@dataclass
class Size:
    """Every measurement on one input."""

    runs: Runs
    baseline: Baseline | None = None
    cli: list[str] = field(default_factory=list)
    cli_is_stand_in: bool = False
    others: dict[str, float] = field(default_factory=dict)  # CPU cores used by other processes meanwhile


def anchor_cli_command(path: Path) -> tuple[list[str], bool]:
    """``imbstat anchor-iou PATH --json /dev/null --quiet``, or the stand-in while the command is absent."""
    command = cli_command(path)
    command[command.index("class-dist")] = "anchor-iou"
    probe = subprocess.run([*command[: command.index("anchor-iou") + 1], "--help"], capture_output=True, text=True)
    if probe.returncode == 0:
        return [*command, *(["--quiet"] if "--quiet" in probe.stdout else [])], False
    code = "import sys, imbstat; ds = imbstat.load(sys.argv[1]); imbstat.anchor_stats(ds)"
    return [sys.executable, "-c", code, str(path)], True


def watched(run: Any, *args: Any) -> dict[str, float]:
    """``run(*args)``'s result, with ``others``: the cores other processes used meanwhile."""
    others = Others()
    result = run(*args)
    return {**result, "others": others.cores()}


def measure(size: str, path: Path, repeat: int, baseline_images: int) -> Size:
    """All measurements on one input; children interleaved within a round, as in bench_dataset."""
    result = Size(Runs(size, path))
    warm_cache(path)
    whole = Others()
    if size == "val":
        print(f"  {size}: baseline on {baseline_images} images", file=sys.stderr, flush=True)
        got = run_child(child_mode("baseline", baseline_images, BASELINE_PASSES), path)  # exits if they differ
        result.baseline = Baseline(**{k: v for k, v in got.items() if k in Baseline.__dataclass_fields__})
        result.runs.add("dense", watched(run_child, child_mode("dense"), path))
        if not result.runs.values["dense:identical"][0]:
            sys.exit(f"bench_anchors: anchor_stats dense and sparse DIFFER on {DENSE_IMAGES} images of {path}")
        result.cli, result.cli_is_stand_in = anchor_cli_command(path)
    for i in range(repeat):
        print(f"  {size}: round {i + 1}/{repeat}", file=sys.stderr, flush=True)
        result.runs.add("stats", watched(run_child, child_mode("stats"), path))
        result.runs.add("match", watched(run_child, child_mode("match"), path))
        if result.cli:
            result.runs.add("cli", watched(run_cli, path, result.cli))
    result.others["all"] = whole.cores()
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3f} ms" if seconds < 0.01 else f"{seconds * 1e3:.1f} ms"


def _x(ratio: float) -> str:
    return f"{ratio:,.0f}×"


def _cli_label(size: Size) -> str:
    if size.cli_is_stand_in:
        return '**stand-in** `python -c "import imbstat; ds = imbstat.load(P); imbstat.anchor_stats(ds)"`, wall'
    return (
        "`"
        + " ".join(["imbstat", *size.cli[size.cli.index("anchor-iou") :]]).replace(str(size.runs.path), "PATH")
        + "`, wall"
    )


def results_table(sizes: Sequence[Size]) -> str:
    """Markdown: one row per measurement, one column per input."""
    rows = [
        "| measurement | " + " | ".join(f"{s.runs.size}-sized" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    dash = "—"

    def row(label: str, cell: Any) -> None:
        cells = []
        for s in sizes:
            try:
                cells.append(cell(s))
            except (KeyError, AttributeError, TypeError, ZeroDivisionError):
                cells.append(dash)
        if any(c != dash for c in cells):
            rows.append(f"| {label} | " + " | ".join(cells) + " |")

    def med(s: Size, key: str) -> float:
        return s.runs.median(key)

    def images(s: Size) -> float:
        return med(s, "stats:images")

    row("input", lambda s: describe_input(s.runs))
    row("repeats (median of)", lambda s: str(len(s.runs.values["stats:anchor_stats"])))
    row("CPU cores used by other processes during the column's measurements (mean)", lambda s: f"{s.others['all']:.2f}")
    row("(1) baseline: images sampled (spread over the input)", lambda s: f"{s.baseline.images:,}")
    row(
        "(1) baseline: anchors, GTs per image (mean)",
        lambda s: f"{s.baseline.anchors / s.baseline.images:,.0f}, {s.baseline.gts / s.baseline.images:.1f}",
    )
    row(
        "(1) baseline: each pass, per image (cores used by other processes meanwhile)",
        lambda s: ", ".join(
            f"{_ms(t / s.baseline.images)} ({o:.2f})" for t, o in zip(s.baseline.totals, s.baseline.others, strict=True)
        ),
    )
    row("(1) baseline: generate anchors, per image", lambda s: _ms(s.baseline.fastest("anchors")))
    row("(1) baseline: IoU [M, N] + labels, per image", lambda s: _ms(s.baseline.fastest("labels")))
    row("(1) **baseline, per image**", lambda s: f"**{_ms(s.baseline.per_image)}**")
    row(
        "(1) identical to the sparse path (fg anchors, GT, IoU; ignored; GT max)",
        lambda s: (
            f"{'yes' if s.baseline.identical else '**NO**'} ({s.baseline.foreground:,} fg, "
            f"{s.baseline.ignored:,} ignored anchors, {s.baseline.gts:,} GTs)"
        ),
    )
    row("`import torch` (excluded from the times below)", lambda s: _s(med(s, "stats:import torch")))
    row("`imbstat.load(path)` (excluded)", lambda s: _s(med(s, "stats:load")))
    row("(2) one-time start-up before it: numba import and kernel cache load (a call on 8 images)",
        lambda s: _s(med(s, "stats:warm_up")))  # fmt: skip
    row('(2) **`anchor_stats(ds, method="sparse", threads=1)`**', lambda s: f"**{_s(med(s, 'stats:anchor_stats'))}**")
    row(f"(2) the same labelling on {os.cpu_count()} threads (the default)",
        lambda s: _s(med(s, "stats:anchor_stats_all_cores")))  # fmt: skip
    row("(2) per image", lambda s: _ms(med(s, "stats:anchor_stats") / images(s)))
    row(
        "(2) **speed-up vs baseline, per image**",
        lambda s: f"**{_x(s.baseline.per_image / (med(s, 'stats:anchor_stats') / images(s)))}**",
    )
    row("(2) matching alone: `ground_truth`", lambda s: _s(med(s, "match:ground_truth")))
    row("(2) matching alone: `batches` (incl. anchor grids)", lambda s: _s(med(s, "match:batches")))
    row("(2) matching alone: `match_sparse`", lambda s: _s(med(s, "match:match_sparse")))
    row("(2) matching alone, total", lambda s: _s(med(s, "match:matching")))
    row("(2) matching alone, per image", lambda s: _ms(med(s, "match:matching") / images(s)))
    row(
        "(2) matching alone, speed-up vs baseline",
        lambda s: _x(s.baseline.per_image / (med(s, "match:matching") / images(s))),
    )
    row(
        "(2) statistics accumulation (difference)",
        lambda s: _s(med(s, "stats:anchor_stats") - med(s, "match:matching")),
    )
    row("(2) peak RSS after `import torch` + load", lambda s: _mb(s.runs.peak("stats:rss_before_kib")))
    row(
        "(2), (3) cores used by other processes meanwhile (median): `anchor_stats`, matching, whole run",
        lambda s: ", ".join(
            f"{med(s, f'{k}:others'):.2f}" for k in ("stats", "match", "cli") if f"{k}:others" in s.runs.values
        ),
    )
    row("(2) **peak RSS** of the `anchor_stats` child", lambda s: f"**{_mb(s.runs.peak('stats:rss_kib'))}**")
    row(
        "(3) whole run: " + " / ".join(sorted({_cli_label(s) for s in sizes if s.cli})),
        lambda s: _s(med(s, "cli:wall")),
    )
    row("(3) peak RSS", lambda s: _mb(s.runs.peak("cli:rss_kib")))
    row("(5) cores used by other processes meanwhile", lambda s: f"{med(s, 'dense:others'):.2f}")
    row(
        f'(5) dense path on the CPU, {DENSE_IMAGES} images: `anchor_stats(method="dense")`',
        lambda s: f"{_s(med(s, 'dense:dense'))} ({_ms(med(s, 'dense:dense') / med(s, 'dense:dense images'))}/image)",
    )
    row(
        f"(5) sparse, same {DENSE_IMAGES} images",
        lambda s: f"{_s(med(s, 'dense:sparse'))} ({_ms(med(s, 'dense:sparse') / med(s, 'dense:dense images'))}/image)",
    )
    row(
        "(5) dense and sparse reports identical",
        lambda s: "yes" if s.runs.values["dense:identical"][0] else "**NO**",
    )
    return "\n".join(rows)


def targets_table(sizes: Sequence[Size]) -> str:
    """Markdown: each target of the issue, the measured value and PASS/FAIL."""
    rows = ["| target | measured | result |", "|---|---:|---|"]
    for s in sizes:
        r = s.runs
        per_image = r.median("stats:anchor_stats") / r.median("stats:images")
        if s.baseline is not None:
            speedup = s.baseline.per_image / per_image
            rows.append(
                f"| {r.size}-sized: sparse ≥ {TARGET_SPEEDUP:g}× faster per image than the baseline | {_x(speedup)} "
                f"({_ms(per_image)} vs {_ms(s.baseline.per_image)}) | {verdict(speedup >= TARGET_SPEEDUP)}"
                + (
                    f" (unreliable: other processes used {busy:.2f} cores during the baseline's fastest pass) |"
                    if (busy := s.baseline.others[s.baseline.best]) > DISTURBED_CORES
                    else " |"
                )
            )
            rows.append(
                f"| {r.size}-sized: identical results ({s.baseline.images} images) | "
                f"{'yes' if s.baseline.identical else 'no'} | {verdict(s.baseline.identical)} |"
            )
        if s.cli:
            wall = r.median("cli:wall")
            what = "stand-in for `anchor-iou` (command absent)" if s.cli_is_stand_in else "`anchor-iou`"
            rows.append(
                f"| {r.size}-sized: whole {what} run ≤ {TARGET_CLI_SECONDS:g} s | {_s(wall)} | "
                f"{verdict(wall <= TARGET_CLI_SECONDS)}{' (stand-in)' if s.cli_is_stand_in else ''} |"
            )
        if r.size == "train":
            total, rss_gb = r.median("stats:anchor_stats"), r.peak("stats:rss_kib") * 1024 / 1e9
            rows.append(
                f"| train-sized: sparse CPU ≤ {TARGET_TRAIN_SECONDS:g} s (load excluded: {_s(r.median('stats:load'))}) "
                f"| {_s(total)} | {verdict(total <= TARGET_TRAIN_SECONDS)} |"
            )
            rows.append(
                f"| train-sized: peak RSS ≤ {TARGET_TRAIN_RSS_GB:g} GB | {rss_gb:.2f} GB | "
                f"{verdict(rss_gb <= TARGET_TRAIN_RSS_GB)} |"
            )
    return "\n".join(rows)


def section(sizes: Sequence[Size], command: str) -> str:
    """The Markdown section of this benchmark in RESULTS.md, between its markers."""
    threads = next((s.baseline.threads for s in sizes if s.baseline), None)
    notes = []
    if any(s.cli_is_stand_in for s in sizes):
        notes += [
            "",
            "**(3) is a stand-in:** the `anchor-iou` command did not exist when this ran, so (3) times",
            '`python -c "import imbstat; ds = imbstat.load(P); imbstat.anchor_stats(ds)"` (start-up, imports, load,',
            "matching and statistics; no report rendering or JSON writing).",
        ]
    return "\n".join(
        [
            BEGIN,
            "## Anchor labeling (`benchmarks/bench_anchors.py`)",
            "",
            measured_on("numpy", "torch")
            + (f" ({threads} threads)" if threads else "")
            + f", imbstat {_version('imbstat')}. Preset `{PRESET}`.",
            "",
            "```sh",
            "python -m benchmarks.make_inputs --sizes " + ",".join(s.runs.size for s in sizes),
            command,
            "```",
            "",
            "(1) The **baseline** is written in the benchmark, independently of `imbstat.anchors`: per image, in",
            "torch on the CPU in float64, the image's anchors (mmdetection's AnchorGenerator), the full [M, N] IoU",
            "matrix of its GTs × anchors (no batching, no chunking), max/argmax over GTs, thresholds 0.5 / 0.4 and",
            "low-quality matching with ties (`gt_max_assign_all`, later GTs overwrite), as docs/design.md defines. It",
            "is timed on images spread over the input (GTs from `engine.ground_truth`, not timed) and checked, image",
            "by image, against the sparse path run as `anchor_stats` runs it (batches of 32); the benchmark stops if",
            "they differ. Its time is that of the fastest pass over the sample (the least disturbed, so the speed-up",
            "is a lower bound). (2), (5) Fresh `python -c` children: `import torch` and `imbstat.load` before the",
            "clock starts, no cached anchor grids; peak RSS = `ru_maxrss` of the child (interpreter, torch and data",
            "included). (3) The wall time of the whole process, start-up and load included. Median of the repeats;",
            "RSS is the maximum. MB = 10⁶ bytes. The val-sized input is 79 distinct images ×64, so the sample repeats",
            'images. The machine is shared: "CPU cores used by other processes" (from /proc/stat, less this run\'s',
            "own) says how much they competed for its 2 cores; that slows torch's 2-thread baseline far more than",
            "the sparse path, timed on one thread for the speed-up, so a baseline pass disturbed by them inflates it.",
            *notes,
            "",
            results_table(sizes),
            "",
            "### Targets",
            "",
            targets_table(sizes),
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    """Command line: measure the requested inputs, print the tables, optionally update RESULTS.md."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_anchors", description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=parse_sizes, default=list(SPECS), help="comma list of: val, train")
    parser.add_argument("--inputs", type=Path, default=DEFAULT_OUT, help=f"folder of the inputs ({DEFAULT_OUT})")
    parser.add_argument("--repeat", type=int, default=None, help="rounds per input (default: val 3, train 1)")
    parser.add_argument("--baseline-images", type=int, default=200, help="images the baseline is timed on (200)")
    parser.add_argument("--write", action="store_true", help=f"update this benchmark's section of {RESULTS}")
    args = parser.parse_args(argv)

    sizes = []
    for size in args.sizes:
        path = args.inputs / SPECS[size].output
        if not path.is_file():
            sys.exit(f"bench_anchors: error: {path} not found; run python -m benchmarks.make_inputs --sizes {size}")
        sizes.append(measure(size, path, args.repeat or (3 if size == "val" else 1), args.baseline_images))

    command = "python -m benchmarks.bench_anchors " + " ".join(
        ["--sizes", ",".join(args.sizes)]
        + (["--repeat", str(args.repeat)] if args.repeat else [])
        + (["--baseline-images", str(args.baseline_images)] if args.baseline_images != 200 else [])
        + ["--write"]
    )
    text = section(sizes, command)
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)
        print(f"\nwrote {RESULTS}", file=sys.stderr)


if __name__ == "__main__":
    main()
