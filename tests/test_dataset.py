"""Datasets on Dask: description checks, per-frame variation against the flags, cluster runs equal to
single-process renders, a killed worker, a resumed run, export to single-image files."""
from __future__ import annotations

import json
import os
import signal

import numpy as np
import pytest

pytest.importorskip("distributed")
pytest.importorskip("zarr")

import arraybragg  # noqa: E402
from arraybragg.io import smv  # noqa: E402
from arraybragg.dataset import (build_base, export_frames, finished_frames, frame_simulation, load_labels,  # noqa: E402
                                load_spec, read_frame, render_frame, run_dataset, spec_from_dict)
from arraybragg.dataset import cli as dataset_cli  # noqa: E402
from arraybragg.dataset.frames import frame_draws  # noqa: E402
from arraybragg.dataset.spec import Jitter  # noqa: E402
from arraybragg.errors import InputError  # noqa: E402

BASE = "-cell 79 79 38 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 64 -pixel 0.4"


def stills(frames=8, **jitter):
    jitter = jitter or dict(cell=0.01, crystal_size=0.2, wavelength=0.002, fluence=0.3, distance=1.0)
    return spec_from_dict({"dataset": {"frames": frames, "seed": 7, "base": BASE},
                           "orientation": {"mode": "stills"}, "jitter": jitter, "noise": {"poisson": True}})


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as c:
        yield c


def assert_matches_single_process(out, spec, indices):
    base = build_base(spec)
    labels = load_labels(out)
    for index in indices:
        frame = render_frame(base, spec, index)
        image, noise = read_frame(out, index)
        np.testing.assert_array_equal(image, frame.image)
        np.testing.assert_array_equal(noise, frame.noise)
        for name, value in frame.labels.items():
            np.testing.assert_array_equal(labels[name][index], np.asarray(value, dtype=labels[name].dtype), name)


# ----------------------------------------------------------------------------- the description

@pytest.mark.parametrize("raw, key", [
    ({"dataset": {"frames": 0, "seed": 1, "base": BASE}}, "dataset.frames"),
    ({"dataset": {"seed": 1, "base": BASE}}, "dataset.frames"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "jitter": {"cel": 0.1}}, "jitter.cel"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "jitter": {"cell": -0.1}}, "jitter.cell"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "jitter": {"fluence": "big"}}, "jitter.fluence"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "orientation": {"mode": "spin"}}, "orientation.mode"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "orientation": {"oscillation": 1.0}},
     "orientation.oscillation"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE + " -seed 5"}}, "dataset.base: -seed"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE + " -floatimage x.bin"}}, "dataset.base: -floatimage"),
    ({"dataset": {"frames": 2, "seed": -1, "base": BASE}}, "dataset.seed"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "noise": {"poisson": 1}}, "noise.poisson"),
    ({"dataset": {"frames": 2, "seed": 1, "base": BASE}, "beam": {}}, "beam: unknown table"),
])
def test_bad_descriptions_are_refused_naming_the_key(raw, key):
    with pytest.raises(InputError) as info:
        spec_from_dict(raw)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message


def test_cli_refuses_a_bad_spec_in_one_line_and_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('[dataset]\nframes = 4\nseed = 1\nbase = "%s"\n[jitter]\nwavelength = "x"\n' % BASE)
    assert dataset_cli.main([str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml: jitter.wavelength: expected a number" in err
    assert not (tmp_path / "out").exists()
    (tmp_path / "broken.toml").write_text("[dataset\n")
    assert dataset_cli.main([str(tmp_path / "broken.toml"), "--out", str(tmp_path / "out")]) == 2
    assert "not valid TOML" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [(" -hkl missing.hkl", "dataset.base: -hkl: cannot open"),
                                            (" -bogus 3", "dataset.base: unknown flag '-bogus'")])
def test_a_bad_base_command_line_is_refused_before_any_work(tmp_path, extra, message):
    spec = spec_from_dict({"dataset": {"frames": 2, "seed": 1, "base": BASE + extra}}, base_dir=str(tmp_path))
    with pytest.raises(InputError, match=message):
        run_dataset(spec, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_paths_in_base_are_relative_to_the_spec(tmp_path):
    (tmp_path / "spec.toml").write_text('[dataset]\nframes = 1\nseed = 1\nbase = "-hkl P1.hkl -cell 50"\n')
    spec = load_spec(tmp_path / "spec.toml")
    assert spec.base[spec.base.index("-hkl") + 1] == str(tmp_path / "P1.hkl")


# ----------------------------------------------------------------------------- per-frame variation

def test_frame_draws_depend_only_on_seed_and_index():
    spec = stills(frames=2000)
    first = frame_draws(spec, 5)
    assert np.array_equal(first[0], frame_draws(spec, 5)[0]) and first[2] == frame_draws(spec, 5)[2]
    assert not np.array_equal(first[0], frame_draws(spec, 6)[0])
    rotations = np.stack([frame_draws(spec, i)[0] for i in range(2000)])
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rotations.shape),
                               atol=1e-12)
    assert np.allclose(np.linalg.det(rotations), 1.0)
    # uniform on SO(3) (Haar): every matrix element averages 0, with spread 1/3 (so sd of the mean ~0.013)
    assert np.abs(rotations.mean(axis=0)).max() < 0.06
    np.testing.assert_allclose((rotations ** 2).mean(axis=0), 1 / 3, atol=0.04)


def test_rotation_frame_equals_the_cli_flags():
    spec = spec_from_dict({"dataset": {"frames": 4, "seed": 3, "base": BASE},
                           "orientation": {"mode": "rotation", "start": 10.0, "oscillation": 0.5, "phisteps": 3}})
    frame = render_frame(build_base(spec), spec, 3)
    assert frame.labels["phi_deg"] == pytest.approx(11.5) and frame.labels["osc_deg"] == pytest.approx(0.5)
    flags = (BASE + " -phi 11.5 -osc 0.5 -phisteps 3").split()
    expected = arraybragg.render_simulation(arraybragg.build_simulation(arraybragg.parse_args(flags)), threads=1).image
    np.testing.assert_array_equal(frame.image, expected)


def test_jittered_frame_equals_the_cli_flags():
    spec = spec_from_dict({"dataset": {"frames": 4, "seed": 11, "base": BASE}, "orientation": {"mode": "fixed"},
                           "jitter": {"cell": 0.02, "crystal_size": 0.3, "wavelength": 0.01, "fluence": 0.5,
                                      "distance": 3.0}})
    sim, labels = frame_simulation(build_base(spec), spec, 2)
    a, b, c = labels["cell"][:3]
    assert labels["cell"][3:] == pytest.approx([90, 90, 90]) and abs(a / 79 - 1) > 1e-4
    flags = BASE.split() + ["-cell", repr(a), repr(b), repr(c), "90", "90", "90", "-N", "1",
                            "-Na", "%d" % labels["N"][0], "-Nb", "%d" % labels["N"][1], "-Nc", "%d" % labels["N"][2],
                            "-lambda", repr(labels["wavelength_A"]), "-fluence", repr(labels["fluence"]),
                            "-distance", repr(labels["distance_mm"])]
    expected = arraybragg.build_simulation(arraybragg.parse_args(flags))
    for name in ("pix0", "distance", "close_distance", "Fbeam", "Sbeam", "ORGX", "ORGY"):
        np.testing.assert_allclose(getattr(sim.detector, name), getattr(expected.detector, name), rtol=1e-12,
                                   atol=1e-15, err_msg=name)
    for name in ("a", "b", "c", "a_star", "b_star", "c_star", "Na", "Nb", "Nc", "V_cell"):
        np.testing.assert_allclose(getattr(sim.crystal, name), getattr(expected.crystal, name), rtol=1e-12,
                                   atol=1e-30, err_msg=name)
    np.testing.assert_allclose(sim.beam.wavelengths, expected.beam.wavelengths, rtol=1e-15)
    assert sim.beam.fluence == pytest.approx(expected.beam.fluence, rel=1e-15)
    np.testing.assert_allclose(arraybragg.render_simulation(sim, threads=1).image, arraybragg.render_simulation(expected, threads=1).image,
                               rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------- runs on Dask

def test_cluster_run_equals_single_process_and_resumes_only_what_is_missing(tmp_path, client):
    spec = stills(frames=8)
    out = tmp_path / "ds"
    report = run_dataset(spec, out, client=client, progress=False)
    assert sorted(report.rendered) == list(range(8)) and report.skipped == []
    assert_matches_single_process(out, spec, range(8))
    labels = load_labels(out)
    assert len(set(labels["noise_seed"])) == 8 and np.ptp(labels["distance_mm"]) > 0.1
    # lose three markers and damage one stored chunk (its marker stays: the checksum must catch it)
    for index in (1, 4, 6):
        os.unlink(out / "done" / ("%08d.json" % index))
    import zarr
    zarr.open_group(str(out / "dataset.zarr"), mode="r+")["images"][2] = np.ones((64, 64), np.float32)
    assert finished_frames(out, 8) == {0, 3, 5, 7}
    again = run_dataset(spec, out, client=client, progress=False)
    assert sorted(again.rendered) == [1, 2, 4, 6] and again.skipped == [0, 3, 5, 7]
    assert_matches_single_process(out, spec, range(8))
    third = run_dataset(spec, out, client=client, progress=False)
    assert third.rendered == [] and third.skipped == list(range(8))


def test_a_different_description_is_not_mixed_into_a_dataset(tmp_path, client):
    run_dataset(stills(frames=2), tmp_path, client=client, progress=False)
    with pytest.raises(InputError, match="holds a different dataset"):
        run_dataset(stills(frames=3), tmp_path, client=client, progress=False)


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    from distributed import Client, LocalCluster
    spec = spec_from_dict({"dataset": {"frames": 8, "seed": 5, "base": BASE + " -mosaic 1 -mosaic_dom 20"},
                           "orientation": {"mode": "stills"}, "noise": {"poisson": True}})
    killed = []

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as c:
        def kill_one(index):
            if not killed:  # kill a worker that holds frames still to render
                address, tasks = max(c.processing().items(), key=lambda item: len(item[1]))
                killed.append((len(os.listdir(tmp_path / "done")), len(tasks)))
                os.kill(c.run(os.getpid, workers=[address])[address], signal.SIGKILL)
        report = run_dataset(spec, tmp_path, client=c, progress=False, on_frame=kill_one)
    assert killed and killed[0][0] < 8 and killed[0][1] > 0  # frames were still to do, some on that worker
    # each frame reported once: rendered, or (when the killed worker had stored it just before dying)
    # verified by the retried task and skipped
    assert sorted(report.rendered + report.skipped) == list(range(8))
    markers = sorted(os.listdir(tmp_path / "done"))
    assert markers == ["%08d.json" % i for i in range(8)]
    assert finished_frames(tmp_path, 8) == set(range(8))
    assert_matches_single_process(tmp_path, spec, range(8))
    assert json.loads((tmp_path / "done" / markers[0]).read_text())["index"] == 0


def test_export_writes_single_image_files(tmp_path, client, capsys):
    spec = stills(frames=4)
    run_dataset(spec, tmp_path / "ds", client=client, progress=False)
    assert dataset_cli.main(["export", str(tmp_path / "ds"), "--frames", "1:3", "--to", str(tmp_path / "x"),
                             "--formats", "float,smv,noise"]) == 0
    labels = load_labels(tmp_path / "ds")
    for index in (1, 2):
        image, noise = read_frame(tmp_path / "ds", index)
        stem = tmp_path / "x" / ("frame_%06d" % index)
        np.testing.assert_array_equal(np.fromfile(str(stem) + ".bin", dtype=np.float32).reshape(64, 64), image)
        np.testing.assert_array_equal(smv.read_smv(str(stem) + "_noise.img").data, noise)
        header = smv.read_smv(str(stem) + ".img").header
        assert smv.header_value(header, "DISTANCE") == pytest.approx(labels["distance_mm"][index], abs=1e-3)
        assert smv.header_value(header, "WAVELENGTH") == pytest.approx(labels["wavelength_A"][index], abs=1e-5)
    assert not (tmp_path / "x" / "frame_000000.bin").exists()
    with pytest.raises(InputError, match="--frames"):
        export_frames(tmp_path / "ds", [7], tmp_path / "y")


@pytest.mark.parametrize("name, mode", [("stills.toml", "stills"), ("rotation.toml", "rotation")])
def test_documented_example_specs_are_valid(name, mode):
    from pathlib import Path
    spec = load_spec(Path(__file__).resolve().parent.parent / "docs" / "examples" / name)
    assert spec.frames > 1 and spec.poisson and spec.orientation.mode == mode
    assert build_base(spec).sim.detector.shape == (512, 512)


def test_cli_runs_a_local_cluster_prints_the_dashboard_and_resumes(tmp_path, capsys):
    (tmp_path / "s.toml").write_text('[dataset]\nframes = 2\nseed = 3\nbase = "%s"\n' % BASE)
    args = [str(tmp_path / "s.toml"), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert dataset_cli.main(args) == 0
    text = capsys.readouterr().out
    assert "2 frames, 0 marked finished" in text and "Dask dashboard: http://" in text
    assert "rendered 2 frames" in text and "0 were finished already" in text
    assert dataset_cli.main(args) == 0
    text = capsys.readouterr().out
    assert "2 frames, 2 marked finished" in text and "rendered 0 frames" in text and "2 were finished already" in text
    assert dataset_cli.main(args[:3] + ["--workers", "0"]) == 2


@pytest.mark.parametrize("extra", ["", " -xds", " -adxv", " -dials -pivot sample", " -detector_rotx 5 -twotheta 10",
                                   " -xds -detector_roty 4"])
def test_distance_jitter_places_the_detector_as_the_distance_flag(extra):
    spec = spec_from_dict({"dataset": {"frames": 3, "seed": 2, "base": BASE + extra},
                           "orientation": {"mode": "fixed"}, "jitter": {"distance": 5.0}})
    sim, labels = frame_simulation(build_base(spec), spec, 1)
    delta_mm = 5.0 * frame_draws(spec, 1)[1][8]  # the distance normal: the 9th of the frame's draws
    assert abs(delta_mm) > 0.1
    flags = (BASE + extra).split() + ["-distance", repr(float(100.0 + delta_mm))]
    expected = arraybragg.build_simulation(arraybragg.parse_args(flags)).detector
    for name in ("pix0", "distance", "close_distance", "Fbeam", "Sbeam", "Fclose", "Sclose", "ORGX", "ORGY"):
        np.testing.assert_allclose(getattr(sim.detector, name), getattr(expected, name), rtol=1e-10, atol=1e-13,
                                   err_msg=name)
    assert labels["distance_mm"] == pytest.approx(expected.distance * 1e3, rel=1e-12)


def test_cell_jitter_of_a_triclinic_missets_crystal_equals_the_cell_flag():
    base = "-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 64"
    spec = spec_from_dict({"dataset": {"frames": 2, "seed": 4, "base": base}, "orientation": {"mode": "fixed"},
                           "jitter": {"cell": 0.03}})
    sim, labels = frame_simulation(build_base(spec), spec, 1)
    lengths = [float(x) for x in labels["cell"][:3]]
    _, base_labels = frame_simulation(build_base(spec), spec.__class__(**{**spec.__dict__, "jitter": Jitter()}), 1)
    # angles kept (as nanoBragg builds this cell: 75.039 85.014 95.008), lengths changed
    assert labels["cell"][3:] == pytest.approx(base_labels["cell"][3:], rel=1e-12) and abs(lengths[2] / 90 - 1) > 1e-3
    flags = base.replace("-cell 70 80 90", "-cell %r %r %r" % tuple(lengths)).split()
    expected = arraybragg.build_simulation(arraybragg.parse_args(flags)).crystal
    for name in ("a", "b", "c", "a_star", "b_star", "c_star", "V_cell"):
        np.testing.assert_allclose(getattr(sim.crystal, name), getattr(expected, name), rtol=1e-10, atol=1e-22,
                                   err_msg=name)


def test_readme_example_spec_is_valid():
    import re
    import tomllib
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    block = re.search(r"cat > stills.toml <<'TOML'\n(.*?)\nTOML\n", text, re.S)
    assert block, "README.md lost its dataset example"
    spec = spec_from_dict(tomllib.loads(block.group(1)))
    assert spec.frames == 8 and spec.poisson and build_base(spec).sim.detector.shape == (128, 128)


# ----------------------------------------------------------------------------- [response]: detector response

RESPONSE = {"readout_noise": 3.0, "flicker": 0.05, "calibration": 0.1, "gain": 2.0, "adc_offset": 10.0,
            "psf": "gauss", "psf_fwhm": 600.0}


def with_response(frames=4, response=None, **tables):
    raw = {"dataset": {"frames": frames, "seed": 7, "base": BASE}, "response": response or RESPONSE}
    return spec_from_dict({**raw, **tables})


@pytest.mark.parametrize("response, key", [
    ({"readout": 3.0}, "response.readout: unknown key"),
    ({"readout_noise": -1.0}, "response.readout_noise"),
    ({"gain": "x"}, "response.gain"),
    ({"gain": 0.0}, "response.gain"),
    ({"bits": 12}, "response.bits"),
    ({"psf": "box"}, "response.psf"),
    ({"psf_fwhm": 100.0}, "response.psf_fwhm: only used with psf"),
    ({"psf": "fiber", "psf_method": "slow"}, "response.psf_method"),
    ({"psf": "gauss", "psf_radius": -2}, "response.psf_radius"),
    ({"calib_seed": 0}, "response.calib_seed"),
    ({"calib_seed": True}, "response.calib_seed"),
])
def test_bad_response_keys_are_refused_in_one_line(response, key):
    with pytest.raises(InputError) as info:
        with_response(response=response)
    message = str(info.value)
    assert message.startswith(key) and "\n" not in message


def test_a_bad_response_table_in_a_file_names_file_and_key(tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_text('[dataset]\nframes = 2\nseed = 1\nbase = "%s"\n[response]\nflicker = -0.1\n' % BASE)
    assert dataset_cli.main([str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml: response.flicker: expected >= 0, got -0.1" in err
    assert not (tmp_path / "out").exists()


def test_response_frame_equals_apply_response_with_the_frames_seeds():
    from arraybragg.render.renderer import Renderer
    from arraybragg.response import PSF, DetectorResponse, apply_response
    spec = with_response(jitter={"fluence": 0.3})
    base = build_base(spec)
    frame = render_frame(base, spec, 2)
    calib_seed = int(np.random.default_rng(np.random.SeedSequence(7)).integers(1, 2 ** 31 - 1))
    assert frame.labels["noise_seed"] == frame_draws(spec, 2)[2] and frame.labels["calib_seed"] == calib_seed
    fwhm_pixels = float(np.float32(600e-6)) / 0.4e-3
    assert frame.labels["psf_fwhm_pixels"] == pytest.approx(1.5) and frame.labels["adc_offset"] == 10.0
    single, _ = frame_simulation(base, spec, 2)
    image = Renderer(single, backend=base.backend, policy=base.dtype, threads=1).render().image
    np.testing.assert_array_equal(frame.image, image)
    expected = apply_response(image, DetectorResponse(
        scale=1.0, gain=2.0, adc_offset=10.0, readout_noise=3.0, flicker=0.05, calibration=0.1,
        seed=-frame.labels["noise_seed"], calib_seed=-calib_seed, psf=PSF("gauss", fwhm_pixels),
        fixed_calibration=True)).noise_image
    assert frame.noise.dtype == np.uint16
    np.testing.assert_array_equal(frame.noise, expected)
    assert 5.0 < frame.noise.std() and frame.noise.min() < 10  # readout noise around the offset
    # an explicit calib_seed is taken as -calib_seed takes it; bits = 32 stores 32-bit integers
    other = with_response(response={**RESPONSE, "calib_seed": 99, "bits": 32}, jitter={"fluence": 0.3})
    wide = render_frame(build_base(other), other, 2)
    assert wide.labels["calib_seed"] == 99 and wide.noise.dtype == np.uint32
    np.testing.assert_array_equal(wide.noise, apply_response(image, DetectorResponse(
        scale=1.0, gain=2.0, adc_offset=10.0, readout_noise=3.0, flicker=0.05, calibration=0.1,
        seed=-frame.labels["noise_seed"], calib_seed=-99, psf=PSF("gauss", fwhm_pixels), bits=32,
        fixed_calibration=True)).noise_image)


def test_fixed_calibration_is_one_pattern_whatever_the_shot_seed():
    from arraybragg.response import DetectorResponse, apply_response
    flat = np.full((32, 32), 1e4, np.float32)

    def noise(seed, fixed):
        response = DetectorResponse(fluence=None, calibration=0.3, seed=seed, calib_seed=-77,
                                    fixed_calibration=fixed)
        return apply_response(flat, response).noise_image.astype(np.float64).ravel()
    # Poisson sd 100 against a calibration sd of 3000 photons: the same pattern correlates ~0.999
    assert np.corrcoef(noise(-5, True), noise(-6, True))[0, 1] > 0.99
    assert abs(np.corrcoef(noise(-5, False), noise(-6, False))[0, 1]) < 0.2  # noisify's shared table
    assert not np.array_equal(noise(-5, True), noise(-6, True))


def test_response_frames_differ_in_noise_and_reproduce_under_another_worker_count(tmp_path, client):
    from distributed import Client, LocalCluster
    spec = with_response(frames=4, orientation={"mode": "fixed"})  # the same float image in every frame
    run_dataset(spec, tmp_path / "two", client=client, progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            Client(cluster) as one:
        run_dataset(spec, tmp_path / "one", client=one, progress=False)
    assert_matches_single_process(tmp_path / "two", spec, range(4))
    for index in range(4):
        np.testing.assert_array_equal(read_frame(tmp_path / "one", index)[1], read_frame(tmp_path / "two", index)[1])
    images = [read_frame(tmp_path / "two", i)[0] for i in range(4)]
    noises = [read_frame(tmp_path / "two", i)[1] for i in range(4)]
    assert all(np.array_equal(images[0], image) for image in images)
    assert all(not np.array_equal(noises[0], noise) for noise in noises[1:])
    labels = load_labels(tmp_path / "two")
    assert len(set(labels["noise_seed"])) == 4 and len(set(labels["calib_seed"])) == 1
    assert set(labels["readout_noise"]) == {3.0} and set(labels["gain"]) == {2.0}


def test_export_writes_response_noise_in_16_and_32_bits(tmp_path, client):
    for bits in (16, 32):
        spec = with_response(frames=2, response={**RESPONSE, "bits": bits})
        run_dataset(spec, tmp_path / str(bits), client=client, progress=False)
        export_frames(tmp_path / str(bits), [1], tmp_path / ("x%d" % bits), ["noise"])
        raw = (tmp_path / ("x%d" % bits) / "frame_000001_noise.img").read_bytes()
        header = raw[:512].decode("ascii")
        assert ("TYPE=unsigned_short;" if bits == 16 else "TYPE=long_integer;") in header
        noise = read_frame(tmp_path / str(bits), 1)[1]
        assert noise.dtype == (np.uint16 if bits == 16 else np.uint32)
        np.testing.assert_array_equal(np.frombuffer(raw[512:], dtype=noise.dtype).reshape(64, 64), noise)


def test_response_frame_without_calibration_equals_the_main_command(tmp_path, monkeypatch):
    import io
    from arraybragg import cli
    response = {key: value for key, value in RESPONSE.items() if key != "calibration"}
    spec = with_response(frames=2, response=response, orientation={"mode": "fixed"})
    frame = render_frame(build_base(spec), spec, 1)
    monkeypatch.chdir(tmp_path)
    flags = BASE.split() + ["-seed", str(frame.labels["noise_seed"]), "-adc", "10", "-readout_noise", "3",
                            "-flicker", "0.05", "-gain", "2", "-psf", "gauss", "-psf_fwhm", "600",
                            "--threads", "1", "-noisefile", "n.img"]
    assert cli.run(flags, out=io.StringIO()) == 0
    np.testing.assert_array_equal(smv.read_smv("n.img").data, frame.noise)


def test_response_defects_are_the_same_pixels_in_every_frame():
    from arraybragg.response import DetectorResponse, apply_response
    from arraybragg.response.defects import Defects
    spec = with_response(frames=3, response={"readout_noise": 1.0, "adc_offset": 40.0, "hot_pixels": 0.02,
                                             "dead_pixels": 0.02, "beamstop": 2.0})
    base = build_base(spec)
    frames = [render_frame(base, spec, index) for index in range(3)]
    labels = frames[0].labels
    generator = np.random.default_rng(np.random.SeedSequence(7))
    assert [labels["calib_seed"], labels["hotpix_seed"], labels["badpix_seed"]] == \
        [int(generator.integers(1, 2 ** 31 - 1)) for _ in range(3)]
    # the direct beam hits 13.2 mm (33 pixels) from the first pixel's corner along fast and slow: nanoBragg's
    # default beam centre (detsize + pixel) / 2 plus the ADXV convention's half pixel
    defects = Defects(hot_fraction=0.02, hotpix_seed=-labels["hotpix_seed"], dead_fraction=0.02,
                      badpix_seed=-labels["badpix_seed"], beamstop_radius=5.0, beam_fast=33.0, beam_slow=33.0)
    expected = apply_response(frames[1].image, DetectorResponse(
        readout_noise=1.0, adc_offset=40.0, calibration=0.0, seed=-frames[1].labels["noise_seed"],
        defects=defects, fixed_calibration=True)).noise_image
    np.testing.assert_array_equal(frames[1].noise, expected)
    hot, dead = (frames[0].noise == 65535), (frames[0].noise == 0)
    assert 40 < hot.sum() < 130 and 40 < dead.sum() < 130  # 2% of 4096 pixels each
    for frame in frames[1:]:
        np.testing.assert_array_equal(frame.noise == 65535, hot)
        np.testing.assert_array_equal(frame.noise == 0, dead)
    slow, fast = np.indices((64, 64))
    shadow = ((fast + 0.5 - 33) ** 2 + (slow + 0.5 - 33) ** 2 <= 25) & ~hot & ~dead
    assert frames[0].image[shadow].max() > 0.0  # photons fell there; the beamstop took them
    assert np.abs(frames[0].noise[shadow].astype(float) - 40.0).max() < 6.0
