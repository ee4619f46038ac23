"""Only regular files are read: FIFOs, devices and symlink loops are refused with one line, at once."""

from __future__ import annotations

import json
import os
import signal

import pytest
from helpers import TINY_ANNOTATIONS, TINY_CATEGORIES, TINY_IMAGES, coco_doc
from typer.testing import CliRunner

import imbstat
from imbstat.cli import app
from imbstat.data.source import ReadLog, changed_inputs, open_input
from imbstat.errors import ImbstatError


@pytest.fixture(autouse=True)
def no_hang():
    """A read that blocks (the defect: open() of a FIFO waits for a writer) fails the test instead."""

    def timeout(*_: object) -> None:
        raise TimeoutError("blocked reading a non-regular file")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _refused(path, expected_kind: str, **options) -> str:
    with pytest.raises(ImbstatError) as info:
        imbstat.load(path, cache=False, **options)
    assert f"{expected_kind}, not a regular file; expected " in str(info.value)
    return str(info.value)


def test_fifo_as_the_annotation_file_is_refused(tmp_path):
    fifo = tmp_path / "train.json"
    os.mkfifo(fifo)
    message = _refused(fifo, "a named pipe (FIFO)")
    assert message == f"{fifo}: a named pipe (FIFO), not a regular file; expected an annotation file or folder"
    result = CliRunner().invoke(app, ["class-dist", str(fifo)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"imbstat: error: {message}"]
    _refused(fifo, "a named pipe (FIFO)", format="coco")  # no detection step in front: the open refuses it


def test_fifo_inside_a_voc_yolo_or_openimages_source_is_refused(tmp_path):
    from format_writers import write_openimages, write_voc, write_yolo

    coco = tmp_path / "c.json"
    coco.write_text(json.dumps(coco_doc(TINY_IMAGES, TINY_ANNOTATIONS[:3], TINY_CATEGORIES)))
    ds = imbstat.load(coco)

    write_voc(ds, tmp_path / "voc")
    xml = sorted((tmp_path / "voc").rglob("*.xml"))[0]
    xml.unlink()
    os.mkfifo(xml)
    assert str(xml) in _refused(tmp_path / "voc", "a named pipe (FIFO)")

    write_openimages(ds, tmp_path / "oi")
    sizes = tmp_path / "oi" / "sizes.csv"
    sizes.unlink()
    os.mkfifo(sizes)
    assert _refused(tmp_path / "oi" / "boxes.csv", "a named pipe (FIFO)", sizes=sizes).startswith(f"{sizes}: ")

    write_yolo(ds, tmp_path / "yolo")
    label = sorted((tmp_path / "yolo" / "labels").rglob("*.txt"))[0]
    label.unlink()
    os.mkfifo(label)
    assert _refused(tmp_path / "yolo" / "data.yaml", "a named pipe (FIFO)").startswith(f"{label}: ")
    label.unlink()
    image = sorted((tmp_path / "yolo" / "images").rglob("*.png"))[0]
    image.unlink()
    os.mkfifo(image)
    assert _refused(tmp_path / "yolo" / "data.yaml", "a named pipe (FIFO)").startswith(f"{image}: ")


def test_a_device_named_json_is_not_called_a_voc_folder(tmp_path):
    link = tmp_path / "null.json"
    link.symlink_to("/dev/null")
    message = _refused(link, "a character device")
    assert "VOC" not in message


def test_a_symlink_loop_is_not_missing(tmp_path):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(ImbstatError) as info:
        imbstat.load(a)
    expected = "symlink loop (too many levels of symbolic links); expected an annotation file or folder"
    assert str(info.value) == f"{a}: {expected}"
    with pytest.raises(ImbstatError, match=r"nope\.json: no such file or directory; expected "):
        imbstat.load(tmp_path / "nope.json")


def test_read_log_hashes_what_was_read(tmp_path):
    import hashlib

    path = tmp_path / "x.txt"
    path.write_bytes(b"abc" * 1000)
    with ReadLog() as log, open_input(path) as f:
        assert f.read(10) == b"abcabcabca"
        f.read()
    size, _, digest = log.files[str(path)]
    assert (size, digest) == (3000, hashlib.sha256(b"abc" * 1000).hexdigest())
    record = log.to_dict()
    assert list(changed_inputs(record)) == []
    path.write_bytes(b"abd" * 1000)  # same size, new content and time
    assert list(changed_inputs(record)) == [str(path)]

    with ReadLog() as partial, open_input(path) as f:
        f.read(10)  # a header only: no content hash, the size and time alone decide
    assert partial.files[str(path)][2] is None


def test_a_file_edited_with_its_size_and_time_restored_has_changed(tmp_path):
    """``cp -p``, ``rsync -t``, ``tar x``: the same size and mtime over other bytes (issue 20)."""
    path = tmp_path / "x.txt"
    path.write_bytes(b"abc" * 1000)
    with ReadLog() as log, open_input(path) as f:
        f.read()
    st = path.stat()
    path.write_bytes(b"abd" * 1000)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert list(changed_inputs(log.to_dict())) == [str(path)]
    path.write_bytes(b"abc" * 1000)  # the same bytes again, at another time: unchanged
    assert list(changed_inputs(log.to_dict())) == []
