"""Optimisers (momentum SGD as in the paper, Adam, RMSProp) and their schedules.

An optimiser walks the ``(name, param, grad)`` triples of one or more modules
and updates every parameter *in place*. Learning rate and momentum may be
numbers or schedules — any callable ``f(t) -> float`` where ``t`` counts the
updates made so far (0 for the first), evaluated on the host so they never
make the GPU wait.

The paper's schedule (docs/paper.md §3.4, pylearn2's ``ExponentialDecay`` and
``MomentumAdjustor``)::

    lr = ExponentialDecay(0.1, decay=1.000004, min_lr=1e-6)
    mu = LinearMomentum(0.5, 0.7, saturate_epoch=250, steps_per_epoch=500)
    opt = SGD(D, lr=lr, momentum=mu)

These are the textbook whole-array updates; :class:`scratchgan.nn.fast.SGD`
is the same update with less memory traffic.
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import device_of, get_array_module, to_numpy
from .module import Module

__all__ = ["Optimizer", "SGD", "Adam", "RMSProp", "ExponentialDecay", "LinearDecay", "LinearMomentum",
           "as_schedule"]


# ---------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------
class ExponentialDecay:
    """``lr(t) = max(min_lr, lr0 / decay**t)`` after ``t`` updates.

    pylearn2's ``ExponentialDecay`` divides the learning rate by ``decay``
    after every minibatch update; the first update uses ``lr0``
    (docs/paper.md §3.4: ``lr0 = 0.1``, ``decay = 1.000004``, floor ``1e-6``).
    """

    def __init__(self, lr0: float, decay: float = 1.000004, min_lr: float = 1e-6):
        if lr0 <= 0 or decay < 1 or min_lr < 0:
            raise ValueError("ExponentialDecay needs lr0 > 0, decay >= 1 and min_lr >= 0")
        self.lr0, self.decay, self.min_lr = float(lr0), float(decay), float(min_lr)

    def __call__(self, t: int) -> float:
        return max(self.min_lr, self.lr0 * math.exp(-t * math.log(self.decay)))

    def __repr__(self):
        return f"ExponentialDecay({self.lr0}, decay={self.decay}, min_lr={self.min_lr})"


class LinearDecay:
    """A learning rate held, then decayed linearly to 0: the DCGAN authors' schedule.

    Newmu/dcgan_code trains ``niter`` epochs at the full rate, then
    ``niter_decay`` more while the rate falls linearly to 0 (docs/dcgan.md §6)::

        lr(t) = base(t)                               t <  start
        lr(t) = base(t) · (stop − t) / (stop − start)  start ≤ t < stop
        lr(t) = 0                                      t ≥ stop

    ``t`` counts this optimiser's updates; ``base`` is a number or another
    schedule (the product decays SGD's :class:`ExponentialDecay` too). The
    last update before ``stop`` still moves, by ``base/(stop − start)``.
    The authors lower the rate once per epoch; this lowers it every update.
    """

    def __init__(self, base, start: int, stop: int):
        if not 0 <= int(start) < int(stop):
            raise ValueError(f"LinearDecay needs 0 <= start < stop, got start={start}, stop={stop}")
        self.given, self.base = base, as_schedule(base, "lr")
        self.start, self.stop = int(start), int(stop)

    def __call__(self, t: int) -> float:
        left = min(max(self.stop - t, 0), self.stop - self.start)   # updates left in the decay
        return self.base(t) * left / (self.stop - self.start)

    def __repr__(self):
        return f"LinearDecay({self.given!r}, start={self.start}, stop={self.stop})"


class LinearMomentum:
    """Momentum rising linearly with the epoch, as pylearn2's ``MomentumAdjustor``.

    During epoch ``e`` (1-based; ``e = t // steps_per_epoch + 1`` for update ``t``)::

        α = clip((e − 1) / (saturate_epoch − 1), 0, 1)
        μ = (1 − α)·initial + α·final

    so ``μ = 0.5`` in epoch 1 and ``0.7`` from epoch 250 on (docs/paper.md §3.4).
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
class Optimizer:
    """Common machinery: the modules, the step counter, per-parameter state.

    Parameters
    ----------
    modules : Module, or a dict ``{name: Module}`` / list of modules
        Everything this optimiser updates. One optimiser may cover several
        modules (InfoGAN trains D and Q together); their parameters are named
        ``"<module>/<param>"`` in its state.
    weight_decay : float
        L2 regularisation ``(λ/2)‖θ‖²`` added to the loss: every update uses the
        gradient ``g + λ·θ`` (the DCGAN authors' MNIST code uses 2.5e-5; the
        WGAN-GP paper's appendix B 1e-3 for a critic with normalisation).
    max_col_norm : float, optional
        After each update, rescale every column of every 2-D weight ``W`` whose
        L2 norm exceeds ``c`` to norm ``c``, pylearn2's rule
        ``W[:, j] *= min(‖W[:, j]‖, c) / (1e-7 + ‖W[:, j]‖)`` (docs/paper.md §2;
        used for TFD, not MNIST).
    """

    def __init__(self, modules, *, weight_decay=0.0, max_col_norm=None):
        if isinstance(modules, Module):
            self.modules = {"": modules}
        elif isinstance(modules, dict):
            self.modules = {f"{k}/": m for k, m in modules.items()}
        elif isinstance(modules, (list, tuple)):
            self.modules = {f"{i}/": m for i, m in enumerate(modules)}
        else:
            raise TypeError(f"an optimiser needs a Module (or a dict or list of them), got {modules!r}")
        for m in self.modules.values():
            if not isinstance(m, Module):
                raise TypeError(f"an optimiser needs scratchgan Modules, got {type(m).__name__}")
        self.max_col_norm = None if max_col_norm is None else float(max_col_norm)
        self.weight_decay = float(weight_decay)
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")
        self.t = 0              # updates made so far
        self.state: dict = {}   # per-parameter buffers, "<param name>:<slot>"

    def named_parameters(self):
        """``(name, param, grad)`` over every module; a parameter that two
        modules share (a trunk under two heads) appears once, under its
        first name."""
        seen = set()
        for prefix, m in self.modules.items():
            for name, p, g in m.named_parameters(prefix):
                if id(p) not in seen:
                    seen.add(id(p))
                    yield name, p, g

    def zero_grad(self) -> None:
        for m in self.modules.values():
            m.zero_grad()

    def _slot(self, name, slot, like):
        """The buffer ``slot`` of parameter ``name`` (zeros the first time)."""
        key = f"{name}:{slot}"
        buf = self.state.get(key)
        if buf is None or buf.shape != like.shape or get_array_module(buf) is not get_array_module(like):
            buf = self.state[key] = get_array_module(like).zeros_like(like)
        return buf

    def step(self) -> None:
        """Apply one update to every parameter from its current gradient."""
        self._begin()
        for name, p, g in self.named_parameters():
            if self.weight_decay:
                g = g + p.dtype.type(self.weight_decay) * p   # ∂/∂θ of (λ/2)‖θ‖²
            self._update(name, p, g)
            if self.max_col_norm is not None and p.ndim == 2 and name.endswith("W"):
                xp = get_array_module(p)
                norms = xp.sqrt((p * p).sum(axis=0))
                p *= xp.minimum(norms, self.max_col_norm) / (1e-7 + norms)
        self.t += 1

    def _begin(self) -> None:
        """Evaluate the schedules for update ``t`` (once, on the host)."""

    def _update(self, name, p, g):  # pragma: no cover - abstract
        raise NotImplementedError

    # -- checkpoints -------------------------------------------------------------
    def state_dict(self) -> dict:
        """Host copies of the step counter and every buffer."""
        out = {"t": np.asarray(self.t)}
        out.update({f"buf/{k}": to_numpy(v).copy() for k, v in self.state.items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        self.t = int(np.asarray(state["t"]))
        dev = next((device_of(p) for _, p, _ in self.named_parameters()), None)
        self.state = {k[len("buf/"):]: (dev.asarray(v) if dev is not None else np.asarray(v))
                      for k, v in state.items() if k.startswith("buf/")}


# ---------------------------------------------------------------------------
# SGD with classical momentum
# ---------------------------------------------------------------------------
class SGD(Optimizer):
    """Minibatch SGD with classical (not Nesterov) momentum — what the paper used.

    For every parameter ``θ`` with gradient ``g``, at update ``t``::

        v ← μ_t · v − η_t · g
        θ ← θ + v

    with ``v = 0`` at the start (pylearn2's ``Momentum`` rule,
    docs/paper.md §3.4). ``momentum=0`` is plain SGD. ``lr`` and
    ``momentum`` may be schedules.
    """

    def __init__(self, modules, lr=0.1, momentum=0.0, **kw):
        super().__init__(modules, **kw)
        self.lr = as_schedule(lr, "lr")
        self.momentum = as_schedule(momentum, "momentum")
        # no velocity only when momentum is the constant 0; a schedule that is
        # 0 at some step must still keep v = −η·g up to date
        self._plain = not callable(momentum) and float(momentum) == 0.0

    def _begin(self):
        self._lr_t, self._mu_t = self.lr(self.t), self.momentum(self.t)

    def _update(self, name, p, g):
        f = p.dtype.type
        if self._plain:
            p -= f(self._lr_t) * g
            return
        v = self._slot(name, "v", p)
        v *= f(self._mu_t)
        v -= f(self._lr_t) * g
        p += v


# ---------------------------------------------------------------------------
# Adam
# ---------------------------------------------------------------------------
class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015, Algorithm 1). At update ``t = 1, 2, …``::

        m ← β1·m + (1 − β1)·g
        v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t),   v̂ = v / (1 − β2^t)
        θ ← θ − η · m̂ / (√v̂ + ε)
    """

    def __init__(self, modules, lr=2e-4, betas=(0.5, 0.999), eps=1e-8, **kw):
        super().__init__(modules, **kw)
        self.lr = as_schedule(lr, "lr")
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1), got {betas!r}")
        self.beta1, self.beta2, self.eps = float(b1), float(b2), float(eps)

    def _begin(self):
        t = self.t + 1
        self._lr_t = self.lr(self.t)
        self._c1, self._c2 = 1.0 - self.beta1 ** t, 1.0 - self.beta2 ** t

    def _update(self, name, p, g):
        xp, f = get_array_module(p), p.dtype.type
        m, v = self._slot(name, "m", p), self._slot(name, "v", p)
        m *= f(self.beta1)
        m += f(1 - self.beta1) * g
        v *= f(self.beta2)
        v += f(1 - self.beta2) * (g * g)
        m_hat = m / f(self._c1)
        v_hat = v / f(self._c2)
        p -= f(self._lr_t) * m_hat / (xp.sqrt(v_hat) + f(self.eps))


# ---------------------------------------------------------------------------
# RMSProp
# ---------------------------------------------------------------------------
class RMSProp(Optimizer):
    """RMSProp (Tieleman & Hinton, 2012), as PyTorch's ``RMSprop`` without momentum::

        v ← α·v + (1 − α)·g²
        θ ← θ − η · g / (√v + ε)

    with ``v = 0`` at the start; WGAN trains its critic and generator with it
    (η = 5e-5), because momentum made the critic unstable.
    """

    def __init__(self, modules, lr=5e-5, alpha=0.99, eps=1e-8, **kw):
        super().__init__(modules, **kw)
        self.lr = as_schedule(lr, "lr")
        if not 0 <= alpha < 1:
            raise ValueError(f"RMSProp alpha must be in [0, 1), got {alpha!r}")
        self.alpha, self.eps = float(alpha), float(eps)

    def _begin(self):
        self._lr_t = self.lr(self.t)

    def _update(self, name, p, g):
        xp, f = get_array_module(p), p.dtype.type
        v = self._slot(name, "v", p)
        v *= f(self.alpha)
        v += f(1 - self.alpha) * (g * g)
        p -= f(self._lr_t) * g / (xp.sqrt(v) + f(self.eps))
