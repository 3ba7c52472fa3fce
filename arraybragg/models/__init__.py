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
from ..lazy import lazy_names

# public name -> module; imported on first use, so that ``models.lab`` alone (what a render takes)
# does not load the user-unit models and their factories
_SOURCES = {"Beam": ".beam", "Source": ".beam", "Crystal": ".crystal", "CrystalShape": ".crystal",
            "Convention": ".detector", "Detector": ".detector", "Panel": ".detector", "Pivot": ".detector",
            "Experiment": ".experiment", "Sampling": ".experiment", "Goniometer": ".goniometer",
            "StructureFactors": ".lab", "conventional_axes": ".nanobragg_factories",
            "nanobragg_detector": ".nanobragg_factories"}

__all__ = sorted(_SOURCES)


__getattr__, __dir__ = lazy_names(__name__, globals(), _SOURCES)
