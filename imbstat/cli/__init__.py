"""The ``imbstat`` command: parse options, call the library, render. Nothing else.

Commands live in one module per group and register on the one ``app``, in
the order ``--help`` lists them.
"""

from imbstat.cli import dataset  # noqa: F401  (registers the commands)

# isort: split
from imbstat.cli import anchors  # noqa: F401

# isort: split
from imbstat.cli import report  # noqa: F401

# isort: split
from imbstat.cli import evaluate  # noqa: F401
from imbstat.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
