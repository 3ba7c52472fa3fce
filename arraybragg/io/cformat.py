"""C number conversions nanoBragg's files and logs depend on: ``%g``, double -> int, ``atof``.

Each reproduces what glibc and x86-64 do, so that headers, logs and parsed
values match the C program's byte for byte.
"""
from __future__ import annotations

import math
import re
import struct


def c_format_g(value: float) -> str:
    """C printf ``%g`` (Python's matches, except that glibc prints a negative NaN as -nan)."""
    if math.isnan(value) and math.copysign(1.0, value) < 0:
        return "-nan"
    return "%g" % value


def c_float(value: float) -> float:
    """A double stored in a C float: rounded to nearest; beyond the float range an infinity of its sign."""
    try:
        return struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def c_double_to_int(value: float) -> int:
    """C conversion of a double to int on x86-64: truncation, INT_MIN when not representable."""
    if math.isnan(value) or not -2147483649.0 < value < 2147483648.0:
        return -2147483648
    return int(value)


_STRTOD_PREFIX = re.compile(
    r"""[ \t\n\v\f\r]*(?P<sign>[+-]?)(?:
        0x(?P<hex>(?:[0-9a-f]+\.?[0-9a-f]*|\.[0-9a-f]+)(?:p[+-]?[0-9]+)?)
      | (?P<dec>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?)
      | (?P<inf>inf(?:inity)?)
      | (?P<nan>nan(?:\([0-9a-z_]*\))?)
    )""",
    re.VERBOSE | re.IGNORECASE,
)


def c_atof(text: str) -> float:
    """C ``atof``: the longest numeric prefix after leading whitespace, 0.0 if there is none."""
    match = _STRTOD_PREFIX.match(text)
    if match is None:
        return 0.0
    if match["hex"] is not None:
        try:
            value = float.fromhex("0x" + match["hex"])
        except OverflowError:
            value = math.inf
    elif match["dec"] is not None:
        value = float(match["dec"])
    elif match["inf"] is not None:
        value = math.inf
    else:
        value = math.nan
    return -value if match["sign"] == "-" else value
