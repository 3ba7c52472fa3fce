"""Writing files safely: all of a file or none of it, all of a set of files or none of them."""
from __future__ import annotations

import contextlib
import os

from ..concurrency import each


def atomic_write(path, *chunks) -> None:
    """Write bytes-like ``chunks`` to ``path`` through a temporary file and ``os.replace``.

    A failure (OSError and the like, re-raised) never leaves a partial file.  The
    file gets the permissions a plain ``open`` would give (0666 minus umask).
    """
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    handle = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(handle, "wb") as stream:
            for chunk in chunks:
                stream.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


class StagedOutputs:
    """Output files that appear all together or not at all.

    ``stage(path)`` gives a hidden temporary name beside ``path`` to write to; leaving the
    ``with`` block normally renames every staged file to its path, an exception removes
    them all (an OSError is re-raised naming the path the user gave, not the temporary).
    """

    def __init__(self):
        self._staged: list[tuple[str, str]] = []
        self._current = None

    def stage(self, path) -> str:
        path = os.fspath(path)
        directory, name = os.path.split(os.path.abspath(path))
        temporary = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.part")
        self._staged.append((temporary, path))
        self._current = path
        return temporary

    def __enter__(self) -> "StagedOutputs":
        return self

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if exc is None:
                each(self._commit, self._staged, len(self._staged))
                self._staged.clear()
            elif isinstance(exc, OSError) and self._current is not None:  # name the path, not the temporary
                exc = OSError(exc.errno, exc.strerror, self._current)
        except OSError as error:
            exc = error
        finally:
            for temporary, _ in self._staged:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
        if isinstance(exc, OSError):
            raise exc from None

    @staticmethod
    def _commit(staged: tuple) -> None:
        """Rename one staged file to its path (all of them at once, on threads: replacing a file frees
        its pages, 8-16 ms for a 12 MB image here).  An error names the path."""
        temporary, path = staged
        try:
            os.replace(temporary, path)
        except OSError as error:
            raise OSError(error.errno, error.strerror, path) from None
