"""The fast drop-ins of scratchgan.nn.fast equal their references.

* Each fast layer against its reference layer, forward and backward, with the
  same parameters and identical inputs (Dropout: the same boolean mask), in
  float64 to ~1e-12 and float32 to ~1e-6; accumulation included.
* Maxout's no-tie shortcut and its first-hit loop against the reference's
  ``argmax`` routing, ties included.
* The blocked SGD against the reference SGD, bit for bit, over several steps
  with a momentum schedule.
* The tricks' own contracts: ``zero_grad`` only marks the gradients but
  reading them shows zeros; the :class:`Workspace` never hands out an array
  still referenced, so no returned or cached array is overwritten by a later
  call; the raw-word Bernoulli masks.
* One whole training iteration of the paper's model (Algorithm 1, k = 1,
  non-saturating, momentum SGD, dropout) against the same iteration written
  out with plain NumPy formulas, consuming the same random numbers; and its
  CPU/GPU parity (skipped without a GPU).
"""

from __future__ import annotations

import copy
import math
import weakref

import numpy as np
import pytest

from helpers import HostMaskRng, on, requires_gpu, rng_for, to_host, to_xp
from scratchgan import nn
from scratchgan.backend import get_array_module, get_device, to_numpy
from scratchgan.gan import GAN, NoisePrior
from scratchgan.models.paper_mlp import build_discriminator, build_generator
from scratchgan.nn import fast
from scratchgan.nn.conv import col2im
from scratchgan.nn.fast import Workspace, bernoulli, col2im_by_tap
from scratchgan.nn.optim import ExponentialDecay, LinearMomentum

F64, F32 = np.float64, np.float32
#: max-norm error over the scale max(1, ‖reference‖∞)
TOL = {F64: 1e-12, F32: 1e-6}
LAYERS = ["Linear", "Maxout", "Dropout", "ReLU", "Sigmoid", "LeakyReLU", "Tanh"]


def close(got, want, dtype):
    got, want = to_host(got), to_host(want)
    assert got.shape == want.shape and got.dtype == want.dtype
    err = float(np.abs(got - want).max(initial=0.0)) / max(1.0, float(np.abs(want).max(initial=0.0)))
    assert err < TOL[np.dtype(dtype).type], err


def pair(name, dtype=F64, seed=0, n_in=7, n_out=5, pieces=3, p=0.3):
    """A reference layer and its fast version with identical parameters."""
    rs = np.random.default_rng(seed)
    if name == "Linear":
        ref = nn.Linear(n_in, n_out, init="normal", std=1.0, rng=rs, dtype=dtype)
        fst = fast.Linear(n_in, n_out, dtype=dtype)
    elif name == "Maxout":
        ref = nn.Maxout(n_in, n_out, pieces, init="normal", std=1.0, rng=rs, dtype=dtype)
        fst = fast.Maxout(n_in, n_out, pieces, dtype=dtype)
    elif name == "Dropout":
        ref, fst = nn.Dropout(p), fast.Dropout(p)
    else:
        ref, fst = getattr(nn, name)(), getattr(fast, name)()
    for v in ref.params.values():
        if v.ndim == 1:  # non-zero biases
            v[...] = rs.standard_normal(v.shape)
    fst.load_state_dict(ref.state_dict())
    return ref, fst


def same_mask(ref, fst, seed):
    """Give both dropout layers the same boolean masks, drawn on the host."""
    rs = np.random.default_rng(seed)
    masks = {}

    def keep(x):
        key = tuple(x.shape)
        if key not in masks:
            masks[key] = rs.random(x.shape) < 1.0 - ref.p
        return masks[key]

    ref._keep_mask = keep
    fst._keep_mask = keep
    return masks


def passes_agree(ref, fst, xs, rs, dtype):
    """One forward and backward pass of both layers per input in ``xs`` (the
    fast layer writes its gradients, then adds): outputs, input gradients,
    parameter gradients and the other backward options agree."""
    ref.zero_grad()
    fst.zero_grad()
    for x in xs:
        y_r, y_f = ref.forward(x), fst.forward(x)
        close(y_f, y_r, dtype)
        dy = to_xp(get_array_module(x), rs.standard_normal(y_r.shape).astype(dtype))
        close(fst.backward(dy), ref.backward(dy), dtype)
        for k in ref.grads:
            close(fst.grads[k], ref.grads[k], dtype)
        assert fst.backward(dy, need_dx=False, param_grads=False) is None
        close(fst.backward(dy, param_grads=False), ref.backward(dy, param_grads=False), dtype)


def inputs_for(name, shape, dtype, rs):
    x = rs.standard_normal(shape)
    if name in ("ReLU", "LeakyReLU"):
        x += np.where(x >= 0, 1e-3, -1e-3)
    return x.astype(dtype)


# ---------------------------------------------------------------------------
# The same names, subclasses of the references
# ---------------------------------------------------------------------------
def test_fast_exports_drop_in_names():
    for name in fast.__all__:
        assert hasattr(fast, name), name
    for name in LAYERS + ["SGD", "Sequential", "Parallel", "Fork", "Concat", "Identity", "skip_concat",
                          "Adam", "ExponentialDecay", "LinearMomentum", "init_weight", "sigmoid"]:
        ref, fst = getattr(nn, name), getattr(fast, name)
        assert fst is ref or issubclass(fst, ref), name
    assert fast.Tanh is nn.Tanh and fast.LeakyReLU is not nn.LeakyReLU
    for name in ("Conv2d", "ConvTranspose2d"):
        assert issubclass(getattr(fast, name), getattr(nn, name)) and getattr(fast, name) is not getattr(nn, name)
    assert issubclass(fast.Adam, nn.Adam) and fast.Adam is not nn.Adam


# ---------------------------------------------------------------------------
# Each fast layer equals its reference
# ---------------------------------------------------------------------------
# (kernel, stride, padding, output_padding, in, out, H, W): square and not, strides 1–3, channel counts
# on both sides of _ByTap.MIN_CHANNELS, kernels smaller than, equal to and larger than the stride
CONVS = [((5, 5), (2, 2), (2, 2), (0, 0), 9, 16, 14, 14),      # the WGAN-GP critic's wide layer
         ((4, 4), (2, 2), (1, 1), (0, 0), 16, 8, 7, 7),        # DCGAN's generator layer
         ((3, 3), (1, 1), (1, 1), (0, 0), 16, 17, 6, 5),
         ((5, 3), (3, 2), (1, 0), (2, 1), 17, 16, 8, 7),
         ((2, 2), (2, 2), (0, 0), (1, 0), 16, 10, 5, 6),
         ((1, 1), (1, 1), (0, 0), (0, 0), 8, 8, 3, 4),
         ((2, 1), (3, 4), (0, 1), (2, 3), 16, 16, 4, 5),       # kernel smaller than the stride: phases never hit
         ((4, 4), (2, 2), (1, 1), (0, 0), 3, 1, 6, 6)]          # few channels: the reference's path


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("case", CONVS, ids=lambda c: "k{}s{}p{}op{}-{}to{}-{}x{}".format(*c))
@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d"])
def test_fast_convolution_equals_reference(xp, name, case, dtype):
    k, s, p, op, c_in, c_out, H, W = case
    kw = dict(stride=s, padding=p, dtype=dtype) | (dict(output_padding=op) if name == "ConvTranspose2d" else {})
    ref = getattr(nn, name)(c_in, c_out, k, init="normal", std=1.0, rng=np.random.default_rng(0), **kw)
    fst = getattr(fast, name)(c_in, c_out, k, **kw)
    fst.load_state_dict(ref.state_dict())
    ref.params["b"][...] = np.linspace(-1, 1, c_out, dtype=dtype)
    fst.params["b"][...] = ref.params["b"]
    ref, fst = on(xp, ref), on(xp, fst)
    rs = np.random.default_rng(1)
    xs = [to_xp(xp, rs.standard_normal((3, c_in, H, W)).astype(dtype)) for _ in range(2)]
    passes_agree(ref, fst, xs, rs, dtype)


@pytest.mark.parametrize("case", CONVS[:5], ids=lambda c: "k{}s{}".format(*c))
def test_col2im_by_tap_equals_col2im(xp, case):
    (kh, kw), (sh, sw), _, _, a, c, oh, ow = case
    N = 2
    shape = (N, (oh - 1) * sh + kh, (ow - 1) * sw + kw, c)
    rs = np.random.default_rng(3)
    rows = rs.standard_normal((N * oh * ow, a))
    W = rs.standard_normal((a, c, kh, kw))
    want = col2im(rows @ W.transpose(2, 3, 1, 0).reshape(kh * kw * c, a).T, shape, kh, kw, sh, sw)
    taps = np.ascontiguousarray(W.transpose(2, 3, 0, 1)).reshape(kh * kw, a, c)
    got = col2im_by_tap(to_xp(xp, rows), to_xp(xp, taps), shape, kh, kw, sh, sw)
    close(got, want, F64)
    # the last tap of the first window alone lands on that window's last pixel, channel 0
    one = np.zeros_like(taps)
    one[kh * kw - 1, 0, 0] = 1.0
    got = to_host(col2im_by_tap(to_xp(xp, np.eye(N * oh * ow, a)), to_xp(xp, one), shape, kh, kw, sh, sw))
    assert got[0, kh - 1, kw - 1, 0] == 1.0 and got.sum() == 1.0


@pytest.mark.parametrize("channels, used", [(16, 1), (15, 0), (1, 0)])
def test_fast_convolutions_take_the_tap_path_from_sixteen_channels(monkeypatch, channels, used):
    calls = []
    real = fast.col2im_by_tap
    monkeypatch.setattr(fast, "col2im_by_tap", lambda *a: calls.append(1) or real(*a))
    conv = fast.Conv2d(channels, 4, 3, stride=2, padding=1)
    conv.backward(np.ones_like(conv.forward(np.ones((2, channels, 6, 6), dtype=F32))))
    up = fast.ConvTranspose2d(4, channels, 3, stride=2, padding=1)
    up.forward(np.ones((2, 4, 3, 3), dtype=F32))
    assert len(calls) == 2 * used


@pytest.mark.parametrize("x_dtype, w_dtype", [(F64, F32), (F32, F64)])
@pytest.mark.parametrize("name", ["Conv2d", "ConvTranspose2d"])
def test_fast_convolution_keeps_the_reference_dtype_promotion(name, x_dtype, w_dtype):
    ref, fst = getattr(nn, name)(16, 16, 4, 2, 1, dtype=w_dtype), getattr(fast, name)(16, 16, 4, 2, 1, dtype=w_dtype)
    fst.load_state_dict(ref.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 16, 6, 6)).astype(x_dtype)
    y_r, y_f = ref.forward(x), fst.forward(x)
    dy = np.ones_like(y_r, dtype=x_dtype)
    dx_r, dx_f = ref.backward(dy), fst.backward(dy)
    assert y_f.dtype == y_r.dtype == dx_f.dtype == dx_r.dtype == np.float64
    close(y_f, y_r, F64)
    close(dx_f, dx_r, F64)

@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("shape", [(6, 7), (2, 3, 7), (1, 7)], ids=["2d", "3d", "one-row"])
@pytest.mark.parametrize("name", LAYERS)
def test_fast_layer_equals_reference(xp, name, shape, dtype):
    ref, fst = pair(name, dtype)
    ref, fst = on(xp, ref), on(xp, fst)
    same_mask(ref, fst, 1)
    rs = np.random.default_rng(2)
    x1, x2 = (to_xp(xp, inputs_for(name, shape, dtype, rs)) for _ in range(2))
    passes_agree(ref, fst, (x1, x2), rs, dtype)
    # evaluation mode
    close(fst.forward(x1, train=False), ref.forward(x1, train=False), dtype)


@pytest.mark.parametrize("name", ["Linear", "Maxout"])
def test_fast_layer_equals_reference_on_mixed_dtypes(xp, name):
    """A float64 input to float32 layers: float64 outputs, float32 gradients
    (the fast layers' write-in-place path does not apply)."""
    ref, fst = (on(xp, m) for m in pair(name, F32))
    rs = np.random.default_rng(3)
    ref.zero_grad()
    fst.zero_grad()
    for _ in range(2):
        x = to_xp(xp, rs.standard_normal((4, 7)))
        y_r, y_f = ref.forward(x), fst.forward(x)
        assert y_f.dtype == F64
        close(y_f, y_r, F64)
        dy = to_xp(xp, rs.standard_normal(y_r.shape))
        close(fst.backward(dy), ref.backward(dy), F64)
        for k in ref.grads:
            close(fst.grads[k], ref.grads[k], F32)


@pytest.mark.parametrize("slope", [0.0, 0.2, 0.01])
def test_fast_leaky_relu_is_bit_for_bit_on_channels_last_views(xp, slope):
    """x·s and dy·s with s = max([x > 0], slope) give exactly the reference's
    numbers — on an (N, C, H, W) view of channels-last memory (what a
    convolution hands on), with ±0, NaN, ±inf and denormals — and a second
    backward with another dy (the penalty's tangent pass), also in another
    dtype, exactly the reference's for that dy."""
    rs = np.random.default_rng(4)
    x = rs.standard_normal((3, 5, 4, 6)).astype(np.float32)
    x.ravel()[:7] = [0.0, -0.0, np.nan, np.inf, -np.inf, 1e-40, -1e-40]
    x = to_xp(xp, x).transpose(0, 3, 1, 2)                       # (3, 6, 5, 4), not contiguous
    ref, fst = nn.LeakyReLU(slope), fast.LeakyReLU(slope)
    with np.errstate(invalid="ignore"):                          # -inf · 0 is NaN, in both
        y_r, y_f = to_host(ref.forward(x)), to_host(fst.forward(x))
    np.testing.assert_array_equal(y_f, y_r)
    np.testing.assert_array_equal(np.signbit(y_f), np.signbit(y_r))
    for dtype in (np.float32, np.float32, np.float64):
        dy = to_xp(xp, rs.standard_normal((3, 5, 4, 6)).astype(dtype)).transpose(0, 3, 1, 2)
        d_f, d_r = to_host(fst.backward(dy)), to_host(ref.backward(dy))
        assert d_f.dtype == d_r.dtype
        np.testing.assert_array_equal(d_f, d_r)
    assert fst.backward(dy, need_dx=False) is None


@pytest.mark.parametrize("p", [0.2, 0.5, 0.75])
def test_fast_dropout_mask_is_the_raw_word_bernoulli(xp, p):
    """Left to its own generator, fast Dropout keeps exactly the units of
    ``bernoulli(rng, shape, 1 − p)`` and scales them by 1/(1 − p)."""
    x = to_xp(xp, np.random.default_rng(0).uniform(1, 2, size=(40, 30)))
    layer = fast.Dropout(p, rng=rng_for(xp, 7))
    y = layer.forward(x)
    kept = bernoulli(rng_for(xp, 7), x.shape, 1 - p)
    assert bool(xp.all(y == xp.where(kept, x * (1 / (1 - p)), 0)))
    dy = xp.ones_like(x)
    assert bool(xp.all(layer.backward(dy) == xp.where(kept, 1 / (1 - p), 0)))


# ---------------------------------------------------------------------------
# Maxout: the no-tie shortcut and the tie loop against argmax routing
# ---------------------------------------------------------------------------
def _maxout_pair_with(W, b, units, pieces):
    ref = nn.Maxout(W.shape[0], units, pieces, dtype=W.dtype)
    ref.params["W"][...] = W
    ref.params["b"][...] = b
    fst = fast.Maxout(W.shape[0], units, pieces, dtype=W.dtype)
    fst.load_state_dict(ref.state_dict())
    return ref, fst


def _run(layer, x, dy):
    layer.zero_grad()
    y = layer.forward(x)
    dx = layer.backward(dy)
    return [to_host(y), to_host(dx)] + [to_host(g).copy() for g in layer.grads.values()]


def _force_the_loop(monkeypatch):
    """The shortcut runs when ``count_nonzero(hit) == y.size``: make that false."""
    monkeypatch.setattr(fast.np, "count_nonzero", lambda a: -1)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("path", ["shortcut", "loop"])
def test_maxout_routing_without_ties_equals_argmax(dtype, path, monkeypatch):
    rs = np.random.default_rng(9)
    units, pieces = 20, 5
    ref, fst = _maxout_pair_with(rs.standard_normal((30, units * pieces)).astype(dtype),
                                 rs.standard_normal(units * pieces).astype(dtype), units, pieces)
    x, dy = rs.standard_normal((16, 30)).astype(dtype), rs.standard_normal((16, units)).astype(dtype)
    taken = []
    real_count = np.count_nonzero
    if path == "loop":
        _force_the_loop(monkeypatch)
    else:  # record that the shortcut's condition held
        monkeypatch.setattr(fast.np, "count_nonzero", lambda a: taken.append(real_count(a)) or taken[-1])
    want, got = _run(ref, x, dy), _run(fst, x, dy)
    if path == "shortcut":
        assert taken == [16 * units]  # one hit per unit: the shortcut ran
    for g, w in zip(got, want):
        close(g, w, dtype)


@pytest.mark.parametrize("dtype", [F64, F32])
@pytest.mark.parametrize("path", ["detected", "forced"])
def test_maxout_routing_with_ties_equals_argmax(dtype, path, monkeypatch):
    """Small integers make ties everywhere (two-, three-, five-way); every
    value is exact, so the results must be *equal*: each tie's gradient goes
    to its first maximal piece, as ``argmax`` picks."""
    rs = np.random.default_rng(4)
    units, pieces = 6, 5
    W = rs.integers(-1, 2, size=(3, units * pieces)).astype(dtype)
    b = np.zeros(units * pieces, dtype)
    ref, fst = _maxout_pair_with(W, b, units, pieces)
    x = rs.integers(-1, 2, size=(10, 3)).astype(dtype)
    x[0] = 0  # every piece 0: a five-way tie in every unit
    dy = rs.integers(1, 9, size=(10, units)).astype(dtype)
    z = (x @ W + b).reshape(10, pieces, units)
    hits = (z == z.max(axis=1, keepdims=True)).sum(axis=1)
    assert (hits > 1).mean() > 0.3 and (hits == pieces).any()  # plenty of ties, some total
    if path == "forced":
        _force_the_loop(monkeypatch)
    for g, w in zip(_run(fst, x, dy), _run(ref, x, dy)):
        np.testing.assert_array_equal(g, w)


def test_maxout_hand_made_ties_route_to_the_first_piece():
    layer = fast.Maxout(1, 2, 4, init="zeros", dtype=F64)
    # per unit: unit 0 = [1, 3, 3, 0], unit 1 = [2, 2, 2, 2] (ties in both units)
    layer.params["b"][:] = nn.Maxout.from_unit_major(np.array([1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 2, 4)
    layer.zero_grad()
    layer.forward(np.zeros((1, 1)))
    layer.backward(np.array([[10.0, 20.0]]))
    want = nn.Maxout.from_unit_major(np.array([0.0, 10, 0, 0, 20, 0, 0, 0]), 2, 4)
    np.testing.assert_array_equal(layer.grads["b"], want)


# ---------------------------------------------------------------------------
# The blocked SGD equals the reference SGD, bit for bit
# ---------------------------------------------------------------------------
class Params(nn.Module):
    """A module that is nothing but parameters."""

    def __init__(self, params):
        super().__init__()
        self.params = dict(params)
        self.grads = {k: np.zeros_like(v) for k, v in params.items()}


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("momentum", ["schedule", "constant", "none"])
def test_fast_sgd_equals_reference_bit_for_bit(xp, dtype, momentum):
    rs = np.random.default_rng(0)
    shapes = {"W": (3, fast.BLOCK + 7), "b": (5,), "T": (40, 30)}  # several blocks and a partial one
    host = {k: rs.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    host["T"] = np.ascontiguousarray(host["T"]).T  # non-contiguous: updated whole
    models = [on(xp, Params({k: v.copy() for k, v in host.items()})) for _ in range(2)]
    mu = {"schedule": LinearMomentum(0.3, 0.9, saturate_epoch=3, steps_per_epoch=2),
          "constant": 0.5, "none": 0.0}[momentum]
    lr = ExponentialDecay(0.1, 1.05)
    opts = [nn.SGD(models[0], lr=lr, momentum=mu), fast.SGD(models[1], lr=lr, momentum=mu)]
    for step in range(7):
        for k, s in shapes.items():
            g = rs.standard_normal(host[k].shape).astype(dtype)
            for m in models:
                m.grads[k][...] = to_xp(xp, g)
        for opt in opts:
            opt.step()
        for k in shapes:
            np.testing.assert_array_equal(to_host(models[1].params[k]), to_host(models[0].params[k]))
    assert sorted(opts[1].state) == sorted(opts[0].state)
    for k, v in opts[0].state.items():
        np.testing.assert_array_equal(to_host(opts[1].state[k]), to_host(v))



@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_fast_adam_equals_reference_bit_for_bit(xp, dtype, weight_decay):
    rs = np.random.default_rng(1)
    shapes = {"W": (3, fast.BLOCK + 7), "b": (5,), "T": (40, 30)}  # several blocks and a partial one
    host = {k: rs.standard_normal(s).astype(dtype) for k, s in shapes.items()}
    host["T"] = np.ascontiguousarray(host["T"]).T  # non-contiguous: updated whole
    models = [on(xp, Params({k: v.copy() for k, v in host.items()})) for _ in range(2)]
    lr = ExponentialDecay(1e-3, 1.05)
    opts = [nn.Adam(models[0], lr=lr, weight_decay=weight_decay),
            fast.Adam(models[1], lr=lr, weight_decay=weight_decay)]
    for step in range(5):
        for k in shapes:
            g = rs.standard_normal(host[k].shape).astype(dtype)
            for m in models:
                m.grads[k][...] = to_xp(xp, g)
        for opt in opts:
            opt.step()
        for k in shapes:
            np.testing.assert_array_equal(to_host(models[1].params[k]), to_host(models[0].params[k]))
    for k, v in opts[0].state.items():
        np.testing.assert_array_equal(to_host(opts[1].state[k]), to_host(v))


# ---------------------------------------------------------------------------
# zero_grad only marks; reading shows zeros
# ---------------------------------------------------------------------------
def _trained_once(xp, L=fast, seed=0):
    rs = np.random.default_rng(seed)
    net = on(xp, L.Sequential([L.Dropout(0.2), L.Maxout(4, 3, 2, init="normal", std=1.0, rng=rs, dtype=F64),
                               L.ReLU(), L.Linear(3, 2, init="normal", std=1.0, rng=rs, dtype=F64),
                               L.Sigmoid()]))
    net.set_rng(rng_for(xp, seed))
    y = net.forward(to_xp(xp, rs.standard_normal((5, 4))))
    net.backward(xp.ones_like(y))
    assert all(bool(xp.any(g != 0)) for g in net.gradients().values())
    return net


def test_fast_grads_read_right_after_zero_grad_are_zero(xp):
    net = _trained_once(xp)
    net.zero_grad()
    for name, g in net.gradients().items():
        assert not bool(xp.any(g != 0)), name
    # each way of looking: the layer's dict, named_parameters, state_dict-free access
    net = _trained_once(xp)
    net.zero_grad()
    assert not bool(xp.any(net[1].grads["W"] != 0))
    assert all(not bool(xp.any(g != 0)) for _, _, g in net.named_parameters())
    # a backward that leaves the parameters alone keeps them zero
    net = _trained_once(xp)
    net.zero_grad()
    y = net.forward(to_xp(xp, np.ones((2, 4))))
    net.backward(xp.ones_like(y), param_grads=False)
    assert all(not bool(xp.any(g != 0)) for g in net.gradients().values())


def test_fast_grads_references_survive_zero_grad(xp):
    """A reference taken before zero_grad sees the zeros once anyone reads
    ``grads``, and the next backward's values — the arrays are never replaced."""
    net = _trained_once(xp)
    held = dict(net.gradients())
    net.zero_grad()
    net.gradients()  # a read writes the zeros
    assert all(not bool(xp.any(g != 0)) for g in held.values())
    x = to_xp(xp, np.ones((3, 4)))
    net.set_rng(rng_for(xp, 1))
    net.backward(xp.ones_like(net.forward(x)))
    for k, g in net.gradients().items():
        assert g is held[k]


@pytest.mark.parametrize("SGD", [nn.SGD, fast.SGD], ids=["ref-sgd", "fast-sgd"])
def test_step_after_zero_grad_without_backward_moves_nothing(xp, SGD):
    net = _trained_once(xp)
    before = {k: to_host(p).copy() for k, p in net.parameters().items()}
    net.zero_grad()
    SGD(net, lr=0.1).step()  # no momentum: the step is −lr·g with g = 0
    for k, p in net.parameters().items():
        np.testing.assert_array_equal(to_host(p), before[k])


# ---------------------------------------------------------------------------
# Aliasing: no returned or cached array is overwritten by a later call
# ---------------------------------------------------------------------------
def test_workspace_reuses_only_unreferenced_arrays():
    ws = Workspace(limit=4)
    a = ws.get("z", np, (3, 4), F64)
    assert a.shape == (3, 4) and a.dtype == F64
    b = ws.get("z", np, (3, 4), F64)
    assert b is not a and not np.shares_memory(a, b)  # `a` is still held
    ref = weakref.ref(b)
    del b
    c = ws.get("z", np, (3, 4), F64)
    assert c is ref()  # nobody held it: handed out again
    # a view keeps its base in use
    view = c[1:, ::2]
    view[...] = 7.0
    del c
    d = ws.get("z", np, (3, 4), F64)
    assert not np.shares_memory(d, view)
    d[...] = -1.0
    assert np.all(view == 7.0)
    # a reshaped view, a transpose: the same
    del view
    e = d.reshape(-1).T
    del d
    f = ws.get("z", np, (3, 4), F64)
    assert not np.shares_memory(e, f)
    # different names, shapes, dtypes are different arrays
    del e, f
    g1, g2, g3 = ws.get("z", np, (3, 4), F64), ws.get("y", np, (3, 4), F64), ws.get("z", np, (4, 3), F64)
    g4 = ws.get("z", np, (3, 4), F32)
    assert g4.dtype == F32 and len({id(g) for g in (g1, g2, g3, g4)}) == 4
    assert not any(np.shares_memory(u, v) for u, v in [(g1, g2), (g1, g3), (g2, g3)])
    assert len(ws._bufs) <= ws.limit


@pytest.mark.parametrize("name", LAYERS)
def test_returned_arrays_are_never_overwritten(xp, name):
    """Outputs and input gradients of earlier calls stay as they were through
    later forward (training and evaluation) and backward calls."""
    _, layer = pair(name, F64)
    layer = on(xp, layer).set_rng(rng_for(xp, 0))
    rs = np.random.default_rng(1)
    kept = []
    for step in range(4):
        x = to_xp(xp, rs.standard_normal((6, 7)))
        y = layer.forward(x, train=step != 2)
        dx = layer.backward(to_xp(xp, rs.standard_normal(y.shape)))
        kept += [(y, to_host(y).copy()), (dx, to_host(dx).copy())]
        for arr, snapshot in kept:
            np.testing.assert_array_equal(to_host(arr), snapshot)


@pytest.mark.parametrize("name", ["Linear", "Maxout", "Dropout", "ReLU", "Sigmoid"])
def test_a_held_cache_is_never_overwritten(xp, name):
    """forward(x), then — while something still holds that pass's cache —
    forward passes of other batches (evaluation mode, then training mode);
    backward from the held cache still gives the gradient for x."""
    ref, fst = pair(name, F64)
    ref, fst = on(xp, ref), on(xp, fst)
    same_mask(ref, fst, 2)
    rs = np.random.default_rng(3)
    x = to_xp(xp, inputs_for(name, (6, 7), F64, rs))
    dy = to_xp(xp, rs.standard_normal((6,) + ref.output_shape((7,))))
    ref.zero_grad()
    ref.forward(x)
    want = ref.backward(dy)
    fst.zero_grad()
    fst.forward(x)
    held = copy.copy(fst)  # shares the cache (and the workspace) with fst
    for train in (False, True):
        fst.forward(to_xp(xp, inputs_for(name, (6, 7), F64, rs)), train=train)
    close(held.backward(dy), want, F64)
    for k in ref.grads:
        close(held.grads[k], ref.grads[k], F64)


# ---------------------------------------------------------------------------
# bernoulli: the raw-word masks
# ---------------------------------------------------------------------------
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


def test_bernoulli_other_generators_compare_float32_uniforms():
    got = bernoulli(HostMaskRng(5, np), (4, 6), 0.4)
    np.testing.assert_array_equal(got, np.random.default_rng(5).random((4, 6), dtype=np.float32) < 0.4)


@pytest.mark.parametrize("q", [-0.1, 1.5, float("nan")])
def test_bernoulli_rejects_q_outside_unit_interval(q):
    with pytest.raises(ValueError, match="q must be in"):
        bernoulli(np.random.default_rng(0), (2,), q)


# ---------------------------------------------------------------------------
# One whole iteration of Algorithm 1 against plain formulas
# ---------------------------------------------------------------------------
ITER_TOL = {F64: 1e-10, F32: 1e-4}


def _small_paper_like(dtype, fast_layers=True, seed=0):
    rng = np.random.default_rng(seed)
    G = build_generator(11, noise_dim=6, g_hidden=(9, 8), g_irange=0.5, output_bias=0.1, rng=rng, dtype=dtype,
                        fast_layers=fast_layers)
    D = build_discriminator(11, d_units=5, d_pieces=3, d_layers=2, d_irange=0.5, d_dropout=(0.2, 0.5, 0.5),
                            rng=rng, dtype=dtype, fast_layers=fast_layers)
    return G, D


def _reference_iteration(P, x, rng, m, lr, mu, V, fast_layers):
    """Algorithm 1 (k = 1, non-saturating) with plain formulas.

    ``P``: parameters {"G0W": …}; ``V``: velocities; updated in place.
    Random numbers are drawn in the library's order: D step — noise, then D's
    three dropout masks on the real batch, then three on G(z); G step —
    noise, then D's three masks on G(z).
    """
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731  (moderate logits only)
    dt = x.dtype.type
    half = dt(math.sqrt(3.0))

    def G(z):
        h1 = z @ P["G0W"] + P["G0b"]
        a1 = np.maximum(h1, 0)
        h2 = a1 @ P["G2W"] + P["G2b"]
        a2 = np.maximum(h2, 0)
        h3 = a2 @ P["G4W"] + P["G4b"]
        out = sig(h3)
        return out, (z, h1, a1, h2, a2, out)

    def G_back(cache, dout):
        z, h1, a1, h2, a2, out = cache
        dh3 = dout * out * (1 - out)
        g = {"G4W": a2.T @ dh3, "G4b": dh3.sum(0)}
        dh2 = (dh3 @ P["G4W"].T) * (h2 > 0)
        g.update({"G2W": a1.T @ dh2, "G2b": dh2.sum(0)})
        dh1 = (dh2 @ P["G2W"].T) * (h1 > 0)
        g.update({"G0W": z.T @ dh1, "G0b": dh1.sum(0)})
        return g

    def maxout(v, W, b):  # 5 units × 3 pieces, piece-major columns
        z = (v @ W + b).reshape(len(v), 3, 5)
        w = z.argmax(1)
        return np.take_along_axis(z, w[:, None, :], 1)[:, 0, :], w

    def keep(shape, q):
        if fast_layers:  # Bernoulli(q) from 32-bit halves of the raw 64-bit words
            n = math.prod(shape)
            words = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
            return words.reshape(shape) < round(q * 2**32)
        return rng.random(shape, dtype=np.float32) < q  # the reference layer's draw

    def D(v):
        masks = [keep(v.shape, 0.8) / dt(0.8)]
        d0 = v * masks[0]
        y1, w1 = maxout(d0, P["D1W"], P["D1b"])
        masks.append(keep(y1.shape, 0.5) / dt(0.5))
        d1 = y1 * masks[1]
        y2, w2 = maxout(d1, P["D3W"], P["D3b"])
        masks.append(keep(y2.shape, 0.5) / dt(0.5))
        d2 = y2 * masks[2]
        return d2 @ P["D5W"] + P["D5b"], (masks, d0, w1, d1, w2, d2)

    def D_back(cache, dlogit):
        masks, d0, w1, d1, w2, d2 = cache
        g = {"D5W": d2.T @ dlogit, "D5b": dlogit.sum(0)}
        dy2 = (dlogit @ P["D5W"].T) * masks[2]
        dz2 = (dy2[:, None, :] * (w2[:, None, :] == np.arange(3)[:, None])).reshape(len(dy2), -1)
        g.update({"D3W": d1.T @ dz2, "D3b": dz2.sum(0)})
        dy1 = (dz2 @ P["D3W"].T) * masks[1]
        dz1 = (dy1[:, None, :] * (w1[:, None, :] == np.arange(3)[:, None])).reshape(len(dy1), -1)
        g.update({"D1W": d0.T @ dz1, "D1b": dz1.sum(0)})
        return g, (dz1 @ P["D1W"].T) * masks[0]

    def momentum(names, grads):
        for k in names:
            V[k] = dt(mu) * V[k] - dt(lr) * grads[k]
            P[k] += V[k]

    # D step: L_D = mean softplus(-a_real) + mean softplus(a_fake), two passes whose gradients add
    z = rng.random((m, 6), dtype=x.dtype) * (2 * half) - half
    fake, _ = G(z)
    a_r, cache_r = D(x)
    g_real, _ = D_back(cache_r, -sig(-a_r) / m)
    a_f, cache_f = D(fake)
    g_fake, _ = D_back(cache_f, sig(a_f) / m)
    momentum([k for k in P if k[0] == "D"], {k: g_real[k] + g_fake[k] for k in g_real})
    # G step: L_G = mean softplus(-a_fake), through the *updated* D
    z = rng.random((m, 6), dtype=x.dtype) * (2 * half) - half
    fake, gcache = G(z)
    logits, cache = D(fake)
    _, dfake = D_back(cache, -sig(-logits) / m)
    momentum([k for k in P if k[0] == "G"], G_back(gcache, dfake))


@pytest.mark.parametrize("fast_layers", [True, False], ids=["fast", "ref"])
@pytest.mark.parametrize("dtype", [F64, F32])
def test_whole_iteration_matches_plain_formulas(dtype, fast_layers):
    m, lr, mu, seed = 8, 0.1, 0.5, 3
    G, D = _small_paper_like(dtype, fast_layers)
    P = {f"G{k.replace('.', '')}": v.copy() for k, v in G.parameters().items()}
    P.update({f"D{k.replace('.', '')}": v.copy() for k, v in D.parameters().items()})
    V = {k: np.zeros_like(v) for k, v in P.items()}
    L = fast if fast_layers else nn
    gan = GAN(G, D, L.SGD(D, lr=lr, momentum=mu), L.SGD(G, lr=lr, momentum=mu), NoisePrior(6),
              loss="non-saturating", k=1, seed=seed, device="cpu")
    xs = [np.random.default_rng(i).random((m, 11)).astype(dtype) for i in range(3)]
    rng = gan.rng  # the reference replays the GAN's own stream from the same state
    ref_rng = np.random.Generator(type(rng.bit_generator)())
    ref_rng.bit_generator.state = rng.bit_generator.state
    for x in xs:
        gan.iteration(lambda x=x: x)
        _reference_iteration(P, x, ref_rng, m, lr, mu, V, fast_layers)
    for prefix, net in (("G", G), ("D", D)):
        for name, p in net.parameters().items():
            want = P[prefix + name.replace(".", "")]
            err = np.abs(p - want).max() / max(1.0, float(np.abs(want).max()))
            assert err < ITER_TOL[dtype], (prefix + name, err)


@requires_gpu
@pytest.mark.gpu
@pytest.mark.parametrize("dtype", [F64, F32])
def test_whole_iteration_cpu_gpu_parity(dtype):
    """Same parameters, data, noise and dropout masks (all drawn on the host):
    one iteration on NumPy and on CuPy agree to rounding."""
    import cupy

    results = []
    for device in ("cpu", "gpu"):
        dev = get_device(device)
        G, D = _small_paper_like(dtype)
        gan = GAN(G, D, fast.SGD(D, lr=0.1, momentum=0.5), fast.SGD(G, lr=0.1, momentum=0.5), NoisePrior(6),
                  loss="non-saturating", k=1, seed=0, device=dev)
        # the same host stream for noise and masks on either device
        gan.rng = HostMaskRng(42, np if device == "cpu" else cupy)
        D.set_rng(gan.rng)
        x = dev.asarray(np.random.default_rng(1).random((8, 11)).astype(dtype))
        for _ in range(2):
            gan.iteration(lambda: x)
        results.append({**{"G" + k: to_numpy(v) for k, v in G.parameters().items()},
                        **{"D" + k: to_numpy(v) for k, v in D.parameters().items()}})
    for k in results[0]:
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=0, atol=ITER_TOL[dtype] * 10, err_msg=k)
