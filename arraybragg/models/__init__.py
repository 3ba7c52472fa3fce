"""The experiment's models, and the factories that build them.

User-unit models (Angstrom, mm, degrees, eV; frozen, validated, ``replace`` for changes):
:class:`Beam`, :class:`Panel`, :class:`Detector`, :class:`Goniometer`, :class:`Crystal`,
:class:`Sampling`, :class:`Experiment`; enums :class:`Convention`, :class:`Pivot`,
:class:`CrystalShape`.  Every length field names its unit (``distance_mm``,
``wavelength_A``), so a value in the wrong unit cannot be passed by mistake.

* :mod:`.lab`: the lab-frame models a render takes (metres, radians), lowered from an Experiment;
* :mod:`.nanobragg`: nanoBragg's flags -> lab-frame models, with its conventions, pivots and defaults;
* :mod:`.nanobragg_factories`: the same conventions as factories of user-unit models;
* :mod:`.validation`: the checks of the command line's settings;
* :mod:`.vectors`, :mod:`.checks`: host-side vector helpers and value checks.
"""
from .beam import Beam, Source
from .crystal import Crystal, CrystalShape
from .detector import Convention, Detector, Panel, Pivot
from .experiment import Experiment, Sampling
from .goniometer import Goniometer
from .lab import StructureFactors
from .nanobragg_factories import conventional_axes, nanobragg_detector

__all__ = ["Beam", "Convention", "Crystal", "CrystalShape", "Detector", "Experiment", "Goniometer", "Panel",
           "Pivot", "Sampling", "Source", "StructureFactors", "conventional_axes", "nanobragg_detector"]
