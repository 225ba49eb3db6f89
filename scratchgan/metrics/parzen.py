"""Parzen-window log-likelihood, the evaluation of Goodfellow et al. (2014).

The paper's Table 1 reports, for adversarial nets on MNIST, a mean test
log-likelihood of **225 ± 2** nats, estimated by fitting a Gaussian Parzen
window (kernel density estimate) to samples from the generator. This module
reproduces the authors' script (``parzen_ll.py``, by Yann Dauphin, after
Breuleux et al. 2011) as described in docs/paper.md §5:

* ``N`` generator samples ``mu_j`` (10,000 in the paper) are the kernel
  centres, and the log-density of a point ``x`` in ``d`` dimensions is

  .. math::

      \\log p(x) = \\operatorname{LME}_j\\!\\left(
          -\\frac{\\lVert x - \\mu_j \\rVert^2}{2\\sigma^2}\\right)
          - d \\log\\!\\left(\\sigma\\sqrt{2\\pi}\\right),

  where ``LME(a) = max(a) + log(mean_j exp(a_j - max(a)))`` is a stable
  log-*mean*-exp (so ``-log N`` is included): an isotropic Gaussian kernel with
  per-dimension standard deviation ``sigma`` and its full normalising constant.
* ``sigma`` is chosen from ``numpy.logspace(-1, 0, 10)`` (0.1 … 1.0) as the
  argmax of the mean log-likelihood of validation data (for MNIST: the first
  1,000 images of ``train[50000:60000]``).
* The reported number is the mean over the test set (all 10,000 MNIST test
  images) with ``± std(ll, ddof=0) / sqrt(n_test)``.

Every function takes its array module from its inputs
(:func:`scratchgan.backend.get_array_module`), so the same code runs on NumPy
or CuPy; only final results are copied to the host.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ..backend import get_array_module, to_numpy

__all__ = [
    "DEFAULT_SIGMAS",
    "DEFAULT_BATCH_SIZE",
    "ParzenResult",
    "parzen_log_likelihood",
    "parzen_log_likelihood_grid",
    "select_sigma",
    "parzen_evaluate",
]

#: The authors' sigma grid: ``numpy.logspace(-1, 0, 10)`` (docs/paper.md §5). Read-only.
DEFAULT_SIGMAS = np.logspace(-1, 0, 10)
DEFAULT_SIGMAS.setflags(write=False)

#: Test points per batch; the authors' ``-b`` default (docs/paper.md §5).
DEFAULT_BATCH_SIZE = 100


# --------------------------------------------------------------------------
# input checks
# --------------------------------------------------------------------------

def _backend(named_arrays):
    """The common array module of ``{name: array}``; array-likes become NumPy.

    Mixing NumPy and CuPy arrays is refused rather than silently copied, so
    that the caller decides where the work runs.
    """
    xp = get_array_module(*named_arrays.values())
    out = {}
    for name, a in named_arrays.items():
        if xp is np:
            a = np.asarray(a)
        elif not isinstance(a, xp.ndarray):
            raise TypeError(
                f"{name} is a {type(a).__module__}.{type(a).__name__} but other "
                "inputs are CuPy arrays; pass all arrays on the same device "
                "(see scratchgan.backend.to_device)"
            )
        out[name] = a
    return xp, out


def _check_matrix(a, name, xp):
    """``a`` must be a finite, real, 2-D array with at least one row."""
    if a.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_points, n_dims), "
            f"got {a.ndim}-D with shape {tuple(a.shape)}"
        )
    if a.dtype.kind not in "iuf":
        raise TypeError(f"{name} must have a real numeric dtype, got {a.dtype}")
    if a.shape[0] < 1:
        raise ValueError(f"{name} is empty (shape {tuple(a.shape)}); need at least one row")
    if a.dtype.kind == "f" and not bool(xp.isfinite(a).all()):
        n_bad = int((~xp.isfinite(a)).sum())
        raise ValueError(f"{name} contains {n_bad} non-finite value(s) (NaN or inf)")


def _check_dims(named):
    """All arrays in ``{name: array}`` must share the same number of columns."""
    dims = {name: int(a.shape[1]) for name, a in named.items()}
    if len(set(dims.values())) > 1:
        desc = ", ".join(f"{n} has d={d}" for n, d in dims.items())
        raise ValueError(f"dimension mismatch: {desc}")


def _as_sigmas(sigmas) -> np.ndarray:
    """Validate a scalar or 1-D sequence of kernel widths; return float64 NumPy."""
    s = np.asarray(to_numpy(sigmas))
    if s.dtype.kind not in "iuf":
        raise TypeError(f"sigma must be real numbers, got dtype {s.dtype}")
    s = np.atleast_1d(s).astype(np.float64)
    if s.ndim != 1:
        raise ValueError(f"sigmas must be a scalar or a 1-D sequence, got shape {s.shape}")
    if s.size == 0:
        raise ValueError("sigmas is empty; give at least one kernel width")
    if not np.all(np.isfinite(s)) or not np.all(s > 0):
        raise ValueError(f"every sigma must be finite and > 0, got {s.tolist()}")
    with np.errstate(over="ignore", under="ignore"):
        two_var = 2.0 * s * s
    if not np.all(np.isfinite(two_var)) or not np.all(two_var > 0):
        raise ValueError(
            f"sigma values {s.tolist()} are too extreme: 2*sigma**2 is not a "
            "positive finite float64"
        )
    return s


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return int(batch_size)


# --------------------------------------------------------------------------
# core
# --------------------------------------------------------------------------

def _sq_distances(xp, xb, mu_t, mu_sq):
    """Squared distances ``|x_i - mu_j|^2`` of shape (B, N), clamped at 0.

    ``xb`` (B, d) and ``mu_t`` (d, N) are float64 and already centred;
    ``mu_sq`` (N,) holds the centres' squared norms. One matrix product via
    ``|x|^2 + |mu|^2 - 2 x.mu``; rounding can make a true 0 (x equal to a
    centre) come out as a tiny negative number, hence the clamp.
    """
    xb_sq = xp.einsum("ij,ij->i", xb, xb)  # (B,)
    dist = xb @ mu_t  # (B, N)
    dist *= -2.0
    dist += xb_sq[:, None]
    dist += mu_sq[None, :]
    xp.maximum(dist, 0.0, out=dist)
    return dist


def _grid_unchecked(xp, x, mu, sigmas, batch_size, progress, desc):
    """Log-likelihoods (len(sigmas), n_x) of validated inputs; see the grid API.

    Precision. Everything after the input arrays is float64: centres, test
    points, squared distances and the log-mean-exp. The expansion
    ``|x|^2 + |mu|^2 - 2 x.mu`` subtracts numbers of size ~|x|^2 (about 100
    for MNIST, d = 784) to get distances that can be ~0.01 for a test image
    close to a sample; in float32 (eps ~ 6e-8, with a 784-term dot product)
    that leaves absolute errors ~1e-4 in the distance, which ``1/(2 sigma^2)``
    = 50 at sigma = 0.1 turns into ~1e-2 nats per point (measured ~2e-3 on
    MNIST-like data). Small next to the paper's ± 2, but it is avoidable: the
    only O(n_x N d) work is one matrix product per batch, which float64 does
    at about half the float32 speed on CPUs and at full FP64 tensor-core rate
    on datacentre GPUs -- seconds for the paper's 10,000 x 10,000 x 784
    problem -- and the float64 copy of the centres is N*d*8 bytes (63 MB).
    We also subtract the centres' mean from both x and mu before the
    expansion: distances are translation invariant, and centring shrinks the
    norms that cancel, so data with a large common offset (pixels in [0, 255],
    shifted features) stays accurate too.
    """
    n_x, d = x.shape
    n_mu = mu.shape[0]

    # Centres: float64, centred, with their squared norms, computed once.
    mu64 = mu.astype(xp.float64, copy=True)
    shift = mu64.mean(axis=0)
    mu64 -= shift
    mu_sq = xp.einsum("ij,ij->i", mu64, mu64)  # (N,)
    mu64_t = mu64.T

    # Per-sigma constants (host floats): log p = -Dmin/(2s^2) + log(sum exp(-(D-Dmin)/(2s^2)))
    #                                             - log N - d log(s sqrt(2 pi)).
    inv_two_var = [1.0 / (2.0 * s * s) for s in sigmas]
    consts = [-math.log(n_mu) - d * math.log(s * math.sqrt(2.0 * math.pi)) for s in sigmas]

    out = xp.empty((len(sigmas), n_x), dtype=xp.float64)
    n_batches = -(-n_x // batch_size)
    bar = tqdm(
        range(n_batches),
        total=n_batches,
        desc=desc,
        unit="batch",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    # exp underflow to 0 is the intended outcome for far-away centres; an
    # overflow in D*inv (astronomical distance / tiny sigma) gives -inf -> 0
    # likewise. Neither is an error, so keep NumPy quiet about them.
    with np.errstate(over="ignore", under="ignore"):
        for b in bar:
            lo = b * batch_size
            hi = min(lo + batch_size, n_x)
            xb = x[lo:hi].astype(xp.float64, copy=True)
            xb -= shift
            dist = _sq_distances(xp, xb, mu64_t, mu_sq)  # (B, N), >= 0
            dmin = dist.min(axis=1)  # (B,) nearest centre = the LME's max term
            dist -= dmin[:, None]  # >= 0, exactly 0 at the nearest centre
            work = xp.empty_like(dist)
            for k, (inv, c) in enumerate(zip(inv_two_var, consts)):
                xp.multiply(dist, -inv, out=work)
                xp.exp(work, out=work)  # in (0, 1], and 1 at the nearest centre
                # The sum is >= 1, so the log is finite and >= 0.
                out[k, lo:hi] = xp.log(work.sum(axis=1)) - dmin * inv + c
    bar.close()
    return out


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def parzen_log_likelihood_grid(x, mu, sigmas, batch_size=DEFAULT_BATCH_SIZE,
                               progress=False, desc="Parzen LL"):
    """Parzen-window log-likelihood of each point for each of several sigmas.

    The squared distances do not depend on sigma, so they are computed once
    per batch and reused for every sigma; this is what makes sigma selection
    over the paper's 10-value grid cost about one evaluation.

    .. math::

        \\log p_\\sigma(x_i) = \\log \\frac{1}{N} \\sum_{j=1}^{N}
            \\exp\\!\\left(-\\frac{\\lVert x_i - \\mu_j\\rVert^2}{2\\sigma^2}\\right)
            - d \\log\\!\\left(\\sigma \\sqrt{2\\pi}\\right)

    evaluated with a stable log-mean-exp (docs/paper.md §5, the authors'
    ``parzen_ll.py``).

    Parameters
    ----------
    x : array, shape (n_x, d)
        Points whose log-density is wanted (validation or test data). NumPy
        or CuPy; any real dtype.
    mu : array, shape (N, d)
        Kernel centres (generator samples), on the same backend as ``x``.
    sigmas : float or sequence of float
        Per-dimension kernel standard deviations, each finite and > 0.
    batch_size : int, optional
        Rows of ``x`` per batch. Peak extra memory is about
        ``3 * batch_size * N`` float64 values plus the float64 copy of ``mu``;
        the ``(n_x, N, d)`` difference tensor is never formed.
    progress : bool, optional
        Show a tqdm bar over batches on stderr.
    desc : str, optional
        Label of the progress bar.

    Returns
    -------
    ll : array, shape (n_sigmas, n_x), float64
        ``ll[k, i]`` is ``log p(x[i])`` with ``sigma = sigmas[k]``; on the
        backend of the inputs.

    Raises
    ------
    ValueError
        Non-2-D or empty arrays, mismatched ``d``, NaN/inf in ``x`` or ``mu``
        (the message names which), sigma <= 0 or non-finite, batch_size < 1.
    TypeError
        Non-real dtypes, or NumPy and CuPy arrays mixed.

    Notes
    -----
    All arithmetic is float64 whatever the input dtype; see the comment in
    the implementation for why (float32 cancellation in
    ``|x|^2 + |mu|^2 - 2 x.mu`` at d = 784).

    References
    ----------
    Goodfellow et al. (2014), "Generative Adversarial Nets", Table 1:
    adversarial nets 225 ± 2 on MNIST; protocol in docs/paper.md §5.
    """
    xp, arrs = _backend({"x": x, "mu": mu})
    for name, a in arrs.items():
        _check_matrix(a, name, xp)
    _check_dims(arrs)
    s = _as_sigmas(sigmas)
    bs = _check_batch_size(batch_size)
    return _grid_unchecked(xp, arrs["x"], arrs["mu"], s, bs, progress, desc)


def parzen_log_likelihood(x, mu, sigma, batch_size=DEFAULT_BATCH_SIZE, progress=False):
    """Parzen-window log-likelihood of each row of ``x`` for one sigma.

    .. math::

        \\log p(x) = \\operatorname{LME}_j\\!\\left(
            -\\frac{\\lVert x - \\mu_j \\rVert^2}{2\\sigma^2}\\right)
            - d \\log\\!\\left(\\sigma\\sqrt{2\\pi}\\right),
        \\qquad
        \\operatorname{LME}(a) = \\max a + \\log \\frac{1}{N}\\sum_j e^{a_j - \\max a}

    i.e. the log-density of ``x`` under the equal-weight mixture of
    ``N(mu_j, sigma^2 I)``, as in the authors' ``parzen_ll.py``
    (docs/paper.md §5; Table 1 of Goodfellow et al. 2014 reports 225 ± 2 on
    MNIST with ``sigma`` chosen on validation data).

    Parameters
    ----------
    x : array, shape (n_x, d)
        Points to evaluate (NumPy or CuPy, real dtype).
    mu : array, shape (N, d)
        Kernel centres (generator samples), same backend as ``x``.
    sigma : float
        Per-dimension kernel standard deviation, finite and > 0.
    batch_size : int, optional
        Rows of ``x`` per batch (memory ~ ``batch_size * N`` float64).
    progress : bool, optional
        Show a tqdm bar over batches on stderr.

    Returns
    -------
    ll : array, shape (n_x,), float64
        Per-example log-likelihoods in nats, on the inputs' backend.

    See Also
    --------
    parzen_log_likelihood_grid : the same for many sigmas at once.
    """
    if np.ndim(to_numpy(sigma)) != 0:
        raise ValueError(
            "sigma must be a single number; use parzen_log_likelihood_grid "
            "for several sigmas"
        )
    return parzen_log_likelihood_grid(x, mu, sigma, batch_size=batch_size,
                                      progress=progress)[0]


def select_sigma(valid, samples, sigmas=DEFAULT_SIGMAS, batch_size=DEFAULT_BATCH_SIZE,
                 progress=False):
    """Choose the Parzen kernel width that maximises mean validation log-likelihood.

    For each ``sigma`` in the grid, the mean over ``valid`` of
    ``log p_sigma(x)`` (see :func:`parzen_log_likelihood`) is computed with
    ``samples`` as kernel centres, and the argmax is returned (the first one
    on ties), as in docs/paper.md §5. For MNIST the authors use the first
    1,000 validation images and the grid ``numpy.logspace(-1, 0, 10)``.

    Parameters
    ----------
    valid : array, shape (n_valid, d)
        Validation data.
    samples : array, shape (N, d)
        Generator samples (kernel centres), same backend as ``valid``.
    sigmas : sequence of float, optional
        Candidate widths; default ``numpy.logspace(-1, 0, 10)``.
    batch_size : int, optional
        Validation rows per batch.
    progress : bool, optional
        Show a tqdm bar over batches on stderr.

    Returns
    -------
    best_sigma : float
        The grid value with the largest mean validation log-likelihood.
    mean_ll : numpy.ndarray, shape (n_sigmas,)
        Mean validation log-likelihood for each grid value (on the host).
    """
    xp, arrs = _backend({"valid": valid, "samples": samples})
    for name, a in arrs.items():
        _check_matrix(a, name, xp)
    _check_dims(arrs)
    s = _as_sigmas(sigmas)
    bs = _check_batch_size(batch_size)
    ll = _grid_unchecked(xp, arrs["valid"], arrs["samples"], s, bs, progress,
                         "Parzen sigma selection")
    means = to_numpy(ll.mean(axis=1))
    return float(s[int(np.argmax(means))]), means


@dataclass(frozen=True, eq=False)
class ParzenResult:
    """Outcome of :func:`parzen_evaluate` (all fields on the host).

    Attributes
    ----------
    mean : float
        Mean test log-likelihood (nats) -- the number in Table 1.
    std_err : float
        ``std(ll, ddof=0) / sqrt(n_test)``, the ± in Table 1.
    sigma : float
        The kernel width used on the test set.
    sigmas : numpy.ndarray
        The candidate grid.
    valid_means : numpy.ndarray or None
        Mean validation log-likelihood per grid value (``None`` when no
        validation data was given, i.e. a single fixed sigma).
    ll : numpy.ndarray, shape (n_test,)
        Per-example test log-likelihoods.
    """

    mean: float
    std_err: float
    sigma: float
    sigmas: np.ndarray
    valid_means: np.ndarray | None
    ll: np.ndarray

    @property
    def n_test(self) -> int:
        return int(self.ll.shape[0])

    def __str__(self) -> str:
        return (f"Parzen log-likelihood {self.mean:.2f} ± {self.std_err:.2f} "
                f"(sigma={self.sigma:.4g}, n_test={self.n_test})")


def parzen_evaluate(samples, valid, test, sigmas=None, batch_size=DEFAULT_BATCH_SIZE,
                    progress=True) -> ParzenResult:
    """The paper's Parzen-window evaluation: choose sigma on ``valid``, score ``test``.

    Protocol of docs/paper.md §5 (the authors' ``parzen_ll.py``): ``sigma`` is
    the argmax over ``sigmas`` of the mean validation log-likelihood; the
    reported figure is the mean over ``test`` of

    .. math::

        \\log p(x) = \\operatorname{LME}_j\\!\\left(
            -\\frac{\\lVert x - \\mu_j \\rVert^2}{2\\sigma^2}\\right)
            - d \\log\\!\\left(\\sigma\\sqrt{2\\pi}\\right)

    with ``± std(ll, ddof=0) / sqrt(n_test)``. Goodfellow et al. (2014),
    Table 1, report 225 ± 2 for adversarial nets on MNIST (N = 10,000
    samples, the first 1,000 validation images, the 10,000 test images).

    Parameters
    ----------
    samples : array, shape (N, d)
        Generator samples, the kernel centres.
    valid : array, shape (n_valid, d) or None
        Validation data for choosing sigma (for MNIST the caller passes the
        first 1,000 images of ``train[50000:60000]``). May be ``None`` only
        when a single sigma is given.
    test : array, shape (n_test, d)
        Test data; all of it is scored.
    sigmas : float or sequence of float, optional
        Candidate grid; default ``numpy.logspace(-1, 0, 10)``.
    batch_size : int, optional
        Data rows per batch.
    progress : bool, optional
        Show tqdm bars (stderr) over batches of the validation and test passes.

    Returns
    -------
    ParzenResult
        ``mean``, ``std_err``, ``sigma``, ``sigmas``, ``valid_means``, ``ll``
        (NumPy). The work runs on the inputs' backend (NumPy or CuPy).
    """
    named = {"samples": samples, "test": test}
    if valid is not None:
        named["valid"] = valid
    xp, arrs = _backend(named)
    # Check everything before the (long) validation pass.
    for name, a in arrs.items():
        _check_matrix(a, name, xp)
    _check_dims(arrs)
    s = _as_sigmas(DEFAULT_SIGMAS if sigmas is None else sigmas)
    bs = _check_batch_size(batch_size)

    if valid is None:
        if s.size != 1:
            raise ValueError(
                f"valid is None but {s.size} sigmas were given; pass validation "
                "data to choose among them, or a single sigma"
            )
        sigma, valid_means = float(s[0]), None
    else:
        vll = _grid_unchecked(xp, arrs["valid"], arrs["samples"], s, bs, progress,
                              "Parzen sigma selection")
        valid_means = to_numpy(vll.mean(axis=1))
        sigma = float(s[int(np.argmax(valid_means))])

    ll = to_numpy(_grid_unchecked(xp, arrs["test"], arrs["samples"], np.array([sigma]),
                                  bs, progress, f"Parzen test (sigma={sigma:.4g})")[0])
    return ParzenResult(
        mean=float(ll.mean()),
        std_err=float(ll.std() / math.sqrt(ll.shape[0])),
        sigma=sigma,
        sigmas=s,
        valid_means=valid_means,
        ll=ll,
    )
