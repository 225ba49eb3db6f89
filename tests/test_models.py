"""Tests for scratchgan.models and scratchgan.presets: the paper's MNIST G and D
(docs/paper.md §0–§3), the declarative presets and how they resolve and build.

Every number checked here is from the authors' ``mnist.yaml`` as summarised
in docs/paper.md; a test fails when the architecture, the initialisation or
the schedule of the ``paper`` preset drifts from it.
"""

import dataclasses
import math

import numpy as np
import pytest

from scratchgan import presets
from scratchgan.gan import GAN, Simultaneous, WGAN
from scratchgan.models import MODELS, get_model
from scratchgan.models.paper_mlp import build, build_discriminator, build_generator, pixel_logit_bias
from scratchgan.nn import fast, losses
from scratchgan.nn.layers import Dropout, Linear, Maxout, ReLU, Sigmoid
from scratchgan.nn.optim import SGD, Adam, ExponentialDecay, LinearMomentum
from scratchgan.presets import PRESETS, Preset, build_gan, build_optimizer, resolve
from scratchgan.training.config import RunConfig

PAPER = PRESETS["paper"]
LOGIT_1E7 = math.log(1e-7) - math.log1p(-1e-7)  # ≈ −16.118: an always-black pixel


def g_args(preset):
    return {k: v for k, v in preset.model_args.items() if k.startswith("g_")}


def d_args(preset):
    return {k: v for k, v in preset.model_args.items() if k.startswith("d_")}


@pytest.fixture(scope="module")
def paper_G():
    return build_generator(784, noise_dim=PAPER.noise_dim, **g_args(PAPER), rng=np.random.default_rng(0))


@pytest.fixture(scope="module")
def paper_D():
    return build_discriminator(784, **d_args(PAPER), rng=np.random.default_rng(1))


# --------------------------------------------------------------------------
# architecture (docs/paper.md §1, §2, §3.3)
# --------------------------------------------------------------------------

def test_paper_generator_layers(paper_G):
    kinds = [type(layer) for layer in paper_G.layers]
    assert kinds == [fast.Linear, fast.ReLU, fast.Linear, fast.ReLU, fast.Linear, fast.Sigmoid]
    assert all(isinstance(l, ref) for l, ref in zip(paper_G.layers, [Linear, ReLU, Linear, ReLU, Linear, Sigmoid]))
    dims = [(l.n_in, l.n_out) for l in paper_G.layers if isinstance(l, Linear)]
    assert dims == [(100, 1200), (1200, 1200), (1200, 784)]
    assert paper_G.output_shape((100,)) == (784,)
    # no dropout anywhere in G (docs/paper.md §1)
    assert not any(isinstance(l, Dropout) for l in paper_G.layers)


def test_paper_discriminator_layers(paper_D):
    kinds = [type(layer) for layer in paper_D.layers]
    assert kinds == [fast.Dropout, fast.Maxout, fast.Dropout, fast.Maxout, fast.Dropout, fast.Linear]
    assert [l.p for l in paper_D.layers if isinstance(l, Dropout)] == [0.2, 0.5, 0.5]
    maxouts = [(l.n_in, l.n_units, l.n_pieces) for l in paper_D.layers if isinstance(l, Maxout)]
    assert maxouts == [(784, 240, 5), (240, 240, 5)]
    last = paper_D.layers[-1]
    assert (last.n_in, last.n_out) == (240, 1)
    assert paper_D.output_shape((784,)) == (1,)
    # the weight shapes pylearn2 used: (in_dim, num_units * num_pieces)
    assert paper_D.parameters()["1.W"].shape == (784, 1200)
    assert paper_D.parameters()["3.W"].shape == (240, 1200)


def test_reference_layers_on_request():
    """``fast_layers=False`` builds the same networks from the textbook layers."""
    nets = build((784,), noise_dim=4, rng=0, fast_layers=False, g_hidden=(8,), d_units=3, d_pieces=2,
                 d_layers=1, d_dropout=(0.2, 0.5))
    fast_nets = build((784,), noise_dim=4, rng=0, g_hidden=(8,), d_units=3, d_pieces=2, d_layers=1,
                      d_dropout=(0.2, 0.5))
    assert [type(l) for l in nets["G"].layers] == [Linear, ReLU, Linear, Sigmoid]
    assert [type(l) for l in nets["D"].layers] == [Dropout, Maxout, Dropout, Linear]
    for net in ("G", "D"):
        a, b = nets[net].parameters(), fast_nets[net].parameters()
        assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a)


def test_parameter_counts(paper_G, paper_D):
    g = (100 * 1200 + 1200) + (1200 * 1200 + 1200) + (1200 * 784 + 784)
    d = (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 * 1 + 1)
    assert g == 2_503_984 and d == 1_231_441
    assert paper_G.n_params == g
    assert paper_D.n_params == d


def test_float32_by_default(paper_G, paper_D):
    for v in list(paper_G.parameters().values()) + list(paper_D.parameters().values()):
        assert v.dtype == np.float32


def test_only_flat_samples():
    with pytest.raises(ValueError, match="flat samples"):
        build((1, 28, 28), noise_dim=4)


# --------------------------------------------------------------------------
# initialisation (docs/paper.md §1–2)
# --------------------------------------------------------------------------

def _check_uniform(W, irange):
    """W ~ U(−irange, irange): inside the range, filling it, variance irange²/3."""
    W = np.asarray(W, dtype=np.float64)
    assert np.abs(W).max() <= irange
    assert np.abs(W).max() > 0.98 * irange  # not a narrower range
    assert abs(W.mean()) < 0.05 * irange
    assert W.std() == pytest.approx(irange / math.sqrt(3), rel=0.05)


def test_generator_init(paper_G):
    p = paper_G.parameters()
    for key in ("0.W", "2.W", "4.W"):
        _check_uniform(p[key], 0.05)
    # hidden biases 0
    assert not np.any(p["0.b"]) and not np.any(p["2.b"])


def test_discriminator_init(paper_D):
    p = paper_D.parameters()
    for key in ("1.W", "3.W", "5.W"):
        _check_uniform(p[key], 0.005)
    for key in ("1.b", "3.b", "5.b"):
        assert not np.any(p[key]), key


def test_init_is_seeded():
    small = PRESETS["small"]

    def first_weight(rng):
        return build_generator(784, noise_dim=small.noise_dim, **g_args(small), rng=rng).parameters()["0.W"]

    a, b, c = first_weight(3), first_weight(3), first_weight(4)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


# --------------------------------------------------------------------------
# output bias = logit of the clipped per-pixel mean (docs/paper.md §1)
# --------------------------------------------------------------------------

def _marginal_data(rng, n=200):
    x = rng.random((n, 784)).astype(np.float32)
    x[:, 0] = 0.0            # always black
    x[:, 1] = 1.0            # always white
    x[:, 2] = 0.25           # constant grey
    x[: n // 2, 3] = 1.0     # half white, half black -> mean 0.5
    x[n // 2:, 3] = 0.0
    return x


def test_pixel_logit_bias_values():
    x = _marginal_data(np.random.default_rng(0))
    mean = x.astype(np.float64).mean(axis=0)
    b = pixel_logit_bias(mean)
    assert b.shape == (784,)
    assert b[0] == pytest.approx(LOGIT_1E7, abs=1e-6)
    assert b[0] == pytest.approx(-16.118, abs=1e-3)
    assert b[1] == pytest.approx(-LOGIT_1E7, abs=1e-6)
    assert b[2] == pytest.approx(math.log(0.25 / 0.75), abs=1e-9)
    assert b[3] == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(1 / (1 + np.exp(-b[4:])), mean[4:], rtol=1e-10)


def test_generator_output_bias_from_data():
    x = _marginal_data(np.random.default_rng(1))
    bias = pixel_logit_bias(x.mean(axis=0))
    G = build_generator(784, noise_dim=PAPER.noise_dim, **g_args(PAPER), output_bias=bias, rng=0)
    b = G.parameters()["4.b"]
    assert b.dtype == np.float32
    np.testing.assert_allclose(b, bias.astype(np.float32), rtol=0, atol=0)
    assert b[0] == pytest.approx(-16.118, abs=1e-3)


def test_build_gan_uses_the_pixel_marginals():
    # the trainer's path: G's output bias comes from the mean training image
    x = _marginal_data(np.random.default_rng(2))
    gan = build_gan(resolve("small"), x_shape=(784,), pixel_mean=x.mean(axis=0), steps_per_epoch=10)
    out_bias = gan.G.parameters()[f"{len(gan.G.layers) - 2}.b"]
    np.testing.assert_allclose(out_bias, pixel_logit_bias(x.mean(axis=0)).astype(np.float32), atol=1e-6)
    # hidden biases stay 0 and D biases are 0
    assert not np.any(gan.G.parameters()["0.b"])
    assert all(not np.any(v) for k, v in gan.D.parameters().items() if k.endswith(".b"))
    # without marginals the output bias is 0 (σ = 1/2 everywhere)
    plain = build_gan(resolve("small"), x_shape=(784,), steps_per_epoch=10)
    assert not np.any(plain.G.parameters()[f"{len(plain.G.layers) - 2}.b"])


def test_mismatched_dropout_list_rejected():
    with pytest.raises(ValueError, match="d_dropout"):
        build_discriminator(784, d_layers=2, d_dropout=(0.2, 0.5))


def test_model_registry():
    assert MODELS["paper_mlp"] is build and get_model("paper_mlp") is build
    with pytest.raises(ValueError, match="unknown model 'nope'.*paper_mlp"):
        get_model("nope")


# --------------------------------------------------------------------------
# the paper preset's schedule, loss and prior (docs/paper.md §3)
# --------------------------------------------------------------------------

PAPER_SGD = dict(name="sgd", lr=0.1, lr_decay=1.000004, min_lr=1e-6, momentum=0.5, final_momentum=0.7,
                 momentum_saturate=250)


def test_paper_preset_values():
    assert PAPER.model == "paper_mlp"
    assert PAPER.model_args == dict(g_hidden=(1200, 1200), g_irange=0.05, d_units=240, d_pieces=5,
                                    d_layers=2, d_irange=0.005, d_dropout=(0.2, 0.5, 0.5))
    assert (PAPER.noise_dim, PAPER.prior, PAPER.batch_size, PAPER.k) == (100, "uniform-sqrt3", 100, 1)
    assert (PAPER.variant, PAPER.loss, PAPER.d_scale) == ("simultaneous", "non-saturating", 0.5)
    assert PAPER.optimizers == {"D": PAPER_SGD, "G": PAPER_SGD}
    assert PAPER.dataset == "mnist" and PAPER.variant_args == {}
    # a run without overrides gets the preset unchanged
    assert RunConfig(preset="paper").resolved() == PAPER
    assert resolve("paper") == PAPER


@pytest.fixture(scope="module")
def paper_gan():
    x = np.random.default_rng(0).random((300, 784)).astype(np.float32)
    return build_gan(resolve("paper"), x_shape=(784,), pixel_mean=x.mean(axis=0), steps_per_epoch=500)


def test_paper_gan_schedule(paper_gan):
    for opt in (paper_gan.d_opt, paper_gan.g_opt):
        assert isinstance(opt, SGD)
        assert isinstance(opt.lr, ExponentialDecay)
        assert isinstance(opt.momentum, LinearMomentum)
        lr, mu = opt.lr, opt.momentum
        # lr = max(1e-6, 0.1 / 1.000004^t): first update uses 0.1
        assert lr(0) == pytest.approx(0.1, rel=1e-12)
        assert lr(1) == pytest.approx(0.1 / 1.000004, rel=1e-12)
        assert lr(500 * 100) == pytest.approx(0.1 / 1.000004 ** 50_000, rel=1e-9)
        assert lr(500 * 100) == pytest.approx(0.0819, abs=1e-4)  # docs/paper.md §3.4
        assert lr(10_000_000) == 1e-6  # the floor
        # momentum 0.5 during epoch 1, linear to 0.7 at epoch 250 (500 updates per epoch)
        assert mu(0) == pytest.approx(0.5) and mu(499) == pytest.approx(0.5)
        assert mu(500) == pytest.approx(0.5 + 0.2 / 249)
        assert mu(124 * 500) == pytest.approx(0.5 + 0.2 * 124 / 249)
        assert mu(249 * 500 - 1) < 0.7
        assert mu(249 * 500) == pytest.approx(0.7)
        assert mu(10_000 * 500) == pytest.approx(0.7)


def test_paper_gan_update_loss_and_prior(paper_gan):
    gan = paper_gan
    assert type(gan) is Simultaneous and gan.variant == "simultaneous" and gan.k == 1
    assert type(gan.loss) is losses.NonSaturating
    # the authors' D loss is 0.5·[BCE(real,1) + BCE(fake,0)]: at logits 0 that is log 2
    zeros = np.zeros((4, 1))
    (v_real, d_real), (v_fake, d_fake) = gan.loss.d_real(zeros), gan.loss.d_fake(zeros)
    assert float(v_real + v_fake) == pytest.approx(math.log(2))
    np.testing.assert_allclose(d_real, -0.5 * 0.5 / 4)
    np.testing.assert_allclose(d_fake, 0.5 * 0.5 / 4)
    # non-saturating G loss: −log σ(a), gradient −(1 − σ(a))/m (minimax would give −σ(a)/m)
    a = np.full((4, 1), 2.0)
    g_value, g_grad = gan.loss.g(a)
    s = 1 / (1 + math.exp(-2.0))
    assert float(g_value) == pytest.approx(-math.log(s))
    np.testing.assert_allclose(g_grad, -(1 - s) / 4)
    # noise: 100-d uniform on [−√3, √3] (zero mean, unit variance)
    assert gan.prior.dim == 100 and gan.prior.kind == "uniform-sqrt3"
    z = gan.prior.sample(2000, np.random.default_rng(0), np.float32)
    assert z.shape == (2000, 100)
    assert np.abs(z).max() <= math.sqrt(3) + 1e-6
    assert np.abs(z).max() > 0.99 * math.sqrt(3)
    assert z.var() == pytest.approx(1.0, abs=0.02)
    assert abs(z.mean()) < 0.02


def test_small_preset_differs_only_in_size():
    small = PRESETS["small"]
    size_args = {"g_hidden", "d_units", "d_pieces"}
    assert set(small.model_args) == set(PAPER.model_args)
    for key in set(PAPER.model_args) - size_args:
        assert small.model_args[key] == PAPER.model_args[key], key
    for f in dataclasses.fields(Preset):
        if f.name not in ("summary", "paper", "deviations", "model_args", "noise_dim"):
            assert getattr(small, f.name) == getattr(PAPER, f.name), f.name


def test_paper_deviations_listed():
    text = " ".join(PAPER.deviations).lower()
    for word in ("simultaneous", "log d(g(z))", "0.5", "sqrt3"):
        assert word in text
    for name, preset in PRESETS.items():
        assert preset.deviations and preset.summary and preset.paper, name


# --------------------------------------------------------------------------
# resolving a preset with a run's overrides
# --------------------------------------------------------------------------

def test_update_alternating_is_algorithm_1_without_the_half():
    """``--update alternating``: variant "gan" (Algorithm 1), d_scale 1 (the
    0.5 belongs to the authors' simultaneous update), the preset's loss kept."""
    p = resolve("paper", update="alternating")
    assert (p.variant, p.d_scale, p.loss, p.k) == ("gan", 1.0, "non-saturating", 1)
    gan = build_gan(p, x_shape=(784,), steps_per_epoch=10)
    assert type(gan) is GAN and gan.loss.d_scale == 1.0
    # Algorithm 1 as printed: alternating, minimax, k = 2
    p = resolve("paper", update="alternating", loss="minimax", k=2)
    assert (p.variant, p.d_scale, p.loss, p.k) == ("gan", 1.0, "minimax", 2)
    # the authors' update keeps its 0.5, with either cross-entropy G loss
    p = resolve("paper", update="simultaneous", loss="minimax")
    assert (p.variant, p.d_scale, p.loss) == ("simultaneous", 0.5, "minimax")
    # the later losses have no 0.5
    for loss in ("least-squares", "hinge", "wasserstein"):
        assert resolve("paper", loss=loss).d_scale == 1.0, loss


def test_other_overrides():
    p = resolve("paper", optimizer="adam", lr=1e-3, batch_size=64, prior="normal", dataset="fashion-mnist",
                loss="lsgan")
    assert p.optimizers == {"D": {"name": "adam", "lr": 1e-3}, "G": {"name": "adam", "lr": 1e-3}}
    assert (p.batch_size, p.prior, p.dataset, p.loss) == (64, "normal", "fashion-mnist", "least-squares")
    # None keeps the preset's value; the preset itself is never changed
    assert resolve("paper", lr=None, optimizer=None, k=None) == PAPER
    assert PRESETS["paper"].optimizers["D"]["lr"] == 0.1
    gan = build_gan(resolve("small", optimizer="adam"), x_shape=(784,), steps_per_epoch=10)
    assert isinstance(gan.d_opt, Adam) and gan.d_opt.beta1 == 0.5 and gan.d_opt.lr(0) == 2e-4


def test_one_networks_learning_rate_override():
    """lr_d / lr_g set one network's rate, over lr and over the preset's."""
    p = resolve("dcgan", lr_g=1e-3)
    assert (p.optimizers["D"]["lr"], p.optimizers["G"]["lr"]) == (2e-4, 1e-3)
    assert p.optimizers["G"]["betas"] == (0.5, 0.999)             # the rest of G's spec is the preset's
    p = resolve("paper", optimizer="adam", lr=5e-4, lr_d=1e-4)
    assert p.optimizers == {"D": {"name": "adam", "lr": 1e-4}, "G": {"name": "adam", "lr": 5e-4}}
    gan = build_gan(resolve("small", lr_d=0.3, lr_g=0.01), x_shape=(784,), steps_per_epoch=10)
    assert (gan.d_opt.lr(0), gan.g_opt.lr(0)) == pytest.approx((0.3, 0.01))


def test_simultaneous_needs_k_one():
    with pytest.raises(ValueError, match="k = 1"):
        resolve("paper", k=2)
    with pytest.raises(ValueError, match="k = 1"):
        resolve("paper", update="simultaneous", k=3)


# --------------------------------------------------------------------------
# unknown names are clear errors, before anything is built
# --------------------------------------------------------------------------

def test_unknown_model_argument():
    args = dict(PAPER.model_args, d_unitz=240)
    with pytest.raises(ValueError, match=r"model 'paper_mlp' has no argument\(s\) \['d_unitz'\]"):
        dataclasses.replace(PAPER, model_args=args)
    # the builder's own inputs are not preset arguments
    with pytest.raises(ValueError, match="noise_dim"):
        dataclasses.replace(PAPER, model_args=dict(PAPER.model_args, noise_dim=10))
    with pytest.raises(ValueError, match="unknown model 'mlp'"):
        dataclasses.replace(PAPER, model="mlp")


@pytest.mark.parametrize("spec, needle", [
    (dict(PAPER_SGD, momentun=0.5), "momentun"),
    (dict(name="adam", lr=1e-3, beta=(0.5, 0.9)), "beta"),
    (dict(name="adagrad", lr=1e-3), "adagrad"),
    (dict(name="rmsprop", lr=1e-3, momentum=0.9), "momentum"),
    (dict(name="sgd", lr=0.1, min_lr=1e-6),
     "'min_lr' needs 'lr_decay'"),
    (dict(name="sgd", lr=0.1, momentum_saturate=250), "'momentum_saturate' needs 'final_momentum'"),
    (dict(name="adam"), "needs an 'lr'"),
])
def test_unknown_optimiser_option(spec, needle):
    with pytest.raises(ValueError, match=needle):
        dataclasses.replace(PAPER, optimizers={"D": spec, "G": PAPER_SGD})
    with pytest.raises(ValueError, match=needle):
        build_optimizer(spec, build_discriminator(4, d_units=2, d_pieces=2, d_layers=1, d_dropout=(0, 0)),
                        steps_per_epoch=10)
    with pytest.raises(ValueError, match="'D' and 'G'"):
        dataclasses.replace(PAPER, optimizers={"D": PAPER_SGD})


def test_unknown_variant_loss_prior():
    with pytest.raises(ValueError, match="unknown GAN variant 'bogus'"):
        dataclasses.replace(PAPER, variant="bogus")
    with pytest.raises(ValueError, match="unknown loss 'bogus'"):
        dataclasses.replace(PAPER, loss="bogus")
    with pytest.raises(ValueError, match="unknown noise prior 'bogus'"):
        dataclasses.replace(PAPER, prior="bogus")


def test_unknown_variant_argument_dataset_and_k():
    with pytest.raises(ValueError, match=r"variant 'simultaneous' has no argument\(s\) \['clip'\]"):
        dataclasses.replace(PAPER, variant_args={"clip": 0.01})
    wgan = dataclasses.replace(PAPER, variant="wgan", variant_args={"clip": 0.02}, d_scale=1.0)
    assert wgan.variant_args == {"clip": 0.02}  # WGAN's own argument is fine
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'"):
        dataclasses.replace(PAPER, dataset="mnsit")
    with pytest.raises(ValueError, match="k must be 1"):
        dataclasses.replace(PAPER, k=3)


def test_paired_tasks_only_for_translating_variants():
    with pytest.raises(ValueError, match="'lowres2mnist' is a paired translation task"):
        dataclasses.replace(PAPER, dataset="lowres2mnist")
    with pytest.raises(ValueError, match="paired translation task"):
        resolve("dcgan", dataset="edges2fashion")


def test_unknown_override_key():
    with pytest.raises(ValueError, match=r"unknown override\(s\) \['lrr'\]"):
        resolve("paper", lrr=0.1)
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        resolve("huge")
    with pytest.raises(ValueError, match="unknown optimizer 'adagrad'"):
        resolve("paper", optimizer="adagrad")
    with pytest.raises(ValueError, match="update must be"):
        resolve("paper", update="sometimes")
    with pytest.raises(ValueError, match="unknown loss"):
        resolve("paper", loss="bogus")
    # a stored run configuration with a key this version does not know
    with pytest.raises(ValueError, match="bogus_key"):
        RunConfig.from_dict({"preset": "paper", "bogus_key": 1})


def test_update_applies_to_the_mlp_presets_only(monkeypatch):
    monkeypatch.setitem(PRESETS, "wgan-test", dataclasses.replace(PRESETS["small"], variant="wgan",
                                                                  loss="wasserstein", d_scale=1.0))
    with pytest.raises(ValueError, match="--update"):
        resolve("wgan-test", update="alternating")
    gan = build_gan(resolve("wgan-test"), x_shape=(784,), steps_per_epoch=10)
    assert type(gan) is WGAN and gan.clip == 0.01


def test_describe_lists_settings_and_deviations():
    for name, preset in PRESETS.items():
        text = presets.describe(name)
        assert text.startswith(f"{name}: {preset.summary}")
        assert f"  variant = {preset.variant}" in text and f"  d_scale = {preset.d_scale}" in text
        for line in preset.deviations:
            assert f"    - {line}" in text


def test_linear_decay_is_refused_beside_the_wgan_authors_critic_schedule():
    """--lr-decay-epochs counts k critic updates an iteration; the WGAN authors'
    critic schedule (100 steps early on) breaks that count, so the pair is
    refused by name. The wgan preset's own schedule (k always) decays."""
    from scratchgan.presets import build_gan

    authors = dataclasses.replace(PRESETS["wgan"], variant_args=dict(PRESETS["wgan"].variant_args,
                                                                      schedule="authors"))
    with pytest.raises(ValueError, match="lr-decay-epochs.*WGAN authors' critic schedule"):
        build_gan(authors, x_shape=(1, 28, 28), linear_decay=(0, 1))
    for name in ("wgan", "wgan-gp"):
        gan = build_gan(PRESETS[name], x_shape=(1, 28, 28), linear_decay=(0, 2), steps_per_epoch=3)
        lr = PRESETS[name].optimizers["G"]["lr"]   # halfway: D after 3·5 of its 30 updates, G after 3 of 6
        assert gan.d_opt.lr(3 * 5) == pytest.approx(lr / 2) and gan.g_opt.lr(3) == pytest.approx(lr / 2)
