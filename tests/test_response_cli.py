"""The detector response after a render: the main command's noisify flags and the Python API."""
from __future__ import annotations

import numpy as np
import pytest

from arraybragg import cli
from arraybragg.errors import InputError
from arraybragg.io.flags import parse_args
from arraybragg.response import DetectorResponse, PSF, apply_response
from arraybragg.response.from_flags import response_for
from arraybragg.tools import noisify

RENDER = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-N", "5", "-lambda", "1",
          "-distance", "100", "-pixel", "0.1", "-detpixels", "64", "-noprogress"]
RESPONSE = ["-psf", "gauss", "-psf_fwhm", "150", "-readout_noise", "2", "-gain", "2", "-flicker", "0.01"]


def _pixels(path) -> np.ndarray:
    return np.frombuffer(path.read_bytes()[512:], dtype=np.uint16)


def test_render_then_response_equals_noisify_on_the_float_image(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main(RENDER + RESPONSE + ["-seed", "7", "-adc", "30", "-floatfile", "f.bin",
                                         "-noisefile", "n.img", "-intfile", "i.img"]) == 0
    assert noisify.main(["-floatfile", "f.bin", "-pixel", "0.1", "-detpixels", "64", "-scale", "1",
                         "-calibration", "0", "-seed", "7", "-adc", "30", "-noisefile", "m.img"] + RESPONSE) == 0
    ours, theirs = _pixels(tmp_path / "n.img"), _pixels(tmp_path / "m.img")
    assert np.array_equal(ours, theirs) and ours.max() > 30
    assert cli.main(RENDER + ["-seed", "7", "-floatfile", "g.bin", "-noisefile", "p.img"]) == 0
    assert not np.array_equal(_pixels(tmp_path / "p.img"), ours)  # without the flags: plain Poisson


def test_flags_build_the_response():
    settings = parse_args(RENDER + RESPONSE + ["-calib_seed", "77", "-seed", "3", "-adc", "12"])
    response = response_for(settings, 1e-4)
    assert response.psf == PSF("gauss", float(np.float32(150e-6)) / 1e-4)
    assert (response.calib_seed, response.seed, response.adc_offset, response.gain) == (-77, -3, 12.0, 2.0)
    assert response.calibration == 0.0 and response.readout_noise == 2.0 and response.flicker == 0.01
    assert response_for(parse_args(RENDER), 1e-4) is None
    with pytest.raises(InputError, match="-psf"):
        parse_args(RENDER + ["-psf", "airy"])


def test_python_api_on_a_rendered_image():
    image = np.zeros((32, 32), dtype=np.float32)
    image[16, 16] = 1000.0
    sharp = apply_response(image, DetectorResponse(seed=-1, calibration=0.0, adc_offset=0.0))
    blurred = apply_response(image, DetectorResponse(seed=-1, calibration=0.0, adc_offset=0.0,
                                                     psf=PSF("gauss", 2.0, radius=4)))
    assert sharp.noise_image[16, 16] > 900 and sharp.noise_image.sum() == sharp.noise_image[16, 16]
    assert blurred.noise_image[16, 16] < 300 and blurred.noise_image[16, 17] > 50
    assert blurred.photons_before_psf == sharp.noise_photons
