"""Lattice and structure-factor terms: F_cell^2 F_latt^2 per (orientation, evaluation).

A tile's scattering vectors (N, 3) meet the K = phi x mosaic orientations as
(K, N) arrays, in cache-sized column chunks.  Two paths give the same sums:
the direct one (Miller indices by one matrix product per chunk) and, for the
float32 policy's SQUARE crystals with many close orientations, the
small-rotation path of :mod:`arraybragg.physics.increments`.  Tricubic
interpolation of F and nanoBragg's switch-off of it are kept in
:class:`Interpolation`.
"""
from __future__ import annotations

import math
from typing import Optional

from .. import physics
from ..backend import Backend, DtypePolicy
from ..models.lab import Simulation
from ..physics import compaction
from ..physics.increments import SmallRotations
from .staging import stage_crystal_params, stage_orientations, stage_structure_factors, to_device


class Interpolation:
    """Where tricubic interpolation applies, and nanoBragg's warning about the first evaluation where not.

    Default mode: an evaluation whose 4x4x4 neighbourhood leaves the grid takes the nearest
    F, every other evaluation interpolates.  ``switch_off`` (--c-parity): nanoBragg's switch,
    on until the first such evaluation in raster order and then off for the rest of the render;
    ``off_at`` is then that evaluation's index in its tile.  ``warning`` holds the warning of the
    first miss seen (per tile in default mode).
    """

    def __init__(self, enabled: bool, switch_off: bool):
        self.enabled = enabled
        self.switch_off = switch_off
        self.warning: Optional[str] = None
        self.off_at: Optional[int] = None

    @property
    def ordered(self) -> bool:
        """Whether the result depends on the order of the evaluations (tiles must run in raster order)."""
        return self.enabled and self.switch_off

    def usable(self, backend: Backend, hkl, unsafe, reached, start: int = 0):
        """Boolean (K, N): the evaluations that interpolate; records the warning at the first miss.

        ``start``: index in the tile of the first of these N evaluations."""
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
        self.off_at = start + cut // K
        return xp.permute_dims(xp.reshape(xp.arange(K * N, device=backend.device) < cut, (N, K)), (1, 0))


class LatticeTerms:
    """F_cell^2 F_latt^2 of a tile's evaluations over every orientation of one Simulation.

    ``reached``: whether the caller needs to know which evaluations nanoBragg reaches
    (its ordered accumulation multiplies nothing for the skipped ones).
    """

    def __init__(self, sim: Simulation, backend: Backend, policy: DtypePolicy, ordered_accumulation: bool):
        self.sim, self.backend, self.policy = sim, backend, policy
        self.xp = backend.xp
        self.lattice_dtype = policy.lattice_dtype(self.xp)
        self.ordered_accumulation = ordered_accumulation
        self.orientations = stage_orientations(sim, backend)
        self.crystal_params = stage_crystal_params(sim, backend)
        self.table = stage_structure_factors(sim, backend, self.lattice_dtype)
        self.interpolation = Interpolation(sim.structure_factors.interpolate and self.table["F"] is not None,
                                           switch_off=sim.c_parity)
        self.tile_elements = backend.tile_elements
        if self.interpolation.enabled:
            self.tile_elements *= backend.tricubic_chunk_factor
        self.increments = self._small_rotations()

    def _small_rotations(self) -> Optional[SmallRotations]:
        """The small-rotation plan where it applies: a sin for any argument (not the exact_sin
        polynomial), the SQUARE grating's phase form, and the usual unordered accumulation."""
        c, put = self.sim.crystal, to_device(self.backend)
        if (self.policy.exact_sin or c.shape != "SQUARE" or self.orientations.count <= 1
                or self.ordered_accumulation or self.interpolation.enabled):
            return None
        return SmallRotations.plan(self.orientations.axes, (c.Na, c.Nb, c.Nc),
                                   lambda m: put(m, self.lattice_dtype), put)

    def orientation_terms(self, scattering, keep, first_column: Optional[int], q_max: float, start: int = 0):
        """F_cell^2 F_latt^2 as (K, N) for N scattering vectors (N, 3), and the 'reached' mask or None.

        ``first_column``: the evaluation that is nanoBragg's first source loop of the render, which
        sees the unrotated cell at phi == 0 in --c-parity mode; ``q_max``: a host bound on |q| (1/m)
        of these vectors; ``start``: index in the tile of the first of these evaluations.
        """
        xp, orient = self.xp, self.orientations
        K, N = orient.count, scattering.shape[0]
        hkl = xp.reshape(orient.rows @ xp.permute_dims(scattering, (1, 0)), (3, K, N))
        if first_column is not None:
            hkl[:, :, first_column] = xp.reshape(orient.first_rows @ scattering[first_column, :], (3, K))
        nearest = physics.nearest_index(hkl)
        latt_sq = physics.lattice_factor_sq(hkl, nearest, self.crystal_params, self.lattice_dtype,
                                            self.policy.exact_sin or self.backend.polynomial_sin)
        reached = None
        if keep is not None:
            reached = xp.broadcast_to(keep, latt_sq.shape)
        if self.sim.sampling.water_size == 0.0 and (self.ordered_accumulation or self.interpolation.enabled):
            nonzero = latt_sq != 0
            reached = nonzero if reached is None else reached & nonzero
        if self.table["F"] is None:  # no grid: every F is default_F
            terms = latt_sq * (self.table["default_F"] ** 2)
        else:
            terms = xp.astype(self._structure_factors_sq(hkl, nearest, reached, q_max, start), self.lattice_dtype,
                              copy=False)
            terms *= latt_sq
        if keep is not None:
            terms = xp.where(reached, terms, xp.zeros_like(terms))
        return terms, reached

    def sums(self, scattering, keep, first_column: Optional[int], q_bound):
        """Sum over orientations of the terms of scattering vectors (N, 3): (N,) float64.

        ``q_bound(start, stop)``: a host bound on |q| (1/m) of the vectors start..stop-1 (no device
        value is read to choose a path)."""
        if self.increments is not None and self.increments.applies(q_bound(0, scattering.shape[0])):
            sums = self.increment_sums(scattering, keep, first_column, q_bound)
        else:
            sums = self.direct_sums(scattering, keep, first_column, q_bound)
        return self.xp.astype(sums, self.xp.float64)

    def _chunks(self, N: int):
        """(start, stop) of cache-sized column ranges of the (K, N) per-orientation work.

        The per-pixel geometry is cheap per element but costs many small calls, so it runs on a
        tile of several chunks at once.
        """
        chunk = max(1, self.tile_elements // self.orientations.count)
        # the standard leaves out-of-bounds slice stops undefined, hence the min
        return [(start, min(start + chunk, N)) for start in range(0, N, chunk)]

    def direct_sums(self, scattering, keep, first_column: Optional[int], q_bound):
        """Sum over orientations of F_cell^2 F_latt^2 for scattering vectors (N, 3): (N,), lattice dtype."""
        xp = self.xp
        sums = []
        for start, stop in self._chunks(scattering.shape[0]):
            column = first_column - start if first_column is not None and start <= first_column < stop else None
            terms, _ = self.orientation_terms(scattering[start:stop, :], None if keep is None else keep[start:stop],
                                              column, q_bound(start, stop), start)
            sums.append(terms[0, :] if terms.shape[0] == 1 else xp.sum(terms, axis=0))  # one orientation: no pass
        return self._concat(sums)

    def _concat(self, parts):
        return parts[0] if len(parts) == 1 else self.xp.concat(parts)

    def increment_sums(self, scattering, keep, first_column: Optional[int], q_bound):
        """``direct_sums`` by the small-rotation path (``increments.SmallRotations``).

        Evaluations where some orientation's h leaves the reference's nearest integer, exact
        lattice points and nanoBragg's first source loop (phi carry-over) are then redone by
        ``direct_sums``, all those of the tile together.  (Never with interpolation, so the
        evaluations ``direct_sums`` sees need not keep their place in the tile.)
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
                                                index_bound=self._index_bound(q_bound(0, scattering.shape[0])))
        sums = xp.astype(F_sq, dtype, copy=False) * latt_sum
        redo = redo | ~xp.isfinite(sums)
        if first_column is not None:
            redo = redo | (xp.arange(redo.shape[0], device=self.backend.device) == first_column)
        if keep is not None:
            redo = redo & keep
            sums = xp.where(keep, sums, xp.zeros_like(sums))
        order, count = compaction.front(redo)          # the tile's one host number on this path
        if count == 0:
            return sums
        column = None
        if first_column is not None:
            column = int(xp.sum(xp.astype(redo[:first_column], xp.int32)))
        subset = xp.permute_dims(compaction.take_front(xp.permute_dims(scattering, (1, 0)), order, count), (1, 0))
        whole = q_bound(0, scattering.shape[0])
        redone = self.direct_sums(subset, None, column, lambda start, stop: whole)
        return compaction.spread(redo, xp.astype(redone, sums.dtype), sums)

    def _index_bound(self, q_max: float):
        """Upper bounds on |h|, |k|, |l| (plus rounding) for scattering vectors up to |q| = q_max."""
        return [float(length) * q_max * (1 + 1e-12) + 1.0 for length in self.orientations.lengths]

    def _structure_factors_sq(self, hkl, nearest_hkl, reached, q_max: float, start: int):
        """F_cell^2 per evaluation (K, N): tricubic where interpolation applies, else the nearest grid point."""
        xp = self.xp
        bound = self._index_bound(q_max)
        if not self.interpolation.enabled:
            return physics.structure_factor_nearest(nearest_hkl, self.table, squared=True, index_bound=bound)
        mins, maxs = self.table["mins"], self.table["maxs"]
        if all(-b >= lo + 2 and b <= hi - 2 for b, lo, hi in zip(bound, mins, maxs)):
            F = physics.structure_factor_tricubic(hkl, self.table)  # every neighbourhood inside the grid
            return F * F
        unsafe = physics.interpolation_out_of_range(hkl, self.table)             # (K, N)
        use = self.interpolation.usable(self.backend, hkl, unsafe, reached, start)
        F = physics.structure_factor_tricubic(hkl, self.table, use)
        if not bool(xp.all(use)):
            F = xp.where(use, F, physics.structure_factor_nearest(nearest_hkl, self.table, index_bound=bound))
        return F * F
