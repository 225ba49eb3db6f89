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

__all__ = ["WGAN", "Critic"]


class Critic:
    """Mixin for the variants whose D is a critic (WGAN, WGAN-GP): their
    statistics, and the held-out diagnostic of docs/wgan.md §7."""

    def d_stats(self, d_loss, a_real, a_fake):
        """The critic's loss, its mean outputs on real and generated samples,
        and their difference, the estimate of W(p_data, p_g)."""
        f_real, f_fake = a_real.mean(), a_fake.mean()
        return {"d_loss": d_loss, "critic_real": f_real, "critic_fake": f_fake, "wasserstein": f_real - f_fake}

    def heldout_stats(self, x_train, x_valid, fixed):
        """The critic's estimate on a fixed set of *training* images and on as
        many held-out *validation* images, both against the same samples (G on
        the grid's fixed inputs) and at the same critic, in evaluation mode. A
        gap that opens between the two means the critic fits its training
        images (WGAN-GP's §5 diagnostic)."""
        n = min(len(x_train), len(x_valid), len(fixed["z"]))
        fake = self.D.forward(self.generate_from({k: v[:n] for k, v in fixed.items()}), train=False).mean()
        return {"fixed_train_wasserstein": self.D.forward(x_train[:n], train=False).mean() - fake,
                "val_wasserstein": self.D.forward(x_valid[:n], train=False).mean() - fake}


@register("wgan")
class WGAN(Critic, GAN):
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

