"""The gradient of a gradient (issue 15): penalties through every supported layer, by finite differences.

For a critic D and a penalty P(g), g = ∇ₓ Σᵢ D(x)ᵢ, the gradient of P with
respect to every critic parameter (and the input) must equal centred finite
differences of P itself, where P is recomputed from scratch with an ordinary
forward and backward pass. Critics are built from each supported layer, over
Hypothesis-drawn shapes, with inputs kept away from the kinks of ReLU,
LeakyReLU and maxout (a finite difference across a kink measures nothing).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from helpers import BACKENDS, assert_grads_ok, device_for, record_grad_errors, to_host, to_xp
from scratchgan import nn
from scratchgan.gan import GAN, R1, WGAN, WGANGP, NoisePrior
from scratchgan.nn import fast
from scratchgan.nn.gradcheck import numerical_gradient, rel_error
from scratchgan.nn.second_order import SecondOrderError, gradient_penalty, penalty_backward, r1_penalty

F64 = np.float64
PENALTIES = {"gp": lambda g: gradient_penalty(g, 10.0), "r1": lambda g: r1_penalty(g, 10.0)}


def penalty_value(D, x, penalty):
    """P recomputed from scratch: forward, first backward (seed 1), P(g)."""
    out = D.forward(x)
    return penalty(D.backward(get_xp(out).ones_like(out), param_grads=False))[0]


def get_xp(a):
    from scratchgan.backend import get_array_module
    return get_array_module(a)


def check_penalty(D, x, penalty, require_signal=True):
    """Relative errors of ∂P/∂θ (every parameter) and ∂P/∂x against finite differences."""
    D.zero_grad()
    _, _, dx = penalty_backward(D, x, penalty, input_grad=True)
    analytic = {k: to_host(g).copy() for k, g in D.gradients().items()}
    analytic["x"] = to_host(dx).copy()
    numeric = {k: to_host(numerical_gradient(lambda: penalty_value(D, x, penalty), p))
               for k, p in list(D.parameters().items()) + [("x", x)]}
    # Each array's largest error over the scale of the *whole* gradient (the
    # parameters' and the input's): an array whose gradient is nearly zero (a
    # bias reached only through tanh's curvature) would otherwise be judged by
    # finite-difference noise alone.
    scale = max(float(np.abs(analytic[k]).max() + np.abs(numeric[k]).max()) for k in numeric)
    errors = {k: float(np.abs(analytic[k] - numeric[k]).max()) / max(scale, 1e-12) for k in numeric}
    del analytic["x"]
    signal = max(float(np.abs(g).max()) for g in analytic.values())
    if require_signal:
        assert signal > 1e-6  # the penalty does reach the weights
    return errors, signal


def scaled_errors(analytic, numeric):
    """Each array's largest error over the scale of the whole gradient (a bias
    whose gradient is exactly 0 — the Wasserstein terms cancel — is otherwise
    judged by finite-difference noise over a 1e-8 floor)."""
    scale = max(float(np.abs(analytic[k]).max() + np.abs(numeric[k]).max()) for k in numeric)
    return {k: float(np.abs(analytic[k] - numeric[k]).max()) / max(scale, 1e-12) for k in numeric}


def kw(seed):
    return dict(init="normal", std=0.8, rng=seed, dtype=F64)


def critic(kind, n_in, width, L, seed):
    """A critic (m, n_in) → (m, 1) built around one layer type."""
    if kind == "linear":
        return L.Sequential([L.Linear(n_in, width, **kw(seed)), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "relu":
        return L.Sequential([L.Linear(n_in, width, **kw(seed)), L.ReLU(), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "leaky_relu":
        return L.Sequential([L.Linear(n_in, width, **kw(seed)), L.LeakyReLU(0.2), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "maxout":
        return L.Sequential([L.Maxout(n_in, width, 3, **kw(seed)), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "tanh":
        return L.Sequential([L.Linear(n_in, width, **kw(seed)), L.Tanh(), L.Linear(width, width, **kw(seed + 2)),
                             L.Tanh(), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "sigmoid":
        return L.Sequential([L.Linear(n_in, width, **kw(seed)), L.Sigmoid(), L.Linear(width, 1, **kw(seed + 1))])
    if kind == "dropout":
        return L.Sequential([L.Dropout(0.3), L.Linear(n_in, width, **kw(seed)), L.Tanh(), L.Dropout(0.5),
                             L.Linear(width, 1, **kw(seed + 1))])
    if kind == "concat":  # a trunk, two branches joined along the features
        return L.Sequential([L.Linear(n_in, width, **kw(seed)),
                             L.Fork([L.Tanh(), L.Sequential([L.Linear(width, 2, **kw(seed + 3)), L.Sigmoid()])]),
                             L.Concat(), L.Linear(width + 2, 1, **kw(seed + 1))])
    raise AssertionError(kind)


DENSE_KINDS = ["linear", "relu", "leaky_relu", "maxout", "tanh", "sigmoid", "dropout", "concat"]
KINKED = {"relu", "leaky_relu", "maxout"}


def away_from_kinks(D, x, kind):
    """True when no ReLU/LeakyReLU input or maxout gap is within 1e-3 of a kink."""
    if kind not in KINKED:
        return True
    h = to_host(D.layers[0].forward(x))
    if kind == "maxout":
        W, b = (to_host(D.layers[0].params[k]) for k in ("W", "b"))
        z = (to_host(x) @ W + b).reshape(len(h), 3, -1)
        top = np.sort(z, axis=1)
        return float((top[:, -1] - top[:, -2]).min()) > 1e-3
    return float(np.abs(h).min()) > 1e-3


@pytest.mark.parametrize("L", [nn, fast], ids=["reference", "fast"])
@pytest.mark.parametrize("kind", DENSE_KINDS)
@pytest.mark.parametrize("which", ["gp", "r1"])
@given(m=st.integers(1, 4), n_in=st.integers(1, 5), width=st.integers(1, 5), seed=st.integers(0, 2**30))
def test_penalty_gradient_through_each_layer(xp, L, kind, which, m, n_in, width, seed):
    D = critic(kind, n_in, width, L, seed).to(device_for(xp))
    D.set_rng(np.random.default_rng(seed) if xp is np else __import__("scratchgan").backend.default_rng(seed, "gpu"))
    x = to_xp(xp, np.random.default_rng(seed + 7).standard_normal((m, n_in)))
    if kind == "dropout":  # the same masks in every evaluation
        masks = {}

        def fixed(i, layer, xx):  # keyed by the layer's position, so every run draws the same masks
            if i not in masks:
                masks[i] = to_xp(xp, np.random.default_rng(seed + 31 * i).random(xx.shape) < 1 - layer.p)
            return masks[i]
        dropouts = [layer for layer in D.modules() if isinstance(layer, nn.Dropout)]
        for i, layer in enumerate(dropouts):
            layer._keep_mask = lambda xx, i=i, layer=layer: fixed(i, layer, xx)
    assume(away_from_kinks(D, x, kind))
    errors, signal = check_penalty(D, x, PENALTIES[which], require_signal=False)
    assume(signal > 1e-6)  # (every ReLU dead: g = 0 and the penalty is flat — nothing to check)
    assert_grads_ok(errors, label=f"second order: {kind}")


def conv_critic(kind, L, seed, c=2, side=6):
    if kind == "conv2d":
        return L.Sequential([L.Conv2d(1, c, 3, stride=2, padding=1, **kw(seed)), L.LeakyReLU(0.2), L.Flatten(),
                             L.Linear(c * 3 * 3, 1, **kw(seed + 1))])
    if kind == "conv_transpose2d":
        return L.Sequential([L.ConvTranspose2d(1, c, 4, stride=2, padding=1, **kw(seed)), L.Tanh(), L.Flatten(),
                             L.Linear(c * 12 * 12, 1, **kw(seed + 1))])
    if kind == "reshape":
        return L.Sequential([L.Flatten(), L.Linear(side * side, 2 * 3 * 3, **kw(seed)), L.Reshape(2, 3, 3), L.Sigmoid(),
                             L.Conv2d(2, 1, 3, **kw(seed + 2)), L.Flatten(), L.Linear(1, 1, **kw(seed + 1))])
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["conv2d", "conv_transpose2d", "reshape"])
@pytest.mark.parametrize("which", ["gp", "r1"])
@given(m=st.integers(1, 3), seed=st.integers(0, 2**30))
def test_penalty_gradient_through_convolutions(xp, kind, which, m, seed):
    D = conv_critic(kind, nn, seed).to(device_for(xp))
    x = to_xp(xp, np.random.default_rng(seed + 7).standard_normal((m, 1, 6, 6)))
    if kind == "conv2d":
        assume(float(np.abs(to_host(D.layers[0].forward(x))).min()) > 1e-3)
    errors, signal = check_penalty(D, x, PENALTIES[which], require_signal=False)
    assume(signal > 1e-6)
    assert_grads_ok(errors, label=f"second order: {kind}")


@pytest.mark.parametrize("kind", ["conv2d", "conv_transpose2d"])
@pytest.mark.parametrize("seed", [0, 1])
def test_penalty_gradient_through_fast_convolutions_at_sixteen_channels(kind, seed, monkeypatch):
    """From 16 channels on, fast.Conv2d's input gradient and fast.ConvTranspose2d's
    forward pass add col2im up tap by tap: the penalty's gradient through them
    (tanh, so the curvature seeds go back through them as well)."""
    calls = []
    by_tap = fast.col2im_by_tap
    monkeypatch.setattr(fast, "col2im_by_tap", lambda *a: calls.append(1) or by_tap(*a))
    rs = np.random.default_rng(seed + 7)
    if kind == "conv2d":
        D = fast.Sequential([fast.Conv2d(16, 2, 3, stride=2, padding=1, **kw(seed)), fast.Tanh(), fast.Flatten(),
                             fast.Linear(2 * 3 * 3, 1, **kw(seed + 1))])
        x = rs.standard_normal((2, 16, 6, 6))
    else:
        D = fast.Sequential([fast.ConvTranspose2d(1, 16, 4, stride=2, padding=1, **kw(seed)), fast.Tanh(),
                             fast.Flatten(), fast.Linear(16 * 12 * 12, 1, **kw(seed + 1))])
        x = rs.standard_normal((2, 1, 6, 6))
    errors, _ = check_penalty(D, x, PENALTIES["gp"])
    assert_grads_ok(errors, label=f"second order: fast {kind}, 16 channels")
    assert calls, "the tap-by-tap col2im was not used"


def test_the_wgan_gp_authors_critic():
    """The MNIST critic of the presets (three 5×5 stride-2 convolutions), at small width."""
    from scratchgan.models.wgan_conv import build_critic
    D = build_critic(dim=2, slope=0.2, rng=0, dtype=F64, fast_layers=True)
    x = np.random.default_rng(1).random((2, 1, 28, 28))
    errors, _ = check_penalty(D, x, PENALTIES["gp"])
    assert_grads_ok(errors, label="second order: the WGAN-GP MNIST critic")


@given(seed=st.integers(0, 2**30))
def test_mixed_second_derivative_along_a_direction(seed):
    """(∂²S/∂θ∂x)·v, S = Σ D(x), is the parameter gradient of the penalty
    P(g) = ⟨g, v⟩; compare with the finite difference of first-order
    parameter gradients along v: [∇θ S(x + hv) − ∇θ S(x − hv)] / 2h."""
    rs = np.random.default_rng(seed)
    D = critic("tanh", 3, 4, nn, seed)
    x, v = rs.standard_normal((3, 3)), rs.standard_normal((3, 3))
    D.zero_grad()
    penalty_backward(D, x, lambda g: ((g * v).sum(), v))
    analytic = {k: g.copy() for k, g in D.gradients().items()}

    def first_order(xx):
        D.zero_grad()
        out = D.forward(xx)
        D.backward(np.ones_like(out))
        return {k: g.copy() for k, g in D.gradients().items()}
    h = 1e-6
    plus, minus = first_order(x + h * v), first_order(x - h * v)
    errors = {k: rel_error(analytic[k], (plus[k] - minus[k]) / (2 * h)) for k in analytic}
    assert_grads_ok(errors, tol=1e-6, label="second order: directional (mixed derivative)")


def test_dropping_the_curvature_terms_is_caught(monkeypatch):
    """numpy-ml's trap: the φ'' terms dropped (exact only for piecewise-linear
    critics). With tanh the penalty's gradient is then wrong, and the check sees it."""
    import scratchgan.nn.second_order as so
    D = critic("tanh", 3, 4, nn, 3)
    x = np.random.default_rng(0).standard_normal((3, 3))
    assert max(check_penalty(D, x, PENALTIES["gp"])[0].values()) < 1e-6
    monkeypatch.setattr(so, "_tanh", lambda layer, v, g, pg: (v * (1 - layer._cached() ** 2), None))
    monkeypatch.setattr(so, "_RULES", [(nn.Tanh, so._tanh)] + so._RULES)
    assert max(check_penalty(D, x, PENALTIES["gp"])[0].values()) > 1e-3


def test_unsupported_modules_are_refused_clearly():
    for norm, needle in ((nn.BatchNorm1d(4, dtype=F64), "couples the samples"),
                         (nn.LayerNorm(4, dtype=F64), "LayerNorm's second-order terms are not derived")):
        D = nn.Sequential([nn.Linear(3, 4, **kw(0)), norm, nn.Linear(4, 1, **kw(1))])
        with pytest.raises(SecondOrderError, match=needle):
            penalty_backward(D, np.zeros((3, 3)), PENALTIES["gp"])


def test_gradient_penalty_value_and_zero_gradient():
    g = np.array([[3.0, 4.0], [0.0, 0.0]])
    value, v0 = gradient_penalty(g, lam=10)
    assert value == pytest.approx(10 * ((5 - 1) ** 2 + (0 - 1) ** 2) / 2, rel=1e-6)  # (ε inside the norm)
    assert np.all(np.isfinite(v0)) and np.allclose(v0[1], 0)  # ‖g‖ = 0: no NaN
    value, v0 = r1_penalty(g, gamma=10)
    assert value == pytest.approx(5 * 25 / 2) and np.allclose(v0, 10 / 2 * g)


# ---------------------------------------------------------------------------
# The variants: signs, clipping, the G step through the critic
# ---------------------------------------------------------------------------
def small_pair(seed=0):
    G = nn.Sequential([nn.Linear(2, 6, **kw(seed)), nn.Tanh(), nn.Linear(6, 2, **kw(seed + 1))])
    D = nn.Sequential([nn.Linear(2, 6, **kw(seed + 2)), nn.LeakyReLU(0.2), nn.Linear(6, 1, **kw(seed + 3))])
    return G, D


def make(variant, lr_d=1e-3, lr_g=1e-3, **kw_):
    G, D = small_pair()
    return variant(G, D, nn.SGD(D, lr=lr_d), nn.SGD(G, lr=lr_g), NoisePrior(2, "normal"), seed=0, **kw_)


def critic_loss(gan, x, seed=1):
    gan.seed(seed)
    z = gan.sample_noise(len(x))
    return float(gan.D.forward(gan.G.forward(z)).mean() - gan.D.forward(x).mean())


@pytest.mark.parametrize("variant", [WGAN, WGANGP], ids=["wgan", "wgan-gp"])
def test_critic_and_generator_steps_have_the_right_signs(variant):
    """The critic step lowers E[f(G(z))] − E[f(x)] (it ascends the Wasserstein
    estimate); the G step raises E[f(G(z))] (G descends −E[f(G(z))])."""
    extra = {"clip": 10.0} if variant is WGAN else {"lam": 0.0}
    gan = make(variant, **extra)
    x = np.random.default_rng(2).normal(2.0, 0.5, (64, 2))
    before = critic_loss(gan, x)
    gan.seed(1)
    gan.d_step(x)
    assert critic_loss(gan, x) < before
    gan.seed(3)
    z = gan.sample_noise(64)
    f_before = float(gan.D.forward(gan.G.forward(z)).mean())
    gan.seed(3)
    gan.g_step(64)
    assert float(gan.D.forward(gan.G.forward(z)).mean()) > f_before


def test_wgan_gp_g_step_goes_through_the_critic():
    """The generator's gradient is the finite-difference gradient of −E[f(G(z))]
    — through the critic, with the penalty playing no part."""
    G, D = small_pair()
    gan = WGANGP(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(2, "normal"), seed=0)

    def value():
        gan.seed(4)
        return float(gan.g_step(8)["g_loss"])
    value()
    analytic = {k: g.copy() for k, g in G.gradients().items()}
    errors = scaled_errors(analytic, {k: numerical_gradient(value, p) for k, p in G.parameters().items()})
    assert_grads_ok(errors)


def test_wgan_gp_critic_step_matches_finite_differences():
    """The whole critic step (Wasserstein terms + penalty at the interpolates)
    against finite differences of its own loss."""
    G, D = small_pair(5)
    gan = WGANGP(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(2, "normal"), seed=0, lam=3.0)
    x = np.random.default_rng(6).normal(1.0, 1.0, (5, 2))

    def value():
        gan.seed(8)
        return float(gan.d_step(x)["d_loss"])
    value()
    analytic = {k: g.copy() for k, g in D.gradients().items()}
    errors = scaled_errors(analytic, {k: numerical_gradient(value, p) for k, p in D.parameters().items()})
    assert_grads_ok(errors, label="second order: the WGAN-GP critic step")


def test_r1_step_matches_finite_differences_and_penalty_reaches_weights():
    G, D = small_pair(9)
    gan = R1(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(2, "normal"), seed=0, gamma=5.0)
    x = np.random.default_rng(6).normal(1.0, 1.0, (5, 2))

    def value():
        gan.seed(8)
        return float(gan.d_step(x)["d_loss"])
    value()
    analytic = {k: g.copy() for k, g in D.gradients().items()}
    errors = scaled_errors(analytic, {k: numerical_gradient(value, p) for k, p in D.parameters().items()})
    assert_grads_ok(errors, label="second order: the R1 D step")
    without = R1(*small_pair(9), nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(2, "normal"), seed=0, gamma=0.0)
    without.seed(8)
    without.d_step(x)
    assert any(not np.allclose(without.D.gradients()[k], analytic[k]) for k in analytic)


def test_wgan_authors_schedule():
    gan = make(WGAN, k=5, schedule="authors")
    assert [gan.d_steps() for gan.iterations in (0, 24, 25, 499, 500, 501)] == [100, 100, 5, 5, 100, 5]
    assert make(WGAN, k=5).d_steps() == 5
    with pytest.raises(ValueError, match="schedule"):
        make(WGAN, schedule="sometimes")


# ---------------------------------------------------------------------------
# Through the trainer: WGAN, WGAN-GP and R1 train, log the held-out diagnostic, resume
# ---------------------------------------------------------------------------
def tiny_data(n=330):
    from scratchgan.data import Dataset
    rng = np.random.default_rng(0)
    imgs = rng.random((n + 120, 784), dtype=np.float32)
    z = np.zeros
    return Dataset(name="mnist", split="paper", train=imgs[:n], train_labels=z(n, np.uint8),
                   valid=imgs[n:n + 60], valid_labels=z(60, np.uint8), test=imgs[n + 60:], test_labels=z(60, np.uint8))


@pytest.mark.parametrize("preset", ["wgan", "wgan-gp", "r1"])
def test_critic_presets_train_log_and_resume(preset, tmp_path, monkeypatch):
    import json

    import scratchgan.data
    from scratchgan.cli import main
    from scratchgan.training.checkpoint import read_checkpoint
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    # 330 images, batch 64: 5 batches an epoch, one iteration of 5 critic steps (R1: 5 iterations of 1)
    args = ["train", "--preset", preset, "--device", "cpu", "--quiet", "--out", str(out), "--log-every", "1"]
    assert main(args + ["--epochs", "1"]) == 0
    assert main(["train", "--out", str(out), "--epochs", "2", "--resume", "--device", "cpu", "--quiet"]) == 0
    assert int(read_checkpoint(out / "checkpoint.npz")["epoch"]) == 2
    rows = [json.loads(line) for line in open(out / "metrics.jsonl") if line.strip()]
    window = [r for r in rows if r["kind"] == "window"]
    assert window and all(np.isfinite(r["d_loss"]) for r in window)
    if preset in ("wgan", "wgan-gp"):  # the critic's diagnostic: the same fakes, fixed training vs held-out images
        assert all({"wasserstein", "fixed_train_wasserstein", "val_wasserstein"} <= set(r) for r in window)
    if preset in ("wgan-gp", "r1"):
        assert all("penalty" in r and r["penalty"] >= 0 for r in window)
    if preset == "wgan":
        D = read_checkpoint(out / "checkpoint.npz")
        assert max(float(np.abs(v).max()) for k, v in D.items() if k.startswith("D/")) <= 0.01 + 1e-7


def test_heldout_stats_score_both_sets_against_the_same_fakes():
    G, D = small_pair()
    gan = make(WGANGP)
    x_train, x_valid = np.ones((5, 2)), np.zeros((5, 2))
    fixed = gan.grid_inputs(5, 0)
    s = gan.heldout_stats(x_train, x_valid, fixed)
    fake = float(gan.D.forward(gan.generate_from(fixed), train=False).mean())
    assert float(s["fixed_train_wasserstein"]) == pytest.approx(float(gan.D.forward(x_train).mean()) - fake)
    assert float(s["val_wasserstein"]) == pytest.approx(float(gan.D.forward(x_valid).mean()) - fake)
