"""Tests for scratchgan.backend: array-module dispatch, device choice and its
error messages, moves between host and device, seeded generators.

The "no GPU" cases are simulated by replacing the module's ``_cupy`` (the
guarded import) with ``None`` or with a fake, so they run on every machine.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import device_for, to_host, to_xp
from scratchgan import backend
from scratchgan.backend import (
    BackendError,
    Device,
    cupy_available,
    default_rng,
    device_of,
    get_array_module,
    get_device,
    gpu_available,
    synchronize,
    to_device,
    to_numpy,
)


class FakeCupy:
    """Just enough of the ``cupy`` module for the device probe."""

    class ndarray:  # noqa: N801 - mirrors cupy.ndarray
        pass

    def __init__(self, device_count):
        def get_device_count():
            if isinstance(device_count, Exception):
                raise device_count
            return device_count

        self.cuda = SimpleNamespace(runtime=SimpleNamespace(getDeviceCount=get_device_count))


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setattr(backend, "_cupy", None)
    monkeypatch.setattr(backend, "_CUPY_IMPORT_ERROR", ImportError("No module named 'cupy'"))


def fake_cupy(monkeypatch, device_count):
    fake = FakeCupy(device_count)
    monkeypatch.setattr(backend, "_cupy", fake)
    monkeypatch.setattr(backend, "_CUPY_IMPORT_ERROR", None)
    return fake


# ---------------------------------------------------------------------------
# get_array_module
# ---------------------------------------------------------------------------
def test_get_array_module(xp):
    a = to_xp(xp, [1.0, 2.0])
    assert get_array_module(a) is xp
    assert get_array_module(None, a, 3) is xp
    assert get_array_module(np.zeros(2)) is np
    assert get_array_module(None) is np
    assert get_array_module(1.5, 2, True) is np
    assert get_array_module() is np


def test_get_array_module_picks_cupy_arrays(monkeypatch):
    fake = fake_cupy(monkeypatch, 1)
    assert get_array_module(np.ones(1), fake.ndarray()) is fake
    assert get_array_module(np.ones(1), None) is np


# ---------------------------------------------------------------------------
# get_device
# ---------------------------------------------------------------------------
def test_cpu_device():
    for name in ("cpu", " CPU "):
        d = get_device(name)
        assert d == Device("cpu") and d.xp is np and not d.is_gpu
    assert get_device(d) is d
    assert repr(d) == "Device('cpu')" and hash(d) == hash(Device("cpu"))
    assert d != "cpu" and d != Device("gpu")


def test_auto_device_on_this_machine():
    assert get_device("auto").kind == ("gpu" if gpu_available() else "cpu")


def test_auto_is_cpu_without_cupy(no_cupy):
    assert get_device("auto") == Device("cpu")
    assert not gpu_available() and not cupy_available()


def test_auto_is_gpu_when_a_device_is_usable(monkeypatch):
    fake = fake_cupy(monkeypatch, 2)
    d = get_device("auto")
    assert d.is_gpu and d.xp is fake


@pytest.mark.parametrize("name", ["gpu", "cuda", "GPU"])
def test_gpu_without_cupy_says_how_to_install_it(no_cupy, name):
    with pytest.raises(BackendError) as info:
        get_device(name)
    msg = str(info.value)
    assert "CuPy is not installed" in msg
    assert 'pip install -e ".[cuda12]"' in msg and 'pip install -e ".[cuda13]"' in msg
    assert "No module named 'cupy'" in msg  # the import error itself
    assert isinstance(info.value, RuntimeError)


@pytest.mark.skipif(cupy_available(), reason="CuPy is installed here")
def test_gpu_on_this_machine_without_cupy():
    with pytest.raises(BackendError, match=r"CuPy is not installed.*cuda12"):
        get_device("gpu")


def test_gpu_with_cupy_but_no_device(monkeypatch):
    fake_cupy(monkeypatch, RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"))
    assert cupy_available() and not gpu_available()
    with pytest.raises(BackendError) as info:
        get_device("gpu")
    msg = str(info.value)
    assert "CuPy is installed but no CUDA device is usable" in msg
    assert "cudaErrorNoDevice" in msg and "nvidia-smi" in msg
    assert "not installed" not in msg and "cuda12" not in msg
    assert get_device("auto") == Device("cpu")


def test_gpu_with_cupy_and_zero_devices(monkeypatch):
    fake_cupy(monkeypatch, 0)
    with pytest.raises(BackendError, match=r"no CUDA device was found \(0 devices\)"):
        get_device("cuda")


@pytest.mark.parametrize("name", ["tpu", "", "gpu0"])
def test_unknown_device_names(name):
    with pytest.raises(ValueError, match="unknown device"):
        get_device(name)
    with pytest.raises(ValueError, match="'cpu' or 'gpu'"):
        Device(name)


def test_device_must_be_a_name():
    with pytest.raises(TypeError, match="string or Device"):
        get_device(0)


# ---------------------------------------------------------------------------
# Moving arrays and random generators
# ---------------------------------------------------------------------------
def test_to_device_and_back(xp):
    host = np.arange(6, dtype=np.float64).reshape(2, 3)
    dev = device_for(xp)
    a = to_device(host, dev)
    assert get_array_module(a) is xp and device_of(a) == dev
    back = to_numpy(a)
    assert type(back) is np.ndarray and back.dtype == np.float64
    np.testing.assert_array_equal(back, host)
    a32 = to_device(host, dev, dtype=np.float32)
    assert a32.dtype == np.float32
    np.testing.assert_array_equal(to_numpy(a32), host.astype(np.float32))
    np.testing.assert_array_equal(to_host(dev.asarray([[1, 2]], dtype=np.float64)), [[1.0, 2.0]])
    assert device_of(to_device(a, "cpu")) == Device("cpu")  # back to the host from anywhere
    assert type(to_numpy([1, 2])) is np.ndarray


@pytest.mark.parametrize("method", ["random", "standard_normal"])
def test_default_rng_is_reproducible(xp, method):
    dev = device_for(xp)
    a = getattr(default_rng(42, dev), method)((4, 5))
    b = getattr(dev.rng(42), method)((4, 5))
    c = getattr(default_rng(43, dev), method)((4, 5))
    assert get_array_module(a) is xp
    assert np.array_equal(to_host(a), to_host(b)) and not np.array_equal(to_host(a), to_host(c))


def test_default_rng_on_the_cpu_is_numpys():
    r = default_rng(0)
    assert isinstance(r, np.random.Generator)
    assert np.array_equal(r.random(3), np.random.default_rng(0).random(3))


def test_synchronize_is_harmless(xp):
    synchronize()
    synchronize(to_xp(xp, [1.0]))
    device_for(xp).synchronize()
