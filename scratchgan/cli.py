"""Command line: python -m scratchgan {train,sample,evaluate,translate,presets} …

Examples::

    python -m scratchgan train --preset paper --epochs 100 --out runs/paper
    python -m scratchgan train --out runs/paper --epochs 200 --resume
    python -m scratchgan sample runs/paper/checkpoint.npz --png grid.png --figure2 fig2.png
    python -m scratchgan sample runs/infogan/checkpoint.npz --code c1=3,c2=-1.5 --png threes.png
    python -m scratchgan evaluate runs/paper/checkpoint.npz
    python -m scratchgan translate runs/pix2pix/checkpoint.npz edges/*.png --out translated/
    python -m scratchgan train --preset cdcgan --epochs 20 --out runs/cdcgan        # conditional (docs/cgan.md)
    python -m scratchgan sample runs/cdcgan/checkpoint.npz --label 3 --png threes.png
    python -m scratchgan sample runs/cdcgan/checkpoint.npz --per-class --png grid.png
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time

import numpy as np

__all__ = ["main", "build_parser", "run_script", "parse_codes"]

DESCRIPTION = ("Generative adversarial nets from scratch in NumPy (CPU) and CuPy (GPU): train the "
               "2014 paper's GAN and its family, sample from checkpoints, evaluate them.")


def _int_at_least(low, name):
    """An argparse type: an integer >= ``low``, else an error naming ``name``."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            v = low - 1
        if v < low:
            raise argparse.ArgumentTypeError(f"expected {name}, got {text!r}")
        return v
    return parse


_positive_int = _int_at_least(1, "a positive integer")
_non_negative_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not (v > 0 and np.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows defaults, keeps the description's line breaks. An option whose
    default is ``None`` ("the preset's") or a flag's ``False`` gets no
    "(default: None)": its help says what the default is."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _per_preset(presets, value) -> str:
    """``"sgd for paper, small"``: ``value(preset)`` grouped over the presets."""
    groups: dict = {}
    for name, preset in presets.items():
        groups.setdefault(str(value(preset)), []).append(name)
    return "; ".join(f"{v} for {', '.join(names)}" for v, names in groups.items())


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .gan import PRIORS
    from .nn import losses
    from .paired import ALL_DATASETS
    from .presets import PRESETS

    parser = argparse.ArgumentParser(prog="scratchgan", description=DESCRIPTION, formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"scratchgan {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def device_arg(p):
        p.add_argument("--device", default="auto", choices=["cpu", "gpu", "auto"],
                       help="where to compute; auto: the GPU when CuPy finds one")

    def data_arg(p):
        p.add_argument("--data-dir", metavar="DIR",
                       help="folder with the dataset's IDX files (default: $SCRATCHGAN_DATA, then the cache "
                            "~/.cache/scratchgan, then a download)")

    t = sub.add_parser("train", help="train a GAN on MNIST, Fashion-MNIST or a paired task made from them",
                       formatter_class=_Formatter)
    t.add_argument("--preset", choices=sorted(PRESETS),
                   help="model, variant, loss, optimisers and schedule (list them: scratchgan presets); "
                        "default: paper, or the checkpoint's with --resume")
    t.add_argument("--dataset", choices=ALL_DATASETS,
                   help="default: the preset's (mnist; edges2fashion for pix2pix); edges2fashion and lowres2mnist "
                        "are paired tasks for pix2pix")
    t.add_argument("--loss", choices=losses.NAMES, help="default: the preset's")
    t.add_argument("--update", choices=["simultaneous", "alternating"],
                   help="MLP presets: simultaneous (the authors' code, the paper preset's default) or "
                        "alternating (Algorithm 1: k D steps then one G step, without the code's 0.5 on "
                        "D's loss; add --loss minimax for its G loss too)")
    t.add_argument("-k", type=_positive_int, help="D steps per G step (alternating only; default: the preset's)")
    t.add_argument("--epochs", type=_positive_int, default=100,
                   help="the total number of epochs; with --resume, training continues up to it")
    t.add_argument("--lr-decay-epochs", type=_non_negative_int, metavar="N",
                   help="over the last N of --epochs, decay both learning rates linearly to 0 (the DCGAN "
                        "authors' schedule; 0: none; default: none, or the checkpoint's with --resume)")
    t.add_argument("--batch-size", type=_positive_int, help="minibatch size m (default: the preset's)")
    t.add_argument("--optimizer", choices=["sgd", "adam", "rmsprop"],
                   help="default: the preset's ("
                        + _per_preset(PRESETS, lambda p: "/".join(sorted({o["name"] for o in p.optimizers.values()})))
                        + "); switching to adam uses lr 2e-4, betas (0.5, 0.999), to rmsprop lr 5e-5")
    t.add_argument("--lr", type=_positive_float,
                   help="initial learning rate of D and G (default: the preset's, paper: 0.1; with --optimizer "
                        "adam on an SGD preset: 2e-4); --lr-d and --lr-g win over it")
    t.add_argument("--lr-d", type=_positive_float, metavar="LR",
                   help="initial learning rate of D alone (default: --lr, or the preset's)")
    t.add_argument("--lr-g", type=_positive_float, metavar="LR",
                   help="initial learning rate of G alone (default: --lr, or the preset's; infogan's G: 1e-3 "
                        "against 2e-4 for D, docs/dcgan.md section 7)")
    t.add_argument("--prior", choices=PRIORS, help="noise prior p_z (default: the preset's)")
    t.add_argument("--seed", type=int,
                   help="seed of the initial weights, data order, noise, dropout (default: 0, or the checkpoint's "
                        "with --resume)")
    device_arg(t)
    threads_help = ("BLAS threads on the CPU (default: the cores idle at start, at least 1; "
                    "OPENBLAS_NUM_THREADS or OMP_NUM_THREADS, when set, win)")
    t.add_argument("--threads", type=_positive_int, help=threads_help)
    t.add_argument("--batch-split", type=_positive_int, metavar="N",
                   help="CPU: run G and D on N slices of every batch in N threads, one BLAS thread each unless "
                        "--threads says otherwise (the same results to rounding; networks without batch norm or "
                        "dropout: the wgan, wgan-gp, wgan-gp-mnist and r1 presets); a run setting, not saved")
    t.add_argument("--out", default="runs/paper", help="output directory")
    t.add_argument("--sample-every", type=_positive_int,
                   help="epochs between sample grids (default: 1, or the checkpoint's with --resume)")
    t.add_argument("--snapshot-every", type=_positive_int,
                   help="epochs between G snapshots (default: 10, or the checkpoint's with --resume)")
    t.add_argument("--log-every", type=_positive_int,
                   help="iterations between log rows (default: 50, or the checkpoint's with --resume)")
    t.add_argument("--max-iterations", type=_positive_int,
                   help="stop after this many iterations (a run stopped inside an epoch writes partial.npz)")
    data_arg(t)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint.npz")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar and no start-up line (epoch summaries still print)")

    s = sub.add_parser("sample", help="draw samples from a checkpoint", formatter_class=_Formatter)
    s.add_argument("checkpoint", help="checkpoint.npz, partial.npz or a G_epoch_NNNN.npz snapshot")
    s.add_argument("-n", type=_positive_int, default=100, help="number of samples")
    s.add_argument("--png", help="save a grid of (at most 400 of) the samples here")
    s.add_argument("--npz", help="save the samples here: (n, 784) for MLP models, (n, 1, 28, 28) for "
                                 "convolutional ones (and their labels for a conditional model)")
    s.add_argument("--figure2", help="save the paper's Figure 2 layout here (needs the training data)")
    s.add_argument("--interpolate", metavar="PNG",
                   help="save the paper's Figure 3 here: rows of G(z) along straight lines between two noise "
                        "vectors")
    s.add_argument("--rows", type=_positive_int, default=8, help="--interpolate: lines, one per row")
    s.add_argument("--steps", type=_positive_int, default=10, help="--interpolate: points along each line")
    s.add_argument("--code", metavar="NAME=VALUE,...",
                   help="InfoGAN: fix latent codes, e.g. c1=3,c2=-1.5 (c1 a category 0..9; c2, c3 continuous, "
                        "trained on [-1, 1]); the codes not given are drawn")
    s.add_argument("--label", type=int, metavar="C",
                   help="conditional models: every sample of class C (0-9)")
    s.add_argument("--per-class", action="store_true",
                   help="conditional models: one row per class, the same noise down each column (-n 100: 10 "
                        "columns); with --interpolate, row r interpolates class r")
    s.add_argument("--seed", type=int, default=0, help="seed of the noise")
    s.add_argument("--threads", type=_positive_int, help=threads_help)
    device_arg(s)
    data_arg(s)

    e = sub.add_parser("evaluate", help="judge samples: FID, Inception score, modes, precision/recall, "
                                        "and the paper's Parzen log-likelihood", formatter_class=_Formatter)
    e.add_argument("checkpoint", nargs="?", help="a checkpoint or G snapshot; omit with --real")
    e.add_argument("--metrics", help="comma-separated, from fid,is,modes,pr,parzen (default: all); for a pix2pix "
                                     "checkpoint from l1,psnr,sharpness,accuracy")
    e.add_argument("-n", type=_positive_int, default=10000,
                   help="samples from G (paper: 10000); for pix2pix, held-out test pairs translated")
    e.add_argument("--n-valid", type=_positive_int, default=1000, help="validation images for sigma (paper: 1000)")
    e.add_argument("--n-test", type=_positive_int, default=10000, help="test images (paper: all 10000)")
    e.add_argument("--real", action="store_true",
                   help="score 10,000 real training images instead of G's samples (a reference)")
    e.add_argument("--dataset", default=None, choices=ALL_DATASETS,
                   help="default: the checkpoint's (mnist with --real)")
    e.add_argument("--seed", type=int, default=0, help="seed of the noise")
    device_arg(e)
    data_arg(e)
    e.add_argument("--threads", type=_positive_int, help=threads_help)
    e.add_argument("--json", help="also write the result here (keys fid, is, modes, precision, recall, parzen, and "
                                  "label_accuracy for a conditional model)")
    e.add_argument("--modes-png", help="save a bar plot of the judged class histogram here")
    e.add_argument("--quiet", action="store_true", help="no progress bar")

    r = sub.add_parser("translate", help="translate PNG images or .npy batches with a pix2pix checkpoint",
                       formatter_class=_Formatter)
    r.add_argument("checkpoint", help="a pix2pix checkpoint.npz or partial.npz")
    r.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="grayscale .png files or .npy arrays ((H, W), (n, H, W) or (n, 1, H, W); float in [0, 1] or "
                        "uint8) of 32x32 images, or 28x28 ones (padded to 32 as the paired datasets are)")
    r.add_argument("--out", required=True, metavar="DIR",
                   help="where the translations go: <name>.png for a PNG, <name>.npy for an array")
    r.add_argument("--grid", metavar="PNG", help="also save a picture of (up to 50) inputs above their translations")
    r.add_argument("--seed", type=int, default=0, help="seed of G's dropout, pix2pix's noise (on at test, as in the "
                                                       "paper)")
    r.add_argument("--batch-size", type=_positive_int, default=500, help="images per pass through G")
    r.add_argument("--threads", type=_positive_int, help=threads_help)
    device_arg(r)

    sub.add_parser("presets", help="list the presets and how each differs from its paper")
    return parser


# ---------------------------------------------------------------------------
def _load_data(name, data_dir):
    from .paired import load

    if data_dir is not None and not os.path.isdir(data_dir):
        raise FileNotFoundError(f"--data-dir {data_dir}: no such directory")
    return load(name, data_dir=data_dir, data_dir_option="--data-dir DIR")


def _cmd_train(args) -> int:
    from .backend import get_device
    from .training.config import RunConfig
    from .training.trainer import Trainer

    model = {k: getattr(args, k) for k in ("preset", "dataset", "loss", "update", "k", "batch_size", "lr",
                                            "lr_d", "lr_g", "optimizer", "prior", "seed", "data_dir")}
    if args.resume:  # what the command line leaves out comes from the checkpoint
        from .training.trainer import saved_config

        saved = saved_config(args.out)
        model = {k: (getattr(saved, k) if v is None else v) for k, v in model.items()}
        if args.data_dir is None and model["data_dir"] and not os.path.isdir(model["data_dir"]):
            model["data_dir"] = None  # the run's folder moved: search as usual
    model["preset"] = model["preset"] or "paper"
    model["seed"] = 0 if model["seed"] is None else model["seed"]
    cadence = {}
    for key, default in (("sample_every", 1), ("snapshot_every", 10), ("log_every", 50),
                         ("lr_decay_epochs", None)):  # run settings: a resumed run may change them
        given = getattr(args, key)
        cadence[key] = given if given is not None else (getattr(saved, key) if args.resume else default)
    cadence["lr_decay_epochs"] = cadence["lr_decay_epochs"] or None   # 0: no decay
    config = RunConfig(**model, **cadence, epochs=args.epochs, device=args.device,
                       max_iterations=args.max_iterations)
    if args.resume:
        from .training.trainer import check_same_run

        check_same_run(saved, config, os.path.join(args.out, "checkpoint.npz"))  # before reading any data
    preset = config.resolved()  # validate before loading anything
    if config.lr_decay_window() is not None:
        from .presets import check_lr_decay

        check_lr_decay(preset)
    device = get_device(config.device)   # a BackendError for --device gpu before the data are read
    split = args.batch_split if args.batch_split and args.batch_split > 1 else None
    if split:
        if device.is_gpu:
            raise ValueError("--batch-split is for the CPU: on a GPU one kernel already fills the device")
        from .presets import check_batch_split

        try:
            check_batch_split(preset)
        except ValueError as err:
            raise ValueError(f"--batch-split with the {config.preset} preset: {err}") from None
    if split and not args.threads:   # each slice's thread runs its own products
        from .backend import set_cpu_threads

        set_cpu_threads(1)
        threads = f", each batch in {split} slices on {split} threads, one BLAS thread each"
    else:
        threads = _threads(args, device) + (f", each batch in {split} slices on {split} threads" if split else "")
    _prepare_out(args.out)
    data = _load_data(preset.dataset, config.data_dir)
    trainer = Trainer(config, data, args.out, progress=not args.quiet, resume=args.resume, batch_split=split)
    _STATE["trainer"] = trainer
    if trainer.epoch >= config.epochs:
        print(f"nothing to train: {trainer.ckpt_path} has completed {trainer.epoch} epochs and --epochs is "
              f"{config.epochs} (the total); raise --epochs to continue")
        trainer._lock.release()
        return 0
    if not args.quiet:  # --quiet: errors and epoch summaries only on stderr
        print(f"training the {config.preset} preset ({preset.variant}, {preset.loss} loss) on {preset.dataset} "
              f"({trainer.device.kind}), {trainer.iters_per_epoch} iterations/epoch, epochs "
              f"{trainer.epoch + 1}..{config.epochs}, output {args.out}{threads}", file=sys.stderr)
        if (config.lr, config.lr_d, config.lr_g) != (None, None, None):
            print("learning rates: " + ", ".join(f"{net} {spec['lr']:g}" for net, spec in preset.optimizers.items()),
                  file=sys.stderr)
        if config.lr_decay_window() is not None:
            first, last = config.lr_decay_window()
            print(f"learning rates fall linearly to 0 over epochs {first + 1}..{last} (--lr-decay-epochs "
                  f"{config.lr_decay_epochs})", file=sys.stderr)
    t0 = time.perf_counter()
    trainer.run()
    its = trainer.gan.iterations - trainer.epoch * trainer.iters_per_epoch
    if its:
        print(f"stopped inside epoch {trainer.epoch + 1} after {its} iterations (--max-iterations): wrote "
              f"{trainer.partial_path} to sample or evaluate; {trainer.ckpt_path} "
              + (f"(epoch {trainer.epoch}) is what --resume continues" if trainer.epoch else
                 "will be written after the first complete epoch"))
    print(f"done: {trainer.epoch} complete epochs, {trainer.gan.iterations} iterations, "
          f"{time.perf_counter() - t0:.1f} s; output in {args.out}")
    return 0


def _threads(args, device) -> str:
    """On the CPU, limit the BLAS threads (``--threads``, or the idle cores;
    see :func:`scratchgan.backend.cpu_threads`); returns ``", <what>"`` for the log."""
    from .backend import set_cpu_threads

    if device.is_gpu:
        return ""
    return ", " + set_cpu_threads(getattr(args, "threads", None))


def _prepare_out(path):
    """Create ``path`` (a directory), or fail with a message naming it."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"--out {path} is a file, not a directory")
    try:
        os.makedirs(os.path.join(path, "samples"), exist_ok=True)
        probe = os.path.join(path, ".write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as err:
        raise PermissionError(f"cannot write to --out {path}: {err.strerror or err}") from None


def _finite_samples(x, path):
    from .backend import get_array_module

    if not bool(get_array_module(x).isfinite(x).all()):
        raise ValueError(f"{path}: the generator's samples are not finite (NaN or inf weights?); "
                         "this checkpoint cannot be sampled")
    return x


def _cmd_sample(args) -> int:
    from .backend import default_rng, to_numpy
    from .plots import figure2, save_grid
    from .training.checkpoint import atomic_savez
    from .training.trainer import gan_from_checkpoint

    if not (args.png or args.npz or args.figure2 or args.interpolate):
        raise ValueError("nothing to do: give --png, --npz, --figure2 and/or --interpolate")
    if args.interpolate and args.steps < 2:
        raise ValueError("--steps must be at least 2 (the two ends)")
    if args.figure2 and args.n < 20:
        raise ValueError("--figure2 needs -n of at least 20 (4 rows of 5 samples)")
    codes = parse_codes(args.code) if args.code is not None else None
    gan, config = gan_from_checkpoint(args.checkpoint, args.device)
    if "source" in gan.needs:
        raise ValueError(f"{args.checkpoint} is a {gan.variant} checkpoint: it translates images rather than "
                         f"sampling them; use: scratchgan translate {args.checkpoint} INPUT... --out DIR")
    dev = gan.device
    _threads(args, dev)
    conditions, title = _label_conditions(args, gan, config), ""
    if codes is not None:
        conditions["codes"] = codes
    if args.per_class:
        columns = args.n // gan.n_classes
        inputs = gan.per_class_inputs(columns, default_rng(args.seed, dev))
        x = _finite_samples(_generate_batched(gan, inputs), args.checkpoint)
        labels = inputs["labels"]
        title = "one row per class, the same z down each column"
    else:
        x = _finite_samples(gan.generate(args.n, args.seed, **conditions), args.checkpoint)
        labels = None if args.label is None else np.full(args.n, args.label, dtype=np.int64)
        if args.label is not None:
            name = _class_name(config, args.label)
            title = f"class {args.label}" + ("" if name == str(args.label) else f" ({name})")
    title = f"{os.path.basename(args.checkpoint)}: {config.describe()}, seed {args.seed}" + (f"; {title}" if title else "")
    if args.png:
        if args.per_class:  # all rows, at most 40 columns
            shown = min(columns, 40)
            grid = x.reshape((gan.n_classes, columns) + x.shape[1:])[:, :shown].reshape((-1,) + x.shape[1:])
            save_grid(grid, args.png, nrow=shown, title=title)
        else:
            save_grid(x[: min(args.n, 400)], args.png, title=title)
        print(f"wrote {args.png}")
    if args.npz:
        atomic_savez(args.npz, {"samples": to_numpy(x), **({} if labels is None else {"labels": to_numpy(labels)})})
        print(f"wrote {args.npz} ({len(x)} samples)")
    if args.figure2:
        data = _load_data(config.resolved().dataset, args.data_dir or config.data_dir)
        figure2(x[:20], dev.asarray(data.train), args.figure2)
        print(f"wrote {args.figure2}")
    if args.interpolate:
        # Figure 3: G at evenly spaced points on the segment from z_a to z_b, one segment per row
        rng = default_rng(args.seed + 1, dev)
        if args.per_class:  # row r: class r (mod the number of classes)
            conditions = {"labels": np.arange(args.rows) % gan.n_classes}
        a, b = gan.sample_inputs(args.rows, rng, **conditions), gan.sample_inputs(args.rows, rng, **conditions)
        t = dev.xp.linspace(0, 1, args.steps, dtype=np.float32)[None, :, None]      # (1, steps, 1)
        z = ((1 - t) * a["z"][:, None, :] + t * b["z"][:, None, :]).reshape(args.rows * args.steps, -1)
        frames = _finite_samples(gan.generate_from({**a, "z": z}) if len(a) == 1 else
                                 gan.generate_from(_repeat_conditions(a, args.steps, z)), args.checkpoint)
        save_grid(frames, args.interpolate, nrow=args.steps,
                  title=f"{title}: linear interpolation in z (the paper's Figure 3)")
        print(f"wrote {args.interpolate}")
    return 0


def parse_codes(text) -> dict:
    """``"c1=3,c2=-1.5"`` → ``{"c1": 3.0, "c2": -1.5}``: the syntax of
    ``sample --code``. Which names and values a model accepts is checked by
    its ``sample_inputs``; here only the form: ``NAME=NUMBER`` pairs, each name once."""
    codes = {}
    for item in text.split(","):
        name, eq, value = (part.strip() for part in item.partition("="))
        if not eq or not name or not value:
            raise ValueError(f"--code {text!r}: expected NAME=VALUE pairs separated by commas, such as "
                             f"c1=3,c2=-1.5; got {item.strip()!r}")
        if name in codes:
            raise ValueError(f"--code {text!r}: {name} is given twice")
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"--code {text!r}: the value of {name}, {value!r}, is not a number") from None
        if not np.isfinite(number):
            raise ValueError(f"--code {text!r}: the value of {name} must be finite, got {value!r}")
        codes[name] = number
    return codes


def _label_conditions(args, gan, config) -> dict:
    """``sample``'s labels as conditions for :meth:`GAN.generate` (``{}`` for
    an unconditional model), every mistake a one-line error naming the option."""
    asked = args.label is not None or args.per_class
    if "labels" not in gan.needs:
        if asked:
            raise ValueError(f"{args.checkpoint} is an unconditional model (variant {config.resolved().variant!r}): "
                             "--label and --per-class need a conditional one (presets cgan, cdcgan)")
        return {}
    from .gan.cgan import check_labels

    if not asked:
        raise ValueError(f"{args.checkpoint} is a conditional GAN ({gan.n_classes} classes): give --label C for "
                         "samples of class C, or --per-class for one row per class")
    if args.label is not None and args.per_class:
        raise ValueError("give --label or --per-class, not both")
    if args.per_class:  # drawn by gan.per_class_inputs
        if args.n < gan.n_classes or args.n % gan.n_classes:
            raise ValueError(f"--per-class needs -n a multiple of {gan.n_classes} (one row per class, the same "
                             f"number of columns), got -n {args.n}")
        if args.code is not None:
            raise ValueError("--per-class draws a row per class; --code is for InfoGAN checkpoints")
        return {}
    check_labels(args.label, 1, gan.n_classes, what="--label")
    return {"labels": args.label}


def _class_name(config, label):
    from .plots import CLASS_NAMES

    names = CLASS_NAMES.get(config.resolved().dataset)
    return names[label] if names and 0 <= label < len(names) else str(label)


def _generate_batched(gan, inputs, batch_size=500):
    """G on a dict of inputs (every array ``n`` long) in batches: one device array."""
    n = len(inputs["z"])
    parts = [gan.generate_from({k: v[i:i + batch_size] for k, v in inputs.items()}) for i in range(0, n, batch_size)]
    return gan.device.xp.concatenate(parts)


def _repeat_conditions(inputs, steps, z):
    """Every row's conditions (labels, codes) repeated along its ``steps`` points."""
    return {k: (z if k == "z" else v.repeat(steps, axis=0)) for k, v in inputs.items()}


def _cmd_evaluate(args) -> int:
    import json

    from .backend import get_device
    from .metrics.evaluate import METRICS, evaluate_samples
    from .training.checkpoint import atomic_write_text
    from .training.trainer import gan_from_checkpoint

    if args.real == bool(args.checkpoint):
        raise ValueError("give a checkpoint, or --real to score real training images")
    if args.checkpoint:
        gan, config = gan_from_checkpoint(args.checkpoint, args.device)
        if "source" in gan.needs:
            return _evaluate_translation(args, gan, config)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics else list(METRICS)
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise ValueError(f"--metrics: unknown {', '.join(unknown)}; choose from {','.join(METRICS)}")
    labels = None
    if args.real:
        dataset = args.dataset or "mnist"
        data = _unpaired(_load_data(dataset, args.data_dir))
        dev = get_device(args.device)
        _threads(args, dev)
        samples = dev.asarray(data.train[: args.n])
        what = f"{len(samples)} real training images"
    else:
        dev = gan.device
        _threads(args, dev)
        dataset = args.dataset or config.resolved().dataset
        data = _unpaired(_load_data(dataset, args.data_dir or config.data_dir))
        what = f"{args.n} samples of {args.checkpoint}"
        if "labels" in gan.needs:  # class-balanced, as the cGAN paper's Parzen protocol (1,000 of each class)
            labels = gan.balanced_labels(args.n)
            samples = gan.generate(args.n, args.seed, labels=labels)
            per = np.bincount(labels, minlength=gan.n_classes)
            what += f" ({per.min()}" + ("" if per.min() == per.max() else f"-{per.max()}") + " per class)"
        else:
            samples = gan.generate(args.n, args.seed)
    judge = None
    if set(metrics) - {"parzen"}:
        from .models.judge import JudgeError, load_judge

        try:
            judge = load_judge(dataset, dev)
        except JudgeError as err:
            if args.metrics:  # asked for by name: an error
                raise
            metrics = ["parzen"]  # the default set: what can be computed, and why not the rest
            print(f"scratchgan: note: {err}; computing the Parzen estimate only", file=sys.stderr)
    r = evaluate_samples(samples, data, judge, metrics, device=dev, n_valid=args.n_valid, n_test=args.n_test,
                         labels=labels if judge is not None else None, progress=not args.quiet)
    print(f"{dataset}, {what}:")
    if "fid" in r:
        print(f"  FID (judge features)    {r['fid']['value']:8.3f}   (real-data floor: {r['fid']['real_floor']:.3f}, "
              f"{r['fid']['floor']})")
    if "is" in r:
        print(f"  Inception score         {r['is']['mean']:8.3f} ± {r['is']['std']:.3f}   "
              f"(real test images: {r['is']['real_test']:.3f})")
    if "modes" in r:
        print(f"  mode coverage           {r['modes']['covered']:5d}/10 classes, KL to uniform "
              f"{r['modes']['kl_to_uniform']:.4f}; histogram {r['modes']['histogram']}")
    if "precision" in r:
        print(f"  precision / recall      {r['precision']['value']:8.3f} / {r['recall']['value']:.3f}   "
              f"(k = {r['precision']['k']})")
    if "label_accuracy" in r:
        acc = r["label_accuracy"]
        print(f"  label accuracy          {acc['value']:8.4f}   (the judge's class is the label asked for; per class "
              f"{' '.join('-' if a is None else f'{a:.2f}' for a in acc['per_class'])})")
    if "parzen" in r:
        p = r["parzen"]
        print(f"  Parzen log-likelihood {p['mean']:.1f} ± {p['std_err']:.1f} (sigma = {p['sigma']:.4f}; "
              f"{p['n_test']} test images)")
    print(f"  [{', '.join(f'{k} {v:.1f} s' for k, v in r['seconds'].items())}]")
    if args.modes_png and "modes" in r:
        from .plots import plot_modes

        plot_modes(r["modes"]["histogram"], args.modes_png, dataset=dataset, title=what)
        print(f"wrote {args.modes_png}")
    if args.json:
        atomic_write_text(args.json, json.dumps({"what": what, "dataset": dataset, **r}, indent=2))
    return 0


def _unpaired(data):
    """``data``, if the judged metrics can score it: 28×28 MNIST or Fashion-MNIST."""
    if getattr(data, "test_source", None) is not None:
        raise ValueError(f"{data.name} is a paired task: its translations are scored by evaluating a pix2pix "
                         "checkpoint trained on it; the sample metrics need --dataset mnist or fashion-mnist")
    return data


def _evaluate_translation(args, gan, config) -> int:
    """``evaluate`` on a translating checkpoint: its translations of the held-out test pairs."""
    import json

    from .metrics.translation import TRANSLATION_METRICS, evaluate_translation
    from .training.checkpoint import atomic_write_text

    metrics = ([m.strip() for m in args.metrics.split(",") if m.strip()] if args.metrics
               else list(TRANSLATION_METRICS))
    unknown = sorted(set(metrics) - set(TRANSLATION_METRICS))
    if unknown:
        raise ValueError(f"--metrics: {', '.join(unknown)} do not apply to a {gan.variant} checkpoint; choose from "
                         f"{','.join(TRANSLATION_METRICS)}")
    _threads(args, gan.device)
    dataset = args.dataset or config.resolved().dataset
    data = _load_data(dataset, args.data_dir or config.data_dir)
    judge = None
    if "accuracy" in metrics:
        from .models.judge import load_judge

        judge = load_judge(getattr(data, "base", dataset), gan.device)
    r = evaluate_translation(gan, data, judge, metrics, n=args.n, seed=args.seed)
    print(f"{dataset}, {r['n_pairs']} held-out pairs translated by {args.checkpoint} (28x28 crops, pixels in [0, 1]):")
    if "l1" in r:
        print(f"  L1 (mean |G(x) - y|)    {r['l1']:8.4f}")
    if "psnr" in r:
        print(f"  PSNR                    {r['psnr']['mean']:8.2f} dB ± {r['psnr']['std_err']:.2f}")
    if "sharpness" in r:
        print(f"  sharpness               {r['sharpness']:8.3f}   (mean Sobel magnitude / the targets'; 1 = as sharp)")
    if "accuracy" in r:
        print(f"  judge accuracy          {r['accuracy']['value']:8.4f}   (on the targets: "
              f"{r['accuracy']['ground_truth']:.4f})")
    print(f"  [{', '.join(f'{k} {v:.1f} s' for k, v in r['seconds'].items())}]")
    if args.json:
        atomic_write_text(args.json, json.dumps({"what": args.checkpoint, "dataset": dataset, **r}, indent=2))
    return 0


def _cmd_translate(args) -> int:
    from .training.trainer import gan_from_checkpoint
    from .translate import translate_files

    gan, _ = gan_from_checkpoint(args.checkpoint, args.device)
    if "source" not in gan.needs:
        raise ValueError(f"{args.checkpoint} is a {gan.variant} checkpoint: it samples images from noise; translate "
                         "needs a pix2pix checkpoint (use scratchgan sample)")
    _threads(args, gan.device)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        raise NotADirectoryError(f"--out {args.out} is a file, not a directory")
    written = translate_files(gan, args.inputs, args.out, seed=args.seed, batch_size=args.batch_size,
                              grid=args.grid)
    print(f"wrote {len(written)} translation file(s) into {args.out}" + (f", and {args.grid}" if args.grid else ""))
    return 0


def _cmd_presets(args) -> int:
    from .presets import PRESETS, describe

    print("\n\n".join(describe(name) for name in PRESETS))
    return 0


_STATE: dict = {}  # what an interrupted command leaves behind (the trainer)


def _interrupted(command, what="interrupted") -> str:
    trainer = _STATE.get("trainer")
    if command != "train" or trainer is None:
        return what
    if trainer.epoch and os.path.exists(trainer.ckpt_path):
        return (f"{what}; {trainer.ckpt_path} (end of epoch {trainer.epoch}) is intact: "
                "train … --resume continues from it")
    return f"{what} before the first epoch was complete; no checkpoint was written"


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a job scheduler's stop) met as Ctrl-C is: the same
    message on what survives, exit code 143 (128 + 15)."""


def _on_sigterm(signum, frame):
    raise Terminated


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = {"train": _cmd_train, "sample": _cmd_sample, "evaluate": _cmd_evaluate,
               "translate": _cmd_translate, "presets": _cmd_presets}[args.command]
    from .backend import BackendError
    from .data import DataError
    from .models.judge import JudgeError
    from .training.stats import NonFiniteLossError

    _STATE.clear()
    previous = (signal.signal(signal.SIGTERM, _on_sigterm)   # only the main thread may set handlers
                if args.command == "train" and threading.current_thread() is threading.main_thread() else None)
    try:
        return handler(args)
    except NonFiniteLossError as err:
        print(f"scratchgan: error: {err}; the last checkpoint is unchanged", file=sys.stderr)
        return 3
    except KeyboardInterrupt as err:
        terminated = isinstance(err, Terminated)
        print(f"scratchgan: {_interrupted(args.command, 'terminated' if terminated else 'interrupted')}",
              file=sys.stderr)
        return 143 if terminated else 130
    except BrokenPipeError:
        # the reader of our output went away (`scratchgan presets | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (BackendError, DataError, JudgeError, ValueError, OSError) as err:
        print(f"scratchgan: error: {err}", file=sys.stderr)
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        trainer = _STATE.pop("trainer", None)
        if trainer is not None:
            trainer._lock.release()


def run_script(main_fn, argv=None) -> int:
    """Run a demo's ``main`` as the command line runs its commands: a missing
    dataset, an unusable GPU or bad input give one ``error:`` line and exit
    code 2, Ctrl-C exit code 130, no traceback."""
    from .backend import BackendError
    from .data import DataError

    name = os.path.basename(sys.argv[0]) or "scratchgan"
    try:
        main_fn(argv)
        return 0
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (BackendError, DataError, ValueError, OSError) as err:
        print(f"{name}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
