"""Time one WGAN-GP generator iteration: scratchgan's hand-derived second order vs PyTorch's double backward.

One generator iteration of the ``wgan-gp`` preset (docs/wgan.md §2–§3): 5 critic
steps — each the Wasserstein terms on a real and a generated batch plus the
gradient penalty at random interpolates, whose parameter gradient needs the
derivative of a gradient — then one generator step. Batch 64, the WGAN-GP
authors' MNIST critic at DIM = 32, Adam(1e-4, 0, 0.9). PyTorch computes the
penalty's gradient with ``torch.autograd.grad(..., create_graph=True)`` and a
second backward pass; scratchgan with :func:`scratchgan.nn.second_order.penalty_backward`.
Both are timed in the same run (interleaved, individually warmed blocks,
medians). PyTorch is optional::

    python benchmarks/wgan_gp_step.py
    python benchmarks/wgan_gp_step.py --threads 1     # one core each
    python benchmarks/wgan_gp_step.py --batch-split 2 # scratchgan: 2 slices of the batch on 2 threads,
                                                      # one BLAS thread each; PyTorch: 2 threads
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

from dcgan_step import time_variants  # noqa: E402
from scratchgan.backend import get_device, set_cpu_threads  # noqa: E402
from scratchgan.cli import _positive_int  # noqa: E402
from scratchgan.presets import PRESETS, build_gan  # noqa: E402

BATCH, DIM, NOISE = 64, 32, 128


def scratchgan_iteration(seed=0, batch_split=None):
    gan = build_gan(PRESETS["wgan-gp"], x_shape=(1, 28, 28), steps_per_epoch=100, seed=seed, device="cpu",
                    batch_split=batch_split)
    data = np.random.default_rng(seed).random((10 * BATCH, 1, 28, 28), dtype=np.float32)
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * BATCH:(i + 1) * BATCH]

    return (lambda: gan.iteration(next_batch)), (lambda: None)


def torch_iteration(seed=0):
    import torch
    T = torch.nn
    torch.manual_seed(seed)
    D = T.Sequential(T.Conv2d(1, DIM, 5, 2, 2), T.LeakyReLU(0.2), T.Conv2d(DIM, 2 * DIM, 5, 2, 2), T.LeakyReLU(0.2),
                     T.Conv2d(2 * DIM, 4 * DIM, 5, 2, 2), T.LeakyReLU(0.2), T.Flatten(), T.Linear(4 * DIM * 16, 1))
    G = T.Sequential(T.Linear(NOISE, 4 * DIM * 49), T.ReLU(), T.Unflatten(1, (4 * DIM, 7, 7)),
                     T.ConvTranspose2d(4 * DIM, 2 * DIM, 4, 2, 1), T.ReLU(), T.ConvTranspose2d(2 * DIM, 1, 4, 2, 1),
                     T.Sigmoid())
    d_opt = torch.optim.Adam(D.parameters(), lr=1e-4, betas=(0.0, 0.9))
    g_opt = torch.optim.Adam(G.parameters(), lr=1e-4, betas=(0.0, 0.9))
    data = torch.rand(10 * BATCH, 1, 28, 28)
    state = {"i": 0}

    def step():
        for _ in range(5):  # critic steps
            i = state["i"] = (state["i"] + 1) % 10
            x = data[i * BATCH:(i + 1) * BATCH]
            with torch.no_grad():
                fake = G(torch.randn(BATCH, NOISE))
            d_opt.zero_grad(set_to_none=False)
            loss = D(fake).mean() - D(x).mean()
            eps = torch.rand(BATCH, 1, 1, 1)
            x_hat = (eps * x + (1 - eps) * fake).requires_grad_(True)
            g, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
            norm = torch.sqrt((g * g).flatten(1).sum(1) + 1e-12)
            loss = loss + 10.0 * ((norm - 1) ** 2).mean()
            loss.backward()
            d_opt.step()
        for q in D.parameters():
            q.requires_grad_(False)
        g_opt.zero_grad(set_to_none=False)
        (-D(G(torch.randn(BATCH, NOISE))).mean()).backward()
        g_opt.step()
        for q in D.parameters():
            q.requires_grad_(True)

    return step, (lambda: None)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--threads", type=_positive_int,
                    help="NumPy's BLAS threads and PyTorch's threads (default: every core for PyTorch; NumPy's "
                         "BLAS as the environment sets it)")
    ap.add_argument("--batch-split", type=_positive_int, metavar="N",
                    help="scratchgan runs G and D on N slices of each batch in N threads, with one BLAS thread "
                         "each (train --batch-split); PyTorch gets N threads unless --threads says otherwise")
    args = ap.parse_args(argv)
    split = args.batch_split if args.batch_split and args.batch_split > 1 else None
    if args.threads and split:
        ap.error("--threads and --batch-split: give one (--batch-split N runs NumPy's BLAS at one thread)")
    if args.threads or split:
        set_cpu_threads(1 if split else args.threads)
    threads = args.threads or split or os.cpu_count() or 1
    variants = {"scratchgan": scratchgan_iteration(batch_split=split)}
    torch_version = None
    if not args.no_torch:
        try:
            import torch
            torch.set_num_threads(threads)
            torch_version = torch.__version__
            variants["torch"] = torch_iteration()
        except ImportError as err:
            print(f"PyTorch not available ({err}): timing scratchgan only", file=sys.stderr)
    res = time_variants(variants, args.iterations, warmup=2)
    print(f"one WGAN-GP generator iteration (5 critic steps with the penalty + 1 G step), batch {BATCH}, "
          f"DIM {DIM}, CPU ({os.cpu_count()} cores, {threads} thread{'s' if threads != 1 else ''}"
          f"{f'; scratchgan: {split} slices of the batch, one BLAS thread each' if split else ''}), "
          f"numpy {np.__version__}, torch {torch_version}")
    line = f"scratchgan {res['scratchgan']:.1f} ms"
    if "torch" in res:
        line += f"   PyTorch eager (double backward) {res['torch']:.1f} ms   ratio {res['scratchgan'] / res['torch']:.2f}"
    print(line)
    return res


if __name__ == "__main__":
    main()
