"""Every reference case: float image within 1e-6 per pixel (floor 1e-9 x max), float64 on NumPy."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import NO_REFERENCE, REFERENCE, corpus_cases, image_mismatch, link_inputs

from arraybragg import build_simulation, parse_args
from arraybragg.render.renderer import render

CASES = corpus_cases()
pytestmark = pytest.mark.skipif(REFERENCE is None, reason=NO_REFERENCE)


def _params(c_parity: bool):
    out = []
    for case in CASES:
        if c_parity and not case.meta.get("c_parity_differs"):
            continue
        marks = [pytest.mark.slow] if case.meta.get("slow") else []
        out.append(pytest.param(case, id=case.id, marks=marks))
    return out or [pytest.param(None, marks=pytest.mark.skip(reason=NO_REFERENCE))]


def render_case(case, tmp_path, extra=(), dtype="float64", backend="numpy"):
    link_inputs(tmp_path)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        settings = parse_args(case.args + list(extra))
        sim = build_simulation(settings)
        return render(sim, backend=backend, dtype=dtype)
    finally:
        os.chdir(cwd)


@pytest.mark.parametrize("case", _params(False))
def test_default_mode_image(case, tmp_path):
    result = render_case(case, tmp_path)
    bad, worst = image_mismatch(result.image, case.float_image(), 1e-6, 1e-9)
    assert bad == 0, f"{case.id}: {bad} pixels out of tolerance (worst {worst:.3g} x tolerance)"


def _case(name):
    matches = [c for c in CASES if c.id == name]
    if not matches:
        pytest.skip(f"corpus case {name} not present")
    return matches[0]


@pytest.mark.parametrize("case", _params(False))
def test_float32_policy_within_1e_4(case, tmp_path):
    """float32 is the speed policy: within 1e-4 per pixel, floor 1e-3 x image max, in every case."""
    result = render_case(case, tmp_path, dtype="float32")
    bad, worst = image_mismatch(result.image, case.float_image(), 1e-4, 1e-3)
    assert bad == 0, f"{case.id}: {bad} pixels out of tolerance (worst {worst:.3g} x tolerance)"


@pytest.mark.parametrize("case", _params(True))
def test_float32_policy_c_parity(case, tmp_path):
    result = render_case(case, tmp_path, extra=["--c-parity"], dtype="float32")
    bad, worst = image_mismatch(result.image, case.float_image(c_parity=True), 1e-4, 1e-3)
    assert bad == 0, f"{case.id}: {bad} pixels out of tolerance (worst {worst:.3g} x tolerance)"


@pytest.mark.parametrize("case", _params(True))
def test_c_parity_image(case, tmp_path):
    result = render_case(case, tmp_path, extra=["--c-parity"])
    bad, worst = image_mismatch(result.image, case.float_image(c_parity=True), 1e-6, 1e-9)
    assert bad == 0, f"{case.id}: {bad} pixels out of tolerance (worst {worst:.3g} x tolerance)"


STRICT_CASES = ["geo_mosflm_default", "geo_curved", "samp_dmin", "samp_oversample3_flags", "sf_interpolate",
                "samp_phi0_carry", "samp_absorption", "xtal_round", "xtal_gauss", "samp_polar", "sf_interp_fallback",
                "samp_os_omega_phi"]


def _other_backend(kind):
    """array_api_strict on its default or a second device, or PyTorch (CPU) through array-api-compat."""
    from arraybragg.backend import get_backend
    if kind == "torch":
        pytest.importorskip("torch")
        return get_backend("torch")
    import array_api_strict
    return get_backend("array_api_strict", device=array_api_strict.Device(kind))


@pytest.mark.parametrize("kind", ["CPU_DEVICE", "device1", "torch"])
@pytest.mark.parametrize("name", STRICT_CASES)
def test_whole_render_on_other_namespaces(name, kind, tmp_path):
    """The render itself, not only the kernels, uses nothing beyond the array API standard (no boolean
    indexing, no data-dependent shapes) and makes every array on the backend's device (array_api_strict
    refuses to mix devices); a second real namespace (PyTorch) renders the same images."""
    import contextlib
    case = _case(name)
    c_parity = bool(case.meta.get("c_parity_differs"))
    strict = contextlib.nullcontext()
    if kind != "torch":  # and without boolean indexing or data-dependent shapes
        import array_api_strict
        strict = array_api_strict.ArrayAPIStrictFlags(boolean_indexing=False, data_dependent_shapes=False)
    with strict:
        result = render_case(case, tmp_path, extra=["--c-parity"] if c_parity else [], backend=_other_backend(kind))
    bad, worst = image_mismatch(result.image, case.float_image(c_parity=c_parity), 1e-6, 1e-9)
    assert bad == 0, f"{case.id}: {bad} pixels out of tolerance (worst {worst:.3g} x tolerance)"


def _printed_stats(text: str):
    values = {}
    for line in text.splitlines():
        words = line.replace("=", " = ").split()
        if line.startswith("max_I"):
            values.update(max_I=float(words[2]), max_I_x=float(words[4]), max_I_y=float(words[5]))
        elif line.startswith("mean="):
            values.update(mean=float(words[2]), rms=float(words[5]), rmsd=float(words[8]))
    return values


@pytest.mark.parametrize("case", _params(False))
def test_statistics_match_c_stdout(case, tmp_path):
    """max_I and where, mean, rms, rmsd: the values nanoBragg printed (%g, six digits)."""
    expected = _printed_stats((case.dir / "c_stdout.txt").read_text())
    assert set(expected) == {"max_I", "max_I_x", "max_I_y", "mean", "rms", "rmsd"}
    stats = render_case(case, tmp_path).stats
    for name, value in expected.items():
        assert float("%g" % getattr(stats, name)) == pytest.approx(value, rel=1e-5, abs=1e-12), name


def test_backend_array_output_has_the_backend_type(tmp_path, monkeypatch):
    import array_api_strict
    from arraybragg.backend import array_namespace

    case = _case("geo_mosflm_default")
    link_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)  # no stray Fdump.bin in the working directory stands in for -default_F
    sim = build_simulation(parse_args(case.args))
    result = render(sim, backend="array_api_strict", backend_array=True)
    assert array_namespace(result.image) is array_api_strict
    host = np.from_dlpack(result.image)
    assert np.array_equal(host, case.float_image())
