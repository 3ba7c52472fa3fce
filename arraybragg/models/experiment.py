"""An experiment in user units: beam, detector, crystal, goniometer, structure factors and sampling.

:meth:`Experiment.panel_simulation` lowers one panel of it to the lab-frame
:class:`~.lab.Simulation` (metres, radians) a render takes; :meth:`Experiment.from_flags`
builds one from nanoBragg's command line through the same derivation as the CLI.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from . import checks
from .beam import Beam
from .crystal import Crystal
from .detector import Convention, Detector, Panel
from .goniometer import Goniometer
from .lab import Detector as LabDetector
from .lab import Sampling as LabSampling
from .lab import Simulation, StructureFactors
from .nanobragg import Log, sensor_layers
from .nanobragg_factories import stated_beam_centre


@dataclass(frozen=True)
class Sampling:
    """How pixels are sampled: subpixels per side, the ``-oversample_*`` options, region and mask.

    ``roi`` is (fast min, fast max, slow min, slow max), inclusive; ``mask`` a (slow, fast)
    array, 0 = not rendered; ``dmin_A`` skips scattering finer than that resolution.
    """

    oversample: int = 1
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    roi: Optional[tuple[int, int, int, int]] = None
    mask: Optional[np.ndarray] = field(default=None, compare=False)
    dmin_A: float = 0.0
    water_size_um: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "oversample", checks.count("Sampling.oversample", self.oversample))
        object.__setattr__(self, "dmin_A", checks.non_negative("Sampling.dmin_A", self.dmin_A))
        object.__setattr__(self, "water_size_um", checks.non_negative("Sampling.water_size_um", self.water_size_um))
        if self.roi is not None:
            if len(self.roi) != 4:
                raise InputError("Sampling.roi: expected (fast min, fast max, slow min, slow max)")
            object.__setattr__(self, "roi", tuple(checks.count("Sampling.roi", v, 0) for v in self.roi))

    def replace(self, **changes) -> "Sampling":
        return dataclasses.replace(self, **changes)

    def lab(self, panel: Panel) -> LabSampling:
        fast, slow = panel.size
        roi = self.roi if self.roi is not None else (0, fast - 1, 0, slow - 1)
        if self.mask is not None and np.shape(self.mask) != panel.shape:
            raise InputError(f"Sampling.mask: shape {np.shape(self.mask)} is not the panel's {panel.shape}")
        return LabSampling(oversample=self.oversample, oversample_thick=self.oversample_thick,
                           oversample_polar=self.oversample_polar, oversample_omega=self.oversample_omega,
                           roi=roi, mask=None if self.mask is None else np.asarray(self.mask),
                           dmin=self.dmin_A * 1e-10, water_size=self.water_size_um * 1e-6)


def lab_detector(panel: Panel, beam: Beam, convention: Convention) -> LabDetector:
    """The lab-frame (metre) detector of one panel, with the header values its convention states."""
    px = panel.pixel_size_mm * 1e-3
    fpixels, spixels = panel.size
    normal = np.array(panel.normal)
    pix0 = np.array(panel.origin_mm) * 1e-3
    ratio = float(np.dot(beam.direction, normal))
    close = float(pix0 @ normal)
    distance = close / ratio if ratio > 0.0 else close
    Fbeam, Sbeam = (v * 1e-3 for v in panel.beam_centre_mm(beam)) if ratio > 0.0 else (np.nan, np.nan)
    Fclose, Sclose = -float(pix0 @ np.array(panel.fast_axis)), -float(pix0 @ np.array(panel.slow_axis))
    Xbeam, Ybeam = stated_beam_centre(convention, Fbeam, Sbeam, px, spixels * px)
    length = panel.attenuation_length_mm
    steps, thick, step, mu = sensor_layers(panel.thickness_steps, panel.thickness_mm * 1e-3, -1.0,
                                           1e3 / length if length else -1.0, Log())
    return LabDetector(pix0=pix0, fdet=np.array(panel.fast_axis), sdet=np.array(panel.slow_axis), odet=normal,
                       pixel_size=px, fpixels=fpixels, spixels=spixels, distance=distance, close_distance=close,
                       beam_vector=np.array(beam.direction), thickness=thick, thicksteps=steps, thickstep=step,
                       mu=mu, Xbeam=Xbeam, Ybeam=Ybeam, Fbeam=Fbeam, Sbeam=Sbeam, Xclose=Fclose, Yclose=Sclose,
                       Fclose=Fclose, Sclose=Sclose, ORGX=Fclose / px + 0.5, ORGY=Sclose / px + 0.5,
                       dials_origin_mm=np.array([pix0[2], pix0[1], -pix0[0]]) * 1e3,
                       detsize_f=fpixels * px, detsize_s=spixels * px, convention=convention.value,
                       pivot="BEAM")


@dataclass(frozen=True)
class Experiment:
    """Everything a render needs, in user units.  ``panel_sampling`` overrides ``sampling`` per panel
    (None entries keep ``sampling``)."""

    beam: Beam
    detector: Detector
    crystal: Crystal
    structure_factors: StructureFactors
    goniometer: Goniometer = Goniometer()
    sampling: Sampling = Sampling()
    panel_sampling: tuple[Optional[Sampling], ...] = ()

    def __post_init__(self):
        if isinstance(self.detector, Panel):
            object.__setattr__(self, "detector", Detector((self.detector,)))
        object.__setattr__(self, "panel_sampling", tuple(self.panel_sampling))
        if self.panel_sampling and len(self.panel_sampling) != len(self.detector):
            raise InputError(f"Experiment.panel_sampling: {len(self.panel_sampling)} entries for "
                             f"{len(self.detector)} panels")
        sf = self.structure_factors
        if sf.default_F == 0.0 and (sf.grid is None or sf.grid.count == 0):
            raise InputError("Experiment.structure_factors: no structure factors (give a grid or a default_F)")

    def replace(self, **changes) -> "Experiment":
        return dataclasses.replace(self, **changes)

    def sampling_of(self, index: int) -> Sampling:
        chosen = self.panel_sampling[index] if self.panel_sampling else None
        return chosen if chosen is not None else self.sampling

    def panel_simulation(self, index: int = 0, c_parity: bool = False) -> Simulation:
        """The lab-frame simulation of panel ``index``: what a render of that panel takes."""
        panel = self.detector[index]
        return Simulation(detector=lab_detector(panel, self.beam, self.detector.convention),
                          beam=self.beam.lab(), crystal=self.crystal.lab(), goniometer=self.goniometer.lab(),
                          structure_factors=self.structure_factors, sampling=self.sampling_of(index).lab(panel),
                          c_parity=c_parity)

    @classmethod
    def from_flags(cls, argv: Sequence[str], workdir: str = ".") -> "Experiment":
        """The experiment of a nanoBragg command line (files are read relative to ``workdir``)."""
        from ..io.flags import parse_args
        from .nanobragg import build_simulation
        settings = parse_args(list(argv))
        return cls.from_simulation(build_simulation(settings, workdir=workdir), mosaic_seed=settings.mosaic_seed)

    @classmethod
    def from_simulation(cls, sim: Simulation, mosaic_seed: int = -12345678) -> "Experiment":
        """User-unit models of a lab-frame simulation (one panel)."""
        from .nanobragg_factories import panel_from_lab
        d, smp = sim.detector, sim.sampling
        convention = Convention(d.convention) if d.convention in Convention.__members__ else Convention.CUSTOM
        sampling = Sampling(oversample=smp.oversample, oversample_thick=smp.oversample_thick,
                            oversample_polar=smp.oversample_polar, oversample_omega=smp.oversample_omega,
                            roi=smp.roi, mask=smp.mask, dmin_A=smp.dmin * 1e10, water_size_um=smp.water_size * 1e6)
        return cls(beam=Beam.from_lab(sim.beam), detector=Detector((panel_from_lab(d),), convention=convention),
                   crystal=Crystal.from_lab(sim.crystal),
                   goniometer=Goniometer.from_lab(sim.goniometer, mosaic_seed=mosaic_seed),
                   structure_factors=sim.structure_factors, sampling=sampling)
