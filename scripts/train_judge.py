"""Train the judge classifier of a dataset with scratchgan, and ship its weights.

The judge (``scratchgan/models/judge.py``) is a small convolutional network
trained here on the 60,000 training images (random shifts of up to 2 pixels;
horizontal flips too for Fashion-MNIST) with softmax cross-entropy and Adam;
the learning rate halves every few epochs. Its test accuracy is measured on the
10,000 test images after the weights are rounded to float16, as shipped. The
weights go to ``scratchgan/judges/<dataset>.f16`` and the manifest
``scratchgan/judges/judges.json`` records their shapes, SHA-256, accuracy,
the command and the time::

    python scripts/train_judge.py --dataset mnist --epochs 12
    python scripts/train_judge.py --dataset fashion-mnist --epochs 15

Anyone can rerun it; the result depends on the seed and the machine's floating
point only through rounding.
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

from scratchgan.backend import get_device, set_cpu_threads  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.data import canonical_name, load_dataset  # noqa: E402
from scratchgan.models.judge import WEIGHTS, build_judge, load_judge, save_judge_weights  # noqa: E402
from scratchgan.nn import fast, losses  # noqa: E402
from scratchgan.training.checkpoint import atomic_write_text  # noqa: E402


def augment(x, rng, shift=2, flip=False):
    """Random translations by up to ``shift`` pixels (zero padding), and random
    horizontal flips, for a batch (N, 1, 28, 28), vectorised (one gather)."""
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (shift, shift), (shift, shift)))
    dy, dx = rng.integers(0, 2 * shift + 1, n), rng.integers(0, 2 * shift + 1, n)
    rows = dy[:, None] + np.arange(h)[None, :]
    cols = dx[:, None] + np.arange(w)[None, :]
    if flip:
        cols = np.where(rng.random(n)[:, None] < 0.5, cols[:, ::-1], cols)
    return padded[np.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]][:, None]


def accuracy(judge, images, labels, device, batch=1000):
    """Fraction of ``images`` (N, 1, 28, 28) whose arg-max logit is the label."""
    right = 0
    for i in range(0, len(images), batch):
        logits = judge.forward(device.asarray(images[i:i + batch]), train=False)
        right += int((np.asarray(logits.argmax(axis=1).get() if hasattr(logits, "get") else logits.argmax(axis=1))
                      == labels[i:i + batch]).sum())
    return right / len(images)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--halve-every", type=int, default=4, help="epochs between halvings of the learning rate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data-dir")
    ap.add_argument("--out", default=str(WEIGHTS), help="where the weights and judges.json go")
    args = ap.parse_args(argv)
    name = canonical_name(args.dataset)
    device = get_device(args.device)
    print(set_cpu_threads(args.threads) if not device.is_gpu else "GPU", flush=True)
    data = load_dataset(name, data_dir=args.data_dir, split="full")
    train_x = data.train.reshape(-1, 1, 28, 28)
    test_x = data.test.reshape(-1, 1, 28, 28)
    train_y, test_y = data.train_labels.astype(np.int64), data.test_labels.astype(np.int64)

    rng = np.random.default_rng(args.seed)
    judge = build_judge(rng).to(device)
    judge.set_rng(np.random.default_rng(args.seed + 1) if not device.is_gpu else device.rng(args.seed + 1))
    opt = fast.Adam(judge, lr=lambda t: args.lr * 0.5 ** (t // (args.halve_every * steps)), betas=(0.9, 0.999))
    steps = len(train_x) // args.batch_size
    t0 = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        order = rng.permutation(len(train_x))
        total = 0.0
        for i in range(steps):
            idx = order[i * args.batch_size:(i + 1) * args.batch_size]
            x = device.asarray(augment(train_x[idx], rng, flip=name == "fashion-mnist"))
            y = device.asarray(train_y[idx])
            judge.zero_grad()
            value, dlogits = losses.softmax_cross_entropy(judge.forward(x), y)
            judge.backward(dlogits, need_dx=False)
            opt.step()
            total += float(value) if i % 50 == 0 else 0.0
        acc = accuracy(judge, test_x, test_y, device)
        print(f"epoch {epoch}: loss {total / len(range(0, steps, 50)):.4f}  test accuracy {100 * acc:.2f} %  "
              f"[{time.perf_counter() - t0:.0f} s]", flush=True)
    seconds = time.perf_counter() - t0

    os.makedirs(args.out, exist_ok=True)
    entry = save_judge_weights(judge, name, args.out, epochs=args.epochs, seed=args.seed,
                               train_seconds=round(seconds), command="python scripts/train_judge.py " +
                               " ".join(argv if argv is not None else sys.argv[1:]))
    manifest_path = os.path.join(args.out, "judges.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {}
    manifest[name] = entry
    atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
    # the shipped (float16) weights, loaded back and checked
    shipped = load_judge(name, device) if os.path.abspath(args.out) == os.path.abspath(str(WEIGHTS)) else None
    if shipped is not None:
        acc16 = accuracy(shipped, test_x, test_y, device)
        manifest[name]["test_accuracy"] = round(acc16, 4)
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1) + "\n")
        print(f"float16 weights: test accuracy {100 * acc16:.2f} %")
    print(f"wrote {entry['file']} and judges.json in {args.out} ({seconds:.0f} s of training)")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
