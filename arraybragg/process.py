"""Settings a command-line program makes for its process before NumPy is imported.

NumPy's OpenBLAS starts a thread per core at import, and each spins for a while waiting for
work: measured here, ~0.1 s of CPU per process taken from the work proper, and in a render
(whose workers are one process per core already) a few percent of its CPU.  The programs
make no BLAS call that needs threads, so they ask for one.  A value the user set is kept.
"""
from __future__ import annotations

import os
import sys
from typing import NoReturn

__all__ = ["before_numpy", "installed_python_env", "finish"]


def before_numpy(huge_pages: bool = True) -> None:
    """Set the environment NumPy reads at import (no-op once it is imported: a library caller's
    process is theirs).  ``huge_pages`` False: no transparent huge pages for NumPy's arrays."""
    if "numpy" in sys.modules:
        return
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if not huge_pages:
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def installed_python_env() -> dict:
    """This environment for a child Python process that may cache bytecode, as an installed package
    has it (some machines set PYTHONDONTWRITEBYTECODE, so that every run compiles the modules
    again): what the benchmarks run arraybragg's programs with."""
    return {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}


def finish(status: int) -> NoReturn:
    """End a command-line process with ``status`` once stdout and stderr are flushed, without the
    interpreter's teardown: freeing every module and array, 30-50 ms of a one-second noisify run
    (measured).  For a program's last line, once its files are written and its threads joined:
    atexit handlers do not run.  A flush that fails (a closed pipe) makes a zero status 1."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            status = status or 1
    os._exit(status)
