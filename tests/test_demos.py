"""Smoke tests for the demo scripts: each runs end to end, on the CPU, with
tiny iteration counts, and writes a valid PNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from scratchgan.nn import losses

DEMOS = Path(__file__).resolve().parents[1] / "demos"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def load_demo(name):
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_png(path: Path):
    assert path.is_file(), f"{path} was not written"
    data = path.read_bytes()
    assert len(data) > 1000, f"{path} is suspiciously small ({len(data)} bytes)"
    assert data[:8] == PNG_MAGIC, f"{path} is not a PNG"


def test_toy_1d_writes_figure1(tmp_path, capsys):
    demo = load_demo("toy_1d")
    out = tmp_path / "nested" / "figure1.png"  # the directory is created
    snaps = demo.main(["--device", "cpu", "--seed", "1", "--iterations", "6", "--a-at", "3",
                       "--d-steps", "3", "--g-steps", "2", "--out", str(out)])
    assert_png(out)
    assert len(snaps) == 4
    for snap in snaps:
        assert snap["p_g"].shape == snap["D"].shape
        assert ((snap["D"] >= 0) & (snap["D"] <= 1)).all()
        assert snap["G(z)"].shape == (demo.N_ARROWS,)
    assert "wall time" in capsys.readouterr().out


def test_mixture_2d_all_losses(tmp_path, capsys):
    demo = load_demo("mixture_2d")
    out = tmp_path / "mixture.png"
    results = demo.main(["--device", "cpu", "--iterations", "6", "--out", str(out)])
    assert_png(out)
    assert list(results) == list(demo.METHODS)  # the four losses, then WGAN, WGAN-GP and R1
    assert set(losses.NAMES) - {"wasserstein"} <= set(results)
    for r in results.values():
        assert 0 <= r["covered"] <= demo.N_MODES
        assert 0.0 <= r["near"] <= 1.0
    printed = capsys.readouterr().out
    assert "modes covered" in printed and "wall time" in printed


def test_mixture_2d_loss_choice(tmp_path):
    demo = load_demo("mixture_2d")
    out = tmp_path / "two.png"
    results = demo.main(["--iterations", "3", "--losses", "minimax", "non-saturating", "--out", str(out)])
    assert list(results) == ["minimax", "non-saturating"]
    assert_png(out)


def test_mode_stats_on_real_data():
    """The coverage measure itself: real ring samples cover all 8 modes, and
    nearly all of them lie within 3 standard deviations of a centre."""
    import numpy as np

    demo = load_demo("mixture_2d")
    x = demo.sample_ring(np.random.default_rng(0), 10_000)
    covered, near = demo.mode_stats(x)
    assert covered == demo.N_MODES
    assert near > 0.98  # a 2-D Gaussian puts 98.9 % of its mass within 3 std
    collapsed = np.repeat(demo.CENTRES[:1], 1000, axis=0)
    assert demo.mode_stats(collapsed) == (1, 1.0)


def test_mnist_demo_runs_a_few_iterations(tmp_path, capsys):
    """demos/mnist.py end to end on the real data (skipped without it)."""
    import os

    import pytest

    data = Path(os.environ.get("SCRATCHGAN_DATA") or DEMOS.parent.parent / "shared" / "data")
    if not (data / "mnist" / "train-images-idx3-ubyte.gz").exists() and not (data / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"MNIST files not found in {data} (set SCRATCHGAN_DATA)")
    demo = load_demo("mnist")
    out = tmp_path / "grid.png"
    demo.main(["--iterations", "3", "--out", str(out), "--data-dir", str(data)])
    assert_png(out)
    assert "3 iterations" in capsys.readouterr().out
