"""What every benchmark shares: timers, child processes with their peak RSS, the machine line, RESULTS.md.

A benchmark module measures; this module runs and records. The pieces:

- ``timer()``: a context manager whose ``.seconds`` is the ``time.perf_counter`` time of its block.
- ``run_process(command)``: one child process, its wall and CPU time and its own peak RSS (``os.wait4``: that
  child's rusage alone, not the high-water mark of every child so far), its stdout and stderr.
- ``CHILDREN`` / ``run_child(mode, path)``: a registered ``python -c`` snippet run in a fresh interpreter; the
  snippet ends with ``TAIL``, which adds ``rss_kib`` (its ``ru_maxrss``) to its JSON result.
- ``run_cli(path)``: the whole ``imbstat class-dist`` process (``cli_command``), wall time and peak RSS.
- ``Runs``: the repeats of every measurement on one input (median of times, maximum of RSS).
- ``Others``: the CPU cores other processes used meanwhile (the machine is shared).
- ``machine()``, ``measured_on(...)``: what the numbers were measured on, as a dict and as a section's first line.
- ``write_results(text, begin=..., end=...)``: replace a benchmark's section of RESULTS.md between its markers.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from benchmarks.make_inputs import built_as

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

# Ends every ``python -c`` child: its result ``out`` with its peak RSS (ru_maxrss, KiB on Linux), as the last line.
TAIL = "import resource; out['rss_kib'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; print(json.dumps(out))\n"
# mode -> ``python -c`` code, argv[1] the input path; each benchmark registers its own children here.
CHILDREN: dict[str, str] = {}


def _prog() -> str:
    """The running benchmark's name for messages (``python -m benchmarks.bench_x`` -> ``bench_x``)."""
    return Path(sys.argv[0]).stem if sys.argv and sys.argv[0] not in ("", "-c") else "benchmark"


class Timer:
    """``seconds``: the wall time of the ``with timer() as t:`` block (``time.perf_counter``)."""

    seconds: float = 0.0


@contextmanager
def timer() -> Iterator[Timer]:
    t = Timer()
    start = time.perf_counter()
    try:
        yield t
    finally:
        t.seconds = time.perf_counter() - start


@dataclass
class Process:
    """A finished child process: its figures and its output."""

    wall: float  # seconds, start to exit
    cpu: float  # user + system seconds of the child
    rss_kib: int  # the child's own peak RSS
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        """The JSON object on the last line of stdout (what the benchmark children print)."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_process(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None, check: bool = True
) -> Process:
    """Run ``command`` to its end; wall time, CPU time and peak RSS of that child alone (``os.wait4``).

    Output goes to temporary files, not pipes, so a child that writes a lot cannot block on a full pipe while
    we wait for it. ``check``: exit with the child's stderr if it fails.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(list(command), stdout=out, stderr=err, env=None if env is None else dict(env), cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        done = Process(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, proc.returncode,
                       out.read().decode(errors="replace"), err.read().decode(errors="replace"))  # fmt: skip
    if check and done.returncode != 0:
        shown = " ".join(map(str, command))[:300]
        sys.exit(f"{_prog()}: error: {shown} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return done


def run_child(mode: str, path: Path) -> dict[str, float]:
    """Run the registered child ``mode`` on ``path`` in a fresh interpreter and return its JSON result."""
    done = run_process([sys.executable, "-c", CHILDREN[mode], str(path)], check=False)
    if done.returncode != 0:
        sys.exit(f"{_prog()}: child {mode!r} failed on {path}:\n{done.stderr}")
    return done.json()


def cli_command(path: Path) -> list[str]:
    """``imbstat class-dist PATH --json /dev/null``, with the console script beside this Python."""
    script = Path(sys.executable).parent / "imbstat"
    exe = [str(script)] if script.exists() else ([found] if (found := shutil.which("imbstat")) else None)
    return [*(exe or [sys.executable, "-m", "imbstat"]), "class-dist", str(path), "--json", os.devnull, "--no-cache"]


def run_cli(path: Path, command: Sequence[str] | None = None) -> dict[str, float]:
    """Wall time and peak RSS of the whole CLI process (``command``, by default ``cli_command(path)``)."""
    done = run_process(command or cli_command(path), check=False)
    if done.returncode != 0:
        sys.exit(f"{_prog()}: the CLI failed on {path} (exit {done.returncode}):\n{done.stderr}")
    return {"wall": done.wall, "rss_kib": done.rss_kib}


def warm_cache(path: Path) -> None:
    """Read ``path`` once so that every measurement starts from the page cache."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


@dataclass
class Runs:
    """All repeats of the measurements on one input: name -> list of values."""

    size: str
    path: Path
    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, prefix: str, result: Mapping[str, float]) -> None:
        for key, value in result.items():
            self.values.setdefault(f"{prefix}:{key}", []).append(float(value))

    def median(self, key: str) -> float:
        return statistics.median(self.values[key])

    def peak(self, key: str) -> float:
        return max(self.values[key])


class Others:
    """CPU used by processes other than this one and its children since creation, from /proc/stat.

    The machine is shared: another process on one of the 2 cores slows a multi-threaded measurement far
    more than a single-threaded one, so the benchmarks report their figures with this.
    """

    def __init__(self) -> None:
        self.start = self._now()

    @staticmethod
    def _now() -> tuple[float, float, float]:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4))  # all but idle and iowait
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        mine = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
        return time.perf_counter(), busy / os.sysconf("SC_CLK_TCK"), mine

    def cores(self) -> float:
        """Mean cores busy with other processes' work since creation (children are counted once they exit)."""
        (t0, busy0, mine0), (t1, busy1, mine1) = self.start, self._now()
        return max(busy1 - busy0 - (mine1 - mine0), 0.0) / (t1 - t0)


# ---------------------------------------------------------------------------------------------
# Formatting and RESULTS.md.


def _s(seconds: float) -> str:
    return f"{seconds:.3f} s" if seconds < 10 else f"{seconds:.1f} s"


def _mb(kib: float) -> str:
    return f"{kib * 1024 / 1e6:,.0f} MB"


def verdict(ok: bool) -> str:
    """A target's result cell, as every benchmark writes it."""
    return "PASS" if ok else "**FAIL**"


def describe_input(runs: Runs) -> str:
    """One input as make_inputs built it: images, boxes, size, and what it repeats."""
    record = built_as(runs.path) or {}
    mb = runs.path.stat().st_size / 1e6
    return (
        f"{record.get('images', 0):,} images, {record.get('annotations', 0):,} boxes, {mb:,.0f} MB "
        f"(×{record.get('factor', '?')} of {record.get('source', '?')})"
    )


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


def now() -> str:
    """The time of a measurement as the sections print it."""
    return dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def measured_on(*packages: str) -> str:
    """A section's machine line: ``Measured WHEN on N × CPU, MEMORY; Python X, PACKAGE VERSION, ...``."""
    m = machine()
    versions = "".join(f", {name} {_version(name)}" for name in packages)
    return f"Measured {now()} on {m['CPUs (nproc)']} × {m['CPU model']}, {m['memory']}; Python {m['Python']}{versions}"


def header() -> str:
    """The top of a new RESULTS.md: the machine the benchmarks run on."""
    lines = ["# Benchmark results", "", "Machine of the runs below (each section also names its own):", ""]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    return "\n".join(lines) + "\n"


def write_results(text: str, path: Path = RESULTS, *, begin: str, end: str) -> None:
    """Replace the section between ``begin`` and ``end`` of ``path`` (or append it; create the file if absent)."""
    old = path.read_text() if path.exists() else header()
    if begin in old and end in old:
        before, rest = old.split(begin, 1)
        new = before + text + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new)
