"""Rendering: a lab-frame :class:`~arraybragg.models.lab.Simulation` -> photons per pixel.

* :mod:`.renderer`: the tiled, array-API render in nanoBragg's loop order;
* :mod:`.trace`: one pixel's intermediate values (``-trace_pixel``, ``-printout``);
* :mod:`.progress`: the terminal progress bar.
"""
