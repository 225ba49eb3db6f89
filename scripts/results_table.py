"""Every metric for finished runs, as one Markdown table (the README's comparison tables).

For each run directory it evaluates ``checkpoint.npz`` with ``python -m
scratchgan evaluate`` (10,000 samples; class-balanced for conditional models),
caches the JSON as ``<run>/evaluate.json``, and reads the epochs and the
training time from ``metrics.jsonl``::

    python scripts/results_table.py runs/paper runs/dcgan runs/paper-fashion runs/dcgan-fashion

Columns: preset, dataset, epochs, training time (sum of the epochs' wall
times), FID (with the real-data floor), Inception score, classes covered,
precision / recall, label accuracy (conditional models), Parzen.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from scratchgan.cli import main as cli_main  # noqa: E402
from scratchgan.cli import run_script  # noqa: E402
from scratchgan.training.checkpoint import read_checkpoint  # noqa: E402
from scratchgan.training.trainer import load_run_config  # noqa: E402


def run_facts(run):
    """(preset, dataset, epochs, training hours) of a run directory; a run
    with ``--lr-decay-epochs N`` is named "<preset>, lr → 0 over the last N", one
    with ``--lr``, ``--lr-d`` or ``--lr-g`` names them after the preset."""
    path = os.path.join(run, "checkpoint.npz")
    state = read_checkpoint(path)
    config = load_run_config(state, path)
    rows = [json.loads(line) for line in open(os.path.join(run, "metrics.jsonl")) if line.strip()]
    seconds = sum(r.get("elapsed_s", 0) for r in rows if r.get("kind") == "epoch")
    decay = f", lr → 0 over the last {config.lr_decay_epochs}" if config.lr_decay_epochs else ""
    name = f"`{config.preset}{config.flags(('lr', 'lr_d', 'lr_g'))}`{decay}"
    return name, config.resolved().dataset, int(state["epoch"]), seconds / 3600


def evaluation(run, refresh=False, threads=None):
    """``evaluate``'s JSON for the run's checkpoint, cached in ``<run>/evaluate.json``;
    a cache older than the checkpoint (the run went on) is evaluated again."""
    out = os.path.join(run, "evaluate.json")
    ckpt = os.path.join(run, "checkpoint.npz")
    if refresh or not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(ckpt):
        argv = ["evaluate", ckpt, "--json", out, "--quiet"]
        if threads:
            argv += ["--threads", str(threads)]
        if cli_main(argv) != 0:
            raise ValueError(f"evaluate failed on {run}")
    return json.load(open(out))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--refresh", action="store_true", help="evaluate again even if evaluate.json exists")
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    lines = ["| preset | data | epochs | training | FID ↓ (floor) | IS ↑ | classes | precision / recall | "
             "label acc. | Parzen ↑ |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for run in args.runs:
        preset, dataset, epochs, hours = run_facts(run)
        r = evaluation(run, args.refresh, args.threads)
        fid = f"{r['fid']['value']:.2f} ({r['fid']['real_floor']:.2f})" if "fid" in r else "—"
        is_ = f"{r['is']['mean']:.2f}" if "is" in r else "—"
        modes = f"{r['modes']['covered']}/10" if "modes" in r else "—"
        pr = f"{r['precision']['value']:.2f} / {r['recall']['value']:.2f}" if "precision" in r else "—"
        acc = f"{100 * r['label_accuracy']['value']:.1f} %" if "label_accuracy" in r else "—"
        parzen = f"{r['parzen']['mean']:.1f} ± {r['parzen']['std_err']:.1f}" if "parzen" in r else "—"
        lines.append(f"| {preset} | {dataset} | {epochs} | {hours:.1f} h | {fid} | {is_} | {modes} | {pr} | {acc} | "
                     f"{parzen} |")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(run_script(main))
