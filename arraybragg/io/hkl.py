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

from ..errors import InputError
from .files import atomic_write
from .cformat import c_double_to_int, c_format_g

__all__ = ["HKLGrid", "read_hkl_text", "refuse_unusable", "MAX_F", "write_fdump", "read_fdump"]


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
    """glibc ``%d`` at ``pos``: (value, new position), or None when it fails."""
    match = _SCANF_INT.match(data, pos)
    if match is None:
        return None
    return _stored_int(match[1]), match.end()


def _stored_int(digits: bytes) -> int:
    """Decimal digits read as a C long (saturating) and stored to an int (wrapping)."""
    value = max(-(1 << 63), min(int(digits), (1 << 63) - 1))
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)


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


def _all_groups(data: bytes, scanners) -> list[list]:
    """The values of repeated ``fscanf`` calls from the start of ``data`` until one fails."""
    groups, pos = [], 0
    while (group := _scan_group(data, pos, scanners)) is not None:
        values, pos = group
        groups.append(values)
    return groups


_FIRST_PASS = (_scan_double,) * 4
_SECOND_PASS = (_scan_int, _scan_int, _scan_int, _scan_double)


def _hkl_passes(data: bytes):
    """Entries of the C's two passes over an HKL file.

    Returns (first, indices, values): the first pass's [h, k, l, F] doubles, shape
    (n, 4); the second pass's h, k, l ints, shape (m, 3), and its F, shape (m,).
    When every line is three integers and a plain number, NumPy's row parser
    reads the file; when every whitespace-separated token is a plain decimal
    number, each one is exactly one conversion and the tokens are converted
    directly; otherwise the glibc scanners run over the bytes.
    """
    table = _plain_table(data)
    if table is not None:
        indices = np.stack([table["h"], table["k"], table["l"]], axis=1)
        if _c_int_integers(indices):
            return np.column_stack([indices, table["F"]]), indices, table["F"]
    tokens = data.split()  # bytes.split() separates on exactly C's isspace set
    first = _plain_numbers(data, tokens)
    if first is not None:
        usable = first.size // 4 * 4
        first = first[:usable].reshape(-1, 4)
        columns = [tokens[axis:usable:4] for axis in range(3)]
        if _plain_integers(first[:, :3], columns):
            return first, first[:, :3].astype(np.int64), first[:, 3]
        # "%d" stops inside a token: let the scanners decide the second pass
    else:
        first = np.array(_all_groups(data, _FIRST_PASS), dtype=np.float64).reshape(-1, 4)
    second = _all_groups(data, _SECOND_PASS)
    indices = np.array([entry[:3] for entry in second], dtype=np.int64).reshape(-1, 3)
    return first, indices, np.array([entry[3] for entry in second], dtype=np.float64)


_NUMBER_BYTES = b"0123456789+-.eE"
_INDEX_BYTES = b"0123456789+-"


_PLAIN_ROW = np.dtype([("h", np.int64), ("k", np.int64), ("l", np.int64), ("F", np.float64)])


def _plain_table(data: bytes) -> np.ndarray | None:
    """The entries of the common file (every line: three integers and a plain number) or None.

    Then the token stream the C scans is exactly these rows, each token one conversion, and
    NumPy's C row parser reads it several times faster than converting tokens one by one.
    Anything else (other characters, a line of other than four fields, an index that is not
    a plain integer, a malformed number) returns None for the general path.
    """
    if data.translate(None, _NUMBER_BYTES + b" \t\n\r") or not data.strip():
        return None
    try:
        return np.loadtxt(data.decode("ascii").splitlines(), dtype=_PLAIN_ROW, ndmin=1)
    except ValueError:
        return None


def _plain_numbers(data: bytes, tokens: list) -> np.ndarray | None:
    """Every token as a double when all are plain decimal numbers (one conversion each), else None.

    Tokens made only of digits, signs, '.', 'e' and 'E' that NumPy parses are
    exactly the plain numbers (anything malformed, like '1.2.3', fails), so two
    C-speed passes replace a per-token regular expression.
    """
    if data.translate(None, _NUMBER_BYTES + b" \t\n\r\v\f"):
        return None
    try:
        return np.array(tokens, dtype=np.bytes_).astype(np.float64)
    except ValueError:
        return None


def _c_int_integers(values: np.ndarray) -> bool:
    """True when every value is an integer inside the range of a C int."""
    return values.size == 0 or bool(np.all(values == np.trunc(values))
                                    and values.min() >= -(2**31) and values.max() < 2**31)


def _plain_integers(values: np.ndarray, columns: list) -> bool:
    """True when the h, k, l tokens are plain integers that fit a C int (so "%d" reads each whole)."""
    if not _c_int_integers(values):
        return False
    return not b"".join(b"".join(column) for column in columns).translate(None, _INDEX_BYTES)


def _read_bytes(path, max_bytes=None) -> bytes:
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise InputError(f"{os.fspath(path)}: {size} bytes is over the memory limit of {max_bytes:.3g} "
                                 "bytes (raise it with --max-memory)")
            return stream.read()
    except OSError as exc:
        raise InputError(f"{os.fspath(path)}: cannot read ({exc.strerror})") from None


_MAX_GRID_POINTS = 1 << 31  # 16 GiB of doubles: beyond this an index is surely garbage


def _allocate(path, shape, max_bytes=None) -> np.ndarray:
    limit = _MAX_GRID_POINTS * 8 if max_bytes is None else min(max_bytes, _MAX_GRID_POINTS * 8)
    if 8 * math.prod(shape) > limit:
        raise InputError(f"{os.fspath(path)}: HKL index ranges {shape} need {8 * math.prod(shape) / 2**30:.3g} GiB, "
                         f"over the limit of {limit / 2**30:.3g} GiB (raise it with --max-memory)")
    return np.zeros(shape, dtype=np.float64)


_NON_FINITE = re.compile(rb"(?i)(?<![0-9a-z])[+-]?(?:nan|inf)")
MAX_F = 1e150   # |F| above this overflows F^2 (and any intensity): refused by a run


def refuse_unusable(path, grid: HKLGrid) -> None:
    """InputError naming the first line of the HKL file holding a NaN, infinite or huge (> MAX_F) value.

    The reader keeps the C's reading of such values (glibc reads "nan" and "inf");
    a run refuses them through this check.
    """
    with np.errstate(invalid="ignore"):
        if (np.abs(grid.F) <= MAX_F).all():
            return
    data = _read_bytes(path)
    for number, line in enumerate(data.splitlines(), start=1):
        if _NON_FINITE.search(line) or any(not abs(v) <= MAX_F for v in _line_numbers(line)):
            break
    else:
        number = "?"
    raise InputError(f"{os.fspath(path)}: line {number}: F must be a finite number of magnitude up to {MAX_F:g}")


def _line_numbers(line: bytes) -> list:
    """The plain numbers of one line (for locating an overflowing value such as 1e999)."""
    out = []
    for token in line.split():
        try:
            out.append(float(token))
        except ValueError:
            pass
    return out


def _index_limits(entries: np.ndarray) -> tuple[list[int], list[int]]:
    """h, k, l minima and maxima as the C finds them: int variables updated in file order.

    The C assigns a double to an int (truncation), so for non-integer or
    out-of-range indices the running comparison is replayed; otherwise the
    limits are plain minima and maxima.
    """
    lows, highs = [10**9] * 3, [-(10**9)] * 3
    indices = entries[:, :3]
    if _c_int_integers(indices):
        if indices.size:
            lows = [min(low, int(v)) for low, v in zip(lows, indices.min(axis=0))]
            highs = [max(high, int(v)) for high, v in zip(highs, indices.max(axis=0))]
        return lows, highs
    for row in indices.tolist():
        for axis, value in enumerate(row):
            if lows[axis] > value:
                lows[axis] = c_double_to_int(value)
            if highs[axis] < value:
                highs[axis] = c_double_to_int(value)
    return lows, highs


def _non_integer_warnings(entries: np.ndarray) -> list[str]:
    """The C's warnings for indices failing ``v == ceil(v - 0.4)`` ("line" counts entries from 0)."""
    indices = entries[:, :3]
    with np.errstate(invalid="ignore"):
        suspicious = ~(indices == np.ceil(indices - 0.4))
    return [f"WARNING: non-integer value for {'hkl'[axis]} ({c_format_g(indices[line, axis])}) at line {line}"
            for line, axis in zip(*np.nonzero(suspicious))]


def read_hkl_text(path, default_F: float, max_bytes=None) -> tuple[HKLGrid, list[str]]:
    """Read an ``h k l F`` text file as nanoBragg's -hkl does; returns (grid, warnings).

    Warnings are the C's lines for non-integer indices.  Indices missing from the
    file keep ``default_F`` (the extra zero slab excepted); an index given twice
    keeps its last F.  No entries at all, or a second-pass index outside the
    first pass's limits (the C then writes out of bounds and crashes), or a grid
    (or file) over ``max_bytes`` raise InputError.
    """
    entries, indices, values = _hkl_passes(_read_bytes(path, max_bytes))
    lows, highs = _index_limits(entries)
    ranges = [high - low + 1 for low, high in zip(lows, highs)]
    if min(ranges) < 0:
        limits = ", ".join(f"{n}: {lo} - {hi}" for n, lo, hi in zip("hkl", lows, highs))
        raise InputError(f"{os.fspath(path)}: not enough HKL indices ({limits})")
    F = _allocate(path, tuple(r + 1 for r in ranges), max_bytes)
    if default_F != 0.0:
        F[:ranges[0], :ranges[1], :ranges[2]] = default_F
    offsets = indices - np.array(lows, dtype=np.int64)
    if np.any(offsets < 0) or np.any(offsets > np.array(ranges)):
        raise InputError(f"{os.fspath(path)}: entries shifted by a split token fall outside the range of the first reading")
    flat = np.ravel_multi_index(offsets.T, F.shape)
    # keep the last entry of each index, as the C's sequential stores do
    _, last_from_end = np.unique(flat[::-1], return_index=True)
    keep = len(flat) - 1 - last_from_end
    F.flat[flat[keep]] = values[keep]
    grid = HKLGrid(F, lows[0], highs[0], lows[1], highs[1], lows[2], highs[2], len(entries))
    return grid, _non_integer_warnings(entries)


def write_fdump(path, grid: HKLGrid) -> None:
    """Write Fdump.bin atomically: the six limits as text, "\\n\\f", then F as native doubles."""
    F = np.ascontiguousarray(grid.F, dtype=np.float64)
    expected = (grid.h_range + 1, grid.k_range + 1, grid.l_range + 1)
    if F.shape != expected:
        raise ValueError(f"HKLGrid.F has shape {F.shape}, expected {expected}")
    limits = (grid.h_min, grid.h_max, grid.k_min, grid.k_max, grid.l_min, grid.l_max)
    header = ("%d %d %d %d %d %d\n\f" % limits).encode("ascii")
    atomic_write(path, header, F)


def read_fdump(path, max_bytes=None) -> HKLGrid:
    """Read Fdump.bin as the C does.

    The C's format "%d%d%d%d%d%d\\n\\f" skips ALL whitespace after the limits,
    so when the first double's first byte happens to be a whitespace byte
    (0x09-0x0d, 0x20) the data are read shifted by that byte and the last
    bytes come out zero; this is reproduced.  Missing limits, negative ranges
    or a file too short for its limits, NaN, infinite or huge (> MAX_F) values, or a file over
    ``max_bytes`` raise InputError.
    """
    data = _read_bytes(path, max_bytes)
    limits = _scan_group(data, 0, (_scan_int,) * 6)
    if limits is None:
        raise InputError(f"{os.fspath(path)}: not an Fdump file (six index limits expected)")
    (h_min, h_max, k_min, k_max, l_min, l_max), end_of_limits = limits
    ranges = (h_max - h_min + 1, k_max - k_min + 1, l_max - l_min + 1)
    if min(ranges) < 0:
        raise InputError(f"{os.fspath(path)}: negative index range in Fdump limits")
    shape = tuple(r + 1 for r in ranges)
    nbytes = 8 * math.prod(shape)
    if len(data) - end_of_limits < nbytes:
        raise InputError(f"{os.fspath(path)}: truncated Fdump file ({len(data)} bytes for grid {shape})")
    start = _SPACE.match(data, end_of_limits).end()
    values = data[start:start + nbytes].ljust(nbytes, b"\0")  # the C's calloc'd buffer
    F = np.frombuffer(values, dtype=np.float64).reshape(shape).copy()
    with np.errstate(invalid="ignore"):
        unusable = ~(np.abs(F) <= MAX_F)
    if unusable.any():
        h, k, l = (int(i) for i in np.argwhere(unusable)[0])
        raise InputError(f"{os.fspath(path)}: F({h + h_min} {k + k_min} {l + l_min}) is not a finite number "
                         f"of magnitude up to {MAX_F:g}")
    return HKLGrid(F, h_min, h_max, k_min, k_max, l_min, l_max, ranges[0] * ranges[1] * ranges[2])
