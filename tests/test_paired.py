"""Paired tasks for pix2pix (issue 16) and the metrics of translation: the pairs are
deterministic, shaped and ranged as documented, their targets are the real images,
their sources what the task says; L1, PSNR, sharpness and the judge's accuracy."""

from __future__ import annotations

import numpy as np
import pytest

import scratchgan.data
from scratchgan import paired
from scratchgan.data import Dataset
from scratchgan.metrics.translation import evaluate_translation, l1_error, psnr, sharpness
from scratchgan.metrics.judged import judge_outputs, label_accuracy
from scratchgan.models.judge import build_judge


def base_data(name="fashion-mnist", n=(40, 10, 12), seed=0):
    """A stand-in for load_dataset: blocky random images (sharp edges) with labels."""
    rs = np.random.default_rng(seed)
    parts = []
    for k in n:
        small = (rs.random((k, 7, 7)) > 0.6) * rs.uniform(0.3, 1.0, (k, 7, 7))
        parts.append(small.repeat(4, 1).repeat(4, 2).reshape(k, 784).astype(np.float32))
        parts.append(rs.integers(0, 10, k).astype(np.uint8))
    tr, trl, va, val, te, tel = parts
    return Dataset(name=name, split="paper", train=tr, train_labels=trl, valid=va, valid_labels=val, test=te,
                   test_labels=tel)


@pytest.fixture
def fake_files(monkeypatch):
    """load_dataset returns the stand-in, and records what it was asked for."""
    asked = []

    def load_dataset(name, data_dir=None, download=True, split="paper", **kw):
        asked.append((name, data_dir, split))
        return base_data(name)
    monkeypatch.setattr(scratchgan.data, "load_dataset", load_dataset)
    return asked


def slow_sobel(img):
    """An independent Sobel: explicit 3×3 correlation loops over a zero-padded image."""
    kx = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
    p = np.pad(img.astype(float), 1)
    h, w = img.shape
    gx, gy = np.zeros((h, w)), np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            win = p[i:i + 3, j:j + 3]
            gx[i, j], gy[i, j] = (win * kx).sum(), (win * kx.T).sum()
    return np.sqrt(gx ** 2 + gy ** 2)


def test_sobel_magnitude_against_loops_and_a_step():
    rs = np.random.default_rng(0)
    imgs = rs.random((3, 9, 11)).astype(np.float32)
    got = paired.sobel_magnitude(imgs)
    for a, b in zip(got, imgs):
        np.testing.assert_allclose(a, slow_sobel(b), rtol=1e-5, atol=1e-5)
    step = np.zeros((1, 28, 28), np.float32)
    step[:, :, 14:] = 0.5                                    # a vertical step of height 0.5
    mag = paired.sobel_magnitude(step)[0]
    np.testing.assert_allclose(mag[5:20, 13:15], 4 * 0.5)   # 4h on both sides of the step
    assert not mag[5:20, :13].any() and not mag[5:20, 15:27].any()
    e = paired.edges(step)
    assert set(np.unique(e)) == {0.0, 1.0} and e[0, 10, 13] == 1 and e[0, 10, 5] == 0
    assert not paired.edges(step * 0.2).any()                # a step of 0.1: |∇| = 0.4 < 1


def test_lowres_keeps_block_means_and_is_blocky():
    x = np.random.default_rng(1).random((4, 28, 28)).astype(np.float32)
    lo = paired.lowres(x)
    blocks = lo.reshape(4, 7, 4, 7, 4)
    assert np.all(blocks == blocks[:, :, :1, :, :1])                     # constant on every 4×4 block
    np.testing.assert_allclose(blocks[:, :, 0, :, 0], x.reshape(4, 7, 4, 7, 4).mean(axis=(2, 4)), rtol=1e-6)
    with pytest.raises(ValueError, match="blocks"):
        paired.lowres(np.zeros((1, 30, 30)))


@pytest.mark.parametrize("task", ["edges2fashion", "lowres2mnist"])
def test_pairs_are_the_real_images_and_their_sources(task, fake_files):
    data = paired.load(task, data_dir="somewhere")
    base_name = paired.TASKS[task][0]
    assert fake_files[-1] == (base_name, "somewhere", "paper")
    base = base_data(base_name)
    assert isinstance(data, paired.PairedDataset) and isinstance(data, Dataset)
    assert (data.name, data.base, data.task, data.image_shape) == (task, base_name, task, (1, 32, 32))
    make = paired.TASKS[task][1]
    for part in ("train", "valid", "test"):
        target, source = getattr(data, part), getattr(data, f"{part}_source")
        real = getattr(base, part)
        assert target.shape == source.shape == (len(real), 1024)
        assert target.dtype == source.dtype == np.float32
        assert not target.flags.writeable and not source.flags.writeable
        assert 0 <= source.min() and source.max() <= 1 and 0 <= target.min() and target.max() <= 1
        t, s = target.reshape(-1, 32, 32), source.reshape(-1, 32, 32)
        np.testing.assert_array_equal(paired.crop(t).reshape(len(real), 784), real)    # the target is the image
        np.testing.assert_array_equal(paired.crop(s), make(real.reshape(-1, 28, 28)))  # the source its function
        for a in (t, s):   # a black border of 2 pixels
            assert not a[:, :2].any() and not a[:, -2:].any() and not a[:, :, :2].any() and not a[:, :, -2:].any()
        np.testing.assert_array_equal(getattr(data, f"{part}_labels"), getattr(base, f"{part}_labels"))
    if task == "edges2fashion":
        assert set(np.unique(data.train_source)) == {0.0, 1.0}


def test_pairs_are_deterministic(fake_files):
    a, b = paired.load("edges2fashion"), paired.load("edges2fashion")
    for part in ("train", "train_source", "test", "test_source"):
        assert getattr(a, part) is not getattr(b, part)
        np.testing.assert_array_equal(getattr(a, part), getattr(b, part))
    x = base_data().train
    s1, t1 = paired.make_pairs("lowres2mnist", x)
    s2, t2 = paired.make_pairs("lowres2mnist", x.copy())
    assert np.array_equal(s1, s2) and np.array_equal(t1, t2)


def test_real_datasets_pass_through_and_errors(fake_files):
    d = paired.load("fashion_mnist")
    assert type(d) is Dataset and d.image_shape == (1, 28, 28) and fake_files[-1][0] == "fashion_mnist"
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*edges2fashion"):
        paired.load("cifar")
    with pytest.raises(ValueError, match="unknown paired task"):
        paired.make_pairs("edges2shoes", np.zeros((1, 784)))
    with pytest.raises(ValueError, match=r"\(N, 784\)"):
        paired.make_pairs("edges2fashion", np.zeros((1, 28, 28)))
    assert paired.ALL_DATASETS == ("mnist", "fashion-mnist", "edges2fashion", "lowres2mnist")


# -- metrics -----------------------------------------------------------------------------------
def test_l1_psnr_sharpness_by_hand():
    rs = np.random.default_rng(2)
    y = rs.random((5, 1, 32, 32))
    out = y.copy()
    out[:, :, 2:30, 2:30] += 0.1                       # every scored pixel off by 0.1: MSE 0.01
    out[:, :, 0, :] = 7                                # the border is not scored
    assert l1_error(out, y) == pytest.approx(0.1)
    np.testing.assert_allclose(psnr(out, y), 20.0)      # 10·log10(1 / 0.01)
    assert psnr(y, y)[0] == pytest.approx(100.0)        # an exact copy
    assert sharpness(y, y) == pytest.approx(1.0)
    blurred = (y + np.roll(y, 1, -1) + np.roll(y, 1, -2) + np.roll(y, (1, 1), (-2, -1))) / 4
    assert sharpness(blurred, y) < 0.8
    assert l1_error(y.reshape(5, 1024), y) == 0        # flat rows are images too


def test_sharpness_counts_no_edge_at_the_crop_border():
    """A flat grey translation has no edges, whatever lies outside the scored
    crop (the crop's border is not an edge); a 3×3 box blur of sharp targets
    (single bright pixels) scores clearly below them."""
    from scipy.ndimage import uniform_filter

    rs = np.random.default_rng(3)
    y = np.zeros((6, 1, 32, 32))
    y[:, :, 2:30, 2:30] = rs.random((6, 1, 28, 28)) > 0.7
    grey = np.full_like(y, 0.5)
    assert sharpness(grey, y) == pytest.approx(0, abs=1e-9)
    inside = np.pad(grey[:, :, 2:30, 2:30], ((0, 0), (0, 0), (2, 2), (2, 2)))   # grey crop, black padding band
    assert sharpness(inside, y) == pytest.approx(0, abs=1e-9)
    assert sharpness(grey[:, :, 2:30, 2:30], y) == pytest.approx(0, abs=1e-9)     # 28×28 outputs
    assert sharpness(uniform_filter(y, size=(1, 1, 3, 3)), y) < 0.5
    assert sharpness(y, y) == pytest.approx(1.0)
    step = np.zeros((1, 28, 28), np.float32)
    step[:, :, 14:] = 0.5                         # replicated border: the step is the only edge
    mag = paired.sobel_magnitude(step, border="replicate")[0]
    assert not mag[:, :13].any() and not mag[:, 15:].any() and np.allclose(mag[:, 13:15], 2.0)
    with pytest.raises(ValueError, match="border must be 'zero' or 'replicate'"):
        paired.sobel_magnitude(step, border="reflect")


def test_evaluate_translation_scores_crops_with_the_judge(fake_files):
    data = paired.load("edges2fashion")
    judge = build_judge(0)
    r = evaluate_translation(None, data, judge, outputs=data.test.reshape(-1, 1, 32, 32))   # perfect translations
    assert r["n_pairs"] == 12 and r["l1"] == 0 and r["psnr"]["mean"] == pytest.approx(100)
    assert r["sharpness"] == pytest.approx(1.0)
    _, logits = judge_outputs(judge, paired.crop(data.test.reshape(-1, 1, 32, 32)))
    expected = label_accuracy(logits, data.test_labels)
    assert r["accuracy"] == {"value": expected, "ground_truth": expected}
    wrong = evaluate_translation(None, data, judge, ["accuracy"], outputs=data.test_source.reshape(-1, 1, 32, 32))
    _, logits = judge_outputs(judge, paired.crop(data.test_source.reshape(-1, 1, 32, 32)))
    assert wrong["accuracy"]["value"] == label_accuracy(logits, data.test_labels)
    with pytest.raises(ValueError, match="needs the judge"):
        evaluate_translation(None, data, None, outputs=data.test)
    with pytest.raises(ValueError, match="unknown translation metric"):
        evaluate_translation(None, data, judge, ["fid"], outputs=data.test)
    with pytest.raises(ValueError, match="no source images"):
        evaluate_translation(None, base_data(), judge, ["l1"], outputs=data.test)
    bad = data.test.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="not all finite"):
        evaluate_translation(None, data, judge, ["l1"], outputs=bad)
