"""Errors the user caused, and how every command line reports them: one line, a non-zero status."""
from __future__ import annotations

import sys
from typing import Callable, Sequence


class InputError(ValueError):
    """Bad user input: one line naming the flag or file at fault."""


def report_failures(prog: str, run: Callable[[Sequence[str]], int], argv: Sequence[str],
                    interrupted: str = "interrupted", out_of_memory: str = "") -> int:
    """``run(argv)``, with bad input (exit 2), Ctrl-C (130), I/O failures (1) and, when
    ``out_of_memory`` says what to lower, MemoryError (2) reported on one line of stderr."""
    try:
        return run(argv)
    except InputError as exc:
        sys.stderr.write("%s: error: %s\n" % (prog, exc))
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("%s: %s\n" % (prog, interrupted))
        return 130
    except MemoryError:
        if not out_of_memory:
            raise
        sys.stderr.write("%s: error: out of memory: %s\n" % (prog, out_of_memory))
        return 2
    except OSError as exc:
        sys.stderr.write("%s: error: %s: %s\n" % (prog, getattr(exc, "filename", "") or "I/O", exc.strerror or exc))
        return 1
