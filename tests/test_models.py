"""Tests for scratchgan.models: the paper's MNIST G and D (PAPER.md §0–§3).

Every number checked here is from the authors' ``mnist.yaml`` as summarised
in PAPER.md; a test fails when the architecture, the initialisation or the
schedule of the ``paper`` preset drifts from it.
"""

import math

import numpy as np
import pytest

from scratchgan import losses
from scratchgan.layers import Dropout, Linear, Maxout, ReLU, Sigmoid
from scratchgan.models import (
    PAPER_DEVIATIONS,
    PRESETS,
    build_discriminator,
    build_generator,
    pixel_logit_bias,
)
from scratchgan.optim import SGD, ExponentialDecay, LinearMomentum
from scratchgan.train import TrainConfig, build_gan

PAPER = PRESETS["paper"]
LOGIT_1E7 = math.log(1e-7) - math.log1p(-1e-7)  # ≈ −16.118: an always-black pixel


@pytest.fixture(scope="module")
def paper_G():
    return build_generator(784, **PAPER, rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def paper_D():
    return build_discriminator(784, **PAPER, rng=np.random.default_rng(1))


def n_params(net):
    return sum(int(v.size) for v in net.params.values())


# --------------------------------------------------------------------------
# architecture (PAPER.md §1, §2, §3.3)
# --------------------------------------------------------------------------

def test_paper_generator_layers(paper_G):
    kinds = [type(layer) for layer in paper_G.layers]
    assert kinds == [Linear, ReLU, Linear, ReLU, Linear, Sigmoid]
    dims = [(l.n_in, l.n_out) for l in paper_G.layers if isinstance(l, Linear)]
    assert dims == [(100, 1200), (1200, 1200), (1200, 784)]
    assert paper_G.output_features(100) == 784
    # no dropout anywhere in G (PAPER.md §1)
    assert not any(isinstance(l, Dropout) for l in paper_G.layers)


def test_paper_discriminator_layers(paper_D):
    kinds = [type(layer) for layer in paper_D.layers]
    assert kinds == [Dropout, Maxout, Dropout, Maxout, Dropout, Linear]
    assert [l.p for l in paper_D.layers if isinstance(l, Dropout)] == [0.2, 0.5, 0.5]
    maxouts = [(l.n_in, l.n_units, l.n_pieces) for l in paper_D.layers if isinstance(l, Maxout)]
    assert maxouts == [(784, 240, 5), (240, 240, 5)]
    last = paper_D.layers[-1]
    assert (last.n_in, last.n_out) == (240, 1)
    assert paper_D.output_features(784) == 1
    # the weight shapes pylearn2 used: (in_dim, num_units * num_pieces)
    assert paper_D.params["1.W"].shape == (784, 1200)
    assert paper_D.params["3.W"].shape == (240, 1200)


def test_parameter_counts(paper_G, paper_D):
    g = (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784)
    d = (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 * 1 + 1)
    assert g == 2_503_984 and d == 1_231_441
    assert n_params(paper_G) == g
    assert n_params(paper_D) == d


def test_float32_by_default(paper_G, paper_D):
    for v in list(paper_G.params.values()) + list(paper_D.params.values()):
        assert v.dtype == np.float32


# --------------------------------------------------------------------------
# initialisation (PAPER.md §1–2)
# --------------------------------------------------------------------------

def _check_uniform(W, irange):
    """W ~ U(−irange, irange): inside the range, filling it, variance irange²/3."""
    W = np.asarray(W, dtype=np.float64)
    assert np.abs(W).max() <= irange
    assert np.abs(W).max() > 0.98 * irange  # not a narrower range
    assert abs(W.mean()) < 0.05 * irange
    assert W.std() == pytest.approx(irange / math.sqrt(3), rel=0.05)


def test_generator_init(paper_G):
    p = paper_G.params
    for key in ("0.W", "2.W", "4.W"):
        _check_uniform(p[key], 0.05)
    # hidden biases 0
    assert not np.any(p["0.b"]) and not np.any(p["2.b"])


def test_discriminator_init(paper_D):
    p = paper_D.params
    for key in ("1.W", "3.W", "5.W"):
        _check_uniform(p[key], 0.005)
    for key in ("1.b", "3.b", "5.b"):
        assert not np.any(p[key]), key


def test_init_is_seeded():
    a = build_generator(784, **PRESETS["small"], rng=3).params["0.W"]
    b = build_generator(784, **PRESETS["small"], rng=3).params["0.W"]
    c = build_generator(784, **PRESETS["small"], rng=4).params["0.W"]
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# --------------------------------------------------------------------------
# output bias = logit of the clipped per-pixel mean (PAPER.md §1)
# --------------------------------------------------------------------------

def _marginal_data(rng, n=200):
    x = rng.random((n, 784)).astype(np.float32)
    x[:, 0] = 0.0            # always black
    x[:, 1] = 1.0            # always white
    x[:, 2] = 0.25           # constant grey
    x[: n // 2, 3] = 1.0     # half white, half black -> mean 0.5
    x[n // 2:, 3] = 0.0
    return x


def test_pixel_logit_bias_values():
    x = _marginal_data(np.random.default_rng(0))
    b = pixel_logit_bias(x)
    assert b.shape == (784,)
    assert b[0] == pytest.approx(LOGIT_1E7, abs=1e-6)
    assert b[0] == pytest.approx(-16.118, abs=1e-3)
    assert b[1] == pytest.approx(-LOGIT_1E7, abs=1e-6)
    assert b[2] == pytest.approx(math.log(0.25 / 0.75), abs=1e-9)
    assert b[3] == pytest.approx(0.0, abs=1e-12)
    mean = x.astype(np.float64).mean(axis=0)[4:]
    np.testing.assert_allclose(1 / (1 + np.exp(-b[4:])), mean, rtol=1e-10)


def test_generator_output_bias_from_data():
    x = _marginal_data(np.random.default_rng(1))
    G = build_generator(784, **PAPER, output_bias=pixel_logit_bias(x), rng=0)
    b = G.params["4.b"]
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, pixel_logit_bias(x).astype(np.float32), rtol=0, atol=0)
    assert b[0] == pytest.approx(-16.118, abs=1e-3)


def test_build_gan_uses_training_marginals():
    # the trainer's path: G's output bias comes from the *training* images
    x = _marginal_data(np.random.default_rng(2))
    gan = build_gan(TrainConfig(preset="small", device="cpu"), x, steps_per_epoch=10)
    out_bias = gan.G.params[f"{len(gan.G.layers) - 2}.b"]
    np.testing.assert_allclose(out_bias, pixel_logit_bias(x).astype(np.float32), atol=1e-6)
    # hidden biases stay 0 and D biases are 0
    assert not np.any(gan.G.params["0.b"])
    assert all(not np.any(v) for k, v in gan.D.params.items() if k.endswith(".b"))


def test_mismatched_dropout_list_rejected():
    with pytest.raises(ValueError, match="d_dropout"):
        build_discriminator(784, d_layers=2, d_dropout=(0.2, 0.5))


# --------------------------------------------------------------------------
# the paper preset's schedule, loss and prior (PAPER.md §3)
# --------------------------------------------------------------------------

def test_paper_preset_values():
    expected = dict(
        noise_dim=100, prior="uniform-sqrt3", g_hidden=(1200, 1200), g_irange=0.05,
        d_units=240, d_pieces=5, d_layers=2, d_irange=0.005, d_dropout=(0.2, 0.5, 0.5),
        batch_size=100, lr=0.1, lr_decay=1.000004, min_lr=1e-6,
        momentum=0.5, final_momentum=0.7, momentum_saturate=250,
        loss="non-saturating", d_scale=0.5, update="simultaneous", k=1,
    )
    assert PAPER == expected
    resolved = TrainConfig(preset="paper").resolved()
    for key, value in expected.items():
        assert resolved[key] == value, key


@pytest.fixture(scope="module")
def paper_gan():
    x = np.random.default_rng(0).random((300, 784)).astype(np.float32)
    return build_gan(TrainConfig(preset="paper", device="cpu"), x, steps_per_epoch=500)


def test_paper_gan_schedule(paper_gan):
    for opt in (paper_gan.d_opt, paper_gan.g_opt):
        assert isinstance(opt, SGD)
        assert isinstance(opt.lr, ExponentialDecay)
        assert isinstance(opt.momentum, LinearMomentum)
        lr, mu = opt.lr, opt.momentum
        # lr = max(1e-6, 0.1 / 1.000004^t): first update uses 0.1
        assert lr(0) == pytest.approx(0.1, rel=1e-12)
        assert lr(1) == pytest.approx(0.1 / 1.000004, rel=1e-12)
        assert lr(500 * 100) == pytest.approx(0.1 / 1.000004 ** 50_000, rel=1e-9)
        assert lr(500 * 100) == pytest.approx(0.0819, abs=1e-4)  # PAPER.md §3.4
        assert lr(10_000_000) == 1e-6  # the floor
        # momentum 0.5 during epoch 1, linear to 0.7 at epoch 250 (500 updates per epoch)
        assert mu(0) == pytest.approx(0.5) and mu(499) == pytest.approx(0.5)
        assert mu(500) == pytest.approx(0.5 + 0.2 / 249)
        assert mu(124 * 500) == pytest.approx(0.5 + 0.2 * 124 / 249)
        assert mu(249 * 500 - 1) < 0.7
        assert mu(249 * 500) == pytest.approx(0.7)
        assert mu(10_000 * 500) == pytest.approx(0.7)


def test_paper_gan_update_loss_and_prior(paper_gan):
    gan = paper_gan
    assert gan.simultaneous and gan.k == 1
    assert isinstance(gan.loss, losses.NonSaturating)
    # the authors' D loss is 0.5·[BCE(real,1) + BCE(fake,0)]: at logits 0 that is log 2
    zeros = np.zeros((4, 1))
    value, d_real, d_fake = gan.loss.d_loss(zeros, zeros)
    assert float(value) == pytest.approx(math.log(2))
    np.testing.assert_allclose(d_real, -0.5 * 0.5 / 4)
    # non-saturating G loss: −log σ(a), gradient −(1 − σ(a))/m (minimax would give −σ(a)/m)
    a = np.full((4, 1), 2.0)
    g_value, g_grad = gan.loss.g_loss(a)
    s = 1 / (1 + math.exp(-2.0))
    assert float(g_value) == pytest.approx(-math.log(s))
    np.testing.assert_allclose(g_grad, -(1 - s) / 4)
    # noise: 100-d uniform on [−√3, √3] (zero mean, unit variance)
    assert gan.noise.dim == 100 and gan.noise.kind == "uniform-sqrt3"
    z = gan.noise.sample(2000, np.random.default_rng(0), np.float32)
    assert z.shape == (2000, 100)
    assert np.abs(z).max() <= math.sqrt(3) + 1e-6
    assert np.abs(z).max() > 0.99 * math.sqrt(3)
    assert z.var() == pytest.approx(1.0, abs=0.02)
    assert abs(z.mean()) < 0.02


def test_small_preset_differs_only_in_size():
    small = PRESETS["small"]
    assert set(small) == set(PAPER)
    size_keys = {"noise_dim", "g_hidden", "d_units", "d_pieces"}
    for key in set(PAPER) - size_keys:
        assert small[key] == PAPER[key], key


def test_paper_deviations_listed():
    text = " ".join(PAPER_DEVIATIONS).lower()
    for word in ("simultaneous", "log d(g(z))", "0.5", "sqrt3"):
        assert word in text
