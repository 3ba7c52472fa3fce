"""A named table of bad inputs: each is refused with exit 2 and exactly one line on stderr naming
the flag (or file, or header key) at fault, without a traceback and without leaving a file behind.

Every case runs ``arraybragg.cli.main`` in an empty scratch directory holding only the case's
input files; afterwards the directory must hold exactly those files (no image, no Fdump.bin,
no temporary).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO

from arraybragg import cli
from arraybragg.outputs import render_files

CELL = "-cell 100 100 100 90 90 90"
BASE = f"{CELL} -default_F 100 -N 5 -detpixels 16"
NO_F = f"{CELL} -N 5 -detpixels 16"


def smv(**keys) -> bytes:
    """A 16x16 little-endian SMV image with the given header keys (values as text)."""
    fields = {"HEADER_BYTES": 512, "DIM": 2, "BYTE_ORDER": "little_endian", "TYPE": "unsigned_short",
              "SIZE1": 16, "SIZE2": 16, "PIXEL_SIZE": 0.1, "DISTANCE": 100, "WAVELENGTH": 1, **keys}
    header = "{\n" + "".join(f"{k}={v};\n" for k, v in fields.items()) + "}\f"
    return header.encode().ljust(512, b" ") + np.ones((16, 16), dtype="<u2").tobytes()


def fdump(limits=(0, 1, 0, 1, 0, 1), values=None) -> bytes:
    shape = tuple(limits[i + 1] - limits[i] + 2 for i in (0, 2, 4))
    F = np.ones(shape) if values is None else values
    return ("%d %d %d %d %d %d\n\f" % limits).encode() + np.asarray(F, dtype="<f8").tobytes()


NAN_FDUMP = fdump(values=np.full((3, 3, 3), np.nan))
MATRIX = "0.01 0 0\n0 0.01 0\n0 0 0.01\n"

# (id, arguments, input files {name: bytes | None for a directory}, text the error line must contain)
CASES = [
    # the flag grammar
    ("distance-not-a-number", f"{BASE} -distance abc", {}, "-distance"),
    ("distance-missing-value", f"{BASE} -distance", {}, "-distance"),
    ("N-not-an-integer", f"{BASE} -N five", {}, "-N"),
    ("roi-three-values", f"{BASE} -roi 1 2 3", {}, "-roi"),
    ("unknown-flag", f"{BASE} -dist 100", {}, "-dist"),
    ("stray-argument", f"{BASE} stray", {}, "stray"),
    ("backend-unknown", f"{BASE} --backend jax", {}, "--backend"),
    ("threads-zero", f"{BASE} --threads 0", {}, "--threads"),
    ("unknown-gnu-option", f"{BASE} --frobnicate", {}, "--frobnicate"),
    ("pivot-unknown", f"{BASE} -pivot middle", {}, "-pivot"),
    ("misset-two-values", f"{BASE} -misset 1 2", {}, "-misset"),
    # lengths, wavelengths, energies, pixel sizes: finite and positive
    ("distance-zero", f"{BASE} -distance 0", {}, "-distance"),
    ("distance-negative", f"{BASE} -distance -5", {}, "-distance"),
    ("distance-inf", f"{BASE} -distance inf", {}, "-distance"),
    ("distance-nan", f"{BASE} -distance nan", {}, "-distance"),
    ("pixel-zero", f"{BASE} -pixel 0", {}, "-pixel"),
    ("pixel-negative", f"{BASE} -pixel -0.1", {}, "-pixel"),
    ("pixel-inf", f"{BASE} -pixel inf", {}, "-pixel"),
    ("pixel-nan", f"{BASE} -pixel nan", {}, "-pixel"),
    ("lambda-zero", f"{BASE} -lambda 0", {}, "-lambda"),
    ("lambda-negative", f"{BASE} -lambda -1", {}, "-lambda"),
    ("lambda-inf", f"{BASE} -lambda inf", {}, "-lambda"),
    ("lambda-nan", f"{BASE} -lambda nan", {}, "-lambda"),
    ("wavelength-nan", f"{BASE} -wavelength nan", {}, "-wavelength"),
    ("energy-zero", f"{BASE} -energy 0", {}, "-energy"),
    ("energy-negative", f"{BASE} -energy -5", {}, "-energy"),
    ("energy-inf", f"{BASE} -energy inf", {}, "-energy"),
    ("fluence-zero", f"{BASE} -fluence 0", {}, "-fluence"),
    ("fluence-negative", f"{BASE} -fluence -1", {}, "-fluence"),
    ("fluence-inf", f"{BASE} -fluence inf", {}, "-fluence"),
    ("flux-negative", f"{BASE} -flux -1", {}, "-flux"),
    ("flux-inf", f"{BASE} -flux inf", {}, "-flux"),
    ("exposure-negative", f"{BASE} -exposure -1", {}, "-exposure"),
    ("beamsize-zero", f"{BASE} -beamsize 0", {}, "-beamsize"),
    ("beamsize-negative", f"{BASE} -beamsize -1", {}, "-beamsize"),
    ("density-zero", f"{BASE} -density 0", {}, "-density"),
    ("MW-zero", f"{BASE} -MW 0", {}, "-MW"),
    ("molecular-weight-negative", f"{BASE} -molecular_weight -18", {}, "-molecular_weight"),
    ("fudge-zero", f"{BASE} -fudge 0", {}, "-fudge"),
    ("fudge-nan", f"{BASE} -fudge nan", {}, "-fudge"),
    ("sample-x-negative", f"{BASE} -sample_x -1", {}, "-sample_x"),
    ("xtalsize-negative", f"{BASE} -xtalsize -0.1", {}, "-xtalsize"),
    ("sample-y-inf", f"{BASE} -sample_y inf", {}, "-sample_y"),
    ("detector-thick-negative", f"{BASE} -detector_thick -10", {}, "-detector_thick"),
    ("detector-thick-inf", f"{BASE} -detector_thick inf", {}, "-detector_thick"),
    ("detector-abs-tiny", f"{BASE} -detector_abs 1e-320", {}, "-detector_abs"),
    ("dmin-negative", f"{BASE} -dmin -1", {}, "-dmin"),
    ("water-negative", f"{BASE} -water -5", {}, "-water"),
    ("water-nan", f"{BASE} -water nan", {}, "-water"),
    ("detsize-zero", f"{CELL} -default_F 1 -detsize 0", {}, "-detsize"),
    ("detsize-inf", f"{CELL} -default_F 1 -detsize inf", {}, "-detsize"),
    ("detpixels-negative", f"{CELL} -default_F 1 -detpixels -5", {}, "-detpixels"),
    ("pix0-vector-inf", f"{BASE} -pix0_vector inf 0 0", {}, "-pix0_vector"),
    # polarization, dispersion, angles
    ("polar-above-one", f"{BASE} -polar 1.5", {}, "-polar"),
    ("polar-below-minus-one", f"{BASE} -polar -2", {}, "-polar"),
    ("polar-nan", f"{BASE} -polar nan", {}, "-polar"),
    ("dispersion-250-percent", f"{BASE} -dispersion 250", {}, "-dispersion"),
    ("dispersion-inf", f"{BASE} -dispersion inf", {}, "-dispersion"),
    ("mosaic-inf", f"{BASE} -mosaic inf", {}, "-mosaic"),
    ("mosaic-nan", f"{BASE} -mosaic nan", {}, "-mosaic"),
    ("phi-inf", f"{BASE} -phi inf", {}, "-phi"),
    ("osc-inf", f"{BASE} -osc inf", {}, "-osc"),
    ("osc-nan", f"{BASE} -osc nan", {}, "-osc"),
    ("phistep-inf", f"{BASE} -phistep inf", {}, "-phistep"),
    ("detector-rotx-inf", f"{BASE} -detector_rotx inf", {}, "-detector_rotx"),
    ("detector-roty-nan", f"{BASE} -detector_roty nan", {}, "-detector_roty"),
    ("detector-rotz-minus-inf", f"{BASE} -detector_rotz -inf", {}, "-detector_rotz"),
    ("twotheta-inf", f"{BASE} -twotheta inf", {}, "-twotheta"),
    ("misset-inf", f"{BASE} -misset inf 0 0", {}, "-misset"),
    ("misset-nan", f"{BASE} -misset 0 nan 0", {}, "-misset"),
    ("hdivrange-inf", f"{BASE} -hdivrange inf", {}, "-hdivrange"),
    ("vdivrange-nan", f"{BASE} -vdivrange nan", {}, "-vdivrange"),
    ("divergence-inf", f"{BASE} -divergence inf", {}, "-divergence"),
    ("hdivstep-inf", f"{BASE} -hdivstep inf", {}, "-hdivstep"),
    ("scale-inf", f"{BASE} -scale inf", {}, "-scale"),
    ("pgmscale-nan", f"{BASE} -pgmscale nan", {}, "-pgmscale"),
    ("adc-inf", f"{BASE} -adc inf", {}, "-adc"),
    ("default-F-inf", f"{BASE} -default_F inf", {}, "-default_F"),
    ("default-F-nan", f"{BASE} -default_F nan", {}, "-default_F"),
    ("default-F-overflows-float32", f"{BASE} -default_F 1e30", {}, "overflows"),
    ("fluence-overflows-float32", f"{BASE} -fluence 1e70", {}, "-fluence"),
    ("close-distance-zero", f"{BASE} -close_distance 0", {}, "-close_distance"),
    ("Xbeam-inf", f"{BASE} -Xbeam inf", {}, "-Xbeam"),
    ("Ybeam-nan", f"{BASE} -Ybeam nan", {}, "-Ybeam"),
    ("Xclose-inf", f"{BASE} -Xclose inf", {}, "-Xclose"),
    ("ORGX-nan", f"{BASE} -ORGX nan", {}, "-ORGX"),
    ("close-distance-inf", f"{BASE} -close_distance inf", {}, "-close_distance"),
    # the unit cell
    ("cell-a-zero", "-cell 0 100 100 90 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-a-negative", "-cell -100 100 100 90 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-a-inf", "-cell inf 100 100 90 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-b-nan", "-cell 100 nan 100 90 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-alpha-180", "-cell 100 100 100 180 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-alpha-200", "-cell 100 100 100 200 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-alpha-nan", "-cell 100 100 100 nan 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("cell-impossible-angles", "-cell 100 100 100 10 10 170 -default_F 1 -detpixels 16", {}, "-cell"),
    ("no-cell", "-default_F 1 -detpixels 16", {}, "-cell"),
    ("no-structure-factors", NO_F, {}, "-default_F"),
    # direction vectors
    ("fdet-vector-zero", f"{BASE} -fdet_vector 0 0 0", {}, "-fdet_vector"),
    ("sdet-vector-zero", f"{BASE} -sdet_vector 0 0 0", {}, "-sdet_vector"),
    ("beam-vector-zero", f"{BASE} -beam_vector 0 0 0", {}, "-beam_vector"),
    ("spindle-axis-zero", f"{BASE} -spindle_axis 0 0 0", {}, "-spindle_axis"),
    ("polar-vector-zero", f"{BASE} -polar_vector 0 0 0", {}, "-polar_vector"),
    ("detector-axes-parallel", f"{BASE} -fdet_vector 0 0 1 -sdet_vector 0 0 2", {}, "-sdet_vector"),
    ("fdet-vector-inf", f"{BASE} -fdet_vector inf 0 1", {}, "-fdet_vector"),
    ("twotheta-axis-zero", f"{BASE} -twotheta_axis 0 0 0 -twotheta 10", {}, "-twotheta_axis"),
    # region of interest and traced pixel
    ("roi-x-min-above-max", f"{BASE} -roi 10 5 0 15", {}, "-roi"),
    ("roi-y-min-above-max", f"{BASE} -roi 0 15 10 5", {}, "-roi"),
    ("roi-outside", f"{BASE} -roi 20 30 0 15", {}, "-roi"),
    ("roi-beyond-edge", f"{BASE} -roi 0 100 0 15", {}, "-roi"),
    ("trace-pixel-outside", f"{BASE} -trace_pixel 100 100", {}, "-trace_pixel"),
    # resources: refused up front, naming the flag that drives them
    ("oversample-huge", f"{BASE} -oversample 100000", {}, "-oversample"),
    ("auto-oversample-big-crystal", f"{BASE} -xtalsize 1.9", {}, "automatic oversampling"),
    ("auto-oversample-twotheta-90", f"{BASE} -twotheta 90", {}, "-oversample"),
    ("mosaic-domains-huge", f"{BASE} -mosaic 1 -mosaic_dom 1000000000", {}, "-mosaic_domains"),
    ("phisteps-huge", f"{BASE} -osc 1 -phisteps 1000000000", {}, "-phisteps"),
    ("phistep-tiny", f"{BASE} -osc 1e300 -phistep 1e-300", {}, "-phisteps"),
    ("divergence-steps-huge", f"{BASE} -divergence 1 -hdivsteps 100000 -vdivsteps 100000", {}, "-hdivsteps"),
    ("dispsteps-huge", f"{BASE} -dispersion 1 -dispsteps 1000000000", {}, "-dispsteps"),
    ("mosaic-domains-one-pixel-roi", f"{BASE} -roi 0 0 0 0 -mosaic 1 -mosaic_dom 100000000", {}, "-mosaic_domains"),
    ("divergence-one-pixel-roi", f"{BASE} -roi 0 0 0 0 -divergence 1 -divsteps 10000", {}, "-hdivsteps"),
    ("printout-every-pixel-huge", f"{CELL} -default_F 1 -detpixels 2000 -printout --max-work 1e9", {}, "-printout"),
    ("default-F-huge", f"{BASE} -default_F 1e300", {}, "-default_F"),
    ("sample-x-huge", f"{BASE} -sample_x 1e308 -oversample 1", {}, "-sample_x"),
    ("hkl-huge-F", f"{NO_F} -hkl big.hkl", {"big.hkl": b"0 0 0 1\n1 1 1 1e200\n"}, "big.hkl: line 2"),
    ("fdump-huge-F", f"{NO_F} -dump huge.bin", {"huge.bin": fdump(values=np.full((3, 3, 3), 1e200))}, "huge.bin"),
    ("divergence-trimmed-to-nothing", f"{BASE} -divsteps 1", {}, "-divsteps"),
    ("oversample-huge-with-raised-work-limit", f"{BASE} -oversample 200000 --max-work 1e80", {}, "-oversample"),
    ("printout-oversampled", f"{BASE} -printout -oversample 40 --max-work 1e9", {}, "-printout"),
    ("trace-pixel-many-sources", f"{BASE} -trace_pixel 3 3 -divergence 1 -divsteps 400 --max-work 1e9", {},
     "-trace_pixel"),
    ("cell-subnormal-edge", "-cell 0.001 1 4.9e-324 90 90 90 -default_F 1 -detpixels 16", {}, "-cell"),
    ("mosaic-spread-huge", f"{BASE} -mosaic 1e300", {}, "-mosaic"),
    ("water-huge", f"{BASE} -water 2e290", {}, "-water"),
    ("detpixels-huge", f"{CELL} -default_F 1 -detpixels 1000000", {}, "-detpixels"),
    ("detsize-huge", f"{CELL} -default_F 1 -detsize 1e300", {}, "-detpixels"),
    ("max-work-small", f"{BASE} --max-work 100", {}, "-detpixels"),
    ("max-work-zero", f"{BASE} --max-work 0", {}, "--max-work"),
    ("max-work-nan", f"{BASE} --max-work nan", {}, "--max-work"),
    ("max-memory-negative", f"{BASE} --max-memory -1", {}, "--max-memory"),
    ("max-memory-small", f"{BASE} --max-memory 1000", {}, "-detpixels"),
    ("hkl-800-extent", f"{NO_F} -hkl big.hkl", {"big.hkl": b"-400 -400 -400 1\n400 400 400 1\n"}, "big.hkl"),
    # HKL files
    ("hkl-missing", f"{NO_F} -hkl missing.hkl", {}, "missing.hkl"),
    ("hkl-directory", f"{NO_F} -hkl adir", {"adir": None}, "adir"),
    ("hkl-nan-F", f"{NO_F} -hkl nan.hkl", {"nan.hkl": b"1 1 1 nan\n"}, "nan.hkl: line 1"),
    ("hkl-inf-F", f"{NO_F} -hkl inf.hkl", {"inf.hkl": b"0 0 0 1\n1 1 1 inf\n"}, "inf.hkl: line 2"),
    ("hkl-overflowing-F", f"{NO_F} -hkl big.hkl", {"big.hkl": b"0 0 0 1\r\n1 1 1 1e999\r\n"}, "big.hkl: line 2"),
    ("hkl-empty", f"{NO_F} -hkl empty.hkl", {"empty.hkl": b""}, "empty.hkl"),
    ("hkl-binary", f"{NO_F} -hkl bin.hkl", {"bin.hkl": b"\xff\xfe\x00\x81garbage"}, "bin.hkl"),
    ("hkl-nul-bytes", f"{NO_F} -hkl nul.hkl", {"nul.hkl": b"\x00\x00\x00"}, "nul.hkl"),
    ("hkl-is-dump-output", f"{NO_F} -hkl same.hkl -dump same.hkl", {"same.hkl": b"0 0 0 1\n"}, "-dump"),
    # orientation matrices
    ("mat-missing", "-mat missing.mat -default_F 1 -detpixels 16", {}, "missing.mat"),
    ("mat-directory", "-mat adir -default_F 1 -detpixels 16", {"adir": None}, "adir"),
    ("mat-too-short", "-mat short.mat -default_F 1 -detpixels 16", {"short.mat": b"1 2 3\n"}, "short.mat"),
    ("mat-nan", "-mat nan.mat -default_F 1 -detpixels 16", {"nan.mat": b"0.01 0 0\n0 nan 0\n0 0 0.01\n"},
     "nan.mat' line 2: expected a finite number, got 'nan'"),
    ("mat-inf", "-mat inf.mat -default_F 1 -detpixels 16", {"inf.mat": b"0.01 0 0\n0 0.01 0\n0 0 inf\n"},
     "inf.mat' line 3: expected a finite number, got 'inf'"),
    ("mat-non-utf8", "-mat bad.mat -default_F 1 -detpixels 16", {"bad.mat": b"0.01 0 0\n\xff\xfe 0\n"},
     "bad.mat' line 2"),
    ("mat-degenerate", "-mat flat.mat -default_F 1 -detpixels 16", {"flat.mat": b"0.01 0 0\n0 0.01 0\n0 0 0\n"},
     "-mat"),
    ("mat-near-singular", "-mat tiny.mat -default_F 1 -detpixels 16",
     {"tiny.mat": b"1e-9 0 0\n0 1e-9 0\n0 0 1e-9\n"}, "automatic oversampling"),
    # source files
    ("sourcefile-missing", f"{BASE} -sourcefile missing.txt", {}, "missing.txt"),
    ("sourcefile-directory", f"{BASE} -sourcefile adir", {"adir": None}, "adir"),
    ("sourcefile-empty", f"{BASE} -sourcefile empty.txt", {"empty.txt": b"\n\n"}, "empty.txt"),
    ("sourcefile-nan", f"{BASE} -sourcefile nan.txt", {"nan.txt": b"-10 0 0 1 1e-10\nnan 0 0 1 1e-10\n"},
     "nan.txt' line 2"),
    ("sourcefile-zero-wavelength", f"{BASE} -sourcefile zero.txt", {"zero.txt": b"-10 0 0 1 0\n"},
     "zero.txt' line 1"),
    ("sourcefile-negative-weight", f"{BASE} -sourcefile neg.txt", {"neg.txt": b"-10 0 0 -1 1e-10\r\n"},
     "neg.txt' line 1"),
    ("sourcefile-inf-wavelength", f"{BASE} -sourcefile inf.txt", {"inf.txt": b"\xff\n-10 0 0 1 inf\n"},
     "inf.txt' line 2"),
    # SMV headers (-img, -mask)
    ("img-missing", f"{BASE} -img missing.img", {}, "missing.img"),
    ("img-directory", f"{BASE} -img adir", {"adir": None}, "adir"),
    ("img-not-smv", f"{BASE} -img text.img", {"text.img": b"hello" * 200}, "text.img"),
    ("img-truncated", f"{BASE} -img short.img", {"short.img": smv()[:700]}, "short.img"),
    ("img-distance-nan", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(DISTANCE="nan")}, "h.img' header DISTANCE"),
    ("img-distance-inf", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(DISTANCE="inf")}, "h.img' header DISTANCE"),
    ("img-pixel-zero", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(PIXEL_SIZE=0)}, "h.img' header PIXEL_SIZE"),
    ("img-wavelength-negative", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(WAVELENGTH=-1)},
     "h.img' header WAVELENGTH"),
    ("img-size-zero", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(SIZE1=0, SIZE2=0)}, "h.img"),
    ("img-distance-negative", f"{CELL} -default_F 1 -img h.img", {"h.img": smv(DISTANCE=-100)},
     "h.img' header DISTANCE"),
    ("mask-missing", f"{BASE} -mask missing.smv", {}, "missing.smv"),
    ("mask-beam-center-inf", f"{CELL} -default_F 1 -mask m.smv", {"m.smv": smv(BEAM_CENTER_X="inf")},
     "m.smv' header BEAM_CENTER_X"),
    ("mask-too-small", f"{CELL} -default_F 1 -detpixels 32 -mask m.smv", {"m.smv": smv()}, "-mask"),
    # Fdump.bin read when there is no -hkl
    ("fdump-garbage", f"{NO_F} -dump bad.bin", {"bad.bin": b"garbage"}, "bad.bin"),
    ("fdump-truncated", f"{NO_F} -dump short.bin", {"short.bin": fdump()[:40]}, "short.bin"),
    ("fdump-nan", f"{NO_F} -dump nan.bin", {"nan.bin": NAN_FDUMP}, "nan.bin"),
    ("fdump-negative-range", f"{NO_F} -dump neg.bin", {"neg.bin": b"5 1 0 0 0 0\n\f"}, "neg.bin"),
    # output paths
    ("floatfile-directory", f"{BASE} -floatfile adir", {"adir": None}, "-floatfile"),
    ("floatfile-empty-name", [*BASE.split(), "-floatfile", ""], {}, "-floatfile"),
    ("intfile-no-directory", f"{BASE} -intfile nodir/x.img", {}, "-intfile"),
    ("floatfile-is-hkl-input", f"{NO_F} -hkl in.hkl -floatfile in.hkl", {"in.hkl": b"0 0 0 1\n"}, "-floatfile"),
    ("intfile-is-floatfile", f"{BASE} -floatfile same.out -intfile same.out", {}, "-intfile"),
    ("noisefile-is-intfile", f"{BASE} -intfile same.img -noisefile same.img", {}, "-noisefile"),
    ("pgmfile-is-mat-input", "-mat a.mat -default_F 1 -detpixels 16 -pgmfile a.mat", {"a.mat": MATRIX.encode()},
     "-pgmfile"),
    ("floatfile-is-img-input", f"{CELL} -default_F 1 -img h.img -floatfile h.img", {"h.img": smv()}, "-floatfile"),
    ("intfile-is-sourcefile", f"{BASE} -sourcefile s.txt -intfile s.txt", {"s.txt": b"-10 0 0 1 1e-10\n"},
     "-intfile"),
]


def test_the_table_is_large_and_named_uniquely():
    assert len(CASES) >= 100
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("name, args, files, expected", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_refused_in_one_line(name, args, files, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ARRAYBRAGG_MAX_WORK", raising=False)
    monkeypatch.delenv("ARRAYBRAGG_MAX_MEMORY", raising=False)
    for file_name, content in files.items():
        if content is None:
            (tmp_path / file_name).mkdir()
        else:
            (tmp_path / file_name).write_bytes(content)
    before = sorted(os.listdir(tmp_path))
    args = args.split() if isinstance(args, str) else args
    status = cli.main(args + ["-nopgm"] * ("-pgmfile" not in args))
    err = capsys.readouterr().err
    assert status == 2, err
    assert err.count("\n") == 1 and err.startswith("arraybragg: error: "), err
    assert expected in err, err
    assert "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == before


def test_bad_environment_limit_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ARRAYBRAGG_MAX_WORK", "lots")
    assert cli.main(BASE.split()) == 2
    err = capsys.readouterr().err
    assert err == "arraybragg: error: ARRAYBRAGG_MAX_WORK: expected a number, got 'lots'\n"
    assert os.listdir(tmp_path) == []


def test_raising_the_limit_lets_a_refused_render_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = f"{BASE} -oversample 3 -nopgm -nonoise".split()
    assert cli.main(args + ["--max-work", "1000"]) == 2     # 256 pixels x 9 subpixels = 2304
    assert "2.3e+03 pixel-samples" in capsys.readouterr().err
    assert cli.main(args + ["--max-work", "3000"]) == 0
    assert sorted(os.listdir(tmp_path)) == ["floatimage.bin", "intimage.img"]


def test_a_failed_write_leaves_no_output_and_names_the_users_path(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", path)

    monkeypatch.setattr(render_files.smv, "write_smv", disk_full)
    status = cli.main(f"{BASE} -nopgm -intfile out.img".split())
    err = capsys.readouterr().err
    assert status == 1 and err == "arraybragg: error: out.img: No space left on device\n"
    assert os.listdir(tmp_path) == []          # the float image written first was not kept


def test_hkl_with_huge_extent_allocates_nothing_and_writes_no_dump(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "big.hkl").write_text("-400 -400 -400 1\n400 400 400 1\n")
    import resource
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert cli.main(f"{NO_F} -hkl big.hkl".split()) == 2
    assert "GiB" in capsys.readouterr().err
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000   # kB: far below 4 GB
    assert os.listdir(tmp_path) == ["big.hkl"]


def test_tricubic_table_over_the_memory_limit_is_refused_before_any_file(tmp_path, monkeypatch, capsys):
    """A 42^3 grid (h, k, l 0..40 and nanoBragg's padding; 0.59 MB) fits the limit; its tricubic table (27x) not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "grid.hkl").write_text("0 0 0 1\n40 40 40 2\n")
    limit = "--max-memory 8e6"
    assert cli.main(f"{NO_F} -hkl grid.hkl -nointerpolate -floatfile f.bin {limit}".split()) == 0
    written = sorted(set(os.listdir(tmp_path)) - {"grid.hkl"})
    assert {"Fdump.bin", "f.bin"} <= set(written)
    for name in written:
        os.remove(name)
    capsys.readouterr()
    assert cli.main(f"{NO_F} -hkl grid.hkl -interpolate -floatfile f.bin {limit}".split()) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-interpolate: the tricubic table of a 42 x 42 x 42 grid needs" in err
    assert os.listdir(tmp_path) == ["grid.hkl"]


def test_fdump_is_written_only_after_every_input_was_accepted(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ok.hkl").write_text("0 0 0 1\n1 1 1 2\n")
    assert cli.main(f"{NO_F} -hkl ok.hkl -polar 3".split()) == 2
    assert "-polar" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["ok.hkl"]


def test_ctrl_c_prints_one_line_and_leaves_nothing(tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C sends it, in the middle of a forked render."""
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1")
    args = [sys.executable, "-m", "arraybragg", *CELL.split(), "-default_F", "100", "-N", "5",
            "-detpixels", "1024", "-oversample", "12", "--threads", "2", "-noprogress"]
    process = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    for line in process.stdout:    # the set-up summary's last line: the render starts next
        if "pixel oversample steps" in line:
            break
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert err == "arraybragg: interrupted\n"
    assert os.listdir(tmp_path) == []


def test_the_python_api_names_the_field(tmp_path):
    from arraybragg import build_simulation
    from arraybragg.errors import InputError
    from arraybragg.io.flags import Settings

    s = Settings(user_cell=True, cell_a=100.0, default_F=1.0, fpixels=16, spixels=16, distance=-0.1)
    with pytest.raises(InputError) as info:
        build_simulation(s, workdir=str(tmp_path))
    assert str(info.value) == "Settings.distance (-distance): distance must be positive, got -100 mm"
    s = Settings(user_cell=True, cell_a=100.0, default_F=1.0, fpixels=16, spixels=16, oversample=10**6)
    with pytest.raises(InputError, match=r"^-oversample: subpixels = 1e\+12"):
        build_simulation(s, workdir=str(tmp_path))
    assert os.listdir(tmp_path) == []
