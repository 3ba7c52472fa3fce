"""No host synchronisation inside a tile: a render reads device values a fixed number of times, however
many tiles it has, and runs without boolean indexing or data-dependent shapes (array_api_strict's flags).

Every way an array_api_strict array reaches the host (bool/int/float/index/complex conversion,
``__dlpack__``, ``__array__``) is counted while the same render runs as one tile and as many.
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

array_api_strict = pytest.importorskip("array_api_strict")

from arraybragg import build_simulation, parse_args  # noqa: E402
from arraybragg.backend import get_backend  # noqa: E402
from arraybragg.render.renderer import Renderer  # noqa: E402

CONVERSIONS = ("__bool__", "__int__", "__float__", "__index__", "__complex__", "__dlpack__", "__array__")
BASE = "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -distance 80 -detpixels 40 -oversample 2 "


@pytest.fixture
def conversions(monkeypatch):
    from array_api_strict._array_object import Array
    counts = collections.Counter()
    for name in CONVERSIONS:
        original = getattr(Array, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(Array, name, counted)
    return counts


def render_counted(flags: str, tile_pixels: int, counts, dtype="float64"):
    sim = build_simulation(parse_args(flags.split()))
    backend = get_backend("array_api_strict", device=array_api_strict.Device("device1"))
    renderer = Renderer(sim, backend, dtype, tile_pixels=tile_pixels)
    counts.clear()
    with array_api_strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False):
        result = renderer.render()
    return dict(counts), result


@pytest.mark.parametrize("flags", [
    BASE,
    BASE + "-phi 0 -osc 1 -phisteps 3 -mosaic 0.5 -mosaic_dom 4",
    BASE + "-hdivrange 0.3 -hdivsteps 3 -dispersion 2 -dispsteps 3",
    BASE + "-detector_abs 300 -detector_thick 200 -thicksteps 3 -twotheta 10",
    BASE + "-dmin 3 -round_xtal",
    BASE + "-phisteps 2 -osc 1 -oversample_omega -oversample_thick -detector_thick 100 --c-parity",
    BASE + "-gauss_xtal -curved_det -water 50",
])
def test_a_render_reads_the_device_a_fixed_number_of_times(flags, conversions):
    one_counts, one = render_counted(flags, 10 ** 9, conversions)
    many_counts, many = render_counted(flags, 37, conversions)
    assert many_counts == one_counts                     # nothing per tile
    assert sum(one_counts.values()) <= 2                 # the image once, the solid-angle sum once
    assert one.image.max() > 0
    np.testing.assert_array_equal(many.image, one.image)


def test_the_float32_small_rotation_path_reads_one_count_per_tile(conversions):
    """Its evaluations that leave the reference's nearest index are redone directly: how many is the
    one number a tile reads (it sizes the slice they are gathered into)."""
    flags = BASE + "-phi 0 -osc 0.5 -phisteps 8"
    one_counts, one = render_counted(flags, 10 ** 9, conversions, "float32")
    many_counts, many = render_counted(flags, 400, conversions, "float32")
    tiles = -(-40 * 40 // 400)
    assert sum(many_counts.values()) - sum(one_counts.values()) == tiles - 1
    np.testing.assert_allclose(many.image, one.image, rtol=1e-6)


def test_gpu_tiles_are_sized_from_the_devices_free_memory():
    from arraybragg.backend import tile_elements_for
    assert tile_elements_for(130 << 30) == 1 << 26          # an H200's free memory: the cap
    assert tile_elements_for(8 << 30) == 1 << 22              # 8 GiB free: 2 GiB of scratch
    assert tile_elements_for(100 << 20) == 1 << 18            # almost nothing free: the floor
