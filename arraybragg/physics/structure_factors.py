"""Structure factors: nearest-neighbour lookup and nanoBragg's tricubic interpolation of an F(hkl) grid.

Array-API code: every function works in its arguments' namespace and on their device;
shapes broadcast, the last axis of a vector holding x, y, z.
"""
from __future__ import annotations

from ..backend import array_namespace, device
from . import compaction


def structure_factor_table(F_grid, mins, maxs, default_F: float, squared_dtype=None, tricubic: bool = True):
    """The lookup table the structure-factor functions take.

    ``F_grid``: (h, k, l) grid of amplitudes (any namespace, float64), index
    ``mins`` at its origin; ``maxs``: the largest valid indices (the grid may
    carry padding beyond them, as nanoBragg's does).  F^2 and the tricubic
    coefficients are stored in ``squared_dtype`` (default: that of F_grid), the
    precision they are used in.  ``tricubic``: also store the coefficients that
    tricubic interpolation reads (16 per grid point, see ``_bicubic_coefficients``).
    """
    xp = array_namespace(F_grid)
    dims = tuple(int(n) for n in F_grid.shape)
    strides = (dims[1] * dims[2], dims[2], 1)
    flat = xp.reshape(F_grid, (-1,))
    dtype = F_grid.dtype if squared_dtype is None else squared_dtype
    table = dict(F=flat, F_sq=xp.astype(flat * flat, dtype, copy=False), dims=dims, mins=tuple(mins),
                 maxs=tuple(maxs), default_F=default_F,
                 strides=xp.asarray([[float(v) for v in strides]], dtype=F_grid.dtype, device=device(F_grid)),
                 origin=float(sum(st * lo for st, lo in zip(strides, mins))))
    if tricubic:
        # flat offsets of the neighbourhood's 4 h planes from its lowest
        planes = [i * strides[0] for i in range(4)]
        coefficients = _bicubic_coefficients(F_grid, dtype)
        table.update(coefficients=coefficients, planes=xp.asarray(planes, dtype=xp.int64, device=device(F_grid)),
                     plane_start_max=float(coefficients.shape[1] - 1 - planes[-1]))
    return table


def structure_factor_nearest(hkl_nearest, table, squared: bool = False, index_bound=None):
    """F_cell (or F_cell^2) at integer indices ``hkl_nearest`` (3, ...); default_F outside the table.

    ``table``: from ``structure_factor_table``, or dict(F=None, default_F=...)
    when there is no grid.
    ``index_bound``: optional known bounds (3 floats) on |h|, |k|, |l|; when they
    fit inside the table the per-element range tests are skipped (decided on the host: no
    device value is read).
    """
    xp = array_namespace(hkl_nearest)
    default = table["default_F"] ** 2 if squared else table["default_F"]
    if table["F"] is None:
        return xp.full(hkl_nearest.shape[1:], default, dtype=hkl_nearest.dtype, device=device(hkl_nearest))
    values_table = table["F_sq"] if squared else table["F"]
    mins, maxs, dims = table["mins"], table["maxs"], table["dims"]
    flat_hkl = xp.reshape(hkl_nearest, (3, -1))
    all_inside = index_bound is not None and all(-b >= lo and b <= hi for b, lo, hi in zip(index_bound, mins, maxs))
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


# The cubic through values v_n at the nodes t = -1, 0, 1, 2 is sum_p c_p t^p, c_p = sum_n _MONOMIAL[p][n] v_n.
_MONOMIAL = ((0.0, 1.0, 0.0, 0.0),
             (-1.0 / 3.0, -0.5, 1.0, -1.0 / 6.0),
             (0.5, -1.0, 0.5, 0.0),
             (-1.0 / 6.0, 0.5, -0.5, 1.0 / 6.0))


def _cubic_coefficients(values, axis: int):
    """Coefficients c_0..c_3 (4 arrays shaped like ``values``) of the cubic in t through ``values`` at
    index - 1 .. index + 2 along ``axis``, for every index (0 stands in beyond the grid's ends)."""
    xp = array_namespace(values)
    n = values.shape[axis]
    pad = [list(values.shape) for _ in range(2)]
    pad[0][axis], pad[1][axis] = 1, 2
    padded = xp.concat([xp.zeros(tuple(pad[0]), dtype=values.dtype, device=device(values)), values,
                        xp.zeros(tuple(pad[1]), dtype=values.dtype, device=device(values))], axis=axis)
    nodes = [padded[(slice(None),) * axis + (slice(m, m + n), ...)] for m in range(4)]
    coefficients = []
    for row in _MONOMIAL:
        terms = [weight * node for weight, node in zip(row, nodes) if weight != 0.0]
        coefficients.append(terms[0] if len(terms) == 1 else sum(terms[1:], terms[0]))
    return coefficients


def _bicubic_coefficients(F_grid, dtype):
    """(16, grid points) in ``dtype``: for each flat grid point, the coefficients c_bc (row 4 c + b) of
    sum_bc c_bc t_k^b t_l^c, the bicubic through F of its h plane at k - 1 .. k + 2, l - 1 .. l + 2.

    Tricubic interpolation then costs Horner's rule in (t_k, t_l) on four planes and Lagrange weights
    across them, rather than 64 weighted terms; they take 16x the grid's memory (24x while made).  A grid
    of fewer than 4 h planes gets planes of zeros up to 4, so that every neighbourhood's reads stay inside
    (its evaluations all take the nearest F: no neighbourhood fits).
    """
    xp = array_namespace(F_grid)
    H = F_grid.shape[0]
    rows = xp.zeros((16, max(H, 4)) + tuple(F_grid.shape[1:]), dtype=dtype, device=device(F_grid))
    for c, along_l in enumerate(_cubic_coefficients(F_grid, 2)):
        for b, coefficient in enumerate(_cubic_coefficients(along_l, 1)):
            rows[4 * c + b, :H, ...] = xp.astype(coefficient, dtype, copy=False)
    return xp.reshape(rows, (16, -1))


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


def _coefficient_blocks(corner, table):
    """The coefficients of the four h planes of the 4x4x4 neighbourhood from ``corner`` - 1 (3, N):
    (16, 4, 1, N), rows as in ``_bicubic_coefficients``, then the planes."""
    xp = array_namespace(corner)
    dims, mins = table["dims"], table["mins"]
    start = ((corner[0, ...] - (mins[0] + 1)) * dims[1] + (corner[1, ...] - mins[1])) * dims[2] \
        + (corner[2, ...] - mins[2])
    start = xp.astype(xp.clip(start, 0.0, table["plane_start_max"]), xp.int64)
    # one gather per coefficient row: neighbouring columns read neighbouring grid points
    values = xp.take(table["coefficients"], xp.reshape(table["planes"][:, None] + start[None, :], (-1,)), axis=1)
    return xp.reshape(values, (16, 4, 1, corner.shape[1]))


def _horner(coefficients, t):
    """sum_p coefficients[p] t^p for the 4 rows (1, N) of ``coefficients`` at t (K, N)."""
    value = coefficients[3, ...] * t
    for p in (2, 1):
        value += coefficients[p, ...]
        value *= t
    value += coefficients[0, ...]
    return value


def _contract(blocks, offsets):
    """F at offsets t (3, K, N) from the corners of the cells whose ``_coefficient_blocks`` are ``blocks``
    (16, 4, 1, N): each plane's bicubic by Horner's rule, the four planes by Lagrange weights in t_h. (K, N).

    Elementwise over (K, N) with N contiguous: each coefficient is read once for its K points."""
    xp = array_namespace(blocks)
    t_h, t_k, t_l = (xp.astype(offsets[axis, ...], blocks.dtype, copy=False) for axis in range(3))
    total = None
    for i, weight in enumerate(_lagrange_weights(t_h)):
        plane = None
        for c in (3, 2, 1, 0):
            line = _horner(blocks[4 * c:4 * c + 4, i, ...], t_k)
            if plane is None:
                plane = line
            else:
                plane *= t_l
                plane += line
        plane *= weight
        if total is None:
            total = plane
        else:
            total += plane
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
    F = _contract(_coefficient_blocks(corner, table), offsets)
    return xp.where(done, F, xp.zeros_like(F)), done


def _first_pending_corner(hkl_frac, pending):
    """Corner (3, N) of the unit cell of each column's first pending point (columns with one)."""
    xp = array_namespace(hkl_frac)
    first = xp.argmax(xp.astype(pending, xp.int8), axis=0)                                  # (N,)
    at_first = xp.arange(pending.shape[0], dtype=first.dtype, device=device(first))[:, None] == first[None, :]
    return xp.floor(xp.sum(xp.where(at_first, hkl_frac, xp.zeros_like(hkl_frac)), axis=1))


def _tricubic_rounds(hkl_frac, table, pending, corner):
    """F (K, N) at the pending points: those in each column's cell at ``corner`` from one neighbourhood,
    the rest in further rounds on the columns that still have some (by their first such point's cell)."""
    xp = array_namespace(hkl_frac)
    F, done = _tricubic_by_cell(hkl_frac, table, pending, corner)
    pending = pending & ~done
    columns = xp.any(pending, axis=0)
    order, count = compaction.front(columns)
    if count == 0:
        return F
    hkl_rest, pending_rest = compaction.take_front(hkl_frac, order, count), compaction.take_front(pending, order, count)
    F_rest = _tricubic_rounds(hkl_rest, table, pending_rest, _first_pending_corner(hkl_rest, pending_rest))
    return compaction.spread(columns, compaction.take_front(F, order, count) + F_rest, F)


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
