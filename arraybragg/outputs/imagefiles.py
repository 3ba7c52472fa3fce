"""Image files for other programs: miniCBF (Pilatus header), NeXus/NXmx (HDF5) and a PNG preview.

* :func:`write_cbf`: the integer image as a Pilatus-style miniCBF, byte-offset
  compressed (fabio's codec), readable by fabio, DIALS, XDS and pyFAI.
* :func:`write_nexus`: an NXmx HDF5 file (h5py; Bitshuffle/LZ4 through hdf5plugin)
  with the float image, optionally the integer and noise images, and the geometry as
  NXmx ``depends_on`` chains in the McStas frame (z along the beam).
* :func:`write_png`: an 8-bit colour preview (log or sqrt contrast, a matplotlib map).

Every file is written to a temporary name in the target directory and renamed, so a
failure never leaves a partial file.  Images are (slow, fast) arrays.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import io
import math
import os

import numpy as np

from ..errors import InputError
from ..models.lab import Simulation
from ..io.files import atomic_write

__all__ = ["beam_centre_pixels", "cbf_bytes", "write_cbf", "write_nexus", "check_png_options", "png_bytes", "write_png", "lab_to_mcstas"]

RTD = 180.0 / math.pi


@contextlib.contextmanager
def _atomic_path(path):
    """A temporary file name beside ``path``, renamed to it when the block succeeds, removed otherwise."""
    path = os.fspath(path)
    directory, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _timestamp() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def beam_centre_pixels(detector) -> tuple[float, float]:
    """Where the direct beam meets the detector plane: (fast, slow) in pixels from the corner of pixel (0, 0).

    Equal to nanoBragg's Fbeam, Sbeam (over the pixel size) for an untilted detector; with
    ``-twotheta`` it is the true intersection, which nanoBragg's reported values are not.
    """
    matrix = np.column_stack([detector.fdet, detector.sdet, -np.asarray(detector.beam_vector, dtype=float)])
    fast, slow, _ = np.linalg.solve(matrix, -np.asarray(detector.pix0, dtype=float))
    return float(fast / detector.pixel_size), float(slow / detector.pixel_size)


# --- miniCBF -------------------------------------------------------------------------------

def _pilatus_header(sim: Simulation, exposure_s: float) -> list[str]:
    """The "# key value" lines of a PILATUS_1.2 header (SI units, beam centre in pixels from the corner)."""
    d, g = sim.detector, sim.goniometer
    px = d.pixel_size
    beam_x, beam_y = beam_centre_pixels(d)
    return [
        "# Detector: arraybragg simulated PILATUS-format detector, S/N 0-0000",
        f"# {_timestamp()}",
        f"# Pixel_size {px:.6g} m x {px:.6g} m",
        f"# Silicon sensor, thickness {d.thickness:.6f} m",
        f"# Exposure_time {exposure_s:.7f} s",
        f"# Exposure_period {exposure_s:.7f} s",
        "# Count_cutoff 65535 counts",
        f"# Wavelength {sim.beam.lambda0 * 1e10:.6f} A",
        f"# Detector_distance {d.distance:.7f} m",
        f"# Beam_xy ({beam_x:.4f}, {beam_y:.4f}) pixels",
        f"# Start_angle {g.phi0 * RTD:.6f} deg.",
        f"# Angle_increment {g.osc * RTD:.6f} deg.",
        f"# Phi {g.phi0 * RTD:.6f} deg.",
        f"# Detector_2theta {d.twotheta * RTD:.6f} deg.",
        "# N_oscillations 1",
    ]


def cbf_bytes(image, sim: Simulation, exposure_s: float = 1.0, name: str = "arraybragg") -> bytes:
    """A miniCBF file: PILATUS_1.2 header and the image as byte-offset compressed signed 32-bit integers."""
    from fabio.compression import compByteOffset  # fabio: the reference byte-offset codec

    pixels = np.ascontiguousarray(image, dtype=np.int32)
    slow, fast = pixels.shape
    blob = compByteOffset(pixels)
    md5 = base64.b64encode(hashlib.md5(blob).digest()).decode("ascii")
    head = "\r\n".join([
        "###CBF: VERSION 1.5, arraybragg miniCBF (PILATUS_1.2 header)", "", f"data_{name}", "",
        '_array_data.header_convention "PILATUS_1.2"', "_array_data.header_contents", ";",
        *_pilatus_header(sim, exposure_s), ";", "", "_array_data.data", ";",
        "--CIF-BINARY-FORMAT-SECTION--", "Content-Type: application/octet-stream;",
        '     conversions="x-CBF_BYTE_OFFSET"', "Content-Transfer-Encoding: BINARY",
        f"X-Binary-Size: {len(blob)}", "X-Binary-ID: 1", 'X-Binary-Element-Type: "signed 32-bit integer"',
        "X-Binary-Element-Byte-Order: LITTLE_ENDIAN", f"Content-MD5: {md5}",
        f"X-Binary-Number-of-Elements: {slow * fast}", f"X-Binary-Size-Fastest-Dimension: {fast}",
        f"X-Binary-Size-Second-Dimension: {slow}", "X-Binary-Size-Padding: 4095", "", ""])
    tail = b"\0" * 4095 + b"\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n"
    return head.encode("ascii") + b"\x0c\x1a\x04\xd5" + blob + tail


def write_cbf(path, image, sim: Simulation, exposure_s: float = 1.0, name_as=None) -> None:
    """Write :func:`cbf_bytes` atomically; the data block is named after the file (``name_as``, when
    ``path`` is a temporary name for it)."""
    name = os.path.splitext(os.path.basename(os.fspath(name_as or path)))[0] or "arraybragg"
    atomic_write(path, cbf_bytes(image, sim, exposure_s, name="".join(c if c.isalnum() else "_" for c in name)))


# --- NeXus / NXmx ----------------------------------------------------------------------------

def lab_to_mcstas(sim: Simulation) -> np.ndarray:
    """3x3 rotation taking lab vectors to the NeXus McStas frame: z along the beam, x against the spindle.

    (For nanoBragg's MOSFLM frame, beam +x and spindle +z, this is (x, y, z) -> (-z, y, x):
    the imgCIF/DIALS frame of the C's DIALS_ORIGIN turned 180 degrees about y.)
    """
    z = np.asarray(sim.beam.beam_vector, dtype=float)
    z = z / np.linalg.norm(z)
    for axis in (sim.goniometer.spindle, sim.beam.polar_vector, (0.0, 1.0, 0.0), (1.0, 0.0, 0.0)):
        x = -(np.asarray(axis, dtype=float) - float(np.dot(axis, z)) * z)
        if np.linalg.norm(x) > 1e-6:
            break
    x = x / np.linalg.norm(x)
    return np.stack([x, np.cross(z, x), z])


def _put(group, name, value, units=None, **attrs):
    dataset = group.create_dataset(name, data=value)
    if units is not None:
        dataset.attrs["units"] = units
    for key, attr in attrs.items():
        dataset.attrs[key] = attr
    return dataset


def _transform(group, name, value, units, kind, vector, depends_on, offset=(0.0, 0.0, 0.0)):
    return _put(group, name, np.atleast_1d(np.asarray(value, dtype=float)), units, transformation_type=kind,
                vector=np.asarray(vector, dtype=float), offset=np.asarray(offset, dtype=float),
                offset_units=units if kind == "translation" else "m", depends_on=depends_on)


def _group(parent, name, nx_class):
    group = parent.create_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def _nexus_detector(instrument, sims, origins, to_mcstas: np.ndarray, exposure_s: float):
    """One NXdetector: a single panel's origin on the detector's chain (module offset 0), or one
    NXdetector_module per panel (``module0``, ...), each offset to its own origin, with its place
    (``origins``: slow, fast) in the stacked data array."""
    d = sims[0].detector
    det = _group(instrument, "detector", "NXdetector")
    base = "/entry/instrument/detector"
    pix0 = to_mcstas @ np.asarray(d.pix0, dtype=float) if len(sims) == 1 else np.zeros(3)
    transforms = _group(det, "transformations", "NXtransformations")
    _transform(transforms, "origin", float(np.linalg.norm(pix0)), "m", "translation",
               pix0 / (np.linalg.norm(pix0) or 1.0) if len(sims) == 1 else (0.0, 0.0, 1.0), ".")
    _put(det, "depends_on", f"{base}/transformations/origin")
    _put(det, "description", "arraybragg simulated detector")
    _put(det, "sensor_material", "Silicon")
    _put(det, "sensor_thickness", float(d.thickness), "m")
    _put(det, "x_pixel_size", float(d.pixel_size), "m")
    _put(det, "y_pixel_size", float(d.pixel_size), "m")
    if len(sims) == 1:  # one panel: the beam centre and distance are the detector's
        _put(det, "distance", float(d.distance), "m")
        beam_x, beam_y = beam_centre_pixels(d)
        _put(det, "beam_center_x", beam_x, "pixel")
        _put(det, "beam_center_y", beam_y, "pixel")
    _put(det, "count_time", float(exposure_s), "s")
    _put(det, "frame_time", float(exposure_s), "s")
    _put(det, "type", "PIXEL")
    _put(det, "saturation_value", 65535)
    for index, (sim, origin) in enumerate(zip(sims, origins)):
        _nexus_module(det, "module" if len(sims) == 1 else f"module{index}", sim.detector, origin,
                      np.zeros(3) if len(sims) == 1 else to_mcstas @ np.asarray(sim.detector.pix0, dtype=float),
                      to_mcstas)


def _nexus_module(det, name: str, d, data_origin, offset: np.ndarray, to_mcstas: np.ndarray):
    base = "/entry/instrument/detector"
    module = _group(det, name, "NXdetector_module")
    _put(module, "data_origin", np.array(data_origin, dtype=np.int32))
    _put(module, "data_size", np.array(d.shape, dtype=np.int32))
    _put(module, "data_stride", np.array([1, 1], dtype=np.int32))
    length = float(np.linalg.norm(offset))
    _transform(module, "module_offset", length, "m", "translation",
               offset / length if length else (1.0, 0.0, 0.0), f"{base}/transformations/origin")
    for axis, vector in (("fast_pixel_direction", d.fdet), ("slow_pixel_direction", d.sdet)):
        _transform(module, axis, float(d.pixel_size), "m", "translation",
                   to_mcstas @ np.asarray(vector, dtype=float), f"{base}/{name}/module_offset")


def _nexus_sample(entry, sim: Simulation, to_mcstas: np.ndarray):
    g = sim.goniometer
    sample = _group(entry, "sample", "NXsample")
    _put(sample, "name", "simulated crystal")
    _put(sample, "depends_on", "/entry/sample/transformations/phi")
    transforms = _group(sample, "transformations", "NXtransformations")
    _transform(transforms, "phi", g.phi0 * RTD, "deg", "rotation",
               to_mcstas @ np.asarray(g.spindle, dtype=float), ".")
    _put(transforms, "phi_increment_set", np.array([g.osc * RTD]), "deg")
    _put(transforms, "phi_end", np.array([(g.phi0 + g.osc) * RTD]), "deg")


def _nexus_image(parent, name, images, origins, dtype, compression):
    """The panels' images stacked into one frame (1, slow, fast) at their data origins (zeros between)."""
    shape = (max(o[0] + i.shape[0] for o, i in zip(origins, images)), max(o[1] + i.shape[1] for o, i in zip(origins, images)))
    data = np.zeros((1,) + shape, dtype=dtype)
    for (slow, fast), image in zip(origins, images):
        data[0, slow:slow + image.shape[0], fast:fast + image.shape[1]] = image
    return parent.create_dataset(name, data=data, chunks=data.shape, **compression)


def write_nexus(path, float_image, sim: Simulation, *, int_image=None, noise_image=None,
                exposure_s: float = 1.0) -> None:
    """Write an NXmx file: /entry/data/data is the float image (photons/pixel, one frame).

    ``int_image`` and ``noise_image``, when given, go to /entry/data/data_int and
    /entry/data/data_noise (uint16).  Vectors are in the McStas frame (:func:`lab_to_mcstas`);
    the detector chain places the corner of pixel (0, 0) at the lab origin vector pix0.
    """
    write_nexus_panels(path, [float_image], [sim], int_images=None if int_image is None else [int_image],
                       noise_images=None if noise_image is None else [noise_image], exposure_s=exposure_s)


def write_nexus_panels(path, float_images, sims, *, int_images=None, noise_images=None,
                       exposure_s: float = 1.0) -> None:
    """Write the images of a detector's panels (one lab-frame simulation each) as one NXmx frame.

    The panels are stacked along the slow axis of /entry/data/data, each an NXdetector_module
    (``module0``, ``module1``, ...) with its data origin and its own origin, fast and slow
    vectors; one panel is written as by :func:`write_nexus`.  Beam, sample and goniometer are
    the first simulation's (the same in every panel's).
    """
    import h5py
    import hdf5plugin  # registers the Bitshuffle/LZ4 filter Eiger files and DIALS use

    compression = dict(hdf5plugin.Bitshuffle(cname="lz4"))
    sim = sims[0]
    to_mcstas = lab_to_mcstas(sim)
    origins, slow = [], 0
    for image in float_images:
        origins.append((slow, 0))
        slow += np.shape(image)[0]
    with _atomic_path(path) as temporary, h5py.File(temporary, "w") as h5:
        entry = _group(h5, "entry", "NXentry")
        h5.attrs["default"] = "entry"
        entry.attrs["default"] = "data"
        _put(entry, "definition", "NXmx")
        _put(entry, "start_time", _timestamp() + "Z")
        _put(entry, "end_time_estimated", _timestamp() + "Z")
        data = _group(entry, "data", "NXdata")
        data.attrs["signal"] = "data"
        _nexus_image(data, "data", float_images, origins, np.float32, compression)
        for name, extra in (("data_int", int_images), ("data_noise", noise_images)):
            if extra is not None:
                _nexus_image(data, name, extra, origins, np.uint16, compression)
        instrument = _group(entry, "instrument", "NXinstrument")
        _put(instrument, "name", "arraybragg simulation")
        beam = _group(instrument, "beam", "NXbeam")
        _put(beam, "incident_wavelength", sim.beam.lambda0 * 1e10, "angstrom")
        _put(beam, "total_flux", float(sim.beam.fluence), "1/m^2")
        _nexus_detector(instrument, sims, origins, to_mcstas, exposure_s)
        _nexus_sample(entry, sim, to_mcstas)
        source = _group(entry, "source", "NXsource")
        _put(source, "name", "arraybragg simulated source")


# --- PNG preview ----------------------------------------------------------------------------

def check_png_options(scale: str, cmap: str) -> None:
    """InputError naming the option unless ``scale`` is log or sqrt and ``cmap`` a matplotlib colour map."""
    import matplotlib

    if scale not in ("log", "sqrt"):
        raise InputError(f"--png-scale: expected log or sqrt, got {scale!r}")
    if cmap not in matplotlib.colormaps:
        raise InputError(f"--png-cmap: unknown colour map '{cmap}' (try inferno, viridis, gray, gray_r)")


def png_bytes(float_image, scale: str = "log", cmap: str = "inferno") -> bytes:
    """An RGB PNG of the image: log1p or sqrt of the photons, 0 to the 99.9th percentile, a colour map."""
    from matplotlib import image as mpl_image

    check_png_options(scale, cmap)
    values = np.nan_to_num(np.asarray(float_image, dtype=np.float64), nan=0.0, posinf=0.0)
    values = np.maximum(values, 0.0)
    values = np.log1p(values) if scale == "log" else np.sqrt(values)
    top = float(np.percentile(values, 99.9)) if values.size else 0.0
    top = top if top > 0.0 else float(values.max()) or 1.0
    buffer = io.BytesIO()
    mpl_image.imsave(buffer, values, vmin=0.0, vmax=top, cmap=cmap, format="png")
    return buffer.getvalue()


def write_png(path, float_image, scale: str = "log", cmap: str = "inferno") -> None:
    """Write :func:`png_bytes` atomically."""
    atomic_write(path, png_bytes(float_image, scale, cmap))
