"""Helpers shared by the test files: backends, host <-> device moves, and the
record of gradient-check errors that ``conftest.py`` prints at the end.

Backends. ``BACKENDS`` holds the array modules to test against: NumPy always,
CuPy only where :func:`scratchgan.backend.gpu_available` says a CUDA device is
usable (otherwise the CuPy case is collected and *skipped with a reason*, so
a CPU-only run still shows that the GPU path exists)::

    @pytest.mark.parametrize("xp", BACKENDS)
    def test_something(xp): ...

or simply ask for the ``xp`` fixture that ``conftest.py`` builds from it.

Inputs and parameters are always drawn on the host with NumPy and moved with
:func:`to_xp`: CuPy's random streams differ from NumPy's for the same seed.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from scratchgan import backend

__all__ = [
    "GPU",
    "NEEDS_GPU",
    "requires_gpu",
    "BACKENDS",
    "to_xp",
    "to_host",
    "device_for",
    "rng_for",
    "on",
    "HostMaskRng",
    "assert_grads_ok",
    "record_grad_errors",
    "largest_grad_error",
    "grad_errors",
    "step_gradient_errors",
]

GPU = backend.gpu_available()
NEEDS_GPU = "needs CuPy and a CUDA device"

#: Mark for tests that only make sense with a GPU (CPU/GPU parity).
requires_gpu = pytest.mark.skipif(not GPU, reason=NEEDS_GPU)

BACKENDS = [
    pytest.param(np, id="numpy"),
    pytest.param(
        backend._cupy if GPU else None,
        id="cupy",
        marks=[pytest.mark.gpu] + ([] if GPU else [pytest.mark.skip(reason=NEEDS_GPU)]),
    ),
]


def to_xp(xp, a, dtype=None):
    """A *copy* of a host array (or list) on ``xp``'s device.

    Always a copy, for NumPy too: a test that keeps the host original to
    compare against must not see it changed by in-place updates.
    """
    return xp.array(a, dtype=dtype, copy=True)


def to_host(a):
    """A NumPy array, copied from the GPU when needed."""
    return backend.to_numpy(a)


def device_for(xp):
    """The :class:`scratchgan.backend.Device` whose array module is ``xp``."""
    return backend.get_device("cpu" if xp is np else "gpu")


def rng_for(xp, seed):
    """A seeded generator on ``xp``'s device (what Dropout expects)."""
    return backend.default_rng(seed, device_for(xp))


def on(xp, layer):
    """Move a layer (or network) built on the host to ``xp``'s device."""
    return layer.to(device_for(xp))


class HostMaskRng:
    """A stand-in generator for a *device* Dropout that draws on the host.

    ``random(shape, dtype)`` draws with ``numpy.random.default_rng(seed)`` and
    moves the numbers to ``xp``, so a NumPy layer given
    ``numpy.random.default_rng(seed)`` and a CuPy layer given
    ``HostMaskRng(seed, cupy)`` drop exactly the same units.
    """

    def __init__(self, seed, xp):
        self._host = np.random.default_rng(seed)
        self._xp = xp

    def random(self, shape, dtype=np.float64):
        return self._xp.asarray(self._host.random(shape, dtype=dtype))


# ---------------------------------------------------------------------------
# The largest gradient-check error of the session (printed by conftest.py)
# ---------------------------------------------------------------------------
_GRAD_ERRORS: dict = {}  # test id -> largest relative error it saw


def record_grad_errors(errors, label=None) -> float:
    """Remember the largest value of ``errors`` (a dict or a float) for this test."""
    worst = max(errors.values()) if isinstance(errors, dict) else float(errors)
    if label is None:  # "tests/test_x.py::test_y[numpy] (call)" -> the test id
        label = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
    _GRAD_ERRORS[label] = max(worst, _GRAD_ERRORS.get(label, 0.0))
    return worst


def assert_grads_ok(errors, tol=1e-6, label=None) -> None:
    """Record ``errors`` and assert every relative error is below ``tol``."""
    record_grad_errors(errors, label)
    items = errors.items() if isinstance(errors, dict) else [("value", errors)]
    bad = {k: v for k, v in items if not v < tol}
    assert not bad, f"gradient check failed (relative error >= {tol}): {bad}"


def grad_errors() -> dict:
    """Every recorded label and its largest error."""
    return dict(_GRAD_ERRORS)


def largest_grad_error():
    """``(error, test id)`` of the worst gradient check so far, or ``None``."""
    if not _GRAD_ERRORS:
        return None
    label = max(_GRAD_ERRORS, key=_GRAD_ERRORS.get)
    return _GRAD_ERRORS[label], label


def step_gradient_errors(gan, step, keys, model) -> dict:
    """Relative errors of ``model``'s gradients after ``step()`` against
    centred differences of the step's statistic ``keys`` (a name, or names
    whose values are summed). The GAN is re-seeded before every evaluation
    (``gan.seed(5)``), so the noise and dropout masks are the same each time;
    a learning rate of 0 leaves the parameters alone. Each array's largest
    error is divided by the scale of the whole gradient."""
    from scratchgan.nn.gradcheck import numerical_gradient

    keys = (keys,) if isinstance(keys, str) else tuple(keys)

    def value():
        gan.seed(5)
        stats = step()
        return sum(float(stats[k]) for k in keys)
    value()
    analytic = {k: to_host(g).copy() for k, g in model.gradients().items()}
    numeric = {k: to_host(numerical_gradient(value, p)) for k, p in model.parameters().items()}
    scale = max(float(np.abs(analytic[k]).max() + np.abs(numeric[k]).max()) for k in numeric)
    assert scale > 1e-3
    return {k: float(np.abs(analytic[k] - numeric[k]).max()) / scale for k in numeric}
