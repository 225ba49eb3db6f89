"""The base class of every layer and container: parameters, gradients, state.

A :class:`Module` is a function with a hand-written derivative. It holds

* ``params``  — the trained arrays, by name (``"W"``, ``"b"``, ``"gamma"``);
* ``grads``   — ∂L/∂param under the same names, so an optimiser walks the two
  together;
* ``buffers`` — state that is saved but not trained (a BatchNorm's running
  statistics);

and defines two methods::

    y  = forward(x, train=True)      # caches what backward needs
    dx = backward(dy)                # dy = ∂L/∂y  →  dx = ∂L/∂x

**Gradients accumulate.** ``backward`` *adds* to ``grads`` (``+=``) and never
overwrites them, so two forward/backward pairs leave the sum of the two
gradients — real and fake batches through a discriminator, two heads on one
trunk, an L1 term plus an adversarial term. :meth:`zero_grad` sets them to
zero again; every training step calls it first.

**One cache.** A module remembers only its *last* forward pass: run forward,
then backward, before the next forward through the same module. (Several
backward calls on one forward are fine: backward never changes the cache.)

Containers (:mod:`scratchgan.nn.containers`) hold child modules; their
parameters are named ``"<child>.<name>"`` (``"0.W"``, ``"trunk.2.b"``) by
:meth:`named_parameters`, which is what optimisers and checkpoints use.
"""

from __future__ import annotations

import numpy as np

from ..backend import Device, device_of, get_device, to_device, to_numpy

__all__ = ["Module", "check_shape"]


def check_shape(name, x, expected):
    """Raise a ValueError naming ``name``, the expected and the actual shape.

    ``expected`` is a per-sample shape; ``None`` entries match any size, and
    a leading ``...`` allows any number of leading axes (besides the batch).
    """
    shape = tuple(getattr(x, "shape", ()))
    exp = tuple(expected)
    if exp and exp[0] is Ellipsis:
        tail = exp[1:]
        ok = len(shape) >= len(tail) + 1 and all(
            e is None or e == s for e, s in zip(tail, shape[len(shape) - len(tail):]))
        want = "(batch, …, " + ", ".join("?" if e is None else str(e) for e in tail) + ")"
    else:
        ok = len(shape) == len(exp) + 1 and all(e is None or e == s for e, s in zip(exp, shape[1:]))
        want = "(batch, " + ", ".join("?" if e is None else str(e) for e in exp) + ")"
    if not ok:
        raise ValueError(f"{name}: expected input of shape {want}, got {shape}")


class Module:
    """Base class: ``params``/``grads``/``buffers``, children, devices, state.

    Subclasses define :meth:`forward` and :meth:`backward` (and containers
    :meth:`children`).
    """

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.buffers: dict = {}
        self._cache = None

    # -- the two methods every module defines ------------------------------------
    def forward(self, x, train: bool = True):  # pragma: no cover - abstract
        """``x`` → ``y``; ``train=False`` is evaluation mode (no dropout, running statistics)."""
        raise NotImplementedError

    def backward(self, dy, *, need_dx: bool = True, param_grads: bool = True):  # pragma: no cover
        """``dy = ∂L/∂y`` → ``dx = ∂L/∂x``, adding ∂L/∂param to ``grads``.

        ``need_dx=False``: the caller needs no input gradient (the data); the
        module may skip computing it and returns ``None``.
        ``param_grads=False``: pass the gradient *through* without touching
        ``grads`` (the generator's step back-propagates through a fixed D).
        """
        raise NotImplementedError

    def __call__(self, x, train: bool = True):
        return self.forward(x, train=train)

    def _cached(self):
        """The forward cache; an error if backward comes before any forward."""
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called before forward(): "
                "backward needs the values its forward pass cached"
            )
        return self._cache

    def _check_dy(self, dy, y_shape):
        if tuple(getattr(dy, "shape", ())) != tuple(y_shape):
            raise ValueError(
                f"{type(self).__name__}.backward: dy has shape {tuple(getattr(dy, 'shape', ()))}, "
                f"but the forward output had shape {tuple(y_shape)}"
            )

    # -- the tree of modules ---------------------------------------------------------
    def children(self) -> list:
        """``[(name, module), …]`` of direct sub-modules (none for a layer)."""
        return []

    def modules(self):
        """This module and every module below it, depth first."""
        yield self
        for _, child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix: str = ""):
        """``(name, param, grad)`` for every parameter, children included."""
        for k, p in self.params.items():
            yield prefix + k, p, self.grads[k]
        for name, child in self.children():
            yield from child.named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix: str = ""):
        """``(name, buffer)`` for every buffer, children included."""
        for k, b in self.buffers.items():
            yield prefix + k, b
        for name, child in self.children():
            yield from child.named_buffers(f"{prefix}{name}.")

    def parameters(self) -> dict:
        """All parameters by qualified name (the arrays themselves)."""
        return {k: p for k, p, _ in self.named_parameters()}

    def gradients(self) -> dict:
        """All gradients by qualified name, matching :meth:`parameters`."""
        return {k: g for k, _, g in self.named_parameters()}

    @property
    def n_params(self) -> int:
        """Number of trained scalars."""
        return int(sum(p.size for m in self.modules() for p in m.params.values()))

    def set_rng(self, rng) -> "Module":
        """Give every module below this one that draws random numbers
        (dropout) the generator ``rng``. Returns ``self``."""
        for m in self.modules():
            if hasattr(m, "rng"):
                m.rng = rng
        return self

    def zero_grad(self) -> None:
        """Set every gradient to zero, in place (references stay valid)."""
        for m in self.modules():
            m._zero_own_grads()

    def _zero_own_grads(self) -> None:
        for g in self.grads.values():
            g[...] = 0

    # -- devices and dtypes ------------------------------------------------------------
    def to(self, device=None, dtype=None) -> "Module":
        """Move parameters, gradients and buffers to ``device`` and/or cast the
        floating ones to ``dtype``. Drops the forward cache. Returns ``self``."""
        for m in self.modules():
            for store in (m.params, m.grads, m.buffers):
                for k, v in store.items():
                    dev = device_of(v) if device is None else get_device(device)
                    cast = dtype if (dtype is not None and v.dtype.kind == "f") else v.dtype
                    store[k] = to_device(v, dev, dtype=cast)
            m._cache = None
            m._moved()
        return self

    def _moved(self) -> None:
        """Hook: drop anything derived from the arrays (fast layers' buffers)."""

    @property
    def device(self) -> Device:
        for _, p, _ in self.named_parameters():
            return device_of(p)
        return get_device("cpu")

    @property
    def dtype(self):
        for _, p, _ in self.named_parameters():
            return p.dtype
        return np.dtype(np.float32)

    def output_shape(self, input_shape):
        """The per-sample output shape for a per-sample ``input_shape``
        (the batch axis left out). Elementwise modules keep the shape."""
        return tuple(input_shape)

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Host (NumPy) copies of every parameter and buffer, by qualified name."""
        out = {k: to_numpy(p).copy() for k, p, _ in self.named_parameters()}
        out.update({k: to_numpy(b).copy() for k, b in self.named_buffers()})
        return out

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters and buffers, in place.

        Every name and shape is checked before any array is written, so a
        mismatch leaves the module as it was.
        """
        own = {k: p for k, p, _ in self.named_parameters()}
        own.update(dict(self.named_buffers()))
        missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
        if missing or extra:
            raise ValueError(f"parameter names differ: missing {missing}, unexpected {extra}")
        sources = {k: np.asarray(to_numpy(state[k])) for k in own}
        for k, v in own.items():
            if sources[k].shape != v.shape:
                raise ValueError(f"parameter {k}: shape {sources[k].shape} in the file, "
                                 f"{tuple(v.shape)} in the model")
        for k, v in own.items():
            v[...] = device_of(v).asarray(sources[k], dtype=v.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
