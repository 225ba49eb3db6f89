"""What each metric catches: every metric on real data, trained generators and degenerate ones.

Rows (10,000 "samples" each, all scored against the 10,000 MNIST test images):

* real data: 10,000 training images — the reference;
* trained generators: any checkpoints or snapshots given with ``--runs``;
* **blurry class means**: the mean image of each of the ten classes, drawn
  uniformly — every class, no detail, no variety within a class;
* **10 memorised images**: ten training images, each drawn 1,000 times;
* **k-means centroids**: ``--kmeans`` centroids of the 50,000 training
  images, each drawn equally often — Theis, van den Oord & Bethge (2016) showed
  that centroids beat real data on the Parzen estimate.

Every row is in random order, as a generator would deliver it: the
Inception score averages over 10 consecutive splits, and a set sorted by
image would give each split one image (a score of 1 whatever the classes).

::

    python scripts/metric_table.py --runs runs/paper/G_epoch_0025.npz runs/paper/checkpoint.npz \\
        --json runs/metric_table.json --markdown runs/metric_table.md

Prints a Markdown table; writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.backend import set_cpu_threads  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.data import load_dataset  # noqa: E402
from scratchgan.metrics.evaluate import evaluate_samples  # noqa: E402
from scratchgan.models.judge import load_judge  # noqa: E402
from scratchgan.training.checkpoint import atomic_write_text  # noqa: E402
from scratchgan.training.trainer import gan_from_checkpoint  # noqa: E402


def kmeans(x, k, iterations=20, seed=0):
    """Lloyd's k-means on the rows of ``x`` (float32), vectorised: ``k`` centroids."""
    rng = np.random.default_rng(seed)
    centres = x[rng.choice(len(x), k, replace=False)].copy()
    x_sq = (x * x).sum(axis=1)
    for _ in range(iterations):
        d = x_sq[:, None] - 2 * x @ centres.T + (centres * centres).sum(axis=1)[None, :]
        assign = d.argmin(axis=1)
        counts = np.bincount(assign, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, assign, x)
        alive = counts > 0
        centres[alive] = sums[alive] / counts[alive, None]
    return centres


def degenerate_sets(data, n, k, seed=0):
    """The three degenerate "generators" as sample arrays (n, 784)."""
    rng = np.random.default_rng(seed)
    means = np.stack([data.train[data.train_labels == c].mean(axis=0) for c in range(10)])
    memorised = data.train[rng.choice(len(data.train), 10, replace=False)]
    centres = kmeans(data.train, k, seed=seed)
    return {
        "blurry class means (10 images)": means[rng.integers(0, 10, n)],
        "10 memorised training images": rng.permutation(np.repeat(memorised, n // 10, axis=0)),
        f"k-means centroids (k = {k})": rng.permutation(np.repeat(centres, -(-n // k), axis=0)[:n]),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", nargs="*", default=[], help="checkpoints or G snapshots to include")
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--kmeans", type=int, default=1000, help="centroids of the k-means row")
    ap.add_argument("--json")
    ap.add_argument("--markdown")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--data-dir")
    args = ap.parse_args(argv)
    print(set_cpu_threads(args.threads), file=sys.stderr)
    data = load_dataset("mnist", data_dir=args.data_dir)
    judge = load_judge("mnist", "cpu")
    rows = {"real data: 10,000 training images": data.train[: args.n]}
    for path in args.runs:
        gan, config = gan_from_checkpoint(path, "cpu")
        rows[f"{config.preset} preset, {os.path.relpath(path)}"] = gan.generate(args.n, seed=0)
    t0 = time.perf_counter()
    rows.update(degenerate_sets(data, args.n, args.kmeans))
    print(f"k-means and class means: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    results = {}
    for name, samples in rows.items():
        t0 = time.perf_counter()
        results[name] = evaluate_samples(np.asarray(samples, np.float32), data, judge)
        results[name]["wall_s"] = round(time.perf_counter() - t0, 1)
        print(f"{name}: {results[name]['wall_s']} s {results[name]['seconds']}", file=sys.stderr)
    lines = ["| samples | FID ↓ | IS ↑ | classes covered | KL to uniform | precision | recall | Parzen ↑ |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['fid']['value']:.2f} | {r['is']['mean']:.2f} | {r['modes']['covered']}/10 | "
                     f"{r['modes']['kl_to_uniform']:.3f} | {r['precision']['value']:.3f} | {r['recall']['value']:.3f} | "
                     f"{r['parzen']['mean']:.1f} ± {r['parzen']['std_err']:.1f} |")
    floor = next(iter(results.values()))["fid"]["real_floor"]
    table = "\n".join(lines) + f"\n\nFID's real-data floor (10,000 training vs 10,000 test images): {floor:.2f}."
    print(table)
    if args.markdown:
        atomic_write_text(args.markdown, table + "\n")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
