"""arraybragg: the nanoBragg diffraction simulator on the array API (NumPy, CuPy).

Typical use::

    import arraybragg
    settings = arraybragg.parse_args("-cell 100 100 100 90 90 90 -default_F 100 -N 5".split())
    sim = arraybragg.build_simulation(settings)
    result = arraybragg.render(sim, backend="numpy", dtype="float64")
    result.image          # float32 (slow, fast) photons per pixel

The public names are imported on first use (PEP 562), so that tools that need
only part of the package (``arraybragg-noisify``) do not pay for the rest.
"""
import importlib

__version__ = "0.1.0"

# public name -> the module that defines it
_SOURCES = {
    "get_backend": ".backend", "get_policy": ".backend", "InputError": ".errors", "parse_args": ".flags",
    "Beam": ".models", "Crystal": ".models", "Detector": ".models", "Goniometer": ".models",
    "Sampling": ".models", "Simulation": ".models", "StructureFactors": ".models",
    "RenderResult": ".accumulation", "Renderer": ".accumulation", "render": ".accumulation",
    "build_simulation": ".setup",
}

__all__ = sorted(_SOURCES, key=lambda name: (not name[0].isupper(), name))


def __getattr__(name):
    if name not in _SOURCES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_SOURCES[name], __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_SOURCES))
