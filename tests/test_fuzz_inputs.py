"""Hypothesis fuzzing of the flag grammar and of every input-file reader (bounded: a few seconds each).

Whatever the input, the only outcomes allowed are a result or an InputError with a one-line
message; a render that is accepted must give finite pixels.  benchmarks/fuzz_inputs.py runs
the same generators thousands of times in separate processes, with timeouts.
"""
from __future__ import annotations

import math
import os
import tempfile
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from arraybragg.io import hkl
from arraybragg.models import nanobragg as setup
from arraybragg.io import smv
from arraybragg.render.renderer import render
from arraybragg.errors import InputError
from arraybragg.io.flags import FLAG_TABLE, parse_args
from arraybragg.models.validation import check_image

FLAGS = sorted(name for spec in FLAG_TABLE for name in spec.names if name not in ("-h", "--help", "--version"))
FILE_FLAGS = {"-hkl", "-mat", "-img", "-mask", "-sourcefile", "-dump", "-stol", "-4stol", "-Q", "-stolout",
              "-floatfile", "-floatimage", "-intfile", "-intimage", "-noisefile", "-noiseimage", "-pgmfile",
              "-pgmimage"}
BASE = "-cell 100 100 100 90 90 90 -default_F 100 -N 3 -detpixels 12 -nonoise -nopgm".split()

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr), st.floats(-200, 200).map(lambda v: "%.3g" % v),
    st.integers(-10**12, 10**12).map(str),
    st.sampled_from(["0", "-1", "1", "90", "180", "1e-300", "1e300", "nan", "inf", "-inf", ".5", "1e3", "0x10"]),
)
TOKEN = st.one_of(st.sampled_from(FLAGS), NUMBER_TEXT, st.text(max_size=6),
                  st.sampled_from(["random", "beam", "sample", "numpy", "float32"]))

SMALL_INT = st.one_of(st.integers(-5, 40).map(str), st.sampled_from(["0", "-1", "1000000000", "99999999999"]))
CHOICES = {"-pivot": ["beam", "sample", "middle"], "--backend": ["numpy", "jax"], "--dtype": ["float32", "float64"]}


@st.composite
def flag_with_values(draw):
    """A flag of the table with values of the right kind and count (mostly well formed)."""
    spec = draw(st.sampled_from([s for s in FLAG_TABLE if not set(s.names) & (FILE_FLAGS | {"-h", "--version"})]))
    flag = draw(st.sampled_from(spec.names))
    if spec.kind == "switch":
        return [flag]
    if spec.kind == "text":
        return [flag, draw(st.sampled_from(CHOICES.get(flag, ["x"])))]
    if spec.kind == "misset" and draw(st.booleans()):
        return [flag, "random"]
    count = draw(st.integers(1, spec.nargs)) if spec.kind == "cell" else spec.nargs
    values = SMALL_INT if spec.kind == "integer" else NUMBER_TEXT
    return [flag] + draw(st.lists(values, min_size=count, max_size=count))


_WELL_FORMED = st.lists(flag_with_values(), max_size=6)
_WITH_GARBAGE = st.lists(st.one_of(flag_with_values(), TOKEN.map(lambda t: [t])), max_size=6)
FLAG_LINE = st.one_of(_WELL_FORMED, _WELL_FORMED, _WELL_FORMED, _WITH_GARBAGE).map(
    lambda groups: [token for group in groups for token in group])

ONE_LINE = dict(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")   # overflowing renders warn in NumPy


def one_line(error: InputError) -> None:
    message = str(error)
    assert message and "\n" not in message


def arguments(tokens) -> list[str]:
    """Tokens after the base command, without the flags that name files (the reader fuzzers cover them)."""
    out = []
    for token in tokens:
        if out and out[-1] in FILE_FLAGS:
            out.pop()
        out.append(token)
    return [t for t in out if t not in FILE_FLAGS] + ["--max-work", "2e4"]


@settings(**ONE_LINE)
@given(FLAG_LINE)
def test_the_flag_grammar_refuses_or_renders_finite_pixels(tokens):
    argv = BASE + arguments(tokens)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            s = parse_args(argv)
            if s.show_help or s.show_version:
                return
            sim = setup.build_simulation(s, workdir=workdir)
        except InputError as error:
            one_line(error)
            return
        assert os.listdir(workdir) == []
        image = render(sim, threads=1).image
    try:
        check_image(image)      # what the command line does before writing anything
    except InputError as error:
        one_line(error)
        assert np.isinf(image).any() and not np.isnan(image).any(), argv   # overflow only, never NaN


NUMBERS = st.one_of(st.integers(-3, 3).map(str), st.floats(-1e3, 1e3).map(repr),
                    st.sampled_from(["nan", "inf", "-inf", "1e999", "0x1p3", "5e", "+", "-", ".", "x"]))
SEPARATORS = st.sampled_from([" ", "\t", "\n", "\r\n", ",", "\0", "\v"])
TEXT_FILE = st.one_of(
    st.binary(max_size=200),
    st.lists(st.tuples(NUMBERS, SEPARATORS), max_size=40).map(lambda pairs: "".join(a + b for a, b in pairs).encode()),
)


def write(directory: str, name: str, data: bytes) -> str:
    path = os.path.join(directory, name)
    with open(path, "wb") as stream:
        stream.write(data)
    return path


@settings(**ONE_LINE)
@given(TEXT_FILE)
def test_hkl_reader(data):
    with tempfile.TemporaryDirectory() as directory:
        path = write(directory, "in.hkl", data)
        try:
            grid, warnings = hkl.read_hkl_text(path, 1.0, max_bytes=2**24)
            hkl.refuse_unusable(path, grid)
        except InputError as error:
            one_line(error)
            return
    assert (np.abs(grid.F) <= hkl.MAX_F).all() and grid.F.nbytes <= 2**24
    assert all("\n" not in line for line in warnings)


FDUMP = st.one_of(
    st.binary(max_size=300),
    st.tuples(st.lists(st.integers(-3, 3), min_size=6, max_size=6), st.binary(max_size=600)).map(
        lambda pair: ("%d %d %d %d %d %d\n\f" % tuple(pair[0])).encode() + pair[1]),
)


@settings(**ONE_LINE)
@given(FDUMP)
def test_fdump_reader(data):
    with tempfile.TemporaryDirectory() as directory:
        try:
            grid = hkl.read_fdump(write(directory, "Fdump.bin", data), max_bytes=2**24)
        except InputError as error:
            one_line(error)
            return
    assert (np.abs(grid.F) <= hkl.MAX_F).all()


@settings(**ONE_LINE)
@given(TEXT_FILE)
def test_matrix_reader(data):
    with tempfile.TemporaryDirectory() as directory:
        try:
            vectors = setup._read_matrix(write(directory, "A.mat", data), 1e-10)
        except InputError as error:
            one_line(error)
            return
    assert all(np.isfinite(v).all() for v in vectors)


@settings(**ONE_LINE)
@given(TEXT_FILE)
def test_source_reader(data):
    with tempfile.TemporaryDirectory() as directory:
        try:
            table = setup._read_sources(write(directory, "s.txt", data), np.array([1.0, 0, 0]), 10.0, 1e-10)
        except InputError as error:
            one_line(error)
            return
    assert np.isfinite(table).all() and (table[:, 4] > 0).all() and (table[:, 3] >= 0).all()


HEADER_VALUE = st.one_of(NUMBERS, st.text(max_size=5))
SMV_KEYS = ["HEADER_BYTES", "SIZE1", "SIZE2", "DETECTOR_DIMENSIONS", "PIXEL_SIZE", "DISTANCE", "WAVELENGTH",
            "BEAM_CENTER_X", "BEAM_CENTER_Y", "ORGX", "ORGY", "PHI", "OSC_RANGE", "CLOSE_DISTANCE", "BYTE_ORDER"]
SMV_FILE = st.one_of(
    st.binary(max_size=700),
    st.tuples(st.dictionaries(st.sampled_from(SMV_KEYS), HEADER_VALUE, max_size=8), st.binary(max_size=2000)).map(
        lambda pair: ("{\nHEADER_BYTES=512;\n" + "".join(f"{k}={v};\n" for k, v in pair[0].items()) + "}\f")
        .encode("utf-8", "replace").ljust(512, b" ")[:600] + pair[1]),
)


@settings(**ONE_LINE)
@given(SMV_FILE, st.sampled_from(["-img", "-mask"]))
def test_smv_headers_through_the_command_line(data, flag):
    with tempfile.TemporaryDirectory() as directory:
        path = write(directory, "in.smv", data)
        argv = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "1", flag, path, "--max-work", "2e4"]
        try:
            image = smv.read_smv(path)
            assert image.data.shape == (image.height, image.width)
            sim = setup.build_simulation(parse_args(argv), workdir=directory)
        except InputError as error:
            one_line(error)
            return
        values = (sim.detector.distance, sim.detector.pixel_size, sim.beam.lambda0, *sim.detector.pix0)
        assert all(math.isfinite(v) for v in values) and sim.detector.pixel_size > 0


NOISIFY_FILE_FLAGS = {"-floatfile", "-floatimage", "-bin", "-header", "-intfile", "-intimage", "-noisefile",
                      "-noiseimage", "-pgmfile", "-pgmimage"}


@st.composite
def noisify_flag(draw):
    """One of arraybragg-noisify's value flags (files aside) with a number, a word, or a PSF kind."""
    from arraybragg.tools import noisify
    flag = draw(st.sampled_from(sorted(set(noisify._BY_NAME) - NOISIFY_FILE_FLAGS)))
    choices = {"-psf": ["gauss", "fiber", "gaussian", "moffat"], "--psf-method": ["direct", "fft", "x"]}
    extremes = st.sampled_from(["nan", "inf", "-inf", "1e300", "-1e300", "1e-300", "0", "-1", "2147483648", "abc"])
    return [flag, draw(st.sampled_from(choices[flag]) if flag in choices else st.one_of(extremes, NUMBER_TEXT))]


@settings(**dict(ONE_LINE, max_examples=200))
@given(st.lists(noisify_flag(), max_size=4), st.sampled_from([[], ["-psf", "gauss"], ["-psf", "fiber"], ["-nonoise"]]))
@example([["-psf_fwhm", "1e300"]], ["-psf", "gauss"])  # each of these once raised or warned
@example([["-flicker", "inf"]], ["-psf", "fiber"])
@example([["--beamstop", "1e300"]], [])
@example([["-psf_fwhm", "-1e300"]], ["-psf", "gauss"])
@example([["--threads", "100000"]], ["-psf", "gauss"])
def test_noisify_refuses_in_one_line_or_writes_its_files(groups, extra):
    """Any values of noisify's flags: exit 0 with the files written, or exit 2 with one line and no file;
    never a traceback or a warning (the PSF, the noise loop and the defects all see the values)."""
    import contextlib
    import io
    from arraybragg.tools import noisify
    with tempfile.TemporaryDirectory() as directory:
        image = np.random.default_rng(1).gamma(0.5, 30.0, (6, 8)).astype(np.float32)
        image[2, 3] = 4e4
        image.tofile(os.path.join(directory, "in.bin"))
        outputs = [item for name in ("int.img", "noise.img", "image.pgm") for item in
                   (f"-{name.split('.')[0].replace('image', 'pgm')}file", os.path.join(directory, name))]
        argv = ["-floatfile", os.path.join(directory, "in.bin"), "-detpixels_x", "8", "-seed", "3", *extra,
                *(token for group in groups for token in group), *outputs, "--threads", "2"]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
                warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # (a warning would be a stray line on the program's stderr)
            status = noisify.main(argv)
        written = sorted(os.listdir(directory))
    assert not caught, (argv, [str(w.message) for w in caught])
    if status == 2:
        assert err.getvalue().count("\n") == 1 and written == ["in.bin"], (argv, err.getvalue())
    else:
        assert status == 0 and "int.img" in written, (argv, err.getvalue())
