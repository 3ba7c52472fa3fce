"""The command line's multi-panel route: ``--geom FILE`` (CrystFEL) and ``--expt FILE`` (DIALS).

nanoBragg's flags still give everything the geometry file does not: crystal,
structure factors, beam intensity, sampling, output files.  The panels of a
CrystFEL file (beam along +z, y up) are turned into the command line's lab frame
(its convention's beam direction, y up), so that -mat/-misset orientations keep
their meaning.  Each panel is rendered as its own image and written to its own
files: ``float.bin`` -> ``float_<panel>.bin`` (see
:meth:`arraybragg.outputs.render_files.OutputFiles.for_panel`).
"""
from __future__ import annotations

import math

import numpy as np

from .errors import InputError
from .io.files import StagedOutputs
from .io.flags import EV_ANGSTROM
from .models.experiment import Experiment
from .models.nanobragg import build_simulation
from .outputs.images import auto_int_scale
from .outputs.render_files import OutputFiles, write_files
from .render import progress
from .render.simulator import Simulator
from .response.from_flags import response_for

# flags that describe one flat panel or a pixel of it: refused with a geometry file
_SINGLE_PANEL_FLAGS = (("curved_detector", "-curved_det"), ("point_pixel", "-point_pixel"),
                       ("roi_xmin", "-roi"), ("maskfilename", "-mask"), ("trace_pixel", "-trace_pixel"),
                       ("printout", "-printout"), ("printout_fpixel", "-printout_pixel"))


def wants_experiment_route(settings) -> bool:
    return bool(settings.geomfilename)


def frame_rotation(beam_vector) -> np.ndarray:
    """Rotation taking CrystFEL's lab axes (x, y up, z along the beam) to ours (z -> beam, y -> up)."""
    beam = np.asarray(beam_vector, dtype=float)
    up = np.array([0.0, 1.0, 0.0]) if abs(beam[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
    up = up - beam * float(up @ beam)
    up /= np.linalg.norm(up)
    return np.stack([np.cross(up, beam), up, beam], axis=1)


def _refuse_single_panel_flags(settings, reason: str) -> None:
    for field, flag in _SINGLE_PANEL_FLAGS:
        if field in settings.explicit:
            raise InputError(f"{flag}: not available with {reason} (a multi-panel detector)")


def experiment_with_geometry(settings, sim, log) -> tuple[Experiment, list]:
    """The flags' experiment with the detector (and masks) of ``--geom``."""
    from .models.crystfel import read_geometry
    explicit = settings.explicit
    geometry = read_geometry(settings.geomfilename,
                             clen_mm=settings.distance * 1e3 if "distance" in explicit else None,
                             photon_energy_eV=EV_ANGSTROM / (settings.lambda0 * 1e10) if "lambda0" in explicit
                             else None)
    for line in geometry.warnings:
        log(line)
    experiment = Experiment.from_simulation(sim, mosaic_seed=settings.mosaic_seed)
    if geometry.photon_energy_eV is not None and "lambda0" not in explicit:
        experiment = experiment.replace(beam=experiment.beam.replace(
            wavelength_A=EV_ANGSTROM / geometry.photon_energy_eV, sources=()))
    detector = geometry.detector.rotated(frame_rotation(experiment.beam.direction))
    sampling = experiment.sampling.replace(roi=None, mask=None)
    log("%s: %d panels from CrystFEL geometry" % (settings.geomfilename, len(detector)))
    return experiment.replace(detector=detector, sampling=sampling,
                              panel_sampling=geometry.panel_sampling(sampling)), geometry.masks


def run_experiment(settings, log, err) -> int:
    """Render and write a --geom command line, panel by panel."""
    _refuse_single_panel_flags(settings, "--geom")
    sim = build_simulation(settings, log=log)
    experiment, _ = experiment_with_geometry(settings, sim, log)
    simulator = Simulator(experiment, backend=settings.backend, dtype=settings.dtype, threads=settings.threads,
                          c_parity=bool(settings.c_parity))
    show = settings.progress_meter and err.isatty()
    images = simulator.render(progress=progress.terminal_progress(err) if show else None)
    files = OutputFiles.from_settings(settings)
    if files.intfile_scale <= 0.0:  # one SMV scale for every panel: the brightest pixel of the detector
        files = files.replace(intfile_scale=auto_int_scale(max(r.stats.max_I for r in images.results)))
    names = [panel.name for panel in experiment.detector]
    with StagedOutputs() as staged:
        for index, result in enumerate(images.results):
            panel_sim = simulator.simulation(index)
            response = response_for(settings, panel_sim.detector.pixel_size)
            omega = result.stats.omega_sum / panel_sim.steps
            log("panel %s: solid angle %g steradian ( %g%% sphere)" % (names[index] or index, omega,
                                                                        100 * omega / 4 / math.pi))
            write_files(panel_sim, result, files.for_panel(index, names).replace(response=response), log,
                        staged.stage)
    return 0
