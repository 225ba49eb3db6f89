"""BatchSplit: a network run on slices of each batch in threads equals the network (issue 15)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from scratchgan import nn
from scratchgan.models.wgan_conv import build_critic, build_generator
from scratchgan.nn import fast
from scratchgan.nn.batch_split import BatchSplit, why_not_split
from scratchgan.nn.second_order import gradient_penalty, penalty_backward, r1_penalty

F64 = np.float64


def pair(net, workers):
    """The network and a BatchSplit around an identical copy of it."""
    return net, BatchSplit(copy.deepcopy(net), workers)


def grads(module):
    return {k: g.copy() for k, g in module.gradients().items()}


def assert_close(a, b, what):
    scale = max(1e-300, float(np.abs(a).max()))
    err = float(np.abs(np.asarray(a) - np.asarray(b)).max()) / scale
    assert err < 1e-12, f"{what}: relative difference {err:.2e}"


def tanh_conv_critic(seed=0):
    """A small critic with a smooth activation (curvature seeds in the penalty) and a transposed convolution."""
    kw = dict(init="normal", std=0.5, dtype=F64)
    return nn.Sequential([nn.Conv2d(1, 3, 3, stride=2, padding=1, rng=seed, **kw), nn.Tanh(),
                          nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, rng=seed + 1, **kw), nn.Sigmoid(),
                          nn.Flatten(), nn.Linear(2 * 6 * 6, 1, rng=seed + 2, **kw)])


NETS = {
    "wgan-gp critic": (lambda: build_critic(dim=4, rng=0, dtype=F64), (1, 28, 28)),
    "wgan-gp generator": (lambda: build_generator(noise_dim=8, dim=4, rng=0, dtype=F64), (8,)),
    "tanh critic": (tanh_conv_critic, (1, 6, 6)),
}


@pytest.mark.parametrize("name", list(NETS))
@pytest.mark.parametrize("workers,m", [(2, 8), (3, 7), (2, 1), (4, 3)])
def test_forward_and_backward_equal_the_network(name, workers, m):
    build, shape = NETS[name]
    net, split = pair(build(), workers)
    x = np.random.default_rng(m).standard_normal((m,) + shape)
    y, y_split = net.forward(x), split.forward(x)
    assert_close(y, y_split, "output")
    dy = np.random.default_rng(m + 1).standard_normal(y.shape)
    for rounds in (1, 2):  # gradients accumulate over two backward passes, as the module's do
        dx, dx_split = net.backward(dy), split.backward(dy)
        assert_close(dx, dx_split, "input gradient")
        ref, got = grads(net), grads(split)
        assert set(ref) == set(got)
        for k in ref:
            assert_close(ref[k], got[k], f"{k} after {rounds} backward passes")
    split.zero_grad()   # one more pass then gives one pass's gradients
    split.forward(x)
    split.backward(dy)
    net.zero_grad()
    net.backward(dy)
    for k, g in grads(net).items():
        assert_close(g, grads(split)[k], f"{k} after zero_grad")


def test_tuple_inputs_and_outputs():
    """A two-input network (cGAN's G) and a two-headed one (InfoGAN's D and Q) split and join element-wise."""
    kw = dict(init="normal", std=0.5, dtype=F64)
    two_in = nn.Sequential([nn.Parallel([nn.Linear(3, 4, rng=0, **kw), nn.Linear(2, 4, rng=1, **kw)]), nn.Concat(),
                            nn.Linear(8, 1, rng=2, **kw)])
    two_out = nn.Sequential([nn.Linear(3, 5, rng=3, **kw), nn.Tanh(),
                             nn.Fork([nn.Linear(5, 1, rng=4, **kw), nn.Linear(5, 2, rng=5, **kw)])])
    r = np.random.default_rng(0)
    net, split = pair(two_in, 2)
    xs = (r.standard_normal((5, 3)), r.standard_normal((5, 2)))
    assert_close(net.forward(xs), split.forward(xs), "two inputs")
    dy = r.standard_normal((5, 1))
    for a, b in zip(net.backward(dy), split.backward(dy)):
        assert_close(a, b, "two input gradients")
    net, split = pair(two_out, 3)
    x = r.standard_normal((7, 3))
    for a, b in zip(net.forward(x), split.forward(x)):
        assert_close(a, b, "two outputs")
    dys = (r.standard_normal((7, 1)), r.standard_normal((7, 2)))
    assert_close(net.backward(dys), split.backward(dys), "input gradient of two heads")
    for k, g in grads(net).items():
        assert_close(g, grads(split)[k], k)


@pytest.mark.parametrize("name", ["wgan-gp critic", "tanh critic"])
@pytest.mark.parametrize("penalty", [lambda g: gradient_penalty(g, 10.0), lambda g: r1_penalty(g, 10.0)],
                         ids=["gp", "r1"])
def test_gradient_penalty_passes_equal_the_network(name, penalty):
    """The three second-order passes run per slice; the penalty's seed comes from the whole batch."""
    build, shape = NETS[name]
    net, split = pair(build(), 2)
    x = np.random.default_rng(3).standard_normal((5,) + shape)
    (p, g, dx), (p2, g2, dx2) = (penalty_backward(D, x, penalty, input_grad=True) for D in (net, split))
    assert_close(p, p2, "penalty")
    assert_close(g, g2, "input gradient g")
    assert_close(dx, dx2, "the penalty's input gradient")
    ref, got = grads(net), grads(split)
    assert max(float(np.abs(r).max()) for r in ref.values()) > 0   # the penalty reaches the weights
    for k in ref:   # (a piecewise-linear critic's biases get none: compared to the network's, not to 0)
        if float(np.abs(ref[k]).max()) > 0:
            assert_close(ref[k], got[k], f"the penalty's gradient of {k}")
        else:
            assert float(np.abs(got[k]).max()) < 1e-14, k


def test_one_set_of_weights():
    """Same names, the same arrays: an optimiser or a checkpoint cannot tell the wrapper from the network."""
    net = build_critic(dim=4, rng=0, dtype=F64)
    split = BatchSplit(net, 2)
    assert [k for k, _, _ in split.named_parameters()] == [k for k, _, _ in net.named_parameters()]
    for (_, p, g), (_, p2, g2) in zip(split.named_parameters(), net.named_parameters()):
        assert p is p2 and g is g2
    for rep in split._replicas[1:]:
        for (_, p, g), (_, p2, g2) in zip(rep.named_parameters(), net.named_parameters()):
            assert p is p2 and g is not g2
    assert split.n_params == net.n_params
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28))
    state = {k: v + 1 for k, v in net.state_dict().items()}
    split.load_state_dict(state)
    before = net.forward(x)
    opt = nn.Adam(split, lr=0.1)
    split.zero_grad()
    split.backward(split.forward(x))
    opt.step()   # through the wrapper, on the network's arrays: every replica sees the new weights
    assert not np.allclose(net.forward(x), before)
    assert_close(net.forward(x), split.forward(x), "after a step")


def test_networks_that_mix_the_batch_are_refused():
    bn = nn.Sequential([nn.Linear(3, 4, rng=0), nn.BatchNorm1d(4)])
    drop = fast.Sequential([fast.Linear(3, 4, rng=0), fast.Dropout(0.5)])
    for net, needle in ((bn, "BatchNorm1d"), (drop, "random")):
        assert needle in why_not_split(net)
        with pytest.raises(ValueError, match="cannot split this network over its batch") as info:
            BatchSplit(net, 2)
        assert needle in str(info.value)
    assert why_not_split(build_critic(dim=4, rng=0)) is None
    with pytest.raises(ValueError, match="workers"):
        BatchSplit(build_critic(dim=4, rng=0), 0)


def test_an_error_in_a_slice_reaches_the_caller_and_the_wrapper_still_works():
    net, split = pair(build_critic(dim=4, rng=0, dtype=F64), 2)
    with pytest.raises(ValueError, match="expected input of shape"):
        split.forward(np.zeros((4, 2, 28, 28)))
    x = np.random.default_rng(0).standard_normal((4, 1, 28, 28))
    assert_close(net.forward(x), split.forward(x), "after an error")


def test_a_gpu_is_refused(monkeypatch):
    from scratchgan import backend
    from scratchgan.nn import batch_split
    from scratchgan.presets import PRESETS, build_gan

    split = BatchSplit(build_critic(dim=4, rng=0), 2)
    monkeypatch.setattr(batch_split, "get_device", lambda name: backend.Device("gpu"))  # as if CuPy were here
    with pytest.raises(ValueError, match="BatchSplit runs threads on the CPU"):
        split.to("gpu")
    monkeypatch.setattr("scratchgan.presets.get_device", lambda name: backend.Device("gpu"))
    with pytest.raises(ValueError, match="batch_split is for the CPU"):
        build_gan(PRESETS["wgan-gp"], x_shape=(1, 28, 28), batch_split=2, device="gpu")
    for bad in (0, 2.5, "2", True):
        with pytest.raises(ValueError, match="batch_split must be a positive integer"):
            build_gan(PRESETS["wgan-gp"], x_shape=(1, 28, 28), batch_split=bad)


def test_the_slices_run_in_their_own_threads():
    """Not the module called once: each replica gets its rows, on a thread of its own, all
    at the same time (each slice waits at a barrier until the three have started: slices run
    one after another on one thread would never get past it)."""
    import threading

    net = build_critic(dim=4, rng=0, dtype=F64)
    split = BatchSplit(net, 3)
    seen, together = [], threading.Barrier(3, timeout=10)

    def watched(x, train=True, f=None):
        seen.append((len(x), threading.get_ident()))
        together.wait()
        return f(x, train)
    for rep in split._replicas:
        rep.forward = lambda x, train=True, f=rep.forward: watched(x, train, f)
    split.forward(np.zeros((8, 1, 28, 28)))
    assert sorted(n for n, _ in seen) == [2, 3, 3]
    assert len({t for _, t in seen}) == 3 and threading.get_ident() in {t for _, t in seen}


def test_a_wrong_dy_is_refused_before_any_gradient_moves():
    net, split = pair(build_critic(dim=4, rng=0, dtype=F64), 2)
    split.forward(np.random.default_rng(0).standard_normal((8, 1, 28, 28)))
    for rows in (7, 10):
        with pytest.raises(ValueError, match=rf"batch of 8, got an array of shape \({rows}, 1\)"):
            split.backward(np.ones((rows, 1)))
    assert all(float(np.abs(g).max()) == 0 for g in split.gradients().values())
    with pytest.raises(ValueError, match="with a batch axis first"):
        split.forward(3.0)


def test_zero_grad_clears_a_pass_an_error_stopped():
    """A slice that fails after adding its gradients leaves them in its replica; zero_grad removes them."""
    net, split = pair(build_critic(dim=4, rng=0, dtype=F64), 2)
    x = np.random.default_rng(0).standard_normal((6, 1, 28, 28))
    dy = np.random.default_rng(1).standard_normal((6, 1))
    rep = split._replicas[1]
    backward = rep.backward

    def failing(d, **kw):
        backward(d, **kw)
        raise RuntimeError("stopped")
    rep.backward = failing
    split.forward(x)
    with pytest.raises(RuntimeError, match="stopped"):
        split.backward(dy)
    del rep.backward
    split.zero_grad()
    split.forward(x)
    split.backward(dy)
    net.forward(x)
    net.backward(dy)
    for k, g in grads(net).items():
        assert_close(g, grads(split)[k], k)


def test_pass_through_and_no_input_gradient():
    """``param_grads=False`` (G's step through a fixed D) and ``need_dx=False`` (D on data) as the module does."""
    net, split = pair(build_critic(dim=4, rng=0, dtype=F64), 2)
    x = np.random.default_rng(0).standard_normal((5, 1, 28, 28))
    dy = np.random.default_rng(1).standard_normal((5, 1))
    net.forward(x)
    split.forward(x)
    assert_close(net.backward(dy, param_grads=False), split.backward(dy, param_grads=False), "dx")
    assert all(float(np.abs(g).max()) == 0 for g in split.gradients().values())
    assert net.backward(dy, need_dx=False) is None and split.backward(dy, need_dx=False) is None
    for k, g in grads(net).items():
        assert_close(g, grads(split)[k], k)


def test_a_wgan_gp_run_equals_the_unsplit_run():
    """The preset's networks through three generator iterations (15 critic steps with the penalty), float32."""
    from scratchgan.presets import PRESETS, build_gan

    data = np.random.default_rng(0).random((6 * 64, 1, 28, 28), dtype=np.float32)

    def run(split):
        gan = build_gan(PRESETS["wgan-gp"], x_shape=(1, 28, 28), steps_per_epoch=10, seed=0, batch_split=split)
        assert isinstance(gan.D, BatchSplit) == bool(split)
        it = iter(range(100))
        for _ in range(3):
            gan.iteration(lambda: data[(next(it) % 6) * 64:][:64])
        return {**gan.G.state_dict(), **{f"D.{k}": v for k, v in gan.D.state_dict().items()}}

    ref, got = run(None), run(2)
    for k in ref:
        scale = float(np.abs(ref[k]).max()) + 1e-3
        assert float(np.abs(ref[k] - got[k]).max()) < 1e-4 * scale, k


def test_presets_with_batch_norm_or_dropout_are_refused_by_name():
    from scratchgan.presets import PRESETS, check_batch_split

    check_batch_split(PRESETS["wgan-gp"])
    with pytest.raises(ValueError, match="cannot run on slices of a batch") as info:
        check_batch_split(PRESETS["dcgan"])
    assert "BatchNorm" in str(info.value) and "'s G" in str(info.value)


def test_train_batch_split_from_the_command_line(tmp_path, monkeypatch, capsys):
    """``train --batch-split 2``: the same run to rounding, BLAS at one thread, said at the start."""
    import scratchgan.data
    from scratchgan.cli import main
    from scratchgan.training.checkpoint import read_checkpoint
    from scratchgan.training.trainer import Trainer
    from test_second_order import tiny_data

    monkeypatch.setattr(scratchgan.data, "load_dataset", lambda *a, **k: tiny_data())
    trained, run = [], Trainer.run
    monkeypatch.setattr(Trainer, "run", lambda self: trained.append(self) or run(self))
    runs = {}
    for split in (None, 2):
        out = tmp_path / f"run{split}"
        extra = ["--batch-split", str(split)] if split else ["--threads", "1"]
        assert main(["train", "--preset", "wgan-gp", "--device", "cpu", "--epochs", "1", "--out", str(out)]
                    + extra) == 0
        runs[split] = read_checkpoint(out / "checkpoint.npz")
        gan = trained[-1].gan   # the trainer got the split, not only the log line
        assert isinstance(gan.G, BatchSplit) == isinstance(gan.D, BatchSplit) == bool(split)
        err = capsys.readouterr().err
        assert ("each batch in 2 slices on 2 threads, one BLAS thread each" in err) == bool(split), err
    for k, v in runs[None].items():
        if k.startswith(("G/", "D/")):
            assert np.allclose(v, runs[2][k], rtol=1e-4, atol=1e-6), k


def test_train_batch_split_refuses_batch_norm_in_one_line(tmp_path, monkeypatch, capsys):
    import scratchgan.data
    from scratchgan.cli import main

    monkeypatch.setattr(scratchgan.data, "load_dataset", None)  # must not be reached
    assert main(["train", "--preset", "dcgan", "--device", "cpu", "--batch-split", "2",
                 "--out", str(tmp_path / "run")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--batch-split with the dcgan preset" in lines[0] and "BatchNorm" in lines[0]
    assert not (tmp_path / "run").exists()
