"""``arraybragg <nanoBragg flags>``: the nanoBragg command line over the Python API."""
from __future__ import annotations

import math
import os
import signal
import sys
import warnings
from typing import Optional, Sequence

from . import __version__
from .process import before_numpy, finish

before_numpy()

from .io import flags  # noqa: E402  (after the process settings)
from .render import progress  # noqa: E402
from .errors import InputError, report_failures  # noqa: E402
from .io.files import StagedOutputs  # noqa: E402
from .outputs.render_files import OutputFiles, write_files  # noqa: E402
from .render.renderer import Renderer  # noqa: E402
from .models.nanobragg import build_simulation  # noqa: E402
from .models.validation import check_image  # noqa: E402


_OUTPUT_FLAGS = (("-floatfile", "floatfilename", None), ("-intfile", "intfilename", None),
                 ("-pgmfile", "pgmfilename", "write_pgm"), ("-noisefile", "noisefilename", "calculate_noise"),
                 ("-cbffile", "cbffilename", "cbffilename"), ("-nexusfile", "nexusfilename", "nexusfilename"),
                 ("-pngfile", "pngfilename", "pngfilename"),
                ("--write-expt", "write_exptfilename", "write_exptfilename"))
_INPUT_FLAGS = (("-hkl", "hklfilename"), ("-mat", "matfilename"), ("-img", "imginfilename"),
                ("-mask", "maskfilename"), ("-sourcefile", "sourcefilename"), ("-stol", "stolfilename"),
                ("--geom", "geomfilename"), ("--expt", "exptfilename"))


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
    if settings.geomfilename or settings.exptfilename:  # the multi-panel route, imported only for it
        from . import cli_experiment
        return cli_experiment.run_experiment(settings, log, err)
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
    files = OutputFiles.from_settings(settings, _response(settings, sim.detector.pixel_size))
    with StagedOutputs() as staged:
        write_files(sim, result, files, log, staged.stage)
        if settings.write_exptfilename:
            from . import cli_experiment
            from .models.experiment import Experiment
            cli_experiment.write_expt(settings, Experiment.from_simulation(sim, settings.mosaic_seed), staged.stage, log)
    log("render took %.3f s (%s, %s, %d threads)" % (result.seconds, renderer.backend.name, renderer.policy.name,
                                                      renderer.threads))
    return 0


def _response(settings, pixel_size: float):
    """The detector response noisify's flags ask for, or None (the response package is imported only then)."""
    if not settings.explicit & flags.RESPONSE_FLAG_FIELDS:
        return None
    from .response.from_flags import response_for
    return response_for(settings, pixel_size)


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


def console() -> None:
    """The ``arraybragg`` program: :func:`main`, then the process ends at once, its files written and
    closed by then: the interpreter's teardown, freeing every module and the image arrays, took
    40-55 ms of a 3072^2 render (measured from main's return to the parent seeing the exit)."""
    finish(main())


def _main(argv: Sequence[str]) -> int:
    # MemoryError is a safety net: the --max-memory estimate should refuse such runs first
    return report_failures("arraybragg", run, argv,
                           out_of_memory="lower the detector size, -oversample or the step counts (or --max-memory)")


if __name__ == "__main__":
    sys.exit(main())
