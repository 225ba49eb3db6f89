"""BLAS threads on the CPU (issue 17 item 18): chosen from the idle cores, or asked for."""

import pytest

from scratchgan import backend


def fake_proc_stat(monkeypatch, idle_fraction, cpus=2):
    """Make /proc/stat report ``idle_fraction`` of the time idle."""
    ticks = iter([(0, 0), (int(100 * idle_fraction), 100)])
    monkeypatch.setattr(backend, "_cpu_times", lambda: next(ticks))
    import os
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
    for var in backend._THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("idle,expected", [(1.0, 2), (0.5, 1), (0.05, 1), (0.8, 2)])
def test_threads_follow_the_idle_cores(monkeypatch, idle, expected):
    fake_proc_stat(monkeypatch, idle)
    n, reason = backend.cpu_threads()
    assert n == expected
    assert "idle" in reason


def test_threads_as_asked_and_environment_wins(monkeypatch):
    fake_proc_stat(monkeypatch, 1.0)
    assert backend.cpu_threads(1) == (1, "as asked")
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    n, reason = backend.cpu_threads()
    assert n is None and "OMP_NUM_THREADS=3" in reason
    assert "OMP_NUM_THREADS=3" in backend.set_cpu_threads()


def test_unreadable_proc_stat_uses_every_core(monkeypatch):
    def broken():
        raise OSError("no /proc here")
    monkeypatch.setattr(backend, "_cpu_times", broken)
    for var in backend._THREAD_VARIABLES:
        monkeypatch.delenv(var, raising=False)
    import os
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2})
    assert backend.cpu_threads() == (3, "all 3 cores")


def test_set_cpu_threads_limits_the_blas_pool():
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits():  # restore whatever it was afterwards
        text = backend.set_cpu_threads(1)
        assert text.startswith("1 BLAS thread ")
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
