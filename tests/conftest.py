"""Shared test configuration: the ``xp`` backend fixture, the Hypothesis
profile, and the session's largest gradient-check error in the summary.

Helpers (``BACKENDS``, ``to_xp``, ...) live in ``tests/helpers.py``; import
them with ``from helpers import BACKENDS, to_xp``.
"""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import settings

# ``helpers`` sits beside this file; make it importable under any --import-mode.
if os.path.dirname(__file__) not in sys.path:
    sys.path.insert(0, os.path.dirname(__file__))

from helpers import BACKENDS, grad_errors, largest_grad_error  # noqa: E402

# Reproducible CI: the same examples on every run, no example database, no
# per-example deadline (the first example pays for imports). Pick another
# profile with HYPOTHESIS_PROFILE=dev (more examples, random each run).
settings.register_profile("ci", deadline=None, max_examples=25, derandomize=True, database=None)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(params=BACKENDS, scope="session")
def xp(request):
    """The array module under test: ``numpy``, and ``cupy`` where a GPU is usable."""
    return request.param


def pytest_terminal_summary(terminalreporter):
    worst = largest_grad_error()
    if worst is not None:
        error, label = worst
        terminalreporter.write_line(
            f"largest gradient-check relative error: {error:.3e} (in {label})"
        )
    named = {k: v for k, v in grad_errors().items() if "::" not in k and not k.startswith("second order: ")}
    if named:
        terminalreporter.write_line("other recorded residuals: " + ", ".join(
            f"{k} {v:.1e}" for k, v in sorted(named.items())))
    second = {k: v for k, v in grad_errors().items() if k.startswith("second order: ")}
    if second:
        terminalreporter.write_line("largest second-order (gradient penalty) errors: " + ", ".join(
            f"{k[len('second order: '):]} {v:.1e}" for k, v in sorted(second.items())))
