"""The one exception type that user input can raise, and the file readers that raise it."""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path


class ImbstatError(Exception):
    """Bad user input: a file that cannot be read, parsed or understood.

    The message is one line naming the file, the position in it and what was
    expected; the CLI prints it to stderr and exits with code 2.
    """

    def __init__(self, message: str, path: str | Path | None = None, position: str | None = None):
        self.path = None if path is None else str(path)
        self.position = position
        self.detail = message
        where = ""
        if self.path is not None:
            where = self.path + (f" ({position})" if position else "") + ": "
        super().__init__(where + message)


def read_toml(path: Path, what: str) -> dict:
    """The top-level table of a TOML file; an unreadable or malformed file is an ImbstatError."""
    try:
        return tomllib.loads(path.read_text())
    except OSError as e:
        raise ImbstatError(f"cannot read {what}: {e.strerror}", path) from None
    except tomllib.TOMLDecodeError as e:
        raise ImbstatError(f"malformed TOML: {e}", path) from None


def read_text(path: str | Path, expected: str) -> str:
    """A UTF-8 text file's content, a BOM dropped; unreadable or not UTF-8 is an ImbstatError.

    ``expected`` names what the file should hold ("YOLO labels"), for the message.
    """
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise ImbstatError(f"cannot read file: {e.strerror}", path) from None
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0  # as Notepad writes
    try:
        return raw[start:].decode("utf-8")
    except UnicodeDecodeError as e:
        position = f"byte {start + e.start}"  # 0-based, as every byte position
        raise ImbstatError(f"not UTF-8 text ({e.reason}); expected {expected}", path, position) from None
