"""Time the exact 2-D Wasserstein score (POT's network simplex) on G×G maps.

    python -m benchmarks.bench_scores [--write]

Target (issue: scores): a 64×64 map scored in under 2 s. Maps: uniform noise
(surplus and deficit cells interleaved: short transport), a centred Gaussian
like real centre maps (long transport from the middle to the rim: the slow
case), and a point mass in a corner (a single source).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.harness import measured_on, write_results
from imbstat.scores import score_2d

BEGIN, END = "<!-- bench_scores:begin -->", "<!-- bench_scores:end -->"
TARGET_SECONDS = 2.0


def maps(grid: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[:grid, :grid]
    corner = np.zeros((grid, grid))
    corner[0, 0] = 1.0
    return {
        "uniform noise": rng.random((grid, grid)),
        "centred Gaussian (sigma G/6)": np.exp(-((x - grid / 2) ** 2 + (y - grid / 2) ** 2) / (2 * (grid / 6) ** 2)),
        "corner point mass": corner,
    }


def measure(repeat: int) -> list[tuple[int, str, float, float]]:
    score_2d(np.ones((4, 4)))  # import POT outside the clock
    rows = []
    for grid in (32, 64):
        for name, m in maps(grid).items():
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                value = score_2d(m)
                times.append(time.perf_counter() - start)
            rows.append((grid, name, value, float(np.median(times))))
    return rows


def section(rows: list[tuple[int, str, float, float]], repeat: int) -> str:
    worst = max(t for g, _, _, t in rows if g == 64)
    lines = [
        BEGIN,
        "## 2-D Wasserstein score (`benchmarks/bench_scores.py`)",
        "",
        measured_on("numpy")
        + f", POT {_pot()}. `python -m benchmarks.bench_scores --write`; median of {repeat} runs, POT imported first.",
        "",
        "| grid | map | score | time |",
        "|---:|---|---:|---:|",
        *[f"| {g}×{g} | {name} | {value:.4f} | {t:.3f} s |" for g, name, value, t in rows],
        "",
        f"Target: a 64×64 map in under {TARGET_SECONDS:g} s — slowest measured {worst:.2f} s: "
        f"**{'PASS' if worst < TARGET_SECONDS else 'FAIL'}**.",
        END,
    ]
    return "\n".join(lines)


def _pot() -> str:
    import ot

    return ot.__version__


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scores", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = parser.parse_args(argv)
    text = section(measure(args.repeat), args.repeat)
    print(text)
    if args.write:
        write_results(text, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
