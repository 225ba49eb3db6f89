"""Gradient checking by centred finite differences — for our layers and yours.

A layer's backward pass is a vector–Jacobian product: given ``g = ∂L/∂y`` it
returns ``∂L/∂x``. To test it we pick a random ``g`` and the scalar function

    L(x) = Σ f(x) ⊙ g

whose exact gradient is ``backward(g)``, and compare with centred differences

    ∂L/∂x_i ≈ (L(x + h e_i) − L(x − h e_i)) / (2h)

computed in float64 (error O(h²) from truncation plus O(ε_mach/h) from
rounding; ``h = 1e-6`` balances them for values of order one).

Relative error. We report ``‖a − b‖∞ / max(1e-8, ‖a‖∞ + ‖b‖∞)``: the largest
absolute difference over the scale of the gradient. The element-wise variant
(``max_i |a_i − b_i| / (|a_i| + |b_i|)``) is dominated by finite-difference
rounding noise on the few entries that happen to be near zero, so it flags
correct code at random; the max-norm version does not, and a wrong entry of
ordinary size still shows up at 1e-3 or more. A correct backward lands below
1e-8 in float64.

Functions that use randomness (dropout) must see the *same* random numbers in
every evaluation: :func:`check_layer` re-seeds every ``rng`` attribute it finds
before each forward pass.
"""

from __future__ import annotations

import numpy as np

from .backend import get_array_module, device_of, default_rng, to_numpy

__all__ = [
    "rel_error",
    "numerical_gradient",
    "check_layer",
    "directional_check",
]


def rel_error(a, b) -> float:
    """``‖a − b‖∞ / max(1e-8, ‖a‖∞ + ‖b‖∞)`` as a Python float."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    num = np.max(np.abs(a - b))
    den = max(1e-8, float(np.max(np.abs(a)) + np.max(np.abs(b))))
    return float(num / den)


def numerical_gradient(f, x, h: float = 1e-6):
    """Centred differences of the scalar function ``f()`` w.r.t. ``x``, in place.

    ``x`` is perturbed element by element (and restored); ``f`` reads ``x``
    (a closure), so parameters can be checked exactly like inputs.

    Returns an array of ``x``'s shape.
    """
    if x.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {x.dtype}")
    # ``flat`` must be a *view* of ``x``: for a non-contiguous ``x`` (a
    # transpose, say) ``reshape`` silently copies, the perturbations never
    # reach ``f`` and every derivative would come out as zero.
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (use x.copy())")
    xp = get_array_module(x)
    grad = xp.zeros_like(x)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):  # a test utility: one element at a time is the point
        old = float(flat[i])
        flat[i] = old + h
        fp = float(f())
        flat[i] = old - h
        fm = float(f())
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * h)
    return grad


def _reseed(module, seed, device):
    """Give every layer of ``module`` that draws random numbers a fresh generator."""
    for layer in getattr(module, "layers", [module]):
        if hasattr(layer, "layers"):
            _reseed(layer, seed, device)
        elif hasattr(layer, "rng"):
            layer.rng = default_rng(seed, device)


def check_layer(layer, x, *, train=True, seed=0, h=1e-6, params=True, dy=None):
    """Check ``layer.backward`` against finite differences of ``layer.forward``.

    Parameters
    ----------
    layer : Layer or Sequential, in float64
    x : float64 array, the input
    train : passed to forward (dropout active when True; its mask is held
        fixed by re-seeding before every forward)
    params : also check every parameter gradient
    dy : the upstream gradient ``g``; random normal when None

    Returns
    -------
    dict
        ``{"x": err, "W": err, ...}`` relative errors (see :func:`rel_error`).
    """
    xp = get_array_module(x)
    device = device_of(x)
    x = x.copy()

    def forward():
        _reseed(layer, seed, device)
        return layer.forward(x, train=train)

    y = forward()
    if dy is None:
        rs = np.random.default_rng(seed + 1)
        dy = xp.asarray(rs.standard_normal(y.shape))
    dx = layer.backward(dy)
    analytic = {"x": to_numpy(dx).copy()}
    if params:
        analytic.update({k: to_numpy(v).copy() for k, v in layer.grads.items()})

    def loss():
        return (forward() * dy).sum()

    errors = {"x": rel_error(analytic["x"], numerical_gradient(loss, x, h))}
    if params:
        for k, p in layer.params.items():
            errors[k] = rel_error(analytic[k], numerical_gradient(loss, p, h))
    return errors


def directional_check(loss_and_grads, arrays: dict, *, seed=0, h=1e-6) -> float:
    """A cheap whole-network check along one random direction.

    For a scalar ``L(θ)`` whose gradient ``∇L`` we computed by backprop, pick a
    random unit direction ``u`` (over all arrays at once) and compare the
    directional derivative ``⟨∇L, u⟩`` with
    ``(L(θ + h u) − L(θ − h u)) / (2h)``: two extra evaluations, whatever the
    number of parameters.

    Parameters
    ----------
    loss_and_grads : callable ``() -> (L, grads)`` where ``grads`` maps the
        keys of ``arrays`` to gradients. It reads the arrays (in place).
    arrays : dict of float64 arrays to perturb (parameters and/or inputs)

    Returns
    -------
    float : the relative error between the two directional derivatives.
    """
    rs = np.random.default_rng(seed)
    directions = {}
    for k, a in arrays.items():
        if a.dtype != np.float64:
            raise TypeError(f"gradient checks need float64 arrays; {k} is {a.dtype}")
        directions[k] = get_array_module(a).asarray(rs.standard_normal(a.shape))
    norm = np.sqrt(sum(float((d * d).sum()) for d in directions.values()))
    for d in directions.values():
        d /= norm
    L0, grads = loss_and_grads()
    analytic = sum(float((grads[k] * directions[k]).sum()) for k in arrays)

    def shifted(sign):
        for k, a in arrays.items():
            a += sign * h * directions[k]
        value = float(loss_and_grads()[0])
        for k, a in arrays.items():
            a -= sign * h * directions[k]
        return value

    numeric = (shifted(+1) - shifted(-1)) / (2 * h)
    return abs(analytic - numeric) / max(1e-8, abs(analytic) + abs(numeric))
