"""One frame of a dataset: its parameters (the labels) and its render, from the spec and its index alone.

Every random draw of frame ``i`` comes from ``numpy.random.SeedSequence(spec.seed, spawn_key=(i,))``
(what ``SeedSequence(spec.seed).spawn(n)[i]`` gives), always in the same order (orientation, then nine
normal deviates, then the noise seed), so a frame never depends on the worker that renders it, on the
order of rendering, nor on which jitters are switched on.

With a ``[response]`` table the noise image is the detector-response model's
(:func:`arraybragg.response.apply_response`): its shot noise (Poisson, flicker, readout) is seeded with
the frame's noise seed; its calibration error, hot and dead pixels with seeds for the whole dataset,
drawn from ``SeedSequence(spec.seed)`` itself (the parent of the frames' sequences): a detector's
calibration pattern and defective pixels are the same in every frame.
"""
from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..outputs import images as outputs
from ..response import PSF, DetectorResponse, apply_response
from ..response.defects import Defects
from ..errors import InputError
from ..render.renderer import Renderer
from ..io.cformat import c_float
from ..io.flags import RTD, parse_args
from ..models.vectors import axis_rotation_matrix
from ..models.lab import Crystal, Detector, Goniometer, Simulation
from ..models.nanobragg import build_simulation
from .spec import DatasetSpec

# per-frame label name -> shape of one frame's value
LABEL_SHAPES = {
    "noise_seed": (), "rotation": (3, 3), "A_star": (3, 3), "phi_deg": (), "osc_deg": (), "phisteps": (),
    "cell": (6,), "N": (3,), "wavelength_A": (), "fluence": (), "distance_mm": (),
}
# with [response]: its seeds and settings, stored for every frame too
RESPONSE_LABELS = ("calib_seed", "hotpix_seed", "badpix_seed", "gain", "adc_offset", "readout_noise", "flicker",
                   "calibration", "psf_fwhm_pixels")
INTEGER_LABELS = ("noise_seed", "phisteps", "calib_seed", "hotpix_seed", "badpix_seed")


def label_names(spec: DatasetSpec) -> tuple[str, ...]:
    """The labels every frame of ``spec`` has (all of shape () beyond ``LABEL_SHAPES``)."""
    return tuple(LABEL_SHAPES) + (RESPONSE_LABELS if spec.response is not None else ())


@dataclass
class Base:
    """What every frame shares: the base Simulation (structure factors included) and run options."""

    sim: Simulation
    backend: str
    dtype: str
    adc_offset: float
    intfile_scale: float


def build_base(spec: DatasetSpec) -> Base:
    """Parse ``spec.base`` and build its Simulation once.

    Structure factors come from ``-hkl`` or ``-default_F`` only: no Fdump.bin is read or left behind
    (setup runs in a scratch directory).
    """
    try:
        settings = parse_args(list(spec.base))
        with tempfile.TemporaryDirectory(prefix="arraybragg-dataset-") as scratch:
            sim = build_simulation(settings, workdir=scratch)
    except InputError as exc:
        raise InputError(f"dataset.base: {exc}") from None
    return Base(sim=sim, backend=settings.backend, dtype=settings.dtype, adc_offset=settings.adc_offset,
                intfile_scale=settings.intfile_scale)


def frame_draws(spec: DatasetSpec, index: int):
    """(uniform random rotation, 9 standard normals, noise seed in 1..2**31-1) of frame ``index``."""
    from scipy.spatial.transform import Rotation
    generator = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=(index,)))
    rotation = Rotation.random(random_state=generator).as_matrix()
    normals = generator.standard_normal(9)
    noise_seed = int(generator.integers(1, 2 ** 31 - 1))
    return rotation, normals, noise_seed


def dataset_seeds(spec: DatasetSpec) -> tuple[int, int, int]:
    """The detector's seeds, one per dataset (as -calib_seed, -hotpix_seed, -badpix_seed take them,
    1..2**31-1): drawn in that order from ``SeedSequence(spec.seed)``, the parent of every frame's
    sequence; the table's ``calib_seed`` replaces the first."""
    generator = np.random.default_rng(np.random.SeedSequence(spec.seed))
    calib, hot, bad = (int(generator.integers(1, 2 ** 31 - 1)) for _ in range(3))
    return (calib if spec.response.calib_seed is None else spec.response.calib_seed), hot, bad


def _defects(sim: Simulation, r, labels: dict) -> Optional[Defects]:
    """Hot/dead pixels and a beamstop around the frame's beam centre, or None when none is asked for."""
    if not (r.hot_pixels or r.dead_pixels or r.beamstop):
        return None
    d = sim.detector
    return Defects(hot_fraction=r.hot_pixels, hotpix_seed=-labels["hotpix_seed"], dead_fraction=r.dead_pixels,
                   badpix_seed=-labels["badpix_seed"], beamstop_radius=r.beamstop / 1000.0 / d.pixel_size,
                   beam_fast=d.Fbeam / d.pixel_size, beam_slow=d.Sbeam / d.pixel_size)


def frame_response(sim: Simulation, spec: DatasetSpec, labels: dict) -> DetectorResponse:
    """The DetectorResponse of a frame (its Simulation and labels): what the main command makes of the
    frame's flags plus ``-seed noise_seed -calib_seed calib_seed``, with the calibration pattern fixed
    by its seed (``fixed_calibration``), plus the table's defects."""
    r = spec.response
    psf = None
    if r.psf != "none":
        psf = PSF(r.psf, labels["psf_fwhm_pixels"], r.psf_radius, r.psf_method)
    return DetectorResponse(scale=r.scale, gain=r.gain, adc_offset=labels["adc_offset"],
                            readout_noise=r.readout_noise, flicker=r.flicker, calibration=r.calibration,
                            seed=-labels["noise_seed"], calib_seed=-labels["calib_seed"], psf=psf, bits=r.bits,
                            defects=_defects(sim, r, labels), fixed_calibration=True)


def _response_labels(base: Base, spec: DatasetSpec) -> dict:
    r = spec.response
    calib, hot, bad = dataset_seeds(spec)
    labels = dict(calib_seed=calib, hotpix_seed=hot, badpix_seed=bad, gain=r.gain, readout_noise=r.readout_noise,
                  flicker=r.flicker, calibration=r.calibration,
                  adc_offset=base.adc_offset if r.adc_offset is None else r.adc_offset)
    labels["psf_fwhm_pixels"] = 0.0 if r.psf == "none" else \
        c_float(r.psf_fwhm / 1e6) / base.sim.detector.pixel_size  # as -psf_fwhm takes it
    return labels


def _crystal(base: Crystal, rotation, scales, sizes) -> Crystal:
    """The base crystal with a, b, c scaled (directions, hence angles, kept), turned by ``rotation`` and
    resized.  Reciprocal vectors as setup makes them: (b x c) / V with V the cell's volume as setup
    holds it (for -cell the nominal volume of the given lengths and angles), scaled with the lengths."""
    a, b, c = (rotation @ (v * s) for v, s in zip((base.a, base.b, base.c), scales))
    volume = base.V_cell * scales[0] * scales[1] * scales[2]
    star = lambda u, v: np.cross(u * 1e10, v * 1e10) / volume
    return dataclasses.replace(base, a=a, b=b, c=c, a_star=star(b, c), b_star=star(c, a), c_star=star(a, b),
                               Na=sizes[0], Nb=sizes[1], Nc=sizes[2], V_cell=volume)


def moved_detector(d: Detector, delta: float) -> Detector:
    """The detector placed as a ``-distance`` value ``delta`` metres larger would place it: moved along
    the beam (beam centre kept) for the BEAM pivot, along the normal for the SAMPLE pivot.  The derived
    values use setup's ratio (beam . normal before any two-theta swing), recovered as close/distance."""
    if delta == 0.0:
        return d
    ratio = d.close_distance / d.distance
    pix0 = d.pix0 + (delta * d.beam_vector if d.pivot == "BEAM" else abs(ratio) * delta * d.odet)
    close = float(pix0 @ d.odet)
    to_beam = close / ratio * d.beam_vector - pix0
    Fclose, Sclose = -float(pix0 @ d.fdet), -float(pix0 @ d.sdet)
    return dataclasses.replace(
        d, pix0=pix0, distance=close / ratio, close_distance=close, Fclose=Fclose, Sclose=Sclose,
        Fbeam=float(d.fdet @ to_beam), Sbeam=float(d.sdet @ to_beam), ORGX=Fclose / d.pixel_size + 0.5,
        ORGY=Sclose / d.pixel_size + 0.5, dials_origin_mm=1000.0 * np.array([pix0[2], pix0[1], -pix0[0]]))


def _goniometer(base: Goniometer, spec: DatasetSpec, index: int) -> Goniometer:
    o = spec.orientation
    if o.mode != "rotation":
        return base
    osc = o.oscillation / RTD
    return dataclasses.replace(base, phi0=(o.start + index * o.oscillation) / RTD, osc=osc,
                               phisteps=o.phisteps, phistep=osc / o.phisteps)


def _cell_label(crystal: Crystal) -> list[float]:
    vectors = [v * 1e10 for v in (crystal.a, crystal.b, crystal.c)]
    lengths = [float(np.linalg.norm(v)) for v in vectors]
    angle = lambda u, v, lu, lv: math.degrees(math.acos(min(max(float(u @ v) / lu / lv, -1.0), 1.0)))
    a, b, c = vectors
    la, lb, lc = lengths
    return lengths + [angle(b, c, lb, lc), angle(a, c, la, lc), angle(a, b, la, lb)]


def frame_simulation(base: Base, spec: DatasetSpec, index: int) -> tuple[Simulation, dict]:
    """Frame ``index``'s Simulation and its labels (``label_names(spec)`` keys)."""
    rotation, z, noise_seed = frame_draws(spec, index)
    if spec.orientation.mode != "stills":
        rotation = np.eye(3)
    j, sim = spec.jitter, base.sim
    scales = [max(1.0 + j.cell * x, 0.1) for x in z[:3]]
    sizes = [n if j.crystal_size == 0.0 else float(max(1, round(n * math.exp(j.crystal_size * x))))
             for n, x in zip((sim.crystal.Na, sim.crystal.Nb, sim.crystal.Nc), z[3:6])]
    wave = max(1.0 + j.wavelength * z[6], 0.1)
    b = sim.beam
    beam = dataclasses.replace(b, wavelengths=b.wavelengths * wave, lambda0=b.lambda0 * wave,
                               fluence=b.fluence * math.exp(j.fluence * z[7]))
    frame = dataclasses.replace(sim, crystal=_crystal(sim.crystal, rotation, scales, sizes), beam=beam,
                                detector=moved_detector(sim.detector, j.distance * z[8] * 1e-3),
                                goniometer=_goniometer(sim.goniometer, spec, index))
    g, c = frame.goniometer, frame.crystal
    labels = dict(noise_seed=noise_seed, rotation=rotation,
                  A_star=axis_rotation_matrix(g.spindle, g.phi0) @ np.stack([c.a_star, c.b_star, c.c_star], axis=1),
                  phi_deg=float(g.phi0 * RTD), osc_deg=float(g.osc * RTD), phisteps=g.phisteps,
                  cell=_cell_label(c), N=[float(n) for n in (c.Na, c.Nb, c.Nc)],
                  wavelength_A=float(beam.lambda0 * 1e10), fluence=float(beam.fluence),
                  distance_mm=float(frame.detector.distance * 1e3))
    if spec.response is not None:
        labels.update(_response_labels(base, spec))
    return frame, labels


@dataclass
class Frame:
    index: int
    image: np.ndarray               # float32 (slow, fast), photons per pixel
    noise: Optional[np.ndarray]     # uint16 Poisson image, the response's uint16/uint32 image, or None
    labels: dict
    seconds: float


def render_frame(base: Base, spec: DatasetSpec, index: int, threads: int = 1) -> Frame:
    """Render frame ``index`` (one thread by default: a Dask worker already runs one frame per core).

    The noise image is what ``arraybragg <frame's flags> -seed <labels['noise_seed']>`` writes, or with
    ``[response]`` ``apply_response(image, frame_response(sim, spec, labels))``'s noise image.
    """
    start = time.perf_counter()
    sim, labels = frame_simulation(base, spec, index)
    image = Renderer(sim, backend=base.backend, policy=base.dtype, threads=threads).render().image
    noise = None
    if spec.response is not None:
        noise = apply_response(image, frame_response(sim, spec, labels), threads=threads).noise_image
    elif spec.poisson:
        noise = outputs.noise_image(image, -labels["noise_seed"], base.adc_offset, sim.sampling.roi)[0]
    return Frame(index=index, image=image, noise=noise, labels=labels, seconds=time.perf_counter() - start)
