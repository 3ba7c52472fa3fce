"""Validation shared by the user-unit models: every value checked where it is given, named in the error."""
from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

Vector = tuple[float, float, float]


def finite(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name}: must be finite, got {number:g}")
    return number


def finite_token(name: str, token: str) -> float:
    """A number read from a file's text, refused in one line naming ``name`` (and at most 20 characters of
    the token) unless it parses and is finite."""
    try:
        number = float(token)
    except ValueError:
        raise InputError(f"{name}: expected a number, got {token[:20]!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name}: expected a finite number, got {token[:20]!r}")
    return number


def positive(name: str, value) -> float:
    number = finite(name, value)
    if number <= 0.0:
        raise InputError(f"{name}: must be positive, got {number:g}")
    return number


def in_unit_range(name: str, value, low: float, high: float, unit: str, mistake: str) -> float:
    """A positive number within [low, high] of ``unit``; outside, an error suggesting the likely unit mix-up."""
    number = positive(name, value)
    if not low <= number <= high:
        raise InputError(f"{name}: {number:g} {unit} is outside {low:g}-{high:g} {unit} (given in {mistake}?)")
    return number


def non_negative(name: str, value) -> float:
    number = finite(name, value)
    if number < 0.0:
        raise InputError(f"{name}: must not be negative, got {number:g}")
    return number


def count(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise InputError(f"{name}: expected a whole number, got {value!r}")
    if int(value) < minimum:
        raise InputError(f"{name}: must be at least {minimum}, got {int(value)}")
    return int(value)


def vector(name: str, value, unit: bool = False) -> Vector:
    """Three finite floats; a unit vector (normalised; zero refused) when ``unit``."""
    try:
        values = tuple(finite(name, v) for v in value)
    except TypeError:
        raise InputError(f"{name}: expected three numbers, got {value!r}") from None
    if len(values) != 3:
        raise InputError(f"{name}: expected three numbers, got {len(values)}")
    if unit:
        norm = math.sqrt(sum(v * v for v in values))
        if norm == 0.0:
            raise InputError(f"{name}: zero-length direction")
        values = tuple(v / norm for v in values)
    return values


def matrix3(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=float)
    if array.shape != (3, 3) or not np.all(np.isfinite(array)):
        raise InputError(f"{name}: expected a finite 3x3 matrix")
    return array


def choice(name: str, enum, value):
    """An enum member from itself or its name (any case); the valid names listed otherwise."""
    if isinstance(value, enum):
        return value
    try:
        return enum[str(value).upper()]
    except KeyError:
        names = ", ".join(member.name for member in enum)
        raise InputError(f"{name}: {value!r} is not one of {names}") from None
