"""``arraybragg-noisify``: noisify's command line (bl831/nanoBragg) over :mod:`arraybragg.response`.

Same flags, defaults and output files as noisify: a float image (photons/pixel
up to ``-scale``) becomes the noiseless SMV ``-intfile``, the ``-pgmfile`` preview
and the noisy SMV ``-noisefile``.  Flags are matched exactly (noisify matches
substrings); the aliases noisify accepts are listed.  Bad input: one line
naming the flag or file, exit status 2, and no output file is written.
"""
from __future__ import annotations

import gc
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ..process import before_numpy, finish

# NumPy asks for transparent huge pages for every array over 4 MB.  This one-second process fills
# ~200 MB of fresh arrays once, and here the kernel's huge-page faults cost it 0.2-0.4 s of system
# time against 0.2 s with small pages (docs/benchmarks.md).
before_numpy(huge_pages=False)

import numpy as np  # noqa: E402  (after the settings above)

from ..backend import keep_freed_host_memory  # noqa: E402
from ..concurrency import each  # noqa: E402
from ..errors import InputError, report_failures  # noqa: E402
from ..io.cformat import c_float  # noqa: E402
from ..io.files import StagedOutputs  # noqa: E402
from ..io.smv import header_value, read_smv  # noqa: E402
from ..response import DetectorResponse, apply_response  # noqa: E402
from ..response.defects import Defects  # noqa: E402
from ..response.files import NoisifyHeader, pgm_parts, smv_header_bytes, smv_parts  # noqa: E402
from ..response.model import NOISIFY_FLUENCE  # noqa: E402
from ..response.psf import PSF  # noqa: E402

PROG = "arraybragg-noisify"


@dataclass
class NoisifySettings:
    """noisify's variables after parsing (lengths in m as noisify keeps them)."""

    floatfile: Optional[str] = None
    headerfile: Optional[str] = None
    intfile: str = "intimage.img"
    pgmfile: str = "image.pgm"
    noisefile: str = "noiseimage.img"
    distance: float = 100.0e-3
    detsize_x: float = 102.4e-3
    detsize_y: float = 102.4e-3
    pixel: float = 0.1e-3
    xbeam: Optional[float] = None
    ybeam: Optional[float] = None
    xpixels: int = 0
    ypixels: int = 0
    wavelength: float = 1.0
    phi: float = 0.0
    osc: float = 1.0
    psf: Optional[str] = None
    psf_fwhm: float = c_float(46e-6)  # a C float in noisify
    psf_radius: int = 0
    psf_method: str = "direct"
    threads: Optional[int] = None  # --threads: the PSF's threads (None: every core)
    fluence: float = NOISIFY_FLUENCE
    scale: float = 1.0
    gain: float = 1.0
    adc: float = 40.0
    readout: float = 0.0
    flicker: float = 0.0
    calibration: float = 0.03
    seed: int = field(default_factory=lambda: -int(time.time()))
    calib_seed: int = 123456789
    badpix_seed: int = -1234  # as -badpix_seed 1234
    hotpix_seed: int = -5678  # as -hotpix_seed 5678 (a positive C seed would act as 1)
    hot_fraction: float = 0.0
    dead_fraction: float = 0.0
    beamstop_mm: float = 0.0
    bits: int = 16
    noise: bool = True
    write_pgm: bool = True
    show_help: bool = False


_NUMBER = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf(?:inity)?|nan)\Z", re.IGNORECASE)
_INTEGER = re.compile(r"[+-]?\d+\Z")


def _number(flag: str, token: str) -> float:
    if not _NUMBER.match(token):
        raise InputError(f"{flag}: expected a number, got {token!r}")
    return float(token)


def _integer(flag: str, token: str) -> int:
    if not _INTEGER.match(token) or not -2**31 <= int(token) < 2**31:
        raise InputError(f"{flag}: expected an integer, got {token!r}")
    return int(token)


def _text(flag: str, token: str) -> str:
    return token


def _psf_kind(token: str) -> str:
    """noisify's reading of a -psf value: it names fiber if it contains "fiber", else gauss if it contains
    "gauss" ("-psf gaussian" is a Gaussian); anything else is kept, to be refused."""
    return "fiber" if "fiber" in token else "gauss" if "gauss" in token else token


def _mm(v):
    return v / 1000.0


def _neg(v):
    return -v


def _same(v):
    return v


# flag names -> (settings fields, value parser, conversion); fields set together
_VALUES = {
    ("-lambda",): (("wavelength",), _number, _same),
    ("-Xbeam",): (("xbeam",), _number, _mm),
    ("-Ybeam",): (("ybeam",), _number, _mm),
    ("-distance",): (("distance",), _number, _mm),
    ("-detsize",): (("detsize_x", "detsize_y"), _number, _mm),
    ("-detsize_x",): (("detsize_x",), _number, _mm),
    ("-detsize_y",): (("detsize_y",), _number, _mm),
    ("-detpixels",): (("xpixels", "ypixels"), _integer, _same),
    ("-detpixels_x",): (("xpixels",), _integer, _same),
    ("-detpixels_y",): (("ypixels",), _integer, _same),
    ("-pixel",): (("pixel",), _number, _mm),
    ("-psf",): (("psf",), _text, _psf_kind),
    ("-psf_radius", "-psf_rad"): (("psf_radius",), _number, lambda v: int(v) if math.isfinite(v) else 0),
    ("-psf_fwhm", "-psf_sigma", "-psf_width"): (("psf_fwhm",), _number, lambda v: c_float(v / 1e6)),
    ("-fluence",): (("fluence",), _number, _same),
    ("-floatfile", "-floatimage", "-bin"): (("floatfile",), _text, _same),
    ("-header",): (("headerfile",), _text, _same),
    ("-pgmfile", "-pgmimage"): (("pgmfile",), _text, _same),
    ("-intfile", "-intimage"): (("intfile",), _text, _same),
    ("-noisefile", "-noiseimage"): (("noisefile",), _text, _same),
    ("-bits",): (("bits",), _integer, _same),
    ("-readout_noise", "-readout", "-readnoise"): (("readout",), _number, _same),
    ("-flicker",): (("flicker",), _number, _same),
    ("-calibration",): (("calibration",), _number, _same),
    ("-scale",): (("scale",), _number, _same),
    ("-seed",): (("seed",), _integer, _neg),
    ("-calib_seed",): (("calib_seed",), _integer, _neg),
    ("-badpix_seed",): (("badpix_seed",), _integer, _neg),
    ("-hotpix_seed",): (("hotpix_seed",), _integer, _neg),
    ("-adc",): (("adc",), _number, _same),
    ("-gain",): (("gain",), _number, _same),
    ("-phi",): (("phi",), _number, _same),
    ("-osc",): (("osc",), _number, _same),
    ("--psf-method",): (("psf_method",), _text, _same),
    ("--threads",): (("threads",), _integer, _same),
    ("--hot-pixels",): (("hot_fraction",), _number, _same),
    ("--dead-pixels",): (("dead_fraction",), _number, _same),
    ("--beamstop",): (("beamstop_mm",), _number, _same),
}
_SWITCHES = {"-nonoise": ("noise", False), "-nopgm": ("write_pgm", False),
             "-h": ("show_help", True), "--help": ("show_help", True)}
_BY_NAME = {name: spec for names, spec in _VALUES.items() for name in names}


def parse_args(argv: Sequence[str]) -> NoisifySettings:
    """noisify's flags into :class:`NoisifySettings`; InputError names a bad flag."""
    settings = NoisifySettings()
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in _SWITCHES:
            name, value = _SWITCHES[token]
            setattr(settings, name, value)
            i += 1
            continue
        flag, has_inline, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if flag in _BY_NAME:
            fields, parse, convert = _BY_NAME[flag]
            if not has_inline and i + 1 >= len(argv):
                raise InputError(f"{flag}: missing value")
            value = convert(parse(flag, inline if has_inline else argv[i + 1]))
            for name in fields:
                setattr(settings, name, value)
            i += 1 if has_inline else 2
        elif "floatimage.bin" in token and not token.startswith("-"):
            settings.floatfile = token  # noisify takes any argument naming a floatimage.bin
            i += 1
        else:
            raise InputError(f"unknown flag {token!r}" if token.startswith("-") else f"unexpected argument {token!r}")
    _check(settings)
    return settings


def _check(settings: NoisifySettings) -> None:
    if settings.bits not in (16, 32):
        raise InputError(f"-bits: {settings.bits} is not 16 or 32")
    if settings.psf is not None and settings.psf not in ("gauss", "fiber"):
        raise InputError(f"-psf: unknown point-spread function {settings.psf!r} (gauss or fiber)")
    if settings.psf_method not in ("direct", "fft"):
        raise InputError(f"--psf-method: {settings.psf_method!r} is not direct or fft")
    if settings.threads is not None and settings.threads < 1:
        raise InputError(f"--threads: expected a positive integer, got {settings.threads}")
    if not settings.pixel > 0.0:
        raise InputError(f"-pixel: must be positive, got {settings.pixel * 1000.0:g}")
    for flag, value in (("--hot-pixels", settings.hot_fraction), ("--dead-pixels", settings.dead_fraction)):
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{flag}: fraction {value:g} is not in [0, 1]")


@dataclass
class Frame:
    """The input image and the detector it belongs to."""

    image: np.ndarray  # float32 (ypixels, xpixels)
    header: Optional[bytes]  # the -header file's header bytes, copied into the outputs
    fields: NoisifyHeader
    beam: tuple[float, float]  # Xbeam, Ybeam (m): the beam along fast and slow from the first corner


def _read_floats(path: str) -> np.ndarray:
    """The file's float32 values, mapped read-only rather than copied (25 ms less for a 6-megapixel
    image, measured: the pages come from the page cache as they are read)."""
    try:
        count = os.path.getsize(path) // 4
        if count == 0:  # an empty file cannot be mapped
            return np.fromfile(path, dtype=np.float32)
        return np.memmap(path, dtype=np.float32, mode="r", shape=(count,))
    except OSError as exc:
        raise InputError(f"-floatfile {path}: cannot read ({exc.strerror or exc})") from None


def _take_header(settings: NoisifySettings) -> tuple[Optional[bytes], int]:
    """Apply a -header file's geometry as noisify does; returns (its header bytes, pixel count)."""
    path = settings.headerfile
    try:
        frame = read_smv(path)
        size = int(header_value(frame.header, "HEADER_BYTES"))
        with open(path, "rb") as stream:
            raw = stream.read(size)
    except (InputError, OSError) as exc:
        raise InputError(f"-header: {exc}") from None
    settings.xpixels, settings.ypixels = frame.width, frame.height
    value = lambda key: header_value(frame.header, key)
    if not math.isnan(value("PIXEL_SIZE")):
        settings.pixel = value("PIXEL_SIZE") / 1000.0
    settings.detsize_x, settings.detsize_y = settings.pixel * frame.width, settings.pixel * frame.height
    if not math.isnan(value("DISTANCE")):
        settings.distance = value("DISTANCE") / 1000.0
    if not math.isnan(value("WAVELENGTH")):
        settings.wavelength = value("WAVELENGTH") / 1e10  # (sic: noisify's header then says ~1e-10)
    if not math.isnan(value("BEAM_CENTER_X")):
        settings.xbeam = value("BEAM_CENTER_X") / 1000.0
    if not math.isnan(value("BEAM_CENTER_Y")):
        settings.ybeam = settings.detsize_y - value("BEAM_CENTER_Y") / 1000.0
    return raw[:size], frame.width * frame.height


def _guess_shape(pixels: int) -> tuple[int, int]:
    """noisify's guess of (xpixels, ypixels) from a pixel count: the squarest exact factoring."""
    x = math.isqrt(pixels)
    while x > 0 and pixels % x:
        x -= 1
    return (x, pixels // x) if x > 0 else (pixels, 1)


def load_frame(settings: NoisifySettings) -> Frame:
    """Read the float image (and -header) and settle the detector as noisify does."""
    if settings.floatfile is None:
        raise InputError("-floatfile: no float image given")
    floats = _read_floats(settings.floatfile)
    header, pixels = (None, floats.size)
    if settings.headerfile is not None:
        header, pixels = _take_header(settings)
    x, y = settings.xpixels, settings.ypixels
    if not x and not y:
        x, y = _guess_shape(pixels)
    elif x and not y:
        y = pixels // x
    elif y and not x:
        x = pixels // y
    if x <= 0 or y <= 0:
        raise InputError(f"-detpixels: bad image size {x} x {y}")
    if floats.size < x * y:
        raise InputError(f"-floatfile {settings.floatfile}: {floats.size} floats, {x} x {y} needed")
    settings.detsize_x, settings.detsize_y = settings.pixel * x, settings.pixel * y
    xbeam = settings.detsize_x / 2.0 if settings.xbeam is None else settings.xbeam
    ybeam = settings.detsize_y / 2.0 if settings.ybeam is None else settings.ybeam
    fields = NoisifyHeader(fpixels=x, spixels=y, pixel_size_mm=settings.pixel * 1000.0,
                           distance_mm=settings.distance * 1000.0, wavelength=settings.wavelength,
                           beam_center_x_mm=xbeam * 1000.0, beam_center_y_mm=(settings.detsize_y - ybeam) * 1000,
                           phi_deg=settings.phi, osc_range_deg=settings.osc)
    return Frame(floats[:x * y].reshape(y, x), header, fields, (xbeam, ybeam))


def response_of(settings: NoisifySettings, frame: Frame) -> DetectorResponse:
    """The :class:`DetectorResponse` noisify's settings describe."""
    blurred = settings.psf is not None and settings.psf_fwhm > 0.0
    if (blurred or settings.beamstop_mm) and not settings.pixel > 0.0:  # -pixel is checked: this is -header's
        raise InputError(f"-header {settings.headerfile}: PIXEL_SIZE {settings.pixel * 1000.0:g} mm is not a size "
                         "the PSF or the beamstop can be measured in")
    psf = None
    if blurred:
        psf = PSF(settings.psf, settings.psf_fwhm / settings.pixel, settings.psf_radius, settings.psf_method)
    defects = None
    if settings.hot_fraction or settings.dead_fraction or settings.beamstop_mm:
        defects = Defects(hot_fraction=settings.hot_fraction, hotpix_seed=settings.hotpix_seed,
                          dead_fraction=settings.dead_fraction, badpix_seed=settings.badpix_seed,
                          beamstop_radius=settings.beamstop_mm / 1000.0 / settings.pixel,
                          beam_fast=frame.beam[0] / settings.pixel, beam_slow=frame.beam[1] / settings.pixel)
    noise = settings.noise
    return DetectorResponse(
        scale=settings.scale, fluence=settings.fluence, gain=settings.gain, adc_offset=settings.adc,
        readout_noise=settings.readout if noise else 0.0, flicker=settings.flicker if noise else 0.0,
        calibration=settings.calibration if noise else 0.0, seed=settings.seed,
        calib_seed=settings.calib_seed, psf=psf, noise=noise, bits=settings.bits, defects=defects)


def _write_all(files: list[tuple[str, tuple]]) -> None:
    """Write every file (path, its parts) or none (``io.files.StagedOutputs``), each on its own thread
    (the copies into the page cache overlap); a failure is reported as bad input naming the file."""
    def write(item: tuple) -> None:
        path, temporary, parts = item
        try:
            with open(temporary, "wb") as stream:
                for part in parts:
                    stream.write(part)
        except OSError as exc:
            raise InputError(f"{path}: cannot write ({exc.strerror or exc})") from None

    try:
        with StagedOutputs() as staged:
            items = [(path, staged.stage(path), parts) for path, parts in files]
            each(write, items, len(items))
    except OSError as exc:
        raise InputError(f"{exc.filename}: cannot write ({exc.strerror or exc})") from None


def _settings_lines(settings: NoisifySettings, frame: Frame) -> list[str]:
    f = frame.fields
    lines = ["importing %d pixel intensites: %s" % (frame.image.size, settings.floatfile),
             "  distance=%g detsize=%gx%g  pixel=%g meters (%dx%d pixels)" % (
                 settings.distance, settings.detsize_x, settings.detsize_y, settings.pixel, f.fpixels, f.spixels),
             "  Xbeam=%g Ybeam=%g" % frame.beam]
    if settings.psf is not None:
        lines.append("  %s PSF fwhm = %g um  with %s" % (
            "Gaussian" if settings.psf == "gauss" else "fiber", settings.psf_fwhm * 1e6,
            "automatic rendering radius" if settings.psf_radius == 0 else
            "rendering radius: %d" % settings.psf_radius))
    lines += ["  seed: %d" % settings.seed, "  calibration noise seed: %d" % settings.calib_seed,
              "  calibration_noise = %g %%" % (settings.calibration * 100), "  input file scale = %g" % settings.scale,
              "  readout_noise = %g ADU" % settings.readout, "  flicker_noise = %g %%" % (settings.flicker * 100),
              "  quantum_gain = %g ADU/photon" % settings.gain, "  adc_offset = %g ADU" % settings.adc, ""]
    return lines


def run(argv: Sequence[str], out=None) -> int:
    """Parse, apply the response and write noisify's files; returns the exit status."""
    out = out or sys.stdout
    settings = parse_args(argv)
    if settings.show_help or not argv:
        out.write(__doc__.split("\n\n")[0] + "\n\nflags: " + " ".join(sorted(_BY_NAME) + sorted(_SWITCHES)) + "\n")
        return 0 if settings.show_help else 2
    frame = load_frame(settings)
    response = response_of(settings, frame)
    keep_freed_host_memory()  # many large temporaries: reuse the heap instead of fresh pages
    result = apply_response(frame.image, response, threads=settings.threads)
    log = _settings_lines(settings, frame)
    log.append("maximum value in input file: %g ( %g on photon scale)" % (
        result.max_input, result.max_input * settings.scale * settings.fluence * 7.94079248018965e-30))
    header = frame.header or smv_header_bytes(frame.fields, settings.bits)
    files = [(settings.intfile, smv_parts(header, result.int_image))]
    log.append("writing %s as %d %d-byte integers" % (settings.intfile, frame.image.size, settings.bits // 8))
    if settings.write_pgm:
        files.append((settings.pgmfile, pgm_parts(result.int16_image)))
        log.append("writing %s as 1-byte integers" % settings.pgmfile)
    if settings.noise:
        if response.psf is not None:
            log.append("%.0f photons on noise image before PSF" % result.photons_before_psf)
        log.append("%.0f photons on noise image (%d overloads)" % (result.noise_photons, result.overloads))
        files.append((settings.noisefile, smv_parts(header, result.noise_image)))
        log.append("writing %s as %d-byte integers" % (settings.noisefile, settings.bits // 8))
    _write_all(files)
    out.write("\n".join(log) + "\n")
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    with warnings.catch_warnings():
        # values beyond their range (inf - inf, 0 x inf) give what the C's arithmetic gives, as NumPy does,
        # and its RuntimeWarnings would only add lines to the program's output (as in the main command)
        warnings.simplefilter("ignore", RuntimeWarning)
        return report_failures(PROG, run, sys.argv[1:] if argv is None else argv)


def console() -> None:
    """The ``arraybragg-noisify`` program: :func:`main`, then the process ends at once (its files are
    written and closed by then).  The objects of the imported modules are set aside from Python's
    cyclic garbage collector, which would otherwise go over them again and again (about 3% of
    the CPU time of a 6-megapixel run, measured)."""
    gc.freeze()
    finish(main())


if __name__ == "__main__":
    console()
