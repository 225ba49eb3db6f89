"""The fast paths equal plain reference formulas.

* Maxout's running-max forward and compare-with-output backward against the
  textbook ``argmax`` / ``take_along_axis`` / one-hot version; its no-tie
  shortcut against its general first-hit loop.
* One whole training iteration of the paper's model (Algorithm 1, k = 1,
  non-saturating, momentum SGD, dropout) against the same iteration written out
  with plain NumPy formulas, consuming the same random numbers.
* CPU/GPU parity of a whole iteration (skipped without a GPU).
"""

import math

import numpy as np
import pytest

from scratchgan.backend import gpu_available, to_numpy, get_device
from scratchgan.gan import GAN, NoisePrior
from scratchgan.layers import Maxout
from scratchgan.models import build_discriminator, build_generator
from scratchgan.optim import SGD

TOL = {np.float64: 1e-10, np.float32: 1e-4}


def maxout_reference(x, W, b, units, pieces, dy):
    z = (x @ W + b).reshape(len(x), pieces, units)  # piece-major columns
    win = z.argmax(axis=1)
    y = np.take_along_axis(z, win[:, None, :], axis=1)[:, 0, :]
    dz = (dy[:, None, :] * (win[:, None, :] == np.arange(pieces)[:, None])).reshape(len(x), -1)
    return y, x.T @ dz, dz.sum(0), dz @ W.T


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,n_in,units,pieces", [(7, 13, 5, 3), (100, 784, 240, 5), (3, 4, 2, 1)])
def test_maxout_matches_reference(dtype, m, n_in, units, pieces):
    rs = np.random.default_rng(m + pieces)
    layer = Maxout(n_in, units, pieces, init="normal", std=1.0, rng=1, dtype=dtype)
    layer.params["b"][:] = rs.standard_normal(units * pieces)
    x = rs.standard_normal((m, n_in)).astype(dtype)
    dy = rs.standard_normal((m, units)).astype(dtype)
    y = layer.forward(x)
    dx = layer.backward(dy)
    ry, rdW, rdb, rdx = maxout_reference(x, layer.params["W"], layer.params["b"], units, pieces, dy)
    scale = lambda a: max(1.0, float(np.abs(a).max()))  # noqa: E731
    for got, want in ((y, ry), (layer.grads["W"], rdW), (layer.grads["b"], rdb), (dx, rdx)):
        assert np.abs(got - want).max() / scale(want) < TOL[dtype]


def test_maxout_ties_route_to_first_piece_like_argmax():
    layer = Maxout(1, 2, 4, init="zeros", dtype=np.float64)
    # per unit: unit 0 = [1, 3, 3, 0], unit 1 = [2, 2, 2, 2] (ties in both units)
    layer.params["b"][:] = Maxout.from_unit_major(np.array([1.0, 3.0, 3.0, 0.0, 2.0, 2.0, 2.0, 2.0]), 2, 4)
    x = np.zeros((1, 1))
    layer.forward(x)
    layer.backward(np.array([[10.0, 20.0]]))
    want = Maxout.from_unit_major(np.array([0.0, 10, 0, 0, 20, 0, 0, 0]), 2, 4)
    np.testing.assert_array_equal(layer.grads["b"], want)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_maxout_general_routing_equals_the_no_tie_shortcut(dtype, monkeypatch):
    """Without ties, the first-hit loop (used on ties and on the GPU) gives the
    same gradients as the one-pass shortcut."""
    import scratchgan.layers as L

    rs = np.random.default_rng(9)
    layer = Maxout(30, 20, 5, init="normal", std=1.0, rng=2, dtype=dtype)
    x, dy = rs.standard_normal((16, 30)).astype(dtype), rs.standard_normal((16, 20)).astype(dtype)
    layer.forward(x)
    dx = layer.backward(dy)
    fast = [dx, layer.grads["W"].copy(), layer.grads["b"].copy()]
    monkeypatch.setattr(L.np, "count_nonzero", lambda a: -1)  # force the general loop
    layer.forward(x)
    slow = [layer.backward(dy), layer.grads["W"], layer.grads["b"]]
    for a, b in zip(fast, slow):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------
def _small_paper_like(dtype, seed=0):
    rng = np.random.default_rng(seed)
    kw = dict(noise_dim=6, g_hidden=(9, 8), g_irange=0.5, d_units=5, d_pieces=3, d_layers=2,
              d_irange=0.5, d_dropout=(0.2, 0.5, 0.5), dtype=dtype)
    G = build_generator(11, rng=rng, output_bias=0.1, **kw)
    D = build_discriminator(11, rng=rng, **kw)
    return G, D


def _reference_iteration(P, x, rng, m, lr, mu, V):
    """Algorithm 1 (k = 1, non-saturating) with plain formulas.

    ``P``: parameters {"G0W": …}; ``V``: velocities; updated in place.
    Random numbers are drawn in the library's order: D step — noise, then the
    three dropout masks of D's forward on [x; G(z)]; G step — noise, then D's
    three masks on G(z).
    """
    sig = lambda a: 1 / (1 + np.exp(-a))  # noqa: E731  (moderate logits only)
    dt = x.dtype.type
    half = dt(math.sqrt(3.0))

    def G(z):
        h1 = z @ P["G0W"] + P["G0b"]; a1 = np.maximum(h1, 0)
        h2 = a1 @ P["G2W"] + P["G2b"]; a2 = np.maximum(h2, 0)
        h3 = a2 @ P["G4W"] + P["G4b"]; out = sig(h3)
        return out, (z, h1, a1, h2, a2, out)

    def G_back(cache, dout):
        z, h1, a1, h2, a2, out = cache
        dh3 = dout * out * (1 - out)
        g = {"G4W": a2.T @ dh3, "G4b": dh3.sum(0)}
        dh2 = (dh3 @ P["G4W"].T) * (h2 > 0)
        g.update({"G2W": a1.T @ dh2, "G2b": dh2.sum(0)})
        dh1 = (dh2 @ P["G2W"].T) * (h1 > 0)
        g.update({"G0W": z.T @ dh1, "G0b": dh1.sum(0)})
        return g

    def maxout(v, W, b):  # 5 units × 3 pieces, piece-major columns
        z = (v @ W + b).reshape(len(v), 3, 5)
        w = z.argmax(1)
        return np.take_along_axis(z, w[:, None, :], 1)[:, 0, :], w

    def keep(shape, q):  # Bernoulli(q) from 32-bit halves of the raw 64-bit words
        n = math.prod(shape)
        words = rng.bit_generator.random_raw((n + 1) // 2).view(np.uint32)[:n]
        return words.reshape(shape) < round(q * 2**32)

    def D(v):
        masks = [keep(v.shape, 0.8) / dt(0.8)]
        d0 = v * masks[0]
        y1, w1 = maxout(d0, P["D1W"], P["D1b"])
        masks.append(keep(y1.shape, 0.5) / dt(0.5))
        d1 = y1 * masks[1]
        y2, w2 = maxout(d1, P["D3W"], P["D3b"])
        masks.append(keep(y2.shape, 0.5) / dt(0.5))
        d2 = y2 * masks[2]
        return d2 @ P["D5W"] + P["D5b"], (masks, d0, w1, d1, w2, d2)

    def D_back(cache, dlogit):
        masks, d0, w1, d1, w2, d2 = cache
        g = {"D5W": d2.T @ dlogit, "D5b": dlogit.sum(0)}
        dy2 = (dlogit @ P["D5W"].T) * masks[2]
        dz2 = (dy2[:, None, :] * (w2[:, None, :] == np.arange(3)[:, None])).reshape(len(dy2), -1)
        g.update({"D3W": d1.T @ dz2, "D3b": dz2.sum(0)})
        dy1 = (dz2 @ P["D3W"].T) * masks[1]
        dz1 = (dy1[:, None, :] * (w1[:, None, :] == np.arange(3)[:, None])).reshape(len(dy1), -1)
        g.update({"D1W": d0.T @ dz1, "D1b": dz1.sum(0)})
        return g, (dz1 @ P["D1W"].T) * masks[0]

    def momentum(names, grads):
        for k in names:
            V[k] = dt(mu) * V[k] - dt(lr) * grads[k]
            P[k] += V[k]

    # D step: L_D = mean softplus(-a_real) + mean softplus(a_fake)
    z = rng.random((m, 6), dtype=x.dtype) * (2 * half) - half
    fake, _ = G(z)
    logits, cache = D(np.concatenate([x, fake]))
    a_r, a_f = logits[:m], logits[m:]
    dlogit = np.concatenate([-sig(-a_r) / m, sig(a_f) / m])
    gD, _ = D_back(cache, dlogit)
    momentum([k for k in P if k[0] == "D"], gD)
    # G step: L_G = mean softplus(-a_fake), through the *updated* D
    z = rng.random((m, 6), dtype=x.dtype) * (2 * half) - half
    fake, gcache = G(z)
    logits, cache = D(fake)
    _, dfake = D_back(cache, -sig(-logits) / m)
    momentum([k for k in P if k[0] == "G"], G_back(gcache, dfake))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_iteration_matches_plain_formulas(dtype):
    m, lr, mu, seed = 8, 0.1, 0.5, 3
    G, D = _small_paper_like(dtype)
    P = {f"G{k.replace('.', '')}": v.copy() for k, v in G.params.items()}
    P.update({f"D{k.replace('.', '')}": v.copy() for k, v in D.params.items()})
    V = {k: np.zeros_like(v) for k, v in P.items()}
    gan = GAN(G, D, SGD(D, lr=lr, momentum=mu), SGD(G, lr=lr, momentum=mu), NoisePrior(6),
              loss="non-saturating", k=1, seed=seed, device="cpu")
    xs = [np.random.default_rng(i).random((m, 11)).astype(dtype) for i in range(3)]
    rng = gan.rng  # the reference replays the GAN's own stream from the same state
    ref_rng = np.random.Generator(type(rng.bit_generator)())
    ref_rng.bit_generator.state = rng.bit_generator.state
    for x in xs:
        gan.iteration(lambda _m, x=x: x, m)
        _reference_iteration(P, x, ref_rng, m, lr, mu, V)
    for name, p in list(G.params.items()) + list(D.params.items()):
        key = ("G" if name in G.params and p is G.params[name] else "D") + name.replace(".", "")
        want = P[key]
        err = np.abs(p - want).max() / max(1.0, float(np.abs(want).max()))
        assert err < TOL[dtype], (key, err)


# ---------------------------------------------------------------------------
@pytest.mark.skipif(not gpu_available(), reason="needs CuPy and a CUDA device")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_iteration_cpu_gpu_parity(dtype):
    """Same parameters, data, noise and dropout masks (all drawn on the host):
    one iteration on NumPy and on CuPy agree to rounding."""
    import cupy

    from helpers import HostMaskRng

    results = []
    for device in ("cpu", "gpu"):
        dev = get_device(device)
        G, D = _small_paper_like(dtype)
        gan = GAN(G, D, SGD(D, lr=0.1, momentum=0.5), SGD(G, lr=0.1, momentum=0.5), NoisePrior(6),
                  loss="non-saturating", k=1, seed=0, device=dev)
        # the same host stream for noise and masks on either device
        gan.rng = HostMaskRng(42, np if device == "cpu" else cupy)
        D.set_rng(gan.rng)
        x = dev.asarray(np.random.default_rng(1).random((8, 11)).astype(dtype))
        for _ in range(2):
            gan.iteration(lambda _m: x, 8)
        results.append({**{"G" + k: to_numpy(v) for k, v in G.params.items()},
                        **{"D" + k: to_numpy(v) for k, v in D.params.items()}})
    for k in results[0]:
        np.testing.assert_allclose(results[1][k], results[0][k], rtol=0, atol=TOL[dtype] * 10, err_msg=k)
