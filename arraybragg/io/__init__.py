"""Input and output formats, below everything else: nothing here imports the models or the physics.

* :mod:`.flags`: nanoBragg's command line -> :class:`~.flags.Settings`;
* :mod:`.hkl`, :mod:`.reflections`: structure-factor files (nanoBragg's HKL text and Fdump, MTZ/mmCIF/PDB);
* :mod:`.smv`: SMV (ADSC) images, read and written as nanoBragg does;
* :mod:`.cformat`: the C number conversions files and logs depend on;
* :mod:`.files`: all-or-nothing file writing.
"""
