"""The detector response the main ``arraybragg`` command line asks for (noisify's flag names).

Any of -readout_noise, -flicker, -calibration, -calib_seed, -psf, -psf_fwhm,
-psf_radius, -gain or --psf-method makes the ``-noisefile`` image come from
:func:`arraybragg.response.apply_response` instead of nanoBragg's plain Poisson
noise.  The rendered float image is already photons/pixel, so it is taken as
noisify's input with ``-scale 1``; nanoBragg's ``-scale`` stays the scale of the
noiseless ``-intfile`` only; ``-adc`` is the offset of both images; ``-seed``
seeds the shot noise (Poisson, flicker, readout) as noisify's ``-seed`` does.
Unlike noisify, the calibration error defaults to 0 here (ask with -calibration).
"""
from __future__ import annotations

from typing import Optional

from ..io.flags import RESPONSE_FLAG_FIELDS as RESPONSE_FIELDS
from .model import DetectorResponse
from .psf import PSF

__all__ = ["RESPONSE_FIELDS", "response_for"]



def response_for(settings, pixel_size: float) -> Optional[DetectorResponse]:
    """The response of parsed ``arraybragg`` settings (pixel size in m), None when none was asked for."""
    if not settings.explicit & RESPONSE_FIELDS:
        return None
    psf = None
    if settings.psf is not None and settings.psf_fwhm > 0.0:
        psf = PSF(settings.psf, settings.psf_fwhm / pixel_size, settings.psf_radius, settings.psf_method)
    return DetectorResponse(scale=1.0, gain=settings.gain, adc_offset=settings.adc_offset,
                            readout_noise=settings.readout_noise, flicker=settings.flicker,
                            calibration=settings.calibration, seed=settings.seed,
                            calib_seed=settings.calib_seed, psf=psf)
