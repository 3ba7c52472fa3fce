"""noisify's noise loop compiled (optional): the same arithmetic as :class:`.streams.SharedRan1`.

The loop over pixels is sequential by nature (two seeds share one ran1 table,
and how many uniforms a pixel takes depends on their values), so NumPy cannot
vectorise it.  Two compiled engines run the functions below: the C extension
``_noiseloop`` (``_noiseloop.c``, built by the package's build when a C compiler
is there; it costs nothing at start-up) and, without it, numba (imported and
compiled on first use, cached on disk; its start-up costs about a second per
process).  :func:`available` says whether either is; without both, the
pure-Python :class:`.streams.SharedRan1` runs the same loop, about 100x slower.

C ``float`` variables are kept as float64 values rounded through float32
(``_f32``); + - * / of two such values rounded once give the float32 result.
State lives in two arrays: ``ints`` = [shot state, calibration state, iy,
table[0..31]] and ``floats`` = [spare present, spare, poidev's mean, g, sq, log mean].
"""
from __future__ import annotations

import importlib.util
import math
import threading

import numpy as np

try:  # built from _noiseloop.c when the package was installed with a C compiler
    from . import _noiseloop
except ImportError:  # pragma: no cover - depends on the build
    _noiseloop = None

__all__ = ["available", "engines", "noise_loop", "running_sum"]

_MODULUS = 2147483647
_UNIFORM_MAX = float(np.float32(1.0 - 1.2e-7))
_LANCZOS = (76.18009172947146, -86.50532032941677, 24.01409824083091,
            -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5)


def engines() -> list[str]:
    """The compiled engines installed, fastest to start first: "c", "numba"."""
    found = ["c"] if _noiseloop is not None else []
    return found + (["numba"] if importlib.util.find_spec("numba") is not None else [])


def available() -> bool:
    return bool(engines())


def _f32(x):
    return np.float64(np.float32(x))


def _lcg(state):
    k = state // 127773
    state = 16807 * (state - k * 127773) - 2836 * k
    return state + _MODULUS if state < 0 else state


def _uniform(which, ints):
    state = ints[which]
    if state <= 0 or ints[2] == 0:
        state = 1 if -state < 1 else -state
        for step in range(39, -1, -1):
            state = _lcg(state)
            if step < 32:
                ints[3 + step] = state
        ints[2] = ints[3]
    state = _lcg(state)
    ints[which] = state
    slot = ints[2] >> 26
    ints[2] = ints[3 + slot]
    ints[3 + slot] = state
    value = _f32(ints[2] * (1.0 / _MODULUS))
    return _UNIFORM_MAX if value > _UNIFORM_MAX else value


def _gauss(which, ints, floats):
    if floats[0] != 0.0:
        floats[0] = 0.0
        return floats[1]
    while True:
        v1 = _f32(2.0 * _uniform(which, ints) - 1.0)
        v2 = _f32(2.0 * _uniform(which, ints) - 1.0)
        rsq = _f32(_f32(v1 * v1) + _f32(v2 * v2))
        if rsq < 1.0 and rsq != 0.0:
            break
    factor = _f32(math.sqrt(-2.0 * math.log(rsq) / rsq))
    floats[0], floats[1] = 1.0, _f32(v1 * factor)
    return _f32(v2 * factor)


def _log_gamma(x):
    shifted = x + 5.5
    shifted -= (x + 0.5) * math.log(shifted)
    series, term = 1.000000000190015, x
    for coefficient in _LANCZOS:
        term += 1.0
        series += coefficient / term
    return _f32(-shifted + math.log(2.5066282746310005 * series / x))


def _rejection(mean, ints, floats):
    if mean != floats[2]:
        floats[2], floats[4], floats[5] = mean, _f32(math.sqrt(2.0 * mean)), _f32(math.log(mean))
        floats[3] = _f32(_f32(mean * floats[5]) - _log_gamma(_f32(mean + 1.0)))
    sq, log_mean, g = floats[4], floats[5], floats[3]
    while True:
        while True:
            lorentz = _f32(math.tan(math.pi * _uniform(0, ints)))
            trial = _f32(_f32(sq * lorentz) + mean)
            if not trial < 0.0:
                break
        trial = math.floor(trial)
        exponent = _f32(_f32(_f32(trial * log_mean) - _log_gamma(_f32(trial + 1.0))) - g)
        ratio = _f32(0.9 * (1.0 + _f32(lorentz * lorentz)) * math.exp(exponent))
        if not _uniform(0, ints) > ratio:
            return trial


def _poisson(mean, ints, floats):
    if mean > 1.0e6:
        return _f32(mean + math.sqrt(mean) * _gauss(0, ints, floats))
    if not mean < 12.0:
        return _rejection(mean, ints, floats)
    if mean != floats[2]:
        floats[2], floats[3] = mean, _f32(math.exp(-mean))
    g, product, count = floats[3], _uniform(0, ints), 0.0
    while product > g:
        product = _f32(product * _uniform(0, ints))
        count += 1.0
    return count


def _noise_loop(photons, flicker, calibration, ints, floats, counts, total=0.0):
    for i in range(photons.size):
        mean = np.float64(photons[i])
        if flicker > 0.0:
            mean *= 1.0 + flicker * _gauss(0, ints, floats)
        if calibration > 0.0:
            mean *= 1.0 + calibration * _gauss(1, ints, floats)
        counts[i] = _poisson(_f32(mean), ints, floats)
        total += np.float64(counts[i])
    return total


_NUMBA_NAMES = ("_f32", "_lcg", "_uniform", "_gauss", "_log_gamma", "_rejection", "_poisson", "_noise_loop")
_NUMBA_LOCK = threading.Lock()  # frames of a dataset may reach the first call from several threads


def _numba_loop():
    """The loop compiled by numba (imported here, on first use: its import alone takes ~0.5 s).

    The functions are rebound to their compiled versions so that numba finds
    them by name when it compiles the loop.
    """
    names = globals()
    with _NUMBA_LOCK:
        if not hasattr(names["_noise_loop"], "py_func"):
            import numba

            jit = numba.njit(cache=True, nogil=True)
            for name in _NUMBA_NAMES:
                names[name] = jit(names[name])
    return names["_noise_loop"]


def _c_loop(flat, flicker, calibration, ints, floats, counts, total=0.0):
    return _noiseloop.noise_loop(flat, counts, flicker, calibration, ints, floats, total)


# With ``progress``, the C engine runs the loop by chunks of whole rows of about this many pixels
# and reports each (it releases the GIL meanwhile: another thread can use the finished rows).
_CHUNK_PIXELS = 1 << 17


def noise_loop(photons: np.ndarray, flicker: float, calibration: float, shot_seed: int, calib_seed: int,
               engine: str | None = None, counts: np.ndarray | None = None, progress=None):
    """Counts (float32), final state (ints, floats as above) and the double sum of the counts.

    ``engine`` "c" or "numba" (one of :func:`engines`); None: the first installed.
    ``counts``: a C-contiguous float32 array of photons' shape to fill (default: a new one).
    ``progress(rows)`` is called when the first ``rows`` rows (of the last axis) are final:
    chunk by chunk with the C engine, once at the end with numba.
    """
    engine = engine or engines()[0]
    loop = _c_loop if engine == "c" else _numba_loop()
    flat = np.ascontiguousarray(photons, dtype=np.float32).ravel()
    ints = np.zeros(35, dtype=np.int64)
    ints[0], ints[1] = shot_seed, calib_seed
    floats = np.array([0.0, 0.0, -1.0, 0.0, 0.0, 0.0])
    counts = np.empty(np.shape(photons), dtype=np.float32) if counts is None else counts
    out = counts.reshape(-1)  # a view: counts is C-contiguous
    width = np.shape(photons)[-1] if np.ndim(photons) else 1
    step = flat.size if progress is None or engine != "c" else width * max(1, _CHUNK_PIXELS // max(1, width))
    total = 0.0
    for start in range(0, flat.size, max(1, step)):
        stop = start + step
        total = loop(flat[start:stop], float(flicker), float(calibration), ints, floats, out[start:stop], total)
        if progress is not None:
            progress(min(flat.size, stop) // max(1, width))
    return counts, ints, floats, float(total)


# Without the C extension, running sums go by chunks of this many values (a double copy each).
_SUM_CHUNK = 1 << 20


def running_sum(values: np.ndarray, start: float = 0.0) -> float:
    """``start`` plus float32 ``values`` (any shape, raster order) added one at a time in double, as
    noisify's running sums: the C extension's loop (1.3 ns a value) when it was built, else NumPy's
    cumulative sum (4 ns a value).  Zeros add nothing, so the result is also the sum of the others."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if _noiseloop is not None:
        return _noiseloop.running_sum(flat, float(start))
    total = float(start)
    for first in range(0, flat.size, _SUM_CHUNK):
        part = flat[first:first + _SUM_CHUNK].astype(np.float64)
        part[0] += total
        total = float(np.cumsum(part)[-1])
    return total
