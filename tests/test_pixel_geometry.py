"""render.pixels: a tile's geometry against nanoBragg's formulas written plainly, with (..., 3) vectors and
broadcasting, on every namespace (the tile writes sources, layers and subpixels one at a time instead)."""
from __future__ import annotations

import numpy as np
import pytest

from arraybragg import build_simulation, parse_args, physics
from arraybragg.render.pixels import PixelGeometry

BASE = ("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 24 "
        "-oversample 2 -dispersion 2 -dispsteps 3 -hdivrange 0.2 -hdivsteps 2 -polar 0.6")
SETUPS = {
    "flat": "",
    "layers": "-twotheta 20 -detector_thick 200 -detector_abs 300 -thicksteps 3",
    "curved": "-curved_det -twotheta 10 -detector_thick 100 -detector_abs 300 -thicksteps 2",
}


def _rotate(v, axis, angle):
    """Rodrigues rotation of v (..., 3) about a unit axis (3,) by angle (...)."""
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    return v * c + np.cross(axis, v) * s + axis * np.sum(axis * v, axis=-1, keepdims=True) * (1.0 - c)


def _expected(sim, pixels):
    """(positions (P, T, S, 3), scattering vectors (P, T, S, Src, 3), polarization (P, T, S, Src))."""
    d, b, o = sim.detector, sim.beam, sim.sampling.oversample
    slow, fast = np.divmod(pixels, d.fpixels)
    sub = np.arange(o)
    subpixel = d.pixel_size / o
    F = subpixel * (fast[:, None, None] * o + np.tile(sub, o)) + subpixel / 2.0             # (P, 1, S)
    S = subpixel * (slow[:, None, None] * o + np.repeat(sub, o)) + subpixel / 2.0
    O = (np.arange(d.thicksteps) * d.thickstep)[None, :, None]                              # (1, T, 1)
    pos = F[..., None] * d.fdet + S[..., None] * d.sdet + O[..., None] * d.odet + d.pix0
    if d.curved:
        start = np.broadcast_to(d.distance * d.beam_vector, pos.shape)
        pos = _rotate(_rotate(start, d.sdet, pos[..., 1] / d.distance), d.fdet, pos[..., 2] / d.distance)
    diffracted = pos / np.linalg.norm(pos, axis=-1, keepdims=True)
    incident = -np.asarray(b.directions)
    q = (diffracted[..., None, :] - incident) / b.wavelengths[:, None]
    polar = physics.polarization_factor(incident, diffracted[..., None, :], b.polar_vector, b.polarization)
    return pos, q, polar


def _close(actual, expected, rtol):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.max(np.abs(expected)))


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_tile_matches_the_broadcast_formulas(backend, setup):
    sim = build_simulation(parse_args((BASE + " " + SETUPS[setup]).split()))
    d = sim.detector
    assert len(sim.beam.wavelengths) == 6 and d.thicksteps == {"flat": 1, "layers": 3, "curved": 2}[setup]
    pixels = np.arange(0, d.fpixels * d.spixels, 7)
    geometry = PixelGeometry(sim, backend)
    tile = geometry.tile(pixels)
    pos, q, polar = _expected(sim, pixels)
    for i in range(3):
        _close(np.asarray(backend.to_numpy(tile.position[i]), dtype=float), pos[..., i], 1e-14)
    _close(np.asarray(backend.to_numpy(tile.scattering)), q, 1e-13)
    _close(np.asarray(backend.to_numpy(geometry.polarization(tile))), polar, 1e-13)
    first = np.asarray(backend.to_numpy(geometry.polarization(tile, first_only=True)))
    assert first.shape == (len(pixels), 1, 1, 1)
    _close(first, polar[:, :1, :1, :1], 1e-13)
