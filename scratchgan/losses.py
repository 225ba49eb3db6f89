"""GAN losses on discriminator *logits*, each with its gradient derived by hand.

The discriminator outputs a logit ``a``; ``D(x) = σ(a)``. Two identities keep
every loss finite for any logit:

    log D     = log σ(a)      = −softplus(−a)
    log(1 − D) = log σ(−a)     = −softplus(a)
    softplus(a) = log(1 + eᵃ) = max(a, 0) + log1p(e^{−|a|})    (never overflows)
    softplus'(a) = σ(a)

Every loss object offers the same two methods (values are minibatch means,
returned arrays are gradients of those means, with the logits' shape)::

    value, d_real, d_fake = loss.d_loss(real_logits, fake_logits)   # D minimises
    value, d_fake        = loss.g_loss(fake_logits)                 # G minimises

Get one by name: ``scratchgan.losses.get("non-saturating")``.
"""

from __future__ import annotations

from .backend import get_array_module
from .layers import sigmoid

__all__ = [
    "softplus",
    "Loss",
    "Minimax",
    "NonSaturating",
    "LeastSquares",
    "Hinge",
    "Wasserstein",
    "get",
    "NAMES",
]


def softplus(a):
    """``log(1 + eᵃ)`` without overflow: ``max(a, 0) + log1p(exp(−|a|))``."""
    xp = get_array_module(a)
    return xp.maximum(a, 0) + xp.log1p(xp.exp(-xp.abs(a)))


def _check_logits(name, a):
    if getattr(a, "ndim", None) is None or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty array of logits, got {a!r}")


class Loss:
    """Base class. ``d_scale`` multiplies the discriminator loss and its gradients.

    ``d_scale = 0.5`` reproduces the authors' code, whose D objective was
    ``0.5·[BCE(real, 1) + BCE(fake, 0)]`` (PAPER.md §3.1); Algorithm 1 has 1.
    """

    name = "?"
    #: weight clipping the critic needs after every update (None: none)
    clip = None

    def __init__(self, d_scale: float = 1.0):
        self.d_scale = float(d_scale)

    def d_loss(self, real_logits, fake_logits):
        _check_logits("d_loss real_logits", real_logits)
        _check_logits("d_loss fake_logits", fake_logits)
        v, dr, df = self._d_loss(real_logits, fake_logits)
        s = self.d_scale
        if s != 1.0:
            v, dr, df = v * s, dr * s, df * s
        return v, dr, df

    def g_loss(self, fake_logits):
        _check_logits("g_loss fake_logits", fake_logits)
        return self._g_loss(fake_logits)

    def __repr__(self):
        extra = f", d_scale={self.d_scale}" if self.d_scale != 1.0 else ""
        return f"losses.get({self.name!r}{extra})"


class Minimax(Loss):
    """The paper's value function, eq. (1)::

        min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]

    D *ascends* V, i.e. minimises ``−V``; with ``a_r`` the real logits
    (``m_r`` of them) and ``a_f`` the fake ones::

        L_D = mean softplus(−a_r) + mean softplus(a_f)
        ∂L_D/∂a_r = −σ(−a_r)/m_r = (σ(a_r) − 1)/m_r
        ∂L_D/∂a_f =  σ(a_f)/m_f

    G *descends* ``E_z[log(1 − D(G(z)))]`` (Algorithm 1, line 8)::

        L_G = mean log(1 − σ(a_f)) = −mean softplus(a_f)
        ∂L_G/∂a_f = −σ(a_f)/m_f

    When D rejects fakes with confidence (``a_f → −∞``) this gradient → 0:
    the saturation the paper warns about in §3.
    """

    name = "minimax"

    def _d_loss(self, ar, af):
        value = softplus(-ar).mean() + softplus(af).mean()
        return value, -sigmoid(-ar) / ar.size, sigmoid(af) / af.size

    def _g_loss(self, af):
        return -softplus(af).mean(), -sigmoid(af) / af.size


class NonSaturating(Minimax):
    """The paper's §3 remedy: G maximises ``log D(G(z))`` instead::

        L_G = −mean log σ(a_f) = mean softplus(−a_f)
        ∂L_G/∂a_f = −σ(−a_f)/m_f   (= (σ(a_f) − 1)/m_f, written so
                                      that float32 keeps small values)

    → ``−1/m_f`` as ``a_f → −∞``: strong gradients exactly when G is poor.
    D's loss is the minimax one. This is what the authors' code trained
    (PAPER.md §3.1).
    """

    name = "non-saturating"

    def _g_loss(self, af):
        return softplus(-af).mean(), -sigmoid(-af) / af.size


class LeastSquares(Loss):
    """LSGAN (Mao et al., 2017) with targets 0 (fake), 1 (real), 1 (G), on the raw output ``a``::

        L_D = ½ mean (a_r − 1)² + ½ mean a_f²
        ∂L_D/∂a_r = (a_r − 1)/m_r,   ∂L_D/∂a_f = a_f/m_f
        L_G = ½ mean (a_f − 1)²,     ∂L_G/∂a_f = (a_f − 1)/m_f
    """

    name = "least-squares"

    def _d_loss(self, ar, af):
        value = 0.5 * ((ar - 1) ** 2).mean() + 0.5 * (af ** 2).mean()
        return value, (ar - 1) / ar.size, af / af.size

    def _g_loss(self, af):
        return 0.5 * ((af - 1) ** 2).mean(), (af - 1) / af.size


class Hinge(Loss):
    """Hinge loss (Lim & Ye, 2017; Miyato et al., 2018)::

        L_D = mean relu(1 − a_r) + mean relu(1 + a_f)
        ∂L_D/∂a_r = −[a_r < 1]/m_r,   ∂L_D/∂a_f = [a_f > −1]/m_f
        L_G = −mean a_f,              ∂L_G/∂a_f = −1/m_f

    (subgradient 0 at the kinks ``a = ±1``).
    """

    name = "hinge"

    def _d_loss(self, ar, af):
        xp = get_array_module(ar)
        value = xp.maximum(1 - ar, 0).mean() + xp.maximum(1 + af, 0).mean()
        return value, -(ar < 1).astype(ar.dtype) / ar.size, (af > -1).astype(af.dtype) / af.size

    def _g_loss(self, af):
        xp = get_array_module(af)
        return -af.mean(), xp.full_like(af, -1.0 / af.size)


class Wasserstein(Loss):
    """WGAN (Arjovsky et al., 2017): the critic's raw output estimates the
    Kantorovich–Rubinstein dual; use with weight clipping (``clip = 0.01``)::

        L_D = mean a_f − mean a_r,   ∂L_D/∂a_r = −1/m_r,  ∂L_D/∂a_f = 1/m_f
        L_G = −mean a_f,             ∂L_G/∂a_f = −1/m_f
    """

    name = "wasserstein"
    clip = 0.01

    def __init__(self, d_scale: float = 1.0, clip: float = 0.01):
        super().__init__(d_scale)
        self.clip = float(clip)

    def _d_loss(self, ar, af):
        xp = get_array_module(ar)
        value = af.mean() - ar.mean()
        return value, xp.full_like(ar, -1.0 / ar.size), xp.full_like(af, 1.0 / af.size)

    def _g_loss(self, af):
        xp = get_array_module(af)
        return -af.mean(), xp.full_like(af, -1.0 / af.size)


_REGISTRY = {
    "minimax": Minimax,
    "non-saturating": NonSaturating,
    "least-squares": LeastSquares,
    "hinge": Hinge,
    "wasserstein": Wasserstein,
}
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
