"""Accumulation: render a Simulation tile by tile, in nanoBragg's loop order.

nanoBragg walks pixel -> sensor layer -> subpixel -> source -> phi -> mosaic
domain.  Here a tile of pixels is one array computation with those loops as
array axes, in the same order, so C-order flattening reproduces the C's
sequence where --c-parity needs it (its tricubic switch-off, the running
products of the -oversample_* switches, phi carry-over).  The default mode
depends on no order.

The :class:`Renderer` puts the parts together, one module per job:
:mod:`.staging` (arrays on the device), :mod:`.pixels` (pixel geometry),
:mod:`.terms` (lattice and structure-factor terms), :mod:`.accumulate`
(per-pixel sums and scale), :mod:`.schedule` (tiles and workers) and
:mod:`.stats` (image statistics).
"""
from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from ..backend import Backend, DtypePolicy, default_threads, get_backend, get_policy, keep_freed_host_memory
from ..models.lab import Simulation
from .accumulate import Accumulation
from .pixels import PixelGeometry
from .schedule import RenderedPixels, TileOutcome, Workers, zeros_float32
from .staging import orientation_matrices
from .stats import RenderStats, compute_stats
from .terms import LatticeTerms

__all__ = ["Renderer", "RenderResult", "RenderStats", "RenderedPixels", "compute_stats",
           "orientation_matrices", "render"]


@dataclass
class RenderResult:
    image: np.ndarray                   # float32 (spixels, fpixels), photons per pixel
    stats: RenderStats
    log: list = field(default_factory=list)
    seconds: float = 0.0
    # nanoBragg's loop-carried state in --c-parity mode, as flat pixel indices (None: never):
    interpolation_off_at: Optional[int] = None  # the pixel where the tricubic switch-off fired
    first_phi_loop_at: Optional[int] = None     # the pixel of the first phi loop, where it matters


class Renderer:
    """Renders one Simulation on one backend with one dtype policy."""

    def __init__(self, sim: Simulation, backend: Backend | str = "numpy", policy: DtypePolicy | str = "float64",
                 threads: Optional[int] = None, tile_pixels: Optional[int] = None):
        self.sim = sim
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.policy = get_policy(policy) if isinstance(policy, str) else policy
        self.xp = self.backend.xp
        self.threads = threads or default_threads()
        self.fixed_tile_pixels = tile_pixels
        self.pixels = PixelGeometry(sim, self.backend)
        self.accumulation = Accumulation(sim, self.backend)
        self.terms = LatticeTerms(sim, self.backend, self.policy, self.accumulation.ordered)
        d = sim.detector
        self.evaluations_per_pixel = d.thicksteps * sim.sampling.oversample ** 2 * len(sim.beam.wavelengths)

    @property
    def interpolation(self):
        return self.terms.interpolation

    def tile_pixels(self) -> int:
        if self.fixed_tile_pixels:
            return self.fixed_tile_pixels
        inner = self.evaluations_per_pixel * self.terms.orientations.count
        # the usual path chunks the orientation work itself, so its tiles batch several chunks
        batch = 1 if (self.accumulation.ordered or self.interpolation.ordered) else self.backend.geometry_batch
        return max(1, batch * self.terms.tile_elements // max(inner, 1))

    def render(self, progress: Optional[Callable[[int, int], None]] = None) -> RenderResult:
        """Render every ROI/unmasked pixel; ``progress(done, total)`` is called as tiles finish."""
        if not self.backend.host_workers:
            return self._render(progress)
        keep_freed_host_memory()
        # BLAS gets one thread: the tiles already run on --threads workers (forked workers inherit
        # the limit), and OpenBLAS threads there were measured to spin against each other (renders
        # 5-25x slower); threadpoolctl sets this for whichever BLAS NumPy loaded
        from threadpoolctl import threadpool_limits
        with threadpool_limits(limits=1, user_api="blas"):
            return self._render(progress)

    def _render(self, progress) -> RenderResult:
        """All tiles.  A --c-parity tricubic render first runs like the default mode, on tiles and
        workers: without an out-of-range neighbourhood the C's switch-off never fires and the two
        agree.  Only when one does is the render repeated in raster order with the switch."""
        interpolation = self.interpolation
        if not interpolation.ordered:
            return self._render_tiles(progress)
        interpolation.switch_off = False
        result = self._render_tiles(progress)
        interpolation.switch_off = True
        return self._render_tiles(progress) if result.log else result

    def _render_tiles(self, progress) -> RenderResult:
        start = time.perf_counter()
        sim = self.sim
        d = sim.detector
        indices = RenderedPixels(sim)
        step = self.tile_pixels()
        first_loop = self._first_source_loop(indices, step)
        ranges = [(first, min(first + step, len(indices)), first_loop) for first in range(0, len(indices), step)]
        workers = Workers(self.threads, self.backend.host_workers, self.interpolation.ordered)
        forked = workers.forked(len(ranges))
        image = zeros_float32(d.spixels * d.fpixels, shared=forked)
        omega_sum = 0.0
        done = 0
        warnings = []  # (first pixel of the tile, nanoBragg's warning about its first interpolation miss)
        off_at = []
        on_device = []  # (first, values) of tiles kept on the device until the render ends
        for tile in workers.run(functools.partial(self._render_range, indices, image), ranges, forked):
            omega_sum = omega_sum + tile.omega_sum
            if tile.values is not None:
                on_device.append((tile.first, tile.values))
            done += tile.stop - tile.first
            if tile.warning:
                warnings.append((tile.first, tile.warning))
            if tile.interpolation_off_at is not None:
                off_at.append(tile.interpolation_off_at)
            if progress:
                progress(done, len(indices))
        if on_device:  # the device image reaches the host once
            on_device.sort(key=lambda item: item[0])
            values = self.xp.concat([v for _, v in on_device]) if len(on_device) > 1 else on_device[0][1]
            image[indices[0:len(indices)]] = self.backend.to_numpy(values)
        image = image.reshape(d.spixels, d.fpixels)
        log = [min(warnings)[1], "WARNING: further warnings will not be printed! "] if warnings else []
        return RenderResult(image=image, stats=compute_stats(image, sim, float(omega_sum)), log=log,
                            seconds=time.perf_counter() - start, interpolation_off_at=min(off_at, default=None),
                            first_phi_loop_at=None if first_loop is None else indices.at(first_loop[0]))

    def _first_source_loop(self, indices, step: int):
        """(index into ``indices``, evaluation within that pixel) of nanoBragg's first executed source
        loop, or None when the phi carry-over of --c-parity cannot matter.

        Without -dmin that is the first rendered pixel's first evaluation; with it, the first one the
        resolution cut keeps, found by a geometry-only scan in raster order.
        """
        if self.terms.orientations.first_rows is None or len(indices) == 0:
            return None
        if self.sim.sampling.dmin <= 0.0:
            return (0, 0)
        for first in range(0, len(indices), step):
            keep = self.pixels.kept_evaluations(indices[first:min(first + step, len(indices))])
            if bool(self.xp.any(keep)):
                position = int(self.xp.argmax(self.xp.astype(keep, self.xp.int8)))
                return (first + position // self.evaluations_per_pixel, position % self.evaluations_per_pixel)
        return None

    def _render_range(self, indices, image, first: int, stop: int, first_loop) -> TileOutcome:
        """Render one tile into ``image`` (flat float32, host)."""
        column = None
        if first_loop is not None and first <= first_loop[0] < stop:
            column = (first_loop[0] - first) * self.evaluations_per_pixel + first_loop[1]
        per_pixel = self.evaluations_per_pixel

        def q_bound(lo: int, hi: int) -> float:  # over the tile's evaluations lo..hi-1, from the host
            return self.pixels.q_bound(indices.at(first + lo // per_pixel), indices.at(first + (hi - 1) // per_pixel))
        with self.backend.quiet():
            values, omega = self._tile(indices[first:stop], q_bound, first_column=column)
            values = self.xp.astype(values, self.xp.float32)
        on_device = None
        if not self.backend.host_workers:
            on_device = values  # kept on the device: the image reaches the host once, at the end
        elif indices.contiguous(first, stop):  # plain slice, no gather
            lo = indices.at(first)
            image[lo:lo + stop - first] = values
        else:
            image[indices[first:stop]] = values
        # each tile reports its own first interpolation miss (the render keeps the first in raster order)
        interpolation = self.interpolation
        warning, interpolation.warning = interpolation.warning, None
        off_at, interpolation.off_at = interpolation.off_at, None
        if off_at is not None:
            off_at = indices.at(first + off_at // self.evaluations_per_pixel)
        return TileOutcome(first, stop, self.accumulation.omega_total(omega), warning, off_at, on_device)

    def _tile(self, pixel_index, q_bound, first_column: Optional[int] = None):
        """Float64 photons for a tile of rendered pixels (flat indices, raster order), and its solid angles.

        Evaluations are laid out as (K, N): K = phi x mosaic orientations,
        N = pixel x layer x subpixel x source in C order; Miller indices as
        (3, K, N) so that h, k and l are contiguous blocks.
        """
        smp = self.sim.sampling
        geometry = self.pixels.tile(pixel_index, every_capture=smp.oversample_thick, every_omega=smp.oversample_omega)
        omega, capture = geometry.omega, geometry.capture
        P = omega.shape[0]
        keep = self.pixels.resolution_cut(geometry.scattering)
        polar = self.pixels.polarization(geometry, first_only=keep is None and not smp.oversample_polar)
        scattering = self.xp.reshape(geometry.scattering, (-1, 3))
        accumulation = self.accumulation
        factors = accumulation.factors(omega, capture, polar)
        if accumulation.ordered:
            terms, reached = self.terms.orientation_terms(scattering, keep, first_column,
                                                          q_bound(0, scattering.shape[0]))
            I = accumulation.ordered_sum(terms, reached, factors, P)
        else:
            # chunks run in raster order, so --c-parity's tricubic switch-off still comes at its first miss
            I = accumulation.unordered_sum(self.terms.sums(scattering, keep, first_column, q_bound), factors, P)
        return accumulation.final_scale(I, omega, capture, polar, keep), omega


def render(sim: Simulation, backend="numpy", dtype="float64", threads=None, progress=None,
           backend_array: bool = False) -> RenderResult:
    """Render a Simulation: float32 image (spixels, fpixels) of photons per pixel plus statistics.

    The image is a NumPy array; with ``backend_array=True`` it is an array of the chosen
    backend instead (a CuPy array stays on the GPU for further array-API work).
    """
    renderer = Renderer(sim, backend, dtype, threads=threads)
    result = renderer.render(progress=progress)
    if backend_array:
        result.image = renderer.backend.asarray(result.image)
    return result
