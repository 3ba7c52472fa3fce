"""Run two renders with identical nanoBragg arguments and compare their float images (nb-compare).

Usage: arraybragg-compare [options] -- NANOBRAGG_ARGS...
Everything after -- goes unchanged to both renderers, except that -floatfile/-floatimage is replaced
by a float file in each run's own temporary work directory, and relative paths given to input-file
flags (-hkl -mat -sourcefile -img -mask -stol -4stol -Q) are made absolute, because each run's working
directory is that fresh temporary directory. Without -hkl, an Fdump.bin (or the -dump name) found in
the current directory is copied into the work directory so the run can read it. Other relative output
files land in the work directory and are discarded; absolute ones are written by both runs in turn.

Sides (their labels prefix the artifact files and summary keys):
  C vs arraybragg (default): side c runs --c-bin, else $NB_C_BIN, else ./nanoBragg; side py runs
    arraybragg (--py-bin, else $NB_PY_BIN, else this Python with -m arraybragg) with --b-opts.
  arraybragg vs arraybragg: giving --a-opts makes side a arraybragg with those options and side b
    arraybragg with --b-opts.
The second side is compared against the first (differences are second minus first).

Image shape: --shape SLOW FAST if given, else the "(FxS pixels)" line a renderer printed, else the
-detpixels*/-detsize*/-pixel arguments (derived as nanoBragg does), else a square image; whichever
is used must agree with the float file's size.

Artifacts in --outdir (default comparisons/YYYYMMDD-HHMMSS-<hash of the args>):
  <side>_stdout.txt, <side>_stderr.txt, <side>_float.bin, <side>.png (8-bit previews, linear from 0
  to the --png-scale percentile of both images over the ROI), summary.json, and with --save-diff
  diff.bin (float32) and diff.png (blue negative, white zero, red positive).

Exit status: 0 success, 1 usage error, 2 a renderer could not start or failed, 3 correlation below
--threshold, 4 shapes differ without --resample, 5 I/O or parse error.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PROG = "arraybragg-compare"

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_RUNNER = 2
EXIT_THRESHOLD = 3
EXIT_SHAPE = 4
EXIT_IO = 5

DEFAULT_PNG_PERCENTILE = 99.5
FLOAT_FILE_NAME = "float.bin"
FLOAT_FILE_FLAGS = frozenset({"-floatfile", "-floatimage"})
INPUT_FILE_FLAGS = frozenset({"-hkl", "-mat", "-sourcefile", "-img", "-mask", "-stol", "-4stol", "-Q"})
OPTION_STRING_FLAGS = ("--a-opts", "--b-opts")  # their values are option lists for arraybragg
HEADER_IMAGE_FLAGS = frozenset({"-img", "-mask"})  # their SMV headers may set the detector size
DEFAULT_DETSIZE_M = 102.4e-3
DEFAULT_PIXEL_M = 0.1e-3
_STDOUT_SHAPE = re.compile(r"\((\d+)x(\d+) pixels\)")
_LEADING_INT = re.compile(r"\s*[+-]?\d+")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Directory that holds the arraybragg package, put on the renderers' PYTHONPATH so that
# `python -m arraybragg` works from the temporary work directories even without an install.
_PACKAGE_PARENT = Path(__file__).resolve().parents[2]


class CompareFailure(Exception):
    """A failure that ends the tool with `exit_code` and a one-line message."""

    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Side:
    """One renderer: label ('c', 'py', 'a', 'b') names its files and summary keys; title ('C', 'Py',
    'A', 'B') is printed; command is the program plus its own options, before the nanoBragg args."""

    label: str
    title: str
    command: tuple


@dataclass(frozen=True)
class RunResult:
    """What one render produced; float_bytes is None when it wrote no float file."""

    command: tuple
    returncode: int
    stdout: bytes
    stderr: bytes
    seconds: float
    float_bytes: bytes | None


# ------------------------------------------------------------------------------ arguments & sides


class _UsageParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit with EXIT_USAGE."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def _percentile(text: str) -> float:
    value = float(text)
    if not 0 < value <= 100:
        raise ValueError(text)
    return value


_percentile.__name__ = "percentile in (0, 100]"  # argparse names the type in its error message


def build_parser() -> argparse.ArgumentParser:
    parser = _UsageParser(
        prog=PROG,
        usage=f"{PROG} [options] -- NANOBRAGG_ARGS...",
        description=__doc__.split("\n", 3)[3],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outdir", metavar="DIR",
                        help="artifact directory (default comparisons/YYYYMMDD-HHMMSS-<args hash>)")
    parser.add_argument("--roi", nargs=4, type=int, metavar=("XMIN", "XMAX", "YMIN", "YMAX"),
                        help="compare only fast pixels XMIN..XMAX and slow pixels YMIN..YMAX "
                             "(inclusive, 0-based, like nanoBragg -roi)")
    parser.add_argument("--threshold", type=float, metavar="T",
                        help="exit 3 when the correlation is below T")
    parser.add_argument("--resample", action="store_true",
                        help="when shapes differ, resize the second image to the first one's shape "
                             "(nearest neighbour) instead of exiting with 4")
    parser.add_argument("--png-scale", type=_percentile, default=DEFAULT_PNG_PERCENTILE,
                        metavar="PCTL",
                        help="previews map 0..this percentile of both images (over the ROI) to "
                             "black..white (default %(default)g)")
    parser.add_argument("--save-diff", action="store_true",
                        help="also write diff.bin (second minus first, float32) and diff.png")
    parser.add_argument("--c-bin", metavar="PATH",
                        help="nanoBragg binary for side c (default $NB_C_BIN, else ./nanoBragg)")
    parser.add_argument("--py-bin", metavar="CMD",
                        help="arraybragg command, split like a shell line (default $NB_PY_BIN, else "
                             "the current Python with -m arraybragg)")
    parser.add_argument("--a-opts", metavar="OPTS",
                        help='arraybragg options for side a; giving it (even "") compares arraybragg '
                             'with arraybragg instead of C, e.g. --a-opts "--dtype float64"')
    parser.add_argument("--b-opts", metavar="OPTS", default="",
                        help='arraybragg options for the arraybragg side (py, or b), e.g. '
                             '--b-opts "--dtype float32"')
    parser.add_argument("--shape", nargs=2, type=int, metavar=("SLOW", "FAST"),
                        help="image shape in pixels when it cannot be told from the arguments")
    return parser


def split_argv(argv: list) -> tuple:
    """(tool arguments, nanoBragg arguments) around the first '--'."""
    if "--" not in argv:
        if any(word in ("-h", "--help") for word in argv):
            return argv, []
        raise CompareFailure(EXIT_USAGE, "missing '--' before the nanoBragg arguments (see --help)")
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1:]


def _attach_option_values(tool_argv: list) -> list:
    """Glue each --a-opts/--b-opts to its value (``--b-opts=--dtype``) so argparse does not take a
    value such as ``--fast`` for an option of this tool."""
    attached, index = [], 0
    while index < len(tool_argv):
        word = tool_argv[index]
        if word in OPTION_STRING_FLAGS and index + 1 < len(tool_argv):
            attached.append(f"{word}={tool_argv[index + 1]}")
            index += 2
        else:
            attached.append(word)
            index += 1
    return attached


def _option_words(text: str, flag: str) -> list:
    """Shell-split the value of `flag`; unbalanced quotes are a usage error."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise CompareFailure(EXIT_USAGE, f"{flag}: {exc}") from None


def _command_words(text: str, flag: str, caller_cwd: Path) -> list:
    """Shell-split command of `flag`, its program path made absolute (runs use another cwd)."""
    words = _option_words(text, flag)
    if not words:
        raise CompareFailure(EXIT_USAGE, f"{flag} is empty")
    words[0] = _program_path(words[0], caller_cwd)
    return words


def _program_path(program: str, caller_cwd: Path) -> str:
    """A relative path made absolute (runs use another cwd); a bare name is left to the PATH search."""
    if os.sep in program and not os.path.isabs(program):
        return str(caller_cwd / program)
    return program


def resolve_sides(options: argparse.Namespace, environ, caller_cwd: Path) -> tuple:
    """The two renderers: (c, py) by default, (a, b) when --a-opts is given."""
    py_text = options.py_bin or environ.get("NB_PY_BIN")
    py_command = (_command_words(py_text, "--py-bin", caller_cwd) if py_text
                  else [sys.executable, "-m", "arraybragg"])
    b_options = _option_words(options.b_opts, "--b-opts")
    if options.a_opts is not None:
        if options.c_bin:
            raise CompareFailure(EXIT_USAGE, "--a-opts (arraybragg vs arraybragg) and --c-bin "
                                             "exclude each other")
        a_options = _option_words(options.a_opts, "--a-opts")
        return (Side("a", "A", tuple(py_command + a_options)),
                Side("b", "B", tuple(py_command + b_options)))
    c_program = _program_path(options.c_bin or environ.get("NB_C_BIN") or "./nanoBragg", caller_cwd)
    return Side("c", "C", (c_program,)), Side("py", "Py", tuple(py_command + b_options))


def check_runnable(side: Side) -> None:
    """Preflight: the side's program exists and is executable."""
    program = side.command[0]
    if os.sep in program:
        runnable = os.path.isfile(program) and os.access(program, os.X_OK)
    else:
        runnable = shutil.which(program) is not None
    if not runnable:
        raise CompareFailure(EXIT_RUNNER, f"{side.title} renderer is not an executable: {program}")


# ---------------------------------------------------------------------------------------- running


def prepare_args(nb_args: list, float_path: Path, caller_cwd: Path) -> list:
    """nanoBragg arguments for a run in another directory: input paths absolute, the float file
    redirected to `float_path`."""
    prepared = []
    index = 0
    while index < len(nb_args):
        word = nb_args[index]
        has_value = index + 1 < len(nb_args)
        if word in FLOAT_FILE_FLAGS and has_value:
            index += 2
            continue
        prepared.append(word)
        if word in INPUT_FILE_FLAGS and has_value:
            prepared.append(str(caller_cwd / nb_args[index + 1]))
            index += 2
            continue
        index += 1
    return prepared + ["-floatfile", str(float_path)]


def _flag_value(nb_args: list, flag: str) -> str | None:
    """Value following the last occurrence of `flag`, or None."""
    positions = [i for i, word in enumerate(nb_args[:-1]) if word == flag]
    return nb_args[positions[-1] + 1] if positions else None


def stage_structure_factor_cache(nb_args: list, workdir: Path, caller_cwd: Path) -> None:
    """Without -hkl nanoBragg reads its Fdump cache from the cwd: copy the caller's into `workdir`
    (a copy, so a run that rewrites it cannot touch the caller's file)."""
    if "-hkl" in nb_args:
        return
    dump_name = _flag_value(nb_args, "-dump") or "Fdump.bin"
    source = caller_cwd / dump_name
    if not os.path.isabs(dump_name) and source.is_file():
        target = workdir / dump_name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _renderer_environment() -> dict:
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (str(_PACKAGE_PARENT), environ.get("PYTHONPATH")) if part)
    return environ


def run_side(side: Side, nb_args: list, caller_cwd: Path) -> RunResult:
    """Render once in a fresh temporary work directory; wall time from a monotonic clock."""
    with tempfile.TemporaryDirectory(prefix=f"nbcompare-{side.label}-") as work:
        workdir = Path(work)
        float_path = workdir / FLOAT_FILE_NAME
        command = (*side.command, *prepare_args(nb_args, float_path, caller_cwd))
        stage_structure_factor_cache(nb_args, workdir, caller_cwd)
        start = time.perf_counter()
        try:
            completed = subprocess.run(command, cwd=workdir, capture_output=True,
                                       env=_renderer_environment(), check=False)
        except OSError as exc:
            raise CompareFailure(EXIT_RUNNER, f"{side.title} renderer could not start: {exc}") from None
        seconds = time.perf_counter() - start
        float_bytes = float_path.read_bytes() if float_path.is_file() else None
    return RunResult(command, completed.returncode, completed.stdout, completed.stderr, seconds,
                     float_bytes)


# ------------------------------------------------------------------------------------------ shape


def _atoi(text: str) -> int:
    """C atoi: the leading integer of `text`, 0 when there is none."""
    match = _LEADING_INT.match(text)
    return int(match.group()) if match else 0


def shape_from_args(nb_args: list) -> tuple | None:
    """(slow, fast) pixel counts as nanoBragg derives them from its arguments, or None when an
    -img/-mask header could set them or a value does not parse."""
    if any(word in HEADER_IMAGE_FLAGS for word in nb_args):
        return None
    pixel = DEFAULT_PIXEL_M
    detsize = {"fast": DEFAULT_DETSIZE_M, "slow": DEFAULT_DETSIZE_M}
    counts = {"fast": 0, "slow": 0}
    try:
        for flag, value in zip(nb_args, nb_args[1:]):
            if flag == "-pixel":
                pixel = float(value) / 1000.0
            elif flag == "-detsize":
                detsize["fast"] = detsize["slow"] = float(value) / 1000.0
            elif flag == "-detsize_f":
                detsize["fast"] = float(value) / 1000.0
            elif flag == "-detsize_s":
                detsize["slow"] = float(value) / 1000.0
            elif flag == "-detpixels":
                counts["fast"] = counts["slow"] = _atoi(value)
            elif flag in ("-detpixels_f", "-detpixels_x"):
                counts["fast"] = _atoi(value)
            elif flag in ("-detpixels_s", "-detpixels_y"):
                counts["slow"] = _atoi(value)
        # a pixel count wins over a detector size; sizes round to the nearest whole pixel
        slow, fast = (counts[axis] or math.ceil(detsize[axis] / pixel - 0.5) for axis in ("slow", "fast"))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return (slow, fast) if slow > 0 and fast > 0 else None


def shape_from_stdout(text: str) -> tuple | None:
    """(slow, fast) from the last ``(FASTxSLOW pixels)`` the program printed, or None."""
    matches = _STDOUT_SHAPE.findall(text)
    if not matches:
        return None
    fast, slow = matches[-1]
    return int(slow), int(fast)


def detect_shape(pixel_count: int, explicit: tuple | None, stdout_text: str, nb_args: list) -> tuple:
    """(slow, fast) of a float image holding `pixel_count` values."""
    if explicit:
        slow, fast = explicit
        if slow * fast != pixel_count:
            raise CompareFailure(EXIT_IO, f"--shape {slow} {fast} does not fit a float image of "
                                          f"{pixel_count} pixels")
        return slow, fast
    for candidate in (shape_from_stdout(stdout_text), shape_from_args(nb_args)):
        if candidate and candidate[0] * candidate[1] == pixel_count:
            return candidate
    side = math.isqrt(pixel_count)
    if side > 0 and side * side == pixel_count:
        return side, side
    raise CompareFailure(EXIT_IO, f"cannot tell the shape of a float image of {pixel_count} pixels; "
                                  "pass --shape SLOW FAST")


def load_float_image(data: bytes, shape: tuple | None, stdout_text: str, nb_args: list) -> np.ndarray:
    """Little-endian float32 raster (fast index fastest) as a (slow, fast) array."""
    if not data or len(data) % 4:
        raise CompareFailure(EXIT_IO, f"float image of {len(data)} bytes is not a float32 raster")
    values = np.frombuffer(data, dtype="<f4")
    return values.reshape(detect_shape(values.size, shape, stdout_text, nb_args))


# ---------------------------------------------------------------------------------------- metrics


def resample_nearest(image: np.ndarray, shape: tuple) -> np.ndarray:
    """`image` resized to `shape` by nearest-neighbour sampling."""
    rows = (np.arange(shape[0]) * image.shape[0]) // shape[0]
    columns = (np.arange(shape[1]) * image.shape[1]) // shape[1]
    return image[np.ix_(rows, columns)]


def check_roi(roi: tuple | None, shape: tuple) -> None:
    """Usage error unless `roi` (xmin, xmax, ymin, ymax) lies inside an image of (slow, fast) `shape`."""
    if roi is None:
        return
    xmin, xmax, ymin, ymax = roi
    if not (0 <= xmin <= xmax < shape[1] and 0 <= ymin <= ymax < shape[0]):
        raise CompareFailure(EXIT_USAGE, f"--roi {xmin} {xmax} {ymin} {ymax} is not inside the "
                                         f"{shape[1]}x{shape[0]} (fast x slow) image")


def crop(image: np.ndarray, roi: tuple | None) -> np.ndarray:
    """The ROI (inclusive fast range xmin..xmax, slow range ymin..ymax) of a (slow, fast) image."""
    if roi is None:
        return image
    xmin, xmax, ymin, ymax = roi
    return image[ymin:ymax + 1, xmin:xmax + 1]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally sized arrays; a constant image correlates 1 with an
    identical one and 0 with anything else (the coefficient itself is undefined there)."""
    a_centred = a - a.mean()
    b_centred = b - b.mean()
    norm = math.sqrt(float(np.sum(a_centred ** 2))) * math.sqrt(float(np.sum(b_centred ** 2)))
    if norm == 0:
        return 1.0 if np.array_equal(a, b) else 0.0
    return max(-1.0, min(1.0, float(np.sum(a_centred * b_centred)) / norm))


def compare_images(a: np.ndarray, b: np.ndarray, roi: tuple | None = None) -> dict:
    """Metrics of image `b` against reference `a` (same shape) over the ROI, in float64:
    correlation, mse, rmse, max_abs_diff, sum_a, sum_b, sum_ratio (= sum_b / sum_a), pixels."""
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    a_values = crop(a, roi).astype(np.float64).ravel()
    b_values = crop(b, roi).astype(np.float64).ravel()
    difference = b_values - a_values
    mse = float(np.mean(difference ** 2))
    sum_a = float(np.sum(a_values))
    sum_b = float(np.sum(b_values))
    return {
        "correlation": pearson(a_values, b_values),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "max_abs_diff": float(np.max(np.abs(difference))),
        "sum_a": sum_a,
        "sum_b": sum_b,
        "sum_ratio": sum_b / sum_a if sum_a != 0 else math.nan,
        "pixels": int(a_values.size),
    }


# ------------------------------------------------------------------------------------------- PNGs


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    checksum = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", checksum)


def encode_png(pixels: np.ndarray) -> bytes:
    """PNG bytes of an 8-bit grayscale (H, W) or RGB (H, W, 3) uint8 array."""
    if pixels.dtype != np.uint8 or not (pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] == 3)):
        raise ValueError("PNG pixels must be uint8 of shape (H, W) or (H, W, 3)")
    height, width = pixels.shape[:2]
    color_type = 0 if pixels.ndim == 2 else 2
    rows = np.ascontiguousarray(pixels).reshape(height, -1)
    # each scanline starts with its filter type; 0 = stored as is
    scanlines = np.hstack([np.zeros((height, 1), np.uint8), rows]).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return (PNG_SIGNATURE + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(scanlines, 6)) + _png_chunk(b"IEND", b""))


def write_png(path: Path, pixels: np.ndarray) -> None:
    Path(path).write_bytes(encode_png(pixels))


def scale_limit(values: np.ndarray, percentile: float) -> float:
    """The `percentile` of the finite values, falling back to their maximum, then to 1."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    for limit in (float(np.percentile(finite, percentile)), float(np.max(finite))):
        if limit > 0:
            return limit
    return 1.0


def grayscale_preview(image: np.ndarray, limit: float) -> np.ndarray:
    """uint8 image: 0..limit mapped linearly to 0..255, clipped."""
    scaled = np.nan_to_num(image.astype(np.float64) / limit, nan=0.0, posinf=1.0, neginf=0.0)
    return np.round(np.clip(scaled, 0.0, 1.0) * 255).astype(np.uint8)


def diff_heatmap(difference: np.ndarray, limit: float) -> np.ndarray:
    """RGB uint8 image of a signed difference: blue negative, white zero, red positive (+-limit)."""
    t = np.clip(np.nan_to_num(difference.astype(np.float64) / limit), -1.0, 1.0)
    fade = 1.0 - np.abs(t)  # how much the non-dominant channels stay lit
    red = np.where(t < 0, fade, 1.0)
    blue = np.where(t > 0, fade, 1.0)
    rgb = np.stack([red, fade, blue], axis=-1)
    return np.round(rgb * 255).astype(np.uint8)


# -------------------------------------------------------------------------------------- artifacts


def default_outdir(nb_args: list, caller_cwd: Path) -> Path:
    """comparisons/YYYYMMDD-HHMMSS-<hash of the arguments>, made unique with a -N suffix."""
    digest = hashlib.sha256(json.dumps(nb_args).encode()).hexdigest()[:8]
    base = caller_cwd / "comparisons" / f"{time.strftime('%Y%m%d-%H%M%S')}-{digest}"
    candidate, suffix = base, 2
    while candidate.exists():
        candidate, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    return candidate


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write(path: Path, data: bytes) -> None:
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CompareFailure(EXIT_IO, f"cannot write {path}: {exc.strerror or exc}") from None


def render_and_save(side: Side, nb_args: list, caller_cwd: Path, outdir: Path) -> RunResult:
    """Run one side, keep its stdout/stderr/float file in `outdir`, fail on a bad run."""
    result = run_side(side, nb_args, caller_cwd)
    _write(outdir / f"{side.label}_stdout.txt", result.stdout)
    _write(outdir / f"{side.label}_stderr.txt", result.stderr)
    if result.returncode != 0:
        raise CompareFailure(EXIT_RUNNER, f"{side.title} renderer exited with status "
                                          f"{result.returncode} (see {outdir / f'{side.label}_stderr.txt'})")
    if result.float_bytes is None:
        raise CompareFailure(EXIT_IO, f"{side.title} renderer wrote no float image")
    _write(outdir / f"{side.label}_float.bin", result.float_bytes)
    return result


def format_summary(first: Side, second: Side, metrics: dict, runtimes: dict,
                   threshold: float | None, passed: bool) -> str:
    """Runtimes, a one-line verdict and a small metrics table."""
    verdict = "PASS" if passed else "FAIL"
    if threshold is not None:
        verdict += f" (threshold {threshold:g})"
    lines = [f"{side.title} runtime: {runtimes[side.label]:.3f} s" for side in (first, second)]
    lines.append(f"correlation {metrics['correlation']:.8f}  rmse {metrics['rmse']:.6g}  "
                 f"max|diff| {metrics['max_abs_diff']:.6g}  sum ratio {second.title}/{first.title} "
                 f"{metrics['sum_ratio']:.8f}  -> {verdict}")
    table = [("correlation", metrics["correlation"]), ("mse", metrics["mse"]),
             ("rmse", metrics["rmse"]), ("max_abs_diff", metrics["max_abs_diff"]),
             (f"sum_{first.label}", metrics["sum_a"]), (f"sum_{second.label}", metrics["sum_b"]),
             ("sum_ratio", metrics["sum_ratio"]), ("pixels", metrics["pixels"])]
    lines += [f"  {name:<14} {value:.10g}" for name, value in table]
    return "\n".join(lines)


def _make_outdir(options: argparse.Namespace, nb_args: list, caller_cwd: Path) -> Path:
    """--outdir (else the default one), created with its parents."""
    outdir = Path(options.outdir) if options.outdir else default_outdir(nb_args, caller_cwd)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CompareFailure(EXIT_IO, f"cannot create --outdir {outdir}: {exc.strerror or exc}") from None
    return outdir


def _shaped_like(reference: np.ndarray, candidate: np.ndarray, sides: tuple, resample: bool) -> np.ndarray:
    """The candidate image on the reference's pixel grid: as it is, or resampled with --resample."""
    if reference.shape == candidate.shape:
        return candidate
    if not resample:
        first, second = sides
        raise CompareFailure(EXIT_SHAPE, f"image shapes differ: {first.title} {reference.shape} vs "
                                         f"{second.title} {candidate.shape} (slow, fast); "
                                         "use --resample")
    return resample_nearest(candidate, reference.shape)


def _write_previews(outdir: Path, sides: tuple, reference: np.ndarray, candidate: np.ndarray,
                    roi: tuple | None, options: argparse.Namespace) -> float:
    """Both sides' PNG previews on one scale, and with --save-diff diff.bin and diff.png.

    Returns the previews' upper limit (the --png-scale percentile of both images over the ROI).
    """
    first, second = sides
    both = np.concatenate([crop(reference, roi).ravel(), crop(candidate, roi).ravel()])
    limit = scale_limit(both, options.png_scale)
    write_png(outdir / f"{first.label}.png", grayscale_preview(reference, limit))
    write_png(outdir / f"{second.label}.png", grayscale_preview(candidate, limit))
    if options.save_diff:
        difference = candidate.astype(np.float32) - reference.astype(np.float32)
        _write(outdir / "diff.bin", difference.astype("<f4").tobytes())
        diff_limit = scale_limit(np.abs(crop(difference, roi)), options.png_scale)
        write_png(outdir / "diff.png", diff_heatmap(difference, diff_limit))
    return limit


def _summary(options: argparse.Namespace, nb_args: list, sides: tuple, results: dict, images: dict,
             roi: tuple | None, metrics: dict, exit_code: int, limit: float) -> dict:
    """The record written to summary.json (non-finite numbers as None, i.e. null)."""
    first, second = sides
    reference, candidate = images[first.label], images[second.label]
    summary = {
        "args": nb_args,
        "binaries": {side.label: list(side.command) for side in sides},
        "commands": {label: list(result.command) for label, result in results.items()},
        "shape": list(reference.shape),
        "shapes": {label: list(image.shape) for label, image in images.items()},
        "roi": list(roi) if roi else None,
        "resample": options.resample,
        "resampled": reference.shape != candidate.shape,
        f"runtime_{first.label}_ms": results[first.label].seconds * 1000.0,
        f"runtime_{second.label}_ms": results[second.label].seconds * 1000.0,
        "correlation": metrics["correlation"],
        "mse": metrics["mse"],
        "rmse": metrics["rmse"],
        "max_abs_diff": metrics["max_abs_diff"],
        f"sum_{first.label}": metrics["sum_a"],
        f"sum_{second.label}": metrics["sum_b"],
        "sum_ratio": metrics["sum_ratio"],
        "pixels": metrics["pixels"],
        "threshold": options.threshold,
        "passed": exit_code == EXIT_OK,
        "exit_code": exit_code,
        "png_scale_method": "linear",
        "png_percentile": options.png_scale,
        "png_limit": limit,
    }
    return {key: _json_safe(value) for key, value in summary.items()}


def compare_runs(options: argparse.Namespace, nb_args: list, caller_cwd: Path, environ) -> int:
    """The whole tool after argument parsing; returns the exit status or raises CompareFailure."""
    sides = first, second = resolve_sides(options, environ, caller_cwd)
    for side in sides:
        check_runnable(side)
    outdir = _make_outdir(options, nb_args, caller_cwd)

    results = {side.label: render_and_save(side, nb_args, caller_cwd, outdir) for side in sides}
    images = {side.label: load_float_image(results[side.label].float_bytes, options.shape,
                                           results[side.label].stdout.decode(errors="replace"), nb_args)
              for side in sides}
    reference = images[first.label]
    candidate = _shaped_like(reference, images[second.label], sides, options.resample)
    roi = tuple(options.roi) if options.roi else None
    check_roi(roi, reference.shape)

    metrics = compare_images(reference, candidate, roi)
    passed = options.threshold is None or metrics["correlation"] >= options.threshold
    limit = _write_previews(outdir, sides, reference, candidate, roi, options)
    exit_code = EXIT_OK if passed else EXIT_THRESHOLD
    summary = _summary(options, nb_args, sides, results, images, roi, metrics, exit_code, limit)
    _write(outdir / "summary.json", (json.dumps(summary, indent=2) + "\n").encode())
    runtimes = {label: result.seconds for label, result in results.items()}
    print(format_summary(first, second, metrics, runtimes, options.threshold, passed))
    print(f"artifacts: {outdir}")
    return exit_code


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        tool_argv, nb_args = split_argv(argv)
        try:
            options = parser.parse_args(_attach_option_values(tool_argv))
        except SystemExit as exc:  # --help or a usage error: keep main() returning the status
            return int(exc.code or 0)
        return compare_runs(options, nb_args, Path.cwd(), os.environ)
    except CompareFailure as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
