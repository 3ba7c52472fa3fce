"""The detector-response model: ideal photons/pixel in, the integer images a detector reads out.

The steps and their order are noisify's (bl831/nanoBragg), so that its images
are reproduced pixel for pixel:

1. photons = (fluence * r_e^2) * scale * pixel, stored as float32 (noisify's
   default fluence makes fluence * r_e^2 = 1: ``scale`` is photons per unit);
2. the noiseless integer image: photons * gain + adc_offset, clipped and
   truncated (the PSF is applied first only when there is no noise image);
3. per pixel in raster order: the mean times (1 + flicker * gauss(seed)) and
   (1 + calibration * gauss(calib_seed)), then a Poisson deviate on seed;
4. the point-spread function on those photon counts;
5. counts * gain + adc_offset + readout_noise * gauss(seed), clipped and truncated.

Then, beyond noisify and only when asked for (:mod:`.defects`): hot and dead
pixels and a beamstop shadow on both images.  Random streams are exact and
run on the host; the PSF runs on the namespace of the input image.  On NumPy,
the noise loop (step 3) and a direct PSF (step 4) run side by side, the PSF one
block of rows behind the loop (:func:`_blurred_counts`): the same numbers.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from array_api_compat import is_numpy_namespace

from ..backend import array_namespace, default_threads
from ..concurrency import beside, each
from ..errors import InputError
from . import streams
from ._compiled import running_sum
from .defects import Defects
from .psf import PSF, apply_psf

__all__ = ["DetectorResponse", "ResponseResult", "apply_response", "photon_image", "to_adu",
           "R_E_SQR", "NOISIFY_FLUENCE"]

R_E_SQR = 7.94079248018965e-30  # Thomson cross section (m^2)
NOISIFY_FLUENCE = 125932015286227086360700780544.0  # photons/m^2 making fluence * r_e^2 = 1


@dataclass(frozen=True)
class DetectorResponse:
    """Settings of the response, with noisify's defaults.

    Seeds are C ``long`` values as noisify stores them: ``-seed 5`` stores -5,
    ``-calib_seed 77`` stores -77; the default calibration seed is +123456789
    (positive, so it does not reload ran1's shared table: see
    :mod:`.streams`).  ``bits`` (16 or 32) is the width of the SMV integers.
    ``defects`` adds hot/dead pixels and a beamstop (None: none, as noisify).
    ``fixed_calibration`` (not noisify's): the calibration error is drawn from
    ``calib_seed``'s own ran1 stream (:func:`.streams.calibrated`), so it is the
    same per-pixel pattern whatever ``seed`` is; noisify's shared shuffle table
    otherwise mixes it with the shot seed (a new pattern for every seed).
    """

    scale: float = 1.0
    fluence: Optional[float] = NOISIFY_FLUENCE  # None: the image is in photons already (times scale)
    gain: float = 1.0
    adc_offset: float = 40.0
    readout_noise: float = 0.0
    flicker: float = 0.0
    calibration: float = 0.03
    seed: int = field(default_factory=lambda: -int(time.time()))
    calib_seed: int = 123456789
    psf: Optional[PSF] = None
    noise: bool = True
    bits: int = 16
    defects: Optional[Defects] = None
    fixed_calibration: bool = False

    def __post_init__(self):
        if self.bits not in (16, 32):
            raise InputError(f"-bits: {self.bits} is not 16 or 32")


@dataclass
class ResponseResult:
    """What :func:`apply_response` makes (NumPy arrays, shape of the input)."""

    photons: np.ndarray  # float32 ideal photons/pixel (after the PSF when there is no noise)
    int_image: np.ndarray  # noiseless integers (uint16 or uint32)
    int16_image: Optional[np.ndarray] = None  # noiseless 16-bit integers (the PGM is made from these)
    noise_image: Optional[np.ndarray] = None  # noisy integers, None without noise
    max_input: float = 0.0  # brightest input pixel (before scaling)
    photons_before_psf: float = 0.0  # counts summed after the Poisson step
    noise_photons: float = 0.0  # counts summed after the PSF
    overloads: int = 0  # noisy pixels clipped at the integer range


def _host(array) -> np.ndarray:
    """A NumPy copy of any array-API array (CuPy through .get())."""
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array)


# Whole-image float64 temporaries are computed by chunks of rows of about this many pixels: glibc
# serves blocks over 32 MiB (a 6-megapixel image in double) with fresh pages at every call, which
# cost as much as the arithmetic or more.
_CHUNK_PIXELS = 1 << 20


def _row_chunks(shape: tuple) -> list:
    """Slices of the first axis covering an array of ``shape`` (at least 1D) by chunks."""
    step = max(1, _CHUNK_PIXELS // max(1, int(np.prod(shape[1:]))))
    return [slice(start, start + step) for start in range(0, shape[0], step)]


def photon_image(float_image, response: DetectorResponse, threads: int = 1) -> np.ndarray:
    """Step 1: photons/pixel as float32, computed in double as noisify does (by chunks of rows on
    ``threads`` threads)."""
    if response.fluence is None:
        factor = response.scale
    else:
        factor = (response.fluence * R_E_SQR) * response.scale
    image = np.asarray(float_image)
    out = np.empty(image.shape, dtype=np.float32)

    def scale(rows) -> None:
        with np.errstate(over="ignore"):  # beyond float32: inf, as the C's cast gives, without a warning
            out[rows] = factor * image[rows].astype(np.float64)

    each(scale, _row_chunks(image.shape) if image.ndim else [()], threads)
    return out


def _unsigned(values: np.ndarray, bits: int) -> np.ndarray:
    """C cast of doubles to unsigned int (bits 32: via a 64-bit int) or unsigned short (via int)."""
    if values.size and values.min() >= 0.0 and values.max() < 2.0 ** bits:  # in range, no NaN
        return values.astype(np.uint16 if bits == 16 else np.uint32)
    if bits == 32:
        ok = (values > -9.3e18) & (values < 9.3e18)  # cvttsd2si 64-bit: else INT64_MIN -> low bits 0
        return np.where(ok, np.trunc(np.where(ok, values, 0.0)), 0.0).astype(np.int64).astype(np.uint32)
    ok = (values > -2147483649.0) & (values < 2147483648.0)
    as_int = np.where(ok, np.trunc(np.where(ok, values, 0.0)), -2147483648.0).astype(np.int64)
    return (as_int & 0xFFFF).astype(np.uint16)


def to_adu(adu: np.ndarray, bits: int, noiseless: bool = False) -> tuple[np.ndarray, int]:
    """Double ADU values to the SMV integers of ``bits``: (image, overloads).

    Values above 2^31 - 1 are clipped (an overload in 32 bits); the 16-bit image
    clips at 65535 (an overload in 16 bits).  noisify's noiseless image clips at
    65535 before it makes either, so its 32-bit version is clipped too.  Values
    below 0 and NaN take the C casts' results (:func:`_unsigned`).
    """
    adu = np.asarray(adu, dtype=np.float64)
    limit = 65535.0 if bits == 16 else 2147483647.0  # beyond it: an overload
    top = 65535.0 if noiseless else limit
    if adu.size and adu.min() >= 0.0:  # no NaN, nothing negative: clip and truncate
        overloads = int(np.count_nonzero(adu > limit)) if adu.max() > limit else 0
        return np.minimum(adu, top).astype(np.uint16 if bits == 16 else np.uint32), overloads
    adu = np.array(adu)
    high32 = adu > 2147483647.0
    adu[high32] = 2147483647.0
    high16 = adu > 65535.0
    if noiseless:
        adu[high16] = 65535.0
    image = _unsigned(adu, 32) if bits == 32 else None
    adu[high16] = 65535.0
    if bits == 16:
        image = _unsigned(adu, 16)
    return image, int(np.count_nonzero(high32 if bits == 32 else high16))


def _blurs(psf: Optional[PSF]) -> bool:
    """Whether ``psf`` spreads anything (noisify skips a PSF whose width is not above 0)."""
    return psf is not None and psf.fwhm_pixels > 0.0


def _blur(values: np.ndarray, psf: Optional[PSF], like, threads: int) -> np.ndarray:
    """The PSF on the namespace/device of ``like`` (the caller's input image)."""
    if not _blurs(psf):
        return values
    xp = array_namespace(like)
    if is_numpy_namespace(xp):
        return apply_psf(values, psf, threads=threads)
    device = getattr(like, "device", None)
    return _host(apply_psf(xp.asarray(values, device=device), psf, threads=threads))


def apply_response(float_image, response: DetectorResponse, threads: Optional[int] = None) -> ResponseResult:
    """Run the whole model on a 2D image (slow, fast) of any array-API namespace.

    ``threads``: how many threads the PSF's direct sum uses (None: every core); the images
    do not depend on it."""
    threads = threads or default_threads()
    host = _host(float_image).astype(np.float32, copy=False)
    if host.ndim != 2:
        raise InputError(f"detector response: image must be 2D, got shape {host.shape}")
    photons = photon_image(host, response, threads)
    if response.defects is not None:
        photons = response.defects.shadow(photons)
    # noisify's running max of the input: from 0, skipping NaN
    result = ResponseResult(photons=photons, int_image=None,
                            max_input=float(np.fmax.reduce(host, axis=None, initial=0.0)))
    if response.noise:
        _noise_stage(result, response, float_image, threads)
    else:
        result.photons = _blur(result.photons, response.psf, float_image, threads)
        _noiseless_images(result, response)
    if response.defects is not None:
        result.int_image = response.defects.mark(result.int_image, response.bits)
        result.int16_image = response.defects.mark(result.int16_image, 16)
        if result.noise_image is not None:
            result.noise_image = response.defects.mark(result.noise_image, response.bits)
    return result


def _noiseless_images(result: ResponseResult, response: DetectorResponse) -> None:
    """Step 2: the noiseless integer images of result.photons."""
    result.int_image, _ = _integers(result.photons, response, response.bits, noiseless=True)
    result.int16_image = (result.int_image if response.bits == 16
                          else _integers(result.photons, response, 16, noiseless=True)[0])


def _noise_stage(result: ResponseResult, response: DetectorResponse, like, threads: int) -> None:
    """Steps 2-5: the noiseless images; Poisson counts with flicker and calibration, PSF, gain,
    offset, readout noise."""
    photons, calibration = result.photons, response.calibration
    if response.fixed_calibration and calibration > 0.0:
        photons, calibration = streams.calibrated(photons, calibration, response.calib_seed), 0.0
    draw = (photons, response.flicker, calibration, response.seed, response.calib_seed)
    if _overlapped(response.psf, like):
        counts, stream, result.photons_before_psf = _blurred_counts(
            draw, response.psf, lambda: _noiseless_images(result, response), threads)
    elif threads > 1 and not _blurs(response.psf) and not response.readout_noise > 0.0:
        _counted_integers(result, response, draw)
        return
    else:
        _noiseless_images(result, response)
        counts, stream, result.photons_before_psf = streams.noise_counts(*draw)
        if response.psf is not None:
            counts = _blur(counts, response.psf, like, threads)
    blurred_sum = beside(running_sum, counts, threads) if response.psf is not None else None
    deviates = None
    if response.readout_noise > 0.0:
        deviates = streams.gauss_array(stream, counts.size).reshape(counts.shape)
    result.noise_image, result.overloads = _integers(counts, response, response.bits, deviates=deviates)
    result.noise_photons = result.photons_before_psf if blurred_sum is None else blurred_sum()


def _overlapped(psf: Optional[PSF], like) -> bool:
    """Whether the PSF can take the noise loop's rows as they come (:func:`_blurred_counts`)."""
    return _blurs(psf) and psf.method == "direct" and is_numpy_namespace(array_namespace(like))


class _Stopped(Exception):
    """Raised in the thread filling an image once nobody waits for its rows any more."""


class _FinishedRows:
    """Rows of an image that another thread fills in order: ``wait(rows)`` returns once the first
    ``rows`` are final, or raises the error that stopped that thread.  After ``stop()``, the filling
    thread's next ``advance`` raises :class:`_Stopped`."""

    def __init__(self):
        self._condition = threading.Condition()
        self._rows, self._error, self._stopped = 0, None, False

    def advance(self, rows: int) -> None:
        with self._condition:
            if self._stopped:
                raise _Stopped()
            self._rows = max(self._rows, rows)
            self._condition.notify_all()

    def stop(self) -> None:
        with self._condition:
            self._stopped = True

    def abandon(self, error: BaseException) -> None:
        with self._condition:
            self._error = error
            self._condition.notify_all()

    def wait(self, rows: int) -> None:
        with self._condition:
            self._condition.wait_for(lambda: self._rows >= rows or self._error is not None)
            if self._error is not None:
                raise self._error


class _NoiseThread:
    """The noise loop in a thread of its own (the compiled loop releases the GIL), filling ``counts``
    in raster order (``rows`` says how far), then ``then()`` there too (when given).  Used as a context
    manager around the work that reads the rows: leaving it waits for the thread."""

    def __init__(self, draw: tuple, then=None):
        self.counts = np.empty(np.shape(draw[0]), dtype=np.float32)
        self.rows, self._outcome = _FinishedRows(), {}
        self._worker = threading.Thread(target=self._loop, args=(draw, then), name="arraybragg-noise-loop",
                                        daemon=True)
        self._worker.start()

    def _loop(self, draw: tuple, then) -> None:
        try:
            self._outcome["noise"] = streams.noise_counts(*draw, counts=self.counts, progress=self.rows.advance)
            if then is not None:
                then()
        except BaseException as error:  # handed to the thread waiting for rows, which raises it
            self._outcome["error"] = error
            self.rows.abandon(error)

    def __enter__(self) -> "_NoiseThread":
        return self

    def __exit__(self, kind, error, tb) -> None:
        """Wait for the thread; when the caller failed (Ctrl-C, an error), the loop stops at its next
        block of rows first."""
        if error is not None:
            self.rows.stop()
        self._worker.join()

    def result(self) -> tuple:
        """(shot stream, the counts' sum) once the thread is done, or the error that stopped it."""
        self._worker.join()
        if "error" in self._outcome:
            raise self._outcome["error"]
        return self._outcome["noise"][1:]


def _blurred_counts(draw: tuple, psf: PSF, then, threads: int) -> tuple[np.ndarray, streams.rng.Ran1Stream, float]:
    """The noise loop in a second thread, then ``then()`` there too, and the direct PSF on ``threads``
    others, which spread each block of rows as soon as the loop has drawn the rows it needs.

    The same numbers as one after the other: the loop fills ``counts`` in raster order and
    the PSF only reads finished rows.  Returns (blurred counts, shot stream, counts' sum).
    """
    with _NoiseThread(draw, then) as loop:
        blurred = apply_psf(loop.counts, psf, ready=loop.rows.wait, threads=threads)
    return (blurred, *loop.result())


def _counted_integers(result: ResponseResult, response: DetectorResponse, draw: tuple) -> None:
    """Steps 2-5 without PSF or readout noise: the noise loop in a second thread while this one makes
    the noiseless images, then the noise image's integers of each chunk of rows once the loop has
    drawn it (the same numbers as one after the other)."""
    with _NoiseThread(draw) as loop:
        _noiseless_images(result, response)
        result.noise_image, result.overloads = _integers(loop.counts, response, response.bits, ready=loop.rows.wait)
    _, result.photons_before_psf = loop.result()
    result.noise_photons = result.photons_before_psf


def _integers(counts: np.ndarray, response: DetectorResponse, bits: int, noiseless: bool = False,
              deviates: Optional[np.ndarray] = None, ready=None) -> tuple[np.ndarray, int]:
    """:func:`to_adu` of counts * gain + adc_offset (+ readout_noise * deviates) in double, by rows;
    ``ready(rows)`` (when given) returns once the first ``rows`` rows of ``counts`` are final."""
    image = np.empty(counts.shape, dtype=np.uint16 if bits == 16 else np.uint32)
    overloads = 0
    for rows in _row_chunks(counts.shape):
        if ready is not None:
            ready(min(rows.stop, counts.shape[0]))
        adu = counts[rows].astype(np.float64)
        if response.gain != 1.0:  # (times 1.0 changes no value)
            adu *= response.gain
        adu += response.adc_offset
        if deviates is not None:
            adu += response.readout_noise * deviates[rows].astype(np.float64)
        image[rows], clipped = to_adu(adu, bits, noiseless)
        overloads += clipped
    return image, overloads
