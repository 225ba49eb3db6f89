"""Tests for scratchgan.metrics.parzen (Parzen-window log-likelihood, docs/paper.md §5)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from scratchgan import backend
from scratchgan.metrics import (
    DEFAULT_SIGMAS,
    ParzenResult,
    parzen_evaluate,
    parzen_log_likelihood,
    parzen_log_likelihood_grid,
    select_sigma,
)
from scratchgan.metrics.parzen import _sq_distances


# --------------------------------------------------------------------------
# independent references (float64, explicit differences, no expansion trick)
# --------------------------------------------------------------------------

def brute_force(x, mu, sigma):
    """Explicit (n, N, d) broadcast + np.logaddexp.reduce, all float64."""
    x = np.asarray(x, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    d = x.shape[1]
    sq = ((x[:, None, :] - mu[None, :, :]) ** 2).sum(axis=-1)  # (n, N)
    a = -sq / (2.0 * sigma**2)
    return (np.logaddexp.reduce(a, axis=1) - np.log(mu.shape[0])
            - d * np.log(sigma * np.sqrt(2.0 * np.pi)))


def brute_force_rows(x, mu, sigma):
    """Same as brute_force but one row of x at a time (for d = 784)."""
    return np.concatenate([brute_force(x[i:i + 1], mu, sigma) for i in range(len(x))])


def gaussian_logpdf(x, m, sigma):
    """log N(x; m, sigma^2 I), written from the textbook formula."""
    x = np.asarray(x, np.float64)
    m = np.asarray(m, np.float64)
    d = x.shape[-1]
    return -0.5 * d * np.log(2 * np.pi * sigma**2) - ((x - m) ** 2).sum(-1) / (2 * sigma**2)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# --------------------------------------------------------------------------
# correctness
# --------------------------------------------------------------------------

SIGMAS = [0.05, 0.3, 1.0, 4.0]


@pytest.mark.parametrize("batch_size", [1, 3, 7, 11, 100])
def test_matches_brute_force(rng, batch_size):
    x = rng.normal(size=(11, 5))
    mu = rng.normal(size=(13, 5)) * 0.7 + 0.2
    grid = parzen_log_likelihood_grid(x, mu, SIGMAS, batch_size=batch_size)
    assert grid.shape == (len(SIGMAS), 11)
    assert grid.dtype == np.float64
    for k, s in enumerate(SIGMAS):
        ref = brute_force(x, mu, s)
        np.testing.assert_allclose(grid[k], ref, rtol=1e-12, atol=1e-9)
        single = parzen_log_likelihood(x, mu, s, batch_size=batch_size)
        assert single.shape == (11,)
        np.testing.assert_allclose(single, ref, rtol=1e-12, atol=1e-9)


def test_matches_scipy_logsumexp(rng):
    special = pytest.importorskip("scipy.special")
    x, mu, s = rng.random((6, 4)), rng.random((9, 4)), 0.2
    sq = ((x[:, None] - mu[None]) ** 2).sum(-1)
    ref = special.logsumexp(-sq / (2 * s * s), axis=1, b=1.0 / 9) - 4 * np.log(s * np.sqrt(2 * np.pi))
    np.testing.assert_allclose(parzen_log_likelihood(x, mu, s, batch_size=4), ref, rtol=1e-12)


@pytest.mark.parametrize("sigma", [0.01, 0.1, 0.5, 3.0])
def test_one_sample_is_gaussian_logpdf(rng, sigma):
    d = 7
    x = rng.normal(size=(5, d))
    m = rng.normal(size=(1, d))
    got = parzen_log_likelihood(x, m, sigma, batch_size=2)
    np.testing.assert_allclose(got, gaussian_logpdf(x, m[0], sigma), rtol=1e-12, atol=1e-9)


def test_log_mean_not_log_sum(rng):
    """Duplicating every centre must not change the density (the -log N term)."""
    x, mu = rng.normal(size=(4, 3)), rng.normal(size=(5, 3))
    a = parzen_log_likelihood(x, mu, 0.4)
    b = parzen_log_likelihood(x, np.concatenate([mu, mu, mu]), 0.4)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("k", range(4))
def test_normalising_constant_matches_paper(k):
    """PAPER.md §5 quotes -784*log(sigma*sqrt(2*pi)) at four grid values."""
    quoted = [1084.8, 683.6, 483.0, 282.5]
    sigma = DEFAULT_SIGMAS[[0, 2, 3, 4][k]]
    x = np.full((1, 784), 0.3)
    got = parzen_log_likelihood(x, x.copy(), sigma)[0]  # x on its only centre
    assert abs(got - quoted[k]) < 0.06


def test_permutation_invariance(rng):
    x, mu = rng.random((9, 6)), rng.random((20, 6))
    a = parzen_log_likelihood_grid(x, mu, [0.1, 0.5], batch_size=4)
    b = parzen_log_likelihood_grid(x[::-1], mu[rng.permutation(20)], [0.1, 0.5], batch_size=5)
    np.testing.assert_allclose(a, b[:, ::-1], rtol=1e-12, atol=1e-10)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    n_mu=st.integers(1, 6),
    d=st.integers(1, 5),
    bs=st.integers(1, 8),
    log_sigma=st.floats(-2.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_property_matches_brute_force(n, n_mu, d, bs, log_sigma, seed):
    r = np.random.default_rng(seed)
    x, mu = r.normal(size=(n, d)), r.normal(size=(n_mu, d))
    sigma = 10.0**log_sigma
    np.testing.assert_allclose(parzen_log_likelihood(x, mu, sigma, batch_size=bs),
                               brute_force(x, mu, sigma), rtol=1e-10, atol=1e-8)


# --------------------------------------------------------------------------
# numerical stability / precision
# --------------------------------------------------------------------------

def test_far_points_tiny_sigma_no_underflow():
    sigma = 0.01
    d = 3
    mu = np.array([[0.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    x = np.array([[10.0, 0.0, 0.0], [-30.0, 5.0, 1.0]])
    # Naively, every exp(-|x-mu|^2 / (2 sigma^2)) is 0 in float64.
    sq = ((x[:, None] - mu[None]) ** 2).sum(-1)
    a = -sq / (2 * sigma**2)
    with np.errstate(under="ignore"):
        assert np.all(np.exp(a) == 0.0)
    expected = (np.logaddexp(a[:, 0], a[:, 1]) - np.log(2)
                - d * np.log(sigma * np.sqrt(2 * np.pi)))
    got = parzen_log_likelihood(x, mu, sigma)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    # Order of magnitude: dominated by the nearest centre, e.g. -64/(2e-4) for x[0].
    assert got[0] == pytest.approx(-64 / (2 * sigma**2) - np.log(2) - d * np.log(sigma * np.sqrt(2 * np.pi)),
                                   rel=1e-12)


def _mnist_like(r, k, d=784):
    a = r.random((k, d))
    off = r.random((k, d)) < 0.8
    a[off] = 0.0
    a[(r.random((k, d)) < 0.5) & ~off] = 1.0
    return a.astype(np.float32)


def test_float32_mnist_scale_matches_float64():
    """float32 inputs, d=784, some test points within ~0.1 of a sample.

    A float32 pipeline (expansion |x|^2+|mu|^2-2x.mu in float32) is off by
    ~2e-3 nats here at sigma=0.1, so the 1e-6 tolerance catches it.
    """
    r = np.random.default_rng(0)
    mu = _mnist_like(r, 300)
    x = _mnist_like(r, 20)
    x[:10] = np.clip(mu[:10] + r.normal(0, 0.01, (10, 784)), 0, 1).astype(np.float32)
    sigmas = [DEFAULT_SIGMAS[0], DEFAULT_SIGMAS[3], 1.0]
    got = parzen_log_likelihood_grid(x, mu, sigmas, batch_size=7)
    for k, s in enumerate(sigmas):
        ref = brute_force_rows(x, mu, s)  # float64 of the same float32 values
        np.testing.assert_allclose(got[k], ref, rtol=0, atol=1e-6)


def test_large_common_offset_is_accurate(rng):
    """Data far from the origin: the expansion must not cancel catastrophically."""
    x = rng.random((6, 50)) + 1e5
    mu = rng.random((8, 50)) + 1e5
    x[0] = mu[0] + 1e-3
    got = parzen_log_likelihood(x, mu, 0.1, batch_size=4)
    ref = brute_force(x, mu, 0.1)
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_exact_hit_gives_finite_and_clamped(rng):
    """x equal to a centre: distance is ~0, never negative, LL finite."""
    mu = rng.random((10, 784)).astype(np.float32)
    got = parzen_log_likelihood(mu[:3], mu, 0.1)
    assert np.all(np.isfinite(got))
    # Upper bound: one centre at distance 0 out of N, the rest contributing >= 0.
    bound = np.log(1 / 10) - 784 * np.log(0.1 * np.sqrt(2 * np.pi))
    assert np.all(got >= bound - 1e-9)


def test_squared_distances_clamped_at_zero():
    """x equal to centres: the expansion rounds about half the zeros negative."""
    r = np.random.default_rng(0)
    mu = r.random((50, 784))
    mu -= mu.mean(axis=0)
    dist = _sq_distances(np, mu.copy(), mu.T, np.einsum("ij,ij->i", mu, mu))
    assert np.all(dist >= 0.0)
    assert np.all(np.diag(dist) < 1e-10)
    ref = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    np.testing.assert_allclose(dist, ref, rtol=1e-10, atol=1e-10)


def test_no_runtime_warnings_on_extreme_values():
    """Distances near the float64 limit with a tiny sigma: D/(2 sigma^2) overflows.

    That must give -inf log-density, not a RuntimeWarning (an error under
    setup.cfg's filterwarnings) or NaN.
    """
    x = np.array([[1e153, 0.0]])
    mu = np.array([[-1e153, 0.0], [0.0, 0.0]])
    got = parzen_log_likelihood(x, mu, 1e-3)
    assert got.shape == (1,)
    assert not np.isnan(got).any()
    assert got[0] == -np.inf


# --------------------------------------------------------------------------
# sigma selection and the full protocol
# --------------------------------------------------------------------------

def test_select_sigma_equals_bruteforce_argmax(rng):
    samples = rng.random((40, 8))
    valid = rng.random((15, 8))
    best, means = select_sigma(valid, samples, batch_size=4)
    ref = np.array([brute_force(valid, samples, s).mean() for s in DEFAULT_SIGMAS])
    np.testing.assert_allclose(means, ref, rtol=1e-12)
    assert isinstance(means, np.ndarray) and means.shape == (10,)
    assert best == DEFAULT_SIGMAS[int(np.argmax(ref))]


def test_select_sigma_recovers_known_width():
    """Well-separated centres, valid = centre + N(0, t^2 I) noise.

    Only the nearest centre matters, so the mean LL is
    -t^2 d / (2 sigma^2) - d log sigma + const, maximised at sigma = t.
    With t equal to a grid value, that grid value must win.
    """
    r = np.random.default_rng(7)
    d, n_mu, t_idx = 20, 50, 4
    t = DEFAULT_SIGMAS[t_idx]
    samples = np.arange(n_mu)[:, None] * 100.0 + np.zeros((1, d))
    valid = samples[r.integers(0, n_mu, 400)] + r.normal(0, t, (400, d))
    best, means = select_sigma(valid, samples)
    assert best == t
    assert int(np.argmax(means)) == t_idx


def test_parzen_evaluate_protocol(rng, capsys):
    samples = rng.random((30, 6))
    valid = rng.random((10, 6))
    test = rng.random((17, 6))
    res = parzen_evaluate(samples, valid, test, batch_size=4, progress=False)
    assert isinstance(res, ParzenResult)
    best, means = select_sigma(valid, samples)
    assert res.sigma == best
    np.testing.assert_allclose(res.valid_means, means, rtol=1e-12)
    ref = brute_force(test, samples, best)
    assert isinstance(res.ll, np.ndarray) and res.ll.shape == (17,)
    np.testing.assert_allclose(res.ll, ref, rtol=1e-12)
    assert res.mean == pytest.approx(ref.mean(), rel=1e-12)
    assert res.std_err == pytest.approx(np.std(ref, ddof=0) / np.sqrt(17), rel=1e-12)
    np.testing.assert_array_equal(res.sigmas, DEFAULT_SIGMAS)
    assert "±" in str(res)
    assert capsys.readouterr().err == ""


def test_parzen_evaluate_progress_bar_on_stderr(rng, capsys):
    samples, valid, test = rng.random((5, 3)), rng.random((4, 3)), rng.random((6, 3))
    parzen_evaluate(samples, valid, test, sigmas=[0.1, 0.5], batch_size=2, progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Parzen" in captured.err


def test_parzen_evaluate_fixed_sigma_without_valid(rng):
    samples, test = rng.random((12, 4)), rng.random((5, 4))
    res = parzen_evaluate(samples, None, test, sigmas=0.3, progress=False)
    assert res.sigma == 0.3 and res.valid_means is None
    np.testing.assert_allclose(res.ll, brute_force(test, samples, 0.3), rtol=1e-12)
    with pytest.raises(ValueError, match="valid is None"):
        parzen_evaluate(samples, None, test, progress=False)


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------

GOOD = np.zeros((3, 4))


@pytest.mark.parametrize(
    "x, mu, sigma, match",
    [
        (np.zeros(4), GOOD, 0.1, "x must be a 2-D"),
        (GOOD, np.zeros((2, 3, 4)), 0.1, "mu must be a 2-D"),
        (GOOD, np.zeros((3, 5)), 0.1, "dimension mismatch"),
        (GOOD, np.zeros((0, 4)), 0.1, "mu is empty"),
        (np.zeros((0, 4)), GOOD, 0.1, "x is empty"),
        (GOOD, GOOD, 0.0, "sigma"),
        (GOOD, GOOD, -1.0, "sigma"),
        (GOOD, GOOD, float("nan"), "sigma"),
        (GOOD, GOOD, float("inf"), "sigma"),
        (GOOD, GOOD, 1e-300, "too extreme"),
    ],
)
def test_bad_inputs_raise(x, mu, sigma, match):
    with pytest.raises(ValueError, match=match):
        parzen_log_likelihood(x, mu, sigma)


def test_nonfinite_errors_name_the_argument():
    bad = GOOD.copy()
    bad[1, 2] = np.nan
    inf = GOOD.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="samples contains 1 non-finite"):
        parzen_evaluate(bad, GOOD, GOOD, progress=False)
    with pytest.raises(ValueError, match="valid contains"):
        parzen_evaluate(GOOD, inf, GOOD, progress=False)
    with pytest.raises(ValueError, match="test contains"):
        parzen_evaluate(GOOD, GOOD, bad, progress=False)
    with pytest.raises(ValueError, match="^x contains"):
        parzen_log_likelihood_grid(inf, GOOD, [0.1])
    with pytest.raises(ValueError, match="^mu contains"):
        parzen_log_likelihood_grid(GOOD, bad, [0.1])
    with pytest.raises(ValueError, match="valid contains"):
        select_sigma(bad, GOOD)


def test_other_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        parzen_log_likelihood(GOOD, GOOD, 0.1, batch_size=0)
    with pytest.raises(TypeError, match="batch_size"):
        parzen_log_likelihood(GOOD, GOOD, 0.1, batch_size=2.5)
    with pytest.raises(ValueError, match="single number"):
        parzen_log_likelihood(GOOD, GOOD, [0.1, 0.2])
    with pytest.raises(ValueError, match="empty"):
        select_sigma(GOOD, GOOD, sigmas=[])
    with pytest.raises(ValueError, match="sigma"):
        parzen_log_likelihood_grid(GOOD, GOOD, [0.1, -0.2])
    with pytest.raises(TypeError, match="real numeric"):
        parzen_log_likelihood(GOOD.astype(complex), GOOD, 0.1)
    with pytest.raises(ValueError, match="test must be a 2-D"):
        parzen_evaluate(GOOD, GOOD, GOOD[0], progress=False)


def test_integer_inputs_accepted(rng):
    x = rng.integers(0, 256, (4, 6)).astype(np.uint8)
    mu = rng.integers(0, 256, (5, 6)).astype(np.uint8)
    np.testing.assert_allclose(parzen_log_likelihood(x, mu, 20.0),
                               brute_force(x, mu, 20.0), rtol=1e-12)


# --------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------

BACKENDS = [
    pytest.param("cpu", id="numpy"),
    pytest.param(
        "gpu",
        id="cupy",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(not backend.gpu_available(),
                               reason="needs CuPy and a usable CUDA device"),
        ],
    ),
]


@pytest.mark.parametrize("device", BACKENDS)
def test_backends_agree_with_numpy_reference(device):
    r = np.random.default_rng(3)
    dev = backend.get_device(device)
    samples = r.random((40, 16)).astype(np.float32)
    valid = r.random((9, 16)).astype(np.float32)
    test = r.random((13, 16)).astype(np.float32)
    s_d, v_d, t_d = (dev.asarray(a) for a in (samples, valid, test))

    grid = parzen_log_likelihood_grid(t_d, s_d, SIGMAS, batch_size=5)
    assert backend.get_array_module(grid) is dev.xp
    for k, s in enumerate(SIGMAS):
        np.testing.assert_allclose(backend.to_numpy(grid[k]), brute_force(test, samples, s),
                                   rtol=1e-10, atol=1e-8)

    res = parzen_evaluate(s_d, v_d, t_d, batch_size=4, progress=False)
    assert isinstance(res.ll, np.ndarray)
    np.testing.assert_allclose(res.ll, brute_force(test, samples, res.sigma), rtol=1e-10)
    best, _ = select_sigma(valid, samples)
    assert res.sigma == best

    if dev.is_gpu:
        with pytest.raises(TypeError, match="same device"):
            parzen_log_likelihood(test, s_d, 0.1)
