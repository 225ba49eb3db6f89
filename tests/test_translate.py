"""pix2pix end to end (issue 16): train, resume and evaluate through the command line on
tiny paired data; ``translate`` on PNG files and .npy batches, and its errors; the
ablation script's table and image rows."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os

import matplotlib.image as mpimg
import numpy as np
import pytest
from PIL import Image

import scratchgan.data
import scratchgan.models.judge as judge_mod
from scratchgan import presets
from scratchgan.cli import main
from scratchgan.data import Dataset
from scratchgan.models.judge import build_judge, save_judge_weights
from scratchgan.training.checkpoint import read_checkpoint
from scratchgan.training.trainer import gan_from_checkpoint

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = dataclasses.replace(presets.PRESETS["pix2pix"], summary="test-only: a narrow pix2pix", batch_size=8,
                           model_args=dict(ngf=4, ndf=4, n_layers=1, dropout_blocks=3, skips=True, test_dropout=True))
TINY_L1 = dataclasses.replace(TINY, variant_args=dict(lambda_l1=100.0, adversarial=False))


def base_data(name, n=(40, 12, 30), seed=0):
    rs = np.random.default_rng(seed)
    parts = []
    for k in n:
        small = (rs.random((k, 7, 7)) > 0.6) * rs.uniform(0.3, 1.0, (k, 7, 7))
        parts += [small.repeat(4, 1).repeat(4, 2).reshape(k, 784).astype(np.float32),
                  rs.integers(0, 10, k).astype(np.uint8)]
    tr, trl, va, val, te, tel = parts
    return Dataset(name=name, split="paper", train=tr, train_labels=trl, valid=va, valid_labels=val, test=te,
                   test_labels=tel)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two tiny runs trained through the command line (L1 + cGAN for 2 epochs with a
    resume, L1 alone for 1), shared by the tests below."""
    root = tmp_path_factory.mktemp("p2p")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(presets.PRESETS, "p2p-tiny", TINY)
        mp.setitem(presets.PRESETS, "p2p-tiny-l1", TINY_L1)
        mp.setattr(scratchgan.data, "load_dataset", lambda name, *a, **k: base_data(name))
        common = ["--device", "cpu", "--quiet", "--threads", "1"]
        assert main(["train", "--preset", "p2p-tiny", "--out", str(root / "full"), "--epochs", "1",
                     "--snapshot-every", "1"] + common) == 0
        assert main(["train", "--out", str(root / "full"), "--epochs", "2", "--resume"] + common) == 0
        assert main(["train", "--preset", "p2p-tiny-l1", "--out", str(root / "l1"), "--epochs", "1"] + common) == 0
        yield root, mp


def test_training_writes_a_pix2pix_checkpoint(run):
    root, _ = run
    state = read_checkpoint(root / "full" / "checkpoint.npz")
    assert str(state["variant"]) == "pix2pix" and tuple(state["x_shape"]) == (1, 32, 32)
    assert int(state["iterations"]) == 2 * 5 and int(state["epoch"]) == 2        # 40 pairs, batch 8
    assert state["fixed/source"].shape == (12, 1, 32, 32)                         # the held-out grid sources
    assert (root / "full" / "samples" / "epoch_0002.png").is_file()
    rows = [json.loads(line) for line in open(root / "full" / "metrics.jsonl")]
    assert {"d_loss", "D_x", "D_G_z", "g_loss", "l1", "g_gan"} <= set(rows[-1])
    assert "d_loss" not in [json.loads(line) for line in open(root / "l1" / "metrics.jsonl")][-1]
    gan, config = gan_from_checkpoint(root / "full" / "G_epoch_0002.npz", "cpu")
    assert gan.variant == "pix2pix" and config.preset == "p2p-tiny"


def test_sample_refuses_and_evaluate_scores_translations(run, capsys, tmp_path, monkeypatch):
    root, _ = run
    ckpt = str(root / "full" / "checkpoint.npz")
    assert main(["sample", ckpt, "--png", str(tmp_path / "g.png"), "--device", "cpu"]) == 2
    assert "translates images" in capsys.readouterr().err
    out = tmp_path / "r.json"
    assert main(["evaluate", ckpt, "--metrics", "l1,psnr,sharpness", "--device", "cpu", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "30 held-out pairs" in text and "PSNR" in text and "judge accuracy" not in text
    r = json.loads(out.read_text())
    assert 0 < r["l1"] < 1 and r["n_pairs"] == 30
    assert main(["evaluate", ckpt, "--metrics", "fid", "--device", "cpu"]) == 2
    assert "do not apply to a pix2pix checkpoint" in capsys.readouterr().err
    # with a judge (a fresh one, saved as the package's Fashion-MNIST judge)
    entry = save_judge_weights(build_judge(0), "fashion-mnist", tmp_path, test_accuracy=0.1)
    (tmp_path / "judges.json").write_text(json.dumps({"fashion-mnist": entry}))
    monkeypatch.setattr(judge_mod, "WEIGHTS", tmp_path)
    assert main(["evaluate", ckpt, "-n", "20", "--device", "cpu"]) == 0
    assert "20 held-out pairs" in (text := capsys.readouterr().out) and "judge accuracy" in text
    monkeypatch.setattr(judge_mod, "WEIGHTS", tmp_path / "nowhere")
    assert main(["evaluate", ckpt, "--device", "cpu"]) == 2
    assert "no judge manifest" in capsys.readouterr().err
    assert main(["evaluate", "--real", "--dataset", "edges2fashion", "--metrics", "parzen", "--device", "cpu"]) == 2
    assert "is a paired task" in capsys.readouterr().err


def write_png(path, img, mode="L"):
    a = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
    if mode == "RGB":
        a = np.stack([a] * 3, -1)
    Image.fromarray(a, mode=mode).save(path)


def test_translate_pngs_and_npy_end_to_end(run, tmp_path, capsys):
    root, _ = run
    ckpt = str(root / "full" / "checkpoint.npz")
    rs = np.random.default_rng(3)
    src32, src28 = rs.random((32, 32)), rs.random((28, 28))
    write_png(tmp_path / "a.png", src32)
    write_png(tmp_path / "b.png", src28, mode="RGB")      # grey saved as RGB is accepted
    batch = rs.integers(0, 256, (3, 1, 32, 32)).astype(np.uint8)
    np.save(tmp_path / "c.npy", batch)
    np.save(tmp_path / "d.npy", src28.astype(np.float32))
    out = tmp_path / "out"
    inputs = [str(tmp_path / f) for f in ("a.png", "b.png", "c.npy", "d.npy")]
    assert main(["translate", ckpt, *inputs, "--out", str(out), "--grid", str(tmp_path / "grid.png"),
                 "--device", "cpu", "--seed", "4"]) == 0
    assert "wrote 4 translation file(s)" in capsys.readouterr().out
    assert (tmp_path / "grid.png").is_file()
    a, b = mpimg.imread(out / "a.png"), mpimg.imread(out / "b.png")
    c, d = np.load(out / "c.npy"), np.load(out / "d.npy")
    assert a.shape == (32, 32) and b.shape == (28, 28) and c.shape == (3, 1, 32, 32) and d.shape == (28, 28)
    assert c.dtype == np.float32 and 0 <= c.min() and c.max() <= 1
    # the same translations straight from the variant: the inputs as read, 28×28 padded, each file
    # on its own with the same seed
    gan, _ = gan_from_checkpoint(ckpt, "cpu")
    q = lambda x: np.round(np.clip(x, 0, 1) * 255) / 255   # noqa: E731  (what a PNG holds)

    def expected(*images):
        gan.seed(4)
        return gan.generate(len(images), 4, 500, source=np.stack(images)[:, None].astype(np.float32))[:, 0]
    np.testing.assert_allclose(a, q(expected(q(src32))[0]), atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(b, q(expected(np.pad(q(src28), 2))[0][2:30, 2:30]), atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(c[:, 0], expected(*(batch[:, 0] / 255)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(d, expected(np.pad(src28, 2))[0][2:30, 2:30], rtol=1e-5, atol=1e-6)
    # the noise is dropout: another seed, other translations
    assert main(["translate", ckpt, inputs[2], "--out", str(tmp_path / "o2"), "--device", "cpu", "--seed", "5"]) == 0
    assert np.abs(np.load(tmp_path / "o2" / "c.npy") - c).max() > 1e-4


def test_a_files_translation_depends_on_the_seed_and_the_file_alone(run, tmp_path):
    """The same file, translated alone, first or last among others, gives the
    same translation (each file's dropout noise is re-seeded); a file
    translated twice in one call gets the same translation both times."""
    from scratchgan.translate import read_inputs, translate_items

    root, _ = run
    gan, _ = gan_from_checkpoint(root / "full" / "checkpoint.npz", "cpu")
    rs = np.random.default_rng(7)
    write_png(tmp_path / "a.png", rs.random((32, 32)))
    np.save(tmp_path / "b.npy", rs.random((3, 28, 28)).astype(np.float32))
    write_png(tmp_path / "c.png", rs.random((28, 28)))
    a, b, c = (str(tmp_path / f) for f in ("a.png", "b.npy", "c.png"))

    def translate(*paths, seed=4):
        out = translate_items(gan, read_inputs(paths, 32), seed=seed)
        return {p: y for p, y in zip(paths, out)}
    alone = {p: translate(p)[p] for p in (a, b, c)}
    for together in (translate(a, b, c), translate(c, b, a), translate(b, a, a)):
        for p, y in together.items():
            np.testing.assert_array_equal(y, alone[p])
    assert np.abs(translate(b, seed=5)[b] - alone[b]).max() > 1e-4     # the seed is the noise


def test_read_png_scales_integer_pixels(tmp_path, monkeypatch):
    """A reader that gives integer pixels (matplotlib gives floats for PNG) is scaled to [0, 1]."""
    import scratchgan.translate as tr

    write_png(tmp_path / "x.png", np.zeros((32, 32)))
    monkeypatch.setattr(mpimg, "imread", lambda *a, **k: np.full((32, 32), 255, np.uint8))
    img = tr.read_png(tmp_path / "x.png")
    assert img.dtype == np.float32 and np.all(img == 1)
    monkeypatch.setattr(mpimg, "imread", lambda *a, **k: np.full((32, 32, 3), 65535, np.uint16))
    assert np.all(tr.read_png(tmp_path / "x.png") == 1)


BAD = {
    "size": ("x.png", lambda p: write_png(p, np.zeros((30, 30))), "30x30 pixels; this model translates 32x32"),
    "not square": ("x.npy", lambda p: np.save(p, np.zeros((2, 32, 28), np.float32)), "32x28 pixels"),
    "colour": ("x.png", lambda p: Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3)).astype(
        np.uint8)).save(p), "a colour image"),
    "alpha": ("x.png", lambda p: Image.fromarray(np.zeros((32, 32, 4), np.uint8)).save(p), "transparency"),
    "range": ("x.npy", lambda p: np.save(p, np.full((2, 32, 32), 1.5, np.float32)), r"span \[1.5, 1.5\]; expected"),
    "nan": ("x.npy", lambda p: np.save(p, np.full((32, 32), np.nan, np.float32)), "NaN"),
    "dtype": ("x.npy", lambda p: np.save(p, np.zeros((32, 32), np.int16)), "dtype int16"),
    "ndim": ("x.npy", lambda p: np.save(p, np.zeros((2, 3, 32, 32), np.float32)), r"shape \(2, 3, 32, 32\)"),
    "empty": ("x.npy", lambda p: np.save(p, np.zeros((0, 32, 32), np.float32)), "empty"),
    "garbage png": ("x.png", lambda p: p.write_bytes(b"not a png at all"), "not a readable PNG"),
    "garbage npy": ("x.npy", lambda p: p.write_bytes(b"nope"), "not a readable .npy"),
    "pickle": ("x.npy", lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "not a readable .npy"),
    "extension": ("x.jpg", lambda p: p.write_bytes(b""), "unsupported input"),
    "missing": ("x.png", lambda p: None, "no such file"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_translate_bad_inputs_are_one_error_line(run, tmp_path, capsys, case):
    root, _ = run
    name, make, message = BAD[case]
    make(tmp_path / name)
    out = tmp_path / "out"
    assert main(["translate", str(root / "full" / "checkpoint.npz"), str(tmp_path / name), "--out", str(out),
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scratchgan: error: ") and err.count("\n") == 1
    assert __import__("re").search(message, err), err
    assert not out.exists() or not os.listdir(out)           # nothing written


def test_translate_refuses_collisions_overwrites_and_other_checkpoints(run, tmp_path, capsys):
    root, _ = run
    ckpt = str(root / "full" / "checkpoint.npz")
    for sub in ("p", "q"):
        (tmp_path / sub).mkdir()
        write_png(tmp_path / sub / "x.png", np.zeros((32, 32)))
    assert main(["translate", ckpt, str(tmp_path / "p" / "x.png"), str(tmp_path / "q" / "x.png"), "--out",
                 str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "would both be written to" in capsys.readouterr().err
    assert main(["translate", ckpt, str(tmp_path / "p" / "x.png"), "--out", str(tmp_path / "p"),
                 "--device", "cpu"]) == 2
    assert "would overwrite it" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["translate", ckpt, str(tmp_path / "p" / "x.png"), "--out", str(tmp_path / "file"),
                 "--device", "cpu"]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_translate_needs_a_pix2pix_checkpoint(tmp_path, monkeypatch, capsys):
    from test_dcgan import tiny_data

    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    assert main(["train", "--preset", "small", "--out", str(tmp_path / "r"), "--max-iterations", "1", "--device",
                 "cpu", "--quiet"]) == 0
    write_png(tmp_path / "x.png", np.zeros((32, 32)))
    assert main(["translate", str(tmp_path / "r" / "partial.npz"), str(tmp_path / "x.png"), "--out",
                 str(tmp_path / "o"), "--device", "cpu"]) == 2
    assert "needs a pix2pix checkpoint" in capsys.readouterr().err


def test_ablation_script_prints_the_table_and_rows(run, tmp_path, capsys):
    root, mp = run
    spec = importlib.util.spec_from_file_location("pix2pix_ablation", os.path.join(REPO, "scripts",
                                                                                   "pix2pix_ablation.py"))
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    entry = save_judge_weights(build_judge(0), "fashion-mnist", tmp_path, test_accuracy=0.1)
    (tmp_path / "judges.json").write_text(json.dumps({"fashion-mnist": entry}))
    mp.setattr(judge_mod, "WEIGHTS", tmp_path)
    script.main([str(root / "l1"), str(root / "full"), "-n", "25", "--rows", str(tmp_path / "rows.png"),
                 "--json", str(tmp_path / "t.json")])
    text = capsys.readouterr().out
    assert "| L1 | U-Net | 1 |" in text and "| L1 + cGAN | U-Net | 2 |" in text and "| ground truth |" in text
    assert (tmp_path / "rows.png").is_file()
    r = json.loads((tmp_path / "t.json").read_text())
    assert [x["loss"] for x in r["runs"]] == ["L1", "L1 + cGAN"] and r["n"] == 25
    assert set(r["runs"][0]) >= {"l1", "psnr", "sharpness", "accuracy"}
    with pytest.raises(FileNotFoundError, match="neither a checkpoint"):
        script.main([str(tmp_path / "nothing")])
