"""Tests for scratchgan.network: Sequential backprop, naming, checkpoints.

The networks are shaped like the paper's (PAPER.md §1-2): the discriminator
is Dropout(0.2) -> Maxout -> Dropout(0.5) -> Maxout -> Dropout(0.5) -> Linear,
the generator Linear -> ReLU -> Linear -> ReLU -> Linear -> Sigmoid, with
small widths so that finite differences stay cheap.
"""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

from helpers import HostMaskRng, assert_grads_ok, on, requires_gpu, rng_for, to_host, to_xp
from scratchgan.gradcheck import check_layer, directional_check
from scratchgan.layers import Dropout, Linear, Maxout, ReLU, Sigmoid
from scratchgan.network import Sequential, atomic_savez

F64 = np.float64


def paper_D(n_in, units, pieces, *, rng=0, dtype=F64, init="normal", std=1.0):
    """The paper's MNIST discriminator layout (its widths are 784, 240x5, 240x5)."""
    rs = np.random.default_rng(rng)
    return Sequential([
        Dropout(0.2),
        Maxout(n_in, units, pieces, init=init, std=std, rng=rs, dtype=dtype),
        Dropout(0.5),
        Maxout(units, units, pieces, init=init, std=std, rng=rs, dtype=dtype),
        Dropout(0.5),
        Linear(units, 1, init=init, std=std, rng=rs, dtype=dtype),
    ])


def paper_G(n_z, hidden, n_out, *, rng=0, dtype=F64, init="normal", std=1.0):
    """The paper's MNIST generator layout (its widths are 100, 1200, 1200, 784)."""
    rs = np.random.default_rng(rng)
    return Sequential([
        Linear(n_z, hidden, init=init, std=std, rng=rs, dtype=dtype),
        ReLU(),
        Linear(hidden, hidden, init=init, std=std, rng=rs, dtype=dtype),
        ReLU(),
        Linear(hidden, n_out, init=init, std=std, rng=rs, dtype=dtype),
        Sigmoid(),
    ])


def randomise_biases(net, seed):
    """Non-zero biases (the constructors start them at 0), set on the host."""
    rs = np.random.default_rng(seed)
    for k, v in net.params.items():
        if k.endswith(".b"):
            v[...] = 0.5 * rs.standard_normal(v.shape)


# ---------------------------------------------------------------------------
# Whole-network gradient checks
# ---------------------------------------------------------------------------
def test_discriminator_gradient_check(xp):
    D = paper_D(6, 4, 3, rng=0)
    randomise_biases(D, 1)
    D = on(xp, D)
    x = to_xp(xp, np.random.default_rng(2).standard_normal((5, 6)))
    errors = check_layer(D, x, seed=3)  # check_layer re-seeds every dropout rng
    assert set(errors) == {"x", "1.W", "1.b", "3.W", "3.b", "5.W", "5.b"}
    assert_grads_ok(errors)


def test_generator_gradient_check(xp):
    G = paper_G(4, 7, 6, rng=0)
    randomise_biases(G, 1)
    G = on(xp, G)
    z = to_xp(xp, np.random.default_rng(2).uniform(-1, 1, size=(5, 4)))
    errors = check_layer(G, z, seed=3)
    assert set(errors) == {"x", "0.W", "0.b", "2.W", "2.b", "4.W", "4.b"}
    assert_grads_ok(errors)


@pytest.mark.parametrize("which", ["D", "G"])
def test_bigger_networks_directional_check(xp, which):
    rs = np.random.default_rng(5)
    if which == "D":
        net, x = paper_D(60, 40, 5, std=0.2), rs.standard_normal((32, 60))
    else:
        net, x = paper_G(20, 100, 60, std=0.2), rs.uniform(-1, 1, size=(32, 20))
    net = on(xp, net)
    x = to_xp(xp, x)
    g = to_xp(xp, rs.standard_normal((32, net.output_features(x.shape[1]))))

    def loss_and_grads():
        net.set_rng(rng_for(xp, 0))  # the same dropout masks in every evaluation
        L = (net.forward(x) * g).sum()
        dx = net.backward(g)
        return L, dict(net.grads, x=dx)

    arrays = dict(net.params, x=x)
    assert_grads_ok(directional_check(loss_and_grads, arrays, seed=1))


# ---------------------------------------------------------------------------
# Backward options
# ---------------------------------------------------------------------------
def _forward_backward(net, xp, x, dy, **kw):
    net.set_rng(rng_for(xp, 0))
    net.forward(x)
    return net.backward(dy, **kw)


def test_backward_options_give_the_same_results(xp):
    D = on(xp, paper_D(6, 4, 3))
    rs = np.random.default_rng(0)
    x, dy = to_xp(xp, rs.standard_normal((5, 6))), to_xp(xp, rs.standard_normal((5, 1)))
    dx_full = to_host(_forward_backward(D, xp, x, dy))
    grads_full = {k: to_host(v).copy() for k, v in D.grads.items()}

    D.zero_grad()
    assert _forward_backward(D, xp, x, dy, need_dx=False) is None
    for k, v in D.grads.items():
        np.testing.assert_array_equal(to_host(v), grads_full[k])

    for v in D.grads.values():
        v[...] = 7.0
    dx = _forward_backward(D, xp, x, dy, param_grads=False)
    np.testing.assert_array_equal(to_host(dx), dx_full)
    for v in D.grads.values():  # untouched
        assert bool((v == 7.0).all())


def test_need_dx_false_skips_the_layers_below_the_first_parameters(xp):
    D = on(xp, paper_D(6, 4, 3))
    D.set_rng(rng_for(xp, 0))
    D.forward(to_xp(xp, np.ones((2, 6))))
    D.layers[0]._cache = None  # the input dropout: backward there would raise
    D.backward(xp.ones((2, 1)), need_dx=False)
    with pytest.raises(RuntimeError, match="before forward"):
        D.backward(xp.ones((2, 1)))


# ---------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------
def test_parameter_names_and_identity(xp):
    D = on(xp, paper_D(6, 4, 3))
    assert list(D.params) == ["1.W", "1.b", "3.W", "3.b", "5.W", "5.b"]
    assert list(D.grads) == list(D.params)
    assert D.params["3.W"] is D[3].params["W"]  # the arrays themselves, not copies
    assert D.grads["5.b"] is D[5].grads["b"]
    assert D.params["1.W"].shape == (6, 12) and D.params["5.W"].shape == (4, 1)
    assert len(D) == 6 and D.output_features(6) == 1
    assert D.n_params == 6 * 12 + 12 + 4 * 12 + 12 + 4 + 1


def test_zero_grad(xp):
    G = on(xp, paper_G(3, 4, 5))
    y = G.forward(to_xp(xp, np.ones((2, 3))))
    G.backward(xp.ones_like(y))
    refs = dict(G.grads)
    assert any(bool((v != 0).any()) for v in refs.values())
    G.zero_grad()
    for k, v in G.grads.items():
        assert v is refs[k] and bool((v == 0).all())


def test_set_rng_reaches_nested_dropout(xp):
    inner = Sequential([Dropout(0.5), Linear(3, 3, dtype=F64)])
    net = Sequential([Dropout(0.2), inner, ReLU()])
    r = rng_for(xp, 0)
    assert net.set_rng(r) is net
    assert net[0].rng is r and inner[0].rng is r


def test_only_layers_are_accepted():
    with pytest.raises(TypeError, match="layer 1 is a function"):
        Sequential([ReLU(), lambda x: x])


def test_to_float64(xp):
    G = on(xp, paper_G(3, 4, 5, init="uniform", dtype=np.float32))
    assert G.dtype == np.float32
    before = {k: to_host(v) for k, v in G.params.items()}
    G.to(dtype=F64)
    assert G.dtype == F64
    for k, v in G.params.items():
        assert v.dtype == F64 and G.grads[k].dtype == F64
        np.testing.assert_array_equal(to_host(v), before[k].astype(F64))
    assert G.forward(to_xp(xp, np.ones((2, 3)))).dtype == F64
    assert G.device.xp is xp


def test_summary_table(xp):
    D = on(xp, paper_D(784, 240, 5, init="uniform", dtype=np.float32))
    table = D.summary(784)
    lines = table.splitlines()
    assert lines[0].split() == ["#", "layer", "output", "shape", "params"]
    rows = lines[2:-2]
    expected = [("Dropout(p=0.2)", 784, 0), ("Maxout(784, 240, pieces=5)", 240, 784 * 1200 + 1200),
                ("Dropout(p=0.5)", 240, 0), ("Maxout(240, 240, pieces=5)", 240, 240 * 1200 + 1200),
                ("Dropout(p=0.5)", 240, 0), ("Linear(240, 1)", 1, 241)]
    assert len(rows) == len(expected)
    for i, (row, (name, features, count)) in enumerate(zip(rows, expected)):
        assert row.split()[0] == str(i)
        assert name in row and f"(m, {features})" in row
        assert row.rstrip().endswith(f"{count:,}")
    total = sum(c for _, _, c in expected)
    assert total == D.n_params == 1_231_441
    assert lines[-1].split() == ["total", "1,231,441"]


# ---------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------
def test_save_load_round_trip(xp, tmp_path):
    D = on(xp, paper_D(6, 4, 3, rng=0))
    path = tmp_path / "ckpt" / "D.npz"  # the directory is created
    D.save(path)
    with np.load(path) as f:
        assert sorted(f.files) == sorted(D.params)
    E = on(xp, paper_D(6, 4, 3, rng=1))
    refs = dict(E.params)
    E.load(path)
    for k, v in E.params.items():
        assert v is refs[k]  # loaded in place
        np.testing.assert_array_equal(to_host(v), to_host(D.params[k]))
    assert os.listdir(path.parent) == ["D.npz"]  # no temporary left behind


def test_save_is_atomic(xp, tmp_path, monkeypatch):
    D = on(xp, paper_D(6, 4, 3, rng=0))
    path = tmp_path / "D.npz"
    D.save(path)
    old = D.state_dict()
    for v in D.params.values():
        v += 1.0

    def broken_savez(file, **arrays):
        file.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        D.save(path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["D.npz"]
    with np.load(path) as f:
        for k in old:
            np.testing.assert_array_equal(f[k], old[k])


def test_atomic_savez_replaces_an_existing_file(xp, tmp_path):
    path = tmp_path / "a.npz"
    atomic_savez(path, {"x": xp.zeros(2)})
    atomic_savez(str(path), {"x": xp.ones(3), "y": xp.arange(2)})  # device arrays are saved too
    with np.load(path) as f:
        assert sorted(f.files) == ["x", "y"] and np.array_equal(f["x"], np.ones(3))


def test_state_dict_is_a_host_copy(xp):
    G = on(xp, paper_G(3, 4, 5))
    state = G.state_dict()
    assert all(type(v) is np.ndarray for v in state.values())
    state["0.W"][...] = 123.0
    assert not bool((G.params["0.W"] == 123.0).any())


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
    for k, v in G.params.items():  # a failed load changes nothing
        np.testing.assert_array_equal(to_host(v), before[k])

    G.load_state_dict(good)
    for k, v in G.params.items():
        np.testing.assert_array_equal(to_host(v), good[k])


# ---------------------------------------------------------------------------
# NumPy / CuPy parity of whole networks
# ---------------------------------------------------------------------------
@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("which", ["D", "G"])
def test_numpy_cupy_network_parity(which, dtype, tol):
    import cupy

    rs = np.random.default_rng(0)
    if which == "D":
        host, x = paper_D(20, 8, 3, dtype=dtype), rs.standard_normal((16, 20)).astype(dtype)
    else:
        host, x = paper_G(5, 12, 20, dtype=dtype), rs.uniform(-1, 1, size=(16, 5)).astype(dtype)
    device = copy.deepcopy(host).to("gpu")
    host.set_rng(np.random.default_rng(3))
    device.set_rng(HostMaskRng(3, cupy))  # identical dropout masks, drawn on the host
    y_h, y_d = host.forward(x), device.forward(cupy.asarray(x))
    dy = rs.standard_normal(y_h.shape).astype(dtype)
    dx_h, dx_d = host.backward(dy), device.backward(cupy.asarray(dy))
    np.testing.assert_allclose(to_host(y_d), y_h, rtol=tol, atol=tol)
    np.testing.assert_allclose(to_host(dx_d), dx_h, rtol=tol, atol=tol)
    for k, g in host.grads.items():
        np.testing.assert_allclose(to_host(device.grads[k]), g, rtol=tol, atol=tol)


def test_atomic_files_get_the_usual_permissions(tmp_path):
    """Checkpoints and pictures are readable like any file the user writes
    (mkstemp's private 0600 must not leak into the published file)."""
    from scratchgan.network import atomic_savez
    from scratchgan.plots import save_grid

    old = os.umask(0o022)
    try:
        atomic_savez(tmp_path / "a.npz", {"x": np.zeros(3)})
        save_grid(np.zeros((4, 784)), tmp_path / "g.png")
    finally:
        os.umask(old)
    assert (tmp_path / "a.npz").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "g.png").stat().st_mode & 0o777 == 0o644
