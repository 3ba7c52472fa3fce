"""Detector defects beyond noisify (all off by default): hot and dead pixels, a beamstop shadow.

noisify parses ``-hotpix_seed`` and ``-badpix_seed`` but never uses them; here
they seed the choice of defective pixels:

* hot pixels: each pixel draws one ran1 uniform from ``hotpix_seed`` (raster
  order); those below ``hot_fraction`` read the top of the integer range
  (65535, or 2^31 - 1 in 32 bits) in both SMV images;
* dead pixels: likewise from ``badpix_seed`` with ``dead_fraction``; they read 0
  (a pixel both hot and dead is dead);
* beamstop: the ideal photons inside a disc of ``beamstop_radius`` pixels
  around the beam centre are multiplied by ``beamstop_transmission`` (0: opaque)
  before any noise, so the shadow still carries readout noise and ADC offset.

The same seed always picks the same pixels on a detector of the same size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import rng
from ..errors import InputError

__all__ = ["Defects"]


@dataclass(frozen=True)
class Defects:
    """Hot/dead pixels (fractions, seeds stored as C longs) and a beamstop (pixels)."""

    hot_fraction: float = 0.0
    hotpix_seed: int = -5678  # as -hotpix_seed 5678 (a positive C seed would act as 1)
    dead_fraction: float = 0.0
    badpix_seed: int = -1234  # as -badpix_seed 1234
    beamstop_radius: float = 0.0
    beam_fast: float = 0.0  # beam centre, pixels from the first pixel's corner along fast...
    beam_slow: float = 0.0  # ... and slow
    beamstop_transmission: float = 0.0

    def __post_init__(self):
        for name in ("hot_fraction", "dead_fraction", "beamstop_transmission"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name}: {getattr(self, name):g} is not in [0, 1]")
        if not self.beamstop_radius >= 0.0:
            raise InputError(f"beamstop radius: {self.beamstop_radius:g} is negative")

    def shadow(self, photons: np.ndarray) -> np.ndarray:
        """Ideal photons with the beamstop's shadow (a new array; unchanged without a beamstop)."""
        if self.beamstop_radius <= 0.0:
            return photons
        slow, fast = np.indices(photons.shape, dtype=np.float64)
        inside = (fast + 0.5 - self.beam_fast) ** 2 + (slow + 0.5 - self.beam_slow) ** 2 \
            <= self.beamstop_radius * self.beamstop_radius  # (inf, not OverflowError, for a huge radius)
        transmission = np.float32(self.beamstop_transmission)  # (opaque: 0, even behind an infinite pixel)
        shaded = np.zeros_like(photons) if transmission == 0.0 else photons * transmission
        return np.where(inside, shaded, photons).astype(np.float32)

    def pixel_masks(self, shape) -> tuple[np.ndarray, np.ndarray]:
        """(hot, dead) boolean masks of a detector of ``shape``."""
        count = int(np.prod(shape))

        def chosen(fraction, seed):
            if fraction <= 0.0:
                return np.zeros(shape, dtype=bool)
            return (rng.Ran1Stream(seed).uniforms(count) < fraction).reshape(shape)

        return chosen(self.hot_fraction, self.hotpix_seed), chosen(self.dead_fraction, self.badpix_seed)

    def mark(self, image: np.ndarray, bits: int) -> np.ndarray:
        """An integer image with the hot pixels saturated and the dead ones zeroed."""
        hot, dead = self.pixel_masks(image.shape)
        out = image.copy()
        out[hot] = 65535 if bits == 16 else 2147483647
        out[dead] = 0
        return out
