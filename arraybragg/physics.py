"""Diffraction physics on the array API: one code for NumPy, CuPy and array_api_strict.

Every function takes arrays and works in their namespace; shapes broadcast,
with the last axis of a vector argument holding x, y, z.  Units: metres,
radians, 1/m for scattering vectors; Miller indices are dimensionless.
"""
from __future__ import annotations

import math

from .backend import array_namespace, device

R_E_SQR = 7.94079248018965e-30       # classical electron radius squared, m^2
AVOGADRO = 6.02214179e23
WATER_F = 2.57                        # forward-scattering amplitude of water
WATER_MW = 18.0                       # g/mol
ROUND_SCALE = 0.723601254558268       # sphere vs cube volume correction of the ROUND shape

# sin(pi t) = sum_k c_k t^(2k+1) for |t| <= 1/2: a degree-6 polynomial in t^2 fitted to sin(pi t)/t at
# 400 Chebyshev nodes of t^2 in [0, 1/4] (numpy.polynomial.chebyshev), relative error below 8e-14
# (the 8-term Taylor series it replaced: 6e-12).  F_latt^2 multiplies 12 such factors, so float64
# renders stay within ~1e-12 of libm-based ones and their float32 images round identically.
_SIN_PI_COEFFS = (3.141592653589637, -5.167712779988054, 2.550164035911798, -0.5992644340312923,
                  0.08214479546577864, -0.0073640084682819, 0.000447496271406843)


def dot(u, v):
    """Sum over the last (x, y, z) axis."""
    return u[..., 0] * v[..., 0] + u[..., 1] * v[..., 1] + u[..., 2] * v[..., 2]


def norm(v):
    xp = array_namespace(v)
    return xp.sqrt(dot(v, v))


def sin_pi(t, polynomial: bool):
    """sin(pi t) for |t| <= 1/2.

    ``polynomial`` evaluates an odd polynomial (relative error < 1e-11 on
    this interval, and several times faster than a float64 libm sin on the
    CPU); otherwise the namespace's own sin is used (fast in float32).
    """
    xp = array_namespace(t)
    if not polynomial:
        return xp.sin(t * math.pi)
    t2 = t * t
    acc = t2 * _SIN_PI_COEFFS[-1]
    for coeff in _SIN_PI_COEFFS[-2:0:-1]:
        acc += coeff
        acc *= t2
    acc += _SIN_PI_COEFFS[0]
    acc *= t
    return acc


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


def lattice_factor_sq(hkl_frac, hkl_nearest, crystal_params, lattice_dtype, polynomial: bool):
    """F_latt^2 for fractional indices ``hkl_frac`` (3, ...) float64 and their nearest integers.

    Miller-index arrays carry h, k, l on the FIRST axis so that each is a
    contiguous block.  ``crystal_params``: dict with N (Na, Nb, Nc), shape,
    fudge and, for GAUSS/TOPHAT, ``reciprocal`` (3, 3) rows a*, b*, c* in
    1/Angstrom.  The result has ``lattice_dtype``; the reduction to the
    distance from the nearest integer is done in float64 first.
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
        numerator, denominator = _products(
            _grating_sines(xp.astype(delta[axis, ...], lattice_dtype, copy=False), N, polynomial) for axis, N in axes)
        if xp.any(denominator == 0):  # exact lattice points: the limit of each ratio is N
            numerator = xp.ones(hkl_frac.shape[1:], dtype=lattice_dtype, device=device(hkl_frac))
            for axis, N in axes:
                d = xp.astype(delta[axis, ...], lattice_dtype, copy=False)
                numerator *= xp.where(d == 0, xp.full_like(d, N), grating_amplitude(d, N, polynomial))
        else:
            numerator /= denominator
        numerator *= numerator
        return numerator
    volume = Na * Nb * Nc
    if shape == "ROUND":
        hrad_sq = (delta[0, ...] ** 2 * Na * Na + delta[1, ...] ** 2 * Nb * Nb + delta[2, ...] ** 2 * Nc * Nc)
        amp = volume * ROUND_SCALE * sinc3(math.pi * xp.sqrt(hrad_sq * crystal_params["fudge"]))
    else:
        recip = crystal_params["reciprocal"]
        dstar = [delta[0, ...] * recip[0, i] + delta[1, ...] * recip[1, i] + delta[2, ...] * recip[2, i]
                 for i in range(3)]
        rad_star_sq = (dstar[0] ** 2 + dstar[1] ** 2 + dstar[2] ** 2) * (Na * Na * Nb * Nb * Nc * Nc)
        if shape == "GAUSS":
            amp = volume * xp.exp(-(rad_star_sq / 0.63 * crystal_params["fudge"]))
        else:  # TOPHAT
            amp = xp.where(rad_star_sq * crystal_params["fudge"] < 0.3969,
                           xp.full_like(rad_star_sq, volume), xp.zeros_like(rad_star_sq))
    return xp.astype(amp * amp, lattice_dtype)


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


def structure_factor_table(F_grid, mins, maxs, default_F: float, squared_dtype=None):
    """The lookup table the structure-factor functions take.

    ``F_grid``: (h, k, l) grid of amplitudes (any namespace, float64), index
    ``mins`` at its origin; ``maxs``: the largest valid indices (the grid may
    carry padding beyond them, as nanoBragg's does).  F^2 and the amplitudes that
    tricubic interpolation reads are stored in ``squared_dtype`` (default: that of
    F_grid), the precision they are used in.
    """
    xp = array_namespace(F_grid)
    dims = tuple(int(n) for n in F_grid.shape)
    strides = (dims[1] * dims[2], dims[2], 1)
    flat = xp.reshape(F_grid, (-1,))
    dtype = F_grid.dtype if squared_dtype is None else squared_dtype
    F_sq = xp.astype(flat * flat, dtype, copy=False)
    # flat offsets of the 4x4x4 tricubic neighbourhood from its lowest corner, (i, j) major
    cube = [(i * dims[1] + j) * dims[2] + k for i in range(4) for j in range(4) for k in range(4)]
    return dict(F=flat, F_sq=F_sq, F_interp=xp.astype(flat, dtype, copy=False), dims=dims, mins=tuple(mins),
                maxs=tuple(maxs), default_F=default_F,
                strides=xp.asarray([[float(v) for v in strides]], dtype=F_grid.dtype, device=device(F_grid)),
                origin=float(sum(st * lo for st, lo in zip(strides, mins))),
                cube=xp.asarray(cube, dtype=xp.int64, device=device(F_grid)),
                cube_start_max=float(max(flat.shape[0] - 1 - cube[-1], 0)))


def structure_factor_nearest(hkl_nearest, table, squared: bool = False, index_bound=None):
    """F_cell (or F_cell^2) at integer indices ``hkl_nearest`` (3, ...); default_F outside the table.

    ``table``: from ``structure_factor_table``, or dict(F=None, default_F=...)
    when there is no grid.
    ``index_bound``: optional known bounds (3 floats) on |h|, |k|, |l|; when they
    fit inside the table the per-element range tests are skipped.
    """
    xp = array_namespace(hkl_nearest)
    default = table["default_F"] ** 2 if squared else table["default_F"]
    if table["F"] is None:
        return xp.full(hkl_nearest.shape[1:], default, dtype=hkl_nearest.dtype, device=device(hkl_nearest))
    values_table = table["F_sq"] if squared else table["F"]
    mins, maxs, dims = table["mins"], table["maxs"], table["dims"]
    flat_hkl = xp.reshape(hkl_nearest, (3, -1))
    if index_bound is not None and all(-b >= lo and b <= hi for b, lo, hi in zip(index_bound, mins, maxs)):
        all_inside = True
    else:
        lows, highs = xp.min(flat_hkl, axis=1), xp.max(flat_hkl, axis=1)
        all_inside = flat_hkl.shape[1] == 0 or all(
            float(lows[i]) >= mins[i] and float(highs[i]) <= maxs[i] for i in range(3))
    if all_inside:  # the usual case: one exact integer dot product gives the flat index
        flat = table["strides"] @ flat_hkl - table["origin"]
        values = xp.take(values_table, xp.reshape(xp.astype(flat, xp.int64), (-1,)))
        return xp.reshape(values, hkl_nearest.shape[1:])
    inside = None
    flat = None
    for axis, (lo, hi, dim) in enumerate(zip(mins, maxs, dims)):
        component = hkl_nearest[axis, ...]
        ok = (component >= lo) & (component <= hi)
        inside = ok if inside is None else inside & ok
        offset = xp.where(ok, component - lo, xp.zeros_like(component))
        flat = offset if flat is None else flat * dim + offset
    values = xp.reshape(xp.take(values_table, xp.reshape(xp.astype(flat, xp.int64), (-1,))), flat.shape)
    return xp.where(inside, values, xp.full_like(values, default))


def interpolation_out_of_range(hkl_frac, table):
    """True where the 4x4x4 tricubic neighbourhood of hkl (3, ...) leaves the table (nanoBragg's test)."""
    out = None
    for axis in range(3):
        lo, hi = table["mins"][axis], table["maxs"][axis]
        span = hi - lo + 1
        h = hkl_frac[axis, ...]
        bad = ((h - lo + 3) > span) | ((h - 2) < lo)
        out = bad if out is None else out | bad
    return out


def _lagrange_weights(t):
    """Cubic Lagrange weights at offset t from the cell's corner, for the nodes -1, 0, 1, 2."""
    a, c, d = t + 1.0, t - 1.0, t - 2.0
    bc = t * c
    below = bc * d
    below *= -1.0 / 6.0
    corner = a * c
    corner *= d
    corner *= 0.5
    above = a * d
    above *= t
    above *= -0.5
    far = a * bc
    far *= 1.0 / 6.0
    return below, corner, above, far


def _neighbourhoods(corner, table):
    """F at the 4x4x4 grid points from ``corner`` - 1 (3, N), as 64 arrays (1, N) in (h, k, l) C order."""
    xp = array_namespace(corner)
    dims, mins = table["dims"], table["mins"]
    start = ((corner[0, ...] - (mins[0] + 1)) * dims[1] + (corner[1, ...] - (mins[1] + 1))) * dims[2] \
        + (corner[2, ...] - (mins[2] + 1))
    start = xp.astype(xp.clip(start, 0.0, table["cube_start_max"]), xp.int64)
    values = xp.take(table["F_interp"], xp.reshape(table["cube"][:, None] + start[None, :], (-1,)))
    return xp.reshape(values, (64, 1, corner.shape[1]))


def _contract(cubes, offsets):
    """sum_ijk w_i(t_h) w_j(t_k) w_k(t_l) V_ijk for cubes (64, 1, N) and offsets t (3, K, N): (K, N).

    Elementwise over (K, N) with N contiguous: each cube value is read once for its K points."""
    xp = array_namespace(cubes)
    w_h, w_k, w_l = (_lagrange_weights(xp.astype(offsets[axis, ...], cubes.dtype, copy=False)) for axis in range(3))
    total = None
    for i in range(4):
        plane = None
        for j in range(4):
            base = 16 * i + 4 * j
            line = cubes[base, ...] * w_l[0]
            for k in range(1, 4):
                line += cubes[base + k, ...] * w_l[k]
            line *= w_k[j]
            plane = line if plane is None else plane + line
        plane *= w_h[i]
        total = plane if total is None else total + plane
    return total


def _in_cell(hkl_frac, corner):
    """Boolean (K, N): points of hkl (3, K, N) inside the unit cell with lowest corner ``corner`` (3, N)."""
    xp = array_namespace(hkl_frac)
    offsets = hkl_frac - corner[:, None, :]
    return xp.all((offsets >= 0.0) & (offsets < 1.0), axis=0), offsets


def _tricubic_by_cell(hkl_frac, table, use, corner):
    """(F, done) for the ``use`` points of each column (3, K, N) inside the unit cell at ``corner`` (3, N),
    from one read of that cell's neighbourhood per column."""
    xp = array_namespace(hkl_frac)
    inside, offsets = _in_cell(hkl_frac, corner)
    done = inside & use
    F = _contract(_neighbourhoods(corner, table), offsets)
    return xp.where(done, F, xp.zeros_like(F)), done


def _first_pending_corner(hkl_frac, pending):
    """Corner (3, N) of the unit cell of each column's first pending point (columns with one)."""
    xp = array_namespace(hkl_frac)
    first = xp.argmax(xp.astype(pending, xp.int8), axis=0)                                  # (N,)
    at_first = xp.arange(pending.shape[0], dtype=first.dtype, device=device(first))[:, None] == first[None, :]
    return xp.floor(xp.sum(xp.where(at_first, hkl_frac, xp.zeros_like(hkl_frac)), axis=1))


def _contiguous(array):
    """A C-ordered copy of a strided array: elementwise work on it runs at full speed."""
    xp = array_namespace(array)
    return xp.reshape(xp.reshape(array, (-1,)), array.shape)


def _columns(array, columns):
    """array (..., N) restricted to the columns where ``columns`` (N,) is True (C-ordered)."""
    xp = array_namespace(array)
    axes = tuple(range(array.ndim))[::-1]
    return _contiguous(xp.permute_dims(xp.permute_dims(array, axes)[columns], axes))


def _set_columns(array, columns, values):
    """Copy of array (K, N) with the selected columns replaced by values (K, M) (C-ordered)."""
    xp = array_namespace(array)
    transposed = _contiguous(xp.permute_dims(array, (1, 0)))
    transposed[columns] = xp.permute_dims(values, (1, 0))
    return _contiguous(xp.permute_dims(transposed, (1, 0)))


def _tricubic_rounds(hkl_frac, table, pending, corner):
    """F (K, N) at the pending points: those in each column's cell at ``corner`` from one neighbourhood,
    the rest in further rounds on the columns that still have some (by their first such point's cell)."""
    xp = array_namespace(hkl_frac)
    F, done = _tricubic_by_cell(hkl_frac, table, pending, corner)
    pending = pending & ~done
    columns = xp.any(pending, axis=0)
    if not bool(xp.any(columns)):
        return F
    hkl_rest, pending_rest = _columns(hkl_frac, columns), _columns(pending, columns)
    F_rest = _tricubic_rounds(hkl_rest, table, pending_rest, _first_pending_corner(hkl_rest, pending_rest))
    return _set_columns(F, columns, _columns(F, columns) + F_rest)


def structure_factor_tricubic(hkl_frac, table, use=None):
    """Tricubic (4-point Lagrange per axis) interpolation of F at hkl (3, K, N) or (3, N).

    ``use``: boolean (K, N) (or (N,)) of the points to interpolate, whose 4x4x4
    neighbourhoods the caller has checked to lie inside the table (all points when
    None); the others come back as 0.  The K points of a column (orientations of one
    scattering vector in a rotation series) mostly share a unit cell: each column reads
    the neighbourhood of its first point's cell once for all its points there; columns
    with points elsewhere repeat this with the cell of their first point not yet done.
    """
    xp = array_namespace(hkl_frac)
    if hkl_frac.ndim == 2:
        single = structure_factor_tricubic(hkl_frac[:, None, :], table, None if use is None else use[None, :])
        return single[0, :]
    use = xp.ones(hkl_frac.shape[1:], dtype=xp.bool, device=device(hkl_frac)) if use is None else use
    return _tricubic_rounds(hkl_frac, table, use, xp.floor(hkl_frac[:, 0, :]))


def polarization_factor(incident, diffracted, polar_axis, kahn: float):
    """Kahn polarization factor 0.5 (1 + cos^2 2theta - K cos 2psi sin^2 2theta).

    incident (..., 3) unit vectors along the beam, diffracted (..., 3) unit
    vectors, polar_axis (3,) unit E-vector direction.
    """
    xp = array_namespace(incident, diffracted)
    cos2theta = dot(incident, diffracted)
    cos2theta_sq = cos2theta * cos2theta
    sin2theta_sq = 1.0 - cos2theta_sq
    if kahn == 0.0:
        return 0.5 * (1.0 + cos2theta_sq)
    B_in = cross(polar_axis, incident)
    B_in = B_in / norm(B_in)[..., None]
    E_in = cross(incident, B_in)
    E_in = E_in / norm(E_in)[..., None]
    psi = -xp.atan2(dot(diffracted, B_in), dot(diffracted, E_in))
    return 0.5 * (1.0 + cos2theta_sq - kahn * xp.cos(2.0 * psi) * sin2theta_sq)


def cross(u, v):
    """Cross product over the last axis (broadcasting)."""
    xp = array_namespace(u, v)
    x = u[..., 1] * v[..., 2] - u[..., 2] * v[..., 1]
    y = u[..., 2] * v[..., 0] - u[..., 0] * v[..., 2]
    z = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    return xp.stack([x, y, z], axis=-1)


def rotate_about_axis(v, axis, angle):
    """Rodrigues rotation of v (..., 3) about unit vectors axis (..., 3) by angle (...) radians."""
    xp = array_namespace(v, angle)
    c = xp.cos(angle)[..., None]
    s = xp.sin(angle)[..., None]
    along = dot(axis, v)[..., None] * (1.0 - c)
    return axis * along + v * c + cross(axis, v) * s


def capture_fraction(parallax, layer: int, layer_thickness: float, mu: float):
    """Fraction of photons absorbed in sensor layer ``layer`` along a ray with obliquity ``parallax``."""
    xp = array_namespace(parallax)
    return (xp.exp(-layer * layer_thickness * mu / parallax)
            - xp.exp(-(layer + 1) * layer_thickness * mu / parallax))


def water_background(fluence: float, water_size: float) -> float:
    """nanoBragg's constant water term I_bg (as implemented there, units included)."""
    return WATER_F * WATER_F * R_E_SQR * fluence * water_size ** 3 * 1e6 * AVOGADRO / WATER_MW
