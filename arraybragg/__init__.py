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

The public names are imported on first use (PEP 562), so that tools that need
only part of the package (``arraybragg-noisify``) do not pay for the rest.
"""
from .lazy import lazy_names

__version__ = "0.1.0"

# public name -> the module that defines it
_SOURCES = {
    "get_backend": ".backend", "get_policy": ".backend", "InputError": ".errors", "parse_args": ".io.flags",
    **{name: ".models" for name in ("Beam", "Convention", "Crystal", "CrystalShape", "Detector", "Experiment",
                                    "Goniometer", "Panel", "Pivot", "Sampling", "Source", "StructureFactors")},
    "Simulation": ".models.lab", "build_simulation": ".models.nanobragg",
    "RenderResult": ".render.renderer", "Renderer": ".render.renderer",
    "Images": ".render.simulator", "Simulator": ".render.simulator",
    "OutputFiles": ".outputs.render_files", "write_files": ".outputs.render_files",
    # ``arraybragg.render`` is the render stage's package; its function for lab-frame simulations is
    # ``arraybragg.render.renderer.render``, exported here as ``render_simulation``
    "render_simulation": (".render.renderer", "render"),
}

__all__ = sorted(_SOURCES, key=lambda name: (not name[0].isupper(), name))
__getattr__, __dir__ = lazy_names(__name__, globals(), _SOURCES)
