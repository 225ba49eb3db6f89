"""Tests for scratchgan.nn.losses: every value and gradient of every loss.

Each loss has three terms, ``d_real(a)``, ``d_fake(a)`` and ``g(a)``, each
returning ``(mean value, gradient)``; D's loss is ``d_real + d_fake`` (two
passes through D whose gradients add). Three independent checks per loss:

* the returned gradients against centred finite differences of the loss's
  *own* value (so two sign errors cannot cancel, numpy-ml's lesson);
* the values against the textbook formulas, written here directly with
  ``exp`` and ``log`` (safe at moderate logits in float64);
* at logits of ±1e4, where the naive formulas overflow, every value and
  gradient is finite and equals its mathematical limit.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, strategies as st
from scipy.special import expit

from helpers import assert_grads_ok, to_host, to_xp
from scratchgan import backend
from scratchgan.nn import losses
from scratchgan.nn.gradcheck import numerical_gradient, rel_error

BIG = 1e4  # D certain: exp(BIG) overflows every float type


# ---------------------------------------------------------------------------
# Strategies: logit batches (m, 1), m in 1..16, float64
# ---------------------------------------------------------------------------
def logit_batches(lo=-30.0, hi=30.0, avoid_kinks=False):
    value = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    if avoid_kinks:  # hinge: relu(1 ∓ a) has kinks at a = ±1
        value = value.filter(lambda v: abs(abs(v) - 1.0) > 1e-3)
    return st.lists(value, min_size=1, max_size=16).map(
        lambda v: np.asarray(v, dtype=np.float64).reshape(-1, 1))


def fd_grad(f, a):
    """Centred differences of the scalar ``f()`` w.r.t. the array ``a`` (read in place)."""
    return numerical_gradient(lambda: float(f()), a, h=1e-6)


GRAD_TOL = 1e-6


def d_loss(loss, ar, af):
    """D's whole loss and its two gradients: ``(L_D, ∂L_D/∂a_real, ∂L_D/∂a_fake)``."""
    v_real, d_real = loss.d_real(ar)
    v_fake, d_fake = loss.d_fake(af)
    return v_real + v_fake, d_real, d_fake


# ---------------------------------------------------------------------------
# Gradients against finite differences of the loss's own value
# ---------------------------------------------------------------------------
def _check_d_gradients(name, ar, af):
    """``(d_real, d_fake)`` is the gradient of the scalar ``L_D`` w.r.t. all of its
    inputs; it is compared as one vector. (Compared piece by piece, a piece
    that is tiny, e.g. σ(−12)/m for a confidently accepted real sample, would
    sit below the finite-difference rounding floor set by the *whole* value.)"""
    loss = losses.get(name)
    value, d_real, d_fake = d_loss(loss, ar, af)
    assert np.isfinite(value)
    assert d_real.shape == ar.shape and d_fake.shape == af.shape
    num_real = fd_grad(lambda: d_loss(loss, ar, af)[0], ar)
    num_fake = fd_grad(lambda: d_loss(loss, ar, af)[0], af)
    err = rel_error(np.concatenate([d_real, d_fake]), np.concatenate([num_real, num_fake]))
    assert_grads_ok({"d_loss": err}, tol=GRAD_TOL)


def _check_g_gradient(name, af):
    loss = losses.get(name)
    value, d_fake = loss.g(af)
    assert np.isfinite(value)
    assert d_fake.shape == af.shape
    num = fd_grad(lambda: loss.g(af)[0], af)
    assert_grads_ok({"g_loss": rel_error(d_fake, num)}, tol=GRAD_TOL)


SMOOTH = [n for n in losses.NAMES if n != "hinge"]


def test_names_are_the_five_losses():
    assert set(losses.NAMES) == {"minimax", "non-saturating", "least-squares", "hinge", "wasserstein"}


@pytest.mark.parametrize("name", SMOOTH)
@given(ar=logit_batches(), af=logit_batches())
def test_d_loss_gradients_match_finite_differences(name, ar, af):
    _check_d_gradients(name, ar, af)


@pytest.mark.parametrize("name", SMOOTH)
@given(af=logit_batches())
def test_g_loss_gradient_matches_finite_differences(name, af):
    _check_g_gradient(name, af)


@given(ar=logit_batches(avoid_kinks=True), af=logit_batches(avoid_kinks=True))
def test_hinge_d_loss_gradients_match_finite_differences(ar, af):
    _check_d_gradients("hinge", ar, af)


@given(af=logit_batches(avoid_kinks=True))
def test_hinge_g_loss_gradient_matches_finite_differences(af):
    _check_g_gradient("hinge", af)


def test_hinge_subgradient_is_zero_at_the_kinks():
    # The docstring's convention: at a = ±1 exactly the (sub)gradient is 0.
    ar = np.array([[1.0], [0.5]])
    af = np.array([[-1.0], [-0.5]])
    _, d_real, d_fake = d_loss(losses.get("hinge"), ar, af)
    np.testing.assert_array_equal(d_real, [[0.0], [-0.5]])
    np.testing.assert_array_equal(d_fake, [[0.0], [0.5]])


# ---------------------------------------------------------------------------
# Values against the formulas written out directly
# ---------------------------------------------------------------------------
def naive_sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def reference_values(name, ar, af):
    """(L_D, L_G) from the textbook formulas; fine for |a| <= 10 in float64."""
    D_real, D_fake = naive_sigmoid(ar), naive_sigmoid(af)
    if name in ("minimax", "non-saturating"):
        # eq. (1): D maximises E log D(x) + E log(1 - D(G(z)))
        l_d = -np.mean(np.log(D_real)) - np.mean(np.log(1.0 - D_fake))
        if name == "minimax":
            l_g = np.mean(np.log(1.0 - D_fake))        # Algorithm 1, line 8
        else:
            l_g = -np.mean(np.log(D_fake))             # §3: maximise log D(G(z))
    elif name == "least-squares":
        l_d = 0.5 * np.mean((ar - 1.0) ** 2) + 0.5 * np.mean(af ** 2)
        l_g = 0.5 * np.mean((af - 1.0) ** 2)
    elif name == "hinge":
        l_d = np.mean(np.where(ar < 1, 1.0 - ar, 0.0)) + np.mean(np.where(af > -1, 1.0 + af, 0.0))
        l_g = -np.mean(af)
    elif name == "wasserstein":
        l_d = np.mean(af) - np.mean(ar)
        l_g = -np.mean(af)
    else:  # pragma: no cover
        raise AssertionError(name)
    return l_d, l_g


@pytest.mark.parametrize("name", losses.NAMES)
@given(ar=logit_batches(-10.0, 10.0), af=logit_batches(-10.0, 10.0))
def test_values_match_direct_formulas(name, ar, af):
    loss = losses.get(name)
    want_d, want_g = reference_values(name, ar, af)
    np.testing.assert_allclose(float(d_loss(loss, ar, af)[0]), want_d, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(float(loss.g(af)[0]), want_g, rtol=1e-10, atol=1e-12)


def test_values_at_hand_computed_points():
    # D(x) = 1/2 at logit 0: minimax D loss is 2 log 2, G losses ±log 2.
    z = np.zeros((4, 1))
    assert d_loss(losses.get("minimax"), z, z)[0] == pytest.approx(2 * np.log(2), rel=1e-15)
    assert losses.get("minimax").d_real(z)[0] == pytest.approx(np.log(2), rel=1e-15)
    assert losses.get("minimax").d_fake(z)[0] == pytest.approx(np.log(2), rel=1e-15)
    assert losses.get("minimax").g(z)[0] == pytest.approx(-np.log(2), rel=1e-15)
    assert losses.get("non-saturating").g(z)[0] == pytest.approx(np.log(2), rel=1e-15)
    # The gradients there: dL_D/da_r = (σ−1)/m = −1/8, dL_D/da_f = σ/m = 1/8.
    _, dr, df = d_loss(losses.get("minimax"), z, z)
    np.testing.assert_allclose(dr, -0.125)
    np.testing.assert_allclose(df, 0.125)


def test_softplus_matches_logaddexp_and_never_overflows():
    a = np.array([-BIG, -745.0, -30.0, -1.0, 0.0, 1e-8, 1.0, 30.0, 710.0, BIG, 1e300])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        got = losses.softplus(a)
    np.testing.assert_allclose(got, np.logaddexp(0.0, a), rtol=1e-15, atol=0)
    assert got[-2] == BIG and got[0] == 0.0


# ---------------------------------------------------------------------------
# Extreme logits: finite, no warnings, and the mathematical limits
# ---------------------------------------------------------------------------
def _strict(fn, *args):
    """Call ``fn`` with every floating-point problem turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            return fn(*args)


def col(*v):
    return np.asarray(v, dtype=np.float64).reshape(-1, 1)


@pytest.mark.parametrize("name", losses.NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ar_v, af_v", [
    ((BIG,), (-BIG,)),          # D certain and right
    ((-BIG,), (BIG,)),          # D certain and wrong
    ((BIG, -BIG, 0.3), (-BIG, BIG, -2.0, 7.0)),   # mixtures
])
def test_extreme_logits_finite_without_warnings(name, dtype, ar_v, af_v):
    loss = losses.get(name)
    ar, af = col(*ar_v).astype(dtype), col(*af_v).astype(dtype)
    v, dr, df = _strict(d_loss, loss, ar, af)
    gv, gf = _strict(loss.g, af)
    for arr in (v, dr, df, gv, gf):
        assert np.all(np.isfinite(arr)), (name, arr)
    assert dr.dtype == dtype and df.dtype == dtype and gf.dtype == dtype


def reference_limits(name, ar, af):
    """(L_D, dL_D/da_r, dL_D/da_f, L_G, dL_G/da_f) written with the stable
    library functions ``np.logaddexp(0, a)`` (softplus) and ``expit`` (σ),
    independently of scratchgan."""
    mr, mf = ar.size, af.size
    sp = lambda a: np.logaddexp(0.0, a)  # noqa: E731
    if name in ("minimax", "non-saturating"):
        L_D = sp(-ar).mean() + sp(af).mean()
        dr, df = -expit(-ar) / mr, expit(af) / mf
        if name == "minimax":
            L_G, dg = -sp(af).mean(), -expit(af) / mf
        else:
            L_G, dg = sp(-af).mean(), -expit(-af) / mf
    elif name == "least-squares":
        L_D = 0.5 * ((ar - 1) ** 2).mean() + 0.5 * (af ** 2).mean()
        dr, df = (ar - 1) / mr, af / mf
        L_G, dg = 0.5 * ((af - 1) ** 2).mean(), (af - 1) / mf
    elif name == "hinge":
        L_D = np.maximum(1 - ar, 0).mean() + np.maximum(1 + af, 0).mean()
        dr, df = -(ar < 1).astype(float) / mr, (af > -1).astype(float) / mf
        L_G, dg = -af.mean(), np.full_like(af, -1.0 / mf)
    else:
        L_D = af.mean() - ar.mean()
        dr, df = np.full_like(ar, -1.0 / mr), np.full_like(af, 1.0 / mf)
        L_G, dg = -af.mean(), np.full_like(af, -1.0 / mf)
    return L_D, dr, df, L_G, dg


@pytest.mark.parametrize("name", losses.NAMES)
def test_extreme_mixtures_equal_their_limits(name):
    ar = col(BIG, -BIG, 0.3, 25.0, -40.0)
    af = col(-BIG, BIG, -2.0, 7.0)
    loss = losses.get(name)
    got = (*_strict(d_loss, loss, ar, af), *_strict(loss.g, af))
    want = reference_limits(name, ar, af)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-300)


def test_minimax_generator_saturates_where_non_saturating_does_not():
    # §3 of the paper: early on D rejects fakes with certainty (a_f → −∞).
    m = 5
    af = np.full((m, 1), -BIG)
    mm_value, mm_grad = _strict(losses.get("minimax").g, af)
    ns_value, ns_grad = _strict(losses.get("non-saturating").g, af)
    assert mm_value == 0.0                       # log(1 − 0)
    np.testing.assert_array_equal(mm_grad, 0.0)  # no signal for G: saturation
    assert ns_value == BIG                       # −log σ(−1e4) = softplus(1e4)
    np.testing.assert_array_equal(ns_grad, -1.0 / m)  # full-strength gradient
    # and the other way round when D is fooled with certainty
    af = np.full((m, 1), BIG)
    assert _strict(losses.get("minimax").g, af)[0] == -BIG
    np.testing.assert_array_equal(_strict(losses.get("minimax").g, af)[1], -1.0 / m)
    assert _strict(losses.get("non-saturating").g, af)[0] == 0.0
    np.testing.assert_array_equal(_strict(losses.get("non-saturating").g, af)[1], 0.0)


@pytest.mark.parametrize("name", ["minimax", "non-saturating"])
def test_bce_d_loss_limits(name):
    loss = losses.get(name)
    m_r, m_f = 3, 4
    # D right with certainty: loss 0 and no gradient.
    v, dr, df = _strict(d_loss, loss, np.full((m_r, 1), BIG), np.full((m_f, 1), -BIG))
    assert v == 0.0
    np.testing.assert_array_equal(dr, 0.0)
    np.testing.assert_array_equal(df, 0.0)
    # D wrong with certainty: loss 2·1e4, gradients ∓1/m.
    v, dr, df = _strict(d_loss, loss, np.full((m_r, 1), -BIG), np.full((m_f, 1), BIG))
    assert v == 2 * BIG
    np.testing.assert_array_equal(dr, -1.0 / m_r)
    np.testing.assert_array_equal(df, 1.0 / m_f)


# ---------------------------------------------------------------------------
# d_scale, get(), errors
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", losses.NAMES)
def test_d_scale_half_halves_d_value_and_gradients_only(name):
    r = np.random.default_rng(0)
    ar, af = r.normal(0, 3, (7, 1)), r.normal(0, 3, (5, 1))
    full, half = losses.get(name), losses.get(name, d_scale=0.5)
    assert half.d_scale == 0.5 and "d_scale=0.5" in repr(half)
    for a, b in zip(d_loss(half, ar, af), d_loss(full, ar, af)):
        np.testing.assert_allclose(a, 0.5 * b, rtol=1e-15)
    for a, b in zip(half.d_real(ar) + half.d_fake(af), full.d_real(ar) + full.d_fake(af)):
        np.testing.assert_allclose(a, 0.5 * b, rtol=1e-15)
    for a, b in zip(half.g(af), full.g(af)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", losses.NAMES)
def test_get_by_name(name):
    loss = losses.get(name)
    assert isinstance(loss, losses.Loss) and loss.name == name
    assert losses.get(name.upper()).name == name
    assert repr(loss) == f"losses.get({name!r})"


@pytest.mark.parametrize("alias, cls", [
    ("ns", losses.NonSaturating),
    ("nonsaturating", losses.NonSaturating),
    ("non_saturating", losses.NonSaturating),
    ("lsgan", losses.LeastSquares),
    ("least_squares", losses.LeastSquares),
    ("wgan", losses.Wasserstein),
    ("WGAN", losses.Wasserstein),
])
def test_get_by_alias(alias, cls):
    assert type(losses.get(alias)) is cls


def test_get_passes_an_instance_through_and_forwards_kwargs():
    inst = losses.Hinge(d_scale=0.25)
    assert losses.get(inst) is inst
    assert losses.get("wgan", d_scale=0.5).d_scale == 0.5
    assert losses.get("wasserstein").d_scale == 1.0


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        losses.get("vanilla")
    msg = str(info.value)
    assert "'vanilla'" in msg
    for name in losses.NAMES:
        assert name in msg


@pytest.mark.parametrize("name", losses.NAMES)
def test_empty_logits_rejected(name):
    loss = losses.get(name)
    ok = np.zeros((2, 1))
    with pytest.raises(ValueError, match="real logits: expected a non-empty"):
        loss.d_real(np.zeros((0, 1)))
    with pytest.raises(ValueError, match="fake logits: expected a non-empty"):
        loss.d_fake(np.zeros((0, 1)))
    with pytest.raises(ValueError, match="non-empty"):
        loss.g(np.zeros((0, 1)))
    d_loss(loss, ok, ok), loss.g(ok)  # fine


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", losses.NAMES)
def test_backend_results_match_numpy(xp, name):
    r = np.random.default_rng(1)
    ar = np.concatenate([r.normal(0, 5, (6, 1)), col(BIG, -BIG)])
    af = np.concatenate([r.normal(0, 5, (5, 1)), col(-BIG, BIG)])
    loss = losses.get(name)
    want = (*d_loss(loss, ar, af), *loss.g(af))
    got = (*d_loss(loss, to_xp(xp, ar), to_xp(xp, af)), *loss.g(to_xp(xp, af)))
    for g, w in zip(got, want):
        assert backend.get_array_module(g) is xp
        np.testing.assert_allclose(to_host(g), w, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", losses.NAMES)
def test_terms_are_separate_means_over_their_own_batches(name):
    """D's real and fake terms are each a mean over their own batch (two
    passes through D, possibly of different sizes), and any logit shape
    works (a PatchGAN's (m, 1, h, w)): the value is the mean of the
    element-wise loss, the gradient that of the mean."""
    r = np.random.default_rng(2)
    loss = losses.get(name)
    small, patch = r.normal(0, 2, (3, 1)), r.normal(0, 2, (4, 1, 2, 3))
    for term in (loss.d_real, loss.d_fake, loss.g):
        v_small, g_small = term(small)
        v_patch, g_patch = term(patch)
        assert g_small.shape == small.shape and g_patch.shape == patch.shape
        # the mean over (4, 1, 2, 3) equals the mean over the same logits as a column
        v_col, g_col = term(patch.reshape(-1, 1))
        np.testing.assert_allclose(v_patch, v_col, rtol=1e-14)
        np.testing.assert_allclose(g_patch.reshape(-1, 1), g_col, rtol=1e-14)
        # duplicating a batch keeps the mean and halves each gradient entry
        v_dup, g_dup = term(np.concatenate([small, small]))
        np.testing.assert_allclose(v_dup, v_small, rtol=1e-14)
        np.testing.assert_allclose(g_dup[:3], g_small / 2, rtol=1e-14)
        assert np.all(np.abs(np.abs(patch) - 1) > 1e-3)  # away from the hinge's kinks
        num = fd_grad(lambda: term(patch)[0], patch)
        assert_grads_ok({term.__name__: rel_error(g_patch, num)}, tol=GRAD_TOL)
