"""Tests for scratchgan.nn.gradcheck: the checker must pass correct gradients
*and* catch wrong ones (a checker that always passes proves nothing), for
single modules and for containers with tuples of inputs and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import assert_grads_ok, on, to_host, to_xp
from scratchgan.nn import Concat, Fork, Identity, Parallel
from scratchgan.nn.containers import Sequential
from scratchgan.nn.gradcheck import check_module, directional_check, numerical_gradient, rel_error
from scratchgan.nn.layers import Dropout, Linear, Tanh


class TanhWrongDerivative(Tanh):
    """Uses 1 - y instead of 1 - y^2: a plausible slip."""

    def backward(self, dy, *, need_dx=True, param_grads=True):
        y = self._cached()
        return dy * (1 - y)


class LinearWrongBiasGrad(Linear):
    def backward(self, dy, *, need_dx=True, param_grads=True):
        dx = super().backward(dy, need_dx=need_dx, param_grads=param_grads)
        self.grads["b"] *= 2.0
        return dx


class DropoutForgetsMask(Dropout):
    def backward(self, dy, *, need_dx=True, param_grads=True):
        return dy


class LinearOverwritesGrads(Linear):
    """Writes ``grads`` instead of adding: wrong when two branches share it."""

    def backward(self, dy, *, need_dx=True, param_grads=True):
        self.zero_grad()
        return super().backward(dy, need_dx=need_dx, param_grads=param_grads)


class ForkKeepsTheLastGradient(Fork):
    """Forgets the multivariate chain rule: the last branch's dx wins."""

    def backward(self, dys, *, need_dx=True, param_grads=True):
        dx = None
        for b, dy in zip(self.layers, dys):
            dx = b.backward(dy, need_dx=need_dx, param_grads=param_grads)
        return dx


class ConcatSwapsTheSplit(Concat):
    """Cuts dy back into pieces in the wrong order."""

    def backward(self, dy, *, need_dx=True, param_grads=True):
        sizes = self._cached()
        b, a = dy[:, :sizes[1]], dy[:, sizes[1]:]
        return a, b


def test_rel_error(xp):
    a = to_xp(xp, [1.0, -2.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a, to_xp(xp, [1.0, -2.5])) == pytest.approx(0.5 / 4.5)  # max|a-b| / (max|a| + max|b|)
    assert rel_error(to_xp(xp, [1.0, -2.0]), np.array([1.0, -2.5])) == pytest.approx(0.5 / 4.5)
    assert rel_error(xp.zeros(3), xp.zeros(3)) == 0.0
    assert rel_error(xp.zeros(0), xp.zeros(0)) == 0.0
    assert rel_error(to_xp(xp, [0.0]), to_xp(xp, [1e-12])) == pytest.approx(1e-4)  # the 1e-8 floor
    assert isinstance(rel_error(a, a), float)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(xp.zeros(2), xp.zeros(3))


def test_numerical_gradient(xp):
    x_host = np.random.default_rng(0).standard_normal((3, 4))
    x = to_xp(xp, x_host)
    g = numerical_gradient(lambda: (x**3).sum(), x)
    np.testing.assert_allclose(to_host(g), 3 * x_host**2, rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(to_host(x), x_host)  # restored exactly


def test_numerical_gradient_needs_float64(xp):
    x = to_xp(xp, np.ones(3), dtype=np.float32)
    with pytest.raises(TypeError, match="float64"):
        numerical_gradient(lambda: x.sum(), x)


def test_numerical_gradient_refuses_non_contiguous_arrays(xp):
    """A transposed array cannot be perturbed through a flat view: refusing is
    better than returning an all-zero "gradient" that may match a wrong one."""
    x = to_xp(xp, np.arange(6.0).reshape(2, 3)).T
    with pytest.raises(ValueError, match="contiguous"):
        numerical_gradient(lambda: (x * x).sum(), x)


def test_check_module_passes_a_correct_layer(xp):
    rs = np.random.default_rng(0)
    layer = on(xp, Linear(4, 3, init="normal", std=1.0, rng=rs, dtype=np.float64))
    errors = check_module(layer, to_xp(xp, rs.standard_normal((5, 4))))
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)
    assert set(check_module(layer, to_xp(xp, np.ones((2, 4))), params=False)) == {"x"}


@pytest.mark.parametrize(
    "make, key",
    [(TanhWrongDerivative, "x"),
     (lambda: LinearWrongBiasGrad(4, 4, init="normal", std=1.0, rng=0, dtype=np.float64), "b"),
     (lambda: DropoutForgetsMask(0.5), "x")],
    ids=["tanh-derivative", "linear-bias", "dropout-mask"],
)
def test_check_module_catches_wrong_gradients(xp, make, key):
    x = to_xp(xp, np.random.default_rng(1).standard_normal((6, 4)))
    errors = check_module(on(xp, make()), x)
    assert errors[key] > 1e-2


def test_check_module_holds_nested_dropout_masks_fixed(xp):
    rs = np.random.default_rng(2)
    inner = Sequential([Dropout(0.5), Linear(4, 4, init="normal", std=1.0, rng=rs, dtype=np.float64)])
    net = on(xp, Sequential([Dropout(0.3), inner, Tanh()]))
    assert_grads_ok(check_module(net, to_xp(xp, rs.standard_normal((5, 4)))))


def test_check_module_uses_the_given_dy(xp):
    x = to_xp(xp, np.ones((2, 3)))
    dy = to_xp(xp, np.zeros((2, 3)))  # L = 0 everywhere: both gradients are zero
    assert check_module(Tanh(), x, dy=dy) == {"x": 0.0}


def test_directional_check(xp):
    a_host = np.random.default_rng(3).standard_normal((4, 5))
    a = to_xp(xp, a_host)

    def good():
        return float(np.sin(to_host(a)).sum()), {"a": xp.cos(a)}

    def bad():
        return float(np.sin(to_host(a)).sum()), {"a": -xp.cos(a)}

    assert_grads_ok(directional_check(good, {"a": a}))
    assert directional_check(bad, {"a": a}) > 0.5
    np.testing.assert_allclose(to_host(a), a_host, rtol=0, atol=1e-15)  # put back (to rounding)
    with pytest.raises(TypeError, match="float64"):
        directional_check(good, {"a": to_xp(xp, a_host, dtype=np.float32)})


def _lin(n_in, n_out, rs, cls=Linear):
    layer = cls(n_in, n_out, init="normal", std=1.0, rng=rs, dtype=np.float64)
    layer.params["b"][...] = rs.standard_normal(n_out)
    return layer


def test_check_module_takes_and_returns_tuples(xp):
    rs = np.random.default_rng(4)
    net = on(xp, Sequential([Parallel([_lin(3, 2, rs), Tanh()]), Concat()]))
    x = (to_xp(xp, rs.standard_normal((4, 3))), to_xp(xp, rs.standard_normal((4, 5))))
    errors = check_module(net, x)
    assert set(errors) == {"x0", "x1", "0.0.W", "0.0.b"}
    assert_grads_ok(errors)
    fork = on(xp, Fork([_lin(3, 2, rs), Tanh()]))  # one input, a tuple of outputs
    errors = check_module(fork, x[0])
    assert set(errors) == {"x", "0.W", "0.b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("plant", ["fork-sum", "concat-split", "overwriting-grads"])
def test_check_module_catches_wrong_container_gradients(xp, plant):
    rs = np.random.default_rng(5)
    x = to_xp(xp, rs.standard_normal((4, 3)))
    if plant == "fork-sum":
        net, key = Sequential([ForkKeepsTheLastGradient([_lin(3, 2, rs), _lin(3, 2, rs)]), Concat()]), "x"
    elif plant == "concat-split":
        net, key = Sequential([Fork([_lin(3, 2, rs), _lin(3, 4, rs)]), ConcatSwapsTheSplit()]), "x"
    else:  # a layer used twice (shared weights): its two gradients must add
        shared = _lin(3, 3, rs, LinearOverwritesGrads)
        net, key = Sequential([Fork([shared, Sequential([Identity(), shared])]), Concat()]), "0.0.W"
    errors = check_module(on(xp, net), x)
    assert errors[key] > 1e-2, errors
