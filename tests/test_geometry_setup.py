"""Settings -> models (arraybragg.models.nanobragg.build_simulation): geometry, conventions, automatic sampling."""
from __future__ import annotations

import math

import numpy as np
import pytest

from arraybragg import build_simulation, parse_args
from arraybragg.render.renderer import render
from arraybragg.errors import InputError
from arraybragg.models.vectors import rotate_xyz

CUBE = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 64"
R_E_SQR = 7.94079248018965e-30


def build(tmp_path, line: str, *extra: str):
    """Models for a command line; Fdump.bin is looked for (and written) in tmp_path only."""
    return build_simulation(parse_args(line.split() + list(extra)), workdir=str(tmp_path))


def pixel_centre(detector, slow: int, fast: int) -> np.ndarray:
    """Lab position (m) of a pixel centre on a flat detector."""
    p = detector.pixel_size
    return detector.pix0 + (fast + 0.5) * p * detector.fdet + (slow + 0.5) * p * detector.sdet


def beam_spot(detector) -> tuple[float, float]:
    """(fast, slow) detector coordinates (m) where the direct beam really meets the detector plane."""
    b, o = detector.beam_vector, detector.odet
    along = float(detector.pix0 @ o) / float(b @ o)
    offset = along * b - detector.pix0
    return float(offset @ detector.fdet), float(offset @ detector.sdet)


# --- Bragg's law ------------------------------------------------------------------------------

def test_pixel_at_the_bragg_angle_has_integer_h(tmp_path):
    """(1,0,0) of a 100 A cubic cell: a pixel centred where 2 d sin(theta) = lambda has h = 1.

    XDS geometry (beam along +z onto a detector at z = 100 mm); the crystal is turned by theta
    about y (-misset) so that a* lies on the Ewald sphere, and ORGX puts pixel (32, 40) on the
    diffracted ray at 2 theta.
    """
    wavelength, spacing, distance, pixel = 1.0, 100.0, 0.1, 1e-4
    theta = math.asin(wavelength / (2 * spacing))
    x_target = distance * math.tan(2 * theta)
    slow, fast = 32, 40
    orgx = fast + 1 - x_target / pixel
    sim = build(tmp_path, f"-cell {spacing} {spacing} {spacing} 90 90 90 -default_F 1 -N 5 -lambda {wavelength}"
                          f" -distance 100 -pixel 0.1 -detpixels 64 -xds -ORGX {orgx!r} -ORGY {slow + 1}"
                          f" -misset 0 {math.degrees(theta)!r} 0")
    position = pixel_centre(sim.detector, slow, fast)
    np.testing.assert_allclose(position, [x_target, 0.0, distance], atol=1e-15)
    diffracted = position / np.linalg.norm(position)
    q = (diffracted - sim.detector.beam_vector) / sim.beam.lambda0         # 1/m
    h, k, l = (float(q @ v) for v in (sim.crystal.a, sim.crystal.b, sim.crystal.c))
    assert abs(h - 1.0) < 1e-9 and abs(k) < 1e-9 and abs(l) < 1e-9, (h, k, l)
    assert np.linalg.norm(q) == pytest.approx(1.0 / (spacing * 1e-10), rel=1e-12)


# --- beam centre, solid angle -----------------------------------------------------------------

def test_mosflm_beam_centre_mapping_at_geo_001(tmp_path):
    sim = build(tmp_path, "-cell 100 100 100 90 90 90 -default_F 1 -mosflm -pixel 0.1 -distance 100"
                          " -Xbeam 51.2 -Ybeam 51.2 -detpixels 1024")
    d = sim.detector
    assert d.pivot == "BEAM"
    np.testing.assert_array_equal(d.fdet, [0, 0, 1])
    np.testing.assert_array_equal(d.sdet, [0, -1, 0])
    np.testing.assert_array_equal(d.odet, [1, 0, 0])
    assert d.Fbeam == pytest.approx(0.05125, abs=1e-12) and d.Sbeam == pytest.approx(0.05125, abs=1e-12)
    np.testing.assert_allclose(d.pix0, [0.1, 0.05125, -0.05125], rtol=0, atol=1e-9)


def test_mosflm_default_beam_centre_is_detector_middle_plus_half_pixel(tmp_path):
    d = build(tmp_path, CUBE).detector
    assert (d.Xbeam, d.Ybeam) == pytest.approx(((6.4e-3 + 1e-4) / 2,) * 2, abs=1e-15)
    assert (d.Fbeam, d.Sbeam) == pytest.approx((3.3e-3, 3.3e-3), abs=1e-15)
    assert beam_spot(d) == pytest.approx((3.3e-3, 3.3e-3), abs=1e-15)


def _one_pixel(tmp_path, slow, fast, *extra):
    sim = build(tmp_path, CUBE, "-oversample", "1", "-roi", str(fast), str(fast), str(slow), str(slow), *extra)
    return sim, render(sim)


def test_solid_angle_of_the_direct_beam_pixel(tmp_path):
    """Pixel (32, 32) is centred on the beam: omega = pixel^2 / distance^2 and
    I = r_e^2 fluence F^2 (Na Nb Nc)^2 omega (polarization 1 at 2theta = 0, one step)."""
    sim, result = _one_pixel(tmp_path, 32, 32, "-Xbeam", "3.2", "-Ybeam", "3.2")
    d = sim.detector
    np.testing.assert_allclose(pixel_centre(d, 32, 32), [0.1, 0, 0], atol=1e-15)
    omega = d.pixel_size ** 2 / d.distance ** 2
    assert result.stats.omega_sum == pytest.approx(omega, rel=1e-12)
    expected = R_E_SQR * sim.beam.fluence * 100.0 ** 2 * (5 ** 3) ** 2 * omega
    assert result.image[32, 32] == pytest.approx(expected, rel=1e-6)
    assert result.stats.pixels == 1 and np.count_nonzero(result.image) == 1


@pytest.mark.parametrize("point_pixel", [False, True])
def test_solid_angle_off_centre(tmp_path, point_pixel):
    slow, fast = 5, 57
    extra = ["-point_pixel"] if point_pixel else []
    sim, result = _one_pixel(tmp_path, slow, fast, *extra)
    d = sim.detector
    R = float(np.linalg.norm(pixel_centre(d, slow, fast)))
    expected = 1.0 / R ** 2 if point_pixel else d.pixel_size ** 2 / R ** 2 * d.close_distance / R
    assert d.point_pixel is point_pixel
    assert result.stats.omega_sum == pytest.approx(expected, rel=1e-12)


# --- conventions --------------------------------------------------------------------------------

@pytest.mark.parametrize("flag, fdet, sdet, odet, beam, spindle, polar, pivot", [
    ("-mosflm", (0, 0, 1), (0, -1, 0), (1, 0, 0), (1, 0, 0), (0, 0, 1), (0, 0, 1), "BEAM"),
    ("-denzo", (0, 0, 1), (0, -1, 0), (1, 0, 0), (1, 0, 0), (0, 0, 1), (0, 0, 1), "BEAM"),
    ("-adxv", (1, 0, 0), (0, -1, 0), (0, 0, 1), (0, 0, 1), (1, 0, 0), (1, 0, 0), "BEAM"),
    ("-xds", (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (1, 0, 0), (1, 0, 0), "SAMPLE"),
    ("-dials", (1, 0, 0), (0, 1, 0), (0, 0, 1), (0, 0, 1), (0, 1, 0), (0, 1, 0), "SAMPLE"),
])
def test_convention_vectors(tmp_path, flag, fdet, sdet, odet, beam, spindle, polar, pivot):
    sim = build(tmp_path, CUBE, flag)
    d = sim.detector
    for got, want in ((d.fdet, fdet), (d.sdet, sdet), (d.odet, odet), (d.beam_vector, beam),
                      (sim.goniometer.spindle, spindle), (sim.beam.polar_vector, polar)):
        np.testing.assert_array_equal(got, want)
    assert d.pivot == pivot and d.convention == flag[1:].upper()
    np.testing.assert_allclose(sim.beam.directions, [np.negative(beam)])  # sample -> source
    assert d.close_distance == pytest.approx(0.1) and d.distance == pytest.approx(0.1)


@pytest.mark.parametrize("line, fbeam, sbeam, fclose, sclose, dials", [
    # values nanoBragg printed for these command lines (corpus cases geo_adxv, geo_denzo, geo_dials, geo_xds_org)
    ("-adxv -Xbeam 6 -Ybeam 7", 0.006, 0.0058, 0.006, 0.0058, (100, 5.8, 6)),
    ("-denzo -Xbeam 6.1 -Ybeam 6.7", 0.0067, 0.0061, 0.0067, 0.0061, (-6.7, 6.1, -100)),
    ("-dials -Xbeam 6.4 -Ybeam 5.9", 0.0064, 0.0064, 0.0064, 0.0064, (100, -6.4, 6.4)),  # SAMPLE: beam ignored
    ("-xds -ORGX 70.5 -ORGY 50.25", 0.007, 0.004975, 0.007, 0.004975, (100, -4.975, 7)),
])
def test_convention_beam_centres(tmp_path, line, fbeam, sbeam, fclose, sclose, dials):
    d = build(tmp_path, CUBE.replace("-detpixels 64", "-detpixels 128"), *line.split()).detector
    assert (d.Fbeam, d.Sbeam, d.Fclose, d.Sclose) == pytest.approx((fbeam, sbeam, fclose, sclose), abs=1e-12)
    np.testing.assert_allclose(d.dials_origin_mm, dials, atol=1e-9)
    assert beam_spot(d) == pytest.approx((fbeam, sbeam), abs=1e-12)


def test_xds_orgx_round_trips(tmp_path):
    d = build(tmp_path, CUBE, "-xds", "-ORGX", "40.5", "-ORGY", "20.25").detector
    assert (d.ORGX, d.ORGY) == pytest.approx((40.5, 20.25), abs=1e-9)
    assert d.Fclose == pytest.approx(40.0e-4, abs=1e-15) and d.Sclose == pytest.approx(19.75e-4, abs=1e-15)


def test_custom_vectors_are_normalised_and_odet_regenerated(tmp_path):
    sim = build(tmp_path, CUBE, "-fdet_vector", "0", "0", "2", "-sdet_vector", "0", "-3", "0",
                "-odet_vector", "2", "0", "0", "-beam_vector", "5", "0", "0", "-Xbeam", "3", "-Ybeam", "4")
    d = sim.detector
    assert d.convention == "CUSTOM" and d.pivot == "BEAM"
    np.testing.assert_array_equal(d.fdet, [0, 0, 1])
    np.testing.assert_array_equal(d.sdet, [0, -1, 0])
    np.testing.assert_array_equal(d.odet, [1, 0, 0])  # |odet| != 1 -> fdet x sdet
    np.testing.assert_array_equal(d.beam_vector, [1, 0, 0])
    assert (d.Fbeam, d.Sbeam) == pytest.approx((0.003, 0.004), abs=1e-15)  # CUSTOM: no half-pixel shift
    np.testing.assert_allclose(d.pix0, [0.1, 0.004, -0.003], atol=1e-15)


def test_custom_tilted_vectors_keep_their_directions(tmp_path):
    fdet, sdet, odet = (0.999982, -0.005998, -0.000118), (-0.005998, -0.999970, -0.004913), (-0.000088, 0.004914, -0.999988)
    args = []
    for name, v in (("-fdet_vector", fdet), ("-sdet_vector", sdet), ("-odet_vector", odet)):
        args += [name, *map(str, v)]
    d = build(tmp_path, CUBE, *args, "-beam_vector", "0", "0", "-1").detector
    for got, want in ((d.fdet, fdet), (d.sdet, sdet)):
        np.testing.assert_allclose(got, np.array(want) / np.linalg.norm(want), rtol=1e-15)
    np.testing.assert_allclose(d.odet, np.cross(d.fdet, d.sdet) / np.linalg.norm(np.cross(d.fdet, d.sdet)),
                               rtol=1e-12)  # given odet is not exactly unit -> regenerated like the C


# --- pivots and rotations ----------------------------------------------------------------------

def test_beam_pivot_keeps_the_beam_spot_under_twotheta(tmp_path):
    sim = build(tmp_path, CUBE, "-Xbeam", "5.3", "-Ybeam", "2.1", "-twotheta", "10")
    d = sim.detector
    assert d.pivot == "BEAM"
    t = math.radians(10)
    np.testing.assert_allclose(d.odet, [math.cos(t), -math.sin(t), 0.0], atol=1e-15)  # about (0, 0, -1)
    assert beam_spot(d) == pytest.approx((2.1e-3 + 0.5e-4, 5.3e-3 + 0.5e-4), abs=1e-13)
    spot = d.pix0 + beam_spot(d)[0] * d.fdet + beam_spot(d)[1] * d.sdet
    np.testing.assert_allclose(spot, [0.1, 0, 0], atol=1e-15)  # still 100 mm down the beam
    assert d.twotheta == pytest.approx(t)


def test_sample_pivot_keeps_the_close_point_under_twotheta(tmp_path):
    sim = build(tmp_path, CUBE, "-xds", "-ORGX", "30.5", "-ORGY", "20.5", "-twotheta", "10")
    d = sim.detector
    assert d.pivot == "SAMPLE"
    t = math.radians(10)
    np.testing.assert_allclose(d.odet, [0.0, -math.sin(t), math.cos(t)], atol=1e-15)  # about (1, 0, 0)
    assert -float(d.pix0 @ d.fdet) == pytest.approx(30e-4, abs=1e-15)
    assert -float(d.pix0 @ d.sdet) == pytest.approx(20e-4, abs=1e-15)
    assert float(d.pix0 @ d.odet) == pytest.approx(0.1, abs=1e-15)
    # the beam spot moves by close_distance tan(2theta) along the slow axis
    assert beam_spot(d) == pytest.approx((30e-4, 20e-4 + 0.1 * math.tan(t)), abs=1e-13)


def test_pivot_reported_values_match_nanobragg(tmp_path):
    """geo_rot_twotheta_beam: the derived values nanoBragg printed (6 significant digits)."""
    d = build(tmp_path, CUBE.replace("-detpixels 64", "-detpixels 128"), *(
        "-detector_rotx 5 -detector_roty 3 -detector_rotz 2 -twotheta 10".split())).detector
    got = (d.distance, d.Fbeam, d.Sbeam, d.Fclose, d.Sclose, *d.dials_origin_mm, *d.odet)
    printed = "0.0990872 0.00646394 0.00663068 0.00255003 0.020816 -5.90066 7.01629 -100.674 0.988911 -0.138982 -0.052336"
    assert " ".join("%g" % v for v in got) == printed


@pytest.mark.parametrize("rot", [(0.0, 10.0, 0.0), (3.0, -4.0, 1.0)])
def test_close_distance_sets_distance_through_the_r_factor(tmp_path, rot):
    sim = build(tmp_path, CUBE, "-close_distance", "90", "-detector_rotx", str(rot[0]),
                "-detector_roty", str(rot[1]), "-detector_rotz", str(rot[2]))
    d = sim.detector
    ratio = float(rotate_xyz([1.0, 0.0, 0.0], *np.radians(rot))[0])  # beam . rotated normal (MOSFLM)
    assert d.close_distance == pytest.approx(0.09, rel=1e-14)
    assert d.distance == pytest.approx(0.09 / ratio, rel=1e-14)
    assert beam_spot(d) == pytest.approx((d.Fbeam, d.Sbeam), abs=1e-14)  # no twotheta: beam pivot exact


def test_pix0_vector_mm_honoured_by_default_and_ignored_with_c_parity(tmp_path):
    line = CUBE.replace("-detpixels 64", "-detpixels 128") + " -pix0_vector_mm 100 5.8 -6.6"
    d = build(tmp_path, line).detector
    assert d.convention == "CUSTOM"
    np.testing.assert_allclose(d.pix0, [0.1, 0.0058, -0.0066], atol=1e-15)
    assert (d.Fbeam, d.Sbeam, d.close_distance) == pytest.approx((0.0066, 0.0058, 0.1), abs=1e-15)
    np.testing.assert_allclose(d.dials_origin_mm, [-6.6, 5.8, -100], atol=1e-12)
    c = build(tmp_path, line, "--c-parity").detector
    np.testing.assert_allclose(c.pix0, [0.1, 0.0064, -0.0064], atol=1e-15)  # overwritten from the beam centre
    assert (c.Fbeam, c.Sbeam) == pytest.approx((0.0064, 0.0064), abs=1e-15)


def test_pix0_vector_in_metres(tmp_path):
    d = build(tmp_path, CUBE, "-pix0_vector", "0.12", "0.003", "-0.002").detector
    np.testing.assert_allclose(d.pix0, [0.12, 0.003, -0.002], atol=1e-15)
    assert d.close_distance == pytest.approx(0.12) and (d.Fclose, d.Sclose) == pytest.approx((0.002, 0.003))


# --- automatic step counts --------------------------------------------------------------------

@pytest.mark.parametrize("flags, steps, osc_deg, step_deg", [
    ("", 1, 0.0, 0.0),
    ("-osc 1", 2, 1.0, 0.5),
    ("-phisteps 4", 4, 1.0, 0.25),
    ("-phistep 0.3", 2, 0.3, 0.3),
    ("-osc 2 -phistep 0.5", 4, 2.0, 0.5),
    ("-osc 2 -phistep 0.3", 7, 2.0, 0.3),   # ceil(2 / 0.3)
    ("-osc 2 -phisteps 5", 5, 2.0, 0.4),
])
def test_phi_step_rules(tmp_path, flags, steps, osc_deg, step_deg):
    g = build(tmp_path, CUBE, *flags.split()).goniometer
    assert g.phisteps == steps
    assert math.degrees(g.osc) == pytest.approx(osc_deg, abs=1e-12)
    assert math.degrees(g.phistep) == pytest.approx(step_deg, abs=1e-12)


@pytest.mark.parametrize("flags, count", [
    ("", 1),
    ("-hdivrange 0.4 -vdivrange 0.4 -hdivsteps 3 -vdivsteps 3", 5),   # corners trimmed by -round_div
    ("-hdivrange 0.4 -vdivrange 0.4 -hdivsteps 3 -vdivsteps 3 -square_div", 9),
    ("-divergence 0.4 -divsteps 5", 13),    # 25 points, 13 inside the ellipse (nanoBragg: 13)
    ("-hdivrange 0.4", 2),                  # range only -> 2 steps
    ("-dispersion 2 -dispsteps 3", 3),
    ("-hdivrange 0.4 -vdivrange 0.4 -hdivsteps 3 -vdivsteps 3 -dispersion 2 -dispsteps 3", 15),
])
def test_source_counts(tmp_path, flags, count):
    sim = build(tmp_path, CUBE, *flags.split())
    assert len(sim.beam.wavelengths) == count
    assert sim.steps == count * sim.sampling.oversample ** 2
    np.testing.assert_allclose(np.linalg.norm(sim.beam.directions, axis=1), 1.0, rtol=1e-15)


def test_dispersion_wavelengths(tmp_path):
    beam = build(tmp_path, CUBE, "-dispersion", "2", "-dispsteps", "3").beam
    np.testing.assert_allclose(beam.wavelengths, [0.99e-10, 1.0e-10, 1.01e-10], rtol=1e-14)


def test_divergence_directions_kept_by_round_div(tmp_path):
    beam = build(tmp_path, CUBE, *"-hdivrange 0.4 -vdivrange 0.4 -hdivsteps 3 -vdivsteps 3".split()).beam
    # deviation from the central source direction: 0 (centre) and 0.2 mrad (four edge sources)
    angles = np.arccos(np.clip(beam.directions @ np.array([-1.0, 0, 0]), -1, 1))
    np.testing.assert_allclose(np.sort(angles), [0, 2e-4, 2e-4, 2e-4, 2e-4], atol=1e-9)


@pytest.mark.parametrize("flags, domains, spread_deg", [
    ("", 1, 0.0),
    ("-mosaic 0.5", 10, 0.5),          # spread without domains -> 10
    ("-mosaic_dom 6", 1, 0.0),         # domains without spread -> 1
    ("-mosaic 0 -mosaic_dom 5", 1, 0.0),
    ("-mosaic 0.5 -mosaic_dom 6", 6, 0.5),
])
def test_mosaic_domain_rules(tmp_path, flags, domains, spread_deg):
    g = build(tmp_path, CUBE, *flags.split()).goniometer
    assert len(g.mosaic_umats) == domains
    assert math.degrees(g.mosaic_spread) == pytest.approx(spread_deg)
    np.testing.assert_array_equal(g.mosaic_umats[0], np.eye(3))
    for u in g.mosaic_umats:
        np.testing.assert_allclose(u @ u.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(u) == pytest.approx(1.0, abs=1e-12)
    if domains > 1:
        tilts = [math.degrees(math.acos(min(1.0, (np.trace(u) - 1) / 2))) for u in g.mosaic_umats[1:]]
        assert 0 < max(tilts) < 10 * spread_deg


# --- crystal ------------------------------------------------------------------------------------

def test_sample_size_sets_cells_by_ceiling(tmp_path):
    c = build(tmp_path, CUBE, "-sample_x", "0.001234", "-sample_y", "0.000553").crystal
    assert (c.Na, c.Nb, c.Nc) == (124, 56, 5)   # ceil(12340 A / 100 A), ceil(5530 A / 100 A), -N
    c = build(tmp_path, CUBE, "-xtalsize", "0.000777").crystal
    assert (c.Na, c.Nb, c.Nc) == (78, 78, 78)


@pytest.mark.parametrize("flags, expected", [("-N 0", (1, 1, 1)), ("-N 4 -Na 0 -Nc -3", (1, 4, 1))])
def test_cell_counts_are_at_least_one(tmp_path, flags, expected):
    c = build(tmp_path, CUBE, *flags.split()).crystal
    assert (c.Na, c.Nb, c.Nc) == expected


def test_cell_vectors_triclinic(tmp_path):
    """Lengths as given; the angles come out as nanoBragg's construction makes them (it prints
    "Unit Cell: 70 80 90 75.0391 85.0136 95.0081" for this cell), which the default mode keeps."""
    c = build(tmp_path, CUBE, "-cell", "70", "80", "90", "75", "85", "95").crystal
    lengths = [np.linalg.norm(v) * 1e10 for v in (c.a, c.b, c.c)]
    assert lengths == pytest.approx([70, 80, 90], rel=1e-12)
    cos = lambda u, v: float(u @ v) / np.linalg.norm(u) / np.linalg.norm(v)
    angles = [math.degrees(math.acos(cos(c.b, c.c))), math.degrees(math.acos(cos(c.a, c.c))),
              math.degrees(math.acos(cos(c.a, c.b)))]
    assert " ".join("%g" % a for a in angles) == "75.0391 85.0136 95.0081"
    assert "%g" % c.V_cell == "481811"
    # reciprocal vectors are perpendicular to the other two real ones (a . b* = 0); nanoBragg scales
    # them with the volume of the cell as given, so a . a* is the same constant for all three axes
    products = (np.stack([c.a, c.b, c.c]) * 1e10) @ np.stack([c.a_star, c.b_star, c.c_star]).T
    np.testing.assert_allclose(products - np.diag(np.diag(products)), 0.0, atol=1e-12)
    np.testing.assert_allclose(np.diag(products), products[0, 0], rtol=1e-12)


def write_hkl(path, rows):
    path.write_text("".join(f"{h} {k} {l} {F}\n" for h, k, l, F in rows))
    return str(path)


HKL_ROWS = [(h, k, l, 10.0 + h + 2 * k + 3 * l) for h in range(-2, 3) for k in range(-2, 3) for l in range(-2, 3)]


@pytest.mark.parametrize("flags, interpolate", [
    ("-N 2", True),                    # any N <= 2 -> tricubic
    ("-N 5", False),
    ("-N 5 -Nc 1", True),
    ("-N 5 -interpolate", True),
    ("-N 2 -nointerpolate", False),
    ("-N 2 -xtalsize 0.001", True),    # decided on -N before the sample size applies
])
def test_interpolation_auto_select(tmp_path, flags, interpolate):
    hkl = write_hkl(tmp_path / "grid.hkl", HKL_ROWS)
    sf = build(tmp_path, "-cell 100 100 100 90 90 90 -detpixels 32 -hkl", hkl, *flags.split()).structure_factors
    assert sf.interpolate is interpolate
    assert sf.count == len(HKL_ROWS)


def test_interpolation_needs_a_table(tmp_path):
    sf = build(tmp_path, CUBE, "-N", "1").structure_factors  # -default_F only
    assert sf.grid is None and sf.interpolate is False


def test_hkl_writes_fdump_and_fdump_is_read_back(tmp_path):
    hkl = write_hkl(tmp_path / "grid.hkl", HKL_ROWS)
    first = build(tmp_path, "-cell 100 100 100 90 90 90 -detpixels 32 -hkl", hkl).structure_factors
    assert (tmp_path / "Fdump.bin").exists()
    again = build(tmp_path, "-cell 100 100 100 90 90 90 -detpixels 32").structure_factors
    np.testing.assert_array_equal(again.grid.F, first.grid.F)


# --- errors -------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, names", [
    ("-default_F 10 -detpixels 32", "-cell"),                              # no cell
    ("-cell 1 1 1 0.1 0.1 179 -default_F 10 -detpixels 32", "-cell"),    # impossible cell
    ("-cell 100 100 100 90 90 90 -detpixels 32", "-default_F"),           # no structure factors
    ("-cell 100 100 100 90 90 90 -detpixels 32 -hkl missing.hkl", "missing.hkl"),
    ("-mat missing.mat -default_F 1 -detpixels 32", "missing.mat"),
    ("-cell 100 100 100 90 90 90 -default_F 1 -detpixels 32 -fdet_vector 0 0 0", "-fdet_vector"),
    ("-cell 100 100 100 90 90 90 -default_F 1 -detpixels 32 -spindle_axis 0 0 0", "-spindle_axis"),
    ("-cell 100 100 100 90 90 90 -default_F 1 -detpixels 32 -beam_vector 0 0 0", "-beam_vector"),
])
def test_bad_setups_raise_input_error(tmp_path, monkeypatch, line, names):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError) as info:
        build(tmp_path, line)
    message = str(info.value)
    assert "\n" not in message and names in message, message


def test_degenerate_matrix_is_an_input_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flat.mat").write_text("0.01 0 0\n0 0.01 0\n0 0 0\n")
    with pytest.raises(InputError, match="-mat"):
        build(tmp_path, "-mat flat.mat -default_F 1 -detpixels 32")


def _render_args(args, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return render(build_simulation(parse_args(args.split())), threads=1).image


def test_oversample_thick_without_a_sensor_renders_nothing_like_nanobragg(tmp_path, monkeypatch):
    # nanoBragg evaluates the layer formula for a zero-thickness sensor under -oversample_thick: 1 - 1 = 0
    image = _render_args("-cell 100 100 100 90 90 90 -default_F 100 -N 5 -detpixels 16 -oversample_thick",
                         tmp_path, monkeypatch)
    assert image.max() == 0.0


def test_c_parity_carry_over_starts_at_the_first_loop_dmin_keeps(tmp_path, monkeypatch):
    """With -dmin cutting the first pixels, nanoBragg's unrotated first phi step falls on a later pixel."""
    args = ("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 64 "
            "-misset 10 20 30 -phi 0 -osc 1 -phisteps 3 -dmin 25")
    parity = _render_args(args + " --c-parity", tmp_path, monkeypatch)
    fixed = _render_args(args, tmp_path, monkeypatch)
    assert float(parity[0, 9]) == pytest.approx(0.0182048, rel=1e-5)   # nanoBragg.c's value
    # that first loop sees the true phi = 0 cell, as every loop does in the default mode ...
    assert parity[0, 9] == fixed[0, 9]
    # ... while the next pixel already carries the last phi step's rotation under --c-parity
    assert abs(float(parity[0, 10]) - float(fixed[0, 10])) > 1e-3 * float(fixed[0, 10])


@pytest.mark.parametrize("roi", ["", "-roi 3 9 2 6", "-roi 0 15 4 4", "-roi 5 16 -1 16"])
@pytest.mark.parametrize("tile", [1, 5, 16, 1000])
def test_rendered_pixels_match_the_roi_in_raster_order(roi, tile, tmp_path, monkeypatch):
    from arraybragg.render.renderer import RenderedPixels

    monkeypatch.chdir(tmp_path)
    sim = build_simulation(parse_args(f"-cell 100 100 100 90 90 90 -default_F 1 -detpixels 16 {roi}".split()))
    pixels = RenderedPixels(sim)
    expected = np.flatnonzero(sim.sampling.rendered(16, 16))
    assert len(pixels) == expected.size
    for first in range(0, len(pixels), tile):
        stop = min(first + tile, len(pixels))
        assert np.array_equal(pixels[first:stop], expected[first:stop])
        assert pixels.contiguous(first, stop) == bool(np.all(np.diff(expected[first:stop]) == 1))
