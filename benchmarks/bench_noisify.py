"""asv benchmarks of the detector response (noisify's model) on the issue's speed case.

sup_full's float image (2463 x 2527, the corpus case) with ``-pixel 0.172 -scale 1e7 -psf gauss
-psf_fwhm 300 -seed 3``: the whole model (noise loop, PSF, ADU images) as ``apply_response``
runs it, with the exact direct PSF and with the FFT one.  Setup raises NotImplementedError (asv's
skip) without the corpus.  Whole-process timings against noisify.c: ``benchmarks/noisify_vs_c.py``.
"""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from arraybragg.response import PSF, DetectorResponse, apply_response

REPO = Path(__file__).resolve().parent.parent


def _sup_full_image() -> np.ndarray:
    reference = Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))
    path = reference / "cases" / "sup_full" / "float.bin.gz"
    if not path.exists():
        raise NotImplementedError("reference corpus (sup_full) not found")
    return np.frombuffer(gzip.decompress(path.read_bytes()), dtype="<f4").reshape(2527, 2463)


class NoisifySupFull:
    params = ["direct", "fft"]
    param_names = ["psf_method"]
    timeout = 600

    def setup(self, method):
        self.image = _sup_full_image()
        fwhm_pixels = float(np.float32(300e-6)) / 0.172e-3
        self.response = DetectorResponse(scale=1e7, seed=-3, psf=PSF("gauss", fwhm_pixels, method=method))
        apply_response(self.image[:64, :64], self.response)  # numba's compile or cache load, outside the timing

    def time_apply_response(self, method):
        apply_response(self.image, self.response)
