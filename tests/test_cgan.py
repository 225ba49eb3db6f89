"""Conditional GANs (issue 13): the paper's MLP and the conditional DCGAN.

Architecture and presets; both networks' gradients through the public GAN
steps against finite differences (float64, every parameter, repeated labels in
the batch); the label branches' backward with repeated labels; sampling by
label and the per-class grid; every kind of bad label; the presets end to end
through the command line (train, resume, sample --label/--per-class, evaluate
with label accuracy) on tiny fake data with labels.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

import scratchgan.data
import scratchgan.models.judge as judge_mod
from helpers import BACKENDS, assert_grads_ok, device_for, step_gradient_errors, to_host, to_xp
from scratchgan import nn
from scratchgan.cli import main
from scratchgan.data import Dataset
from scratchgan.gan import GAN, Batch, ConditionalGAN, NoisePrior, get_variant
from scratchgan.gan.cgan import check_labels, label_classes
from scratchgan.models import cdcgan, cgan_mlp, dcgan, paper_mlp, sample_shape
from scratchgan.models.conditioning import LabelConcat, LabelSequential, OneHot
from scratchgan.models.judge import build_judge, save_judge_weights
from scratchgan.nn.gradcheck import numerical_gradient
from scratchgan.presets import PRESETS, build_gan
from scratchgan.training.checkpoint import read_checkpoint
from scratchgan.training.trainer import gan_from_checkpoint

F64 = np.float64
NOISE, CLASSES, SIDE = 3, 4, 8
LABELS = np.array([1, 1, 3, 1, 0, 3])   # repeated classes in one batch, one class (2) absent


# ---------------------------------------------------------------------------
# Architecture and presets
# ---------------------------------------------------------------------------
def test_paper_mlp_follows_the_paper():
    nets = cgan_mlp.build((784,), noise_dim=100, rng=0, fast_layers=False)
    G, D = nets["G"], nets["D"]
    z_branch, y_branch = G.layers[0].layers
    assert [type(l).__name__ for l in z_branch.layers] == ["Linear", "ReLU", "Dropout"]
    assert (z_branch[0].n_in, z_branch[0].n_out) == (100, 200)
    assert [type(l).__name__ for l in y_branch.layers] == ["Embedding", "ReLU", "Dropout"]
    assert (y_branch[0].num_classes, y_branch[0].dim) == (10, 1000)
    assert [type(l).__name__ for l in G.layers[1:]] == ["Concat", "Linear", "ReLU", "Dropout", "Linear", "Sigmoid"]
    assert (G[2].n_in, G[2].n_out, G[5].n_out) == (1200, 1200, 784)
    x_branch, d_y = D.layers[0].layers
    assert [type(l).__name__ for l in x_branch.layers] == ["Maxout", "Dropout"]
    assert (x_branch[0].n_in, x_branch[0].n_units, x_branch[0].n_pieces) == (784, 240, 5)
    assert [type(l).__name__ for l in d_y.layers] == ["OneHot", "Maxout", "Dropout"]
    assert (d_y[1].n_in, d_y[1].n_units, d_y[1].n_pieces) == (10, 50, 5)
    assert [type(l).__name__ for l in D.layers[1:]] == ["Concat", "Maxout", "Dropout", "Linear"]
    assert (D[2].n_in, D[2].n_units, D[2].n_pieces, D[4].n_out) == (290, 240, 4, 1)
    # dropout 0.5 on every hidden layer's output, on no input
    drops = [m.p for net in (G, D) for m in net.modules() if isinstance(m, nn.Dropout)]
    assert drops == [0.5] * 6
    assert not isinstance(z_branch[0], nn.Dropout) and not isinstance(x_branch[0], nn.Dropout)
    assert np.abs(G[2].params["W"]).max() <= 0.05 and np.abs(D[2].params["W"]).max() <= 0.005
    z, y = np.zeros((2, 100), np.float32), np.array([3, 7])
    assert G.forward((z, y), train=False).shape == (2, 784)
    assert D.forward((np.zeros((2, 784), np.float32), y), train=False).shape == (2, 1)
    with pytest.raises(ValueError, match="flat samples"):
        cgan_mlp.build((1, 28, 28), noise_dim=100)
    p = PRESETS["cgan"]
    assert (p.variant, p.model, p.prior, p.noise_dim, p.batch_size, p.k) == ("cgan", "cgan_mlp", "unit-cube", 100, 100, 1)
    for spec in p.optimizers.values():
        assert spec == dict(name="sgd", lr=0.1, lr_decay=1.00004, min_lr=1e-6, momentum=0.5, final_momentum=0.7,
                            momentum_saturate=250)
    assert len(p.deviations) >= 6 and sample_shape("cgan_mlp") == (784,)


def test_conditional_dcgan_puts_the_label_beside_every_weighted_layer():
    nets = cdcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False)
    G, D = nets["G"], nets["D"]
    plain = dcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False)
    # the dcgan networks, with a LabelConcat before each layer with weights
    assert [type(l).__name__ for l in G.layers if not isinstance(l, LabelConcat)] == \
        [type(l).__name__ for l in plain["G"].layers]
    assert [type(l).__name__ for l in D.layers if not isinstance(l, LabelConcat)] == \
        [type(l).__name__ for l in plain["D"].layers]
    for net in (G, D):
        for i, layer in enumerate(net.layers):
            assert (layer.n_params > 0 and not isinstance(layer, (nn.BatchNorm1d, nn.BatchNorm2d))) == \
                (i > 0 and isinstance(net.layers[i - 1], LabelConcat))
    convs = [l for l in G.layers + D.layers if isinstance(l, (nn.Conv2d, nn.ConvTranspose2d))]
    assert [l.params["W"].shape[:2] for l in convs] == [(138, 64), (74, 1), (64, 11), (128, 74)]
    assert G[1].n_in == 110 and D.layers[-1].n_in == 128 * 7 * 7 + 10
    assert G.output_shape(((100,), (10,))) == (1, 28, 28) and D.output_shape(((1, 28, 28), (10,))) == (1,)
    assert G.num_classes == D.num_classes == 10
    y = np.array([0, 9, 4])
    assert G.forward((np.zeros((3, 100), np.float32), y)).shape == (3, 1, 28, 28)
    p = PRESETS["cdcgan"]
    assert (p.variant, p.model, p.batch_size, p.optimizers["G"]["lr"], p.optimizers["G"]["betas"][0]) == \
        ("cgan", "cdcgan", 128, 2e-4, 0.5)
    assert sample_shape("cdcgan") == (1, 28, 28)
    with pytest.raises(ValueError, match="square images"):
        cdcgan.build((784,), noise_dim=100)


def test_cdcgan_fc_preset_is_the_authors_layer_plan():
    """cdcgan-fc: the cdcgan networks plus a 1024-unit fully connected layer in
    G ([z, y] → 1024 → 128·7·7) and D ([h, y] → 1024 → logit), each with BN and
    the label concatenated before it."""
    p = PRESETS["cdcgan-fc"]
    assert p.model_args["fc_units"] == 1024 and p.model == "cdcgan" and p.batch_size == 128
    nets = cdcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False,
                        **{k: v for k, v in p.model_args.items() if k != "n_classes"})
    G, D = nets["G"], nets["D"]
    linears = [(l.n_in, l.n_out) for l in G.layers + D.layers if isinstance(l, nn.Linear)]
    assert linears == [(110, 1024), (1034, 128 * 49), (128 * 49 + 10, 1024), (1034, 1)]
    for net in (G, D):  # every Linear follows a LabelConcat; the hidden ones are batch-normalised
        for i, l in enumerate(net.layers):
            if isinstance(l, nn.Linear):
                assert isinstance(net.layers[i - 1], LabelConcat)
                assert l.n_out == 1 or isinstance(net.layers[i + 1], nn.BatchNorm1d)
    assert G.forward((np.zeros((3, 100), np.float32), np.array([0, 9, 4]))).shape == (3, 1, 28, 28)
    # cdcgan keeps its plan (its checkpoints load by preset name): one Linear in G, one in D
    old = cdcgan.build((1, 28, 28), noise_dim=100, rng=0, fast_layers=False,
                       **{k: v for k, v in PRESETS["cdcgan"].model_args.items() if k != "n_classes"})
    assert [(l.n_in, l.n_out) for net in old.values() for l in net.layers if isinstance(l, nn.Linear)] == \
        [(110, 128 * 49), (128 * 49 + 10, 1)]


def test_unit_cube_prior_is_uniform_on_0_1():
    z = NoisePrior(4, "unit-cube").sample(20000, np.random.default_rng(0), F64)
    assert z.min() >= 0 and z.max() < 1 and abs(z.mean() - 0.5) < 0.01
    assert stats.kstest(z.ravel(), stats.uniform(0, 1).cdf).pvalue > 1e-3


# ---------------------------------------------------------------------------
# Finite differences through the GAN steps
# ---------------------------------------------------------------------------
def tiny_mlp(fast_layers, dtype=F64):
    G = cgan_mlp.build_generator(8, noise_dim=NOISE, n_classes=CLASSES, g_z_units=5, g_y_units=4, g_units=6,
                                 g_irange=0.5, rng=0, dtype=dtype, fast_layers=fast_layers)
    D = cgan_mlp.build_discriminator(8, n_classes=CLASSES, d_x_units=4, d_x_pieces=3, d_y_units=3, d_y_pieces=2,
                                     d_units=4, d_pieces=2, d_irange=0.5, rng=1, dtype=dtype, fast_layers=fast_layers)
    return G, D, (8,)


def tiny_cdcgan(fast_layers, dtype=F64, fc_units=None):
    G = cdcgan.build_generator(noise_dim=NOISE, n_classes=CLASSES, g_channels=(4, 3), side=SIDE, std=0.5, rng=0,
                               dtype=dtype, fast_layers=fast_layers, fc_units=fc_units)
    D = cdcgan.build_discriminator(n_classes=CLASSES, d_channels=(3, 4), side=SIDE, std=0.5, rng=1, dtype=dtype,
                                   fast_layers=fast_layers, fc_units=fc_units)
    return G, D, (1, SIDE, SIDE)


def tiny_cdcgan_fc(fast_layers, dtype=F64):
    """The cdcgan-fc layer plan: a fully connected hidden layer in G and D."""
    return tiny_cdcgan(fast_layers, dtype, fc_units=5)


def frozen(xp, build, fast_layers):
    G, D, shape = build(fast_layers)
    gan = ConditionalGAN(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(NOISE, "unit-cube"),
                         loss="non-saturating", device=device_for(xp))
    return gan, shape


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
@pytest.mark.parametrize("build", [tiny_mlp, tiny_cdcgan, tiny_cdcgan_fc], ids=["paper_mlp", "cdcgan", "cdcgan_fc"])
def test_conditional_steps_match_finite_differences(xp, fast_layers, build):
    """D's step (D(x, y) and D(G(z, y), y), every D parameter) and G's step
    (through G(z, y) and D, every G parameter) against finite differences,
    dropout and batch statistics in training mode, repeated labels."""
    gan, shape = frozen(xp, build, fast_layers)
    x = to_xp(xp, np.random.default_rng(0).random((len(LABELS),) + shape))
    y = to_xp(xp, LABELS)
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.d_step(Batch(x, labels=y)), "d_loss", gan.D))
    assert gan.fake_labels is y                        # G's step draws for the D step's real labels
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.g_step(len(y)), "g_loss", gan.G))
    assert set(gan.G.parameters()) and all(np.any(to_host(g) != 0) for g in gan.G.gradients().values())


def test_fakes_get_the_real_minibatch_labels_and_D_scores_them_under_those():
    """Every pass through G and D in an iteration (k = 2) sees the labels of
    the real minibatch of its D step; the G step those of the last one."""
    gan, shape = frozen(np, tiny_mlp, False)
    gan.k = 2
    seen = []
    for name in ("G", "D"):
        net = getattr(gan, name)
        net.forward = (lambda f, name: lambda inputs, train=True: seen.append((name, inputs[1].copy())) or
                       f(inputs, train=train))(net.forward, name)
    rs = np.random.default_rng(0)
    batches = iter([Batch(rs.random((6,) + shape), labels=LABELS), Batch(rs.random((6,) + shape), labels=LABELS[::-1])])
    gan.iteration(lambda: next(batches))
    assert [n for n, _ in seen] == ["G", "D", "D"] * 2 + ["G", "D"]
    for (_, y), expected in zip(seen, [LABELS] * 3 + [LABELS[::-1]] * 5):
        np.testing.assert_array_equal(y, expected)


def test_the_conditional_steps_compose_with_algorithm_1s_machinery():
    """cGAN changes only the bodies of D's gradient and G's step, so the rest
    is Algorithm 1's: :meth:`GAN.d_step` (``d_gradients`` + the update) and
    :meth:`GAN.iteration` (``d_steps()`` D steps, then ``g_step(m)``). A
    subclass that varies ``d_steps`` or wraps ``d_step`` and ``g_step`` (as
    WGAN does) works on a cGAN too, and G's step draws for the labels of the
    last D step's real minibatch."""
    class Varied(ConditionalGAN):
        def d_steps(self):
            return 3

        def d_step(self, batch):
            self.calls.append("D")
            return super().d_step(batch)

        def g_step(self, m):
            self.calls.append(("G", m))
            return super().g_step(m)

    G, D, shape = tiny_mlp(False)
    gan = Varied(G, D, nn.SGD(D, lr=0.1), nn.SGD(G, lr=0.1), NoisePrior(NOISE, "unit-cube"), loss="non-saturating")
    gan.calls = []
    rs = np.random.default_rng(0)
    batches = iter([Batch(rs.random((6,) + shape), labels=y) for y in (LABELS, LABELS, LABELS[::-1])])
    stats = gan.iteration(lambda: next(batches))
    assert gan.calls == ["D", "D", "D", ("G", 6)] and {"d_loss", "g_loss"} <= set(stats)
    np.testing.assert_array_equal(gan.fake_labels, LABELS[::-1])
    # d_gradients: the conditional gradient in D's grads, no update
    before = {k: p.copy() for k, p in gan.D.parameters().items()}
    gan.d_gradients(Batch(rs.random((6,) + shape), labels=LABELS))
    assert all(np.array_equal(p, before[k]) for k, p in gan.D.parameters().items())
    assert any(np.abs(g).max() > 0 for g in gan.D.gradients().values())
    # G's step needs the labels of a D step, m of them
    fresh = gan_of()
    with pytest.raises(ValueError, match="for the labels of the last D step's real minibatch, which has not run"):
        fresh.g_step(6)
    fresh.d_step(Batch(rs.random((6, 8), dtype=np.float32), labels=LABELS))
    with pytest.raises(ValueError, match="its 5 fakes .* which had 6"):
        fresh.g_step(5)
    assert set(fresh.g_step(6)) == {"g_loss"}


@pytest.mark.parametrize("build", [tiny_mlp, tiny_cdcgan, tiny_cdcgan_fc], ids=["paper_mlp", "cdcgan", "cdcgan_fc"])
def test_whole_networks_against_finite_differences(build):
    """G(z, y) and D(x, y) as modules, L = Σ net(a, y) ⊙ g for a random g: the
    gradient of the float input (z or x) and of every parameter against
    finite differences (relative to the largest gradient: a bias just before
    batch normalisation has a zero gradient); the labels get None."""
    G, D, shape = build(False)
    rs = np.random.default_rng(2)
    z, x = rs.random((len(LABELS), NOISE)), rs.random((len(LABELS),) + shape)
    for net, inp in ((G, z), (D, x)):
        def forward():
            net.set_rng(np.random.default_rng(9))     # the same dropout masks every time
            return net.forward((inp, LABELS))
        g = rs.standard_normal(forward().shape)
        net.zero_grad()
        dx, dlabels = net.backward(g)
        assert dlabels is None
        analytic = {"input": dx, **{k: v.copy() for k, v in net.gradients().items()}}
        arrays = {"input": inp, **net.parameters()}
        numeric = {k: numerical_gradient(lambda: float((forward() * g).sum()), a) for k, a in arrays.items()}
        scale = max(float(np.abs(analytic[k]).max() + np.abs(numeric[k]).max()) for k in arrays)
        assert_grads_ok({k: float(np.abs(analytic[k] - numeric[k]).max()) / scale for k in arrays})


# ---------------------------------------------------------------------------
# The label branches with repeated labels
# ---------------------------------------------------------------------------
def test_label_branches_add_the_gradients_of_repeated_labels():
    """G's label branch (an Embedding) and D's (one-hot → Maxout): with the
    class 1 three times and 3 twice in one batch, each parameter's gradient is
    the sum of the six one-sample gradients, the rows of the classes used get
    exactly their samples' gradients, and an absent class gets zero."""
    G, D, _ = tiny_mlp(False)
    dy_rs = np.random.default_rng(3)
    for layers in (G[0][1][:2], D[0][1][:2]):           # (Embedding, ReLU) and (OneHot, Maxout): no dropout
        branch = nn.Sequential(layers)
        out = branch.forward(LABELS)
        dy = dy_rs.standard_normal(out.shape)
        branch.zero_grad()
        assert branch.backward(dy) is None               # labels get no gradient
        together = {k: g.copy() for k, g in branch.gradients().items()}
        alone = {k: np.zeros_like(g) for k, g in together.items()}
        for i in range(len(LABELS)):
            branch.zero_grad()
            branch.forward(LABELS[i:i + 1])
            branch.backward(dy[i:i + 1])
            for k, g in branch.gradients().items():
                alone[k] += g
        for k in together:
            np.testing.assert_allclose(together[k], alone[k], rtol=1e-12, atol=1e-14)
    # the embedding's rows: class 1 gets rows 0, 1, 3 of dy through the ReLU, class 2 nothing
    emb = G[0][1][0]
    out = emb.forward(LABELS)
    dy = dy_rs.standard_normal(out.shape)
    emb.zero_grad()
    emb.backward(dy)
    np.testing.assert_allclose(emb.grads["E"][1], dy[0] + dy[1] + dy[3], rtol=1e-12)
    np.testing.assert_allclose(emb.grads["E"][3], dy[2] + dy[5], rtol=1e-12)
    assert not emb.grads["E"][2].any()


def test_label_concat_and_one_hot():
    onehot = OneHot(3, F64)
    y = onehot.forward(np.array([2, 0, 2]))
    np.testing.assert_array_equal(y, np.eye(3)[[2, 0, 2]])
    assert onehot.backward(np.ones((3, 3))) is None
    cat = LabelConcat()
    h = np.random.default_rng(0).random((3, 2, 4, 5))
    out = cat.forward((h, y))
    assert out.shape == (3, 5, 4, 5)
    np.testing.assert_array_equal(out[:, :2], h)
    np.testing.assert_array_equal(out[:, 2:], np.broadcast_to(y[:, :, None, None], (3, 3, 4, 5)))
    dy = np.random.default_rng(1).random(out.shape)
    np.testing.assert_array_equal(cat.backward(dy), dy[:, :2])
    flat = cat.forward((h.reshape(3, -1), y))
    assert flat.shape == (3, 43) and np.array_equal(flat[:, 40:], y)
    with pytest.raises(ValueError, match="3 samples but 2 labels"):
        cat.forward((h, y[:2]))
    with pytest.raises(ValueError, match="integer labels"):
        onehot.forward(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"OneHot\(3\): label 3 is out of range: 3 classes, 0..2"):
        onehot.forward(np.array([0, 3]))
    with pytest.raises(ValueError, match="tuple"):
        LabelSequential([nn.Linear(5, 2)], 3).forward(np.zeros((2, 2)))


# ---------------------------------------------------------------------------
# Sampling by label
# ---------------------------------------------------------------------------
def gan_of(build=tiny_mlp, seed=0):
    G, D, _ = build(False, np.float32)
    return ConditionalGAN(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(NOISE, "unit-cube"), seed=seed)


@pytest.mark.parametrize("build", [tiny_mlp, tiny_cdcgan], ids=["paper_mlp", "cdcgan"])
def test_sampling_by_label_returns_the_asked_classes_in_order(build):
    gan = gan_of(build)
    asked = np.array([3, 1, 0, 1, 2, 3, 3])
    inputs = gan.sample_inputs(7, np.random.default_rng(0), labels=asked)
    np.testing.assert_array_equal(inputs["labels"], asked)
    x = gan.generate_from(inputs)
    for i in range(7):  # row i is G(z_i, asked[i]), whatever the other rows are
        alone = gan.generate_from({"z": inputs["z"][i:i + 1], "labels": asked[i:i + 1]})
        np.testing.assert_allclose(x[i:i + 1], alone, rtol=1e-5, atol=1e-6)
    # the label is used: the same z with other labels gives other samples
    other = gan.generate_from({"z": inputs["z"], "labels": (asked + 1) % CLASSES})
    assert np.abs(other - x).reshape(7, -1).max(axis=1).min() > 1e-4
    # generate in batches slices the labels with the noise
    batched = gan.generate(7, seed=4, batch_size=3, labels=asked)
    rng = np.random.default_rng(4)
    parts = [gan.generate_from(gan.sample_inputs(len(asked[i:i + 3]), rng, labels=asked[i:i + 3]))
             for i in range(0, 7, 3)]
    np.testing.assert_allclose(batched, np.concatenate(parts), rtol=1e-6)
    np.testing.assert_array_equal(gan.generate(7, seed=4, batch_size=3, labels=asked.tolist()), batched)  # a list
    with pytest.raises(ValueError, match="expected one label or 7"):
        gan.generate(7, labels=asked[:6])
    # one label for every sample
    one = gan.sample_inputs(5, np.random.default_rng(0), labels=2)
    np.testing.assert_array_equal(one["labels"], [2] * 5)
    assert gan.sample(4, labels=1).shape[0] == 4


def test_per_class_grid_shares_z_down_each_column():
    gan = gan_of()
    inputs = gan.grid_inputs(2 * CLASSES, seed=3)
    z, labels = inputs["z"], inputs["labels"]
    np.testing.assert_array_equal(labels, np.repeat(np.arange(CLASSES), 2))       # row c: class c
    for c in range(CLASSES):
        np.testing.assert_array_equal(z[2 * c: 2 * c + 2], z[:2])                 # the same two z in every row
    assert not np.array_equal(z[0], z[1])
    x = gan.generate_from(inputs)
    assert x.shape == (2 * CLASSES, 8)
    np.testing.assert_array_equal(gan.grid_inputs(2 * CLASSES, seed=3)["z"], z)  # fixed by the seed
    np.testing.assert_array_equal(gan.balanced_labels(10), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    assert np.bincount(gan_of().balanced_labels(10000 * CLASSES // 10)).tolist() == [1000] * CLASSES


# ---------------------------------------------------------------------------
# Bad labels
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("labels, needle", [
    (None, "pass one label"),
    (4, "labels: label 4 is out of range: 4 classes, 0..3"),
    (-1, "label -1 is out of range"),
    ([0, 1, 9], "label 9 is out of range"),
    (3.0, r"expected integer labels .*; got float64 of shape \(\): 3\.0"),
    (np.array([1.0, 2.0, 0.0]), r"expected integer labels .*; got float64 of shape \(3,\): \[1\., 2\., 0\.\]"),
    (True, "integer labels .*; got booleans"),
    ("3", "integer labels .*; got <U1 of shape \\(\\): '3'"),
    (np.arange(7) % 4 + 0.0, r"got float64 of shape \(7,\): \[0\., 1\., 2\., 3\., 0\.\] …"),
    ([1, 2], r"expected one label or 3 \(one per sample\), got shape \(2,\)"),
    (np.zeros((3, 1), int), r"got shape \(3, 1\)"),
])
def test_bad_labels_are_clear_errors(labels, needle):
    gan = gan_of()
    with pytest.raises(ValueError, match=needle):
        gan.sample_inputs(3, np.random.default_rng(0), labels=labels)
    with pytest.raises(ValueError, match=needle):
        check_labels(labels, 3, CLASSES)


def test_labels_for_the_wrong_kind_of_model():
    G = paper_mlp.build_generator(8, noise_dim=NOISE, g_hidden=(5,))
    D = paper_mlp.build_discriminator(8, d_units=4, d_pieces=2, d_layers=1, d_dropout=(0.2, 0.5))
    plain = GAN(G, D, nn.SGD(D), nn.SGD(G), NOISE)
    with pytest.raises(ValueError, match="generates unconditionally: it takes no labels"):
        plain.sample_inputs(3, np.random.default_rng(0), labels=1)
    with pytest.raises(ValueError, match="needs networks that take labels"):
        ConditionalGAN(G, D, nn.SGD(D), nn.SGD(G), NOISE)
    G4, _, _ = tiny_mlp(False, np.float32)
    with pytest.raises(ValueError, match=r"disagree on the number of classes: \[4, 5\]"):
        label_classes(G4, cgan_mlp.build_discriminator(8, n_classes=5))
    gan = gan_of()
    with pytest.raises(ValueError, match="the 'cgan' variant is conditioned on labels only: it takes no codes"):
        gan.sample_inputs(3, np.random.default_rng(0), labels=1, codes=np.zeros(3))
    with pytest.raises(ValueError, match="the 'cgan' variant is conditioned on labels only: it takes no codes"):
        gan.generate(3, labels=1, codes={"c1": 1})
    with pytest.raises(ValueError, match="the 'cgan' variant is conditioned on labels only: it takes no codes"):
        gan.generate(3, codes={"c1": 1})                  # the condition it cannot take comes first
    with pytest.raises(ValueError, match="inputs need 'labels' beside 'z'"):
        gan.generate_from({"z": np.zeros((2, NOISE), np.float32)})
    x = np.random.default_rng(0).random((6, 8), dtype=np.float32)
    with pytest.raises(ValueError, match="needs the labels of every real minibatch"):
        gan.d_step(x)
    with pytest.raises(ValueError, match="integer labels"):
        gan.d_step(Batch(x, labels=LABELS.astype(np.float32)))
    with pytest.raises(ValueError, match="the real minibatch's labels: label 4 is out of range: 4 classes"):
        gan.d_step(Batch(x, labels=np.array([0, 1, 2, 3, 4, 0])))
    with pytest.raises(ValueError, match="6 samples but 5 labels"):
        gan.d_step(Batch(x, labels=LABELS[:5]))
    assert get_variant("cgan") is ConditionalGAN and ConditionalGAN.needs == ("labels",)


# ---------------------------------------------------------------------------
# End to end through the command line
# ---------------------------------------------------------------------------
def tiny_data(n=300, bad_label=False):
    rng = np.random.default_rng(0)
    imgs = rng.random((n + 120, 784), dtype=np.float32)
    labels = (np.arange(n + 120) % 10).astype(np.uint8)
    if bad_label:
        labels[7] = 11
    return Dataset(name="mnist", split="paper", train=imgs[:n], train_labels=labels[:n], valid=imgs[n:n + 60],
                   valid_labels=labels[n:n + 60], test=imgs[n + 60:], test_labels=labels[n + 60:])


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """A randomly initialised judge saved as the package's shipped weights."""
    judge = build_judge(0)
    entry = save_judge_weights(judge, "mnist", tmp_path / "judges", test_accuracy=0.1)
    (tmp_path / "judges" / "judges.json").write_text(json.dumps({"mnist": entry}))
    monkeypatch.setattr(judge_mod, "WEIGHTS", tmp_path / "judges")


def test_label_accuracy_overall_and_per_class():
    """evaluate_samples' label accuracy against the judge's own arg-max, class by class."""
    from scratchgan.metrics.evaluate import evaluate_samples
    from scratchgan.metrics.judged import judge_outputs

    judge = build_judge(0)
    data = tiny_data()
    samples = data.train[:60]
    _, logits = judge_outputs(judge, samples)
    pred = logits.argmax(axis=1)
    labels = np.where(np.arange(60) % 3 == 0, pred, (pred + 1) % 10)   # right exactly for every third sample
    labels[labels == 9] = 8                                             # class 9 never asked for
    r = evaluate_samples(samples, data, judge, ("modes",), labels=labels)["label_accuracy"]
    assert r["value"] == pytest.approx((pred == labels).mean())
    for c in range(9):
        expected = (pred[labels == c] == c).mean() if (labels == c).any() else None
        assert r["per_class"][c] == pytest.approx(expected)
    assert r["per_class"][9] is None


@pytest.mark.parametrize("preset, shape", [("cgan", (784,)), ("cdcgan", (1, 28, 28))])
def test_preset_resume_sample_evaluate_end_to_end(preset, shape, tmp_path, monkeypatch, capsys, shipped):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    args = ["train", "--preset", preset, "--device", "cpu", "--quiet", "--out", str(out), "--snapshot-every", "1"]
    assert main(args + ["--epochs", "1"]) == 0
    state = read_checkpoint(out / "checkpoint.npz")
    assert str(state["variant"]) == "cgan" and tuple(state["x_shape"]) == shape
    # the training grid is the per-class grid: row c is class c, one z per column
    np.testing.assert_array_equal(state["fixed/labels"], np.repeat(np.arange(10), 10))
    z = state["fixed/z"]
    assert all(np.array_equal(z[10 * c: 10 * c + 10], z[:10]) for c in range(10))
    assert main(["train", "--out", str(out), "--epochs", "2", "--resume", "--device", "cpu", "--quiet"]) == 0
    assert (out / "samples" / "epoch_0002.png").is_file()
    capsys.readouterr()
    # sample --label: every sample of that class
    npz, png = tmp_path / "s.npz", tmp_path / "grid.png"
    assert main(["sample", str(out / "G_epoch_0002.npz"), "-n", "7", "--label", "3", "--npz", str(npz), "--device",
                 "cpu"]) == 0
    with np.load(npz) as f:
        assert f["samples"].shape == (7,) + shape and f["labels"].tolist() == [3] * 7
        s = f["samples"]
    gan, _ = gan_from_checkpoint(out / "G_epoch_0002.npz", "cpu")
    np.testing.assert_allclose(s, gan.generate(7, 0, labels=np.full(7, 3)), rtol=1e-6)  # class 3, seed 0
    assert np.abs(s - gan.generate(7, 0, labels=np.full(7, 4))).max() > 1e-4
    assert s.min() >= 0 and s.max() <= 1
    # sample --per-class: ten rows, the same z down each column
    assert main(["sample", str(out / "checkpoint.npz"), "--per-class", "-n", "30", "--png", str(png), "--npz",
                 str(npz), "--interpolate", str(tmp_path / "i.png"), "--rows", "3", "--steps", "3",
                 "--device", "cpu"]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG" and (tmp_path / "i.png").is_file()
    with np.load(npz) as f:
        assert f["labels"].tolist() == np.repeat(np.arange(10), 3).tolist() and len(f["samples"]) == 30
        grid = f["samples"]
    inputs = gan.per_class_inputs(3, np.random.default_rng(0))  # the command's seed 0
    gan_ck, _ = gan_from_checkpoint(out / "checkpoint.npz", "cpu")
    np.testing.assert_allclose(grid, gan_ck.generate_from(inputs), rtol=1e-6)
    # evaluate: class-balanced labels, label accuracy printed and in the JSON
    js = tmp_path / "eval.json"
    capsys.readouterr()
    assert main(["evaluate", str(out / "checkpoint.npz"), "-n", "200", "--n-valid", "20", "--n-test", "20",
                 "--json", str(js), "--device", "cpu", "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "200 samples of" in printed and "(20 per class)" in printed and "label accuracy" in printed
    r = json.loads(js.read_text())
    assert 0 <= r["label_accuracy"]["value"] <= 1 and len(r["label_accuracy"]["per_class"]) == 10
    assert sum(r["modes"]["histogram"]) == 200 and "parzen" in r and "fid" in r


def test_command_line_label_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    cond, plain = tmp_path / "cond", tmp_path / "plain"
    for preset, out in (("cgan", cond), ("small", plain)):
        assert main(["train", "--preset", preset, "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(out)]) == 0
    capsys.readouterr()
    ck = str(cond / "checkpoint.npz")
    png = str(tmp_path / "x.png")
    for argv, needle in (
        (["sample", ck, "--png", png], "is a conditional GAN (10 classes): give --label C"),
        (["sample", ck, "--png", png, "--label", "10"], "--label: label 10 is out of range: 10 classes, 0..9"),
        (["sample", ck, "--png", png, "--label", "-2"], "label -2 is out of range"),
        (["sample", ck, "--png", png, "--label", "1", "--per-class"], "give --label or --per-class, not both"),
        (["sample", ck, "--png", png, "--per-class", "-n", "5"], "--per-class needs -n a multiple of 10"),
        (["sample", ck, "--png", png, "--per-class", "-n", "15"], "got -n 15"),
        (["sample", ck, "--png", png, "--per-class", "--code", "c1=1"], "--code is for InfoGAN"),
        (["sample", ck, "--png", png, "--label", "3", "--code", "c1=1"],
         "the 'cgan' variant is conditioned on labels only: it takes no codes"),
        (["sample", ck, "--interpolate", png, "--label", "3", "--code", "c1=1"],
         "the 'cgan' variant is conditioned on labels only: it takes no codes"),
        (["sample", str(plain / "checkpoint.npz"), "--png", png, "--label", "1"], "is an unconditional model"),
        (["sample", str(plain / "checkpoint.npz"), "--png", png, "--per-class"], "is an unconditional model"),
    ):
        assert main(argv + ["--device", "cpu"]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("scratchgan: error: ") and needle in err and err.count("\n") == 1, (argv, err)
    with pytest.raises(SystemExit):  # not an integer: argparse's usage error
        main(["sample", ck, "--png", png, "--label", "3.5"])
    assert "invalid int value" in capsys.readouterr().err
    # labels outside the classes in the training data: refused before training
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data(bad_label=True))
    assert main(["train", "--preset", "cgan", "--epochs", "1", "--device", "cpu", "--quiet", "--out",
                 str(tmp_path / "bad")]) == 2
    assert "the mnist train_labels: label 11 is out of range" in capsys.readouterr().err


def test_build_gan_gives_the_conditional_variant():
    for name, shape in (("cgan", (784,)), ("cdcgan", (1, 28, 28))):
        gan = build_gan(PRESETS[name], x_shape=shape, pixel_mean=np.full(784, 0.1, np.float32), seed=0)
        assert isinstance(gan, ConditionalGAN) and gan.n_classes == 10


def test_results_script_writes_the_table_and_grids(tmp_path, monkeypatch, capsys, shipped):
    import importlib.util
    import pathlib

    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    run = tmp_path / "cgan-run"
    assert main(["train", "--preset", "cgan", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(run)]) == 0
    path = pathlib.Path(__file__).parents[1] / "scripts" / "cgan_results.py"
    spec = importlib.util.spec_from_file_location("cgan_results", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "figs"
    script.main([str(run), "--out", str(out), "-n", "100", "--device", "cpu"])
    table = (out / "results.md").read_text()
    assert "| `cgan`, cgan-run | MNIST | 1 | **" in table and "132 ± 1.8" in table
    assert (out / "cgan-run_per_class.png").read_bytes()[:4] == b"\x89PNG" and (out / "cgan-run.json").is_file()
    plain = tmp_path / "plain"
    assert main(["train", "--preset", "small", "--epochs", "1", "--device", "cpu", "--quiet", "--out", str(plain)]) == 0
    with pytest.raises(ValueError, match="reports conditional runs"):
        script.main([str(plain), "--out", str(out)])
