"""Tests for the layers: scratchgan.nn.layers (the reference) and the drop-in
versions of scratchgan.nn.fast, wherever both must satisfy the same contract.

Every backward pass is checked against centred finite differences of the
layer's *own* forward (``scratchgan.nn.gradcheck.check_module``) in float64,
over Hypothesis-drawn shapes (1-D to 4-D for the element-wise layers, one to
three leading axes for Linear and Maxout) and seeds; the rest pin down the
conventions a gradient check cannot see (gradients accumulate, maxout's
grouping and tie rule, dropout's mask and scaling, the overflow-free sigmoid,
the error messages). That each fast layer *equals* its reference is tested in
``tests/test_fast.py``.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from helpers import HostMaskRng, assert_grads_ok, on, requires_gpu, rng_for, to_host, to_xp
from scratchgan import nn
from scratchgan.nn import fast
from scratchgan.nn.gradcheck import check_module
from scratchgan.nn.layers import Dropout, LeakyReLU, Linear, Maxout, init_weight, sigmoid

sizes = st.integers(1, 16)
small = st.integers(1, 4)
seeds = st.integers(0, 2**32 - 1)
#: per-sample-free shapes of element-wise inputs: 1-D to 4-D, at most 256 entries
any_shape = st.lists(small, min_size=1, max_size=4).map(tuple)
#: leading axes of a Linear / Maxout input (…, n_in): one to three of them
leading = st.lists(small, min_size=1, max_size=3).map(tuple)
F64 = np.float64

#: the two implementations of every layer: the reference and the fast drop-in
IMPLS = [pytest.param(nn, id="ref"), pytest.param(fast, id="fast")]


def away_from_zero(x, eps=1e-3):
    """Shift every entry away from the kink at 0 so that |x| >= eps."""
    return x + np.where(x >= 0, eps, -eps)


def maxout_gap(x, W, b, n_units, n_pieces):
    """Smallest gap between the best and second-best piece of any unit
    (``x`` of shape (…, n_in))."""
    if n_pieces == 1:
        return np.inf
    x2 = x.reshape(-1, W.shape[0])
    z = (x2 @ W + b).reshape(x2.shape[0], n_pieces, n_units)
    top2 = np.sort(z, axis=1)[:, -2:, :]
    return float((top2[:, 1] - top2[:, 0]).min())


def make_linear(xp, n_in, n_out, rs, L=nn):
    layer = L.Linear(n_in, n_out, init="normal", std=1.0, rng=rs, dtype=F64)
    layer.params["b"][...] = rs.standard_normal(n_out)
    return on(xp, layer)


def make_maxout(xp, n_in, n_units, n_pieces, rs, L=nn):
    layer = L.Maxout(n_in, n_units, n_pieces, init="normal", std=1.0, rng=rs, dtype=F64)
    layer.params["b"][...] = rs.standard_normal(n_units * n_pieces)
    return on(xp, layer)


# ---------------------------------------------------------------------------
# Gradients against finite differences, every layer, any shape
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", IMPLS)
@given(lead=leading, n_in=sizes, n_out=sizes, seed=seeds)
def test_linear_gradients(xp, L, lead, n_in, n_out, seed):
    rs = np.random.default_rng(seed)
    layer = make_linear(xp, n_in, n_out, rs, L)
    x = to_xp(xp, rs.standard_normal(lead + (n_in,)))
    errors = check_module(layer, x, seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("L", IMPLS)
@given(lead=leading, n_in=sizes, n_units=sizes, n_pieces=st.integers(1, 5), seed=seeds)
def test_maxout_gradients(xp, L, lead, n_in, n_units, n_pieces, seed):
    rs = np.random.default_rng(seed)
    layer = make_maxout(xp, n_in, n_units, n_pieces, rs, L)
    x_host = rs.standard_normal(lead + (n_in,))
    W, b = to_host(layer.params["W"]), to_host(layer.params["b"])
    # A near tie would let a finite-difference step change the winner.
    assume(maxout_gap(x_host, W, b, n_units, n_pieces) >= 1e-4)
    errors = check_module(layer, to_xp(xp, x_host), seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("L", IMPLS)
@given(shape=any_shape, seed=seeds)
def test_relu_gradient(xp, L, shape, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, away_from_zero(rs.standard_normal(shape)))
    assert_grads_ok(check_module(L.ReLU(), x, seed=seed))


@pytest.mark.parametrize("L", IMPLS)
@given(shape=any_shape, slope=st.floats(0.0, 0.95), seed=seeds)
def test_leaky_relu_gradient(xp, L, shape, slope, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, away_from_zero(rs.standard_normal(shape)))
    assert_grads_ok(check_module(L.LeakyReLU(slope), x, seed=seed))


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("name", ["Tanh", "Sigmoid"])
@given(shape=any_shape, seed=seeds)
def test_tanh_sigmoid_gradients(xp, L, name, shape, seed):
    rs = np.random.default_rng(seed)
    # |x| <= 3 keeps the derivative >= 0.01: deep in saturation it is ~1e-5 and
    # finite differences (rounding error ~1e-10) cannot resolve it to 1e-6
    # relative; the saturated limits are tested exactly below.
    x = to_xp(xp, np.clip(2.0 * rs.standard_normal(shape), -3.0, 3.0))
    assert_grads_ok(check_module(getattr(L, name)(), x, seed=seed))


@pytest.mark.parametrize("L", IMPLS)
@given(shape=any_shape, p=st.floats(0.0, 0.9), train=st.booleans(), seed=seeds)
def test_dropout_gradient(xp, L, shape, p, train, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, rs.standard_normal(shape))
    # check_module re-seeds the layer's rng before every forward: a fixed mask.
    assert_grads_ok(check_module(L.Dropout(p), x, train=train, seed=seed))


# ---------------------------------------------------------------------------
# Gradients accumulate (reference and fast Linear and Maxout)
# ---------------------------------------------------------------------------
def _grads(layer):
    return {k: to_host(v).copy() for k, v in layer.grads.items()}


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("kind", ["Linear", "Maxout"])
def test_two_backward_passes_leave_the_sum_and_zero_grad_clears(xp, L, kind):
    rs = np.random.default_rng(0)
    layer = make_linear(xp, 5, 4, rs, L) if kind == "Linear" else make_maxout(xp, 5, 4, 3, rs, L)
    n_out = 4
    x1, x2 = to_xp(xp, rs.standard_normal((6, 5))), to_xp(xp, rs.standard_normal((3, 2, 5)))
    dy1, dy2 = to_xp(xp, rs.standard_normal((6, n_out))), to_xp(xp, rs.standard_normal((3, 2, n_out)))
    refs = dict(layer.grads)

    def one(x, dy):  # the gradient of one pair alone
        layer.zero_grad()
        layer.forward(x)
        dx = to_host(layer.backward(dy))
        return _grads(layer), dx

    g1, dx1 = one(x1, dy1)
    g2, dx2 = one(x2, dy2)
    layer.zero_grad()
    layer.forward(x1)
    np.testing.assert_array_equal(to_host(layer.backward(dy1)), dx1)
    layer.forward(x2)
    np.testing.assert_array_equal(to_host(layer.backward(dy2)), dx2)  # dx never accumulates
    for k in g1:
        assert np.any(g1[k] != 0) and np.any(g2[k] != 0)
        # (exactly the sum for the reference; the fast layers compute it as one
        # product over both passes, equal to rounding)
        np.testing.assert_allclose(to_host(layer.grads[k]), g1[k] + g2[k], rtol=1e-13, atol=1e-13)
        assert layer.grads[k] is refs[k]  # in place: optimisers hold references
    # a third backward on the same forward adds again (backward never changes the cache)
    layer.backward(dy2)
    for k in g1:
        np.testing.assert_allclose(to_host(layer.grads[k]), g1[k] + 2 * g2[k], rtol=1e-13, atol=1e-13)
    layer.zero_grad()
    for k in g1:
        assert layer.grads[k] is refs[k] and not bool(xp.any(layer.grads[k] != 0))
    # and after zero_grad one pair gives exactly its own gradient again
    layer.forward(x2)
    layer.backward(dy2)
    for k in g2:
        np.testing.assert_array_equal(to_host(layer.grads[k]), g2[k])


@pytest.mark.parametrize("L", IMPLS)
def test_param_grads_false_leaves_grads_alone(xp, L):
    rs = np.random.default_rng(1)
    layer = make_maxout(xp, 4, 3, 2, rs, L)
    x, dy = to_xp(xp, rs.standard_normal((5, 4))), to_xp(xp, rs.standard_normal((5, 3)))
    layer.zero_grad()
    layer.forward(x)
    dx_full = to_host(layer.backward(dy))
    before = _grads(layer)
    dx = layer.backward(dy, param_grads=False)
    np.testing.assert_array_equal(to_host(dx), dx_full)
    for k, v in before.items():
        np.testing.assert_array_equal(to_host(layer.grads[k]), v)


# ---------------------------------------------------------------------------
# Errors shared by every layer
# ---------------------------------------------------------------------------
LAYER_MAKERS = {
    "Linear": lambda L: L.Linear(3, 2, dtype=F64),
    "ReLU": lambda L: L.ReLU(),
    "LeakyReLU": lambda L: L.LeakyReLU(0.2),
    "Tanh": lambda L: L.Tanh(),
    "Sigmoid": lambda L: L.Sigmoid(),
    "Maxout": lambda L: L.Maxout(3, 2, 2, dtype=F64),
    "Dropout": lambda L: L.Dropout(0.5),
}
ALL_LAYERS = pytest.mark.parametrize("name", list(LAYER_MAKERS))


@pytest.mark.parametrize("L", IMPLS)
@ALL_LAYERS
def test_backward_before_forward_is_a_clear_error(xp, L, name):
    layer = on(xp, LAYER_MAKERS[name](L))
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(xp.ones((4, 3)))


@pytest.mark.parametrize("L", IMPLS)
@ALL_LAYERS
def test_wrong_dy_shape_is_a_value_error(xp, L, name):
    layer = on(xp, LAYER_MAKERS[name](L)).set_rng(rng_for(xp, 0))
    y = layer.forward(to_xp(xp, np.ones((4, 3))))
    with pytest.raises(ValueError, match=r"dy has shape \(4, 7\).*had shape"):
        layer.backward(xp.ones((4, 7)))
    with pytest.raises(ValueError, match="dy has shape"):
        layer.backward(xp.ones((y.shape[0] + 1, y.shape[1])))


@pytest.mark.parametrize("L", IMPLS)
@ALL_LAYERS
def test_need_dx_false_returns_none(xp, L, name):
    layer = on(xp, LAYER_MAKERS[name](L)).set_rng(rng_for(xp, 0))
    y = layer.forward(to_xp(xp, np.linspace(-1, 1, 12).reshape(4, 3)))
    assert layer.backward(xp.ones(y.shape), need_dx=False) is None


@pytest.mark.parametrize("L", IMPLS)
def test_shape_errors_name_the_layer_and_both_shapes(xp, L):
    layer = on(xp, L.Linear(4, 2))
    with pytest.raises(ValueError, match=r"^Linear\(4, 2\): expected input of shape \(batch, …, 4\), "
                                         r"got \(3, 5\)$"):
        layer.forward(xp.ones((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"Linear\(4, 2\): .*\(batch, …, 4\), got \(4,\)"):
        layer.forward(xp.ones(4, dtype=np.float32))  # no batch axis
    with pytest.raises(ValueError, match=r"Linear\(4, 2\): .*\(batch, …, 4\), got \(2, 3, 5\)"):
        layer.forward(xp.ones((2, 3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^Maxout\(3, 2, pieces=2\): expected input of shape "
                                         r"\(batch, …, 3\), got \(2, 4\)$"):
        on(xp, L.Maxout(3, 2, 2)).forward(xp.ones((2, 4), dtype=np.float32))


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------
def test_linear_uniform_init_fills_irange(xp):
    layer = on(xp, Linear(100, 200, irange=0.05, rng=0))
    W = to_host(layer.params["W"])
    assert W.shape == (100, 200) and W.dtype == np.float32
    assert np.all(np.abs(W) <= 0.05)
    assert W.max() > 0.049 and W.min() < -0.049  # fills the range ...
    assert abs(W.mean()) < 0.002  # ... evenly: U(-a, a) has mean 0
    assert W.std() == pytest.approx(0.05 / np.sqrt(3), rel=0.03)  # and std a/sqrt(3)
    assert np.all(to_host(layer.params["b"]) == 0)


def test_maxout_default_irange_is_the_papers(xp):
    W = to_host(on(xp, Maxout(50, 40, 5, rng=1)).params["W"])
    assert W.shape == (50, 200)
    assert np.abs(W).max() <= 0.005 and np.abs(W).max() > 0.0049


def test_init_weight_variants():
    n_in, n_out = 400, 300
    fans = dict(fan_in=n_in, fan_out=n_out)
    glorot = init_weight((n_in, n_out), "glorot", rng=0, dtype=F64, **fans)
    a = np.sqrt(6 / (n_in + n_out))
    assert np.abs(glorot).max() <= a and np.abs(glorot).max() > 0.99 * a
    he = init_weight((n_in, n_out), "he", rng=0, dtype=F64, **fans)
    assert he.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    normal = init_weight((n_in, n_out), "normal", std=0.3, rng=0, dtype=F64, **fans)
    assert normal.std() == pytest.approx(0.3, rel=0.02)
    assert np.all(init_weight((2, 3), "zeros", fan_in=2, fan_out=3) == 0)
    assert init_weight((2, 3), fan_in=2, fan_out=3).dtype == np.float32
    # any shape (a convolution's (C_out, C_in, k, k) too)
    assert init_weight((4, 3, 2, 2), "he", fan_in=12, fan_out=16, rng=0).shape == (4, 3, 2, 2)
    # reproducible from a seed or a Generator
    assert np.array_equal(init_weight((5, 4), rng=3, fan_in=5, fan_out=4),
                          init_weight((5, 4), rng=np.random.default_rng(3), fan_in=5, fan_out=4))
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        init_weight((2, 3), "xavier", fan_in=2, fan_out=3)
    with pytest.raises(TypeError):
        init_weight((2, 3), "glorot")  # the fans are required keywords


def test_linear_bias_init(xp):
    assert np.all(to_host(on(xp, Linear(3, 4, bias=-2.0)).params["b"]) == -2.0)
    b0 = np.array([1.0, 2.0, 3.0, 4.0])
    layer = on(xp, Linear(3, 4, bias=b0, dtype=F64))
    assert np.array_equal(to_host(layer.params["b"]), b0)
    b0[0] = 99.0  # the layer holds its own copy
    assert to_host(layer.params["b"])[0] == 1.0
    with pytest.raises(ValueError):
        Linear(3, 4, bias=np.zeros(5))


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_layer_sizes_must_be_positive_integers(L, bad):
    with pytest.raises(ValueError, match="positive integer"):
        L.Linear(bad, 3)
    with pytest.raises(ValueError, match="positive integer"):
        L.Maxout(3, bad, 2)


@pytest.mark.parametrize("L", IMPLS)
def test_linear_shapes_and_closed_form(xp, L):
    rs = np.random.default_rng(0)
    layer = make_linear(xp, 5, 3, rs, L)
    x, dy = rs.standard_normal((7, 5)), rs.standard_normal((7, 3))
    y = layer.forward(to_xp(xp, x))
    W, b = to_host(layer.params["W"]), to_host(layer.params["b"])
    assert y.shape == (7, 3)
    np.testing.assert_allclose(to_host(y), x @ W + b, rtol=1e-12)
    dW_ref, db_ref = layer.grads["W"], layer.grads["b"]
    layer.zero_grad()
    dx = layer.backward(to_xp(xp, dy))
    assert dx.shape == (7, 5)
    np.testing.assert_allclose(to_host(dx), dy @ W.T, rtol=1e-12)
    np.testing.assert_allclose(to_host(layer.grads["W"]), x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(to_host(layer.grads["b"]), dy.sum(axis=0), rtol=1e-12)
    # backward writes into the same gradient arrays (optimisers hold references) ...
    assert layer.grads["W"] is dW_ref and layer.grads["b"] is db_ref
    # ... and adds to them across calls
    layer.backward(to_xp(xp, dy))
    np.testing.assert_allclose(to_host(layer.grads["W"]), 2 * x.T @ dy, rtol=1e-12)


@pytest.mark.parametrize("L", IMPLS)
def test_linear_and_maxout_act_on_the_last_axis(xp, L):
    """(…, n_in) → (…, n_out): the same as the rows flattened."""
    rs = np.random.default_rng(3)
    for layer, n_out in ((make_linear(xp, 5, 3, rs, L), 3), (make_maxout(xp, 5, 3, 2, rs, L), 3)):
        x = rs.standard_normal((2, 3, 4, 5))
        y = layer.forward(to_xp(xp, x))
        assert y.shape == (2, 3, 4, n_out)
        assert layer.output_shape((3, 4, 5)) == (3, 4, n_out)
        flat = to_host(layer.forward(to_xp(xp, x.reshape(-1, 5))))
        np.testing.assert_allclose(to_host(y).reshape(-1, n_out), flat, rtol=1e-14)


def test_layer_to_dtype(xp):
    layer = on(xp, Linear(3, 2, rng=0)).to(dtype=F64)
    assert layer.params["W"].dtype == F64 and layer.grads["b"].dtype == F64
    assert layer.n_params == 3 * 2 + 2


# ---------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", IMPLS)
def test_relu_and_leaky_relu_values(xp, L):
    x = to_xp(xp, np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]]))
    np.testing.assert_array_equal(to_host(L.ReLU().forward(x)), [[0, 0, 0, 0.5, 3.0]])
    leaky = L.LeakyReLU(0.25)
    np.testing.assert_array_equal(to_host(leaky.forward(x)), [[-0.5, -0.125, 0, 0.5, 3.0]])
    dx = leaky.backward(xp.ones_like(x))
    np.testing.assert_array_equal(to_host(dx), [[0.25, 0.25, 0.25, 1, 1]])  # subgradient at 0: slope
    relu = L.ReLU()
    relu.forward(x)
    np.testing.assert_array_equal(to_host(relu.backward(xp.ones_like(x))), [[0, 0, 0, 1, 1]])


@pytest.mark.parametrize("slope", [-0.1, 1.0, 2.0])
def test_leaky_relu_rejects_bad_slope(slope):
    with pytest.raises(ValueError, match="slope must be in"):
        LeakyReLU(slope)


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name, low, high", [("Sigmoid", 0.0, 1.0), ("Tanh", -1.0, 1.0)])
def test_saturating_activations_at_extreme_inputs(xp, L, dtype, name, low, high):
    x = to_xp(xp, np.array([[-1e4, -1e3, -100.0, 0.0, 100.0, 1e3, 1e4]], dtype=dtype))
    layer = getattr(L, name)()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning fails the test
        y = layer.forward(x)
        dx = layer.backward(xp.ones_like(x))
    y, dx = to_host(y), to_host(dx)
    assert y.dtype == dtype and dx.dtype == dtype
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dx))
    assert y[0, 0] == low and y[0, -1] == high  # exact limits
    assert y[0, 1] == low and y[0, -2] == high
    assert y[0, 3] == (low + high) / 2
    assert dx[0, 0] == 0 and dx[0, -1] == 0  # the gradient's true limit, not NaN


@pytest.mark.parametrize("fn", [sigmoid, fast.fast_sigmoid], ids=["sigmoid", "fast_sigmoid"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_matches_the_textbook_formula(xp, fn, dtype):
    x = np.linspace(-30, 30, 121).astype(dtype)
    ref = 1.0 / (1.0 + np.exp(-x.astype(F64)))
    got = to_host(fn(to_xp(xp, x)))
    assert got.dtype == dtype
    # one exp, one add, one division (or reciprocal and product): a few roundings
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, ref, rtol=4 * eps, atol=0)


# ---------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", IMPLS)
def test_maxout_columns_are_piece_major(xp, L):
    """Unit j takes the max over columns j, j + n_units, j + 2·n_units, … (piece-major)."""
    layer = L.Maxout(1, 2, 3, dtype=F64)
    # columns:           piece 0: units 0 1 | piece 1: units 0 1 | piece 2: units 0 1
    layer.params["W"][...] = [[0.0, 5.0, 1.0, 2.0, 3.0, 7.0]]
    layer = on(xp, layer)
    x = to_xp(xp, np.array([[1.0], [-1.0]]))
    y = to_host(layer.forward(x))
    # row 0: unit 0 = max(0, 1, 3) (col 4), unit 1 = max(5, 2, 7) (col 5);
    # row 1: unit 0 = max(-0, -1, -3) (col 0), unit 1 = max(-5, -2, -7) (col 3).
    # pylearn2's unit-major grouping (unit j = columns 3j..3j+2) would give [[5, 7], [0, -2]].
    np.testing.assert_array_equal(y, [[3.0, 7.0], [0.0, -2.0]])
    dy = np.array([[1.0, 10.0], [100.0, 1000.0]])
    layer.zero_grad()
    dx = to_host(layer.backward(to_xp(xp, dy)))
    dz = np.array([[0, 0, 0, 0, 1, 10], [100, 0, 0, 1000, 0, 0]], dtype=F64)
    np.testing.assert_array_equal(to_host(layer.grads["b"]), dz.sum(axis=0))
    np.testing.assert_array_equal(to_host(layer.grads["W"]), np.array([[1.0, -1.0]]) @ dz)
    np.testing.assert_array_equal(dx, dz @ np.array([[0.0, 5.0, 1.0, 2.0, 3.0, 7.0]]).T)


def test_maxout_from_unit_major_matches_pylearn2_grouping(xp):
    """Parameters in pylearn2's order (unit j = columns j·p … j·p + p − 1),
    converted with ``from_unit_major``, give pylearn2's outputs."""
    rs = np.random.default_rng(5)
    n_in, units, pieces = 4, 3, 5
    W_pl2, b_pl2 = rs.standard_normal((n_in, units * pieces)), rs.standard_normal(units * pieces)
    x = rs.standard_normal((6, n_in))
    expected = (x @ W_pl2 + b_pl2).reshape(6, units, pieces).max(axis=2)  # pylearn2's fprop
    layer = Maxout(n_in, units, pieces, dtype=F64)
    layer.params["W"][...] = Maxout.from_unit_major(W_pl2, units, pieces)
    layer.params["b"][...] = Maxout.from_unit_major(b_pl2, units, pieces)
    np.testing.assert_allclose(to_host(on(xp, layer).forward(to_xp(xp, x))), expected, rtol=1e-14)
    with pytest.raises(ValueError, match="columns"):
        Maxout.from_unit_major(W_pl2[:, :-1], units, pieces)


@pytest.mark.parametrize("L", IMPLS)
def test_maxout_ties_go_to_the_first_piece(xp, L):
    layer = L.Maxout(1, 3, 3, dtype=F64)
    #  per unit (unit-major): unit 0: tie 0,1 | unit 1: tie 1,2 | unit 2: three-way tie
    W_units = np.array([[3.0, 3.0, 1.0, 0.0, 2.0, 2.0, 4.0, 4.0, 4.0]])
    layer.params["W"][...] = Maxout.from_unit_major(W_units, 3, 3)
    layer = on(xp, layer)
    y = layer.forward(to_xp(xp, np.array([[1.0]])))
    np.testing.assert_array_equal(to_host(y), [[3.0, 2.0, 4.0]])
    layer.zero_grad()
    layer.backward(to_xp(xp, np.array([[1.0, 2.0, 3.0]])))
    # only the first maximal piece of each unit (written per unit, then reordered)
    expected = Maxout.from_unit_major(np.array([[1.0, 0, 0, 0, 2.0, 0, 3.0, 0, 0]]), 3, 3)
    np.testing.assert_array_equal(to_host(layer.grads["W"]), expected)
    np.testing.assert_array_equal(to_host(layer.grads["b"]), expected[0])


@pytest.mark.parametrize("L", IMPLS)
def test_maxout_promotes_dtypes_like_linear(xp, L):
    """A float64 input to a float32 layer gives float64 outputs, as ``x @ W`` does."""
    x = xp.ones((3, 6), dtype=np.float64)
    for layer in (L.Maxout(6, 4, 5, rng=0), L.Linear(6, 4, rng=0)):
        layer = on(xp, layer)
        assert layer.forward(x).dtype == np.float64
        layer.zero_grad()
        assert layer.backward(xp.ones((3, 4))).dtype == np.float64
        assert layer.grads["W"].dtype == np.float32
        assert float(layer.grads["b"].sum()) == 3 * 4  # every row routes dy = 1 once per unit


@pytest.mark.parametrize("L", IMPLS)
def test_maxout_shapes(xp, L):
    layer = on(xp, L.Maxout(6, 4, 5, rng=0))
    y = layer.forward(xp.ones((3, 6), dtype=np.float32))
    assert y.shape == (3, 4) and y.dtype == np.float32
    assert layer.params["W"].shape == (6, 20) and layer.params["b"].shape == (20,)
    assert layer.output_shape((6,)) == (4,)
    assert layer.backward(xp.ones((3, 4), dtype=np.float32)).shape == (3, 6)


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_backward_applies_the_forward_mask(xp, dtype, p):
    rs = np.random.default_rng(1)
    x = to_xp(xp, away_from_zero(rs.standard_normal((50, 40))).astype(dtype))
    dy = to_xp(xp, rs.standard_normal((50, 40)).astype(dtype))
    layer = Dropout(p, rng=rng_for(xp, 7))
    y = layer.forward(x)
    dx = layer.backward(dy)
    # The same draw, made independently: kept with probability q = 1 - p, divided by q.
    kept = rng_for(xp, 7).random(x.shape, dtype=np.float32) < (1 - p)
    q = dtype(1 - p)
    assert y.dtype == dtype and dx.dtype == dtype
    assert bool(xp.all(y == xp.where(kept, x / q, 0)))
    assert bool(xp.all(dx == xp.where(kept, dy / q, 0)))
    assert 0 < int(kept.sum()) < kept.size  # both kinds of unit occur


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_scales_kept_units(xp, L, p):
    x = to_xp(xp, np.random.default_rng(0).uniform(1, 2, size=(100, 30)))
    y = to_host(L.Dropout(p, rng=rng_for(xp, 3)).forward(x))
    x = to_host(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    assert kept.mean() == pytest.approx(1 - p, abs=0.03)


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_preserves_the_mean(xp, L, p):
    n = 200_000
    y = to_host(L.Dropout(p, rng=rng_for(xp, 11)).forward(xp.ones((400, n // 400))))
    # each y is 0 or 1/q: mean 1, standard deviation sqrt(p/q); allow 5 standard errors
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)


@pytest.mark.parametrize("L", IMPLS)
def test_dropout_is_the_identity_in_eval_mode(xp, L):
    x = to_xp(xp, np.arange(12.0).reshape(3, 4))
    layer = L.Dropout(0.5)  # no rng needed when not training
    assert layer.forward(x, train=False) is x
    dy = to_xp(xp, np.ones((3, 4)))
    assert bool(xp.all(layer.backward(dy) == dy))


@pytest.mark.parametrize("L", IMPLS)
def test_dropout_with_p_zero_is_the_identity(xp, L):
    x = to_xp(xp, np.arange(12.0).reshape(3, 4))
    layer = L.Dropout(0.0)
    assert layer.forward(x, train=True) is x
    assert bool(xp.all(layer.backward(x) == x))


@pytest.mark.parametrize("L", IMPLS)
def test_dropout_never_modifies_its_arguments(xp, L):
    x_host = np.random.default_rng(0).standard_normal((20, 10))
    x, dy = to_xp(xp, x_host), to_xp(xp, x_host * 2)
    layer = L.Dropout(0.5, rng=rng_for(xp, 0))
    y = layer.forward(x)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(to_host(x), x_host)
    np.testing.assert_array_equal(to_host(dy), 2 * x_host)
    assert y is not x and dx is not dy


@pytest.mark.parametrize("L", IMPLS)
def test_dropout_masks_are_reproducible_from_the_injected_rng(xp, L):
    x = xp.ones((30, 30))
    a = to_host(L.Dropout(0.5, rng=rng_for(xp, 5)).forward(x))
    b = to_host(L.Dropout(0.5, rng=rng_for(xp, 5)).forward(x))
    c = to_host(L.Dropout(0.5, rng=rng_for(xp, 6)).forward(x))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    layer = L.Dropout(0.5, rng=rng_for(xp, 5))
    first, second = to_host(layer.forward(x)), to_host(layer.forward(x))
    assert np.array_equal(first, a) and not np.array_equal(first, second)  # a fresh mask per call


@pytest.mark.parametrize("L", IMPLS)
def test_dropout_without_rng_is_a_clear_error(xp, L):
    with pytest.raises(RuntimeError, match=r"Dropout needs a random generator.*set_rng"):
        L.Dropout(0.5).forward(xp.ones((2, 2)))


def test_dropout_rng_on_the_wrong_device_is_a_clear_error():
    class FakeGpuRng:  # looks like a CuPy generator
        __module__ = "cupy.random._generator"

    layer = Dropout(0.5, rng=FakeGpuRng())
    with pytest.raises(ValueError, match="live on different devices"):
        layer.forward(np.ones((2, 2)))


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_invalid_p(p):
    with pytest.raises(ValueError, match="probability p must be in"):
        Dropout(p)


# ---------------------------------------------------------------------------
# NumPy / CuPy parity (inputs and parameters drawn on the host)
# ---------------------------------------------------------------------------
def _parity_layer(L, name, dtype, rs):
    if name == "Linear":
        layer = L.Linear(6, 5, init="normal", std=1.0, rng=rs, dtype=dtype)
        layer.params["b"][...] = rs.standard_normal(5)
        return layer
    if name == "Maxout":
        layer = L.Maxout(6, 4, 3, init="normal", std=1.0, rng=rs, dtype=dtype)
        layer.params["b"][...] = rs.standard_normal(12)
        return layer
    return LAYER_MAKERS[name](L)


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@ALL_LAYERS
def test_numpy_cupy_parity(L, name, dtype, tol):
    import cupy

    for seed in range(100):  # first seed whose maxout pieces are well separated
        rs = np.random.default_rng(seed)
        host = _parity_layer(L, name, dtype, rs)
        x = away_from_zero(rs.standard_normal((2, 4, 6))).astype(dtype)
        if name != "Maxout" or maxout_gap(x, host.params["W"], host.params["b"], 4, 3) > 1e-3:
            break
    device = copy.deepcopy(host).to("gpu")
    # the same mask on both: drawn on the host (fast Dropout takes a non-NumPy
    # generator's random floats, so the host layer gets the stand-in too)
    if name == "Dropout":
        host.rng, device.rng = HostMaskRng(seed, np), HostMaskRng(seed, cupy)
    host.zero_grad()
    device.zero_grad()
    y_h = host.forward(x)
    y_d = device.forward(cupy.asarray(x))
    dy = rs.standard_normal(y_h.shape).astype(dtype)
    dx_h = host.backward(dy)
    dx_d = device.backward(cupy.asarray(dy))
    assert isinstance(y_d, cupy.ndarray) and y_d.dtype == dtype
    np.testing.assert_allclose(to_host(y_d), y_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_host(dx_d), dx_h, rtol=tol, atol=tol)
    for k in host.grads:
        np.testing.assert_allclose(to_host(device.grads[k]), host.grads[k], rtol=tol, atol=tol)
