"""Flatten, Reshape, Embedding; the losses beside the adversarial ones; RMSProp and weight decay."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from helpers import assert_grads_ok, on, to_host, to_xp
from scratchgan import nn
from scratchgan.nn import losses
from scratchgan.nn.gradcheck import check_module, numerical_gradient, rel_error

F64 = np.float64


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), n=st.integers(1, 3))
def test_flatten_and_reshape_gradients(xp, shape, n):
    x = to_xp(xp, np.random.default_rng(0).standard_normal((n,) + shape))
    assert_grads_ok(check_module(nn.Flatten(), x))
    flat = to_xp(xp, np.random.default_rng(1).standard_normal((n, int(np.prod(shape)))))
    assert_grads_ok(check_module(nn.Reshape(*shape), flat))
    assert nn.Sequential([nn.Reshape(*shape), nn.Flatten()]).output_shape((int(np.prod(shape)),)) == \
        (int(np.prod(shape)),)


def test_reshape_error():
    with pytest.raises(ValueError, match=r"Reshape\(2, 3\): cannot reshape input of shape \(4, 5\)"):
        nn.Reshape(2, 3).forward(np.zeros((4, 5)))


@given(labels=st.lists(st.integers(0, 4), min_size=1, max_size=12), seed=st.integers(0, 2**31))
def test_embedding_adds_repeated_labels(xp, labels, seed):
    """E[y] += g would keep one of the gradients of a repeated label; the sum
    over every sample with that label is the gradient (np.add.at as reference)."""
    rs = np.random.default_rng(seed)
    emb = on(xp, nn.Embedding(5, 3, rng=seed, dtype=F64))
    y = to_xp(xp, np.array(labels))
    out = emb.forward(y)
    np.testing.assert_array_equal(to_host(out), to_host(emb.params["E"])[labels])
    dy = rs.standard_normal((len(labels), 3))
    emb.zero_grad()
    assert emb.backward(to_xp(xp, dy)) is None
    expected = np.zeros((5, 3))
    np.add.at(expected, np.array(labels), dy)
    np.testing.assert_allclose(to_host(emb.grads["E"]), expected, rtol=1e-12, atol=1e-12)


def test_embedding_label_errors():
    emb = nn.Embedding(10, 4)
    for bad, what in [(np.array([0, 10]), r"Embedding\(10, 4\): label 10 is out of range: 10 classes, 0..9"),
                      (np.array([-1]), "label -1 is out of range"), (np.array([0.5]), "integer labels"),
                      (np.array([True]), "got booleans"), (np.zeros((2, 2), int), r"shape \(batch,\)")]:
        with pytest.raises(ValueError, match=what):
            emb.forward(bad)


@given(m=st.integers(1, 6), k=st.integers(2, 6), seed=st.integers(0, 2**31))
def test_softmax_cross_entropy(xp, m, k, seed):
    rs = np.random.default_rng(seed)
    a = to_xp(xp, rs.standard_normal((m, k)) * 3)
    y = to_xp(xp, rs.integers(0, k, m))
    value, grad = losses.softmax_cross_entropy(a, y)
    host_a, host_y = to_host(a), to_host(y)
    p = np.exp(host_a) / np.exp(host_a).sum(axis=1, keepdims=True)
    assert float(value) == pytest.approx(-np.log(p[np.arange(m), host_y]).mean(), rel=1e-12)
    num = numerical_gradient(lambda: losses.softmax_cross_entropy(a, y)[0], a)
    assert_grads_ok(rel_error(grad, num))


def test_softmax_cross_entropy_extreme_logits_are_finite():
    a = np.array([[400.0, -400.0, 0.0], [-400.0, 400.0, 0.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # (exp underflowing to 0 is fine)
        v, g = losses.softmax_cross_entropy(a, np.array([1, 1]))
    assert np.isfinite(float(v)) and float(v) == pytest.approx(400.0)
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, [[0.5, -0.5, 0], [0, 0, 0]], atol=1e-6)
    with pytest.raises(ValueError, match="integer labels"):
        losses.softmax_cross_entropy(a, np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="softmax_cross_entropy: label 3 is out of range: 3 classes"):
        losses.softmax_cross_entropy(a, np.array([0, 3]))           # its one-hot row would be all zeros
    with pytest.raises(ValueError, match="label -1 is out of range"):
        losses.softmax_cross_entropy(a, np.array([-1, 0]))
    with pytest.raises(ValueError, match="2 rows of logits but 3 labels"):
        losses.softmax_cross_entropy(a, np.array([0, 1, 2]))


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple), seed=st.integers(0, 2**31))
def test_l1(xp, shape, seed):
    rs = np.random.default_rng(seed)
    x, t = to_xp(xp, rs.standard_normal(shape)), to_xp(xp, rs.standard_normal(shape))
    value, grad = losses.l1(x, t)
    assert float(value) == pytest.approx(np.abs(to_host(x) - to_host(t)).mean())
    assert_grads_ok(rel_error(grad, numerical_gradient(lambda: losses.l1(x, t)[0], x)))


@given(m=st.integers(1, 5), d=st.integers(1, 3), sigma=st.floats(0.3, 3.0), seed=st.integers(0, 2**31))
def test_gaussian_nll(xp, m, d, sigma, seed):
    rs = np.random.default_rng(seed)
    mu, c = to_xp(xp, rs.standard_normal((m, d))), to_xp(xp, rs.uniform(-1, 1, (m, d)))
    value, grad = losses.gaussian_nll(mu, c, sigma)
    from scipy.stats import norm
    assert float(value) == pytest.approx(-norm.logpdf(to_host(c), to_host(mu), sigma).sum() / m, rel=1e-10)
    assert_grads_ok(rel_error(grad, numerical_gradient(lambda: losses.gaussian_nll(mu, c, sigma)[0], mu)))


def test_rmsprop_is_the_published_update():
    """v ← α v + (1 − α) g²;  θ ← θ − η g / (√v + ε), from v = 0."""
    lin = nn.Linear(3, 2, rng=0, dtype=F64)
    opt = nn.RMSProp(lin, lr=0.01, alpha=0.9, eps=1e-8)
    theta, v = lin.params["W"].copy(), np.zeros((3, 2))
    rs = np.random.default_rng(0)
    for _ in range(3):
        g = rs.standard_normal((3, 2))
        lin.grads["W"][...] = g
        lin.grads["b"][...] = 0
        opt.step()
        v = 0.9 * v + 0.1 * g * g
        theta = theta - 0.01 * g / (np.sqrt(v) + 1e-8)
    np.testing.assert_allclose(lin.params["W"], theta, rtol=1e-12)


def test_rmsprop_matches_pytorch():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(3, 2, rng=0, dtype=F64)
    w = torch.tensor(lin.params["W"].copy(), requires_grad=True)
    ours, ref = nn.RMSProp(lin, lr=5e-3), torch.optim.RMSprop([w], lr=5e-3)
    rs = np.random.default_rng(1)
    for _ in range(4):
        g = rs.standard_normal((3, 2))
        lin.grads["W"][...] = g
        w.grad = torch.tensor(g)
        ours.step()
        ref.step()
    np.testing.assert_allclose(lin.params["W"], w.detach().numpy(), rtol=1e-10)


@pytest.mark.parametrize("cls", [nn.SGD, nn.Adam, nn.RMSProp])
def test_weight_decay_adds_lambda_theta_to_the_gradient(cls):
    """weight_decay λ is the gradient of (λ/2)‖θ‖²: the same step as an
    optimiser without decay given g + λθ."""
    a, b = nn.Linear(3, 2, rng=0, dtype=F64), nn.Linear(3, 2, rng=0, dtype=F64)
    oa, ob = cls(a, lr=0.01, weight_decay=0.1), cls(b, lr=0.01)
    g = np.random.default_rng(0).standard_normal((3, 2))
    for lin in (a, b):
        lin.grads["W"][...] = g
    b.grads["W"] += 0.1 * b.params["W"]
    b.grads["b"] += 0.1 * b.params["b"]
    oa.step()
    ob.step()
    np.testing.assert_allclose(a.params["W"], b.params["W"], rtol=1e-12)
    with pytest.raises(ValueError, match="weight_decay"):
        cls(a, weight_decay=-1)
