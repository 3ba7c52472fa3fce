"""nanoBragg command line -> :class:`Settings`.

Reproduces the option handling of nanoBragg's ``main()`` (upstream 8-10-25 plus the
``-trace_pixel`` flag of the instrumented build): the SMV headers of ``-mask`` and then
``-img`` are read first, then every flag is applied in command-line order with the C's
side effects (pivot, convention, output switches) and unit conversions.  Unlike the C,
which tests each argument with ``strstr`` substring matching, every flag and synonym here
is matched exactly, so ``-misset_seed`` never acts as ``-misset``.  Post-parse setup
(conventions, beam centres, automatic step counts) belongs to :mod:`arraybragg.setup`.

Our own GNU-style options (``--backend cupy``, ``--dtype=float32``, ...) may be mixed in.
"""
from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from ..errors import InputError
from .cformat import c_float
from .smv import header_value, read_smv

# nanoBragg converts degrees by dividing by RTD = 180 * M_1_PI; the same double keeps
# converted angles bit-identical to the C.
RTD = 180.0 * 0.31830988618379067154
# Photon energy (eV) times wavelength (Angstrom), as nanoBragg uses it.
EV_ANGSTROM = 12398.42
DEFAULT_FLUENCE = 125932015286227086360700780544.0   # photons/m^2: nanoBragg's default (fluence r_e^2 = 1)

Vector = tuple[float, float, float]


# the Settings fields of noisify's flags: any of them makes the noise image come from the detector-response model
RESPONSE_FLAG_FIELDS = frozenset({"readout_noise", "flicker", "calibration", "calib_seed", "psf", "psf_fwhm",
                             "psf_radius", "psf_method", "gain"})


@dataclass
class Settings:
    """Everything the command line says, in nanoBragg's variable names and internal units.

    Lengths are metres, angles radians, wavelengths metres; -1 / NaN / 0 mean "not given,
    choose automatically later" exactly where the C uses them that way.
    """

    # crystal
    Na: int = 1
    Nb: int = 1
    Nc: int = 1
    user_cell: bool = False
    cell_a: float = 0.0                 # Angstrom
    cell_b: float = 0.0
    cell_c: float = 0.0
    alpha: float = 0.0                  # rad
    beta: float = 0.0
    gamma: float = 0.0
    misset_mode: Optional[str] = None   # None | 'random' | 'angles'
    misset_angles: Vector = (0.0, 0.0, 0.0)   # rad about x, y, z
    sample_x: float = 0.0               # m
    sample_y: float = 0.0
    sample_z: float = 0.0
    density: float = 1.0e6              # g/m^3
    molecular_weight: float = 18.0      # g/mol
    xtal_shape: str = "SQUARE"          # SQUARE | ROUND | GAUSS | TOPHAT
    fudge: float = 1.0
    mosaic_spread: float = -1.0         # rad
    mosaic_domains: int = -1
    # detector placement
    Xbeam: float = math.nan             # m
    Ybeam: float = math.nan
    Xclose: float = math.nan
    Yclose: float = math.nan
    ORGX: float = math.nan              # pixels
    ORGY: float = math.nan
    distance: float = 100.0e-3          # m
    close_distance: float = math.nan    # m
    detector_pivot: str = "BEAM"        # BEAM | SAMPLE
    beam_convention: str = "MOSFLM"     # MOSFLM | XDS | ADXV | DENZO | DIALS | CUSTOM
    fdet_vector: Vector = (0.0, 0.0, 1.0)
    sdet_vector: Vector = (0.0, -1.0, 0.0)
    odet_vector: Vector = (1.0, 0.0, 0.0)
    beam_vector: Vector = (1.0, 0.0, 0.0)
    polar_vector: Vector = (0.0, 0.0, 1.0)
    spindle_vector: Vector = (0.0, 0.0, 1.0)
    twotheta_axis: Vector = (0.0, 1.0, 0.0)   # C declares {0,0,1,0}: 1-based x,y,z = (0, 1, 0)
    pix0_vector: Optional[Vector] = None    # m
    detector_twotheta: float = 0.0      # rad
    detector_rotx: float = 0.0
    detector_roty: float = 0.0
    detector_rotz: float = 0.0
    # detector pixels and sensor
    detsize_f: float = 102.4e-3         # m
    detsize_s: float = 102.4e-3
    fpixels: int = 0                    # 0: derive from detsize / pixel_size
    spixels: int = 0
    pixel_size: float = 0.1e-3          # m
    curved_detector: bool = False
    point_pixel: bool = False
    detector_mu: float = -1.0           # 1/m
    detector_thick: float = 0.0         # m
    detector_thickstep: float = -1.0    # m (no flag sets it)
    detector_thicksteps: int = -1
    # polarization and sampling
    polarization: float = 0.0
    nopolar: bool = False
    oversample: int = -1
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    roi_xmin: int = -1
    roi_xmax: int = -1
    roi_ymin: int = -1
    roi_ymax: int = -1
    # beam
    lambda0: float = 1.0e-10            # m
    fluence: float = DEFAULT_FLUENCE   # photons/m^2
    flux: float = 0.0                   # photons/s
    exposure: float = 1.0               # s
    beamsize: float = 1e-4              # m
    dispersion: float = 0.0             # fraction
    dispstep: float = -1.0              # (no flag sets it)
    dispsteps: int = -1
    hdivrange: float = -1.0             # rad
    vdivrange: float = -1.0
    hdivstep: float = -1.0
    vdivstep: float = -1.0
    hdivsteps: int = -1
    vdivsteps: int = -1
    round_div: bool = True
    source_distance: float = 10.0       # m (no flag sets it)
    # spindle and resolution
    phi0: float = 0.0                   # rad
    osc: float = -1.0
    phistep: float = -1.0
    phisteps: int = -1
    dmin: float = 0.0                   # m
    # input files
    matfilename: Optional[str] = None
    hklfilename: Optional[str] = None
    default_F: float = 0.0
    dumpfilename: str = "Fdump.bin"
    imginfilename: Optional[str] = None
    maskfilename: Optional[str] = None
    stolfilename: Optional[str] = None
    stol_file_mult: float = 1.0e10
    stoloutfilename: str = "output.stol"
    sourcefilename: Optional[str] = None
    mask: Optional[np.ndarray] = None   # uint16 (spixels, fpixels) from -mask
    # outputs
    floatfilename: str = "floatimage.bin"
    intfilename: str = "intimage.img"
    pgmfilename: str = "image.pgm"
    noisefilename: str = "noiseimage.img"
    calculate_noise: bool = True
    write_pgm: bool = True
    intfile_scale: float = 0.0          # 0: autoscale
    pgm_scale: float = 0.0
    adc_offset: float = 40.0
    water_size: float = 0.0             # m
    coherent: bool = False
    printout: bool = False
    printout_fpixel: int = -1
    printout_spixel: int = -1
    trace_pixel: Optional[tuple[int, int]] = None   # (slow, fast)
    progress_meter: bool = True
    interpolate: int = 2                # 0 off, 1 on, 2 auto
    # random seeds, stored negated as the C does; misset_seed starts equal to seed
    seed: int = field(default_factory=lambda: -int(time.time()))
    mosaic_seed: int = -12345678
    misset_seed: Optional[int] = None
    # detector response after the render (noisify's flags; see docs/noisify.md)
    readout_noise: float = 0.0
    flicker: float = 0.0
    calibration: float = 0.0
    calib_seed: int = 123456789
    psf: Optional[str] = None
    psf_fwhm: float = 46e-6             # m (noisify's default, a C float there)
    psf_radius: int = 0                 # pixels, 0: automatic
    psf_method: str = "direct"
    gain: float = 1.0
    # our own options
    backend: str = "numpy"
    dtype: str = "float64"
    c_parity: bool = False
    threads: Optional[int] = None
    tile_pixels: Optional[int] = None
    mtz_column: Optional[str] = None    # -hkl MTZ / mmCIF column label
    geomfilename: Optional[str] = None  # --geom: CrystFEL geometry file (multi-panel detector)
    exptfilename: Optional[str] = None  # --expt: DIALS experiment list (beam, detector, crystal, goniometer)
    write_exptfilename: Optional[str] = None  # --write-expt: the rendered experiment as a DIALS file
    cbffilename: Optional[str] = None   # extra outputs (arraybragg.imagefiles)
    nexusfilename: Optional[str] = None
    nexus_int: bool = False
    pngfilename: Optional[str] = None
    png_scale: str = "log"
    png_cmap: str = "inferno"
    max_work: Optional[float] = None    # None: ARRAYBRAGG_MAX_WORK or the default (validation.Budget)
    max_memory: Optional[float] = None  # bytes; None: ARRAYBRAGG_MAX_MEMORY or the default
    show_help: bool = False
    show_version: bool = False
    argv: tuple[str, ...] = ()
    # every field a flag (or an -img/-mask header) assigned, side effects included
    explicit: set[str] = field(default_factory=set)
    # where each explicit field's value came from, for error messages: the flag, or the
    # -img/-mask file and header key
    origins: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.misset_seed is None:
            self.misset_seed = self.seed


def _put(settings: Settings, **values) -> None:
    """Assign fields and remember that the command line set them."""
    for name, value in values.items():
        setattr(settings, name, value)
    settings.explicit.update(values)


# ---------------------------------------------------------------------------------------
# Value parsing.  A token is numeric when C's atof would read all of it.

_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z",
                     re.IGNORECASE)
_LEADING_INT = re.compile(r"[+-]?\d+")


def _is_number(token: str) -> bool:
    return _NUMBER.match(token) is not None


def _to_float(flag: str, token: str) -> float:
    if not _is_number(token):
        raise InputError(f"{flag}: expected a number, got {token!r}")
    return float(token)


def _to_int(flag: str, token: str) -> int:
    """C atoi of a numeric token: '5.7' -> 5, '1e3' -> 1, '.5' -> 0."""
    if not _is_number(token) or not any(ch.isdigit() for ch in token):
        raise InputError(f"{flag}: expected an integer, got {token!r}")
    leading = _LEADING_INT.match(token)
    return int(leading.group()) if leading else 0


_CONVERTERS: dict[str, Callable[[str, str], object]] = {
    "number": _to_float,
    "integer": _to_int,
    "text": lambda flag, token: token,
}


# ---------------------------------------------------------------------------------------
# The flag table.

@dataclass(frozen=True)
class FlagSpec:
    """One command-line flag: its spellings, how many values it takes and what it sets.

    ``kind`` is how each value is parsed: 'switch' (no value), 'number', 'integer' or
    'text'; 'cell' takes 1 to ``nargs`` numbers, stopping at a token that starts with
    '-'; 'misset' takes 'random' or three numbers.  ``apply(settings, values)`` receives
    the parsed values.
    """

    names: tuple[str, ...]
    nargs: int
    kind: str
    apply: Callable[[Settings, list], None]
    metavar: str
    help: str


def _mm(v: float) -> float:
    return v / 1000.0


def _deg(v: float) -> float:
    return v / RTD


def _angstrom(v: float) -> float:
    return v / 1.0e10


def _ieee_div(numerator: float, denominator: float) -> float:
    """Division with C semantics: x/0 gives +-inf or nan instead of raising."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.float64(numerator) / np.float64(denominator))


def _same(v):
    return v


def _negated(v: int) -> int:
    return -v


def _switch(names, help, **assign) -> FlagSpec:
    """A flag without a value that assigns constants."""
    return FlagSpec(tuple(names), 0, "switch", lambda s, _: _put(s, **assign), "", help)


def _value(names, fields, help, *, kind="number", convert=_same, metavar="X",
           **effects) -> FlagSpec:
    """A one-value flag: every field in ``fields`` gets convert(value), then the effects."""
    fields = (fields,) if isinstance(fields, str) else tuple(fields)

    def apply(settings, values):
        converted = convert(values[0])
        _put(settings, **{name: converted for name in fields}, **effects)

    return FlagSpec(tuple(names), 1, kind, apply, metavar, help)


def _each(names, fields, help, *, kind="number", metavar, **effects) -> FlagSpec:
    """A flag with one value per field (e.g. -roi)."""
    def apply(settings, values):
        _put(settings, **dict(zip(fields, values)), **effects)

    return FlagSpec(tuple(names), len(fields), kind, apply, metavar, help)


def _tuple(names, field_name, help, *, kind="number", convert=_same, nargs=3,
           metavar="X Y Z", **effects) -> FlagSpec:
    """A flag whose values form one tuple field (vectors, pixel coordinates)."""
    def apply(settings, values):
        _put(settings, **{field_name: tuple(convert(v) for v in values)}, **effects)

    return FlagSpec(tuple(names), nargs, kind, apply, metavar, help)


def _custom_vector(names, field_name, help, convert=_same) -> FlagSpec:
    return _tuple(names, field_name, help, convert=convert, beam_convention="CUSTOM")


def _apply_cell(settings: Settings, values: list[float]) -> None:
    """a b c in Angstrom then alpha beta gamma in degrees; missing ones stay 0."""
    lengths = ("cell_a", "cell_b", "cell_c")
    angles = ("alpha", "beta", "gamma")
    given = {name: v for name, v in zip(lengths, values)}
    given.update({name: _deg(v) for name, v in zip(angles, values[3:])})
    _put(settings, user_cell=True, **given)


def _apply_misset(settings: Settings, values: list) -> None:
    if len(values) == 1:
        _put(settings, misset_mode="random")
    else:
        _put(settings, misset_mode="angles", misset_angles=tuple(_deg(v) for v in values))


def _apply_detector_abs(settings: Settings, values: list[float]) -> None:
    """Attenuation depth in um; 'inf' or 0 switch absorption off (and the thickness)."""
    depth = values[0]
    if math.isinf(depth) or depth == 0.0:
        _put(settings, detector_thick=0.0, detector_mu=0.0)
    else:
        _put(settings, detector_mu=_ieee_div(1.0, depth * 1e-6))


def _apply_pivot(settings: Settings, values: list[str]) -> None:
    choice = values[0].lower()
    if choice not in ("beam", "sample"):
        raise InputError(f"-pivot: expected 'beam' or 'sample', got {values[0]!r}")
    _put(settings, detector_pivot=choice.upper())


def _convention(name, pivot) -> FlagSpec:
    default = " (default)" if name == "MOSFLM" else ""
    return _switch((f"-{name.lower()}",), f"{name} detector and beam-centre convention{default}",
                   beam_convention=name, detector_pivot=pivot)


def _stol(names, multiplier, help) -> FlagSpec:
    return _value(names, "stolfilename", help, kind="text", metavar="FILE",
                  stol_file_mult=multiplier)


def _choice(name, field_name, choices, help) -> FlagSpec:
    def apply(settings, values):
        if values[0] not in choices:
            raise InputError(f"{name}: expected one of {', '.join(choices)}, got {values[0]!r}")
        _put(settings, **{field_name: values[0]})

    return FlagSpec((name,), 1, "text", apply, "|".join(choices), help)


def _positive(name, field_name, help) -> FlagSpec:
    def apply(settings, values):
        if values[0] < 1:
            raise InputError(f"{name}: expected a positive integer, got {values[0]}")
        _put(settings, **{field_name: values[0]})

    return FlagSpec((name,), 1, "integer", apply, "N", help)


_SIZE_HELP = "crystal full width along {} in mm"

FLAG_TABLE: tuple[FlagSpec, ...] = (
    # input files
    _value(["-hkl"], "hklfilename", "h k l F text list, MTZ, mmCIF (structure factors or model) or PDB",
           kind="text", metavar="FILE"),
    _value(["-mat"], "matfilename", "MOSFLM-style orientation matrix file", kind="text",
           metavar="FILE"),
    _value(["-default_F"], "default_F", "F of every hkl not in the -hkl file (default 0)"),
    _value(["-dump"], "dumpfilename", "binary structure-factor cache (default Fdump.bin)",
           kind="text", metavar="FILE"),
    _value(["-img"], "imginfilename", "SMV image whose header initialises the detector",
           kind="text", metavar="FILE"),
    _value(["-mask"], "maskfilename", "SMV mask (0 = skip pixel); its header also "
           "initialises the detector", kind="text", metavar="FILE"),
    _value(["-sourcefile"], "sourcefilename", "text file of sources: X Y Z weight lambda",
           kind="text", metavar="FILE"),
    _stol(["-stol"], 1e10, "S(Q) table indexed by sin(theta)/lambda (read, unused)"),
    _stol(["-4stol"], 1e10 / 4, "S(Q) table indexed by 4 sin(theta)/lambda (read, unused)"),
    _stol(["-Q"], 1e10 / math.pi / 4, "S(Q) table indexed by Q (read, unused)"),
    _value(["-stolout"], "stoloutfilename", "S(Q) output file name (unused)", kind="text",
           metavar="FILE"),
    # crystal
    FlagSpec(("-cell",), 6, "cell", _apply_cell, "A [B C AL BE GA]",
             "unit cell in Angstrom and degrees (missing values default later)"),
    FlagSpec(("-misset",), 3, "misset", _apply_misset, "RX RY RZ|random",
             "crystal rotation about x, y, z in degrees, or a random orientation"),
    _value(["-N"], ("Na", "Nb", "Nc"), "unit cells along a, b and c", kind="integer",
           metavar="N"),
    _value(["-Na"], "Na", "unit cells along a (default 1)", kind="integer", metavar="N"),
    _value(["-Nb"], "Nb", "unit cells along b (default 1)", kind="integer", metavar="N"),
    _value(["-Nc"], "Nc", "unit cells along c (default 1)", kind="integer", metavar="N"),
    _value(["-samplesize", "-sample_size", "-xtalsize", "-xtal_size"],
           ("sample_x", "sample_y", "sample_z"), "crystal full width in x, y and z in mm",
           convert=_mm, metavar="MM"),
    _value(["-sample_thick", "-sample_x", "-xtal_thick", "-xtal_x"], "sample_x",
           _SIZE_HELP.format("x (beam)"), convert=_mm, metavar="MM"),
    _value(["-sample_width", "-sample_y", "-width", "-xtal_width", "-xtal_y"], "sample_y",
           _SIZE_HELP.format("y"), convert=_mm, metavar="MM"),
    _value(["-sample_height", "-sample_heigh", "-sample_z", "-height", "-heigh",
            "-xtal_height", "-xtal_heigh", "-xtal_z"], "sample_z",
           _SIZE_HELP.format("z"), convert=_mm, metavar="MM"),
    _value(["-density", "-sample_den", "-sample_density"], "density",
           "crystal density in g/cm^3 (default 1)", convert=lambda v: v * 1e6),
    _value(["-MW", "-molec", "-molecular_weight"], "molecular_weight",
           "molecular weight in g/mol (default 18)"),
    _switch(["-square_xtal"], "parallelepiped crystal: sincg spots (default)",
            xtal_shape="SQUARE"),
    _switch(["-round_xtal"], "ellipsoidal crystal: sinc3 spots", xtal_shape="ROUND"),
    _switch(["-gauss_xtal"], "Gaussian spots, no inter-Bragg maxima", xtal_shape="GAUSS"),
    _switch(["-binary_spots", "-tophat_spots"], "top-hat spots clipped at the FWHM",
            xtal_shape="TOPHAT"),
    _value(["-fudge"], "fudge", "spot-shape width factor (default 1)"),
    _value(["-mosaic", "-mosaici", "-mosaicity", "-mosaic_spr", "-mosaic_spread"],
           "mosaic_spread", "isotropic mosaic spread in degrees", convert=_deg,
           metavar="DEG"),
    _value(["-mosaic_dom", "-mosaic_domains"], "mosaic_domains", "number of mosaic domains",
           kind="integer", metavar="N"),
    # detector size and placement
    _value(["-pixel"], "pixel_size", "pixel size in mm (default 0.1)", convert=_mm,
           metavar="MM"),
    _value(["-detpixels"], ("fpixels", "spixels"), "square detector size in pixels",
           kind="integer", metavar="N"),
    _value(["-detpixels_f", "-detpixels_x"], "fpixels", "pixels along the fast axis",
           kind="integer", metavar="N"),
    _value(["-detpixels_s", "-detpixels_y"], "spixels", "pixels along the slow axis",
           kind="integer", metavar="N"),
    _value(["-detsize"], ("detsize_f", "detsize_s"), "square detector side in mm "
           "(default 102.4)", convert=_mm, metavar="MM"),
    _value(["-detsize_f"], "detsize_f", "detector size along the fast axis in mm",
           convert=_mm, metavar="MM"),
    _value(["-detsize_s"], "detsize_s", "detector size along the slow axis in mm",
           convert=_mm, metavar="MM"),
    _value(["-distance"], "distance", "sample to beam spot distance in mm (default 100); "
           "pivot beam", convert=_mm, metavar="MM", detector_pivot="BEAM"),
    _value(["-close_distance"], "close_distance", "sample to detector plane distance in mm; "
           "pivot sample", convert=_mm, metavar="MM", detector_pivot="SAMPLE"),
    _value(["-Xbeam"], "Xbeam", "direct-beam spot, fast image coordinate in mm; pivot beam",
           convert=_mm, metavar="MM", detector_pivot="BEAM"),
    _value(["-Ybeam"], "Ybeam", "direct-beam spot, slow image coordinate in mm; pivot beam",
           convert=_mm, metavar="MM", detector_pivot="BEAM"),
    _value(["-Xclose"], "Xclose", "detector point nearest the sample, fast, in mm; "
           "pivot sample", convert=_mm, metavar="MM", detector_pivot="SAMPLE"),
    _value(["-Yclose"], "Yclose", "detector point nearest the sample, slow, in mm; "
           "pivot sample", convert=_mm, metavar="MM", detector_pivot="SAMPLE"),
    _value(["-ORGX"], "ORGX", "XDS beam centre, fast, in pixels; pivot sample",
           metavar="PIX", detector_pivot="SAMPLE"),
    _value(["-ORGY"], "ORGY", "XDS beam centre, slow, in pixels; pivot sample",
           metavar="PIX", detector_pivot="SAMPLE"),
    FlagSpec(("-pivot",), 1, "text", _apply_pivot, "beam|sample",
             "point the detector rotates about"),
    _convention("MOSFLM", "BEAM"),
    _convention("XDS", "SAMPLE"),
    _convention("ADXV", "BEAM"),
    _convention("DENZO", "BEAM"),
    _convention("DIALS", "BEAM"),
    _custom_vector(["-fdet_vector"], "fdet_vector", "fast-axis unit vector; custom convention"),
    _custom_vector(["-sdet_vector"], "sdet_vector", "slow-axis unit vector; custom convention"),
    _custom_vector(["-odet_vector"], "odet_vector",
                   "detector normal unit vector; custom convention"),
    _custom_vector(["-beam_vector"], "beam_vector", "x-ray beam direction; custom convention"),
    _custom_vector(["-polar_vector"], "polar_vector",
                   "E-vector polarization direction; custom convention"),
    _custom_vector(["-spindle_axis"], "spindle_vector",
                   "right-handed phi rotation axis; custom convention"),
    _custom_vector(["-twotheta_axis"], "twotheta_axis",
                   "detector two-theta rotation axis; custom convention"),
    _custom_vector(["-pix0_vector"], "pix0_vector",
                   "sample to first pixel corner, in metres; custom convention"),
    _custom_vector(["-pix0_vector_mm"], "pix0_vector",
                   "sample to first pixel corner, in mm; custom convention", convert=_mm),
    _value(["-twotheta"], "detector_twotheta", "detector rotation about the two-theta axis "
           "in degrees; pivot sample", convert=_deg, metavar="DEG", detector_pivot="SAMPLE"),
    _value(["-detector_rotx"], "detector_rotx", "detector rotation about x in degrees",
           convert=_deg, metavar="DEG"),
    _value(["-detector_roty"], "detector_roty", "detector rotation about y in degrees",
           convert=_deg, metavar="DEG"),
    _value(["-detector_rotz"], "detector_rotz", "detector rotation about z in degrees",
           convert=_deg, metavar="DEG"),
    _switch(["-curved_det", "-curved_detector"], "all pixels equidistant from the sample",
            curved_detector=True),
    _switch(["-point_pixel"], "solid angle as 1/R^2 only (no obliquity)", point_pixel=True),
    FlagSpec(("-detector_abs", "-detector_absorb", "-detector_absorption"), 1, "number",
             _apply_detector_abs, "UM|inf",
             "sensor attenuation depth in um; inf or 0 turns absorption off"),
    _value(["-detector_thick"], "detector_thick", "sensor thickness in um",
           convert=lambda v: v * 1e-6, metavar="UM"),
    _value(["-detector_thicksteps", "-thicksteps"], "detector_thicksteps",
           "sensor layers to integrate", kind="integer", metavar="N"),
    # beam
    _value(["-lambda", "-wave", "-wavelength"], "lambda0", "wavelength in Angstrom "
           "(default 1)", convert=_angstrom, metavar="A"),
    _value(["-energy"], "lambda0", "photon energy in eV (sets the wavelength)",
           convert=lambda v: _ieee_div(EV_ANGSTROM, v) / 1.0e10, metavar="EV"),
    _value(["-dispersion"], "dispersion", "spectral width delta-lambda/lambda in percent",
           convert=lambda v: v / 100.0, metavar="PCT"),
    _value(["-dispsteps"], "dispsteps", "wavelengths across the dispersion",
           kind="integer", metavar="N"),
    _value(["-divergence"], ("hdivrange", "vdivrange"), "beam divergence, both directions, "
           "in mrad", convert=_mm, metavar="MRAD"),
    _value(["-hdivrange"], "hdivrange", "horizontal divergence in mrad", convert=_mm,
           metavar="MRAD"),
    _value(["-vdivrange"], "vdivrange", "vertical divergence in mrad", convert=_mm,
           metavar="MRAD"),
    _value(["-hdivstep"], "hdivstep", "horizontal divergence step in mrad", convert=_mm,
           metavar="MRAD"),
    _value(["-vdivstep"], "vdivstep", "vertical divergence step in mrad", convert=_mm,
           metavar="MRAD"),
    _value(["-divsteps"], ("hdivsteps", "vdivsteps"), "divergence steps, both directions",
           kind="integer", metavar="N"),
    _value(["-hdivsteps"], "hdivsteps", "horizontal divergence steps", kind="integer",
           metavar="N"),
    _value(["-vdivsteps"], "vdivsteps", "vertical divergence steps", kind="integer",
           metavar="N"),
    _switch(["-round_div"], "clip the divergence grid to an ellipse (default)", round_div=True),
    _switch(["-square_div"], "use the full divergence grid", round_div=False),
    _value(["-fluence"], "fluence", "incident photons/m^2 (default 1.26e29)"),
    _value(["-flux"], "flux", "incident photons/s (with -exposure and -beamsize)"),
    _value(["-exposure"], "exposure", "exposure time in s (default 1)", metavar="S"),
    _value(["-beamsize"], "beamsize", "beam size in mm (default 0.1)",
           convert=lambda v: v / 1000, metavar="MM"),
    _value(["-polar"], "polarization", "Kahn polarization factor (default 0)",
           nopolar=False),
    _switch(["-nopolar"], "no polarization correction", nopolar=True),
    # sampling
    _value(["-phi"], "phi0", "starting spindle angle in degrees (default 0)", convert=_deg,
           metavar="DEG"),
    _value(["-osc"], "osc", "spindle oscillation range in degrees", convert=_deg,
           metavar="DEG"),
    _value(["-phistep"], "phistep", "spindle step in degrees", convert=_deg, metavar="DEG"),
    _value(["-phisteps"], "phisteps", "spindle steps", kind="integer", metavar="N"),
    _value(["-dmin"], "dmin", "skip scattering with d below this, in Angstrom",
           convert=lambda v: v * 1e-10, metavar="A"),
    _value(["-oversample"], "oversample", "sub-pixels per pixel edge (default auto)",
           kind="integer", metavar="N"),
    _switch(["-oversample_thick"], "absorption per sub-pixel", oversample_thick=True),
    _switch(["-oversample_polar"], "polarization per sub-pixel", oversample_polar=True),
    _switch(["-oversample_omega"], "solid angle per sub-pixel", oversample_omega=True),
    _each(["-roi"], ("roi_xmin", "roi_xmax", "roi_ymin", "roi_ymax"),
          "render only these pixels (inclusive)", kind="integer",
          metavar="XMIN XMAX YMIN YMAX"),
    _switch(["-interpolate"], "interpolate F between Bragg peaks (default: auto)",
            interpolate=1),
    _switch(["-nointerpolate"], "no structure-factor interpolation", interpolate=0),
    _value(["-water"], "water_size", "water background thickness in um",
           convert=lambda v: v / 1e6, metavar="UM"),
    # outputs
    _value(["-floatfile", "-floatimage"], "floatfilename",
           "raw float image (default floatimage.bin)", kind="text", metavar="FILE"),
    _value(["-intfile", "-intimage"], "intfilename", "noiseless SMV image (default "
           "intimage.img)", kind="text", metavar="FILE"),
    _value(["-noisefile", "-noiseimage"], "noisefilename", "SMV image with Poisson noise "
           "(default noiseimage.img)", kind="text", metavar="FILE", calculate_noise=True),
    _value(["-pgmfile", "-pgmimage"], "pgmfilename", "8-bit PGM preview (default image.pgm)",
           kind="text", metavar="FILE", write_pgm=True),
    _switch(["-nonoise"], "do not write the noise image", calculate_noise=False),
    _switch(["-nopgm"], "do not write the PGM image", write_pgm=False),
    _value(["-scale"], "intfile_scale", "SMV counts per photon (default auto)"),
    _value(["-pgmscale"], "pgm_scale", "PGM grey levels per photon (default auto)",
           write_pgm=True),
    _value(["-adc"], "adc_offset", "offset added to SMV pixels (default 40)"),
    _switch(["-coherent"], "add all sources coherently", coherent=True),
    _switch(["-printout"], "print pixel values", printout=True),
    _each(["-printout_pixel"], ("printout_fpixel", "printout_spixel"),
          "print only this pixel's values", kind="integer", metavar="F S", printout=True),
    _tuple(["-trace_pixel", "-dump_pixel"], "trace_pixel",
           "print a TRACE of this pixel's computation", kind="integer", nargs=2,
           metavar="S F"),
    _switch(["-progress"], "show the progress meter (default)", progress_meter=True),
    _switch(["-noprogress"], "hide the progress meter", progress_meter=False),
    _value(["-seed"], "seed", "noise random seed (default: the time)", kind="integer",
           convert=_negated, metavar="N"),
    _value(["-mosaic_seed"], "mosaic_seed", "mosaic-domain random seed (default 12345678)",
           kind="integer", convert=_negated, metavar="N"),
    _value(["-misset_seed"], "misset_seed", "random-misset seed (default: the time)",
           kind="integer", convert=_negated, metavar="N"),
    # detector response after the render (noisify's flags; see docs/noisify.md)
    _value(["-readout_noise"], "readout_noise", "Gaussian readout noise (ADU rms) on the noise image"),
    _value(["-flicker"], "flicker", "fractional source flicker per pixel (noise image)"),
    _value(["-calibration"], "calibration", "static fractional calibration error per pixel"),
    _value(["-calib_seed"], "calib_seed", "calibration-error random seed (default 123456789)",
           kind="integer", convert=_negated, metavar="N"),
    _choice("-psf", "psf", ("gauss", "fiber"), "point-spread function on the noise image"),
    _value(["-psf_fwhm"], "psf_fwhm", "point-spread function FWHM in um (default 46)",
           convert=lambda v: c_float(v / 1e6), metavar="UM"),
    _value(["-psf_radius"], "psf_radius", "point-spread function radius in pixels (default auto)",
           kind="integer", metavar="N"),
    _value(["-gain"], "gain", "ADU per photon in the noise image (default 1)"),
    _choice("--psf-method", "psf_method", ("direct", "fft"), "PSF sum: direct (exact) or fft (fast)"),
    # our own options
    _choice("--backend", "backend", ("numpy", "cupy", "torch"), "array library (default numpy)"),
    _choice("--dtype", "dtype", ("float64", "float32"), "floating point precision "
            "(default float64)"),
    _switch(["--c-parity"], "keep the C program's defects for bit-level comparison",
            c_parity=True),
    _positive("--threads", "threads", "CPU threads (default: all)"),
    _positive("--tile-pixels", "tile_pixels", "pixels rendered per tile (default auto)"),
    _value(["--geom"], "geomfilename", "CrystFEL geometry file: render its panels (clen from -distance, "
           "photon energy from -energy/-lambda when the file names HDF5 paths)", kind="text", metavar="FILE"),
    _value(["--expt"], "exptfilename", "DIALS experiment list: its beam, detector, crystal and "
           "goniometer/scan replace the flags' (structure factors, -N, sampling and files from the flags)",
           kind="text", metavar="FILE"),
    _value(["--write-expt"], "write_exptfilename", "write the rendered experiment as a DIALS experiment list",
           kind="text", metavar="FILE"),
    _value(["--mtz-column"], "mtz_column", "-hkl MTZ/mmCIF column (default: first F, else sqrt of "
           "first I)", kind="text", metavar="LABEL"),
    _value(["--cbf-file", "-cbffile"], "cbffilename", "miniCBF (Pilatus header) of the integer image", kind="text",
           metavar="FILE"),
    _value(["--nexus-file", "-nexusfile"], "nexusfilename", "NeXus/NXmx HDF5 file of the float image", kind="text",
           metavar="FILE"),
    _switch(["--nexus-int"], "also store the integer (and noise) images in -nexusfile", nexus_int=True),
    _value(["--png-file", "-pngfile"], "pngfilename", "PNG preview (colour map)", kind="text", metavar="FILE"),
    _choice("--png-scale", "png_scale", ("log", "sqrt"), "PNG contrast (default log)"),
    _value(["--png-cmap"], "png_cmap", "PNG colour map (matplotlib name, default inferno)",
           kind="text", metavar="NAME"),
    _value(["--max-work"], "max_work", "refuse renders of more pixel-samples than this (default "
           "1e11 or env ARRAYBRAGG_MAX_WORK)", metavar="N"),
    _value(["--max-memory"], "max_memory", "refuse runs needing more bytes than this (default "
           "4 GiB or env ARRAYBRAGG_MAX_MEMORY)", metavar="BYTES"),
    _switch(["-h", "--help"], "show this help", show_help=True),
    _switch(["--version"], "show the version", show_version=True),
)


def _index(table: Sequence[FlagSpec]) -> dict[str, FlagSpec]:
    by_name: dict[str, FlagSpec] = {}
    for spec in table:
        for name in spec.names:
            if name in by_name:
                raise AssertionError(f"flag {name} listed twice")
            by_name[name] = spec
    return by_name


_BY_NAME = _index(FLAG_TABLE)


# ---------------------------------------------------------------------------------------
# Parsing.

def _looks_like_flag(token: str) -> bool:
    return token.startswith("-") and len(token) > 1 and not _is_number(token)


def _take_values(flag: str, spec: FlagSpec, rest: Sequence[str]) -> list[str]:
    """The raw value tokens ``spec`` consumes from ``rest`` (the tokens after the flag)."""
    if spec.kind == "cell":
        # nanoBragg stops reading the cell at the first token that starts with '-'
        count = 0
        while count < min(spec.nargs, len(rest)) and not rest[count].startswith("-"):
            count += 1
        if count == 0:
            raise InputError(f"{flag}: expected 1 to {spec.nargs} numbers")
        return list(rest[:count])
    if spec.kind == "misset" and rest and rest[0] in ("random", "rand"):
        return [rest[0]]
    available = 0
    while available < min(spec.nargs, len(rest)) and not _looks_like_flag(rest[available]):
        available += 1
    if available < spec.nargs:
        if spec.nargs == 1:
            raise InputError(f"{flag}: missing value")
        raise InputError(f"{flag}: expected {spec.nargs} values, got {available}")
    return list(rest[:spec.nargs])


def _convert(flag: str, spec: FlagSpec, tokens: list[str]) -> list:
    if spec.kind == "misset" and len(tokens) == 1:
        return tokens
    kind = "number" if spec.kind in ("cell", "misset") else spec.kind
    return [_CONVERTERS[kind](flag, token) for token in tokens]


def _gnu_option(token: str, rest: Sequence[str]) -> tuple[FlagSpec, list[str], int]:
    """Split '--opt=value' / '--opt value'; returns (spec, raw values, tokens used)."""
    name, has_inline, inline = token.partition("=")
    spec = _BY_NAME.get(name)
    if spec is None:
        raise InputError(f"unknown option {name!r}")
    if spec.nargs == 0:
        if has_inline:
            raise InputError(f"{name}: takes no value")
        return spec, [], 1
    if has_inline:
        return spec, [inline], 1
    if not rest:
        raise InputError(f"{name}: missing value")
    return spec, [rest[0]], 2


def _tokenize(argv: Sequence[str]) -> list[tuple[str, FlagSpec, list]]:
    """Validate argv into (flag, spec, parsed values) triples in command-line order."""
    parsed = []
    i = 0
    while i < len(argv):
        token, rest = argv[i], argv[i + 1:]
        if token.startswith("--"):
            spec, raw, used = _gnu_option(token, rest)
            flag = spec.names[0]
        elif token in _BY_NAME:
            flag, spec = token, _BY_NAME[token]
            raw = _take_values(flag, spec, rest)
            used = 1 + len(raw)
        elif token.startswith("-"):
            raise InputError(f"unknown flag {token!r}")
        else:
            raise InputError(f"unexpected argument {token!r}")
        parsed.append((flag, spec, _convert(flag, spec, raw)))
        i += used
    return parsed


def _read_header_image(flag: str, path: str):
    try:
        return read_smv(path)
    except InputError as exc:      # already names the file; add the flag
        raise InputError(f"{flag}: {exc}") from None


# header key -> (field, conversion), applied when the key is present
_HEADER_FIELDS = (
    ("DISTANCE", "distance", _mm),
    ("CLOSE_DISTANCE", "close_distance", _mm),
    ("WAVELENGTH", "lambda0", _angstrom),
    ("BEAM_CENTER_X", "Xbeam", _mm),
    ("BEAM_CENTER_Y", "Ybeam", _mm),
    ("ORGX", "ORGX", _same),
    ("ORGY", "ORGY", _same),
    ("PHI", "phi0", _deg),
    ("OSC_RANGE", "osc", _deg),
)


def _header_number(header: str, key: str, origin: str) -> float:
    """header_value, NaN when the key is absent; a key whose value is NaN or infinite is refused."""
    value = header_value(header, key)
    if not math.isfinite(value) and key in header:
        raise InputError(f"{origin} {key}: not a finite number")
    return value


def _ingest_header(settings: Settings, flag: str, path: str) -> np.ndarray:
    """Copy detector geometry from an SMV header as nanoBragg does; returns the pixels.

    The mask header's BEAM_CENTER_Y is measured from the other detector edge, so for
    -mask it is flipped: Ybeam = detsize_s - value.
    """
    image = _read_header_image(flag, path)
    origin = f"{flag} '{path}' header"
    _put(settings, fpixels=image.width, spixels=image.height)
    pixel_mm = _header_number(image.header, "PIXEL_SIZE", origin)
    if not math.isnan(pixel_mm):
        _put(settings, pixel_size=pixel_mm / 1000.0)
        settings.origins["pixel_size"] = origin + " PIXEL_SIZE"
    _put(settings, detsize_f=settings.pixel_size * image.width,
         detsize_s=settings.pixel_size * image.height)
    settings.origins.update(fpixels=origin + " SIZE1", spixels=origin + " SIZE2",
                            detsize_f=origin + " SIZE1", detsize_s=origin + " SIZE2")
    for key, name, convert in _HEADER_FIELDS:
        raw = _header_number(image.header, key, origin)
        if math.isnan(raw):
            continue
        value = convert(raw)
        if name == "Ybeam" and flag == "-mask":
            value = settings.detsize_s - value
        _put(settings, **{name: value})
        settings.origins[name] = f"{origin} {key}"
    return image.data


def _last_value(parsed, flag: str) -> Optional[str]:
    values = [values[0] for name, _, values in parsed if name == flag]
    return values[-1] if values else None


def parse_args(argv: Sequence[str]) -> Settings:
    """Turn nanoBragg arguments (without the program name) into Settings.

    Raises InputError (one line naming the flag or file) for unknown flags, missing or
    malformed values and unreadable -img/-mask files.
    """
    argv = [str(token) for token in argv]
    parsed = _tokenize(argv)
    settings = Settings(argv=tuple(argv))
    # Headers come first (mask, then img: the last read wins); flags then override them.
    mask_path = _last_value(parsed, "-mask")
    if mask_path is not None:
        mask = _ingest_header(settings, "-mask", mask_path)
        _put(settings, mask=np.asarray(mask, dtype=np.uint16))
    img_path = _last_value(parsed, "-img")
    if img_path is not None:
        _ingest_header(settings, "-img", img_path)
    for flag, spec, values in parsed:
        earlier, settings.explicit = settings.explicit, set()
        spec.apply(settings, values)
        settings.origins.update(dict.fromkeys(settings.explicit, flag))
        settings.explicit |= earlier
    return settings


def usage_text() -> str:
    """Compact help generated from FLAG_TABLE."""
    lines = [
        "usage: arraybragg [nanoBragg flags] [--options]",
        "Flags are matched exactly. Lengths in mm, angles in degrees unless stated.",
    ]
    for spec in FLAG_TABLE:
        left = "  " + ", ".join(spec.names) + (f" {spec.metavar}" if spec.metavar else "")
        if len(left) <= 30:
            lines.append(f"{left:<31}{spec.help}")
        else:
            lines.extend([left, " " * 31 + spec.help])
    return "\n".join(lines) + "\n"
