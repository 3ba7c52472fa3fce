"""Small host-side vector helpers (NumPy float64) used while building the models."""
from __future__ import annotations

import math

import numpy as np


def unit(v) -> tuple[np.ndarray, float]:
    """(v / |v|, |v|); a zero vector stays zero."""
    v = np.asarray(v, dtype=float)
    x, y, z = (float(c) for c in v)
    norm = math.sqrt(x * x + y * y + z * z)  # the C's order of summation: its "== 1.0" tests depend on it
    return (v / norm if norm != 0.0 else np.zeros(3)), norm


def rotate_xyz(v, rotx: float, roty: float, rotz: float) -> np.ndarray:
    """Rotate about lab X, then Y, then Z (right-handed, radians); zero angles are skipped exactly."""
    x, y, z = (float(c) for c in v)
    if rotx != 0:
        c, s = math.cos(rotx), math.sin(rotx)
        y, z = y * c - z * s, y * s + z * c
    if roty != 0:
        c, s = math.cos(roty), math.sin(roty)
        x, z = x * c + z * s, -x * s + z * c
    if rotz != 0:
        c, s = math.cos(rotz), math.sin(rotz)
        x, y = x * c - y * s, x * s + y * c
    return np.array([x, y, z])


def rotate_axis(v, axis, angle: float) -> np.ndarray:
    """Rodrigues rotation of v about the unit vector axis by angle (radians)."""
    v = np.asarray(v, dtype=float)
    ax = np.asarray(axis, dtype=float)
    c, s = math.cos(angle), math.sin(angle)
    along = float(ax @ v) * (1.0 - c)
    return ax * along + v * c + np.cross(ax, v) * s


def axis_rotation_matrix(axis, angle: float) -> np.ndarray:
    """3x3 matrix R with R @ v == rotate_axis(v, axis, angle)."""
    return np.stack([rotate_axis(e, axis, angle) for e in np.eye(3)], axis=1)
