"""WGAN-GP (Gulrajani et al. 2017): the critic kept 1-Lipschitz by a gradient penalty.

Weight clipping (:mod:`scratchgan.gan.wgan`) restricts the critic to a small
box of functions; WGAN-GP instead penalises the norm of the critic's input
gradient at points between the data and the samples. Its critic loss (the
paper's Algorithm 1, line 7)::

    L = D(x̃) − D(x) + λ (‖∇_x̂ D(x̂)‖₂ − 1)²,    x̂ = ε x + (1 − ε) x̃,   ε ~ U[0, 1] per sample

averaged over the minibatch: the Wasserstein terms are the ``"wasserstein"``
loss's, and the penalty's gradient with respect to every critic parameter —
the derivative of a gradient — comes from :func:`scratchgan.nn.second_order.penalty_backward`.
G's step is WGAN's: it never sees the penalty (docs/wgan.md §2). The paper's defaults: λ = 10,
n_critic = 5 (``k``), Adam(1e-4, β1 = 0, β2 = 0.9), no batch normalisation in
the critic (the penalty is per sample; BN is refused).
"""

from __future__ import annotations

from ..nn.second_order import gradient_penalty, penalty_backward
from .algorithm1 import GAN
from .registry import register
from .wgan import Critic

__all__ = ["WGANGP"]


@register("wgan-gp")
class WGANGP(Critic, GAN):
    """Algorithm 1 with the Wasserstein loss and the gradient penalty at random interpolates."""

    def __init__(self, *args, loss="wasserstein", lam=10.0, **kwargs):
        super().__init__(*args, loss=loss, **kwargs)
        if not lam >= 0:
            raise ValueError(f"WGAN-GP lambda must be >= 0, got {lam!r}")
        self.lam = float(lam)

    def d_step(self, batch):
        """The critic's step: the Wasserstein terms on x and G(z) as two passes,
        then the penalty at ``x̂ = εx + (1 − ε)G(z)``; all gradients add up."""
        batch = self.real_batch(batch)
        m = len(batch)
        z = self.sample_noise(m)
        x, fake = batch.x, self.G.forward(z)
        self.D.zero_grad()
        a_real = self.D.forward(x)
        loss_real, da = self.loss.d_real(a_real)                # −E[D(x)]
        self.D.backward(da, need_dx=False)
        a_fake = self.D.forward(fake)
        loss_fake, da = self.loss.d_fake(a_fake)                # +E[D(x̃)]
        self.D.backward(da, need_dx=False)
        eps = self.rng.random((m,) + (1,) * (x.ndim - 1), dtype=self.dtype)   # ε ~ U[0, 1], one per sample
        x_hat = eps * x + (1 - eps) * fake
        penalty, _ = penalty_backward(self.D, x_hat, lambda g: gradient_penalty(g, self.lam))
        self.d_opt.step()
        stats = self.d_stats(loss_real + loss_fake + penalty, a_real, a_fake)
        stats["penalty"] = penalty
        return stats
