"""CrystFEL geometry files: CrystFEL's own examples read, a 4-module layout written, read back and rendered."""
from __future__ import annotations

import re

import numpy as np
import pytest

from arraybragg.errors import InputError
from arraybragg.models import Beam, Crystal, Detector, Experiment, Panel, StructureFactors
from arraybragg.models.crystfel import format_geometry, read_geometry, write_geometry
from arraybragg.render.renderer import render

from conftest import NO_REFERENCE, REFERENCE

GEOM = None if REFERENCE is None else REFERENCE / "inputs" / "geom"
needs_reference = pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)


def file_value(text: str, key: str) -> str:
    """The value of ``key = value`` in a geometry file's text, comment stripped (read by the test itself)."""
    match = re.search(rf"^{re.escape(key)}\s*=\s*([^;\n]*)", text, flags=re.MULTILINE)
    assert match, key
    return match.group(1).strip()


def file_vector(text: str, key: str) -> np.ndarray:
    terms = re.findall(r"([+-][\d.]+)([xyz])", file_value(text, key))
    return np.array([sum(float(v) for v, a in terms if a == axis) for axis in "xyz"])


# --------------------------------------------------------------------------- CrystFEL's examples
@needs_reference
@pytest.mark.parametrize("name", ["q0a0", "q1a1", "q2a7", "q3a15"])
def test_cspad_asic_corners_land_where_the_file_puts_them(name):
    text = (GEOM / "cspad-single.geom").read_text()
    geometry = read_geometry(GEOM / "cspad-single.geom", clen_mm=-420.0, photon_energy_eV=9000.0)
    assert len(geometry.detector) == 64 and [p.name for p in geometry.detector][:3] == ["q0a0", "q0a1", "q1a0"]
    panel = geometry.detector[[p.name for p in geometry.detector].index(name)]
    pixel_mm = 1e3 / float(file_value(text, "res"))
    z_mm = -420.0 + float(file_value(text, "coffset")) * 1e3
    corner = np.array([float(file_value(text, f"{name}/corner_x")) * pixel_mm,
                       float(file_value(text, f"{name}/corner_y")) * pixel_mm, z_mm])
    fs, ss = file_vector(text, f"{name}/fs"), file_vector(text, f"{name}/ss")
    nfast = int(file_value(text, f"{name}/max_fs")) - int(file_value(text, f"{name}/min_fs")) + 1
    nslow = int(file_value(text, f"{name}/max_ss")) - int(file_value(text, f"{name}/min_ss")) + 1
    assert panel.size == (nfast, nslow) == (194, 185)
    np.testing.assert_allclose(panel.lab_position_mm(0, 0), corner, rtol=0, atol=1e-9)
    np.testing.assert_allclose(panel.fast_axis, fs, atol=1e-7)
    np.testing.assert_allclose(panel.slow_axis, ss, atol=1e-7)
    far = corner + (nfast * fs + nslow * ss) * pixel_mm
    np.testing.assert_allclose(panel.lab_position_mm(nfast, nslow), far, rtol=0, atol=1e-5)
    assert panel.distance_mm(geometry.beam()) == pytest.approx(z_mm)


@needs_reference
def test_cspad_facts_groups_and_the_data_file_mask_warning():
    geometry = read_geometry(GEOM / "cspad-single.geom", clen_mm=-420.0, photon_energy_eV=9000.0)
    facts = geometry.panels[0]
    assert facts.data_region == (0, 193, 0, 184) and geometry.panels[-1].data_region == (1358, 1551, 1295, 1479)
    assert facts.adu_per_eV == 0.00105 and facts.adu_per_photon == pytest.approx(9.45)
    assert geometry.groups["all"] == ("q0", "q1", "q2", "q3") and geometry.groups["a0"] == ("q0a0", "q0a1")
    assert len(geometry.warnings) == 1 and "/processing/hitfinder/pixelmasks" in geometry.warnings[0]
    assert all(mask.all() for mask in geometry.masks)
    images = [np.full(panel.shape, index + 1, dtype=np.float32) for index, panel in enumerate(geometry.detector)]
    data = geometry.assemble(images)
    assert data.shape == (1480, 1552) and data[0, 0] == 1 and data[184, 194] == 2 and data[1479, 1551] == 64
    beam = geometry.beam()
    assert beam.direction == (0.0, 0.0, 1.0) and beam.polarization_axis == (1.0, 0.0, 0.0)
    assert beam.energy_eV == pytest.approx(9000.0)


@needs_reference
def test_pilatus_bad_regions_become_the_mask():
    geometry = read_geometry(GEOM / "pilatus.geom", clen_mm=250.0)
    (panel,), (mask,) = geometry.detector, geometry.masks
    assert panel.size == (2463, 2527) and mask.shape == (2527, 2463) and mask.dtype == np.uint8
    assert panel.pixel_size_mm == pytest.approx(0.172, rel=1e-5) and geometry.photon_energy_eV == 9800.0
    assert panel.origin_mm[2] == pytest.approx(250.0 - 0.64)
    expected = np.zeros((2527, 2463), dtype=bool)
    for start in (487, 981, 1475, 1969):                                     # bad_v1..4: 7 columns each
        expected[:, start:start + 7] = True
    for start in (195, 407, 619, 831, 1043, 1255, 1467, 1679, 1891, 2103, 2315):  # bad_h1..hb: 17 rows each
        expected[start:start + 17, :] = True
    # bad_beamstop: -2000 < fs - 1272.37 < 100 and -40 < ss - 1243.8 < 100, at pixel corners
    expected[1204:1344, 0:1373] = True
    assert 4 * 7 * 2527 + 11 * 17 * 2463 - 4 * 7 * 11 * 17 == 526101           # the strips alone
    assert int(expected.sum()) == 693258
    np.testing.assert_array_equal(mask == 0, expected)
    assert mask[1203, 1372] == 1 and mask[1204, 1372] == 0 and mask[1343, 1373] == 1 and mask[1344, 0] == 1


@needs_reference
def test_values_from_data_files_need_the_flags():
    with pytest.raises(InputError, match=r"pilatus\.geom: clen .*/LCLS/detectorPosition.*-distance"):
        read_geometry(GEOM / "pilatus.geom")
    with pytest.raises(InputError, match=r"cspad-single\.geom: photon_energy .*-energy or -lambda"):
        read_geometry(GEOM / "cspad-single.geom", clen_mm=-420.0)


def test_literal_values_units_and_defaults(tmp_path):
    path = tmp_path / "units.geom"
    path.write_text("photon_energy = 12.4 keV\nclen = 150 mm\nres = 10000\nadu_per_photon = 2\n"
                    "a/min_fs = 0\na/max_fs = 9\na/min_ss = 0\na/max_ss = 4\na/fs = -y\na/ss = +x\n"
                    "a/corner_x = 5\na/corner_y = -20\na/coffset = 0.001\n"
                    "res = 5000\nb/min_fs = 10\nb/max_fs = 19\nb/min_ss = 0\nb/max_ss = 4\nb/fs = x\nb/ss = y\n"
                    "b/corner_x = 0\nb/corner_y = 0\nb/no_index = true\nb/mask_edge_pixels = 1\n")
    geometry = read_geometry(path)
    a, b = geometry.detector
    assert geometry.clen_mm == 150.0 and geometry.photon_energy_eV == 12400.0
    assert a.pixel_size_mm == 0.1 and b.pixel_size_mm == 0.2
    assert a.origin_mm == pytest.approx((0.5, -2.0, 151.0)) and b.origin_mm == pytest.approx((0.0, 0.0, 150.0))
    assert a.fast_axis == (0.0, -1.0, 0.0) and a.slow_axis == (1.0, 0.0, 0.0)
    assert geometry.panels[1].adu_per_photon == 2.0 and geometry.masks[0].all() and not geometry.masks[1].any()
    text = path.read_text().replace("b/no_index = true\n", "")
    path.write_text(text.replace("photon_energy = 12.4 keV", "wavelength = 1.0 A"))
    geometry = read_geometry(path, clen_mm=90.0)
    assert geometry.clen_mm == 90.0 and geometry.photon_energy_eV == pytest.approx(12398.42)
    edge = np.zeros((5, 10), dtype=np.uint8)
    edge[1:4, 1:9] = 1
    np.testing.assert_array_equal(geometry.masks[1], edge)


# --------------------------------------------------------------------------- a written 4-module layout
PIXEL, NF, NS, GAP, CLEN = 0.172, 40, 30, 3, 100.0


def module_panels(shift_mm=(0.3, -0.1)) -> list[Panel]:
    """2 x 2 modules around the beam, 3-pixel gaps, fast along +x and slow along -y (image rows go down)."""
    left, top = -(NF + GAP / 2) * PIXEL + shift_mm[0], (NS + GAP / 2) * PIXEL + shift_mm[1]
    return [Panel(origin_mm=(left + col * (NF + GAP) * PIXEL, top - row * (NS + GAP) * PIXEL, CLEN),
                  fast_axis=(1, 0, 0), slow_axis=(0, -1, 0), pixel_size_mm=PIXEL, size=(NF, NS),
                  name=f"m{2 * row + col}")
            for row in (0, 1) for col in (0, 1)]


def experiment(detector) -> Experiment:
    beam = Beam(wavelength_A=1.0, direction=(0, 0, 1), polarization_axis=(1, 0, 0))
    crystal = Crystal.from_cell((50, 50, 50, 90, 90, 90), misset_deg=(10, 20, 30), cells=(3, 3, 3))
    return Experiment(beam=beam, detector=detector, crystal=crystal,
                      structure_factors=StructureFactors(grid=None, default_F=100.0, interpolate=False))


def test_four_module_geometry_renders_as_its_modules(tmp_path):
    path = tmp_path / "modules.geom"
    write_geometry(path, Detector(tuple(module_panels())), photon_energy_eV=12398.42)
    geometry = read_geometry(path)
    assert [p.name for p in geometry.detector] == ["m0", "m1", "m2", "m3"] and geometry.clen_mm == CLEN
    whole = Panel(origin_mm=module_panels()[0].origin_mm, fast_axis=(1, 0, 0), slow_axis=(0, -1, 0),
                  pixel_size_mm=PIXEL, size=(2 * NF + GAP, 2 * NS + GAP))
    big = render(experiment(whole).panel_simulation(0)).image
    rendered = experiment(geometry.detector)
    for index, (read, made) in enumerate(zip(geometry.detector, module_panels())):
        np.testing.assert_allclose(read.lab_position_mm([0, NF], [0, NS]), made.lab_position_mm([0, NF], [0, NS]),
                                   rtol=0, atol=1e-12)
        image = render(rendered.panel_simulation(index)).image
        single = render(experiment(made).panel_simulation(0)).image
        np.testing.assert_allclose(image, single, rtol=1e-6, atol=0)
        row, col = divmod(index, 2)
        np.testing.assert_allclose(image, big[row * (NS + GAP):row * (NS + GAP) + NS,
                                              col * (NF + GAP):col * (NF + GAP) + NF], rtol=1e-6, atol=0)
    assert big.max() > 20 * np.median(big)                               # there are spots to land right


def test_written_geometry_masks_and_layout(tmp_path):
    text = format_geometry(Detector(tuple(module_panels(shift_mm=(0, 0)))), clen_mm=95.0)
    assert "clen = 0.095 m" in text and "m3/min_ss = 90" in text and "m1/fs = +1.0000000000x" in text
    path = tmp_path / "masked.geom"
    path.write_text(text + "bad_gap/min_fs = 5\nbad_gap/max_fs = 6\nbad_gap/min_ss = 31\nbad_gap/max_ss = 32\n"
                           "bad_gap/panel = m1\nbad_centre/min_x = -4\nbad_centre/max_x = 4\n"
                           "bad_centre/min_y = -4\nbad_centre/max_y = 4\n")
    geometry = read_geometry(path, photon_energy_eV=9000.0)
    assert geometry.detector[0].origin_mm[2] == pytest.approx(CLEN)
    masked = [np.argwhere(mask == 0).tolist() for mask in geometry.masks]
    assert [1, 5] in masked[1] and [2, 6] in masked[1] and [0, 5] not in masked[1]
    # pixel corners x = -41.5 + fs (left modules), 1.5 + fs (right); y = 31.5 - ss (top), -1.5 - ss (bottom):
    # inside (-4, 4) are 2 columns left, 3 right, 2 rows top, 3 bottom
    assert [len(m) for m in masked] == [2 * 2, 2 * 3 + 4, 3 * 2, 3 * 3]
    assert [28, 38] in masked[0] and [29, 39] in masked[0] and [0, 0] in masked[3] and [2, 2] in masked[3]
    with pytest.raises(InputError, match="not in a plane normal to z"):
        write_geometry(tmp_path / "tilted.geom", Detector((module_panels()[0].replace(fast_axis=(1, 0, 0.1)),)))
    assert not (tmp_path / "tilted.geom").exists()


# --------------------------------------------------------------------------- malformed files
GOOD = ("clen = 0.1\nphoton_energy = 9000\nres = 5000\np/min_fs = 0\np/max_fs = 9\np/min_ss = 0\n"
        "p/max_ss = 9\np/fs = x\np/ss = y\np/corner_x = -5\np/corner_y = -5\n")


@pytest.mark.parametrize("change, message", [
    (("p/fs = x", "p/fs = x y"), r"line 8: fs: expected a direction"),
    (("p/corner_x = -5", "p/corner_x = left"), r"line 10: corner_x: expected a number, got 'left'"),
    (("p/corner_x = -5", "p/corner_x = inf"), r"line 10: corner_x: expected a finite number, got 'inf'"),
    (("p/max_ss = 9", "p/max_ss 9"), r"line 7: expected 'key = value'"),
    (("p/min_fs = 0", "p/min_fs = 1.5"), r"line 4: min_fs: expected a pixel index"),
    (("clen = 0.1", "clen = 0.1 furlong"), r"line 1: clen: expected a number or data path"),
    (("res = 5000", "res = -1"), r"line 3: res: pixels per metre must be positive"),
    (("p/corner_y = -5", "p/corner_y = -5\nbad_a/min_x = 1\nbad_a/min_fs = 2"), r"line 13: bad region bad_a mixes"),
    (("p/corner_y = -5", "p/corner_y = -5\nbad_a/wobble = 1"), r"line 12: bad_a/wobble"),
    (("p/corner_y = -5", "p/corner_y = -5\np/clen = 0.2"), r"line 12: clen is a top-level key"),
    (("p/corner_y = -5", "p/corner_y = -5\nres = 100"), r"line 12: a default after the last panel"),
    (("p/corner_x = -5\n", ""), r"panel p \(line 4\): missing corner_x"),
    (("p/ss = y", "p/ss = 2y"), r"panel p \(line 4\): ss must be one pixel long"),
    (("p/ss = y", "p/ss = +0.7x +0.7141y"), r"panel p \(line 4\): .*perpendicular"),
    (("p/corner_y = -5", "p/corner_y = -5\nbad_b/min_fs = 0\nbad_b/max_fs = 10\nbad_b/min_ss = 0\n"
      "bad_b/max_ss = 0"), r"bad region bad_b \(line 12\) reaches outside panel p"),
    (("clen = 0.1\n", ""), r"no clen \(camera length\); give the detector distance with -distance"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, change, message):
    path = tmp_path / "bad.geom"
    path.write_text(GOOD.replace(*change))
    with pytest.raises(InputError, match=rf"bad\.geom(, |: ){message}") as error:
        read_geometry(path)
    assert "\n" not in str(error.value)


def test_the_good_file_of_the_malformed_ones_reads(tmp_path):
    path = tmp_path / "good.geom"
    path.write_text(GOOD)
    assert read_geometry(path).detector[0].origin_mm == pytest.approx((-1.0, -1.0, 100.0))
    with pytest.raises(InputError, match="missing.geom: cannot read"):
        read_geometry(tmp_path / "missing.geom")


# --------------------------------------------------------------------------- the command line: --geom
def test_geom_on_the_command_line_writes_each_panels_files(tmp_path, monkeypatch, capsys):
    from arraybragg import cli
    from arraybragg.cli_experiment import frame_rotation
    monkeypatch.chdir(tmp_path)
    write_geometry(tmp_path / "m.geom", Detector(tuple(module_panels())), photon_energy_eV=12398.42)
    argv = ("--geom m.geom -cell 50 50 50 90 90 90 -misset 10 20 30 -N 3 -default_F 100 -oversample 1 "
            "-floatfile f.bin -intfile i.img -nonoise -nopgm --write-expt m.expt").split()
    assert cli.main(argv) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["m.geom", "m.expt"] + [f"f_m{i}.bin" for i in range(4)] + [f"i_m{i}.img" for i in range(4)])
    from arraybragg.models.dials import read_experiment_list
    assert [p.name for p in read_experiment_list(tmp_path / "m.expt").detector] == ["m0", "m1", "m2", "m3"]
    assert "4 panels from CrystFEL geometry" in capsys.readouterr().out
    # the same experiment from Python: MOSFLM frame (beam along +x), the file's panels turned into it
    geometry = read_geometry(tmp_path / "m.geom")
    flags = ab_experiment_from_flags(argv)
    detector = geometry.detector.rotated(frame_rotation(flags.beam.direction))
    for index in range(4):
        image = render(flags.replace(detector=detector).panel_simulation(index)).image
        written = np.fromfile(tmp_path / f"f_m{index}.bin", dtype=np.float32).reshape(NS, NF)
        np.testing.assert_array_equal(written, image)
        assert image.max() > 0
    # the SMV files share one scale: counts - 40 are proportional to photons on every panel
    ratios = []
    for index in range(4):
        counts = np.fromfile(tmp_path / f"i_m{index}.img", dtype=np.uint16, offset=512).reshape(NS, NF)
        photons = np.fromfile(tmp_path / f"f_m{index}.bin", dtype=np.float32).reshape(NS, NF)
        bright = photons > 0.05 * photons.max()
        ratios.append(np.median((counts[bright] - 40.0) / photons[bright]))
    assert max(ratios) / min(ratios) < 1.01


def ab_experiment_from_flags(argv):
    from arraybragg.models.experiment import Experiment
    kept = list(argv)
    for option in ("--geom", "--write-expt"):
        if option in kept:
            index = kept.index(option)
            del kept[index:index + 2]
    return Experiment.from_flags(kept)


@pytest.mark.parametrize("extra, message", [
    ("-roi 0 10 0 10", "-roi: not available with --geom"),
    ("-trace_pixel 1 1", "-trace_pixel: not available with --geom"),
    ("-curved_det", "-curved_det: not available"),
])
def test_geom_refuses_single_panel_flags(tmp_path, monkeypatch, capsys, extra, message):
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    write_geometry(tmp_path / "m.geom", Detector(tuple(module_panels())), photon_energy_eV=12398.42)
    argv = f"--geom m.geom -cell 50 50 50 90 90 90 -default_F 100 {extra}".split()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.geom"]


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
def test_geom_needs_the_distance_for_a_clen_in_the_data_file(tmp_path, monkeypatch, capsys):
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    argv = f"--geom {GEOM / 'cspad-single.geom'} -lambda 1.3 -cell 50 50 50 90 90 90 -default_F 100".split()
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "clen" in err and "-distance" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


@needs_reference
def test_crystfels_own_example_files_render_from_the_command_line(tmp_path, monkeypatch):
    """The unmodified Pilatus 6M (bad regions -> mask, photon energy from the file) and 64-ASIC CSPAD files."""
    from arraybragg import cli
    monkeypatch.chdir(tmp_path)
    common = "-cell 79 79 38 90 90 90 -default_F 100 -N 5 -oversample 1 -nonoise -nopgm --dtype float32".split()
    argv = f"--geom {GEOM / 'pilatus.geom'} -distance 200 -floatfile p.bin -intfile p.img".split()
    assert cli.main(argv + common) == 0
    image = np.fromfile(tmp_path / "p.bin", dtype=np.float32).reshape(2527, 2463)
    mask = read_geometry(GEOM / "pilatus.geom", clen_mm=200).masks[0]
    assert np.all(image[mask == 0] == 0) and np.all(image[mask != 0] > 0)
    argv = f"--geom {GEOM / 'cspad-single.geom'} -distance 100 -lambda 1.3 -floatfile c.bin -intfile c.img".split()
    assert cli.main(argv + common) == 0
    floats = sorted(tmp_path.glob("c_*.bin"))
    assert len(floats) == 64 and all(np.fromfile(f, dtype=np.float32).max() > 0 for f in floats)


def test_geom_nexus_file_stacks_every_module(tmp_path, monkeypatch):
    """--nexus-file with a multi-panel detector: one NXmx frame, the panels stacked along slow, one
    NXdetector_module each whose chain puts pixel (0, 0) where the panel's origin is."""
    h5py = pytest.importorskip("h5py")
    from arraybragg import cli
    from arraybragg.outputs.imagefiles import lab_to_mcstas
    from test_imagefiles import _chain_position, _text
    monkeypatch.chdir(tmp_path)
    write_geometry(tmp_path / "m.geom", Detector(tuple(module_panels())), photon_energy_eV=12398.42)
    argv = ("--geom m.geom -cell 50 50 50 90 90 90 -misset 10 20 30 -N 3 -default_F 100 -oversample 1 "
            "-floatfile f.bin -intfile i.img -noisefile n.img -nopgm --nexus-file m.nxs --nexus-int").split()
    assert cli.main(argv) == 0
    assert not list(tmp_path.glob("m_*.nxs"))
    experiment = ab_experiment_from_flags([a for a in argv if a not in ("--nexus-file", "m.nxs", "--nexus-int")])
    from arraybragg.cli_experiment import frame_rotation
    experiment = experiment.replace(detector=read_geometry(tmp_path / "m.geom").detector.rotated(
        frame_rotation(experiment.beam.direction)))
    with h5py.File(tmp_path / "m.nxs", "r") as h5:
        data, ints = h5["entry/data/data"][()], h5["entry/data/data_int"][()]
        assert data.shape == (1, 4 * NS, NF) and ints.shape == data.shape
        for index in range(4):
            floats = np.fromfile(tmp_path / f"f_m{index}.bin", dtype=np.float32).reshape(NS, NF)
            np.testing.assert_array_equal(data[0, index * NS:(index + 1) * NS], floats)
            module = f"entry/instrument/detector/module{index}/"
            assert list(h5[module + "data_origin"][()]) == [index * NS, 0]
            sim = experiment.panel_simulation(index)
            origin = _chain_position(h5, _text(h5[module + "fast_pixel_direction"].attrs["depends_on"]), np.zeros(3))
            np.testing.assert_allclose(origin, lab_to_mcstas(sim) @ sim.detector.pix0, atol=1e-12)
