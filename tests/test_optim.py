"""Tests for scratchgan.nn.optim (and the blocked SGD of scratchgan.nn.fast):
the update rules against hand-computed values, the paper's schedules at chosen
steps (docs/paper.md §3.4), the weight constraint, optimisers over several
modules, and resuming from a checkpoint.

Every SGD test runs on the reference ``nn.SGD`` and on ``nn.fast.SGD``.
"""

from __future__ import annotations

import math
import numpy as np
import pytest

from helpers import on, to_host, to_xp
from scratchgan.nn import fast
from scratchgan.nn.containers import Sequential
from scratchgan.nn.layers import Linear
from scratchgan.nn.module import Module
from scratchgan.nn.optim import SGD, Adam, ExponentialDecay, LinearDecay, LinearMomentum, as_schedule

F64 = np.float64
#: the reference SGD and the fast, blocked one: every SGD test runs on both
SGDS = [pytest.param(SGD, id="ref"), pytest.param(fast.SGD, id="fast")]


class Params(Module):
    """A module that is nothing but parameters: all an optimiser needs."""

    def __init__(self, params, grads=None):
        super().__init__()
        self.params = dict(params)
        self.grads = dict(grads) if grads is not None else {
            k: v * 0 for k, v in self.params.items()}


def tiny_model(xp, seed=0, shape=(3, 2)):
    rs = np.random.default_rng(seed)
    return Params({"W": to_xp(xp, rs.standard_normal(shape)), "b": to_xp(xp, rs.standard_normal(shape[1]))},
                  {"W": xp.zeros(shape), "b": xp.zeros(shape[1])})


def set_grads(model, xp, grads):
    for k, g in grads.items():
        model.grads[k][...] = to_xp(xp, g)


def gradient_sequence(seed, n, shape=(3, 2)):
    rs = np.random.default_rng(seed)
    return [{"W": rs.standard_normal(shape), "b": rs.standard_normal(shape[1])} for _ in range(n)]


# ---------------------------------------------------------------------------
# SGD with classical momentum
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("SGD", SGDS)
@pytest.mark.parametrize("changing", [False, True], ids=["constant-g", "changing-g"])
def test_momentum_sgd_matches_the_closed_form(xp, SGD, changing):
    lr, mu = 0.1, 0.5
    model = tiny_model(xp)
    p0 = {k: to_host(v).copy() for k, v in model.params.items()}
    gs = gradient_sequence(1, 3) if changing else gradient_sequence(1, 1) * 3
    expected = {}
    for k in p0:
        g1, g2, g3 = (g[k] for g in gs)
        # by hand, docs/paper.md §3.4: v <- mu v - lr g, then p <- p + v, from v = 0
        v1 = -lr * g1
        p1 = p0[k] + v1
        v2 = mu * v1 - lr * g2
        p2 = p1 + v2
        v3 = mu * v2 - lr * g3
        p3 = p2 + v3
        expected[k] = [p1, p2, p3]
    opt = SGD(model, lr=lr, momentum=mu)
    for step in range(3):
        set_grads(model, xp, gs[step])
        opt.step()
        for k in p0:
            np.testing.assert_allclose(to_host(model.params[k]), expected[k][step], rtol=1e-14, atol=1e-15)
    assert opt.t == 3
    if not changing:  # constant g: p3 = p0 - lr g (3 + 2 mu + mu^2), the geometric sums
        np.testing.assert_allclose(to_host(model.params["W"]),
                                   p0["W"] - lr * gs[0]["W"] * (3 + 2 * mu + mu**2), rtol=1e-14)


@pytest.mark.parametrize("SGD", SGDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_blocked_update_equals_the_whole_array_formula(xp, SGD, dtype):
    """A parameter spanning several CPU blocks (and a partial last one) gets
    bit-for-bit the update of the whole-array formula; the scratch buffer is
    not part of the saved state."""
    shape = (3, fast.BLOCK + 5)  # 3 full blocks and a partial one on the CPU
    model = tiny_model(xp, seed=2, shape=shape).to(dtype=dtype)
    p = {k: to_host(v).copy() for k, v in model.params.items()}
    vel = {k: np.zeros_like(v) for k, v in p.items()}
    opt = SGD(model, lr=0.1, momentum=0.7)
    for step, gs in enumerate(gradient_sequence(3, 3, shape)):
        set_grads(model, xp, {k: g.astype(dtype) for k, g in gs.items()})
        opt.step()
        for k in p:
            vel[k] = dtype(0.7) * vel[k] - dtype(0.1) * gs[k].astype(dtype)
            p[k] = p[k] + vel[k]
            np.testing.assert_array_equal(to_host(model.params[k]), p[k])
    assert sorted(opt.state_dict()) == ["buf/W:v", "buf/b:v", "t"]


@pytest.mark.parametrize("SGD", SGDS)
@pytest.mark.parametrize("layout", ["fortran", "transposed"])
def test_momentum_update_reaches_non_contiguous_parameters(SGD, layout):
    """A parameter that is not C-contiguous (a custom layer's, a tied transpose)
    and larger than a block is updated in place too, not through a flattened copy."""
    base = np.zeros((300, 200), np.float32)
    assert base.size > fast.BLOCK
    W = np.asfortranarray(base) if layout == "fortran" else base.T
    model = Params({"W": W}, {"W": np.ones_like(W)})
    opt = SGD(model, lr=0.1, momentum=0.5)
    opt.step()
    opt.step()
    np.testing.assert_allclose(W, -0.1 - (0.5 * 0.1 + 0.1), rtol=1e-6)  # v1 = -0.1, v2 = -0.15
    if layout == "transposed":
        np.testing.assert_allclose(base, W.T)


@pytest.mark.parametrize("SGD", SGDS)
def test_plain_sgd(xp, SGD):
    model = tiny_model(xp)
    W0 = to_host(model.params["W"]).copy()
    g = gradient_sequence(2, 1)[0]
    set_grads(model, xp, g)
    opt = SGD(model, lr=0.3)
    opt.step()
    opt.step()
    np.testing.assert_allclose(to_host(model.params["W"]), W0 - 2 * 0.3 * g["W"], rtol=1e-14)
    assert opt.state == {}  # no velocity buffers for plain SGD


@pytest.mark.parametrize("SGD", SGDS)
def test_momentum_schedule_starting_at_zero(xp, SGD):
    """A momentum schedule that is 0 at first must still carry v = -lr g forward."""
    lr = 0.1
    mu = LinearMomentum(0.0, 0.5, saturate_epoch=2, steps_per_epoch=1)  # mu = 0, 0.5, 0.5
    model = tiny_model(xp)
    p = to_host(model.params["W"]).copy()
    opt = SGD(model, lr=lr, momentum=mu)
    v = np.zeros_like(p)
    for t, g in enumerate(gradient_sequence(3, 3)):
        set_grads(model, xp, g)
        opt.step()
        v = mu(t) * v - lr * g["W"]
        p = p + v
        np.testing.assert_allclose(to_host(model.params["W"]), p, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("SGD", SGDS)
def test_schedules_are_evaluated_at_the_update_index(xp, SGD):
    """Update t (0-based) uses lr(t) and mu(t)."""
    seen = []
    lrs = [0.5, 0.25, 0.125, 0.0625]

    def lr(t):
        seen.append(("lr", t))
        return lrs[t]

    def mu(t):
        seen.append(("mu", t))
        return 0.0

    model = tiny_model(xp)
    b = to_host(model.params["b"]).copy()
    model.grads["b"][...] = 1.0
    opt = SGD(model, lr=lr, momentum=mu)
    for t in range(4):
        opt.step()
        b = b - lrs[t]  # with mu(t) = 0 and g = 1, p moves by exactly lr(t)
        np.testing.assert_allclose(to_host(model.params["b"]), b, rtol=1e-15)
    assert sorted(seen) == sorted([("lr", t) for t in range(4)] + [("mu", t) for t in range(4)])


@pytest.mark.parametrize("SGD", SGDS)
def test_sgd_uses_the_paper_learning_rate_at_step_t(xp, SGD):
    sched = ExponentialDecay(0.1, 1.000004, 1e-6)
    model = tiny_model(xp)
    opt = SGD(model, lr=sched)
    opt.t = 25_000  # as after 50 epochs of 500 updates
    b = to_host(model.params["b"]).copy()
    model.grads["b"][...] = 1.0
    opt.step()
    np.testing.assert_allclose(to_host(model.params["b"]), b - sched(25_000), rtol=1e-14)
    assert sched(25_000) == pytest.approx(0.1 * math.exp(-0.1), rel=1e-6)


def test_float32_parameters_stay_float32(xp):
    layer = on(xp, Linear(4, 3, rng=0))  # float32
    layer.grads["W"][...] = 1.0
    for opt in (SGD(layer, lr=0.1, momentum=0.5), fast.SGD(layer, lr=0.1, momentum=0.5), Adam(layer)):
        opt.step()
        assert layer.params["W"].dtype == np.float32
        assert all(v.dtype == np.float32 for v in opt.state.values())


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------
def adam_reference(p0, grads, lr, b1, b2, eps):
    """Kingma & Ba (2015), Algorithm 1, line by line; returns theta after each step."""
    theta, m, v, out = p0.copy(), np.zeros_like(p0), np.zeros_like(p0), []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        theta = theta - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(theta)
    return out


@pytest.mark.parametrize("lr, betas, eps", [(2e-4, (0.5, 0.999), 1e-8), (1e-3, (0.9, 0.999), 1e-8),
                                            (0.05, (0.0, 0.5), 1e-3)])
def test_adam_matches_algorithm_1(xp, lr, betas, eps):
    model = tiny_model(xp)
    p0 = {k: to_host(v).copy() for k, v in model.params.items()}
    gs = gradient_sequence(4, 3)
    expected = {k: adam_reference(p0[k], [g[k] for g in gs], lr, *betas, eps) for k in p0}
    opt = Adam(model, lr=lr, betas=betas, eps=eps)
    for step in range(3):
        set_grads(model, xp, gs[step])
        opt.step()
        for k in p0:
            np.testing.assert_allclose(to_host(model.params[k]), expected[k][step], rtol=1e-12, atol=1e-15)


def test_adam_evaluates_its_lr_schedule_at_the_update_index(xp):
    lrs = [1e-3, 5e-4, 2.5e-4]
    seen = []

    def lr(t):
        seen.append(t)
        return lrs[t]

    model = tiny_model(xp)
    p0 = {k: to_host(v).copy() for k, v in model.params.items()}
    gs = gradient_sequence(7, 3)
    opt = Adam(model, lr=lr, betas=(0.5, 0.999), eps=1e-8)
    for g in gs:
        set_grads(model, xp, g)
        opt.step()
    assert seen == [0, 1, 2]
    # Algorithm 1 with a per-step rate: theta_t = theta_{t-1} - lr(t-1) m_hat / (sqrt(v_hat) + eps)
    for k in p0:
        theta, m, v = p0[k], 0.0, 0.0
        for t, g in enumerate(gs, start=1):
            m = 0.5 * m + 0.5 * g[k]
            v = 0.999 * v + 0.001 * g[k] ** 2
            theta = theta - lrs[t - 1] * (m / (1 - 0.5**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        np.testing.assert_allclose(to_host(model.params[k]), theta, rtol=1e-12, atol=1e-15)


def test_adam_first_step_moves_by_lr(xp):
    """With bias correction the first step is lr * g/|g| (up to eps): the paper's point."""
    model = tiny_model(xp)
    W0 = to_host(model.params["W"]).copy()
    g = gradient_sequence(5, 1)[0]
    set_grads(model, xp, g)
    Adam(model, lr=0.01, eps=1e-12).step()
    np.testing.assert_allclose(to_host(model.params["W"]), W0 - 0.01 * np.sign(g["W"]), rtol=1e-9)


def test_adam_rejects_bad_betas():
    with pytest.raises(ValueError, match="betas must be in"):
        Adam(tiny_model(np), betas=(1.0, 0.999))


# ---------------------------------------------------------------------------
# Schedules (docs/paper.md §3.4)
# ---------------------------------------------------------------------------
def test_exponential_decay_paper_values():
    lr = ExponentialDecay(0.1, 1.000004, 1e-6)
    assert lr(0) == 0.1  # the first update uses lr0
    for t in (1, 10, 500, 12_345, 1_000_000):
        assert lr(t) == pytest.approx(0.1 / 1.000004**t, rel=1e-12)
    for epochs, value in [(50, 0.0905), (100, 0.0819), (250, 0.0607), (500, 0.0368), (1000, 0.0135)]:
        assert round(lr(epochs * 500), 4) == value
    # the floor: 0.1 / 1.000004^t = 1e-6 at t = ln(1e5) / ln(1.000004), about 2.88 million
    t_floor = math.log(1e5) / math.log(1.000004)
    assert round(t_floor / 1e6, 2) == 2.88
    assert lr(int(t_floor) - 1000) > 1e-6
    assert lr(int(t_floor) + 1000) == 1e-6
    assert lr(10**9) == 1e-6


@pytest.mark.parametrize("args", [(0.0,), (-0.1,), (0.1, 0.99), (0.1, 1.000004, -1.0)])
def test_exponential_decay_rejects_bad_arguments(args):
    with pytest.raises(ValueError):
        ExponentialDecay(*args)


def test_linear_decay_holds_then_falls_to_zero():
    """The DCGAN authors' schedule (docs/dcgan.md §6): full rate before
    ``start``, ``(stop − t)/(stop − start)`` of it after, 0 from ``stop``."""
    lr = LinearDecay(2e-4, start=6, stop=10)
    assert [lr(t) for t in (0, 5)] == [2e-4, 2e-4]
    assert [lr(t) for t in range(6, 13)] == pytest.approx([2e-4, 1.5e-4, 1e-4, 0.5e-4, 0, 0, 0], rel=1e-12, abs=0)
    # a schedule as base: the product, so SGD's exponential decay falls to 0 too
    both = LinearDecay(ExponentialDecay(0.1, 1.1, 0.0), start=0, stop=4)
    assert both(2) == pytest.approx(0.1 / 1.1**2 * 2 / 4, rel=1e-12)
    for bad in [(1e-4, 5, 5), (1e-4, -1, 3), (1e-4, 4, 2)]:
        with pytest.raises(ValueError, match="start < stop"):
            LinearDecay(*bad)


def test_adam_with_linear_decay_stops_moving_at_stop(xp):
    """Adam reads the decayed rate at each update: the update before ``stop``
    moves the parameters, the ones from ``stop`` on do not."""
    model = tiny_model(xp)
    opt = Adam(model, lr=LinearDecay(0.1, start=1, stop=3))
    trail = []
    for _ in range(5):
        model.grads["W"][...] = 1.0
        opt.step()
        trail.append(to_host(model.params["W"]).copy())
    moves = [float(np.abs(b - a).max()) for a, b in zip(trail, trail[1:])]
    assert moves[0] > 0.04 and moves[1] > 0.02      # updates 1, 2: 0.1·2/2 then 0.1·1/2 (Adam steps ≈ lr)
    assert moves[2] == 0 and moves[3] == 0          # updates 3, 4: lr = 0


def test_linear_momentum_paper_values():
    mu = LinearMomentum(0.5, 0.7, 250, 500)
    assert mu(0) == 0.5 and mu(499) == 0.5  # epoch 1
    for e in (2, 3, 100, 249):
        for t in ((e - 1) * 500, e * 500 - 1):  # first and last update of epoch e
            assert mu(t) == pytest.approx(0.5 + 0.2 * (e - 1) / 249, rel=1e-14)
    assert mu(500) == pytest.approx(0.5 + 0.2 / 249, rel=1e-14)
    assert mu(249 * 500) == pytest.approx(0.7, rel=1e-14)  # epoch 250
    assert mu(249 * 500 - 1) < 0.7
    assert mu(10**7) == pytest.approx(0.7, rel=1e-14)


@pytest.mark.parametrize("kw", [{"saturate_epoch": 1}, {"steps_per_epoch": 0}])
def test_linear_momentum_rejects_bad_arguments(kw):
    with pytest.raises(ValueError):
        LinearMomentum(0.5, 0.7, **kw)


def test_as_schedule():
    assert as_schedule(0.25)(0) == 0.25 and as_schedule(3)(10**6) == 3.0
    f = lambda t: 1.0 / (t + 1)  # noqa: E731
    assert as_schedule(f) is f
    with pytest.raises(ValueError, match="lr must be finite and >= 0"):
        as_schedule(-0.1, "lr")
    with pytest.raises(ValueError):
        as_schedule(float("nan"))
    with pytest.raises(TypeError, match="number or a callable"):
        as_schedule("fast")


def test_optimiser_needs_modules():
    with pytest.raises(TypeError, match=r"needs a Module \(or a dict or list of them\)"):
        SGD(object())
    with pytest.raises(TypeError, match="needs scratchgan Modules, got object"):
        Adam({"G": Linear(2, 2), "D": object()})
    with pytest.raises(TypeError, match="needs scratchgan Modules"):
        SGD([Linear(2, 2), "D"])


# ---------------------------------------------------------------------------
# Constraints
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("SGD", SGDS)
def test_max_col_norm_rescales_long_columns_only(xp, SGD):
    c = 1.0
    W = np.array([[3.0, 0.3, 0.0], [4.0, 0.4, 1e-3]])  # column norms 5, 0.5, 1e-3
    model = Sequential([Params({"W": to_xp(xp, W), "b": to_xp(xp, [10.0, -10.0, 0.0])})])
    assert list(model.parameters()) == ["0.W", "0.b"]
    SGD(model, lr=0.1, max_col_norm=c).step()  # zero gradient: only the constraint acts
    norms = np.sqrt((W * W).sum(axis=0))
    expected = W * np.minimum(norms, c) / (1e-7 + norms)  # pylearn2's formula
    got = to_host(model.parameters()["0.W"])
    np.testing.assert_allclose(got, expected, rtol=1e-14)
    np.testing.assert_allclose(np.sqrt((got**2).sum(axis=0)), [1.0, 0.5, 1e-3], rtol=1e-4)
    np.testing.assert_allclose(got[:, 1], W[:, 1], rtol=1e-6)  # short columns: (almost) unchanged
    np.testing.assert_array_equal(to_host(model.parameters()["0.b"]), [10.0, -10.0, 0.0])  # biases untouched


@pytest.mark.parametrize("SGD", SGDS)
def test_max_col_norm_applies_after_the_update(xp, SGD):
    net = on(xp, Sequential([Linear(4, 3, init="zeros", dtype=F64)]))
    net.gradients()["0.W"][...] = -10.0  # pushes every column to norm 0.1 * 10 * 2 = 2
    SGD(net, lr=0.1, max_col_norm=1.5).step()
    norms = np.sqrt((to_host(net.parameters()["0.W"]) ** 2).sum(axis=0))
    np.testing.assert_allclose(norms, 1.5, rtol=1e-6)


# ---------------------------------------------------------------------------
# Checkpoints: resuming gives the same updates as not stopping
# ---------------------------------------------------------------------------
def _make(kind, model):
    if kind in ("sgd", "fast-sgd"):
        cls = SGD if kind == "sgd" else fast.SGD
        return cls(model, lr=ExponentialDecay(0.1, 1.01), momentum=LinearMomentum(0.5, 0.7, 3, 2))
    return Adam(model, lr=ExponentialDecay(0.01, 1.1), betas=(0.5, 0.999))


@pytest.mark.parametrize("kind", ["sgd", "fast-sgd", "adam"])
def test_state_dict_round_trip_resumes_exactly(xp, kind, tmp_path):
    gs = gradient_sequence(6, 6)
    straight = tiny_model(xp)
    opt = _make(kind, straight)
    for g in gs:
        set_grads(straight, xp, g)
        opt.step()

    first = tiny_model(xp)
    opt1 = _make(kind, first)
    for g in gs[:2]:
        set_grads(first, xp, g)
        opt1.step()
    state = opt1.state_dict()
    assert int(state["t"]) == 2 and any(k.startswith("buf/") for k in state)
    assert all(type(v) is np.ndarray for v in state.values())  # host copies
    np.savez(tmp_path / "opt.npz", **state)  # goes through a real file
    params = {k: to_host(v).copy() for k, v in first.params.items()}

    resumed = tiny_model(xp, seed=99)  # fresh arrays, then the checkpoint
    for k, v in resumed.params.items():
        v[...] = to_xp(xp, params[k])
    opt2 = _make(kind, resumed)
    with np.load(tmp_path / "opt.npz") as f:
        opt2.load_state_dict({k: f[k] for k in f.files})
    assert opt2.t == 2
    for g in gs[2:]:
        set_grads(resumed, xp, g)
        opt2.step()
    for k in straight.params:
        np.testing.assert_array_equal(to_host(resumed.params[k]), to_host(straight.params[k]))


# ---------------------------------------------------------------------------
# One optimiser over several modules
# ---------------------------------------------------------------------------
def _two_modules(xp, seed=0):
    rs = np.random.default_rng(seed)
    D = on(xp, Sequential([Linear(3, 4, init="normal", std=1.0, rng=rs, dtype=F64),
                           Linear(4, 1, init="normal", std=1.0, rng=rs, dtype=F64)]))
    Q = on(xp, Linear(4, 2, init="normal", std=1.0, rng=rs, dtype=F64))
    return D, Q


def _set_all_grads(modules, xp, seed):
    rs = np.random.default_rng(seed)
    for m in modules:
        for _, _, g in m.named_parameters():
            g[...] = to_xp(xp, rs.standard_normal(g.shape))


@pytest.mark.parametrize("kind", ["sgd", "fast-sgd", "adam"])
def test_optimiser_over_a_dict_of_modules(xp, kind):
    """InfoGAN trains D and Q with one optimiser: every parameter of both is
    updated, and its state is named "<module>/<parameter>:<slot>"."""
    D, Q = _two_modules(xp)
    opt = _make(kind, {"D": D, "Q": Q})
    assert [k for k, _, _ in opt.named_parameters()] == ["D/0.W", "D/0.b", "D/1.W", "D/1.b", "Q/W", "Q/b"]
    before = {k: to_host(p).copy() for k, p, _ in opt.named_parameters()}
    _set_all_grads((D, Q), xp, 1)
    opt.step()
    for k, p, _ in opt.named_parameters():
        assert not np.array_equal(to_host(p), before[k]), k  # every parameter moved
    slots = ["v"] if kind != "adam" else ["m", "v"]
    assert sorted(opt.state) == sorted(f"{k}:{s}" for k in before for s in slots)
    state = opt.state_dict()
    assert sorted(state) == sorted(["t"] + [f"buf/{k}:{s}" for k in before for s in slots])
    # zero_grad reaches both modules
    opt.zero_grad()
    assert all(not bool(xp.any(g != 0)) for _, _, g in opt.named_parameters())


@pytest.mark.parametrize("kind", ["sgd", "fast-sgd", "adam"])
def test_optimiser_over_several_modules_resumes_exactly(xp, kind):
    """Saved after two steps and loaded into fresh modules and a fresh
    optimiser, the next steps equal those of a run that never stopped."""
    D, Q = _two_modules(xp)
    opt = _make(kind, {"D": D, "Q": Q})
    for step in range(4):
        _set_all_grads((D, Q), xp, 10 + step)
        opt.step()
        if step == 1:
            modules_state = {"D": D.state_dict(), "Q": Q.state_dict()}
            opt_state = opt.state_dict()
    straight = {k: to_host(p).copy() for k, p, _ in opt.named_parameters()}

    D2, Q2 = _two_modules(xp, seed=99)
    D2.load_state_dict(modules_state["D"])
    Q2.load_state_dict(modules_state["Q"])
    opt2 = _make(kind, {"D": D2, "Q": Q2})
    opt2.load_state_dict(opt_state)
    assert opt2.t == 2 and sorted(opt2.state) == sorted(opt.state)
    for k, v in opt2.state.items():
        assert type(v) is type(opt.state[k])  # on the parameters' device
    for step in (2, 3):
        _set_all_grads((D2, Q2), xp, 10 + step)
        opt2.step()
    for k, p, _ in opt2.named_parameters():
        np.testing.assert_array_equal(to_host(p), straight[k])


def test_optimiser_over_a_list_of_modules_numbers_them(xp):
    D, Q = _two_modules(xp)
    opt = SGD([D, Q], lr=0.1, momentum=0.5)
    _set_all_grads((D, Q), xp, 2)
    opt.step()
    assert sorted(opt.state) == ["0/0.W:v", "0/0.b:v", "0/1.W:v", "0/1.b:v", "1/W:v", "1/b:v"]
    single = SGD(Q, lr=0.1, momentum=0.5)  # one module: no prefix
    single.step()
    assert sorted(single.state) == ["W:v", "b:v"]
