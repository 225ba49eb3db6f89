"""The WGAN-GP authors' MNIST networks (``igul222/improved_wgan_training``
``gan_mnist.py``), without normalisation, as docs/wgan.md §3 describes them.

Their critic is piecewise linear (convolutions, LeakyReLU, a linear logit) and
normalisation-free, so the gradient penalty's second-order pass is exact and
needs no curvature terms::

    D: (1, 28, 28) → Conv 5×5 s2 p2 → DIM → LeakyReLU 0.2              14×14
       → Conv 5×5 s2 p2 → 2·DIM → LeakyReLU 0.2                          7×7
       → Conv 5×5 s2 p2 → 4·DIM → LeakyReLU 0.2                          4×4
       → Flatten → Linear 4·4·4·DIM → 1                                  (a critic value)

    G: z → Linear 4·DIM·7·7 → ReLU → (4·DIM, 7, 7)
       → ConvTranspose 4×4 s2 p1 → 2·DIM → ReLU                         14×14
       → ConvTranspose 4×4 s2 p1 → 1 → Sigmoid                          28×28, in [0, 1]

The authors' generator starts at 4×4, up-samples with 5×5 kernels to 8×8,
crops to 7×7 and goes on to 28×28 through three transposed convolutions; this
G starts at 7×7 and doubles twice with 4×4 kernels (DCGAN's shapes), which
needs no crop. DIM is 64 in their code; 32 by default here, for the CPU.
Initialisation: He normal, as theirs.
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build", "build_generator", "build_critic"]


def build_critic(*, dim=32, side=28, in_channels=1, slope=0.2, rng=None, dtype=np.float32, fast_layers=True):
    """The critic: images (m, C, side, side) → values (m, 1); no normalisation."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    layers, c_in, s = [], in_channels, side
    for c_out in (dim, 2 * dim, 4 * dim):
        layers += [L.Conv2d(c_in, c_out, 5, stride=2, padding=2, rng=rng, dtype=dtype), L.LeakyReLU(slope)]
        c_in, s = c_out, (s + 4 - 5) // 2 + 1
    layers += [L.Flatten(), L.Linear(c_in * s * s, 1, init="he", rng=rng, dtype=dtype)]
    return L.Sequential(layers)


def build_generator(*, noise_dim=128, dim=32, out_channels=1, rng=None, dtype=np.float32, fast_layers=True):
    """G: z (m, noise_dim) → images (m, out_channels, 28, 28) in [0, 1]; no normalisation."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return L.Sequential([
        L.Linear(noise_dim, 4 * dim * 7 * 7, init="he", rng=rng, dtype=dtype), L.ReLU(), L.Reshape(4 * dim, 7, 7),
        L.ConvTranspose2d(4 * dim, 2 * dim, 4, stride=2, padding=1, rng=rng, dtype=dtype), L.ReLU(),
        L.ConvTranspose2d(2 * dim, out_channels, 4, stride=2, padding=1, rng=rng, dtype=dtype), L.Sigmoid()])


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, dim=32, slope=0.2):
    """``{"G": G, "D": critic}`` for (C, 28, 28) images; ``pixel_mean`` is not used."""
    if tuple(x_shape[1:]) != (28, 28):
        raise ValueError(f"the WGAN-GP MNIST networks are for (C, 28, 28) images, got {tuple(x_shape)}")
    return {"G": build_generator(noise_dim=noise_dim, dim=dim, out_channels=x_shape[0], rng=rng,
                                 fast_layers=fast_layers),
            "D": build_critic(dim=dim, in_channels=x_shape[0], slope=slope, rng=rng, fast_layers=fast_layers)}


build.layout = "image"
