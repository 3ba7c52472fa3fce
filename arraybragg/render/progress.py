"""A terminal progress bar for renders (tqdm), as a ``progress(done, total)`` callable.

:meth:`arraybragg.render.renderer.Renderer.render` calls ``progress(done, total)`` with
pixel counts as tiles finish; any callable works from Python.  The CLI passes
:func:`terminal_progress` when stderr is a terminal and ``-noprogress`` is not given.
"""
from __future__ import annotations

from typing import Callable, TextIO

__all__ = ["terminal_progress"]


def terminal_progress(stream: TextIO, delay_s: float = 1.0, refresh_s: float = 0.2) -> Callable[[int, int], None]:
    """A callable drawing a tqdm bar (pixels/s and time left) on ``stream``.

    Nothing is drawn for renders that finish within ``delay_s`` seconds; the bar is
    redrawn at most every ``refresh_s`` seconds and removed when the render completes.
    """
    from tqdm import tqdm

    state: dict = {}

    def show(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, file=stream, delay=delay_s, unit="px", unit_scale=True,
                                      desc="rendering", leave=False, dynamic_ncols=True,
                                      mininterval=refresh_s)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
    return show
