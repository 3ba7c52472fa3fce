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


# --- file parsers (independent of arraybragg.smv) ----------------------------------------------

def parse_smv(raw: bytes) -> tuple[dict[str, str], np.ndarray]:
    """(header KEY -> value text, uint16 pixels (SIZE2, SIZE1)) of an SMV file."""
    text = raw[:raw.index(b"}")].decode("ascii")
    header = {}
    for line in text.splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            header[key.strip()] = value.strip().rstrip(";")
    offset = int(header["HEADER_BYTES"])
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
            assert_headers_equal(ours_header, theirs_header)
            assert len(ours_raw) == len(theirs_raw)
        else:
            ours_lines, ours = parse_pgm(ours_raw)
            theirs_lines, theirs = parse_pgm(theirs_raw)
            assert ours_lines[0] == theirs_lines[0] == b"P5" and ours_lines[3] == theirs_lines[3] == b"255"
            assert ours_lines[1] == theirs_lines[1]
            assert float(ours_lines[2].rsplit(b" ", 1)[1]) == float(theirs_lines[2].rsplit(b" ", 1)[1])
        compared.append((our_name, assert_pixels_close(ours, theirs, f"{case.id} {our_name}"), ours.size))
    assert compared
    print(case.id, " ".join(f"{name}: {same}/{total} identical" for name, same, total in compared))
