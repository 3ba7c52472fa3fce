"""SMV (ADSC) image files as nanoBragg writes and reads them.

An SMV file is an ASCII header of ``KEY=value;`` lines in braces, padded to
HEADER_BYTES (a multiple of 512), followed by the pixels as unsigned 16-bit
integers, fast-major, in the byte order the header names.  nanoBragg writes its
``-intfile`` and ``-noisefile`` this way and reads ``-img`` / ``-mask`` files.

nanoBragg always declares HEADER_BYTES=512, even when its values make the text
longer (517 bytes for a Pilatus 6M geometry); readers that trust the declaration
(fabio, iotbx) then fail or read pixels from the wrong offset.  By default the
header here declares and fills the next multiple of 512 that holds the text;
``c_parity=True`` writes the C's bytes.  ``read_smv`` reads both.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .files import atomic_write
from .cformat import c_atof, c_double_to_int, c_format_g

__all__ = ["SMVHeader", "SMVImage", "format_smv_header", "write_smv", "read_smv", "header_value"]

HEADER_BYTES = 512
NATIVE_BYTE_ORDER = f"{sys.byteorder}_endian"  # the C compares only the first 10 characters


@dataclass(frozen=True)
class SMVHeader:
    """The values nanoBragg prints in an SMV header, in the header's units.

    Lengths in mm, wavelength in Angstrom, angles in degrees, XDS origin in pixels.
    """

    fpixels: int  # SIZE1: pixels along the fast axis
    spixels: int  # SIZE2: pixels along the slow axis
    pixel_size_mm: float
    distance_mm: float
    wavelength_A: float
    beam_center_x_mm: float
    beam_center_y_mm: float
    adxv_center_x_mm: float
    adxv_center_y_mm: float
    mosflm_center_x_mm: float
    mosflm_center_y_mm: float
    denzo_x_beam_mm: float
    denzo_y_beam_mm: float
    dials_origin_mm: tuple[float, float, float]
    xds_orgx: float
    xds_orgy: float
    close_distance_mm: float
    phi_deg: float
    osc_start_deg: float
    osc_range_deg: float
    twotheta_deg: float


@dataclass
class SMVImage:
    """An SMV file read back: header text (up to its first NUL) and pixels (height, width)."""

    header: str
    width: int
    height: int
    data: np.ndarray


# pixel dtype -> SMV TYPE (nanoBragg writes unsigned_short; 32-bit detector-response images long_integer)
PIXEL_TYPES = {np.dtype(np.uint16): "unsigned_short", np.dtype(np.uint32): "long_integer"}


def format_smv_header(fields: SMVHeader, c_parity: bool = False, pixel_type: str = "unsigned_short") -> bytes:
    """Header bytes: nanoBragg's keys, values (``%g``) and order, space-padded to HEADER_BYTES.

    HEADER_BYTES is the smallest multiple of 512 that holds the text.  With
    ``c_parity`` it is always 512, as in the C, and a longer text is left unpadded.
    """
    size = HEADER_BYTES
    while True:
        text = _header_lines(fields, size, pixel_type)
        if c_parity or len(text) <= size:
            return text.ljust(size, b" ")
        size += HEADER_BYTES


def _header_lines(fields: SMVHeader, header_bytes: int, pixel_type: str) -> bytes:
    g = c_format_g
    lines = [
        "{",
        f"HEADER_BYTES={header_bytes};",
        "DIM=2;",
        f"BYTE_ORDER={NATIVE_BYTE_ORDER};",
        f"TYPE={pixel_type};",
        f"SIZE1={int(fields.fpixels)};",
        f"SIZE2={int(fields.spixels)};",
        f"PIXEL_SIZE={g(fields.pixel_size_mm)};",
        f"DISTANCE={g(fields.distance_mm)};",
        f"WAVELENGTH={g(fields.wavelength_A)};",
        f"BEAM_CENTER_X={g(fields.beam_center_x_mm)};",
        f"BEAM_CENTER_Y={g(fields.beam_center_y_mm)};",
        f"ADXV_CENTER_X={g(fields.adxv_center_x_mm)};",
        f"ADXV_CENTER_Y={g(fields.adxv_center_y_mm)};",
        f"MOSFLM_CENTER_X={g(fields.mosflm_center_x_mm)};",
        f"MOSFLM_CENTER_Y={g(fields.mosflm_center_y_mm)};",
        f"DENZO_X_BEAM={g(fields.denzo_x_beam_mm)};",
        f"DENZO_Y_BEAM={g(fields.denzo_y_beam_mm)};",
        "DIALS_ORIGIN=" + ",".join(g(v) for v in fields.dials_origin_mm),  # no ';' in the C either
        f"XDS_ORGX={g(fields.xds_orgx)};",
        f"XDS_ORGY={g(fields.xds_orgy)};",
        f"CLOSE_DISTANCE={g(fields.close_distance_mm)};",
        f"PHI={g(fields.phi_deg)};",
        f"OSC_START={g(fields.osc_start_deg)};",
        f"OSC_RANGE={g(fields.osc_range_deg)};",
        f"TWOTHETA={g(fields.twotheta_deg)};",
        "DETECTOR_SN=000;",
        "BEAMLINE=fake;",
    ]
    return ("\n".join(lines) + "\n}\f").encode("ascii")


def write_smv(path, image, header: SMVHeader, c_parity: bool = False) -> None:
    """Write an image of shape (spixels, fpixels) as an SMV file, atomically: uint32 pixels as
    long_integer, any other as unsigned_short (``c_parity``: the C's header bytes, see
    ``format_smv_header``)."""
    dtype = np.dtype(np.uint32) if np.asarray(image).dtype == np.uint32 else np.dtype(np.uint16)
    pixels = np.ascontiguousarray(image, dtype=dtype)
    if pixels.shape != (header.spixels, header.fpixels):
        raise ValueError(f"image shape {pixels.shape} does not match header {(header.spixels, header.fpixels)}")
    atomic_write(path, format_smv_header(header, c_parity, PIXEL_TYPES[dtype]), pixels)


def _header_text(raw: bytes) -> str:
    """The header as the C's string functions see it: up to the first NUL byte."""
    return raw.split(b"\0", 1)[0].decode("latin-1")


def _overlong_header_end(raw: bytes, path) -> int:
    """Offset of the pixels after a header longer than it declares: its closing brace (and form feed)."""
    brace = raw.find(b"}")
    if brace < 0:
        raise InputError(f"{path}: SMV header has no closing brace")
    return brace + 2 if raw[brace + 1:brace + 2] == b"\f" else brace + 1


def _last_match_end(header: str, key: str) -> int:
    """End of the last non-overlapping occurrence of ``key`` scanning left to right, or -1."""
    end = -1
    found = header.find(key)
    while found >= 0:
        end = found + len(key)
        found = header.find(key, end)
    return end


def read_smv(path) -> SMVImage:
    """Read an SMV image as nanoBragg's GetFrame does.

    HEADER_BYTES is read from the first 512 bytes; a header whose closing brace
    lies beyond it (as nanoBragg writes long ones) ends at that brace and the form
    feed after it, where the pixels begin.  SIZE1 x SIZE2 give the shape
    (DETECTOR_DIMENSIONS for both when SIZE1 is 0 or absent).  The last BYTE_ORDER=
    decides the pixel byte order (none: native): unlike the C, which reads the
    pixels raw, the data are byte-swapped when it differs from this machine's.
    Missing, short or non-SMV files raise InputError naming the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as stream:
            raw = stream.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read SMV image ({exc.strerror})") from None
    if len(raw) < HEADER_BYTES:
        raise InputError(f"{path}: too short for an SMV image ({len(raw)} bytes)")
    if not raw.startswith(b"{\nHEADER_BYT"):
        raise InputError(f"{path}: does not look like an SMV (ADSC) image")
    header = _header_text(raw[:HEADER_BYTES])
    header_size = c_double_to_int(header_value(header, "HEADER_BYTES"))
    if header_size <= 0 or header_size > len(raw):
        raise InputError(f"{path}: bad HEADER_BYTES ({header_size}) for a {len(raw)}-byte file")
    if b"}" not in raw[:header_size]:
        header_size = _overlong_header_end(raw, path)
    if header_size != HEADER_BYTES:
        header = _header_text(raw[:header_size])
    order_at = _last_match_end(header, "BYTE_ORDER=")
    swap = order_at >= 0 and header[order_at:order_at + 10] != NATIVE_BYTE_ORDER[:10]
    width = c_double_to_int(header_value(header, "SIZE1"))
    height = c_double_to_int(header_value(header, "SIZE2"))
    if width in (0, -2147483648):
        width = height = c_double_to_int(header_value(header, "DETECTOR_DIMENSIONS"))
    if width <= 0 or height <= 0:
        raise InputError(f"{path}: bad SMV image size {width} x {height}")
    if len(raw) < header_size + 2 * width * height:
        raise InputError(f"{path}: SMV image truncated ({len(raw)} bytes for {width} x {height} pixels)")
    data = np.frombuffer(raw, dtype=np.uint16, count=width * height, offset=header_size).reshape(height, width)
    data = data.byteswap() if swap else data.copy()
    return SMVImage(header=header, width=width, height=height, data=data)


def header_value(header: str, key: str) -> float:
    """Number after ``key`` in an SMV header, with the C ValueOf rules.

    The LAST occurrence of ``key`` as a plain substring counts (so "DISTANCE" can
    hit "CLOSE_DISTANCE=", "ORGX" hits "XDS_ORGX="); the value is C ``atof`` of
    the text after the next "=".  NaN when the key does not occur, 0.0 when no
    "=" follows it or no number follows the "=".
    """
    if not key:
        raise ValueError("header_value: empty key")
    end = _last_match_end(header, key)
    if end < 0:
        return math.nan
    equals = header.find("=", end)
    if equals < 0:
        return 0.0
    return c_atof(header[equals + 1:])
