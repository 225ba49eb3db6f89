"""InfoGAN (Chen et al. 2016): latent codes that mean something, learned without labels.

G's input is split into incompressible noise ``z`` and a *code* ``c``; InfoGAN
asks that ``c`` stay readable from ``G(z, c)``, i.e. that the mutual
information ``I(c; G(z, c))`` be large. It cannot be computed, so the paper
maximises a variational lower bound with an auxiliary network ``Q(c | x)``
(docs/infogan.md §1)::

    I(c; G(z, c)) = H(c) − H(c | G(z, c))
                  ≥ H(c) + E_{c ~ p(c), x ~ G(z, c)} [log Q(c | x)]  =:  L_I(G, Q)

(the gap is ``E_x KL(p(c | x) ‖ Q(c | x)) ≥ 0``), and plays::

    min_{G, Q} max_D  V(D, G) − λ L_I(G, Q)

On MNIST (the preset ``infogan``) the code is c1 ~ Cat(10) and c2, c3 ~
U(−1, 1), the noise 62 numbers from U(−1, 1), and Q shares D's trunk
(:mod:`scratchgan.models.infogan`: ``D(x) = (logit, q)``).

What each optimiser steps on — as the authors' code ``openai/InfoGAN`` does
it, where the term ``−λ·MI`` is in *both* losses (docs/infogan.md §3):

* :meth:`d_step`: D's optimiser (trunk, D head and Q head, all inside ``D``)
  descends ``d_loss + q_loss``: the adversarial loss on a real and a fake
  batch, plus ``λ·(−log Q(c | G(z, c)))`` on the fake batch;
* :meth:`g_step`: G's optimiser descends ``g_loss + q_loss`` on a fresh fake
  batch; the Q term reaches G *through* Q's head and the trunk, whose
  parameters stay as they are in this step (``param_grads=False``).

``H(c)`` is a constant, so the losses carry only the cross-entropy terms;
the log shows ``mi_c1 = ln K − CE(c1)``, the bound's categorical part,
which climbs towards ``ln 10 ≈ 2.30`` nats (the paper's Figure 1).
"""

from __future__ import annotations

import math

import numpy as np

from ..backend import get_array_module, to_numpy
from ..nn import losses
from .algorithm1 import GAN
from .registry import register

__all__ = ["InfoGAN", "infogan_from_checkpoint", "CODE_LIMIT"]

#: the largest |value| a continuous code may be given: 1,000 times the
#: training range [−1, 1] (the paper's Figure 2 goes to ±2, and G's samples
#: stop changing a few units out), and far enough inside float32 (±3.4e38)
#: that G's products with it cannot overflow; ``c2=1e40`` would become inf
CODE_LIMIT = 1000.0


@register("infogan")
class InfoGAN(GAN):
    """Algorithm 1 with a code ``c`` in G's input and Q's information term in both steps.

    Parameters (besides :class:`GAN`'s; ``prior`` is the noise ``z`` alone)
    ----------
    categories : K, the categorical code c1 ~ Cat(K, 1/K) (paper: 10)
    continuous : how many continuous codes c2, c3, … ~ U(−1, 1) (paper: 2)
    lambda_cat, lambda_cont : λ on the categorical and on the continuous
        codes' terms (paper: 1 for the categorical code, "smaller" for the
        continuous ones)
    sigma : the fixed standard deviation of Q's Gaussian on each continuous
        code (the authors' code: 1)

    G takes ``[z, onehot(c1), c2, c3, …]``; D returns ``(logits (m, 1),
    q (m, K + continuous))``, ``q`` = c1's K logits, then the continuous
    codes' means.
    """

    def __init__(self, G, D, d_opt, g_opt, prior, *, categories=10, continuous=2, lambda_cat=1.0,
                 lambda_cont=0.1, sigma=1.0, **kwargs):
        super().__init__(G, D, d_opt, g_opt, prior, **kwargs)
        if int(categories) != categories or categories < 2:
            raise ValueError(f"InfoGAN: categories (K of c1 ~ Cat(K)) must be an integer >= 2, got {categories!r}")
        if int(continuous) != continuous or continuous < 0:
            raise ValueError(f"InfoGAN: continuous (the number of U(-1, 1) codes) must be an integer >= 0, "
                             f"got {continuous!r}")
        for name, value in (("lambda_cat", lambda_cat), ("lambda_cont", lambda_cont)):
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"InfoGAN: {name} must be a finite number >= 0, got {value!r}")
        if not (sigma > 0 and math.isfinite(sigma)):
            raise ValueError(f"InfoGAN: sigma (Q's fixed standard deviation) must be > 0, got {sigma!r}")
        self.categories, self.continuous = int(categories), int(continuous)
        self.lambda_cat, self.lambda_cont, self.sigma = float(lambda_cat), float(lambda_cont), float(sigma)
        #: the codes by name: c1 categorical, c2, c3, … continuous (the paper's names)
        self.code_names = ("c1",) + tuple(f"c{j + 2}" for j in range(self.continuous))

    # -- the latent: noise and codes --------------------------------------------------------
    def _draw(self, n, rng, dtype, codes=None) -> dict:
        """``{"z": (n, noise), "c1": (n,) int64, "c2": (n,), …}`` drawn with
        ``rng`` on its device; the ``codes`` given replace the drawn ones."""
        given = self._check_codes(codes or {}, n)
        out = {"z": self.prior.sample(n, rng, dtype), "c1": rng.integers(0, self.categories, size=n)}
        xp = get_array_module(out["z"])
        for name in self.code_names[1:]:
            out[name] = rng.random(n, dtype=dtype) * dtype(2) - dtype(1)     # U(−1, 1)
        for name, value in given.items():
            kind = np.int64 if name == "c1" else dtype
            out[name] = xp.asarray(np.broadcast_to(value, (n,)).astype(kind))
        return out

    def _check_codes(self, codes, n) -> dict:
        """The given codes as host arrays (scalars or ``(n,)``), or a ValueError
        that names the code and what it accepts."""
        if not isinstance(codes, dict):
            raise ValueError(f"codes must be a dict such as {{'c1': 3, 'c2': -1.5}}, got {type(codes).__name__}")
        known = (f"c1 (categorical, an integer in 0..{self.categories - 1})"
                 + "".join(f", {c} (continuous)" for c in self.code_names[1:]))
        out = {}
        for name, value in codes.items():
            if value is None:
                continue
            if name not in self.code_names:
                raise ValueError(f"unknown code {name!r}; this InfoGAN has {known}")
            a = to_numpy(value)
            if a.dtype.kind not in "iuf" or a.ndim > 1:
                raise ValueError(f"code {name} must be a number (or {n} of them), got {value!r}")
            if a.ndim == 1 and a.shape[0] != n:
                raise ValueError(f"code {name}: {a.shape[0]} values for {n} samples")
            if not np.isfinite(a).all():
                raise ValueError(f"code {name} must be finite, got {value!r}")
            if name != "c1" and (np.abs(a) > CODE_LIMIT).any():
                raise ValueError(f"code {name} must lie within ±{CODE_LIMIT:g} (it was trained on [-1, 1]), got "
                                 f"{np.atleast_1d(a)[np.abs(np.atleast_1d(a)) > CODE_LIMIT][0].item():g}")
            bad = (a != np.round(a)) | (a < 0) | (a >= self.categories)
            if name == "c1" and bad.any():
                raise ValueError(f"code c1 is a category: an integer in 0..{self.categories - 1}, got "
                                 f"{np.atleast_1d(a)[np.atleast_1d(bad)][0].item():g}")
            out[name] = a
        return out

    def latent(self, inputs):
        """G's input ``[z, onehot(c1), c2, c3, …]``, shape ``(m, noise + K + continuous)``, on the device."""
        dev, dt = self.device, self.dtype
        z = dev.asarray(inputs["z"], dtype=dt)
        c1 = dev.asarray(inputs["c1"]).astype(np.int64)
        xp = dev.xp
        parts = [z, xp.eye(self.categories, dtype=dt)[c1]]
        parts += [dev.asarray(inputs[name], dtype=dt)[:, None] for name in self.code_names[1:]]
        return xp.concatenate(parts, axis=1)

    # -- Q's term -----------------------------------------------------------------------------
    def info_loss(self, q, inputs):
        """``λ·(−log Q(c | x))`` for the fake batch ``x = G(z, c)`` and its gradient.

        Parameters: q (m, K + continuous), Q's output on the batch; inputs,
        the batch's codes. Returns: ``(value, dq, stats)``.

        Q's distribution factorises over the codes (docs/infogan.md §4)::

            −log Q(c | x) = −log softmax(ℓ)_{c1}  +  Σ_j [ (c_j − μ_j)² / (2σ²) + log σ + ½ log 2π ]

        with ``ℓ = q[:, :K]`` (raw logits: a softmax before the cross-entropy
        would apply it twice) and ``μ = q[:, K:]`` (unsquashed: the codes are
        regressed on the real line, not through a sigmoid). Averaged over the
        batch and weighted, ``value = λ_cat·CE + λ_cont·NLL`` and, from the
        two derivations in :mod:`scratchgan.nn.losses`::

            ∂value/∂ℓ = λ_cat  · (softmax(ℓ) − onehot(c1)) / m
            ∂value/∂μ = λ_cont · (μ − c) / (σ² m)

        ``dq`` is the two pieces side by side. Statistics: ``q_loss`` (the
        value), ``mi_c1 = ln K − CE`` (the bound's categorical part, nats)
        and ``q_mse``, the continuous codes' mean squared error.
        """
        K, xp = self.categories, get_array_module(q)
        if q.ndim != 2 or q.shape[1] != K + self.continuous:
            raise ValueError(f"InfoGAN: Q gives shape {tuple(q.shape)}, expected (m, {K + self.continuous}): "
                             f"{K} logits of c1 and {self.continuous} continuous means (model and variant "
                             "must agree on categories and continuous)")
        dt = q.dtype.type
        ce, dlogits = losses.softmax_cross_entropy(q[:, :K], inputs["c1"])
        value, parts = dt(self.lambda_cat) * ce, [dlogits * dt(self.lambda_cat)]
        stats = {"mi_c1": dt(math.log(K)) - ce}
        if self.continuous:
            mu = q[:, K:]
            c = xp.stack([inputs[name] for name in self.code_names[1:]], axis=1).astype(q.dtype, copy=False)
            nll, dmu = losses.gaussian_nll(mu, c, self.sigma)
            value = value + dt(self.lambda_cont) * nll
            parts.append(dmu * dt(self.lambda_cont))
            stats["q_mse"] = ((mu - c) ** 2).mean()
        stats = {"q_loss": value, **stats}
        return value, xp.concatenate(parts, axis=1), stats

    # -- the two steps --------------------------------------------------------------------------
    def d_step(self, batch):
        """One update of D, its trunk and Q: descend ``d_loss + q_loss``.

        Real and fake go through D as two passes (each with its own batch
        statistics); the real pass's Q output reaches no loss (``None``), the
        fake pass carries D's and Q's gradients together, which the trunk adds.
        """
        batch = self.real_batch(batch)
        inputs = self._draw(len(batch), self.rng, self.dtype)     # z ~ p(z), c ~ p(c)
        fake = self.G.forward(self.latent(inputs))                # G(z, c); no G gradient here
        self.D.zero_grad()
        a_real, _ = self.D.forward(batch.x)
        loss_real, da = self.loss.d_real(a_real)                  # −log D(x)
        self.D.backward((da, None), need_dx=False)
        a_fake, q = self.D.forward(fake)
        loss_fake, da = self.loss.d_fake(a_fake)                  # −log(1 − D(G(z, c)))
        _, dq, info = self.info_loss(q, inputs)                   # λ·(−log Q(c | G(z, c)))
        self.D.backward((da, dq), need_dx=False)
        self.d_opt.step()
        return {**self.d_stats(loss_real + loss_fake, a_real, a_fake), **info}

    def g_step(self, m):
        """One update of G: descend ``g_loss + q_loss`` on fresh ``(z, c)``,
        back-propagating both heads' gradients through the trunk into G with
        D's and Q's parameters fixed."""
        inputs = self._draw(m, self.rng, self.dtype)
        self.G.zero_grad()
        fake = self.G.forward(self.latent(inputs))
        a_fake, q = self.D.forward(fake)
        loss_g, da = self.loss.g(a_fake)                          # −log D(G(z, c)) (non-saturating)
        q_loss, dq, _ = self.info_loss(q, inputs)
        dfake = self.D.backward((da, dq), param_grads=False)      # ∂(g_loss + q_loss)/∂G(z, c)
        self.G.backward(dfake, need_dx=False)
        self.g_opt.step()
        return {"g_loss": loss_g, "g_q_loss": q_loss}

    # -- Q as an encoder -------------------------------------------------------------------------
    def encode(self, x, batch_size=500):
        """Q on images ``x`` (m, C, H, W) in evaluation mode, in batches:
        ``(logits of c1 (m, K), means of the continuous codes (m, continuous))``."""
        parts = []
        for i in range(0, x.shape[0], batch_size):
            _, q = self.D.forward(self.device.asarray(x[i:i + batch_size], dtype=self.dtype), train=False)
            parts.append(q)
        q = self.device.xp.concatenate(parts)
        return q[:, :self.categories], q[:, self.categories:]

    def classify(self, x, batch_size=500):
        """c1 as a classifier: Q's arg-max category for each image (host int64 array)."""
        return to_numpy(self.encode(x, batch_size)[0].argmax(axis=1)).astype(np.int64)

    def c1_error(self, images, labels, n_classes=10, batch_size=500) -> dict:
        """c1 as a classifier of real ``images`` (N, C, H, W), or flat square
        grey images (N, side²), against ``labels`` (N,): the error after each
        category is matched to a class (:func:`scratchgan.metrics.matching.matched_error`;
        the paper: 5 % on MNIST)."""
        from ..metrics.matching import matched_error

        if images.ndim == 2:
            side = int(round(math.sqrt(images.shape[1])))
            images = images.reshape(-1, 1, side, side)
        pred = self.classify(images, batch_size)
        return matched_error(pred, np.asarray(labels).astype(np.int64), self.categories, n_classes)

    def epoch_stats(self, images, labels) -> dict:
        """What the trainer logs after each epoch (as ``c1_error_valid``): c1's
        error on held-out ``images``, categories matched one to one (docs/infogan.md §5)."""
        return {"c1_error_valid": self.c1_error(images, labels)["error"]}

    # -- sampling --------------------------------------------------------------------------------
    def sample_inputs(self, n, rng, codes=None, **conditions) -> dict:
        """G's inputs for ``n`` samples: ``{"z", "c1", "c2", …}`` drawn with
        ``rng``. ``codes`` fixes some, e.g. ``{"c1": 3, "c2": -1.5}`` (a value,
        or ``n`` of them); the others are drawn. c1 must be an integer in
        0..K−1; continuous codes may go beyond the training range [−1, 1]
        (the paper's Figure 2 shows −2..2), up to ±:data:`CODE_LIMIT`."""
        self.refuse_conditions(conditions, "is conditioned on its codes (c1, c2, …)")
        dtype = self.dtype if rng is not None and not isinstance(rng, np.random.Generator) else np.float32
        return self._draw(n, rng, dtype, codes)

    def generate_from(self, inputs: dict):
        return self.G.forward(self.latent(inputs), train=False)

    def sample(self, m, z=None):
        """``m`` samples in evaluation mode, codes drawn (and ``z`` too, unless given)."""
        inputs = self._draw(m, self.rng, self.dtype)
        if z is not None:
            inputs["z"] = z
        return self.generate_from(inputs)

    def vary_code(self, name, values, rows, rng, codes=None) -> dict:
        """G's inputs for the paper's Figure 2: ``rows × len(values)`` samples,
        row-major; along a row the code ``name`` takes ``values`` and everything
        else stays as drawn once for that row (``codes`` fixes some of it per
        row: a value or ``rows`` of them)."""
        if name not in self.code_names:
            raise ValueError(f"unknown code {name!r}; this InfoGAN has {', '.join(self.code_names)}")
        values = np.asarray(values)
        self._check_codes({name: values}, len(values))
        base = self.sample_inputs(rows, rng, codes=codes)
        xp = get_array_module(base["z"])
        out = {k: xp.repeat(v, len(values), axis=0) for k, v in base.items()}
        out[name] = xp.asarray(np.tile(values, rows).astype(out[name].dtype))
        return out

    def grid_inputs(self, n, seed) -> dict:
        """The training grids: rows of fixed noise and codes, c1 = 0..K−1
        along each row (the paper's Figure 2a), when ``n`` is a multiple of K."""
        rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
        if n % self.categories:
            return self.sample_inputs(n, rng)
        return self.vary_code("c1", np.arange(self.categories), n // self.categories, rng)


def infogan_from_checkpoint(path, device="auto", need_q=False):
    """``(gan, config)`` from an InfoGAN checkpoint, or a ValueError saying why not.

    ``need_q``: Q is needed (it lives in D), so a G snapshot
    (``G_epoch_NNNN.npz``, G alone) will not do: use ``checkpoint.npz`` or
    ``partial.npz``.
    """
    from ..training.checkpoint import read_checkpoint
    from ..training.trainer import gan_from_checkpoint

    if need_q and not any(k.startswith("D/") for k in read_checkpoint(path)):
        raise ValueError(f"{path} holds G alone (a snapshot); Q lives in D: use the run's checkpoint.npz or "
                         "partial.npz")
    gan, config = gan_from_checkpoint(path, device)
    if not isinstance(gan, InfoGAN):
        raise ValueError(f"{path} was trained as the {gan.variant!r} variant ({config.preset} preset), not "
                         "InfoGAN: it has no codes")
    return gan, config
