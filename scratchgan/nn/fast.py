"""Drop-in fast versions of the reference layers and of SGD.

``scratchgan.nn.fast`` exports the same names as :mod:`scratchgan.nn` —
``Linear``, ``Maxout``, ``Dropout``, ``ReLU``, ``Sigmoid``, ``SGD``, … — with
the same constructors, parameters and results, so a model builder switches
with one import::

    from scratchgan.nn import fast as nn        # instead of: from scratchgan import nn

Each version here is tested equal to its reference (``tests/test_fast.py``,
to rounding, on identical inputs). Training uses them by default. Every trick
was measured in the training loop of the paper's model on a 2-core CPU
(``benchmarks/train_step.py``):

* **Reused buffers** (:class:`Workspace`) for large temporaries — maxout's
  pieces, hits and routed gradient, the dropout mask: allocating tens of
  megabytes afresh on every call costs page faults (about 7 % of a step at
  m = 1000). A buffer is handed out again only when nothing outside the
  workspace refers to it, so no returned or cached array can be overwritten
  by a later call.
* **Gradients written, not added, after** ``zero_grad()``: the weight-gradient
  product goes straight into ``grads`` (``matmul(..., out=)``) instead of a
  temporary that is then added to zeros. ``zero_grad`` only marks the
  gradients as zero; reading ``grads`` before the next backward writes the
  zeros, so the accumulation semantics are exactly the reference's.
* **Maxout** runs its max and its gradient routing over contiguous piece
  blocks (the piece-major column order), routes in one pass when no unit has
  a tie, and keeps ``z`` so backward need not recompute it.
* **Dropout masks from raw 32-bit words** of the bit generator, compared with
  ``round(q·2³²)``: about twice as fast as ``rng.random(shape) < q`` and exact
  to 2⁻³² (float32 uniforms have 24 random bits).
* **A sigmoid with one exponential** (``max(e, [x ≥ 0]) / (1 + e)``) and a
  ReLU that forms its mask only when a gradient is asked for.
* **SGD in L2-sized blocks**: ``v *= μ; v −= η·g; θ += v`` over a whole
  multi-megabyte array streams it from memory three times, over a 32 k-element
  block once.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..backend import get_array_module
from . import layers as _ref
from . import optim as _optim
from .containers import Concat, Fork, Identity, Parallel, Sequential, skip_concat  # noqa: F401
from .layers import LeakyReLU, Tanh, init_weight, sigmoid  # noqa: F401
from .module import check_shape
from .optim import Adam, ExponentialDecay, LinearMomentum  # noqa: F401

__all__ = ["Workspace", "bernoulli", "fast_sigmoid", "Linear", "Maxout", "Dropout", "ReLU", "Sigmoid",
           "LeakyReLU", "Tanh", "SGD", "Adam", "Sequential", "Parallel", "Fork", "Concat", "Identity",
           "skip_concat", "ExponentialDecay", "LinearMomentum"]


class Workspace:
    """Arrays a layer reuses from call to call for its temporaries.

    :meth:`get` returns an uninitialised array of the asked shape and dtype.
    It hands out the array it gave last time for the same name only if
    nothing else refers to it any more — a cache, a view, a caller — and a
    fresh one otherwise. At most ``limit`` arrays are kept.
    """

    def __init__(self, limit=8):
        self._bufs: dict = {}
        self.limit = limit

    def get(self, name, xp, shape, dtype):
        key = (name, tuple(shape), np.dtype(dtype).str, xp.__name__)
        buf = self._bufs.get(key)
        # references: the dict, ``buf`` and getrefcount's argument; any more
        # means the array (or a view of it) is still in use somewhere
        if buf is None or sys.getrefcount(buf) > 3:
            if len(self._bufs) >= self.limit:
                self._bufs.clear()
            buf = self._bufs[key] = xp.empty(shape, dtype=dtype)
        return buf


class _FreshGrads:
    """Mixin: ``zero_grad()`` marks the gradients as zero without writing them.

    The next backward then *writes* its results into ``grads`` (no temporary,
    no addition); later backward calls add. Reading ``grads`` while they are
    marked writes the zeros first, so anyone who looks sees exactly the
    reference's accumulated values.
    """

    _fresh = False

    @property
    def grads(self):
        if self._fresh:
            for g in self._grads.values():
                g[...] = 0
            self._fresh = False
        return self._grads

    @grads.setter
    def grads(self, value):
        self._grads, self._fresh = value, False

    def _zero_own_grads(self):
        self._fresh = True

    def _take_fresh(self):
        fresh, self._fresh = self._fresh, False
        return fresh

    def _add_product(self, key, a, b, fresh, ws):
        """``grads[key] += a @ b``, written in place when the gradient is fresh."""
        xp, g = get_array_module(a), self._grads[key]
        if a.dtype != g.dtype or b.dtype != g.dtype:
            if fresh:
                g[...] = 0
            g += a @ b
        elif fresh:
            xp.matmul(a, b, out=g)
        else:
            g += xp.matmul(a, b, out=ws.get("d" + key, xp, g.shape, g.dtype))

    def _add_colsum(self, key, a, fresh):
        """``grads[key] += a.sum(axis=0)``."""
        g = self._grads[key]
        if fresh and a.dtype == g.dtype:
            a.sum(axis=0, out=g)
        else:
            if fresh:
                g[...] = 0
            g += a.sum(axis=0)


class Linear(_FreshGrads, _ref.Linear):
    """:class:`scratchgan.nn.Linear`, writing fresh gradients in place."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._ws = Workspace(limit=4)

    def _moved(self):
        self._ws = Workspace(limit=4)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        x = self._cached()
        self._check_dy(dy, x.shape[:-1] + (self.n_out,))
        if param_grads:
            fresh = self._take_fresh()
            x2, dy2 = x.reshape(-1, self.n_in), dy.reshape(-1, self.n_out)
            self._add_product("W", x2.T, dy2, fresh, self._ws)
            self._add_colsum("b", dy2, fresh)
        return dy @ self.params["W"].T if need_dx else None


class Maxout(_FreshGrads, _ref.Maxout):
    """:class:`scratchgan.nn.Maxout` over contiguous piece blocks, with reused buffers.

    Forward keeps ``z`` and ``y``; backward finds each unit's winner by
    comparing the pieces with ``y`` (the first equal piece wins, as
    ``argmax``). When every unit has exactly one hit — no tie, no NaN, checked
    on the CPU only (on the GPU the check would wait for the device) — the
    hits are the winners and the routing is one multiplication.
    """

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._ws = Workspace()

    def _moved(self):
        self._ws = Workspace()

    def forward(self, x, train=True):
        check_shape(repr(self), x, (..., self.n_in))
        xp = get_array_module(x)
        self._cache = None  # release the previous pass's buffers for reuse
        x2 = x.reshape(-1, self.n_in)
        W = self.params["W"]
        rows = x2.shape[0]
        z = self._ws.get("z", xp, (rows, W.shape[1]), xp.result_type(x2, W))
        xp.matmul(x2, W, out=z)
        z += self.params["b"]
        z = z.reshape(rows, self.n_pieces, self.n_units)
        # y = max over the pieces, a running maximum over the contiguous blocks
        y = z[:, 0, :].copy() if self.n_pieces == 1 else xp.maximum(z[:, 0, :], z[:, 1, :])
        for p in range(2, self.n_pieces):
            xp.maximum(y, z[:, p, :], out=y)
        self._cache = (x, z, y)
        return y.reshape(x.shape[:-1] + (self.n_units,))

    def backward(self, dy, *, need_dx=True, param_grads=True):
        x, z, y = self._cached()
        self._check_dy(dy, x.shape[:-1] + (self.n_units,))
        xp = get_array_module(dy)
        dy2 = dy.reshape(y.shape)
        hit = xp.equal(z, y[:, None, :], out=self._ws.get("hit", xp, z.shape, bool))
        dz = self._ws.get("dz", xp, z.shape, dy.dtype)
        if xp is np and np.count_nonzero(hit) == y.size and not np.isnan(y).any():
            np.multiply(hit, dy2[:, None, :], out=dz)  # exactly one hit per unit: the winners
        else:
            unrouted = xp.ones(y.shape, dtype=bool)   # units whose gradient has no piece yet
            for p in range(self.n_pieces):
                winner = hit[:, p, :] & unrouted
                xp.multiply(dy2, winner, out=dz[:, p, :])
                unrouted ^= winner
        dz = dz.reshape(y.shape[0], self.n_pieces * self.n_units)
        if param_grads:
            fresh = self._take_fresh()
            self._add_product("W", x.reshape(-1, self.n_in).T, dz, fresh, self._ws)
            self._add_colsum("b", dz, fresh)
        if not need_dx:
            return None
        return (dz @ self.params["W"].T).reshape(x.shape)


def bernoulli(rng, shape, q):
    """A boolean array of ``shape``, each entry True with probability ``q ∈ [0, 1]``.

    With a NumPy generator: raw 32-bit words of its bit generator compared with
    ``round(q·2³²)``, exact to 2⁻³². Any other generator (CuPy's):
    ``rng.random(shape, float32) < q``.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"bernoulli: q must be in [0, 1], got {q!r}")
    if isinstance(rng, np.random.Generator):
        if q == 1.0:
            return np.ones(shape, dtype=bool)
        n = math.prod(shape)
        words = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
        return words.reshape(shape) < np.uint32(min(round(q * 2.0 ** 32), 2 ** 32 - 1))
    return rng.random(shape, dtype=np.float32) < q


class Dropout(_ref.Dropout):
    """:class:`scratchgan.nn.Dropout` with raw-word masks and a reused mask buffer."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._ws = Workspace(limit=4)

    def _moved(self):
        self._ws = Workspace(limit=4)

    def _keep_mask(self, x):
        self._check_rng(x)
        return bernoulli(self.rng, x.shape, 1.0 - self.p)

    def forward(self, x, train=True):
        if not train or self.p == 0.0:
            self._cache = (None, x.shape)
            return x
        xp = get_array_module(x)
        self._cache = None
        scaled = self._ws.get("mask", xp, x.shape, x.dtype)  # keep/q in x's dtype
        xp.multiply(self._keep_mask(x), x.dtype.type(1.0 / (1.0 - self.p)), out=scaled)
        self._cache = (scaled, x.shape)
        return x * scaled

    def backward(self, dy, *, need_dx=True, param_grads=True):
        scaled, shape = self._cached()
        self._check_dy(dy, shape)
        if not need_dx:
            return None
        return dy if scaled is None else dy * scaled


def fast_sigmoid(x):
    """σ(x) with one exponential and no branch: with ``e = e^{−|x|}``,
    ``σ(x) = n / (1 + e)`` where the numerator ``n`` is 1 for ``x ≥ 0`` and
    ``e`` for ``x < 0`` — that is ``n = max(e, [x ≥ 0])`` since ``e ≤ 1``."""
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    y = e + x.dtype.type(1)
    xp.reciprocal(y, out=y)
    xp.maximum(e, x >= 0, out=e)
    y *= e
    return y


class Sigmoid(_ref.Sigmoid):
    """:class:`scratchgan.nn.Sigmoid` through :func:`fast_sigmoid`."""

    def forward(self, x, train=True):
        y = fast_sigmoid(x)
        self._cache = y
        return y


class ReLU(_ref.ReLU):
    """:class:`scratchgan.nn.ReLU` caching its output; the mask ``[y > 0]`` is
    formed only when backward asks (G's forward pass in a D step never does)."""

    def forward(self, x, train=True):
        y = get_array_module(x).maximum(x, 0)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * (y > 0) if need_dx else None


BLOCK = 1 << 15  # elements per block of a CPU update: a few blocks fit in L2


def blocks(*arrays):
    """Matching flat slices of ``arrays`` (same size), ``BLOCK`` elements at a time;
    one block (the whole arrays) on the GPU or for non-contiguous arrays (whose
    reshape would be a copy, and the update would go into the copy)."""
    if get_array_module(arrays[0]) is not np or not all(a.flags.c_contiguous for a in arrays):
        yield list(arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    for i in range(0, flat[0].size, BLOCK):
        yield [f[i:i + BLOCK] for f in flat]


class SGD(_optim.SGD):
    """:class:`scratchgan.nn.SGD` updated block by block (the same numbers, bit for bit)."""

    def _update(self, name, p, g):
        if self._plain:
            return super()._update(name, p, g)
        xp, f = get_array_module(p), p.dtype.type
        lr, mu = f(self._lr_t), f(self._mu_t)
        v = self._slot(name, "v", p)
        scratch = xp.empty(min(p.size, BLOCK), dtype=p.dtype) if xp is np else None
        for pb, gb, vb in blocks(p, g, v):
            vb *= mu
            if scratch is not None and gb.size <= scratch.size:
                vb -= xp.multiply(gb, lr, out=scratch[:gb.size].reshape(gb.shape))
            else:  # the GPU, or a non-contiguous array updated whole (larger than a block)
                vb -= gb * lr
            pb += vb
