"""Pixel traces (``-trace_pixel S F``) and nanoBragg's ``-printout``: one pixel walked in the C's order.

The renderer evaluates whole tiles as arrays; a trace instead walks ONE pixel
through nanoBragg's loops in their order (sensor layer -> subpixel -> source
-> phi -> mosaic domain), printing the quantities the instrumented C program
prints (``TRACE_C``) as ``TRACE_PY`` lines with the same names, units, order
and ``%.15g`` formatting, so that ``arraybragg-trace-diff`` can compare them
field by field.  The pixel's geometry (positions, solid angle, capture
fraction, polarization, the -dmin cut) comes from the renderer's own array
code (:mod:`.pixels`, a tile of one pixel in NumPy float64), the lattice
shapes and structure factors from :mod:`arraybragg.physics`; the walk itself
adds the C's unreduced, signed ``sincg`` so that F_latt_a/b/c carry the C's
signs, and reproduces nanoBragg's per-pixel caches of solid angle, capture
fraction and polarization.

State carried from earlier pixels (--c-parity: the spindle orientation a
phi = 0 step reuses, and the tricubic switch that turns off for good at the
first out-of-range neighbourhood) is taken from the render being traced,
which records where both happened.  Nothing here runs unless -trace_pixel or
-printout is given; the render itself is untouched.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from .. import physics
from ..backend import get_backend
from ..models.lab import Simulation
from ..models.nanobragg import RTD, DetectorStart, Log, detector_start
from ..models.vectors import rotate_axis, rotate_xyz
from .pixels import PixelGeometry, sin_theta_over_lambda
from .renderer import Renderer, RenderResult
from .schedule import RenderedPixels
from .staging import stage_crystal_params, stage_structure_factors

Emit = Optional[Callable[[str], None]]


def _g(value) -> str:
    return "%.15g" % float(value)


def _vec(values) -> str:
    return " ".join(_g(v) for v in values)


def _dot(u, v) -> float:
    """Dot product summed left to right, like the C."""
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


def _matvec(m, v) -> tuple:
    """Rows of a 3x3 matrix dotted with v (nanoBragg's rotate_umat)."""
    return tuple(_dot(m[i], v) for i in range(3))


# ------------------------------------------------------------------------------ setup-time lines


def _matrix(m) -> str:
    return "[" + "; ".join(" ".join(_g(x) for x in row) for row in m) + "]"


def _rotation_matrices(rotx: float, roty: float, rotz: float):
    """Rx, Ry, Rz and R_total = Rz Ry Rx of the detector rotations (radians)."""
    cx, sx, cy, sy, cz, sz = (math.cos(rotx), math.sin(rotx), math.cos(roty), math.sin(roty),
                              math.cos(rotz), math.sin(rotz))
    Rx = np.array([[1.0, 0.0, 0.0], [0.0, cx, -sx], [0.0, sx, cx]])
    Ry = np.array([[cy, 0.0, sy], [0.0, 1.0, 0.0], [-sy, 0.0, cy]])
    Rz = np.array([[cz, -sz, 0.0], [sz, cz, 0.0], [0.0, 0.0, 1.0]])
    return Rx, Ry, Rz, Rz @ (Ry @ Rx)


def setup_trace_lines(s, sim: Simulation) -> list[str]:
    """The detector-setup lines of the instrumented C (``TRACE_PY:name=value``), in its order.

    Intermediates are re-derived from the Settings ``s``; the final axes and
    origin are the engine's own (``sim.detector``).  The C's beam-pivot block
    names the MOSFLM convention and MOSFLM's initial axes whatever the
    convention, and lists the final axes as "after_rotz": reproduced as is,
    with the real convention, pivot and initial axes added as *_selected.
    """
    d = sim.detector
    start = detector_start(s, sim.detector.pixel_size, sim.detector.detsize_f, sim.detector.detsize_s, Log())
    rot = (s.detector_rotx, s.detector_roty, s.detector_rotz)
    lines = []
    put = lambda name, text: lines.append("TRACE_PY:%s=%s" % (name, text))
    angles = "rotx:%s roty:%s rotz:%s twotheta:%s" % tuple(_g(a) for a in (*rot, s.detector_twotheta))
    if start.pivot == "SAMPLE" and not start.user_pix0:
        _sample_pivot_lines(put, d, start, rot, angles)
    for name, v in (("fdet", start.fdet), ("sdet", start.sdet), ("odet", start.odet)):
        put(name + "_after_rotz", _vec(rotate_xyz(v, *rot)))
    put("twotheta_axis", _vec(start.twotheta_axis))
    for name, v in (("fdet", d.fdet), ("sdet", d.sdet), ("odet", d.odet)):
        put(name + "_after_twotheta", _vec(v))
    if start.pivot == "BEAM" and not start.user_pix0:
        _beam_pivot_lines(put, d, start, rot, angles)
    elif start.user_pix0:
        put("pix0_vector", _vec(d.pix0))
    return lines


def _sample_pivot_lines(put, d, start: DetectorStart, rot, angles: str):
    """The C's sample-pivot block: the origin from the close-distance terms before the rotations."""
    put("detector_convention", start.convention)
    put("angles_rad", angles)
    put("beam_center_m", "Xclose:%s Yclose:%s pixel_mm:%s" % (_g(d.Xclose / 1000.0), _g(d.Yclose / 1000.0),
                                                              _g(d.pixel_size * 1000.0)))
    for name, v in (("initial_fdet", start.fdet), ("initial_sdet", start.sdet), ("initial_odet", start.odet)):
        put(name, _vec(v))
    for name, value in (("Fclose_m", start.centres["Fclose"]), ("Sclose_m", start.centres["Sclose"]),
                        ("close_distance_m", start.close_distance), ("ratio", start.ratio),
                        ("distance_m", start.distance)):
        put(name, _g(value))
    terms = (-start.centres["Fclose"] * start.fdet, -start.centres["Sclose"] * start.sdet, start.close_distance * start.odet)
    for name, v in zip(("term_fast_before_rot", "term_slow_before_rot", "term_close_before_rot"), terms):
        put(name, _vec(v))
    pix0 = terms[0] + terms[1] + terms[2]
    put("pix0_before_rotation", _vec(pix0))
    put("pix0_after_rotz", _vec(rotate_xyz(pix0, *rot)))
    put("pix0_after_twotheta", _vec(d.pix0))


def _beam_pivot_lines(put, d, start: DetectorStart, rot, angles: str):
    """The C's beam-pivot block: rotation matrices, final axes and the origin from the beam centre."""
    put("detector_convention", "MOSFLM")
    put("convention_selected", start.convention)
    put("pivot_selected", start.pivot)
    put("angles_rad", angles)
    put("beam_center_m", "X:%s Y:%s pixel_mm:%s" % (_g(d.Xbeam / 1000.0), _g(d.Ybeam / 1000.0),
                                                    _g(d.pixel_size * 1000.0)))
    for name, fixed, real in (("fdet", (0, 0, 1), start.fdet), ("sdet", (0, -1, 0), start.sdet),
                              ("odet", (1, 0, 0), start.odet)):
        put("initial_" + name, _vec(fixed))
        put("initial_%s_selected" % name, _vec(real))
    for name, m in zip(("Rx", "Ry", "Rz", "R_total"), _rotation_matrices(*rot)):
        put(name, _matrix(m))
    final = (("fdet", d.fdet), ("sdet", d.sdet), ("odet", d.odet))
    for name, v in final:
        put(name + "_after_rotz", _vec(v))
    put("twotheta_axis", _vec(start.twotheta_axis))
    for name, v in final:
        put(name + "_after_twotheta", _vec(v))
    put("convention_mapping", "Fbeam\u2190Ybeam_mm(+0.5px),Sbeam\u2190Xbeam_mm(+0.5px),beam_vec=[1 0 0]")
    put("Fbeam_m", _g(start.centres["Fbeam"]))
    put("Sbeam_m", _g(start.centres["Sbeam"]))
    put("distance_m", _g(start.distance))
    put("term_fast", _vec(-start.centres["Fbeam"] * d.fdet))
    put("term_slow", _vec(-start.centres["Sbeam"] * d.sdet))
    put("term_beam", _vec(start.distance * start.beam))
    put("pix0_vector", _vec(d.pix0))


# ------------------------------------------------------------------------------------ the walk


@dataclass
class PixelWalk:
    """One pixel's result and the loop variables as nanoBragg leaves them after its last iteration."""

    fast: int
    slow: int
    I: float                    # accumulated F^2 sum (photons/sr before scaling)
    I_pre_polar: float          # the same sum with polarization never applied
    pixel_value: float          # I scaled to photons (the C's ``test``), float64
    polar: float
    omega: float
    capture: float
    stol: float                 # 1/m, last source evaluated
    pixel_pos: tuple            # m, last subpixel
    incident: tuple
    diffracted: tuple
    hkl: tuple                  # last evaluated fractional indices
    hkl0: tuple
    F_cell: float
    F_latt: float
    cell: tuple                 # last rotated a, b, c (m)


@dataclass
class _PixelState:
    """What nanoBragg keeps per pixel while walking it (its caches and running sums)."""

    I: float
    I_pre_polar: float
    polar: float
    omega: float = 0.0
    capture: float = 0.0
    pos: tuple = (0.0, 0.0, 0.0)
    diffracted: tuple = (0.0, 0.0, 0.0)
    incident: tuple = (0.0, 0.0, 0.0)


class _PixelArrays:
    """One pixel's geometry from the renderer's own array code: a tile of one pixel (NumPy, float64),
    read per (layer, subpixel in subS-major order, source)."""

    def __init__(self, pixels: PixelGeometry, flat_index: int):
        self.geometry = pixels.tile(np.asarray([flat_index]))
        self.polar = pixels.polarization(self.geometry)
        self.stol = sin_theta_over_lambda(self.geometry.scattering)[0]
        keep = pixels.resolution_cut(self.geometry.scattering)
        self.keep = None if keep is None else np.reshape(keep, self.stol.shape)


class PixelWalker:
    """Walks pixels through nanoBragg's loops in C order, carrying the C's loop state between them.

    ``interpolate``: whether tricubic interpolation is still on when the walk
    starts; ``spindle_cell``: the spindle-rotated cell (a, b, c) a phi = 0 step
    reuses in --c-parity mode (None: the unrotated cell).
    """

    def __init__(self, sim: Simulation, interpolate: bool, spindle_cell=None):
        self.sim = sim
        c, g = sim.crystal, sim.goniometer
        self.cell0 = tuple(tuple(float(x) for x in v) for v in (c.a, c.b, c.c))
        self.spindle_cell = spindle_cell or self.cell0
        self.interpolate = interpolate
        self.umats = [tuple(tuple(float(x) for x in row) for row in u)
                      for u in (g.mosaic_umats if g.mosaic_spread > 0.0 else g.mosaic_umats[:1])]
        self.reciprocal = tuple(tuple(float(x) for x in v) for v in (c.a_star, c.b_star, c.c_star))
        host = get_backend("numpy")
        self.pixels = PixelGeometry(sim, host)
        self.crystal_params = stage_crystal_params(sim, host)
        self.table = stage_structure_factors(sim, host, np.float64)
        self.I_bg = physics.water_background(sim.beam.fluence, sim.sampling.water_size)
        # loop variables that outlive a pixel in the C (printed by -printout)
        self.last = dict(stol=0.0, hkl=(0.0, 0.0, 0.0), hkl0=(0, 0, 0), F_cell=0.0, F_latt=0.0, cell=self.cell0)

    # ------------------------------------------------------------------ physics of one evaluation
    def _spindle_rotation(self, phi: float):
        """Cell after the spindle rotation for this phi step, with the C's carry-over in --c-parity mode."""
        if phi != 0.0:
            axis = self.sim.goniometer.spindle
            self.spindle_cell = tuple(tuple(float(x) for x in rotate_axis(v, axis, phi)) for v in self.cell0)
        elif not self.sim.c_parity:
            self.spindle_cell = self.cell0
        return self.spindle_cell

    def _lattice(self, hkl, hkl0):
        """(F_latt, (F_latt_a, F_latt_b, F_latt_c)); the factors are None for shapes other than SQUARE,
        and SQUARE's are the C's signed, unreduced sincg."""
        c = self.sim.crystal
        if c.shape != "SQUARE":
            delta = np.asarray(hkl) - np.asarray(hkl0, dtype=np.float64)
            return float(physics.shape_amplitude(delta, self.crystal_params)), None
        parts = tuple(float(physics.sincg(np.asarray(math.pi * h), N)) if N > 1 else 1.0
                      for h, N in zip(hkl, (c.Na, c.Nb, c.Nc)))
        F_latt = 1.0
        for part in parts:
            F_latt *= part
        return F_latt, parts

    def _structure_factor(self, hkl, hkl0) -> float:
        """F_cell: tricubic where the neighbourhood is on the grid, else the nearest grid point (in
        --c-parity mode tricubic is off for good after the first point off the grid)."""
        point = np.asarray(hkl, dtype=np.float64).reshape(3, 1)
        if self.interpolate and not bool(physics.interpolation_out_of_range(point, self.table)[0]):
            return float(physics.structure_factor_tricubic(point, self.table)[0])
        if self.sim.c_parity:
            self.interpolate = False
        nearest = np.asarray(hkl0, dtype=np.float64).reshape(3, 1)
        return float(physics.structure_factor_nearest(nearest, self.table)[0])

    # ------------------------------------------------------------------ the loops
    def walk(self, fast: int, slow: int, emit: Emit = None) -> PixelWalk:
        """Accumulate one pixel as nanoBragg does; ``emit`` receives its TRACE_PY lines."""
        sim = self.sim
        d, smp = sim.detector, sim.sampling
        arrays = _PixelArrays(self.pixels, slow * d.fpixels + fast)
        state = _PixelState(I=self.I_bg, I_pre_polar=self.I_bg, polar=1.0 if sim.beam.nopolar else 0.0)
        for layer in range(d.thicksteps):
            state.capture = 1.0 if d.thickness == 0.0 else 0.0
            for sub in range(smp.oversample ** 2):
                self._subpixel(state, arrays, layer, sub, emit)
        value = physics.R_E_SQR * sim.beam.fluence * state.I / sim.steps
        if not smp.oversample_thick:
            value *= state.capture
        if not smp.oversample_polar:
            value *= state.polar
        if not smp.oversample_omega:
            value *= state.omega
        last = self.last
        return PixelWalk(fast=fast, slow=slow, I=state.I, I_pre_polar=state.I_pre_polar, pixel_value=value,
                         polar=state.polar, omega=state.omega, capture=state.capture, stol=last["stol"],
                         pixel_pos=state.pos, incident=state.incident, diffracted=state.diffracted,
                         hkl=last["hkl"], hkl0=last["hkl0"], F_cell=last["F_cell"], F_latt=last["F_latt"],
                         cell=last["cell"])

    def _subpixel(self, state: _PixelState, arrays: _PixelArrays, layer: int, sub: int, emit: Emit):
        """One subpixel of one sensor layer: cached solid angle and capture fraction, then every source."""
        smp, b = self.sim.sampling, self.sim.beam
        geometry = arrays.geometry
        state.pos = tuple(float(component[0, layer, sub]) for component in geometry.position)
        state.diffracted = tuple(float(c[0, layer, sub]) for c in geometry.diffracted)
        if state.omega == 0.0 or smp.oversample_omega:
            state.omega = float(geometry.omega[0, layer, sub])
        if state.capture == 0.0 or smp.oversample_thick:
            state.capture = float(geometry.capture[0, layer, sub])
        for source in range(len(b.wavelengths)):
            state.incident = tuple(-float(x) for x in b.directions[source])
            lam = float(b.wavelengths[source])
            scattering = tuple(float(x) for x in geometry.scattering[0, layer, sub, source])
            if emit is not None and source == 0:
                self._emit_subpixel(emit, state, float(geometry.airpath[0, layer, sub]), lam, scattering)
            self.last["stol"] = float(arrays.stol[layer, sub, source])
            if arrays.keep is not None and not arrays.keep[layer, sub, source]:
                continue
            if state.polar == 0.0 or smp.oversample_polar:
                state.polar = float(arrays.polar[0, layer, sub, source])
            self._source(state, scattering, lam, source, emit)

    def _source(self, state: _PixelState, scattering, lam: float, source: int, emit: Emit):
        """The phi and mosaic loops of one source."""
        g = self.sim.goniometer
        for phi_tic in range(g.phisteps):
            phi = g.phi0 + g.phistep * phi_tic
            spindle_cell = self._spindle_rotation(phi)
            for mos, umat in enumerate(self.umats):
                cell = tuple(_matvec(umat, v) for v in spindle_cell) if g.mosaic_spread > 0.0 else spindle_cell
                traced = emit if mos == 0 and source in (0, 2) else None
                self._evaluate(state, cell, scattering, lam, phi_tic, phi, source, traced)

    def _emit_subpixel(self, emit, state: _PixelState, airpath: float, lam: float, scattering):
        d = self.sim.detector
        for name, value in (("pix0_vector_meters", d.pix0), ("fdet_vec", d.fdet), ("sdet_vec", d.sdet),
                            ("pixel_pos_meters", state.pos), ("R_distance_meters", [airpath]),
                            ("omega_pixel_sr", [state.omega]), ("close_distance_meters", [d.close_distance]),
                            ("obliquity_factor", [d.close_distance / airpath]),
                            ("diffracted_vec", state.diffracted), ("incident_vec", state.incident),
                            ("lambda_meters", [lam]), ("lambda_angstroms", [lam * 1e10]),
                            ("scattering_vec_A_inv", scattering)):
            emit("TRACE_PY: %s %s" % (name, _vec(value)))

    def _evaluate(self, state: _PixelState, cell, scattering, lam, phi_tic, phi, source, emit: Emit):
        """One (phi step, mosaic domain): Miller indices, F_latt, F_cell and the running sum."""
        smp = self.sim.sampling
        hkl = tuple(_dot(v, scattering) for v in cell)
        hkl0 = tuple(int(math.ceil(x - 0.5)) for x in hkl)
        self.last.update(hkl=hkl, hkl0=hkl0, cell=cell)
        main = emit is not None and source == 0       # the C traces source 0 (and checks source 2)
        first_step = main and phi_tic == 0
        if first_step:
            for name, v in zip(("rot_a_angstroms", "rot_b_angstroms", "rot_c_angstroms"), cell):
                emit("TRACE_PY: %s %s" % (name, _vec([x * 1e10 for x in v])))
            for name, v in zip(("rot_a_star_A_inv", "rot_b_star_A_inv", "rot_c_star_A_inv"), self.reciprocal):
                emit("TRACE_PY: %s %s" % (name, _vec(v)))
            emit("TRACE_PY: hkl_frac %s" % _vec(hkl))
            emit("TRACE_PY: hkl_rounded %d %d %d" % hkl0)
        F_latt, parts = self._lattice(hkl, hkl0)
        self.last["F_latt"] = F_latt
        square = parts is not None
        if first_step and square:
            for name, value in zip(("F_latt_a", "F_latt_b", "F_latt_c"), parts):
                emit("TRACE_PY: %s %s" % (name, _g(value)))
            emit("TRACE_PY: F_latt %s" % _g(F_latt))
        reached = not (F_latt == 0.0 and smp.water_size == 0.0)
        F_cell = self._structure_factor(hkl, hkl0) if reached else math.nan   # nan: the C skips it
        if main:
            lattice_b = " F_latt_b=%s" % _g(parts[1]) if square else ""
            emit("TRACE_PY_PHI phi_tic=%d phi_deg=%s k_frac=%s%s F_latt=%s F_cell=%s"
                 % (phi_tic, _g(phi * RTD), _g(hkl[1]), lattice_b, _g(F_latt), _g(F_cell)))
        if not reached:
            return
        self.last["F_cell"] = F_cell
        if first_step:
            emit("TRACE_PY: F_cell %s" % _g(F_cell))
        if emit is not None and source == 2 and phi_tic == 0:
            _emit_source2(emit, F_cell, F_latt, state, lam)
        term = F_cell * F_cell * F_latt * F_latt
        if self.sim.c_parity:  # nanoBragg multiplies its running sum by each -oversample_* factor
            self._add_to_running_sum(state, term)
            return
        if smp.oversample_thick:
            term *= state.capture
        if smp.oversample_omega:
            term *= state.omega
        state.I_pre_polar += term
        state.I += term * state.polar if smp.oversample_polar else term

    def _add_to_running_sum(self, state: _PixelState, term: float):
        smp = self.sim.sampling
        state.I += term
        state.I_pre_polar += term
        if smp.oversample_thick:
            state.I *= state.capture
            state.I_pre_polar *= state.capture
        if smp.oversample_polar:
            state.I *= state.polar
        if smp.oversample_omega:
            state.I *= state.omega
            state.I_pre_polar *= state.omega


def _emit_source2(emit, F_cell, F_latt, state: _PixelState, lam):
    """The C's check of the third source (index 2) at phi step 0, mosaic domain 0."""
    for name, value in (("F_cell", F_cell), ("F_latt", F_latt), ("F_cell_squared", F_cell * F_cell),
                        ("F_latt_squared", F_latt * F_latt), ("I_contribution", F_cell * F_cell * F_latt * F_latt),
                        ("polar", state.polar), ("cos2theta", _dot(state.incident, state.diffracted)),
                        ("lambda_angstroms", lam * 1e10)):
        emit("TRACE_PY_SOURCE2: %s %s" % (name, _g(value)))
    emit("TRACE_PY_SOURCE2: source_index 2")


# ------------------------------------------------------------------------------ entry state


def _entry_state(sim: Simulation, flat_index: int, result: RenderResult):
    """(tricubic interpolation still on, spindle-rotated cell carried over) when the render reaches
    this pixel, from the render's record of nanoBragg's loop-carried state (--c-parity).

    The switch-off turns interpolation off for good from the evaluation where it fired (the walk of
    that pixel turns it off itself).  Every phi loop ends with the rotation of the last phi step
    != 0, which a later phi = 0 step reuses; before the render's first phi loop there is none.
    (Where the render records no first phi loop, the first phi step is != 0 and nothing is reused.)
    """
    sf = sim.structure_factors
    off_at = result.interpolation_off_at
    interpolate = bool(sf.interpolate and sf.grid is not None and sf.grid.count > 0
                       and (off_at is None or off_at >= flat_index))
    first_loop = result.first_phi_loop_at
    if first_loop is None or first_loop >= flat_index:
        return interpolate, None
    g, c = sim.goniometer, sim.crystal
    last_turn = [float(phi) for phi in g.phis if phi != 0.0][-1]
    return interpolate, tuple(tuple(float(x) for x in rotate_axis(v, g.spindle, last_turn)) for v in (c.a, c.b, c.c))


def _rendered(sim: Simulation, result: Optional[RenderResult]) -> RenderResult:
    """The render a report describes: ``result``, or without one a NumPy float64 render of ``sim``."""
    return result if result is not None else Renderer(sim, backend="numpy", policy="float64").render()


def walker_at(sim: Simulation, fast: int, slow: int, result: Optional[RenderResult] = None) -> Optional[PixelWalker]:
    """A walker in the state ``result``'s render (without one, a render of ``sim``) is in when it reaches
    pixel (fast, slow); None if that pixel is not rendered."""
    d = sim.detector
    if not (0 <= fast < d.fpixels and 0 <= slow < d.spixels):
        return None
    if not sim.sampling.rendered(d.spixels, d.fpixels)[slow, fast]:
        return None
    return PixelWalker(sim, *_entry_state(sim, slow * d.fpixels + fast, _rendered(sim, result)))


# ------------------------------------------------------------------------------ reports


def pixel_trace_lines(sim: Simulation, slow: int, fast: int, result: Optional[RenderResult] = None) -> list[str]:
    """TRACE_PY lines for one pixel (per subpixel, per phi step, final scaling).

    ``result``: the render traced (its pixel value is floatimage_accumulated); without one, ``sim`` is
    rendered first.
    """
    lines = ["TRACE_CONFIG: tracing pixel (spixel=%d, fpixel=%d)" % (slow, fast)]
    result = _rendered(sim, result)
    walker = walker_at(sim, fast, slow, result)
    if walker is None:
        lines.append("TRACE_CONFIG: pixel not rendered (outside the detector or ROI, or masked)")
        return lines
    walk = walker.walk(fast, slow, emit=lines.append)
    smp = sim.sampling
    post_polar = walk.I if smp.oversample_polar else walk.I * walk.polar
    for name, value in (("I_before_scaling", walk.I), ("I_before_scaling_pre_polar", walk.I_pre_polar),
                        ("I_before_scaling_post_polar", post_polar), ("r_e_meters", math.sqrt(physics.R_E_SQR)),
                        ("r_e_sqr", physics.R_E_SQR), ("fluence_photons_per_m2", sim.beam.fluence)):
        lines.append("TRACE_PY: %s %s" % (name, _g(value)))
    for name, value in (("steps", sim.steps), ("oversample_thick", smp.oversample_thick),
                        ("oversample_polar", smp.oversample_polar), ("oversample_omega", smp.oversample_omega)):
        lines.append("TRACE_PY: %s %d" % (name, int(value)))
    for name, value in (("capture_fraction", walk.capture), ("polar", walk.polar), ("omega_pixel", walk.omega),
                        ("cos_2theta", _dot(walk.incident, walk.diffracted)),
                        ("I_pixel_final", walk.pixel_value), ("floatimage_accumulated", result.image[slow, fast])):
        lines.append("TRACE_PY: %s %s" % (name, _g(value)))
    return lines


def _printout_block(sim: Simulation, w: PixelWalk, stored: float) -> list[str]:
    """nanoBragg's -printout lines for one pixel (values of the last loop iteration, as the C)."""
    x, y, z = w.pixel_pos
    twotheta = math.atan2(math.sqrt(y * y + z * z), x)
    a, b, c = w.cell
    nominal_stol = math.sin(twotheta / 2.0) / (sim.beam.lambda0 * 1e10)   # 1/Angstrom, beam along lab x
    lines = ["%4d %4d : stol = %g or %g" % (w.fast, w.slow, w.stol, nominal_stol),
             "at %g %g %g" % w.pixel_pos,
             "hkl= %f %f %f  hkl0= %d %d %d" % (*w.hkl, *w.hkl0),
             " F_cell=%g  F_latt=%g   I = %g" % (w.F_cell, w.F_latt, w.I),
             "I/steps %15.10g" % (w.I / sim.steps),
             "polar   %15.10g" % w.polar,
             "omega   %15.10g" % w.omega,
             "capfrac %15.10g" % w.capture,
             "pixel   %15.10g" % stored,
             "real-space cell vectors (Angstrom):",
             "     %-10s  %-10s  %-10s" % ("a", "b", "c")]
    for axis, label in enumerate("XYZ"):
        lines.append("%s: %11.8f %11.8f %11.8f" % (label, a[axis] * 1e10, b[axis] * 1e10, c[axis] * 1e10))
    return lines


def printout_lines(sim: Simulation, fast: int, slow: int, result: Optional[RenderResult] = None) -> list[str]:
    """-printout (every rendered pixel when ``fast`` < 0, as the C) or -printout_pixel F S, of ``result``'s
    render (without one, ``sim`` is rendered first).

    A value the pixel never sets (F_cell when every F_latt is 0, hkl when -dmin
    cuts everything) is, in the C, left over from earlier pixels: every-pixel
    printouts carry it the same way, a single pixel reports 0.
    """
    result = _rendered(sim, result)
    stored = lambda w: float(result.image[w.slow, w.fast])
    if fast >= 0:
        walker = walker_at(sim, fast, slow, result)
        if walker is None:
            return []
        walk = walker.walk(fast, slow)
        return _printout_block(sim, walk, stored(walk))
    fpixels = sim.detector.fpixels
    walker = PixelWalker(sim, *_entry_state(sim, 0, result))
    lines = []
    rendered = RenderedPixels(sim)
    for flat in rendered[0:len(rendered)]:
        walk = walker.walk(int(flat % fpixels), int(flat // fpixels))
        lines.extend(_printout_block(sim, walk, stored(walk)))
    return lines


def report_lines(settings, sim: Simulation, result: Optional[RenderResult] = None) -> list[str]:
    """Everything -trace_pixel and -printout print (empty without them), for ``result``'s render."""
    lines = []
    if settings.trace_pixel is not None or settings.printout:
        result = _rendered(sim, result)
    if settings.trace_pixel is not None:
        slow, fast = settings.trace_pixel
        lines += setup_trace_lines(settings, sim)
        lines += pixel_trace_lines(sim, slow, fast, result)
    if settings.printout:
        lines += printout_lines(sim, settings.printout_fpixel, settings.printout_spixel, result)
    return lines
