"""Every read of the user's files goes through here: only regular files, and each read recorded.

Two jobs share one place because they need the same moment, the open:

- A path may name anything: a FIFO or a terminal blocks a reader forever, ``/dev/zero``
  never ends, a symlink loop is not "no such file". :func:`open_input` opens without
  blocking, checks the open descriptor (not the name, which could change in between) and
  refuses anything but a regular file with one line.
- The Parquet cache (:mod:`imbstat.data.cache`) must be keyed on exactly what a load read.
  While a :class:`ReadLog` is active (``with ReadLog() as log:``), every file opened here
  is recorded with the size and mtime of the open descriptor, taken *before* its first
  byte is read, and a hash of the bytes actually read; every folder listed is recorded
  with its names. A file edited during the load therefore fails the check later: its
  time differs, and its content no longer hashes to what was parsed.
"""

from __future__ import annotations

import codecs
import contextvars
import errno
import hashlib
import io
import os
import stat
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from imbstat.errors import ImbstatError

_KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a folder",
}


def _kind(mode: int) -> str:
    return _KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _os_error(e: OSError, path: str | Path, expected: str) -> ImbstatError:
    """One line for an OSError on ``path``: what happened and what was expected."""
    if e.errno == errno.ELOOP:
        return ImbstatError(f"symlink loop (too many levels of symbolic links); expected {expected}", path)
    if e.errno in (errno.ENOENT, errno.ENOTDIR):
        return ImbstatError(f"no such file or directory; expected {expected}", path)
    return ImbstatError(f"cannot read ({e.strerror}); expected {expected}", path)


def path_kind(path: str | Path) -> str:
    """``"file"`` or ``"folder"`` for a path that exists (symlinks followed); anything else is refused."""
    try:
        mode = os.stat(path).st_mode
    except OSError as e:
        raise _os_error(e, path, "an annotation file or folder") from None
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "folder"
    raise ImbstatError(f"{_kind(mode)}, not a regular file; expected an annotation file or folder", path)


@dataclass
class ReadLog:
    """The files and folders one load read, for the cache to compare later (see module doc).

    ``files``: ``{absolute path: [size, mtime_ns, content_hash of its whole content or None]}``;
    the hash is None when the file was only partly read (an image header), or read twice with
    different results. ``folders``: ``{absolute path: blake2b of its sorted entry names}``.
    """

    files: dict[str, list[Any]] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    _token: contextvars.Token | None = None

    def __enter__(self) -> ReadLog:
        self._token = _active.set(self)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _active.reset(self._token)

    def add_file(self, path: str, st: os.stat_result, digest: str | None) -> None:
        entry = [st.st_size, st.st_mtime_ns, digest]
        before = self.files.get(path)
        if before is not None and before != entry:
            # Read twice (a header sniff, then the whole): keep a whole-content hash, and no hash at all
            # if the two reads saw different files.
            same_file = before[:2] == entry[:2]
            entry = [*entry[:2], (digest or before[2]) if same_file else None]
            if not same_file:
                entry[1] = -1  # never matches: the cache is stale by construction
        self.files[path] = entry

    def to_dict(self) -> dict[str, Any]:
        return {"files": self.files, "folders": self.folders}


_active: contextvars.ContextVar[ReadLog | None] = contextvars.ContextVar("imbstat_read_log", default=None)


def _absolute(path: str | Path) -> str:
    return os.path.abspath(path)


class _Input(io.RawIOBase):
    """A regular file opened for reading that hashes what it hands out while a ReadLog is active."""

    def __init__(self, fd: int, path: str, st: os.stat_result, log: ReadLog | None) -> None:
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._path, self._stat, self._log = path, st, log
        self._digest = content_hash() if log is not None else None
        self._position = 0  # bytes hashed so far, in order; a seek back ends the hashing
        self._whole = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._file.readinto(buffer)
        if self._digest is not None and n:
            self._digest.update(memoryview(buffer)[:n])
            self._position += n
        elif n == 0 and self._position == self._stat.st_size:
            self._whole = True
        return n

    def readall(self) -> bytes:
        data = self._file.read()
        if self._digest is not None:
            self._digest.update(data)
            self._position += len(data)
        self._whole = self._position == self._stat.st_size
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        where = self._file.seek(offset, whence)
        if where != self._position:
            self._digest = None  # out of order: what was hashed is no longer the content
        return where

    def tell(self) -> int:
        return self._file.tell()

    def fileno(self) -> int:  # for os.fstat: the size of what is read, not of what the name names now
        return self._file.fileno()

    def close(self) -> None:
        if self.closed:
            return
        if self._log is not None:
            whole = self._whole and self._digest is not None
            self._log.add_file(self._path, self._stat, self._digest.hexdigest() if whole else None)
        self._file.close()
        super().close()


def open_input(path: str | Path, expected: str = "a file") -> BinaryIO:
    """Open a regular file for reading (binary, buffered); anything else is an ImbstatError.

    Opened with O_NONBLOCK so that a FIFO cannot block the open itself, then checked by its
    descriptor. ``expected`` completes the error message ("expected a COCO JSON file").
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _os_error(e, path, expected) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ImbstatError(f"{_kind(st.st_mode)}, not a regular file; expected {expected}", path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return io.BufferedReader(_Input(fd, _absolute(path), st, _active.get()), buffer_size=1 << 20)  # type: ignore[return-value]


def read_input(path: str | Path, expected: str = "a file") -> bytes:
    """The whole content of a regular file (see :func:`open_input`)."""
    with open_input(path, expected) as f:
        try:
            return f.read()
        except OSError as e:
            raise _os_error(e, path, expected) from None


def read_text(path: str | Path, expected: str = "a text file") -> str:
    """A regular file's content as UTF-8 text, a BOM dropped (as Notepad writes it).

    Bytes that are not UTF-8 are an ImbstatError at their 0-based byte offset in the file.
    """
    raw = read_input(path, expected)
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    try:
        return raw[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        position = f"byte {start + e.start}"
        raise ImbstatError(f"not UTF-8 text ({e.reason}); expected {expected}", path, position) from None


def read_toml(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level table of a TOML file (a preset, an audit config); unreadable or malformed is an ImbstatError."""
    try:
        return tomllib.loads(read_text(path, f"{what} (TOML)"))
    except tomllib.TOMLDecodeError as e:
        raise ImbstatError(f"malformed TOML: {e}; expected {what} (TOML)", path) from None
    except RecursionError:
        raise ImbstatError(f"TOML nested too deeply; expected {what} (TOML)", path) from None


def list_folder(folder: str | Path, recursive: bool = False) -> list[str]:
    """Sorted paths of the entries of ``folder`` (files at every depth with ``recursive``), recorded.

    Entries are listed whatever they are: a FIFO among label files is refused when it is opened.
    """
    found = _list(folder, recursive)
    log = _active.get()
    if log is not None:
        log.folders[_absolute(folder) + ("/**" if recursive else "")] = _names_digest(folder, found)
    return found


def _list(folder: str | Path, recursive: bool) -> list[str]:
    try:
        if recursive:  # os.walk does not follow symlinked folders: a link loop cannot recurse
            found = [os.path.join(d, name) for d, _, names in os.walk(folder, onerror=_raise) for name in names]
        else:
            with os.scandir(folder) as entries:
                found = [entry.path for entry in entries]
    except OSError as e:
        raise _os_error(e, folder, "a folder") from None
    return sorted(found)


def _raise(e: OSError) -> None:
    raise e


def _names_digest(folder: str | Path, paths: list[str]) -> str:
    start = len(str(folder))
    digest = hashlib.blake2b(digest_size=16)
    for p in paths:
        digest.update(p[start:].encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def changed_inputs(record: dict[str, Any]) -> Iterator[str]:
    """The paths of a :meth:`ReadLog.to_dict` record that differ now (none when all match).

    A file read whole is hashed again and matches only if its content does: its size and mtime
    alone could lie (``cp -p``, ``rsync -t`` and ``tar x`` restore both over edited bytes). A file
    read in part (an image header) has no hash and matches when its size and mtime do.
    """
    for path, (size, mtime_ns, digest) in record.get("files", {}).items():
        try:
            st = os.stat(path)
        except OSError:
            yield path
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size != size:
            yield path
        elif digest is None:
            if st.st_mtime_ns != mtime_ns:
                yield path
        elif _file_digest(path) != digest:
            yield path
        elif st.st_mtime_ns != mtime_ns:
            record["files"][path] = [size, st.st_mtime_ns, digest]  # touched only: recorded as it is now
    for key, digest in record.get("folders", {}).items():
        recursive = key.endswith("/**")
        folder = key.removesuffix("/**") if recursive else key
        try:
            now = _list(folder, recursive)
        except ImbstatError:
            yield key
            continue
        if _names_digest(folder, now) != digest:
            yield key


def content_hash(data: bytes = b"") -> Any:
    """The hash of a file's content that the cache compares: SHA-256, which x86 (SHA-NI) and ARMv8 compute in
    hardware, 2.5x blake2b's speed here (0.57 against 0.23 GB/s on a loaded 2-core machine): a cache hit
    hashes its whole source again, so this is most of its time."""
    return hashlib.sha256(data)


def _file_digest(path: str) -> str | None:
    digest = content_hash()
    try:
        with open_input(path) as f:
            while chunk := f.read(16 << 20):
                digest.update(chunk)
    except ImbstatError:
        return None
    return digest.hexdigest()
