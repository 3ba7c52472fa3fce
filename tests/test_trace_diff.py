"""Tests for arraybragg-trace-diff (arraybragg/tools/trace_diff.py)."""

import json
import os
from pathlib import Path

import pytest

from arraybragg.tools import trace_diff
from arraybragg.tools.trace_diff import compare_traces, main, parse_trace_lines, parse_value

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path(os.environ.get("ARRAYBRAGG_REFERENCE", REPO_ROOT.parent / "shared" / "reference"))

SYNTHETIC_C_TRACE = """\
TRACE_C:detector_convention=MOSFLM
TRACE_C:angles_rad=rotx:0 roty:0.0523598775598299 rotz:0 twotheta:0
TRACE_C:Rx=[1 0 0; 0 1 -0; 0 0 1]
TRACE: Computing cross products of reciprocal vectors:
TRACE_CONFIG: tracing pixel (spixel=70, fpixel=60)
TRACE_C: pixel_pos_meters 7.56377495740104e-05 -0.000125146192846383 -0.100000603871357
TRACE_C: F_latt 58.8426567417782
TRACE_C_PHI phi_tic=0 phi_deg=0 k_frac=-0.12514530333378 F_latt_b=2.4092699727085 F_latt=58.8
TRACE_C: pixel_pos_meters 0.000125636849817707 -0.000125446092847844 -0.100000609771357
TRACE_C: F_latt 47.7064926070927
TRACE_C_PHI phi_tic=0 phi_deg=0 k_frac=-0.125445130210801 F_latt_b=2.39906542944098 F_latt=47.7
TRACE_C: hkl_rounded 0 0 0
TRACE_C: I_pixel_final 15.648723506712
some unrelated program output
"""


def as_python_trace(c_text: str) -> str:
    return c_text.replace("TRACE_C", "TRACE_PY")


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def perturb(text: str, old: str, relative: float, before: str = "") -> str:
    """Text with the number `old` (first found right after `before`) scaled by (1 + relative)."""
    assert before + old in text
    return text.replace(before + old, before + repr(float(old) * (1.0 + relative)), 1)


def corpus_trace() -> Path:
    path = REFERENCE / "cases" / "geo_custom_tilted" / "trace_c.txt"
    if not path.is_file():
        pytest.skip(f"reference corpus not found at {REFERENCE} (set ARRAYBRAGG_REFERENCE)")
    return path


# ---------------------------------------------------------------------------------------- parsing


def test_parse_value_numbers_matrix_and_text():
    assert parse_value(" 1 -0 2.5e-3 ") == (1.0, 0.0, 0.0025)
    assert parse_value("[1 0 0; 0 1 -0; 0 0 2]") == (1, 0, 0, 0, 1, 0, 0, 0, 2)
    assert parse_value("MOSFLM") == "MOSFLM"
    assert parse_value("beam_vec=[1 0") == "beam_vec=[1 0"


def test_parse_records_names_occurrences_and_subfields():
    records = parse_trace_lines(SYNTHETIC_C_TRACE.splitlines())
    by_label = {record.label: record for record in records}
    assert by_label["detector_convention[0]"].value == "MOSFLM"
    assert by_label["angles_rad[0].roty"].value == (0.0523598775598299,)
    assert len(by_label["Rx[0]"].value) == 9
    assert by_label["F_latt[1]"].value == (47.7064926070927,)
    assert by_label["PHI[1].k_frac"].value == (-0.125445130210801,)
    assert by_label["PHI[1].k_frac"].line == 11
    assert by_label["hkl_rounded[0]"].value == (0.0, 0.0, 0.0)
    # TRACE:, TRACE_CONFIG: and other output carry no records
    assert not any(record.group.startswith(("TRACE", "Computing", "tracing")) for record in records)
    assert len(records) == 1 + 4 + 1 + 2 * (1 + 1 + 5) + 1 + 1


def test_prefixes_are_normalised():
    c_records = parse_trace_lines(SYNTHETIC_C_TRACE.splitlines())
    py_records = parse_trace_lines(as_python_trace(SYNTHETIC_C_TRACE).splitlines())
    assert [(r.label, r.value) for r in c_records] == [(r.label, r.value) for r in py_records]


def test_multi_token_values_inside_key_groups():
    line = "TRACE_C_TAP5_HKL: subpixel=0 1 hkl_frac=0.5 1.5 2.5 h0=0 out_of_bounds=0"
    records = {record.label: record.value for record in parse_trace_lines([line])}
    assert records == {"TAP5_HKL[0].subpixel": (0.0, 1.0), "TAP5_HKL[0].hkl_frac": (0.5, 1.5, 2.5),
                       "TAP5_HKL[0].h0": (0.0,), "TAP5_HKL[0].out_of_bounds": (0.0,)}


# ------------------------------------------------------------------------------------- comparison


def test_compare_values_tolerances():
    assert trace_diff.compare_values((100.0,), (100.0 * (1 + 5e-7),), 1e-6, 0.0)[0]
    assert not trace_diff.compare_values((100.0,), (100.0 * (1 + 2e-6),), 1e-6, 0.0)[0]
    assert trace_diff.compare_values((0.0,), (5e-13,), 1e-6, 1e-12) == (True, float("inf"))
    assert not trace_diff.compare_values((0.0,), (5e-12,), 1e-6, 1e-12)[0]
    assert not trace_diff.compare_values((1.0, 2.0), (1.0,), 1e-6, 1e-12)[0]
    assert trace_diff.compare_values((float("nan"),), (float("nan"),), 1e-6, 1e-12)[0]
    assert not trace_diff.compare_values("MOSFLM", "XDS", 1e-6, 1e-12)[0]
    assert not trace_diff.compare_values("MOSFLM", (1.0,), 1e-6, 1e-12)[0]


def test_synthetic_trace_matches_itself(tmp_path, capsys):
    c_path = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    py_path = write(tmp_path / "py.txt", as_python_trace(SYNTHETIC_C_TRACE))
    assert main([str(c_path), str(py_path)]) == 0
    out = capsys.readouterr().out
    assert "first divergence: none" in out
    assert "22 fields compared, 0 diverging, 0 missing" in out


def test_corpus_trace_matches_itself(tmp_path, capsys):
    c_path = corpus_trace()
    py_path = write(tmp_path / "py.txt", as_python_trace(c_path.read_text()))
    assert main([str(c_path), str(py_path)]) == 0
    assert "first divergence: none" in capsys.readouterr().out


def test_corpus_perturbed_field_is_first_divergence(tmp_path, capsys):
    c_path = corpus_trace()
    # F_latt_b of the second subpixel's phi line only (its plain F_latt_b line stays untouched)
    text = perturb(as_python_trace(c_path.read_text()), "2.39906542944098", 1e-3, "F_latt_b=")
    py_path = write(tmp_path / "py.txt", text)
    json_path = tmp_path / "diff.json"
    assert main([str(c_path), str(py_path), "--json", str(json_path)]) == 1
    out = capsys.readouterr().out
    assert "first divergence: PHI[1].F_latt_b" in out
    report = json.loads(json_path.read_text())
    assert report["first_divergence"]["label"] == "PHI[1].F_latt_b"
    assert report["first_divergence"]["max_rel_err"] == pytest.approx(1e-3, rel=1e-6)
    assert report["summary"]["diverging"] == 1
    assert report["summary"]["passed"] is False


def test_perturbation_reported_in_c_order(tmp_path, capsys):
    text = as_python_trace(SYNTHETIC_C_TRACE)
    text = perturb(text, "15.648723506712", 1e-3)  # late field
    text = perturb(text, "-0.125445130210801", 1e-3)  # earlier field: must be reported first
    c_path = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    py_path = write(tmp_path / "py.txt", text)
    assert main([str(c_path), str(py_path), "--diffs-only"]) == 1
    out = capsys.readouterr().out
    assert "first divergence: PHI[1].k_frac (C line 11): DIFF" in out
    assert "2 diverging" in out
    assert "pixel_pos_meters" not in out  # --diffs-only hides OK rows


def test_tolerance_flag(tmp_path):
    c_path = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    py_path = write(tmp_path / "py.txt",
                    perturb(as_python_trace(SYNTHETIC_C_TRACE), "58.8426567417782", 1e-5))
    assert main([str(c_path), str(py_path)]) == 1
    assert main([str(c_path), str(py_path), "--tolerance", "1e-4"]) == 0
    assert main([str(c_path), str(py_path), "--tolerance", "0", "--abs-tolerance", "1e-3"]) == 0


def test_missing_field_fails_and_extra_field_does_not(tmp_path, capsys):
    c_path = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    extra = as_python_trace(SYNTHETIC_C_TRACE) + "TRACE_PY: I_before_scaling_pre_polar 12.5\n"
    assert main([str(c_path), str(write(tmp_path / "extra.txt", extra))]) == 0
    assert "1 extra in PY trace" in capsys.readouterr().out

    missing = "\n".join(line for line in as_python_trace(SYNTHETIC_C_TRACE).splitlines()
                        if "I_pixel_final" not in line)
    json_path = tmp_path / "missing.json"
    assert main([str(c_path), str(write(tmp_path / "missing.txt", missing)),
                 "--json", str(json_path)]) == 1
    out = capsys.readouterr().out
    assert "first divergence: I_pixel_final[0] (C line 13): MISSING" in out
    assert json.loads(json_path.read_text())["summary"]["missing"] == 1


def test_text_field_difference(tmp_path):
    c_path = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    py_text = as_python_trace(SYNTHETIC_C_TRACE).replace("=MOSFLM", "=XDS")
    comparison = compare_traces(parse_trace_lines(c_path.read_text().splitlines()),
                                parse_trace_lines(py_text.splitlines()))
    assert comparison.first_divergence.record.label == "detector_convention[0]"
    assert comparison.count("DIFF") == 1


@pytest.mark.parametrize("make_args", [
    lambda good: [str(good), "/nonexistent/py_trace.txt"],
    lambda good: [str(good)],
    lambda good: [str(good), str(good), "--tolerance", "-1"],
    lambda good: [str(good.parent / "empty.txt"), str(good)],
])
def test_usage_and_file_errors_exit_2_with_one_line(tmp_path, capsys, make_args):
    good = write(tmp_path / "c.txt", SYNTHETIC_C_TRACE)
    write(tmp_path / "empty.txt", "no trace here\n")
    assert main(make_args(good)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("arraybragg-trace-diff: error:")


def test_trace_line_glued_to_a_warning_is_read():
    from arraybragg.tools.trace_diff import parse_trace_lines

    lines = ["WARNING: further warnings will not be printed! TRACE_C: F_cell 12.5",
             "TRACE_C: F_cell 13"]
    records = parse_trace_lines(lines)
    assert [(r.name, r.occurrence, r.value) for r in records] == [("F_cell", 0, (12.5,)), ("F_cell", 1, (13.0,))]
