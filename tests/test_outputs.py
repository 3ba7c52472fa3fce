"""Image files (arraybragg.outputs.images): conversions as the C does them, checked on the corpus."""
import math
import os
import stat

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, Case

from arraybragg.io import cformat, files
from arraybragg.outputs import images as outputs

needs_corpus = pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
FULL = (0, 127, 0, 127)


def case(name):
    return Case(REFERENCE / "cases" / name)


def smv_pixels(raw: bytes, shape) -> np.ndarray:
    return np.frombuffer(raw[512:], dtype="<u2").reshape(shape)


# --- against the corpus -----------------------------------------------------------------

@needs_corpus
@pytest.mark.parametrize("name, scale, adc", [("out_scale_adc", 100.0, 10.0), ("geo_mosflm_default", None, 40.0)])
def test_int_image_matches_corpus(name, scale, adc):
    c = case(name)
    image = c.float_image()
    if scale is None:
        scale = outputs.auto_int_scale(float(image.max()))
        assert f"{scale:g}" == "565.375"
    ours = outputs.int_image(image, scale, adc, FULL)
    assert ours.dtype == np.uint16
    assert np.array_equal(ours, smv_pixels(c.read_bytes("int.img.gz"), c.shape))  # 16384 of 16384


@needs_corpus
def test_int_image_roi_matches_corpus():
    c = case("samp_roi")  # -roi 20 90 30 100
    image = c.float_image()
    roi = (20, 90, 30, 100)
    scale = outputs.auto_int_scale(float(image[30:101, 20:91].max()))
    ours = outputs.int_image(image, scale, 40.0, roi)
    assert np.array_equal(ours, smv_pixels(c.read_bytes("int.img.gz"), c.shape))
    assert not ours[:30].any() and not ours[:, 91:].any()


@needs_corpus
def test_pgm_matches_corpus():
    c = case("out_pgm")  # -pgmscale 2
    assert outputs.pgm_bytes(c.float_image(), 2.0, FULL) == c.read_bytes("image.pgm.gz")


@needs_corpus
def test_noise_image_matches_corpus():
    c = case("out_noise_seed")  # -seed 1234, default -adc 40
    noise, photons, overloads = outputs.noise_image(c.float_image(), -1234, 40.0, FULL)
    reference = smv_pixels(c.read_bytes("noise.img.gz"), c.shape)
    assert noise.dtype == np.uint16
    assert np.count_nonzero(noise == reference) == reference.size  # all 16384 pixels
    assert (photons, overloads) == (36620.0, 0)  # "36620 photons on noise image (0 overloads)"


# --- C conversions of odd values ----------------------------------------------------------

def test_int_image_rounding_clipping_and_roi():
    # 0.49999997 + 0.5 rounds to 1.0 in float before floorf: the C gives 1, not 0
    image = np.array([[0.2, 0.5, 1.5, 0.49999997],
                      [-3.0, 70000.0, np.nan, 65535.4]], dtype=np.float32)
    assert outputs.int_image(image, 1.0, 0.0, (0, 3, 0, 1)).tolist() == [[0, 1, 2, 1], [0, 65535, 0, 65535]]
    # only the ROI is written; the ROI may stick out of the image
    assert outputs.int_image(image, 2.0, 10.0, (2, 9, -5, 0)).tolist() == [[0, 0, 13, 11], [0, 0, 0, 0]]
    assert outputs.int_image(image, 1.0, 0.0, (3, 2, 0, 1)).sum() == 0


def test_pgm_truncates_and_wraps_like_the_c_cast():
    image = np.array([[1.9, 300.0, -1.5, -10.0, np.nan, 0.0]], dtype=np.float32)
    data = outputs.pgm_bytes(image, 1.0, (0, 5, 0, 0))
    header = b"P5\n6 1\n# pixels scaled by 1\n255\n"
    assert data == header + bytes([1, 255, 255, 246, 0, 0])
    assert outputs.pgm_bytes(image, 0.25, (0, 0, 0, 0)).startswith(b"P5\n6 1\n# pixels scaled by 0.25\n255\n")


def test_noise_offset_overloads_and_negative_wrap():
    image = np.array([[0.0, 0.0, 1e7, 0.0]], dtype=np.float32)
    noise, photons, overloads = outputs.noise_image(image, -7, -10.0, (0, 2, 0, 0))
    assert noise[0, 0] == 65526 and noise[0, 1] == 65526  # 0 photons - 10 wraps as the C cast does
    assert noise[0, 2] == 65535 and overloads == 1
    assert noise[0, 3] == 0  # outside the ROI
    assert 0.99e7 < photons < 1.01e7


def test_auto_scales():
    assert outputs.auto_int_scale(110.0) == 500.0
    assert outputs.auto_int_scale(0.0) == 1.0
    assert outputs.auto_pgm_scale(3.0, 10.0) == 5.0
    assert outputs.auto_pgm_scale(3.0, 0.0) == 3.0


def test_c_helpers():
    assert [cformat.c_double_to_int(v) for v in (2.9, -2.9, float("nan"), 3e9, -3e9)] == \
        [2, -2, -2147483648, -2147483648, -2147483648]
    assert cformat.c_format_g(0.0001234567) == "0.000123457"
    assert cformat.c_format_g(-0.0) == "-0"
    assert cformat.c_format_g(float("inf")) == "inf"
    assert cformat.c_format_g(-float("nan")) == "-nan"
    assert cformat.c_format_g(float("nan")) == "nan"
    # a C float: rounded as NumPy's float32 cast rounds (up to the largest float32, just below half an ulp
    # beyond it); from the tie on, an infinity of the value's sign, with no exception or warning
    values = [46e-6, 0.1, -1e-46, 3.4028234663852886e38, 3.40282356e38]
    assert [cformat.c_float(v) for v in values] == [float(np.float32(v)) for v in values]
    assert cformat.c_float(3.40282356e38) == 3.4028234663852886e38
    assert [cformat.c_float(v) for v in (3.4028235677973366e38, 1e300, -3.5e38)] == [math.inf, math.inf, -math.inf]


# --- files ----------------------------------------------------------------------------------

def test_write_float_image(tmp_path):
    image = np.arange(12, dtype=np.float64).reshape(3, 4) / 7
    path = tmp_path / "float.bin"
    outputs.write_float_image(path, image)
    back = np.fromfile(path, dtype=np.float32).reshape(3, 4)
    assert np.array_equal(back, image.astype(np.float32))


def test_atomic_write_replaces_and_leaves_nothing_on_error(tmp_path):
    path = tmp_path / "out.img"
    files.atomic_write(path, b"first", b" second")
    assert path.read_bytes() == b"first second"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    with pytest.raises(TypeError):
        files.atomic_write(path, b"partial", object())
    assert path.read_bytes() == b"first second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.img"]
    with pytest.raises(OSError):
        files.atomic_write(tmp_path / "missing" / "x.img", b"data")


def test_staged_outputs_commit_together_and_name_the_path_that_failed(tmp_path):
    (tmp_path / "old.img").write_bytes(b"old")
    with files.StagedOutputs() as staged:
        for name in ("old.img", "new.img", "third.img"):
            with open(staged.stage(tmp_path / name), "wb") as stream:
                stream.write(name.encode())
        assert (tmp_path / "old.img").read_bytes() == b"old"  # nothing replaced before the end
    assert [(tmp_path / n).read_bytes() for n in ("old.img", "new.img", "third.img")] == [b"old.img", b"new.img",
                                                                                        b"third.img"]
    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError) as failed:
        with files.StagedOutputs() as staged:
            for name in ("taken", "other.img"):
                open(staged.stage(tmp_path / name), "wb").close()
    assert failed.value.filename == str(tmp_path / "taken")
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_write_pgm(tmp_path):
    image = np.full((2, 3), 10.0, dtype=np.float32)
    outputs.write_pgm(tmp_path / "a.pgm", image, 2.0, (0, 1, 0, 1))
    assert (tmp_path / "a.pgm").read_bytes() == b"P5\n3 2\n# pixels scaled by 2\n255\n" + bytes([20, 20, 0, 20, 20, 0])


def test_row_blocks_do_not_change_results(monkeypatch):
    image = (np.random.default_rng(5).random((40, 50)) * 30).astype(np.float32)
    odd = image.copy()
    odd[3, 7], odd[20, 4], odd[30, 40] = np.nan, -5.0, 1e9
    roi = (3, 45, 2, 38)

    def render():
        return (outputs.noise_image(image, -99, 40.0, roi), outputs.int_image(odd, 300.0, 5.0, roi),
                outputs.pgm_bytes(odd, 9.0, roi))

    (noise, photons, overloads), ints, pgm = render()
    monkeypatch.setattr(outputs, "_CHUNK_PIXELS", 7)  # one ROI row per block: the noise stream is shared
    (noise_rows, photons_rows, overloads_rows), ints_rows, pgm_rows = render()
    assert np.array_equal(noise, noise_rows) and (photons, overloads) == (photons_rows, overloads_rows)
    assert np.array_equal(ints, ints_rows) and pgm == pgm_rows
    assert ints[3, 7] == 0 and ints[30, 40] == 65535 and noise[:2].sum() == 0
