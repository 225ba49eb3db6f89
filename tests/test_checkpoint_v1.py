"""Checkpoints written before the engine redesign (format 1, scratchgan 0.1) load.

Decision (documented in README and scratchgan.training.checkpoint): format-1
files are converted in memory — `sample`, `evaluate` and `--resume` accept
them. Their parameter and optimiser keys are those of format 2; their
configuration has the old field set (``extra``, ``optimizer: "sgd"``,
``dataset: "mnist"``); files from before piece-major maxout columns lack
``maxout_columns`` and hold D's maxout columns unit-major.

The format-1 files here are built with exactly the key layout scratchgan 0.1
wrote (checked against a file written by commit 5c5d24e).
"""

import json

import numpy as np
import pytest

import scratchgan.data
from scratchgan.cli import main
from scratchgan.data import Dataset
from scratchgan.nn import Maxout
from scratchgan.training.checkpoint import CheckpointError, read_checkpoint
from scratchgan.training.trainer import generator_from_checkpoint

V1_KEYS = ['D/1.W', 'D/1.b', 'D/3.W', 'D/3.b', 'D/5.W', 'D/5.b', 'G/0.W', 'G/0.b', 'G/2.W', 'G/2.b', 'G/4.W',
           'G/4.b', 'G_out_dim', 'config', 'd_opt/buf/1.W:v', 'd_opt/buf/1.b:v', 'd_opt/buf/3.W:v',
           'd_opt/buf/3.b:v', 'd_opt/buf/5.W:v', 'd_opt/buf/5.b:v', 'd_opt/t', 'epoch', 'fixed_z',
           'g_opt/buf/0.W:v', 'g_opt/buf/0.b:v', 'g_opt/buf/2.W:v', 'g_opt/buf/2.b:v', 'g_opt/buf/4.W:v',
           'g_opt/buf/4.b:v', 'g_opt/t', 'iterations', 'maxout_columns', 'partial_iterations', 'seed']
V1_CONFIG = {"batch_size": None, "data_dir": None, "dataset": "mnist", "device": "cpu", "epochs": 1,
             "extra": {}, "k": None, "log_every": 50, "loss": None, "lr": None, "max_iterations": None,
             "optimizer": "sgd", "preset": "small", "prior": None, "sample_every": 1, "seed": 0,
             "snapshot_every": 1, "update": None}


def tiny_data(n=200):
    rng = np.random.default_rng(0)
    train = rng.random((n, 784), dtype=np.float32)
    other = rng.random((40, 784), dtype=np.float32)
    z = np.zeros(20, np.uint8)
    return Dataset(name="mnist", split="paper", train=train, train_labels=np.zeros(n, np.uint8),
                   valid=other[:20], valid_labels=z, test=other[20:], test_labels=z)


@pytest.fixture
def v2_run(tmp_path, monkeypatch):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    assert main(["train", "--preset", "small", "--epochs", "1", "--device", "cpu", "--quiet",
                 "--out", str(out)]) == 0
    return out


def to_v1(src, dst, *, unit_major=False):
    """Rewrite a format-2 checkpoint as scratchgan 0.1 wrote it."""
    with np.load(src) as f:
        state = {k: f[k] for k in f.files}
    v1 = {k: v for k, v in state.items() if k in V1_KEYS}
    v1["fixed_z"] = state["fixed/z"]
    v1["G_out_dim"] = np.asarray(784)
    v1["config"] = np.asarray(json.dumps(V1_CONFIG, sort_keys=True))
    v1["maxout_columns"] = np.asarray("piece-major")
    if unit_major:  # before piece-major columns: unit-major, and no marker
        del v1["maxout_columns"]
        for k in list(v1):
            if k.split("/")[-1].split(".")[0] in ("1", "3") and k.startswith(("D/", "d_opt/buf/")):
                a = v1[k]
                units, pieces = 64, 3  # the small preset's maxout
                v1[k] = a.reshape(*a.shape[:-1], pieces, units).swapaxes(-1, -2).reshape(a.shape)
    assert sorted(v1) == sorted(V1_KEYS if not unit_major else [k for k in V1_KEYS if k != "maxout_columns"])
    np.savez(dst, **v1)
    return state


def test_v1_checkpoint_loads_samples_and_resumes(v2_run, tmp_path, monkeypatch):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    run = tmp_path / "old"
    run.mkdir()
    state = to_v1(v2_run / "checkpoint.npz", run / "checkpoint.npz")
    converted = read_checkpoint(run / "checkpoint.npz")
    assert int(converted["format"]) == 1
    G, prior, config = generator_from_checkpoint(run / "checkpoint.npz", "cpu")
    np.testing.assert_array_equal(G.parameters()["4.W"], state["G/4.W"])
    assert config.preset == "small" and prior.dim == 32
    assert main(["sample", str(run / "checkpoint.npz"), "--png", str(tmp_path / "g.png"), "--device", "cpu"]) == 0
    assert main(["train", "--preset", "small", "--epochs", "2", "--device", "cpu", "--quiet", "--resume",
                 "--out", str(run)]) == 0
    after = read_checkpoint(run / "checkpoint.npz")
    assert int(after["format"]) == 2 and int(after["epoch"]) == 2


def test_v1_unit_major_maxout_columns_are_converted(v2_run, tmp_path):
    state = to_v1(v2_run / "checkpoint.npz", tmp_path / "old.npz", unit_major=True)
    converted = read_checkpoint(tmp_path / "old.npz")
    for k in ("D/1.W", "D/1.b", "D/3.W", "d_opt/buf/1.W:v", "d_opt/buf/3.b:v"):
        np.testing.assert_array_equal(converted[k], state[k], err_msg=k)
    np.testing.assert_array_equal(converted["D/5.W"], state["D/5.W"])  # the Linear logit is left alone
    assert Maxout.from_unit_major(np.arange(6.0), 2, 3).tolist() == [0, 3, 1, 4, 2, 5]


def test_v1_with_model_overrides_is_refused_with_a_reason(v2_run, tmp_path):
    to_v1(v2_run / "checkpoint.npz", tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as f:
        state = {k: f[k] for k in f.files}
    state["config"] = np.asarray(json.dumps({**V1_CONFIG, "extra": {"d_units": 16}}))
    np.savez(tmp_path / "old.npz", **state)
    with pytest.raises(ValueError, match=r"old.npz was written by scratchgan 0.1 with model overrides"):
        generator_from_checkpoint(tmp_path / "old.npz", "cpu")


def test_a_newer_format_is_refused(v2_run, tmp_path):
    with np.load(v2_run / "checkpoint.npz") as f:
        state = {k: f[k] for k in f.files}
    state["format"] = np.asarray(99)
    np.savez(tmp_path / "new.npz", **state)
    with pytest.raises(CheckpointError, match="newer scratchgan"):
        read_checkpoint(tmp_path / "new.npz")
