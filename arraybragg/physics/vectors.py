"""Vectors on the array API: dot, norm, cross and rotation about an axis.

Array-API code: every function works in its arguments' namespace and on their device;
shapes broadcast, the last axis of a vector holding x, y, z.
"""
from __future__ import annotations

from ..backend import array_namespace


def dot(u, v):
    """Sum over the last (x, y, z) axis."""
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def norm(v):
    xp = array_namespace(v)
    return xp.sqrt(dot(v, v))


def cross(u, v):
    """Cross product over the last axis (broadcasting)."""
    xp = array_namespace(u, v)
    x = u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1]
    y = u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2]
    z = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    return xp.stack([x, y, z], axis=-1)


def rotate_components(v: list, axis: list, angle) -> list:
    """Rodrigues rotation of v about a unit axis by ``angle`` radians (an array), on x, y, z components:
    each of ``v`` and ``axis`` is three arrays or numbers, broadcasting with ``angle``.  Components
    rather than a last axis of 3: NumPy runs an operation along such a short axis one 3-long row at a
    time (a curved detector's positions took 4x the rest of its geometry)."""
    xp = array_namespace(angle)
    c, s = xp.cos(angle), xp.sin(angle)
    along = (axis[0] * v[0] + axis[1] * v[1] + axis[2] * v[2]) * (1.0 - c)
    crossed = (axis[1] * v[2] - axis[2] * v[1], axis[2] * v[0] - axis[0] * v[2], axis[0] * v[1] - axis[1] * v[0])
    return [axis[i] * along + v[i] * c + crossed[i] * s for i in range(3)]
