"""nanoBragg command line -> Settings (arraybragg.io.flags)."""
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pytest

from arraybragg.errors import InputError
from arraybragg.io.flags import FLAG_TABLE, RTD, Settings, parse_args, usage_text

REPO = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO.parent / "shared" / "reference"))


def parse(line: str) -> Settings:
    return parse_args(line.split())


def write_smv(path: Path, data: np.ndarray, **keys) -> Path:
    """A minimal little-endian SMV file: 512-byte header then uint16 pixels."""
    fields = {"HEADER_BYTES": 512, "DIM": 2, "BYTE_ORDER": "little_endian",
              "TYPE": "unsigned_short", "SIZE1": data.shape[1], "SIZE2": data.shape[0], **keys}
    header = "{\n" + "".join(f"{k}={v};\n" for k, v in fields.items()) + "}\f"
    path.write_bytes(header.encode().ljust(512, b" ") + data.astype("<u2").tobytes())
    return path


# --- defaults ---------------------------------------------------------------------------

def test_defaults_match_the_c_declarations():
    before = -int(time.time())
    s = parse_args([])
    assert s.fluence == 125932015286227086360700780544.0
    assert (s.beamsize, s.exposure, s.flux) == (1e-4, 1.0, 0.0)
    assert (s.distance, s.detsize_f, s.detsize_s, s.pixel_size) == (0.1, 0.1024, 0.1024, 1e-4)
    assert (s.fpixels, s.spixels, s.lambda0) == (0, 0, 1e-10)
    assert (s.mosaic_spread, s.mosaic_domains, s.phistep, s.osc, s.phisteps) == (-1, -1, -1, -1, -1)
    assert (s.hdivrange, s.vdivrange, s.hdivstep, s.vdivstep, s.hdivsteps, s.vdivsteps) == (-1,) * 6
    assert (s.dispersion, s.dispstep, s.dispsteps) == (0.0, -1, -1)
    assert (s.detector_mu, s.detector_thick, s.detector_thickstep, s.detector_thicksteps) == (-1, 0, -1, -1)
    assert (s.interpolate, s.oversample, s.adc_offset, s.default_F, s.water_size) == (2, -1, 40.0, 0.0, 0.0)
    assert (s.roi_xmin, s.roi_xmax, s.roi_ymin, s.roi_ymax) == (-1, -1, -1, -1)
    assert (s.fudge, s.polarization, s.nopolar, s.source_distance) == (1.0, 0.0, False, 10.0)
    assert all(math.isnan(v) for v in (s.Xbeam, s.Ybeam, s.Xclose, s.Yclose, s.ORGX, s.ORGY,
                                       s.close_distance))
    assert before - 1 <= s.seed <= -int(time.time()) + 1 and s.seed < 0
    assert s.misset_seed == s.seed and s.mosaic_seed == -12345678
    assert (s.floatfilename, s.intfilename, s.pgmfilename, s.noisefilename, s.dumpfilename) == (
        "floatimage.bin", "intimage.img", "image.pgm", "noiseimage.img", "Fdump.bin")
    assert (s.calculate_noise, s.write_pgm, s.progress_meter) == (True, True, True)
    assert (s.beam_convention, s.detector_pivot, s.xtal_shape) == ("MOSFLM", "BEAM", "SQUARE")
    assert (s.beam_vector, s.fdet_vector, s.sdet_vector, s.odet_vector) == (
        (1, 0, 0), (0, 0, 1), (0, -1, 0), (1, 0, 0))
    assert s.twotheta_axis == (0, 1, 0)  # the C's {0,0,1,0} with 1-based x, y, z
    assert (s.polar_vector, s.spindle_vector) == ((0, 0, 1),) * 2
    assert s.pix0_vector is None and s.mask is None and s.trace_pixel is None
    assert (s.misset_mode, s.user_cell, s.Na, s.Nb, s.Nc) == (None, False, 1, 1, 1)
    assert (s.backend, s.dtype, s.c_parity, s.threads, s.tile_pixels) == (
        "numpy", "float64", False, None, None)
    assert s.explicit == set()


def test_degree_conversion_uses_the_c_constant():
    assert RTD == 57.295779513082323     # printf("%.17g", 180.0*M_1_PI) from gcc/glibc


# --- units ------------------------------------------------------------------------------

@pytest.mark.parametrize("line, name, expected", [
    ("-distance 250", "distance", 250 / 1000.0),
    ("-close_distance 90", "close_distance", 0.09),
    ("-pixel 0.172", "pixel_size", 0.172 / 1000.0),
    ("-detsize_f 30", "detsize_f", 0.03),
    ("-Xbeam 5.3", "Xbeam", 5.3 / 1000.0),
    ("-ORGX 70.5", "ORGX", 70.5),
    ("-lambda 0.9768", "lambda0", 0.9768 / 1.0e10),
    ("-energy 12398.42", "lambda0", 1e-10),
    ("-energy 7000", "lambda0", 1.7712028571428572e-10),
    ("-twotheta 30", "detector_twotheta", 30 / 57.295779513082323),
    ("-detector_rotx 5", "detector_rotx", 5 / 57.295779513082323),
    ("-phi 10", "phi0", 10 / 57.295779513082323),
    ("-osc 0.1", "osc", 0.1 / 57.295779513082323),
    ("-phistep 0.5", "phistep", 0.5 / 57.295779513082323),
    ("-mosaic 0.5", "mosaic_spread", 0.5 / 57.295779513082323),
    ("-dispersion 2", "dispersion", 0.02),
    ("-hdivrange 0.4", "hdivrange", 0.0004),
    ("-vdivstep 0.1", "vdivstep", 0.1 / 1000.0),
    ("-beamsize 1.0", "beamsize", 1e-3),
    ("-detector_thick 200", "detector_thick", 200 * 1e-6),
    ("-detector_abs 300", "detector_mu", 1.0 / (300 * 1e-6)),
    ("-water 50", "water_size", 50 / 1e6),
    ("-dmin 20", "dmin", 20 * 1e-10),
    ("-density 1.2", "density", 1.2e6),
    ("-MW 20000", "molecular_weight", 20000.0),
    ("-flux 1e18", "flux", 1e18),
    ("-fluence 1e24", "fluence", 1e24),
    ("-scale 50", "intfile_scale", 50.0),
    ("-adc 10", "adc_offset", 10.0),
    ("-default_F 7", "default_F", 7.0),
    ("-oversample 3", "oversample", 3),
    ("-phisteps 10", "phisteps", 10),
    ("-mosaic_dom 6", "mosaic_domains", 6),
])
def test_unit_conversions_are_the_c_arithmetic(line, name, expected):
    s = parse(line)
    assert getattr(s, name) == expected
    assert name in s.explicit


def test_size_flags_convert_mm_to_metres():
    s = parse("-xtalsize 0.05")
    assert (s.sample_x, s.sample_y, s.sample_z) == (5e-5, 5e-5, 5e-5)
    s = parse("-samplesize 0.05 -sample_y 0.02")
    assert (s.sample_x, s.sample_y, s.sample_z) == (5e-5, 2e-5, 5e-5)


def test_stol_multipliers():
    assert parse("-stol s.txt").stol_file_mult == 1e10
    assert parse("-4stol s.txt").stol_file_mult == 1e10 / 4
    s = parse("-Q q.txt")
    assert (s.stolfilename, s.stol_file_mult) == ("q.txt", 1e10 / math.pi / 4)


# --- synonyms and exact matching --------------------------------------------------------

@pytest.mark.parametrize("names, field_name, value, expected", [
    (["-lambda", "-wave", "-wavelength"], "lambda0", "1.5", 1.5e-10),
    (["-floatfile", "-floatimage"], "floatfilename", "f.bin", "f.bin"),
    (["-intfile", "-intimage"], "intfilename", "i.img", "i.img"),
    (["-pgmfile", "-pgmimage"], "pgmfilename", "p.pgm", "p.pgm"),
    (["-noisefile", "-noiseimage"], "noisefilename", "n.img", "n.img"),
    (["-sample_thick", "-sample_x", "-xtal_thick", "-xtal_x"], "sample_x", "2", 2e-3),
    (["-sample_width", "-sample_y", "-width", "-xtal_width", "-xtal_y"], "sample_y", "2", 2e-3),
    (["-sample_height", "-sample_heigh", "-sample_z", "-height", "-heigh", "-xtal_height",
      "-xtal_heigh", "-xtal_z"], "sample_z", "2", 2e-3),
    (["-detector_abs", "-detector_absorb", "-detector_absorption"], "detector_mu", "500",
     1.0 / (500 * 1e-6)),
    (["-detector_thicksteps", "-thicksteps"], "detector_thicksteps", "3", 3),
    (["-mosaic", "-mosaici", "-mosaicity", "-mosaic_spr", "-mosaic_spread"], "mosaic_spread",
     "1", 1 / 57.295779513082323),
    (["-mosaic_dom", "-mosaic_domains"], "mosaic_domains", "4", 4),
    (["-detpixels_x", "-detpixels_f"], "fpixels", "160", 160),
    (["-detpixels_y", "-detpixels_s"], "spixels", "96", 96),
    (["-MW", "-molec", "-molecular_weight"], "molecular_weight", "40", 40.0),
    (["-density", "-sample_den", "-sample_density"], "density", "2", 2e6),
])
def test_synonyms_set_the_same_field(names, field_name, value, expected):
    for name in names:
        assert getattr(parse_args([name, value]), field_name) == expected, name


def test_size_synonyms_set_all_three():
    for name in ("-samplesize", "-sample_size", "-xtalsize", "-xtal_size"):
        s = parse_args([name, "3"])
        assert (s.sample_x, s.sample_y, s.sample_z) == (3e-3, 3e-3, 3e-3)


def test_switch_synonyms():
    assert parse("-binary_spots").xtal_shape == parse("-tophat_spots").xtal_shape == "TOPHAT"
    assert parse("-curved_det").curved_detector and parse("-curved_detector").curved_detector
    assert parse("-trace_pixel 3 4").trace_pixel == parse("-dump_pixel 3 4").trace_pixel == (3, 4)


def test_square_detector_flags_set_both_axes():
    s = parse("-detpixels 128 -detsize 25.6")
    assert (s.fpixels, s.spixels, s.detsize_f, s.detsize_s) == (128, 128, 0.0256, 0.0256)
    s = parse("-detpixels 128 -detpixels_x 160")
    assert (s.fpixels, s.spixels) == (160, 128)


def test_substrings_do_not_trigger_other_flags():
    s = parse("-misset_seed 5 -N 2 -Nb 3")   # the C would also read 5, -N, 2 as misset angles
    assert s.misset_mode is None and s.misset_seed == -5
    s = parse("-twotheta_axis 1 0 0")
    assert s.detector_twotheta == 0.0 and s.detector_pivot == "BEAM"
    assert s.twotheta_axis == (1.0, 0.0, 0.0)
    s = parse("-mosaic_seed 7")
    assert s.mosaic_spread == -1 and s.mosaic_seed == -7
    s = parse("-nopolar")
    assert s.nopolar and s.polarization == 0.0
    s = parse("-hdivsteps 3")
    assert (s.hdivsteps, s.vdivsteps, s.hdivstep) == (3, -1, -1)
    s = parse("-pgmscale 2")
    assert (s.pgm_scale, s.intfile_scale) == (2.0, 0.0)


@pytest.mark.parametrize("flag", ["-dist", "-mosaic_sp", "-detector_thic", "-lamb", "-Xbea"])
def test_abbreviations_are_unknown_flags(flag):
    with pytest.raises(InputError, match=f"unknown flag '{flag}'"):
        parse_args([flag, "1"])


def test_printout_pixel_also_turns_printout_on():
    s = parse("-printout_pixel 12 34")
    assert (s.printout, s.printout_fpixel, s.printout_spixel) == (True, 12, 34)


# --- order-dependent side effects -------------------------------------------------------

@pytest.mark.parametrize("line, pivot", [
    ("-distance 100", "BEAM"),
    ("-close_distance 90", "SAMPLE"),
    ("-distance 100 -close_distance 90", "SAMPLE"),
    ("-close_distance 90 -distance 100", "BEAM"),
    ("-twotheta 5", "SAMPLE"),
    ("-twotheta 5 -Ybeam 3", "BEAM"),
    ("-Xbeam 5 -ORGX 3", "SAMPLE"),
    ("-Yclose 5 -Xbeam 3", "BEAM"),
    ("-ORGY 4", "SAMPLE"),
    ("-pivot sample -distance 100", "BEAM"),
    ("-distance 100 -pivot sample", "SAMPLE"),
    ("-twotheta 5 -pivot beam", "BEAM"),
    ("-pivot sample -mosflm", "BEAM"),
    ("-xds", "SAMPLE"),
    ("-xds -distance 100", "BEAM"),
])
def test_pivot_follows_the_last_flag_that_sets_it(line, pivot):
    assert parse(line).detector_pivot == pivot


@pytest.mark.parametrize("flag, convention, pivot", [
    ("-mosflm", "MOSFLM", "BEAM"), ("-xds", "XDS", "SAMPLE"), ("-adxv", "ADXV", "BEAM"),
    ("-denzo", "DENZO", "BEAM"), ("-dials", "DIALS", "BEAM"),
])
def test_convention_flags(flag, convention, pivot):
    s = parse(f"-pivot sample -close_distance 5 {flag}")
    assert (s.beam_convention, s.detector_pivot) == (convention, pivot)


def test_custom_vectors_switch_to_custom_in_order():
    s = parse("-xds -fdet_vector 1 0 0")
    assert (s.beam_convention, s.detector_pivot, s.fdet_vector) == ("CUSTOM", "SAMPLE", (1, 0, 0))
    s = parse("-beam_vector 0 0 1 -adxv")
    assert (s.beam_convention, s.beam_vector) == ("ADXV", (0.0, 0.0, 1.0))
    for flag, name in [("-sdet_vector", "sdet_vector"), ("-odet_vector", "odet_vector"),
                       ("-polar_vector", "polar_vector"), ("-spindle_axis", "spindle_vector"),
                       ("-twotheta_axis", "twotheta_axis")]:
        s = parse_args([flag, "-0.5", "0", "0.25"])
        assert (s.beam_convention, getattr(s, name)) == ("CUSTOM", (-0.5, 0.0, 0.25)), flag


def test_pix0_vector_units():
    s = parse("-pix0_vector 0.1 0.0058 -0.0066")
    assert (s.beam_convention, s.pix0_vector) == ("CUSTOM", (0.1, 0.0058, -0.0066))
    s = parse("-pix0_vector_mm 100 5.8 -6.6")
    assert (s.beam_convention, s.pix0_vector) == ("CUSTOM", (0.1, 5.8 / 1000.0, -6.6 / 1000.0))


def test_output_switches_follow_the_last_flag():
    assert not parse("-pgmfile p.pgm -nopgm").write_pgm
    assert parse("-nopgm -pgmfile p.pgm").write_pgm
    assert parse("-nopgm -pgmscale 3").write_pgm
    assert not parse("-noisefile n.img -nonoise").calculate_noise
    s = parse("-nonoise -noisefile n.img")
    assert (s.calculate_noise, s.noisefilename) == (True, "n.img")
    assert not parse("-nopolar -polar 0.8").nopolar
    s = parse("-polar 0.8 -nopolar")
    assert (s.nopolar, s.polarization) == (True, 0.8)
    assert parse("-interpolate").interpolate == 1 and parse("-nointerpolate").interpolate == 0
    assert not parse("-noprogress").progress_meter and parse("-noprogress -progress").progress_meter
    assert not parse("-square_div").round_div and parse("-square_div -round_div").round_div
    assert parse("-gauss_xtal -round_xtal").xtal_shape == "ROUND"
    s = parse("-oversample_thick -oversample_polar -oversample_omega -oversample 3 -coherent")
    assert (s.oversample_thick, s.oversample_polar, s.oversample_omega, s.oversample,
            s.coherent) == (True, True, True, 3, True)


def test_detector_abs_inf_or_zero_turns_absorption_off():
    s = parse("-detector_thick 200 -detector_abs inf")
    assert (s.detector_thick, s.detector_mu) == (0.0, 0.0)
    s = parse("-detector_thick 200 -detector_abs 0")
    assert (s.detector_thick, s.detector_mu) == (0.0, 0.0)
    s = parse("-detector_abs inf -detector_thick 200")
    assert (s.detector_thick, s.detector_mu) == (200 * 1e-6, 0.0)


def test_division_by_a_zero_value_follows_ieee_like_the_c():
    assert parse("-energy 0").lambda0 == math.inf
    assert parse("-detector_abs 1e-320").detector_mu == math.inf


def test_crystal_size_in_cells():
    s = parse("-N 5 -Na 3")
    assert (s.Na, s.Nb, s.Nc) == (3, 5, 5)
    assert (parse("-N 5.0").Na, parse("-N 0").Nb, parse("-Nc -2").Nc) == (5, 0, -2)
    assert parse("-N 1e3").Na == 1          # C atoi stops at the 'e'


def test_cell_stops_at_a_token_starting_with_dash():
    s = parse("-cell 70 80")
    assert (s.user_cell, s.cell_a, s.cell_b, s.cell_c, s.alpha) == (True, 70, 80, 0, 0)
    s = parse("-cell 70 80 90 75 -N 5")
    assert (s.cell_c, s.alpha, s.beta, s.Na) == (90, 75 / RTD, 0.0, 5)
    s = parse("-cell 70 80 90 75 85 95")
    assert (s.alpha, s.beta, s.gamma) == (75 / RTD, 85 / RTD, 95 / RTD)
    with pytest.raises(InputError, match="^-cell: expected 1 to 6 numbers$"):
        parse("-cell -N 5")


def test_misset_random_or_three_angles():
    assert parse("-misset random").misset_mode == "random"
    assert parse("-misset rand").misset_mode == "random"
    s = parse("-misset 10 20 -30")
    assert (s.misset_mode, s.misset_angles) == ("angles", (10 / RTD, 20 / RTD, -30 / RTD))
    s = parse("-misset 10 20 30 -misset random")
    assert s.misset_mode == "random" and s.misset_angles == (10 / RTD, 20 / RTD, 30 / RTD)
    with pytest.raises(InputError, match="^-misset: expected 3 values, got 2$"):
        parse("-misset 10 20")


def test_seeds_are_stored_negated():
    s = parse("-seed 1234")
    assert s.seed == -1234
    assert s.misset_seed != -1234 and s.misset_seed < 0   # C copies the seed before parsing
    assert parse("-mosaic_seed 5").mosaic_seed == -5
    assert parse("-misset_seed 9 -seed 2").misset_seed == -9
    assert parse("-seed 5.9").seed == -5


def test_roi():
    s = parse("-roi 20 90 30 100")
    assert (s.roi_xmin, s.roi_xmax, s.roi_ymin, s.roi_ymax) == (20, 90, 30, 100)


def test_gnu_options():
    s = parse("--backend cupy --dtype=float32 --c-parity --threads 4 --tile-pixels=65536 -N 3")
    assert (s.backend, s.dtype, s.c_parity, s.threads, s.tile_pixels, s.Na) == (
        "cupy", "float32", True, 4, 65536, 3)
    assert parse("--help").show_help and parse("-h").show_help
    assert parse("--version").show_version


def test_explicit_records_the_fields_flags_set():
    s = parse("-distance 100 -N 3 -pgmfile a.pgm")
    assert s.explicit == {"distance", "detector_pivot", "Na", "Nb", "Nc", "pgmfilename",
                          "write_pgm"}
    assert s.argv == tuple("-distance 100 -N 3 -pgmfile a.pgm".split())


# --- errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("line, message", [
    ("-distance abc", "-distance: expected a number, got 'abc'"),
    ("-distance", "-distance: missing value"),
    ("-distance -N 5", "-distance: missing value"),
    ("-N five", "-N: expected an integer, got 'five'"),
    ("-N 1x", "-N: expected an integer, got '1x'"),
    ("-N inf", "-N: expected an integer, got 'inf'"),
    ("-roi 1 2 3", "-roi: expected 4 values, got 3"),
    ("-roi 1 2 3 -N 5", "-roi: expected 4 values, got 3"),
    ("-fdet_vector 1 0", "-fdet_vector: expected 3 values, got 2"),
    ("-trace_pixel 4", "-trace_pixel: expected 2 values, got 1"),
    ("-hkl", "-hkl: missing value"),
    ("-pivot middle", "-pivot: expected 'beam' or 'sample', got 'middle'"),
    ("-dist 100", "unknown flag '-dist'"),
    ("-cell 100 100 100 90 90 90 95", "unexpected argument '95'"),
    ("stray", "unexpected argument 'stray'"),
    ("--backend jax", "--backend: expected one of numpy, cupy, torch, got 'jax'"),
    ("--dtype", "--dtype: missing value"),
    ("--threads 0", "--threads: expected a positive integer, got 0"),
    ("--tile-pixels=many", "--tile-pixels: expected an integer, got 'many'"),
    ("--c-parity=yes", "--c-parity: takes no value"),
    ("--frobnicate", "unknown option '--frobnicate'"),
])
def test_bad_input_raises_one_line_naming_the_flag(line, message):
    with pytest.raises(InputError) as info:
        parse(line)
    assert str(info.value) == message


# --- usage ------------------------------------------------------------------------------

def test_usage_lists_every_flag_once():
    text = usage_text()
    names = [name for spec in FLAG_TABLE for name in spec.names]
    assert len(names) == len(set(names))
    for name in names:
        assert f" {name}" in text, name
    assert all(spec.help for spec in FLAG_TABLE)
    assert "-detector_abs, -detector_absorb, -detector_absorption UM|inf" in text


# --- -img / -mask headers ---------------------------------------------------------------

HEADER = dict(PIXEL_SIZE=0.2, CLOSE_DISTANCE=140, DISTANCE=150, WAVELENGTH=1.1,
              BEAM_CENTER_X=0.5, BEAM_CENTER_Y=0.3, ORGX=2.5, ORGY=1.5, PHI=3, OSC_RANGE=0.5,
              TWOTHETA=10)


@pytest.fixture
def smv_files(tmp_path):
    img = write_smv(tmp_path / "header.img", np.zeros((4, 6)), **HEADER)
    mask_data = np.ones((5, 3), dtype=np.uint16)
    mask_data[1, 2] = 0
    mask = write_smv(tmp_path / "mask.img", mask_data, PIXEL_SIZE=0.1, DISTANCE=80,
                     BEAM_CENTER_X=0.1, BEAM_CENTER_Y=0.2)
    return img, mask, mask_data


def test_img_header_initialises_the_detector(smv_files):
    img, _, _ = smv_files
    s = parse_args(["-img", str(img)])
    assert (s.fpixels, s.spixels, s.pixel_size) == (6, 4, 0.2 / 1000.0)
    assert (s.detsize_f, s.detsize_s) == (0.0002 * 6, 0.0002 * 4)
    assert (s.distance, s.close_distance, s.lambda0) == (0.15, 0.14, 1.1 / 1e10)
    assert (s.Xbeam, s.Ybeam, s.ORGX, s.ORGY) == (0.0005, 0.0003, 2.5, 1.5)
    assert (s.phi0, s.osc) == (3 / RTD, 0.5 / RTD)
    assert s.detector_twotheta == 0.0 and s.mask is None
    assert s.imginfilename == str(img)
    assert {"distance", "fpixels", "Xbeam"} <= s.explicit


def test_mask_header_flips_beam_center_y_and_keeps_the_pixels(smv_files):
    _, mask, mask_data = smv_files
    s = parse_args(["-mask", str(mask)])
    assert (s.fpixels, s.spixels, s.detsize_s) == (3, 5, 0.0001 * 5)
    assert s.Ybeam == 0.0001 * 5 - 0.2 / 1000.0
    assert (s.Xbeam, s.distance) == (0.0001, 0.08)
    assert math.isnan(s.close_distance) and math.isnan(s.ORGX)
    assert s.mask.dtype == np.uint16 and s.mask.shape == (5, 3)
    np.testing.assert_array_equal(s.mask, mask_data)


def test_img_header_is_read_after_the_mask_whatever_the_order(smv_files):
    img, mask, mask_data = smv_files
    for argv in (["-img", str(img), "-mask", str(mask)], ["-mask", str(mask), "-img", str(img)]):
        s = parse_args(argv)
        assert (s.fpixels, s.spixels, s.distance, s.Ybeam) == (6, 4, 0.15, 0.0003)
        np.testing.assert_array_equal(s.mask, mask_data)


def test_flags_override_headers_wherever_they_appear(smv_files):
    img, _, _ = smv_files
    for argv in (["-img", str(img), "-distance", "300"], ["-distance", "300", "-img", str(img)]):
        s = parse_args(argv + ["-detpixels", "10"])
        assert (s.distance, s.fpixels, s.spixels, s.lambda0) == (0.3, 10, 10, 1.1 / 1e10)


def test_header_without_pixel_size_keeps_the_default(tmp_path):
    path = write_smv(tmp_path / "bare.img", np.zeros((2, 3)))
    s = parse_args(["-img", str(path)])
    assert (s.pixel_size, s.detsize_f, s.detsize_s, s.distance) == (1e-4, 1e-4 * 3, 1e-4 * 2, 0.1)


def test_unreadable_header_file_names_the_flag_and_file(tmp_path):
    missing = tmp_path / "nope.img"
    with pytest.raises(InputError) as info:
        parse_args(["-mask", str(missing)])
    message = str(info.value)
    assert message.startswith("-mask: ") and "nope.img" in message and "\n" not in message


# --- reference corpus -------------------------------------------------------------------

def corpus_cases():
    return sorted((REFERENCE / "cases").glob("*/case.json"))


@pytest.mark.skipif(not corpus_cases(), reason=f"reference corpus not found at {REFERENCE}")
def test_every_corpus_command_line_parses(monkeypatch):
    monkeypatch.chdir(REFERENCE / "inputs")      # -img / -mask name files in inputs/
    parsed = {}
    for path in corpus_cases():
        case = json.loads(path.read_text())
        parsed[path.parent.name] = parse(case["args"])
    assert len(parsed) == len(corpus_cases())
    header = parsed["samp_img_header"]
    assert (header.fpixels, header.spixels, header.pixel_size) == (96, 112, 0.12 / 1000.0)
    assert parsed["samp_mask"].mask.shape == (128, 128)
    assert parsed["geo_pix0_mm"].pix0_vector == (0.1, 0.0058, -0.0066)
    assert parsed["geo_xds_org"].detector_pivot == "SAMPLE"
