"""nanoBragg's random numbers, reproduced bit for bit.

nanoBragg draws every random number from the Numerical Recipes generator
``ran1`` (Park-Miller "minimal standard" LCG behind a 32-slot Bays-Durham
shuffle table) and turns uniforms into Gaussian, Poisson and rotation deviates
in single precision.  This module repeats that arithmetic exactly:

* integers are Python ints or int64 arrays (the C uses 64-bit ``long``);
* a C ``float`` variable rounds every assignment to float32.  float op float is
  done in float32 (emulated by computing in double and rounding once, which is
  exact for + - * / sqrt because double has more than twice float's precision);
  an expression with a double constant (``2.0*x``) or a libm call (``exp``,
  ``log``, ``tan``, ``sqrt`` of a float go through the double versions) is
  evaluated in double and rounded to float32 when stored.

Uniforms are made in bulk: the LCG states by vectorised jump-ahead, the
shuffle by a byte-level walk over the 32 table slots (its only sequential
part) followed by vectorised bookkeeping.  Poisson deviates of an image skip
in vectorised steps over the pixels whose first uniform already decides a
deviate of 0, and run the exact per-deviate code only on the others.

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
import itertools
import math
import os
import struct

import numpy as np

__all__ = [
    "Ran1Stream",
    "gauss",
    "poisson",
    "poisson_deviates",
    "poisson_array",
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
_UNIFORM_MAX = np.float32(1.0 - 1.2e-7)  # largest uniform returned (float32 of 1 - EPS)

# Uniforms are produced in blocks; the block grows so that a few draws stay cheap.
_FIRST_BLOCK = 32
_LARGEST_BLOCK = 1 << 16
# the shuffle is replayed in spans of this many steps (its arrays then stay in cache)
_SPAN = 1 << 16

# Poisson deviates of many means (see poisson_array):
_RESERVE = 64  # uniforms handed to an exact run beyond its estimate; a run needing more retries
_FIRST_WINDOW = 256  # candidate pixels tested per vectorised step, doubling up to the largest
_LARGEST_WINDOW = 1 << 16
# An exception fewer than this many pixels after the last exact run marks a dense
# region (a vectorised step costs about as much as this many exact deviates)...
_DENSE_GAP = 64
_LARGEST_BURST = 1024  # ...where the exact code runs on bursts of up to this many pixels
_VECTOR_MIN = 32  # runs this long get their exp(-mean) from NumPy


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


_POWERS = _lcg_powers(_SPAN)


def _slot_walk(new_targets: bytes, targets: list[int], slot: int) -> bytearray:
    """Table slots read by successive ran1 steps: the sequential core of the shuffle.

    ``targets[j]`` is the slot that the value held in slot j leads to when it
    is read (value >> _SLOT_SHIFT).  A step reads slot ``slot``, moves on to its
    target and stores the new LCG state in the slot just read, whose target is
    the step's entry of ``new_targets``.  ``targets`` is updated in place.
    Bytes and small ints keep this loop as cheap as Python allows.
    """
    walk = bytearray()
    record = walk.append
    for target in new_targets:
        record(slot)
        targets[slot], slot = target, targets[slot]
    return walk


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
        self._pending = np.empty(0, dtype=np.float32)  # uniforms made ahead...
        self._pos = 0  # ...of which this many are used
        self._block = _FIRST_BLOCK
        self.gauss_spare: float | None = None  # gaussdev's second Box-Muller deviate
        # poidev's cached constants for the last mean (the C's static oldm, g, sq, alxm)
        self.poisson_mean = -1.0
        self.poisson_g = 0.0
        self.poisson_sq = 0.0
        self.poisson_log_mean = 0.0

    def resume(self, state: int, table, last: int) -> None:
        """Continue from a given C state: ``*idum``, shuffle table ``iv`` and ``iy``.

        For programs whose seeds share one table (noisify); drops any uniforms made ahead.
        """
        self._state, self._table, self._last = int(state), [int(v) for v in table], int(last)
        self._pending, self._pos = np.empty(0, dtype=np.float32), 0

    def uniform(self) -> float:
        """Next uniform deviate in (0, 1): a float32 value, exactly as C ``ran1``."""
        if self._pos >= self._pending.size:
            self._reserve(1)
        value = self._pending[self._pos]
        self._pos += 1
        return float(value)

    def uniforms(self, count: int) -> np.ndarray:
        """The next ``count`` uniforms as a float32 array."""
        values = self._upcoming(count)[:count].copy()
        self._pos += count
        return values

    def _upcoming(self, count: int) -> np.ndarray:
        """View of the unused uniforms, at least ``count`` of them; nothing is used up."""
        self._reserve(count)
        return self._pending[self._pos:]

    def _skip(self, count: int) -> None:
        """Mark the next ``count`` uniforms (already made) as used."""
        self._pos += count

    def _reserve(self, count: int) -> None:
        """Make at least ``count`` unused uniforms available."""
        available = self._pending.size - self._pos
        if available >= count:
            return
        fresh = self._generate(max(self._block, count - available))
        self._block = min(2 * self._block, _LARGEST_BLOCK)
        self._pending = np.concatenate([self._pending[self._pos:], fresh])
        self._pos = 0

    def _generate(self, count: int) -> np.ndarray:
        """Run ran1 ``count`` times; returns the uniforms (float32)."""
        uniforms = np.empty(count, dtype=np.float32)
        done = 0
        while done < count:
            if self._state <= 0 or self._last == 0:
                self._load_table()
            if self._state == 0:
                # seed was a multiple of the modulus: the generator is stuck at 0 and
                # returns 0 once; the next call reloads the table as seed -1
                uniforms[done] = 0.0
                done += 1
                continue
            size = min(count - done, _SPAN)
            uniforms[done:done + size] = self._shuffle(size) * _UNIFORM_SCALE  # rounded to float32
            done += size
        return np.minimum(uniforms, _UNIFORM_MAX, out=uniforms)

    def _load_table(self) -> None:
        """(Re)seed: state = -seed (1 when that is below 1), warm up, fill the shuffle table."""
        state = 1 if -self._state < 1 else -self._state
        for step in range(_TABLE_SIZE + _WARMUP_STEPS - 1, -1, -1):
            state = state * _MULTIPLIER % _MODULUS
            if step < _TABLE_SIZE:
                self._table[step] = state
        self._state = state
        self._last = self._table[0]

    def _shuffle(self, count: int) -> np.ndarray:
        """The next ``count`` (at most _SPAN) values of ran1's iy (int64), table loaded.

        Step n stores LCG state n in the slot it reads and returns what that slot
        held: the state stored by the previous step that read the same slot, or
        the table's value if none did.  Only the slot walk is sequential.
        """
        states = self._state * _POWERS[:count]  # jumps of 1..count steps, reduced below
        states -= states // _MODULUS * _MODULUS  # (faster than NumPy's %)
        table = np.array(self._table, dtype=np.int64)
        walk = _slot_walk((states >> _SLOT_SHIFT).astype(np.uint8).tobytes(),
                          (table >> _SLOT_SHIFT).tolist(), self._last >> _SLOT_SHIFT)
        walk = np.frombuffer(walk, dtype=np.uint8)
        by_slot = np.argsort(walk, kind="stable")  # steps grouped by slot, in time order
        visits = np.bincount(walk, minlength=_TABLE_SIZE)
        group_ends = np.cumsum(visits)
        visited = np.flatnonzero(visits)
        values = np.empty(count, dtype=np.int64)
        values[by_slot[1:]] = states[by_slot[:-1]]  # within a group: the previous visit's state
        values[by_slot[(group_ends - visits)[visited]]] = table[visited]  # first visits
        table[visited] = states[by_slot[group_ends[visited] - 1]]  # last visits stay
        self._state = int(states[-1])
        self._last = int(values[-1])
        self._table = table.tolist()
        return values


def _polar_gauss(draw) -> tuple[float, float]:
    """Two standard normal deviates (float32 values) by C ``gaussdev``'s polar Box-Muller.

    ``draw()`` gives the next uniform.  Returns (deviate, spare): the C returns
    the first and keeps the second for its next call.
    """
    while True:
        v1 = _f32(2.0 * draw() - 1.0)
        v2 = _f32(2.0 * draw() - 1.0)
        rsq = _f32(_f32(v1 * v1) + _f32(v2 * v2))
        if 0.0 < rsq < 1.0:
            break
    factor = _f32(math.sqrt(-2.0 * math.log(rsq) / rsq))
    return _f32(v2 * factor), _f32(v1 * factor)


def gauss(stream: Ran1Stream) -> np.float32:
    """Standard normal deviate (C ``gaussdev``: polar Box-Muller, spare kept on the stream)."""
    if stream.gauss_spare is not None:
        spare, stream.gauss_spare = stream.gauss_spare, None
        return np.float32(spare)
    deviate, stream.gauss_spare = _polar_gauss(stream.uniform)
    return np.float32(deviate)


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
    return poisson_array([mean], stream)[0]


def poisson_deviates(means, stream: Ran1Stream) -> list[float]:
    """:func:`poisson_array` as a list of Python floats (float32 values)."""
    return poisson_array(means, stream).tolist()


def _direct_threshold(mean: float) -> float:
    """exp(-mean) evaluated in double by libm and stored to float32 (poidev's g below 12)."""
    return _f32(math.exp(min(-mean, 709.0)))  # exp(709) already overflows a float


def _direct_thresholds(means: np.ndarray) -> np.ndarray:
    """:func:`_direct_threshold` of every mean (float32 array).

    NumPy's exp may differ from libm's in the last bits; that changes the
    float32 result only next to a float32 rounding boundary, so those few are
    recomputed with libm.
    """
    exponents = np.minimum(-means.astype(np.float64), 709.0)
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.exp(exponents)
        below = (values * (1.0 - 2.0 ** -46)).astype(np.float32)
        above = (values * (1.0 + 2.0 ** -46)).astype(np.float32)
    unsure = np.flatnonzero(below != above)
    below[unsure] = [_direct_threshold(-x) for x in exponents[unsure].tolist()]
    return below


# means from 0 to this give exp(-mean) >= _UNIFORM_MAX: a deviate of 0 from one uniform
_SAFE_MEAN = 1e-7


def _leading_cache_hits(means: np.ndarray, cached_mean: float) -> int:
    """How many means at the start equal poidev's cached mean (so reuse its cached g)."""
    same = means == np.float32(cached_mean)
    return means.size if same.all() else int(same.argmin())


def poisson_array(means, stream: Ran1Stream) -> np.ndarray:
    """C ``poidev`` for each mean in order (rounded to float32), drawing from ``stream``.

    Returns the deviates as a float32 array.  Below a mean of 12 poidev counts
    uniforms until their running float32 product drops to g = exp(-mean); up to
    1e6 it uses Lorentzian rejection; above that mean + sqrt(mean) * gauss.

    On an image most deviates are 0 from a single uniform u <= g.  So the
    pixels are scanned in vectorised windows assuming exactly that; the first
    pixel where it fails (u > g, or a mean of 12 or more) is run through the
    exact code (:func:`_poisson_run`), which shifts the uniforms of all later
    pixels by its extra draws, and the scan resumes after it.  Pixels whose g
    is at least the largest uniform cannot fail and are not even scanned.
    Where failures crowd, the exact code takes whole bursts of pixels.
    """
    means = np.asarray(means, dtype=np.float32).ravel()
    deviates = np.zeros(means.size, dtype=np.float32)
    if means.size:
        candidates, bounds = _scan_candidates(means, stream)
        extra = _scan_and_run(means, candidates, bounds, stream, deviates)
        stream._skip(means.size + extra)
    return deviates


def _scan_candidates(means: np.ndarray, stream: Ran1Stream) -> tuple[np.ndarray, np.ndarray]:
    """The pixels that may fail the one-uniform test, and each one's bound (float32).

    The bound is the highest first uniform that gives a deviate of 0; -inf sends
    a pixel to the exact code: means of 12 or more (NaN too), and the leading
    means equal to poidev's cached mean while its cached g is not exp(-mean)
    (the C's initial cache of mean -1 and g 0, and the like).
    """
    candidates = np.flatnonzero(~(means <= _SAFE_MEAN))  # NaN included
    leading = _leading_cache_hits(means, stream.poisson_mean)
    stale_cache = leading and np.float32(stream.poisson_g) != _direct_threshold(float(means[0]))
    if stale_cache:
        candidates = np.concatenate([np.arange(leading), candidates[candidates >= leading]])
    bounds = np.where(means[candidates] < 12.0, _direct_thresholds(means[candidates]), np.float32(-np.inf))
    if stale_cache:
        bounds[:leading] = -np.inf
    maybe_failing = bounds < _UNIFORM_MAX
    return candidates[maybe_failing], bounds[maybe_failing]


def _cache_direct_mean(stream: Ran1Stream, mean: float) -> None:
    """Leave poidev's cache as a direct-method deviate of ``mean`` does (mean, exp(-mean))."""
    stream.poisson_mean = mean
    stream.poisson_g = _direct_threshold(mean)


def _scan_and_run(means: np.ndarray, candidates: np.ndarray, bounds: np.ndarray,
                  stream: Ran1Stream, deviates: np.ndarray) -> int:
    """The scan of :func:`poisson_array`: writes the deviates of the pixels run exactly.

    Tests the first uniform of each candidate against its bound in windows and
    runs the exact code from each failure on (the other pixels' deviates stay
    0), leaving poidev's state on the stream as the last pixel left it.
    Returns how many uniforms were drawn beyond one per pixel; none is marked
    as used on the stream.
    """
    count = means.size
    margin = count // 64 + _RESERVE
    uniforms = stream._upcoming(count + margin)
    shift = 0  # uniforms drawn beyond one per pixel so far: pixel i's first is i + shift
    finished = 0  # end of the last pixels run by the exact code
    scanned = 0  # candidates before this one are settled
    window, burst = _FIRST_WINDOW, 1
    uniforms_per_mean = 2.0  # expected draws per deviate in the next exact run
    while scanned < candidates.size:
        pixels = candidates[scanned:scanned + window]
        if uniforms.size <= pixels[-1] + shift:
            uniforms = stream._upcoming(int(pixels[-1]) + shift + margin)
        fails = uniforms[pixels + shift] > bounds[scanned:scanned + window]
        gap = int(fails.argmax())
        if not fails[gap]:
            scanned += pixels.size
            window = min(2 * window, _LARGEST_WINDOW)
            continue
        first = int(pixels[gap])
        burst = min(2 * burst, _LARGEST_BURST) if first - finished < _DENSE_GAP else 1
        stop = min(first + burst, count)
        if first > finished:  # the pixel before took the one-uniform way: its mean is cached
            _cache_direct_mean(stream, float(means[first - 1]))
        values, used = _exact_run(means[first:stop], stream, first + shift, uniforms_per_mean)
        deviates[first:stop] = values
        uniforms_per_mean = 1.25 * used / (stop - first)
        shift += used - (stop - first)
        finished = stop
        scanned = scanned + gap + 1 if stop == first + 1 else int(np.searchsorted(candidates, stop))
        window = min(max(_FIRST_WINDOW, 2 * gap), _LARGEST_WINDOW)
    if finished < count:  # the last pixel took the one-uniform way
        _cache_direct_mean(stream, float(means[-1]))
    return shift


def _exact_run(means: np.ndarray, stream: Ran1Stream, start: int,
               uniforms_per_mean: float) -> tuple[list[float], int]:
    """:func:`_poisson_run` on ``means`` from the stream's unused uniforms at ``start`` on.

    The list of uniforms handed over is sized by ``uniforms_per_mean`` and
    doubled until the run fits.  Returns (deviates, uniforms used).
    """
    run = means.tolist()
    if len(run) < _VECTOR_MIN:
        thresholds = [_direct_threshold(mean) for mean in run]
    else:
        thresholds = _direct_thresholds(means).tolist()
    supply = int(len(run) * uniforms_per_mean) + _RESERVE
    while True:
        uniforms = stream._upcoming(start + supply)[start:start + supply].tolist()
        try:
            return _poisson_run(run, thresholds, uniforms, stream)
        except IndexError:
            supply *= 2


def _poisson_run(means: list[float], thresholds: list[float], uniforms: list[float],
                 stream: Ran1Stream) -> tuple[list[float], int]:
    """C ``poidev`` for each mean in order, one by one, drawing from the list ``uniforms``.

    ``thresholds`` holds exp(-mean) as float32 for each mean.  Returns the
    deviates and how many uniforms they used, and leaves poidev's and gaussdev's
    static state on ``stream``; raises IndexError, with the stream untouched,
    when ``uniforms`` run out.  The direct method, by far the most common, is
    inlined; ``c_float[0] = x`` stores x as a C float (rounding, overflow to inf)
    and ``c_float[0]`` reads it back, cheaper than a function call.
    """
    c_float, log, sqrt = array.array("f", [0.0]), math.log, math.sqrt
    log_gamma_memo: dict[float, float] = {}
    deviates: list[float] = []
    append = deviates.append
    cached_mean, g = stream.poisson_mean, stream.poisson_g
    sq, log_mean = stream.poisson_sq, stream.poisson_log_mean
    spare = stream.gauss_spare
    pos = 0
    for mean, threshold in zip(means, thresholds):
        if mean < 12.0:  # direct method
            if mean != cached_mean:  # (the C's cache: its first oldm is -1 with g = 0)
                cached_mean, g = mean, threshold
            product = uniforms[pos]  # 1.0f * u is exact
            pos += 1
            count = 0.0
            while product > g:
                c_float[0] = product * uniforms[pos]
                product = c_float[0]
                pos += 1
                count += 1.0
            append(count)
        elif mean > 1.0e6:  # normal approximation
            if spare is None:
                normal, spare, pos = _listed_gauss_pair(uniforms, pos)
            else:
                normal, spare = spare, None
            append(_f32(mean + sqrt(mean) * normal))
        else:  # rejection method (also taken by NaN)
            if mean != cached_mean:
                cached_mean = mean
                sq = _f32(sqrt(2.0 * mean))
                log_mean = _f32(log(mean))
                g = _f32(_f32(mean * log_mean) - _log_gamma(_f32(mean + 1.0)))
            pos = _rejection_deviate(mean, sq, log_mean, g, uniforms, pos, append, c_float, log_gamma_memo)
    stream.poisson_mean, stream.poisson_g = cached_mean, g
    stream.poisson_sq, stream.poisson_log_mean = sq, log_mean
    stream.gauss_spare = spare
    return deviates, pos


def _listed_gauss_pair(uniforms: list[float], pos: int) -> tuple[float, float, int]:
    """:func:`_polar_gauss` on ``uniforms`` from ``pos`` on: (deviate, spare, next pos)."""
    indices = itertools.count(pos)
    normal, spare = _polar_gauss(map(uniforms.__getitem__, indices).__next__)
    return normal, spare, next(indices)


def _rejection_deviate(mean: float, sq: float, log_mean: float, g: float, uniforms: list[float], pos: int,
                       append, c_float: array.array, log_gamma_memo: dict[float, float],
                       tan=math.tan, pi=math.pi, exp=_exp) -> int:
    """One deviate of poidev's Lorentzian rejection, drawn from ``uniforms`` at ``pos`` on.

    ``sq``, ``log_mean`` and ``g`` are poidev's cached constants for ``mean``
    (the C's sq, alxm and g), ``c_float`` and ``log_gamma_memo`` (ln Gamma of
    trial + 1) those of :func:`_poisson_run`.  Passes the deviate to ``append``
    and returns the position after the uniforms it used.  The libm functions
    are bound as defaults, the fastest names to look up.
    """
    while True:
        while True:
            c_float[0] = tan(pi * uniforms[pos])
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
        if not uniforms[pos] > c_float[0]:  # accepted
            append(trial)
            return pos + 1
        pos += 1


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
