"""The files the command line writes (SMV int/noise images, PGM) against nanoBragg's, case by case.

Each corpus case that kept an ``int.img.gz``, ``noise.img.gz`` or ``image.pgm.gz`` is run through
``arraybragg.cli.main`` with its arguments and its ``output_flags``; then every header value must
equal nanoBragg's and at least 99.9% of the pixels must be identical, none off by more than one
count (the float images agree to 1e-6, so a pixel may round the other way at a .5 boundary).
"""
from __future__ import annotations

import math
import shlex

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, corpus_cases, link_inputs

from arraybragg import cli

OUTPUT_FILES = {"int.img.gz": "int.img", "noise.img.gz": "noise.img", "image.pgm.gz": "image.pgm"}
MIN_IDENTICAL = 0.999

pytestmark = pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)


def _params():
    params = []
    for case in corpus_cases():
        if not any(case.has(name) for name in OUTPUT_FILES):
            continue
        marks = [pytest.mark.slow] if case.meta.get("slow") else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason=NO_REFERENCE))]


# --- file parsers (independent of arraybragg.io.smv) ----------------------------------------------

def parse_smv(raw: bytes) -> tuple[dict[str, str], np.ndarray]:
    """(header KEY -> value text, uint16 pixels (SIZE2, SIZE1)) of an SMV file.

    The pixels start at HEADER_BYTES, or right after the closing brace and form feed of a
    header longer than it declares (as nanoBragg writes Pilatus-size ones)."""
    end = raw.index(b"}")
    text = raw[:end].decode("ascii")
    header = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            header[key.strip()] = value.strip().rstrip(";")
    offset = max(int(header["HEADER_BYTES"]), end + 2)
    dtype = "<u2" if header["BYTE_ORDER"].startswith("little") else ">u2"
    shape = (int(header["SIZE2"]), int(header["SIZE1"]))
    pixels = np.frombuffer(raw, dtype=dtype, count=shape[0] * shape[1], offset=offset).reshape(shape)
    return header, pixels


def parse_pgm(raw: bytes) -> tuple[list[bytes], np.ndarray]:
    """(the four header lines, uint8 pixels (height, width)) of a binary PGM with one comment line."""
    lines = raw.split(b"\n", 4)
    width, height = (int(v) for v in lines[1].split())
    pixels = np.frombuffer(lines[4], dtype=np.uint8)
    assert pixels.size == width * height, "PGM pixel count"
    return lines[:4], pixels.reshape(height, width)


def _numbers(text: str) -> list[float]:
    return [float(v) for v in text.split(",")]


def assert_headers_equal(ours: dict[str, str], theirs: dict[str, str]) -> None:
    assert list(ours) == list(theirs), "header keys or their order differ"
    for key, value in theirs.items():
        try:
            expected = _numbers(value)
        except ValueError:
            assert ours[key] == value, key
            continue
        got = _numbers(ours[key])
        assert len(got) == len(expected) and all(
            g == e or (math.isnan(g) and math.isnan(e)) for g, e in zip(got, expected)), \
            f"{key}: {ours[key]} != {value}"


def assert_pixels_close(ours: np.ndarray, theirs: np.ndarray, label: str) -> int:
    """At least MIN_IDENTICAL of the pixels identical, none off by more than 1; returns the identical count."""
    assert ours.shape == theirs.shape, label
    diff = np.abs(ours.astype(np.int64) - theirs.astype(np.int64))
    identical = int(np.count_nonzero(diff == 0))
    assert identical >= MIN_IDENTICAL * diff.size, f"{label}: only {identical} of {diff.size} pixels identical"
    assert int(diff.max()) <= 1, f"{label}: a pixel is off by {int(diff.max())} counts"
    return identical


def raw_header_end(raw: bytes) -> int:
    """Bytes up to and including the header's closing brace and form feed."""
    return raw.index(b"}\f") + 2


# --- the test -----------------------------------------------------------------------------------

def render_case_files(case, workdir, monkeypatch) -> None:
    link_inputs(workdir)
    monkeypatch.chdir(workdir)
    argv = case.args + shlex.split(case.meta["output_flags"]) + ["-noprogress"]
    assert cli.main(argv) == 0


@pytest.mark.parametrize("case", _params())
def test_output_files_match_nanobragg(case, tmp_path, monkeypatch):
    render_case_files(case, tmp_path, monkeypatch)
    compared = []
    for reference_name, our_name in OUTPUT_FILES.items():
        if not case.has(reference_name):
            continue
        assert our_name in case.meta["output_flags"], f"{case.id}: {our_name} not requested"
        ours_raw, theirs_raw = (tmp_path / our_name).read_bytes(), case.read_bytes(reference_name)
        if our_name.endswith(".img"):
            ours_header, ours = parse_smv(ours_raw)
            theirs_header, theirs = parse_smv(theirs_raw)
            declared = int(ours_header.pop("HEADER_BYTES"))
            assert int(theirs_header.pop("HEADER_BYTES")) == 512
            assert_headers_equal(ours_header, theirs_header)
            # the default mode declares a multiple of 512 that holds the text (nanoBragg: always 512)
            assert declared % 512 == 0 and raw_header_end(ours_raw) <= declared < raw_header_end(ours_raw) + 512
            assert len(ours_raw) == declared + 2 * ours.size
        else:
            ours_lines, ours = parse_pgm(ours_raw)
            theirs_lines, theirs = parse_pgm(theirs_raw)
            assert ours_lines[0] == theirs_lines[0] == b"P5" and ours_lines[3] == theirs_lines[3] == b"255"
            assert ours_lines[1] == theirs_lines[1]
            assert float(ours_lines[2].rsplit(b" ", 1)[1]) == float(theirs_lines[2].rsplit(b" ", 1)[1])
        compared.append((our_name, assert_pixels_close(ours, theirs, f"{case.id} {our_name}"), ours.size))
    assert compared
    print(case.id, " ".join(f"{name}: {same}/{total} identical" for name, same, total in compared))


def _corpus_case(name):
    matches = [c for c in corpus_cases() if c.id == name]
    if not matches:
        pytest.skip(f"corpus case {name} not present")
    return matches[0]


def test_sup_roi_default_int_image_opens_in_fabio_and_our_reader(tmp_path, monkeypatch):
    """nanoBragg's Pilatus-size header is 517 bytes declared as 512; ours declares 1024 and is padded."""
    fabio = pytest.importorskip("fabio")
    from arraybragg.io import smv

    case = _corpus_case("sup_roi")
    reference_raw = case.read_bytes("int.img.gz")
    assert raw_header_end(reference_raw) == 517
    _, reference = parse_smv(reference_raw)
    render_case_files(case, tmp_path, monkeypatch)
    path = tmp_path / "int.img"
    assert path.read_bytes().startswith(b"{\nHEADER_BYTES=1024;\n")
    read_by_fabio = fabio.open(str(path)).data
    assert int(reference.max()) > 1000
    assert_pixels_close(read_by_fabio, reference, "fabio")
    assert np.array_equal(smv.read_smv(path).data, read_by_fabio)
    # the C's own file, read by our reader: pixels from byte 517, not 512
    (tmp_path / "c.img").write_bytes(reference_raw)
    assert np.array_equal(smv.read_smv(tmp_path / "c.img").data, reference)


def test_sup_roi_c_parity_int_image_keeps_the_c_header(tmp_path, monkeypatch):
    from arraybragg.io import smv

    case = _corpus_case("sup_roi")
    link_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = case.args + shlex.split(case.meta["output_flags"]) + ["-noprogress", "--c-parity"]
    assert cli.main(argv) == 0
    raw = (tmp_path / "int.img").read_bytes()
    end = raw_header_end(raw)  # the C's values of this geometry (pix0 ignored) take 518 bytes
    assert raw.startswith(b"{\nHEADER_BYTES=512;\n") and end > 512
    _, pixels = parse_smv(raw)
    assert len(raw) == end + 2 * pixels.size and int(pixels.max()) > 1000
    assert np.array_equal(smv.read_smv(tmp_path / "int.img").data, pixels)
