"""Smoke tests of the benchmark tooling: the asv suite runs, compare_c.py parses, times and compares.

Speed is never asserted: these only check that every benchmark can set up and
run once (on a few pixels) and that compare_c.py measures and reports what it says.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE

REPO = Path(__file__).resolve().parent.parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = _load("bench_render")
compare_c = _load("compare_c")

BENCHMARK_PREFIXES = ("time_", "peakmem_", "track_")


def _benchmark_classes():
    """The classes asv discovers: public, with time_/peakmem_/track_ methods."""
    return [cls for name, cls in vars(bench).items()
            if inspect.isclass(cls) and not name.startswith("_") and cls.__module__ == bench.__name__
            and any(attr.startswith(BENCHMARK_PREFIXES) for attr in dir(cls))]


def _tiny(sim):
    """The same simulation restricted to a 3 x 3 pixel ROI at the detector centre."""
    f, s = sim.detector.fpixels // 2, sim.detector.spixels // 2
    return dataclasses.replace(sim, sampling=dataclasses.replace(sim.sampling, roi=(f, f + 2, s, s + 2)))


# ----------------------------------------------------------------------------- asv suite

def test_asv_config_points_at_this_suite():
    config = json.loads((REPO / "asv.conf.json").read_text())
    assert config["project"] == "arraybragg" and config["repo"] == "."
    assert config["benchmark_dir"] == "benchmarks"
    assert config["environment_type"] in ("existing", "virtualenv")
    for key in ("results_dir", "html_dir", "env_dir"):
        assert config[key].startswith(".asv/"), key


def test_suite_covers_every_case_on_both_backends_and_dtypes():
    classes = _benchmark_classes()
    assert {cls.case for cls in classes} == {"cubic", "triclinic_mosaic", "sup_roi", "sup_full"}
    for cls in classes:
        assert cls.params == (["numpy", "cupy"], ["float64", "float32"])
        assert cls.param_names == ["backend", "dtype"]
    assert any(name.startswith("peakmem_") for name in dir(bench.RenderSupFull))


def test_every_benchmark_sets_up_and_runs_once_on_a_few_pixels(monkeypatch):
    real_build = bench.build_case
    monkeypatch.setattr(bench, "build_case", lambda name: _tiny(real_build(name)))
    ran, skipped = set(), {}
    for cls in _benchmark_classes():
        for params in itertools.product(*cls.params):
            instance = cls()
            try:
                instance.setup(*params)
            except NotImplementedError as exc:   # asv's skip: no CUDA device, or no corpus
                skipped[(cls.case,) + params] = str(exc)
                continue
            for name in dir(cls):
                if name.startswith(BENCHMARK_PREFIXES):
                    value = getattr(instance, name)(*params)
                    if name.startswith("track_"):
                        assert value > 0, (cls.__name__, name, params)
            ran.add((cls.case,) + params)
    for case in ("cubic", "triclinic_mosaic"):
        assert {(case, "numpy", "float64"), (case, "numpy", "float32")} <= ran
    for key, reason in skipped.items():
        assert key[1] == "cupy" or key[0].startswith("sup_"), (key, reason)


def test_cupy_without_a_device_is_an_asv_skip():
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
    except Exception:
        with pytest.raises(NotImplementedError, match="CuPy"):
            bench.require_backend("cupy")
    else:
        pytest.skip("CuPy with a CUDA device is present")
    bench.require_backend("numpy")


def test_missing_corpus_is_an_asv_skip(monkeypatch, tmp_path):
    monkeypatch.setenv("ARRAYBRAGG_REFERENCE", str(tmp_path))
    with pytest.raises(NotImplementedError, match="sup_roi"):
        bench.case_arguments("sup_roi")


# ----------------------------------------------------------------------------- compare_c.py

TINY_ARGS = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 16"


def _fake_reference(root: Path) -> Path:
    case = root / "reference" / "cases" / "tiny"
    case.mkdir(parents=True)
    (root / "reference" / "inputs").mkdir()
    (case / "case.json").write_text(json.dumps({
        "id": "tiny", "args": TINY_ARGS, "output_flags": "-floatfile float.bin -intfile int.img -nonoise -nopgm",
        "fast_pixels": 16, "slow_pixels": 16}))
    return root / "reference"


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


def test_arguments_defaults_and_refusals(tmp_path):
    reference = _fake_reference(tmp_path)
    fake = _script(tmp_path / "nanoBragg", "#!/bin/sh\nexit 0\n")
    args = compare_c.parse_args(["--c-bin", str(fake), "--reference", str(reference), "--case", "tiny"])
    assert (args.case, args.repeats, args.dtypes, args.default_mode) == ("tiny", 5, ["float64", "float32"], False)
    assert args.threads == compare_c.default_threads() >= 1
    args = compare_c.parse_args(["--c-bin", str(fake), "--reference", str(reference), "--case", "tiny",
                                 "--dtypes", "float32", "--repeats", "2", "--threads", "3"])
    assert (args.dtypes, args.repeats, args.threads) == (["float32"], 2, 3)
    for bad in (["--dtypes", "float16"], ["--repeats", "0"], ["--threads", "0"], ["--case", "nothing"],
                ["--c-bin", str(tmp_path / "absent")]):
        with pytest.raises(SystemExit):
            compare_c.parse_args(["--c-bin", str(fake), "--reference", str(reference), "--case", "tiny"] + bad)


def test_medians_and_extremes():
    assert compare_c.summarize([3.0, 1.0, 2.0]) == (2.0, 1.0, 3.0)
    assert compare_c.summarize([4.0, 1.0, 3.0, 2.0]) == (2.5, 1.0, 4.0)


def test_image_errors_use_the_corpus_tolerances():
    reference = np.array([1000.0, 10.0, 1e-7, 0.0], dtype=np.float32)
    image = reference.copy()
    image[0] = 1000.0 * (1 + 3e-6)   # relative 3e-6: over 1e-6, under 1e-4
    image[2] = 5e-7                  # below 1e-9 x max: no relative error, absolute 4e-7 < floor 1e-6
    max_rel, over = compare_c.image_errors(image, reference, "float64")
    assert max_rel == pytest.approx(3e-6, rel=1e-2)
    assert over == 1
    assert compare_c.image_errors(image, reference, "float32") == (pytest.approx(3e-6, rel=1e-2), 0)
    image[1] = 10.5                  # 5% of a pixel far under the float32 floor (1e-3 x 1000 = 1)
    assert compare_c.image_errors(image, reference, "float32") == (pytest.approx(0.05, rel=1e-5), 0)


def test_timed_run_reports_each_childs_own_peak_rss_and_exit_status(tmp_path):
    held_here = b"x" * (256 << 20)   # a large parent must not inflate its children's peaks
    big = compare_c.timed_run([sys.executable, "-c", "b = b'y' * (96 << 20); print('big'); raise SystemExit(3)"],
                              tmp_path)
    small = compare_c.timed_run([sys.executable, "-c", "print('small')"], tmp_path)
    assert len(held_here) == 256 << 20
    assert (big.returncode, small.returncode) == (3, 0)
    assert (big.stdout.strip(), small.stdout.strip()) == ("big", "small")
    assert big.peak_rss_kib >= 96 * 1024
    assert small.peak_rss_kib < 64 * 1024
    assert big.seconds > 0 and small.seconds > 0


def test_one_alternating_round_against_a_fake_c_binary(tmp_path, capsys):
    reference = _fake_reference(tmp_path)
    # The "C" is arraybragg itself (float64), which also records the OMP_NUM_THREADS it was given.
    fake = _script(tmp_path / "nanoBragg",
                   f'#!/bin/sh\necho "$OMP_NUM_THREADS" > "{tmp_path}/omp.txt"\n'
                   f'exec "{sys.executable}" -m arraybragg "$@"\n')
    status = compare_c.main(["--c-bin", str(fake), "--reference", str(reference), "--case", "tiny",
                             "--repeats", "1", "--dtypes", "float32", "--threads", "1"])
    assert status == 0
    assert (tmp_path / "omp.txt").read_text().strip() == "1"
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("round 1/1  nanoBragg (C)") for line in lines)
    table = {line.split("  ")[0].strip(): line.split() for line in lines
             if line.startswith(("nanoBragg (C) ", "arraybragg float32 "))}
    assert set(table) == {"nanoBragg (C)", "arraybragg float32"}
    assert table["arraybragg float32"][-1] == "0"          # no pixel outside the float32 tolerance
    assert float(table["arraybragg float32"][5]) > 0       # C/py ratio


def test_named_workloads_are_valid_command_lines(tmp_path):
    """Every --workload parses and builds (a corpus-independent check of the issue's workloads)."""
    from arraybragg import build_simulation, parse_args

    reference = _fake_reference(tmp_path)
    fake = _script(tmp_path / "nanoBragg", "#!/bin/sh\nexit 0\n")
    args = compare_c.parse_args(["--c-bin", str(fake), "--reference", str(reference), "--workload", "still"])
    case_args, output_flags, float_name = compare_c.case_command_line(args.reference, args.case, args.workload)
    assert float_name == "float.bin" and output_flags[:2] == ["-floatfile", "float.bin"]
    sim = build_simulation(parse_args(case_args))
    assert sim.detector.shape == (3072, 3072) and sim.sampling.oversample == 2
    for name, text in compare_c.WORKLOADS.items():
        if "A.mat" in text:
            continue  # needs the corpus inputs
        settings = parse_args(text.split())
        assert build_simulation(settings).detector.fpixels in (1024, 2048, 3072), name
    with pytest.raises(SystemExit):
        compare_c.parse_args(["--c-bin", str(fake), "--reference", str(reference), "--workload", "nothing"])


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
def test_gpu_check_dry_run_on_numpy(tmp_path):
    """gpu_check.py's checks and report, run on the NumPy backend for one small case."""
    gpu_check = _load("gpu_check")
    report = tmp_path / "report.json"
    status = gpu_check.main(["--backend", "numpy", "--cases", "sf_interp_fallback", "--skip-slow",
                             "--reference", str(REFERENCE),
                             "--still-pixels", "32", "--json", str(report)])
    result = json.loads(report.read_text())
    assert status == 0 and result["passed"] == result["total"] == 4   # default and --c-parity, two dtypes
    assert {row["dtype"] for row in result["cases"]} == {"float64", "float32"}
    assert [t["dtype"] for t in result["timings"]["still_32"]] == ["float64", "float32"]
