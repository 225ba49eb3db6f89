"""DCGAN (issue 12): the paper's architecture, gradients through the GAN steps, separate BN passes, end to end."""

from __future__ import annotations

import numpy as np
import pytest

import scratchgan.data
from helpers import BACKENDS, assert_grads_ok, device_for, step_gradient_errors, to_host, to_xp
from scratchgan import nn
from scratchgan.cli import main
from scratchgan.data import Dataset
from scratchgan.gan import GAN, NoisePrior
from scratchgan.models import dcgan, sample_shape
from scratchgan.nn import losses
from scratchgan.presets import PRESETS
from scratchgan.training.checkpoint import read_checkpoint

F64 = np.float64
SIDE, NOISE = 8, 3


def tiny_pair(fast_layers, dtype=F64, fc_units=None):
    G = dcgan.build_generator(noise_dim=NOISE, g_channels=(4, 3), side=SIDE, std=0.5, rng=0, dtype=dtype,
                              fast_layers=fast_layers, fc_units=fc_units)
    D = dcgan.build_discriminator(d_channels=(3, 4), side=SIDE, std=0.5, rng=1, dtype=dtype, fast_layers=fast_layers,
                                  fc_units=fc_units)
    return G, D


def test_architecture_follows_the_guidelines():
    nets = dcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False)
    G, D = nets["G"], nets["D"]
    kinds = [type(l).__name__ for l in G.layers]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Reshape", "ConvTranspose2d", "BatchNorm2d", "ReLU",
                     "ConvTranspose2d", "Sigmoid"]  # no BN on G's output layer
    assert [type(l).__name__ for l in D.layers] == ["Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU",
                                                    "Flatten", "Linear"]  # no BN on D's input layer
    assert G.output_shape((100,)) == (1, 28, 28) and D.output_shape((1, 28, 28)) == (1,)
    assert all(isinstance(l, (nn.ConvTranspose2d, nn.Conv2d)) and l.stride == (2, 2)
               for l in G.layers + D.layers if isinstance(l, (nn.Conv2d, nn.ConvTranspose2d)))
    assert D.layers[1].slope == 0.2
    w = np.concatenate([p.ravel() for k, p in {**G.parameters(), **D.parameters()}.items() if k.endswith("W")])
    assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001  # N(0, 0.02)
    assert sample_shape("dcgan") == (1, 28, 28) and sample_shape("paper_mlp") == (784,)
    p = PRESETS["dcgan"]
    assert (p.batch_size, p.optimizers["D"]["lr"], p.optimizers["D"]["betas"][0]) == (128, 2e-4, 0.5)
    with pytest.raises(ValueError, match="square images"):
        dcgan.build((784,), noise_dim=100)


def test_dcgan_fc_preset_is_the_authors_mnist_layer_plan():
    """``dcgan-fc``: the dcgan networks with one 1024-unit Linear → BN layer
    after G's input and before D's logit; ``dcgan`` itself unchanged."""
    nets = dcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False, **PRESETS["dcgan-fc"].model_args)
    G, D = nets["G"], nets["D"]
    plan = lambda net: [(type(l).__name__, getattr(l, "n_out", None)) for l in net.layers]
    assert plan(G)[:7] == [("Linear", 1024), ("BatchNorm1d", None), ("ReLU", None), ("Linear", 128 * 49),
                           ("BatchNorm1d", None), ("ReLU", None), ("Reshape", None)]
    assert plan(D)[-5:] == [("Flatten", None), ("Linear", 1024), ("BatchNorm1d", None), ("LeakyReLU", None),
                            ("Linear", 1)]
    assert G.output_shape((100,)) == (1, 28, 28) and D.output_shape((1, 28, 28)) == (1,)
    assert PRESETS["dcgan"].model_args.get("fc_units") is None and PRESETS["dcgan-fc"].model == "dcgan"
    for k in ("batch_size", "optimizers", "prior", "noise_dim", "loss", "variant"):
        assert getattr(PRESETS["dcgan-fc"], k) == getattr(PRESETS["dcgan"], k)
    assert D.layers[-2].slope == 0.2
    count = lambda net: sum(p.size for p in net.parameters().values())
    assert (count(G), count(D)) == (6_679_105, 6_559_169)   # as PyTorch counts the same layers
    plain = dcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False)
    assert (count(plain["G"]), count(plain["D"])) == (778_305, 138_817)   # dcgan itself unchanged


def frozen(xp, fast_layers, fc_units=None):
    G, D = tiny_pair(fast_layers, fc_units=fc_units)
    return GAN(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(NOISE, "uniform"), loss="non-saturating",
               device=device_for(xp))


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("fc_units", [None, 5], ids=["dcgan", "dcgan-fc"])
def test_dcgan_steps_match_finite_differences(xp, fast_layers, fc_units):
    """The whole D and G steps, batch statistics in training mode, against
    finite differences of the step's own loss, every parameter."""
    gan = frozen(xp, fast_layers, fc_units)
    assert any(getattr(l, "n_out", None) == 5 for l in gan.G.layers + gan.D.layers) == (fc_units == 5)
    x = to_xp(xp, np.random.default_rng(0).random((6, 1, SIDE, SIDE)))
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.d_step(x), "d_loss", gan.D))
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.g_step(6), "g_loss", gan.G))


@pytest.mark.parametrize("xp", BACKENDS)
def test_real_and_fake_are_separate_batch_norm_passes(xp):
    """D's step equals the two terms computed one at a time by hand — each
    pass with its own batch statistics — and differs from one pass over the
    concatenation (whose statistics mix real and fake)."""
    gan = frozen(xp, fast_layers=False)
    x = to_xp(xp, np.random.default_rng(1).random((6, 1, SIDE, SIDE)))
    gan.seed(3)
    gan.d_step(x)
    step_grads = {k: to_host(g).copy() for k, g in gan.D.gradients().items()}
    gan.seed(3)
    fake = gan.G.forward(gan.sample_noise(6))   # the same z as the step drew
    loss = losses.get("non-saturating")

    def term(batch, which):
        gan.D.zero_grad()
        _, da = getattr(loss, which)(gan.D.forward(batch))
        gan.D.backward(da)
        return {k: to_host(g).copy() for k, g in gan.D.gradients().items()}

    real_t, fake_t = term(x, "d_real"), term(fake, "d_fake")
    for k in step_grads:
        np.testing.assert_allclose(step_grads[k], real_t[k] + fake_t[k], rtol=1e-10, atol=1e-12)
    gan.D.zero_grad()
    both = gan.D.forward(xp.concatenate([x, fake]))
    _, dr = loss.d_real(both[:6])
    _, df = loss.d_fake(both[6:])
    gan.D.backward(xp.concatenate([dr, df]))
    mixed = {k: to_host(g) for k, g in gan.D.gradients().items()}
    assert max(np.abs(mixed[k] - step_grads[k]).max() for k in mixed) > 1e-4


def tiny_data(n=300):
    rng = np.random.default_rng(0)
    imgs = rng.random((n + 120, 784), dtype=np.float32)
    z = np.zeros
    return Dataset(name="mnist", split="paper", train=imgs[:n], train_labels=z(n, np.uint8),
                   valid=imgs[n:n + 60], valid_labels=z(60, np.uint8), test=imgs[n + 60:],
                   test_labels=z(60, np.uint8))


def test_dcgan_preset_resume_and_sample_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    args = ["train", "--preset", "dcgan", "--device", "cpu", "--quiet", "--out", str(out), "--snapshot-every", "1"]
    assert main(args + ["--epochs", "1"]) == 0  # 300 images, batch 128: 2 iterations an epoch
    state = read_checkpoint(out / "checkpoint.npz")
    assert tuple(state["x_shape"]) == (1, 28, 28) and str(state["variant"]) == "gan"
    assert main(["train", "--out", str(out), "--epochs", "2", "--resume", "--device", "cpu", "--quiet"]) == 0
    assert int(read_checkpoint(out / "checkpoint.npz")["iterations"]) == 4
    assert (out / "samples" / "epoch_0002.png").is_file()
    npz = tmp_path / "s.npz"
    assert main(["sample", str(out / "G_epoch_0002.npz"), "-n", "7", "--npz", str(npz), "--png",
                 str(tmp_path / "g.png"), "--device", "cpu"]) == 0
    with np.load(npz) as f:
        s = f["samples"]
    assert s.shape == (7, 1, 28, 28) and s.min() >= 0 and s.max() <= 1
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "50", "--metrics", "parzen", "--n-valid", "20",
                 "--n-test", "20", "--device", "cpu", "--quiet"]) == 0
    assert "Parzen log-likelihood" in capsys.readouterr().out
