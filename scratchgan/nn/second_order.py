"""The gradient of a gradient, by hand: what a gradient penalty needs.

WGAN-GP penalises ``λ (‖∇ₓD(x̂)‖ − 1)²`` and R1 ``(γ/2)‖∇ₓD(x)‖²``: functions
of D's *input gradient*. Their gradients with respect to D's parameters need
the derivative of that gradient. Autodiff libraries build a second graph;
here every layer derives its part, and :func:`penalty_backward` runs them
(docs/wgan.md §5; the traps of earlier hand-derived attempts in §6).

**The recipe.** Write D as layers ``h_l = f_l(h_{l−1}; θ_l)``, ``h_0 = x``.
The first backward pass, seeded with 1 per sample, computes the input
gradients ``g_{l−1} = J_lᵀ g_l`` (``J_l = ∂h_l/∂h_{l−1}``), and ``g = g_0``. A
penalty ``P(g)`` depends on θ through this backward pass *and* through the
forward values it used. Reverse-mode differentiation of the two passes
together gives, with ``v_0 = ∂P/∂g`` (the penalty's seed):

1. **A sweep from input to output** (the backward pass's graph, traversed in
   reverse): ``v_l = J_l v_{l−1}`` — a Jacobian–vector product, the layer's
   *tangent* map — and at each layer the *mixed* term, the derivative of
   ``⟨v_{l−1}, J_lᵀ g_l⟩`` with respect to ``θ_l`` at fixed ``h``, added to the
   parameter gradients (Linear: ``∂W += v_{l−1}ᵀ g_l``), and the *curvature*
   seed ``u_{l−1} = ∂⟨v_{l−1}, J_lᵀ g_l⟩/∂h_{l−1}``, non-zero only where
   ``J_l`` depends on the input: smooth activations (tanh: ``v ⊙ g ⊙ φ''(z)``).
2. **An ordinary backward pass** through the forward graph, seeded at every
   layer's input with its curvature seed ``u``: it adds ``∂W += aᵀδ`` to the
   parameter gradients, as any backward does. For a critic built from
   Linear, convolutions, (leaky) ReLU and maxout every ``u`` is 0 and this
   pass is skipped.

Dropping the curvature terms (numpy-ml keeps the φ'' term in the bias only)
is exact for piecewise-linear critics and wrong for tanh or sigmoid ones; the
tests check every supported layer against finite differences of the penalty.

Supported: Linear, Maxout, Conv2d, ConvTranspose2d, ReLU, LeakyReLU, Tanh,
Sigmoid, Dropout (its masks fixed), Flatten, Reshape, Identity, Sequential,
Fork, Concat, and BatchSplit (each slice of the batch through its replica,
in its thread; only the penalty's seed sees the whole batch). BatchNorm
couples the samples of a batch (a per-sample penalty through it is not what
WGAN-GP defines) and LayerNorm's second-order terms are not derived here:
both are refused with a clear error.
"""

from __future__ import annotations

from ..backend import get_array_module
from . import conv as _conv
from . import layers as _layers
from .batch_split import BatchSplit
from .containers import Concat, Fork, Identity, Sequential
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm

__all__ = ["penalty_backward", "gradient_penalty", "r1_penalty", "SecondOrderError"]


class SecondOrderError(TypeError):
    """A module the penalty's second-order pass cannot go through."""


# ---------------------------------------------------------------------------
# The penalties: P(g) and its seed v0 = ∂P/∂g, with g (m, …) the per-sample input gradients
# ---------------------------------------------------------------------------
def gradient_penalty(g, lam=10.0, eps=1e-12):
    """WGAN-GP's two-sided penalty ``P = λ · mean_i (‖g_i‖ − 1)²``.

    With ``n_i = √(Σ g_i² + ε)`` (ε keeps ``g_i = 0`` finite)::

        ∂P/∂g_i = (λ/m) · 2(n_i − 1) · ∂n_i/∂g_i = (2λ/m) (n_i − 1) g_i / n_i

    Parameters: g (m, …). Returns: (P, v0) with v0 shaped like g.
    """
    xp = get_array_module(g)
    m = g.shape[0]
    flat = g.reshape(m, -1)
    norm = xp.sqrt((flat * flat).sum(axis=1) + g.dtype.type(eps))       # (m,)
    value = lam * ((norm - 1) ** 2).mean()
    v0 = (2 * lam / m) * ((norm - 1) / norm)[:, None] * flat
    return value, v0.reshape(g.shape)


def r1_penalty(g, gamma=10.0):
    """R1 (Mescheder et al. 2018): ``P = (γ/2) · mean_i ‖g_i‖²``, so
    ``∂P/∂g_i = (γ/m) g_i`` — no norm, no square root, no ε.

    Parameters: g (m, …). Returns: (P, v0).
    """
    m = g.shape[0]
    flat = g.reshape(m, -1)
    return 0.5 * gamma * (flat * flat).sum(axis=1).mean(), (gamma / m) * g


# ---------------------------------------------------------------------------
# Per-layer rules: tangent (v ↦ J v), mixed parameter term, curvature seed
# ---------------------------------------------------------------------------
def _linear(layer, v, g_out, param_grads):
    """``h = a W + b``, first backward ``g_a = g_h Wᵀ``.

    tangent: ``v_h = v_a W`` (the bias does not move with ``a``);
    mixed:   ``∂/∂W ⟨v_a, g_h Wᵀ⟩ = v_aᵀ g_h`` (n_in, n_out), nothing for b;
    curvature: 0 (``g_a`` does not depend on ``a``).
    """
    if param_grads:
        layer.grads["W"] += v.reshape(-1, layer.n_in).T @ g_out.reshape(-1, layer.n_out)
    return v @ layer.params["W"], None


def _maxout(layer, v, g_out, param_grads):
    """``y_j = z[winner_j]``, ``z = x W + b``: with the winners fixed, maxout is
    a Linear map followed by a selection. tangent: ``(v W)`` at the winning
    pieces; mixed: ``∂W += vᵀ dz`` with ``dz`` = g routed to the winners (as
    in backward); curvature: 0 (piecewise linear)."""
    xp = get_array_module(v)
    winner = layer.winners()                                       # (rows, n_units)
    onehot = xp.arange(layer.n_pieces)[None, :, None] == winner[:, None, :]
    v2 = v.reshape(-1, layer.n_in)
    if param_grads:
        dz = (onehot * g_out.reshape(-1, 1, layer.n_units)).reshape(v2.shape[0], -1)
        layer.grads["W"] += v2.T @ dz
    t = (v2 @ layer.params["W"]).reshape(-1, layer.n_pieces, layer.n_units)
    return (t * onehot).sum(axis=1).reshape(v.shape[:-1] + (layer.n_units,)), None


def _conv2d(layer, v, g_out, param_grads):
    """First backward ``g_x = col2im(g_mat W_matᵀ)`` — linear in g and in W,
    independent of x. tangent: ``conv(v, W)`` without the bias; mixed:
    ``⟨v, col2im(g W_matᵀ)⟩ = ⟨im2col(v), g W_matᵀ⟩`` (col2im is im2col's
    adjoint), so ``∂W_mat += im2col(v)ᵀ g_mat`` — the weight gradient with v
    in place of x; curvature: 0."""
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    cols, (oh, ow) = _conv.im2col(_conv._pad_nhwc(v.transpose(0, 2, 3, 1), ph, pw), kh, kw, sh, sw)
    W_mat = layer._w_mat()
    if param_grads:
        g_mat = g_out.transpose(0, 2, 3, 1).reshape(-1, layer.out_channels)
        dW = (cols.T @ g_mat).reshape(kh, kw, layer.in_channels, layer.out_channels)
        layer.grads["W"] += dW.transpose(3, 2, 0, 1)
    return (cols @ W_mat).reshape(v.shape[0], oh, ow, layer.out_channels).transpose(0, 3, 1, 2), None


def _conv_transpose2d(layer, v, g_out, param_grads):
    """First backward ``g_x = im2col(g_padded) W_mat`` — linear in g and in W.
    tangent: the transposed convolution of v without the bias; mixed:
    ``∂W_mat += im2col(g_padded)ᵀ v_mat`` — the weight gradient with v in
    place of x; curvature: 0."""
    xp = get_array_module(v)
    N, _, H, W = v.shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    HC, WC = layer._canvas(H, W)
    v_mat = v.transpose(0, 2, 3, 1).reshape(N * H * W, layer.in_channels)
    if param_grads:
        canvas = xp.zeros((N, HC, WC, layer.out_channels), dtype=g_out.dtype)
        canvas[:, ph: HC - ph, pw: WC - pw, :] = g_out.transpose(0, 2, 3, 1)
        dcols, _ = _conv.im2col(canvas, kh, kw, sh, sw)
        dW = (dcols.T @ v_mat).reshape(kh, kw, layer.out_channels, layer.in_channels)
        layer.grads["W"] += dW.transpose(3, 2, 0, 1)
    out = layer._col2im(v_mat, (N, HC, WC, layer.out_channels))    # col2im(v_mat · W_matᵀ)
    return out[:, ph: HC - ph, pw: WC - pw, :].transpose(0, 3, 1, 2), None


def _diagonal(layer, v, g_out, param_grads):
    """Element-wise layers whose derivative is piecewise constant (ReLU,
    LeakyReLU, Dropout with its masks fixed): J is diagonal — symmetric — so
    the tangent ``J v`` is the layer's own backward applied to v; no
    parameters; curvature 0."""
    return layer.backward(v, param_grads=False), None


def _tanh(layer, v, g_out, param_grads):
    """``y = tanh z``, first backward ``g_z = g_y φ'(z)`` with ``φ' = 1 − y²``.
    tangent: ``v φ'(z)``; curvature: ``∂⟨v, g_y φ'(z)⟩/∂z = v g_y φ''(z)``, with
    ``φ'' = d(1 − y²)/dz = −2y (1 − y²)``."""
    y = layer._cached()
    d1 = 1 - y * y
    return v * d1, v * g_out * (-2 * y * d1)


def _sigmoid(layer, v, g_out, param_grads):
    """``s = σ(z)``, ``φ' = s(1 − s)``; tangent ``v φ'``; curvature
    ``v g φ''`` with ``φ'' = d(s − s²)/dz = φ'(1 − 2s)``."""
    s = layer._cached()
    d1 = s * (1 - s)
    return v * d1, v * g_out * d1 * (1 - 2 * s)


def _reshape(layer, v, g_out, param_grads):
    """Flatten and Reshape move elements without changing them: the tangent is v
    reshaped like the forward output."""
    return v.reshape(g_out.shape), None


def _rule(module):
    for cls, rule in _RULES:
        if isinstance(module, cls):
            return rule
    if isinstance(module, (BatchNorm1d, BatchNorm2d)):
        raise SecondOrderError(f"{module!r}: a gradient penalty cannot go through batch normalisation: it couples "
                               "the samples of a batch, and the penalty is per sample (WGAN-GP §4 recommends "
                               "LayerNorm, or no normalisation, in the critic)")
    if isinstance(module, LayerNorm):
        raise SecondOrderError(f"{module!r}: LayerNorm's second-order terms are not derived here; use a critic "
                               "without normalisation (as the WGAN-GP authors' MNIST code does)")
    raise SecondOrderError(f"{module!r}: no second-order rule for {type(module).__name__}; supported: "
                           + ", ".join(c.__name__ for c, _ in _RULES)
                           + ", and Sequential, Fork, Concat, BatchSplit")


_RULES = [(_layers.Linear, _linear), (_layers.Maxout, _maxout), (_conv.Conv2d, _conv2d),
          (_conv.ConvTranspose2d, _conv_transpose2d), (_layers.Tanh, _tanh), (_layers.Sigmoid, _sigmoid),
          ((_layers.ReLU, _layers.LeakyReLU, _layers.Dropout, Identity), _diagonal),
          ((_layers.Flatten, _layers.Reshape), _reshape)]


# ---------------------------------------------------------------------------
# The three passes over a tree of modules
# ---------------------------------------------------------------------------
def _first(module, g_out, kept):
    """The first backward (no parameter gradients), keeping every leaf's upstream gradient."""
    if isinstance(module, BatchSplit):  # each slice of the batch through its replica, in its thread
        return module.join(module.map(lambda rep, g: _first(rep, g, kept), g_out))
    if isinstance(module, Sequential):
        for child in reversed(module.layers):
            g_out = _first(child, g_out, kept)
        return g_out
    if isinstance(module, Fork):
        parts = [_first(b, g, kept) for b, g in zip(module.layers, g_out) if g is not None]
        return sum(parts[1:], parts[0])
    if isinstance(module, Concat):
        return module.backward(g_out, param_grads=False)
    _rule(module)  # refuse unsupported modules before any work
    kept[id(module)] = g_out
    return module.backward(g_out, param_grads=False)


def _sweep(module, v, kept, seeds, param_grads):
    """Input to output: tangents, mixed parameter terms, curvature seeds."""
    if isinstance(module, BatchSplit):
        v_out = module.map(lambda rep, part: _sweep(rep, part, kept, seeds, param_grads), v)
        if param_grads:
            module.reduce_grads()
        return module.join(v_out)
    if isinstance(module, Sequential):
        for child in module.layers:
            v = _sweep(child, v, kept, seeds, param_grads)
        return v
    if isinstance(module, Fork):
        return tuple(_sweep(b, v, kept, seeds, param_grads) for b in module.layers)
    if isinstance(module, Concat):
        return get_array_module(*v).concatenate(v, axis=module.axis)
    v_out, u = _rule(module)(module, v, kept[id(module)], param_grads)
    if u is not None:
        seeds[id(module)] = u
    return v_out


def _seeded_backward(module, delta, seeds, param_grads):
    """An ordinary backward, with each leaf's curvature seed added at its input;
    ``delta`` None means no gradient has reached this point yet."""
    if isinstance(module, BatchSplit):
        deltas = module.map(lambda rep, d: _seeded_backward(rep, d, seeds, param_grads), delta)
        if param_grads:
            module.reduce_grads()
        return module.join(deltas)
    if isinstance(module, Sequential):
        for child in reversed(module.layers):
            delta = _seeded_backward(child, delta, seeds, param_grads)
        return delta
    if isinstance(module, Fork):
        deltas = [_seeded_backward(b, d, seeds, param_grads)
                  for b, d in zip(module.layers, delta if delta is not None else [None] * len(module.layers))]
        deltas = [d for d in deltas if d is not None]
        return sum(deltas[1:], deltas[0]) if deltas else None
    if isinstance(module, Concat):
        return None if delta is None else module.backward(delta, param_grads=False)
    if delta is not None:
        delta = module.backward(delta, param_grads=param_grads)
    u = seeds.get(id(module))
    return u if delta is None else (delta if u is None else delta + u)


def penalty_backward(D, x, penalty, *, param_grads=True, input_grad=False):
    """Add ``∂P/∂θ`` to D's gradients, where ``P = penalty(∇ₓ Σᵢ D(x)ᵢ)``.

    Parameters
    ----------
    D : the critic, a tree of supported modules; D(x) of shape (m, 1)
    x : (m, …) the points the penalty is taken at (interpolates, real data)
    penalty : ``g -> (P, ∂P/∂g)``, e.g. :func:`gradient_penalty`, :func:`r1_penalty`
    param_grads : add to D's gradients (False: only compute P and g)
    input_grad : also return ``∂P/∂x`` (zero for a piecewise-linear critic)

    Returns
    -------
    (P, g) : the penalty's value (a 0-d device array) and the input gradients (m, …);
    (P, g, dx) with ``input_grad``.

    D's forward cache is replaced by the pass at ``x``. D's dropout, if any,
    draws its masks in that forward pass; they stay fixed through all three
    passes.
    """
    out = D.forward(x)
    kept, seeds = {}, {}
    g = _first(D, get_array_module(out).ones_like(out), kept)   # g_i = ∇ₓ D(x_i)
    value, v0 = penalty(g)
    _sweep(D, v0, kept, seeds, param_grads)
    dx = None
    if seeds:  # only critics with smooth activations have curvature terms
        dx = _seeded_backward(D, None, seeds, param_grads)
    if input_grad:
        return value, g, get_array_module(x).zeros_like(x) if dx is None else dx
    return value, g
