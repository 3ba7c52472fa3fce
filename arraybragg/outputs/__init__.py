"""What a render writes: images in nanoBragg's formats and others, with their header values.

* :mod:`.images`: raw floats, scaled integers, Poisson noise, PGM preview (nanoBragg's conversions);
* :mod:`.headers`: SMV header values derived from the rendered models;
* :mod:`.imagefiles`: miniCBF, NeXus/NXmx and PNG for other programs.
"""
