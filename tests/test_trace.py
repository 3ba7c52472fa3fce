"""Pixel traces (-trace_pixel) and -printout: the C's fields, the render unchanged, walk == render."""
from __future__ import annotations

import io
import os
from dataclasses import replace

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, corpus_cases, link_inputs, write_smooth_hkl

from arraybragg import build_simulation, cli, parse_args
from arraybragg.render.renderer import Renderer, render
from arraybragg.tools.trace_diff import compare_traces, parse_trace_lines, read_trace

TRACE_CASES = [case for case in corpus_cases() if case.meta.get("trace")]
SMALL = ("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 32 "
         "-misset 10 20 30 -phi 0 -osc 1 -phisteps 3 -mosaic 0.5 -mosaic_dom 2 -oversample 2").split()


def run_cli(workdir, args, image_name="float.bin"):
    """(stdout, float image) of ``arraybragg args`` run in workdir."""
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        out = io.StringIO()
        status = cli.run(list(args) + ["-floatfile", image_name, "-intfile", "int.img", "-nonoise", "-nopgm"],
                         out=out, err=io.StringIO())
        assert status == 0
        image = np.fromfile(image_name, dtype="<f4")
    finally:
        os.chdir(cwd)
    return out.getvalue(), image


def trace_values(text: str) -> dict:
    """Last value of each single-number TRACE_PY field."""
    return {r.name: r.value[0] for r in parse_trace_lines(text.splitlines())
            if not isinstance(r.value, str) and len(r.value) == 1}


def _trace_params():
    if not TRACE_CASES:
        return [pytest.param(None, marks=pytest.mark.skip(reason=NO_REFERENCE))]
    return [pytest.param(case, id=case.id) for case in TRACE_CASES]


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
@pytest.mark.parametrize("case", _trace_params())
def test_corpus_trace_reproduces_every_c_field(case, tmp_path):
    """Every TRACE_C field of the reference, same count and order of occurrences, within 1e-6 / 1e-12."""
    link_inputs(tmp_path)
    extra = ["--c-parity"] if case.meta.get("c_parity_differs") else []
    text, _ = run_cli(tmp_path, case.args + ["-trace_pixel", *case.meta["trace"].split()] + extra)
    c_records = read_trace(case.dir / "trace_c.txt", "C")
    py_records = parse_trace_lines(text.splitlines())
    comparison = compare_traces(c_records, py_records, rtol=1e-6, atol=1e-12)
    first = comparison.first_divergence
    assert comparison.passed, f"{case.id}: first divergence {first.record.label}: {first.status}"
    assert comparison.compared == len(c_records)
    py_order = [r.name for r in py_records if (r.name, r.occurrence) in {(c.name, c.occurrence) for c in c_records}]
    assert py_order == [r.name for r in c_records], "fields printed in a different order"


@pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)
def test_perturbed_run_is_caught_at_the_first_affected_field(tmp_path):
    """A 1e-5 change of wavelength leaves the detector fields equal and fails at the wavelength (in
    Angstrom: lambda_meters, 1e-10, differs by less than the 1e-12 absolute floor)."""
    case = next((c for c in TRACE_CASES if c.id == "geo_mosflm_default"), None)
    if case is None:
        pytest.skip("corpus case geo_mosflm_default not present")
    text, _ = run_cli(tmp_path, case.args + ["-lambda", "1.00001", "-trace_pixel", *case.meta["trace"].split()])
    comparison = compare_traces(read_trace(case.dir / "trace_c.txt", "C"), parse_trace_lines(text.splitlines()))
    assert not comparison.passed
    assert comparison.first_divergence.record.name == "lambda_angstroms"
    assert comparison.first_divergence.status == "DIFF"


def test_trace_leaves_the_image_unchanged(tmp_path):
    plain_text, plain = run_cli(tmp_path, SMALL + ["--c-parity"], "plain.bin")
    traced_text, traced = run_cli(tmp_path, SMALL + ["--c-parity", "-trace_pixel", "12", "20"], "traced.bin")
    assert "TRACE_PY" not in plain_text
    assert traced_text.count("TRACE_PY: F_cell ") == 4        # one per subpixel at phi step 0
    assert np.array_equal(plain, traced)


WALK_CASES = {
    "phi_carry_mosaic_c_parity": SMALL + ["--c-parity"],
    "phi_carry_mosaic_default": SMALL,
    "sensor_layers_and_oversample_flags": "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -distance 100 "
        "-detpixels 32 -detector_abs 300 -detector_thick 200 -thicksteps 3 -twotheta 20 -oversample 2 "
        "-oversample_thick -oversample_polar -oversample_omega -polar 0.7".split(),
    "sources_and_dmin": "-cell 100 100 100 90 90 90 -default_F 100 -N 5 -distance 100 -detpixels 32 -dmin 30 "
        "-dispersion 2 -dispsteps 3 -hdivrange 0.4 -hdivsteps 3".split(),
    "round_with_water_curved": "-cell 100 100 100 90 90 90 -default_F 100 -N 8 -round_xtal -water 50 -distance 100 "
        "-detpixels 32 -curved_det -twotheta 5".split(),
    "tophat_point_pixel": "-cell 100 100 100 90 90 90 -default_F 100 -N 6 -tophat_spots -distance 100 "
        "-detpixels 32 -point_pixel -nopolar -trace_pixel 6 16".split(),
}


@pytest.mark.parametrize("args", list(WALK_CASES.values()), ids=list(WALK_CASES))
def test_walked_pixel_equals_rendered_pixel(args, tmp_path):
    """The scalar walk and the array render are independent codes: their pixel values must agree."""
    if "-trace_pixel" not in args:
        args = args + ["-trace_pixel", "12", "20"]
    slow, fast = (int(v) for v in args[args.index("-trace_pixel") + 1:][:2])
    text, image = run_cli(tmp_path, args)
    values = trace_values(text)
    assert values["floatimage_accumulated"] == image[slow * 32 + fast]
    assert values["floatimage_accumulated"] > 0.0
    assert float(np.float32(values["I_pixel_final"])) == pytest.approx(values["floatimage_accumulated"], rel=1e-6)


SWITCH_OFF = ("-cell 100 100 100 90 90 90 -hkl small.hkl -interpolate -N 5 -distance 100 -detpixels 64 "
              "-roi 28 50 28 50").split()


def test_c_parity_interpolation_switched_off_by_an_earlier_pixel_is_honoured(tmp_path):
    """nanoBragg turns tricubic interpolation off for good at the first out-of-range point; a pixel
    rendered after that uses nearest-neighbour F_cell, one before it interpolates."""
    write_smooth_hkl(tmp_path / "small.hkl")
    args = SWITCH_OFF + ["--c-parity"]
    early, _ = run_cli(tmp_path, args + ["-trace_pixel", "28", "28"])
    late, image = run_cli(tmp_path, args + ["-trace_pixel", "45", "30"])
    assert trace_values(early)["F_cell"] != round(trace_values(early)["F_cell"])    # interpolated
    assert trace_values(late)["F_cell"] == round(trace_values(late)["F_cell"])      # a table entry
    assert trace_values(late)["floatimage_accumulated"] == image[45 * 64 + 30]
    assert "WARNING: out of range for three point interpolation" in late


def test_default_mode_interpolates_after_an_earlier_miss(tmp_path):
    """The default mode falls back per evaluation: the same late pixel still interpolates, and the walk
    equals the render."""
    write_smooth_hkl(tmp_path / "small.hkl")
    late, image = run_cli(tmp_path, SWITCH_OFF + ["-trace_pixel", "40", "40"])
    c_parity, _ = run_cli(tmp_path, SWITCH_OFF + ["-trace_pixel", "40", "40", "--c-parity"])
    assert "WARNING: out of range for three point interpolation" in late
    assert trace_values(late)["F_cell"] == pytest.approx(106.144224701649, rel=1e-12)
    assert trace_values(c_parity)["F_cell"] == 108.0      # nearest neighbour after the switch-off
    assert trace_values(late)["floatimage_accumulated"] == pytest.approx(image[40 * 64 + 40], rel=1e-6)


def test_c_parity_phi_carry_starts_at_the_first_phi_loop_not_the_first_pixel(tmp_path):
    """With -dmin the first pixels evaluate nothing; nanoBragg's first phi loop (pixel 9 of row 0
    here) still starts from the unrotated cell.  Values from nanoBragg's own trace of this pixel."""
    args = ("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 -detpixels 64 "
            "-misset 10 20 30 -phi 0 -osc 1 -phisteps 3 -dmin 25 --c-parity -trace_pixel 0 9").split()
    text, _ = run_cli(tmp_path, args)
    records = {r.name: r.value for r in parse_trace_lines(text.splitlines())}
    assert records["rot_a_angstroms"] == pytest.approx((62.1893915386668, 25.6435096159021, -19.3620761962537),
                                                       rel=1e-12)
    assert records["I_before_scaling"][0] == pytest.approx(219167.011740855, rel=1e-9)
    assert records["I_pixel_final"][0] == pytest.approx(0.0182047963037098, rel=1e-9)


def test_render_records_where_nanobragg_state_changes(tmp_path, monkeypatch):
    """A --c-parity render records the pixel of the tricubic switch-off (rendering only the pixels
    before it leaves interpolation on, including it turns it off) and that of the first phi loop,
    which the trace takes as its entry state."""
    monkeypatch.chdir(tmp_path)
    write_smooth_hkl(tmp_path / "small.hkl")
    sim = build_simulation(parse_args(SWITCH_OFF + ["--c-parity"]))
    off = Renderer(sim, "numpy", "float64", threads=1).render().interpolation_off_at
    d = sim.detector
    assert off is not None and sim.sampling.rendered(d.spixels, d.fpixels).reshape(-1)[off]

    def interpolating_after(stop):
        mask = sim.sampling.rendered(d.spixels, d.fpixels).reshape(-1).copy()
        mask[stop:] = False
        prefix = replace(sim, sampling=replace(sim.sampling, mask=mask.reshape(d.shape).astype(np.uint8)))
        renderer = Renderer(prefix, "numpy", "float64", threads=1)
        renderer.render()
        return renderer.terms.interpolation.enabled
    assert interpolating_after(off) and not interpolating_after(off + 1)
    dmin = parse_args("-cell 70 80 90 75 85 95 -default_F 100 -N 5 -lambda 1 -distance 100 -pixel 0.1 "
                      "-detpixels 64 -misset 10 20 30 -phi 0 -osc 1 -phisteps 3 -dmin 25 --c-parity".split())
    assert render(build_simulation(dmin)).first_phi_loop_at == 9       # pixel 9 of row 0, as nanoBragg


# nanoBragg's own -printout for SMALL -printout_pixel 20 12 (single thread, the unmodified program)
C_PRINTOUT = """\
  20   12 : stol = 2.83391e+07 or 0.00283391
at 0.1 0.000425 0.000375
hkl= 0.040141 0.408915 0.321072  hkl0= 0 0 0
 F_cell=100  F_latt=-0.762335   I = 995044
I/steps     41460.15159
polar       0.999983438
omega   9.999503146e-07
capfrac               1
pixel     0.04145740345
real-space cell vectors (Angstrom):
     a           b           c         
X: 61.63311783 -27.53626252 34.20629331
Y: 26.86723346 68.04095002  2.25120524
Z: -19.48103058 31.81482935 83.21575315
"""


def test_printout_pixel_prints_what_nanobragg_prints(tmp_path):
    text, _ = run_cli(tmp_path, SMALL + ["--c-parity", "-printout_pixel", "20", "12"])
    start = text.index("  20   12 : stol")
    assert text[start:start + len(C_PRINTOUT)] == C_PRINTOUT
    assert text.count(" : stol = ") == 1


def test_printout_without_pixel_prints_every_rendered_pixel(tmp_path):
    text, image = run_cli(tmp_path, SMALL + ["-roi", "3", "6", "10", "11", "-printout"])
    heads = [line for line in text.splitlines() if " : stol = " in line]
    assert [tuple(map(int, h.split(":")[0].split())) for h in heads] == [(f, s) for s in (10, 11) for f in range(3, 7)]
    pixels = [float(line.split()[1]) for line in text.splitlines() if line.startswith("pixel ")]
    assert pixels == pytest.approx([float(image[s * 32 + f]) for s in (10, 11) for f in range(3, 7)], rel=1e-9)


def test_pixel_outside_the_roi_prints_no_pixel_fields(tmp_path):
    text, _ = run_cli(tmp_path, SMALL + ["-roi", "0", "10", "0", "10", "-trace_pixel", "20", "20"])
    names = {r.name for r in parse_trace_lines(text.splitlines())}
    assert "pix0_vector" in names and "F_cell" not in names and "I_pixel_final" not in names
    assert "pixel not rendered" in text


def test_user_pix0_is_reported_as_the_detector_origin(tmp_path):
    text, _ = run_cli(tmp_path, SMALL + ["-pix0_vector_mm", "100", "1.6", "-1.6", "-trace_pixel", "3", "4"])
    records = {r.name: r.value for r in parse_trace_lines(text.splitlines())}
    assert records["pix0_vector"] == pytest.approx((0.1, 0.0016, -0.0016), rel=1e-12)
    assert records["pix0_vector_meters"] == records["pix0_vector"]
    assert "Fbeam_m" not in records and "pix0_before_rotation" not in records
