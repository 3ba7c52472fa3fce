"""arraybragg-noisify against noisify.c's renders (reference/noisify/*), and its bad-input handling.

Each case's input is the float image of a corpus case, run through ``arraybragg.tools.noisify.main``
with the case's arguments in a scratch directory; then the SMV header keys and values must equal
noisify's, at least 99.9% of the integer and noise pixels must be identical with none off by more
than one count, and the PGM pixels must be equal.
"""
from __future__ import annotations

import gzip
import json
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE

from arraybragg.errors import InputError
from arraybragg.tools import noisify

MIN_IDENTICAL = 0.999


def _cases():
    root = None if REFERENCE is None else REFERENCE / "noisify"
    if root is None or not root.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_REFERENCE + " (noisify/)"))]
    return [pytest.param(d, id=d.name) for d in sorted(root.iterdir()) if (d / "case.json").exists()]


def _gunzip(path) -> bytes:
    return gzip.decompress(path.read_bytes())


def parse_smv(raw: bytes) -> tuple[dict[str, str], np.ndarray]:
    """(KEY -> value text, pixels (SIZE2, SIZE1)) of an SMV file of unsigned_short or long_integer."""
    text = raw[:raw.index(b"}")].decode("ascii")
    header = dict(line.rstrip(";").split("=", 1) for line in text.splitlines() if "=" in line)
    order = "<" if header["BYTE_ORDER"].startswith("little") else ">"
    dtype = order + ("u2" if header["TYPE"] == "unsigned_short" else "u4")
    shape = (int(header["SIZE2"]), int(header["SIZE1"]))
    pixels = np.frombuffer(raw, dtype=dtype, count=shape[0] * shape[1], offset=int(header["HEADER_BYTES"]))
    return header, pixels.reshape(shape)


def run_case(case_dir, workdir, monkeypatch) -> dict:
    meta = json.loads((case_dir / "case.json").read_text())
    float_image = REFERENCE / "cases" / meta["input_case"] / "float.bin.gz"
    (workdir / "in.bin").write_bytes(_gunzip(float_image))
    (workdir / "header.img").symlink_to(REFERENCE / "inputs" / "header.img")
    monkeypatch.chdir(workdir)
    assert noisify.main(shlex.split(meta["args"]) + shlex.split(meta["output_flags"])) == 0
    return meta


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
@pytest.mark.parametrize("case_dir", _cases())
def test_noisify_case_matches_c(case_dir, tmp_path, monkeypatch):
    run_case(case_dir, tmp_path, monkeypatch)
    for name in ("int.img", "noise.img"):
        ours_header, ours = parse_smv((tmp_path / name).read_bytes())
        theirs_header, theirs = parse_smv(_gunzip(case_dir / f"{name}.gz"))
        assert list(ours_header) == list(theirs_header), name
        for key, value in theirs_header.items():
            assert ours_header[key] == value, f"{name} {key}"
        diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
        identical = np.count_nonzero(diff == 0) / diff.size
        assert identical >= MIN_IDENTICAL, f"{name}: {identical:.4%} identical"
        assert diff.max() <= 1, f"{name}: off by {diff.max()}"
    ours, theirs = (tmp_path / "image.pgm").read_bytes(), _gunzip(case_dir / "image.pgm.gz")
    assert ours.split(b"\n", 4)[:4] == theirs.split(b"\n", 4)[:4]
    assert ours == theirs


def _write_floats(path, shape=(16, 16), value=5.0):
    np.full(shape, value, dtype=np.float32).tofile(path)


def test_default_header_and_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_floats(tmp_path / "in.bin", (8, 12), 3.0)
    assert noisify.main(["-floatfile", "in.bin", "-detpixels_x", "12", "-seed", "1", "-bits", "32",
                         "-lambda", "1.5", "-distance", "200", "-nopgm"]) == 0
    header, pixels = parse_smv((tmp_path / "intimage.img").read_bytes())
    assert header["TYPE"] == "long_integer" and header["SIZE1"] == "12" and header["SIZE2"] == "8"
    assert header["WAVELENGTH"] == "1.5" and header["DISTANCE"] == "200" and header["PIXEL_SIZE"] == "0.1"
    assert header["BEAM_CENTER_X"] == "0.6" and header["BEAM_CENTER_Y"] == "0.4"
    assert (pixels == 43).all()  # 3 photons (fluence * r_e^2 is 1 to 1e-15) + ADC offset 40
    assert (tmp_path / "noiseimage.img").exists() and not (tmp_path / "image.pgm").exists()


@pytest.mark.parametrize("args, message", [
    (["-floatfile", "missing.bin"], "missing.bin"),
    (["-floatfile", "in.bin", "-bits", "8"], "-bits"),
    (["-floatfile", "in.bin", "-psf", "moffat"], "-psf"),
    (["-floatfile", "in.bin", "-scale", "lots"], "-scale"),
    (["-floatfile", "in.bin", "-frobnicate", "1"], "-frobnicate"),
    (["-floatfile", "in.bin", "-detpixels", "100"], "-floatfile"),
    (["-floatfile", "in.bin", "-header", "in.bin"], "-header"),
    (["-floatfile", "in.bin", "-noisefile", "no/such/dir/noise.img"], "no/such/dir/noise.img"),
    (["-floatfile", "in.bin", "--hot-pixels", "2"], "--hot-pixels"),
    (["-floatfile", "in.bin", "--threads", "0"], "--threads"),
    (["-floatfile", "in.bin", "--threads", "two"], "--threads"),
    (["-floatfile", "in.bin", "-psf", "gauss", "-psf_fwhm", "1e300"], "-psf_fwhm"),  # inf as a C float
    (["-floatfile", "in.bin", "-psf", "gauss", "-flicker", "inf"], "-psf: a pixel of infinite photons"),
])
def test_bad_input_one_line_no_files(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _write_floats(tmp_path / "in.bin")
    assert noisify.main(args + ["-seed", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and err.startswith("arraybragg-noisify: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]


def test_infinite_photons_refused_by_the_psf_in_one_line(tmp_path, monkeypatch, capsys):
    """A float image times -scale beyond float32 gives infinite photons, which have no spreading radius
    (noisify's kernel size overflows): one line naming -psf, no file, no warning."""
    monkeypatch.chdir(tmp_path)
    image = np.full((16, 16), 5.0, dtype=np.float32)
    image[3, 3] = 1e30
    image.tofile(tmp_path / "in.bin")
    args = ["-floatfile", "in.bin", "-scale", "1e10", "-psf", "gauss", "-nonoise", "-seed", "1"]
    assert noisify.main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("arraybragg-noisify: error: -psf: a pixel of infinite photons")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.bin"]
    assert noisify.main(args + ["-psf_radius", "2", "-nopgm"]) == 0  # a given radius spreads it (inf)
    assert capsys.readouterr().err == ""


def test_psf_type_read_as_noisify_reads_it():
    """noisify takes any -psf value containing "gauss" or "fiber" (fiber first), so scripts may say gaussian."""
    for value, kind in (("gaussian", "gauss"), ("gauss", "gauss"), ("fibers", "fiber"), ("gaussfiber", "fiber")):
        assert noisify.parse_args(["-floatfile", "in.bin", "-psf", value]).psf == kind
    with pytest.raises(InputError, match="-psf: unknown point-spread function 'moffat'"):
        noisify.parse_args(["-floatfile", "in.bin", "-psf", "moffat"])


def test_beamstop_beyond_float_range_shadows_everything(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write_floats(tmp_path / "in.bin", (8, 8), 50.0)
    assert noisify.main(["-floatfile", "in.bin", "-seed", "1", "--beamstop", "1e300", "-nopgm", "-nonoise"]) == 0
    assert set(np.fromfile(tmp_path / "intimage.img", dtype=np.uint16)[256:].tolist()) == {40}  # the ADC offset


@pytest.mark.parametrize("extra", [["-psf", "gauss"], ["--beamstop", "1"]])
def test_header_pixel_size_zero_refused_where_it_measures(extra, tmp_path, monkeypatch, capsys):
    """A -header whose PIXEL_SIZE is 0 gave ZeroDivisionError (a traceback) once a PSF or a beamstop needed
    sizes in pixels; without them it only goes into the output headers, as noisify does."""
    monkeypatch.chdir(tmp_path)
    _write_floats(tmp_path / "in.bin", (6, 8), 5.0)
    text = "{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\nSIZE1=8;\nSIZE2=6;\n" \
           "PIXEL_SIZE=0;\n}\f"
    (tmp_path / "h.img").write_bytes(text.encode().ljust(512, b" ") + bytes(96))
    assert noisify.main(["-floatfile", "in.bin", "-header", "h.img", "-seed", "1", *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-header h.img: PIXEL_SIZE 0 mm" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.img", "in.bin"]
    assert noisify.main(["-floatfile", "in.bin", "-header", "h.img", "-seed", "1", "-nopgm"]) == 0


def _load_benchmark(name):
    import importlib.util
    from conftest import REPO
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_asv_benchmark_runs_on_a_crop(monkeypatch):
    bench = _load_benchmark("bench_noisify")
    image = np.zeros((40, 50), dtype=np.float32)
    image[20, 25] = 1e-3
    monkeypatch.setattr(bench, "_sup_full_image", lambda: image)
    case = bench.NoisifySupFull()
    for method in bench.NoisifySupFull.params:
        case.setup(method)
        assert case.response.psf.method == method and case.response.scale == 1e7
        case.time_apply_response(method)


def test_benchmark_script_compares_whole_processes(tmp_path, capsys):
    script = _load_benchmark("noisify_vs_c")
    _write_floats(tmp_path / "in.bin", (8, 8), 2.0)
    fake_c = tmp_path / "noisify"  # stands in for noisify.c: arraybragg-noisify itself
    fake_c.write_text(f"#!/bin/sh\nexec {sys.executable} -m arraybragg.tools.noisify \"$@\"\n")
    fake_c.chmod(0o755)
    assert script.main(["--c-bin", str(fake_c), "--float", str(tmp_path / "in.bin"), "--repeats", "1",
                        "--args", "-detpixels 8 -seed 2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["identical_files"] == {"int.img": True, "noise.img": True, "image.pgm": True}
    assert len(report["times_s"]["c"]) == 1 and report["median_s"]["arraybragg"] > 0
    assert report["median_round_ratio"] == pytest.approx(report["ratio"]) and len(report["load_average_1min"]) == 2


def test_program_flushes_its_log_and_exits_with_its_status(tmp_path):
    """As a program the process ends without the interpreter's teardown: the log still arrives whole, the
    files are there, and bad input still exits 2 with its one line."""
    _write_floats(tmp_path / "in.bin", (8, 8), 2.0)
    program = [sys.executable, "-m", "arraybragg.tools.noisify", "-floatfile", "in.bin", "-seed", "2"]
    done = subprocess.run(program, cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.startswith("importing 64 pixel") and done.stdout.endswith("writing noiseimage.img as 2-byte integers\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.pgm", "in.bin", "intimage.img", "noiseimage.img"]
    refused = subprocess.run(program + ["-bits", "8"], cwd=tmp_path, capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stdout == "" and refused.stderr.count("\n") == 1


def test_noisify_imports_only_what_it_needs():
    """``import arraybragg`` is lazy: noisify does not load the simulator's modules, which still resolve."""
    code = ("import sys, arraybragg.tools.noisify, arraybragg\n"
            "heavy = [m for m in ('arraybragg.io.flags', 'arraybragg.models.nanobragg', 'arraybragg.render.renderer')"
            " if m in sys.modules]\n"
            "print(heavy, arraybragg.render_simulation.__module__, arraybragg.parse_args.__module__,"
            " sorted(n for n in arraybragg.__all__ if not hasattr(arraybragg, n)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["[]", "arraybragg.render.renderer", "arraybragg.io.flags", "[]"]


def test_program_asks_numpy_for_small_pages():
    """Run as a program, arraybragg-noisify turns NumPy's huge-page advice off, unless the user set it."""
    code = "import os, arraybragg.tools.noisify; print(os.environ['NUMPY_MADVISE_HUGEPAGE'])"
    for preset, expected in ((None, "0"), ("1", "1")):
        env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
        if preset is not None:
            env["NUMPY_MADVISE_HUGEPAGE"] = preset
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
        assert out.stdout.split() == [expected]


def test_threads_write_the_same_files(tmp_path, monkeypatch):
    """--threads sets how many threads spread the PSF (here over blocks of 5 rows); the files do not
    depend on it."""
    from arraybragg.response import psf as psf_module
    monkeypatch.setattr(psf_module, "_BLOCK_PIXELS", 200)
    monkeypatch.chdir(tmp_path)
    values = np.random.default_rng(5).gamma(0.5, 40.0, (48, 40)).astype(np.float32)
    values[7, 39], values[30, 3] = 4e5, 2e4
    values.tofile(tmp_path / "in.bin")
    files = {}
    for threads in ("1", "3"):
        assert noisify.main(["-floatfile", "in.bin", "-detpixels_x", "40", "-psf", "gauss", "-psf_fwhm", "250",
                             "-seed", "4", "-intfile", f"int{threads}.img", "-noisefile", f"noise{threads}.img",
                             "-nopgm", "--threads", threads]) == 0
        files[threads] = (tmp_path / f"noise{threads}.img").read_bytes()
    assert files["1"] == files["3"] and len(files["1"]) > 48 * 40 * 2
