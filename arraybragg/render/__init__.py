"""Rendering: a lab-frame :class:`~arraybragg.models.lab.Simulation` -> photons per pixel.

* :mod:`.renderer`: :class:`~.renderer.Renderer`, the tiled, array-API render in nanoBragg's loop order,
  put together from
* :mod:`.staging`: the arrays a render puts on the device (vectors, orientations, F table, subpixels);
* :mod:`.pixels`: pixel geometry (positions, solid angle, capture fraction, polarization, -dmin cut);
* :mod:`.terms`: lattice and structure-factor terms (direct and small-rotation paths, interpolation);
* :mod:`.accumulate`: per-pixel sums, nanoBragg's running products and the final scale;
* :mod:`.schedule`: the rendered pixels, their tiles and the workers that run them;
* :mod:`.stats`: nanoBragg's image statistics;
* :mod:`.trace`: one pixel's intermediate values (``-trace_pixel``, ``-printout``);
* :mod:`.progress`: the terminal progress bar.
"""
