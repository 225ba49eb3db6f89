"""Optimisers (momentum SGD as in the paper, and Adam) and their schedules.

An optimiser walks a model's ``params`` and ``grads`` dicts together (same
names) and updates the parameter arrays *in place*. Learning rate and momentum
may be numbers or schedules — any callable ``f(step) -> float`` where ``step``
counts the updates made so far (0 for the first). The schedules are evaluated
on the host, so they never make the GPU wait.

The paper's schedule (PAPER.md §3.4, from pylearn2's ``ExponentialDecay`` and
``MomentumAdjustor``)::

    lr = ExponentialDecay(0.1, decay=1.000004, min_lr=1e-6)
    mu = LinearMomentum(0.5, 0.7, saturate_epoch=250, steps_per_epoch=500)
    opt = SGD(D, lr=lr, momentum=mu)
"""

from __future__ import annotations

import math

import numpy as np

from .backend import get_array_module, get_device, device_of, to_numpy

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "ExponentialDecay",
    "LinearMomentum",
    "as_schedule",
]


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------
class ExponentialDecay:
    """``lr(t) = max(min_lr, lr0 / decay**t)`` after ``t`` updates.

    pylearn2's ``ExponentialDecay`` divides the learning rate by ``decay``
    after every minibatch update; the first update uses ``lr0``
    (PAPER.md §3.4: ``lr0 = 0.1``, ``decay = 1.000004``, floor ``1e-6``).
    """

    def __init__(self, lr0: float, decay: float = 1.000004, min_lr: float = 1e-6):
        if lr0 <= 0 or decay < 1 or min_lr < 0:
            raise ValueError("ExponentialDecay needs lr0 > 0, decay >= 1 and min_lr >= 0")
        self.lr0, self.decay, self.min_lr = float(lr0), float(decay), float(min_lr)

    def __call__(self, t: int) -> float:
        return max(self.min_lr, self.lr0 * math.exp(-t * math.log(self.decay)))

    def __repr__(self):
        return f"ExponentialDecay({self.lr0}, decay={self.decay}, min_lr={self.min_lr})"


class LinearMomentum:
    """Momentum rising linearly with the epoch, as pylearn2's ``MomentumAdjustor``.

    During epoch ``e`` (1-based; ``e = t // steps_per_epoch + 1`` for update
    ``t``)::

        α = clip((e − 1) / (saturate_epoch − 1), 0, 1)
        μ = (1 − α)·initial + α·final

    so ``μ = 0.5`` in epoch 1 and ``0.7`` from epoch 250 on (PAPER.md §3.4).
    """

    def __init__(self, initial=0.5, final=0.7, saturate_epoch=250, steps_per_epoch=500):
        if saturate_epoch < 2 or steps_per_epoch < 1:
            raise ValueError("LinearMomentum needs saturate_epoch >= 2 and steps_per_epoch >= 1")
        self.initial, self.final = float(initial), float(final)
        self.saturate_epoch, self.steps_per_epoch = int(saturate_epoch), int(steps_per_epoch)

    def __call__(self, t: int) -> float:
        epoch = t // self.steps_per_epoch + 1
        a = min(max((epoch - 1) / (self.saturate_epoch - 1), 0.0), 1.0)
        return (1 - a) * self.initial + a * self.final

    def __repr__(self):
        return (f"LinearMomentum({self.initial}, {self.final}, saturate_epoch={self.saturate_epoch}, "
                f"steps_per_epoch={self.steps_per_epoch})")


def as_schedule(value, name="value"):
    """A number becomes a constant schedule; a callable is returned as is."""
    if callable(value):
        return value
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or a callable step -> float, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
    return lambda t: v


# ---------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------
BLOCK = 1 << 15  # elements per block of a CPU update: a few blocks fit in L2


def blocks(*arrays):
    """Matching flat slices of ``arrays`` (same size), ``BLOCK`` elements at a time.

    An update like ``v *= μ; v −= η·g; θ += v`` makes three passes. Over a whole
    multi-megabyte array each pass streams every operand from memory again;
    over an L2-sized block the second and third passes find it in the cache,
    so ``v``, ``g`` and ``θ`` cross the memory bus about once each. On the GPU
    there is a single block: one kernel per pass covers the whole array.
    """
    if get_array_module(arrays[0]) is not np or not all(a.flags.c_contiguous for a in arrays):
        # (a non-contiguous array would be *copied* by reshape(-1), and the
        # update written into the copy: update such arrays whole)
        yield list(arrays)
        return
    flat = [a.reshape(-1) for a in arrays]
    for i in range(0, flat[0].size, BLOCK):
        yield [f[i:i + BLOCK] for f in flat]


class Optimizer:
    """Common machinery: the model, the step counter, constraints, state.

    Parameters
    ----------
    model : an object with ``params`` and ``grads`` dicts (a Sequential or a Layer)
    max_col_norm : float, optional
        After each update, rescale every column of every weight matrix ``W``
        whose L2 norm exceeds ``c`` to norm ``c``, pylearn2's rule
        ``W[:, j] *= min(‖W[:, j]‖, c) / (1e-7 + ‖W[:, j]‖)`` (PAPER.md §2;
        used for TFD, not MNIST).
    clip : float, optional
        After each update, clip every parameter to ``[−clip, clip]``
        (the WGAN critic's weight clipping).
    """

    def __init__(self, model, *, max_col_norm=None, clip=None):
        if not hasattr(model, "params") or not hasattr(model, "grads"):
            raise TypeError("the optimiser needs a model with `params` and `grads` dicts")
        self.model = model
        self.max_col_norm = None if max_col_norm is None else float(max_col_norm)
        self.clip = None if clip is None else float(clip)
        self.t = 0  # updates made so far
        self.state: dict = {}  # per-parameter buffers, by name

    def _scratch(self, like):
        """A temporary with ``like``'s shape, dtype and device: a view of one
        buffer kept between updates (``like`` is a block, so it is small on
        the CPU)."""
        buf = getattr(self, "_scratch_buf", None)  # not optimiser state: never saved
        if (buf is None or buf.size < like.size or buf.dtype != like.dtype
                or get_array_module(buf) is not get_array_module(like)):
            buf = self._scratch_buf = get_array_module(like).empty(like.size, dtype=like.dtype)
        return buf[:like.size].reshape(like.shape)

    def _buffer(self, key, name, like):
        full = f"{key}:{name}"
        buf = self.state.get(full)
        if buf is None or buf.shape != like.shape or get_array_module(buf) is not get_array_module(like):
            buf = get_array_module(like).zeros_like(like)
            self.state[full] = buf
        return buf

    def step(self) -> None:
        """Apply one update to every parameter from its current gradient."""
        grads = self.model.grads
        for name, p in self.model.params.items():
            self._update_one(name, p, grads[name])
        self.t += 1

    def _update_one(self, name, p, g) -> None:
        self._update(name, p, g)
        if self.max_col_norm is not None and name.endswith("W") and p.ndim == 2:
            self._apply_max_col_norm(p)
        if self.clip is not None:
            get_array_module(p).clip(p, -self.clip, self.clip, out=p)

    def _update(self, name, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    def _apply_max_col_norm(self, W):
        xp = get_array_module(W)
        norms = xp.sqrt((W * W).sum(axis=0))
        W *= xp.minimum(norms, self.max_col_norm) / (1e-7 + norms)

    # -- checkpoints -----------------------------------------------------------
    def state_dict(self) -> dict:
        """Host copies of the step counter and every buffer."""
        out = {"t": np.asarray(self.t)}
        out.update({f"buf/{k}": to_numpy(v).copy() for k, v in self.state.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        self.t = int(np.asarray(state["t"]))
        dev = None
        for p in self.model.params.values():
            dev = device_of(p)
            break
        self.state = {
            k[len("buf/"):]: get_device(dev or "cpu").asarray(v)
            for k, v in state.items() if k.startswith("buf/")
        }


# ---------------------------------------------------------------------------
# SGD with classical momentum
# ---------------------------------------------------------------------------
class SGD(Optimizer):
    """Minibatch SGD with classical (not Nesterov) momentum — what the paper used.

    For every parameter ``θ`` with gradient ``g``, at update ``t``::

        v ← μ_t · v − η_t · g
        θ ← θ + v

    with ``v = 0`` at the start (pylearn2's ``Momentum`` rule, PAPER.md §3.4).
    ``momentum=0`` is plain SGD. ``lr`` and ``momentum`` may be schedules.
    """

    def __init__(self, model, lr=0.1, momentum=0.0, **kw):
        super().__init__(model, **kw)
        self.lr = as_schedule(lr, "lr")
        self.momentum = as_schedule(momentum, "momentum")
        # Plain SGD (no velocity buffer) only when momentum is the constant 0;
        # a schedule that is 0 at some step must still keep v = −η·g up to date.
        self._plain = not callable(momentum) and float(momentum) == 0.0

    def step(self) -> None:
        # Evaluate the schedules once per update, on the host.
        self._lr_t, self._mu_t = self.lr(self.t), self.momentum(self.t)
        super().step()

    def _update(self, name, p, g):
        lr, mu = p.dtype.type(self._lr_t), p.dtype.type(self._mu_t)
        if self._plain:
            p -= lr * g
            return
        xp = get_array_module(p)
        v = self._buffer(name, "v", p)
        for pb, gb, vb in blocks(p, g, v):  # same numbers as whole arrays, less memory traffic
            vb *= mu
            vb -= xp.multiply(gb, lr, out=self._scratch(gb))
            pb += vb


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1).

    At update ``t = 1, 2, …``::

        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
        θ ← θ − η · m̂ / (√v̂ + ε)
    """

    def __init__(self, model, lr=2e-4, betas=(0.5, 0.999), eps=1e-8, **kw):
        super().__init__(model, **kw)
        self.lr = as_schedule(lr, "lr")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1), got {betas!r}")
        self.beta1, self.beta2, self.eps = float(b1), float(b2), float(eps)

    def step(self) -> None:
        t = self.t + 1
        self._lr_t = self.lr(self.t)
        self._c1 = 1.0 - self.beta1 ** t
        self._c2 = 1.0 - self.beta2 ** t
        super().step()

    def _update(self, name, p, g):
        xp = get_array_module(p)
        f = p.dtype.type
        m = self._buffer(name, "m", p)
        v = self._buffer(name, "v", p)
        m *= f(self.beta1)
        m += f(1 - self.beta1) * g
        v *= f(self.beta2)
        v += f(1 - self.beta2) * (g * g)
        m_hat = m / f(self._c1)
        v_hat = v / f(self._c2)
        p -= f(self._lr_t) * m_hat / (xp.sqrt(v_hat) + f(self.eps))
