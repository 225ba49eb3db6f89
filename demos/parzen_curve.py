"""Parzen-window log-likelihood against training epochs, beside the paper's Table 1.

Evaluates the generator snapshots (``G_epoch_NNNN.npz``) of a training run
with the paper's protocol (``scratchgan.metrics.parzen_evaluate``: 10,000
samples, σ chosen on the first 1,000 validation images, all 10,000 test
images) and plots the curve with Table 1's rows as horizontal lines::

    python demos/parzen_curve.py runs/paper runs/alt --every 25 --out docs/parzen_curve.png

A conditional run (``--preset cgan``, ``cdcgan``) is scored with 1,000 samples
of each class, the conditional GAN paper's protocol (docs/cgan.md §7), beside
that paper's 132. Results are cached in ``<run>/parzen.json`` so a second call only evaluates
new snapshots.
"""

import argparse
import glob
import json
import os
import re
import time


from scratchgan.cli import run_script
from scratchgan.data import load_dataset
from scratchgan.metrics import parzen_evaluate
from scratchgan.training.trainer import gan_from_checkpoint

TABLE_1 = {"adversarial nets (paper)": 225, "Deep GSN": 214, "DBN": 138, "stacked CAE": 121}
CGAN_PAPER = 132  # Mirza & Osindero 2014, Table 1: conditional adversarial nets, 132 ± 1.8
COLORS = ("C3", "C2", "C4", "C5", "C6")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="training output directories (one curve each)")
    ap.add_argument("--every", type=int, default=25, help="evaluate every N-th epoch's snapshot")
    ap.add_argument("--n-test", type=int, default=10000)
    ap.add_argument("--real", type=float, default=None,
                    help="Parzen score of real training images, drawn as a reference line")
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--out", default=None, help="PNG (default: <first run>/parzen_curve.png)")
    ap.add_argument("--data-dir", help="folder with the dataset's files (default: as the run found them)")
    args = ap.parse_args(argv)
    curves = [(run, evaluate_run(run, args)) for run in args.runs]
    plot(curves, args)


def evaluate_run(run, args):
    """Evaluate the run's snapshots (cached in ``<run>/parzen.json``); returns
    ``(label, rows)``."""
    cache_path = os.path.join(run, "parzen.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    snapshots = sorted(glob.glob(os.path.join(run, "G_epoch_*.npz")))
    if not snapshots:
        raise ValueError(f"no generator snapshots (G_epoch_NNNN.npz) in {run}; train with --snapshot-every N")
    epochs = [int(re.search(r"G_epoch_(\d+)", path).group(1)) for path in snapshots]
    if not any(e % args.every == 0 for e in epochs):
        raise ValueError(f"{run} has snapshots of epochs {', '.join(map(str, epochs))}, and --every "
                         f"{args.every} skips all of them; try --every {min(epochs) if min(epochs) > 0 else 1}")
    data = None
    for path, epoch in zip(snapshots, epochs):
        key = f"{epoch}:{args.n_test}"
        if epoch % args.every or key in cache:
            continue
        t0 = time.perf_counter()
        gan, config = gan_from_checkpoint(path, args.device)
        if data is None:
            data = load_dataset(config.resolved().dataset, data_dir=args.data_dir or config.data_dir)
        # the same 10,000 draws as G(prior.sample(10000, default_rng(0))); a conditional G gets 1,000 per class
        conditions = {"labels": gan.balanced_labels(10000)} if "labels" in gan.needs else {}
        samples = gan.generate(10000, 0, **conditions)
        r = parzen_evaluate(samples.reshape(10000, -1), gan.device.asarray(data.valid[:1000]),
                            gan.device.asarray(data.test[: args.n_test]), progress=False)
        cache[key] = {"epoch": epoch, "mean": r.mean, "std_err": r.std_err, "sigma": r.sigma}
        print(f"epoch {epoch:4d}: {r.mean:7.1f} ± {r.std_err:.1f}  (sigma {r.sigma:.3f}, "
              f"{time.perf_counter() - t0:.0f} s)")
        with open(cache_path, "w") as f:
            json.dump(cache, f, indent=1)

    rows = sorted((v for k, v in cache.items() if k.endswith(f":{args.n_test}")
                   and v["epoch"] % args.every == 0), key=lambda v: v["epoch"])
    with open(os.path.join(run, "config.json")) as f:
        saved = json.load(f)
    r = saved["resolved"]
    variant = r.get("variant", r.get("update"))  # scratchgan 0.1 called it "update"
    dataset = r.get("dataset") or saved["config"].get("dataset", "mnist")
    return f"{os.path.basename(os.path.normpath(run))}: {variant}, {r['loss']}", rows, dataset


def plot(curves, args):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    datasets = sorted({dataset for _, (_, _, dataset) in curves})
    fig = Figure(figsize=(9, 4.2), dpi=110)
    ax = fig.add_subplot()
    for i, (_, (label, rows, _)) in enumerate(curves):
        ax.errorbar([r["epoch"] for r in rows], [r["mean"] for r in rows],
                    yerr=[r["std_err"] for r in rows], marker="o", ms=3, color=f"C{i}", label=label)
    if datasets == ["mnist"]:  # Table 1 is about MNIST
        table = dict(TABLE_1)
        if any(": cgan," in label for _, (label, _, _) in curves):
            table["conditional adversarial nets (cGAN paper)"] = CGAN_PAPER
        for (name, value), color in zip(table.items(), COLORS):
            ax.axhline(value, ls="--", lw=1, color=color, label=f"{name}: {value}")
    if args.real is not None:
        ax.axhline(args.real, ls=":", lw=1.5, color="k", label=f"10,000 real training images: {args.real:.0f}")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("Parzen log-likelihood (nats)")
    names = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
    ax.set_title(f"{' and '.join(names.get(d, d) for d in datasets)} test set, the paper's Parzen protocol")
    lowest = min(r["mean"] for _, (_, rows, _) in curves for r in rows)
    ax.set_ylim(bottom=min(0, lowest - 10))
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot, not on the curve
    fig.tight_layout()
    out = args.out or os.path.join(args.runs[0], "parzen_curve.png")
    fig.savefig(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
