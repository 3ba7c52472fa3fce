"""The experiment as small, separate models in the lab frame.

Every nanoBragg convention (MOSFLM, XDS, ...) is resolved in ``setup`` into
plain lab-frame vectors here, so the physics never sees a convention.
All lengths are metres, angles radians, wavelengths metres, unless a field
name says otherwise.  Vectors are NumPy float64 arrays on the host; the
renderer moves what it needs to the chosen backend.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

import numpy as np

if TYPE_CHECKING:
    from ..io.hkl import HKLGrid


SHAPES = ("SQUARE", "ROUND", "GAUSS", "TOPHAT")


@dataclass
class Detector:
    """A flat (or curved) pixel array: origin pix0 plus fast/slow/normal unit vectors."""

    pix0: np.ndarray            # lab vector from sample to the corner of pixel (0, 0), m
    fdet: np.ndarray            # fast axis (increasing fast index)
    sdet: np.ndarray            # slow axis
    odet: np.ndarray            # normal, pointing away from the sample
    pixel_size: float           # m
    fpixels: int
    spixels: int
    distance: float             # sample to beam-centre along the beam, m
    close_distance: float       # sample to detector plane along the normal, m
    beam_vector: np.ndarray     # used by the curved mapping
    curved: bool = False
    point_pixel: bool = False
    thickness: float = 0.0      # sensor thickness, m
    thicksteps: int = 1
    thickstep: float = 0.0      # layer thickness, m
    mu: float = 0.0             # attenuation coefficient, 1/m
    # Values reported in headers and logs (all derived from the vectors above).
    Xbeam: float = 0.0
    Ybeam: float = 0.0
    Fbeam: float = 0.0
    Sbeam: float = 0.0
    Xclose: float = 0.0
    Yclose: float = 0.0
    Fclose: float = 0.0
    Sclose: float = 0.0
    ORGX: float = 0.0
    ORGY: float = 0.0
    dials_origin_mm: np.ndarray = field(default_factory=lambda: np.zeros(3))
    detsize_f: float = 0.0
    detsize_s: float = 0.0
    twotheta: float = 0.0
    convention: str = "MOSFLM"
    pivot: str = "BEAM"

    @property
    def shape(self) -> tuple[int, int]:
        return (self.spixels, self.fpixels)


@dataclass
class Beam:
    """Incident x-rays: one entry per source point (divergence x dispersion or file)."""

    directions: np.ndarray      # (n, 3) unit vectors from sample towards each source
    wavelengths: np.ndarray     # (n,) m
    weights: np.ndarray         # (n,) as given; nanoBragg weighs sources equally
    lambda0: float              # nominal wavelength, m
    fluence: float              # photons/m^2
    polarization: float         # Kahn factor
    nopolar: bool
    polar_vector: np.ndarray
    beam_vector: np.ndarray     # unit vector from source towards sample


@dataclass
class Crystal:
    """Unit cell (real and reciprocal), size in cells and lattice-transform shape."""

    a: np.ndarray               # real-space cell vectors at phi = 0, no mosaic, m
    b: np.ndarray
    c: np.ndarray
    a_star: np.ndarray          # reciprocal vectors, 1/Angstrom (used by GAUSS/TOPHAT spots)
    b_star: np.ndarray
    c_star: np.ndarray
    Na: float
    Nb: float
    Nc: float
    shape: str = "SQUARE"       # SQUARE (sincg), ROUND (sinc3), GAUSS, TOPHAT
    fudge: float = 1.0
    V_cell: float = 0.0         # Angstrom^3

    def __post_init__(self):
        if self.shape not in SHAPES:  # no silent fallback: the physics branches on these names
            raise ValueError(f"Crystal.shape: {self.shape!r} is not one of {', '.join(SHAPES)}")


@dataclass
class Goniometer:
    """Spindle rotation (phi steps) and mosaic domains."""

    spindle: np.ndarray
    phi0: float
    phistep: float
    phisteps: int
    osc: float
    mosaic_spread: float
    mosaic_umats: np.ndarray    # (domains, 3, 3); domain 0 is the identity

    @property
    def phis(self) -> np.ndarray:
        return self.phi0 + self.phistep * np.arange(self.phisteps)


@dataclass
class StructureFactors:
    """F(hkl) grid (may be absent) with nanoBragg's default and interpolation switch."""

    grid: Optional["HKLGrid"] = None
    default_F: float = 0.0
    interpolate: bool = False

    @property
    def count(self) -> int:
        return 0 if self.grid is None else self.grid.count

    @classmethod
    def from_hkl(cls, path, default_F: float = 0.0, interpolate: bool = False) -> "StructureFactors":
        """An ``h k l F`` text list read as nanoBragg's -hkl (indices absent from it get ``default_F``)."""
        from ..io.hkl import read_hkl_text, refuse_unusable
        grid, _ = read_hkl_text(path, default_F)
        refuse_unusable(path, grid)
        return cls(grid=grid, default_F=default_F, interpolate=interpolate)


@dataclass
class Sampling:
    """How each pixel is sampled and which pixels are rendered."""

    oversample: int
    oversample_thick: bool
    oversample_polar: bool
    oversample_omega: bool
    roi: tuple[int, int, int, int]      # xmin, xmax, ymin, ymax (fast, slow; inclusive)
    mask: Optional[np.ndarray] = None   # (spixels, fpixels); 0 = skip
    dmin: float = 0.0                   # m; 0 = no resolution cut
    water_size: float = 0.0             # m

    def rendered(self, spixels: int, fpixels: int) -> np.ndarray:
        """Boolean (spixels, fpixels) map of pixels inside the ROI and not masked."""
        xmin, xmax, ymin, ymax = self.roi
        fast = np.arange(fpixels)
        slow = np.arange(spixels)
        inside = ((slow >= ymin) & (slow <= ymax))[:, None] & ((fast >= xmin) & (fast <= xmax))[None, :]
        if self.mask is not None:
            inside &= self.mask != 0
        return inside


@dataclass
class Simulation:
    """Everything a render needs."""

    detector: Detector
    beam: Beam
    crystal: Crystal
    goniometer: Goniometer
    structure_factors: StructureFactors
    sampling: Sampling
    c_parity: bool = False

    @property
    def steps(self) -> int:
        """nanoBragg's normalisation: sources x mosaic domains x phi steps x oversample^2."""
        return (len(self.beam.wavelengths) * len(self.goniometer.mosaic_umats)
                * self.goniometer.phisteps * self.sampling.oversample ** 2)
