"""Build step: the default path's kernels compiled ahead of time into ``imbstat._kernels`` (imbstat/anchors/aot.py).

Everything else is declared in pyproject.toml. The build is optional: where it cannot be made
(no C compiler or Python headers, numba missing) the install goes on without it, and runs compile
the same kernels with numba at their first use instead.

``setup()`` sees a placeholder extension only: numba is imported, and pycc's extension (its C helper
files have absolute paths, which the package-data step refuses) made, when build_ext builds it.
"""

import importlib.util
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _aot():
    spec = importlib.util.spec_from_file_location("_imbstat_aot", HERE / "imbstat" / "anchors" / "aot.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class OptionalBuildExt(build_ext):
    """build_ext that builds pycc's extension in place of the placeholder, and leaves it out where that fails."""

    def build_extension(self, ext):
        if not getattr(ext, "imbstat_kernels", False):
            return super().build_extension(ext)
        try:
            aot = _aot()
            kernels = aot.extension()
            kernels.depends += [str(path) for path in aot.kernel_files()]  # an edited kernel is rebuilt
            kernels._prepare_object_files(self)  # numba.pycc: the kernels' LLVM object files, linked next
            super().build_extension(kernels)
        except Exception as e:
            print(f"imbstat: the ahead-of-time kernels were not built ({type(e).__name__}: {e}); runs will "
                  "compile the kernels with numba at their first use instead", file=sys.stderr)  # fmt: skip


placeholder = Extension("imbstat._kernels", sources=[], optional=True)  # optional: no copy of a build that failed
placeholder.imbstat_kernels = True
setup(ext_modules=[placeholder], cmdclass={"build_ext": OptionalBuildExt})
