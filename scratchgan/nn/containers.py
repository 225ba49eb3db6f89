"""Containers: modules built from modules. Small and few, not a graph compiler.

* :class:`Sequential` — a chain ``f_L(… f_1(x))``; backward calls each child's
  backward in reverse order (that is all backpropagation is).
* :class:`Parallel` — a tuple of inputs, one branch each: ``(x₁, x₂) ↦ (f(x₁), g(x₂))``.
* :class:`Fork` — one input, several branches: ``x ↦ (f(x), g(x))``. The
  branches' input gradients are *added*: a value used twice receives the sum
  of both gradients (the multivariate chain rule).
* :class:`Concat` — a tuple of arrays joined along one axis; backward splits
  the gradient back into the pieces.
* :class:`Identity` — ``y = x``.

Together they build the networks of the GAN family::

    # a two-input network, G(z, y) of the conditional GAN
    Sequential([Parallel([z_branch, y_branch]), Concat(), Linear(1200, 784), Sigmoid()])
    # a shared trunk with two heads, D and Q of InfoGAN
    Sequential([trunk, Fork([d_head, q_head])])
    # a U-Net skip connection: x ↦ [x, inner(x)] along the channels
    skip_concat(inner)
"""

from __future__ import annotations

from ..backend import get_array_module
from .module import Module

__all__ = ["Sequential", "Parallel", "Fork", "Concat", "Identity", "skip_concat"]


def _as_modules(children, what):
    children = list(children)
    for i, c in enumerate(children):
        if not isinstance(c, Module):
            raise TypeError(f"{what} child {i} is a {type(c).__name__}, not a scratchgan Module")
    return children


class _List(Module):
    """A container whose children are numbered ``"0"``, ``"1"``, …"""

    def __init__(self, children, what):
        super().__init__()
        self.layers = _as_modules(children, what)

    def children(self):
        return [(str(i), c) for i, c in enumerate(self.layers)]

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __repr__(self):
        inner = ",\n  ".join(repr(c).replace("\n", "\n  ") for c in self.layers)
        return f"{type(self).__name__}([\n  {inner}\n])"


class Sequential(_List):
    """Modules applied in order; parameters named ``"<index>.<name>"``.

    Examples
    --------
    >>> from scratchgan.nn import Linear, ReLU, Sigmoid
    >>> G = Sequential([Linear(100, 1200), ReLU(), Linear(1200, 784), Sigmoid()])
    """

    def __init__(self, layers):
        super().__init__(layers, "Sequential")

    def forward(self, x, train=True):
        """Parameters: x, the first module's input. Returns: the last module's output."""
        for layer in self.layers:
            x = layer.forward(x, train=train)
        return x

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Back-propagate ``dy = ∂L/∂y`` (the last module's output shape)
        through every module, last to first; returns ``dx`` (the first
        module's input shape) or None.

        With ``need_dx=False`` (the input is data) the modules below the first
        one with parameters are not visited, and that one skips its input
        gradient. With ``param_grads=False`` no ``grads`` change: the gradient
        only passes through (the generator step through a fixed D).
        """
        stop = 0
        if not need_dx:
            stop = next((i for i, l in enumerate(self.layers) if l.n_params), len(self.layers))
        for i in range(len(self.layers) - 1, stop - 1, -1):
            dy = self.layers[i].backward(dy, need_dx=need_dx or i > stop, param_grads=param_grads)
        return dy if need_dx else None

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def summary(self, input_shape) -> str:
        """A table: index, module, per-sample output shape, parameter count."""
        rows = [("#", "module", "output shape", "params")]
        for i, layer in enumerate(self.layers):
            input_shape = layer.output_shape(input_shape)
            rows.append((str(i), repr(layer).split("\n")[0], str(input_shape), f"{layer.n_params:,}"))
        rows.append(("", "total", "", f"{self.n_params:,}"))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]

        def fmt(r):
            return "  ".join(r[c].rjust(widths[c]) if c in (0, 3) else r[c].ljust(widths[c])
                             for c in range(4))
        line = "  ".join("-" * w for w in widths)
        return "\n".join([fmt(rows[0]), line] + [fmt(r) for r in rows[1:-1]] + [line, fmt(rows[-1])])


class Parallel(_List):
    """Branch ``i`` applied to input ``i``: ``(x₀, x₁, …) ↦ (f₀(x₀), f₁(x₁), …)``."""

    def __init__(self, branches):
        super().__init__(branches, "Parallel")

    def forward(self, xs, train=True):
        """Parameters: xs, a tuple with one input per branch. Returns: a tuple of outputs."""
        if not isinstance(xs, (tuple, list)) or len(xs) != len(self.layers):
            raise ValueError(f"Parallel: expected a tuple of {len(self.layers)} inputs, "
                             f"got {type(xs).__name__}" + (f" of {len(xs)}" if isinstance(xs, (tuple, list)) else ""))
        self._cache = True
        return tuple(b.forward(x, train=train) for b, x in zip(self.layers, xs))

    def backward(self, dys, *, need_dx=True, param_grads=True):
        """Each branch back-propagates its own gradient (``None``: that output
        got none). Returns: a tuple of input gradients, or None."""
        self._cached()
        if len(dys) != len(self.layers):
            raise ValueError(f"Parallel.backward: {len(dys)} gradients for {len(self.layers)} branches")
        dxs = tuple(None if dy is None else b.backward(dy, need_dx=need_dx, param_grads=param_grads)
                    for b, dy in zip(self.layers, dys))
        return dxs if need_dx else None

    def output_shape(self, input_shape):
        return tuple(b.output_shape(s) for b, s in zip(self.layers, input_shape))


class Fork(_List):
    """Every branch on the same input: ``x ↦ (f₀(x), f₁(x), …)``."""

    def __init__(self, branches):
        super().__init__(branches, "Fork")

    def forward(self, x, train=True):
        """Parameters: x. Returns: a tuple, one output per branch."""
        self._cache = x
        return tuple(b.forward(x, train=train) for b in self.layers)

    def backward(self, dys, *, need_dx=True, param_grads=True):
        """``x`` feeds every branch, so by the multivariate chain rule
        ``∂L/∂x = Σ_b ∂L/∂x|_b``: the branches' input gradients are added.
        A ``None`` gradient means that output did not reach the loss.

        Parameters: dys, a tuple with one gradient (or None) per branch.
        Returns: dx, shaped like x.
        """
        x = self._cached()
        if len(dys) != len(self.layers):
            raise ValueError(f"Fork.backward: {len(dys)} gradients for {len(self.layers)} branches")
        dx = None
        for b, dy in zip(self.layers, dys):
            if dy is None:
                continue
            g = b.backward(dy, need_dx=need_dx, param_grads=param_grads)
            dx = g if dx is None else dx + g
        if not need_dx:
            return None
        return get_array_module(x).zeros_like(x) if dx is None else dx

    def output_shape(self, input_shape):
        return tuple(b.output_shape(input_shape) for b in self.layers)


class Concat(Module):
    """Join a tuple of arrays along ``axis`` (default 1: the features of
    ``(batch, features)`` and the channels of ``(batch, C, H, W)``)."""

    def __init__(self, axis=1):
        super().__init__()
        self.axis = int(axis)

    def forward(self, xs, train=True):
        """Parameters: xs, a tuple of arrays equal in every axis but ``axis``.
        Returns: y, their concatenation."""
        xs = tuple(xs)
        shapes = [tuple(x.shape) for x in xs]
        rest = {s[:self.axis % len(s)] + s[self.axis % len(s) + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"Concat(axis={self.axis}): inputs differ outside axis {self.axis}: {shapes}")
        self._cache = [s[self.axis] for s in shapes]
        return get_array_module(*xs).concatenate(xs, axis=self.axis)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Each output element is one input element, so the gradient is cut
        back into the inputs' pieces: ``dxᵢ = dy[…, offsetᵢ : offsetᵢ + sizeᵢ, …]``.

        Parameters: dy (shape of y). Returns: a tuple of input gradients.
        """
        sizes = self._cached()
        if dy.shape[self.axis] != sum(sizes):
            raise ValueError(f"Concat.backward: dy has {dy.shape[self.axis]} entries on axis "
                             f"{self.axis}, the inputs had {sum(sizes)}")
        if not need_dx:
            return None
        xp = get_array_module(dy)
        cuts = [sum(sizes[:i + 1]) for i in range(len(sizes) - 1)]
        return tuple(xp.split(dy, cuts, axis=self.axis))

    def output_shape(self, input_shape):
        a = self.axis - 1 if self.axis > 0 else self.axis  # per-sample shapes have no batch axis
        first = list(input_shape[0])
        first[a] = sum(s[a] for s in input_shape)
        return tuple(first)

    def __repr__(self):
        return f"Concat(axis={self.axis})"


class Identity(Module):
    """``y = x``; ``dx = dy`` (the skip branch of :func:`skip_concat`)."""

    def forward(self, x, train=True):
        """Parameters: x (any shape). Returns: x itself."""
        self._cache = True
        return x

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """``∂y/∂x = 1``. Parameters: dy (shape of x). Returns: dy itself."""
        self._cached()
        return dy if need_dx else None


def skip_concat(inner: Module, axis=1) -> Sequential:
    """``x ↦ concat([x, inner(x)])`` along ``axis``: a U-Net skip connection.

    ``x`` feeds both the skip and ``inner``, so its gradient is the skip's
    slice of ``dy`` plus ``inner``'s input gradient (:class:`Fork` adds them).
    """
    return Sequential([Fork([Identity(), inner]), Concat(axis)])
