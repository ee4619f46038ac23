"""The ``imbstat`` command: parse options, call the library, render. Nothing else.

Commands live in one module per group and register on the one ``app``.
"""

from imbstat.cli import anchors, dataset, report  # noqa: F401  (registers the commands)
from imbstat.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
