"""CrystFEL geometry files (``.geom``, crystfel_geometry(5)): multi-panel detectors in, and out.

CrystFEL's lab frame has the beam along +z, +y up and +x completing a right-handed frame; the
panels read here are placed in our lab frame with the same axes, so the experiment's beam goes
along +z (:meth:`CrystfelGeometry.beam`).  Lengths in the file: ``res`` pixels per metre,
``corner_x``/``corner_y`` in pixels of their panel (the outer corner of the panel's first pixel),
``clen`` in metres unless followed by ``mm`` (a data-file path is a distance in mm read from the
data, which we take from the caller), ``coffset`` in metres.  See docs/geometry.md.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..io.files import atomic_write
from .beam import EV_ANGSTROM, Beam
from .checks import finite_token
from .detector import Detector, Panel
from .experiment import Sampling

REGION_KEYS = ("min_fs", "max_fs", "min_ss", "max_ss")
XY_KEYS = ("min_x", "max_x", "min_y", "max_y")
REQUIRED = REGION_KEYS + ("corner_x", "corner_y", "fs", "ss", "res")
FLOAT_KEYS = ("corner_x", "corner_y", "coffset", "adu_per_eV", "adu_per_photon", "max_adu")
# Keys about the data file or its pixel values: read past (masks and saturation from data files too).
IGNORED = ("data", "dim", "mask", "saturation_map", "flag_", "badrow_direction", "peak_list")
GLOBAL_KEYS = ("clen", "photon_energy", "wavelength", "electron_voltage", "bandwidth",
               "detector_shift_x", "detector_shift_y")
DIRECTION = re.compile(r"([+-]?)(\d*\.?\d*(?:[eE][+-]?\d+)?)([xyz])")
RESERVED = ("bad", "group", "rigid_group")


@dataclass(frozen=True)
class PanelFacts:
    """What a CrystFEL panel says besides its geometry.

    ``data_region`` is (min_fs, max_fs, min_ss, max_ss), inclusive, in the data array;
    ``adu_per_photon`` is derived from ``adu_per_eV`` when the photon energy is known.
    """

    name: str
    data_region: tuple[int, int, int, int]
    adu_per_photon: Optional[float]
    adu_per_eV: Optional[float]
    max_adu: float
    no_index: bool


@dataclass(frozen=True)
class CrystfelGeometry:
    """A CrystFEL geometry file read: the detector (beam along +z), per-panel masks and facts."""

    path: str
    detector: Detector
    masks: tuple[np.ndarray, ...] = field(compare=False)
    panels: tuple[PanelFacts, ...]
    clen_mm: float
    photon_energy_eV: Optional[float]
    bandwidth: Optional[float] = None
    groups: dict = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    def beam(self, **kwargs) -> Beam:
        """The file's beam: along +z, polarized along x (CrystFEL's horizontal), at its photon energy."""
        if self.photon_energy_eV is None:
            raise InputError(f"{self.path}: no photon_energy; give the beam's energy with -energy or -lambda")
        kwargs.setdefault("polarization_axis", (1.0, 0.0, 0.0))
        return Beam.from_energy(self.photon_energy_eV, direction=(0.0, 0.0, 1.0), **kwargs)

    def panel_sampling(self, sampling: Sampling = Sampling()) -> tuple[Sampling, ...]:
        """``sampling`` with each panel's mask: an Experiment's ``panel_sampling``."""
        return tuple(sampling.replace(mask=mask) for mask in self.masks)

    def assemble(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Panel images (slow, fast) placed in the data array as the file lays them out (zeros elsewhere)."""
        if len(images) != len(self.panels):
            raise InputError(f"{self.path}: {len(images)} images for {len(self.panels)} panels")
        shape = (max(p.data_region[3] for p in self.panels) + 1, max(p.data_region[1] for p in self.panels) + 1)
        data = np.zeros(shape, dtype=np.result_type(*images))
        for facts, panel, image in zip(self.panels, self.detector, images):
            if np.shape(image) != panel.shape:
                raise InputError(f"{self.path}: image of panel {facts.name} is {np.shape(image)}, not {panel.shape}")
            min_fs, max_fs, min_ss, max_ss = facts.data_region
            data[min_ss:max_ss + 1, min_fs:max_fs + 1] = image
        return data


# --------------------------------------------------------------------------- values
def _number(value: str, where: str, key: str) -> float:
    return finite_token(f"{where}: {key}", value)


def _whole(value: str, where: str, key: str) -> int:
    number = _number(value, where, key)
    if number != int(number) or number < 0:
        raise InputError(f"{where}: {key}: expected a pixel index (0 or more), got {value!r}")
    return int(number)


def _direction(value: str, where: str, key: str) -> tuple[float, float, float]:
    """CrystFEL's ``-0.0057x +0.9999y`` (a coefficient may be left out: ``x``, ``-y``)."""
    text = value.replace(" ", "").replace("\t", "")
    parts = DIRECTION.findall(text)
    if not text or "".join("".join(p) for p in parts) != text:
        raise InputError(f"{where}: {key}: expected a direction such as '-0.0057x +0.9999y', got {value!r}")
    vector = {"x": 0.0, "y": 0.0, "z": 0.0}
    for index, (sign, number, axis) in enumerate(parts):
        if number == "." or (index and not sign):
            raise InputError(f"{where}: {key}: expected a direction such as '-0.0057x +0.9999y', got {value!r}")
        vector[axis] += (-1.0 if sign == "-" else 1.0) * (float(number) if number else 1.0)
    if not any(vector.values()):
        raise InputError(f"{where}: {key}: zero direction {value!r}")
    return vector["x"], vector["y"], vector["z"]


def _flag(value: str, where: str, key: str) -> bool:
    if value.lower() in ("true", "false"):
        return value.lower() == "true"
    return bool(_whole(value, where, key))


def _with_unit(value: str, units: dict, default: Optional[str], where: str, key: str):
    """("value", number in the first unit's scale) or ("path", text) of ``number [unit]`` / ``/path [unit]``."""
    words = value.split()
    if len(words) not in (1, 2) or (len(words) == 2 and words[1] not in units):
        raise InputError(f"{where}: {key}: expected a number or data path with a unit out of "
                         f"{', '.join(units)}, got {value!r}")
    unit = words[1] if len(words) == 2 else default
    if words[0].startswith("/"):
        return "path", words[0]
    if unit is None:
        raise InputError(f"{where}: {key}: give a unit ({', '.join(units)}) after {words[0]!r}")
    return "value", _number(words[0], where, key) * units[unit]


# --------------------------------------------------------------------------- reading
@dataclass
class _Entry:
    """A panel or bad region as read: parsed values keyed by field, each with its line number."""

    name: str
    line: int
    fields: dict
    kind: Optional[str] = None      # bad regions: "xy" or "fsss"


class _Reader:
    """One pass over a file's lines: panels (with the defaults in force when first named), bad regions,
    top-level values.  Every value is checked on its line."""

    def __init__(self, path: str):
        self.path = path
        self.defaults: dict = {}
        self.panels: dict[str, _Entry] = {}
        self.bad: dict[str, _Entry] = {}
        self.toplevel: dict[str, tuple[str, int]] = {}
        self.groups: dict[str, tuple[str, ...]] = {}
        self.warnings: list[str] = []
        self.unused_default: Optional[int] = None

    def where(self, number: int) -> str:
        return f"{self.path}, line {number}"

    def read(self, text: str) -> None:
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(";", 1)[0].strip()
            if line:
                self._line(line, number)
        if self.unused_default is not None:
            raise InputError(f"{self.where(self.unused_default)}: a default after the last panel applies to no panel")
        if not self.panels:
            raise InputError(f"{self.path}: no panels (expected lines such as 'p0/min_fs = 0')")

    def _line(self, line: str, number: int) -> None:
        where = self.where(number)
        key, equals, value = (part.strip() for part in line.partition("="))
        if not equals or not key or not value:
            raise InputError(f"{where}: expected 'key = value', got {line!r}")
        owner, slash, name = key.partition("/")
        if not slash:
            return self._toplevel(key, value, number)
        if not owner or not name or "/" in name or any(c.isspace() for c in owner):
            raise InputError(f"{where}: expected 'panel/key = value', got {line!r}")
        if owner.startswith("bad"):
            return self._bad_field(owner, name, value, number)
        if owner.startswith(RESERVED):
            raise InputError(f"{where}: panel names must not start with 'group' or 'rigid_group': {owner!r}")
        if owner not in self.panels:
            self.panels[owner] = _Entry(owner, number, dict(self.defaults))
            self.unused_default = None
        self._panel_field(self.panels[owner].fields, name, value, number)

    def _toplevel(self, key: str, value: str, number: int) -> None:
        if key in GLOBAL_KEYS:
            self.toplevel[key] = (value, number)
        elif key.startswith("rigid_group"):
            pass                                       # older CrystFEL's hierarchy: ignored, as CrystFEL does
        elif key.startswith("group_"):
            self.groups[key[6:]] = tuple(member.strip() for member in value.split(","))
        else:
            self._panel_field(self.defaults, key, value, number)
            if self.panels:
                self.unused_default = number

    def _panel_field(self, fields: dict, key: str, value: str, number: int) -> None:
        where = self.where(number)
        if key in REGION_KEYS or key == "mask_edge_pixels":
            parsed = _whole(value, where, key)
        elif key in FLOAT_KEYS or key == "res":
            parsed = _number(value, where, key)
            if key == "res" and parsed <= 0.0:
                raise InputError(f"{where}: res: pixels per metre must be positive, got {value!r}")
        elif key in ("fs", "ss"):
            parsed = _direction(value, where, key)
        elif key == "no_index":
            parsed = _flag(value, where, key)
        elif key == "clen":
            raise InputError(f"{where}: clen is a top-level key (one camera length); use coffset per panel")
        else:
            if key.startswith(IGNORED):
                if key == "mask" or (key.startswith("mask") and key.endswith("_data")):
                    self.warnings.append(f"WARNING: {where}: the mask in the data files ({value}) is not read; "
                                         "give masks through Sampling(mask=...)")
            else:
                self.warnings.append(f"WARNING: {where}: unrecognised key {key!r} ignored")
            return
        if key in ("adu_per_eV", "adu_per_photon"):
            fields.pop("adu_per_photon" if key == "adu_per_eV" else "adu_per_eV", None)
        fields[key] = (parsed, number)

    def _bad_field(self, owner: str, key: str, value: str, number: int) -> None:
        where = self.where(number)
        entry = self.bad.setdefault(owner, _Entry(owner, number, {}))
        if key in XY_KEYS:
            kind, parsed = "xy", _number(value, where, key)
        elif key in REGION_KEYS:
            kind, parsed = "fsss", _whole(value, where, key)
        elif key == "panel":
            kind, parsed = None, value
        else:
            raise InputError(f"{where}: {owner}/{key}: a bad region takes min_x, max_x, min_y, max_y "
                             "or min_fs, max_fs, min_ss, max_ss and panel")
        if kind is not None and entry.kind not in (None, kind):
            raise InputError(f"{where}: bad region {owner} mixes x/y and fs/ss limits")
        entry.kind = entry.kind or kind
        entry.fields[key] = (parsed, number)


# --------------------------------------------------------------------------- building
def _photon_energy(reader: _Reader, photon_energy_eV: Optional[float]) -> Optional[float]:
    """The argument, else the file's photon_energy or wavelength; a data path needs the argument."""
    if photon_energy_eV is not None:
        return float(photon_energy_eV)
    if "electron_voltage" in reader.toplevel:
        raise InputError(f"{reader.where(reader.toplevel['electron_voltage'][1])}: electron_voltage: "
                         "electron beams are not simulated")
    units = {"photon_energy": ({"eV": 1.0, "keV": 1e3}, "eV"), "wavelength": ({"A": 1.0, "m": 1e10}, None)}
    given = [key for key in units if key in reader.toplevel]
    if not given:
        return None
    key = max(given, key=lambda name: reader.toplevel[name][1])            # the last one given, as CrystFEL
    value, number = reader.toplevel[key]
    kind, amount = _with_unit(value, *units[key], reader.where(number), key)
    if kind == "path":
        raise InputError(f"{reader.path}: {key} is read from the data files ({amount}); "
                         "give the beam's energy with -energy or -lambda")
    if amount <= 0.0:
        raise InputError(f"{reader.where(number)}: {key}: must be positive, got {value!r}")
    return amount if key == "photon_energy" else EV_ANGSTROM / amount


def _length_m(reader: _Reader, key: str, flag: str) -> tuple[str, float]:
    value, number = reader.toplevel[key]
    kind, amount = _with_unit(value, {"m": 1.0, "mm": 1e-3}, "m", reader.where(number), key)
    if kind == "path":
        raise InputError(f"{reader.path}: {key} is read from the data files ({amount}); give it with {flag}")
    return kind, amount


def _clen_mm(reader: _Reader, clen_mm: Optional[float]) -> float:
    """The argument, else the file's literal clen (metres, or mm with the unit)."""
    if clen_mm is not None:
        return float(clen_mm)
    if "clen" not in reader.toplevel:
        raise InputError(f"{reader.path}: no clen (camera length); give the detector distance with -distance")
    return _length_m(reader, "clen", "-distance")[1] * 1e3


def _shift_mm(reader: _Reader) -> tuple[float, float]:
    """detector_shift_x/y (metres, or mm with the unit); from data files they are refused."""
    return tuple(_length_m(reader, key, "a number in the geometry file")[1] * 1e3 if key in reader.toplevel else 0.0
                 for key in ("detector_shift_x", "detector_shift_y"))


def _build_panel(reader: _Reader, entry: _Entry, clen_mm: float, shift_mm) -> tuple[Panel, PanelFacts]:
    where = f"{reader.path}: panel {entry.name} (line {entry.line})"
    fields = {key: value for key, (value, _) in entry.fields.items()}
    missing = [key for key in REQUIRED if key not in fields]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)}")
    region = tuple(fields[key] for key in REGION_KEYS)
    if region[1] < region[0] or region[3] < region[2]:
        raise InputError(f"{where}: max_fs/max_ss must not be below min_fs/min_ss")
    for key in ("fs", "ss"):
        length = math.sqrt(sum(v * v for v in fields[key]))
        if abs(length - 1.0) > 1e-3:
            raise InputError(f"{where}: {key} must be one pixel long (got length {length:.6g}): "
                             "only square pixels of the panel's res are simulated")
    pixel_mm = 1e3 / fields["res"]
    origin = (fields["corner_x"] * pixel_mm + shift_mm[0], fields["corner_y"] * pixel_mm + shift_mm[1],
              clen_mm + fields.get("coffset", 0.0) * 1e3)
    try:
        panel = Panel(origin_mm=origin, fast_axis=fields["fs"], slow_axis=fields["ss"], pixel_size_mm=pixel_mm,
                      size=(region[1] - region[0] + 1, region[3] - region[2] + 1), name=entry.name)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    facts = PanelFacts(name=entry.name, data_region=region, adu_per_photon=fields.get("adu_per_photon"),
                       adu_per_eV=fields.get("adu_per_eV"), max_adu=fields.get("max_adu", math.inf),
                       no_index=bool(fields.get("no_index", False)))
    return panel, facts


def _bad_limits(reader: _Reader, region: _Entry, keys) -> tuple:
    missing = [key for key in keys if key not in region.fields]
    if region.kind is None or missing:
        raise InputError(f"{reader.path}: bad region {region.name} (line {region.line}): missing "
                         f"{', '.join(missing) or 'its limits'}")
    return tuple(region.fields[key][0] for key in keys)


def _bad_panel(reader: _Reader, region: _Entry, names: list) -> int:
    """Index of the panel an fs/ss bad region names (the only one when it names none, as CrystFEL)."""
    where = f"{reader.path}: bad region {region.name} (line {region.line})"
    if "panel" not in region.fields:
        if len(names) == 1:
            return 0
        raise InputError(f"{where}: give the panel its fs/ss limits refer to ({region.name}/panel = ...)")
    name = region.fields["panel"][0]
    if name not in names:
        raise InputError(f"{where}: no panel named {name!r}")
    return names.index(name)


def _masks(reader: _Reader, panels: Sequence[Panel], facts: Sequence[PanelFacts]) -> tuple[np.ndarray, ...]:
    """Per panel (slow, fast) uint8, 0 where no_index, mask_edge_pixels or a bad region covers the pixel.

    x/y regions are in pixel units of each panel, tested (strictly, as CrystFEL) at the outer
    corner of each pixel (fs, ss integer); fs/ss regions are inclusive, in data-array pixels.
    """
    masks = [np.ones(panel.shape, dtype=np.uint8) for panel in panels]
    for mask, entry, fact in zip(masks, reader.panels.values(), facts):
        edge = entry.fields.get("mask_edge_pixels", (0, 0))[0]
        mask[:edge], mask[mask.shape[0] - edge:], mask[:, :edge], mask[:, mask.shape[1] - edge:] = 0, 0, 0, 0
        if fact.no_index:
            mask[...] = 0
    names = [fact.name for fact in facts]
    for region in reader.bad.values():
        if region.kind == "fsss":
            min_fs, max_fs, min_ss, max_ss = _bad_limits(reader, region, REGION_KEYS)
            index = _bad_panel(reader, region, names)
            p_min_fs, p_max_fs, p_min_ss, p_max_ss = facts[index].data_region
            if min_fs < p_min_fs or max_fs > p_max_fs or min_ss < p_min_ss or max_ss > p_max_ss:
                raise InputError(f"{reader.path}: bad region {region.name} (line {region.line}) reaches outside "
                                 f"panel {names[index]}")
            masks[index][min_ss - p_min_ss:max_ss - p_min_ss + 1, min_fs - p_min_fs:max_fs - p_min_fs + 1] = 0
        else:
            min_x, max_x, min_y, max_y = _bad_limits(reader, region, XY_KEYS)
            for mask, panel in zip(masks, panels):
                ss, fs = np.arange(panel.shape[0], dtype=float)[:, None], np.arange(panel.shape[1], dtype=float)
                corner = np.array(panel.origin_mm[:2]) / panel.pixel_size_mm
                x = corner[0] + fs * panel.fast_axis[0] + ss * panel.slow_axis[0]
                y = corner[1] + fs * panel.fast_axis[1] + ss * panel.slow_axis[1]
                mask[(x > min_x) & (x < max_x) & (y > min_y) & (y < max_y)] = 0
    return tuple(masks)


def read_geometry(path, *, clen_mm: Optional[float] = None,
                  photon_energy_eV: Optional[float] = None) -> CrystfelGeometry:
    """Read a CrystFEL geometry file: one :class:`Panel` per panel, in the file's order, beam along +z.

    ``clen_mm`` and ``photon_energy_eV`` replace the file's clen and photon energy (wavelength);
    where the file gives them as data-file paths they are required (the error names the flag:
    ``-distance``, ``-energy``/``-lambda``).  Each panel sits at clen + its coffset along z.
    """
    path = str(path)
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except OSError as exc:
        raise InputError(f"{path}: cannot read the geometry file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (expected a CrystFEL geometry file)") from None
    reader = _Reader(path)
    reader.read(text)
    energy = _photon_energy(reader, photon_energy_eV)
    clen = _clen_mm(reader, clen_mm)
    shift = _shift_mm(reader)
    built = [_build_panel(reader, entry, clen, shift) for entry in reader.panels.values()]
    panels, facts = [b[0] for b in built], [b[1] for b in built]
    if energy is not None:
        facts = [f if f.adu_per_eV is None else PanelFacts(f.name, f.data_region, f.adu_per_eV * energy,
                                                           f.adu_per_eV, f.max_adu, f.no_index) for f in facts]
    bandwidth = None
    if "bandwidth" in reader.toplevel:
        value, number = reader.toplevel["bandwidth"]
        bandwidth = _number(value, reader.where(number), "bandwidth")
    return CrystfelGeometry(path=path, detector=Detector(tuple(panels)), masks=_masks(reader, panels, facts),
                            panels=tuple(facts), clen_mm=clen, photon_energy_eV=energy, bandwidth=bandwidth,
                            groups=dict(reader.groups), warnings=tuple(reader.warnings))


# --------------------------------------------------------------------------- writing
def _vector_text(vector) -> str:
    return " ".join(f"{v:+.10f}{axis}" for v, axis in zip(vector, "xyz") if v != 0.0)


def format_geometry(detector: Detector, *, clen_mm: Optional[float] = None,
                    photon_energy_eV: Optional[float] = None, adu_per_photon: float = 1.0) -> str:
    """The CrystFEL geometry text of a detector whose panels all lie in planes normal to z.

    Panels are stacked along the slow-scan direction of one data array, in order; clen is
    ``clen_mm`` (default: the nearest panel's z) and each panel's z - clen its coffset.
    """
    names = [panel.name or f"p{index}" for index, panel in enumerate(detector)]
    for panel, name in zip(detector, names):
        if abs(panel.fast_axis[2]) > 1e-9 or abs(panel.slow_axis[2]) > 1e-9:
            raise InputError(f"write_geometry: panel {name} is not in a plane normal to z, CrystFEL's beam axis")
        if not re.fullmatch(r"[A-Za-z0-9_.:-]+", name) or name.startswith(RESERVED):
            raise InputError(f"write_geometry: {name!r} cannot be a CrystFEL panel name")
    if len(set(names)) != len(names):
        raise InputError("write_geometry: panel names must be unique")
    clen = min(panel.origin_mm[2] for panel in detector) if clen_mm is None else float(clen_mm)
    lines = ["; CrystFEL geometry written by arraybragg (beam along +z)", f"clen = {clen * 1e-3!r} m"]
    if photon_energy_eV is not None:
        lines.append(f"photon_energy = {float(photon_energy_eV)!r} eV")
    lines += [f"adu_per_photon = {float(adu_per_photon)!r}", ""]
    first_ss = 0
    for panel, name in zip(detector, names):
        pixel = panel.pixel_size_mm
        fast, slow = panel.size
        lines += [f"{name}/min_fs = 0", f"{name}/max_fs = {fast - 1}", f"{name}/min_ss = {first_ss}",
                  f"{name}/max_ss = {first_ss + slow - 1}", f"{name}/res = {1e3 / pixel!r}",
                  f"{name}/fs = {_vector_text(panel.fast_axis)}", f"{name}/ss = {_vector_text(panel.slow_axis)}",
                  f"{name}/corner_x = {panel.origin_mm[0] / pixel!r}",
                  f"{name}/corner_y = {panel.origin_mm[1] / pixel!r}",
                  f"{name}/coffset = {(panel.origin_mm[2] - clen) * 1e-3!r}", ""]
        first_ss += slow
    return "\n".join(lines)


def write_geometry(path, detector: Detector, *, clen_mm: Optional[float] = None,
                   photon_energy_eV: Optional[float] = None, adu_per_photon: float = 1.0) -> None:
    """Write :func:`format_geometry`'s text to ``path`` (all of it or nothing)."""
    atomic_write(path, format_geometry(detector, clen_mm=clen_mm, photon_energy_eV=photon_energy_eV,
                                       adu_per_photon=adu_per_photon).encode())
