"""arraybragg: the nanoBragg diffraction simulator on the array API (NumPy, CuPy, PyTorch).

Typical use, in user units (Angstrom, mm, degrees)::

    import arraybragg as ab
    experiment = ab.Experiment(
        beam=ab.Beam(wavelength_A=1.0),
        detector=ab.Detector.simple(distance_mm=100, pixel_size_mm=0.1, size=(256, 256)),
        crystal=ab.Crystal.from_cell((100, 100, 100, 90, 90, 90), cells=(5, 5, 5)),
        structure_factors=ab.StructureFactors(default_F=100))
    images = ab.Simulator(experiment, backend="numpy", dtype="float64").render()
    images.to_numpy()[0]      # float32 (slow, fast) photons per pixel of panel 0

or from nanoBragg's flags: ``ab.Experiment.from_flags("-cell 100 100 100 90 90 90 ...".split())``.
"""
from .backend import get_backend, get_policy
from .models import (Beam, Convention, Crystal, CrystalShape, Detector, Experiment, Goniometer, Panel, Pivot,
                     Sampling, Source, StructureFactors)
from .errors import InputError
from .io.flags import parse_args
from .models.lab import Simulation
from .models.nanobragg import build_simulation
from .render.renderer import RenderResult, Renderer, render
from .render.simulator import Images, Simulator
from .outputs.render_files import OutputFiles, write_files

__version__ = "0.1.0"

__all__ = [
    "Beam", "Convention", "Crystal", "CrystalShape", "Detector", "Experiment", "Goniometer", "Images", "InputError",
    "OutputFiles", "Panel", "Pivot", "RenderResult", "Renderer", "Sampling", "Simulation", "Simulator", "Source",
    "StructureFactors", "build_simulation", "get_backend", "get_policy", "parse_args", "render", "write_files",
]
