"""noisify's output files: SMV integer images (16 or 32 bits) and the PGM preview.

noisify writes its own short SMV header (or copies the one of ``-header``
byte for byte), then the pixels in native byte order, fast-major.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..io.cformat import c_format_g
from ..io.smv import HEADER_BYTES, NATIVE_BYTE_ORDER

__all__ = ["NoisifyHeader", "smv_header_bytes", "smv_parts", "pgm_parts"]


@dataclass(frozen=True)
class NoisifyHeader:
    """Values of noisify's SMV header (mm, Angstrom as given, degrees as given)."""

    fpixels: int
    spixels: int
    pixel_size_mm: float
    distance_mm: float
    wavelength: float
    beam_center_x_mm: float
    beam_center_y_mm: float
    phi_deg: float = 0.0
    osc_range_deg: float = 1.0


def smv_header_bytes(fields: NoisifyHeader, bits: int) -> bytes:
    """The header noisify makes up: %g values, ``}`` and form feed, space-padded to 512 bytes."""
    g = c_format_g
    kind = "unsigned_short" if bits == 16 else "long_integer"
    lines = [
        "{", f"HEADER_BYTES={HEADER_BYTES};", "DIM=2;", f"BYTE_ORDER={NATIVE_BYTE_ORDER};", f"TYPE={kind};",
        f"SIZE1={fields.fpixels};", f"SIZE2={fields.spixels};",
        f"PIXEL_SIZE={g(fields.pixel_size_mm)};", f"DISTANCE={g(fields.distance_mm)};",
        f"WAVELENGTH={g(fields.wavelength)};", f"BEAM_CENTER_X={g(fields.beam_center_x_mm)};",
        f"BEAM_CENTER_Y={g(fields.beam_center_y_mm)};", f"PHI={g(fields.phi_deg)};",
        f"OSC_START={g(fields.phi_deg)};", f"OSC_RANGE={g(fields.osc_range_deg)};",
        "DETECTOR_SN=000;", "BEAMLINE=fake;",
    ]
    return ("\n".join(lines) + "\n}\f").encode("ascii").ljust(HEADER_BYTES, b" ")


def smv_parts(header: bytes, image: np.ndarray) -> tuple:
    """A whole SMV file as the parts to write one after the other: the header bytes, then the
    pixels (uint16 or uint32, native order) as a contiguous array (no copy when it is one)."""
    return header, np.ascontiguousarray(image)


def pgm_parts(int16_image: np.ndarray) -> tuple:
    """noisify's PGM (the 16-bit noiseless image clipped at 255, as binary P5) as the parts to
    write: the header bytes, then the pixels (uint8)."""
    slow, fast = int16_image.shape
    pixels = np.minimum(int16_image, 255).astype(np.uint8)
    return f"P5\n{fast} {slow}\n# pixels scaled by 1\n255\n".encode("ascii"), pixels
