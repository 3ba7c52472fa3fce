"""The small-rotation path of the float32 policy (see docs/design.md, "Small rotations").

When the orientations of a render differ little (fine phi slicing, no or a small mosaic
spread), every h is the index at a reference orientation, known exactly in float64, plus a
small increment that float32 holds to ~1e-7 of itself.  The grating's phases pi h then need
no float64 work per orientation, and where no h of an evaluation leaves the reference's
nearest integer, F_cell is looked up once for all orientations.  The renderer redoes the
other evaluations by its direct path.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .lattice import grating_sq_from_phases
from ..backend import array_namespace, device

# an evaluation whose h comes this close (in index units) to a half-integer is redone directly
CROSSING_MARGIN = 1e-5
# a tile takes this path while its increments stay within this many index units, summed over
# the three axes (so that at most about half of its evaluations are redone)
MAX_EXCURSION = 0.5


@dataclass(frozen=True)
class SmallRotations:
    """Matrices of the path for one render's orientations.

    ``matrix`` (3K, 6), lattice dtype: rows (axis, orientation) acting on
    (q_x, q_y, q_z, offset_h, offset_k, offset_l), giving pi h = the increment pi q . dM
    plus the reference's phase in one product.  ``reference`` (3, 3) float64: the reference
    orientation's cell vectors as rows.  ``weights`` (1, K): multiplicities of identical
    orientations, or None when all differ.  ``excursion``: the largest change of the three
    cell vectors summed (m), so that |increment| <= excursion |q|.
    """

    matrix: object
    reference: object
    weights: Optional[object]
    orientations: int
    total_orientations: int
    excursion: float
    grating_axes: tuple
    N: tuple

    @classmethod
    def plan(cls, cell_axes: np.ndarray, N: tuple, lattice_array: Callable, float64_array: Callable):
        """Plan for orientations given by their cell vectors, (K, 3 axes, 3 components) host float64.

        ``lattice_array`` / ``float64_array`` turn host arrays into backend arrays of the
        lattice dtype / float64.  Identical orientations (in --c-parity mode a phi of 0 repeats
        another step's rotation) are evaluated once and weighted.
        """
        total = cell_axes.shape[0]
        axes, counts = np.unique(cell_axes, axis=0, return_counts=True)
        # the orientation closest to all others keeps the increments smallest
        spread = np.linalg.norm(axes[:, None] - axes[None, :], axis=(2, 3)).max(axis=1)
        reference = int(np.argmin(spread))
        change = axes - axes[reference]
        increments = math.pi * np.concatenate([change[:, i, :] for i in range(3)], axis=0)
        matrix = np.concatenate([increments, np.repeat(np.eye(3), len(axes), axis=0)], axis=1)
        grating_axes = tuple(i for i, n in enumerate(N) if n > 1)
        return cls(matrix=lattice_array(matrix), reference=float64_array(axes[reference]),
                   weights=None if np.all(counts == 1) else lattice_array(counts[None, :].astype(np.float64)),
                   orientations=len(axes), total_orientations=total,
                   excursion=float(np.linalg.norm(change, axis=2).max(axis=0).sum()),
                   grating_axes=grating_axes, N=tuple(float(N[i]) for i in grating_axes))

    def applies(self, q_max: float) -> bool:
        """Whether scattering vectors up to |q| = q_max (1/m) keep the increments small."""
        return self.excursion * q_max <= MAX_EXCURSION

    def lattice_sums(self, q_and_offsets):
        """(sum over orientations of F_latt^2 (N,), redo (N,) bool) for one cache-sized chunk.

        ``q_and_offsets`` (6, N), lattice dtype: the scattering vectors (1/m), then the phases
        pi (h - nearest) at the reference.  ``redo`` marks evaluations where some orientation's h
        leaves the reference's nearest integer; exact lattice points come out NaN.
        """
        xp = array_namespace(q_and_offsets)
        K, N = self.orientations, q_and_offsets.shape[1]
        phases = xp.reshape(self.matrix @ q_and_offsets, (3, K, N))      # pi h modulo pi
        edge = math.pi * (0.5 - CROSSING_MARGIN)
        redo = xp.any((xp.min(phases, axis=1) < -edge) | (xp.max(phases, axis=1) > edge), axis=0)
        if not self.grating_axes:
            return xp.full((N,), float(self.total_orientations), dtype=phases.dtype, device=device(phases)), redo
        latt_sq = grating_sq_from_phases([phases[i, ...] for i in self.grating_axes], self.N)
        if self.weights is None:
            return xp.sum(latt_sq, axis=0), redo
        return xp.reshape(self.weights @ latt_sq, (N,)), redo
