"""InfoGAN's Figure 2 from a checkpoint, and the mutual-information curve from its run.

Writes into ``--out`` (docs/infogan.md §6):

* ``fig2_c1.png`` — the paper's Figure 2a: along each row c1 takes its K
  values, everything else (z, c2, c3) drawn once for the row;
* ``fig2_c2.png``, ``fig2_c3.png``, … — Figure 2c, 2d: along each row one
  continuous code goes from −2 to 2 (it was trained on [−1, 1]); row k has
  c1 = k and its own z and other codes;
* ``mi_c1.png`` — the estimate ``ln 10 − CE(c1)`` against the iterations,
  from the run's ``metrics.jsonl`` beside the checkpoint (the paper's
  Figure 1: it should climb to ln 10 ≈ 2.30 nats).

With ``--order-by-digit`` (needs a checkpoint with Q, i.e. ``checkpoint.npz``
or ``partial.npz``, and the MNIST test set), c1's categories are put in the
order of the digits they match (scripts/infogan_error.py), so the columns of
Figure 2a read 0..9::

    python scripts/infogan_figures.py runs/infogan/checkpoint.npz --out docs/infogan --order-by-digit
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)  # infogan_error.py beside this script

from scratchgan.backend import set_cpu_threads  # noqa: E402
from scratchgan.cli import _positive_int, run_script  # noqa: E402
from scratchgan.gan.infogan import infogan_from_checkpoint  # noqa: E402
from scratchgan.plots import _atomic_figure_save, save_grid  # noqa: E402


def figure2(gan, out, *, rows=10, steps=10, span=2.0, seed=0, order=None):
    """Figure 2's panels into ``out``; returns the paths. ``order``: the
    categories in the order to show them (default 0..K−1)."""
    K = gan.categories
    order = np.arange(K) if order is None else np.asarray(order)
    rng = np.random.default_rng(seed)
    paths = []
    path = os.path.join(out, "fig2_c1.png")
    x = gan.generate_from(gan.vary_code("c1", order, rows, rng))
    save_grid(x, path, nrow=K, title=f"c1 = {', '.join(map(str, order))} along each row; z, c2, c3 fixed per row")
    paths.append(path)
    values = np.linspace(-span, span, steps)
    for name in gan.code_names[1:]:
        path = os.path.join(out, f"fig2_{name}.png")
        x = gan.generate_from(gan.vary_code(name, values, K, rng, codes={"c1": order}))
        save_grid(x, path, nrow=steps, title=f"{name} from {-span:g} to {span:g} along each row; "
                                             f"c1 = {', '.join(map(str, order))} down the rows")
        paths.append(path)
    return paths


def mi_curve(metrics_path, path, K=10):
    """``mi_c1`` of the run's log windows against the iterations, with ``ln K``."""
    from matplotlib.figure import Figure

    with open(metrics_path) as f:
        rows = []
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break   # a torn last line
    rows = [r for r in rows if r.get("kind") == "window" and "mi_c1" in r]
    if not rows:
        raise ValueError(f"{metrics_path} has no mi_c1 rows (not an InfoGAN run?)")
    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.subplots()
    ax.plot([r["step"] for r in rows], [r["mi_c1"] for r in rows], lw=1, label="ln 10 − CE(c1), D step's batch")
    ax.axhline(math.log(K), color="gray", ls=":", lw=1, label=f"H(c1) = ln {K} ≈ {math.log(K):.2f}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("nats")
    ax.set_title("the lower bound L_I on I(c1; G(z, c)) (paper's Figure 1)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    _atomic_figure_save(fig, path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoint", help="an InfoGAN checkpoint.npz, partial.npz or G snapshot")
    ap.add_argument("--out", default=".", help="folder for the PNGs")
    ap.add_argument("--rows", type=int, default=10, help="rows of Figure 2a")
    ap.add_argument("--steps", type=int, default=10, help="values of each continuous code along a row")
    ap.add_argument("--span", type=float, default=2.0, help="continuous codes go from -SPAN to SPAN")
    ap.add_argument("--seed", type=int, default=0, help="seed of the fixed noise and codes")
    ap.add_argument("--order-by-digit", action="store_true",
                    help="order c1's categories by the digit each matches on the test set (needs Q and MNIST)")
    ap.add_argument("--data-dir", metavar="DIR", help="folder with the MNIST files (--order-by-digit)")
    ap.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--threads", type=_positive_int, help="BLAS threads on the CPU")
    args = ap.parse_args(argv)
    if args.rows < 1 or args.steps < 2 or not args.span > 0:
        raise ValueError("--rows must be >= 1, --steps >= 2 and --span > 0")
    set_cpu_threads(args.threads)
    gan, _ = infogan_from_checkpoint(args.checkpoint, args.device, need_q=args.order_by_digit)
    order = None
    if args.order_by_digit:
        from infogan_error import c1_error

        r = c1_error(args.checkpoint, data_dir=args.data_dir, device=args.device)
        digit = np.asarray(r["mapping"])
        order = np.argsort(digit)   # the category matched to digit 0, then 1, …
        print(f"c1 error on the test set {100 * r['error']:.2f} %; categories by digit: {order.tolist()}")
    os.makedirs(args.out, exist_ok=True)
    for p in figure2(gan, args.out, rows=args.rows, steps=args.steps, span=args.span, seed=args.seed, order=order):
        print(f"wrote {p}")
    metrics = os.path.join(os.path.dirname(os.path.abspath(args.checkpoint)), "metrics.jsonl")
    if os.path.exists(metrics):
        print(f"wrote {mi_curve(metrics, os.path.join(args.out, 'mi_c1.png'), gan.categories)}")
    else:
        print(f"no {metrics}: no mutual-information curve")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
