"""What a fast layer saves: the ``dcgan`` and ``wgan-gp`` presets' iterations built
with ``scratchgan.nn.fast``'s version of some layers and with the references, timed in one process.

Both versions of a preset are built from the same seed; blocks of iterations
alternate between them (after one warm-up iteration each) and the medians
are compared. This reads a single change more steadily than two runs of
``dcgan_step.py`` or ``wgan_gp_step.py``, whose ratios move by about 0.1 from
run to run on a shared 2-core VM::

    python benchmarks/fast_ab.py --layers LeakyReLU                  # fast.LeakyReLU against nn.LeakyReLU
    python benchmarks/fast_ab.py --layers Conv2d ConvTranspose2d     # col2im tap by tap against one product
    python benchmarks/fast_ab.py --layers Conv2d ConvTranspose2d --batch-split 2 --presets wgan-gp
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scratchgan import nn  # noqa: E402
from scratchgan.backend import set_cpu_threads  # noqa: E402
from scratchgan.cli import _int_at_least, _positive_int  # noqa: E402
from scratchgan.nn import fast  # noqa: E402
from scratchgan.presets import PRESETS, build_gan  # noqa: E402

SWAPPABLE = ("LeakyReLU", "Conv2d", "ConvTranspose2d")


def iteration(preset, layers, use_fast, batch_split=None):
    """One training iteration of ``preset`` on random images, ``layers`` (names)
    taken from ``fast`` or, with ``use_fast`` False, from the reference ``nn``."""
    saved = {name: getattr(fast, name) for name in layers}
    for name in layers:                                      # what the model builders pick up
        setattr(fast, name, saved[name] if use_fast else getattr(nn, name))
    try:
        gan = build_gan(PRESETS[preset], x_shape=(1, 28, 28), steps_per_epoch=100, seed=0, device="cpu",
                        batch_split=batch_split)
    finally:
        for name, cls in saved.items():
            setattr(fast, name, cls)
    want = {saved[name] if use_fast else getattr(nn, name) for name in layers}
    used = {type(m) for net in (gan.G, gan.D) for m in net.modules()
            if isinstance(m, tuple(getattr(nn, name) for name in layers))}
    assert used <= want and used, (used, want)
    b = PRESETS[preset].batch_size
    data = np.random.default_rng(0).random((10 * b, 1, 28, 28), dtype=np.float32)
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * b:(i + 1) * b]
    return lambda: gan.iteration(next_batch)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", nargs="+", default=["LeakyReLU"], choices=SWAPPABLE,
                    help="the fast layers to compare with their references (default: LeakyReLU)")
    ap.add_argument("--presets", nargs="+", default=["dcgan", "wgan-gp"], choices=["dcgan", "wgan-gp"])
    ap.add_argument("--blocks", type=_positive_int, default=5, help="alternating blocks per version (default: 5)")
    ap.add_argument("--batch-split", type=_int_at_least(2, "an integer >= 2"), metavar="N",
                    help="wgan-gp only: each batch in N slices on N threads, one BLAS thread each")
    args = ap.parse_args(argv)
    if args.batch_split:
        if "dcgan" in args.presets:
            ap.error("--batch-split: the dcgan preset has batch norm, which a split would change; "
                     "use --presets wgan-gp")
        set_cpu_threads(1)
    for preset in args.presets:
        per_block = 8 if preset == "dcgan" else 3
        steps = {f: iteration(preset, args.layers, f, args.batch_split) for f in (False, True)}
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
        what = ", ".join(args.layers)
        split = f", batch split {args.batch_split}" if args.batch_split else ""
        print(f"{preset}{split}: one iteration with the reference {what} {ref:.1f} ms, with the fast ones "
              f"{fst:.1f} ms, fast / reference {fst / ref:.3f}")


if __name__ == "__main__":
    main()
