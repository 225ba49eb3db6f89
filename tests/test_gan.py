"""Tests for scratchgan.gan: Algorithm 1, the paper's theory, and the plumbing.

* The gradients of whole steps (D step, G step, simultaneous step) against
  finite differences of the step's own reported loss, with noise and dropout
  masks held fixed by re-seeding the GAN before every evaluation. The
  optimisers have ``lr = 0``, so a step computes its gradients and leaves
  the parameters where they were: the check goes through the public
  ``d_step`` / ``g_step`` / ``simultaneous_step`` and nothing else.
* Proposition 1 (a trained D approaches p_data / (p_data + p_g)), Theorem 1
  (C(G) = −log 4 + 2·JSD, by numerical integration) and a 1-D GAN that
  converges.
* k D steps per G step, simultaneous vs alternating updates, reproducibility,
  StatsLog, WGAN clipping, noise priors.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from scipy import integrate, stats

from helpers import BACKENDS, assert_grads_ok, device_for, rng_for, to_host, to_xp
from scratchgan import losses
from scratchgan.gan import GAN, PRIORS, NoisePrior, NonFiniteLossError, StatsLog
from scratchgan.gradcheck import numerical_gradient, rel_error
from scratchgan.layers import Dropout, LeakyReLU, Linear, Maxout, Tanh, sigmoid
from scratchgan.network import Sequential
from scratchgan.optim import SGD, Adam, ExponentialDecay

F64 = np.float64
NOISE_DIM, DATA_DIM = 3, 2


# ---------------------------------------------------------------------------
# Small networks
# ---------------------------------------------------------------------------
def small_G(dtype=F64):
    """``z (m, 3) → x (m, 2)``."""
    return Sequential([
        Linear(NOISE_DIM, 5, "glorot", rng=1, bias=0.1, dtype=dtype), Tanh(),
        Linear(5, DATA_DIM, "glorot", rng=2, dtype=dtype),
    ])


def small_D(dropout=True, dtype=F64):
    """``x (m, 2) → logit (m, 1)``: maxout and dropout, as the paper's D."""
    layers = [Maxout(DATA_DIM, 4, 2, "glorot", rng=3, dtype=dtype)]
    layers += [Dropout(0.3)] if dropout else []
    layers += [Linear(4, 6, "glorot", rng=4, dtype=dtype), LeakyReLU(0.2)]
    layers += [Dropout(0.2)] if dropout else []
    layers += [Linear(6, 1, "glorot", rng=5, dtype=dtype)]
    return Sequential(layers)


def host_batch(m, seed, dim=DATA_DIM):
    return np.random.default_rng(seed).normal(1.0, 0.5, (m, dim))


def snapshot(model):
    return {k: to_host(v).copy() for k, v in model.params.items()}


def grads_of(model):
    return {k: to_host(v).copy() for k, v in model.grads.items()}


# ---------------------------------------------------------------------------
# Whole-step gradients against finite differences
# ---------------------------------------------------------------------------
SEED = 7  # the GAN's seed for every evaluation: same z, same dropout masks
M = 6


def frozen_gan(xp, loss, simultaneous=False):
    """Float64 GAN whose optimisers have ``lr = 0``: a step fills the gradients
    and leaves every parameter exactly where it was."""
    G, D = small_G(), small_D()
    gan = GAN(G, D, SGD(D, lr=0.0), SGD(G, lr=0.0), NoisePrior(NOISE_DIM, "normal"),
              loss=loss, simultaneous=simultaneous, device=device_for(xp))
    gan.d_opt.clip = None  # WGAN: clipping would move θd even at lr = 0
    return gan


def fd_errors(gan, step, stat, model):
    """Relative errors between ``model.grads`` after ``step()`` and centred
    differences of ``step()[stat]`` w.r.t. every parameter of ``model``.

    ``gan.seed(SEED)`` before every call fixes the noise and the dropout masks.
    """
    def value():
        gan.seed(SEED)
        return float(step()[stat])

    before = snapshot(model)
    value()
    analytic = grads_of(model)
    numeric = {k: numerical_gradient(value, p) for k, p in model.params.items()}
    # Each parameter's largest error over the scale of the *whole* gradient: a
    # parameter whose gradient is exactly zero (the last bias under the
    # Wasserstein loss, whose real and fake means cancel) would otherwise be
    # judged by finite-difference noise (~1e-10) over a 1e-8 floor.
    scale = max(float(np.abs(analytic[k]).max() + np.abs(numeric[k]).max()) for k in numeric)
    errors = {k: float(np.abs(analytic[k] - numeric[k]).max()) / max(1e-8, scale) for k in numeric}
    for k, p in snapshot(model).items():  # lr = 0: nothing moved
        np.testing.assert_array_equal(p, before[k])
    assert max(np.abs(g).max() for g in analytic.values()) > 1e-3  # a real signal
    return errors


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("loss", losses.NAMES)
def test_d_step_gradient_matches_finite_differences(xp, loss):
    gan = frozen_gan(xp, loss)
    x = to_xp(xp, host_batch(M, 0))
    g_grads = grads_of(gan.G)
    assert_grads_ok(fd_errors(gan, lambda: gan.d_step(x), "d_loss", gan.D))
    # line 5 updates θd only: G's gradients are untouched by a D step
    for k, g in grads_of(gan.G).items():
        np.testing.assert_array_equal(g, g_grads[k])


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("loss", losses.NAMES)
def test_g_step_gradient_matches_finite_differences(xp, loss):
    gan = frozen_gan(xp, loss)
    gan.seed(0)
    gan.d_step(to_xp(xp, host_batch(M, 0)))  # give D non-trivial gradients to preserve
    d_grads = grads_of(gan.D)
    assert_grads_ok(fd_errors(gan, lambda: gan.g_step(M), "g_loss", gan.G))
    # the gradient went *through* D (param_grads=False): D's gradients untouched
    for k, g in grads_of(gan.D).items():
        np.testing.assert_array_equal(g, d_grads[k])


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("loss", ["minimax", "non-saturating"])
def test_g_step_value_is_lines_7_and_8(xp, loss):
    """The value g_step reports (and differentiates) is L_G of D in training
    mode (dropout on) on G(z) for fresh z ~ p_g(z) from the GAN's generator."""
    gan = frozen_gan(xp, loss)
    gan.seed(SEED)
    got = float(gan.g_step(M)["g_loss"])
    gan.seed(SEED)
    z = gan.sample_noise(M)
    logits = gan.D.forward(gan.G.forward(z, train=True), train=True)
    assert got == pytest.approx(float(losses.get(loss).g_loss(logits)[0]), rel=1e-12)
    no_dropout = gan.D.forward(gan.G.forward(z, train=True), train=False)
    assert got != pytest.approx(float(losses.get(loss).g_loss(no_dropout)[0]), rel=1e-6)


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("loss", losses.NAMES)
def test_simultaneous_step_gradients_match_finite_differences(xp, loss):
    gan = frozen_gan(xp, loss, simultaneous=True)
    x = to_xp(xp, host_batch(M, 1))
    step = lambda: gan.simultaneous_step(x)  # noqa: E731
    assert_grads_ok({f"D:{k}": v for k, v in fd_errors(gan, step, "d_loss", gan.D).items()})
    assert_grads_ok({f"G:{k}": v for k, v in fd_errors(gan, step, "g_loss", gan.G).items()})


# ---------------------------------------------------------------------------
# k, simultaneous vs alternating
# ---------------------------------------------------------------------------
class CountingSampler:
    """``m -> (m, 2)`` data on ``xp``'s device, drawn on the host; counts calls."""

    def __init__(self, xp, seed=0, nan_at=None):
        self.xp, self.rng, self.calls, self.nan_at = xp, np.random.default_rng(seed), 0, nan_at

    def __call__(self, m):
        x = self.rng.normal(1.0, 0.5, (m, DATA_DIM))
        if self.calls == self.nan_at:
            x[0, 0] = np.nan
        self.calls += 1
        return to_xp(self.xp, x)


def spy_noise(gan, monkeypatch):
    """Record every noise batch the GAN draws (host copies)."""
    drawn, original = [], gan.sample_noise

    def sample_noise(m):
        z = original(m)
        drawn.append(to_host(z).copy())
        return z

    monkeypatch.setattr(gan, "sample_noise", sample_noise)
    return drawn


def sgd_gan(xp, *, k=1, simultaneous=False, lr=0.1, loss="non-saturating", dropout=False):
    G, D = small_G(), small_D(dropout=dropout)
    return GAN(G, D, SGD(D, lr=lr), SGD(G, lr=lr), NoisePrior(NOISE_DIM, "normal"), loss=loss,
               k=k, simultaneous=simultaneous, seed=3, device=device_for(xp))


@pytest.mark.parametrize("xp", BACKENDS)
def test_k_discriminator_steps_per_generator_step(xp, monkeypatch):
    gan = sgd_gan(xp, k=3)
    sampler, noise = CountingSampler(xp), spy_noise(gan, monkeypatch)
    for _ in range(10):
        gan.iteration(sampler, 8)
    assert gan.d_opt.t == 30 and gan.g_opt.t == 10 and gan.iterations == 10
    assert sampler.calls == 30
    assert len(noise) == 40  # fresh z for each of the 30 D steps and 10 G steps


@pytest.mark.parametrize("xp", BACKENDS)
def test_simultaneous_uses_one_batch_per_iteration(xp, monkeypatch):
    gan = sgd_gan(xp, simultaneous=True)
    sampler, noise = CountingSampler(xp), spy_noise(gan, monkeypatch)
    for _ in range(5):
        out = gan.iteration(sampler, 8)
    assert sampler.calls == 5 and len(noise) == 5
    assert gan.d_opt.t == 5 and gan.g_opt.t == 5 and gan.iterations == 5
    assert {"d_loss", "g_loss", "d_real", "d_fake", "d_grad_norm", "g_grad_norm"} <= set(out)


def test_simultaneous_with_k_above_one_raises():
    G, D = small_G(), small_D()
    with pytest.raises(ValueError, match="k must be 1"):
        GAN(G, D, SGD(D), SGD(G), NOISE_DIM, k=2, simultaneous=True)
    with pytest.raises(ValueError, match=">= 1"):
        GAN(G, D, SGD(D), SGD(G), NOISE_DIM, k=0)


def reference_g_grads(G_state, D_state, z, loss):
    """∂L_G/∂θg at the given parameters and noise, on fresh host copies."""
    G, D = small_G(), small_D(dropout=False)
    G.load_state_dict(G_state)
    D.load_state_dict(D_state)
    _, d_logits = losses.get(loss).g_loss(D.forward(G.forward(z)))
    G.backward(D.backward(d_logits, param_grads=False), need_dx=False)
    return grads_of(G)


def reference_d_grads(G_state, D_state, x, z, loss):
    G, D = small_G(), small_D(dropout=False)
    G.load_state_dict(G_state)
    D.load_state_dict(D_state)
    _, dr, df = losses.get(loss).d_loss(D.forward(x), D.forward(G.forward(z)))
    D.forward(x)
    D.backward(dr, need_dx=False)
    grads = grads_of(D)
    D.forward(G.forward(z))
    D.backward(df, need_dx=False)
    return {k: grads[k] + g for k, g in grads_of(D).items()}


def sgd_moved(before, grads, lr):
    return {k: before[k] - lr * grads[k] for k in before}


def assert_params(model, want):
    for k, p in snapshot(model).items():
        np.testing.assert_allclose(p, want[k], rtol=1e-12, atol=1e-14, err_msg=k)


@pytest.mark.parametrize("xp", BACKENDS)
def test_simultaneous_updates_both_from_the_same_parameters(xp, monkeypatch):
    lr, loss = 0.5, "non-saturating"
    gan = sgd_gan(xp, simultaneous=True, lr=lr, loss=loss)
    x_host = host_batch(8, 11)
    noise = spy_noise(gan, monkeypatch)
    G0, D0 = snapshot(gan.G), snapshot(gan.D)
    gan.iteration(lambda m: to_xp(xp, x_host), 8)
    (z,) = noise
    D1 = snapshot(gan.D)
    # D from G0, G through D0 (D's *pre*-update parameters)
    assert_params(gan.D, sgd_moved(D0, reference_d_grads(G0, D0, x_host, z, loss), lr))
    pre = reference_g_grads(G0, D0, z, loss)
    post = reference_g_grads(G0, D1, z, loss)
    assert max(rel_error(pre[k], post[k]) for k in pre) > 1e-3  # the two really differ
    assert_params(gan.G, sgd_moved(G0, pre, lr))


@pytest.mark.parametrize("xp", BACKENDS)
def test_alternating_g_step_sees_the_updated_discriminator(xp, monkeypatch):
    lr, loss = 0.5, "non-saturating"
    gan = sgd_gan(xp, lr=lr, loss=loss)
    x_host = host_batch(8, 11)
    noise = spy_noise(gan, monkeypatch)
    G0, D0 = snapshot(gan.G), snapshot(gan.D)
    gan.iteration(lambda m: to_xp(xp, x_host), 8)
    z_d, z_g = noise  # line 3 and line 7 draw separately
    D1 = snapshot(gan.D)
    assert_params(gan.D, sgd_moved(D0, reference_d_grads(G0, D0, x_host, z_d, loss), lr))
    pre = reference_g_grads(G0, D0, z_g, loss)
    post = reference_g_grads(G0, D1, z_g, loss)
    assert max(rel_error(pre[k], post[k]) for k in pre) > 1e-3
    assert_params(gan.G, sgd_moved(G0, post, lr))


@pytest.mark.parametrize("xp", BACKENDS)
def test_sampler_without_arguments(xp, monkeypatch):
    """``sample_data`` may take no argument; ``m`` then sets only the G batch."""
    gan = sgd_gan(xp)
    noise = spy_noise(gan, monkeypatch)
    x = to_xp(xp, host_batch(8, 0))
    gan.iteration(lambda: x)          # G batch = the real batch's size
    gan.iteration(lambda: x, 5)       # G batch = 5
    assert [z.shape[0] for z in noise] == [8, 8, 8, 5]
    calls = []

    def broken(m):  # a TypeError *inside* the sampler propagates, after one call
        calls.append(m)
        return None + m

    with pytest.raises(TypeError, match="NoneType"):
        gan.iteration(broken, 8)
    assert calls == [8]


# ---------------------------------------------------------------------------
# Reproducibility
# ---------------------------------------------------------------------------
def run_few(xp, seed, n=4):
    G, D = small_G(np.float32), small_D(dtype=np.float32)  # with dropout
    gan = GAN(G, D, Adam(D, lr=1e-3), SGD(G, lr=0.05, momentum=0.5), NOISE_DIM,
              k=2, seed=seed, device=device_for(xp))
    sampler, log = CountingSampler(xp, seed=42), StatsLog()
    for t in range(n):
        log.append(t, gan.iteration(sampler, 16))
    return log.flush(), {**snapshot(G), **{f"D/{k}": v for k, v in snapshot(D).items()}}


@pytest.mark.parametrize("xp", BACKENDS)
def test_same_seed_same_numbers_different_seed_different_numbers(xp):
    rows_a, params_a = run_few(xp, 123)
    rows_b, params_b = run_few(xp, 123)
    rows_c, params_c = run_few(xp, 124)
    assert rows_a == rows_b
    for k in params_a:
        np.testing.assert_array_equal(params_a[k], params_b[k])
    assert [r["g_loss"] for r in rows_a] != [r["g_loss"] for r in rows_c]
    assert any(not np.array_equal(params_a[k], params_c[k]) for k in params_a)


@pytest.mark.parametrize("xp", BACKENDS)
def test_seed_tuple_and_reseeding(xp):
    gan = sgd_gan(xp)
    gan.seed((5, 1))
    a = to_host(gan.sample_noise(4))
    gan.seed((5, 1))
    np.testing.assert_array_equal(to_host(gan.sample_noise(4)), a)
    gan.seed((5, 2))
    assert not np.array_equal(to_host(gan.sample_noise(4)), a)


# ---------------------------------------------------------------------------
# StatsLog
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("xp", BACKENDS)
def test_statslog_flush_returns_host_floats(xp):
    gan = sgd_gan(xp)
    sampler, log, device_rows = CountingSampler(xp), StatsLog(), []
    for t in range(4):
        out = gan.iteration(sampler, 8)
        for v in out.values():
            assert type(v).__module__.split(".")[0] == xp.__name__  # still on the device
        device_rows.append({k: float(to_host(v)) for k, v in out.items()})
        log.append(t, out)
    assert len(log) == 4
    rows = log.flush()
    assert len(log) == 0 and log.flush() == []
    assert [r["step"] for r in rows] == [0, 1, 2, 3]
    for row, want in zip(rows, device_rows):
        assert set(row) == {"step", "d_loss", "g_loss", "d_real", "d_fake",
                            "d_grad_norm", "g_grad_norm"}
        for k, v in want.items():
            assert type(row[k]) is float and row[k] == pytest.approx(v, rel=1e-7)


@pytest.mark.parametrize("xp", BACKENDS)
def test_nan_in_data_names_the_first_bad_iteration(xp):
    gan = sgd_gan(xp)
    sampler, log = CountingSampler(xp, nan_at=3), StatsLog()  # the 4th batch, step 3
    for t in range(6):
        log.append(t, gan.iteration(sampler, 8))
    with pytest.raises(NonFiniteLossError) as info:
        log.flush()
    err = info.value
    assert (err.step, err.which) == (3, "D") and math.isnan(err.value)
    assert "iteration 3" in str(err) and "D loss" in str(err)
    assert isinstance(err, FloatingPointError)


@pytest.mark.parametrize("xp", BACKENDS)
def test_statslog_names_the_generator_loss(xp):
    log = StatsLog()
    row = lambda d, g: {"d_loss": xp.asarray(d), "g_loss": xp.asarray(g)}  # noqa: E731
    log.append(10, row(1.0, 2.0))
    log.append(11, row(1.0, np.inf))
    log.append(12, row(np.nan, np.nan))
    with pytest.raises(NonFiniteLossError) as info:
        log.flush()
    assert (info.value.step, info.value.which, info.value.value) == (11, "G", np.inf)
    assert "G loss" in str(info.value)


# ---------------------------------------------------------------------------
# WGAN weight clipping
# ---------------------------------------------------------------------------
def test_gan_takes_clip_from_the_loss():
    for loss, want in [("wasserstein", 0.01), ("non-saturating", None), ("hinge", None)]:
        G, D = small_G(), small_D()
        gan = GAN(G, D, SGD(D), SGD(G), NOISE_DIM, loss=loss)
        assert gan.d_opt.clip == want and gan.g_opt.clip is None
    G, D = small_G(), small_D()  # an explicit clip is kept
    gan = GAN(G, D, SGD(D, clip=0.05), SGD(G), NOISE_DIM, loss=losses.Wasserstein(clip=0.02))
    assert gan.d_opt.clip == 0.05


@pytest.mark.parametrize("xp", BACKENDS)
def test_wgan_critic_clipped_after_every_step(xp, monkeypatch):
    gan = sgd_gan(xp, k=5, loss="wgan", lr=0.05, dropout=True)
    assert max(np.abs(p).max() for p in snapshot(gan.D).values()) > 0.1  # starts unclipped
    checks, step = [], gan.d_opt.step

    def checked_step():
        step()
        checks.append(max(np.abs(p).max() for p in snapshot(gan.D).values()))

    monkeypatch.setattr(gan.d_opt, "step", checked_step)
    sampler = CountingSampler(xp)
    for _ in range(3):
        gan.iteration(sampler, 8)
    assert len(checks) == 15
    assert max(checks) <= 0.01
    assert max(np.abs(p).max() for p in snapshot(gan.G).values()) > 0.1  # G never clipped


# ---------------------------------------------------------------------------
# Noise priors
# ---------------------------------------------------------------------------
SQRT3 = math.sqrt(3.0)


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("kind, dist, lo, hi, var", [
    ("uniform-sqrt3", stats.uniform(-SQRT3, 2 * SQRT3), -SQRT3, SQRT3, 1.0),
    ("uniform", stats.uniform(-1.0, 2.0), -1.0, 1.0, 1.0 / 3.0),
    ("normal", stats.norm(), -np.inf, np.inf, 1.0),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_prior_distribution(xp, kind, dist, lo, hi, var, dtype):
    prior = NoisePrior(4, kind)
    z = prior.sample(20000, rng_for(xp, 0), dtype)
    assert type(z).__module__.split(".")[0] == xp.__name__
    assert z.shape == (20000, 4) and z.dtype == dtype
    z = to_host(z).astype(np.float64)
    assert z.min() >= lo and z.max() <= hi + 1e-6  # (float32 rounding at the top)
    assert abs(z.mean()) < 0.02 and abs(z.var() - var) < 0.03 * var
    assert stats.kstest(z.ravel(), dist.cdf).pvalue > 1e-3
    if kind == "normal":
        assert np.abs(z).max() > 3.0  # tails no uniform prior has


def test_noise_prior_errors():
    with pytest.raises(ValueError) as info:
        NoisePrior(3, "gaussian")
    for kind in PRIORS:
        assert kind in str(info.value)
    with pytest.raises(ValueError, match=">= 1"):
        NoisePrior(0)
    G, D = small_G(), small_D()
    gan = GAN(G, D, SGD(D), SGD(G), NOISE_DIM)
    assert gan.noise.kind == "uniform-sqrt3" and gan.noise.dim == NOISE_DIM


# ---------------------------------------------------------------------------
# Theorem 1: C(G) = −log 4 + 2·JSD(p_data ‖ p_g), by numerical integration
# ---------------------------------------------------------------------------
def gaussian(mu, sd):
    return lambda x: math.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def uniform(a, b):
    return lambda x: 1.0 / (b - a) if a <= x <= b else 0.0


QUAD = dict(epsabs=1e-13, epsrel=1e-12, limit=500)


def _quad(f, lo, hi, breaks):
    """∫ f over [lo, hi], split at the points where f is not smooth."""
    edges = [lo, *sorted(b for b in breaks if lo < b < hi), hi]
    return sum(integrate.quad(f, a, b, **QUAD)[0] for a, b in zip(edges[:-1], edges[1:]))


def C_of_G(p_data, p_g, lo, hi, breaks=()):
    """max_D V(G, D) = E_pdata[log D*(x)] + E_pg[log(1 − D*(x))],
    D* = p_data / (p_data + p_g) (eq. 2 of the paper)."""
    def integrand(x):
        pd, pg = p_data(x), p_g(x)
        if pd + pg == 0.0:
            return 0.0
        d_star = pd / (pd + pg)
        one_minus_d_star = pg / (pd + pg)  # = 1 − D*, without rounding 1 − (1 − ε) to 0
        out = pd * math.log(d_star) if pd > 0 else 0.0
        return out + (pg * math.log(one_minus_d_star) if pg > 0 else 0.0)
    return _quad(integrand, lo, hi, breaks)


def JSD(p, q, lo, hi, breaks=()):
    """½ KL(p ‖ M) + ½ KL(q ‖ M), M = (p + q)/2, from the definition."""
    def kl_to_mixture(a, b):
        def integrand(x):
            pa, m = a(x), 0.5 * (a(x) + b(x))
            return pa * math.log(pa / m) if pa > 0 else 0.0
        return _quad(integrand, lo, hi, breaks)
    return 0.5 * kl_to_mixture(p, q) + 0.5 * kl_to_mixture(q, p)


THEOREM1_TOL = 1e-9
LOG4 = math.log(4.0)


@pytest.mark.parametrize("p_data, p_g, lo, hi, breaks", [
    (gaussian(0, 1), gaussian(1.5, 0.7), -40, 40, (0.0, 1.5)),
    (gaussian(0, 1), uniform(-1, 2), -40, 40, (-1.0, 2.0)),
    (uniform(0, 1), gaussian(3, 2), -80, 80, (0.0, 1.0, 3.0)),
], ids=["gauss-gauss", "gauss-uniform", "uniform-gauss"])
def test_theorem_1_C_equals_minus_log4_plus_2_JSD(p_data, p_g, lo, hi, breaks):
    c, jsd = C_of_G(p_data, p_g, lo, hi, breaks), JSD(p_data, p_g, lo, hi, breaks)
    print(f"C(G) = {c:.12f}, -log 4 + 2 JSD = {-LOG4 + 2 * jsd:.12f}, "
          f"|diff| = {abs(c + LOG4 - 2 * jsd):.1e} (tolerance {THEOREM1_TOL:g})")
    assert 0.01 < jsd < math.log(2)
    assert c > -LOG4 + 0.02  # p_g != p_data: strictly above the global minimum
    assert abs(c - (-LOG4 + 2 * jsd)) < THEOREM1_TOL


@pytest.mark.parametrize("p, lo, hi, breaks", [
    (gaussian(0.3, 1.2), -50, 50, (0.3,)),
    (uniform(-1, 2), -1, 2, ()),
], ids=["gauss", "uniform"])
def test_theorem_1_minimum_is_minus_log4_at_p_g_equal_p_data(p, lo, hi, breaks):
    assert abs(C_of_G(p, p, lo, hi, breaks) - (-LOG4)) < THEOREM1_TOL
    assert abs(JSD(p, p, lo, hi, breaks)) < THEOREM1_TOL


def test_theorem_1_disjoint_supports_give_jsd_log2():
    p, q = uniform(0, 1), uniform(2, 3)
    assert abs(JSD(p, q, 0, 3, (1, 2)) - math.log(2)) < THEOREM1_TOL
    assert abs(C_of_G(p, q, 0, 3, (1, 2))) < THEOREM1_TOL  # −log 4 + 2 log 2 = 0


def test_proposition_1_D_star_maximises_V():
    """V(G, D) = ∫ p_data log D + p_g log(1 − D) is largest at D = D*."""
    p_data, p_g = gaussian(0, 1), gaussian(1.5, 0.7)

    def V(D):
        f = lambda x: p_data(x) * math.log(D(x)) + p_g(x) * math.log1p(-D(x))  # noqa: E731
        return _quad(f, -4, 5, (0.0, 1.5))  # (any interval: D* is best pointwise)

    d_star = lambda x: p_data(x) / (p_data(x) + p_g(x))  # noqa: E731
    best = V(d_star)
    for eps in (0.3, -0.3, 0.02):
        # shift D* in logit space by eps·(bump): still a valid D in (0, 1)
        D = lambda x, e=eps: 1 / (1 + (1 / d_star(x) - 1) * math.exp(-e * math.exp(-x * x)))  # noqa: E731
        assert V(D) < best


# ---------------------------------------------------------------------------
# Proposition 1 by training: D → p_data / (p_data + p_g)
# ---------------------------------------------------------------------------
PROP1_TOL = 0.05

#: SMALL_MATMULS. The two training tests keep every matrix product at or below
#: m·n·k = 262144, where OpenBLAS stays single-threaded. Above it OpenBLAS
#: starts a thread per core, and on a shared 2-core machine those threads
#: spin against other processes: the same 4000 iterations took 22 s of CPU
#: instead of 2.5 s. (Set OPENBLAS_NUM_THREADS=1 to lift this limit.)


@pytest.mark.parametrize("xp", BACKENDS)
def test_proposition_1_trained_discriminator_approaches_D_star(xp):
    """G fixed as x = μ_g + σ_g·z with z ~ N(0, 1), so p_g = N(μ_g, σ_g²) exactly;
    D alone is trained with the minimax D loss through ``d_step`` on fresh
    samples of p_data = N(0, 1) every step."""
    mu_g, s_g, n_steps, m = 1.0, 0.6, 6000, 128  # m: see SMALL_MATMULS
    cpu0, wall0 = time.process_time(), time.perf_counter()
    G = Sequential([Linear(1, 1, "zeros", bias=mu_g)])
    G.layers[0].params["W"][...] = s_g
    D = Sequential([Linear(1, 32, "glorot", rng=4), Tanh(),
                    Linear(32, 32, "glorot", rng=5), Tanh(), Linear(32, 1, "glorot", rng=6)])
    d_opt = Adam(D, lr=ExponentialDecay(0.01, decay=30 ** (1 / n_steps), min_lr=0), betas=(0.9, 0.999))
    gan = GAN(G, D, d_opt, SGD(G, lr=0), NoisePrior(1, "normal"), loss="minimax",
              seed=0, device=device_for(xp))
    data = np.random.default_rng(100)
    for _ in range(n_steps):
        gan.d_step(to_xp(xp, data.standard_normal((m, 1)).astype(np.float32)))
    assert gan.G.layers[0].params["W"].item() == np.float32(s_g)  # G never moved

    x = np.linspace(-3, 3, 601)
    p_data, p_g = stats.norm.pdf(x), stats.norm.pdf(x, mu_g, s_g)
    d_star = p_data / (p_data + p_g)
    bulk = p_data + p_g > 0.1  # about [-1.7, 2.3]
    logits = D.forward(to_xp(xp, x[:, None].astype(np.float32)), train=False)
    d_x = to_host(sigmoid(logits))[:, 0].astype(np.float64)
    err = np.abs(d_x - d_star)[bulk].max()
    print(f"Proposition 1: max |D(x) - D*(x)| = {err:.4f} on [{x[bulk].min():.2f}, "
          f"{x[bulk].max():.2f}] (tolerance {PROP1_TOL}); CPU {time.process_time() - cpu0:.1f} s, "
          f"wall {time.perf_counter() - wall0:.1f} s")
    assert err < PROP1_TOL
    # D* really varies over the bulk (0.3 .. 1.0): a constant D would fail
    assert d_star[bulk].max() - d_star[bulk].min() > 0.6


# ---------------------------------------------------------------------------
# A full 1-D GAN converges
# ---------------------------------------------------------------------------
@pytest.mark.slow
def test_one_dimensional_gan_converges():
    """Target N(2, 0.5²). At the end D(x) ≈ 1/2 across the data's bulk and
    G's samples have the target's mean and standard deviation.

    The learning rate decays by 3× over the run: at a constant rate the two
    players keep orbiting the equilibrium and the final std depends on where
    the orbit happens to be (0.39–0.65 over seeds); annealed, the end state
    is the equilibrium (7 of 8 seeds tried end within the tolerances; the
    eighth stays too wide, std 0.73). The batch is 32: see SMALL_MATMULS."""
    mu, sd, n_iter, m = 2.0, 0.5, 4000, 32
    cpu0, wall0 = time.process_time(), time.perf_counter()
    G = Sequential([Linear(1, 32, "glorot", rng=6), Tanh(), Linear(32, 32, "glorot", rng=7), Tanh(),
                    Linear(32, 1, "glorot", rng=8)])
    D = Sequential([Linear(1, 64, "glorot", rng=9), LeakyReLU(0.2), Linear(64, 64, "glorot", rng=10),
                    LeakyReLU(0.2), Linear(64, 1, "glorot", rng=11)])
    lr = lambda: ExponentialDecay(0.05, decay=3 ** (1 / n_iter), min_lr=0)  # noqa: E731
    gan = GAN(G, D, SGD(D, lr=lr(), momentum=0.5), SGD(G, lr=lr(), momentum=0.5),
              NoisePrior(1, "uniform"), loss="non-saturating", seed=5, device="cpu")
    data = np.random.default_rng(105)
    sample = lambda n: (mu + sd * data.standard_normal((n, 1))).astype(np.float32)  # noqa: E731
    log = StatsLog()
    for t in range(n_iter):
        stats_t = gan.iteration(sample, m)
        if t % 500 == 0:
            log.append(t, stats_t)
    log.flush()  # finite throughout (raises otherwise)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0

    x = gan.sample(100_000).astype(np.float64)
    grid = np.linspace(mu - 2 * sd, mu + 2 * sd, 201, dtype=np.float32)[:, None]
    d_dev = np.abs(sigmoid(D.forward(grid, train=False)) - 0.5).max()
    print(f"1-D GAN: mean {x.mean():.3f} (target {mu}), std {x.std():.3f} (target {sd}), "
          f"max |D(x) - 1/2| on mu±2sd = {d_dev:.4f}; {n_iter} iterations, "
          f"CPU {cpu:.1f} s, wall {wall:.1f} s")
    assert abs(x.mean() - mu) < 0.1
    assert abs(x.std() - sd) < 0.1
    assert d_dev < 0.05
    assert cpu < 30.0


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("simultaneous", [False, True])
def test_a_float64_batch_trains_a_float32_model_in_float32(xp, simultaneous):
    """A batch in another dtype is cast to the networks' dtype: the result is the
    one a float32 batch gives, and nothing is promoted to float64."""
    results = []
    for batch_dtype in (np.float32, np.float64):
        G, D = small_G(dtype=np.float32), small_D(dtype=np.float32)
        gan = GAN(G, D, SGD(D, lr=0.1), SGD(G, lr=0.1), NoisePrior(NOISE_DIM, "normal"),
                  simultaneous=simultaneous, seed=3, device=device_for(xp))
        x = to_xp(xp, host_batch(8, 0).astype(np.float32).astype(batch_dtype))
        gan.iteration(lambda m: x, 8)
        params = {**{"G" + k: v for k, v in G.params.items()}, **{"D" + k: v for k, v in D.params.items()}}
        assert all(p.dtype == np.float32 for p in params.values())
        results.append({k: to_host(v) for k, v in params.items()})
    for k in results[0]:
        np.testing.assert_array_equal(results[0][k], results[1][k])
