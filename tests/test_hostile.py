"""Issue 10: the hostile corpus (tests/hostile_corpus.py) through every command, the streaming path and the cache.

Each case runs in-process (typer's runner) through ``class-dist --json -``,
``class-dist``, ``info``, ``anchor-iou`` and ``validate``, each under a time
bound: SIGALRM raises in the main thread, which also breaks a blocking
``open()`` of a FIFO, so that a hang fails its case instead of hanging CI.
A case whose fix has not merged is a strict xfail naming its owner ("owner: defect"):
the case's ``xfail`` field, :data:`STREAM_DIFFERS` for the streaming path, the
decorators of the cache tests. Delete the mark once its fix merges (strict: the
fixed case fails until then, as XPASS).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import signal
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import hostile_corpus
import pytest
import typer
import typer.main
import typer.testing
from helpers import assert_same_dataset
from hostile_corpus import (
    OI_SIZES,
    Case,
    Counted,
    Error,
    OptionCase,
    Ran,
    Refused,
    cases,
    coco_doc,
    openimages,
    option_cases,
    yolo,
)
from typer.testing import CliRunner

import imbstat
from imbstat.cli import app
from imbstat.data.coco import load_coco
from imbstat.errors import ImbstatError

# POSIX: SIGALRM bounds the time, os.mkfifo makes the FIFOs
pytestmark = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM and FIFOs")
runner = CliRunner()
CASES = cases()

TIME_BOUND = 5.0  # seconds per command on these tiny files; the slowest takes well under one
# The classes whose cases hang or fill memory until fixed (a FIFO, an alias bomb, a huge class index): while
# marked xfail they fail, as they must, in less time. Only these: a marked case that is fixed must run to its
# end on a loaded machine too, so that it shows as XPASS.
HANGS = frozenset(["fifo", "alias-bomb", "class-index"])
XFAIL_BOUND = 2.0
ANCHORS = ("anchor-iou", "--quiet", "--grid", "4")  # a 4×4 grid keeps the 2-D W1 scores cheap
# class-dist --json - first: its counts decide which of a case's alternatives the others must agree with
COMMANDS = (("class-dist", "--json", "-"), ("class-dist",), ("info",), ANCHORS, ("validate",))
# What a terminal would act on, never passed through from user data ("\n" ends our own lines).
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
# Warnings Python shows by default: anything but these (numpy's RuntimeWarning included).
QUIET_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


class TookTooLong(BaseException):
    """Raised by SIGALRM; a BaseException, so that the runner does not take it for the command's own."""


@contextlib.contextmanager
def time_bound(seconds: float, what: str) -> Iterator[None]:
    def fire(signum: int, frame: object) -> None:
        raise TookTooLong(f"{what}: over {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    late = ""
    try:
        yield
    except TookTooLong as e:
        late = str(e)  # failed outside this handler: pytest cannot render the interrupted frames
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if late:
        pytest.fail(late, pytrace=False)


@dataclasses.dataclass
class Run:
    command: str
    exit_code: int
    stdout: str
    stderr: str
    crash: str  # the traceback of an exception the command let through, or ""
    warned: list[str]  # warnings a user would see on stderr


def invoke(command: tuple[str, ...], args: list[str], bound: float) -> Run:
    with time_bound(bound, " ".join(command)), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = runner.invoke(app, [*command, *args])
    crash = ""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        crash = "".join(traceback.format_exception(result.exception))
    shown = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, QUIET_WARNINGS)]
    return Run(" ".join(command), result.exit_code, result.stdout, result.stderr, crash, shown)


def check_clean(run: Run) -> None:
    """No traceback, no warning, nothing raw for the terminal: whatever the outcome."""
    assert not run.crash, f"{run.command}: {run.crash}"
    assert not run.warned, f"{run.command}: {run.warned}"
    for stream in (run.stdout, run.stderr):
        assert "Traceback" not in stream and "Warning" not in stream, f"{run.command}: {stream}"
        assert not RAW_CONTROL.search(stream), f"{run.command}: raw control characters in {stream!r}"


def check_error(expect: Error, run: Run, folder: Path) -> None:
    """Exit 2 and one line ``imbstat: error: PATH (POSITION): MESSAGE`` naming the offending file."""
    assert run.exit_code == 2, f"{run.command}: exit {run.exit_code}, expected 2\n{run.stdout}{run.stderr}"
    assert run.stdout == "", f"{run.command}: {run.stdout}"
    assert run.stderr.endswith("\n") and run.stderr.count("\n") == 1, f"{run.command}: not one line: {run.stderr!r}"
    line = run.stderr.rstrip("\n")
    prefix = f"imbstat: error: {folder / expect.file if expect.file else folder}"
    assert line.startswith(prefix), f"{run.command}: {line!r} does not name {prefix}"
    found = re.fullmatch(r"(?: \((?P<position>.*?)\))?: (?P<message>.+)", line[len(prefix) :])
    assert found, f"{run.command}: {line!r}"
    if expect.position is not None:
        position = found.group("position")
        assert position is not None, f"{run.command}: no position in {line!r}"
        assert re.fullmatch(expect.position, position), f"{run.command}: position {position!r} in {line!r}"
    message = found.group("message").lower()
    for text in expect.contains:
        assert text.lower() in message, f"{run.command}: {text!r} not in {line!r}"
    for text in expect.forbid:
        assert text.lower() not in message, f"{run.command}: {text!r} in {line!r}"


def check_counted(expect: Counted, run: Run) -> None:
    """Exit 0 (validate: 1 after an error problem), every dropped or repaired item counted by reason."""
    validating = run.command.startswith("validate")
    code = 1 if validating and expect.has_errors else 0
    assert run.exit_code == code, f"{run.command}: exit {run.exit_code}, expected {code}\n{run.stdout}{run.stderr}"
    for line in run.stderr.splitlines():
        assert line.startswith("imbstat: note: "), f"{run.command}: {line!r}"
    if run.command.endswith("--json -"):
        dataset = json.loads(run.stdout)["dataset"]
        assert dataset["invalid"] == expect.invalid
        assert dataset["boxes"] == expect.expected_boxes
        for key in ("images", "categories"):
            if getattr(expect, key) is not None:
                assert dataset[key] == getattr(expect, key), key
    elif run.command == "class-dist":
        for text in expect.shown:
            assert text in run.stdout, f"{text!r} not shown whole in\n{run.stdout}"
    elif validating:
        for text in expect.locations:
            assert text in run.stdout, f"{text!r} not in\n{run.stdout}"
        problems = sum(expect.invalid.values())
        summary = run.stdout.splitlines()[-1]
        assert re.fullmatch(rf"{problems:,} problems, \d+ errors, in \d+ images and [\d,]+ boxes read", summary)
        if expect.boxes is None:  # a shard holds what it holds
            assert summary.endswith(f" {expect.held:,} boxes read"), f"{summary!r}: the file holds {expect.held}"


def check(expect: Error | Counted, run: Run, folder: Path) -> None:
    if isinstance(expect, Error):
        check_error(expect, run, folder)
    else:
        check_counted(expect, run)


def first_match(alternatives: tuple[Error | Counted, ...], run: Run, folder: Path) -> Error | Counted:
    """The alternative that ``run`` meets; fails listing why each did not."""
    why = []
    for expect in alternatives:
        try:
            check(expect, run, folder)
            return expect
        except AssertionError as e:
            why.append(f"{expect}: {e}")
    pytest.fail("\n".join(["no alternative holds:", *why]))


# Owners whose fixes have merged: their cases must pass. The marks go once every owner is here.
MERGED = frozenset({"lead", "markup", "formats", "sizes", "dupkeys", "json"})


def pending(reason: str | None) -> bool:
    return reason is not None and reason.split(":")[0] not in MERGED


def marked(case: Case) -> pytest.param:
    marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if pending(case.xfail) else []
    return pytest.param(case, id=case.name, marks=marks)


@pytest.fixture(scope="module", autouse=True)
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Imports and compiled kernels loaded once, outside any case's time bound; the click command built once.

    typer's runner builds the click command from the app on every invoke (50 ms): 600 times here.
    """
    command = typer.main.get_command(app)
    patch = pytest.MonkeyPatch()
    patch.setattr(typer.testing, "_get_command", lambda _: command)
    folder = tmp_path_factory.mktemp("warm")
    assert runner.invoke(app, [*ANCHORS, str(folder / "instances.json")]).exit_code == 2  # imports the CLI
    from hostile_corpus import coco

    doc = coco_doc()  # numba compiles a kernel at its first call: image 2's box is crowd, image 3 has none
    doc["annotations"][2]["iscrowd"] = 1
    doc["images"].append({"id": 3, "width": 50, "height": 40, "file_name": "3.jpg"})
    assert runner.invoke(app, [*ANCHORS, *coco(doc)(folder)]).exit_code == 0
    yield
    patch.undo()


@pytest.mark.parametrize("case", [marked(c) for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path) -> None:
    args = case.build(tmp_path)
    bound = XFAIL_BOUND if pending(case.xfail) and case.defect in HANGS else TIME_BOUND
    alternatives = case.alternatives
    for command in COMMANDS:
        run = invoke(command, args, bound)
        check_clean(run)
        if command == ANCHORS and case.anchor is not None:
            check(case.anchor, run, tmp_path)
        else:
            alternatives = (first_match(alternatives, run, tmp_path),)  # the others agree with the first


def test_every_class_of_the_issue_for_every_format_it_applies_to() -> None:
    every = ("coco", "voc", "openimages", "yolo")
    formats = dict.fromkeys(["markup", "sizes", "shard", "fifo", "symlink-loop", "dev-null", "duplicate-key",
                             "validate-count", "encoding", "warnings", "message", "valid"], every)  # fmt: skip
    formats |= {"nesting": ("coco", "voc", "yolo"), "class-index": ("yolo",), "alias-bomb": ("yolo",),
                "ids": ("coco",), "streaming": ("coco",)}  # fmt: skip
    covered = {(c.defect, c.format) for c in CASES}
    assert {(defect, format) for defect, among in formats.items() for format in among} <= covered
    assert {c.defect for c in CASES} == set(formats)
    assert len({c.name for c in CASES}) == len(CASES)


# ---------------------------------------------------------------- the streaming path (files over 1 GiB)

STREAMED = [c for c in CASES if c.format == "coco" and c.defect not in ("fifo", "symlink-loop", "dev-null")]
STREAM_DIFFERS = {
    "coco-nested-10k": "json: the streaming path skips a deeply nested value the whole-file path refuses",
    "coco-nested-1m": "json: the streaming path skips a deeply nested value the whole-file path refuses",
    "coco-trailing-nul": "json: the streaming path accepts NUL bytes after the document",
    "coco-trailing-garbage": "json: the streaming path accepts text after the document",
    "coco-truncated-nul-padded": "json: the streaming path reports a truncated document at the end of the file",
    "coco-duplicate-top-level-key": "dupkeys: the streaming path counts both arrays of a repeated key",
    "coco-nested-unclosed": "json: RecursionError on the whole-file path, 'JSON ends early' on the streaming path",
    "coco-utf16": "json: the streaming path takes a UTF-16 document for a JSON object without 'images'",
}


def outcome(path: Path, stream: bool) -> tuple:
    """What a load gives: the error line, or the dataset's numbers."""
    block = max(64, path.stat().st_size // 512)  # elements split across blocks, but not 30,000 blocks
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # test_hostile_input's concern, not this one's
            ds = load_coco(path, stream=stream, block_bytes=block)
    except ImbstatError as e:
        return ("error", str(e))
    except Exception as e:  # a traceback on either path is a difference too
        return ("crash", type(e).__name__)
    return (
        "dataset",
        ds.counts(),
        ds.problems.counts(),
        ds.problems.location.tolist(),
        ds.images.image_id.tolist(),
        ds.categories.category_id.tolist(),
        ds.boxes.xyxy.tolist(),
        ds.boxes.image.tolist(),
    )


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=STREAM_DIFFERS[c.name])]
                  if pending(STREAM_DIFFERS.get(c.name)) else []) for c in STREAMED],
)  # fmt: skip
def test_streaming_path_gives_what_the_whole_file_path_gives(case: Case, tmp_path: Path) -> None:
    path = Path(case.build(tmp_path)[0])
    with time_bound(TIME_BOUND, case.name):
        assert outcome(path, stream=True) == outcome(path, stream=False)


# ---------------------------------------------------------------- the Parquet cache


def cached_is_fresh(path: str, **options: object) -> None:
    assert_same_dataset(imbstat.load(path, cache=True, **options), imbstat.load(path, cache=False, **options))


def test_cache_of_a_source_edited_while_it_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hostile_corpus import coco

    from imbstat.data import coco as coco_module

    path = Path(coco(coco_doc())(tmp_path)[0])
    edited = coco_doc()
    del edited["annotations"][1:]
    decode = coco_module.decode

    def edit_then_decode(raw: bytes, *args: object, **kwargs: object) -> object:
        path.write_text(json.dumps(edited))  # after the bytes were read, before the load ends
        return decode(raw, *args, **kwargs)

    monkeypatch.setattr(coco_module, "decode", edit_then_decode)
    assert len(imbstat.load(path, cache=True).boxes) == 3  # what was read
    monkeypatch.setattr(coco_module, "decode", decode)
    assert len(imbstat.load(path, cache=True).boxes) == 1  # the file now, not the cache of what was read
    cached_is_fresh(str(path))


@pytest.mark.parametrize("edited", ["sizes.csv", "classes.csv"])
def test_cache_of_sizes_and_classes_files(edited: str, tmp_path: Path) -> None:
    args = openimages()(tmp_path)
    options = {"sizes": args[2], "classes": args[4]}
    first = imbstat.load(args[0], cache=True, **options)
    assert first.images.width.tolist() == [100, 120] and first.categories.name.tolist() == ["cat", "dog"]
    file = tmp_path / "oi" / edited
    file.write_text(file.read_text().replace("a,100", "a,50").replace(",dog", ",hound"))
    after = imbstat.load(args[0], cache=True, **options)
    if edited == "sizes.csv":
        assert after.images.width.tolist() == [50, 120]
    else:
        assert after.categories.name.tolist() == ["cat", "hound"]
    cached_is_fresh(args[0], **options)


def test_cache_of_a_relative_sizes_path_from_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    boxes = openimages(sizes=None, classes=None)(tmp_path)[0]
    for name, sizes in (("here", OI_SIZES), ("there", OI_SIZES.replace("a,100", "a,400"))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "sizes.csv").write_text(sizes)
    monkeypatch.chdir(tmp_path / "here")
    assert imbstat.load(boxes, cache=True, sizes="sizes.csv").images.width.tolist() == [100, 120]
    monkeypatch.chdir(tmp_path / "there")
    assert imbstat.load(boxes, cache=True, sizes="sizes.csv").images.width.tolist() == [400, 120]
    cached_is_fresh(boxes, sizes="sizes.csv")


def test_cache_of_a_label_behind_a_data_yaml(tmp_path: Path) -> None:
    data_yaml = yolo()(tmp_path)[0]
    assert len(imbstat.load(data_yaml, cache=True).boxes) == 3
    label = tmp_path / "yolo" / "labels" / "train" / "b.txt"
    label.write_text(label.read_text() + "1 0.5 0.5 0.2 0.2\n")
    assert len(imbstat.load(data_yaml, cache=True).boxes) == 4
    cached_is_fresh(data_yaml)


@pytest.mark.slow
def test_report_with_anchors_of_an_empty_shard(tmp_path: Path) -> None:
    from hostile_corpus import coco

    args = [*coco(coco_doc())(tmp_path), "--shard", "90/100", "--anchors", "--quiet", "--out", str(tmp_path / "out")]
    run = invoke(("report",), args, 3 * TIME_BOUND)  # figures too
    check_clean(run)
    assert run.exit_code == 0, run.stdout + run.stderr
    dataset = json.loads((tmp_path / "out" / "report.json").read_text())["dataset"]
    assert (dataset["images"], dataset["boxes"], dataset["shard"]) == (0, 0, "90/100")


# ================================================================ issue 20: saved reports, shards and the cache
# hostile_corpus's own block: documents imbstat wrote (shards for merge, a saved report for compare) edited
# by hand, and damaged Parquet caches. Separate from the dataset cases above: no case there reads these.

REPORT_CASES = hostile_corpus.report_cases()


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The sharded source, its shards' documents (class-dist and report with anchors) and its whole report."""
    from imbstat.analysis import compute
    from imbstat.anchors.options import AnchorOptions
    from imbstat.report.build import report_document
    from imbstat.report.document import dumps

    folder = tmp_path_factory.mktemp("written")
    source = folder / "instances.json"
    source.write_text(json.dumps(hostile_corpus.sharded_doc()))
    ds = imbstat.load(source)
    shards = [ds.take_shard(i, 2) for i in range(2)]
    docs = {("class-dist", i): json.loads(invoke(("class-dist", "--shard", f"{i}/2", "--json", "-"), [str(source)],
                                                 TIME_BOUND).stdout) for i in range(2)}  # fmt: skip
    for i, part in enumerate(shards):
        docs["report", i] = json.loads(dumps(report_document(compute(part, anchors=AnchorOptions(grid=4)))))
    whole = json.loads(dumps(report_document(compute(ds))))
    return {"source": source, "docs": docs, "whole": whole}


def run_report_case(
    case: hostile_corpus.ReportCase | None, kind: str, command: str, written: dict, folder: Path
) -> Run:
    """``command`` on the documents of ``kind``, the first edited by ``case`` (none: as written)."""
    if command == "merge":
        docs = [json.loads(json.dumps(written["docs"][kind, i])) for i in range(2)]  # type: ignore[index]
        paths = [folder / f"shard{i}.json" for i in range(2)]
    else:
        docs, paths = [json.loads(json.dumps(written["whole"]))], [folder / "report.json"]
    if case is not None:
        case.edit(docs[0])
    for doc, path in zip(docs, paths, strict=True):
        path.write_text(json.dumps(doc))  # NaN as NaN: what a hand edit can write
    args = [str(p) for p in paths] if command == "merge" else [str(written["source"]), str(paths[0])]
    return invoke((command,), [*args, "--json", "-"], 3 * TIME_BOUND)


@pytest.mark.parametrize(("kind", "command"), [("class-dist", "merge"), ("report", "merge"), ("report", "compare")])
def test_documents_as_written_are_read(kind: str, command: str, written: dict, tmp_path: Path) -> None:
    """The harness's own check: unedited, each reads, and merged shards give the whole run's counts."""
    run = run_report_case(None, kind, command, written, tmp_path)
    check_clean(run)
    assert run.exit_code == 0, run.stderr
    if command == "merge":
        doc = json.loads(run.stdout)
        assert (doc["dataset"]["images"], doc["dataset"]["boxes"]) == (8, 11)
        classes = doc["classes"] if kind == "report" else doc
        assert sum(c["instances"] for c in classes["classes"]) == 11


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in REPORT_CASES])
def test_hostile_report(case: hostile_corpus.ReportCase, written: dict, tmp_path: Path) -> None:
    run = run_report_case(case, case.kind, case.command, written, tmp_path)
    check_clean(run)
    check_error(case.expect, run, tmp_path)


CACHE_CASES = hostile_corpus.cache_cases()


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name) for c in CACHE_CASES])
def test_hostile_cache(case: hostile_corpus.CacheCase, tmp_path: Path) -> None:
    """A damaged cache is ignored and rebuilt: the load gives the source's numbers, and the next load reads
    the rebuilt cache. The other source (5 boxes) has the same images, so that its tables would be taken."""
    from imbstat.data import cache as columnar_cache

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    source, other = tmp_path / "a" / "instances.json", tmp_path / "b" / "instances.json"
    source.write_text(json.dumps(hostile_corpus.sharded_doc(boxes=11)))
    other.write_text(json.dumps(hostile_corpus.sharded_doc(boxes=5)))
    assert len(imbstat.load(source, cache=True).boxes) == 11 and len(imbstat.load(other, cache=True).boxes) == 5
    cache = columnar_cache.cache_dir(source)
    case.damage(source, cache, columnar_cache.cache_dir(other))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        after = imbstat.load(source, cache=True)
    cached_is_fresh(str(source))
    assert len(after.boxes) == len(imbstat.load(source, cache=False).boxes)  # 11, or 5 after the in-place edit
    options = columnar_cache.load_options(source, imbstat.LoadOptions())
    assert columnar_cache.read_cache(source, options) is not None  # rebuilt


# ---------------------------------------------------------------- options, presets and configs (issue 20, 2a)

OPTION_CASES = option_cases()


def check_refused(expect: Refused, run: Run, folder: Path) -> None:
    """Exit 2, nothing on stdout, one line ``imbstat: error: ...`` naming the option, or the file and its key."""
    assert run.exit_code == 2, f"{run.command}: exit {run.exit_code}, expected 2\n{run.stdout}{run.stderr}"
    assert run.stdout == "", f"{run.command}: {run.stdout}"
    assert run.stderr.endswith("\n") and run.stderr.count("\n") == 1, f"{run.command}: not one line: {run.stderr!r}"
    line = run.stderr.rstrip("\n")
    assert line.startswith("imbstat: error: "), line
    if expect.file is not None:
        prefix = f"imbstat: error: {folder / expect.file}"
        found = re.fullmatch(r" \((?P<position>.*?)\): .+", line[len(prefix) :]) if line.startswith(prefix) else None
        assert found, f"{run.command}: {line!r} does not name {prefix} (POSITION)"
        if expect.position is not None:
            assert re.fullmatch(expect.position, found.group("position")), f"{run.command}: position in {line!r}"
    assert expect.names in line, f"{run.command}: {expect.names!r} not named in {line!r}"
    for text in expect.contains:
        assert text.lower() in line.lower(), f"{run.command}: {text!r} not in {line!r}"


def check_ran(expect: Ran, run: Run) -> None:
    assert run.exit_code == expect.code, f"{run.command}: exit {run.exit_code}\n{run.stdout}{run.stderr}"
    for line in run.stderr.splitlines():
        assert line.startswith("imbstat: note: "), f"{run.command}: {line!r}"
    if expect.values:
        doc = json.loads(run.stdout)
        for key, value in expect.values.items():
            found = doc
            for part in key.split("."):
                found = found[part]
            assert found == value, f"{run.command}: {key} = {found!r}, expected {value!r}"


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.name, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if pending(c.xfail) else [])
     for c in OPTION_CASES],
)  # fmt: skip
def test_hostile_option(case: OptionCase, tmp_path: Path) -> None:
    args = case.build(tmp_path)
    assert args[0] == case.command
    run = invoke((), args, TIME_BOUND)
    check_clean(run)
    if isinstance(case.expect, Refused):
        check_refused(case.expect, run, tmp_path)
    else:
        check_ran(case.expect, run)


def test_every_command_and_class_of_part_2a_is_covered() -> None:
    commands = {"batch-dist", "anchors", "anchor-iou", "report", "audit", "info", "class-dist", "scale", "location"}
    assert {c.command for c in OPTION_CASES} == commands
    assert {c.defect for c in OPTION_CASES} == {"bound", "shard", "preset", "audit", "dask", "output", "usage"}
    assert len({c.name for c in OPTION_CASES}) == len(OPTION_CASES)
    shard_huge = {c.command for c in OPTION_CASES if c.name.endswith("-shard-huge")}
    assert shard_huge == {"info", "class-dist", "scale", "location", "anchor-iou"}
