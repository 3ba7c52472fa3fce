"""Structure factors: nearest-neighbour lookup and nanoBragg's tricubic interpolation of an F(hkl) grid.

Array-API code: every function works in its arguments' namespace and on their device;
shapes broadcast, the last axis of a vector holding x, y, z.
"""
from __future__ import annotations

from ..backend import array_namespace, device
from . import compaction


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
