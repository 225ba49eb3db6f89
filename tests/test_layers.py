"""Tests for scratchgan.layers.

Every backward pass is checked against centred finite differences of the
layer's *own* forward (``scratchgan.gradcheck.check_layer``) in float64, over
Hypothesis-drawn shapes and seeds; the rest pin down the conventions a
gradient check cannot see (maxout's grouping and tie rule, dropout's mask and
scaling, the overflow-free sigmoid, the error messages).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from helpers import HostMaskRng, assert_grads_ok, on, requires_gpu, rng_for, to_host, to_xp
from scratchgan.gradcheck import check_layer
from scratchgan.layers import (
    Dropout,
    LeakyReLU,
    Linear,
    Maxout,
    ReLU,
    Sigmoid,
    Tanh,
    bernoulli,
    init_weight,
    sigmoid,
)

sizes = st.integers(1, 16)
seeds = st.integers(0, 2**32 - 1)
F64 = np.float64


def away_from_zero(x, eps=1e-3):
    """Shift every entry away from the kink at 0 so that |x| >= eps."""
    return x + np.where(x >= 0, eps, -eps)


def maxout_gap(x, W, b, n_units, n_pieces):
    """Smallest gap between the best and second-best piece of any unit."""
    if n_pieces == 1:
        return np.inf
    z = (x @ W + b).reshape(x.shape[0], n_pieces, n_units)
    top2 = np.sort(z, axis=1)[:, -2:, :]
    return float((top2[:, 1] - top2[:, 0]).min())


def make_linear(xp, n_in, n_out, rs):
    layer = Linear(n_in, n_out, init="normal", std=1.0, rng=rs, dtype=F64)
    layer.params["b"][...] = rs.standard_normal(n_out)
    return on(xp, layer)


def make_maxout(xp, n_in, n_units, n_pieces, rs):
    layer = Maxout(n_in, n_units, n_pieces, init="normal", std=1.0, rng=rs, dtype=F64)
    layer.params["b"][...] = rs.standard_normal(n_units * n_pieces)
    return on(xp, layer)


# ---------------------------------------------------------------------------
# Gradients against finite differences, every layer
# ---------------------------------------------------------------------------
@given(m=sizes, n_in=sizes, n_out=sizes, seed=seeds)
def test_linear_gradients(xp, m, n_in, n_out, seed):
    rs = np.random.default_rng(seed)
    layer = make_linear(xp, n_in, n_out, rs)
    x = to_xp(xp, rs.standard_normal((m, n_in)))
    errors = check_layer(layer, x, seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)


@given(m=sizes, n=sizes, seed=seeds)
def test_relu_gradient(xp, m, n, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, away_from_zero(rs.standard_normal((m, n))))
    assert_grads_ok(check_layer(ReLU(), x, seed=seed))


@given(m=sizes, n=sizes, slope=st.floats(0.0, 0.95), seed=seeds)
def test_leaky_relu_gradient(xp, m, n, slope, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, away_from_zero(rs.standard_normal((m, n))))
    assert_grads_ok(check_layer(LeakyReLU(slope), x, seed=seed))


@pytest.mark.parametrize("cls", [Tanh, Sigmoid])
@given(m=sizes, n=sizes, seed=seeds)
def test_tanh_sigmoid_gradients(xp, cls, m, n, seed):
    rs = np.random.default_rng(seed)
    # |x| <= 3 keeps the derivative >= 0.01: deep in saturation it is ~1e-5 and
    # finite differences (rounding error ~1e-10) cannot resolve it to 1e-6
    # relative; the saturated limits are tested exactly below.
    x = to_xp(xp, np.clip(2.0 * rs.standard_normal((m, n)), -3.0, 3.0))
    assert_grads_ok(check_layer(cls(), x, seed=seed))


@given(m=sizes, n_in=sizes, n_units=sizes, n_pieces=st.integers(1, 5), seed=seeds)
def test_maxout_gradients(xp, m, n_in, n_units, n_pieces, seed):
    rs = np.random.default_rng(seed)
    layer = make_maxout(xp, n_in, n_units, n_pieces, rs)
    x_host = rs.standard_normal((m, n_in))
    W, b = to_host(layer.params["W"]), to_host(layer.params["b"])
    # A near tie would let a finite-difference step change the winner.
    assume(maxout_gap(x_host, W, b, n_units, n_pieces) >= 1e-4)
    errors = check_layer(layer, to_xp(xp, x_host), seed=seed)
    assert set(errors) == {"x", "W", "b"}
    assert_grads_ok(errors)


@given(m=sizes, n=sizes, p=st.floats(0.0, 0.9), train=st.booleans(), seed=seeds)
def test_dropout_gradient(xp, m, n, p, train, seed):
    rs = np.random.default_rng(seed)
    x = to_xp(xp, rs.standard_normal((m, n)))
    # check_layer re-seeds the layer's rng before every forward: a fixed mask.
    assert_grads_ok(check_layer(Dropout(p), x, train=train, seed=seed))


# ---------------------------------------------------------------------------
# Errors shared by every layer
# ---------------------------------------------------------------------------
ALL_LAYERS = [
    pytest.param(lambda: Linear(3, 2, dtype=F64), id="Linear"),
    pytest.param(lambda: ReLU(), id="ReLU"),
    pytest.param(lambda: LeakyReLU(0.2), id="LeakyReLU"),
    pytest.param(lambda: Tanh(), id="Tanh"),
    pytest.param(lambda: Sigmoid(), id="Sigmoid"),
    pytest.param(lambda: Maxout(3, 2, 2, dtype=F64), id="Maxout"),
    pytest.param(lambda: Dropout(0.5), id="Dropout"),
]


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_backward_before_forward_is_a_clear_error(xp, make):
    layer = on(xp, make())
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(xp.ones((4, 3)))


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_wrong_dy_shape_is_a_value_error(xp, make):
    layer = on(xp, make())
    if isinstance(layer, Dropout):
        layer.rng = rng_for(xp, 0)
    y = layer.forward(to_xp(xp, np.ones((4, 3))))
    with pytest.raises(ValueError, match=r"dy has shape \(4, 7\).*had shape"):
        layer.backward(xp.ones((4, 7)))
    with pytest.raises(ValueError, match="dy has shape"):
        layer.backward(xp.ones((y.shape[0] + 1, y.shape[1])))


@pytest.mark.parametrize("make", ALL_LAYERS)
def test_need_dx_false_returns_none(xp, make):
    layer = on(xp, make())
    if isinstance(layer, Dropout):
        layer.rng = rng_for(xp, 0)
    y = layer.forward(to_xp(xp, np.linspace(-1, 1, 12).reshape(4, 3)))
    assert layer.backward(xp.ones(y.shape), need_dx=False) is None


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
    glorot = init_weight(n_in, n_out, "glorot", rng=0, dtype=F64)
    a = np.sqrt(6 / (n_in + n_out))
    assert np.abs(glorot).max() <= a and np.abs(glorot).max() > 0.99 * a
    he = init_weight(n_in, n_out, "he", rng=0, dtype=F64)
    assert he.std() == pytest.approx(np.sqrt(2 / n_in), rel=0.02)
    normal = init_weight(n_in, n_out, "normal", std=0.3, rng=0, dtype=F64)
    assert normal.std() == pytest.approx(0.3, rel=0.02)
    assert np.all(init_weight(2, 3, "zeros") == 0)
    assert init_weight(2, 3).dtype == np.float32
    # reproducible from a seed or a Generator
    assert np.array_equal(init_weight(5, 4, rng=3), init_weight(5, 4, rng=np.random.default_rng(3)))
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        init_weight(2, 3, "xavier")


def test_linear_bias_init(xp):
    assert np.all(to_host(on(xp, Linear(3, 4, bias=-2.0)).params["b"]) == -2.0)
    b0 = np.array([1.0, 2.0, 3.0, 4.0])
    layer = on(xp, Linear(3, 4, bias=b0, dtype=F64))
    assert np.array_equal(to_host(layer.params["b"]), b0)
    b0[0] = 99.0  # the layer holds its own copy
    assert to_host(layer.params["b"])[0] == 1.0
    with pytest.raises(ValueError):
        Linear(3, 4, bias=np.zeros(5))


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_layer_sizes_must_be_positive_integers(bad):
    with pytest.raises(ValueError, match="positive integer"):
        Linear(bad, 3)
    with pytest.raises(ValueError, match="positive integer"):
        Maxout(3, bad, 2)


def test_linear_shapes_and_closed_form(xp):
    rs = np.random.default_rng(0)
    layer = make_linear(xp, 5, 3, rs)
    x, dy = rs.standard_normal((7, 5)), rs.standard_normal((7, 3))
    y = layer.forward(to_xp(xp, x))
    W, b = to_host(layer.params["W"]), to_host(layer.params["b"])
    assert y.shape == (7, 3)
    np.testing.assert_allclose(to_host(y), x @ W + b, rtol=1e-12)
    dW_ref, db_ref = layer.grads["W"], layer.grads["b"]
    dx = layer.backward(to_xp(xp, dy))
    assert dx.shape == (7, 5)
    np.testing.assert_allclose(to_host(dx), dy @ W.T, rtol=1e-12)
    np.testing.assert_allclose(to_host(layer.grads["W"]), x.T @ dy, rtol=1e-12)
    np.testing.assert_allclose(to_host(layer.grads["b"]), dy.sum(axis=0), rtol=1e-12)
    # backward overwrites the same gradient arrays (optimisers hold references) ...
    assert layer.grads["W"] is dW_ref and layer.grads["b"] is db_ref
    # ... and does not accumulate across calls
    layer.backward(to_xp(xp, dy))
    np.testing.assert_allclose(to_host(layer.grads["W"]), x.T @ dy, rtol=1e-12)


def test_linear_rejects_wrong_input_shape(xp):
    layer = on(xp, Linear(4, 2))
    with pytest.raises(ValueError, match=r"expected 4 input features, got x of shape \(3, 5\)"):
        layer.forward(xp.ones((3, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"2-D input.*\(4,\)"):
        layer.forward(xp.ones(4, dtype=np.float32))
    with pytest.raises(ValueError, match="expected 3 input features"):
        on(xp, Maxout(3, 2, 2)).forward(xp.ones((2, 4), dtype=np.float32))


def test_layer_to_dtype(xp):
    layer = on(xp, Linear(3, 2, rng=0)).to(dtype=F64)
    assert layer.params["W"].dtype == F64 and layer.grads["b"].dtype == F64
    assert layer.n_params == 3 * 2 + 2


# ---------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------
def test_relu_and_leaky_relu_values(xp):
    x = to_xp(xp, np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]]))
    np.testing.assert_array_equal(to_host(ReLU().forward(x)), [[0, 0, 0, 0.5, 3.0]])
    leaky = LeakyReLU(0.25)
    np.testing.assert_array_equal(to_host(leaky.forward(x)), [[-0.5, -0.125, 0, 0.5, 3.0]])
    dx = leaky.backward(xp.ones_like(x))
    np.testing.assert_array_equal(to_host(dx), [[0.25, 0.25, 0.25, 1, 1]])  # subgradient at 0: slope
    relu = ReLU()
    relu.forward(x)
    np.testing.assert_array_equal(to_host(relu.backward(xp.ones_like(x))), [[0, 0, 0, 1, 1]])


@pytest.mark.parametrize("slope", [-0.1, 1.0, 2.0])
def test_leaky_relu_rejects_bad_slope(slope):
    with pytest.raises(ValueError, match="slope must be in"):
        LeakyReLU(slope)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cls, low, high", [(Sigmoid, 0.0, 1.0), (Tanh, -1.0, 1.0)])
def test_saturating_activations_at_extreme_inputs(xp, dtype, cls, low, high):
    x = to_xp(xp, np.array([[-1e4, -1e3, -100.0, 0.0, 100.0, 1e3, 1e4]], dtype=dtype))
    layer = cls()
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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_matches_the_textbook_formula(xp, dtype):
    x = np.linspace(-30, 30, 121).astype(dtype)
    ref = 1.0 / (1.0 + np.exp(-x.astype(F64)))
    got = to_host(sigmoid(to_xp(xp, x)))
    assert got.dtype == dtype
    # one exp, one add, one reciprocal, one product: a few roundings (measured at most
    # 2.3 eps in float32 over [-87, 87] and 1.6 eps in float64)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(got, ref, rtol=4 * eps, atol=0)


# ---------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------
def test_maxout_columns_are_piece_major(xp):
    """Unit j takes the max over columns j, j + n_units, j + 2·n_units, … (piece-major)."""
    layer = Maxout(1, 2, 3, dtype=F64)
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


def test_maxout_ties_go_to_the_first_piece(xp):
    layer = Maxout(1, 3, 3, dtype=F64)
    #  per unit (unit-major): unit 0: tie 0,1 | unit 1: tie 1,2 | unit 2: three-way tie
    W_units = np.array([[3.0, 3.0, 1.0, 0.0, 2.0, 2.0, 4.0, 4.0, 4.0]])
    layer.params["W"][...] = Maxout.from_unit_major(W_units, 3, 3)
    layer = on(xp, layer)
    y = layer.forward(to_xp(xp, np.array([[1.0]])))
    np.testing.assert_array_equal(to_host(y), [[3.0, 2.0, 4.0]])
    layer.backward(to_xp(xp, np.array([[1.0, 2.0, 3.0]])))
    # only the first maximal piece of each unit (written per unit, then reordered)
    expected = Maxout.from_unit_major(np.array([[1.0, 0, 0, 0, 2.0, 0, 3.0, 0, 0]]), 3, 3)
    np.testing.assert_array_equal(to_host(layer.grads["W"]), expected)
    np.testing.assert_array_equal(to_host(layer.grads["b"]), expected[0])


def test_maxout_promotes_dtypes_like_linear(xp):
    """A float64 input to a float32 layer gives float64 outputs, as ``x @ W`` does."""
    x = xp.ones((3, 6), dtype=np.float64)
    for layer in (Maxout(6, 4, 5, rng=0), Linear(6, 4, rng=0)):
        assert on(xp, layer).forward(x).dtype == np.float64


def test_maxout_shapes(xp):
    layer = on(xp, Maxout(6, 4, 5, rng=0))
    y = layer.forward(xp.ones((3, 6), dtype=np.float32))
    assert y.shape == (3, 4) and y.dtype == np.float32
    assert layer.params["W"].shape == (6, 20) and layer.params["b"].shape == (20,)
    assert layer.output_features(6) == 4
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
    # The same draw, made independently: kept with probability 1 - p, scaled by 1/(1 - p).
    kept = bernoulli(rng_for(xp, 7), x.shape, 1 - p)
    scale = dtype(1 / (1 - p))
    assert y.dtype == dtype and dx.dtype == dtype
    assert bool(xp.all(y == xp.where(kept, x * scale, 0)))
    assert bool(xp.all(dx == xp.where(kept, dy * scale, 0)))
    assert 0 < int(kept.sum()) < kept.size  # both kinds of unit occur


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_dropout_scales_kept_units(xp, p):
    x = to_xp(xp, np.random.default_rng(0).uniform(1, 2, size=(100, 30)))
    y = to_host(Dropout(p, rng=rng_for(xp, 3)).forward(x))
    x = to_host(x)
    kept = y != 0
    np.testing.assert_allclose(y[kept], x[kept] / (1 - p), rtol=1e-15)
    assert kept.mean() == pytest.approx(1 - p, abs=0.03)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_dropout_preserves_the_mean(xp, p):
    n = 200_000
    y = to_host(Dropout(p, rng=rng_for(xp, 11)).forward(xp.ones((400, n // 400))))
    # each y is 0 or 1/q: mean 1, standard deviation sqrt(p/q); allow 5 standard errors
    assert abs(y.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)


def test_dropout_is_the_identity_in_eval_mode(xp):
    x = to_xp(xp, np.arange(12.0).reshape(3, 4))
    layer = Dropout(0.5)  # no rng needed when not training
    assert layer.forward(x, train=False) is x
    dy = to_xp(xp, np.ones((3, 4)))
    assert bool(xp.all(layer.backward(dy) == dy))


def test_dropout_with_p_zero_is_the_identity(xp):
    x = to_xp(xp, np.arange(12.0).reshape(3, 4))
    layer = Dropout(0.0)
    assert layer.forward(x, train=True) is x
    assert bool(xp.all(layer.backward(x) == x))


def test_dropout_never_modifies_its_arguments(xp):
    x_host = np.random.default_rng(0).standard_normal((20, 10))
    x, dy = to_xp(xp, x_host), to_xp(xp, x_host * 2)
    layer = Dropout(0.5, rng=rng_for(xp, 0))
    y = layer.forward(x)
    dx = layer.backward(dy)
    np.testing.assert_array_equal(to_host(x), x_host)
    np.testing.assert_array_equal(to_host(dy), 2 * x_host)
    assert y is not x and dx is not dy


def test_dropout_masks_are_reproducible_from_the_injected_rng(xp):
    x = xp.ones((30, 30))
    a = to_host(Dropout(0.5, rng=rng_for(xp, 5)).forward(x))
    b = to_host(Dropout(0.5, rng=rng_for(xp, 5)).forward(x))
    c = to_host(Dropout(0.5, rng=rng_for(xp, 6)).forward(x))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    layer = Dropout(0.5, rng=rng_for(xp, 5))
    first, second = to_host(layer.forward(x)), to_host(layer.forward(x))
    assert np.array_equal(first, a) and not np.array_equal(first, second)  # a fresh mask per call


def test_dropout_without_rng_is_a_clear_error(xp):
    with pytest.raises(RuntimeError, match=r"Dropout needs a random generator.*set_rng"):
        Dropout(0.5).forward(xp.ones((2, 2)))


@pytest.mark.parametrize("q", [0.0, 0.2, 0.5, 0.8, 1.0])
def test_bernoulli_frequency_and_pairs(xp, q):
    """P(True) = q, and neighbours (the two halves of one 64-bit word on the
    CPU) are independent: P(both) = q²."""
    n = 400_000
    k = to_host(bernoulli(rng_for(xp, 11), (n // 2, 2), q))
    assert k.dtype == bool and k.shape == (n // 2, 2)
    sd = max(np.sqrt(q * (1 - q) / n), 1e-12)
    assert abs(k.mean() - q) < 5 * sd
    both = (k[:, 0] & k[:, 1]).mean()
    assert abs(both - q * q) < 5 * max(np.sqrt(q * q * (1 - q * q) / (n // 2)), 1e-12)


def test_bernoulli_numpy_compares_raw_words():
    """The NumPy draw is ``word < round(q·2³²)`` over consecutive 32-bit
    halves of the bit generator's 64-bit outputs (odd sizes drop the last half)."""
    q = 0.3
    got = bernoulli(np.random.default_rng(4), (3, 5), q)
    words = np.random.default_rng(4).bit_generator.random_raw(8).view(np.uint32)[:15]
    np.testing.assert_array_equal(got, (words < round(q * 2**32)).reshape(3, 5))


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan")])
def test_bernoulli_rejects_q_outside_unit_interval(q):
    with pytest.raises(ValueError, match="q must be in"):
        bernoulli(np.random.default_rng(0), (2,), q)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_invalid_p(p):
    with pytest.raises(ValueError, match="probability p must be in"):
        Dropout(p)


# ---------------------------------------------------------------------------
# NumPy / CuPy parity (inputs and parameters drawn on the host)
# ---------------------------------------------------------------------------
def _parity_layer(name, dtype, rs):
    if name == "Linear":
        layer = Linear(6, 5, init="normal", std=1.0, rng=rs, dtype=dtype)
        layer.params["b"][...] = rs.standard_normal(5)
        return layer, 6
    if name == "Maxout":
        layer = Maxout(6, 4, 3, init="normal", std=1.0, rng=rs, dtype=dtype)
        layer.params["b"][...] = rs.standard_normal(12)
        return layer, 6
    return {"ReLU": ReLU(), "LeakyReLU": LeakyReLU(0.2), "Tanh": Tanh(),
            "Sigmoid": Sigmoid(), "Dropout": Dropout(0.5)}[name], 6


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize(
    "name", ["Linear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Maxout", "Dropout"]
)
def test_numpy_cupy_parity(name, dtype, tol):
    import cupy

    for seed in range(100):  # first seed whose maxout pieces are well separated
        rs = np.random.default_rng(seed)
        host, n_in = _parity_layer(name, dtype, rs)
        x = away_from_zero(rs.standard_normal((8, n_in))).astype(dtype)
        if name != "Maxout" or maxout_gap(x, host.params["W"], host.params["b"], 4, 3) > 1e-3:
            break
    device = copy.deepcopy(host).to("gpu")
    if isinstance(host, Dropout):  # the same mask on both: drawn on the host
        host.rng, device.rng = HostMaskRng(seed, np), HostMaskRng(seed, cupy)
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
