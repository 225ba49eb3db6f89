"""Algorithm 1 of Goodfellow et al. (2014), line by line.

The paper's Algorithm 1 (minibatch stochastic gradient descent training of
generative adversarial nets)::

    for number of training iterations do
      for k steps do
    3   • Sample minibatch of m noise samples {z(1), …, z(m)} from noise prior p_g(z).
    4   • Sample minibatch of m examples {x(1), …, x(m)} from data generating distribution p_data(x).
    5   • Update the discriminator by ascending its stochastic gradient:
            ∇θd 1/m Σ [log D(x(i)) + log(1 − D(G(z(i))))]
      end for
    7 • Sample minibatch of m noise samples {z(1), …, z(m)} from noise prior p_g(z).
    8 • Update the generator by descending its stochastic gradient:
            ∇θg 1/m Σ log(1 − D(G(z(i))))
    end for
    "The gradient-based updates can use any standard gradient-based learning
    rule. We used momentum in our experiments."

:class:`GAN` runs exactly that (:meth:`GAN.d_step`, :meth:`GAN.g_step`,
:meth:`GAN.iteration`). The loss is pluggable (``scratchgan.losses``): with
``"minimax"`` lines 5 and 8 are as printed; with ``"non-saturating"`` line 8
maximises log D(G(z)) instead (the paper's §3 advice).

``simultaneous=True`` reproduces what the authors' released code did instead
(PAPER.md §3.2): one minibatch of data and noise, one forward pass, and D and G
updated together from gradients taken at the same parameter values (so k = 1).

Statistics are returned as 0-d arrays on the training device, so a step never
waits for the GPU; convert them to floats every few steps (:class:`StatsLog`).
"""

from __future__ import annotations

import inspect
import math

import numpy as np

from . import losses as _losses
from .backend import default_rng, get_device, to_numpy

__all__ = ["GAN", "NoisePrior", "PRIORS", "StatsLog", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Raised when a loss becomes NaN or infinite; names the step and the loss."""

    def __init__(self, step: int, which: str, value: float):
        self.step, self.which, self.value = step, which, value
        super().__init__(f"non-finite {which} loss ({value}) at iteration {step}; stopping")


# ---------------------------------------------------------------------------
# Noise priors p_g(z)
# ---------------------------------------------------------------------------
PRIORS = ("uniform-sqrt3", "uniform", "normal")


class NoisePrior:
    """The noise prior ``p_g(z)``.

    * ``"uniform-sqrt3"``: U[−√3, √3] per dimension (zero mean, unit variance),
      what the authors' MNIST code used (PAPER.md §1);
    * ``"uniform"``: U[−1, 1];
    * ``"normal"``: N(0, 1).
    """

    def __init__(self, dim: int, kind: str = "uniform-sqrt3"):
        if kind not in PRIORS:
            raise ValueError(f"unknown noise prior {kind!r}; choose one of {', '.join(PRIORS)}")
        if int(dim) < 1:
            raise ValueError(f"noise dimension must be >= 1, got {dim!r}")
        self.dim, self.kind = int(dim), kind

    def sample(self, m: int, rng, dtype=np.float32):
        """``m`` noise vectors, shape ``(m, dim)``, drawn with ``rng`` (on its device)."""
        shape = (m, self.dim)
        dtype = np.dtype(dtype).type
        if self.kind == "normal":
            return rng.standard_normal(shape, dtype=dtype)
        half = math.sqrt(3.0) if self.kind == "uniform-sqrt3" else 1.0
        u = rng.random(shape, dtype=dtype)  # U[0, 1)
        return u * dtype(2 * half) - dtype(half)

    def __repr__(self):
        return f"NoisePrior({self.dim}, {self.kind!r})"


# ---------------------------------------------------------------------------
# Statistics without host synchronisation
# ---------------------------------------------------------------------------
class StatsLog:
    """Collects per-iteration statistics (0-d device arrays) and moves them to
    the host in one transfer when :meth:`flush` is called.

    On the GPU ``float(x)`` waits for every queued kernel; doing it once per
    ``N`` iterations instead of every iteration keeps the GPU busy.
    """

    def __init__(self):
        self._steps: list[int] = []
        self._rows: list[dict] = []

    def append(self, step: int, stats: dict) -> None:
        self._steps.append(step)
        self._rows.append(stats)

    def __len__(self):
        return len(self._rows)

    def flush(self) -> list[dict]:
        """Host rows ``{"step": t, "d_loss": …, …}``; raises
        :class:`NonFiniteLossError` naming the *first* iteration whose D or G
        loss was not finite."""
        if not self._rows:
            return []
        keys = list(self._rows[0])
        xp = None
        for v in self._rows[0].values():
            from .backend import get_array_module
            xp = get_array_module(v)
            break
        table = to_numpy(xp.stack([xp.stack([xp.asarray(r[k], dtype=xp.float64) for k in keys])
                                   for r in self._rows]))
        steps, self._steps, self._rows = self._steps, [], []
        out = []
        for t, row in zip(steps, table):
            rec = {"step": t, **{k: float(v) for k, v in zip(keys, row)}}
            for which in ("d_loss", "g_loss"):
                if which in rec and not math.isfinite(rec[which]):
                    raise NonFiniteLossError(t, which[0].upper(), rec[which])
            out.append(rec)
        return out


def _grad_norm(model, xp):
    """‖∇θ‖₂ over all of a model's gradients (dot products: no temporaries)."""
    return xp.sqrt(sum(xp.vdot(g.ravel(), g.ravel()) for g in model.grads.values()))


# ---------------------------------------------------------------------------
# The GAN
# ---------------------------------------------------------------------------
class GAN:
    """Generator ``G``, discriminator ``D``, their optimisers, ``p_g(z)`` and a loss.

    Parameters
    ----------
    G : Sequential, noise ``(m, noise_dim)`` → samples ``(m, d)``
    D : Sequential, samples ``(m, d)`` → logits ``(m, 1)`` (no final sigmoid:
        ``D(x) = σ(logit)``; the losses work on logits for stability)
    d_opt, g_opt : optimisers built on ``D`` and ``G``
    noise : NoisePrior or int (dimension; prior ``"uniform-sqrt3"``)
    loss : name or :class:`scratchgan.losses.Loss`
    k : int, D steps per G step (Algorithm 1; the paper used k = 1)
    simultaneous : bool, the authors' code's update (see module docstring)
    seed : int, makes noise and dropout reproducible (same seed, same backend,
        same numbers)
    device : "cpu", "gpu", "auto" or a Device; G and D are moved there
    grad_norms : bool, also report ‖∇θd‖ and ‖∇θg‖ (a few reductions per step)
    """

    def __init__(self, G, D, d_opt, g_opt, noise, *, loss="non-saturating", k=1,
                 simultaneous=False, seed=0, device=None, grad_norms=True):
        self.G, self.D = G, D
        self.d_opt, self.g_opt = d_opt, g_opt
        self.noise = noise if isinstance(noise, NoisePrior) else NoisePrior(noise)
        self.loss = _losses.get(loss)
        self.k = int(k)
        if self.k < 1:
            raise ValueError(f"k (D steps per G step) must be >= 1, got {k!r}")
        self.simultaneous = bool(simultaneous)
        if self.simultaneous and self.k != 1:
            raise ValueError("simultaneous updates use one minibatch for D and G: k must be 1")
        self.device = get_device(device) if device is not None else G.device
        self.G.to(self.device)
        self.D.to(self.device)
        self.xp = self.device.xp
        self.dtype = np.dtype(G.dtype).type
        self.grad_norms = grad_norms
        if self.loss.clip is not None and d_opt.clip is None:
            d_opt.clip = self.loss.clip  # WGAN: clip the critic after every update
        self.iterations = 0  # G updates made so far (Algorithm 1's outer loop)
        self.seed(seed)

    # -- randomness --------------------------------------------------------------
    def seed(self, seed) -> None:
        """Reset the generator used for noise and D's dropout masks.

        ``seed`` may be an int or a tuple of ints (e.g. ``(seed, epoch)``),
        mixed on the host by ``numpy.random.SeedSequence``.
        """
        entropy = int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])
        self.rng = default_rng(entropy, self.device)
        self.D.set_rng(self.rng)
        self.G.set_rng(self.rng)

    def sample_noise(self, m: int):
        """``m`` draws from ``p_g(z)`` on the training device."""
        return self.noise.sample(m, self.rng, self.dtype)

    def sample(self, m: int, z=None):
        """``m`` samples ``G(z)`` in evaluation mode (no dropout)."""
        z = self.sample_noise(m) if z is None else z
        return self.G.forward(z, train=False)

    # -- Algorithm 1 ---------------------------------------------------------------
    def _check_batch(self, x):
        """The real minibatch as a 2-D array in the networks' dtype."""
        if getattr(x, "ndim", None) != 2:
            raise ValueError(f"real minibatch must be 2-D (m, features), got shape {getattr(x, 'shape', None)}")
        # a float64 batch would silently promote every product to float64
        return x if x.dtype == self.dtype else x.astype(self.dtype)

    def d_step(self, x):
        """Lines 3–5: one discriminator update on the real minibatch ``x``.

        Runs D *once* on the concatenation ``[x; G(z)]``: because every layer
        acts row by row, this gives exactly the gradient of the two separate
        passes, and no cache is overwritten between forward and backward.
        """
        xp = self.xp
        x = self._check_batch(x)
        m = x.shape[0]
        z = self.sample_noise(m)                               # line 3: z ~ p_g(z)
        fake = self.G.forward(z, train=True)                   # G(z); no G gradient here
        logits = self.D.forward(xp.concatenate([x, fake]), train=True)  # line 4: x given
        value, d_real, d_fake = self.loss.d_loss(logits[:m], logits[m:])
        self.D.backward(xp.concatenate([d_real, d_fake]), need_dx=False)
        self.d_opt.step()                                      # line 5: ascend V = descend −V
        return self._d_stats(value, logits[:m], logits[m:])

    def g_step(self, m: int):
        """Lines 7–8: one generator update from ``m`` fresh noise samples.

        ``∂L_G/∂θg`` = back-propagate ``∂L_G/∂logits`` through D *without*
        touching D's parameters (``param_grads=False``) to get ``∂L_G/∂G(z)``,
        then through G.
        """
        z = self.sample_noise(m)                               # line 7: z ~ p_g(z)
        fake = self.G.forward(z, train=True)
        logits = self.D.forward(fake, train=True)
        value, d_logits = self.loss.g_loss(logits)
        d_fake = self.D.backward(d_logits, param_grads=False)  # through D, D fixed
        self.G.backward(d_fake, need_dx=False)
        self.g_opt.step()                                      # line 8: descend
        stats = {"g_loss": value}
        if self.grad_norms:
            stats["g_grad_norm"] = _grad_norm(self.G, self.xp)
        return stats

    def simultaneous_step(self, x):
        """The authors' update (PAPER.md §3.1–3.2): one minibatch, one forward
        pass, gradients of D's and G's objectives at the same parameters, then
        both updated. k = 1 by construction."""
        xp = self.xp
        x = self._check_batch(x)
        m = x.shape[0]
        z = self.sample_noise(m)
        fake = self.G.forward(z, train=True)
        logits = self.D.forward(xp.concatenate([x, fake]), train=True)
        d_value, d_real, d_fake = self.loss.d_loss(logits[:m], logits[m:])
        g_value, g_fake = self.loss.g_loss(logits[m:])
        # ∂L_G/∂G(z): back through the same dropout masks; real rows get zero gradient.
        d_input = self.D.backward(xp.concatenate([xp.zeros_like(g_fake), g_fake]), param_grads=False)
        self.G.backward(d_input[m:], need_dx=False)
        # ∂L_D/∂θd (overwrites D's grads, which the pass above left alone).
        self.D.backward(xp.concatenate([d_real, d_fake]), need_dx=False)
        self.d_opt.step()
        self.g_opt.step()
        stats = self._d_stats(d_value, logits[:m], logits[m:])
        stats["g_loss"] = g_value
        if self.grad_norms:
            stats["g_grad_norm"] = _grad_norm(self.G, xp)
        return stats

    def iteration(self, sample_data, m: int | None = None):
        """One training iteration of Algorithm 1 (k D steps, then one G step).

        Parameters
        ----------
        sample_data : callable ``m -> (m, d)`` array on the device, or a
            callable of no arguments returning the next minibatch
        m : minibatch size for the G step (default: the real batch's size)

        Returns
        -------
        dict of 0-d device arrays: ``d_loss, g_loss, d_real`` (mean D(x)),
        ``d_fake`` (mean D(G(z)) in the last D step) and, with
        ``grad_norms``, ``d_grad_norm, g_grad_norm``.
        """
        if self.simultaneous:
            stats = self.simultaneous_step(_next_batch(sample_data, m))
        else:
            for _ in range(self.k):                            # line 2: for k steps
                x = _next_batch(sample_data, m)
                stats = self.d_step(x)
            stats.update(self.g_step(x.shape[0] if m is None else m))
        self.iterations += 1
        return stats

    def _d_stats(self, value, real_logits, fake_logits):
        from .layers import sigmoid
        stats = {
            "d_loss": value,
            "d_real": sigmoid(real_logits).mean(),
            "d_fake": sigmoid(fake_logits).mean(),
        }
        if self.grad_norms:
            stats["d_grad_norm"] = _grad_norm(self.D, self.xp)
        return stats

    # -- checkpoints ---------------------------------------------------------------
    def state_dict(self) -> dict:
        """Both networks, both optimisers and the iteration counter.

        The random generator's state is not included (CuPy's cannot be
        serialised): to resume exactly, re-seed at known points, as
        :class:`scratchgan.train.Trainer` does with ``(seed, epoch)``."""
        out = {f"G/{k}": v for k, v in self.G.state_dict().items()}
        out.update({f"D/{k}": v for k, v in self.D.state_dict().items()})
        out.update({f"g_opt/{k}": v for k, v in self.g_opt.state_dict().items()})
        out.update({f"d_opt/{k}": v for k, v in self.d_opt.state_dict().items()})
        out["iterations"] = np.asarray(self.iterations)
        return out

    def load_state_dict(self, state: dict) -> None:
        def part(prefix):
            return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        self.G.load_state_dict(part("G/"))
        self.D.load_state_dict(part("D/"))
        self.g_opt.load_state_dict(part("g_opt/"))
        self.d_opt.load_state_dict(part("d_opt/"))
        self.iterations = int(np.asarray(state["iterations"]))


def _next_batch(sample_data, m):
    """``sample_data(m)`` when ``m`` is given and the sampler accepts it, else
    ``sample_data()``. Decided from the signature, so a TypeError raised
    *inside* the sampler is never mistaken for a calling-convention mismatch."""
    if m is None:
        return sample_data()
    try:
        inspect.signature(sample_data).bind(m)
    except TypeError:      # takes no argument: it knows its own batch size
        return sample_data()
    except ValueError:     # no introspectable signature (some builtins): pass m
        pass
    return sample_data(m)
