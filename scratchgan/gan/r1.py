"""R1 (Mescheder, Geiger & Nowozin 2018): a penalty on the critic's gradient at real data.

With the non-saturating loss of Goodfellow et al., D's step adds::

    (γ/2) · E_{x ~ data} ‖∇ₓ D(x)‖²

(D's logit's input gradient, real samples only; γ = 10 is the common
default; docs/wgan.md §4). Unlike WGAN-GP's penalty it needs no interpolates, no norm and no
square root. Its gradient with respect to D's parameters comes from
:func:`scratchgan.nn.second_order.penalty_backward`; G's step is unchanged.
"""

from __future__ import annotations

from ..nn.second_order import penalty_backward, r1_penalty
from .algorithm1 import GAN
from .registry import register

__all__ = ["R1"]


@register("r1")
class R1(GAN):
    """Algorithm 1 (non-saturating by default) with R1 on the real minibatch."""

    def __init__(self, *args, loss="non-saturating", gamma=10.0, **kwargs):
        super().__init__(*args, loss=loss, **kwargs)
        if not gamma >= 0:
            raise ValueError(f"R1 gamma must be >= 0, got {gamma!r}")
        self.gamma = float(gamma)

    def d_step(self, batch):
        """Algorithm 1's D step, then the penalty at the same real batch."""
        batch = self.real_batch(batch)
        stats = self.d_gradients(batch)                     # Algorithm 1's D gradient
        penalty, _ = penalty_backward(self.D, batch.x, lambda g: r1_penalty(g, self.gamma))
        self.d_opt.step()
        stats["d_loss"] = stats["d_loss"] + penalty
        stats["penalty"] = penalty
        return stats
