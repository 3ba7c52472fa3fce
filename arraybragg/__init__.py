"""arraybragg: the nanoBragg diffraction simulator on the array API (NumPy, CuPy).

Typical use::

    import arraybragg
    settings = arraybragg.parse_args("-cell 100 100 100 90 90 90 -default_F 100 -N 5".split())
    sim = arraybragg.build_simulation(settings)
    result = arraybragg.render(sim, backend="numpy", dtype="float64")
    result.image          # float32 (slow, fast) photons per pixel
"""
from .backend import get_backend, get_policy
from .errors import InputError
from .io.flags import parse_args
from .models.lab import Beam, Crystal, Detector, Goniometer, Sampling, Simulation, StructureFactors
from .models.nanobragg import build_simulation
from .render.renderer import RenderResult, Renderer, render

__version__ = "0.1.0"

__all__ = [
    "Beam", "Crystal", "Detector", "Goniometer", "InputError", "RenderResult", "Renderer", "Sampling",
    "Simulation", "StructureFactors", "build_simulation", "get_backend", "get_policy", "parse_args", "render",
]
