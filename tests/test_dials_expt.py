"""DIALS experiment lists: write -> read gives the same models and pixels; a dxtbx-style file renders
as the nanoBragg command line it describes; malformed files are refused naming the key."""
from __future__ import annotations

import json

import numpy as np
import pytest

from arraybragg.errors import InputError
from arraybragg.models import Beam, Crystal, Detector, Experiment, Goniometer, Panel, StructureFactors
from arraybragg.models.dials import experiment_list_dict, read_experiment_list, write_experiment_list
from arraybragg.render.renderer import render

F100 = StructureFactors(grid=None, default_F=100.0, interpolate=False)
# nanoBragg's -dials frame has the beam along +z; dxtbx's (imgCIF) along -z: a 180 degree turn about x
TO_IMGCIF = np.diag([1.0, -1.0, -1.0])


def two_panel_experiment() -> Experiment:
    tilted = Detector.nanobragg(distance_mm=80.0, pixel_size_mm=0.1, size=(24, 20), rotations_deg=(2.0, 3.0, 5.0),
                                twotheta_deg=4.0, thickness_mm=0.1, attenuation_length_mm=0.25)[0]
    second = Panel(origin_mm=(82.0, -4.0, 1.5), fast_axis=(0.0, 0.0, 1.0), slow_axis=(0.1, -1.0, 0.0),
                   pixel_size_mm=0.1, size=(16, 12), name="lower")
    beam = Beam(wavelength_A=1.3, direction=(1.0, 0.02, 0.0), polarization_axis=(0.0, 0.0, 1.0), kahn_factor=0.6)
    crystal = Crystal.from_cell((70.0, 80.0, 90.0, 88.0, 95.0, 102.0), misset_deg=(10.0, 20.0, 30.0), cells=(5, 5, 5))
    goniometer = Goniometer(axis=(0.1, 0.0, 1.0), phi_start_deg=15.0, oscillation_deg=0.5)
    return Experiment(beam=beam, detector=Detector((tilted.replace(name="upper"), second)), crystal=crystal,
                      goniometer=goniometer, structure_factors=F100)


def assert_same_values(left, right, names):
    for name in names:
        a, b = getattr(left, name), getattr(right, name)
        if isinstance(a, (float, tuple)) and not isinstance(a, str):
            np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=0, atol=1e-12, err_msg=name)
        else:
            assert a == b, name


def test_round_trip_models_and_pixels(tmp_path):
    original = two_panel_experiment()
    path = tmp_path / "rendered.expt"
    write_experiment_list(path, original, image_template="image_#####.img", image_range=(1, 3))
    read = read_experiment_list(path, cells=(5, 5, 5))
    assert (read.template, read.image_range, read.images) == ("image_#####.img", (1, 3), ())
    assert_same_values(original.beam, read.beam, ("wavelength_A", "direction", "polarization_axis", "kahn_factor",
                                                  "polarization_correction", "fluence_photons_per_m2"))
    assert len(read.detector) == 2
    for ours, theirs in zip(original.detector, read.detector):
        assert_same_values(ours, theirs, ("origin_mm", "fast_axis", "slow_axis", "pixel_size_mm", "size",
                                          "thickness_mm", "attenuation_length_mm", "name"))
    assert_same_values(original.crystal, read.crystal, ("a_A", "b_A", "c_A", "cells", "shape", "fudge"))
    assert_same_values(original.goniometer, read.goniometer, ("axis", "phi_start_deg", "oscillation_deg",
                                                              "phi_steps", "mosaic_domains"))
    assert read.goniometer_for(3).phi_start_deg == pytest.approx(16.0, abs=1e-12)
    again = read.experiment(F100)
    for index in range(2):
        expected = render(original.panel_simulation(index)).image
        assert expected.max() > 0.0
        np.testing.assert_allclose(render(again.panel_simulation(index)).image, expected, rtol=1e-6, atol=0)


def test_written_file_is_a_dxtbx_experiment_list():
    document = experiment_list_dict(two_panel_experiment(), image_template="run_###.img", image_range=(5, 6))
    assert document["__id__"] == "ExperimentList"
    assert document["experiment"][0] == {"__id__": "Experiment", "identifier": "", "beam": 0, "detector": 0,
                                         "goniometer": 0, "scan": 0, "crystal": 0, "imageset": 0}
    beam = document["beam"][0]
    np.testing.assert_allclose(beam["direction"], -np.array([1.0, 0.02, 0.0]) / np.hypot(1.0, 0.02), atol=1e-15)
    assert beam["polarization_fraction"] == pytest.approx(0.8)            # Kahn 0.6 = 2 * 0.8 - 1
    np.testing.assert_allclose(np.cross(beam["polarization_normal"], beam["direction"]), [0, 0, 1.0], atol=1e-12)
    detector = document["detector"][0]
    assert detector["hierarchy"]["children"] == [{"panel": 0}, {"panel": 1}]
    assert detector["panels"][0]["mu"] == pytest.approx(4.0)               # 1 / 0.25 mm
    assert detector["panels"][0]["px_mm_strategy"] == {"type": "ParallaxCorrectedPxMmStrategy"}
    assert detector["panels"][1]["image_size"] == [16, 12] and detector["panels"][1]["pixel_size"] == [0.1, 0.1]
    scan = document["scan"][0]
    assert scan["image_range"] == [5, 6] and scan["properties"]["oscillation"] == [15.0, 15.5]
    assert document["imageset"][0] == {"__id__": "ImageSequence", "template": "run_###.img"}
    assert document["crystal"][0]["__id__"] == "crystal"


def dxtbx_style_file(flags: Experiment) -> dict:
    """What dials.import/index would write for the -dials command line below, in dxtbx's own frame."""
    crystal = {name: list(TO_IMGCIF @ np.array(vector)) for name, vector in
               (("real_space_a", flags.crystal.a_A), ("real_space_b", flags.crystal.b_A),
                ("real_space_c", flags.crystal.c_A))}
    panel = {"name": "Panel", "type": "SENSOR_PAD", "fast_axis": [1.0, 0.0, 0.0], "slow_axis": [0.0, -1.0, 0.0],
             "origin": [-2.1, 1.9, -90.0], "pixel_size": [0.1, 0.1], "image_size": [24, 20],
             "trusted_range": [-1.0, 65535.0], "thickness": 0.0, "material": "", "mu": 0.0}
    return {"__id__": "ExperimentList",
            "experiment": [{"__id__": "Experiment", "beam": 0, "detector": 0, "goniometer": 0, "scan": 0,
                            "crystal": 0, "imageset": 0}],
            "imageset": [{"__id__": "ImageSequence", "template": "image_#####.img"}],
            "beam": [{"direction": [0.0, 0.0, 1.0], "wavelength": 1.2, "polarization_normal": [1.0, 0.0, 0.0],
                      "polarization_fraction": 0.8}],
            "detector": [{"panels": [panel], "hierarchy": {"name": "", "origin": [0.0, 0.0, 0.0],
                                                            "fast_axis": [1.0, 0.0, 0.0],
                                                            "slow_axis": [0.0, 1.0, 0.0],
                                                            "children": [{"panel": 0}]}}],
            "goniometer": [{"rotation_axis": [0.0, -1.0, 0.0], "fixed_rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1],
                            "setting_rotation": [1, 0, 0, 0, 1, 0, 0, 0, 1]}],
            "scan": [{"image_range": [1, 3], "batch_offset": 0,
                      "properties": {"oscillation": [12.0, 12.5, 13.0], "exposure_time": [1.0] * 3,
                                     "epochs": [0.0] * 3}}],
            "crystal": [{"__id__": "crystal", "space_group_hall_symbol": " P 1", **crystal}]}


def test_dxtbx_file_renders_as_its_nanobragg_command_line(tmp_path):
    flags = Experiment.from_flags(["-dials", "-cell", "70", "80", "90", "88", "95", "102", "-misset", "10", "20", "30",
                                   "-N", "5", "-default_F", "100", "-lambda", "1.2", "-distance", "90",
                                   "-pixel", "0.1", "-detpixels_f", "24", "-detpixels_s", "20", "-ORGX", "21.5",
                                   "-ORGY", "19.5", "-phi", "12.5", "-osc", "0.5", "-phisteps", "1",
                                   "-polar", "0.6", "-oversample", "1"])
    path = tmp_path / "indexed.expt"
    path.write_text(json.dumps(dxtbx_style_file(flags)))
    read = read_experiment_list(path, cells=(5, 5, 5))
    panel, expected_panel = read.detector[0], flags.detector[0]
    np.testing.assert_allclose(panel.origin_mm, TO_IMGCIF @ np.array(expected_panel.origin_mm), atol=1e-9)
    np.testing.assert_allclose(read.beam.direction, TO_IMGCIF @ np.array(flags.beam.direction), atol=1e-15)
    np.testing.assert_allclose(read.beam.polarization_axis, TO_IMGCIF @ np.array(flags.beam.polarization_axis),
                               atol=1e-15)
    assert read.beam.kahn_factor == pytest.approx(0.6, abs=1e-15)
    experiment = read.experiment(flags.structure_factors, flags.sampling, image=2)   # image 2: phi 12.5 -> 13
    assert experiment.goniometer.phi_start_deg == 12.5 and experiment.goniometer.oscillation_deg == 0.5
    expected = render(flags.panel_simulation(0)).image
    assert expected.max() > 0.0
    np.testing.assert_allclose(render(experiment.panel_simulation(0)).image, expected, rtol=1e-6, atol=0)


def test_hierarchy_groups_compose_to_the_lab_frame(tmp_path):
    document = dxtbx_style_file(Experiment.from_flags(["-dials", "-default_F", "1", "-cell", "50", "50", "50",
                                                       "90", "90", "90"]))
    document["detector"][0] = {
        "panels": [{"name": "p", "fast_axis": [1, 0, 0], "slow_axis": [0, 1, 0], "origin": [1, 2, 0],
                    "pixel_size": [0.2, 0.2], "image_size": [10, 8], "thickness": 0.5, "mu": 2.0}],
        "hierarchy": {"children": [{"name": "group", "fast_axis": [0, 1, 0], "slow_axis": [-1, 0, 0],
                                    "origin": [10, 0, -100], "children": [{"panel": 0}]}]}}
    path = tmp_path / "groups.expt"
    path.write_text(json.dumps(document))
    panel = read_experiment_list(path).detector[0]
    assert panel.fast_axis == (0.0, 1.0, 0.0) and panel.slow_axis == (-1.0, 0.0, 0.0)
    assert panel.origin_mm == (8.0, 1.0, -100.0)
    assert (panel.size, panel.pixel_size_mm, panel.thickness_mm, panel.attenuation_length_mm) == ((10, 8), 0.2, 0.5,
                                                                                                    0.5)


def test_setting_and_fixed_rotations_move_axis_and_crystal(tmp_path):
    flags = Experiment.from_flags(["-dials", "-default_F", "1", "-cell", "50", "60", "70", "90", "90", "90"])
    document = dxtbx_style_file(flags)
    quarter_z = [0, -1, 0, 1, 0, 0, 0, 0, 1]                                # +90 degrees about z, row-major
    document["goniometer"][0].update(rotation_axis=[1, 0, 0], setting_rotation=quarter_z, fixed_rotation=quarter_z)
    path = tmp_path / "kappa.expt"
    path.write_text(json.dumps(document))
    read = read_experiment_list(path)
    np.testing.assert_allclose(read.goniometer.axis, (0.0, 1.0, 0.0), atol=1e-15)
    half_z = np.diag([-1.0, -1.0, 1.0])
    np.testing.assert_allclose(read.crystal.a_A, half_z @ TO_IMGCIF @ np.array(flags.crystal.a_A), atol=1e-12)


def malformed(document: dict, change) -> dict:
    change(document)
    return document


BAD = {
    "beam[0].wavelength": lambda d: d["beam"][0].pop("wavelength"),
    "detector[0].panels[0].pixel_size": lambda d: d["detector"][0]["panels"][0].update(pixel_size=[0.1, 0.2]),
    "detector[0].panels[0].image_size": lambda d: d["detector"][0]["panels"][0].update(image_size=[24]),
    "detector[0].hierarchy.children[0].panel": lambda d: d["detector"][0]["hierarchy"].update(
        children=[{"panel": 3}]),
    "goniometer[0].fixed_rotation": lambda d: d["goniometer"][0].update(fixed_rotation=[2, 0, 0, 0, 1, 0, 0, 0, 1]),
    "scan[0].image_range": lambda d: d["scan"][0].update(image_range=[5, 1]),
    "crystal[0].real_space_b": lambda d: d["crystal"][0].update(real_space_b="b"),
    "experiment[0].beam": lambda d: d["experiment"][0].update(beam=4),
    "beam[0].polarization_normal": lambda d: d["beam"][0].update(polarization_normal=[0, 0, 2]),
    "__id__": lambda d: d.update(__id__="DataBlock"),
}


@pytest.mark.parametrize("key", sorted(BAD))
def test_malformed_files_name_the_key(tmp_path, key):
    flags = Experiment.from_flags(["-dials", "-default_F", "1", "-cell", "50", "50", "50", "90", "90", "90"])
    path = tmp_path / "bad.expt"
    path.write_text(json.dumps(malformed(dxtbx_style_file(flags), BAD[key])))
    with pytest.raises(InputError) as caught:
        read_experiment_list(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}") and "\n" not in message


def test_unreadable_files(tmp_path):
    path = tmp_path / "broken.expt"
    path.write_text("{ not json")
    with pytest.raises(InputError, match="broken.expt: not a JSON file"):
        read_experiment_list(path)
    with pytest.raises(InputError, match="missing.expt: cannot read"):
        read_experiment_list(tmp_path / "missing.expt")


def test_still_is_written_as_an_image_list_with_phi_in_the_crystal(tmp_path):
    original = two_panel_experiment()
    still = original.replace(goniometer=original.goniometer.replace(oscillation_deg=0.0))
    path = tmp_path / "still.expt"
    write_experiment_list(path, still, images=["shot_1.img"])
    read = read_experiment_list(path, cells=(5, 5, 5))
    assert (read.images, read.template, read.image_range) == (("shot_1.img",), None, None)
    assert read.goniometer.phi_start_deg == 0.0 and read.goniometer.oscillation_deg == 0.0
    rotated = still.crystal.rotated(still.goniometer.axis, 15.0)
    np.testing.assert_allclose(read.crystal.a_A, rotated.a_A, atol=1e-12)
    expected = render(still.panel_simulation(1)).image
    np.testing.assert_allclose(render(read.experiment(F100).panel_simulation(1)).image, expected, rtol=1e-5, atol=0)


# --------------------------------------------------------------------------- the command line
def _float(path, shape):
    return np.fromfile(path, dtype=np.float32).reshape(shape)


@pytest.mark.parametrize("motion, template", [("-phi 3 -osc 0.5 -phisteps 3", "image_#####.img"),
                                              ("", None)])
def test_write_expt_then_expt_renders_the_same_pixels(tmp_path, monkeypatch, motion, template):
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    common = "-default_F 100 -N 5 -oversample 1 -nonoise -nopgm".split()
    first = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -detpixels_f 48 -detpixels_s 40 -distance 80 "
             f"{motion} -floatfile a.bin -intfile image_00007.img --write-expt run.expt").split()
    assert cli.main(first + common) == 0
    written = read_experiment_list(tmp_path / "run.expt")
    if template:
        assert (written.template, written.image_range) == (template, (7, 7))
    else:
        assert written.images == ("image_00007.img",)
    again = ("--expt run.expt -floatfile b.bin -intfile b.img" + (" -phisteps 3" if motion else "")).split()
    assert cli.main(again + common) == 0
    reference = _float(tmp_path / "a.bin", (40, 48))
    assert reference.max() > 0
    np.testing.assert_allclose(_float(tmp_path / "b.bin", (40, 48)), reference, rtol=0, atol=1e-6 * reference.max())


def test_expt_and_geom_together_are_refused(tmp_path, monkeypatch, capsys):
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.expt").write_text("{}")
    (tmp_path / "a.geom").write_text("")
    assert cli.main("--expt a.expt --geom a.geom -default_F 1".split()) == 2
    err = capsys.readouterr().err
    assert "--geom" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.expt", "a.geom"]


def test_a_bad_expt_file_is_one_line_naming_it(tmp_path, monkeypatch, capsys):
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.expt").write_text('{"__id__": "ExperimentList", "experiment": []}')
    assert cli.main("--expt bad.expt -default_F 1".split()) == 2
    err = capsys.readouterr().err
    assert "bad.expt" in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.expt"]
