"""The command line's experiment route: ``--geom FILE`` (CrystFEL), ``--expt FILE`` and ``--write-expt FILE`` (DIALS).

nanoBragg's flags still give everything the files do not: structure factors,
crystal size (-N), beam intensity, mosaic spread, phi steps, sampling, output
files.  The panels of a CrystFEL file (beam along +z, y up) are turned into the
command line's lab frame (its convention's beam direction, y up), so that
-mat/-misset orientations keep their meaning.  A DIALS experiment list brings its
own frame, beam, crystal orientation and goniometer/scan (its first image).
Each panel is rendered as its own image and written to its own files:
``float.bin`` -> ``float_<panel>.bin`` (see
:meth:`arraybragg.outputs.render_files.OutputFiles.for_panel`).
"""
from __future__ import annotations

import dataclasses
import math
import os
import re

import numpy as np

from .errors import InputError
from .io.files import StagedOutputs
from .io.flags import EV_ANGSTROM
from .models.experiment import Experiment
from .models.nanobragg import phi_steps_of, build_simulation
from .outputs.images import auto_int_scale
from .outputs.render_files import OutputFiles, write_files
from .render import progress
from .render.simulator import Simulator
from .response.from_flags import response_for

# flags that describe one flat panel or a pixel of it: refused with a geometry file
_SINGLE_PANEL_FLAGS = (("curved_detector", "-curved_det"), ("point_pixel", "-point_pixel"),
                       ("roi_xmin", "-roi"), ("maskfilename", "-mask"), ("trace_pixel", "-trace_pixel"),
                       ("printout", "-printout"), ("printout_fpixel", "-printout_pixel"))


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


def read_expt(settings):
    """(the --expt file read, settings with its unit cell when the flags give neither -cell nor -mat)."""
    from .models.dials import read_experiment_list
    dials = read_experiment_list(settings.exptfilename)
    if dials.crystal is None:
        raise InputError(f"--expt: {settings.exptfilename} holds no crystal (an indexed experiment is needed)")
    if settings.matfilename is None and not settings.user_cell:
        a, b, c, alpha, beta, gamma = dials.crystal.unit_cell
        settings = dataclasses.replace(settings, user_cell=True, cell_a=a, cell_b=b, cell_c=c,
                                       alpha=math.radians(alpha), beta=math.radians(beta), gamma=math.radians(gamma))
    return dials, settings


def experiment_with_expt(settings, sim, dials, log) -> Experiment:
    """The flags' experiment with the beam, detector, crystal and goniometer/scan of ``--expt``."""
    flags = Experiment.from_simulation(sim, mosaic_seed=settings.mosaic_seed)
    crystal = flags.crystal
    beam = dials.beam.replace(fluence_photons_per_m2=flags.beam.fluence_photons_per_m2)
    # phi steps over the file's oscillation by nanoBragg's rule (-phisteps, -phistep, or 2 steps)
    oscillation = math.radians(dials.goniometer.oscillation_deg)
    phi_steps = phi_steps_of(dataclasses.replace(settings, osc=oscillation))[0] if oscillation > 0.0 else 1
    goniometer = dials.goniometer.replace(phi_steps=phi_steps,
                                          mosaic_spread_deg=flags.goniometer.mosaic_spread_deg,
                                          mosaic_domains=flags.goniometer.mosaic_domains,
                                          mosaic_seed=settings.mosaic_seed)
    log("%s: %d panels, crystal and goniometer from the DIALS experiment list" % (settings.exptfilename,
                                                                                 len(dials.detector)))
    return flags.replace(beam=beam, detector=dials.detector, goniometer=goniometer,
                         crystal=dials.crystal.replace(cells=crystal.cells, shape=crystal.shape, fudge=crystal.fudge),
                         sampling=flags.sampling.replace(roi=None, mask=None))


def write_expt(settings, experiment: Experiment, stage, log) -> None:
    """--write-expt: the rendered experiment, its image template taken from -intfile (digits -> #)."""
    from .models.dials import write_experiment_list
    still = experiment.goniometer.oscillation_deg == 0.0
    name = os.path.basename(settings.intfilename)
    digits = list(re.finditer(r"\d+", os.path.splitext(name)[0]))
    if still:
        options = dict(images=[name])
    elif digits:
        last = digits[-1]
        options = dict(image_template=name[:last.start()] + "#" * len(last.group()) + name[last.end():],
                       image_range=(int(last.group()),) * 2)
    else:
        options = dict(image_template=name, image_range=(1, 1))
    write_experiment_list(stage(settings.write_exptfilename), experiment, **options)
    log("writing %s as a DIALS experiment list" % settings.write_exptfilename)


def _write_nexus(settings, written, stage, log) -> None:
    """--nexus-file: the panels stacked in one NXmx frame, one NXdetector_module each."""
    from .outputs.imagefiles import write_nexus_panels
    sims, floats, ints, noises = zip(*written)
    extra = dict(int_images=ints, noise_images=None if any(n is None for n in noises) else noises) \
        if settings.nexus_int else {}
    write_nexus_panels(stage(settings.nexusfilename), floats, sims, exposure_s=settings.exposure, **extra)
    log("writing %s as NeXus/NXmx HDF5 (%d modules)" % (settings.nexusfilename, len(sims)))


def run_experiment(settings, log, err) -> int:
    """Render and write a --geom or --expt command line, panel by panel."""
    if settings.geomfilename and settings.exptfilename:
        raise InputError("--geom: give either --geom or --expt, not both")
    _refuse_single_panel_flags(settings, "--geom" if settings.geomfilename else "--expt")
    if settings.geomfilename:
        sim = build_simulation(settings, log=log)
        experiment, _ = experiment_with_geometry(settings, sim, log)
    else:
        dials, settings = read_expt(settings)
        sim = build_simulation(settings, log=log)
        experiment = experiment_with_expt(settings, sim, dials, log)
    simulator = Simulator(experiment, backend=settings.backend, dtype=settings.dtype, threads=settings.threads,
                          c_parity=bool(settings.c_parity))
    show = settings.progress_meter and err.isatty()
    images = simulator.render(progress=progress.terminal_progress(err) if show else None)
    files = OutputFiles.from_settings(settings)
    if files.intfile_scale <= 0.0:  # one SMV scale for every panel: the brightest pixel of the detector
        files = files.replace(intfile_scale=auto_int_scale(max(r.stats.max_I for r in images.results)))
    names = [panel.name for panel in experiment.detector]
    with StagedOutputs() as staged:
        written = []
        for index, result in enumerate(images.results):
            panel_sim = simulator.simulation(index)
            response = response_for(settings, panel_sim.detector.pixel_size)
            omega = result.stats.omega_sum / panel_sim.steps
            log("panel %s: solid angle %g steradian ( %g%% sphere)" % (names[index] or index, omega,
                                                                        100 * omega / 4 / math.pi))
            panel_files = files.for_panel(index, names).replace(response=response, nexusfile=None)
            written.append((panel_sim, result.image) + write_files(panel_sim, result, panel_files, log, staged.stage))
        if settings.nexusfilename:  # one NXmx file holds every panel
            _write_nexus(settings, written, staged.stage, log)
        if settings.write_exptfilename:
            write_expt(settings, experiment, staged.stage, log)
    return 0
