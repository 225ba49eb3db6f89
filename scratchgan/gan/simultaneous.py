"""The authors' update: D and G stepped together from one minibatch.

The code behind the paper's numbers (``goodfeli/adversarial``, docs/paper.md
§3.1–3.2) did not alternate as Algorithm 1 prints. It used pylearn2's stock
SGD, which takes one minibatch of data and one of noise, computes

* D's objective ``0.5·[BCE(D(x), 1) + BCE(D(G(z)), 0)]`` (the loss's
  ``d_scale = 0.5``) and
* G's objective ``−log D(G(z))`` on the *same* forward pass (same dropout
  masks),

takes both gradients at the same parameter values, and updates D and G
together: k = 1 by construction. Only :meth:`iteration` changes.
"""

from __future__ import annotations

from .algorithm1 import GAN
from .registry import register

__all__ = ["Simultaneous"]


@register("simultaneous")
class Simultaneous(GAN):
    """Algorithm 1 with D and G updated at once from one minibatch (the authors' code)."""

    def __init__(self, *args, k=1, **kwargs):
        if int(k) != 1:
            raise ValueError("simultaneous updates use one minibatch for D and G: k must be 1")
        super().__init__(*args, k=1, **kwargs)

    def iteration(self, next_batch):
        batch = self.real_batch(next_batch())
        z = self.sample_noise(len(batch))
        self.D.zero_grad()
        self.G.zero_grad()
        fake = self.G.forward(z)
        a_real = self.D.forward(batch.x)
        loss_real, da = self.loss.d_real(a_real)
        self.D.backward(da, need_dx=False)                  # D's real term
        a_fake = self.D.forward(fake)
        loss_fake, da_d = self.loss.d_fake(a_fake)
        loss_g, da_g = self.loss.g(a_fake)                  # G's loss on the same pass
        dfake = self.D.backward(da_g, param_grads=False)    # ∂L_G/∂G(z), D's parameters untouched
        self.D.backward(da_d, need_dx=False)                # D's fake term
        self.G.backward(dfake, need_dx=False)
        self.d_opt.step()                                   # both updates from the same values
        self.g_opt.step()
        self.iterations += 1
        stats = self.d_stats(loss_real + loss_fake, a_real, a_fake)
        stats["g_loss"] = loss_g
        return stats
