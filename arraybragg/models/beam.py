"""The incident beam in user units (Angstrom, degrees, photons per square metre)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..io.flags import DEFAULT_FLUENCE, EV_ANGSTROM
from . import checks
from .checks import Vector
from .lab import Beam as LabBeam



@dataclass(frozen=True)
class Source:
    """One point of a divergent or polychromatic source: where it shines from, its wavelength and weight."""

    direction: Vector          # propagation direction (source -> sample), normalised
    wavelength_A: float
    weight: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "direction", checks.vector("Source.direction", self.direction, unit=True))
        object.__setattr__(self, "wavelength_A", checks.in_unit_range("Source.wavelength_A", self.wavelength_A,
                                                                           1e-3, 1e3, "A", "metres"))
        object.__setattr__(self, "weight", checks.non_negative("Source.weight", self.weight))


@dataclass(frozen=True)
class Beam:
    """A monochromatic beam along ``direction``, or a set of :class:`Source` points.

    ``kahn_factor`` is nanoBragg's polarization (0 unpolarized, 1 fully polarized along
    ``polarization_axis``, the E vector); ``polarization_correction=False`` switches the
    factor off.  Sources, when given, replace the single on-axis one; nanoBragg weighs
    every source equally, and so does the render (weights are kept for the files).
    """

    wavelength_A: float
    direction: Vector = (1.0, 0.0, 0.0)
    polarization_axis: Vector = (0.0, 0.0, 1.0)
    kahn_factor: float = 0.0
    polarization_correction: bool = True
    fluence_photons_per_m2: float = DEFAULT_FLUENCE
    sources: tuple[Source, ...] = ()

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("wavelength_A", checks.in_unit_range("Beam.wavelength_A", self.wavelength_A, 1e-3, 1e3, "A", "metres"))
        set_("direction", checks.vector("Beam.direction", self.direction, unit=True))
        set_("polarization_axis", checks.vector("Beam.polarization_axis", self.polarization_axis, unit=True))
        set_("kahn_factor", checks.finite("Beam.kahn_factor", self.kahn_factor))
        set_("fluence_photons_per_m2", checks.positive("Beam.fluence_photons_per_m2", self.fluence_photons_per_m2))
        set_("sources", tuple(self.sources))

    @classmethod
    def from_energy(cls, energy_eV: float, **kwargs) -> "Beam":
        return cls(wavelength_A=EV_ANGSTROM / checks.positive("energy_eV", energy_eV), **kwargs)

    @classmethod
    def from_flux(cls, wavelength_A: float, flux_photons_per_s: float, exposure_s: float, size_mm: float,
                  **kwargs) -> "Beam":
        """nanoBragg's -flux/-exposure/-beamsize: fluence = flux x exposure / size^2."""
        size_m = checks.positive("size_mm", size_mm) * 1e-3
        fluence = checks.positive("flux_photons_per_s", flux_photons_per_s) * checks.positive("exposure_s", exposure_s)
        return cls(wavelength_A=wavelength_A, fluence_photons_per_m2=fluence / size_m / size_m, **kwargs)

    @property
    def energy_eV(self) -> float:
        return EV_ANGSTROM / self.wavelength_A

    def replace(self, **changes) -> "Beam":
        return dataclasses.replace(self, **changes)

    def lab(self) -> LabBeam:
        """The lab-frame beam a render takes (metres)."""
        sources = self.sources or (Source(self.direction, self.wavelength_A),)
        directions = -np.array([s.direction for s in sources], dtype=float)
        wavelengths = np.array([s.wavelength_A for s in sources], dtype=float) * 1e-10
        weights = np.array([s.weight for s in sources], dtype=float)
        return LabBeam(directions=directions, wavelengths=wavelengths, weights=weights,
                       lambda0=self.wavelength_A * 1e-10, fluence=self.fluence_photons_per_m2,
                       polarization=self.kahn_factor, nopolar=not self.polarization_correction,
                       polar_vector=np.array(self.polarization_axis), beam_vector=np.array(self.direction))

    @classmethod
    def from_lab(cls, beam: LabBeam) -> "Beam":
        direction = tuple(float(v) for v in beam.beam_vector)
        single = len(beam.wavelengths) == 1 and np.allclose(-beam.directions[0], beam.beam_vector, atol=0, rtol=0) \
            and beam.wavelengths[0] == beam.lambda0
        sources = () if single else tuple(
            Source(tuple(-d) if np.any(d) else direction, w * 1e10, weight)
            for d, w, weight in zip(beam.directions, beam.wavelengths, beam.weights))
        return cls(wavelength_A=beam.lambda0 * 1e10, direction=direction,
                   polarization_axis=tuple(float(v) for v in beam.polar_vector), kahn_factor=beam.polarization,
                   polarization_correction=not beam.nopolar, fluence_photons_per_m2=beam.fluence, sources=sources)
