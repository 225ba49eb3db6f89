"""The conditional GANs' figures from finished runs: one table, per-class grids.

For every run directory given (trained with ``--preset cgan`` or ``cdcgan``)
this runs, through the command line's own code and so with its protocol,

* ``evaluate <run>/checkpoint.npz --json <out>/<name>.json --modes-png …``:
  10,000 samples, 1,000 of each class (the conditional GAN paper's Parzen
  protocol), label accuracy against the judge, judge FID with its real-data
  floor, Inception score, mode coverage, precision/recall, Parzen;
* ``sample <run>/checkpoint.npz --per-class --png <out>/<name>_per_class.png``:
  ten rows, one per class, the same noise down each column;

and writes ``<out>/results.md``: one row per run beside the paper's numbers
(docs/cgan.md §7, §8)::

    python scripts/cgan_results.py runs/cgan runs/cdcgan runs/cdcgan-fashion --out docs/cgan

Evaluating one run takes a few minutes on a CPU (the Parzen estimate is most of it).
An existing ``<name>.json`` is reused unless ``--again`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.cli import main as scratchgan_main  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.training.checkpoint import atomic_write_text, read_checkpoint  # noqa: E402
from scratchgan.training.trainer import load_run_config  # noqa: E402

#: Mirza & Osindero 2014, Table 1 (MNIST test set, Parzen window, 1,000 samples of each class)
PAPER_ROW = "| Mirza & Osindero 2014, Table 1 | MNIST | — | — | **132 ± 1.8** | — | — | — |"


def run_cli(argv):
    rc = scratchgan_main(argv)
    if rc != 0:
        raise ValueError(f"'scratchgan {' '.join(argv)}' failed (exit code {rc}); its error is above")


def evaluate_run(run, out, args):
    """Evaluate one run (or reuse its JSON) and draw its per-class grid; returns the table row."""
    ckpt = os.path.join(run, "checkpoint.npz")
    state = read_checkpoint(ckpt)
    config = load_run_config(state, ckpt)
    preset = config.resolved()
    if preset.variant != "cgan":
        raise ValueError(f"{run} was trained with the {config.preset} preset (variant {preset.variant}); this "
                         "script reports conditional runs (presets cgan, cdcgan)")
    name = os.path.basename(os.path.normpath(run))
    js = os.path.join(out, f"{name}.json")
    common = ["--device", args.device, "--seed", str(args.seed)]
    if args.again or not os.path.exists(js):
        run_cli(["evaluate", ckpt, "-n", str(args.n), "--json", js, "--modes-png",
                 os.path.join(out, f"{name}_modes.png"), "--quiet"] + common)
    grid = os.path.join(out, f"{name}_per_class.png")
    run_cli(["sample", ckpt, "--per-class", "-n", "100", "--png", grid] + common)
    with open(js) as f:
        r = json.load(f)
    epoch = int(state["epoch"])
    acc = r.get("label_accuracy", {}).get("value")
    parzen = r.get("parzen")
    fid, modes = r.get("fid"), r.get("modes")
    cells = [
        f"`{config.preset}`, {name}",
        {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}.get(r["dataset"], r["dataset"]),
        str(epoch),
        "—" if acc is None else f"**{100 * acc:.2f} %**",
        "—" if parzen is None else f"{parzen['mean']:.1f} ± {parzen['std_err']:.1f} (σ {parzen['sigma']:.3f})",
        "—" if fid is None else f"{fid['value']:.2f} (floor {fid['real_floor']:.2f})",
        "—" if modes is None else f"{modes['covered']}/10, KL {modes['kl_to_uniform']:.3f}",
        "—" if "is" not in r else f"{r['is']['mean']:.2f}",
    ]
    return "| " + " | ".join(cells) + " |", name, grid


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="training output directories of conditional runs")
    ap.add_argument("--out", default="docs/cgan", help="folder for the JSON, the pictures and results.md")
    ap.add_argument("-n", type=int, default=10000, help="samples per run (the paper: 10,000, 1,000 per class)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    ap.add_argument("--again", action="store_true", help="evaluate again even where <name>.json exists")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    rows, grids = [], []
    for run in args.runs:
        row, name, grid = evaluate_run(run, args.out, args)
        rows.append(row)
        grids.append((name, grid))
    header = ["| run | data | epochs | label accuracy (judge) | Parzen LL, 1,000 per class | judge FID | modes | IS |",
              "|---|---|---|---|---|---|---|---|"]
    text = ["# Conditional GANs: measured results", "",
            f"`python scripts/cgan_results.py {' '.join(args.runs)} --out {args.out}`; 10,000 samples of each "
            "run, 1,000 per class (docs/cgan.md §7).", ""] + header + rows + [PAPER_ROW, ""]
    text += [f"![{name}: one row per class, the same z down each column]({os.path.basename(g)})" for name, g in grids]
    path = os.path.join(args.out, "results.md")
    atomic_write_text(path, "\n".join(text) + "\n")
    print("\n".join(header + rows + [PAPER_ROW]))
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(run_script(main))
