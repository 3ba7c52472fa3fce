"""Diffraction physics on the array API: one code for NumPy, CuPy, PyTorch and array_api_strict.

Every function takes arrays and works in their namespace and on their device; nothing here
imports NumPy or knows which backend runs it.  Units: metres, radians, 1/m for scattering
vectors; Miller indices are dimensionless.

* :mod:`.vectors`: dot, norm, cross, rotation about an axis;
* :mod:`.lattice`: the lattice transform of each crystal shape (SQUARE, ROUND, GAUSS, TOPHAT);
* :mod:`.structure_factors`: F(hkl) lookup, nearest and tricubic;
* :mod:`.intensity`: polarization, sensor capture fraction, water background;
* :mod:`.increments`: the small-rotation path of the float32 policy.
"""
from .intensity import (AVOGADRO, R_E_SQR, WATER_F, WATER_MW, capture_fraction, polarization_factor,
                        water_background)
from .lattice import (ROUND_SCALE, grating_amplitude, grating_sq_from_phases, lattice_factor_sq, nearest_index,
                      round_half_even, shape_amplitude, sin_pi, sinc3, sincg)
from .structure_factors import (interpolation_out_of_range, structure_factor_nearest, structure_factor_table,
                                structure_factor_tricubic)
from .vectors import cross, dot, norm, rotate_components

__all__ = [
    "AVOGADRO", "R_E_SQR", "ROUND_SCALE", "WATER_F", "WATER_MW", "capture_fraction", "cross", "dot",
    "grating_amplitude", "grating_sq_from_phases", "interpolation_out_of_range", "lattice_factor_sq",
    "nearest_index", "norm", "polarization_factor", "rotate_components", "round_half_even", "shape_amplitude",
    "sin_pi", "sinc3", "sincg", "structure_factor_nearest", "structure_factor_table", "structure_factor_tricubic",
    "water_background",
]
