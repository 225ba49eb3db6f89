"""Tests for scratchgan.nn.module: the Module base class — the tree of
modules and its names, state (parameters *and* buffers) and its checks,
dtype and device moves, random generators, and check_shape's messages.
"""

from __future__ import annotations

import numpy as np
import pytest

from helpers import on, rng_for, to_host, to_xp
from scratchgan import nn
from scratchgan.nn import fast
from scratchgan.nn.module import Module, check_shape

F64 = np.float64


class Running(Module):
    """A module with a parameter and buffers, like a BatchNorm: ``y = scale·x``,
    and in training it tracks the running mean of x and counts the batches."""

    def __init__(self, n):
        super().__init__()
        self.params = {"scale": np.ones(n, np.float32)}
        self.grads = {"scale": np.zeros(n, np.float32)}
        self.buffers = {"mean": np.zeros(n, np.float32), "count": np.zeros((), np.int64)}

    def forward(self, x, train=True):
        if train:
            self.buffers["mean"] *= 0.9
            self.buffers["mean"] += 0.1 * x.mean(axis=0)
            self.buffers["count"] += 1
        self._cache = x
        return x * self.params["scale"]

    def backward(self, dy, *, need_dx=True, param_grads=True):
        x = self._cached()
        if param_grads:
            self.grads["scale"] += (x * dy).sum(axis=0)
        return dy * self.params["scale"] if need_dx else None


def net_with_buffers(seed=0, L=nn):
    return L.Sequential([L.Linear(3, 4, rng=seed), Running(4), L.Fork([L.Dropout(0.5), L.Linear(4, 2, rng=seed)])])


def randomise(net, seed):
    rs = np.random.default_rng(seed)
    for _, p, _ in net.named_parameters():
        p[...] = rs.standard_normal(p.shape)
    for _, b in net.named_buffers():
        b[...] = rs.integers(1, 9, size=b.shape)
    return net


# ---------------------------------------------------------------------------
# The tree: children, modules, names
# ---------------------------------------------------------------------------
def test_children_modules_and_names():
    net = net_with_buffers()
    assert [name for name, _ in net.children()] == ["0", "1", "2"]
    assert [type(m).__name__ for m in net.modules()] == [
        "Sequential", "Linear", "Running", "Fork", "Dropout", "Linear"]
    assert net.layers[0].children() == [] and list(net.layers[0].modules()) == [net.layers[0]]
    names = [k for k, _, _ in net.named_parameters()]
    assert names == ["0.W", "0.b", "1.scale", "2.1.W", "2.1.b"]
    assert [k for k, _ in net.named_buffers()] == ["1.mean", "1.count"]
    assert [k for k, _, _ in net.named_parameters("D/")] == ["D/" + k for k in names]
    # the triples are the arrays themselves
    for k, p, g in net.named_parameters():
        assert p is net.parameters()[k] and g is net.gradients()[k]
    assert net.parameters()["2.1.W"] is net[2][1].params["W"]


def test_n_params_counts_trained_scalars_only():
    net = net_with_buffers()
    assert net.n_params == (3 * 4 + 4) + 4 + (4 * 2 + 2)  # buffers are not parameters
    assert nn.ReLU().n_params == 0 and Running(5).n_params == 5


def test_set_rng_reaches_every_dropout_and_nothing_else(xp):
    net = nn.Sequential([nn.Dropout(0.2), nn.Parallel([fast.Dropout(0.1), nn.Fork([nn.Dropout(0.3)])]),
                         nn.Linear(2, 2)])
    r = rng_for(xp, 0)
    assert net.set_rng(r) is net
    dropouts = [m for m in net.modules() if isinstance(m, nn.Dropout)]
    assert len(dropouts) == 3 and all(m.rng is r for m in dropouts)
    assert not hasattr(net[2], "rng") and not hasattr(net, "rng")


def test_call_is_forward():
    layer = nn.Linear(3, 2, rng=0)
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(layer(x), layer.forward(x))
    d = nn.Dropout(0.5)
    assert d(x, train=False) is x


def test_zero_grad_reaches_nested_modules(xp):
    for L in (nn, fast):
        net = on(xp, net_with_buffers(L=L)).set_rng(rng_for(xp, 0))
        out = net.forward(to_xp(xp, np.ones((2, 3), np.float32)))
        net.backward(tuple(xp.ones_like(o) for o in out))
        assert all(bool(xp.any(g != 0)) for g in net.gradients().values())
        net.zero_grad()
        assert all(not bool(xp.any(g != 0)) for g in net.gradients().values())


# ---------------------------------------------------------------------------
# State: parameters and buffers
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("L", [nn, fast], ids=["ref", "fast"])
def test_state_dict_round_trip_with_buffers(xp, L):
    src = on(xp, randomise(net_with_buffers(L=L), 1))
    state = src.state_dict()
    assert sorted(state) == sorted(["0.W", "0.b", "1.scale", "1.mean", "1.count", "2.1.W", "2.1.b"])
    assert all(type(v) is np.ndarray for v in state.values())  # host copies
    assert state["1.count"].dtype == np.int64 and state["0.W"].dtype == np.float32
    dst = on(xp, net_with_buffers(seed=5, L=L))
    refs = {**dst.parameters(), **dict(dst.named_buffers())}
    dst.load_state_dict(state)
    for k, v in {**dst.parameters(), **dict(dst.named_buffers())}.items():
        assert v is refs[k]  # loaded in place
        np.testing.assert_array_equal(to_host(v), state[k])
    assert dst.state_dict().keys() == state.keys()
    # a copy: changing the state changes nothing in the module
    state["1.mean"][...] = -123.0
    assert not bool(xp.any(dst[1].buffers["mean"] == -123.0))


@pytest.mark.parametrize("bad", ["missing", "extra", "param-shape", "buffer-shape"])
def test_load_state_dict_mismatch_leaves_the_module_unchanged(xp, bad):
    net = on(xp, randomise(net_with_buffers(), 2))
    before = net.state_dict()
    good = randomise(net_with_buffers(), 3).state_dict()
    if bad == "missing":
        state, msg = {k: v for k, v in good.items() if k != "1.mean"}, r"missing \['1.mean'\], unexpected \[\]"
    elif bad == "extra":
        state, msg = dict(good, **{"3.W": np.zeros(2)}), r"missing \[\], unexpected \['3.W'\]"
    elif bad == "param-shape":  # the last parameter: every other one would be written first by a naive loop
        state, msg = dict(good, **{"2.1.b": np.zeros(3)}), r"parameter 2.1.b: shape \(3,\) in the file, \(2,\)"
    else:
        state, msg = dict(good, **{"1.count": np.zeros(2)}), r"parameter 1.count: shape \(2,\) in the file, \(\)"
    with pytest.raises(ValueError, match=msg):
        net.load_state_dict(state)
    after = net.state_dict()
    for k, v in before.items():
        np.testing.assert_array_equal(after[k], v)


def test_to_float64_casts_floats_and_keeps_integers(xp):
    net = on(xp, randomise(net_with_buffers(), 4))
    before = net.state_dict()
    assert net.dtype == np.float32
    x = to_xp(xp, np.ones((2, 3), np.float32))
    net.set_rng(rng_for(xp, 0)).forward(x)
    assert net.to(dtype=F64) is net
    assert net.dtype == F64
    for k, p, g in net.named_parameters():
        assert p.dtype == F64 and g.dtype == F64, k
        np.testing.assert_array_equal(to_host(p), before[k].astype(F64))
    assert net[1].buffers["mean"].dtype == F64 and net[1].buffers["count"].dtype == np.int64
    with pytest.raises(RuntimeError, match="before forward"):  # the cache was dropped
        net[0].backward(xp.ones((2, 4)))
    y = net.forward(to_xp(xp, np.ones((2, 3))))
    assert all(o.dtype == F64 for o in y)
    assert net.device.xp is xp


def test_device_and_dtype_of_a_module_without_parameters():
    assert nn.ReLU().device.xp is np
    assert nn.ReLU().dtype == np.float32
    assert nn.ReLU().output_shape((3, 4)) == (3, 4)


# ---------------------------------------------------------------------------
# check_shape: the layer, the expected and the actual shape
# ---------------------------------------------------------------------------
def test_check_shape_messages():
    check_shape("L", np.ones((2, 3)), (3,))
    check_shape("L", np.ones((2, 5, 3)), (None, 3))
    check_shape("L", np.ones((2, 5, 6, 3)), (..., 3))
    with pytest.raises(ValueError, match=r"^Conv: expected input of shape \(batch, 3, \?, \?\), got \(2, 4, 8, 8\)$"):
        check_shape("Conv", np.ones((2, 4, 8, 8)), (3, None, None))
    with pytest.raises(ValueError, match=r"^L: expected input of shape \(batch, 3\), got \(3,\)$"):
        check_shape("L", np.ones(3), (3,))
    with pytest.raises(ValueError, match=r"^L: expected input of shape \(batch, …, 4\), got \(2, 3\)$"):
        check_shape("L", np.ones((2, 3)), (..., 4))
    with pytest.raises(ValueError, match=r"^L: expected input of shape \(batch, …, 4\), got \(\)$"):
        check_shape("L", 1.0, (..., 4))
