"""The command line end to end: ``arraybragg.cli.main`` in a scratch directory, and ``python -m arraybragg``."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, image_mismatch

from arraybragg import cli
from arraybragg.io import smv

SMALL = "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -lambda 1 -distance 100 -detpixels 48"
DEFAULT_NAMES = ("floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img")


def readme_example() -> list[str]:
    """The arguments of the render command in README.md's quick start (no input files)."""
    text = (REPO / "README.md").read_text()
    match = re.search(r"\.venv/bin/arraybragg (-cell [^\n`]*)", text)
    assert match, "README.md lost its example command"
    return match.group(1).split()


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_main(capsys, argv) -> tuple[int, str]:
    status = cli.main([str(a) for a in argv])
    return status, capsys.readouterr().err


def run_module(argv, cwd) -> subprocess.CompletedProcess:
    """``python -m arraybragg ARGV`` with this checkout first on the path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "arraybragg", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def floats(path, shape) -> np.ndarray:
    return np.fromfile(path, dtype=np.float32).reshape(shape)


# --- a normal render ----------------------------------------------------------------------------

def test_readme_example_renders(workdir, capsys):
    argv = readme_example()
    assert "-floatfile" in argv and "-nonoise" in argv
    status, err = run_main(capsys, argv)
    assert status == 0, err
    image = floats(workdir / "example.bin", (256, 256))
    assert image.max() > 0 and np.isfinite(image).all()
    written = smv.read_smv(workdir / "example.img")
    assert (written.width, written.height) == (256, 256)
    assert written.data.max() == 55000 + 40      # autoscale maps the brightest pixel to 55000, plus -adc 40
    assert sorted(p.name for p in workdir.iterdir()) == ["example.bin", "example.img"]


def test_readme_example_as_a_subprocess(tmp_path):
    result = run_module(readme_example(), tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "example.bin").stat().st_size == 256 * 256 * 4
    assert (tmp_path / "example.img").stat().st_size == 512 + 256 * 256 * 2
    assert re.search(r"^max_I = \S+ +at ", result.stdout, re.M)


def test_program_output_arrives_whole_before_the_quick_exit(tmp_path, capsys, monkeypatch):
    """``python -m arraybragg`` ends with os._exit once main returns: its stdout, through a pipe,
    is still every line main writes (the same as in process, render time aside)."""
    (tmp_path / "sub").mkdir()
    result = run_module(readme_example(), tmp_path / "sub")
    assert result.returncode == 0, result.stderr
    monkeypatch.chdir(tmp_path)
    assert cli.main(readme_example()) == 0

    def stable(text):
        return [line for line in text.splitlines() if "render took" not in line]
    in_process = stable(capsys.readouterr().out)
    assert len(in_process) > 10 and stable(result.stdout) == in_process


def test_subprocess_bad_input_exits_2_with_one_line(tmp_path):
    result = run_module(SMALL.split() + ["-distance", "far"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "-distance" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_default_output_names(workdir, capsys):
    status, err = run_main(capsys, SMALL.split() + ["-seed", "5"])
    assert status == 0, err
    assert sorted(p.name for p in workdir.iterdir()) == sorted(DEFAULT_NAMES)
    assert (workdir / "floatimage.bin").stat().st_size == 48 * 48 * 4
    assert smv.read_smv(workdir / "noiseimage.img").data.shape == (48, 48)
    pgm = (workdir / "image.pgm").read_bytes()
    assert pgm.startswith(b"P5\n48 48\n# pixels scaled by ") and len(pgm.split(b"\n255\n", 1)[1]) == 48 * 48


@pytest.mark.parametrize("switches, absent", [
    (["-nonoise"], {"noiseimage.img"}),
    (["-nopgm"], {"image.pgm"}),
    (["-nonoise", "-nopgm"], {"noiseimage.img", "image.pgm"}),
])
def test_nonoise_and_nopgm_suppress_files(workdir, capsys, switches, absent):
    status, err = run_main(capsys, SMALL.split() + switches)
    assert status == 0, err
    assert {p.name for p in workdir.iterdir()} == set(DEFAULT_NAMES) - absent


def test_noise_is_reproducible_with_a_seed(workdir, capsys):
    images = []
    for seed, name in (("7", "a.img"), ("7", "b.img"), ("8", "c.img")):
        status, err = run_main(capsys, SMALL.split() + ["-nopgm", "-seed", seed, "-noisefile", name])
        assert status == 0, err
        images.append(smv.read_smv(workdir / name).data)
    assert np.array_equal(images[0], images[1])
    assert not np.array_equal(images[0], images[2])


def write_hkl(path: Path) -> None:
    path.write_text("".join(f"{h} {k} {l} {5 + abs(h) + 2 * abs(k) + 3 * abs(l)}\n"
                            for h in range(-3, 4) for k in range(-3, 4) for l in range(-3, 4)))


def test_fdump_written_after_hkl_and_read_back(workdir, capsys):
    write_hkl(workdir / "grid.hkl")
    base = SMALL.replace("-default_F 100 ", "").split() + ["-nonoise", "-nopgm"]
    status, err = run_main(capsys, base + ["-hkl", "grid.hkl", "-floatfile", "with_hkl.bin"])
    assert status == 0, err
    assert (workdir / "Fdump.bin").stat().st_size > 0
    status, err = run_main(capsys, base + ["-floatfile", "from_dump.bin"])
    assert status == 0, err
    with_hkl = (workdir / "with_hkl.bin").read_bytes()
    assert with_hkl == (workdir / "from_dump.bin").read_bytes()
    assert np.frombuffer(with_hkl, dtype=np.float32).max() > 0


def test_float32_policy_within_1e_4_of_float64(workdir, capsys):
    base = ("-cell 70 80 90 75 85 95 -misset 10 20 30 -default_F 100 -N 12 -lambda 1 -distance 100"
            " -detpixels 64 -nonoise -nopgm").split()
    for dtype in ("float64", "float32"):
        status, err = run_main(capsys, base + ["--dtype", dtype, "-floatfile", f"{dtype}.bin"])
        assert status == 0, err
    f64, f32 = floats(workdir / "float64.bin", (64, 64)), floats(workdir / "float32.bin", (64, 64))
    assert f64.max() > 0
    bad, worst = image_mismatch(f32, f64, 1e-4, 1e-7)
    assert bad == 0, f"{bad} pixels differ by more than 1e-4 (worst {worst:.3g} x tolerance)"


def test_help_exits_0(workdir, capsys):
    assert cli.main(["-h"]) == 0
    assert list(workdir.iterdir()) == []


# --- bad input ------------------------------------------------------------------------------------

def write_mask(path: Path, size: int) -> None:
    header = (f"{{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\n"
              f"SIZE1={size};\nSIZE2={size};\nPIXEL_SIZE=0.1;\n}}\f")
    path.write_bytes(header.encode().ljust(512, b" ") + np.ones((size, size), "<u2").tobytes())


CELL = "-cell 100 100 100 90 90 90"
BAD_INPUT = [
    pytest.param(f"{SMALL} -frobnicate 3", "-frobnicate", id="unknown-flag"),
    pytest.param(f"{SMALL} -lambda", "-lambda", id="missing-value"),
    pytest.param(f"{SMALL} -pixel wide", "-pixel", id="non-numeric"),
    pytest.param(f"{SMALL} -N five", "-N", id="non-numeric-integer"),
    pytest.param(f"{CELL} -detpixels 32 -hkl absent.hkl", "absent.hkl", id="missing-hkl"),
    pytest.param("-mat absent.mat -default_F 1 -detpixels 32", "absent.mat", id="missing-mat"),
    pytest.param(f"{CELL} -detpixels 32", "-default_F", id="no-structure-factors"),
    pytest.param(f"{CELL} -default_F 0 -detpixels 32", "-hkl", id="default-F-zero"),
    pytest.param("-cell 1 1 1 0.1 0.1 179 -default_F 1 -detpixels 32", "-cell", id="impossible-cell"),
    pytest.param("-default_F 1 -detpixels 32", "-cell", id="no-cell"),
    pytest.param(f"{SMALL} -fdet_vector 0 0 0", "-fdet_vector", id="zero-fdet"),
    pytest.param(f"{SMALL} -spindle_axis 0 0 0", "-spindle_axis", id="zero-spindle"),
    pytest.param(f"{SMALL} -mask small_mask.img", "-mask", id="mask-wrong-size"),
    pytest.param(f"{SMALL} -mask absent_mask.img", "absent_mask.img", id="missing-mask"),
    pytest.param(f"{SMALL} -img absent_header.img", "absent_header.img", id="missing-img"),
    pytest.param(f"{SMALL} --dtype float16", "--dtype", id="bad-dtype"),
]


@pytest.mark.parametrize("line, named", BAD_INPUT)
def test_bad_input_one_line_exit_2_no_output(workdir, capsys, line, named):
    write_mask(workdir / "small_mask.img", 16)  # -detpixels 48 comes after it: 16x16 mask is too small
    before = {p.name for p in workdir.iterdir()}
    status, err = run_main(capsys, line.split())
    assert status == 2
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert named in err and "Traceback" not in err
    assert {p.name for p in workdir.iterdir()} == before, "an output file was written"


def test_backend_cupy_without_cupy_is_a_one_line_error(workdir, capsys):
    try:
        import cupy

        cupy.cuda.runtime.getDeviceCount()
        pytest.skip("CuPy with a CUDA device is available")
    except Exception:
        pass
    status, err = run_main(capsys, SMALL.split() + ["--backend", "cupy"])
    assert status == 2
    assert err.count("\n") == 1 and "--backend cupy" in err and "Traceback" not in err
    assert list(workdir.iterdir()) == []


def test_version_and_bare_invocation(capsys):
    from arraybragg import __version__
    from arraybragg.cli import main

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"arraybragg {__version__}"
    assert main([]) == 2  # nanoBragg prints its usage and fails without arguments
    assert "-hkl" in capsys.readouterr().out


def test_backend_torch_writes_the_numpy_image(workdir, capsys):
    pytest.importorskip("torch")
    base = "-cell 70 80 90 75 85 95 -default_F 100 -N 5 -detpixels 40 -misset 10 20 30 -nonoise -nopgm".split()
    images = []
    for backend in ("numpy", "torch"):
        status = cli.main(base + ["--backend", backend, "-floatfile", f"{backend}.bin"])
        assert status == 0 and f"({backend}, float64" in capsys.readouterr().out
        images.append(np.fromfile(workdir / f"{backend}.bin", dtype="<f4"))
    assert images[0].max() > 0 and np.array_equal(images[0], images[1])
