"""DIALS/dxtbx experiment lists (``.expt``, JSON): read one experiment's models, write the one rendered.

No dxtbx is needed: the JSON is read and written as dxtbx defines it (``ExperimentList.to_dict``
and the models' ``to_dict``/``from_dict``).  dxtbx vectors are taken as lab-frame vectors as they
are; lengths are mm, wavelengths Angstrom, angles degrees, ``mu`` 1/mm.  The mapping, and what is
ignored, is documented in ``docs/geometry_dials.md``.  In short:

* beam: ``direction`` points from the sample to the source (ours is the propagation, its negative);
  ``polarization_normal`` is the normal of the plane holding ``polarization_fraction`` of the
  intensity, so the E vector is ``propagation x normal`` and nanoBragg's Kahn factor is
  ``2 * fraction - 1`` (DIALS: 0.5 unpolarized; nanoBragg: 0);
* detector: panel frames are local to their groups in ``hierarchy`` and are composed to the lab;
* goniometer and scan: lab rotation ``S R(axis, phi) F``; ours is ``R(S axis, phi)`` applied to the
  crystal ``S F A``, with phi starting at the scan's ``oscillation[0]`` (first image) by
  ``oscillation[1]`` per image.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..io.files import atomic_write
from .beam import Beam
from .crystal import Crystal
from .detector import Detector, Panel
from .experiment import Experiment, Sampling
from .goniometer import Goniometer
from .vectors import axis_rotation_matrix

DEG = math.pi / 180.0
P1_HALL = " P 1"
_MISSING = object()


@dataclass(frozen=True)
class DialsExperiment:
    """One experiment of a DIALS experiment list, as arraybragg models.

    ``goniometer`` turns through the first image of ``image_range`` (:meth:`goniometer_for`
    gives any other); ``crystal`` is None when the experiment has none (e.g. ``imported.expt``).
    ``template`` (``#`` for the digits) or ``images`` name the image files, relative to the file.
    """

    path: str
    beam: Beam
    detector: Detector
    crystal: Optional[Crystal]
    goniometer: Goniometer
    image_range: Optional[tuple[int, int]] = None
    template: Optional[str] = None
    images: tuple[str, ...] = ()
    space_group_hall_symbol: str = P1_HALL
    identifier: str = ""

    def goniometer_for(self, image: int) -> Goniometer:
        """The goniometer of image number ``image`` of the scan."""
        if self.image_range is None:
            raise InputError(f"{self.path}: the experiment has no scan")
        first, last = self.image_range
        if not first <= image <= last:
            raise InputError(f"{self.path}: image {image} is outside the scan's image_range {first}-{last}")
        return self.goniometer.frame(image - first)

    def experiment(self, structure_factors, sampling: Sampling = Sampling(), *, crystal: Optional[Crystal] = None,
                   image: Optional[int] = None, panel_sampling=()) -> Experiment:
        """The renderable experiment: the file's models with structure factors and sampling added."""
        crystal = crystal if crystal is not None else self.crystal
        if crystal is None:
            raise InputError(f"{self.path}: the experiment has no crystal (give one)")
        goniometer = self.goniometer if image is None else self.goniometer_for(image)
        return Experiment(beam=self.beam, detector=self.detector, crystal=crystal, goniometer=goniometer,
                          structure_factors=structure_factors, sampling=sampling, panel_sampling=panel_sampling)


# --------------------------------------------------------------------------- reading
class _Reader:
    """Typed access to the parsed file; every error names the file and the key."""

    def __init__(self, path: str):
        self.path = path

    def fail(self, where: str, message: str) -> InputError:
        return InputError(f"{self.path}: {where}: {message}")

    def get(self, obj, key: str, where: str, default=_MISSING):
        if not isinstance(obj, dict):
            raise self.fail(where, "expected a JSON object")
        if key not in obj:
            if default is _MISSING:
                raise self.fail(f"{where}.{key}", "missing")
            return default
        return obj[key]

    def number(self, value, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(where, f"expected a finite number, got {value!r}")
        return float(value)

    def integer(self, value, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"expected a whole number, got {value!r}")
        return value

    def numbers(self, value, where: str, count: int) -> tuple[float, ...]:
        if not isinstance(value, (list, tuple)) or len(value) != count:
            raise self.fail(where, f"expected {count} numbers, got {value!r}")
        return tuple(self.number(v, where) for v in value)

    def rotation(self, value, where: str) -> np.ndarray:
        """A 3x3 rotation from 9 numbers, row-major (scitbx mat3)."""
        matrix = np.array(self.numbers(value, where, 9)).reshape(3, 3)
        if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6) or np.linalg.det(matrix) < 0.0:
            raise self.fail(where, "not a proper rotation matrix")
        return matrix

    def model(self, document, kind: str, entry, where: str, required: bool = True):
        """The ``kind`` model an experiment entry refers to by index (None when absent and optional)."""
        index = self.get(entry, kind, where, None)
        if index is None:
            if required:
                raise self.fail(f"{where}.{kind}", "missing")
            return None, None
        if isinstance(index, str):
            raise self.fail(f"{where}.{kind}", f"refers to another file ({index!r}); not supported")
        models = self.get(document, kind, "file", [])
        if not isinstance(models, list) or not 0 <= self.integer(index, f"{where}.{kind}") < len(models):
            raise self.fail(f"{where}.{kind}", f"index {index} is not in the file's {kind!r} list")
        return models[index], f"{kind}[{index}]"

    def built(self, where: str, build):
        """``build()``, its model errors re-raised naming the file and the key."""
        try:
            return build()
        except InputError as exc:
            raise self.fail(where, str(exc)) from None


def read_experiment_list(path, *, index: int = 0, cells: Sequence[int] = (1, 1, 1)) -> DialsExperiment:
    """Experiment ``index`` of the DIALS experiment list ``path`` (crystal ``cells`` = (Na, Nb, Nc))."""
    path = os.fspath(path)
    reader = _Reader(path)
    try:
        with open(path, encoding="utf-8") as stream:
            document = json.load(stream)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not a JSON file ({exc})") from None
    if reader.get(document, "__id__", "file", None) != "ExperimentList":
        raise reader.fail("__id__", "not a DIALS experiment list (expected 'ExperimentList')")
    entries = reader.get(document, "experiment", "file")
    if not isinstance(entries, list) or not 0 <= index < len(entries):
        count = len(entries) if isinstance(entries, list) else 0
        raise reader.fail("experiment", f"no experiment {index} (the file has {count})")
    entry, where = entries[index], f"experiment[{index}]"
    beam = _read_beam(reader, *reader.model(document, "beam", entry, where))
    detector = _read_detector(reader, *reader.model(document, "detector", entry, where))
    setting, fixed, axis = _read_goniometer(reader, *reader.model(document, "goniometer", entry, where, False))
    image_range, phi_start, oscillation = _read_scan(reader, *reader.model(document, "scan", entry, where, False))
    crystal_dict, crystal_where = reader.model(document, "crystal", entry, where, False)
    crystal, hall = None, P1_HALL
    if crystal_dict is not None:
        crystal, hall = _read_crystal(reader, crystal_dict, crystal_where, setting @ fixed, cells)
    goniometer = reader.built(f"{where}.goniometer", lambda: Goniometer(
        axis=tuple(setting @ axis), phi_start_deg=phi_start, oscillation_deg=oscillation))
    template, images = _read_imageset(reader, *reader.model(document, "imageset", entry, where, False))
    return DialsExperiment(path=path, beam=beam, detector=detector, crystal=crystal, goniometer=goniometer,
                           image_range=image_range, template=template, images=images,
                           space_group_hall_symbol=hall, identifier=str(reader.get(entry, "identifier", where, "")))


def _read_beam(reader: _Reader, d, where: str) -> Beam:
    kind = reader.get(d, "__id__", where, "monochromatic")
    if kind != "monochromatic":
        raise reader.fail(f"{where}.__id__", f"{kind!r} beams are not supported (only 'monochromatic')")
    probe = reader.get(d, "probe", where, "x-ray")
    if probe != "x-ray":
        raise reader.fail(f"{where}.probe", f"{probe!r} is not supported (only 'x-ray')")
    to_source = np.array(reader.numbers(reader.get(d, "direction", where), f"{where}.direction", 3))
    wavelength = reader.number(reader.get(d, "wavelength", where), f"{where}.wavelength")
    normal = np.array(reader.numbers(reader.get(d, "polarization_normal", where, [0.0, 1.0, 0.0]),
                                     f"{where}.polarization_normal", 3))
    fraction = reader.number(reader.get(d, "polarization_fraction", where, 0.999), f"{where}.polarization_fraction")
    norm = float(np.linalg.norm(to_source))
    if norm == 0.0:
        raise reader.fail(f"{where}.direction", "zero-length direction")
    propagation = -to_source / norm
    e_vector = np.cross(propagation, normal)
    if np.linalg.norm(e_vector) < 1e-9 * max(float(np.linalg.norm(normal)), 1e-300):
        raise reader.fail(f"{where}.polarization_normal", "zero, or parallel to the beam")
    return reader.built(where, lambda: Beam(wavelength_A=wavelength, direction=tuple(propagation),
                                            polarization_axis=tuple(e_vector), kahn_factor=2.0 * fraction - 1.0))


def _read_detector(reader: _Reader, d, where: str) -> Detector:
    panels = reader.get(d, "panels", where)
    if not isinstance(panels, list) or not panels:
        raise reader.fail(f"{where}.panels", "expected a list of one or more panels")
    frames: list = [None] * len(panels)
    hierarchy = reader.get(d, "hierarchy", where, None)
    identity = (np.eye(3), np.zeros(3))
    if hierarchy is None:
        for i, panel in enumerate(panels):
            frames[i] = _compose(reader, panel, f"{where}.panels[{i}]", identity)
    else:
        root = _compose(reader, hierarchy, f"{where}.hierarchy", identity)
        _place_children(reader, hierarchy, f"{where}.hierarchy", root, panels, frames, where)
    for i, frame in enumerate(frames):
        if frame is None:
            raise reader.fail(f"{where}.panels[{i}]", "not in the detector's hierarchy")
    return Detector(tuple(_read_panel(reader, panels[i], f"{where}.panels[{i}]", frames[i])
                          for i in range(len(panels))))


def _compose(reader: _Reader, node, where: str, parent) -> tuple[np.ndarray, np.ndarray]:
    """The lab frame (columns fast, slow, normal; origin) of a node whose frame is local to ``parent``."""
    fast = np.array(reader.numbers(reader.get(node, "fast_axis", where, [1.0, 0.0, 0.0]), f"{where}.fast_axis", 3))
    slow = np.array(reader.numbers(reader.get(node, "slow_axis", where, [0.0, 1.0, 0.0]), f"{where}.slow_axis", 3))
    origin = np.array(reader.numbers(reader.get(node, "origin", where, [0.0, 0.0, 0.0]), f"{where}.origin", 3))
    if np.linalg.norm(fast) == 0.0 or np.linalg.norm(slow) == 0.0:
        raise reader.fail(where, "zero-length fast_axis or slow_axis")
    orientation, parent_origin = parent
    fast, slow = orientation @ (fast / np.linalg.norm(fast)), orientation @ (slow / np.linalg.norm(slow))
    return np.stack([fast, slow, np.cross(fast, slow)], axis=1), orientation @ origin + parent_origin


def _place_children(reader: _Reader, node, where: str, frame, panels, frames, detector_where: str) -> None:
    children = reader.get(node, "children", where, [])
    if not isinstance(children, list):
        raise reader.fail(f"{where}.children", "expected a list")
    for i, child in enumerate(children):
        child_where = f"{where}.children[{i}]"
        if isinstance(child, dict) and "panel" in child:
            index = reader.integer(child["panel"], f"{child_where}.panel")
            if not 0 <= index < len(panels) or frames[index] is not None:
                raise reader.fail(f"{child_where}.panel", f"panel {index} does not exist or is placed twice")
            frames[index] = _compose(reader, panels[index], f"{detector_where}.panels[{index}]", frame)
        else:
            group = _compose(reader, child, child_where, frame)
            _place_children(reader, child, child_where, group, panels, frames, detector_where)


def _read_panel(reader: _Reader, d, where: str, frame) -> Panel:
    orientation, origin = frame
    pixel = reader.numbers(reader.get(d, "pixel_size", where), f"{where}.pixel_size", 2)
    if not math.isclose(pixel[0], pixel[1], rel_tol=1e-12):
        raise reader.fail(f"{where}.pixel_size", f"non-square pixels {pixel} are not supported")
    size = reader.get(d, "image_size", where)
    if not isinstance(size, list) or len(size) != 2:
        raise reader.fail(f"{where}.image_size", f"expected (fast, slow) pixel counts, got {size!r}")
    size = tuple(reader.integer(n, f"{where}.image_size") for n in size)
    thickness = reader.number(reader.get(d, "thickness", where, 0.0), f"{where}.thickness")
    mu = reader.number(reader.get(d, "mu", where, 0.0), f"{where}.mu")
    name = reader.get(d, "name", where, "")
    return reader.built(where, lambda: Panel(
        origin_mm=tuple(origin), fast_axis=tuple(orientation[:, 0]), slow_axis=tuple(orientation[:, 1]),
        pixel_size_mm=pixel[0], size=size, thickness_mm=thickness,
        attenuation_length_mm=1.0 / mu if mu > 0.0 else None, name=str(name)))


def _read_goniometer(reader: _Reader, d, where: str):
    """(S, F, scan axis at the datum); identities and +z when the experiment has no goniometer."""
    if d is None:
        return np.eye(3), np.eye(3), np.array([0.0, 0.0, 1.0])
    if isinstance(d, dict) and {"axes", "angles", "scan_axis"} <= d.keys():
        return _multi_axis(reader, d, where)
    axis = np.array(reader.numbers(reader.get(d, "rotation_axis", where), f"{where}.rotation_axis", 3))
    if np.linalg.norm(axis) == 0.0:
        raise reader.fail(f"{where}.rotation_axis", "zero-length axis")
    identity = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    fixed = reader.rotation(reader.get(d, "fixed_rotation", where, identity), f"{where}.fixed_rotation")
    setting = reader.rotation(reader.get(d, "setting_rotation", where, identity), f"{where}.setting_rotation")
    return setting, fixed, axis / np.linalg.norm(axis)


def _multi_axis(reader: _Reader, d, where: str):
    """dxtbx's multi-axis goniometer: axes listed from the sample outwards, one of them scanned."""
    axes, angles = d["axes"], d["angles"]
    if not isinstance(axes, list) or not isinstance(angles, list) or len(axes) != len(angles) or not axes:
        raise reader.fail(f"{where}.axes", "expected as many axes as angles")
    scan = reader.integer(d["scan_axis"], f"{where}.scan_axis")
    if not 0 <= scan < len(axes):
        raise reader.fail(f"{where}.scan_axis", f"no axis {scan}")
    rotations = []
    for i, (axis, angle) in enumerate(zip(axes, angles)):
        axis = np.array(reader.numbers(axis, f"{where}.axes[{i}]", 3))
        if np.linalg.norm(axis) == 0.0:
            raise reader.fail(f"{where}.axes[{i}]", "zero-length axis")
        axis /= np.linalg.norm(axis)
        rotations.append((axis, axis_rotation_matrix(axis, reader.number(angle, f"{where}.angles[{i}]") * DEG)))
    fixed, setting = np.eye(3), np.eye(3)
    for _, rotation in rotations[:scan]:
        fixed = rotation @ fixed
    for _, rotation in rotations[scan + 1:]:
        setting = rotation @ setting
    return setting, fixed, rotations[scan][0]


def _read_scan(reader: _Reader, d, where: str):
    """(image range, phi of the first image's start, oscillation per image), degrees."""
    if d is None:
        return None, 0.0, 0.0
    image_range = reader.get(d, "image_range", where)
    if not isinstance(image_range, list) or len(image_range) != 2:
        raise reader.fail(f"{where}.image_range", f"expected (first, last), got {image_range!r}")
    first, last = (reader.integer(n, f"{where}.image_range") for n in image_range)
    if last < first:
        raise reader.fail(f"{where}.image_range", f"last image {last} before the first {first}")
    properties = reader.get(d, "properties", where, None)
    if properties is None:                       # the older form: oscillation = (start, width)
        start, width = reader.numbers(reader.get(d, "oscillation", where), f"{where}.oscillation", 2)
        return (first, last), start, width
    starts = reader.get(properties, "oscillation", f"{where}.properties")
    if not isinstance(starts, list) or not starts:
        raise reader.fail(f"{where}.properties.oscillation", "expected the start angle of every image")
    start = reader.number(starts[0], f"{where}.properties.oscillation")
    if len(starts) > 1:
        return (first, last), start, reader.number(starts[1], f"{where}.properties.oscillation") - start
    widths = reader.get(properties, "oscillation_width", f"{where}.properties")
    if not isinstance(widths, list) or len(widths) != 1:
        raise reader.fail(f"{where}.properties.oscillation_width", "expected one width")
    return (first, last), start, reader.number(widths[0], f"{where}.properties.oscillation_width")


def _read_crystal(reader: _Reader, d, where: str, rotation: np.ndarray, cells):
    kind = reader.get(d, "__id__", where)
    if kind != "crystal":
        raise reader.fail(f"{where}.__id__", f"expected 'crystal', got {kind!r}")
    a, b, c = (rotation @ np.array(reader.numbers(reader.get(d, key, where), f"{where}.{key}", 3))
               for key in ("real_space_a", "real_space_b", "real_space_c"))
    hall = reader.get(d, "space_group_hall_symbol", where, P1_HALL)
    crystal = reader.built(where, lambda: Crystal(a_A=tuple(a), b_A=tuple(b), c_A=tuple(c), cells=tuple(cells)))
    return crystal, str(hall)


def _read_imageset(reader: _Reader, d, where: str):
    if d is None:
        return None, ()
    kind = reader.get(d, "__id__", where)
    if kind in ("ImageSequence", "ImageSweep"):
        template = reader.get(d, "template", where)
        if not isinstance(template, str):
            raise reader.fail(f"{where}.template", "expected a file name")
        return template, ()
    images = reader.get(d, "images", where, None)
    if not isinstance(images, list) or not all(isinstance(name, str) for name in images):
        raise reader.fail(f"{where}.images", "expected a list of file names")
    return None, tuple(images)


# --------------------------------------------------------------------------- writing
def experiment_list_dict(experiment: Experiment, *, image_template: Optional[str] = None,
                         image_range: Optional[tuple[int, int]] = None, images: Sequence[str] = (),
                         exposure_time_s: float = 1.0, trusted_range: tuple[float, float] = (-1.0, 65535.0),
                         space_group_hall_symbol: str = P1_HALL, identifier: str = "") -> dict:
    """The dxtbx dictionary of ``experiment``: one experiment and its models.

    A rotation (``oscillation_deg`` > 0) is an ``ImageSequence`` of ``image_template`` (``#``
    for the digits; default ``image_#####.img``) over ``image_range`` (default (1, 1)); a still is
    an ``ImageSet`` of ``images``, its phi folded into the crystal and written without scan.
    """
    goniometer, crystal = experiment.goniometer, experiment.crystal
    still = goniometer.oscillation_deg == 0.0
    entry = {"__id__": "Experiment", "identifier": identifier, "beam": 0, "detector": 0, "goniometer": 0,
             "crystal": 0, "imageset": 0}
    result = {"__id__": "ExperimentList", "experiment": [entry], "beam": [_beam_dict(experiment.beam)],
              "detector": [_detector_dict(experiment.detector, trusted_range)],
              "goniometer": [{"rotation_axis": list(goniometer.axis), "fixed_rotation": _IDENTITY,
                              "setting_rotation": _IDENTITY}]}
    if still:
        if image_template is not None or image_range is not None:
            raise InputError("a still (no oscillation) is written as a list of images, not a template")
        crystal = crystal.rotated(goniometer.axis, goniometer.phi_start_deg)
        result["imageset"] = [{"__id__": "ImageSet", "images": [str(name) for name in images]}]
    else:
        if images:
            raise InputError("a rotation (oscillation > 0) is written as an image template, not a list")
        first, last = image_range if image_range is not None else (1, 1)
        if first < 0 or last < first:
            raise InputError(f"image_range: expected first <= last, got {first}-{last}")
        entry["scan"] = 0
        result["scan"] = [_scan_dict(goniometer, int(first), int(last), exposure_time_s)]
        result["imageset"] = [{"__id__": "ImageSequence",
                               "template": image_template if image_template is not None else "image_#####.img"}]
    result["crystal"] = [{"__id__": "crystal", "real_space_a": list(crystal.a_A), "real_space_b": list(crystal.b_A),
                          "real_space_c": list(crystal.c_A), "space_group_hall_symbol": space_group_hall_symbol}]
    return result


_IDENTITY = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]


def _beam_dict(beam: Beam) -> dict:
    propagation = np.array(beam.direction)
    normal = np.cross(beam.polarization_axis, propagation)
    if np.linalg.norm(normal) < 1e-9:
        raise InputError("Beam.polarization_axis: parallel to the beam; no polarization plane to write")
    return {"__id__": "monochromatic", "direction": list(-propagation), "wavelength": beam.wavelength_A,
            "divergence": 0.0, "sigma_divergence": 0.0, "polarization_normal": list(normal / np.linalg.norm(normal)),
            "polarization_fraction": (beam.kahn_factor + 1.0) / 2.0, "flux": 0.0, "transmission": 1.0,
            "probe": "x-ray", "sample_to_source_distance": 0.0}


def _panel_keys(name, fast, slow, origin, pixel, size, trusted, thickness, mu) -> dict:
    parallax = thickness > 0.0 and mu > 0.0
    return {"name": name, "type": "SENSOR_PAD" if size[0] else "", "fast_axis": list(fast),
            "slow_axis": list(slow), "origin": list(origin), "raw_image_offset": [0, 0], "image_size": list(size),
            "pixel_size": [pixel, pixel], "trusted_range": list(trusted), "thickness": thickness,
            "material": "", "mu": mu, "identifier": "", "mask": [], "gain": 1.0, "pedestal": 0.0,
            "px_mm_strategy": {"type": "ParallaxCorrectedPxMmStrategy" if parallax else "SimplePxMmStrategy"}}


def _detector_dict(detector: Detector, trusted_range) -> dict:
    panels = []
    for panel in detector:
        length = panel.attenuation_length_mm
        mu = 1.0 / length if length else (1.0 / panel.thickness_mm if panel.thickness_mm > 0.0 else 0.0)
        panels.append(_panel_keys(panel.name, panel.fast_axis, panel.slow_axis, panel.origin_mm,
                                  panel.pixel_size_mm, panel.size, trusted_range, panel.thickness_mm, mu))
    root = _panel_keys("", (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 0.0), 0.0, (0, 0), (0.0, 0.0), 0.0, 0.0)
    root["children"] = [{"panel": i} for i in range(len(panels))]
    return {"panels": panels, "hierarchy": root}


def _scan_dict(goniometer: Goniometer, first: int, last: int, exposure_time_s: float) -> dict:
    count = last - first + 1
    start, width = goniometer.phi_start_deg, goniometer.oscillation_deg
    properties = {"oscillation": [start + i * width for i in range(count)],
                  "exposure_time": [float(exposure_time_s)] * count, "epochs": [0.0] * count}
    if count == 1:
        properties["oscillation_width"] = [width]
    return {"image_range": [first, last], "batch_offset": 0, "properties": properties, "valid_image_ranges": {}}


def write_experiment_list(path, experiment: Experiment, **options) -> None:
    """Write ``experiment`` to ``path`` as a DIALS experiment list (options: :func:`experiment_list_dict`)."""
    text = json.dumps(experiment_list_dict(experiment, **options), indent=2)
    atomic_write(os.fspath(path), (text + "\n").encode("utf-8"))
