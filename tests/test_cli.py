"""Tests for the command line (scratchgan.cli).

Most tests replace ``scratchgan.data.load_dataset`` by a tiny synthetic
dataset, so they need no files and run in a few seconds. Tests marked
``mnist`` use the real MNIST files from ``$SCRATCHGAN_DATA`` or
``<repo>/../shared/data`` and are skipped when those are absent.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import scratchgan.data
from scratchgan import backend
from scratchgan.backend import BackendError
from scratchgan.cli import main
from scratchgan.data import Dataset, DataError
from scratchgan.presets import PRESETS
from scratchgan.training.checkpoint import read_checkpoint
from scratchgan.training.trainer import generator_from_checkpoint, load_run_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
REAL_DATA = Path(
    os.environ.get("SCRATCHGAN_DATA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "data"
)
PARZEN_LINE = re.compile(r"Parzen log-likelihood (-?\d+\.\d) ± (\d+\.\d)")


def make_data(n=300, nan=False):
    rng = np.random.default_rng(0)
    train = rng.random((n, 784), dtype=np.float32)
    if nan:
        train[:, 5] = np.nan
    other = rng.random((60, 784), dtype=np.float32)
    return Dataset(name="mnist", split="paper", train=train, train_labels=np.zeros(n, np.uint8),
                   valid=other[:30], valid_labels=np.zeros(30, np.uint8),
                   test=other[30:], test_labels=np.zeros(30, np.uint8))


TINY = make_data()
# small preset, batch 100 on 300 images: 3 iterations per epoch
TRAIN_ARGS = ["train", "--preset", "small", "--batch-size", "100", "--device", "cpu", "--quiet"]


def _fake_loader(dataset):
    def load_dataset(*args, **kwargs):
        return dataset
    return load_dataset


@pytest.fixture
def fake_data(monkeypatch):
    monkeypatch.setattr(scratchgan.data, "load_dataset", _fake_loader(TINY))
    return TINY


@pytest.fixture(scope="module")
def _run_source(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(scratchgan.data, "load_dataset", _fake_loader(TINY))
        assert main(TRAIN_ARGS + ["--epochs", "1", "--snapshot-every", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_dir(tmp_path, _run_source):
    """A private copy of a one-epoch run made through the CLI."""
    out = tmp_path / "run"
    shutil.copytree(_run_source, out)
    return out


def one_line_error(err, *needles):
    """``err`` is exactly one line ``scratchgan: error: …`` containing every needle."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("scratchgan: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


# --------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------

def test_train_writes_a_run(_run_source, capsys):
    state = read_checkpoint(_run_source / "checkpoint.npz")
    assert int(state["epoch"]) == 1 and int(state["iterations"]) == 3
    config = load_run_config(state, _run_source / "checkpoint.npz")
    assert (config.preset, config.batch_size, config.epochs, config.device) == ("small", 100, 1, "cpu")
    for name in ("samples/epoch_0001.png", "history.png"):
        assert (_run_source / name).read_bytes()[:8] == PNG_MAGIC
    assert (_run_source / "G_epoch_0001.npz").is_file()
    assert (_run_source / "config.json").is_file()


def test_train_prints_summary(tmp_path, fake_data, capsys):
    assert main(TRAIN_ARGS + ["--epochs", "1", "--max-iterations", "2", "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "stopped inside epoch 1 after 2 iterations (--max-iterations)" in out
    assert str(tmp_path / "partial.npz") in out
    assert "done: 0 complete epochs, 2 iterations" in out
    assert "Traceback" not in err
    assert not (tmp_path / "checkpoint.npz").exists() and (tmp_path / "partial.npz").is_file()


def test_train_refuses_existing_run(run_dir, fake_data, capsys):
    before = (run_dir / "checkpoint.npz").read_bytes()
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir)]) == 2
    one_line_error(capsys.readouterr().err, "exists", "--resume")
    assert (run_dir / "checkpoint.npz").read_bytes() == before


def test_train_resume(run_dir, fake_data, capsys):
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume"]) == 0
    state = read_checkpoint(run_dir / "checkpoint.npz")
    assert int(state["epoch"]) == 2 and int(state["iterations"]) == 6
    assert "done: 2 complete epochs, 6 iterations" in capsys.readouterr().out
    # resuming with another seed is refused, naming the key
    assert main(TRAIN_ARGS + ["--epochs", "3", "--out", str(run_dir), "--resume", "--seed", "5"]) == 2
    one_line_error(capsys.readouterr().err, "seed")


def test_resume_takes_the_checkpoints_settings(tmp_path, fake_data, capsys):
    """--resume needs only --out and --epochs: preset, overrides and seed come
    from the checkpoint; a flag that contradicts it is named in the refusal."""
    out = tmp_path / "run"
    assert main(["train", "--preset", "small", "--batch-size", "100", "--loss", "minimax", "--seed", "3",
                 "--device", "cpu", "--quiet", "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--epochs", "2", "--out", str(out), "--device", "cpu", "--quiet"]) == 0
    assert "2 complete epochs" in capsys.readouterr().out
    from scratchgan.training.trainer import saved_config
    saved = saved_config(out)
    assert (saved.preset, saved.loss, saved.seed, saved.batch_size) == ("small", "minimax", 3, 100)
    assert main(["train", "--resume", "--epochs", "3", "--out", str(out), "--loss", "hinge", "--device", "cpu",
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--loss" in err and "'hinge'" in err and "'minimax'" in err and "leave --loss out" in err
    assert main(["train", "--resume", "--epochs", "3", "--out", str(out), "--preset", "paper", "--device", "cpu",
                 "--quiet"]) == 2
    assert "--preset paper here" in capsys.readouterr().err


def test_one_networks_learning_rate(tmp_path, fake_data, capsys, monkeypatch):
    """``--lr-g`` (``--lr-d``) sets one network's rate over ``--lr`` and the
    preset's; the checkpoint keeps it, a resume without the flag continues
    with it, a resume with another value is refused, naming the flags, and
    the pictures' titles name the run's overrides."""
    import scratchgan.plots
    from scratchgan.training.config import RunConfig
    from scratchgan.training.trainer import gan_from_checkpoint, saved_config

    titles, save_grid = [], scratchgan.plots.save_grid
    monkeypatch.setattr(scratchgan.plots, "save_grid",
                        lambda *a, title=None, **k: (titles.append(title), save_grid(*a, title=title, **k))[1])
    out = tmp_path / "run"
    assert main(TRAIN_ARGS + ["--epochs", "1", "--out", str(out), "--lr", "0.05", "--lr-g", "0.2"]) == 0
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(out), "--resume"]) == 0
    config = saved_config(out)
    assert (config.lr, config.lr_d, config.lr_g) == (0.05, None, 0.2)
    gan, _ = gan_from_checkpoint(out / "checkpoint.npz", "cpu")        # as sample and evaluate load it
    assert (gan.d_opt.lr(0), gan.g_opt.lr(0)) == pytest.approx((0.05, 0.2))
    capsys.readouterr()
    assert main(TRAIN_ARGS + ["--epochs", "3", "--out", str(out), "--resume", "--lr-g", "0.1"]) == 2
    one_line_error(capsys.readouterr().err, "--lr-g", "leave --optimizer/--lr/--lr-d/--lr-g out")
    args = [a for a in TRAIN_ARGS if a != "--quiet"]
    assert main(args + ["--epochs", "1", "--max-iterations", "1", "--out", str(tmp_path / "new"),
                        "--lr-d", str(1 / 3)]) == 0
    assert "learning rates: D 0.333333, G 0.1\n" in capsys.readouterr().err    # the small preset's SGD 0.1 for G
    assert main(["sample", str(out / "checkpoint.npz"), "--png", str(tmp_path / "s.png"), "-n", "4"]) == 0
    assert titles == ["small preset --batch-size 100 --lr 0.05 --lr-g 0.2, epoch 1",
                      "small preset --batch-size 100 --lr 0.05 --lr-g 0.2, epoch 2",
                      "small preset --batch-size 100 --lr-d 0.333333, epoch 1, 1 of 3 iterations",
                      "checkpoint.npz: small preset --batch-size 100 --lr 0.05 --lr-g 0.2, seed 0"]
    assert RunConfig(preset="paper", k=2, update="alternating").describe() == "paper preset --update alternating -k 2"


def test_lr_decay_epochs_is_a_run_setting_a_resume_may_add(run_dir, tmp_path, fake_data, capsys):
    """``--lr-decay-epochs N`` decays both rates to 0 over the last N epochs;
    a resumed run may add it (like --epochs), keeps it when the flag is left
    out, and refuses an N larger than --epochs."""
    from scratchgan.training.trainer import Trainer, saved_config

    plain = tmp_path / "plain"
    shutil.copytree(run_dir, plain)
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(plain), "--resume"]) == 0
    assert main(TRAIN_ARGS + ["--epochs", "3", "--out", str(run_dir), "--resume", "--lr-decay-epochs", "2",
                              "--max-iterations", "3"]) == 0       # stopped after epoch 2 of 3
    assert saved_config(run_dir).lr_decay_epochs == 2
    assert main(TRAIN_ARGS + ["--epochs", "3", "--out", str(run_dir), "--resume"]) == 0   # kept
    config = saved_config(run_dir)
    assert (config.epochs, config.lr_decay_epochs) == (3, 2)
    gan = Trainer(config, TINY, run_dir, progress=False, resume=True).gan
    assert gan.g_opt.t == 9
    for opt in (gan.g_opt, gan.d_opt):   # 3 iterations an epoch: full in epoch 1, then 6/6 … 1/6, then 0
        factor = [opt.lr(t) / opt.lr.base(t) for t in (0, 2, 3, 4, 8)] + [opt.lr(9)]
        assert factor == pytest.approx([1, 1, 1, 5 / 6, 1 / 6, 0])   # the paper SGD's decay, times the factor
    # epoch 2 ran at 6/6, 5/6, 4/6 of the rate (decay over epochs 2..3 then): not the plain run's epoch 2
    ours, theirs = (read_checkpoint(d / "G_epoch_0002.npz") for d in (run_dir, plain))
    assert not np.array_equal(ours["G/0.W"], theirs["G/0.W"])
    capsys.readouterr()
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(tmp_path / "new"), "--lr-decay-epochs", "3"]) == 2
    one_line_error(capsys.readouterr().err, "--lr-decay-epochs 3", "--epochs (2)")
    assert not (tmp_path / "new").exists()          # refused before the folder or the data


def test_a_resume_may_not_make_the_decayed_rate_jump(run_dir, fake_data, capsys):
    """Resuming a decay under way with another --epochs (or none: 100) would
    move its window and lift the rate back up; so would a new window that
    starts before the epochs done. Both are refused; --lr-decay-epochs 0 ends
    the decay on purpose."""
    from scratchgan.training.trainer import saved_config

    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume", "--lr-decay-epochs", "2"]) == 2
    one_line_error(capsys.readouterr().err, "has no decay", "would decay over epochs 1..2")   # epoch 1 is done
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume", "--lr-decay-epochs", "1"]) == 0
    capsys.readouterr()
    for more in ([], ["--epochs", "5"]):   # the decay over epoch 2 moved to 100 or to 5
        args = TRAIN_ARGS + ["--out", str(run_dir), "--resume"] + more
        assert main(args) == 2
        one_line_error(capsys.readouterr().err, "decays over epochs 2..2", "jump", "--epochs 2")
    assert main(TRAIN_ARGS + ["--epochs", "4", "--out", str(run_dir), "--resume", "--lr-decay-epochs", "3"]) == 2
    one_line_error(capsys.readouterr().err, "would decay over epochs 2..4")
    assert main(TRAIN_ARGS + ["--epochs", "3", "--out", str(run_dir), "--resume", "--lr-decay-epochs", "0"]) == 0
    assert saved_config(run_dir).lr_decay_epochs is None


def test_train_non_finite_loss_exit_code(run_dir, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", _fake_loader(make_data(nan=True)))
    before = (run_dir / "checkpoint.npz").read_bytes()
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume"]) == 3
    line = one_line_error(capsys.readouterr().err, "non-finite D loss", "iteration 4")
    assert "checkpoint is unchanged" in line
    assert (run_dir / "checkpoint.npz").read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["--epochs", "0"], "--epochs"),
    (["--batch-size", "-1"], "--batch-size"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr-d", "0"], "--lr-d"),
    (["--lr-g", "nan"], "--lr-g"),
    (["-k", "0"], "-k"),
    (["--preset", "huge"], "--preset"),
    (["--loss", "bogus"], "--loss"),
])
def test_train_bad_arguments(args, needle, capsys, monkeypatch):
    monkeypatch.setattr(scratchgan.data, "load_dataset", None)  # must not be reached
    with pytest.raises(SystemExit) as info:
        main(["train"] + args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("scratchgan train: error: argument") and needle in last


@pytest.mark.parametrize("args", [["--update", "simultaneous", "-k", "3"], ["-k", "2"]])
def test_train_simultaneous_needs_k_one(args, capsys, monkeypatch):
    monkeypatch.setattr(scratchgan.data, "load_dataset", None)  # must not be reached
    assert main(["train", "--out", "unused"] + args) == 2
    one_line_error(capsys.readouterr().err, "k = 1")


def test_train_update_alternating(tmp_path, fake_data, _run_source, capsys):
    """``--update alternating`` trains Algorithm 1: variant "gan", no 0.5 on D's loss."""
    assert main(TRAIN_ARGS + ["--epochs", "1", "--update", "alternating", "-k", "1", "--out",
                              str(tmp_path)]) == 0
    resolved = json.loads((tmp_path / "config.json").read_text())["resolved"]
    assert (resolved["variant"], resolved["d_scale"], resolved["loss"]) == ("gan", 1.0, "non-saturating")
    state = read_checkpoint(tmp_path / "checkpoint.npz")
    assert str(state["variant"]) == "gan" and int(state["d_opt/t"]) == int(state["g_opt/t"]) == 3
    # the default is the authors' simultaneous update with the 0.5
    default = json.loads((_run_source / "config.json").read_text())["resolved"]
    assert (default["variant"], default["d_scale"]) == ("simultaneous", 0.5)


def _backend_message():
    with pytest.raises(BackendError) as info:
        backend.get_device("gpu")
    return str(info.value)


needs_no_gpu = pytest.mark.skipif(backend.gpu_available(), reason="a GPU is usable here")


@needs_no_gpu
def test_train_device_gpu_without_gpu(tmp_path, monkeypatch, capsys):
    # the device is checked before any data are read (or downloaded)
    def no_data(*a, **k):
        raise DataError("the data should not have been loaded")
    monkeypatch.setattr(scratchgan.data, "load_dataset", no_data)
    code = main(TRAIN_ARGS[:-3] + ["--device", "gpu", "--out", str(tmp_path)])
    assert code == 2
    line = one_line_error(capsys.readouterr().err)
    assert line == f"scratchgan: error: {_backend_message()}"
    assert not (tmp_path / "checkpoint.npz").exists()


@needs_no_gpu
@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_other_commands_device_gpu_without_gpu(run_dir, fake_data, command, capsys):
    extra = ["--npz", str(run_dir / "s.npz")] if command == "sample" else ["-n", "50"]
    assert main([command, str(run_dir / "checkpoint.npz"), "--device", "gpu"] + extra) == 2
    assert one_line_error(capsys.readouterr().err) == f"scratchgan: error: {_backend_message()}"


# --------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------

def test_sample_npz_png_figure2(run_dir, fake_data, capsys):
    ckpt = str(run_dir / "checkpoint.npz")
    a, b, c = (str(run_dir / f"{x}.npz") for x in "abc")
    assert main(["sample", ckpt, "-n", "50", "--npz", a, "--png", str(run_dir / "g.png"),
                 "--figure2", str(run_dir / "f2.png"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "50 samples" in out
    for name in ("g.png", "f2.png"):
        assert (run_dir / name).read_bytes()[:8] == PNG_MAGIC
    with np.load(a) as f:
        x = f["samples"]
    assert x.shape == (50, 784) and x.dtype == np.float32
    assert x.min() >= 0 and x.max() <= 1
    # the samples are G(z) for z from the prior seeded by --seed
    G, prior, _ = generator_from_checkpoint(ckpt, device="cpu")
    z = prior.sample(50, np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(x, G.forward(z, train=False))
    # same seed, same samples; another seed, others
    assert main(["sample", ckpt, "-n", "50", "--npz", b, "--device", "cpu"]) == 0
    assert main(["sample", ckpt, "-n", "50", "--npz", c, "--seed", "1", "--device", "cpu"]) == 0
    with np.load(b) as fb, np.load(c) as fc:
        np.testing.assert_array_equal(fb["samples"], x)
        assert not np.array_equal(fc["samples"], x)


def test_sample_needs_an_output(run_dir, capsys):
    assert main(["sample", str(run_dir / "checkpoint.npz")]) == 2
    one_line_error(capsys.readouterr().err, "--png", "--npz", "--figure2")


def test_sample_figure2_needs_20(run_dir, fake_data, capsys):
    png = run_dir / "g.png"
    assert main(["sample", str(run_dir / "checkpoint.npz"), "-n", "10", "--png", str(png),
                 "--figure2", str(run_dir / "f2.png")]) == 2
    one_line_error(capsys.readouterr().err, "--figure2", "20")
    assert not png.exists()  # refused before anything was written


def test_sample_missing_checkpoint(tmp_path, capsys):
    assert main(["sample", str(tmp_path / "nope.npz"), "--png", str(tmp_path / "g.png")]) == 2
    one_line_error(capsys.readouterr().err, "nope.npz")


def test_sample_not_a_checkpoint(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    assert main(["sample", str(bad), "--png", str(tmp_path / "g.png")]) == 2
    line = one_line_error(capsys.readouterr().err, "bad.npz", "not a scratchgan checkpoint")
    assert "pickle" not in line


def test_sample_and_evaluate_a_partial_checkpoint(tmp_path, fake_data, capsys):
    """partial.npz (a run stopped inside an epoch) can be sampled and evaluated."""
    assert main(TRAIN_ARGS + ["--epochs", "1", "--max-iterations", "2", "--out", str(tmp_path)]) == 0
    partial = str(tmp_path / "partial.npz")
    assert main(["sample", partial, "-n", "20", "--npz", str(tmp_path / "s.npz"), "--device", "cpu"]) == 0
    assert main(["evaluate", partial, "-n", "60", "--n-valid", "10", "--n-test", "10", "--quiet",
                 "--device", "cpu", "--metrics", "parzen"]) == 0
    assert PARZEN_LINE.search(capsys.readouterr().out)


# --------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------

def test_evaluate_checkpoint(run_dir, fake_data, capsys):
    js = run_dir / "result.json"
    assert main(["evaluate", str(run_dir / "checkpoint.npz"), "-n", "100", "--n-valid", "20",
                 "--n-test", "25", "--quiet", "--device", "cpu", "--json", str(js), "--metrics", "parzen"]) == 0
    out = capsys.readouterr().out
    m = PARZEN_LINE.search(out)
    assert m, out
    assert "25 test images" in out
    result = json.loads(js.read_text())["parzen"]
    assert float(m.group(1)) == pytest.approx(result["mean"], abs=0.051)
    assert float(m.group(2)) == pytest.approx(result["std_err"], abs=0.051)
    assert result["std_err"] > 0
    assert min(abs(s - result["sigma"]) for s in result["sigmas"]) < 1e-12
    assert len(result["sigmas"]) == 10


def test_evaluate_g_snapshot(run_dir, fake_data, capsys):
    # the help says "a checkpoint or G snapshot": both give the same G
    common = ["-n", "60", "--n-valid", "10", "--n-test", "10", "--quiet", "--device", "cpu", "--metrics", "parzen"]
    assert main(["evaluate", str(run_dir / "checkpoint.npz")] + common) == 0
    from_ckpt = PARZEN_LINE.search(capsys.readouterr().out).groups()
    assert main(["evaluate", str(run_dir / "G_epoch_0001.npz")] + common) == 0
    from_snapshot = PARZEN_LINE.search(capsys.readouterr().out).groups()
    assert from_snapshot == from_ckpt


def test_evaluate_real_reference(fake_data, capsys):
    assert main(["evaluate", "--real", "-n", "100", "--n-valid", "20", "--n-test", "20",
                 "--quiet", "--device", "cpu", "--metrics", "parzen"]) == 0
    out = capsys.readouterr().out
    assert PARZEN_LINE.search(out) and "100 real training images" in out


@pytest.mark.parametrize("args", [[], ["ckpt.npz", "--real"]])
def test_evaluate_needs_exactly_one_source(args, capsys):
    assert main(["evaluate"] + args) == 2
    one_line_error(capsys.readouterr().err, "checkpoint", "--real")


# --------------------------------------------------------------------------
# presets, --help
# --------------------------------------------------------------------------

def _check_presets_listing(out):
    for name, preset in PRESETS.items():
        assert f"{name}: {preset.summary}" in out, name
        for line in preset.deviations:
            assert line in out, (name, line)
    paper = out[out.index("paper: "):out.index("small: ")]
    assert "  batch_size = 100" in paper and "  variant = simultaneous" in paper
    assert "  loss = non-saturating" in paper and "  d_scale = 0.5" in paper and "'lr': 0.1" in paper


def test_presets(capsys):
    assert main(["presets"]) == 0
    _check_presets_listing(capsys.readouterr().out)


def test_presets_subprocess():
    """``python -m scratchgan presets`` prints every preset with its deviations."""
    proc = subprocess.run([sys.executable, "-m", "scratchgan", "presets"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    _check_presets_listing(proc.stdout)


def test_module_help_subprocess():
    proc = subprocess.run([sys.executable, "-m", "scratchgan", "--help"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    for command in ("train", "sample", "evaluate", "presets"):
        assert command in proc.stdout


@pytest.mark.parametrize("command", ["train", "sample", "evaluate"])
def test_help_says_what_the_preset_defaults_are(command, capsys, monkeypatch):
    """Options whose default is "the preset's" (None) or a flag (False) show no
    meaningless "(default: None)" / "(default: False)"; the others show theirs."""
    monkeypatch.setenv("COLUMNS", "250")
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text, text
    assert "(default: auto)" in text  # --device
    assert "(default: 0)" in text or "default: 0, or the checkpoint" in text  # --seed


def test_no_command_is_an_error(capsys):
    with pytest.raises(SystemExit) as info:
        main([])
    assert info.value.code == 2


# --------------------------------------------------------------------------
# the real MNIST files
# --------------------------------------------------------------------------

def _have_mnist():
    return any((d / "train-images-idx3-ubyte.gz").is_file() for d in (REAL_DATA, REAL_DATA / "mnist"))


needs_mnist = pytest.mark.skipif(
    not _have_mnist(),
    reason=f"MNIST files not found in {REAL_DATA} (set SCRATCHGAN_DATA to a folder holding them)",
)


@pytest.fixture(scope="module")
def mnist_run(tmp_path_factory):
    if not _have_mnist():
        pytest.skip(f"MNIST files not found in {REAL_DATA}")
    out = tmp_path_factory.mktemp("mnist_run")
    code = main(["train", "--preset", "small", "--max-iterations", "10", "--epochs", "1",
                 "--device", "cpu", "--quiet", "--data-dir", str(REAL_DATA), "--out", str(out)])
    assert code == 0
    return out


@pytest.mark.mnist
@needs_mnist
def test_mnist_train_sample(mnist_run, tmp_path, capsys):
    assert not (mnist_run / "checkpoint.npz").exists()  # 10 iterations: inside epoch 1
    state = read_checkpoint(mnist_run / "partial.npz")
    assert int(state["iterations"]) == 10 and tuple(state["x_shape"]) == (784,)
    assert (mnist_run / "samples" / "epoch_0001_partial.png").read_bytes()[:8] == PNG_MAGIC
    capsys.readouterr()
    assert main(["sample", str(mnist_run / "partial.npz"), "-n", "50", "--device", "cpu",
                 "--png", str(tmp_path / "g.png"), "--npz", str(tmp_path / "s.npz"),
                 "--figure2", str(tmp_path / "f2.png"), "--data-dir", str(REAL_DATA)]) == 0
    assert (tmp_path / "g.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "f2.png").read_bytes()[:8] == PNG_MAGIC
    with np.load(tmp_path / "s.npz") as f:
        assert f["samples"].shape == (50, 784)


@pytest.mark.mnist
@needs_mnist
def test_mnist_evaluate(mnist_run, capsys):
    common = ["-n", "500", "--n-valid", "100", "--n-test", "200", "--quiet", "--device", "cpu",
              "--data-dir", str(REAL_DATA), "--metrics", "parzen"]
    capsys.readouterr()
    assert main(["evaluate", str(mnist_run / "partial.npz")] + common) == 0
    out = capsys.readouterr().out
    m = PARZEN_LINE.search(out)
    assert m and out.startswith("mnist, ") and "200 test images" in out, out
    assert main(["evaluate", "--real"] + common) == 0
    out_real = capsys.readouterr().out
    m_real = PARZEN_LINE.search(out_real)
    assert m_real and "500 real training images" in out_real, out_real
    # real digits are far likelier than samples of a G trained for 10 iterations
    assert float(m_real.group(1)) > float(m.group(1))


def test_sigterm_during_training_is_met_as_ctrl_c(run_dir, fake_data, monkeypatch, capsys):
    """``kill`` (SIGTERM) in epoch 2 of a resumed run: one line saying the
    epoch-1 checkpoint is intact, exit code 143, the checkpoint unchanged, the
    run's lock released (a resume works) and the previous handler restored."""
    import signal

    from scratchgan.gan import VARIANTS

    before = (run_dir / "checkpoint.npz").read_bytes()
    real = {cls: cls.iteration for cls in set(VARIANTS.values())}

    def killed(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real[type(self)](self, *args, **kwargs)

    for cls in real:
        monkeypatch.setattr(cls, "iteration", killed)
    handler = signal.getsignal(signal.SIGTERM)
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume"]) == 143
    err = capsys.readouterr().err.strip()
    assert err.startswith("scratchgan: terminated; ") and "(end of epoch 1) is intact" in err, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert (run_dir / "checkpoint.npz").read_bytes() == before
    assert signal.getsignal(signal.SIGTERM) is handler
    monkeypatch.undo()
    monkeypatch.setattr(scratchgan.data, "load_dataset", _fake_loader(TINY))
    assert main(TRAIN_ARGS + ["--epochs", "2", "--out", str(run_dir), "--resume"]) == 0
