"""What ``fast.LeakyReLU`` saves: the ``dcgan`` and ``wgan-gp`` presets' iterations
with it and with the reference ``nn.LeakyReLU``, timed in one process.

Both versions of a preset are built from the same seed; blocks of iterations
alternate between them (after one warm-up iteration each) and the medians
are compared. This reads a single change more steadily than two runs of
``dcgan_step.py`` or ``wgan_gp_step.py``, whose ratios move by about 0.1 from
run to run on a shared 2-core VM::

    python benchmarks/leaky_relu_ab.py
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchgan.nn import fast, layers  # noqa: E402
from scratchgan.presets import PRESETS, build_gan  # noqa: E402


def iteration(preset, use_fast):
    """One training iteration of ``preset`` on random images, with or without ``fast.LeakyReLU``."""
    fast_cls = fast.LeakyReLU
    fast.LeakyReLU = fast_cls if use_fast else layers.LeakyReLU     # what the model builders pick up
    try:
        gan = build_gan(PRESETS[preset], x_shape=(1, 28, 28), steps_per_epoch=100, seed=0, device="cpu")
    finally:
        fast.LeakyReLU = fast_cls
    used = {type(m) for m in gan.D.modules() if isinstance(m, layers.LeakyReLU)}
    assert used == {fast_cls if use_fast else layers.LeakyReLU}, used
    b = PRESETS[preset].batch_size
    data = np.random.default_rng(0).random((10 * b, 1, 28, 28), dtype=np.float32)
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * b:(i + 1) * b]
    return lambda: gan.iteration(next_batch)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--blocks", type=int, default=5, help="alternating blocks per version (default: 5)")
    args = ap.parse_args(argv)
    for preset, per_block in (("dcgan", 8), ("wgan-gp", 3)):
        steps = {f: iteration(preset, f) for f in (False, True)}
        for step in steps.values():
            step()                                                  # warm-up
        times = {False: [], True: []}
        for _ in range(args.blocks):
            for f, step in steps.items():
                t = time.perf_counter()
                for _ in range(per_block):
                    step()
                times[f].append((time.perf_counter() - t) / per_block * 1e3)
        ref, fst = np.median(times[False]), np.median(times[True])
        print(f"{preset}: one iteration with nn.LeakyReLU {ref:.1f} ms, with fast.LeakyReLU {fst:.1f} ms, "
              f"fast / reference {fst / ref:.3f}")


if __name__ == "__main__":
    main()
