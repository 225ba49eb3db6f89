"""Normalisation layers: batch normalisation and layer normalisation.

Both compute ``x̂ = (x − μ) / √(σ² + ε)`` and ``y = γ·x̂ + β`` with a learned
scale ``γ`` and shift ``β`` per channel; they differ in what ``μ`` and ``σ²``
average over:

* **BatchNorm** — over the batch (and the pixels): every sample's output
  depends on the whole batch. In training the batch statistics are used and
  running averages are kept in ``buffers``; in evaluation the running averages
  are used. (This coupling is why a gradient penalty, which is per sample,
  cannot go through BatchNorm — WGAN-GP recommends LayerNorm in the critic.)
* **LayerNorm** — over each sample's own features: no coupling, the same in
  training and evaluation.

Conventions are PyTorch's: ``params["gamma"]``, ``params["beta"]``;
``buffers["running_mean"]``, ``buffers["running_var"]``; momentum 0.1 and
ε = 1e-5.

**The backward pass, derived once for both.** Let the statistics average over
``M`` values per channel (``M = N`` for ``(N, C)``, ``N·H·W`` for images in
BatchNorm; the features of one sample in LayerNorm), write ``Σ`` for the sum
over those values, ``s = √(σ² + ε)`` and ``g = dy·γ`` (= ∂L/∂x̂). With
``μ = Σx/M`` and ``σ² = Σ(x − μ)²/M``::

    ∂μ/∂x_k  = 1/M
    ∂σ²/∂x_k = 2(x_k − μ)/M                     (the Σ(x − μ) term vanishes)
    ∂x̂_i/∂x_k = [i = k]/s − 1/(M s) − x̂_i x̂_k/(M s)

so ``dx_k = Σ_i g_i ∂x̂_i/∂x_k`` is the closed form ::

    dx = (M·g − Σg − x̂·Σ(g·x̂)) / (M·s)

and ``dγ = Σ dy·x̂``, ``dβ = Σ dy`` (summed over everything but the channel).
"""

from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .layers import positive_int
from .module import Module, check_shape

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


def _per_channel(v, ndim):
    """A per-channel vector (C,) shaped to broadcast against (N, C, …)."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


def _normalise_backward(dy, x_hat, inv_std, gamma, axes):
    """``dx`` of ``y = γ·x̂ + β`` with ``x̂`` normalised over ``axes`` (the closed form above)."""
    g = dy * gamma
    M = int(np.prod([dy.shape[a] for a in axes]))
    sum_g = g.sum(axis=axes, keepdims=True)
    sum_gx = (g * x_hat).sum(axis=axes, keepdims=True)
    return (g * M - sum_g - x_hat * sum_gx) * (inv_std / M)


class _BatchNorm(Module):
    """Shared by BatchNorm1d ``(N, C)`` and BatchNorm2d ``(N, C, H, W)``."""

    _sample_shape = None   # per-sample input shape, None entries free
    _axes = None           # the axes averaged over

    def __init__(self, num_features, eps=1e-5, momentum=0.1, dtype=np.float32):
        super().__init__()
        self.num_features = positive_int("num_features", num_features)
        self.eps, self.momentum = float(eps), float(momentum)
        if not (0.0 <= self.momentum <= 1.0):
            raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")
        C = self.num_features
        self.params = {"gamma": np.ones(C, dtype=dtype), "beta": np.zeros(C, dtype=dtype)}
        self.grads = {"gamma": np.zeros(C, dtype=dtype), "beta": np.zeros(C, dtype=dtype)}
        self.buffers = {"running_mean": np.zeros(C, dtype=dtype), "running_var": np.ones(C, dtype=dtype)}

    def forward(self, x, train=True):
        """Parameters: x (N, C) or (N, C, H, W). Returns: y (same shape).

        Training: batch mean and *biased* variance normalise ``x``; the running
        statistics move by ``momentum`` towards the batch mean and the
        *unbiased* variance (``M/(M − 1)`` times the biased one), PyTorch's
        rule: ``r ← (1 − momentum)·r + momentum·batch``.
        Evaluation: the running statistics normalise ``x``; nothing changes.
        """
        check_shape(repr(self), x, (self.num_features,) + self._sample_shape)
        axes = self._axes
        if train:
            M = int(np.prod([x.shape[a] for a in axes]))
            if M < 2:
                raise ValueError(f"{self!r}: training needs more than one value per channel to estimate a "
                                 f"variance, got input of shape {tuple(x.shape)}")
            mu = x.mean(axis=axes, keepdims=True)
            var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
            m = self.momentum
            self.buffers["running_mean"] *= 1 - m
            self.buffers["running_mean"] += m * mu.reshape(-1)
            self.buffers["running_var"] *= 1 - m
            self.buffers["running_var"] += (m * M / (M - 1)) * var.reshape(-1)
        else:
            mu = _per_channel(self.buffers["running_mean"], x.ndim)
            var = _per_channel(self.buffers["running_var"], x.ndim)
        inv_std = 1 / get_array_module(x).sqrt(var + x.dtype.type(self.eps))
        x_hat = (x - mu) * inv_std
        self._cache = (x_hat, inv_std, train)
        return x_hat * _per_channel(self.params["gamma"], x.ndim) + _per_channel(self.params["beta"], x.ndim)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Parameters: dy (shape of y). Returns: dx (same shape), or None.

        Training mode: the closed form of the module docstring,
        ``dx = (M·g − Σg − x̂·Σ(g·x̂)) / (M·s)`` with ``g = dy·γ``. Evaluation
        mode: ``μ`` and ``σ²`` are constants, so ``dx = dy·γ / s``.
        """
        x_hat, inv_std, train = self._cached()
        self._check_dy(dy, x_hat.shape)
        axes = self._axes
        if param_grads:
            self.grads["gamma"] += (dy * x_hat).sum(axis=axes)
            self.grads["beta"] += dy.sum(axis=axes)
        if not need_dx:
            return None
        gamma = _per_channel(self.params["gamma"], dy.ndim)
        if not train:
            return dy * gamma * inv_std
        return _normalise_backward(dy, x_hat, inv_std, gamma, axes)

    def __repr__(self):
        return f"{type(self).__name__}({self.num_features})"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over the batch of ``(N, C)`` features (Ioffe & Szegedy, 2015)."""

    _sample_shape = ()
    _axes = (0,)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of ``(N, C, H, W)`` images over the batch and the pixels, per channel."""

    _sample_shape = (None, None)
    _axes = (0, 2, 3)


class LayerNorm(Module):
    """Layer normalisation (Ba, Kiros & Hinton, 2016): every sample normalised
    over all its features, with a learned ``γ``, ``β`` per channel (axis 1) —
    the critic normaliser WGAN-GP recommends, as its authors' code applies it
    to ``(N, C, H, W)`` activations.

    Parameters
    ----------
    num_channels : int, the size of axis 1
    eps : float

    Input (N, C) or (N, C, H, W); ``params["gamma"]``, ``params["beta"]``: (C,).
    The backward pass is the closed form of the module docstring with the
    sums over each sample's features.
    """

    def __init__(self, num_channels, eps=1e-5, dtype=np.float32):
        super().__init__()
        self.num_channels = positive_int("num_channels", num_channels)
        self.eps = float(eps)
        C = self.num_channels
        self.params = {"gamma": np.ones(C, dtype=dtype), "beta": np.zeros(C, dtype=dtype)}
        self.grads = {"gamma": np.zeros(C, dtype=dtype), "beta": np.zeros(C, dtype=dtype)}

    def forward(self, x, train=True):
        """Parameters: x (N, C, …). Returns: y (same shape)."""
        if getattr(x, "ndim", 0) < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self!r}: expected input of shape (batch, {self.num_channels}, …), "
                             f"got {tuple(getattr(x, 'shape', ()))}")
        axes = tuple(range(1, x.ndim))
        mu = x.mean(axis=axes, keepdims=True)
        var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
        inv_std = 1 / get_array_module(x).sqrt(var + x.dtype.type(self.eps))
        x_hat = (x - mu) * inv_std
        self._cache = (x_hat, inv_std)
        return x_hat * _per_channel(self.params["gamma"], x.ndim) + _per_channel(self.params["beta"], x.ndim)

    def backward(self, dy, *, need_dx=True, param_grads=True):
        """Parameters: dy (shape of y). Returns: dx (same shape), or None."""
        x_hat, inv_std = self._cached()
        self._check_dy(dy, x_hat.shape)
        channel_axes = (0,) + tuple(range(2, dy.ndim))
        if param_grads:
            self.grads["gamma"] += (dy * x_hat).sum(axis=channel_axes)
            self.grads["beta"] += dy.sum(axis=channel_axes)
        if not need_dx:
            return None
        gamma = _per_channel(self.params["gamma"], dy.ndim)
        return _normalise_backward(dy, x_hat, inv_std, gamma, tuple(range(1, dy.ndim)))

    def __repr__(self):
        return f"LayerNorm({self.num_channels})"
