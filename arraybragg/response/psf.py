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
(a few hundred values) is computed on the host with libm, as the C does.  So is a
source's radius: noisify's formula depends on the pixel value alone, so it is found
once per image as a step function of the float32 value (a few bounds) and looked up
per pixel.  The direct sum spreads blocks of rows on several threads when asked
(``threads``): blocks write disjoint rows, so the sums are the same.
"""
from __future__ import annotations

import math
import struct
import threading
from dataclasses import dataclass

from ..backend import array_namespace
from ..concurrency import each
from ..errors import InputError

__all__ = ["PSF", "psf_kernel", "apply_psf", "FIBER_G_PER_FWHM"]

FIBER_G_PER_FWHM = 0.652383013252053
_PHOTON_LOSS_FACTOR = 10.0  # a radius leaves out about sqrt(I) / this many photons
_INT_MIN = -2147483648.0
_LOG16 = math.log(16)
_UNREACHED = 2147483647  # reach of no pixel: beyond every squared distance (int32's largest)
_FLOAT32_MAX = 3.4028234663852886e38  # the brightest finite pixel: its radius bounds every pixel's
_FLOAT32_MAX_BITS = 0x7F7FFFFF
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
        if self.fwhm_pixels == math.inf:  # (noisify's kernel size overflows)
            raise InputError("-psf_fwhm: an infinite width (beyond a C float) cannot be spread")

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


def _radius_core(psf: PSF, value: float) -> float:
    """noisify's radius of a source of ``value`` > 0 before ``1 + ceil``, in libm's double
    arithmetic (NaN where the logarithm is negative: values below 0.01 for a Gaussian)."""
    lost = math.sqrt(value) / _PHOTON_LOSS_FACTOR
    if psf.kind == "gauss":
        spread = -math.log(lost / value) / _LOG16
        return math.sqrt(spread) * psf.fwhm_pixels if spread >= 0.0 else math.nan
    return psf.g * (value / lost)


def _source_radius(psf: PSF, value: float, maxwidth: int) -> int:
    """Spreading radius of a source pixel of ``value`` > 0 as noisify gives it (INT_MIN: none)."""
    if psf.radius != 0:
        return min(psf.radius, maxwidth)
    core = _radius_core(psf, value)
    radius = _c_int(1.0 + math.ceil(core)) if math.isfinite(core) else int(_INT_MIN)
    return min(radius or 1, maxwidth)


def _float32(bits: int) -> float:
    return struct.unpack("<f", struct.pack("<I", bits))[0]


def _radius_steps(psf: PSF, maxwidth: int, top: float = _FLOAT32_MAX) -> tuple[list, list]:
    """The source radius as a step function of a float32 value > 0: (bounds, radii), the value
    v having radii[number of bounds <= v], for values up to ``top`` (and +inf).

    Found by bisection over the float32 values in order: below the Gaussian's NaN region
    (no radius), the radius never decreases, up to the cap, and beyond C's int range it has
    none again; +inf has none.
    """
    def key(bits: int) -> int:  # non-decreasing in bits over the finite positive float32 values
        value = _float32(bits)
        radius = _source_radius(psf, value, maxwidth)
        if radius != _INT_MIN:
            return radius
        return -1 if math.isnan(_radius_core(psf, value)) else maxwidth + 1

    low, high = 1, min(struct.unpack("<I", struct.pack("<f", min(top, _FLOAT32_MAX)))[0], _FLOAT32_MAX_BITS)
    bounds, radii = [], [_source_radius(psf, _float32(low), maxwidth)]
    current, last = key(low), key(high)
    while current < last:
        below, above = low, high  # key(below) == current < key(above)
        while above - below > 1:
            middle = (below + above) // 2
            below, above = (below, middle) if key(middle) > current else (middle, above)
        low, current = above, key(above)
        bounds.append(_float32(low))
        radii.append(_source_radius(psf, bounds[-1], maxwidth))
    return bounds + [math.inf], radii + [int(_INT_MIN)]


def _radius_table(xp, psf: PSF, limits: tuple, squares, device) -> dict:
    """Device tables of the step function, from the smallest positive value on (below: not a
    source): bounds (float32), reach (squared radius, -1 for none) and the per-radius loss factor
    (Gaussian: exp(-log 16 (r / fwhm)^2); fibre: sqrt(g^2 + r^2)).  ``limits``: (maxwidth, the
    brightest value of the image)."""
    bounds, radii = _radius_steps(psf, *limits) if psf.radius == 0 else ([], [min(psf.radius, limits[0])])
    bounds, radii = [_float32(1)] + bounds, [int(_INT_MIN)] + radii
    if psf.kind == "gauss":
        loss = [math.exp(-_LOG16 * ((r / psf.fwhm_pixels) * (r / psf.fwhm_pixels))) for r in radii]
    else:
        loss = [math.sqrt(psf.g * psf.g + float(r) * float(r)) for r in radii]
    return {"bounds": bounds,
            "reach": xp.asarray([r * r if r >= 0 else -1 for r in radii], dtype=squares, device=device),
            "loss": xp.asarray(loss, dtype=xp.float64, device=device)}


def _running_total(xp, values, start: float = 0.0) -> float:
    """``start`` plus a flat float64 array (changed in place) added one value at a time (sequential
    on NumPy)."""
    if values.shape[0] == 0:
        return start
    values[0] = values[0] + start
    return float(xp.cumulative_sum(values)[-1])


def apply_psf(image, psf: PSF, ready=None, threads: int = 1):
    """Blurred copy (float32, same shape and namespace) of a 2D photon image, as noisify's apply_psf.

    ``ready(rows)``, for an image that another thread is still filling row by row
    (a float32 image, used in place): returns once its first ``rows`` rows are
    final.  The direct sum then spreads each block of rows as soon as its
    sources are there (with the kernel of the largest radius any float32 pixel
    could have, offsets beyond the sources' reach being skipped anyway), unless
    that radius is over _STREAMED_RADIUS (fibre PSFs): then it waits for all rows.
    ``threads``: the direct sum spreads that many blocks at once (the result is the same).
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
    ceiling = _FLOAT32_MAX if streamed else _brightest(xp, image)
    if not streamed:
        radius = _cached_radius(psf, ceiling, maxwidth)
    if radius == 0:
        return xp.zeros_like(image)  # noisify: "no photons, PSF skipped" (an empty image)
    kernel = psf_kernel(psf, radius)
    if psf.method == "fft":
        return _fft_blur(xp, image, kernel, radius)
    out, share, most, brightest = _direct_sum(xp, image, psf, kernel, ready if streamed else None, threads, ceiling)
    if streamed:
        radius = _cached_radius(psf, brightest, maxwidth)
        if radius == 0:
            return xp.zeros_like(image)
        if most > radius * radius:  # a source reaches beyond the kernel noisify caches (rounding): as noisify
            return apply_psf(image, psf, threads=threads)
    step = _block_rows(width)

    def add_share(first: int) -> None:  # the lost photons, spread evenly (in double)
        rows = slice(first, min(first + step, height))
        out[rows, :] = xp.astype(xp.astype(out[rows, :], xp.float64) + share, xp.float32)

    each(add_share, range(0, height, step), threads)
    return out


def _brightest(xp, values) -> float:
    """The largest value above 0 (0.0 if none), NaN left out: the plain maximum, unless it is NaN
    (NumPy's where, the other way, costs 2-4 ns a pixel)."""
    top = float(xp.max(values))
    if top != top:
        top = float(xp.max(_masked(xp, values, values > 0.0, False)))
    return top if top > 0.0 else 0.0


def _cached_radius(psf: PSF, max_value: float, maxwidth: int) -> int:
    """Radius of the kernel noisify caches for an image whose brightest pixel (0 if none > 0) is
    ``max_value``; 0 when it skips the PSF (no photons).  An infinite pixel has no radius (noisify's
    kernel size then overflows): refused, unless the radius is given."""
    if psf.radius <= 0 and max_value <= 0.0:
        return 0
    _spreadable(psf, max_value)
    return kernel_radius(psf, max_value, maxwidth)


def _spreadable(psf: PSF, brightest: float) -> None:
    """Refuse an infinite pixel when radii are automatic: it has none (noisify's kernel size overflows)."""
    if psf.radius <= 0 and brightest == math.inf:
        raise InputError("-psf: a pixel of infinite photons has no spreading radius (keep the photons within "
                         "float32, e.g. a lower -scale, or give -psf_radius)")


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


def _direct_sum(xp, image, psf: PSF, kernel: dict, ready=None, threads: int = 1, ceiling: float = _FLOAT32_MAX):
    """noisify's spreading loop, vectorised per block of output rows and kernel offset (float32).

    Returns (the sums, the lost photons' share of each pixel, the largest squared reach, the
    brightest pixel or 0).
    An offset whose distance no source near a block reaches adds only zeros there
    (out + 0.0 == out, as out >= 0): it is skipped for that block, which leaves the
    order of every pixel's other terms unchanged.  Offsets every source near the
    block reaches take the values as they are; the others take the values of the
    sources that reach them (0 elsewhere), made once per block and ring.  Sources
    are prepared by blocks of rows too, as they become ready, in raster order.  No
    temporary is larger than a block's rows: the image's float64 copies would cost
    fresh memory pages.  Blocks write disjoint rows, so ``threads`` threads sum them at
    once (array operations release the GIL); the sources are prepared under a lock.  With
    ``ready``, the helper threads start once the last row is ready.  ``ceiling``: no pixel is
    brighter (the radius table covers values up to it).
    """
    height, width = image.shape
    device = getattr(image, "device", None)
    squares = xp.int32 if max(height, width) ** 2 < _UNREACHED else xp.int64
    # per pixel: the squared spreading radius (radii are whole); -1: not a source (<= 0, NaN, no valid radius)
    state = {"reach": xp.empty(image.shape, dtype=squares, device=device), "lost": 0.0, "rows": 0,
             "brightest": 0.0,
             "most": xp.full((height,), -1, dtype=squares, device=device),
             "least": xp.full((height,), _UNREACHED, dtype=squares, device=device),
             "finite": xp.ones((height,), dtype=xp.bool, device=device),  # rows with no NaN or infinity
             "table": _radius_table(xp, psf, (max(height, width), ceiling), squares, device)}
    out = xp.zeros((height, width), dtype=xp.float32, device=device)
    # each value a (1, 1) float64 array: float32 sources times it are double in every namespace (PyTorch
    # promotes a float32 tensor times a 0-d float64 one to float32, which would round every term)
    offsets = [(dy, dx, xp.asarray([[value]], dtype=xp.float64, device=device), dx * dx + dy * dy)
               for (dy, dx), value in _offset_order(kernel, width)]
    reach = (min((dy for dy, _, _, _ in offsets), default=0),
             max((dy for dy, _, _, _ in offsets), default=0) + 1)  # + 1: the wrap to the next row
    pad = min(width, max((abs(dx) for _, dx, _, _ in offsets), default=0))  # source columns beyond each edge
    rows, lock = _block_rows(width), threading.Lock()

    def block_sum(top: int) -> None:
        block = (top, min(top + rows, height))
        near = (max(0, top - reach[1]), max(0, min(height, block[1] - reach[0])))  # the block's source rows
        with lock:
            while state["rows"] < max(near[1], block[1]):
                _prepare_rows(xp, image, psf, state, min(height, state["rows"] + rows), ready)
        if near[0] < near[1]:
            sources = slice(*near)
            bounds = (int(xp.max(state["most"][sources])), int(xp.min(state["least"][sources])),
                      bool(xp.all(state["finite"][sources])))
            _sum_block(xp, (image, state["reach"], out), (offsets, pad), block, near, bounds)

    # helpers join once every source is in: before, the producer of the rows needs the other core
    each(block_sum, range(0, height, rows), threads, None if ready is None else (lambda: ready(height)))
    return out, state["lost"] / (height * width), int(xp.max(state["most"])), state["brightest"]


def _prepare_rows(xp, image, psf: PSF, state: dict, stop: int, ready) -> None:
    """Reach and lost photons of the sources of rows state["rows"]:stop (waiting for them).

    Only pixels > 0 are sources; the lost photons are added in raster order (the
    others lose none, and adding 0.0 to the running total changes nothing).
    """
    if ready is not None:
        ready(stop)
    rows = slice(state["rows"], stop)
    chunk = image[rows, :]
    table, positive = state["table"], chunk > 0.0
    state["finite"][rows] = xp.all(xp.isfinite(chunk), axis=1)
    finite = bool(xp.all(state["finite"][rows]))
    brightest = _brightest(xp, chunk)
    _spreadable(psf, brightest)
    state["brightest"] = max(state["brightest"], brightest)
    steps = xp.int8 if len(table["bounds"]) < 128 else xp.int32  # counted in the narrowest type that holds them
    index = xp.zeros(chunk.shape, dtype=steps, device=getattr(chunk, "device", None))
    for bound in table["bounds"]:  # the step of each pixel: the bounds it reaches (none: NaN, <= 0)
        if bound > brightest:
            break
        index += xp.astype(chunk >= bound, steps)
    index = xp.astype(xp.reshape(index, (-1,)), xp.int64)  # (NumPy's take converts other index types each time)
    values = xp.astype(_masked(xp, chunk, positive, finite), xp.float64)  # the sources' values, else 0
    factor = xp.reshape(xp.take(table["loss"], index), chunk.shape)
    lost = values * factor if psf.kind == "gauss" else values * psf.g / factor
    state["lost"] = _running_total(xp, xp.reshape(lost, (-1,)), state["lost"])
    reach = xp.reshape(xp.take(table["reach"], index), chunk.shape)
    state["reach"][rows, :] = reach
    state["most"][rows] = xp.max(reach, axis=1)
    zero = xp.astype(chunk == 0.0, reach.dtype)  # a zero adds zeros: its reach (-1) becomes _UNREACHED
    state["least"][rows] = xp.min(reach + zero * _UNREACHED + zero, axis=1)
    state["rows"] = stop


def _sum_block(xp, arrays, kernel, block, near, bounds):
    """Every offset of ``kernel`` (offsets, pad) onto one block of output rows; ``bounds``: the most and
    least reach of its sources.

    The sources are the near rows padded with ``pad`` zero columns (the widest |dx|, at most
    the width), so that an offset can read a slice as wide as the image (a source beyond the
    edge adds 0.0, which changes no sum): the block's sums are then a new array, with no copy
    back.  A ring whose sources lie in a narrower window of columns is added to that window only.
    """
    image, reach, out = arrays
    most, least, finite = bounds
    width = out.shape[1]
    offsets, pad = kernel
    padded = (_padded(xp, image[near[0]:near[1], :], pad, 0.0), _padded(xp, reach[near[0]:near[1], :], pad, -1))
    everywhere = (padded[0], (-pad, width + pad))
    sums, rings = out[block[0]:block[1], :], {}
    for dy, dx, value, distance in offsets:
        if distance > most:
            continue
        array, window = everywhere if distance <= least else _ring(xp, padded, pad, distance, (rings, finite))
        sums = _spread(xp, sums, (array, near[0], pad, window), block, (dy, dx, value))
    out[block[0]:block[1], :] = sums


def _padded(xp, rows, pad: int, fill):
    """``rows`` with ``pad`` columns of ``fill`` on each side."""
    padded = xp.full((rows.shape[0], rows.shape[1] + 2 * pad), fill, dtype=rows.dtype,
                     device=getattr(rows, "device", None))
    padded[:, pad:pad + rows.shape[1]] = rows
    return padded


# A ring's sources are added over the window of columns holding them when it is narrower than
# this part of the image (else over whole rows, which need no copy back: fewer passes).
_WINDOW_SHARE = 0.75


def _ring(xp, padded, pad: int, distance: int, cache: tuple):
    """The padded sources that reach ``distance`` (0.0 elsewhere) and the image columns (start,
    stop) outside which they are 0, cached per ring in cache = (dict, whether every value is finite)."""
    rings, finite = cache
    # reach >= distance <=> reach >= ring^2 (reach is a square, or -1 for a non-source)
    ring = math.isqrt(distance - 1) + 1 if distance > 0 else 0
    if ring not in rings:
        values, reach = padded
        reaching = reach >= ring * ring
        columns = xp.nonzero(xp.any(reaching, axis=0))[0]
        window = (int(columns[0]) - pad, int(columns[-1]) + 1 - pad) if columns.shape[0] else (0, 0)
        width = values.shape[1] - 2 * pad
        if window[1] - window[0] > _WINDOW_SHARE * width:
            window = (-pad, width + pad)
        rings[ring] = (_masked(xp, values, reaching, finite), window)
    return rings[ring]


def _masked(xp, values, keep, finite: bool):
    """``values`` where ``keep``, 0 elsewhere.  ``finite`` (no NaN or infinity in ``values``): as their
    product with the mask, which NumPy computes 3-10x faster than ``where`` (it branches per element);
    a value left out may give -0.0, which adds nothing to any sum here."""
    if finite:
        return values * xp.astype(keep, values.dtype)
    return xp.where(keep, values, 0.0)


def _add_terms(xp, sums, targets, sources, value):
    """sums[targets] plus sources * value, each sum rounded to float32 (C: float += double).

    Returns the sums: a new array when the terms cover them all, else updated in place."""
    terms = sources * value
    if terms.shape == sums.shape:
        terms += sums  # float32 promoted to float64: the C's float + double
        return xp.astype(terms, xp.float32)
    terms += sums[targets]
    sums[targets] = xp.astype(terms, xp.float32)
    return sums


def _spread(xp, sums, sources, block, offset):
    """One kernel offset (dy, dx) onto the block's sums (image rows block = (first, stop)).

    Sources (padded rows, the image row of their first row, the padding, the image columns
    outside which they are 0) land at (y0 + dy, x0 + dx) when 0 <= x0 + dx < width;
    noisify also lets x0 + dx = width through, which lands on (y0 + dy + 1, 0): the
    second part.
    """
    width = sums.shape[1]
    dy, dx, value = offset
    array, top, pad, (start, end) = sources

    def rows(shift, lowest=0):  # block rows whose source row (y - shift) is in the array
        first, stop = max(block[0], top + shift, lowest), min(block[1], top + array.shape[0] + shift)
        return slice(first - block[0], stop - block[0]), slice(first - shift - top, stop - shift - top)

    targets, source_rows = rows(dy)
    left, right = max(0, start + dx), min(width, end + dx)
    if targets.start < targets.stop and left < right:
        sums = _add_terms(xp, sums, (targets, slice(left, right)),
                          array[source_rows, left - dx + pad:right - dx + pad], value)
    targets, source_rows = rows(dy + 1, 1)  # the C's test y0 + dy >= 0 keeps the wrap off row 0
    column = pad + width - dx
    if 1 <= dx <= width and start <= width - dx < end and targets.start < targets.stop:
        sums = _add_terms(xp, sums, (targets, slice(0, 1)), array[source_rows, column:column + 1], value)
    return sums


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
