"""``arraybragg <nanoBragg flags>``: the nanoBragg command line over the Python API."""
from __future__ import annotations

import math
import os
import signal
import sys
import warnings
from typing import Optional, Sequence

from . import __version__
from .io import flags, smv
from .outputs import images as outputs
from .render import progress
from .errors import InputError, report_failures
from .io.files import StagedOutputs
from .outputs.headers import smv_header_for
from .render.renderer import Renderer
from .models.nanobragg import build_simulation
from .models.validation import check_image


_OUTPUT_FLAGS = (("-floatfile", "floatfilename", None), ("-intfile", "intfilename", None),
                 ("-pgmfile", "pgmfilename", "write_pgm"), ("-noisefile", "noisefilename", "calculate_noise"),
                 ("-cbffile", "cbffilename", "cbffilename"), ("-nexusfile", "nexusfilename", "nexusfilename"),
                 ("-pngfile", "pngfilename", "pngfilename"))
_INPUT_FLAGS = (("-hkl", "hklfilename"), ("-mat", "matfilename"), ("-img", "imginfilename"),
                ("-mask", "maskfilename"), ("-sourcefile", "sourcefilename"), ("-stol", "stolfilename"))


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def check_paths(settings) -> None:
    """Before anything is rendered: every output writable, none an input file or another output."""
    outputs_ = [(flag, getattr(settings, name)) for flag, name, switch in _OUTPUT_FLAGS
                if switch is None or getattr(settings, switch)]
    inputs = [(flag, getattr(settings, name)) for flag, name in _INPUT_FLAGS if getattr(settings, name)]
    dump = ("-dump", settings.dumpfilename)
    if settings.hklfilename is not None:
        outputs_.append(dump)          # written after reading -hkl
    elif os.path.isfile(settings.dumpfilename):
        inputs.append(dump)            # read instead of -hkl
    for index, (flag, path) in enumerate(outputs_):
        for other_flag, other in inputs + outputs_[:index]:
            if _same_file(path, other):
                raise InputError(f"{flag}: '{path}' is also the {other_flag} file")
        if flag == "-dump":
            continue  # an unwritable dump file is only a warning, as in nanoBragg
        if not path:
            raise InputError(f"{flag}: empty file name")
        if os.path.isdir(path):
            raise InputError(f"{flag}: '{path}' is a directory")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InputError(f"{flag}: '{path}': no such directory")
        if not os.access(directory, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
            raise InputError(f"{flag}: '{path}': permission denied")


def run(argv: Sequence[str], out=None, err=None) -> int:
    """Parse, render and write like nanoBragg; returns the exit status."""
    out, err = out or sys.stdout, err or sys.stderr
    if not argv:  # like nanoBragg: no arguments, just the usage (and a failure status)
        out.write(flags.usage_text())
        return 2
    settings = flags.parse_args(list(argv))
    if settings.show_help:
        out.write(flags.usage_text())
        return 0
    if settings.show_version:
        out.write("arraybragg %s\n" % __version__)
        return 0
    log = lambda line="": out.write(line + "\n")
    check_paths(settings)
    if settings.pngfilename:  # a bad colour map fails before the render, not after
        from .outputs import imagefiles
        imagefiles.check_png_options(settings.png_scale, settings.png_cmap)
    log("arraybragg: nanoBragg nanocrystal diffraction simulator on the array API")
    sim = build_simulation(settings, log=log)
    renderer = Renderer(sim, backend=settings.backend, policy=settings.dtype, threads=settings.threads,
                        tile_pixels=settings.tile_pixels)
    show_progress = settings.progress_meter and err.isatty() and not settings.printout
    result = renderer.render(progress=progress.terminal_progress(err) if show_progress else None)
    if settings.trace_pixel is not None or settings.printout:
        from .render import trace  # only for -trace_pixel / -printout: keeps start-up short
        for line in trace.report_lines(settings, sim, result):
            log(line)
    for line in result.log:
        log(line)
    stats = result.stats
    log("solid angle subtended by detector = %g steradian ( %g%% sphere)"
        % (stats.omega_sum / sim.steps, 100 * stats.omega_sum / sim.steps / 4 / math.pi))
    check_image(result.image)
    with StagedOutputs() as staged:
        _write_outputs(settings, sim, result, staged.stage, log)
    log("render took %.3f s (%s, %s, %d threads)" % (result.seconds, renderer.backend.name, renderer.policy.name,
                                                      renderer.threads))
    return 0


def _write_outputs(settings, sim, result, stage, log) -> None:
    """The image files, each written to ``stage(path)`` (renamed into place once all succeeded)."""
    stats, image, roi = result.stats, result.image, sim.sampling.roi
    outputs.write_float_image(stage(settings.floatfilename), image)
    log("writing %s as %d 4-byte floats" % (settings.floatfilename, image.size))
    log("max_I = %g  at %g %g" % (stats.max_I, stats.max_I_x, stats.max_I_y))
    log("mean= %g rms= %g rmsd= %g" % (stats.mean, stats.rms, stats.rmsd))
    scale = settings.intfile_scale if settings.intfile_scale > 0.0 else outputs.auto_int_scale(stats.max_I)
    log("intfile_scale = %g" % scale)
    header = smv_header_for(sim)
    int_pixels = outputs.int_image(image, scale, settings.adc_offset, roi)
    smv.write_smv(stage(settings.intfilename), int_pixels, header, c_parity=sim.c_parity)
    log("writing %s as 2-byte integers" % settings.intfilename)
    if settings.write_pgm:
        pgm_scale = settings.pgm_scale if settings.pgm_scale > 0.0 else outputs.auto_pgm_scale(scale, stats.rmsd)
        log("pgm_scale = %g" % pgm_scale)
        outputs.write_pgm(stage(settings.pgmfilename), image, pgm_scale, roi)
        log("writing %s as 1-byte integers" % settings.pgmfilename)
    noise = None
    if settings.calculate_noise:
        noise, photons, overloads = _noise_image(settings, sim, image, roi)
        log("%.0f photons on noise image (%d overloads)" % (photons, overloads))
        smv.write_smv(stage(settings.noisefilename), noise, header, c_parity=sim.c_parity)
        log("writing %s as 2-byte integers" % settings.noisefilename)
    _write_extra_images(settings, sim, log, stage, image, int_pixels, noise)


def _noise_image(settings, sim, image, roi):
    """nanoBragg's Poisson noise image, or the detector-response model's when its flags were given."""
    from .response import apply_response
    from .response.from_flags import response_for
    response = response_for(settings, sim.detector.pixel_size)
    if response is None:
        return outputs.noise_image(image, settings.seed, settings.adc_offset, roi)
    result = apply_response(image, response)
    return result.noise_image, result.noise_photons, result.overloads


def _write_extra_images(settings, sim, log, stage, image, int_pixels, noise) -> None:
    """-cbffile, -nexusfile and -pngfile (formats nanoBragg does not write)."""
    if not (settings.cbffilename or settings.nexusfilename or settings.pngfilename):
        return
    from .outputs import imagefiles  # fabio, h5py and matplotlib only when asked for
    if settings.cbffilename:
        imagefiles.write_cbf(stage(settings.cbffilename), int_pixels, sim, exposure_s=settings.exposure,
                             name_as=settings.cbffilename)
        log("writing %s as byte-offset compressed miniCBF" % settings.cbffilename)
    if settings.nexusfilename:
        extra = dict(int_image=int_pixels, noise_image=noise) if settings.nexus_int else {}
        imagefiles.write_nexus(stage(settings.nexusfilename), image, sim, exposure_s=settings.exposure, **extra)
        log("writing %s as NeXus/NXmx HDF5" % settings.nexusfilename)
    if settings.pngfilename:
        imagefiles.write_png(stage(settings.pngfilename), image, settings.png_scale, settings.png_cmap)
        log("writing %s as %s-scaled PNG" % (settings.pngfilename, settings.png_scale))


def _interrupt_handlers():
    """SIGINT/SIGTERM raise KeyboardInterrupt in this process (so staged files are removed); a forked
    render worker receiving them exits quietly instead of printing its own traceback."""
    parent = os.getpid()

    def handler(signum, frame):
        if os.getpid() != parent:
            os._exit(128 + signum)
        raise KeyboardInterrupt

    previous = {}
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread: leave the handlers alone
        pass
    return previous


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    previous = _interrupt_handlers()
    try:
        with warnings.catch_warnings():
            # NumPy's floating-point RuntimeWarnings (an overflowing render) would add lines to the one
            # error line; such renders are refused by check_image
            warnings.simplefilter("ignore", RuntimeWarning)
            return _main(argv)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _main(argv: Sequence[str]) -> int:
    # MemoryError is a safety net: the --max-memory estimate should refuse such runs first
    return report_failures("arraybragg", run, argv,
                           out_of_memory="lower the detector size, -oversample or the step counts (or --max-memory)")


if __name__ == "__main__":
    sys.exit(main())
