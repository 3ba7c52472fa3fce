"""Per-pixel intensity factors: polarization, sensor capture fraction, water background.

Array-API code: every function works in its arguments' namespace and on their device;
shapes broadcast, the last axis of a vector holding x, y, z.
"""
from __future__ import annotations

from ..backend import array_namespace
from .vectors import cross, dot, norm

R_E_SQR = 7.94079248018965e-30       # classical electron radius squared, m^2
AVOGADRO = 6.02214179e23
WATER_F = 2.57                        # forward-scattering amplitude of water
WATER_MW = 18.0                       # g/mol


def polarization_factor(incident, diffracted, polar_axis, kahn: float):
    """Kahn polarization factor 0.5 (1 + cos^2 2theta - K cos 2psi sin^2 2theta).

    incident (..., 3) unit vectors along the beam, diffracted (..., 3) unit
    vectors, polar_axis (3,) unit E-vector direction.
    """
    xp = array_namespace(incident, diffracted)
    cos2theta = dot(incident, diffracted)
    cos2theta_sq = cos2theta * cos2theta
    sin2theta_sq = 1.0 - cos2theta_sq
    if kahn == 0.0:
        return 0.5 * (1.0 + cos2theta_sq)
    B_in = cross(polar_axis, incident)
    B_in = B_in / norm(B_in)[..., None]
    E_in = cross(incident, B_in)
    E_in = E_in / norm(E_in)[..., None]
    psi = -xp.atan2(dot(diffracted, B_in), dot(diffracted, E_in))
    return 0.5 * (1.0 + cos2theta_sq - kahn * xp.cos(2.0 * psi) * sin2theta_sq)


def capture_fraction(parallax, layer: int, layer_thickness: float, mu: float):
    """Fraction of photons absorbed in sensor layer ``layer`` along a ray with obliquity ``parallax``."""
    xp = array_namespace(parallax)
    return (xp.exp(-layer * layer_thickness * mu / parallax)
            - xp.exp(-(layer + 1) * layer_thickness * mu / parallax))


def water_background(fluence: float, water_size: float) -> float:
    """nanoBragg's constant water term I_bg (as implemented there, units included)."""
    return WATER_F * WATER_F * R_E_SQR * fluence * water_size ** 3 * 1e6 * AVOGADRO / WATER_MW
