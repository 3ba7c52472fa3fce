"""Settings (parsed nanoBragg flags) -> models, with nanoBragg's defaults and derivations.

This is the part of nanoBragg between its argument loop and its pixel loop:
detector conventions and pivots, automatic step counts, the unit cell, the
structure-factor table, sources and mosaic domains.  ``build_simulation``
returns the models plus the log lines nanoBragg prints while doing this.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from ..io import hkl
from .. import rng
from ..errors import InputError
from .checks import finite_token
from .validation import Budget, validate_detector, validate_roi, validate_settings
from .vectors import rotate_axis, rotate_xyz, unit
from .goniometer import mosaic_umats
from .lab import Beam, Crystal, Detector, Goniometer, Sampling, Simulation, StructureFactors
from ..io.cformat import c_atof

RTD = 180.0 / math.pi
DBL_MIN = 2.2250738585072014e-308
# host bytes per detector pixel over a run: float image, mask, statistics, integer and PGM outputs
BYTES_PER_PIXEL = 24
BYTES_PER_SUBPIXEL = 64  # renderer scratch per sub-pixel sample of one pixel (positions, angles, sums)
BYTES_PER_ITEM = 1024  # host bytes per source or orientation (arrays, Python objects, log lines)
TRICUBIC_GRID_FACTOR = 27  # the F grid, the renderer's copy and F^2, the tricubic coefficients (24x while made)
_MAX_COUNT = 1 << 62   # a step count past this saturates (the work limit then refuses it)


def _ceil_count(ratio: float) -> int:
    """int(ceil(ratio)) for a step count, saturating instead of overflowing on huge or infinite ratios."""
    return int(math.ceil(ratio)) if ratio < _MAX_COUNT else _MAX_COUNT

# Lab-frame bases of the named conventions: beam, fast, slow, normal, 2theta axis, polarization, spindle.
CONVENTIONS = {
    "ADXV": dict(beam=(0, 0, 1), fdet=(1, 0, 0), sdet=(0, -1, 0), odet=(0, 0, 1),
                 twotheta=(-1, 0, 0), polar=(1, 0, 0), spindle=(1, 0, 0), pivot="BEAM"),
    "MOSFLM": dict(beam=(1, 0, 0), fdet=(0, 0, 1), sdet=(0, -1, 0), odet=(1, 0, 0),
                   twotheta=(0, 0, -1), polar=(0, 0, 1), spindle=(0, 0, 1), pivot="BEAM"),
    "XDS": dict(beam=(0, 0, 1), fdet=(1, 0, 0), sdet=(0, 1, 0), odet=(0, 0, 1),
                twotheta=(1, 0, 0), polar=(1, 0, 0), spindle=(1, 0, 0), pivot="SAMPLE"),
    "DIALS": dict(beam=(0, 0, 1), fdet=(1, 0, 0), sdet=(0, 1, 0), odet=(0, 0, 1),
                  twotheta=(0, 1, 0), polar=(0, 1, 0), spindle=(0, 1, 0), pivot="SAMPLE"),
}
CONVENTIONS["DENZO"] = CONVENTIONS["MOSFLM"]


def auto_steps(count: int, span: float, step: float, *, span_for_count_only: float, half_for_span_only: bool = False):
    """nanoBragg's rule filling in whichever of (count, range, step) the user left unset.

    Unset values are <= 0 (count) or < 0 (range); ``span_for_count_only`` is
    the range used when only a count was given.  The detector thickness rule
    differs in one branch (range only -> two steps of half the range).
    """
    if count <= 0:
        if span < 0.0:
            if step <= 0.0:
                return 1, 0.0, 0.0
            return 2, step, step
        if step <= 0.0:
            return (2, span, span / 2) if half_for_span_only else (2, span, span)
        return _ceil_count(span / step), span, step
    if span < 0.0:
        if step <= 0.0:
            return count, span_for_count_only, span_for_count_only / count
        return 2, step, step
    if step <= 0.0:
        count = max(count, 2)
        return count, span, span / (count - 1)
    return count, span, step


def phi_steps_of(s):
    """nanoBragg's phi rule (it differs from auto_steps in the count-only and range+count cases)."""
    phisteps, osc, phistep = s.phisteps, s.osc, s.phistep
    if phisteps < 0:
        if osc < 0.0:
            if phistep <= 0.0:
                return 1, 0.0, 0.0
            return 2, phistep, phistep
        if phistep <= 0.0:
            return 2, osc, osc / 2.0
        return _ceil_count(osc / phistep), osc, phistep
    phisteps = max(phisteps, 1)
    if osc < 0.0:
        if phistep <= 0.0:
            osc = 1.0 / RTD
            return phisteps, osc, osc / phisteps
        return 2, phistep, phistep
    if phistep < 0.0:
        return phisteps, osc, osc / phisteps
    return phisteps, osc, phistep


def _nonzero_vector(vector, flag: str) -> np.ndarray:
    u, norm = unit(vector)
    if norm == 0.0:
        raise InputError(f"{flag}: zero-length vector")
    return u


class Log(list):
    """A log that keeps its lines (where the caller gives none)."""

    def __call__(self, line: str = ""):
        self.append(line)


def build_simulation(s, log=None, workdir: str = ".") -> Simulation:
    """Models for a parsed nanoBragg command line (``flags.Settings``).

    ``log`` (a callable taking one line) receives what nanoBragg prints while
    setting up.  ``workdir`` is where Fdump.bin is looked for and written.
    """
    log = log or Log()
    validate_settings(s)
    budget = Budget.of(s)
    pixel_size = s.pixel_size
    detsize_f = pixel_size * s.fpixels if s.fpixels else s.detsize_f
    detsize_s = pixel_size * s.spixels if s.spixels else s.detsize_s
    fpixels = _ceil_count(detsize_f / pixel_size - 0.5)
    spixels = _ceil_count(detsize_s / pixel_size - 0.5)
    if fpixels <= 0 or spixels <= 0:
        raise InputError("-detpixels/-detsize: detector has no pixels (%g x %g m of %g m pixels)"
                         % (detsize_f, detsize_s, pixel_size))
    budget.check_memory(float(fpixels) * spixels * BYTES_PER_PIXEL, "-detpixels",
                        "a %dx%d pixel detector" % (fpixels, spixels))

    fluence, sample_y, sample_z = s.fluence, s.sample_y, s.sample_z
    if s.flux != 0.0 and s.exposure > 0.0 and s.beamsize >= 0:
        fluence = s.flux * s.exposure / s.beamsize / s.beamsize
    if s.beamsize >= 0:
        if s.beamsize < sample_y:
            log("WARNING: clipping sample (%g m high) with beam (%g m)" % (sample_y, s.beamsize))
            sample_y = s.beamsize
        if s.beamsize < sample_z:
            log("WARNING: clipping sample (%g m wide) with beam (%g m)" % (sample_z, s.beamsize))
            sample_z = s.beamsize

    detector = build_detector(s, log, pixel_size, fpixels, spixels, detsize_f, detsize_s)
    validate_detector(s, detector)
    roi = validate_roi(s, fpixels, spixels)
    s, file_sf = _read_structure_factor_file(s, log, detector)
    crystal = _build_crystal(s, log, sample_y, sample_z)
    oversample = _choose_oversample(s, log, crystal, detector, budget)
    sources = None
    if s.sourcefilename is not None:
        sources = _read_sources(s.sourcefilename, detector.beam_vector, s.source_distance, s.lambda0)
    _check_work(s, budget, detector, roi, (oversample, _xtalsize_max(crystal)), sources)

    structure_factors, new_dump = _load_structure_factors(s, log, crystal, workdir, budget, file_sf)
    goniometer = _build_goniometer(s, log, detector)
    beam = _build_beam(s, log, detector, fluence, sources)
    mask = _fit_mask(s, log, fpixels, spixels)
    sampling = Sampling(oversample=max(oversample, 1), oversample_thick=bool(s.oversample_thick),
                        oversample_polar=bool(s.oversample_polar), oversample_omega=bool(s.oversample_omega),
                        roi=roi, mask=mask, dmin=s.dmin, water_size=s.water_size)
    sim = Simulation(detector, beam, crystal, goniometer, structure_factors, sampling, c_parity=bool(s.c_parity))
    _log_summary(s, log, sim)
    if new_dump is not None:  # only once everything above was accepted
        _write_dump(s, log, workdir, new_dump)
    return sim


def _fit_mask(s, log, fpixels, spixels):
    """The -mask pixels for the detector (None without -mask)."""
    mask = s.mask
    if mask is not None and mask.shape != (spixels, fpixels):
        if mask.size < fpixels * spixels:
            raise InputError(f"-mask: '{s.maskfilename}' has {mask.shape[1]}x{mask.shape[0]} pixels, fewer than "
                             f"the {fpixels}x{spixels} detector")
        # nanoBragg indexes the mask's pixels in raster order with the detector's own width
        log("WARNING: mask %s is %dx%d pixels but the detector is %dx%d: using its first %d values in raster order"
            % (s.maskfilename, mask.shape[1], mask.shape[0], fpixels, spixels, fpixels * spixels))
        mask = mask.reshape(-1)[:fpixels * spixels].reshape(spixels, fpixels)
    return mask


def _choose_oversample(s, log, crystal, detector, budget) -> int:
    """-oversample, or nanoBragg's automatic choice (3 x crystal size / reciprocal pixel size), bounded."""
    xtalsize_max = _xtalsize_max(crystal)
    reciprocal_pixel_size = s.lambda0 * detector.distance / detector.pixel_size
    ratio = float(3.0 * xtalsize_max) / float(reciprocal_pixel_size) if reciprocal_pixel_size else math.inf
    if not math.isfinite(ratio):
        raise InputError("-oversample: automatic oversampling is undefined for this geometry "
                         "(crystal %g um, distance %g m): give -oversample" % (xtalsize_max * 1e6, detector.distance))
    recommended = max(_ceil_count(ratio), 1)
    oversample = s.oversample
    if oversample <= 0:
        oversample = recommended
        if float(oversample) ** 2 > budget.max_work:
            raise InputError("-oversample: automatic oversampling chose %d for a %g um crystal %g mm away: "
                             "give -oversample" % (oversample, xtalsize_max * 1e6, detector.distance * 1e3))
        log("auto-selected %d-fold oversampling" % oversample)
    if oversample < recommended:
        log("WARNING: maximum dimension of sample is %g A" % (xtalsize_max * 1e10))
        log("         but reciprocal pixel size is %g A" % (reciprocal_pixel_size * 1e10))
        log("         intensity may vary significantly across a pixel!")
        log("         recommend -oversample %d to work around this" % recommended)
    return oversample


def _xtalsize_max(crystal) -> float:
    return max(np.linalg.norm(crystal.a) * crystal.Na, np.linalg.norm(crystal.b) * crystal.Nb,
               np.linalg.norm(crystal.c) * crystal.Nc)


def _check_work(s, budget, detector, roi, oversampling, sources) -> None:
    """Refuse, before anything big is allocated, a render over the --max-work limit.

    ``oversampling``: (sub-pixels per pixel edge, largest crystal dimension in m).
    """
    oversample, xtalsize = oversampling
    xmin, xmax, ymin, ymax = roi
    phisteps, domains = phi_steps_of(s)[0], _mosaic_domains(s)[0]
    pixels = (min(xmax, detector.fpixels - 1) - xmin + 1) * (min(ymax, detector.spixels - 1) - ymin + 1)
    if sources is not None:
        n_sources, source_cause = len(sources), "-sourcefile"
    else:
        steps = [steps[0] for steps in _source_steps(s)]
        n_sources, source_cause = math.prod(steps), "-hdivsteps/-vdivsteps/-dispsteps"
    if s.oversample > 0:
        subpixel_cause = "-oversample"
    else:
        subpixel_cause = ("-oversample: automatic oversampling chose %d for a %g um crystal: give -oversample"
                          % (oversample, xtalsize * 1e6))
    budget.check_work({
        "pixels": (max(pixels, 1), "-detpixels/-roi"),
        "sensor layers": (detector.thicksteps, "-detector_thicksteps"),
        "subpixels": (float(oversample) ** 2, subpixel_cause),
        "sources": (n_sources, source_cause),
        "phi steps": (phisteps, "-phisteps/-osc/-phistep"),
        "mosaic domains": (domains, "-mosaic_domains"),
    })
    walked = (s.trace_pixel is not None) + (0 if not s.printout else 1 if s.printout_fpixel >= 0 else max(pixels, 1))
    if walked:  # -trace_pixel and -printout walk each of their pixels' samples in Python: ~1e4 x the cost
        cause = "-printout/-printout_pixel/-trace_pixel"
        budget.check_work({"traced pixels": (walked, cause), "Python cost per sample": (1e4, cause),
                           "samples per pixel": (float(oversample) ** 2 * detector.thicksteps * n_sources
                                                 * phisteps * domains, cause)})
    budget.check_memory(float(oversample) ** 2 * detector.thicksteps * BYTES_PER_SUBPIXEL, subpixel_cause,
                        "%d x %d sub-pixels x %d layers per pixel" % (oversample, oversample, detector.thicksteps))
    # sources and orientations are generated one by one in Python and kept per item: bound them
    # even when a one-pixel ROI keeps the work small
    items = {"-hdivsteps/-vdivsteps/-dispsteps" if sources is None else "-sourcefile": ("sources", n_sources),
             "-phisteps/-mosaic_domains": ("orientations", float(phisteps) * domains)}
    cause, (what, count) = max(items.items(), key=lambda item: item[1][1])
    budget.check_memory(count * BYTES_PER_ITEM, cause, "%.3g %s" % (count, what))


def _beam_centres(s, pixel_size, detsize_f, detsize_s) -> dict:
    """nanoBragg's stated beam centre (Xbeam, Ybeam), beam spot (Fbeam, Sbeam) and close point
    (Fclose, Sclose, Xclose, Yclose) before the detector is placed, by convention."""
    Fclose = (s.ORGX - 0.5) * pixel_size if not math.isnan(s.ORGX) else detsize_f / 2.0
    Sclose = (s.ORGY - 0.5) * pixel_size if not math.isnan(s.ORGY) else detsize_s / 2.0
    Xclose = Fclose if math.isnan(s.Xclose) else s.Xclose
    Yclose = Sclose if math.isnan(s.Yclose) else s.Yclose
    Xbeam, Ybeam, convention = s.Xbeam, s.Ybeam, s.beam_convention
    if convention == "ADXV":
        Xbeam = (detsize_f + pixel_size) / 2.0 if math.isnan(Xbeam) else Xbeam
        Ybeam = (detsize_s - pixel_size) / 2.0 if math.isnan(Ybeam) else Ybeam
        Fbeam, Sbeam = Xbeam, detsize_s - Ybeam
    elif convention in ("MOSFLM", "DENZO"):
        Xbeam = (detsize_s + pixel_size) / 2.0 if math.isnan(Xbeam) else Xbeam
        Ybeam = (detsize_f + pixel_size) / 2.0 if math.isnan(Ybeam) else Ybeam
        shift = 0.5 * pixel_size if convention == "MOSFLM" else 0.0
        Fbeam, Sbeam = Ybeam + shift, Xbeam + shift
    else:  # XDS, DIALS, CUSTOM
        Xbeam = Xclose if math.isnan(Xbeam) else Xbeam
        Ybeam = Yclose if math.isnan(Ybeam) else Ybeam
        Fbeam, Sbeam = Xbeam, Ybeam
        if convention == "CUSTOM":
            Fclose, Sclose = Xbeam, Ybeam
    return dict(Xbeam=Xbeam, Ybeam=Ybeam, Fbeam=Fbeam, Sbeam=Sbeam, Fclose=Fclose, Sclose=Sclose, Xclose=Xclose,
                Yclose=Yclose)


@dataclasses.dataclass
class DetectorStart:
    """The detector before it is placed, as nanoBragg's setup derives it: the convention's unit axes
    and pivot, the beam spot and close point on the unrotated detector (m), and the distances."""

    convention: str
    pivot: str
    beam: np.ndarray
    fdet: np.ndarray
    sdet: np.ndarray
    odet: np.ndarray
    twotheta_axis: np.ndarray
    centres: dict               # Xbeam, Ybeam, Fbeam, Sbeam, Fclose, Sclose, Xclose, Yclose
    ratio: float                # beam . rotated normal
    close_distance: float
    distance: float
    user_pix0: bool


def detector_start(s, pixel_size, detsize_f, detsize_s, log) -> DetectorStart:
    """:class:`DetectorStart` of parsed settings (used by the setup and by the trace's setup lines)."""
    pivot, convention = s.detector_pivot, s.beam_convention
    vectors = dict(beam=s.beam_vector, fdet=s.fdet_vector, sdet=s.sdet_vector, odet=s.odet_vector,
                   twotheta=s.twotheta_axis)
    if convention in CONVENTIONS:
        vectors = {k: CONVENTIONS[convention][k] for k in vectors}
        pivot = CONVENTIONS[convention]["pivot"]
    beam = _nonzero_vector(vectors["beam"], "-beam_vector")
    fdet = _nonzero_vector(vectors["fdet"], "-fdet_vector")
    sdet = _nonzero_vector(vectors["sdet"], "-sdet_vector")
    odet, odet_norm = unit(vectors["odet"])
    if odet_norm != 1.0:
        log("WARNING: auto-generating odet_vector")
        odet, _ = unit(np.cross(fdet, sdet))
    ratio = float(beam @ rotate_xyz(odet, s.detector_rotx, s.detector_roty, s.detector_rotz))
    if ratio == 0.0:
        ratio = DBL_MIN
    close_distance = abs(ratio * s.distance) if math.isnan(s.close_distance) else s.close_distance
    return DetectorStart(convention, pivot, beam, fdet, sdet, odet, np.asarray(vectors["twotheta"], dtype=float),
                         _beam_centres(s, pixel_size, detsize_f, detsize_s), ratio, close_distance,
                         close_distance / ratio, s.pix0_vector is not None and not s.c_parity)


def build_detector(s, log, pixel_size, fpixels, spixels, detsize_f, detsize_s) -> Detector:
    start = detector_start(s, pixel_size, detsize_f, detsize_s, log)
    c = start.centres
    Fbeam, Sbeam, Fclose, Sclose = c["Fbeam"], c["Sbeam"], c["Fclose"], c["Sclose"]
    convention, pivot, beam = start.convention, start.pivot, start.beam
    fdet, sdet, odet, twotheta_axis = start.fdet, start.sdet, start.odet, start.twotheta_axis
    log("%s convention selected." % convention.lower())
    rot = (s.detector_rotx, s.detector_roty, s.detector_rotz)
    ratio, close_distance, distance, user_pix0 = start.ratio, start.close_distance, start.distance, start.user_pix0
    if pivot == "SAMPLE" and not user_pix0:
        log("pivoting detector around sample")
        pix0 = -Fclose * fdet - Sclose * sdet + close_distance * odet
        pix0 = rotate_axis(rotate_xyz(pix0, *rot), twotheta_axis, s.detector_twotheta)
    fdet, sdet, odet = (rotate_axis(rotate_xyz(v, *rot), twotheta_axis, s.detector_twotheta)
                        for v in (fdet, sdet, odet))
    if user_pix0:
        log("detector origin from -pix0_vector")
        pix0 = np.asarray(s.pix0_vector, dtype=float)
    elif pivot == "BEAM":
        log("pivoting detector around direct beam spot")
        pix0 = -Fbeam * fdet - Sbeam * sdet + distance * beam

    Fclose = -float(pix0 @ fdet)
    Sclose = -float(pix0 @ sdet)
    close_distance = float(pix0 @ odet)
    to_beam = close_distance / ratio * beam - pix0
    Fbeam, Sbeam = float(fdet @ to_beam), float(sdet @ to_beam)
    distance = close_distance / ratio
    dials_origin = 1000.0 * np.array([pix0[2], pix0[1], -pix0[0]])
    log("XDS incident beam: %g %g %g" % (beam @ fdet, beam @ sdet, beam @ odet))

    thicksteps, thick, thickstep, mu = sensor_layers(s.detector_thicksteps, s.detector_thick,
                                                     s.detector_thickstep, s.detector_mu, log)
    return Detector(pix0=pix0, fdet=fdet, sdet=sdet, odet=odet, pixel_size=pixel_size, fpixels=fpixels,
                    spixels=spixels, distance=distance, close_distance=close_distance, beam_vector=beam,
                    curved=bool(s.curved_detector), point_pixel=bool(s.point_pixel), thickness=thick,
                    thicksteps=thicksteps, thickstep=thickstep, mu=mu, Xbeam=c["Xbeam"], Ybeam=c["Ybeam"],
                    Fbeam=Fbeam, Sbeam=Sbeam, Xclose=c["Xclose"], Yclose=c["Yclose"], Fclose=Fclose, Sclose=Sclose,
                    ORGX=Fclose / pixel_size + 0.5, ORGY=Sclose / pixel_size + 0.5, dials_origin_mm=dials_origin,
                    detsize_f=detsize_f, detsize_s=detsize_s, twotheta=s.detector_twotheta,
                    convention=convention, pivot=pivot)


def sensor_layers(steps: int, thickness: float, step: float, mu: float, log):
    """(layers, thickness, layer thickness, mu) of the sensor by nanoBragg's rules (unset values < 0;
    mu defaults to 1/thickness).  Lengths in m."""
    thicksteps, thick, thickstep = auto_steps(steps, thickness, step, span_for_count_only=0.5e-6,
                                              half_for_span_only=True)
    if thick > 0.0 and mu < 0.0:
        mu = 1.0 / thick
        log("WARNING: setting detector attenuation depth to %g m" % mu)
    if thick <= 0.0 or thickstep <= 0.0 or thicksteps <= 0:
        thicksteps, thick, thickstep = 1, 0.0, 0.0
    return thicksteps, thick, thickstep, mu


def _clamped_angle(sin_value, cos_value):
    sin_value = min(max(sin_value, -1.0), 1.0)
    if cos_value * cos_value > 1.0:
        cos_value = 1.0
    return math.atan2(sin_value, cos_value)


def reciprocal_from_cell(s, log):
    """Reciprocal vectors (1/Angstrom) in nanoBragg's default orientation for -cell a b c al be ga."""
    a = s.cell_a
    b = s.cell_b if s.cell_b > 0.0 else a
    c = s.cell_c if s.cell_c > 0.0 else a
    alpha, beta, gamma = (x if x > 0.0 else math.pi / 2 for x in (s.alpha, s.beta, s.gamma))
    aavg = (alpha + beta + gamma) / 2
    skew = math.sin(aavg) * math.sin(aavg - alpha) * math.sin(aavg - beta) * math.sin(aavg - gamma)
    if not skew > 0.0:  # nanoBragg takes |skew| and renders a meaningless cell; we refuse it
        raise InputError("-cell: impossible unit cell angles %g %g %g (no such parallelepiped)"
                         % (alpha * RTD, beta * RTD, gamma * RTD))
    V_cell = 2.0 * a * b * c * math.sqrt(skew)
    if not 0.0 < V_cell < math.inf:
        raise InputError("-cell: the cell volume %g A^3 is not a usable number (edges %g %g %g A)" % (V_cell, a, b, c))
    V_star = 1.0 / V_cell
    a_star = b * c * math.sin(alpha) * V_star
    b_star = c * a * math.sin(beta) * V_star
    c_star = a * b * math.sin(gamma) * V_star
    cos_as = (math.cos(beta) * math.cos(gamma) - math.cos(alpha)) / (math.sin(beta) * math.sin(gamma))
    cos_bs = (math.cos(gamma) * math.cos(alpha) - math.cos(beta)) / (math.sin(gamma) * math.sin(alpha))
    cos_gs = (math.cos(alpha) * math.cos(beta) - math.cos(gamma)) / (math.sin(alpha) * math.sin(beta))
    sin_gs = min(max(c * V_star / a_star / b_star, -1.0), 1.0)
    if cos_gs * cos_gs > 1.0:
        cos_gs = 1.0
    if cos_bs * cos_bs > 1.0:
        cos_bs = 1.0
    if cos_as * cos_as > 1.0:
        cos_as = 1.0
    vectors = (np.array([a_star, 0.0, 0.0]),
               np.array([b_star * cos_gs, b_star * sin_gs, 0.0]),
               np.array([c_star * cos_bs, c_star * (cos_as - cos_bs * cos_gs) / sin_gs,
                         c_star * V_cell / (a * b * c * sin_gs)]))
    return vectors, (a, b, c), V_cell


def _read_text_lines(flag, path) -> list[str]:
    """A text input file's lines; any bytes are read (Latin-1), a missing file or a directory refused."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise InputError(f"{flag}: cannot read '{path}' ({exc.strerror})") from None
    return data.decode("latin-1").splitlines()


def _read_matrix(path, lambda0):
    numbers = []
    for number, line in enumerate(_read_text_lines("-mat", path), start=1):
        for token in line.split():
            if len(numbers) == 9:
                break
            numbers.append(finite_token(f"-mat: '{path}' line {number}", token))
    if len(numbers) < 9:
        raise InputError(f"-mat: '{path}' holds fewer than 9 numbers")
    m = np.array(numbers).reshape(3, 3)
    # rows are x, y, z components; columns a*, b*, c* (with the wavelength folded in)
    return tuple(m[:, i] * (1e-10 / lambda0) for i in range(3))


def cell_vectors(stars, user_lengths=None, user_V=None):
    """Real and reciprocal cell vectors (Angstrom, 1/Angstrom) and the volume from reciprocal vectors,
    nanoBragg's way: real from reciprocal cross products, rescaled to -cell's lengths when given."""
    a_star, b_star, c_star = stars
    bc, ca, ab = np.cross(b_star, c_star), np.cross(c_star, a_star), np.cross(a_star, b_star)
    V_star = float(a_star @ bc)
    if user_lengths is not None:
        bc, ca, ab = (v * (length / user_V) / (np.linalg.norm(v) or 1.0)
                      for v, length in zip((bc, ca, ab), user_lengths))
        V_star = 1.0 / user_V
    if V_star == 0.0 or not math.isfinite(V_star):
        raise InputError("-mat: reciprocal cell vectors are degenerate (zero volume)")
    V_cell = 1.0 / V_star
    a, b, c = bc * V_cell, ca * V_cell, ab * V_cell
    return (a, b, c), (np.cross(b, c) * V_star, np.cross(c, a) * V_star, np.cross(a, b) * V_star), V_cell


def _build_crystal(s, log, sample_y, sample_z):
    if s.matfilename is None and not (s.user_cell and s.cell_a > 0.0):
        raise InputError("no unit cell: give -mat FILE or -cell a b c alpha beta gamma")
    user_lengths = None
    if s.user_cell and s.cell_a > 0.0:
        stars, user_lengths, user_V = reciprocal_from_cell(s, log)
    if s.matfilename is not None:
        stars = _read_matrix(s.matfilename, s.lambda0)
    misset = s.misset_angles
    if s.misset_mode == "random":
        umat = rng.mosaic_rotation_umat(90.0, rng.Ran1Stream(s.misset_seed))
        misset = rng.umat_to_misset(umat)
        log("random orientation misset angles: %f %f %f deg" % tuple(m * RTD for m in misset))
    if s.misset_mode is not None:
        stars = tuple(rotate_xyz(v, *misset) for v in stars)
    (a, b, c), (a_star, b_star, c_star), V_cell = cell_vectors(stars, user_lengths,
                                                                None if user_lengths is None else user_V)
    _log_cell(log, (a, b, c), (a_star, b_star, c_star), V_cell)

    lengths = [np.linalg.norm(v) * 1e-10 for v in (a, b, c)]
    # a crystal size (m) overrides the cell count along that axis; at least one cell each way
    counts = [math.ceil(size / length) if size > 0 else float(n)
              for size, length, n in zip((s.sample_x, sample_y, sample_z), lengths, (s.Na, s.Nb, s.Nc))]
    Na, Nb, Nc = (max(float(n), 1.0) for n in counts)
    log("crystal is %g x %g x %g microns" % tuple(L * N * 1e6 for L, N in zip(lengths, (Na, Nb, Nc))))
    crystal = Crystal(a=a * 1e-10, b=b * 1e-10, c=c * 1e-10, a_star=a_star, b_star=b_star, c_star=c_star,
                      Na=Na, Nb=Nb, Nc=Nc, shape=s.xtal_shape, fudge=s.fudge, V_cell=V_cell)
    return crystal


def _log_cell(log, real, recip, V_cell):
    def angles(u, v, w):
        cos = lambda x, y: float(x @ y) / np.linalg.norm(x) / np.linalg.norm(y)
        return tuple(math.acos(min(max(cos(x, y), -1.0), 1.0)) * RTD for x, y in ((v, w), (u, w), (u, v)))
    log("Unit Cell: %g %g %g %g %g %g" % (*[np.linalg.norm(v) for v in real], *angles(*real)))
    log("Recp Cell: %g %g %g %g %g %g" % (*[np.linalg.norm(v) for v in recip], *angles(*recip)))
    log("volume = %g A^3" % V_cell)
    for title, names, vecs in (("real-space cell vectors (Angstrom):", ("a", "b", "c"), real),
                               ("reciprocal-space cell vectors (Angstrom^-1):", ("a_star", "b_star", "c_star"), recip)):
        log(title)
        log("     %-10s  %-10s  %-10s" % names)
        for axis, label in enumerate("XYZ"):
            log("%s: %11.8f %11.8f %11.8f" % (label, vecs[0][axis], vecs[1][axis], vecs[2][axis]))


def detector_d_min(detector: Detector, wavelength: float) -> float:
    """Finest resolution (Angstrom) on a flat detector: d at its corner farthest from the beam."""
    px = detector.pixel_size
    corners = [detector.pix0 + f * px * detector.fdet + s * px * detector.sdet
               for f in (0, detector.fpixels) for s in (0, detector.spixels)]
    cos_2theta = min(float(unit(corner)[0] @ detector.beam_vector) for corner in corners)
    sin_theta = math.sqrt(max(0.5 * (1.0 - cos_2theta), 1e-12))
    return wavelength * 1e10 / (2.0 * sin_theta)


def _read_structure_factor_file(s, log, detector):
    """(settings, structure factors) for -hkl MTZ / mmCIF / PDB through gemmi, (s, None) for text lists.

    A model's F_calc reaches the detector's corner.  With neither -cell nor -mat, the
    returned settings carry the file's cell as -cell.
    """
    if s.hklfilename is None:
        return s, None
    from ..io import reflections  # gemmi only when such a file is given
    kind = reflections.file_format(s.hklfilename)
    if kind == reflections.TEXT:
        if s.mtz_column is not None:
            raise InputError(f"--mtz-column: -hkl {s.hklfilename} is a text list, not an MTZ or mmCIF file")
        return s, None
    # the shortest wavelength of the dispersion reaches furthest; 2% margin for curved or tilted pixels
    d_min = 0.98 * detector_d_min(detector, s.lambda0 * (1.0 - 0.5 * s.dispersion))
    result = reflections.read_structure_factors(s.hklfilename, d_min=d_min, column=s.mtz_column,
                                                default_F=s.default_F)
    for line in result.warnings:
        log(line)
    log("read %d P1 reflections (%s, %s) from %s %s" % (result.grid.count, result.source, result.spacegroup,
                                                         kind, s.hklfilename))
    if s.matfilename is None and not (s.user_cell and s.cell_a > 0.0):
        s = _with_file_cell(s, log, result)
    return s, result


def _with_file_cell(s, log, file_sf):
    """Settings with -cell taken from the structure-factor file (no -cell and no -mat given)."""
    a, b, c, alpha, beta, gamma = file_sf.cell
    log("unit cell from %s: %g %g %g %g %g %g" % (s.hklfilename, *file_sf.cell))
    return dataclasses.replace(s, user_cell=True, cell_a=a, cell_b=b, cell_c=c, alpha=alpha / RTD,
                               beta=beta / RTD, gamma=gamma / RTD)


def _compare_cells(log, crystal, file_sf, length_tol=0.002, angle_tol=0.1):
    """Say so when the -cell/-mat cell and the structure-factor file's cell differ (0.2%, 0.1 deg)."""
    vectors = [np.asarray(v) * 1e10 for v in (crystal.a, crystal.b, crystal.c)]
    lengths = [float(np.linalg.norm(v)) for v in vectors]
    angles = [math.degrees(math.acos(max(-1.0, min(1.0, float(u @ w) / (np.linalg.norm(u) * np.linalg.norm(w))))))
              for u, w in ((vectors[1], vectors[2]), (vectors[0], vectors[2]), (vectors[0], vectors[1]))]
    ours = lengths + angles
    theirs = list(file_sf.cell)
    if (any(abs(x - y) > length_tol * y for x, y in zip(ours[:3], theirs[:3]))
            or any(abs(x - y) > angle_tol for x, y in zip(ours[3:], theirs[3:]))):
        log("WARNING: the unit cell %s differs from the cell of the -hkl file %s"
            % (" ".join("%g" % v for v in ours), " ".join("%g" % v for v in theirs)))


def _load_structure_factors(s, log, crystal, workdir, budget, file_sf=None):
    """(StructureFactors, grid to cache in the dump file or None): the dump is written by the caller,
    after every other input was accepted."""
    interpolate = s.interpolate
    if interpolate > 1:
        # nanoBragg decides before -xtalsize and the N >= 1 clamp are applied
        interpolate = int(s.Na <= 2 or s.Nb <= 2 or s.Nc <= 2)
        log("auto-selected tricubic interpolation of structure factors" if interpolate
            else "auto-selected no interpolation")
    dump_path = os.path.join(workdir, s.dumpfilename)
    grid = new_dump = None
    max_bytes = budget.max_memory / 2   # the grid and the renderer's copy of it
    if s.hklfilename is None:
        if os.path.isfile(dump_path):
            log("reading Fs from %s" % s.dumpfilename)
            grid = _with_flag("-dump", hkl.read_fdump, dump_path, max_bytes=max_bytes)
        elif s.default_F == 0.0:
            raise InputError("no structure factors: give -hkl FILE, keep an Fdump.bin, or set -default_F")
    else:
        if not os.path.exists(s.hklfilename):
            raise InputError(f"-hkl: cannot open '{s.hklfilename}'")
        if file_sf is not None:
            _compare_cells(log, crystal, file_sf)
            grid, warnings = file_sf.grid, []
        else:
            grid, warnings = _with_flag("-hkl", hkl.read_hkl_text, s.hklfilename, s.default_F,
                                        max_bytes=max_bytes)
        _with_flag("-hkl", hkl.refuse_unusable, s.hklfilename, grid)
        for line in warnings:
            log(line)
        new_dump = grid
    if grid is None or grid.count == 0:
        interpolate = 0
    if interpolate:  # refused here, before the dump file and the render allocate anything
        budget.check_memory(float(grid.F.size) * 8 * TRICUBIC_GRID_FACTOR, "-interpolate",
                            "the tricubic table of a %d x %d x %d grid" % grid.F.shape)
    return StructureFactors(grid=grid, default_F=s.default_F, interpolate=bool(interpolate)), new_dump


def _with_flag(flag, reader, *args, **kwargs):
    """Call a file reader; its InputError (which names the file) gets the flag in front."""
    try:
        return reader(*args, **kwargs)
    except InputError as exc:
        raise InputError(f"{flag}: {exc}") from None


def _write_dump(s, log, workdir, grid) -> None:
    try:
        hkl.write_fdump(os.path.join(workdir, s.dumpfilename), grid)
        log("writing dump file for next time: %s" % s.dumpfilename)
    except OSError:
        log("WARNING: unable to open dump file: %s" % s.dumpfilename)


def _mosaic_domains(s):
    """nanoBragg's rule for (mosaic domains, spread) and the warning it prints (or None)."""
    domains, spread = s.mosaic_domains, s.mosaic_spread
    if domains <= 0:
        if spread < 0.0:
            return 1, 0.0, None
        if spread == 0.0:
            return 1, spread, None
        return 10, spread, "WARNING: finite mosaicity with only one domain! upping to 10 mosaic domains"
    if spread < 0.0:
        return 1, 0.0, "WARNING: no mosaic spread specified.  setting mosaic_domains = 1"
    if spread == 0.0:
        return 1, spread, "WARNING: zero mosaic spread specified.  setting mosaic_domains = 1"
    return domains, spread, None


def _build_goniometer(s, log, detector) -> Goniometer:
    phisteps, osc, phistep = phi_steps_of(s)
    domains, spread, warning = _mosaic_domains(s)
    if warning:
        log(warning)
    umats = mosaic_umats(domains, spread, s.mosaic_seed)  # nanoBragg keeps domain 0 exactly aligned
    spindle = _nonzero_vector(s.spindle_vector if detector.convention == "CUSTOM"
                              else CONVENTIONS[detector.convention]["spindle"], "-spindle_axis")
    return Goniometer(spindle=spindle, phi0=s.phi0, phistep=phistep, phisteps=phisteps, osc=osc,
                      mosaic_spread=spread, mosaic_umats=umats)


def _read_sources(path, beam_vector, source_distance, lambda0):
    """Source file: columns X Y Z weight lambda (missing -> along -beam at source_distance, 1, lambda0)."""
    delimiters = " \t,;:!"
    rows = []
    for number, line in enumerate(_read_text_lines("-sourcefile", path), start=1):
        tokens = [t for t in _split_any(line, delimiters) if t]
        if not tokens:
            continue
        values = [c_atof(t) for t in tokens[:5]]
        if not all(math.isfinite(v) for v in values):
            raise InputError(f"-sourcefile: '{path}' line {number}: values must be finite numbers")
        if len(values) > 3 and values[3] < 0.0:
            raise InputError(f"-sourcefile: '{path}' line {number}: negative weight {values[3]:g}")
        if len(values) > 4 and values[4] <= 0.0:
            raise InputError(f"-sourcefile: '{path}' line {number}: wavelength must be positive, got {values[4]:g}")
        rows.append(values + [math.nan] * (5 - len(values)))
    if not rows:
        raise InputError(f"-sourcefile: no sources in '{path}'")
    table = np.array(rows, dtype=float)
    defaults = [-source_distance * beam_vector[0], -source_distance * beam_vector[1],
                -source_distance * beam_vector[2], 1.0, lambda0]
    for col, default in enumerate(defaults):
        table[np.isnan(table[:, col]), col] = default
    return table


def _split_any(text, delimiters):
    for d in delimiters[1:]:
        text = text.replace(d, delimiters[0])
    return text.split()


def _source_steps(s):
    """(count, range, step) of horizontal divergence, vertical divergence and dispersion."""
    steps = []
    for count, span, step in ((s.hdivsteps, s.hdivrange, s.hdivstep), (s.vdivsteps, s.vdivrange, s.vdivstep),
                              (s.dispsteps, s.dispersion, s.dispstep)):
        count, span, step = auto_steps(count, span, step, span_for_count_only=1.0)
        steps.append((1, 0.0, 0.0) if span <= 0.0 or step <= 0.0 or count <= 0 else (count, span, step))
    return steps


def _build_beam(s, log, detector, fluence, table=None) -> Beam:
    beam_vector = detector.beam_vector
    polar_vector = _nonzero_vector(s.polar_vector if detector.convention == "CUSTOM"
                                   else CONVENTIONS[detector.convention]["polar"], "-polar_vector")
    vert_vector, _ = unit(np.cross(beam_vector, polar_vector))
    if table is not None:
        positions, weights, wavelengths = table[:, :3], table[:, 3], table[:, 4]
    else:
        (hdivsteps, hdivrange, hdivstep), (vdivsteps, vdivrange, vdivstep), (dispsteps, dispersion, dispstep) = \
            _source_steps(s)
        positions, wavelengths = [], []
        for hdiv_tic in range(hdivsteps):
            for vdiv_tic in range(vdivsteps):
                hdiv = hdivstep * hdiv_tic - hdivrange / 2.0
                vdiv = vdivstep * vdiv_tic - vdivrange / 2.0
                # elliptical trimming of the divergence grid (a zero range gives 0/0 = nan: kept)
                with np.errstate(divide="ignore", invalid="ignore"):
                    test = np.float64(hdiv * hdiv - hdivstep * hdivstep / 4.0 * (1 - hdivsteps % 2)) / hdivrange / hdivrange
                    test += np.float64(vdiv * vdiv - vdivstep * vdivstep / 4.0 * (1 - vdivsteps % 2)) / vdivrange / vdivrange
                if s.round_div and test * 4.0 > 1.1:
                    continue
                log("divergence deviation: %g %g" % (hdiv, vdiv))
                start = -s.source_distance * beam_vector
                direction = rotate_axis(rotate_axis(start, polar_vector, vdiv), vert_vector, hdiv)
                for disp_tic in range(dispsteps):
                    positions.append(direction)
                    wavelengths.append(s.lambda0 * (1.0 + dispstep * disp_tic - dispersion / 2.0))
        positions = np.array(positions).reshape(-1, 3)
        wavelengths = np.array(wavelengths)
        weights = np.full(len(wavelengths), 1.0 / max(len(wavelengths), 1))
    if not len(wavelengths):
        raise InputError("-divsteps/-hdivsteps/-vdivsteps: the elliptical trimming of the divergence grid (-round_div) "
                         "leaves no source: give more steps or -square_div")
    log("  created a total of %d sources:" % len(wavelengths))
    for p, w, lam in zip(positions, weights, wavelengths):
        log("%g %g %g   %g %g" % (p[0], p[1], p[2], w, lam))
    norms = np.linalg.norm(positions, axis=1)
    directions = np.divide(positions, norms[:, None], out=np.zeros_like(positions), where=norms[:, None] != 0)
    return Beam(directions=directions, wavelengths=wavelengths, weights=weights, lambda0=s.lambda0,
                fluence=fluence, polarization=s.polarization, nopolar=bool(s.nopolar),
                polar_vector=polar_vector, beam_vector=beam_vector)


def _log_summary(s, log, sim: Simulation):
    d, b, c, g, smp = sim.detector, sim.beam, sim.crystal, sim.goniometer, sim.sampling
    log("  %d initialized hkls (all others =%g)" % (sim.structure_factors.count, sim.structure_factors.default_F))
    shape_name = {"ROUND": "ellipsoidal", "SQUARE": "parallelpiped", "GAUSS": "gaussian", "TOPHAT": "tophat-spot"}
    log("  %s xtal: %.0fx%.0fx%.0f cells" % (shape_name[c.shape], c.Na, c.Nb, c.Nc))
    log("  Kahn polarization factor: %f" % b.polarization if not b.nopolar else "  polarization effect disabled")
    log("  incident fluence: %g photons/m^2" % b.fluence)
    log("  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)"
        % (d.distance, d.detsize_f, d.detsize_s, d.pixel_size, d.fpixels, d.spixels))
    log("  sensor is %g m thick in %d layers with mu= %g" % (d.thickness, d.thicksteps, d.mu))
    log("  Xbeam=%g Ybeam=%g" % (d.Xbeam, d.Ybeam))
    log("  Fbeam=%g Sbeam=%g" % (d.Fbeam, d.Sbeam))
    log("  Xclose=%g Yclose=%g" % (d.Xclose, d.Yclose))
    log("  Fclose=%g Sclose=%g" % (d.Fclose, d.Sclose))
    log("  DIRECTION_OF_DETECTOR_X-AXIS= %g %g %g" % tuple(d.fdet))
    log("  DIRECTION_OF_DETECTOR_Y-AXIS= %g %g %g" % tuple(d.sdet))
    log("  DIRECTION_OF_DETECTOR_Z-AXIS= %g %g %g" % tuple(d.odet))
    log("  INCIDENT_BEAM_DIRECTION= %g %g %g" % tuple(b.beam_vector))
    log("  spindle ROTATION_AXIS= %g %g %g" % tuple(g.spindle))
    log("  POLARIZATION_PLANE_NORMAL= %g %g %g" % tuple(np.cross(b.beam_vector, b.polar_vector)))
    log("  dials origin= %g %g %g" % tuple(d.dials_origin_mm))
    log("  roi: %d < x < %d && %d < y < %d" % smp.roi)
    log("  %d sources" % len(b.wavelengths))
    log("  %d mosaic domains over mosaic spread of %g degrees" % (len(g.mosaic_umats), g.mosaic_spread * RTD))
    log("  %d phi steps from %g to %g degrees" % (g.phisteps, g.phi0 * RTD, (g.phi0 + g.osc) * RTD))
    flags = "".join(name for name, on in ((" +thick", smp.oversample_thick), (" +polar", smp.oversample_polar),
                                          (" +omega", smp.oversample_omega)) if on)
    log("  %dx%d pixel oversample steps%s" % (smp.oversample, smp.oversample, flags))
