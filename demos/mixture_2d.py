"""Ring of 8 Gaussians: the same GAN trained with each loss, side by side.

The data are 8 Gaussians (standard deviation 0.05) with centres equally spaced
on a circle of radius 2 -- the classic test for *mode collapse*, where G
covers a few of the modes and ignores the rest. The same generator and
discriminator, initialised from the same seed, fed the same data and noise
streams, are trained once per method (``METHODS`` below):

* ``minimax``        -- G descends log(1 - D(G(z))) (Algorithm 1 as printed);
* ``non-saturating`` -- G ascends log D(G(z)) (the paper's Section 3 advice);
* ``least-squares``  -- LSGAN; ``hinge`` -- hinge loss;
* ``wgan``           -- WGAN with the critic's weights clipped to [-0.01, 0.01];
* ``wgan-gp``        -- WGAN-GP, the gradient penalty at random interpolates;
* ``r1``             -- the non-saturating GAN with the R1 penalty on real data.

Networks: z ~ N(0, I) in 2 dimensions; G 2 -> 64 -> 64 -> 2 with ReLU; D
2 -> 64 -> 64 -> 1 with LeakyReLU(0.2); Adam (lr 1e-3, betas 0.5, 0.999),
batch 256, k = 1 D step per G step -- identical for the four losses, so only
the loss differs; the Wasserstein variants keep their papers' 5 critic steps
(see ``METHODS``).

The picture has one column per loss. Each panel shows 2 000 real samples
(grey) under 2 000 samples of G (coloured), with a thin circle of radius 3
standard deviations around each mode centre. The bottom row is the end of
training, the top row an intermediate iteration. A sample is *near* a mode
when it lies within 3 standard deviations (0.15) of its centre; a mode is
*covered* when at least 1 % of 10 000 generated samples are near it. The
title gives "modes covered: j/8" and the percentage of samples near some mode,
and the same numbers are printed as a table.

Run (CPU, about 2 minutes on one core for all seven methods)::

    python demos/mixture_2d.py                          # -> demos/out/mixture_2d.png
    python demos/mixture_2d.py --losses minimax non-saturating
    python demos/mixture_2d.py --device gpu --iterations 5000
"""

from __future__ import annotations

import os

# The matrices here are small (batch x 64): BLAS threads only add overhead, and
# on a busy machine they make each step many times slower. Set before NumPy loads.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import time

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from scratchgan.backend import get_device, to_numpy
from scratchgan.cli import run_script
from scratchgan.gan import GAN, R1, WGAN, WGANGP, NoisePrior
from scratchgan.nn import Adam, LeakyReLU, Linear, ReLU, RMSProp, Sequential

N_MODES, RADIUS, STD = 8, 2.0, 0.05
NEAR = 3 * STD            # "near a mode": within 3 standard deviations of its centre
COVERED_FRACTION = 0.01   # a mode is covered when >= 1 % of the samples are near it
N_EVAL = 10_000           # generated samples used for the statistics
N_SHOW = 2_000            # samples drawn in each panel
COLORS = {"minimax": "tab:red", "non-saturating": "tab:blue", "least-squares": "tab:green",
          "hinge": "tab:purple", "wgan": "tab:orange", "wgan-gp": "tab:brown", "r1": "tab:cyan"}

#: each method: its variant, loss, D steps per G step, optimiser and the variant's own arguments.
#: The four losses share Algorithm 1, k = 1 and Adam 1e-3; the Wasserstein variants and R1
#: keep their papers' update (WGAN: RMSProp 5e-5, 5 critic steps, clipping 0.01; WGAN-GP:
#: its authors' toy experiments' betas (0.5, 0.9), 5 critic steps and lambda 0.1, with the shared
#: learning rate 1e-3 (their toy code used 1e-4);
#: R1: Adam 1e-3 like the losses, gamma 0.1 for data of this scale).
METHODS = {
    "minimax": dict(variant=GAN, loss="minimax"),
    "non-saturating": dict(variant=GAN, loss="non-saturating"),
    "least-squares": dict(variant=GAN, loss="least-squares"),
    "hinge": dict(variant=GAN, loss="hinge"),
    "wgan": dict(variant=WGAN, k=5, opt=(RMSProp, dict(lr=5e-5)), args=dict(clip=0.01)),
    "wgan-gp": dict(variant=WGANGP, k=5, opt=(Adam, dict(lr=1e-3, betas=(0.5, 0.9))), args=dict(lam=0.1)),
    "r1": dict(variant=R1, loss="non-saturating", args=dict(gamma=0.1)),
}

CENTRES = RADIUS * np.stack([np.cos(2 * np.pi * np.arange(N_MODES) / N_MODES),
                             np.sin(2 * np.pi * np.arange(N_MODES) / N_MODES)], axis=1)


def sample_ring(rng, m):
    """``m`` points of the 8-Gaussian ring, drawn on the host, shape (m, 2)."""
    mode = rng.integers(0, N_MODES, size=m)
    return (CENTRES[mode] + STD * rng.standard_normal((m, 2))).astype(np.float32)


def build_gan(method, device, seed, *, noise_dim=2, hidden=64):
    """The same architecture and initial weights for every method (same seed)."""
    spec = METHODS[method]
    rng = np.random.default_rng([seed, 1])
    G = Sequential([Linear(noise_dim, hidden, init="he", rng=rng), ReLU(),
                    Linear(hidden, hidden, init="he", rng=rng), ReLU(),
                    Linear(hidden, 2, init="glorot", rng=rng)])
    D = Sequential([Linear(2, hidden, init="he", rng=rng), LeakyReLU(0.2),
                    Linear(hidden, hidden, init="he", rng=rng), LeakyReLU(0.2),
                    Linear(hidden, 1, init="glorot", rng=rng)])
    opt, opt_args = spec.get("opt", (Adam, dict(lr=1e-3, betas=(0.5, 0.999))))
    extra = dict(spec.get("args", {}))
    if "loss" in spec:
        extra["loss"] = spec["loss"]
    return spec["variant"](G, D, d_opt=opt(D, **opt_args), g_opt=opt(G, **opt_args),
                           prior=NoisePrior(noise_dim, "normal"), k=spec.get("k", 1), seed=seed, device=device,
                           **extra)


def mode_stats(x):
    """(modes covered, fraction of samples near some mode) for samples ``x`` (n, 2)."""
    dist = np.linalg.norm(x[:, None, :] - CENTRES[None, :, :], axis=2)  # (n, 8)
    near = dist.min(axis=1) < NEAR
    per_mode = np.bincount(dist.argmin(axis=1)[near], minlength=N_MODES)
    return int((per_mode >= COVERED_FRACTION * len(x)).sum()), float(near.mean())


def train(loss, args, device, snapshot_at):
    """Train one GAN; return {iteration: generated samples (host)} and the time taken."""
    start = time.perf_counter()
    gan = build_gan(loss, device, args.seed)
    data_rng = np.random.default_rng([args.seed, 2])  # same data stream for every loss

    def sample_data(m):
        return device.asarray(sample_ring(data_rng, m))

    snaps = {}
    for it in range(1, args.iterations + 1):
        gan.iteration(lambda: sample_data(args.batch))
        if it in snapshot_at:
            snaps[it] = to_numpy(gan.sample(N_EVAL))
    device.synchronize()
    return snaps, time.perf_counter() - start


def draw(results, snapshot_at, real, path):
    names = list(results)
    rows = len(snapshot_at)
    fig = Figure(figsize=(3.0 * len(names) + 0.4, 3.3 * rows + 0.5), dpi=90, layout="constrained")
    axes = np.asarray(fig.subplots(rows, len(names), squeeze=False))
    for col, name in enumerate(names):
        for row, it in enumerate(snapshot_at):
            ax = axes[row, col]
            x = results[name]["snaps"][it]
            covered, near = mode_stats(x)
            ax.scatter(real[:, 0], real[:, 1], s=2, color="0.6", alpha=0.5, lw=0, rasterized=True)
            ax.scatter(x[:N_SHOW, 0], x[:N_SHOW, 1], s=2, color=COLORS.get(name, "tab:red"),
                       alpha=0.5, lw=0, rasterized=True)
            for c in CENTRES:
                ax.add_patch(Circle(c, NEAR, fill=False, lw=0.6, color="black", alpha=0.6))
            ax.set_xlim(-3, 3)
            ax.set_ylim(-3, 3)
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{name}\nmodes covered: {covered}/{N_MODES}, "
                         f"{100 * near:.0f}% near a mode", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"iteration {it}", fontsize=10)
    fig.get_layout_engine().set(h_pad=0.12)  # room for the titles between rows
    fig.suptitle("8 Gaussians on a ring: real (grey) vs generated (coloured)\n"
                 f"circles: radius {NEAR:g} (3 std) around each mode", fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "out", "mixture_2d.png"))
    p.add_argument("--iterations", type=int, default=3000, help="G updates per loss (default 3000)")
    p.add_argument("--methods", "--losses", nargs="+", default=list(METHODS), choices=list(METHODS),
                   metavar="METHOD", help=f"any of {', '.join(METHODS)} (default: all)", dest="losses")
    p.add_argument("--batch", type=int, default=256)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    device = get_device(args.device)
    mid = max(1, args.iterations // 3)
    snapshot_at = sorted({mid, args.iterations})
    print(f"mixture_2d: {args.iterations} iterations per loss on {device}")

    results = {}
    for name in args.losses:
        snaps, seconds = train(name, args, device, snapshot_at)
        results[name] = {"snaps": snaps, "seconds": seconds}
        covered, near = mode_stats(snaps[args.iterations])
        results[name].update(covered=covered, near=near)
        print(f"  {name:<15s} done in {seconds:5.1f} s")

    print(f"\n  {'loss':<15s} {'modes covered':>13s} {'% near a mode':>14s}   (iteration {args.iterations})")
    for name, r in results.items():
        print(f"  {name:<15s} {r['covered']:>9d}/{N_MODES}   {100 * r['near']:>12.1f}%")

    real = sample_ring(np.random.default_rng([args.seed, 3]), N_SHOW)
    draw(results, snapshot_at, real, args.out)
    print(f"\nwrote {args.out}")
    print(f"wall time: {time.perf_counter() - start:.1f} s")
    return results


if __name__ == "__main__":
    raise SystemExit(run_script(main))
