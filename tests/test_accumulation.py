"""The renderer's evaluation paths agree: small-rotation increments vs direct indices, tiles and workers."""
from __future__ import annotations

import numpy as np
import pytest

from arraybragg import build_simulation, parse_args
from arraybragg.render.renderer import Renderer

# a triclinic crystal, fine phi slicing over 0.5 degrees: many h cross a half-integer within the sweep
SWEEP = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -hkl small.hkl -N 12 -lambda 1 -distance 100 "
         "-pixel 0.1 -detpixels 96 -phi 0 -osc 0.5 -phisteps 5")


def write_hkl(path, limit=12, seed=3):
    """Every h, k, l in [-limit, limit] with a pseudo-random F, so that F_cell changes at every crossing."""
    rng = np.random.default_rng(seed)
    grid = np.arange(-limit, limit + 1)
    h, k, l = (a.ravel() for a in np.meshgrid(grid, grid, grid, indexing="ij"))
    F = rng.uniform(1.0, 300.0, h.size)
    path.write_text("".join(f"{a} {b} {c} {f:.2f}\n" for a, b, c, f in zip(h, k, l, F)))


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_hkl(tmp_path / "small.hkl")
    return tmp_path


def renderer(args: str, dtype="float32", threads=1, tile_pixels=None) -> Renderer:
    return Renderer(build_simulation(parse_args(args.split())), "numpy", dtype, threads=threads,
                    tile_pixels=tile_pixels)


def render_both_ways(args: str):
    """(increment-path image, direct-path image, float64 image) of one float32 setup."""
    fast = renderer(args)
    assert fast.terms.increments is not None
    direct = renderer(args)
    direct.terms.increments = None
    return fast.render().image, direct.render().image, renderer(args, "float64").render().image


def assert_within(image, truth, rel=1e-4, floor=1e-3):
    tolerance = np.maximum(rel * np.abs(truth), floor * truth.max())
    assert truth.max() > 0
    assert np.all(np.abs(image.astype(np.float64) - truth) <= tolerance)


@pytest.mark.parametrize("extra", [
    "",
    "--c-parity",                      # phi = 0 repeats the last step's rotation: a weighted duplicate
    "--c-parity -dmin 3",              # the carry-over column falls on a later pixel; cut evaluations are 0
    "-Na 1 -nointerpolate",            # an axis without a grating still picks F_cell by its index
    "-oversample 2 -dispersion 2 -dispsteps 3",
    "-mosaic 0.05 -mosaic_domains 4 -water 50",   # a small mosaic spread keeps the increments small
])
def test_increment_path_matches_direct_indices(workdir, extra):
    fast, direct, truth = render_both_ways(f"{SWEEP} {extra}")
    assert_within(fast, truth)
    assert_within(direct, truth)
    # the two float32 paths agree far more closely than the policy's tolerance
    assert np.max(np.abs(fast - direct)) <= 2e-5 * truth.max()


def test_crossings_are_redone_by_the_direct_path(workdir):
    """With a 0.5 degree sweep, some evaluations leave their reference index: those are redone."""
    r = renderer(SWEEP)
    calls = []
    direct_sums = r.terms.direct_sums
    r.terms.direct_sums = lambda scattering, keep, column, q_bound: calls.append(scattering.shape[0]) or direct_sums(
        scattering, keep, column, q_bound)
    r.render()
    redone, total = sum(calls), 96 * 96
    assert 0 < redone < total // 2


def test_duplicate_orientations_are_weighted(workdir):
    """--c-parity with phi starting at 0: one of the five rotations repeats, so four are evaluated."""
    plan = renderer(f"{SWEEP} --c-parity").terms.increments
    assert (plan.orientations, plan.total_orientations) == (4, 5)
    assert sorted(np.asarray(plan.weights).ravel().tolist()) == [1.0, 1.0, 1.0, 2.0]
    assert renderer(SWEEP).terms.increments.weights is None


@pytest.mark.parametrize("args, dtype", [
    (SWEEP, "float64"),                                   # the polynomial sin needs reduced arguments
    (SWEEP + " -round_xtal", "float32"),                  # only the SQUARE grating has the phase form
    (SWEEP.replace("-phisteps 5", "-phisteps 1"), "float32"),
    (SWEEP + " -interpolate", "float32"),
])
def test_increment_path_only_where_it_applies(workdir, args, dtype):
    assert renderer(args, dtype).terms.increments is None


@pytest.mark.parametrize("args", [
    SWEEP + " -mosaic 3 -mosaic_domains 5",               # rotations too large: most h would cross
    SWEEP.replace("-osc 0.5", "-osc 20"),
])
def test_tiles_with_large_increments_take_the_direct_path(workdir, args):
    r = renderer(args)
    assert r.terms.increments is not None

    def refuse(*_):
        raise AssertionError("increment path used")
    r.terms.increment_sums = refuse
    assert r.render().image.max() > 0


def test_each_tile_checks_its_own_increments(workdir):
    """A close detector: tiles near the beam take the increment path, tiles at the rim do not."""
    args = SWEEP.replace("-distance 100", "-distance 5") + " -oversample 1"
    r = renderer(args, tile_pixels=512)
    tiles = []
    increment_sums = r.terms.increment_sums
    r.terms.increment_sums = lambda *a: tiles.append(a[0].shape[0]) or increment_sums(*a)
    image = r.render().image
    assert 0 < len(tiles) < (96 * 96 + 511) // 512
    assert_within(image, renderer(args, "float64").render().image)


@pytest.mark.parametrize("dtype, extra", [("float64", ""), ("float32", ""), ("float32", "-roi 10 70 5 80")])
def test_tiles_and_workers_do_not_change_the_image(workdir, dtype, extra):
    """Uneven small tiles on two worker processes give the same image, bit for bit, as one tile."""
    args = f"{SWEEP} {extra}"
    whole = renderer(args, dtype, threads=1, tile_pixels=96 * 96).render()
    split = renderer(args, dtype, threads=2, tile_pixels=1000).render()
    np.testing.assert_array_equal(whole.image, split.image)
    assert whole.stats.max_I == split.stats.max_I > 0


def test_no_more_worker_processes_than_tiles(workdir, monkeypatch):
    """--threads may be any number: the pool gets one process per tile at most (9 tiles here), and the
    image is the one of a single worker."""
    import multiprocessing.context
    sizes, pool = [], multiprocessing.context.ForkContext.Pool

    def recording_pool(self, processes=None, *args, **kwargs):
        sizes.append(processes)
        return pool(self, processes, *args, **kwargs)

    monkeypatch.setattr(multiprocessing.context.ForkContext, "Pool", recording_pool)
    one = renderer(SWEEP, "float64", threads=1, tile_pixels=1100).render()
    many = renderer(SWEEP, "float64", threads=64, tile_pixels=1100).render()
    assert sizes == [9]
    np.testing.assert_array_equal(one.image, many.image)


@pytest.mark.parametrize("extra", ["", "--c-parity -dmin 3"])
def test_increment_path_under_array_api_strict(workdir, extra):
    """The increment path uses nothing beyond the array API standard: same image as on NumPy."""
    sim = build_simulation(parse_args(f"{SWEEP} {extra}".split()))
    strict = Renderer(sim, "array_api_strict", "float32")
    assert strict.terms.increments is not None
    numpy_image = Renderer(sim, "numpy", "float32").render().image
    np.testing.assert_allclose(strict.render().image, numpy_image, rtol=1e-6, atol=1e-9 * numpy_image.max())


def test_increment_path_on_a_non_default_device(workdir):
    """The small-rotation path makes its arrays on the backend's device (array_api_strict refuses mixing)."""
    import array_api_strict

    from arraybragg.backend import get_backend

    sim = build_simulation(parse_args(SWEEP.split()))
    on_host = Renderer(sim, "numpy", "float32", threads=1)
    assert on_host.terms.increments is not None
    device = get_backend("array_api_strict", device=array_api_strict.Device("device1"))
    elsewhere = Renderer(sim, device, "float32")
    assert elsewhere.terms.increments is not None
    np.testing.assert_array_equal(elsewhere.render().image, on_host.render().image)
