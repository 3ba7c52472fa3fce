"""noisify's random numbers: two seeds drawing through one shared ``ran1`` shuffle table.

noisify draws its shot-to-shot noise (flicker, Poisson, readout) from ``-seed``
and its static calibration error from ``-calib_seed``, but ``ran1`` keeps ONE
shuffle table (and ``gaussdev`` one spare deviate, ``poidev`` one cache) in
``static`` variables for all seeds.  A seed that is zero or negative reloads
the table when it is first used (the other stream's later draws then read
that table too); a positive seed reloads it only on the very first draw of
the program (and is then taken as 1).  The pixel loop interleaves the two
seeds, so every draw depends on both: :class:`SharedRan1` replays that
exactly, one draw at a time, for the noise loop of the whole image.  Once the
calibration stream is done, the rest (readout noise) continues on one seed and
is handed to the vectorised :class:`arraybragg.rng.Ran1Stream`.
"""
from __future__ import annotations

import array

import numpy as np

from .. import rng
from . import _compiled  # (numba, when installed, is imported only for the compiled loop)

__all__ = ["SharedRan1", "SHOT", "CALIBRATION", "noise_counts", "gauss_array", "calibrated"]

SHOT, CALIBRATION = 0, 1  # the two seeds: -seed and -calib_seed

_MULTIPLIER, _MODULUS, _QUOTIENT, _REMAINDER = 16807, 2147483647, 127773, 2836
_TABLE_SIZE, _WARMUP = 32, 8
_UNIFORM_SCALE = 1.0 / _MODULUS
_UNIFORM_MAX = float(np.float32(1.0 - 1.2e-7))


def _lcg(state: int) -> int:
    """One Park-Miller step by Schrage's method, exactly as the C writes it (state > 0)."""
    k = state // _QUOTIENT
    state = _MULTIPLIER * (state - k * _QUOTIENT) - _REMAINDER * k
    return state + _MODULUS if state < 0 else state


class _Draws:
    """Indexable on-demand uniforms of one seed, for :func:`arraybragg.rng._poisson_run`.

    ``rng._poisson_run`` reads ``uniforms[pos]`` once per index in increasing order,
    so each read simply draws the next uniform.
    """

    def __init__(self, source: "SharedRan1", which: int):
        self._draw, self._which = source.uniform, which

    def __getitem__(self, index: int) -> float:
        return self._draw(self._which)


class SharedRan1:
    """ran1 / gaussdev / poidev of noisify with the state of both seeds (C ``long`` as stored).

    The attribute names of poidev's and gaussdev's cached state are those of
    :class:`arraybragg.rng.Ran1Stream`, so rng's exact Poisson code runs on it.
    """

    def __init__(self, shot_seed: int, calibration_seed: int):
        self.states = [int(shot_seed), int(calibration_seed)]
        self.last = 0  # the C's static iy (0: no table loaded yet)
        self.table = [0] * _TABLE_SIZE
        self.gauss_spare: float | None = None
        self.poisson_mean, self.poisson_g = -1.0, 0.0
        self.poisson_sq, self.poisson_log_mean = 0.0, 0.0
        self._f32 = array.array("f", [0.0])

    def _reload(self, state: int) -> int:
        state = 1 if -state < 1 else -state
        for step in range(_TABLE_SIZE + _WARMUP - 1, -1, -1):
            state = _lcg(state)
            if step < _TABLE_SIZE:
                self.table[step] = state
        self.last = self.table[0]
        return state

    def uniform(self, which: int) -> float:
        """Next ran1 uniform (a float32 value) of seed ``which``."""
        state = self.states[which]
        if state <= 0 or not self.last:
            state = self._reload(state)
        state = _lcg(state)
        self.states[which] = state
        slot = self.last >> 26
        self.last = self.table[slot]
        self.table[slot] = state
        self._f32[0] = _UNIFORM_SCALE * self.last
        value = self._f32[0]
        return _UNIFORM_MAX if value > _UNIFORM_MAX else value

    def gauss(self, which: int) -> float:
        """gaussdev on seed ``which`` (the spare deviate is shared by both seeds)."""
        if self.gauss_spare is not None:
            value, self.gauss_spare = self.gauss_spare, None
            return value
        value, self.gauss_spare = rng._polar_gauss(lambda: self.uniform(which))
        return value

    def poisson(self, mean: float) -> float:
        """poidev of ``mean`` (already a float32 value) on the shot seed."""
        if mean < 12.0:  # direct method, inlined: the common case
            if mean != self.poisson_mean:
                self.poisson_mean, self.poisson_g = mean, rng._direct_threshold(mean)
            g, f32, draw = self.poisson_g, self._f32, self.uniform
            product, count = draw(SHOT), 0.0
            while product > g:
                f32[0] = product * draw(SHOT)
                product = f32[0]
                count += 1.0
            return count
        values, _ = rng._poisson_run([mean], [rng._direct_threshold(mean)], _Draws(self, SHOT), self)
        return values[0]

    def shot_stream(self) -> rng.Ran1Stream:
        """The shot seed from here on as a vectorised stream (no more calibration draws)."""
        stream = rng.Ran1Stream(self.states[SHOT])
        stream.resume(self.states[SHOT], self.table, self.last)
        stream.gauss_spare = self.gauss_spare
        stream.poisson_mean, stream.poisson_g = self.poisson_mean, self.poisson_g
        stream.poisson_sq, stream.poisson_log_mean = self.poisson_sq, self.poisson_log_mean
        return stream


def noise_counts(photons: np.ndarray, flicker: float, calibration: float, seed: int, calib_seed: int,
                 counts: np.ndarray | None = None, progress=None) -> tuple[np.ndarray, rng.Ran1Stream, float]:
    """noisify's noise loop: photon counts of every pixel, raster order.

    Each pixel's mean (float32 ``photons``) is multiplied in double by
    ``1 + flicker * gauss(seed)`` and ``1 + calibration * gauss(calib_seed)`` (each
    only when its fraction is positive), rounded to float32 and replaced by a
    Poisson deviate on ``seed``.  Returns (counts as float32, the shot stream
    to continue with, the double running sum of the counts).  ``counts``: a
    C-contiguous float32 array of photons' shape to fill (default: a new one);
    ``progress(rows)``: called when the first ``rows`` rows are final (row by row
    blocks with the compiled C loop, else once at the end).
    """
    counts = np.empty(np.shape(photons), dtype=np.float32) if counts is None else counts
    counts, stream, total = _counts(photons, flicker, calibration, seed, calib_seed, counts, progress)
    if progress is not None:
        progress(counts.shape[0] if counts.ndim else 1)
    return counts, stream, total


def _counts(photons, flicker, calibration, seed, calib_seed, counts, progress):
    flat = np.ascontiguousarray(photons, dtype=np.float32).ravel()
    if flicker <= 0.0 and calibration <= 0.0:  # one seed only: the vectorised code
        stream = rng.Ran1Stream(seed)
        counts[...] = rng.poisson_array(flat, stream).reshape(counts.shape)
        return counts, stream, _compiled.running_sum(counts)
    if _compiled.available():
        counts, ints, floats, total = _compiled.noise_loop(photons, flicker, calibration, seed, calib_seed,
                                                           counts=counts, progress=progress)
        return counts, _continue_shot(ints, floats), total
    source = SharedRan1(seed, calib_seed)
    out = array.array("f", bytes(4 * flat.size))
    gauss, poisson = source.gauss, source.poisson
    to_float = rng._f32
    total = 0.0
    for i, mean in enumerate(flat.tolist()):
        if flicker > 0.0:
            mean *= 1.0 + flicker * gauss(SHOT)
        if calibration > 0.0:
            mean *= 1.0 + calibration * gauss(CALIBRATION)
        out[i] = poisson(to_float(mean))
        total += out[i]
    counts[...] = np.frombuffer(out, dtype=np.float32).reshape(counts.shape)
    return counts, source.shot_stream(), total


def calibrated(photons: np.ndarray, calibration: float, calib_seed: int) -> np.ndarray:
    """A fixed calibration error: photons x (1 + calibration x gauss), computed in double and rounded to
    float32, the deviates drawn in raster order from ``calib_seed``'s own ran1 stream (a positive seed
    acts as 1, as ran1 takes it).  The same seed gives the same per-pixel factors on every image."""
    flat = np.asarray(photons, dtype=np.float32)
    deviates = gauss_array(rng.Ran1Stream(calib_seed), flat.size).reshape(flat.shape)
    return (flat.astype(np.float64) * (1.0 + calibration * deviates.astype(np.float64))).astype(np.float32)


def _continue_shot(ints: np.ndarray, floats: np.ndarray) -> rng.Ran1Stream:
    """The shot seed after the compiled loop, as a vectorised stream."""
    stream = rng.Ran1Stream(int(ints[0]))
    stream.resume(int(ints[0]), ints[3:35].tolist(), int(ints[2]))
    stream.gauss_spare = float(floats[1]) if floats[0] else None
    stream.poisson_mean, stream.poisson_g = float(floats[2]), float(floats[3])
    stream.poisson_sq, stream.poisson_log_mean = float(floats[4]), float(floats[5])
    return stream


def gauss_array(stream: rng.Ran1Stream, count: int) -> np.ndarray:
    """``count`` successive gaussdev deviates (float32) of one stream, vectorised.

    Every trial of the polar method takes two uniforms, so the uniforms pair up
    in order; accepted pairs give v2*fac then v1*fac.  A spare deviate left on
    the stream comes first, and one left over stays on it.
    """
    out = np.empty(count, dtype=np.float32)
    done = 0
    if count and stream.gauss_spare is not None:
        out[0], stream.gauss_spare, done = stream.gauss_spare, None, 1
    while done < count:
        pairs = (count - done + 1) // 2
        uniforms = stream._upcoming(2 * pairs + 8)[:2 * ((2 * pairs + 8) // 2)]
        v = (2.0 * uniforms.astype(np.float64) - 1.0).astype(np.float32).reshape(-1, 2)
        rsq = v[:, 0] * v[:, 0] + v[:, 1] * v[:, 1]
        accepted = np.flatnonzero((rsq < 1.0) & (rsq != 0.0))
        if accepted.size > pairs:
            accepted = accepted[:pairs]
        with np.errstate(divide="ignore", invalid="ignore"):
            r = rsq[accepted].astype(np.float64)
            fac = np.sqrt(-2.0 * np.log(r) / r).astype(np.float32)
        deviates = np.stack([v[accepted, 1] * fac, v[accepted, 0] * fac], axis=1).ravel()
        take = min(deviates.size, count - done)
        out[done:done + take] = deviates[:take]
        if take < deviates.size:
            stream.gauss_spare = float(deviates[take])
        done += take
        used_pairs = int(accepted[-1]) + 1 if accepted.size == pairs else v.shape[0]
        stream._skip(2 * used_pairs)
    return out
