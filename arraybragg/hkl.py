"""Structure factors: nanoBragg's HKL text files and its Fdump.bin cache.

The C reads an HKL file with ``fscanf`` twice: a first pass of four doubles
per entry finds the index ranges, a second pass of ``%d %d %d %lg`` fills the
grid.  ``fscanf`` knows nothing of lines: it reads whitespace-separated
numbers and stops at the first one it cannot convert.  So a file with five
columns is read as a stream of numbers in groups of four (the fifth column
becomes the next h), and a non-integer index stops the second pass at that
entry (``%d`` reads "1" of "1.5", then fails on ".5") although the first pass
went on.  The scanners below follow glibc's ``scanf`` conversions exactly.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import numpy as np

from .errors import InputError
from .outputs import atomic_write, c_format_g

__all__ = ["HKLGrid", "read_hkl_text", "write_fdump", "read_fdump"]


@dataclass
class HKLGrid:
    """Structure-factor amplitudes on the integer grid h_min..h_max x k_min..k_max x l_min..l_max.

    ``F[h - h_min, k - k_min, l - l_min]`` (float64).  Each axis has one more
    slab than its range, all zeros, exactly as the C allocates it (tricubic
    interpolation may read it).  ``count`` is the C's ``hkls``: entries read
    from an HKL file, or h_range * k_range * l_range after reading Fdump.bin.
    """

    F: np.ndarray
    h_min: int
    h_max: int
    k_min: int
    k_max: int
    l_min: int
    l_max: int
    count: int

    @property
    def h_range(self) -> int:
        return self.h_max - self.h_min + 1

    @property
    def k_range(self) -> int:
        return self.k_max - self.k_min + 1

    @property
    def l_range(self) -> int:
        return self.l_max - self.l_min + 1


_SPACE = re.compile(rb"[ \t\n\v\f\r]*")  # C isspace
_SCANF_INT = re.compile(rb"[ \t\n\v\f\r]*([+-]?[0-9]+)")
# glibc %lg: "infinity" must be complete once "infi" is seen; "0x" needs a hex digit
# or a point; an exponent marker is consumed even with no digits after it.
_SCANF_DOUBLE = re.compile(
    rb"""[ \t\n\v\f\r]*(?P<sign>[+-]?)(?:
        (?P<inf>inf(?:inity|(?!i)))
      | (?P<nan>nan)
      | 0x(?:(?P<hex>[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p(?P<hexexp>[+-]?[0-9]*))?|\.)
      | (?!0x)(?P<dec>[0-9]+\.?[0-9]*|\.[0-9]+)(?:e(?P<exp>[+-]?[0-9]*))?
    )""",
    re.VERBOSE | re.IGNORECASE,
)


def _scan_int(data: bytes, pos: int):
    """glibc ``%d`` at ``pos``: (value, new position), or None when it fails.

    The digits are read as a C long (saturating) and stored to an int (wrapping).
    """
    match = _SCANF_INT.match(data, pos)
    if match is None:
        return None
    value = max(-(1 << 63), min(int(match[1]), (1 << 63) - 1))
    return (value + (1 << 31)) % (1 << 32) - (1 << 31), match.end()


def _scan_double(data: bytes, pos: int):
    """glibc ``%lg`` at ``pos``: (value, new position), or None when it fails."""
    match = _SCANF_DOUBLE.match(data, pos)
    if match is None:
        return None
    if match["inf"] is not None:
        value = math.inf
    elif match["nan"] is not None:
        value = math.nan
    elif match["dec"] is not None:
        exponent = match["exp"] or b""
        digits = exponent.lstrip(b"+-")
        value = float(match["dec"] + (b"e" + exponent if digits else b""))
    elif match["hex"] is not None:
        exponent = match["hexexp"] or b""
        text = b"0x" + match["hex"] + (b"p" + exponent if exponent.lstrip(b"+-") else b"")
        try:
            value = float.fromhex(text.decode("ascii"))
        except OverflowError:
            value = math.inf
    else:  # "0x." reads as zero
        value = 0.0
    return (-value if match["sign"] == b"-" else value), match.end()


def _scan_group(data: bytes, pos: int, scanners):
    """One ``fscanf`` call: values and new position, or None unless every conversion succeeds."""
    values = []
    for scan in scanners:
        result = scan(data, pos)
        if result is None:
            return None
        value, pos = result
        values.append(value)
    return values, pos


def _c_int(value: float) -> int:
    """C double -> int on x86-64: truncation, INT_MIN when not representable."""
    if math.isnan(value) or not -2147483649.0 < value < 2147483648.0:
        return -2147483648
    return int(value)


def _is_integer_like(value: float) -> bool:
    """The C's test ``v == ceil(v - 0.4)``: NaN fails it, infinities pass."""
    if math.isnan(value) or math.isinf(value):
        return math.isinf(value)
    return value == math.ceil(value - 0.4)


def _read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read ({exc.strerror})") from None


_MAX_GRID_POINTS = 1 << 31  # 16 GiB of doubles: beyond this an index is surely garbage


def _allocate(path, shape) -> np.ndarray:
    if math.prod(shape) > _MAX_GRID_POINTS:
        raise InputError(f"{os.fspath(path)}: HKL index ranges {shape} are too large to allocate")
    return np.zeros(shape, dtype=np.float64)


def read_hkl_text(path, default_F: float) -> tuple[HKLGrid, list[str]]:
    """Read an ``h k l F`` text file as nanoBragg's -hkl does; returns (grid, warnings).

    Warnings are the C's lines for non-integer indices ("at line N" counts entries
    from 0).  Indices missing from the file keep ``default_F`` (the extra zero slab
    excepted).  No entries at all raise InputError.
    """
    data = _read_bytes(path)
    doubles = (_scan_double,) * 4
    lows, highs = [10**9] * 3, [-(10**9)] * 3
    warnings = []
    count, pos = 0, 0
    while (group := _scan_group(data, pos, doubles)) is not None:
        indices, pos = group[0][:3], group[1]
        for name, value in zip("hkl", indices):
            if not _is_integer_like(value):
                warnings.append(f"WARNING: non-integer value for {name} ({c_format_g(value)}) at line {count}")
        for axis, value in enumerate(indices):
            if lows[axis] > value:
                lows[axis] = _c_int(value)
            if highs[axis] < value:
                highs[axis] = _c_int(value)
        count += 1
    ranges = [high - low + 1 for low, high in zip(lows, highs)]
    if min(ranges) < 0:
        limits = ", ".join(f"{n}: {lo} - {hi}" for n, lo, hi in zip("hkl", lows, highs))
        raise InputError(f"{os.fspath(path)}: not enough HKL indices ({limits})")
    F = _allocate(path, tuple(r + 1 for r in ranges))
    if default_F != 0.0:
        F[:ranges[0], :ranges[1], :ranges[2]] = default_F
    entry = (_scan_int, _scan_int, _scan_int, _scan_double)
    pos = 0
    while (group := _scan_group(data, pos, entry)) is not None:
        (h, k, l, value), pos = group
        index = (h - lows[0], k - lows[1], l - lows[2])
        if not all(0 <= i <= r for i, r in zip(index, ranges)):
            raise InputError(f"{os.fspath(path)}: index {h} {k} {l} outside the range of the first reading")
        F[index] = value
    grid = HKLGrid(F, lows[0], highs[0], lows[1], highs[1], lows[2], highs[2], count)
    return grid, warnings


def write_fdump(path, grid: HKLGrid) -> None:
    """Write Fdump.bin atomically: the six limits as text, "\\n\\f", then F as native doubles."""
    F = np.ascontiguousarray(grid.F, dtype=np.float64)
    expected = (grid.h_range + 1, grid.k_range + 1, grid.l_range + 1)
    if F.shape != expected:
        raise ValueError(f"HKLGrid.F has shape {F.shape}, expected {expected}")
    limits = (grid.h_min, grid.h_max, grid.k_min, grid.k_max, grid.l_min, grid.l_max)
    header = ("%d %d %d %d %d %d\n\f" % limits).encode("ascii")
    atomic_write(path, header, F)


def read_fdump(path) -> HKLGrid:
    """Read Fdump.bin as the C does.

    The C's format "%d%d%d%d%d%d\\n\\f" skips ALL whitespace after the limits,
    so when the first double's first byte happens to be a whitespace byte
    (0x09-0x0d, 0x20) the data are read shifted; this is reproduced.  Missing
    limits, negative ranges or too few data bytes raise InputError.
    """
    data = _read_bytes(path)
    limits = _scan_group(data, 0, (_scan_int,) * 6)
    if limits is None:
        raise InputError(f"{os.fspath(path)}: not an Fdump file (six index limits expected)")
    (h_min, h_max, k_min, k_max, l_min, l_max), pos = limits
    pos = _SPACE.match(data, pos).end()
    ranges = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(ranges) < 0:
        raise InputError(f"{os.fspath(path)}: negative index range in Fdump limits")
    shape = tuple(r + 1 for r in ranges)
    size = math.prod(shape)
    if len(data) - pos < 8 * size:
        raise InputError(f"{os.fspath(path)}: truncated Fdump file ({len(data) - pos} data bytes, {8 * size} expected)")
    F = np.frombuffer(data, dtype=np.float64, count=size, offset=pos).reshape(shape).copy()
    return HKLGrid(F, h_min, h_max, k_min, k_max, l_min, l_max, ranges[0] * ranges[1] * ranges[2])
