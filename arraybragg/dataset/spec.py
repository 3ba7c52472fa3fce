"""The dataset description: a TOML file (or dict) -> a validated :class:`DatasetSpec`.

Layout (every table but ``[dataset]`` optional; angles in degrees, lengths in mm, as nanoBragg)::

    [dataset]
    frames = 100                      # number of images
    seed = 2024                       # spec seed: every per-frame random draw derives from it
    base = "-cell 79 79 38 90 90 90 -hkl P1.hkl -N 10 -lambda 1 -distance 100 -detpixels 1024"

    [orientation]
    mode = "stills"                   # "stills": uniform on SO(3); "rotation": a spindle series; "fixed"
    start = 0.0                       # rotation: phi of frame 0 (deg)
    oscillation = 0.1                 # rotation: phi range of each frame (deg)
    phisteps = 10                     # rotation: phi steps within a frame

    [jitter]                          # per-frame variation (0 = none)
    cell = 0.005                      # relative sigma of a, b, c (Gaussian)
    crystal_size = 0.2                # log-normal sigma of Na, Nb, Nc (rounded, >= 1 cell)
    wavelength = 0.001                # relative sigma of every source wavelength (Gaussian)
    fluence = 0.3                     # log-normal sigma of the fluence
    distance = 0.5                    # sigma of the detector distance (mm, Gaussian)

    [noise]
    poisson = true                    # also store a Poisson-noise image (nanoBragg's stream) per frame

    [response]                        # the noise image from the detector-response model instead (noisify's)
    readout_noise = 3.0               # ADU rms
    flicker = 0.0                     # fractional source flicker per pixel
    calibration = 0.03                # fractional calibration error, the same pattern in every frame
    gain = 1.0                        # ADU per photon
    psf = "gauss"                     # "none" (default), "gauss" or "fiber"; psf_fwhm in um, psf_radius pixels

File paths in ``base`` (-hkl, -mat, -sourcefile, -mask, -img) are relative to the spec's directory.
"""
from __future__ import annotations

import json
import math
import os
import shlex
from dataclasses import asdict, dataclass, field
from typing import Optional

from ..errors import InputError

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

MODES = ("stills", "rotation", "fixed")
PATH_FLAGS = ("-hkl", "-mat", "-sourcefile", "-mask", "-img")
# flags the dataset sets per frame or ignores: refused in base so nobody expects them to act
REFUSED_FLAGS = ("-seed", "-floatfile", "-floatimage", "-intfile", "-intimage", "-noisefile", "-noiseimage",
                 "-pgmfile", "-pgmimage", "-trace_pixel", "-printout", "-printout_pixel")


@dataclass(frozen=True)
class Orientation:
    mode: str = "stills"
    start: float = 0.0          # deg
    oscillation: float = 0.0    # deg
    phisteps: int = 1


@dataclass(frozen=True)
class Jitter:
    cell: float = 0.0
    crystal_size: float = 0.0
    wavelength: float = 0.0
    fluence: float = 0.0
    distance: float = 0.0       # mm


@dataclass(frozen=True)
class Response:
    """The ``[response]`` table: detector-response settings shared by every frame (see docs/noisify.md)."""

    scale: float = 1.0               # photons per photon of the rendered image
    gain: float = 1.0                # ADU per photon
    adc_offset: Optional[float] = None  # ADU; None: the base's -adc (nanoBragg's default 40)
    readout_noise: float = 0.0       # ADU rms
    flicker: float = 0.0             # fractional, per pixel and frame
    calibration: float = 0.0         # fractional, per pixel, the same in every frame
    calib_seed: Optional[int] = None  # as -calib_seed; None: derived from the dataset seed
    psf: str = "none"                # "none", "gauss" or "fiber"
    psf_fwhm: float = 46.0           # um
    psf_radius: int = 0              # pixels (0: automatic)
    psf_method: str = "direct"       # "direct" (noisify's sum) or "fft"
    bits: int = 16                   # noise image integers: 16 or 32 bits
    hot_pixels: float = 0.0          # fraction of pixels reading the top of the range (per dataset)
    dead_pixels: float = 0.0         # fraction of pixels reading 0 (per dataset)
    beamstop: float = 0.0            # radius (mm) of an opaque beamstop's shadow around the beam centre


@dataclass(frozen=True)
class DatasetSpec:
    """A validated dataset description; ``base`` holds nanoBragg arguments with absolute file paths."""

    frames: int
    seed: int
    base: tuple[str, ...]
    orientation: Orientation = field(default_factory=Orientation)
    jitter: Jitter = field(default_factory=Jitter)
    poisson: bool = False
    response: Optional[Response] = None

    @property
    def has_noise(self) -> bool:
        """Whether a noise image is stored per frame (Poisson, or the detector response's)."""
        return self.poisson or self.response is not None

    def to_json(self) -> str:
        """Canonical text of the description (stored with a dataset; a resume must match it)."""
        d = asdict(self)
        if d["response"] is None:  # as datasets made before [response] existed
            del d["response"]
        return json.dumps(d, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "DatasetSpec":
        d = json.loads(text)
        return cls(frames=d["frames"], seed=d["seed"], base=tuple(d["base"]),
                   orientation=Orientation(**d["orientation"]), jitter=Jitter(**d["jitter"]),
                   poisson=d["poisson"], response=Response(**d["response"]) if d.get("response") else None)


_TABLES = {
    "dataset": {"frames": int, "seed": int, "base": (str, list)},
    "orientation": {"mode": str, "start": float, "oscillation": float, "phisteps": int},
    "jitter": {"cell": float, "crystal_size": float, "wavelength": float, "fluence": float, "distance": float},
    "noise": {"poisson": bool},
    "response": {"scale": float, "gain": float, "adc_offset": float, "readout_noise": float, "flicker": float,
                 "calibration": float, "calib_seed": int, "psf": str, "psf_fwhm": float, "psf_radius": int,
                 "psf_method": str, "bits": int, "hot_pixels": float, "dead_pixels": float, "beamstop": float},
}
PSF_KINDS = ("none", "gauss", "fiber")
PSF_KEYS = ("psf_fwhm", "psf_radius", "psf_method")


def _checked(table: str, key: str, value, kind):
    """``value`` if it has the type ``kind`` says, else InputError naming ``table.key``."""
    name = f"{table}.{key}"
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (kind is int and isinstance(value, bool)):
        wanted = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(
            kind, "a string or a list of strings")
        raise InputError(f"{name}: expected {wanted}, got {value!r}")
    if kind is float and not math.isfinite(value):
        raise InputError(f"{name}: expected a finite number, got {value!r}")
    return value


def _tables(raw: dict) -> dict[str, dict]:
    """Every table of ``raw`` type-checked, unknown tables and keys refused."""
    if not isinstance(raw, dict):
        raise InputError("dataset description: expected a table of tables")
    checked = {}
    for table, values in raw.items():
        if table not in _TABLES:
            raise InputError(f"{table}: unknown table (known: {', '.join(_TABLES)})")
        if not isinstance(values, dict):
            raise InputError(f"{table}: expected a table")
        for key in values:
            if key not in _TABLES[table]:
                raise InputError(f"{table}.{key}: unknown key (known: {', '.join(_TABLES[table])})")
        checked[table] = {k: _checked(table, k, v, _TABLES[table][k]) for k, v in values.items()}
    return checked


def _base_arguments(base, base_dir: str) -> tuple[str, ...]:
    """nanoBragg arguments of ``dataset.base`` with file paths made absolute (relative to base_dir)."""
    if isinstance(base, str):
        try:
            tokens = shlex.split(base)
        except ValueError as exc:
            raise InputError(f"dataset.base: {exc}") from None
    else:
        if not all(isinstance(t, (str, int, float)) and not isinstance(t, bool) for t in base):
            raise InputError("dataset.base: expected a list of strings")
        tokens = [str(t) for t in base]
    for flag in REFUSED_FLAGS:
        if flag in tokens:
            raise InputError(f"dataset.base: {flag} is set per frame by the dataset; remove it")
    resolved = list(tokens)
    for i, token in enumerate(tokens[:-1]):
        if token in PATH_FLAGS:
            resolved[i + 1] = os.path.join(base_dir, os.path.expanduser(tokens[i + 1]))
    return tuple(resolved)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


def _response(table: Optional[dict]) -> Optional[Response]:
    """The validated ``[response]`` table (None when absent)."""
    if table is None:
        return None
    r = Response(**table)
    for key in ("scale", "gain"):
        _require(getattr(r, key) > 0.0, f"response.{key}: expected > 0, got {getattr(r, key)}")
    for key in ("readout_noise", "flicker", "calibration", "beamstop"):
        _require(getattr(r, key) >= 0.0, f"response.{key}: expected >= 0, got {getattr(r, key)}")
    for key in ("hot_pixels", "dead_pixels"):
        _require(0.0 <= getattr(r, key) <= 1.0, f"response.{key}: expected a fraction in [0, 1], got {getattr(r, key)}")
    _require(r.calib_seed is None or 1 <= r.calib_seed < 2 ** 31,
             f"response.calib_seed: expected 1 <= seed < 2**31, got {r.calib_seed}")
    _require(r.bits in (16, 32), f"response.bits: expected 16 or 32, got {r.bits}")
    _require(r.psf in PSF_KINDS, f"response.psf: expected one of {', '.join(PSF_KINDS)}, got {r.psf!r}")
    _require(r.psf_method in ("direct", "fft"), f"response.psf_method: expected direct or fft, got {r.psf_method!r}")
    _require(r.psf_fwhm > 0.0, f"response.psf_fwhm: expected > 0 (um), got {r.psf_fwhm}")
    _require(r.psf_radius >= 0, f"response.psf_radius: expected >= 0 (pixels), got {r.psf_radius}")
    if r.psf == "none":
        for key in PSF_KEYS:
            _require(key not in table, f"response.{key}: only used with psf = \"gauss\" or \"fiber\"")
    return r


def spec_from_dict(raw: dict, base_dir: str = ".") -> DatasetSpec:
    """Validate a parsed description (the TOML's tables as dicts); InputError names the bad key."""
    tables = _tables(raw)
    ds = tables.get("dataset", {})
    for key in ("frames", "seed", "base"):
        _require(key in ds, f"dataset.{key}: missing (required)")
    _require(ds["frames"] >= 1, f"dataset.frames: expected at least 1, got {ds['frames']}")
    _require(0 <= ds["seed"] < 2 ** 63, f"dataset.seed: expected 0 <= seed < 2**63, got {ds['seed']}")
    orientation = Orientation(**tables.get("orientation", {}))
    _require(orientation.mode in MODES,
             f"orientation.mode: expected one of {', '.join(MODES)}, got {orientation.mode!r}")
    _require(orientation.phisteps >= 1, f"orientation.phisteps: expected at least 1, got {orientation.phisteps}")
    _require(orientation.oscillation >= 0.0,
             f"orientation.oscillation: expected >= 0, got {orientation.oscillation}")
    if orientation.mode != "rotation":
        for key in ("start", "oscillation", "phisteps"):
            _require(key not in tables.get("orientation", {}),
                     f"orientation.{key}: only used with mode = \"rotation\"")
    jitter = Jitter(**tables.get("jitter", {}))
    for key, value in asdict(jitter).items():
        _require(value >= 0.0, f"jitter.{key}: expected a sigma >= 0, got {value}")
    _require(jitter.cell < 0.2, f"jitter.cell: a relative sigma below 0.2 expected, got {jitter.cell}")
    _require(jitter.wavelength < 0.2,
             f"jitter.wavelength: a relative sigma below 0.2 expected, got {jitter.wavelength}")
    return DatasetSpec(frames=ds["frames"], seed=ds["seed"], base=_base_arguments(ds["base"], base_dir),
                       orientation=orientation, jitter=jitter,
                       poisson=tables.get("noise", {}).get("poisson", False),
                       response=_response(tables.get("response")))


def load_spec(path) -> DatasetSpec:
    """Read and validate a TOML dataset description; errors name the file and the key."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path}: not valid TOML ({exc})") from None
    try:
        return spec_from_dict(raw, os.path.dirname(os.path.abspath(path)))
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
