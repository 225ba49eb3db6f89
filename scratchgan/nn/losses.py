"""Adversarial losses on discriminator *logits*, each gradient derived by hand.

The discriminator outputs a logit ``a``; ``D(x) = σ(a)``. Every loss here is a
sum of a term on the real logits and a term on the fake ones, so real and fake
batches can go through D as separate passes (each with its own batch
statistics) and their gradients add up::

    value, da = loss.d_real(a_real)    # D's term on real data      (D minimises)
    value, da = loss.d_fake(a_fake)    # D's term on generated data (D minimises)
    value, da = loss.g(a_fake)         # G's loss                   (G minimises)

Values are minibatch means (0-d arrays on the logits' device); ``da`` is the
gradient of that mean with the logits' shape. Get a loss by name:
``scratchgan.nn.losses.get("non-saturating")``.

Two identities keep every value finite for any logit::

    log σ(a)      = −softplus(−a)          log(1 − σ(a)) = log σ(−a) = −softplus(a)
    softplus(a) = log(1 + eᵃ) = max(a, 0) + log1p(e^{−|a|})      (never overflows)

and the derivative of softplus, step by step::

    softplus(a)  = log(1 + eᵃ)
    softplus'(a) = eᵃ / (1 + eᵃ)            (d/da log u = u'/u, u = 1 + eᵃ)
                 = 1 / (e^{−a} + 1) = σ(a)   (divide by eᵃ)
"""

from __future__ import annotations

import math

from ..backend import get_array_module
from .layers import check_label_array, sigmoid

__all__ = ["softplus", "Loss", "Minimax", "NonSaturating", "LeastSquares", "Hinge", "Wasserstein",
           "get", "NAMES", "log_softmax", "softmax_cross_entropy", "l1", "gaussian_nll"]


def softplus(a):
    """``log(1 + eᵃ)`` without overflow: ``max(a, 0) + log1p(exp(−|a|))``.

    Parameters: a (any shape). Returns: the same shape, ≥ 0.
    """
    xp = get_array_module(a)
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def _check_logits(name, a):
    if getattr(a, "ndim", None) is None or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array of logits, got shape "
                         f"{getattr(a, 'shape', None)} (an empty batch?)")


class Loss:
    """Base class. ``d_scale`` multiplies D's terms and their gradients.

    ``d_scale = 0.5`` reproduces the authors' code, whose D objective was
    ``0.5·[BCE(real, 1) + BCE(fake, 0)]`` (docs/paper.md §3.1); Algorithm 1 has 1.
    Subclasses define ``_real``, ``_fake`` and ``_g``, each
    ``logits → (mean value, gradient of the mean)``.
    """

    name = "?"

    def __init__(self, d_scale: float = 1.0):
        self.d_scale = float(d_scale)

    def d_real(self, a):
        """D's loss term on real logits ``a`` (any shape): ``(value, ∂value/∂a)``."""
        _check_logits(f"{self.name} loss: real logits", a)
        v, da = self._real(a)
        return (v, da) if self.d_scale == 1.0 else (v * self.d_scale, da * a.dtype.type(self.d_scale))

    def d_fake(self, a):
        """D's loss term on generated logits ``a``: ``(value, ∂value/∂a)``."""
        _check_logits(f"{self.name} loss: fake logits", a)
        v, da = self._fake(a)
        return (v, da) if self.d_scale == 1.0 else (v * self.d_scale, da * a.dtype.type(self.d_scale))

    def g(self, a):
        """G's loss on the logits D gives its samples: ``(value, ∂value/∂a)``."""
        _check_logits(f"{self.name} loss: fake logits", a)
        return self._g(a)

    def __repr__(self):
        extra = f", d_scale={self.d_scale}" if self.d_scale != 1.0 else ""
        return f"losses.get({self.name!r}{extra})"


class Minimax(Loss):
    """The paper's value function, eq. (1)::

        min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]

    D *ascends* V, i.e. minimises ``−V``. With ``m`` logits per term::

        real:  L = mean −log σ(a) = mean softplus(−a)
               ∂L/∂a = −softplus'(−a)/m = −σ(−a)/m          (chain rule through −a)
        fake:  L = mean −log(1 − σ(a)) = mean softplus(a)
               ∂L/∂a = σ(a)/m

    G *descends* ``E_z[log(1 − D(G(z)))]`` (Algorithm 1, line 8)::

        L_G = mean log(1 − σ(a)) = −mean softplus(a),   ∂L_G/∂a = −σ(a)/m

    When D rejects fakes with confidence (``a → −∞``) this gradient → 0: the
    saturation the paper warns about in §3.
    """

    name = "minimax"

    def _real(self, a):
        return softplus(-a).mean(), -sigmoid(-a) / a.size

    def _fake(self, a):
        return softplus(a).mean(), sigmoid(a) / a.size

    def _g(self, a):
        return -softplus(a).mean(), -sigmoid(a) / a.size


class NonSaturating(Minimax):
    """The paper's §3 remedy: G maximises ``log D(G(z))`` instead::

        L_G = mean −log σ(a) = mean softplus(−a),   ∂L_G/∂a = −σ(−a)/m

    (written with ``σ(−a)`` rather than ``1 − σ(a)`` so float32 keeps small
    values), which tends to ``−1/m`` as ``a → −∞``: strong gradients exactly
    when G is poor. D's terms are the minimax ones. This is what the authors'
    code trained (docs/paper.md §3.1).
    """

    name = "non-saturating"

    def _g(self, a):
        return softplus(-a).mean(), -sigmoid(-a) / a.size


class LeastSquares(Loss):
    """LSGAN (Mao et al., 2017) with targets 1 (real), 0 (fake), 1 (G) on the raw output::

        real:  L = ½ mean (a − 1)²,   ∂L/∂a = (a − 1)/m
        fake:  L = ½ mean a²,         ∂L/∂a = a/m
        G:     L = ½ mean (a − 1)²,   ∂L/∂a = (a − 1)/m
    """

    name = "least-squares"

    def _real(self, a):
        return 0.5 * ((a - 1) ** 2).mean(), (a - 1) / a.size

    def _fake(self, a):
        return 0.5 * (a ** 2).mean(), a / a.size

    def _g(self, a):
        return 0.5 * ((a - 1) ** 2).mean(), (a - 1) / a.size


class Hinge(Loss):
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018)::

        real:  L = mean max(0, 1 − a),   ∂L/∂a = −[a < 1]/m
        fake:  L = mean max(0, 1 + a),   ∂L/∂a = [a > −1]/m
        G:     L = −mean a,              ∂L/∂a = −1/m

    (subgradient 0 at the kinks ``a = ±1``).
    """

    name = "hinge"

    def _real(self, a):
        xp = get_array_module(a)
        return xp.maximum(1 - a, 0).mean(), -(a < 1).astype(a.dtype) / a.size

    def _fake(self, a):
        xp = get_array_module(a)
        return xp.maximum(1 + a, 0).mean(), (a > -1).astype(a.dtype) / a.size

    def _g(self, a):
        return -a.mean(), get_array_module(a).full_like(a, -1.0 / a.size)


class Wasserstein(Loss):
    """WGAN (Arjovsky et al., 2017): the critic's raw output ``a`` estimates the
    Kantorovich–Rubinstein dual ``E[f(x)] − E[f(G(z))]`` over 1-Lipschitz f.
    The critic minimises its negative; the Lipschitz constraint comes from the
    WGAN update (weight clipping) or a gradient penalty, not from this loss::

        real:  L = −mean a,   ∂L/∂a = −1/m
        fake:  L =  mean a,   ∂L/∂a =  1/m
        G:     L = −mean a,   ∂L/∂a = −1/m
    """

    name = "wasserstein"

    def _real(self, a):
        return -a.mean(), get_array_module(a).full_like(a, -1.0 / a.size)

    def _fake(self, a):
        return a.mean(), get_array_module(a).full_like(a, 1.0 / a.size)

    def _g(self, a):
        return -a.mean(), get_array_module(a).full_like(a, -1.0 / a.size)


_REGISTRY = {cls.name: cls for cls in (Minimax, NonSaturating, LeastSquares, Hinge, Wasserstein)}
_ALIASES = {"nonsaturating": "non-saturating", "ns": "non-saturating", "lsgan": "least-squares",
            "wgan": "wasserstein", "least_squares": "least-squares", "non_saturating": "non-saturating"}
NAMES = tuple(_REGISTRY)


def get(name, **kwargs) -> Loss:
    """The loss called ``name`` (one of :data:`NAMES`); a Loss instance passes through."""
    if isinstance(name, Loss):
        return name
    key = _ALIASES.get(str(name).lower(), str(name).lower())
    if key not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(NAMES)}")
    return _REGISTRY[key](**kwargs)


# ---------------------------------------------------------------------------
# Losses beside the adversarial ones: classifiers, InfoGAN's codes, pix2pix
# ---------------------------------------------------------------------------
def log_softmax(a):
    """``log softmax(a)`` along the last axis, stably: with ``c = max_k a_k``,
    ``log(e^{a_j} / Σ_k e^{a_k}) = (a_j − c) − log Σ_k e^{a_k − c}`` and every
    exponent is ≤ 0, so nothing overflows.

    Parameters: a (…, K). Returns: (…, K).
    """
    xp = get_array_module(a)
    shifted = a - a.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of integer ``labels`` under ``softmax(logits)``.

    Parameters: logits (m, K) — raw scores, *not* probabilities (a softmax
    before this loss would apply it twice); labels (m,) integers in [0, K).
    Returns: (value, dlogits), value the batch mean of ``−log softmax(a)[y]``.

    With ``p = softmax(a)`` and ``L_i = −a_{i,y} + log Σ_k e^{a_{i,k}}``::

        ∂L_i/∂a_{i,j} = −[j = y_i] + e^{a_{i,j}} / Σ_k e^{a_{i,k}} = p_{i,j} − onehot_{i,j}

    so ``dlogits = (p − onehot(y)) / m``.
    """
    xp = get_array_module(logits)
    if getattr(logits, "ndim", None) != 2 or logits.shape[0] == 0:
        raise ValueError(f"softmax_cross_entropy: expected logits of shape (m, K), got {getattr(logits, 'shape', None)}")
    m, K = logits.shape
    check_label_array(labels, K, "softmax_cross_entropy")   # (a label outside [0, K) would get a zero one-hot row)
    if labels.shape[0] != m:
        raise ValueError(f"softmax_cross_entropy: {m} rows of logits but {labels.shape[0]} labels")
    logp = log_softmax(logits)
    onehot = (labels[:, None] == xp.arange(K)[None, :])
    value = -(logp * onehot).sum() / m
    return value, (xp.exp(logp) - onehot) / logits.dtype.type(m)


def l1(x, target):
    """Mean absolute error ``mean |x − target|`` (pix2pix's reconstruction term).

    Parameters: x, target (same shape). Returns: (value, dx) with
    ``dx = sign(x − target) / size`` (the subgradient 0 where they are equal).
    """
    if x.shape != target.shape:
        raise ValueError(f"l1: x has shape {tuple(x.shape)}, target {tuple(target.shape)}")
    diff = x - target
    return get_array_module(x).abs(diff).mean(), get_array_module(x).sign(diff) / diff.dtype.type(diff.size)


def gaussian_nll(mu, c, sigma=1.0):
    """Negative log-likelihood of ``c`` under a factored Gaussian N(mu, σ²) with
    *fixed* σ, summed over the code's dimensions, averaged over the batch
    (InfoGAN's continuous codes; with σ = 1 it is half the squared error plus
    a constant).

    Parameters: mu (m, d) the predicted means; c (m, d) the true codes.
    Returns: (value, dmu)::

        L_i = Σ_j [ (c_ij − μ_ij)² / (2σ²) + log σ + ½ log 2π ]
        ∂L/∂μ_ij = (μ_ij − c_ij) / (σ² m)
    """
    if mu.shape != c.shape or mu.ndim != 2:
        raise ValueError(f"gaussian_nll: mu {tuple(mu.shape)} and c {tuple(c.shape)} must both be (m, d)")
    m, d = mu.shape
    diff = mu - c
    value = (diff * diff).sum() / (2 * sigma ** 2 * m) + d * (math.log(sigma) + 0.5 * math.log(2 * math.pi))
    return value, diff / mu.dtype.type(sigma ** 2 * m)
