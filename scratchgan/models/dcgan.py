"""DCGAN (Radford, Metz & Chintala 2016) at MNIST scale, as the paper's guidelines build it.

The paper's guidelines for stable deep convolutional GANs (its §3; docs/dcgan.md
§1–§2), each followed here (the choices at 28×28: docs/dcgan.md §4):

* no pooling: **strided convolutions** in D and **fractionally strided
  (transposed) convolutions** in G;
* **batch normalisation** in both networks, *except* G's output layer and D's
  input layer;
* no fully connected hidden layers: G projects z with one matrix product and
  reshapes it to feature maps; D flattens its last feature maps into one logit;
* **ReLU** in G (its output layer excepted), **LeakyReLU 0.2** in D;
* weights from **N(0, 0.02)**; trained with **Adam, learning rate 2e-4,
  β1 = 0.5**, minibatches of **128** (the preset, :mod:`scratchgan.presets`).

At 28×28 (the usual MNIST scale, as in the authors' MNIST code)::

    G: z (100) → Linear 128·7·7 → BN → ReLU → (128, 7, 7)
       → ConvTranspose 4×4 s2 p1 → 64 → BN → ReLU          14×14
       → ConvTranspose 4×4 s2 p1 → 1 → Sigmoid             28×28, in [0, 1]
    D: (1, 28, 28) → Conv 4×4 s2 p1 → 64 → LeakyReLU 0.2    14×14 (no BN: the input layer)
       → Conv 4×4 s2 p1 → 128 → BN → LeakyReLU 0.2          7×7
       → Flatten → Linear 1 (a logit)

The paper's LSUN generator has 1024 → 512 → 256 → 128 channels at 64×64; at
28×28 two up-samplings from 7×7 suffice, with the widths scaled down (128, 64:
``g_channels``, ``d_channels``) to train on a 2-core CPU. Kernels of 4 with
stride 2 and padding 1 double (or halve) the side exactly. The output is a
sigmoid on [0, 1], as in the authors' MNIST code, so the data and every metric
stay on [0, 1]; the paper's default is tanh on [−1, 1]. Linear and
convolution layers followed by batch normalisation keep their bias (BN's β
makes it redundant, but it costs nothing and matches PyTorch's defaults).

**The authors' MNIST layer plan.** The paper's guidelines drop fully
connected hidden layers, but the DCGAN authors' own MNIST networks
(``Newmu/dcgan_code`` ``mnist/train_cond_dcgan.py``, docs/dcgan.md §3, §5) keep
one of 1024 units on each side; ``fc_units=1024`` adds it (the ``dcgan-fc``
preset; the same plan as the conditional ``cdcgan-fc`` without the label)::

    G: z → Linear 1024 → BN → ReLU → Linear 128·7·7 → BN → ReLU → …          as above
    D: … → Flatten → Linear 1024 → BN → LeakyReLU 0.2 → Linear 1
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build", "build_generator", "build_discriminator"]


def build_generator(*, noise_dim=100, g_channels=(128, 64), side=28, out_channels=1, std=0.02, rng=None,
                    dtype=np.float32, fast_layers=True, fc_units=None):
    """G: noise ``(m, noise_dim)`` → images ``(m, out_channels, side, side)`` in [0, 1].

    ``g_channels = (c0, c1, …)``: the projection gives ``c0`` maps of
    ``side / 2^len`` pixels; each transposed convolution doubles the side and
    moves to the next width, the last one to ``out_channels``. ``fc_units``:
    a hidden ``Linear fc_units → BN → ReLU`` before the projection.
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    n_up = len(g_channels)
    start = side // 2 ** n_up
    if start * 2 ** n_up != side:
        raise ValueError(f"side {side} is not a multiple of 2^{n_up} (one doubling per entry of g_channels)")
    c0, layers, n_in = g_channels[0], [], noise_dim
    if fc_units:
        layers += [L.Linear(n_in, fc_units, **kw), L.BatchNorm1d(fc_units, dtype=dtype), L.ReLU()]
        n_in = fc_units
    layers += [L.Linear(n_in, c0 * start * start, **kw), L.BatchNorm1d(c0 * start * start, dtype=dtype),
               L.ReLU(), L.Reshape(c0, start, start)]
    widths = list(g_channels) + [out_channels]
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(L.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, **kw))
        if i < n_up - 1:  # no BN on G's output layer
            layers += [L.BatchNorm2d(c_out, dtype=dtype), L.ReLU()]
    layers.append(L.Sigmoid())
    return L.Sequential(layers)


def build_discriminator(*, d_channels=(64, 128), side=28, in_channels=1, std=0.02, slope=0.2, rng=None,
                        dtype=np.float32, fast_layers=True, fc_units=None):
    """D: images ``(m, in_channels, side, side)`` → logits ``(m, 1)``.

    Each strided convolution halves the side; batch normalisation after every
    one but the first (D's input layer). ``fc_units``: a hidden
    ``Linear fc_units → BN → LeakyReLU`` before the logit.
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    layers, c_in, s = [], in_channels, side
    for i, c_out in enumerate(d_channels):
        layers.append(L.Conv2d(c_in, c_out, 4, stride=2, padding=1, **kw))
        if i > 0:  # no BN on D's input layer
            layers.append(L.BatchNorm2d(c_out, dtype=dtype))
        layers.append(L.LeakyReLU(slope))
        c_in, s = c_out, (s + 2 - 4) // 2 + 1
    layers.append(L.Flatten())
    n_in = c_in * s * s
    if fc_units:
        layers += [L.Linear(n_in, fc_units, **kw), L.BatchNorm1d(fc_units, dtype=dtype), L.LeakyReLU(slope)]
        n_in = fc_units
    layers.append(L.Linear(n_in, 1, **kw))
    return L.Sequential(layers)


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, g_channels=(128, 64),
          d_channels=(64, 128), std=0.02, slope=0.2, fc_units=None):
    """``{"G": G, "D": D}`` for images of ``x_shape = (C, side, side)``.

    ``pixel_mean`` is not used (the DCGAN initialisation is N(0, std²) everywhere).
    """
    if len(x_shape) != 3 or x_shape[1] != x_shape[2]:
        raise ValueError(f"DCGAN works on square images (C, side, side), got sample shape {tuple(x_shape)}")
    c, side = int(x_shape[0]), int(x_shape[1])
    G = build_generator(noise_dim=noise_dim, g_channels=tuple(g_channels), side=side, out_channels=c, std=std,
                        rng=rng, fast_layers=fast_layers, fc_units=fc_units)
    D = build_discriminator(d_channels=tuple(d_channels), side=side, in_channels=c, std=std, slope=slope, rng=rng,
                            fast_layers=fast_layers, fc_units=fc_units)
    return {"G": G, "D": D}


build.layout = "image"
