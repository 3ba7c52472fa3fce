"""Structure factors (arraybragg.io.hkl): HKL text read with the C's fscanf rules, Fdump.bin.

Expected Fdump digests are those of the Fdump.bin the C program wrote for the same files
(little-endian x86-64), so they pin the grid, limits and layout byte for byte.
"""
import hashlib
import math
import sys

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE

from arraybragg.io import hkl
from arraybragg.errors import InputError

little_endian_only = pytest.mark.skipif(sys.byteorder != "little", reason="digests are of little-endian files")


def read_text(tmp_path, text, default_F=0.0):
    path = tmp_path / "in.hkl"
    path.write_bytes(text.encode("latin-1") if isinstance(text, str) else text)
    return hkl.read_hkl_text(path, default_F)


def fdump_digest(tmp_path, grid):
    path = tmp_path / "Fdump.bin"
    hkl.write_fdump(path, grid)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def F_at(grid, h, k, l):
    return grid.F[h - grid.h_min, k - grid.k_min, l - grid.l_min]


def limits(grid):
    return grid.h_min, grid.h_max, grid.k_min, grid.k_max, grid.l_min, grid.l_max


def test_small_grid_and_default_fill(tmp_path):
    grid, warnings = read_text(tmp_path, "0 0 0 10\n1 -1 2 20.5\n  -1 0 1   3\n", default_F=7.0)
    assert warnings == []
    assert limits(grid) == (-1, 1, -1, 0, 0, 2) and grid.count == 3
    assert (grid.h_range, grid.k_range, grid.l_range) == (3, 2, 3)
    assert grid.F.shape == (4, 3, 4) and grid.F.dtype == np.float64
    assert (F_at(grid, 0, 0, 0), F_at(grid, 1, -1, 2), F_at(grid, -1, 0, 1)) == (10.0, 20.5, 3.0)
    assert F_at(grid, 1, 0, 0) == 7.0  # missing index: default_F
    # the extra slab of each axis stays zero
    assert not grid.F[3].any() and not grid.F[:, 2].any() and not grid.F[:, :, 3].any()
    grid, _ = read_text(tmp_path, "0 0 0 10\n1 -1 2 20.5\n")
    assert F_at(grid, 1, 0, 0) == 0.0


def test_repeated_index_keeps_the_last_value(tmp_path):
    grid, _ = read_text(tmp_path, "0 0 0 1\n1 1 1 2\n0 0 0 3\n")
    assert F_at(grid, 0, 0, 0) == 3.0 and grid.count == 3


# small files read by the C with -default_F 1.25, and the digest of the Fdump.bin it wrote
C_READS = {
    # five columns: fscanf reads numbers four at a time, so the fifth column becomes the next h
    "five": ("1 2 3 10.5 99\n-1 0 2 20 7\n0 0 0 5 1\n2 2 2 3 4\n", (0, 99, -1, 7, 0, 3), 5,
             "a4a6d0172ba539c974aa43330e40865e53812d0da1fbb411c53cd2a393a468eb"),
    # 1.5 counts in the first pass but stops the second one ("%d" reads 1, then fails on .5)
    "nonint": ("1 2 3 10\n1.5 0 2 20\n0 0 0 5\n-2 -1 -3 4.25\n", (-2, 1, -1, 2, -3, 3), 4,
               "b0888e48784cb8c3960c45bdf222e40f6a296034dae36f1af96ac65a1952a9d7"),
    # glibc %lg: hex floats, a dangling exponent ("5e" is 5), inf
    "weird": ("1 2 3 10\n2 1 1 0x1.8p1\n0 0 0 5e\n1 1 1 7\n2 2 0 -3e+\n1 0 0 inf\n", (0, 2, 0, 2, 0, 3), 6,
              "b116efb1598e39a047aad20963839c094b649400531ab67bc7c1d419f8c801bb"),
    # any C whitespace separates; the first token that is no number ends the file
    "junk": ("  1\t2\v3 1e2\f-1 -1 -1 2.5 junk 4 4 4 9\n", (-1, 1, -1, 2, -1, 3), 2,
             "f585856532665f89a2846491c4c87ac8c43bb7349df526a4604d86b7939e716b"),
    # -0.5 truncates to an h_min of 0
    "negfrac": ("1 2 3 10\n-0.5 2 3 11\n2 2 3 12\n", (0, 2, 2, 2, 3, 3), 3,
                "9ebf35f88534fe79d8e968a79e37abb0effb37aa032af668c0baf8fb2568b06c"),
    # 1e0 is an integer for the first pass, but "%d" stops at the "e"
    "expint": ("3 2 1 10\n1e0 2 3 11\n2 2 3 12\n", (1, 3, 2, 2, 1, 3), 3,
               "21520ad90f665dfd75eb3f7b06010c9560fa453c76176e93f5debee58a4f1000"),
    "nan": ("1 1 1 nan\nnan 1 1 3\n2 2 2 4\n", (1, 2, 1, 2, 1, 2), 3,
            "929d6bf5f4c438537aec1b053ea2378adb3412c3c57f61d21a7df09486a1d3b7"),
}


@little_endian_only
@pytest.mark.parametrize("name", sorted(C_READS))
def test_reads_like_glibc_fscanf(tmp_path, name):
    text, expected_limits, count, digest = C_READS[name]
    grid, _ = read_text(tmp_path, text, default_F=1.25)
    assert limits(grid) == expected_limits and grid.count == count
    assert fdump_digest(tmp_path, grid) == digest


def test_odd_files_in_detail(tmp_path):
    grid, _ = read_text(tmp_path, C_READS["five"][0], default_F=1.25)
    assert F_at(grid, 1, 2, 3) == 10.5 and F_at(grid, 99, -1, 0) == 2.0 and F_at(grid, 20, 7, 0) == 0.0
    grid, warnings = read_text(tmp_path, C_READS["nonint"][0], default_F=1.25)
    assert warnings == ["WARNING: non-integer value for h (1.5) at line 1"]
    assert F_at(grid, 1, 2, 3) == 10.0 and F_at(grid, 0, 0, 0) == 1.25 and F_at(grid, -2, -1, -3) == 1.25
    grid, warnings = read_text(tmp_path, C_READS["weird"][0])
    assert warnings == []
    assert F_at(grid, 2, 1, 1) == 3.0 and F_at(grid, 0, 0, 0) == 5.0 and F_at(grid, 2, 2, 0) == -3.0
    assert F_at(grid, 1, 0, 0) == math.inf
    _, warnings = read_text(tmp_path, C_READS["nan"][0])
    assert warnings == ["WARNING: non-integer value for h (nan) at line 1"]


@little_endian_only
def test_second_pass_can_split_a_token(tmp_path):
    # "%d" reads the 3 of "3.5" as l and "%lg" takes ".5" as F; later groups shift
    grid, _ = read_text(tmp_path, "1 2 3.5 0 0 0 0 9\n")
    assert F_at(grid, 1, 2, 3) == 0.5 and grid.count == 2
    assert fdump_digest(tmp_path, grid) == "1cc9db51c42213e44664611fa01d128cc41326ce5d2eb3ef60fe99a233df0411"
    # when the shifted groups fall outside the grid the C writes out of bounds (it crashes)
    with pytest.raises(InputError, match="outside the range"):
        read_text(tmp_path, "1 2 3.5 100 0 0 0 9\n")


def test_no_entries_is_an_input_error(tmp_path):
    for text in ("", "h k l F\n1 2 3 4\n", "1 2 3\n"):
        with pytest.raises(InputError, match="not enough HKL indices"):
            read_text(tmp_path, text)
    with pytest.raises(InputError, match="missing.hkl"):
        hkl.read_hkl_text(tmp_path / "missing.hkl", 0.0)


def test_fdump_round_trip(tmp_path):
    grid, _ = read_text(tmp_path, "-2 0 1 5.5\n1 3 -1 7.25\n", default_F=2.0)
    path = tmp_path / "Fdump.bin"
    hkl.write_fdump(path, grid)
    assert path.read_bytes().startswith(b"-2 1 0 3 -1 1\n\f")
    back = hkl.read_fdump(path)
    assert limits(back) == limits(grid) and np.array_equal(back.F, grid.F)
    assert back.count == 4 * 4 * 3  # the C sets hkls = h_range * k_range * l_range


def test_fdump_whitespace_quirk(tmp_path):
    # 0.1391's first (low) byte is 0x20: the C's "\n\f" in the format skips it as
    # whitespace, so every double is read one byte late (value printed by the C)
    F = np.zeros((3, 3, 3))
    F[0, 0, 0], F[1, 1, 1] = 0.1391, 5.0
    hkl.write_fdump(tmp_path / "Fdump.bin", hkl.HKLGrid(F, 0, 1, 0, 1, 0, 1, 1))
    back = hkl.read_fdump(tmp_path / "Fdump.bin")
    assert back.F[0, 0, 0] == 1.766544544457653e-307 and back.F[2, 2, 2] == 0.0


def test_fdump_errors(tmp_path):
    path = tmp_path / "Fdump.bin"
    for content, reason in ((b"not a dump", "six index limits"), (b"0 1 0 1 0 1\n\f" + b"\0" * 100, "truncated"),
                            (b"3 1 0 1 0 1\n\f", "negative index range")):
        path.write_bytes(content)
        with pytest.raises(InputError, match=reason):
            hkl.read_fdump(path)
    with pytest.raises(InputError, match="nothere"):
        hkl.read_fdump(tmp_path / "nothere")


# Fdump.bin the C wrote after reading each corpus input file
CORPUS_FDUMP = {
    "pattern.hkl": "7e17105d5fdb7e564b4a07f678b358c850c5a43f0cc0f675144776135c531170",
    "smooth.hkl": "e7b4c63bf36c2cef34795a6450aff5f368f8355ae4d943cb6e32f450d9a3983f",
    "sparse.hkl": "608fe446c49f6bd4f4752333397f7658aec15120383ac32558cb0ee87e46b385",
    "smallgrid.hkl": "70aa96820281dc82fb001925abb6eaa426cf2d8053bedc7b48544ac75081e72b",
    "scaled.hkl": "29a427209e14ce2f1fc8e4f5f61eacc194f6c4cb1f5c6a6ca20bf19c244978c5",
}


@little_endian_only
@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
@pytest.mark.parametrize("name", sorted(CORPUS_FDUMP))
def test_corpus_inputs_give_the_c_fdump(tmp_path, name):
    path = REFERENCE / "inputs" / name
    grid, warnings = hkl.read_hkl_text(path, 0.0)
    assert warnings == []
    assert fdump_digest(tmp_path, grid) == CORPUS_FDUMP[name]
    # every listed entry lands at its index
    entries = np.loadtxt(path, ndmin=2)
    assert grid.count == len(entries)
    h, k, l = (entries[:, i].astype(int) for i in range(3))
    assert np.array_equal(grid.F[h - grid.h_min, k - grid.k_min, l - grid.l_min], entries[:, 3])


@pytest.mark.parametrize("text, row_parser", [
    (b"1 2 3 10.5\n-4 +5 -6 1e2\r\n\n 7\t8 9 .25 \n0 0 0 5.\n", True),   # plain rows: NumPy's row parser
    (b"1 2 3 10.5 -4 5 -6 1e2\n", False),                              # two entries on one line
    (b"1 2 3.0 10.5\n", False),                                        # an index "%d" reads only in part
    (b"1 2 3 0x10\n", False),                                          # a token strtod reads in part
])
def test_plain_rows_read_like_the_token_scanners(text, row_parser):
    """Whichever path reads a file, the result is that of glibc's fscanf over its token stream."""
    assert (hkl._plain_table(text) is not None) == row_parser
    first, indices, values = hkl._hkl_passes(text)
    scanned_first = np.array(hkl._all_groups(text, hkl._FIRST_PASS), dtype=np.float64).reshape(-1, 4)
    scanned_second = hkl._all_groups(text, hkl._SECOND_PASS)
    np.testing.assert_array_equal(first, scanned_first)
    np.testing.assert_array_equal(indices, np.array([e[:3] for e in scanned_second], dtype=np.int64).reshape(-1, 3))
    np.testing.assert_array_equal(values, np.array([e[3] for e in scanned_second], dtype=np.float64))
