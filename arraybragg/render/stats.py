"""nanoBragg's image statistics (max_I and where, mean, rms, rmsd) over the rendered pixels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..models.lab import Simulation


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
