"""Tests for scratchgan.nn.containers: Sequential, Parallel, Fork, Concat,
Identity and skip_concat — backprop through whole networks, parameter names,
accumulation, summaries and state.

The chains are shaped like the paper's (docs/paper.md §1–2): the
discriminator is Dropout(0.2) → Maxout → Dropout(0.5) → Maxout → Dropout(0.5)
→ Linear, the generator Linear → ReLU → Linear → ReLU → Linear → Sigmoid, with
small widths so that finite differences stay cheap; each is built from the
reference layers and from the fast ones. The other containers are checked as
wholes with ``check_module`` (tuples of inputs, tuples of gradients).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from helpers import HostMaskRng, assert_grads_ok, on, requires_gpu, rng_for, to_host, to_xp
from scratchgan import nn
from scratchgan.nn import fast
from scratchgan.nn.containers import Concat, Fork, Identity, Parallel, Sequential
from scratchgan.nn.gradcheck import check_module, directional_check

F64 = np.float64
IMPLS = [pytest.param(nn, id="ref"), pytest.param(fast, id="fast")]


def paper_D(n_in, units, pieces, *, rng=0, dtype=F64, init="normal", std=1.0, L=nn):
    """The paper's MNIST discriminator layout (its widths are 784, 240x5, 240x5)."""
    rs = np.random.default_rng(rng)
    return L.Sequential([
        L.Dropout(0.2),
        L.Maxout(n_in, units, pieces, init=init, std=std, rng=rs, dtype=dtype),
        L.Dropout(0.5),
        L.Maxout(units, units, pieces, init=init, std=std, rng=rs, dtype=dtype),
        L.Dropout(0.5),
        L.Linear(units, 1, init=init, std=std, rng=rs, dtype=dtype),
    ])


def paper_G(n_z, hidden, n_out, *, rng=0, dtype=F64, init="normal", std=1.0, L=nn):
    """The paper's MNIST generator layout (its widths are 100, 1200, 1200, 784)."""
    rs = np.random.default_rng(rng)
    return L.Sequential([
        L.Linear(n_z, hidden, init=init, std=std, rng=rs, dtype=dtype),
        L.ReLU(),
        L.Linear(hidden, hidden, init=init, std=std, rng=rs, dtype=dtype),
        L.ReLU(),
        L.Linear(hidden, n_out, init=init, std=std, rng=rs, dtype=dtype),
        L.Sigmoid(),
    ])


def randomise_biases(net, seed):
    """Non-zero biases (the constructors start them at 0), set on the host."""
    rs = np.random.default_rng(seed)
    for k, v in net.parameters().items():
        if k.endswith("b"):
            v[...] = 0.5 * rs.standard_normal(v.shape)
    return net


def lin(n_in, n_out, rs, L=nn):
    layer = L.Linear(n_in, n_out, init="normal", std=1.0, rng=rs, dtype=F64)
    layer.params["b"][...] = rs.standard_normal(n_out)
    return layer


def host_grads(net):
    return {k: to_host(v).copy() for k, v in net.gradients().items()}


# ---------------------------------------------------------------------------
# Whole-network gradient checks: the paper's chains
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", IMPLS)
def test_discriminator_gradient_check(xp, L):
    D = on(xp, randomise_biases(paper_D(6, 4, 3, rng=0, L=L), 1))
    x = to_xp(xp, np.random.default_rng(2).standard_normal((5, 6)))
    errors = check_module(D, x, seed=3)  # check_module re-seeds every dropout rng
    assert set(errors) == {"x", "1.W", "1.b", "3.W", "3.b", "5.W", "5.b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("L", IMPLS)
def test_generator_gradient_check(xp, L):
    G = on(xp, randomise_biases(paper_G(4, 7, 6, rng=0, L=L), 1))
    z = to_xp(xp, np.random.default_rng(2).uniform(-1, 1, size=(5, 4)))
    errors = check_module(G, z, seed=3)
    assert set(errors) == {"x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("which", ["D", "G"])
def test_bigger_networks_directional_check(xp, L, which):
    rs = np.random.default_rng(5)
    if which == "D":
        net, x = paper_D(60, 40, 5, std=0.2, L=L), rs.standard_normal((32, 60))
    else:
        net, x = paper_G(20, 100, 60, std=0.2, L=L), rs.uniform(-1, 1, size=(32, 20))
    net = on(xp, net)
    x = to_xp(xp, x)
    g = to_xp(xp, rs.standard_normal((32,) + net.output_shape(x.shape[1:])))

    def loss_and_grads():
        net.set_rng(rng_for(xp, 0))  # the same dropout masks in every evaluation
        net.zero_grad()  # gradients accumulate: start from zero every time
        L_ = (net.forward(x) * g).sum()
        dx = net.backward(g)
        return L_, dict(net.gradients(), x=dx)

    arrays = dict(net.parameters(), x=x)
    assert_grads_ok(directional_check(loss_and_grads, arrays, seed=1))


# ---------------------------------------------------------------------------
# The other containers, checked as wholes
# ---------------------------------------------------------------------------
def _two_input_net(rs, L=nn):
    """G(z, y) of a conditional GAN: a branch per input, joined, then a head."""
    return L.Sequential([
        L.Parallel([L.Sequential([lin(3, 4, rs, L), L.Tanh()]), lin(2, 3, rs, L)]),
        L.Concat(),
        lin(7, 5, rs, L),
        L.Sigmoid(),
    ])


@pytest.mark.parametrize("L", IMPLS)
def test_two_input_network_gradient_check(xp, L):
    rs = np.random.default_rng(0)
    net = on(xp, _two_input_net(rs, L))
    z, y = to_xp(xp, rs.standard_normal((6, 3))), to_xp(xp, rs.standard_normal((6, 2)))
    errors = check_module(net, (z, y), seed=1)
    assert set(errors) == {"x0", "x1", "0.0.0.W", "0.0.0.b", "0.1.W", "0.1.b", "2.W", "2.b"}
    assert_grads_ok(errors)
    assert net.output_shape(((3,), (2,))) == (5,)
    # the input gradients come back as a tuple, one per input
    net.zero_grad()
    out = net.forward((z, y))
    dz, dy = net.backward(xp.ones_like(out))
    assert dz.shape == z.shape and dy.shape == y.shape


def _trunk_and_heads(rs, L=nn):
    """D and Q of InfoGAN: a shared trunk, then two heads."""
    trunk = L.Sequential([L.Dropout(0.3), lin(4, 5, rs, L), L.LeakyReLU(0.2)])
    heads = L.Fork([lin(5, 1, rs, L), L.Sequential([lin(5, 3, rs, L), L.Tanh()])])
    return L.Sequential([trunk, heads])


@pytest.mark.parametrize("L", IMPLS)
def test_shared_trunk_two_heads_gradient_check(xp, L):
    """Both heads' losses together (dy a tuple): the trunk gets the sum."""
    rs = np.random.default_rng(1)
    net = on(xp, _trunk_and_heads(rs, L))
    x = to_xp(xp, rs.standard_normal((7, 4)))
    dy = (to_xp(xp, rs.standard_normal((7, 1))), to_xp(xp, rs.standard_normal((7, 3))))
    errors = check_module(net, x, seed=2, dy=dy)
    assert set(errors) == {"x", "0.1.W", "0.1.b", "1.0.W", "1.0.b", "1.1.0.W", "1.1.0.b"}
    assert_grads_ok(errors)
    # and with check_module's own random tuple of gradients
    assert_grads_ok(check_module(net, x, seed=4))
    assert net.output_shape((4,)) == ((1,), (3,))


@pytest.mark.parametrize("L", IMPLS)
def test_fork_with_a_head_that_gets_no_gradient(xp, L):
    """dy = (g, None): the second head did not reach the loss. Its parameters
    get zero gradient, and x gets the first head's gradient alone."""
    rs = np.random.default_rng(2)
    net = on(xp, _trunk_and_heads(rs, L))
    x = to_xp(xp, rs.standard_normal((7, 4)))
    dy = (to_xp(xp, rs.standard_normal((7, 1))), None)
    errors = check_module(net, x, seed=2, dy=dy)
    assert_grads_ok(errors)
    net.set_rng(rng_for(xp, 2))
    net.forward(x)
    net.zero_grad()
    net.backward(dy)
    for k, g in net.gradients().items():
        assert bool(xp.any(g != 0)) == (not k.startswith("1.1.")), k
    # a Fork whose branches all get None: dx is zeros of x's shape
    fork = on(xp, L.Fork([lin(4, 2, rs, L), lin(4, 3, rs, L)]))
    fork.forward(x)
    dx = fork.backward((None, None))
    assert dx.shape == x.shape and not bool(xp.any(dx != 0))


@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("axis", [1, -1])
def test_skip_connection_gradient_check(xp, L, axis):
    """A U-Net skip on (batch, C, H, W): x ↦ concat([x, inner(x)]) on the channels."""
    rs = np.random.default_rng(3)
    # inner: a 1×1 "convolution" is a Linear on the last axis after moving C
    # there; here simply a Linear on W and an activation, keeping the shape
    inner = L.Sequential([lin(4, 4, rs, L), L.Tanh()])
    net = on(xp, L.skip_concat(inner, axis=axis))
    x = to_xp(xp, rs.standard_normal((2, 3, 2, 4)))
    errors = check_module(net, x, seed=5)
    assert set(errors) == {"x", "0.1.0.W", "0.1.0.b"}
    assert_grads_ok(errors)
    y = net.forward(x)
    want = (2, 6, 2, 4) if axis == 1 else (2, 3, 2, 8)
    assert y.shape == want and net.output_shape((3, 2, 4)) == want[1:]
    # the skip's slice is x itself
    np.testing.assert_array_equal(to_host(y[:, :3] if axis == 1 else y[..., :4]), to_host(x))


def test_fork_adds_the_branch_gradients(xp):
    fork = Fork([Identity(), Identity(), Identity()])
    x = to_xp(xp, np.arange(6.0).reshape(2, 3))
    ys = fork.forward(x)
    assert len(ys) == 3 and all(y is x for y in ys)
    g = [to_xp(xp, np.full((2, 3), v)) for v in (1.0, 10.0, 100.0)]
    np.testing.assert_array_equal(to_host(fork.backward(tuple(g))), np.full((2, 3), 111.0))
    np.testing.assert_array_equal(to_host(fork.backward((g[0], None, g[2]))), np.full((2, 3), 101.0))
    with pytest.raises(ValueError, match="2 gradients for 3 branches"):
        fork.backward((g[0], g[1]))


def test_concat_joins_and_splits(xp):
    a, b = to_xp(xp, np.ones((2, 3))), to_xp(xp, 2 * np.ones((2, 1)))
    cat = Concat()
    y = cat.forward((a, b))
    assert y.shape == (2, 4)
    dy = to_xp(xp, np.arange(8.0).reshape(2, 4))
    da, db = cat.backward(dy)
    np.testing.assert_array_equal(to_host(da), [[0, 1, 2], [4, 5, 6]])
    np.testing.assert_array_equal(to_host(db), [[3], [7]])
    assert cat.backward(dy, need_dx=False) is None
    assert cat.output_shape(((3,), (1,))) == (4,)
    assert Concat(axis=1).output_shape(((2, 5, 5), (3, 5, 5))) == (5, 5, 5)
    with pytest.raises(ValueError, match=r"inputs differ outside axis 1: \[\(2, 3\), \(3, 1\)\]"):
        cat.forward((a, to_xp(xp, np.ones((3, 1)))))
    with pytest.raises(ValueError, match="dy has 5 entries on axis 1, the inputs had 4"):
        cat.backward(xp.ones((2, 5)))


def test_parallel_errors_name_the_expected_inputs(xp):
    par = Parallel([Identity(), Identity()])
    with pytest.raises(ValueError, match="expected a tuple of 2 inputs, got ndarray"):
        par.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="expected a tuple of 2 inputs, got tuple of 3"):
        par.forward((xp.ones(1),) * 3)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        par.backward((xp.ones(1), xp.ones(1)))
    a, b = xp.ones((2, 2)), xp.zeros((2, 3))
    assert par.forward((a, b)) == (a, b)
    da, db = par.backward((a, None))  # an output that got no gradient gives none back
    assert da is a and db is None


# ---------------------------------------------------------------------------
# Backward options
# ---------------------------------------------------------------------------
def _forward_backward(net, xp, x, dy, **kw):
    net.set_rng(rng_for(xp, 0))
    net.forward(x)
    return net.backward(dy, **kw)


@pytest.mark.parametrize("L", IMPLS)
def test_backward_options_give_the_same_results(xp, L):
    D = on(xp, paper_D(6, 4, 3, L=L))
    rs = np.random.default_rng(0)
    x, dy = to_xp(xp, rs.standard_normal((5, 6))), to_xp(xp, rs.standard_normal((5, 1)))
    D.zero_grad()
    dx_full = to_host(_forward_backward(D, xp, x, dy))
    grads_full = host_grads(D)

    D.zero_grad()
    assert _forward_backward(D, xp, x, dy, need_dx=False) is None
    for k, v in D.gradients().items():
        np.testing.assert_array_equal(to_host(v), grads_full[k])

    for v in D.gradients().values():
        v[...] = 7.0
    dx = _forward_backward(D, xp, x, dy, param_grads=False)
    np.testing.assert_array_equal(to_host(dx), dx_full)
    for v in D.gradients().values():  # untouched
        assert bool((v == 7.0).all())


def test_need_dx_false_skips_the_modules_below_the_first_parameters(xp):
    D = on(xp, paper_D(6, 4, 3))
    D.set_rng(rng_for(xp, 0))
    D.forward(to_xp(xp, np.ones((2, 6))))
    D.layers[0]._cache = None  # the input dropout: backward there would raise
    D.backward(xp.ones((2, 1)), need_dx=False)
    with pytest.raises(RuntimeError, match="before forward"):
        D.backward(xp.ones((2, 1)))


# ---------------------------------------------------------------------------
# Gradients accumulate through a Sequential
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", IMPLS)
def test_sequential_accumulates_two_passes_and_zero_grad_clears(xp, L):
    """D on a real batch and on a fake batch, as Algorithm 1's D step: the
    gradients of the two passes add up."""
    D = on(xp, paper_D(6, 4, 3, L=L))
    rs = np.random.default_rng(1)
    xr, xf = to_xp(xp, rs.standard_normal((5, 6))), to_xp(xp, rs.standard_normal((3, 6)))
    dr, df = to_xp(xp, rs.standard_normal((5, 1))), to_xp(xp, rs.standard_normal((3, 1)))
    refs = dict(D.gradients())

    def alone(x, dy, seed):
        D.zero_grad()
        D.set_rng(rng_for(xp, seed))
        D.forward(x)
        D.backward(dy, need_dx=False)
        return host_grads(D)

    g_real, g_fake = alone(xr, dr, 1), alone(xf, df, 2)
    D.zero_grad()
    for x, dy, seed in ((xr, dr, 1), (xf, df, 2)):
        D.set_rng(rng_for(xp, seed))
        D.forward(x)
        D.backward(dy, need_dx=False)
    for k, v in D.gradients().items():
        assert v is refs[k]
        assert np.any(g_real[k] != 0) and np.any(g_fake[k] != 0)
        # (the fast layers form the sum as one product over both passes: equal to rounding)
        np.testing.assert_allclose(to_host(v), g_real[k] + g_fake[k], rtol=1e-13, atol=1e-13)
    D.zero_grad()
    for k, v in D.gradients().items():
        assert v is refs[k] and not bool(xp.any(v != 0))


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------
def test_parameter_names_and_identity(xp):
    D = on(xp, paper_D(6, 4, 3))
    params, grads = D.parameters(), D.gradients()
    assert list(params) == ["1.W", "1.b", "3.W", "3.b", "5.W", "5.b"]
    assert list(grads) == list(params)
    assert params["3.W"] is D[3].params["W"]  # the arrays themselves, not copies
    assert grads["5.b"] is D[5].grads["b"]
    assert params["1.W"].shape == (6, 12) and params["5.W"].shape == (4, 1)
    assert len(D) == 6 and D.output_shape((6,)) == (1,)
    assert D.n_params == 6 * 12 + 12 + 4 * 12 + 12 + 4 + 1
    nested = Sequential([D, Fork([Identity(), Sequential([nn.Linear(1, 2)])])])
    assert [k for k, _, _ in nested.named_parameters()] == [
        "0.1.W", "0.1.b", "0.3.W", "0.3.b", "0.5.W", "0.5.b", "1.1.0.W", "1.1.0.b"]


@pytest.mark.parametrize("L", IMPLS)
def test_zero_grad(xp, L):
    G = on(xp, paper_G(3, 4, 5, L=L))
    y = G.forward(to_xp(xp, np.ones((2, 3))))
    G.backward(xp.ones_like(y))
    refs = dict(G.gradients())
    assert any(bool((v != 0).any()) for v in refs.values())
    G.zero_grad()
    for k, v in G.gradients().items():
        assert v is refs[k] and bool((v == 0).all())


def test_set_rng_reaches_nested_dropout(xp):
    inner = Sequential([nn.Dropout(0.5), nn.Linear(3, 3, dtype=F64)])
    net = Sequential([nn.Dropout(0.2), Fork([inner, Parallel([fast.Dropout(0.1)])]), nn.ReLU()])
    r = rng_for(xp, 0)
    assert net.set_rng(r) is net
    assert net[0].rng is r and inner[0].rng is r and net[1][1][0].rng is r


@pytest.mark.parametrize("cls", [Sequential, Parallel, Fork])
def test_only_modules_are_accepted(cls):
    with pytest.raises(TypeError, match=f"{cls.__name__} child 1 is a function, not a scratchgan Module"):
        cls([nn.ReLU(), lambda x: x])


@pytest.mark.parametrize("L", IMPLS)
def test_to_float64(xp, L):
    G = on(xp, paper_G(3, 4, 5, init="uniform", dtype=np.float32, L=L))
    assert G.dtype == np.float32
    before = {k: to_host(v) for k, v in G.parameters().items()}
    G.to(dtype=F64)
    assert G.dtype == F64
    for k, v in G.parameters().items():
        assert v.dtype == F64 and G.gradients()[k].dtype == F64
        np.testing.assert_array_equal(to_host(v), before[k].astype(F64))
    assert G.forward(to_xp(xp, np.ones((2, 3)))).dtype == F64
    assert G.device.xp is xp


def test_summary_table(xp):
    D = on(xp, paper_D(784, 240, 5, init="uniform", dtype=np.float32))
    table = D.summary((784,))
    lines = table.splitlines()
    assert lines[0].split() == ["#", "module", "output", "shape", "params"]
    rows = lines[2:-2]
    expected = [("Dropout(0.2)", 784, 0), ("Maxout(784, 240, pieces=5)", 240, 784 * 1200 + 1200),
                ("Dropout(0.5)", 240, 0), ("Maxout(240, 240, pieces=5)", 240, 240 * 1200 + 1200),
                ("Dropout(0.5)", 240, 0), ("Linear(240, 1)", 1, 241)]
    assert len(rows) == len(expected)
    for i, (row, (name, features, count)) in enumerate(zip(rows, expected)):
        assert row.split()[0] == str(i)
        assert name in row and f"({features},)" in row
        assert row.rstrip().endswith(f"{count:,}")
    total = sum(c for _, _, c in expected)
    assert total == D.n_params == 1_231_441
    assert lines[-1].split() == ["total", "1,231,441"]


# ---------------------------------------------------------------------------
# State
# ---------------------------------------------------------------------------
def test_state_dict_is_a_host_copy(xp):
    G = on(xp, paper_G(3, 4, 5))
    state = G.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    state["0.W"][...] = 123.0
    assert not bool((G.parameters()["0.W"] == 123.0).any())


def test_load_state_dict_mismatches(xp):
    G = on(xp, paper_G(3, 4, 5, rng=0))
    before = G.state_dict()
    good = paper_G(3, 4, 5, rng=1).state_dict()

    missing = {k: v for k, v in good.items() if k != "2.b"}
    with pytest.raises(ValueError, match=r"missing \['2.b'\], unexpected \[\]"):
        G.load_state_dict(missing)
    with pytest.raises(ValueError, match=r"unexpected \['9.W'\]"):
        G.load_state_dict(dict(good, **{"9.W": np.zeros(1)}))
    wrong = dict(good, **{"4.W": np.zeros((5, 4))})  # the last array has the wrong shape
    with pytest.raises(ValueError, match=r"parameter 4.W: shape \(5, 4\) in the file, \(4, 5\) in the model"):
        G.load_state_dict(wrong)
    for k, v in G.parameters().items():  # a failed load changes nothing
        np.testing.assert_array_equal(to_host(v), before[k])

    refs = dict(G.parameters())
    G.load_state_dict(good)
    for k, v in G.parameters().items():
        assert v is refs[k]  # loaded in place
        np.testing.assert_array_equal(to_host(v), good[k])


# ---------------------------------------------------------------------------
# NumPy / CuPy parity of whole networks
# ---------------------------------------------------------------------------
@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("L", IMPLS)
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("which", ["D", "G"])
def test_numpy_cupy_network_parity(L, which, dtype, tol):
    import cupy

    rs = np.random.default_rng(0)
    if which == "D":
        host, x = paper_D(20, 8, 3, dtype=dtype, L=L), rs.standard_normal((16, 20)).astype(dtype)
    else:
        host, x = paper_G(5, 12, 20, dtype=dtype, L=L), rs.uniform(-1, 1, size=(16, 5)).astype(dtype)
    device = copy.deepcopy(host).to("gpu")
    host.set_rng(HostMaskRng(3, np))
    device.set_rng(HostMaskRng(3, cupy))  # identical dropout masks, drawn on the host
    host.zero_grad()
    device.zero_grad()
    y_h, y_d = host.forward(x), device.forward(cupy.asarray(x))
    dy = rs.standard_normal(y_h.shape).astype(dtype)
    dx_h, dx_d = host.backward(dy), device.backward(cupy.asarray(dy))
    np.testing.assert_allclose(to_host(y_d), y_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_host(dx_d), dx_h, rtol=tol, atol=tol)
    for k, g in host.gradients().items():
        np.testing.assert_allclose(to_host(device.gradients()[k]), g, rtol=tol, atol=tol)
