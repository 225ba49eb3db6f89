"""InfoGAN's MNIST networks (Chen et al. 2016, Appendix C), D and Q on one trunk.

The paper's Appendix C gives, for MNIST (docs/infogan.md §2)::

    G: [z (62), onehot c1 (10), c2, c3] (74)
       → Linear 1024 → BN → ReLU
       → Linear 7·7·128 → BN → ReLU → (128, 7, 7)
       → ConvTranspose 4×4 s2 → 64 → BN → ReLU            14×14
       → ConvTranspose 4×4 s2 → 1 → Sigmoid               28×28, in [0, 1]

    trunk (shared by D and Q):
       (1, 28, 28) → Conv 4×4 s2 → 64 → LeakyReLU         14×14 (no BN: the input layer)
       → Conv 4×4 s2 → 128 → BN → LeakyReLU               7×7
       → Flatten → Linear 1024 → BN → LeakyReLU
    D head: Linear 1                                       (a logit)
    Q head: Linear 128 → BN → LeakyReLU → Linear 10 + 2    (c1's logits, the means of c2, c3)

D is built as ``Sequential([trunk, Fork([d_head, q_head])])``: one forward
gives ``(logit, q)``, one backward takes ``(∂L/∂logit, ∂L/∂q)`` and the trunk
receives the *sum* of both heads' gradients (:class:`scratchgan.nn.Fork`).
Because Q lives inside D, D's optimiser steps on the trunk, D's head and Q's
head together — as the authors' code does, whose Q variables sit in D's scope
(docs/infogan.md §3).

Choices the paper leaves open, taken from the authors' code
(``openai/InfoGAN``, docs/infogan.md §2): padding 1 so each 4×4 stride-2
layer halves or doubles the side exactly (TensorFlow's "SAME"); weights from
N(0, 0.02) (the code truncates the convolutions' normal at two standard
deviations; we do not), biases zero; BatchNorm ε = 1e-5 with running
averages moving by 0.1 per step (the code's decay 0.9), scales starting at 1
(the code draws them from N(1, 0.02)). The leak of the
LeakyReLU is ``slope``: the paper says 0.1, the code's default is 0.01.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build", "build_generator", "build_discriminator", "heads"]


def _layers(fast_layers):
    return fast if fast_layers else nn


def build_generator(*, latent_dim=74, fc=1024, channels=(128, 64), side=28, out_channels=1, std=0.02, rng=None,
                    dtype=np.float32, fast_layers=True):
    """G: latent ``(m, latent_dim)`` (noise and codes, concatenated) → images
    ``(m, out_channels, side, side)`` in [0, 1]. Two transposed convolutions
    double ``side / 4`` twice."""
    L = _layers(fast_layers)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    if side % 4:
        raise ValueError(f"InfoGAN's G doubles the side twice: side {side} is not a multiple of 4")
    c0, c1 = channels
    s = side // 4
    return L.Sequential([
        L.Linear(latent_dim, fc, **kw), L.BatchNorm1d(fc, dtype=dtype), L.ReLU(),
        L.Linear(fc, c0 * s * s, **kw), L.BatchNorm1d(c0 * s * s, dtype=dtype), L.ReLU(), L.Reshape(c0, s, s),
        L.ConvTranspose2d(c0, c1, 4, stride=2, padding=1, **kw), L.BatchNorm2d(c1, dtype=dtype), L.ReLU(),
        L.ConvTranspose2d(c1, out_channels, 4, stride=2, padding=1, **kw), L.Sigmoid(),
    ])


def build_discriminator(*, code_dim=12, fc=1024, q_hidden=128, channels=(64, 128), side=28, in_channels=1,
                        std=0.02, slope=0.1, rng=None, dtype=np.float32, fast_layers=True):
    """D and Q on a shared trunk: images ``(m, in_channels, side, side)`` →
    ``(logits (m, 1), q (m, code_dim))``. ``q``'s first columns are the
    categorical code's logits, the rest the continuous codes' means (the
    variant splits them, :class:`scratchgan.gan.infogan.InfoGAN`)."""
    L = _layers(fast_layers)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    if side % 4:
        raise ValueError(f"InfoGAN's D halves the side twice: side {side} is not a multiple of 4")
    c0, c1 = channels
    s = side // 4
    trunk = L.Sequential([
        L.Conv2d(in_channels, c0, 4, stride=2, padding=1, **kw), L.LeakyReLU(slope),
        L.Conv2d(c0, c1, 4, stride=2, padding=1, **kw), L.BatchNorm2d(c1, dtype=dtype), L.LeakyReLU(slope),
        L.Flatten(), L.Linear(c1 * s * s, fc, **kw), L.BatchNorm1d(fc, dtype=dtype), L.LeakyReLU(slope),
    ])
    d_head = L.Linear(fc, 1, **kw)
    q_head = L.Sequential([L.Linear(fc, q_hidden, **kw), L.BatchNorm1d(q_hidden, dtype=dtype), L.LeakyReLU(slope),
                           L.Linear(q_hidden, code_dim, **kw)])
    return L.Sequential([trunk, L.Fork([d_head, q_head])])


def heads(D):
    """``(trunk, d_head, q_head)`` of a D from :func:`build_discriminator`."""
    trunk, fork = D.layers
    return trunk, fork.layers[0], fork.layers[1]


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, categories=10, continuous=2,
          fc=1024, q_hidden=128, g_channels=(128, 64), d_channels=(64, 128), std=0.02, slope=0.1):
    """``{"G": G, "D": D}`` for images of ``x_shape = (C, side, side)``.

    G takes ``noise_dim + categories + continuous`` inputs (the noise, the
    one-hot categorical code, the continuous codes); Q outputs
    ``categories + continuous`` numbers. ``pixel_mean`` is not used.
    """
    if len(x_shape) != 3 or x_shape[1] != x_shape[2]:
        raise ValueError(f"InfoGAN works on square images (C, side, side), got sample shape {tuple(x_shape)}")
    if int(categories) < 2 or int(continuous) < 0:
        raise ValueError(f"InfoGAN needs a categorical code of >= 2 categories and >= 0 continuous codes, "
                         f"got categories={categories!r}, continuous={continuous!r}")
    c, side = int(x_shape[0]), int(x_shape[1])
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    code_dim = int(categories) + int(continuous)
    G = build_generator(latent_dim=int(noise_dim) + code_dim, fc=fc, channels=tuple(g_channels), side=side,
                        out_channels=c, std=std, rng=rng, fast_layers=fast_layers)
    D = build_discriminator(code_dim=code_dim, fc=fc, q_hidden=q_hidden, channels=tuple(d_channels), side=side,
                            in_channels=c, std=std, slope=slope, rng=rng, fast_layers=fast_layers)
    return {"G": G, "D": D}


build.layout = "image"
