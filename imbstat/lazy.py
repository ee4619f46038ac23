"""Modules imported at their first use: pandas takes ~0.25 s to import, and a small run may never use it."""

from __future__ import annotations

import importlib
import types
from typing import Any


class LazyModule(types.ModuleType):
    """Stands for the module ``name``: the first attribute read imports it (later reads find it in sys.modules).

    Use it under ``if TYPE_CHECKING: import pandas as pd`` / ``else: pd = LazyModule("pandas")``,
    so that type checkers see the real module.
    """

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)
