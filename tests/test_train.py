"""Tests for scratchgan.training: runs, checkpoints, resume, failures, the run lock.

Everything runs on a tiny synthetic dataset (240 random 28x28 images) and
very narrow networks (a test-only preset, ``tiny``, registered for this
module), so an epoch is 6 iterations and takes a fraction of a second on the
CPU. Tests that need a finished first epoch copy one shared run instead of
training their own.
"""

import dataclasses
import fcntl
import json
import math
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from scratchgan import nn, presets
from scratchgan.data import Dataset
from scratchgan.gan import GAN
from scratchgan.models.paper_mlp import pixel_logit_bias
from scratchgan.training.checkpoint import (FORMAT, CheckpointError, atomic_savez, read_checkpoint,
                                            save_checkpoint)
from scratchgan.training.config import RunConfig
from scratchgan.training.lock import acquire_run_lock
from scratchgan.training.stats import NonFiniteLossError
from scratchgan.training.trainer import Trainer, generator_from_checkpoint, load_run_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_TRAIN, BATCH = 240, 40
ITERS = N_TRAIN // BATCH  # 6 simultaneous iterations per epoch

# narrow G and D, so that the tests measure the trainer, not matrix products
TINY = dataclasses.replace(
    presets.PRESETS["small"], summary="test-only: tiny networks", noise_dim=8,
    model_args=dict(g_hidden=(32,), g_irange=0.05, d_units=16, d_pieces=2, d_layers=1, d_irange=0.005,
                    d_dropout=(0.2, 0.5)),
    deviations=("A test preset.",))
# the same, with momentum saturating at epoch 3 (so that 2 epochs show it move)
_SGD_MS3 = dict(TINY.optimizers["D"], momentum_saturate=3)
TINY_MS3 = dataclasses.replace(TINY, optimizers={"D": _SGD_MS3, "G": _SGD_MS3})


@pytest.fixture(scope="module", autouse=True)
def tiny_presets():
    """Register the test presets for this module only."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(presets.PRESETS, "tiny", TINY)
        mp.setitem(presets.PRESETS, "tiny-ms3", TINY_MS3)
        yield


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
    base = dict(preset="tiny", batch_size=BATCH, device="cpu", seed=0, epochs=1,
                log_every=4, sample_every=1, snapshot_every=10)
    base.update(kw)
    return RunConfig(**base)


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


def unused(trainer):
    """Release the directory lock of a trainer that will not run."""
    trainer._lock.release()
    return trainer


def read_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def npz(path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def lock_is_free(directory):
    """Whether no open file description holds the OS lock on ``<dir>/.lock``
    (a new description conflicts with any other, in this process too)."""
    fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


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
    assert (out / "checkpoint.npz").is_file() and not (out / "partial.npz").exists()
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["preset"] == "tiny" and cfg["config"]["seed"] == 0
    assert "extra" not in cfg["config"]
    assert cfg["resolved"]["batch_size"] == BATCH
    assert cfg["resolved"]["variant"] == "simultaneous" and cfg["resolved"]["d_scale"] == 0.5
    assert cfg["resolved"]["model_args"]["g_hidden"] == [32]
    assert trainer.iters_per_epoch == ITERS
    assert trainer.gan.iterations == 2 * ITERS and trainer.epoch == 2
    assert lock_is_free(out)


def test_trainer_builds_the_preset_with_the_data_marginals(data, tmp_path):
    trainer = unused(Trainer(make_config(), data, tmp_path, progress=False))
    G = trainer.gan.G
    assert [(l.n_in, l.n_out) for l in G.layers if isinstance(l, nn.Linear)] == [(8, 32), (32, 784)]
    np.testing.assert_allclose(G.parameters()["2.b"], pixel_logit_bias(data.train.mean(axis=0)), rtol=1e-6)
    assert trainer.gan.prior.dim == 8


def test_metrics_jsonl(two_epoch_run):
    out, _ = two_epoch_run
    rows = read_rows(out / "metrics.jsonl")
    for r in rows:
        for key in ("d_loss", "g_loss", "D_x", "D_G_z", "d_grad_norm", "g_grad_norm"):
            assert math.isfinite(r[key]), (key, r)
        assert 0 <= r["D_x"] <= 1 and 0 <= r["D_G_z"] <= 1
        assert r["d_grad_norm"] > 0 and r["g_grad_norm"] > 0  # added by the trainer
    windows = [r for r in rows if r["kind"] == "window"]
    epochs = [r for r in rows if r["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert [r["step"] for r in epochs] == [ITERS, 2 * ITERS]
    # log_every = 4 over 6 iterations: windows end at iterations 4 and 6 of each epoch
    assert [r["step"] for r in windows] == [4, 6, 10, 12]
    # the losses start near log 2 (D and G both at chance; D carries the 0.5 factor)
    assert windows[0]["d_loss"] == pytest.approx(math.log(2), abs=0.05)
    assert windows[0]["g_loss"] == pytest.approx(math.log(2), abs=0.05)


def test_checkpoint_contents(two_epoch_run):
    out, trainer = two_epoch_run
    path = out / "checkpoint.npz"
    state = read_checkpoint(path)
    assert int(state["format"]) == FORMAT == 2 and str(state["variant"]) == "simultaneous"
    assert int(state["epoch"]) == 2 and int(state["iterations"]) == 2 * ITERS
    assert int(state["partial_iterations"]) == 0
    assert int(state["seed"]) == 0 and tuple(state["x_shape"]) == (784,)
    assert load_run_config(state, path) == trainer.config
    assert int(state["d_opt/t"]) == 2 * ITERS and int(state["g_opt/t"]) == 2 * ITERS
    assert state["fixed/z"].shape == (100, TINY.noise_dim)
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
    assert set(snap) == {f"G/{k}" for k in own} | {"format", "config", "x_shape", "epoch"}
    assert all(np.array_equal(snap[f"G/{k}"], own[k]) for k in own)
    assert int(snap["epoch"]) == 2 and not any(k.startswith(("D/", "d_opt", "g_opt")) for k in snap)


def test_snapshot_every_epoch(tmp_path, data):
    train(tmp_path, data, epochs=2, snapshot_every=1, sample_every=2)
    assert (tmp_path / "G_epoch_0001.npz").is_file() and (tmp_path / "G_epoch_0002.npz").is_file()
    # sample_every=2: no grid after epoch 1, one after epoch 2
    assert sorted(os.listdir(tmp_path / "samples")) == ["epoch_0002.png"]
    a, b = npz(tmp_path / "G_epoch_0001.npz"), npz(tmp_path / "G_epoch_0002.npz")
    assert not all(np.array_equal(a[k], b[k]) for k in a if k.startswith("G/"))  # G moved in epoch 2


def test_generator_from_checkpoint(two_epoch_run):
    out, trainer = two_epoch_run
    G, prior, config = generator_from_checkpoint(out / "checkpoint.npz", device="cpu")
    assert config == trainer.config
    assert (prior.dim, prior.kind) == (TINY.noise_dim, "uniform-sqrt3")
    z = trainer.fixed["z"][:10]
    np.testing.assert_array_equal(G.forward(z, train=False), trainer.gan.G.forward(z, train=False))


def test_generator_from_snapshot(two_epoch_run):
    # `evaluate` accepts "a checkpoint or G snapshot": both give the same G
    out, trainer = two_epoch_run
    G, prior, config = generator_from_checkpoint(out / "G_epoch_0002.npz", device="cpu")
    assert prior.dim == TINY.noise_dim and config == trainer.config
    z = trainer.fixed["z"][:10]
    np.testing.assert_array_equal(G.forward(z, train=False), trainer.gan.G.forward(z, train=False))


def test_generator_from_a_format_1_snapshot(two_epoch_run, tmp_path):
    """A snapshot of scratchgan 0.1 held G's parameters only, at the top level:
    its configuration is read from the run's config.json beside it."""
    out, trainer = two_epoch_run
    run = tmp_path / "old_run"
    run.mkdir()
    shutil.copy(out / "config.json", run / "config.json")
    np.savez(run / "G_epoch_0002.npz", **trainer.gan.G.state_dict())
    G, prior, config = generator_from_checkpoint(run / "G_epoch_0002.npz", device="cpu")
    assert prior.dim == TINY.noise_dim and config == trainer.config
    z = trainer.fixed["z"][:10]
    np.testing.assert_array_equal(G.forward(z, train=False), trainer.gan.G.forward(z, train=False))
    (run / "config.json").unlink()
    with pytest.raises(CheckpointError, match="no config.json beside it"):
        generator_from_checkpoint(run / "G_epoch_0002.npz", device="cpu")


def test_max_iterations_stops_early(tmp_path, data):
    trainer = train(tmp_path, data, epochs=3, max_iterations=5)
    assert trainer.iters_per_epoch > 5
    # 5 iterations do not complete epoch 1: it must not be recorded as done
    assert trainer.gan.iterations == 5 and trainer.epoch == 0
    assert not (tmp_path / "checkpoint.npz").exists()  # only complete epochs make one
    state = read_checkpoint(tmp_path / "partial.npz")
    assert int(state["iterations"]) == 5 and int(state["partial_iterations"]) == 5
    assert int(state["epoch"]) == 0
    assert (tmp_path / "samples" / "epoch_0001_partial.png").exists()
    # partial.npz can be sampled ...
    G, _, _ = generator_from_checkpoint(tmp_path / "partial.npz", device="cpu")
    np.testing.assert_array_equal(G.forward(trainer.fixed["z"], train=False),
                                  trainer.gan.G.forward(trainer.fixed["z"], train=False))
    # ... but not resumed, and the refusal says so (and frees the directory)
    with pytest.raises(FileNotFoundError, match="only partial.npz"):
        Trainer(make_config(epochs=3), data, tmp_path, progress=False, resume=True)
    assert lock_is_free(tmp_path)


def test_stop_inside_a_later_epoch_keeps_the_checkpoint(one_epoch, data):
    """A run stopped inside epoch 2 writes partial.npz and leaves the epoch-1
    checkpoint.npz as it was; resuming continues from epoch 1, and the next
    complete epoch removes partial.npz."""
    good = (one_epoch / "checkpoint.npz").read_bytes()
    trainer = train(one_epoch, data, resume=True, epochs=3, max_iterations=2)
    assert trainer.gan.iterations == ITERS + 2 and trainer.epoch == 1
    assert (one_epoch / "checkpoint.npz").read_bytes() == good
    partial = read_checkpoint(one_epoch / "partial.npz")
    assert int(partial["epoch"]) == 1 and int(partial["partial_iterations"]) == 2
    assert int(partial["iterations"]) == ITERS + 2
    resumed = train(one_epoch, data, resume=True, epochs=2)
    assert resumed.epoch == 2 and resumed.gan.iterations == 2 * ITERS
    assert not (one_epoch / "partial.npz").exists()


def test_a_format_1_partial_checkpoint_is_not_resumed(one_epoch, data):
    """scratchgan 0.1 wrote partial epochs into checkpoint.npz itself."""
    state = npz(one_epoch / "checkpoint.npz")
    state["partial_iterations"] = np.asarray(3)
    atomic_savez(one_epoch / "checkpoint.npz", state)
    with pytest.raises(ValueError, match="stopped inside epoch 2"):
        Trainer(make_config(epochs=3), data, one_epoch, progress=False, resume=True)
    assert lock_is_free(one_epoch)


def test_max_iterations_at_an_epoch_boundary_is_a_complete_epoch(tmp_path, data):
    trainer = train(tmp_path / "run", data, epochs=3, max_iterations=ITERS)
    assert trainer.epoch == 1
    assert int(read_checkpoint(tmp_path / "run" / "checkpoint.npz")["partial_iterations"]) == 0
    assert not (tmp_path / "run" / "partial.npz").exists()


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
        fixed_z = npz(tmp_path / "checkpoint.npz")["fixed/z"]  # saved just before the grid
        expected = trainer.gan.G.forward(fixed_z, train=False)
        seen.append((np.array(images), expected, fixed_z, trainer.fixed["z"].copy()))
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
    other = unused(Trainer(make_config(seed=1), data, tmp_path / "other", progress=False))
    assert not np.array_equal(other.fixed["z"], first_z)
    again = unused(Trainer(make_config(), data, tmp_path / "again", progress=False))
    np.testing.assert_array_equal(again.fixed["z"], first_z)


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


def _as_format_1(state, units, pieces, unit_major):
    """A format-2 checkpoint as scratchgan 0.1 wrote it: no ``format``,
    ``variant`` or ``x_shape``; ``G_out_dim``; maxout columns unit-major
    (no ``maxout_columns`` entry) or piece-major (``maxout_columns``)."""
    old = {k: v for k, v in state.items() if k not in ("format", "variant", "x_shape")}
    old["G_out_dim"] = np.asarray(784)
    cfg = json.loads(str(old["config"]))
    cfg["extra"] = {}
    old["config"] = np.asarray(json.dumps(cfg))
    maxout_keys = [k for k in old if k in ("D/1.W", "D/1.b") or k.startswith("d_opt/buf/1.")]
    if unit_major:
        for k in maxout_keys:  # piece-major (p·units + j) -> unit-major (j·pieces + p)
            a = old[k]
            old[k] = a.reshape(*a.shape[:-1], pieces, units).swapaxes(-1, -2).reshape(a.shape)
            assert not np.array_equal(old[k], state[k])
    else:
        old["maxout_columns"] = np.asarray("piece-major")
    return old, maxout_keys


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("unit_major", [True, False], ids=["unit-major", "piece-major"])
def test_resume_converts_a_format_1_checkpoint(tmp_path, data, optimizer, unit_major):
    """A checkpoint of scratchgan 0.1 resumes as the same D, optimiser buffers
    included (SGD's v; Adam's m and v); one written before Maxout's columns
    became piece-major (no ``maxout_columns`` entry, pylearn2's unit-major
    order) is reordered."""
    out = tmp_path / "run"
    train(out, data, epochs=1, optimizer=optimizer)
    ckpt = out / "checkpoint.npz"
    new = npz(ckpt)
    old, maxout_keys = _as_format_1(new, TINY.model_args["d_units"], TINY.model_args["d_pieces"], unit_major)
    assert len(maxout_keys) == (4 if optimizer == "sgd" else 6)
    atomic_savez(ckpt, old)
    resumed = unused(Trainer(make_config(epochs=2, optimizer=optimizer), data, out, progress=False,
                             resume=True))
    assert resumed.epoch == 1 and resumed.gan.iterations == ITERS
    got = {**{f"D/{k}": v for k, v in resumed.gan.D.state_dict().items()},
           **{f"d_opt/{k}": v for k, v in resumed.gan.d_opt.state_dict().items()}}
    for k in maxout_keys:
        np.testing.assert_array_equal(got[k], new[k])
    G, _, _ = generator_from_checkpoint(ckpt, device="cpu")  # G_out_dim gives the shape
    assert G.output_shape((TINY.noise_dim,)) == (784,)


def test_a_format_1_config_with_model_overrides_is_refused(one_epoch):
    state = npz(one_epoch / "checkpoint.npz")
    cfg = json.loads(str(state["config"]))
    cfg["extra"] = {"d_units": 16}
    with pytest.raises(ValueError, match="model overrides"):
        RunConfig.from_json(json.dumps(cfg))


def test_resume_drops_rows_past_the_checkpoint(one_epoch, data):
    with open(one_epoch / "metrics.jsonl", "a") as f:  # a crashed epoch 2 left rows behind
        f.write(json.dumps({"kind": "window", "epoch": 2, "step": 20, "d_loss": 1.0}) + "\n")
    unused(Trainer(make_config(epochs=2), data, one_epoch, progress=False, resume=True))
    rows = read_rows(one_epoch / "metrics.jsonl")
    assert rows and all(r["epoch"] == 1 for r in rows)


@pytest.mark.parametrize("change, needle", [
    (dict(seed=1), "seed"), (dict(loss="minimax"), "loss"), (dict(batch_size=60), "batch_size"),
    (dict(update="alternating", k=2), "variant"), (dict(preset="tiny-ms3"), "--preset tiny-ms3 here"),
    (dict(lr=0.05), "optimizers"),
])
def test_resume_with_another_config_is_refused(one_epoch, data, change, needle):
    with pytest.raises(ValueError, match=needle):
        Trainer(make_config(epochs=2, **change), data, one_epoch, progress=False, resume=True)
    assert lock_is_free(one_epoch)


def test_new_run_into_a_checkpointed_dir_is_refused(one_epoch, data):
    before = (one_epoch / "checkpoint.npz").read_bytes()
    metrics = (one_epoch / "metrics.jsonl").read_text()
    with pytest.raises(FileExistsError, match="resume"):
        Trainer(make_config(epochs=2), data, one_epoch, progress=False)
    assert (one_epoch / "checkpoint.npz").read_bytes() == before
    assert (one_epoch / "metrics.jsonl").read_text() == metrics  # log not truncated
    assert lock_is_free(one_epoch)


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
    assert err.step == ITERS + 1  # the first iteration of epoch 2 (counted from 1)
    assert err.which == "D"
    assert f"iteration {ITERS + 1}" in str(err) and "D loss" in str(err)
    assert (one_epoch / "checkpoint.npz").read_bytes() == good
    assert int(read_checkpoint(one_epoch / "checkpoint.npz")["epoch"]) == 1
    assert lock_is_free(one_epoch)


@pytest.mark.parametrize("which, term", [("g_loss", "g"), ("d_loss", "d_real"), ("d_loss", "d_fake")])
def test_nan_loss_names_iteration_and_loss(one_epoch, data, which, term):
    good = (one_epoch / "checkpoint.npz").read_bytes()
    trainer = Trainer(make_config(epochs=3, log_every=100), data, one_epoch, progress=False,
                      resume=True)
    bad_step = ITERS + 3  # mid epoch 2
    loss = trainer.gan.loss
    original = getattr(loss, term)

    def poisoned(a):
        value, grad = original(a)
        if trainer.gan.iterations + 1 == bad_step:  # inside iteration number bad_step
            return np.float32(np.inf if which == "d_loss" else np.nan), grad
        return value, grad

    setattr(loss, term, poisoned)
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
    state = read_checkpoint(ckpt)
    assert int(state["epoch"]) == 1 and int(state["iterations"]) == ITERS
    assert not [p for p in os.listdir(one_epoch) if p.startswith(".tmp")]


# --------------------------------------------------------------------------
# checkpoints of any named modules and optimisers
# --------------------------------------------------------------------------

class WithQ(GAN):
    """Algorithm 1 with a third network and optimiser (an InfoGAN-like Q), to
    check that checkpoints hold whatever modules a variant names."""

    def __init__(self, *args, Q, q_opt, **kwargs):
        self.Q, self.q_opt = Q, q_opt
        super().__init__(*args, **kwargs)

    def modules(self):
        return {**super().modules(), "Q": self.Q}

    def optimizers(self):
        return {**super().optimizers(), "q_opt": self.q_opt}


def _with_q(seed):
    rng = np.random.default_rng(seed)
    G = nn.Sequential([nn.Linear(3, 4, rng=rng, irange=0.5), nn.Tanh()])
    D = nn.Sequential([nn.Dropout(0.2), nn.Maxout(4, 3, 2, rng=rng, irange=0.5), nn.Linear(3, 1, rng=rng)])
    Q = nn.Sequential([nn.Linear(4, 2, rng=rng, irange=0.5)])
    return WithQ(G, D, nn.Adam(D, lr=0.01), nn.SGD(G, lr=0.1, momentum=0.5), 3, seed=seed, device="cpu",
                 Q=Q, q_opt=nn.Adam({"Q": Q, "G": G}, lr=0.01))


def test_any_named_modules_and_optimisers_round_trip(tmp_path):
    a = _with_q(0)
    x = np.random.default_rng(1).random((8, 4), dtype=np.float32)
    for _ in range(3):
        a.iteration(lambda: x)
        a.Q.zero_grad()  # give Q's optimiser (over Q and G) some state
        a.Q.forward(a.G.forward(a.sample_noise(8)))
        a.Q.backward(np.ones((8, 2), np.float32), need_dx=False)
        a.q_opt.step()
    path = tmp_path / "ckpt.npz"
    save_checkpoint(path, a, epoch=5, note="hello")
    state = read_checkpoint(path)
    assert int(state["format"]) == FORMAT and str(state["variant"]) == "gan"
    assert int(state["epoch"]) == 5 and str(state["note"]) == "hello" and int(state["iterations"]) == 3
    assert any(k.startswith("Q/") for k in state) and any(k.startswith("q_opt/buf/Q/") for k in state)

    b = _with_q(7)  # other initial weights, empty optimisers
    assert not np.array_equal(b.Q.parameters()["0.W"], a.Q.parameters()["0.W"])
    b.load_state_dict(state)
    assert b.iterations == 3
    for name in ("G", "D", "Q", "g_opt", "d_opt", "q_opt"):
        want, got = getattr(a, name).state_dict(), getattr(b, name).state_dict()
        assert set(want) == set(got) and len(want) > 1, name
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{name}/{k}")
    # the two continue identically
    a.seed(3), b.seed(3)
    ra, rb = a.iteration(lambda: x), b.iteration(lambda: x)
    assert {k: float(v) for k, v in ra.items()} == {k: float(v) for k, v in rb.items()}
    # a checkpoint without Q cannot be loaded into a variant that has one
    with pytest.raises(ValueError, match="missing"):
        _with_q(0).load_state_dict({k: v for k, v in state.items() if not k.startswith("Q/")})


@pytest.mark.parametrize("what", ["config.json", "text", "npy", "pickle", "directory", "empty-zip"])
def test_a_file_that_is_not_a_checkpoint(two_epoch_run, tmp_path, what):
    """A CheckpointError that names the file and says it is not a checkpoint,
    never passing on NumPy's advice to load pickles."""
    out, _ = two_epoch_run
    if what == "config.json":
        path = out / "config.json"
    elif what == "directory":
        path = out
    else:
        path = tmp_path / {"text": "a.txt", "npy": "a.npy", "pickle": "a.pkl", "empty-zip": "a.npz"}[what]
        if what == "text":
            path.write_text("hello")
        elif what == "npy":
            np.save(path, np.zeros(3))  # (the name ends in .npy: kept as it is)
        elif what == "pickle":
            import pickle
            path.write_bytes(pickle.dumps({"G/0.W": np.zeros(3)}))
        else:
            import zipfile
            with zipfile.ZipFile(path, "w") as z:
                z.writestr("readme.txt", "not an array")
    with pytest.raises(CheckpointError) as info:
        state = read_checkpoint(path)
        load_run_config(state, path)  # an archive of no scratchgan arrays
    msg = str(info.value)
    assert str(path) in msg and re.search(r"not a (scratchgan )?checkpoint", msg), msg
    for advice in ("pickle", "unsafe", "allow_pickle", "trust"):
        assert advice not in msg, msg
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        read_checkpoint(tmp_path / "nope.npz")


def test_a_checkpoint_from_a_newer_version(one_epoch):
    state = npz(one_epoch / "checkpoint.npz")
    state["format"] = np.asarray(FORMAT + 1)
    atomic_savez(one_epoch / "checkpoint.npz", state)
    with pytest.raises(CheckpointError, match="newer scratchgan"):
        read_checkpoint(one_epoch / "checkpoint.npz")


# --------------------------------------------------------------------------
# alternating updates (Algorithm 1 as printed)
# --------------------------------------------------------------------------

def test_alternating_k2(tmp_path, data):
    trainer = train(tmp_path, data, epochs=2, update="alternating", k=2, preset="tiny-ms3")
    per_epoch = (N_TRAIN // BATCH) // 2
    assert trainer.iters_per_epoch == per_epoch == 3
    assert trainer.gan.iterations == 2 * per_epoch
    assert type(trainer.gan) is GAN and trainer.gan.k == 2 and trainer.gan.loss.d_scale == 1.0
    assert trainer.gan.d_opt.t == 2 * 2 * per_epoch  # k D steps per iteration
    assert trainer.gan.g_opt.t == 2 * per_epoch
    epochs = [r for r in read_rows(tmp_path / "metrics.jsonl") if r["kind"] == "epoch"]
    assert [r["step"] for r in epochs] == [per_epoch, 2 * per_epoch]
    # momentum follows the *epoch* for D as for G, though D makes k updates per iteration
    d_mu, g_mu = trainer.gan.d_opt.momentum, trainer.gan.g_opt.momentum
    assert d_mu(2 * per_epoch - 1) == g_mu(per_epoch - 1) == pytest.approx(0.5)  # last of epoch 1
    assert d_mu(2 * per_epoch) == g_mu(per_epoch) == pytest.approx(0.6)  # first of epoch 2


def test_simultaneous_needs_k_one(data, tmp_path):
    with pytest.raises(ValueError, match="k = 1"):
        make_config(k=2).resolved()
    with pytest.raises(ValueError, match="k = 1"):
        Trainer(make_config(k=2), data, tmp_path, progress=False)


# ---------------------------------------------------------------------------
# One output directory, one training process
# ---------------------------------------------------------------------------
HOLDER = """
import sys, time
from scratchgan.training.lock import acquire_run_lock
acquire_run_lock(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_run_lock_refuses_a_second_live_process(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    other = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)], stdout=subprocess.PIPE,
                             text=True, env=env)
    try:
        assert other.stdout.readline().strip() == "locked"
        with pytest.raises(FileExistsError, match=f"pid {other.pid}"):
            acquire_run_lock(tmp_path)
        assert not lock_is_free(tmp_path)
    finally:
        other.kill()  # SIGKILL: no clean-up in the holder; the system drops its lock
        other.wait()
        other.stdout.close()
    # the holder is gone: the lock is free, with no stale lock to take over
    assert lock_is_free(tmp_path)
    lock = acquire_run_lock(tmp_path)
    assert (tmp_path / ".lock").read_text() == str(os.getpid())
    assert not lock_is_free(tmp_path)
    with pytest.raises(FileExistsError, match="already being written by this process"):
        acquire_run_lock(tmp_path)  # not even this process may take it twice
    assert not lock_is_free(tmp_path)
    with lock:  # a RunLock is a context manager too
        pass
    assert lock_is_free(tmp_path)
    lock.release()  # releasing twice is harmless
    assert lock_is_free(tmp_path)


def test_a_running_trainer_holds_its_directory(tmp_path, data):
    trainer = Trainer(make_config(), data, tmp_path, progress=False)
    assert not lock_is_free(tmp_path)
    trainer.run()
    assert lock_is_free(tmp_path)


def test_two_trainers_in_one_process_cannot_share_a_folder_and_run_again_relocks(tmp_path, data):
    first = Trainer(make_config(), data, tmp_path, progress=False)
    with pytest.raises(FileExistsError, match="already being written by this process"):
        Trainer(make_config(), data, tmp_path, progress=False, resume=True)
    assert not lock_is_free(tmp_path)  # the refusal left the first one's lock alone
    first.run()
    assert lock_is_free(tmp_path)
    first.config.epochs = 2
    seen = []
    original = first._run

    def spy():
        seen.append(lock_is_free(tmp_path))
        return original()
    first._run = spy
    first.run()  # a second run takes the lock again while it trains
    assert seen == [False] and lock_is_free(tmp_path) and first.epoch == 2
