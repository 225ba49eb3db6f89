"""pix2pix's discriminator: a PatchGAN on the (source, image) pair (Isola et al. 2017).

D is fully convolutional. It takes the source ``x`` and an image ``y`` (real
or translated), concatenates them along the channels, and outputs a *map* of
logits, one per overlapping patch: each says whether its patch of the pair
looks real. The loss averages the cross-entropy over every patch of every
pair (docs/pix2pix.md §4). The patch is the receptive field of one output.

The authors' ``defineD_n_layers``, all convolutions 4×4 with padding 1::

    Conv s2 → ndf, LeakyReLU 0.2                         (no BN on D's input layer)
    n_layers − 1 times: Conv s2 → ndf·min(2ⁿ, 8), BN, LeakyReLU 0.2
    Conv s1 → ndf·min(2^n_layers, 8), BN, LeakyReLU 0.2
    Conv s1 → 1                                          (a logit per patch; their sigmoid is in our loss)

Their default ``n_layers = 3`` sees 70×70 patches of a 256×256 image (a 30×30
map). The same family on 32×32 images (:func:`receptive_field`,
:func:`output_side`):

    n_layers   patch     map at 32×32   map at 256×256
    0          1×1       32×32          256×256   the "PixelGAN" (1×1 convolutions)
    1          16×16     14×14          126×126
    2          34×34      6×6            62×62    (at 32×32 wider than the image)
    3          70×70      2×2            30×30    the paper's default

The paper's best patch (70 of 256, a quarter of the side) has no exact
counterpart; ``n_layers = 1`` (half the side) is the closest that is still a
patch, and the preset's choice. Weights N(0, 0.02), BN scales N(1, 0.02), no
convolution biases (the authors' training loop zeroes them before every step).
"""

from __future__ import annotations

import numpy as np

from .. import nn
from ..nn import fast

__all__ = ["build_discriminator", "receptive_field", "output_side"]


def _layout(n_layers):
    """``(kernel, stride, padding)`` of each convolution."""
    if n_layers == 0:
        return [(1, 1, 0)] * 3
    return [(4, 2, 1)] * n_layers + [(4, 1, 1), (4, 1, 1)]


def receptive_field(n_layers) -> int:
    """The side of the patch one output sees: ``r ← r + (k − 1)·j``, ``j ← j·s``
    over the layers (``j`` the spacing of the previous layer's outputs in pixels)."""
    r, j = 1, 1
    for k, s, _ in _layout(n_layers):
        r, j = r + (k - 1) * j, j * s
    return r


def output_side(side, n_layers) -> int:
    """The side of D's logit map for ``side × side`` images."""
    for k, s, p in _layout(n_layers):
        side = (side + 2 * p - k) // s + 1
    return side


def build_discriminator(*, in_channels=2, ndf=32, n_layers=1, max_mult=8, std=0.02, slope=0.2, rng=None,
                        dtype=np.float32, fast_layers=True):
    """D: a pair ``(x, y)`` of ``(m, C_x, H, W)`` and ``(m, C_y, H, W)`` images
    with ``C_x + C_y = in_channels`` → logits ``(m, 1, H', W')``, one per patch."""
    L = fast if fast_layers else nn
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    if int(n_layers) < 0:
        raise ValueError(f"n_layers must be >= 0, got {n_layers}")

    def conv(c_in, c_out, k, s, p):
        return L.Conv2d(c_in, c_out, k, stride=s, padding=p, bias=False, init="normal", std=std, rng=rng,
                        dtype=dtype)

    def bn(c):
        layer = L.BatchNorm2d(c, dtype=dtype)
        layer.params["gamma"][...] = rng.normal(1.0, std, c)
        return layer

    layout = _layout(n_layers)
    # widths after each convolution but the last (PixelGAN: 1×1 convolutions ndf → 2·ndf → 1)
    chans = [ndf, 2 * ndf] if n_layers == 0 else [ndf * min(2 ** n, max_mult) for n in range(n_layers + 1)]
    layers = [L.Concat(axis=1), conv(in_channels, chans[0], *layout[0]), L.LeakyReLU(slope)]
    for c_in, c_out, kind in zip(chans[:-1], chans[1:], layout[1:-1]):
        layers += [conv(c_in, c_out, *kind), bn(c_out), L.LeakyReLU(slope)]
    layers.append(conv(chans[-1], 1, *layout[-1]))
    return L.Sequential(layers)
