"""The pix2pix ablation table and image rows, from finished runs (docs/pix2pix.md §7).

Like the paper's Table 1 (losses) and Figure 4 (images): every run given
translates the same held-out test pairs with the same dropout seed, and is
scored by :func:`scratchgan.metrics.translation.evaluate_translation` — L1,
PSNR, sharpness and the judge's accuracy against the source's label (the
FCN-score analogue), with the judge's accuracy on the real targets as the
"ground truth" row::

    python scripts/pix2pix_ablation.py runs/p2p-l1 runs/p2p-cgan runs/p2p runs/p2p-encdec \\
        --rows docs/pix2pix_rows.png --json runs/p2p-ablation.json

A run is a training folder (its ``checkpoint.npz``) or a checkpoint file. Its
row is named after its loss (from the preset): "L1", "cGAN", "L1 + cGAN", and
"(encoder-decoder)" for a G without skips. The image rows show one test pair
of each class: the input, each run's translation, the target.
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

from scratchgan.backend import get_device, set_cpu_threads, to_numpy  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.metrics.translation import TRANSLATION_METRICS, evaluate_translation  # noqa: E402
from scratchgan.paired import load  # noqa: E402
from scratchgan.training.checkpoint import atomic_path, atomic_write_text, read_checkpoint  # noqa: E402
from scratchgan.training.trainer import gan_from_checkpoint  # noqa: E402


def checkpoint_of(run):
    """``run`` itself if it is a file, else its folder's checkpoint.npz (or partial.npz)."""
    if os.path.isfile(run):
        return run
    for name in ("checkpoint.npz", "partial.npz"):
        path = os.path.join(run, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"{run}: neither a checkpoint file nor a run folder with checkpoint.npz")


def label_of(gan, preset):
    """The row's name: the loss terms G was trained with, and its architecture."""
    if not gan.adversarial:
        loss = "L1"
    elif gan.lambda_l1 == 0:
        loss = "cGAN"
    else:
        loss = "L1 + cGAN"
    arch = "U-Net" if preset.model_args.get("skips", True) else "encoder-decoder"
    return loss, arch


def examples_by_class(labels, n, per_class=1):
    """Indices of the first ``per_class`` pairs of each class among the first ``n``."""
    labels = np.asarray(labels[:n])
    picks = [np.flatnonzero(labels == c)[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(picks)) if picks else np.arange(0)


def save_rows(path, rows, names, title):
    """One row of images per entry of ``rows`` ((k, 32, 32) each), its name on the left."""
    from matplotlib.figure import Figure

    from scratchgan.plots import image_grid

    grid = image_grid(np.concatenate(rows), nrow=len(rows[0]))
    h, w = grid.shape
    left = 150
    fig = Figure(figsize=((w * 3 + left) / 100, (h * 3 + 40) / 100), dpi=100)
    ax = fig.add_axes([left / (w * 3 + left), 0, w * 3 / (w * 3 + left), h * 3 / (h * 3 + 40)])
    ax.imshow(grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    side = rows[0].shape[-1]
    for i, name in enumerate(names):
        label = name.replace(" (", "\n(")  # "L1 + cGAN (encoder-decoder)" on two lines, inside the margin
        ax.text(-4, 1 + i * (side + 1) + side / 2, label, ha="right", va="center", fontsize=9)
    ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")


def main(argv=None):
    p = argparse.ArgumentParser(description="The pix2pix ablation table (L1, PSNR, sharpness, judge accuracy) and "
                                            "rows of input / output / target images, from finished runs.")
    p.add_argument("runs", nargs="+", help="run folders (their checkpoint.npz) or checkpoint files")
    p.add_argument("-n", type=int, default=10000, help="held-out test pairs translated (default: all 10,000)")
    p.add_argument("--seed", type=int, default=0, help="seed of G's dropout, the same for every run")
    p.add_argument("--no-judge", action="store_true", help="skip the judge's accuracy (no judge weights)")
    p.add_argument("--rows", help="save the image rows here (PNG)")
    p.add_argument("--per-class", type=int, default=1, help="examples of each class in the image rows")
    p.add_argument("--json", help="also write the numbers here")
    p.add_argument("--data-dir", help="folder with the dataset's IDX files")
    p.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    p.add_argument("--threads", type=int, help="BLAS threads on the CPU")
    args = p.parse_args(argv)
    if args.n < 1:
        raise ValueError(f"-n must be at least 1, got {args.n}")
    device = get_device(args.device)
    if not device.is_gpu:
        set_cpu_threads(args.threads)
    runs = []
    for run in args.runs:
        path = checkpoint_of(run)
        gan, config = gan_from_checkpoint(path, device)
        if "source" not in gan.needs:
            raise ValueError(f"{path} is a {gan.variant} checkpoint, not a pix2pix one")
        runs.append((path, gan, config))
    datasets = {config.resolved().dataset for _, _, config in runs}
    if len(datasets) != 1:
        raise ValueError(f"the runs were trained on different datasets ({', '.join(sorted(datasets))}); "
                         "a table compares one task")
    data = load(datasets.pop(), data_dir=args.data_dir, data_dir_option="--data-dir DIR")
    judge = None
    metrics = [m for m in TRANSLATION_METRICS if not (args.no_judge and m == "accuracy")]
    if "accuracy" in metrics:
        from scratchgan.models.judge import load_judge

        judge = load_judge(data.base, device)
    n = min(args.n, len(data.test))
    picks = examples_by_class(data.test_labels, n, args.per_class)
    results, rows, names = [], [], []
    for path, gan, config in runs:
        loss, arch = label_of(gan, config.resolved())
        t0 = time.perf_counter()
        gan.seed(args.seed)
        sources = np.asarray(data.test_source[:n]).reshape((n,) + gan.source_shape)
        outputs = to_numpy(gan.generate(n, args.seed, source=sources))
        seconds = time.perf_counter() - t0
        r = evaluate_translation(gan, data, judge, metrics, n=n, outputs=outputs)
        state = read_checkpoint(path)
        epochs = int(state.get("epoch", 0))
        partial = int(state.get("partial_iterations", 0))
        epochs = f"{epochs}" + (f" + {partial} it." if partial else "")
        results.append({"run": path, "preset": config.preset, "loss": loss, "G": arch, "epochs": epochs, **r})
        rows.append(outputs[picks])
        names.append(f"{loss}" + ("" if arch == "U-Net" else f" ({arch})"))
        print(f"scored {path} ({config.preset}): translated in {seconds:.1f} s", file=sys.stderr)

    acc = " judge accuracy ↑ |" if judge is not None else ""
    print(f"{data.name}: {n} held-out pairs, dropout seed {args.seed}; L1 and PSNR on the 28x28 images in [0, 1]\n")
    print(f"| loss | G | epochs | L1 ↓ | PSNR (dB) ↑ | sharpness (1 = real) |{acc}")
    print("|---|---|---|---|---|---|" + ("---|" if judge is not None else ""))
    for r in results:
        line = (f"| {r['loss']} | {r['G']} | {r['epochs']} | {r['l1']:.4f} | {r['psnr']['mean']:.2f} | "
                f"{r['sharpness']:.3f} |")
        print(line + (f" {r['accuracy']['value']:.4f} |" if judge is not None else ""))
    if judge is not None:
        print(f"| ground truth | | | 0 | ∞ | 1.000 | {results[0]['accuracy']['ground_truth']:.4f} |")
    if args.rows:
        source = np.asarray(data.test_source[picks]).reshape(len(picks), 1, 32, 32)
        target = np.asarray(data.test[picks]).reshape(len(picks), 1, 32, 32)
        save_rows(args.rows, [source] + rows + [target], ["input"] + names + ["target"],
                  f"{data.name}: held-out pairs, one per class")
        print(f"\nwrote {args.rows}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"dataset": data.name, "n": n, "seed": args.seed,
                                                 "runs": results}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    sys.exit(run_script(main))
