"""Time one training iteration of the paper's MNIST GAN: scratchgan vs PyTorch.

The iteration is Algorithm 1 with k = 1 (one D step on m real and m fake
images, then one G step on m fresh noise vectors), non-saturating G loss,
momentum SGD, dropout in D — the paper's model (G 100→1200→1200→784,
D maxout 240×5 twice). Its matrix products cost 35,667,840·m FLOPs
(2·M·N·K for every forward, input-gradient and weight-gradient product
actually needed), 3.567 GFLOP at m = 100.

PyTorch is optional: when ``import torch`` fails its columns are skipped.
The variants are timed in interleaved blocks, medians reported. On the
GPU PyTorch runs both eagerly and with the whole iteration captured in one CUDA
graph (noise and dropout still change on every replay).

Usage::

    python benchmarks/train_step.py                       # CPU, m = 100 and 1000
    python benchmarks/train_step.py --device gpu --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import scratchgan  # noqa: E402
from scratchgan import nn  # noqa: E402
from scratchgan.backend import get_device  # noqa: E402
from scratchgan.gan import GAN, NoisePrior  # noqa: E402
from scratchgan.models.paper_mlp import build_discriminator, build_generator  # noqa: E402
from scratchgan.nn import fast  # noqa: E402

FLOPS_PER_SAMPLE = 35_667_840


def flops_per_iteration(m, noise=100, g_hidden=(1200, 1200), d_in=784, d_units=240, d_pieces=5):
    """Matrix-product FLOPs of one alternating k = 1 iteration (see module docstring)."""
    g_dims = [noise, *g_hidden, d_in]
    g_w = [a * b for a, b in zip(g_dims[:-1], g_dims[1:])]
    d_w = [d_in * d_units * d_pieces, d_units * d_units * d_pieces, d_units]
    fwd_g = 2 * m * sum(g_w)
    d_step = fwd_g + 2 * (2 * m) * sum(d_w) * 2 + 2 * (2 * m) * sum(d_w[1:])  # fwd, dW, dx (not layer 0)
    g_step = fwd_g + 2 * m * sum(d_w) * 2 + 2 * m * sum(g_w) + 2 * m * sum(g_w[1:])
    return d_step + g_step


# ---------------------------------------------------------------------------
# scratchgan
# ---------------------------------------------------------------------------
def scratchgan_iteration(m, device, seed=0, fast_layers=True):
    """One Algorithm-1 iteration of the paper's model: the fast layers and SGD
    (what training uses), or the reference ones (``fast_layers=False``)."""
    rng = np.random.default_rng(seed)
    G = build_generator(784, rng=rng, fast_layers=fast_layers)
    D = build_discriminator(784, rng=rng, fast_layers=fast_layers)
    opt = fast.SGD if fast_layers else nn.SGD
    gan = GAN(G, D, opt(D, lr=0.1, momentum=0.5), opt(G, lr=0.1, momentum=0.5),
              NoisePrior(100, "uniform-sqrt3"), loss="non-saturating", k=1, seed=seed, device=device)
    data = device.asarray(rng.random((10 * m, 784), dtype=np.float32))
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * m:(i + 1) * m]

    def step():
        gan.iteration(next_batch)

    return step, device.synchronize


# ---------------------------------------------------------------------------
# PyTorch (optional)
# ---------------------------------------------------------------------------
def torch_iteration(m, device_kind, graph=False, seed=0, tf32=False):
    import torch
    import torch.nn.functional as F

    dev = torch.device("cuda" if device_kind == "gpu" else "cpu")
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.manual_seed(seed)

    class Maxout(torch.nn.Module):
        def __init__(self, n_in, units, pieces):
            super().__init__()
            self.lin = torch.nn.Linear(n_in, units * pieces)
            self.units, self.pieces = units, pieces

        def forward(self, x):
            return self.lin(x).view(x.shape[0], self.units, self.pieces).amax(dim=2)

    class Drop(torch.nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            return F.dropout(x, self.p, training=True)

    G = torch.nn.Sequential(torch.nn.Linear(100, 1200), torch.nn.ReLU(), torch.nn.Linear(1200, 1200),
                            torch.nn.ReLU(), torch.nn.Linear(1200, 784), torch.nn.Sigmoid()).to(dev)
    D = torch.nn.Sequential(Drop(0.2), Maxout(784, 240, 5), Drop(0.5), Maxout(240, 240, 5), Drop(0.5),
                            torch.nn.Linear(240, 1)).to(dev)
    d_opt = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    g_opt = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)
    data = torch.rand(10 * m, 784, device=dev)
    x_static = data[:m].clone()
    half = math.sqrt(3.0)

    def body(x):
        # D step (lines 3-5): no G gradients, no gradient for the data
        z = torch.rand(m, 100, device=dev) * (2 * half) - half
        with torch.no_grad():
            fake = G(z)
        # real and fake through D as two passes, as scratchgan's Algorithm 1 does
        d_loss = F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()
        d_opt.zero_grad(set_to_none=False)
        d_loss.backward()
        d_opt.step()
        # G step (lines 7-8): gradient through D, D's weights frozen
        for q in D.parameters():
            q.requires_grad_(False)
        z = torch.rand(m, 100, device=dev) * (2 * half) - half
        g_loss = F.softplus(-D(G(z))).mean()
        g_opt.zero_grad(set_to_none=False)
        g_loss.backward()
        g_opt.step()
        for q in D.parameters():
            q.requires_grad_(True)

    if not graph:
        state = {"i": 0}

        def step():
            i = state["i"] = (state["i"] + 1) % 10
            body(data[i * m:(i + 1) * m])

        sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
        return step, sync

    # Whole-iteration CUDA graph: warm up on a side stream, capture, replay.
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):
            body(x_static)
    torch.cuda.current_stream().wait_stream(s)
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        body(x_static)
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + 1) % 10
        x_static.copy_(data[i * m:(i + 1) * m])
        g.replay()

    return step, torch.cuda.synchronize


# ---------------------------------------------------------------------------
def time_variants(variants, iterations, warmup, repeats=5):
    """Median ms per step of each variant ``{name: (step, sync)}``.

    The variants are timed in *interleaved* blocks (A, B, C, A, B, C, …) so
    that slow drifts of the machine (clock boost, other load) affect them
    alike. Each timed block of ``iterations // repeats`` steps is preceded by
    two untimed steps of the same variant, so no variant pays for waking its
    threads or refilling caches after another ran.
    """
    for step, sync in variants.values():
        for _ in range(warmup):
            step()
        sync()
    block = max(1, iterations // repeats)
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (step, sync) in variants.items():
            step()
            step()
            sync()
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            sync()
            times[name].append((time.perf_counter() - t0) / block * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu"])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--iterations", type=int, default=50, help="timed iterations per variant")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    ap.add_argument("--tf32", action="store_true", help="let PyTorch use TF32 (off by default)")
    ap.add_argument("--json", help="write the table here")
    ap.add_argument("--reference", action="store_true",
                    help="also time the reference (textbook) layers and SGD, without the fast module")
    args = ap.parse_args(argv)

    device = get_device(args.device)
    try:
        if args.no_torch:
            raise ImportError("--no-torch")
        import torch
        torch_version = torch.__version__
        if args.device == "cpu":
            torch.set_num_threads(os.cpu_count() or 1)
    except ImportError as err:
        torch, torch_version = None, None
        print(f"PyTorch not available ({err}): timing scratchgan only", file=sys.stderr)

    rows = []
    for m in args.batch_sizes:
        gflop = flops_per_iteration(m) / 1e9
        assert flops_per_iteration(m) == FLOPS_PER_SAMPLE * m
        iters = args.iterations if m <= 100 else max(5, args.iterations // 5)
        res = {"m": m, "gflop": gflop}
        variants = {"scratchgan_ms": scratchgan_iteration(m, device)}
        if args.reference:
            variants["reference_ms"] = scratchgan_iteration(m, device, fast_layers=False)
        if torch is not None:
            variants["torch_eager_ms"] = torch_iteration(m, args.device)
            if args.device == "gpu":
                variants["torch_graph_ms"] = torch_iteration(m, "gpu", graph=True, tf32=args.tf32)
        res.update(time_variants(variants, iters, args.warmup))
        rows.append(res)

    info = {"machine": platform.machine(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "device": device.kind, "numpy": np.__version__,
            "scratchgan": scratchgan.__version__, "torch": torch_version}
    print(f"one training iteration of the paper's MNIST GAN (k=1, alternating), device={device.kind}, "
          f"{info['cpus']} CPUs, numpy {np.__version__}, torch {torch_version}")
    header = f"{'m':>5} {'GFLOP':>7} {'scratchgan ms':>14} {'GFLOP/s':>8}"
    if torch is not None:
        header += f" {'torch eager ms':>15} {'ratio':>6}"
        if args.device == "gpu":
            header += f" {'torch graph ms':>15} {'ratio':>6}"
    if args.reference:
        header += f" {'reference ms':>13} {'fast/ref':>8}"
    print(header)
    for r in rows:
        line = f"{r['m']:>5} {r['gflop']:>7.3f} {r['scratchgan_ms']:>14.2f} {r['gflop'] / r['scratchgan_ms'] * 1e3:>8.1f}"
        if "torch_eager_ms" in r:
            r["ratio_eager"] = r["scratchgan_ms"] / r["torch_eager_ms"]
            line += f" {r['torch_eager_ms']:>15.2f} {r['ratio_eager']:>6.2f}"
        if "torch_graph_ms" in r:
            r["ratio_graph"] = r["scratchgan_ms"] / r["torch_graph_ms"]
            line += f" {r['torch_graph_ms']:>15.2f} {r['ratio_graph']:>6.2f}"
        if "reference_ms" in r:
            r["ratio_reference"] = r["scratchgan_ms"] / r["reference_ms"]
            line += f" {r['reference_ms']:>13.2f} {r['ratio_reference']:>8.2f}"
        print(line)
    print("ratio = scratchgan time / PyTorch time (below 1: scratchgan is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
