"""WGAN (Arjovsky, Chintala & Bottou, 2017): a critic kept Lipschitz by weight clipping.

The critic ``f`` (D without a sigmoid) estimates the Wasserstein-1 distance
through the Kantorovich–Rubinstein dual::

    W(p_data, p_g) = max_{‖f‖_L ≤ 1}  E_x[f(x)] − E_z[f(G(z))]

with the ``"wasserstein"`` loss. The paper keeps ``f`` K-Lipschitz by clipping
every critic weight to ``[−c, c]`` after each critic update (its Algorithm 1,
c = 0.01; docs/wgan.md §1). That is the only step this variant changes: :meth:`d_step` clips
after the update. Its statistics are the critic's mean outputs and the
estimate ``E[f(x)] − E[f(G(z))]`` instead of D(x), D(G(z)).
"""

from __future__ import annotations

from ..backend import get_array_module
from .algorithm1 import GAN
from .registry import register

__all__ = ["WGAN"]


def heldout_critic_stats(gan, x_valid, fixed):
    """The Wasserstein estimate on held-out images against G's samples from
    the fixed grid inputs, in evaluation mode: when it falls while the training
    estimate rises, the critic is fitting its training images (WGAN-GP §5)."""
    n = min(len(x_valid), len(fixed["z"]))
    samples = gan.generate_from({k: v[:n] for k, v in fixed.items()})
    return {"val_wasserstein": gan.D.forward(x_valid[:n], train=False).mean()
            - gan.D.forward(samples, train=False).mean()}


def critic_stats(d_loss, a_real, a_fake):
    """A critic's statistics: its loss, mean output on real and generated
    samples, and their difference, the estimate of W(p_data, p_g)."""
    f_real, f_fake = a_real.mean(), a_fake.mean()
    return {"d_loss": d_loss, "critic_real": f_real, "critic_fake": f_fake, "wasserstein": f_real - f_fake}


@register("wgan")
class WGAN(GAN):
    """Algorithm 1 with the Wasserstein loss and the critic clipped to ``[−clip, clip]``.

    ``schedule="authors"``: the authors' code (``martinarjovsky/WassersteinGAN``)
    trains the critic 100 times per generator step for the first 25 generator
    steps and at every 500th, and ``k`` times otherwise, so the critic is near
    optimal from the start; ``"paper"`` (the default) is the paper's
    Algorithm 1, ``k`` critic steps always.
    """

    def __init__(self, *args, loss="wasserstein", clip=0.01, schedule="paper", **kwargs):
        super().__init__(*args, loss=loss, **kwargs)
        if not clip > 0:
            raise ValueError(f"WGAN clip must be > 0, got {clip!r}")
        if schedule not in ("paper", "authors"):
            raise ValueError(f"WGAN schedule must be 'paper' or 'authors', got {schedule!r}")
        self.clip, self.schedule = float(clip), schedule

    def d_steps(self):
        """Critic steps in this generator iteration."""
        if self.schedule == "authors" and (self.iterations < 25 or self.iterations % 500 == 0):
            return 100
        return self.k

    def d_step(self, batch):
        stats = super().d_step(batch)
        for p in self.D.parameters().values():              # after each critic update
            get_array_module(p).clip(p, -self.clip, self.clip, out=p)
        return stats

    def d_stats(self, d_loss, a_real, a_fake):
        return critic_stats(d_loss, a_real, a_fake)

    def heldout_stats(self, x_valid, fixed):
        return heldout_critic_stats(self, x_valid, fixed)
