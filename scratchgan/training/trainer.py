"""Training runs on image data: epochs, checkpoints, logs, pictures, resume.

:class:`Trainer` builds the variant a :class:`~scratchgan.training.config.RunConfig`
names, runs it epoch by epoch, and writes into its output directory:

* ``samples/epoch_NNNN.png`` — G applied to one *fixed* noise batch every
  ``sample_every`` epochs, so the grids compare over time;
* ``history.png`` — losses and D's outputs against iterations;
* ``metrics.jsonl`` — one JSON row per ``log_every`` iterations (window
  means) and one per epoch;
* ``config.json`` — the configuration and the resolved preset;
* ``checkpoint.npz`` — every module and optimiser, the counters, the fixed
  noise and the configuration, written atomically after every *complete*
  epoch: the state ``--resume`` continues from;
* ``partial.npz`` — the same, written when a run stops inside an epoch
  (``max_iterations``): it can be sampled and evaluated, never resumed, and it
  never replaces ``checkpoint.npz``;
* ``G_epoch_NNNN.npz`` — generator snapshots every ``snapshot_every`` epochs.

Randomness is re-derived at the start of every epoch from ``(seed, epoch)``
(data order, noise, dropout), so a resumed run repeats exactly the numbers of
an uninterrupted one on the CPU (on the GPU up to the order of reductions).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

import numpy as np

from ..backend import get_device
from ..gan import Batch
from ..models import sample_shape
from ..presets import build_gan
from .checkpoint import (CheckpointError, atomic_savez, atomic_write_text, read_checkpoint,
                         remove_stale_temporaries, save_checkpoint)
from .config import RunConfig
from .lock import acquire_run_lock
from .stats import StatsLog, grad_norm

__all__ = ["Trainer", "load_run_config", "saved_config", "check_same_run", "gan_from_checkpoint",
           "generator_from_checkpoint"]


def load_run_config(state, path) -> RunConfig:
    """The :class:`RunConfig` stored in a checkpoint's ``config`` entry."""
    if "config" not in state:
        raise CheckpointError(f"{path} is not a scratchgan checkpoint (no configuration inside)")
    return RunConfig.from_json(str(state["config"]), source=str(path))


def gan_from_checkpoint(path, device="auto"):
    """``(gan, config)``: the variant a checkpoint, ``partial.npz`` or G
    snapshot was trained as, with every network the file holds loaded (a
    snapshot holds G alone; D keeps its initial weights then).

    A snapshot written before format 2 holds G's parameters only; its
    configuration then comes from the run's ``config.json`` beside it.
    """
    state = read_checkpoint(path)
    if "config" in state:
        config = load_run_config(state, path)
    else:
        cfg_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if not os.path.exists(cfg_path):
            raise CheckpointError(f"{path} is not a scratchgan checkpoint (no configuration inside, "
                                  "and no config.json beside it)")
        with open(cfg_path) as f:
            try:
                config = RunConfig.from_dict(json.load(f)["config"], source=cfg_path)
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise CheckpointError(f"{cfg_path} is not a scratchgan run configuration ({err})") from None
    if not any(k.startswith("G/") for k in state):  # a format-1 snapshot: G's parameters at the top level
        state = {**{f"G/{k}": v for k, v in state.items() if "." in k}, **state}
    if "x_shape" in state:
        x_shape = tuple(int(s) for s in state["x_shape"])
    elif "G_out_dim" in state:
        x_shape = (int(state["G_out_dim"]),)
    else:  # a format-1 snapshot: the width of G's last weight matrix
        last = max((k for k in state if k.startswith("G/") and k.endswith(".W")),
                   key=lambda k: int(k[2:].split(".")[0]))
        x_shape = (int(state[last].shape[1]),)
    gan = build_gan(config.resolved(), x_shape=x_shape, seed=config.seed, device="cpu")
    for name, module in gan.modules().items():
        own = {k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + "/")}
        if own or name == "G":
            try:
                module.load_state_dict(own)
            except ValueError as err:
                raise CheckpointError(f"{path}: {name} does not match its configuration ({err})") from None
    device = get_device(device)
    for module in gan.modules().values():
        module.to(device)
    gan.device, gan.xp = device, device.xp
    gan.seed(config.seed)
    return gan, config


def generator_from_checkpoint(path, device="auto"):
    """``(G, prior, config)`` from a checkpoint, ``partial.npz`` or a G snapshot
    (see :func:`gan_from_checkpoint`)."""
    gan, config = gan_from_checkpoint(path, device)
    return gan.G, gan.prior, config


class Trainer:
    """Run a :class:`RunConfig` on a dataset (:class:`scratchgan.data.Dataset`).

    Parameters
    ----------
    config : RunConfig
    data : Dataset, images ``(N, 784)`` in [0, 1]
    out_dir : where everything is written; one process at a time (a lock)
    progress : show a progress bar (epoch summaries print either way)
    resume : continue the run in ``out_dir`` from its ``checkpoint.npz``
    batch_split : run G and D on this many slices of each batch in as many
        threads (CPU only; see :func:`scratchgan.presets.build_gan`)
    """

    def __init__(self, config: RunConfig, data, out_dir, *, progress=True, resume=False, batch_split=None):
        self.config = config
        self.out_dir = os.fspath(out_dir)
        self.progress = progress
        self.preset = config.resolved()
        self.m = int(self.preset.batch_size)
        self.k = int(self.preset.k)
        n = data.train.shape[0]
        self.batches_per_epoch = n // self.m
        self.iters_per_epoch = self.batches_per_epoch // self.k
        if self.iters_per_epoch < 1:
            raise ValueError(f"batch size {self.m} (×k={self.k}) is larger than the {n} training images")
        self.device = get_device(config.device)
        self.x_shape = sample_shape(self.preset.model, getattr(data, "image_shape", (1, 28, 28)))
        self.gan = build_gan(self.preset, x_shape=self.x_shape, pixel_mean=data.train.mean(axis=0),
                             steps_per_epoch=self.iters_per_epoch, seed=config.seed, device=self.device,
                             linear_decay=config.lr_decay_window(), batch_split=batch_split)
        # on the device once, in the model's layout (a view: flat or (N, 1, 28, 28))
        self.train_images = self.device.asarray(data.train).reshape((-1,) + self.x_shape)
        # what the variant needs besides the images, from the dataset: labels
        # (conditional GANs) as int64, paired source images (pix2pix)
        self.train_extra = {}
        for name in self.gan.needs:
            values = getattr(data, f"train_{name}", None)
            if values is None:
                raise ValueError(f"the {self.preset.variant!r} variant needs {name} in its batches, and the "
                                 f"{data.name} dataset has no train_{name}")
            values = np.asarray(values)
            if name == "labels":  # checked here, on the host, once: never inside a step on the GPU
                from ..gan.cgan import check_labels

                values = check_labels(values, len(values), self.gan.n_classes, f"the {data.name} train_labels")
            else:
                values = values.reshape(self.train_images.shape[:1] + self.gan.source_shape)
            self.train_extra[name] = self.device.asarray(values)
        held = getattr(data, "valid", None)  # fixed training and validation images for held-out statistics
        held_labels = getattr(data, "valid_labels", None)
        # all the validation images, for a variant's end-of-epoch statistics (InfoGAN: c1 as a classifier)
        self.valid_all = ((held, held_labels) if hasattr(self.gan, "epoch_stats") and held is not None
                          and len(held) and held_labels is not None else None)
        self.valid_batch = (self.device.asarray(held[:100]).reshape((-1,) + self.x_shape)
                            if held is not None and len(held) else None)
        self.fixed_train = self.train_images[:100]
        self.epoch = 0  # epochs completed
        # the grids' inputs, the same every epoch; a translating variant gets 100 held-out sources
        grid = {}
        if "source" in self.gan.needs:
            held_out = data.valid_source if len(data.valid_source) else data.test_source
            grid["source"] = np.asarray(held_out[:100]).reshape((-1,) + self.gan.source_shape)
        self.fixed = self.gan.grid_inputs(len(grid["source"]) if grid else 100, config.seed, **grid)
        self.history: list = []
        self.ckpt_path = os.path.join(self.out_dir, "checkpoint.npz")
        self.partial_path = os.path.join(self.out_dir, "partial.npz")
        self.metrics_path = os.path.join(self.out_dir, "metrics.jsonl")
        os.makedirs(os.path.join(self.out_dir, "samples"), exist_ok=True)
        self._lock = acquire_run_lock(self.out_dir)  # before touching any file in it
        try:
            remove_stale_temporaries(self.out_dir)
            if resume:
                self._resume()
            else:
                self._start()
        except BaseException:
            self._lock.release()
            raise

    # -- starting and resuming ---------------------------------------------------------------
    def _start(self):
        if os.path.exists(self.ckpt_path):
            raise FileExistsError(f"{self.ckpt_path} exists: pass --resume to continue it, or choose "
                                  "another --out")
        atomic_write_text(self.metrics_path, "")
        atomic_write_text(os.path.join(self.out_dir, "config.json"), json.dumps(
            {"config": dataclasses.asdict(self.config), "resolved": dataclasses.asdict(self.preset)},
            indent=2, default=list))

    def _resume(self):
        if not os.path.exists(self.ckpt_path):
            partial = " (only partial.npz, from a run stopped inside its first epoch)" \
                if os.path.exists(self.partial_path) else ""
            raise FileNotFoundError(f"--resume: no checkpoint at {self.ckpt_path}{partial}; "
                                    "a run has one after its first complete epoch")
        state = read_checkpoint(self.ckpt_path)
        saved = load_run_config(state, self.ckpt_path)
        if int(state.get("partial_iterations", 0)):  # format 1 wrote partial epochs here
            raise ValueError(f"{self.ckpt_path} was written by a run stopped inside epoch "
                             f"{int(state['epoch']) + 1}; it can be sampled and evaluated, but not "
                             "resumed exactly: start a new run")
        check_same_run(saved, self.config, self.ckpt_path)
        check_decay_window(saved, self.config, int(state["epoch"]), self.ckpt_path)
        self.gan.load_state_dict(state)
        self.epoch = int(state["epoch"])
        fixed = {k[len("fixed/"):]: v for k, v in state.items() if k.startswith("fixed/")}
        self.fixed = fixed or {"z": state["fixed_z"]}  # (formats 1 and early 2 saved fixed_z)
        # keep the log rows the checkpoint had reached; a torn last line (a
        # kill while it was written) is dropped like every row past it
        rows = []
        if os.path.exists(self.metrics_path):
            with open(self.metrics_path) as f:
                for line in f:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        break
        rows = [_rename_v1_stats(r) for r in rows if r.get("epoch", 0) <= self.epoch]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
        self.history = [r for r in rows if r.get("kind") == "window"]

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self, partial=0):
        """``checkpoint.npz`` after a complete epoch; ``partial.npz`` (``partial``
        iterations into the next epoch) otherwise."""
        save_checkpoint(self.partial_path if partial else self.ckpt_path, self.gan,
                        epoch=self.epoch, partial_iterations=partial, seed=self.config.seed,
                        config=self.config.to_json(), x_shape=self.x_shape,
                        **{f"fixed/{k}": v for k, v in self.fixed.items()})
        if not partial and os.path.exists(self.partial_path):
            os.remove(self.partial_path)  # superseded by a complete epoch

    def save_snapshot(self, path):
        """G alone, with what is needed to rebuild it (``sample``, ``evaluate``)."""
        state = {f"G/{k}": v for k, v in self.gan.G.state_dict().items()}
        atomic_savez(path, {**state, "format": np.asarray(2), "config": np.asarray(self.config.to_json()),
                            "x_shape": np.asarray(self.x_shape), "epoch": np.asarray(self.epoch)})

    # -- one epoch -------------------------------------------------------------------------------
    def _epoch_batches(self, epoch):
        """Shuffled sequential minibatches (pylearn2's ``shuffled_sequential``),
        the order drawn from ``(seed, epoch)``; a callable returning the next.
        A variant that asks for more batches than an epoch holds (WGAN's
        authors' schedule) gets further passes, each in a new order."""
        def order(rnd):
            perm = np.random.default_rng(np.random.SeedSequence([self.config.seed, epoch, rnd])).permutation(
                self.train_images.shape[0])
            return self.device.asarray(perm[: self.batches_per_epoch * self.m].reshape(-1, self.m))

        def batches():
            rnd = 1
            while True:
                for idx in order(rnd):
                    yield Batch(self.train_images[idx], **{k: v[idx] for k, v in self.train_extra.items()})
                rnd += 1

        stream = batches()
        return lambda: next(stream)

    def run(self):
        """Train until ``config.epochs`` epochs are done; returns the history rows.
        The folder's lock is released at the end (and taken again by a second ``run``)."""
        if self._lock.released:
            self._lock = acquire_run_lock(self.out_dir)
        try:
            return self._run()
        finally:
            self._lock.release()

    def _run(self):
        from tqdm.auto import tqdm

        cfg = self.config
        log = StatsLog()
        total = 0
        for epoch in range(self.epoch + 1, cfg.epochs + 1):
            t0 = time.perf_counter()
            self.gan.seed((cfg.seed, epoch))
            next_batch = self._epoch_batches(epoch)
            bar = tqdm(total=self.iters_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", disable=not self.progress,
                       leave=False, dynamic_ncols=True, file=sys.stderr)
            window = []
            for i in range(self.iters_per_epoch):
                stats = self.gan.iteration(next_batch)
                stats["d_grad_norm"], stats["g_grad_norm"] = grad_norm(self.gan.D), grad_norm(self.gan.G)
                log.append(self.gan.iterations, stats)
                total += 1
                last = i == self.iters_per_epoch - 1
                stop = cfg.max_iterations is not None and total >= cfg.max_iterations
                if len(log) >= cfg.log_every or last or stop:
                    rows = log.flush()  # the only host sync; raises on a non-finite loss
                    window += rows
                    self._log_window(rows, epoch, self._heldout())
                    bar.set_postfix({k: f"{v:.3f}" for k, v in rows[-1].items() if k != "step" and
                                     "norm" not in k}, refresh=False)
                bar.update(1)
                if stop:
                    break
            bar.close()
            if i + 1 == self.iters_per_epoch:
                self.epoch = epoch
                self._end_of_epoch(epoch, window, time.perf_counter() - t0)
            else:
                self._stopped_inside(epoch, i + 1)
            if stop:
                break
        return self.history

    def _heldout(self) -> dict:
        """The variant's statistics on held-out data (a critic's Wasserstein
        estimate on validation images: WGAN-GP's overfitting diagnostic), if it has any."""
        if self.valid_batch is None or not hasattr(self.gan, "heldout_stats"):
            return {}
        return {k: float(v) for k, v in self.gan.heldout_stats(self.fixed_train, self.valid_batch, self.fixed).items()}

    def _log_window(self, rows, epoch, extra=None):
        keys = [k for k in rows[0] if k != "step"]
        rec = {"kind": "window", "epoch": epoch, "step": rows[-1]["step"],
               **{k: float(np.mean([r[k] for r in rows])) for k in keys}, **(extra or {})}
        self.history.append(rec)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _grid(self, name, title):
        from ..plots import save_grid

        x = self.gan.generate_from(self.fixed)
        if "labels" in self.gan.needs:  # grid_inputs: one row per class, the same z down each column
            title += "; one row per class"
        save_grid(x, os.path.join(self.out_dir, "samples", name), nrow=10, title=title)

    def _history_plot(self):
        from ..plots import plot_history

        dataset = self.preset.dataset
        plot_history(self.history, os.path.join(self.out_dir, "history.png"),
                     title=self.config.describe() + ("" if self.config.dataset else f", {dataset}"))

    def _end_of_epoch(self, epoch, rows, elapsed):
        """The epoch's log row, then its checkpoint (if the process dies between
        the two, resuming drops the row again), snapshot and pictures."""
        summary = {"kind": "epoch", "epoch": epoch, "step": self.gan.iterations, "elapsed_s": round(elapsed, 2),
                   **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "step"}}
        if self.valid_all is not None:   # the variant's statistics on every validation image
            summary.update({k: float(v) for k, v in self.gan.epoch_stats(*self.valid_all).items()})
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(summary) + "\n")
        self.save_checkpoint()
        cfg = self.config
        if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
            self.save_snapshot(os.path.join(self.out_dir, f"G_epoch_{epoch:04d}.npz"))
        if cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs):
            self._grid(f"epoch_{epoch:04d}.png", f"{cfg.describe()}, epoch {epoch}")
        self._history_plot()
        parts = "  ".join(f"{k} {summary[k]:.3f}" for k in summary
                          if k not in ("kind", "epoch", "step", "elapsed_s") and "norm" not in k)
        print(f"epoch {epoch}: {parts}  [{elapsed:.0f} s]", file=sys.stderr)

    def _stopped_inside(self, epoch, done):
        """Stopped by ``max_iterations`` inside ``epoch``: ``partial.npz`` and a
        grid; ``checkpoint.npz`` (the last complete epoch) stays as it is."""
        self.save_checkpoint(partial=done)
        self._grid(f"epoch_{epoch:04d}_partial.png",
                   f"{self.config.describe()}, epoch {epoch}, {done} of {self.iters_per_epoch} iterations")
        self._history_plot()


#: the command-line option behind each field of a resolved preset
_FLAG_OF = {"dataset": "--dataset", "loss": "--loss", "variant": "--update", "k": "-k", "batch_size": "--batch-size",
            "optimizers": "--optimizer/--lr/--lr-d/--lr-g", "prior": "--prior", "d_scale": "--update/--loss"}


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_same_run(saved: RunConfig, config: RunConfig, path) -> None:
    """Refuse to resume the checkpoint at ``path`` (trained with ``saved``)
    with a configuration that would build or train a different model; the
    message names the command-line option that differs."""
    if saved.preset != config.preset:
        raise ValueError(f"--resume: --preset {config.preset} here, but {path} was trained with --preset "
                         f"{saved.preset}")
    theirs, ours = dataclasses.asdict(saved.resolved()), dataclasses.asdict(config.resolved())
    for key in ours:
        if key != "deviations" and theirs[key] != ours[key]:
            flag = _FLAG_OF.get(key, "--preset")
            raise ValueError(f"--resume: {key} is {_short(ours[key])} here but {_short(theirs[key])} in {path} "
                             f"(set by {flag}); leave {flag} out to continue with the checkpoint's settings")
    if saved.seed != config.seed:
        raise ValueError(f"--resume: --seed {config.seed} here, but {path} was trained with --seed {saved.seed}")


def check_decay_window(saved: RunConfig, config: RunConfig, done: int, path) -> None:
    """Refuse a resume, ``done`` epochs in, that would jump the learning rate:
    a new decay window that starts before epoch ``done`` ends, or one that
    moves a decay already under way (a resume without the run's ``--epochs``
    would). ``--lr-decay-epochs 0`` ends a decay on purpose."""
    old, new = saved.lr_decay_window(), config.lr_decay_window()
    if new is None or new == old:
        return
    if new[0] < done or (old is not None and old[0] < done):
        was = f"decays over epochs {old[0] + 1}..{old[1]}" if old else "has no decay"
        raise ValueError(f"--resume: {path} {was} and has completed {done} epochs; --epochs {config.epochs} "
                         f"--lr-decay-epochs {config.lr_decay_epochs} would decay over epochs {new[0] + 1}.."
                         f"{new[1]} and make the learning rate jump: pass --epochs "
                         + (f"{old[1]} to continue the decay" if old else "E with E - N >= the epochs done")
                         + ", or --lr-decay-epochs 0 for none")


def saved_config(out_dir) -> RunConfig:
    """The configuration of the run whose ``checkpoint.npz`` is in ``out_dir``."""
    path = os.path.join(os.fspath(out_dir), "checkpoint.npz")
    if not os.path.exists(path):
        partial = os.path.exists(os.path.join(os.fspath(out_dir), "partial.npz"))
        raise FileNotFoundError(f"--resume: no checkpoint at {path}"
                                + (" (only partial.npz, from a run stopped inside its first epoch)" if partial
                                   else "") + "; a run has one after its first complete epoch")
    return load_run_config(read_checkpoint(path), path)


def _rename_v1_stats(row):
    """Log rows of format 1 called mean D(x) and D(G(z)) ``d_real``/``d_fake``."""
    for old, new in (("d_real", "D_x"), ("d_fake", "D_G_z")):
        if old in row:
            row[new] = row.pop(old)
    return row
