"""The ``dcgan`` (or ``dcgan-fc``) preset written in PyTorch eager, scored with scratchgan's judge: a check on our gradients.

If a hand-derived backward were wrong somewhere in the DCGAN networks, a
training run would still run, only worse. This script trains the same
networks with PyTorch's autograd — the same widths, N(0, 0.02) weights and
zero biases, uniform noise on [−1, 1], sigmoid output on [0, 1], real and
fake as two passes through D (each with its own batch statistics), the
non-saturating loss, Adam(2e-4, β = (0.5, 0.999)), minibatches of 128 from the
same 50,000 training images — and prints the judge's FID, Inception score and
precision/recall after every epoch, from 10,000 samples against the 10,000
test images, as ``python -m scratchgan evaluate`` scores a scratchgan run::

    pip install torch==2.13.0                     # only for this comparison
    python scripts/dcgan_torch_reference.py --epochs 1
    python scripts/dcgan_torch_reference.py --epochs 1 --paper-output   # tanh on [-1, 1], normal noise
    python scripts/dcgan_torch_reference.py --epochs 1 --fc             # the dcgan-fc preset's networks
    python scripts/dcgan_torch_reference.py --epochs 1 --fc --lr-g 1e-3 # as train --lr-g 1e-3

``--paper-output`` switches to the DCGAN paper's own choices (tanh output,
data scaled to [−1, 1], z ~ N(0, I)); samples are mapped back to [0, 1] for
the judge. PyTorch is never a dependency of the package.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.cli import run_script  # noqa: E402
from scratchgan.data import load_dataset  # noqa: E402
from scratchgan.metrics.judged import fid, inception_score, judge_outputs, precision_recall  # noqa: E402
from scratchgan.models.judge import load_judge  # noqa: E402


def build(nn, paper_output, fc_units=None):
    """G and D of ``scratchgan.models.dcgan`` at their preset widths (128, 64 / 64, 128);
    ``fc_units`` (1024 for ``dcgan-fc``) adds the hidden Linear → BN layer on each side."""
    g_in = [nn.Linear(100, fc_units), nn.BatchNorm1d(fc_units), nn.ReLU()] if fc_units else []
    d_out = [nn.Linear(128 * 7 * 7, fc_units), nn.BatchNorm1d(fc_units), nn.LeakyReLU(0.2)] if fc_units else []
    G = nn.Sequential(*g_in, nn.Linear(fc_units or 100, 128 * 7 * 7), nn.BatchNorm1d(128 * 7 * 7), nn.ReLU(),
                      nn.Unflatten(1, (128, 7, 7)),
                      nn.ConvTranspose2d(128, 64, 4, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
                      nn.ConvTranspose2d(64, 1, 4, 2, 1), nn.Tanh() if paper_output else nn.Sigmoid())
    D = nn.Sequential(nn.Conv2d(1, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                      nn.Conv2d(64, 128, 4, 2, 1), nn.BatchNorm2d(128), nn.LeakyReLU(0.2),
                      nn.Flatten(), *d_out, nn.Linear(fc_units or 128 * 7 * 7, 1))
    for m in list(G) + list(D):
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            nn.init.zeros_(m.bias)
    return G, D


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--paper-output", action="store_true", help="tanh on [-1, 1] and normal noise")
    ap.add_argument("--fc", action="store_true", help="the dcgan-fc preset's networks (1024-unit layers)")
    ap.add_argument("--lr-g", type=float, default=2e-4, help="G's Adam rate (D's stays 2e-4), as train --lr-g")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        raise SystemExit("this comparison needs PyTorch: pip install torch==2.13.0 (the CPU build)") from None
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    G, D = build(torch.nn, args.paper_output, 1024 if args.fc else None)
    d_opt = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    g_opt = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(0.5, 0.999))

    def noise(m):
        return torch.randn(m, 100) if args.paper_output else torch.rand(m, 100) * 2 - 1

    data = load_dataset("mnist", data_dir=args.data_dir)
    X = torch.from_numpy(data.train.reshape(-1, 1, 28, 28).copy())
    if args.paper_output:
        X = X * 2 - 1
    judge = load_judge("mnist")
    real_feats, _ = judge_outputs(judge, data.test)
    m, start = 128, time.time()
    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(X))
        for i in range(len(X) // m):
            x = X[order[i * m:(i + 1) * m]]
            with torch.no_grad():
                fake = G(noise(m))
            d_opt.zero_grad()
            # −log D(x) − log(1 − D(G(z))) on logits, real and fake as two passes
            (F.softplus(-D(x)).mean() + F.softplus(D(fake)).mean()).backward()
            d_opt.step()
            g_opt.zero_grad()
            F.softplus(-D(G(noise(m)))).mean().backward()  # non-saturating: −log D(G(z))
            g_opt.step()
        G.eval()
        with torch.no_grad():
            samples = torch.cat([G(noise(500)) for _ in range(20)]).numpy()
        G.train()
        if args.paper_output:
            samples = (samples + 1) / 2
        feats, logits = judge_outputs(judge, samples.reshape(len(samples), -1))
        p, r = precision_recall(real_feats, feats)
        print(f"PyTorch epoch {epoch}: FID {fid(feats, real_feats):.1f}  IS {inception_score(logits)[0]:.2f}  "
              f"precision {p:.3f}  recall {r:.3f}  [{time.time() - start:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_script(main))
