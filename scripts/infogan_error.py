"""InfoGAN's c1 as a classifier: the error on real MNIST digits (the paper's 5 %).

Q (inside D of an InfoGAN checkpoint) reads each real test image, its
arg-max over c1 is the image's category, and each category is matched to
a digit: one to one, by the assignment that matches the most images (what
the error reports), and by majority (each category to its most frequent
digit, possibly two to one digit). No label is used before this matching
(docs/infogan.md §5)::

    python scripts/infogan_error.py runs/infogan/checkpoint.npz
    python scripts/infogan_error.py runs/infogan/checkpoint.npz --split valid --json c1_error.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.backend import set_cpu_threads  # noqa: E402
from scratchgan.cli import _positive_int, run_script  # noqa: E402
from scratchgan.data import load_dataset  # noqa: E402
from scratchgan.gan.infogan import infogan_from_checkpoint  # noqa: E402
from scratchgan.training.checkpoint import atomic_write_text  # noqa: E402


def c1_error(path, *, split="test", data_dir=None, device="auto", batch_size=500):
    """The matched error of c1 on a split of the checkpoint's dataset (a dict,
    see :func:`scratchgan.metrics.matching.matched_error`, plus ``what``)."""
    if split not in ("test", "valid", "train"):
        raise ValueError(f"--split must be test, valid or train, got {split!r}")
    gan, config = infogan_from_checkpoint(path, device, need_q=True)
    dataset = config.resolved().dataset
    data = load_dataset(dataset, data_dir=data_dir or config.data_dir, data_dir_option="--data-dir DIR")
    images, labels = getattr(data, split), getattr(data, f"{split}_labels")
    if len(images) == 0:
        raise ValueError(f"the {split} split of {dataset} is empty")
    result = gan.c1_error(images, labels, batch_size=batch_size)
    result["what"] = f"{path}: c1 on the {len(images)} {split} images of {dataset}"
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="an InfoGAN run's checkpoint.npz or partial.npz (Q lives in D)")
    ap.add_argument("--split", default="test", help="test (the paper's), valid or train")
    ap.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST files (default: as train finds them)")
    ap.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--threads", type=_positive_int, help="BLAS threads on the CPU")
    ap.add_argument("--json", help="also write the result here")
    args = ap.parse_args(argv)
    set_cpu_threads(args.threads)
    t0 = time.perf_counter()
    r = c1_error(args.checkpoint, split=args.split, data_dir=args.data_dir, device=args.device)
    print(r["what"])
    print(f"  error, categories matched one to one  {100 * r['error']:6.2f} %   (the paper: 5 %)")
    print(f"  error, each category to its majority  {100 * r['error_majority']:6.2f} %")
    last = len(r["mapping"]) - 1
    one_to_one = ("-" if d is None else str(d) for d in r["mapping"])
    print(f"  digit of category 0..{last} (one to one):  " + " ".join(one_to_one))
    print(f"  digit of category 0..{last} (majority):    " + " ".join(map(str, r["mapping_majority"])))
    if None in r["mapping"]:
        print("  (more categories than digits: '-' marks a category matched to no digit; its images count as errors)")
    print(f"  confusion (rows: categories, columns: digits 0..{len(r['confusion'][0]) - 1}):")
    for k, row in enumerate(r["confusion"]):
        print(f"    c1={k:<{len(str(last))}}  " + " ".join(f"{v:5d}" for v in row))
    print(f"  [{time.perf_counter() - t0:.1f} s]")
    if args.json:
        atomic_write_text(args.json, json.dumps(r, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
