"""The files of a render, as the command line writes them, for any caller.

:class:`OutputFiles` names the files and their options (nanoBragg's: -floatfile,
-intfile, -noisefile, -pgmfile, -scale, -pgmscale, -adc, -seed; and -cbffile,
-nexusfile, -pngfile); :func:`write_files` writes one panel's render, all files
or none.  A detector of several panels gets one set of files per panel:
:meth:`OutputFiles.for_panel` inserts the panel's name (or ``p00``, ``p01``, ...)
before each file's extension, e.g. ``float.bin`` -> ``float_q0a0.bin``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from ..io import smv
from ..concurrency import beside
from ..io.files import StagedOutputs
from ..models.lab import Simulation
from . import images
from .headers import smv_header_for

FILE_FIELDS = ("floatfile", "intfile", "noisefile", "pgmfile", "cbffile", "nexusfile", "pngfile")


@dataclass(frozen=True)
class OutputFiles:
    """Which files to write and how; a file left None is not written."""

    floatfile: Optional[str] = None
    intfile: Optional[str] = None
    noisefile: Optional[str] = None
    pgmfile: Optional[str] = None
    cbffile: Optional[str] = None
    nexusfile: Optional[str] = None
    pngfile: Optional[str] = None
    intfile_scale: float = 0.0          # SMV counts per photon; 0: nanoBragg's automatic scale
    pgm_scale: float = 0.0              # grey levels per photon; 0: automatic
    adc_offset: float = 40.0
    seed: int = -12345                  # noise seed, negated as nanoBragg stores it
    response: object = None             # a response.DetectorResponse for the noise image, or None
    exposure_s: float = 1.0             # for the CBF and NeXus headers
    nexus_int: bool = False
    png_scale: str = "log"
    png_cmap: str = "inferno"
    threads: Optional[int] = None       # CPU threads of the detector response's PSF (None: every core)

    @classmethod
    def from_settings(cls, settings, response=None) -> "OutputFiles":
        """The files a parsed command line asks for (nanoBragg always writes the float and SMV images)."""
        s = settings
        return cls(floatfile=s.floatfilename, intfile=s.intfilename,
                   noisefile=s.noisefilename if s.calculate_noise else None,
                   pgmfile=s.pgmfilename if s.write_pgm else None, cbffile=s.cbffilename or None,
                   nexusfile=s.nexusfilename or None, pngfile=s.pngfilename or None,
                   intfile_scale=s.intfile_scale, pgm_scale=s.pgm_scale, adc_offset=s.adc_offset, seed=s.seed,
                   response=response, exposure_s=s.exposure, nexus_int=s.nexus_int, png_scale=s.png_scale,
                   png_cmap=s.png_cmap, threads=s.threads)

    def replace(self, **changes) -> "OutputFiles":
        return dataclasses.replace(self, **changes)

    def paths(self) -> list[tuple[str, str]]:
        return [(name, getattr(self, name)) for name in FILE_FIELDS if getattr(self, name)]

    def for_panel(self, index: int, names: Sequence[str]) -> "OutputFiles":
        """The files of panel ``index`` of a detector whose panels are called ``names``."""
        if len(names) == 1:
            return self
        tag = panel_tags(names)[index]
        return dataclasses.replace(self, **{field: _tagged(path, tag) for field, path in self.paths()})


def panel_tags(names: Sequence[str]) -> list[str]:
    """File-name tags of panels: their names when distinct and file-safe, else p00, p01, ..."""
    if len(set(names)) == len(names) and all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n or "") for n in names):
        return list(names)
    width = max(2, len(str(len(names) - 1)))
    return [f"p{i:0{width}d}" for i in range(len(names))]


def _tagged(path: str, tag: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_{tag}{ext}"


def write_files(sim: Simulation, result, files: OutputFiles, log: Optional[Callable[[str], None]] = None,
                stage: Optional[Callable[[str], str]] = None) -> tuple:
    """Write a render's files: every file or none (``stage`` lets a caller group several renders' files).

    Returns the (integer, noise or None) images it made, for files that hold several panels."""
    log = log or (lambda line: None)
    if stage is None:
        with StagedOutputs() as staged:
            return write_files(sim, result, files, log, staged.stage)
    waits = []
    if files.floatfile:  # written on another thread while the integer images are made
        waits.append(beside(lambda path: images.write_float_image(path, result.image), stage(files.floatfile),
                            files.threads or 2))
        log("writing %s as %d 4-byte floats" % (files.floatfile, result.image.size))
    try:
        written = _write_integer_files(sim, result, files, log, stage)
    except BaseException:
        for wait in waits:  # the first error is the one to report
            with contextlib.suppress(Exception):
                wait()
        raise
    for wait in waits:
        wait()
    return written


def _write_integer_files(sim: Simulation, result, files: OutputFiles, log, stage) -> tuple:
    """The SMV, PGM and noise files and the other formats of :func:`write_files`."""
    stats, image, roi = result.stats, result.image, sim.sampling.roi
    log("max_I = %g  at %g %g" % (stats.max_I, stats.max_I_x, stats.max_I_y))
    log("mean= %g rms= %g rmsd= %g" % (stats.mean, stats.rms, stats.rmsd))
    scale = files.intfile_scale if files.intfile_scale > 0.0 else images.auto_int_scale(stats.max_I)
    log("intfile_scale = %g" % scale)
    header = smv_header_for(sim)
    int_pixels = images.int_image(image, scale, files.adc_offset, roi)
    if files.intfile:
        smv.write_smv(stage(files.intfile), int_pixels, header, c_parity=sim.c_parity)
        log("writing %s as 2-byte integers" % files.intfile)
    if files.pgmfile:
        pgm_scale = files.pgm_scale if files.pgm_scale > 0.0 else images.auto_pgm_scale(scale, stats.rmsd)
        log("pgm_scale = %g" % pgm_scale)
        images.write_pgm(stage(files.pgmfile), image, pgm_scale, roi)
        log("writing %s as 1-byte integers" % files.pgmfile)
    noise = None
    if files.noisefile:
        noise, photons, overloads = noise_image(files, image, roi)
        log("%.0f photons on noise image (%d overloads)" % (photons, overloads))
        smv.write_smv(stage(files.noisefile), noise, header, c_parity=sim.c_parity)
        log("writing %s as 2-byte integers" % files.noisefile)
    _write_other_formats(files, sim, log, stage, image, int_pixels, noise)
    return int_pixels, noise


def noise_image(files: OutputFiles, image, roi):
    """nanoBragg's Poisson noise image, or the detector-response model's when one is given."""
    if files.response is None:
        return images.noise_image(image, files.seed, files.adc_offset, roi)
    from ..response import apply_response
    result = apply_response(image, files.response, threads=files.threads)
    return result.noise_image, result.noise_photons, result.overloads


def _write_other_formats(files: OutputFiles, sim, log, stage, image, int_pixels, noise) -> None:
    """-cbffile, -nexusfile and -pngfile (formats nanoBragg does not write)."""
    if not (files.cbffile or files.nexusfile or files.pngfile):
        return
    from . import imagefiles  # fabio, h5py and matplotlib only when asked for
    if files.cbffile:
        imagefiles.write_cbf(stage(files.cbffile), int_pixels, sim, exposure_s=files.exposure_s,
                             name_as=files.cbffile)
        log("writing %s as byte-offset compressed miniCBF" % files.cbffile)
    if files.nexusfile:
        extra = dict(int_image=int_pixels, noise_image=noise) if files.nexus_int else {}
        imagefiles.write_nexus(stage(files.nexusfile), image, sim, exposure_s=files.exposure_s, **extra)
        log("writing %s as NeXus/NXmx HDF5" % files.nexusfile)
    if files.pngfile:
        imagefiles.write_png(stage(files.pngfile), image, files.png_scale, files.png_cmap)
        log("writing %s as %s-scaled PNG" % (files.pngfile, files.png_scale))
