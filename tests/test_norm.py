"""BatchNorm1d/2d and LayerNorm: gradients, evaluation mode, running statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from helpers import assert_grads_ok, on, to_host, to_xp
from scratchgan import nn
from scratchgan.nn.gradcheck import check_module

F64 = np.float64


def with_affine(layer, rs):
    layer.params["gamma"][...] = 1 + 0.5 * rs.standard_normal(layer.params["gamma"].shape)
    layer.params["beta"][...] = rs.standard_normal(layer.params["beta"].shape)
    return layer


@given(n=st.integers(3, 5), c=st.integers(1, 4), h=st.integers(1, 4), w=st.integers(1, 4),
       seed=st.integers(0, 2**31), image=st.booleans())
def test_batchnorm_training_gradients(xp, n, c, h, w, seed, image):
    # (at least 3 values per channel: with 2, x̂ = ±1 whatever x is, and the
    # true gradient is of the order of ε — finite differences cannot see it)
    rs = np.random.default_rng(seed)
    layer = with_affine(nn.BatchNorm2d(c, dtype=F64) if image else nn.BatchNorm1d(c, dtype=F64), rs)
    x = rs.standard_normal((n, c, h, w) if image else (n, c)) * 3 + 1
    assert_grads_ok(check_module(on(xp, layer), to_xp(xp, x)))


@given(n=st.integers(1, 4), c=st.integers(1, 4), h=st.integers(1, 4), seed=st.integers(0, 2**31),
       image=st.booleans())
def test_layernorm_gradients(xp, n, c, h, seed, image):
    rs = np.random.default_rng(seed)
    shape = (n, c, h + 1, h + 2) if image else (n, c + 2)   # at least 3 features per sample
    layer = with_affine(nn.LayerNorm(shape[1], dtype=F64), rs)
    x = rs.standard_normal(shape) * 2 - 1
    assert_grads_ok(check_module(on(xp, layer), to_xp(xp, x)))


@given(seed=st.integers(0, 2**31))
def test_batchnorm_evaluation_gradients(seed):
    rs = np.random.default_rng(seed)
    layer = with_affine(nn.BatchNorm2d(3, dtype=F64), rs)
    layer.buffers["running_mean"][...] = rs.standard_normal(3)
    layer.buffers["running_var"][...] = rs.random(3) + 0.5
    assert_grads_ok(check_module(layer, rs.standard_normal((2, 3, 2, 2)), train=False))


def test_batchnorm_training_normalises_and_updates_running_statistics(xp):
    """Batch mean and biased variance normalise; the running statistics follow
    r ← 0.9 r + 0.1·batch with the *unbiased* variance (PyTorch's rule)."""
    rs = np.random.default_rng(0)
    x = rs.standard_normal((4, 3, 5, 5)) * np.array([1, 2, 3])[None, :, None, None] + 7
    bn = on(xp, nn.BatchNorm2d(3, dtype=F64))
    y = to_host(bn.forward(to_xp(xp, x)))
    mu, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(y, (x - mu[None, :, None, None]) / np.sqrt(var[None, :, None, None] + 1e-5),
                               rtol=1e-10, atol=1e-10)
    M = 4 * 5 * 5
    np.testing.assert_allclose(to_host(bn.buffers["running_mean"]), 0.1 * mu, rtol=1e-12)
    np.testing.assert_allclose(to_host(bn.buffers["running_var"]), 0.9 + 0.1 * var * M / (M - 1), rtol=1e-12)
    bn.forward(to_xp(xp, x))  # a second step: r ← 0.9 r + 0.1 batch again
    np.testing.assert_allclose(to_host(bn.buffers["running_mean"]), 0.1 * mu * (1 + 0.9), rtol=1e-12)


def test_batchnorm_evaluation_uses_running_statistics_and_changes_nothing(xp):
    rs = np.random.default_rng(1)
    bn = with_affine(nn.BatchNorm1d(4, dtype=F64), rs)
    bn.buffers["running_mean"][...] = [1, 2, 3, 4]
    bn.buffers["running_var"][...] = [1, 4, 9, 16]
    bn = on(xp, bn)
    x = rs.standard_normal((6, 4))
    y = to_host(bn.forward(to_xp(xp, x), train=False))
    g, b = to_host(bn.params["gamma"]), to_host(bn.params["beta"])
    expected = (x - [1, 2, 3, 4]) / np.sqrt(np.array([1, 4, 9, 16]) + 1e-5) * g + b
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    np.testing.assert_array_equal(to_host(bn.buffers["running_mean"]), [1, 2, 3, 4])


def test_batch_statistics_couple_the_samples_and_layernorm_does_not():
    rs = np.random.default_rng(2)
    x = rs.standard_normal((4, 3))
    bn, ln = nn.BatchNorm1d(3, dtype=F64), nn.LayerNorm(3, dtype=F64)
    x2 = x.copy()
    x2[0] += 5
    assert not np.allclose(bn.forward(x)[1:], bn.forward(x2)[1:])
    np.testing.assert_allclose(ln.forward(x)[1:], ln.forward(x2)[1:])


def test_buffers_in_state_dict_and_to():
    bn = nn.BatchNorm2d(2)
    bn.forward(np.random.default_rng(0).standard_normal((3, 2, 2, 2)).astype(np.float32))
    state = bn.state_dict()
    assert set(state) == {"gamma", "beta", "running_mean", "running_var"}
    other = nn.BatchNorm2d(2)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.buffers["running_var"], bn.buffers["running_var"])
    assert other.to(dtype=np.float64).buffers["running_mean"].dtype == np.float64


def test_errors():
    with pytest.raises(ValueError, match=r"BatchNorm2d\(3\): expected input of shape \(batch, 3, \?, \?\)"):
        nn.BatchNorm2d(3).forward(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        nn.BatchNorm1d(3).forward(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match=r"LayerNorm\(3\): expected input of shape \(batch, 3, …\)"):
        nn.LayerNorm(3).forward(np.zeros((2, 4), np.float32))


def test_equal_to_pytorch():
    torch = pytest.importorskip("torch")
    rs = np.random.default_rng(3)
    x = rs.standard_normal((4, 3, 5, 5))
    ours = with_affine(nn.BatchNorm2d(3, dtype=F64), rs)
    ref = torch.nn.BatchNorm2d(3).double()
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(ours.params["gamma"]))
        ref.bias.copy_(torch.tensor(ours.params["beta"]))
    tx = torch.tensor(x, requires_grad=True)
    dy = rs.standard_normal(x.shape)
    ty = ref(tx)
    ty.backward(torch.tensor(dy))
    y = ours.forward(x)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.backward(dy), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.buffers["running_var"], ref.running_var.numpy(), rtol=1e-12)
