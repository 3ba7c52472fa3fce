"""The default mode without nanoBragg's running-sum -oversample_* products and its global tricubic
switch-off (--c-parity keeps both): analytic invariances, order independence, the warning."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, corpus_cases, link_inputs, write_smooth_hkl

from arraybragg import build_simulation, parse_args
from arraybragg.render.renderer import Renderer

TRICLINIC = ("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 48 "
             "-misset 10 20 30 -twotheta 12 -hdivrange 0.2 -hdivsteps 2 -oversample 2")


def render(args: str, threads=1, tile_pixels=None, dtype="float64"):
    renderer = Renderer(build_simulation(parse_args(args.split())), "numpy", dtype, threads=threads,
                        tile_pixels=tile_pixels)
    return renderer.render()


@pytest.mark.parametrize("switches", ["-oversample_omega", "-oversample_polar", "-oversample_omega -oversample_polar",
                                      "-detector_thick 100 -detector_abs 300 -thicksteps 3 -oversample_thick"])
def test_repeating_an_orientation_leaves_the_image_unchanged(switches):
    """Three phi steps of one orientation (-osc 0) are one step counted three times, and nanoBragg divides
    by the step count: each contribution weighted once gives the same image.  The C's running products
    multiply earlier contributions again at every later step, and the image changes."""
    one = render(f"{TRICLINIC} {switches} -phisteps 1").image
    three = render(f"{TRICLINIC} {switches} -phisteps 3 -osc 0").image
    assert one.max() > 0
    np.testing.assert_allclose(three, one, rtol=2e-6, atol=1e-9 * one.max())
    c_three = render(f"{TRICLINIC} {switches} -phisteps 3 -osc 0 --c-parity").image
    assert not np.allclose(c_three, one, rtol=1e-3)


def test_oversample_factors_are_the_per_subpixel_values():
    """-oversample_omega weighs each subpixel by its own solid angle: a pixel split 2x2 equals the sum of
    the four pixels of a detector with half the pixel size (same corner) rendered without oversampling."""
    base = ("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -nopolar -oversample_omega "
            "-misset 3 7 11 -distance 100")
    # MOSFLM puts the beam half a pixel from the given centre: the same corner for both pixel sizes
    coarse = render(f"{base} -Xbeam 2.5 -Ybeam 2.5 -pixel 0.2 -detpixels 24 -oversample 2").image
    fine = render(f"{base} -Xbeam 2.55 -Ybeam 2.55 -pixel 0.1 -detpixels 48 -oversample 1").image
    binned = fine.reshape(24, 2, 24, 2).sum(axis=(1, 3), dtype=np.float64)
    np.testing.assert_allclose(coarse, binned, rtol=1e-5, atol=1e-9 * coarse.max())


TRICUBIC = ("-cell 100 100 100 90 90 90 -hkl small.hkl -default_F 3 -interpolate -N 5 -lambda 1 -distance 80 "
            "-pixel 0.1 -detpixels 64 -misset 5 10 15 -phi 0.5 -osc 1 -phisteps 2")


@pytest.fixture
def smooth_grid(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_smooth_hkl(tmp_path / "small.hkl", span=6)
    return tmp_path


@pytest.mark.parametrize("mode", ["", "--c-parity"])
def test_tricubic_on_a_grid_thinner_than_a_neighbourhood_takes_the_nearest_F(tmp_path, monkeypatch, mode):
    """h in 0..1 only (3 planes with nanoBragg's padding): no 4x4x4 neighbourhood fits, so every evaluation
    takes the nearest F, as without -interpolate (this render raised IndexError before)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "thin.hkl").write_text("0 0 0 10\n1 0 0 20\n0 1 0 30\n0 0 5 40\n1 2 3 50\n")
    args = "-cell 100 100 100 90 90 90 -hkl thin.hkl -N 5 -lambda 1 -distance 100 -detpixels 64 -misset 5 10 15"
    tricubic = render(f"{args} -interpolate {mode}")
    nearest = render(f"{args} -nointerpolate {mode}").image
    assert nearest.max() > 0
    np.testing.assert_array_equal(tricubic.image, nearest)
    assert any("out of range for three point interpolation" in line for line in tricubic.log)


def test_tricubic_fallback_is_per_evaluation_and_order_free(smooth_grid):
    """Tiles of any size, in any order, on any number of workers: identical images and one warning, the
    first out-of-range evaluation in raster order."""
    reference = render(TRICUBIC, threads=1, tile_pixels=64 * 64)
    assert len(reference.log) == 2 and reference.log[0].startswith("WARNING: out of range")
    for threads, tile in ((1, 1), (1, 37), (2, 5), (2, 211)):
        result = render(TRICUBIC, threads=threads, tile_pixels=tile)
        assert np.array_equal(result.image, reference.image), (threads, tile)
        assert result.log == reference.log


def test_tricubic_interpolates_after_the_first_miss(smooth_grid):
    """The C switches interpolation off for the rest of the render at the first miss; the default mode keeps
    it on: pixels late in the raster differ from --c-parity's nearest-neighbour values."""
    default = render(TRICUBIC).image
    c_parity = render(TRICUBIC + " --c-parity").image
    first_row_with_change = int(np.argmax(np.any(default != c_parity, axis=1)))
    assert np.any(default != c_parity)
    # before the C's switch-off point the two modes agree exactly
    assert np.array_equal(default[:first_row_with_change], c_parity[:first_row_with_change])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_tricubic_of_a_cubic_grid_is_exact(tmp_path, monkeypatch, dtype):
    """Where F is a cubic polynomial of h, k, l the tricubic render equals the render of its exact values:
    a grid 4x denser in each index (F at h/4 ...) looked up without interpolation, cell 4x larger."""
    monkeypatch.chdir(tmp_path)
    poly = lambda h, k, l: 50.0 + 2.0 * h - 1.5 * k + 0.5 * l + 0.05 * h * k * l + 0.02 * h ** 3
    span = 12
    with open("cubic.hkl", "w") as fh:
        for h in range(-span, span + 1):
            for k in range(-span, span + 1):
                for l in range(-span, span + 1):
                    fh.write("%d %d %d %.12g\n" % (h, k, l, poly(h, k, l)))
    args = ("-cell 60 60 60 90 90 90 -hkl cubic.hkl -interpolate -N 3 -lambda 1 -distance 200 -pixel 0.2 "
            "-detpixels 32 -misset 4 9 2 -phi 0 -osc 2 -phisteps 3")
    result = render(args, dtype=dtype)
    assert not result.log  # every neighbourhood inside the grid
    walker_values = _walked_values(args, [(3, 5), (16, 16), (30, 2)])
    for (slow, fast), value in walker_values.items():
        assert result.image[slow, fast] == pytest.approx(value, rel=1e-6 if dtype == "float64" else 1e-4)


def _walked_values(args, pixels):
    """Pixel values from the scalar trace walker (per evaluation, no grouping of orientations)."""
    from arraybragg.render.trace import walker_at

    sim = build_simulation(parse_args(args.split()))
    return {(s, f): walker_at(sim, f, s).walk(f, s).pixel_value for s, f in pixels}


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
def test_corpus_fallback_warning_matches_the_c(tmp_path, monkeypatch):
    case = [c for c in corpus_cases() if c.id == "sf_interp_fallback"]
    if not case:
        pytest.skip("corpus case sf_interp_fallback not present")
    link_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    expected = [line.strip() for line in (case[0].dir / "c_stdout.txt").read_text().splitlines()
                if line.startswith("WARNING: out of range")]
    result = render(" ".join(case[0].args), threads=2, tile_pixels=97)
    assert [result.log[0].strip()] == expected


def test_c_parity_tricubic_without_a_miss_runs_on_workers_and_equals_the_default(tmp_path, monkeypatch):
    """--c-parity renders tricubic like the default mode first; with no out-of-range neighbourhood the
    C's switch never fires, so the images are equal, whatever the tiles and workers."""
    monkeypatch.chdir(tmp_path)
    write_smooth_hkl(tmp_path / "small.hkl", span=12)
    args = TRICUBIC.replace("-distance 80", "-distance 300").replace("-detpixels 64", "-detpixels 32")
    default = render(args, threads=2, tile_pixels=7)
    assert not default.log
    for threads, tile in ((1, 32 * 32), (2, 7)):
        c_parity = render(args + " --c-parity", threads=threads, tile_pixels=tile)
        assert np.array_equal(c_parity.image, default.image) and not c_parity.log
