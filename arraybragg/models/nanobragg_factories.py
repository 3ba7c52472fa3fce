"""nanoBragg's conventions as factories of user-unit models, and the way back from lab-frame models.

:func:`nanobragg_detector` runs the same derivation as the command line
(``models.nanobragg``: conventions, pivots, rotations, two-theta, beam centres)
on values given in mm and degrees, and returns a one-panel :class:`Detector`.
:func:`conventional_axes` gives a convention's beam, polarization and spindle
directions, which belong to the beam and goniometer.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Optional

from . import checks
from .detector import Convention, Detector, Panel, Pivot
from ..io.flags import Settings
from .lab import Detector as LabDetector
from .nanobragg import CONVENTIONS, build_detector, Log, reciprocal_from_cell, cell_vectors
from .vectors import rotate_xyz

DEG = math.pi / 180.0


def conventional_axes(convention) -> dict:
    """Lab directions of a named convention: beam (propagation), polarization (E vector), spindle."""
    convention = checks.choice("convention", Convention, convention)
    if convention is Convention.CUSTOM:
        convention = Convention.MOSFLM
    base = CONVENTIONS[convention.value]
    return dict(beam=tuple(float(v) for v in base["beam"]), polarization=tuple(float(v) for v in base["polar"]),
                spindle=tuple(float(v) for v in base["spindle"]))


def nanobragg_detector(distance_mm: float, pixel_size_mm: float, size: tuple[int, int], *,
                       beam_centre_mm: Optional[tuple[float, float]] = None,
                       xbeam_ybeam_mm: Optional[tuple[float, float]] = None,
                       convention=Convention.MOSFLM, pivot=None, axes: Optional[dict] = None,
                       rotations_deg=(0.0, 0.0, 0.0),
                       twotheta_deg: float = 0.0, thickness_mm: float = 0.0, thickness_steps: int = 1,
                       attenuation_length_mm: Optional[float] = None) -> Detector:
    """One validating constructor for nanoBragg's detector geometries.

    ``beam_centre_mm`` is (fast, slow) of the direct beam from the outer corner of pixel
    (0, 0) before rotations; ``xbeam_ybeam_mm`` is the same as nanoBragg's -Xbeam/-Ybeam
    in the convention's own axes.  Give at most one (default: the panel's centre, or for CUSTOM
    the point nearest the sample).  Each named convention has nanoBragg's fixed pivot; CUSTOM
    takes ``axes`` (dict of lab vectors fast, slow, normal, beam and optionally twotheta, as
    -fdet_vector ... -twotheta_axis) and ``pivot`` (default BEAM).  Rotations
    (-detector_rotx/y/z) and two-theta in degrees.
    """
    convention = checks.choice("convention", Convention, convention)
    custom = _custom_settings(convention, pivot, axes)
    pixel = checks.positive("pixel_size_mm", pixel_size_mm) * 1e-3
    fpixels, spixels = (checks.count("size", n) for n in size)
    settings = replace(Settings(), beam_convention=convention.value, **custom,
                       distance=checks.positive("distance_mm", distance_mm) * 1e-3, pixel_size=pixel,
                       fpixels=fpixels, spixels=spixels, detsize_f=pixel * fpixels, detsize_s=pixel * spixels,
                       detector_twotheta=checks.finite("twotheta_deg", twotheta_deg) * DEG,
                       detector_thick=checks.non_negative("thickness_mm", thickness_mm) * 1e-3,
                       detector_thicksteps=checks.count("thickness_steps", thickness_steps),
                       detector_mu=-1.0 if attenuation_length_mm is None
                       else 1e3 / checks.positive("attenuation_length_mm", attenuation_length_mm))
    rx, ry, rz = checks.vector("rotations_deg", rotations_deg)
    settings = replace(settings, detector_rotx=rx * DEG, detector_roty=ry * DEG, detector_rotz=rz * DEG)
    settings = _with_beam_centre(settings, convention, pixel, beam_centre_mm, xbeam_ybeam_mm)
    lab = build_detector(settings, Log(), pixel, fpixels, spixels, settings.detsize_f, settings.detsize_s)
    return Detector((panel_from_lab(lab),), convention=convention)


def _custom_settings(convention, pivot, axes) -> dict:
    """The Settings fields of a CUSTOM geometry; a pivot other than a named convention's is refused."""
    pivot = None if pivot is None else checks.choice("pivot", Pivot, pivot)
    if convention is not Convention.CUSTOM:
        fixed = CONVENTIONS[convention.value]["pivot"]
        if axes is not None or (pivot is not None and pivot.value != fixed):
            raise checks.InputError(f"pivot/axes: the {convention.value} convention has nanoBragg's fixed axes and "
                                    f"pivot ({fixed}); give convention=CUSTOM for others")
        return {}
    names = dict(fast="fdet_vector", slow="sdet_vector", normal="odet_vector", beam="beam_vector",
                 twotheta="twotheta_axis")
    axes = dict(axes or {})
    unknown = set(axes) - set(names)
    missing = {"fast", "slow", "normal", "beam"} - set(axes)
    if unknown or missing:
        raise checks.InputError(f"axes: CUSTOM needs fast, slow, normal and beam (optional twotheta); "
                                f"missing {sorted(missing)}, unknown {sorted(unknown)}")
    fields = {names[k]: checks.vector(f"axes[{k!r}]", v) for k, v in axes.items()}
    return dict(fields, detector_pivot=(pivot or Pivot.BEAM).value)


def _with_beam_centre(settings, convention, pixel, beam_centre_mm, xbeam_ybeam_mm):
    if beam_centre_mm is not None and xbeam_ybeam_mm is not None:
        raise checks.InputError("give beam_centre_mm or xbeam_ybeam_mm, not both")
    if xbeam_ybeam_mm is not None:
        x, y = (checks.finite("xbeam_ybeam_mm", v) * 1e-3 for v in xbeam_ybeam_mm)
        return replace(settings, Xbeam=x, Ybeam=y)
    if beam_centre_mm is None:
        return settings
    f, s = (checks.finite("beam_centre_mm", v) * 1e-3 for v in beam_centre_mm)
    x, y = stated_beam_centre(convention, f, s, pixel, settings.detsize_s)
    return replace(settings, Xbeam=x, Ybeam=y)


def stated_beam_centre(convention: Convention, Fbeam: float, Sbeam: float, px: float, detsize_s: float):
    """nanoBragg's Xbeam/Ybeam (m) in a convention's axes for the beam spot at (Fbeam, Sbeam) along fast/slow
    from the corner of pixel (0, 0): the inverse of the convention's rule in ``nanobragg``."""
    if convention in (Convention.MOSFLM, Convention.DENZO):
        shift = 0.5 * px if convention is Convention.MOSFLM else 0.0
        return Sbeam - shift, Fbeam - shift
    if convention is Convention.ADXV:
        return Fbeam, detsize_s - Sbeam
    return Fbeam, Sbeam


def panel_from_lab(lab: LabDetector, name: str = "") -> Panel:
    """The user-unit panel of a lab-frame (metre) detector."""
    attenuation = None if lab.mu <= 0.0 else 1e3 / lab.mu
    return Panel(origin_mm=tuple(float(v) * 1e3 for v in lab.pix0), fast_axis=tuple(float(v) for v in lab.fdet),
                 slow_axis=tuple(float(v) for v in lab.sdet), pixel_size_mm=lab.pixel_size * 1e3,
                 size=(lab.fpixels, lab.spixels), thickness_mm=lab.thickness * 1e3,
                 thickness_steps=lab.thicksteps, attenuation_length_mm=attenuation, name=name)


def crystal_vectors_from_cell(cell, misset_deg=(0.0, 0.0, 0.0)):
    """Real-space a, b, c (Angstrom) of -cell a b c alpha beta gamma -misset x y z, as the command line has them."""
    if len(cell) != 6:
        raise checks.InputError("cell: expected (a, b, c, alpha, beta, gamma)")
    lengths = [checks.positive("cell", v) for v in cell[:3]]
    angles = [checks.positive("cell", v) * DEG for v in cell[3:]]
    settings = replace(Settings(), user_cell=True, cell_a=lengths[0], cell_b=lengths[1], cell_c=lengths[2],
                       alpha=angles[0], beta=angles[1], gamma=angles[2])
    stars, user_lengths, user_V = reciprocal_from_cell(settings, Log())
    misset = tuple(v * DEG for v in checks.vector("misset_deg", misset_deg))
    stars = tuple(rotate_xyz(v, *misset) for v in stars)
    (a, b, c), _, _ = cell_vectors(stars, user_lengths, user_V)
    return tuple(float(x) for x in a), tuple(float(x) for x in b), tuple(float(x) for x in c)
