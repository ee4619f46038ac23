"""The one exception type that user input can raise."""

from __future__ import annotations

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
