"""Point-spread function of a detector, as noisify applies it, on any array-API backend.

Two shapes, both integrated analytically over each square pixel:

* ``gauss``: a 2D Gaussian of the given FWHM;
* ``fiber``: the fibre-optic taper PSF ``g / (2 pi (g^2 + r^2)^(3/2))`` with
  ``g = 0.652383013252053 * FWHM``.

``method="direct"`` is noisify's own sum, reproduced bit for bit on NumPy: each
source pixel spreads over a disc whose radius depends on its own value (where
fewer than ~sqrt(I)/10 photons would fall outside) unless a radius is given; the
photons beyond that radius are added back evenly to every pixel; each output
pixel sums its float32 contributions in the C's order (source pixels in raster
order).  noisify's bounds test lets a source spread one column past the right
edge, which lands on the first pixel of the next row: kept, for parity.  The
cost is at most one pass over the image per kernel offset (passes that would add only
zeros are skipped).

``method="fft"`` convolves with the whole kernel (largest radius) through
``xp.fft``: much faster for wide kernels, not bit-identical (no per-pixel radius,
no wrap-around, sums rounded differently).  The photons outside the kernel
disc are added back evenly, so the total is the same.

Images are 2D float arrays (slow, fast) of any array-API namespace; the kernel
(a few hundred values) is computed on the host with libm, as the C does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..backend import array_namespace
from ..errors import InputError

__all__ = ["PSF", "psf_kernel", "apply_psf", "FIBER_G_PER_FWHM"]

FIBER_G_PER_FWHM = 0.652383013252053
_PHOTON_LOSS_FACTOR = 10.0  # a radius leaves out about sqrt(I) / this many photons
_INT_MIN = -2147483648.0
_LOG16 = math.log(16)
_UNREACHED = 2147483647  # reach of no pixel: beyond every squared distance (int32's largest)
_FLOAT32_MAX = 3.4028234663852886e38  # the brightest finite pixel: its radius bounds every pixel's
_STREAMED_RADIUS = 32  # the largest such bound for which apply_psf(ready=...) starts before all rows are in


@dataclass(frozen=True)
class PSF:
    """A point-spread function: ``kind`` "gauss" or "fiber", FWHM in pixels, radius in pixels.

    ``radius`` 0 chooses it automatically (per source pixel for the direct sum).
    ``method`` is "direct" (noisify's order, exact) or "fft" (fast convolution).
    """

    kind: str
    fwhm_pixels: float
    radius: int = 0
    method: str = "direct"

    def __post_init__(self):
        if self.kind not in ("gauss", "fiber"):
            raise InputError(f"-psf: unknown point-spread function '{self.kind}' (gauss or fiber)")
        if self.method not in ("direct", "fft"):
            raise InputError(f"--psf-method: unknown method '{self.method}' (direct or fft)")

    @property
    def g(self) -> float:
        return self.fwhm_pixels * FIBER_G_PER_FWHM


def _gauss_integral(x: float, y: float) -> float:
    return 0.125 * (math.erf(2 * x * math.sqrt(math.log(2))) * math.erf(y * math.sqrt(_LOG16))
                    * math.sqrt(_LOG16 / math.log(2)))


def _fiber_integral(x: float, y: float, g: float) -> float:
    return math.atan((x * y) / (g * math.sqrt(g * g + x * x + y * y))) / 2.0 / math.pi


def _over_pixel(integral, x: float, y: float, pixel: float) -> float:
    half = pixel / 2.0
    return (integral(x + half, y + half) - integral(x + half, y - half)
            - integral(x - half, y + half) + integral(x - half, y - half))


def psf_kernel(psf: PSF, radius: int) -> dict[tuple[int, int], float]:
    """{(dy, dx): fraction of a pixel's photons landing at that offset} within ``radius``.

    Offsets outside the disc dx^2 + dy^2 <= radius^2, and zero values, are left out.
    """
    kernel = {}
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dx * dx + dy * dy > radius * radius:
                continue
            if psf.kind == "gauss":
                f = psf.fwhm_pixels
                value = _over_pixel(_gauss_integral, dx / f, dy / f, 1.0 / f)
            else:
                value = _over_pixel(lambda x, y: _fiber_integral(x, y, psf.g), dx, dy, 1.0)
            if value != 0.0:
                kernel[(dy, dx)] = value
    return kernel


def _c_int(value: float) -> int:
    """C double -> int conversion (x86-64): truncation, INT_MIN when out of range or NaN."""
    if math.isnan(value) or not -2147483649.0 < value < 2147483648.0:
        return int(_INT_MIN)
    return int(value)


def kernel_radius(psf: PSF, max_value: float, maxwidth: int) -> int:
    """Radius of the cached kernel: the given one, or chosen from the brightest pixel."""
    radius = psf.radius
    if radius <= 0:
        lost = math.sqrt(max_value) / _PHOTON_LOSS_FACTOR
        if psf.kind == "gauss":
            radius = _c_int(1 + math.ceil(math.sqrt(-math.log(lost / max_value) / math.log(4) / 2)
                                          * psf.fwhm_pixels))
        else:
            radius = _c_int(1 + math.ceil(psf.g * (max_value / lost)))
        radius = radius or 1
    return min(radius, maxwidth)


def _source_radii(xp, image, psf: PSF, maxwidth: int):
    """Spreading radius of every source pixel (float64; INT_MIN where the C's int is invalid)."""
    if psf.radius != 0:
        return xp.full(image.shape, float(min(psf.radius, maxwidth)), dtype=xp.float64)
    values = xp.astype(image, xp.float64)
    safe = xp.where(values > 0.0, values, 1.0)
    lost = xp.sqrt(safe) / _PHOTON_LOSS_FACTOR
    if psf.kind == "gauss":
        radius = 1.0 + xp.ceil(xp.sqrt(-xp.log(lost / safe) / _LOG16) * psf.fwhm_pixels)
    else:
        radius = 1.0 + xp.ceil(psf.g * (safe / lost))
    valid = (radius > -2147483649.0) & (radius < 2147483648.0)  # False for NaN
    radius = xp.where(valid, xp.trunc(xp.where(valid, radius, 0.0)), _INT_MIN)
    radius = xp.where(radius == 0.0, 1.0, radius)
    return xp.where(radius > maxwidth, float(maxwidth), radius)


def _lost_photons(xp, image, radii, psf: PSF):
    """Photons each source pixel sends beyond its radius (0 for pixels <= 0), float64."""
    values = xp.astype(image, xp.float64)
    if psf.kind == "gauss":
        scaled = radii / psf.fwhm_pixels
        lost = values * xp.exp(-_LOG16 * (scaled * scaled))
    else:
        g = psf.g
        lost = values * g / xp.sqrt(g * g + radii * radii)
    return xp.where(values > 0.0, lost, 0.0)


def _running_total(xp, values, start: float = 0.0) -> float:
    """``start`` plus a flat float64 array added one value at a time (sequential on NumPy)."""
    if values.shape[0] == 0:
        return start
    first = xp.asarray([start], dtype=xp.float64, device=getattr(values, "device", None))
    return float(xp.cumulative_sum(xp.concat([first, values]))[-1])


def apply_psf(image, psf: PSF, ready=None):
    """Blurred copy (float32, same shape and namespace) of a 2D photon image, as noisify's apply_psf.

    ``ready(rows)``, for an image that another thread is still filling row by row
    (a float32 image, used in place): returns once its first ``rows`` rows are
    final.  The direct sum then spreads each block of rows as soon as its
    sources are there (with the kernel of the largest radius any float32 pixel
    could have, offsets beyond the sources' reach being skipped anyway), unless
    that radius is over _STREAMED_RADIUS (fibre PSFs): then it waits for all rows.
    """
    xp = array_namespace(image)
    if ready is not None and image.dtype != xp.float32:
        raise TypeError("apply_psf(ready=...): the image must be float32 (it is read in place)")
    image = xp.astype(image, xp.float32, copy=False)
    height, width = image.shape
    maxwidth = max(width, height)
    if height * width == 0:
        return image
    radius = kernel_radius(psf, _FLOAT32_MAX, maxwidth)
    streamed = ready is not None and psf.method == "direct" and (psf.radius > 0 or 0 < radius <= _STREAMED_RADIUS)
    if ready is not None and not streamed:
        ready(height)
    if not streamed:
        radius = _cached_radius(psf, float(xp.max(xp.where(image > 0.0, image, 0.0))), maxwidth)
    if radius == 0:
        return xp.zeros_like(image)  # noisify: "no photons, PSF skipped" (an empty image)
    kernel = psf_kernel(psf, radius)
    if psf.method == "fft":
        return _fft_blur(xp, image, kernel, radius)
    out, share, most, brightest = _direct_sum(xp, image, psf, kernel, ready if streamed else None)
    if streamed:
        radius = _cached_radius(psf, brightest, maxwidth)
        if radius == 0:
            return xp.zeros_like(image)
        if most > radius * radius:  # a source reaches beyond the kernel noisify caches (rounding): as noisify
            return apply_psf(image, psf)
    for top in range(0, height, _block_rows(width)):  # the lost photons, spread evenly (in double)
        rows = slice(top, min(top + _block_rows(width), height))
        out[rows, :] = xp.astype(xp.astype(out[rows, :], xp.float64) + share, xp.float32)
    return out


def _cached_radius(psf: PSF, max_value: float, maxwidth: int) -> int:
    """Radius of the kernel noisify caches for an image whose brightest pixel (0 if none > 0) is
    ``max_value``; 0 when it skips the PSF (no photons)."""
    if psf.radius <= 0 and max_value <= 0.0:
        return 0
    return kernel_radius(psf, max_value, maxwidth)


def _offset_order(kernel: dict, width: int) -> list:
    """Kernel offsets in the order noisify adds them to any one output pixel.

    Output j = i + dy*width + dx gets its terms in order of source i, so by
    decreasing flat offset; equal flat offsets (radius >= width) in the C's
    loop order over one source, dx then dy.
    """
    return sorted(kernel.items(), key=lambda item: (-(item[0][0] * width + item[0][1]),
                                                    item[0][1], item[0][0]))


# Output rows are summed in blocks of about this many pixels: each block's arrays stay in cache
# while all kernel offsets go over it (the order of the terms of any one pixel is unchanged).
_BLOCK_PIXELS = 1 << 17


def _block_rows(width: int) -> int:
    return max(1, _BLOCK_PIXELS // width)


def _direct_sum(xp, image, psf: PSF, kernel: dict, ready=None):
    """noisify's spreading loop, vectorised per block of output rows and kernel offset (float32).

    Returns (the sums, the lost photons' share of each pixel, the largest squared reach, the
    brightest pixel or 0).
    An offset whose distance no source near a block reaches adds only zeros there
    (out + 0.0 == out, as out >= 0): it is skipped for that block, which leaves the
    order of every pixel's other terms unchanged.  Offsets every source near the
    block reaches take the values as they are; the others take the values of the
    sources that reach them (0 elsewhere), made once per block and ring.  Sources
    are prepared by blocks of rows too, as they become ready.  No temporary is larger
    than a block's rows: the image's float64 copies would cost fresh memory pages.
    """
    height, width = image.shape
    device = getattr(image, "device", None)
    squares = xp.int32 if max(height, width) ** 2 < _UNREACHED else xp.int64
    # per pixel: the squared spreading radius (radii are whole); -1: not a source (<= 0, NaN, no valid radius)
    state = {"reach": xp.full(image.shape, -1, dtype=squares, device=device), "lost": 0.0, "rows": 0,
             "brightest": 0.0,
             "most": xp.full((height,), -1, dtype=squares, device=device),
             "least": xp.full((height,), _UNREACHED, dtype=squares, device=device)}
    out = xp.zeros((height, width), dtype=xp.float32, device=device)
    offsets = [(dy, dx, xp.asarray(value, dtype=xp.float64, device=device), dx * dx + dy * dy)
               for (dy, dx), value in _offset_order(kernel, width)]  # float32 * float64 value: double
    low = min((dy for dy, _, _, _ in offsets), default=0)
    high = max((dy for dy, _, _, _ in offsets), default=0) + 1  # + 1: the wrap to the next row
    rows = _block_rows(width)
    for top in range(0, height, rows):
        block = (top, min(top + rows, height))
        near = (max(0, top - high), max(0, min(height, block[1] - low)))  # the block's source rows
        while state["rows"] < max(near[1], block[1]):
            _prepare_rows(xp, image, psf, state, min(height, state["rows"] + rows), ready)
        if near[0] < near[1]:
            bounds = (int(xp.max(state["most"][near[0]:near[1]])), int(xp.min(state["least"][near[0]:near[1]])))
            _sum_block(xp, (image, state["reach"], out), offsets, block, near, bounds)
    return out, state["lost"] / (height * width), int(xp.max(state["most"])), state["brightest"]


def _prepare_rows(xp, image, psf: PSF, state: dict, stop: int, ready) -> None:
    """Radii, reach and lost photons of the sources of rows state["rows"]:stop (waiting for them).

    Only pixels > 0 are sources; their lost photons are added in raster order (the
    others lose none, and adding 0.0 to the running total changes nothing).
    """
    if ready is not None:
        ready(stop)
    rows = slice(state["rows"], stop)
    chunk = image[rows, :]
    positive = chunk > 0.0
    sources = chunk[positive]
    if sources.shape[0]:
        state["brightest"] = max(state["brightest"], float(xp.max(sources)))
    radii = _source_radii(xp, sources, psf, max(image.shape))
    state["lost"] = _running_total(xp, _lost_photons(xp, sources, radii, psf), state["lost"])
    reach = xp.full(chunk.shape, -1, dtype=state["reach"].dtype, device=getattr(image, "device", None))
    reach[positive] = xp.astype(xp.where(radii >= 0.0, radii * radii, -1.0), reach.dtype)
    state["reach"][rows, :] = reach
    state["most"][rows] = xp.max(reach, axis=1)
    state["least"][rows] = xp.min(xp.where(chunk == 0.0, _UNREACHED, reach), axis=1)  # a zero adds zeros
    state["rows"] = stop


def _sum_block(xp, arrays, offsets, block, near, bounds):
    """Every offset onto one block of output rows; ``bounds``: the most and least reach of its sources."""
    image, reach, out = arrays
    most, least = bounds
    rings = {}
    for dy, dx, value, distance in offsets:
        if distance > most:
            continue
        if distance <= least:
            sources = (image, 0, (0, image.shape[1]))
        else:
            sources = _ring(xp, image, reach, near, distance, rings)
        _spread(xp, out, sources, block, (dy, dx, value))


def _ring(xp, values, reach, near, distance, rings):
    """Sources of the near rows that reach ``distance``, cached per ring: (values there, else 0;
    first row; columns (first, stop) outside which every value is 0)."""
    # reach >= distance <=> reach >= ring^2 (reach is a square, or -1 for a non-source)
    ring = math.isqrt(distance - 1) + 1 if distance > 0 else 0
    if ring not in rings:
        rows = slice(near[0], near[1])
        reaching = reach[rows, :] >= ring * ring
        columns = xp.nonzero(xp.any(reaching, axis=0))[0]
        window = (int(columns[0]), int(columns[-1]) + 1) if columns.shape[0] else (0, 0)
        rings[ring] = (xp.where(reaching, values[rows, :], 0.0), near[0], window)
    return rings[ring]


def _add_terms(xp, out, target, sources, source, value):
    """out[target] += sources[source] * value, each sum rounded to float32 (C: float += double)."""
    terms = sources[source] * value
    terms += out[target]  # float32 promoted to float64: the C's float + double
    out[target] = xp.astype(terms, xp.float32)


def _spread(xp, out, sources, block, offset):
    """One kernel offset (dy, dx) onto output rows block = (first, stop).

    Sources (an array, the image row of its first row, the columns outside which
    it is 0) land at (y0 + dy, x0 + dx) when 0 <= x0 + dx < width; noisify also
    lets x0 + dx = width through, which lands on (y0 + dy + 1, 0): the second part.
    """
    height, width = out.shape
    dy, dx, value = offset
    array, shift, (start, end) = sources
    dy += shift  # rows of the source array = image rows - shift
    first, stop = max(block[0], dy), min(block[1], height + dy - shift)  # target rows with a source row
    left, right = max(0, dx, start + dx), min(width, width + dx, end + dx)
    if first < stop and left < right:
        _add_terms(xp, out, (slice(first, stop), slice(left, right)), array,
                   (slice(first - dy, stop - dy), slice(left - dx, right - dx)), value)
    if 1 <= dx <= width and start <= width - dx < end:  # wrap: from (y, width - dx) to (y + dy + 1, 0)
        first, stop = max(block[0], dy + 1, 1), min(block[1], height + dy - shift + 1)
        if first < stop:
            _add_terms(xp, out, (slice(first, stop), slice(0, 1)), array,
                       (slice(first - dy - 1, stop - dy - 1), slice(width - dx, width - dx + 1)), value)


def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n: FFT lengths with only small factors are several times faster
    (a prime length such as 2473 takes ~8x as long as 2500)."""
    best, power5 = 2 * n, 1
    while power5 < best:
        power35 = power5
        while power35 < best:
            length = power35
            while length < n:
                length *= 2
            best = min(best, length)
            power35 *= 3
        power5 *= 5
    return best


def _fft_blur(xp, image, kernel: dict, radius: int):
    """Convolution with the whole kernel by FFT; photons outside the kernel added back evenly.

    Padding by ``radius`` keeps the circular convolution from wrapping into the image;
    each axis is padded further to a fast FFT length."""
    height, width = image.shape
    device = getattr(image, "device", None)
    size = (_fast_length(height + radius), _fast_length(width + radius))
    values = xp.where(image > 0.0, xp.astype(image, xp.float64), 0.0)  # as the direct sum: sources > 0
    padded = xp.zeros(size, dtype=xp.float64, device=device)
    padded[:height, :width] = values
    taps = xp.zeros(size, dtype=xp.float64, device=device)
    for (dy, dx), value in kernel.items():
        taps[dy % size[0], dx % size[1]] = value
    spectrum = xp.fft.rfftn(padded, axes=(0, 1)) * xp.fft.rfftn(taps, axes=(0, 1))
    blurred = xp.fft.irfftn(spectrum, s=size, axes=(0, 1))[:height, :width]
    escaped = float(xp.sum(values)) * (1.0 - math.fsum(kernel.values()))
    return xp.astype(blurred + escaped / (height * width), xp.float32)
