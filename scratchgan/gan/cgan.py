"""Conditional adversarial nets (Mirza & Osindero 2014, arXiv 1411.1784): G and D both see the label.

The paper's value function (its eq. 2) is the 2014 game with every term
conditioned on the class ``y`` (docs/cgan.md §1)::

    min_G max_D V(D, G) = E_{(x, y) ~ p_data}[log D(x | y)] + E_{z ~ p_z, y ~ p_data(y)}[log(1 − D(G(z | y) | y))]

G(z, y) turns noise into a sample *of class y*; D(x, y) says how likely
``x`` is a real sample of class ``y``. A sample of the right kind with the
wrong label is a fake to D, so G must honour the label.

:class:`ConditionalGAN` is Algorithm 1 with that change, line for line:

* line 4 draws real pairs ``(x, y)``; the trainer's batches carry the labels
  (``needs = ("labels",)``);
* line 3's fakes are drawn for **the real minibatch's labels**: ``G(z, y)``
  with the ``y`` of the real pairs, so the real and the fake halves of D's
  batch have the same labels and ``y`` follows ``p_data(y)`` in both terms
  of V, as the equation says. D cannot tell real from fake by how often a
  class turns up, only by how the samples look. The DCGAN authors' MNIST code
  does the same (docs/cgan.md §2);
* line 7's G step draws its fakes for the labels of the iteration's (last)
  real minibatch, the same ``y ~ p_data(y)``;
* D's fake term scores each fake under the label G was given: ``D(G(z, y), y)``.

Only the two steps' bodies change: :meth:`ConditionalGAN.d_gradients` (lines
3–5 with labels; :meth:`GAN.d_step` adds the update) keeps the real
minibatch's labels, and :meth:`ConditionalGAN.g_step` draws for them. The
outer loop is :meth:`GAN.iteration`'s (``d_steps()`` D steps, then a G step).

Networks: ``G`` takes the tuple ``(z, labels)``, ``D`` the tuple ``(x, labels)``
(:mod:`scratchgan.models.cgan_mlp`, :mod:`scratchgan.models.cdcgan`); their
backward returns ``(dx, None)``: labels get no gradient. Labels are integer
arrays ``(m,)`` in ``[0, n_classes)``, checked by
:func:`scratchgan.nn.layers.check_label_array` — the range on the host, where
they enter (:func:`check_labels`: the user's labels, the command line, the
dataset), not inside a step on the GPU (reading it would wait for the device).
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..nn.layers import check_label_array
from .algorithm1 import GAN
from .registry import register

__all__ = ["ConditionalGAN", "check_labels", "label_classes"]


def check_labels(labels, n, n_classes, what="labels") -> np.ndarray:
    """``labels`` for ``n`` samples as a host int64 array ``(n,)``, or a
    ValueError saying what is wrong with them.

    The way in for labels from outside (the user, the command line, a
    dataset): one integer (every sample gets it) or ``n`` integers (a list, a
    NumPy or CuPy array, moved to the host so that the range is always read),
    then :func:`scratchgan.nn.layers.check_label_array`, the check every label
    layer makes: floats (even ``3.0``), booleans and strings are refused
    rather than rounded (docs/cgan.md §6).
    """
    if labels is None:
        raise ValueError(f"{what}: a conditional GAN draws G(z, y) for given classes: pass one label (an integer "
                         f"in 0..{n_classes - 1}) or one per sample")
    a = to_numpy(labels)
    if a.ndim == 0 and a.dtype.kind in "iu":
        a = np.full(n, a, dtype=np.int64)
    if a.dtype.kind in "iu" and a.shape != (n,):
        raise ValueError(f"{what}: expected one label or {n} (one per sample), got shape {a.shape}")
    return check_label_array(a, n_classes, what).astype(np.int64)


def label_classes(*nets) -> int:
    """The number of classes the networks' label layers take (every module
    with a ``num_classes``: Embedding, OneHot, LabelSequential); one number,
    the same in all of them."""
    found = {int(m.num_classes) for net in nets for m in net.modules() if hasattr(m, "num_classes")}
    if not found:
        raise ValueError("the cgan variant needs networks that take labels, G(z, y) and D(x, y) "
                         "(models cgan_mlp, cdcgan); these have no label layer")
    if len(found) > 1:
        raise ValueError(f"G's and D's label layers disagree on the number of classes: {sorted(found)}")
    return found.pop()


@register("cgan")
class ConditionalGAN(GAN):
    """Algorithm 1 with the label given to G and D (Mirza & Osindero's eq. 2).

    Parameters: as :class:`~scratchgan.gan.GAN`; ``G`` maps ``(z, labels)`` to
    samples, ``D`` maps ``(x, labels)`` to logits. ``n_classes`` is read from
    their label layers.
    """

    needs = ("labels",)

    def __init__(self, G, D, d_opt, g_opt, prior, **kwargs):
        self.n_classes = label_classes(G, D)
        super().__init__(G, D, d_opt, g_opt, prior, **kwargs)
        #: the labels of the last D step's real minibatch: line 7's fakes are drawn for them
        self.fake_labels = None

    # -- Algorithm 1, conditioned -----------------------------------------------------------
    def d_gradients(self, batch):
        """Lines 3–4 and line 5's gradient with labels: real pairs ``(x, y)``,
        fakes ``G(z, y)`` for the same ``y``, each scored under its ``y``.
        (:meth:`GAN.d_step` then takes the step.)"""
        batch = self.real_batch(batch)
        y = self.fake_labels = batch.labels                 # line 4: (x, y) ~ p_data; the fakes get this y
        z = self.sample_noise(len(batch))                   # line 3: z ~ p_z
        fake = self.G.forward((z, y))                       # G(z | y); no G gradient in this step
        self.D.zero_grad()
        a_real = self.D.forward((batch.x, y))
        loss_real, da = self.loss.d_real(a_real)            # −log D(x | y)
        self.D.backward(da, need_dx=False)
        a_fake = self.D.forward((fake, y))
        loss_fake, da = self.loss.d_fake(a_fake)            # −log(1 − D(G(z | y) | y))
        self.D.backward(da, need_dx=False)
        return self.d_stats(loss_real + loss_fake, a_real, a_fake)

    def g_step(self, m):
        """Lines 7–8 with labels: ``m`` fakes ``G(z, y)`` for the labels of the
        last D step's real minibatch (:attr:`fake_labels`, ``m`` of them),
        scored by D under the same labels, back-propagated through D with its
        parameters fixed."""
        y = self.fake_labels
        if y is None or len(y) != m:
            raise ValueError(f"the cgan G step draws its {m} fakes for the labels of the last D step's real "
                             f"minibatch, which {'has not run' if y is None else f'had {len(y)}'}")
        z = self.sample_noise(m)                            # line 7: z ~ p_z, y as in the D step
        self.G.zero_grad()
        fake = self.G.forward((z, y))
        a_fake = self.D.forward((fake, y))
        loss_g, da = self.loss.g(a_fake)                    # log(1 − D(G(z|y)|y)), or −log D(G(z|y)|y)
        dfake, _ = self.D.backward(da, param_grads=False)   # ∂L_G/∂G(z, y); the labels get none
        self.G.backward(dfake, need_dx=False)
        self.g_opt.step()                                   # line 8
        return {"g_loss": loss_g}

    def real_batch(self, batch):
        """As :meth:`GAN.real_batch`, and the batch must carry one integer label per sample."""
        batch = super().real_batch(batch)
        if batch.labels is None:
            raise ValueError("the cgan variant needs the labels of every real minibatch: Batch(x, labels=…)")
        check_label_array(batch.labels, self.n_classes, "the real minibatch's labels")
        if batch.labels.shape[0] != len(batch):
            raise ValueError(f"the real minibatch has {len(batch)} samples but {batch.labels.shape[0]} labels")
        return batch

    # -- sampling by label ------------------------------------------------------------------
    def sample_inputs(self, n, rng, labels=None, **conditions) -> dict:
        """``{"z": (n, noise_dim), "labels": (n,)}`` on ``rng``'s device: noise
        drawn with ``rng`` for the ``labels`` asked (one integer for every
        sample, or ``n`` of them; checked by :func:`check_labels`)."""
        self.refuse_conditions(conditions, "is conditioned on labels only")
        y = check_labels(labels, n, self.n_classes)
        z = super().sample_inputs(n, rng)["z"]
        return {"z": z, "labels": y if isinstance(z, np.ndarray) else self.device.asarray(y)}

    def generate_from(self, inputs: dict):
        """G in evaluation mode on ``inputs`` from :meth:`sample_inputs` or
        :meth:`per_class_inputs` (host or device arrays)."""
        if "labels" not in inputs:
            raise ValueError("the cgan variant generates G(z, y): its inputs need 'labels' beside 'z'")
        z = self.device.asarray(inputs["z"], dtype=self.dtype)
        return self.G.forward((z, self.device.asarray(inputs["labels"])), train=False)

    def generate(self, n, seed=0, batch_size=500, labels=None, **conditions):
        """As :meth:`GAN.generate`, ``labels`` checked once for all ``n`` samples;
        any other condition (InfoGAN's ``codes``) is refused by :meth:`sample_inputs`."""
        self.refuse_conditions(conditions, "is conditioned on labels only")
        return super().generate(n, seed, batch_size, labels=check_labels(labels, n, self.n_classes), **conditions)

    def sample(self, m, z=None, labels=None):
        """``m`` samples ``G(z, y)`` of the classes ``labels`` (one or ``m``) in evaluation mode."""
        y = self.device.asarray(check_labels(labels, m, self.n_classes))
        return self.generate_from({"z": self.sample_noise(m) if z is None else z, "labels": y})

    def per_class_inputs(self, columns, rng) -> dict:
        """Inputs of a per-class grid: one row per class, ``columns`` noise
        vectors drawn with ``rng`` and shared by every row, so column ``j``
        shows the same ``z_j`` (one "style") as every class. Row-major:
        input ``c·columns + j`` is ``(z_j, c)``."""
        if int(columns) < 1:
            raise ValueError(f"a per-class grid needs at least one column, got {columns}")
        z = super().sample_inputs(int(columns), rng)["z"]               # (columns, noise_dim)
        xp = np if isinstance(z, np.ndarray) else self.device.xp
        labels = np.repeat(np.arange(self.n_classes), int(columns))     # 0…0, 1…1, …
        return {"z": xp.tile(z, (self.n_classes, 1)),
                "labels": labels if xp is np else self.device.asarray(labels)}

    def grid_inputs(self, n, seed) -> dict:
        """The training grids' inputs: the per-class grid with ``n // n_classes``
        columns (10 × 10 for the trainer's 100), on the host from ``seed``."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        return self.per_class_inputs(max(1, n // self.n_classes), rng)

    def balanced_labels(self, n) -> np.ndarray:
        """``n`` labels, every class ``n // n_classes`` or one more times
        (``0, 1, …, C−1, 0, 1, …``): the paper's Parzen protocol draws 1,000
        samples of each of the 10 classes (docs/cgan.md §7)."""
        return np.arange(int(n), dtype=np.int64) % self.n_classes
