"""Gradient checking by centred finite differences — for our modules and yours.

A module's backward pass is a vector–Jacobian product: given ``g = ∂L/∂y`` it
returns ``∂L/∂x``. To test it we pick a random ``g`` and the scalar function

    L(x) = Σ f(x) ⊙ g

whose exact gradient is ``backward(g)``, and compare with centred differences

    ∂L/∂x_i ≈ (L(x + h e_i) − L(x − h e_i)) / (2h)

in float64 (error O(h²) from truncation plus O(ε_mach/h) from rounding;
``h = 1e-6`` balances them for values of order one).

Relative error. We report ``‖a − b‖∞ / max(1e-8, ‖a‖∞ + ‖b‖∞)``: the largest
absolute difference over the scale of the gradient. The element-wise variant
is dominated by finite-difference noise on entries near zero and flags correct
code at random; a wrong entry of ordinary size still shows up at 1e-3 or more.
A correct backward lands below 1e-8 in float64.

Modules with several inputs or outputs (:mod:`scratchgan.nn.containers`) take
and return tuples; :func:`check_module` handles both. Dropout must see the
*same* random numbers in every evaluation: the module is re-seeded before
each forward pass.
"""

from __future__ import annotations

import numpy as np

from ..backend import default_rng, device_of, get_array_module, to_numpy

__all__ = ["rel_error", "numerical_gradient", "check_module", "directional_check"]


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
    # ``flat`` must be a *view*: for a non-contiguous ``x`` reshape would copy,
    # the perturbations would never reach ``f`` and every derivative would be 0.
    if not x.flags.c_contiguous:
        raise ValueError("numerical_gradient needs a C-contiguous array (use x.copy())")
    grad = get_array_module(x).zeros_like(x)
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


def _as_tuple(a):
    return tuple(a) if isinstance(a, (tuple, list)) else (a,)


def check_module(module, x, *, train=True, seed=0, h=1e-6, params=True, dy=None):
    """Check ``module.backward`` against finite differences of ``module.forward``.

    Parameters
    ----------
    module : Module in float64
    x : float64 array, or a tuple of them (a module with several inputs)
    train : passed to forward (dropout active when True; its masks are held
        fixed by re-seeding before every forward)
    params : also check every parameter gradient
    dy : the upstream gradient (a tuple for several outputs, where ``None``
        marks an output that does not reach the loss); random normal when None

    Returns
    -------
    dict
        Relative errors: ``"x"`` (``"x0"``, ``"x1"``… for several inputs) and
        one per parameter name (see :func:`rel_error`).
    """
    device = device_of(_as_tuple(x)[0])
    xs = tuple(a.copy() for a in _as_tuple(x))
    several = isinstance(x, (tuple, list))

    def forward():
        module.set_rng(default_rng(seed, device))
        return module.forward(xs if several else xs[0], train=train)

    ys = _as_tuple(forward())
    if dy is None:
        rs = np.random.default_rng(seed + 1)
        dys = tuple(get_array_module(y).asarray(rs.standard_normal(y.shape)) for y in ys)
    else:
        dys = _as_tuple(dy)
    module.zero_grad()
    dx = module.backward(dys if len(ys) > 1 or isinstance(dy, tuple) else dys[0])
    dxs = _as_tuple(dx)
    analytic = {(f"x{i}" if several else "x"): to_numpy(d).copy() for i, d in enumerate(dxs)}
    if params:
        analytic.update({k: to_numpy(g).copy() for k, g in module.gradients().items()})

    def loss():
        # a None gradient: that output does not reach the loss (Fork, Parallel)
        return sum((y * g).sum() for y, g in zip(_as_tuple(forward()), dys) if g is not None)

    errors = {}
    for i, a in enumerate(xs):
        key = f"x{i}" if several else "x"
        errors[key] = rel_error(analytic[key], numerical_gradient(loss, a, h))
    if params:
        for k, p in module.parameters().items():
            errors[k] = rel_error(analytic[k], numerical_gradient(loss, p, h))
    return errors


def directional_check(loss_and_grads, arrays: dict, *, seed=0, h=1e-6) -> float:
    """A cheap whole-network check along one random direction.

    For a scalar ``L(θ)`` whose gradient ``∇L`` we computed by backprop, pick a
    random unit direction ``u`` (over all arrays at once) and compare
    ``⟨∇L, u⟩`` with ``(L(θ + h u) − L(θ − h u)) / (2h)``: two extra
    evaluations, whatever the number of parameters.

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
    _, grads = loss_and_grads()
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
