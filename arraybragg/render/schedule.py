"""Scheduling: which pixels a render covers, the tiles they are cut into, and the workers that run them.

With NumPy, tiles run on forked worker processes that write into an image in
shared memory; GPU backends parallelise inside each tile instead.  Tiles whose
result depends on raster order (--c-parity's tricubic switch-off) run in order.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Optional

import numpy as np

from ..models.lab import Simulation

_FORKED_WORK: Optional[Callable] = None  # the tile function inherited by forked workers


def _render_forked_range(item):
    return _FORKED_WORK(*item)


def _default_signals() -> None:
    """In a forked worker: SIGINT and SIGTERM kill it outright.  Handlers inherited from the caller (the
    CLI's, which turn them into KeyboardInterrupt) run only between Python operations, and a worker
    seen blocked in C never ran them: Pool.terminate then waited for it forever."""
    import signal
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)


class RenderedPixels:
    """Flat indices (raster order) of the pixels inside the ROI and not masked, by position.

    Without a mask the ROI rectangle gives them arithmetically, so a full frame needs no
    multi-million-entry index array.
    """

    def __init__(self, sim: Simulation):
        d, smp = sim.detector, sim.sampling
        xmin, xmax, ymin, ymax = smp.roi
        self.fpixels = d.fpixels
        self.x0, self.y0 = max(xmin, 0), max(ymin, 0)
        self.width = max(min(xmax, d.fpixels - 1) - self.x0 + 1, 0)
        height = max(min(ymax, d.spixels - 1) - self.y0 + 1, 0)
        self.explicit = None if smp.mask is None else np.flatnonzero(smp.rendered(d.spixels, d.fpixels))
        self.count = self.width * height if self.explicit is None else len(self.explicit)

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, positions: slice) -> np.ndarray:
        if self.explicit is not None:
            return self.explicit[positions]
        start = self.y0 * self.fpixels + self.x0
        k = np.arange(*positions.indices(self.count))
        if self.width == self.fpixels:  # whole rows: one run of consecutive pixels
            return start + k
        return start + (k // self.width) * self.fpixels + k % self.width

    def at(self, position: int) -> int:
        """Flat index of the pixel at this position."""
        return int(self[position:position + 1][0])

    def contiguous(self, first: int, stop: int) -> bool:
        """Whether positions first..stop-1 are consecutive pixels (one slice of the image)."""
        if self.explicit is not None:
            return int(self.explicit[stop - 1]) - int(self.explicit[first]) == stop - first - 1
        return self.width == self.fpixels or first // self.width == (stop - 1) // self.width


class TileOutcome(NamedTuple):
    first: int                      # positions first..stop-1 in the RenderedPixels
    stop: int
    omega_sum: object               # 0-d array of the backend (summed on the device, read once)
    warning: Optional[str]          # nanoBragg's warning about the tile's first interpolation miss
    interpolation_off_at: Optional[int]   # flat pixel index where --c-parity's switch-off fired
    values: object = None           # the tile's float32 pixels on the device (backends without host workers)


class Workers:
    """Runs tiles: in order, on threads, or on forked processes (NumPy, CPU)."""

    def __init__(self, threads: int, host_workers: bool, in_order: bool):
        self.threads, self.host_workers, self.in_order = threads, host_workers, in_order

    def parallel(self, tiles: int) -> bool:
        """Tiles run concurrently: several workers and tiles, a CPU backend, and no --c-parity tricubic
        interpolation (nanoBragg switches it off at the first out-of-range point in raster order,
        so it runs in order).  GPU backends parallelise inside each tile instead."""
        return self.threads > 1 and tiles > 1 and self.host_workers and not self.in_order

    def forked(self, tiles: int) -> bool:
        import multiprocessing  # imported on first use: most of a render's start-up is imports
        return self.parallel(tiles) and "fork" in multiprocessing.get_all_start_methods()

    def run(self, work: Callable, ranges: list, forked: bool):
        """``work(*item)`` for each item of ``ranges``, yielding the results as tiles finish.

        Forked worker processes write into a shared image: Python threads were measured to give no
        speed-up here, because the per-operation Python overhead of many cache-sized NumPy calls
        keeps the GIL busy.
        """
        import multiprocessing
        from concurrent.futures import ThreadPoolExecutor
        if forked:
            global _FORKED_WORK
            _FORKED_WORK = work
            processes = min(self.threads, len(ranges))  # (no worker without a tile: --threads may be any number)
            pool = multiprocessing.get_context("fork").Pool(processes, initializer=_default_signals)
            try:
                # several tiles per task for many small tiles; one per task when there are few,
                # so that the workers finish together
                chunksize = max(1, min(4, len(ranges) // (8 * processes)))
                yield from pool.imap_unordered(_render_forked_range, ranges, chunksize=chunksize)
                pool.close()  # the workers leave on their own once the tasks are done
            except BaseException:
                pool.terminate()
                raise
            finally:
                pool.join()
                _FORKED_WORK = None
        elif self.parallel(len(ranges)):
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                yield from pool.map(lambda item: work(*item), ranges)
        else:
            for item in ranges:
                yield work(*item)


def zeros_float32(size: int, shared: bool) -> np.ndarray:
    """A flat float32 image of zeros; ``shared``: in anonymous shared memory, so that forked
    workers write their tiles straight into the parent's image (nothing to pickle or copy)."""
    if not shared:
        return np.zeros(size, dtype=np.float32)
    import mmap
    return np.frombuffer(mmap.mmap(-1, max(size, 1) * 4), dtype=np.float32, count=size)
