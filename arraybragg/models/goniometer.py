"""The goniometer in user units: spindle axis, phi range and steps, and the mosaic domains of the crystal."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import rng
from . import checks
from .checks import Vector
from .lab import Goniometer as LabGoniometer

DEG = math.pi / 180.0


def mosaic_umats(domains: int, spread_rad: float, seed: int) -> np.ndarray:
    """nanoBragg's mosaic domain rotations from its seed; domain 0 is exactly the identity."""
    stream = rng.Ran1Stream(seed)
    umats = np.stack([rng.mosaic_rotation_umat(spread_rad, stream) for _ in range(domains)])
    umats[0] = np.eye(3)
    return umats


@dataclass(frozen=True)
class Goniometer:
    """Rotation by ``oscillation_deg`` from ``phi_start_deg`` about ``axis`` in ``phi_steps`` steps,
    and ``mosaic_domains`` domains spread over ``mosaic_spread_deg`` (drawn from ``mosaic_seed``)."""

    axis: Vector = (0.0, 0.0, 1.0)
    phi_start_deg: float = 0.0
    oscillation_deg: float = 0.0
    phi_steps: int = 1
    mosaic_spread_deg: float = 0.0
    mosaic_domains: int = 1
    mosaic_seed: int = -12345678

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("axis", checks.vector("Goniometer.axis", self.axis, unit=True))
        set_("phi_start_deg", checks.finite("Goniometer.phi_start_deg", self.phi_start_deg))
        set_("oscillation_deg", checks.non_negative("Goniometer.oscillation_deg", self.oscillation_deg))
        set_("phi_steps", checks.count("Goniometer.phi_steps", self.phi_steps))
        set_("mosaic_spread_deg", checks.non_negative("Goniometer.mosaic_spread_deg", self.mosaic_spread_deg))
        set_("mosaic_domains", checks.count("Goniometer.mosaic_domains", self.mosaic_domains))
        set_("mosaic_seed", int(self.mosaic_seed))

    def replace(self, **changes) -> "Goniometer":
        return dataclasses.replace(self, **changes)

    def frame(self, index: int) -> "Goniometer":
        """Frame ``index`` of a sweep of adjacent oscillations: phi starts ``index`` oscillations later."""
        return self.replace(phi_start_deg=self.phi_start_deg + index * self.oscillation_deg)

    def lab(self) -> LabGoniometer:
        spread = self.mosaic_spread_deg * DEG
        domains = self.mosaic_domains if spread > 0.0 else 1
        osc = self.oscillation_deg * DEG
        return LabGoniometer(spindle=np.array(self.axis), phi0=self.phi_start_deg * DEG,
                             phistep=osc / self.phi_steps, phisteps=self.phi_steps, osc=osc,
                             mosaic_spread=spread, mosaic_umats=mosaic_umats(domains, spread, self.mosaic_seed))

    @classmethod
    def from_lab(cls, goniometer: LabGoniometer, mosaic_seed: int = -12345678) -> "Goniometer":
        return cls(axis=tuple(float(v) for v in goniometer.spindle), phi_start_deg=goniometer.phi0 / DEG,
                   oscillation_deg=goniometer.phistep * goniometer.phisteps / DEG, phi_steps=goniometer.phisteps,
                   mosaic_spread_deg=goniometer.mosaic_spread / DEG,
                   mosaic_domains=len(goniometer.mosaic_umats), mosaic_seed=mosaic_seed)
