"""Tests for scratchgan.train: runs, checkpoints, resume, failures.

Everything runs on a tiny synthetic dataset (240 random 28x28 images) and
very narrow networks (overrides through ``TrainConfig.extra``), so an epoch
is 6 iterations and takes a fraction of a second on the CPU. Tests that need
a finished first epoch copy one shared run instead of training their own.
"""

import json
import math
import os
import shutil

import numpy as np
import pytest

from scratchgan.data import Dataset
from scratchgan.gan import NonFiniteLossError
from scratchgan.train import (
    TrainConfig,
    Trainer,
    build_gan,
    generator_from_checkpoint,
    load_checkpoint,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
N_TRAIN, BATCH = 240, 40
ITERS = N_TRAIN // BATCH  # 6 simultaneous iterations per epoch

# narrow G and D, so that the tests measure the trainer, not matrix products
# (lists, not tuples: the config goes through JSON in the checkpoint)
TINY = dict(noise_dim=8, g_hidden=[32], d_units=16, d_pieces=2, d_layers=1, d_dropout=[0.2, 0.5])


def make_data(n=N_TRAIN, seed=0, nan_rows=0):
    rng = np.random.default_rng(seed)
    train = rng.random((n, 784), dtype=np.float32)
    if nan_rows:
        train[:nan_rows, 3] = np.nan
    lab = np.zeros(n, np.uint8)
    valid = rng.random((50, 784), dtype=np.float32)
    return Dataset(name="mnist", split="paper", train=train, train_labels=lab,
                   valid=valid, valid_labels=np.zeros(50, np.uint8),
                   test=valid.copy(), test_labels=np.zeros(50, np.uint8))


def make_config(**kw):
    base = dict(preset="small", batch_size=BATCH, device="cpu", seed=0, epochs=1,
                log_every=4, sample_every=1, snapshot_every=10, extra=dict(TINY))
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def _one_epoch_source(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("one_epoch")
    train(out, data, epochs=1)
    return out


@pytest.fixture
def one_epoch(tmp_path, _one_epoch_source):
    """A fresh copy of a run directory after one epoch (``epochs=1``)."""
    out = tmp_path / "run"
    shutil.copytree(_one_epoch_source, out)
    return out


def train(out, data, resume=False, **kw):
    trainer = Trainer(make_config(**kw), data, out, progress=False, resume=resume)
    trainer.run()
    return trainer


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


# --------------------------------------------------------------------------
# what a run writes
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def two_epoch_run(tmp_path_factory, data):
    out = tmp_path_factory.mktemp("run")
    trainer = train(out, data, epochs=2, snapshot_every=2)
    return out, trainer


def test_run_writes_its_files(two_epoch_run):
    out, trainer = two_epoch_run
    for name in ("samples/epoch_0001.png", "samples/epoch_0002.png", "history.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    assert (out / "checkpoint.npz").is_file()
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["preset"] == "small" and cfg["config"]["seed"] == 0
    assert cfg["resolved"]["batch_size"] == BATCH
    assert cfg["resolved"]["update"] == "simultaneous"
    assert trainer.iters_per_epoch == ITERS
    assert trainer.gan.iterations == 2 * ITERS and trainer.epoch == 2


def test_metrics_jsonl(two_epoch_run):
    out, _ = two_epoch_run
    rows = read_rows(out / "metrics.jsonl")
    for r in rows:
        for key in ("d_loss", "g_loss", "d_real", "d_fake"):
            assert math.isfinite(r[key]), (key, r)
        assert 0 <= r["d_real"] <= 1 and 0 <= r["d_fake"] <= 1
    windows = [r for r in rows if r["kind"] == "window"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert [r["step"] for r in epochs] == [ITERS, 2 * ITERS]
    # log_every = 4 over 6 iterations: windows end at iterations 4 and 6 of each epoch
    assert [r["step"] for r in windows] == [3, 5, 9, 11]
    # the losses start near log 2 (D and G both at chance; D carries the 0.5 factor)
    assert windows[0]["d_loss"] == pytest.approx(math.log(2), abs=0.05)
    assert windows[0]["g_loss"] == pytest.approx(math.log(2), abs=0.05)


def test_checkpoint_contents(two_epoch_run):
    out, trainer = two_epoch_run
    state = load_checkpoint(out / "checkpoint.npz")
    assert int(state["epoch"]) == 2 and int(state["iterations"]) == 2 * ITERS
    assert int(state["seed"]) == 0 and int(state["G_out_dim"]) == 784
    assert state["config"] == trainer.config
    assert int(state["d_opt/t"]) == 2 * ITERS and int(state["g_opt/t"]) == 2 * ITERS
    assert state["fixed_z"].shape == (100, TINY["noise_dim"])
    for k, v in trainer.gan.G.state_dict().items():
        assert np.array_equal(state[f"G/{k}"], v)
    for k, v in trainer.gan.D.state_dict().items():
        assert np.array_equal(state[f"D/{k}"], v)
    assert any(k.startswith("d_opt/buf/") for k in state)  # momentum buffers


def test_snapshots_follow_snapshot_every(two_epoch_run):
    out, trainer = two_epoch_run
    assert not (out / "G_epoch_0001.npz").exists()
    snap = npz(out / "G_epoch_0002.npz")
    own = trainer.gan.G.state_dict()
    assert set(snap) == set(own)
    assert all(np.array_equal(snap[k], own[k]) for k in own)


def test_snapshot_every_epoch(tmp_path, data):
    train(tmp_path, data, epochs=2, snapshot_every=1, sample_every=2)
    assert (tmp_path / "G_epoch_0001.npz").is_file() and (tmp_path / "G_epoch_0002.npz").is_file()
    # sample_every=2: no grid after epoch 1, one after epoch 2
    assert sorted(os.listdir(tmp_path / "samples")) == ["epoch_0002.png"]
    a, b = npz(tmp_path / "G_epoch_0001.npz"), npz(tmp_path / "G_epoch_0002.npz")
    assert not all(np.array_equal(a[k], b[k]) for k in a)  # G moved in epoch 2


def test_generator_from_checkpoint(two_epoch_run):
    out, trainer = two_epoch_run
    G, prior, config = generator_from_checkpoint(out / "checkpoint.npz", device="cpu")
    assert config == trainer.config
    assert (prior.dim, prior.kind) == (TINY["noise_dim"], "uniform-sqrt3")
    z = trainer.fixed_z[:10]
    np.testing.assert_array_equal(G.forward(z, train=False), trainer.gan.G.forward(z, train=False))


def test_generator_from_snapshot(two_epoch_run):
    # `evaluate` accepts "a checkpoint or G snapshot": a snapshot has no config
    # inside, so it is read from the run's config.json beside it
    out, trainer = two_epoch_run
    G, prior, config = generator_from_checkpoint(out / "G_epoch_0002.npz", device="cpu")
    assert prior.dim == TINY["noise_dim"]
    z = trainer.fixed_z[:10]
    np.testing.assert_array_equal(G.forward(z, train=False), trainer.gan.G.forward(z, train=False))


def test_max_iterations_stops_early(tmp_path, data):
    trainer = train(tmp_path, data, epochs=3, max_iterations=5)
    assert trainer.iters_per_epoch > 5
    # 5 iterations do not complete epoch 1: it must not be recorded as done
    assert trainer.gan.iterations == 5 and trainer.epoch == 0
    state = load_checkpoint(tmp_path / "checkpoint.npz")
    assert int(state["iterations"]) == 5 and int(state["partial_iterations"]) == 5
    assert int(state["epoch"]) == 0
    assert (tmp_path / "samples" / "epoch_0001_partial.png").exists()
    # such a checkpoint cannot be resumed exactly, and says so (and frees the directory)
    with pytest.raises(ValueError, match="stopped inside epoch 1"):
        Trainer(make_config(epochs=3), data, tmp_path, progress=False, resume=True)
    assert not (tmp_path / ".lock").exists()


def test_max_iterations_at_an_epoch_boundary_is_a_complete_epoch(tmp_path, data):
    probe = Trainer(make_config(epochs=1), data, tmp_path / "probe", progress=False)
    n = probe.iters_per_epoch
    trainer = train(tmp_path / "run", data, epochs=3, max_iterations=n)
    assert trainer.epoch == 1
    assert int(load_checkpoint(tmp_path / "run" / "checkpoint.npz")["partial_iterations"]) == 0


def test_batch_larger_than_dataset_rejected(tmp_path):
    with pytest.raises(ValueError, match="batch size"):
        Trainer(make_config(batch_size=1000), make_data(n=100), tmp_path, progress=False)


# --------------------------------------------------------------------------
# the fixed-noise sample grid
# --------------------------------------------------------------------------

def test_sample_grids_use_the_same_fixed_noise(tmp_path, data, monkeypatch):
    """Every epoch's grid is G(z_fixed) for one z_fixed, the checkpoint's."""
    from scratchgan import plots

    seen = []
    real_save_grid = plots.save_grid
    trainer = Trainer(make_config(epochs=2), data, tmp_path, progress=False)

    def spy(images, path, **kw):
        fixed_z = npz(tmp_path / "checkpoint.npz")["fixed_z"]  # saved just before the grid
        expected = trainer.gan.G.forward(fixed_z, train=False)
        seen.append((np.array(images), expected, fixed_z, trainer.fixed_z.copy()))
        real_save_grid(images, path, **kw)

    monkeypatch.setattr(plots, "save_grid", spy)
    trainer.run()
    assert len(seen) == 2
    first_z = seen[0][2]
    for images, expected, ckpt_z, own_z in seen:
        np.testing.assert_array_equal(images, expected)
        np.testing.assert_array_equal(ckpt_z, first_z)
        np.testing.assert_array_equal(own_z, first_z)
    # the grids differ because G changed, not the noise
    assert not np.array_equal(seen[0][0], seen[1][0])
    # the fixed noise is a function of the seed
    other = Trainer(make_config(seed=1), data, tmp_path / "other", progress=False)
    assert not np.array_equal(other.fixed_z, first_z)
    again = Trainer(make_config(), data, tmp_path / "again", progress=False)
    np.testing.assert_array_equal(again.fixed_z, first_z)


# --------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------

def _strip_time(rows):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]


def test_resume_is_exact(tmp_path, data, one_epoch):
    """3 epochs straight == 1 epoch, resume to 2, resume to 3 (bit for bit on the CPU)."""
    straight = train(tmp_path / "a", data, epochs=3)
    b_dir = tmp_path / "b"
    os.rename(one_epoch, b_dir)
    train(b_dir, data, resume=True, epochs=2)
    after_two = npz(b_dir / "checkpoint.npz")
    resumed = Trainer(make_config(epochs=3), data, b_dir, progress=False, resume=True)
    assert resumed.epoch == 2 and resumed.gan.iterations == 2 * ITERS
    assert resumed.gan.g_opt.t == 2 * ITERS
    resumed.run()
    assert resumed.gan.iterations == 3 * ITERS

    a, b = npz(tmp_path / "a" / "checkpoint.npz"), npz(tmp_path / "b" / "checkpoint.npz")
    assert set(a) == set(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), k
    # the third epoch did change the parameters and the optimiser state
    assert not np.array_equal(after_two["G/0.W"], b["G/0.W"])
    assert not np.array_equal(after_two["d_opt/buf/1.W:v"], b["d_opt/buf/1.W:v"])
    # in memory too
    for part in ("G", "D", "g_opt", "d_opt"):
        sa = getattr(straight.gan, part).state_dict()
        sb = getattr(resumed.gan, part).state_dict()
        assert set(sa) == set(sb)
        assert all(np.array_equal(sa[k], sb[k]) for k in sa), part
    rows_a = _strip_time(read_rows(tmp_path / "a" / "metrics.jsonl"))
    rows_b = _strip_time(read_rows(tmp_path / "b" / "metrics.jsonl"))
    assert rows_a == rows_b
    assert len(rows_a) == 3 * 3  # 2 windows + 1 epoch row per epoch
    assert resumed.history == straight.history


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_converts_a_checkpoint_with_unit_major_maxout_columns(tmp_path, data, optimizer):
    """A checkpoint written before Maxout's columns became piece-major (no
    ``maxout_columns`` entry, pylearn2's unit-major order) resumes as the same D,
    optimiser buffers included (SGD's v; Adam's m and v)."""
    from scratchgan.network import atomic_savez

    out = tmp_path / "run"
    train(out, data, epochs=1, optimizer=optimizer)
    ckpt = out / "checkpoint.npz"
    new = npz(ckpt)
    assert str(new["maxout_columns"]) == "piece-major"
    old = dict(new)
    del old["maxout_columns"]
    units, pieces = TINY["d_units"], TINY["d_pieces"]
    maxout_keys = [k for k in old if k in ("D/1.W", "D/1.b") or k.startswith("d_opt/buf/1.")]
    assert len(maxout_keys) == (4 if optimizer == "sgd" else 6)
    for k in maxout_keys:  # piece-major (p·units + j) -> unit-major (j·pieces + p)
        a = old[k]
        old[k] = a.reshape(*a.shape[:-1], pieces, units).swapaxes(-1, -2).reshape(a.shape)
        assert not np.array_equal(old[k], new[k])
    atomic_savez(ckpt, old)
    resumed = Trainer(make_config(epochs=2, optimizer=optimizer), data, out, progress=False, resume=True)
    got = {**{f"D/{k}": v for k, v in resumed.gan.D.state_dict().items()},
           **{f"d_opt/{k}": v for k, v in resumed.gan.d_opt.state_dict().items()}}
    for k in maxout_keys:
        np.testing.assert_array_equal(got[k], new[k])


def test_resume_drops_rows_past_the_checkpoint(one_epoch, data):
    with open(one_epoch / "metrics.jsonl", "a") as f:  # a crashed epoch 2 left rows behind
        f.write(json.dumps({"kind": "window", "epoch": 2, "step": 20, "d_loss": 1.0}) + "\n")
    Trainer(make_config(epochs=2), data, one_epoch, progress=False, resume=True)
    rows = read_rows(one_epoch / "metrics.jsonl")
    assert rows and all(r["epoch"] == 1 for r in rows)


@pytest.mark.parametrize("change", [dict(seed=1), dict(loss="minimax"), dict(batch_size=60),
                                    dict(update="alternating", k=2)])
def test_resume_with_another_config_is_refused(one_epoch, data, change):
    key = next(iter(change))
    with pytest.raises(ValueError, match=key):
        Trainer(make_config(epochs=2, **change), data, one_epoch, progress=False, resume=True)


def test_new_run_into_a_checkpointed_dir_is_refused(one_epoch, data):
    before = (one_epoch / "checkpoint.npz").read_bytes()
    metrics = (one_epoch / "metrics.jsonl").read_text()
    with pytest.raises(FileExistsError, match="resume"):
        Trainer(make_config(epochs=2), data, one_epoch, progress=False)
    assert (one_epoch / "checkpoint.npz").read_bytes() == before
    assert (one_epoch / "metrics.jsonl").read_text() == metrics  # log not truncated


def test_resume_without_checkpoint(tmp_path, data):
    with pytest.raises(FileNotFoundError):
        Trainer(make_config(), data, tmp_path, progress=False, resume=True)


# --------------------------------------------------------------------------
# non-finite losses
# --------------------------------------------------------------------------

def test_nan_in_data_stops_with_the_iteration(one_epoch, data):
    good = (one_epoch / "checkpoint.npz").read_bytes()
    # the same run continued on data with NaN pixels in every row
    bad = make_data(nan_rows=N_TRAIN)
    trainer = Trainer(make_config(epochs=3), bad, one_epoch, progress=False, resume=True)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.run()
    err = info.value
    assert err.step == ITERS  # the first iteration of epoch 2
    assert err.which == "D"
    assert f"iteration {ITERS}" in str(err) and "D loss" in str(err)
    assert (one_epoch / "checkpoint.npz").read_bytes() == good
    assert int(load_checkpoint(one_epoch / "checkpoint.npz")["epoch"]) == 1


@pytest.mark.parametrize("which", ["g_loss", "d_loss"])
def test_nan_loss_names_iteration_and_loss(one_epoch, data, which):
    good = (one_epoch / "checkpoint.npz").read_bytes()
    trainer = Trainer(make_config(epochs=3, log_every=100), data, one_epoch, progress=False,
                      resume=True)
    bad_step = ITERS + 3  # mid epoch 2
    loss = trainer.gan.loss
    original = getattr(loss, which)

    def poisoned(*args):
        out = original(*args)
        if trainer.gan.iterations == bad_step:
            return (np.float32(np.inf if which == "d_loss" else np.nan),) + tuple(out[1:])
        return out

    setattr(loss, which, poisoned)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.run()
    assert info.value.step == bad_step
    assert info.value.which == which[0].upper()
    assert f"iteration {bad_step}" in str(info.value)
    assert (one_epoch / "checkpoint.npz").read_bytes() == good
    assert not (one_epoch / "samples" / "epoch_0002.png").exists()


# --------------------------------------------------------------------------
# atomic checkpoints
# --------------------------------------------------------------------------

def _half_write_then_fail(file, **arrays):
    file.write(b"PK\x03\x04 half a zip file")
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize("where", ["savez", "replace"])
def test_failed_save_keeps_previous_checkpoint(one_epoch, data, monkeypatch, where):
    ckpt = one_epoch / "checkpoint.npz"
    good = ckpt.read_bytes()
    trainer = Trainer(make_config(epochs=2), data, one_epoch, progress=False, resume=True)
    if where == "savez":
        monkeypatch.setattr(np, "savez", _half_write_then_fail)
    else:
        def no_replace(src, dst):
            raise OSError("rename failed (simulated)")
        monkeypatch.setattr(os, "replace", no_replace)
    with pytest.raises(OSError, match="simulated"):
        trainer.run()  # epoch 2 trains, then its checkpoint cannot be written
    monkeypatch.undo()
    assert ckpt.read_bytes() == good
    state = load_checkpoint(ckpt)
    assert int(state["epoch"]) == 1 and int(state["iterations"]) == ITERS
    assert not [p for p in os.listdir(one_epoch) if p.startswith(".tmp")]


# --------------------------------------------------------------------------
# alternating updates (Algorithm 1 as printed)
# --------------------------------------------------------------------------

def test_alternating_k2(tmp_path, data):
    trainer = train(tmp_path, data, epochs=2, update="alternating", k=2,
                    extra=dict(TINY, momentum_saturate=3))
    per_epoch = (N_TRAIN // BATCH) // 2
    assert trainer.iters_per_epoch == per_epoch == 3
    assert trainer.gan.iterations == 2 * per_epoch
    assert not trainer.gan.simultaneous and trainer.gan.k == 2
    assert trainer.gan.d_opt.t == 2 * 2 * per_epoch  # k D steps per iteration
    assert trainer.gan.g_opt.t == 2 * per_epoch
    epochs = [r for r in read_rows(tmp_path / "metrics.jsonl") if r["kind"] == "epoch"]
    assert [r["step"] for r in epochs] == [per_epoch, 2 * per_epoch]
    # momentum follows the *epoch* for D as for G, though D makes k updates per iteration
    d_mu, g_mu = trainer.gan.d_opt.momentum, trainer.gan.g_opt.momentum
    assert d_mu(2 * per_epoch - 1) == g_mu(per_epoch - 1) == pytest.approx(0.5)  # last of epoch 1
    assert d_mu(2 * per_epoch) == g_mu(per_epoch) == pytest.approx(0.6)  # first of epoch 2


def test_build_gan_alternating_needs_k_one_for_simultaneous(data):
    with pytest.raises(ValueError, match="k"):
        build_gan(make_config(k=2), data.train, ITERS)


# ---------------------------------------------------------------------------
# One output directory, one training process
# ---------------------------------------------------------------------------
def test_run_lock_refuses_a_second_live_process(tmp_path):
    import subprocess
    import sys

    from scratchgan.train import acquire_run_lock, release_run_lock

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        (tmp_path / ".lock").write_text(str(other.pid))
        with pytest.raises(FileExistsError, match=f"pid {other.pid}"):
            acquire_run_lock(tmp_path)
    finally:
        other.kill()
        other.wait()
    # the holder is gone: its stale lock is taken over, and released by us
    path = acquire_run_lock(tmp_path)
    assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert acquire_run_lock(tmp_path) == path  # re-entrant in one process
    release_run_lock(path)
    assert not (tmp_path / ".lock").exists()
