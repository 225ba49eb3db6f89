"""Command line: ``python -m scratchgan {train,sample,evaluate,presets} …``.

Examples::

    python -m scratchgan train --preset paper --epochs 100 --out runs/paper
    python -m scratchgan train --out runs/paper --epochs 200 --resume
    python -m scratchgan sample runs/paper/checkpoint.npz --png grid.png --figure2 fig2.png
    python -m scratchgan evaluate runs/paper/checkpoint.npz
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

__all__ = ["main", "build_parser"]


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return v


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    from . import losses
    from .gan import PRIORS
    from .models import PRESETS

    parser = argparse.ArgumentParser(prog="scratchgan", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a GAN on MNIST or Fashion-MNIST")
    t.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    t.add_argument("--preset", default="paper", choices=sorted(PRESETS),
                   help="model and schedule (paper: the authors' MNIST configuration)")
    t.add_argument("--loss", choices=losses.NAMES, help="default: the preset's (non-saturating)")
    t.add_argument("--update", choices=["simultaneous", "alternating"],
                   help="simultaneous: the authors' code (default for --preset paper); "
                        "alternating: Algorithm 1's schedule, k D steps then one G step, "
                        "without the code's 0.5 on D's loss (add --loss minimax for its G loss too)")
    t.add_argument("-k", type=_positive_int, help="D steps per G step (alternating only)")
    t.add_argument("--epochs", type=_positive_int, default=100)
    t.add_argument("--batch-size", type=_positive_int)
    t.add_argument("--lr", type=_positive_float, help="initial learning rate (paper: 0.1)")
    t.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd")
    t.add_argument("--prior", choices=PRIORS)
    t.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="runs/paper", help="output directory")
    t.add_argument("--sample-every", type=_positive_int, default=1, help="epochs between sample grids")
    t.add_argument("--snapshot-every", type=_positive_int, default=10, help="epochs between G snapshots")
    t.add_argument("--log-every", type=_positive_int, default=50, help="iterations between log rows")
    t.add_argument("--max-iterations", type=_positive_int, help="stop after this many iterations")
    t.add_argument("--data-dir", help="folder with the IDX files (else $SCRATCHGAN_DATA, the cache, a download)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--quiet", action="store_true", help="no progress bar")

    s = sub.add_parser("sample", help="draw samples from a checkpoint")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=_positive_int, default=100, help="number of samples")
    s.add_argument("--png", help="save a grid of the samples here")
    s.add_argument("--npz", help="save the samples (n, 784) here")
    s.add_argument("--figure2", help="save the paper's Figure 2 layout here (needs the training data)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    s.add_argument("--data-dir")

    e = sub.add_parser("evaluate", help="Parzen-window log-likelihood (the paper's Table 1)")
    e.add_argument("checkpoint", nargs="?", help="a checkpoint or G snapshot; omit with --real")
    e.add_argument("-n", type=_positive_int, default=10000, help="samples from G (paper: 10000)")
    e.add_argument("--n-valid", type=_positive_int, default=1000, help="validation images for sigma (paper: 1000)")
    e.add_argument("--n-test", type=_positive_int, default=10000, help="test images (paper: all 10000)")
    e.add_argument("--real", action="store_true",
                   help="score 10,000 real training images instead of G's samples (a reference)")
    e.add_argument("--dataset", default=None, choices=["mnist", "fashion-mnist"])
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"])
    e.add_argument("--data-dir")
    e.add_argument("--json", help="also write the result here")
    e.add_argument("--quiet", action="store_true")

    sub.add_parser("presets", help="list the presets and the paper deviations")
    return parser


# ---------------------------------------------------------------------------
def _cmd_train(args) -> int:
    from .data import load_dataset
    from .train import TrainConfig, Trainer

    config = TrainConfig(
        dataset=args.dataset, preset=args.preset, loss=args.loss, update=args.update, k=args.k,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, optimizer=args.optimizer,
        prior=args.prior, device=args.device, seed=args.seed, sample_every=args.sample_every,
        snapshot_every=args.snapshot_every, log_every=args.log_every,
        max_iterations=args.max_iterations, data_dir=args.data_dir,
    )
    config.resolved()  # validate before loading anything
    from .backend import get_device

    get_device(config.device)  # a BackendError for --device gpu before the data are read
    data = load_dataset(args.dataset, data_dir=args.data_dir)
    trainer = Trainer(config, data, args.out, progress=not args.quiet, resume=args.resume)
    if not args.quiet:
        print(f"training {config.preset} preset on {config.dataset} ({trainer.device.kind}), "
              f"{trainer.iters_per_epoch} iterations/epoch, epochs {trainer.epoch + 1}..{config.epochs}, "
              f"output {args.out}", file=sys.stderr)
    t0 = time.perf_counter()
    trainer.run()
    its = trainer.gan.iterations
    inside = its - trainer.epoch * trainer.iters_per_epoch
    where = f" (stopped inside epoch {trainer.epoch + 1} by --max-iterations)" if inside else ""
    print(f"done: {trainer.epoch} complete epochs, {its} iterations{where}, "
          f"{time.perf_counter() - t0:.1f} s; checkpoint {trainer.ckpt_path}")
    return 0


def _load_generator(path, device):
    from .train import generator_from_checkpoint

    return generator_from_checkpoint(path, device)


def _cmd_sample(args) -> int:
    from .backend import default_rng, to_numpy
    from .network import atomic_savez
    from .plots import figure2, save_grid

    if not (args.png or args.npz or args.figure2):
        raise ValueError("nothing to do: give --png, --npz and/or --figure2")
    if args.figure2 and args.n < 20:
        raise ValueError("--figure2 needs -n of at least 20 (4 rows of 5 samples)")
    G, prior, config = _load_generator(args.checkpoint, args.device)
    dev = G.device
    z = prior.sample(args.n, default_rng(args.seed, dev), np.float32)
    x = G.forward(z, train=False)
    if args.png:
        save_grid(x[: min(args.n, 400)], args.png)
        print(f"wrote {args.png}")
    if args.npz:
        atomic_savez(args.npz, {"samples": to_numpy(x)})
        print(f"wrote {args.npz} ({args.n} samples)")
    if args.figure2:
        from .data import load_dataset

        data = load_dataset(config.dataset, data_dir=args.data_dir or config.data_dir)
        figure2(x[:20], dev.asarray(data.train), args.figure2)
        print(f"wrote {args.figure2}")
    return 0


def _cmd_evaluate(args) -> int:
    import json

    from .backend import default_rng, get_device, to_numpy
    from .data import load_dataset
    from .metrics import parzen_evaluate

    if args.real == bool(args.checkpoint):
        raise ValueError("give a checkpoint, or --real to score real training images")
    if args.real:
        dataset = args.dataset or "mnist"
        data = load_dataset(dataset, data_dir=args.data_dir)
        dev = get_device(args.device)
        samples = dev.asarray(data.train[: args.n])
        what = f"{args.n} real training images"
    else:
        G, prior, config = _load_generator(args.checkpoint, args.device)
        dev = G.device
        dataset = args.dataset or config.dataset
        data = load_dataset(dataset, data_dir=args.data_dir or config.data_dir)
        z = prior.sample(args.n, default_rng(args.seed, dev), np.float32)
        samples = G.forward(z, train=False)
        what = f"{args.n} samples of {args.checkpoint}"
    result = parzen_evaluate(samples, dev.asarray(data.valid[: args.n_valid]),
                             dev.asarray(data.test[: args.n_test]), progress=not args.quiet)
    print(f"{dataset}: Parzen log-likelihood {result.mean:.1f} ± {result.std_err:.1f} "
          f"(sigma = {result.sigma:.4f}; {what}; {len(result.ll)} test images)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"mean": result.mean, "std_err": result.std_err, "sigma": result.sigma,
                       "sigmas": list(map(float, result.sigmas)),
                       "valid_means": None if result.valid_means is None else list(map(float, result.valid_means)),
                       "what": what, "dataset": dataset}, f, indent=2)
    return 0


def _cmd_presets(args) -> int:
    from .models import PAPER_DEVIATIONS, PRESETS

    for name, p in PRESETS.items():
        print(f"{name}:")
        for k, v in p.items():
            print(f"  {k} = {v}")
    print("paper preset vs the paper's text:")
    for line in PAPER_DEVIATIONS:
        print(f"  - {line}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate,
               "presets": _cmd_presets}[args.command]
    from .backend import BackendError
    from .data import DataError
    from .gan import NonFiniteLossError

    try:
        return handler(args)
    except NonFiniteLossError as err:
        print(f"scratchgan: error: {err}; the last good checkpoint is unchanged", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("scratchgan: interrupted; the last checkpoint (end of the last full epoch) is intact",
              file=sys.stderr)
        return 130
    except (BackendError, DataError, FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"scratchgan: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
