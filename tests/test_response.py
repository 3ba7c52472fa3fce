"""The detector-response model: PSF (NumPy and array_api_strict), noisify's shared random streams, defects."""
from __future__ import annotations

import math
import threading
import time

import array_api_strict
import numpy as np
import pytest

from arraybragg import rng
from arraybragg.errors import InputError
from arraybragg.response import DetectorResponse, PSF, apply_psf, apply_response
from arraybragg.response import psf as psf_module
from arraybragg.response import _compiled, streams
from arraybragg.response.defects import Defects


def _image(shape=(9, 13), seed=4):
    generator = np.random.default_rng(seed)
    image = generator.poisson(30.0, shape).astype(np.float32)
    image[generator.random(shape) < 0.3] = 0.0
    return image


def _c_loop(image, psf: PSF):
    """noisify's apply_psf loop transliterated one pixel at a time (float32 accumulator)."""
    height, width = image.shape
    flat = image.ravel().astype(np.float64)
    count = flat.size
    maxwidth = max(height, width)
    radius = psf_module.kernel_radius(psf, float(flat.max()), maxwidth)
    kernel = psf_module.psf_kernel(psf, radius)
    radii = [psf_module._source_radius(psf, value, maxwidth) if value > 0.0 else 0 for value in flat]
    out = np.zeros(count + 1, dtype=np.float32)
    total_lost = 0.0
    for i in range(count):
        if flat[i] <= 0.0:
            continue
        r = radii[i]
        if psf.kind == "gauss":
            total_lost += flat[i] * math.exp(-math.log(16) * (r / psf.fwhm_pixels) ** 2)
        else:
            total_lost += flat[i] * psf.g / math.sqrt(psf.g * psf.g + r * r)
        x0, y0 = i % width, i // width
        for dx in range(-radius, radius + 1):
            for dy in range(-radius, radius + 1):
                k = kernel.get((dy, dx), 0.0)
                if k == 0.0 or r < 0 or dx * dx + dy * dy > r * r:
                    continue
                x, y = x0 + dx, y0 + dy
                j = y * width + x
                if 0 <= x <= width and 0 <= y <= height and 0 <= j <= count:
                    out[j] = np.float32(float(out[j]) + flat[i] * k)
    share = total_lost / count
    return np.array([np.float32(float(v) + share) for v in out[:count]], dtype=np.float32).reshape(image.shape)


@pytest.mark.parametrize("psf", [PSF("gauss", 1.5), PSF("fiber", 0.8), PSF("gauss", 2.0, radius=3),
                                 PSF("fiber", 1.2, radius=2)], ids=["gauss-auto", "fiber-auto", "gauss-r3", "fiber-r2"])
@pytest.mark.parametrize("block", [1 << 15, 20], ids=["one-block", "row-blocks"])
def test_direct_sum_is_noisify_loop_bit_for_bit(psf, block, monkeypatch):
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", block)
    image = _image()
    assert np.array_equal(apply_psf(image, psf), _c_loop(image, psf))


@pytest.mark.parametrize("block", [1 << 15, 30], ids=["one-block", "row-blocks"])
def test_direct_sum_with_few_bright_sources_is_noisify_loop(block, monkeypatch):
    """Bright pixels reach farther than the dim ones: their rings cover a few columns only."""
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", block)
    image = np.random.default_rng(3).poisson(2.0, (24, 30)).astype(np.float32)
    image[5, 29], image[12, 3], image[20, 17] = 4e5, 2e4, 9e5  # one at the right edge: its wrap
    image[8, 8], image[15, 0] = -3.0, -1e4  # negative pixels are not sources: every offset is masked
    psf = PSF("gauss", 1.2)
    assert psf_module.kernel_radius(psf, 9e5, 30) > psf_module.kernel_radius(psf, 8.0, 30)
    assert np.array_equal(apply_psf(image, psf), _c_loop(image, psf))


@pytest.mark.parametrize("psf", [PSF("gauss", 1.2), PSF("fiber", 0.9)], ids=["gauss", "fiber"])
def test_masks_by_product_as_by_where(psf, monkeypatch):
    """Sources are masked by a product with the mask where every value is finite, by ``where``
    elsewhere: the same bits as ``where`` everywhere, with NaN, infinities, negatives and zeros about."""
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 60)
    image = np.random.default_rng(8).poisson(3.0, (30, 20)).astype(np.float32)
    image[2, 19], image[9, 4], image[20, 10] = 3e5, -7.0, 0.004
    odd = image.copy()
    odd[25, 3], odd[26, 15], odd[28, 0] = np.nan, -np.inf, np.nan
    product = [apply_psf(values, psf) for values in (image, odd)]
    masked = psf_module._masked
    monkeypatch.setattr(psf_module, "_masked", lambda xp, values, keep, finite: masked(xp, values, keep, False))
    for values, result in zip((image, odd), product):
        assert np.array_equal(result, apply_psf(values, psf), equal_nan=True)
    assert np.isfinite(product[0]).all()


def test_brightest_pixel_above_zero_without_nan():
    cases = [([np.nan, 3.0, -1.0], 3.0), ([-5.0, -1.0], 0.0), ([np.nan, -1.0], 0.0), ([np.inf, np.nan], np.inf),
             ([-0.0, 0.0], 0.0), ([2.5], 2.5)]
    for values, expected in cases:
        for xp in (np, array_api_strict):
            assert psf_module._brightest(xp, xp.asarray(np.array(values, dtype=np.float32))) == expected, values


@pytest.mark.parametrize("psf", [PSF("gauss", 1.5), PSF("fiber", 1.2, radius=2), PSF("gauss", 1.5, method="fft")])
def test_array_api_strict_matches_numpy(psf):
    image = _image((11, 7))
    strict = apply_psf(array_api_strict.asarray(image), psf)
    assert array_api_strict.isdtype(strict.dtype, array_api_strict.float32) and strict.shape == (11, 7)
    assert np.array_equal(np.asarray(strict), apply_psf(image, psf))


@pytest.mark.parametrize("psf", [PSF("gauss", 1.3), PSF("fiber", 0.8), PSF("gauss", 2.0, radius=3)])
def test_torch_direct_sum_is_numpy_bit_for_bit(psf, monkeypatch):
    """PyTorch makes a float32 tensor times a 0-d float64 one float32: the kernel values are (1, 1)
    arrays, so every term is double there too, on several threads."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 200)
    image = _image((41, 17), seed=6)
    image[3, 16] = 7e5
    assert np.array_equal(apply_psf(torch.asarray(image), psf, threads=3).numpy(), apply_psf(image, psf))


def test_gauss_kernel_centre_is_erf_squared():
    # a Gaussian of FWHM f puts erf(sqrt(ln 2) / f)^2 of its photons in the central pixel
    for fwhm in (0.7, 1.0, 3.0):
        kernel = psf_module.psf_kernel(PSF("gauss", fwhm), 2)
        assert kernel[(0, 0)] == pytest.approx(math.erf(math.sqrt(math.log(2)) / fwhm) ** 2, rel=1e-12)


def test_spread_past_right_edge_wraps_to_next_row():
    image = np.zeros((5, 6), dtype=np.float32)
    image[1, 5] = 100.0  # last column: noisify's x <= width test lets dx = +1 land on (2, 0)
    out = apply_psf(image, PSF("gauss", 1.0, radius=1))
    kernel = psf_module.psf_kernel(PSF("gauss", 1.0), 1)
    floor = float(out[4, 3])  # far away: only the evenly spread lost photons
    assert float(out[2, 0]) - floor == pytest.approx(100.0 * kernel[(0, 1)], rel=1e-6)
    assert float(out[3, 0]) == floor


def test_fft_close_to_direct_with_fixed_radius():
    image = np.zeros((40, 40), dtype=np.float32)
    image[10:30, 10:30] = _image((20, 20))
    direct = apply_psf(image, PSF("gauss", 2.0, radius=6))
    fast = apply_psf(image, PSF("gauss", 2.0, radius=6, method="fft"))
    assert np.allclose(fast, direct, rtol=1e-3, atol=1e-3 * float(direct.max()))
    assert float(fast.sum()) == pytest.approx(float(image.sum()), rel=1e-5)  # flux kept


def test_empty_image_and_bad_kind():
    assert not np.any(apply_psf(np.zeros((4, 4), np.float32), PSF("fiber", 1.0)))
    with pytest.raises(InputError, match="psf"):
        PSF("lorentz", 1.0)


class _ReferenceRan1:
    """Numerical Recipes ran1 with one static table for any number of seeds (as noisify has it)."""

    def __init__(self):
        self.iy, self.iv = 0, [0] * 32

    def __call__(self, idum: list) -> float:
        if idum[0] <= 0 or not self.iy:
            idum[0] = 1 if -idum[0] < 1 else -idum[0]
            for j in range(39, -1, -1):
                idum[0] = idum[0] * 16807 % 2147483647
                if j < 32:
                    self.iv[j] = idum[0]
            self.iy = self.iv[0]
        idum[0] = idum[0] * 16807 % 2147483647
        j = self.iy // 67108864
        self.iy, self.iv[j] = self.iv[j], idum[0]
        return min(float(np.float32(self.iy / 2147483647)), float(np.float32(1 - 1.2e-7)))


def test_shared_table_between_seeds():
    reference, shot, calib = _ReferenceRan1(), [-5], [123456789]
    shared = streams.SharedRan1(-5, 123456789)
    pattern = [streams.CALIBRATION, streams.SHOT, streams.SHOT, streams.CALIBRATION] * 50
    ours = [shared.uniform(which) for which in pattern]
    expected = [reference(calib if which else shot) for which in pattern]
    assert ours == expected
    assert ours[0] == rng.Ran1Stream(-1).uniform()  # a positive seed first: taken as 1
    assert ours[3] != rng.Ran1Stream(-1).uniforms(2)[1]  # later draws read the shared table


def test_gauss_array_continues_like_gaussdev():
    shared = streams.SharedRan1(-7, -9)
    for _ in range(5):
        shared.gauss(streams.CALIBRATION)
    stream = shared.shot_stream()
    vectorised = streams.gauss_array(stream, 101)
    one_by_one = [shared.gauss(streams.SHOT) for _ in range(101)]
    assert vectorised.tolist() == [float(np.float32(v)) for v in one_by_one]
    assert stream.uniform() == shared.uniform(streams.SHOT)


def test_noise_without_calibration_is_poisson_with_adc():
    image = np.full((20, 20), 4.0, dtype=np.float32)
    result = apply_response(image, DetectorResponse(seed=-3, calibration=0.0, fluence=None, adc_offset=10))
    counts = rng.poisson_array(image, rng.Ran1Stream(-3)).reshape(image.shape)
    assert np.array_equal(result.noise_image, (counts + 10).astype(np.uint16))
    assert (result.int_image == 14).all()


def test_defects_off_by_default_and_seeded():
    image = np.full((30, 40), 100.0, dtype=np.float32)
    plain = apply_response(image, DetectorResponse(seed=-2, fluence=None))
    defects = Defects(hot_fraction=0.05, dead_fraction=0.05)
    marked = apply_response(image, DetectorResponse(seed=-2, fluence=None, defects=defects))
    hot, dead = defects.pixel_masks(image.shape)
    assert 20 < hot.sum() < 100 and 20 < dead.sum() < 100
    assert (marked.noise_image[hot & ~dead] == 65535).all() and (marked.noise_image[dead] == 0).all()
    assert (marked.int_image[hot & ~dead] == 65535).all() and (marked.int_image[dead] == 0).all()
    clean = ~(hot | dead)
    assert np.array_equal(marked.noise_image[clean], plain.noise_image[clean])
    assert np.array_equal(Defects(hot_fraction=0.05).pixel_masks(image.shape)[0], hot)
    assert not np.array_equal(Defects(hot_fraction=0.05, hotpix_seed=-99).pixel_masks(image.shape)[0], hot)


def test_beamstop_shadow():
    image = np.full((30, 40), 100.0, dtype=np.float32)
    stop = Defects(beamstop_radius=3.0, beam_fast=20.0, beam_slow=15.0)
    result = apply_response(image, DetectorResponse(seed=-2, fluence=None, calibration=0.0, defects=stop))
    slow, fast = np.indices(image.shape)
    inside = (fast + 0.5 - 20.0) ** 2 + (slow + 0.5 - 15.0) ** 2 <= 9.0
    assert inside.sum() == 32
    assert (result.int_image[inside] == 40).all() and (result.int_image[~inside] == 140).all()
    assert (result.noise_image[inside] == 40).all() and result.noise_image[~inside].min() > 80


@pytest.mark.parametrize("engine", ["c", "numba"])
@pytest.mark.parametrize("flicker, calibration, seeds", [(0.0, 0.03, (-5, 123456789)), (0.02, 0.05, (-9, -77)),
                                                         (0.0, 0.1, (3, -4))])
@pytest.mark.parametrize("chunk", [None, 30], ids=["whole", "by-rows"])
def test_compiled_loop_equals_python_loop(flicker, calibration, seeds, engine, chunk, monkeypatch):
    if engine not in _compiled.engines():
        pytest.skip(f"the {engine} engine is not installed")
    means = np.concatenate([np.zeros(50), np.linspace(0.0, 30.0, 300), [1e3, 5e4, 2e6, 3e6, 7.5]])
    photons = np.random.default_rng(1).permutation(means).astype(np.float32)
    finished = []
    if chunk:  # rows of 5 pixels, drawn 6 rows at a time by the C engine, which reports each chunk
        monkeypatch.setattr(_compiled, "_CHUNK_PIXELS", chunk)
        counts, ints, floats, total = _compiled.noise_loop(photons.reshape(71, 5), flicker, calibration, *seeds,
                                                           engine=engine, progress=finished.append)
        assert counts.shape == (71, 5) and finished == (list(range(6, 71, 6)) + [71] if engine == "c" else [71])
        counts = counts.ravel()
    else:
        counts, ints, floats, total = _compiled.noise_loop(photons, flicker, calibration, *seeds, engine=engine)
    source = streams.SharedRan1(*seeds)
    expected = []
    for mean in photons.tolist():
        if flicker > 0.0:
            mean *= 1.0 + flicker * source.gauss(streams.SHOT)
        mean *= 1.0 + calibration * source.gauss(streams.CALIBRATION)
        expected.append(source.poisson(float(np.float32(mean))))
    assert counts.tolist() == expected and total == math.fsum(expected)
    assert ints[:2].tolist() == source.states and int(ints[2]) == source.last
    assert ints[3:].tolist() == source.table


@pytest.mark.parametrize("psf", [PSF("gauss", 1.5), PSF("gauss", 2.0, radius=3), PSF("fiber", 0.8)],
                         ids=["gauss-auto", "gauss-r3", "fiber-auto (waits for all rows)"])
def test_psf_of_rows_as_they_come_equals_whole_image(psf, monkeypatch):
    """apply_psf(ready=...) reads a row only once ready() has returned for it: rows not yet
    handed over are NaN, which would show in the result."""
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 40)
    image = _image((30, 13))
    image[4, 6] = 3e5  # a bright pixel: a wider radius than the others
    filling = np.full(image.shape, np.nan, dtype=np.float32)
    handed = []

    def ready(rows):
        filling[:rows] = image[:rows]
        handed.append(rows)

    assert np.array_equal(apply_psf(filling, psf, ready=ready), apply_psf(image, psf))
    assert handed == sorted(handed) and handed[-1] == 30 and (len(handed) > 1) == (psf.kind == "gauss")
    with pytest.raises(TypeError, match="float32"):  # a converted copy would not see the rows coming
        apply_psf(filling.astype(np.float64), psf, ready=ready)


@pytest.mark.parametrize("threads", [1, 3])
def test_noise_loop_error_reaches_the_caller(threads, monkeypatch):
    """The noise loop runs in a second thread beside the PSF's: its error is raised here, without a hang."""
    def broken(*args, **kwargs):
        raise MemoryError("no room for the counts")

    monkeypatch.setattr(streams, "noise_counts", broken)
    response = DetectorResponse(scale=1.0, seed=-3, psf=PSF("gauss", 1.5))
    with pytest.raises(MemoryError, match="no room"):
        apply_response(_image((20, 20)), response, threads=threads)


def test_psf_threads_take_rows_as_they_come(monkeypatch):
    """Three threads spreading the rows that a producer hands over one at a time (NaN before):
    the helpers start once the last row is in, and the sums are those of the whole image."""
    from arraybragg.response import model

    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 40)
    image = _image((30, 13))
    image[4, 6] = 3e5
    filling = np.full(image.shape, np.nan, dtype=np.float32)
    rows = model._FinishedRows()

    def produce():
        for row in range(image.shape[0]):
            time.sleep(0.002)
            filling[row] = image[row]
            rows.advance(row + 1)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        blurred = apply_psf(filling, PSF("gauss", 1.5), ready=rows.wait, threads=3)
    finally:
        producer.join()
    assert np.array_equal(blurred, apply_psf(image, PSF("gauss", 1.5)))


def test_psf_threads_sum_the_same_image(monkeypatch):
    """Blocks of rows summed by several threads: the same float32 sums, bit for bit."""
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 60)
    image = _image((41, 17), seed=8)
    image[3, 16], image[30, 2] = 7e5, 4e4
    psf = PSF("gauss", 1.3)
    assert np.array_equal(apply_psf(image, psf, threads=4), apply_psf(image, psf, threads=1))
    assert np.array_equal(apply_psf(image, psf, threads=1), _c_loop(image, psf))


@pytest.mark.parametrize("psf, maxwidth", [(PSF("gauss", 1.5), 30), (PSF("gauss", 60.0), 4000),
                                           (PSF("fiber", 0.8), 40), (PSF("fiber", 1e-9), 5)])
def test_radius_steps_are_the_c_radius_of_every_value(psf, maxwidth):
    """The per-source radius comes from a step function of the float32 value found once per image:
    it equals noisify's formula (libm, C int conversion) on both sides of every step and on
    values spread over the whole float32 range (NaN radius below 0.01, cap, int overflow)."""
    bounds, radii = psf_module._radius_steps(psf, maxwidth)
    assert bounds == sorted(bounds) and bounds[-1] == math.inf and radii[-1] == psf_module._INT_MIN
    below = [float(np.nextafter(np.float32(b), np.float32(0))) for b in bounds[:-1]]
    spread = np.exp(np.random.default_rng(2).uniform(-100, 88, 3000)).astype(np.float32)
    values = [v for v in bounds[:-1] + below + spread.tolist() + [1.4e-45, 3.4028234663852886e38] if v > 0]
    for value in values:
        assert radii[sum(b <= value for b in bounds)] == psf_module._source_radius(psf, value, maxwidth), value
    assert len(set(radii)) > 3


@pytest.mark.parametrize("engine", ["c", "numpy"])
def test_running_sum_adds_in_order_in_double(engine, monkeypatch):
    """noisify's running sums: one float at a time into a double, in raster order (another order, or
    NumPy's pairwise sum, rounds differently on these values)."""
    from arraybragg.response import _compiled
    if engine == "c" and _compiled._noiseloop is None:
        pytest.skip("the C extension was not built")
    if engine == "numpy":
        monkeypatch.setattr(_compiled, "_noiseloop", None)
        monkeypatch.setattr(_compiled, "_SUM_CHUNK", 1000)
    generator = np.random.default_rng(3)
    values = (generator.random((90, 70)) * 10.0 ** generator.uniform(-6, 9, (90, 70))).astype(np.float32)
    values[values < 1e-3] = 0.0
    total = 7.25
    for value in values.ravel().tolist():
        total += value
    assert _compiled.running_sum(values, 7.25) == total != float(np.sum(values, dtype=np.float64)) + 7.25
    assert _compiled.running_sum(values[:0], 2.0) == 2.0


def test_adu_casts_as_gcc_on_x86_64():
    from arraybragg.response.model import to_adu
    adu = np.array([-1.5, math.nan, 70000.0, 3e9, 12.9, 0.0])
    image16, over16 = to_adu(adu, 16)
    image32, over32 = to_adu(adu, 32)
    assert image16.tolist() == [65535, 0, 65535, 65535, 12, 0] and over16 == 2
    assert image32.tolist() == [4294967295, 0, 70000, 2147483647, 12, 0] and over32 == 1
    assert to_adu(adu, 32, noiseless=True)[0].tolist() == [4294967295, 0, 65535, 65535, 12, 0]


def test_adu_without_negatives_or_nan_as_the_general_cast():
    """Non-negative values take a shorter path (clip, then truncate): the same integers and overload
    counts as the general one, which a -1 appended forces."""
    from arraybragg.response.model import to_adu
    edges = [0.0, -0.0, 0.99, 65534.99, 65535.0, 65535.5, 65536.0, 2147483647.0, 2147483647.5, 2147483648.0,
             4294967296.0, 1e300, math.inf]
    adu = np.concatenate([edges, np.random.default_rng(4).uniform(0.0, 5e9, 2000)])
    for bits in (16, 32):
        for noiseless in (False, True):
            image, overloads = to_adu(adu, bits, noiseless)
            general, general_overloads = to_adu(np.append(adu, -1.0), bits, noiseless)
            assert image.dtype == general.dtype and np.array_equal(image, general[:-1])
            assert overloads == general_overloads > 0


@pytest.mark.parametrize("extra", [{}, {"flicker": 0.05, "bits": 32}, {"readout_noise": 2.0}],
                         ids=["calibration", "flicker-32bit", "readout"])
def test_noise_loop_beside_the_integers_gives_the_same_images(extra, monkeypatch):
    """Without a PSF, the noise image's integers are made chunk by chunk while the loop draws the next
    rows (threads > 1; readout noise waits for the loop): the same images as one after the other."""
    from arraybragg.response import model
    monkeypatch.setattr(model, "_CHUNK_PIXELS", 64)
    image = _image((37, 23)) * np.float32(2000.0)  # some pixels beyond 65535
    response = DetectorResponse(scale=1.0, seed=-9, **extra)
    one, two = (apply_response(image, response, threads=threads) for threads in (1, 2))
    for name in ("int_image", "int16_image", "noise_image"):
        assert np.array_equal(getattr(one, name), getattr(two, name)), name
    assert (one.overloads, one.noise_photons, one.photons_before_psf) == (two.overloads, two.noise_photons,
                                                                            two.photons_before_psf)
    assert one.noise_photons > 0 and (one.overloads > 0) == (response.bits == 16)


def test_noise_loop_error_reaches_the_caller_without_psf(monkeypatch):
    from arraybragg.response import streams

    def broken(*args, **kwargs):
        raise MemoryError("no room")

    monkeypatch.setattr(streams, "noise_counts", broken)
    with pytest.raises(MemoryError, match="no room"):
        apply_response(_image((20, 20)), DetectorResponse(scale=1.0, seed=-3), threads=2)


@pytest.mark.parametrize("psf", [None, PSF("gauss", 1.5)], ids=["no-psf", "psf"])
def test_an_error_beside_the_loop_stops_it_at_its_next_block(psf, monkeypatch):
    """When the thread using the loop's rows fails (or is interrupted), the loop stops within a block
    instead of drawing the rest of the image first."""
    from arraybragg.response import _compiled, model, psf as psf_module
    if not _compiled.available():
        pytest.skip("no compiled noise loop")
    monkeypatch.setattr(_compiled, "_CHUNK_PIXELS", 600)  # blocks of 2 rows
    monkeypatch.setattr(model, "_CHUNK_PIXELS", 600)
    reported = []

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    stopped, original_stop, original_advance = threading.Event(), model._FinishedRows.stop, model._FinishedRows.advance

    def stop(self):
        original_stop(self)
        stopped.set()

    def advance(self, rows):  # the loop's second block waits until the failing side has stopped it
        reported.append(rows)
        if len(reported) == 2:
            stopped.wait(timeout=10)
        original_advance(self, rows)

    monkeypatch.setattr(model._FinishedRows, "stop", stop)
    monkeypatch.setattr(model._FinishedRows, "advance", advance)
    monkeypatch.setattr(model, "_integers" if psf is None else "apply_psf", broken)
    if psf is None:  # the noiseless images are made before the loop's rows are read: only the noise image fails
        monkeypatch.setattr(model, "_noiseless_images", lambda result, response: None)
    with pytest.raises(KeyboardInterrupt):
        apply_response(_image((400, 300)) * np.float32(50.0), DetectorResponse(scale=1.0, seed=-3, psf=psf),
                       threads=2)
    assert stopped.is_set() and max(reported) <= 4  # two blocks of 2 rows at most, of 400


def test_noiseless_images_error_reaches_the_caller(monkeypatch):
    """The noiseless images are made in the noise loop's thread: an error there is raised here too."""
    from arraybragg.response import model

    def broken(result, response):
        raise OverflowError("cannot convert")

    monkeypatch.setattr(model, "_noiseless_images", broken)
    with pytest.raises(OverflowError, match="cannot convert"):
        apply_response(_image((20, 20)), DetectorResponse(scale=1.0, seed=-3, psf=PSF("gauss", 1.5)))
