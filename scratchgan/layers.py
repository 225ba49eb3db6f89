"""Layers as forward/backward pairs, every gradient derived by hand.

Conventions (as in CS231n and numpy-ml):

* ``x`` is the layer input, shape ``(m, n_in)`` for a minibatch of ``m`` rows;
  ``y`` is its output. ``dy`` is the upstream gradient ∂L/∂y for some scalar
  loss ``L``, with ``y``'s shape; ``backward(dy)`` returns ``dx = ∂L/∂x``.
* A layer with parameters keeps them in the dict ``params`` and puts ∂L/∂param
  in the dict ``grads`` under the same keys (``"W"``, ``"b"``), so an optimiser
  walks the two together. ``backward`` *overwrites* ``grads`` (it writes into
  the same arrays, so references held elsewhere stay valid).
* ``forward`` caches exactly what ``backward`` needs and nothing more: the input
  for Linear, a boolean mask for LeakyReLU, the scaled mask for Dropout, the
  *output* for ReLU, Tanh and Sigmoid, the input, pieces and output for Maxout.
  ``backward`` before any ``forward`` is an error, and a caller must not
  change a forward output in place before the backward pass that uses it
  (ReLU, Tanh and Sigmoid keep their output as the cache).
* Every function takes its array module from its input,
  ``xp = get_array_module(x)``, so the same code runs on NumPy and CuPy.

The derivations are written in the ``backward`` docstrings: one named
intermediate per line, the local derivative, then the closed form.
"""

from __future__ import annotations

import math

import numpy as np

from .backend import get_array_module, device_of, to_device, get_device

__all__ = [
    "Layer",
    "Linear",
    "ReLU",
    "LeakyReLU",
    "Tanh",
    "Sigmoid",
    "Maxout",
    "Dropout",
    "init_weight",
    "sigmoid",
    "bernoulli",
]


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------
class Layer:
    """Base class: parameter dicts, the forward cache, device/dtype moves."""

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self._cache = None
        self._workspace: dict = {}

    # -- the two methods every layer defines ---------------------------------
    def forward(self, x, train: bool = True):  # pragma: no cover - abstract
        raise NotImplementedError

    def backward(self, dy, *, need_dx: bool = True, param_grads: bool = True):  # pragma: no cover
        raise NotImplementedError

    def __call__(self, x, train: bool = True):
        return self.forward(x, train=train)

    # -- helpers ---------------------------------------------------------------
    def _cached(self):
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                "backward needs the values its forward pass cached"
            )
        return self._cache

    def _check_dy(self, dy, y_shape):
        if tuple(dy.shape) != tuple(y_shape):
            raise ValueError(
                f"{type(self).__name__}.backward: dy has shape {tuple(dy.shape)}, "
                f"but the forward output had shape {tuple(y_shape)}"
            )

    def _buffer(self, name, xp, shape, dtype):
        """An array this layer reuses from call to call for an *internal*
        temporary (one that is never returned: Maxout's pieces, a mask).

        The contents are garbage; the caller overwrites them with ``out=``.
        On the CPU, allocating tens of megabytes afresh on every call costs
        page faults (about 7 % of a training step at m = 1000); reusing the
        arrays does not. One array per (name, shape, dtype, device) — the D
        step and the G step use two batch sizes — and at most 8 in all.
        """
        key = (name, tuple(shape), np.dtype(dtype).str, xp.__name__)
        buf = self._workspace.get(key)
        if buf is None:
            if len(self._workspace) >= 8:
                self._workspace.clear()
            buf = self._workspace[key] = xp.empty(shape, dtype=dtype)
        return buf

    @staticmethod
    def _check_input(name, x, n_in=None):
        if getattr(x, "ndim", None) != 2:
            raise ValueError(
                f"{name}: expected a 2-D input of shape (batch, features), "
                f"got shape {tuple(getattr(x, 'shape', ()))}"
            )
        if n_in is not None and x.shape[1] != n_in:
            raise ValueError(
                f"{name}: expected {n_in} input features, got x of shape {tuple(x.shape)}"
            )

    def to(self, device=None, dtype=None):
        """Move parameters and gradients to ``device`` and/or cast to ``dtype``.

        Returns ``self``. The forward cache is dropped.
        """
        for store in (self.params, self.grads):
            for k, v in store.items():
                dev = device_of(v) if device is None else get_device(device)
                store[k] = to_device(v, dev, dtype=dtype or v.dtype)
        self._cache = None
        self._workspace = {}
        return self

    @property
    def n_params(self) -> int:
        return int(sum(v.size for v in self.params.values()))

    def output_features(self, n_in: int) -> int:
        """Number of output features for ``n_in`` input features."""
        return n_in

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------
def init_weight(n_in, n_out, init="uniform", *, irange=0.05, std=0.01, rng=None, dtype=np.float32):
    """A weight matrix ``(n_in, n_out)`` drawn on the host (reproducible on any device).

    Parameters
    ----------
    init : {"uniform", "glorot", "he", "normal", "zeros"}
        ``"uniform"``: U(−irange, irange), the paper's pylearn2 ``irange``
        (G: 0.05, D: 0.005; PAPER.md §1–2). ``"glorot"``: U(±√(6/(n_in+n_out))).
        ``"he"``: N(0, 2/n_in). ``"normal"``: N(0, std²).
    rng : numpy.random.Generator or int or None
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    shape = (n_in, n_out)
    if init == "uniform":
        w = rng.uniform(-irange, irange, size=shape)
    elif init == "glorot":
        a = math.sqrt(6.0 / (n_in + n_out))
        w = rng.uniform(-a, a, size=shape)
    elif init == "he":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / n_in)
    elif init == "normal":
        w = rng.standard_normal(shape) * std
    elif init == "zeros":
        w = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {init!r}; choose uniform, glorot, he, normal or zeros")
    return w.astype(dtype)


def _positive_int(name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------
class Linear(Layer):
    """Affine map ``y = x @ W + b``.

    Parameters
    ----------
    n_in, n_out : int
    init : str
        See :func:`init_weight`; default ``"uniform"`` with ``irange``, as in
        the paper's code.
    irange : float
        Half-width of the uniform initialisation.
    bias : float or array of shape (n_out,)
        Initial bias (the paper's G output layer starts at the logit of the
        per-pixel mean, PAPER.md §1).
    rng : numpy.random.Generator, int or None
    dtype : float32 by default (training); float64 for gradient checks.

    Shapes: ``x (m, n_in)``, ``W (n_in, n_out)``, ``b (n_out,)``, ``y (m, n_out)``.
    """

    def __init__(self, n_in, n_out, init="uniform", *, irange=0.05, std=0.01,
                 bias=0.0, rng=None, dtype=np.float32):
        super().__init__()
        self.n_in = _positive_int("n_in", n_in)
        self.n_out = _positive_int("n_out", n_out)
        W = init_weight(self.n_in, self.n_out, init, irange=irange, std=std, rng=rng, dtype=dtype)
        b = np.broadcast_to(np.asarray(bias, dtype=dtype), (self.n_out,)).copy()
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    def forward(self, x, train=True):
        """``y = x W + b`` — shapes ``(m, n_in) → (m, n_out)``."""
        self._check_input("Linear", x, self.n_in)
        self._cache = x
        y = x @ self.params["W"]
        y += self.params["b"]  # in place: one (m, n_out) array, not two
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradients of ``y = x W + b``.

        Element-wise, ``y[i, j] = Σ_k x[i, k] W[k, j] + b[j]``, so

        * ∂y[i, j]/∂W[k, j] = x[i, k]  ⇒  ``dW[k, j] = Σ_i x[i, k] dy[i, j]``,
          i.e. ``dW = xᵀ dy``  (n_in, n_out);
        * ∂y[i, j]/∂b[j] = 1  ⇒  ``db = Σ_i dy[i, :]``  (n_out,);
        * ∂y[i, j]/∂x[i, k] = W[k, j]  ⇒  ``dx = dy Wᵀ``  (m, n_in).

        ``need_dx=False`` skips the input gradient (the first layer of a
        network) and ``param_grads=False`` skips ``dW, db`` (passing a
        gradient *through* a network whose parameters stay fixed); both only
        save work, the returned values are unchanged.
        """
        x = self._cached()
        self._check_dy(dy, (x.shape[0], self.n_out))
        xp = get_array_module(dy)
        if param_grads:
            xp.matmul(x.T, dy, out=self.grads["W"])
            dy.sum(axis=0, out=self.grads["b"])
        return dy @ self.params["W"].T if need_dx else None

    def output_features(self, n_in):
        return self.n_out

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out})"


# ---------------------------------------------------------------------------
# Element-wise activations
# ---------------------------------------------------------------------------
class ReLU(Layer):
    """``y = max(0, x)``."""

    def forward(self, x, train=True):
        y = get_array_module(x).maximum(x, 0)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``y = max(0, x)`` so ``∂y/∂x = [x > 0] = [y > 0]`` and ``dx = dy · [y > 0]``.

        At ``x = 0`` we use the subgradient 0. Cache: the output ``y`` (the
        mask is formed only when a gradient is asked for; a forward pass
        without backward, like G's in a D step, skips it).
        """
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * (y > 0) if need_dx else None


class LeakyReLU(Layer):
    """``y = x`` for ``x > 0``, ``slope·x`` otherwise."""

    def __init__(self, slope=0.2):
        super().__init__()
        if not (0.0 <= float(slope) < 1.0):
            raise ValueError(f"LeakyReLU slope must be in [0, 1), got {slope!r}")
        self.slope = float(slope)

    def forward(self, x, train=True):
        xp = get_array_module(x)
        self._cache = x > 0
        # for 0 <= slope < 1, max(x, slope·x) is x where x > 0 and slope·x elsewhere
        return xp.maximum(x, x * x.dtype.type(self.slope))

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``∂y/∂x = 1`` where ``x > 0`` and ``slope`` elsewhere, so
        ``dx = dy · (slope + (1 − slope)·[x > 0])``. Cache: the boolean mask."""
        positive = self._cached()
        self._check_dy(dy, positive.shape)
        if not need_dx:
            return None
        f = dy.dtype.type
        return dy * (positive * f(1.0 - self.slope) + f(self.slope))

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope})"


class Tanh(Layer):
    """``y = tanh(x)`` (finite for every finite input)."""

    def forward(self, x, train=True):
        xp = get_array_module(x)
        y = xp.tanh(x)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``tanh'(x) = 1 − tanh²(x) = 1 − y²``, so ``dx = dy · (1 − y²)``.

        Cache: the output ``y`` (no need to keep ``x``).
        """
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * (1 - y * y) if need_dx else None


def sigmoid(x):
    """Overflow-safe logistic function ``σ(x) = 1 / (1 + e^{−x})``.

    With ``e = e^{−|x|} ∈ (0, 1]``, which never overflows::

        x ≥ 0:  σ(x) = 1 / (1 + e^{−x})                     = 1 / (1 + e)
        x < 0:  σ(x) = e^{x} / (e^{x} + 1)  (times e^{x}/e^{x}) = e / (1 + e)

    so ``σ(x) = n / (1 + e)`` with numerator ``n = 1`` for ``x ≥ 0`` and
    ``n = e`` for ``x < 0``; as ``e ≤ 1`` that is ``n = max(e, [x ≥ 0])``.
    One exponential, no branch (``where`` over a random sign pattern is slow in
    NumPy), no warnings, no NaN; exactly 1 or 0 at ``x = ±1e4``, and full
    *relative* precision for tiny σ (σ(−40) ≈ 4e-18 is not rounded to 0).
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    y = e + x.dtype.type(1)
    xp.reciprocal(y, out=y)           # 1 / (1 + e)
    xp.maximum(e, x >= 0, out=e)      # the numerator n
    y *= e
    return y


class Sigmoid(Layer):
    """``y = σ(x) = 1 / (1 + e^{−x})``, computed without overflow."""

    def forward(self, x, train=True):
        y = sigmoid(x)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``σ'(x) = e^{−x}/(1+e^{−x})² = σ(x)·(1 − σ(x)) = y(1 − y)``, so
        ``dx = dy · y · (1 − y)``. Cache: the output ``y``.

        For ``|x|`` huge, ``y`` is exactly 0 or 1 and the gradient is exactly 0
        (its true limit), never NaN.
        """
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * y * (1 - y) if need_dx else None


# ---------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------
class Maxout(Layer):
    """Maxout units (Goodfellow et al., 2013), the paper's discriminator layer.

    ``z = x W + b`` has ``n_pieces·n_units`` columns and unit ``j`` outputs the
    max over its ``n_pieces`` pieces. The columns are stored **piece-major**:
    column ``p·n_units + j`` is piece ``p`` of unit ``j``, so::

        y[i, j] = max_p z[i, p·n_units + j]

    In array terms: view ``z`` as ``(m, n_pieces, n_units)`` and take the max
    over axis 1.

    **Column order.** pylearn2, the authors' library, stores the same pieces
    *unit-major* (column ``j·n_pieces + p``, PAPER.md §2). The two orders are a
    fixed permutation of the columns of ``W`` and ``b``: the same function
    class, and the same distribution at initialisation (i.i.d. entries). We use
    piece-major because each piece ``z[:, p, :]`` is then a contiguous run of
    every row, so the max and its gradient run at unit stride — about twice as
    fast as over strided pieces at m = 1000 (``benchmarks/``).
    :meth:`from_unit_major` converts pylearn2-ordered parameters.

    **Ties** go to the *first* (lowest-index) maximal piece, the convention of
    ``argmax``; only that piece receives gradient. (Ties have probability zero
    with real-valued inputs; the rule just makes backward well defined.)

    Parameters
    ----------
    n_in, n_units, n_pieces : int
    init, irange, std, rng, dtype :
        As for :class:`Linear` (the paper: uniform, irange 0.005).
    """

    def __init__(self, n_in, n_units, n_pieces, init="uniform", *, irange=0.005, std=0.01,
                 rng=None, dtype=np.float32):
        super().__init__()
        self.n_in = _positive_int("n_in", n_in)
        self.n_units = _positive_int("n_units", n_units)
        self.n_pieces = _positive_int("n_pieces", n_pieces)
        n_out = self.n_units * self.n_pieces
        W = init_weight(self.n_in, n_out, init, irange=irange, std=std, rng=rng, dtype=dtype)
        b = np.zeros(n_out, dtype=dtype)
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    @staticmethod
    def from_unit_major(a, n_units, n_pieces):
        """Reorder the last axis of ``a`` (a ``W`` or ``b`` in pylearn2's
        unit-major column order, ``j·n_pieces + p``) into this layer's
        piece-major order (``p·n_units + j``). Returns a new array."""
        lead = a.shape[:-1]
        if a.shape[-1] != n_units * n_pieces:
            raise ValueError(f"last axis has {a.shape[-1]} columns, expected {n_units}·{n_pieces}")
        xp = get_array_module(a)
        pieces = a.reshape(*lead, n_units, n_pieces).swapaxes(-1, -2)
        return xp.ascontiguousarray(pieces).reshape(*lead, n_units * n_pieces)

    def forward(self, x, train=True):
        """``(m, n_in) → (m, n_units)``; caches ``x``, ``z`` and ``y``."""
        self._check_input("Maxout", x, self.n_in)
        xp = get_array_module(x)
        m = x.shape[0]
        W = self.params["W"]
        z = xp.matmul(x, W, out=self._buffer("z", xp, (m, W.shape[1]), xp.result_type(x, W)))
        z += self.params["b"]
        z = z.reshape(m, self.n_pieces, self.n_units)
        # y = max over the pieces, as a running maximum over the contiguous
        # blocks z[:, p, :] (n_pieces SIMD passes; a reduction over a short
        # axis is much slower in NumPy).
        y = z[:, 0, :].copy() if self.n_pieces == 1 else xp.maximum(z[:, 0, :], z[:, 1, :])
        for p in range(2, self.n_pieces):
            xp.maximum(y, z[:, p, :], out=y)
        self._cache = (x, z, y)
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradient of maxout.

        Let ``p*(i, j)`` be the winning piece of unit ``j`` for row ``i``.

        * ``y[i, j] = z[i, p*, j]`` so ``∂y[i, j]/∂z[i, p, j] = [p = p*]``:
          the max routes the whole gradient to its winner, found by comparing
          each piece with the cached ``y`` (the first equal piece wins)::

              dz[i, p, j] = dy[i, j] · [p = p*(i, j)]        (m, n_pieces, n_units)

        * then ``z = x W + b`` (flattened to ``(m, n_pieces·n_units)``) is a
          Linear map, so ``dW = xᵀ dz``, ``db = Σ_i dz[i]`` and ``dx = dz Wᵀ``.
        """
        x, z, y = self._cached()
        m = x.shape[0]
        self._check_dy(dy, (m, self.n_units))
        xp = get_array_module(dy)
        hit = xp.equal(z, y[:, None, :], out=self._buffer("hit", xp, z.shape, bool))  # pieces equal to the max
        dz = self._buffer("dz", xp, z.shape, dy.dtype)
        if xp is np and np.count_nonzero(hit) == y.size and not np.isnan(y).any():
            # Exactly one hit per unit (no ties, no NaN): the hits are the winners.
            # Checked on the host, which on the GPU would wait for the device.
            np.multiply(hit, dy[:, None, :], out=dz)
        else:
            # In general: the first hit of each unit wins.
            unrouted = xp.ones(y.shape, dtype=bool)  # units whose gradient has no piece yet
            for p in range(self.n_pieces):
                winner = hit[:, p, :] & unrouted
                xp.multiply(dy, winner, out=dz[:, p, :])
                unrouted ^= winner
        dz = dz.reshape(m, self.n_pieces * self.n_units)
        if param_grads:
            xp.matmul(x.T, dz, out=self.grads["W"])
            dz.sum(axis=0, out=self.grads["b"])
        return dz @ self.params["W"].T if need_dx else None

    def output_features(self, n_in):
        return self.n_units

    def __repr__(self):
        return f"Maxout({self.n_in}, {self.n_units}, pieces={self.n_pieces})"


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------
def bernoulli(rng, shape, q):
    """A boolean array of ``shape``, each entry ``True`` with probability ``q ∈ [0, 1]``.

    With a NumPy generator the draw compares raw 32-bit words of its bit
    generator with ``round(q·2³²)``: exact to 2⁻³² (finer than comparing
    float32 uniforms, which have 24 random bits) and about twice as fast as
    ``rng.random(shape) < q``, the form used with any other generator (CuPy's).
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"bernoulli: q must be in [0, 1], got {q!r}")
    if isinstance(rng, np.random.Generator):
        if q == 1.0:  # (a dropout p so small that 1 − p rounds to 1)
            return np.ones(shape, dtype=bool)
        n = math.prod(shape)
        words = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
        return words.reshape(shape) < np.uint32(min(round(q * 2.0 ** 32), 2 ** 32 - 1))
    return rng.random(shape, dtype=np.float32) < q


class Dropout(Layer):
    """Inverted dropout.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of *dropping* a unit (the usual convention). The paper's
        "include probability 0.8" is ``Dropout(0.2)`` (PAPER.md §3.3).
    rng : numpy.random.Generator or cupy.random.Generator, optional
        Where the masks come from. It must live on the same device as the
        inputs; :meth:`scratchgan.network.Sequential.set_rng` sets it for every
        dropout layer of a network, and tests inject their own.

    In training each unit is kept with probability ``q = 1 − p`` and kept
    units are scaled by ``1/q``, so ``E[y] = x``; at evaluation
    (``train=False``) the layer is the identity — matching pylearn2's
    ``input_scale = 1/include_prob`` (PAPER.md §3.3).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        p = float(p)
        if not (0.0 <= p < 1.0):
            raise ValueError(f"Dropout probability p must be in [0, 1), got {p!r}")
        self.p = p
        self.rng = rng

    def forward(self, x, train=True):
        if not train or self.p == 0.0:
            self._cache = (None, x.shape)  # identity: backward is the identity too
            return x
        if self.rng is None:
            raise RuntimeError(
                "Dropout needs a random generator: pass Dropout(p, rng=...) or call "
                "net.set_rng(scratchgan.backend.default_rng(seed, device))"
            )
        xp = get_array_module(x)
        rng_on_gpu = type(self.rng).__module__.startswith("cupy")
        if isinstance(self.rng, np.random.Generator) and xp is not np or rng_on_gpu and xp is np:
            raise ValueError(
                f"Dropout: the random generator ({type(self.rng).__module__}) and the "
                f"input ({xp.__name__}) live on different devices"
            )
        q = 1.0 - self.p
        # scaled mask s: 1/q where kept, 0 where dropped (one array, in x's dtype)
        mask = self._buffer("mask", xp, x.shape, x.dtype)
        xp.multiply(bernoulli(self.rng, x.shape, q), x.dtype.type(1.0 / q), out=mask)
        self._cache = (mask, x.shape)
        return x * mask  # a new array: the caller's x is never modified

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``y = x · s`` with ``s = [kept]/q`` fixed by the forward pass, so
        ``∂y/∂x = s`` and ``dx = dy · s`` — the *same* mask as forward. In
        evaluation mode (or ``p = 0``) the layer is the identity and
        ``dx = dy``."""
        mask, shape = self._cached()
        self._check_dy(dy, shape)
        if not need_dx:
            return None
        return dy if mask is None else dy * mask

    def __repr__(self):
        return f"Dropout(p={self.p})"
