"""The judge and the metrics in its feature space (issue 11).

FID against its closed form and SciPy's sqrtm route, Inception score of known
predictions, precision and recall on point clouds with known overlap, mode
coverage, the judge's checksum, the evaluate command's JSON, end to end.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import scratchgan.data
import scratchgan.models.judge as judge_mod
from scratchgan.cli import main
from scratchgan.data import Dataset
from scratchgan.metrics import (fid, frechet_distance, inception_score, label_accuracy, mode_coverage,
                                precision_recall)
from scratchgan.models.judge import JudgeError, build_judge, load_judge, save_judge_weights


def test_fid_of_a_set_against_itself_is_zero():
    x = np.random.default_rng(0).standard_normal((2000, 16)) @ np.random.default_rng(1).standard_normal((16, 16))
    assert abs(fid(x, x)) < 1e-8


def test_frechet_distance_of_two_gaussians_closed_form():
    """Diagonal covariances commute: Tr((Σ1Σ2)^½) = Σ √(a_i b_i), so
    FD = ‖μ1 − μ2‖² + Σ (√a_i − √b_i)²."""
    rs = np.random.default_rng(2)
    mu1, mu2 = rs.standard_normal(8), rs.standard_normal(8)
    a, b = rs.uniform(0.1, 3, 8), rs.uniform(0.1, 3, 8)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_against_scipy_sqrtm():
    """The pytorch-fid / TTUR route: scipy.linalg.sqrtm(Σ1 Σ2), real part."""
    linalg = pytest.importorskip("scipy.linalg")
    rs = np.random.default_rng(3)
    A, B = rs.standard_normal((12, 12)), rs.standard_normal((12, 12))
    c1, c2 = A @ A.T + 0.1 * np.eye(12), B @ B.T + 0.1 * np.eye(12)
    mu1, mu2 = rs.standard_normal(12), rs.standard_normal(12)
    covmean = linalg.sqrtm(c1 @ c2).real
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * covmean)
    assert frechet_distance(mu1, c1, mu2, c2) == pytest.approx(expected, rel=1e-9)


def test_fid_grows_with_a_shift():
    rs = np.random.default_rng(4)
    x, y = rs.standard_normal((5000, 4)), rs.standard_normal((5000, 4))
    assert fid(x, y) < 0.02
    assert fid(x, y + 1) == pytest.approx(4, rel=0.05)  # ‖μ1 − μ2‖² = 4·1²
    with pytest.raises(ValueError, match="at least 2"):
        fid(x[:1], y)


def test_inception_score_of_known_predictions():
    n = 1000
    perfect = np.full((n, 10), -50.0)
    perfect[np.arange(n), np.arange(n) % 10] = 50.0          # confident, evenly spread
    assert inception_score(perfect)[0] == pytest.approx(10, rel=1e-6)
    uniform = np.zeros((n, 10))                               # unsure about everything
    assert inception_score(uniform)[0] == pytest.approx(1, rel=1e-9)
    one_class = np.full((n, 10), -50.0)
    one_class[:, 3] = 50.0                                     # confident, all one class
    assert inception_score(one_class)[0] == pytest.approx(1, rel=1e-6)
    half = perfect.copy()
    half[:, 5:] = -50.0
    half[np.arange(n), np.arange(n) % 5] = 50.0               # five classes
    assert inception_score(half)[0] == pytest.approx(5, rel=1e-6)


def test_mode_coverage():
    logits = np.zeros((100, 10))
    logits[np.arange(100), np.arange(100) % 10] = 1
    m = mode_coverage(logits)
    assert m["covered"] == 10 and m["kl_to_uniform"] == pytest.approx(0, abs=1e-12)
    logits = np.zeros((100, 10))
    logits[:, 7] = 1
    m = mode_coverage(logits)
    assert m["covered"] == 1 and m["histogram"][7] == 100
    assert m["kl_to_uniform"] == pytest.approx(np.log(10))


def test_precision_recall_on_point_clouds():
    rs = np.random.default_rng(5)
    real = rs.uniform(0, 1, (2000, 2))
    same = rs.uniform(0, 1, (2000, 2))
    p, r = precision_recall(real, same)
    assert p > 0.9 and r > 0.9
    left_half = rs.uniform(0, 1, (2000, 2)) * [0.5, 1]        # covers half of the real square
    p, r = precision_recall(real, left_half)
    assert p > 0.9 and 0.4 < r < 0.6
    far = rs.uniform(5, 6, (2000, 2))                          # nowhere near the data
    assert precision_recall(real, far) == (0.0, 0.0)
    collapsed = np.repeat(real[:1], 50, axis=0) + 1e-6 * rs.standard_normal((50, 2))  # one point of the data
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.01


def test_label_accuracy():
    logits = np.eye(10)[[1, 2, 3, 3]]
    assert label_accuracy(logits, np.array([1, 2, 3, 4])) == 0.75
    with pytest.raises(ValueError, match="labels of shape"):
        label_accuracy(logits, np.array([1, 2]))


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A randomly initialised judge saved as the package's shipped weights."""
    judge = build_judge(0)
    entry = save_judge_weights(judge, "mnist", tmp_path, test_accuracy=0.1)
    (tmp_path / "judges.json").write_text(json.dumps({"mnist": entry}))
    monkeypatch.setattr(judge_mod, "WEIGHTS", tmp_path)
    return tmp_path, judge


def test_judge_round_trips_through_float16(shipped):
    _, judge = shipped
    loaded = load_judge("mnist")
    for k, v in judge.state_dict().items():
        np.testing.assert_allclose(loaded.state_dict()[k], v, rtol=1e-3, atol=1e-4)
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    assert loaded.features(x).shape == (3, 128) and loaded.forward(x, train=False).shape == (3, 10)


def test_judge_checksum_is_checked(shipped):
    path, _ = shipped
    blob = bytearray((path / "mnist.f16").read_bytes())
    blob[100] ^= 0xFF
    (path / "mnist.f16").write_bytes(bytes(blob))
    with pytest.raises(JudgeError, match="damaged or not the shipped ones: SHA-256"):
        load_judge("mnist")
    with pytest.raises(JudgeError, match="no judge for fashion-mnist"):
        load_judge("fashion-mnist")
    (path / "mnist.f16").unlink()
    with pytest.raises(JudgeError, match="missing"):
        load_judge("mnist")


def test_shipped_judges_when_present():
    """The package's own weights (if this checkout has them) load and match the manifest."""
    try:
        manifest = judge_mod.judge_manifest()
    except JudgeError:
        pytest.skip("no judges shipped in this checkout (scripts/train_judge.py makes them)")
    for name, entry in manifest.items():
        judge = load_judge(name)
        assert judge.n_params == sum(int(np.prod(s)) for _, s in entry["arrays"])


def tiny_data(n=300):
    rng = np.random.default_rng(0)
    imgs = rng.random((n + 120, 784), dtype=np.float32)
    z = np.zeros
    return Dataset(name="mnist", split="paper", train=imgs[:n], train_labels=z(n, np.uint8),
                   valid=imgs[n:n + 60], valid_labels=z(60, np.uint8), test=imgs[n + 60:],
                   test_labels=z(60, np.uint8))


def test_evaluate_end_to_end_json(tmp_path, shipped, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    assert main(["train", "--preset", "small", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    js, png = tmp_path / "eval.json", tmp_path / "modes.png"
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "200", "--json", str(js), "--modes-png", str(png),
                 "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    for needle in ("FID (judge features)", "Inception score", "mode coverage", "precision / recall",
                   "Parzen log-likelihood"):
        assert needle in printed
    r = json.loads(js.read_text())
    assert set(r) >= {"fid", "is", "modes", "precision", "recall", "parzen", "what", "dataset", "seconds"}
    assert set(r["fid"]) >= {"value", "real_floor", "reference", "floor"}
    assert set(r["is"]) >= {"mean", "std", "splits", "real_test"}
    assert set(r["modes"]) >= {"histogram", "covered", "kl_to_uniform"} and sum(r["modes"]["histogram"]) == 200
    assert set(r["precision"]) >= {"value", "k"} and r["precision"]["k"] == 3
    assert set(r["parzen"]) >= {"mean", "std_err", "sigma", "n_valid", "n_test"}
    assert png.read_bytes()[:4] == b"\x89PNG"
    # a subset, and a bad name
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "200", "--metrics", "modes", "--device", "cpu",
                 "--quiet"]) == 0
    assert "Parzen" not in capsys.readouterr().out
    assert main(["evaluate", str(out / "checkpoint.npz"), "--metrics", "fid,bogus", "--device", "cpu"]) == 2
    assert "unknown bogus" in capsys.readouterr().err


def test_sample_interpolate_writes_figure3(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    assert main(["train", "--preset", "small", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    png = tmp_path / "fig3.png"
    assert main(["sample", str(out / "checkpoint.npz"), "--interpolate", str(png), "--rows", "3", "--steps", "5",
                 "--device", "cpu"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["sample", str(out / "checkpoint.npz"), "--interpolate", str(png), "--steps", "1"]) == 2


def test_evaluate_without_a_judge(tmp_path, monkeypatch, capsys):
    """No judge shipped for the dataset: the default metrics fall back to Parzen
    with a note; judged metrics asked for by name are a one-line error."""
    (tmp_path / "judges").mkdir()
    (tmp_path / "judges" / "judges.json").write_text("{}")
    monkeypatch.setattr(judge_mod, "WEIGHTS", tmp_path / "judges")
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    assert main(["train", "--preset", "small", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "100", "--device", "cpu", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert "no judge for mnist" in captured.err and "Parzen estimate only" in captured.err
    assert "Parzen log-likelihood" in captured.out and "FID" not in captured.out
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "100", "--metrics", "fid", "--device", "cpu"]) == 2
    assert "no judge for mnist" in capsys.readouterr().err
