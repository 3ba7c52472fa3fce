"""Detectors in user units: flat panels (origin, fast and slow axes, pixels) and their sets.

A :class:`Panel` holds independent values only; what depends on the beam (beam
centre, distance along the beam, two-theta, resolution) is a method taking the
:class:`~.beam.Beam`.  nanoBragg's conventions and pivots are factories
(:meth:`Detector.nanobragg`) producing lab-frame panels.
"""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass
from typing import Iterator, Optional

import numpy as np

from ..errors import InputError
from . import checks
from .checks import Vector


class Convention(enum.Enum):
    """nanoBragg's named lab frames; CUSTOM means the vectors are given as they are."""

    MOSFLM = "MOSFLM"
    DENZO = "DENZO"
    XDS = "XDS"
    DIALS = "DIALS"
    ADXV = "ADXV"
    CUSTOM = "CUSTOM"


class Pivot(enum.Enum):
    """What stays fixed when a nanoBragg detector is rotated: the beam spot or the sample-normal point."""

    BEAM = "BEAM"
    SAMPLE = "SAMPLE"


@dataclass(frozen=True)
class Panel:
    """One flat pixel array: lab position of the outer corner of pixel (0, 0), unit axes, pixels.

    ``size`` is (fast, slow) pixels.  The sensor is ``thickness_mm`` thick, sampled in
    ``thickness_steps`` layers, with attenuation length ``attenuation_length_mm`` (default:
    the thickness, as nanoBragg).  The normal is +-(fast x slow), whichever points away from the
    sample (nanoBragg's ADXV frame is left-handed); the panel's plane must not contain the sample.
    """

    origin_mm: Vector
    fast_axis: Vector
    slow_axis: Vector
    pixel_size_mm: float
    size: tuple[int, int]
    thickness_mm: float = 0.0
    thickness_steps: int = 1
    attenuation_length_mm: Optional[float] = None
    name: str = ""

    def __post_init__(self):
        set_ = lambda field, value: object.__setattr__(self, field, value)
        label = f"Panel {self.name}".strip()
        set_("origin_mm", checks.vector(f"{label}.origin_mm", self.origin_mm))
        set_("fast_axis", checks.vector(f"{label}.fast_axis", self.fast_axis, unit=True))
        set_("slow_axis", checks.vector(f"{label}.slow_axis", self.slow_axis, unit=True))
        if abs(float(np.dot(self.fast_axis, self.slow_axis))) > 1e-6:
            raise InputError(f"{label}: fast_axis and slow_axis must be perpendicular")
        set_("pixel_size_mm", checks.in_unit_range(f"{label}.pixel_size_mm", self.pixel_size_mm, 1e-3, 1e3, "mm",
                                                   "metres"))
        if len(self.size) != 2:
            raise InputError(f"{label}.size: expected (fast, slow) pixel counts")
        set_("size", (checks.count(f"{label}.size", self.size[0]), checks.count(f"{label}.size", self.size[1])))
        set_("thickness_mm", checks.non_negative(f"{label}.thickness_mm", self.thickness_mm))
        set_("thickness_steps", checks.count(f"{label}.thickness_steps", self.thickness_steps))
        if self.attenuation_length_mm is not None:
            set_("attenuation_length_mm", checks.positive(f"{label}.attenuation_length_mm",
                                                          self.attenuation_length_mm))
        if self.close_distance_mm() <= 0.0:
            raise InputError(f"{label}: the panel's plane contains the sample")

    # ----------------------------------------------------------------- derived values
    @property
    def normal(self) -> Vector:
        """Unit normal pointing away from the sample."""
        normal = np.cross(self.fast_axis, self.slow_axis)
        normal /= np.linalg.norm(normal)
        return tuple(float(v) for v in (normal if np.dot(self.origin_mm, normal) >= 0.0 else -normal))

    @property
    def shape(self) -> tuple[int, int]:
        """(slow, fast): the shape of the panel's image array."""
        return (self.size[1], self.size[0])

    def replace(self, **changes) -> "Panel":
        return dataclasses.replace(self, **changes)

    def rotated(self, rotation) -> "Panel":
        """The panel moved by a proper rotation (3x3 matrix) of the lab frame about the sample."""
        R = checks.matrix3("rotation", rotation)
        if not np.allclose(R @ R.T, np.eye(3), atol=1e-9) or np.linalg.det(R) < 0:
            raise InputError("rotation: expected a proper rotation matrix")
        as_tuple = lambda v: tuple(float(x) for x in R @ np.array(v))
        return self.replace(origin_mm=as_tuple(self.origin_mm), fast_axis=as_tuple(self.fast_axis),
                            slow_axis=as_tuple(self.slow_axis))

    def lab_position_mm(self, fast, slow) -> np.ndarray:
        """Lab position of pixel coordinates (fast, slow); (0, 0) is the outer corner, (0.5, 0.5) the first centre."""
        f = np.asarray(fast, dtype=float)[..., None]
        s = np.asarray(slow, dtype=float)[..., None]
        return (np.array(self.origin_mm) + f * self.pixel_size_mm * np.array(self.fast_axis)
                + s * self.pixel_size_mm * np.array(self.slow_axis))

    def close_distance_mm(self) -> float:
        """Distance from the sample to the panel's plane, along its normal."""
        return float(np.dot(self.origin_mm, self.normal))

    def distance_mm(self, beam) -> float:
        """Distance from the sample to the panel's plane along the beam (inf when the beam misses the plane)."""
        along = float(np.dot(beam.direction, self.normal))
        return self.close_distance_mm() / along if along > 0.0 else math.inf

    def beam_centre_mm(self, beam) -> tuple[float, float]:
        """(fast, slow) of the direct beam's intersection with the panel's plane, mm from the origin."""
        spot = np.array(beam.direction) * self.distance_mm(beam) - np.array(self.origin_mm)
        return float(np.dot(spot, self.fast_axis)), float(np.dot(spot, self.slow_axis))

    def beam_centre_px(self, beam) -> tuple[float, float]:
        f, s = self.beam_centre_mm(beam)
        return f / self.pixel_size_mm, s / self.pixel_size_mm

    def two_theta_deg(self, beam, fast, slow) -> np.ndarray:
        """Scattering angle at pixel coordinates (fast, slow)."""
        position = self.lab_position_mm(fast, slow)
        cos = position @ np.array(beam.direction) / np.linalg.norm(position, axis=-1)
        return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    def resolution_A(self, beam, fast, slow) -> np.ndarray:
        """Bragg spacing d = lambda / (2 sin theta) at pixel coordinates (inf at the beam)."""
        theta = np.radians(self.two_theta_deg(beam, fast, slow)) / 2.0
        with np.errstate(divide="ignore"):
            return beam.wavelength_A / (2.0 * np.sin(theta))


@dataclass(frozen=True)
class Detector:
    """A sequence of panels, and the convention whose beam-centre values its file headers state."""

    panels: tuple[Panel, ...]
    convention: Convention = Convention.CUSTOM

    def __post_init__(self):
        panels = (self.panels,) if isinstance(self.panels, Panel) else tuple(self.panels)
        if not panels or not all(isinstance(p, Panel) for p in panels):
            raise InputError("Detector: expected one or more Panels")
        object.__setattr__(self, "panels", panels)
        object.__setattr__(self, "convention", checks.choice("Detector.convention", Convention, self.convention))

    def __len__(self) -> int:
        return len(self.panels)

    def __iter__(self) -> Iterator[Panel]:
        return iter(self.panels)

    def __getitem__(self, index) -> Panel:
        return self.panels[index]

    def replace(self, **changes) -> "Detector":
        return dataclasses.replace(self, **changes)

    def rotated(self, rotation) -> "Detector":
        """Every panel moved by a proper rotation of the lab frame about the sample."""
        return self.replace(panels=tuple(panel.rotated(rotation) for panel in self.panels))

    @classmethod
    def simple(cls, distance_mm: float, pixel_size_mm: float, size: tuple[int, int],
               beam_centre_mm: Optional[tuple[float, float]] = None, **panel) -> "Detector":
        """A flat panel square to a beam along +x (nanoBragg's MOSFLM frame).

        ``beam_centre_mm`` is (fast, slow) from the outer corner of pixel (0, 0); default the
        panel's centre.
        """
        from .nanobragg_factories import nanobragg_detector
        return nanobragg_detector(distance_mm=distance_mm, pixel_size_mm=pixel_size_mm, size=size,
                                  beam_centre_mm=beam_centre_mm, **panel)

    @classmethod
    def nanobragg(cls, **kwargs) -> "Detector":
        """nanoBragg's detector from its conventions and pivots: see :func:`.nanobragg_factories.nanobragg_detector`."""
        from .nanobragg_factories import nanobragg_detector
        return nanobragg_detector(**kwargs)
