"""Drop-in fast versions of the reference layers and of SGD.

``scratchgan.nn.fast`` exports the same names as :mod:`scratchgan.nn` —
``Linear``, ``Maxout``, ``Dropout``, ``ReLU``, ``Sigmoid``, ``SGD``, … — with
the same constructors, parameters and results, so a model builder switches
with one import::

    from scratchgan.nn import fast as nn        # instead of: from scratchgan import nn

Each version here is tested equal to its reference (``tests/test_fast.py``,
to rounding, on identical inputs). Training uses them by default. Every trick
was measured in a training loop on a 2-core CPU: the paper's model's
(``benchmarks/train_step.py``), or for the convolutions and LeakyReLU the
``dcgan`` and ``wgan-gp`` presets' (``benchmarks/fast_ab.py``):

* **Reused buffers** (:class:`Workspace`) for large temporaries — maxout's
  pieces, hits and routed gradient, the dropout mask: allocating tens of
  megabytes afresh on every call costs page faults (about 7 % of a step at
  m = 1000). A buffer is handed out again only when nothing outside the
  workspace refers to it, so no returned or cached array can be overwritten
  by a later call.
* **One weight-gradient product over every pass**: Linear and Maxout record
  ``(x, dy)`` in backward and compute ``∂L/∂W`` when ``grads`` is read, as one
  product over the recorded passes, written straight into ``grads``
  (``matmul(..., out=)``) after ``zero_grad()``: the real and fake passes
  through D cost one product with twice the rows, not two products, a
  temporary and an addition (:class:`_DeferredWeightGrad`).
* **Maxout** runs its max and its gradient routing over contiguous piece
  blocks (the piece-major column order), routes in one pass when no unit has
  a tie, and keeps ``z`` so backward need not recompute it.
* **Dropout masks from raw 32-bit words** of the bit generator, compared with
  ``round(q·2³²)``: about twice as fast as ``rng.random(shape) < q`` and exact
  to 2⁻³² (float32 uniforms have 24 random bits).
* **col2im one kernel tap at a time** (Conv2d's input gradient,
  ConvTranspose2d's forward pass): the reference forms all ``kh·kw`` products
  ``rows · W_t`` as one matrix (megabytes), then adds each tap's slice
  back with a stride, ``C`` numbers at a time, which NumPy runs through its
  buffered iterator. Here each tap's product goes into one reused
  ``(N·OH·OW, C)`` buffer that stays in cache and is added, whole rows of
  ``OW·C`` numbers at a time, into the phase of a stride-split canvas it falls
  on; one copy interleaves the phases at the end (:func:`col2im_by_tap`;
  11–24 % faster on the WGAN-GP critic's and DCGAN's wide layers).
* **A sigmoid with one exponential** (``max(e, [x ≥ 0]) / (1 + e)``) and a
  ReLU that forms its mask only when a gradient is asked for.
* **A LeakyReLU without** ``where``: forward and backward are products with
  one factor that is exactly 1 or the slope; ``np.where`` on a boolean mask
  costs about ten times as much as a streamed product.
* **SGD and Adam in L2-sized blocks**: ``v *= μ; v −= η·g; θ += v`` over a whole
  multi-megabyte array streams it from memory three times, over a 32 k-element
  block once; Adam's ten passes likewise, with its temporaries in two scratch
  blocks (the same operations in the same order: bit for bit the reference).

Layers without a faster version here are the reference classes themselves
(``fast.Tanh is nn.Tanh``), so every model can be built from this module.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from ..backend import get_array_module
from . import conv as _conv
from . import layers as _ref
from . import optim as _optim
from .containers import Concat, Fork, Identity, Parallel, Sequential, skip_concat  # noqa: F401
from .layers import Embedding, Flatten, Reshape, Tanh, init_weight, sigmoid  # noqa: F401
from .module import check_shape
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm  # noqa: F401
from .optim import ExponentialDecay, LinearMomentum, RMSProp  # noqa: F401

__all__ = ["Workspace", "bernoulli", "fast_sigmoid", "col2im_by_tap", "Linear", "Maxout", "Dropout", "ReLU",
           "Sigmoid", "LeakyReLU", "Tanh", "Flatten", "Reshape", "Embedding", "Conv2d", "ConvTranspose2d",
           "BatchNorm1d", "BatchNorm2d", "LayerNorm", "SGD", "Adam", "RMSProp", "Sequential", "Parallel", "Fork",
           "Concat", "Identity", "skip_concat", "ExponentialDecay", "LinearMomentum"]


def _references(store, key):
    """How many references the array ``store[key]`` has, counted from this
    function (what "unused" reads as depends on the interpreter: calibrate)."""
    return sys.getrefcount(store[key])


class Workspace:
    """Arrays a layer reuses from call to call for its temporaries.

    :meth:`get` returns an uninitialised array of the asked shape and dtype.
    It hands out the array it gave last time for the same name only if
    nothing else refers to it any more — a cache, a view, a caller — and a
    fresh one otherwise. At most ``limit`` arrays are kept.

    "Nothing else" is the reference count of an array held by the workspace
    alone, measured once with the same function (CPython's counts of
    temporary references differ between versions), so any outside holder —
    a view counts, it refers to its base — shows as more.
    """

    _unused = None  # the count of an array only the workspace holds

    def __init__(self, limit=8):
        self._bufs: dict = {}
        self.limit = limit
        if Workspace._unused is None:
            probe = {"probe": np.empty(1)}
            Workspace._unused = _references(probe, "probe")

    def get(self, name, xp, shape, dtype):
        key = (name, tuple(shape), np.dtype(dtype).str, xp.__name__)
        if key not in self._bufs or _references(self._bufs, key) > Workspace._unused:
            if len(self._bufs) >= self.limit:
                self._bufs.clear()
            self._bufs[key] = xp.empty(shape, dtype=dtype)
        return self._bufs[key]


class _DeferredWeightGrad:
    """Mixin for the layers whose weight gradient is a product ``∂L/∂W += xᵀ·dy``.

    * ``zero_grad()`` zeroes the small gradients (the bias) and only *marks*
      the weight gradient as zero;
    * ``backward`` adds the bias gradient at once but only records the pair
      ``(x, dy)`` (rows) for the weight;
    * the first read of ``grads`` — the optimiser's step, or anyone —
      computes the weight gradient as ONE product over every recorded pass,
      ``[x₁; x₂]ᵀ·[dy₁; dy₂] = x₁ᵀdy₁ + x₂ᵀdy₂``, written straight into
      ``grads`` when it was marked zero and added otherwise.

    Real and fake batches through D thus cost one product with twice the rows
    instead of two products, a temporary and an addition, and whoever reads
    ``grads`` sees the reference's accumulated values. Two things differ from
    the reference, both said here because a drop-in must say them: a
    reference to the weight-gradient array kept from before is brought up to
    date only when ``grads`` is read again (the optimisers read it every
    step); and the recorded arrays are kept until then, so a forward input or
    a backward gradient must not be changed in place before the gradients
    are read.
    """

    _w_zero = False   # the weight gradient is marked zero, not yet written
    _pending = ()     # the recorded (x rows, dy rows) pairs

    @property
    def grads(self):
        if self._w_zero or self._pending:
            self._settle()
        return self._grads

    @grads.setter
    def grads(self, value):
        self._grads, self._w_zero, self._pending = value, False, []

    def _zero_own_grads(self):
        for key, g in self._grads.items():
            if key != "W":
                g[...] = 0
        self._w_zero, self._pending = True, []

    def _record(self, x_rows, dy_rows):
        """Remember ``∂L/∂W += x_rowsᵀ·dy_rows`` for the next read of ``grads``."""
        if not isinstance(self._pending, list):
            self._pending = []
        self._pending.append((x_rows, dy_rows))

    def _settle(self):
        pairs, zero = self._pending, self._w_zero
        self._pending, self._w_zero = [], False
        W = self._grads["W"]
        if not pairs:
            W[...] = 0
            return
        xp = get_array_module(W)
        x = pairs[0][0] if len(pairs) == 1 else xp.concatenate([p[0] for p in pairs])
        dy = pairs[0][1] if len(pairs) == 1 else xp.concatenate([p[1] for p in pairs])
        if zero and x.dtype == W.dtype and dy.dtype == W.dtype:
            xp.matmul(x.T, dy, out=W)
        else:
            if zero:
                W[...] = 0
            W += x.T @ dy


class Linear(_DeferredWeightGrad, _ref.Linear):
    """:class:`scratchgan.nn.Linear` with its weight gradient deferred to one
    product over every pass, and the bias added in place."""

    def forward(self, x, train=True):
        """As :meth:`scratchgan.nn.Linear.forward` (same shapes, same result); see the class docstring."""
        check_shape(repr(self), x, (..., self.n_in))
        self._cache = x
        y = x @ self.params["W"]
        if y.dtype == self.params["b"].dtype:
            y += self.params["b"]  # in place: one output array, not two
            return y
        return y + self.params["b"]

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """As :meth:`scratchgan.nn.Linear.backward` (same shapes, same result); see the class docstring."""
        x = self._cached()
        self._check_dy(dy, x.shape[:-1] + (self.n_out,))
        if param_grads:
            x2, dy2 = x.reshape(-1, self.n_in), dy.reshape(-1, self.n_out)
            self._record(x2, dy2)
            self._grads["b"] += dy2.sum(axis=0)
        return dy @ self.params["W"].T if need_dx else None


class Maxout(_DeferredWeightGrad, _ref.Maxout):
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
        """As :meth:`scratchgan.nn.Maxout.forward` (same shapes, same result); see the class docstring."""
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

    def winners(self):
        """The first piece equal to each unit's maximum (the reference's arg-max), (rows, n_units)."""
        x, z, y = self._cached()
        return get_array_module(z).argmax(z == y[:, None, :], axis=1)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """As :meth:`scratchgan.nn.Maxout.backward` (same shapes, same result); see the class docstring."""
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
            self._record(x.reshape(-1, self.n_in), dz)
            self._grads["b"] += dz.sum(axis=0)
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
        """As :meth:`scratchgan.nn.Dropout.forward` (same shapes, same result); see the class docstring."""
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
        """As :meth:`scratchgan.nn.Dropout.backward` (same shapes, same result); see the class docstring."""
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
        """As :meth:`scratchgan.nn.Sigmoid.forward` (same shapes, same result); see the class docstring."""
        y = fast_sigmoid(x)
        self._cache = y
        return y


class ReLU(_ref.ReLU):
    """:class:`scratchgan.nn.ReLU` caching its output; the mask ``[y > 0]`` is
    formed only when backward asks (G's forward pass in a D step never does)."""

    def forward(self, x, train=True):
        """As :meth:`scratchgan.nn.ReLU.forward` (same shapes, same result); see the class docstring."""
        y = get_array_module(x).maximum(x, 0)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """As :meth:`scratchgan.nn.ReLU.backward` (same shapes, same result); see the class docstring."""
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * (y > 0) if need_dx else None


class LeakyReLU(_ref.LeakyReLU):
    """:class:`scratchgan.nn.LeakyReLU` through one factor instead of ``where``:
    ``np.where`` on a boolean mask runs element by element (about 3 ms for
    400 k floats here, forward and backward alike); a product streams.

    The factor ``s = max([x > 0], slope)`` is exactly 1 where ``x > 0`` and
    ``slope`` elsewhere (NaN included), so ``y = x·s`` and ``dx = dy·s`` are the
    reference's ``where(x > 0, x, slope·x)`` and ``where(x > 0, dy, slope·dy)``
    bit for bit — signed zeros, NaN and ±inf included (``max(x, slope·x)``
    would not be: at slope 0 it turns +inf into NaN). The factor is the whole
    cache (4 bytes an element in float32), and backward may be called again
    with another ``dy`` (the penalty's second-order pass does).
    """

    def _factor(self, positive, dtype):
        factor = positive.astype(dtype)
        get_array_module(factor).maximum(factor, dtype.type(self.slope), out=factor)
        return factor

    def forward(self, x, train=True):
        """As :meth:`scratchgan.nn.LeakyReLU.forward` (same shapes, same result); see the class docstring."""
        factor = self._factor(x > 0, x.dtype)
        self._cache = factor
        return x * factor

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """As :meth:`scratchgan.nn.LeakyReLU.backward` (same shapes, same result); see the class docstring."""
        factor = self._cached()
        self._check_dy(dy, factor.shape)
        if not need_dx:
            return None
        if factor.dtype != dy.dtype:  # the slope rounded to dy's precision, as the reference multiplies
            factor = self._factor(factor == 1, dy.dtype)
        return dy * factor


BLOCK = 1 << 15  # elements per block of a CPU update: a few blocks fit in L2


def col2im_by_tap(rows, W_taps, shape_nhwc, kh, kw, sh, sw):
    """``col2im(rows · W_matᵀ)`` (:func:`scratchgan.nn.conv.col2im`), one kernel tap at a time.

    Parameters: rows (N·OH·OW, A); W_taps (kh·kw, A, C), tap ``t = u·kw + v``
    the matrix ``W_mat``'s rows give it; shape_nhwc = (N, Hp, Wp, C); kernel
    and stride as for col2im. Returns (N, Hp, Wp, C) in ``rows``' dtype (the
    caller promotes both operands first, as :class:`_ByTap` does; a view when
    the phases overhang the image), each pixel the sum of every window's share
    of it.

    Tap ``(u, v)`` of output position ``(i, j)`` lands on pixel
    ``(u + i·sh, v + j·sw)``: in the phase ``(u mod sh, v mod sw)`` of the
    canvas (the pixels whose coordinates have those remainders), at
    ``(u div sh + i, v div sw + j)`` of that phase. So one tap's contribution
    ``rows · W_taps[t]``, laid out ``(N, OH, OW, C)``, is added to one
    contiguous-rowed block of one phase; after all taps the phases are
    interleaved into the image (``canvas[p, q, n, a, b] → image[n, a·sh + p, b·sw + q]``).
    """
    xp = get_array_module(rows)
    N, Hp, Wp, C = shape_nhwc
    oh, ow = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    Hq, Wq = max(-(-Hp // sh), (kh - 1) // sh + oh), max(-(-Wp // sw), (kw - 1) // sw + ow)
    canvas = xp.zeros((sh, sw, N, Hq, Wq, C), dtype=rows.dtype)      # the sh·sw phases
    buf = xp.empty((rows.shape[0], C), dtype=rows.dtype)              # one tap's product, reused
    tap = buf.reshape(N, oh, ow, C)
    for u in range(kh):
        for v in range(kw):
            xp.matmul(rows, W_taps[u * kw + v], out=buf)
            canvas[u % sh, v % sw, :, u // sh: u // sh + oh, v // sw: v // sw + ow] += tap
    image = canvas.transpose(2, 3, 0, 4, 1, 5).reshape(N, Hq * sh, Wq * sw, C)   # interleave: one copy
    return image[:, :Hp, :Wp]


class _ByTap:
    """``_col2im`` tap by tap for channel counts where it pays. Measured on a
    2-core CPU: at 1 channel (the image layers) the reference's single product
    is faster, from 16 channels the taps are, in between it depends on the
    layer's shape. The GPU takes the same rule, unmeasured."""

    #: the fewest image channels C for which the tap-by-tap form is used
    MIN_CHANNELS = 16

    def _col2im(self, rows, shape_nhwc):
        if shape_nhwc[-1] < self.MIN_CHANNELS:
            return super()._col2im(rows, shape_nhwc)
        (kh, kw), C = self.kernel_size, shape_nhwc[-1]
        W_mat = self._w_mat()                    # (kh·kw·C, A), the reference's operand: row t·C + c
        dt = np.result_type(rows.dtype, W_mat.dtype)                  # the reference's product's dtype
        W_taps = W_mat.astype(dt, copy=False).reshape(kh * kw, C, -1).transpose(0, 2, 1)   # (kh·kw, A, C) views
        return col2im_by_tap(rows.astype(dt, copy=False), W_taps, shape_nhwc, kh, kw, *self.stride)


class Conv2d(_ByTap, _conv.Conv2d):
    """:class:`scratchgan.nn.Conv2d` whose input gradient runs col2im tap by tap."""


class ConvTranspose2d(_ByTap, _conv.ConvTranspose2d):
    """:class:`scratchgan.nn.ConvTranspose2d` whose forward pass runs col2im tap by tap."""


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


class Adam(_optim.Adam):
    """:class:`scratchgan.nn.Adam` updated block by block, its temporaries in
    two reused scratch blocks: the reference's operations in the reference's
    order, so the same numbers bit for bit."""

    def _update(self, name, p, g):
        xp, f = get_array_module(p), p.dtype.type
        m, v = self._slot(name, "m", p), self._slot(name, "v", p)
        if xp is not np:
            return super()._update(name, p, g)
        b1, b2, c1, c2 = f(self.beta1), f(self.beta2), f(self._c1), f(self._c2)
        one_b1, one_b2, lr, eps = f(1 - self.beta1), f(1 - self.beta2), f(self._lr_t), f(self.eps)
        size = min(p.size, BLOCK)
        s, t = np.empty(size, dtype=p.dtype), np.empty(size, dtype=p.dtype)
        for pb, gb, mb, vb in blocks(p, g, m, v):
            if gb.size > size:  # non-contiguous: updated whole, as the reference
                return super()._update(name, p, g)
            sb, tb = s[:gb.size].reshape(gb.shape), t[:gb.size].reshape(gb.shape)
            mb *= b1
            mb += np.multiply(gb, one_b1, out=sb)          # m ← β1·m + (1 − β1)·g
            vb *= b2
            np.multiply(gb, gb, out=sb)
            vb += np.multiply(sb, one_b2, out=sb)          # v ← β2·v + (1 − β2)·g²
            np.divide(vb, c2, out=sb)
            np.sqrt(sb, out=sb)
            sb += eps                                      # √v̂ + ε
            np.divide(mb, c1, out=tb)                      # m̂
            tb *= lr
            pb -= np.divide(tb, sb, out=tb)                # θ ← θ − η·m̂/(√v̂ + ε)
