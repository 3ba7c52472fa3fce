"""One validation layer for parsed settings, shared by the command line and the Python API.

:func:`validate_settings` checks every numeric setting of a ``flags.Settings`` before any
model is built: finite, inside its physical domain, with nanoBragg's documented sentinels
("0 or negative means automatic", NaN for "not given") kept where the C has them (the list
is in docs/validation.md).  Errors are :class:`InputError` with one line naming where the
value came from: the flag, ``-img FILE header KEY`` for a header value, or the Settings field
when the value was set through the API.

:class:`Budget` is the resource side: it compares the work of a render (pixels x layers x
subpixels x sources x orientations) and its memory with configurable limits
(``--max-work`` / ``ARRAYBRAGG_MAX_WORK``, ``--max-memory`` / ``ARRAYBRAGG_MAX_MEMORY``) and
refuses, before anything is allocated, what exceeds them, naming the flag that drives it.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass

from ..errors import InputError

__all__ = ["validate_settings", "validate_detector", "validate_roi", "check_image", "where", "Budget",
           "DEFAULT_MAX_WORK", "DEFAULT_MAX_MEMORY"]

DEFAULT_MAX_WORK = 1e11          # pixel-samples: hours on one CPU core (about 1e7 per second)
DEFAULT_MAX_MEMORY = 4 * 2**30   # bytes

# The flag that sets each field (the first spelling); fields no flag sets are named as fields.
_FLAG_OF = {
    "Na": "-Na", "Nb": "-Nb", "Nc": "-Nc", "cell_a": "-cell", "cell_b": "-cell", "cell_c": "-cell",
    "alpha": "-cell", "beta": "-cell", "gamma": "-cell", "misset_angles": "-misset",
    "sample_x": "-sample_x", "sample_y": "-sample_y", "sample_z": "-sample_z", "density": "-density",
    "molecular_weight": "-MW", "fudge": "-fudge", "mosaic_spread": "-mosaic", "mosaic_domains": "-mosaic_dom",
    "Xbeam": "-Xbeam", "Ybeam": "-Ybeam", "Xclose": "-Xclose", "Yclose": "-Yclose", "ORGX": "-ORGX",
    "ORGY": "-ORGY", "distance": "-distance", "close_distance": "-close_distance",
    "fdet_vector": "-fdet_vector", "sdet_vector": "-sdet_vector", "odet_vector": "-odet_vector",
    "beam_vector": "-beam_vector", "polar_vector": "-polar_vector", "spindle_vector": "-spindle_axis",
    "twotheta_axis": "-twotheta_axis", "pix0_vector": "-pix0_vector", "detector_twotheta": "-twotheta",
    "detector_rotx": "-detector_rotx", "detector_roty": "-detector_roty", "detector_rotz": "-detector_rotz",
    "detsize_f": "-detsize_f", "detsize_s": "-detsize_s", "fpixels": "-detpixels_f", "spixels": "-detpixels_s",
    "pixel_size": "-pixel", "detector_mu": "-detector_abs", "detector_thick": "-detector_thick",
    "detector_thicksteps": "-detector_thicksteps", "polarization": "-polar", "oversample": "-oversample",
    "roi_xmin": "-roi", "roi_xmax": "-roi", "roi_ymin": "-roi", "roi_ymax": "-roi", "lambda0": "-lambda",
    "fluence": "-fluence", "flux": "-flux", "exposure": "-exposure", "beamsize": "-beamsize",
    "dispersion": "-dispersion", "dispsteps": "-dispsteps", "hdivrange": "-hdivrange",
    "vdivrange": "-vdivrange", "hdivstep": "-hdivstep", "vdivstep": "-vdivstep", "hdivsteps": "-hdivsteps",
    "vdivsteps": "-vdivsteps", "phi0": "-phi", "osc": "-osc", "phistep": "-phistep", "phisteps": "-phisteps",
    "dmin": "-dmin", "default_F": "-default_F", "intfile_scale": "-scale", "pgm_scale": "-pgmscale",
    "adc_offset": "-adc", "water_size": "-water", "trace_pixel": "-trace_pixel",
    "max_work": "--max-work", "max_memory": "--max-memory",
}


def where(settings, name: str) -> str:
    """Where a field's value came from, for an error message."""
    origins = getattr(settings, "origins", None) or {}
    if name in origins:
        return origins[name]
    flag = _FLAG_OF.get(name)
    if name in getattr(settings, "explicit", ()) and flag:
        return flag
    if flag and _is_default(settings, name):
        return f"{flag} (default)"
    return f"Settings.{name}" + (f" ({flag})" if flag else "")


def _is_default(settings, name: str) -> bool:
    for f in dataclasses.fields(settings) if dataclasses.is_dataclass(settings) else ():
        if f.name == name and f.default is not dataclasses.MISSING:
            return getattr(settings, name) == f.default
    return False


def _refuse(settings, name: str, problem: str):
    raise InputError(f"{where(settings, name)}: {problem}")


def _finite(settings, *names) -> None:
    for name in names:
        value = getattr(settings, name)
        values = value if isinstance(value, (tuple, list)) else (value,)
        for v in values:
            if not math.isfinite(v):
                _refuse(settings, name, f"must be a finite number, got {v!r}")


# internal unit -> the unit of the flag, for messages
_UNITS = {"pixel_size": (1e3, " mm"), "distance": (1e3, " mm"), "beamsize": (1e3, " mm"), "lambda0": (1e10, " A"),
          "sample_x": (1e3, " mm"), "sample_y": (1e3, " mm"), "sample_z": (1e3, " mm"), "dmin": (1e10, " A"),
          "detector_thick": (1e6, " um"), "water_size": (1e6, " um"), "density": (1e-6, " g/cm^3")}


def _at_least(settings, name: str, low: float, strict: bool, what: str) -> None:
    value = getattr(settings, name)
    if not math.isfinite(value) or value < low or (strict and value == low):
        scale, unit = _UNITS.get(name, (1.0, ""))
        _refuse(settings, name, f"{what}, got {value * scale:g}{unit}")


# (field, lower bound, strict, message): plain physical domains
_DOMAINS = (
    ("pixel_size", 0.0, True, "pixel size must be positive"),
    ("lambda0", 0.0, True, "wavelength must be positive and finite"),
    ("distance", 0.0, True, "distance must be positive"),
    ("density", 0.0, True, "density must be positive"),
    ("molecular_weight", 0.0, True, "molecular weight must be positive"),
    ("fudge", 0.0, True, "must be positive"),
    ("fluence", 0.0, True, "fluence must be positive"),
    ("beamsize", 0.0, True, "beam size must be positive"),
    ("exposure", 0.0, False, "exposure must not be negative"),
    ("flux", 0.0, False, "flux must not be negative (0: use -fluence)"),
    ("sample_x", 0.0, False, "crystal size must not be negative (0: use -N)"),
    ("sample_y", 0.0, False, "crystal size must not be negative (0: use -N)"),
    ("sample_z", 0.0, False, "crystal size must not be negative (0: use -N)"),
    ("detector_thick", 0.0, False, "sensor thickness must not be negative"),
    ("dmin", 0.0, False, "must not be negative (0: no resolution cut)"),
    ("water_size", 0.0, False, "water thickness must not be negative"),
    ("fpixels", 0, False, "pixel count must not be negative (0: from -detsize)"),
    ("spixels", 0, False, "pixel count must not be negative (0: from -detsize)"),
)

# fields whose sentinel is any value (negative or zero: automatic), but never inf or NaN
_FINITE_ONLY = ("mosaic_spread", "phi0", "osc", "phistep", "hdivrange", "vdivrange", "hdivstep", "vdivstep",
                "dispersion", "detector_mu", "intfile_scale", "pgm_scale", "adc_offset", "default_F",
                "detector_twotheta", "detector_rotx", "detector_roty", "detector_rotz", "misset_angles",
                "fdet_vector", "sdet_vector", "odet_vector", "beam_vector", "polar_vector", "spindle_vector",
                "twotheta_axis", "source_distance", "detsize_f", "detsize_s")

# NaN means "not given" (the C tests isnan); a given value must be finite
_NAN_SENTINELS = ("Xbeam", "Ybeam", "Xclose", "Yclose", "ORGX", "ORGY", "close_distance")


def validate_settings(s) -> None:
    """Refuse (InputError, one line naming the flag, header key or field) any setting outside its domain."""
    _finite(s, *_FINITE_ONLY)
    for name, low, strict, what in _DOMAINS:
        _at_least(s, name, low, strict, what)
    for name in _NAN_SENTINELS:
        value = getattr(s, name)
        if math.isinf(value) or (math.isnan(value) and name in s.explicit):
            _refuse(s, name, f"must be a finite number, got {value!r}")
    if s.pix0_vector is not None:
        _finite(s, "pix0_vector")
    if abs(s.default_F) > 1e150:
        _refuse(s, "default_F", f"|F| must be at most 1e150 (F squared overflows), got {s.default_F:g}")
    for name in ("sample_x", "sample_y", "sample_z"):
        if getattr(s, name) >= 1.0:
            _refuse(s, name, f"crystal size must be below 1 m, got {getattr(s, name) * 1e3:g} mm")
    if s.mosaic_spread >= math.pi:
        _refuse(s, "mosaic_spread", f"mosaic spread must be below 180 degrees, got {math.degrees(s.mosaic_spread):g}")
    if s.water_size >= 1.0:
        _refuse(s, "water_size", f"water thickness must be below 1 m, got {s.water_size * 1e6:g} um")
    if not -1.0 <= s.polarization <= 1.0:
        _refuse(s, "polarization", f"Kahn polarization factor must be in [-1, 1], got {s.polarization:g}")
    if s.dispersion >= 2.0:
        _refuse(s, "dispersion", f"a spread of {s.dispersion * 100:g}% makes wavelengths negative (max 200%)")
    if s.source_distance <= 0.0:
        _refuse(s, "source_distance", "must be positive")
    _validate_cell(s)
    _validate_vectors(s)
    _validate_limits(s)


def _validate_cell(s) -> None:
    """-cell: a > 0 once given; b, c, angles <= 0 keep the C's defaults (a, 90 degrees); angles < 180."""
    _finite(s, "cell_a", "cell_b", "cell_c", "alpha", "beta", "gamma")
    if not s.user_cell:
        return
    if s.cell_a <= 0.0 and s.matfilename is None:
        _refuse(s, "cell_a", f"cell edge a must be positive, got {s.cell_a * 1:g}")
    for name in ("alpha", "beta", "gamma"):
        if getattr(s, name) >= math.pi:
            _refuse(s, name, f"cell angles must be below 180 degrees, got {math.degrees(getattr(s, name)):g}")


def _norm(v) -> float:
    return math.sqrt(sum(x * x for x in v))


def _validate_vectors(s) -> None:
    """Custom-convention vectors: non-zero, the detector's fast and slow axes not parallel."""
    if s.beam_convention != "CUSTOM":
        return
    for name in ("beam_vector", "fdet_vector", "sdet_vector", "polar_vector", "spindle_vector"):
        if _norm(getattr(s, name)) == 0.0:
            _refuse(s, name, "direction vector must be non-zero")
    f, d = s.fdet_vector, s.sdet_vector
    cross = (f[1] * d[2] - f[2] * d[1], f[2] * d[0] - f[0] * d[2], f[0] * d[1] - f[1] * d[0])
    if _norm(cross) <= 1e-9 * _norm(f) * _norm(d):
        name = "sdet_vector" if "sdet_vector" in s.explicit or "fdet_vector" not in s.explicit else "fdet_vector"
        _refuse(s, name, "the detector's fast and slow axes are parallel")
    if s.detector_twotheta != 0.0 and _norm(s.twotheta_axis) == 0.0:
        _refuse(s, "twotheta_axis", "direction vector must be non-zero")


def _validate_limits(s) -> None:
    for name in ("max_work", "max_memory"):
        value = getattr(s, name, None)
        if value is not None and not (math.isfinite(value) and value > 0):
            _refuse(s, name, f"must be a positive number, got {value!r}")


def validate_detector(s, detector) -> None:
    """The detector as placed: at a finite, non-zero distance (a plane through the sample is refused)."""
    values = (detector.distance, detector.close_distance, *detector.pix0)
    if all(math.isfinite(v) for v in values) and detector.close_distance != 0.0:
        return
    for name in ("pix0_vector", "close_distance", "detector_twotheta", "detector_rotx", "detector_roty",
                 "detector_rotz", "ORGX", "Xclose"):
        if name in s.explicit:
            break
    else:
        name = "distance"
    _refuse(s, name, "the detector plane passes through the sample (distance %g m, close distance %g m)"
            % (detector.distance, detector.close_distance))


def validate_roi(s, fpixels: int, spixels: int) -> tuple[int, int, int, int]:
    """The ROI with the C's defaults (negative: the detector edge), refused unless inside and ordered."""
    roi = tuple(v if v >= 0 else d for v, d in
                zip((s.roi_xmin, s.roi_xmax, s.roi_ymin, s.roi_ymax), (0, fpixels, 0, spixels)))
    xmin, xmax, ymin, ymax = roi
    if xmin > xmax or ymin > ymax:
        _refuse(s, "roi_xmin", f"ROI minimum above maximum ({xmin} {xmax} {ymin} {ymax})")
    if xmin >= fpixels or xmax > fpixels or ymin >= spixels or ymax > spixels:
        _refuse(s, "roi_xmin", f"ROI {xmin} {xmax} {ymin} {ymax} is not inside the {fpixels}x{spixels} detector")
    if s.trace_pixel is not None:
        slow, fast = s.trace_pixel
        if not (0 <= slow < spixels and 0 <= fast < fpixels):
            _refuse(s, "trace_pixel", f"pixel {slow} {fast} is not on the {fpixels}x{spixels} detector")
    return roi


def check_image(image) -> None:
    """A safety net after rendering: refuse an image with NaN or infinite pixels (nothing is written).

    Infinite pixels are float32 overflow (intensity above 3.4e38 photons); NaN ones mean a
    geometry the checks above did not foresee.
    """
    import numpy as np
    finite = np.isfinite(image)
    if finite.all():
        return
    nan = int(np.count_nonzero(np.isnan(image)))
    if nan:
        raise InputError(f"the render gave {nan} NaN pixels: no image written (check the geometry flags)")
    raise InputError(f"the render overflows: {image.size - int(np.count_nonzero(finite))} pixels above 3.4e38 "
                     "photons: no image written (lower -fluence/-flux, -default_F or the -hkl F, or -N)")


def _limit(settings, name: str, env: str, default: float) -> float:
    value = getattr(settings, name, None)
    if value is not None:
        return float(value)
    text = os.environ.get(env)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{env}: expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{env}: must be a positive number, got {text!r}")
    return value


@dataclass
class Budget:
    """Work and memory limits of one run, from --max-work / --max-memory or the environment."""

    max_work: float = DEFAULT_MAX_WORK
    max_memory: float = DEFAULT_MAX_MEMORY

    @classmethod
    def of(cls, settings) -> "Budget":
        return cls(_limit(settings, "max_work", "ARRAYBRAGG_MAX_WORK", DEFAULT_MAX_WORK),
                   _limit(settings, "max_memory", "ARRAYBRAGG_MAX_MEMORY", DEFAULT_MAX_MEMORY))

    def check_work(self, factors: dict) -> None:
        """``factors``: {description: (count, cause)}; refuse when their product exceeds max_work.

        ``cause`` names the flag to give (or change); the largest factor is blamed.
        """
        total = math.prod(float(count) for count, _ in factors.values())
        if total <= self.max_work:
            return
        what, (count, cause) = max(factors.items(), key=lambda item: float(item[1][0]))
        figures = (f"{what} = {float(count):.3g}: the render would be {total:.3g} pixel-samples, over the "
                   f"--max-work limit of {self.max_work:.3g}")
        raise InputError(f"{cause} ({figures})" if ":" in cause else f"{cause}: {figures}")

    def check_memory(self, nbytes: float, cause: str, what: str) -> None:
        if not nbytes <= self.max_memory:
            raise InputError(f"{cause}: {what} needs {nbytes / 2**30:.3g} GiB, over the limit of "
                             f"{self.max_memory / 2**30:.3g} GiB (raise it with --max-memory)")
