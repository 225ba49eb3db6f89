"""A conditional DCGAN at 28×28: the dcgan model with the label beside every layer's input.

The networks of :mod:`scratchgan.models.dcgan` (same widths, kernels, batch
normalisation, activations and N(0, 0.02) weights), conditioned as the DCGAN
authors' own MNIST code conditions its nets (``Newmu/dcgan_code``
``mnist/train_cond_dcgan.py``, docs/cgan.md §5): the one-hot label is
concatenated to the input of *every* layer with weights — to a vector as its
10 entries, to feature maps as 10 constant *label maps*
(:class:`~scratchgan.models.conditioning.LabelConcat`)::

    G: [z (100), y (10)] → Linear 128·7·7 → BN → ReLU → (128, 7, 7)
       → [h, y maps] (138, 7, 7)  → ConvTranspose 4×4 s2 p1 → 64 → BN → ReLU      14×14
       → [h, y maps] (74, 14, 14) → ConvTranspose 4×4 s2 p1 → 1 → Sigmoid         28×28, in [0, 1]
    D: [x, y maps] (11, 28, 28)   → Conv 4×4 s2 p1 → 64 → LeakyReLU 0.2           14×14 (no BN: input layer)
       → [h, y maps] (74, 14, 14) → Conv 4×4 s2 p1 → 128 → BN → LeakyReLU 0.2     7×7
       → Flatten → [h, y] (6282)  → Linear 1 (a logit)

The authors' conditional MNIST nets have one more fully connected layer of
1024 units in each of G and D; ``fc_units=1024`` adds it (the ``cdcgan-fc``
preset), with batch normalisation and the label before it as everywhere::

    G: [z, y] (110) → Linear 1024 → BN → ReLU → [h, y] (1034) → Linear 128·7·7 → …   as above
    D: … → Flatten → [h, y] (6282) → Linear 1024 → BN → LeakyReLU 0.2 → [h, y] (1034) → Linear 1

What still differs from the authors' nets (5×5 kernels, no biases) is what
:mod:`~scratchgan.models.dcgan` already chose for 28×28; the presets list it
(:data:`scratchgan.presets.PRESETS` ``"cdcgan"`` and ``"cdcgan-fc"``).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast
from .conditioning import LabelConcat, LabelSequential

__all__ = ["build", "build_generator", "build_discriminator"]


def build_generator(*, noise_dim=100, n_classes=10, g_channels=(128, 64), side=28, out_channels=1, std=0.02, rng=None,
                    dtype=np.float32, fast_layers=True, fc_units=None):
    """G(z, y): ``(z (m, noise_dim), labels (m,))`` → images ``(m, out_channels, side, side)`` in [0, 1].

    ``g_channels = (c0, c1, …)`` as in :func:`scratchgan.models.dcgan.build_generator`;
    every layer with weights also sees the ``n_classes`` label channels.
    ``fc_units`` (the authors' 1024): a hidden fully connected layer
    ``[z, y] → Linear fc_units → BN → ReLU`` before the projection to ``c0·s·s``.
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    n_up, C = len(g_channels), int(n_classes)
    start = side // 2 ** n_up
    if start * 2 ** n_up != side:
        raise ValueError(f"side {side} is not a multiple of 2^{n_up} (one doubling per entry of g_channels)")
    c0, n_in, layers = g_channels[0], noise_dim + C, []
    if fc_units:
        layers += [LabelConcat(), L.Linear(n_in, fc_units, **kw), L.BatchNorm1d(fc_units, dtype=dtype), L.ReLU()]
        n_in = fc_units + C
    layers += [LabelConcat(), L.Linear(n_in, c0 * start * start, **kw),
              L.BatchNorm1d(c0 * start * start, dtype=dtype), L.ReLU(), L.Reshape(c0, start, start)]
    widths = list(g_channels) + [out_channels]
    for i, (c_in, c_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [LabelConcat(), L.ConvTranspose2d(c_in + C, c_out, 4, stride=2, padding=1, **kw)]
        if i < n_up - 1:  # no BN on G's output layer
            layers += [L.BatchNorm2d(c_out, dtype=dtype), L.ReLU()]
    layers.append(L.Sigmoid())
    return LabelSequential(layers, C, dtype)


def build_discriminator(*, n_classes=10, d_channels=(64, 128), side=28, in_channels=1, std=0.02, slope=0.2,
                        rng=None, dtype=np.float32, fast_layers=True, fc_units=None):
    """D(x, y): ``(images (m, in_channels, side, side), labels (m,))`` → logits ``(m, 1)``.

    ``fc_units`` (the authors' 1024): a hidden fully connected layer
    ``[h, y] → Linear fc_units → BN → LeakyReLU`` before the logit.
    """
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kw = dict(init="normal", std=std, rng=rng, dtype=dtype)
    C = int(n_classes)
    layers, c_in, s = [], in_channels, side
    for i, c_out in enumerate(d_channels):
        layers += [LabelConcat(), L.Conv2d(c_in + C, c_out, 4, stride=2, padding=1, **kw)]
        if i > 0:  # no BN on D's input layer
            layers.append(L.BatchNorm2d(c_out, dtype=dtype))
        layers.append(L.LeakyReLU(slope))
        c_in, s = c_out, (s + 2 - 4) // 2 + 1
    layers.append(L.Flatten())
    n_in = c_in * s * s + C
    if fc_units:
        layers += [LabelConcat(), L.Linear(n_in, fc_units, **kw), L.BatchNorm1d(fc_units, dtype=dtype),
                   L.LeakyReLU(slope)]
        n_in = fc_units + C
    layers += [LabelConcat(), L.Linear(n_in, 1, **kw)]
    return LabelSequential(layers, C, dtype)


def build(x_shape, *, noise_dim, pixel_mean=None, rng=None, fast_layers=True, n_classes=10, g_channels=(128, 64),
          d_channels=(64, 128), std=0.02, slope=0.2, fc_units=None):
    """``{"G": G, "D": D}`` for images of ``x_shape = (C, side, side)``, conditioned on ``n_classes`` labels.

    ``pixel_mean`` is not used (N(0, std²) everywhere, as the DCGAN).
    """
    if len(x_shape) != 3 or x_shape[1] != x_shape[2]:
        raise ValueError(f"the conditional DCGAN works on square images (C, side, side), got sample shape "
                         f"{tuple(x_shape)}")
    c, side = int(x_shape[0]), int(x_shape[1])
    G = build_generator(noise_dim=noise_dim, n_classes=n_classes, g_channels=tuple(g_channels), side=side,
                        out_channels=c, std=std, rng=rng, fast_layers=fast_layers, fc_units=fc_units)
    D = build_discriminator(n_classes=n_classes, d_channels=tuple(d_channels), side=side, in_channels=c, std=std,
                            slope=slope, rng=rng, fast_layers=fast_layers, fc_units=fc_units)
    return {"G": G, "D": D}


build.layout = "image"
