"""Algorithm 1 of Goodfellow et al. (2014), line by line.

The paper's Algorithm 1 (minibatch stochastic gradient descent training of
generative adversarial nets)::

    1 for number of training iterations do
    2   for k steps do
    3     • Sample minibatch of m noise samples {z(1), …, z(m)} from noise prior p_g(z).
    4     • Sample minibatch of m examples {x(1), …, x(m)} from data generating distribution p_data(x).
    5     • Update the discriminator by ascending its stochastic gradient:
              ∇θd 1/m Σ [log D(x(i)) + log(1 − D(G(z(i))))]
    6   end for
    7   • Sample minibatch of m noise samples {z(1), …, z(m)} from noise prior p_g(z).
    8   • Update the generator by descending its stochastic gradient:
              ∇θg 1/m Σ log(1 − D(G(z(i))))
    9 end for

:class:`GAN` runs exactly that, with the minimax loss by default. The loss is
pluggable (:mod:`scratchgan.nn.losses`): with ``"non-saturating"`` line 8
maximises log D(G(z)) instead (the paper's §3 advice). Variants of the
family subclass :class:`GAN` and override only the steps their papers change
(:mod:`scratchgan.gan.registry`).

D outputs a logit ``a`` (``D(x) = σ(a)``); the losses work on logits. Statistics
are returned as 0-d arrays on the training device, so a step never waits for
the GPU; the trainer converts them every few steps.
"""

from __future__ import annotations

import numpy as np

from ..backend import default_rng, get_device
from ..nn import losses
from ..nn.layers import sigmoid
from .batch import Batch
from .priors import NoisePrior
from .registry import register

__all__ = ["GAN"]


@register("gan")
class GAN:
    """Generator ``G``, discriminator ``D``, their optimisers, ``p_z`` and a loss.

    Parameters
    ----------
    G : Module, noise ``(m, noise_dim)`` → samples ``(m, …)``
    D : Module, samples ``(m, …)`` → logits ``(m, 1)`` (no final sigmoid)
    d_opt, g_opt : optimisers over ``D`` and ``G``
    prior : NoisePrior, or an int (its dimension; prior ``"uniform-sqrt3"``), or None
        for a G that takes no noise vector (pix2pix, whose noise is dropout)
    loss : a name or a :class:`scratchgan.nn.losses.Loss` (default: eq. 1, minimax)
    k : int, D steps per G step (the paper used k = 1)
    seed : int or tuple, for noise and dropout (same seed and device, same numbers)
    device : "cpu", "gpu", "auto" or a Device; G and D are moved there
    """

    def __init__(self, G, D, d_opt, g_opt, prior, *, loss="minimax", k=1, seed=0, device=None):
        self.G, self.D, self.d_opt, self.g_opt = G, D, d_opt, g_opt
        self.prior = prior if prior is None or isinstance(prior, NoisePrior) else NoisePrior(prior)
        self.loss = losses.get(loss)
        self.k = int(k)
        if self.k < 1:
            raise ValueError(f"k (D steps per G step) must be >= 1, got {k!r}")
        self.device = get_device(device) if device is not None else G.device
        for module in self.modules().values():
            module.to(self.device)
        self.dtype = np.dtype(G.dtype).type
        self.iterations = 0  # completed iterations of the outer loop (line 1)
        self.seed(seed)

    # -- Algorithm 1 ---------------------------------------------------------------------
    def d_step(self, batch):
        """Lines 3–5: one update of D."""
        stats = self.d_gradients(batch)                     # lines 3–4 and line 5's gradient
        self.d_opt.step()                                   # line 5: ascend V = descend −V
        return stats

    def d_gradients(self, batch):
        """Lines 3–4 and the gradient of line 5, in D's ``grads``. Real and fake
        go through D as two passes whose gradients add up (each pass with its
        own batch statistics)."""
        batch = self.real_batch(batch)
        z = self.sample_noise(len(batch))                   # line 3: z ~ p_g(z)
        x = batch.x                                         # line 4: x ~ p_data (drawn by the caller)
        fake = self.G.forward(z)                            # G(z); no G gradient in this step
        self.D.zero_grad()
        a_real = self.D.forward(x)
        loss_real, da = self.loss.d_real(a_real)            # −log D(x)
        self.D.backward(da, need_dx=False)
        a_fake = self.D.forward(fake)
        loss_fake, da = self.loss.d_fake(a_fake)            # −log(1 − D(G(z)))
        self.D.backward(da, need_dx=False)
        return self.d_stats(loss_real + loss_fake, a_real, a_fake)

    def g_step(self, m):
        """Lines 7–8: one update of G, back-propagating through D with D's
        parameters fixed (``param_grads=False``)."""
        z = self.sample_noise(m)                            # line 7: z ~ p_g(z)
        self.G.zero_grad()
        fake = self.G.forward(z)
        a_fake = self.D.forward(fake)
        loss_g, da = self.loss.g(a_fake)                    # log(1 − D(G(z))), or −log D(G(z))
        dfake = self.D.backward(da, param_grads=False)      # ∂L_G/∂G(z), through D
        self.G.backward(dfake, need_dx=False)
        self.g_opt.step()                                   # line 8: descend
        return {"g_loss": loss_g}

    def iteration(self, next_batch):
        """Lines 1–9 once: ``k`` D steps, each on a fresh minibatch from
        ``next_batch()``, then one G step with the same ``m``. Returns the
        statistics of the last D step and of the G step."""
        for _ in range(self.d_steps()):                     # line 2: for k steps
            batch = self.real_batch(next_batch())
            stats = self.d_step(batch)
        stats.update(self.g_step(len(batch)))
        self.iterations += 1
        return stats

    # -- helpers -------------------------------------------------------------------------
    def d_steps(self):
        """How many D steps this iteration makes: ``k`` (a variant may vary it)."""
        return self.k

    def d_stats(self, d_loss, a_real, a_fake):
        """D's loss, mean D(x) and mean D(G(z)) (0-d device arrays)."""
        return {"d_loss": d_loss, "D_x": sigmoid(a_real).mean(), "D_G_z": sigmoid(a_fake).mean()}

    def real_batch(self, batch) -> Batch:
        """``batch`` (a Batch or an array of real samples) as a Batch whose
        ``x`` has the networks' dtype; an empty batch is an error."""
        if not isinstance(batch, Batch):
            batch = Batch(batch)
        x = batch.x
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"a real minibatch needs shape (m, …) with m ≥ 1, got {getattr(x, 'shape', x)}")
        if x.shape[0] == 0:
            raise ValueError(f"the real minibatch is empty (shape {tuple(x.shape)}): next_batch() must "
                             "return at least one sample")
        if x.dtype != self.dtype:  # a float64 batch would promote every product
            batch.x = x.astype(self.dtype)
        return batch

    def seed(self, seed) -> None:
        """Reset the generator behind noise and dropout; ``seed`` may be an int
        or a tuple of ints (e.g. ``(seed, epoch)``), mixed on the host."""
        entropy = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
        self.rng = default_rng(entropy, self.device)
        for module in self.modules().values():
            module.set_rng(self.rng)

    def sample_noise(self, m):
        """``m`` draws of G's input from ``p_z`` on the training device."""
        if self.prior is None:
            raise ValueError(f"the {self.variant!r} variant's G takes no noise vector")
        return self.prior.sample(m, self.rng, self.dtype)

    def sample(self, m, z=None):
        """``m`` samples ``G(z)`` in evaluation mode (no dropout)."""
        return self.G.forward(self.sample_noise(m) if z is None else z, train=False)

    # -- sampling, for users and the trainer ------------------------------------------------
    #: what a minibatch must carry besides ``x`` for this variant ("labels", "source");
    #: the trainer takes them from the dataset's ``train_labels`` / ``train_source``
    needs = ()
    #: the per-sample shape of a batch's ``source`` (variants that need one set it)
    source_shape = ()

    def sample_inputs(self, n, rng, **conditions) -> dict:
        """G's inputs for ``n`` samples drawn with ``rng`` (on its device), as a
        dict (``{"z": …}`` here; a conditional variant adds its labels or codes).
        An unconditional GAN takes no ``conditions``."""
        self.refuse_conditions(conditions, "generates unconditionally")
        dtype = self.dtype if rng is not None and not isinstance(rng, np.random.Generator) else np.float32
        return {"z": self.prior.sample(n, rng, dtype)}

    def refuse_conditions(self, conditions, does):
        """A ValueError naming every condition given (not None) in ``conditions``,
        which this variant does not take: "the '<variant>' variant <does>: it
        takes no <names>". Each variant's :meth:`sample_inputs` calls it on the
        conditions it does not know."""
        given = sorted(k for k, v in conditions.items() if v is not None)
        if given:
            raise ValueError(f"the {self.variant!r} variant {does}: it takes no {', '.join(given)}")

    def generate_from(self, inputs: dict):
        """G in evaluation mode on ``inputs`` from :meth:`sample_inputs` (host or device arrays)."""
        return self.G.forward(self.device.asarray(inputs["z"], dtype=self.dtype), train=False)

    def grid_inputs(self, n, seed, **conditions) -> dict:
        """The fixed inputs of the training grids: ``n`` draws on the host from
        ``seed`` (host arrays, saved in checkpoints). ``conditions`` go to
        :meth:`sample_inputs` (the trainer gives a translating variant, one
        that needs a ``source``, ``n`` held-out sources)."""
        return self.sample_inputs(n, np.random.default_rng(np.random.SeedSequence([seed, 7])), **conditions)

    def generate(self, n, seed=0, batch_size=500, **conditions):
        """``n`` samples in evaluation mode, drawn in batches (a convolutional G
        on 10,000 inputs at once would hold gigabytes of activations), as one
        device array. ``conditions`` (labels, codes) are arrays of length ``n``
        or single values (or dicts of them, such as InfoGAN's ``codes``), passed
        to :meth:`sample_inputs`."""
        rng = default_rng(seed, self.device)
        parts = []

        def cut(v, i, b):  # this batch's share of a condition
            if isinstance(v, dict):
                return {k: cut(u, i, b) for k, u in v.items()}
            return v[i:i + b] if getattr(v, "ndim", 0) and len(v) == n else v
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            part = {k: cut(v, i, b) for k, v in conditions.items()}
            parts.append(self.generate_from(self.sample_inputs(b, rng, **part)))
        return self.device.xp.concatenate(parts)

    def modules(self) -> dict:
        """The trained networks by name (what a checkpoint saves)."""
        return {"G": self.G, "D": self.D}

    def optimizers(self) -> dict:
        """The optimisers by name (what a checkpoint saves)."""
        return {"g_opt": self.g_opt, "d_opt": self.d_opt}

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Every module and optimiser as ``"<name>/<key>"`` host arrays, and the
        iteration counter. The random generator is not included (CuPy's cannot
        be saved): the trainer re-seeds at known points instead."""
        out = {"iterations": np.asarray(self.iterations)}
        for name, obj in {**self.modules(), **self.optimizers()}.items():
            out.update({f"{name}/{k}": v for k, v in obj.state_dict().items()})
        return out

    def load_state_dict(self, state: dict) -> None:
        for name, obj in {**self.modules(), **self.optimizers()}.items():
            obj.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + "/")})
        self.iterations = int(np.asarray(state["iterations"]))
