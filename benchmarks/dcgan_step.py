"""Time a DCGAN-style MNIST training iteration and each convolution: scratchgan vs PyTorch.

The pair (batch 64, 28×28, as issue 10 specifies it)::

    G: z 100 → Linear 1024 → BN → ReLU → Linear 128·7·7 → BN → ReLU → (128, 7, 7)
       → ConvTranspose 4×4 s2 p1 → 64 → BN → ReLU → ConvTranspose 4×4 s2 p1 → 1 → sigmoid
    D: Conv 4×4 s2 p1 → 64 → LeakyReLU 0.2 → Conv 4×4 s2 p1 → 128 → BN → LeakyReLU
       → Linear 1024 → BN → LeakyReLU → Linear 1

One iteration is Algorithm 1 with k = 1 (a D step with real and fake as two
passes, then a G step), the non-saturating loss and Adam(2e-4, β1 = 0.5) — the
same on both sides. Then each convolution's forward + backward alone. Both
print ms, GFLOP/s (2 FLOPs per multiply-add of the products actually needed)
and the ratio scratchgan / PyTorch. Peak resident memory is measured for each
side in its own process (``--only``), the iteration run a few times.

PyTorch is optional: without it only scratchgan is timed. Usage::

    python benchmarks/dcgan_step.py                  # everything, CPU
    python benchmarks/dcgan_step.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import scratchgan  # noqa: E402
from scratchgan import nn  # noqa: E402
from scratchgan.nn import fast  # noqa: E402
from scratchgan.backend import get_device  # noqa: E402
from scratchgan.gan import GAN, NoisePrior  # noqa: E402

BATCH = 64
#: (kind, in, out, kernel, stride, padding, input side) of the four convolutions
CONVS = {
    "G convT 128→64 (7→14)": ("convT", 128, 64, 4, 2, 1, 7),
    "G convT 64→1 (14→28)": ("convT", 64, 1, 4, 2, 1, 14),
    "D conv 1→64 (28→14)": ("conv", 1, 64, 4, 2, 1, 28),
    "D conv 64→128 (14→7)": ("conv", 64, 128, 4, 2, 1, 14),
}


def layer_flops(kind, cin, cout, k, s, p, side, m=BATCH):
    """Forward FLOPs of one convolution (2 per multiply-add); dW and dx cost the same each."""
    if kind == "conv":
        out = (side + 2 * p - k) // s + 1
        return 2 * m * out * out * cout * cin * k * k
    return 2 * m * side * side * cin * cout * k * k  # every input pixel paints a k×k×out patch


def iteration_flops(m=BATCH):
    """Matrix-product FLOPs of one k = 1 iteration (D step: G forward, D forward
    and backward on real and on fake; G step: G forward, D forward, D's input
    gradient, G backward). The first layer of each network needs no input gradient."""
    g = [2 * m * 100 * 1024, 2 * m * 1024 * 6272,
         layer_flops(*CONVS["G convT 128→64 (7→14)"]), layer_flops(*CONVS["G convT 64→1 (14→28)"])]
    d = [layer_flops(*CONVS["D conv 1→64 (28→14)"]), layer_flops(*CONVS["D conv 64→128 (14→7)"]),
         2 * m * 6272 * 1024, 2 * m * 1024 * 1]
    fg, fd = sum(g), sum(d)
    d_step = fg + 2 * (fd + fd + (fd - d[0]))
    g_step = fg + fd + fd + fg + (fg - g[0])
    return d_step + g_step


# ---------------------------------------------------------------------------
def scratchgan_models(seed=0, L=fast):
    """G and D from the fast layers (what training uses), or from ``L=nn``, the reference."""
    rng = np.random.default_rng(seed)
    kw = dict(init="normal", std=0.02, rng=rng)
    nn = L  # noqa: F811 - the same names in either module
    G = nn.Sequential([
        nn.Linear(100, 1024, **kw), nn.BatchNorm1d(1024), nn.ReLU(),
        nn.Linear(1024, 128 * 7 * 7, **kw), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(), nn.Reshape(128, 7, 7),
        nn.ConvTranspose2d(128, 64, 4, 2, 1, **kw), nn.BatchNorm2d(64), nn.ReLU(),
        nn.ConvTranspose2d(64, 1, 4, 2, 1, **kw), nn.Sigmoid()])
    D = nn.Sequential([
        nn.Conv2d(1, 64, 4, 2, 1, **kw), nn.LeakyReLU(0.2),
        nn.Conv2d(64, 128, 4, 2, 1, **kw), nn.BatchNorm2d(128), nn.LeakyReLU(0.2), nn.Flatten(),
        nn.Linear(128 * 7 * 7, 1024, **kw), nn.BatchNorm1d(1024), nn.LeakyReLU(0.2),
        nn.Linear(1024, 1, **kw)])
    return G, D


def scratchgan_iteration(device, seed=0, L=fast):
    G, D = scratchgan_models(seed, L)
    gan = GAN(G, D, L.Adam(D, lr=2e-4, betas=(0.5, 0.999)), L.Adam(G, lr=2e-4, betas=(0.5, 0.999)),
              NoisePrior(100, "uniform"), loss="non-saturating", seed=seed, device=device)
    data = device.asarray(np.random.default_rng(seed).random((10 * BATCH, 1, 28, 28), dtype=np.float32))
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * BATCH:(i + 1) * BATCH]

    return (lambda: gan.iteration(next_batch)), device.synchronize


def scratchgan_conv(name, device):
    kind, cin, cout, k, s, p, side = CONVS[name]
    cls = fast.ConvTranspose2d if kind == "convT" else fast.Conv2d      # the layers training uses
    layer = cls(cin, cout, k, s, p, init="normal", std=0.02, rng=0).to(device)
    x = device.asarray(np.random.default_rng(1).standard_normal((BATCH, cin, side, side)).astype(np.float32))
    dy = device.xp.ones_like(layer.forward(x))

    def step():
        layer.zero_grad()
        layer.forward(x)
        layer.backward(dy)

    return step, device.synchronize


def torch_models(seed=0):
    import torch
    torch.manual_seed(seed)
    T = torch.nn
    G = T.Sequential(T.Linear(100, 1024), T.BatchNorm1d(1024), T.ReLU(), T.Linear(1024, 6272), T.BatchNorm1d(6272),
                     T.ReLU(), T.Unflatten(1, (128, 7, 7)), T.ConvTranspose2d(128, 64, 4, 2, 1), T.BatchNorm2d(64),
                     T.ReLU(), T.ConvTranspose2d(64, 1, 4, 2, 1), T.Sigmoid())
    D = T.Sequential(T.Conv2d(1, 64, 4, 2, 1), T.LeakyReLU(0.2), T.Conv2d(64, 128, 4, 2, 1), T.BatchNorm2d(128),
                     T.LeakyReLU(0.2), T.Flatten(), T.Linear(6272, 1024), T.BatchNorm1d(1024), T.LeakyReLU(0.2),
                     T.Linear(1024, 1))
    return G, D


def torch_iteration(seed=0):
    import torch
    import torch.nn.functional as F
    G, D = torch_models(seed)
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(10 * BATCH, 1, 28, 28)
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + 1) % 10
        x = data[i * BATCH:(i + 1) * BATCH]
        z = torch.rand(BATCH, 100) * 2 - 1
        with torch.no_grad():
            fake = G(z)
        d_opt.zero_grad(set_to_none=False)
        d_loss = F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()   # two passes, as scratchgan
        d_loss.backward()
        d_opt.step()
        for q in D.parameters():
            q.requires_grad_(False)
        g_opt.zero_grad(set_to_none=False)
        F.softplus(-D(G(torch.rand(BATCH, 100) * 2 - 1))).mean().backward()
        g_opt.step()
        for q in D.parameters():
            q.requires_grad_(True)

    return step, (lambda: None)


def torch_conv(name):
    import torch
    kind, cin, cout, k, s, p, side = CONVS[name]
    layer = (torch.nn.ConvTranspose2d if kind == "convT" else torch.nn.Conv2d)(cin, cout, k, s, p)
    x = torch.randn(BATCH, cin, side, side, requires_grad=True)
    dy = torch.ones_like(layer(x))

    def step():
        layer.zero_grad(set_to_none=False)
        x.grad = None
        layer(x).backward(dy)

    return step, (lambda: None)


def preset_iteration(seed=0, name="dcgan"):
    """One iteration of the ``dcgan`` (or ``dcgan-fc``) preset itself (batch 128,
    the widths of models/dcgan.py, Adam 2e-4): what ``train --preset NAME`` runs."""
    from scratchgan.presets import PRESETS, build_gan

    gan = build_gan(PRESETS[name], x_shape=(1, 28, 28), steps_per_epoch=390, seed=seed, device="cpu")
    data = np.random.default_rng(seed).random((10 * 128, 1, 28, 28), dtype=np.float32)
    state = {"i": 0}

    def next_batch():
        i = state["i"] = (state["i"] + 1) % 10
        return data[i * 128:(i + 1) * 128]

    return (lambda: gan.iteration(next_batch)), (lambda: None)


def torch_preset_iteration(seed=0, name="dcgan"):
    """The same preset in PyTorch eager (same layers, BN, Adam, two passes through D)."""
    import torch
    import torch.nn.functional as F
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts"))
    from dcgan_torch_reference import build  # the preset's networks in PyTorch, N(0, 0.02) as ours
    from scratchgan.presets import PRESETS

    torch.manual_seed(seed)
    G, D = build(torch.nn, paper_output=False, fc_units=PRESETS[name].model_args.get("fc_units"))
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.rand(10 * 128, 1, 28, 28)
    state = {"i": 0}

    def step():
        i = state["i"] = (state["i"] + 1) % 10
        x = data[i * 128:(i + 1) * 128]
        with torch.no_grad():
            fake = G(torch.rand(128, 100) * 2 - 1)
        d_opt.zero_grad(set_to_none=False)
        (F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()).backward()
        d_opt.step()
        for q in D.parameters():
            q.requires_grad_(False)
        g_opt.zero_grad(set_to_none=False)
        F.softplus(-D(G(torch.rand(128, 100) * 2 - 1))).mean().backward()
        g_opt.step()
        for q in D.parameters():
            q.requires_grad_(True)

    return step, (lambda: None)


def time_variants(variants, iterations, warmup=3, repeats=5):
    """Median ms per step of each ``{name: (step, sync)}``, timed in interleaved,
    individually warmed blocks (see benchmarks/train_step.py)."""
    for step, sync in variants.values():
        for _ in range(warmup):
            step()
        sync()
    block = max(1, iterations // repeats)
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, (step, sync) in variants.items():
            step()
            sync()
            t0 = time.perf_counter()
            for _ in range(block):
                step()
            sync()
            times[name].append((time.perf_counter() - t0) / block * 1e3)
    return {name: statistics.median(v) for name, v in times.items()}


def peak_memory(which, iterations=5):
    """Peak resident memory (MiB) of a fresh process running ``which``'s iteration."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--only", which, "--iterations",
                          str(iterations)], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def _only(which, iterations):
    """Child process of :func:`peak_memory`: run, then print the peak RSS in MiB."""
    if which == "torch":
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
        step, _ = torch_iteration()
    else:
        step, _ = scratchgan_iteration(get_device("cpu"))
    for _ in range(iterations):
        step()
    # VmHWM, the peak resident set of this process image (getrusage's maxrss
    # would also count the parent's peak: Linux keeps it across exec)
    with open("/proc/self/status") as f:
        hwm = next(line for line in f if line.startswith("VmHWM:"))
    print(int(hwm.split()[1]) / 1024)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iterations", type=int, default=20, help="timed iterations per variant")
    ap.add_argument("--no-torch", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory processes")
    ap.add_argument("--json")
    ap.add_argument("--reference", action="store_true", help="also time the iteration with the reference layers")
    ap.add_argument("--preset", nargs="?", const="dcgan", choices=["dcgan", "dcgan-fc"],
                    help="time the dcgan (or dcgan-fc) preset's iteration (batch 128) instead")
    ap.add_argument("--only", choices=["scratchgan", "torch"], help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.only:
        return _only(args.only, args.iterations)
    device = get_device("cpu")
    try:
        if args.no_torch:
            raise ImportError("--no-torch")
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
        torch_version = torch.__version__
    except ImportError as err:
        torch_version = None
        print(f"PyTorch not available ({err}): timing scratchgan only", file=sys.stderr)

    rows = []
    if args.preset:
        variants = {"scratchgan": preset_iteration(name=args.preset)}
        if torch_version:
            variants["torch"] = torch_preset_iteration(name=args.preset)
        res = time_variants(variants, args.iterations)
        line = f"the {args.preset} preset (batch 128): scratchgan {res['scratchgan']:.1f} ms/iteration, " \
               f"{res['scratchgan'] * 390 / 6e4:.1f} min/epoch of 390 iterations"
        if "torch" in res:
            line += f"; PyTorch eager {res['torch']:.1f} ms ({res['torch'] * 390 / 6e4:.1f} min/epoch); " \
                    f"ratio {res['scratchgan'] / res['torch']:.2f}"
        print(line)
        return res
    variants = {"scratchgan": scratchgan_iteration(device)}
    if torch_version:
        variants["torch"] = torch_iteration()
    if args.reference:
        variants["reference"] = scratchgan_iteration(device, L=nn)
    res = time_variants(variants, args.iterations)
    rows.append({"what": "whole iteration", "gflop": iteration_flops() / 1e9, **res})
    for name, spec in CONVS.items():
        variants = {"scratchgan": scratchgan_conv(name, device)}
        if torch_version:
            variants["torch"] = torch_conv(name)
        res = time_variants(variants, args.iterations * 2)
        rows.append({"what": name + " fwd+bwd", "gflop": 3 * layer_flops(*spec) / 1e9, **res})
    memory = {}
    if not args.no_memory:
        memory["scratchgan"] = peak_memory("scratchgan")
        if torch_version:
            memory["torch"] = peak_memory("torch")

    print(f"DCGAN-style MNIST pair, batch {BATCH}, CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()}), "
          f"numpy {np.__version__}, torch {torch_version}")
    head = f"{'':32s} {'GFLOP':>7s} {'scratchgan ms':>14s} {'GFLOP/s':>8s}"
    if torch_version:
        head += f" {'torch ms':>9s} {'GFLOP/s':>8s} {'ratio':>6s}"
    print(head)
    for r in rows:
        line = f"{r['what']:32s} {r['gflop']:7.3f} {r['scratchgan']:14.2f} {r['gflop'] / r['scratchgan'] * 1e3:8.1f}"
        if torch_version:
            r["ratio"] = r["scratchgan"] / r["torch"]
            line += f" {r['torch']:9.2f} {r['gflop'] / r['torch'] * 1e3:8.1f} {r['ratio']:6.2f}"
        if "reference" in r:
            line += f"   (reference layers: {r['reference']:.2f} ms)"
        print(line)
    if memory:
        line = f"peak resident memory (own process): scratchgan {memory['scratchgan']:.0f} MiB"
        if "torch" in memory:
            line += f", torch {memory['torch']:.0f} MiB, ratio {memory['scratchgan'] / memory['torch']:.2f}"
        print(line)
    print("ratio = scratchgan time / PyTorch time (below 1: scratchgan is faster)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "memory_mib": memory, "torch": torch_version, "numpy": np.__version__,
                       "scratchgan": scratchgan.__version__}, f, indent=2)
    return rows


if __name__ == "__main__":
    main()
