"""Build step: the default path's kernels compiled ahead of time into ``imbstat._kernels`` (imbstat/anchors/aot.py).

Everything else is declared in pyproject.toml. The build is optional: where it cannot be made
(no C compiler, numba missing) the install goes on without it, and runs compile the same kernels
with numba at their first use instead.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext


def _aot():
    path = Path(__file__).resolve().parent / "imbstat" / "anchors" / "aot.py"
    spec = importlib.util.spec_from_file_location("_imbstat_aot", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _warn(what, error):
    print(f"imbstat: {what} ({type(error).__name__}: {error}); runs will compile the kernels with numba "
          "at their first use instead", file=sys.stderr)  # fmt: skip


class OptionalBuildExt(build_ext):
    """build_ext that also compiles pycc's object files, and leaves the extension out where that fails."""

    def build_extension(self, ext):
        try:
            ext._prepare_object_files(self)  # numba.pycc: the kernels' LLVM object files, linked below
            super().build_extension(ext)
        except Exception as e:
            _warn("the ahead-of-time kernels were not built", e)


def _extensions():
    try:
        return [_aot().extension()]
    except Exception as e:
        _warn("the ahead-of-time kernels cannot be built here", e)
        return []


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
