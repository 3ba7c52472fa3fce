"""nanoBragg's random numbers, reproduced bit for bit.

nanoBragg draws every random number from the Numerical Recipes generator
``ran1`` (Park-Miller "minimal standard" LCG behind a 32-slot Bays-Durham
shuffle table) and turns uniforms into Gaussian, Poisson and rotation deviates
in single precision.  This module repeats that arithmetic exactly:

* integers are Python ints (the C uses 64-bit ``long``);
* a C ``float`` variable rounds every assignment to float32.  float op float is
  done in float32 (emulated by computing in double and rounding once, which is
  exact for + - * / sqrt because double has more than twice float's precision);
  an expression with a double constant (``2.0*x``) or a libm call (``exp``,
  ``log``, ``tan``, ``sqrt`` of a float go through the double versions) is
  evaluated in double and rounded to float32 when stored.

Each :class:`Ran1Stream` owns the state that the C keeps in ``static``
variables (shuffle table, spare Gaussian deviate, Poisson constants).  The C
shares one shuffle table between all its seeds; since every nanoBragg stream
starts from a negative seed, which reloads the table, per-stream state gives
the same numbers.  The one difference: a positive stored seed (e.g.
``-seed -5``) continues the table left by an earlier stream in the C, while
here it starts fresh, which the C does only when no stream ran before it
(any fresh seed >= 0 then behaves as -1).
"""
from __future__ import annotations

import array
import math
import os
import struct

import numpy as np

__all__ = [
    "Ran1Stream",
    "gauss",
    "poisson",
    "poisson_deviates",
    "mosaic_rotation_umat",
    "umat_to_misset",
]

# Park-Miller minimal standard generator and the shuffle table of ran1
_MULTIPLIER = 16807
_MODULUS = 2147483647
_TABLE_SIZE = 32
_SLOT_SHIFT = 26  # slot = value // (1 + (_MODULUS - 1) // _TABLE_SIZE), a division by 2**26
_WARMUP_STEPS = 8  # steps discarded before the table is filled
_UNIFORM_SCALE = 1.0 / _MODULUS
_UNIFORM_MAX = float(np.float32(1.0 - 1.2e-7))  # largest uniform returned (float32 of 1 - EPS)

# Uniforms are produced in blocks; the block grows so that a few draws stay cheap.
_FIRST_BLOCK = 32
_LARGEST_BLOCK = 1 << 16
# uniforms kept available before each Poisson deviate; a deviate needing more retries
_RESERVE = 1024


def _lcg_powers(count: int) -> np.ndarray:
    """_MULTIPLIER**(i+1) mod _MODULUS for i < count (int64), built by doubling.

    x * a^(i+1) mod m jumps the generator i+1 steps ahead; all products of two
    residues stay below 2**62.
    """
    powers = np.empty(count, dtype=np.int64)
    powers[0] = _MULTIPLIER
    filled = 1
    while filled < count:
        step = min(filled, count - filled)
        powers[filled:filled + step] = powers[:step] * powers[filled - 1] % _MODULUS
        filled += step
    return powers


_POWERS = _lcg_powers(_LARGEST_BLOCK)

_FLOAT32 = struct.Struct("f")
_pack_f32, _unpack_f32 = _FLOAT32.pack, _FLOAT32.unpack


def _f32(x: float) -> float:
    """Round a double to float32 as a C assignment to ``float`` does (overflow -> inf)."""
    try:
        return _unpack_f32(_pack_f32(x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


_powf_impl = None


def _powf(x: float, y: float) -> float:
    """C ``powf`` of float32 values.

    glibc's powf is not correctly rounded (about 1 result in 1500 differs by one
    ulp from the rounded double pow), so the C library's own powf is called
    through ctypes; the rounded double pow is the fallback where none is found.
    """
    global _powf_impl
    if _powf_impl is None:
        _powf_impl = _find_c_powf() or (lambda a, b: _f32(math.pow(a, b)))
    return _powf_impl(x, y)


def _find_c_powf():
    """libm's powf through ctypes (the running process first), or None."""
    import ctypes
    import ctypes.util

    def library_names():
        if os.name == "posix":
            yield None  # symbols already loaded into this process, libm among them
        yield from ("libm.so.6", "ucrtbase")
        yield ctypes.util.find_library("m")  # slow (may run the compiler): last resort

    for name in library_names():
        try:
            function = ctypes.CDLL(name).powf
        except (OSError, AttributeError, TypeError):
            continue
        function.restype = ctypes.c_float
        function.argtypes = (ctypes.c_float, ctypes.c_float)
        return function
    return None


def _exp(x: float) -> float:
    """libm exp: overflow gives inf instead of an exception."""
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


class Ran1Stream:
    """One nanoBragg random stream: ``ran1`` seeded with the C ``long`` as stored.

    nanoBragg stores ``seed = -atoi(value)``, so pass e.g. -12345678 for
    ``-mosaic_seed 12345678``.  Uniforms are generated ahead in blocks and
    handed out in order, so any mix of calls reproduces the C sequence.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._state = int(seed)  # the C's *idum
        self._last = 0  # the C's static iy; 0 means "table not loaded"
        self._table = [0] * _TABLE_SIZE
        self._buffer: list[float] = []
        self._next = 0
        self._block = _FIRST_BLOCK
        self.gauss_spare: float | None = None  # gaussdev's second Box-Muller deviate
        # poidev's cached constants for the last mean (the C's static oldm, g, sq, alxm)
        self.poisson_mean = -1.0
        self.poisson_g = 0.0
        self.poisson_sq = 0.0
        self.poisson_log_mean = 0.0

    def uniform(self) -> float:
        """Next uniform deviate in (0, 1): a float32 value, exactly as C ``ran1``."""
        if self._next >= len(self._buffer):
            self._reserve(1)
        value = self._buffer[self._next]
        self._next += 1
        return value

    def uniforms(self, count: int) -> np.ndarray:
        """The next ``count`` uniforms as a float32 array."""
        self._reserve(count)
        values = self._buffer[self._next:self._next + count]
        self._next += count
        return np.array(values, dtype=np.float32)

    def _reserve(self, count: int) -> None:
        """Make at least ``count`` unread uniforms available in the buffer."""
        if self._next:
            del self._buffer[:self._next]
            self._next = 0
        while len(self._buffer) < count:
            self._buffer.extend(self._generate(max(self._block, count - len(self._buffer))))
            self._block = min(2 * self._block, _LARGEST_BLOCK)

    def _generate(self, count: int) -> list[float]:
        """Run ran1 ``count`` times; returns the uniforms as Python floats."""
        shuffled: list[int] = []
        while len(shuffled) < count:
            if self._state <= 0 or self._last == 0:
                self._load_table()
            if self._state == 0:
                # seed was a multiple of the modulus: the generator is stuck at 0 and
                # returns 0 once; the next call reloads the table as seed -1
                shuffled.append(0)
                continue
            shuffled.extend(self._shuffle(min(count - len(shuffled), _LARGEST_BLOCK)))
        uniforms = (np.array(shuffled, dtype=np.float64) * _UNIFORM_SCALE).astype(np.float32)
        return np.minimum(uniforms, np.float32(_UNIFORM_MAX)).tolist()

    def _load_table(self) -> None:
        """(Re)seed: state = -seed (1 when that is below 1), warm up, fill the shuffle table."""
        state = 1 if -self._state < 1 else -self._state
        for step in range(_TABLE_SIZE + _WARMUP_STEPS - 1, -1, -1):
            state = state * _MULTIPLIER % _MODULUS
            if step < _TABLE_SIZE:
                self._table[step] = state
        self._state = state
        self._last = self._table[0]

    def _shuffle(self, count: int) -> list[int]:
        """Advance the LCG ``count`` steps (vectorised jump-ahead) through the shuffle table."""
        states = (self._state * _POWERS[:count] % _MODULUS).tolist()
        table, last, shift = self._table, self._last, _SLOT_SHIFT
        out: list[int] = []
        append = out.append
        for state in states:
            slot = last >> shift
            last = table[slot]
            table[slot] = state
            append(last)
        self._state, self._last = states[-1], last
        return out


def gauss(stream: Ran1Stream) -> np.float32:
    """Standard normal deviate (C ``gaussdev``: polar Box-Muller, spare kept on the stream)."""
    if stream.gauss_spare is not None:
        spare, stream.gauss_spare = stream.gauss_spare, None
        return np.float32(spare)
    while True:
        v1 = _f32(2.0 * stream.uniform() - 1.0)
        v2 = _f32(2.0 * stream.uniform() - 1.0)
        rsq = _f32(_f32(v1 * v1) + _f32(v2 * v2))
        if 0.0 < rsq < 1.0:
            break
    factor = _f32(math.sqrt(-2.0 * math.log(rsq) / rsq))
    stream.gauss_spare = _f32(v1 * factor)
    return np.float32(v2 * factor)


_LANCZOS = (76.18009172947146, -86.50532032941677, 24.01409824083091,
            -1.231739572450155, 0.1208650973866179e-2, -0.5395239384953e-5)


def _log_gamma(x: float) -> float:
    """ln Gamma(x) by the Lanczos series of C ``gammln``: float32 argument and result."""
    shifted = x + 5.5
    shifted -= (x + 0.5) * math.log(shifted)
    series = 1.000000000190015
    term = x
    for coefficient in _LANCZOS:
        term += 1.0
        series += coefficient / term
    return _f32(-shifted + math.log(2.5066282746310005 * series / x))


def poisson(mean: float, stream: Ran1Stream) -> np.float32:
    """Poisson deviate of ``mean`` (rounded to float32 first) exactly as C ``poidev``."""
    return np.float32(poisson_deviates([mean], stream)[0])


def _direct_thresholds(means: np.ndarray) -> list[float]:
    """exp(-mean) in double (libm, via math.exp) stored to float32, for every mean."""
    exponents = np.minimum(-means.astype(np.float64), 709.0)  # exp(709) already overflows a float
    with np.errstate(over="ignore"):
        return np.array(list(map(math.exp, exponents.tolist()))).astype(np.float32).tolist()


def poisson_deviates(means, stream: Ran1Stream) -> list[float]:
    """C ``poidev`` for each mean in order (rounded to float32), drawing from ``stream``.

    Below 12 the deviate counts uniforms until their running float32 product
    drops to exp(-mean); up to 1e6 it uses Lorentzian rejection; above that
    mean + sqrt(mean) * gauss.  Returns Python floats holding float32 values.

    This is the per-pixel loop of the noise image, so it is written for speed:
    exp(-mean) is computed for all means up front, and ``c_float[0] = x``
    stores x as a C float (rounding, overflow to inf) while ``c_float[0]``
    reads it back, cheaper than a function call.
    """
    means = np.asarray(means, dtype=np.float32).ravel()
    thresholds = _direct_thresholds(means)
    c_float = array.array("f", [0.0])
    exp, log, sqrt, tan, pi = _exp, math.log, math.sqrt, math.tan, math.pi
    log_gamma_memo: dict[float, float] = {}
    deviates: list[float] = []
    append = deviates.append
    cached_mean, g = stream.poisson_mean, stream.poisson_g
    sq, log_mean = stream.poisson_sq, stream.poisson_log_mean
    reserve = _RESERVE
    stream._reserve(reserve)
    buf, pos = stream._buffer, stream._next
    for mean, threshold in zip(means.tolist(), thresholds):
        if pos + reserve > len(buf):
            stream._next = pos
            stream._reserve(reserve)
            buf, pos = stream._buffer, stream._next
        start = pos
        while True:
            try:
                if mean < 12.0:  # direct method
                    if mean != cached_mean:  # (the C's cache: its first oldm is -1 with g = 0)
                        cached_mean, g = mean, threshold
                    product = buf[pos]  # 1.0f * u is exact
                    pos += 1
                    count = 0.0
                    while product > g:
                        c_float[0] = product * buf[pos]
                        product = c_float[0]
                        pos += 1
                        count += 1.0
                    append(count)
                elif mean > 1.0e6:  # normal approximation
                    stream._next = pos
                    append(_f32(mean + sqrt(mean) * float(gauss(stream))))
                    buf, pos = stream._buffer, stream._next
                else:  # rejection method (also taken by NaN)
                    if mean != cached_mean:
                        cached_mean = mean
                        sq = _f32(sqrt(2.0 * mean))
                        log_mean = _f32(log(mean))
                        g = _f32(_f32(mean * log_mean) - _log_gamma(_f32(mean + 1.0)))
                    while True:
                        while True:
                            c_float[0] = tan(pi * buf[pos])
                            lorentz = c_float[0]
                            pos += 1
                            c_float[0] = sq * lorentz
                            c_float[0] = c_float[0] + mean
                            trial = c_float[0]
                            if not trial < 0.0:
                                break
                        trial -= trial % 1.0  # floor of a non-negative float (NaN stays NaN)
                        log_gamma = log_gamma_memo.get(trial)
                        if log_gamma is None:
                            log_gamma = log_gamma_memo[trial] = _log_gamma(_f32(trial + 1.0))
                        c_float[0] = trial * log_mean
                        c_float[0] = c_float[0] - log_gamma
                        c_float[0] = c_float[0] - g
                        exponent = c_float[0]
                        c_float[0] = lorentz * lorentz
                        c_float[0] = 0.9 * (1.0 + c_float[0]) * exp(exponent)
                        accept = not buf[pos] > c_float[0]
                        pos += 1
                        if accept:
                            break
                    append(trial)
                break
            except IndexError:  # ran past the reserve: fetch more and redo this deviate
                stream._next = start
                stream._reserve(len(buf) - start + reserve)
                buf, pos = stream._buffer, stream._next
    stream._next = pos
    stream.poisson_mean, stream.poisson_g = cached_mean, g
    stream.poisson_sq, stream.poisson_log_mean = sq, log_mean
    return deviates


def mosaic_rotation_umat(mosaicity_rad: float, stream: Ran1Stream) -> np.ndarray:
    """Random rotation (3x3, float64) of one mosaic domain (C ``mosaic_rotation_umat``).

    The axis is uniform on the sphere; the angle is ``mosaicity * (1 - r^2)^(1/3)``
    for uniform r in [-1, 1], computed in float32 as the C does (float argument,
    ``powf``).  nanoBragg also calls this with 90.0 (taken as radians) to draw a
    random crystal orientation.
    """
    r1 = 2.0 * stream.uniform() - 1.0
    r2 = 2.0 * stream.uniform() - 1.0
    r3 = 2.0 * stream.uniform() - 1.0
    radius = math.sqrt(1.0 - r2 * r2)
    cap_fraction = _powf(_f32(1.0 - r3 * r3), _f32(1.0 / 3.0))
    angle = _f32(_f32(mosaicity_rad) * cap_fraction)
    axis = (radius * math.sin(math.pi * r1), radius * math.cos(math.pi * r1), r2)
    # Rodrigues' formula, with the C's grouping of products for identical rounding
    c, s = math.cos(angle), math.sin(angle)
    k = 1.0 - c
    x, y, z = axis
    return np.array([
        [c + k * (x * x), k * x * y - s * z, k * x * z + s * y],
        [k * x * y + s * z, c + k * (y * y), k * y * z - s * x],
        [k * x * z - s * y, k * y * z + s * x, c + k * (z * z)],
    ])


def _normalized(v, length=None):
    """v / |v| (unchanged when |v| is 0)."""
    if length is None:
        length = math.sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2])
    return [c / length for c in v] if length > 0 else list(v)


def _cross(u, v):
    return [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]]


def umat_to_misset(umat) -> tuple[float, float, float]:
    """Missetting angles (rotx, roty, rotz) in radians of a rotation matrix (C ``umat2misset``).

    Rows are normalised first; zero rows are rebuilt from the other two by cross
    products (twice, as the C does) so a degenerate matrix still yields angles.
    """
    rows = [list(map(float, row)) for row in np.asarray(umat, dtype=np.float64).reshape(3, 3)]
    lengths = [math.sqrt(r[0] * r[0] + r[1] * r[1] + r[2] * r[2]) for r in rows]
    rows = [_normalized(r, n) for r, n in zip(rows, lengths)]
    missing = [n <= 0 for n in lengths]
    for kept in range(3):  # only one row non-zero: the other two become unit axes
        if all(missing[i] for i in range(3) if i != kept):
            for i in range(3):
                if i != kept:
                    rows[i] = [1.0 if j == i else 0.0 for j in range(3)]
    for _ in range(2):
        x, y, z = rows
        rebuilt = (_normalized(_cross(y, z)), _normalized(_cross(z, x)), _normalized(_cross(x, y)))
        rows = [rebuilt[i] if missing[i] else rows[i] for i in range(3)]
    (xx, xy, _), (yx, yy, _), (zx, zy, zz) = (_normalized(r) for r in rows)
    if zx * zx < 1.0:
        return math.atan2(zy, zz), math.atan2(-zx, math.sqrt(zy * zy + zz * zz)), math.atan2(yx, xx)
    return math.pi, math.pi / 2, math.atan2(xy, -yy)
