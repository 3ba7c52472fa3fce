"""The crystal in user units: real-space cell vectors in Angstrom, size in unit cells, spot shape."""
from __future__ import annotations

import dataclasses
import enum
import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import checks
from .checks import Vector
from .lab import Crystal as LabCrystal
from .vectors import axis_rotation_matrix

DEG = math.pi / 180.0


class CrystalShape(enum.Enum):
    """nanoBragg's lattice transforms: parallelepiped (sincg), ellipsoid (sinc3), Gaussian, top-hat spots."""

    SQUARE = "SQUARE"
    ROUND = "ROUND"
    GAUSS = "GAUSS"
    TOPHAT = "TOPHAT"


@dataclass(frozen=True)
class Crystal:
    """Cell vectors a, b, c (lab frame, Angstrom), ``cells`` = (Na, Nb, Nc) and the spot shape."""

    a_A: Vector
    b_A: Vector
    c_A: Vector
    cells: tuple[int, int, int] = (1, 1, 1)
    shape: CrystalShape = CrystalShape.SQUARE
    fudge: float = 1.0

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        for name in ("a_A", "b_A", "c_A"):
            set_(name, checks.vector(f"Crystal.{name}", getattr(self, name)))
        if len(self.cells) != 3:
            raise InputError("Crystal.cells: expected (Na, Nb, Nc)")
        set_("cells", tuple(checks.count("Crystal.cells", n) for n in self.cells))
        set_("shape", checks.choice("Crystal.shape", CrystalShape, self.shape))
        set_("fudge", checks.positive("Crystal.fudge", self.fudge))
        if not self.volume_A3 > 0.0:
            raise InputError("Crystal: a, b and c must span a right-handed cell of non-zero volume")

    # ----------------------------------------------------------------- factories
    @classmethod
    def from_cell(cls, cell, misset_deg=(0.0, 0.0, 0.0), **kwargs) -> "Crystal":
        """(a, b, c, alpha, beta, gamma) in Angstrom and degrees, in nanoBragg's default orientation
        (a* along x, b* in the x-y plane), then rotated by -misset about x, y and z."""
        from .nanobragg_factories import crystal_vectors_from_cell
        a, b, c = crystal_vectors_from_cell(cell, misset_deg)
        return cls(a_A=a, b_A=b, c_A=c, **kwargs)

    @classmethod
    def from_mosflm_matrix(cls, A, wavelength_A: float, **kwargs) -> "Crystal":
        """A MOSFLM orientation matrix (rows x, y, z; columns a*, b*, c* times the wavelength)."""
        stars = checks.matrix3("A", A) / checks.positive("wavelength_A", wavelength_A)
        return cls.from_reciprocal(stars, **kwargs)

    @classmethod
    def from_U_B(cls, U, B, **kwargs) -> "Crystal":
        """Busing-Levy: reciprocal vectors are the columns of U @ B (1/Angstrom)."""
        return cls.from_reciprocal(checks.matrix3("U", U) @ checks.matrix3("B", B), **kwargs)

    @classmethod
    def from_reciprocal(cls, stars, **kwargs) -> "Crystal":
        """Reciprocal vectors a*, b*, c* as the columns of a 3x3 matrix (1/Angstrom)."""
        stars = checks.matrix3("reciprocal", stars)
        if abs(np.linalg.det(stars)) == 0.0:
            raise InputError("reciprocal: the vectors are degenerate (zero volume)")
        real = np.linalg.inv(stars).T        # columns a, b, c
        return cls(a_A=tuple(real[:, 0]), b_A=tuple(real[:, 1]), c_A=tuple(real[:, 2]), **kwargs)

    # ----------------------------------------------------------------- derived values
    @property
    def real_matrix(self) -> np.ndarray:
        """Columns a, b, c (Angstrom)."""
        return np.array([self.a_A, self.b_A, self.c_A]).T

    @property
    def reciprocal_matrix(self) -> np.ndarray:
        """Columns a*, b*, c* (1/Angstrom)."""
        return np.linalg.inv(self.real_matrix).T

    @property
    def volume_A3(self) -> float:
        return float(np.dot(self.a_A, np.cross(self.b_A, self.c_A)))

    @property
    def unit_cell(self) -> tuple[float, ...]:
        """(a, b, c, alpha, beta, gamma) in Angstrom and degrees."""
        a, b, c = (np.array(v) for v in (self.a_A, self.b_A, self.c_A))
        angle = lambda u, v: math.degrees(math.acos(np.clip(u @ v / np.linalg.norm(u) / np.linalg.norm(v), -1, 1)))
        return (*(float(np.linalg.norm(v)) for v in (a, b, c)), angle(b, c), angle(a, c), angle(a, b))

    def size_um(self) -> tuple[float, float, float]:
        return tuple(float(np.linalg.norm(v)) * n * 1e-4 for v, n in zip((self.a_A, self.b_A, self.c_A), self.cells))

    def replace(self, **changes) -> "Crystal":
        return dataclasses.replace(self, **changes)

    def rotated(self, axis, angle_deg: float) -> "Crystal":
        """The crystal rotated right-handedly about ``axis`` (lab frame) by ``angle_deg``."""
        R = axis_rotation_matrix(checks.vector("axis", axis, unit=True), checks.finite("angle_deg", angle_deg) * DEG)
        return self.replace(a_A=tuple(R @ self.a_A), b_A=tuple(R @ self.b_A), c_A=tuple(R @ self.c_A))

    def lab(self) -> LabCrystal:
        """The lab-frame crystal a render takes (cell vectors in metres, reciprocal in 1/Angstrom)."""
        a, b, c = (np.array(v, dtype=float) for v in (self.a_A, self.b_A, self.c_A))
        V_cell = float(a @ np.cross(b, c))
        V_star = 1.0 / V_cell
        return LabCrystal(a=a * 1e-10, b=b * 1e-10, c=c * 1e-10, a_star=np.cross(b, c) * V_star,
                          b_star=np.cross(c, a) * V_star, c_star=np.cross(a, b) * V_star,
                          Na=float(self.cells[0]), Nb=float(self.cells[1]), Nc=float(self.cells[2]),
                          shape=self.shape.value, fudge=self.fudge, V_cell=V_cell)

    @classmethod
    def from_lab(cls, crystal: LabCrystal) -> "Crystal":
        cells = tuple(int(n) for n in (crystal.Na, crystal.Nb, crystal.Nc))
        return cls(a_A=tuple(crystal.a * 1e10), b_A=tuple(crystal.b * 1e10), c_A=tuple(crystal.c * 1e10),
                   cells=cells, shape=crystal.shape, fudge=crystal.fudge)
