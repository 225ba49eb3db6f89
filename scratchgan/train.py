"""Training runs on image data: epochs, checkpoints, logs, pictures, resume.

:func:`build_gan` turns a preset (``scratchgan.models.PRESETS``) plus
overrides into a :class:`scratchgan.gan.GAN`; :class:`Trainer` runs it epoch by
epoch and writes, into its output directory:

* ``samples/epoch_NNNN.png`` — G applied to one *fixed* noise batch after every
  ``sample_every`` epochs, so the grids compare over time;
* ``history.png`` — D and G losses, mean D(x) and D(G(z));
* ``metrics.jsonl`` — one JSON row per ``log_every`` iterations (window means)
  and one per epoch;
* ``checkpoint.npz`` — G, D, both optimisers, the iteration counter, the epoch,
  the seed, the fixed noise and the configuration, written atomically at the
  end of every epoch (a crash leaves the previous one intact);
* ``G_epoch_NNNN.npz`` — generator snapshots every ``snapshot_every`` epochs.

Randomness is re-derived at the start of every epoch from ``(seed, epoch)``
(data order, noise, dropout), so a run resumed from a checkpoint repeats
exactly the numbers of an uninterrupted run on the CPU (on the GPU too, up to
the order of floating-point reductions).
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from . import losses as _losses
from .backend import get_device, to_numpy
from .gan import GAN, NoisePrior, StatsLog
from .layers import Maxout
from .models import PRESETS, build_discriminator, build_generator, pixel_logit_bias
from .network import atomic_savez
from .optim import SGD, Adam, ExponentialDecay, LinearMomentum

__all__ = ["TrainConfig", "build_gan", "Trainer", "load_checkpoint", "generator_from_checkpoint"]


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def acquire_run_lock(out_dir) -> str:
    """Claim ``out_dir`` for this process: ``<out_dir>/.lock`` holds our pid.

    Two training processes writing one directory would interleave their logs
    and overwrite each other's checkpoints. A lock left by a process that no
    longer runs (killed, crashed) is taken over; one held by a live process is
    a :class:`FileExistsError` naming its pid. Re-entrant within a process.
    """
    path = os.path.join(os.fspath(out_dir), ".lock")
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                with open(path) as f:
                    pid = int(f.read().strip() or 0)
            except (OSError, ValueError):
                pid = 0
            if pid == os.getpid():
                return path
            if pid and _pid_alive(pid):
                raise FileExistsError(
                    f"{out_dir} is being written by another training process (pid {pid}); "
                    "stop it first, or choose another --out"
                ) from None
            os.remove(path)  # stale: its process is gone
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return path
    raise FileExistsError(f"could not lock {out_dir}")


def release_run_lock(path) -> None:
    try:
        with open(path) as f:
            mine = f.read().strip() == str(os.getpid())
        if mine:
            os.remove(path)
    except OSError:
        pass


@dataclass
class TrainConfig:
    """Everything that defines a run. ``None`` means "the preset's value"."""

    dataset: str = "mnist"
    preset: str = "paper"
    loss: str | None = None
    update: str | None = None          # "simultaneous" (authors' code) or "alternating" (Algorithm 1)
    k: int | None = None
    epochs: int = 100
    batch_size: int | None = None
    lr: float | None = None
    optimizer: str = "sgd"             # "sgd" (momentum, the paper) or "adam"
    prior: str | None = None
    device: str = "auto"
    seed: int = 0
    sample_every: int = 1
    snapshot_every: int = 10
    log_every: int = 50
    max_iterations: int | None = None  # stop early (smoke tests)
    data_dir: str | None = None
    extra: dict = field(default_factory=dict)

    def resolved(self) -> dict:
        """The preset with this config's overrides applied."""
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        p = dict(PRESETS[self.preset])
        for key in ("loss", "update", "k", "batch_size", "lr", "prior"):
            v = getattr(self, key)
            if v is not None:
                p[key] = v
        p.update(self.extra)
        if p["update"] not in ("simultaneous", "alternating"):
            raise ValueError(f"update must be 'simultaneous' or 'alternating', got {p['update']!r}")
        if p["update"] == "simultaneous" and int(p["k"]) != 1:
            raise ValueError("simultaneous updates need k = 1; use --update alternating for k > 1")
        p["loss"] = _losses.get(p["loss"]).name  # canonical name ("ns" -> "non-saturating")
        if p["update"] == "alternating" or p["loss"] not in ("non-saturating", "minimax"):
            # the 0.5 belongs to the authors' simultaneous cross-entropy update only;
            # Algorithm 1 (alternating) and the later losses have none
            p["d_scale"] = 1.0
        return p


def build_gan(config: TrainConfig, train_images, steps_per_epoch: int) -> GAN:
    """G, D, optimisers and loss for ``config`` (initialised on the host from
    ``config.seed``, then moved to the device)."""
    p = config.resolved()
    device = get_device(config.device)
    d = train_images.shape[1]
    init_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2014]))
    G = build_generator(d, output_bias=pixel_logit_bias(to_numpy(train_images)), rng=init_rng, **p)
    D = build_discriminator(d, rng=init_rng, **p)
    if config.optimizer == "sgd":
        lr = ExponentialDecay(p["lr"], p["lr_decay"], p["min_lr"])
        mu = LinearMomentum(p["momentum"], p["final_momentum"], p["momentum_saturate"], steps_per_epoch)
        # Alternating updates make k D updates per iteration; D's momentum must
        # still follow the epoch (PAPER.md §3.4), not rise k times faster.
        k = 1 if p["update"] == "simultaneous" else int(p["k"])
        d_mu = LinearMomentum(p["momentum"], p["final_momentum"], p["momentum_saturate"], steps_per_epoch * k)
        d_opt, g_opt = SGD(D, lr=lr, momentum=d_mu), SGD(G, lr=lr, momentum=mu)
    elif config.optimizer == "adam":
        lr = config.lr if config.lr is not None else 2e-4
        d_opt, g_opt = Adam(D, lr=lr), Adam(G, lr=lr)
    else:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {config.optimizer!r}")
    loss = _losses.get(p["loss"], d_scale=p["d_scale"])
    return GAN(G, D, d_opt, g_opt, NoisePrior(p["noise_dim"], p["prior"]), loss=loss, k=int(p["k"]),
               simultaneous=p["update"] == "simultaneous", seed=config.seed, device=device)


def _config_to_json(config: TrainConfig) -> str:
    return json.dumps(dataclasses.asdict(config), sort_keys=True)


def _read_npz(path) -> dict:
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files}
    except Exception as err:
        raise ValueError(f"{path} is not a readable scratchgan checkpoint ({err})") from None


def _maxout_columns_to_piece_major(state, D) -> dict:
    """A checkpoint from before Maxout stored its columns piece-major: reorder
    D's maxout weights, biases and their momentum buffers (pylearn2's
    unit-major order → ours, :meth:`Maxout.from_unit_major`)."""
    state = dict(state)
    for i, layer in enumerate(D.layers):
        if isinstance(layer, Maxout):
            for name in ("W", "b"):
                # the parameter, and every optimiser buffer of it (SGD's v, Adam's m and v)
                keys = [f"D/{i}.{name}"] + [k for k in state if k.startswith(f"d_opt/buf/{i}.{name}:")]
                for key in keys:
                    if key in state:
                        state[key] = Maxout.from_unit_major(np.asarray(state[key]), layer.n_units, layer.n_pieces)
    return state


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :class:`Trainer` into a dict of host arrays
    plus ``"config"`` (a :class:`TrainConfig`)."""
    state = _read_npz(path)
    if "config" not in state:
        raise ValueError(f"{path} is not a scratchgan checkpoint (no config inside)")
    state["config"] = TrainConfig(**json.loads(str(state["config"])))
    return state


def generator_from_checkpoint(path, device="auto"):
    """``(G, noise_prior, config)`` from a checkpoint, G on ``device`` in float32.

    ``path`` may also be a snapshot ``G_epoch_NNNN.npz``: it holds G's
    parameters only, so the configuration comes from the run's ``config.json``
    beside it.
    """
    state = _read_npz(path)
    if "config" in state:
        config = TrainConfig(**json.loads(str(state["config"])))
        params = {k[2:]: v for k, v in state.items() if k.startswith("G/")}
    else:
        cfg_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if not os.path.exists(cfg_path):
            raise ValueError(f"{path} is not a scratchgan checkpoint (no config inside), and there "
                             f"is no config.json beside it to read a G snapshot with")
        with open(cfg_path) as f:
            config = TrainConfig(**json.load(f)["config"])
        params = state
    p = config.resolved()
    if "G_out_dim" in state:
        d = int(state["G_out_dim"])
    else:  # a snapshot: the width of G's last weight matrix
        weights = sorted((k for k in params if k.endswith(".W")), key=lambda k: int(k.split(".")[0]))
        d = params[weights[-1]].shape[1] if weights else 784
    G = build_generator(d, **p)
    G.load_state_dict(params)
    G.to(get_device(device))
    return G, NoisePrior(p["noise_dim"], p["prior"]), config


class Trainer:
    """Run a :class:`TrainConfig` on a dataset (``scratchgan.data.Dataset``)."""

    def __init__(self, config: TrainConfig, data, out_dir, *, progress=True, resume=False):
        self.config = config
        self.out_dir = os.fspath(out_dir)
        self.progress = progress
        p = config.resolved()
        self.m = int(p["batch_size"])
        self.k = 1 if p["update"] == "simultaneous" else int(p["k"])
        n = data.train.shape[0]
        self.batches_per_epoch = n // self.m
        self.iters_per_epoch = self.batches_per_epoch // self.k
        if self.iters_per_epoch < 1:
            raise ValueError(f"batch size {self.m} (×k={self.k}) is larger than the {n} training images")
        self.device = get_device(config.device)
        self.gan = build_gan(config, data.train, self.iters_per_epoch)
        self.train_images = self.device.asarray(data.train)  # on the device once
        self.train_host = data.train
        self.epoch = 0  # epochs completed
        fixed_rng = np.random.default_rng(np.random.SeedSequence([config.seed, 7]))
        self.fixed_z = self.gan.noise.sample(100, fixed_rng, np.float32)
        self.history: list[dict] = []
        os.makedirs(os.path.join(self.out_dir, "samples"), exist_ok=True)
        self.ckpt_path = os.path.join(self.out_dir, "checkpoint.npz")
        self.metrics_path = os.path.join(self.out_dir, "metrics.jsonl")
        self._lock = acquire_run_lock(self.out_dir)  # before touching any file in it
        try:
            self._open(resume, p)
        except BaseException:
            release_run_lock(self._lock)
            raise

    def _open(self, resume, p):
        config = self.config
        if resume:
            self._resume()
        else:
            if os.path.exists(self.ckpt_path):
                raise FileExistsError(
                    f"{self.ckpt_path} exists: pass --resume to continue it, or choose another --out"
                )
            open(self.metrics_path, "w").close()
            with open(os.path.join(self.out_dir, "config.json"), "w") as f:
                json.dump({"config": dataclasses.asdict(config), "resolved": p}, f, indent=2)

    # -- checkpoints ---------------------------------------------------------------
    def save_checkpoint(self, partial=None):
        state = self.gan.state_dict()
        state.update(
            epoch=np.asarray(self.epoch), partial_iterations=np.asarray(partial or 0),
            seed=np.asarray(self.config.seed),
            fixed_z=self.fixed_z, config=np.asarray(_config_to_json(self.config)),
            G_out_dim=np.asarray(self.train_host.shape[1]),
            maxout_columns=np.asarray("piece-major"),
        )
        atomic_savez(self.ckpt_path, state)

    def _resume(self):
        state = load_checkpoint(self.ckpt_path)
        if int(state.get("partial_iterations", 0)):
            raise ValueError(
                f"{self.ckpt_path} was written by a run stopped inside epoch {int(state['epoch']) + 1} "
                f"(--max-iterations, after {int(state['partial_iterations'])} of its iterations); it can be "
                "sampled and evaluated, but not resumed exactly: start a new run"
            )
        saved = state["config"]
        for key in ("dataset", "preset", "loss", "update", "k", "batch_size", "lr", "optimizer", "prior", "seed"):
            if getattr(saved, key) != getattr(self.config, key):
                raise ValueError(
                    f"--resume: {key} is {getattr(self.config, key)!r} here but "
                    f"{getattr(saved, key)!r} in {self.ckpt_path}"
                )
        if "maxout_columns" not in state:  # written before Maxout's columns became piece-major
            state = _maxout_columns_to_piece_major(state, self.gan.D)
        self.gan.load_state_dict(state)
        self.epoch = int(state["epoch"])
        self.fixed_z = state["fixed_z"]
        # keep only the log rows the checkpoint had reached
        rows = []
        if os.path.exists(self.metrics_path):
            with open(self.metrics_path) as f:
                rows = [json.loads(line) for line in f if line.strip()]
        rows = [r for r in rows if r.get("epoch", 0) <= self.epoch]
        with open(self.metrics_path, "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        self.history = [r for r in rows if r.get("kind") == "window"]

    # -- one epoch ---------------------------------------------------------------------
    def _epoch_sampler(self, epoch):
        """Shuffled sequential minibatches (pylearn2's ``shuffled_sequential``),
        the order drawn from ``(seed, epoch)``."""
        order = np.random.default_rng(np.random.SeedSequence([self.config.seed, epoch, 1])).permutation(
            self.train_images.shape[0])
        order = self.device.asarray(order[: self.batches_per_epoch * self.m].reshape(-1, self.m))
        position = [0]

        def sample_data(m=None):
            idx = order[position[0]]
            position[0] += 1
            return self.train_images[idx]

        return sample_data

    def run(self):
        """Train until ``config.epochs`` epochs are done. Returns the history rows."""
        try:
            return self._run()
        finally:
            release_run_lock(self._lock)

    def _run(self):
        from tqdm.auto import tqdm

        cfg = self.config
        log = StatsLog()
        start_epoch = self.epoch + 1
        total_iters = 0
        t0 = time.perf_counter()
        for epoch in range(start_epoch, cfg.epochs + 1):
            self.gan.seed((cfg.seed, epoch))
            sample_data = self._epoch_sampler(epoch)
            bar = tqdm(total=self.iters_per_epoch, desc=f"epoch {epoch}/{cfg.epochs}",
                       disable=not self.progress, leave=False, dynamic_ncols=True, file=sys.stderr)
            window: list[dict] = []
            for i in range(self.iters_per_epoch):
                log.append(self.gan.iterations, self.gan.iteration(sample_data, self.m))
                total_iters += 1
                last = i == self.iters_per_epoch - 1
                stop_early = cfg.max_iterations is not None and total_iters >= cfg.max_iterations
                if len(log) >= cfg.log_every or last or stop_early:
                    rows = log.flush()  # the only host sync; raises on a non-finite loss
                    window += rows
                    self._log_window(rows, epoch)
                    r = rows[-1]
                    bar.set_postfix(D=f"{r['d_loss']:.3f}", G=f"{r['g_loss']:.3f}",
                                    Dx=f"{r['d_real']:.2f}", DGz=f"{r['d_fake']:.2f}", refresh=False)
                bar.update(1)
                if stop_early:
                    break
            bar.close()
            done = i + 1
            if done == self.iters_per_epoch:
                self.epoch = epoch
                self._end_of_epoch(epoch, window, time.perf_counter() - t0)
            else:  # stopped by --max-iterations inside the epoch
                self._end_of_epoch(epoch, window, time.perf_counter() - t0, partial=done)
            if cfg.max_iterations is not None and total_iters >= cfg.max_iterations:
                break
        return self.history

    def _log_window(self, rows, epoch):
        keys = [k for k in rows[0] if k != "step"]
        rec = {"kind": "window", "epoch": epoch, "step": rows[-1]["step"],
               **{k: float(np.mean([r[k] for r in rows])) for k in keys}}
        self.history.append(rec)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(rec) + "\n")

    def _end_of_epoch(self, epoch, rows, elapsed, partial=None):
        """Checkpoint, snapshot, pictures and log row after an epoch.

        ``partial``: the run stopped (``max_iterations``) after this many
        iterations of ``epoch``; the checkpoint records it, ``self.epoch``
        stays at the last *complete* epoch, and ``--resume`` refuses it (the
        rest of the epoch's random draws cannot be replayed exactly).
        """
        from .plots import plot_history, save_grid

        cfg = self.config
        if not partial:
            # the log row first: if the process dies before the checkpoint is
            # written, resuming from the previous one drops this row again
            summary = {"kind": "epoch", "epoch": epoch, "step": self.gan.iterations,
                       "elapsed_s": round(elapsed, 2),
                       **{k: float(np.mean([r[k] for r in rows])) for k in rows[0] if k != "step"}}
            with open(self.metrics_path, "a") as f:
                f.write(json.dumps(summary) + "\n")
        self.save_checkpoint(partial=partial)
        if partial:
            x = self.gan.sample(100, z=self.device.asarray(self.fixed_z))
            save_grid(x, os.path.join(self.out_dir, "samples", f"epoch_{epoch:04d}_partial.png"), nrow=10,
                      title=f"epoch {epoch}, {partial} of {self.iters_per_epoch} iterations")
            plot_history(self.history, os.path.join(self.out_dir, "history.png"),
                         title=f"{cfg.preset} preset, {cfg.dataset}")
            return
        if cfg.snapshot_every and epoch % cfg.snapshot_every == 0:
            self.gan.G.save(os.path.join(self.out_dir, f"G_epoch_{epoch:04d}.npz"))
        if cfg.sample_every and (epoch % cfg.sample_every == 0 or epoch == cfg.epochs):
            x = self.gan.sample(100, z=self.device.asarray(self.fixed_z))
            save_grid(x, os.path.join(self.out_dir, "samples", f"epoch_{epoch:04d}.png"),
                      nrow=10, title=f"epoch {epoch}")
        plot_history(self.history, os.path.join(self.out_dir, "history.png"),
                     title=f"{cfg.preset} preset, {cfg.dataset}")
        if self.progress:
            print(f"epoch {epoch}: D {summary['d_loss']:.4f}  G {summary['g_loss']:.4f}  "
                  f"D(x) {summary['d_real']:.3f}  D(G(z)) {summary['d_fake']:.3f}  "
                  f"[{elapsed:.0f} s]", file=sys.stderr)
