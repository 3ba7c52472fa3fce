"""``arraybragg <nanoBragg flags>``: the nanoBragg command line over the Python API."""
from __future__ import annotations

import math
import sys
from typing import Optional, Sequence

from . import __version__, flags, outputs, progress, smv
from .errors import InputError
from .accumulation import Renderer
from .setup import RTD, build_simulation


def smv_header_for(sim) -> smv.SMVHeader:
    """Header values nanoBragg writes into its SMV files."""
    d, g = sim.detector, sim.goniometer
    return smv.SMVHeader(
        fpixels=d.fpixels, spixels=d.spixels, pixel_size_mm=d.pixel_size * 1000.0,
        distance_mm=d.distance * 1000.0, wavelength_A=sim.beam.lambda0 * 1e10,
        beam_center_x_mm=d.Xbeam * 1000.0, beam_center_y_mm=d.Ybeam * 1000.0,
        adxv_center_x_mm=d.Fbeam * 1000.0, adxv_center_y_mm=(d.detsize_s - d.Sbeam) * 1000.0,
        mosflm_center_x_mm=(d.Sbeam - 0.5 * d.pixel_size) * 1000.0,
        mosflm_center_y_mm=(d.Fbeam - 0.5 * d.pixel_size) * 1000.0,
        denzo_x_beam_mm=d.Sbeam * 1000.0, denzo_y_beam_mm=d.Fbeam * 1000.0,
        dials_origin_mm=tuple(float(v) for v in d.dials_origin_mm), xds_orgx=d.ORGX, xds_orgy=d.ORGY,
        close_distance_mm=d.close_distance * 1000.0, phi_deg=g.phi0 * RTD, osc_start_deg=g.phi0 * RTD,
        osc_range_deg=g.osc * RTD, twotheta_deg=d.twotheta * RTD)


def _write_extra_images(settings, sim, log, image, int_pixels, noise) -> None:
    """-cbffile, -nexusfile and -pngfile (formats nanoBragg does not write)."""
    if not (settings.cbffilename or settings.nexusfilename or settings.pngfilename):
        return
    from . import imagefiles  # fabio, h5py and matplotlib only when asked for
    if settings.cbffilename:
        imagefiles.write_cbf(settings.cbffilename, int_pixels, sim, exposure_s=settings.exposure)
        log("writing %s as byte-offset compressed miniCBF" % settings.cbffilename)
    if settings.nexusfilename:
        extra = dict(int_image=int_pixels, noise_image=noise) if settings.nexus_int else {}
        imagefiles.write_nexus(settings.nexusfilename, image, sim, exposure_s=settings.exposure, **extra)
        log("writing %s as NeXus/NXmx HDF5" % settings.nexusfilename)
    if settings.pngfilename:
        imagefiles.write_png(settings.pngfilename, image, settings.png_scale, settings.png_cmap)
        log("writing %s as %s-scaled PNG" % (settings.pngfilename, settings.png_scale))


def _noise_image(settings, sim, image, roi):
    """nanoBragg's Poisson noise image, or the detector-response model's when its flags were given."""
    from .response import apply_response
    from .response.from_flags import response_for
    response = response_for(settings, sim.detector.pixel_size)
    if response is None:
        return outputs.noise_image(image, settings.seed, settings.adc_offset, roi)
    result = apply_response(image, response)
    return result.noise_image, result.noise_photons, result.overloads


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
    log("arraybragg: nanoBragg nanocrystal diffraction simulator on the array API")
    if settings.pngfilename:  # a bad colour map fails before the render, not after
        from . import imagefiles
        imagefiles.check_png_options(settings.png_scale, settings.png_cmap)
    sim = build_simulation(settings, log=log)
    renderer = Renderer(sim, backend=settings.backend, policy=settings.dtype, threads=settings.threads,
                        tile_pixels=settings.tile_pixels)
    show_progress = settings.progress_meter and err.isatty() and not settings.printout
    result = renderer.render(progress=progress.terminal_progress(err) if show_progress else None)
    if settings.trace_pixel is not None or settings.printout:
        from . import trace  # only for -trace_pixel / -printout: keeps start-up short
        for line in trace.report_lines(settings, sim, result.image):
            log(line)
    for line in result.log:
        log(line)
    stats = result.stats
    log("solid angle subtended by detector = %g steradian ( %g%% sphere)"
        % (stats.omega_sum / sim.steps, 100 * stats.omega_sum / sim.steps / 4 / math.pi))
    image = result.image
    roi = sim.sampling.roi
    outputs.write_float_image(settings.floatfilename, image)
    log("writing %s as %d 4-byte floats" % (settings.floatfilename, image.size))
    log("max_I = %g  at %g %g" % (stats.max_I, stats.max_I_x, stats.max_I_y))
    log("mean= %g rms= %g rmsd= %g" % (stats.mean, stats.rms, stats.rmsd))
    scale = settings.intfile_scale if settings.intfile_scale > 0.0 else outputs.auto_int_scale(stats.max_I)
    log("intfile_scale = %g" % scale)
    header = smv_header_for(sim)
    int_pixels = outputs.int_image(image, scale, settings.adc_offset, roi)
    smv.write_smv(settings.intfilename, int_pixels, header, c_parity=sim.c_parity)
    log("writing %s as 2-byte integers" % settings.intfilename)
    if settings.write_pgm:
        pgm_scale = settings.pgm_scale if settings.pgm_scale > 0.0 else outputs.auto_pgm_scale(scale, stats.rmsd)
        log("pgm_scale = %g" % pgm_scale)
        outputs.write_pgm(settings.pgmfilename, image, pgm_scale, roi)
        log("writing %s as 1-byte integers" % settings.pgmfilename)
    if settings.calculate_noise:
        noise, photons, overloads = _noise_image(settings, sim, image, roi)
        log("%.0f photons on noise image (%d overloads)" % (photons, overloads))
        smv.write_smv(settings.noisefilename, noise, header, c_parity=sim.c_parity)
        log("writing %s as 2-byte integers" % settings.noisefilename)
    _write_extra_images(settings, sim, log, image, int_pixels, noise if settings.calculate_noise else None)
    log("render took %.3f s (%s, %s, %d threads)" % (result.seconds, renderer.backend.name, renderer.policy.name,
                                                      renderer.threads))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except InputError as exc:
        sys.stderr.write("arraybragg: error: %s\n" % exc)
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("arraybragg: interrupted\n")
        return 130
    except OSError as exc:
        sys.stderr.write("arraybragg: error: %s: %s\n" % (getattr(exc, "filename", "") or "I/O", exc.strerror or exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
