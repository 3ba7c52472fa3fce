"""Accumulation: render a Simulation tile by tile, in nanoBragg's loop order.

nanoBragg walks pixel -> sensor layer -> subpixel -> source -> phi -> mosaic
domain.  Here a tile of pixels is one array computation with those loops as
array axes, in the same order, so C-order flattening reproduces the C's
sequence where --c-parity needs it (its tricubic switch-off, the running
products of the -oversample_* switches, phi carry-over).  The default mode
depends on no order.  Tiles bound the memory; with NumPy they run on forked
worker processes (see ``_run_tiles``).
"""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from .. import physics
from ..backend import Backend, DtypePolicy, get_backend, get_policy, keep_freed_host_memory
from ..models.vectors import axis_rotation_matrix
from ..physics.increments import SmallRotations
from ..models.lab import Simulation


_FORKED_WORK = None  # (Renderer, pixel indices) inherited by forked workers


def _render_forked_range(item):
    renderer, indices, image = _FORKED_WORK
    return renderer._render_range(indices, image, *item)


def default_threads() -> int:
    """All cores this process may use."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@dataclass
class RenderStats:
    """nanoBragg's statistics over rendered (ROI, unmasked) pixels of the float image."""

    max_I: float
    max_I_x: float      # fast coordinate (m) of the last subpixel of the brightest pixel
    max_I_y: float
    mean: float
    rms: float
    rmsd: float
    omega_sum: float    # sum of solid angles over rendered subpixels (sr), before /steps
    pixels: int


@dataclass
class RenderResult:
    image: np.ndarray                   # float32 (spixels, fpixels), photons per pixel
    stats: RenderStats
    log: list = field(default_factory=list)
    seconds: float = 0.0


def orientation_matrices(sim: Simulation):
    """Cell vectors per (phi, mosaic) step as columns: (3, 3*K) for h,k,l = q @ M.

    Returns (steady, first): ``first`` differs only in --c-parity mode, where
    nanoBragg skips the rotation at phi == 0 and keeps the previous one; the
    very first iteration of a render has no previous rotation.
    """
    g, c = sim.goniometer, sim.crystal
    cell = np.stack([c.a, c.b, c.c], axis=1)            # columns a, b, c
    phis = g.phis
    rotations = [axis_rotation_matrix(g.spindle, phi) for phi in phis]
    steady = list(rotations)
    first = list(rotations)
    if sim.c_parity:
        nonzero = [i for i, phi in enumerate(phis) if phi != 0.0]
        for i, phi in enumerate(phis):
            if phi != 0.0:
                continue
            before = [j for j in nonzero if j < i]
            steady[i] = rotations[(before or nonzero)[-1]] if nonzero else np.eye(3)
            first[i] = rotations[before[-1]] if before else np.eye(3)

    def build(per_phi):
        umats = g.mosaic_umats if g.mosaic_spread > 0.0 else g.mosaic_umats[:1]
        blocks = [u @ rot @ cell for rot in per_phi for u in umats]
        return np.concatenate(blocks, axis=1)

    steady_m, first_m = build(steady), build(first)
    return steady_m, (None if np.array_equal(first_m, steady_m) else first_m)


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

    def contiguous(self, first: int, stop: int) -> bool:
        """Whether positions first..stop-1 are consecutive pixels (one slice of the image)."""
        if self.explicit is not None:
            return int(self.explicit[stop - 1]) - int(self.explicit[first]) == stop - first - 1
        return self.width == self.fpixels or first // self.width == (stop - 1) // self.width


class _Interpolation:
    """Where tricubic interpolation applies, and nanoBragg's warning about the first evaluation where not.

    Default mode: an evaluation whose 4x4x4 neighbourhood leaves the grid takes the nearest
    F, every other evaluation interpolates.  ``switch_off`` (--c-parity): nanoBragg's switch,
    on until the first such evaluation in raster order and then off for the rest of the render.
    ``warning`` holds the warning of the first miss seen (per tile in default mode).
    """

    def __init__(self, enabled: bool, switch_off: bool):
        self.enabled = enabled
        self.switch_off = switch_off
        self.warning: Optional[str] = None

    @property
    def ordered(self) -> bool:
        """Whether the result depends on the order of the evaluations (tiles must run in raster order)."""
        return self.enabled and self.switch_off

    def usable(self, backend: Backend, hkl, unsafe, reached):
        """Boolean (K, N): the evaluations that interpolate; records the warning at the first miss."""
        xp = backend.xp
        bad = unsafe if reached is None else unsafe & reached
        bad_c_order = xp.reshape(xp.permute_dims(bad, (1, 0)), (-1,))            # nanoBragg's loop order
        if not bool(xp.any(bad_c_order)):
            return ~unsafe
        cut = int(xp.argmax(xp.astype(bad_c_order, xp.int8)))
        K, N = bad.shape
        if self.warning is None:
            hv = [float(v) for v in backend.to_numpy(hkl[:, cut % K, cut // K])]
            self.warning = ("WARNING: out of range for three point interpolation: h,k,l,h0,k0,l0: %g,%g,%g,%d,%d,%d"
                            % (*hv, *(int(math.ceil(v - 0.5)) for v in hv)))
        if not self.switch_off:
            return ~unsafe
        self.enabled = False
        return xp.permute_dims(xp.reshape(xp.arange(K * N, device=backend.device) < cut, (N, K)), (1, 0))


class Renderer:
    """Renders one Simulation on one backend with one dtype policy."""

    def __init__(self, sim: Simulation, backend: Backend | str = "numpy", policy: DtypePolicy | str = "float64",
                 threads: Optional[int] = None, tile_pixels: Optional[int] = None):
        self.sim = sim
        self.backend = get_backend(backend) if isinstance(backend, str) else backend
        self.policy = get_policy(policy) if isinstance(policy, str) else policy
        xp = self.backend.xp
        self.xp = xp
        self.threads = threads or default_threads()
        self.tile_elements = self.backend.tile_elements
        self.geometry_batch = self.backend.geometry_batch
        self.fixed_tile_pixels = tile_pixels
        self.f64 = xp.float64
        self.lattice_dtype = self.policy.lattice_dtype(xp)
        d, b, c = sim.detector, sim.beam, sim.crystal
        asarray = lambda a, dtype=xp.float64: self.backend.asarray(np.asarray(a, dtype=np.float64), dtype=dtype)
        self.fdet, self.sdet, self.odet = (asarray(v) for v in (d.fdet, d.sdet, d.odet))
        self.beam_vector = asarray(d.beam_vector)
        self.incident = asarray(-b.directions)                 # (Src, 3)
        self.wavelengths = asarray(b.wavelengths)              # (Src,)
        self.polar_axis = asarray(b.polar_vector)
        steady, first = orientation_matrices(sim)
        self.n_orient = steady.shape[1] // 3
        cell_axes = steady.T.reshape(self.n_orient, 3, 3)     # [orientation, a/b/c, x/y/z]
        # rows ordered (component, orientation) so that orient_t @ q^T reshapes to (3, K, N)
        as_rows = lambda axes: asarray(axes.transpose(1, 0, 2).reshape(-1, 3))
        self.orient_t = as_rows(cell_axes)
        self.orient_first_t = None if first is None else as_rows(first.T.reshape(self.n_orient, 3, 3))
        self.evaluations_per_pixel = d.thicksteps * sim.sampling.oversample ** 2 * len(b.wavelengths)
        # -oversample_* factors weigh each contribution; --c-parity multiplies nanoBragg's running sum
        self.weighted = bool(sim.sampling.oversample_thick or sim.sampling.oversample_polar
                             or sim.sampling.oversample_omega)
        self.ordered_accumulation = self.weighted and sim.c_parity
        self.crystal_params = dict(N=(c.Na, c.Nb, c.Nc), shape=c.shape, fudge=c.fudge,
                                   reciprocal=asarray(np.stack([c.a_star, c.b_star, c.c_star])))
        sf = sim.structure_factors
        grid = sf.grid
        self.table = dict(default_F=sf.default_F, F=None)
        if grid is not None and grid.count > 0:
            self.table = physics.structure_factor_table(asarray(grid.F), (grid.h_min, grid.k_min, grid.l_min),
                                                        (grid.h_max, grid.k_max, grid.l_max), sf.default_F,
                                                        squared_dtype=self.lattice_dtype)
        # |h| <= |cell vector| |q|: per-chunk bounds on the indices from the longest rotated vectors
        self.cell_lengths = np.linalg.norm(cell_axes, axis=2).max(axis=0)
        self.interpolation = _Interpolation(sf.interpolate and self.table["F"] is not None, switch_off=sim.c_parity)
        if self.interpolation.enabled:
            self.tile_elements *= self.backend.tricubic_chunk_factor
        self.I_bg = physics.water_background(b.fluence, sim.sampling.water_size)
        smp = sim.sampling
        o = smp.oversample
        sub = np.arange(o)
        self.sub_f = asarray(np.tile(sub, o))                  # subpixel fast index, subS-major order
        self.sub_s = asarray(np.repeat(sub, o))
        self.odet_offsets = asarray(np.arange(d.thicksteps) * d.thickstep)
        # the small-rotation path needs a sin for any argument (not the exact_sin polynomial), the
        # SQUARE grating's phase form, and the usual unordered accumulation
        self.increments = None
        if (not self.policy.exact_sin and c.shape == "SQUARE" and self.n_orient > 1
                and not (self.ordered_accumulation or self.interpolation.enabled)):
            self.increments = SmallRotations.plan(cell_axes, (c.Na, c.Nb, c.Nc),
                                                  lambda m: asarray(m, self.lattice_dtype), asarray)

    # ----------------------------------------------------------------- kernel
    def _geometry(self, fast, slow):
        """Per (pixel, layer, subpixel): unit diffracted vectors as three (P, T, S) components,
        solid angle and capture fraction (P, T, S)."""
        xp, sim = self.xp, self.sim
        d, o = sim.detector, sim.sampling.oversample
        subpixel = d.pixel_size / o
        Fdet = subpixel * (fast[:, None] * o + self.sub_f[None, :]) + subpixel / 2.0      # (P, S)
        Sdet = subpixel * (slow[:, None] * o + self.sub_s[None, :]) + subpixel / 2.0
        Odet = self.odet_offsets[None, :, None]                                            # (1, T, 1)
        # one (P, T, S) array per lab component: contiguous, no strided x/y/z slices
        pos = [Fdet[:, None, :] * float(d.fdet[i]) + Sdet[:, None, :] * float(d.sdet[i])
               + Odet * float(d.odet[i]) + float(d.pix0[i]) for i in range(3)]
        if d.curved:
            stacked = xp.stack(pos, axis=-1)
            start = xp.broadcast_to(d.distance * self.beam_vector, stacked.shape)
            swung = physics.rotate_about_axis(start, self.sdet, stacked[..., 1] / d.distance)
            stacked = physics.rotate_about_axis(swung, self.fdet, stacked[..., 2] / d.distance)
            pos = [stacked[..., i] for i in range(3)]
        airpath = xp.sqrt(pos[0] * pos[0] + pos[1] * pos[1] + pos[2] * pos[2])
        diffracted = [p / airpath for p in pos]
        if d.point_pixel:
            omega = 1.0 / airpath / airpath
        else:
            omega = d.pixel_size * d.pixel_size / airpath / airpath * d.close_distance / airpath
        if d.thickness > 0.0 or sim.sampling.oversample_thick:
            # with -oversample_thick nanoBragg evaluates the layer formula even for a sensor of
            # zero thickness, which gives 0: it renders an empty image, and so do we
            parallax = sum(component * float(d.odet[i]) for i, component in enumerate(diffracted))
            layers = [physics.capture_fraction(parallax[:, t, :], t, d.thickstep, d.mu) for t in range(d.thicksteps)]
            capture = xp.stack(layers, axis=1)
        else:
            capture = xp.ones_like(omega)
        return diffracted, omega, capture

    def _scattering(self, pixel_index):
        """Geometry of a tile: diffracted (P,T,S,3), omega, capture (P,T,S), scattering (P,T,S,Src,3) in 1/m.

        The scattering vectors are a view of a component-major (3, P, T, S, Src) array: each
        component is one contiguous block for the matrix products over all evaluations.
        """
        xp = self.xp
        fpixels = self.sim.detector.fpixels
        # row and column in float64 (exact below 2^53 pixels): cheaper than int64 division
        idx = xp.astype(self.backend.asarray(pixel_index, dtype=xp.int64), self.f64)
        slow = xp.floor(idx / fpixels)
        diffracted, omega, capture = self._geometry(idx - slow * fpixels, slow)
        q = xp.stack([(component[..., None] - self.incident[:, i]) / self.wavelengths
                      for i, component in enumerate(diffracted)])
        return xp.stack(diffracted, axis=-1), omega, capture, xp.permute_dims(q, (1, 2, 3, 4, 0))

    def _resolution_cut(self, scattering):
        """Flat (N,) mask of the (pixel, layer, subpixel, source) evaluations -dmin keeps, or None."""
        xp, dmin = self.xp, self.sim.sampling.dmin
        if dmin <= 0.0:
            return None
        stol = 0.5 * physics.norm(scattering)
        positive = stol > 0.0
        keep = ~(positive & (dmin > 0.5 / xp.where(positive, stol, xp.ones_like(stol))))
        return xp.reshape(keep, (-1,))

    def _kept_evaluations(self, pixel_index):
        return self._resolution_cut(self._scattering(pixel_index)[3])

    def _tile(self, pixel_index, first_column: Optional[int] = None):
        """Float64 photons for a tile of rendered pixels (flat indices, raster order).

        Evaluations are laid out as (K, N): K = phi x mosaic orientations,
        N = pixel x layer x subpixel x source in C order; Miller indices as
        (3, K, N) so that h, k and l are contiguous blocks.
        """
        xp, sim, smp = self.xp, self.sim, self.sim.sampling
        diffracted, omega, capture, scattering = self._scattering(pixel_index)
        P = omega.shape[0]
        keep = self._resolution_cut(scattering)
        polar_needed = not (sim.beam.nopolar and not smp.oversample_polar)
        polar = (physics.polarization_factor(self.incident, diffracted[:, :, :, None, :], self.polar_axis,
                                             sim.beam.polarization) if polar_needed else None)
        scattering = xp.reshape(scattering, (-1, 3))
        factors = self._contribution_factors(omega, capture, polar)
        if self.ordered_accumulation:
            terms, reached = self._orientation_terms(scattering, keep, first_column)
            I = self._accumulate_ordered(terms, reached, factors, P)
        else:
            # chunks run in raster order, so --c-parity's tricubic switch-off still comes at its first miss
            if self.increments is not None and self.increments.applies(q_max := self._q_max(scattering)):
                sums = self._increment_sums(scattering, keep, first_column, q_max)
            else:
                sums = self._direct_sums(scattering, keep, first_column)
            sums = xp.astype(sums, self.f64)
            if factors is not None:
                sums = sums * factors
            I = xp.sum(xp.reshape(sums, (P, -1)), axis=1) + self.I_bg
        return self._final_scale(I, omega, capture, polar, keep), omega

    def _orientation_terms(self, scattering, keep, first_column: Optional[int]):
        """F_cell^2 F_latt^2 as (K, N) for N scattering vectors (N, 3), and the 'reached' mask or None.

        ``first_column``: the evaluation that is nanoBragg's first source loop of the render, which
        sees the unrotated cell at phi == 0 in --c-parity mode.
        """
        xp, smp = self.xp, self.sim.sampling
        K, N = self.n_orient, scattering.shape[0]
        hkl = xp.reshape(self.orient_t @ xp.permute_dims(scattering, (1, 0)), (3, K, N))
        if first_column is not None:
            hkl[:, :, first_column] = xp.reshape(self.orient_first_t @ scattering[first_column, :], (3, K))
        nearest = physics.nearest_index(hkl)
        latt_sq = physics.lattice_factor_sq(hkl, nearest, self.crystal_params, self.lattice_dtype,
                                            self.policy.exact_sin)
        reached = None
        if keep is not None:
            reached = xp.broadcast_to(keep, latt_sq.shape)
        if smp.water_size == 0.0 and (self.ordered_accumulation or self.interpolation.enabled):
            nonzero = latt_sq != 0
            reached = nonzero if reached is None else reached & nonzero
        terms = xp.astype(self._structure_factors_sq(hkl, nearest, reached, scattering), self.lattice_dtype,
                          copy=False)
        terms *= latt_sq
        if keep is not None:
            terms = xp.where(reached, terms, xp.zeros_like(terms))
        return terms, reached

    def _chunks(self, N: int):
        """(start, stop) of cache-sized column ranges of the (K, N) per-orientation work.

        The per-pixel geometry is cheap per element but costs many small calls, so it runs on a
        tile of several chunks at once.
        """
        chunk = max(1, self.tile_elements // self.n_orient)
        # the standard leaves out-of-bounds slice stops undefined, hence the min
        return [(start, min(start + chunk, N)) for start in range(0, N, chunk)]

    @staticmethod
    def _local_column(column: Optional[int], start: int, stop: int) -> Optional[int]:
        return column - start if column is not None and start <= column < stop else None

    def _direct_sums(self, scattering, keep, first_column: Optional[int]):
        """Sum over orientations of F_cell^2 F_latt^2 for scattering vectors (N, 3): (N,), lattice dtype."""
        xp = self.xp
        sums = []
        for start, stop in self._chunks(scattering.shape[0]):
            terms, _ = self._orientation_terms(scattering[start:stop, :], None if keep is None else keep[start:stop],
                                               self._local_column(first_column, start, stop))
            sums.append(xp.sum(terms, axis=0))
        return self._concat(sums)

    def _concat(self, parts):
        return parts[0] if len(parts) == 1 else self.xp.concat(parts)

    def _increment_sums(self, scattering, keep, first_column: Optional[int], q_max: float):
        """``_direct_sums`` by the small-rotation path (``increments.SmallRotations``).

        Evaluations where some orientation's h leaves the reference's nearest integer, exact
        lattice points and nanoBragg's first source loop (phi carry-over) are then redone by
        ``_direct_sums``, all those of the tile together.
        """
        xp, plan, dtype = self.xp, self.increments, self.lattice_dtype
        # per evaluation, once for the tile: indices at the reference orientation (exact, float64)
        q_t = xp.permute_dims(scattering, (1, 0))                        # (3, N), contiguous rows
        h_ref = plan.reference @ q_t
        nearest = physics.nearest_index(h_ref)
        offsets = (h_ref - nearest) * math.pi                              # phases pi (h - nearest)
        q_and_offsets = xp.astype(xp.concat([q_t, offsets]), dtype)
        parts, redo_parts = [], []
        for start, stop in self._chunks(scattering.shape[0]):
            latt_sum, redo = plan.lattice_sums(q_and_offsets[:, start:stop])
            parts.append(latt_sum)
            redo_parts.append(redo)
        latt_sum, redo = self._concat(parts), self._concat(redo_parts)
        F_sq = physics.structure_factor_nearest(nearest, self.table, squared=True,
                                                index_bound=self._index_bound(q_max))
        sums = xp.astype(F_sq, dtype, copy=False) * latt_sum
        redo = redo | ~xp.isfinite(sums)
        if first_column is not None:
            redo = redo | (xp.arange(redo.shape[0], device=self.backend.device) == first_column)
        if keep is not None:
            redo = redo & keep
            sums = xp.where(keep, sums, xp.zeros_like(sums))
        if bool(xp.any(redo)):
            column = None
            if first_column is not None:
                column = int(xp.sum(xp.astype(redo[:first_column], xp.int32)))
            sums[redo] = self._direct_sums(scattering[redo], None, column)
        return sums

    def _q_max(self, scattering) -> float:
        """Largest |q| (1/m) of scattering vectors (N, 3); 0 for none."""
        if scattering.shape[0] == 0:
            return 0.0
        return math.sqrt(float(self.xp.max(physics.dot(scattering, scattering))))

    def _index_bound(self, q_max: float):
        """Upper bounds on |h|, |k|, |l| (plus rounding) for scattering vectors up to |q| = q_max."""
        return [float(length) * q_max * (1 + 1e-12) + 1.0 for length in self.cell_lengths]

    def _structure_factors_sq(self, hkl, nearest_hkl, reached, scattering):
        """F_cell^2 per evaluation (K, N): tricubic where interpolation applies, else the nearest grid point."""
        xp = self.xp
        bound = self._index_bound(self._q_max(scattering))
        if not self.interpolation.enabled:
            return physics.structure_factor_nearest(nearest_hkl, self.table, squared=True, index_bound=bound)
        mins, maxs = self.table["mins"], self.table["maxs"]
        if all(-b >= lo + 2 and b <= hi - 2 for b, lo, hi in zip(bound, mins, maxs)):
            F = physics.structure_factor_tricubic(hkl, self.table)  # every neighbourhood inside the grid
            return F * F
        unsafe = physics.interpolation_out_of_range(hkl, self.table)             # (K, N)
        use = self.interpolation.usable(self.backend, hkl, unsafe, reached)
        F = physics.structure_factor_tricubic(hkl, self.table, use)
        if not bool(xp.all(use)):
            F = xp.where(use, F, physics.structure_factor_nearest(nearest_hkl, self.table, index_bound=bound))
        return F * F

    def _contribution_factors(self, omega, capture, polar):
        """The -oversample_thick/_omega/_polar factors of each (pixel, layer, subpixel, source) as (N,)
        float64, or None without those switches."""
        xp, smp = self.xp, self.sim.sampling
        if not self.weighted:
            return None
        factor = xp.ones(omega.shape + (self.wavelengths.shape[0],), dtype=self.f64, device=self.backend.device)
        if smp.oversample_thick:
            factor = factor * capture[..., None]
        if smp.oversample_omega:
            factor = factor * omega[..., None]
        if smp.oversample_polar:
            factor = factor * polar
        return xp.reshape(factor, (-1,))

    def _accumulate_ordered(self, terms, reached, factors, P: int):
        """--c-parity: per-pixel sum of the (K, N) terms in nanoBragg's order, with its running products
        for the -oversample_* switches (each applies to the whole sum so far, after every term)."""
        xp = self.xp
        K, N = terms.shape
        factor = xp.broadcast_to(xp.reshape(factors, (N, 1)), (N, K))
        if reached is not None:  # skipped evaluations multiply nothing
            factor = xp.where(xp.permute_dims(reached, (1, 0)), factor, xp.ones_like(factor))
        flat_terms = xp.reshape(xp.astype(xp.permute_dims(terms, (1, 0)), self.f64), (P, -1))
        flat_factor = xp.reshape(factor, (P, -1))
        I = xp.full((P,), self.I_bg, dtype=self.f64, device=self.backend.device)
        for j in range(flat_terms.shape[1]):
            I = (I + flat_terms[:, j]) * flat_factor[:, j]
        return I

    def _final_scale(self, I, omega, capture, polar, keep):
        """r_e^2 fluence I / steps times the 'last computed' factors nanoBragg applies at the end."""
        sim, smp = self.sim, self.sim.sampling
        value = physics.R_E_SQR * sim.beam.fluence * I / sim.steps
        if not smp.oversample_thick:
            value = value * capture[:, -1, 0]
        if not (smp.oversample_polar or sim.beam.nopolar):
            value = value * self._first_polar(polar, keep)
        if not smp.oversample_omega:
            value = value * omega[:, 0, 0]
        return value

    def _first_polar(self, polar, keep):
        """Polarization of the first evaluated (layer, subpixel, source): nanoBragg caches it per pixel."""
        xp = self.xp
        P = polar.shape[0]
        flat = xp.reshape(polar, (P, -1))
        if keep is not None:
            flat = xp.where(xp.reshape(keep, (P, -1)), flat, xp.zeros_like(flat))
        result = xp.zeros((P,), dtype=self.f64, device=self.backend.device)
        for j in range(flat.shape[1] - 1, -1, -1):
            result = xp.where(flat[:, j] != 0, flat[:, j], result)
        return result

    # ----------------------------------------------------------------- driver
    def tile_pixels(self) -> int:
        if self.fixed_tile_pixels:
            return self.fixed_tile_pixels
        d, smp = self.sim.detector, self.sim.sampling
        inner = d.thicksteps * smp.oversample ** 2 * len(self.sim.beam.wavelengths) * self.n_orient
        # the usual path chunks the orientation work itself, so its tiles batch several chunks
        batch = 1 if (self.ordered_accumulation or self.interpolation.ordered) else self.geometry_batch
        return max(1, batch * self.tile_elements // max(inner, 1))

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
        forked = self._forked_workers(len(ranges))
        image = _zeros_float32(d.spixels * d.fpixels, shared=forked)
        omega_sum = 0.0
        done = 0
        warnings = []  # (first pixel of the tile, nanoBragg's warning about its first interpolation miss)
        for first, stop, tile_omega, warning in self._run_tiles(indices, image, ranges, forked):
            omega_sum += tile_omega
            done += stop - first
            if warning:
                warnings.append((first, warning))
            if progress:
                progress(done, len(indices))
        image = image.reshape(d.spixels, d.fpixels)
        log = [min(warnings)[1], "WARNING: further warnings will not be printed! "] if warnings else []
        stats = compute_stats(image, sim, omega_sum)
        return RenderResult(image=image, stats=stats, log=log, seconds=time.perf_counter() - start)

    def _first_source_loop(self, indices, step: int):
        """(index into ``indices``, evaluation within that pixel) of nanoBragg's first executed source
        loop, or None when the phi carry-over of --c-parity cannot matter.

        Without -dmin that is the first rendered pixel's first evaluation; with it, the first one the
        resolution cut keeps, found by a geometry-only scan in raster order.
        """
        if self.orient_first_t is None or len(indices) == 0:
            return None
        if self.sim.sampling.dmin <= 0.0:
            return (0, 0)
        for first in range(0, len(indices), step):
            keep = self._kept_evaluations(indices[first:min(first + step, len(indices))])
            if bool(self.xp.any(keep)):
                position = int(self.xp.argmax(self.xp.astype(keep, self.xp.int8)))
                return (first + position // self.evaluations_per_pixel, position % self.evaluations_per_pixel)
        return None

    def _render_range(self, indices, image, first: int, stop: int, first_loop):
        """Render one tile into ``image`` (flat float32, host) -> (first, stop, omega sum, warning)."""
        column = None
        if first_loop is not None and first <= first_loop[0] < stop:
            column = (first_loop[0] - first) * self.evaluations_per_pixel + first_loop[1]
        with self.backend.quiet():
            values, omega = self._tile(indices[first:stop], first_column=column)
            values = self.backend.to_numpy(self.xp.astype(values, self.xp.float32))
        if indices.contiguous(first, stop):  # plain slice, no gather
            lo = int(indices[first:first + 1][0])
            image[lo:lo + stop - first] = values
        else:
            image[indices[first:stop]] = values
        # each tile reports its own first interpolation miss (the render keeps the first in raster order)
        warning, self.interpolation.warning = self.interpolation.warning, None
        return first, stop, self._omega_total(omega), warning

    def _parallel(self, tiles: int) -> bool:
        """Tiles run concurrently: several workers and tiles, a CPU backend, and no --c-parity tricubic
        interpolation (nanoBragg switches it off at the first out-of-range point in raster order,
        so it runs in order).  GPU backends parallelise inside each tile instead."""
        return self.threads > 1 and tiles > 1 and self.backend.host_workers and not self.interpolation.ordered

    def _forked_workers(self, tiles: int) -> bool:
        import multiprocessing  # imported on first use: most of a render's start-up is imports
        return self._parallel(tiles) and "fork" in multiprocessing.get_all_start_methods()

    def _run_tiles(self, indices, image, ranges, forked: bool):
        """Render the tiles into ``image``, yielding (first, stop, omega sum) as each finishes.

        The NumPy backend spreads tiles over forked worker processes that write into a shared
        image: Python threads were measured to give no speed-up here, because the per-operation
        Python overhead of many cache-sized NumPy calls keeps the GIL busy.
        """
        import multiprocessing
        from concurrent.futures import ThreadPoolExecutor
        if forked:
            global _FORKED_WORK
            _FORKED_WORK = (self, indices, image)
            try:
                with multiprocessing.get_context("fork").Pool(self.threads) as pool:
                    # several tiles per task for many small tiles; one per task when there are few,
                    # so that the workers finish together
                    chunksize = max(1, min(4, len(ranges) // (8 * self.threads)))
                    yield from pool.imap_unordered(_render_forked_range, ranges, chunksize=chunksize)
            finally:
                _FORKED_WORK = None
        elif self._parallel(len(ranges)):
            with ThreadPoolExecutor(max_workers=self.threads) as pool:
                yield from pool.map(lambda item: self._render_range(indices, image, *item), ranges)
        else:
            for item in ranges:
                yield self._render_range(indices, image, *item)

    def _omega_total(self, omega) -> float:
        """nanoBragg's omega_sum: the per-pixel cached omega unless -oversample_omega."""
        xp = self.xp
        if self.sim.sampling.oversample_omega:
            return float(xp.sum(omega))
        P, T, S = omega.shape
        return float(xp.sum(omega[:, 0, 0])) * T * S


def _zeros_float32(size: int, shared: bool) -> np.ndarray:
    """A flat float32 image of zeros; ``shared``: in anonymous shared memory, so that forked
    workers write their tiles straight into the parent's image (nothing to pickle or copy)."""
    if not shared:
        return np.zeros(size, dtype=np.float32)
    import mmap
    return np.frombuffer(mmap.mmap(-1, max(size, 1) * 4), dtype=np.float32, count=size)


def _float64_sums(values: np.ndarray, center: float = 0.0, rows: int = 256) -> tuple[float, float]:
    """(sum, sum of squares about center) in float64 of a float32 block, a few rows at a time."""
    total = squares = 0.0
    for start in range(0, values.shape[0], rows):
        chunk = values[start:start + rows].astype(np.float64)
        chunk -= center
        total += float(chunk.sum())
        squares += float(np.dot(chunk.reshape(-1), chunk.reshape(-1)))
    return total, squares


def compute_stats(image: np.ndarray, sim: Simulation, omega_sum: float) -> RenderStats:
    """nanoBragg's statistics: max_I (first brightest pixel in raster order), mean and rms over
    rendered pixels, rmsd about that mean over the whole ROI (masked pixels included, as the C)."""
    d, smp = sim.detector, sim.sampling
    xmin, xmax, ymin, ymax = smp.roi
    rows, cols = slice(max(ymin, 0), ymax + 1), slice(max(xmin, 0), xmax + 1)
    block = image[rows, cols]
    block_rendered = None if smp.mask is None else smp.mask[rows, cols] != 0
    values = block if block_rendered is None else block[block_rendered][None, :]
    n = values.size
    max_I = max_x = max_y = 0.0
    if n and float(values.max()) > 0.0:
        max_I = float(values.max())
        brightest = block == np.float32(max_I)
        if block_rendered is not None:
            brightest &= block_rendered
        block_index = int(np.argmax(brightest))
        fpixel = max(xmin, 0) + block_index % block.shape[1]
        spixel = max(ymin, 0) + block_index // block.shape[1]
        o = smp.oversample
        sub = d.pixel_size / o
        max_x = sub * (fpixel * o + o - 1) + sub / 2.0
        max_y = sub * (spixel * o + o - 1) + sub / 2.0
    total, sumsq = _float64_sums(values)
    mean = total / (n if n > 0 else 1)
    rms = math.sqrt(sumsq / ((n if n > 1 else 2) - 1))
    _, deviations_sq = _float64_sums(block, center=mean)
    m = block.size if block.size > 1 else 2
    rmsd = math.sqrt(deviations_sq / (m - 1))
    return RenderStats(max_I=max_I, max_I_x=max_x, max_I_y=max_y, mean=mean, rms=rms, rmsd=rmsd,
                       omega_sum=omega_sum, pixels=n)


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
