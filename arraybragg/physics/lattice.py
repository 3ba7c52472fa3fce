"""Lattice transforms: nanoBragg's crystal shapes (SQUARE, ROUND, GAUSS, TOPHAT) and their parts.

Array-API code: every function works in its arguments' namespace and on their device;
shapes broadcast, the last axis of a vector holding x, y, z.
"""
from __future__ import annotations

import functools
import math

from ..backend import array_namespace, device

ROUND_SCALE = 0.723601254558268       # sphere vs cube volume correction of the ROUND shape

def _precision(xp, dtype) -> int:
    """The key of the per-precision tables below: 8 (float64) or 4 (float32) bytes."""
    return 8 if dtype == xp.float64 else 4


# sin(pi t) = sum_k c_k t^(2k+1) for |t| <= 1/2: a polynomial in t^2 fitted to sin(pi t)/t at Chebyshev
# nodes of t^2 in [0, 1/4] (numpy.polynomial.chebyshev), one per precision.  float64: degree 6, 400 nodes,
# relative error below 8e-14 (the 8-term Taylor series it replaced: 6e-12); F_latt^2 multiplies 12 such
# factors, so float64 renders stay within ~1e-12 of libm-based ones and their float32 images round
# identically.  float32: degree 4, 800 nodes (values from mpmath, weighted by 1 / value), relative error
# 5e-9 in exact arithmetic and 2e-7 evaluated in float32, as NumPy's float32 sin of pi t (1.5e-7).
_SIN_PI_COEFFS = {8: (3.141592653589637, -5.167712779988054, 2.550164035911798, -0.5992644340312923,
                      0.08214479546577864, -0.0073640084682819, 0.000447496271406843),
                  4: (3.1415926368290124, -5.167709677079299, 2.5500695805316553, -0.5982412284587239,
                      0.07755864010027477)}


def sin_pi(t, polynomial: bool):
    """sin(pi t) for |t| <= 1/2.

    ``polynomial`` evaluates an odd polynomial as accurate as the dtype of ``t``
    (float64: relative error < 1e-13, several times faster than a float64 libm
    sin on the CPU; float32: 2e-7, 25% less time than NumPy's SIMD float32 sin);
    otherwise the namespace's own sin is used (one pass: best where each array
    operation is a kernel launch).
    """
    xp = array_namespace(t)
    if not polynomial:
        return xp.sin(t * math.pi)
    coefficients = _SIN_PI_COEFFS[_precision(xp, t.dtype)]
    t2 = t * t
    acc = t2 * coefficients[-1]
    for coeff in coefficients[-2:0:-1]:
        acc += coeff
        acc *= t2
    acc += coefficients[0]
    acc *= t
    return acc


# cos(pi t) = 1 + u q(u) with u = t^2 for |t| <= 1/2: q fitted to (cos(pi sqrt(u)) - 1) / u at 600 Chebyshev
# nodes of u in [0, 1/4] (numpy.polynomial.chebyshev, values from mpmath), one per precision.  float64:
# degree 6, absolute error below 8e-15 (degree 7: 5e-16, two more passes); float32: degree 4, 9e-10 in
# exact arithmetic and 1.6e-7 evaluated in float32.  Exactly 1 at t = 0.
_COS_PI_COEFFS = {8: (-4.934802200544647, 4.058712126404524, -1.335262768070936, 0.23533061154214766,
                      -0.025806676098951778, 0.0019283082988225458, -0.00010093562946806709),
                  4: (-4.9348021969990485, 4.058711416225839, -1.335239991528047, 0.23507456552722558,
                      -0.02462750587789968)}


def cos_pi(t):
    """cos(pi t) for |t| <= 1/2 by a polynomial as accurate as the dtype of ``t`` (1 at t = 0)."""
    xp = array_namespace(t)
    coefficients = _COS_PI_COEFFS[_precision(xp, t.dtype)]
    u = t * t
    acc = u * coefficients[-1]
    for coeff in coefficients[-2::-1]:
        acc += coeff
        acc *= u
    acc += 1.0
    return acc


@functools.lru_cache(maxsize=None)
def chebyshev_grating_terms(N: int) -> tuple[tuple[int, ...], bool]:
    """sin(N x) / sin(x) = U_{N-1}(cos x) for a whole N >= 2 as integer coefficients of ascending powers
    of c^2 = cos^2 x, to be multiplied by c when the second value is True (N even: U_{N-1} is odd)."""
    previous, current = [1], [0, 2]  # U_0, U_1 in ascending powers of c
    for _ in range(N - 2):  # U_{n+1} = 2 c U_n - U_{n-1}
        following = [0] + [2 * a for a in current]
        for power, a in enumerate(previous):
            following[power] -= a
        previous, current = current, following
    odd = N % 2 == 0
    return tuple(current[1::2] if odd else current[0::2]), odd


# Whole N up to this use the Chebyshev form: its coefficients grow like 2^(N-2), and at N = 12 F_latt^2
# is still within 6e-11 (relative; 1e-13 of its peak) of the exact ratio in float64 (tests).  In float32
# cos(pi d) carries an absolute error of ~1e-7, which the form amplifies near the grating's zeros about
# N^2-fold: up to N = 5 it stays within 1e-5 of the ratio where F_latt^2 is above 1e-3 of its peak
# (the sines: 5e-6), and takes 30% less time than the sines.
_CHEBYSHEV_N_MAX = {8: 12, 4: 5}


def _chebyshev_square(delta, axes, dtype):
    """SQUARE F_latt^2 = prod U_{N-1}(cos(pi d))^2 over ``axes`` (axis, whole N) in ``dtype``: one
    cosine polynomial and a few products per axis, no division (exact lattice points give N^2)."""
    xp = array_namespace(delta)
    product = None
    for axis, N in axes:
        c = cos_pi(xp.astype(delta[axis, ...], dtype, copy=False))
        c2 = c * c
        terms, odd = chebyshev_grating_terms(int(N))
        value = c2 * float(terms[-1]) if len(terms) > 1 else xp.full_like(c, float(terms[0]))
        for coeff in terms[-2:0:-1]:
            value += float(coeff)
            value *= c2
        if len(terms) > 1:
            value += float(terms[0])
        if odd:
            value *= c
        if product is None:
            product = value
        else:
            product *= value
    product *= product
    return product


def round_half_even(x):
    """Nearest integer (ties to even) by the float rounding of adding 1.5 * 2^(mantissa bits).

    Exact for |x| < 2^22 (float32) or 2^51 (float64) in IEEE arithmetic, and
    two additions instead of a slower library round.
    """
    xp = array_namespace(x)
    magic = 6755399441055744.0 if x.dtype == xp.float64 else 12582912.0
    return (x + magic) - magic


def nearest_index(h):
    """nanoBragg's nearest integer, ceil(h - 1/2) (halves round down); float array."""
    xp = array_namespace(h)
    return xp.ceil(h - 0.5)


def _grating_sines(d, N: float, polynomial: bool):
    """(sin(pi e), sin(pi d)) with e = N d - round(N d): numerator and denominator of the grating."""
    e = d * N
    e -= round_half_even(e)
    return sin_pi(e, polynomial), sin_pi(d, polynomial)


def _products(pairs):
    """(prod of firsts, prod of seconds) of (numerator, denominator) array pairs, in place on the first pair."""
    numerator = denominator = None
    for top, bottom in pairs:
        if numerator is None:
            numerator, denominator = top, bottom
        else:
            numerator *= top
            denominator *= bottom
    return numerator, denominator


def grating_amplitude(d, N: float, polynomial: bool):
    """sincg(pi h, N) = sin(N pi h) / sin(pi h), up to sign, from d = h - nearest integer.

    The reduction makes the ratio exact in any precision: sin(pi h) = +-sin(pi d)
    and sin(N pi h) = +-sin(pi e) with e = N d - round(N d).  The sign is
    dropped because intensities use F_latt^2.  At an exact lattice point
    (d == 0) the result is NaN; ``lattice_factor_sq`` uses the limit N there.
    """
    numerator, denominator = _grating_sines(d, N, polynomial)
    numerator /= denominator
    return numerator


def sincg(x, N: float):
    """nanoBragg's grating function sin(N x)/sin(x) (N at x = 0), signed, unreduced."""
    xp = array_namespace(x)
    safe = xp.where(x == 0, xp.ones_like(x), x)
    return xp.where(x == 0, xp.full_like(x, N), xp.sin(safe * N) / xp.sin(safe))


def sinc3(x):
    """3 (sin x / x - cos x) / x^2 (1 at x = 0): transform of a sphere."""
    xp = array_namespace(x)
    safe = xp.where(x == 0, xp.ones_like(x), x)
    return xp.where(x == 0, xp.ones_like(x), 3.0 * (xp.sin(safe) / safe - xp.cos(safe)) / (safe * safe))


def _lattice_point_offset(xp, dtype) -> float:
    """2^k with three factors sin(pi 2^k) still a normal number in ``dtype`` (2^-340 in float64, 2^-42 in
    float32): added to d = h - nearest, it changes no d above 2^-17 (float32) / 2^-288 (float64) and moves
    smaller ones by an amount F_latt^2 cannot show (relative 1e-13 and 1e-98), while d == 0 gives the
    ratio's limit N to an ulp."""
    return 2.0 ** math.ceil(math.log2(float(xp.finfo(dtype).smallest_normal)) / 3.0)


def lattice_factor_sq(hkl_frac, hkl_nearest, crystal_params, lattice_dtype, polynomial: bool):
    """F_latt^2 for fractional indices ``hkl_frac`` (3, ...) float64 and their nearest integers.

    Miller-index arrays carry h, k, l on the FIRST axis so that each is a
    contiguous block.  ``crystal_params``: dict with N (Na, Nb, Nc), shape,
    fudge and, for GAUSS/TOPHAT, ``reciprocal`` (3, 3) rows a*, b*, c* in
    1/Angstrom.  The result has ``lattice_dtype``; the reduction to the
    distance from the nearest integer is done in float64 first.  ``polynomial``:
    sines by ``sin_pi``'s polynomial, and the Chebyshev form for whole N up to
    12 in float64, up to 5 in float32 (_CHEBYSHEV_N_MAX).
    """
    xp = array_namespace(hkl_frac)
    Na, Nb, Nc = crystal_params["N"]
    shape = crystal_params["shape"]
    delta = hkl_frac - hkl_nearest
    if shape == "SQUARE":
        # one division for the three axes: prod sin(pi e) / prod sin(pi d)
        axes = [(axis, N) for axis, N in enumerate((Na, Nb, Nc)) if N > 1]
        if not axes:
            return xp.ones(hkl_frac.shape[1:], dtype=lattice_dtype, device=device(hkl_frac))
        largest = _CHEBYSHEV_N_MAX[_precision(xp, lattice_dtype)]
        if polynomial and all(float(N).is_integer() and N <= largest for _, N in axes):
            return _chebyshev_square(delta, axes, lattice_dtype)
        # exact lattice points (d == 0) take the ratio's limit N through d + tiny: a power of two below
        # half an ulp of any d that matters, so no branch (and no host sync) is needed for them
        tiny = _lattice_point_offset(xp, lattice_dtype)
        numerator, denominator = _products(
            _grating_sines(xp.astype(delta[axis, ...], lattice_dtype, copy=False) + tiny, N, polynomial)
            for axis, N in axes)
        numerator /= denominator
        numerator *= numerator
        return numerator
    amp = shape_amplitude(delta, crystal_params)
    return xp.astype(amp * amp, lattice_dtype)


def shape_amplitude(delta, crystal_params):
    """F_latt, signed, of the ROUND, GAUSS and TOPHAT shapes at ``delta`` = hkl - nearest integer (3, ...).

    ``crystal_params`` as for ``lattice_factor_sq``; float64 in, float64 out.
    """
    xp = array_namespace(delta)
    Na, Nb, Nc = crystal_params["N"]
    volume = Na * Nb * Nc
    if crystal_params["shape"] == "ROUND":
        hrad_sq = (delta[0, ...] ** 2 * Na * Na + delta[1, ...] ** 2 * Nb * Nb + delta[2, ...] ** 2 * Nc * Nc)
        return volume * ROUND_SCALE * sinc3(math.pi * xp.sqrt(hrad_sq * crystal_params["fudge"]))
    recip = crystal_params["reciprocal"]
    dstar = [delta[0, ...] * recip[0, i] + delta[1, ...] * recip[1, i] + delta[2, ...] * recip[2, i]
             for i in range(3)]
    rad_star_sq = (dstar[0] ** 2 + dstar[1] ** 2 + dstar[2] ** 2) * (Na * Na * Nb * Nb * Nc * Nc)
    if crystal_params["shape"] == "GAUSS":
        return volume * xp.exp(-(rad_star_sq / 0.63 * crystal_params["fudge"]))
    return xp.where(rad_star_sq * crystal_params["fudge"] < 0.3969,  # TOPHAT
                    xp.full_like(rad_star_sq, volume), xp.zeros_like(rad_star_sq))


def grating_sq_from_phases(phases, Ns):
    """SQUARE-shape F_latt^2 = prod_i sin^2(N_i y_i) / sin^2(y_i) from phases y_i = pi h_i (radians).

    ``phases``: equally shaped arrays, one per axis with N_i > 1 (integers), each
    known only modulo pi, which the squares do not see.  Numerator and
    denominator come from the same y_i, so that near a lattice point, where a
    small y_i carries only an absolute error, their ratio stays exact.  Where
    some sin(y_i) == 0 (an exact lattice point) the result is NaN, for the
    caller to evaluate otherwise (``lattice_factor_sq`` takes the limit).
    """
    xp = array_namespace(phases[0])
    numerator, denominator = _products((xp.sin(y * N), xp.sin(y)) for y, N in zip(phases, Ns))
    numerator /= denominator
    numerator *= numerator
    return numerator
