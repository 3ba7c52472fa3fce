"""User-unit models (arraybragg.models) and the Simulator: the same pixels as nanoBragg's flags."""
from __future__ import annotations

import numpy as np
import pytest

import arraybragg as ab
from arraybragg.errors import InputError
from arraybragg.models import conventional_axes

CELL = (70, 80, 90, 75, 85, 95)
BASE = "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -lambda 1.2 -oversample 2"


def flags_image(flags: str) -> np.ndarray:
    return ab.render_simulation(ab.build_simulation(ab.parse_args(flags.split()))).image


def user_image(experiment, **kwargs) -> np.ndarray:
    return ab.Simulator(experiment, **kwargs).render().to_numpy()[0]


def assert_same(image, reference, tolerance=1e-9):
    assert reference.max() > 0
    assert np.abs(image - reference).max() <= tolerance * reference.max()


def experiment(detector, convention="MOSFLM", **changes):
    axes = conventional_axes(convention)
    values = dict(beam=ab.Beam(wavelength_A=1.2, direction=axes["beam"], polarization_axis=axes["polarization"]),
                  detector=detector,
                  crystal=ab.Crystal.from_cell(CELL, misset_deg=(10, 20, 30), cells=(5, 5, 5)),
                  structure_factors=ab.StructureFactors(default_F=100),
                  goniometer=ab.Goniometer(axis=axes["spindle"]), sampling=ab.Sampling(oversample=2))
    values.update(changes)
    return ab.Experiment(**values)


@pytest.mark.parametrize("flags, detector, convention", [
    ("-detpixels 64 -pixel 0.1 -distance 80", dict(distance_mm=80, pixel_size_mm=0.1, size=(64, 64)), "MOSFLM"),
    ("-detpixels_f 72 -detpixels_s 56 -pixel 0.12 -distance 70 -Xbeam 3.1 -Ybeam 4.2",
     dict(distance_mm=70, pixel_size_mm=0.12, size=(72, 56), xbeam_ybeam_mm=(3.1, 4.2)), "MOSFLM"),
    ("-xds -detpixels 64 -pixel 0.1 -distance 80 -twotheta 12 -detector_rotx 3 -detector_rotz 5",
     dict(distance_mm=80, pixel_size_mm=0.1, size=(64, 64), convention="XDS", twotheta_deg=12,
          rotations_deg=(3, 0, 5)), "XDS"),
    ("-adxv -detpixels 64 -pixel 0.1 -distance 80 -Xbeam 2 -Ybeam 3.5",
     dict(distance_mm=80, pixel_size_mm=0.1, size=(64, 64), convention="ADXV", xbeam_ybeam_mm=(2, 3.5)), "ADXV"),
    ("-dials -detpixels 64 -pixel 0.1 -distance 80 -twotheta 8 -detector_thick 300 -detector_abs 200 "
     "-thicksteps 3", dict(distance_mm=80, pixel_size_mm=0.1, size=(64, 64), convention="DIALS",
                          twotheta_deg=8, thickness_mm=0.3, thickness_steps=3, attenuation_length_mm=0.2), "DIALS"),
    ("-denzo -detpixels 64 -pixel 0.1 -distance 80 -detector_roty 4", dict(
        distance_mm=80, pixel_size_mm=0.1, size=(64, 64), convention="DENZO", rotations_deg=(0, 4, 0)), "DENZO"),
    ("-fdet_vector 0 0 1 -sdet_vector 0 -1 0 -odet_vector 1 0 0 -beam_vector 1 0 0 -twotheta_axis 0 0 -1 "
     "-detpixels 64 -pixel 0.1 -distance 80 -twotheta 10 -Xbeam 3 -Ybeam 3.5 -pivot sample",
     dict(distance_mm=80, pixel_size_mm=0.1, size=(64, 64), twotheta_deg=10, pivot="SAMPLE", convention="CUSTOM",
          xbeam_ybeam_mm=(3, 3.5), axes=dict(fast=(0, 0, 1), slow=(0, -1, 0), normal=(1, 0, 0), beam=(1, 0, 0),
                                             twotheta=(0, 0, -1))), "MOSFLM"),
])
def test_a_render_built_in_user_units_equals_the_flags_render(flags, detector, convention):
    reference = flags_image(BASE + " " + flags)
    image = user_image(experiment(ab.Detector.nanobragg(**detector), convention))
    assert_same(image, reference)


def test_experiment_from_flags_renders_the_flags_image():
    flags = BASE + " -detpixels 48 -distance 60 -phi 3 -osc 1 -phisteps 2 -mosaic 0.4 -mosaic_dom 3 -mosaic_seed 7"
    assert_same(user_image(ab.Experiment.from_flags(flags.split())), flags_image(flags), 0.0)


def test_a_detector_split_into_two_panels_renders_the_single_panels_pixels():
    whole = ab.Detector.simple(distance_mm=80, pixel_size_mm=0.1, size=(60, 50))[0]
    top = whole.replace(size=(60, 20), name="top")
    origin = np.array(whole.origin_mm) + 20 * whole.pixel_size_mm * np.array(whole.slow_axis)
    bottom = whole.replace(origin_mm=tuple(origin), size=(60, 30), name="bottom")
    single = user_image(experiment(ab.Detector((whole,))))
    images = ab.Simulator(experiment(ab.Detector((top, bottom)))).render().to_numpy()
    assert [i.shape for i in images] == [(20, 60), (30, 60)]
    assert_same(np.concatenate(images), single)


def test_per_panel_sampling_and_masks():
    whole = ab.Detector.simple(distance_mm=80, pixel_size_mm=0.1, size=(40, 40))[0]
    mask = np.ones((40, 40), dtype=np.uint8)
    mask[:, :10] = 0
    exp = experiment(ab.Detector((whole, whole.replace(name="b"))),
                     panel_sampling=(None, ab.Sampling(oversample=1, mask=mask)))
    first, second = ab.Simulator(exp).render().to_numpy()
    assert_same(first, user_image(experiment(ab.Detector((whole,)))))
    assert np.all(second[:, :10] == 0)
    single = user_image(experiment(ab.Detector((whole,)), sampling=ab.Sampling(oversample=1)))
    assert_same(second[:, 10:], single[:, 10:])


def test_a_sweep_is_the_flags_renders_of_each_frame():
    gonio = ab.Goniometer(phi_start_deg=2.0, oscillation_deg=0.5, phi_steps=2)
    frames = ab.Simulator(experiment(ab.Detector.simple(distance_mm=80, pixel_size_mm=0.1, size=(48, 48)),
                                     goniometer=gonio)).render_sweep(3)
    for index, images in enumerate(frames):
        flags = BASE + " -detpixels 48 -distance 80 -phi %g -osc 0.5 -phisteps 2" % (2.0 + 0.5 * index)
        assert_same(images.to_numpy()[0], flags_image(flags))


def test_rotating_the_crystal_about_x_equals_a_misset_about_x():
    plain = ab.Crystal.from_cell(CELL)
    misset = ab.Crystal.from_cell(CELL, misset_deg=(25, 0, 0))
    rotated = plain.rotated((1, 0, 0), 25)
    for u, v in zip((misset.a_A, misset.b_A, misset.c_A), (rotated.a_A, rotated.b_A, rotated.c_A)):
        np.testing.assert_allclose(u, v, atol=1e-9)
    assert rotated.unit_cell == pytest.approx(plain.unit_cell)  # nanoBragg's triclinic cell: 75.039 85.014 95.008


def test_crystal_factories_agree():
    crystal = ab.Crystal.from_cell(CELL, misset_deg=(10, 20, 30))
    stars = crystal.reciprocal_matrix
    from_A = ab.Crystal.from_mosflm_matrix(stars * 1.3, wavelength_A=1.3)
    from_UB = ab.Crystal.from_U_B(np.eye(3), stars)
    for other in (from_A, from_UB):
        np.testing.assert_allclose(other.real_matrix, crystal.real_matrix, atol=1e-10)
    assert crystal.volume_A3 == pytest.approx(ab.Crystal.from_cell(CELL).volume_A3)


def test_units_are_in_the_names_and_metres_are_refused():
    with pytest.raises(TypeError):
        ab.Detector.simple(distance=0.1, pixel_size_mm=0.1, size=(10, 10))
    with pytest.raises(TypeError):
        ab.Beam(wavelength=1e-10)
    with pytest.raises(InputError, match="wavelength_A.*metres"):
        ab.Beam(wavelength_A=1e-10)
    with pytest.raises(InputError, match="pixel_size_mm.*metres"):
        ab.Detector.simple(distance_mm=100, pixel_size_mm=1e-4, size=(10, 10))


@pytest.mark.parametrize("build, message", [
    (lambda: ab.Panel((100, 0, 0), (0, 0, 1), (0, 0.5, 1), 0.1, (10, 10)), "perpendicular"),
    (lambda: ab.Panel((0, 0, 0), (0, 0, 1), (0, 1, 0), 0.1, (10, 10)), "contains the sample"),
    (lambda: ab.Panel((100, 0, 0), (0, 0, 0), (0, 1, 0), 0.1, (10, 10)), "zero-length"),
    (lambda: ab.Panel((100, 0, 0), (0, 0, 1), (0, 1, 0), 0.1, (10, 0)), "at least 1"),
    (lambda: ab.Crystal.from_cell((10, 10, 10, 30, 30, 120)), "impossible"),
    (lambda: ab.Crystal((1, 0, 0), (2, 0, 0), (0, 0, 1)), "volume"),
    (lambda: ab.Goniometer(phi_steps=0), "phi_steps"),
    (lambda: ab.Detector.nanobragg(distance_mm=100, pixel_size_mm=0.1, size=(8, 8), convention="MOSFLMX"),
     "MOSFLM, DENZO"),
    (lambda: ab.Crystal.from_cell(CELL, shape="square-ish"), "SQUARE, ROUND"),
    (lambda: ab.Detector.nanobragg(distance_mm=100, pixel_size_mm=0.1, size=(8, 8), pivot="SAMPLE"), "fixed"),
    (lambda: ab.Detector.nanobragg(distance_mm=100, pixel_size_mm=0.1, size=(8, 8), convention="CUSTOM",
                                   axes=dict(fast=(0, 0, 1))), "missing"),
])
def test_bad_values_are_refused_naming_the_field(build, message):
    with pytest.raises(InputError, match=message):
        build()


def test_panel_geometry_methods_match_the_flags_derivation():
    sim = ab.build_simulation(ab.parse_args("-detpixels 100 -pixel 0.1 -distance 100 -Xbeam 4 -Ybeam 6 "
                                            "-cell 50 50 50 90 90 90 -default_F 1".split()))
    exp = ab.Experiment.from_simulation(sim)
    panel, beam = exp.detector[0], exp.beam
    assert panel.beam_centre_mm(beam) == pytest.approx((sim.detector.Fbeam * 1e3, sim.detector.Sbeam * 1e3))
    assert panel.distance_mm(beam) == pytest.approx(100.0)
    assert panel.close_distance_mm() == pytest.approx(100.0)
    f, s = panel.beam_centre_px(beam)
    assert float(panel.two_theta_deg(beam, f, s)) == pytest.approx(0.0, abs=1e-6)
    corner = panel.two_theta_deg(beam, 100, 100)
    expected = np.degrees(np.arctan(np.hypot(10 - 6.05, 10 - 4.05) / 100))
    assert float(corner) == pytest.approx(expected)
    assert float(panel.resolution_A(beam, 100, 100)) == pytest.approx(1.0 / (2 * np.sin(np.radians(expected) / 2)))


def test_progress_covers_every_panel_once():
    whole = ab.Detector.simple(distance_mm=80, pixel_size_mm=0.1, size=(30, 20))[0]
    seen = []
    ab.Simulator(experiment(ab.Detector((whole, whole.replace(name="b"))))).render(
        progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (1200, 1200)
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))


def test_output_files_are_named_per_panel(tmp_path):
    whole = ab.Detector.simple(distance_mm=80, pixel_size_mm=0.1, size=(30, 20))[0]
    exp = experiment(ab.Detector((whole.replace(name="q0"), whole.replace(name="q1"))))
    simulator = ab.Simulator(exp)
    images = simulator.render()
    files = ab.OutputFiles(floatfile=str(tmp_path / "float.bin"), intfile=str(tmp_path / "int.img"))
    names = [p.name for p in exp.detector]
    for index, result in enumerate(images.results):
        ab.write_files(simulator.simulation(index), result, files.for_panel(index, names))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["float_q0.bin", "float_q1.bin", "int_q0.img", "int_q1.img"]
    raw = np.fromfile(tmp_path / "float_q1.bin", dtype=np.float32).reshape(20, 30)
    assert np.array_equal(raw, images.to_numpy()[1])
    from arraybragg.outputs.render_files import panel_tags
    assert panel_tags(["a b", "c"]) == ["p00", "p01"]


def test_lab_models_refuse_an_unknown_shape_instead_of_rendering_tophat():
    from arraybragg.models.lab import Crystal as LabCrystal
    lab = ab.Crystal.from_cell(CELL).lab()
    with pytest.raises(ValueError, match="SQARE"):
        LabCrystal(**{**lab.__dict__, "shape": "SQARE"})
