"""InfoGAN (issue 14): D and Q on one trunk checked as a whole, the code losses, the
matched classification error, the codes on the command line, the preset end to end."""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import os
import warnings

import numpy as np
import pytest

import scratchgan.data
from helpers import BACKENDS, assert_grads_ok, device_for, step_gradient_errors, to_host, to_xp
from scratchgan import nn
from scratchgan.cli import main, parse_codes
from scratchgan.data import Dataset
from scratchgan.gan import GAN, InfoGAN, NoisePrior
from scratchgan.metrics.matching import best_assignment, confusion_matrix, matched_error
from scratchgan.models import infogan as models
from scratchgan.nn.gradcheck import check_module, numerical_gradient
from scratchgan.presets import PRESETS, Preset, build_gan, resolve
from scratchgan.training.checkpoint import read_checkpoint

F64 = np.float64
SIDE, NOISE, K, CONT = 8, 3, 3, 2
SCRIPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts")


def tiny_nets(fast_layers, dtype=F64):
    G = models.build_generator(latent_dim=NOISE + K + CONT, fc=6, channels=(4, 3), side=SIDE, std=0.5, rng=0,
                               dtype=dtype, fast_layers=fast_layers)
    D = models.build_discriminator(code_dim=K + CONT, fc=6, q_hidden=5, channels=(3, 4), side=SIDE, std=0.5,
                                   rng=1, dtype=dtype, fast_layers=fast_layers)
    return G, D


def frozen(xp, fast_layers=False, **kw):
    """A float64 InfoGAN whose optimisers do not move (lr 0): the steps'
    gradients can be compared with finite differences of their losses."""
    G, D = tiny_nets(fast_layers)
    args = dict(categories=K, continuous=CONT, lambda_cat=1.0, lambda_cont=0.7, sigma=0.8, loss="non-saturating")
    args.update(kw)
    return InfoGAN(G, D, nn.SGD(D, lr=0.0), nn.SGD(G, lr=0.0), NoisePrior(NOISE, "uniform"),
                   device=device_for(xp), **args)


# --------------------------------------------------------------------------
# the paper's architecture and preset
# --------------------------------------------------------------------------

def test_architecture_is_appendix_c():
    nets = models.build((1, 28, 28), noise_dim=62, rng=0, fast_layers=False)
    G, D = nets["G"], nets["D"]
    assert [type(l).__name__ for l in G.layers] == [
        "Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU", "Reshape",
        "ConvTranspose2d", "BatchNorm2d", "ReLU", "ConvTranspose2d", "Sigmoid"]
    assert (G.layers[0].n_in, G.layers[0].n_out, G.layers[3].n_out) == (74, 1024, 7 * 7 * 128)
    trunk, d_head, q_head = models.heads(D)
    assert [type(l).__name__ for l in trunk.layers] == [
        "Conv2d", "LeakyReLU", "Conv2d", "BatchNorm2d", "LeakyReLU", "Flatten", "Linear", "BatchNorm1d", "LeakyReLU"]
    assert (trunk.layers[0].out_channels, trunk.layers[2].out_channels, trunk.layers[6].n_out) == (64, 128, 1024)
    assert (d_head.n_in, d_head.n_out) == (1024, 1)
    assert [type(l).__name__ for l in q_head.layers] == ["Linear", "BatchNorm1d", "LeakyReLU", "Linear"]
    assert (q_head.layers[0].n_out, q_head.layers[3].n_out) == (128, 12)   # 10 logits + 2 means
    assert isinstance(D.layers[1], nn.Fork)
    assert all(l.slope == 0.1 for l in trunk.layers + q_head.layers if isinstance(l, nn.LeakyReLU))
    assert G.output_shape((74,)) == (1, 28, 28) and D.output_shape((1, 28, 28)) == ((1,), (12,))
    w = np.concatenate([p.ravel() for k, p in {**G.parameters(), **D.parameters()}.items() if k.endswith("W")])
    assert abs(w.std() - 0.02) < 0.001
    with pytest.raises(ValueError, match="square"):
        models.build((784,), noise_dim=62)


def test_presets_and_what_each_optimiser_steps_on():
    p = PRESETS["infogan"]
    assert (p.noise_dim, p.prior, p.batch_size, p.loss, p.k) == (62, "uniform", 128, "non-saturating", 1)
    assert (p.optimizers["D"]["lr"], p.optimizers["G"]["lr"]) == (2e-4, 1e-3)
    assert p.optimizers["D"]["betas"][0] == p.optimizers["G"]["betas"][0] == 0.5
    assert p.variant_args["lambda_cat"] == 1.0 and 0 < p.variant_args["lambda_cont"] < 1
    assert p.model_args["slope"] == 0.1 and PRESETS["infogan-code"].model_args["slope"] == 0.01
    assert PRESETS["infogan-code"].variant_args["lambda_cont"] == 1.0
    gan = build_gan(resolve("infogan"), x_shape=(1, 28, 28), steps_per_epoch=390)
    assert isinstance(gan, InfoGAN) and gan.needs == ()   # no labels: c1 is learned without them
    trunk, d_head, q_head = models.heads(gan.D)
    d_ids = {id(p) for _, p, _ in gan.d_opt.named_parameters()}
    g_ids = {id(p) for _, p, _ in gan.g_opt.named_parameters()}
    for part in (trunk, d_head, q_head):      # D's optimiser: the trunk and both heads
        assert {id(p) for p in part.parameters().values()} <= d_ids
    assert g_ids == {id(p) for p in gan.G.parameters().values()} and not d_ids & g_ids
    # the networks and the variant must agree on the codes
    with pytest.raises(ValueError, match="disagree"):
        Preset(**{**{f: getattr(p, f) for f in p.__dataclass_fields__},
                  "variant_args": dict(p.variant_args, categories=5)})


# --------------------------------------------------------------------------
# D and Q on one trunk: gradients of both losses, through the public steps
# --------------------------------------------------------------------------


@pytest.mark.parametrize("xp", BACKENDS)
@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
def test_both_steps_match_finite_differences_for_every_parameter(xp, fast_layers):
    """D's step descends d_loss + q_loss in every parameter of the trunk, D's
    head and Q's head; G's step descends g_loss + q_loss in every parameter of
    G (the Q term reaching G through Q and the trunk). Batch statistics in
    training mode, float64, the optimisers at lr 0."""
    gan = frozen(xp, fast_layers)
    x = to_xp(xp, np.random.default_rng(0).random((6, 1, SIDE, SIDE)))
    errors = step_gradient_errors(gan, lambda: gan.d_step(x), ("d_loss", "q_loss"), gan.D)
    trunk, d_head, q_head = models.heads(gan.D)
    assert {k.split(".")[0] + "." + k.split(".")[1] for k in errors} >= {"0.0", "1.0", "1.1"}  # trunk, D, Q
    assert_grads_ok(errors)
    assert_grads_ok(step_gradient_errors(gan, lambda: gan.g_step(6), ("g_loss", "g_q_loss"), gan.G))


def test_the_trunk_receives_both_heads_gradients():
    """The information term is not left out of the trunk or of G: switching it
    off (λ = 0) changes the gradients of the trunk, Q's head and G, but not
    of D's head."""
    def grads(lam):
        gan = frozen(np, lambda_cat=lam, lambda_cont=lam)
        gan.seed(2)
        gan.d_step(np.random.default_rng(0).random((6, 1, SIDE, SIDE)))
        d = {k: to_host(g).copy() for k, g in gan.D.gradients().items()}
        gan.seed(3)
        gan.g_step(6)
        return d, {k: to_host(g).copy() for k, g in gan.G.gradients().items()}
    (d1, g1), (d0, g0) = grads(1.0), grads(0.0)
    changed = {k for k in d1 if np.abs(d1[k] - d0[k]).max() > 1e-8}
    assert {"0.0.W", "0.6.W", "1.1.0.W", "1.1.3.W"} <= changed          # trunk and Q
    assert not {"1.0.W", "1.0.b"} & changed                              # D's head: no Q term
    assert all(np.abs(g1[k] - g0[k]).max() > 1e-8 for k in g1 if k.endswith("W"))


@pytest.mark.parametrize("fast_layers", [False, True], ids=["reference", "fast"])
def test_shared_trunk_with_two_heads_as_a_module(fast_layers):
    """D = Sequential([trunk, Fork([d_head, q_head])]) against finite
    differences with random gradients on both outputs, and with Q's output
    reaching no loss (the real pass)."""
    _, D = tiny_nets(fast_layers)
    x = np.random.default_rng(4).random((5, 1, SIDE, SIDE))
    before_bn = {"0.2.b", "0.6.b", "1.1.0.b"}    # biases that batch statistics cancel: gradient exactly 0
    for dy in (None, (np.random.default_rng(5).standard_normal((5, 1)), None)):
        errors = check_module(D, x, dy=dy)
        assert all(np.abs(to_host(D.gradients()[k])).max() < 1e-12 for k in before_bn)
        assert set(errors) == {"x"} | set(D.parameters())
        assert_grads_ok({k: v for k, v in errors.items() if k not in before_bn})


# --------------------------------------------------------------------------
# the code losses
# --------------------------------------------------------------------------

def codes(m, rng):
    return {"c1": rng.integers(0, K, m), "c2": rng.uniform(-1, 1, m), "c3": rng.uniform(-1, 1, m)}


@pytest.mark.parametrize("xp", BACKENDS)
def test_info_loss_value_and_gradient(xp):
    """λ_cat·CE + λ_cont·NLL against the formulas written out, and its
    gradient against finite differences; mi_c1 = ln K − CE."""
    gan = frozen(xp, lambda_cat=0.9, lambda_cont=0.3, sigma=0.7)
    rng = np.random.default_rng(0)
    q_host = rng.standard_normal((7, K + CONT)) * 3
    c = codes(7, rng)
    q, cd = to_xp(xp, q_host), {k: to_xp(xp, v) for k, v in c.items()}
    value, dq, stats = gan.info_loss(q, cd)
    logits, mu = q_host[:, :K], q_host[:, K:]
    logp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    ce = -logp[np.arange(7), c["c1"]].mean()
    target = np.stack([c["c2"], c["c3"]], axis=1)
    nll = (((target - mu) ** 2) / (2 * 0.7 ** 2) + math.log(0.7) + 0.5 * math.log(2 * math.pi)).sum(axis=1).mean()
    assert float(value) == pytest.approx(0.9 * ce + 0.3 * nll, rel=1e-12)
    assert float(stats["mi_c1"]) == pytest.approx(math.log(K) - ce, rel=1e-12)
    assert float(stats["q_mse"]) == pytest.approx(((mu - target) ** 2).mean(), rel=1e-12)
    numeric = numerical_gradient(lambda: float(gan.info_loss(q, cd)[0]), q)
    assert_grads_ok(float(np.abs(to_host(dq) - to_host(numeric)).max() / np.abs(to_host(numeric)).max()))


def test_info_loss_at_extreme_outputs_is_finite_and_silent():
    """Logits and means of ±1e4 (float32 and float64): finite values and
    gradients, no overflow, division by zero, invalid operation or warning
    (an exponent underflowing to 0 is the stable log-softmax at work); a confident right Q gives mi_c1 = ln K, a
    confident wrong one a large cross-entropy, not inf."""
    for dtype in (np.float32, np.float64):
        gan = frozen(np)
        c = {"c1": np.array([0, 1, 2, 0]), "c2": np.zeros(4, dtype), "c3": np.ones(4, dtype)}
        right = np.full((4, K + CONT), -1e4, dtype)
        right[np.arange(4), c["c1"]] = 1e4
        right[:, K:] = 1e4
        wrong = -right
        with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
            warnings.simplefilter("error")
            for q in (right, wrong):
                value, dq, stats = gan.info_loss(q, c)
                assert np.isfinite(float(value)) and np.isfinite(dq).all()
                assert all(np.isfinite(float(v)) for v in stats.values())
            assert float(gan.info_loss(right, {**c, "c2": right[:, K], "c3": right[:, K + 1]})[2]["mi_c1"]) \
                == pytest.approx(math.log(K))
            assert float(gan.info_loss(wrong, c)[2]["mi_c1"]) < -1e3


def test_info_loss_checks_q_shape():
    gan = frozen(np)
    with pytest.raises(ValueError, match="must agree on categories"):
        gan.info_loss(np.zeros((4, K + CONT + 1)), codes(4, np.random.default_rng(0)))


# --------------------------------------------------------------------------
# c1 as a classifier: the matched error
# --------------------------------------------------------------------------

def test_known_permutation_has_zero_error():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 500)
    perm = rng.permutation(10)
    pred = perm[labels]                       # category perm[d] for digit d
    r = matched_error(pred, labels)
    assert r["error"] == 0.0 and r["error_majority"] == 0.0
    assert np.array_equal(np.asarray(r["mapping"])[perm], np.arange(10))
    pred[:50] = (pred[:50] + 1) % 10           # 50 of 500 wrong
    assert matched_error(pred, labels)["error"] <= 0.1 + 1e-12


def test_best_assignment_is_exact():
    from scipy.optimize import linear_sum_assignment

    rng = np.random.default_rng(1)
    for shape in [(10, 10), (4, 7), (1, 3), (6, 6)]:
        for _ in range(5):
            s = rng.integers(0, 100, shape).astype(float)
            rows, cols = linear_sum_assignment(s, maximize=True)
            mine = best_assignment(s)
            assert len(set(mine.tolist())) == shape[0]
            assert s[np.arange(shape[0]), mine].sum() == s[rows, cols].sum()
    # greedy would take 9 then be left with 0 + 0; the best is 8 + 8
    assert best_assignment([[9, 8], [8, 0]]).tolist() == [1, 0]


def test_majority_and_one_to_one_differ_when_two_categories_share_a_digit():
    labels = np.array([0] * 5 + [1] + [0] * 4)
    pred = np.array([0] * 6 + [1] * 4)       # category 0: five 0s and a 1; category 1: four 0s
    r = matched_error(pred, labels, 2, 2)
    assert r["confusion"] == [[5, 1], [4, 0]]
    assert r["mapping_majority"] == [0, 0] and r["error_majority"] == pytest.approx(0.1)
    assert sorted(r["mapping"]) == [0, 1] and r["error"] == pytest.approx(0.5)


def test_more_categories_than_classes_match_each_class_to_its_own_category(monkeypatch, capsys):
    """K = 3 categories, C = 2 classes: each class gets one category, the
    images of the category left over are errors; the script prints it."""
    labels = np.array([0] * 6 + [1] * 4)
    pred = np.array([0] * 4 + [2] * 2 + [1] * 3 + [2])   # class 0 split over categories 0 and 2
    r = matched_error(pred, labels, 3, 2)
    assert r["confusion"] == [[4, 0], [0, 3], [2, 1]]
    assert r["mapping"] == [0, 1, None] and r["error"] == pytest.approx(0.3)   # 4 + 3 of 10 matched
    assert r["mapping_majority"] == [0, 1, 0] and r["error_majority"] == pytest.approx(0.1)
    assert json.loads(json.dumps(r)) == r
    rs = np.random.default_rng(0)                 # against every injective class → category map
    for _ in range(5):
        labels, pred = rs.integers(0, 3, 60), rs.integers(0, 5, 60)
        N = confusion_matrix(pred, labels, 5, 3)
        best = max(sum(N[k, d] for d, k in enumerate(ks)) for ks in itertools.permutations(range(5), 3))
        assert matched_error(pred, labels, 5, 3)["error"] == pytest.approx(1 - best / 60)
    with pytest.raises(ValueError, match="up to 16 categories and classes, got 20 categories"):
        matched_error(np.array([19]), np.array([1]), 20, 10)
    script = load_script("infogan_error")
    monkeypatch.setattr(script, "c1_error", lambda *a, **k: {**matched_error(pred, labels, 5, 3), "what": "x"})
    script.main(["run/checkpoint.npz"])
    out = capsys.readouterr().out
    assert "category 0..4 (one to one)" in out and " - " in out and "matched to no digit" in out


def test_matching_refuses_bad_input():
    with pytest.raises(ValueError, match=r"pred \(the categories\): label 10 is out of range: 10 classes, 0..9"):
        confusion_matrix(np.array([10]), np.array([1]), 10, 10)
    with pytest.raises(ValueError, match="labels: label -1 is out of range"):
        confusion_matrix(np.array([1]), np.array([-1]), 10, 10)
    with pytest.raises(ValueError, match="integer labels"):
        confusion_matrix(np.array([1]), np.array([1.0]), 10, 10)
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix(np.array([1, 2]), np.array([1]), 10, 10)
    with pytest.raises(ValueError, match="K <= C"):
        best_assignment(np.zeros((3, 2)))


def test_classify_reads_q_in_evaluation_mode():
    gan = frozen(np)
    x = np.random.default_rng(0).random((7, 1, SIDE, SIDE))
    logits, means = gan.encode(x, batch_size=3)
    _, q = gan.D.forward(x, train=False)
    np.testing.assert_allclose(np.concatenate([logits, means], axis=1), q, rtol=1e-12)
    assert np.array_equal(gan.classify(x, batch_size=2), q[:, :K].argmax(axis=1))
    r = gan.c1_error(x.reshape(7, -1), np.zeros(7, np.uint8), n_classes=K)
    assert r["n"] == 7 and 0 <= r["error"] <= 1


def test_the_epoch_log_takes_the_one_to_one_error(monkeypatch):
    """Two categories holding one class: majority forgives it (0 %), one to one does not (2 of 6)."""
    gan = frozen(np)
    monkeypatch.setattr(gan, "classify", lambda x, batch_size=500: np.array([0, 0, 1, 1, 2, 2]))
    labels = np.array([0, 0, 0, 0, 1, 1])
    assert gan.c1_error(np.zeros((6, 1, SIDE, SIDE)), labels, n_classes=K)["error_majority"] == 0
    assert gan.epoch_stats(np.zeros((6, 1, SIDE, SIDE)), labels) == {"c1_error_valid": pytest.approx(2 / 6)}


# --------------------------------------------------------------------------
# codes: drawing, fixing, parsing
# --------------------------------------------------------------------------

def test_sample_inputs_fix_the_codes_given_and_draw_the_rest():
    gan = frozen(np)
    rng = np.random.default_rng(0)
    a = gan.sample_inputs(200, rng)
    assert set(a) == {"z", "c1", "c2", "c3"} and a["z"].shape == (200, NOISE)
    assert set(np.unique(a["c1"])) == set(range(K)) and a["c1"].dtype == np.int64
    assert -1 <= a["c2"].min() < -0.9 and 0.9 < a["c2"].max() <= 1
    edge = gan.sample_inputs(2, rng, codes={"c2": 1000.0, "c3": np.array([-1000.0, 2.0])})     # the limit itself
    assert edge["c2"].tolist() == [1000.0] * 2 and np.isfinite(gan.generate_from(edge)).all()
    b = gan.sample_inputs(50, rng, codes={"c1": 2, "c3": -1.5})
    assert (b["c1"] == 2).all() and (b["c3"] == -1.5).all() and np.unique(b["c2"]).size == 50
    c = gan.sample_inputs(3, rng, codes={"c1": np.array([0, 1, 2])})
    assert c["c1"].tolist() == [0, 1, 2]
    g = gan.latent(b)
    assert g.shape == (50, NOISE + K + CONT)
    np.testing.assert_array_equal(g[:, NOISE:NOISE + K], np.eye(K)[[2] * 50])
    np.testing.assert_array_equal(g[:, -1], -1.5)


@pytest.mark.parametrize("codes_, message", [
    ({"c4": 1.0}, "unknown code 'c4'; this InfoGAN has c1 \\(categorical, an integer in 0..2\\), c2"),
    ({"c1": 3}, "integer in 0..2, got 3"),
    ({"c1": -1}, "integer in 0..2, got -1"),
    ({"c1": 1.5}, "integer in 0..2, got 1.5"),
    ({"c2": "left"}, "must be a number"),
    ({"c2": float("nan")}, "finite"),
    ({"c2": 1e40}, r"code c2 must lie within ±1000 \(it was trained on \[-1, 1\]\), got 1e\+40"),
    ({"c3": -1000.5}, "code c3 must lie within ±1000"),
    ({"c2": np.array([0.0, 2.0, 3e38, 0.0, 1.0])}, "within ±1000 .*, got 3e\\+38"),
    ({"c2": np.zeros(4)}, "4 values for 5 samples"),
    ({"c2": np.zeros((5, 1))}, "must be a number"),
])
def test_bad_codes_are_clear_errors(codes_, message):
    gan = frozen(np)
    with pytest.raises(ValueError, match=message):
        gan.sample_inputs(5, np.random.default_rng(0), codes=codes_)


def test_parse_codes():
    assert parse_codes("c1=3,c2=-1.5") == {"c1": 3.0, "c2": -1.5}
    assert parse_codes(" c3 = 2e-1 ") == {"c3": 0.2}
    for text, message in [("c1", "NAME=VALUE"), ("c1=3,", "NAME=VALUE"), ("=3", "NAME=VALUE"), ("c1=", "NAME=VALUE"),
                          ("c2=abc", "'abc', is not a number"), ("c2=inf", "finite"),
                          ("c1=1,c1=2", "given twice")]:
        with pytest.raises(ValueError, match=message):
            parse_codes(text)


def test_vary_code_holds_everything_else_per_row():
    """Figure 2's layout: along a row only the varied code changes."""
    gan = frozen(np)
    values = np.linspace(-2, 2, 5)
    v = gan.vary_code("c2", values, 3, np.random.default_rng(0), codes={"c1": np.array([2, 0, 1])})
    assert v["z"].shape == (15, NOISE)
    np.testing.assert_array_equal(v["c2"].reshape(3, 5), np.tile(values, (3, 1)))
    assert v["c1"].reshape(3, 5).tolist() == [[2] * 5, [0] * 5, [1] * 5]
    for key in ("z", "c3"):
        rows = v[key].reshape(3, 5, -1)
        assert (rows == rows[:, :1]).all() and not (rows[0] == rows[1]).all()
    grid = gan.grid_inputs(2 * K, seed=0)       # the training grids: c1 along each row
    assert grid["c1"].tolist() == list(range(K)) * 2
    with pytest.raises(ValueError, match="unknown code"):
        gan.vary_code("c9", values, 2, np.random.default_rng(0))


def test_generate_slices_array_codes_batch_by_batch():
    gan = frozen(np)
    c1 = np.arange(7) % K
    a = gan.generate(7, seed=1, batch_size=3, codes={"c1": c1, "c2": 0.5})
    b = gan.generate(7, seed=1, batch_size=7, codes={"c1": c1, "c2": 0.5})
    assert a.shape == (7, 1, SIDE, SIDE)
    assert not np.allclose(a[:3], b[3:6])       # each batch got its own share of c1
    first = gan.generate_from({"z": gan.sample_inputs(3, np.random.default_rng(1))["z"], "c1": c1[:3],
                               "c2": np.full(3, 0.5), "c3": np.zeros(3)})
    assert first.shape == (3, 1, SIDE, SIDE)
    with pytest.raises(ValueError, match="takes no codes"):
        GAN(*tiny_nets(False), nn.SGD(nn.Linear(1, 1), lr=0), nn.SGD(nn.Linear(1, 1), lr=0), 3).sample_inputs(
            2, np.random.default_rng(0), codes={"c1": 1})


def test_variant_arguments_are_checked():
    for kw, message in [(dict(categories=1), "categories"), (dict(continuous=-1), "continuous"),
                        (dict(lambda_cont=-0.1), "lambda_cont"), (dict(sigma=0.0), "sigma")]:
        with pytest.raises(ValueError, match=message):
            frozen(np, **kw)


# --------------------------------------------------------------------------
# end to end on tiny fake data
# --------------------------------------------------------------------------

def tiny_data(n=300):
    rng = np.random.default_rng(0)
    imgs = rng.random((n + 120, 784), dtype=np.float32)
    labels = rng.integers(0, 10, n + 120).astype(np.uint8)
    return Dataset(name="mnist", split="paper", train=imgs[:n], train_labels=labels[:n], valid=imgs[n:n + 60],
                   valid_labels=labels[n:n + 60], test=imgs[n + 60:], test_labels=labels[n + 60:])


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(SCRIPTS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_infogan_preset_resume_sample_codes_and_scripts_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    out = tmp_path / "run"
    args = ["train", "--preset", "infogan", "--device", "cpu", "--quiet", "--out", str(out), "--snapshot-every", "1",
            "--log-every", "1"]
    assert main(args + ["--epochs", "1"]) == 0      # 300 images, batch 128: 2 iterations an epoch
    state = read_checkpoint(out / "checkpoint.npz")
    assert str(state["variant"]) == "infogan" and state["fixed/c1"].tolist() == list(range(10)) * 10
    assert any(k.startswith("D/0.") for k in state) and any(k.startswith("D/1.1.") for k in state)  # trunk, Q
    assert main(["train", "--out", str(out), "--epochs", "2", "--resume", "--device", "cpu", "--quiet"]) == 0
    assert int(read_checkpoint(out / "checkpoint.npz")["iterations"]) == 4
    rows = [r for r in map(__import__("json").loads, open(out / "metrics.jsonl")) if r["kind"] == "window"]
    assert all({"mi_c1", "q_loss", "q_mse", "g_q_loss"} <= set(r) for r in rows) and len(rows) == 4
    # after each epoch, c1's matched error on the validation images, as the checkpoint's Q gives it
    epochs = [r for r in map(__import__("json").loads, open(out / "metrics.jsonl")) if r["kind"] == "epoch"]
    gan, _ = __import__("scratchgan.gan.infogan", fromlist=["x"]).infogan_from_checkpoint(
        str(out / "checkpoint.npz"), "cpu", need_q=True)
    held = tiny_data()
    assert [r["epoch"] for r in epochs] == [1, 2]
    assert epochs[-1]["c1_error_valid"] == gan.c1_error(held.valid, held.valid_labels)["error"]
    npz = tmp_path / "s.npz"
    assert main(["sample", str(out / "checkpoint.npz"), "-n", "7", "--npz", str(npz), "--code", "c1=3,c2=-1.5",
                 "--device", "cpu"]) == 0
    with np.load(npz) as f:
        s = f["samples"]
    assert s.shape == (7, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    assert main(["sample", str(out / "G_epoch_0002.npz"), "--code", "c1=2", "--interpolate",
                 str(tmp_path / "i.png"), "--rows", "2", "--steps", "3", "--device", "cpu"]) == 0
    capsys.readouterr()
    for code, message in [("c1=10", "integer in 0..9, got 10"), ("c7=1", "unknown code 'c7'"),
                          ("c2=x", "is not a number"), ("c2=1e40", "code c2 must lie within ±1000")]:
        assert main(["sample", str(out / "checkpoint.npz"), "--code", code, "--png", str(tmp_path / "b.png"),
                     "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("scratchgan: error:") and message in err, err
    # the error rate and the figures, from the scripts
    error_script = load_script("infogan_error")
    monkeypatch.setattr(error_script, "load_dataset", lambda *a, **k: tiny_data())
    r = error_script.c1_error(str(out / "checkpoint.npz"), device="cpu")
    assert r["n"] == 60 and 0 <= r["error"] <= 1 and sorted(r["mapping"]) == list(range(10))
    with pytest.raises(ValueError, match="holds G alone"):
        error_script.c1_error(str(out / "G_epoch_0002.npz"), device="cpu")
    figures = load_script("infogan_figures")
    figures.main([str(out / "checkpoint.npz"), "--out", str(tmp_path / "figs"), "--rows", "2", "--steps", "4",
                  "--device", "cpu"])
    assert sorted(os.listdir(tmp_path / "figs")) == ["fig2_c1.png", "fig2_c2.png", "fig2_c3.png", "mi_c1.png"]
    # a checkpoint of another variant has no codes
    dc = tmp_path / "mlp"
    assert main(["train", "--preset", "small", "--device", "cpu", "--quiet", "--out", str(dc), "--epochs", "1"]) == 0
    with pytest.raises(ValueError, match="not InfoGAN"):
        figures.main([str(dc / "checkpoint.npz"), "--out", str(tmp_path / "f2"), "--device", "cpu"])
    assert main(["sample", str(dc / "checkpoint.npz"), "--code", "c1=1", "--png", str(tmp_path / "d.png"),
                 "--device", "cpu"]) == 2
    assert "takes no codes" in capsys.readouterr().err
