"""pix2pix (issue 16): the U-Net and the PatchGAN as the paper builds them, checked as
wholes against finite differences; the skip connection's split-and-add; the variant's
steps against finite differences, its halved D loss and its λ·L1 term."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import BACKENDS, assert_grads_ok, device_for, step_gradient_errors, to_xp
from scratchgan import nn
from scratchgan.backend import default_rng
from scratchgan.gan import Batch, Pix2Pix
from scratchgan.models import pix2pix as pix2pix_model
from scratchgan.models.patchgan import build_discriminator, output_side, receptive_field
from scratchgan.models.unet import NoiseDropout, UNet, build_generator, widths
from scratchgan.nn import losses
from scratchgan.nn.gradcheck import check_module, directional_check
from scratchgan.presets import PRESETS, build_gan, resolve

F64 = np.float64
SIDE = 8


def levels(G):
    """The U-Net's levels, outermost first (each a Sequential: down, the level below, up)."""
    out, cur = [], G
    while cur is not None:
        out.append(cur)
        below = [l for l in cur.layers if isinstance(l, nn.Sequential)]
        if not below:
            break
        inner = below[0]
        fork = inner.layers[0]
        cur = fork.layers[1] if isinstance(fork, nn.Fork) else inner   # skip_concat, or no skip
    return out


def kinds(seq):
    return [type(l).__name__ for l in seq.layers]


def tiny_unet(fast_layers=False, skips=True, dtype=F64, test_dropout=True, dropout_blocks=2):
    return build_generator(side=SIDE, ngf=2, max_mult=2, dropout_blocks=dropout_blocks, skips=skips,
                           test_dropout=test_dropout, std=0.5, rng=0, dtype=dtype, fast_layers=fast_layers)


def tiny_patchgan(fast_layers=False, n_layers=1, dtype=F64):
    return build_discriminator(in_channels=2, ndf=2, n_layers=n_layers, std=0.5, rng=1, dtype=dtype,
                               fast_layers=fast_layers)


# -- architecture ---------------------------------------------------------------------------
def test_unet_follows_the_authors_blocks():
    nets = pix2pix_model.build((1, 32, 32), rng=0, fast_layers=False)
    G = nets["G"]
    assert isinstance(G, UNet) and G.input_shape == (1, 32, 32) and G.output_shape((1, 32, 32)) == (1, 32, 32)
    assert widths(32) == [32, 64, 128, 256, 256] and widths(256, 64) == [64, 128, 256, 512, 512, 512, 512, 512]
    lv = levels(G)
    assert len(lv) == 5
    # level 1: Conv (no activation, no BN) … ReLU, ConvT, Tanh; levels 2-4: LReLU, Conv, BN … ReLU, ConvT, BN
    assert kinds(lv[0]) == ["Conv2d", "Sequential", "ReLU", "ConvTranspose2d", "Tanh"]
    assert kinds(lv[1])[:3] == ["LeakyReLU", "Conv2d", "BatchNorm2d"] and kinds(lv[1])[-3:] == [
        "ReLU", "ConvTranspose2d", "BatchNorm2d"]
    for i in (2, 3):  # the first decoder blocks end in dropout that stays on at test
        assert kinds(lv[i])[:3] == ["LeakyReLU", "Conv2d", "BatchNorm2d"]
        assert kinds(lv[i])[-4:] == ["ReLU", "ConvTranspose2d", "BatchNorm2d", "NoiseDropout"]
    assert kinds(lv[4]) == ["LeakyReLU", "Conv2d", "ReLU", "ConvTranspose2d", "BatchNorm2d", "NoiseDropout"]
    assert lv[4].layers[1].out_channels == 256 and lv[4].layers[3].in_channels == 256
    # every decoder input below the top is the skip concatenation: twice the level's width
    for i, w in enumerate(widths(32)):
        up = [l for l in lv[i].layers if isinstance(l, nn.ConvTranspose2d)][0]
        assert up.in_channels == (w if i == 4 else 2 * w)
    convs = [m for m in G.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert all("b" not in c.params and c.kernel_size == (4, 4) and c.stride == (2, 2) for c in convs)
    w = np.concatenate([c.params["W"].ravel() for c in convs])
    assert abs(w.std() - 0.02) < 0.001 and abs(w.mean()) < 0.001
    g = np.concatenate([m.params["gamma"] for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(g.mean() - 1) < 0.01 and 0.01 < g.std() < 0.03           # N(1, 0.02) scales
    assert [m.dropout.p for m in G.modules() if isinstance(m, NoiseDropout)] == [0.5] * 3
    assert all(isinstance(l, nn.LeakyReLU) and l.slope == 0.2 for l in G.modules() if type(l).__name__ == "LeakyReLU")


def test_encoder_decoder_is_the_unet_without_skips():
    G = build_generator(side=32, skips=False, rng=0, fast_layers=False)
    assert not any(isinstance(m, (nn.Fork, nn.Concat)) for m in G.modules())
    lv = levels(G)
    assert len(lv) == 5
    for i, w in enumerate(widths(32)):
        up = [l for l in lv[i].layers if isinstance(l, nn.ConvTranspose2d)][0]
        assert up.in_channels == w
    assert G.output_shape((1, 32, 32)) == (1, 32, 32)
    with pytest.raises(ValueError, match="power of 2"):
        build_generator(side=28)
    with pytest.raises(ValueError, match="dropout_blocks"):
        build_generator(side=32, dropout_blocks=5)


def test_patchgan_patch_sizes_and_map():
    """The authors' defineD_n_layers: receptive fields 1, 16, 34, 70; at 32×32 the
    preset's n_layers = 1 gives a 14×14 map of 16×16 patches."""
    assert [receptive_field(n) for n in range(4)] == [1, 16, 34, 70]
    assert [output_side(256, n) for n in range(4)] == [256, 126, 62, 30]
    assert [output_side(32, n) for n in range(3)] == [32, 14, 6]
    D = pix2pix_model.build((1, 32, 32), rng=0, fast_layers=False)["D"]
    assert kinds(D) == ["Concat", "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Conv2d"]
    assert D.layers[1].in_channels == 2 and D.layers[1].stride == (2, 2) and D.layers[3].stride == (1, 1)
    x = np.zeros((3, 1, 32, 32), np.float32)
    assert D.forward((x, x)).shape == (3, 1, 14, 14)
    D3 = build_discriminator(n_layers=3, ndf=4, rng=0, fast_layers=False)
    assert [c.out_channels for c in D3.modules() if isinstance(c, nn.Conv2d)] == [4, 8, 16, 32, 1]
    assert D3.forward((np.zeros((2, 1, 64, 64), np.float32),) * 2).shape == (2, 1, 6, 6)
    D0 = build_discriminator(n_layers=0, ndf=4, rng=0, fast_layers=False)
    assert D0.forward((x, x)).shape == (3, 1, 32, 32)   # the PixelGAN: one logit per pixel


def test_receptive_field_is_what_an_output_sees():
    """Perturb one input pixel: only the outputs whose patch holds it change, and
    the patch of the centre output spans receptive_field(1) = 16 pixels."""
    D = build_discriminator(ndf=2, n_layers=1, rng=0, fast_layers=False, dtype=F64)
    rs = np.random.default_rng(0)
    x, y = rs.random((2, 1, 32, 32)), rs.random((2, 1, 32, 32))
    base = D.forward((x, y), train=False)
    touched = np.zeros(32, bool)
    for r in range(32):
        y2 = y.copy()
        y2[:, :, r, :] += 1.0
        touched[r] = np.abs(D.forward((x, y2), train=False) - base)[0, 0, 7].max() > 0   # output row 7
    assert touched.sum() == receptive_field(1)


# -- gradient checks of the networks as wholes ---------------------------------------------
@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("skips", [True, False], ids=["unet", "encdec"])
def test_unet_gradient_check_as_a_whole(fast_layers, skips):
    """Every parameter and the input, training mode (batch statistics, dropout masks held fixed)."""
    G = tiny_unet(fast_layers, skips)
    x = np.random.default_rng(0).standard_normal((3, 1, SIDE, SIDE))
    assert_grads_ok(check_module(G, x, train=True))


def test_unet_gradient_check_in_evaluation_mode():
    """Evaluation mode: running statistics, and the noise dropout still on."""
    G = tiny_unet().set_rng(default_rng(0, "cpu"))
    x = np.random.default_rng(1).standard_normal((2, 1, SIDE, SIDE))
    G.forward(np.random.default_rng(2).standard_normal((4, 1, SIDE, SIDE)))  # move the running statistics
    assert_grads_ok(check_module(G, x, train=False))


@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("n_layers,side", [(1, 8), (2, 16)])
def test_patchgan_gradient_check_as_a_whole(fast_layers, n_layers, side):
    """Both inputs of the pair and every parameter, through the concatenation."""
    D = tiny_patchgan(fast_layers, n_layers)
    rs = np.random.default_rng(3)
    errors = check_module(D, (rs.standard_normal((3, 1, side, side)), rs.standard_normal((3, 1, side, side))))
    assert set(errors) >= {"x0", "x1"}
    assert_grads_ok(errors)


def test_skip_connection_splits_and_adds():
    """One level's skip: concat[h, inner(h)]. Forward: the first channels are h
    itself. Backward: dh = dy[:, :C] (the skip's slice) + inner's input
    gradient of dy[:, C:] (the deeper path), the two added."""
    G = tiny_unet()
    skip = G.layers[1]
    inner = skip.layers[0].layers[1]
    rs = np.random.default_rng(4)
    h = rs.standard_normal((3, 2, 4, 4))

    def run(module, x):
        module.set_rng(default_rng(9, "cpu"))
        return module.forward(x)

    y = run(skip, h)
    assert y.shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(y[:, :2], h)
    deep = run(inner, h)
    np.testing.assert_array_equal(y[:, 2:], deep)
    dy = rs.standard_normal(y.shape)
    inner.zero_grad()
    d_inner = inner.backward(dy[:, 2:])
    inner_grads = {k: g.copy() for k, g in inner.gradients().items()}
    run(skip, h)
    skip.zero_grad()
    dh = skip.backward(dy)
    np.testing.assert_allclose(dh, dy[:, :2] + d_inner, rtol=1e-12, atol=1e-12)
    for k, g in skip.gradients().items():
        np.testing.assert_allclose(g, inner_grads[k.split(".", 2)[-1]], rtol=1e-12, atol=1e-12)
    assert np.abs(d_inner).max() > 1e-3   # both paths carry gradient


def test_noise_dropout_stays_on_in_evaluation_mode():
    x = np.random.default_rng(5).standard_normal((4, 1, SIDE, SIDE))
    G = tiny_unet().set_rng(default_rng(0, "cpu"))
    G.forward(x)
    outs = []
    for seed in (1, 2, 1):
        G.set_rng(default_rng(seed, "cpu"))
        outs.append(G.forward(x, train=False))
    assert np.abs(outs[0] - outs[1]).max() > 1e-3        # a different seed, different noise
    np.testing.assert_array_equal(outs[0], outs[2])      # the same seed, the same noise
    plain = tiny_unet(test_dropout=False).set_rng(default_rng(0, "cpu"))
    plain.forward(x)
    plain.set_rng(default_rng(1, "cpu"))
    a = plain.forward(x, train=False)
    plain.set_rng(default_rng(2, "cpu"))
    np.testing.assert_array_equal(a, plain.forward(x, train=False))


# -- the variant ---------------------------------------------------------------------------
def frozen(xp=np, fast_layers=False, d_scale=0.5, **kw):
    """pix2pix with lr = 0 optimisers (the parameters never move), float64."""
    G, D = tiny_unet(fast_layers), tiny_patchgan(fast_layers)
    return Pix2Pix(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), None,
                   loss=losses.get("non-saturating", d_scale=d_scale), device=device_for(xp), **kw)


def pairs(xp=np, m=4, seed=0):
    rs = np.random.default_rng(seed)
    return Batch(to_xp(xp, rs.random((m, 1, SIDE, SIDE))), source=to_xp(xp, rs.random((m, 1, SIDE, SIDE))))


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
def test_pix2pix_steps_match_finite_differences(xp, fast_layers):
    """D's step (real and translated pairs, halved) and G's step (cGAN + λ·L1
    through D), every parameter, against differences of the step's own loss."""
    gan = frozen(xp, fast_layers)
    batch = pairs(xp)
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.d_step(batch), "d_loss", gan.D))
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.g_step(batch), "g_loss", gan.G))


@pytest.mark.parametrize("kw", [dict(adversarial=False), dict(lambda_l1=0.0), dict(lambda_l1=3.0)],
                         ids=["L1-alone", "cGAN-alone", "lambda-3"])
def test_ablation_steps_match_finite_differences(kw):
    """G's step of each ablation along a random direction of all G's parameters
    (two evaluations: cheap, and a wrong term or weight still shows)."""
    gan = frozen(**kw)
    batch = pairs(seed=1)

    def loss_and_grads():
        gan.seed(5)
        value = float(gan.g_step(batch)["g_loss"])
        return value, {k: g.copy() for k, g in gan.G.gradients().items()}
    assert_grads_ok(directional_check(loss_and_grads, gan.G.parameters()))


def test_d_loss_is_halved():
    """d_loss = ½·[mean softplus(−D(x, y)) + mean softplus(D(x, G(x)))] over every
    patch, and its gradient is half that of the unhalved loss."""
    gan, full = frozen(), frozen(d_scale=1.0)
    batch = pairs()
    gan.seed(3)
    stats = gan.d_step(batch)
    half_grads = {k: g.copy() for k, g in gan.D.gradients().items()}
    gan.seed(3)
    x, y = gan.pair(gan.real_batch(batch))
    fake = gan.G.forward(x)
    a_real, a_fake = gan.D.forward((x, y)), gan.D.forward((x, fake))
    assert a_real.shape == (4, 1, 2, 2)
    by_hand = 0.5 * (losses.softplus(-a_real).mean() + losses.softplus(a_fake).mean())
    assert float(stats["d_loss"]) == pytest.approx(float(by_hand), rel=1e-12)
    full.seed(3)
    full.d_step(batch)
    for k, g in full.D.gradients().items():
        np.testing.assert_allclose(half_grads[k], 0.5 * g, rtol=1e-10, atol=1e-14)
    assert PRESETS["pix2pix"].d_scale == 0.5


def test_g_loss_is_gan_term_plus_lambda_l1():
    gan = frozen(lambda_l1=100.0)
    batch = pairs()
    gan.seed(4)
    stats = gan.g_step(batch)
    gan.seed(4)
    x, y = 2 * batch.source - 1, 2 * batch.x - 1          # the networks' [−1, 1]
    fake = gan.G.forward(x)
    l1 = np.abs(fake - y).mean()
    gan_term = losses.softplus(-gan.D.forward((x, fake))).mean()     # BCE(D(x, G(x)), 1) on every patch
    assert float(stats["l1"]) == pytest.approx(l1, rel=1e-12)
    assert float(stats["g_gan"]) == pytest.approx(float(gan_term), rel=1e-12)
    assert float(stats["g_loss"]) == pytest.approx(float(gan_term) + 100 * l1, rel=1e-12)
    alone = frozen(adversarial=False)
    alone.seed(4)
    s = alone.g_step(batch)
    assert set(s) == {"g_loss", "l1"} and float(s["g_loss"]) == pytest.approx(100 * l1, rel=1e-12)
    assert all(not np.any(g) for g in alone.D.gradients().values())   # D is not touched


def test_iteration_runs_g_once_and_d_then_g():
    """One G forward per iteration (one set of dropout masks for both steps);
    without the adversarial term D's parameters never move."""
    gan = build_gan(PRESETS["pix2pix-l1"], x_shape=(1, SIDE * 4, SIDE * 4), device="cpu")
    calls = []
    forward = gan.G.forward
    gan.G.forward = lambda x, train=True: calls.append(train) or forward(x, train=train)
    rs = np.random.default_rng(0)
    batch = Batch(rs.random((4, 1, 32, 32), dtype=np.float32), source=rs.random((4, 1, 32, 32), dtype=np.float32))
    d_before = {k: v.copy() for k, v in gan.D.parameters().items()}
    g_before = {k: v.copy() for k, v in gan.G.parameters().items()}
    stats = gan.iteration(lambda: batch)
    assert calls == [True] and set(stats) == {"g_loss", "l1"} and gan.iterations == 1
    assert all(np.array_equal(v, gan.D.parameters()[k]) for k, v in d_before.items())
    assert any(not np.array_equal(v, gan.G.parameters()[k]) for k, v in g_before.items())
    full = build_gan(PRESETS["pix2pix"], x_shape=(1, 32, 32), device="cpu")
    assert set(full.iteration(lambda: batch)) == {"d_loss", "D_x", "D_G_z", "g_loss", "l1", "g_gan"}


def test_translations_are_on_zero_one_and_seeded():
    gan = frozen()
    src = np.random.default_rng(6).random((5, 1, SIDE, SIDE))
    gan.seed(1)
    out = gan.generate_from({"source": src})
    gan.seed(1)
    by_hand = (gan.G.forward(2 * src - 1, train=False) + 1) / 2
    np.testing.assert_allclose(out, by_hand, rtol=1e-12)
    assert out.shape == (5, 1, SIDE, SIDE) and out.min() >= 0 and out.max() <= 1
    gan.seed(1)
    in_twos = gan.generate(5, source=src, batch_size=2)
    gan.seed(1)
    np.testing.assert_array_equal(in_twos, gan.generate(5, source=src, batch_size=2))  # the seed picks the noise
    gan.seed(2)
    assert np.abs(in_twos - gan.generate(5, source=src, batch_size=2)).max() > 1e-3


def test_pix2pix_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="no loss to train"):
        frozen(adversarial=False, lambda_l1=0.0)
    with pytest.raises(ValueError, match="lambda_l1"):
        frozen(lambda_l1=-1)
    with pytest.raises(ValueError, match="k must be 1"):
        frozen(k=2)
    G, D = tiny_unet(), tiny_patchgan()
    with pytest.raises(ValueError, match="no noise vector"):
        Pix2Pix(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), 10)
    gan = frozen()
    with pytest.raises(ValueError, match="no source images"):
        gan.d_step(Batch(np.zeros((2, 1, SIDE, SIDE))))
    with pytest.raises(ValueError, match="sources of shape"):
        gan.g_step(Batch(np.zeros((2, 1, SIDE, SIDE)), source=np.zeros((3, 1, SIDE, SIDE))))
    with pytest.raises(ValueError, match="translates source images: pass source"):
        gan.generate(3)
    with pytest.raises(ValueError, match="takes no labels"):
        gan.sample_inputs(2, None, source=np.zeros((2, 1, SIDE, SIDE)), labels=np.zeros(2))
    with pytest.raises(ValueError, match="no noise vector"):
        gan.sample_noise(3)
    with pytest.raises(ValueError, match="paired images"):
        resolve("pix2pix", dataset="mnist")
    with pytest.raises(ValueError, match="noise_dim must be 0"):
        pix2pix_model.build((1, 32, 32), noise_dim=10)


def test_presets_are_the_paper_settings():
    p = PRESETS["pix2pix"]
    assert (p.model, p.variant, p.loss, p.d_scale, p.noise_dim, p.dataset) == (
        "pix2pix", "pix2pix", "non-saturating", 0.5, 0, "edges2fashion")
    for net in ("D", "G"):
        assert p.optimizers[net] == {"name": "adam", "lr": 2e-4, "betas": (0.5, 0.999)}
    assert p.variant_args == {"lambda_l1": 100.0, "adversarial": True} and p.batch_size == 16
    assert PRESETS["pix2pix-l1"].variant_args["adversarial"] is False
    assert PRESETS["pix2pix-cgan"].variant_args["lambda_l1"] == 0.0
    assert PRESETS["pix2pix-encdec"].model_args["skips"] is False
    assert resolve("pix2pix", dataset="lowres2mnist").dataset == "lowres2mnist"
