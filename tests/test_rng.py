"""arraybragg.rng against numbers printed by the C functions (ran1, gaussdev, poidev,
mosaic_rotation_umat, umat2misset of nanoBragg.c, compiled with gcc -O2 on x86-64)."""
import math

import numpy as np

from arraybragg import rng


def f32(text):
    return float(np.float32(float(text)))


# ran1 with the default -mosaic_seed (stored as -12345678): draws number 1, 32, 33, 65536,
# 65537, 131072 and 200000 (1-based), spanning the shuffle-table start and block edges
RAN1_MOSAIC_SEED = {0: "0.765989304", 31: "0.295379758", 32: "0.43706134", 65535: "0.918471575",
                    65536: "0.501682401", 131071: "0.0310145933", 199999: "0.339526147"}


def test_ran1_matches_c_sequence():
    stream = rng.Ran1Stream(-12345678)
    first = [stream.uniform() for _ in range(5)]
    assert first == [f32(v) for v in ("0.765989304", "0.023453664", "0.589726627", "0.535101593", "0.982231438")]
    stream = rng.Ran1Stream(-12345678)
    singles = np.array([stream.uniform() for _ in range(3)], dtype=np.float32)
    bulk = stream.uniforms(199997)
    assert bulk.dtype == np.float32
    draws = np.concatenate([singles, bulk])
    for index, text in RAN1_MOSAIC_SEED.items():
        assert draws[index] == np.float32(float(text))
    assert 0.0 < draws.min() and draws.max() < 1.0


def test_ran1_seed_rules():
    reference = rng.Ran1Stream(-1).uniforms(4)
    assert reference.tolist() == [f32(v) for v in ("0.415999353", "0.091964893", "0.75641048", "0.52970022")]
    # a fresh stream with a seed >= 0 starts as seed -1
    assert np.array_equal(rng.Ran1Stream(0).uniforms(4), reference)
    assert np.array_equal(rng.Ran1Stream(5).uniforms(4), reference)
    # a seed equal to the modulus sticks at 0 once, then restarts as seed -1
    stuck = rng.Ran1Stream(-2147483647).uniforms(3)
    assert stuck.tolist() == [0.0] + reference[:2].tolist()


def test_gauss_matches_c_and_keeps_the_spare():
    stream = rng.Ran1Stream(-1234)
    values = [rng.gauss(stream) for _ in range(4)]
    assert all(isinstance(v, np.float32) for v in values)
    assert values == [np.float32(float(v)) for v in ("-0.866433442", "0.384425342", "-0.444188267", "-2.57868481")]
    # two deviates per pair of accepted uniforms: the spare costs no draw
    stream = rng.Ran1Stream(-1234)
    rng.gauss(stream)
    after_first = stream.uniform()
    stream = rng.Ran1Stream(-1234)
    rng.gauss(stream)
    rng.gauss(stream)
    assert stream.uniform() == after_first


# poidev over all branches (exact below 12, rejection to 1e6, normal above) with seed -777
POISSON_MEANS = [0.0, 0.5, 3.0, 11.9, 12.0, 50.0, 1000.0, 5e5, 2e6, 2e6, 0.0, 7.25, 7.25, 1e8]
POISSON_C = [0, 4, 3, 15, 12, 55, 981, 500476, 1999231.125, 2000910.75, 0, 9, 5, 100004008]


def test_poisson_matches_c_on_every_branch():
    means = [float(np.float32(m)) for m in POISSON_MEANS]
    assert rng.poisson_deviates(means, rng.Ran1Stream(-777)) == POISSON_C
    stream = rng.Ran1Stream(-777)
    one_by_one = [rng.poisson(m, stream) for m in POISSON_MEANS]
    assert all(isinstance(v, np.float32) for v in one_by_one)
    assert one_by_one == [np.float32(v) for v in POISSON_C]


def test_poisson_odd_means_follow_the_c():
    stream = rng.Ran1Stream(-5)
    # the C's cache starts at mean -1 with g = 0: that first mean multiplies uniforms
    # until the float product underflows to 0
    first = rng.poisson(-1.0, stream)
    assert first > 20
    values = rng.poisson_deviates([-3.0, -1000.0, math.inf, 0.0], stream)
    assert values[:2] == [0.0, 0.0] and values[2] == math.inf and values[3] == 0.0
    assert math.isnan(rng.poisson(math.nan, stream))


def test_poisson_retry_when_the_reserve_runs_out(monkeypatch):
    means = [float(v) for v in np.linspace(0.0, 40.0, 300, dtype=np.float32)]
    expected = rng.poisson_deviates(means, rng.Ran1Stream(-31))
    monkeypatch.setattr(rng, "_RESERVE", 1)  # every deviate needing 2+ uniforms retries
    stream = rng.Ran1Stream(-31)
    assert rng.poisson_deviates(means, stream) == expected
    reference = rng.Ran1Stream(-31)
    rng.poisson_deviates(means, reference)
    assert stream.uniform() == reference.uniform()


def synthetic_means():
    """150000 means: a sparse part (mostly tiny, some bright pixels), then a dense one."""
    i = np.arange(150000, dtype=np.float64)
    x = (i * 7919.0) % 1000.0 / 1000.0
    x8 = x * x * x * x * x * x * x * x
    means = np.where(i < 80000, 0.002 * x8, 2.0 * x * x)
    means[::1499] += 3.0  # isolated bright pixels in the sparse part
    means[::997] += 25.0  # rejection method
    means[5003] = 2e6  # normal approximation
    means[:3] = -1.0  # poidev's initial cache: mean -1 with g = 0
    means[70001] = np.nan
    return means.astype(np.float32)


def test_poisson_array_matches_c_on_sparse_and_dense_pixels():
    # digest of the C's poidev over synthetic_means() with seed -4321
    deviates = rng.poisson_array(synthetic_means(), rng.Ran1Stream(-4321))
    assert deviates.dtype == np.float32
    assert np.flatnonzero(np.isnan(deviates)).tolist() == [70001]
    finite = np.nan_to_num(deviates).astype(np.float64)
    assert np.count_nonzero(finite) == 28224 and np.count_nonzero(finite[:80000]) == 150
    assert finite.sum() == 2050282.5
    assert ((np.arange(finite.size) % 9973) * finite).sum() == 10255900127.5
    assert deviates[[0, 1, 2, 997, 5003]].tolist() == [90.0, 101.0, 94.0, 22.0, 1999407.5]


def test_poisson_array_in_pieces_continues_the_stream():
    means = synthetic_means()
    reference = rng.Ran1Stream(-4321)
    whole = rng.poisson_array(means, reference)
    stream = rng.Ran1Stream(-4321)
    pieces = [rng.poisson_array(part, stream) for part in np.split(means, [1, 2, 5003, 5004, 70001, 100000])]
    assert np.array_equal(np.concatenate(pieces), whole, equal_nan=True)
    assert (stream.poisson_mean, stream.poisson_g) == (reference.poisson_mean, reference.poisson_g)
    assert stream.uniform() == reference.uniform()


def test_exp_thresholds_round_like_libm():
    special = [0.0, -0.0, 1e-8, rng._SAFE_MEAN, 1.2e-7, 0.5, -1.0, -100.0, -1e30, 12.0, np.inf, -np.inf]
    means = np.concatenate([np.random.default_rng(1).random(20000) * 12, special]).astype(np.float32)
    vector = rng._direct_thresholds(means)
    scalar = np.array([rng._direct_threshold(m) for m in means.tolist()], dtype=np.float32)
    assert np.array_equal(vector, scalar)
    assert rng._direct_threshold(0.5) == float(np.float32(math.exp(-0.5)))
    assert vector[-3:].tolist() == [np.float32(math.exp(-12.0)), 0.0, math.inf]
    # up to _SAFE_MEAN no uniform can exceed exp(-mean): a deviate of 0 from one draw
    assert rng._UNIFORM_MAX == np.float32(1.0 - 2.0 ** -23)
    assert rng._direct_threshold(float(np.float32(rng._SAFE_MEAN))) >= rng._UNIFORM_MAX


# mosaic domains 2 and 3 of the samp_mosaic case: -mosaic 0.5 (degrees) with the default seed
SAMP_MOSAIC_UMATS = [
    [0.99996592089784464, -0.0079751680914580177, 0.0021339486494309119,
     0.0079761872189555976, 0.99996807949662869, -0.0004694946988297568,
     -0.0021301362335746331, 0.00048649947281547405, 0.99999761291609557],
    [0.9999914359922164, 0.0028416441030047652, 0.0030088205358383916,
     -0.0028584857919053165, 0.99998018943075295, 0.0056080125724695118,
     -0.0029928249535347059, -0.0056165652161582636, 0.99997974839192127],
]


def test_mosaic_umats_match_c_bit_for_bit():
    stream = rng.Ran1Stream(-12345678)
    umats = [rng.mosaic_rotation_umat(0.5 / 57.29577951308232088, stream) for _ in range(3)]
    assert umats[0].shape == (3, 3) and umats[0].dtype == np.float64
    for got, expected in zip(umats[1:], SAMP_MOSAIC_UMATS):
        assert got.ravel().tolist() == expected
    for umat in umats:
        np.testing.assert_allclose(umat @ umat.T, np.eye(3), atol=1e-14)


def test_random_misset_matches_c():
    umat = rng.mosaic_rotation_umat(90.0, rng.Ran1Stream(-1234))
    assert umat.ravel().tolist() == [
        0.27144121856265235, -0.4968097370042735, -0.8243177482518298,
        0.95612725672684662, 0.041143727758036569, 0.29004803500483756,
        -0.11018318296916862, -0.86688365937068923, 0.48618143455593366]
    assert rng.umat_to_misset(umat) == (-1.0596701712026519, 0.11040735325448157, 1.294178032262796)


def rotation_xyz(rotx, roty, rotz):
    cx, sx, cy, sy, cz, sz = (f(a) for a in (rotx, roty, rotz) for f in (math.cos, math.sin))
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def test_umat_to_misset_inverts_xyz_rotations():
    angles = (0.3, -0.4, 1.1)
    np.testing.assert_allclose(rng.umat_to_misset(rotation_xyz(*angles)), angles, atol=1e-14)
    assert rng.umat_to_misset(np.eye(3)) == (0.0, -0.0, 0.0)


def test_umat_to_misset_degenerate_matrices():
    # zero rows are rebuilt: an all-zero matrix becomes the identity
    assert rng.umat_to_misset(np.zeros((3, 3))) == (0.0, -0.0, 0.0)
    # rotation of +-90 degrees about y: the C's fallback branch
    assert rng.umat_to_misset([[0, 0, 0], [0, 0, 0], [1.0, 0, 0]]) == (math.pi, math.pi / 2, math.pi)
    # missing z row: rebuilt as x cross y
    scaled = np.array([[2.0, 0, 0], [0, 3.0, 0], [0, 0, 0]])
    assert rng.umat_to_misset(scaled) == (0.0, -0.0, 0.0)
