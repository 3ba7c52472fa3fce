"""Tests for arraybragg-compare (arraybragg/tools/compare.py); no simulator is run."""

import json
import re
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from arraybragg.tools import compare
from arraybragg.tools.compare import (
    EXIT_IO, EXIT_OK, EXIT_RUNNER, EXIT_SHAPE, EXIT_THRESHOLD, EXIT_USAGE, CompareFailure,
    compare_images, detect_shape, encode_png, main, prepare_args, resample_nearest,
    shape_from_args, shape_from_stdout)

# A stand-in renderer: writes an N x N float32 image to -floatfile and prints the nanoBragg size line.
# Its own options: --scale F (multiply the image), --shuffle (another pattern), --fail (exit 3),
# --size-offset K (render N+K pixels square).
FAKE_RENDERER = """\
#!{python}
import array, os, sys
args = sys.argv[1:]
def value(flag, default=None):
    return args[args.index(flag) + 1] if flag in args else default
if "--fail" in args:
    print("boom", file=sys.stderr)
    sys.exit(3)
size = int(value("-detpixels")) + int(value("--size-offset", "0"))
scale = float(value("--scale", "1"))
step = 5 if "--shuffle" in args else 7
hkl = value("-hkl")
if hkl is not None:
    print("hkl:", hkl, open(hkl).read().strip())
elif os.path.exists("Fdump.bin"):
    print("fdump:", open("Fdump.bin").read().strip())
print("cwd:", os.getcwd())
print(f"  distance=0.1 detsize=0.1x0.1  pixel=0.0001 meters ({{size}}x{{size}} pixels)")
image = array.array("f", [scale * ((i * step) % 13) for i in range(size * size)])
with open(value("-floatfile"), "wb") as handle:
    image.tofile(handle)
"""


def read_png_chunks(data: bytes) -> dict:
    """{chunk type: payload} of a PNG, checking every CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset:offset + 4])
        kind = data[offset + 4:offset + 8]
        payload = data[offset + 8:offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length:offset + 12 + length])
        assert crc == zlib.crc32(kind + payload) & 0xFFFFFFFF
        chunks[kind] = payload
        offset += 12 + length
    return chunks


@pytest.fixture
def renderer(tmp_path, monkeypatch):
    """Path of an executable fake renderer; the cwd is a work folder holding in.hkl."""
    script = tmp_path / "bin" / "fake_renderer"
    script.parent.mkdir()
    script.write_text(FAKE_RENDERER.format(python=sys.executable))
    script.chmod(0o755)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "in.hkl").write_text("1 2 3 100\n")
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("NB_C_BIN", raising=False)
    monkeypatch.delenv("NB_PY_BIN", raising=False)
    return script


def run_tool(renderer, *tool_args, nb_args=("-detpixels", "8")):
    """main() with the fake renderer on both sides (C vs py mode) and outdir 'out'."""
    argv = ["--c-bin", str(renderer), "--py-bin", str(renderer), "--outdir", "out", *tool_args,
            "--", *nb_args]
    return main(argv)


def summary() -> dict:
    return json.loads(Path("out/summary.json").read_text())


# ---------------------------------------------------------------------------------------- metrics


def test_identical_images_compare_perfectly():
    image = np.arange(12, dtype=np.float32).reshape(3, 4)
    metrics = compare_images(image, image.copy())
    assert metrics == {"correlation": 1.0, "mse": 0.0, "rmse": 0.0, "max_abs_diff": 0.0,
                       "sum_a": 66.0, "sum_b": 66.0, "sum_ratio": 1.0, "pixels": 12}


def test_metrics_values():
    rng = np.random.default_rng(7)
    a = rng.random((6, 5)).astype(np.float32)
    b = (a + 0.1 * rng.random((6, 5))).astype(np.float32)
    metrics = compare_images(a, b)
    difference = b.astype(np.float64) - a
    expected_correlation = np.corrcoef(a.ravel(), b.ravel())[0, 1]
    assert metrics["correlation"] == pytest.approx(expected_correlation, rel=1e-12)
    assert metrics["correlation"] < 1.0
    assert metrics["mse"] == pytest.approx(np.mean(difference ** 2), rel=1e-12)
    assert metrics["rmse"] == pytest.approx(np.sqrt(np.mean(difference ** 2)), rel=1e-12)
    assert metrics["max_abs_diff"] == pytest.approx(np.max(np.abs(difference)), rel=1e-12)
    assert metrics["sum_ratio"] == pytest.approx(b.astype(np.float64).sum() / a.astype(np.float64).sum(), rel=1e-12)


def test_scaled_image_correlates_but_sum_ratio_shows_scale():
    a = np.arange(1, 21, dtype=np.float32).reshape(4, 5)
    metrics = compare_images(a, 2 * a)
    assert metrics["correlation"] == pytest.approx(1.0, abs=1e-12)
    assert metrics["sum_ratio"] == pytest.approx(2.0)
    assert metrics["max_abs_diff"] == 20.0


def test_roi_is_inclusive_fast_x_slow_y():
    a = np.zeros((10, 8), dtype=np.float32)
    a[::2, ::3] = 1.0  # not constant inside the ROIs below
    b = a.copy()
    b[2, 5] += 4.0  # slow 2, fast 5
    inside = compare_images(a, b, roi=(3, 5, 1, 2))  # fast 3..5, slow 1..2
    outside = compare_images(a, b, roi=(0, 4, 0, 9))  # fast 0..4, every slow row
    assert inside["pixels"] == 3 * 2
    assert inside["max_abs_diff"] == 4.0
    assert outside["pixels"] == 5 * 10
    assert outside["max_abs_diff"] == 0.0
    assert outside["correlation"] == 1.0


def test_constant_images():
    zeros = np.zeros((3, 3), dtype=np.float32)
    assert compare_images(zeros, zeros)["correlation"] == 1.0
    assert compare_images(zeros, zeros + 1)["correlation"] == 0.0
    assert np.isnan(compare_images(zeros, zeros + 1)["sum_ratio"])


def test_shape_mismatch_is_rejected():
    with pytest.raises(ValueError):
        compare_images(np.zeros((2, 3)), np.zeros((3, 2)))


def test_resample_nearest():
    image = np.array([[1, 2], [3, 4]], dtype=np.float32)
    assert np.array_equal(resample_nearest(image, (4, 4)), np.kron(image, np.ones((2, 2))))
    assert np.array_equal(resample_nearest(np.kron(image, np.ones((2, 2))), (2, 2)), image)


# ------------------------------------------------------------------------------------------- PNGs


def test_grayscale_png_is_valid():
    pixels = np.arange(15, dtype=np.uint8).reshape(3, 5) * 17
    chunks = read_png_chunks(encode_png(pixels))
    width, height, depth, color_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, color_type) == (5, 3, 8, 0)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == 3 * (5 + 1)
    rows = np.frombuffer(raw, np.uint8).reshape(3, 6)
    assert np.all(rows[:, 0] == 0)  # filter type "none"
    assert np.array_equal(rows[:, 1:], pixels)
    assert b"IEND" in chunks


def test_rgb_png_is_valid():
    pixels = compare.diff_heatmap(np.array([[-2.0, 0.0, 1.0, 5.0]]), 2.0)
    chunks = read_png_chunks(encode_png(pixels))
    assert struct.unpack(">IIBB", chunks[b"IHDR"][:10]) == (4, 1, 8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    assert len(raw) == 1 * (4 * 3 + 1)
    assert pixels.tolist() == [[[0, 0, 255], [255, 255, 255], [255, 128, 128], [255, 0, 0]]]


def test_png_rejects_non_uint8():
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2), dtype=np.float32))


def test_grayscale_preview_scaling():
    image = np.array([[0.0, 5.0, 10.0, 20.0]])
    assert compare.grayscale_preview(image, 10.0).tolist() == [[0, 128, 255, 255]]
    assert compare.scale_limit(np.array([0.0, 0.0, 3.0]), 50.0) == 3.0  # zero percentile -> max
    assert compare.scale_limit(np.zeros(4), 99.5) == 1.0


# ------------------------------------------------------------------------------- shapes and args


@pytest.mark.parametrize("args, shape", [
    (["-detpixels", "128"], (128, 128)),
    (["-detpixels_x", "100", "-detpixels_y", "50"], (50, 100)),
    (["-detpixels_f", "30", "-detpixels_s", "20"], (20, 30)),
    (["-detsize", "20", "-pixel", "0.172"], (116, 116)),
    (["-detsize_f", "10", "-detsize_s", "5"], (50, 100)),
    (["-detsize", "20", "-detpixels", "64"], (64, 64)),
    ([], (1024, 1024)),
    (["-mask", "mask.smv"], None),
    (["-pixel", "zero"], None),
])
def test_shape_from_args(args, shape):
    assert shape_from_args(args) == shape


def test_shape_from_stdout_and_detection():
    stdout = "  distance=0.1 detsize=0.0128x0.0096  pixel=0.0001 meters (128x96 pixels)\n"
    assert shape_from_stdout(stdout) == (96, 128)
    assert shape_from_stdout("nothing") is None
    assert detect_shape(96 * 128, None, stdout, []) == (96, 128)
    assert detect_shape(100, None, "", ["-detpixels_x", "20", "-detpixels_y", "5"]) == (5, 20)
    assert detect_shape(49, None, "", []) == (7, 7)  # falls back to a square
    assert detect_shape(12, (3, 4), "", []) == (3, 4)
    for explicit in ((5, 5), None):
        with pytest.raises(CompareFailure) as failure:
            detect_shape(12, explicit, "", [])
        assert failure.value.exit_code == EXIT_IO


def test_prepare_args_redirects_float_and_resolves_inputs(tmp_path):
    caller = tmp_path / "caller"
    float_path = tmp_path / "run" / "float.bin"
    args = ["-hkl", "in.hkl", "-mat", "/abs/A.mat", "-floatfile", "mine.bin", "-N", "5",
            "-intfile", "int.img"]
    assert prepare_args(args, float_path, caller) == [
        "-hkl", str(caller / "in.hkl"), "-mat", "/abs/A.mat", "-N", "5", "-intfile", "int.img",
        "-floatfile", str(float_path)]


def test_default_outdir_is_named_and_unique(tmp_path):
    pattern = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}(-\d+)?")
    first = compare.default_outdir(["-detpixels", "8"], tmp_path)
    first.mkdir(parents=True)
    second = compare.default_outdir(["-detpixels", "8"], tmp_path)
    assert first.parent == tmp_path / "comparisons"
    assert pattern.fullmatch(first.name) and pattern.fullmatch(second.name)
    assert second != first


# ------------------------------------------------------------------------- end to end (fake runs)


def test_end_to_end_pass_writes_artifacts(renderer, capsys):
    code = run_tool(renderer, "--threshold", "0.999", "--save-diff", "--roi", "1", "6", "0", "3",
                    nb_args=("-detpixels", "8", "-hkl", "in.hkl", "-floatfile", "mine.bin"))
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert re.search(r"^C runtime: \d+\.\d{3} s$", out, re.MULTILINE)
    assert re.search(r"^Py runtime: \d+\.\d{3} s$", out, re.MULTILINE)
    assert "PASS" in out
    names = {path.name for path in Path("out").iterdir()}
    assert names == {"c_stdout.txt", "c_stderr.txt", "py_stdout.txt", "py_stderr.txt", "c_float.bin",
                     "py_float.bin", "c.png", "py.png", "diff.bin", "diff.png", "summary.json"}
    report = summary()
    assert report["correlation"] == 1.0 and report["max_abs_diff"] == 0.0
    assert report["pixels"] == 6 * 4 and report["roi"] == [1, 6, 0, 3]
    assert report["shape"] == [8, 8]
    assert report["runtime_c_ms"] > 0 and report["runtime_py_ms"] > 0
    assert report["sum_c"] == report["sum_py"] and report["sum_ratio"] == 1.0
    assert report["png_scale_method"] == "linear" and report["png_percentile"] == 99.5
    assert report["exit_code"] == 0 and report["passed"] is True
    # runs happen elsewhere, with absolute input paths, and the caller's -floatfile is not written
    c_stdout = Path("out/c_stdout.txt").read_text()
    assert f"hkl: {Path.cwd() / 'in.hkl'} 1 2 3 100" in c_stdout
    assert f"cwd: {Path.cwd()}\n" not in c_stdout
    assert not Path("mine.bin").exists()
    assert np.fromfile("out/c_float.bin", dtype="<f4").size == 64
    assert np.count_nonzero(np.fromfile("out/diff.bin", dtype="<f4")) == 0
    assert read_png_chunks(Path("out/c.png").read_bytes())[b"IHDR"][:8] == struct.pack(">II", 8, 8)


def test_end_to_end_threshold_failure(renderer, capsys):
    assert run_tool(renderer, "--threshold", "0.9", "--b-opts", "--shuffle") == EXIT_THRESHOLD
    assert "FAIL (threshold 0.9)" in capsys.readouterr().out
    report = summary()
    assert report["correlation"] < 0.9
    assert report["passed"] is False and report["exit_code"] == EXIT_THRESHOLD
    # without a threshold the same comparison succeeds
    assert run_tool(renderer, "--b-opts=--shuffle") == EXIT_OK


def test_end_to_end_runner_failure(renderer, capsys):
    assert run_tool(renderer, "--b-opts", "--fail") == EXIT_RUNNER
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "Py renderer exited with status 3" in error
    assert Path("out/py_stderr.txt").read_text().strip() == "boom"
    assert Path("out/c_float.bin").exists()


def test_missing_renderer_is_runner_failure(renderer, capsys):
    assert main(["--c-bin", "./no_such_nanoBragg", "--", "-detpixels", "8"]) == EXIT_RUNNER
    assert "C renderer is not an executable" in capsys.readouterr().err


def test_end_to_end_shape_mismatch_and_resample(renderer):
    assert run_tool(renderer, "--b-opts", "--size-offset 8") == EXIT_SHAPE
    assert run_tool(renderer, "--b-opts", "--size-offset 8", "--resample") == EXIT_OK
    report = summary()
    assert report["resampled"] is True and report["shape"] == [8, 8]
    assert report["shapes"] == {"c": [8, 8], "py": [16, 16]}


def test_end_to_end_arraybragg_against_arraybragg(renderer):
    argv = ["--py-bin", f"{sys.executable} {renderer}", "--a-opts", "", "--b-opts", "--scale 2",
            "--outdir", "out", "--", "-detpixels", "8"]
    assert main(argv) == EXIT_OK
    report = summary()
    assert report["sum_ratio"] == pytest.approx(2.0)
    assert report["correlation"] == pytest.approx(1.0)
    assert report["sum_b"] == pytest.approx(2 * report["sum_a"])
    assert "runtime_a_ms" in report and "runtime_b_ms" in report
    assert report["binaries"]["b"][-2:] == ["--scale", "2"]
    assert Path("out/a_float.bin").exists() and Path("out/b.png").exists()


def test_environment_binary_and_fdump_staging(renderer, monkeypatch):
    monkeypatch.setenv("NB_C_BIN", str(renderer))
    monkeypatch.setenv("NB_PY_BIN", str(renderer))
    Path("Fdump.bin").write_text("cached structure factors")
    assert main(["--outdir", "out", "--", "-detpixels", "8"]) == EXIT_OK
    assert "fdump: cached structure factors" in Path("out/py_stdout.txt").read_text()
    assert summary()["binaries"] == {"c": [str(renderer)], "py": [str(renderer)]}


@pytest.mark.parametrize("argv", [
    ["-detpixels", "8"],  # no '--'
    ["--roi", "1", "2", "--", "-detpixels", "8"],
    ["--png-scale", "0", "--", "-detpixels", "8"],
    ["--a-opts", "", "--c-bin", "x", "--", "-detpixels", "8"],
])
def test_usage_errors_exit_1(renderer, capsys, argv):
    assert main(argv) == EXIT_USAGE
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_roi_outside_image_is_usage_error(renderer, capsys):
    assert run_tool(renderer, "--roi", "0", "8", "0", "7") == EXIT_USAGE
    assert "--roi 0 8 0 7 is not inside" in capsys.readouterr().err
