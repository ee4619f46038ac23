"""Every JSON document and CSV table the program writes, on the built-in sample and ../shared/data.

A refactoring that must not change any number or field (issue: one section registry) is checked by
writing these outputs before and after it and comparing them:

    python -m benchmarks.golden_outputs write /tmp/golden-before     # on the old code
    python -m benchmarks.golden_outputs check /tmp/golden-before     # on the new code: exit 1 on a difference

Timings (``*_seconds``) are left out and the scratch folder's path is replaced by ``<work>``; the
rest is compared byte for byte. Figures (PNG) and the HTML page are not compared (matplotlib's
bytes are not ours).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from typer.testing import CliRunner

from imbstat.cli import app
from imbstat.data.sample import write_sample

SHARED = (Path(__file__).resolve().parents[2] / "shared" / "data" / "coco").resolve()  # a linked shared/ too
AUDIT_CONFIG = Path(__file__).resolve().parents[1] / "examples" / "audit.toml"


def _runs(work: Path) -> list[tuple[str, list[str]]]:
    """(name, arguments) of each command whose outputs are kept; ``-`` JSON goes to stdout."""
    sample = write_sample(work / "sample.json")
    datasets = {"sample": sample}
    if SHARED.is_dir():
        datasets |= {"val": SHARED / "coco2017_val_mini.json", "train": SHARED / "coco2017_train_mini.json"}
    runs: list[tuple[str, list[str]]] = [
        ("demo", ["demo", "--out", str(work / "demo")]),
        ("anchors-retinanet", ["anchors", "--preset", "retinanet", "--image-size", "640x480", "--json", "-"]),
        ("anchors-rpn", ["anchors", "--preset", "rpn", "--image-size", "1333x800", "--json", "-"]),
    ]
    for name, path in datasets.items():
        p = str(path)
        runs += [
            (f"{name}-info", ["info", p, "--json", "-"]),
            (f"{name}-validate", ["validate", p, "--json", "-"]),
            (f"{name}-class-dist", ["class-dist", p, "--json", "-"]),
            (f"{name}-class-dist-crowd", ["class-dist", p, "--include-crowd", "--json", "-"]),
            (f"{name}-scale", ["scale", p, "--json", "-"]),
            (f"{name}-location", ["location", p, "--per-class", "--grid", "16", "--json", "-"]),
            (f"{name}-anchor-iou", ["anchor-iou", p, "--quiet", "--json", "-", "--out", str(work / f"{name}-anchors")]),
            (f"{name}-anchor-iou-rpn", ["anchor-iou", p, "--preset", "rpn", "--quiet", "--json", "-"]),
            (f"{name}-summary", ["summary", p, "--anchors", "--quiet", "--json", "-"]),
            (f"{name}-report", ["report", p, "--anchors", "--quiet", "--out", str(work / f"{name}-report")]),
            (f"{name}-audit", ["audit", p, "--config", str(AUDIT_CONFIG), "--baseline", p, "--quiet"]),
        ]
        for i in range(2):
            runs.append((f"{name}-shard{i}", ["report", p, "--anchors", "--quiet", "--shard", f"{i}/2",
                                             "--out", str(work / f"{name}-shard{i}")]))  # fmt: skip
        shards = [str(work / f"{name}-shard{i}" / "report.json") for i in range(2)]
        runs.append((f"{name}-merge", ["merge", *shards, "--json", "-"]))
    if "val" in datasets:
        runs.append(("compare", ["compare", str(datasets["train"]), str(datasets["val"]), "--json", "-"]))
        runs.append(("compare-report", ["compare", str(work / "train-report" / "report.json"),
                                        str(datasets["val"]), "--anchors", "--quiet", "--json", "-"]))  # fmt: skip
    return runs


def _normal(text: str, work: Path) -> str:
    text = text.replace(str(work), "<work>")
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    return json.dumps(_drop_timings(doc), indent=1, sort_keys=True) + "\n"


def _drop_timings(value: object) -> object:
    if isinstance(value, dict):
        return {k: _drop_timings(v) for k, v in value.items() if not k.endswith("seconds")}
    if isinstance(value, list):
        return [_drop_timings(v) for v in value]
    return value


def write(out: Path) -> None:
    """Run every command in a scratch folder and keep its normalised outputs under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        for name, args in _runs(work):
            result = runner.invoke(app, args)
            # the scratch folder's name is random: terminal text names it too (paths in tables and notes)
            text = re.sub(r"\d+\.\d+ s\b", "<t> s", result.stdout).replace(str(work), "<work>")
            kept = f"exit {result.exit_code}\n" + text
            (out / f"{name}.stdout").write_text(_normal(result.stdout, work) if "-" in args else kept)
            if result.exit_code not in (0, 1):
                raise SystemExit(f"{name}: exit {result.exit_code}: {result.stderr or result.output}")
        for file in sorted(work.rglob("*")):
            if file.suffix in (".json", ".csv") and file.name != "sample.json":
                name = str(file.relative_to(work)).replace(os.sep, "__")
                (out / name).write_text(_normal(file.read_text(), work))


def check(reference: Path) -> int:
    """Write the outputs again and compare with ``reference``; the number of files that differ."""
    with tempfile.TemporaryDirectory() as fresh:
        now = Path(fresh)
        write(now)
        names = sorted({p.name for p in reference.iterdir()} | {p.name for p in now.iterdir()})
        differ = 0
        for name in names:
            a, b = reference / name, now / name
            if not a.exists() or not b.exists():
                print(f"{name}: only in {'the new outputs' if b.exists() else 'the reference'}")
                differ += 1
            elif a.read_text() != b.read_text():
                differ += 1
                diff = difflib.unified_diff(a.read_text().splitlines(), b.read_text().splitlines(), lineterm="", n=1)
                print("\n".join(list(diff)[:40]))
        print(f"{len(names)} outputs, {differ} differ")
        return differ


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("write", "check"):
        raise SystemExit(__doc__)
    target = Path(sys.argv[2])
    if sys.argv[1] == "write":
        shutil.rmtree(target, ignore_errors=True)
        write(target)
        print(f"{len(list(target.iterdir()))} outputs written to {target}")
    else:
        sys.exit(1 if check(target) else 0)
