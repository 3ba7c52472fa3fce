"""Analytic checks of arraybragg.physics on every array namespace.

Each test runs on NumPy, array_api_strict (which rejects anything outside the
array API standard) and CuPy when a GPU is present, and checks that the result
lives in the namespace of its input: the kernels must never fall back to NumPy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from arraybragg.backend import array_namespace

from arraybragg import physics

ROUND_SCALE = 0.723601254558268


# 0/0 at exact lattice points is part of the design (replaced by the limit); keep NumPy quiet about it,
# also underneath array_api_strict, whose own quiet() cannot reach NumPy's error state.
QUIET = dict(divide="ignore", invalid="ignore")


def host(backend, array) -> np.ndarray:
    """A result as a float64 NumPy array, after checking it stayed in its namespace."""
    assert array_namespace(array) is backend.xp, f"result left the {backend.name} namespace"
    return np.asarray(backend.to_numpy(array), dtype=np.float64)


def arr(backend, values, dtype="float64"):
    xp = backend.xp
    return xp.asarray(np.asarray(values, dtype=dtype), dtype=getattr(xp, dtype))


# --- grating functions -----------------------------------------------------------------------

@pytest.mark.parametrize("N", [1, 2, 5, 36])
def test_sincg_limit_at_zero_is_N(backend, N):
    x = arr(backend, [0.0, 1e-9, -1e-9])
    values = host(backend, physics.sincg(x, N))
    assert values[0] == N
    np.testing.assert_allclose(values[1:], N, rtol=1e-12)


@pytest.mark.parametrize("N", [2, 3, 7])
def test_sincg_is_periodic_in_pi(backend, N):
    x = np.linspace(0.05, 3.0, 41)
    base = host(backend, physics.sincg(arr(backend, x), N))
    shifted = host(backend, physics.sincg(arr(backend, x + math.pi), N))
    twice = host(backend, physics.sincg(arr(backend, x + 2 * math.pi), N))
    # sin(N(x+pi))/sin(x+pi) = (-1)^(N+1) sin(Nx)/sin(x)
    np.testing.assert_allclose(shifted, (-1) ** (N + 1) * base, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(twice, base, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("N", [2, 5, 47])
def test_sincg_matches_definition_away_from_zero(backend, N):
    x = np.array([0.1, 0.5, 1.0, 2.0, -0.7, 3.0])
    values = host(backend, physics.sincg(arr(backend, x), N))
    expected = [math.sin(N * v) / math.sin(v) for v in x]
    np.testing.assert_allclose(values, expected, rtol=1e-12)


def _reference_grating(h: np.ndarray, N: int) -> np.ndarray:
    """|sin(N pi h) / sin(pi h)| in float64 directly from h (no reduction)."""
    return np.abs(np.sin(N * np.pi * h) / np.sin(np.pi * h))


@pytest.mark.parametrize("N", [2, 5, 36, 100])
def test_grating_amplitude_is_abs_sincg_float64(backend, N):
    h = np.random.default_rng(N).uniform(-200.0, 200.0, 2000)
    d = h - np.ceil(h - 0.5)
    for polynomial in (True, False):
        amp = host(backend, physics.grating_amplitude(arr(backend, d), N, polynomial))
        np.testing.assert_allclose(np.abs(amp), _reference_grating(h, N), rtol=1e-7, atol=1e-9 * N)


@pytest.mark.parametrize("N", [2, 3, 10, 47, 100])
@pytest.mark.parametrize("polynomial", [False, True])
def test_grating_amplitude_reduced_form_is_exact_in_float32(backend, N, polynomial):
    """The float32 policy: d reduced in float64, then the ratio in float32, within 1e-5 x N.

    (An unreduced float32 sin(N pi h) at h ~ 200, N = 100 would have no correct digit.)
    """
    xp = backend.xp
    h = np.random.default_rng(1000 + N).uniform(-200.0, 200.0, 5000)
    d = h - np.ceil(h - 0.5)
    d32 = arr(backend, d, "float32")
    with np.errstate(**QUIET):
        result = physics.grating_amplitude(d32, N, polynomial)
    assert result.dtype == xp.float32
    amp = np.abs(host(backend, result))
    worst = np.max(np.abs(amp - _reference_grating(h, N)))
    assert worst <= 1e-5 * N, f"N={N}: worst float32 error {worst:.3g} (peak {N})"


def test_sin_pi_polynomial_matches_libm(backend):
    t = np.linspace(-0.5, 0.5, 40001)
    t = t[t != 0.0]
    values = host(backend, physics.sin_pi(arr(backend, t), polynomial=True))
    expected = np.array([math.sin(math.pi * v) for v in t])
    relative = np.abs(values - expected) / np.abs(expected)
    assert relative.max() < 1e-13
    zero = host(backend, physics.sin_pi(arr(backend, [0.0]), polynomial=True))
    assert zero[0] == 0.0


def test_sin_pi_float32_polynomial_is_as_accurate_as_the_library_sin(backend):
    """float32 arguments take the float32 polynomial: relative error at most twice that of the
    namespace's float32 sin of pi t, and exactly 0 at 0."""
    xp = backend.xp
    t = np.linspace(-0.5, 0.5, 200001).astype(np.float32)
    t = t[t != 0.0]
    exact = np.sin(np.pi * t.astype(np.float64))
    values = physics.sin_pi(arr(backend, t, "float32"), polynomial=True)
    assert values.dtype == xp.float32
    library = host(backend, physics.sin_pi(arr(backend, t, "float32"), polynomial=False))
    worst = np.max(np.abs(host(backend, values) - exact) / np.abs(exact))
    assert worst < 3e-7
    assert worst <= 2.0 * np.max(np.abs(library - exact) / np.abs(exact))
    assert host(backend, physics.sin_pi(arr(backend, [0.0], "float32"), polynomial=True))[0] == 0.0


def test_cos_pi_polynomial_matches_libm(backend):
    from arraybragg.physics import lattice
    t = np.linspace(-0.5, 0.5, 40001)
    values = host(backend, lattice.cos_pi(arr(backend, t)))
    assert np.max(np.abs(values - np.array([math.cos(math.pi * v) for v in t]))) < 1e-14
    assert host(backend, lattice.cos_pi(arr(backend, [0.0])))[0] == 1.0
    t32 = t.astype(np.float32)
    values32 = lattice.cos_pi(arr(backend, t32, "float32"))
    assert values32.dtype == backend.xp.float32
    assert np.max(np.abs(host(backend, values32) - np.cos(np.pi * t32.astype(np.float64)))) < 3e-7
    assert host(backend, lattice.cos_pi(arr(backend, [0.0], "float32")))[0] == 1.0


def test_chebyshev_grating_terms():
    """sin(N x)/sin(x) = U_{N-1}(cos x): U_1 = 2c, U_2 = 4c^2 - 1, U_3 = 8c^3 - 4c, U_4 = 16c^4 - 12c^2 + 1."""
    from arraybragg.physics.lattice import chebyshev_grating_terms
    assert chebyshev_grating_terms(2) == ((2,), True)
    assert chebyshev_grating_terms(3) == ((-1, 4), False)
    assert chebyshev_grating_terms(4) == ((-4, 8), True)
    assert chebyshev_grating_terms(5) == ((1, -12, 16), False)
    for N in range(2, 13):
        terms, odd = chebyshev_grating_terms(N)
        for x in (0.3, 1.1, 2.0):
            c = math.cos(x)
            value = sum(a * c ** (2 * k) for k, a in enumerate(terms)) * (c if odd else 1.0)
            assert value == pytest.approx(math.sin(N * x) / math.sin(x), rel=1e-12)


@pytest.mark.parametrize("Ns", [(2, 3, 5), (10, 10, 10), (12, 7, 4), (5, 1, 5)])
def test_lattice_factor_chebyshev_form_is_the_ratio(backend, Ns, monkeypatch):
    """Whole N up to 12 in float64 take U_{N-1}(cos pi d): within 1e-9 of the reduced sine ratio
    (relative, floor 1e-12 of the peak), N^2 per axis at exact lattice points; N = 13 or a fractional N
    take the ratio itself."""
    from arraybragg.physics import lattice
    h = np.random.default_rng(sum(Ns)).uniform(-60.0, 60.0, (3, 4000))
    h[:, :3] = [[7.0, -3.0, 0.0], [2.0, 5.0, -1.0], [0.0, 4.0, 9.0]]  # exact lattice points
    nearest = np.ceil(h - 0.5)
    params = {"N": Ns, "shape": "SQUARE"}

    def factor():
        return host(backend, physics.lattice_factor_sq(arr(backend, h), arr(backend, nearest), params,
                                                       backend.xp.float64, True))

    chebyshev = factor()
    monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 0, 4: 0})
    ratio = factor()
    peak = float(np.prod(np.square(Ns)))
    assert np.max(np.abs(chebyshev - ratio) / np.maximum(ratio, 1e-12 * peak)) < 1e-9
    np.testing.assert_array_equal(chebyshev[:3], peak)
    monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 12, 4: 5})
    for other in ((13, 5, 5), (5.5, 5, 5)):
        params["N"] = other
        with_limit = factor()
        monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 0, 4: 0})
        np.testing.assert_array_equal(with_limit, factor())
        monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 12, 4: 5})


@pytest.mark.parametrize("Ns", [(2, 3, 5), (5, 5, 5), (5, 1, 4)])
def test_lattice_factor_float32_chebyshev_form(backend, Ns, monkeypatch):
    """float32 takes U_{N-1}(cos pi d) for whole N up to 5: within 1e-5 of the float64 ratio where
    F_latt^2 is above 1e-3 of its peak (the sines: the same bound), the peak at exact lattice points;
    N = 6 takes the sines."""
    from arraybragg.physics import lattice
    xp = backend.xp
    h = np.random.default_rng(sum(Ns)).uniform(-60.0, 60.0, (3, 20000))
    h[:, :3] = [[7.0, -3.0, 0.0], [2.0, 5.0, -1.0], [0.0, 4.0, 9.0]]
    nearest = np.ceil(h - 0.5)
    params = {"N": Ns, "shape": "SQUARE"}

    def factor(dtype):
        return host(backend, physics.lattice_factor_sq(arr(backend, h), arr(backend, nearest), params,
                                                       getattr(xp, dtype), True))

    exact, chebyshev = factor("float64"), factor("float32")
    peak = float(np.prod(np.square(Ns)))
    bright = exact > 1e-3 * peak
    assert np.max(np.abs(chebyshev - exact)[bright] / exact[bright]) < 1e-5
    np.testing.assert_allclose(chebyshev[:3], peak, rtol=1e-6)
    monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 12, 4: 0})
    sines = factor("float32")
    assert not np.array_equal(sines, chebyshev)
    assert np.max(np.abs(sines - exact)[bright] / exact[bright]) < 1e-5
    params["N"] = (6, 5, 5)
    with_limit = factor("float32")
    monkeypatch.setattr(lattice, "_CHEBYSHEV_N_MAX", {8: 12, 4: 5})
    np.testing.assert_array_equal(with_limit, factor("float32"))


def test_sin_pi_library_path(backend):
    t = np.array([0.25, -0.5, 1 / 6])
    values = host(backend, physics.sin_pi(arr(backend, t), polynomial=False))
    np.testing.assert_allclose(values, [math.sqrt(0.5), -1.0, 0.5], rtol=1e-15)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_round_half_even(backend, dtype):
    values = [0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 2.4, 2.6, -2.6, 7.0, 4194303.5]
    expected = [0.0, 2.0, 2.0, 4.0, 0.0, -2.0, -2.0, 2.0, 3.0, -3.0, 7.0, 4194304.0]
    result = physics.round_half_even(arr(backend, values, dtype))
    assert result.dtype == getattr(backend.xp, dtype)
    np.testing.assert_array_equal(host(backend, result), expected)


def test_nearest_index_rounds_halves_down(backend):
    h = [0.5, 1.5, -0.5, -1.5, 2.49, 2.51, -2.51, 3.0, 0.0]
    expected = [0.0, 1.0, -1.0, -2.0, 2.0, 3.0, -3.0, 3.0, 0.0]
    np.testing.assert_array_equal(host(backend, physics.nearest_index(arr(backend, h))), expected)


def test_sinc3_limit_and_values(backend):
    x = np.array([0.0, 1e-2, math.pi, 4.493409457909064])  # last: first zero, tan x = x
    values = host(backend, physics.sinc3(arr(backend, x)))
    assert values[0] == 1.0
    assert values[1] == pytest.approx(1.0 - 1e-4 / 10.0 + 1e-8 / 280.0, abs=1e-10)  # Taylor series
    assert values[2] == pytest.approx(3.0 / math.pi ** 2, rel=1e-12)
    assert abs(values[3]) < 1e-12


# --- lattice factor ----------------------------------------------------------------------------

def _crystal_params(backend, shape, N=(3, 4, 5), fudge=1.0, cell=100.0):
    recip = np.eye(3) / cell  # cubic cell, 1/Angstrom
    return dict(N=N, shape=shape, fudge=fudge, reciprocal=arr(backend, recip))


@pytest.mark.parametrize("shape, scale", [("SQUARE", 1.0), ("GAUSS", 1.0), ("TOPHAT", 1.0),
                                          ("ROUND", ROUND_SCALE ** 2)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_lattice_factor_at_lattice_point_is_N_squared(backend, shape, scale, dtype):
    xp = backend.xp
    hkl = arr(backend, [[0.0, 1.0, -3.0, 12.0], [0.0, 2.0, 5.0, -7.0], [0.0, -1.0, 4.0, 30.0]])
    params = _crystal_params(backend, shape)
    with np.errstate(**QUIET):
        result = physics.lattice_factor_sq(hkl, hkl, params, getattr(xp, dtype), polynomial=True)
    assert result.dtype == getattr(xp, dtype)
    assert tuple(result.shape) == (4,)
    np.testing.assert_allclose(host(backend, result), (3 * 4 * 5) ** 2 * scale, rtol=1e-6)


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 2e-4)])
def test_grating_from_phases_is_the_sincg_product(backend, dtype, rtol):
    """prod sin^2(N y) / sin^2(y) from y = pi h, also for y outside (-pi/2, pi/2] and off by multiples of pi."""
    h = np.array([[0.1, 1.3, -2.45, 0.52, 7.02], [0.2, 2.0001, 0.07, 0.33, -3.9], [-0.4, 0.6, 5.5, 0.01, 0.49]])
    N = (3, 4, 5)
    expected = np.ones(h.shape[1])
    for axis, n in enumerate(N):
        expected *= (np.sin(n * np.pi * h[axis]) / np.sin(np.pi * h[axis])) ** 2
    phases = [arr(backend, np.pi * (h[axis] - shift), dtype) for axis, shift in enumerate((0, 2, -1))]
    result = physics.grating_sq_from_phases(phases, N)
    assert result.dtype == getattr(backend.xp, dtype)
    np.testing.assert_allclose(host(backend, result), expected, rtol=rtol, atol=rtol * expected.max())


def test_grating_from_phases_near_a_lattice_point_keeps_the_ratio(backend):
    """float32 phases of 1e-6 rad carry only an absolute error, but sin(N y)/sin(y) stays ~N."""
    N = (36, 47, 29)
    y = [arr(backend, [3e-8, 1e-6, -2e-7], "float32") for _ in N]
    result = host(backend, physics.grating_sq_from_phases(y, N))
    np.testing.assert_allclose(result, float(np.prod(N)) ** 2, rtol=1e-3)


def test_lattice_factor_square_off_peak_is_product_of_sincg(backend):
    xp = backend.xp
    frac = np.array([[0.1, 1.3, -2.45, 0.0], [0.2, 2.0, 0.07, 0.33], [-0.4, 0.6, 5.5, 0.01]])
    nearest = np.ceil(frac - 0.5)
    N = (3, 4, 5)
    with np.errstate(**QUIET):
        result = physics.lattice_factor_sq(arr(backend, frac), arr(backend, nearest),
                                           _crystal_params(backend, "SQUARE", N), xp.float64, polynomial=True)
    expected = np.ones(frac.shape[1])
    for axis, n in enumerate(N):
        x = np.pi * frac[axis]
        safe = np.where(x == 0, 1.0, x)
        expected *= np.where(x == 0, n, np.sin(n * safe) / np.sin(safe)) ** 2
    np.testing.assert_allclose(host(backend, result), expected, rtol=1e-9, atol=1e-9)  # some are zeros of sincg


def test_lattice_factor_square_skips_N_of_one(backend):
    xp = backend.xp
    frac = arr(backend, [[0.3], [0.3], [0.3]])
    nearest = arr(backend, [[0.0], [0.0], [0.0]])
    ones = physics.lattice_factor_sq(frac, nearest, _crystal_params(backend, "SQUARE", (1, 1, 1)), xp.float64, True)
    np.testing.assert_array_equal(host(backend, ones), [1.0])


def test_lattice_factor_round_gauss_tophat_off_peak(backend):
    xp = backend.xp
    frac = np.array([[0.05, 0.2], [0.0, 0.1], [0.1, -0.3]])
    nearest = np.zeros_like(frac)
    N = (3, 4, 5)
    volume = 60.0
    fudge = 1.3
    hrad_sq = (frac[0] * 3) ** 2 + (frac[1] * 4) ** 2 + (frac[2] * 5) ** 2
    x = np.pi * np.sqrt(hrad_sq * fudge)
    round_expected = (volume * ROUND_SCALE * 3 * (np.sin(x) / x - np.cos(x)) / x ** 2) ** 2
    cell = 20.0  # Angstrom: small enough for the second point to fall outside the top-hat
    rad_star_sq = (frac ** 2).sum(axis=0) / cell ** 2 * (3 * 4 * 5) ** 2
    gauss_expected = (volume * np.exp(-rad_star_sq / 0.63 * fudge)) ** 2
    tophat_expected = np.where(rad_star_sq * fudge < 0.3969, volume ** 2, 0.0)
    for shape, expected in (("ROUND", round_expected), ("GAUSS", gauss_expected), ("TOPHAT", tophat_expected)):
        params = _crystal_params(backend, shape, N, fudge, cell)
        result = physics.lattice_factor_sq(arr(backend, frac), arr(backend, nearest), params, xp.float64, True)
        np.testing.assert_allclose(host(backend, result), expected, rtol=1e-12, err_msg=shape)
    assert tophat_expected[0] == volume ** 2 and tophat_expected[1] == 0.0  # both sides of the cut-off


# --- polarization, rotation, absorption, background -----------------------------------------

def test_polarization_unpolarized(backend):
    two_theta = np.radians([0.0, 10.0, 45.0, 90.0, 150.0])
    incident = np.tile([1.0, 0.0, 0.0], (5, 1))
    diffracted = np.stack([np.cos(two_theta), np.sin(two_theta) * 0.6, np.sin(two_theta) * 0.8], axis=-1)
    polar = arr(backend, [0.0, 0.0, 1.0])
    result = physics.polarization_factor(arr(backend, incident), arr(backend, diffracted), polar, 0.0)
    np.testing.assert_allclose(host(backend, result), 0.5 * (1 + np.cos(two_theta) ** 2), rtol=1e-14)


def test_polarization_kahn_one_in_and_perpendicular_to_plane(backend):
    two_theta = np.radians([5.0, 30.0, 60.0, 89.0])
    incident = arr(backend, np.tile([1.0, 0.0, 0.0], (4, 1)))
    polar = arr(backend, [0.0, 0.0, 1.0])  # E-vector along z
    in_plane = np.stack([np.cos(two_theta), 0 * two_theta, np.sin(two_theta)], axis=-1)        # x-z plane
    perpendicular = np.stack([np.cos(two_theta), np.sin(two_theta), 0 * two_theta], axis=-1)  # x-y plane
    parallel = physics.polarization_factor(incident, arr(backend, in_plane), polar, 1.0)
    across = physics.polarization_factor(incident, arr(backend, perpendicular), polar, 1.0)
    np.testing.assert_allclose(host(backend, parallel), np.cos(two_theta) ** 2, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(backend, across), 1.0, rtol=1e-14)


def test_polarization_general_kahn(backend):
    """0.5 (1 + cos^2 2theta - K cos 2psi sin^2 2theta) with psi the azimuth from the E-vector."""
    two_theta, psi, kahn = math.radians(40.0), math.radians(25.0), 0.8
    diffracted = [math.cos(two_theta), math.sin(two_theta) * math.sin(psi), math.sin(two_theta) * math.cos(psi)]
    result = physics.polarization_factor(arr(backend, [[1.0, 0.0, 0.0]]), arr(backend, [diffracted]),
                                         arr(backend, [0.0, 0.0, 1.0]), kahn)
    c2, s2 = math.cos(two_theta) ** 2, math.sin(two_theta) ** 2
    assert host(backend, result)[0] == pytest.approx(0.5 * (1 + c2 - kahn * math.cos(2 * psi) * s2), rel=1e-13)


def test_rotate_components(backend):
    """Rodrigues rotation on components: quarter turns about z, a turn and back about a skew axis
    (numbers and arrays mixed as the curved detector passes them), and the length kept."""
    xp = backend.xp
    quarter = xp.full((3,), math.pi / 2, dtype=xp.float64)
    v = [arr(backend, [1.0, 0.0, 0.3]), arr(backend, [0.0, 1.0, -0.2]), 0.9]
    rotated = np.stack([host(backend, c) for c in physics.rotate_components(v, [0.0, 0.0, 1.0], quarter)], axis=1)
    np.testing.assert_allclose(rotated, [[0, 1, 0.9], [-1, 0, 0.9], [0.2, 0.3, 0.9]], atol=1e-15)
    axis = [1.0 / 3.0, 2.0 / 3.0, -2.0 / 3.0]
    angle = arr(backend, [0.7, -2.0])
    there = physics.rotate_components([0.3, -0.2, 0.9], axis, angle)
    back = np.stack([host(backend, c) for c in physics.rotate_components(there, axis, -angle)], axis=1)
    np.testing.assert_allclose(back, [[0.3, -0.2, 0.9]] * 2, atol=1e-15)
    lengths = np.linalg.norm(np.stack([host(backend, c) for c in there], axis=1), axis=1)
    np.testing.assert_allclose(lengths, np.linalg.norm([0.3, -0.2, 0.9]), rtol=1e-15)


def test_cross_and_dot(backend):
    u, v = arr(backend, [[1.0, 2.0, 3.0]]), arr(backend, [[-2.0, 0.5, 4.0]])
    np.testing.assert_allclose(host(backend, physics.cross(u, v)), [np.cross([1, 2, 3], [-2, 0.5, 4])])
    np.testing.assert_allclose(host(backend, physics.dot(u, v)), [11.0])
    np.testing.assert_allclose(host(backend, physics.norm(u)), [math.sqrt(14.0)])


@pytest.mark.parametrize("layers", [1, 3, 7])
def test_capture_fraction_layers_sum_to_total_absorption(backend, layers):
    thickness, mu = 200e-6, 1.0 / 300e-6
    parallax = np.array([1.0, 0.8, 0.5, 0.1])
    fractions = [host(backend, physics.capture_fraction(arr(backend, parallax), t, thickness / layers, mu))
                 for t in range(layers)]
    np.testing.assert_allclose(np.sum(fractions, axis=0), 1.0 - np.exp(-thickness * mu / parallax), rtol=1e-13)
    first = np.exp(0.0) - np.exp(-thickness / layers * mu / parallax)
    np.testing.assert_allclose(fractions[0], first, rtol=1e-13)


def test_water_background_formula():
    """I_bg = F_water^2 r_e^2 fluence size^3 1e6 N_A / 18 with nanoBragg's constants."""
    fluence, size = 1.25932015286227e29, 50e-6
    expected = 2.57 ** 2 * 7.94079248018965e-30 * fluence * size ** 3 * 1e6 * 6.02214179e23 / 18.0
    assert physics.water_background(fluence, size) == pytest.approx(expected, rel=1e-14)
    assert physics.water_background(fluence, 2 * size) == pytest.approx(8 * expected, rel=1e-14)
    assert physics.water_background(fluence, 0.0) == 0.0


# --- structure factors -------------------------------------------------------------------------

def _table(backend, values: np.ndarray, mins, default_F):
    maxs = tuple(lo + n - 1 for lo, n in zip(mins, values.shape))
    return physics.structure_factor_table(arr(backend, values), mins, maxs, default_F)


def _grid_values():
    h, k, l = np.meshgrid(np.arange(-2, 3), np.arange(0, 4), np.arange(-1, 2), indexing="ij")
    return 100.0 * h + 10.0 * k + l + 1000.0  # unique per (h, k, l)


@pytest.mark.parametrize("squared", [False, True])
def test_structure_factor_nearest_in_range(backend, squared):
    table = _table(backend, _grid_values(), (-2, 0, -1), 7.0)
    hkl = np.array([[-2, 2, 0, 1], [0, 3, 1, 2], [-1, 1, 0, -1]], dtype=float)
    expected = 100.0 * hkl[0] + 10.0 * hkl[1] + hkl[2] + 1000.0
    result = physics.structure_factor_nearest(arr(backend, hkl), table, squared=squared)
    np.testing.assert_array_equal(host(backend, result), expected ** 2 if squared else expected)


@pytest.mark.parametrize("squared", [False, True])
def test_structure_factor_nearest_out_of_range_gives_default(backend, squared):
    table = _table(backend, _grid_values(), (-2, 0, -1), 7.0)
    hkl = np.array([[1, 3, -3, 0, 0], [2, 0, 0, 4, 1], [0, 0, 0, 0, 2]], dtype=float)  # 2nd..5th outside
    result = host(backend, physics.structure_factor_nearest(arr(backend, hkl), table, squared=squared))
    inside = 100.0 * 1 + 10.0 * 2 + 0 + 1000.0
    expected = [inside, 7.0, 7.0, 7.0, 7.0]
    np.testing.assert_array_equal(result, np.square(expected) if squared else expected)


def test_structure_factor_without_table_is_default_F(backend):
    hkl = arr(backend, np.zeros((3, 2, 3)))
    table = dict(F=None, default_F=12.5)
    result = physics.structure_factor_nearest(hkl, table)
    assert tuple(result.shape) == (2, 3)
    np.testing.assert_array_equal(host(backend, result), np.full((2, 3), 12.5))
    np.testing.assert_array_equal(host(backend, physics.structure_factor_nearest(hkl, table, squared=True)), 156.25)


def _cubic(h, k, l):
    """A polynomial of degree <= 3 in each index: tricubic Lagrange interpolation is exact for it."""
    return 3.0 + 0.5 * h - 0.25 * k * k + 0.02 * l ** 3 + 0.01 * h ** 3 * k * l ** 2 - 0.3 * h * k


def test_tricubic_reproduces_cubic_polynomial(backend):
    mins, maxs = (-3, -2, -4), (5, 4, 3)
    axes = [np.arange(lo, hi + 1, dtype=float) for lo, hi in zip(mins, maxs)]
    grid = _cubic(*np.meshgrid(*axes, indexing="ij"))
    table = _table(backend, grid, mins, 0.0)
    rng = np.random.default_rng(7)
    # inside the region where the whole 4x4x4 neighbourhood is on the grid
    points = np.stack([rng.uniform(lo + 2, hi - 2, 200) for lo, hi in zip(mins, maxs)])
    hkl = arr(backend, points)
    assert not np.any(host(backend, physics.interpolation_out_of_range(hkl, table)))
    result = host(backend, physics.structure_factor_tricubic(hkl, table))
    np.testing.assert_allclose(result, _cubic(*points), rtol=1e-11, atol=1e-11)


def _polint(nodes, values, x):
    """nanoBragg's polint: the Lagrange cubic through (nodes, values) at x."""
    total = 0.0
    for i in range(4):
        term = values[i]
        for j in range(4):
            if j != i:
                term *= (x - nodes[j]) / (nodes[i] - nodes[j])
        total += term
    return total


def _polin3(grid, mins, point):
    """nanoBragg's polin3 on the 4x4x4 neighbourhood from floor(point) - 1: l lines, k, then h."""
    corner = [int(np.floor(x)) for x in point]
    nodes = [np.arange(c - 1, c + 3, dtype=float) for c in corner]
    cube = grid[tuple(slice(c - 1 - lo, c + 3 - lo) for c, lo in zip(corner, mins))]
    planes = [_polint(nodes[1], [_polint(nodes[2], cube[i, j], point[2]) for j in range(4)], point[1])
              for i in range(4)]
    return _polint(nodes[0], planes, point[0])


def test_tricubic_equals_nanobragg_polin3_on_a_random_grid(backend):
    """Any grid: the coefficient form agrees with nanoBragg's nested Lagrange interpolation."""
    mins, maxs = (-4, -3, -5), (4, 5, 3)
    rng = np.random.default_rng(11)
    grid = rng.uniform(0.0, 500.0, tuple(hi - lo + 1 for lo, hi in zip(mins, maxs)))
    table = _table(backend, grid, mins, 0.0)
    points = np.stack([rng.uniform(lo + 1, hi - 2, 300) for lo, hi in zip(mins, maxs)])
    points[:, :4] = [[-3.0, 0.0, 2.0, 0.5], [-2.0, 1.0, 3.999, -1.5], [-4.0, 1.0, 0.0, 1.25]]  # nodes, edges
    result = host(backend, physics.structure_factor_tricubic(arr(backend, points), table))
    expected = [_polin3(grid, mins, points[:, n]) for n in range(points.shape[1])]
    np.testing.assert_allclose(result, expected, rtol=1e-12, atol=1e-10)


def test_interpolation_out_of_range_edges(backend):
    table = _table(backend, np.zeros((9, 9, 9)), (-3, -3, -3), 0.0)
    # valid h: -1 <= h <= 3 (neighbourhood floor(h)-1 .. floor(h)+2 on -3..5)
    h = np.array([-1.0, 3.0, -1.01, 3.01, 0.0, 0.0])
    k = np.array([0.0, 0.0, 0.0, 0.0, 3.5, 0.0])
    l = np.array([0.0, 0.0, 0.0, 0.0, 0.0, -1.5])
    out = host(backend, physics.interpolation_out_of_range(arr(backend, np.stack([h, k, l])), table))
    np.testing.assert_array_equal(out.astype(bool), [False, False, True, True, True, True])
