"""The critic's Wasserstein estimate against sample quality over training (docs/wgan.md §7).

For each run (WGAN, WGAN-GP, …) it reads the per-epoch estimates from
``metrics.jsonl`` — ``wasserstein`` (training batches, fresh samples),
``fixed_train_wasserstein`` (100 fixed training images) and ``val_wasserstein``
(100 validation images), the last two against the same fixed samples at the
same critic — and scores every generator snapshot ``G_epoch_NNNN.npz``
with the judge's FID (``-n`` samples against the 10,000 test images), then
draws both against epochs::

    python scripts/wgan_curves.py runs/wgan-gp runs/wgan --out docs/wgan_curves.png

Scores are cached in ``<run>/fid_curve.json``.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.backend import set_cpu_threads  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.data import load_dataset  # noqa: E402
from scratchgan.metrics import fid, judge_outputs  # noqa: E402
from scratchgan.models.judge import load_judge  # noqa: E402
from scratchgan.training.checkpoint import atomic_write_text  # noqa: E402
from scratchgan.training.trainer import gan_from_checkpoint  # noqa: E402


def epoch_rows(run):
    """Per epoch: the mean of the log windows' ``wasserstein`` and ``val_wasserstein``."""
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
    by_epoch = {}
    for r in rows:
        if r.get("kind") == "window" and "wasserstein" in r:
            by_epoch.setdefault(r["epoch"], []).append(r)
    keys = ("wasserstein", "fixed_train_wasserstein", "val_wasserstein")
    return {e: {k: float(np.mean([r[k] for r in rs if k in r])) for k in keys if any(k in r for r in rs)}
            for e, rs in sorted(by_epoch.items())}


def fid_curve(run, n, judge, test_feats, device):
    """FID of every snapshot (cached in ``<run>/fid_curve.json``)."""
    cache_path = os.path.join(run, "fid_curve.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    for path in sorted(glob.glob(os.path.join(run, "G_epoch_*.npz"))):
        epoch = int(re.search(r"G_epoch_(\d+)", path).group(1))
        key = f"{epoch}:{n}"
        if key not in cache:
            gan, _ = gan_from_checkpoint(path, device)
            feats, _ = judge_outputs(judge, gan.generate(n, seed=0))
            cache[key] = {"epoch": epoch, "fid": fid(feats, test_feats)}
            print(f"{run} epoch {epoch}: FID {cache[key]['fid']:.2f}", flush=True)
            atomic_write_text(cache_path, json.dumps(cache, indent=1))
    return sorted((v for k, v in cache.items() if k.endswith(f":{n}")), key=lambda v: v["epoch"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("-n", type=int, default=2000, help="samples per snapshot for FID")
    ap.add_argument("--out", default="wgan_curves.png")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    print(set_cpu_threads(args.threads))
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    judge = load_judge("mnist", "cpu")
    data = load_dataset("mnist", data_dir=args.data_dir)
    test_feats, _ = judge_outputs(judge, data.test)
    fig = Figure(figsize=(10, 3.8), dpi=100)
    a1, a2 = fig.subplots(1, 2)
    for i, run in enumerate(args.runs):
        name = os.path.basename(os.path.normpath(run))
        rows = epoch_rows(run)
        epochs = list(rows)
        if not epochs:  # a run without a critic (R1's D is a classifier): no estimate to draw
            print(f"{run}: no critic estimate in its log; FID only")
        else:
            a1.plot(epochs, [rows[e]["wasserstein"] for e in epochs], color=f"C{i}", label=f"{name}: training batches")
            for key, ls, what in (("fixed_train_wasserstein", ":", "fixed training images"),
                                  ("val_wasserstein", "--", "held-out images")):
                if all(key in rows[e] for e in epochs):
                    a1.plot(epochs, [rows[e][key] for e in epochs], color=f"C{i}", ls=ls, label=f"{name}: {what}")
        curve = fid_curve(run, args.n, judge, test_feats, "cpu")
        a2.plot([c["epoch"] for c in curve], [c["fid"] for c in curve], "o-", color=f"C{i}", label=name)
    a1.set_title("critic's estimate of W(p_data, p_g)")
    a1.set_xlabel("epoch")
    a1.legend(fontsize=8)
    a2.set_title(f"judge FID of G's snapshots ({args.n} samples)")
    a2.set_xlabel("epoch")
    a2.legend(fontsize=8)
    for ax in (a1, a2):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
