"""The experiment's models, and the factories that build them.

* :mod:`.lab`: the lab-frame models a render takes (metres, radians);
* :mod:`.nanobragg`: nanoBragg's flags -> lab-frame models, with its conventions, pivots and defaults;
* :mod:`.validation`: the checks every route into the models goes through;
* :mod:`.vectors`: host-side vector helpers.
"""
