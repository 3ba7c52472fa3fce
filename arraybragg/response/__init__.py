"""Detector response: what a detector makes of ideal photons/pixel (noisify's model and more).

:func:`apply_response` with a :class:`DetectorResponse` turns a float image into
the noiseless and noisy SMV integer images; :func:`apply_psf` blurs any
array-API image; :mod:`.files` writes noisify's SMV and PGM files.
"""
from .model import DetectorResponse, ResponseResult, apply_response, photon_image
from .psf import PSF, apply_psf

__all__ = ["DetectorResponse", "ResponseResult", "apply_response", "photon_image", "PSF", "apply_psf"]
