"""Pixel geometry: the one implementation of where a pixel is and what it sees.

For a tile of pixels (flat raster indices) and every sensor layer, subpixel and
source: lab positions, distance from the sample, unit diffracted vectors, solid
angle, sensor capture fraction, scattering vectors, polarization and the -dmin
resolution cut.  The renderer evaluates whole tiles; the trace evaluates a tile
of one pixel (NumPy, float64) and reads its values in nanoBragg's loop order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .. import physics
from ..backend import Backend
from ..models.lab import Simulation
from .staging import DetectorArrays, stage_detector


@dataclass
class TileGeometry:
    """Arrays (P, T, S) over (pixel, sensor layer, subpixel in subS-major order) of a tile."""

    position: list          # three (P, T, S) lab components (m)
    airpath: object         # distance from the sample (m)
    diffracted: list        # three (P, T, S) components of the unit vectors
    omega: object           # solid angle (sr)
    capture: object         # fraction of the photons the layer absorbs
    scattering: object      # (P, T, S, Src, 3) in 1/m: a view of a component-major (3, P, T, S, Src) array


def sin_theta_over_lambda(scattering):
    """stol = |q| / 2 (1/m) of scattering vectors (..., 3)."""
    return 0.5 * physics.norm(scattering)


def _combination(terms, constant: float, xp):
    """((t1 c1 + t2 c2) + t3 c3) + constant, skipping the terms whose coefficient is 0 and the multiplications
    by 1 (a detector along the lab axes needs a third of the work; the result is the same, bit for bit,
    as adding a zero changes no non-zero sum)."""
    total = None
    for array, coefficient in terms:
        if coefficient == 0.0:
            continue
        term = array if coefficient == 1.0 else (-array if coefficient == -1.0 else array * coefficient)
        total = term if total is None else _add(total, term, xp)
    return constant + (0.0 * terms[0][0] if total is None else total)


def _add(a, b, xp):
    """a + b; operands of different shapes are first expanded to the result's (by repeat: NumPy runs a
    broadcast along a short last axis, such as (P, 1, S) + (1, T, 1), one S-long row at a time, 5x slower)."""
    if a.shape != b.shape:
        shape = tuple(max(m, n) for m, n in zip(a.shape, b.shape))
        a, b = _expand(a, shape, xp), _expand(b, shape, xp)
    return a + b


def _expand(x, shape: tuple, xp):
    """``x`` broadcast to ``shape`` as a contiguous array, its last axes first (the smaller copies)."""
    for axis in range(len(shape) - 1, -1, -1):
        if x.shape[axis] != shape[axis]:
            x = xp.repeat(x, shape[axis], axis=axis)
    return x


def _full(x, shape: tuple, xp):
    """``x`` as a ``shape`` array for the elementwise work that follows: a broadcast view where ``x`` is
    one value (NumPy runs it as fast as a full array), else a contiguous copy (NumPy runs a view
    broadcast along a middle axis, such as (P, 1, S) as (P, T, S), one S-long row at a time: 15x slower)."""
    if math.prod(x.shape) == 1:
        return xp.broadcast_to(x, shape)
    return _expand(x, shape, xp)


def _along_last_axis(rows: list, shape: tuple, length: int, backend: Backend):
    """(len(rows), *shape, length) float64 array from rows of ``length`` arrays each (iterables, each
    array made as it is written), written one index of the short last axis (source, subpixel) at a
    time: NumPy runs a broadcast along such an axis one row at a time (2-9 sources: 3-7x slower)."""
    out = backend.xp.empty((len(rows),) + tuple(shape) + (length,), dtype=backend.xp.float64,
                           device=backend.device)
    for r, row in enumerate(rows):
        for s, value in enumerate(row):
            out[r, ..., s] = value
    return out


class PixelGeometry:
    """Geometry of tiles of pixels of one Simulation on one backend (float64)."""

    def __init__(self, sim: Simulation, backend: Backend, arrays: Optional[DetectorArrays] = None):
        self.sim = sim
        self.backend = backend
        self.xp = backend.xp
        self.arrays = arrays or stage_detector(sim, backend)
        self._edge_q = None   # per row edge |q| bounds, made on first use

    def tile(self, pixel_index, every_capture: bool = True, every_omega: bool = True) -> TileGeometry:
        """The geometry of pixels given by flat raster indices (host integer array).

        ``every_capture=False``: only the capture fraction a render uses without -oversample_thick
        (the last layer's, first subpixel's: ``capture[:, -1, 0]``) is computed, as (P, 1, 1);
        ``every_omega=False``: likewise the solid angle of the first layer and subpixel only."""
        xp = self.xp
        fpixels = self.sim.detector.fpixels
        # row and column in float64 (exact below 2^53 pixels): cheaper than int64 division
        idx = xp.astype(self.backend.asarray(pixel_index, dtype=xp.int64), xp.float64)
        slow = xp.floor(idx / fpixels)
        position = self._positions(idx - slow * fpixels, slow)
        airpath = xp.sqrt(position[0] * position[0] + position[1] * position[1] + position[2] * position[2])
        diffracted = [p / airpath for p in position]
        return TileGeometry(position=position, airpath=airpath, diffracted=diffracted,
                            omega=self._solid_angle(airpath if every_omega else airpath[:, :1, :1]),
                            capture=self._capture(diffracted, airpath, every_capture),
                            scattering=xp.permute_dims(self._scattering(diffracted), (1, 2, 3, 4, 0)))

    def _scattering(self, diffracted: list):
        """(3, P, T, S, Src) scattering vectors (d - i) / lambda."""
        a = self.arrays
        sources = a.wavelengths.shape[0]

        def row(i: int):  # component i for each source, made as it is written
            return ((diffracted[i] - a.incident[s, i]) / a.wavelengths[s] for s in range(sources))
        return _along_last_axis([row(i) for i in range(3)], diffracted[0].shape, sources, self.backend)

    def _positions(self, fast, slow) -> list:
        """Lab positions of each (pixel, layer, subpixel) as one contiguous (P, T, S) array per component (a
        broadcast view where a component is one value)."""
        xp, a = self.xp, self.arrays
        d, o = self.sim.detector, self.sim.sampling.oversample
        subpixel = d.pixel_size / o
        Fdet = subpixel * self._subpixel_index(fast, a.sub_f) + subpixel / 2.0      # (P, S)
        Sdet = subpixel * self._subpixel_index(slow, a.sub_s) + subpixel / 2.0
        Odet = a.odet_offsets[None, :, None]                                            # (1, T, 1)
        shape = (Fdet.shape[0], Odet.shape[1], Fdet.shape[1])
        pos = [_full(_combination(((Fdet[:, None, :], float(d.fdet[i])), (Sdet[:, None, :], float(d.sdet[i])),
                                   (Odet, float(d.odet[i]))), float(d.pix0[i]), xp), shape, xp) for i in range(3)]
        if not d.curved:
            return pos
        # a sphere about the sample: the beam's point at the distance, swung about the slow axis by the
        # flat position's y over the distance, then about the fast axis by its z over the distance
        start = [d.distance * float(v) for v in d.beam_vector]
        swung = physics.rotate_components(start, [float(v) for v in d.sdet], pos[1] / d.distance)
        return [_full(c, shape, xp) for c in physics.rotate_components(swung, [float(v) for v in d.fdet],
                                                                        pos[2] / d.distance)]

    def _subpixel_index(self, pixel, sub):
        """pixel * oversample + sub as (P, S): whole numbers, exact; written a subpixel at a time (2x
        faster than expanding both operands for S = 4, as fast for S = 9)."""
        base = pixel * self.sim.sampling.oversample
        row = (base + sub[s] for s in range(sub.shape[0]))
        return _along_last_axis([row], base.shape, sub.shape[0], self.backend)[0, ...]

    def _solid_angle(self, airpath):
        d = self.sim.detector
        if d.point_pixel:
            return 1.0 / airpath / airpath
        return d.pixel_size * d.pixel_size / airpath / airpath * d.close_distance / airpath

    def _capture(self, diffracted: list, airpath, every: bool = True):
        d = self.sim.detector
        if not (d.thickness > 0.0 or self.sim.sampling.oversample_thick):
            return self.xp.ones_like(airpath)
        # with -oversample_thick nanoBragg evaluates the layer formula even for a sensor of
        # zero thickness, which gives 0: it renders an empty image, and so do we
        if not every:  # the one value a render without -oversample_thick uses
            last = d.thicksteps - 1
            parallax = sum(c[:, last:, :1] * float(d.odet[i]) for i, c in enumerate(diffracted))
            return physics.capture_fraction(parallax, last, d.thickstep, d.mu)
        parallax = sum(component * float(d.odet[i]) for i, component in enumerate(diffracted))
        layers = [physics.capture_fraction(parallax[:, t, :], t, d.thickstep, d.mu) for t in range(d.thicksteps)]
        return self.xp.stack(layers, axis=1)

    def q_bound(self, first: int, last: int) -> float:
        """A host bound on |q| (1/m) over pixels ``first``..``last`` (flat raster indices): the largest at
        the corners of their rows' sensor volume (no device work)."""
        if self._edge_q is None:
            self._edge_q = self._row_edge_q()
        fpixels = self.sim.detector.fpixels
        return float(self._edge_q[first // fpixels:last // fpixels + 2].max())

    def _row_edge_q(self) -> np.ndarray:
        """Per row edge s = 0..spixels: the largest |q| (1/m, with a margin) at the ends of that edge, front
        and back of the sensor, over the sources.  Where every corner of a box of pixels sees every source
        at less than 90 degrees the largest |q| over the box is at a corner; elsewhere (and on a curved
        detector) the bound is 2 / lambda."""
        d, b = self.sim.detector, self.sim.beam
        largest = 2.0 / float(np.min(b.wavelengths))
        if d.curved:
            return np.full(d.spixels + 1, largest)
        f = np.array([0.0, d.fpixels])[:, None, None, None]
        s = np.arange(d.spixels + 1, dtype=float)[None, :, None, None]
        t = np.array([0.0, d.thicksteps * d.thickstep])[None, None, :, None]
        corners = d.pix0 + f * d.pixel_size * d.fdet + s * d.pixel_size * d.sdet + t * d.odet   # (2, S+1, 2, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            diffracted = corners / np.linalg.norm(corners, axis=-1, keepdims=True)
        incident = -np.asarray(b.directions, dtype=float)                                      # (Src, 3)
        q = np.linalg.norm(diffracted[..., None, :] - incident, axis=-1) / b.wavelengths        # (2, S+1, 2, Src)
        ok = (diffracted @ incident.T > 0.0) & np.isfinite(q)
        return np.where(ok, q * (1.0 + 1e-9), largest).max(axis=(0, 2, 3))

    def polarization(self, geometry: TileGeometry, first_only: bool = False):
        """Polarization factor (P, T, S, Src), or None where nanoBragg never applies one (-nopolar).

        ``first_only``: that of each pixel's first evaluation only, (P, 1, 1, 1): the value nanoBragg
        caches for the pixel when no evaluation is skipped (it recomputes while the cache is exactly
        0, which needs exact 90-degree scattering of a fully polarized beam)."""
        b, smp = self.sim.beam, self.sim.sampling
        if b.nopolar and not smp.oversample_polar:
            return None
        components, incident = geometry.diffracted, self.arrays.incident
        if first_only:
            components, incident = [c[:, :1, :1] for c in components], incident[:1, :]
        diffracted = self.xp.stack(components, axis=-1)
        row = (physics.polarization_factor(incident[s, :], diffracted, self.arrays.polar_axis, b.polarization)
               for s in range(incident.shape[0]))
        return _along_last_axis([row], components[0].shape, incident.shape[0], self.backend)[0, ...]

    def resolution_cut(self, scattering):
        """Flat (N,) mask of the (pixel, layer, subpixel, source) evaluations -dmin keeps, or None."""
        xp, dmin = self.xp, self.sim.sampling.dmin
        if dmin <= 0.0:
            return None
        stol = sin_theta_over_lambda(scattering)
        positive = stol > 0.0
        keep = ~(positive & (dmin > 0.5 / xp.where(positive, stol, xp.ones_like(stol))))
        return xp.reshape(keep, (-1,))

    def kept_evaluations(self, pixel_index):
        """``resolution_cut`` of these pixels."""
        return self.resolution_cut(self.tile(pixel_index).scattering)
