"""What a render puts on the device, once per Renderer: detector and beam vectors, subpixel offsets,
crystal orientations, the crystal-shape parameters and the structure-factor table.

The models hold host float64 NumPy arrays in metres; the tile code only reads what is staged here.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import physics
from ..backend import Backend
from ..models.lab import Simulation
from ..models.vectors import axis_rotation_matrix


def to_device(backend: Backend):
    """``put(host_values, dtype=float64)``: host values -> array of ``backend`` on its device."""
    f64 = backend.xp.float64
    return lambda values, dtype=f64: backend.asarray(np.asarray(values, dtype=np.float64), dtype=dtype)


@dataclass
class DetectorArrays:
    """Subpixel, sensor layer and source arrays of the pixel geometry (float64)."""

    sub_f: object           # (S,) fast index of each subpixel, subS-major order
    sub_s: object           # (S,) slow index of each subpixel
    odet_offsets: object    # (T,) depth of each sensor layer (m)
    incident: object        # (Src, 3) unit vectors along each source's beam
    wavelengths: object     # (Src,) m
    polar_axis: object      # (3,) E-vector direction


def stage_detector(sim: Simulation, backend: Backend) -> DetectorArrays:
    d, b, o = sim.detector, sim.beam, sim.sampling.oversample
    put = to_device(backend)
    sub = np.arange(o)
    return DetectorArrays(sub_f=put(np.tile(sub, o)), sub_s=put(np.repeat(sub, o)),
                          odet_offsets=put(np.arange(d.thicksteps) * d.thickstep), incident=put(-b.directions),
                          wavelengths=put(b.wavelengths), polar_axis=put(b.polar_vector))


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


@dataclass
class Orientations:
    """The K = phi x mosaic orientations of the cell."""

    count: int
    axes: np.ndarray        # host (K, 3, 3): [orientation, a/b/c, x/y/z] (m)
    rows: object            # (3K, 3) ordered (component, orientation): rows @ q^T reshapes to (3, K, N)
    first_rows: object      # the same for nanoBragg's first source loop (--c-parity), None where equal
    lengths: np.ndarray     # host (3,): longest a, b, c over the orientations (m)


def stage_orientations(sim: Simulation, backend: Backend) -> Orientations:
    put = to_device(backend)
    steady, first = orientation_matrices(sim)
    count = steady.shape[1] // 3
    as_axes = lambda m: m.T.reshape(count, 3, 3)
    as_rows = lambda axes: put(axes.transpose(1, 0, 2).reshape(-1, 3))
    axes = as_axes(steady)
    return Orientations(count=count, axes=axes, rows=as_rows(axes),
                        first_rows=None if first is None else as_rows(as_axes(first)),
                        lengths=np.linalg.norm(axes, axis=2).max(axis=0))


def stage_crystal_params(sim: Simulation, backend: Backend) -> dict:
    """The crystal-shape parameters ``physics.lattice_factor_sq`` takes."""
    c = sim.crystal
    return dict(N=(c.Na, c.Nb, c.Nc), shape=c.shape, fudge=c.fudge,
                reciprocal=to_device(backend)(np.stack([c.a_star, c.b_star, c.c_star])))


def stage_structure_factors(sim: Simulation, backend: Backend, squared_dtype) -> dict:
    """The F(hkl) lookup table (``physics.structure_factor_table``), or dict(default_F=, F=None)."""
    sf = sim.structure_factors
    grid = sf.grid
    if grid is None or grid.count == 0:
        return dict(default_F=sf.default_F, F=None)
    return physics.structure_factor_table(to_device(backend)(grid.F), (grid.h_min, grid.k_min, grid.l_min),
                                          (grid.h_max, grid.k_max, grid.l_max), sf.default_F,
                                          squared_dtype=squared_dtype, tricubic=sf.interpolate)
