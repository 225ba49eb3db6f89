"""The reference layers: forward/backward pairs, every gradient derived by hand.

These are the textbook versions, written to be read beside a derivation.
:mod:`scratchgan.nn.fast` has drop-in versions that are faster and tested
equal to these.

Conventions (as in CS231n and numpy-ml):

* ``x`` is the input, a batch along axis 0; ``y`` the output; ``dy`` the
  upstream gradient ∂L/∂y of some scalar loss ``L``, with ``y``'s shape;
  ``backward(dy)`` returns ``dx = ∂L/∂x`` and *adds* ∂L/∂param to ``grads``.
* Element-wise layers take arrays of any shape; :class:`Linear` and
  :class:`Maxout` act on the last axis, ``(…, n_in) → (…, n_out)``.
* ``forward`` caches exactly what ``backward`` needs: the input for Linear, a
  boolean mask for ReLU, LeakyReLU and Dropout, the output for Tanh and
  Sigmoid, the input and the winning piece for Maxout.
* Every function takes its array module from its input
  (``xp = get_array_module(x)``), so the same code runs on NumPy and CuPy.

The paper notes cited as ``docs/paper.md §N`` are in this repository.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, to_numpy
from .module import Module, check_shape

__all__ = [
    "Linear", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "Maxout", "Dropout", "Flatten", "Reshape", "Embedding",
    "init_weight", "sigmoid", "positive_int", "check_label_array",
]


# ---------------------------------------------------------------------------
# Initialisation
# ---------------------------------------------------------------------------
def init_weight(shape, init="uniform", *, fan_in, fan_out, irange=0.05, std=0.02, rng=None,
                dtype=np.float32):
    """A weight array of ``shape`` drawn on the host (the same on every device).

    Parameters
    ----------
    shape : tuple of int
    init : {"uniform", "normal", "glorot", "he", "zeros"}
        ``"uniform"``: U(−irange, irange), pylearn2's ``irange`` (the paper's
        G uses 0.05, D 0.005; docs/paper.md §1–2). ``"normal"``: N(0, std²)
        (DCGAN: std 0.02). ``"glorot"``: U(±√(6/(fan_in + fan_out))).
        ``"he"``: N(0, 2/fan_in).
    fan_in, fan_out : int
        Inputs and outputs per unit (``n_in``, ``n_out`` for a Linear layer).
    rng : numpy.random.Generator, int or None

    Returns
    -------
    numpy.ndarray of ``shape`` and ``dtype``
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if init == "uniform":
        w = rng.uniform(-irange, irange, size=shape)
    elif init == "normal":
        w = rng.standard_normal(shape) * std
    elif init == "glorot":
        a = math.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-a, a, size=shape)
    elif init == "he":
        w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
    elif init == "zeros":
        w = np.zeros(shape)
    else:
        raise ValueError(f"unknown init {init!r}; choose uniform, normal, glorot, he or zeros")
    return w.astype(dtype)


def positive_int(name, v):
    """``v`` as an int, or a ValueError naming ``name``."""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def check_label_array(labels, num_classes, where):
    """``labels`` unchanged if it is an integer array ``(N,)`` of classes in
    ``[0, num_classes)``; otherwise a ValueError that starts with ``where``.

    The one check of labels in scratchgan: the label layers (Embedding, and
    the conditioning layers of :mod:`scratchgan.models.conditioning`), the
    conditional variant and the category matching all call it. Floats (even
    ``3.0``) and booleans are refused, not rounded. The range is read on the
    CPU only: on the GPU reading it would make the step wait for the device,
    and CuPy's ``take`` wraps an out-of-range label silently, so labels from
    outside are moved to the host and checked where they enter
    (:func:`scratchgan.gan.cgan.check_labels`, the trainer).
    """
    dtype = getattr(labels, "dtype", None)
    if getattr(labels, "ndim", None) != 1 or dtype is None or dtype.kind not in "iu":
        got = "booleans" if dtype is not None and dtype.kind == "b" else (dtype or type(labels).__name__)
        a = to_numpy(labels) if dtype is not None else None
        values = repr(labels) if a is None else repr(a.item()) if a.ndim == 0 else \
            np.array2string(a.ravel()[:5], separator=", ") + (" …" if a.size > 5 else "")
        raise ValueError(f"{where}: expected integer labels of shape (batch,), class numbers 0..{num_classes - 1}; "
                         f"got {got} of shape {getattr(labels, 'shape', ())}: {values}")
    if get_array_module(labels) is np:
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            raise ValueError(f"{where}: label {int(bad[0])} is out of range: {num_classes} classes, "
                             f"0..{num_classes - 1}")
    return labels


# ---------------------------------------------------------------------------
# Linear
# ---------------------------------------------------------------------------
class Linear(Module):
    """Affine map on the last axis: ``y = x W + b``.

    Parameters
    ----------
    n_in, n_out : int
    init, irange, std, rng, dtype :
        See :func:`init_weight` (default: the paper's uniform ``irange``).
    bias : float or array of shape (n_out,)
        The initial bias (the paper's G output layer starts at the logit of
        the mean pixel, docs/paper.md §1).

    ``params["W"]``: (n_in, n_out); ``params["b"]``: (n_out,).
    """

    def __init__(self, n_in, n_out, init="uniform", *, irange=0.05, std=0.02, bias=0.0, rng=None,
                 dtype=np.float32):
        super().__init__()
        self.n_in, self.n_out = positive_int("n_in", n_in), positive_int("n_out", n_out)
        W = init_weight((self.n_in, self.n_out), init, fan_in=self.n_in, fan_out=self.n_out,
                        irange=irange, std=std, rng=rng, dtype=dtype)
        b = np.broadcast_to(np.asarray(bias, dtype=dtype), (self.n_out,)).copy()
        self.params = {"W": W, "b": b}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros_like(b)}

    def forward(self, x, train=True):
        """Parameters: x (…, n_in). Returns: y (…, n_out)."""
        check_shape(repr(self), x, (..., self.n_in))
        self._cache = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradients of ``y = x W + b``.

        Parameters: dy (…, n_out). Returns: dx (…, n_in), or None.

        With the leading axes flattened into rows ``i``,
        ``y[i, j] = Σ_k x[i, k] W[k, j] + b[j]``, so

        * ∂y[i, j]/∂W[k, j] = x[i, k]  ⇒  ``dW[k, j] = Σ_i x[i, k] dy[i, j]``,
          i.e. ``dW = xᵀ dy``  (n_in, n_out);
        * ∂y[i, j]/∂b[j] = 1  ⇒  ``db = Σ_i dy[i, :]``  (n_out,);
        * ∂y[i, j]/∂x[i, k] = W[k, j]  ⇒  ``dx = dy Wᵀ``  (…, n_in).
        """
        x = self._cached()
        self._check_dy(dy, x.shape[:-1] + (self.n_out,))
        if param_grads:
            x2, dy2 = x.reshape(-1, self.n_in), dy.reshape(-1, self.n_out)
            self.grads["W"] += x2.T @ dy2
            self.grads["b"] += dy2.sum(axis=0)
        return dy @ self.params["W"].T if need_dx else None

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_out,)

    def __repr__(self):
        return f"Linear({self.n_in}, {self.n_out})"


# ---------------------------------------------------------------------------
# Element-wise activations (any shape)
# ---------------------------------------------------------------------------
class ReLU(Module):
    """``y = max(0, x)``, element-wise."""

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: y (same shape)."""
        self._cache = x > 0
        return get_array_module(x).maximum(x, 0)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``∂y/∂x = [x > 0]`` (the subgradient 0 at ``x = 0``), so
        ``dx = dy · [x > 0]``. Cache: the boolean mask.

        Parameters: dy (shape of y). Returns: dx (same shape).
        """
        positive = self._cached()
        self._check_dy(dy, positive.shape)
        return dy * positive if need_dx else None


class LeakyReLU(Module):
    """``y = x`` where ``x > 0``, ``slope·x`` elsewhere (element-wise)."""

    def __init__(self, slope=0.2):
        super().__init__()
        if not (0.0 <= float(slope) < 1.0):
            raise ValueError(f"LeakyReLU slope must be in [0, 1), got {slope!r}")
        self.slope = float(slope)

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: y (same shape)."""
        xp = get_array_module(x)
        positive = x > 0
        self._cache = positive
        return xp.where(positive, x, x * x.dtype.type(self.slope))

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``∂y/∂x = 1`` where ``x > 0`` and ``slope`` elsewhere, so
        ``dx = dy · where(x > 0, 1, slope)``. Cache: the boolean mask.

        Parameters: dy (shape of y). Returns: dx (same shape).
        """
        positive = self._cached()
        self._check_dy(dy, positive.shape)
        if not need_dx:
            return None
        return get_array_module(dy).where(positive, dy, dy * dy.dtype.type(self.slope))

    def __repr__(self):
        return f"LeakyReLU({self.slope})"


class Tanh(Module):
    """``y = tanh(x)``, element-wise (finite for every finite input)."""

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: y (same shape), in (−1, 1)."""
        y = get_array_module(x).tanh(x)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """The derivative of tanh, step by step::

            tanh x  = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ) = u / v
            u' = eˣ + e⁻ˣ = v,   v' = eˣ − e⁻ˣ = u
            tanh' x = (u'v − uv') / v² = (v² − u²) / v² = 1 − (u/v)² = 1 − y²

        so ``dx = dy · (1 − y²)``, from the cached output alone.

        Parameters: dy (shape of y). Returns: dx (same shape).
        """
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * (1 - y * y) if need_dx else None


def sigmoid(x):
    """The logistic function ``σ(x) = 1 / (1 + e^{−x})``, without overflow.

    ``e^{−x}`` overflows for ``x < −88`` in float32. With ``e = e^{−|x|} ≤ 1``
    (which never overflows) the two halves are::

        x ≥ 0:  σ(x) = 1 / (1 + e^{−x}) = 1 / (1 + e)
        x < 0:  σ(x) = eˣ / (eˣ + 1)     = e / (1 + e)     (multiply by eˣ/eˣ)

    Parameters: x (any shape). Returns: σ(x) (same shape), in [0, 1].
    """
    xp = get_array_module(x)
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1 / (1 + e), e / (1 + e))


class Sigmoid(Module):
    """``y = σ(x) = 1 / (1 + e^{−x})``, element-wise, computed without overflow."""

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: y (same shape), in [0, 1]."""
        y = sigmoid(x)
        self._cache = y
        return y

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """The derivative of the logistic function, step by step::

            σ(x)  = (1 + e^{−x})^{−1}
            σ'(x) = −(1 + e^{−x})^{−2} · (−e^{−x})       (chain rule)
                  = [1 / (1 + e^{−x})] · [e^{−x} / (1 + e^{−x})]
                  = σ(x) · (1 − σ(x))                   (e^{−x}/(1+e^{−x}) = 1 − σ)
                  = y (1 − y)

        so ``dx = dy · y · (1 − y)``, from the cached output. For huge ``|x|``,
        ``y`` is exactly 0 or 1 and the gradient exactly 0, never NaN.

        Parameters: dy (shape of y). Returns: dx (same shape).
        """
        y = self._cached()
        self._check_dy(dy, y.shape)
        return dy * y * (1 - y) if need_dx else None


# ---------------------------------------------------------------------------
# Maxout
# ---------------------------------------------------------------------------
class Maxout(Module):
    """Maxout units (Goodfellow et al., 2013), the paper's discriminator layer.

    ``z = x W + b`` has ``n_pieces·n_units`` columns; unit ``j`` outputs the
    max over its pieces. The columns are stored **piece-major**: column
    ``p·n_units + j`` is piece ``p`` of unit ``j``, so with ``z`` viewed as
    ``(m, n_pieces, n_units)``::

        y[i, j] = max_p z[i, p, j]

    pylearn2, the authors' library, stores the same pieces unit-major
    (column ``j·n_pieces + p``, docs/paper.md §2): a fixed permutation of the
    columns of ``W`` and ``b``, so the same function class with the same
    initial distribution. Piece-major keeps each piece contiguous, which the
    fast version (:class:`scratchgan.nn.fast.Maxout`) uses;
    :meth:`from_unit_major` converts pylearn2-ordered arrays.

    Parameters
    ----------
    n_in, n_units, n_pieces : int
    init, irange, std, rng, dtype :
        As for :class:`Linear` (the paper: uniform, irange 0.005).

    ``params["W"]``: (n_in, n_pieces·n_units); ``params["b"]``: (n_pieces·n_units,).
    """

    def __init__(self, n_in, n_units, n_pieces, init="uniform", *, irange=0.005, std=0.02, rng=None,
                 dtype=np.float32):
        super().__init__()
        self.n_in = positive_int("n_in", n_in)
        self.n_units = positive_int("n_units", n_units)
        self.n_pieces = positive_int("n_pieces", n_pieces)
        n_out = self.n_units * self.n_pieces
        W = init_weight((self.n_in, n_out), init, fan_in=self.n_in, fan_out=n_out, irange=irange,
                        std=std, rng=rng, dtype=dtype)
        self.params = {"W": W, "b": np.zeros(n_out, dtype=dtype)}
        self.grads = {"W": np.zeros_like(W), "b": np.zeros(n_out, dtype=dtype)}

    @staticmethod
    def from_unit_major(a, n_units, n_pieces):
        """Reorder the last axis of ``a`` (a ``W`` or ``b`` in pylearn2's
        unit-major order ``j·n_pieces + p``) into piece-major order
        ``p·n_units + j``. Returns a new array."""
        lead = a.shape[:-1]
        if a.shape[-1] != n_units * n_pieces:
            raise ValueError(f"last axis has {a.shape[-1]} columns, expected {n_units}·{n_pieces}")
        xp = get_array_module(a)
        pieces = a.reshape(*lead, n_units, n_pieces).swapaxes(-1, -2)
        return xp.ascontiguousarray(pieces).reshape(*lead, n_units * n_pieces)

    def forward(self, x, train=True):
        """Parameters: x (…, n_in). Returns: y (…, n_units).

        Caches the input and the index of each unit's winning piece.
        """
        check_shape(repr(self), x, (..., self.n_in))
        x2 = x.reshape(-1, self.n_in)
        z = (x2 @ self.params["W"] + self.params["b"]).reshape(-1, self.n_pieces, self.n_units)
        winner = z.argmax(axis=1)                    # (rows, n_units): first maximal piece
        self._cache = (x, winner)
        return z.max(axis=1).reshape(x.shape[:-1] + (self.n_units,))

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Gradient of maxout.

        Parameters: dy (…, n_units). Returns: dx (…, n_in), or None.

        Let ``p*(i, j)`` be the winning piece of unit ``j`` in row ``i``
        (the first maximal one, as ``argmax`` picks; ties have probability
        zero for real-valued inputs, the rule only makes backward defined).

        * ``y[i, j] = z[i, p*, j]`` so ``∂y[i, j]/∂z[i, p, j] = [p = p*]``: the
          max routes the whole gradient to its winner::

              dz[i, p, j] = dy[i, j] · [p = p*(i, j)]        (rows, n_pieces, n_units)

        * ``z = x W + b`` (flattened to ``(rows, n_pieces·n_units)``) is a
          Linear map: ``dW = xᵀ dz``, ``db = Σ_i dz[i]``, ``dx = dz Wᵀ``.
        """
        x, winner = self._cached()
        self._check_dy(dy, x.shape[:-1] + (self.n_units,))
        xp = get_array_module(dy)
        pieces = xp.arange(self.n_pieces)[None, :, None]            # (1, n_pieces, 1)
        dy2 = dy.reshape(-1, 1, self.n_units)
        dz = (pieces == winner[:, None, :]) * dy2                   # one-hot of the winner × dy
        dz = dz.reshape(-1, self.n_pieces * self.n_units)
        if param_grads:
            self.grads["W"] += x.reshape(-1, self.n_in).T @ dz
            self.grads["b"] += dz.sum(axis=0)
        if not need_dx:
            return None
        return (dz @ self.params["W"].T).reshape(x.shape)

    def winners(self):
        """The winning piece of every unit in the last forward pass, (rows, n_units)."""
        return self._cached()[1]

    def output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_units,)

    def __repr__(self):
        return f"Maxout({self.n_in}, {self.n_units}, pieces={self.n_pieces})"


# ---------------------------------------------------------------------------
# Dropout
# ---------------------------------------------------------------------------
class Dropout(Module):
    """Inverted dropout, element-wise on any shape.

    Parameters
    ----------
    p : float in [0, 1)
        Probability of *dropping* a unit. The paper's "include probability
        0.8" on D's pixels is ``Dropout(0.2)`` (docs/paper.md §3.3).
    rng : numpy.random.Generator or cupy.random.Generator, optional
        Where the masks come from, on the inputs' device;
        :meth:`Module.set_rng` sets it for every dropout layer of a network.

    In training each unit is kept with probability ``q = 1 − p`` and kept
    units are scaled by ``1/q``, so ``E[y] = x``; in evaluation
    (``train=False``) the layer is the identity. This is pylearn2's
    ``input_scale = 1/include_prob`` (docs/paper.md §3.3).
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        p = float(p)
        if not (0.0 <= p < 1.0):
            raise ValueError(f"Dropout probability p must be in [0, 1), got {p!r}")
        self.p = p
        self.rng = rng

    def _keep_mask(self, x):
        """A boolean array of ``x``'s shape, True with probability ``1 − p``."""
        self._check_rng(x)
        return self.rng.random(x.shape, dtype=np.float32) < (1.0 - self.p)

    def _check_rng(self, x):
        if self.rng is None:
            raise RuntimeError(
                "Dropout needs a random generator: pass Dropout(p, rng=...) or call "
                "net.set_rng(scratchgan.backend.default_rng(seed, device))")
        xp = get_array_module(x)
        rng_on_gpu = type(self.rng).__module__.startswith("cupy")
        if isinstance(self.rng, np.random.Generator) and xp is not np or rng_on_gpu and xp is np:
            raise ValueError(f"Dropout: the random generator ({type(self.rng).__module__}) and the "
                             f"input ({xp.__name__}) live on different devices")

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: y (same shape).

        ``y = x · keep / q`` with ``keep ~ Bernoulli(q)`` per element.
        """
        if not train or self.p == 0.0:
            self._cache = (None, x.shape)  # the identity; backward is too
            return x
        keep = self._keep_mask(x)
        self._cache = (keep, x.shape)
        return x * keep / x.dtype.type(1.0 - self.p)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``y = x · keep/q`` with the mask fixed by forward, so
        ``∂y/∂x = keep/q`` and ``dx = dy · keep / q`` — the *same* mask.

        Parameters: dy (shape of y). Returns: dx (same shape).
        """
        keep, shape = self._cached()
        self._check_dy(dy, shape)
        if not need_dx:
            return None
        return dy if keep is None else dy * keep / dy.dtype.type(1.0 - self.p)

    def __repr__(self):
        return f"Dropout({self.p})"


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------
class Flatten(Module):
    """``(N, d1, d2, …) → (N, d1·d2·…)``; backward reshapes the gradient back."""

    def forward(self, x, train=True):
        """Parameters: x (N, …). Returns: y (N, prod(…))."""
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Every output element is one input element: ``dx = dy`` reshaped."""
        shape = self._cached()
        self._check_dy(dy, (shape[0], int(np.prod(shape[1:]))))
        return dy.reshape(shape) if need_dx else None

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


class Reshape(Module):
    """``(N, prod(shape)) → (N, *shape)`` (e.g. a Linear layer's output into
    ``(C, H, W)`` feature maps); backward reshapes the gradient back."""

    def __init__(self, *shape):
        super().__init__()
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        self.shape = tuple(positive_int("Reshape size", s) for s in shape)

    def forward(self, x, train=True):
        """Parameters: x (N, …) with prod(…) = prod(shape). Returns: y (N, *shape)."""
        if int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            raise ValueError(f"{self!r}: cannot reshape input of shape {tuple(x.shape)} to (batch, "
                             f"{', '.join(map(str, self.shape))})")
        self._cache = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Every element moves, none changes: ``dx = dy`` reshaped back.
        Parameters: dy (N, *shape). Returns: dx (the input's shape)."""
        shape = self._cached()
        self._check_dy(dy, (shape[0],) + self.shape)
        return dy.reshape(shape) if need_dx else None

    def output_shape(self, input_shape):
        return self.shape

    def __repr__(self):
        return f"Reshape{self.shape}"


class Embedding(Module):
    """A learned vector per class: ``y = E[labels]`` (a Linear layer without
    bias applied to the one-hot of the labels).

    Parameters
    ----------
    num_classes, dim : int
    init, std, irange, rng, dtype : see :func:`init_weight` (default N(0, 1), as PyTorch)

    ``params["E"]``: (num_classes, dim). Input: integer labels (N,) in
    ``[0, num_classes)``; output (N, dim).
    """

    def __init__(self, num_classes, dim, init="normal", *, std=1.0, irange=0.05, rng=None, dtype=np.float32):
        super().__init__()
        self.num_classes, self.dim = positive_int("num_classes", num_classes), positive_int("dim", dim)
        E = init_weight((self.num_classes, self.dim), init, fan_in=self.num_classes, fan_out=self.dim,
                        irange=irange, std=std, rng=rng, dtype=dtype)
        self.params = {"E": E}
        self.grads = {"E": np.zeros_like(E)}

    def forward(self, labels, train=True):
        """Parameters: labels (N,) integers (:func:`check_label_array`). Returns: y (N, dim)."""
        self._cache = check_label_array(labels, self.num_classes, repr(self))
        return get_array_module(labels).take(self.params["E"], labels, axis=0)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``y[i] = E[labels[i]]``, so ``∂L/∂E[c] = Σ_{i: labels[i] = c} dy[i]``:
        a row that several samples share receives the *sum* of their gradients.
        (``E[labels] += dy`` would keep only one of them.) As a product:
        ``dE = onehot(labels)ᵀ · dy``. Labels get no gradient: returns None.

        Parameters: dy (N, dim). Returns: None.
        """
        labels = self._cached()
        self._check_dy(dy, (labels.shape[0], self.dim))
        if param_grads:
            xp = get_array_module(dy)
            onehot = (labels[:, None] == xp.arange(self.num_classes)[None, :]).astype(dy.dtype)
            self.grads["E"] += onehot.T @ dy
        return None

    def output_shape(self, input_shape):
        return (self.dim,)

    def __repr__(self):
        return f"Embedding({self.num_classes}, {self.dim})"
