"""One code path for NumPy (CPU) and CuPy (GPU).

Every numerical function in scratchgan starts with::

    xp = get_array_module(x)

and then writes ``xp.`` everywhere, so the same line runs on the CPU when ``x``
is a NumPy array and on the GPU when it is a CuPy array. The choice between the
two is made once, by the user, with :func:`get_device` (``"cpu"``, ``"gpu"`` or
``"auto"``); nothing in the package switches backends by aliasing imports.

CuPy is optional. It is imported behind a guard; asking for the GPU where it is
missing, or where it is installed but no CUDA device is usable, raises a
:class:`BackendError` that says which of the two it is and how to fix it.
"""

from __future__ import annotations

import numpy as np

try:  # CuPy is optional: the extras cuda12 and cuda13 install it (README, Install).
    import cupy as _cupy
except Exception as _err:  # ImportError, or a broken CUDA install raising at import
    _cupy = None
    _CUPY_IMPORT_ERROR: Exception | None = _err
else:
    _CUPY_IMPORT_ERROR = None

__all__ = [
    "BackendError",
    "Device",
    "cupy_available",
    "gpu_available",
    "get_array_module",
    "get_device",
    "to_device",
    "to_numpy",
    "default_rng",
    "synchronize",
    "idle_cores",
    "cpu_threads",
    "set_cpu_threads",
]

_INSTALL_HINT = (
    "install CuPy with the extra for your CUDA major version (`nvidia-smi` shows it), from your "
    'scratchgan clone: pip install -e ".[cuda12]" for CUDA 12.x or pip install -e ".[cuda13]" for CUDA 13.x'
)


class BackendError(RuntimeError):
    """The requested device cannot be used; the message says why and what to do."""


def cupy_available() -> bool:
    """True when CuPy imported successfully (says nothing about a GPU)."""
    return _cupy is not None


def _gpu_problem() -> str | None:
    """Why the GPU cannot be used, or ``None`` when it can."""
    if _cupy is None:
        return (
            f"CuPy is not installed (import failed: {_CUPY_IMPORT_ERROR!r}); "
            + _INSTALL_HINT
        )
    try:
        n = _cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # cudaErrorNoDevice, missing driver, ...
        return (
            "CuPy is installed but no CUDA device is usable "
            f"({type(err).__name__}: {err}); check the NVIDIA driver with "
            "`nvidia-smi`, CUDA_VISIBLE_DEVICES, and that the CuPy extra matches "
            "the CUDA version, or use device='cpu'"
        )
    if n < 1:
        return (
            "CuPy is installed but no CUDA device was found (0 devices); "
            "check `nvidia-smi` and CUDA_VISIBLE_DEVICES, or use device='cpu'"
        )
    return None


def gpu_available() -> bool:
    """True when CuPy is installed and at least one CUDA device is usable."""
    return _gpu_problem() is None


def get_array_module(*arrays):
    """Return ``cupy`` if any argument is a CuPy array, else ``numpy``.

    Non-array arguments (``None``, Python scalars) are ignored, so
    ``get_array_module(x, None)`` is fine.
    """
    if _cupy is not None:
        for a in arrays:
            if isinstance(a, _cupy.ndarray):
                return _cupy
    return np


class Device:
    """A chosen compute device: its array module ``xp`` and a name.

    Create one with :func:`get_device`. ``Device("cpu").xp is numpy``;
    ``Device("gpu").xp is cupy``.
    """

    def __init__(self, kind: str):
        if kind not in ("cpu", "gpu"):
            raise ValueError(f"device kind must be 'cpu' or 'gpu', got {kind!r}")
        self.kind = kind
        self.xp = np if kind == "cpu" else _cupy

    @property
    def is_gpu(self) -> bool:
        return self.kind == "gpu"

    def asarray(self, a, dtype=None):
        """Copy ``a`` (NumPy, CuPy or a list) onto this device."""
        return to_device(a, self, dtype=dtype)

    def rng(self, seed=None):
        """A seeded random generator on this device (see :func:`default_rng`)."""
        return default_rng(seed, self)

    def synchronize(self) -> None:
        """Wait for all queued GPU work (no-op on the CPU)."""
        if self.is_gpu:
            _cupy.cuda.get_current_stream().synchronize()

    def __repr__(self) -> str:
        return f"Device({self.kind!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Device) and other.kind == self.kind

    def __hash__(self) -> int:
        return hash(self.kind)


def get_device(name: "str | Device" = "auto") -> Device:
    """Choose a device by name.

    Parameters
    ----------
    name : {"cpu", "gpu", "cuda", "auto"} or Device
        ``"auto"`` picks the GPU when one is usable and the CPU otherwise.
        ``"gpu"`` (alias ``"cuda"``) raises :class:`BackendError` with the
        reason when the GPU cannot be used.
    """
    if isinstance(name, Device):
        return name
    if not isinstance(name, str):
        raise TypeError(f"device must be a string or Device, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "cpu":
        return Device("cpu")
    if key in ("gpu", "cuda"):
        problem = _gpu_problem()
        if problem is not None:
            raise BackendError(f"cannot use the GPU: {problem}")
        return Device("gpu")
    if key == "auto":
        return Device("gpu" if gpu_available() else "cpu")
    raise ValueError(f"unknown device {name!r}; choose 'cpu', 'gpu' or 'auto'")


def device_of(a) -> Device:
    """The device an array lives on."""
    return Device("gpu" if get_array_module(a) is not np else "cpu")


def to_device(a, device: "str | Device", dtype=None):
    """Move (or copy) an array to ``device``; a no-op when it is already there."""
    device = get_device(device)
    if device.is_gpu:
        return _cupy.asarray(a, dtype=dtype)
    return np.asarray(to_numpy(a), dtype=dtype)


def to_numpy(a):
    """Return a NumPy array (copying from the GPU when needed)."""
    if _cupy is not None and isinstance(a, _cupy.ndarray):
        return _cupy.asnumpy(a)
    return np.asarray(a)


def default_rng(seed=None, device: "str | Device" = "cpu"):
    """A seeded random generator for ``device``.

    Returns ``numpy.random.Generator`` on the CPU and
    ``cupy.random.Generator`` on the GPU; both offer ``random``,
    ``uniform``, ``standard_normal`` and ``integers`` with the same call
    signatures. The two backends produce *different* streams for the same seed,
    so CPU/GPU parity tests draw on the host and move the arrays.
    """
    device = get_device(device)
    if device.is_gpu:
        return _cupy.random.default_rng(seed)
    return np.random.default_rng(seed)


def synchronize(xp_or_array=None) -> None:
    """Block until queued GPU work is done (no-op for NumPy)."""
    if _cupy is None:
        return
    if xp_or_array is None or xp_or_array is _cupy or isinstance(xp_or_array, _cupy.ndarray):
        if gpu_available():
            _cupy.cuda.get_current_stream().synchronize()


# ---------------------------------------------------------------------------
# CPU threads
# ---------------------------------------------------------------------------
_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _cpu_times():
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:9]]
    return fields[3] + fields[4], sum(fields)  # idle + iowait, all (guest time is inside user)


def idle_cores(interval: float = 0.25):
    """How many of this machine's cores are idle right now, measured from
    ``/proc/stat`` over ``interval`` seconds; ``None`` where that cannot be read."""
    import os
    import time

    try:
        idle0, total0 = _cpu_times()
        time.sleep(interval)
        idle1, total1 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (os.cpu_count() or 1) * (idle1 - idle0) / (total1 - total0)


def cpu_threads(requested=None):
    """``(threads, reason)``: how many BLAS threads CPU work should use.

    A BLAS that spins more threads than there are free cores slows down badly
    on a busy machine: on a 2-core VM with one other busy process, the paper's
    training step took 1.9× as long with 2 threads as with 1 (README,
    Performance). So: ``requested`` if given; the user's choice if one of
    ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` is set
    (``None``: leave the BLAS alone); otherwise the cores idle right now,
    rounded, at least 1.
    """
    import os

    if requested is not None:
        return int(requested), "as asked"
    for var in _THREAD_VARIABLES:
        if os.environ.get(var):
            return None, f"{var}={os.environ[var]}"
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = os.cpu_count() or 1
    idle = idle_cores()
    if idle is None:
        return usable, f"all {usable} cores"
    n = max(1, min(usable, int(idle + 0.5)))
    return n, f"{idle:.1f} of {os.cpu_count()} cores idle"


def set_cpu_threads(requested=None) -> str:
    """Limit the BLAS thread pool (through threadpoolctl) as :func:`cpu_threads`
    decides; returns a short description for the log."""
    n, reason = cpu_threads(requested)
    if n is None:
        return f"BLAS threads as set by {reason}"
    from threadpoolctl import threadpool_limits

    threadpool_limits(n, user_api="blas")
    return f"{n} BLAS thread{'s' if n != 1 else ''} ({reason})"
