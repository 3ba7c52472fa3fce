"""Image files of a render: raw floats, scaled integers, Poisson noise, PGM preview.

Every function reproduces nanoBragg's conversions pixel for pixel, including
what its C casts do to out-of-range values on x86-64 (a double converted to an
unsigned char/short goes through a 32-bit int: NaN and values outside the int
range become INT_MIN, then only the low bits are kept).  Images are NumPy
arrays of shape (slow, fast); files store them fast-major in native byte order.
A region of interest is ``(xmin, xmax, ymin, ymax)``: inclusive fast and slow
pixel limits; pixels outside it are written as 0.
"""
from __future__ import annotations

import numpy as np

from .. import rng
from ..io.cformat import c_format_g
from ..io.files import atomic_write

__all__ = [
    "write_float_image",
    "int_image",
    "auto_int_scale",
    "noise_image",
    "pgm_bytes",
    "write_pgm",
    "auto_pgm_scale",
]


def _roi_slices(shape, roi) -> tuple[slice, slice]:
    """(slow, fast) slices of the pixels inside an inclusive ROI, clipped to the image."""
    xmin, xmax, ymin, ymax = (int(v) for v in roi)
    slow, fast = shape
    return (slice(max(ymin, 0), max(min(ymax + 1, slow), 0)),
            slice(max(xmin, 0), max(min(xmax + 1, fast), 0)))


# Images are converted in blocks of whole ROI rows of about this many pixels, so
# that the double-precision scratch arrays stay small and in cache.
_CHUNK_PIXELS = 1 << 16


def _roi_row_blocks(shape, roi):
    """(slow, fast) slices covering the ROI in blocks of whole rows, in raster order."""
    rows, cols = _roi_slices(shape, roi)
    step = max(1, _CHUNK_PIXELS // max(cols.stop - cols.start, 1))
    for top in range(rows.start, rows.stop, step):
        yield slice(top, min(top + step, rows.stop)), cols


def _c_unsigned_cast(values: np.ndarray, bits: int) -> np.ndarray:
    """C cast of floats to an unsigned ``bits``-wide integer as gcc does it on x86-64."""
    dtype = np.uint16 if bits == 16 else np.uint8
    if not values.size or (values.min() >= 0.0 and values.max() < (1 << bits)):
        return values.astype(dtype)  # in range (so no NaN either): plain truncation
    values = values.astype(np.float64, copy=False)
    in_int_range = (values > -2147483649.0) & (values < 2147483648.0)  # False for NaN
    as_int = np.where(in_int_range, np.trunc(np.where(in_int_range, values, 0.0)), -2147483648.0)
    return (as_int.astype(np.int64) & ((1 << bits) - 1)).astype(dtype)


def write_float_image(path, image) -> None:
    """Raw float32 image file (native byte order, fast-major), as ``-floatfile``."""
    atomic_write(path, np.ascontiguousarray(image, dtype=np.float32))


def auto_int_scale(max_I: float) -> float:
    """Default ``-scale``: map the brightest pixel (photons) to 55000 ADU."""
    return 55000.0 / max_I if max_I > 0.0 else 1.0


def int_image(float_image, scale: float, adc_offset: float, roi) -> np.ndarray:
    """uint16 image of ``-intfile``: pixel * scale + adc, clipped to [0, 65535], rounded.

    Rounding is the C's ``floorf(test + 0.5)``: the double sum is first rounded to
    float32, then floored.
    """
    image = np.asarray(float_image, dtype=np.float32)
    out = np.zeros(image.shape, dtype=np.uint16)
    for block in _roi_row_blocks(image.shape, roi):
        test = np.multiply(image[block], np.float64(scale), dtype=np.float64)
        test += adc_offset
        np.clip(test, 0.0, 65535.0, out=test)  # NaN passes through, as in the C
        test += 0.5
        rounded = test.astype(np.float32)
        np.floor(rounded, out=rounded)
        out[block] = _c_unsigned_cast(rounded, 16)
    return out


def _running_sum(values: np.ndarray, total: float) -> float:
    """total + values[0] + values[1] + ... added one at a time in double, as a C loop does.

    Adding a zero never changes a double sum that starts from +0, so only the
    non-zero values (few on a diffraction image) are summed.
    """
    sums = values[values != 0].astype(np.float64)
    if not sums.size:
        return total
    sums[0] += total
    return float(np.cumsum(sums, out=sums)[-1])


def noise_image(float_image, seed: int, adc_offset: float, roi) -> tuple[np.ndarray, float, int]:
    """Poisson-noise image of ``-noisefile``: (uint16 image, photons, overloads).

    One :class:`rng.Ran1Stream` seeded with ``seed`` (the C ``long`` as stored:
    ``-seed 1234`` stores -1234) draws a Poisson deviate for each ROI pixel in
    raster order; adc_offset is added, values above 65535 are clipped and counted
    as overloads, and the result is truncated to uint16 (negative values wrap, as
    the C cast does).  ``photons`` is the sum of the deviates before the offset.
    """
    image = np.asarray(float_image, dtype=np.float32)
    out = np.zeros(image.shape, dtype=np.uint16)
    stream = rng.Ran1Stream(seed)
    photons, overloads = 0.0, 0
    for block in _roi_row_blocks(image.shape, roi):
        deviates = rng.poisson_array(image[block], stream)
        photons = _running_sum(deviates, photons)
        test = deviates.astype(np.float64)
        test += adc_offset
        overloaded = test > 65535.0
        if overloaded.any():
            overloads += int(np.count_nonzero(overloaded))
            test[overloaded] = 65535.0
        out[block] = _c_unsigned_cast(test, 16).reshape(out[block].shape)
    return out, photons, overloads


def auto_pgm_scale(intfile_scale: float, rmsd: float) -> float:
    """Default ``-pgmscale``: 250 / (5 rmsd), or the int-image scale when rmsd is 0."""
    return 250.0 / (5.0 * rmsd) if rmsd > 0.0 else intfile_scale


def pgm_bytes(float_image, pgm_scale: float, roi) -> bytes:
    """8-bit binary PGM (P5) of ``-pgmfile``: min(255, pixel * scale) truncated to a byte."""
    image = np.asarray(float_image, dtype=np.float32)
    pixels = np.zeros(image.shape, dtype=np.uint8)
    for block in _roi_row_blocks(image.shape, roi):
        test = np.multiply(image[block], np.float64(pgm_scale), dtype=np.float64)
        np.minimum(test, 255.0, out=test)
        pixels[block] = _c_unsigned_cast(test, 8)
    slow, fast = image.shape
    header = f"P5\n{fast} {slow}\n# pixels scaled by {c_format_g(pgm_scale)}\n255\n"
    return header.encode("ascii") + pixels.tobytes()


def write_pgm(path, float_image, pgm_scale: float, roi) -> None:
    """Write :func:`pgm_bytes` to ``path`` atomically."""
    atomic_write(path, pgm_bytes(float_image, pgm_scale, roi))
