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


def rotate_about_axis(v, axis, angle):
    """Rodrigues rotation of v (..., 3) about unit vectors axis (..., 3) by angle (...) radians."""
    xp = array_namespace(v, angle)
    c = xp.cos(angle)[..., None]
    s = xp.sin(angle)[..., None]
    along = dot(axis, v)[..., None] * (1.0 - c)
    return axis * along + v * c + cross(axis, v) * s
