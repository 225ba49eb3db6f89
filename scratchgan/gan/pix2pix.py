"""pix2pix (Isola, Zhu, Zhou & Efros 2017): a conditional GAN whose condition is an image.

G translates a source image ``x`` into ``G(x)``; D sees the pair ``(x, y)``
and judges each patch of it (a PatchGAN, :mod:`scratchgan.models.patchgan`).
The objective is the paper's eq. 4 (docs/pix2pix.md §1)::

    G* = arg min_G max_D  L_cGAN(G, D) + λ·L_L1(G)
    L_cGAN(G, D) = E_{x,y}[log D(x, y)] + E_x[log(1 − D(x, G(x)))]
    L_L1(G)      = E_{x,y}[ |y − G(x)|₁ ]                      λ = 100

There is no z: "noise only in the form of dropout", applied to G at training
*and* test time (:class:`scratchgan.models.unet.NoiseDropout`). Every D output
is a patch, and each expectation is the mean over every patch of every pair.
As in the paper:

* **D's step** minimises ``½·[BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)]``: the
  paper divides D's objective by 2 "to slow down the rate at which D learns"
  (the loss's ``d_scale = 0.5``; docs/pix2pix.md §1 on why this barely
  matters under Adam). Real and translated pairs are two passes through D,
  each with its own batch statistics.
* **G's step** minimises ``BCE(D(x, G(x)), 1) + λ·mean|G(x) − y|`` (the
  non-saturating form, the authors' code), back through D with D's
  parameters fixed, after D's update.

One iteration draws one minibatch of pairs, runs G on it *once* (one set of
dropout masks), updates D, then G — the authors' order. The images are
[0, 1] everywhere else in scratchgan; the networks work on the authors'
[−1, 1] (tanh output), so this variant maps ``u ↦ 2u − 1`` on the way in and
back on the way out. λ multiplies the L1 distance on that scale, as in the
paper.

**Ablations** (the paper's Table 1): ``adversarial=False`` is "L1" alone (D
is neither used nor trained, as in the authors' code with ``use_GAN=0``);
``lambda_l1=0`` is "cGAN" alone; the defaults are "L1 + cGAN".
"""

from __future__ import annotations

import numpy as np

from ..nn import losses
from .algorithm1 import GAN
from .batch import Batch
from .registry import register

__all__ = ["Pix2Pix"]


@register("pix2pix")
class Pix2Pix(GAN):
    """L_cGAN + λ·L_L1 on (source, target) pairs, G a translator with no z.

    Parameters (besides :class:`GAN`'s)
    ----------
    lambda_l1 : float ≥ 0, the weight λ of the L1 term (the paper: 100)
    adversarial : bool, whether G's loss has the cGAN term (and D is trained)
    loss : the adversarial loss (default ``"non-saturating"``, the paper's BCE);
        the preset gives it ``d_scale = 0.5``, the paper's halved D objective
    """

    needs = ("source",)

    def __init__(self, G, D, d_opt, g_opt, prior=None, *, loss="non-saturating", lambda_l1=100.0,
                 adversarial=True, k=1, **kwargs):
        if int(k) != 1:
            raise ValueError("pix2pix updates D once and G once per minibatch of pairs: k must be 1")
        lambda_l1 = float(lambda_l1)
        if not (lambda_l1 >= 0 and np.isfinite(lambda_l1)):
            raise ValueError(f"lambda_l1 must be a finite number >= 0, got {lambda_l1!r}")
        if not adversarial and lambda_l1 == 0:
            raise ValueError("pix2pix with adversarial=False and lambda_l1=0 has no loss to train")
        if prior is not None:
            raise ValueError(f"pix2pix's G takes no noise vector (its noise is dropout): give no prior "
                             f"(noise_dim 0), got {prior!r}")
        super().__init__(G, D, d_opt, g_opt, None, loss=loss, k=1, **kwargs)
        self.lambda_l1, self.adversarial = lambda_l1, bool(adversarial)

    @property
    def source_shape(self):
        """Per-sample shape of a source image, ``(C, side, side)`` (G's input)."""
        return self.G.input_shape

    # -- one iteration -------------------------------------------------------------------
    def iteration(self, next_batch):
        """One minibatch of pairs, G run once on its sources, then D's step
        (skipped without the adversarial term) and G's step on that output."""
        batch = self.real_batch(next_batch())
        x, _ = self.pair(batch)
        fake = self.G.forward(x)                            # one forward, one set of dropout masks
        stats = self.d_step(batch, fake) if self.adversarial else {}
        stats.update(self.g_step(batch, fake))
        self.iterations += 1
        return stats

    def d_step(self, batch, fake=None):
        """D's update: ``½·[BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)]`` averaged over
        every patch, real and translated pairs as two passes. ``fake`` is
        ``G(x)`` on [−1, 1] when the caller has it (G is run otherwise)."""
        batch = self.real_batch(batch)
        x, y = self.pair(batch)
        if fake is None:
            fake = self.G.forward(x)                        # no G gradient in this step
        self.D.zero_grad()
        a_real = self.D.forward((x, y))                     # (m, 1, P, P): a logit per patch
        loss_real, da = self.loss.d_real(a_real)            # ½·mean softplus(−a), the loss's d_scale
        self.D.backward(da, need_dx=False)
        a_fake = self.D.forward((x, fake))
        loss_fake, da = self.loss.d_fake(a_fake)            # ½·mean softplus(a)
        self.D.backward(da, need_dx=False)
        self.d_opt.step()
        return self.d_stats(loss_real + loss_fake, a_real, a_fake)

    def g_step(self, batch, fake=None):
        """G's update on ``L = BCE(D(x, G(x)), 1) + λ·mean|G(x) − y|``.

        Both terms reach ``G(x)``, so their gradients add there::

            ∂L/∂G(x) = [∂BCE/∂a back through D]_y-part + λ·sign(G(x) − y)/size

        D's input gradient is a pair (the concatenation splits it); the source
        half is dropped (the source is data). ``fake`` must be the output of
        the *last* forward pass of G (its cache backward uses); G is run
        otherwise. Returns ``g_loss`` (the total), ``g_gan`` and ``l1``
        (the mean absolute error on [−1, 1], reported also when λ = 0).
        """
        batch = self.real_batch(batch)
        x, y = self.pair(batch)
        if fake is None:
            fake = self.G.forward(x)
        self.G.zero_grad()
        l1, dl1 = losses.l1(fake, y)                        # mean |G(x) − y|, sign(G(x) − y)/size
        g_loss, dfake = self.lambda_l1 * l1, dl1 * fake.dtype.type(self.lambda_l1)
        stats = {"l1": l1}
        if self.adversarial:
            a = self.D.forward((x, fake))                   # D as just updated
            g_gan, da = self.loss.g(a)                      # mean softplus(−a) = BCE(·, 1)
            _, d_from_D = self.D.backward(da, param_grads=False)
            dfake = dfake + d_from_D
            g_loss = g_loss + g_gan
            stats["g_gan"] = g_gan
        self.G.backward(dfake, need_dx=False)
        self.g_opt.step()
        return {"g_loss": g_loss, **stats}

    # -- pairs ---------------------------------------------------------------------------
    def real_batch(self, batch) -> Batch:
        """As :meth:`GAN.real_batch`, and the batch must carry sources of
        :attr:`source_shape`, one per target, in the networks' dtype."""
        batch = super().real_batch(batch)
        source = batch.source
        if source is None:
            raise ValueError("pix2pix trains on pairs: the minibatch has no source images (Batch(x, source=…))")
        if tuple(source.shape) != (len(batch),) + self.source_shape:
            raise ValueError(f"pix2pix: {len(batch)} targets need sources of shape "
                             f"{(len(batch),) + self.source_shape}, got {tuple(source.shape)}")
        if source.dtype != self.dtype:
            batch.source = source.astype(self.dtype)
        return batch

    def pair(self, batch):
        """``(x, y)``: the batch's source and target moved from [0, 1] to the networks' [−1, 1]."""
        two, one = self.dtype(2), self.dtype(1)
        return two * batch.source - one, two * batch.x - one

    # -- translating, for users and the trainer ------------------------------------------
    def sample_inputs(self, n, rng, source=None, **conditions) -> dict:
        """G's inputs are the ``n`` source images themselves, ``(n, C, H, W)`` in
        [0, 1] (``source``); nothing is drawn (``rng`` is not used: the noise is
        G's dropout, drawn from the variant's generator)."""
        self.refuse_conditions(conditions, "translates source images")
        if source is None:
            raise ValueError("pix2pix translates source images: pass source=… (images of shape "
                             f"(n,) + {self.source_shape} in [0, 1]); to translate files, use "
                             "python -m scratchgan translate")
        count = len(source) if getattr(source, "ndim", 0) else 0
        if count != n:
            raise ValueError(f"pix2pix: asked for {n} translations, given {count} source images")
        return {"source": source}

    def generate_from(self, inputs: dict):
        """``G(x)`` in evaluation mode (batch normalisation on its running
        statistics; dropout stays on, the paper's noise) for ``inputs["source"]``
        ``(m, C, H, W)`` in [0, 1]; returns ``(m, C_out, H, W)`` in [0, 1]."""
        source = self.device.asarray(inputs["source"], dtype=self.dtype)
        if tuple(source.shape[1:]) != self.source_shape:
            raise ValueError(f"pix2pix: source images must have shape (m,) + {self.source_shape}, got "
                             f"{tuple(source.shape)}")
        two, one = self.dtype(2), self.dtype(1)
        return (self.G.forward(two * source - one, train=False) + one) / two
